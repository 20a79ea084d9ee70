//! The benchmark workloads compute the right answers: a fast engine that is wrong is no use.

use crate::bench_workloads::{HEARTBEAT, run_queues, run_timers};

#[test]
fn mm1_workload_sojourn_is_near_the_analytic_value() {
    // lambda 0.9, mu 1: W = 10 s. One run of 100k customers from empty: the estimate is noisy
    // (at rho = 0.9 the relaxation time is ~360 customers), so this only guards against gross
    // errors; the fidelity module does the statistics.
    let (events, w) = run_queues(1, 100_000, 42);
    assert_eq!(events, 200_000);
    assert!((7.0..13.0).contains(&w), "mean sojourn {w}");
}

#[test]
fn many_workload_serves_every_customer() {
    let (events, w) = run_queues(1_000, 100_000, 42);
    assert_eq!(events, 200_000);
    // 100 customers per queue from empty: far from steady state, so W is below 10.
    assert!(w > 1.0 && w < 10.0, "mean sojourn {w}");
}

#[test]
fn timers_workload_heartbeats_and_never_expires() {
    let actors = 1_000;
    let (beats, expired) = run_timers(actors, 42);
    assert_eq!(
        expired, 0,
        "a session timeout re-armed every heartbeat never fires"
    );
    // Each member beats at phase p in [0, 3 s) and every 3 s after, up to 600 s inclusive:
    // 200 beats each (201 for a member at phase exactly 0).
    let per = 600 / (HEARTBEAT.as_nanos() / 1_000_000_000);
    assert!(
        beats >= actors as u64 * per && beats <= actors as u64 * (per + 1),
        "{beats}"
    );
}
