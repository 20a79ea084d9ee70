//! A replicated store with failover (catalogue L1, split brain): one primary, replicas fed
//! asynchronously (a replication lag drawn from a distribution) or waited for (majority or
//! all), a Sentinel-like failover manager, and clients that write to whoever they believe is
//! the primary.
//!
//! - [`ReplNode`] (`node.rs`): a primary or a replica. Each node knows its epoch (bumped at
//!   every promotion) and every write carries the epoch of the primary that accepted it. The
//!   primary acknowledges a write after its own append (`ack: Local`, Redis's default), or once
//!   a majority of nodes / all of them have it. `min_replicas_to_write` (Redis
//!   `min-replicas-to-write`, with `min-replicas-max-lag`, 10 s) makes it refuse writes when
//!   fewer replicas acknowledged the stream within the lag bound. `fence_epoch` makes every
//!   node's log the fenced storage: it refuses writes and replication from an epoch older than
//!   the newest it has seen (the check of [`FencedStore`](super::FencedStore), keyed by the
//!   whole log instead of a lock key), and a primary told of a newer epoch steps down.
//!   That check alone cannot stop an isolated primary, which has seen no newer epoch;
//!   `fence_store` puts a fenced shared store in its data path instead.
//! - [`EpochStore`] (`store.rs`): that store, the system of record: the primary acknowledges
//!   only after the store accepted the write with its epoch; the promoting watcher fences the
//!   store with the new epoch first, and the new primary starts from the store's log (ledger
//!   recovery), so the old primary's next write is refused and nothing it acknowledged before
//!   the fence is lost.
//! - [`Sentinel`] (`sentinel.rs`): a watcher pinging every node; it marks the primary
//!   subjectively down after `down_after` (Sentinel's `down-after-milliseconds`, 30 s) without
//!   a reply, shares that opinion with the other watchers, and when `quorum` of them agree
//!   (objectively down) the lowest-named watcher that sees it — a deliberate simplification of
//!   Sentinel's Raft-like leader election among sentinels — promotes the replica with the
//!   largest replication offset, bumping the epoch, and announces the new primary to nodes,
//!   watchers and clients. With `promotion: Majority` the failover is an election instead:
//!   a majority of the nodes promise the new epoch (and stop taking the old primary's
//!   stream) and the most up to date of them is promoted, which with majority acks loses no
//!   acknowledged write under any schedule (Sentinel's own rule can: Redis's `WAIT` docs say
//!   as much). With `stonith` it first asks a [`PowerSwitch`] to power the old
//!   primary off and promotes only once the switch confirms.
//! - [`PowerSwitch`] (`sentinel.rs`): STONITH. It stands for a PDU or IPMI controller on a
//!   separate management network: put it on a host no partition cuts off and it reaches the
//!   primary when the watchers cannot. It cuts the node's power with `Ctx::kill`, which acts
//!   at once even on a paused process (its backlog is never handled), as a real power cut
//!   does.
//! - [`ReplClient`] (`client.rs`): writes at a constant rate to the node it believes is
//!   primary, follows redirects and the watchers' announcements, and records every
//!   acknowledged write in the oracle.
//! - [`ReplLog`] (here): the oracle, shared instrumentation no actor reads back: every
//!   acknowledged write, every tenure of a node acknowledging writes as primary, every entry a
//!   log took from an epoch older than it had seen. It keeps its verdict as metrics owned by
//!   `oracle` while the run goes (`acked_writes_lost_total` counts an acknowledged write the
//!   moment a resync throws it away; `primaries`, `two_primaries_overlap_seconds`,
//!   `stale_epoch_applied_total`), so a scenario's checks and charts read them;
//!   [`ReplLog::outcome`] recomputes the same after the fact from a final log, as a
//!   cross-check.
//!
//! A replica that follows a new primary (or finds a gap or a divergence in the stream) asks
//! for a full resync and takes nothing from the stream until it has it, asking again every
//! second: every replica's log stays a prefix of its primary's, the property the election's
//! "most up to date" comparison rests on.
//!
//! On heal the old primary learns the new epoch (from a watcher, or from a fenced refusal),
//! becomes a replica of the new primary and takes a full resync (Redis's full `SYNC`),
//! discarding its divergent writes: the ones it acknowledged are the lost writes.

mod client;
mod node;
mod sentinel;
mod store;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use crate::actor::ActorId;
use crate::engine::time::{SimDuration, SimTime};
use crate::metrics::{CounterId, GaugeId, Metrics};

pub use client::{ReplClient, ReplClientConfig};
pub use node::{
    Ack, DEFAULT_MIN_REPLICAS_MAX_LAG, NodeDisk, REPLICA_ACK_INTERVAL, ReplNode, ReplNodeConfig,
};
pub use sentinel::{
    DEFAULT_DOWN_AFTER, DEFAULT_PING_INTERVAL, DEFAULT_POWER_WAIT, PowerSwitch, PowerSwitchConfig,
    Promotion, Sentinel, SentinelConfig,
};
pub use store::{EpochStore, EpochStoreConfig};

/// A promotion count: the epoch of the primary that accepted a write.
pub type Epoch = u64;

/// One write in a node's log: position (1-based replication offset), key, unique value, and the
/// epoch of the primary that accepted it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub offset: u64,
    pub key: u64,
    pub value: u64,
    pub epoch: Epoch,
}

/// The answer to a client's write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteResult {
    /// Acknowledged by `node` as primary of `epoch`.
    Ok { epoch: Epoch },
    /// Not the primary; `primary` is who it follows, if it knows.
    Redirect {
        primary: Option<ActorId>,
        epoch: Epoch,
    },
    /// Refused: too few replicas (min-replicas-to-write), no quorum reached in time, or a
    /// newer epoch seen (the client's token or a fenced refusal).
    Refused,
}

/// The messages of the family.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Repl {
    /// A client's write; `epoch` is the newest epoch the client has heard of (its fence).
    Write {
        id: u64,
        reply_to: ActorId,
        key: u64,
        value: u64,
        epoch: Epoch,
    },
    WriteReply {
        id: u64,
        result: WriteResult,
    },
    /// The replication stream: one entry of `epoch`'s primary.
    Replicate {
        epoch: Epoch,
        entry: Entry,
    },
    /// A full resync: the primary's whole log.
    Sync {
        epoch: Epoch,
        log: Vec<Entry>,
    },
    /// A replica's acknowledgement of everything up to `offset`.
    ReplAck {
        epoch: Epoch,
        offset: u64,
    },
    /// A replica refusing replication from an older epoch: `epoch` is the newest it saw.
    Fenced {
        epoch: Epoch,
    },
    /// A replica asking its primary for a full resync (after a gap or a new primary).
    SyncRequest {
        epoch: Epoch,
    },
    /// A watcher's health check, and the answer (Sentinel's PING and INFO).
    Ping {
        seq: u64,
    },
    Pong {
        seq: u64,
        epoch: Epoch,
        primary: bool,
        offset: u64,
    },
    /// Watcher to watcher: "I think `primary` (of `epoch`) is down / up".
    Opinion {
        epoch: Epoch,
        primary: ActorId,
        down: bool,
    },
    /// A watcher's election for `epoch` (with `promotion: Majority`): "promise me `epoch`".
    /// A node that promises takes nothing more from an older epoch's primary (and a primary
    /// that promises steps down), and answers with where its log ends, as a Raft vote
    /// request's answer carries the voter's log position.
    Prepare {
        epoch: Epoch,
    },
    Promise {
        epoch: Epoch,
        /// The epoch of the last entry in its log (0 if empty), and the log's length.
        last_epoch: Epoch,
        offset: u64,
    },
    /// Become primary of `epoch`.
    Promote {
        epoch: Epoch,
    },
    /// Follow `primary`, primary of `epoch` (Sentinel's `REPLICAOF`, and its announcement to
    /// watchers and clients).
    Follow {
        epoch: Epoch,
        primary: ActorId,
    },
    /// STONITH: a watcher asks the switch to power `node` off; the switch cuts it
    /// (`Ctx::kill`) and confirms to the watcher.
    PowerOffRequest {
        node: ActorId,
        epoch: Epoch,
    },
    PoweredOff {
        node: ActorId,
        epoch: Epoch,
    },
    /// A primary of `epoch` writing `entry` to the fenced store; the store answers `StoreAck`
    /// or, for an epoch older than it has seen, `Fenced`.
    StoreWrite {
        epoch: Epoch,
        entry: Entry,
    },
    StoreAck {
        offset: u64,
        value: u64,
        epoch: Epoch,
    },
    /// A watcher fencing the store with the epoch it is about to promote; the store confirms.
    StoreFence {
        epoch: Epoch,
    },
    StoreFenced {
        epoch: Epoch,
    },
    /// A new primary of `epoch` reading the store's log (ledger recovery), and the answer:
    /// every write the store accepted, in order.
    StoreRead {
        epoch: Epoch,
    },
    StoreLog {
        epoch: Epoch,
        log: Vec<Entry>,
    },
    /// Timer payloads.
    Tick(ReplTick),
}

/// The family's timer payloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplTick {
    /// Node: ship entry `offset` to the replicas now (after its replication lag).
    Ship {
        offset: u64,
        epoch: Epoch,
    },
    /// Node: the quorum wait for write `offset` timed out.
    QuorumTimeout {
        offset: u64,
    },
    /// Watcher: ping round.
    Ping,
    /// Client: next write due; a write's timeout.
    Next,
    Timeout {
        id: u64,
    },
    /// Power switch: the power-off of `node` is done; confirm it to `watcher`.
    Confirm {
        watcher: ActorId,
        node: ActorId,
        epoch: Epoch,
    },
}

/// The epoch fence, a pure core: the newest epoch seen; `admit` says whether something of
/// `epoch` may be taken (not older than the newest seen) and remembers it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EpochFence {
    seen: Epoch,
}

impl EpochFence {
    pub fn seen(&self) -> Epoch {
        self.seen
    }

    /// Records `epoch` and answers whether it is current (>= every epoch seen before).
    pub fn admit(&mut self, epoch: Epoch) -> bool {
        if epoch < self.seen {
            return false;
        }
        self.seen = epoch;
        true
    }
}

/// A write a client was told is acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AckedWrite {
    pub key: u64,
    pub value: u64,
    pub epoch: Epoch,
    pub node: ActorId,
    pub at: SimTime,
}

/// Where the oracle writes its verdict: metrics owned by [`ORACLE`].
pub const ORACLE: &str = "oracle";

#[derive(Clone, Copy, Debug)]
struct OracleMetrics {
    acked: CounterId,
    lost: CounterId,
    stale: CounterId,
    fenced: CounterId,
    primaries: GaugeId,
    overlap: GaugeId,
}

/// What the oracle saw, and the verdict it keeps up to date as the run goes. Instrumentation
/// only: nodes and clients write to it and nothing reads it back to decide what to do.
///
/// Its metrics, owned by [`ORACLE`] (`oracle.*`), move at the moment something happens, so
/// they chart over time and a scenario's checks judge them like any other metric:
///
/// - `acked_writes_total`: writes a client was told are acknowledged.
/// - `acked_writes_lost_total`: acknowledged writes no node's log holds any more. The oracle
///   counts, per value, the logs holding it (a crashed node's disk still does, a node powered
///   off by STONITH no longer: it only comes back through a full resync); a full resync
///   replaces a node's log with its new primary's, and a value whose last copy it threw away
///   is gone (values are unique; a client sends one again only after a redirect, when the node
///   that redirected had not acknowledged it). It is counted when the second of the two facts
///   arrives — the last copy's discard, or the client's acknowledgement, which may still be on
///   the wire — and once per value.
/// - `stale_epoch_applied_total`: entries a node's log took from a stream older than the
///   newest epoch that node had seen (what `fence_epoch` forbids); `fenced_total`: things the
///   nodes refused for their epoch.
/// - gauge `primaries`: nodes, up, that believe they are the primary.
/// - gauge `two_primaries_overlap_seconds`: the total true time two different nodes both
///   acknowledged writes as primary. Per (node, epoch) the oracle keeps the first and last
///   acknowledgement; each acknowledgement that extends a tenure adds the part of the extension
///   that other nodes' tenures cover, so the gauge only grows, and at the end it is the sum over
///   pairs of the overlap of their intervals ([`ReplLog::outcome`] computes the same after the
///   fact).
///
/// One store per simulation: the metric names do not say which store they are about.
#[derive(Clone, Debug, Default)]
pub struct ReplLog {
    pub acked: Vec<AckedWrite>,
    /// Per (node, epoch) a node acknowledged writes as primary in: first and last true time.
    pub tenures: BTreeMap<(ActorId, Epoch), (SimTime, SimTime)>,
    /// Writes a node's log took whose epoch was older than the newest it had seen:
    /// (node, write epoch, newest seen, true time).
    pub stale_applied: Vec<(ActorId, Epoch, Epoch, SimTime)>,
    acked_values: BTreeSet<u64>,
    /// Per value ever appended, how many logs hold it now.
    copies: BTreeMap<u64, u32>,
    lost: BTreeSet<u64>,
    believers: BTreeSet<ActorId>,
    overlap: SimDuration,
    metrics: Option<OracleMetrics>,
}

/// The shared oracle.
pub type ReplWatch = Rc<RefCell<ReplLog>>;

/// The run's verdict, computed after the fact from the acknowledged writes and a final log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub acked: u64,
    pub lost: u64,
    /// Total true time two different nodes both acknowledged writes as primary (sum over pairs
    /// of tenures of the overlap of their [first, last] intervals).
    pub overlap: SimDuration,
    pub stale_applied: u64,
}

impl ReplLog {
    pub fn shared() -> ReplWatch {
        Rc::new(RefCell::new(ReplLog::default()))
    }

    /// Registers the oracle's metrics (every node and client does at its start; the first
    /// registers, the others find them).
    pub(crate) fn join(&mut self, metrics: &mut Metrics) {
        if self.metrics.is_some() {
            return;
        }
        self.metrics = Some(OracleMetrics {
            acked: metrics.counter(ORACLE, "acked_writes_total"),
            lost: metrics.counter(ORACLE, "acked_writes_lost_total"),
            stale: metrics.counter(ORACLE, "stale_epoch_applied_total"),
            fenced: metrics.counter(ORACLE, "fenced_total"),
            primaries: metrics.gauge(ORACLE, "primaries"),
            overlap: metrics.gauge(ORACLE, "two_primaries_overlap_seconds"),
        });
    }

    fn m(&self) -> OracleMetrics {
        self.metrics.expect("joined at start")
    }

    /// The acknowledged writes lost so far, the in-run verdict.
    pub fn lost(&self) -> u64 {
        self.lost.len() as u64
    }

    /// The two-primaries overlap so far.
    pub fn overlap(&self) -> SimDuration {
        self.overlap
    }

    /// A client was told `a` is acknowledged.
    pub(crate) fn acked(&mut self, a: AckedWrite, metrics: &mut Metrics) {
        let m = self.m();
        self.acked.push(a);
        self.acked_values.insert(a.value);
        metrics.inc(m.acked);
        if self.copies.get(&a.value) == Some(&0) && self.lost.insert(a.value) {
            metrics.inc(m.lost);
        }
    }

    /// A log took `value`.
    pub(crate) fn hold(&mut self, value: u64) {
        *self.copies.entry(value).or_insert(0) += 1;
    }

    /// A log threw `values` away (a resync, after the new log was held).
    pub(crate) fn release(&mut self, values: &[u64], metrics: &mut Metrics) {
        let m = self.m();
        for &v in values {
            let Some(c) = self.copies.get_mut(&v) else {
                continue;
            };
            *c = c.saturating_sub(1);
            if *c == 0 && self.acked_values.contains(&v) && self.lost.insert(v) {
                metrics.inc(m.lost);
            }
        }
    }

    pub(crate) fn stale(&mut self, entry: (ActorId, Epoch, Epoch, SimTime), metrics: &mut Metrics) {
        let m = self.m();
        self.stale_applied.push(entry);
        metrics.inc(m.stale);
    }

    pub(crate) fn fenced(&mut self, metrics: &mut Metrics) {
        let m = self.m();
        metrics.inc(m.fenced);
    }

    /// Whether `node` (up) believes it is the primary.
    pub(crate) fn believes(&mut self, node: ActorId, primary: bool, metrics: &mut Metrics) {
        let m = self.m();
        if primary {
            self.believers.insert(node);
        } else {
            self.believers.remove(&node);
        }
        metrics.set(m.primaries, self.believers.len() as f64);
    }

    /// `node` acknowledged a write as primary of `epoch` at `now`.
    pub(crate) fn acknowledged(
        &mut self,
        node: ActorId,
        epoch: Epoch,
        now: SimTime,
        metrics: &mut Metrics,
    ) {
        let t = self.tenures.entry((node, epoch)).or_insert((now, now));
        let from = t.1;
        t.1 = now;
        let mut added = SimDuration::ZERO;
        for (&(other, _), &(f, l)) in &self.tenures {
            if other == node {
                continue;
            }
            let (a, b) = (from.max(f), now.min(l));
            if a < b {
                added = added.saturating_add(b.saturating_duration_since(a));
            }
        }
        if added > SimDuration::ZERO {
            self.overlap = self.overlap.saturating_add(added);
            if let Some(m) = self.metrics {
                metrics.set(m.overlap, self.overlap.as_secs_f64());
            }
        }
    }

    /// Compares the acknowledged writes with `final_log` (the surviving primary's log): an
    /// acknowledged write whose value is not in it is lost. The after-the-fact cross-check of
    /// the in-run metrics.
    pub fn outcome(&self, final_log: &[Entry]) -> Outcome {
        let present: BTreeSet<u64> = final_log.iter().map(|e| e.value).collect();
        let lost = self
            .acked
            .iter()
            .filter(|a| !present.contains(&a.value))
            .count() as u64;
        let tenures: Vec<_> = self.tenures.iter().collect();
        let mut overlap = SimDuration::ZERO;
        for (i, ((na, _), (fa, la))) in tenures.iter().enumerate() {
            for ((nb, _), (fb, lb)) in &tenures[i + 1..] {
                if na == nb {
                    continue;
                }
                let from = (*fa).max(*fb);
                let to = (*la).min(*lb);
                if from < to {
                    overlap = overlap.saturating_add(to.saturating_duration_since(from));
                }
            }
        }
        Outcome {
            acked: self.acked.len() as u64,
            lost,
            overlap,
            stale_applied: self.stale_applied.len() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fence_refuses_only_older_epochs() {
        let mut f = EpochFence::default();
        assert!(f.admit(1));
        assert!(f.admit(3));
        assert!(f.admit(3));
        assert!(!f.admit(2));
        assert_eq!(f.seen(), 3);
    }

    #[test]
    fn the_oracle_counts_lost_writes_and_overlap_as_they_happen() {
        let mut metrics = Metrics::new(None);
        let mut log = ReplLog::default();
        log.join(&mut metrics);
        let (a, b) = (ActorId(0), ActorId(1));
        let t = SimTime::from_nanos;
        let ack = |value, node, epoch, at| AckedWrite {
            key: 0,
            value,
            epoch,
            node,
            at: t(at),
        };
        for (v, node, epoch, at) in [(1, a, 1, 10), (3, b, 2, 30), (2, a, 1, 50), (4, b, 2, 90)] {
            metrics.advance_to(t(at));
            log.acknowledged(node, epoch, t(at), &mut metrics);
            if v == 1 || v == 4 {
                log.acked(ack(v, node, epoch, at), &mut metrics);
            }
        }
        // a: [10, 50], b: [30, 90]: 20 ns together, known once b's write at 90 came.
        assert_eq!(log.overlap(), SimDuration::from_nanos(20));
        for v in 1..=5 {
            log.hold(v);
        }
        // 2 is discarded before its acknowledgement arrives, 1 after; 5 was never acknowledged.
        log.release(&[1, 2, 5], &mut metrics);
        assert_eq!(log.lost(), 1);
        log.acked(ack(2, a, 1, 95), &mut metrics);
        assert_eq!(log.lost(), 2);
        // 3 is discarded where it was, then taken again (a retry after a redirect), then
        // acknowledged: alive. 4 has a second copy.
        log.release(&[3], &mut metrics);
        log.hold(3);
        log.acked(ack(3, b, 2, 96), &mut metrics);
        log.hold(4);
        log.release(&[4], &mut metrics);
        log.release(&[1], &mut metrics);
        assert_eq!(log.lost(), 2, "each value counts once");
        assert_eq!(
            metrics.counter_value("oracle.acked_writes_lost_total"),
            Some(2)
        );
        assert_eq!(metrics.counter_value("oracle.acked_writes_total"), Some(4));
        let e = |value| Entry {
            offset: 0,
            key: 0,
            value,
            epoch: 2,
        };
        let o = log.outcome(&[e(3), e(4)]);
        assert_eq!((o.acked, o.lost), (4, 2));
        assert_eq!(
            o.overlap,
            log.overlap(),
            "the in-run overlap is the pairwise one"
        );
        log.tenures.clear();
        log.acknowledged(a, 1, t(10), &mut metrics);
        log.acknowledged(b, 2, t(20), &mut metrics);
        assert_eq!(log.outcome(&[]).overlap, SimDuration::ZERO);
    }

    #[test]
    fn the_primaries_gauge_counts_believers() {
        let mut metrics = Metrics::new(None);
        let mut log = ReplLog::default();
        log.join(&mut metrics);
        log.believes(ActorId(0), true, &mut metrics);
        log.believes(ActorId(1), true, &mut metrics);
        log.believes(ActorId(1), true, &mut metrics);
        assert_eq!(metrics.gauge_value("oracle.primaries"), Some(2.0));
        log.believes(ActorId(0), false, &mut metrics);
        assert_eq!(metrics.gauge_value("oracle.primaries"), Some(1.0));
    }
}
