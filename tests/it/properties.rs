//! Properties of scenarios, and the pieces they stand on: running a scenario with another
//! fault plan.

use faultline::scenario::{Scenario, shipped};
use faultline::{Fault, FaultPlan, SimTime};

fn load(name: &str) -> Scenario {
    let (file, text) = shipped(name).unwrap();
    Scenario::from_str(text, file).unwrap_or_else(|e| panic!("{e}"))
}

fn t(s: &str) -> SimTime {
    s.parse().unwrap()
}

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
