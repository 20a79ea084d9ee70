//! Actors, and the context through which they act.
//!
//! An actor is a sans-IO state machine: the engine calls [`Actor::on_start`],
//! [`Actor::on_message`] and [`Actor::on_timer`], and the actor answers only by writing intents
//! into its [`Ctx`] (send a message, set or cancel a timer, record a metric, draw a random
//! number). It never sees the queue, the network or the wall clock, so it cannot break
//! determinism by accident.
//!
//! **Crashes.** What an actor keeps in its own struct is *volatile*: a crash drops the struct,
//! and a restart builds a fresh one from the actor's factory. What must survive a crash (a
//! write-ahead log, a committed offset) lives in a [`Durable`] cell that the factory captures and
//! hands to each new incarnation. The separation is therefore enforced by ownership, not by
//! convention: state not reachable from a `Durable` is gone after a crash.
//!
//! An actor can also crash *itself* ([`Ctx::crash_self`]), optionally asking to be restarted
//! after a delay: that is how a process dies of its own state (a service out of memory) and an
//! orchestrator brings it back, with no fault plan scripting either.

use std::cell::{Ref, RefCell, RefMut};
use std::fmt;
use std::rc::Rc;

use crate::dist::Sampler;
use crate::engine::queue::EventKey;
use crate::engine::rng::SimRng;
use crate::engine::sim::{Core, Event};
use crate::engine::time::{SimDuration, SimTime};
use crate::metrics::{CounterId, GaugeId, HistogramId, Metrics};
use crate::net::HostId;

/// An actor's identity in one simulation: a dense index, stable for the whole run (a restarted
/// actor keeps its id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct ActorId(pub u32);

impl ActorId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for ActorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A pending timer, as returned by [`Ctx::set_timer`]; cancelling it is O(1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimerId(pub(crate) EventKey);

/// What can travel between actors. `Clone` because the network may duplicate a message; `Debug`
/// because the full trace prints it.
pub trait Message: Clone + fmt::Debug + 'static {}
impl<T: Clone + fmt::Debug + 'static> Message for T {}

/// A state machine driven by the engine. Only `on_message` is required.
pub trait Actor<M: Message>: std::any::Any {
    /// Called when the actor starts, and again after every restart (on a fresh instance).
    fn on_start(&mut self, ctx: &mut Ctx<'_, M>) {
        let _ = ctx;
    }

    /// Called when a message from `from` arrives.
    fn on_message(&mut self, ctx: &mut Ctx<'_, M>, from: ActorId, msg: M);

    /// Called when a timer set with [`Ctx::set_timer`] fires, with the message it carried.
    fn on_timer(&mut self, ctx: &mut Ctx<'_, M>, msg: M) {
        let _ = (ctx, msg);
    }

    /// Called when the actor is crashed from outside (a fault, [`Sim::crash`], a restart),
    /// just before its instance is dropped; not after [`Ctx::crash_self`], whose caller can
    /// say what it needs first. Nothing can be sent or scheduled: this is for instrumentation
    /// kept outside the actor (an oracle several actors share) to record that the process
    /// stopped, and must not change what any actor does.
    ///
    /// [`Sim::crash`]: crate::Sim::crash
    fn on_crash(&mut self, now: SimTime, metrics: &mut Metrics) {
        let _ = (now, metrics);
    }

    /// Called instead of [`on_crash`](Self::on_crash) when another actor kills this one
    /// ([`Ctx::kill`]: a power switch, a kubelet), under the same rules; by default the same
    /// as a crash. An actor whose instrumentation tells the two apart (a node powered off for
    /// good lets go of its copies in a shared oracle) overrides it.
    fn on_killed(&mut self, now: SimTime, metrics: &mut Metrics) {
        self.on_crash(now, metrics);
    }
}

/// Builds a fresh (volatile) instance of an actor: at the start and after every restart.
pub type Factory<M> = Box<dyn FnMut() -> Box<dyn Actor<M>>>;

/// State that survives a crash: the actor's "disk".
///
/// Create one, clone it into the actor's factory, and every incarnation sees the same value.
/// Single-threaded by design (a simulation runs on one thread; many seeds run on many).
pub struct Durable<T>(Rc<RefCell<T>>);

impl<T> Durable<T> {
    pub fn new(value: T) -> Self {
        Durable(Rc::new(RefCell::new(value)))
    }

    pub fn borrow(&self) -> Ref<'_, T> {
        self.0.borrow()
    }

    pub fn borrow_mut(&self) -> RefMut<'_, T> {
        self.0.borrow_mut()
    }
}

impl<T> Clone for Durable<T> {
    fn clone(&self) -> Self {
        Durable(Rc::clone(&self.0))
    }
}

impl<T: fmt::Debug> fmt::Debug for Durable<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Durable").field(&*self.0.borrow()).finish()
    }
}

/// The actor's window on the world during one handler call.
pub struct Ctx<'a, M: Message> {
    pub(crate) core: &'a mut Core<M>,
    pub(crate) me: ActorId,
}

impl<'a, M: Message> Ctx<'a, M> {
    /// This actor.
    #[inline]
    pub fn me(&self) -> ActorId {
        self.me
    }

    /// This actor's name.
    pub fn name(&self) -> &str {
        &self.core.proc_names[self.me.index()]
    }

    /// The host this actor runs on.
    #[inline]
    pub fn host(&self) -> HostId {
        self.core.procs[self.me.index()].host
    }

    /// True simulated time. Use it for measurement (latency = now - sent); use
    /// [`local_clock`](Self::local_clock) for anything the real system would read off its own
    /// clock (lease expiry, TTLs, timestamps).
    #[inline]
    pub fn now(&self) -> SimTime {
        self.core.now
    }

    /// What this host's clock reads now (offset, drift and steps applied).
    pub fn local_clock(&self) -> SimTime {
        self.core.net.clock(self.host()).local(self.core.now)
    }

    /// This host's clock (its offset, drift and the drift's anchor). For components that time
    /// durations on the host's oscillator: a monotonic clock ticks at the drift's rate but
    /// ignores offsets and steps, which only move the wall clock [`local_clock`](Self::local_clock)
    /// reads.
    pub fn clock(&self) -> crate::net::Clock {
        *self.core.net.clock(self.host())
    }

    /// Sends `msg` to `to`. Same-host messages arrive at the current instant (after the events
    /// already scheduled for it); others cross the network and may be delayed, lost, duplicated,
    /// held or cut.
    #[inline]
    pub fn send(&mut self, to: ActorId, msg: M) {
        self.core.send(self.me, to, msg);
    }

    /// Watches this actor's connection to `target`, as a TCP connection tells its end that the
    /// process at the other end died: when the incarnation of `target` running now crashes
    /// (or is killed, or restarted), `msg` is delivered to this actor from `target`, across
    /// the network — so a cut between the hosts stops it, as it stops the RST a dying process's
    /// kernel sends. If `target` is down now, the attempt crosses to its host and is refused
    /// there if it is still down: `msg` comes back a round trip later (a SYN answered by an
    /// RST); if `target` is back by the time the attempt arrives, it is watched. One-shot, and
    /// one per pair: a second call replaces the first (a new connection). Lost with this actor's own crash; a paused `target` (a GC pause, a
    /// SIGSTOP) keeps its connections.
    pub fn monitor(&mut self, target: ActorId, msg: M) {
        self.core.monitor(self.me, target, msg);
    }

    /// Sets a timer that delivers `msg` back to this actor after `after`.
    #[inline]
    pub fn set_timer(&mut self, after: SimDuration, msg: M) -> TimerId {
        let at = self.core.now.saturating_add(after);
        self.set_timer_at(at, msg)
    }

    /// Sets a timer for the absolute true time `at` (clamped to now if it is in the past).
    #[inline]
    pub fn set_timer_at(&mut self, at: SimTime, msg: M) -> TimerId {
        let at = at.max(self.core.now);
        let p = &self.core.procs[self.me.index()];
        let ev = Event::Timer {
            to: self.me,
            inc: p.inc,
            msg,
        };
        TimerId(self.core.queue.push(at.as_nanos(), ev))
    }

    /// Cancels a timer; returns false if it had already fired or been cancelled. O(1).
    #[inline]
    pub fn cancel_timer(&mut self, timer: TimerId) -> bool {
        self.core.queue.cancel(timer.0).is_some()
    }

    /// This actor's own random stream (derived from the run seed and the actor's name).
    #[inline]
    pub fn rng(&mut self) -> &mut SimRng {
        self.core.rng_of(self.me)
    }

    /// A draw from `sampler` on this actor's stream.
    #[inline]
    pub fn sample(&mut self, sampler: &Sampler) -> f64 {
        sampler.sample(self.rng())
    }

    /// A duration drawn from `sampler` on this actor's stream.
    #[inline]
    pub fn sample_duration(&mut self, sampler: &Sampler) -> SimDuration {
        sampler.sample_duration(self.rng())
    }

    /// How long `work` takes on this actor now: `work` scaled by the slowdown a `Slow` fault
    /// applies (gray failure). Components use it for CPU and I/O work, not for timeouts.
    #[inline]
    pub fn work(&self, work: SimDuration) -> SimDuration {
        let factor = self.core.procs[self.me.index()].slow;
        if factor == 1.0 {
            work
        } else {
            SimDuration::from_nanos(
                libm::round(work.as_nanos() as f64 * factor).min(u64::MAX as f64) as u64,
            )
        }
    }

    /// The current slowdown factor of this actor (1.0 when healthy).
    pub fn slowdown(&self) -> f64 {
        self.core.procs[self.me.index()].slow
    }

    /// Crashes this actor, as a `Crash` fault would, at the current instant but after this
    /// handler returns: the process dies of its own state (out of memory, a failed assertion,
    /// a panic) rather than of something done to it.
    ///
    /// What the handler did before still happens (messages it sent are on their way; a message
    /// to itself is addressed to the incarnation that is dying, so it is dropped). Then the
    /// instance is dropped with all its volatile state, the incarnation is bumped (its timers
    /// die, and messages to it are dropped until it is back), and a backlog from a pause is
    /// discarded. With `restart_after`, the engine restarts it that long after the crash (a
    /// fresh instance from its factory, then `on_start`), as an orchestrator or supervisor
    /// would; with None it stays down until a `Restart` fault.
    ///
    /// A crash or restart from outside while the restart is pending takes over: a `Crash` fault
    /// cancels the pending restart (the actor stays down until restarted), a `Restart` fault
    /// restarts it at once and cancels the pending one. Traced as `SelfCrash` and
    /// `SelfRestart` events, counted in `Stats::self_crashes` and `Stats::self_restarts`.
    /// Calling it twice in one handler keeps the later `restart_after`.
    pub fn crash_self(&mut self, restart_after: Option<SimDuration>) {
        self.core.self_crash = Some((self.me, restart_after));
    }

    /// Kills another actor as soon as this handler returns, as a power switch (STONITH) or a
    /// kubelet's SIGKILL does: the same crash as a `Crash` fault, and it acts even on an actor
    /// that is paused (its backlog is discarded unread), which a message could not. With
    /// `restart_after` the engine restarts it that long after (a pending restart from an
    /// earlier self-crash or kill is replaced). An actor already down is left as it is.
    /// Killing oneself is [`crash_self`](Self::crash_self). Traced as `Kill` events (actor =
    /// the victim, from = the killer), counted in `Stats::kills`.
    pub fn kill(&mut self, target: ActorId, restart_after: Option<SimDuration>) {
        if target == self.me {
            self.crash_self(restart_after);
        } else {
            self.core.kills.push((target, restart_after));
        }
    }

    /// Registers (or finds) a counter owned by this actor.
    pub fn counter(&mut self, name: &str) -> CounterId {
        let owner = &self.core.proc_names[self.me.index()];
        self.core.metrics.counter(owner, name)
    }

    /// Registers (or finds) a gauge owned by this actor.
    pub fn gauge(&mut self, name: &str) -> GaugeId {
        let owner = &self.core.proc_names[self.me.index()];
        self.core.metrics.gauge(owner, name)
    }

    /// Registers (or finds) a histogram owned by this actor.
    pub fn histogram(&mut self, name: &str) -> HistogramId {
        let owner = &self.core.proc_names[self.me.index()];
        self.core.metrics.histogram(owner, name)
    }

    /// All metrics, for updates through handles.
    #[inline]
    pub fn metrics(&mut self) -> &mut Metrics {
        &mut self.core.metrics
    }

    /// Adds a note to the trace; it is folded into the trace hash.
    pub fn trace_note(&mut self, note: &str) {
        self.core.trace.note(self.core.now, self.me, note);
    }

    /// The id of the actor called `name`, if any.
    pub fn lookup(&self, name: &str) -> Option<ActorId> {
        self.core.names.get(name).copied()
    }

    /// The name of another actor.
    pub fn name_of(&self, id: ActorId) -> &str {
        &self.core.proc_names[id.index()]
    }

    /// The host called `name`, if any.
    pub fn host_named(&self, name: &str) -> Option<HostId> {
        self.core.net.host(name)
    }

    /// Starts a new actor on `host` (an autoscaler adding a replica). It receives `on_start`
    /// after the current handler returns. Panics if the name is taken — pick unique names.
    pub fn spawn<A: Actor<M>>(
        &mut self,
        host: HostId,
        name: &str,
        factory: impl FnMut() -> A + 'static,
    ) -> ActorId {
        match self.core.reserve(host, name) {
            Ok(id) => {
                self.core.spawns.push((id, boxed_factory(factory)));
                id
            }
            Err(e) => panic!("spawn from {}: {e}", self.name()),
        }
    }
}

/// Wraps a typed factory into the engine's boxed form.
pub(crate) fn boxed_factory<M: Message, A: Actor<M>>(
    mut f: impl FnMut() -> A + 'static,
) -> Factory<M> {
    Box::new(move || Box::new(f()) as Box<dyn Actor<M>>)
}
