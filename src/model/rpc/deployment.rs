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
//! - **Pods.** Every pod the deployment can ever have (`max(replicas, max_replicas)`) is
//!   spawned at the start, so a fault can name any of them; those not running are simply not
//!   endpoints and get no traffic. A scale-up provisions pods in the lowest free slots: each
//!   runs `provisioning` later (node, image pull, start: the delay S6 is about) and is then
//!   added to the endpoints, as the endpoints controller adds a pod once it is running and
//!   ready. A scale-down removes the highest slots from the endpoints at once; the requests
//!   they already hold finish and are answered (a terminating pod's grace period).
//! - **Routing.** The balancer is an ordinary [`LoadBalancer`] over every pod, restricted to
//!   the endpoint set; with `slow_start`, a pod added to it ramps up as Envoy's slow start
//!   ramps a new host (and an ALB a newly registered target); with `health`, failing pods
//!   are ejected as usual (a crashed pod is found that way, as a readiness probe finds it).
//! - **Autoscaling.** Every `polling_interval` the controller reads each ready pod's CPU as
//!   metrics-server would: the pod's busy workers averaged over the time since the last poll
//!   (one busy worker is one core busy; a worker waiting on a downstream call counts as busy,
//!   which is right for the CPU-bound services this is meant for). `Cpu(target)` compares the
//!   mean cores per pod with `target` cores; `Utilisation(target)` the mean busy share of the
//!   pod's `workers`. Pods ready for less than [`MIN_METRIC_WINDOW`] have no measurement yet
//!   and count as not ready (so as using nothing when scaling up, as the HPA does). The
//!   measurement feeds the pure [`Autoscaler`] (the HPA's algorithm: tolerance, stabilisation
//!   windows, rate policies, min and max); `Lag` is the consumer groups' metric and is refused.
//! - **Scheduled scaling** (`schedule`): between `from` and `until` the count is at least
//!   `replicas`, KEDA's cron scaler. It is a second metric whose proposal is that count, and
//!   the HPA takes the larger proposal, so the step still goes through the scale-up policies.
//!   This is pre-scaling before a known peak.
//!
//! What is left out: a new pod joins warm (its `warmup`, if any, ran from the start of the
//! run), and a crashed pod is not replaced by the deployment (a fault's restart brings it
//! back).

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
}

fn default_provisioning() -> Dist {
    Dist::Const(Scalar::duration(DEFAULT_PROVISIONING))
}

/// The pod name of replica `i`: `<name>-<i>`.
pub fn replica_name(name: &str, i: u32) -> String {
    format!("{name}-{i}")
}

impl DeploymentConfig {
    /// How many pods the deployment can ever have: its slots.
    pub fn slots(&self) -> u32 {
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
                             Cpu(target: cores) or Utilisation(target: busy share)"
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

#[derive(Clone, Copy)]
struct Metrics {
    replicas: GaugeId,
    ready: GaugeId,
    desired: GaugeId,
    usage: GaugeId,
    scale_ups: CounterId,
    scale_downs: CounterId,
}

/// The deployment's balancer and controller, one actor named after the component; see the
/// module docs.
///
/// Metrics (owner = the component's name): the [`LoadBalancer`]'s, and the gauges `replicas`
/// (pods created), `replicas_ready` (endpoints), `desired_replicas` (the autoscaler's last
/// answer), `usage` (the last mean measured: cores for `Cpu`, a fraction for `Utilisation`),
/// and the counters `scale_ups_total`, `scale_downs_total` (pods added, removed).
#[derive(Clone)]
pub struct ServiceDeployment<M> {
    config: DeploymentConfig,
    lb: LoadBalancer<M>,
    provisioning: Sampler,
    pods: Pods,
    /// By slot: when the pod became ready, and its busy-worker integral (worker-ns) at the
    /// start of its current measurement window.
    ready_at: Vec<SimTime>,
    base: Vec<f64>,
    pod_names: Vec<String>,
    autoscaler: Option<Autoscaler>,
    last_poll: SimTime,
    metrics: Option<Metrics>,
    _m: PhantomData<M>,
}

impl<M> ServiceDeployment<M> {
    /// The controller of the deployment `name` (its pods are `<name>-<i>`).
    pub fn new(config: DeploymentConfig, name: &str) -> Result<Self, ConfigError> {
        config.validate()?;
        let lb = LoadBalancer::new(config.balancer_config(name)?)?;
        let provisioning = compile("provisioning", &config.provisioning)?;
        let slots = config.slots() as usize;
        let pods = Pods::new(slots, config.replicas as usize);
        Ok(ServiceDeployment {
            lb,
            provisioning,
            pods,
            ready_at: vec![SimTime::ZERO; slots],
            base: vec![0.0; slots],
            pod_names: (0..slots as u32).map(|i| replica_name(name, i)).collect(),
            autoscaler: None,
            last_poll: SimTime::ZERO,
            metrics: None,
            config,
            _m: PhantomData,
        })
    }

    /// Pods created (starting or ready).
    pub fn created(&self) -> u32 {
        self.pods.created()
    }

    /// Pods ready: the endpoints.
    pub fn ready(&self) -> u32 {
        self.pods.ready()
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

    /// The busy-worker integral of `slot`'s pod so far, in worker-nanoseconds (0 before the
    /// pod registered its gauge).
    fn busy_integral(&self, ctx: &mut Ctx<'_, M>, slot: usize) -> f64 {
        let name = format!("{}.busy_workers", self.pod_names[slot]);
        ctx.metrics().gauge_integral(&name).unwrap_or(0.0)
    }

    fn on_provisioned(&mut self, ctx: &mut Ctx<'_, M>, seq: u64) {
        let Some(slot) = self.pods.started(seq) else {
            return;
        };
        self.ready_at[slot] = ctx.now();
        self.base[slot] = self.busy_integral(ctx, slot);
        self.lb.set_endpoint(ctx, slot, true);
        self.update_gauges(ctx);
    }

    /// Brings the number of pods to `desired`: new pods in the lowest free slots, removals
    /// from the highest (the newest, as a ReplicaSet prefers deleting the youngest pods).
    fn scale_to(&mut self, ctx: &mut Ctx<'_, M>, desired: u32) {
        let m = self.m();
        ctx.metrics().set(m.desired, f64::from(desired));
        let created = self.created();
        if desired > created {
            let add = (desired - created) as usize;
            let free = self.pods.free(add);
            for &slot in &free {
                let d = ctx.sample_duration(&self.provisioning);
                let seq = self.pods.start(slot);
                self.timer(ctx, d, PROVISIONED, seq);
            }
            ctx.metrics().add(m.scale_ups, free.len() as u64);
            ctx.trace_note(&format!("scale up {created} -> {desired}"));
        } else if desired < created {
            let remove = (created - desired) as usize;
            let gone = self.pods.newest(remove, |_| true);
            for &slot in &gone {
                if self.pods.remove(slot) == Pod::Running {
                    self.lb.set_endpoint(ctx, slot, false);
                }
            }
            ctx.metrics().add(m.scale_downs, gone.len() as u64);
            ctx.trace_note(&format!("scale down {created} -> {desired}"));
        }
        self.update_gauges(ctx);
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
            if self.pods[slot] != Pod::Running {
                continue;
            }
            let from = self.last_poll.max(self.ready_at[slot]);
            let integral = self.busy_integral(ctx, slot);
            let window = now.saturating_duration_since(from);
            if now.saturating_duration_since(self.ready_at[slot]) >= MIN_METRIC_WINDOW
                && !window.is_zero()
            {
                let busy = (integral - self.base[slot]) / window.as_nanos() as f64;
                sum += busy / per_pod;
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
        let (created, floor) = (self.created(), self.scheduled(now));
        let autoscaler = self.autoscaler.as_mut().expect("checked above");
        autoscaler.set_replicas(created);
        let decision = autoscaler.poll_with_floor(now, measured, mean, floor);
        self.scale_to(ctx, decision.desired);
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
        });
        let now = ctx.now();
        // The pods as they are at the start; a restarted controller starts from the config
        // again (what it knew is lost with it).
        for slot in 0..self.pods.len() {
            let running = self.pods[slot] == Pod::Running;
            if !running {
                self.lb.set_endpoint(ctx, slot, false);
            }
            self.ready_at[slot] = now;
            self.base[slot] = self.busy_integral(ctx, slot);
        }
        self.last_poll = now;
        let m = self.m();
        ctx.metrics().set(m.desired, f64::from(self.created()));
        if let Some(a) = &self.config.autoscaler {
            let first = a.polling_interval;
            self.autoscaler = Some(Autoscaler::new(a.clone(), self.created(), now));
            self.timer(ctx, first, POLL, 0);
        }
        self.update_gauges(ctx);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, M>, from: ActorId, msg: M) {
        self.lb.on_message(ctx, from, msg);
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, M>, msg: M) {
        let tick = msg.clone().unwrap();
        match tick {
            Some(Rpc::Tick(Tick::Deployment { kind: POLL, .. })) => self.on_poll(ctx),
            Some(Rpc::Tick(Tick::Deployment {
                kind: PROVISIONED,
                seq,
            })) => self.on_provisioned(ctx, seq),
            Some(Rpc::Tick(Tick::Deployment { .. })) => {}
            _ => self.lb.on_timer(ctx, msg),
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
