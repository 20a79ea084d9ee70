//! The `Cache` actor: a cluster of single-threaded shards (Redis Cluster nodes, a memcached
//! pool behind a consistent-hashing client) as one actor, each shard a [`Store`] behind a FIFO
//! command queue, keys placed on a [`Ring`].
//!
//! One actor holds all the shards, rather than an actor per shard: the routing a cluster-aware
//! client does (hash the key, pick the node) happens in the same place as the shards, so a
//! command costs one network hop from the caller, and the shards' states are plain vectors
//! indexed by shard, deterministic without any ordering between actors. What must stay
//! separate stays separate: each shard has its own queue and serves one command at a time, for
//! a draw of `service` (scaled by `Slow` faults on the cache), as a Redis process executes
//! commands on one thread. So a shard's response time is an M/G/1 queue's and grows without
//! bound as its load nears `1 / mean(service)`: a hot key (C4) saturates the shard it hashes
//! to — its queue and latency grow — while the other shards idle. The fixes act on that: an L1
//! cache in the service takes reads off the shard, and `replication` spreads a hot key over
//! several shards (reads go to one of them at random, writes to all).
//!
//! Memory (C5): each shard's store holds what it is given, bounded by its `store` limits with
//! LRU (exact or sampled) eviction, or not at all (`noeviction` without limits, Redis's
//! default: `maxmemory 0`). With `memory`, a shard whose store grows past `limit` bytes is
//! OOM-killed: its data and its queued commands are lost (their callers are answered
//! `Unavailable` at once, as a reset connection), and it answers `Unavailable` until it
//! restarts, empty, `restart_after` later. Expired entries are removed lazily (by the lookup
//! that finds them) and, every `sweep_interval`, by an active sweep of every shard.
//!
//! Commands (`Rpc::CacheRequest`): `Get`, `Set` (TTL, size, recompute time, negative) and
//! `Delete`, each answered with a [`CacheReply`]. A command changes the store when its shard
//! finishes it, not when it arrives: a get sees every write queued before it.

use std::collections::{BTreeMap, VecDeque};
use std::marker::PhantomData;

use rand::RngExt;
use serde::{Deserialize, Serialize};

use super::{DEFAULT_VNODES, Lookup, Ring, SetOutcome, Store, StoreConfig, StoreStats};
use crate::actor::{Actor, ActorId, Ctx};
use crate::dist::{Dist, Sampler};
use crate::engine::time::{SimDuration, SimTime};
use crate::metrics::{CounterId, GaugeId, HistogramId};
use crate::model::Carry;
use crate::model::rpc::{
    CacheOp, CacheReply, CacheRequest, CacheResult, CachedValue, ConfigError,
    DEFAULT_RESTART_AFTER, Rpc, Tick, Validate, compile, nonzero,
};

/// The most shards one cache may have: 1,024, beyond any one Redis Cluster (its documentation
/// suggests "a maximum size of 1000 nodes").
pub const MAX_SHARDS: u32 = 1_024;

/// Commands a shard queues by default before refusing more: 10,000, Redis's `maxclients`
/// default (redis.conf: "# maxclients 10000"). A client without pipelining has one command in
/// flight per connection, so a node never holds more than that many waiting commands.
pub const DEFAULT_QUEUE_CAPACITY: u32 = 10_000;

/// The active expiry sweep's period by default: 100 ms, Redis's `hz 10` (redis.conf: "Redis
/// calls an internal function to perform many background tasks, like ... actively expiring
/// keys ... By default 'hz' is set to 10").
pub const DEFAULT_SWEEP_INTERVAL: SimDuration = SimDuration::from_millis(100);

/// The most entries one sweep removes from one shard: a bound per sweep, as Redis bounds its
/// expire cycle's time (25% of the CPU of each period). An assumption: 20,000 is about what a
/// 25 ms budget removes at a microsecond an entry.
pub const SWEEP_MAX_PER_SHARD: usize = 20_000;

/// Hot keys copied over several shards (the C4 fix): `replication: (keys: 10, replicas: 3)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Replication {
    /// Keys `0..keys` are replicated: the hottest, by the key-space convention that key `i` is
    /// the `(i + 1)`-th most popular. >= 1.
    pub keys: u64,
    /// The number of shards each holds a copy on: the first distinct shards going round the
    /// ring from the key ([`Ring::replicas`]). Reads go to one of them, picked uniformly from
    /// the cache's stream; sets and deletes go to all, and are answered once every copy has
    /// been written. In `1..=shards`.
    pub replicas: u32,
}

/// A shard's memory limit and restart (C5): `memory: (limit: 1000000000)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardMemory {
    /// Bytes of entries a shard may hold; a write that takes it past this OOM-kills it. > 0.
    /// (A store's own `max_bytes`, Redis's `maxmemory`, evicts or refuses before this; this is
    /// the container's limit.)
    pub limit: u64,
    /// How long a killed shard stays down. Default 10 s, Kubernetes' CrashLoopBackOff initial
    /// delay ([`DEFAULT_RESTART_AFTER`]).
    #[serde(default = "default_restart_after")]
    pub restart_after: SimDuration,
}

fn default_restart_after() -> SimDuration {
    DEFAULT_RESTART_AFTER
}

/// A [`Cache`]'s config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// Shards, in `1..=1024`. Shard `i` is called `shard-<i>` on the ring.
    pub shards: u32,
    /// Points per shard on the ring; default 160 ([`DEFAULT_VNODES`], ketama's).
    #[serde(default = "default_vnodes")]
    pub vnodes: u32,
    /// Each shard's store: `max_entries`, `max_bytes`, `eviction`, `stale_for`. Default
    /// Redis's: no limit, `noeviction`, no stale window.
    #[serde(default)]
    pub store: StoreConfig,
    /// The time a shard takes per command (one at a time), scaled by `Slow` faults.
    pub service: Dist,
    /// Commands waiting at one shard (the running one included) beyond this are answered
    /// `Rejected`; default Some(10,000) ([`DEFAULT_QUEUE_CAPACITY`]); None is unbounded.
    #[serde(default = "default_queue_capacity")]
    pub queue_capacity: Option<u32>,
    /// The period of the active expiry sweep; default Some(100 ms) ([`DEFAULT_SWEEP_INTERVAL`]);
    /// None: expired entries leave only when a lookup finds them.
    #[serde(default = "default_sweep_interval")]
    pub sweep_interval: Option<SimDuration>,
    /// Hot keys copied over several shards; None (the default) keeps one copy of every key.
    #[serde(default)]
    pub replication: Option<Replication>,
    /// A memory limit per shard that OOM-kills it; None (the default) never runs out.
    #[serde(default)]
    pub memory: Option<ShardMemory>,
}

fn default_vnodes() -> u32 {
    DEFAULT_VNODES
}

fn default_queue_capacity() -> Option<u32> {
    Some(DEFAULT_QUEUE_CAPACITY)
}

fn default_sweep_interval() -> Option<SimDuration> {
    Some(DEFAULT_SWEEP_INTERVAL)
}

impl CacheConfig {
    /// The shards' names on the ring, in index order.
    pub fn shard_names(&self) -> Vec<String> {
        (0..self.shards).map(|i| format!("shard-{i}")).collect()
    }
}

impl Validate for CacheConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        nonzero("shards", u64::from(self.shards))?;
        if self.shards > MAX_SHARDS {
            return Err(ConfigError::Invalid {
                field: "shards".into(),
                reason: format!("{} is more than {MAX_SHARDS}", self.shards),
            });
        }
        // The ring's own rules (vnodes > 0, a bound on points), naming `vnodes`.
        Ring::new(&self.shard_names(), self.vnodes)?;
        self.store.validate().map_err(|e| e.within("store"))?;
        compile("service", &self.service)?;
        if self.queue_capacity == Some(0) {
            return Err(ConfigError::Zero {
                field: "queue_capacity".into(),
            });
        }
        if self.sweep_interval == Some(SimDuration::ZERO) {
            return Err(ConfigError::Zero {
                field: "sweep_interval".into(),
            });
        }
        if let Some(r) = &self.replication {
            nonzero("replication.keys", r.keys)?;
            if !(1..=self.shards).contains(&r.replicas) {
                return Err(ConfigError::Invalid {
                    field: "replication.replicas".into(),
                    reason: format!(
                        "{} must be in 1..={} (a copy per shard at most)",
                        r.replicas, self.shards
                    ),
                });
            }
        }
        if let Some(m) = &self.memory {
            nonzero("memory.limit", m.limit)?;
            nonzero("memory.restart_after", m.restart_after.as_nanos())?;
        }
        Ok(())
    }
}

/// A command waiting for (or being run by) a shard.
#[derive(Clone, Copy, Debug)]
struct Queued {
    /// The cache's own number of the command (a key of `Cache::pending`).
    op: u64,
    key: u64,
    cmd: CacheOp,
    arrived: SimTime,
}

#[derive(Clone, Debug)]
struct Shard {
    store: Store,
    /// The command at the front is being run when `busy`.
    queue: VecDeque<Queued>,
    busy: bool,
    /// Commands started: the `seq` of the running one's timer.
    seq: u64,
    /// OOM-killed, waiting for its restart.
    down: bool,
    /// The store's counts already added to the metrics.
    seen: StoreStats,
    /// The gauge values last published (entries, bytes, queue), for the totals.
    published: [f64; 3],
}

/// A command not yet answered: for a replicated set or delete, the parts still running.
#[derive(Clone, Copy, Debug)]
struct Pending {
    id: u64,
    reply_to: ActorId,
    parts: u32,
    result: CacheResult,
}

#[derive(Clone, Copy)]
struct ShardMetrics {
    ops: CounterId,
    hits: CounterId,
    misses: CounterId,
    evictions: CounterId,
    oom_kills: CounterId,
    queue_len: GaugeId,
    entries: GaugeId,
    bytes: GaugeId,
    latency: HistogramId,
}

#[derive(Clone)]
struct CacheMetrics {
    gets: CounterId,
    hits: CounterId,
    stale_hits: CounterId,
    misses: CounterId,
    sets: CounterId,
    refused: CounterId,
    deletes: CounterId,
    evictions: CounterId,
    expired: CounterId,
    rejected: CounterId,
    unavailable: CounterId,
    oom_kills: CounterId,
    /// Totals over the shards: entries, bytes, queue.
    totals: [GaugeId; 3],
    latency: HistogramId,
    shards: Vec<ShardMetrics>,
}

/// A sharded cache (see the module docs).
///
/// Metrics (owner = the cache's name), totals over the shards: `gets_total` (gets run: `=
/// hits_total + stale_hits_total + misses_total`, so `ratio(<cache>.hits_total,
/// <cache>.gets_total)` is the hit ratio), `hits_total`, `stale_hits_total`, `misses_total`,
/// `sets_total` (sets written), `refused_total` (sets refused by a full `noeviction` store or
/// too large), `deletes_total` (entries deleted), `evictions_total`, `expired_total` (entries
/// removed past their stale window, lazily or by the sweep), `rejected_total` (commands refused
/// by a full queue), `unavailable_total` (commands refused by a down shard, or lost with a
/// killed one), `oom_kills_total`; gauges `entries`, `bytes` and `queue_len` (commands at the
/// shards, running ones included); the `latency` histogram (ns, arrival to completion of every
/// command run, by each shard that ran a part of it).
///
/// Per shard `<i>` (0-based): `ops_total.<i>` (commands run: its load), `hits_total.<i>`,
/// `misses_total.<i>`, `evictions_total.<i>`, `oom_kills_total.<i>`, gauges
/// `queue_len.<i>`, `entries.<i>`, `bytes.<i>`, and `latency.<i>`.
///
/// A crash of the actor loses every shard's data, as Redis without persistence does.
#[derive(Clone)]
pub struct Cache<M> {
    config: CacheConfig,
    ring: Ring,
    service: Sampler,
    shards: Vec<Shard>,
    pending: BTreeMap<u64, Pending>,
    next_op: u64,
    metrics: Option<CacheMetrics>,
    _m: PhantomData<M>,
}

/// Where a command goes: one shard, or every replica of a replicated key.
enum Targets {
    One(usize),
    Many(Vec<usize>),
}

impl<M> Cache<M> {
    /// Validates `config` and builds the ring and the (empty) stores.
    pub fn new(config: CacheConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let ring = Ring::new(&config.shard_names(), config.vnodes)?;
        let service = compile("service", &config.service)?;
        let store = Store::new(config.store.clone()).map_err(|e| e.within("store"))?;
        let shard = Shard {
            store,
            queue: VecDeque::new(),
            busy: false,
            seq: 0,
            down: false,
            seen: StoreStats::default(),
            published: [0.0; 3],
        };
        Ok(Cache {
            shards: vec![shard; config.shards as usize],
            config,
            ring,
            service,
            pending: BTreeMap::new(),
            next_op: 0,
            metrics: None,
            _m: PhantomData,
        })
    }

    pub fn ring(&self) -> &Ring {
        &self.ring
    }

    /// The shard that holds `key` (its first replica, if it is replicated).
    pub fn shard_of(&self, key: u64) -> usize {
        self.ring.shard_of(key)
    }

    /// Shard `shard`'s store.
    pub fn store(&self, shard: usize) -> &Store {
        &self.shards[shard].store
    }

    /// Commands at shard `shard`, the running one included.
    pub fn queue_len(&self, shard: usize) -> usize {
        self.shards[shard].queue.len()
    }

    /// Whether shard `shard` is down after an OOM kill.
    pub fn is_down(&self, shard: usize) -> bool {
        self.shards[shard].down
    }

    /// Entries held by all the shards.
    pub fn entries(&self) -> usize {
        self.shards.iter().map(|s| s.store.len()).sum()
    }

    fn m(&self) -> &CacheMetrics {
        self.metrics.as_ref().expect("registered at start")
    }

    fn replicated(&self, key: u64) -> Option<u32> {
        self.config
            .replication
            .as_ref()
            .filter(|r| key < r.keys && r.replicas > 1)
            .map(|r| r.replicas)
    }
}

impl<M: Carry<Rpc>> Cache<M> {
    fn targets(&self, ctx: &mut Ctx<'_, M>, key: u64, op: CacheOp) -> Targets {
        let Some(replicas) = self.replicated(key) else {
            return Targets::One(self.ring.shard_of(key));
        };
        let all = self.ring.replicas(key, replicas as usize);
        debug_assert_eq!(all.len(), replicas as usize);
        match op {
            CacheOp::Get => Targets::One(all[ctx.rng().random_range(0..all.len())]),
            CacheOp::Set { .. } | CacheOp::Delete => Targets::Many(all),
        }
    }

    fn on_request(&mut self, ctx: &mut Ctx<'_, M>, r: CacheRequest) {
        let op = self.next_op;
        self.next_op += 1;
        let targets = self.targets(ctx, r.key, r.op);
        let parts = match &targets {
            Targets::One(_) => 1,
            Targets::Many(all) => all.len() as u32,
        };
        // The success a part reports if nothing fails; the first failure replaces it.
        let result = match r.op {
            CacheOp::Get => CacheResult::Miss,
            CacheOp::Set { .. } => CacheResult::Stored,
            CacheOp::Delete => CacheResult::Deleted,
        };
        let pending = Pending {
            id: r.id,
            reply_to: r.reply_to,
            parts,
            result,
        };
        self.pending.insert(op, pending);
        let queued = Queued {
            op,
            key: r.key,
            cmd: r.op,
            arrived: ctx.now(),
        };
        match targets {
            Targets::One(s) => self.enqueue(ctx, s, queued),
            Targets::Many(all) => {
                for s in all {
                    self.enqueue(ctx, s, queued);
                }
            }
        }
    }

    fn enqueue(&mut self, ctx: &mut Ctx<'_, M>, s: usize, q: Queued) {
        let capacity = self.config.queue_capacity;
        let shard = &mut self.shards[s];
        if shard.down {
            let c = self.m().unavailable;
            ctx.metrics().inc(c);
            self.part_done(ctx, q.op, CacheResult::Unavailable);
            return;
        }
        if capacity.is_some_and(|cap| shard.queue.len() >= cap as usize) {
            let c = self.m().rejected;
            ctx.metrics().inc(c);
            self.part_done(ctx, q.op, CacheResult::Rejected);
            return;
        }
        shard.queue.push_back(q);
        if !shard.busy {
            self.start(ctx, s);
        }
        self.publish(ctx, s);
    }

    /// Starts the command at the front of shard `s`'s queue.
    fn start(&mut self, ctx: &mut Ctx<'_, M>, s: usize) {
        let time = ctx.sample_duration(&self.service);
        let time = ctx.work(time);
        let shard = &mut self.shards[s];
        debug_assert!(!shard.busy && !shard.down && !shard.queue.is_empty());
        shard.busy = true;
        shard.seq += 1;
        let tick = Tick::ShardDone {
            shard: s as u32,
            seq: shard.seq,
        };
        ctx.set_timer(time, M::wrap(Rpc::Tick(tick)));
    }

    /// Shard `s` finished the command at its front: runs it on the store, answers it, and
    /// starts the next.
    fn done(&mut self, ctx: &mut Ctx<'_, M>, s: usize) {
        let now = ctx.now();
        let shard = &mut self.shards[s];
        debug_assert!(shard.busy);
        let q = shard
            .queue
            .pop_front()
            .expect("a busy shard runs its front command");
        shard.busy = false;
        let result = match q.cmd {
            CacheOp::Get => match shard.store.get(q.key, now) {
                Lookup::Hit(e) => CacheResult::Hit(value(&e)),
                Lookup::Stale(e) => CacheResult::Stale(value(&e)),
                Lookup::Miss => CacheResult::Miss,
            },
            CacheOp::Set {
                ttl,
                delta,
                size,
                negative,
            } => {
                let size = u64::from(size);
                let outcome = if negative {
                    shard.store.set_negative(q.key, now, ttl, size, ctx.rng())
                } else {
                    shard.store.set(q.key, now, ttl, size, delta, ctx.rng())
                };
                match outcome {
                    SetOutcome::Stored { .. } => CacheResult::Stored,
                    SetOutcome::Refused(_) => CacheResult::Refused,
                }
            }
            CacheOp::Delete => {
                shard.store.delete(q.key);
                CacheResult::Deleted
            }
        };
        let m = self.m();
        let (total, own) = (m.latency, m.shards[s]);
        let latency = (now - q.arrived).as_nanos();
        ctx.metrics().record(total, latency);
        ctx.metrics().record(own.latency, latency);
        ctx.metrics().inc(own.ops);
        self.sync_stats(ctx, s);
        self.part_done(ctx, q.op, result);
        let over = match &self.config.memory {
            Some(mem) => self.shards[s].store.bytes() > mem.limit,
            None => false,
        };
        if over {
            self.oom(ctx, s);
        } else if !self.shards[s].queue.is_empty() {
            self.start(ctx, s);
        }
        self.publish(ctx, s);
    }

    /// One shard's part of command `op` ended with `result`: answers the command once every
    /// part has (with the first failure among them, if any).
    fn part_done(&mut self, ctx: &mut Ctx<'_, M>, op: u64, result: CacheResult) {
        let Some(p) = self.pending.get_mut(&op) else {
            debug_assert!(false, "a part of an unknown command {op}");
            return;
        };
        debug_assert!(p.parts > 0);
        p.parts -= 1;
        let failed = |r: CacheResult| matches!(r, CacheResult::Refused) || !r.ran();
        if !failed(p.result) {
            p.result = result;
        }
        if p.parts > 0 {
            return;
        }
        let p = self.pending.remove(&op).expect("just found");
        let reply = CacheReply {
            id: p.id,
            result: p.result,
        };
        ctx.send(p.reply_to, M::wrap(Rpc::CacheReply(reply)));
    }

    /// Adds what shard `s`'s store counted since the last call to the counters.
    fn sync_stats(&mut self, ctx: &mut Ctx<'_, M>, s: usize) {
        let shard = &mut self.shards[s];
        let (now, seen) = (*shard.store.stats(), shard.seen);
        shard.seen = now;
        let m = self.metrics.as_ref().expect("registered at start");
        let own = m.shards[s];
        let d = |f: fn(&StoreStats) -> u64| f(&now) - f(&seen);
        let (hits, stale, misses) = (d(|s| s.hits), d(|s| s.stale_hits), d(|s| s.misses));
        let metrics = ctx.metrics();
        metrics.add(m.gets, hits + stale + misses);
        metrics.add(m.hits, hits);
        metrics.add(m.stale_hits, stale);
        metrics.add(m.misses, misses);
        metrics.add(m.sets, d(|s| s.sets));
        metrics.add(m.refused, d(|s| s.refused));
        metrics.add(m.deletes, d(|s| s.deletes));
        metrics.add(m.evictions, d(|s| s.evictions));
        metrics.add(m.expired, d(|s| s.expired));
        metrics.add(own.hits, hits);
        metrics.add(own.misses, misses);
        metrics.add(own.evictions, d(|s| s.evictions));
    }

    /// Publishes shard `s`'s gauges and moves the totals by its change.
    fn publish(&mut self, ctx: &mut Ctx<'_, M>, s: usize) {
        let shard = &mut self.shards[s];
        let now = [
            shard.store.len() as f64,
            shard.store.bytes() as f64,
            shard.queue.len() as f64,
        ];
        let before = std::mem::replace(&mut shard.published, now);
        let m = self.metrics.as_ref().expect("registered at start");
        let own = m.shards[s];
        for (i, g) in [own.entries, own.bytes, own.queue_len]
            .into_iter()
            .enumerate()
        {
            if now[i] != before[i] {
                ctx.metrics().set(g, now[i]);
                ctx.metrics().adjust(m.totals[i], now[i] - before[i]);
            }
        }
    }

    /// Shard `s` went past its memory limit: its data and queued commands are lost, and it is
    /// down until its restart.
    fn oom(&mut self, ctx: &mut Ctx<'_, M>, s: usize) {
        let store = Store::new(self.config.store.clone()).expect("validated at construction");
        let restart_after = self.config.memory.as_ref().map(|m| m.restart_after);
        let restart_after = restart_after.expect("only a limited shard is killed");
        let shard = &mut self.shards[s];
        shard.store = store;
        shard.seen = StoreStats::default();
        shard.down = true;
        shard.busy = false;
        // A timer of a command started before the kill finds another seq and is ignored.
        shard.seq += 1;
        let lost: Vec<u64> = shard.queue.drain(..).map(|q| q.op).collect();
        let m = self.m();
        let (kills, own, unavailable) = (m.oom_kills, m.shards[s].oom_kills, m.unavailable);
        ctx.metrics().inc(kills);
        ctx.metrics().inc(own);
        ctx.metrics().add(unavailable, lost.len() as u64);
        ctx.trace_note(&format!("shard {s} OOMKilled"));
        for op in lost {
            self.part_done(ctx, op, CacheResult::Unavailable);
        }
        let tick = Tick::ShardRestart(s as u32);
        ctx.set_timer(restart_after, M::wrap(Rpc::Tick(tick)));
    }

    fn sweep(&mut self, ctx: &mut Ctx<'_, M>) {
        let now = ctx.now();
        for s in 0..self.shards.len() {
            if self.shards[s].down {
                continue;
            }
            let removed = self.shards[s].store.purge_expired(now, SWEEP_MAX_PER_SHARD);
            if removed > 0 {
                self.sync_stats(ctx, s);
                self.publish(ctx, s);
            }
        }
        if let Some(every) = self.config.sweep_interval {
            ctx.set_timer(every, M::wrap(Rpc::Tick(Tick::Sweep)));
        }
    }

    fn register(&mut self, ctx: &mut Ctx<'_, M>) {
        let shards = (0..self.shards.len())
            .map(|i| ShardMetrics {
                ops: ctx.counter(&format!("ops_total.{i}")),
                hits: ctx.counter(&format!("hits_total.{i}")),
                misses: ctx.counter(&format!("misses_total.{i}")),
                evictions: ctx.counter(&format!("evictions_total.{i}")),
                oom_kills: ctx.counter(&format!("oom_kills_total.{i}")),
                queue_len: ctx.gauge(&format!("queue_len.{i}")),
                entries: ctx.gauge(&format!("entries.{i}")),
                bytes: ctx.gauge(&format!("bytes.{i}")),
                latency: ctx.histogram(&format!("latency.{i}")),
            })
            .collect::<Vec<_>>();
        let m = CacheMetrics {
            gets: ctx.counter("gets_total"),
            hits: ctx.counter("hits_total"),
            stale_hits: ctx.counter("stale_hits_total"),
            misses: ctx.counter("misses_total"),
            sets: ctx.counter("sets_total"),
            refused: ctx.counter("refused_total"),
            deletes: ctx.counter("deletes_total"),
            evictions: ctx.counter("evictions_total"),
            expired: ctx.counter("expired_total"),
            rejected: ctx.counter("rejected_total"),
            unavailable: ctx.counter("unavailable_total"),
            oom_kills: ctx.counter("oom_kills_total"),
            totals: [
                ctx.gauge("entries"),
                ctx.gauge("bytes"),
                ctx.gauge("queue_len"),
            ],
            latency: ctx.histogram("latency"),
            shards,
        };
        // A restarted cache starts empty: gauges left by the last incarnation are reset.
        let gauges = m.totals.into_iter().chain(
            m.shards
                .iter()
                .flat_map(|s| [s.entries, s.bytes, s.queue_len]),
        );
        for g in gauges {
            ctx.metrics().set(g, 0.0);
        }
        self.metrics = Some(m);
    }
}

/// What a get answers about an entry.
fn value(e: &super::Entry) -> CachedValue {
    CachedValue {
        expires_at: e.expires_at,
        delta: e.delta,
        negative: e.negative,
    }
}

impl<M: Carry<Rpc>> Actor<M> for Cache<M> {
    fn on_start(&mut self, ctx: &mut Ctx<'_, M>) {
        self.register(ctx);
        if let Some(every) = self.config.sweep_interval {
            ctx.set_timer(every, M::wrap(Rpc::Tick(Tick::Sweep)));
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, M>, _from: ActorId, msg: M) {
        if let Some(Rpc::CacheRequest(r)) = msg.unwrap() {
            self.on_request(ctx, r);
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, M>, msg: M) {
        let Some(Rpc::Tick(tick)) = msg.unwrap() else {
            return;
        };
        match tick {
            Tick::ShardDone { shard, seq } => {
                let s = shard as usize;
                let current = self
                    .shards
                    .get(s)
                    .is_some_and(|sh| sh.busy && sh.seq == seq && !sh.down);
                if current {
                    self.done(ctx, s);
                }
            }
            Tick::ShardRestart(shard) => {
                if let Some(sh) = self.shards.get_mut(shard as usize) {
                    sh.down = false;
                }
                ctx.trace_note(&format!("shard {shard} restarted"));
            }
            Tick::Sweep => self.sweep(ctx),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Result<CacheConfig, ConfigError> {
        crate::model::rpc::from_ron(text)
    }

    #[test]
    fn configs_take_redis_defaults_and_validate_naming_the_field() {
        let c = config(r#"(shards: 4, service: Exp(mean: "10us"))"#).expect("valid");
        assert_eq!(c.vnodes, 160);
        assert_eq!(c.queue_capacity, Some(10_000));
        assert_eq!(c.sweep_interval, Some(SimDuration::from_millis(100)));
        assert_eq!(c.store, StoreConfig::default());
        assert_eq!((c.replication.clone(), c.memory.clone()), (None, None));
        assert_eq!(c.shard_names()[3], "shard-3");
        let field = |text: &str| {
            config(text)
                .expect_err(text)
                .field()
                .map(str::to_string)
                .unwrap_or_default()
        };
        let svc = r#"service: Const("1ms")"#;
        assert_eq!(field(&format!("(shards: 0, {svc})")), "shards");
        assert_eq!(field(&format!("(shards: 1025, {svc})")), "shards");
        assert_eq!(field(&format!("(shards: 2, vnodes: 0, {svc})")), "vnodes");
        assert_eq!(
            field(&format!("(shards: 2, store: (eviction: Lru), {svc})")),
            "store.eviction"
        );
        assert_eq!(field(r#"(shards: 2, service: Const("-1ms"))"#), "");
        assert_eq!(
            field(&format!("(shards: 2, queue_capacity: Some(0), {svc})")),
            "queue_capacity"
        );
        assert_eq!(
            field(&format!(
                r#"(shards: 2, sweep_interval: Some("0s"), {svc})"#
            )),
            "sweep_interval"
        );
        assert_eq!(
            field(&format!(
                "(shards: 2, replication: Some((keys: 0, replicas: 2)), {svc})"
            )),
            "replication.keys"
        );
        assert_eq!(
            field(&format!(
                "(shards: 2, replication: Some((keys: 5, replicas: 3)), {svc})"
            )),
            "replication.replicas"
        );
        assert_eq!(
            field(&format!("(shards: 2, memory: Some((limit: 0)), {svc})")),
            "memory.limit"
        );
        assert!(config(&format!("(shards: 2, shard: 3, {svc})")).is_err());
        let c = config(&format!(
            "(shards: 3, replication: Some((keys: 5, replicas: 3)), memory: Some((limit: 9)), {svc})"
        ))
        .expect("valid");
        assert_eq!(
            c.memory.map(|m| m.restart_after),
            Some(DEFAULT_RESTART_AFTER)
        );
    }
}
