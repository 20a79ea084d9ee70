//! A first simulation: Poisson traffic through a custom gateway actor into a built-in
//! four-server station, with a 20-second GC pause of the station in the middle.
//!
//! It shows the three things a faultline model is made of — built-in components, your own actor
//! sharing their message type, and faults as data — and prints what happened: latency
//! percentiles before, during and after the pause, and how the steady state compares with
//! queueing theory (Erlang C). It asserts its own outcome, so it doubles as a test.
//!
//!     cargo run --release --example quickstart

use faultline::model::Carry;
use faultline::model::queueing::{Job, Source, Station};
use faultline::{
    Actor, ActorId, Ctx, Dist, Fault, FaultPlan, Scalar, Sim, SimConfig, SimDuration, SimTime,
};

/// Our message type: the built-in queueing messages, plus nothing else yet.
#[derive(Clone, Debug)]
enum Msg {
    Job(Job),
}

impl Carry<Job> for Msg {
    fn wrap(job: Job) -> Self {
        Msg::Job(job)
    }
    fn unwrap(self) -> Option<Job> {
        let Msg::Job(job) = self;
        Some(job)
    }
}

/// A custom actor, in a few lines: a gateway that forwards every job to its backend and counts
/// what passes through. It speaks the built-in components' messages through `Msg`.
struct Gateway {
    backend: ActorId,
    forwarded: u64,
}

impl Actor<Msg> for Gateway {
    fn on_message(&mut self, ctx: &mut Ctx<'_, Msg>, _from: ActorId, msg: Msg) {
        self.forwarded += 1;
        ctx.send(self.backend, msg);
    }
}

fn secs(s: u64) -> SimTime {
    SimTime::from_nanos(s * 1_000_000_000)
}

fn exp_ms(ms: u64) -> faultline::Sampler {
    Dist::Exp {
        mean: Scalar::duration(SimDuration::from_millis(ms)),
    }
    .compile()
    .expect("valid")
}

pub fn main() {
    let mut config = SimConfig::new(42);
    config.sample_interval = Some(SimDuration::from_secs(1));
    let mut sim: Sim<Msg> = Sim::with_config(config).expect("valid config");
    let edge = sim.add_host("edge").expect("new host");
    let app = sim.add_host("app").expect("new host");

    // 4 servers, 100 ms mean service: capacity 40 jobs/s. Offered: 30 jobs/s (75% load).
    let station = Station::new(4, exp_ms(100), None).expect("a valid station");
    let station = sim
        .spawn(app, "station", move || station.clone())
        .expect("spawn");
    let gateway = sim
        .spawn(edge, "gateway", move || Gateway {
            backend: station,
            forwarded: 0,
        })
        .expect("spawn");
    let gap = exp_ms(33);
    sim.spawn(edge, "clients", move || {
        Source::new(gateway, gap.clone(), None)
    })
    .expect("spawn");

    // A 20 s stop-the-world pause of the app host from t = 60 s.
    let plan = FaultPlan::new().window(
        secs(60),
        secs(80),
        Fault::Pause {
            target: "app".into(),
        },
    );
    sim.add_faults(&plan).expect("valid plan");
    sim.run_until(secs(300));

    let m = sim.metrics();
    let p99 = m.series("station.sojourn.p99").expect("sampled");
    let window_p99 =
        |from: u64, to: u64| p99.max_over(secs(from), secs(to)).unwrap_or(f64::NAN) / 1e6;
    let before = window_p99(10, 60);
    let during = window_p99(60, 100);
    let after = window_p99(200, 300);
    let sojourn = m.histogram_summary("station.sojourn").expect("recorded");
    let forwarded = sim.inspect::<Gateway>(gateway).expect("up").forwarded;

    println!(
        "faultline quickstart: 30 jobs/s into 4 servers (100 ms each), 20 s GC pause at t=60s"
    );
    println!("  jobs through the gateway      {forwarded}");
    println!(
        "  jobs completed                {}",
        m.counter_value("station.completed_total").unwrap_or(0)
    );
    println!("  worst 1-s p99 before pause    {before:8.0} ms");
    println!("  worst 1-s p99 during/after    {during:8.0} ms   (the backlog of the pause)");
    println!("  worst 1-s p99 at 200-300 s    {after:8.0} ms   (recovered)");
    println!(
        "  whole-run p50 / p99           {:.0} / {:.0} ms",
        sojourn.p50 as f64 / 1e6,
        sojourn.p99 as f64 / 1e6
    );
    println!(
        "  events {}  trace hash {:016x}",
        sim.stats().events,
        sim.trace_hash()
    );

    // The pause must hurt, and the system must recover.
    assert!(
        during > 10.0 * before,
        "a 20 s pause makes p99 explode ({before} -> {during})"
    );
    assert!(
        after < 3.0 * before,
        "after the backlog drains, p99 is back near normal ({after})"
    );
}
