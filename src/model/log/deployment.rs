//! A consumer group as it is deployed: N replicas of one consumer (a Kubernetes StatefulSet,
//! pods `<name>-0`, `<name>-1`, ...), an optional autoscaler that changes N (KEDA on lag, or
//! the HPA on CPU), and optional rolling restarts. The orchestrator is an actor of its own, the
//! group's *controller*, named after the component; the replicas are ordinary [`Consumer`]s.
//!
//! - **Replicas.** Every replica the group can ever have is spawned at the start (so faults can
//!   name any of them); those beyond the initial count start stopped, and the controller
//!   starts and stops them with [`Control`] messages, as the kubelet starts and deletes pods.
//!   With `static_membership`, each replica's `group.instance.id` is its pod name, stable
//!   across restarts as a StatefulSet's pod names are.
//! - **Autoscaling.** Every `polling_interval` the controller measures the metric the way the
//!   real scaler does — KEDA's Kafka scaler asks the broker for the group's lag
//!   ([`LagQuery`]); the HPA's CPU metric comes from each running pod ([`Log::UsageQuery`], the
//!   share of the last interval spent processing, as metrics-server's scrape gives it) — and
//!   feeds it to the pure [`Autoscaler`]. For CPU the pods are grouped as the HPA groups
//!   them ([`PodMetrics`]): a pod being created (a scale-up, a rollout's recreate) is
//!   *unready*; a running pod that gives no sample, and a container the liveness probe is
//!   restarting in place, is *missing*, and counts as using its whole request when the HPA
//!   would scale down, so a group whose pods are restarting is not shrunk on their silence.
//!   A scale-up starts pods that become ready
//!   `provisioning` later (scheduling, image, JVM start); a scale-down stops the newest pods at
//!   once (`KafkaConsumer.close()`: LeaveGroup, then exit). Each change of the count is a
//!   rebalance, and under the eager protocol a rebalance stops the whole group: that delay and
//!   that stop are the loop of the rebalance storm (K1).
//! - **Rolling restarts.** At `rollout.at`, the running pods restart one at a time in reverse
//!   ordinal order (a StatefulSet's `RollingUpdate`), each down for its `provisioning` time;
//!   the next starts once the previous is running again and `pause` (`minReadySeconds`) has
//!   passed. Kubernetes knows when a process runs, not when it has rejoined its group: the
//!   rollout does not wait for the group to settle, which is how a rolling deploy turns into
//!   one rebalance per pod.
//!
//! The group's shared [`Ledger`] (records processed twice, skipped, partitions stopped) is
//! made here and handed to every replica; its metrics are owned by the controller's name.

use std::marker::PhantomData;

use serde::{Deserialize, Serialize};

use super::autoscale::{Autoscaler, AutoscalerConfig, Pod, PodMetrics, Pods, ScaleMetric};
use super::consumer::{Consumer, ConsumerConfig};
use super::ledger::{Ledger, SharedLedger};
use super::msg::{Control, LagQuery, Log, Tick, UsageReply};
use crate::actor::{Actor, ActorId, Ctx};
use crate::dist::{Dist, Sampler, Scalar};
use crate::engine::time::{SimDuration, SimTime};
use crate::metrics::{CounterId, GaugeId};
use crate::model::Carry;
use crate::model::rpc::{ConfigError, Validate, compile};

/// How long a new pod takes to run by default: 30 s. The HPA's own allowance for it,
/// `--horizontal-pod-autoscaler-initial-readiness-delay` ("the period after pod start during
/// which readiness changes will be treated as initial readiness", default 30 s, Kubernetes
/// docs, kube-controller-manager); a JVM consumer with a cached image is in that range.
pub const DEFAULT_PROVISIONING: SimDuration = SimDuration::from_secs(30);

/// How long the controller waits for the pods' usage answers before deciding without the
/// missing ones.
const USAGE_TIMEOUT: SimDuration = SimDuration::from_secs(1);

/// A rolling restart of every running replica.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rollout {
    /// When it starts.
    pub at: SimTime,
    /// Wait after a restarted pod runs before the next is restarted: `minReadySeconds`,
    /// default 0 (Kubernetes' default).
    #[serde(default)]
    pub pause: SimDuration,
}

/// The kubelet's liveness probe of each pod, with the application's check behind it: the pod
/// is unhealthy when its poll loop has made no progress (no fetch answered, no batch
/// processed) for `max_stall` — the check Kafka consumer services commonly expose, and the one
/// that fails during a long rebalance, when a member may not poll.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Liveness {
    /// `periodSeconds`, default 10 s (Kubernetes' default).
    #[serde(default = "default_probe_period")]
    pub period: SimDuration,
    /// `failureThreshold`, default 3 (Kubernetes' default): consecutive failures (a stalled
    /// answer, or none by the next probe) before the container is restarted.
    #[serde(default = "default_failure_threshold")]
    pub failure_threshold: u32,
    /// `initialDelaySeconds`, default 0 (Kubernetes' default).
    #[serde(default)]
    pub initial_delay: SimDuration,
    /// The application's rule: unhealthy after this long without progress.
    pub max_stall: SimDuration,
}

fn default_probe_period() -> SimDuration {
    SimDuration::from_secs(10)
}

fn default_failure_threshold() -> u32 {
    3
}

/// The kubelet's back-off before restarting a container: "an exponential back-off delay (10s,
/// 20s, 40s, ...), that is capped at five minutes. Once a container has executed for 10
/// minutes without any problems, the kubelet resets the restart backoff timer" (Kubernetes
/// docs, Pod Lifecycle, container restarts).
pub const RESTART_BACKOFF_BASE: SimDuration = SimDuration::from_secs(10);
pub const RESTART_BACKOFF_MAX: SimDuration = SimDuration::from_secs(300);
pub const RESTART_BACKOFF_RESET: SimDuration = SimDuration::from_secs(600);

/// A container's own start after a restart in place by default: 10 s. An **assumption**: a
/// JVM consumer's start (class loading, connecting) with its image already on the node, so
/// without the pod provisioning of a new replica.
pub const DEFAULT_RESTART_TIME: SimDuration = SimDuration::from_secs(10);

/// A [`ConsumerGroupConfig`]: `(replicas: 6, consumer: (broker: "broker", group: "g", topic:
/// "orders", partitions: 12, processing: Const("2ms")))`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerGroupConfig {
    /// Replicas running at the start.
    pub replicas: u32,
    /// What every replica runs. Its `group_instance_id` is set by `static_membership`.
    pub consumer: ConsumerConfig,
    /// Each replica's `group.instance.id` is its pod name. Default false.
    #[serde(default)]
    pub static_membership: bool,
    /// Scales the replicas; default None (a fixed count).
    #[serde(default)]
    pub autoscaler: Option<AutoscalerConfig>,
    /// The time from a pod's creation (or restart) until its process runs. Default
    /// `Const("30s")`.
    #[serde(default = "default_provisioning")]
    pub provisioning: Dist,
    /// A rolling restart; default None.
    #[serde(default)]
    pub rollout: Option<Rollout>,
    /// A liveness probe that restarts stalled pods; default None.
    #[serde(default)]
    pub liveness: Option<Liveness>,
    /// A container's start after a restart in place (liveness), before the back-off is
    /// added. Default `Const("10s")`.
    #[serde(default = "default_restart_time")]
    pub restart_time: Dist,
}

fn default_restart_time() -> Dist {
    Dist::Const(Scalar::duration(DEFAULT_RESTART_TIME))
}

fn default_provisioning() -> Dist {
    Dist::Const(Scalar::duration(DEFAULT_PROVISIONING))
}

impl ConsumerGroupConfig {
    /// How many replicas the group can ever have: its pods' slots.
    pub fn slots(&self) -> u32 {
        let max = self.autoscaler.as_ref().map_or(0, |a| a.max_replicas);
        self.replicas.max(max)
    }

    /// The config of replica `i` of the component `name`.
    pub fn replica(&self, name: &str, i: u32) -> ConsumerConfig {
        let mut c = self.consumer.clone();
        if self.static_membership {
            c.group_instance_id = Some(replica_name(name, i));
        }
        c
    }

    pub fn targets(&self) -> Vec<(String, &str)> {
        vec![("consumer.broker".to_string(), self.consumer.broker.as_str())]
    }
}

/// The pod name of replica `i`: `<name>-<i>`.
pub fn replica_name(name: &str, i: u32) -> String {
    format!("{name}-{i}")
}

impl Validate for ConsumerGroupConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        self.consumer.validate().map_err(|e| e.within("consumer"))?;
        if self.static_membership && self.consumer.group_instance_id.is_some() {
            return Err(ConfigError::Invalid {
                field: "consumer.group_instance_id".into(),
                reason: "set by `static_membership` (each replica's pod name); leave it out".into(),
            });
        }
        if let Some(a) = &self.autoscaler {
            a.validate().map_err(|e| e.within("autoscaler"))?;
        }
        if self.slots() == 0 {
            return Err(ConfigError::Invalid {
                field: "replicas".into(),
                reason: "a group needs at least one replica (or an autoscaler that can add one)"
                    .into(),
            });
        }
        if self.slots() > MAX_SLOTS {
            let field = if self.replicas > MAX_SLOTS {
                "replicas"
            } else {
                "autoscaler.max_replicas"
            };
            return Err(ConfigError::Invalid {
                field: field.into(),
                reason: format!(
                    "{} replicas; a deployed group has at most {MAX_SLOTS}",
                    self.slots()
                ),
            });
        }
        for (field, dist) in [
            ("provisioning", &self.provisioning),
            ("restart_time", &self.restart_time),
        ] {
            if !compile(field, dist)?.dist().is_duration() {
                return Err(ConfigError::Invalid {
                    field: field.into(),
                    reason: "expected a duration distribution".into(),
                });
            }
        }
        if let Some(l) = &self.liveness {
            crate::model::rpc::nonzero("liveness.period", l.period.as_nanos())?;
            crate::model::rpc::nonzero("liveness.max_stall", l.max_stall.as_nanos())?;
            crate::model::rpc::nonzero(
                "liveness.failure_threshold",
                u64::from(l.failure_threshold),
            )?;
        }
        Ok(())
    }
}

/// The most replicas a deployed group may have: probes and usage queries carry the slot in
/// the low 16 bits of their id.
const MAX_SLOTS: u32 = 1 << 16;

/// The id of a probe or usage query of `slot` in `round`, and the round and slot back from it.
fn query_id(round: u64, slot: usize) -> u64 {
    (round << 16) | slot as u64
}

fn query_round(id: u64) -> u64 {
    id >> 16
}

fn query_slot(id: u64) -> usize {
    (id & 0xffff) as usize
}

/// The controller's timer kinds, in `Tick::Group { kind }`.
const POLL: u32 = 0;
/// `seq` is `slot << 32 | the slot's epoch`.
const PROVISIONED: u32 = 1;
const ROLLOUT: u32 = 2;
/// `seq` is the poll round.
const USAGE_DEADLINE: u32 = 3;
const PROBE: u32 = 4;

#[derive(Clone, Copy)]
struct ControllerMetrics {
    replicas: GaugeId,
    ready: GaugeId,
    desired: GaugeId,
    scale_ups: CounterId,
    scale_downs: CounterId,
    restarts: CounterId,
    liveness_restarts: CounterId,
}

/// What the kubelet knows of one slot's container.
#[derive(Clone, Copy, Debug, Default)]
struct Kubelet {
    /// Consecutive failed probes.
    failures: u32,
    /// Whether the last probe was answered.
    answered: bool,
    /// When the container last started, and how many restarts since it last ran 10 minutes.
    started: SimTime,
    backoffs: u32,
    /// The consumer restarts by itself (rollout or liveness): the controller does not start it.
    self_restart: bool,
    /// The container is restarting in place after failing its liveness probe: the pod stays
    /// `Running` with no CPU sample (metrics-server has no rate across a container restart),
    /// which the HPA counts as a *missing* metric. A pod being created (a scale-up, or a
    /// rollout's delete and recreate) is `Pending` instead: *unready*.
    in_place: bool,
}

/// A usage poll in progress: each running pod's answer by slot (`None` until it comes).
#[derive(Clone, Debug)]
struct UsagePoll {
    round: u64,
    waiting: usize,
    answers: Vec<Option<UsageReply>>,
}

/// The controller of a deployed consumer group; see the module docs.
///
/// Metrics (owner = the component's name): `replicas` gauge (pods created), `replicas_ready`
/// (pods running), `desired_replicas` (the autoscaler's last answer), `scale_ups_total`,
/// `scale_downs_total` (pods added, removed), `restarts_total` (rollout restarts),
/// `liveness_restarts_total` (containers the liveness probe restarted); and the
/// [`Ledger`]'s.
#[derive(Clone)]
pub struct GroupController<M> {
    config: ConsumerGroupConfig,
    provisioning: Sampler,
    /// By slot.
    pods: Pods,
    ids: Vec<ActorId>,
    broker: Option<ActorId>,
    autoscaler: Option<Autoscaler>,
    usage: Option<UsagePoll>,
    round: u64,
    /// The rollout's remaining slots, highest first, and the slot restarting now.
    rollout: Vec<usize>,
    restarting: Option<usize>,
    provisioning_restart: Sampler,
    kubelets: Vec<Kubelet>,
    probe_round: u64,
    metrics: Option<ControllerMetrics>,
    _m: PhantomData<M>,
}

impl<M> GroupController<M> {
    pub fn new(config: ConsumerGroupConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let provisioning = compile("provisioning", &config.provisioning)?;
        let provisioning_restart = compile("restart_time", &config.restart_time)?;
        let slots = config.slots() as usize;
        let pods = Pods::new(slots, config.replicas as usize);
        Ok(GroupController {
            config,
            provisioning,
            pods,
            ids: Vec::new(),
            broker: None,
            autoscaler: None,
            usage: None,
            round: 0,
            rollout: Vec::new(),
            restarting: None,
            provisioning_restart,
            kubelets: vec![Kubelet::default(); slots],
            probe_round: 0,
            metrics: None,
            _m: PhantomData,
        })
    }
}

impl<M: Carry<Log>> GroupController<M> {
    fn timer(&self, ctx: &mut Ctx<'_, M>, after: SimDuration, kind: u32, seq: u64) {
        ctx.set_timer(after, M::wrap(Log::Tick(Tick::Group { kind, seq })));
    }

    fn created(&self) -> u32 {
        self.pods.created()
    }

    fn ready(&self) -> u32 {
        self.pods.ready()
    }

    fn update_gauges(&self, ctx: &mut Ctx<'_, M>) {
        let m = self.metrics.expect("registered at start");
        let (created, ready) = (self.created(), self.ready());
        ctx.metrics().set(m.replicas, f64::from(created));
        ctx.metrics().set(m.ready, f64::from(ready));
    }

    /// Starts `slot`'s pod: it runs `provisioning` later.
    fn provision(&mut self, ctx: &mut Ctx<'_, M>, slot: usize) {
        let d = ctx.sample_duration(&self.provisioning);
        self.running_after(ctx, slot, d);
    }

    /// `slot`'s pod is starting and runs `after` from now (a newer change of the slot makes
    /// the timer stale).
    fn running_after(&mut self, ctx: &mut Ctx<'_, M>, slot: usize, after: SimDuration) {
        let seq = self.pods.start(slot);
        self.timer(ctx, after, PROVISIONED, seq);
    }

    fn on_provisioned(&mut self, ctx: &mut Ctx<'_, M>, seq: u64) {
        let Some(slot) = self.pods.started(seq) else {
            return;
        };
        let k = &mut self.kubelets[slot];
        k.failures = 0;
        k.answered = true;
        k.started = ctx.now();
        k.in_place = false;
        if !std::mem::take(&mut k.self_restart) {
            ctx.send(self.ids[slot], M::wrap(Log::Control(Control::Start)));
        }
        if self.restarting == Some(slot) {
            // The pod counts as running from now; the rollout moves on after its pause.
            self.restarting = None;
            let pause = self
                .config
                .rollout
                .as_ref()
                .map_or(SimDuration::ZERO, |r| r.pause);
            self.timer(ctx, pause, ROLLOUT, 0);
        }
        self.update_gauges(ctx);
    }

    /// Brings the number of pods to `desired`: new pods in the lowest free slots, removals
    /// from the highest (the newest, as a StatefulSet scales down).
    fn scale_to(&mut self, ctx: &mut Ctx<'_, M>, desired: u32) {
        let m = self.metrics.expect("registered at start");
        ctx.metrics().set(m.desired, f64::from(desired));
        let created = self.created();
        if desired > created {
            let add = (desired - created) as usize;
            let free = self.pods.free(add);
            for &slot in &free {
                self.provision(ctx, slot);
            }
            ctx.metrics().add(m.scale_ups, free.len() as u64);
            ctx.trace_note(&format!("scale up {created} -> {desired}"));
        } else if desired < created {
            let remove = (created - desired) as usize;
            let restarting = self.restarting;
            let gone = self.pods.newest(remove, |i| restarting != Some(i));
            for &slot in &gone {
                if self.pods.remove(slot) == Pod::Running {
                    ctx.send(self.ids[slot], M::wrap(Log::Control(Control::Stop)));
                }
                self.rollout.retain(|&s| s != slot);
            }
            ctx.metrics().add(m.scale_downs, gone.len() as u64);
            ctx.trace_note(&format!("scale down {created} -> {desired}"));
        }
        self.update_gauges(ctx);
    }

    /// Polls the autoscaler with the pods as they are and applies its answer; for lag,
    /// `pods.sum` is the group's lag.
    fn decide(&mut self, ctx: &mut Ctx<'_, M>, pods: PodMetrics) {
        let (now, created) = (ctx.now(), self.created());
        let Some(autoscaler) = self.autoscaler.as_mut() else {
            return;
        };
        autoscaler.set_replicas(created);
        let decision = autoscaler.poll_pods(now, pods);
        self.scale_to(ctx, decision.desired);
    }

    fn on_poll(&mut self, ctx: &mut Ctx<'_, M>) {
        let Some(autoscaler) = &self.autoscaler else {
            return;
        };
        let next = autoscaler.config().polling_interval;
        self.timer(ctx, next, POLL, 0);
        self.round += 1;
        match autoscaler.config().metric {
            ScaleMetric::Lag { .. } => {
                let q = LagQuery {
                    id: self.round,
                    reply_to: ctx.me(),
                    group: self.config.consumer.group.clone(),
                    topic: self.config.consumer.topic.clone(),
                };
                let to = self.broker.expect("resolved at start");
                ctx.send(to, M::wrap(Log::LagQuery(q)));
            }
            ScaleMetric::Cpu { .. } | ScaleMetric::Utilisation { .. } => {
                let running: Vec<usize> = (0..self.pods.len())
                    .filter(|&i| self.pods[i] == Pod::Running)
                    .collect();
                for &slot in &running {
                    let q = Log::UsageQuery {
                        id: query_id(self.round, slot),
                        reply_to: ctx.me(),
                    };
                    ctx.send(self.ids[slot], M::wrap(q));
                }
                self.usage = Some(UsagePoll {
                    round: self.round,
                    waiting: running.len(),
                    answers: vec![None; self.pods.len()],
                });
                if running.is_empty() {
                    self.finish_usage(ctx);
                } else {
                    self.timer(ctx, USAGE_TIMEOUT, USAGE_DEADLINE, self.round);
                }
            }
        }
    }

    /// Decides on the pods as the HPA's `groupPods` sees them now: a running pod that
    /// answered while running is sampled; one that did not answer (down, or cut off) or is
    /// not running its consumer, and a container restarting in place, is missing; a pod
    /// still being created is unready.
    fn finish_usage(&mut self, ctx: &mut Ctx<'_, M>) {
        let Some(poll) = self.usage.take() else {
            return;
        };
        let mut pods = PodMetrics::default();
        for slot in 0..self.pods.len() {
            match (self.pods[slot], poll.answers[slot]) {
                (Pod::Absent, _) => {}
                (Pod::Running, Some(reply)) if reply.running => {
                    pods.ready += 1;
                    pods.sum += reply.busy;
                }
                (Pod::Running, _) => pods.missing += 1,
                (Pod::Starting, _) if self.kubelets[slot].in_place => pods.missing += 1,
                (Pod::Starting, _) => pods.unready += 1,
            }
        }
        self.decide(ctx, pods);
    }

    fn on_rollout_step(&mut self, ctx: &mut Ctx<'_, M>) {
        let Some(slot) = self.rollout.pop() else {
            ctx.trace_note("rollout done");
            return;
        };
        if self.pods[slot] != Pod::Running {
            // Scaled away or still starting: nothing to restart.
            return self.on_rollout_step(ctx);
        }
        let d = ctx.sample_duration(&self.provisioning);
        ctx.send(
            self.ids[slot],
            M::wrap(Log::Control(Control::Restart { after: d })),
        );
        let m = self.metrics.expect("registered at start");
        ctx.metrics().inc(m.restarts);
        self.restarting = Some(slot);
        self.restart_in_place(ctx, slot, d);
    }

    /// The consumer of `slot` was told to restart `after` from now: its pod runs again then.
    fn restart_in_place(&mut self, ctx: &mut Ctx<'_, M>, slot: usize, after: SimDuration) {
        self.kubelets[slot].self_restart = true;
        self.running_after(ctx, slot, after);
        self.update_gauges(ctx);
    }

    /// One round of liveness probes: judges the last round's silence, restarts the pods that
    /// failed `failure_threshold` times in a row, and probes the running ones again.
    fn on_probe(&mut self, ctx: &mut Ctx<'_, M>) {
        let Some(l) = self.config.liveness.clone() else {
            return;
        };
        self.timer(ctx, l.period, PROBE, 0);
        let now = ctx.now();
        for slot in 0..self.pods.len() {
            if self.pods[slot] != Pod::Running || self.restarting == Some(slot) {
                continue;
            }
            let k = &mut self.kubelets[slot];
            if !std::mem::replace(&mut k.answered, false) {
                k.failures += 1;
            }
            if k.failures >= l.failure_threshold {
                self.liveness_restart(ctx, slot);
                continue;
            }
            if now >= self.kubelets[slot].started.saturating_add(l.initial_delay) {
                self.probe_round += 1;
                let id = query_id(self.probe_round, slot);
                let probe = Log::Probe {
                    id,
                    reply_to: ctx.me(),
                };
                ctx.send(self.ids[slot], M::wrap(probe));
            } else {
                self.kubelets[slot].answered = true;
            }
        }
    }

    fn on_probe_reply(&mut self, ctx: &mut Ctx<'_, M>, reply: super::msg::ProbeReply) {
        let Some(l) = &self.config.liveness else {
            return;
        };
        let slot = query_slot(reply.id);
        if slot >= self.pods.len() || self.pods[slot] != Pod::Running {
            return;
        }
        let stalled = ctx.now() - reply.progress.min(ctx.now()) > l.max_stall;
        let threshold = l.failure_threshold;
        let k = &mut self.kubelets[slot];
        k.answered = true;
        if stalled || !reply.running {
            k.failures += 1;
        } else {
            k.failures = 0;
        }
        if k.failures >= threshold {
            self.liveness_restart(ctx, slot);
        }
    }

    /// The kubelet kills the container and starts it again after its back-off.
    fn liveness_restart(&mut self, ctx: &mut Ctx<'_, M>, slot: usize) {
        let now = ctx.now();
        let k = &mut self.kubelets[slot];
        if now >= k.started.saturating_add(RESTART_BACKOFF_RESET) {
            k.backoffs = 0;
        }
        let factor = 1u64 << k.backoffs.min(16);
        let backoff = RESTART_BACKOFF_BASE
            .saturating_mul(factor)
            .min(RESTART_BACKOFF_MAX);
        k.backoffs += 1;
        k.failures = 0;
        let start = ctx.sample_duration(&self.provisioning_restart);
        let after = backoff.saturating_add(start);
        ctx.send(
            self.ids[slot],
            M::wrap(Log::Control(Control::Restart { after })),
        );
        let m = self.metrics.expect("registered at start");
        ctx.metrics().inc(m.liveness_restarts);
        ctx.trace_note(&format!("liveness: restarting pod {slot} in {after}"));
        self.restart_in_place(ctx, slot, after);
        self.kubelets[slot].in_place = true;
    }
}

impl<M: Carry<Log>> Actor<M> for GroupController<M> {
    fn on_start(&mut self, ctx: &mut Ctx<'_, M>) {
        self.metrics = Some(ControllerMetrics {
            replicas: ctx.gauge("replicas"),
            ready: ctx.gauge("replicas_ready"),
            desired: ctx.gauge("desired_replicas"),
            scale_ups: ctx.counter("scale_ups_total"),
            scale_downs: ctx.counter("scale_downs_total"),
            restarts: ctx.counter("restarts_total"),
            liveness_restarts: ctx.counter("liveness_restarts_total"),
        });
        let now = ctx.now();
        for k in &mut self.kubelets {
            k.started = now;
            k.answered = true;
        }
        if let Some(l) = &self.config.liveness {
            let period = l.period;
            self.timer(ctx, period, PROBE, 0);
        }
        let name = ctx.name().to_string();
        self.ids = (0..self.pods.len() as u32)
            .map(|i| {
                let pod = replica_name(&name, i);
                ctx.lookup(&pod)
                    .unwrap_or_else(|| panic!("{name}: replica `{pod}` was not spawned"))
            })
            .collect();
        let broker = &self.config.consumer.broker;
        self.broker = Some(
            ctx.lookup(broker)
                .unwrap_or_else(|| panic!("{name}: no broker `{broker}`")),
        );
        // What the controller knew is lost in a crash; the pods as they were are not (they
        // are the cluster's), but a restarted controller counts from the config again.
        let m = self.metrics.expect("just registered");
        ctx.metrics().set(m.desired, f64::from(self.created()));
        if let Some(a) = &self.config.autoscaler {
            let mut autoscaler = Autoscaler::new(a.clone(), self.created(), ctx.now());
            autoscaler.set_partitions(Some(self.config.consumer.partitions));
            let first = a.polling_interval;
            self.autoscaler = Some(autoscaler);
            self.timer(ctx, first, POLL, 0);
        }
        if let Some(r) = &self.config.rollout {
            self.rollout = (0..self.pods.len()).collect();
            let at = r.at;
            ctx.set_timer_at(
                at.max(ctx.now()),
                M::wrap(Log::Tick(Tick::Group {
                    kind: ROLLOUT,
                    seq: 0,
                })),
            );
        }
        self.update_gauges(ctx);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, M>, _from: ActorId, msg: M) {
        match msg.unwrap() {
            Some(Log::LagReply(reply)) if reply.id == self.round => {
                let total: u64 = reply.lags.iter().sum();
                let lag = PodMetrics {
                    sum: total as f64,
                    ..PodMetrics::default()
                };
                self.decide(ctx, lag);
            }
            Some(Log::ProbeReply(reply)) => self.on_probe_reply(ctx, reply),
            Some(Log::UsageReply(reply)) => {
                let (round, slot) = (query_round(reply.id), query_slot(reply.id));
                let Some(poll) = self.usage.as_mut().filter(|p| p.round == round) else {
                    return;
                };
                let Some(answer) = poll.answers.get_mut(slot).filter(|a| a.is_none()) else {
                    return;
                };
                *answer = Some(reply);
                poll.waiting = poll.waiting.saturating_sub(1);
                if poll.waiting == 0 {
                    self.finish_usage(ctx);
                }
            }
            _ => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, M>, msg: M) {
        let Some(Log::Tick(Tick::Group { kind, seq })) = msg.unwrap() else {
            return;
        };
        match kind {
            POLL => self.on_poll(ctx),
            PROVISIONED => self.on_provisioned(ctx, seq),
            ROLLOUT => self.on_rollout_step(ctx),
            USAGE_DEADLINE if self.usage.as_ref().is_some_and(|p| p.round == seq) => {
                self.finish_usage(ctx)
            }
            PROBE => self.on_probe(ctx),
            _ => {}
        }
    }
}

/// A deployed group, ready to spawn: each replica with its pod name, the controller, and the
/// ledger they share (for inspection).
pub struct Deployed<M> {
    pub replicas: Vec<(String, Consumer<M>)>,
    pub controller: GroupController<M>,
    pub ledger: SharedLedger,
}

/// Builds the replicas of the group `name` and its controller, sharing one ledger: spawn each
/// replica as `replica_name(name, i)` (before the controller, which looks them up at its
/// start) and the controller as `name`.
pub fn build<M: Carry<Log>>(
    config: &ConsumerGroupConfig,
    name: &str,
) -> Result<Deployed<M>, ConfigError> {
    config.validate()?;
    let c = &config.consumer;
    let ledger = Ledger::shared(name, &c.topic, c.partitions);
    let mut replicas = Vec::new();
    for i in 0..config.slots() {
        let consumer = Consumer::new(config.replica(name, i))?.with_ledger(ledger.clone());
        let consumer = if i < config.replicas {
            consumer
        } else {
            consumer.stopped()
        };
        replicas.push((replica_name(name, i), consumer));
    }
    let controller = GroupController::new(config.clone())?;
    Ok(Deployed {
        replicas,
        controller,
        ledger,
    })
}
