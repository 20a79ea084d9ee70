//! The rebalance storm's properties through the harness (K1): for the baseline the harness
//! finds seeds where lag is unbounded, and the fixes keep it bounded for every seed and burst
//! tried. The space is the shipped `rebalance_storm` with the one-minute burst drawn from
//! 1,800/s to 3,000/s (the steady 1,200/s and everything else as shipped) and the seed.
//!
//! CI runs a few cases of each; `FAULTLINE_SLOW=1` runs many more.

use crate::support::{load, slow};
use faultline::prop::{Param, PropFailure, PropReport, Property};
use faultline::scenario::{Expect, Scenario, shipped};

/// The burst at 2m, at `{}` records a second.
const BURST: &str = r#"Schedule([("0s", "1200/s"), ("2m", "{}/s"), ("3m", "1200/s")])"#;

fn bursts() -> Param {
    Param::int("producer.rate", 1800, 3000).template(BURST)
}

fn property(s: &Scenario, variant: &str, expect: Expect, cases: u32) -> Property {
    Property::new(s)
        .variant(variant)
        .check("lag bounded")
        .expect(expect)
        .param(bursts())
        .cases(cases)
        .runner_seed(11)
        .shrink_runs_max(1)
}

fn holds(r: Result<PropReport, PropFailure>) -> PropReport {
    r.unwrap_or_else(|e| panic!("every case should hold: {e}"))
}

/// The harness finds a storm that has not ended ten minutes after its burst: the mean lag of
/// the last ten minutes above 30,000 (the shipped baseline: a median of 33.1k over seeds 1-60).
#[test]
fn the_harness_finds_an_unbounded_storm_for_the_baseline() {
    let s = load("rebalance_storm");
    let report = property(&s, "baseline", Expect::Fails, if slow() { 16 } else { 4 })
        .run()
        .unwrap_or_else(|e| panic!("a storm should be found: {e}"));
    let w = report
        .witness
        .expect("an exists property reports its witness");
    let lag = w.outcome.value.expect("the check has a value");
    assert!(lag > 30_000.0, "{}", w.outcome.detail);
}

/// Cooperative rebalancing, scaling on CPU, static members with a 2 min session, and static
/// members with CPU scaling keep the mean lag of the last ten minutes under 30,000 for every burst from
/// 1,800/s to 3,000/s and every seed tried.
#[test]
fn the_fixes_keep_lag_bounded_for_every_seed_tried() {
    let s = load("rebalance_storm");
    for variant in ["cooperative", "scale on CPU", "static", "static + cpu"] {
        let n = if slow() { 24 } else { 3 };
        let report = holds(property(&s, variant, Expect::Holds, n).run());
        assert_eq!(report.held, report.cases, "{variant}");
        assert!(report.cases >= n, "{variant}: {report:?}");
    }
}

/// The log family's scenarios are pure functions of their seed: the same seed twice gives the
/// same trace hash and results (the controllers, probes, ledger and autoscaler included).
#[test]
fn the_storm_and_the_rollout_replay_exactly() {
    use faultline::scenario::run::run_seed;
    for name in ["rebalance_storm", "rolling_restart"] {
        let (file, text) = shipped(name).unwrap();
        let s = Scenario::from_str(text, file).unwrap_or_else(|e| panic!("{e}"));
        let vi = 0;
        let (a, _) = run_seed(&s, vi, 5, false);
        let (b, _) = run_seed(&s, vi, 5, false);
        let (c, _) = run_seed(&s, vi, 6, false);
        assert_eq!(a.trace_hash, b.trace_hash, "{name}");
        assert_eq!(a, b, "{name}: the same seed gives the same results");
        assert_ne!(
            a.trace_hash, c.trace_hash,
            "{name}: another seed, another run"
        );
    }
}
