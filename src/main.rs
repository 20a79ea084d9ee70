//! The `faultline` command: run a scenario's variants side by side, check them over many seeds,
//! sweep a parameter, merge shards, list what ships, validate files. A thin layer over the
//! library: parsing arguments, choosing seeds and threads, showing progress on a terminal,
//! printing tables and writing files. `anyhow` is used here and nowhere else.
//!
//! Exit codes by class: 0 every variant met its expectations; 1 bad usage or bad input (a
//! malformed scenario, a missing file); 2 a safety check missed its expectation; 3 a liveness
//! check missed its expectation, or a run ended at a limit.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use faultline::report::json::{Report, Shard, Sweep};
use faultline::report::{
    Cell, ChartLine, ChartSpec, FaultWindow, Table, Verdict, render_param_svg, render_svg,
};
use faultline::scenario::run::{self, Detail};
use faultline::scenario::{Expect, SHIPPED, Scenario, ScenarioError, models, shipped};

/// Exit code for bad usage or bad input.
const EXIT_INPUT: u8 = 1;

/// A deterministic simulator of distributed failure modes.
///
/// Scenarios are RON files (see `faultline list` for the shipped ones); every variant of a
/// scenario runs on the same seeds, so a failure and its fixes are compared on identical random
/// draws.
#[derive(Parser)]
#[command(version, about, long_about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every variant of a scenario on one seed; print them side by side and write
    /// report.json, metrics.csv and SVG charts.
    Run(RunArgs),
    /// Run every variant on many seeds and count, per check, the seeds where it held; with
    /// --shrink, shrink a failure to a minimal scenario file that replays it.
    Check(CheckArgs),
    /// Run the scenario at each value of a parameter, over many seeds.
    Sweep(SweepArgs),
    /// Join the result files of shards (`check --shard K/N --out FILE`) into one report.
    Merge(MergeArgs),
    /// List the scenarios that ship with faultline.
    List,
    /// List the component models, or print one.
    Models {
        /// A model name, such as `rpc/service`.
        name: Option<String>,
    },
    /// Read and validate scenario files without running them.
    Validate {
        /// Scenario files (or shipped scenario names).
        #[arg(required = true)]
        scenarios: Vec<String>,
    },
}

#[derive(Args)]
struct Common {
    /// A scenario file, or the name of a shipped scenario (`faultline list`).
    scenario: String,
    /// Only these variants (repeatable); all by default.
    #[arg(long = "variant", value_name = "NAME")]
    variants: Vec<String>,
    /// Override a field in every variant that runs (after its own sets): `--set
    /// api.workers=50` (the value is RON).
    #[arg(long = "set", value_name = "PATH=VALUE")]
    sets: Vec<String>,
    /// Print the JSON report to standard output instead of the table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    common: Common,
    /// The seed (default: the scenario's own).
    #[arg(long)]
    seed: Option<u64>,
    /// Where to write report.json, metrics.csv and the charts
    /// (default: faultline-out/<scenario name>).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct CheckArgs {
    #[command(flatten)]
    common: Common,
    /// How many seeds, counting up from the scenario's seed (or --seed).
    #[arg(long, default_value_t = 20)]
    seeds: u64,
    /// The first seed (default: the scenario's own).
    #[arg(long)]
    seed: Option<u64>,
    /// Worker threads (default: one per core).
    #[arg(long)]
    jobs: Option<usize>,
    /// Run only part K of N of the seeds (1-based), for splitting over machines.
    #[arg(long, value_name = "K/N", value_parser = parse_shard)]
    shard: Option<Shard>,
    /// Also write the JSON report to this file (for `faultline merge`).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Where to write the minimal scenario file of each failure (default:
    /// scenarios/regressions). When a variant misses an expectation that a check holds, `check`
    /// shrinks the scenario's own fault plan for the first seed it fails on (fewest faults,
    /// shortest windows, mildest slowdowns that still fail), writes the file and prints the
    /// command that replays it. Nothing is written when every check holds where it should.
    /// Written `--shrink=DIR`.
    #[arg(long, value_name = "DIR", num_args = 0..=1, require_equals = true)]
    shrink: Option<Option<PathBuf>>,
    /// Do not shrink failures or write anything for them.
    #[arg(long, conflicts_with = "shrink")]
    no_shrink: bool,
}

#[derive(Args)]
struct SweepArgs {
    #[command(flatten)]
    common: Common,
    /// The parameter and its values: `api.workers=10..50:10`, `api.pools.primary.acquire_timeout=100ms..1s:100ms`,
    /// or a list `api.policy=RoundRobin,Random`.
    #[arg(long, value_name = "PATH=VALUES")]
    param: String,
    /// Seeds per point.
    #[arg(long, default_value_t = 5)]
    seeds: u64,
    /// The first seed (default: the scenario's own).
    #[arg(long)]
    seed: Option<u64>,
    /// Worker threads (default: one per core).
    #[arg(long)]
    jobs: Option<usize>,
    /// Where to write sweep.json and the charts (default:
    /// faultline-out/<scenario name>/sweep-<param>).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct MergeArgs {
    /// Report files written by `check --out`.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Print the merged JSON report instead of the table.
    #[arg(long)]
    json: bool,
    /// Also write the merged report to this file.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

fn parse_shard(s: &str) -> Result<Shard, String> {
    let (k, n) = s
        .split_once('/')
        .ok_or_else(|| format!("`{s}`: expected K/N, such as 1/4"))?;
    let index: u32 = k
        .trim()
        .parse()
        .map_err(|_| format!("`{k}` is not a number"))?;
    let count: u32 = n
        .trim()
        .parse()
        .map_err(|_| format!("`{n}` is not a number"))?;
    if count == 0 || index == 0 || index > count {
        return Err(format!("`{s}`: needs 1 <= K <= N"));
    }
    Ok(Shard { index, count })
}

/// What went wrong, by class.
enum Failure {
    /// A scenario problem: printed with positions, exit 1.
    Scenario(ScenarioError),
    /// Anything else the user can fix (a missing file, a bad argument): exit 1.
    Input(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Input(e)
    }
}

impl From<ScenarioError> for Failure {
    fn from(e: ScenarioError) -> Self {
        Failure::Scenario(e)
    }
}

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, so `faultline run x | head` would panic on the first write after
    // `head` exits. A command-line tool should just stop, as `cat` does.
    #[cfg(unix)]
    // SAFETY: restoring the default action of a signal, before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_INPUT } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match dispatch(cli.command) {
        Ok(code) => ExitCode::from(code),
        Err(Failure::Scenario(e)) => {
            eprint!("{}", e.render(std::io::stderr().is_terminal()));
            ExitCode::from(EXIT_INPUT)
        }
        Err(Failure::Input(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_INPUT)
        }
    }
}

fn dispatch(command: Command) -> Result<u8, Failure> {
    match command {
        Command::Run(a) => cmd_run(a),
        Command::Check(a) => cmd_check(a),
        Command::Sweep(a) => cmd_sweep(a),
        Command::Merge(a) => cmd_merge(a),
        Command::List => {
            cmd_list();
            Ok(0)
        }
        Command::Models { name } => cmd_models(name.as_deref()),
        Command::Validate { scenarios } => cmd_validate(&scenarios),
    }
}

/// Reads a scenario from a path, or a shipped one by name, with `--set` overrides applied to
/// the `--variant`s chosen (all when none is).
fn load(spec: &str, sets: &[String], only: &[String]) -> Result<Scenario, Failure> {
    let mut extra = Vec::new();
    for s in sets {
        let Some((path, value)) = s.split_once('=') else {
            return Err(anyhow::anyhow!(
                "--set `{s}`: expected PATH=VALUE, such as api.workers=50"
            )
            .into());
        };
        extra.push((path.trim().to_string(), value.trim().to_string()));
    }
    let path = Path::new(spec);
    if path.exists() {
        return Ok(Scenario::from_path_with_overrides(path, &extra, only)?);
    }
    if let Some((file, text)) = shipped(spec) {
        return Ok(Scenario::with_overrides_for(text, file, &extra, only)?);
    }
    let names = SHIPPED.iter().map(|(n, _, _)| *n);
    let hint = match faultline::fault::suggest(spec, names) {
        Some(s) => format!(" (did you mean the shipped scenario `{s}`?)"),
        None => " (`faultline list` shows the shipped scenarios)".to_string(),
    };
    Err(anyhow::anyhow!("no file `{spec}` and no shipped scenario of that name{hint}").into())
}

/// The indices of the variants to run: every one [`load`] kept, in scenario order (it drops
/// those `--variant` did not name, so that `--set` need only fit the ones that run).
fn chosen(s: &Scenario) -> Vec<usize> {
    (0..s.variants.len()).collect()
}

fn threads(jobs: Option<usize>) -> anyhow::Result<()> {
    if let Some(j) = jobs {
        if j == 0 {
            bail!("--jobs must be at least 1");
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(j)
            .build_global()
            .context("setting up worker threads")?;
    }
    Ok(())
}

/// A progress bar on a terminal; nothing at all elsewhere (CI logs, pipes).
fn progress(total: u64, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() || total < 2 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} runs, {eta} left")
        .expect("a valid template")
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(what.to_string());
    bar
}

fn width() -> usize {
    100
}

/// `text` in lines of at most `width()` characters, broken at spaces; continuation lines are
/// indented by `indent` spaces. A word longer than a line stands alone on its line.
fn wrap(text: &str, indent: usize) -> String {
    if text.chars().count() <= width() {
        return text.to_string();
    }
    let lead = text.len() - text.trim_start_matches(' ').len();
    let mut out = String::new();
    let mut line = " ".repeat(lead);
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let len = line.chars().count();
        if len > 0 && len + 1 + word.chars().count() > width() {
            out.push_str(&line);
            out.push('\n');
            line = " ".repeat(indent);
        } else if len > 0 && !line.chars().all(|c| c == ' ') {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push_str(&line);
    out
}

fn color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

fn verdict(expect: Option<Expect>, holds: bool) -> Cell {
    match (expect, holds) {
        (Some(Expect::Holds), true) => Cell::Verdict(Verdict::Pass),
        (Some(Expect::Holds), false) => Cell::Verdict(Verdict::Fail),
        (Some(_), false) => Cell::Verdict(Verdict::ExpectedFail),
        (Some(_), true) => Cell::Verdict(Verdict::UnexpectedPass),
        (None, true) => Cell::Text("held".into()),
        (None, false) => Cell::Text("failed".into()),
    }
}

/// The side-by-side table of a one-seed run.
fn run_table(s: &Scenario, report: &Report) -> anyhow::Result<Table> {
    let mut table = Table::new(report.variants.iter().map(|v| v.name.clone()));
    for (i, row) in s.table.iter().enumerate() {
        let cells = report
            .variants
            .iter()
            .map(|v| match v.runs.first().and_then(|r| r.rows[i]) {
                Some(x) => Cell::value(x, s.table_units[i]),
                None => Cell::Missing,
            })
            .collect();
        table.push_row(row.to_string(), cells)?;
    }
    for (i, check) in s.checks.iter().enumerate() {
        let verdicts = report
            .variants
            .iter()
            .map(|v| {
                let holds = v.runs.first().is_some_and(|r| r.checks[i].holds);
                verdict(v.expect.get(check.name()).copied(), holds)
            })
            .collect();
        table.push_row(check.name(), verdicts)?;
        let values = report
            .variants
            .iter()
            .map(|v| match v.runs.first().and_then(|r| r.checks[i].value) {
                Some(x) => Cell::value(x, s.check_units[i]),
                None => Cell::Missing,
            })
            .collect();
        table.push_row(format!("  {}", check.value()), values)?;
    }
    let events = report
        .variants
        .iter()
        .map(|v| {
            Cell::value(
                v.runs.first().map_or(0, |r| r.events) as f64,
                faultline::report::Unit::Count,
            )
        })
        .collect();
    table.push_row("events simulated", events)?;
    Ok(table)
}

/// The table of a many-seed check: per check, the verdict and the seeds where it held.
fn check_table(s: &Scenario, report: &Report) -> anyhow::Result<Table> {
    let mut table = Table::new(report.variants.iter().map(|v| v.name.clone()));
    for (i, check) in s.checks.iter().enumerate() {
        let verdicts = report
            .variants
            .iter()
            .map(|v| {
                let sum = &v.summary[i];
                match sum.met {
                    None => Cell::Text(format!("{}/{}", sum.holds, sum.holds + sum.fails)),
                    Some(met) => {
                        let holds = match sum.expect {
                            Some(Expect::Holds) => met,
                            _ => !met,
                        };
                        verdict(sum.expect, holds)
                    }
                }
            })
            .collect();
        table.push_row(check.name(), verdicts)?;
        let counts = report
            .variants
            .iter()
            .map(|v| {
                let sum = &v.summary[i];
                Cell::Text(format!("held {}/{}", sum.holds, sum.holds + sum.fails))
            })
            .collect();
        table.push_row("", counts)?;
    }
    Ok(table)
}

/// Per check, each variant's median value over the seeds with its 95% interval and, for the
/// fixes, the difference from the baseline's median with its bootstrap interval: how much a fix
/// changes what the check measures, not only whether it passes.
fn effect_sizes(s: &Scenario, report: &Report) -> String {
    use faultline::report::json::Interval;
    let fmt = |unit: faultline::report::Unit, i: &Interval, signed: bool| {
        let v = unit.format(i.value);
        let v = if signed && i.value >= 0.0 {
            format!("+{v}")
        } else {
            v
        };
        match (i.lo, i.hi) {
            (Some(lo), Some(hi)) => format!("{v} [{}, {}]", unit.format(lo), unit.format(hi)),
            _ => v,
        }
    };
    let name_width = report
        .variants
        .iter()
        .map(|v| v.name.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::from(
        "Medians over the seeds [95% interval]; for each fix, the change from the baseline:\n",
    );
    for (i, check) in s.checks.iter().enumerate() {
        out.push_str(&format!("  {} ({})\n", check.name(), check.value()));
        for v in &report.variants {
            let sum = &v.summary[i];
            let median = sum
                .median
                .as_ref()
                .map_or("no data".to_string(), |m| fmt(s.check_units[i], m, false));
            let effect = sum.effect.as_ref().map_or(String::new(), |e| {
                format!("   change {}", fmt(s.check_units[i], e, true))
            });
            let line = format!("    {:<name_width$}  {median}{effect}", v.name);
            out.push_str(&wrap(&line, 6 + name_width));
            out.push('\n');
        }
    }
    out.push('\n');
    out
}

fn print_outcome(report: &Report, s: &Scenario, seed_hint: Option<u64>) {
    if report.outcome.ok {
        println!("{}", wrap(&format!("ok: {}", report.outcome.reason), 2));
    } else {
        println!(
            "not ok (exit {}): {}",
            report.outcome.exit_code, report.outcome.reason
        );
        let seed = seed_hint.or_else(|| {
            report
                .variants
                .iter()
                .filter(|v| !v.met)
                .flat_map(|v| v.runs.iter().map(|r| r.seed))
                .next()
        });
        if let Some(seed) = seed {
            println!("replay: faultline run {} --seed {seed}", s.file);
        }
    }
}

fn cmd_run(a: RunArgs) -> Result<u8, Failure> {
    let s = load(&a.common.scenario, &a.common.sets, &a.common.variants)?;
    let variants = chosen(&s);
    let seed = a.seed.unwrap_or(s.seed);
    let bar = progress(variants.len() as u64, &s.name);
    let (report, details) =
        run::run_many(&s, "run", &variants, &[seed], Some(seed), &|| bar.inc(1));
    bar.finish_and_clear();
    let out = a
        .out
        .unwrap_or_else(|| Path::new("faultline-out").join(&s.name));
    let written = write_run_outputs(&s, &report, &details, &out)?;
    if a.common.json {
        println!("{}", serde_json::to_string_pretty(&report).context("JSON")?);
    } else {
        println!("{}", wrap(&format!("{} — {}", s.name, s.about), 2));
        println!(
            "seed {seed}, {} of virtual time, {} variant{}\n",
            s.duration,
            variants.len(),
            if variants.len() == 1 { "" } else { "s" }
        );
        print!("{}", run_table(&s, &report)?.render(width(), color()));
        println!();
        for v in &report.variants {
            for (c, o) in s.checks.iter().zip(&v.runs[0].checks) {
                if v.expect.get(c.name()) == Some(&Expect::Holds) && !o.holds {
                    println!(
                        "{}",
                        wrap(&format!("  {} / {}: {}", v.name, c.name(), o.detail), 4)
                    );
                }
            }
        }
        let wrote = format!("wrote {} in {}", written.join(", "), out.display());
        println!("{}", wrap(&wrote, 2));
        print_outcome(&report, &s, Some(seed));
    }
    Ok(report.outcome.exit_code as u8)
}

/// Removes the charts an earlier run left in `out` (`NN-*.svg`, the names this command gives
/// them), so that a directory never mixes the charts of two versions of a scenario.
fn remove_old_charts(out: &Path) -> anyhow::Result<()> {
    let entries =
        std::fs::read_dir(out).with_context(|| format!("cannot read {}", out.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let ours = name.len() > 7
            && name.as_bytes()[..2].iter().all(u8::is_ascii_digit)
            && name.as_bytes()[2] == b'-'
            && name.ends_with(".svg");
        if ours {
            let path = entry.path();
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    Ok(())
}

/// Slug of a chart title for its file name.
fn slug(title: &str) -> String {
    faultline::report::slug(title, 60)
}

/// Writes report.json, metrics.csv and the charts. Everything is rendered in memory first, so
/// a chart that cannot be drawn leaves no half-written directory.
fn write_run_outputs(
    s: &Scenario,
    report: &Report,
    details: &[Detail],
    out: &Path,
) -> anyhow::Result<Vec<String>> {
    let json = serde_json::to_string_pretty(report).context("JSON")?;
    let names: Vec<&str> = s.variants.iter().map(|v| v.name.as_str()).collect();
    let csv =
        faultline::report::series_csv(details.iter().map(|d| (names[d.variant], d.series.iter())));
    let windows: Vec<FaultWindow> = s
        .fault_windows()
        .into_iter()
        .map(|(from, until, label)| FaultWindow { from, until, label })
        .collect();
    let mut charts = Vec::new();
    for (i, chart) in s.charts.iter().enumerate() {
        let series = details
            .iter()
            .filter_map(|d| {
                let points = d.charts[i].clone()?;
                Some(ChartLine {
                    label: names[d.variant].to_string(),
                    points,
                })
            })
            .collect();
        let spec = ChartSpec {
            title: chart.title(),
            y_label: chart.value.to_string(),
            unit: s.chart_units[i],
            series,
            windows: windows.clone(),
        };
        let svg = render_svg(&spec).with_context(|| format!("chart {}", chart.title()))?;
        charts.push((format!("{:02}-{}.svg", i + 1, slug(&chart.title())), svg));
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    remove_old_charts(out)?;
    let write = |name: &str, text: &str| -> anyhow::Result<()> {
        let path = out.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
    };
    write("report.json", &json)?;
    write("metrics.csv", &csv)?;
    for (name, svg) in &charts {
        write(name, svg)?;
    }
    let mut written = vec!["report.json".to_string(), "metrics.csv".to_string()];
    if !charts.is_empty() {
        written.push(format!(
            "{} chart{}",
            charts.len(),
            if charts.len() == 1 { "" } else { "s" }
        ));
    }
    Ok(written)
}

fn cmd_check(a: CheckArgs) -> Result<u8, Failure> {
    let s = load(&a.common.scenario, &a.common.sets, &a.common.variants)?;
    let variants = chosen(&s);
    if a.seeds == 0 {
        return Err(anyhow::anyhow!("--seeds must be at least 1").into());
    }
    threads(a.jobs)?;
    let seeds = run::seeds(a.seed.unwrap_or(s.seed), a.seeds, a.shard);
    let bar = progress((seeds.len() * variants.len()) as u64, &s.name);
    let (mut report, _) = run::run_many(&s, "check", &variants, &seeds, None, &|| bar.inc(1));
    bar.finish_and_clear();
    report.shard = a.shard;
    if let Some(path) = &a.out {
        let json = serde_json::to_string_pretty(&report).context("JSON")?;
        std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if a.common.json {
        println!("{}", serde_json::to_string_pretty(&report).context("JSON")?);
    } else {
        let shard = a.shard.map_or(String::new(), |sh| {
            format!(" (shard {}/{})", sh.index, sh.count)
        });
        println!(
            "{} — {} seeds{shard}, {} variants\n",
            s.name,
            seeds.len(),
            variants.len()
        );
        print!("{}", check_table(&s, &report)?.render(width(), color()));
        println!();
        print!("{}", effect_sizes(&s, &report));
        if let Some(path) = &a.out {
            println!("wrote {}", path.display());
        }
        print_outcome(&report, &s, None);
    }
    if !a.no_shrink {
        let dir = a
            .shrink
            .flatten()
            .unwrap_or_else(|| Path::new("scenarios").join("regressions"));
        // With --json, standard output is the report alone.
        let lines = shrink_failures(&s, &report, &dir)?;
        for line in lines {
            if a.common.json {
                eprintln!("{line}");
            } else {
                println!("{line}");
            }
        }
    }
    Ok(report.outcome.exit_code as u8)
}

/// The most runs `check --shrink` spends shrinking one failure.
const SHRINK_RUNS_MAX: u32 = 100;

/// For each variant and check that it expects to hold but that failed on a seed, shrinks the
/// scenario's fault plan for the first such seed and writes the replay file into `dir`.
/// Returns what to print.
fn shrink_failures(s: &Scenario, report: &Report, dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut lines = Vec::new();
    for v in &report.variants {
        for (ci, check) in s.checks.iter().enumerate() {
            if v.expect.get(check.name()) != Some(&Expect::Holds) {
                continue;
            }
            let Some(run) = v.runs.iter().find(|r| !r.checks[ci].holds) else {
                continue;
            };
            let shrunk =
                faultline::prop::shrink_plan(s, &v.name, check.name(), run.seed, SHRINK_RUNS_MAX)
                    .with_context(|| format!("shrinking `{}` / `{}`", v.name, check.name()))?;
            let Some(cx) = shrunk else {
                continue;
            };
            let path = cx.write(dir)?;
            let path = path.display().to_string();
            lines.push(wrap(
                &format!(
                    "shrunk `{}` / `{}` (seed {}): {} of {} faults left, wrote {path}",
                    v.name,
                    check.name(),
                    cx.seed,
                    cx.faults.entries.len(),
                    cx.original.faults.entries.len()
                ),
                2,
            ));
            for e in &cx.faults.entries {
                let when = match (e.at, e.from, e.until) {
                    (Some(at), _, _) => format!("at {at}"),
                    (_, Some(from), Some(until)) => format!("from {from} to {until}"),
                    _ => String::new(),
                };
                lines.push(format!(
                    "  {} {when}",
                    faultline::scenario::fault_label(&e.fault)
                ));
            }
            lines.push(format!("replay: {}", cx.replay_command(&path)));
        }
    }
    Ok(lines)
}

fn cmd_sweep(a: SweepArgs) -> Result<u8, Failure> {
    let s = load(&a.common.scenario, &a.common.sets, &a.common.variants)?;
    let variants = chosen(&s);
    let Some((path, spec)) = a.param.split_once('=') else {
        return Err(anyhow::anyhow!(
            "--param `{}`: expected PATH=VALUES, such as api.workers=10..50:10",
            a.param
        )
        .into());
    };
    let values = run::sweep_values(spec).map_err(|e| anyhow::anyhow!("--param: {e}"))?;
    if a.seeds == 0 {
        return Err(anyhow::anyhow!("--seeds must be at least 1").into());
    }
    threads(a.jobs)?;
    let seeds = run::seeds(a.seed.unwrap_or(s.seed), a.seeds, None);
    let names: Vec<String> = variants
        .iter()
        .map(|&i| s.variants[i].name.clone())
        .collect();
    let total = (values.len() * variants.len() * seeds.len()) as u64;
    let bar = progress(total, &s.name);
    let points = run::sweep(&s, path.trim(), &values, &names, &seeds, &|| bar.inc(1))?;
    bar.finish_and_clear();
    let out = a.out.unwrap_or_else(|| {
        Path::new("faultline-out")
            .join(&s.name)
            .join(format!("sweep-{}", file_safe(path.trim())))
    });
    let charts = run::sweep_charts(&s, path.trim(), &points);
    let sweep = Sweep::new(path.trim(), points);
    let written = write_sweep_outputs(&sweep, &charts, &out)?;
    if a.common.json {
        println!("{}", serde_json::to_string_pretty(&sweep).context("JSON")?);
        return Ok(0);
    }
    let points = &sweep.points;
    println!(
        "{} — sweep of {} over {} values, {} seeds each\n",
        s.name,
        path.trim(),
        values.len(),
        seeds.len()
    );
    let mut table = Table::new(names.clone());
    for p in points {
        for (i, check) in s.checks.iter().enumerate() {
            let cells = p
                .report
                .variants
                .iter()
                .map(|v| {
                    let sum = &v.summary[i];
                    Cell::value(
                        f64::from(sum.holds) / f64::from(sum.holds + sum.fails),
                        faultline::report::Unit::Ratio,
                    )
                })
                .collect();
            table
                .push_row(
                    format!("{} = {}: {}", path.trim(), p.value, check.name()),
                    cells,
                )
                .map_err(anyhow::Error::from)?;
        }
        for (i, row) in s.table.iter().enumerate() {
            let cells = p
                .report
                .variants
                .iter()
                .map(|v| {
                    let xs: Vec<f64> = v.runs.iter().filter_map(|r| r.rows[i]).collect();
                    if xs.is_empty() {
                        Cell::Missing
                    } else {
                        Cell::value(xs.iter().sum::<f64>() / xs.len() as f64, s.table_units[i])
                    }
                })
                .collect();
            table
                .push_row(format!("{} = {}: mean {row}", path.trim(), p.value), cells)
                .map_err(anyhow::Error::from)?;
        }
    }
    print!("{}", table.render(width(), color()));
    println!("\n(checks: fraction of seeds where the check held)");
    let wrote = format!("wrote {} in {}", written.join(", "), out.display());
    println!("{}", wrap(&wrote, 2));
    Ok(0)
}

/// `text` with every character that is not safe in a file name on every system (letters,
/// digits, `.`, `_`, `-`) replaced by `-`.
fn file_safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Writes sweep.json and one chart per check and per table row, numbered in that order.
/// Everything is rendered in memory first, so a chart that cannot be drawn leaves no
/// half-written directory.
fn write_sweep_outputs(
    sweep: &Sweep,
    charts: &[run::SweepChart],
    out: &Path,
) -> anyhow::Result<Vec<String>> {
    let json = serde_json::to_string_pretty(sweep).context("JSON")?;
    let mut svgs = Vec::new();
    for (i, chart) in charts.iter().enumerate() {
        let kind = match chart.kind {
            run::SweepChartKind::Held(_) => "held",
            run::SweepChartKind::Mean(_) => "mean",
        };
        let svg =
            render_param_svg(&chart.spec).with_context(|| format!("chart {}", chart.spec.title))?;
        svgs.push((
            format!("{:02}-{kind}-{}.svg", i + 1, slug(&chart.subject)),
            svg,
        ));
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    remove_old_charts(out)?;
    let write = |name: &str, text: &str| -> anyhow::Result<()> {
        let path = out.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
    };
    write("sweep.json", &json)?;
    for (name, svg) in &svgs {
        write(name, svg)?;
    }
    let mut written = vec!["sweep.json".to_string()];
    if !svgs.is_empty() {
        written.push(format!(
            "{} chart{}",
            svgs.len(),
            if svgs.len() == 1 { "" } else { "s" }
        ));
    }
    Ok(written)
}

fn cmd_merge(a: MergeArgs) -> Result<u8, Failure> {
    let mut reports = Vec::new();
    for f in &a.files {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?;
        let r: Report = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a faultline report", f.display()))?;
        reports.push(r);
    }
    let merged = Report::merge(reports).map_err(|e| anyhow::anyhow!("cannot merge: {e}"))?;
    if let Some(path) = &a.out {
        let json = serde_json::to_string_pretty(&merged).context("JSON")?;
        std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&merged).context("JSON")?);
    } else {
        println!(
            "{} — {} seeds from {} files\n",
            merged.scenario.name,
            merged.seeds.len(),
            a.files.len()
        );
        let mut table = Table::new(merged.variants.iter().map(|v| v.name.clone()));
        for (i, c) in merged.scenario.checks.iter().enumerate() {
            let cells = merged
                .variants
                .iter()
                .map(|v| {
                    let sum = &v.summary[i];
                    Cell::Text(format!(
                        "{}held {}/{}",
                        if sum.met == Some(false) {
                            "MISSED "
                        } else {
                            ""
                        },
                        sum.holds,
                        sum.holds + sum.fails
                    ))
                })
                .collect();
            table
                .push_row(c.name.clone(), cells)
                .map_err(anyhow::Error::from)?;
        }
        print!("{}", table.render(width(), color()));
        if merged.outcome.ok {
            println!("\nok: {}", merged.outcome.reason);
        } else {
            println!(
                "\nnot ok (exit {}): {}",
                merged.outcome.exit_code, merged.outcome.reason
            );
        }
    }
    Ok(merged.outcome.exit_code as u8)
}

fn cmd_list() {
    println!("Scenarios that ship with faultline (run one with `faultline run NAME`):\n");
    for (name, _, text) in SHIPPED {
        let about = match Scenario::from_str(text, name) {
            Ok(s) => s.about,
            Err(_) => "(does not load: a bug, please report it)".into(),
        };
        println!("  {name:<18} {about}");
    }
}

fn cmd_models(name: Option<&str>) -> Result<u8, Failure> {
    let mut sources = faultline::scenario::Sources::default();
    let all = models::all(&mut sources).map_err(|ps| ScenarioError {
        file: "models".into(),
        problems: ps,
        sources: sources.clone(),
    })?;
    match name {
        None => {
            println!("Component models (print one with `faultline models NAME`):\n");
            for m in &all {
                println!("  {:<20} {:<13} {}", m.name, m.kind.name(), m.about);
            }
        }
        Some(n) => match all.iter().find(|m| m.name == n) {
            Some(m) => {
                let mut out = std::io::stdout();
                writeln!(out, "// {}", m.path).context("stdout")?;
                out.write_all(m.text.as_bytes()).context("stdout")?;
            }
            None => {
                let hint = faultline::fault::suggest(n, all.iter().map(|m| m.name.as_str()))
                    .map_or(String::new(), |s| format!(" (did you mean `{s}`?)"));
                return Err(anyhow::anyhow!("no model is called `{n}`{hint}").into());
            }
        },
    }
    Ok(0)
}

fn cmd_validate(files: &[String]) -> Result<u8, Failure> {
    let mut bad = 0;
    for f in files {
        match load(f, &[], &[]) {
            Ok(s) => println!(
                "ok: {} ({}): {} variants, {} checks, {} components",
                s.file,
                s.name,
                s.variants.len(),
                s.checks.len(),
                s.variants[0].components.len()
            ),
            Err(Failure::Scenario(e)) => {
                bad += 1;
                eprint!("{}", e.render(std::io::stderr().is_terminal()));
            }
            Err(Failure::Input(e)) => {
                bad += 1;
                eprintln!("error: {e:#}");
            }
        }
    }
    Ok(if bad == 0 { 0 } else { EXIT_INPUT })
}
