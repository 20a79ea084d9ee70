//! The [`ReplClient`]: writes at a constant rate to the node it believes is primary.
//!
//! It starts believing the first of `nodes`. A redirect naming a primary of an epoch at least
//! as new as the one it knows moves it there and retries the write there (at most
//! `max_attempts` sends per write); a watcher's `Follow` announcement of a newer epoch moves it
//! too. It carries the newest epoch it knows in every write, which a node with `fence_epoch`
//! uses to notice it is stale. A write gets one answer or a timeout; every acknowledged write
//! goes to the oracle (key, value, epoch, node, true time) and to [`ReplClient::acked`].
//! Values are unique: the client's actor id in the high 32 bits, its sequence number in the
//! low.
//!
//! **Metrics** (owner = the client's name): `writes_total`, `acked_total`, `refused_total`,
//! `redirects_total`, `timeouts_total`.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use serde::{Deserialize, Serialize};

use super::{AckedWrite, Epoch, Repl, ReplTick, ReplWatch, WriteResult};
use crate::actor::{Actor, ActorId, Ctx, Durable};
use crate::engine::time::SimDuration;
use crate::metrics::CounterId;
use crate::model::Carry;
use crate::model::rpc::{ConfigError, Rate, Validate, check_unique_names, nonzero};

fn default_keys() -> u64 {
    100
}
fn default_timeout() -> SimDuration {
    SimDuration::from_secs(1)
}
fn default_max_attempts() -> u32 {
    3
}

/// A [`ReplClient`]'s config: `(nodes: ["db0", "db1", "db2"], rate: "20/s")`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplClientConfig {
    /// The store's nodes; the first is the primary it starts with.
    pub nodes: Vec<String>,
    pub rate: Rate,
    /// Keys written round robin; default 100.
    #[serde(default = "default_keys")]
    pub keys: u64,
    /// Default 1 s, an **assumption** (a typical client socket timeout order).
    #[serde(default = "default_timeout")]
    pub timeout: SimDuration,
    /// Sends per write, redirects included; default 3.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
}

impl ReplClientConfig {
    /// The actor names this config refers to, with their field paths.
    pub fn targets(&self) -> Vec<(String, &str)> {
        let nodes = self.nodes.iter().enumerate();
        nodes
            .map(|(i, p)| (format!("nodes[{i}]"), p.as_str()))
            .collect()
    }
}

impl Validate for ReplClientConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.nodes.is_empty() {
            return Err(ConfigError::Empty {
                field: "nodes".into(),
            });
        }
        check_unique_names(self.nodes.iter().map(String::as_str), |i| {
            format!("nodes[{i}]")
        })?;
        nonzero("keys", self.keys)?;
        nonzero("timeout", self.timeout.as_nanos())?;
        nonzero("max_attempts", u64::from(self.max_attempts))?;
        Ok(())
    }
}

#[derive(Clone, Copy, Debug)]
struct InFlight {
    key: u64,
    value: u64,
    attempts: u32,
}

#[derive(Clone, Copy)]
struct ClientMetrics {
    writes: CounterId,
    acked: CounterId,
    refused: CounterId,
    redirects: CounterId,
    timeouts: CounterId,
}

/// See the module docs.
#[derive(Clone)]
pub struct ReplClient<M> {
    config: ReplClientConfig,
    watch: Option<ReplWatch>,
    acked: Durable<Vec<AckedWrite>>,
    primary: Option<ActorId>,
    epoch: Epoch,
    in_flight: BTreeMap<u64, InFlight>,
    seq: u64,
    metrics: Option<ClientMetrics>,
    _m: PhantomData<M>,
}

impl<M> ReplClient<M> {
    pub fn new(config: ReplClientConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(ReplClient {
            config,
            watch: None,
            acked: Durable::new(Vec::new()),
            primary: None,
            epoch: 1,
            in_flight: BTreeMap::new(),
            seq: 0,
            metrics: None,
            _m: PhantomData,
        })
    }

    pub fn with_watch(mut self, watch: ReplWatch) -> Self {
        self.watch = Some(watch);
        self
    }

    /// The oracle it reports to, if any.
    pub fn watch(&self) -> Option<ReplWatch> {
        self.watch.clone()
    }

    pub fn config(&self) -> &ReplClientConfig {
        &self.config
    }

    /// The writes it was told are acknowledged (shared by clones).
    pub fn acked(&self) -> Durable<Vec<AckedWrite>> {
        self.acked.clone()
    }
}

impl<M: Carry<Repl>> ReplClient<M> {
    fn m(&self) -> ClientMetrics {
        self.metrics.expect("registered at start")
    }

    fn send(&mut self, ctx: &mut Ctx<'_, M>, id: u64) {
        let (Some(to), Some(f)) = (self.primary, self.in_flight.get_mut(&id)) else {
            return;
        };
        f.attempts += 1;
        let w = Repl::Write {
            id,
            reply_to: ctx.me(),
            key: f.key,
            value: f.value,
            epoch: self.epoch,
        };
        ctx.send(to, M::wrap(w));
    }

    fn next_gap(&self) -> SimDuration {
        SimDuration::from_nanos(self.config.rate.gap_nanos().round().max(1.0) as u64)
    }
}

impl<M: Carry<Repl>> Actor<M> for ReplClient<M> {
    fn on_start(&mut self, ctx: &mut Ctx<'_, M>) {
        let own = ctx.name().to_string();
        let first = &self.config.nodes[0];
        self.primary = Some(
            ctx.lookup(first)
                .unwrap_or_else(|| panic!("{own}: nodes[0]: no actor is called `{first}`")),
        );
        self.metrics = Some(ClientMetrics {
            writes: ctx.counter("writes_total"),
            acked: ctx.counter("acked_total"),
            refused: ctx.counter("refused_total"),
            redirects: ctx.counter("redirects_total"),
            timeouts: ctx.counter("timeouts_total"),
        });
        if let Some(w) = &self.watch {
            w.borrow_mut().join(ctx.metrics());
        }
        ctx.set_timer(self.next_gap(), M::wrap(Repl::Tick(ReplTick::Next)));
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, M>, from: ActorId, msg: M) {
        let Some(msg) = msg.unwrap() else {
            return;
        };
        let m = self.m();
        match msg {
            Repl::WriteReply { id, result } => {
                let Some(f) = self.in_flight.get(&id).copied() else {
                    return;
                };
                match result {
                    WriteResult::Ok { epoch } => {
                        self.in_flight.remove(&id);
                        ctx.metrics().inc(m.acked);
                        let a = AckedWrite {
                            key: f.key,
                            value: f.value,
                            epoch,
                            node: from,
                            at: ctx.now(),
                        };
                        self.acked.borrow_mut().push(a);
                        if let Some(w) = &self.watch {
                            w.borrow_mut().acked(a, ctx.metrics());
                        }
                    }
                    WriteResult::Redirect { primary, epoch } => {
                        ctx.metrics().inc(m.redirects);
                        if let Some(p) = primary
                            && epoch >= self.epoch
                            && p != from
                        {
                            self.epoch = epoch;
                            self.primary = Some(p);
                            if f.attempts < self.config.max_attempts {
                                self.send(ctx, id);
                                return;
                            }
                        }
                        self.in_flight.remove(&id);
                    }
                    WriteResult::Refused => {
                        ctx.metrics().inc(m.refused);
                        self.in_flight.remove(&id);
                    }
                }
            }
            Repl::Follow { epoch, primary } if epoch > self.epoch => {
                self.epoch = epoch;
                self.primary = Some(primary);
            }
            _ => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, M>, msg: M) {
        let Some(Repl::Tick(t)) = msg.unwrap() else {
            return;
        };
        let m = self.m();
        match t {
            ReplTick::Next => {
                self.seq += 1;
                let id = self.seq;
                let value = (u64::from(ctx.me().0) << 32) | (id & 0xffff_ffff);
                let key = id % self.config.keys;
                self.in_flight.insert(
                    id,
                    InFlight {
                        key,
                        value,
                        attempts: 0,
                    },
                );
                ctx.metrics().inc(m.writes);
                self.send(ctx, id);
                ctx.set_timer(
                    self.config.timeout,
                    M::wrap(Repl::Tick(ReplTick::Timeout { id })),
                );
                ctx.set_timer(self.next_gap(), M::wrap(Repl::Tick(ReplTick::Next)));
            }
            ReplTick::Timeout { id } if self.in_flight.remove(&id).is_some() => {
                ctx.metrics().inc(m.timeouts);
            }
            _ => {}
        }
    }
}
