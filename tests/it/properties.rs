//! Properties of the shipped scenarios through `faultline::prop`, as examples for the ones to
//! come, and the harness's own: shrinking reaches the smallest failing case, every drawn plan
//! validates, a counterexample replays from its file, the same runner seed finds the same one.
//!
//! CI runs a handful of cases per property; `FAULTLINE_SLOW=1` runs many more. The bounds the
//! properties state were found with the harness itself: run the property with a wider space
//! (a harsher factor), read the shrunk counterexample, narrow the space, and repeat until
//! hundreds of cases hold; each test says what it found.

use std::path::Path;

use crate::support::{cases, d, load, run_case, slow, t, with_case};
use faultline::prop::{
    Case, FaultSpace, Param, ParamStrategy, PropError, PropFailure, Property, runner, shrink_plan,
};
use faultline::scenario::run::run_seed;
use faultline::scenario::{Expect, Scenario};
use faultline::{Fault, FaultPlan, NemesisKind, SimDuration, SimTime};
use proptest::prelude::RngCore as _;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestCaseError;

/// traffic_spike's arrivals with the spike at `{}` requests a second.
const SPIKE: &str = r#"Schedule([("0s", "100/s"), ("2m", "{}/s"), ("4m", "100/s")])"#;

fn spike(rate: u64) -> String {
    SPIKE.replace("{}", &rate.to_string())
}

/// A fresh scratch directory under the target directory.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn counterexample(
    r: Result<faultline::prop::PropReport, PropFailure>,
) -> faultline::prop::Counterexample {
    match r {
        Err(PropFailure::Counterexample(c)) => *c,
        Err(other) => panic!("expected a counterexample: {other}"),
        Ok(report) => panic!("expected a counterexample, every case held: {report:?}"),
    }
}

fn witness(
    r: Result<faultline::prop::PropReport, PropFailure>,
) -> (u32, u32, faultline::prop::Counterexample) {
    match r {
        Ok(report) => {
            let w = report
                .witness
                .expect("an exists property reports its witness");
            assert!(report.cases >= 1);
            assert_eq!(
                report.held,
                report.cases - 1,
                "it stops at the first failing case"
            );
            assert!(report.runs >= report.cases);
            (report.cases, report.held, *w)
        }
        Err(e) => panic!("expected a failing case to be found: {e}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Another fault plan for a scenario

/// `with_faults` replaces the plan and checks it exactly as a file's faults are checked.
#[test]
fn with_faults_replaces_the_plan_and_validates_it_as_a_file() {
    let s = load("pool_exhaustion");
    let plan = FaultPlan::new()
        .window(
            t("1m"),
            t("1m30s"),
            Fault::Pause {
                target: "api".into(),
            },
        )
        .at(t("9m"), Fault::Heal);
    let other = s.with_faults(&plan).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(other.faults, plan);
    assert_ne!(other.digest, s.digest, "result files tell the two apart");
    assert_eq!(other.variants, s.variants);
    assert_eq!(other.name, s.name);
    assert_eq!(other.file, s.file);
    // The text says what runs, so re-reading it (as a sweep does) keeps the plan.
    let again = Scenario::from_str(&other.text, &other.file).unwrap();
    assert_eq!(again.faults, plan);
    assert_eq!(again.digest, other.digest);
    assert!(other.text.contains(r#"faults: [(from: "1m", until: "1m30s", fault: Pause(target: "api")), (at: "9m", fault: Heal)],"#), "{}", other.text);
    // The empty plan, and back.
    assert_eq!(
        s.with_faults(&FaultPlan::new()).unwrap().faults,
        FaultPlan::new()
    );
    assert_eq!(other.with_faults(&s.faults).unwrap().faults, s.faults);
    // Overrides given on top of the file are kept.
    let extra = [("api.workers".to_string(), "50".to_string())];
    let with_set = Scenario::with_overrides(&s.text, &s.file, &extra).unwrap();
    let moved = with_set.with_faults(&plan).unwrap();
    assert_eq!(moved.extra, extra);
    assert_eq!(moved.variants, with_set.variants);
    // A plan the file could not state is refused, as the file would be.
    let typo = FaultPlan::new().window(
        t("1m"),
        t("2m"),
        Fault::Crash {
            target: "pgg".into(),
        },
    );
    let e = s.with_faults(&typo).unwrap_err().to_string();
    assert!(
        e.contains("faults[0].fault.target: no component or host is called `pgg`"),
        "{e}"
    );
    assert!(e.contains("did you mean `pg`?"), "{e}");
    let late = FaultPlan::new().at(t("11m"), Fault::Heal);
    let e = s.with_faults(&late).unwrap_err().to_string();
    assert!(e.contains("after the run ends"), "{e}");
    let backwards = FaultPlan::new().window(
        t("2m"),
        t("1m"),
        Fault::Pause {
            target: "api".into(),
        },
    );
    assert!(s.with_faults(&backwards).is_err());
}

// ---------------------------------------------------------------------------------------------
// traffic_spike

/// The slowdowns of the service a spike may meet: up to 3 of them, anywhere in the run, up to
/// 2m30s long (longer than the 1m30s the check judges), at most `harsh` times slower.
fn api_slowdowns(s: &Scenario, harsh: f64) -> FaultSpace {
    FaultSpace::for_scenario(s)
        .kinds([NemesisKind::Slow])
        .targets(["api"])
        .slow_factor(1.1, harsh)
}

/// Deadline shedding keeps goodput above 150/s through spikes from 1000/s to 4000/s and any
/// plan of slowdowns of the service up to 1.2x.
///
/// How the bound was found: with slowdowns up to 4x the harness shrinks to a single 2.5x
/// slowdown of 29 s inside the judged window; up to 1.6x, two overlapping ones; up to 1.38x
/// (so factors to 1.3 on the 0.1 grid), one 1.3x slowdown covering the 90 s window, which
/// leaves 149.9/s. That fits the capacity: 20 workers at 100 ms serve 200/s, 154/s when 1.3x
/// slower, and the shed requests still cost a little. At 1.2x (167/s) 200 cases held. Without
/// slowdowns it held for spikes up to 40,000/s.
#[test]
fn deadline_shedding_keeps_goodput_through_spikes_and_slowdowns_up_to_1_2x() {
    let s = load("traffic_spike");
    let report = Property::new(&s)
        .variant("deadline shedding")
        .check("goodput during the spike")
        .expect(Expect::Holds)
        .faults(api_slowdowns(&s, 1.2))
        .param(Param::int("users.arrivals", 1000, 4000).template(SPIKE))
        .cases(cases(6, 200))
        .runner_seed(1)
        .run()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.cases, cases(6, 200));
    assert_eq!(report.held, report.cases);
    assert_eq!(report.runs, report.cases, "nothing to shrink");
    assert!(report.witness.is_none());
}

/// The same space breaks the baseline, and needs nothing of it: the witness shrinks to no
/// fault at all and the mildest spike, on which the fix holds.
#[test]
fn the_baseline_loses_goodput_to_the_mildest_spike_without_any_fault() {
    let s = load("traffic_spike");
    let (_, _, w) = witness(
        Property::new(&s)
            .variant("baseline")
            .check("goodput during the spike")
            .expect(Expect::Fails)
            .faults(api_slowdowns(&s, 1.2))
            .param(Param::int("users.arrivals", 1000, 4000).template(SPIKE))
            .seeds(1..=1000)
            .cases(cases(8, 64))
            .run(),
    );
    assert_eq!(w.faults, FaultPlan::new(), "no fault is needed");
    assert_eq!(w.params, [("users.arrivals".to_string(), spike(1000))]);
    assert_eq!(w.seed, 1, "the first seed of the range fails too");
    assert!(!w.outcome.holds);
    assert!(w.outcome.value.unwrap() < 150.0, "{}", w.outcome.detail);
    let case = Case {
        seed: w.seed,
        faults: w.faults.clone(),
        params: w.params.clone(),
    };
    assert!(run_case(&s, "deadline shedding", "goodput during the spike", &case).holds);
}

// ---------------------------------------------------------------------------------------------
// pool_exhaustion

/// Slowdowns of the database: up to 3, anywhere, up to 3 minutes (the scenario's own is 10x for
/// 3 minutes), at most `harsh` times slower.
fn db_slowdowns(s: &Scenario, harsh: f64) -> FaultSpace {
    FaultSpace::for_scenario(s)
        .kinds([NemesisKind::Slow])
        .targets(["pg"])
        .window_max(d("3m"))
        .slow_factor(1.1, harsh)
}

/// A pool of 30 keeps browsing above 95% through any plan of database slowdowns up to 15x.
///
/// How the bound was found: up to 40x the harness shrinks to one 18.3x slowdown of 54 s; up to
/// 17x, to one 16.8x slowdown of 95 s (94.8% of browsing answered). Up to 16x, 96 cases held,
/// and up to 15x, 96 cases held with windows up to 3 minutes and 256 under `FAULTLINE_SLOW`.
/// The stated bound keeps a margin below the first failure found.
#[test]
fn a_pool_of_30_keeps_browsing_through_database_slowdowns_up_to_15x() {
    let s = load("pool_exhaustion");
    let report = Property::new(&s)
        .variant("pool of 30")
        .check("browsing succeeds")
        .faults(db_slowdowns(&s, 15.0))
        .cases(cases(6, 256))
        .runner_seed(2)
        .run()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((report.cases, report.held), (cases(6, 256), cases(6, 256)));
}

/// The same space breaks Hikari's default pool of 10, and a short slowdown is enough; the
/// pool of 30 survives the very case that breaks it.
#[test]
fn the_default_pool_loses_browsing_to_a_database_slowdown_the_fix_survives() {
    let s = load("pool_exhaustion");
    let (_, _, w) = witness(
        Property::new(&s)
            .variant("baseline")
            .check("browsing succeeds")
            .expect(Expect::Fails)
            .faults(db_slowdowns(&s, 15.0))
            .cases(cases(8, 64))
            .runner_seed(2)
            .shrink_runs_max(if slow() { 256 } else { 8 })
            .run(),
    );
    assert!(!w.outcome.holds);
    assert!(w.outcome.value.unwrap() < 0.95);
    assert!(
        !w.faults.entries.is_empty(),
        "without a slowdown browsing succeeds"
    );
    assert!(w.faults.entries.len() <= w.original.faults.entries.len());
    for e in &w.faults.entries {
        let Fault::Slow { target, factor } = &e.fault else {
            panic!("only slowdowns are drawn: {e:?}")
        };
        assert_eq!(target, "pg");
        assert!((1.1..=15.0).contains(factor), "{factor}");
        let (from, until) = (e.from.unwrap(), e.until.unwrap());
        assert!(until.as_nanos() - from.as_nanos() <= d("3m").as_nanos());
    }
    let case = Case {
        seed: w.seed,
        faults: w.faults.clone(),
        params: Vec::new(),
    };
    assert!(!run_case(&s, "baseline", "browsing succeeds", &case).holds);
    assert!(run_case(&s, "pool of 30", "browsing succeeds", &case).holds);
}

// ---------------------------------------------------------------------------------------------
// Counterexamples

/// A property that fails quickly: deadline shedding under slowdowns up to 3x.
fn failing_property(s: &Scenario) -> Property {
    Property::new(s)
        .variant("deadline shedding")
        .check("goodput during the spike")
        .faults(api_slowdowns(s, 3.0))
        .param(Param::int("users.arrivals", 500, 1000).template(SPIKE))
        .cases(16)
        .runner_seed(7)
        .shrink_runs_max(if slow() { 256 } else { 12 })
}

/// The same runner seed finds the same counterexample; its file loads and fails the same way.
#[test]
fn a_counterexample_is_found_again_by_its_runner_seed_and_replays_from_its_file() {
    let s = load("traffic_spike");
    let a = counterexample(failing_property(&s).run());
    let b = counterexample(failing_property(&s).run());
    assert_eq!(a.seed, b.seed);
    assert_eq!(a.faults, b.faults);
    assert_eq!(a.params, b.params);
    assert_eq!(a.outcome, b.outcome);
    assert_eq!(a.original, b.original);
    assert_eq!(a.text, b.text, "byte for byte");

    // What it says.
    assert_eq!(a.variant, "deadline shedding");
    assert_eq!(a.check, "goodput during the spike");
    assert!(!a.outcome.holds);
    assert!(a.outcome.value.unwrap() < 150.0);
    assert!(
        !a.faults.entries.is_empty(),
        "the fix holds without a slowdown"
    );
    assert!(a.faults.entries.len() <= a.original.faults.entries.len());
    assert_eq!(a.params.len(), 1);
    assert!(a.text.contains(&format!(
        "faultline run {} --seed {}",
        a.file_name(),
        a.seed
    )));

    // The file loads, keeps the variants to compare, and fails the same way.
    let dir = scratch("prop-replay");
    let path = a.write(&dir).unwrap();
    assert_eq!(path, dir.join(a.file_name()));
    let written = std::fs::read_to_string(&path).unwrap();
    let replay = format!("faultline run {} --seed {}", path.display(), a.seed);
    assert!(written.starts_with("// A shrunk counterexample. Replay it with:\n"));
    assert!(written.contains(&replay), "{written}");
    let r = Scenario::from_path(&path).unwrap_or_else(|e| panic!("{e}\n{written}"));
    let names: Vec<&str> = r.variants.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["baseline", "deadline shedding"]);
    assert_eq!(r.faults, a.faults);
    assert_eq!(r.seed, a.seed);
    let fix = r.variant("deadline shedding").unwrap();
    assert_eq!(
        fix.expect.get("goodput during the spike"),
        Some(&Expect::Holds)
    );
    assert!(fix.set.contains(&a.params[0]), "{:?}", fix.set);
    let (run, _) = run_seed(&r, 1, a.seed, false);
    let ci = r.checks.iter().position(|c| c.name() == a.check).unwrap();
    assert_eq!(
        run.checks[ci], a.outcome,
        "the replay fails exactly as the harness saw"
    );
}

/// Shrinking the scenario's own plan (what `check --shrink` does): the fault the failure does
/// not need goes, the slowdown's window shrinks inside the written one and its factor drops.
#[test]
fn a_written_plan_shrinks_to_the_part_that_fails() {
    let base = load("traffic_spike");
    let written = FaultPlan::new()
        .window(
            t("2m"),
            t("4m"),
            Fault::Slow {
                target: "api".into(),
                factor: 2.0,
            },
        )
        .window(
            t("6m"),
            t("7m"),
            Fault::Crash {
                target: "users".into(),
            },
        );
    let s = base.with_faults(&written).unwrap();
    assert_eq!(s.faults, written);
    let cx = shrink_plan(&s, "deadline shedding", "goodput during the spike", 3, 12)
        .unwrap()
        .expect("a 2x slowdown through the spike breaks goodput");
    assert_eq!(cx.seed, 3);
    assert_eq!(cx.original.faults, written);
    assert_eq!(cx.faults.entries.len(), 1, "{:?}", cx.faults);
    let e = &cx.faults.entries[0];
    let Fault::Slow { factor, .. } = e.fault else {
        panic!("the slowdown stays: {e:?}")
    };
    assert!((1.0..=2.0).contains(&factor), "{factor}");
    let (from, until) = (e.from.unwrap(), e.until.unwrap());
    assert!(t("2m") <= from && from < until && until <= t("4m"), "{e:?}");
    assert!(
        until.as_nanos() - from.as_nanos() < d("2m").as_nanos(),
        "{e:?}"
    );
    assert!(!cx.outcome.holds);
    let r = Scenario::from_str(&cx.text, "replay.ron").unwrap_or_else(|e| panic!("{e}"));
    let vi = r
        .variants
        .iter()
        .position(|v| v.name == cx.variant)
        .unwrap();
    assert_eq!(run_seed(&r, vi, cx.seed, false).0.checks[0], cx.outcome);
    // Where the check holds there is nothing to shrink.
    assert!(
        shrink_plan(
            &base,
            "deadline shedding",
            "goodput during the spike",
            3,
            64
        )
        .unwrap()
        .is_none()
    );
}

// ---------------------------------------------------------------------------------------------
// The strategies

/// A plan "fails" when it slows `api` at least 3x over all of [100s, 130s]: shrinking must end
/// at exactly one such slowdown, from 100s to 130s, at 3x, whatever else was drawn.
#[test]
fn shrinking_reaches_the_smallest_failing_plan() {
    let s = load("traffic_spike");
    let space = FaultSpace::for_scenario(&s)
        .kinds([NemesisKind::Slow, NemesisKind::Crash, NemesisKind::Pause])
        .targets(["api", "users"])
        .between(t("1m"), t("3m"))
        .window_max(d("90s"))
        .faults_max(4);
    let strategy = space.strategy().unwrap();
    let fails = |plan: &FaultPlan| {
        plan.entries.iter().any(|e| match &e.fault {
            Fault::Slow { target, factor } => {
                target == "api"
                    && *factor >= 3.0
                    && e.from.unwrap() <= t("100s")
                    && e.until.unwrap() >= t("130s")
            }
            _ => false,
        })
    };
    let calls = std::cell::Cell::new(0u32);
    let mut runner = runner(2000, 10_000, 3);
    let result = runner.run(&strategy, |plan| {
        calls.set(calls.get() + 1);
        if fails(&plan) {
            return Err(TestCaseError::fail("slow"));
        }
        Ok(())
    });
    let Err(proptest::test_runner::TestError::Fail(_, plan)) = result else {
        panic!("a failing plan is drawn in 2000: {result:?}")
    };
    let want = FaultPlan::new().window(
        t("100s"),
        t("130s"),
        Fault::Slow {
            target: "api".into(),
            factor: 3.0,
        },
    );
    assert_eq!(plan, want);
    assert!(calls.get() < 2000, "found before the cases ran out");
}

/// Parameters shrink to the mildest failing value, from either end; the values are RON.
#[test]
fn parameters_shrink_to_the_mildest_failing_value() {
    let params = [
        Param::int("api.workers", 50, 5),
        Param::int("users.arrivals", 100, 5000).template(SPIKE),
        Param::duration("users.timeout", d("100ms"), d("5s"), d("100ms")),
        Param::float("x.y", 0.5, 2.0, 0.25),
        Param::values("lb.policy", ["RoundRobin", "LeastOutstanding", "P2C"]),
    ];
    assert_eq!(params[0].count(), 46);
    assert_eq!(
        (params[0].value(0), params[0].value(45)),
        ("50".into(), "5".into())
    );
    assert_eq!(params[1].value(1), spike(101));
    assert_eq!(params[2].value(0), "\"100ms\"");
    assert_eq!(params[2].value(49), "\"5s\"");
    assert_eq!(params[3].count(), 7);
    assert_eq!(params[3].value(3), "1.25");
    assert_eq!(params[4].value(2), "P2C");
    let strategy = ParamStrategy::new(&params).unwrap();
    // Fails when workers <= 20 and the spike >= 2345/s: the rest shrinks to its mild end.
    let mut runner = runner(500, 10_000, 5);
    let result = runner.run(&strategy, |values| {
        let workers: i64 = values[0].1.parse().unwrap();
        let rate: u64 = values[1]
            .1
            .split('"')
            .nth(7)
            .unwrap()
            .trim_end_matches("/s")
            .parse()
            .unwrap();
        if workers <= 20 && rate >= 2345 {
            return Err(TestCaseError::fail("overloaded"));
        }
        Ok(())
    });
    let Err(proptest::test_runner::TestError::Fail(_, values)) = result else {
        panic!("{result:?}")
    };
    let got: Vec<&str> = values.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(
        got,
        ["20", spike(2345).as_str(), "\"100ms\"", "0.5", "RoundRobin"]
    );
    // A bad parameter is refused before anything runs.
    let bad = Param::float("x", 1.0, 2.0, 0.0);
    assert!(matches!(
        ParamStrategy::new(&[bad]),
        Err(PropError::Param { .. })
    ));
    let no_slot = Param::int("x", 1, 2).template("Schedule([])");
    assert!(matches!(
        ParamStrategy::new(&[no_slot]),
        Err(PropError::Param { .. })
    ));
}

/// The property every plan must have: it names only actors and hosts of the scenario, its
/// windows lie in the space's range on its grain, and the scenario accepts it as a file's
/// faults. Checked on drawn plans and on every plan shrinking visits from them.
#[test]
fn every_drawn_and_shrunk_plan_validates() {
    for name in ["traffic_spike", "pool_exhaustion"] {
        let s = load(name);
        let space = FaultSpace::for_scenario(&s)
            .between(t("30s"), t("9m"))
            .window_max(d("2m"))
            .grain(d("5s"))
            .faults_max(5)
            .slow_factor(2.0, 8.0)
            .skew(d("3s"), d("250ms"));
        let strategy = space.strategy().unwrap();
        let actors: Vec<&str> = s.variants[0]
            .components
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        let check = |plan: &FaultPlan| -> Result<(), TestCaseError> {
            proptest::prop_assert!(plan.entries.len() <= 5);
            for e in &plan.entries {
                let (from, until) = (e.from.unwrap(), e.until.unwrap());
                proptest::prop_assert!(e.at.is_none());
                proptest::prop_assert!(t("30s") <= from && from < until && until <= t("9m"));
                proptest::prop_assert!(until.as_nanos() - from.as_nanos() <= d("2m").as_nanos());
                proptest::prop_assert_eq!(from.as_nanos() % d("5s").as_nanos(), 0);
                proptest::prop_assert_eq!(until.as_nanos() % d("5s").as_nanos(), 0);
                let hosts_ok =
                    |hs: &[String]| !hs.is_empty() && hs.iter().all(|h| s.hosts.contains(h));
                match &e.fault {
                    Fault::Crash { target } | Fault::Pause { target } => {
                        proptest::prop_assert!(actors.contains(&target.as_str()));
                    }
                    Fault::Slow { target, factor } => {
                        proptest::prop_assert!(actors.contains(&target.as_str()));
                        proptest::prop_assert!((2.0..=8.0).contains(factor), "{}", factor);
                    }
                    Fault::ClockOffset { host, offset } => {
                        proptest::prop_assert!(s.hosts.contains(host));
                        let n = offset.nanos.unsigned_abs();
                        proptest::prop_assert!((250_000_000..=3_000_000_000).contains(&n));
                        proptest::prop_assert_eq!(n % 250_000_000, 0);
                    }
                    Fault::Partition { a, b, .. } | Fault::OneWay { from: a, to: b, .. } => {
                        proptest::prop_assert!(hosts_ok(a) && hosts_ok(b));
                        proptest::prop_assert!(a.iter().all(|h| !b.contains(h)));
                    }
                    other => proptest::prop_assert!(false, "not a drawn kind: {:?}", other),
                }
            }
            s.with_faults(plan)
                .map_err(|e| TestCaseError::fail(format!("{e}")))?;
            Ok(())
        };
        // As a property, so that a plan that does not validate is itself shrunk.
        let mut run = runner(cases(200, 2000), 1000, 9);
        if let Err(e) = run.run(&strategy, |plan| check(&plan)) {
            panic!("{name}: {e}");
        }
        // And along shrinking paths, answering "fails" and "passes" at random.
        let mut run = runner(1, 0, 10);
        let mut kinds = std::collections::BTreeSet::new();
        for _ in 0..cases(40, 400) {
            let mut tree = strategy.new_tree(&mut run).unwrap();
            for _ in 0..30 {
                let plan = tree.current();
                check(&plan).unwrap_or_else(|e| panic!("{name}: {e}: {plan:?}"));
                kinds.extend(plan.entries.iter().map(|e| e.fault.kind()));
                let go_on = if run.rng().next_u32() % 2 == 0 {
                    tree.simplify()
                } else {
                    tree.complicate()
                };
                if !go_on {
                    break;
                }
            }
        }
        let all = [
            "clock_offset",
            "crash",
            "one_way",
            "partition",
            "pause",
            "slow",
        ];
        assert_eq!(
            kinds.into_iter().collect::<Vec<_>>(),
            all,
            "{name}: every kind is drawn"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Properties that cannot run, or cannot pass

#[test]
fn a_property_that_cannot_run_says_why() {
    let s = load("traffic_spike");
    let base = || Property::new(&s).check("goodput during the spike");
    let invalid = |r: Result<_, PropFailure>| match r {
        Err(PropFailure::Invalid(e)) => e,
        Err(other) => panic!("expected an invalid property: {other}"),
        Ok(report) => panic!("expected an invalid property, it ran: {report:?}"),
    };
    let e = invalid(base().variant("deadline shedin").run());
    assert!(
        matches!(&e, PropError::UnknownVariant { suggestion: Some(m), .. } if m == "deadline shedding"),
        "{e}"
    );
    let e = invalid(base().check("goodput durin the spike").run());
    assert!(
        matches!(&e, PropError::UnknownCheck { suggestion: Some(m), .. } if m == "goodput during the spike"),
        "{e}"
    );
    let e = invalid(Property::new(&s).run());
    assert!(matches!(e, PropError::NoCheck), "{e}");
    let space = FaultSpace::for_scenario(&s).targets(["apj"]);
    let e = invalid(base().faults(space).run());
    assert_eq!(
        e.to_string(),
        "fault space: no component or host of `traffic_spike` is called `apj` (did you mean `api`?)"
    );
    let space = FaultSpace::for_scenario(&s).between(t("5m"), t("11m"));
    assert!(matches!(space.validate(), Err(PropError::Space(_))));
    let space = FaultSpace::for_scenario(&s)
        .kinds([NemesisKind::Partition])
        .hosts(["api"]);
    assert!(
        space
            .validate()
            .unwrap_err()
            .to_string()
            .contains("two hosts")
    );
    let e = invalid(base().param(Param::int("api.workerz", 10, 20)).run());
    assert!(matches!(e, PropError::Case(_)), "{e}");
    assert!(e.to_string().contains("workerz"), "{e}");
    let (lo, hi) = (5, 4);
    let e = invalid(base().seeds(lo..=hi).run());
    assert!(matches!(e, PropError::Seeds(_)), "{e}");
}

/// "Exists" cannot pass vacuously: a property expecting a failure that never comes fails.
#[test]
fn an_exists_property_fails_when_nothing_fails() {
    let s = load("traffic_spike");
    let r = Property::new(&s)
        .variant("bounded queue")
        .check("goodput during the spike")
        .expect(Expect::Fails)
        .cases(3)
        .run();
    match r {
        Err(PropFailure::NotFound { cases }) => assert_eq!(cases, 3),
        Err(other) => panic!("{other}"),
        Ok(report) => panic!("found a failure of a fix that holds: {report:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// cascading_timeouts (S1)

/// The checks of lookups, the endpoint that never calls payment.
const LOOKUP_CHECKS: [&str; 2] = [
    "lookups succeed while payment is slow",
    "lookup p99 stays low",
];

/// Every way payment can fail: up to 3 faults, each a slowdown (up to 5000x: a 20 ms charge
/// then takes 100 s, past order's 30 s call timeout, so the harshest are hangs), a crash or a
/// pause, of any length up to the whole run, anywhere in it.
fn payment_faults(s: &Scenario) -> FaultSpace {
    FaultSpace::for_scenario(s)
        .kinds([NemesisKind::Slow, NemesisKind::Crash, NemesisKind::Pause])
        .targets(["payment"])
        .window_max(d("10m"))
        .slow_factor(1.1, 5000.0)
}

/// The bulkhead keeps lookups at 99% answered and their p99 under 500 ms through every plan of
/// payment failures in the space: no bound on the factor, the length or the kind was found.
///
/// How the bound was found: slowdowns up to 1000x with windows up to 3 minutes first, then
/// crashes, then up to 5000x with pauses, windows up to the whole run and up to 5 faults; each
/// time hundreds of cases of both checks held (300 of each on this space). In the harshest
/// plans (payment slowed 5000x, crashed or paused from 1m to 9m) every lookup was answered and
/// their p99 was 35.8 ms, as without any fault: the 10 permits leave 40 of the 50 order workers
/// to lookups, which keep less than one busy (70/s at about 5 ms). Nothing on payment comes
/// near either bound, so the property states the whole space; the same space breaks the
/// baseline (below). (A variant with a breaker as well was added to main after this branch
/// started; the bulkhead alone is what this states.)
#[test]
fn the_bulkhead_keeps_lookups_answered_and_fast_whatever_payment_does() {
    let s = load("cascading_timeouts");
    for check in LOOKUP_CHECKS {
        let report = Property::new(&s)
            .variant("bulkhead")
            .check(check)
            .faults(payment_faults(&s))
            .cases(cases(4, 256))
            .runner_seed(11)
            .run()
            .unwrap_or_else(|e| panic!("{check}: {e}"));
        assert_eq!((report.cases, report.held), (cases(4, 256), cases(4, 256)));
        assert_eq!(report.runs, report.cases, "{check}: nothing to shrink");
    }
}

/// The same space breaks the baseline on both checks, with payment the only thing that fails;
/// the bulkhead survives the very plan. Shrunk in full (`FAULTLINE_SLOW=1`), both witnesses
/// are a single crash of payment on seed 1, from 2s to 5m5s for the lookup ratio (98.5%) and
/// from 0s to 5m31s for the p99 (1.02 s): a crash that ends before the judged window opens at
/// 5m30s is enough, because the checkouts it swallowed hold their order workers until order's
/// 30 s timeout, and the lookups queued behind them time out at the users' 3 s. With another
/// runner seed, a crash of only 2 s, at 5m2s. Without crashes the harness shrinks to a single
/// slowdown of a few seconds at 80x to 330x; up to 60x, 64 cases of the baseline held: 30
/// checkouts a second holding a worker for 25 ms x 60 need 45 of the 50.
#[test]
fn the_baseline_loses_lookups_to_a_payment_failure_the_bulkhead_survives() {
    let s = load("cascading_timeouts");
    for check in LOOKUP_CHECKS {
        let (_, _, w) = witness(
            Property::new(&s)
                .variant("baseline")
                .check(check)
                .expect(Expect::Fails)
                .faults(payment_faults(&s))
                .cases(cases(8, 64))
                .runner_seed(11)
                .shrink_runs_max(if slow() { 256 } else { 4 })
                .run(),
        );
        assert!(!w.outcome.holds, "{check}");
        assert!(
            !w.faults.entries.is_empty(),
            "{check}: without a fault lookups are fine"
        );
        assert!(w.faults.entries.len() <= w.original.faults.entries.len());
        for e in &w.faults.entries {
            let target = match &e.fault {
                Fault::Slow { target, .. } | Fault::Crash { target } | Fault::Pause { target } => {
                    target
                }
                other => panic!("only slowdowns, crashes and pauses are drawn: {other:?}"),
            };
            assert_eq!(target, "payment", "{check}: lookups never call payment");
        }
        let case = Case {
            seed: w.seed,
            faults: w.faults.clone(),
            params: Vec::new(),
        };
        for other in LOOKUP_CHECKS {
            assert!(
                run_case(&s, "bulkhead", other, &case).holds,
                "the bulkhead survives the baseline's witness for `{check}`: `{other}`"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// retry_storm (S2)

/// The trigger: one slowdown of the service, from 1.1x to 100x (at 100x it answers 10
/// requests a second: all but stopped), starting at 2m or later, after the pre-trigger
/// baseline the check measures in [1m, 2m], and lasting at most `length_max`, so that it ends
/// by 2m + `length_max`. The check wants goodput back to 90% of the baseline by 7m30s and to
/// stay there: within 5m30s - `length_max` of the trigger's end, whatever its length.
fn api_trigger(s: &Scenario, length_max: &str) -> FaultSpace {
    FaultSpace::for_scenario(s)
        .kinds([NemesisKind::Slow])
        .targets(["api"])
        .faults_max(1)
        .between(t("2m"), t("2m") + d(length_max))
        .window_max(d(length_max))
        .grain(d("1s"))
        .slow_factor(1.1, 100.0)
}

/// With exponential backoff and full jitter, goodput is back to 90% of its pre-trigger value
/// within 3m30s of the end of any slowdown up to 100x and 2 minutes long.
///
/// How the bound was found: with triggers up to 30 s (ending by the check's own 2m30s) and up
/// to 100x, 48 cases held; up to 3 minutes, the harness shrank to one slowdown of 2m15s at 78x
/// and, from another runner seed, of 2m18s at 73.5x from 2m2s, after which goodput came back
/// only at 7m40s. The variant is not metastable: while every attempt fails, the backed-off
/// users offer about 570/s in all, below the healthy service's 1,000/s, so the queue of
/// abandoned requests that the slowdown left drains, at about 430/s; it takes about 1.4 s per
/// second of trigger (a 3-minute trigger at 100x recovers at 9m10s, a 4-minute one not by the
/// end of the run). Slowed 100x from 2m to 4m exactly (the corner of this space), 40 seeds
/// recovered at 6m50s or 7m: 30 s or more before the deadline, three samples. Up to 2 minutes
/// (10 to 20 s below the failures found), 256 cases of slowdowns from 10x held, and the 128
/// of this property.
#[test]
fn backoff_and_jitter_recover_from_any_slowdown_up_to_2_minutes() {
    let s = load("retry_storm");
    let report = Property::new(&s)
        .variant("backoff + jitter")
        .check("goodput recovers")
        .faults(api_trigger(&s, "2m"))
        .cases(cases(4, 128))
        .runner_seed(3)
        .run()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((report.cases, report.held), (cases(4, 128), cases(4, 128)));
}

/// With the retry budget (retries at most 20% of requests, and no backoff), goodput is back
/// within 4m30s of the end of any slowdown up to 100x and 1 minute long.
///
/// How the bound was found: up to 2m30s, the harness shrank to one slowdown of 75 s at 54.9x
/// (2m13s to 3m28s), after which goodput came back only at 7m40s, 4m12s later. The budget is
/// not metastable either, but drains far more slowly than backoff: its users still retry at
/// once, as far as the budget lets them, so while every attempt fails they offer about 760/s
/// and the queue drains at the 240/s left, about 3.4 s per second of trigger (90 s at 100x
/// recovers at 8m30s). Slowed 100x from 2m for 75 s, 12 seeds recovered in time, for 80 s
/// not; from 2m to 3m (the corner of this space), 40 seeds recovered at 6m20s or 6m30s, a
/// minute before the deadline. Up to 1 minute (15 s below the failures found), 256 cases of
/// slowdowns from 10x held, and the 128 of this property.
#[test]
fn the_retry_budget_recovers_from_any_slowdown_up_to_1_minute() {
    let s = load("retry_storm");
    let report = Property::new(&s)
        .variant("retry budget")
        .check("goodput recovers")
        .faults(api_trigger(&s, "1m"))
        .cases(cases(4, 128))
        .runner_seed(3)
        .run()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((report.cases, report.held), (cases(4, 128), cases(4, 128)));
}

/// The values of `value` (one of the scenario's charts) through the run of `case` on
/// `variant`.
fn chart_of(s: &Scenario, variant: &str, value: &str, case: &Case) -> Vec<(SimTime, f64)> {
    let s = with_case(s, case);
    let vi = s.variants.iter().position(|v| v.name == variant).unwrap();
    let ci = s
        .charts
        .iter()
        .position(|c| c.value.to_string() == value)
        .unwrap_or_else(|| panic!("no chart of {value}"));
    let (run, detail) = run_seed(&s, vi, case.seed, true);
    assert!(!run.limit_hit, "{variant} seed {} hit a limit", case.seed);
    detail.unwrap().charts[ci]
        .clone()
        .expect("the variant has the metric")
}

/// Immediate retries turn a trigger the fixes ride out into a storm that outlives it: the
/// harness finds a slowdown in the budget's space (up to 1 minute) after which goodput is
/// still near zero at the end of the run, 7 minutes later, and both fixes recover from it.
///
/// Where the baseline becomes metastable, from the harness: shrunk in full, this witness is a
/// slowdown of 1.5x for 1 s (2m4s to 2m5s, seed 1); with other runner seeds and spaces, 1.4x
/// for 1 s at 2m9s (seed 689) and 1.3x for 2 s at 3m49s (seed 330): a second or two of a
/// slowdown, at a moment that depends on the seed. Up to 1.2x, 128 cases of slowdowns up to 2
/// minutes held, and 64 seeds without any fault: the healthy service (69% busy) is stable, but
/// its queue needs only a little push past the 100 ms timeout for every user to send 4
/// attempts in 400 ms: about 2,000/s, twice the service's capacity, so the queue then grows by
/// about 1,000 a second for as long as the run goes on.
#[test]
fn immediate_retries_turn_a_short_slowdown_into_a_storm_that_never_ends() {
    let s = load("retry_storm");
    let (_, _, w) = witness(
        Property::new(&s)
            .variant("baseline")
            .check("goodput recovers")
            .expect(Expect::Fails)
            .faults(api_trigger(&s, "1m"))
            .cases(cases(8, 64))
            .runner_seed(3)
            .shrink_runs_max(if slow() { 256 } else { 1 })
            .run(),
    );
    assert!(!w.outcome.holds);
    assert_eq!(
        w.faults.entries.len(),
        1,
        "one trigger: without it the baseline recovers"
    );
    let e = &w.faults.entries[0];
    let Fault::Slow { target, factor } = &e.fault else {
        panic!("only slowdowns are drawn: {e:?}")
    };
    assert_eq!(target, "api");
    assert!((1.1..=100.0).contains(factor), "{factor}");
    let (from, until) = (e.from.unwrap(), e.until.unwrap());
    assert!(t("2m") <= from && until <= t("3m"), "{e:?}");
    // Not a slow recovery: goodput is near zero where the check gave up (a tenth of the
    // ~690/s before the trigger), and through the last minute of the run.
    assert!(w.outcome.value.unwrap() < 69.0, "{}", w.outcome.detail);
    let case = Case {
        seed: w.seed,
        faults: w.faults.clone(),
        params: Vec::new(),
    };
    let goodput = chart_of(&s, "baseline", "rate(users.ok_total)", &case);
    let last_minute: Vec<f64> = goodput
        .iter()
        .filter(|(at, _)| *at > t("9m"))
        .map(|(_, v)| *v)
        .collect();
    assert!(!last_minute.is_empty());
    assert!(last_minute.iter().all(|v| *v < 69.0), "{last_minute:?}");
    for fix in ["backoff + jitter", "retry budget"] {
        assert!(
            run_case(&s, fix, "goodput recovers", &case).holds,
            "{fix} recovers from the baseline's witness"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// herd_after_restart (S4)

/// Outages of the instance: up to 3 crashes, each restarted at the end of its window, from
/// one `grain` to `window_max` long, starting anywhere in the run on a `grain` grid.
fn api_outages(s: &Scenario, grain: &str, window_max: &str) -> FaultSpace {
    FaultSpace::for_scenario(s)
        .kinds([NemesisKind::Crash])
        .targets(["api"])
        .grain(d(grain))
        .window_max(d(window_max))
}

/// How long a drawn crash keeps the instance down.
fn outage(e: &faultline::FaultEntry) -> SimDuration {
    e.until.unwrap() - e.from.unwrap()
}

/// Outages the balancer notices: 4.5 s or longer (the grain), up to 5 minutes. The 4.5 s grid
/// also puts their starts on every half second of the balancer's 2 s probe cycle.
fn noticed_outages(s: &Scenario) -> FaultSpace {
    api_outages(s, "4.5s", "5m")
}

/// With slow start the instance is never OOM-killed, for up to 3 outages of 4.5 s to 5
/// minutes anywhere in the run.
///
/// How the bound was found: single crashes of 1 s to 5 minutes anywhere, then up to 3 crashes
/// up to the whole run: 64 and 128 cases held, but they rarely draw a short outage. With
/// windows up to 12 s the harness shrank to a single crash of 2 s (4m41s to 4m43s, seed 8),
/// and with up to 6 short crashes to three of 1 s; a crash of 3 s at 1m47s fails on seed 1.
/// An outage that short can fall between the balancer's probes (every 2 s, ejection after 2
/// failures): the instance is never ejected, so slow start, which ramps an instance coming
/// back into rotation, never starts, and the restarted, cold instance gets the normal load
/// and, all at once, the retries of everything lost in the crash (the clients retry exactly 1
/// s after their 2 s timeout): 380 MB and an OOM kill. Swept by hand (crashes at 2m plus 0,
/// 0.5, 1, 1.5 s, 10 seeds each): 2 and 3 s fail on up to 6 seeds of 10, depending on the
/// phase; 4 s and longer never, and peak at 201 MB of the 400 MB (the ramp's first 10% of
/// 1,000 connections, 100 MB over the base). Hence the 4.5 s grain: 256 cases of up to 3 such
/// outages held. The next test shows the hole.
#[test]
fn slow_start_keeps_the_instance_up_after_any_outage_the_balancer_notices() {
    let s = load("herd_after_restart");
    let report = Property::new(&s)
        .variant("slow start")
        .check("no OOM kill after the restart")
        .faults(noticed_outages(&s))
        .cases(cases(6, 256))
        .runner_seed(4)
        .run()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((report.cases, report.held), (cases(6, 256), cases(6, 256)));
}

/// Slow start has a hole: an outage of a few seconds, which the balancer does not notice,
/// OOM-kills the restarted instance. The witness is shorter than the 4.5 s the property above
/// starts at, and the balancer kept the instance in rotation through it; shrunk in full, it is
/// one crash of 2 s (6m35s to 6m37s, seed 1), after which memory reaches 380 MB in 3 s.
#[test]
fn slow_start_does_not_cover_an_outage_too_short_for_the_health_checks() {
    let s = load("herd_after_restart");
    let (_, _, w) = witness(
        Property::new(&s)
            .variant("slow start")
            .check("no OOM kill after the restart")
            .expect(Expect::Fails)
            .faults(api_outages(&s, "1s", "10s"))
            .cases(cases(8, 64))
            .runner_seed(4)
            .shrink_runs_max(if slow() { 256 } else { 4 })
            .run(),
    );
    assert!(!w.outcome.holds);
    assert!(w.outcome.value.unwrap() >= 1.0);
    assert!(!w.faults.entries.is_empty(), "it needs an outage");
    let short: Vec<_> = w
        .faults
        .entries
        .iter()
        .filter(|e| outage(e) < d("4.5s"))
        .collect();
    assert!(
        !short.is_empty(),
        "an outage shorter than 4.5 s: {:?}",
        w.faults
    );
    let case = Case {
        seed: w.seed,
        faults: w.faults.clone(),
        params: Vec::new(),
    };
    // The balancer kept the instance in rotation through (at least) one of them: it never
    // noticed, so there was nothing for slow start to ramp.
    let in_rotation = chart_of(&s, "slow start", "lb.healthy.api", &case);
    let unnoticed = short.iter().any(|e| {
        let (from, until) = (e.from.unwrap(), e.until.unwrap());
        let during: Vec<f64> = in_rotation
            .iter()
            .filter(|(at, _)| from <= *at && *at <= until)
            .map(|(_, v)| *v)
            .collect();
        !during.is_empty() && during.iter().all(|v| *v == 1.0)
    });
    assert!(unnoticed, "{:?}: {in_rotation:?}", w.faults);
}

/// With jittered backoff and the retry budget the instance is never OOM-killed either, for
/// the same outages.
///
/// How the bound was found: as for slow start; this variant has the same hole, but narrower.
/// Single crashes of 1 s to 12 s on a 1 s grid held 256 cases, and up to 6 crashes of up to
/// 30 s 128; on a 0.5 s grid the harness shrank to one crash of 2 s (7m14.5s to 7m16.5s, seed
/// 962), and on a 0.25 s grid to one of 2.25 s. Those outages peak near the limit even when
/// they pass (390 MB of 400 MB in the hand sweep); from 4 s on the peak is at most 196 MB,
/// since the budget lets few retries through. 256 cases of up to 3 outages of 4.5 s and more
/// held.
#[test]
fn the_retry_budget_keeps_the_instance_up_after_any_outage_the_balancer_notices() {
    let s = load("herd_after_restart");
    let report = Property::new(&s)
        .variant("jittered backoff + budget")
        .check("no OOM kill after the restart")
        .faults(noticed_outages(&s))
        .cases(cases(6, 256))
        .runner_seed(4)
        .run()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((report.cases, report.held), (cases(6, 256), cases(6, 256)));
}

/// The baseline's restart loop, in the space where both fixes hold: shrunk, one outage of 4.5
/// s at the start of the run is enough for the instance to be OOM-killed again and again
/// (6 times on seed 1); both fixes keep it up through the same outage.
#[test]
fn the_baseline_crash_loops_after_an_outage_both_fixes_survive() {
    let s = load("herd_after_restart");
    let (_, _, w) = witness(
        Property::new(&s)
            .variant("baseline")
            .check("no OOM kill after the restart")
            .expect(Expect::Fails)
            .faults(noticed_outages(&s))
            .cases(cases(8, 64))
            .runner_seed(4)
            .shrink_runs_max(if slow() { 256 } else { 4 })
            .run(),
    );
    assert!(!w.outcome.holds);
    assert!(!w.faults.entries.is_empty(), "it needs an outage");
    assert!(
        w.outcome.value.unwrap() >= 2.0,
        "a loop, not a single kill: {}",
        w.outcome.detail
    );
    for e in &w.faults.entries {
        let Fault::Crash { target } = &e.fault else {
            panic!("only crashes are drawn: {e:?}")
        };
        assert_eq!(target, "api");
        assert!(outage(e) >= d("4.5s"), "{e:?}");
    }
    let case = Case {
        seed: w.seed,
        faults: w.faults.clone(),
        params: Vec::new(),
    };
    for fix in ["slow start", "jittered backoff + budget"] {
        assert!(
            run_case(&s, fix, "no OOM kill after the restart", &case).holds,
            "{fix} survives the baseline's witness"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// unbounded_queue (S5)

/// unbounded_queue's arrivals with the surge (2m to 5m) at `{}` requests a second.
const SURGE: &str = r#"Schedule([("0s", "150/s"), ("2m", "{}/s"), ("5m", "150/s")])"#;

/// Surges from none (150/s, the normal load) to 1,000/s, five times what the service can
/// serve.
fn surges() -> Param {
    Param::int("users.arrivals", 150, 1000).template(SURGE)
}

/// The checks the bounded queue must keep: memory below 300 MB, and every request the
/// service accepted answered before its client gave up.
const BACK_PRESSURE_CHECKS: [&str; 2] = [
    "memory stays bounded",
    "no accepted request goes unanswered",
];

/// With the bounded queue and 429 + Retry-After, memory stays below 300 MB and no accepted
/// request goes unanswered, for every surge up to 1,000/s.
///
/// How the bound was found: surges up to 5,000/s (25 times the capacity) held 64 cases of each
/// check; the bound is not a property of the load at all. The queue and the 20 workers hold at
/// most 220 requests, 11 MB over the 200 MB base, whatever arrives (every run peaks at 211
/// MB), and the last of them waits about 1.1 s, well inside the clients' 5 s. The stated range
/// stops at 1,000/s for the cost alone: a run's events grow with the surge (every refused
/// request comes back up to 4 times), and at 5,000/s one run takes 6 s here.
#[test]
fn a_bounded_queue_keeps_memory_bounded_and_answers_what_it_accepts_through_any_surge() {
    let s = load("unbounded_queue");
    for check in BACK_PRESSURE_CHECKS {
        let report = Property::new(&s)
            .variant("bounded + 429")
            .check(check)
            .param(surges())
            .cases(cases(3, 64))
            .runner_seed(5)
            .run()
            .unwrap_or_else(|e| panic!("{check}: {e}"));
        assert_eq!((report.cases, report.held), (cases(3, 64), cases(3, 64)));
    }
}

/// The same surges break the unbounded queue, and a surge just past the capacity is enough:
/// shrunk in full, the witness is a surge to 208/s (4% over the 200/s the service serves) on
/// seed 1, or with another runner seed to 204/s on seed 174, after which the queue grows past
/// the clients' 5 s timeout, their retries add to it, and memory reaches the 512 MiB limit; up
/// to 200/s, 64 cases held. The witness also leaves accepted requests unanswered, and the
/// bounded queue keeps both checks on it.
#[test]
fn the_unbounded_queue_runs_out_of_memory_in_a_surge_just_past_capacity() {
    let s = load("unbounded_queue");
    let (_, _, w) = witness(
        Property::new(&s)
            .variant("baseline")
            .check("memory stays bounded")
            .expect(Expect::Fails)
            .param(surges())
            .cases(cases(8, 64))
            .runner_seed(3)
            .shrink_runs_max(if slow() { 256 } else { 4 })
            .run(),
    );
    assert!(!w.outcome.holds);
    assert!(w.outcome.value.unwrap() > 300e6, "{}", w.outcome.detail);
    assert_eq!(w.faults, FaultPlan::new(), "no fault: the surge alone");
    assert_eq!(w.params.len(), 1);
    let rate: u64 = w.params[0]
        .1
        .split('"')
        .nth(7)
        .and_then(|r| r.strip_suffix("/s"))
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("{:?}", w.params));
    assert_eq!(w.params[0].1, SURGE.replace("{}", &rate.to_string()));
    assert!(rate > 200, "up to the capacity the queue drains: {rate}/s");
    let case = Case {
        seed: w.seed,
        faults: w.faults.clone(),
        params: w.params.clone(),
    };
    assert!(!run_case(&s, "baseline", "no accepted request goes unanswered", &case).holds);
    for check in BACK_PRESSURE_CHECKS {
        assert!(
            run_case(&s, "bounded + 429", check, &case).holds,
            "the bounded queue keeps `{check}` on the baseline's witness"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// jitter_contention

/// Slowdowns of the contended record's database: up to 2, anywhere in the first 10 s (the
/// jittered clients are done in about 3 s), at most `harsh` times slower.
fn record_slowdowns(s: &Scenario, harsh: f64) -> FaultSpace {
    FaultSpace::for_scenario(s)
        .kinds([NemesisKind::Slow])
        .targets(["db"])
        .faults_max(2)
        .between(t("0s"), t("10s"))
        .window_max(d("5s"))
        .slow_factor(1.1, harsh)
}

/// Full jitter keeps 100 contending writers under 1,000 calls on every seed and through any
/// plan of slowdowns of the record up to the bound below. A slower write widens the window in
/// which another commit makes it fail, but the backoff grows with each failure and the jitter
/// keeps the writers apart, so the waste stays near one conflict per write.
///
/// How the bound was found: with slowdowns up to 10x the harness shrinks to one 5.7x slowdown
/// of the first 2.7 s (1,004 calls); up to 4x, to 3.6x over the first 2.6 s. Up to 3x, 1,024
/// cases held for both variants (runner seed 6); the stated bound, 2.5x, keeps a margin below
/// the first failure found.
#[test]
fn full_jitter_keeps_contending_writers_under_a_thousand_calls() {
    let s = load("jitter_contention");
    for variant in ["full jitter", "decorrelated jitter"] {
        let report = Property::new(&s)
            .variant(variant)
            .check("at most 1000 calls")
            .faults(record_slowdowns(&s, JITTER_SLOWDOWN_MAX))
            .cases(cases(6, 256))
            .runner_seed(6)
            .run()
            .unwrap_or_else(|e| panic!("{variant}: {e}"));
        assert_eq!(report.held, report.cases, "{variant}");
    }
}

/// The most a slowdown of the record may be for the jittered writers' property.
const JITTER_SLOWDOWN_MAX: f64 = 2.5;

/// Without jitter the writers stay in lockstep: the harness finds, with no fault at all, a
/// seed on which plain exponential backoff wastes more than 1,000 calls.
#[test]
fn plain_exponential_backoff_wastes_calls_on_some_seed() {
    let s = load("jitter_contention");
    let (_, _, w) = witness(
        Property::new(&s)
            .variant("exponential")
            .check("at most 1000 calls")
            .expect(Expect::Fails)
            .faults(record_slowdowns(&s, JITTER_SLOWDOWN_MAX))
            .cases(cases(4, 32))
            .runner_seed(5)
            .shrink_runs_max(if slow() { 128 } else { 4 })
            .run(),
    );
    assert!(w.outcome.value.unwrap() > 1000.0, "{}", w.outcome.detail);
    let case = Case {
        seed: w.seed,
        faults: w.faults.clone(),
        params: Vec::new(),
    };
    assert!(run_case(&s, "full jitter", "at most 1000 calls", &case).holds);
}

// ---------------------------------------------------------------------------------------------
// cache_stampede (C1)

/// cache_stampede's arrivals with the full load (from 20 s) at `{}` requests a second.
const STAMPEDE_LOAD: &str = r#"Schedule([("0s", "1000/s"), ("20s", "{}/s")])"#;

/// The check single-flight's property judges, over the whole run (the cold start included):
/// never two queries of the hot page running at once.
const ONE_AT_A_TIME: &str = "one query of the hot page at a time";

/// cache_stampede with [`ONE_AT_A_TIME`] added to its checks.
fn stampede_with_one_at_a_time() -> Scenario {
    let s = load("cache_stampede");
    let check = format!(
        "    checks: [\n        AtMost(name: \"{ONE_AT_A_TIME}\", value: \"pg.burst_queries.max\", \
         max: 1),\n"
    );
    assert_eq!(s.text.matches("    checks: [\n").count(), 1);
    let text = s.text.replacen("    checks: [\n", &check, 1);
    Scenario::from_str(&text, &s.file).unwrap_or_else(|e| panic!("{e}"))
}

/// The faults of the cache and of the service: up to 3 crashes, pauses or slowdowns (up to
/// 10x) of either, anywhere in the run.
fn cache_and_service_faults(s: &Scenario) -> FaultSpace {
    FaultSpace::for_scenario(s)
        .kinds([NemesisKind::Crash, NemesisKind::Pause, NemesisKind::Slow])
        .targets(["redis", "api"])
        .slow_factor(1.1, 10.0)
}

/// The faults of the database single-flight is stated for: up to 3 crashes or slowdowns up
/// to `harsh`, anywhere in the run (no pauses: see the property).
fn database_faults(s: &Scenario, harsh: f64) -> FaultSpace {
    FaultSpace::for_scenario(s)
        .kinds([NemesisKind::Crash, NemesisKind::Slow])
        .targets(["pg"])
        .slow_factor(1.1, harsh)
}

/// Loads from 2,000/s to the scenario's 10,000/s (the hot page gets 13.7% of them).
fn stampede_loads() -> Param {
    Param::int("users.arrivals", 2000, 10000).template(STAMPEDE_LOAD)
}

/// With single-flight, the database never runs two queries of the hot page at once
/// (`pg.burst_queries.max` is 1 over the whole run, the cold start included: one query per
/// expiry), for any load from 2,000/s to 10,000/s and any plan of up to 3 crashes, pauses or
/// slowdowns up to 10x of the cache or the service, or of up to 3 crashes or slowdowns up to
/// 10x of the database.
///
/// Why it holds: a read that misses while its key's flight is under way waits for it, and
/// one that waits the whole 1 s `wait` fails (`coalesce_timeouts_total`) rather than query;
/// a cache that crashed (and restarts empty), stalls or refuses makes every read a miss, but
/// those misses still queue behind one flight, whose write then fails, and the next flight
/// starts only after its query ended. The precondition is that no query of the hot page
/// outlives the flight that started it: a flight also ends when its leader's call times out
/// (2 s), and when the service crashes (the restarted instance knows nothing of the queries
/// its earlier life left running). Up to 10x slower, the LogNormal(50 ms, 80 ms) query takes
/// more than 1 s (the shortest crash on the space's 1 s grain) with probability 3e-4 and more
/// than 2 s with probability 3e-12.
///
/// What breaks it, from the harness: a pause of the database longer than the call timeout.
/// With pauses of `pg` in the space (`FAULTLINE_SLOW`, 64 cases), it shrank to one pause from
/// 0 s to 10 s on seed 1: each leader's call times out while its query waits at the paused
/// database, the next read leads another, and on resume the database runs the waiting queries
/// together (the next test). Slowdowns far past 10x do the same: with `pg` slowed 100x from
/// 50 s to 1m30s (queries of 5 s), seed 1 has a burst of 7. With random plans that is rare: at
/// 100x, 16 cases of crashes, pauses and slowdowns of all three and 12 of single database
/// slowdowns held, since a slowed pool of 20 mostly makes the leader time out before it gets
/// a connection, which starts no query; 24 cases held up to 40x. CI runs 2 cases of each
/// space; under `FAULTLINE_SLOW` 32 of each held.
#[test]
fn single_flight_runs_one_query_per_key_at_a_time_whatever_the_faults_and_load() {
    let s = stampede_with_one_at_a_time();
    for (what, space) in [
        ("cache and service", cache_and_service_faults(&s)),
        ("database", database_faults(&s, 10.0)),
    ] {
        let report = Property::new(&s)
            .variant("single-flight")
            .check(ONE_AT_A_TIME)
            .faults(space)
            .param(stampede_loads())
            .cases(cases(2, 32))
            .runner_seed(8)
            .run()
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!((report.cases, report.held), (cases(2, 32), cases(2, 32)));
    }
}

/// Single-flight's precondition, shown: a database paused past the leader's 2 s call timeout
/// (the harness's shrunk counterexample) runs two queries of the hot page at once, and a
/// pause shorter than the timeout does not.
#[test]
fn single_flight_runs_two_queries_at_once_when_a_pause_outlasts_the_call_timeout() {
    let s = stampede_with_one_at_a_time();
    let pause = |until: &str| Case {
        seed: 1,
        faults: FaultPlan::new().window(
            t("0s"),
            t(until),
            Fault::Pause {
                target: "pg".into(),
            },
        ),
        params: vec![(
            "users.arrivals".to_string(),
            STAMPEDE_LOAD.replace("{}", "2000"),
        )],
    };
    let long = run_case(&s, "single-flight", ONE_AT_A_TIME, &pause("10s"));
    assert!(!long.holds, "{}", long.detail);
    assert!(long.value.unwrap() >= 2.0, "{}", long.detail);
    let short = run_case(&s, "single-flight", ONE_AT_A_TIME, &pause("1s"));
    assert!(short.holds, "{}", short.detail);
}

/// The database's space breaks the baseline: the harness finds a case where one expiry of
/// the hot page sends more than 20 queries into the pool at once (the scenario's check, after
/// the warm-up), and single-flight runs one at a time on it. It needs no fault, only load, and
/// the mildest of the space is enough: shrunk in full (`FAULTLINE_SLOW`, found with crashes,
/// pauses and slowdowns of all three components), the witness is no fault at 2,000/s on seed
/// 1, a burst of 24 queries from the hot page's 274 reads a second
/// (the herd is about `1 + lambda * window`, the window the time until the first recompute's
/// write lands, pool waits included). CI stops after one shrinking run: no fault at 3,657/s
/// on seed 600, a burst of 32.
#[test]
fn the_baseline_stampedes_the_database_on_a_hot_key_expiry() {
    let s = stampede_with_one_at_a_time();
    let (_, _, w) = witness(
        Property::new(&s)
            .variant("baseline")
            .check("queries per hot-key expiry")
            .expect(Expect::Fails)
            .faults(database_faults(&s, 10.0))
            .param(stampede_loads())
            .cases(cases(4, 16))
            .runner_seed(8)
            .shrink_runs_max(if slow() { 64 } else { 1 })
            .run(),
    );
    assert!(w.outcome.value.unwrap() > 20.0, "{}", w.outcome.detail);
    let case = Case {
        seed: w.seed,
        faults: w.faults.clone(),
        params: w.params.clone(),
    };
    assert!(run_case(&s, "single-flight", ONE_AT_A_TIME, &case).holds);
}

/// The pages of XFetch's sped-up cache_stampede: ids Zipf(10, 0.99), so that the hot page
/// expires every 2 s without the nine others loading the pool.
const XFETCH_PAGES: u32 = 10;

/// XFetch's variant of cache_stampede sped up: a steady `rate` of reads of [`XFETCH_PAGES`]
/// pages, each cached for 2 s to 2.2 s (70 expiries of the hot page a run, against 4 at 30 s),
/// with `beta`. The hot page gets `rate / H(10, 0.99)`, 34% of the reads.
fn xfetch_overrides(rate: u64, beta: f64) -> Vec<(String, String)> {
    [
        (
            "users.arrivals",
            format!(r#"Schedule([("0s", "{rate}/s")])"#),
        ),
        (
            "users.keys",
            format!("Some((popularity: Zipf(n: {XFETCH_PAGES}, s: 0.99)))"),
        ),
        (
            "api.kinds[0].cache.ttl",
            r#"Some((base: "2s", jitter: 0.1))"#.to_string(),
        ),
        (
            "api.kinds[0].cache.stampede",
            format!("XFetch(beta: {beta:?})"),
        ),
    ]
    .into_iter()
    .map(|(p, v)| (p.to_string(), v))
    .collect()
}

/// The hot page's reads a second at `rate` reads a second of [`XFETCH_PAGES`] pages.
fn hot_page_rate(rate: u64) -> f64 {
    let h: f64 = (1..=XFETCH_PAGES).map(|k| f64::from(k).powf(-0.99)).sum();
    rate as f64 / h
}

/// The mean number of recomputes per expiry of a key read under heavy traffic with XFetch at
/// `beta`, when the recompute times are independent draws of LogNormal(p50, p99):
/// `E[exp(Q' / (beta Q))]`, `Q` the recompute that wrote the entry (XFetch's `delta`, which
/// sets how early the first refresh comes) and `Q'` the one under way (how long the other
/// readers keep refreshing). With `Q' = Q` it is `exp(1 / beta)`; the spread of `Q' / Q`, a
/// LogNormal of shape `sigma * sqrt(2)`, only adds (Jensen). Integrated over the normal
/// variable of the log-ratio on a fine grid to +-10 sd.
fn xfetch_bound(beta: f64, p50: SimDuration, p99: SimDuration) -> f64 {
    const Z99: f64 = 2.326_347_874_040_841;
    let sigma = (p99.as_secs_f64() / p50.as_secs_f64()).ln() / Z99;
    let shape = sigma * std::f64::consts::SQRT_2;
    let n = 20_000;
    let (mut sum, mut weights) = (0.0, 0.0);
    for i in 0..=n {
        let z = -10.0 + 20.0 * f64::from(i) / f64::from(n);
        let w = (-z * z / 2.0).exp();
        sum += w * ((shape * z).exp() / beta).exp();
        weights += w;
    }
    sum / weights
}

/// cache_stampede with metrics sampled every 100 ms, fine enough to tell one expiry of the
/// hot page from the next.
fn stampede_sampled_finely() -> Scenario {
    let s = load("cache_stampede");
    let at = "    duration: \"2m30s\",\n";
    assert_eq!(s.text.matches(at).count(), 1);
    assert!(!s.text.contains("    sample:"));
    let text = s
        .text
        .replacen(at, &format!("{at}    sample: \"100ms\",\n"), 1);
    Scenario::from_str(&text, &s.file).unwrap_or_else(|e| panic!("{e}"))
}

/// The hot page's database queries per expiry in one run of `s`'s variant `vi` after the
/// warm-up (from 10 s), from its query counter sampled every 100 ms: an expiry's queries all
/// start within a few recompute times of each other, and the next expiry comes 1.3 s or more
/// later (a TTL of 2 s or more, less the lead of its first refresh), so a run of 100 ms
/// intervals with queries, none more than 500 ms apart, is one expiry. Also counts the
/// expiries whose queries formed more than one burst at the database (a refresh that started
/// after the first recompute's query ended but before its write landed).
fn queries_per_expiry(s: &Scenario, vi: usize, seed: u64) -> (Vec<f64>, usize) {
    let mut sim = faultline::scenario::build(s, &s.variants[vi], seed, false).unwrap();
    let end = SimTime::ZERO.saturating_add(s.duration);
    let verdict = sim.run_until(end);
    assert!(
        matches!(verdict, faultline::Verdict::Reached),
        "{verdict:?}"
    );
    let m = sim.metrics();
    let queries = m.series("pg.key_queries_total.0").expect("track_keys: 1");
    let bursts = m.series("pg.burst_queries.count").expect("track_keys: 1");
    let (mut expiries, mut split) = (Vec::new(), 0);
    // (queries, bursts ended, time of the last interval with a query)
    let mut open: Option<(f64, f64, SimTime)> = None;
    let mut last = None;
    for (&(at, total), &(at_b, ended)) in queries.points.iter().zip(&bursts.points) {
        assert_eq!(at, at_b);
        let started = total - last.unwrap_or(total);
        last = Some(total);
        if at <= t("10s") {
            continue;
        }
        if let Some((q, b, seen)) = open
            && at - seen > d("500ms")
        {
            expiries.push(q);
            split += usize::from(b > 1.0);
            open = None;
        }
        if started > 0.0 {
            let (q, b, _) = open.unwrap_or((0.0, 0.0, at));
            open = Some((q + started, b + ended, at));
        } else if let Some((q, b, seen)) = open {
            open = Some((q, b + ended, seen));
        }
    }
    // The last expiry may still be under way at the end of the run: left out.
    (expiries, split)
}

/// With XFetch, the hot page's mean number of database queries per expiry stays below
/// `xfetch_bound(beta)`: 2.98 at beta 1 and 1.70 at beta 2 for the scenario's queries
/// (LogNormal, p50 50 ms, p99 80 ms), against 24 to 70 or more in the baseline. Judged on the
/// sped-up scenario of [`xfetch_overrides`] at 2,000 reads a second (1,500 and 2,000 under
/// `FAULTLINE_SLOW`), without faults, over the pooled expiries of the runs (about 70 a run):
/// the sample mean may exceed the bound by at most 3 standard errors (the sample's own
/// standard deviation over the square root of the number of expiries), and must be at least
/// `expected_recomputations(rate, 50ms, beta)` (the constant-delta value, e^{1/beta} at this
/// traffic) less 3 standard errors, so the bound is not met by some other means (by
/// recomputing once).
///
/// The bound: under heavy traffic (here the hot page's `lambda * beta * delta * e^{-1/beta}`
/// is 9 or more) the first early refresh comes at a cumulative refresh intensity `E ~ Exp(1)`
/// and the readers that also refresh while it runs number Poisson(`E (e^{Q'/(beta Q)} - 1)`),
/// so the count per expiry is 1 + a geometric variable of mean `e^{Q'/(beta Q)} - 1` given the
/// two recompute times; `e^{1/beta}` only if they are equal. What the harness found, with 8
/// seeds for each of the loads: at beta 1, means of 2.75 (1,500/s; 573 expiries, standard
/// error 0.10), 2.80 (2,000/s; 0.10) and 2.73 (4,000/s; 0.10), with a standard deviation of
/// 2.3 to 2.5 where a geometric's is 2.16 (the spread of `Q' / Q` fattens the tail: up to 20
/// queries for one expiry); at beta 2, 1.69 and 1.63 (0.04; e^{1/2} = 1.65). The means sit
/// between e^{1/beta} and the bound: the service's `delta` includes a network round trip and
/// the pool, which narrow `Q' / Q`. One expiry in 30 to 60 is split into two bursts at the
/// database (a refresh that starts after the first query ended, before its write landed),
/// which is why expiries are counted from the query counter and not from the bursts.
///
/// Where it stops holding: at 4,000/s with beta 2 the hot page is queried about 94 times a
/// second for the whole run, from the cold start on (14,098 queries on seed 1, and not one
/// quiet half second: no expiry to count). XFetch's `delta` is the recompute's time as the
/// service measured it, pool wait included, so when `beta * delta` nears the 2 s TTL (as
/// after a cold start that queues in the pool) nearly every read refreshes, and the
/// refreshes keep the pool busy: the bound's premise, recompute times of one distribution
/// and much shorter than the TTL, no longer holds. At beta 1 the same load holds (2.73 above).
#[test]
fn xfetch_keeps_recomputations_per_expiry_below_the_bound_of_its_parameters() {
    let s = stampede_sampled_finely();
    let (p50, p99) = (d("50ms"), d("80ms"));
    let rates: &[u64] = if slow() { &[1500, 2000] } else { &[2000] };
    let seeds = if slow() { 1..=8 } else { 1..=2 };
    for beta in [1.0, 2.0] {
        let bound = xfetch_bound(beta, p50, p99);
        for &rate in rates {
            let s = Scenario::with_overrides(&s.text, &s.file, &xfetch_overrides(rate, beta))
                .unwrap_or_else(|e| panic!("{e}"));
            let vi = s.variants.iter().position(|v| v.name == "XFetch").unwrap();
            let (mut sizes, mut split) = (Vec::new(), 0);
            for seed in seeds.clone() {
                let (x, n) = queries_per_expiry(&s, vi, seed);
                sizes.extend(x);
                split += n;
            }
            let k = sizes.len() as f64;
            assert!(k >= 60.0 * (*seeds.end() as f64), "{k} expiries");
            let mean = sizes.iter().sum::<f64>() / k;
            let var = sizes.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (k - 1.0);
            let se = (var / k).sqrt();
            let lambda = hot_page_rate(rate);
            let ideal = faultline::model::cache::expected_recomputations(lambda, p50, beta);
            let at = format!(
                "beta {beta}, {rate}/s: {k} expiries ({split} split), mean {mean:.3} (se \
                 {se:.3}), bound {bound:.3}, constant delta {ideal:.3}"
            );
            assert!(mean <= bound + 3.0 * se, "{at}");
            assert!(mean >= ideal - 3.0 * se, "{at}");
            assert!(sizes.iter().all(|&x| x >= 1.0));
        }
    }
    // The bound's limits: e^{1/beta} when every recompute takes the same time.
    let constant = xfetch_bound(1.0, d("50ms"), d("50ms"));
    assert!((constant - std::f64::consts::E).abs() < 1e-9, "{constant}");
    assert!((xfetch_bound(1.0, p50, p99) - 2.98).abs() < 0.01);
    assert!((xfetch_bound(2.0, p50, p99) - 1.70).abs() < 0.01);
}

// ---------------------------------------------------------------------------------------------
// cache_avalanche (C2)

/// cache_avalanche's users, reading `{}` pages a second from 5 s on.
const AVALANCHE_LOAD: &str = r#"Schedule([("5s", "{}/s")])"#;

/// The users' pages in cache_avalanche: a share of the reads on a hot set, uniform among
/// its pages, and the rest uniform over the other pages (checked against the file).
const AVALANCHE_HOT: (u64, f64, u64) = (10_000, 0.9, 90_000);

/// The read rate of each group of pages, `(pages, reads a second of each)`, at `rate`.
fn avalanche_pages(rate: f64) -> [(u64, f64); 2] {
    let (hot, share, rest) = AVALANCHE_HOT;
    [
        (hot, rate * share / hot as f64),
        (rest, rate * (1.0 - share) / rest as f64),
    ]
}

/// A bound on the expected database queries a second after the warm-up, when the warm-up's
/// entries expire at independent times, each spread uniformly over `spread` (30 s for TTLs
/// uniform in [60 s, 90 s]), pages are read at `rate` a second, and a recompute takes at most
/// `recompute`.
///
/// A page read at `lambda` (Poisson) is recomputed at its first read after it expires: with an
/// expiry density `f <= 1 / spread`, its first misses come at `int f(s) lambda e^{-lambda (t -
/// s)} ds <= (1 - e^{-lambda spread}) / spread` a second, the value at the end of the spread (a
/// page read less than once per spread is mostly not read again within it). Each recompute
/// lets `lambda * recompute` more reads of the page miss before it is back. Summed over the
/// pages, each at its own maximum (so at or above the sum's): `sum (1 - e^{-lambda spread}) (1
/// + lambda recompute) / spread`.
fn avalanche_bound(rate: f64, spread: SimDuration, recompute: SimDuration) -> f64 {
    let w = spread.as_secs_f64();
    avalanche_pages(rate)
        .iter()
        .map(|&(n, lambda)| {
            n as f64 * -(-lambda * w).exp_m1() * (1.0 + lambda * recompute.as_secs_f64()) / w
        })
        .sum()
}

/// The database's queries a second (1 s samples) from 10 s on, after the warm-up's own bulk
/// reads, in one run of `variant` at `rate` reads a second.
fn avalanche_load(s: &Scenario, variant: &str, rate: u64, seed: u64) -> Vec<f64> {
    let case = Case {
        seed,
        faults: FaultPlan::new(),
        params: vec![(
            "users.arrivals".to_string(),
            AVALANCHE_LOAD.replace("{}", &rate.to_string()),
        )],
    };
    chart_of(s, variant, "rate(pg.queries_total)", &case)
        .into_iter()
        .filter(|(at, _)| *at > t("10s"))
        .map(|(_, v)| v)
        .collect()
}

/// With jittered TTLs (uniform in [60 s, 90 s]), the database's peak of queries a second
/// after the mass warm-up stays below `avalanche_bound(rate, 30s, 50ms)` plus 4 standard
/// deviations of a 1 s count (`sqrt` of its mean: a sum of independent page misses varies
/// no more than a Poisson count of the same mean), for loads from 2,000 to 10,000 reads a
/// second: 714 (+107) at 4,000/s in CI; 528, 968 and 1,199 at 2,000, 7,000 and 10,000/s
/// under `FAULTLINE_SLOW`.
///
/// What the harness found: the peaks come close to the bound itself, not only to its margin:
/// 509 to 524 at 2,000/s, 658 to 697 at 4,000/s, 885 to 934 at 7,000/s and 1,090 to 1,167 at
/// 10,000/s (4 seeds each). The bound is nearly tight because the warm-up writes every page in
/// 5 s, so all the pages' spreads overlap and peak together, at about 90 s. At 10,000/s, 850
/// of the 1,199 are the 90,000 pages outside the hot set (each read once in 90 s, so 28% of
/// them within the spread) and 350 the 10,000 hot ones (0.9 reads a second each). The baseline,
/// whose expiries all fall within the 5 s of the warm-up, peaks at 2,931 queries a second
/// (next test).
#[test]
fn jittered_ttls_keep_the_database_below_the_bound_of_the_spread_after_a_mass_warm_up() {
    let s = load("cache_avalanche");
    assert!(
        s.text
            .contains("HotSet(keys: 10000, share: 0.9, rest: 90000)"),
        "the bound assumes the file's key popularity"
    );
    let rates: &[u64] = if slow() {
        &[2000, 4000, 7000, 10000]
    } else {
        &[4000]
    };
    let seeds = if slow() { 1..=4 } else { 1..=1 };
    for &rate in rates {
        let bound = avalanche_bound(rate as f64, d("30s"), d("50ms"));
        let limit = bound + 4.0 * bound.sqrt();
        for seed in seeds.clone() {
            let load = avalanche_load(&s, "jittered TTL", rate, seed);
            let peak = load.iter().copied().fold(0.0, f64::max);
            assert!(
                peak <= limit,
                "{rate}/s, seed {seed}: peak {peak}/s > {limit:.0}/s (bound {bound:.0}/s)"
            );
        }
    }
}

/// Without jitter the harness finds the flood on the scenario's own check (more than 60
/// queries running at once, after the warm-up), with no fault: the first case drawn, 6,604
/// reads a second on seed 876, runs 96 at once and 2,931 queries a second, three times the
/// jittered bound at that load (936); jittered TTLs keep the check on the same case.
#[test]
fn the_baseline_floods_the_database_when_the_warm_up_expires() {
    let s = load("cache_avalanche");
    let (_, _, w) = witness(
        Property::new(&s)
            .variant("baseline")
            .check("database load peak")
            .expect(Expect::Fails)
            .param(Param::int("users.arrivals", 2000, 10000).template(AVALANCHE_LOAD))
            .cases(cases(2, 16))
            .runner_seed(9)
            .shrink_runs_max(if slow() { 32 } else { 0 })
            .run(),
    );
    assert!(!w.outcome.holds);
    let rate: u64 = w.params[0]
        .1
        .split('"')
        .nth(3)
        .and_then(|r| r.strip_suffix("/s"))
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("{:?}", w.params));
    let peak = avalanche_load(&s, "baseline", rate, w.seed)
        .into_iter()
        .fold(0.0, f64::max);
    let jittered = avalanche_bound(rate as f64, d("30s"), d("50ms"));
    assert!(peak > jittered + 4.0 * jittered.sqrt(), "{peak}");
    let case = Case {
        seed: w.seed,
        faults: FaultPlan::new(),
        params: w.params.clone(),
    };
    assert!(run_case(&s, "jittered TTL", "database load peak", &case).holds);
}
