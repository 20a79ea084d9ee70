//! The pure cores of the message-log family (K1–K7 of the catalogue): Kafka's partitioner,
//! the partition log with its retention, the consumer-group assignors, the group coordinator's
//! state machine, and the autoscaler's control loop. As in `model/cache/` and
//! `model/rpc/resilience.rs`, none of them is an actor: each takes `now` (and, where it draws,
//! the caller's own `&mut SimRng`) and returns decisions, so each is tested on its exact
//! semantics here, against Kafka's documented behaviour, and the actors that embed them (a
//! `Broker` holding partitions and a group coordinator, a `Producer`, the consumers of a
//! `ConsumerGroup`, an `Autoscaler`) stay pure functions of their events and their streams.
//!
//! # How the pieces will fit
//!
//! A producer picks a record's partition as Kafka's default partitioner does (murmur2 of the
//! key, modulo the partitions; sticky batches for null keys) and appends batches to the
//! partition's leader, which keeps an append-only log of offsets in segments and deletes whole
//! segments by time and by bytes whether or not a group has consumed them (the records a group
//! loses that way are counted). A consumer group is run by a coordinator on a broker:
//! generations, JoinGroup and SyncGroup with the first member as leader computing the
//! assignment with an assignor, heartbeats and the session timeout, the rebalance timeout, the
//! initial rebalance delay; the members poll, process batches of up to `max_poll_records` and
//! leave when a batch outlasts `max_poll_interval`. Eager members revoke everything before
//! rejoining; cooperative members keep what the new assignment leaves them (KIP-429's two
//! rounds); static members (`group.instance.id`) get their assignment back after a restart
//! within the session timeout. An autoscaler scales the group on lag, CPU or utilisation with
//! KEDA/HPA's polling, stabilisation windows and cooldown, and a provisioning delay: with eager
//! rebalancing, that loop is the rebalance storm (K1).
//!
//! # The actors so far
//!
//! The family's messages are [`Log`] (`msg.rs`): produce, fetch, offset commit and fetch, and
//! the group protocol wrapping the coordinator's own requests and replies. A [`Broker`] leads
//! whole topics (logs and committed offsets durable across its crashes, request handlers with
//! a service time, retention on a timer charging lost records to the groups that committed
//! below them, and an embedded [`Coordinator`](group::Coordinator) per configured group); a
//! [`Producer`] partitions, batches with `linger` and `batch_size`, and sends each batch to
//! its partition's leader. A [`Consumer`] is one member of a group: it joins, assigns as the
//! leader, fetches its partitions' committed offsets, polls, processes and commits, heartbeats
//! on its own timer, and leaves on a poll timeout. The scenario-layer wiring comes next.

pub mod assign;
/// The autoscaler moved to [`crate::model::autoscale`] (it scales services too); this path
/// still names it.
pub use crate::model::autoscale;
mod broker;
pub mod consumer;
pub mod deployment;
pub mod group;
pub mod ledger;
mod msg;
pub mod partition;
pub mod partitioner;
mod producer;

pub use autoscale::{Autoscaler, AutoscalerConfig, Decision, ScaleMetric, ScaleReason};
pub use broker::{
    Broker, BrokerConfig, BrokerDisk, DEFAULT_IO_THREADS, TopicConfig, default_fetch_time,
    default_produce_time,
};
pub use consumer::{AutoCommitFrom, Consumer, ConsumerConfig, PoisonPolicy};
pub use deployment::{ConsumerGroupConfig, GroupController, Rollout};
pub use ledger::{Ledger, SharedLedger};
pub use msg::{
    CommitError, CommitMember, CommitOffset, CommittedReply, Control, Fetch, FetchCommitted,
    FetchOutcome, FetchReply, GroupOp, GroupReply, GroupRequest, LagQuery, LagReply, Log,
    OffsetCommitAck, ProbeReply, Produce, ProduceAck, ProduceError, Tick, TopicPartition,
    UsageReply,
};
pub use partition::{
    Deleted, Disk, FetchResult, NewRecord, OffsetReset, PartitionConfig, PartitionLog, Record,
    Reset,
};
pub use producer::{
    DEFAULT_BATCH_SIZE, DEFAULT_LINGER, Poison, ProduceRate, Producer, ProducerConfig,
};
