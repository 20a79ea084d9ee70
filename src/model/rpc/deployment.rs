//! A service as it is deployed on Kubernetes: a Deployment of N identical [`Service`] pods
//! (`<name>-0`, `<name>-1`, ...), the Service object in front of them (a [`LoadBalancer`]
//! named `<name>` that sends traffic only to the pods in its Endpoints), and a Horizontal Pod
//! Autoscaler that changes N. It is what turns a traffic spike into errors when capacity
//! arrives late (catalogue S6): the autoscaler sees the load only at its next poll, and each
//! pod it asks for serves nothing until its node and container are up.
//!
//! It is one component kind, `Deployment`, rather than `replicas:` on a `LoadBalancer`,
//! because the three parts are configured together and own different things: the pods' config
//! is a whole [`ServiceConfig`], the balancer's routing is about endpoints the controller
//! decides, and the autoscaler needs both (it measures the pods and changes the endpoints).
//! A Kubernetes user writes them as three objects; here they are three fields of one.
//!
//! - **Pods.** Every pod the deployment can ever have (`max(replicas, max_replicas)`, plus
//!   the rollout's surge) is spawned at the start, so a fault can name any of them; those not
//!   running are simply not endpoints and get no traffic. A scale-up provisions pods in the
//!   lowest free slots: the controller kills the slot's process and the engine starts it
//!   afresh `provisioning` later (node, image pull, start: the delay S6 is about), so a new
//!   pod starts cold then (its `warmup`, if any, runs from its start, not from the start of
//!   the run); an instant later it is added to the endpoints, as the endpoints controller adds
//!   a pod once it is running and ready. A scale-down removes the highest slots from the
//!   endpoints at once; the requests they already hold finish and are answered (a terminating
//!   pod's grace period).
//! - **Routing.** The balancer is an ordinary [`LoadBalancer`] over every pod, restricted to
//!   the endpoint set; with `slow_start`, a pod added to it ramps up as Envoy's slow start
//!   ramps a new host (and an ALB a newly registered target); with `health`, failing pods
//!   are ejected as usual (a crashed pod is found that way, as a readiness probe finds it).
//! - **Autoscaling.** Every `polling_interval` the controller reads each ready pod's CPU as
//!   metrics-server would: the pod's workers in their CPU work, averaged over the time since
//!   the last poll (`cpu_workers`; one such worker is one core busy). A worker that holds a
//!   request while it waits on a downstream call, a connection pool, a retry backoff or the
//!   cache is blocked on I/O and uses no CPU, as a thread blocked in a socket read does, so a
//!   pod whose dependency has slowed looks idle to the HPA however full its workers are.
//!   `Cpu(target)` compares the mean cores per pod with `target` cores; `Utilisation(target)`
//!   the mean CPU share of the pod's `workers` (its CPU request, one core per worker). Pods
//!   ready for less than [`MIN_METRIC_WINDOW`] have no measurement yet and count as not
//!   ready (so as using nothing when scaling up, as the HPA does). The measurement feeds the
//!   pure [`Autoscaler`] (the HPA's algorithm: tolerance, stabilisation windows, rate
//!   policies, min and max); `Lag` is the consumer groups' metric and is refused.
//! - **Scheduled scaling** (`schedule`): between `from` and `until` the count is at least
//!   `replicas`, KEDA's cron scaler. It is a second metric whose proposal is that count, and
//!   the HPA takes the larger proposal, so the step still goes through the scale-up policies.
//!   This is pre-scaling before a known peak.
//! - **Rolling restarts** (`rollout`, [`ServiceRollout`]): at `at`, every pod that exists
//!   then is replaced by a new one, under the Deployment `RollingUpdate` strategy's two
//!   bounds, resolved against the desired count D as Kubernetes resolves them: at most
//!   `D + max_surge` pods exist (terminating pods aside), and at least `D - max_unavailable`
//!   are available (ready, and new ones ready for `min_ready`). Each step is the deployment
//!   controller's: create new pods while the surge allows (in a free slot, or in the slot of
//!   an old pod being terminated, which then restarts in place), then terminate old pods
//!   (the highest slot first, a pod still starting before a running one) while the
//!   availability bound allows. A terminating pod leaves the endpoints at once (no new
//!   traffic), finishes what it holds for up to `termination_grace`, exits as soon as it is
//!   idle, and is killed at the end of the grace with whatever it still holds: the balancer
//!   answers those requests 503 (their connections are reset). A pod restarted in place starts
//!   `restart_time` later (default the `provisioning` of a new pod), cold. The HPA keeps
//!   working during a rollout, as it does on Kubernetes: the pods it adds are new (created
//!   from the new template, never restarted), the pods it removes are not restarted either,
//!   and the bounds follow its count.
//!
//! ```ron
//! "api": Deployment(
//!     replicas: 4,
//!     service: (workers: 8, kinds: [(name: "page", service: Exp(mean: "20ms"))]),
//!     // One pod at a time, never below 4 ready: surge 1, unavailable 0.
//!     rollout: Some((at: "5m", max_surge: 1, max_unavailable: 0, min_ready: "10s")),
//! ),
//! ```
//!
//! `scenarios/service_rollout.ron` shows a rollout at Kubernetes' defaults refusing requests
//! on a deployment sized at 85%, and two fixes (`max_unavailable: 0`, a pod of headroom).
//!
//! What is left out: a crashed pod is not replaced by the deployment (a fault's restart
//! brings it back); a pod is one process (slots reuse the same actor name, where Kubernetes
//! gives a new pod a new name); and a scale-up that reuses a slot scaled down moments before
//! cuts what that pod still held (the slot's process is restarted).

use std::marker::PhantomData;

use serde::{Deserialize, Serialize};

use super::{
    ConfigError, HealthCheck, KindRef, LoadBalancer, LoadBalancerConfig, Policy, Rpc, Service,
    ServiceConfig, SlowStart, Tick, Validate, compile,
};
use crate::actor::{Actor, ActorId, Ctx};
use crate::dist::{Dist, Sampler, Scalar};
use crate::engine::time::{SimDuration, SimTime};
use crate::metrics::{CounterId, GaugeId};
use crate::model::Carry;
use crate::model::autoscale::{Autoscaler, AutoscalerConfig, Pod, Pods, ScaleMetric};

/// How long a new pod takes to be ready by default: 30 s, the HPA's own allowance for it,
/// `--horizontal-pod-autoscaler-initial-readiness-delay` (default 30 s, Kubernetes docs,
/// kube-controller-manager): a pod on a node that already has room and the image. A pod that
/// needs a new node waits for the cluster autoscaler and the VM too, minutes rather than
/// seconds; scenarios set that.
pub const DEFAULT_PROVISIONING: SimDuration = SimDuration::from_secs(30);

/// The shortest time a pod must have been ready before its CPU is measured: 15 s,
/// metrics-server's `--metric-resolution` as its Helm chart and the kubernetes-sigs manifests
/// set it ("The resolution at which metrics-server will retain metrics", `15s`). A pod ready
/// for less has no usage sample yet, and the HPA counts it as not ready.
pub const MIN_METRIC_WINDOW: SimDuration = SimDuration::from_secs(15);

/// The balancing part of a [`DeploymentConfig`]: a [`LoadBalancerConfig`] without the
/// backends, which are the deployment's pods.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Balancing {
    /// Default `RoundRobin` (ingress-nginx and Envoy's default, as the `rpc/load-balancer`
    /// model).
    #[serde(default = "default_policy")]
    pub policy: Policy,
    #[serde(default)]
    pub health: Option<HealthCheck>,
    #[serde(default)]
    pub slow_start: Option<SlowStart>,
    #[serde(default)]
    pub max_outstanding: Option<u32>,
}

fn default_policy() -> Policy {
    Policy::RoundRobin
}

impl Default for Balancing {
    fn default() -> Self {
        Balancing {
            policy: Policy::RoundRobin,
            health: None,
            slow_start: None,
            max_outstanding: None,
        }
    }
}

/// A scheduled minimum: from `from` until `until` at least `replicas` pods (KEDA's cron
/// scaler: `start`, `end`, `desiredReplicas`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduledScale {
    pub from: SimTime,
    pub until: SimTime,
    pub replicas: u32,
}

/// A pod count or a share of the desired count, Kubernetes' `IntOrString` as the rolling
/// update's bounds take it: `1` or `"25%"`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum IntOrPercent {
    Count(u32),
    /// `"<n>%"`, n a whole number.
    Percent(String),
}

impl IntOrPercent {
    /// The percentage, if this is one; an error naming `field` if it does not parse.
    fn percent(&self, field: &str) -> Result<Option<u32>, ConfigError> {
        let IntOrPercent::Percent(p) = self else {
            return Ok(None);
        };
        let n = p
            .strip_suffix('%')
            .and_then(|n| n.trim().parse::<u32>().ok());
        match n {
            Some(n) => Ok(Some(n)),
            None => Err(ConfigError::Invalid {
                field: field.into(),
                reason: format!("`{p}` is neither a pod count (1) nor a percentage (\"25%\")"),
            }),
        }
    }

    /// The count against `desired` pods, a percentage rounded up or down as Kubernetes'
    /// `GetScaledValueFromIntOrPercent` does (validated first, so it parses).
    pub fn resolve(&self, desired: u32, round_up: bool) -> u32 {
        match self.percent("").ok().flatten() {
            None => match self {
                IntOrPercent::Count(n) => *n,
                IntOrPercent::Percent(_) => 0,
            },
            Some(p) => {
                let scaled = u64::from(p) * u64::from(desired);
                let n = if round_up {
                    scaled.div_ceil(100)
                } else {
                    scaled / 100
                };
                u32::try_from(n).unwrap_or(u32::MAX)
            }
        }
    }

    fn is_zero(&self) -> bool {
        match self {
            IntOrPercent::Count(n) => *n == 0,
            IntOrPercent::Percent(_) => self.percent("").ok().flatten() == Some(0),
        }
    }
}

/// A rolling restart of the deployment's pods: Kubernetes' Deployment `RollingUpdate`
/// strategy (`maxSurge`, `maxUnavailable`, `minReadySeconds`) with the pod's termination
/// (`terminationGracePeriodSeconds`). See the module docs for the steps.
///
/// One at a time, never below the desired count: `max_surge: 1, max_unavailable: 0` (a new
/// pod first, then an old one goes). One at a time with no spare pod: `max_surge: 0,
/// max_unavailable: 1` (an old pod goes, then its replacement starts). The defaults are
/// Kubernetes' (25% each), which at 4 pods is one of each, two pods in flight at once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceRollout {
    /// When it starts (`kubectl rollout restart`, or a new image).
    pub at: SimTime,
    /// Pods beyond the desired count that may exist during the rollout: a count, or a share
    /// of the desired count rounded up. Default `"25%"` (Kubernetes: "Defaults to 25%.
    /// ... Absolute number is calculated from percentage by rounding up.", apps/v1
    /// RollingUpdateDeployment). The deployment spawns that many more pod slots.
    #[serde(default = "default_quarter")]
    pub max_surge: IntOrPercent,
    /// Pods that may be unavailable during the rollout: a count, or a share of the desired
    /// count rounded down; at most 100%. Default `"25%"` (same source: "rounding down").
    /// Not 0 when `max_surge` is 0 (Kubernetes refuses it: nothing could move). If both
    /// resolve to 0 through rounding, 1 pod may be unavailable, as Kubernetes'
    /// `ResolveFenceposts` decides.
    #[serde(default = "default_quarter")]
    pub max_unavailable: IntOrPercent,
    /// How long a terminating pod may finish its requests before it is killed:
    /// `terminationGracePeriodSeconds`, default 30 s (Kubernetes' default). 0 kills at once.
    #[serde(default = "default_termination_grace")]
    pub termination_grace: SimDuration,
    /// How long a new pod must be ready before it counts as available: `minReadySeconds`,
    /// default 0 (Kubernetes' default).
    #[serde(default)]
    pub min_ready: SimDuration,
    /// From the kill of a pod restarted in place until it runs again; default None, the
    /// deployment's `provisioning` (a new pod of the new ReplicaSet is scheduled, pulls its
    /// image and starts like any new pod).
    #[serde(default)]
    pub restart_time: Option<Dist>,
}

fn default_quarter() -> IntOrPercent {
    IntOrPercent::Percent("25%".into())
}

/// `terminationGracePeriodSeconds`' default, 30 s ("Defaults to 30 seconds", Kubernetes
/// PodSpec reference).
pub const DEFAULT_TERMINATION_GRACE: SimDuration = SimDuration::from_secs(30);

fn default_termination_grace() -> SimDuration {
    DEFAULT_TERMINATION_GRACE
}

impl ServiceRollout {
    /// The two bounds at `desired` pods, `(max surge, max unavailable)`, as Kubernetes'
    /// `ResolveFenceposts` computes them (both 0 through rounding: one may be unavailable).
    pub fn fenceposts(&self, desired: u32) -> (u32, u32) {
        let surge = self.max_surge.resolve(desired, true);
        let unavailable = self.max_unavailable.resolve(desired, false);
        if surge == 0 && unavailable == 0 {
            (0, 1)
        } else {
            (surge, unavailable)
        }
    }
}

impl Validate for ServiceRollout {
    fn validate(&self) -> Result<(), ConfigError> {
        self.max_surge.percent("max_surge")?;
        if let Some(p) = self.max_unavailable.percent("max_unavailable")?
            && p > 100
        {
            return Err(ConfigError::Invalid {
                field: "max_unavailable".into(),
                reason: format!("{p}% is more than every pod (at most 100%)"),
            });
        }
        if self.max_surge.is_zero() && self.max_unavailable.is_zero() {
            return Err(ConfigError::Invalid {
                field: "max_unavailable".into(),
                reason: "may not be 0 when max_surge is 0: no pod could be replaced \
                         (Kubernetes refuses it too)"
                    .into(),
            });
        }
        if let Some(d) = &self.restart_time
            && !compile("restart_time", d)?.dist().is_duration()
        {
            return Err(ConfigError::Invalid {
                field: "restart_time".into(),
                reason: "expected a duration distribution".into(),
            });
        }
        Ok(())
    }
}

/// A deployed service: `(replicas: 4, service: (workers: 8, kinds: [...]), autoscaler:
/// Some((metric: Utilisation(target: 0.7), min_replicas: 4, max_replicas: 40)))`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentConfig {
    /// Pods running at the start, >= 1.
    pub replicas: u32,
    /// What every pod runs.
    pub service: ServiceConfig,
    /// How the Service object routes to the endpoints. Default round robin, no health checks.
    #[serde(default)]
    pub balancer: Balancing,
    /// Scales the pods on `Cpu` or `Utilisation`; default None (a fixed count).
    #[serde(default)]
    pub autoscaler: Option<AutoscalerConfig>,
    /// From a pod's creation until it is ready. Default `Const("30s")`.
    #[serde(default = "default_provisioning")]
    pub provisioning: Dist,
    /// Scheduled minimums (needs `autoscaler`); default none.
    #[serde(default)]
    pub schedule: Vec<ScheduledScale>,
    /// A rolling restart of the pods; default None.
    #[serde(default)]
    pub rollout: Option<ServiceRollout>,
}

fn default_provisioning() -> Dist {
    Dist::Const(Scalar::duration(DEFAULT_PROVISIONING))
}

/// The pod name of replica `i`: `<name>-<i>`.
pub fn replica_name(name: &str, i: u32) -> String {
    format!("{name}-{i}")
}

impl DeploymentConfig {
    /// How many pods the deployment can ever have: its slots. The rollout's surge at the
    /// largest count needs that many more (the surge grows with the count, so that is the
    /// most it needs).
    pub fn slots(&self) -> u32 {
        let base = self.scaled_slots();
        let surge = self.rollout.as_ref().map_or(0, |r| r.fenceposts(base).0);
        base.saturating_add(surge)
    }

    /// The most pods the desired count can reach: `max(replicas, max_replicas)`.
    pub fn scaled_slots(&self) -> u32 {
        let max = self.autoscaler.as_ref().map_or(0, |a| a.max_replicas);
        self.replicas.max(max)
    }

    /// The balancer's config over the pods of the deployment `name`, with the health probe's
    /// kind resolved against the pods' kinds.
    pub fn balancer_config(&self, name: &str) -> Result<LoadBalancerConfig, ConfigError> {
        let backends = (0..self.slots()).map(|i| replica_name(name, i)).collect();
        let mut c = LoadBalancerConfig::new(backends, self.balancer.policy);
        c.health = self.balancer.health.clone();
        c.slow_start = self.balancer.slow_start.clone();
        c.max_outstanding = self.balancer.max_outstanding;
        if let Some(h) = &mut c.health {
            let names = self.service.kind_names();
            let i = h
                .kind
                .resolve(&names)
                .map_err(|reason| ConfigError::Invalid {
                    field: "balancer.health.kind".into(),
                    reason,
                })?;
            h.kind = KindRef::Index(i);
        }
        Ok(c)
    }

    /// The actors the pods call, with their field paths.
    pub fn targets(&self) -> Vec<(String, &str)> {
        let mut t = self.service.targets();
        for (field, _) in &mut t {
            *field = format!("service.{field}");
        }
        t
    }

    /// The pods' request-kind references (their downstream calls).
    pub fn kind_refs_mut(&mut self) -> Vec<(String, String, &mut KindRef)> {
        let mut refs = self.service.kind_refs_mut();
        for (field, _, _) in &mut refs {
            *field = format!("service.{field}");
        }
        refs
    }
}

impl Validate for DeploymentConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        crate::model::rpc::nonzero("replicas", u64::from(self.replicas))?;
        self.service.validate().map_err(|e| e.within("service"))?;
        if let Some(a) = &self.autoscaler {
            if let ScaleMetric::Lag { .. } = a.metric {
                return Err(ConfigError::Invalid {
                    field: "autoscaler.metric".into(),
                    reason: "Lag is a consumer group's metric; a service scales on \
                             Cpu(target: cores) or Utilisation(target: CPU share)"
                        .into(),
                });
            }
            a.validate().map_err(|e| e.within("autoscaler"))?;
        }
        let d = compile("provisioning", &self.provisioning)?;
        if !d.dist().is_duration() {
            return Err(ConfigError::Invalid {
                field: "provisioning".into(),
                reason: "expected a duration distribution".into(),
            });
        }
        if let Some(r) = &self.rollout {
            r.validate().map_err(|e| e.within("rollout"))?;
        }
        // The balancer's own rules, about the fields a scenario writes (`balancer.health`).
        let lb = self.balancer_config("pod")?;
        lb.validate().map_err(|e| e.within("balancer"))?;
        for (i, s) in self.schedule.iter().enumerate() {
            let Some(a) = &self.autoscaler else {
                return Err(ConfigError::Invalid {
                    field: "schedule".into(),
                    reason: "a schedule raises the autoscaler's count: add an autoscaler".into(),
                });
            };
            if s.until <= s.from {
                return Err(ConfigError::Invalid {
                    field: format!("schedule[{i}].until"),
                    reason: format!("{} is not after `from` ({})", s.until, s.from),
                });
            }
            if s.replicas == 0 || s.replicas > a.max_replicas {
                return Err(ConfigError::Invalid {
                    field: format!("schedule[{i}].replicas"),
                    reason: format!(
                        "{} must be in [1, autoscaler.max_replicas = {}]",
                        s.replicas, a.max_replicas
                    ),
                });
            }
        }
        Ok(())
    }
}

/// The controller's timer kinds, in `Tick::Deployment { kind }`.
const POLL: u32 = 0;
/// `seq` is `slot << 32 | the slot's epoch`.
const PROVISIONED: u32 = 1;
/// The rollout starts.
const ROLLOUT: u32 = 2;
/// A terminating pod's grace ends; `seq` as for `PROVISIONED`.
const GRACE: u32 = 3;
/// A new pod has been ready for `min_ready`: the rollout may move on.
const MIN_READY: u32 = 4;

/// How long after a pod's process starts it joins the endpoints: 1 ns, an instant. The
/// endpoints controller reacts to the pod's readiness, so it comes after; and a message
/// forwarded in the very instant of the restart would reach the dead incarnation.
const JOIN_LAG: SimDuration = SimDuration::from_nanos(1);

#[derive(Clone, Copy)]
struct Metrics {
    replicas: GaugeId,
    ready: GaugeId,
    desired: GaugeId,
    usage: GaugeId,
    scale_ups: CounterId,
    scale_downs: CounterId,
    restarts: CounterId,
    rollout_in_progress: GaugeId,
    grace_expired: CounterId,
    killed_requests: CounterId,
}

/// A pod the rollout is terminating: the seq of its grace timer, and whether its slot is
/// restarted in place as a new pod when it exits (otherwise the slot is freed).
#[derive(Clone, Copy, Debug)]
struct Terminating {
    seq: u64,
    in_place: bool,
}

/// A rollout in progress, by slot.
#[derive(Clone, Debug)]
struct Roll {
    /// The slot holds a pod from before the rollout, not yet replaced.
    old: Vec<bool>,
    terminating: Vec<Option<Terminating>>,
}

/// The rollout's counts at one instant, in the deployment controller's terms (terminating
/// pods are not counted; a slot to be restarted in place counts as the new pod it becomes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Census {
    total: u32,
    new: u32,
    new_unavailable: u32,
    old: u32,
    terminating: u32,
}

/// The deployment's balancer and controller, one actor named after the component; see the
/// module docs.
///
/// Metrics (owner = the component's name): the [`LoadBalancer`]'s, and the gauges `replicas`
/// (pods created, terminating ones included), `replicas_ready` (endpoints), `desired_replicas`
/// (the autoscaler's last answer), `usage` (the last mean measured: cores for `Cpu`, a
/// fraction for `Utilisation`), `rollout_in_progress` (1 from the rollout's start until its
/// last old pod is gone and every new one is available); the counters `scale_ups_total`,
/// `scale_downs_total` (pods added, removed), `restarts_total` (old pods the rollout replaced, as the consumer group's),
/// `grace_expired_total` (terminating pods killed at the end of their grace while still
/// holding requests) and `killed_requests_total` (requests those kills cut, answered 503).
#[derive(Clone)]
pub struct ServiceDeployment<M> {
    config: DeploymentConfig,
    lb: LoadBalancer<M>,
    provisioning: Sampler,
    /// The start of a pod restarted in place by the rollout.
    restart: Sampler,
    pods: Pods,
    /// By slot: when the pod became ready, and its CPU integral (core-ns) at the start of its
    /// current measurement window.
    ready_at: Vec<SimTime>,
    base: Vec<f64>,
    pod_names: Vec<String>,
    ids: Vec<ActorId>,
    /// The Deployment's `spec.replicas`: the count the HPA sets (pods beyond it are the
    /// rollout's surge).
    target: u32,
    autoscaler: Option<Autoscaler>,
    last_poll: SimTime,
    roll: Option<Roll>,
    metrics: Option<Metrics>,
    _m: PhantomData<M>,
}

impl<M> ServiceDeployment<M> {
    /// The controller of the deployment `name` (its pods are `<name>-<i>`).
    pub fn new(config: DeploymentConfig, name: &str) -> Result<Self, ConfigError> {
        config.validate()?;
        let lb = LoadBalancer::new(config.balancer_config(name)?)?;
        let provisioning = compile("provisioning", &config.provisioning)?;
        let restart = match config
            .rollout
            .as_ref()
            .and_then(|r| r.restart_time.as_ref())
        {
            Some(d) => compile("rollout.restart_time", d)?,
            None => provisioning.clone(),
        };
        let slots = config.slots() as usize;
        let pods = Pods::new(slots, config.replicas as usize);
        Ok(ServiceDeployment {
            lb,
            provisioning,
            restart,
            pods,
            ready_at: vec![SimTime::ZERO; slots],
            base: vec![0.0; slots],
            pod_names: (0..slots as u32).map(|i| replica_name(name, i)).collect(),
            ids: Vec::new(),
            target: config.replicas,
            autoscaler: None,
            last_poll: SimTime::ZERO,
            roll: None,
            metrics: None,
            config,
            _m: PhantomData,
        })
    }

    /// Pods created (starting, ready or terminating).
    pub fn created(&self) -> u32 {
        self.pods.created()
    }

    /// Pods ready: the endpoints.
    pub fn ready(&self) -> u32 {
        self.pods.ready()
    }

    /// Whether a rollout is in progress.
    pub fn rolling(&self) -> bool {
        self.roll.is_some()
    }

    fn terminating(&self, slot: usize) -> Option<Terminating> {
        self.roll.as_ref().and_then(|r| r.terminating[slot])
    }

    /// Whether `slot`'s pod is available at `now`: ready, not terminating, and (a new pod)
    /// ready for `min_ready`.
    fn available(&self, slot: usize, now: SimTime) -> bool {
        let Some(roll) = &self.roll else {
            return self.pods[slot] == Pod::Running;
        };
        let min_ready = self
            .config
            .rollout
            .as_ref()
            .map_or(SimDuration::ZERO, |r| r.min_ready);
        self.pods[slot] == Pod::Running
            && roll.terminating[slot].is_none()
            && (roll.old[slot] || now >= self.ready_at[slot].saturating_add(min_ready))
    }

    fn census(&self, now: SimTime) -> Census {
        let mut c = Census::default();
        let Some(roll) = &self.roll else {
            return c;
        };
        for slot in 0..self.pods.len() {
            match roll.terminating[slot] {
                Some(t) => {
                    c.terminating += 1;
                    if t.in_place {
                        c.total += 1;
                        c.new += 1;
                        c.new_unavailable += 1;
                    }
                }
                None if self.pods[slot] == Pod::Absent => {}
                None if roll.old[slot] => {
                    c.total += 1;
                    c.old += 1;
                }
                None => {
                    c.total += 1;
                    c.new += 1;
                    if !self.available(slot, now) {
                        c.new_unavailable += 1;
                    }
                }
            }
        }
        c
    }
}

impl<M: Carry<Rpc>> ServiceDeployment<M> {
    fn timer(&self, ctx: &mut Ctx<'_, M>, after: SimDuration, kind: u32, seq: u64) {
        ctx.set_timer(after, M::wrap(Rpc::Tick(Tick::Deployment { kind, seq })));
    }

    fn m(&self) -> Metrics {
        self.metrics.expect("registered at start")
    }

    fn update_gauges(&self, ctx: &mut Ctx<'_, M>) {
        let m = self.m();
        let (created, ready) = (self.created(), self.ready());
        ctx.metrics().set(m.replicas, f64::from(created));
        ctx.metrics().set(m.ready, f64::from(ready));
    }

    /// The CPU integral of `slot`'s pod so far (its `cpu_workers` gauge), in core-nanoseconds
    /// (0 before the pod registered its gauge).
    fn cpu_integral(&self, ctx: &mut Ctx<'_, M>, slot: usize) -> f64 {
        let name = format!("{}.cpu_workers", self.pod_names[slot]);
        ctx.metrics().gauge_integral(&name).unwrap_or(0.0)
    }

    /// Kills `slot`'s process and has it started afresh `after` from now (its requests are
    /// answered 503 by the balancer: their connections die with it); it joins the endpoints
    /// an instant after it runs. A process already down (crashed by a fault) is left to the
    /// fault's restart, as before; its slot still joins the endpoints then.
    fn start_pod(&mut self, ctx: &mut Ctx<'_, M>, slot: usize, after: SimDuration) {
        let cut = self.lb.reset_backend(ctx, slot);
        if cut > 0 {
            let m = self.m();
            ctx.metrics().add(m.killed_requests, cut);
        }
        ctx.kill(self.ids[slot], Some(after));
        let seq = self.pods.start(slot);
        self.timer(ctx, after.saturating_add(JOIN_LAG), PROVISIONED, seq);
    }

    fn on_provisioned(&mut self, ctx: &mut Ctx<'_, M>, seq: u64) {
        let Some(slot) = self.pods.started(seq) else {
            return;
        };
        self.ready_at[slot] = ctx.now();
        self.base[slot] = self.cpu_integral(ctx, slot);
        self.lb.set_endpoint(ctx, slot, true);
        self.update_gauges(ctx);
        if self.roll.is_some() {
            let min_ready = self
                .config
                .rollout
                .as_ref()
                .map_or(SimDuration::ZERO, |r| r.min_ready);
            if min_ready.is_zero() {
                self.advance(ctx);
            } else {
                self.timer(ctx, min_ready, MIN_READY, 0);
            }
        }
    }

    /// Brings the Deployment's count to `desired`: new pods in the lowest free slots, removals
    /// from the highest (the newest, as a ReplicaSet prefers deleting the youngest pods); a
    /// pod the rollout is terminating is not removed again.
    fn scale_to(&mut self, ctx: &mut Ctx<'_, M>, desired: u32) {
        let m = self.m();
        ctx.metrics().set(m.desired, f64::from(desired));
        let target = self.target;
        if desired > target {
            let add = (desired - target) as usize;
            let free = self.pods.free(add);
            for &slot in &free {
                let d = ctx.sample_duration(&self.provisioning);
                self.start_pod(ctx, slot, d);
                if let Some(roll) = &mut self.roll {
                    roll.old[slot] = false;
                }
            }
            // Without free slots (the rollout's terminating pods hold some) the count grows
            // by what could be created; the HPA sees that count at its next poll.
            self.target += free.len() as u32;
            ctx.metrics().add(m.scale_ups, free.len() as u64);
            ctx.trace_note(&format!("scale up {target} -> {desired}"));
        } else if desired < target {
            let remove = (target - desired) as usize;
            let roll = self.roll.clone();
            let gone = self.pods.newest(remove, |i| {
                roll.as_ref().is_none_or(|r| r.terminating[i].is_none())
            });
            for &slot in &gone {
                if self.pods.remove(slot) == Pod::Running {
                    self.lb.set_endpoint(ctx, slot, false);
                }
                if let Some(roll) = &mut self.roll {
                    roll.old[slot] = false;
                }
            }
            self.target -= gone.len() as u32;
            ctx.metrics().add(m.scale_downs, gone.len() as u64);
            ctx.trace_note(&format!("scale down {target} -> {desired}"));
        }
        self.update_gauges(ctx);
        if self.roll.is_some() {
            self.advance(ctx);
        }
    }

    /// The scheduled minimum at `now` (0 when no entry is active).
    fn scheduled(&self, now: SimTime) -> u32 {
        self.config
            .schedule
            .iter()
            .filter(|s| s.from <= now && now < s.until)
            .map(|s| s.replicas)
            .max()
            .unwrap_or(0)
    }

    /// One poll: measure every ready pod over its window, decide, and start the next window.
    fn on_poll(&mut self, ctx: &mut Ctx<'_, M>) {
        let Some(a) = &self.autoscaler else {
            return;
        };
        let interval = a.config().polling_interval;
        let per_pod = match a.config().metric {
            ScaleMetric::Utilisation { .. } => f64::from(self.config.service.workers),
            _ => 1.0,
        };
        self.timer(ctx, interval, POLL, 0);
        let now = ctx.now();
        let (mut sum, mut measured) = (0.0, 0u32);
        for slot in 0..self.pods.len() {
            // A terminating pod is not Running: it is not measured (the HPA skips pods
            // being deleted).
            if self.pods[slot] != Pod::Running {
                continue;
            }
            let from = self.last_poll.max(self.ready_at[slot]);
            let integral = self.cpu_integral(ctx, slot);
            let window = now.saturating_duration_since(from);
            if now.saturating_duration_since(self.ready_at[slot]) >= MIN_METRIC_WINDOW
                && !window.is_zero()
            {
                let cores = (integral - self.base[slot]) / window.as_nanos() as f64;
                sum += cores / per_pod;
                measured += 1;
            }
            self.base[slot] = integral;
        }
        self.last_poll = now;
        let mean = if measured == 0 {
            0.0
        } else {
            sum / f64::from(measured)
        };
        let m = self.m();
        ctx.metrics().set(m.usage, mean);
        let (target, floor) = (self.target, self.scheduled(now));
        let autoscaler = self.autoscaler.as_mut().expect("checked above");
        autoscaler.set_replicas(target);
        let decision = autoscaler.poll_with_floor(now, measured, mean, floor);
        self.scale_to(ctx, decision.desired);
    }

    /// The rollout starts: every pod that exists now is old.
    fn on_rollout_start(&mut self, ctx: &mut Ctx<'_, M>) {
        let n = self.pods.len();
        let old = (0..n).map(|slot| self.pods[slot] != Pod::Absent).collect();
        self.roll = Some(Roll {
            old,
            terminating: vec![None; n],
        });
        let m = self.m();
        ctx.metrics().set(m.rollout_in_progress, 1.0);
        ctx.trace_note("rollout start");
        self.advance(ctx);
    }

    /// The deployment controller's step, as often as the bounds allow: new pods while the
    /// surge allows, then old pods terminated while the availability bound allows. Ends the
    /// rollout when no old pod is left or terminating and every new one is available.
    fn advance(&mut self, ctx: &mut Ctx<'_, M>) {
        let Some(rollout) = self.config.rollout.clone() else {
            return;
        };
        let now = ctx.now();
        loop {
            let c = self.census(now);
            if self.roll.is_none() {
                return;
            }
            // Done as `kubectl rollout status` says it: every pod new and available.
            if c.old == 0 && c.terminating == 0 && c.new_unavailable == 0 {
                self.roll = None;
                let m = self.m();
                ctx.metrics().set(m.rollout_in_progress, 0.0);
                ctx.trace_note("rollout done");
                return;
            }
            let desired = self.target;
            let (surge, unavailable) = rollout.fenceposts(desired);
            // New pods, while fewer than the desired count are new and the surge allows.
            if c.new < desired && c.total < desired.saturating_add(surge) && self.create_new(ctx) {
                continue;
            }
            // Old pods, while enough stay available: Kubernetes' `allPods - minAvailable -
            // newUnavailable`.
            let min_available = desired.saturating_sub(unavailable);
            let may_go = c
                .total
                .saturating_sub(min_available)
                .saturating_sub(c.new_unavailable);
            if may_go > 0 && c.old > 0 {
                self.terminate_old(ctx);
                continue;
            }
            return;
        }
    }

    /// Creates one new pod: in the lowest free slot, or else in the slot of a terminating
    /// pod, restarted in place when it exits. False if there is no room.
    fn create_new(&mut self, ctx: &mut Ctx<'_, M>) -> bool {
        if let Some(&slot) = self.pods.free(1).first() {
            let d = ctx.sample_duration(&self.provisioning);
            self.start_pod(ctx, slot, d);
            return true;
        }
        let roll = self.roll.as_mut().expect("in a rollout");
        let claim =
            (roll.terminating.iter_mut().rev()).find_map(|t| t.as_mut().filter(|t| !t.in_place));
        match claim {
            Some(t) => {
                t.in_place = true;
                true
            }
            None => false,
        }
    }

    /// Starts terminating one old pod: a pod still starting first (it serves nothing), then
    /// the highest slot (a ReplicaSet deletes not-ready pods first, then the youngest).
    fn terminate_old(&mut self, ctx: &mut Ctx<'_, M>) {
        let roll = self.roll.as_ref().expect("in a rollout");
        let old: Vec<usize> = (0..self.pods.len())
            .rev()
            .filter(|&s| {
                roll.old[s] && roll.terminating[s].is_none() && self.pods[s] != Pod::Absent
            })
            .collect();
        let slot = old
            .iter()
            .copied()
            .find(|&s| self.pods[s] == Pod::Starting)
            .or(old.first().copied())
            .expect("the census counted an old pod");
        let grace = self
            .config
            .rollout
            .as_ref()
            .map_or(SimDuration::ZERO, |r| r.termination_grace);
        let was = self.pods[slot];
        // Out of the endpoints first, so no new request reaches it; its slot is "starting"
        // in the bookkeeping (not ready, not measured) until it exits.
        self.lb.set_endpoint(ctx, slot, false);
        let seq = self.pods.start(slot);
        let roll = self.roll.as_mut().expect("in a rollout");
        roll.old[slot] = false;
        roll.terminating[slot] = Some(Terminating {
            seq,
            in_place: false,
        });
        let m = self.m();
        ctx.metrics().inc(m.restarts);
        ctx.trace_note(&format!("rollout: terminating {}", self.pod_names[slot]));
        self.update_gauges(ctx);
        if was != Pod::Running || self.lb.outstanding()[slot] == 0 {
            self.exit(ctx, slot);
        } else {
            self.timer(ctx, grace, GRACE, seq);
        }
    }

    /// A terminating pod exits (idle) or is killed (its grace is over): its slot restarts in
    /// place as a new pod, or is freed.
    fn exit(&mut self, ctx: &mut Ctx<'_, M>, slot: usize) {
        // A slot not yet claimed is restarted in place all the same if a new pod is wanted
        // now: freeing it and creating the new pod in it at once would start that pod's
        // process now rather than when it is provisioned.
        let c = self.census(ctx.now());
        let desired = self.target;
        let surge = (self.config.rollout.as_ref()).map_or(0, |r| r.fenceposts(desired).0);
        let wanted = c.new < desired && c.total < desired.saturating_add(surge);
        let roll = self.roll.as_mut().expect("in a rollout");
        let t = roll.terminating[slot].take().expect("terminating");
        if t.in_place || wanted {
            let d = ctx.sample_duration(&self.restart);
            self.start_pod(ctx, slot, d);
        } else {
            // The slot's process is gone; an idle one stands in for the free slot (a later
            // scale-up restarts it again).
            let cut = self.lb.reset_backend(ctx, slot);
            if cut > 0 {
                let m = self.m();
                ctx.metrics().add(m.killed_requests, cut);
            }
            ctx.kill(self.ids[slot], Some(SimDuration::ZERO));
            self.pods.remove(slot);
        }
        self.update_gauges(ctx);
        self.advance(ctx);
    }

    /// After anything the balancer did: a terminating pod whose last request was answered
    /// (or forgotten at its deadline) exits now.
    fn exit_idle(&mut self, ctx: &mut Ctx<'_, M>) {
        let Some(roll) = &self.roll else {
            return;
        };
        let idle: Vec<usize> = (0..self.pods.len())
            .filter(|&s| roll.terminating[s].is_some() && self.lb.outstanding()[s] == 0)
            .collect();
        for slot in idle {
            if self.terminating(slot).is_some() {
                self.exit(ctx, slot);
            }
        }
    }

    fn on_grace(&mut self, ctx: &mut Ctx<'_, M>, seq: u64) {
        let slot = (seq >> 32) as usize;
        if self.terminating(slot).is_none_or(|t| t.seq != seq) {
            return;
        }
        let m = self.m();
        ctx.metrics().inc(m.grace_expired);
        ctx.trace_note(&format!(
            "rollout: grace over, killing {}",
            self.pod_names[slot]
        ));
        self.exit(ctx, slot);
    }
}

impl<M: Carry<Rpc>> Actor<M> for ServiceDeployment<M> {
    fn on_start(&mut self, ctx: &mut Ctx<'_, M>) {
        self.lb.on_start(ctx);
        self.metrics = Some(Metrics {
            replicas: ctx.gauge("replicas"),
            ready: ctx.gauge("replicas_ready"),
            desired: ctx.gauge("desired_replicas"),
            usage: ctx.gauge("usage"),
            scale_ups: ctx.counter("scale_ups_total"),
            scale_downs: ctx.counter("scale_downs_total"),
            restarts: ctx.counter("restarts_total"),
            rollout_in_progress: ctx.gauge("rollout_in_progress"),
            grace_expired: ctx.counter("grace_expired_total"),
            killed_requests: ctx.counter("killed_requests_total"),
        });
        let name = ctx.name().to_string();
        self.ids = (self.pod_names.iter())
            .map(|pod| {
                ctx.lookup(pod)
                    .unwrap_or_else(|| panic!("{name}: pod `{pod}` was not spawned"))
            })
            .collect();
        let now = ctx.now();
        // The pods as they are at the start; a restarted controller starts from the config
        // again (what it knew is lost with it).
        for slot in 0..self.pods.len() {
            let running = self.pods[slot] == Pod::Running;
            if !running {
                self.lb.set_endpoint(ctx, slot, false);
            }
            self.ready_at[slot] = now;
            self.base[slot] = self.cpu_integral(ctx, slot);
        }
        self.last_poll = now;
        let m = self.m();
        ctx.metrics().set(m.desired, f64::from(self.created()));
        ctx.metrics().set(m.rollout_in_progress, 0.0);
        if let Some(a) = &self.config.autoscaler {
            let first = a.polling_interval;
            self.autoscaler = Some(Autoscaler::new(a.clone(), self.created(), now));
            self.timer(ctx, first, POLL, 0);
        }
        if let Some(r) = &self.config.rollout {
            let at = r.at.max(now);
            let tick = Tick::Deployment {
                kind: ROLLOUT,
                seq: 0,
            };
            ctx.set_timer_at(at, M::wrap(Rpc::Tick(tick)));
        }
        self.update_gauges(ctx);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, M>, from: ActorId, msg: M) {
        self.lb.on_message(ctx, from, msg);
        self.exit_idle(ctx);
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, M>, msg: M) {
        let tick = msg.clone().unwrap();
        match tick {
            Some(Rpc::Tick(Tick::Deployment { kind, seq })) => match kind {
                POLL => self.on_poll(ctx),
                PROVISIONED => self.on_provisioned(ctx, seq),
                ROLLOUT => self.on_rollout_start(ctx),
                GRACE => self.on_grace(ctx, seq),
                MIN_READY => self.advance(ctx),
                _ => {}
            },
            _ => {
                self.lb.on_timer(ctx, msg);
                self.exit_idle(ctx);
            }
        }
    }
}

/// A deployment ready to spawn: each pod with its name, and the controller.
pub struct Deployed<M> {
    pub replicas: Vec<(String, Service<M>)>,
    pub controller: ServiceDeployment<M>,
}

/// Builds the pods of the deployment `name` and its controller: spawn each pod as
/// `replica_name(name, i)` before the controller (whose balancer looks them up at its start),
/// and the controller as `name`.
pub fn build<M>(config: &DeploymentConfig, name: &str) -> Result<Deployed<M>, ConfigError> {
    config.validate()?;
    let mut replicas = Vec::new();
    for i in 0..config.slots() {
        let pod = Service::new(config.service.clone()).map_err(|e| e.within("service"))?;
        replicas.push((replica_name(name, i), pod));
    }
    Ok(Deployed {
        replicas,
        controller: ServiceDeployment::new(config.clone(), name)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::rpc::from_ron;

    const SERVICE: &str = r#"service: (workers: 4, kinds: [(name: "page", service: Const("10ms")),
                                        (name: "health", service: Const("1ms"))])"#;

    fn config(extra: &str) -> DeploymentConfig {
        from_ron(&format!("(replicas: 2, {SERVICE}, {extra})")).unwrap_or_else(|e| panic!("{e}"))
    }

    fn t(secs: u64) -> SimTime {
        SimTime::from_nanos(secs * 1_000_000_000)
    }

    #[test]
    fn defaults_slots_and_the_balancer_over_the_pods() {
        let c = config("");
        assert_eq!(c.balancer, Balancing::default());
        assert_eq!(c.provisioning, default_provisioning());
        assert_eq!(c.slots(), 2);
        let c = config(
            r#"autoscaler: Some((metric: Utilisation(target: 0.7), min_replicas: 1,
                                 max_replicas: 5)),
               balancer: (policy: LeastOutstanding, health: Some((kind: "health")))"#,
        );
        assert_eq!(c.slots(), 5);
        let lb = c.balancer_config("api").expect("valid");
        assert_eq!(lb.backends, ["api-0", "api-1", "api-2", "api-3", "api-4"]);
        assert_eq!(lb.policy, Policy::LeastOutstanding);
        // The probe's kind is resolved against the pods' kinds.
        assert_eq!(lb.health.expect("set").kind, KindRef::Index(1));
        // More replicas than max: the slots hold them all (the HPA brings the count down).
        let c = config(
            r#"autoscaler: Some((metric: Cpu(target: 0.5), min_replicas: 1, max_replicas: 1))"#,
        );
        assert_eq!(c.slots(), 2);
    }

    #[test]
    fn the_schedule_floor_is_the_largest_active_entry() {
        let c = config(
            r#"autoscaler: Some((metric: Cpu(target: 0.5), min_replicas: 1, max_replicas: 10)),
               schedule: [(from: "1m", until: "3m", replicas: 4),
                          (from: "2m", until: "4m", replicas: 6)]"#,
        );
        let d = ServiceDeployment::<Rpc>::new(c, "api").expect("valid");
        let floors: Vec<u32> = [0, 60, 119, 120, 179, 180, 239, 240]
            .into_iter()
            .map(|s| d.scheduled(t(s)))
            .collect();
        assert_eq!(floors, [0, 4, 4, 6, 6, 6, 6, 0]);
        assert_eq!((d.created(), d.ready()), (2, 2));
    }

    #[test]
    fn surge_and_unavailable_read_as_counts_or_percentages() {
        let c = config(r#"rollout: Some((at: "1m", max_surge: 2, max_unavailable: "50%"))"#);
        let r = c.rollout.expect("set");
        assert_eq!(r.max_surge, IntOrPercent::Count(2));
        assert_eq!(r.max_unavailable, IntOrPercent::Percent("50%".into()));
        // 50% of 3 rounds down to 1 unavailable; a count does not scale.
        assert_eq!(r.fenceposts(3), (2, 1));
        assert_eq!(IntOrPercent::Percent("30%".into()).resolve(10, true), 3);
        assert_eq!(IntOrPercent::Percent("31%".into()).resolve(10, true), 4);
        assert_eq!(IntOrPercent::Percent("31%".into()).resolve(10, false), 3);
        // The defaults are Kubernetes' 25% each.
        let r = config(r#"rollout: Some((at: "1m"))"#).rollout.expect("set");
        assert_eq!(r.max_surge, default_quarter());
        assert_eq!(r.max_unavailable, default_quarter());
        assert_eq!(r.restart_time, None);
        // Without a rollout, no surge slot.
        assert_eq!(config("").slots(), 2);
        assert_eq!(config(r#"rollout: Some((at: "1m"))"#).slots(), 3);
    }

    #[test]
    fn bad_fields_are_named() {
        let field = |extra: &str| {
            from_ron::<DeploymentConfig>(&format!("(replicas: 2, {SERVICE}, {extra})"))
                .expect_err("invalid")
                .field()
                .map(str::to_string)
        };
        let cpu = r#"autoscaler: Some((metric: Cpu(target: 0.5), min_replicas: 1,
                                       max_replicas: 4))"#;
        assert_eq!(
            field(&format!(
                r#"{cpu}, schedule: [(from: "2m", until: "2m", replicas: 2)]"#
            ))
            .as_deref(),
            Some("schedule[0].until")
        );
        assert_eq!(
            field(r#"autoscaler: Some((metric: Utilisation(target: 0.7)))"#).as_deref(),
            Some("autoscaler.min_replicas")
        );
        assert_eq!(
            field(r#"balancer: (slow_start: Some((window: "30s")))"#).as_deref(),
            Some("balancer.slow_start")
        );
        assert_eq!(
            field("provisioning: Const(3)").as_deref(),
            Some("provisioning")
        );
        assert_eq!(
            from_ron::<DeploymentConfig>(
                r#"(replicas: 2, service: (workers: 0, kinds: [(name: "a", service: Const("1ms"))]))"#,
            )
            .expect_err("no workers")
            .field(),
            Some("service.workers")
        );
        assert!(
            from_ron::<DeploymentConfig>(&format!("(replicas: 2, {SERVICE}, pods: 3)")).is_err()
        );
    }
}
