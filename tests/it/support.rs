//! Small actors shared by the tests: a scripted sender and a recorder of what arrives; and
//! the metric lookups every component test makes, which panic naming a metric that is missing.

use faultline::{Actor, ActorId, Ctx, Durable, SimDuration, SimTime};

/// The tests' message type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum T {
    /// A numbered message.
    Msg(u64),
    /// A timer payload: "send Msg(n) to the target now".
    Fire(u64),
    /// A periodic timer payload.
    Tick,
}

/// What a recorder saw: (true time, local clock, sender, value).
pub type Log = Durable<Vec<(SimTime, SimTime, ActorId, u64)>>;

/// Records every message into a durable log (which survives crashes, so tests can read what each
/// incarnation saw).
pub struct Recorder {
    pub log: Log,
}

impl Actor<T> for Recorder {
    fn on_message(&mut self, ctx: &mut Ctx<'_, T>, from: ActorId, msg: T) {
        if let T::Msg(n) = msg {
            let entry = (ctx.now(), ctx.local_clock(), from, n);
            self.log.borrow_mut().push(entry);
        }
    }
}

/// Sends `Msg(n)` to `to` at each `(after start, n)` of its script.
pub struct Scripted {
    pub to: ActorId,
    pub script: Vec<(SimDuration, u64)>,
}

impl Actor<T> for Scripted {
    fn on_start(&mut self, ctx: &mut Ctx<'_, T>) {
        for &(after, n) in &self.script {
            ctx.set_timer(after, T::Fire(n));
        }
    }

    fn on_message(&mut self, _ctx: &mut Ctx<'_, T>, _from: ActorId, _msg: T) {}

    fn on_timer(&mut self, ctx: &mut Ctx<'_, T>, msg: T) {
        if let T::Fire(n) = msg {
            ctx.send(self.to, T::Msg(n));
        }
    }
}

pub fn ms(n: u64) -> SimDuration {
    SimDuration::from_millis(n)
}

pub fn at_ms(n: u64) -> SimTime {
    SimTime::from_nanos(n * 1_000_000)
}

/// The values a log holds, in arrival order.
pub fn values(log: &Log) -> Vec<u64> {
    log.borrow().iter().map(|e| e.3).collect()
}

/// Spawns a [`Recorder`] called `name` on `host`; returns its id and its log.
pub fn recorder(
    sim: &mut faultline::Sim<T>,
    host: faultline::HostId,
    name: &str,
) -> (ActorId, Log) {
    let log: Log = Durable::new(vec![]);
    let l = log.clone();
    let id = sim
        .spawn(host, name, move || Recorder { log: l.clone() })
        .unwrap();
    (id, log)
}

/// Spawns a [`Scripted`] sender called `name` on `host`, sending `script` to `to`.
pub fn scripted(
    sim: &mut faultline::Sim<T>,
    host: faultline::HostId,
    name: &str,
    to: ActorId,
    script: Vec<(SimDuration, u64)>,
) -> ActorId {
    sim.spawn(host, name, move || Scripted {
        to,
        script: script.clone(),
    })
    .unwrap()
}

/// A counter's value by full name (`api.completed_total`).
pub fn counter<M: faultline::actor::Message>(sim: &faultline::Sim<M>, name: &str) -> u64 {
    sim.metrics()
        .counter_value(name)
        .unwrap_or_else(|| panic!("no counter {name}"))
}

/// A gauge's last value by full name.
pub fn gauge<M: faultline::actor::Message>(sim: &faultline::Sim<M>, name: &str) -> f64 {
    sim.metrics()
        .gauge_value(name)
        .unwrap_or_else(|| panic!("no gauge {name}"))
}

/// A histogram's summary over the run by full name.
pub fn histogram<M: faultline::actor::Message>(
    sim: &faultline::Sim<M>,
    name: &str,
) -> faultline::metrics::Summary {
    sim.metrics()
        .histogram_summary(name)
        .unwrap_or_else(|| panic!("no histogram {name}"))
}
