//! A Kafka consumer: one member of a consumer group, as the Java `KafkaConsumer` with its
//! `ConsumerCoordinator` runs the classic group protocol.
//!
//! - **Joining.** On start the consumer sends JoinGroup to its group's coordinator (the broker
//!   named `broker`). The leader (per the JoinGroup response) computes the assignment with its
//!   [`Assignor`] over the members the response lists, the topic's `partitions` and the
//!   partitions each member said it owns (the sticky assignors' `previous`), and sends it in
//!   its SyncGroup; the others sync with none. The assignor fixes the protocol
//!   ([`Assignor::protocol`]): eager members revoke everything before rejoining, cooperative
//!   ones keep what they own ([`revoke_on_rejoin`], [`apply_assignment`]).
//! - **Offsets.** For each partition it is newly assigned, the consumer fetches the group's
//!   committed offset (OffsetFetch); with none it applies `auto_offset_reset` (Kafka's default
//!   `latest`: "automatically reset the offset to the latest offset", `ConsumerConfig`,
//!   `auto.offset.reset`, default `latest`). Latest is found with a fetch beyond the log end,
//!   whose OFFSET_OUT_OF_RANGE reply carries the high watermark (a ListOffsets round trip).
//! - **The poll loop.** One poll is one [`Fetch`] from the next owned partition, round robin,
//!   for up to `max_poll_records`. A batch of `n` records takes the sum of `n` draws of
//!   `processing`, plus one draw of `batch_overhead` if set (a fixed cost per poll: one bulk
//!   write to the sink, one transaction, amortised over the batch — what makes batching pay),
//!   scaled by `Slow` faults. That work is done in slices of at most [`WORK_SLICE`], each
//!   scaled by the slowdown when it starts, so a slowdown that begins or ends during a long
//!   batch slows only the part of the batch after it, as it would a consumer working record
//!   by record. Then, with `auto_commit: None`,
//!   the batch's next offset is committed, and the consumer polls again. When every owned
//!   partition has answered a poll with nothing, the consumer waits `poll_idle` (what a fetch
//!   waits on the broker for data: `fetch.max.wait.ms`, default 500 ms) before polling again.
//!   With `auto_commit: Some(interval)` (Kafka's default: `enable.auto.commit` true,
//!   `auto.commit.interval.ms` 5000, `ConsumerConfig`) a poll commits every owned partition's
//!   position when `interval` has passed since the last auto-commit, and a rejoin commits them
//!   first (`ConsumerCoordinator.onJoinPrepare`'s synchronous auto-commit).
//! - **Heartbeats** are sent every `heartbeat_interval` on their own timer, whatever the poll
//!   loop is doing (Kafka's background heartbeat thread), while the member is Stable. A
//!   REBALANCE_IN_PROGRESS reply, or ILLEGAL_GENERATION / UNKNOWN_MEMBER_ID (which also reset
//!   the member id), make the member rejoin — at its next poll, that is after the batch it is
//!   processing, as in Kafka, where the heartbeat thread only flags the rejoin.
//! - **Poll timeout.** If a batch is still being processed `max_poll_interval` after the poll
//!   that fetched it, the member leaves: a dynamic member sends LeaveGroup, a static one does
//!   not ([`sends_leave_group`]); both forget their member id and generation
//!   (`AbstractCoordinator.maybeLeaveGroup`). The batch's commit then fails (Kafka's
//!   `CommitFailedException`: `commits_failed_total`), and the next poll rejoins.
//! - **Poison pills** (K3). Processing a record with the `poison` flag fails, at the end of its
//!   sampled processing time. The records of the batch before it are processed and their
//!   offsets committed (the commit offset is the poison record's own), and the rest of the
//!   batch is dropped: the partition is fetched again from the poison record `retry_backoff`
//!   later (default 100 ms, `retry.backoff.ms`, the client's retry backoff), while the other
//!   partitions go on being polled. With `on_poison: Stall` (the default: an application that
//!   retries forever) it fails again each time and the partition stops for good. With
//!   `DeadLetter(max_retries, topic)` it is retried up to `max_retries` times after the first
//!   failure, then produced (one record, `poison` still set) to partition 0 of `topic` on the
//!   same broker, which must lead that topic, and the consumer moves past it and commits the
//!   next offset — without waiting for the dead-letter produce's ack (a lost one loses the
//!   record). Retry counts are volatile, per partition, and reset when it is revoked.
//! - **Fencing.** FENCED_INSTANCE_ID (another process took this static member's instance id)
//!   stops the consumer for good, as Kafka's consumer raises a fatal error.
//! - **Request timeouts** (`request_timeout`, Kafka's `request.timeout.ms`, 30 s). A request
//!   lost with a crashed or partitioned broker is given up on after it: a JoinGroup (which the
//!   coordinator may park for a whole rebalance) after `max(request_timeout,
//!   max_poll_interval + 5 s)`, the others after `request_timeout`. A timed-out JoinGroup or
//!   SyncGroup marks the coordinator unknown: the client opens a new connection (a new client
//!   id) and rejoins `retry_backoff` later with its member id, which a restarted coordinator
//!   answers UNKNOWN_MEMBER_ID, so it joins as new. A timed-out Fetch is dropped and the poll
//!   loop goes on; a timed-out OffsetFetch is sent again; a timed-out commit after processing
//!   (`commitSync`) is sent again while it is still the partition's latest and the generation
//!   unchanged, an auto-commit (`commitAsync`) is not. Heartbeats need no timeout: one goes
//!   every `heartbeat_interval` whatever became of the last. The timeouts are the recovery
//!   from a broker that vanished without a word (a partition: no packet crosses it).
//! - **Closed connections.** A broker *process* that dies closes its sockets: its host's
//!   kernel resets them, and the Java client fails the requests in flight at once with a
//!   `DisconnectException` (`ctx.monitor` on every connection, [`Log::Reset`]). The client
//!   then waits the reconnect backoff ([`RECONNECT_BACKOFF`], doubling to
//!   [`RECONNECT_BACKOFF_MAX`] while the broker stays down and refuses the connection, each
//!   wait jittered by ±[`RECONNECT_BACKOFF_JITTER`]),
//!   sending no poll, heartbeat or JoinGroup meanwhile, and on the new connection retries
//!   its JoinGroup or SyncGroup, sends its OffsetFetches and commitSyncs again and polls (the
//!   Fetch in flight is dropped). So a group whose coordinator crashed re-forms within a
//!   second of its restart, not a JoinGroup timeout (305 s) later.
//! - **Connections.** Each process (and each reconnection) has its own client id
//!   (`<name>#<n>`), and the coordinator's replies name the client id they answer: a reply to
//!   a dead incarnation's request (the FENCED_INSTANCE_ID its parked JoinGroup gets when the
//!   restarted static member replaces it) is dropped, as a real TCP connection would never
//!   deliver it to a new process. Request ids are unique across incarnations for the same
//!   reason.
//! - **Zombie commits.** Each OffsetCommit carries the member id, instance id and generation;
//!   the coordinator refuses one that is not current (see the broker). A refusal of the
//!   member's current generation makes it rejoin as Kafka's `OffsetCommitResponseHandler`
//!   does: UNKNOWN_MEMBER_ID and ILLEGAL_GENERATION reset the member id and generation (the
//!   partitions are lost; the refused batch's records are processed again by their next
//!   owner, which the ledger counts in `processed_twice_total`), FENCED_INSTANCE_ID is fatal.
//!
//! The consumer's `session_timeout` and `max_poll_interval` are the ones its group's
//! [`GroupConfig`](super::group::GroupConfig) on the broker must carry as `session_timeout`
//! and `rebalance_timeout`: the coordinator here keeps one of each per group rather than one
//! per JoinGroup. The consumer itself uses `max_poll_interval` for its poll timer and does not
//! read `session_timeout`.
//!
//! **Crashes.** Everything is volatile: positions, ownership, the member id. A restarted
//! dynamic consumer joins as a new member; a static one (`group_instance_id`) joins under its
//! instance id and, within the session timeout, takes its old member's place and assignment.
//! What it processed and did not commit is processed again by whoever gets the partition. A
//! batch is processed record by record: a crash in the middle of one leaves the records whose
//! processing had ended processed (reported to the group's ledger), and the rest not — lost,
//! if an auto-commit already covered them (K6), processed again otherwise. A `close()` (a
//! rollout's restart, a scale-down, a liveness restart) interrupts a batch the same way, and
//! with the Java client's auto-commit commits after the records it processed (see `close`).
//!
//! **Timers.** `Tick::Consumer { kind, seq }`, `kind` one of the consumer's timer kinds and
//! `seq` the number that tells a live timer from one superseded by a later one.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use rand::RngExt as _;
use serde::{Deserialize, Serialize};

use super::assign::{self, Assignor, RebalanceProtocol, Subscription};
use super::group::member::{
    DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_MAX_POLL_RECORDS, apply_assignment, revoke_on_rejoin,
    sends_leave_group,
};
use super::group::{
    Assignment, DEFAULT_REBALANCE_TIMEOUT, DEFAULT_SESSION_TIMEOUT, GroupError, JoinRequest,
    JoinResponse, MemberId, Partition, Protocol, Response,
};
use super::ledger::SharedLedger;
use super::msg::{
    CommitError, CommitMember, CommitOffset, CommittedReply, Control, Fetch, FetchCommitted,
    FetchOutcome, FetchReply, GroupOp, GroupRequest, Log, OffsetCommitAck, ProbeReply, Produce,
    Tick, TopicPartition, UsageReply,
};
use super::partition::{NewRecord, OffsetReset, Record};
use crate::actor::{Actor, ActorId, Ctx, Durable, TimerId};
use crate::dist::{Dist, Sampler};
use crate::engine::time::{SimDuration, SimTime};
use crate::metrics::{CounterId, GaugeId, Metrics};
use crate::model::Carry;
use crate::model::rpc::{ConfigError, Validate, compile, nonzero};

/// `auto.commit.interval.ms` by default: 5 s (`ConsumerConfig`, default 5000, with
/// `enable.auto.commit` true).
pub const DEFAULT_AUTO_COMMIT_INTERVAL: SimDuration = SimDuration::from_secs(5);

/// The wait after an empty poll by default: 500 ms, `fetch.max.wait.ms` (`ConsumerConfig`,
/// default 500), how long a broker holds a fetch that has no data.
pub const DEFAULT_POLL_IDLE: SimDuration = SimDuration::from_millis(500);

/// `fetch.max.bytes` by default: 52428800 (50 MiB, `ConsumerConfig`).
pub const DEFAULT_FETCH_MAX_BYTES: u64 = 52_428_800;

/// The longest stretch of a batch's processing scaled by one `Slow` factor: 1 s. A batch
/// that takes longer is followed slice by slice, each scaled by the slowdown at its start. A
/// choice (a consumer's slowdown changes per record, the simulator's in steps): short enough
/// that a batch of minutes follows a slowdown's end within a second, long enough that
/// batches of milliseconds take one timer, as before.
pub const WORK_SLICE: SimDuration = SimDuration::from_secs(1);

/// The client's retry backoff by default: 100 ms, `retry.backoff.ms` ("The amount of time to
/// wait before attempting to retry a failed request to a given topic partition. This avoids
/// repeatedly sending requests in a tight loop under some failure scenarios", default 100,
/// `CommonClientConfigs` / `ConsumerConfig`). The consumer waits it before rejoining after a
/// failed or timed-out JoinGroup or SyncGroup (`AbstractCoordinator.joinGroupIfNeeded`) and
/// before fetching a partition again after a failed record; a timed-out Fetch, OffsetFetch or
/// OffsetCommit is sent again at once (its timeout has waited far longer). The failed record
/// is a choice: Kafka leaves its retry to the application (`seek` back, then poll); this is
/// the backoff its client uses for retries.
/// Since Kafka 3.7 (KIP-580) the client grows the backoff exponentially up to
/// `retry.backoff.max.ms` (1 s) with 20% jitter; the model keeps it constant.
pub const DEFAULT_RETRY_BACKOFF: SimDuration = SimDuration::from_millis(100);

/// How long the consumer waits for the answer to a request by default: 30 s,
/// `request.timeout.ms` ("The configuration controls the maximum amount of time the client
/// will wait for the response of a request. If the response is not received before the
/// timeout elapses the client will resend the request if necessary or fail the request if
/// retries are exhausted", consumer default 30000, `ConsumerConfig`).
pub const DEFAULT_REQUEST_TIMEOUT: SimDuration = SimDuration::from_secs(30);

/// What a JoinGroup's timeout adds to the rebalance timeout: 5 s. The coordinator may park a
/// JoinGroup for the whole rebalance timeout, so the Java client waits
/// `max(request.timeout.ms, rebalance timeout + 5 s)` for it (`AbstractCoordinator`,
/// `JOIN_GROUP_TIMEOUT_LAPSE = 5000`, in `sendJoinGroupRequest`).
pub const JOIN_GROUP_TIMEOUT_LAPSE: SimDuration = SimDuration::from_secs(5);

/// What a consumer does with a record whose processing always fails (K3, the poison pill).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum PoisonPolicy {
    /// Retry forever: the partition never gets past the record (the baseline).
    #[default]
    Stall,
    /// Retry up to `max_retries` times after the first failure, then produce the record to
    /// partition 0 of `topic` (on the consumer's broker) and move past it.
    DeadLetter { max_retries: u32, topic: String },
}

/// When auto-commit commits, and what.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum AutoCommitFrom {
    /// The Java client: `poll()` commits the positions of the records the previous polls
    /// returned, so a single-threaded loop has processed them (at least once).
    #[default]
    Poll,
    /// librdkafka (the C, Go, Python and .NET clients): a background timer commits the
    /// offsets *stored* when records were handed to the application
    /// (`enable.auto.offset.store=true`, the default), whether or not it has processed them;
    /// a crash in between loses them (K6).
    Timer,
}

/// A [`Consumer`]'s config: `(broker: "broker", group: "g", topic: "orders", partitions: 6,
/// processing: Const("2ms"))`; the rest defaults to Kafka's client defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerConfig {
    /// The actor name of the broker that coordinates the group and leads the topic.
    pub broker: String,
    pub group: String,
    pub topic: String,
    /// The topic's partition count, >= 1 (until metadata is modelled).
    pub partitions: u32,
    /// `partition.assignment.strategy`; default `Range` (eager). Fixes the protocol.
    #[serde(default)]
    pub assignor: Assignor,
    /// `group.instance.id`: Some for a static member. Default None.
    #[serde(default)]
    pub group_instance_id: Option<String>,
    /// `session.timeout.ms`, default 45 s (Kafka 3.0+, KIP-735). See the module docs: the
    /// broker's group config must carry it.
    #[serde(default = "default_session_timeout")]
    pub session_timeout: SimDuration,
    /// `heartbeat.interval.ms`, default 3 s.
    #[serde(default = "default_heartbeat_interval")]
    pub heartbeat_interval: SimDuration,
    /// `max.poll.interval.ms`, default 300 s.
    #[serde(default = "default_max_poll_interval")]
    pub max_poll_interval: SimDuration,
    /// `max.poll.records`, default 500.
    #[serde(default = "default_max_poll_records")]
    pub max_poll_records: u32,
    /// The time to process one record (a duration distribution).
    pub processing: Dist,
    /// A fixed cost per non-empty poll, on top of its records' `processing` (a duration
    /// distribution): a bulk write or a transaction per batch. Default None: no such cost.
    #[serde(default)]
    pub batch_overhead: Option<Dist>,
    /// `Some(interval)`: auto-commit (Kafka's default, 5 s); None: commit after each batch.
    #[serde(default = "default_auto_commit")]
    pub auto_commit: Option<SimDuration>,
    /// `auto.offset.reset`, default `Latest`.
    #[serde(default)]
    pub auto_offset_reset: OffsetReset,
    /// The wait after a round of empty polls, default 500 ms (`fetch.max.wait.ms`).
    #[serde(default = "default_poll_idle")]
    pub poll_idle: SimDuration,
    /// What to do with a poison record; default `Stall`.
    #[serde(default)]
    pub on_poison: PoisonPolicy,
    /// `retry.backoff.ms`, default 100 ms: the wait before a failed or timed-out request is
    /// retried, and before a partition is fetched again after a failed record.
    #[serde(default = "default_retry_backoff")]
    pub retry_backoff: SimDuration,
    /// `request.timeout.ms`, default 30 s: how long a request (SyncGroup, Fetch, OffsetFetch,
    /// OffsetCommit) waits for its answer before the client treats it as failed; a JoinGroup
    /// waits at least `max_poll_interval` + 5 s.
    #[serde(default = "default_request_timeout")]
    pub request_timeout: SimDuration,
    /// The time a newly assigned partition takes before its first fetch, on top of the
    /// OffsetFetch round trip (restoring state, warming a cache, opening a connection to the
    /// sink). Default None: no warm-up.
    #[serde(default)]
    pub warmup: Option<Dist>,
    /// Which client's auto-commit: `Poll` (Java, default) or `Timer` (librdkafka).
    #[serde(default)]
    pub auto_commit_from: AutoCommitFrom,
}

fn default_session_timeout() -> SimDuration {
    DEFAULT_SESSION_TIMEOUT
}
fn default_heartbeat_interval() -> SimDuration {
    DEFAULT_HEARTBEAT_INTERVAL
}
fn default_max_poll_interval() -> SimDuration {
    DEFAULT_REBALANCE_TIMEOUT
}
fn default_max_poll_records() -> u32 {
    DEFAULT_MAX_POLL_RECORDS
}
fn default_auto_commit() -> Option<SimDuration> {
    Some(DEFAULT_AUTO_COMMIT_INTERVAL)
}
fn default_poll_idle() -> SimDuration {
    DEFAULT_POLL_IDLE
}
fn default_retry_backoff() -> SimDuration {
    DEFAULT_RETRY_BACKOFF
}
fn default_request_timeout() -> SimDuration {
    DEFAULT_REQUEST_TIMEOUT
}

impl ConsumerConfig {
    /// The actor names this config refers to, with their field paths.
    pub fn targets(&self) -> Vec<(String, &str)> {
        vec![("broker".to_string(), self.broker.as_str())]
    }
}

impl Validate for ConsumerConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        nonzero("partitions", u64::from(self.partitions))?;
        nonzero("max_poll_records", u64::from(self.max_poll_records))?;
        nonzero("session_timeout", self.session_timeout.as_nanos())?;
        nonzero("heartbeat_interval", self.heartbeat_interval.as_nanos())?;
        nonzero("max_poll_interval", self.max_poll_interval.as_nanos())?;
        nonzero("poll_idle", self.poll_idle.as_nanos())?;
        nonzero("retry_backoff", self.retry_backoff.as_nanos())?;
        nonzero("request_timeout", self.request_timeout.as_nanos())?;
        if let PoisonPolicy::DeadLetter { topic, .. } = &self.on_poison
            && (topic.is_empty() || *topic == self.topic)
        {
            return Err(ConfigError::Invalid {
                field: "on_poison.topic".into(),
                reason: format!(
                    "the dead-letter topic `{topic}` must be named and differ from the topic"
                ),
            });
        }
        if let Some(interval) = self.auto_commit {
            nonzero("auto_commit", interval.as_nanos())?;
        }
        if self.heartbeat_interval >= self.session_timeout {
            return Err(ConfigError::Invalid {
                field: "heartbeat_interval".into(),
                reason: format!(
                    "{} is not below session_timeout {}: the member would expire between \
                     heartbeats",
                    self.heartbeat_interval, self.session_timeout
                ),
            });
        }
        for (field, dist) in [
            ("processing", Some(&self.processing)),
            ("batch_overhead", self.batch_overhead.as_ref()),
            ("warmup", self.warmup.as_ref()),
        ] {
            let Some(dist) = dist else { continue };
            if !compile(field, dist)?.dist().is_duration() {
                return Err(ConfigError::Invalid {
                    field: field.into(),
                    reason: "expected a duration distribution".into(),
                });
            }
        }
        Ok(())
    }
}

/// The consumer's timer kinds, in `Tick::Consumer { kind }`.
const HEARTBEAT: u32 = 0;
const PROCESSED: u32 = 1;
const POLL_IDLE: u32 = 2;
const POLL_TIMEOUT: u32 = 3;
const REJOIN: u32 = 4;
/// `seq` is the partition whose retry backoff ends.
const RETRY: u32 = 5;
/// `seq` is the partition whose warm-up ends.
const WARM: u32 = 6;
/// librdkafka's background auto-commit.
const AUTO_COMMIT: u32 = 7;
/// `seq` is the id of the JoinGroup or SyncGroup whose request timeout ends.
const GROUP_TIMEOUT: u32 = 8;
/// `seq` is the id of the Fetch whose request timeout ends.
const FETCH_TIMEOUT: u32 = 9;
/// `seq` is the id of the OffsetFetch whose request timeout ends.
const COMMITTED_TIMEOUT: u32 = 10;
/// `seq` is the id of the OffsetCommit whose request timeout ends.
const COMMIT_TIMEOUT: u32 = 11;
/// The reconnect backoff after a reset ends.
const RECONNECT: u32 = 12;

/// The wait before reconnecting after a reset, doubling with each reset in a row up to
/// [`RECONNECT_BACKOFF_MAX`]: Kafka's `reconnect.backoff.ms` ("The base amount of time to wait
/// before attempting to reconnect to a given host", default 50) and `reconnect.backoff.max.ms`
/// ("The maximum amount of time in milliseconds to wait when reconnecting to a broker that has
/// repeatedly failed to connect", default 1000), `ConsumerConfig`. Each wait is scaled by a
/// uniform factor in `1 ± RECONNECT_BACKOFF_JITTER` before the cap, as the client's
/// `ClusterConnectionStates` does with its `ExponentialBackoff`, so consumers reset by one
/// crash do not all reconnect in the same instant.
pub const RECONNECT_BACKOFF: SimDuration = SimDuration::from_millis(50);
pub const RECONNECT_BACKOFF_MAX: SimDuration = SimDuration::from_millis(1000);
/// The reconnect backoff's relative jitter: 0.2 (`RECONNECT_BACKOFF_JITTER`,
/// `ClusterConnectionStates`, Kafka's clients).
pub const RECONNECT_BACKOFF_JITTER: f64 = 0.2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// JoinGroup sent, waiting for its response.
    Joining,
    /// SyncGroup sent, waiting for the assignment.
    Syncing,
    /// Has an assignment for the current generation.
    Stable,
    /// Waiting `retry_backoff` before a JoinGroup.
    Backoff,
    /// FENCED_INSTANCE_ID: stopped for good.
    Fenced,
}

/// Where a partition is read from next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Position {
    /// Waiting for the committed offset.
    Fetching,
    /// No valid offset: a fetch beyond the log end finds the high watermark (latest).
    ResetLatest,
    /// No valid offset and `auto_offset_reset: None`: not consumed.
    Failed,
    At(u64),
}

#[derive(Clone, Copy, Debug)]
struct Batch {
    seq: u64,
    partition: Partition,
    /// The offset of its first record.
    first: u64,
    /// The records processed successfully.
    records: u64,
    next_offset: u64,
    /// The poison record that ended the batch (its processing failed); then `next_offset` is
    /// its offset.
    poison: Option<Record>,
    /// Processing not yet under way, unscaled: what the slices after the current one do.
    work_left: SimDuration,
}

/// An OffsetCommit in flight.
#[derive(Clone, Debug)]
struct PendingCommit {
    partition: Partition,
    offset: u64,
    member: Option<CommitMember>,
}

#[derive(Clone, Copy)]
struct ConsumerMetrics {
    processed: CounterId,
    batches: CounterId,
    rejoins: CounterId,
    poll_timeouts: CounterId,
    commits_failed: CounterId,
    commits_rejected: CounterId,
    request_timeouts: CounterId,
    connection_resets: CounterId,
    poison_failures: CounterId,
    dead_lettered: CounterId,
    owned: GaugeId,
    stopped: GaugeId,
}

/// A consumer; see the module docs.
///
/// Metrics (owner = the consumer's name): `records_processed_total`, `batches_total`
/// (non-empty polls processed), `rejoins_total` (JoinGroups after the first),
/// `poll_timeouts_total`, `commits_failed_total` (batch commits dropped because the member had
/// left the group), `commits_rejected_total` (commits the coordinator refused: this member's
/// generation was no longer the group's), `request_timeouts_total` (requests that got no
/// answer within `request_timeout`), `connection_resets_total` (connections to the broker
/// closed by its crash, or refused while it was down), `poison_failures_total` (failed
/// attempts at a poison record),
/// `dead_lettered_total` (records produced to the dead-letter topic); `records_processed_total`
/// counts successes only; `partitions_owned` gauge (0 once it has left the group, even while it
/// finishes the batch of a partition it held) and `stopped` gauge (1 while it owns nothing,
/// has left or is rejoining).
#[derive(Clone)]
pub struct Consumer<M> {
    config: ConsumerConfig,
    processing: Sampler,
    batch_overhead: Option<Sampler>,
    warmup: Option<Sampler>,
    protocol: Protocol,
    broker: Option<ActorId>,
    state: State,
    member_id: Option<MemberId>,
    generation: Option<u32>,
    /// Sorted.
    owned: Vec<Partition>,
    positions: BTreeMap<Partition, Position>,
    /// OffsetFetch requests in flight, by id.
    committed_requests: BTreeMap<u64, Partition>,
    /// OffsetCommits in flight, by id, and the latest one sent for each partition.
    commits: BTreeMap<u64, PendingCommit>,
    latest_commit: BTreeMap<Partition, u64>,
    /// The id of the JoinGroup or SyncGroup in flight (its request timeout's `seq`).
    group_request: u64,
    /// This connection's client id, `<name>#<n>`: the coordinator's replies name it, and a
    /// reply naming another (an earlier process's, or a connection given up on after a
    /// request timeout) is not for this one.
    client_id: String,
    /// Connections made so far by every incarnation (the `n` of the client ids). Shared.
    connections: Durable<u64>,
    /// Closed by a reset and not open again yet (the reconnect backoff runs): nothing is sent.
    disconnected: bool,
    /// Resets in a row, with no answer from the broker in between: the reconnect backoff's
    /// exponent.
    resets: u32,
    /// The fetch in flight: its id and partition.
    fetching: Option<(u64, Partition)>,
    busy: Option<Batch>,
    /// When each record of the batch in progress is done (the poison record excluded): a
    /// crash mid-batch has processed the records before it (their side effects are done).
    busy_ends: Vec<SimTime>,
    /// Partitions waiting out their retry backoff, until when.
    retry_at: BTreeMap<Partition, SimTime>,
    /// The failed attempts at the poison record a partition is stuck on: (offset, count).
    failures: BTreeMap<Partition, (u64, u32)>,
    idle: bool,
    empty_polls: usize,
    rr: usize,
    rejoin_needed: bool,
    joined_once: bool,
    last_auto_commit: SimTime,
    poll_timer: Option<TimerId>,
    next_id: u64,
    /// Partitions warming up after assignment, until when.
    warm_until: BTreeMap<Partition, SimTime>,
    /// librdkafka's stored offsets: the end of the last batch handed to the application.
    stored: BTreeMap<Partition, u64>,
    /// Whether the pod is deployed: false for a replica scaled down (or not yet up). Shared
    /// by every incarnation, so a crash and restart keeps a stopped replica stopped.
    deployed: Durable<bool>,
    /// This incarnation runs the client (false: a stopped replica, which answers usage
    /// queries and waits for `Control::Start`).
    running: bool,
    /// Processing time since the last usage query, and the batch in progress since when.
    busy_for: SimDuration,
    busy_since: Option<SimTime>,
    usage_from: SimTime,
    /// When the poll loop last made progress (a liveness probe's question).
    progress: SimTime,
    ledger: Option<SharedLedger>,
    name: String,
    metrics: Option<ConsumerMetrics>,
    _m: PhantomData<M>,
}

impl<M> Consumer<M> {
    /// Validates `config`. Build one and clone it in the factory.
    pub fn new(config: ConsumerConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let processing = compile("processing", &config.processing)?;
        let batch_overhead = (config.batch_overhead.as_ref())
            .map(|o| compile("batch_overhead", o))
            .transpose()?;
        let warmup = (config.warmup.as_ref())
            .map(|w| compile("warmup", w))
            .transpose()?;
        let protocol = match config.assignor.protocol() {
            RebalanceProtocol::Eager => Protocol::Eager,
            RebalanceProtocol::Cooperative => Protocol::Cooperative,
        };
        Ok(Consumer {
            config,
            processing,
            batch_overhead,
            warmup,
            protocol,
            broker: None,
            state: State::Joining,
            member_id: None,
            generation: None,
            owned: Vec::new(),
            positions: BTreeMap::new(),
            committed_requests: BTreeMap::new(),
            commits: BTreeMap::new(),
            latest_commit: BTreeMap::new(),
            group_request: 0,
            client_id: String::new(),
            disconnected: false,
            resets: 0,
            connections: Durable::new(0),
            fetching: None,
            busy: None,
            busy_ends: Vec::new(),
            retry_at: BTreeMap::new(),
            failures: BTreeMap::new(),
            idle: false,
            empty_polls: 0,
            rr: 0,
            rejoin_needed: false,
            joined_once: false,
            last_auto_commit: SimTime::ZERO,
            poll_timer: None,
            next_id: 0,
            warm_until: BTreeMap::new(),
            stored: BTreeMap::new(),
            deployed: Durable::new(true),
            running: false,
            busy_for: SimDuration::ZERO,
            busy_since: None,
            usage_from: SimTime::ZERO,
            progress: SimTime::ZERO,
            ledger: None,
            name: String::new(),
            metrics: None,
            _m: PhantomData,
        })
    }

    /// Makes this consumer (and every clone: build one and clone it in the factory) a
    /// replica that starts stopped, until an orchestrator sends `Control::Start`.
    pub fn stopped(self) -> Self {
        *self.deployed.borrow_mut() = false;
        self
    }

    /// Reports to `ledger`, the group's shared observer (see [`Ledger`]).
    pub fn with_ledger(mut self, ledger: SharedLedger) -> Self {
        self.ledger = Some(ledger);
        self
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn tp(&self, partition: Partition) -> TopicPartition {
        TopicPartition::new(&self.config.topic, partition)
    }

    /// Drops what the consumer keeps about a partition it no longer owns.
    fn forget(&mut self, partition: Partition) -> Option<Position> {
        self.retry_at.remove(&partition);
        self.warm_until.remove(&partition);
        self.stored.remove(&partition);
        self.failures.remove(&partition);
        self.positions.remove(&partition)
    }

    /// Whether a poll may fetch from `partition` at `now`: it has a position and is not
    /// waiting out a retry backoff.
    fn pollable(&self, partition: Partition, now: SimTime) -> bool {
        matches!(
            self.positions.get(&partition),
            Some(Position::At(_) | Position::ResetLatest)
        ) && self.retry_at.get(&partition).is_none_or(|&t| now >= t)
            && self.warm_until.get(&partition).is_none_or(|&t| now >= t)
    }

    /// The partitions this member is consuming now: in a generation, allowed to consume
    /// (Stable, or cooperative during a rebalance), with a position and warmed up.
    fn consuming(&self, now: SimTime) -> Vec<Partition> {
        let allowed = self.running
            && self.generation.is_some()
            && match self.state {
                State::Stable => true,
                State::Joining | State::Syncing | State::Backoff => {
                    self.protocol == Protocol::Cooperative
                }
                State::Fenced => false,
            };
        if !allowed {
            return Vec::new();
        }
        let ready = |p: &&Partition| {
            matches!(
                self.positions.get(p),
                Some(Position::At(_) | Position::ResetLatest)
            ) && self.warm_until.get(p).is_none_or(|&t| now >= t)
        };
        self.owned.iter().filter(ready).copied().collect()
    }

    /// What auto-commit commits for `partition`: its position (Java) or its stored offset
    /// (librdkafka).
    fn auto_commit_offset(&self, partition: Partition) -> Option<u64> {
        let position = match self.positions.get(&partition) {
            Some(Position::At(o)) => Some(*o),
            _ => None,
        };
        match self.config.auto_commit_from {
            AutoCommitFrom::Poll => position,
            AutoCommitFrom::Timer => self.stored.get(&partition).copied().or(position),
        }
    }
}

impl<M: Carry<Log>> Consumer<M> {
    fn m(&self) -> ConsumerMetrics {
        self.metrics.expect("registered at start")
    }

    fn to_broker(&self, ctx: &mut Ctx<'_, M>, msg: Log) {
        let to = self.broker.expect("resolved at start");
        ctx.send(to, M::wrap(msg));
    }

    fn group_op(&self, ctx: &mut Ctx<'_, M>, op: GroupOp) {
        let req = GroupRequest {
            group: self.config.group.clone(),
            reply_to: ctx.me(),
            op,
        };
        self.to_broker(ctx, Log::Group(req));
    }

    fn timer(&self, ctx: &mut Ctx<'_, M>, after: SimDuration, kind: u32, seq: u64) -> TimerId {
        let tick = Tick::Consumer { kind, seq };
        ctx.set_timer(after, M::wrap(Log::Tick(tick)))
    }

    fn update_gauges(&self, ctx: &mut Ctx<'_, M>) {
        let m = self.m();
        // A member that left (poll timeout) still holds its partitions locally until it
        // rejoins, but the group no longer counts them as its own.
        let left = self.generation.is_none();
        let owned = if left { 0.0 } else { self.owned.len() as f64 };
        let stopped = self.owned.is_empty() || self.state != State::Stable || left;
        ctx.metrics().set(m.owned, owned);
        ctx.metrics()
            .set(m.stopped, if stopped { 1.0 } else { 0.0 });
        if let Some(ledger) = &self.ledger {
            let now = ctx.now();
            let consuming = self.consuming(now);
            (ledger.borrow_mut()).consuming(ctx.metrics(), &self.name, &consuming);
        }
    }

    /// Who this member is in the group now, as an OffsetCommit says it.
    fn commit_member(&self) -> Option<CommitMember> {
        let (member_id, generation) = (self.member_id.clone()?, self.generation?);
        Some(CommitMember {
            member_id,
            instance_id: self.config.group_instance_id.clone(),
            generation,
        })
    }

    fn commit(&mut self, ctx: &mut Ctx<'_, M>, partition: Partition, offset: u64) {
        let member = self.commit_member();
        self.send_commit(ctx, partition, offset, member);
    }

    fn send_commit(
        &mut self,
        ctx: &mut Ctx<'_, M>,
        partition: Partition,
        offset: u64,
        member: Option<CommitMember>,
    ) {
        let id = self.id();
        let req = CommitOffset {
            id,
            reply_to: ctx.me(),
            group: self.config.group.clone(),
            tp: self.tp(partition),
            offset,
            member: member.clone(),
        };
        self.to_broker(ctx, Log::CommitOffset(req));
        let pending = PendingCommit {
            partition,
            offset,
            member,
        };
        self.commits.insert(id, pending);
        self.latest_commit.insert(partition, id);
        self.timer(ctx, self.config.request_timeout, COMMIT_TIMEOUT, id);
    }

    /// An OffsetCommit's answer. A refusal of this member's current generation (the broker
    /// says it is a zombie) makes it rejoin as Kafka's `OffsetCommitResponseHandler` does:
    /// UNKNOWN_MEMBER_ID and ILLEGAL_GENERATION reset the member id and generation (its
    /// partitions are lost, the batch's records go to their next owner again), FENCED_INSTANCE_ID
    /// is fatal. A refusal of a generation it has already left is old news, ignored.
    fn on_commit_ack(&mut self, ctx: &mut Ctx<'_, M>, ack: OffsetCommitAck) {
        let Some(pending) = self.commits.remove(&ack.id) else {
            return;
        };
        if self.latest_commit.get(&pending.partition) == Some(&ack.id) {
            self.latest_commit.remove(&pending.partition);
        }
        let Err(CommitError::Group(e)) = ack.result else {
            return;
        };
        let m = self.m();
        ctx.metrics().inc(m.commits_rejected);
        let current = pending.member.is_some() && pending.member == self.commit_member();
        if !current || self.state == State::Fenced {
            return;
        }
        ctx.trace_note(&format!("commit refused: {e:?}, rejoining"));
        if self.refused(ctx, e) {
            self.update_gauges(ctx);
            self.poll(ctx);
        }
    }

    /// The coordinator refused this member (a heartbeat or a commit, as the Java client's
    /// handlers read the error): fenced for good (false), or to rejoin — as a new member
    /// when its id or generation is gone.
    fn refused(&mut self, ctx: &mut Ctx<'_, M>, e: GroupError) -> bool {
        match e {
            GroupError::FencedInstanceId => {
                self.fence(ctx);
                return false;
            }
            GroupError::UnknownMemberId | GroupError::IllegalGeneration => {
                self.member_id = None;
                self.generation = None;
            }
            GroupError::RebalanceInProgress => {}
        }
        self.rejoin_needed = true;
        true
    }

    /// An OffsetCommit got no answer in time. A commit after processing (`commitSync`) is
    /// sent again at once (the timeout has waited longer than any backoff) while it is still
    /// the partition's latest and the member's generation has not changed; an auto-commit
    /// (`commitAsync`) is not: the next covers it.
    fn on_commit_timeout(&mut self, ctx: &mut Ctx<'_, M>, id: u64) {
        if self.commits.contains_key(&id) {
            let m = self.m();
            ctx.metrics().inc(m.request_timeouts);
            self.commit_failed(ctx, id);
        }
    }

    /// The OffsetCommit `id` failed (no answer in time, or its connection closed): a
    /// `commitSync` is sent again as [`Consumer::on_commit_timeout`] says.
    fn commit_failed(&mut self, ctx: &mut Ctx<'_, M>, id: u64) {
        let Some(pending) = self.commits.remove(&id) else {
            return;
        };
        let latest = self.latest_commit.get(&pending.partition) == Some(&id);
        if latest {
            self.latest_commit.remove(&pending.partition);
        }
        let retry = self.config.auto_commit.is_none()
            && latest
            && self.positions.contains_key(&pending.partition)
            && pending.member.is_some()
            && pending.member == self.commit_member();
        if retry {
            let (p, o, member) = (pending.partition, pending.offset, pending.member);
            self.send_commit(ctx, p, o, member);
        }
    }

    /// Commits every owned partition's position (auto-commit), if the member is in a
    /// generation (Kafka's commit fails otherwise).
    fn commit_all(&mut self, ctx: &mut Ctx<'_, M>) {
        if self.generation.is_none() {
            return;
        }
        let at: Vec<(Partition, u64)> = (self.positions.keys())
            .filter_map(|&p| Some((p, self.auto_commit_offset(p)?)))
            .collect();
        for (p, o) in at {
            self.commit(ctx, p, o);
        }
        self.last_auto_commit = ctx.now();
    }

    /// Sends JoinGroup (`onJoinPrepare` first: auto-commit, eager revocation).
    fn join(&mut self, ctx: &mut Ctx<'_, M>) {
        if self.state == State::Fenced {
            return;
        }
        if self.disconnected {
            // The reconnect joins.
            self.state = State::Backoff;
            return;
        }
        if self.joined_once {
            let m = self.m();
            ctx.metrics().inc(m.rejoins);
        }
        self.joined_once = true;
        self.rejoin_needed = false;
        if self.config.auto_commit.is_some() {
            self.commit_all(ctx);
        }
        // A member that lost its generation (it left, or was told its id is unknown) has
        // lost its partitions, cooperative or not (`onJoinPrepare`'s `onPartitionsLost`).
        let revoked = match self.generation {
            None => self.owned.clone(),
            Some(_) => revoke_on_rejoin(self.protocol, &self.owned),
        };
        self.owned.retain(|p| !revoked.contains(p));
        for &p in &revoked {
            self.forget(p);
        }
        let owned = match self.protocol {
            Protocol::Eager => Vec::new(),
            Protocol::Cooperative => self.owned.clone(),
        };
        let join = JoinRequest {
            client_id: self.client_id.clone(),
            member_id: self.member_id.clone(),
            instance_id: self.config.group_instance_id.clone(),
            owned,
        };
        self.state = State::Joining;
        self.group_op(ctx, GroupOp::Join(join));
        // The coordinator may park a JoinGroup for the whole rebalance timeout.
        let rebalance = self.config.max_poll_interval;
        let timeout = (self.config.request_timeout).max(rebalance + JOIN_GROUP_TIMEOUT_LAPSE);
        self.group_request = self.id();
        self.timer(ctx, timeout, GROUP_TIMEOUT, self.group_request);
        self.update_gauges(ctx);
    }

    /// A new connection to the coordinator, under a new client id: replies to the requests of
    /// the previous one will not be taken for answers to this one's. The connection is
    /// watched: the broker's death resets it ([`Log::Reset`]), as does connecting while it is
    /// down.
    fn connect(&mut self, ctx: &mut Ctx<'_, M>) {
        let n = {
            let mut c = self.connections.borrow_mut();
            *c += 1;
            *c
        };
        self.client_id = format!("{}#{n}", self.name);
        self.disconnected = false;
        let reset = Log::Reset {
            client_id: self.client_id.clone(),
        };
        let broker = self.broker.expect("resolved at start");
        ctx.monitor(broker, M::wrap(reset));
    }

    /// The broker died under this connection (or refused it): every request in flight on it
    /// has failed, as the Java client fails them with a `DisconnectException` when the
    /// socket closes, instead of after `request_timeout` (305 s for a JoinGroup). A JoinGroup
    /// or SyncGroup in flight is to be retried with the member id and generation kept (the
    /// coordinator is marked unknown), and the Fetch in flight is dropped. Until the
    /// reconnect backoff has passed no poll, heartbeat or JoinGroup is sent (a batch that
    /// ends meanwhile still sends its commit, lost if the broker is down); then
    /// [`Consumer::on_reconnect`].
    fn on_reset(&mut self, ctx: &mut Ctx<'_, M>, client_id: &str) {
        if client_id != self.client_id || self.disconnected || self.state == State::Fenced {
            return;
        }
        let m = self.m();
        ctx.metrics().inc(m.connection_resets);
        self.disconnected = true;
        if matches!(self.state, State::Joining | State::Syncing) {
            self.state = State::Backoff;
        }
        self.fetching = None;
        // Kafka's exponent stops where the term reaches the maximum, and the jitter is applied
        // to that term before the cap: waits at the cap spread over 0.8-1 s.
        let term = RECONNECT_BACKOFF
            .saturating_mul(1 << self.resets.min(5))
            .min(RECONNECT_BACKOFF_MAX);
        let factor = ctx
            .rng()
            .random_range(1.0 - RECONNECT_BACKOFF_JITTER..1.0 + RECONNECT_BACKOFF_JITTER);
        let backoff = (term.mul_f64(factor))
            .expect("at most 1.2 s")
            .min(RECONNECT_BACKOFF_MAX);
        self.resets = self.resets.saturating_add(1);
        ctx.trace_note(&format!(
            "connection {} reset: reconnecting in {backoff}",
            self.client_id
        ));
        self.timer(ctx, backoff, RECONNECT, 0);
        self.update_gauges(ctx);
    }

    /// The reconnect backoff is over: a new connection, on which the OffsetFetches and
    /// commitSyncs that were in flight go again (an auto-commit, `commitAsync`, does not: the
    /// next covers it), and the group or the poll loop goes on from where the reset left it.
    fn on_reconnect(&mut self, ctx: &mut Ctx<'_, M>) {
        if !self.disconnected || !self.running {
            return;
        }
        self.connect(ctx);
        // What was in flight on the closed connection (or sent while it was closed) is lost:
        // the OffsetFetches and commitSyncs go again on the new one, before a rejoin.
        let offset_fetches: Vec<u64> = self.committed_requests.keys().copied().collect();
        for id in offset_fetches {
            self.committed_failed(ctx, id);
        }
        let commits: Vec<u64> = self.commits.keys().copied().collect();
        for id in commits {
            self.commit_failed(ctx, id);
        }
        if self.state == State::Backoff {
            self.join(ctx);
        } else {
            self.poll(ctx);
        }
    }

    /// The JoinGroup or SyncGroup numbered `seq` got no answer in time: the client gives up on
    /// the connection (the coordinator is marked unknown, `markCoordinatorUnknown`), finds it
    /// again (a new connection here) and rejoins after the retry backoff, keeping its member
    /// id and generation as Kafka's client does after a disconnect.
    fn on_group_timeout(&mut self, ctx: &mut Ctx<'_, M>, seq: u64) {
        let waiting = matches!(self.state, State::Joining | State::Syncing);
        if !waiting || seq != self.group_request {
            return;
        }
        let m = self.m();
        ctx.metrics().inc(m.request_timeouts);
        ctx.trace_note(match self.state {
            State::Joining => "JoinGroup timed out: rediscovering the coordinator",
            _ => "SyncGroup timed out: rediscovering the coordinator",
        });
        self.connect(ctx);
        self.state = State::Backoff;
        self.timer(ctx, self.config.retry_backoff, REJOIN, 0);
        self.update_gauges(ctx);
    }

    /// A failed JoinGroup or SyncGroup: rejoin after the retry backoff.
    fn backoff(&mut self, ctx: &mut Ctx<'_, M>, error: GroupError) {
        match error {
            GroupError::FencedInstanceId => {
                self.fence(ctx);
                return;
            }
            GroupError::UnknownMemberId | GroupError::IllegalGeneration => {
                self.member_id = None;
                self.generation = None;
            }
            GroupError::RebalanceInProgress => {}
        }
        self.state = State::Backoff;
        self.timer(ctx, self.config.retry_backoff, REJOIN, 0);
        self.update_gauges(ctx);
    }

    fn fence(&mut self, ctx: &mut Ctx<'_, M>) {
        ctx.trace_note("fenced: another consumer holds this group.instance.id");
        self.state = State::Fenced;
        self.owned.clear();
        self.positions.clear();
        self.retry_at.clear();
        self.failures.clear();
        self.member_id = None;
        self.generation = None;
        self.update_gauges(ctx);
    }

    fn on_join(&mut self, ctx: &mut Ctx<'_, M>, resp: JoinResponse) {
        // The broker answers on this connection: the next reset starts the backoff afresh.
        self.resets = 0;
        self.member_id = Some(resp.member_id.clone());
        self.generation = Some(resp.generation);
        let assignment =
            (resp.leader == resp.member_id && !resp.skip_assignment).then(|| self.assign(&resp));
        let sync = GroupOp::Sync {
            client_id: self.client_id.clone(),
            member_id: resp.member_id,
            instance_id: self.config.group_instance_id.clone(),
            generation: resp.generation,
            assignment,
        };
        self.state = State::Syncing;
        self.group_op(ctx, sync);
        self.group_request = self.id();
        let timeout = self.config.request_timeout;
        self.timer(ctx, timeout, GROUP_TIMEOUT, self.group_request);
    }

    /// The leader's assignment, by the configured assignor.
    fn assign(&self, resp: &JoinResponse) -> Assignment {
        let topic = &self.config.topic;
        let members: Vec<(assign::MemberId, Subscription)> = (resp.members.iter())
            .map(|m| {
                let mut s = Subscription::to([topic.as_str()]);
                s.group_instance_id = m.instance_id.clone();
                (m.member_id.clone(), s)
            })
            .collect();
        let previous: assign::Assignment = (resp.members.iter())
            .map(|m| {
                let tps = m.owned.iter().map(|&p| self.tp_assign(p)).collect();
                (m.member_id.clone(), tps)
            })
            .collect();
        let per_topic = BTreeMap::from([(topic.clone(), self.config.partitions)]);
        let a = self.config.assignor.assign(&members, &per_topic, &previous);
        a.into_iter()
            .map(|(member, tps)| {
                let ps = tps.into_iter().map(|tp| tp.partition).collect();
                (member, ps)
            })
            .collect()
    }

    fn tp_assign(&self, partition: Partition) -> assign::TopicPartition {
        assign::TopicPartition::new(self.config.topic.clone(), partition)
    }

    fn on_sync(&mut self, ctx: &mut Ctx<'_, M>, assigned: Vec<Partition>) {
        let change = apply_assignment(self.protocol, &self.owned, &assigned);
        for &p in &change.revoked {
            let offset = self.auto_commit_offset(p);
            self.forget(p);
            if let (Some(o), true) = (offset, self.config.auto_commit.is_some()) {
                self.commit(ctx, p, o);
            }
        }
        self.owned = change.owned;
        for &p in &change.added {
            if let Some(warmup) = self.warmup.clone() {
                let d = ctx.sample_duration(&warmup);
                let d = ctx.work(d);
                self.warm_until.insert(p, ctx.now().saturating_add(d));
                self.timer(ctx, d, WARM, u64::from(p));
            }
            self.positions.insert(p, Position::Fetching);
            self.fetch_committed(ctx, p);
        }
        self.state = State::Stable;
        self.update_gauges(ctx);
        if change.rejoin {
            self.rejoin_needed = true;
        }
        self.poll(ctx);
    }

    /// Sends an OffsetFetch for `p`.
    fn fetch_committed(&mut self, ctx: &mut Ctx<'_, M>, p: Partition) {
        let id = self.id();
        self.committed_requests.insert(id, p);
        let req = FetchCommitted {
            id,
            reply_to: ctx.me(),
            group: self.config.group.clone(),
            tp: self.tp(p),
        };
        self.to_broker(ctx, Log::FetchCommitted(req));
        self.timer(ctx, self.config.request_timeout, COMMITTED_TIMEOUT, id);
    }

    /// An OffsetFetch got no answer in time: sent again while the partition still waits for
    /// it (else the partition would never be consumed).
    fn on_committed_timeout(&mut self, ctx: &mut Ctx<'_, M>, id: u64) {
        if self.committed_requests.contains_key(&id) {
            let m = self.m();
            ctx.metrics().inc(m.request_timeouts);
            self.committed_failed(ctx, id);
        }
    }

    /// The OffsetFetch `id` failed (no answer in time, or its connection closed): sent again
    /// while its partition still waits for it.
    fn committed_failed(&mut self, ctx: &mut Ctx<'_, M>, id: u64) {
        let Some(p) = self.committed_requests.remove(&id) else {
            return;
        };
        if self.positions.get(&p) == Some(&Position::Fetching) {
            self.fetch_committed(ctx, p);
        }
    }

    /// A Fetch got no answer in time: the poll loop goes on, from the next partition.
    fn on_fetch_timeout(&mut self, ctx: &mut Ctx<'_, M>, id: u64) {
        if self.fetching.is_none_or(|(f, _)| f != id) {
            return;
        }
        let m = self.m();
        ctx.metrics().inc(m.request_timeouts);
        self.fetching = None;
        self.poll(ctx);
    }

    fn on_committed(&mut self, ctx: &mut Ctx<'_, M>, reply: CommittedReply) {
        let Some(p) = self.committed_requests.remove(&reply.id) else {
            return;
        };
        if self.positions.get(&p) != Some(&Position::Fetching) {
            return;
        }
        let pos = match (reply.offset, self.config.auto_offset_reset) {
            (Some(o), _) => {
                self.resumed(ctx, p, o);
                Position::At(o)
            }
            (None, OffsetReset::Earliest) => {
                self.resumed(ctx, p, 0);
                Position::At(0)
            }
            (None, OffsetReset::Latest) => Position::ResetLatest,
            (None, OffsetReset::None) => {
                ctx.trace_note(&format!("no committed offset for {}", self.tp(p)));
                Position::Failed
            }
        };
        self.positions.insert(p, pos);
        self.update_gauges(ctx);
        self.poll(ctx);
    }

    /// Tells the ledger this member resumes `p` at `offset`.
    fn resumed(&self, ctx: &mut Ctx<'_, M>, p: Partition, offset: u64) {
        if let Some(ledger) = &self.ledger {
            ledger.borrow_mut().resumed(ctx.metrics(), p, offset);
        }
    }

    /// One `poll()`: rejoin if flagged, auto-commit if due, then fetch from the next owned
    /// partition that has a position.
    fn poll(&mut self, ctx: &mut Ctx<'_, M>) {
        if self.busy.is_some() || self.fetching.is_some() || self.idle || self.disconnected {
            return;
        }
        if self.rejoin_needed && self.state == State::Stable {
            self.join(ctx);
        }
        let consuming = match self.state {
            State::Stable => true,
            // A cooperative member keeps consuming what it owns during a rebalance.
            State::Joining | State::Syncing | State::Backoff => {
                self.protocol == Protocol::Cooperative
            }
            State::Fenced => false,
        };
        if !consuming {
            return;
        }
        if let Some(interval) = self.config.auto_commit
            && self.config.auto_commit_from == AutoCommitFrom::Poll
            && ctx.now() >= self.last_auto_commit.saturating_add(interval)
        {
            self.commit_all(ctx);
        }
        let n = self.owned.len();
        let now = ctx.now();
        let next = (0..n)
            .map(|i| (self.rr + i) % n)
            .find(|&i| self.pollable(self.owned[i], now));
        let Some(i) = next else {
            return;
        };
        self.rr = i + 1;
        let p = self.owned[i];
        let offset = match self.positions[&p] {
            Position::At(o) => o,
            // Beyond any log end: answered OFFSET_OUT_OF_RANGE with the high watermark.
            _ => u64::MAX,
        };
        let id = self.id();
        self.fetching = Some((id, p));
        let req = Fetch {
            id,
            reply_to: ctx.me(),
            tp: self.tp(p),
            offset,
            max_records: self.config.max_poll_records,
            max_bytes: DEFAULT_FETCH_MAX_BYTES,
        };
        self.to_broker(ctx, Log::Fetch(req));
        self.timer(ctx, self.config.request_timeout, FETCH_TIMEOUT, id);
        // The poll timer restarts with each poll.
        if let Some(t) = self.poll_timer.take() {
            ctx.cancel_timer(t);
        }
        self.poll_timer = Some(self.timer(ctx, self.config.max_poll_interval, POLL_TIMEOUT, id));
    }

    fn idle_or_poll(&mut self, ctx: &mut Ctx<'_, M>) {
        let now = ctx.now();
        let polled = (self.positions.keys())
            .filter(|&&p| self.pollable(p, now))
            .count();
        if self.empty_polls >= polled.max(1) {
            self.empty_polls = 0;
            self.idle = true;
            self.timer(ctx, self.config.poll_idle, POLL_IDLE, 0);
        } else {
            self.poll(ctx);
        }
    }

    fn on_fetch(&mut self, ctx: &mut Ctx<'_, M>, reply: FetchReply) {
        let Some((id, p)) = self.fetching else {
            return;
        };
        if id != reply.id {
            return;
        }
        self.fetching = None;
        self.progress = ctx.now();
        let owned = self.owned.contains(&p) && self.positions.contains_key(&p);
        if !owned {
            // Revoked while the fetch was in flight: its records are not ours.
            self.poll(ctx);
            return;
        }
        match reply.outcome {
            FetchOutcome::Records {
                records,
                next_offset,
            } if !records.is_empty() => {
                self.empty_polls = 0;
                // Processing stops at the first poison record: it fails at the end of its own
                // processing time, and the records after it are dropped.
                let poison = records.iter().position(|r| r.poison);
                let attempted = poison.map_or(records.len(), |i| i + 1);
                let mut total = SimDuration::ZERO;
                self.busy_ends.clear();
                for i in 0..attempted {
                    total += ctx.sample_duration(&self.processing);
                    if poison != Some(i) {
                        self.busy_ends
                            .push(ctx.now().saturating_add(ctx.work(total)));
                    }
                }
                if let Some(overhead) = &self.batch_overhead {
                    total += ctx.sample_duration(overhead);
                }
                let poison = poison.map(|i| records[i]);
                // librdkafka stores the offsets as it hands the records over.
                self.stored.insert(p, next_offset);
                self.busy_since = Some(ctx.now());
                self.busy = Some(Batch {
                    seq: id,
                    partition: p,
                    first: records[0].offset,
                    records: poison.map_or(records.len(), |_| attempted - 1) as u64,
                    next_offset: poison.map_or(next_offset, |r| r.offset),
                    poison,
                    work_left: total,
                });
                self.work_slice(ctx);
            }
            FetchOutcome::Records { next_offset, .. } => {
                self.positions.insert(p, Position::At(next_offset));
                self.empty_polls += 1;
                self.idle_or_poll(ctx);
            }
            FetchOutcome::OffsetOutOfRange { log_start } => {
                let pos = match (self.positions[&p], self.config.auto_offset_reset) {
                    (Position::ResetLatest, _) | (_, OffsetReset::Latest) => {
                        if let Some(ledger) = &self.ledger {
                            ledger.borrow_mut().start_at(p, reply.high_watermark);
                        }
                        self.resumed(ctx, p, reply.high_watermark);
                        Position::At(reply.high_watermark)
                    }
                    (_, OffsetReset::Earliest) => {
                        self.resumed(ctx, p, log_start);
                        Position::At(log_start)
                    }
                    (_, OffsetReset::None) => {
                        ctx.trace_note(&format!("offset out of range on {}", self.tp(p)));
                        Position::Failed
                    }
                };
                self.positions.insert(p, pos);
                self.poll(ctx);
            }
            FetchOutcome::UnknownTopicOrPartition => {
                self.empty_polls += 1;
                self.idle_or_poll(ctx);
            }
        }
    }

    /// Starts the next slice of the batch in progress: the rest of its work if that takes at
    /// most [`WORK_SLICE`] at the current slowdown, else a slice of that length, doing what
    /// the slowdown lets it.
    fn work_slice(&mut self, ctx: &mut Ctx<'_, M>) {
        let Some(batch) = self.busy.as_mut() else {
            return;
        };
        let left = batch.work_left;
        let scaled = ctx.work(left);
        let slice = if scaled <= WORK_SLICE {
            batch.work_left = SimDuration::ZERO;
            scaled
        } else {
            let done = libm::round(WORK_SLICE.as_nanos() as f64 / ctx.slowdown());
            let done = SimDuration::from_nanos(done.min(left.as_nanos() as f64) as u64);
            batch.work_left = left - done;
            WORK_SLICE
        };
        let seq = batch.seq;
        self.timer(ctx, slice, PROCESSED, seq);
    }

    fn on_processed(&mut self, ctx: &mut Ctx<'_, M>, seq: u64) {
        let Some(batch) = self.busy.filter(|b| b.seq == seq) else {
            return;
        };
        if !batch.work_left.is_zero() {
            self.work_slice(ctx);
            return;
        }
        self.busy = None;
        self.progress = ctx.now();
        if let Some(since) = self.busy_since.take() {
            self.busy_for += ctx.now() - since;
        }
        let m = self.m();
        ctx.metrics().add(m.processed, batch.records);
        ctx.metrics().inc(m.batches);
        if let Some(ledger) = &self.ledger {
            let (p, first, n) = (batch.partition, batch.first, batch.records);
            ledger.borrow_mut().processed(ctx.metrics(), p, first, n);
        }
        let p = batch.partition;
        if self.owned.contains(&p) && self.positions.contains_key(&p) {
            let mut next = batch.next_offset;
            if let Some(record) = batch.poison {
                ctx.metrics().inc(m.poison_failures);
                next = self.on_poison(ctx, p, record);
            }
            self.positions.insert(p, Position::At(next));
            if self.config.auto_commit.is_none() {
                if self.generation.is_some() {
                    self.commit(ctx, p, next);
                } else {
                    ctx.metrics().inc(m.commits_failed);
                }
            }
        } else if batch.poison.is_some() {
            ctx.metrics().inc(m.poison_failures);
        }
        self.poll(ctx);
    }

    /// A failed attempt at `record` of `partition`: dead-letters it if its retries are spent
    /// (then the position moves past it), else backs the partition off. Returns the position.
    fn on_poison(&mut self, ctx: &mut Ctx<'_, M>, partition: Partition, record: Record) -> u64 {
        let failures = match self.failures.get(&partition) {
            Some(&(offset, n)) if offset == record.offset => n + 1,
            _ => 1,
        };
        if let PoisonPolicy::DeadLetter { max_retries, topic } = &self.config.on_poison
            && failures > *max_retries
        {
            let tp = TopicPartition::new(topic, 0);
            self.failures.remove(&partition);
            let req = Produce {
                id: self.id(),
                reply_to: ctx.me(),
                tp,
                records: vec![NewRecord {
                    id: record.id,
                    key: record.key,
                    bytes: record.bytes,
                    poison: record.poison,
                }],
            };
            self.to_broker(ctx, Log::Produce(req));
            let m = self.m();
            ctx.metrics().inc(m.dead_lettered);
            return record.offset + 1;
        }
        self.failures.insert(partition, (record.offset, failures));
        let backoff = self.config.retry_backoff;
        self.retry_at
            .insert(partition, ctx.now().saturating_add(backoff));
        self.timer(ctx, backoff, RETRY, u64::from(partition));
        record.offset
    }

    /// A partition's retry backoff may have ended: poll, even from an idle wait.
    fn on_retry_timer(&mut self, ctx: &mut Ctx<'_, M>, partition: Partition) {
        let now = ctx.now();
        if self.retry_at.get(&partition).is_some_and(|&t| now >= t) {
            self.retry_at.remove(&partition);
            self.idle = false;
            self.poll(ctx);
        }
    }

    /// The poll timer expired with a batch still in processing: leave the group.
    fn on_poll_timeout(&mut self, ctx: &mut Ctx<'_, M>, seq: u64) {
        let late = self.busy.is_some_and(|b| b.seq == seq);
        if !late || self.member_id.is_none() {
            return;
        }
        self.poll_timer = None;
        let m = self.m();
        ctx.metrics().inc(m.poll_timeouts);
        ctx.trace_note("poll timeout: leaving the group");
        if sends_leave_group(self.config.group_instance_id.as_deref()) {
            let leave = GroupOp::Leave {
                client_id: self.client_id.clone(),
                member_id: self.member_id.clone(),
                instance_id: None,
            };
            self.group_op(ctx, leave);
        }
        self.member_id = None;
        self.generation = None;
        self.rejoin_needed = true;
        self.update_gauges(ctx);
    }

    fn on_heartbeat_timer(&mut self, ctx: &mut Ctx<'_, M>) {
        if self.state == State::Fenced {
            return;
        }
        if self.state == State::Stable
            && !self.disconnected
            && let (Some(member_id), Some(generation)) = (self.member_id.clone(), self.generation)
        {
            let hb = GroupOp::Heartbeat {
                client_id: self.client_id.clone(),
                member_id,
                instance_id: self.config.group_instance_id.clone(),
                generation,
            };
            self.group_op(ctx, hb);
        }
        self.timer(ctx, self.config.heartbeat_interval, HEARTBEAT, 0);
    }

    fn on_group_reply(&mut self, ctx: &mut Ctx<'_, M>, response: Response) {
        match response {
            Response::Join(result) if self.state == State::Joining => match result {
                Ok(resp) => self.on_join(ctx, resp),
                Err(e) => self.backoff(ctx, e),
            },
            Response::Sync(result) if self.state == State::Syncing => match result {
                Ok(assigned) => self.on_sync(ctx, assigned),
                Err(e) => self.backoff(ctx, e),
            },
            Response::Heartbeat(Err(e)) if self.state == State::Stable => {
                let rejoin = self.refused(ctx, e);
                if rejoin {
                    self.poll(ctx);
                }
            }
            _ => {}
        }
    }
}

impl<M: Carry<Log>> Consumer<M> {
    /// Starts the client: resolve the broker, join, heartbeat.
    fn boot(&mut self, ctx: &mut Ctx<'_, M>) {
        self.running = true;
        let name = &self.config.broker;
        self.broker = Some(match ctx.lookup(name) {
            Some(id) => id,
            None => panic!(
                "{}: broker names `{name}`, but no actor has that name",
                ctx.name()
            ),
        });
        self.last_auto_commit = ctx.now();
        self.usage_from = ctx.now();
        self.progress = ctx.now();
        self.connect(ctx);
        // Request ids unique across incarnations, so that an answer to a dead process's
        // request is never taken for one to this process's.
        self.next_id = *self.connections.borrow() << 32;
        self.join(ctx);
        self.timer(ctx, self.config.heartbeat_interval, HEARTBEAT, 0);
        if let (Some(interval), AutoCommitFrom::Timer) =
            (self.config.auto_commit, self.config.auto_commit_from)
        {
            self.timer(ctx, interval, AUTO_COMMIT, 0);
        }
    }

    /// `KafkaConsumer.close()`: auto-commit's final commit, LeaveGroup for a dynamic member
    /// (a static one stays in the group until its session times out: KIP-345), then the
    /// process exits and comes back `restart_after` later (None: stays stopped).
    ///
    /// A batch in progress is interrupted (the pod's SIGTERM), as a crash interrupts it: the
    /// records whose processing had ended are processed (counted, and reported to the
    /// ledger), the rest are not. With the Java client's auto-commit, close commits the
    /// consumed positions (`ConsumerCoordinator.close` → `maybeAutoCommitOffsetsSync`); an
    /// application that closes after its loop has processed what it polled commits exactly
    /// what it processed, so the interrupted batch's partition is committed after its done
    /// records, and its next owner starts at the first record not processed. librdkafka's
    /// close commits the stored offsets (the whole batch handed over: the rest is lost, K6).
    /// Committing after each batch (`auto_commit: None`), the done records are not committed
    /// and are processed again by the next owner, as after a crash.
    fn close(&mut self, ctx: &mut Ctx<'_, M>, restart_after: Option<SimDuration>) {
        let now = ctx.now();
        if let Some((p, next)) = self.count_done(now, ctx.metrics()) {
            self.busy = None;
            let java = self.config.auto_commit_from == AutoCommitFrom::Poll;
            if java && self.positions.contains_key(&p) {
                self.positions.insert(p, Position::At(next));
            }
        }
        if self.config.auto_commit.is_some() {
            self.commit_all(ctx);
        }
        if sends_leave_group(self.config.group_instance_id.as_deref()) && self.member_id.is_some() {
            let leave = GroupOp::Leave {
                client_id: self.client_id.clone(),
                member_id: self.member_id.clone(),
                instance_id: None,
            };
            self.group_op(ctx, leave);
        }
        self.running = false;
        self.update_gauges(ctx);
        *self.deployed.borrow_mut() = restart_after.is_some();
        ctx.trace_note(match restart_after {
            Some(_) => "closing for a restart",
            None => "closing: scaled down",
        });
        // A new process: the restarted incarnation starts (or stays stopped) from nothing.
        ctx.crash_self(Some(restart_after.unwrap_or(SimDuration::ZERO)));
    }

    fn on_control(&mut self, ctx: &mut Ctx<'_, M>, control: Control) {
        match control {
            Control::Start if !self.running => {
                *self.deployed.borrow_mut() = true;
                self.boot(ctx);
            }
            Control::Stop if self.running => self.close(ctx, None),
            Control::Restart { after } if self.running => self.close(ctx, Some(after)),
            _ => {}
        }
    }

    /// Reports the records of the batch in progress whose processing had ended by `now` as
    /// processed (the counter and the ledger), when the batch is interrupted (a crash, a
    /// close). Returns the batch's partition and the offset after those records.
    fn count_done(&self, now: SimTime, metrics: &mut Metrics) -> Option<(Partition, u64)> {
        let (batch, m) = (self.busy?, self.metrics?);
        let done = self.busy_ends.iter().filter(|&&end| end <= now).count() as u64;
        if done > 0 {
            metrics.add(m.processed, done);
            if let Some(ledger) = &self.ledger {
                let mut ledger = ledger.borrow_mut();
                ledger.processed(metrics, batch.partition, batch.first, done);
            }
        }
        Some((batch.partition, batch.first + done))
    }

    /// The share of the time since the last query spent processing.
    fn usage(&mut self, ctx: &mut Ctx<'_, M>) -> f64 {
        let now = ctx.now();
        let mut busy = self.busy_for;
        if let Some(since) = self.busy_since {
            busy += now - since;
            self.busy_since = Some(now);
        }
        let window = now - self.usage_from;
        self.busy_for = SimDuration::ZERO;
        self.usage_from = now;
        if window.is_zero() {
            return 0.0;
        }
        (busy.as_nanos() as f64 / window.as_nanos() as f64).min(1.0)
    }
}

impl<M: Carry<Log>> Actor<M> for Consumer<M> {
    fn on_start(&mut self, ctx: &mut Ctx<'_, M>) {
        self.metrics = Some(ConsumerMetrics {
            processed: ctx.counter("records_processed_total"),
            batches: ctx.counter("batches_total"),
            rejoins: ctx.counter("rejoins_total"),
            poll_timeouts: ctx.counter("poll_timeouts_total"),
            commits_failed: ctx.counter("commits_failed_total"),
            commits_rejected: ctx.counter("commits_rejected_total"),
            request_timeouts: ctx.counter("request_timeouts_total"),
            connection_resets: ctx.counter("connection_resets_total"),
            poison_failures: ctx.counter("poison_failures_total"),
            dead_lettered: ctx.counter("dead_lettered_total"),
            owned: ctx.gauge("partitions_owned"),
            stopped: ctx.gauge("stopped"),
        });
        self.name = ctx.name().to_string();
        if let Some(ledger) = &self.ledger {
            ledger.borrow_mut().register(ctx.metrics());
        }
        self.usage_from = ctx.now();
        if *self.deployed.borrow() {
            self.boot(ctx);
        } else {
            self.update_gauges(ctx);
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, M>, _from: ActorId, msg: M) {
        match msg.unwrap() {
            Some(Log::Control(control)) => self.on_control(ctx, control),
            Some(Log::UsageQuery { id, reply_to }) => {
                let busy = self.usage(ctx);
                let running = self.running;
                let reply = UsageReply { id, busy, running };
                ctx.send(reply_to, M::wrap(Log::UsageReply(reply)));
            }
            Some(Log::Probe { id, reply_to }) => {
                let (progress, running) = (self.progress, self.running);
                let reply = ProbeReply {
                    id,
                    progress,
                    running,
                };
                ctx.send(reply_to, M::wrap(Log::ProbeReply(reply)));
            }
            _ if !self.running => {}
            // A reply to another connection's request (a dead process's, or one given up on)
            // never reaches this connection in Kafka.
            Some(Log::GroupReply(reply))
                if reply.group == self.config.group && reply.to == self.client_id =>
            {
                self.on_group_reply(ctx, reply.response)
            }
            Some(Log::Reset { client_id }) => self.on_reset(ctx, &client_id),
            Some(Log::FetchReply(reply)) => self.on_fetch(ctx, reply),
            Some(Log::CommittedReply(reply)) => self.on_committed(ctx, reply),
            Some(Log::OffsetCommitAck(ack)) => self.on_commit_ack(ctx, ack),
            _ => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, M>, msg: M) {
        let Some(Log::Tick(Tick::Consumer { kind: handler, seq })) = msg.unwrap() else {
            return;
        };
        match handler {
            HEARTBEAT => self.on_heartbeat_timer(ctx),
            PROCESSED => self.on_processed(ctx, seq),
            POLL_IDLE => {
                self.idle = false;
                self.poll(ctx);
            }
            POLL_TIMEOUT => self.on_poll_timeout(ctx, seq),
            REJOIN if self.state == State::Backoff => self.join(ctx),
            RETRY => self.on_retry_timer(ctx, seq as Partition),
            WARM => {
                let p = seq as Partition;
                if self.warm_until.get(&p).is_some_and(|&t| ctx.now() >= t) {
                    self.warm_until.remove(&p);
                    self.update_gauges(ctx);
                    self.idle = false;
                    self.poll(ctx);
                }
            }
            AUTO_COMMIT => {
                self.commit_all(ctx);
                let interval = self.config.auto_commit.expect("set only with auto-commit");
                self.timer(ctx, interval, AUTO_COMMIT, 0);
            }
            GROUP_TIMEOUT => self.on_group_timeout(ctx, seq),
            FETCH_TIMEOUT => self.on_fetch_timeout(ctx, seq),
            COMMITTED_TIMEOUT => self.on_committed_timeout(ctx, seq),
            COMMIT_TIMEOUT => self.on_commit_timeout(ctx, seq),
            RECONNECT => self.on_reconnect(ctx),
            _ => {}
        }
    }

    /// A crash in the middle of a batch: the records whose processing had ended are
    /// processed (a sink written, an API called), the rest are not, and none is committed.
    fn on_crash(&mut self, now: SimTime, metrics: &mut Metrics) {
        self.count_done(now, metrics);
        if let Some(ledger) = &self.ledger {
            ledger.borrow_mut().consuming(metrics, &self.name, &[]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::rpc::from_ron;

    #[test]
    fn configs_parse_with_kafka_defaults_and_name_bad_fields() {
        let c: ConsumerConfig = from_ron(
            r#"(broker: "b", group: "g", topic: "t", partitions: 6, processing: Const("1ms"))"#,
        )
        .unwrap();
        assert_eq!(c.session_timeout, SimDuration::from_secs(45));
        assert_eq!(c.heartbeat_interval, SimDuration::from_secs(3));
        assert_eq!(c.max_poll_interval, SimDuration::from_secs(300));
        assert_eq!(c.max_poll_records, 500);
        assert_eq!(c.auto_commit, Some(SimDuration::from_secs(5)));
        assert_eq!(c.auto_offset_reset, OffsetReset::Latest);
        assert_eq!(c.poll_idle, SimDuration::from_millis(500));
        assert_eq!(c.assignor, Assignor::Range);
        assert_eq!(c.group_instance_id, None);
        assert_eq!(c.on_poison, PoisonPolicy::Stall);
        assert_eq!(c.retry_backoff, SimDuration::from_millis(100));
        assert_eq!(c.request_timeout, SimDuration::from_secs(30));
        let bad = |extra: &str| {
            from_ron::<ConsumerConfig>(&format!(
                r#"(broker: "b", group: "g", topic: "t", partitions: 6, {extra})"#
            ))
            .unwrap_err()
            .field()
            .map(String::from)
        };
        assert_eq!(bad(r#"processing: Const(3)"#), Some("processing".into()));
        assert_eq!(
            bad(r#"processing: Const("1ms"), max_poll_records: 0"#),
            Some("max_poll_records".into())
        );
        assert_eq!(
            bad(r#"processing: Const("1ms"), heartbeat_interval: "50s""#),
            Some("heartbeat_interval".into())
        );
        assert_eq!(
            bad(r#"processing: Const("1ms"), auto_commit: Some("0s")"#),
            Some("auto_commit".into())
        );
        assert_eq!(
            bad(r#"processing: Const("1ms"), request_timeout: "0s""#),
            Some("request_timeout".into())
        );
    }
}

#[cfg(test)]
mod processing_tests {
    use super::*;
    use crate::engine::sim::{Sim, SimConfig};
    use crate::fault::{Fault, FaultPlan};
    use crate::model::log::{Broker, BrokerConfig, Producer, ProducerConfig};
    use crate::model::rpc::from_ron;

    const MS: u64 = 1_000_000;

    /// A one-partition topic holding `records` records (all produced in the first 20 ms), one
    /// consumer `c` reading it from the earliest offset with the extra config `extra`, and the
    /// faults of `plan`. Returns the instant the consumer had processed every record (to the
    /// 10 ms step), or None by 10 minutes.
    fn finish_time(records: u64, extra: &str, plan: FaultPlan) -> Option<SimTime> {
        let mut sim: Sim<Log> = Sim::with_config(SimConfig::new(11)).unwrap();
        let h = sim.add_host("h").unwrap();
        let config: BrokerConfig = from_ron(
            r#"(topics: [(name: "t", partitions: 1)],
                groups: {"g": (session_timeout: "45s", rebalance_timeout: "10m")})"#,
        )
        .unwrap();
        let broker: Broker<Log> = Broker::new(config).unwrap();
        sim.spawn(h, "broker", move || broker.clone()).unwrap();
        let config: ProducerConfig = from_ron(&format!(
            r#"(topic: "t", partitions: 1, brokers: ["broker"], rate: Constant("100000/s"),
                limit: Some({records}))"#
        ))
        .unwrap();
        let producer: Producer<Log> = Producer::new(config).unwrap();
        sim.spawn(h, "producer", move || producer.clone()).unwrap();
        let config: ConsumerConfig = from_ron(&format!(
            r#"(broker: "broker", group: "g", topic: "t", partitions: 1, auto_commit: None,
                auto_offset_reset: Earliest, max_poll_interval: "10m", {extra})"#
        ))
        .unwrap();
        let consumer: Consumer<Log> = Consumer::new(config).unwrap();
        sim.spawn(h, "c", move || consumer.clone()).unwrap();
        sim.add_faults(&plan).unwrap();
        let processed = |sim: &Sim<Log>| sim.metrics().counter_value("c.records_processed_total");
        let mut t = 0;
        while t < 600_000 * MS {
            t += 10 * MS;
            sim.run_until(SimTime::from_nanos(t));
            if processed(&sim) == Some(records) {
                return Some(sim.now());
            }
        }
        None
    }

    #[test]
    fn batch_overhead_is_paid_once_per_poll_so_larger_polls_process_faster() {
        // 2,000 records at 1 ms each. Polls of 500 pay the 50 ms overhead 4 times, polls of
        // 10 pay it 200 times: 196 x 50 ms = 9.8 s longer, plus 196 more fetch round trips
        // (well under a millisecond each on one host).
        let none = FaultPlan::new();
        let at = |extra: &str| finish_time(2000, extra, none.clone()).expect("finishes");
        let with = r#"processing: Const("1ms"), batch_overhead: Some(Const("50ms"))"#;
        let big = at(&format!("{with}, max_poll_records: 500"));
        let small = at(&format!("{with}, max_poll_records: 10"));
        let extra = (small - big).as_nanos();
        assert!(
            (9_800 * MS..=10_100 * MS).contains(&extra),
            "polls of 10 finish {extra} ns after polls of 500"
        );
        // Without the overhead the poll size hardly matters: only the extra fetches remain.
        let plain = r#"processing: Const("1ms")"#;
        let big = at(&format!("{plain}, max_poll_records: 500"));
        let small = at(&format!("{plain}, max_poll_records: 10"));
        assert!((small - big).as_nanos() <= 300 * MS, "{small} vs {big}");
    }

    #[test]
    fn a_slowdown_that_ends_during_a_long_batch_slows_only_the_part_before_its_end() {
        // One batch of 500 records at 100 ms: 50 s of work. Healthy, it ends 50 s after it
        // started at `start`.
        let extra = r#"processing: Const("100ms")"#;
        let healthy = finish_time(500, extra, FaultPlan::new()).expect("finishes");
        let start = healthy.as_nanos() - 50_000 * MS;
        // 10x slower until 20 s: the work before 20 s does a tenth of its time's worth, the
        // rest runs at full speed. Scaling the whole batch by the slowdown at its start would
        // make it 500 s.
        let until = 20_000 * MS;
        assert!(
            start < until,
            "the batch starts at {start} ns, in the slowdown"
        );
        let slow = Fault::Slow {
            target: "c".into(),
            factor: 10.0,
        };
        let plan = FaultPlan::new().window(SimTime::ZERO, SimTime::from_nanos(until), slow);
        let got = finish_time(500, extra, plan).expect("finishes").as_nanos();
        let expected = until + 50_000 * MS - (until - start) / 10;
        // Within one slice (the one running when the slowdown ends is slowed to its end) and
        // the 10 ms step of the search.
        let tolerance = WORK_SLICE.as_nanos() + 10 * MS;
        assert!(
            got.abs_diff(expected) <= tolerance,
            "finished at {got} ns, expected {expected} ns"
        );
    }

    #[test]
    fn batch_overhead_must_be_a_duration() {
        let bad = from_ron::<ConsumerConfig>(
            r#"(broker: "b", group: "g", topic: "t", partitions: 1, processing: Const("1ms"),
                batch_overhead: Some(Const(5)))"#,
        )
        .unwrap_err();
        assert_eq!(bad.field(), Some("batch_overhead"));
    }
}
