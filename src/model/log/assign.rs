//! The consumer-group assignors: which member of a group consumes which partition, computed
//! as Kafka's own assignors compute it (apache/kafka, `clients/.../consumer/RangeAssignor`,
//! `RoundRobinAssignor`, `StickyAssignor`, `CooperativeStickyAssignor` and
//! `internals/AbstractStickyAssignor`), so a simulated group's rebalance moves the same
//! partitions a real group's would.
//!
//! - [`Assignor::Range`]: per topic, the partitions in order and the members sorted, divided
//!   into contiguous ranges; the first `partitions % members` members get one more. Each topic
//!   is divided on its own, so with many topics the first members get the extras of every one.
//! - [`Assignor::RoundRobin`]: every subscribed topic-partition sorted by (topic, partition),
//!   dealt one at a time to the sorted members in a circle, skipping a member not subscribed
//!   to the partition's topic.
//! - [`Assignor::Sticky`]: balanced (members' counts differ by at most one when all subscribe
//!   to the same topics), keeping each member's previous partitions as far as balance allows.
//!   When every member subscribes to the same topics this is Kafka's
//!   `ConstrainedAssignmentBuilder` step for step (see [`Assignor::Sticky`] for the one tie
//!   Kafka leaves to a `HashMap`, reproduced here); with unequal subscriptions it is a simpler
//!   algorithm with the same guarantees as Kafka's `GeneralAssignmentBuilder` but not always
//!   the same choices.
//! - [`Assignor::CooperativeSticky`]: the same target, but a partition that moves between two
//!   members still in the group is left out of this round's assignment — its owner revokes it
//!   first, and the next rebalance hands it over (KIP-429's two rounds). [`cooperative_split`]
//!   says, member by member, what is kept, revoked, assigned now and assigned in the follow-up.
//!
//! Member order. Range and round robin sort members as Kafka's `MemberInfo.compareTo` does:
//! static members (with a `group.instance.id`) first, by instance id, then dynamic members by
//! member id — so a restarted static member (new member id, same instance id) gets the same
//! partitions back. The sticky assignors sort by member id (Kafka sorts the member-id strings),
//! and a static member's stickiness comes from its previous partitions: the caller keys
//! `previous` by the member's *current* id, as Kafka's members report `ownedPartitions`
//! themselves. Strings compare byte-wise here and by UTF-16 unit in Java: the same order for
//! any id without characters beyond U+FFFF, which Kafka's generated ids never have.
//!
//! Output: every member appears in the [`Assignment`], possibly with no partitions, and each
//! member's partitions are sorted by (topic, partition). Kafka's lists carry an order, but no
//! consumer reads meaning into it; sorting makes assignments comparable.
//!
//! Cost, for `M` members and `P` partitions: range and round robin are `O(P log P + M log M)`
//! (round robin `O(P M)` in the worst case of unequal subscriptions); the sticky assignment
//! with equal subscriptions is `O((P + M) log(P + M))`; with unequal ones, `O(P M)` per
//! balancing move and at most `P` moves in practice — well under a millisecond for the groups
//! the simulator runs (a few hundred members, a few hundred partitions).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

/// A member of a consumer group, by its member id (Kafka's `member.id`).
pub type MemberId = String;

/// One partition of one topic.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: u32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: u32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

/// Each member's partitions.
pub type Assignment = BTreeMap<MemberId, Vec<TopicPartition>>;

/// What a member asks for when it joins: its topics and, for a static member, its
/// `group.instance.id`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub topics: Vec<String>,
    pub group_instance_id: Option<String>,
}

impl Subscription {
    /// A dynamic member subscribed to `topics`.
    pub fn to<I, T>(topics: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        Subscription {
            topics: topics.into_iter().map(Into::into).collect(),
            group_instance_id: None,
        }
    }

    /// The same subscription from a static member with `group.instance.id` `instance`.
    pub fn with_instance_id(mut self, instance: impl Into<String>) -> Self {
        self.group_instance_id = Some(instance.into());
        self
    }
}

/// Which rebalance protocol an assignor's members follow (Kafka's `RebalanceProtocol`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RebalanceProtocol {
    /// Every member revokes all its partitions before rejoining.
    Eager,
    /// Members keep what the new assignment leaves them and revoke only what moves.
    Cooperative,
}

/// A consumer group's partition assignment strategy (`partition.assignment.strategy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Assignor {
    /// `RangeAssignor`. The default: Kafka's default strategy is `[RangeAssignor,
    /// CooperativeStickyAssignor]`, "which will use the RangeAssignor by default"
    /// (`ConsumerConfig`, `partition.assignment.strategy`, Kafka 3.0 and later).
    #[default]
    Range,
    /// `RoundRobinAssignor`.
    RoundRobin,
    /// `StickyAssignor` (eager).
    ///
    /// With equal subscriptions, Kafka's constrained algorithm: with `P` partitions over `M`
    /// members, `min = P / M`, `max = ceil(P / M)`, and `P % M` members get `max`. Each member
    /// keeps its previous partitions (sorted by partition number, then topic) up to `min`, or
    /// up to `max` while fewer than `P % M` members have taken `max`; the rest are dealt round
    /// robin, sorted by (topic, partition), to the members under `min` (sorted by member id),
    /// and then one more each to members at `min` in the order they reached it. Which members
    /// get a `max` slot when more members own `max` partitions than there are slots depends,
    /// in Kafka, on the iteration order of a `java.util.HashMap` keyed by member id; that
    /// order is reproduced here (bucket `(h ^ h >>> 16) & (capacity - 1)` of Java's
    /// `String.hashCode`, capacity the power of two Java's default map grows to), ties in a
    /// bucket going to the smaller member id where Java would follow insertion order.
    ///
    /// With unequal subscriptions: previous partitions are kept where the member still
    /// subscribes to their topic; free partitions go, most constrained first (fewest eligible
    /// members, then topic and partition), to the eligible member with the fewest; then a
    /// partition moves from a member to an eligible one with at least two fewer until none
    /// can, which is Kafka's definition of "as balanced as possible".
    ///
    /// A partition claimed by several members in `previous` is kept by none of them (Kafka's
    /// rule for claims in the same generation).
    Sticky,
    /// `CooperativeStickyAssignor`: [`Sticky`](Self::Sticky)'s target, less the partitions
    /// that must first be revoked by another member still in the group (see
    /// [`cooperative_split`]).
    CooperativeSticky,
}

impl Assignor {
    /// Kafka's name for the strategy, as members advertise it in JoinGroup.
    pub fn name(&self) -> &'static str {
        match self {
            Assignor::Range => "range",
            Assignor::RoundRobin => "roundrobin",
            Assignor::Sticky => "sticky",
            Assignor::CooperativeSticky => "cooperative-sticky",
        }
    }

    /// The protocol the group follows with this assignor.
    pub fn protocol(&self) -> RebalanceProtocol {
        match self {
            Assignor::CooperativeSticky => RebalanceProtocol::Cooperative,
            _ => RebalanceProtocol::Eager,
        }
    }

    /// The assignment for `members` (ids distinct; any order) over `partitions_per_topic`
    /// (topic → partition count; topics no member subscribes to are ignored, and a subscribed
    /// topic missing from it has no partitions yet). `previous` is each member's partitions
    /// before this rebalance: only the sticky assignors read it, and entries of members no
    /// longer in `members` are ignored.
    pub fn assign(
        &self,
        members: &[(MemberId, Subscription)],
        partitions_per_topic: &BTreeMap<String, u32>,
        previous: &Assignment,
    ) -> Assignment {
        for (i, (id, _)) in members.iter().enumerate() {
            assert!(
                members[..i].iter().all(|(other, _)| other != id),
                "member id `{id}` appears twice"
            );
        }
        let assignment = match self {
            Assignor::Range => range(members, partitions_per_topic),
            Assignor::RoundRobin => round_robin(members, partitions_per_topic),
            Assignor::Sticky => sticky(members, partitions_per_topic, previous),
            Assignor::CooperativeSticky => {
                let target = sticky(members, partitions_per_topic, previous);
                let split = cooperative_split(members, previous, &target);
                split
                    .into_iter()
                    .map(|(id, change)| (id, change.assigned_now()))
                    .collect()
            }
        };
        debug_assert_eq!(assignment.len(), members.len());
        debug_assert!(no_partition_twice(&assignment));
        assignment
    }
}

/// What a cooperative rebalance does to one member (KIP-429).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemberChange {
    /// Owned before and after: consumed throughout the rebalance.
    pub keep: Vec<TopicPartition>,
    /// Owned before but not in this round's assignment: the member stops consuming them and
    /// commits, and rejoins so the group rebalances again.
    pub revoke: Vec<TopicPartition>,
    /// New to the member and assigned in this round: nobody still in the group owned them
    /// (their owner left, or they were unowned).
    pub assign_now: Vec<TopicPartition>,
    /// New to the member but still owned by another member, who revokes them in this round:
    /// assigned only in the follow-up rebalance.
    pub assign_later: Vec<TopicPartition>,
}

impl MemberChange {
    /// The member's assignment in this round: what it keeps and what it gets now, sorted.
    pub fn assigned_now(&self) -> Vec<TopicPartition> {
        let mut now: Vec<TopicPartition> =
            self.keep.iter().chain(&self.assign_now).cloned().collect();
        now.sort();
        now
    }
}

/// Splits the move from `previous` to `target` into cooperative steps, member by member (for
/// each of `members`): a partition new to a member is assigned at once if no other member
/// still in the group owned it in `previous`, and otherwise only after that owner revoked it,
/// in the follow-up round — Kafka's `CooperativeStickyAssignor.adjustAssignment`, which drops
/// from the assignment every partition "transferring ownership". A partition that several
/// members claimed in `previous` is revoked by all of them and assigned in the follow-up, as
/// Kafka invalidates such claims.
///
/// Eager protocols need no split: every member revokes everything, then gets its target.
pub fn cooperative_split(
    members: &[(MemberId, Subscription)],
    previous: &Assignment,
    target: &Assignment,
) -> BTreeMap<MemberId, MemberChange> {
    let present: BTreeSet<&str> = members.iter().map(|(id, _)| id.as_str()).collect();
    // Previous claims by members still present.
    let mut claims: BTreeMap<&TopicPartition, Vec<&str>> = BTreeMap::new();
    for (id, tps) in previous {
        if present.contains(id.as_str()) {
            for tp in tps {
                let who = claims.entry(tp).or_default();
                if !who.contains(&id.as_str()) {
                    who.push(id);
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    for (id, _) in members {
        let before: BTreeSet<&TopicPartition> = previous
            .get(id)
            .map(|tps| tps.iter().collect())
            .unwrap_or_default();
        let after: BTreeSet<&TopicPartition> = target
            .get(id)
            .map(|tps| tps.iter().collect())
            .unwrap_or_default();
        let mut change = MemberChange::default();
        for &tp in &after {
            let claimants = claims.get(tp).map(Vec::as_slice).unwrap_or(&[]);
            let contested = claimants.len() > 1;
            if before.contains(tp) && !contested {
                change.keep.push(tp.clone());
            } else if claimants.iter().any(|&c| c != id.as_str()) || contested {
                change.assign_later.push(tp.clone());
            } else {
                change.assign_now.push(tp.clone());
            }
        }
        for &tp in &before {
            if !change.keep.contains(tp) {
                change.revoke.push(tp.clone());
            }
        }
        debug_assert!(change.keep.len() + change.revoke.len() == before.len());
        debug_assert!(
            change.keep.len() + change.assign_now.len() + change.assign_later.len() == after.len()
        );
        out.insert(id.clone(), change);
    }
    out
}

/// True if no partition appears twice in `assignment` (in one member's list or two).
pub fn no_partition_twice(assignment: &Assignment) -> bool {
    let mut seen = BTreeSet::new();
    assignment
        .values()
        .flatten()
        .all(|tp| seen.insert((&tp.topic, tp.partition)))
}

// ---------------------------------------------------------------------------------------------
// Range and round robin
// ---------------------------------------------------------------------------------------------

/// Kafka's `MemberInfo.compareTo`: static members first, by `group.instance.id`; then dynamic
/// members by member id.
fn member_info_order(
    a: &(MemberId, Subscription),
    b: &(MemberId, Subscription),
) -> std::cmp::Ordering {
    match (&a.1.group_instance_id, &b.1.group_instance_id) {
        (Some(x), Some(y)) => x.cmp(y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        // Member ids are distinct, so this never ties; the instance-id comparison above can
        // (two static members with one instance id is a fenced-member bug), and then Java's
        // stable sort keeps input order, as `sort_by` does.
        (None, None) => a.0.cmp(&b.0),
    }
}

fn empty_assignment(members: &[(MemberId, Subscription)]) -> Assignment {
    members
        .iter()
        .map(|(id, _)| (id.clone(), Vec::new()))
        .collect()
}

fn finish(mut assignment: Assignment) -> Assignment {
    for tps in assignment.values_mut() {
        tps.sort();
    }
    assignment
}

/// `RangeAssignor.assign`: topic by topic, contiguous ranges over the sorted subscribers.
fn range(
    members: &[(MemberId, Subscription)],
    partitions_per_topic: &BTreeMap<String, u32>,
) -> Assignment {
    let mut assignment = empty_assignment(members);
    let mut per_topic: BTreeMap<&str, Vec<&(MemberId, Subscription)>> = BTreeMap::new();
    for member in members {
        let topics: BTreeSet<&str> = member.1.topics.iter().map(String::as_str).collect();
        for topic in topics {
            per_topic.entry(topic).or_default().push(member);
        }
    }
    for (topic, mut subscribers) in per_topic {
        let Some(&count) = partitions_per_topic.get(topic) else {
            continue;
        };
        subscribers.sort_by(|a, b| member_info_order(a, b));
        let m = subscribers.len() as u32;
        let per_member = count / m;
        let with_extra = count % m;
        for (i, member) in (0_u32..).zip(&subscribers) {
            let start = per_member * i + i.min(with_extra);
            let length = per_member + u32::from(i < with_extra);
            let tps = assignment
                .get_mut(&member.0)
                .expect("every member has an entry");
            tps.extend((start..start + length).map(|p| TopicPartition::new(topic, p)));
        }
        debug_assert_eq!(per_member * m + with_extra, count);
    }
    finish(assignment)
}

/// `RoundRobinAssignor.assign`: all subscribed partitions, sorted, dealt in a circle over the
/// sorted members, each partition to the next member subscribed to its topic.
fn round_robin(
    members: &[(MemberId, Subscription)],
    partitions_per_topic: &BTreeMap<String, u32>,
) -> Assignment {
    let mut assignment = empty_assignment(members);
    if members.is_empty() {
        return assignment;
    }
    let mut sorted: Vec<&(MemberId, Subscription)> = members.iter().collect();
    sorted.sort_by(|a, b| member_info_order(a, b));
    let topics: BTreeSet<&str> = members
        .iter()
        .flat_map(|(_, s)| s.topics.iter().map(String::as_str))
        .collect();
    let mut next = 0_usize;
    for topic in topics {
        let Some(&count) = partitions_per_topic.get(topic) else {
            continue;
        };
        for p in 0..count {
            // Kafka's CircularIterator: skip members not subscribed to the topic. Some member
            // is (the topic came from a subscription), so one lap finds it.
            let mut skipped = 0;
            while !sorted[next].1.topics.iter().any(|t| t == topic) {
                next = (next + 1) % sorted.len();
                skipped += 1;
                assert!(skipped < sorted.len(), "a subscriber of {topic} exists");
            }
            let tps = assignment
                .get_mut(&sorted[next].0)
                .expect("every member has an entry");
            tps.push(TopicPartition::new(topic, p));
            next = (next + 1) % sorted.len();
        }
    }
    finish(assignment)
}

// ---------------------------------------------------------------------------------------------
// Sticky
// ---------------------------------------------------------------------------------------------

/// Java's `String.hashCode`: `s[0] 31^(n-1) + ... + s[n-1]` over UTF-16 code units, wrapping.
fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0_i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// The order in which a `java.util.HashMap<String, _>` built by `n` plain `put`s iterates its
/// keys: by bucket, `spread(hashCode) & (capacity - 1)`, with the capacity Java's default map
/// (16, load factor 0.75, doubling) has after `n` insertions. Keys sharing a bucket iterate in
/// insertion order in Java; here the smaller id goes first.
fn java_hash_map_order(ids: &[&MemberId]) -> Vec<MemberId> {
    let mut capacity = 16_usize;
    while ids.len() > capacity / 4 * 3 {
        capacity *= 2;
    }
    let bucket = |id: &str| {
        let h = java_string_hash(id) as u32;
        ((h ^ (h >> 16)) as usize) & (capacity - 1)
    };
    let mut order: Vec<MemberId> = ids.iter().map(|id| (*id).clone()).collect();
    order.sort_by(|a, b| bucket(a).cmp(&bucket(b)).then_with(|| a.cmp(b)));
    order
}

/// The sticky target assignment (both sticky assignors).
fn sticky(
    members: &[(MemberId, Subscription)],
    partitions_per_topic: &BTreeMap<String, u32>,
    previous: &Assignment,
) -> Assignment {
    if members.is_empty() {
        return Assignment::new();
    }
    let subscriptions: BTreeMap<&MemberId, BTreeSet<&str>> = members
        .iter()
        .map(|(id, s)| (id, s.topics.iter().map(String::as_str).collect()))
        .collect();
    // The group's topics that exist: Kafka's `partitionsPerTopic` holds exactly these.
    let topics: BTreeMap<&str, u32> = subscriptions
        .values()
        .flatten()
        .filter_map(|&t| partitions_per_topic.get(t).map(|&n| (t, n)))
        .collect();
    let exists = |tp: &TopicPartition| {
        topics
            .get(tp.topic.as_str())
            .is_some_and(|&n| tp.partition < n)
    };
    // Previous claims of present members on existing partitions; a partition claimed twice is
    // nobody's.
    let mut claimants: BTreeMap<&TopicPartition, usize> = BTreeMap::new();
    for (id, tps) in previous {
        if subscriptions.contains_key(id) {
            let unique: BTreeSet<&TopicPartition> = tps.iter().filter(|tp| exists(tp)).collect();
            for tp in unique {
                *claimants.entry(tp).or_default() += 1;
            }
        }
    }
    let owned: BTreeMap<&MemberId, Vec<TopicPartition>> = subscriptions
        .keys()
        .map(|&id| {
            let mine: BTreeSet<&TopicPartition> = previous
                .get(id)
                .map(|tps| {
                    tps.iter()
                        .filter(|tp| exists(tp) && claimants.get(tp) == Some(&1))
                        .collect()
                })
                .unwrap_or_default();
            (id, mine.into_iter().cloned().collect())
        })
        .collect();
    let first = subscriptions.values().next().expect("members is not empty");
    let all_equal = subscriptions.values().all(|s| s == first);
    let assignment = if all_equal {
        constrained(&topics, &owned)
    } else {
        general(&subscriptions, &topics, &owned)
    };
    finish(assignment)
}

/// Kafka's `ConstrainedAssignmentBuilder.build` (all members subscribe to the same topics),
/// without racks.
fn constrained(
    topics: &BTreeMap<&str, u32>,
    owned: &BTreeMap<&MemberId, Vec<TopicPartition>>,
) -> Assignment {
    let n = owned.len();
    let total: usize = topics.values().map(|&c| c as usize).sum();
    let min_quota = total / n;
    let max_quota = total.div_ceil(n);
    let expected_over = total % n;
    let mut current_over = 0_usize;
    let mut assignment: Assignment = owned.keys().map(|&id| (id.clone(), Vec::new())).collect();
    let mut assigned: BTreeSet<TopicPartition> = BTreeSet::new();
    let mut under_min: Vec<MemberId> = Vec::new();
    let mut exactly_min: VecDeque<MemberId> = VecDeque::new();

    // Step 1, `assignOwnedPartitions`, in Kafka's HashMap order (it decides who gets the
    // `max_quota` slots when more members could take one than there are).
    let ids: Vec<&MemberId> = owned.keys().copied().collect();
    for id in java_hash_map_order(&ids) {
        let mut mine = owned[&id].clone();
        // Kafka keeps the lowest partition numbers first, across topics.
        mine.sort_by(|a, b| {
            a.partition
                .cmp(&b.partition)
                .then_with(|| a.topic.cmp(&b.topic))
        });
        let keep = if mine.len() < min_quota {
            under_min.push(id.clone());
            mine.len()
        } else if mine.len() >= max_quota && current_over < expected_over {
            current_over += 1;
            if current_over == expected_over {
                exactly_min.clear();
            }
            max_quota
        } else {
            if current_over < expected_over {
                exactly_min.push_back(id.clone());
            }
            min_quota
        };
        // Beyond `keep`, the member's partitions are revoked and dealt below.
        mine.truncate(keep);
        assigned.extend(mine.iter().cloned());
        assignment.get_mut(&id).expect("entry").extend(mine);
    }
    under_min.sort();
    exactly_min.make_contiguous().sort();

    // Step 3, `assignRoundRobin` (step 2 is rack-aware only): the unassigned partitions in
    // (topic, partition) order, dealt over the members under `min_quota`, then one each to the
    // members at `min_quota` in the order they got there. `at` plays Java's iterator over the
    // linked list: the index of the next member to return.
    let mut at = 0_usize;
    for (&topic, &count) in topics {
        for p in 0..count {
            let tp = TopicPartition::new(topic, p);
            if assigned.contains(&tp) {
                continue;
            }
            let from_iterator;
            let member = if at < under_min.len() {
                at += 1;
                from_iterator = true;
                under_min[at - 1].clone()
            } else if !under_min.is_empty() {
                at = 1;
                from_iterator = true;
                under_min[0].clone()
            } else {
                from_iterator = false;
                exactly_min
                    .pop_front()
                    .expect("the quotas leave a member for every partition")
            };
            let tps = assignment.get_mut(&member).expect("entry");
            tps.push(tp);
            let count_now = tps.len();
            if count_now == min_quota {
                // Only a member from the iterator can reach `min_quota` here: one from
                // `exactly_min` already had it.
                assert!(
                    from_iterator,
                    "a member at min_quota got one more and is at min_quota"
                );
                at -= 1;
                under_min.remove(at);
                exactly_min.push_back(member);
            } else if count_now == max_quota {
                current_over += 1;
            }
        }
    }
    debug_assert!(current_over <= expected_over);
    debug_assert!(
        assignment
            .values()
            .all(|tps| tps.len() == min_quota || tps.len() == max_quota)
    );
    assignment
}

/// The sticky assignment for unequal subscriptions: keep, fill the most constrained first, then
/// move partitions until no member could take one from a member with two more.
fn general(
    subscriptions: &BTreeMap<&MemberId, BTreeSet<&str>>,
    topics: &BTreeMap<&str, u32>,
    owned: &BTreeMap<&MemberId, Vec<TopicPartition>>,
) -> Assignment {
    let ids: Vec<&MemberId> = subscriptions.keys().copied().collect();
    let index: BTreeMap<&MemberId, usize> =
        ids.iter().enumerate().map(|(i, &id)| (id, i)).collect();
    // Each partition's eligible members, by index (sorted by member id).
    let mut eligible: BTreeMap<TopicPartition, Vec<usize>> = BTreeMap::new();
    for (&topic, &count) in topics {
        let who: Vec<usize> = ids
            .iter()
            .enumerate()
            .filter(|(_, id)| subscriptions[*id].contains(topic))
            .map(|(i, _)| i)
            .collect();
        for p in 0..count {
            eligible.insert(TopicPartition::new(topic, p), who.clone());
        }
    }
    let mut held: Vec<BTreeSet<TopicPartition>> = vec![BTreeSet::new(); ids.len()];
    let mut previously: Vec<BTreeSet<&TopicPartition>> = vec![BTreeSet::new(); ids.len()];
    for (id, tps) in owned {
        let i = index[id];
        for tp in tps {
            previously[i].insert(tp);
            if subscriptions[id].contains(tp.topic.as_str()) {
                held[i].insert(tp.clone());
            }
        }
    }
    let taken: BTreeSet<TopicPartition> = held.iter().flatten().cloned().collect();
    let mut free: Vec<(&TopicPartition, &Vec<usize>)> = eligible
        .iter()
        .filter(|(tp, who)| !who.is_empty() && !taken.contains(*tp))
        .collect();
    free.sort_by(|a, b| a.1.len().cmp(&b.1.len()).then_with(|| a.0.cmp(b.0)));
    for (tp, who) in free {
        let &to = who
            .iter()
            .min_by_key(|&&i| (held[i].len(), i))
            .expect("not empty");
        held[to].insert(tp.clone());
    }
    // Balance. Each move lowers the sum of squared counts by at least 2, which bounds the loop.
    let mut budget: usize = held.iter().map(|h| h.len() * h.len()).sum::<usize>() / 2 + 1;
    loop {
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by(|&a, &b| held[b].len().cmp(&held[a].len()).then_with(|| a.cmp(&b)));
        let mut found = None;
        'search: for &from in &order {
            // Partitions the member did not own before move first: keep the old ones put.
            let mut candidates: Vec<&TopicPartition> = held[from].iter().collect();
            candidates.sort_by_key(|tp| (previously[from].contains(tp), *tp));
            for tp in candidates {
                let best = eligible[tp]
                    .iter()
                    .filter(|&&to| to != from && held[to].len() + 2 <= held[from].len())
                    .min_by_key(|&&to| (held[to].len(), to));
                if let Some(&to) = best {
                    found = Some((tp.clone(), from, to));
                    break 'search;
                }
            }
        }
        let Some((tp, from, to)) = found else {
            break;
        };
        assert!(budget > 0, "balancing terminates");
        budget -= 1;
        held[from].remove(&tp);
        held[to].insert(tp);
    }
    ids.iter()
        .zip(held)
        .map(|(&id, tps)| (id.clone(), tps.into_iter().collect()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::rng::{SimRng, stream};
    use rand::RngExt;

    fn tp(topic: &str, partition: u32) -> TopicPartition {
        TopicPartition::new(topic, partition)
    }

    fn members(spec: &[(&str, &[&str])]) -> Vec<(MemberId, Subscription)> {
        spec.iter()
            .map(|(id, topics)| (id.to_string(), Subscription::to(topics.iter().copied())))
            .collect()
    }

    fn topics(spec: &[(&str, u32)]) -> BTreeMap<String, u32> {
        spec.iter().map(|(t, n)| (t.to_string(), *n)).collect()
    }

    fn assignment(spec: &[(&str, &[TopicPartition])]) -> Assignment {
        spec.iter()
            .map(|(id, tps)| {
                let mut tps = tps.to_vec();
                tps.sort();
                (id.to_string(), tps)
            })
            .collect()
    }

    fn none() -> Assignment {
        Assignment::new()
    }

    // --- Range ---------------------------------------------------------------------------

    #[test]
    fn range_reproduces_kafkas_javadoc_example() {
        // RangeAssignor's javadoc: C0, C1; t0, t1 with 3 partitions each.
        let m = members(&[("C0", &["t0", "t1"]), ("C1", &["t0", "t1"])]);
        let got = Assignor::Range.assign(&m, &topics(&[("t0", 3), ("t1", 3)]), &none());
        let want = assignment(&[
            ("C0", &[tp("t0", 0), tp("t0", 1), tp("t1", 0), tp("t1", 1)]),
            ("C1", &[tp("t0", 2), tp("t1", 2)]),
        ]);
        assert_eq!(got, want);
    }

    #[test]
    fn range_gives_the_first_members_one_extra_in_contiguous_ranges() {
        // 10 partitions over 4 members: 3, 3, 2, 2, in member-id order whatever the input
        // order.
        let m = members(&[("d", &["t"]), ("b", &["t"]), ("a", &["t"]), ("c", &["t"])]);
        let got = Assignor::Range.assign(&m, &topics(&[("t", 10)]), &none());
        let range = |lo: u32, hi: u32| (lo..hi).map(|p| tp("t", p)).collect::<Vec<_>>();
        assert_eq!(got["a"], range(0, 3));
        assert_eq!(got["b"], range(3, 6));
        assert_eq!(got["c"], range(6, 8));
        assert_eq!(got["d"], range(8, 10));
        // More members than partitions: the last ones get nothing, but appear.
        let got = Assignor::Range.assign(&m, &topics(&[("t", 2)]), &none());
        assert_eq!(got["a"], vec![tp("t", 0)]);
        assert_eq!(got["b"], vec![tp("t", 1)]);
        assert!(got["c"].is_empty());
        assert!(got["d"].is_empty());
    }

    #[test]
    fn range_divides_each_topic_among_its_own_subscribers() {
        // a: t0; b: t0, t1; c: t1. t0 over (a, b), t1 over (b, c); unknown topics ignored.
        let m = members(&[("a", &["t0", "nope"]), ("b", &["t0", "t1"]), ("c", &["t1"])]);
        let got = Assignor::Range.assign(&m, &topics(&[("t0", 3), ("t1", 1), ("t9", 4)]), &none());
        assert_eq!(got["a"], vec![tp("t0", 0), tp("t0", 1)]);
        assert_eq!(got["b"], vec![tp("t0", 2), tp("t1", 0)]);
        assert!(got["c"].is_empty());
    }

    #[test]
    fn static_members_sort_first_by_instance_id() {
        // MemberInfo.compareTo: instance ids first (z-1 < z-2), then member ids.
        let m = vec![
            ("m-a".to_string(), Subscription::to(["t"])),
            (
                "m-b".to_string(),
                Subscription::to(["t"]).with_instance_id("z-2"),
            ),
            (
                "m-c".to_string(),
                Subscription::to(["t"]).with_instance_id("z-1"),
            ),
        ];
        let got = Assignor::Range.assign(&m, &topics(&[("t", 3)]), &none());
        assert_eq!(got["m-c"], vec![tp("t", 0)]);
        assert_eq!(got["m-b"], vec![tp("t", 1)]);
        assert_eq!(got["m-a"], vec![tp("t", 2)]);
        // A restarted static member (new member id, same instance id) gets the same range.
        let mut restarted = m.clone();
        restarted[1].0 = "m-zzz".to_string();
        let again = Assignor::Range.assign(&restarted, &topics(&[("t", 3)]), &none());
        assert_eq!(again["m-zzz"], got["m-b"]);
        let rr = Assignor::RoundRobin.assign(&m, &topics(&[("t", 3)]), &none());
        assert_eq!(rr, got);
    }

    // --- Round robin -----------------------------------------------------------------------

    #[test]
    fn round_robin_reproduces_kafkas_javadoc_examples() {
        // RoundRobinAssignor's javadoc, identical subscriptions.
        let m = members(&[("C0", &["t0", "t1"]), ("C1", &["t0", "t1"])]);
        let got = Assignor::RoundRobin.assign(&m, &topics(&[("t0", 3), ("t1", 3)]), &none());
        let want = assignment(&[
            ("C0", &[tp("t0", 0), tp("t0", 2), tp("t1", 1)]),
            ("C1", &[tp("t0", 1), tp("t1", 0), tp("t1", 2)]),
        ]);
        assert_eq!(got, want);
        // Differing subscriptions: C0 t0; C1 t0, t1; C2 t0, t1, t2; 1, 2, 3 partitions.
        let m = members(&[
            ("C0", &["t0"]),
            ("C1", &["t0", "t1"]),
            ("C2", &["t0", "t1", "t2"]),
        ]);
        let got =
            Assignor::RoundRobin.assign(&m, &topics(&[("t0", 1), ("t1", 2), ("t2", 3)]), &none());
        let want = assignment(&[
            ("C0", &[tp("t0", 0)]),
            ("C1", &[tp("t1", 0)]),
            ("C2", &[tp("t1", 1), tp("t2", 0), tp("t2", 1), tp("t2", 2)]),
        ]);
        assert_eq!(got, want);
    }

    fn four_topics_two_partitions() -> BTreeMap<String, u32> {
        topics(&[("t0", 2), ("t1", 2), ("t2", 2), ("t3", 2)])
    }

    const ALL4: &[&str] = &["t0", "t1", "t2", "t3"];

    #[test]
    fn round_robin_reproduces_the_sticky_javadocs_first_example() {
        // StickyAssignor's javadoc, example 1: round robin (and sticky, fresh) give this...
        let m = members(&[("C0", ALL4), ("C1", ALL4), ("C2", ALL4)]);
        let want = assignment(&[
            ("C0", &[tp("t0", 0), tp("t1", 1), tp("t3", 0)]),
            ("C1", &[tp("t0", 1), tp("t2", 0), tp("t3", 1)]),
            ("C2", &[tp("t1", 0), tp("t2", 1)]),
        ]);
        assert_eq!(
            Assignor::RoundRobin.assign(&m, &four_topics_two_partitions(), &none()),
            want
        );
        assert_eq!(
            Assignor::Sticky.assign(&m, &four_topics_two_partitions(), &none()),
            want
        );
        // ...and once C1 leaves, round robin reshuffles.
        let m = members(&[("C0", ALL4), ("C2", ALL4)]);
        let got = Assignor::RoundRobin.assign(&m, &four_topics_two_partitions(), &want);
        let rr = assignment(&[
            ("C0", &[tp("t0", 0), tp("t1", 0), tp("t2", 0), tp("t3", 0)]),
            ("C2", &[tp("t0", 1), tp("t1", 1), tp("t2", 1), tp("t3", 1)]),
        ]);
        assert_eq!(got, rr);
    }

    // --- Sticky ------------------------------------------------------------------------------

    #[test]
    fn sticky_keeps_every_partition_when_c1_leaves_javadoc_example_1() {
        let before = assignment(&[
            ("C0", &[tp("t0", 0), tp("t1", 1), tp("t3", 0)]),
            ("C1", &[tp("t0", 1), tp("t2", 0), tp("t3", 1)]),
            ("C2", &[tp("t1", 0), tp("t2", 1)]),
        ]);
        let m = members(&[("C0", ALL4), ("C2", ALL4)]);
        let got = Assignor::Sticky.assign(&m, &four_topics_two_partitions(), &before);
        // The javadoc's point: all of C0's and C2's partitions stay. Its exact split of C1's
        // three (C0 t2p0; C2 t0p1, t3p1) is that of the original 0.11 algorithm; today's
        // constrained algorithm deals them round robin in (topic, partition) order to the
        // members under quota, C0 then C2, and C2 again: C0 t0p1; C2 t2p0, t3p1.
        let want = assignment(&[
            ("C0", &[tp("t0", 0), tp("t1", 1), tp("t3", 0), tp("t0", 1)]),
            ("C2", &[tp("t1", 0), tp("t2", 1), tp("t2", 0), tp("t3", 1)]),
        ]);
        assert_eq!(got, want);
    }

    #[test]
    fn sticky_reproduces_the_javadocs_second_example_with_unequal_subscriptions() {
        let partitions = topics(&[("t0", 1), ("t1", 2), ("t2", 3)]);
        let m = members(&[
            ("C0", &["t0"]),
            ("C1", &["t0", "t1"]),
            ("C2", &["t0", "t1", "t2"]),
        ]);
        let first = Assignor::Sticky.assign(&m, &partitions, &none());
        let want = assignment(&[
            ("C0", &[tp("t0", 0)]),
            ("C1", &[tp("t1", 0), tp("t1", 1)]),
            ("C2", &[tp("t2", 0), tp("t2", 1), tp("t2", 2)]),
        ]);
        assert_eq!(first, want);
        // C0 leaves: sticky preserves all 5 other assignments.
        let m = members(&[("C1", &["t0", "t1"]), ("C2", &["t0", "t1", "t2"])]);
        let second = Assignor::Sticky.assign(&m, &partitions, &first);
        let want = assignment(&[
            ("C1", &[tp("t1", 0), tp("t1", 1), tp("t0", 0)]),
            ("C2", &[tp("t2", 0), tp("t2", 1), tp("t2", 2)]),
        ]);
        assert_eq!(second, want);
    }

    /// apache/kafka `AbstractStickyAssignorTest`, the cases with exact expected assignments
    /// (consumer1.. as there; previous = the `ownedPartitions` of `buildSubscriptionV2Above`).
    #[test]
    fn sticky_matches_kafkas_abstract_sticky_assignor_tests() {
        let c = |i: u32| format!("consumer{i}");
        let both = ["topic1", "topic2"];
        let group = |n: u32| -> Vec<(MemberId, Subscription)> {
            (1..=n).map(|i| (c(i), Subscription::to(both))).collect()
        };
        let t1 = |p| tp("topic1", p);
        let t2 = |p| tp("topic2", p);
        let check = |got: &Assignment, want: &[(u32, Vec<TopicPartition>)]| {
            for (i, tps) in want {
                let mut tps = tps.clone();
                tps.sort();
                assert_eq!(got[&c(*i)], tps, "consumer{i}");
            }
        };
        // testTwoConsumersTwoTopicsSixPartitions.
        let got =
            Assignor::Sticky.assign(&group(2), &topics(&[("topic1", 3), ("topic2", 3)]), &none());
        check(
            &got,
            &[
                (1, vec![t1(0), t1(2), t2(1)]),
                (2, vec![t1(1), t2(0), t2(2)]),
            ],
        );
        // testConsumerOwningMinQuotaExpectedMaxQuota.
        let prev: Assignment = [(c(1), vec![t1(0), t2(1)]), (c(2), vec![t1(1), t2(2)])].into();
        let got =
            Assignor::Sticky.assign(&group(2), &topics(&[("topic1", 2), ("topic2", 3)]), &prev);
        check(
            &got,
            &[(1, vec![t1(0), t2(1), t2(0)]), (2, vec![t1(1), t2(2)])],
        );
        // testMaxQuotaConsumerMoreThanNumExpectedMaxCapacityMembers: consumer2 wins the one
        // max-quota slot because Java's HashMap iterates it before consumer1.
        let prev: Assignment = [
            (c(1), vec![t1(0), t2(0)]),
            (c(2), vec![t1(1), t2(1)]),
            (c(3), vec![]),
        ]
        .into();
        let partitions = topics(&[("topic1", 2), ("topic2", 2)]);
        let got = Assignor::Sticky.assign(&group(3), &partitions, &prev);
        check(
            &got,
            &[(1, vec![t1(0)]), (2, vec![t1(1), t2(1)]), (3, vec![t2(0)])],
        );
        // ...and the cooperative assignor holds t2p0 back for a round (transferring to 3).
        let coop = Assignor::CooperativeSticky.assign(&group(3), &partitions, &prev);
        check(
            &coop,
            &[(1, vec![t1(0)]), (2, vec![t1(1), t2(1)]), (3, vec![])],
        );
        // testAllConsumersAreUnderMinQuota.
        let prev: Assignment = [(c(1), vec![t1(0)]), (c(2), vec![t1(1)])].into();
        let got =
            Assignor::Sticky.assign(&group(3), &topics(&[("topic1", 2), ("topic2", 3)]), &prev);
        check(
            &got,
            &[
                (1, vec![t1(0), t2(1)]),
                (2, vec![t1(1), t2(2)]),
                (3, vec![t2(0)]),
            ],
        );
        // testAddRemoveTwoConsumersTwoTopics: fresh, add two, remove two.
        let partitions = topics(&[("topic1", 3), ("topic2", 4)]);
        let a1 = Assignor::Sticky.assign(&group(2), &partitions, &none());
        check(
            &a1,
            &[
                (1, vec![t1(0), t1(2), t2(1), t2(3)]),
                (2, vec![t1(1), t2(0), t2(2)]),
            ],
        );
        let a2 = Assignor::Sticky.assign(&group(4), &partitions, &a1);
        check(
            &a2,
            &[
                (1, vec![t1(0), t2(1)]),
                (2, vec![t2(0), t1(1)]),
                (3, vec![t1(2), t2(3)]),
                (4, vec![t2(2)]),
            ],
        );
        // partitionsTransferringOwnership = {t1p2 -> 3, t2p3 -> 3, t2p2 -> 4}.
        let split = cooperative_split(&group(4), &a1, &a2);
        assert_eq!(split[&c(3)].assign_later, vec![t1(2), t2(3)]);
        assert_eq!(split[&c(4)].assign_later, vec![t2(2)]);
        assert_eq!(split[&c(1)].revoke, vec![t1(2), t2(3)]);
        assert_eq!(split[&c(2)].revoke, vec![t2(2)]);
        let last_two: Vec<(MemberId, Subscription)> = group(4).split_off(2);
        let a3 = Assignor::Sticky.assign(&last_two, &partitions, &a2);
        check(
            &a3,
            &[
                (3, vec![t1(2), t2(3), t1(0), t2(1)]),
                (4, vec![t2(2), t1(1), t2(0)]),
            ],
        );
        // Departed owners' partitions are assigned at once: nothing transfers.
        let split = cooperative_split(&last_two, &a2, &a3);
        assert!(
            split
                .values()
                .all(|ch| ch.assign_later.is_empty() && ch.revoke.is_empty())
        );
        // testMultipleConsumersMixedTopicSubscriptions (the general case).
        let m = vec![
            (c(1), Subscription::to(["topic1"])),
            (c(2), Subscription::to(both)),
            (c(3), Subscription::to(["topic1"])),
        ];
        let got = Assignor::Sticky.assign(&m, &topics(&[("topic1", 3), ("topic2", 2)]), &none());
        check(
            &got,
            &[
                (1, vec![t1(0), t1(2)]),
                (2, vec![t2(0), t2(1)]),
                (3, vec![t1(1)]),
            ],
        );
    }

    #[test]
    fn sticky_one_topic_add_and_remove_like_kafkas_test() {
        // testAddRemoveConsumerOneTopic: "consumer" alone, then with consumer2, then alone.
        let partitions = topics(&[("topic", 3)]);
        let one = members(&[("consumer1", &["topic"])]);
        let two = members(&[("consumer1", &["topic"]), ("consumer2", &["topic"])]);
        let a1 = Assignor::Sticky.assign(&one, &partitions, &none());
        assert_eq!(
            a1["consumer1"],
            vec![tp("topic", 0), tp("topic", 1), tp("topic", 2)]
        );
        let a2 = Assignor::Sticky.assign(&two, &partitions, &a1);
        assert_eq!(a2["consumer1"], vec![tp("topic", 0), tp("topic", 1)]);
        assert_eq!(a2["consumer2"], vec![tp("topic", 2)]);
        // Cooperative: round one leaves p2 unassigned while consumer1 revokes it.
        let round1 = Assignor::CooperativeSticky.assign(&two, &partitions, &a1);
        assert_eq!(round1["consumer1"], vec![tp("topic", 0), tp("topic", 1)]);
        assert!(round1["consumer2"].is_empty());
        let split = cooperative_split(&two, &a1, &a2);
        assert_eq!(
            split["consumer1"].keep,
            vec![tp("topic", 0), tp("topic", 1)]
        );
        assert_eq!(split["consumer1"].revoke, vec![tp("topic", 2)]);
        assert_eq!(split["consumer2"].assign_later, vec![tp("topic", 2)]);
        assert!(split["consumer2"].assign_now.is_empty());
        // Round two, from what the members own after round one: p2 goes to consumer2.
        let round2 = Assignor::CooperativeSticky.assign(&two, &partitions, &round1);
        assert_eq!(round2, a2);
        // consumer1 leaves: consumer2 keeps p2 and takes the rest at once.
        let alone = members(&[("consumer2", &["topic"])]);
        let a3 = Assignor::CooperativeSticky.assign(&alone, &partitions, &a2);
        assert_eq!(
            a3["consumer2"],
            vec![tp("topic", 0), tp("topic", 1), tp("topic", 2)]
        );
    }

    #[test]
    fn java_hash_map_order_is_javas() {
        // String.hashCode("consumer1") = 0xe6e7fafb: buckets of a 16-slot table are 12, 11, 10
        // and 9 for consumer1..4, so Java iterates them backwards.
        assert_eq!(java_string_hash("consumer1") as u32, 0xe6e7_fafb);
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("ab"), 97 * 31 + 98);
        let ids: Vec<MemberId> = (1..=4).map(|i| format!("consumer{i}")).collect();
        let refs: Vec<&MemberId> = ids.iter().collect();
        assert_eq!(
            java_hash_map_order(&refs),
            vec!["consumer4", "consumer3", "consumer2", "consumer1"]
        );
    }

    #[test]
    fn cooperative_split_classifies_every_partition() {
        let m = members(&[("a", &["t"]), ("b", &["t"]), ("c", &["t"])]);
        let prev = assignment(&[
            ("a", &[tp("t", 0), tp("t", 1), tp("t", 2)]),
            ("b", &[tp("t", 3)]),
            ("gone", &[tp("t", 4)]),
        ]);
        let target = assignment(&[
            ("a", &[tp("t", 0), tp("t", 1)]),
            ("b", &[tp("t", 3), tp("t", 4)]),
            ("c", &[tp("t", 2), tp("t", 5)]),
        ]);
        let s = cooperative_split(&m, &prev, &target);
        assert_eq!(s["a"].keep, vec![tp("t", 0), tp("t", 1)]);
        assert_eq!(s["a"].revoke, vec![tp("t", 2)]);
        assert_eq!(s["b"].keep, vec![tp("t", 3)]);
        // Its owner left: no one to wait for.
        assert_eq!(s["b"].assign_now, vec![tp("t", 4)]);
        // t2 waits for a's revocation; t5 was nobody's.
        assert_eq!(s["c"].assign_later, vec![tp("t", 2)]);
        assert_eq!(s["c"].assign_now, vec![tp("t", 5)]);
        assert!(!s.contains_key("gone"));
        // A partition two members claim is revoked by both and handed over later.
        let prev = assignment(&[("a", &[tp("t", 0)]), ("b", &[tp("t", 0)])]);
        let target = assignment(&[("a", &[tp("t", 0)]), ("b", &[]), ("c", &[])]);
        let s = cooperative_split(&m, &prev, &target);
        assert_eq!(s["a"].revoke, vec![tp("t", 0)]);
        assert_eq!(s["a"].assign_later, vec![tp("t", 0)]);
        assert_eq!(s["b"].revoke, vec![tp("t", 0)]);
    }

    #[test]
    fn sticky_ignores_claims_that_are_invalid() {
        let m = members(&[("a", &["t"]), ("b", &["t"])]);
        let partitions = topics(&[("t", 4)]);
        // Doubly claimed t0 is nobody's; t9 does not exist; "u" is not subscribed.
        let prev = assignment(&[
            ("a", &[tp("t", 0), tp("t", 1), tp("t", 9), tp("u", 0)]),
            ("b", &[tp("t", 0), tp("t", 2)]),
        ]);
        let got = Assignor::Sticky.assign(&m, &partitions, &prev);
        assert!(got["a"].contains(&tp("t", 1)));
        assert!(got["b"].contains(&tp("t", 2)));
        assert_eq!(got["a"].len() + got["b"].len(), 4);
        assert!(no_partition_twice(&got));
        // No members: nothing to assign; no partitions: everyone empty.
        assert!(Assignor::Sticky.assign(&[], &partitions, &prev).is_empty());
        let empty = Assignor::Sticky.assign(&m, &BTreeMap::new(), &prev);
        assert!(empty.values().all(Vec::is_empty));
        assert_eq!(empty.len(), 2);
    }

    #[test]
    fn names_protocols_and_serde() {
        assert_eq!(Assignor::default(), Assignor::Range);
        let all = [
            Assignor::Range,
            Assignor::RoundRobin,
            Assignor::Sticky,
            Assignor::CooperativeSticky,
        ];
        let names: Vec<&str> = all.iter().map(Assignor::name).collect();
        assert_eq!(
            names,
            ["range", "roundrobin", "sticky", "cooperative-sticky"]
        );
        for a in all {
            let text = ron::to_string(&a).expect("serialize");
            let back: Assignor = ron::from_str(&text).expect("deserialize");
            assert_eq!(back, a);
            let expected = if a == Assignor::CooperativeSticky {
                RebalanceProtocol::Cooperative
            } else {
                RebalanceProtocol::Eager
            };
            assert_eq!(a.protocol(), expected);
        }
        assert_eq!(
            ron::from_str::<Assignor>("CooperativeSticky").ok(),
            Some(Assignor::CooperativeSticky)
        );
    }

    // --- Properties over random groups ---------------------------------------------------------

    /// A random group: 1..=max_members members named m0.. (shuffled), one topic or several.
    fn random_group(
        rng: &mut SimRng,
        max_members: usize,
        equal: bool,
    ) -> (Vec<(MemberId, Subscription)>, BTreeMap<String, u32>) {
        let topic_count = rng.random_range(1..=3_usize);
        let partitions: BTreeMap<String, u32> = (0..topic_count)
            .map(|t| (format!("t{t}"), rng.random_range(0..=40_u32)))
            .collect();
        let names: Vec<String> = partitions.keys().cloned().collect();
        let n = rng.random_range(1..=max_members);
        let mut ids: Vec<usize> = (0..n * 2).collect();
        // Shuffle and take n, so member ids have gaps and arbitrary input order.
        for i in (1..ids.len()).rev() {
            ids.swap(i, rng.random_range(0..=i));
        }
        let members = ids[..n]
            .iter()
            .map(|&i| {
                let topics: Vec<String> = if equal {
                    names.clone()
                } else {
                    names
                        .iter()
                        .filter(|_| rng.random_range(0..3) > 0)
                        .cloned()
                        .collect()
                };
                (format!("m{i}"), Subscription::to(topics))
            })
            .collect();
        (members, partitions)
    }

    fn subscribed_partitions(
        members: &[(MemberId, Subscription)],
        partitions: &BTreeMap<String, u32>,
    ) -> BTreeSet<TopicPartition> {
        partitions
            .iter()
            .filter(|(t, _)| members.iter().any(|(_, s)| s.topics.contains(t)))
            .flat_map(|(t, &n)| (0..n).map(move |p| tp(t, p)))
            .collect()
    }

    /// Every subscribed partition is owned by exactly one member, who subscribes to its topic.
    fn check_valid(
        a: &Assignment,
        members: &[(MemberId, Subscription)],
        partitions: &BTreeMap<String, u32>,
        case: &str,
    ) {
        assert_eq!(a.len(), members.len(), "{case}");
        assert!(no_partition_twice(a), "{case}: a partition twice");
        let owned: BTreeSet<TopicPartition> = a.values().flatten().cloned().collect();
        assert_eq!(
            owned,
            subscribed_partitions(members, partitions),
            "{case}: coverage"
        );
        for (id, s) in members {
            assert!(
                a[id].iter().all(|tp| s.topics.contains(&tp.topic)),
                "{case}: {id} not subscribed"
            );
        }
    }

    fn spread(a: &Assignment) -> (usize, usize) {
        let counts = a.values().map(Vec::len);
        (counts.clone().min().unwrap_or(0), counts.max().unwrap_or(0))
    }

    const CASES: u64 = 400;

    #[test]
    fn every_assignor_owns_each_partition_exactly_once() {
        let mut rng = stream(2024, "assign/valid");
        for case in 0..CASES {
            let equal = case % 2 == 0;
            let (members, partitions) = random_group(&mut rng, 12, equal);
            for assignor in [Assignor::Range, Assignor::RoundRobin, Assignor::Sticky] {
                let a = assignor.assign(&members, &partitions, &none());
                check_valid(
                    &a,
                    &members,
                    &partitions,
                    &format!("case {case} {assignor:?}"),
                );
                // Determinism: the input order of members does not matter.
                let mut reversed = members.clone();
                reversed.reverse();
                assert_eq!(
                    assignor.assign(&reversed, &partitions, &none()),
                    a,
                    "case {case}"
                );
            }
        }
    }

    #[test]
    fn range_and_round_robin_balance_one_topic_within_one() {
        let mut rng = stream(7, "assign/balance");
        for case in 0..CASES {
            let n = rng.random_range(1..=30_usize);
            let p = rng.random_range(0..=200_u32);
            let members: Vec<(MemberId, Subscription)> = (0..n)
                .map(|i| (format!("c-{i}"), Subscription::to(["t"])))
                .collect();
            let partitions = topics(&[("t", p)]);
            for assignor in [Assignor::Range, Assignor::RoundRobin] {
                let a = assignor.assign(&members, &partitions, &none());
                let (lo, hi) = spread(&a);
                assert!(hi - lo <= 1, "case {case} {assignor:?}: {lo}..{hi}");
                assert_eq!(lo, p as usize / n, "case {case}");
            }
        }
    }

    /// Kafka's balance for unequal subscriptions: no member could take a partition it
    /// subscribes to from a member with at least two more.
    fn check_kafka_balanced(a: &Assignment, members: &[(MemberId, Subscription)], case: &str) {
        for (from, tps) in a {
            for t in tps {
                for (to, s) in members {
                    if to != from && s.topics.contains(&t.topic) {
                        assert!(
                            a[to].len() + 2 > tps.len(),
                            "{case}: {to} ({}) could take {t:?} from {from} ({})",
                            a[to].len(),
                            tps.len()
                        );
                    }
                }
            }
        }
    }

    /// One membership change: some members leave, some join (m100.. ids).
    fn churn(
        rng: &mut SimRng,
        members: &[(MemberId, Subscription)],
        equal: bool,
        all_topics: &[String],
    ) -> Vec<(MemberId, Subscription)> {
        let mut next: Vec<(MemberId, Subscription)> = members
            .iter()
            .filter(|_| rng.random_range(0..4) > 0)
            .cloned()
            .collect();
        let joins = rng.random_range(0..=3_usize);
        for j in 0..joins {
            let topics: Vec<String> = if equal {
                all_topics.to_vec()
            } else {
                all_topics
                    .iter()
                    .filter(|_| rng.random_range(0..3) > 0)
                    .cloned()
                    .collect()
            };
            next.push((
                format!("m{}", 100 + j + rng.random_range(0..1000_usize) * 10),
                Subscription::to(topics),
            ));
        }
        next.sort_by(|a, b| a.0.cmp(&b.0));
        next.dedup_by(|a, b| a.0 == b.0);
        if next.is_empty() {
            next.push(("m-last".to_string(), Subscription::to(all_topics.to_vec())));
        }
        next
    }

    /// The stickiness property, equal subscriptions. With `P` partitions over `M` members,
    /// `min = P / M`, `max = ceil(P / M)`, `E = P % M`, and `O_m` member `m`'s previous
    /// partitions (of the topics, still existing): every member keeps at least `min(|O_m|,
    /// min)` of them — so all of them when it owned no more than `min` — and the total kept is
    /// `sum min(|O_m|, min) + min(E, #{m : |O_m| >= max})` (when `max > min`), the most any
    /// assignment with counts in `{min, max}` can keep.
    #[test]
    fn sticky_is_balanced_and_keeps_the_most_a_balanced_assignment_can() {
        let mut rng = stream(99, "assign/sticky");
        // `sometimes` checks, so the property cannot pass vacuously: members left with
        // partitions, some member had to give partitions up, and more members owned `max`
        // partitions than there were `max` slots (the HashMap tie).
        let (mut departures, mut revocations, mut slot_contests) = (0, 0, 0);
        for case in 0..CASES {
            let (mut members, partitions) = random_group(&mut rng, 15, true);
            let names: Vec<String> = partitions.keys().cloned().collect();
            let mut previous = Assignor::Sticky.assign(&members, &partitions, &none());
            for round in 0..4 {
                let label = format!("case {case} round {round}");
                let next = churn(&mut rng, &members, true, &names);
                let a = Assignor::Sticky.assign(&next, &partitions, &previous);
                check_valid(&a, &next, &partitions, &label);
                let (lo, hi) = spread(&a);
                assert!(hi - lo <= 1, "{label}: {lo}..{hi}");
                let total: usize = partitions.values().map(|&n| n as usize).sum();
                let (min, max) = (total / next.len(), total.div_ceil(next.len()));
                let slots = total % next.len();
                let mut kept_total = 0;
                let mut floor_total = 0;
                let mut could_take_max = 0;
                let mut gave_up = false;
                for (id, _) in &next {
                    let owned: BTreeSet<&TopicPartition> = previous
                        .get(id)
                        .map(|v| v.iter().collect())
                        .unwrap_or_default();
                    let kept = a[id].iter().filter(|tp| owned.contains(tp)).count();
                    let floor = owned.len().min(min);
                    assert!(
                        kept >= floor,
                        "{label}: {id} kept {kept} of {} (min {min})",
                        owned.len()
                    );
                    kept_total += kept;
                    gave_up |= kept < owned.len();
                    floor_total += floor;
                    could_take_max += usize::from(owned.len() >= max);
                }
                let best = floor_total
                    + if max > min {
                        slots.min(could_take_max)
                    } else {
                        0
                    };
                assert_eq!(kept_total, best, "{label}");
                departures +=
                    usize::from(previous.keys().any(|id| next.iter().all(|(m, _)| m != id)));
                revocations += usize::from(gave_up);
                slot_contests += usize::from(max > min && could_take_max > slots);
                // Cooperative: round one is the target less what another member still owns;
                // round two, from what members own after revoking, only adds (KIP-429: no
                // partition is revoked twice), is balanced, and transfers nothing more.
                let round1 = Assignor::CooperativeSticky.assign(&next, &partitions, &previous);
                let round2 = Assignor::CooperativeSticky.assign(&next, &partitions, &round1);
                check_valid(&round2, &next, &partitions, &label);
                let (lo, hi) = spread(&round2);
                assert!(hi - lo <= 1, "{label}: round two {lo}..{hi}");
                for (id, tps) in &round1 {
                    assert!(
                        tps.iter().all(|t| a[id].contains(t)),
                        "{label}: round one is in the target"
                    );
                    assert!(
                        tps.iter().all(|t| round2[id].contains(t)),
                        "{label}: round two revoked"
                    );
                }
                let split = cooperative_split(&next, &round1, &round2);
                assert!(
                    split
                        .values()
                        .all(|c| c.revoke.is_empty() && c.assign_later.is_empty()),
                    "{label}"
                );
                for (id, _) in &next {
                    let owned: BTreeSet<&TopicPartition> = previous
                        .get(id)
                        .map(|v| v.iter().collect())
                        .unwrap_or_default();
                    // Nothing a member keeps in the target is ever revoked.
                    for t in a[id].iter().filter(|t| owned.contains(t)) {
                        assert!(
                            round1[id].contains(t),
                            "{label}: {id} lost {t:?} in round one"
                        );
                    }
                }
                previous = a;
                members = next;
            }
        }
        assert!(departures > 100, "{departures}");
        assert!(revocations > 100, "{revocations}");
        assert!(slot_contests > 10, "{slot_contests}");
        eprintln!(
            "sticky property: {departures} departures, {revocations} revocations, {slot_contests} slot contests"
        );
    }

    #[test]
    fn sticky_with_unequal_subscriptions_is_balanced_and_keeps_what_needs_no_move() {
        let mut rng = stream(5, "assign/general");
        for case in 0..CASES {
            let (mut members, partitions) = random_group(&mut rng, 10, false);
            let names: Vec<String> = partitions.keys().cloned().collect();
            let mut previous = Assignor::Sticky.assign(&members, &partitions, &none());
            check_kafka_balanced(&previous, &members, &format!("case {case} fresh"));
            for round in 0..3 {
                let label = format!("case {case} round {round}");
                let next = churn(&mut rng, &members, false, &names);
                let a = Assignor::Sticky.assign(&next, &partitions, &previous);
                check_valid(&a, &next, &partitions, &label);
                check_kafka_balanced(&a, &next, &label);
                // Nothing moves when nothing changed.
                assert_eq!(
                    Assignor::Sticky.assign(&next, &partitions, &a),
                    a,
                    "{label}: stable"
                );
                previous = a;
                members = next;
            }
        }
    }
}
