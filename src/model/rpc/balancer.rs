//! A load balancer: forwards each request to one backend chosen by a policy, relays the response
//! to the original caller, and, when configured, health-checks its backends and ramps the ones
//! that come back up slowly (slow start), the load-balancer fixes of the thundering herd after a
//! restart (catalogue S4).
//!
//! It keeps its own request ids (a BTreeMap from its id to the original id and caller), so
//! callers' ids never collide at a backend. The outstanding count per backend, which
//! LeastOutstanding and PowerOfTwoChoices read, drops when the response comes back or, for a
//! request with a deadline, when the deadline passes (the caller has given up; without this a
//! lost response would count against its backend for ever).
//!
//! **Weights.** Every policy honours a weight per backend: its static `weights` entry (1 by
//! default) times its slow-start factor. Round robin is nginx's smooth weighted round robin:
//! deterministic, interleaved rather than in bursts (weights 5, 1, 1 give a a b a c a a), and
//! with whole-number weights every run of `sum of weights` picks from the start holds each
//! backend exactly `weight` times. Random is a weighted draw. The two load-aware policies
//! compare `outstanding / weight`, so a backend at a tenth of the weight is chosen as if it had
//! ten times its outstanding requests: under concurrency its outstanding count is held near its
//! weight's share. When every candidate is idle the ratios are all 0 and the tie-break decides
//! (LeastOutstanding's rotation ignores weights; PowerOfTwoChoices' first draw is weighted).
//! With every weight equal each policy makes exactly the choices, and the random draws, that it
//! made before weights existed (a test pins the trace hashes).
//!
//! **Health checks** (`health`, off by default). Every `interval` the balancer sends each
//! backend a probe: an ordinary request of kind `health.kind`, so it queues behind real work
//! and costs the backend a request's work, as a real health endpoint does. A probe fails if the
//! answer is an error or does not come within `timeout`. `unhealthy_threshold` consecutive
//! failures eject a healthy backend (it gets no traffic); `healthy_threshold` consecutive
//! successes bring an ejected one back, after which failures are ignored for `grace` (the
//! health-check grace period of Kubernetes' `initialDelaySeconds` or an ECS service). Probes are
//! the balancer's own calls: their answers are never relayed to a client, and they are not
//! counted as outstanding requests. Backends start healthy: a run begins in steady state. When
//! fewer than `panic_threshold_percent` of the backends are healthy, and always when none is,
//! the balancer routes to all of them regardless of health, as Envoy does below its panic
//! threshold and as an AWS ALB "fails open" when every target is unhealthy: an ejection storm
//! (every backend slow, none dead) then does not become a total outage.
//!
//! **Slow start** (`slow_start`, off by default; needs `health`). A backend that health checks
//! bring back starts at `min_weight_percent` of its weight and ramps to its full weight over
//! `window`, as Envoy's slow start mode does: `weight * max(min_weight_percent / 100,
//! (elapsed / window) ^ (1 / aggression))`; `aggression` 1 is linear, as an ALB's ramp is.
//! Without it a backend that comes back gets its full share at once, cold caches and all.
//!
//! **Connection limits** (`max_outstanding`, off by default): at most this many requests are
//! outstanding at each backend at once, HAProxy's per-server `maxconn`; a request for a
//! backend at its limit is refused at once with `Unavailable` (a 503, which clients may retry)
//! rather than queued at the balancer. Slow start ramps the limit with the weight, as HAProxy's
//! `slowstart` ramps a server's `maxconn`: a backend that comes back accepts `min_weight_percent`
//! of its connections at first. This is what protects a *single* restarting backend, which no
//! weight can: its share of the traffic is all of it, but its concurrency is capped while it
//! warms up.
//!
//! Metrics (owner = the balancer's name): `forwarded_total`, `forwarded_total.<backend>`,
//! `expired_total` (forwarded requests forgotten at their deadline) and `refused_total`
//! (requests refused because their backend was at `max_outstanding`, or, with `health.fail_open`
//! off, because no backend was healthy); with `health`, the gauges `healthy.<backend>` (1
//! while the backend is in rotation, 0 while ejected or not an endpoint) and `panic` (1
//! while routing to every backend regardless of health), and the counters `probes_total`
//! (probes sent), `probe_failures_total` (probes that failed, including the ones ignored during
//! `grace`) and `ejections_total` (healthy -> ejected transitions).
//!
//! **Endpoints.** A [`ServiceDeployment`](super::ServiceDeployment) embeds a balancer over
//! every pod it may run and names the ones that are endpoints (`set_endpoint`); the others
//! are neither routed to nor probed, and the panic threshold counts endpoints only. A plain
//! `LoadBalancer` has every backend as an endpoint, and behaves exactly as before they existed.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use rand::RngExt;
use serde::{Deserialize, Serialize};

use super::{ConfigError, KindRef, Request, Rpc, Status, Tick, Validate, nonzero, resolve};
use crate::actor::{Actor, ActorId, Ctx};
use crate::engine::time::{SimDuration, SimTime};
use crate::metrics::{CounterId, GaugeId};
use crate::model::Carry;

/// AWS ALB's `HealthCheckIntervalSeconds` default for instance and ip targets, 30 s ("Health
/// checks for your target groups", Elastic Load Balancing user guide).
pub const DEFAULT_HEALTH_INTERVAL: SimDuration = SimDuration::from_secs(30);

/// AWS ALB's `HealthCheckTimeoutSeconds` default for instance and ip targets, 5 s (same page).
pub const DEFAULT_HEALTH_TIMEOUT: SimDuration = SimDuration::from_secs(5);

/// AWS ALB's `UnhealthyThresholdCount` default, 2 consecutive failures (same page).
pub const DEFAULT_UNHEALTHY_THRESHOLD: u32 = 2;

/// AWS ALB's `HealthyThresholdCount` default, 5 consecutive successes (same page).
pub const DEFAULT_HEALTHY_THRESHOLD: u32 = 5;

/// Envoy's `slow_start_config.min_weight_percent` default, 10% ("Slow start mode", Envoy
/// architecture overview: "default is 10%").
pub const DEFAULT_MIN_WEIGHT_PERCENT: f64 = 10.0;

/// Envoy's `slow_start_config.aggression` default, 1.0: a linear ramp (Envoy's
/// `SlowStartConfig` proto), the shape of an ALB's ramp ("linearly increases the number of
/// requests sent to a new target").
pub const DEFAULT_AGGRESSION: f64 = 1.0;

/// How a backend is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Policy {
    /// Each backend in turn, in proportion to its weight: smooth weighted round robin (nginx).
    /// Equal weights give plain rotation in config order.
    RoundRobin,
    /// At random in proportion to weight (the balancer's own stream).
    Random,
    /// The backend with the smallest `outstanding / weight`; ties go round robin.
    LeastOutstanding,
    /// Two distinct backends at random (in proportion to weight); the one with the smaller
    /// `outstanding / weight` (the first drawn on a tie). Mitzenmacher's "power of two
    /// choices".
    PowerOfTwoChoices,
}

/// Active health checking: see the module docs for what happens on failure and recovery.
///
/// Every field has a default, so `health: Some(())` checks like an AWS ALB target group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    /// Time between probes of one backend, whatever the previous probe's outcome (a probe is
    /// sent to each backend at the balancer's start and every `interval` after). Default 30 s
    /// (ALB).
    #[serde(default = "default_health_interval")]
    pub interval: SimDuration,
    /// A probe not answered within this long fails. Must be shorter than `interval`, so a
    /// backend has at most one probe outstanding (ALB's rule). Default 5 s (ALB).
    #[serde(default = "default_health_timeout")]
    pub timeout: SimDuration,
    /// Consecutive failed probes that eject a healthy backend. Default 2 (ALB).
    #[serde(default = "default_unhealthy_threshold")]
    pub unhealthy_threshold: u32,
    /// Consecutive successful probes that bring an ejected backend back. Default 5 (ALB).
    #[serde(default = "default_healthy_threshold")]
    pub healthy_threshold: u32,
    /// The request kind sent as the probe, in the backends' table (index or name, resolved
    /// against the first backend's kinds: backends behind one balancer are replicas). Default
    /// kind 0.
    #[serde(default)]
    pub kind: KindRef,
    /// For this long after a backend is brought back, failed probes do not count towards
    /// ejecting it (they are still counted in `probe_failures_total`). Default 0: Kubernetes'
    /// `initialDelaySeconds` default.
    #[serde(default)]
    pub grace: SimDuration,
    /// Route to every backend, healthy or not, while fewer than this percentage of them are
    /// healthy; with none healthy this happens whatever the threshold. Default 0: only when
    /// none is healthy, an ALB's fail-open rule (Envoy's `healthy_panic_threshold` default is
    /// 50).
    #[serde(default)]
    pub panic_threshold_percent: f64,
    /// With no backend healthy, route to all of them anyway (true, the default: an ALB fails
    /// open) or refuse every request at once with `Unavailable` (false: Envoy with panic mode
    /// disabled answers 503 "no healthy upstream"). Failing closed is what lets a balancer see
    /// its only backend come back: probes reach an idle backend, not one buried under traffic.
    #[serde(default = "yes")]
    pub fail_open: bool,
}

fn yes() -> bool {
    true
}

fn default_health_interval() -> SimDuration {
    DEFAULT_HEALTH_INTERVAL
}

fn default_health_timeout() -> SimDuration {
    DEFAULT_HEALTH_TIMEOUT
}

fn default_unhealthy_threshold() -> u32 {
    DEFAULT_UNHEALTHY_THRESHOLD
}

fn default_healthy_threshold() -> u32 {
    DEFAULT_HEALTHY_THRESHOLD
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            interval: DEFAULT_HEALTH_INTERVAL,
            timeout: DEFAULT_HEALTH_TIMEOUT,
            unhealthy_threshold: DEFAULT_UNHEALTHY_THRESHOLD,
            healthy_threshold: DEFAULT_HEALTHY_THRESHOLD,
            kind: KindRef::default(),
            grace: SimDuration::ZERO,
            panic_threshold_percent: 0.0,
            fail_open: true,
        }
    }
}

/// Slow start for backends that health checks bring back: the weight ramps from
/// `min_weight_percent` to full over `window` (Envoy's slow start mode, an ALB's slow start
/// duration).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlowStart {
    /// How long the ramp takes (an ALB allows 30 s to 15 min). Required: there is no neutral
    /// default.
    pub window: SimDuration,
    /// The ramp's shape: the weight factor is `(elapsed / window) ^ (1 / aggression)`; 1 is
    /// linear, larger values ramp faster at first. Default 1.0 (Envoy).
    #[serde(default = "default_aggression")]
    pub aggression: f64,
    /// The factor never drops below this percentage of the weight. In (0, 100]. Default 10
    /// (Envoy).
    #[serde(default = "default_min_weight_percent")]
    pub min_weight_percent: f64,
}

fn default_aggression() -> f64 {
    DEFAULT_AGGRESSION
}

fn default_min_weight_percent() -> f64 {
    DEFAULT_MIN_WEIGHT_PERCENT
}

impl SlowStart {
    /// The weight factor, in `(0, 1]`, `elapsed` after the ramp began.
    pub fn factor(&self, elapsed: SimDuration) -> f64 {
        if elapsed >= self.window {
            return 1.0;
        }
        let progress = elapsed.as_nanos() as f64 / self.window.as_nanos() as f64;
        // libm, not the platform's pow: a seed must replay the same on every OS.
        let ramp = libm::pow(progress, 1.0 / self.aggression);
        ramp.max(self.min_weight_percent / 100.0).min(1.0)
    }
}

/// A [`LoadBalancer`]'s config. Only `backends` and `policy` are required; every other field's
/// default is the balancer without that feature.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadBalancerConfig {
    /// Backend actor names.
    pub backends: Vec<String>,
    pub policy: Policy,
    /// A static weight per backend, in `backends` order, each finite and > 0 (nginx's
    /// `weight=`, Envoy's `load_balancing_weight`); empty means 1 each.
    #[serde(default)]
    pub weights: Vec<f64>,
    /// Active health checks; None sends to every backend whatever its state.
    #[serde(default)]
    pub health: Option<HealthCheck>,
    /// Slow start for backends that come back; None gives them their full weight at once.
    #[serde(default)]
    pub slow_start: Option<SlowStart>,
    /// At most this many outstanding requests per backend (HAProxy's `maxconn`); more are
    /// refused with `Unavailable`. Ramped by slow start. None (the default) is unlimited.
    #[serde(default)]
    pub max_outstanding: Option<u32>,
}

impl LoadBalancerConfig {
    /// `policy` over `backends`, with every optional feature off.
    pub fn new(backends: Vec<String>, policy: Policy) -> Self {
        LoadBalancerConfig {
            backends,
            policy,
            weights: Vec::new(),
            health: None,
            slow_start: None,
            max_outstanding: None,
        }
    }

    /// The actor names this config refers to, with their field paths.
    pub fn targets(&self) -> Vec<(String, &str)> {
        let named = self.backends.iter().enumerate();
        named
            .map(|(i, b)| (format!("backends[{i}]"), b.as_str()))
            .collect()
    }

    /// The probe's request-kind reference, with its field path and the backend whose kinds it
    /// resolves against (the first), for resolving a name before the balancer is built.
    pub fn kind_refs_mut(&mut self) -> Vec<(String, String, &mut KindRef)> {
        match (&mut self.health, self.backends.first()) {
            (Some(h), Some(first)) => vec![("health.kind".into(), first.clone(), &mut h.kind)],
            _ => Vec::new(),
        }
    }
}

fn positive_finite(field: impl Into<String>, value: f64) -> Result<(), ConfigError> {
    if !(value.is_finite() && value > 0.0) {
        return Err(ConfigError::Invalid {
            field: field.into(),
            reason: format!("{value} must be finite and > 0"),
        });
    }
    Ok(())
}

impl Validate for HealthCheck {
    /// Field paths from the balancer's root (`health.timeout`).
    fn validate(&self) -> Result<(), ConfigError> {
        nonzero("health.interval", self.interval.as_nanos())?;
        nonzero("health.timeout", self.timeout.as_nanos())?;
        if self.timeout >= self.interval {
            return Err(ConfigError::Invalid {
                field: "health.timeout".into(),
                reason: format!(
                    "{} must be shorter than health.interval ({}), so that a backend has at \
                     most one probe outstanding",
                    self.timeout, self.interval
                ),
            });
        }
        nonzero(
            "health.unhealthy_threshold",
            u64::from(self.unhealthy_threshold),
        )?;
        nonzero(
            "health.healthy_threshold",
            u64::from(self.healthy_threshold),
        )?;
        let p = self.panic_threshold_percent;
        if !(p.is_finite() && (0.0..=100.0).contains(&p)) {
            return Err(ConfigError::Invalid {
                field: "health.panic_threshold_percent".into(),
                reason: format!("{p} must be a percentage in [0, 100]"),
            });
        }
        Ok(())
    }
}

impl Validate for SlowStart {
    /// Field paths from the balancer's root (`slow_start.window`).
    fn validate(&self) -> Result<(), ConfigError> {
        nonzero("slow_start.window", self.window.as_nanos())?;
        positive_finite("slow_start.aggression", self.aggression)?;
        let m = self.min_weight_percent;
        if !(m.is_finite() && m > 0.0 && m <= 100.0) {
            return Err(ConfigError::Invalid {
                field: "slow_start.min_weight_percent".into(),
                reason: format!("{m} must be a percentage in (0, 100]"),
            });
        }
        Ok(())
    }
}

impl Validate for LoadBalancerConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.backends.is_empty() {
            return Err(ConfigError::Empty {
                field: "backends".into(),
            });
        }
        if !self.weights.is_empty() && self.weights.len() != self.backends.len() {
            return Err(ConfigError::Invalid {
                field: "weights".into(),
                reason: format!(
                    "{} weights for {} backends: give one per backend, or none for equal \
                     weights",
                    self.weights.len(),
                    self.backends.len()
                ),
            });
        }
        for (i, &w) in self.weights.iter().enumerate() {
            positive_finite(format!("weights[{i}]"), w)?;
        }
        if let Some(h) = &self.health {
            h.validate()?;
        }
        if let Some(m) = self.max_outstanding {
            nonzero("max_outstanding", u64::from(m))?;
        }
        if let Some(s) = &self.slow_start {
            s.validate()?;
            if self.health.is_none() {
                return Err(ConfigError::Invalid {
                    field: "slow_start".into(),
                    reason: "slow start ramps up backends that health checks bring back; \
                             without `health` the balancer never sees one come back, so add \
                             `health: Some(())` or remove `slow_start`"
                        .into(),
                });
            }
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

/// What health checking knows about one backend.
#[derive(Clone, Copy, Debug)]
struct Health {
    healthy: bool,
    /// Consecutive failed probes (those that count: not the ones in grace).
    failures: u32,
    /// Consecutive successful probes.
    successes: u32,
    /// Failed probes before this time do not count (grace after coming back).
    grace_until: SimTime,
    /// When the backend came back, if slow start applies.
    ramp_from: Option<SimTime>,
}

#[derive(Clone, Copy)]
struct HealthMetrics {
    probes: CounterId,
    failures: CounterId,
    ejections: CounterId,
    panic: GaugeId,
}

/// A load balancer.
///
/// Metrics: see the module docs.
#[derive(Clone)]
pub struct LoadBalancer<M> {
    config: LoadBalancerConfig,
    /// The resolved `health.kind`.
    probe_kind: u32,
    backends: Vec<ActorId>,
    outstanding: Vec<u32>,
    forwarded: BTreeMap<u64, Forwarded>,
    /// Probes awaiting an answer: the balancer's id -> backend index.
    probes: BTreeMap<u64, u32>,
    next_id: u64,
    /// LeastOutstanding's rotation for ties.
    cursor: usize,
    /// Smooth weighted round robin's current weight per backend.
    current: Vec<f64>,
    health: Vec<Health>,
    healthy: Vec<bool>,
    /// By backend: whether it is in the endpoint set (every backend, unless a
    /// [`ServiceDeployment`](super::ServiceDeployment) says otherwise). Only endpoints are
    /// routed to and probed.
    endpoints: Vec<bool>,
    /// The backends that may be picked (healthy ones, or all in panic), in config order.
    eligible: Vec<usize>,
    /// Per-pick weights of `eligible`, kept to avoid an allocation per request.
    scratch: Vec<f64>,
    counters: Vec<CounterId>,
    total: Option<(CounterId, CounterId)>,
    refused: Option<CounterId>,
    healthy_gauges: Vec<GaugeId>,
    health_metrics: Option<HealthMetrics>,
    _m: PhantomData<M>,
}

impl<M> LoadBalancer<M> {
    /// Validates `config`. A probe kind given by name must have been resolved to an index.
    pub fn new(config: LoadBalancerConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let probe_kind = match &config.health {
            Some(h) => h.kind.index("health.kind")?,
            None => 0,
        };
        let n = config.backends.len();
        let health = Health {
            healthy: true,
            failures: 0,
            successes: 0,
            grace_until: SimTime::ZERO,
            ramp_from: None,
        };
        Ok(LoadBalancer {
            config,
            probe_kind,
            backends: Vec::new(),
            outstanding: vec![0; n],
            forwarded: BTreeMap::new(),
            probes: BTreeMap::new(),
            next_id: 0,
            cursor: 0,
            current: vec![0.0; n],
            health: vec![health; n],
            healthy: vec![true; n],
            endpoints: vec![true; n],
            eligible: (0..n).collect(),
            scratch: Vec::with_capacity(n),
            counters: Vec::new(),
            total: None,
            refused: None,
            healthy_gauges: Vec::new(),
            health_metrics: None,
            _m: PhantomData,
        })
    }

    /// Outstanding requests per backend, in config order (probes not included).
    pub fn outstanding(&self) -> &[u32] {
        &self.outstanding
    }

    /// Whether each backend is in rotation, in config order (always all true without health
    /// checks).
    pub fn healthy(&self) -> &[bool] {
        &self.healthy
    }

    /// Backend `b`'s weight at `now`: its static weight times its slow-start factor.
    fn weight(&self, b: usize, now: SimTime) -> f64 {
        let base = self.config.weights.get(b).copied().unwrap_or(1.0);
        base * self.ramp(b, now)
    }

    /// Backend `b`'s slow-start factor at `now`, in (0, 1]; 1 when not ramping.
    fn ramp(&self, b: usize, now: SimTime) -> f64 {
        match (&self.config.slow_start, self.health[b].ramp_from) {
            (Some(s), Some(from)) => s.factor(now.saturating_duration_since(from)),
            _ => 1.0,
        }
    }

    /// How many requests backend `b` may have outstanding at `now`, if limited: at least one,
    /// so a ramping backend is never shut out entirely.
    fn limit(&self, b: usize, now: SimTime) -> Option<u32> {
        let max = self.config.max_outstanding?;
        let ramped = libm::ceil(f64::from(max) * self.ramp(b, now)) as u32;
        Some(ramped.clamp(1, max))
    }

    /// `outstanding[a] / weight a < outstanding[b] / weight b`, without dividing, so that with
    /// equal weights it is exactly `outstanding[a] < outstanding[b]`.
    fn lighter(&self, a: usize, wa: f64, b: usize, wb: f64) -> bool {
        f64::from(self.outstanding[a]) * wb < f64::from(self.outstanding[b]) * wa
    }

    /// Recomputes the eligible set after a health change; returns whether in panic.
    fn refresh_eligible(&mut self) -> bool {
        // Only endpoints count: with every backend one (the default), `n` is all of them.
        let endpoints = &self.endpoints;
        let n = endpoints.iter().filter(|&&e| e).count();
        let up = (self.healthy.iter().zip(endpoints))
            .filter(|&(&h, &e)| h && e)
            .count();
        let threshold = self
            .config
            .health
            .as_ref()
            .map_or(0.0, |h| h.panic_threshold_percent);
        let fail_open = self.config.health.as_ref().is_none_or(|h| h.fail_open);
        let panic =
            (up == 0 && fail_open) || (up > 0 && (up as f64) * 100.0 < threshold * n as f64);
        self.eligible.clear();
        let (healthy, endpoints) = (&self.healthy, &self.endpoints);
        self.eligible
            .extend((0..healthy.len()).filter(|&b| endpoints[b] && (panic || healthy[b])));
        // Smooth weighted round robin's invariant (current weights sum to 0 over the
        // candidates) holds for a fixed set only: start the rotation afresh, so a backend
        // coming back brings no credit or debt from before.
        self.current.iter_mut().for_each(|c| *c = 0.0);
        panic
    }
}

impl<M: Carry<Rpc>> LoadBalancer<M> {
    fn pick(&mut self, ctx: &mut Ctx<'_, M>) -> usize {
        let now = ctx.now();
        let k = self.eligible.len();
        debug_assert!(
            k > 0,
            "panic mode keeps every backend eligible when none is healthy, and failing closed \
             refuses before picking"
        );
        let mut weights = std::mem::take(&mut self.scratch);
        weights.clear();
        weights.extend(self.eligible.iter().map(|&b| self.weight(b, now)));
        let total: f64 = weights.iter().sum();
        // With equal weights the unweighted code paths run, so that the choices and the random
        // draws are exactly those of a balancer without weights.
        let equal = weights.iter().all(|&w| w == weights[0]);
        let b = match self.config.policy {
            Policy::RoundRobin => {
                // nginx's smooth weighted round robin: every candidate gains its weight, the
                // largest current weight wins (the first on a tie) and pays the total back.
                // Equal weights from all-zero give 0, 1, ..., k-1, 0, ...
                let mut best = 0;
                for (j, (&b, &w)) in self.eligible.iter().zip(&weights).enumerate() {
                    self.current[b] += w;
                    if self.current[b] > self.current[self.eligible[best]] {
                        best = j;
                    }
                }
                let b = self.eligible[best];
                self.current[b] -= total;
                b
            }
            Policy::Random if equal => self.eligible[ctx.rng().random_range(0..k)],
            Policy::Random => self.eligible[draw(ctx, &weights, total, None)],
            Policy::LeastOutstanding => {
                let n = self.backends.len();
                let start = self.cursor % n;
                let mut best: Option<(usize, f64)> = None;
                // Config order from the cursor, so ties rotate; `eligible` is in config order.
                let from = self.eligible.partition_point(|&b| b < start);
                let order = (from..k).chain(0..from);
                for j in order {
                    let (b, w) = (self.eligible[j], weights[j]);
                    match best {
                        Some((a, wa)) if !self.lighter(b, w, a, wa) => {}
                        _ => best = Some((b, w)),
                    }
                }
                let (b, _) = best.expect("at least one eligible backend");
                self.cursor = (b + 1) % n;
                b
            }
            Policy::PowerOfTwoChoices => {
                if k == 1 {
                    self.scratch = weights;
                    return self.eligible[0];
                }
                let (i, j) = if equal {
                    let i = ctx.rng().random_range(0..k);
                    let mut j = ctx.rng().random_range(0..k - 1);
                    if j >= i {
                        j += 1;
                    }
                    (i, j)
                } else {
                    let i = draw(ctx, &weights, total, None);
                    let j = draw(ctx, &weights, total - weights[i], Some(i));
                    (i, j)
                };
                debug_assert_ne!(i, j);
                let (a, b) = (self.eligible[i], self.eligible[j]);
                if self.lighter(b, weights[j], a, weights[i]) {
                    b
                } else {
                    a
                }
            }
        };
        self.scratch = weights;
        b
    }

    fn forward(&mut self, ctx: &mut Ctx<'_, M>, req: Request) {
        let now = ctx.now();
        // No backend to send to (failing closed with none healthy), or the one picked is at
        // its connection limit: a 503 at once.
        let picked = (!self.eligible.is_empty()).then(|| self.pick(ctx));
        let refuse = picked.is_none_or(|b| {
            self.limit(b, now)
                .is_some_and(|limit| self.outstanding[b] >= limit)
        });
        if refuse {
            let refused = self.refused.expect("registered at start");
            ctx.metrics().inc(refused);
            let status = Status::Err(super::ErrorKind::Unavailable);
            super::reply(ctx, req.reply_to, req.id, status);
            return;
        }
        let b = picked.expect("not refused, so a backend was picked");
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

    /// Sends backend `b` a probe and sets the next one.
    fn probe(&mut self, ctx: &mut Ctx<'_, M>, b: u32) {
        let Some(h) = &self.config.health else {
            return;
        };
        let (interval, timeout) = (h.interval, h.timeout);
        ctx.set_timer(interval, M::wrap(Rpc::Tick(Tick::Probe(b))));
        if !self.endpoints[b as usize] {
            // Not an endpoint: nobody probes a pod that is not there.
            return;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.probes.insert(id, b);
        // The timeout is shorter than the interval, so this probe ends (answer or timeout)
        // before the next is sent.
        ctx.set_timer(timeout, M::wrap(Rpc::Tick(Tick::Expire(id))));
        let hm = self.health_metrics.expect("registered at start");
        ctx.metrics().inc(hm.probes);
        let now = ctx.now();
        let probe = Request {
            id,
            kind: self.probe_kind,
            reply_to: ctx.me(),
            created: now,
            // The balancer gives up at the timeout; a backend that drops expired work may
            // skip the probe, as a real one would skip a closed connection's request.
            deadline: Some(now.saturating_add(timeout)),
            key: super::NO_KEY,
        };
        ctx.send(self.backends[b as usize], M::wrap(Rpc::Request(probe)));
    }

    /// Adds backend `b` to the endpoint set or removes it, as the Kubernetes endpoints
    /// controller adds a pod once it is ready and removes it when it is deleted. A backend
    /// added starts healthy and, with `slow_start`, ramps from now, as Envoy's slow start
    /// ramps a new host and an ALB a newly registered target. Requests already forwarded to
    /// a removed backend are still answered (the pod finishes them while it terminates).
    pub fn set_endpoint(&mut self, ctx: &mut Ctx<'_, M>, b: usize, member: bool) {
        if self.endpoints[b] == member {
            return;
        }
        self.endpoints[b] = member;
        if member {
            let now = ctx.now();
            let grace = self
                .config
                .health
                .as_ref()
                .map_or(SimDuration::ZERO, |h| h.grace);
            self.health[b] = Health {
                healthy: true,
                failures: 0,
                successes: 0,
                grace_until: now.saturating_add(grace),
                ramp_from: self.config.slow_start.is_some().then_some(now),
            };
            self.healthy[b] = true;
        }
        // `healthy.<backend>` says whether it is in rotation: not while it is no endpoint.
        if let Some(&g) = self.healthy_gauges.get(b) {
            ctx.metrics().set(g, if member { 1.0 } else { 0.0 });
        }
        let panic = self.refresh_eligible();
        if let Some(hm) = self.health_metrics {
            ctx.metrics().set(hm.panic, if panic { 1.0 } else { 0.0 });
        }
    }

    /// Answers every request outstanding at backend `b` with `Unavailable` and forgets them:
    /// its process was killed, and the kernel reset its connections with it, which a proxy
    /// answers at once with a 503 (Envoy's "upstream connect error or disconnect/reset before
    /// headers"). Returns how many were answered. A [`ServiceDeployment`](super::ServiceDeployment)
    /// calls it when it kills a pod.
    pub fn reset_backend(&mut self, ctx: &mut Ctx<'_, M>, b: usize) -> u64 {
        let ids: Vec<u64> = (self.forwarded.iter())
            .filter(|(_, f)| f.backend as usize == b)
            .map(|(&id, _)| id)
            .collect();
        for &id in &ids {
            let f = self.forget(id).expect("just listed");
            let status = Status::Err(super::ErrorKind::Unavailable);
            super::reply(ctx, f.reply_to, f.id, status);
        }
        ids.len() as u64
    }

    /// Whether backend `b` is in the endpoint set.
    pub fn is_endpoint(&self, b: usize) -> bool {
        self.endpoints[b]
    }

    /// Folds a probe's outcome into backend `b`'s health.
    fn probed(&mut self, ctx: &mut Ctx<'_, M>, b: usize, ok: bool) {
        let Some(cfg) = &self.config.health else {
            return;
        };
        let (unhealthy_threshold, healthy_threshold, grace) =
            (cfg.unhealthy_threshold, cfg.healthy_threshold, cfg.grace);
        let hm = self.health_metrics.expect("registered at start");
        let now = ctx.now();
        let slow_start = self.config.slow_start.is_some();
        let h = &mut self.health[b];
        let mut changed = false;
        if ok {
            h.failures = 0;
            h.successes = h.successes.saturating_add(1);
            if !h.healthy && h.successes >= healthy_threshold {
                h.healthy = true;
                h.grace_until = now.saturating_add(grace);
                h.ramp_from = slow_start.then_some(now);
                changed = true;
            }
        } else {
            ctx.metrics().inc(hm.failures);
            if now < h.grace_until {
                return;
            }
            h.successes = 0;
            h.failures = h.failures.saturating_add(1);
            if h.healthy && h.failures >= unhealthy_threshold {
                h.healthy = false;
                h.ramp_from = None;
                ctx.metrics().inc(hm.ejections);
                changed = true;
            }
        }
        if changed {
            let healthy = self.health[b].healthy;
            self.healthy[b] = healthy;
            ctx.metrics()
                .set(self.healthy_gauges[b], if healthy { 1.0 } else { 0.0 });
            let panic = self.refresh_eligible();
            ctx.metrics().set(hm.panic, if panic { 1.0 } else { 0.0 });
        }
    }
}

/// An index into `weights` drawn in proportion to weight (`total` is their sum, less the
/// weight of `skip` if given; `skip` is never drawn).
fn draw<M: Carry<Rpc>>(
    ctx: &mut Ctx<'_, M>,
    weights: &[f64],
    total: f64,
    skip: Option<usize>,
) -> usize {
    let u = ctx.rng().random::<f64>() * total;
    let mut acc = 0.0;
    let mut last = None;
    for (j, &w) in weights.iter().enumerate() {
        if Some(j) == skip {
            continue;
        }
        acc += w;
        last = Some(j);
        if u < acc {
            return j;
        }
    }
    // `u < total` up to rounding in the running sum: the last candidate takes the remainder.
    last.expect("at least one candidate besides `skip`")
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
        self.refused = Some(ctx.counter("refused_total"));
        if self.config.health.is_none() {
            return;
        }
        self.healthy_gauges = names
            .iter()
            .map(|name| ctx.gauge(&format!("healthy.{name}")))
            .collect();
        for &g in &self.healthy_gauges {
            ctx.metrics().set(g, 1.0);
        }
        let hm = HealthMetrics {
            probes: ctx.counter("probes_total"),
            failures: ctx.counter("probe_failures_total"),
            ejections: ctx.counter("ejections_total"),
            panic: ctx.gauge("panic"),
        };
        ctx.metrics().set(hm.panic, 0.0);
        self.health_metrics = Some(hm);
        // The first probes go out after every actor has started (a zero timer runs after the
        // start events already queued for this instant).
        for b in 0..self.backends.len() {
            ctx.set_timer(SimDuration::ZERO, M::wrap(Rpc::Tick(Tick::Probe(b as u32))));
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, M>, _from: ActorId, msg: M) {
        match msg.unwrap() {
            Some(Rpc::Request(req)) => self.forward(ctx, req),
            Some(Rpc::Response(r)) => {
                if let Some(f) = self.forget(r.id) {
                    let out = super::Response { id: f.id, ..r };
                    ctx.send(f.reply_to, M::wrap(Rpc::Response(out)));
                } else if let Some(b) = self.probes.remove(&r.id) {
                    // A probe's answer ends here: it is the balancer's own call.
                    self.probed(ctx, b as usize, r.status.is_success());
                }
                // Otherwise unknown: the deadline passed first and the caller (or, for a
                // probe, the balancer) has given up.
            }
            _ => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, M>, msg: M) {
        match msg.unwrap() {
            Some(Rpc::Tick(Tick::Expire(id))) => {
                if self.forget(id).is_some() {
                    let (_, expired) = self.total.expect("registered at start");
                    ctx.metrics().inc(expired);
                } else if let Some(b) = self.probes.remove(&id) {
                    self.probed(ctx, b as usize, false);
                }
            }
            Some(Rpc::Tick(Tick::Probe(b))) => self.probe(ctx, b),
            _ => {}
        }
    }
}
