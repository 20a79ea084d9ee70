//! The [`ReplNode`]: a primary or a replica of the replicated store (see the module docs of
//! [`repl`](super)).
//!
//! Its log, its epoch fence and whom it follows are on its disk ([`Durable`]): a node powered
//! off and back keeps them (Redis keeps its data and Sentinel rewrites its config file).
//!
//! **Metrics** (owner = the node's name): `writes_accepted_total`, `writes_acked_total`,
//! `writes_refused_total`, `redirects_total`, `fenced_total` (things refused for an older
//! epoch), `step_downs_total`, `full_syncs_total`, `discarded_entries_total` (entries a
//! resync threw away), `store_recoveries_total` (promotions that read the fence store's log),
//! gauges `is_primary` and `epoch`.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use serde::{Deserialize, Serialize};

use super::{Entry, Epoch, EpochFence, Repl, ReplTick, ReplWatch, WriteResult};
use crate::actor::{Actor, ActorId, Ctx, Durable};
use crate::dist::{Dist, Sampler};
use crate::engine::time::{SimDuration, SimTime};
use crate::metrics::{CounterId, GaugeId, Metrics};
use crate::model::Carry;
use crate::model::rpc::{ConfigError, Validate, check_unique_names, compile, nonzero};

/// Redis `min-replicas-max-lag`: 10 s (redis.conf, "min-replicas-max-lag 10").
pub const DEFAULT_MIN_REPLICAS_MAX_LAG: SimDuration = SimDuration::from_secs(10);
/// How often a replica acknowledges its offset when idle: 1 s (Redis replicas send
/// `REPLCONF ACK` every second).
pub const REPLICA_ACK_INTERVAL: SimDuration = SimDuration::from_secs(1);

fn default_max_lag() -> SimDuration {
    DEFAULT_MIN_REPLICAS_MAX_LAG
}
fn default_quorum_timeout() -> SimDuration {
    SimDuration::from_secs(1)
}

/// When the primary acknowledges a write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ack {
    /// After its own append; replicas get it later (Redis's asynchronous replication).
    #[default]
    Local,
    /// Once a majority of all nodes (itself included) have it.
    Majority,
    /// Once every node has it (fully synchronous).
    All,
}

/// A [`ReplNode`]'s config: `(peers: ["db0", "db1", "db2"])`; the first peer is the initial
/// primary (epoch 1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplNodeConfig {
    /// Every node of the store by actor name, this one included.
    pub peers: Vec<String>,
    /// Default `Local` (asynchronous).
    #[serde(default)]
    pub ack: Ack,
    /// The replication lag: how long after its append the primary ships an entry. Default
    /// None (at once; the network's latency is then the lag).
    #[serde(default)]
    pub lag: Option<Dist>,
    /// Redis `min-replicas-to-write`; default 0 (off, as in Redis).
    #[serde(default)]
    pub min_replicas_to_write: u32,
    /// Redis `min-replicas-max-lag`; default 10 s.
    #[serde(default = "default_max_lag")]
    pub min_replicas_max_lag: SimDuration,
    /// With `Majority`/`All`: a write not acknowledged this long after its append is refused
    /// (it may still survive: the client cannot tell). Default 1 s, an **assumption** (a
    /// client timeout's order).
    #[serde(default = "default_quorum_timeout")]
    pub quorum_timeout: SimDuration,
    /// Refuse writes, replication and resyncs from an epoch older than the newest seen, and
    /// step down on learning a newer one; default false (Redis has no such check).
    #[serde(default)]
    pub fence_epoch: bool,
    /// The [`EpochStore`](super::EpochStore) actor: the primary writes every entry to it with
    /// its epoch and acknowledges only once the store accepted it (as well as after its `ack`
    /// quorum); the store's refusal (`Fenced`, the watcher fenced it with a newer epoch) makes
    /// it step down. A write the store has not confirmed within `quorum_timeout` is refused.
    /// Default None (Redis writes to its own memory only).
    #[serde(default)]
    pub fence_store: Option<String>,
}

impl ReplNodeConfig {
    /// The actor names this config refers to, with their field paths.
    pub fn targets(&self) -> Vec<(String, &str)> {
        let peers = self.peers.iter().enumerate();
        let mut t: Vec<(String, &str)> = peers
            .map(|(i, p)| (format!("peers[{i}]"), p.as_str()))
            .collect();
        if let Some(s) = &self.fence_store {
            t.push(("fence_store".to_string(), s.as_str()));
        }
        t
    }
}

impl Validate for ReplNodeConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.peers.is_empty() {
            return Err(ConfigError::Empty {
                field: "peers".into(),
            });
        }
        check_unique_names(self.peers.iter().map(String::as_str), |i| {
            format!("peers[{i}]")
        })?;
        if let Some(lag) = &self.lag {
            compile("lag", lag)?;
        }
        if self.min_replicas_to_write as usize >= self.peers.len() {
            return Err(ConfigError::Invalid {
                field: "min_replicas_to_write".into(),
                reason: format!(
                    "{} replicas cannot be found among {} peers (the primary is one)",
                    self.min_replicas_to_write,
                    self.peers.len()
                ),
            });
        }
        nonzero("min_replicas_max_lag", self.min_replicas_max_lag.as_nanos())?;
        nonzero("quorum_timeout", self.quorum_timeout.as_nanos())?;
        Ok(())
    }
}

/// What a node keeps on disk.
#[derive(Clone, Debug, Default)]
pub struct NodeDisk {
    pub log: Vec<Entry>,
    pub fence: EpochFence,
    /// Whom it follows; itself when primary. None before the first start.
    pub primary: Option<ActorId>,
    /// The oracle's bookkeeping: the entries from this index on count as copies of their
    /// values. A STONITH power-off lets go of them all: the fenced node never serves that log
    /// again without a full resync from the new primary, whenever it comes back.
    pub held_from: usize,
    /// The newest epoch promised to a watcher's election (`Prepare`), and to whom: the node
    /// takes no replication from an older epoch and promises no other watcher that epoch.
    /// On disk, as a Raft vote is, so a restart cannot promise twice.
    pub promised: Epoch,
    pub promised_to: Option<ActorId>,
}

#[derive(Clone, Copy)]
struct NodeMetrics {
    accepted: CounterId,
    acked: CounterId,
    refused: CounterId,
    redirects: CounterId,
    fenced: CounterId,
    step_downs: CounterId,
    full_syncs: CounterId,
    discarded: CounterId,
    recoveries: CounterId,
    is_primary: GaugeId,
    epoch: GaugeId,
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    id: u64,
    reply_to: ActorId,
    /// The fenced store accepted it (always true without one).
    stored: bool,
}

/// See the module docs.
#[derive(Clone)]
pub struct ReplNode<M> {
    config: ReplNodeConfig,
    disk: Durable<NodeDisk>,
    watch: Option<ReplWatch>,
    lag: Option<Sampler>,
    peers: Vec<ActorId>,
    store: Option<ActorId>,
    /// Primary with a fence store only: reading the store's log before taking writes, and the
    /// replicas whose resync requests wait for it.
    recovering: bool,
    sync_waiters: Vec<ActorId>,
    /// Primary only: per replica, the offset it acknowledged and when (local clock).
    acks: BTreeMap<ActorId, (u64, SimTime)>,
    /// Primary only: writes waiting for their quorum, by offset.
    pending: BTreeMap<u64, Pending>,
    /// Replica only: entries that arrived ahead of a gap.
    ahead: BTreeMap<u64, Entry>,
    /// Replica only: false from asking its primary for a full resync until the resync
    /// arrives; the stream is ignored meanwhile (Redis's PSYNC handshake comes before the
    /// stream), so an entry is never appended on top of a log that has not been checked
    /// against the primary's, and every log stays a prefix of its primary's.
    synced: bool,
    metrics: Option<NodeMetrics>,
    /// Its own id, known from the start (for `on_crash`, which has no context).
    me: Option<ActorId>,
    _m: PhantomData<M>,
}

impl<M> ReplNode<M> {
    pub fn new(config: ReplNodeConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let lag = match &config.lag {
            Some(d) => Some(compile("lag", d)?),
            None => None,
        };
        Ok(ReplNode {
            config,
            disk: Durable::new(NodeDisk::default()),
            watch: None,
            lag,
            peers: Vec::new(),
            store: None,
            recovering: false,
            sync_waiters: Vec::new(),
            acks: BTreeMap::new(),
            pending: BTreeMap::new(),
            ahead: BTreeMap::new(),
            synced: true,
            metrics: None,
            me: None,
            _m: PhantomData,
        })
    }

    /// Shares the oracle.
    pub fn with_watch(mut self, watch: ReplWatch) -> Self {
        self.watch = Some(watch);
        self
    }

    /// The node's disk (shared by clones).
    pub fn disk(&self) -> Durable<NodeDisk> {
        self.disk.clone()
    }

    /// The oracle it reports to, if any.
    pub fn watch(&self) -> Option<ReplWatch> {
        self.watch.clone()
    }

    pub fn config(&self) -> &ReplNodeConfig {
        &self.config
    }
}

impl<M: Carry<Repl>> ReplNode<M> {
    fn m(&self) -> NodeMetrics {
        self.metrics.expect("registered at start")
    }

    fn is_primary(&self, ctx: &Ctx<'_, M>) -> bool {
        self.disk.borrow().primary == Some(ctx.me())
    }

    fn epoch(&self) -> Epoch {
        self.disk.borrow().fence.seen()
    }

    fn publish(&self, ctx: &mut Ctx<'_, M>) {
        let m = self.m();
        let p = if self.is_primary(ctx) { 1.0 } else { 0.0 };
        let e = self.epoch() as f64;
        ctx.metrics().set(m.is_primary, p);
        ctx.metrics().set(m.epoch, e);
        if let Some(w) = &self.watch {
            w.borrow_mut().believes(ctx.me(), p > 0.0, ctx.metrics());
        }
    }

    /// The process stops: it believes nothing any more (for the oracle and the chart).
    fn stopped(&mut self, me: ActorId, metrics: &mut Metrics) {
        if let Some(m) = self.metrics {
            metrics.set(m.is_primary, 0.0);
        }
        if let Some(w) = &self.watch {
            w.borrow_mut().believes(me, false, metrics);
        }
    }

    /// Tells the oracle this node no longer holds copies of `entries`' values.
    fn release(&self, entries: &[Entry], metrics: &mut Metrics) {
        if let Some(w) = &self.watch {
            let values: Vec<u64> = entries.iter().map(|e| e.value).collect();
            w.borrow_mut().release(&values, metrics);
        }
    }

    /// Records the newest epoch seen, for the oracle's check, without fencing on it.
    fn learn(&mut self, epoch: Epoch) {
        let mut d = self.disk.borrow_mut();
        if epoch > d.fence.seen() {
            d.fence.admit(epoch);
        }
    }

    /// Appends `entry`, which came in the stream of a primary of epoch `stream` (a resync's
    /// history keeps its own older epochs), telling the oracle if `stream` is older than the
    /// newest epoch this node has seen (what `fence_epoch` forbids).
    fn append(&mut self, ctx: &mut Ctx<'_, M>, entry: Entry, stream: Epoch) {
        let seen = self.epoch();
        if stream < seen
            && let Some(w) = &self.watch
        {
            let stale = (ctx.me(), entry.epoch, seen, ctx.now());
            w.borrow_mut().stale(stale, ctx.metrics());
        }
        if let Some(w) = &self.watch {
            w.borrow_mut().hold(entry.value);
        }
        self.disk.borrow_mut().log.push(entry);
    }

    fn step_down(&mut self, ctx: &mut Ctx<'_, M>, primary: Option<ActorId>) {
        let was = self.is_primary(ctx);
        self.disk.borrow_mut().primary = primary;
        self.acks.clear();
        self.ahead.clear();
        self.recovering = false;
        self.sync_waiters.clear();
        if was {
            let m = self.m();
            ctx.metrics().inc(m.step_downs);
            let epoch = self.epoch();
            for (_, p) in std::mem::take(&mut self.pending) {
                ctx.metrics().inc(m.refused);
                let r = Repl::WriteReply {
                    id: p.id,
                    result: WriteResult::Redirect { primary, epoch },
                };
                ctx.send(p.reply_to, M::wrap(r));
            }
        }
        if let Some(p) = primary {
            self.synced = false;
            ctx.send(
                p,
                M::wrap(Repl::SyncRequest {
                    epoch: self.epoch(),
                }),
            );
        }
        self.publish(ctx);
    }

    /// A watcher's election for `epoch`: promise it if it is newer than anything promised or
    /// seen (or repeat the promise to the same watcher), stepping down if primary.
    fn on_prepare(&mut self, ctx: &mut Ctx<'_, M>, from: ActorId, epoch: Epoch) {
        let (promised, to) = {
            let d = self.disk.borrow();
            (d.promised, d.promised_to)
        };
        let again = epoch == promised && to == Some(from);
        if !again && (epoch <= promised || epoch <= self.epoch()) {
            return;
        }
        {
            let mut d = self.disk.borrow_mut();
            d.promised = epoch;
            d.promised_to = Some(from);
        }
        if self.is_primary(ctx) {
            // It may be chosen again, but acknowledges nothing more under its old epoch.
            self.step_down(ctx, None);
        }
        let d = self.disk.borrow();
        let promise = Repl::Promise {
            epoch,
            last_epoch: d.log.last().map_or(0, |e| e.epoch),
            offset: d.log.len() as u64,
        };
        drop(d);
        ctx.send(from, M::wrap(promise));
    }

    /// Promised to an election newer than `epoch`.
    fn promised_past(&self, epoch: Epoch) -> bool {
        epoch < self.disk.borrow().promised
    }

    fn become_primary(&mut self, ctx: &mut Ctx<'_, M>, epoch: Epoch) {
        {
            let mut d = self.disk.borrow_mut();
            d.fence.admit(epoch);
            d.primary = Some(ctx.me());
        }
        self.acks.clear();
        self.ahead.clear();
        self.pending.clear();
        self.sync_waiters.clear();
        if let Some(store) = self.store {
            // Ledger recovery: take the store's log before writing after it.
            self.recovering = true;
            ctx.send(store, M::wrap(Repl::StoreRead { epoch }));
        }
        self.publish(ctx);
    }

    /// The store's log arrived: it becomes this primary's log (renumbered by position, which
    /// is the order the store accepted the writes in), and the waiting replicas get it.
    fn recovered(&mut self, ctx: &mut Ctx<'_, M>, log: Vec<Entry>) {
        let m = self.m();
        ctx.metrics().inc(m.recoveries);
        let epoch = self.epoch();
        let (old, held_from) = {
            let mut d = self.disk.borrow_mut();
            (std::mem::take(&mut d.log), std::mem::take(&mut d.held_from))
        };
        for (i, mut e) in log.into_iter().enumerate() {
            e.offset = i as u64 + 1;
            self.append(ctx, e, epoch);
        }
        // Held before the old log is let go, as in a resync.
        self.release(&old[held_from.min(old.len())..], ctx.metrics());
        self.recovering = false;
        let log = self.disk.borrow().log.clone();
        for r in std::mem::take(&mut self.sync_waiters) {
            ctx.send(
                r,
                M::wrap(Repl::Sync {
                    epoch,
                    log: log.clone(),
                }),
            );
        }
    }

    fn fenced(&mut self, ctx: &mut Ctx<'_, M>, to: ActorId) {
        let m = self.m();
        ctx.metrics().inc(m.fenced);
        if let Some(w) = &self.watch {
            w.borrow_mut().fenced(ctx.metrics());
        }
        let epoch = self.epoch();
        ctx.send(to, M::wrap(Repl::Fenced { epoch }));
    }

    /// Replicas whose last acknowledgement is within `min_replicas_max_lag`.
    fn fresh_replicas(&self, now: SimTime) -> u32 {
        let lag = self.config.min_replicas_max_lag;
        let fresh = self.acks.values();
        fresh
            .filter(|(_, at)| now.saturating_duration_since(*at) <= lag)
            .count() as u32
    }

    fn needed(&self) -> usize {
        match self.config.ack {
            Ack::Local => 1,
            Ack::Majority => self.peers.len() / 2 + 1,
            Ack::All => self.peers.len(),
        }
    }

    fn on_write(
        &mut self,
        ctx: &mut Ctx<'_, M>,
        id: u64,
        reply_to: ActorId,
        key: u64,
        value: u64,
        client_epoch: Epoch,
    ) {
        let m = self.m();
        if self.config.fence_epoch && client_epoch > self.epoch() {
            // The client heard of a newer primary: this one is stale.
            self.learn(client_epoch);
            self.step_down(ctx, None);
        }
        if !self.is_primary(ctx) {
            ctx.metrics().inc(m.redirects);
            let primary = self.disk.borrow().primary;
            let result = WriteResult::Redirect {
                primary,
                epoch: self.epoch(),
            };
            ctx.send(reply_to, M::wrap(Repl::WriteReply { id, result }));
            return;
        }
        if self.recovering {
            // Still reading the store's log: cannot place the write after it yet.
            ctx.metrics().inc(m.refused);
            let result = WriteResult::Refused;
            ctx.send(reply_to, M::wrap(Repl::WriteReply { id, result }));
            return;
        }
        let min = self.config.min_replicas_to_write;
        if min > 0 && self.fresh_replicas(ctx.local_clock()) < min {
            ctx.metrics().inc(m.refused);
            let result = WriteResult::Refused;
            ctx.send(reply_to, M::wrap(Repl::WriteReply { id, result }));
            return;
        }
        let epoch = self.epoch();
        let offset = self.disk.borrow().log.len() as u64 + 1;
        let entry = Entry {
            offset,
            key,
            value,
            epoch,
        };
        self.append(ctx, entry, epoch);
        ctx.metrics().inc(m.accepted);

        match &self.lag {
            Some(s) => {
                let after = ctx.sample_duration(&s.clone());
                ctx.set_timer(after, M::wrap(Repl::Tick(ReplTick::Ship { offset, epoch })));
            }
            None => self.ship(ctx, offset, epoch),
        }
        if let Some(store) = self.store {
            ctx.send(store, M::wrap(Repl::StoreWrite { epoch, entry }));
        }
        if self.needed() <= 1 && self.store.is_none() {
            ctx.metrics().inc(m.acked);
            self.acknowledged(ctx, epoch);
            let result = WriteResult::Ok { epoch };
            ctx.send(reply_to, M::wrap(Repl::WriteReply { id, result }));
        } else {
            let stored = self.store.is_none();
            let p = Pending {
                id,
                reply_to,
                stored,
            };
            self.pending.insert(offset, p);
            let t = ReplTick::QuorumTimeout { offset };
            ctx.set_timer(self.config.quorum_timeout, M::wrap(Repl::Tick(t)));
        }
    }

    /// Tells the oracle this node acknowledged a write as primary of `epoch` now.
    fn acknowledged(&self, ctx: &mut Ctx<'_, M>, epoch: Epoch) {
        if let Some(w) = &self.watch {
            let (me, now) = (ctx.me(), ctx.now());
            w.borrow_mut().acknowledged(me, epoch, now, ctx.metrics());
        }
    }

    fn ship(&mut self, ctx: &mut Ctx<'_, M>, offset: u64, epoch: Epoch) {
        if !self.is_primary(ctx) || self.epoch() != epoch {
            return;
        }
        let entry = match self.disk.borrow().log.get(offset as usize - 1) {
            Some(e) if e.epoch == epoch => *e,
            _ => return,
        };
        for &p in &self.peers {
            if p != ctx.me() {
                ctx.send(p, M::wrap(Repl::Replicate { epoch, entry }));
            }
        }
    }

    /// Acknowledges, as the primary's quorum allows, every pending write now on enough nodes.
    fn settle(&mut self, ctx: &mut Ctx<'_, M>) {
        let needed = self.needed();
        let epoch = self.epoch();
        let m = self.m();
        let ready: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.stored)
            .map(|(&off, _)| off)
            .filter(|&off| 1 + self.acks.values().filter(|(o, _)| *o >= off).count() >= needed)
            .collect();
        for off in ready {
            if let Some(p) = self.pending.remove(&off) {
                ctx.metrics().inc(m.acked);
                self.acknowledged(ctx, epoch);
                let result = WriteResult::Ok { epoch };
                ctx.send(p.reply_to, M::wrap(Repl::WriteReply { id: p.id, result }));
            }
        }
    }

    fn ack_primary(&self, ctx: &mut Ctx<'_, M>) {
        let d = self.disk.borrow();
        if let Some(p) = d.primary
            && p != ctx.me()
        {
            let r = Repl::ReplAck {
                epoch: d.fence.seen(),
                offset: d.log.len() as u64,
            };
            drop(d);
            ctx.send(p, M::wrap(r));
        }
    }

    fn on_replicate(&mut self, ctx: &mut Ctx<'_, M>, from: ActorId, epoch: Epoch, entry: Entry) {
        if self.promised_past(epoch) {
            // Promised to a newer election: nothing from this epoch's primary any more.
            return;
        }
        let seen = self.epoch();
        let primary = self.disk.borrow().primary;
        if epoch > seen {
            // A primary of a newer epoch: follow it, from a full resync.
            self.learn(epoch);
            self.step_down(ctx, Some(from));
            return;
        }
        if primary != Some(from) || self.is_primary(ctx) {
            if self.config.fence_epoch && epoch < seen {
                self.fenced(ctx, from);
            }
            // Not the node it follows: Redis replicas take the stream only from their master.
            return;
        }
        if self.config.fence_epoch && epoch < seen {
            self.fenced(ctx, from);
            return;
        }
        if !self.synced {
            // The resync is on its way.
            return;
        }
        let len = self.disk.borrow().log.len() as u64;
        if entry.offset <= len {
            let mine = self.disk.borrow().log[entry.offset as usize - 1];
            if mine != entry {
                // Diverged: start over from the primary's log.
                self.synced = false;
                ctx.send(from, M::wrap(Repl::SyncRequest { epoch: seen }));
            }
            return;
        }
        if entry.offset > len + 1 && self.ahead.is_empty() {
            // A gap: an entry was lost on the way (a cut drops messages; TCP would have broken
            // the connection). Redis's replica reconnects and resyncs; ask for the log.
            self.synced = false;
            ctx.send(from, M::wrap(Repl::SyncRequest { epoch: seen }));
            return;
        }
        self.ahead.insert(entry.offset, entry);
        loop {
            let next = self.disk.borrow().log.len() as u64 + 1;
            let Some(e) = self.ahead.remove(&next) else {
                break;
            };
            self.append(ctx, e, epoch);
        }
        self.ack_primary(ctx);
    }

    fn on_sync(&mut self, ctx: &mut Ctx<'_, M>, from: ActorId, epoch: Epoch, log: Vec<Entry>) {
        let seen = self.epoch();
        if self.config.fence_epoch && epoch < seen {
            self.fenced(ctx, from);
            return;
        }
        if self.is_primary(ctx) && epoch <= seen {
            return;
        }
        if self.promised_past(epoch) {
            return;
        }
        let m = self.m();
        self.synced = true;
        self.learn(epoch);
        if self.is_primary(ctx) {
            self.step_down(ctx, None);
        }
        let discarded = {
            let d = self.disk.borrow();
            let common = d.log.iter().zip(&log).take_while(|(a, b)| a == b).count();
            d.log.len() - common
        };
        ctx.metrics().inc(m.full_syncs);
        ctx.metrics().add(m.discarded, discarded as u64);
        let (old, held_from) = {
            let mut d = self.disk.borrow_mut();
            d.primary = Some(from);
            (std::mem::take(&mut d.log), std::mem::take(&mut d.held_from))
        };
        self.ahead.clear();
        for e in log {
            self.append(ctx, e, epoch);
        }
        // The new log is held before the old one is let go: a value in both never has no copy.
        self.release(&old[held_from.min(old.len())..], ctx.metrics());
        self.ack_primary(ctx);
        self.publish(ctx);
    }
}

impl<M: Carry<Repl>> Actor<M> for ReplNode<M> {
    fn on_start(&mut self, ctx: &mut Ctx<'_, M>) {
        let own = ctx.name().to_string();
        self.me = Some(ctx.me());
        let metrics = NodeMetrics {
            accepted: ctx.counter("writes_accepted_total"),
            acked: ctx.counter("writes_acked_total"),
            refused: ctx.counter("writes_refused_total"),
            redirects: ctx.counter("redirects_total"),
            fenced: ctx.counter("fenced_total"),
            step_downs: ctx.counter("step_downs_total"),
            full_syncs: ctx.counter("full_syncs_total"),
            discarded: ctx.counter("discarded_entries_total"),
            recoveries: ctx.counter("store_recoveries_total"),
            is_primary: ctx.gauge("is_primary"),
            epoch: ctx.gauge("epoch"),
        };
        self.metrics = Some(metrics);
        if let Some(w) = &self.watch {
            w.borrow_mut().join(ctx.metrics());
        }
        self.peers = self
            .config
            .peers
            .iter()
            .map(|p| {
                ctx.lookup(p)
                    .unwrap_or_else(|| panic!("{own}: peers: no actor is called `{p}`"))
            })
            .collect();
        self.store = self.config.fence_store.as_ref().map(|s| {
            ctx.lookup(s)
                .unwrap_or_else(|| panic!("{own}: fence_store: no actor is called `{s}`"))
        });
        {
            let mut d = self.disk.borrow_mut();
            if d.primary.is_none() && d.fence.seen() == 0 {
                d.fence.admit(1);
                d.primary = Some(self.peers[0]);
            }
        }
        self.publish(ctx);
        ctx.set_timer(REPLICA_ACK_INTERVAL, M::wrap(Repl::Tick(ReplTick::Next)));
        self.ack_primary(ctx);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, M>, from: ActorId, msg: M) {
        let Some(msg) = msg.unwrap() else {
            return;
        };
        match msg {
            Repl::Write {
                id,
                reply_to,
                key,
                value,
                epoch,
            } => self.on_write(ctx, id, reply_to, key, value, epoch),
            Repl::Replicate { epoch, entry } => self.on_replicate(ctx, from, epoch, entry),
            Repl::Sync { epoch, log } => self.on_sync(ctx, from, epoch, log),
            Repl::SyncRequest { epoch } if self.is_primary(ctx) => {
                if self.config.fence_epoch && epoch > self.epoch() {
                    self.learn(epoch);
                    self.step_down(ctx, None);
                    return;
                }
                if self.recovering {
                    if !self.sync_waiters.contains(&from) {
                        self.sync_waiters.push(from);
                    }
                    return;
                }
                let log = self.disk.borrow().log.clone();
                let epoch = self.epoch();
                ctx.send(from, M::wrap(Repl::Sync { epoch, log }));
            }
            Repl::ReplAck { epoch, offset } if self.is_primary(ctx) && epoch == self.epoch() => {
                let now = ctx.local_clock();
                self.acks.insert(from, (offset, now));
                self.settle(ctx);
            }
            Repl::StoreAck { offset, epoch, .. } if Some(from) == self.store => {
                if self.is_primary(ctx)
                    && epoch == self.epoch()
                    && let Some(p) = self.pending.get_mut(&offset)
                {
                    p.stored = true;
                    self.settle(ctx);
                }
            }
            Repl::StoreLog { epoch, log }
                if Some(from) == self.store
                    && self.recovering
                    && self.is_primary(ctx)
                    && epoch == self.epoch() =>
            {
                self.recovered(ctx, log)
            }
            Repl::Fenced { .. } if Some(from) == self.store => {
                // The store was fenced by a newer epoch: stop acknowledging. Whom to follow
                // comes from the watchers; the node keeps its epoch so that they see its
                // configuration is old and reconfigure it (as for a returning old master).
                let m = self.m();
                ctx.metrics().inc(m.fenced);
                if self.is_primary(ctx) {
                    self.step_down(ctx, None);
                }
            }
            Repl::Fenced { epoch } if epoch > self.epoch() => {
                self.learn(epoch);
                self.step_down(ctx, None);
            }
            Repl::Ping { seq } => {
                let d = self.disk.borrow();
                let pong = Repl::Pong {
                    seq,
                    epoch: d.fence.seen(),
                    primary: d.primary == Some(ctx.me()),
                    offset: d.log.len() as u64,
                };
                drop(d);
                ctx.send(from, M::wrap(pong));
            }
            Repl::Prepare { epoch } => self.on_prepare(ctx, from, epoch),
            Repl::Promote { epoch } if epoch > self.epoch() && !self.promised_past(epoch) => {
                self.become_primary(ctx, epoch)
            }
            Repl::Follow { epoch, primary } => {
                if self.promised_past(epoch) {
                    // An older configuration than the election it promised: wait for that.
                    return;
                }
                if epoch < self.epoch() {
                    if self.config.fence_epoch {
                        self.fenced(ctx, from);
                    }
                    return;
                }
                if primary == ctx.me() {
                    if !self.is_primary(ctx) {
                        self.become_primary(ctx, epoch);
                    }
                    return;
                }
                let current = self.disk.borrow().primary;
                if current != Some(primary) || epoch > self.epoch() {
                    self.learn(epoch);
                    self.step_down(ctx, Some(primary));
                }
            }
            _ => {}
        }
    }

    fn on_crash(&mut self, _now: SimTime, metrics: &mut Metrics) {
        // A crash from outside (a fault): the process believes nothing any more.
        if let Some(me) = self.me {
            self.stopped(me, metrics);
        }
    }

    fn on_killed(&mut self, now: SimTime, metrics: &mut Metrics) {
        // Powered off by the switch (the only actor that kills a node), paused or not: it
        // never serves this log again without a full resync from the new primary, whenever it
        // comes back, so the oracle stops counting it as copies of its writes.
        self.on_crash(now, metrics);
        let old: Vec<Entry> = {
            let mut d = self.disk.borrow_mut();
            let len = d.log.len();
            let from = std::mem::replace(&mut d.held_from, len);
            d.log[from..].to_vec()
        };
        self.release(&old, metrics);
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, M>, msg: M) {
        let Some(Repl::Tick(t)) = msg.unwrap() else {
            return;
        };
        match t {
            ReplTick::Ship { offset, epoch } => self.ship(ctx, offset, epoch),
            ReplTick::QuorumTimeout { offset } => {
                if let Some(p) = self.pending.remove(&offset) {
                    let m = self.m();
                    ctx.metrics().inc(m.refused);
                    let result = WriteResult::Refused;
                    ctx.send(p.reply_to, M::wrap(Repl::WriteReply { id: p.id, result }));
                }
            }
            ReplTick::Next => {
                let primary = self.disk.borrow().primary;
                if !self.synced
                    && let Some(p) = primary
                    && p != ctx.me()
                {
                    // The resync asked for has not come (the request or the log was lost):
                    // ask again, as Redis's replication cron retries the handshake.
                    let epoch = self.epoch();
                    ctx.send(p, M::wrap(Repl::SyncRequest { epoch }));
                }
                self.ack_primary(ctx);
                ctx.set_timer(REPLICA_ACK_INTERVAL, M::wrap(Repl::Tick(ReplTick::Next)));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::rpc::from_ron;

    #[test]
    fn configs_parse_with_defaults_and_bad_ones_name_the_field() {
        let c: ReplNodeConfig = from_ron(r#"(peers: ["a", "b", "c"])"#).unwrap();
        assert_eq!(c.ack, Ack::Local);
        assert_eq!(c.min_replicas_to_write, 0);
        assert_eq!(c.min_replicas_max_lag, DEFAULT_MIN_REPLICAS_MAX_LAG);
        assert!(!c.fence_epoch);
        assert_eq!(c.fence_store, None);
        let e = from_ron::<ReplNodeConfig>(r#"(peers: ["a", "b"], min_replicas_to_write: 2)"#)
            .unwrap_err();
        assert!(e.to_string().contains("min_replicas_to_write"), "{e}");
        let e = from_ron::<ReplNodeConfig>(r#"(peers: [])"#).unwrap_err();
        assert!(e.to_string().contains("peers"), "{e}");
        let e = from_ron::<ReplNodeConfig>(r#"(peers: ["a"], quorum_timeout: "0s")"#).unwrap_err();
        assert!(e.to_string().contains("quorum_timeout"), "{e}");
    }
}
