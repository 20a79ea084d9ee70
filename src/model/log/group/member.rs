//! The member (consumer) side of the group protocol, as pure functions: what a member gives
//! up when a rebalance starts, what it does with the assignment SyncGroup returns, how a
//! cooperative leader holds back partitions that change owner, and when a member sends
//! LeaveGroup.
//!
//! Sources: apache/kafka `clients/src/main/java/org/apache/kafka/clients/consumer/internals/
//! ConsumerCoordinator.java` (`onJoinPrepare`, `onJoinComplete`,
//! `validateCooperativeAssignment`), `AbstractCoordinator.java` (`maybeLeaveGroup`, the poll
//! timeout), `clients/.../consumer/CooperativeStickyAssignor.java` (its adjustment of the
//! sticky assignment) and KIP-429, "Kafka Consumer Incremental Rebalance Protocol".
//!
//! The eager protocol stops the world: every member revokes every partition before it sends
//! JoinGroup and owns nothing until SyncGroup returns, so the group consumes nothing for the
//! whole rebalance. The cooperative one keeps consuming: members rejoin still owning their
//! partitions, the leader's assignor assigns no partition that another member still owns, a
//! member whose assignment lacks some of its partitions revokes just those and rejoins at
//! once, and the second rebalance that causes hands them to their new owners.

use std::collections::{BTreeMap, BTreeSet};

use super::{Assignment, MemberId, Partition, Protocol};
use crate::engine::time::{SimDuration, SimTime};

/// How often a member heartbeats by default: 3 s, the consumer's `heartbeat.interval.ms`
/// (default 3000, apache/kafka `clients/.../consumer/ConsumerConfig.java`; the docs ask for
/// no more than a third of `session.timeout.ms`).
pub const DEFAULT_HEARTBEAT_INTERVAL: SimDuration = SimDuration::from_secs(3);

/// Records one poll returns at most by default: 500, the consumer's `max.poll.records`
/// (`ConsumerConfig.java`). With `max.poll.interval.ms` (the group's
/// [`rebalance_timeout`](super::GroupConfig::rebalance_timeout), 300 s by default) it bounds
/// the per-record processing time a member can afford: 300 s / 500 = 600 ms.
pub const DEFAULT_MAX_POLL_RECORDS: u32 = 500;

/// The partitions a member revokes when it learns a rebalance has started, before it sends
/// JoinGroup (`onJoinPrepare`): eager members revoke everything they own, cooperative members
/// nothing.
pub fn revoke_on_rejoin(protocol: Protocol, owned: &[Partition]) -> Vec<Partition> {
    match protocol {
        Protocol::Eager => sorted_set(owned),
        Protocol::Cooperative => Vec::new(),
    }
}

/// What a member does with the assignment its SyncGroup returned (`onJoinComplete`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssignmentChange {
    /// What it owns afterwards: exactly the assignment, sorted.
    pub owned: Vec<Partition>,
    /// Assigned and not owned before: start consuming these (after fetching their offsets).
    pub added: Vec<Partition>,
    /// Owned before and not assigned: stop consuming and commit these.
    pub revoked: Vec<Partition>,
    /// Rejoin at once: a cooperative member that revoked anything, so that the next
    /// rebalance can hand those partitions to their new owners.
    pub rejoin: bool,
}

/// Applies `assigned` to a member that owns `owned`. An eager member owns nothing here (it
/// revoked everything with [`revoke_on_rejoin`]), so all of `assigned` is added.
pub fn apply_assignment(
    protocol: Protocol,
    owned: &[Partition],
    assigned: &[Partition],
) -> AssignmentChange {
    let owned: BTreeSet<Partition> = owned.iter().copied().collect();
    let assigned: BTreeSet<Partition> = assigned.iter().copied().collect();
    let added: Vec<Partition> = assigned.difference(&owned).copied().collect();
    let revoked: Vec<Partition> = owned.difference(&assigned).copied().collect();
    let rejoin = protocol == Protocol::Cooperative && !revoked.is_empty();
    debug_assert!(
        added.iter().all(|p| !revoked.contains(p)),
        "a partition cannot be both added and revoked"
    );
    AssignmentChange {
        owned: assigned.into_iter().collect(),
        added,
        revoked,
        rejoin,
    }
}

/// The cooperative leader's first round (KIP-429; `CooperativeStickyAssignor`): removes from
/// `target` every partition assigned to one member while another still owns it, so that no
/// partition has two owners. The owner's new assignment lacks it too, so the owner revokes it
/// and rejoins, and the next rebalance assigns it. `owned` is what each member said it owns in
/// its JoinGroup; if two members claim a partition the one with the smaller id is taken as its
/// owner (Kafka breaks that tie by generation, which this model does not keep per partition).
pub fn withhold_transfers(
    target: &Assignment,
    owned: &BTreeMap<MemberId, Vec<Partition>>,
) -> Assignment {
    let mut owner: BTreeMap<Partition, &str> = BTreeMap::new();
    for (member, partitions) in owned {
        for &p in partitions {
            owner.entry(p).or_insert(member.as_str());
        }
    }
    target
        .iter()
        .map(|(member, partitions)| {
            let kept = partitions
                .iter()
                .copied()
                .filter(|p| owner.get(p).is_none_or(|o| *o == member.as_str()))
                .collect();
            (member.clone(), kept)
        })
        .collect()
}

/// The partitions an assignment moves from one member straight to another in a single
/// rebalance, which the cooperative protocol forbids: empty for a valid cooperative
/// assignment (`validateCooperativeAssignment`, which fails the rebalance otherwise).
pub fn direct_transfers(
    owned: &BTreeMap<MemberId, Vec<Partition>>,
    assignment: &Assignment,
) -> Vec<Partition> {
    let mut added = BTreeSet::new();
    let mut revoked = BTreeSet::new();
    for (member, assigned) in assignment {
        let before: &[Partition] = owned.get(member).map_or(&[], Vec::as_slice);
        added.extend(assigned.iter().filter(|p| !before.contains(p)));
        revoked.extend(before.iter().filter(|p| !assigned.contains(p)));
    }
    added.intersection(&revoked).copied().collect()
}

/// Whether a member sends LeaveGroup when it closes or its poll timeout expires. Since Kafka
/// 2.3 only dynamic members do; a static member (`group.instance.id`) never does, and only its
/// session timeout removes it (`AbstractCoordinator.maybeLeaveGroup`).
pub fn sends_leave_group(instance_id: Option<&str>) -> bool {
    instance_id.is_none()
}

/// Whether the time since the last `poll()` has reached `max_poll_interval`, at which point
/// the member's heartbeat thread leaves the group (a dynamic member sends LeaveGroup, see
/// [`sends_leave_group`]) and the next `poll()` rejoins. Kafka's poll timer expires when
/// `now >= last_poll + max.poll.interval.ms` (`Timer.isExpired`).
pub fn poll_timeout_expired(
    last_poll: SimTime,
    now: SimTime,
    max_poll_interval: SimDuration,
) -> bool {
    now >= last_poll.saturating_add(max_poll_interval)
}

fn sorted_set(partitions: &[Partition]) -> Vec<Partition> {
    let set: BTreeSet<Partition> = partitions.iter().copied().collect();
    set.into_iter().collect()
}
