//! A Kafka broker: the leader of some topics' partitions, the keeper of committed offsets, and
//! (optionally) the group coordinator of named consumer groups.
//!
//! - **Produce.** A batch is appended to the partition's [`PartitionLog`] and acknowledged
//!   with its base offset *after* the append (acks=1 on a single replica: the leader's append is
//!   the commit). A batch that does not fit on the disk (`disk_capacity_bytes`) is refused
//!   with [`ProduceError::DiskFull`] and counted; nothing of it is appended.
//! - **Fetch.** Records from the requested offset up to the high watermark (which follows the
//!   log end with one replica), at most `max_records` and `max_bytes` but always the first;
//!   an offset below the log start (deleted by retention) or beyond the log end is answered
//!   `OffsetOutOfRange { log_start }`.
//! - **Service time.** Produce and fetch requests are served by `io_threads` request handlers
//!   (Kafka's `num.io.threads`, default 8), each taking a draw of `produce_time` or
//!   `fetch_time`, scaled by `Slow` faults, first come first served on the handler that is
//!   free first. The append (or the read) happens when the handler finishes, so a slow broker
//!   delays acks and the records' visibility together. Commits, offset fetches and the group
//!   protocol are answered at once: they are small and, in Kafka, their cost is the
//!   `__consumer_offsets` append, which is not what any failure mode here is about.
//! - **Retention** runs every topic's `retention_check_interval` (Kafka's
//!   `log.retention.check.interval.ms`, default 5 min). For every group with a committed offset
//!   on a partition, the deleted records at or above that offset were lost to the group
//!   before it read them: `lost_to_retention_total` (and `.<group>`).
//! - **Group coordinator.** Each group of `groups` has a [`Coordinator`]; join, sync, heartbeat
//!   and leave requests are fed to it, its replies are sent to the actor that last sent a
//!   request under the reply's client id (and name it), and a timer is kept at its
//!   `next_deadline()`.
//! - **Offset commits** for a coordinated group are checked as Kafka's coordinator checks them
//!   (`ClassicGroup.validateOffsetCommit`, [`Coordinator::validate_commit`]): a commit from a
//!   member id the group no longer has, from an older generation, or from a fenced static
//!   instance is refused with UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION or FENCED_INSTANCE_ID and
//!   nothing is stored — a zombie (a member that was removed, or a process that lost its
//!   generation) cannot move the group's offsets. A commit carrying no member is stored only
//!   while the group is Empty. Offsets of groups the broker does not coordinate are stored as
//!   given.
//!
//! **Crashes.** The partition logs and the committed offsets are durable: Kafka keeps both on
//! disk (offsets in the `__consumer_offsets` topic) and a process crash loses neither (appended
//! data is in the page cache; a machine crash losing unflushed data is not modelled). The
//! request handlers' work in progress, the client addresses and the coordinators are volatile:
//! a restarted broker answers requests it had not finished with nothing (their senders time
//! out), and its groups start Empty, so members get UNKNOWN_MEMBER_ID and rejoin — what a
//! coordinator failover looks like to a consumer, although a real coordinator reloads the group
//! from `__consumer_offsets`.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use serde::{Deserialize, Serialize};

use super::group::{ClientId, Coordinator, GroupConfig, Output};
use super::msg::{
    CommitError, CommittedReply, Fetch, FetchOutcome, FetchReply, GroupOp, GroupReply,
    GroupRequest, LagReply, Log, OffsetCommitAck, Produce, ProduceAck, ProduceError, Tick,
    TopicPartition,
};
use super::partition::{Disk, FetchResult, PartitionConfig, PartitionLog};
use crate::actor::{Actor, ActorId, Ctx, Durable, TimerId};
use crate::dist::{Dist, Sampler, Scalar};
use crate::engine::time::{SimDuration, SimTime};
use crate::metrics::{CounterId, GaugeId, HistogramId};
use crate::model::Carry;
use crate::model::rpc::{ConfigError, Validate, check_suffix_name, check_unique_names, compile};

/// Request handler threads by default: 8, Kafka's `num.io.threads` ("The number of threads
/// that the server uses for processing requests, which may include disk I/O", default 8;
/// Apache Kafka documentation, 3.1 Broker Configs).
pub const DEFAULT_IO_THREADS: u32 = 8;

/// The produce service time by default: log-normal with median 300 µs and p99 2 ms. An
/// **assumption**, not a measurement: the order of magnitude of a leader's local time for an
/// acks=1 append to the page cache on an idle broker; set it from a real broker's
/// `RequestMetrics` `LocalTimeMs` when it matters.
pub fn default_produce_time() -> Dist {
    Dist::LogNormal {
        p50: Scalar::duration(SimDuration::from_micros(300)),
        p99: Scalar::duration(SimDuration::from_millis(2)),
    }
}

/// The fetch service time by default: log-normal with median 200 µs and p99 1 ms. An
/// **assumption** like [`default_produce_time`]: a read of recent records from the page cache.
pub fn default_fetch_time() -> Dist {
    Dist::LogNormal {
        p50: Scalar::duration(SimDuration::from_micros(200)),
        p99: Scalar::duration(SimDuration::from_millis(1)),
    }
}

fn default_io_threads() -> u32 {
    DEFAULT_IO_THREADS
}

/// One topic the broker leads (all its partitions): `(name: "orders", partitions: 6,
/// config: (retention_ms: Some("1h")))`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicConfig {
    /// Used in metric names (`log_end_offset.orders-0`): no `.`.
    pub name: String,
    /// >= 1.
    pub partitions: u32,
    /// Every partition's segment and retention rules; default Kafka's broker defaults.
    #[serde(default)]
    pub config: PartitionConfig,
}

/// A [`Broker`]'s config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerConfig {
    /// The topics it leads, names unique; at least one.
    pub topics: Vec<TopicConfig>,
    /// The log directory's capacity, shared by all partitions; None (the default) unlimited.
    #[serde(default)]
    pub disk_capacity_bytes: Option<u64>,
    /// Request handlers, >= 1. Default 8 (`num.io.threads`).
    #[serde(default = "default_io_threads")]
    pub io_threads: u32,
    /// How long a produce request holds a handler. Default [`default_produce_time`].
    #[serde(default = "default_produce_time")]
    pub produce_time: Dist,
    /// How long a fetch request holds a handler. Default [`default_fetch_time`].
    #[serde(default = "default_fetch_time")]
    pub fetch_time: Dist,
    /// The consumer groups this broker coordinates, by name (no `.`): `groups: {"billing":
    /// (session_timeout: "10s")}`. Default none.
    #[serde(default)]
    pub groups: BTreeMap<String, GroupConfig>,
}

impl Validate for BrokerConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.topics.is_empty() {
            return Err(ConfigError::Empty {
                field: "topics".into(),
            });
        }
        for (i, t) in self.topics.iter().enumerate() {
            check_suffix_name(format!("topics[{i}].name"), &t.name, "topic")?;
            if t.partitions == 0 {
                return Err(ConfigError::Zero {
                    field: format!("topics[{i}].partitions"),
                });
            }
            t.config
                .validate()
                .map_err(|e| e.within(&format!("topics[{i}].config")))?;
        }
        let names = self.topics.iter().map(|t| t.name.as_str());
        check_unique_names(names, |i| format!("topics[{i}].name"))?;
        if let Some(capacity_bytes) = self.disk_capacity_bytes {
            Disk { capacity_bytes }
                .validate()
                .map_err(|_| ConfigError::Zero {
                    field: "disk_capacity_bytes".into(),
                })?;
        }
        if self.io_threads == 0 {
            return Err(ConfigError::Zero {
                field: "io_threads".into(),
            });
        }
        compile("produce_time", &self.produce_time)?;
        compile("fetch_time", &self.fetch_time)?;
        for (name, g) in &self.groups {
            check_suffix_name(format!("groups.{name}"), name, "group")?;
            g.validate()
                .map_err(|e| e.within(&format!("groups.{name}")))?;
        }
        Ok(())
    }
}

/// What the broker keeps on disk: the logs by topic and partition, and the committed offsets.
#[derive(Debug, Default)]
pub struct BrokerDisk {
    /// `logs[topic][partition]`, topics in config order.
    pub logs: Vec<Vec<PartitionLog>>,
    /// Committed offsets by group and partition.
    pub offsets: BTreeMap<(String, TopicPartition), u64>,
}

#[derive(Clone)]
struct BrokerMetrics {
    produce_requests: CounterId,
    produced: CounterId,
    produced_bytes: CounterId,
    produce_errors: CounterId,
    disk_full: CounterId,
    fetch_requests: CounterId,
    fetched: CounterId,
    out_of_range: CounterId,
    commits: CounterId,
    commits_rejected: CounterId,
    deleted: CounterId,
    lost: CounterId,
    disk_bytes: GaugeId,
    produce_latency: HistogramId,
    /// `[topic][partition]`.
    log_end: Vec<Vec<GaugeId>>,
    log_start: Vec<Vec<GaugeId>>,
    /// By group index.
    rebalances: Vec<CounterId>,
    generation: Vec<GaugeId>,
    members: Vec<GaugeId>,
    lost_by_group: Vec<CounterId>,
    rebalance_duration: Vec<HistogramId>,
    /// `[group][topic]`: the total lag, the largest partition's, and `[partition]` each.
    lag: Vec<Vec<GaugeId>>,
    max_lag: Vec<Vec<GaugeId>>,
    partition_lag: Vec<Vec<Vec<GaugeId>>>,
}

/// A request a handler is working on.
#[derive(Clone, Debug)]
enum Work {
    Produce(Produce),
    Fetch(Fetch),
}

#[derive(Clone, Debug)]
struct Pending {
    work: Work,
    arrived: SimTime,
}

/// One group's coordinator and its armed timer.
#[derive(Clone)]
struct GroupSlot {
    name: String,
    coordinator: Coordinator,
    timer: Option<(SimTime, TimerId)>,
}

/// A Kafka broker; see the module docs.
///
/// Metrics (owner = the broker's name): `produce_requests_total`; `produced_total` and
/// `produced_bytes_total` (records and bytes appended); `produce_errors_total` (batches
/// refused), of them `disk_full_total`; `produce_latency` histogram (ns, arrival to ack of the
/// appended batches); `fetch_requests_total`, `fetched_total` (records returned),
/// `offset_out_of_range_total`; `commits_total` (stored), `commits_rejected_total` (refused
/// by the group's coordinator); `retention_deleted_total` (records deleted);
/// `lost_to_retention_total` (summed over groups) and `lost_to_retention_total.<group>`
/// (for every group with a committed offset, coordinated here or not: registered on first
/// use); `disk_bytes` gauge; `log_end_offset.<topic>-<p>` and `log_start_offset.<topic>-<p>`
/// gauges; for each coordinated group `rebalances_total.<group>`, `generation.<group>` and
/// `members.<group>` gauges, `rebalance_duration.<group>` histogram (ns from leaving Stable
/// or Empty to Stable again), and for each of its topics the lag Kafka's tools and KEDA
/// report, `lag.<group>.<topic>` (summed), `max_partition_lag.<group>.<topic>` and
/// `lag.<group>.<topic>-<p>`: the log end offset less the committed offset (less the log
/// start offset while the group has committed none), updated at every append, commit and
/// retention run.
#[derive(Clone)]
pub struct Broker<M> {
    config: BrokerConfig,
    produce_time: Sampler,
    fetch_time: Sampler,
    disk: Durable<BrokerDisk>,
    /// When each handler is free.
    handlers: Vec<SimTime>,
    pending: BTreeMap<u64, Pending>,
    next_seq: u64,
    groups: Vec<GroupSlot>,
    /// Where replies to each client id go: the sender of its latest group request.
    clients: BTreeMap<ClientId, ActorId>,
    /// `[group][topic][partition]`, the values of the lag gauges (volatile: recomputed at
    /// start from the disk).
    lags: Vec<Vec<Vec<u64>>>,
    metrics: Option<BrokerMetrics>,
    _m: PhantomData<M>,
}

impl<M> Broker<M> {
    /// Validates `config` and creates the (empty) logs. Clones share the disk: build one and
    /// clone it in the factory, and every incarnation finds the logs and offsets it left.
    pub fn new(config: BrokerConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let produce_time = compile("produce_time", &config.produce_time)?;
        let fetch_time = compile("fetch_time", &config.fetch_time)?;
        let logs = config
            .topics
            .iter()
            .map(|t| {
                (0..t.partitions)
                    .map(|_| PartitionLog::new(t.config.clone()))
                    .collect()
            })
            .collect();
        let disk = Durable::new(BrokerDisk {
            logs,
            offsets: BTreeMap::new(),
        });
        let groups = config
            .groups
            .iter()
            .map(|(name, g)| GroupSlot {
                name: name.clone(),
                coordinator: Coordinator::new(g.clone()),
                timer: None,
            })
            .collect();
        Ok(Broker {
            handlers: vec![SimTime::ZERO; config.io_threads as usize],
            config,
            produce_time,
            fetch_time,
            disk,
            pending: BTreeMap::new(),
            next_seq: 0,
            groups,
            clients: BTreeMap::new(),
            lags: Vec::new(),
            metrics: None,
            _m: PhantomData,
        })
    }

    /// The broker's disk (shared by every clone and incarnation), for inspection.
    pub fn disk(&self) -> Durable<BrokerDisk> {
        self.disk.clone()
    }

    fn topic_index(&self, topic: &str) -> Option<usize> {
        self.config.topics.iter().position(|t| t.name == topic)
    }

    /// `(topic index, partition)` if this broker leads `tp`.
    fn locate(&self, tp: &TopicPartition) -> Option<(usize, usize)> {
        let t = self.topic_index(&tp.topic)?;
        (tp.partition < self.config.topics[t].partitions).then_some((t, tp.partition as usize))
    }

    fn group_index(&self, group: &str) -> Option<usize> {
        self.groups.iter().position(|g| g.name == group)
    }
}

impl<M: Carry<Log>> Broker<M> {
    fn m(&self) -> &BrokerMetrics {
        self.metrics.as_ref().expect("registered at start")
    }

    fn update_disk_gauges(&self, ctx: &mut Ctx<'_, M>, t: usize, p: usize) {
        let (end, start, used) = {
            let disk = self.disk.borrow();
            let log = &disk.logs[t][p];
            let used = Disk::used(disk.logs.iter().flatten());
            (log.log_end_offset(), log.log_start_offset(), used)
        };
        let m = self.m();
        let (gend, gstart, gdisk) = (m.log_end[t][p], m.log_start[t][p], m.disk_bytes);
        ctx.metrics().set(gend, end as f64);
        ctx.metrics().set(gstart, start as f64);
        ctx.metrics().set(gdisk, used as f64);
    }

    /// The lag of `group` on partition `p` of topic `t`, from the disk.
    fn lag_of(&self, group: &str, t: usize, p: usize) -> u64 {
        let disk = self.disk.borrow();
        let log = &disk.logs[t][p];
        let tp = TopicPartition::new(&self.config.topics[t].name, p as u32);
        let committed = disk.offsets.get(&(group.to_string(), tp)).copied();
        let from = committed.unwrap_or(log.log_start_offset());
        log.log_end_offset().saturating_sub(from)
    }

    /// Recomputes every coordinated group's lag on partition `p` of topic `t`.
    fn update_lag(&mut self, ctx: &mut Ctx<'_, M>, t: usize, p: usize) {
        for g in 0..self.groups.len() {
            let lag = self.lag_of(&self.groups[g].name, t, p);
            if self.lags[g][t][p] != lag {
                self.lags[g][t][p] = lag;
                self.publish_lag(ctx, g, t, p);
            }
        }
    }

    /// Sets group `g`'s lag gauges for partition `p` of topic `t`, and the topic's total and
    /// largest, from `lags`.
    fn publish_lag(&self, ctx: &mut Ctx<'_, M>, g: usize, t: usize, p: usize) {
        let m = self.m();
        let (gp, gt, gmax) = (m.partition_lag[g][t][p], m.lag[g][t], m.max_lag[g][t]);
        let lags = &self.lags[g][t];
        let total: u64 = lags.iter().sum();
        let max = lags.iter().copied().max().unwrap_or(0);
        ctx.metrics().set(gp, lags[p] as f64);
        ctx.metrics().set(gt, total as f64);
        ctx.metrics().set(gmax, max as f64);
    }

    /// Queues a produce or fetch on the handler that is free first.
    fn enqueue(&mut self, ctx: &mut Ctx<'_, M>, work: Work) {
        let sampler = match work {
            Work::Produce(_) => &self.produce_time,
            Work::Fetch(_) => &self.fetch_time,
        };
        let base = ctx.sample_duration(sampler);
        let time = ctx.work(base);
        let (handler, free_at) = self
            .handlers
            .iter()
            .copied()
            .enumerate()
            .min_by_key(|&(i, at)| (at, i))
            .expect("io_threads >= 1");
        let start = free_at.max(ctx.now());
        let done = start.saturating_add(time);
        debug_assert!(done >= ctx.now());
        self.handlers[handler] = done;
        let seq = self.next_seq;
        self.next_seq += 1;
        let arrived = ctx.now();
        self.pending.insert(seq, Pending { work, arrived });
        let tick = Tick::Served {
            handler: handler as u32,
            seq,
        };
        ctx.set_timer_at(done, M::wrap(Log::Tick(tick)));
    }

    fn produce(&mut self, ctx: &mut Ctx<'_, M>, req: Produce, arrived: SimTime) {
        let m = self.m().clone();
        let result = match self.locate(&req.tp) {
            None => Err(ProduceError::UnknownTopicOrPartition),
            Some(_) if req.records.is_empty() => Err(ProduceError::EmptyBatch),
            Some((t, p)) => {
                let incoming: u64 = req.records.iter().map(|r| u64::from(r.bytes)).sum();
                let mut disk = self.disk.borrow_mut();
                let used = Disk::used(disk.logs.iter().flatten());
                let fits = self
                    .config
                    .disk_capacity_bytes
                    .is_none_or(|capacity_bytes| Disk { capacity_bytes }.fits(used, incoming));
                if fits {
                    let log = &mut disk.logs[t][p];
                    let end_before = log.log_end_offset();
                    let base = log.append_batch(ctx.now(), &req.records);
                    assert_eq!(base, end_before, "a batch starts at the log end");
                    assert_eq!(log.log_end_offset(), base + req.records.len() as u64);
                    Ok((base, incoming, t, p))
                } else {
                    Err(ProduceError::DiskFull)
                }
            }
        };
        ctx.metrics().inc(m.produce_requests);
        let result = match result {
            Ok((base, bytes, t, p)) => {
                ctx.metrics().add(m.produced, req.records.len() as u64);
                ctx.metrics().add(m.produced_bytes, bytes);
                let latency = (ctx.now() - arrived).as_nanos();
                ctx.metrics().record(m.produce_latency, latency);
                self.update_disk_gauges(ctx, t, p);
                self.update_lag(ctx, t, p);
                Ok(base)
            }
            Err(e) => {
                ctx.metrics().inc(m.produce_errors);
                if e == ProduceError::DiskFull {
                    ctx.metrics().inc(m.disk_full);
                }
                Err(e)
            }
        };
        let ack = ProduceAck { id: req.id, result };
        ctx.send(req.reply_to, M::wrap(Log::ProduceAck(ack)));
    }

    fn fetch(&mut self, ctx: &mut Ctx<'_, M>, req: Fetch) {
        let m = self.m().clone();
        ctx.metrics().inc(m.fetch_requests);
        let (outcome, high_watermark) = match self.locate(&req.tp) {
            None => (FetchOutcome::UnknownTopicOrPartition, 0),
            Some((t, p)) => {
                let disk = self.disk.borrow();
                match disk.logs[t][p].fetch(req.offset, req.max_records, req.max_bytes) {
                    FetchResult::Records {
                        records,
                        next_offset,
                        high_watermark,
                        ..
                    } => {
                        debug_assert!(next_offset <= high_watermark.max(req.offset));
                        let n = records.len() as u64;
                        ctx.metrics().add(m.fetched, n);
                        let outcome = FetchOutcome::Records {
                            records,
                            next_offset,
                        };
                        (outcome, high_watermark)
                    }
                    FetchResult::OffsetOutOfRange {
                        log_start_offset,
                        high_watermark,
                        ..
                    } => {
                        ctx.metrics().inc(m.out_of_range);
                        let outcome = FetchOutcome::OffsetOutOfRange {
                            log_start: log_start_offset,
                        };
                        (outcome, high_watermark)
                    }
                }
            }
        };
        let reply = FetchReply {
            id: req.id,
            outcome,
            high_watermark,
        };
        ctx.send(req.reply_to, M::wrap(Log::FetchReply(reply)));
    }

    /// Runs retention on every partition of topic `t` and charges the losses to the groups.
    fn retention(&mut self, ctx: &mut Ctx<'_, M>, t: usize) {
        let m = self.m().clone();
        let topic = self.config.topics[t].name.clone();
        let mut lost_by_group: BTreeMap<String, u64> = BTreeMap::new();
        let mut deleted_records = 0;
        {
            let mut disk = self.disk.borrow_mut();
            let BrokerDisk { logs, offsets } = &mut *disk;
            for (p, log) in logs[t].iter_mut().enumerate() {
                let deleted = log.enforce_retention(ctx.now());
                if deleted.records == 0 {
                    continue;
                }
                assert_eq!(deleted.end_offset, log.log_start_offset());
                deleted_records += deleted.records;
                let tp = TopicPartition::new(&topic, p as u32);
                for ((group, _), &committed) in offsets.iter().filter(|((_, k), _)| *k == tp) {
                    let lost = deleted.unconsumed_by(committed);
                    debug_assert!(lost <= deleted.records);
                    if lost > 0 {
                        *lost_by_group.entry(group.clone()).or_insert(0) += lost;
                    }
                }
            }
        }
        ctx.metrics().add(m.deleted, deleted_records);
        for (group, lost) in &lost_by_group {
            ctx.metrics().add(m.lost, *lost);
            let c = match self.group_index(group) {
                Some(g) => m.lost_by_group[g],
                None => ctx.counter(&format!("lost_to_retention_total.{group}")),
            };
            ctx.metrics().add(c, *lost);
            ctx.trace_note(&format!(
                "retention: {group} lost {lost} records of {topic}"
            ));
        }
        for p in 0..self.config.topics[t].partitions as usize {
            self.update_disk_gauges(ctx, t, p);
            self.update_lag(ctx, t, p);
        }
        let interval = self.config.topics[t].config.retention_check_interval;
        ctx.set_timer(interval, M::wrap(Log::Tick(Tick::Retention(t as u32))));
    }

    fn group_request(&mut self, ctx: &mut Ctx<'_, M>, req: GroupRequest) {
        let Some(g) = self.group_index(&req.group) else {
            // Kafka answers NOT_COORDINATOR; a consumer pointed at the wrong broker is a
            // wiring bug here, so it is dropped and traced.
            ctx.trace_note(&format!("no coordinator for group {}", req.group));
            return;
        };
        self.clients
            .insert(req.op.client_id().to_string(), req.reply_to);
        let now = ctx.now();
        let c = &mut self.groups[g].coordinator;
        let outputs = match req.op {
            GroupOp::Join(join) => c.join(now, join),
            GroupOp::Sync {
                client_id,
                member_id,
                instance_id,
                generation,
                assignment,
            } => c.sync(
                now,
                &client_id,
                &member_id,
                instance_id.as_deref(),
                generation,
                assignment,
            ),
            GroupOp::Heartbeat {
                client_id,
                member_id,
                instance_id,
                generation,
            } => c.heartbeat(
                now,
                &client_id,
                &member_id,
                instance_id.as_deref(),
                generation,
            ),
            GroupOp::Leave {
                client_id,
                member_id,
                instance_id,
            } => c.leave(
                now,
                &client_id,
                member_id.as_deref(),
                instance_id.as_deref(),
            ),
        };
        self.group_outputs(ctx, g, outputs);
    }

    /// Sends the coordinator's replies, counts its events and re-arms its timer.
    fn group_outputs(&mut self, ctx: &mut Ctx<'_, M>, g: usize, outputs: Vec<Output>) {
        let m = self.m().clone();
        let name = self.groups[g].name.clone();
        for out in outputs {
            match out {
                Output::Reply { to, response } => match self.clients.get(&to) {
                    Some(&actor) => {
                        let reply = GroupReply {
                            group: name.clone(),
                            to,
                            response,
                        };
                        ctx.send(actor, M::wrap(Log::GroupReply(reply)));
                    }
                    None => ctx.trace_note(&format!("{name}: no address for client {to}")),
                },
                Output::RebalanceStarted {
                    generation, reason, ..
                } => {
                    ctx.metrics().inc(m.rebalances[g]);
                    let note = format!("{name}: rebalance at generation {generation}: {reason:?}");
                    ctx.trace_note(&note);
                }
                Output::Stabilized {
                    generation,
                    members,
                    took,
                    ..
                } => {
                    ctx.metrics()
                        .record(m.rebalance_duration[g], took.as_nanos());
                    let note = format!("{name}: stable at generation {generation}, {members}");
                    ctx.trace_note(&note);
                }
                Output::Emptied { generation, .. } => {
                    ctx.trace_note(&format!("{name}: empty at generation {generation}"));
                }
                Output::MemberRemoved {
                    member_id, reason, ..
                } => {
                    ctx.trace_note(&format!("{name}: removed {member_id}: {reason:?}"));
                }
            }
        }
        let slot = &self.groups[g];
        let generation = f64::from(slot.coordinator.generation());
        let members = slot.coordinator.member_ids().len() as f64;
        ctx.metrics().set(m.generation[g], generation);
        ctx.metrics().set(m.members[g], members);
        self.arm_group_timer(ctx, g);
    }

    fn arm_group_timer(&mut self, ctx: &mut Ctx<'_, M>, g: usize) {
        let next = self.groups[g].coordinator.next_deadline();
        let slot = &mut self.groups[g];
        if slot.timer.map(|(at, _)| at) == next {
            return;
        }
        if let Some((_, t)) = slot.timer.take() {
            ctx.cancel_timer(t);
        }
        if let Some(at) = next {
            let msg = M::wrap(Log::Tick(Tick::GroupDeadline(g as u32)));
            slot.timer = Some((at, ctx.set_timer_at(at, msg)));
        }
    }
}

impl<M: Carry<Log>> Actor<M> for Broker<M> {
    fn on_start(&mut self, ctx: &mut Ctx<'_, M>) {
        let mut log_end = Vec::new();
        let mut log_start = Vec::new();
        for t in &self.config.topics {
            let tps = (0..t.partitions).map(|p| format!("{}-{p}", t.name));
            let tps: Vec<String> = tps.collect();
            log_end.push(
                tps.iter()
                    .map(|tp| ctx.gauge(&format!("log_end_offset.{tp}")))
                    .collect(),
            );
            log_start.push(
                tps.iter()
                    .map(|tp| ctx.gauge(&format!("log_start_offset.{tp}")))
                    .collect(),
            );
        }
        let names: Vec<String> = self.groups.iter().map(|g| g.name.clone()).collect();
        let per_group_counter = |ctx: &mut Ctx<'_, M>, prefix: &str| -> Vec<CounterId> {
            let names = names.iter();
            names
                .map(|n| ctx.counter(&format!("{prefix}.{n}")))
                .collect()
        };
        let rebalances = per_group_counter(ctx, "rebalances_total");
        let lost_by_group = per_group_counter(ctx, "lost_to_retention_total");
        let generation = names
            .iter()
            .map(|n| ctx.gauge(&format!("generation.{n}")))
            .collect();
        let members = names
            .iter()
            .map(|n| ctx.gauge(&format!("members.{n}")))
            .collect();
        let rebalance_duration = names
            .iter()
            .map(|n| ctx.histogram(&format!("rebalance_duration.{n}")))
            .collect();
        let (mut lag, mut max_lag, mut partition_lag) = (Vec::new(), Vec::new(), Vec::new());
        for n in &names {
            let topics = self.config.topics.iter();
            lag.push(
                topics
                    .clone()
                    .map(|t| ctx.gauge(&format!("lag.{n}.{}", t.name)))
                    .collect(),
            );
            max_lag.push(
                topics
                    .clone()
                    .map(|t| ctx.gauge(&format!("max_partition_lag.{n}.{}", t.name)))
                    .collect(),
            );
            partition_lag.push(
                topics
                    .map(|t| {
                        (0..t.partitions)
                            .map(|p| ctx.gauge(&format!("lag.{n}.{}-{p}", t.name)))
                            .collect()
                    })
                    .collect(),
            );
        }
        self.metrics = Some(BrokerMetrics {
            produce_requests: ctx.counter("produce_requests_total"),
            produced: ctx.counter("produced_total"),
            produced_bytes: ctx.counter("produced_bytes_total"),
            produce_errors: ctx.counter("produce_errors_total"),
            disk_full: ctx.counter("disk_full_total"),
            fetch_requests: ctx.counter("fetch_requests_total"),
            fetched: ctx.counter("fetched_total"),
            out_of_range: ctx.counter("offset_out_of_range_total"),
            commits: ctx.counter("commits_total"),
            commits_rejected: ctx.counter("commits_rejected_total"),
            deleted: ctx.counter("retention_deleted_total"),
            lost: ctx.counter("lost_to_retention_total"),
            disk_bytes: ctx.gauge("disk_bytes"),
            produce_latency: ctx.histogram("produce_latency"),
            log_end,
            log_start,
            rebalances,
            generation,
            members,
            lost_by_group,
            rebalance_duration,
            lag,
            max_lag,
            partition_lag,
        });
        // Lags as the disk has them (a restarted broker's groups lag as they did).
        self.lags = (0..self.groups.len())
            .map(|g| {
                (0..self.config.topics.len())
                    .map(|t| {
                        (0..self.config.topics[t].partitions as usize)
                            .map(|p| self.lag_of(&self.groups[g].name, t, p))
                            .collect()
                    })
                    .collect()
            })
            .collect();
        for g in 0..self.groups.len() {
            for t in 0..self.config.topics.len() {
                for p in 0..self.config.topics[t].partitions as usize {
                    self.publish_lag(ctx, g, t, p);
                }
            }
        }
        // A restarted broker's handlers are idle from now, and its groups are Empty again.
        self.handlers.fill(ctx.now());
        for g in 0..self.groups.len() {
            let slot = &self.groups[g];
            let generation = f64::from(slot.coordinator.generation());
            let members = slot.coordinator.member_ids().len() as f64;
            let m = self.m();
            let (gg, gm) = (m.generation[g], m.members[g]);
            ctx.metrics().set(gg, generation);
            ctx.metrics().set(gm, members);
        }
        for t in 0..self.config.topics.len() {
            for p in 0..self.config.topics[t].partitions as usize {
                self.update_disk_gauges(ctx, t, p);
            }
            let interval = self.config.topics[t].config.retention_check_interval;
            ctx.set_timer(interval, M::wrap(Log::Tick(Tick::Retention(t as u32))));
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, M>, _from: ActorId, msg: M) {
        let Some(msg) = msg.unwrap() else {
            return;
        };
        match msg {
            Log::Produce(req) => self.enqueue(ctx, Work::Produce(req)),
            Log::Fetch(req) => self.enqueue(ctx, Work::Fetch(req)),
            Log::CommitOffset(req) => {
                // A group this broker coordinates checks who commits (a zombie's commit is
                // refused); offsets of other groups are stored as given.
                let member = req
                    .member
                    .as_ref()
                    .map(|m| (m.member_id.as_str(), m.instance_id.as_deref(), m.generation));
                let valid = match self.group_index(&req.group) {
                    Some(g) => self.groups[g].coordinator.validate_commit(member),
                    None => Ok(()),
                };
                let result = match (self.locate(&req.tp), valid) {
                    (None, _) => Err(CommitError::UnknownTopicOrPartition),
                    (Some(_), Err(e)) => {
                        let c = self.m().commits_rejected;
                        ctx.metrics().inc(c);
                        ctx.trace_note(&format!(
                            "{}: commit of {} refused: {e:?}",
                            req.group, req.tp
                        ));
                        Err(CommitError::Group(e))
                    }
                    (Some((t, p)), Ok(())) => {
                        let key = (req.group.clone(), req.tp.clone());
                        self.disk.borrow_mut().offsets.insert(key, req.offset);
                        let c = self.m().commits;
                        ctx.metrics().inc(c);
                        self.update_lag(ctx, t, p);
                        Ok(())
                    }
                };
                let ack = OffsetCommitAck { id: req.id, result };
                ctx.send(req.reply_to, M::wrap(Log::OffsetCommitAck(ack)));
            }
            Log::FetchCommitted(req) => {
                let key = (req.group, req.tp);
                let offset = self.disk.borrow().offsets.get(&key).copied();
                let reply = CommittedReply { id: req.id, offset };
                ctx.send(req.reply_to, M::wrap(Log::CommittedReply(reply)));
            }
            Log::Group(req) => self.group_request(ctx, req),
            Log::LagQuery(q) => {
                // Answered at once: a metadata read, not a handler's work.
                let lags = match (self.topic_index(&q.topic), self.group_index(&q.group)) {
                    (Some(t), Some(g)) => self.lags[g][t].clone(),
                    (Some(t), None) => (0..self.config.topics[t].partitions as usize)
                        .map(|p| self.lag_of(&q.group, t, p))
                        .collect(),
                    (None, _) => Vec::new(),
                };
                let reply = LagReply { id: q.id, lags };
                ctx.send(q.reply_to, M::wrap(Log::LagReply(reply)));
            }
            // Replies, other components' instructions and ticks are not for a broker.
            Log::LagReply(_)
            | Log::Control(_)
            | Log::UsageQuery { .. }
            | Log::UsageReply(_)
            | Log::Probe { .. }
            | Log::ProbeReply(_)
            | Log::ProduceAck(_)
            | Log::FetchReply(_)
            | Log::OffsetCommitAck(_)
            | Log::CommittedReply(_)
            | Log::GroupReply(_)
            | Log::Reset { .. }
            | Log::Tick(_) => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, M>, msg: M) {
        let Some(Log::Tick(tick)) = msg.unwrap() else {
            return;
        };
        match tick {
            Tick::Served { seq, .. } => {
                // Timers die with the incarnation that set them, and each request sets one.
                let done = self
                    .pending
                    .remove(&seq)
                    .expect("a served request is pending");
                // Usually at its handler's end; later if the broker was paused meanwhile (the
                // timer waited in its backlog), so the handler may have been free for a while.
                match done.work {
                    Work::Produce(req) => self.produce(ctx, req, done.arrived),
                    Work::Fetch(req) => self.fetch(ctx, req),
                }
            }
            Tick::Retention(t) => self.retention(ctx, t as usize),
            Tick::GroupDeadline(g) => {
                let g = g as usize;
                self.groups[g].timer = None;
                let outputs = self.groups[g].coordinator.tick(ctx.now());
                self.group_outputs(ctx, g, outputs);
            }
            Tick::Arrive | Tick::Linger { .. } | Tick::Consumer { .. } | Tick::Group { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::rpc::from_ron;

    #[test]
    fn configs_parse_with_defaults_and_name_bad_fields() {
        let c: BrokerConfig = from_ron(r#"(topics: [(name: "orders", partitions: 3)])"#).unwrap();
        assert_eq!(c.io_threads, DEFAULT_IO_THREADS);
        assert_eq!(c.disk_capacity_bytes, None);
        assert_eq!(c.topics[0].config, PartitionConfig::default());
        assert!(c.groups.is_empty());
        let bad = |ron: &str| {
            from_ron::<BrokerConfig>(ron)
                .unwrap_err()
                .field()
                .map(String::from)
        };
        assert_eq!(bad("(topics: [])"), Some("topics".into()));
        assert_eq!(
            bad(r#"(topics: [(name: "a", partitions: 0)])"#),
            Some("topics[0].partitions".into())
        );
        assert_eq!(
            bad(r#"(topics: [(name: "a.b", partitions: 1)])"#),
            Some("topics[0].name".into())
        );
        assert_eq!(
            bad(r#"(topics: [(name: "a", partitions: 1), (name: "a", partitions: 1)])"#),
            Some("topics[1].name".into())
        );
        assert_eq!(
            bad(r#"(topics: [(name: "a", partitions: 1)], disk_capacity_bytes: Some(0))"#),
            Some("disk_capacity_bytes".into())
        );
        assert_eq!(
            bad(r#"(topics: [(name: "a", partitions: 1, config: (segment_bytes: 0))])"#),
            Some("topics[0].config.segment_bytes".into())
        );
        assert_eq!(
            bad(
                r#"(topics: [(name: "a", partitions: 1)], groups: {"g": (session_timeout: "1s")})"#
            ),
            Some("groups.g.session_timeout".into())
        );
        assert!(from_ron::<BrokerConfig>(r#"(topics: [], typo: 1)"#).is_err());
    }
}
