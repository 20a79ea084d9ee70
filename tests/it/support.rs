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

// ---------------------------------------------------------------------------------------------
// The property tests' helpers: case counts, shipped scenarios, durations, one case replayed.

/// Whether `FAULTLINE_SLOW=1` asks for the heavy sweeps.
pub fn slow() -> bool {
    std::env::var_os("FAULTLINE_SLOW").is_some_and(|v| v == "1")
}

/// `fast` cases in CI, `slow` under `FAULTLINE_SLOW=1`.
pub fn cases(fast: u32, slow_: u32) -> u32 {
    if slow() { slow_ } else { fast }
}

/// A shipped scenario, loaded.
pub fn load(name: &str) -> faultline::scenario::Scenario {
    let (file, text) = faultline::scenario::shipped(name).unwrap();
    faultline::scenario::Scenario::from_str(text, file).unwrap_or_else(|e| panic!("{e}"))
}

pub fn t(s: &str) -> SimTime {
    s.parse().unwrap()
}

pub fn d(s: &str) -> SimDuration {
    s.parse().unwrap()
}

/// `s` with `case`'s parameters and faults applied.
pub fn with_case(
    s: &faultline::scenario::Scenario,
    case: &faultline::prop::Case,
) -> faultline::scenario::Scenario {
    use faultline::scenario::Scenario;
    let mut extra = s.extra.clone();
    extra.extend(case.params.iter().cloned());
    Scenario::with_overrides(&s.text, &s.file, &extra)
        .and_then(|s| s.with_faults(&case.faults))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `case` on `variant` of `s` and returns the outcome of `check`.
pub fn run_case(
    s: &faultline::scenario::Scenario,
    variant: &str,
    check: &str,
    case: &faultline::prop::Case,
) -> faultline::check::Outcome {
    let s = with_case(s, case);
    let vi = s.variants.iter().position(|v| v.name == variant).unwrap();
    let ci = s.checks.iter().position(|c| c.name() == check).unwrap();
    let (run, _) = faultline::scenario::run::run_seed(&s, vi, case.seed, false);
    assert!(!run.limit_hit, "{variant} seed {} hit a limit", case.seed);
    run.checks[ci].clone()
}

/// Spawns the service deployment `name` built from `deployment` (RON) on `host`: its pods and
/// its controller (balancer and HPA), as a scenario's `Deployment` component does.
pub fn spawn_deployment(
    sim: &mut faultline::Sim<faultline::model::rpc::Rpc>,
    host: faultline::HostId,
    name: &str,
    deployment: &str,
) {
    use faultline::model::rpc::deployment::{self, DeploymentConfig};
    let config: DeploymentConfig =
        faultline::model::rpc::from_ron(deployment).unwrap_or_else(|e| panic!("{e}"));
    let deployed =
        deployment::build::<faultline::model::rpc::Rpc>(&config, name).expect("valid deployment");
    for (pod, proto) in deployed.replicas {
        sim.spawn(host, &pod, move || proto.clone())
            .expect("unique");
    }
    let controller = deployed.controller;
    sim.spawn(host, name, move || controller.clone())
        .expect("unique");
}
