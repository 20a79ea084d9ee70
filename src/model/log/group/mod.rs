//! Kafka's group coordinator (the broker side of the classic consumer-group protocol) as a pure
//! state machine, and the member-side pieces of eager and cooperative rebalancing
//! ([`member`]).
//!
//! [`Coordinator`] holds one group. Every input is a method that takes `now`: [`join`],
//! [`sync`], [`heartbeat`], [`leave`] (the four requests) and [`tick`] (its timers). Each
//! returns the [`Output`]s it caused, in order: replies addressed to a client (some requests
//! are parked and answered later, by another request or a timer, exactly as Kafka parks
//! JoinGroup and SyncGroup) and group events for metrics and the trace. [`next_deadline`] says
//! when the embedding actor must call [`tick`] next. Nothing here knows about actors, the
//! network or the assignor: the leader's SyncGroup carries the assignment it computed.
//!
//! # What is modelled, and from where
//!
//! The semantics follow Apache Kafka's classic group protocol (KIP-62's separate session and
//! rebalance timeouts, KIP-134, KIP-345, KIP-429) as its coordinator implements it: the Java
//! one of the `group-coordinator` module (apache/kafka `group-coordinator/src/main/java/org/
//! apache/kafka/coordinator/group/GroupMetadataManager.java`, `.../classic/ClassicGroup.java`,
//! `.../classic/ClassicGroupMember.java`) and, where it has not changed, the Scala one it
//! replaced (`core/src/main/scala/kafka/coordinator/group/GroupCoordinator.scala`,
//! `DelayedJoin.scala`).
//!
//! - States Empty, PreparingRebalance, CompletingRebalance, Stable (Dead is never entered:
//!   group deletion and coordinator failover are not modelled). A rebalance may start from
//!   Empty, Stable or CompletingRebalance (`canRebalance`).
//! - Generations count completed join phases, from 0; the first completed join makes
//!   generation 1. A group that empties completes a join phase too, so its generation bumps.
//! - The leader is the first member added to a group that has no leader, and it stays leader
//!   for as long as it is a member: it is not "the first to join each generation". When it
//!   leaves, the next member takes over (Kafka takes the first of a `HashMap`'s keys; we take
//!   the smallest member id, which is deterministic). When the join phase completes without
//!   the leader having rejoined, the first member that did rejoin becomes leader
//!   (`maybeElectNewJoinedLeader`).
//! - JoinGroup: a join phase waits until every member has rejoined or the rebalance timeout
//!   (the members' `max.poll.interval.ms`) expires; dynamic members that did not rejoin are
//!   then removed, static ones are kept (their session timeout removes them). If no member
//!   rejoined at all, the phase is re-armed for another rebalance timeout. A known member
//!   that joins a Stable group with unchanged metadata gets the current generation back; the
//!   leader, or a member whose metadata changed, starts a rebalance.
//! - The initial rebalance delay (KIP-134, `group.initial.rebalance.delay.ms`): a rebalance
//!   out of Empty waits `delay` even if everyone has joined, and waits another
//!   `min(delay, remaining)` each time new members arrived meanwhile, with `remaining`
//!   starting at `rebalance_timeout - delay` (`tryCompleteInitialRebalanceElseSchedule`).
//! - SyncGroup: followers' requests are parked until the leader's arrives with the
//!   assignment; members it leaves out get an empty one. Members that have not sent SyncGroup
//!   within the rebalance timeout of the join phase completing are removed and a rebalance
//!   starts (`expirePendingSync`, in the Java coordinator).
//! - Heartbeats: each resets the member's session deadline to `now + session_timeout`; a
//!   member whose deadline passes is removed and a rebalance starts, unless it is an
//!   existing member waiting in a JoinGroup or SyncGroup (`hasSatisfiedHeartbeat`). A new
//!   member's first deadline is `new_member_join_timeout` (5 min). A heartbeat during
//!   PreparingRebalance is answered REBALANCE_IN_PROGRESS, which makes the member rejoin;
//!   during CompletingRebalance the Java coordinator accepts it (the version of
//!   `GroupCoordinator.scala` read here answered REBALANCE_IN_PROGRESS there too).
//! - Static membership (KIP-345, `group.instance.id`): a JoinGroup with a known instance id
//!   and no member id replaces the old member id. In a Stable group this causes no rebalance
//!   and no new generation: the new member gets the current generation and, by SyncGroup, the
//!   old member's assignment. A request with a known instance id but another member id is
//!   answered FENCED_INSTANCE_ID.
//!
//! Simplifications, each visible to a scenario only as timing:
//! - Dynamic members join in one round trip: KIP-394's MEMBER_ID_REQUIRED first round (join,
//!   get an id, join again) is not modelled; the actor may add a round trip's latency.
//! - Writing the group's metadata to `__consumer_offsets` (after the leader's SyncGroup, after
//!   a static member's replacement) succeeds at once; the actor may delay the replies.
//! - All members share one session and rebalance timeout, from [`GroupConfig`]. In Kafka each
//!   JoinGroup carries the member's own and the group's rebalance timeout is the largest; a
//!   group of one consumer config has them all equal.
//! - One topic, so a partition is a `u32` and a member's protocol metadata is the partitions
//!   it owns (what the cooperative protocol sends in its subscription).
//! - The broker's `group.max.size` is unbounded.
//!
//! [`join`]: Coordinator::join
//! [`sync`]: Coordinator::sync
//! [`heartbeat`]: Coordinator::heartbeat
//! [`leave`]: Coordinator::leave
//! [`tick`]: Coordinator::tick
//! [`next_deadline`]: Coordinator::next_deadline

pub mod member;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::engine::time::{SimDuration, SimTime};
use crate::model::rpc::{ConfigError, Validate, nonzero};

/// A member id, assigned by the coordinator: `"{instance id or client id}-{n}"`. Kafka appends
/// a random UUID instead of `n`; a counter keeps runs reproducible.
pub type MemberId = String;
/// A static member's `group.instance.id`.
pub type InstanceId = String;
/// The client a reply goes to: the consumer's `client.id`, stable across its member ids.
pub type ClientId = String;
/// A partition of the group's one topic.
pub type Partition = u32;
/// Partitions by member, as the leader's SyncGroup carries them. Defined here so that the
/// coordinator does not depend on the assignors (`log/assign.rs`, written at the same time);
/// to be unified with the assignors' type once both exist.
pub type Assignment = BTreeMap<MemberId, Vec<Partition>>;

// ---------------------------------------------------------------------------------------------
// Config
// ---------------------------------------------------------------------------------------------

/// The session timeout by default: 45 s, the consumer's `session.timeout.ms` since Kafka 3.0
/// (KIP-735, "Increase default consumer session timeout"; apache/kafka `clients/src/main/java/
/// org/apache/kafka/clients/consumer/ConsumerConfig.java`). It was 10 s before 3.0.
pub const DEFAULT_SESSION_TIMEOUT: SimDuration = SimDuration::from_secs(45);

/// The rebalance timeout by default: 300 s. The Java consumer sends its `max.poll.interval.ms`
/// (default 300000, `ConsumerConfig.java`) as the JoinGroup's rebalance timeout.
pub const DEFAULT_REBALANCE_TIMEOUT: SimDuration = SimDuration::from_secs(300);

/// The initial rebalance delay by default: 3 s, the broker's
/// `group.initial.rebalance.delay.ms` (KIP-134; `genericGroupInitialRebalanceDelayMs = 3000`
/// in `GroupMetadataManager.java`'s builder).
pub const DEFAULT_INITIAL_REBALANCE_DELAY: SimDuration = SimDuration::from_secs(3);

/// How long a new member's parked JoinGroup may wait: 5 min
/// (`genericGroupNewMemberJoinTimeoutMs = 5 * 60 * 1000` in `GroupMetadataManager.java`'s
/// builder; the Scala coordinator's `NewMemberJoinTimeoutMs`).
pub const DEFAULT_NEW_MEMBER_JOIN_TIMEOUT: SimDuration = SimDuration::from_mins(5);

/// The shortest session timeout a broker accepts by default: 6 s
/// (`group.min.session.timeout.ms`); a JoinGroup below it gets INVALID_SESSION_TIMEOUT.
pub const MIN_SESSION_TIMEOUT: SimDuration = SimDuration::from_secs(6);

/// The longest session timeout a broker accepts by default: 30 min
/// (`group.max.session.timeout.ms`).
pub const MAX_SESSION_TIMEOUT: SimDuration = SimDuration::from_mins(30);

/// How members give up partitions in a rebalance.
///
/// Kafka's coordinator is the same for both: the difference is the members' (and their
/// leader's assignor's) behaviour, in [`member`]. The field is here so that one config says
/// how the group behaves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Protocol {
    /// Every member revokes everything it owns before rejoining, and consumes nothing until
    /// SyncGroup returns. The default: Kafka 3.x consumers default to
    /// `partition.assignment.strategy = [RangeAssignor, CooperativeStickyAssignor]`, and the
    /// group picks the first strategy all members support, the eager `RangeAssignor`.
    #[default]
    Eager,
    /// KIP-429: members keep what they own while rejoining; the leader's assignor withholds
    /// partitions that change owner, their owners revoke them and rejoin at once, and a second
    /// rebalance hands them out.
    Cooperative,
}

/// One group's coordinator config: `group: (session_timeout: "45s", protocol: Cooperative)`;
/// every field has a default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    /// A member that sends no heartbeat for this long is removed. Default 45 s; within
    /// [6 s, 30 min], the broker's default bounds.
    #[serde(default = "default_session_timeout")]
    pub session_timeout: SimDuration,
    /// How long a join phase waits for known members to rejoin, and a completed join phase
    /// for their SyncGroups: the members' `max.poll.interval.ms`. Default 300 s.
    #[serde(default = "default_rebalance_timeout")]
    pub rebalance_timeout: SimDuration,
    /// How long the first rebalance of an empty group waits for more members. Default 3 s;
    /// zero disables it.
    #[serde(default = "default_initial_rebalance_delay")]
    pub initial_rebalance_delay: SimDuration,
    /// How long a new member's JoinGroup may stay parked. Default 5 min.
    #[serde(default = "default_new_member_join_timeout")]
    pub new_member_join_timeout: SimDuration,
    /// Default `Eager`.
    #[serde(default)]
    pub protocol: Protocol,
}

fn default_session_timeout() -> SimDuration {
    DEFAULT_SESSION_TIMEOUT
}

fn default_rebalance_timeout() -> SimDuration {
    DEFAULT_REBALANCE_TIMEOUT
}

fn default_initial_rebalance_delay() -> SimDuration {
    DEFAULT_INITIAL_REBALANCE_DELAY
}

fn default_new_member_join_timeout() -> SimDuration {
    DEFAULT_NEW_MEMBER_JOIN_TIMEOUT
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            session_timeout: DEFAULT_SESSION_TIMEOUT,
            rebalance_timeout: DEFAULT_REBALANCE_TIMEOUT,
            initial_rebalance_delay: DEFAULT_INITIAL_REBALANCE_DELAY,
            new_member_join_timeout: DEFAULT_NEW_MEMBER_JOIN_TIMEOUT,
            protocol: Protocol::default(),
        }
    }
}

impl Validate for GroupConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.session_timeout < MIN_SESSION_TIMEOUT || self.session_timeout > MAX_SESSION_TIMEOUT
        {
            return Err(ConfigError::Invalid {
                field: "session_timeout".into(),
                reason: format!(
                    "{} is outside [{MIN_SESSION_TIMEOUT}, {MAX_SESSION_TIMEOUT}], the bounds a \
                     broker accepts by default (group.min/max.session.timeout.ms); Kafka \
                     answers such a JoinGroup with INVALID_SESSION_TIMEOUT",
                    self.session_timeout
                ),
            });
        }
        nonzero("rebalance_timeout", self.rebalance_timeout.as_nanos())?;
        nonzero(
            "new_member_join_timeout",
            self.new_member_join_timeout.as_nanos(),
        )?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Requests, replies and events
// ---------------------------------------------------------------------------------------------

/// The group's state, as Kafka names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum GroupState {
    /// No members.
    Empty,
    /// A join phase: waiting for members to (re)join.
    PreparingRebalance,
    /// The join phase is over: waiting for the leader's SyncGroup.
    CompletingRebalance,
    /// Every member has its assignment.
    Stable,
    /// The group is gone. Never entered here.
    Dead,
}

/// A JoinGroup request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinRequest {
    /// Where the reply goes.
    pub client_id: ClientId,
    /// None for a member that has none yet (first join, or after UNKNOWN_MEMBER_ID).
    pub member_id: Option<MemberId>,
    /// `group.instance.id`: Some for a static member.
    pub instance_id: Option<InstanceId>,
    /// The partitions the member owns: the protocol metadata of a cooperative member, always
    /// empty for an eager one (it revoked everything before rejoining). A change of metadata
    /// starts a rebalance even in a Stable group.
    pub owned: Vec<Partition>,
}

/// A member as the leader sees it in its JoinGroup response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinMember {
    pub member_id: MemberId,
    pub instance_id: Option<InstanceId>,
    /// The partitions it said it owns when it joined.
    pub owned: Vec<Partition>,
}

/// A successful JoinGroup response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinResponse {
    /// The member's id, to use in every later request.
    pub member_id: MemberId,
    pub generation: u32,
    pub leader: MemberId,
    /// Every member, sorted by id, for the leader to assign; empty for the others.
    pub members: Vec<JoinMember>,
    /// The group is Stable and keeps its assignment: the leader must not compute a new one
    /// (JoinGroup's `SkipAssignment`, sent to a static leader that replaced itself when the
    /// client's version supports it, `JoinGroupRequest.supportsSkippingAssignment`).
    pub skip_assignment: bool,
}

/// Why a request was refused: Kafka's error codes for these four APIs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum GroupError {
    /// The member id is not (or no longer) in the group: reset it and join as new.
    UnknownMemberId,
    /// The request's generation is not the group's: rejoin.
    IllegalGeneration,
    /// A rebalance is under way: rejoin.
    RebalanceInProgress,
    /// Another member id now holds this instance id: this instance must shut down.
    FencedInstanceId,
}

/// A reply to one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    Join(Result<JoinResponse, GroupError>),
    /// The member's assignment.
    Sync(Result<Vec<Partition>, GroupError>),
    Heartbeat(Result<(), GroupError>),
    Leave(Result<(), GroupError>),
}

/// Why a rebalance started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RebalanceReason {
    /// A member joined with no member id, or a static member joined with a new one while the
    /// group was completing a rebalance.
    MemberAdded(MemberId),
    /// A known member rejoined: the leader, or a member whose metadata changed.
    MemberRejoined(MemberId),
    /// A member was removed (see [`RemoveReason`]).
    MemberRemoved(MemberId),
    /// Members did not send SyncGroup within the rebalance timeout.
    SyncExpired,
}

/// Why a member was removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemoveReason {
    /// No heartbeat within its session timeout (or, for a new member, its JoinGroup waited
    /// longer than the new-member join timeout).
    SessionExpired,
    /// A dynamic member that did not rejoin before the join phase ended.
    NotRejoined,
    /// No SyncGroup within the rebalance timeout after the join phase.
    SyncExpired,
    /// It sent LeaveGroup.
    Left,
}

/// What an input caused, in the order it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// A reply for `to`. A parked request's reply comes out of the input that completes it.
    Reply { to: ClientId, response: Response },
    /// The group entered PreparingRebalance from `from`, at generation `generation`.
    RebalanceStarted {
        at: SimTime,
        generation: u32,
        from: GroupState,
        reason: RebalanceReason,
    },
    /// The leader's assignment arrived: the group is Stable at `generation`, `took` after it
    /// last left Stable or Empty.
    Stabilized {
        at: SimTime,
        generation: u32,
        took: SimDuration,
        members: usize,
    },
    /// The last member went: the group is Empty at `generation`.
    Emptied { at: SimTime, generation: u32 },
    MemberRemoved {
        at: SimTime,
        member_id: MemberId,
        reason: RemoveReason,
    },
}

/// Counters for the metrics layer, kept by the coordinator.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupMetrics {
    /// Times the group entered PreparingRebalance (`group.rebalances`). A rebalance restarted
    /// while completing counts again.
    pub rebalances_total: u64,
    /// Times the group became Stable.
    pub stabilized_total: u64,
    /// Time spent out of Stable, summed over the episodes that ended in Stable: from leaving
    /// Stable (or Empty) to the leader's SyncGroup.
    pub rebalance_time_total: SimDuration,
    /// The longest such episode.
    pub rebalance_time_max: SimDuration,
    pub removed_session_expired: u64,
    pub removed_not_rejoined: u64,
    pub removed_sync_expired: u64,
    pub removed_left: u64,
    /// Static members replaced by a restarted instance.
    pub static_replacements: u64,
}

// ---------------------------------------------------------------------------------------------
// The coordinator
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Member {
    id: MemberId,
    instance_id: Option<InstanceId>,
    client_id: ClientId,
    owned: Vec<Partition>,
    assignment: Vec<Partition>,
    /// Its JoinGroup is parked (Kafka: `isAwaitingJoin`, a pending future).
    awaiting_join: bool,
    /// Its SyncGroup is parked.
    awaiting_sync: bool,
    /// Added in the current join phase.
    is_new: bool,
    /// When its session expires; None while the timer is not armed (it fired for a member
    /// waiting in a rebalance, and the rebalance re-arms it).
    session_deadline: Option<SimTime>,
}

/// The initial rebalance delay's state while it runs (`InitialDelayedJoin`).
#[derive(Clone, Copy, Debug)]
struct InitialDelay {
    /// The length of the step now running.
    delay: SimDuration,
    /// What is left of the rebalance timeout after it.
    remaining: SimDuration,
}

/// One consumer group's coordinator. See the module docs for the semantics.
#[derive(Clone, Debug)]
pub struct Coordinator {
    config: GroupConfig,
    state: GroupState,
    previous_state: GroupState,
    generation: u32,
    leader: Option<MemberId>,
    members: BTreeMap<MemberId, Member>,
    static_members: BTreeMap<InstanceId, MemberId>,
    /// Members that have not sent SyncGroup since the join phase completed.
    pending_sync: BTreeSet<MemberId>,
    /// When the join phase completes (or the initial delay takes its next step).
    join_deadline: Option<SimTime>,
    initial: Option<InitialDelay>,
    new_member_added: bool,
    /// When members still in `pending_sync` are removed, and for which generation.
    sync_deadline: Option<(SimTime, u32)>,
    /// Since when the group has been out of Stable (None while Stable or Empty).
    unstable_since: Option<SimTime>,
    next_member_seq: u64,
    metrics: GroupMetrics,
}

/// The kinds of timer, in the order they fire when due at the same instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Session,
    Sync,
    Join,
}

impl Coordinator {
    /// An Empty group at generation 0. The config should have been validated.
    pub fn new(config: GroupConfig) -> Self {
        debug_assert!(config.validate().is_ok(), "invalid group config");
        Coordinator {
            config,
            state: GroupState::Empty,
            previous_state: GroupState::Empty,
            generation: 0,
            leader: None,
            members: BTreeMap::new(),
            static_members: BTreeMap::new(),
            pending_sync: BTreeSet::new(),
            join_deadline: None,
            initial: None,
            new_member_added: false,
            sync_deadline: None,
            unstable_since: None,
            next_member_seq: 1,
            metrics: GroupMetrics::default(),
        }
    }

    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    pub fn state(&self) -> GroupState {
        self.state
    }

    pub fn generation(&self) -> u32 {
        self.generation
    }

    pub fn leader(&self) -> Option<&str> {
        self.leader.as_deref()
    }

    pub fn metrics(&self) -> &GroupMetrics {
        &self.metrics
    }

    /// The members' ids, sorted.
    pub fn member_ids(&self) -> Vec<MemberId> {
        self.members.keys().cloned().collect()
    }

    pub fn has_member(&self, member_id: &str) -> bool {
        self.members.contains_key(member_id)
    }

    /// The member id an instance id is held by.
    pub fn static_member(&self, instance_id: &str) -> Option<&str> {
        self.static_members.get(instance_id).map(String::as_str)
    }

    /// A member's assignment as the coordinator last stored it (empty while rebalancing).
    pub fn assignment_of(&self, member_id: &str) -> Option<&[Partition]> {
        self.members.get(member_id).map(|m| m.assignment.as_slice())
    }

    /// When the member's session expires, if its timer is armed.
    pub fn session_deadline(&self, member_id: &str) -> Option<SimTime> {
        self.members.get(member_id).and_then(|m| m.session_deadline)
    }

    /// The earliest instant at which [`tick`](Self::tick) has something to do.
    pub fn next_deadline(&self) -> Option<SimTime> {
        self.next_timer().map(|(at, _, _)| at)
    }

    /// Runs every timer due at or before `now`, each at its own deadline.
    pub fn tick(&mut self, now: SimTime) -> Vec<Output> {
        let mut out = Vec::new();
        self.advance(now, &mut out);
        out
    }

    /// A JoinGroup request. Timers due at or before `now` run first, so a session that
    /// expires at `now` is gone before a request at `now` is handled.
    pub fn join(&mut self, now: SimTime, req: JoinRequest) -> Vec<Output> {
        let mut out = Vec::new();
        self.advance(now, &mut out);
        match req.member_id.clone() {
            None => self.join_new_member(now, req, &mut out),
            Some(member_id) => self.join_existing_member(now, member_id, req, &mut out),
        }
        self.check_invariants();
        out
    }

    /// A SyncGroup request; the leader's carries the assignment (other members' `assignment`
    /// is ignored, as Kafka ignores it).
    pub fn sync(
        &mut self,
        now: SimTime,
        client_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: u32,
        assignment: Option<Assignment>,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        self.advance(now, &mut out);
        let reply = |out: &mut Vec<Output>, r| {
            out.push(Output::Reply {
                to: client_id.to_string(),
                response: Response::Sync(r),
            })
        };
        if let Err(e) = self.validate_member(member_id, instance_id) {
            reply(&mut out, Err(e));
        } else if generation != self.generation {
            reply(&mut out, Err(GroupError::IllegalGeneration));
        } else {
            match self.state {
                GroupState::Empty | GroupState::Dead => {
                    reply(&mut out, Err(GroupError::UnknownMemberId))
                }
                GroupState::PreparingRebalance => {
                    reply(&mut out, Err(GroupError::RebalanceInProgress))
                }
                GroupState::CompletingRebalance => {
                    let member = self.members.get_mut(member_id).expect("validated");
                    member.awaiting_sync = true;
                    member.client_id = client_id.to_string();
                    self.remove_pending_sync(member_id);
                    if self.leader.as_deref() == Some(member_id) {
                        self.complete_sync(now, assignment.unwrap_or_default(), &mut out);
                    }
                }
                GroupState::Stable => {
                    self.remove_pending_sync(member_id);
                    let assignment = self.members[member_id].assignment.clone();
                    reply(&mut out, Ok(assignment));
                }
            }
        }
        self.check_invariants();
        out
    }

    /// A Heartbeat request.
    pub fn heartbeat(
        &mut self,
        now: SimTime,
        client_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: u32,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        self.advance(now, &mut out);
        let result = if let Err(e) = self.validate_member(member_id, instance_id) {
            Err(e)
        } else if generation != self.generation {
            Err(GroupError::IllegalGeneration)
        } else {
            match self.state {
                GroupState::Empty | GroupState::Dead => Err(GroupError::UnknownMemberId),
                GroupState::PreparingRebalance => {
                    self.rearm_session(member_id, now);
                    Err(GroupError::RebalanceInProgress)
                }
                GroupState::CompletingRebalance | GroupState::Stable => {
                    self.rearm_session(member_id, now);
                    Ok(())
                }
            }
        };
        out.push(Output::Reply {
            to: client_id.to_string(),
            response: Response::Heartbeat(result),
        });
        self.check_invariants();
        out
    }

    /// A LeaveGroup request for one member. `member_id` None with an instance id removes
    /// whichever member holds it (the admin client's removal by instance id).
    pub fn leave(
        &mut self,
        now: SimTime,
        client_id: &str,
        member_id: Option<&str>,
        instance_id: Option<&str>,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        self.advance(now, &mut out);
        let target = match (member_id, instance_id) {
            (None, Some(instance)) => self
                .static_members
                .get(instance)
                .cloned()
                .ok_or(GroupError::UnknownMemberId),
            (None, None) => Err(GroupError::UnknownMemberId),
            (Some(id), instance) => self.validate_member(id, instance).map(|()| id.to_string()),
        };
        let result = target.map(|id| {
            self.remove_member_and_update(now, &id, RemoveReason::Left, &mut out);
        });
        out.push(Output::Reply {
            to: client_id.to_string(),
            response: Response::Leave(result),
        });
        self.check_invariants();
        out
    }

    /// Whether an OffsetCommit from `member` (member id, instance id, generation; None for a
    /// commit outside group management) may be stored: Kafka's
    /// `ClassicGroup.validateOffsetCommit`. A commit without a member is accepted only while
    /// the group is Empty; one with a member needs a current member id (UNKNOWN_MEMBER_ID), the
    /// instance id's current holder (FENCED_INSTANCE_ID) and the current generation
    /// (ILLEGAL_GENERATION). A member of the current generation may commit during a rebalance:
    /// that is how an eager member commits before it rejoins (`onJoinPrepare`).
    pub fn validate_commit(
        &self,
        member: Option<(&str, Option<&str>, u32)>,
    ) -> Result<(), GroupError> {
        match member {
            None if self.state == GroupState::Empty => Ok(()),
            None => Err(GroupError::UnknownMemberId),
            Some((member_id, instance_id, generation)) => {
                self.validate_member(member_id, instance_id)?;
                if generation != self.generation {
                    return Err(GroupError::IllegalGeneration);
                }
                Ok(())
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // JoinGroup
    // -----------------------------------------------------------------------------------------

    fn join_new_member(&mut self, now: SimTime, req: JoinRequest, out: &mut Vec<Output>) {
        let prefix = req.instance_id.as_deref().unwrap_or(&req.client_id);
        let new_id = format!("{prefix}-{}", self.next_member_seq);
        self.next_member_seq += 1;
        match req
            .instance_id
            .as_ref()
            .and_then(|i| self.static_members.get(i))
            .cloned()
        {
            Some(old_id) => self.replace_static_member(now, &old_id, new_id, req, out),
            None => self.add_member(now, new_id, req, out),
        }
    }

    fn join_existing_member(
        &mut self,
        now: SimTime,
        member_id: MemberId,
        req: JoinRequest,
        out: &mut Vec<Output>,
    ) {
        if let Err(e) = self.validate_member(&member_id, req.instance_id.as_deref()) {
            out.push(join_error(req.client_id, e));
            return;
        }
        let matches = self.members[&member_id].owned == req.owned;
        let is_leader = self.leader.as_deref() == Some(member_id.as_str());
        match self.state {
            GroupState::PreparingRebalance => self.update_member_and_rebalance(now, req, out),
            GroupState::CompletingRebalance if matches => {
                // It missed the JoinGroup response (or resent it): the current generation.
                let response = self.join_response(&member_id, false);
                self.members
                    .get_mut(&member_id)
                    .expect("validated")
                    .client_id = req.client_id.clone();
                out.push(join_ok(req.client_id, response));
            }
            GroupState::Stable if matches && !is_leader => {
                let response = self.join_response(&member_id, false);
                self.members
                    .get_mut(&member_id)
                    .expect("validated")
                    .client_id = req.client_id.clone();
                out.push(join_ok(req.client_id, response));
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.update_member_and_rebalance(now, req, out)
            }
            GroupState::Empty | GroupState::Dead => {
                out.push(join_error(req.client_id, GroupError::UnknownMemberId))
            }
        }
    }

    /// Kafka's `addMemberThenRebalanceOrCompleteJoin`.
    fn add_member(&mut self, now: SimTime, id: MemberId, req: JoinRequest, out: &mut Vec<Output>) {
        debug_assert!(!self.members.contains_key(&id));
        if self.state == GroupState::PreparingRebalance && self.previous_state == GroupState::Empty
        {
            self.new_member_added = true;
        }
        if self.leader.is_none() {
            self.leader = Some(id.clone());
        }
        if let Some(instance) = &req.instance_id {
            let previous = self.static_members.insert(instance.clone(), id.clone());
            debug_assert!(previous.is_none(), "static member {instance} added twice");
        }
        self.members.insert(
            id.clone(),
            Member {
                id: id.clone(),
                instance_id: req.instance_id,
                client_id: req.client_id,
                owned: req.owned,
                assignment: Vec::new(),
                awaiting_join: true,
                awaiting_sync: false,
                is_new: true,
                // New members cannot heartbeat while their JoinGroup is parked; the longer
                // new-member timeout bounds how long a defunct one can hold a rebalance.
                session_deadline: Some(now.saturating_add(self.config.new_member_join_timeout)),
            },
        );
        self.maybe_prepare_rebalance_or_complete_join(now, RebalanceReason::MemberAdded(id), out);
    }

    /// Kafka's `updateMemberThenRebalanceOrCompleteJoin`: the member's JoinGroup is parked.
    fn update_member_and_rebalance(
        &mut self,
        now: SimTime,
        req: JoinRequest,
        out: &mut Vec<Output>,
    ) {
        let id = req.member_id.clone().expect("an existing member");
        let member = self.members.get_mut(&id).expect("validated");
        member.owned = req.owned;
        member.client_id = req.client_id;
        member.awaiting_join = true;
        self.maybe_prepare_rebalance_or_complete_join(
            now,
            RebalanceReason::MemberRejoined(id),
            out,
        );
    }

    /// Kafka's `updateStaticMemberThenRebalanceOrCompleteJoin`.
    fn replace_static_member(
        &mut self,
        now: SimTime,
        old_id: &str,
        new_id: MemberId,
        req: JoinRequest,
        out: &mut Vec<Output>,
    ) {
        let old = self
            .members
            .remove(old_id)
            .expect("static member is a member");
        let instance = old.instance_id.clone().expect("a static member");
        // Fence the old instance's parked requests at once.
        if old.awaiting_join {
            out.push(join_error(
                old.client_id.clone(),
                GroupError::FencedInstanceId,
            ));
        }
        if old.awaiting_sync {
            out.push(Output::Reply {
                to: old.client_id.clone(),
                response: Response::Sync(Err(GroupError::FencedInstanceId)),
            });
        }
        // Kafka leaves the old id in the pending-sync set (where it can only expire); the new
        // id takes its place instead, so the new instance must sync like the old one had to.
        if self.pending_sync.remove(old_id) {
            self.pending_sync.insert(new_id.clone());
        }
        if self.leader.as_deref() == Some(old_id) {
            self.leader = Some(new_id.clone());
        }
        self.static_members.insert(instance, new_id.clone());
        self.metrics.static_replacements += 1;
        self.members.insert(
            new_id.clone(),
            Member {
                id: new_id.clone(),
                instance_id: old.instance_id,
                client_id: req.client_id.clone(),
                owned: req.owned,
                assignment: old.assignment,
                awaiting_join: true,
                awaiting_sync: false,
                is_new: false,
                session_deadline: Some(now.saturating_add(self.config.session_timeout)),
            },
        );
        match self.state {
            GroupState::Stable => {
                // One protocol, so the selected protocol never changes: no rebalance. The
                // leader is told to skip the assignment; a follower is given the current
                // leader.
                let is_leader = self.leader.as_deref() == Some(new_id.as_str());
                let response = self.join_response(&new_id, is_leader);
                self.members
                    .get_mut(&new_id)
                    .expect("inserted")
                    .awaiting_join = false;
                out.push(join_ok(req.client_id, response));
            }
            GroupState::CompletingRebalance => {
                // The leader may be assigning to the old member id: start over.
                self.prepare_rebalance(now, RebalanceReason::MemberAdded(new_id), out);
            }
            GroupState::PreparingRebalance => self.maybe_complete_join_phase(now, out),
            GroupState::Empty | GroupState::Dead => {
                unreachable!(
                    "a static member exists, so the group is not {:?}",
                    self.state
                )
            }
        }
    }

    /// The JoinGroup response for `member_id` at the current generation.
    fn join_response(&self, member_id: &str, skip_assignment: bool) -> JoinResponse {
        let leader = self
            .leader
            .clone()
            .expect("a group with members has a leader");
        let members = if leader == member_id {
            self.members
                .values()
                .map(|m| JoinMember {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    owned: m.owned.clone(),
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinResponse {
            member_id: member_id.to_string(),
            generation: self.generation,
            leader,
            members,
            skip_assignment,
        }
    }

    // -----------------------------------------------------------------------------------------
    // Rebalance phases
    // -----------------------------------------------------------------------------------------

    fn can_rebalance(&self) -> bool {
        matches!(
            self.state,
            GroupState::Stable | GroupState::CompletingRebalance | GroupState::Empty
        )
    }

    fn all_members_joined(&self) -> bool {
        self.members.values().all(|m| m.awaiting_join)
    }

    fn maybe_prepare_rebalance_or_complete_join(
        &mut self,
        now: SimTime,
        reason: RebalanceReason,
        out: &mut Vec<Output>,
    ) {
        if self.can_rebalance() {
            self.prepare_rebalance(now, reason, out);
        } else {
            self.maybe_complete_join_phase(now, out);
        }
    }

    /// Completes the join phase if everyone has joined, except during the initial delay,
    /// which always runs its course.
    fn maybe_complete_join_phase(&mut self, now: SimTime, out: &mut Vec<Output>) {
        if self.state == GroupState::PreparingRebalance
            && self.previous_state != GroupState::Empty
            && self.all_members_joined()
        {
            self.complete_join(now, out);
        }
    }

    fn prepare_rebalance(&mut self, now: SimTime, reason: RebalanceReason, out: &mut Vec<Output>) {
        debug_assert!(self.can_rebalance(), "rebalance from {:?}", self.state);
        if self.state == GroupState::CompletingRebalance {
            // Parked SyncGroups are answered REBALANCE_IN_PROGRESS: those members rejoin.
            for member in self.members.values_mut() {
                member.assignment.clear();
            }
            self.propagate_sync(now, Err(GroupError::RebalanceInProgress), out);
        }
        self.pending_sync.clear();
        self.sync_deadline = None;
        let from = self.state;
        let initial = from == GroupState::Empty;
        self.previous_state = from;
        self.state = GroupState::PreparingRebalance;
        self.metrics.rebalances_total += 1;
        self.unstable_since.get_or_insert(now);
        out.push(Output::RebalanceStarted {
            at: now,
            generation: self.generation,
            from,
            reason,
        });
        if initial {
            let delay = self.config.initial_rebalance_delay;
            self.initial = Some(InitialDelay {
                delay,
                remaining: self.config.rebalance_timeout.saturating_sub(delay),
            });
            // `new_member_added` is not reset here: Kafka resets it only when it extends the
            // delay, so a flag left over from an earlier initial rebalance extends this one.
            self.join_deadline = Some(now.saturating_add(delay));
        } else if self.all_members_joined() {
            self.complete_join(now, out);
        } else {
            self.initial = None;
            self.join_deadline = Some(now.saturating_add(self.config.rebalance_timeout));
        }
    }

    /// The join deadline fired: the initial delay's next step, or the end of the join phase.
    fn on_join_deadline(&mut self, at: SimTime, out: &mut Vec<Output>) {
        self.join_deadline = None;
        match self.initial {
            Some(InitialDelay { delay, remaining })
                if self.new_member_added && !remaining.is_zero() =>
            {
                self.new_member_added = false;
                let next = self.config.initial_rebalance_delay.min(remaining);
                // Kafka subtracts the step that just ended, not the next one; so do we.
                self.initial = Some(InitialDelay {
                    delay: next,
                    remaining: remaining.saturating_sub(delay),
                });
                self.join_deadline = Some(at.saturating_add(next));
            }
            _ => self.complete_join(at, out),
        }
    }

    /// Kafka's `completeClassicGroupJoin`.
    fn complete_join(&mut self, now: SimTime, out: &mut Vec<Output>) {
        debug_assert_eq!(self.state, GroupState::PreparingRebalance);
        self.join_deadline = None;
        self.initial = None;
        let not_rejoined: Vec<MemberId> = self
            .members
            .values()
            .filter(|m| !m.awaiting_join && m.instance_id.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in not_rejoined {
            self.remove_member(&id);
            self.metrics.removed_not_rejoined += 1;
            out.push(Output::MemberRemoved {
                at: now,
                member_id: id,
                reason: RemoveReason::NotRejoined,
            });
        }
        if !self.members.is_empty() && !self.elect_joined_leader() {
            // Only static members are left and none rejoined: wait another rebalance timeout,
            // until their sessions expire.
            self.join_deadline = Some(now.saturating_add(self.config.rebalance_timeout));
            return;
        }
        self.generation += 1;
        if self.members.is_empty() {
            self.previous_state = self.state;
            self.state = GroupState::Empty;
            self.unstable_since = None;
            out.push(Output::Emptied {
                at: now,
                generation: self.generation,
            });
            return;
        }
        self.previous_state = self.state;
        self.state = GroupState::CompletingRebalance;
        let ids: Vec<MemberId> = self.members.keys().cloned().collect();
        for id in &ids {
            let awaiting = self.members[id].awaiting_join;
            if awaiting {
                let response = self.join_response(id, false);
                let member = self.members.get_mut(id).expect("listed");
                member.awaiting_join = false;
                out.push(join_ok(member.client_id.clone(), response));
            }
            let session_deadline = now.saturating_add(self.config.session_timeout);
            let member = self.members.get_mut(id).expect("listed");
            member.session_deadline = Some(session_deadline);
            member.is_new = false;
            self.pending_sync.insert(id.clone());
        }
        self.sync_deadline = Some((
            now.saturating_add(self.config.rebalance_timeout),
            self.generation,
        ));
    }

    /// Kafka's `maybeElectNewJoinedLeader`: keeps a leader that rejoined, else picks the
    /// first member (by id) that did; false if none did.
    fn elect_joined_leader(&mut self) -> bool {
        let Some(leader) = &self.leader else {
            return false;
        };
        if self.members[leader].awaiting_join {
            return true;
        }
        match self.members.values().find(|m| m.awaiting_join) {
            Some(m) => {
                self.leader = Some(m.id.clone());
                true
            }
            None => false,
        }
    }

    /// The leader's SyncGroup: store the assignment and answer every parked SyncGroup.
    fn complete_sync(&mut self, now: SimTime, mut assignment: Assignment, out: &mut Vec<Output>) {
        debug_assert_eq!(self.state, GroupState::CompletingRebalance);
        for (id, member) in self.members.iter_mut() {
            member.assignment = assignment.remove(id).unwrap_or_default();
        }
        self.propagate_sync(now, Ok(()), out);
        self.previous_state = self.state;
        self.state = GroupState::Stable;
        self.metrics.stabilized_total += 1;
        let since = self.unstable_since.take().unwrap_or(now);
        let took = now.saturating_duration_since(since);
        self.metrics.rebalance_time_total = self.metrics.rebalance_time_total.saturating_add(took);
        self.metrics.rebalance_time_max = self.metrics.rebalance_time_max.max(took);
        out.push(Output::Stabilized {
            at: now,
            generation: self.generation,
            took,
            members: self.members.len(),
        });
    }

    /// Answers every parked SyncGroup with its assignment (or `error`) and re-arms those
    /// members' sessions (Kafka's `propagateAssignment`).
    fn propagate_sync(
        &mut self,
        now: SimTime,
        result: Result<(), GroupError>,
        out: &mut Vec<Output>,
    ) {
        let session_deadline = now.saturating_add(self.config.session_timeout);
        for member in self.members.values_mut() {
            if member.awaiting_sync {
                member.awaiting_sync = false;
                member.session_deadline = Some(session_deadline);
                out.push(Output::Reply {
                    to: member.client_id.clone(),
                    response: Response::Sync(result.map(|()| member.assignment.clone())),
                });
            }
        }
    }

    fn remove_pending_sync(&mut self, member_id: &str) {
        self.pending_sync.remove(member_id);
        if self.pending_sync.is_empty() {
            self.sync_deadline = None;
        }
    }

    // -----------------------------------------------------------------------------------------
    // Removal and timers
    // -----------------------------------------------------------------------------------------

    /// Kafka's `validateMember`.
    fn validate_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), GroupError> {
        if let Some(instance) = instance_id {
            match self.static_members.get(instance) {
                None => return Err(GroupError::UnknownMemberId),
                Some(holder) if holder != member_id => return Err(GroupError::FencedInstanceId),
                Some(_) => {}
            }
        }
        if self.members.contains_key(member_id) {
            Ok(())
        } else {
            Err(GroupError::UnknownMemberId)
        }
    }

    fn remove_member(&mut self, id: &str) -> Member {
        let member = self.members.remove(id).expect("removing a member");
        if let Some(instance) = &member.instance_id {
            self.static_members.remove(instance);
        }
        if self.leader.as_deref() == Some(id) {
            self.leader = self.members.keys().next().cloned();
        }
        self.pending_sync.remove(id);
        member
    }

    /// Kafka's `removeMemberAndUpdateClassicGroup`: a parked JoinGroup is answered
    /// UNKNOWN_MEMBER_ID, then a rebalance starts or the join phase completes.
    fn remove_member_and_update(
        &mut self,
        now: SimTime,
        id: &str,
        reason: RemoveReason,
        out: &mut Vec<Output>,
    ) {
        let member = self.remove_member(id);
        if member.awaiting_join {
            out.push(join_error(member.client_id, GroupError::UnknownMemberId));
        }
        match reason {
            RemoveReason::SessionExpired => self.metrics.removed_session_expired += 1,
            RemoveReason::Left => self.metrics.removed_left += 1,
            RemoveReason::NotRejoined => self.metrics.removed_not_rejoined += 1,
            RemoveReason::SyncExpired => self.metrics.removed_sync_expired += 1,
        }
        out.push(Output::MemberRemoved {
            at: now,
            member_id: id.to_string(),
            reason,
        });
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(now, RebalanceReason::MemberRemoved(id.to_string()), out)
            }
            GroupState::PreparingRebalance if self.all_members_joined() => {
                self.complete_join(now, out)
            }
            _ => {}
        }
    }

    fn rearm_session(&mut self, member_id: &str, now: SimTime) {
        let deadline = now.saturating_add(self.config.session_timeout);
        self.members
            .get_mut(member_id)
            .expect("validated")
            .session_deadline = Some(deadline);
    }

    /// The earliest armed timer: its time, its kind, and for a session the member.
    fn next_timer(&self) -> Option<(SimTime, Timer, Option<MemberId>)> {
        let sessions = self.members.values().filter_map(|m| {
            m.session_deadline
                .map(|at| (at, Timer::Session, Some(m.id.clone())))
        });
        let sync = self.sync_deadline.map(|(at, _)| (at, Timer::Sync, None));
        let join = self.join_deadline.map(|at| (at, Timer::Join, None));
        sessions.chain(sync).chain(join).min()
    }

    fn advance(&mut self, now: SimTime, out: &mut Vec<Output>) {
        // Each firing disarms its timer or moves it later, so this ends; the bound guards
        // against a bug turning it into a hang.
        let mut fired = 0_usize;
        while let Some((at, timer, member)) = self.next_timer().filter(|(at, _, _)| *at <= now) {
            fired += 1;
            assert!(
                fired <= 4 * self.members.len() + 1_000,
                "group timers do not settle at {now}"
            );
            match timer {
                Timer::Session => self.on_session_deadline(at, &member.expect("a member"), out),
                Timer::Sync => self.on_sync_deadline(at, out),
                Timer::Join => self.on_join_deadline(at, out),
            }
            self.check_invariants();
        }
    }

    /// Kafka's `expireClassicGroupMemberHeartbeat`.
    fn on_session_deadline(&mut self, at: SimTime, id: &str, out: &mut Vec<Output>) {
        let member = self.members.get_mut(id).expect("a member's timer");
        member.session_deadline = None;
        let satisfied = !member.is_new && (member.awaiting_join || member.awaiting_sync);
        if !satisfied {
            self.remove_member_and_update(at, id, RemoveReason::SessionExpired, out);
        }
    }

    /// Kafka's `expirePendingSync`.
    fn on_sync_deadline(&mut self, at: SimTime, out: &mut Vec<Output>) {
        let (_, generation) = self.sync_deadline.take().expect("armed");
        let relevant = generation == self.generation
            && matches!(
                self.state,
                GroupState::CompletingRebalance | GroupState::Stable
            );
        if !relevant || self.pending_sync.is_empty() {
            return;
        }
        let expired: Vec<MemberId> = std::mem::take(&mut self.pending_sync).into_iter().collect();
        for id in &expired {
            self.remove_member(id);
            self.metrics.removed_sync_expired += 1;
            out.push(Output::MemberRemoved {
                at,
                member_id: id.clone(),
                reason: RemoveReason::SyncExpired,
            });
        }
        self.prepare_rebalance(at, RebalanceReason::SyncExpired, out);
    }

    fn check_invariants(&self) {
        if !cfg!(debug_assertions) {
            return;
        }
        assert_eq!(
            self.members.is_empty(),
            self.leader.is_none(),
            "leader iff members"
        );
        if let Some(leader) = &self.leader {
            assert!(
                self.members.contains_key(leader),
                "leader {leader} is a member"
            );
        }
        for (instance, id) in &self.static_members {
            let member = self.members.get(id).expect("static member is a member");
            assert_eq!(member.instance_id.as_ref(), Some(instance));
        }
        for member in self.members.values() {
            if let Some(instance) = &member.instance_id {
                assert_eq!(self.static_members.get(instance), Some(&member.id));
            }
            if member.awaiting_sync {
                assert_eq!(self.state, GroupState::CompletingRebalance, "parked sync");
            }
        }
        for id in &self.pending_sync {
            assert!(
                self.members.contains_key(id),
                "pending sync {id} is a member"
            );
        }
        match self.state {
            GroupState::Empty => {
                assert!(self.members.is_empty(), "Empty has no members");
                assert!(self.join_deadline.is_none());
            }
            GroupState::PreparingRebalance => {
                assert!(self.join_deadline.is_some(), "a join phase has a deadline");
                assert!(self.pending_sync.is_empty());
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                assert!(!self.members.is_empty());
                assert!(self.join_deadline.is_none());
                assert!(self.members.values().all(|m| !m.awaiting_join));
            }
            GroupState::Dead => unreachable!("never Dead"),
        }
    }
}

fn join_ok(to: ClientId, response: JoinResponse) -> Output {
    Output::Reply {
        to,
        response: Response::Join(Ok(response)),
    }
}

fn join_error(to: ClientId, error: GroupError) -> Output {
    Output::Reply {
        to,
        response: Response::Join(Err(error)),
    }
}
