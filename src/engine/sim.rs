//! The simulation: actors on hosts, one event queue, one virtual clock, and the run loop.
//!
//! [`Sim`] owns the actors and a [`Core`] that holds everything else (queue, network, metrics,
//! trace, random streams). Keeping the two apart is what lets an actor's handler borrow the core
//! mutably through its [`Ctx`] while the actor itself is borrowed.
//!
//! Events are processed strictly in `(time, seq)` order. [`Sim::step`] cannot fail: a message to
//! a crashed actor is dropped and counted, an event for a paused actor waits in its backlog, a
//! limit reached is a [`Verdict`]. Every processed event is folded into the trace hash.
//!
//! Crash semantics: a crash drops the actor's instance (its volatile state) and bumps its
//! incarnation; a restart bumps it again, builds a fresh instance from the factory and calls
//! `on_start`. Every timer and message carries the incarnation of its target at the moment it
//! was created, and is delivered only to that incarnation. So timers die with the process, and
//! a message sent to a process that has since crashed is lost — as with a TCP connection reset —
//! even if the process is back by the time the message arrives.
//!
//! A crash also closes the process's connections: an actor that watches another
//! ([`Ctx::monitor`]) is sent the message it chose when the incarnation it watched crashes,
//! across the network from the dead actor's host (the RST of its kernel); if the target is
//! already down, the attempt crosses to its host and is refused there, a round trip (a SYN
//! answered by an RST), unless the target is back by then. This is how a client fails its
//! requests to a crashed server at once instead of after its request timeout; a partition,
//! which sends no RST, still leaves it to the timeout.
//!
//! An actor may crash itself ([`Ctx::crash_self`]): the same crash, applied as soon as its
//! handler returns, and optionally a restart after a delay, scheduled as an event of its own.
//! A crash or restart from outside cancels that pending restart, so a fault plan always has the
//! last word over an actor's fate.

use std::collections::BTreeMap;

use crate::actor::{Actor, ActorId, Ctx, Factory, Message, boxed_factory};
use crate::engine::queue::{EventKey, EventQueue};
use crate::engine::rng::{SimRng, Streams};
use crate::engine::time::{SimDuration, SimTime};
use crate::engine::trace::{Divergence, Trace, TraceKind, TraceRecord, first_divergence};
use crate::fault::{Fault, FaultError, FaultPlan, Skew, Timing, suggest};
use crate::metrics::{CounterId, Metrics};
use crate::net::{CutMode, Fate, HostId, LinkSpec, NetError, Network};

/// An event in the queue.
#[derive(Clone, Debug)]
pub(crate) enum Event<M> {
    Start {
        to: ActorId,
        inc: u32,
    },
    Deliver {
        to: ActorId,
        from: ActorId,
        inc: u32,
        msg: M,
    },
    Timer {
        to: ActorId,
        inc: u32,
        msg: M,
    },
    Fault {
        action: u32,
    },
    /// The restart an actor asked for when it crashed itself ([`Ctx::crash_self`]). Not
    /// addressed to an incarnation: while it is pending the actor is down, and any crash or
    /// restart from outside cancels it.
    Restart {
        to: ActorId,
    },
    /// A connection attempt ([`Ctx::monitor`] of a target that was down) reaching the target's
    /// host: refused there if the target is still down, the RST taking the trip back;
    /// established if it is back.
    Connect {
        target: ActorId,
        watcher: ActorId,
        watcher_inc: u32,
        msg: M,
    },
}

impl<M> Event<M> {
    fn target(&self) -> Option<(ActorId, u32)> {
        match *self {
            Event::Start { to, inc }
            | Event::Deliver { to, inc, .. }
            | Event::Timer { to, inc, .. } => Some((to, inc)),
            Event::Fault { .. } | Event::Restart { .. } | Event::Connect { .. } => None,
        }
    }

    fn kind(&self) -> TraceKind {
        match self {
            Event::Start { .. } => TraceKind::Start,
            Event::Deliver { .. } => TraceKind::Message,
            Event::Timer { .. } => TraceKind::Timer,
            Event::Fault { .. } => TraceKind::Fault,
            Event::Restart { .. } => TraceKind::SelfRestart,
            Event::Connect { .. } => TraceKind::Connect,
        }
    }
}

/// Whether an actor is running.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Status {
    Up,
    Paused,
    Down,
}

/// Per-actor state the run loop touches on every event, kept small (one cache line) because a
/// large model's actors do not fit in cache: names, factories and backlogs live elsewhere.
pub(crate) struct Proc<M: Message> {
    /// Bumped on crash and on restart; events carry the value current when they were created.
    pub(crate) inc: u32,
    pub(crate) status: Status,
    pub(crate) host: HostId,
    /// Service-time multiplier from a `Slow` fault.
    pub(crate) slow: f64,
    /// The running instance (volatile state); None while down, and while its handler runs.
    instance: Option<Box<dyn Actor<M>>>,
    /// Created on first use: most actors in a large model never draw.
    rng: Option<Box<SimRng>>,
}
/// A watcher's monitor of one incarnation of a target ([`Ctx::monitor`]).
struct Monitor<M> {
    /// The watcher's incarnation when it asked: a restarted watcher's old connections are gone.
    watcher_inc: u32,
    /// The target incarnation watched: a crash of a later one is another connection's.
    target_inc: u32,
    /// Delivered to the watcher, from the target, when that incarnation crashes.
    msg: M,
}

/// A message buffered by a cut in hold mode.
struct Held<M> {
    src: HostId,
    dst: HostId,
    event: Event<M>,
}

/// Limits on a run. Reaching one ends the run with a verdict naming it, never a hang.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Most events processed.
    pub max_events: u64,
    /// No event after this true time is processed.
    pub max_time: SimTime,
    /// Most events pending at once (a runaway feedback loop shows up here first).
    pub max_queue: usize,
}

impl Default for Limits {
    fn default() -> Self {
        // Generous but finite: a billion events is minutes of CPU, not hours.
        Limits {
            max_events: 1_000_000_000,
            max_time: SimTime::MAX,
            max_queue: 50_000_000,
        }
    }
}

/// Which limit ended a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    Events,
    Time,
    Queue,
}

/// How a call to [`Sim::run_until`] or [`Sim::run`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The requested time was reached.
    Reached,
    /// No events were left before the requested time.
    Drained,
    /// A limit was hit.
    Limit(LimitKind),
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Reached => write!(f, "reached the requested time"),
            Verdict::Drained => write!(f, "no events left"),
            Verdict::Limit(LimitKind::Events) => {
                write!(f, "stopped: the event limit (max_events) was reached")
            }
            Verdict::Limit(LimitKind::Time) => {
                write!(f, "stopped: the time limit (max_time) was reached")
            }
            Verdict::Limit(LimitKind::Queue) => {
                write!(
                    f,
                    "stopped: the pending-event limit (max_queue) was reached: a runaway feedback loop?"
                )
            }
        }
    }
}

/// What one turn of the run loop did (internal: also knows "the next event is past the bound").
enum Progress {
    Processed,
    Idle,
    Beyond,
    Limit(LimitKind),
}

/// What one [`Sim::step`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// One event was processed.
    Processed,
    /// The queue is empty.
    Idle,
    /// A limit stops the run (the event, if any, was processed first for the queue limit).
    Limit(LimitKind),
}

/// Counters of what the engine did, for reports and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Events processed, of every kind.
    pub events: u64,
    pub messages: u64,
    pub timers: u64,
    pub faults: u64,
    /// Events for a crashed actor.
    pub dropped_down: u64,
    /// Events for an earlier incarnation.
    pub dropped_stale: u64,
    /// Events deferred into a paused actor's backlog.
    pub deferred: u64,
    /// Messages lost to link loss.
    pub lost: u64,
    /// Messages lost to a cut in drop mode.
    pub cut: u64,
    /// Messages held by a cut in hold mode.
    pub held: u64,
    /// Extra copies made by duplication.
    pub duplicated: u64,
    /// The most events pending at once.
    pub queue_peak: usize,
    /// Actors that crashed themselves ([`Ctx::crash_self`]).
    pub self_crashes: u64,
    /// Restarts an actor asked for when it crashed itself, or its killer asked for ([`Ctx::kill`]),
    /// carried out (not those cancelled by a
    /// crash or restart from outside in the meantime).
    pub self_restarts: u64,
    /// Actors killed by another actor ([`Ctx::kill`]) while they were up or paused.
    pub kills: u64,
}

/// Errors in assembling a simulation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    #[error("there is already an actor named {0:?}")]
    DuplicateActor(String),
    #[error("an actor name must not be empty")]
    EmptyName,
    #[error("no host with id {0:?}")]
    NoSuchHost(HostId),
    #[error(transparent)]
    Net(#[from] NetError),
    #[error(transparent)]
    Fault(#[from] FaultError),
}

/// What a fault does once names are resolved.
#[derive(Clone, Debug)]
enum Action {
    Crash(Vec<ActorId>),
    Restart(Vec<ActorId>),
    Pause(Vec<ActorId>),
    Resume(Vec<ActorId>),
    Slow(Vec<ActorId>, f64),
    ClockOffset(HostId, i64),
    ClockDrift(HostId, i64),
    ClockStep(HostId, i64),
    Cut(Vec<(HostId, HostId)>, CutMode),
    Uncut(Vec<(HostId, HostId)>),
    HealAll,
    Link(HostId, HostId, LinkSpec),
}

/// Everything but the actors: what a [`Ctx`] reaches.
pub struct Core<M: Message> {
    pub(crate) now: SimTime,
    pub(crate) queue: EventQueue<Event<M>>,
    pub(crate) procs: Vec<Proc<M>>,
    /// Actor names by id.
    pub(crate) proc_names: Vec<String>,
    pub(crate) names: BTreeMap<String, ActorId>,
    /// Events that arrived while an actor was paused, in arrival order.
    backlogs: BTreeMap<ActorId, Vec<Event<M>>>,
    pub(crate) net: Network,
    net_rng: SimRng,
    held: Vec<Held<M>>,
    pub(crate) metrics: Metrics,
    pub(crate) trace: Trace,
    streams: Streams,
    pub(crate) spawns: Vec<(ActorId, Factory<M>)>,
    /// Set by [`Ctx::crash_self`] during a handler: the actor and the restart delay it asked
    /// for. Applied (and cleared) as soon as the handler returns.
    pub(crate) self_crash: Option<(ActorId, Option<SimDuration>)>,
    /// Set by [`Ctx::kill`] during a handler: (victim, restart delay), applied in order as soon
    /// as the handler returns.
    pub(crate) kills: Vec<(ActorId, Option<SimDuration>)>,
    /// Pending restarts asked for by self-crashes, by actor: cancelled by any crash or restart
    /// from outside, which takes over the actor's fate.
    restarts: BTreeMap<ActorId, (EventKey, SimTime)>,
    /// Connections watched for a reset ([`Ctx::monitor`]), by (target, watcher): at most one
    /// per pair, fired (and removed) when that incarnation of the target crashes.
    monitors: BTreeMap<(ActorId, ActorId), Monitor<M>>,
    stats: Stats,
    limits: Limits,
    actions: Vec<(Action, String)>,
    net_counters: [CounterId; 4],
}

impl<M: Message> Core<M> {
    /// The stream of actor `id`, created on first use from `(seed, "actor/" + name)`.
    #[inline]
    pub(crate) fn rng_of(&mut self, id: ActorId) -> &mut SimRng {
        let (streams, names) = (self.streams, &self.proc_names);
        self.procs[id.index()]
            .rng
            .get_or_insert_with(|| Box::new(streams.fork(&format!("actor/{}", names[id.index()]))))
    }

    pub(crate) fn reserve(&mut self, host: HostId, name: &str) -> Result<ActorId, SimError> {
        if name.is_empty() {
            return Err(SimError::EmptyName);
        }
        if self.names.contains_key(name) {
            return Err(SimError::DuplicateActor(name.to_string()));
        }
        if host.index() >= self.net.host_count() {
            return Err(SimError::NoSuchHost(host));
        }
        let id = ActorId(self.procs.len() as u32);
        self.procs.push(Proc {
            inc: 0,
            status: Status::Down,
            host,
            slow: 1.0,
            instance: None,
            rng: None,
        });
        self.proc_names.push(name.to_string());
        self.names.insert(name.to_string(), id);
        Ok(id)
    }

    #[inline]
    pub(crate) fn send(&mut self, from: ActorId, to: ActorId, msg: M) {
        let target = &self.procs[to.index()];
        let (inc, dst) = (target.inc, target.host);
        let src = self.procs[from.index()].host;
        self.transmit(src, dst, Event::Deliver { to, from, inc, msg });
    }

    /// Puts `event` on the wire from host `src` to host `dst`: at once on one host, otherwise
    /// with the network's fate (delayed, lost, duplicated, held or cut).
    #[inline]
    fn transmit(&mut self, src: HostId, dst: HostId, event: Event<M>) {
        if src == dst {
            self.queue.push(self.now.as_nanos(), event);
            return;
        }
        let fate = self.net.route(self.now, src, dst, &mut self.net_rng);
        self.carry_out(fate, src, dst, event);
    }

    /// `watcher` watches its connection to `target` ([`Ctx::monitor`]).
    pub(crate) fn monitor(&mut self, watcher: ActorId, target: ActorId, msg: M) {
        let t = &self.procs[target.index()];
        let watcher_inc = self.procs[watcher.index()].inc;
        if t.status == Status::Down {
            // A SYN to a dead port: it crosses the network (and can be lost, held or cut like
            // any packet), and at the far end [`Core::connect_arrived`] refuses it or, if the
            // target is back by then, connects.
            self.monitors.remove(&(target, watcher));
            let (src, dst) = (self.procs[watcher.index()].host, t.host);
            let event = Event::Connect {
                target,
                watcher,
                watcher_inc,
                msg,
            };
            self.transmit(src, dst, event);
            return;
        }
        self.watch(target, watcher, watcher_inc, msg);
    }

    /// Records a connection of incarnation `watcher_inc` of `watcher` to the incarnation of
    /// `target` running now.
    fn watch(&mut self, target: ActorId, watcher: ActorId, watcher_inc: u32, msg: M) {
        let monitor = Monitor {
            watcher_inc,
            target_inc: self.procs[target.index()].inc,
            msg,
        };
        self.monitors.insert((target, watcher), monitor);
    }

    /// Traces a connection attempt's arrival: the target is the event's actor, the watcher
    /// its sender.
    fn trace_connect(&mut self, target: ActorId, watcher: ActorId) {
        let now = self.now;
        (self.trace).fold(now, TraceKind::Connect, Some(target.0), Some(watcher.0));
        if self.trace.recording() {
            let name = |id: ActorId| Some(self.proc_names[id.index()].clone());
            let (actor, from) = (name(target), name(watcher));
            let detail = "connection attempt".to_string();
            (self.trace).push_record(now, TraceKind::Connect, actor, from, detail);
        }
    }

    /// A connection attempt reached the target's host. A watcher that crashed since it tried
    /// has no connection to finish. A target still down refuses it: the reset goes back over
    /// the network, so a refusal costs a round trip, as a SYN answered by an RST does. A
    /// target that is up again (or paused: its kernel still accepts) is watched from now on.
    fn connect_arrived(&mut self, target: ActorId, watcher: ActorId, watcher_inc: u32, msg: M) {
        let w = &self.procs[watcher.index()];
        if w.inc != watcher_inc || w.status == Status::Down {
            return;
        }
        if self.procs[target.index()].status == Status::Down {
            self.send(target, watcher, msg);
        } else {
            self.watch(target, watcher, watcher_inc, msg);
        }
    }

    /// Incarnation `inc` of `target` crashed: each live watcher of it is sent its reset, from
    /// the target's host, so that a cut between the two hosts stops it as it stops any packet.
    fn fire_monitors(&mut self, target: ActorId, inc: u32) {
        let watchers: Vec<ActorId> = (self.monitors)
            .range((target, ActorId(0))..=(target, ActorId(u32::MAX)))
            .map(|(&(_, w), _)| w)
            .collect();
        for w in watchers {
            let m = self.monitors.remove(&(target, w)).expect("just listed");
            let watcher = &self.procs[w.index()];
            let live = watcher.inc == m.watcher_inc && watcher.status != Status::Down;
            if live && m.target_inc == inc {
                self.send(target, w, m.msg);
            }
        }
    }

    fn carry_out(&mut self, fate: Fate, src: HostId, dst: HostId, event: Event<M>) {
        match fate {
            Fate::Deliver(at) => {
                self.queue.push(at.as_nanos(), event);
            }
            Fate::Twice(first, second) => {
                self.stats.duplicated += 1;
                self.metrics.add(self.net_counters[3], 1);
                self.queue.push(first.as_nanos(), event.clone());
                self.queue.push(second.as_nanos(), event);
            }
            Fate::Lost => {
                self.stats.lost += 1;
                self.metrics.add(self.net_counters[0], 1);
            }
            Fate::Cut => {
                self.stats.cut += 1;
                self.metrics.add(self.net_counters[1], 1);
            }
            Fate::Held => {
                self.stats.held += 1;
                self.metrics.add(self.net_counters[2], 1);
                self.held.push(Held { src, dst, event });
            }
        }
    }

    /// Sends again every held message whose direction is no longer cut, in the order held.
    fn release_held(&mut self) {
        if self.held.is_empty() {
            return;
        }
        let held = std::mem::take(&mut self.held);
        for h in held {
            if self.net.is_cut(h.src, h.dst).is_some() {
                self.held.push(h);
            } else {
                let fate = self.net.transmit(self.now, h.src, h.dst, &mut self.net_rng);
                self.carry_out(fate, h.src, h.dst, h.event);
            }
        }
    }
}

/// Configuration of a simulation.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub seed: u64,
    pub limits: Limits,
    /// Interval of metric time series (None: no series).
    pub sample_interval: Option<SimDuration>,
    /// Keep the full trace (for JSON-lines export and divergence reports). Costs a string per event.
    pub record_trace: bool,
    /// The link used between hosts with no declared link.
    pub default_link: LinkSpec,
}

impl SimConfig {
    pub fn new(seed: u64) -> Self {
        SimConfig {
            seed,
            limits: Limits::default(),
            sample_interval: None,
            record_trace: false,
            default_link: LinkSpec::constant(SimDuration::from_millis(1)),
        }
    }
}

/// A simulation: assemble it (hosts, links, actors, faults), then run it.
pub struct Sim<M: Message> {
    /// Each actor's factory, by id: called at the start and at every restart.
    factories: Vec<Factory<M>>,
    core: Core<M>,
}

impl<M: Message> Sim<M> {
    /// An empty simulation with `seed` and default limits.
    pub fn new(seed: u64) -> Self {
        Self::with_config(SimConfig::new(seed)).expect("the default configuration is valid")
    }

    pub fn with_config(config: SimConfig) -> Result<Self, SimError> {
        let streams = Streams::new(config.seed);
        let mut metrics = Metrics::new(config.sample_interval);
        let net_counters = [
            metrics.counter("net", "lost_total"),
            metrics.counter("net", "cut_total"),
            metrics.counter("net", "held_total"),
            metrics.counter("net", "duplicated_total"),
        ];
        Ok(Sim {
            factories: Vec::new(),
            core: Core {
                now: SimTime::ZERO,
                queue: EventQueue::new(),
                procs: Vec::new(),
                proc_names: Vec::new(),
                backlogs: BTreeMap::new(),
                names: BTreeMap::new(),
                net: Network::new(config.default_link)?,
                net_rng: streams.fork("net"),
                held: Vec::new(),
                metrics,
                trace: Trace::new(config.record_trace),
                streams,
                spawns: Vec::new(),
                self_crash: None,
                kills: Vec::new(),
                restarts: BTreeMap::new(),
                monitors: BTreeMap::new(),
                stats: Stats::default(),
                limits: config.limits,
                actions: Vec::new(),
                net_counters,
            },
        })
    }

    // ----- assembly -------------------------------------------------------------------------

    /// Adds a host.
    pub fn add_host(&mut self, name: &str) -> Result<HostId, SimError> {
        Ok(self.core.net.add_host(name)?)
    }

    /// Declares the link between two hosts (both directions).
    pub fn link(&mut self, a: HostId, b: HostId, spec: LinkSpec) -> Result<(), SimError> {
        Ok(self.core.net.link(a, b, spec)?)
    }

    /// The network, to declare one-way links or inspect cuts and clocks.
    pub fn net(&self) -> &Network {
        &self.core.net
    }

    pub fn net_mut(&mut self) -> &mut Network {
        &mut self.core.net
    }

    /// Adds an actor on `host`; `factory` builds its volatile state now and after every restart.
    /// It starts (`on_start`) at the current time, after events already scheduled for it.
    pub fn spawn<A: Actor<M>>(
        &mut self,
        host: HostId,
        name: &str,
        factory: impl FnMut() -> A + 'static,
    ) -> Result<ActorId, SimError> {
        let id = self.core.reserve(host, name)?;
        self.install(id, boxed_factory(factory));
        Ok(id)
    }

    fn install(&mut self, id: ActorId, mut factory: Factory<M>) {
        debug_assert_eq!(
            id.index(),
            self.factories.len(),
            "actors are installed in id order"
        );
        let instance = factory();
        self.factories.push(factory);
        let p = &mut self.core.procs[id.index()];
        p.instance = Some(instance);
        p.status = Status::Up;
        let ev = Event::Start { to: id, inc: p.inc };
        self.core.queue.push(self.core.now.as_nanos(), ev);
    }

    fn install_spawns(&mut self) {
        let spawns = std::mem::take(&mut self.core.spawns);
        for (id, factory) in spawns {
            self.install(id, factory);
        }
    }

    /// Schedules every fault of `plan`, resolving names now (an unknown name is an error and
    /// nothing of the plan is scheduled).
    pub fn add_faults(&mut self, plan: &FaultPlan) -> Result<(), SimError> {
        plan.validate()?;
        let mut scheduled = Vec::new();
        for entry in &plan.entries {
            let timing = entry.timing()?;
            let (apply, undo) = self.resolve(&entry.fault)?;
            let label = describe(&entry.fault);
            match timing {
                Timing::At(at) => scheduled.push((at, apply, label)),
                Timing::Window { from, until } => {
                    scheduled.push((from, apply, label.clone()));
                    if let Some(undo) = undo {
                        scheduled.push((until, undo, format!("end of {label}")));
                    }
                }
            }
        }
        if let Some(&(at, ..)) = scheduled.iter().find(|(at, ..)| *at < self.core.now) {
            return Err(FaultError::InThePast {
                at,
                now: self.core.now,
            }
            .into());
        }
        for (at, action, label) in scheduled {
            let idx = self.core.actions.len() as u32;
            self.core.actions.push((action, label));
            self.core
                .queue
                .push(at.as_nanos(), Event::Fault { action: idx });
        }
        Ok(())
    }

    fn resolve_targets(&self, name: &str) -> Result<Vec<ActorId>, FaultError> {
        if let Some(&id) = self.core.names.get(name) {
            return Ok(vec![id]);
        }
        if let Some(host) = self.core.net.host(name) {
            return Ok(self
                .core
                .procs
                .iter()
                .enumerate()
                .filter(|(_, p)| p.host == host)
                .map(|(i, _)| ActorId(i as u32))
                .collect());
        }
        let candidates = self
            .core
            .names
            .keys()
            .map(String::as_str)
            .chain(self.core.net.hosts().map(|(_, n)| n));
        Err(FaultError::UnknownTarget {
            name: name.to_string(),
            suggestion: suggest(name, candidates),
        })
    }

    fn resolve_host(&self, name: &str) -> Result<HostId, FaultError> {
        self.core
            .net
            .host(name)
            .ok_or_else(|| FaultError::UnknownHost {
                name: name.to_string(),
                suggestion: suggest(name, self.core.net.hosts().map(|(_, n)| n)),
            })
    }

    fn resolve_hosts(&self, names: &[String]) -> Result<Vec<HostId>, FaultError> {
        names.iter().map(|n| self.resolve_host(n)).collect()
    }

    /// The action a fault performs, and the one that undoes it at the end of a window.
    fn resolve(&self, fault: &Fault) -> Result<(Action, Option<Action>), SimError> {
        Ok(match fault {
            Fault::Crash { target } => {
                let t = self.resolve_targets(target)?;
                (Action::Crash(t.clone()), Some(Action::Restart(t)))
            }
            Fault::Restart { target } => (Action::Restart(self.resolve_targets(target)?), None),
            Fault::Pause { target } => {
                let t = self.resolve_targets(target)?;
                (Action::Pause(t.clone()), Some(Action::Resume(t)))
            }
            Fault::Resume { target } => (Action::Resume(self.resolve_targets(target)?), None),
            Fault::Slow { target, factor } => {
                let t = self.resolve_targets(target)?;
                (Action::Slow(t.clone(), *factor), Some(Action::Slow(t, 1.0)))
            }
            Fault::ClockOffset { host, offset } => {
                let h = self.resolve_host(host)?;
                (
                    Action::ClockOffset(h, offset.nanos),
                    Some(Action::ClockOffset(h, 0)),
                )
            }
            Fault::ClockDrift { host, ppm } => {
                let h = self.resolve_host(host)?;
                let ppb = libm::round(ppm * 1000.0) as i64;
                (Action::ClockDrift(h, ppb), Some(Action::ClockDrift(h, 0)))
            }
            Fault::ClockStep { host, by } => {
                let h = self.resolve_host(host)?;
                let Skew { nanos } = *by;
                (
                    Action::ClockStep(h, nanos),
                    Some(Action::ClockStep(h, nanos.saturating_neg())),
                )
            }
            Fault::Partition { a, b, mode } => {
                let (a, b) = (self.resolve_hosts(a)?, self.resolve_hosts(b)?);
                let mut pairs = Vec::new();
                for &x in &a {
                    for &y in &b {
                        if x != y {
                            pairs.push((x, y));
                            pairs.push((y, x));
                        }
                    }
                }
                (
                    Action::Cut(pairs.clone(), *mode),
                    Some(Action::Uncut(pairs)),
                )
            }
            Fault::OneWay { from, to, mode } => {
                let (a, b) = (self.resolve_hosts(from)?, self.resolve_hosts(to)?);
                let pairs: Vec<_> = a
                    .iter()
                    .flat_map(|&x| b.iter().filter(move |&&y| y != x).map(move |&y| (x, y)))
                    .collect();
                (
                    Action::Cut(pairs.clone(), *mode),
                    Some(Action::Uncut(pairs)),
                )
            }
            Fault::Heal => (Action::HealAll, None),
            Fault::LinkLatency { a, b, latency } => {
                let (ha, hb) = (self.resolve_host(a)?, self.resolve_host(b)?);
                let old = self.core.net.link_spec(ha, hb).clone();
                let new = LinkSpec {
                    latency: latency.clone(),
                    ..old.clone()
                };
                new.validate()?;
                (Action::Link(ha, hb, new), Some(Action::Link(ha, hb, old)))
            }
            Fault::LinkLoss { a, b, loss } => {
                let (ha, hb) = (self.resolve_host(a)?, self.resolve_host(b)?);
                let old = self.core.net.link_spec(ha, hb).clone();
                let new = LinkSpec {
                    loss: *loss,
                    ..old.clone()
                };
                new.validate()?;
                (Action::Link(ha, hb, new), Some(Action::Link(ha, hb, old)))
            }
        })
    }

    // ----- direct control (tests and tools; faults in plans do the same) --------------------

    /// Crashes an actor now: its instance is dropped, pending timers and backlog die, messages
    /// to it are dropped until it restarts.
    pub fn crash(&mut self, id: ActorId) {
        self.crash_as(id, false);
    }

    /// The crash itself; `killed` tells the instance it was killed by another actor.
    fn crash_as(&mut self, id: ActorId, killed: bool) {
        // A crash from outside takes over an actor that is waiting to come back from a crash
        // of its own: it stays down until something restarts it.
        if let Some((key, _)) = self.core.restarts.remove(&id) {
            let cancelled = self.core.queue.cancel(key);
            debug_assert!(cancelled.is_some(), "a pending restart is in the queue");
        }
        let p = &mut self.core.procs[id.index()];
        if p.status == Status::Down {
            return;
        }
        let crashed = p.inc;
        p.status = Status::Down;
        p.inc = p.inc.wrapping_add(1);
        if let Some(mut instance) = p.instance.take() {
            if killed {
                instance.on_killed(self.core.now, &mut self.core.metrics);
            } else {
                instance.on_crash(self.core.now, &mut self.core.metrics);
            }
        }
        self.core.backlogs.remove(&id);
        if !self.core.monitors.is_empty() {
            self.core.fire_monitors(id, crashed);
        }
    }

    /// Applies a [`Ctx::crash_self`] once the actor's handler has returned (its instance is
    /// already dropped): a crash as by a `Crash` fault, traced and counted, and the restart it
    /// asked for scheduled.
    fn crash_self_now(&mut self, id: ActorId, restart_after: Option<SimDuration>) {
        debug_assert_eq!(self.core.procs[id.index()].status, Status::Up);
        debug_assert!(self.core.procs[id.index()].instance.is_none());
        let now = self.core.now;
        self.crash(id);
        debug_assert_eq!(self.core.procs[id.index()].status, Status::Down);
        debug_assert!(
            !self.core.restarts.contains_key(&id),
            "crash() cancelled it"
        );
        self.core.stats.self_crashes += 1;
        self.core
            .trace
            .fold(now, TraceKind::SelfCrash, Some(id.0), None);
        if self.core.trace.recording() {
            let detail = match restart_after {
                Some(d) => format!("crash_self, restart after {d}"),
                None => "crash_self, no restart".to_string(),
            };
            let name = Some(self.core.proc_names[id.index()].clone());
            self.core
                .trace
                .push_record(now, TraceKind::SelfCrash, name, None, detail);
        }
        self.schedule_restart(id, restart_after);
    }

    /// A restart `restart_after` from now, if any, that a crash or restart from outside
    /// cancels.
    fn schedule_restart(&mut self, id: ActorId, restart_after: Option<SimDuration>) {
        if let Some(after) = restart_after {
            let at = self.core.now.saturating_add(after);
            let key = self
                .core
                .queue
                .push(at.as_nanos(), Event::Restart { to: id });
            self.core.restarts.insert(id, (key, at));
        }
    }

    /// Applies a [`Ctx::kill`] by `by` once its handler has returned: the victim crashes as by
    /// a `Crash` fault, at once even if it is paused (its backlog is discarded unread), and the
    /// restart asked for is scheduled. Killing an actor that is already down changes nothing
    /// (and does not schedule a restart: whatever crashed it decides its return).
    fn kill_now(&mut self, by: ActorId, id: ActorId, restart_after: Option<SimDuration>) {
        let now = self.core.now;
        if self.core.procs[id.index()].status == Status::Down {
            return;
        }
        self.crash_as(id, true);
        self.core.stats.kills += 1;
        self.core
            .trace
            .fold(now, TraceKind::Kill, Some(id.0), Some(by.0));
        if self.core.trace.recording() {
            let detail = match restart_after {
                Some(d) => format!("killed, restart after {d}"),
                None => "killed, no restart".to_string(),
            };
            let name = Some(self.core.proc_names[id.index()].clone());
            let from = Some(self.core.proc_names[by.index()].clone());
            self.core
                .trace
                .push_record(now, TraceKind::Kill, name, from, detail);
        }
        self.schedule_restart(id, restart_after);
    }

    /// The restart a self-crash asked for is due: the actor is still down (anything that
    /// crashed or restarted it since would have cancelled this event).
    fn restart_crashed_self(&mut self, id: ActorId) {
        let now = self.core.now;
        let pending = self.core.restarts.remove(&id);
        debug_assert!(pending.is_some(), "a due restart was pending");
        debug_assert_eq!(self.core.procs[id.index()].status, Status::Down);
        self.core.stats.self_restarts += 1;
        self.core
            .trace
            .fold(now, TraceKind::SelfRestart, Some(id.0), None);
        if self.core.trace.recording() {
            let name = Some(self.core.proc_names[id.index()].clone());
            let detail = "restart after crash_self".to_string();
            self.core
                .trace
                .push_record(now, TraceKind::SelfRestart, name, None, detail);
        }
        self.restart(id);
        debug_assert_eq!(self.core.procs[id.index()].status, Status::Up);
    }

    /// Restarts an actor now (crashing it first if it is up): a fresh instance from its factory,
    /// then `on_start`.
    pub fn restart(&mut self, id: ActorId) {
        self.crash(id);
        let instance = (self.factories[id.index()])();
        let p = &mut self.core.procs[id.index()];
        p.instance = Some(instance);
        p.status = Status::Up;
        p.inc = p.inc.wrapping_add(1);
        let ev = Event::Start { to: id, inc: p.inc };
        self.core.queue.push(self.core.now.as_nanos(), ev);
    }

    /// Pauses an actor now: it processes nothing until resumed.
    pub fn pause(&mut self, id: ActorId) {
        let p = &mut self.core.procs[id.index()];
        if p.status == Status::Up {
            p.status = Status::Paused;
        }
    }

    /// Resumes a paused actor: its backlog is re-queued at the current time, in arrival order.
    pub fn resume(&mut self, id: ActorId) {
        let now = self.core.now.as_nanos();
        let p = &mut self.core.procs[id.index()];
        if p.status != Status::Paused {
            return;
        }
        p.status = Status::Up;
        for ev in self.core.backlogs.remove(&id).unwrap_or_default() {
            self.core.queue.push(now, ev);
        }
    }

    fn apply(&mut self, action: Action) {
        match action {
            Action::Crash(ids) => ids.into_iter().for_each(|id| self.crash(id)),
            Action::Restart(ids) => ids.into_iter().for_each(|id| self.restart(id)),
            Action::Pause(ids) => ids.into_iter().for_each(|id| self.pause(id)),
            Action::Resume(ids) => ids.into_iter().for_each(|id| self.resume(id)),
            Action::Slow(ids, factor) => ids
                .into_iter()
                .for_each(|id| self.core.procs[id.index()].slow = factor),
            Action::ClockOffset(h, ns) => {
                let now = self.core.now;
                let clock = self.core.net.clock_mut(h);
                // Fold drift so far, then set the offset absolutely.
                clock.set_drift(now, clock.drift_ppb);
                clock.offset_ns = ns;
            }
            Action::ClockDrift(h, ppb) => {
                let now = self.core.now;
                self.core.net.clock_mut(h).set_drift(now, ppb);
            }
            Action::ClockStep(h, ns) => self.core.net.clock_mut(h).step(ns),
            Action::Cut(pairs, mode) => pairs
                .into_iter()
                .for_each(|(a, b)| self.core.net.cut(a, b, mode)),
            Action::Uncut(pairs) => {
                for (a, b) in pairs {
                    self.core.net.uncut(a, b);
                }
                self.core.release_held();
            }
            Action::HealAll => {
                self.core.net.heal_all();
                self.core.release_held();
            }
            Action::Link(a, b, spec) => {
                // Validated when the plan was added.
                if let Err(e) = self.core.net.link(a, b, spec) {
                    unreachable!("a link spec validated at plan time was rejected: {e}");
                }
            }
        }
    }

    // ----- running --------------------------------------------------------------------------

    /// Processes the next event, if a limit allows. Never fails.
    pub fn step(&mut self) -> Step {
        match self.advance(u64::MAX) {
            Progress::Processed => Step::Processed,
            Progress::Idle => Step::Idle,
            Progress::Limit(kind) => Step::Limit(kind),
            Progress::Beyond => unreachable!("no event is beyond the end of time"),
        }
    }

    /// Processes the next event if its time is at most `until` and no limit stops it: the one
    /// body of the run loop, with a single queue traversal per event.
    #[inline]
    fn advance(&mut self, until: u64) -> Progress {
        let limits = self.core.limits;
        if self.core.stats.events >= limits.max_events {
            return Progress::Limit(LimitKind::Events);
        }
        let bound = until.min(limits.max_time.as_nanos());
        let Some((t, event)) = self.core.queue.pop_until(bound) else {
            return match self.core.queue.peek_time() {
                None => Progress::Idle,
                // Past the time limit, and the caller wanted to go that far.
                Some(t) if t > limits.max_time.as_nanos() && until > limits.max_time.as_nanos() => {
                    Progress::Limit(LimitKind::Time)
                }
                Some(_) => Progress::Beyond,
            };
        };
        if self.core.procs.len() >= PREFETCH_ACTORS {
            self.warm_up_next();
        }
        self.dispatch(SimTime::from_nanos(t), event);
        let pending = self.core.queue.len();
        if pending > self.core.stats.queue_peak {
            self.core.stats.queue_peak = pending;
            if pending > limits.max_queue {
                return Progress::Limit(LimitKind::Queue);
            }
        }
        Progress::Processed
    }

    /// Software pipelining for large models, where every actor's state is a cache miss: while
    /// this event is handled, the next event's actor instance and random stream are loaded
    /// (their pointers sit in its `Proc`, fetched one event earlier), and the `Proc` of the event
    /// after it is fetched. Only hints: nothing read here affects results. Measured with
    /// `benches/compare.sh`: about 2x on the timers workload, 1.3x on many.
    // Out of line: small models never call it, and their loop stays tight.
    #[inline(never)]
    fn warm_up_next(&mut self) {
        let core = &mut self.core;
        if let Some(after) = core.queue.peek_after_next()
            && let Some((to, _)) = after.target()
        {
            prefetch_bytes(&core.procs[to.index()], 64);
        }
        if let Some((_, next)) = core.queue.peek()
            && let Some((to, _)) = next.target()
        {
            let p = &core.procs[to.index()];
            if let Some(instance) = p.instance.as_deref() {
                prefetch_bytes(instance, std::mem::size_of_val(instance).min(256));
            }
            if let Some(rng) = p.rng.as_deref() {
                prefetch_bytes(rng, std::mem::size_of::<SimRng>());
            }
        }
    }

    fn dispatch(&mut self, now: SimTime, event: Event<M>) {
        debug_assert!(now >= self.core.now, "time never goes backwards");
        let core = &mut self.core;
        core.now = now;
        core.metrics.advance_to(now);
        core.stats.events += 1;
        let Some((to, inc)) = event.target() else {
            let action = match event {
                Event::Fault { action } => action,
                Event::Restart { to } => {
                    self.restart_crashed_self(to);
                    return;
                }
                Event::Connect {
                    target,
                    watcher,
                    watcher_inc,
                    msg,
                } => {
                    core.trace_connect(target, watcher);
                    core.connect_arrived(target, watcher, watcher_inc, msg);
                    return;
                }
                _ => unreachable!("only faults, restarts and connections have no incarnation"),
            };
            core.stats.faults += 1;
            core.trace.fold(now, TraceKind::Fault, None, None);
            let (action, label) = core.actions[action as usize].clone();
            if core.trace.recording() {
                core.trace
                    .push_record(now, TraceKind::Fault, None, None, label);
            }
            self.apply(action);
            return;
        };
        let p = &mut core.procs[to.index()];
        let from = match &event {
            Event::Deliver { from, .. } => Some(from.0),
            _ => None,
        };
        let kind = if p.inc != inc {
            core.stats.dropped_stale += 1;
            TraceKind::Stale
        } else {
            match p.status {
                Status::Up => event.kind(),
                Status::Down => {
                    core.stats.dropped_down += 1;
                    TraceKind::Down
                }
                Status::Paused => {
                    core.stats.deferred += 1;
                    TraceKind::Deferred
                }
            }
        };
        core.trace.fold(now, kind, Some(to.0), from);
        if core.trace.recording() {
            let detail = match &event {
                Event::Start { .. } => "start".to_string(),
                Event::Deliver { msg, .. } | Event::Timer { msg, .. } => format!("{msg:?}"),
                Event::Fault { .. } | Event::Restart { .. } | Event::Connect { .. } => {
                    unreachable!()
                }
            };
            let name = |id: u32| core.proc_names[id as usize].clone();
            let (actor, from_name) = (Some(name(to.0)), from.map(name));
            core.trace.push_record(now, kind, actor, from_name, detail);
        }
        match kind {
            TraceKind::Deferred => {
                core.backlogs.entry(to).or_default().push(event);
                return;
            }
            TraceKind::Stale | TraceKind::Down => return,
            _ => {}
        }
        // Take the instance out while its handler runs, so the handler's Ctx can borrow the
        // whole core; it goes back right after.
        let mut instance = core.procs[to.index()]
            .instance
            .take()
            .expect("an actor that is up has an instance");
        let mut ctx = Ctx {
            core: &mut self.core,
            me: to,
        };
        match event {
            Event::Start { .. } => instance.on_start(&mut ctx),
            Event::Deliver { from, msg, .. } => {
                ctx.core.stats.messages += 1;
                instance.on_message(&mut ctx, from, msg);
            }
            Event::Timer { msg, .. } => {
                ctx.core.stats.timers += 1;
                instance.on_timer(&mut ctx, msg);
            }
            Event::Fault { .. } | Event::Restart { .. } | Event::Connect { .. } => {
                unreachable!()
            }
        }
        match self.core.self_crash.take() {
            None => self.core.procs[to.index()].instance = Some(instance),
            Some((who, restart_after)) => {
                debug_assert_eq!(who, to, "only the running actor can crash itself");
                // The instance the handler ran on is its volatile state: it goes with the crash.
                drop(instance);
                self.crash_self_now(to, restart_after);
            }
        }
        if !self.core.kills.is_empty() {
            for (victim, restart_after) in std::mem::take(&mut self.core.kills) {
                self.kill_now(to, victim, restart_after);
            }
        }
        if !self.core.spawns.is_empty() {
            self.install_spawns();
        }
    }

    /// Runs until the queue is empty or a limit is reached.
    pub fn run(&mut self) -> Verdict {
        let verdict = loop {
            match self.advance(u64::MAX) {
                Progress::Processed => {}
                Progress::Idle | Progress::Beyond => break Verdict::Drained,
                Progress::Limit(kind) => break Verdict::Limit(kind),
            }
        };
        self.core.metrics.finish(self.core.now);
        verdict
    }

    /// Processes every event at or before `until`, then moves the clock to `until` (unless a
    /// limit stopped the run first). Metrics are sampled up to `until`.
    pub fn run_until(&mut self, until: SimTime) -> Verdict {
        let verdict = loop {
            match self.advance(until.as_nanos()) {
                Progress::Processed => {}
                Progress::Beyond => break Verdict::Reached,
                Progress::Idle => break Verdict::Drained,
                Progress::Limit(LimitKind::Time) => break Verdict::Limit(LimitKind::Time),
                Progress::Limit(kind) => return Verdict::Limit(kind),
            }
        };
        if until > self.core.now {
            if until > self.core.limits.max_time {
                self.core.now = self.core.limits.max_time.max(self.core.now);
                self.core.metrics.finish(self.core.now);
                return Verdict::Limit(LimitKind::Time);
            }
            self.core.now = until;
        }
        self.core.metrics.finish(self.core.now);
        verdict
    }

    /// Runs for `d` more virtual time.
    pub fn run_for(&mut self, d: SimDuration) -> Verdict {
        let until = self.core.now.saturating_add(d);
        self.run_until(until)
    }

    // ----- observation ----------------------------------------------------------------------

    pub fn now(&self) -> SimTime {
        self.core.now
    }

    pub fn seed(&self) -> u64 {
        self.core.streams.seed()
    }

    /// The trace hash so far.
    pub fn trace_hash(&self) -> u64 {
        self.core.trace.hash()
    }

    pub fn trace(&self) -> &Trace {
        &self.core.trace
    }

    /// The full trace, if it was recorded.
    pub fn take_trace(&mut self) -> Option<Vec<TraceRecord>> {
        self.core.trace.take_records()
    }

    pub fn stats(&self) -> Stats {
        self.core.stats
    }

    pub fn metrics(&self) -> &Metrics {
        &self.core.metrics
    }

    pub fn metrics_mut(&mut self) -> &mut Metrics {
        &mut self.core.metrics
    }

    pub fn pending(&self) -> usize {
        self.core.queue.len()
    }

    pub fn limits(&self) -> Limits {
        self.core.limits
    }

    pub fn set_limits(&mut self, limits: Limits) {
        self.core.limits = limits;
    }

    pub fn lookup(&self, name: &str) -> Option<ActorId> {
        self.core.names.get(name).copied()
    }

    pub fn name_of(&self, id: ActorId) -> &str {
        &self.core.proc_names[id.index()]
    }

    pub fn host_of(&self, id: ActorId) -> HostId {
        self.core.procs[id.index()].host
    }

    pub fn status(&self, id: ActorId) -> Status {
        self.core.procs[id.index()].status
    }

    /// The actor's incarnation: 0 at its first start, bumped by every crash and every restart
    /// (so an actor that is up after `n` crash-and-restart cycles is at `2n`).
    pub fn incarnation(&self, id: ActorId) -> u32 {
        self.core.procs[id.index()].inc
    }

    /// When the restart an actor asked for by crashing itself is due, if one is pending.
    pub fn pending_restart(&self, id: ActorId) -> Option<SimTime> {
        let &(key, at) = self.core.restarts.get(&id)?;
        debug_assert!(self.core.queue.is_pending(key));
        Some(at)
    }

    pub fn actor_count(&self) -> usize {
        self.core.procs.len()
    }

    /// What `host`'s clock reads now.
    pub fn local_clock(&self, host: HostId) -> SimTime {
        self.core.net.clock(host).local(self.core.now)
    }

    /// Messages currently held by cuts in hold mode.
    pub fn held_count(&self) -> usize {
        self.core.held.len()
    }

    /// The actor's current instance as its concrete type, for inspection in tests and tools
    /// (None while it is down or if `A` is not its type).
    pub fn inspect<A: Actor<M>>(&self, id: ActorId) -> Option<&A> {
        let instance: &dyn std::any::Any = self.core.procs.get(id.index())?.instance.as_deref()?;
        instance.downcast_ref::<A>()
    }
}

fn describe(fault: &Fault) -> String {
    match fault {
        Fault::Crash { target } => format!("crash {target}"),
        Fault::Restart { target } => format!("restart {target}"),
        Fault::Pause { target } => format!("pause {target}"),
        Fault::Resume { target } => format!("resume {target}"),
        Fault::Slow { target, factor } => format!("slow {target} x{factor}"),
        Fault::ClockOffset { host, offset } => format!("clock of {host} offset {offset}"),
        Fault::ClockDrift { host, ppm } => format!("clock of {host} drifts {ppm} ppm"),
        Fault::ClockStep { host, by } => format!("clock of {host} steps {by}"),
        Fault::Partition { a, b, mode } => format!("partition {a:?} | {b:?} ({mode:?})"),
        Fault::OneWay { from, to, mode } => format!("cut {from:?} -> {to:?} ({mode:?})"),
        Fault::Heal => "heal".to_string(),
        Fault::LinkLatency { a, b, .. } => format!("latency change {a} <-> {b}"),
        Fault::LinkLoss { a, b, loss } => format!("loss {loss} on {a} <-> {b}"),
    }
}

/// The result of a determinism self-check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeterminismReport {
    pub hash: u64,
    pub events: u64,
}

/// Builds and runs a model twice to `until`, with the full trace, and compares. On a mismatch it
/// names the first event at which the two runs diverged.
pub fn check_determinism<M: Message>(
    mut build: impl FnMut(SimConfig) -> Sim<M>,
    config: SimConfig,
    until: SimTime,
) -> Result<DeterminismReport, Box<Divergence>> {
    let mut run = |config: SimConfig| {
        let mut sim = build(SimConfig {
            record_trace: true,
            ..config
        });
        sim.run_until(until);
        let hash = sim.trace_hash();
        let events = sim.trace().len();
        (hash, events, sim.take_trace().unwrap_or_default())
    };
    let (h1, n1, t1) = run(config.clone());
    let (h2, _, t2) = run(config);
    if h1 == h2 {
        return Ok(DeterminismReport {
            hash: h1,
            events: n1,
        });
    }
    let divergence = first_divergence(&t1, &t2).unwrap_or(Divergence {
        // Same records but different hashes: the difference is in something the record does
        // not show (a note's bytes are shown, so this should not happen); report the end.
        index: n1,
        left: None,
        right: None,
    });
    Err(Box::new(divergence))
}

/// From this many actors on, the run loop prefetches the next event's actor state: below it,
/// per-actor state (about 48 bytes each) fits in a core's L2 cache and the look-ahead costs more
/// than it saves (measured with `benches/compare.sh`: mm1 loses 15% with it).
const PREFETCH_ACTORS: usize = 4096;

/// Asks the CPU to start loading the cache lines of the first `len` bytes at `value`. A hint
/// only: it reads nothing and changes nothing, so it cannot affect results, only speed.
#[inline(always)]
fn prefetch_bytes<T: ?Sized>(value: &T, len: usize) {
    let start = (value as *const T).cast::<u8>();
    let mut offset = 0;
    while offset < len {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: PREFETCHT0 never faults and has no architectural effect, whatever the address
        // (here always inside or just past a live object). `_mm_prefetch` is unsafe only because
        // it is a `target_feature` function, and SSE is part of the x86_64 baseline.
        unsafe {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(offset).cast::<i8>());
        }
        offset += 64;
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = start;
}
