//! The [`EpochStore`]: the fenced shared log behind the primary (see the module docs of
//! [`repl`](super)), what `fence_store` points the nodes and the watchers at.
//!
//! It stands for storage that records the highest epoch it has seen and refuses writes from an
//! older one — a shared disk under SCSI-3 persistent reservations, an epoch check in
//! ZooKeeper/etcd, a BookKeeper ledger fenced by its new writer. The promoting watcher fences
//! it with the new epoch (`StoreFence`) and promotes only once it confirms; a primary
//! acknowledges a write only after the store accepted it with the primary's epoch, so the old
//! primary's first write after the fence is refused and it steps down. Put it on a host no
//! partition cuts off (it is reachable from both sides, like the lock family's
//! `FencedStorage`).
//!
//! It is the system of record: every write it accepted stays in it, in order. A node promoted
//! with `fence_store` first reads it (`StoreRead`, BookKeeper's ledger recovery: the new
//! writer reads the fenced ledger to its end before it writes) and takes the store's log as its
//! own, refusing writes and holding resync requests until it has; so the new primary holds
//! every write the old one had acknowledged before the fence, and the old one, resynced from
//! it at the heal, keeps them. The oracle still counts only the nodes' logs: a write is safe
//! when a node that serves it holds it, not because the store has it somewhere.
//!
//! **Metrics** (owner = the store's name): `writes_total` (accepted), `refused_total` (from an
//! older epoch), `fences_total`, gauge `epoch`.

use std::marker::PhantomData;

use serde::{Deserialize, Serialize};

use super::{Entry, EpochFence, Repl};
use crate::actor::{Actor, ActorId, Ctx};
use crate::model::Carry;
use crate::model::rpc::{ConfigError, Validate};

fn yes() -> bool {
    true
}

/// An [`EpochStore`]'s config: `()` or `(fencing: false)`. It answers at once (its latency is
/// the network's).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpochStoreConfig {
    /// Refuse writes from an epoch older than the newest seen. Default true (what the systems
    /// it stands for do); false is a shared disk without reservations: it takes every write.
    #[serde(default = "yes")]
    pub fencing: bool,
}

impl Default for EpochStoreConfig {
    fn default() -> Self {
        EpochStoreConfig { fencing: true }
    }
}

impl Validate for EpochStoreConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }
}

/// See the module docs.
#[derive(Clone)]
pub struct EpochStore<M> {
    config: EpochStoreConfig,
    fence: EpochFence,
    log: Vec<(ActorId, Entry)>,
    _m: PhantomData<M>,
}

impl<M> Default for EpochStore<M> {
    fn default() -> Self {
        EpochStore::new()
    }
}

impl<M> EpochStore<M> {
    /// A fencing store.
    pub fn new() -> Self {
        EpochStore::with_config(EpochStoreConfig::default())
    }

    pub fn with_config(config: EpochStoreConfig) -> Self {
        EpochStore {
            config,
            fence: EpochFence::default(),
            log: Vec::new(),
            _m: PhantomData,
        }
    }

    /// The writes it accepted, with the node that wrote each, in order.
    pub fn log(&self) -> &[(ActorId, Entry)] {
        &self.log
    }

    /// The newest epoch it has seen.
    pub fn epoch(&self) -> u64 {
        self.fence.seen()
    }
}

impl<M: Carry<Repl>> Actor<M> for EpochStore<M> {
    fn on_start(&mut self, ctx: &mut Ctx<'_, M>) {
        ctx.counter("writes_total");
        ctx.counter("refused_total");
        ctx.counter("fences_total");
        let g = ctx.gauge("epoch");
        ctx.metrics().set(g, self.fence.seen() as f64);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, M>, from: ActorId, msg: M) {
        match msg.unwrap() {
            Some(Repl::StoreWrite { epoch, entry }) => {
                if self.fence.admit(epoch) || !self.config.fencing {
                    let c = ctx.counter("writes_total");
                    ctx.metrics().inc(c);
                    self.log.push((from, entry));
                    let r = Repl::StoreAck {
                        offset: entry.offset,
                        value: entry.value,
                        epoch,
                    };
                    ctx.send(from, M::wrap(r));
                } else {
                    let c = ctx.counter("refused_total");
                    ctx.metrics().inc(c);
                    let epoch = self.fence.seen();
                    ctx.send(from, M::wrap(Repl::Fenced { epoch }));
                }
            }
            Some(Repl::StoreRead { .. }) => {
                let log = self.log.iter().map(|(_, e)| *e).collect();
                let epoch = self.fence.seen();
                ctx.send(from, M::wrap(Repl::StoreLog { epoch, log }));
            }
            Some(Repl::StoreFence { epoch }) if self.fence.admit(epoch) => {
                let c = ctx.counter("fences_total");
                ctx.metrics().inc(c);
                let g = ctx.gauge("epoch");
                ctx.metrics().set(g, epoch as f64);
                ctx.send(from, M::wrap(Repl::StoreFenced { epoch }));
            }
            _ => {}
        }
    }
}
