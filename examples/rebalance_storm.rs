//! A rebalance storm, and its fix: the shipped `rebalance_storm` scenario run as it is (eager
//! rebalancing, KEDA scaling on lag, a liveness probe) and with the cooperative sticky assignor,
//! on the same seed, so both see the very same records.
//!
//! The example narrates the first minutes of each run from the group's own metrics, sampled
//! every second: when the autoscaler asks for pods, when members join or leave, each rebalance,
//! how long it stopped how many partitions and what that did to the lag, and each pod the
//! liveness probe restarted. Then it compares the two runs in numbers, asserts what it says (so
//! it doubles as a test), and writes SVG charts of lag, replicas and stopped partitions for both
//! runs into `faultline-out/rebalance_storm-example/`.
//!
//!     cargo run --release --example rebalance_storm

use std::fmt::Write as _;

use faultline::SimTime;
use faultline::metrics::{Metrics, Series};
use faultline::report::chart::{ChartLine, ChartSpec, render_svg};
use faultline::report::{Unit, grouped};
use faultline::scenario::{Scenario, build, shipped};

/// How much of each run the timeline tells.
const TOLD: u64 = 6 * 60;

fn series<'m>(m: &'m Metrics, name: &str) -> &'m Series {
    m.series(name)
        .unwrap_or_else(|| panic!("no series `{name}`"))
}

fn at(s: &Series, t: u64) -> f64 {
    s.value_at(SimTime::from_nanos(t * 1_000_000_000))
        .unwrap_or(0.0)
}

fn clock(t: u64) -> String {
    format!("{:02}:{:02}", t / 60, t % 60)
}

fn thousands(v: f64) -> String {
    grouped(v.round() as i64)
}

/// What one run showed, and its narration.
struct Run {
    /// The charted series.
    charted: Vec<Series>,
    timeline: String,
    /// Stretches with every partition stopped: (start s, seconds).
    full_stops: Vec<(u64, u64)>,
    rebalances: f64,
    mean_lag_end: f64,
    restarts: f64,
}

fn run(scenario: &Scenario, variant: &str, seed: u64) -> Run {
    let v = (scenario.variants.iter())
        .find(|v| v.name == variant)
        .unwrap_or_else(|| panic!("no variant `{variant}`"));
    let mut sim = build(scenario, v, seed, false).expect("a loaded scenario builds");
    let end = SimTime::ZERO.saturating_add(scenario.duration);
    sim.run_until(end);
    let m = sim.metrics();
    let secs = scenario.duration.as_nanos() / 1_000_000_000;
    let lag = series(m, "broker.lag.sink.events");
    let stopped = series(m, "workers.partitions_stopped");
    let members = series(m, "broker.members.sink");
    let rebalances = series(m, "broker.rebalances_total.sink");
    let desired = series(m, "workers.desired_replicas");
    let restarts = series(m, "workers.liveness_restarts_total");
    let partitions = 12.0;
    let mut timeline = String::new();
    let mut full_stops = Vec::new();
    let mut stop_start: Option<(u64, f64, f64)> = None;
    for t in 1..=secs {
        let told = t <= TOLD;
        let mut line = |s: String| {
            if told {
                let _ = writeln!(timeline, "  {} {s}", clock(t));
            }
        };
        let (d0, d1) = (at(desired, t - 1), at(desired, t));
        if d1 != d0 {
            let verb = if d1 > d0 { "adds" } else { "removes" };
            let n = (d1 - d0).abs();
            line(format!(
                "autoscaler {verb} {n} pod{} ({d0} -> {d1}; lag {})",
                if n == 1.0 { "" } else { "s" },
                thousands(at(lag, t))
            ));
        }
        let (m0, m1) = (at(members, t - 1), at(members, t));
        if m1 > m0 {
            line(format!("{} member(s) joined: {m1} in the group", m1 - m0));
        } else if m1 < m0 {
            line(format!("{} member(s) left: {m1} in the group", m0 - m1));
        }
        let (r0, r1) = (at(rebalances, t - 1), at(rebalances, t));
        if r1 > r0 {
            line(format!("rebalance #{r1} begins"));
        }
        let (l0, l1) = (at(restarts, t - 1), at(restarts, t));
        if l1 > l0 {
            line("liveness probe kills a stalled pod".to_string());
        }
        let s = at(stopped, t);
        match stop_start {
            None if s >= partitions => stop_start = Some((t, at(lag, t), s)),
            Some((from, lag0, _)) if s < partitions => {
                let took = t - from;
                full_stops.push((from, took));
                if from <= TOLD {
                    let _ = writeln!(
                        timeline,
                        "  {} all 12 partitions were stopped for {took} s; lag {} -> {}",
                        clock(t),
                        thousands(lag0),
                        thousands(at(lag, t))
                    );
                }
                stop_start = None;
            }
            _ => {}
        }
    }
    let window_from = secs / 2;
    let mean_lag_end =
        (window_from..=secs).map(|t| at(lag, t)).sum::<f64>() / (secs - window_from + 1) as f64;
    Run {
        rebalances: at(rebalances, secs),
        restarts: at(restarts, secs),
        full_stops,
        mean_lag_end,
        timeline,
        charted: CHARTED.iter().map(|n| series(m, n).clone()).collect(),
    }
}

/// The series the charts draw.
const CHARTED: [&str; 3] = [
    "broker.lag.sink.events",
    "workers.replicas",
    "workers.partitions_stopped",
];

fn chart(title: &str, y: &str, unit: Unit, name: &str, runs: &[(&str, &Run)]) -> String {
    let i = CHARTED
        .iter()
        .position(|&n| n == name)
        .expect("a charted series");
    let spec = ChartSpec {
        title: title.to_string(),
        y_label: y.to_string(),
        unit,
        series: (runs.iter())
            .map(|(label, r)| ChartLine::from_series(*label, &r.charted[i]))
            .collect(),
        windows: Vec::new(),
    };
    render_svg(&spec).expect("a chart of sampled series renders")
}

// The suite runs the story without writing charts (`tests/it/main.rs`), so `main` is unused
// there.
#[allow(dead_code)]
fn main() {
    story(Some(std::path::Path::new(
        "faultline-out/rebalance_storm-example",
    )));
}

/// Runs, tells and checks the story; writes the charts into `out` if given.
pub fn story(out: Option<&std::path::Path>) {
    let (path, text) = shipped("rebalance_storm").expect("rebalance_storm ships with faultline");
    let scenario = Scenario::from_str(text, path).expect("the shipped scenario loads");
    let seed = 1;
    let storm = run(&scenario, "baseline", seed);
    let fixed = run(&scenario, "cooperative", seed);

    println!("A rebalance storm: 12 partitions, 1,200 records/s (2,400/s for one minute at 2m),");
    println!("a group that could consume 2,600/s, KEDA on lag, a liveness probe. Seed {seed}.\n");
    println!(
        "Eager rebalancing (the baseline), the first {} minutes:",
        TOLD / 60
    );
    print!("{}", storm.timeline);
    println!(
        "\nCooperative sticky, the same records, the first {} minutes:",
        TOLD / 60
    );
    print!("{}", fixed.timeline);

    let stopped_s = |r: &Run| r.full_stops.iter().map(|&(_, s)| s).sum::<u64>();
    println!("\nOver the whole 20 minutes:");
    for (label, r) in [("eager", &storm), ("cooperative", &fixed)] {
        println!(
            "  {label:<12} {:>3} rebalances, {:>3} full stops ({:>4} s with nothing consumed), \
             {:>2} liveness restarts, mean lag of the last 10 minutes {}",
            r.rebalances,
            r.full_stops.len(),
            stopped_s(r),
            r.restarts,
            thousands(r.mean_lag_end),
        );
    }

    // What the story claims, checked.
    assert!(
        storm.full_stops.len() >= 5 && stopped_s(&storm) > 120,
        "the eager group stops completely, again and again"
    );
    assert!(
        stopped_s(&fixed) * 10 < stopped_s(&storm),
        "cooperative rebalancing keeps partitions consumed: {} s vs {} s fully stopped",
        stopped_s(&fixed),
        stopped_s(&storm)
    );
    assert!(
        storm.mean_lag_end > 3.0 * fixed.mean_lag_end,
        "the storm's lag stays high ({}) while the fixed group's settles ({})",
        storm.mean_lag_end,
        fixed.mean_lag_end
    );
    assert!(
        storm.restarts > fixed.restarts,
        "stalls feed the liveness probe"
    );

    let Some(out) = out else {
        return;
    };
    std::fs::create_dir_all(out).expect("the output directory can be made");
    let runs = [("eager", &storm), ("cooperative", &fixed)];
    for (file, svg) in [
        (
            "lag.svg",
            chart(
                "Consumer lag",
                "lag",
                Unit::Count,
                "broker.lag.sink.events",
                &runs,
            ),
        ),
        (
            "replicas.svg",
            chart("Replicas", "pods", Unit::Count, "workers.replicas", &runs),
        ),
        (
            "stopped.svg",
            chart(
                "Partitions not consumed",
                "partitions",
                Unit::Count,
                "workers.partitions_stopped",
                &runs,
            ),
        ),
    ] {
        std::fs::write(out.join(file), svg).expect("the chart can be written");
    }
    println!(
        "\nwrote lag.svg, replicas.svg, stopped.svg in {}",
        out.display()
    );
}
