//! Properties of the message-log family (K3, K6 and the group protocol) through
//! `faultline::prop`: fault plans of crashes and pauses of a group's replicas (`workers-1`)
//! drawn and shrunk by the harness, judged by the group's ledger (records skipped, processed
//! twice, partitions stopped or shared) and the broker's gauges.
//!
//! CI runs a few cases per property; `FAULTLINE_SLOW=1` runs many more.

use faultline::prop::{Case, FaultSpace, Property};
use faultline::scenario::run::run_seed;
use faultline::scenario::{Expect, Scenario, shipped};
use faultline::{Fault, FaultPlan, NemesisKind, SimDuration, SimTime};

fn slow() -> bool {
    std::env::var_os("FAULTLINE_SLOW").is_some_and(|v| v == "1")
}

/// `fast` cases in CI, `slow` under `FAULTLINE_SLOW=1`.
fn cases(fast: u32, slow_: u32) -> u32 {
    if slow() { slow_ } else { fast }
}

fn load(name: &str) -> Scenario {
    let (file, text) = shipped(name).unwrap();
    Scenario::from_str(text, file).unwrap_or_else(|e| panic!("{e}"))
}

fn t(s: &str) -> SimTime {
    s.parse().unwrap()
}

fn d(s: &str) -> SimDuration {
    s.parse().unwrap()
}

/// Runs `case` on `variant` of `s` and returns the outcome of `check`.
fn run_case(s: &Scenario, variant: &str, check: &str, case: &Case) -> faultline::check::Outcome {
    let mut extra = s.extra.clone();
    extra.extend(case.params.iter().cloned());
    let s = Scenario::with_overrides(&s.text, &s.file, &extra)
        .and_then(|s| s.with_faults(&case.faults))
        .unwrap_or_else(|e| panic!("{e}"));
    let vi = s.variants.iter().position(|v| v.name == variant).unwrap();
    let ci = s.checks.iter().position(|c| c.name() == check).unwrap();
    let (run, _) = run_seed(&s, vi, case.seed, false);
    assert!(!run.limit_hit, "{variant} seed {} hit a limit", case.seed);
    run.checks[ci].clone()
}

/// `s` with `checks` added in front of its own.
fn with_checks(s: &Scenario, checks: &[&str]) -> Scenario {
    let at = "    checks: [\n";
    assert_eq!(s.text.matches(at).count(), 1);
    let added: String = checks.iter().map(|c| format!("        {c},\n")).collect();
    let text = s.text.replacen(at, &format!("{at}{added}"), 1);
    Scenario::from_str(&text, &s.file).unwrap_or_else(|e| panic!("{e}"))
}

/// Crashes (each restarted at its window's end) and pauses of `targets`, up to `max` of them,
/// each up to `window_max` long, all inside `[0, until]`, on a 1 s grain.
fn outages(
    s: &Scenario,
    targets: &[&str],
    until: &str,
    window_max: &str,
    max: usize,
) -> FaultSpace {
    FaultSpace::for_scenario(s)
        .kinds([NemesisKind::Crash, NemesisKind::Pause])
        .targets(targets.iter().copied())
        .faults_max(max)
        .between(SimTime::ZERO, t(until))
        .window_max(d(window_max))
        .grain(d("1s"))
}

// ---------------------------------------------------------------------------------------------
// The model under faults: replicas as fault targets, a crash in the middle of a batch

/// A fault may name one replica of a consumer group, in a file and in a fault space; one
/// the group does not have is refused with the names it does.
#[test]
fn a_fault_can_name_one_replica_of_a_consumer_group() {
    let s = load("auto_commit_loss");
    assert!(s.faults.entries.iter().any(|e| matches!(
        &e.fault,
        Fault::Crash { target } if target == "workers-1"
    )));
    let targets = s.fault_targets();
    for name in [
        "broker",
        "export",
        "workers",
        "workers-0",
        "workers-1",
        "workers-2",
    ] {
        assert!(targets.iter().any(|x| x == name), "{name}: {targets:?}");
    }
    assert!(!targets.iter().any(|x| x == "workers-3"));
    let e = s
        .with_faults(&FaultPlan::new().window(
            t("1m"),
            t("2m"),
            Fault::Crash {
                target: "workers-3".into(),
            },
        ))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no component or host is called `workers-3`"),
        "{e}"
    );
    assert!(
        FaultSpace::for_scenario(&s)
            .targets(["workers-2"])
            .validate()
            .is_ok()
    );
    assert!(
        FaultSpace::for_scenario(&s)
            .targets(["workers-7"])
            .validate()
            .is_err()
    );
}

/// One consumer of one partition, 100 records of exactly 10 ms each, committed after each
/// batch; crashed at `crash_at` for 5 s.
fn one_consumer(crash_at: &str) -> Scenario {
    let text = format!(
        r#"Scenario(
    name: "one_consumer",
    about: "A crash in the middle of a batch.",
    seed: 1,
    duration: "2m",
    components: {{
        "broker": Broker(topics: [(name: "t", partitions: 1)],
                         groups: {{"g": (initial_rebalance_delay: "0s")}}),
        "p": Producer(topic: "t", partitions: 1, brokers: ["broker"], rate: Poisson("1000/s"),
                      limit: Some(100)),
        "c": ConsumerGroup(replicas: 1, consumer: (broker: "broker", group: "g", topic: "t",
             partitions: 1, processing: Const("10ms"), auto_commit: None,
             auto_offset_reset: Earliest,
             // The whole topic is there before the first fetch.
             warmup: Some(Const("1s")))),
    }},
    faults: [(from: "{crash_at}", until: "1m", fault: Crash(target: "c-0"))],
    checks: [AtMost(name: "no record lost", value: "last(c.records_skipped)", max: 0)],
    variants: [(name: "baseline", about: "x", expect: {{"no record lost": Holds}})],
)"#
    );
    Scenario::from_str(&text, "one_consumer.ron").unwrap_or_else(|e| panic!("{e}"))
}

/// A crash in the middle of a batch leaves the records whose processing had ended processed
/// (and, with commit after processing, processed again after the restart), the rest not.
#[test]
fn a_crash_in_the_middle_of_a_batch_has_processed_the_records_before_it() {
    let processed = |crash_at: &str| {
        let s = one_consumer(crash_at);
        let mut sim = faultline::scenario::build(&s, &s.variants[0], 1, false).unwrap();
        sim.run_until(t("2m"));
        let m = sim.metrics();
        let c = |n: &str| m.counter_value(n).unwrap_or_else(|| panic!("{n}"));
        (c("c.records_processed_total"), c("c.processed_twice_total"))
    };
    // The batch of 100 starts once the 1 s warm-up and the round trips are over, a few ms
    // after 1 s, and ends 1 s later; crashed 0.3 s in, it has done 29 or 30 of them.
    let (total, twice) = processed("1.3s");
    assert!((29..=30).contains(&twice), "{twice}");
    assert_eq!(total, 100 + twice);
    // Crashed before the batch started: nothing done twice.
    assert_eq!(processed("500ms"), (100, 0));
    // Crashed after it: nothing to do again.
    assert_eq!(processed("10s"), (100, 0));
}

// ---------------------------------------------------------------------------------------------
// K6: commit after processing skips nothing; auto-commit on a timer does

/// The replicas of auto_commit_loss's group.
const WORKERS: [&str; 3] = ["workers-0", "workers-1", "workers-2"];

/// Crash and pause schedules of the consumers: up to 3, each up to 40 s, all over by 3m (the
/// backlog drains by about 5m30s after the longest of them).
fn consumer_outages(s: &Scenario) -> FaultSpace {
    outages(s, &WORKERS, "3m", "40s", 3)
}

/// With commit after processing, no record is ever skipped, and when the run ends (the faults
/// long healed) the group has committed the whole topic: every record produced was processed
/// at least once (nothing below a committed offset is unprocessed, since nothing was skipped),
/// for every plan of crashes and pauses of the consumers, and of the broker too.
#[test]
fn commit_after_processing_skips_nothing_and_processes_everything_whatever_the_crashes() {
    let s = load("auto_commit_loss")
        .with_faults(&FaultPlan::new())
        .unwrap();
    let with_broker = outages(
        &s,
        &["workers-0", "workers-1", "workers-2", "broker"],
        "3m",
        "40s",
        3,
    );
    for (what, space) in [
        ("consumers", consumer_outages(&s)),
        ("consumers and broker", with_broker),
    ] {
        for check in ["no record lost", "caught up"] {
            let report = Property::new(&s)
                .variant("commit after processing")
                .check(check)
                .expect(Expect::Holds)
                .faults(space.clone())
                .cases(cases(3, 48))
                .runner_seed(61)
                .run()
                .unwrap_or_else(|e| panic!("{what}, {check}: {e}"));
            assert_eq!(report.held, report.cases);
        }
    }
}

/// The harness finds the K6 loss in the baseline among the same schedules of consumer
/// outages, and commit after processing loses nothing on the very case.
#[test]
fn the_harness_finds_a_crash_schedule_where_timer_auto_commit_loses_records() {
    let s = load("auto_commit_loss")
        .with_faults(&FaultPlan::new())
        .unwrap();
    let report = Property::new(&s)
        .variant("baseline")
        .check("no record lost")
        .expect(Expect::Fails)
        .faults(consumer_outages(&s).kinds([NemesisKind::Crash]))
        .cases(cases(16, 64))
        .runner_seed(62)
        .shrink_runs_max(if slow() { 64 } else { 4 })
        .run()
        .unwrap_or_else(|e| panic!("{e}"));
    let w = report
        .witness
        .expect("an exists property reports its witness");
    assert!(w.outcome.value.unwrap() > 0.0, "{}", w.outcome.detail);
    assert!(!w.faults.entries.is_empty(), "a loss needs a crash");
    let case = Case {
        seed: w.seed,
        faults: w.faults.clone(),
        params: w.params.clone(),
    };
    assert!(run_case(&s, "commit after processing", "no record lost", &case).holds);
    // Without a crash nothing is lost.
    let calm = Case {
        seed: w.seed,
        faults: FaultPlan::new(),
        params: Vec::new(),
    };
    assert!(run_case(&s, "baseline", "no record lost", &calm).holds);
}
