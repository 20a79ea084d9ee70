//! Running a loaded scenario: variants x seeds, each run single-threaded and independent of
//! the others, so they spread over threads (rayon) and, with `--shard`, over machines; and a
//! parameter sweep, which is the same over several versions of the scenario. The results are
//! [`Report`]s, the stable JSON schema of `report::json`.
//!
//! Every run of one variant and one seed is a pure function of (scenario text, overrides,
//! variant, seed): the same inputs give the same trace hash on any machine and any number of
//! threads, which is what lets shards merge into the report of one run.

use rayon::prelude::*;

use crate::check::Check;
use crate::engine::sim::{LimitKind, Verdict};
use crate::engine::time::{SimDuration, SimTime};
use crate::metrics::Series;
use crate::report::json::{
    CheckInfo, FaultInfo, Override, Report, ReportOutcome, SCHEMA, ScenarioInfo, SeedRun, Shard,
    VERSION, VariantReport,
};
pub use crate::report::stats::{Estimate, mean_95, wilson_95};
use crate::report::{IntervalStyle, ParamChartSpec, ParamLine, ParamPoint, ParamScale, Unit};
use crate::scenario::build::build;
use crate::scenario::error::ScenarioError;
use crate::scenario::load::{Scenario, Variant};

/// What a run keeps beyond its [`SeedRun`]: the time series, for charts and the CSV.
#[derive(Clone, Debug)]
pub struct Detail {
    /// Index into the scenario's variants.
    pub variant: usize,
    pub seed: u64,
    /// One series per chart of the scenario (None: the variant has no such metric).
    pub charts: Vec<Option<Vec<(SimTime, f64)>>>,
    /// Every sampled series, in name order.
    pub series: Vec<Series>,
}

/// Runs one variant on one seed to the scenario's end.
pub fn run_seed(
    scenario: &Scenario,
    vi: usize,
    seed: u64,
    detail: bool,
) -> (SeedRun, Option<Detail>) {
    let variant = &scenario.variants[vi];
    let mut sim = match build(scenario, variant, seed, false) {
        Ok(sim) => sim,
        // Loading built every variant once already; a failure now is a bug.
        Err(e) => panic!(
            "variant `{}` built at load time but not now: {e}",
            variant.name
        ),
    };
    let end = SimTime::ZERO.saturating_add(scenario.duration);
    let verdict = sim.run_until(end);
    let (ended, limit_hit) = match verdict {
        Verdict::Reached => ("reached".to_string(), false),
        Verdict::Drained => ("drained".to_string(), false),
        Verdict::Limit(k) => (
            format!(
                "limit:{}",
                match k {
                    LimitKind::Events => "events",
                    LimitKind::Time => "time",
                    LimitKind::Queue => "queue",
                }
            ),
            true,
        ),
    };
    let metrics = sim.metrics();
    let checks = scenario
        .checks
        .iter()
        .map(|c| c.evaluate(metrics))
        .collect();
    let rows = scenario
        .table
        .iter()
        .map(|e| e.scalar(metrics, None).filter(|v| !v.is_nan()))
        .collect();
    let run = SeedRun {
        seed,
        ended,
        limit_hit,
        trace_hash: sim.trace_hash(),
        events: sim.stats().events,
        end_ns: sim.now().as_nanos(),
        checks,
        rows,
    };
    let detail = detail.then(|| Detail {
        variant: vi,
        seed,
        charts: scenario
            .charts
            .iter()
            .map(|c| c.value.series(metrics))
            .collect(),
        series: metrics.snapshot().series.into_values().collect(),
    });
    (run, detail)
}

/// The seeds of a many-seed run: `count` seeds from `base`, or the part of them shard
/// `index` of `count` (1-based) takes: every `count`-th, so shards get equal shares and the
/// split does not depend on the machine.
pub fn seeds(base: u64, count: u64, shard: Option<Shard>) -> Vec<u64> {
    (0..count)
        .filter(|i| shard.is_none_or(|s| i % u64::from(s.count) == u64::from(s.index - 1)))
        .map(|i| base.wrapping_add(i))
        .collect()
}

/// An empty report of `variants` of `scenario`.
pub fn empty_report(scenario: &Scenario, command: &str, variants: &[usize]) -> Report {
    let checks: Vec<CheckInfo> = scenario.checks.iter().map(check_info).collect();
    Report {
        schema: SCHEMA.to_string(),
        version: VERSION,
        command: command.to_string(),
        scenario: ScenarioInfo {
            name: scenario.name.clone(),
            about: scenario.about.clone(),
            file: scenario.file.clone(),
            digest: scenario.digest,
            duration_ns: scenario.duration.as_nanos(),
            sample_ns: scenario.sample.as_nanos(),
            checks,
            rows: scenario.table.iter().map(ToString::to_string).collect(),
            faults: scenario
                .fault_windows()
                .into_iter()
                .map(|(from, until, label)| FaultInfo {
                    label,
                    from_ns: from.as_nanos(),
                    until_ns: until.as_nanos(),
                })
                .collect(),
        },
        seeds: Vec::new(),
        shard: None,
        variants: variants
            .iter()
            .map(|&vi| variant_report(&scenario.variants[vi]))
            .collect(),
        outcome: ReportOutcome {
            ok: true,
            exit_code: 0,
            reason: String::new(),
        },
    }
}

fn check_info(c: &Check) -> CheckInfo {
    CheckInfo {
        name: c.name().to_string(),
        class: c.class().into(),
        value: c.value().to_string(),
    }
}

fn variant_report(v: &Variant) -> VariantReport {
    VariantReport {
        name: v.name.clone(),
        about: v.about.clone(),
        set: v
            .set
            .iter()
            .map(|(path, value)| Override {
                path: path.clone(),
                value: value.clone(),
            })
            .collect(),
        expect: v.expect.clone(),
        runs: Vec::new(),
        summary: Vec::new(),
        met: true,
    }
}

/// Runs `variants` (indices) of `scenario` on `seeds`, in parallel on rayon's current pool,
/// calling `progress` after each run. With `detail_seed`, runs of that seed keep their series.
pub fn run_many(
    scenario: &Scenario,
    command: &str,
    variants: &[usize],
    seeds: &[u64],
    detail_seed: Option<u64>,
    progress: &(dyn Fn() + Sync),
) -> (Report, Vec<Detail>) {
    let jobs: Vec<(usize, usize, u64)> = variants
        .iter()
        .enumerate()
        .flat_map(|(slot, &vi)| seeds.iter().map(move |&s| (slot, vi, s)))
        .collect();
    let results: Vec<(usize, SeedRun, Option<Detail>)> = jobs
        .par_iter()
        .map(|&(slot, vi, seed)| {
            let (run, detail) = run_seed(scenario, vi, seed, detail_seed == Some(seed));
            progress();
            (slot, run, detail)
        })
        .collect();
    let mut report = empty_report(scenario, command, variants);
    let mut details = Vec::new();
    for (slot, run, detail) in results {
        report.variants[slot].runs.push(run);
        details.extend(detail);
    }
    report.summarize();
    (report, details)
}

/// One point of a sweep: the parameter's value and the report of the runs there. Its type
/// lives with the JSON schema it is part of (`faultline.sweep`).
pub use crate::report::json::SweepPoint;

/// Runs `variants` (by name; empty means all) on `seeds` at every value of the override
/// `path`. Every point is loaded and validated before anything runs, so a value that does not
/// fit gives an error and no results.
pub fn sweep(
    scenario: &Scenario,
    path: &str,
    values: &[String],
    variants: &[String],
    seeds: &[u64],
    progress: &(dyn Fn() + Sync),
) -> Result<Vec<SweepPoint>, ScenarioError> {
    let mut points = Vec::new();
    for value in values {
        let mut extra = scenario.extra.clone();
        extra.push((path.to_string(), value.clone()));
        points.push(Scenario::with_overrides_for(
            &scenario.text,
            &scenario.file,
            &extra,
            &scenario.only,
        )?);
    }
    let chosen: Vec<usize> = if variants.is_empty() {
        (0..scenario.variants.len()).collect()
    } else {
        variants
            .iter()
            .filter_map(|n| scenario.variants.iter().position(|v| &v.name == n))
            .collect()
    };
    let jobs: Vec<(usize, usize, usize, u64)> = points
        .iter()
        .enumerate()
        .flat_map(|(p, _)| {
            chosen
                .iter()
                .enumerate()
                .flat_map(move |(slot, &vi)| seeds.iter().map(move |&s| (p, slot, vi, s)))
        })
        .collect();
    let results: Vec<(usize, usize, SeedRun)> = jobs
        .par_iter()
        .map(|&(p, slot, vi, seed)| {
            let (run, _) = run_seed(&points[p], vi, seed, false);
            progress();
            (p, slot, run)
        })
        .collect();
    let mut out: Vec<SweepPoint> = points
        .iter()
        .zip(values)
        .map(|(s, v)| SweepPoint {
            value: v.clone(),
            report: empty_report(s, "sweep", &chosen),
        })
        .collect();
    for (p, slot, run) in results {
        out[p].report.variants[slot].runs.push(run);
    }
    for point in &mut out {
        point.report.summarize();
    }
    Ok(out)
}

/// The values of a sweep parameter, as RON texts: `10..50:10` (integers, inclusive),
/// `0.1..0.5:0.1` (numbers), `100ms..1s:100ms` (durations), or a list `a,b,c` of RON values.
pub fn sweep_values(spec: &str) -> Result<Vec<String>, String> {
    const MAX_POINTS: u64 = 1000;
    let Some((range, step)) = spec.split_once(':').filter(|(r, _)| r.contains("..")) else {
        let values: Vec<String> = spec.split(',').map(|s| s.trim().to_string()).collect();
        if values.iter().any(String::is_empty) {
            return Err(format!(
                "`{spec}`: expected A..B:STEP (10..50:10, 100ms..1s:100ms) or a list a,b,c"
            ));
        }
        return Ok(values);
    };
    let (a, b) = range.split_once("..").expect("checked above");
    let (a, b, step) = (a.trim(), b.trim(), step.trim());
    if let (Ok(a), Ok(b), Ok(step)) = (a.parse::<i64>(), b.parse::<i64>(), step.parse::<i64>()) {
        if step <= 0 || b < a {
            return Err(format!("`{spec}`: needs A <= B and STEP > 0"));
        }
        let n = ((b - a) / step) as u64 + 1;
        if n > MAX_POINTS {
            return Err(format!("`{spec}` has {n} points, more than {MAX_POINTS}"));
        }
        return Ok((0..n as i64).map(|i| (a + i * step).to_string()).collect());
    }
    if let (Ok(a), Ok(b), Ok(step)) = (a.parse::<f64>(), b.parse::<f64>(), step.parse::<f64>()) {
        if !(a.is_finite() && b.is_finite() && step.is_finite() && step > 0.0 && b >= a) {
            return Err(format!("`{spec}`: needs finite A <= B and STEP > 0"));
        }
        // Count the points once, with a little slack for decimal steps that binary floats
        // cannot hold exactly (0.1), and compute each from the start to avoid drift.
        let n = libm::floor((b - a) / step + 1e-9) as u64 + 1;
        if n > MAX_POINTS {
            return Err(format!("`{spec}` has {n} points, more than {MAX_POINTS}"));
        }
        return Ok((0..n)
            .map(|i| {
                let v = a + i as f64 * step;
                // Twelve significant digits drop the float noise (0.30000000000000004).
                let text = format!("{:.12}", v);
                let text = text.trim_end_matches('0');
                text.strip_suffix('.')
                    .map_or(text.to_string(), |t| format!("{t}.0"))
            })
            .collect());
    }
    let (Ok(a), Ok(b), Ok(step)) = (
        a.parse::<SimDuration>(),
        b.parse::<SimDuration>(),
        step.parse::<SimDuration>(),
    ) else {
        return Err(format!(
            "`{spec}`: A, B and STEP must all be integers, numbers or durations"
        ));
    };
    if step == SimDuration::ZERO || b < a {
        return Err(format!("`{spec}`: needs A <= B and STEP > 0"));
    }
    let n = (b.as_nanos() - a.as_nanos()) / step.as_nanos() + 1;
    if n > MAX_POINTS {
        return Err(format!("`{spec}` has {n} points, more than {MAX_POINTS}"));
    }
    Ok((0..n)
        .map(|i| {
            let d = SimDuration::from_nanos(a.as_nanos() + i * step.as_nanos());
            format!("\"{d}\"")
        })
        .collect())
}

/// Where a sweep's values sit on a chart's x axis.
#[derive(Clone, Debug, PartialEq)]
pub enum SweepAxis {
    /// Every value is a number (a count, `Unit::Count`) or every value a duration
    /// (`Unit::Nanos`, `xs` in nanoseconds): one `x` per value.
    Numeric { unit: Unit, xs: Vec<f64> },
    /// Anything else (`RoundRobin`, `Random`, or numbers mixed with durations): each value is
    /// a category of its own.
    Categories,
}

/// How the values of a sweep (RON texts, as [`sweep_values`] gives them) are placed on an
/// axis. A number cannot be told to be a ratio from its text, so a swept fraction is plotted
/// as a plain number.
pub fn sweep_axis(values: &[String]) -> SweepAxis {
    let numbers: Option<Vec<f64>> = values
        .iter()
        .map(|v| v.trim().parse::<f64>().ok().filter(|x| x.is_finite()))
        .collect();
    if let Some(xs) = numbers.filter(|xs| !xs.is_empty()) {
        return SweepAxis::Numeric {
            unit: Unit::Count,
            xs,
        };
    }
    let durations: Option<Vec<f64>> = values
        .iter()
        .map(|v| {
            let text = v.trim().strip_prefix('"')?.strip_suffix('"')?;
            Some(text.parse::<SimDuration>().ok()?.as_nanos() as f64)
        })
        .collect();
    match durations.filter(|xs| !xs.is_empty()) {
        Some(xs) => SweepAxis::Numeric {
            unit: Unit::Nanos,
            xs,
        },
        None => SweepAxis::Categories,
    }
}

/// What a sweep chart shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SweepChartKind {
    /// The share of seeds where check `i` (in the scenario's check order) held.
    Held(usize),
    /// The mean over seeds of table row `i`.
    Mean(usize),
}

/// One chart of a sweep, ready to render.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepChart {
    pub kind: SweepChartKind,
    /// The check's name or the row's expression, for a file name.
    pub subject: String,
    pub spec: ParamChartSpec,
}

/// The charts of a sweep of `param` over `points` of `scenario` (as [`sweep`] ran them):
/// for each check, the share of seeds where it held against the parameter, with a 95%
/// Wilson interval as error bars; for each table row, the mean over seeds with a 95% t
/// interval as a band; one line per variant in both.
pub fn sweep_charts(scenario: &Scenario, param: &str, points: &[SweepPoint]) -> Vec<SweepChart> {
    let values: Vec<String> = points.iter().map(|p| p.value.clone()).collect();
    let (x_scale, xs) = match sweep_axis(&values) {
        SweepAxis::Numeric { unit, xs } => (ParamScale::Numeric(unit), xs),
        SweepAxis::Categories => (
            ParamScale::Categories(values.clone()),
            (0..values.len()).map(|i| i as f64).collect(),
        ),
    };
    assert_eq!(xs.len(), points.len(), "one x per point");
    let seeds = points.first().map_or(0, |p| p.report.seeds.len());
    let seeds_text = if seeds == 1 {
        "1 seed".to_owned()
    } else {
        format!("{seeds} seeds")
    };
    let variants: Vec<&str> = points.first().map_or(Vec::new(), |p| {
        p.report.variants.iter().map(|v| v.name.as_str()).collect()
    });
    // One line per variant, from a statistic of the variant's report at each point.
    let lines = |stat: &dyn Fn(&VariantReport) -> Option<Estimate>| -> Vec<ParamLine> {
        variants
            .iter()
            .enumerate()
            .map(|(slot, name)| ParamLine {
                label: (*name).to_owned(),
                points: points
                    .iter()
                    .zip(&xs)
                    .map(|(p, &x)| {
                        let estimate = p.report.variants.get(slot).and_then(stat);
                        ParamPoint {
                            x,
                            y: estimate.map_or(f64::NAN, |e| e.value),
                            interval: estimate.and_then(|e| e.interval),
                        }
                    })
                    .collect(),
            })
            .collect()
    };
    let mut charts = Vec::new();
    for (i, check) in scenario.checks.iter().enumerate() {
        let series = lines(&|v| {
            let s = v.summary.get(i)?;
            wilson_95(s.holds, s.holds + s.fails)
        });
        charts.push(SweepChart {
            kind: SweepChartKind::Held(i),
            subject: check.name().to_owned(),
            spec: ParamChartSpec {
                title: format!("{}: seeds where it held", check.name()),
                x_label: param.to_owned(),
                x_scale: x_scale.clone(),
                y_label: "seeds where it held".to_owned(),
                unit: Unit::Ratio,
                y_span: Some((0.0, 1.0)),
                series,
                // Error bars, not bands: with a few seeds a share's interval is wide (0 of
                // 5 is 0-43%), variants often share a value (0% or 100%), and their bands
                // pile up into one muddy block where bars, side by side, stay apart.
                intervals: IntervalStyle::ErrorBars,
                interval_label: format!("95% Wilson interval, {seeds_text}"),
            },
        });
    }
    for (i, row) in scenario.table.iter().enumerate() {
        let series = lines(&|v| {
            let xs: Vec<f64> = v
                .runs
                .iter()
                .filter_map(|r| r.rows.get(i).copied()?)
                .collect();
            mean_95(&xs)
        });
        charts.push(SweepChart {
            kind: SweepChartKind::Mean(i),
            subject: row.to_string(),
            spec: ParamChartSpec {
                title: format!("{row}: mean over {seeds_text}"),
                x_label: param.to_owned(),
                x_scale: x_scale.clone(),
                y_label: row.to_string(),
                unit: scenario.table_units[i],
                y_span: None,
                series,
                intervals: IntervalStyle::Band,
                interval_label: "95% t interval of the mean".to_owned(),
            },
        });
    }
    charts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_values_cover_the_range_inclusively() {
        assert_eq!(
            sweep_values("10..50:10").unwrap(),
            ["10", "20", "30", "40", "50"]
        );
        assert_eq!(sweep_values("1..4:2").unwrap(), ["1", "3"]);
        assert_eq!(
            sweep_values("0.1..0.5:0.1").unwrap(),
            ["0.1", "0.2", "0.3", "0.4", "0.5"]
        );
        assert_eq!(
            sweep_values("100ms..300ms:100ms").unwrap(),
            ["\"100ms\"", "\"200ms\"", "\"300ms\""]
        );
        assert_eq!(
            sweep_values("RoundRobin, Random").unwrap(),
            ["RoundRobin", "Random"]
        );
        assert!(sweep_values("5..1:1").is_err());
        assert!(sweep_values("1..5:0").is_err());
        assert!(sweep_values("1..x:1").is_err());
        assert!(sweep_values("0..100000:1").is_err());
        assert!(sweep_values("a,,b").is_err());
    }

    #[test]
    fn shards_partition_the_seeds() {
        let all = seeds(7, 10, None);
        assert_eq!(all, (7..17).collect::<Vec<_>>());
        let mut joined: Vec<u64> = (1..=3)
            .flat_map(|index| seeds(7, 10, Some(Shard { index, count: 3 })))
            .collect();
        joined.sort_unstable();
        assert_eq!(joined, all);
        assert_eq!(
            seeds(7, 10, Some(Shard { index: 1, count: 3 })),
            [7, 10, 13, 16]
        );
    }

    #[test]
    fn sweep_values_find_their_axis() {
        let strings = |vs: &[&str]| vs.iter().map(|v| (*v).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            sweep_axis(&sweep_values("10..30:10").unwrap()),
            SweepAxis::Numeric {
                unit: Unit::Count,
                xs: vec![10.0, 20.0, 30.0]
            }
        );
        assert_eq!(
            sweep_axis(&sweep_values("0.1..0.2:0.1").unwrap()),
            SweepAxis::Numeric {
                unit: Unit::Count,
                xs: vec![0.1, 0.2]
            }
        );
        assert_eq!(
            sweep_axis(&sweep_values("100ms..1s:450ms").unwrap()),
            SweepAxis::Numeric {
                unit: Unit::Nanos,
                xs: vec![100e6, 550e6, 1_000e6]
            }
        );
        assert_eq!(
            sweep_axis(&strings(&["RoundRobin", "Random"])),
            SweepAxis::Categories
        );
        assert_eq!(
            sweep_axis(&strings(&["10", "\"1s\""])),
            SweepAxis::Categories,
            "a number and a duration share no axis"
        );
        assert_eq!(sweep_axis(&strings(&["inf"])), SweepAxis::Categories);
        assert_eq!(sweep_axis(&[]), SweepAxis::Categories);
    }
}
