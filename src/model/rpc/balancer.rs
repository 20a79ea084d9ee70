//! A load balancer: forwards each request to one backend chosen by a policy, and relays the
//! response to the original caller.
//!
//! It keeps its own request ids (a BTreeMap from its id to the original id and caller), so
//! callers' ids never collide at a backend. The outstanding count per backend, which
//! LeastOutstanding and PowerOfTwoChoices read, drops when the response comes back or, for a
//! request with a deadline, when the deadline passes (the caller has given up; without this a
//! lost response would count against its backend for ever).

use std::collections::BTreeMap;
use std::marker::PhantomData;

use rand::RngExt;
use serde::{Deserialize, Serialize};

use super::{ConfigError, Request, Rpc, Tick, Validate, resolve};
use crate::actor::{Actor, ActorId, Ctx};
use crate::metrics::CounterId;
use crate::model::Carry;

/// How a backend is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Policy {
    /// Each backend in turn.
    RoundRobin,
    /// Uniformly at random (the balancer's own stream).
    Random,
    /// The backend with the fewest outstanding requests; ties go round robin.
    LeastOutstanding,
    /// Two distinct backends at random; the one with fewer outstanding (the first drawn on a
    /// tie). Mitzenmacher's "power of two choices".
    PowerOfTwoChoices,
}

/// A [`LoadBalancer`]'s config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadBalancerConfig {
    /// Backend actor names.
    pub backends: Vec<String>,
    pub policy: Policy,
}

impl LoadBalancerConfig {
    /// The actor names this config refers to, with their field paths.
    pub fn targets(&self) -> Vec<(String, &str)> {
        let named = self.backends.iter().enumerate();
        named
            .map(|(i, b)| (format!("backends[{i}]"), b.as_str()))
            .collect()
    }
}

impl Validate for LoadBalancerConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.backends.is_empty() {
            return Err(ConfigError::Empty {
                field: "backends".into(),
            });
        }
        Ok(())
    }
}

/// A forwarded request.
#[derive(Clone, Copy, Debug)]
struct Forwarded {
    id: u64,
    reply_to: ActorId,
    backend: u32,
}

/// A load balancer.
///
/// Metrics (owner = its name): `forwarded_total`, `forwarded_total.<backend name>`, and
/// `expired_total` (forwarded requests forgotten at their deadline).
#[derive(Clone)]
pub struct LoadBalancer<M> {
    config: LoadBalancerConfig,
    backends: Vec<ActorId>,
    outstanding: Vec<u32>,
    forwarded: BTreeMap<u64, Forwarded>,
    next_id: u64,
    cursor: usize,
    counters: Vec<CounterId>,
    total: Option<(CounterId, CounterId)>,
    _m: PhantomData<M>,
}

impl<M> LoadBalancer<M> {
    /// Validates `config`.
    pub fn new(config: LoadBalancerConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(LoadBalancer {
            outstanding: vec![0; config.backends.len()],
            config,
            backends: Vec::new(),
            forwarded: BTreeMap::new(),
            next_id: 0,
            cursor: 0,
            counters: Vec::new(),
            total: None,
            _m: PhantomData,
        })
    }

    /// Outstanding requests per backend, in config order.
    pub fn outstanding(&self) -> &[u32] {
        &self.outstanding
    }
}

impl<M: Carry<Rpc>> LoadBalancer<M> {
    fn pick(&mut self, ctx: &mut Ctx<'_, M>) -> usize {
        let n = self.backends.len();
        debug_assert!(n > 0);
        match self.config.policy {
            Policy::RoundRobin => {
                let b = self.cursor % n;
                self.cursor = (b + 1) % n;
                b
            }
            Policy::Random => ctx.rng().random_range(0..n),
            Policy::LeastOutstanding => {
                let start = self.cursor % n;
                let b = (0..n)
                    .map(|k| (start + k) % n)
                    .min_by_key(|&b| self.outstanding[b])
                    .expect("at least one backend");
                self.cursor = (b + 1) % n;
                b
            }
            Policy::PowerOfTwoChoices => {
                if n == 1 {
                    return 0;
                }
                let a = ctx.rng().random_range(0..n);
                let mut b = ctx.rng().random_range(0..n - 1);
                if b >= a {
                    b += 1;
                }
                debug_assert_ne!(a, b);
                if self.outstanding[b] < self.outstanding[a] {
                    b
                } else {
                    a
                }
            }
        }
    }

    fn forward(&mut self, ctx: &mut Ctx<'_, M>, req: Request) {
        let b = self.pick(ctx);
        let id = self.next_id;
        self.next_id += 1;
        self.outstanding[b] += 1;
        let entry = Forwarded {
            id: req.id,
            reply_to: req.reply_to,
            backend: b as u32,
        };
        self.forwarded.insert(id, entry);
        if let Some(deadline) = req.deadline {
            ctx.set_timer_at(deadline, M::wrap(Rpc::Tick(Tick::Expire(id))));
        }
        let (total, _) = self.total.expect("registered at start");
        ctx.metrics().inc(total);
        ctx.metrics().inc(self.counters[b]);
        let out = Request {
            id,
            reply_to: ctx.me(),
            ..req
        };
        ctx.send(self.backends[b], M::wrap(Rpc::Request(out)));
    }

    fn forget(&mut self, id: u64) -> Option<Forwarded> {
        let f = self.forwarded.remove(&id)?;
        let count = &mut self.outstanding[f.backend as usize];
        debug_assert!(*count > 0, "an outstanding request is counted");
        *count -= 1;
        Some(f)
    }
}

impl<M: Carry<Rpc>> Actor<M> for LoadBalancer<M> {
    fn on_start(&mut self, ctx: &mut Ctx<'_, M>) {
        let names = self.config.backends.clone();
        self.backends = names
            .iter()
            .enumerate()
            .map(|(i, name)| resolve(ctx, &format!("backends[{i}]"), name))
            .collect();
        self.counters = names
            .iter()
            .map(|name| ctx.counter(&format!("forwarded_total.{name}")))
            .collect();
        self.total = Some((ctx.counter("forwarded_total"), ctx.counter("expired_total")));
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, M>, _from: ActorId, msg: M) {
        match msg.unwrap() {
            Some(Rpc::Request(req)) => self.forward(ctx, req),
            Some(Rpc::Response(r)) => {
                // Unknown: the deadline passed first and the caller has given up.
                if let Some(f) = self.forget(r.id) {
                    let out = super::Response { id: f.id, ..r };
                    ctx.send(f.reply_to, M::wrap(Rpc::Response(out)));
                }
            }
            _ => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, M>, msg: M) {
        if let Some(Rpc::Tick(Tick::Expire(id))) = msg.unwrap()
            && self.forget(id).is_some()
        {
            let (_, expired) = self.total.expect("registered at start");
            ctx.metrics().inc(expired);
        }
    }
}
