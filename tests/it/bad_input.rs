//! Bad input gives typed errors with useful messages, never a panic.

use faultline::{
    CutMode, Dist, Fault, FaultPlan, LinkSpec, Scalar, Sim, SimDuration, SimTime, TimeError,
};
use proptest::prelude::*;

use crate::support::{Recorder, T, ms};

#[test]
fn bad_durations_are_typed_errors() {
    for (input, needle) in [
        ("", "empty"),
        ("250", "unit"),
        ("5sec", "unknown unit"),
        ("-5s", "negative"),
        ("1.5.2s", ""),
        ("99999999999999999999h", "larger than the largest"),
        ("0.5ns", ""),
        ("ms", ""),
    ] {
        let err = input.parse::<SimDuration>().expect_err(input);
        assert!(
            matches!(
                err,
                TimeError::Parse { .. } | TimeError::Overflow { .. } | TimeError::Negative
            ),
            "{input}: {err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.to_lowercase().contains(needle),
            "{input:?}: message {msg:?} should mention {needle:?}"
        );
    }
}

#[test]
fn duration_arithmetic_overflow_is_an_error() {
    let max = SimDuration::MAX;
    assert!(max.checked_add(SimDuration::from_nanos(1)).is_err());
    assert!(
        SimTime::MAX
            .checked_add(SimDuration::from_nanos(1))
            .is_err()
    );
    assert!(
        SimDuration::from_nanos(1)
            .checked_sub(SimDuration::from_nanos(2))
            .is_err()
    );
    assert!(SimDuration::from_secs_f64(-1.0).is_err());
    assert!(SimDuration::from_secs_f64(f64::NAN).is_err());
    assert!(SimDuration::from_secs_f64(1e30).is_err());
}

#[test]
fn impossible_distributions_are_rejected() {
    let d = |s: &str| Scalar::duration(s.parse().unwrap());
    let bad = [
        Dist::LogNormal {
            p50: d("20ms"),
            p99: d("10ms"),
        },
        Dist::Exp { mean: d("0s") },
        Dist::Uniform {
            low: d("3ms"),
            high: d("1ms"),
        },
        Dist::Pareto {
            scale: d("1ms"),
            shape: -1.0,
        },
        Dist::Zipf { n: 0, s: 1.1 },
        Dist::Empirical(vec![]),
        Dist::Uniform {
            low: d("1ms"),
            high: Scalar::number(5.0),
        },
    ];
    for dist in bad {
        let err = dist.validate().expect_err(&format!("{dist:?}"));
        assert!(!err.to_string().is_empty());
        assert!(dist.compile().is_err());
    }
}

#[test]
fn impossible_link_parameters_are_rejected() {
    let mut sim: Sim<T> = Sim::new(1);
    let (a, b) = (sim.add_host("a").unwrap(), sim.add_host("b").unwrap());
    let bad = LinkSpec {
        loss: -0.1,
        ..LinkSpec::constant(ms(1))
    };
    let err = sim.link(a, b, bad).unwrap_err();
    assert!(err.to_string().contains("loss"), "{err}");
    let unitless = LinkSpec::with_latency(Dist::Const(Scalar::number(5.0)));
    assert!(
        sim.link(a, b, unitless)
            .unwrap_err()
            .to_string()
            .contains("duration")
    );
}

#[test]
fn fault_plans_with_unknown_names_suggest_the_right_one_and_schedule_nothing() {
    let mut sim: Sim<T> = Sim::new(1);
    let h = sim.add_host("payments").unwrap();
    let log = faultline::Durable::new(vec![]);
    sim.spawn(h, "ledger", move || Recorder { log: log.clone() })
        .unwrap();
    let plan = FaultPlan::new()
        .at(
            SimTime::ZERO,
            Fault::Crash {
                target: "ledger".into(),
            },
        )
        .at(
            SimTime::ZERO,
            Fault::Crash {
                target: "legder".into(),
            },
        );
    let err = sim.add_faults(&plan).unwrap_err().to_string();
    assert!(
        err.contains("\"legder\"") && err.contains("did you mean \"ledger\""),
        "{err}"
    );
    sim.run();
    assert_eq!(sim.stats().faults, 0, "a bad plan schedules nothing");
    let err = sim
        .add_faults(&FaultPlan::new().at(
            SimTime::ZERO,
            Fault::Partition {
                a: vec!["paymnets".into()],
                b: vec!["payments".into()],
                mode: CutMode::Drop,
            },
        ))
        .unwrap_err()
        .to_string();
    assert!(err.contains("did you mean \"payments\""), "{err}");
}

#[test]
fn malformed_fault_entries_are_rejected() {
    let mut sim: Sim<T> = Sim::new(1);
    sim.add_host("h").unwrap();
    let backwards = FaultPlan::new().window(
        SimTime::from_nanos(10),
        SimTime::from_nanos(5),
        Fault::Crash { target: "h".into() },
    );
    assert!(
        sim.add_faults(&backwards)
            .unwrap_err()
            .to_string()
            .contains("must end after it starts")
    );
    let slow = FaultPlan::new().at(
        SimTime::ZERO,
        Fault::Slow {
            target: "h".into(),
            factor: 0.0,
        },
    );
    assert!(
        sim.add_faults(&slow)
            .unwrap_err()
            .to_string()
            .contains("factor")
    );
    let heal_window = FaultPlan::new().window(SimTime::ZERO, SimTime::from_nanos(5), Fault::Heal);
    assert!(
        sim.add_faults(&heal_window)
            .unwrap_err()
            .to_string()
            .contains("no natural end")
    );
    sim.run_until(SimTime::from_nanos(100));
    let past = FaultPlan::new().at(SimTime::from_nanos(50), Fault::Crash { target: "h".into() });
    assert!(
        sim.add_faults(&past)
            .unwrap_err()
            .to_string()
            .contains("in the past")
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any string either parses as a duration that prints back to itself, or is a typed error.
    #[test]
    fn duration_parsing_never_panics(s in "\\PC{0,12}|[0-9.]{1,8}(ns|us|ms|s|m|h|d|x){0,2}") {
        if let Ok(d) = s.parse::<SimDuration>() {
            prop_assert_eq!(d.to_string().parse::<SimDuration>().unwrap(), d);
        }
    }

    /// Any RON text either deserializes to a distribution or errors; validation never panics.
    #[test]
    fn dist_parsing_never_panics(s in "(Exp|LogNormal|Const|Zipf|Pareto|Uniform)\\((mean|p50|p99|n|s|low|high|scale|shape): ?(\"[0-9]{1,4}(ms|s)\"|-?[0-9.]{1,6})(, ?(p99|s|high|shape): ?(\"[0-9]{1,4}(ms|s)\"|-?[0-9.]{1,6}))?\\)") {
        if let Ok(d) = ron::from_str::<Dist>(&s) {
            let _ = d.validate();
            let _ = d.compile();
        }
    }
}

#[test]
fn impossible_component_parameters_are_typed_errors() {
    use faultline::model::queueing::{Job, QueueingError, Station};
    let ms5 = Dist::Const(Scalar::duration(ms(5))).compile().unwrap();
    let no_servers = Station::<Job>::new(0, ms5.clone(), None).err();
    assert_eq!(no_servers, Some(QueueingError::NoServers));
    let unitless = Dist::Const(Scalar::number(5.0)).compile().unwrap();
    let err = Station::<Job>::new(1, unitless, None).err().unwrap();
    assert!(err.to_string().contains("durations"), "{err}");
    assert!(Station::<Job>::new(3, ms5, None).is_ok());
}
