//! The workload generator: open-loop arrivals (Poisson, constant, or a Poisson rate schedule for
//! spikes) or a closed loop of users who think between requests; a weighted mix of request
//! kinds; a per-request timeout after which the response, if it ever comes, is ignored.
//!
//! Open and closed loops are both here because they fail differently: an open loop keeps
//! sending into an overloaded system (the queue, and every latency, grows without bound), a
//! closed loop slows down with it (throughput drops, latency stays bounded by the users).

use std::collections::BTreeMap;
use std::marker::PhantomData;

use rand::RngExt;
use serde::{Deserialize, Serialize};

use super::{
    ConfigError, KindRef, Rate, Request, Rpc, Status, Tick, Validate, check_kind_name,
    check_unique_names, compile, nonzero, resolve,
};
use crate::actor::{Actor, ActorId, Ctx, TimerId};
use crate::dist::{Dist, Sampler, Scalar};
use crate::engine::time::{SimDuration, SimTime};
use crate::metrics::{CounterId, HistogramId};
use crate::model::Carry;

/// How requests arrive.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Arrivals {
    /// Exponential gaps at the rate: `Poisson("200/s")`.
    Poisson(Rate),
    /// Evenly spaced at the rate: `Constant("200/s")`.
    Constant(Rate),
    /// Poisson, with the rate changing at the given times (from the start of the run):
    /// `Schedule([("0s", "100/s"), ("60s", "1000/s"), ("120s", "100/s")])`. Nothing is sent
    /// before the first step.
    Schedule(Vec<(SimTime, Rate)>),
    /// `users` users, each sending one request, waiting for its outcome (response or timeout),
    /// thinking for a draw of `think`, and sending again.
    Closed { users: u32, think: Dist },
}

/// One entry of the request mix.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mix {
    /// Used in metric names (`ok_total.checkout`).
    pub name: String,
    /// The request kind sent: an index into the callee's table, or the kind's name (resolved
    /// against the callee's kinds before the client is built; see [`KindRef`]).
    pub kind: KindRef,
    /// Relative weight, > 0.
    pub weight: f64,
}

/// A [`Client`]'s config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// The actor requests go to.
    pub target: String,
    pub arrivals: Arrivals,
    /// The request mix; empty means kind 0 only.
    #[serde(default)]
    pub mix: Vec<Mix>,
    /// Give up on a request after this long; None waits forever.
    #[serde(default)]
    pub timeout: Option<SimDuration>,
    /// Send at most this many requests.
    #[serde(default)]
    pub limit: Option<u64>,
}

impl ClientConfig {
    /// The actor names this config refers to, with their field paths.
    pub fn targets(&self) -> Vec<(String, &str)> {
        vec![("target".to_string(), self.target.as_str())]
    }

    /// Every request-kind reference in the config, with its field path and the actor it is a
    /// kind of, for resolving names (`KindRef::resolve`) before the client is built.
    pub fn kind_refs_mut(&mut self) -> Vec<(String, String, &mut KindRef)> {
        let target = &self.target;
        let entries = self.mix.iter_mut().enumerate();
        entries
            .map(|(i, m)| (format!("mix[{i}].kind"), target.clone(), &mut m.kind))
            .collect()
    }
}

impl Validate for ClientConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        match &self.arrivals {
            // Rates are positive by construction.
            Arrivals::Poisson(_) | Arrivals::Constant(_) => {}
            Arrivals::Schedule(steps) => {
                if steps.is_empty() {
                    return Err(ConfigError::Empty {
                        field: "arrivals.Schedule".into(),
                    });
                }
                for (i, w) in steps.windows(2).enumerate() {
                    if w[1].0 <= w[0].0 {
                        return Err(ConfigError::Invalid {
                            field: format!("arrivals.Schedule[{}]", i + 1),
                            reason: format!(
                                "steps must be in strictly increasing time order, but {} \
                                 follows {}",
                                w[1].0, w[0].0
                            ),
                        });
                    }
                }
            }
            Arrivals::Closed { users, think } => {
                nonzero("arrivals.Closed.users", u64::from(*users))?;
                compile("arrivals.Closed.think", think)?;
            }
        }
        for (i, m) in self.mix.iter().enumerate() {
            check_kind_name(format!("mix[{i}].name"), &m.name)?;
            if !(m.weight.is_finite() && m.weight > 0.0) {
                return Err(ConfigError::Invalid {
                    field: format!("mix[{i}].weight"),
                    reason: format!("{} must be finite and > 0", m.weight),
                });
            }
        }
        let names = self.mix.iter().map(|m| m.name.as_str());
        check_unique_names(names, |i| format!("mix[{i}].name"))?;
        if self.timeout == Some(SimDuration::ZERO) {
            return Err(ConfigError::Zero {
                field: "timeout".into(),
            });
        }
        if self.limit == Some(0) {
            return Err(ConfigError::Zero {
                field: "limit".into(),
            });
        }
        Ok(())
    }
}

/// Counters of one request kind.
#[derive(Clone, Copy)]
struct KindMetrics {
    sent: CounterId,
    ok: CounterId,
    error: CounterId,
    timeout: CounterId,
    latency: HistogramId,
}

#[derive(Clone, Copy)]
struct ClientMetrics {
    all: KindMetrics,
    late: CounterId,
}

/// A request in flight.
#[derive(Clone, Copy, Debug)]
struct Pending {
    sent: SimTime,
    /// Index into the mix (0 when there is no mix).
    entry: u32,
    timer: Option<TimerId>,
    user: Option<u32>,
}

/// A workload generator.
///
/// Metrics (owner = the client's name): `sent_total`, `ok_total`, `error_total` (any error
/// response), `timeout_total` (gave up first), `late_total` (responses after the timeout,
/// ignored), the `latency` histogram (ns, successful requests, send to response), and with
/// several mix entries the same per entry, suffixed `.<name>`.
#[derive(Clone)]
pub struct Client<M> {
    config: ClientConfig,
    target: ActorId,
    /// Exp(1): scaled by the current mean gap for Poisson arrivals.
    unit_exp: Sampler,
    think: Option<Sampler>,
    /// Cumulative mix weights, normalised to end at 1.
    cumulative: Vec<f64>,
    /// The request kind of each mix entry.
    kinds: Vec<u32>,
    /// The current mean gap between open-loop arrivals; None while nothing is to be sent.
    gap_ns: Option<f64>,
    /// Constant arrivals: the exact (unrounded) time of the next one.
    next_constant_ns: f64,
    arrive_timer: Option<TimerId>,
    outstanding: BTreeMap<u64, Pending>,
    next_id: u64,
    sent: u64,
    metrics: Option<ClientMetrics>,
    per_entry: Vec<KindMetrics>,
    _m: PhantomData<M>,
}

impl<M> Client<M> {
    /// Validates `config` and prepares the samplers. Kind names must have been resolved to
    /// indices (a `KindRef::Name` is an error at its field).
    pub fn new(config: ClientConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let kinds = config
            .mix
            .iter()
            .enumerate()
            .map(|(i, m)| m.kind.index(format!("mix[{i}].kind")))
            .collect::<Result<Vec<u32>, ConfigError>>()?;
        let think = match &config.arrivals {
            Arrivals::Closed { think, .. } => Some(compile("arrivals.Closed.think", think)?),
            _ => None,
        };
        let total: f64 = config.mix.iter().map(|m| m.weight).sum();
        let mut acc = 0.0;
        let cumulative = config
            .mix
            .iter()
            .map(|m| {
                acc += m.weight;
                acc / total
            })
            .collect();
        let unit_exp = compile(
            "Exp(1)",
            &Dist::Exp {
                mean: Scalar::number(1.0),
            },
        )?;
        Ok(Client {
            config,
            target: ActorId(u32::MAX),
            unit_exp,
            think,
            cumulative,
            kinds,
            gap_ns: None,
            next_constant_ns: 0.0,
            arrive_timer: None,
            outstanding: BTreeMap::new(),
            next_id: 0,
            sent: 0,
            metrics: None,
            per_entry: Vec::new(),
            _m: PhantomData,
        })
    }

    /// Requests sent so far by this incarnation.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Requests awaiting a response or a timeout.
    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    fn may_send(&self) -> bool {
        self.config.limit.is_none_or(|l| self.sent < l)
    }
}

impl<M: Carry<Rpc>> Client<M> {
    fn register(&mut self, ctx: &mut Ctx<'_, M>) {
        let kind = |ctx: &mut Ctx<'_, M>, suffix: &str| KindMetrics {
            sent: ctx.counter(&format!("sent_total{suffix}")),
            ok: ctx.counter(&format!("ok_total{suffix}")),
            error: ctx.counter(&format!("error_total{suffix}")),
            timeout: ctx.counter(&format!("timeout_total{suffix}")),
            latency: ctx.histogram(&format!("latency{suffix}")),
        };
        self.metrics = Some(ClientMetrics {
            all: kind(ctx, ""),
            late: ctx.counter("late_total"),
        });
        if self.config.mix.len() > 1 {
            let names: Vec<String> = self.config.mix.iter().map(|m| m.name.clone()).collect();
            self.per_entry = names.iter().map(|n| kind(ctx, &format!(".{n}"))).collect();
        }
    }

    /// Counts on the total and, with several mix entries, on the entry's own counter.
    fn count(&self, ctx: &mut Ctx<'_, M>, entry: u32, pick: fn(&KindMetrics) -> CounterId) {
        let m = self.metrics.expect("registered at start");
        ctx.metrics().inc(pick(&m.all));
        if let Some(k) = self.per_entry.get(entry as usize) {
            ctx.metrics().inc(pick(k));
        }
    }

    fn pick_entry(&self, ctx: &mut Ctx<'_, M>) -> u32 {
        if self.cumulative.len() <= 1 {
            // One kind: draw nothing, so adding a mix later does not shift a one-kind stream.
            return 0;
        }
        let u: f64 = ctx.rng().random();
        let i = self.cumulative.partition_point(|&c| c <= u);
        // `u < 1` and the last cumulative weight is 1 (up to rounding): clamp for the rounding.
        i.min(self.cumulative.len() - 1) as u32
    }

    fn send_one(&mut self, ctx: &mut Ctx<'_, M>, user: Option<u32>) {
        debug_assert!(self.may_send());
        let entry = self.pick_entry(ctx);
        let kind = self.kinds.get(entry as usize).copied().unwrap_or(0);
        let id = self.next_id;
        self.next_id += 1;
        self.sent += 1;
        let now = ctx.now();
        let deadline = self.config.timeout.map(|t| now.saturating_add(t));
        let timer = self
            .config
            .timeout
            .map(|t| ctx.set_timer(t, M::wrap(Rpc::Tick(Tick::ClientTimeout(id)))));
        let pending = Pending {
            sent: now,
            entry,
            timer,
            user,
        };
        let previous = self.outstanding.insert(id, pending);
        debug_assert!(previous.is_none(), "request ids are unique");
        self.count(ctx, entry, |k| k.sent);
        let req = Request {
            id,
            kind,
            reply_to: ctx.me(),
            created: now,
            deadline,
        };
        ctx.send(self.target, M::wrap(Rpc::Request(req)));
    }

    /// Sets the timer for the next open-loop arrival at the current rate.
    fn schedule_arrival(&mut self, ctx: &mut Ctx<'_, M>) {
        let Some(gap_ns) = self.gap_ns else {
            return;
        };
        if !self.may_send() {
            return;
        }
        let at_ns = match self.config.arrivals {
            Arrivals::Constant(_) => {
                self.next_constant_ns += gap_ns;
                self.next_constant_ns
            }
            _ => ctx.now().as_nanos() as f64 + self.unit_exp.sample(ctx.rng()) * gap_ns,
        };
        // Saturating float-to-int: a gap beyond u64 nanoseconds means "never".
        let at = SimTime::from_nanos(libm::round(at_ns) as u64);
        self.arrive_timer = Some(ctx.set_timer_at(at, M::wrap(Rpc::Tick(Tick::Arrive))));
    }

    /// Moves the schedule to step `n`: a fresh Poisson draw at the new rate (memorylessness makes
    /// dropping the pending draw exact), and the timer for step `n + 1`.
    fn enter_step(&mut self, ctx: &mut Ctx<'_, M>, n: usize) {
        let Arrivals::Schedule(steps) = &self.config.arrivals else {
            return;
        };
        let Some(&(_, rate)) = steps.get(n) else {
            return;
        };
        let next = steps.get(n + 1).map(|&(at, _)| at);
        self.gap_ns = Some(rate.gap_nanos());
        if let Some(at) = next {
            ctx.set_timer_at(at, M::wrap(Rpc::Tick(Tick::RateStep(n as u32 + 1))));
        }
        if let Some(t) = self.arrive_timer.take() {
            ctx.cancel_timer(t);
        }
        self.schedule_arrival(ctx);
    }

    fn think_then_send(&mut self, ctx: &mut Ctx<'_, M>, user: u32) {
        if !self.may_send() {
            return;
        }
        let think = self.think.as_ref().expect("closed loops have a think time");
        let think = ctx.sample_duration(think);
        ctx.set_timer(think, M::wrap(Rpc::Tick(Tick::UserWake(user))));
    }

    fn finish(&mut self, ctx: &mut Ctx<'_, M>, id: u64, status: Option<Status>) {
        let Some(p) = self.outstanding.remove(&id) else {
            // A response after the timeout (or a duplicate): the caller has moved on.
            if status.is_some() {
                let m = self.metrics.expect("registered at start");
                ctx.metrics().inc(m.late);
            }
            return;
        };
        match status {
            Some(Status::Ok) => {
                if let Some(t) = p.timer {
                    ctx.cancel_timer(t);
                }
                self.count(ctx, p.entry, |k| k.ok);
                let latency_ns = (ctx.now() - p.sent).as_nanos();
                let m = self.metrics.expect("registered at start");
                ctx.metrics().record(m.all.latency, latency_ns);
                if let Some(k) = self.per_entry.get(p.entry as usize) {
                    let h = k.latency;
                    ctx.metrics().record(h, latency_ns);
                }
            }
            Some(Status::Err(_)) => {
                if let Some(t) = p.timer {
                    ctx.cancel_timer(t);
                }
                self.count(ctx, p.entry, |k| k.error);
            }
            None => self.count(ctx, p.entry, |k| k.timeout),
        }
        if let Some(user) = p.user {
            self.think_then_send(ctx, user);
        }
    }
}

impl<M: Carry<Rpc>> Actor<M> for Client<M> {
    fn on_start(&mut self, ctx: &mut Ctx<'_, M>) {
        self.register(ctx);
        self.target = resolve(ctx, "target", &self.config.target);
        match &self.config.arrivals {
            Arrivals::Poisson(rate) | Arrivals::Constant(rate) => {
                self.gap_ns = Some(rate.gap_nanos());
                self.next_constant_ns = ctx.now().as_nanos() as f64;
                self.schedule_arrival(ctx);
            }
            Arrivals::Schedule(steps) => {
                let now = ctx.now();
                // After a restart, resume at the step in force; before the first, wait for it.
                match steps.iter().rposition(|&(at, _)| at <= now) {
                    Some(n) => self.enter_step(ctx, n),
                    None => {
                        ctx.set_timer_at(steps[0].0, M::wrap(Rpc::Tick(Tick::RateStep(0))));
                    }
                }
            }
            Arrivals::Closed { users, .. } => {
                for user in 0..*users {
                    self.think_then_send(ctx, user);
                }
            }
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, M>, _from: ActorId, msg: M) {
        if let Some(Rpc::Response(r)) = msg.unwrap() {
            self.finish(ctx, r.id, Some(r.status));
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, M>, msg: M) {
        let Some(Rpc::Tick(tick)) = msg.unwrap() else {
            return;
        };
        match tick {
            Tick::Arrive => {
                self.arrive_timer = None;
                if self.may_send() {
                    self.send_one(ctx, None);
                    self.schedule_arrival(ctx);
                }
            }
            Tick::RateStep(n) => self.enter_step(ctx, n as usize),
            Tick::UserWake(user) if self.may_send() => self.send_one(ctx, Some(user)),
            Tick::ClientTimeout(id) => self.finish(ctx, id, None),
            _ => {}
        }
    }
}
