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
//! - [`Sentinel`] (`sentinel.rs`): a watcher pinging every node; it marks the primary
//!   subjectively down after `down_after` (Sentinel's `down-after-milliseconds`, 30 s) without
//!   a reply, shares that opinion with the other watchers, and when `quorum` of them agree
//!   (objectively down) the lowest-named watcher that sees it — a deliberate simplification of
//!   Sentinel's Raft-like leader election among sentinels — promotes the replica with the
//!   largest replication offset, bumping the epoch, and announces the new primary to nodes,
//!   watchers and clients. With `stonith` it first asks a [`PowerSwitch`] to power the old
//!   primary off and promotes only once the switch confirms.
//! - [`PowerSwitch`] (`sentinel.rs`): STONITH. It stands for a PDU or IPMI controller on a
//!   separate management network: put it on a host no partition cuts off and it reaches the
//!   primary when the watchers cannot. It tells the node to power off, and the node obeys by
//!   crashing itself (`Ctx::crash_self`) when the order arrives — which is honest for a
//!   partition but not for a GC pause: a paused process in the simulator handles its backlog
//!   in order when it resumes, so writes that reached it before the order are still answered,
//!   whereas a real power cut would kill it mid-pause.
//! - [`ReplClient`] (`client.rs`): writes at a constant rate to the node it believes is
//!   primary, follows redirects and the watchers' announcements, and records every
//!   acknowledged write in the oracle.
//! - [`ReplLog`] (here): the oracle, shared instrumentation no actor reads back: every
//!   acknowledged write (key, value, epoch, node, true time), every write a node accepted as
//!   primary, and every write a node's log took from an epoch older than it had seen. After
//!   the run, [`ReplLog::outcome`] compares the acknowledged writes with the final primary's
//!   log: `acked_writes_lost_total`, and the time two nodes both accepted writes as primary.
//!
//! On heal the old primary learns the new epoch (from a watcher, or from a fenced refusal),
//! becomes a replica of the new primary and takes a full resync (Redis's full `SYNC`),
//! discarding its divergent writes: the ones it acknowledged are the lost writes.

mod client;
mod node;
mod sentinel;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use crate::actor::ActorId;
use crate::engine::time::{SimDuration, SimTime};
use crate::metrics::Metrics;

pub use client::{ReplClient, ReplClientConfig};
pub use node::{
    Ack, DEFAULT_MIN_REPLICAS_MAX_LAG, NodeDisk, REPLICA_ACK_INTERVAL, ReplNode, ReplNodeConfig,
};
pub use sentinel::{
    DEFAULT_DOWN_AFTER, DEFAULT_PING_INTERVAL, PowerSwitch, Sentinel, SentinelConfig,
};

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
    /// STONITH: a watcher asks the switch to power `node` off; the switch tells the node, and
    /// confirms to the watcher.
    PowerOffRequest {
        node: ActorId,
        epoch: Epoch,
    },
    PowerOff,
    PoweredOff {
        node: ActorId,
        epoch: Epoch,
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

/// What the oracle saw. Instrumentation only: nodes and clients write to it, nothing reads it
/// back during the run.
#[derive(Clone, Debug, Default)]
pub struct ReplLog {
    pub acked: Vec<AckedWrite>,
    /// Per (node, epoch) a node accepted writes as primary in: first and last true time.
    pub tenures: BTreeMap<(ActorId, Epoch), (SimTime, SimTime)>,
    /// Writes a node's log took whose epoch was older than the newest it had seen:
    /// (node, write epoch, newest seen, true time).
    pub stale_applied: Vec<(ActorId, Epoch, Epoch, SimTime)>,
}

/// The shared oracle.
pub type ReplWatch = Rc<RefCell<ReplLog>>;

/// The run's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub acked: u64,
    pub lost: u64,
    /// Total true time two different nodes both accepted writes as primary (sum over pairs of
    /// tenures of the overlap of their [first, last] accept intervals).
    pub overlap: SimDuration,
    pub stale_applied: u64,
}

impl ReplLog {
    pub fn shared() -> ReplWatch {
        Rc::new(RefCell::new(ReplLog::default()))
    }

    pub(crate) fn accepted(&mut self, node: ActorId, epoch: Epoch, now: SimTime) {
        let t = self.tenures.entry((node, epoch)).or_insert((now, now));
        t.1 = now;
    }

    /// Compares the acknowledged writes with `final_log` (the surviving primary's log): an
    /// acknowledged write whose value is not in it is lost.
    pub fn outcome(&self, final_log: &[Entry]) -> Outcome {
        let present: std::collections::BTreeSet<u64> = final_log.iter().map(|e| e.value).collect();
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
                if from <= to {
                    overlap = overlap.saturating_add(to.saturating_duration_since(from));
                    // Two single writes at one instant still overlap: count one nanosecond.
                    if from == to {
                        overlap = overlap.saturating_add(SimDuration::from_nanos(1));
                    }
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

    /// Writes the verdict as metrics owned by `oracle`: `acked_writes_total`,
    /// `acked_writes_lost_total`, `stale_epoch_applied_total` and the gauge
    /// `two_primaries_overlap_seconds`.
    pub fn record(&self, final_log: &[Entry], metrics: &mut Metrics) -> Outcome {
        let o = self.outcome(final_log);
        let c = metrics.counter("oracle", "acked_writes_total");
        metrics.add(c, o.acked);
        let c = metrics.counter("oracle", "acked_writes_lost_total");
        metrics.add(c, o.lost);
        let c = metrics.counter("oracle", "stale_epoch_applied_total");
        metrics.add(c, o.stale_applied);
        let g = metrics.gauge("oracle", "two_primaries_overlap_seconds");
        metrics.set(g, o.overlap.as_secs_f64());
        o
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
    fn the_oracle_counts_lost_writes_and_overlap() {
        let mut log = ReplLog::default();
        let (a, b) = (ActorId(0), ActorId(1));
        let t = SimTime::from_nanos;
        for (v, node, epoch, at) in [(1, a, 1, 10), (2, a, 1, 50), (3, b, 2, 30), (4, b, 2, 90)] {
            log.acked.push(AckedWrite {
                key: 0,
                value: v,
                epoch,
                node,
                at: t(at),
            });
            log.accepted(node, epoch, t(at));
        }
        let e = |value| Entry {
            offset: 0,
            key: 0,
            value,
            epoch: 2,
        };
        let o = log.outcome(&[e(1), e(3), e(4)]);
        assert_eq!(o.lost, 1);
        assert_eq!(o.acked, 4);
        // a: [10, 50], b: [30, 90]: 20 ns together.
        assert_eq!(o.overlap, SimDuration::from_nanos(20));
        log.tenures.clear();
        log.accepted(a, 1, t(10));
        log.accepted(b, 2, t(20));
        assert_eq!(log.outcome(&[]).overlap, SimDuration::ZERO);
    }
}
