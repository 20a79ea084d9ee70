//! The workload generator: open-loop arrivals (Poisson, constant, or a Poisson rate schedule for
//! spikes) or a closed loop of users who think between requests; a weighted mix of request
//! kinds; a per-attempt timeout after which the response, if it ever comes, is ignored; and,
//! when configured, retries and a circuit breaker in front of the target.
//!
//! Open and closed loops are both here because they fail differently: an open loop keeps
//! sending into an overloaded system (the queue, and every latency, grows without bound), a
//! closed loop slows down with it (throughput drops, latency stays bounded by the users).
//!
//! Retries and the breaker are the client-side half of the overload story (catalogue S1, S2,
//! S4, S5). A failed attempt (an error response, or no response within `timeout`) is retried
//! per the [`RetryPolicy`]: after a backoff with jitter drawn from the client's own stream, at
//! least a server's Retry-After hint, and within the retry budget. Retries are what turn a
//! short slowdown into a retry storm: every timed-out attempt is sent again while the server
//! still works on the old one. The [`CircuitBreaker`] sits in front of every attempt: open, it
//! fails the attempt at once without sending, so a dead target gets no traffic but the probes.
//! The client's metrics separate the two loads that matter: `sent_total` counts requests (what
//! users asked for), `attempts_total` what the server was actually sent.
//!
//! With `keys` (a [`KeySpace`]: Zipf, a hot set, a share of keys that do not exist), every
//! request draws the key it is about from the client's stream, and its retries keep it; a mix
//! entry may have a key space of its own (reads of hot keys beside writes spread over all of
//! them). Without one a request carries [`NO_KEY`] and nothing is drawn, so a keyless
//! scenario's streams are the same as before keys existed.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use rand::RngExt;
use serde::{Deserialize, Serialize};

use super::resilience::{BreakerState, RetryBudgetState};
use super::{
    BreakerConfig, CircuitBreaker, ConfigError, ErrorKind, KindRef, NO_KEY, Rate, Request,
    Response, RetryPolicy, Rpc, Status, Tick, Validate, check_kind_name, check_unique_names,
    compile, nonzero, resolve,
};
use crate::actor::{Actor, ActorId, Ctx, TimerId};
use crate::dist::{Dist, Sampler, Scalar};
use crate::engine::time::{SimDuration, SimTime};
use crate::metrics::{CounterId, GaugeId, HistogramId};
use crate::model::Carry;
use crate::model::cache::{KeySpace, Keys};

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
    /// The keys this entry's requests are about, instead of the client's `keys`; None (the
    /// default) uses the client's.
    #[serde(default)]
    pub keys: Option<KeySpace>,
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
    /// Give up on an attempt after this long (each attempt of a retried request has its own);
    /// None waits forever.
    #[serde(default)]
    pub timeout: Option<SimDuration>,
    /// Send at most this many requests (retries not counted).
    #[serde(default)]
    pub limit: Option<u64>,
    /// Retry failed attempts (`retry: (max_attempts: 4, backoff: Exponential(base: "50ms",
    /// cap: "2s"))`); None never retries.
    #[serde(default)]
    pub retry: Option<RetryPolicy>,
    /// A circuit breaker in front of the target (`breaker: (window: 20, minimum_calls: 10)`);
    /// None sends every attempt.
    #[serde(default)]
    pub breaker: Option<BreakerConfig>,
    /// The keys requests are about (`keys: (popularity: Zipf(n: 100000, s: 0.99), missing:
    /// 0.3)`): each request draws one, and its retries keep it. A mix entry's own `keys`
    /// take precedence. None (the default): requests carry no key ([`NO_KEY`]).
    #[serde(default)]
    pub keys: Option<KeySpace>,
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
        if let Some(keys) = &self.keys {
            keys.validate().map_err(|e| e.within("keys"))?;
        }
        for (i, m) in self.mix.iter().enumerate() {
            if let Some(keys) = &m.keys {
                keys.validate()
                    .map_err(|e| e.within(&format!("mix[{i}].keys")))?;
            }
        }
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
        if let Some(retry) = &self.retry {
            retry.validate().map_err(|e| e.within("retry"))?;
        }
        if let Some(breaker) = &self.breaker {
            breaker.validate().map_err(|e| e.within("breaker"))?;
        }
        Ok(())
    }
}

/// Counters of one request kind.
#[derive(Clone, Copy)]
struct KindMetrics {
    sent: CounterId,
    ok: CounterId,
    not_found: CounterId,
    error: CounterId,
    timeout: CounterId,
    latency: HistogramId,
}

#[derive(Clone, Copy)]
struct ClientMetrics {
    all: KindMetrics,
    late: CounterId,
    attempts: CounterId,
    retries: CounterId,
    budget_exhausted: CounterId,
    breaker_rejected: CounterId,
    breaker_state: GaugeId,
}

/// Where an unfinished request stands.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// Its latest attempt is in flight, admitted by the breaker in `epoch`; `timer` is the
    /// attempt's timeout.
    InFlight { timer: Option<TimerId>, epoch: u64 },
    /// Its latest attempt failed; the next one is sent when its `RetryDue` timer fires.
    Backoff,
}

/// An unfinished request, kept under the id of its latest attempt (so a response to an
/// attempt that has already failed is recognised as late).
#[derive(Clone, Copy, Debug)]
struct Pending {
    /// When the first attempt was sent: latency runs from here to the final success.
    first_sent: SimTime,
    /// Index into the mix (0 when there is no mix).
    entry: u32,
    /// The request's key (every attempt carries it); [`NO_KEY`] without a key space.
    key: u64,
    user: Option<u32>,
    /// Attempts made so far, the latest included.
    attempts: u32,
    /// The backoff drawn before the latest retry (decorrelated jitter walks from it).
    last_sleep: Option<SimDuration>,
    phase: Phase,
}

/// How an attempt ended badly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Failure {
    /// An error response, with the server's Retry-After hint if it gave one.
    Error(ErrorKind, Option<SimDuration>),
    /// No response within the client's `timeout` (retried as an `ErrorKind::Timeout`).
    TimedOut,
}

/// A workload generator, with optional retries and circuit breaker.
///
/// Metrics (owner = the client's name):
/// - `sent_total`: requests (original sends only, so `ok_total / sent_total` is the success
///   rate users see); `ok_total` (answered, `Ok` or `NotFound`), `error_total` (the request
///   ended with an error: its last attempt's error response, or the breaker refusing an
///   attempt), `timeout_total` (its last attempt timed out); a request that is not finished is
///   in none of the three. `not_found_total`: of `ok_total`, the requests answered `NotFound`
///   (their key does not exist: a correct answer, not a failure).
/// - `attempts_total`: attempts actually sent to the target, first tries and retries (the
///   offered load the server sees); `retries_total` of them retries. Without a breaker,
///   `attempts_total = sent_total + retries_total`; a breaker's refusals are sent by neither.
/// - `retry_budget_exhausted_total`: retries wanted (retryable error, attempts left) but
///   refused by the retry budget; the request then ended with its last failure.
/// - `breaker_rejected_total`: attempts the breaker refused (not sent); `breaker_state` gauge:
///   0 closed, 1 half-open, 2 open. Breaker transitions are also trace notes
///   (`breaker closed -> open`).
/// - `late_total`: responses to attempts that had already timed out, ignored.
/// - the `latency` histogram (ns, successful requests, from the first attempt's send to the
///   final response, backoffs included).
///
/// With several mix entries, `sent_total`, `ok_total`, `not_found_total`, `error_total`,
/// `timeout_total` and `latency` also per entry, suffixed `.<name>`.
///
/// A closed-loop user waits for the request's final outcome, retries included, before
/// thinking. A breaker's refusal is not retried: failing fast is its point, and a retry into
/// an open breaker would only spend an attempt. The retry budget is deposited into by every
/// request and withdrawn from by every retry decided on.
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
    /// The key space of each mix entry (index 0 without a mix): its own, else the client's.
    keys: Vec<Option<Keys>>,
    /// The current mean gap between open-loop arrivals; None while nothing is to be sent.
    gap_ns: Option<f64>,
    /// Constant arrivals: the exact (unrounded) time of the next one.
    next_constant_ns: f64,
    arrive_timer: Option<TimerId>,
    outstanding: BTreeMap<u64, Pending>,
    /// The id of the next attempt sent.
    next_id: u64,
    sent: u64,
    budget: Option<RetryBudgetState>,
    breaker: Option<CircuitBreaker>,
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
        let client_keys = match &config.keys {
            Some(k) => Some(Keys::new(k).map_err(|e| e.within("keys"))?),
            None => None,
        };
        let keys = if config.mix.is_empty() {
            vec![client_keys]
        } else {
            let mut keys = Vec::with_capacity(config.mix.len());
            for (i, m) in config.mix.iter().enumerate() {
                keys.push(match &m.keys {
                    Some(k) => Some(Keys::new(k).map_err(|e| e.within(&format!("mix[{i}].keys")))?),
                    None => client_keys.clone(),
                });
            }
            keys
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
        let budget = config.retry.as_ref().and_then(|r| r.budget.as_ref());
        let budget = budget.map(RetryBudgetState::new);
        let breaker = config.breaker.clone().map(CircuitBreaker::new);
        Ok(Client {
            config,
            target: ActorId(u32::MAX),
            unit_exp,
            think,
            cumulative,
            kinds,
            keys,
            gap_ns: None,
            next_constant_ns: 0.0,
            arrive_timer: None,
            outstanding: BTreeMap::new(),
            next_id: 0,
            sent: 0,
            budget,
            breaker,
            metrics: None,
            per_entry: Vec::new(),
            _m: PhantomData,
        })
    }

    /// Requests sent so far by this incarnation (retries not counted).
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Requests not finished: an attempt in flight, or a backoff running.
    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    /// The breaker's state, if the client has one.
    pub fn breaker_state(&self) -> Option<BreakerState> {
        self.breaker.as_ref().map(CircuitBreaker::state)
    }

    fn may_send(&self) -> bool {
        self.config.limit.is_none_or(|l| self.sent < l)
    }

    fn m(&self) -> ClientMetrics {
        self.metrics.expect("registered at start")
    }
}

impl<M: Carry<Rpc>> Client<M> {
    fn register(&mut self, ctx: &mut Ctx<'_, M>) {
        let kind = |ctx: &mut Ctx<'_, M>, suffix: &str| KindMetrics {
            sent: ctx.counter(&format!("sent_total{suffix}")),
            ok: ctx.counter(&format!("ok_total{suffix}")),
            not_found: ctx.counter(&format!("not_found_total{suffix}")),
            error: ctx.counter(&format!("error_total{suffix}")),
            timeout: ctx.counter(&format!("timeout_total{suffix}")),
            latency: ctx.histogram(&format!("latency{suffix}")),
        };
        // Registered whether or not retries and a breaker are configured, so that a scenario's
        // checks and charts name the same metrics in its baseline and in its fixes.
        self.metrics = Some(ClientMetrics {
            all: kind(ctx, ""),
            late: ctx.counter("late_total"),
            attempts: ctx.counter("attempts_total"),
            retries: ctx.counter("retries_total"),
            budget_exhausted: ctx.counter("retry_budget_exhausted_total"),
            breaker_rejected: ctx.counter("breaker_rejected_total"),
            breaker_state: ctx.gauge("breaker_state"),
        });
        let state = self.breaker.as_ref().map_or(0.0, CircuitBreaker::gauge);
        ctx.metrics().set(self.m().breaker_state, state);
        if self.config.mix.len() > 1 {
            let names: Vec<String> = self.config.mix.iter().map(|m| m.name.clone()).collect();
            self.per_entry = names.iter().map(|n| kind(ctx, &format!(".{n}"))).collect();
        }
    }

    /// Counts on the total and, with several mix entries, on the entry's own counter.
    fn count(&self, ctx: &mut Ctx<'_, M>, entry: u32, pick: fn(&KindMetrics) -> CounterId) {
        let m = self.m();
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

    /// Starts a new request (and deposits into the retry budget).
    fn send_one(&mut self, ctx: &mut Ctx<'_, M>, user: Option<u32>) {
        debug_assert!(self.may_send());
        let entry = self.pick_entry(ctx);
        // Drawn only with a key space, after the entry: keyless clients draw what they did.
        let key = match self.keys.get_mut(entry as usize) {
            Some(Some(keys)) => keys.draw(ctx.rng()),
            _ => NO_KEY,
        };
        self.sent += 1;
        self.count(ctx, entry, |k| k.sent);
        let now = ctx.now();
        if let Some(budget) = &mut self.budget {
            budget.deposit(now);
        }
        let pending = Pending {
            first_sent: now,
            entry,
            key,
            user,
            attempts: 0,
            last_sleep: None,
            // Replaced when the attempt is sent.
            phase: Phase::InFlight {
                timer: None,
                epoch: 0,
            },
        };
        self.attempt(ctx, pending);
    }

    /// Notes a breaker transition (trace note, gauge, and a timer for the cooldown's end) if
    /// the breaker's epoch is no longer `before`.
    fn breaker_moved(&mut self, ctx: &mut Ctx<'_, M>, before: (u64, BreakerState)) {
        let Some(b) = &self.breaker else {
            return;
        };
        if b.epoch() == before.0 {
            return;
        }
        let (state, until) = (b.state(), b.open_until());
        ctx.trace_note(&format!("breaker {} -> {}", before.1.name(), state.name()));
        ctx.metrics().set(self.m().breaker_state, state.gauge());
        if let Some(until) = until {
            ctx.set_timer_at(until, M::wrap(Rpc::Tick(Tick::BreakerCooldown)));
        }
    }

    /// Sends the request's next attempt, or ends the request if the breaker refuses it.
    fn attempt(&mut self, ctx: &mut Ctx<'_, M>, mut p: Pending) {
        let now = ctx.now();
        let mut epoch = 0;
        if let Some(b) = &mut self.breaker {
            let before = (b.epoch(), b.state());
            let allowed = b.allow(now);
            epoch = b.epoch();
            self.breaker_moved(ctx, before);
            if !allowed {
                ctx.metrics().inc(self.m().breaker_rejected);
                self.count(ctx, p.entry, |k| k.error);
                self.end(ctx, p);
                return;
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        p.attempts += 1;
        let deadline = self.config.timeout.map(|t| now.saturating_add(t));
        let timer = self
            .config
            .timeout
            .map(|t| ctx.set_timer(t, M::wrap(Rpc::Tick(Tick::ClientTimeout(id)))));
        p.phase = Phase::InFlight { timer, epoch };
        let previous = self.outstanding.insert(id, p);
        debug_assert!(previous.is_none(), "attempt ids are unique");
        let m = self.m();
        ctx.metrics().inc(m.attempts);
        if p.attempts > 1 {
            ctx.metrics().inc(m.retries);
        }
        let req = Request {
            id,
            kind: self.kinds.get(p.entry as usize).copied().unwrap_or(0),
            reply_to: ctx.me(),
            // The request's creation: downstream latency is end to end, retries included.
            created: p.first_sent,
            deadline,
            key: p.key,
        };
        ctx.send(self.target, M::wrap(Rpc::Request(req)));
    }

    /// A finished request frees its closed-loop user to think and send again.
    fn end(&mut self, ctx: &mut Ctx<'_, M>, p: Pending) {
        if let Some(user) = p.user {
            self.think_then_send(ctx, user);
        }
    }

    /// Reports an attempt's outcome to the breaker, if it was admitted in the current epoch.
    fn record(&mut self, ctx: &mut Ctx<'_, M>, epoch: u64, success: bool) {
        let now = ctx.now();
        let Some(b) = &mut self.breaker else {
            return;
        };
        if b.epoch() != epoch {
            // Admitted in an earlier state: its outcome says nothing about this one.
            return;
        }
        let before = (b.epoch(), b.state());
        b.record(now, success);
        self.breaker_moved(ctx, before);
    }

    /// The wait before retrying `p` after `failure`, or None to give up. Withdraws from the
    /// budget and draws the jitter.
    fn retry_delay(
        &mut self,
        ctx: &mut Ctx<'_, M>,
        p: &mut Pending,
        failure: Failure,
    ) -> Option<SimDuration> {
        let policy = self.config.retry.as_ref()?;
        let (error, hint) = match failure {
            Failure::Error(e, hint) => (e, hint),
            Failure::TimedOut => (ErrorKind::Timeout, None),
        };
        if !(policy.retries_on(error) && policy.has_attempts_left(p.attempts)) {
            return None;
        }
        let now = ctx.now();
        if let Some(budget) = &mut self.budget
            && !budget.try_withdraw(now)
        {
            let exhausted = self.metrics.expect("registered at start").budget_exhausted;
            ctx.metrics().inc(exhausted);
            return None;
        }
        // After `attempts` attempts this is retry number `attempts`.
        let sleep = policy.sleep(p.attempts, p.last_sleep, ctx.rng());
        // The walk of decorrelated jitter follows its own draws, not the server's hints.
        p.last_sleep = Some(sleep);
        let floor = hint.filter(|_| policy.respect_retry_after);
        Some(floor.map_or(sleep, |h| sleep.max(h)))
    }

    /// Attempt `id` of `p` failed: retry it after its backoff, or end the request.
    fn attempt_failed(&mut self, ctx: &mut Ctx<'_, M>, id: u64, mut p: Pending, failure: Failure) {
        match self.retry_delay(ctx, &mut p, failure) {
            Some(delay) if delay.is_zero() => self.attempt(ctx, p),
            Some(delay) => {
                ctx.set_timer(delay, M::wrap(Rpc::Tick(Tick::RetryDue(id))));
                p.phase = Phase::Backoff;
                self.outstanding.insert(id, p);
            }
            None => {
                match failure {
                    Failure::TimedOut => self.count(ctx, p.entry, |k| k.timeout),
                    Failure::Error(..) => self.count(ctx, p.entry, |k| k.error),
                }
                self.end(ctx, p);
            }
        }
    }

    /// Removes attempt `id` if it is in flight; anything else about it is late.
    fn take_in_flight(&mut self, id: u64) -> Option<(Pending, Option<TimerId>, u64)> {
        match self.outstanding.get(&id)?.phase {
            Phase::InFlight { timer, epoch } => {
                let p = self.outstanding.remove(&id).expect("just found");
                Some((p, timer, epoch))
            }
            Phase::Backoff => None,
        }
    }

    fn on_response(&mut self, ctx: &mut Ctx<'_, M>, r: Response) {
        let Some((p, timer, epoch)) = self.take_in_flight(r.id) else {
            // A response after the attempt timed out (or a duplicate): the caller has moved on.
            ctx.metrics().inc(self.m().late);
            return;
        };
        if let Some(t) = timer {
            ctx.cancel_timer(t);
        }
        self.record(ctx, epoch, r.status.is_success());
        match r.status {
            Status::Ok | Status::NotFound => {
                self.count(ctx, p.entry, |k| k.ok);
                if r.status == Status::NotFound {
                    self.count(ctx, p.entry, |k| k.not_found);
                }
                let latency_ns = (ctx.now() - p.first_sent).as_nanos();
                let m = self.m();
                ctx.metrics().record(m.all.latency, latency_ns);
                if let Some(k) = self.per_entry.get(p.entry as usize) {
                    let h = k.latency;
                    ctx.metrics().record(h, latency_ns);
                }
                self.end(ctx, p);
            }
            Status::Err(e) => self.attempt_failed(ctx, r.id, p, Failure::Error(e, r.retry_after)),
        }
    }

    fn on_timeout(&mut self, ctx: &mut Ctx<'_, M>, id: u64) {
        // The timer is cancelled when a response comes first; a request in backoff has none.
        let Some((p, _, epoch)) = self.take_in_flight(id) else {
            return;
        };
        self.record(ctx, epoch, false);
        self.attempt_failed(ctx, id, p, Failure::TimedOut);
    }

    fn on_retry_due(&mut self, ctx: &mut Ctx<'_, M>, id: u64) {
        let Some(p) = self.outstanding.remove(&id) else {
            return;
        };
        debug_assert!(matches!(p.phase, Phase::Backoff), "{p:?}");
        self.attempt(ctx, p);
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
            self.on_response(ctx, r);
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
            Tick::ClientTimeout(id) => self.on_timeout(ctx, id),
            Tick::RetryDue(id) => self.on_retry_due(ctx, id),
            Tick::BreakerCooldown => {
                let now = ctx.now();
                if let Some(b) = &mut self.breaker {
                    let before = (b.epoch(), b.state());
                    b.advance(now);
                    self.breaker_moved(ctx, before);
                }
            }
            _ => {}
        }
    }
}
