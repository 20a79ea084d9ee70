//! Every shipped scenario and model, as data and as a test: each file is embedded, loads,
//! builds, runs deterministically, and each variant shows what it declares it shows on several
//! seeds. `FAULTLINE_SEEDS=N` runs more seeds (CI runs the default, 3).

use std::collections::BTreeSet;

use faultline::report::json::{Report, Shard};
use faultline::scenario::run::{self, run_many, run_seed};
use faultline::scenario::{Config, Expect, SHIPPED, Scenario, models};

fn seed_count() -> u64 {
    std::env::var("FAULTLINE_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
}

fn files_in(dir: &str) -> BTreeSet<String> {
    fn walk(dir: &std::path::Path, out: &mut BTreeSet<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "ron") {
                out.insert(p.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = BTreeSet::new();
    walk(&root.join(dir), &mut out);
    let prefix = format!("{}/", root.display());
    out.into_iter()
        .map(|p| p.strip_prefix(&prefix).unwrap_or(&p).to_string())
        .collect()
}

fn load(name: &str) -> Scenario {
    let (_, path, text) = SHIPPED.iter().find(|(n, _, _)| *n == name).unwrap();
    Scenario::from_str(text, path).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_scenario_and_model_file_is_embedded() {
    let shipped: BTreeSet<String> = SHIPPED
        .iter()
        .filter(|(_, p, _)| !p.contains("/regressions/"))
        .map(|(_, p, _)| p.to_string())
        .collect();
    let on_disk: BTreeSet<String> = files_in("scenarios")
        .into_iter()
        .filter(|p| !p.contains("/regressions/"))
        .collect();
    assert_eq!(shipped, on_disk, "scenarios/ and library::SHIPPED differ");
    let embedded: BTreeSet<String> = models::FILES.iter().map(|(p, _)| p.to_string()).collect();
    assert_eq!(
        embedded,
        files_in("models"),
        "models/ and models::FILES differ"
    );
    for (path, text) in models::FILES {
        let on_disk =
            std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
                .unwrap();
        assert_eq!(&on_disk, text, "{path} is embedded stale");
    }
}

#[test]
fn every_model_parses_and_names_a_component_kind() {
    let mut sources = faultline::scenario::Sources::default();
    let all = models::all(&mut sources).unwrap_or_else(|ps| panic!("{ps:?}"));
    assert_eq!(all.len(), models::FILES.len());
    let names: BTreeSet<&str> = all.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names.len(), all.len(), "model names are unique");
    for kind in faultline::scenario::Kind::ALL {
        assert!(
            names.contains(kind.default_model()),
            "{} has no default model",
            kind.name()
        );
        let m = all.iter().find(|m| m.name == kind.default_model()).unwrap();
        assert_eq!(m.kind, kind);
    }
}

#[test]
fn every_shipped_scenario_loads_with_its_variants_resolved() {
    assert!(SHIPPED.len() >= 3);
    for (name, path, text) in SHIPPED {
        let s = Scenario::from_str(text, path).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(&s.name, name, "{path}: the file name and `name:` agree");
        assert!(!s.about.is_empty(), "{name} says what it shows");
        assert!(!s.checks.is_empty(), "{name} has checks");
        assert!(!s.charts.is_empty(), "{name} has charts");
        for v in &s.variants {
            // A variant shown beside the fixes only for comparison says so in its `about`
            // ("not judged").
            assert!(
                !v.expect.is_empty() || v.about.contains("not judged"),
                "{name}/{} expects something",
                v.name
            );
        }
        if s.variants.len() > 1 {
            assert!(
                s.variants[0].expect.values().any(|e| e.is_failure()),
                "{name}: the baseline shows a failure"
            );
        }
    }
}

#[test]
fn overrides_change_exactly_what_they_name() {
    let s = load("pool_exhaustion");
    let pool = |v: &str| match &s.variant(v).unwrap().component("api").unwrap().config {
        Config::Service(c) => c.pools.get("primary").unwrap().clone(),
        other => panic!("api is a service, not {other:?}"),
    };
    // The baseline takes HikariCP's defaults; the fix changes the size only.
    assert_eq!(pool("baseline").pool_size, 10);
    assert_eq!(pool("baseline").acquire_timeout, "30s".parse().unwrap());
    assert_eq!(pool("pool of 30").pool_size, 30);
    assert_eq!(pool("pool of 30").acquire_timeout, "30s".parse().unwrap());
    assert_eq!(
        pool("fail fast + fallback").acquire_timeout,
        "50ms".parse().unwrap()
    );
    // Components a variant does not touch are identical to the baseline's.
    let base = s.variant("baseline").unwrap();
    for v in &s.variants {
        for name in ["users", "pg", "replica"] {
            assert_eq!(v.component(name), base.component(name), "{}/{name}", v.name);
        }
    }
    // Model defaults reach the config: Tomcat's 200 workers and accept queue of 100.
    match &base.component("api").unwrap().config {
        Config::Service(c) => {
            assert_eq!(c.workers, 200);
            assert_eq!(c.queue_capacity, Some(100));
        }
        _ => unreachable!(),
    }
}

#[test]
fn a_scenario_run_is_deterministic_and_seed_dependent() {
    let s = load("traffic_spike");
    for vi in 0..s.variants.len() {
        let (a, _) = run_seed(&s, vi, 11, false);
        let (b, _) = run_seed(&s, vi, 11, false);
        let (c, _) = run_seed(&s, vi, 12, false);
        assert_eq!(a.trace_hash, b.trace_hash, "{}", s.variants[vi].name);
        assert_eq!(a, b, "the same seed gives the same results");
        assert_ne!(a.trace_hash, c.trace_hash, "another seed, another run");
        assert!(
            a.events > 100_000,
            "the run did real work: {} events",
            a.events
        );
    }
}

#[test]
fn shards_merge_into_the_report_of_one_run() {
    let s = load("mmc_queue");
    let variants: Vec<usize> = (0..s.variants.len()).collect();
    let all = run::seeds(5, 4, None);
    let (whole, _) = run_many(&s, "check", &variants, &all, None, &|| {});
    let parts: Vec<Report> = (1..=3)
        .map(|index| {
            let seeds = run::seeds(5, 4, Some(Shard { index, count: 3 }));
            let (mut r, _) = run_many(&s, "check", &variants, &seeds, None, &|| {});
            r.shard = Some(Shard { index, count: 3 });
            // Through JSON, as shards on other machines would hand them over.
            serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap()
        })
        .collect();
    let merged = Report::merge(parts).unwrap();
    assert_eq!(merged.seeds, whole.seeds);
    assert_eq!(merged.variants, whole.variants);
    assert_eq!(merged.outcome, whole.outcome);
    // A report of another scenario does not merge.
    let other = load("traffic_spike");
    let (foreign, _) = run_many(&other, "check", &[0], &[1], None, &|| {});
    assert!(
        Report::merge(vec![whole, foreign])
            .unwrap_err()
            .contains("different scenarios")
    );
}

/// The heart of it: on several seeds, every variant of every shipped scenario shows what it
/// declares — the baseline reproduces the failure, each fix holds.
#[test]
fn every_variant_meets_its_expectations_on_several_seeds() {
    let n = seed_count();
    for (name, path, text) in SHIPPED {
        let s = Scenario::from_str(text, path).unwrap();
        let variants: Vec<usize> = (0..s.variants.len()).collect();
        let seeds = run::seeds(s.seed, n, None);
        let (report, _) = run_many(&s, "check", &variants, &seeds, None, &|| {});
        let mut missed = Vec::new();
        for v in &report.variants {
            for (sum, c) in v.summary.iter().zip(&report.scenario.checks) {
                if sum.met == Some(false) {
                    let details: Vec<String> = v
                        .runs
                        .iter()
                        .map(|r| {
                            let i = report.scenario.checks.iter().position(|x| x.name == c.name);
                            format!("seed {}: {}", r.seed, r.checks[i.unwrap()].detail)
                        })
                        .collect();
                    missed.push(format!(
                        "{name}/{}: `{}` expected {:?}, held {}/{}: {}",
                        v.name,
                        c.name,
                        sum.expect.unwrap(),
                        sum.holds,
                        sum.holds + sum.fails,
                        details.join("; ")
                    ));
                }
            }
            for r in &v.runs {
                assert!(
                    !r.limit_hit,
                    "{name}/{} seed {} hit a limit",
                    v.name, r.seed
                );
            }
        }
        assert!(missed.is_empty(), "{}", missed.join("\n"));
        assert!(report.outcome.ok);
    }
}

/// The sanity scenario's checks can fail: a queue that is not the one the closed form
/// describes (service 5% slower, so rho = 0.7875) misses them.
#[test]
fn the_closed_form_checks_catch_a_different_queue() {
    let (_, path, text) = SHIPPED.iter().find(|(n, _, _)| *n == "mmc_queue").unwrap();
    let slower = [(
        "station.kinds[0].service".to_string(),
        "Exp(mean: \"105ms\")".to_string(),
    )];
    let s = Scenario::with_overrides(text, path, &slower).unwrap();
    let (run, _) = run_seed(&s, 0, s.seed, false);
    let held: Vec<bool> = run.checks.iter().map(|o| o.holds).collect();
    // Every figure moves: W to 0.176 s, Lq to 2.2, busy workers to 3.15.
    assert_eq!(held, [false, false, false], "{:?}", run.checks);
}

/// Every frozen shrunk failure in `scenarios/regressions/` replays on its own seed and shows
/// what it declares: the baseline still fails on the case that was found, the fixes still hold.
#[test]
fn every_frozen_regression_replays_as_declared() {
    let files = files_in("scenarios/regressions");
    assert!(
        !files.is_empty(),
        "the folder holds at least one regression"
    );
    for path in files {
        let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(&path);
        let s = Scenario::from_path(&full).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            s.variants
                .iter()
                .any(|v| v.expect.values().any(|e| *e == Expect::Fails)),
            "{path}: a regression keeps the failing case"
        );
        let variants: Vec<usize> = (0..s.variants.len()).collect();
        let (report, _) = run_many(&s, "check", &variants, &[s.seed], None, &|| {});
        assert!(report.outcome.ok, "{path}: {}", report.outcome.reason);
    }
}
