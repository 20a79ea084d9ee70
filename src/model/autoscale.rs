//! An autoscaler as a pure state machine: Kubernetes' Horizontal Pod Autoscaler algorithm with
//! KEDA's scale-to-zero in front of it, for any component whose replica count can be set (the
//! consumers of a group, a service's workers). At each poll the caller gives the time, how many
//! replicas are ready and the metric; the autoscaler answers the replica count it wants. Starting
//! pods, and the time that takes, is the caller's business (an actor with a provisioning
//! delay), which is exactly the reaction delay that turns lag autoscaling into a rebalance storm
//! (K1): every change of the count is a rebalance, and a group that stops while it rebalances
//! shows more lag, which asks for more replicas.
//!
//! What each step follows, from Kubernetes' `pkg/controller/podautoscaler` (horizontal.go,
//! replica_calculator.go) and KEDA's scale executor and Kafka scaler, with the documentation
//! quoted beside each default:
//! 1. **KEDA, only when `min_replicas` is 0.** The metric is *active* when it exceeds the
//!    activation threshold (`lag > activationLagThreshold`). At zero replicas an active metric
//!    scales to 1 (`max(minReplicaCount, 1)`), an inactive one stays at zero; with replicas and
//!    no activity for `cooldown_period` (`LastActiveTime + cooldownPeriod < now`, or never
//!    active since creation) it scales to zero. Otherwise the HPA decides, with a minimum of 1.
//! 2. **The HPA's proposal.** A count outside `[min, max]` is brought to the nearest bound
//!    first. Otherwise, for lag (an external metric with an `AverageValue` target, as KEDA sets
//!    it up), `ratio = lag / (lag_threshold * replicas)` and the proposal is
//!    `ceil(lag / lag_threshold)`; for CPU and utilisation (per-pod resource metrics, `value` the
//!    mean over the pods with a sample), `ratio = value / target` and the proposal is
//!    `ceil(ratio * ready)`. Pods without a sample are grouped as `groupPods` groups them
//!    ([`PodMetrics`]): a pod not running yet (*unready*) counts as using nothing when
//!    scaling up and is left out otherwise; a running pod with no sample (*missing*: a
//!    container restarting in place, a scrape unanswered) counts as using its whole request
//!    when scaling down and nothing when scaling up. Either way the ratio is recomputed over
//!    the pods counted, and a recomputed ratio within the tolerance or in the other direction
//!    keeps the count. A ratio within `[1 - tolerance, 1 + tolerance]` keeps the current
//!    count.
//! 3. **Stabilisation** (`stabilizeRecommendationWithBehaviors`): every proposal is recorded;
//!    the count is raised no further than the *lowest* proposal of the scale-up window and
//!    lowered no further than the *highest* proposal of the scale-down window (by default 0 s
//!    and 300 s), so a dip inside the last five minutes does not scale down.
//! 4. **Rate policies** (`convertDesiredReplicasWithBehaviorRate`): at most `Pods(n)` or
//!    `Percent(p)` replicas added or removed per `period`, counting the changes already made in
//!    that period, choosing the policy that allows the most change (`select_policy: Max`),
//!    then clamped to `[min, max]`.
//!
//! KEDA's Kafka scaler caps the *metric*, not the count: without `allow_idle_consumers`, when
//! `lag / lag_threshold` (integer division) exceeds the partition count the lag reported is
//! `partitions * lag_threshold`. The integer division lets a lag just under `(partitions + 1) *
//! threshold` through uncapped, so the count can reach `partitions + 1`; this is KEDA's
//! behaviour and is kept.
//!
//! Two simplifications, both explicit: KEDA polls its triggers every `pollingInterval` (30 s)
//! while the HPA recomputes every `--horizontal-pod-autoscaler-sync-period` (15 s); this loop
//! is one, at `polling_interval`, whose default is KEDA's (set it to [`HPA_SYNC_PERIOD`] for the
//! HPA's cadence). And the HPA's metrics pipeline (metrics-server's 15-60 s scrape) is the
//! caller's: the samples passed in are what the HPA would see. Its
//! `--horizontal-pod-autoscaler-cpu-initialization-period` rule (a CPU sample whose window
//! began before the pod was Ready is unready) is the caller's too, through `unready`: it
//! matters when a container burns CPU starting up, which the callers do not model (a
//! consumer's usage is measured from its Ready transition), so they have no setting for it.
//! One metric is measured; a second, a scheduled count (KEDA's cron scaler), can be given
//! to [`Autoscaler::poll_with_floor`], and the larger proposal wins, as the HPA combines
//! metrics. The callers: a consumer group's controller
//! ([`GroupController`](crate::model::log::GroupController)) and a service deployment's
//! ([`ServiceDeployment`](crate::model::rpc::ServiceDeployment)).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::engine::time::{SimDuration, SimTime};
use crate::model::rpc::{ConfigError, Validate};

/// Lag per replica the Kafka scaler targets by default: 10, KEDA's `lagThreshold` ("Average
/// target value to trigger scaling actions. (Default: 10, Optional)", KEDA docs, Scalers /
/// Apache Kafka).
pub const DEFAULT_LAG_THRESHOLD: u64 = 10;

/// Lag above which the trigger is active (scales from zero, keeps off zero) by default: 0,
/// KEDA's `activationLagThreshold` (Default: 0; KEDA docs, Scalers / Apache Kafka).
pub const DEFAULT_ACTIVATION_LAG_THRESHOLD: u64 = 0;

/// How often the autoscaler decides by default: 30 s, KEDA's `pollingInterval` ("This is the
/// interval to check each trigger on. By default, KEDA will check each trigger source on every
/// ScaledObject every 30 seconds.", KEDA docs, ScaledObject specification).
pub const DEFAULT_POLLING_INTERVAL: SimDuration = SimDuration::from_secs(30);

/// The HPA's own loop: 15 s, `--horizontal-pod-autoscaler-sync-period` ("the default interval
/// is 15 seconds", Kubernetes docs, Horizontal Pod Autoscaling). Not a default here; for
/// scenarios that want the HPA's cadence rather than KEDA's.
pub const HPA_SYNC_PERIOD: SimDuration = SimDuration::from_secs(15);

/// How long without activity before scaling to zero by default: 300 s, KEDA's `cooldownPeriod`
/// ("The period to wait after the last trigger reported active before scaling the resource
/// back to 0 ... By default, it's 300 (5 minutes)"; it "only applies when scaling to 0", KEDA
/// docs, ScaledObject specification).
pub const DEFAULT_COOLDOWN_PERIOD: SimDuration = SimDuration::from_secs(300);

/// The fewest replicas by default: 0, KEDA's `minReplicaCount` ("Default: 0"): scale to zero.
/// CPU and utilisation metrics need at least 1 (an idle pod reports no load to wake on).
pub const DEFAULT_MIN_REPLICAS: u32 = 0;

/// The most replicas by default: 100, KEDA's `maxReplicaCount` ("Default: 100").
pub const DEFAULT_MAX_REPLICAS: u32 = 100;

/// The ratio band that keeps the count by default: 0.1, the HPA's
/// `--horizontal-pod-autoscaler-tolerance` ("The control plane skips any scaling action if the
/// ratio is sufficiently close to 1.0 (within a configurable tolerance, 0.1 by default)",
/// Kubernetes docs, Horizontal Pod Autoscaling, Algorithm details).
pub const DEFAULT_TOLERANCE: f64 = 0.1;

/// The scale-up stabilisation window by default: 0 s; scale-down: 300 s (HPAScalingRules
/// `stabilizationWindowSeconds`: "If not set, use the default values: - For scale up: 0 (i.e.
/// no stabilization is done). - For scale down: 300 (i.e. the stabilization window is 300
/// seconds long)", Kubernetes API reference; the docs' "Default behavior").
pub const DEFAULT_SCALE_UP_STABILIZATION: SimDuration = SimDuration::ZERO;
/// See [`DEFAULT_SCALE_UP_STABILIZATION`].
pub const DEFAULT_SCALE_DOWN_STABILIZATION: SimDuration = SimDuration::from_secs(300);

/// The longest stabilisation window the HPA accepts: one hour ("must be greater than or equal
/// to zero and less than or equal to 3600").
pub const MAX_STABILIZATION_WINDOW: SimDuration = SimDuration::from_secs(3_600);

/// The longest policy period the HPA accepts: 30 min ("The maximum value that you can set for
/// periodSeconds is 1800 (half an hour)").
pub const MAX_POLICY_PERIOD: SimDuration = SimDuration::from_secs(1_800);

/// The HPA's default policies' period: 15 s (the docs' "Default behavior": scale down
/// `Percent 100` per 15 s; scale up `Percent 100` or `Pods 4` per 15 s, `selectPolicy: Max`).
pub const DEFAULT_POLICY_PERIOD: SimDuration = SimDuration::from_secs(15);

/// What the autoscaler scales on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum ScaleMetric {
    /// A consumer group's total lag (records), as KEDA's Kafka scaler: `Lag(per_replica: 50)`.
    Lag {
        /// Lag each replica should carry, >= 1: `lagThreshold`, default 10.
        #[serde(default = "default_lag_threshold")]
        per_replica: u64,
        /// Lag above which the trigger is active: `activationLagThreshold`, default 0.
        #[serde(default)]
        activation: u64,
        /// Let the count exceed the partition count (`allowIdleConsumers`, default false:
        /// "When set to true, the number of replicas can exceed the number of partitions on a
        /// topic, allowing for idle consumers").
        #[serde(default)]
        allow_idle_consumers: bool,
    },
    /// Mean CPU per ready replica, in cores, against `target` cores: `Cpu(target: 0.5)`.
    Cpu { target: f64 },
    /// Mean utilisation (busy fraction, 0-1) per ready replica against `target`:
    /// `Utilisation(target: 0.7)`; the HPA's `averageUtilization` as a fraction.
    Utilisation { target: f64 },
}

fn default_lag_threshold() -> u64 {
    DEFAULT_LAG_THRESHOLD
}

/// A rate limit on scaling in one direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScalingPolicy {
    /// At most `value` replicas added (removed) per `period`.
    Pods { value: u32, period: SimDuration },
    /// At most `value`% of the replicas at the period's start added (removed) per `period`.
    Percent { value: u32, period: SimDuration },
}

impl ScalingPolicy {
    fn period(&self) -> SimDuration {
        match *self {
            ScalingPolicy::Pods { period, .. } | ScalingPolicy::Percent { period, .. } => period,
        }
    }

    fn value(&self) -> u32 {
        match *self {
            ScalingPolicy::Pods { value, .. } | ScalingPolicy::Percent { value, .. } => value,
        }
    }
}

/// Which policy applies when several do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SelectPolicy {
    /// The one allowing the most change (the HPA's default).
    #[default]
    Max,
    /// The one allowing the least change.
    Min,
    /// No scaling in this direction at all.
    Disabled,
}

/// The HPA's `behavior.scaleUp` / `behavior.scaleDown`. Fields left out take the direction's
/// default, as the HPA merges a partial behaviour with its defaults: `scale_down:
/// (stabilization_window: Some("1m"))` keeps the default policies.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScalingRules {
    /// Default 0 s up, 300 s down; at most 1 h.
    #[serde(default)]
    pub stabilization_window: Option<SimDuration>,
    /// Default up: `[Percent(value: 100, period: "15s"), Pods(value: 4, period: "15s")]`;
    /// down: `[Percent(value: 100, period: "15s")]`. Not empty; values >= 1; periods in
    /// (0, 30 min].
    #[serde(default)]
    pub policies: Option<Vec<ScalingPolicy>>,
    /// Default `Max`.
    #[serde(default)]
    pub select_policy: Option<SelectPolicy>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    Up,
    Down,
}

/// [`ScalingRules`] with the defaults filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Rules {
    window: SimDuration,
    policies: Vec<ScalingPolicy>,
    select: SelectPolicy,
}

impl ScalingRules {
    fn resolve(&self, direction: Direction) -> Rules {
        let (window, policies) = match direction {
            Direction::Up => (
                DEFAULT_SCALE_UP_STABILIZATION,
                vec![
                    ScalingPolicy::Percent {
                        value: 100,
                        period: DEFAULT_POLICY_PERIOD,
                    },
                    ScalingPolicy::Pods {
                        value: 4,
                        period: DEFAULT_POLICY_PERIOD,
                    },
                ],
            ),
            Direction::Down => (
                DEFAULT_SCALE_DOWN_STABILIZATION,
                vec![ScalingPolicy::Percent {
                    value: 100,
                    period: DEFAULT_POLICY_PERIOD,
                }],
            ),
        };
        Rules {
            window: self.stabilization_window.unwrap_or(window),
            policies: self.policies.clone().unwrap_or(policies),
            select: self.select_policy.unwrap_or_default(),
        }
    }

    fn check(&self, field: &str) -> Result<(), ConfigError> {
        if let Some(w) = self.stabilization_window
            && w > MAX_STABILIZATION_WINDOW
        {
            return Err(ConfigError::Invalid {
                field: format!("{field}.stabilization_window"),
                reason: format!("{w} is longer than the HPA's limit of 1h"),
            });
        }
        if let Some(policies) = &self.policies {
            if policies.is_empty() {
                return Err(ConfigError::Empty {
                    field: format!("{field}.policies"),
                });
            }
            for (i, p) in policies.iter().enumerate() {
                if p.value() == 0 {
                    return Err(ConfigError::Zero {
                        field: format!("{field}.policies[{i}].value"),
                    });
                }
                let period = p.period();
                if period.is_zero() || period > MAX_POLICY_PERIOD {
                    return Err(ConfigError::Invalid {
                        field: format!("{field}.policies[{i}].period"),
                        reason: format!("{period} must be in (0s, 30m]"),
                    });
                }
            }
        }
        Ok(())
    }
}

/// An autoscaler: `(metric: Lag(per_replica: 100), max_replicas: 12)`. Every field but
/// `metric` has KEDA's or the HPA's default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoscalerConfig {
    pub metric: ScaleMetric,
    /// Time between polls, > 0. Default 30 s (KEDA's `pollingInterval`).
    #[serde(default = "default_polling_interval")]
    pub polling_interval: SimDuration,
    /// Default 0 (scale to zero, KEDA's `minReplicaCount`); >= 1 for `Cpu` and `Utilisation`.
    #[serde(default)]
    pub min_replicas: u32,
    /// >= max(1, `min_replicas`). Default 100 (KEDA's `maxReplicaCount`).
    #[serde(default = "default_max_replicas")]
    pub max_replicas: u32,
    /// In [0, 1). Default 0.1 (the HPA's tolerance).
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
    /// Time without activity before scaling to zero; only with `min_replicas: 0`. Default
    /// 300 s (KEDA's `cooldownPeriod`).
    #[serde(default = "default_cooldown_period")]
    pub cooldown_period: SimDuration,
    #[serde(default)]
    pub scale_up: ScalingRules,
    #[serde(default)]
    pub scale_down: ScalingRules,
}

fn default_polling_interval() -> SimDuration {
    DEFAULT_POLLING_INTERVAL
}

fn default_max_replicas() -> u32 {
    DEFAULT_MAX_REPLICAS
}

fn default_tolerance() -> f64 {
    DEFAULT_TOLERANCE
}

fn default_cooldown_period() -> SimDuration {
    DEFAULT_COOLDOWN_PERIOD
}

impl AutoscalerConfig {
    /// Every default, scaling on `metric`.
    pub fn new(metric: ScaleMetric) -> AutoscalerConfig {
        AutoscalerConfig {
            metric,
            polling_interval: DEFAULT_POLLING_INTERVAL,
            min_replicas: DEFAULT_MIN_REPLICAS,
            max_replicas: DEFAULT_MAX_REPLICAS,
            tolerance: DEFAULT_TOLERANCE,
            cooldown_period: DEFAULT_COOLDOWN_PERIOD,
            scale_up: ScalingRules::default(),
            scale_down: ScalingRules::default(),
        }
    }

    /// KEDA's Kafka scaler with its defaults.
    pub fn lag() -> AutoscalerConfig {
        AutoscalerConfig::new(ScaleMetric::Lag {
            per_replica: DEFAULT_LAG_THRESHOLD,
            activation: DEFAULT_ACTIVATION_LAG_THRESHOLD,
            allow_idle_consumers: false,
        })
    }
}

impl Validate for AutoscalerConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        match self.metric {
            ScaleMetric::Lag { per_replica, .. } => {
                crate::model::rpc::nonzero("metric.Lag.per_replica", per_replica)?;
            }
            ScaleMetric::Cpu { target } | ScaleMetric::Utilisation { target } => {
                let name = match self.metric {
                    ScaleMetric::Cpu { .. } => "metric.Cpu.target",
                    _ => "metric.Utilisation.target",
                };
                if !(target.is_finite() && target > 0.0) {
                    return Err(ConfigError::Invalid {
                        field: name.into(),
                        reason: format!("{target} must be a positive number"),
                    });
                }
                if self.min_replicas == 0 {
                    return Err(ConfigError::Invalid {
                        field: "min_replicas".into(),
                        reason: "a per-pod CPU or utilisation metric cannot scale from zero \
                                 (no pod, no measurement): use min_replicas >= 1, or scale on \
                                 Lag"
                        .into(),
                    });
                }
            }
        }
        crate::model::rpc::nonzero("polling_interval", self.polling_interval.as_nanos())?;
        crate::model::rpc::nonzero("max_replicas", u64::from(self.max_replicas))?;
        if self.max_replicas < self.min_replicas {
            return Err(ConfigError::Invalid {
                field: "max_replicas".into(),
                reason: format!(
                    "{} is below min_replicas {}",
                    self.max_replicas, self.min_replicas
                ),
            });
        }
        if !(self.tolerance.is_finite() && (0.0..1.0).contains(&self.tolerance)) {
            return Err(ConfigError::Invalid {
                field: "tolerance".into(),
                reason: format!("{} must be a fraction in [0, 1)", self.tolerance),
            });
        }
        self.scale_up.check("scale_up")?;
        self.scale_down.check("scale_down")?;
        Ok(())
    }
}

/// Why the autoscaler chose its count (the HPA's condition reasons where it has them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ScaleReason {
    /// At zero with an inactive trigger (KEDA).
    Idle,
    /// From zero to one on activity (KEDA).
    Activated,
    /// To zero after `cooldown_period` without activity (KEDA).
    CooledDown,
    /// The count was above `max_replicas`: brought down to it.
    AboveMax,
    /// The count was below the minimum: brought up to it.
    BelowMin,
    /// No ready replica to measure a per-pod metric: the count is kept.
    NoMetrics,
    /// The ratio is within the tolerance (or, with replicas still starting, the dampened
    /// scale-up ratio is, or turns into a scale down): the count is kept.
    WithinTolerance,
    /// The metric's proposal, applied as it is (`DesiredWithinRange`).
    Metric,
    /// Held up by a lower proposal in the scale-up window.
    ScaleUpStabilized,
    /// Held up by a higher proposal in the scale-down window.
    ScaleDownStabilized,
    /// Slowed by a scale-up policy.
    ScaleUpLimit,
    /// Slowed by a scale-down policy.
    ScaleDownLimit,
    /// Capped at `max_replicas`.
    TooManyReplicas,
    /// Raised to the minimum.
    TooFewReplicas,
}

/// What one poll decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The replica count wanted from now on.
    pub desired: u32,
    /// The metric's own proposal before stabilisation and policies (equal to `desired` where
    /// KEDA or a bound decided).
    pub proposal: u32,
    pub reason: ScaleReason,
}

/// A scaled component's pods at one poll of a per-pod metric (`Cpu`, `Utilisation`), grouped
/// as the HPA's `groupPods` groups them (replica_calculator.go). The groups add up to the pods
/// the component has; pods being deleted are in none.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PodMetrics {
    /// Pods whose sample counts, and the sum of their samples.
    pub ready: u32,
    pub sum: f64,
    /// Pods not running yet (`Pending`; for CPU also a pod that is not Ready, or whose sample
    /// began before it became Ready, within `--horizontal-pod-autoscaler-cpu-initialization-
    /// period`): on a scale up they count as using nothing, otherwise they are left out.
    pub unready: u32,
    /// Pods running with no sample (a container restarting in place, a scrape unanswered): on
    /// a scale down they count as using their whole request, on a scale up nothing.
    pub missing: u32,
}

/// The autoscaler's state: the count it last set, its activity clock, and the recent
/// proposals and scale events its windows look back on (bounded by the longest window).
#[derive(Clone, Debug)]
pub struct Autoscaler {
    config: AutoscalerConfig,
    up: Rules,
    down: Rules,
    replicas: u32,
    partitions: Option<u32>,
    created: SimTime,
    last_active: Option<SimTime>,
    last_poll: Option<SimTime>,
    /// (time, proposal), oldest first.
    recommendations: VecDeque<(SimTime, u32)>,
    /// True once the first recommendation was recorded (the HPA's recordInitialRecommendation).
    seeded: bool,
    /// (time, replicas added) and (time, replicas removed), oldest first.
    up_events: VecDeque<(SimTime, u32)>,
    down_events: VecDeque<(SimTime, u32)>,
}

impl Autoscaler {
    /// An autoscaler created at `now` for a component that has `replicas` replicas.
    /// `config` should be validated.
    pub fn new(config: AutoscalerConfig, replicas: u32, now: SimTime) -> Autoscaler {
        let up = config.scale_up.resolve(Direction::Up);
        let down = config.scale_down.resolve(Direction::Down);
        Autoscaler {
            config,
            up,
            down,
            replicas,
            partitions: None,
            created: now,
            last_active: None,
            last_poll: None,
            recommendations: VecDeque::new(),
            seeded: false,
            up_events: VecDeque::new(),
            down_events: VecDeque::new(),
        }
    }

    pub fn config(&self) -> &AutoscalerConfig {
        &self.config
    }

    /// The count last decided (the scale target's `spec.replicas`).
    pub fn replicas(&self) -> u32 {
        self.replicas
    }

    /// Sets the count from outside (an operator's manual scale); the next poll starts from it.
    pub fn set_replicas(&mut self, replicas: u32) {
        self.replicas = replicas;
    }

    /// The topic's partition count, for the Kafka scaler's cap; None (the default) caps nothing.
    pub fn set_partitions(&mut self, partitions: Option<u32>) {
        self.partitions = partitions;
    }

    /// When the next poll is due after one at `now`.
    pub fn next_poll(&self, now: SimTime) -> SimTime {
        now.saturating_add(self.config.polling_interval)
    }

    /// One poll at `now`: `ready` replicas are ready, `metric` is the group's total lag (for
    /// `Lag`) or the mean per ready replica (for `Cpu`, `Utilisation`). A NaN or negative
    /// metric counts as 0. For a per-pod metric the replicas not ready count as not yet
    /// running (Pending); [`poll_pods`](Autoscaler::poll_pods) tells them apart.
    pub fn poll(&mut self, now: SimTime, ready: u32, metric: f64) -> Decision {
        self.poll_with_floor(now, ready, metric, 0)
    }

    /// [`poll`](Autoscaler::poll) with a second metric whose proposal is `floor` replicas (a
    /// scheduled count, KEDA's cron scaler): the HPA computes a proposal per metric and takes
    /// the largest, before stabilisation and the rate policies, so the floor is reached at the
    /// pace the scale-up policies allow. A floor of 0 proposes nothing.
    pub fn poll_with_floor(
        &mut self,
        now: SimTime,
        ready: u32,
        metric: f64,
        floor: u32,
    ) -> Decision {
        let metric = sane(metric);
        let pods = match self.config.metric {
            ScaleMetric::Lag { .. } => PodMetrics {
                sum: metric,
                ..PodMetrics::default()
            },
            ScaleMetric::Cpu { .. } | ScaleMetric::Utilisation { .. } => {
                // Pods beyond `current` are terminating and left out (the HPA's ignoredPods).
                let ready = ready.min(self.replicas);
                PodMetrics {
                    ready,
                    sum: metric * f64::from(ready),
                    unready: self.replicas - ready,
                    missing: 0,
                }
            }
        };
        self.poll_sample(now, pods, floor)
    }

    /// One poll at `now` of a per-pod metric (`Cpu`, `Utilisation`), its pods grouped as the
    /// HPA groups them. For `Lag`, `pods.sum` is the lag.
    pub fn poll_pods(&mut self, now: SimTime, pods: PodMetrics) -> Decision {
        let pods = PodMetrics {
            sum: sane(pods.sum),
            ..pods
        };
        self.poll_sample(now, pods, 0)
    }

    /// One poll; for `Lag`, `pods.sum` is the lag and the rest is unused.
    fn poll_sample(&mut self, now: SimTime, sample: PodMetrics, floor: u32) -> Decision {
        debug_assert!(
            self.last_poll.is_none_or(|t| t <= now),
            "polls go forward in time"
        );
        self.last_poll = Some(now);
        let current = self.replicas;
        let decision = if self.config.min_replicas == 0 {
            self.keda(now, current, sample, floor)
        } else {
            self.hpa(now, current, sample, floor)
        };
        debug_assert!(decision.desired <= self.config.max_replicas.max(current));
        self.replicas = decision.desired;
        decision
    }

    /// KEDA's scale executor for a ScaledObject that may scale to zero.
    fn keda(&mut self, now: SimTime, current: u32, sample: PodMetrics, floor: u32) -> Decision {
        let active = match self.config.metric {
            ScaleMetric::Lag { activation, .. } => lag_of(sample.sum) > activation,
            // Validation keeps per-pod metrics off this path (min_replicas >= 1).
            ScaleMetric::Cpu { .. } | ScaleMetric::Utilisation { .. } => sample.sum > 0.0,
        };
        // A scheduled count is an active trigger of its own (the cron scaler is active
        // inside its window).
        let active = active || floor > 0;
        if active {
            self.last_active = Some(now);
        }
        let hold = |desired, reason| Decision {
            desired,
            proposal: desired,
            reason,
        };
        if current == 0 {
            return if active {
                hold(1, ScaleReason::Activated)
            } else {
                hold(0, ScaleReason::Idle)
            };
        }
        if !active {
            // `LastActiveTime == nil && CreationTimestamp + initialCooldownPeriod(0) < now ||
            // LastActiveTime + cooldownPeriod < now`.
            let cooled = match self.last_active {
                None => self.created < now,
                Some(t) => t.saturating_add(self.config.cooldown_period) < now,
            };
            if cooled {
                return hold(0, ScaleReason::CooledDown);
            }
        }
        self.hpa(now, current, sample, floor)
    }

    /// The HPA's reconcile for one metric, with behaviours.
    fn hpa(&mut self, now: SimTime, current: u32, sample: PodMetrics, floor: u32) -> Decision {
        let min = self.config.min_replicas.max(1);
        let max = self.config.max_replicas;
        if !self.seeded {
            self.recommendations.push_back((now, current));
            self.seeded = true;
        }
        let clamp = |desired, reason| Decision {
            desired,
            proposal: desired,
            reason,
        };
        let decision = if current > max {
            clamp(max, ScaleReason::AboveMax)
        } else if current < min {
            clamp(min, ScaleReason::BelowMin)
        } else {
            let (proposal, held) = match self.proposal(current, sample) {
                // computeReplicasForMetrics: the largest proposal of the metrics wins.
                (p, _) if floor > p => (floor, None),
                other => other,
            };
            let stabilized = self.stabilize(now, current, proposal);
            let (desired, limit) = self.rate_limit(now, current, stabilized, min, max);
            let reason = if let Some(limit) = limit {
                limit
            } else if stabilized != proposal {
                if proposal > current {
                    ScaleReason::ScaleUpStabilized
                } else {
                    ScaleReason::ScaleDownStabilized
                }
            } else if let Some(held) = held {
                held
            } else {
                ScaleReason::Metric
            };
            Decision {
                desired,
                proposal,
                reason,
            }
        };
        self.record_scale_event(now, current, decision.desired);
        debug_assert!(decision.desired >= min);
        debug_assert!(decision.desired <= max.max(min));
        decision
    }

    /// The metric's proposal, and why it is the current count if it is.
    fn proposal(&self, current: u32, pods: PodMetrics) -> (u32, Option<ScaleReason>) {
        let tolerance = self.config.tolerance;
        let within = |ratio: f64| (1.0 - tolerance) <= ratio && ratio <= (1.0 + tolerance);
        let (target, full) = match self.config.metric {
            ScaleMetric::Lag {
                per_replica,
                allow_idle_consumers,
                ..
            } => {
                let mut lag = lag_of(pods.sum);
                // kafka_scaler.go: `if (totalLag / lagThreshold) > upperBound { totalLag =
                // upperBound * lagThreshold }`, integer division.
                if let Some(partitions) = self.partitions
                    && !allow_idle_consumers
                    && lag / per_replica > u64::from(partitions)
                {
                    lag = u64::from(partitions) * per_replica;
                }
                // GetExternalPerPodMetricReplicas: usageRatio = usage / (target * replicas);
                // outside the tolerance, ceil(usage / target).
                let ratio = lag as f64 / (per_replica as f64 * f64::from(current));
                if within(ratio) {
                    return (current, Some(ScaleReason::WithinTolerance));
                }
                let replicas = lag.div_ceil(per_replica);
                return (to_u32(replicas), None);
            }
            // A missing pod on a scale down counts as using its whole request: for a plain
            // value target the target itself (calcPlainMetricReplicas), for utilisation 100%
            // of the request (GetResourceReplicas).
            ScaleMetric::Cpu { target } => (target, target),
            ScaleMetric::Utilisation { target } => (target, 1.0),
        };
        // GetResourceReplicas / calcPlainMetricReplicas, after groupPods.
        if pods.ready == 0 {
            return (current, Some(ScaleReason::NoMetrics));
        }
        let ratio = pods.sum / f64::from(pods.ready) / target;
        let rebalance_unready = pods.unready > 0 && ratio > 1.0;
        if !rebalance_unready && pods.missing == 0 {
            if within(ratio) {
                return (current, Some(ScaleReason::WithinTolerance));
            }
            return (ceil_exact(ratio * f64::from(pods.ready)), None);
        }
        // "If any pod has a missing metric, the controller ... assumes that the pod is
        // consuming 100% of the desired value in case of a scale down, and 0% in case of a
        // scale up"; "the not-yet-ready pods are consuming 0% of the desired metric, further
        // dampening the magnitude of a scale up" (Kubernetes docs, Algorithm details).
        let (mut sum, mut counted) = (pods.sum, pods.ready);
        if pods.missing > 0 && ratio != 1.0 {
            counted += pods.missing;
            if ratio < 1.0 {
                sum += full * f64::from(pods.missing);
            }
        }
        if rebalance_unready {
            counted += pods.unready;
        }
        let new_ratio = sum / f64::from(counted) / target;
        // The recomputed ratio within the tolerance, or reversing the direction, keeps the
        // count; so does a count that would move against the new ratio's direction.
        if within(new_ratio) || (ratio < 1.0 && new_ratio > 1.0) || (ratio > 1.0 && new_ratio < 1.0)
        {
            return (current, Some(ScaleReason::WithinTolerance));
        }
        let replicas = ceil_exact(new_ratio * f64::from(counted));
        if (new_ratio < 1.0 && replicas > current) || (new_ratio > 1.0 && replicas < current) {
            return (current, Some(ScaleReason::WithinTolerance));
        }
        (replicas, None)
    }

    /// stabilizeRecommendationWithBehaviors: keep the count between the lowest proposal of the
    /// scale-up window and the highest of the scale-down window, then record this proposal.
    fn stabilize(&mut self, now: SimTime, current: u32, proposal: u32) -> u32 {
        let after = |window: SimDuration, t: SimTime| match now.checked_sub(window) {
            Ok(cutoff) => t > cutoff,
            Err(_) => true,
        };
        let mut up = proposal;
        let mut down = proposal;
        for &(t, rec) in &self.recommendations {
            if after(self.up.window, t) {
                up = up.min(rec);
            }
            if after(self.down.window, t) {
                down = down.max(rec);
            }
        }
        let mut recommendation = current;
        if recommendation < up {
            recommendation = up;
        }
        if recommendation > down {
            recommendation = down;
        }
        // A proposal outside both windows is never looked at again (the cutoffs only move
        // forward); the HPA reuses its slot, this drops it.
        let longest = self.up.window.max(self.down.window);
        while let Some(&(t, _)) = self.recommendations.front() {
            if after(longest, t) {
                break;
            }
            self.recommendations.pop_front();
        }
        self.recommendations.push_back((now, proposal));
        debug_assert!(up <= proposal && proposal <= down);
        recommendation
    }

    /// convertDesiredReplicasWithBehaviorRate: the policies' limit, then `[min, max]`.
    fn rate_limit(
        &self,
        now: SimTime,
        current: u32,
        desired: u32,
        min: u32,
        max: u32,
    ) -> (u32, Option<ScaleReason>) {
        if desired > current {
            let limit = self.scale_up_limit(now, current).max(current);
            let (allowed, reason) = if max > limit {
                (limit, ScaleReason::ScaleUpLimit)
            } else {
                (max, ScaleReason::TooManyReplicas)
            };
            if desired > allowed {
                return (allowed, Some(reason));
            }
        } else if desired < current {
            let limit = self.scale_down_limit(now, current).min(current);
            let (allowed, reason) = if min < limit {
                (limit, ScaleReason::ScaleDownLimit)
            } else {
                (min, ScaleReason::TooFewReplicas)
            };
            if desired < allowed {
                return (allowed, Some(reason));
            }
        }
        (desired, None)
    }

    /// calculateScaleUpLimitWithScalingRules.
    fn scale_up_limit(&self, now: SimTime, current: u32) -> u32 {
        let rules = &self.up;
        let pick: fn(i64, i64) -> i64 = match rules.select {
            SelectPolicy::Disabled => return current,
            SelectPolicy::Min => i64::min,
            SelectPolicy::Max => i64::max,
        };
        let mut result: Option<i64> = None;
        for policy in &rules.policies {
            let added = changes_in(&self.up_events, now, policy.period());
            let start = i64::from(current) - added;
            let proposed = match *policy {
                ScalingPolicy::Pods { value, .. } => start + i64::from(value),
                // "the proposal has to be rounded up because the proposed change might not
                // increase the replica count causing the target to never scale up"
                ScalingPolicy::Percent { value, .. } => {
                    (start as f64 * (1.0 + f64::from(value) / 100.0)).ceil() as i64
                }
            };
            result = Some(result.map_or(proposed, |r| pick(r, proposed)));
        }
        to_u32(result.unwrap_or(i64::from(current)).max(0) as u64)
    }

    /// calculateScaleDownLimitWithBehaviors.
    fn scale_down_limit(&self, now: SimTime, current: u32) -> u32 {
        let rules = &self.down;
        // For scaling down the policy allowing the most change gives the lowest count.
        let pick: fn(i64, i64) -> i64 = match rules.select {
            SelectPolicy::Disabled => return current,
            SelectPolicy::Min => i64::max,
            SelectPolicy::Max => i64::min,
        };
        let mut result: Option<i64> = None;
        for policy in &rules.policies {
            let removed = changes_in(&self.down_events, now, policy.period());
            let start = i64::from(current) + removed;
            let proposed = match *policy {
                ScalingPolicy::Pods { value, .. } => start - i64::from(value),
                // int32(float64(periodStartReplicas) * (1 - value/100)): truncated.
                ScalingPolicy::Percent { value, .. } => {
                    (start as f64 * (1.0 - f64::from(value) / 100.0)) as i64
                }
            };
            result = Some(result.map_or(proposed, |r| pick(r, proposed)));
        }
        to_u32(result.unwrap_or(i64::from(current)).max(0) as u64)
    }

    /// storeScaleEvent, dropping events older than the direction's longest policy period.
    fn record_scale_event(&mut self, now: SimTime, from: u32, to: u32) {
        let (events, rules, change) = match to.cmp(&from) {
            std::cmp::Ordering::Equal => return,
            std::cmp::Ordering::Greater => (&mut self.up_events, &self.up, to - from),
            std::cmp::Ordering::Less => (&mut self.down_events, &self.down, from - to),
        };
        let longest = rules
            .policies
            .iter()
            .map(ScalingPolicy::period)
            .max()
            .unwrap_or(SimDuration::ZERO);
        while let Some(&(t, _)) = events.front() {
            if now.checked_sub(longest).is_ok_and(|cutoff| t <= cutoff) {
                events.pop_front();
            } else {
                break;
            }
        }
        events.push_back((now, change));
    }
}

/// getReplicasChangePerPeriod: the replicas changed by events after `now - period`.
fn changes_in(events: &VecDeque<(SimTime, u32)>, now: SimTime, period: SimDuration) -> i64 {
    events
        .iter()
        .filter(|&&(t, _)| match now.checked_sub(period) {
            Ok(cutoff) => t > cutoff,
            Err(_) => true,
        })
        .map(|&(_, change)| i64::from(change))
        .sum()
}

/// A NaN or negative metric counts as 0.
fn sane(metric: f64) -> f64 {
    if metric.is_nan() || metric < 0.0 {
        0.0
    } else {
        metric
    }
}

/// A lag metric as an integer count (floored; saturating).
fn lag_of(metric: f64) -> u64 {
    // `as` saturates and maps NaN to 0.
    metric as u64
}

fn to_u32(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// `ceil(x)`, except that a product within a relative 1e-9 of an integer is that integer: the
/// HPA computes the same product in `float64`, and float noise (`(0.5 * 7 / 25) / 0.5 * 25` is
/// `7.000000000000001`) must not add a replica to a metric exactly at its target. Saturates
/// at `u32::MAX`.
fn ceil_exact(x: f64) -> u32 {
    if !x.is_finite() {
        return if x > 0.0 { u32::MAX } else { 0 };
    }
    let nearest = x.round();
    let y = if (x - nearest).abs() <= 1e-9 * nearest.abs().max(1.0) {
        nearest
    } else {
        x.ceil()
    };
    // `as` saturates: negative to 0, huge to u32::MAX.
    y as u32
}

/// What a controller knows of one pod slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pod {
    /// No pod.
    Absent,
    /// Created, not running (ready) yet.
    Starting,
    Running,
}

/// The pod slots of a scaled component (a consumer group's StatefulSet, a service's
/// Deployment): every replica it may ever run is a slot, and each slot's epoch is bumped at
/// every change, so the timer that would make a slot's pod ready is ignored once the slot has
/// changed since (a scale-down before the pod came up). The controllers differ in what a pod
/// is (a consumer told to start and stop, an endpoint of the balancer); the bookkeeping of
/// which slots hold pods, which are new and which go first is this.
#[derive(Clone, Debug)]
pub struct Pods {
    pods: Vec<Pod>,
    epochs: Vec<u32>,
}

impl Pods {
    /// `slots` slots, the first `running` of them running.
    pub fn new(slots: usize, running: usize) -> Pods {
        let pods = (0..slots)
            .map(|i| {
                if i < running {
                    Pod::Running
                } else {
                    Pod::Absent
                }
            })
            .collect();
        Pods {
            pods,
            epochs: vec![0; slots],
        }
    }

    pub fn len(&self) -> usize {
        self.pods.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pods.is_empty()
    }

    /// Pods created (starting or running).
    pub fn created(&self) -> u32 {
        self.pods.iter().filter(|&&p| p != Pod::Absent).count() as u32
    }

    /// Pods running.
    pub fn ready(&self) -> u32 {
        self.pods.iter().filter(|&&p| p == Pod::Running).count() as u32
    }

    /// `slot`'s pod is starting; the answer is the `seq` its ready timer carries
    /// (`slot << 32 | the slot's epoch`).
    pub fn start(&mut self, slot: usize) -> u64 {
        self.pods[slot] = Pod::Starting;
        self.epochs[slot] += 1;
        ((slot as u64) << 32) | u64::from(self.epochs[slot])
    }

    /// The ready timer `seq` fired: its slot, now running, unless the slot changed since.
    pub fn started(&mut self, seq: u64) -> Option<usize> {
        let (slot, epoch) = ((seq >> 32) as usize, seq as u32);
        if self.epochs.get(slot) != Some(&epoch) || self.pods[slot] != Pod::Starting {
            return None;
        }
        self.pods[slot] = Pod::Running;
        Some(slot)
    }

    /// Removes `slot`'s pod; the answer is what it was.
    pub fn remove(&mut self, slot: usize) -> Pod {
        self.epochs[slot] += 1;
        std::mem::replace(&mut self.pods[slot], Pod::Absent)
    }

    /// The `n` lowest free slots (fewer if there are not so many), where new pods go.
    pub fn free(&self, n: usize) -> Vec<usize> {
        (0..self.len())
            .filter(|&i| self.pods[i] == Pod::Absent)
            .take(n)
            .collect()
    }

    /// The `n` highest slots holding a pod that `may_go` lets go: the newest, which a
    /// scale-down removes first (a StatefulSet's highest ordinals, a ReplicaSet's youngest).
    pub fn newest(&self, n: usize, may_go: impl Fn(usize) -> bool) -> Vec<usize> {
        (0..self.len())
            .rev()
            .filter(|&i| self.pods[i] != Pod::Absent && may_go(i))
            .take(n)
            .collect()
    }
}

impl std::ops::Index<usize> for Pods {
    type Output = Pod;

    fn index(&self, slot: usize) -> &Pod {
        &self.pods[slot]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: u64) -> SimTime {
        SimTime::from_nanos(secs * 1_000_000_000)
    }

    fn lag(per_replica: u64) -> ScaleMetric {
        ScaleMetric::Lag {
            per_replica,
            activation: 0,
            allow_idle_consumers: false,
        }
    }

    fn cpu_config(target: f64) -> AutoscalerConfig {
        AutoscalerConfig {
            min_replicas: 1,
            ..AutoscalerConfig::new(ScaleMetric::Cpu { target })
        }
    }

    /// Polls every `every` seconds from `start`, one metric value per poll, with every replica
    /// ready at once; returns the decided counts.
    fn run(a: &mut Autoscaler, start: u64, every: u64, metrics: &[f64]) -> Vec<u32> {
        metrics
            .iter()
            .enumerate()
            .map(|(i, &m)| {
                let ready = a.replicas();
                a.poll(t(start + every * i as u64), ready, m).desired
            })
            .collect()
    }

    #[test]
    fn defaults_are_kedas_and_the_hpas() {
        let c = AutoscalerConfig::lag();
        assert_eq!(
            c.metric,
            ScaleMetric::Lag {
                per_replica: 10,
                activation: 0,
                allow_idle_consumers: false
            }
        );
        assert_eq!(c.polling_interval, SimDuration::from_secs(30));
        assert_eq!(c.cooldown_period, SimDuration::from_secs(300));
        assert_eq!((c.min_replicas, c.max_replicas), (0, 100));
        assert_eq!(c.tolerance, 0.1);
        assert!(c.validate().is_ok());
        let up = c.scale_up.resolve(Direction::Up);
        assert_eq!(up.window, SimDuration::ZERO);
        assert_eq!(up.select, SelectPolicy::Max);
        assert_eq!(
            up.policies,
            vec![
                ScalingPolicy::Percent {
                    value: 100,
                    period: SimDuration::from_secs(15)
                },
                ScalingPolicy::Pods {
                    value: 4,
                    period: SimDuration::from_secs(15)
                },
            ]
        );
        let down = c.scale_down.resolve(Direction::Down);
        assert_eq!(down.window, SimDuration::from_secs(300));
        assert_eq!(
            down.policies,
            vec![ScalingPolicy::Percent {
                value: 100,
                period: SimDuration::from_secs(15)
            }]
        );
        assert_eq!(HPA_SYNC_PERIOD, SimDuration::from_secs(15));
    }

    #[test]
    fn the_docs_worked_example_doubles_at_twice_the_target() {
        // "if the current metric value is 200m, and the desired value is 100m, the number of
        // replicas will be doubled"; at 50m it halves (after the scale-down window).
        let mut a = Autoscaler::new(cpu_config(0.1), 1, t(0));
        let d = a.poll(t(0), 1, 0.2);
        assert_eq!(
            d,
            Decision {
                desired: 2,
                proposal: 2,
                reason: ScaleReason::Metric
            }
        );
        let mut a = Autoscaler::new(cpu_config(0.1), 4, t(0));
        let d = a.poll(t(0), 4, 0.05);
        // The HPA seeds its window with the current count at its first reconcile, so a new
        // autoscaler does not scale down at once either.
        assert_eq!((d.desired, d.proposal), (4, 2));
        assert_eq!(d.reason, ScaleReason::ScaleDownStabilized);
        assert_eq!(a.poll(t(300), 4, 0.05).desired, 2);
        // Lag: 1 replica, 20 records behind at 10 per replica: 2.
        let mut a = Autoscaler::new(AutoscalerConfig::lag(), 1, t(0));
        assert_eq!(a.poll(t(0), 1, 20.0).desired, 2);
    }

    #[test]
    fn a_ratio_within_tolerance_keeps_the_count() {
        // 10 replicas at 10 per replica: lag 90..=110 is within 10%; 89 and 111 are not.
        let fresh = || {
            let mut c = AutoscalerConfig::lag();
            c.scale_down.stabilization_window = Some(SimDuration::ZERO);
            Autoscaler::new(c, 10, t(0))
        };
        for (lag, want, reason) in [
            (90.0, 10, ScaleReason::WithinTolerance),
            (110.0, 10, ScaleReason::WithinTolerance),
            (100.0, 10, ScaleReason::WithinTolerance),
            (111.0, 12, ScaleReason::Metric),
            (89.0, 9, ScaleReason::Metric),
            (89.9, 9, ScaleReason::Metric), // lag is a count: 89
        ] {
            let d = fresh().poll(t(0), 10, lag);
            assert_eq!((d.desired, d.reason), (want, reason), "lag {lag}");
        }
        // The CPU path: target 0.5, 4 pods; 0.54 is within, 0.56 is not (ceil(1.12 * 4) = 5).
        let mut a = Autoscaler::new(cpu_config(0.5), 4, t(0));
        assert_eq!(a.poll(t(0), 4, 0.54).reason, ScaleReason::WithinTolerance);
        assert_eq!(a.poll(t(30), 4, 0.56).desired, 5);
        // Tolerance 0: any difference scales.
        let mut c = AutoscalerConfig::lag();
        c.tolerance = 0.0;
        let mut a = Autoscaler::new(c, 10, t(0));
        assert_eq!(a.poll(t(0), 10, 101.0).desired, 11);
    }

    #[test]
    fn a_dip_inside_the_scale_down_window_does_not_scale_down() {
        let mut a = Autoscaler::new(AutoscalerConfig::lag(), 4, t(0));
        // Steady at 4 (lag 40), a one-poll dip to lag 10 at 60 s, back to 40.
        let counts = run(&mut a, 0, 30, &[40.0, 40.0, 10.0, 40.0, 40.0]);
        assert_eq!(counts, vec![4, 4, 4, 4, 4]);
        // A sustained drop scales down only once the window holds nothing higher: the last
        // proposal of 4 was at 120 s, so at 420 s (cutoff 120 s, exclusive) it is gone.
        let mut counts = Vec::new();
        for s in (150..=450).step_by(30) {
            counts.push((s, a.poll(t(s), 4, 10.0)));
        }
        for &(s, d) in &counts {
            if s < 420 {
                assert_eq!((d.desired, d.proposal), (4, 1), "at {s} s");
                assert_eq!(d.reason, ScaleReason::ScaleDownStabilized);
            } else {
                assert_eq!(d.desired, 1, "at {s} s");
            }
        }
    }

    #[test]
    fn the_keps_stabilisation_example() {
        // KEP-853 "Stabilization before scaling down": window 600 s, at most 5 pods per 600 s,
        // one poll a minute from 10 replicas, recommendations 10, 9, 8, 9, 9, 8, 9, 8, 9, then
        // 8 (still 10), then 7 (the first falls out: max 9, so 10 -> 9).
        let mut c = AutoscalerConfig::new(lag(1));
        c.min_replicas = 1;
        c.tolerance = 0.0;
        c.scale_down = ScalingRules {
            stabilization_window: Some(SimDuration::from_secs(600)),
            policies: Some(vec![ScalingPolicy::Pods {
                value: 5,
                period: SimDuration::from_secs(600),
            }]),
            select_policy: None,
        };
        let mut a = Autoscaler::new(c, 10, t(0));
        let lags = [10.0, 9.0, 8.0, 9.0, 9.0, 8.0, 9.0, 8.0, 9.0, 8.0, 7.0];
        let counts = run(&mut a, 0, 60, &lags);
        assert_eq!(counts, vec![10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 9]);
    }

    #[test]
    fn scale_down_policies_follow_the_docs_example() {
        // "if there are 80 replicas and the target has to be scaled down to 10 replicas then
        // during the first step 8 replicas will be reduced. In the next iteration when the
        // number of replicas is 72, 10% of the pods is 7.2 but the number is rounded up to 8
        // ... When the number of replicas falls below 40 the first policy (Pods) is applied
        // and 4 replicas will be reduced at a time."
        let mut c = AutoscalerConfig::new(lag(1));
        c.min_replicas = 1;
        c.scale_down = ScalingRules {
            stabilization_window: Some(SimDuration::ZERO),
            policies: Some(vec![
                ScalingPolicy::Pods {
                    value: 4,
                    period: SimDuration::from_secs(60),
                },
                ScalingPolicy::Percent {
                    value: 10,
                    period: SimDuration::from_secs(60),
                },
            ]),
            select_policy: None,
        };
        let mut a = Autoscaler::new(c, 80, t(0));
        let counts = run(&mut a, 0, 60, &[10.0; 15]);
        assert_eq!(
            counts,
            vec![72, 64, 57, 51, 45, 40, 36, 32, 28, 24, 20, 16, 12, 10, 10]
        );
        // Within one period the change already made counts: a second poll 30 s after the
        // first may remove nothing more.
        let mut c2 = a.config().clone();
        c2.polling_interval = SimDuration::from_secs(30);
        let mut b = Autoscaler::new(c2, 80, t(0));
        let d = b.poll(t(0), 80, 10.0);
        assert_eq!((d.desired, d.reason), (72, ScaleReason::ScaleDownLimit));
        let d = b.poll(t(30), 72, 10.0);
        assert_eq!((d.desired, d.reason), (72, ScaleReason::ScaleDownLimit));
        assert_eq!(b.poll(t(60), 72, 10.0).desired, 64);
    }

    #[test]
    fn scale_up_is_limited_to_four_pods_or_double_per_fifteen_seconds() {
        // "There are 2 policies where 4 pods or a 100% of the currently running replicas may
        // at most be added every 15 seconds till the HPA reaches its steady state."
        let mut a = Autoscaler::new(AutoscalerConfig::lag(), 1, t(0));
        let d = a.poll(t(0), 1, 1_000.0);
        assert_eq!(
            d,
            Decision {
                desired: 5,
                proposal: 100,
                reason: ScaleReason::ScaleUpLimit
            }
        );
        let counts = run(&mut a, 15, 15, &[1_000.0; 6]);
        assert_eq!(counts, vec![10, 20, 40, 80, 100, 100]);
        // Within one period the first step's additions count against the next.
        let mut b = Autoscaler::new(AutoscalerConfig::lag(), 1, t(0));
        assert_eq!(b.poll(t(0), 1, 1_000.0).desired, 5);
        assert_eq!(b.poll(t(10), 5, 1_000.0).desired, 5);
        // `Min` picks the smaller step; `Disabled` never scales up.
        let mut c = AutoscalerConfig::lag();
        c.scale_up.select_policy = Some(SelectPolicy::Min);
        let mut m = Autoscaler::new(c.clone(), 10, t(0));
        assert_eq!(m.poll(t(0), 10, 1_000.0).desired, 14);
        c.scale_up.select_policy = Some(SelectPolicy::Disabled);
        let mut off = Autoscaler::new(c, 10, t(0));
        assert_eq!(off.poll(t(0), 10, 1_000.0).desired, 10);
    }

    #[test]
    fn a_scheduled_floor_is_a_second_metric_under_the_same_policies() {
        // CPU far below target proposes 1, the schedule 8: the larger wins, at the pace of
        // the default scale-up policies (max of +100% and +4 pods per 15 s).
        let mut a = Autoscaler::new(cpu_config(0.5), 2, t(0));
        let d = a.poll_with_floor(t(0), 2, 0.1, 8);
        assert_eq!(
            (d.desired, d.proposal, d.reason),
            (6, 8, ScaleReason::ScaleUpLimit)
        );
        let d = a.poll_with_floor(t(15), 6, 0.1, 8);
        assert_eq!(
            (d.desired, d.proposal, d.reason),
            (8, 8, ScaleReason::Metric)
        );
        // A metric above the floor wins over it: 8 pods at 0.75 against 0.5 want 12.
        let d = a.poll_with_floor(t(30), 8, 0.75, 8);
        assert_eq!((d.desired, d.reason), (12, ScaleReason::Metric));
        // The floor gone (0), the low metric's scale-down is held by the 300 s window.
        let d = a.poll_with_floor(t(45), 12, 0.1, 0);
        assert_eq!((d.desired, d.proposal), (12, 3));
        assert_eq!(d.reason, ScaleReason::ScaleDownStabilized);
        // Without a floor, `poll` decides exactly as `poll_with_floor(.., 0)`.
        let mut b = Autoscaler::new(cpu_config(0.5), 2, t(0));
        let mut c = Autoscaler::new(cpu_config(0.5), 2, t(0));
        for (i, m) in [0.1, 0.9, 0.9, 0.4, 0.2].into_iter().enumerate() {
            let now = t(15 * i as u64);
            let (rb, rc) = (b.replicas(), c.replicas());
            assert_eq!(b.poll(now, rb, m), c.poll_with_floor(now, rc, m, 0));
        }
        // On KEDA's path a floor is activity: it brings a group up from zero and keeps it.
        let mut k = Autoscaler::new(AutoscalerConfig::lag(), 0, t(0));
        assert_eq!(
            k.poll_with_floor(t(0), 0, 0.0, 3).reason,
            ScaleReason::Activated
        );
        assert_eq!(k.poll_with_floor(t(30), 1, 0.0, 3).desired, 3);
        assert_eq!(k.poll_with_floor(t(400), 3, 0.0, 3).desired, 3);
    }

    #[test]
    fn counts_are_clamped_to_min_and_max() {
        let mut c = AutoscalerConfig::lag();
        c.min_replicas = 2;
        c.max_replicas = 6;
        c.scale_down.stabilization_window = Some(SimDuration::ZERO);
        let mut a = Autoscaler::new(c.clone(), 4, t(0));
        let d = a.poll(t(0), 4, 10_000.0);
        assert_eq!((d.desired, d.reason), (6, ScaleReason::TooManyReplicas));
        let d = a.poll(t(30), 6, 0.0);
        assert_eq!((d.desired, d.reason), (2, ScaleReason::TooFewReplicas));
        // A count already out of range is brought back without looking at the metric.
        let mut above = Autoscaler::new(c.clone(), 9, t(0));
        let d = above.poll(t(0), 9, 10_000.0);
        assert_eq!((d.desired, d.reason), (6, ScaleReason::AboveMax));
        let mut below = Autoscaler::new(c.clone(), 0, t(0));
        let d = below.poll(t(0), 0, 0.0);
        assert_eq!((d.desired, d.reason), (2, ScaleReason::BelowMin));
        // Manual scaling is the next poll's starting point.
        below.set_replicas(20);
        assert_eq!(below.poll(t(30), 20, 30.0).reason, ScaleReason::AboveMax);
        assert_eq!(below.replicas(), 6);
    }

    #[test]
    fn the_kafka_scaler_caps_lag_at_the_partition_count() {
        let mut a = Autoscaler::new(AutoscalerConfig::lag(), 1, t(0));
        a.set_partitions(Some(3));
        let counts = run(&mut a, 0, 30, &[10_000.0; 3]);
        assert_eq!(counts, vec![3, 3, 3]);
        // The cap is on `lag / threshold` in integers: 39 / 10 = 3 is not above 3, so 39
        // passes uncapped and asks for ceil(3.9) = 4 consumers on 3 partitions, as in KEDA.
        let mut quirk = Autoscaler::new(AutoscalerConfig::lag(), 1, t(0));
        quirk.set_partitions(Some(3));
        assert_eq!(quirk.poll(t(0), 1, 39.0).desired, 4);
        let mut capped = Autoscaler::new(AutoscalerConfig::lag(), 1, t(0));
        capped.set_partitions(Some(3));
        // 40 / 10 = 4 is above 3: capped to 30, three consumers.
        assert_eq!(capped.poll(t(0), 1, 40.0).desired, 3);
    }

    #[test]
    fn idle_consumers_may_be_allowed() {
        let c = AutoscalerConfig::new(ScaleMetric::Lag {
            per_replica: 10,
            activation: 0,
            allow_idle_consumers: true,
        });
        let mut a = Autoscaler::new(c, 1, t(0));
        a.set_partitions(Some(3));
        assert_eq!(run(&mut a, 0, 30, &[10_000.0; 4]), vec![5, 10, 20, 40]);
    }

    #[test]
    fn keda_scales_to_zero_after_the_cooldown_and_back_on_activity() {
        let mut a = Autoscaler::new(AutoscalerConfig::lag(), 3, t(0));
        // Active: the HPA keeps 3 (lag 30).
        assert_eq!(a.poll(t(0), 3, 30.0).desired, 3);
        // Lag gone at 30 s: the HPA wants 1 (its minimum), held by the 300 s window.
        let d = a.poll(t(30), 3, 0.0);
        assert_eq!((d.desired, d.proposal), (3, 0));
        // Last active at 0 s: at 300 s the cooldown has not passed (0 + 300 < 300 is false).
        assert_eq!(a.poll(t(300), 3, 0.0).desired, 1);
        let d = a.poll(SimTime::from_nanos(300_000_000_001), 1, 0.0);
        assert_eq!((d.desired, d.reason), (0, ScaleReason::CooledDown));
        let d = a.poll(t(330), 0, 0.0);
        assert_eq!((d.desired, d.reason), (0, ScaleReason::Idle));
        // Any lag above the activation threshold (0) brings one replica back, then the HPA.
        let d = a.poll(t(360), 0, 1.0);
        assert_eq!((d.desired, d.reason), (1, ScaleReason::Activated));
        assert_eq!(a.poll(t(390), 1, 45.0).desired, 5);
        // A new autoscaler whose trigger was never active scales to zero on its first poll
        // after creation ("LastActiveTime == nil && CreationTimestamp < now").
        let mut fresh = Autoscaler::new(AutoscalerConfig::lag(), 2, t(10));
        assert_eq!(
            fresh.poll(t(10), 2, 0.0).reason,
            ScaleReason::ScaleDownStabilized
        );
        assert_eq!(fresh.poll(t(40), 2, 0.0).reason, ScaleReason::CooledDown);
        // An activation threshold: lag of 5 is not activity above 5.
        let mut c = AutoscalerConfig::lag();
        c.metric = ScaleMetric::Lag {
            per_replica: 10,
            activation: 5,
            allow_idle_consumers: false,
        };
        let mut gated = Autoscaler::new(c, 0, t(0));
        assert_eq!(gated.poll(t(0), 0, 5.0).reason, ScaleReason::Idle);
        assert_eq!(gated.poll(t(30), 0, 6.0).reason, ScaleReason::Activated);
    }

    #[test]
    fn unready_pods_dampen_a_cpu_scale_up() {
        // 10 replicas, 5 ready at 0.8 against 0.5: ratio 1.6, but the 5 starting pods count
        // as 0, so the ratio is 0.8 * 5 / 10 / 0.5 = 0.8: that reverses the direction, so no
        // scale (and no scale down either: this is a scale-up calculation).
        let mut a = Autoscaler::new(cpu_config(0.5), 10, t(0));
        let d = a.poll(t(0), 5, 0.8);
        assert_eq!((d.desired, d.reason), (10, ScaleReason::WithinTolerance));
        // 1.05 per ready pod: ratio 2.1, dampened to 1.05: within the tolerance.
        assert_eq!(a.poll(t(15), 5, 1.05).reason, ScaleReason::WithinTolerance);
        // At 1.5 per ready pod: new ratio 1.5, ceil(1.5 * 10) = 15.
        assert_eq!(a.poll(t(30), 5, 1.5).desired, 15);
        // No ready pod: nothing to measure.
        let d = a.poll(t(60), 0, 3.0);
        assert_eq!((d.desired, d.reason), (15, ScaleReason::NoMetrics));
        // Below target the unready pods are ignored: ceil(0.2 / 0.5 * 5) = 2 (after the
        // window; here the window holds it).
        assert_eq!(a.poll(t(90), 5, 0.2).proposal, 2);
    }

    fn pods(ready: u32, per_pod: f64, unready: u32, missing: u32) -> PodMetrics {
        PodMetrics {
            ready,
            sum: per_pod * f64::from(ready),
            unready,
            missing,
        }
    }

    #[test]
    fn missing_pods_count_at_the_request_down_and_at_nothing_up() {
        // 10 replicas against 0.5: 8 sampled at 0.2 (ratio 0.4), 2 running without a sample.
        // Scaling down, the 2 count at the target: (1.6 + 1.0) / 10 / 0.5 = 0.52, so
        // ceil(5.2) = 6, where the 8 alone would propose ceil(0.4 * 8) = 4.
        let mut a = Autoscaler::new(cpu_config(0.5), 10, t(0));
        let d = a.poll_pods(t(0), pods(8, 0.2, 0, 2));
        assert_eq!(
            (d.proposal, d.reason),
            (6, ScaleReason::ScaleDownStabilized)
        );
        let mut alone = Autoscaler::new(cpu_config(0.5), 10, t(0));
        assert_eq!(alone.poll_pods(t(0), pods(8, 0.2, 0, 0)).proposal, 4);
        // Unready pods on a scale down are left out: the same 4.
        let mut unready = Autoscaler::new(cpu_config(0.5), 10, t(0));
        assert_eq!(unready.poll_pods(t(0), pods(8, 0.2, 2, 0)).proposal, 4);
        // For utilisation a missing pod is at 100% of its request, not at the target:
        // (1.6 + 2.0) / 10 / 0.5 = 0.72, ceil(7.2) = 8.
        let util = AutoscalerConfig {
            min_replicas: 1,
            ..AutoscalerConfig::new(ScaleMetric::Utilisation { target: 0.5 })
        };
        let mut u = Autoscaler::new(util.clone(), 10, t(0));
        assert_eq!(u.poll_pods(t(0), pods(8, 0.2, 0, 2)).proposal, 8);
        // Scaling up, missing pods count at nothing: 8 at 0.7 (ratio 1.4) over 10 pods is
        // 1.12, ceil(11.2) = 12.
        let mut up = Autoscaler::new(cpu_config(0.5), 10, t(0));
        let d = up.poll_pods(t(0), pods(8, 0.7, 0, 2));
        assert_eq!((d.desired, d.reason), (12, ScaleReason::Metric));
        // ... and a recomputed ratio that reverses keeps the count: 8 at 0.56 (ratio 1.12)
        // over 10 is 0.896. Without the 2 the 8 would have proposed ceil(8.96) = 9, a scale
        // down out of a scale-up reading.
        let mut flip = Autoscaler::new(cpu_config(0.5), 10, t(0));
        let d = flip.poll_pods(t(0), pods(8, 0.56, 0, 2));
        assert_eq!((d.proposal, d.reason), (10, ScaleReason::WithinTolerance));
        // The same reversal downwards: 5 at 0.4 of a 0.5 utilisation (ratio 0.8) and 5
        // missing at 100%: (2 + 5) / 10 / 0.5 = 1.4, so no change rather than a scale up.
        let mut down_flip = Autoscaler::new(util, 10, t(0));
        let d = down_flip.poll_pods(t(0), pods(5, 0.4, 0, 5));
        assert_eq!((d.proposal, d.reason), (10, ScaleReason::WithinTolerance));
        // Missing and unready together on a scale up both count at nothing: 4 at 1.0 (ratio
        // 2), 3 unready, 3 missing: 4 / 10 / 0.5 = 0.8 reverses; at 1.5 each, 6 / 10 / 0.5 =
        // 1.2 and ceil(12) = 12.
        let mut both = Autoscaler::new(cpu_config(0.5), 10, t(0));
        assert_eq!(
            both.poll_pods(t(0), pods(4, 1.0, 3, 3)).reason,
            ScaleReason::WithinTolerance
        );
        assert_eq!(both.poll_pods(t(15), pods(4, 1.5, 3, 3)).desired, 12);
        // No pod sampled: nothing to measure, whatever the others.
        let d = both.poll_pods(t(30), pods(0, 0.0, 4, 8));
        assert_eq!((d.desired, d.reason), (12, ScaleReason::NoMetrics));
    }

    #[test]
    fn poll_pods_agrees_with_poll_when_nothing_is_missing() {
        // poll(ready, mean) is poll_pods with the rest unready, for every reading.
        let mut rng = crate::engine::rng::stream(5, "autoscale-pods");
        use rand::RngExt;
        let mut a = Autoscaler::new(cpu_config(0.5), 6, t(0));
        let mut b = a.clone();
        for i in 0..200u64 {
            let current = a.replicas();
            let ready = rng.random_range(0..=current);
            let mean: f64 = rng.random_range(0.0..1.5);
            let x = a.poll(t(15 * i), ready, mean);
            let y = b.poll_pods(t(15 * i), pods(ready, mean, current - ready, 0));
            assert_eq!(x, y, "poll {i}");
        }
        // For lag, the sum is the lag.
        let mut l = Autoscaler::new(AutoscalerConfig::lag(), 2, t(0));
        let mut m = l.clone();
        assert_eq!(
            l.poll(t(0), 2, 95.0),
            m.poll_pods(
                t(0),
                PodMetrics {
                    sum: 95.0,
                    ..PodMetrics::default()
                }
            )
        );
    }

    #[test]
    fn ceil_exact_ignores_float_noise_only() {
        // 7 replicas' worth of load measured on 25 pods, times 25 pods.
        let x: f64 = (0.5 * 7.0 / 25.0) / 0.5 * 25.0;
        assert_eq!(x, 7.000_000_000_000_001);
        assert_eq!(x.ceil(), 8.0);
        assert_eq!(ceil_exact(x), 7);
        assert_eq!(ceil_exact(3.000_001), 4);
        assert_eq!(ceil_exact(2.0), 2);
        assert_eq!(ceil_exact(0.0), 0);
        assert_eq!(ceil_exact(0.1), 1);
        assert_eq!(ceil_exact(f64::INFINITY), u32::MAX);
        assert_eq!(ceil_exact(1e12), u32::MAX);
    }

    /// With a constant load of exactly `n` replicas' worth, the controller converges and
    /// stays: to exactly `n` with no tolerance, and with the default tolerance to a count `c`
    /// with `n / c` within it (the HPA stops anywhere in that band).
    #[test]
    fn a_constant_metric_at_target_converges_and_stays() {
        use rand::RngExt;
        let mut rng = crate::engine::rng::stream(3, "autoscale");
        for case in 0..300 {
            let n: u32 = rng.random_range(1..=60);
            let start: u32 = rng.random_range(1..=100);
            let tolerance = if case % 2 == 0 {
                0.0
            } else {
                DEFAULT_TOLERANCE
            };
            let per_pod = case % 3 == 0;
            let mut c = if per_pod {
                cpu_config(0.5)
            } else {
                AutoscalerConfig::new(lag(25))
            };
            c.tolerance = tolerance;
            let mut a = Autoscaler::new(c, start, t(0));
            let mut history = Vec::new();
            for i in 0..60u64 {
                let replicas = a.replicas();
                let metric = if per_pod {
                    // A total load of n * target spread over the ready pods.
                    0.5 * f64::from(n) / f64::from(replicas)
                } else {
                    25.0 * f64::from(n)
                };
                history.push(a.poll(t(30 * i), replicas, metric).desired);
            }
            let last = *history.last().expect("polled");
            // Converged within 30 minutes (the 5 min window plus the up-scaling steps) and
            // stayed for the last half hour.
            assert!(
                history[30..].iter().all(|&c| c == last),
                "case {case}: n {n} from {start}: {history:?}"
            );
            if tolerance == 0.0 {
                assert_eq!(last, n, "case {case}: from {start}: {history:?}");
            } else {
                let ratio = f64::from(n) / f64::from(last);
                assert!(
                    (1.0 - tolerance..=1.0 + tolerance).contains(&ratio),
                    "case {case}: n {n} settled at {last}"
                );
            }
        }
    }

    #[test]
    fn configs_parse_and_validate() {
        let c: AutoscalerConfig = ron::from_str(
            r#"(metric: Lag(per_replica: 100, allow_idle_consumers: true), max_replicas: 12,
                polling_interval: "15s",
                scale_down: (stabilization_window: Some("1m"),
                             policies: Some([Pods(value: 2, period: "30s")])))"#,
        )
        .expect("parses");
        assert_eq!(
            c.metric,
            ScaleMetric::Lag {
                per_replica: 100,
                activation: 0,
                allow_idle_consumers: true
            }
        );
        assert_eq!(c.max_replicas, 12);
        assert_eq!(c.polling_interval, SimDuration::from_secs(15));
        let down = c.scale_down.resolve(Direction::Down);
        assert_eq!(down.window, SimDuration::from_secs(60));
        assert_eq!(down.select, SelectPolicy::Max);
        // The up direction kept every default.
        assert_eq!(
            c.scale_up.resolve(Direction::Up),
            ScalingRules::default().resolve(Direction::Up)
        );
        assert!(c.validate().is_ok());
        let c: AutoscalerConfig =
            ron::from_str("(metric: Lag())").expect("parses with every default");
        assert_eq!(c, AutoscalerConfig::lag());
        let c: AutoscalerConfig =
            ron::from_str("(metric: Utilisation(target: 0.7), min_replicas: 1)").expect("parses");
        assert!(c.validate().is_ok());
        assert!(ron::from_str::<AutoscalerConfig>("(metric: Lag(), polling: \"1s\")").is_err());
        assert!(ron::from_str::<AutoscalerConfig>("(metric: Lag(threshold: 5))").is_err());

        let field = |c: AutoscalerConfig| c.validate().unwrap_err().field().map(str::to_string);
        let base = AutoscalerConfig::lag();
        let with = |f: &dyn Fn(&mut AutoscalerConfig)| {
            let mut c = base.clone();
            f(&mut c);
            field(c)
        };
        assert_eq!(
            with(&|c| c.metric = lag(0)).as_deref(),
            Some("metric.Lag.per_replica")
        );
        assert_eq!(
            with(&|c| c.metric = ScaleMetric::Cpu { target: 0.5 }).as_deref(),
            Some("min_replicas")
        );
        assert_eq!(
            with(&|c| {
                c.metric = ScaleMetric::Cpu { target: -1.0 };
                c.min_replicas = 1;
            })
            .as_deref(),
            Some("metric.Cpu.target")
        );
        assert_eq!(
            with(&|c| c.polling_interval = SimDuration::ZERO).as_deref(),
            Some("polling_interval")
        );
        assert_eq!(
            with(&|c| c.max_replicas = 0).as_deref(),
            Some("max_replicas")
        );
        assert_eq!(
            with(&|c| {
                c.min_replicas = 5;
                c.max_replicas = 4;
            })
            .as_deref(),
            Some("max_replicas")
        );
        for bad in [-0.1, 1.0, f64::NAN] {
            assert_eq!(with(&|c| c.tolerance = bad).as_deref(), Some("tolerance"));
        }
        assert_eq!(
            with(&|c| c.scale_up.stabilization_window = Some(SimDuration::from_secs(3_601)))
                .as_deref(),
            Some("scale_up.stabilization_window")
        );
        assert_eq!(
            with(&|c| c.scale_down.policies = Some(vec![])).as_deref(),
            Some("scale_down.policies")
        );
        assert_eq!(
            with(&|c| {
                c.scale_down.policies = Some(vec![ScalingPolicy::Pods {
                    value: 0,
                    period: SimDuration::from_secs(1),
                }])
            })
            .as_deref(),
            Some("scale_down.policies[0].value")
        );
        assert_eq!(
            with(&|c| {
                c.scale_up.policies = Some(vec![ScalingPolicy::Percent {
                    value: 50,
                    period: SimDuration::from_secs(1_801),
                }])
            })
            .as_deref(),
            Some("scale_up.policies[0].period")
        );
    }

    #[test]
    fn decisions_are_deterministic() {
        let drive = || {
            let mut a = Autoscaler::new(AutoscalerConfig::lag(), 1, t(0));
            a.set_partitions(Some(24));
            let lags = [0.0, 50.0, 400.0, 90.0, 3.0, 0.0, 0.0, 700.0, 10.0, 0.0];
            (0..100)
                .map(|i| {
                    let r = a.replicas();
                    a.poll(
                        t(17 * i),
                        r.saturating_sub(1),
                        lags[i as usize % lags.len()],
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(drive(), drive());
        assert_eq!(
            Autoscaler::new(AutoscalerConfig::lag(), 1, t(0)).next_poll(t(5)),
            t(35)
        );
    }

    #[test]
    fn pod_slots_fill_from_the_lowest_empty_from_the_newest_and_drop_stale_timers() {
        let mut pods = Pods::new(4, 2);
        assert_eq!((pods.created(), pods.ready()), (2, 2));
        assert_eq!(pods.free(5), vec![2, 3]);
        let seq = pods.start(2);
        assert_eq!((pods.created(), pods.ready()), (3, 2));
        // Removed before it came up: its timer is stale, and so is one from an earlier start.
        assert_eq!(pods.remove(2), Pod::Starting);
        assert_eq!(pods.started(seq), None);
        let again = pods.start(2);
        assert_eq!(pods.started(seq), None);
        assert_eq!(pods.started(again), Some(2));
        assert_eq!(pods.started(again), None, "a slot becomes ready once");
        assert_eq!(pods.newest(2, |_| true), vec![2, 1]);
        assert_eq!(pods.newest(2, |i| i != 2), vec![1, 0]);
        assert_eq!(pods.remove(1), Pod::Running);
        assert_eq!((pods.created(), pods.ready(), pods[1]), (2, 2, Pod::Absent));
    }
}
