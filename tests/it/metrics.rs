//! Metrics read back from a run: counters, gauges, histograms and time series sampled on the
//! virtual clock, on a model whose answers are known exactly (constant times, no randomness).

use faultline::model::queueing::{Job, Source, Station};
use faultline::{Dist, Scalar, Sim, SimConfig, SimDuration, SimTime};

fn constant(ms: u64) -> faultline::Sampler {
    Dist::Const(Scalar::duration(SimDuration::from_millis(ms)))
        .compile()
        .unwrap()
}

fn secs(s: u64) -> SimTime {
    SimTime::from_nanos(s * 1_000_000_000)
}

/// A job every 10 ms into one server that takes 5 ms: the server is busy half the time.
fn run() -> Sim<Job> {
    let mut config = SimConfig::new(1);
    config.sample_interval = Some(SimDuration::from_secs(1));
    let mut sim = Sim::with_config(config).unwrap();
    let h = sim.add_host("h").unwrap();
    let station = Station::new(1, constant(5), None).unwrap();
    let q = sim.spawn(h, "q", move || station.clone()).unwrap();
    let gap = constant(10);
    sim.spawn(h, "src", move || Source::new(q, gap.clone(), None))
        .unwrap();
    sim.run_until(secs(10));
    sim
}

#[test]
fn counters_and_histograms_hold_exact_values() {
    let sim = run();
    let m = sim.metrics();
    // Jobs at 10, 20, ..., 10000 ms; the one at 10 s arrives at 10 s and is still in service.
    assert_eq!(m.counter_value("q.completed_total"), Some(999));
    assert_eq!(
        m.counter_value("q.waited_total"),
        Some(0),
        "never more than one job at once"
    );
    let sojourn = m.histogram_summary("q.sojourn").unwrap();
    assert_eq!(sojourn.count, 999);
    assert_eq!(sojourn.min, 5_000_000);
    assert_eq!(sojourn.max, 5_000_000);
    assert_eq!(sojourn.p99, 5_000_000);
    assert!((sojourn.mean - 5e6).abs() < 1e-6);
}

#[test]
fn series_are_sampled_on_the_virtual_clock() {
    let sim = run();
    let m = sim.metrics();
    assert_eq!(m.sample_times().first(), Some(&SimTime::ZERO));
    assert_eq!(m.sample_times().last(), Some(&secs(10)));
    let done = m.series("q.completed_total").unwrap();
    // A sample at T holds every update at or before T: the job created at exactly 1 s finishes
    // at 1.005 s, so 99 are done at 1 s.
    assert_eq!(done.value_at(secs(1)), Some(99.0));
    assert_eq!(
        done.value_at(SimTime::from_nanos(1_500_000_000)),
        Some(99.0),
        "last sample at or before"
    );
    assert_eq!(done.rate_over(secs(1), secs(10)), Some(100.0));
    // The per-interval p99 of sojourn is 5 ms in every interval with completions.
    let p99 = m.series("q.sojourn.p99").unwrap();
    assert_eq!(p99.max_over(secs(1), secs(10)), Some(5e6));
    assert_eq!(p99.min_over(secs(1), secs(10)), Some(5e6));
}

#[test]
fn a_gauge_has_a_time_weighted_mean() {
    let sim = run();
    // In system: 1 for 5 ms of every 10 ms from 10 ms on, and 1 at the end (10 s).
    let mean = sim
        .metrics()
        .gauge_time_weighted_mean("q.in_system")
        .unwrap();
    assert!((mean - 0.4995).abs() < 1e-9, "{mean}");
}
