//! The messages of the log family: what producers, brokers and consumers say to each other,
//! and the family's timer payloads.
//!
//! As in the rpc family, every request carries a caller-chosen `id` and the actor the answer
//! goes to (`reply_to`), and every reply carries the request's `id`. Records travel as the
//! partition log's own `Copy` structs ([`NewRecord`] on the way in, [`Record`] on the way
//! out), so a batch is one `Vec` of 32-byte values and nothing else is allocated per record.
//!
//! The group protocol messages wrap the coordinator's own request fields and its
//! [`Response`](group::Response) unchanged, so that a consumer speaks exactly the protocol the
//! [`Coordinator`](group::Coordinator) implements. The coordinator addresses its replies by
//! client id (a parked JoinGroup is answered by another member's request, or by a timer); the
//! broker remembers the `reply_to` each client id last sent a request from and delivers there,
//! and the reply names the client id it answers ([`GroupReply::to`]). A consumer's client id
//! names its connection to the coordinator (`<actor>#<n>`, a new `n` for each process and each
//! reconnection after a request timeout), so a reply to a request of a dead process, or of a
//! connection it gave up on, is recognised and dropped, as a TCP connection that no longer
//! exists would never deliver it.

use super::group::{self, Assignment, ClientId, InstanceId, JoinRequest, MemberId};
use super::partition::{NewRecord, Record};
use crate::actor::ActorId;

/// A topic's partition: `orders-3` is `TopicPartition { topic: "orders", partition: 3 }`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: u32,
}

impl TopicPartition {
    pub fn new(topic: &str, partition: u32) -> Self {
        TopicPartition {
            topic: topic.to_string(),
            partition,
        }
    }
}

impl std::fmt::Display for TopicPartition {
    /// Kafka's own spelling, `topic-partition`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// The messages of the family.
#[derive(Clone, Debug, PartialEq)]
pub enum Log {
    Produce(Produce),
    ProduceAck(ProduceAck),
    Fetch(Fetch),
    FetchReply(FetchReply),
    CommitOffset(CommitOffset),
    OffsetCommitAck(OffsetCommitAck),
    FetchCommitted(FetchCommitted),
    CommittedReply(CommittedReply),
    /// A JoinGroup, SyncGroup, Heartbeat or LeaveGroup for a broker's coordinator.
    Group(GroupRequest),
    /// A coordinator's reply to one of them.
    GroupReply(GroupReply),
    /// A lag query (what KEDA's Kafka scaler asks: the group's committed offsets against the
    /// log end offsets of the topic's partitions).
    LagQuery(LagQuery),
    LagReply(LagReply),
    /// An orchestrator's instruction to a consumer process (start it, stop it).
    Control(Control),
    /// How busy a consumer has been since it was last asked (a metrics-server scrape).
    UsageQuery {
        id: u64,
        reply_to: ActorId,
    },
    UsageReply(UsageReply),
    /// A liveness probe (the kubelet's): when did the consumer last make progress?
    Probe {
        id: u64,
        reply_to: ActorId,
    },
    ProbeReply(ProbeReply),
    /// The connection `client_id` to a broker was closed by the broker's death (the RST its
    /// host's kernel sends; [`Ctx::monitor`](crate::actor::Ctx::monitor)), or refused because
    /// the broker was down.
    Reset {
        client_id: String,
    },
    Tick(Tick),
}

/// A consumer's answer to a liveness probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeReply {
    pub id: u64,
    /// When its poll loop last made progress: a fetch answered or a batch processed (its
    /// start, if it has done neither).
    pub progress: crate::engine::time::SimTime,
    pub running: bool,
}

/// Asks a broker for `group`'s lag on every partition of `topic`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LagQuery {
    pub id: u64,
    pub reply_to: ActorId,
    pub group: String,
    pub topic: String,
}

/// Lag by partition (`log end - committed`, or `log end - log start` with no commit); empty
/// if the broker does not lead the topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LagReply {
    pub id: u64,
    pub lags: Vec<u64>,
}

/// What an orchestrator tells a consumer's pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Start the process (a scaled-up replica whose pod is ready); ignored if running.
    Start,
    /// Close gracefully (commit, LeaveGroup unless static) and stay stopped (scaled down).
    Stop,
    /// Close gracefully and start again `after` later (one step of a rolling restart).
    Restart {
        after: crate::engine::time::SimDuration,
    },
}

/// A consumer's answer to a usage query: the fraction of the time since the previous query
/// spent processing records (its CPU utilisation, one core), and whether it is running.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UsageReply {
    pub id: u64,
    pub busy: f64,
    pub running: bool,
}

/// A batch of records for one partition (a ProduceRequest with one partition's batch).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Produce {
    pub id: u64,
    pub reply_to: ActorId,
    pub tp: TopicPartition,
    /// Non-empty; appended as one batch, at consecutive offsets.
    pub records: Vec<NewRecord>,
}

/// Why a produce failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProduceError {
    /// The broker leads no such partition (Kafka's `UNKNOWN_TOPIC_OR_PARTITION`, or
    /// `NOT_LEADER_OR_FOLLOWER` when it exists elsewhere).
    UnknownTopicOrPartition,
    /// The batch does not fit on the broker's disk (Kafka: `KafkaStorageException`, after
    /// which the log directory goes offline; here the broker keeps serving reads).
    DiskFull,
    /// An empty batch (a producer bug).
    EmptyBatch,
}

/// The answer to a [`Produce`]: the offset of the batch's first record, once appended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProduceAck {
    pub id: u64,
    pub result: Result<u64, ProduceError>,
}

/// A fetch from one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetch {
    pub id: u64,
    pub reply_to: ActorId,
    pub tp: TopicPartition,
    pub offset: u64,
    /// At least one record is returned if any is available (Kafka returns the first batch even
    /// above `max_bytes`, so a large record never blocks a consumer).
    pub max_records: u32,
    pub max_bytes: u64,
}

/// What a fetch found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchOutcome {
    /// Records from the requested offset, possibly none (at the high watermark).
    Records {
        records: Vec<Record>,
        /// The offset to fetch next.
        next_offset: u64,
    },
    /// Below the log start offset (deleted by retention) or beyond the log end:
    /// `OFFSET_OUT_OF_RANGE`; the consumer applies its `auto.offset.reset`.
    OffsetOutOfRange {
        log_start: u64,
    },
    UnknownTopicOrPartition,
}

/// The answer to a [`Fetch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchReply {
    pub id: u64,
    pub outcome: FetchOutcome,
    /// The partition's high watermark when the fetch was served (0 for an unknown one): with
    /// the consumer's position it gives the lag.
    pub high_watermark: u64,
}

/// An OffsetCommit for one partition: `offset` is the next offset the group will read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitOffset {
    pub id: u64,
    pub reply_to: ActorId,
    pub group: String,
    pub tp: TopicPartition,
    pub offset: u64,
    /// The group member committing, as the coordinator knows it; None for a commit outside
    /// group management (Kafka's generation -1 and empty member id: the admin client, or a
    /// consumer that assigns itself partitions), accepted only while the group is Empty.
    pub member: Option<CommitMember>,
}

/// Who commits: the member id, instance id and generation an OffsetCommit carries, which the
/// coordinator checks (`ClassicGroup.validateOffsetCommit`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitMember {
    pub member_id: MemberId,
    pub instance_id: Option<InstanceId>,
    pub generation: u32,
}

/// Why a commit failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitError {
    UnknownTopicOrPartition,
    /// The coordinator refused the committer: UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION or
    /// FENCED_INSTANCE_ID (a zombie's commit).
    Group(group::GroupError),
}

/// The answer to a [`CommitOffset`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OffsetCommitAck {
    pub id: u64,
    pub result: Result<(), CommitError>,
}

/// An OffsetFetch: the group's committed offset of a partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchCommitted {
    pub id: u64,
    pub reply_to: ActorId,
    pub group: String,
    pub tp: TopicPartition,
}

/// The answer to a [`FetchCommitted`]: None if the group never committed one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommittedReply {
    pub id: u64,
    pub offset: Option<u64>,
}

/// A group protocol request for the coordinator of `group`, from `reply_to`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupRequest {
    pub group: String,
    pub reply_to: ActorId,
    pub op: GroupOp,
}

/// The four requests of the classic protocol, with the coordinator's own fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupOp {
    Join(JoinRequest),
    Sync {
        client_id: ClientId,
        member_id: MemberId,
        instance_id: Option<InstanceId>,
        generation: u32,
        /// The leader's assignment; ignored from the others.
        assignment: Option<Assignment>,
    },
    Heartbeat {
        client_id: ClientId,
        member_id: MemberId,
        instance_id: Option<InstanceId>,
        generation: u32,
    },
    Leave {
        client_id: ClientId,
        member_id: Option<MemberId>,
        instance_id: Option<InstanceId>,
    },
}

impl GroupOp {
    /// The client the coordinator's replies to this request go to.
    pub fn client_id(&self) -> &str {
        match self {
            GroupOp::Join(j) => &j.client_id,
            GroupOp::Sync { client_id, .. }
            | GroupOp::Heartbeat { client_id, .. }
            | GroupOp::Leave { client_id, .. } => client_id,
        }
    }
}

/// A coordinator's reply, for the client it names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupReply {
    pub group: String,
    /// The client id (the connection) of the request it answers.
    pub to: ClientId,
    pub response: group::Response,
}

/// Timer payloads of the family's components.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tick {
    /// Broker: request handler `handler` finished the request the broker numbered `seq`.
    Served { handler: u32, seq: u64 },
    /// Broker: run retention on topic `topic` (its index in the config).
    Retention(u32),
    /// Broker: the coordinator of group `group` (its index, in name order) has a deadline.
    GroupDeadline(u32),
    /// Producer: the next record is due.
    Arrive,
    /// Producer: the batch `seq` of partition `partition` has lingered long enough.
    Linger { partition: u32, seq: u64 },
    /// Consumer: its timer of kind `kind` (heartbeat, batch processed, idle poll, poll
    /// timeout, retry) numbered `seq` is due.
    Consumer { kind: u32, seq: u64 },
    /// A consumer group's controller: its autoscaler poll, a provisioned replica, a rollout
    /// step.
    Group { kind: u32, seq: u64 },
}
