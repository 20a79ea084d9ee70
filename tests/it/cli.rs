//! The `faultline` binary on good and bad input: exit codes by class, what it prints, what it
//! writes (and that it writes nothing when the input is bad).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use faultline::report::json::{Report, Sweep};

fn faultline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .output()
        .expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited, not killed")
}

/// A fresh scratch directory under the target directory.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn bad(name: &str) -> String {
    format!("tests/it/bad/{name}.ron")
}

#[test]
fn run_prints_the_table_and_writes_the_report_files() {
    let out = scratch("cli-run");
    let o = faultline(&["run", "traffic_spike", "--out", out.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let text = stdout(&o);
    for needle in [
        "baseline",
        "bounded queue",
        "deadline shedding",
        "xfail",
        "pass",
    ] {
        assert!(text.contains(needle), "`{needle}` missing from:\n{text}");
    }
    for line in text.lines() {
        assert!(
            line.chars().count() <= 100 || line.starts_with("wrote") || line.starts_with("pass:"),
            "too wide: {line}"
        );
    }
    let report: Report =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report.schema, "faultline.report");
    assert_eq!(report.version, 1);
    assert_eq!(report.variants.len(), 3);
    assert!(report.outcome.ok);
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert!(csv.starts_with("variant,series,time_s,value\n"));
    assert!(csv.contains("\nbaseline,users.ok_total,"));
    let svgs: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "svg"))
        .collect();
    assert_eq!(svgs.len(), 4, "one SVG per chart of the scenario");
    let svg = std::fs::read_to_string(svgs[0].path()).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("deadline shedding"));
}

#[test]
fn run_json_is_the_report_and_is_reproducible() {
    let out = scratch("cli-json");
    let args = [
        "run",
        "mmc_queue",
        "--json",
        "--seed",
        "3",
        "--out",
        out.to_str().unwrap(),
    ];
    let a = faultline(&args);
    let b = faultline(&args);
    assert_eq!(code(&a), 0, "{}", stderr(&a));
    assert_eq!(
        stdout(&a),
        stdout(&b),
        "the same seed gives the same report, byte for byte"
    );
    let report: Report = serde_json::from_str(&stdout(&a)).unwrap();
    assert_eq!(report.seeds, [3]);
    assert_eq!(report.variants[0].runs[0].seed, 3);
}

#[test]
fn check_counts_seeds_and_shards_merge_to_the_same_report() {
    let dir = scratch("cli-shards");
    let whole = faultline(&["check", "mmc_queue", "--seeds", "4", "--json"]);
    assert_eq!(code(&whole), 0, "{}", stderr(&whole));
    let whole: Report = serde_json::from_str(&stdout(&whole)).unwrap();
    assert_eq!(whole.seeds.len(), 4);
    let mut files = Vec::new();
    for k in 1..=2 {
        let f = dir.join(format!("shard{k}.json"));
        let o = faultline(&[
            "check",
            "mmc_queue",
            "--seeds",
            "4",
            "--shard",
            &format!("{k}/2"),
            "--out",
            f.to_str().unwrap(),
        ]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert!(stdout(&o).contains("held 2/2"), "{}", stdout(&o));
        files.push(f.to_str().unwrap().to_string());
    }
    let mut args = vec!["merge", "--json"];
    args.extend(files.iter().map(String::as_str));
    let merged = faultline(&args);
    assert_eq!(code(&merged), 0, "{}", stderr(&merged));
    let merged: Report = serde_json::from_str(&stdout(&merged)).unwrap();
    assert_eq!(merged.seeds, whole.seeds);
    assert_eq!(merged.variants, whole.variants);
}

#[test]
fn a_missed_expectation_exits_by_class() {
    let dir = scratch("cli-classes");
    let base = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/traffic_spike.ron"),
    )
    .unwrap();
    // Claim the baseline holds: a safety check (AtLeast) then misses its expectation.
    let safety = base.replacen(
        "expect: {\"goodput during the spike\": Fails,",
        "expect: {\"goodput during the spike\": Holds,",
        1,
    );
    assert_ne!(safety, base);
    let f = dir.join("safety.ron");
    std::fs::write(&f, safety).unwrap();
    let o = faultline(&[
        "run",
        f.to_str().unwrap(),
        "--out",
        dir.join("o1").to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 2, "{}", stdout(&o));
    assert!(stdout(&o).contains("FAIL"));
    assert!(stdout(&o).contains("replay: faultline run"));
    // Only the liveness check (Eventually) wrong: exit 3.
    let liveness = base.replacen(
        "\"recovers after the spike\": Fails}",
        "\"recovers after the spike\": Holds}",
        1,
    );
    assert_ne!(liveness, base);
    let f = dir.join("liveness.ron");
    std::fs::write(&f, liveness).unwrap();
    let o = faultline(&[
        "check",
        f.to_str().unwrap(),
        "--seeds",
        "1",
        "--variant",
        "baseline",
        "--no-shrink",
    ]);
    assert_eq!(code(&o), 3, "{}", stdout(&o));
    assert!(!stdout(&o).contains("shrunk"), "{}", stdout(&o));
}

#[test]
fn sweep_runs_every_point() {
    let out = scratch("cli-sweep");
    let o = faultline(&[
        "sweep",
        "traffic_spike",
        "--param",
        "api.workers=10..30:10",
        "--seeds",
        "1",
        "--variant",
        "baseline",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    for w in ["10", "20", "30"] {
        assert!(
            text.contains(&format!("api.workers = {w}: goodput during the spike")),
            "{text}"
        );
    }
    let o = faultline(&[
        "sweep",
        "traffic_spike",
        "--param",
        "api.wrkers=1..2:1",
        "--seeds",
        "1",
    ]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("wrkers"), "{}", stderr(&o));
}

#[test]
fn list_models_and_validate_describe_what_ships() {
    let o = faultline(&["list"]);
    assert_eq!(code(&o), 0);
    for name in ["mmc_queue", "pool_exhaustion", "traffic_spike"] {
        assert!(stdout(&o).contains(name));
    }
    let o = faultline(&["models"]);
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).contains("rpc/service"));
    let o = faultline(&["models", "rpc/postgres"]);
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).contains("max_connections: 100"));
    let o = faultline(&["models", "rpc/postgre"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("did you mean `rpc/postgres`"));
    let o = faultline(&["validate", "scenarios/mmc_queue.ron", "pool_exhaustion"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        stdout(&o).lines().filter(|l| l.starts_with("ok: ")).count(),
        2
    );
}

/// Each broken file: exit 1, the message, where, and nothing written.
#[test]
fn broken_scenarios_are_reported_precisely_and_write_nothing() {
    let cases: &[(&str, &[&str])] = &[
        (
            "typo_field",
            &[
                "typo_field.ron:7:13",
                "components.api.wrokers",
                "unknown field `wrokers`",
                "did you mean `workers`?",
            ],
        ),
        (
            "wrong_type",
            &["wrong_type.ron:7:22", "components.api.workers", "\"four\""],
        ),
        (
            "negative_duration",
            &[
                "negative_duration.ron:5:76",
                "components.users.timeout",
                "-5s",
            ],
        ),
        (
            "unknown_component",
            &[
                "components.users.target",
                "no component is called `apii`",
                "did you mean `api`?",
                "faults[0].fault.target",
                "did you mean `api`?",
            ],
        ),
        (
            "unknown_kind",
            &[
                "unknown_kind.ron:6:16",
                "`Servise` is not a component kind",
                "did you mean `Service`?",
            ],
        ),
        (
            "override_missing_field",
            &["unknown field `threads`", "override_missing_field.ron:10:"],
        ),
        ("empty", &["empty.ron", "empty"]),
        ("garbage", &["garbage.ron", "not UTF-8"]),
        (
            "unknown_metric",
            &["checks[0].value", "users.latncy.p99", "did you mean"],
        ),
        (
            "many_problems",
            &[
                "components.api.workers",
                "must be > 0",
                "no model is called `rpc/postgress`",
                "did you mean `rpc/postgres`?",
                "no check is called `fsat`",
                "did you mean `fast`?",
                "3 problems",
            ],
        ),
        ("syntax_error", &["syntax_error.ron:5:"]),
    ];
    for (name, needles) in cases {
        let out = scratch(&format!("cli-bad-{name}"));
        let target = out.join("report");
        let o = faultline(&["run", &bad(name), "--out", target.to_str().unwrap()]);
        let err = stderr(&o);
        assert_eq!(code(&o), 1, "{name}: exit code; stderr:\n{err}");
        assert!(
            stdout(&o).is_empty(),
            "{name}: nothing on stdout, got {}",
            stdout(&o)
        );
        for n in *needles {
            assert!(err.contains(n), "{name}: `{n}` missing from:\n{err}");
        }
        assert!(!err.contains("panicked"), "{name}: {err}");
        assert!(!target.exists(), "{name}: no output for bad input");
        let v = faultline(&["validate", &bad(name)]);
        assert_eq!(code(&v), 1, "{name}: validate agrees");
    }
}

#[test]
fn usage_errors_and_missing_files_exit_1() {
    let o = faultline(&["run", "no/such/file.ron"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("no file `no/such/file.ron`"));
    let o = faultline(&["run", "traffic_spik"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("did you mean the shipped scenario `traffic_spike`?"));
    let o = faultline(&["frobnicate"]);
    assert_eq!(code(&o), 1);
    let o = faultline(&["check", "mmc_queue", "--shard", "3/2"]);
    assert_eq!(code(&o), 1);
    let o = faultline(&["run", "mmc_queue", "--variant", "basline"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("did you mean `baseline`?"));
    let o = faultline(&["run", "mmc_queue", "--set", "station.workers=0"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("components.station.workers"),
        "{}",
        stderr(&o)
    );
    let o = faultline(&["--help"]);
    assert_eq!(code(&o), 0);
}

/// `--set` applies to the variants that run: with `--variant`, an override that only fits
/// the chosen ones is accepted, and without it the same override is an error naming the
/// variant it does not fit.
#[test]
fn a_set_need_only_fit_the_chosen_variants() {
    let dir = scratch("cli-set-variant");
    let base = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/mmc_queue.ron"),
    )
    .unwrap();
    // A second variant with a second request kind, a fast ping, and a client that sends
    // pings: `kinds[1]` exists in it alone.
    let two_kinds = base
        .replacen("duration: \"2h\"", "duration: \"2m\"", 1)
        .replacen(
            "    variants: [\n",
            "    variants: [\n        (name: \"two kinds\", about: \"A second, fast kind.\", set: \
         {\"station.kinds\": [(name: \"job\", service: Exp(mean: \"100ms\")), \
         (name: \"ping\", service: Exp(mean: \"1ms\"))], \"arrivals.mix\": \
         [(name: \"ping\", kind: \"ping\", weight: 1.0)]}),\n",
            1,
        );
    assert_ne!(two_kinds, base);
    let f = dir.join("two_kinds.ron");
    std::fs::write(&f, two_kinds).unwrap();
    let set = "station.kinds[1].service=Exp(mean: \"2ms\")";
    let args = ["check", f.to_str().unwrap(), "--seeds", "1", "--no-shrink"];
    let o = faultline(&[&args[..], &["--set", set]].concat());
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    assert!(
        stderr(&o).contains("index 1 is out of range"),
        "{}",
        stderr(&o)
    );
    let o = faultline(
        &[
            &args[..],
            &["--set", set, "--variant", "two kinds", "--json"],
        ]
        .concat(),
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let report: Report = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = report.variants.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["two kinds"]);
    // The override took effect: the same seed without it runs differently.
    let o = faultline(&[&args[..], &["--variant", "two kinds", "--json"]].concat());
    let plain: Report = serde_json::from_slice(&o.stdout).unwrap();
    let hash = |r: &Report| r.variants[0].runs[0].trace_hash;
    assert_ne!(hash(&report), hash(&plain));
}

/// The files in `dir`, by name, with their contents.
fn files(dir: &Path) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn sweep_out_writes_the_json_and_a_chart_per_check_and_row() {
    let dir = scratch("cli-sweep-out");
    let sweep_into = |out: &Path| {
        faultline(&[
            "sweep",
            "traffic_spike",
            "--param",
            "api.workers=10..30:10",
            "--seeds",
            "2",
            "--variant",
            "baseline",
            "--variant",
            "bounded queue",
            "--json",
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let o = sweep_into(&dir.join("a"));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let written = files(&dir.join("a"));
    let names: Vec<&str> = written.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "01-held-goodput-during-the-spike.svg",
            "02-held-recovers-after-the-spike.svg",
            "03-mean-users-latency-p99.svg",
            "04-mean-api-rejected-total.svg",
            "05-mean-max-api-queue-len.svg",
            "sweep.json",
        ],
        "one chart per check, then one per table row"
    );
    let json = &written[5].1;
    assert_eq!(
        stdout(&o).trim_end(),
        json,
        "--json prints what sweep.json holds"
    );
    let sweep: Sweep = serde_json::from_str(json).unwrap();
    assert_eq!(sweep.schema, "faultline.sweep");
    assert_eq!(sweep.version, 1);
    assert_eq!(sweep.param, "api.workers");
    let values: Vec<&str> = sweep.points.iter().map(|p| p.value.as_str()).collect();
    assert_eq!(values, ["10", "20", "30"]);
    for p in &sweep.points {
        assert_eq!(p.report.schema, "faultline.report");
        assert_eq!(p.report.command, "sweep");
        assert_eq!(p.report.seeds, [1, 2]);
        let variants: Vec<&str> = p.report.variants.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(variants, ["baseline", "bounded queue"]);
    }
    // At 20 workers the bounded queue holds the goodput check on both seeds, the baseline on
    // neither: the chart's whole point.
    let held = |point: usize, variant: usize| {
        sweep.points[point].report.variants[variant].summary[0].holds
    };
    assert_eq!((held(1, 0), held(1, 1)), (0, 2));
    for (name, svg) in &written[..5] {
        assert!(svg.starts_with("<svg"), "{name}");
        for needle in [
            ">\napi.workers\n</text>",
            ">\nbaseline\n</text>",
            ">\nbounded queue\n</text>",
            ">\n20\n</text>",
        ] {
            assert!(svg.contains(needle), "{name}: `{needle}` missing");
        }
    }
    for (name, svg) in &written[..2] {
        assert!(
            svg.contains(">\nseeds where it held (%)\n</text>"),
            "{name}"
        );
        assert!(
            svg.contains(">\n95% Wilson interval, 2 seeds\n</text>"),
            "{name}"
        );
    }
    assert!(
        written[2].1.contains(">\nusers.latency.p99 ("),
        "{}",
        written[2].1
    );
    assert!(
        written[2]
            .1
            .contains(">\n95% t interval of the mean\n</text>")
    );
    // The same sweep again: the same files, byte for byte.
    let again = sweep_into(&dir.join("b"));
    assert_eq!(code(&again), 0, "{}", stderr(&again));
    assert!(
        files(&dir.join("b")) == written,
        "a sweep is a pure function of its input"
    );
}

#[test]
fn a_duration_sweep_reads_in_time_units_and_bad_sweeps_write_nothing() {
    let dir = scratch("cli-sweep-durations");
    let out = dir.join("timeouts");
    let o = faultline(&[
        "sweep",
        "traffic_spike",
        "--param",
        "users.timeout=500ms..1500ms:500ms",
        "--seeds",
        "1",
        "--variant",
        "baseline",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("users.timeout = \"1s\": goodput"),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains("wrote sweep.json, 5 charts in"),
        "{}",
        stdout(&o)
    );
    let chart = std::fs::read_to_string(out.join("01-held-goodput-during-the-spike.svg")).unwrap();
    for tick in ["0.6 s", "1 s", "1.4 s"] {
        assert!(
            chart.contains(&format!(">\n{tick}\n</text>")),
            "{tick}: {chart}"
        );
    }
    let cases: &[(&[&str], &str)] = &[
        (&["--param", "api.wrkers=1..2:1"], "wrkers"),
        (
            &["--param", "api.workers=\"1s\",\"2s\""],
            "components.api.workers",
        ),
        (&["--param", "api.workers"], "expected PATH=VALUES"),
        (&["--param", "api.workers=5..1:1"], "needs A <= B"),
        (
            &["--param", "api.workers=1..2:1", "--seeds", "0"],
            "--seeds must be at least 1",
        ),
    ];
    for (i, (args, needle)) in cases.iter().enumerate() {
        let target = dir.join(format!("bad-{i}"));
        let mut all = vec!["sweep", "traffic_spike", "--out", target.to_str().unwrap()];
        all.extend_from_slice(args);
        let o = faultline(&all);
        assert_eq!(code(&o), 1, "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(needle),
            "{args:?}: `{needle}` missing from {}",
            stderr(&o)
        );
        assert!(stdout(&o).is_empty(), "{args:?}: {}", stdout(&o));
        assert!(!target.exists(), "{args:?}: nothing written for bad input");
    }
}

/// traffic_spike with a plan of two faults: a 2x slowdown of the service through the spike
/// (which breaks the fixes' goodput) and a crash of the client long after it (which breaks
/// nothing the fixes expect).
fn spike_with_faults(dir: &Path) -> PathBuf {
    use faultline::{Fault, FaultPlan, SimTime};
    let t = |s: &str| -> SimTime { s.parse().unwrap() };
    let (file, text) = faultline::scenario::shipped("traffic_spike").unwrap();
    let s = faultline::scenario::Scenario::from_str(text, file).unwrap();
    let plan = FaultPlan::new()
        .window(
            t("2m"),
            t("4m"),
            Fault::Slow {
                target: "api".into(),
                factor: 2.0,
            },
        )
        .window(
            t("8m"),
            t("8m30s"),
            Fault::Pause {
                target: "users".into(),
            },
        );
    let path = dir.join("spike-with-faults.ron");
    std::fs::write(&path, &s.with_faults(&plan).unwrap().text).unwrap();
    path
}

#[test]
fn check_shrink_writes_a_minimal_file_whose_replay_command_fails_the_same_way() {
    let dir = scratch("cli-shrink");
    let input = spike_with_faults(&dir);
    let shrunk = dir.join("shrunk");
    let shrink_arg = format!("--shrink={}", shrunk.display());
    let args = [
        "check",
        input.to_str().unwrap(),
        "--variant",
        "deadline shedding",
        "--seeds",
        "1",
        &shrink_arg,
    ];
    let o = faultline(&args);
    assert_eq!(
        code(&o),
        2,
        "a safety check missed: {}{}",
        stdout(&o),
        stderr(&o)
    );
    let text = stdout(&o);
    let file = shrunk.join("traffic_spike-deadline-shedding-goodput-during-the-spike-seed1.ron");
    assert!(
        text.contains("shrunk `deadline shedding` / `goodput during the spike` (seed 1): 1 of 2"),
        "{text}"
    );
    let replay = format!("replay: faultline run {} --seed 1", file.display());
    assert!(text.contains(&replay), "`{replay}` missing from:\n{text}");
    let written: Vec<_> = std::fs::read_dir(&shrunk).unwrap().collect();
    assert_eq!(written.len(), 1, "one check missed, one file");
    let s = faultline::scenario::Scenario::from_path(&file).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.faults.entries.len(), 1, "the pause is not needed");
    let e = &s.faults.entries[0];
    assert!(matches!(e.fault, faultline::Fault::Slow { .. }), "{e:?}");
    assert!(e.until.unwrap().as_nanos() - e.from.unwrap().as_nanos() < 120_000_000_000);
    // The command it printed replays the failure.
    let out = dir.join("replay-out");
    let o = faultline(&[
        "run",
        file.to_str().unwrap(),
        "--seed",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 2, "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("deadline shedding / goodput during the spike:"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn check_shrink_writes_nothing_when_every_check_holds_where_it_should() {
    // The default directory, under the working directory, holds the frozen regressions.
    let default = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/regressions");
    let listing = || -> Vec<String> {
        std::fs::read_dir(&default)
            .map(|d| {
                let mut names: Vec<String> = d
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                names
            })
            .unwrap_or_default()
    };
    let before = listing();
    // `--shrink` takes its directory only after `=`, so the scenario is not mistaken for it.
    let o = faultline(&["check", "--shrink", "traffic_spike", "--seeds", "1"]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(!stdout(&o).contains("shrunk"), "{}", stdout(&o));
    assert_eq!(listing(), before, "nothing is written");
}

#[test]
fn check_help_documents_shrink() {
    let o = faultline(&["check", "--help"]);
    assert_eq!(code(&o), 0);
    let help = stdout(&o);
    assert!(help.contains("--shrink[=<DIR>]"), "{help}");
    assert!(help.contains("scenarios/regressions"), "{help}");
    assert!(help.contains("--no-shrink"), "{help}");
    assert!(help.contains("replays"), "{help}");
}

#[test]
fn a_run_replaces_the_charts_an_earlier_run_left() {
    let out = scratch("cli-stale");
    std::fs::write(
        out.join("09-a-chart-this-scenario-no-longer-has.svg"),
        "<svg/>",
    )
    .unwrap();
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    let o = faultline(&["run", "mmc_queue", "--out", out.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        !out.join("09-a-chart-this-scenario-no-longer-has.svg")
            .exists()
    );
    assert_eq!(
        std::fs::read_to_string(out.join("notes.txt")).unwrap(),
        "mine"
    );
    assert!(out.join("01-queue-length.svg").exists());
}

#[test]
fn check_reports_medians_and_effect_sizes_against_the_baseline() {
    let o = faultline(&["check", "traffic_spike", "--seeds", "3"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("Medians over the seeds"), "{text}");
    assert!(
        text.contains("goodput during the spike (rate(users.ok_total))"),
        "{text}"
    );
    assert!(text.contains("change +"), "{text}");
    let o = faultline(&["check", "traffic_spike", "--seeds", "3", "--json"]);
    let report: Report = serde_json::from_str(&stdout(&o)).unwrap();
    let goodput = |v: usize| report.variants[v].summary[0].clone();
    assert!(goodput(0).effect.is_none(), "the baseline is the reference");
    let base = goodput(0).median.expect("data");
    let fix = goodput(1).median.expect("data");
    let effect = goodput(1).effect.expect("a fix has an effect");
    assert_eq!(base.samples, 3);
    assert!((effect.value - (fix.value - base.value)).abs() < 1e-9);
    assert!(effect.lo.unwrap() <= effect.value && effect.value <= effect.hi.unwrap());
    assert!(effect.value > 100.0, "the fix adds goodput: {effect:?}");
}
