//! The JSON report: what `faultline run`, `check` and `merge` write to `report.json` and print
//! with `--json`, and what shards write so that `faultline merge` can join them into the report
//! of one run. It is the stable interface other tools read, so it carries a schema name and a
//! version, and changes to it are additions.
//!
//! Schema `faultline.report`, version 1 (every time is nanoseconds of virtual time; hashes and
//! digests are `0x`-prefixed hexadecimal strings, since JSON numbers lose precision past 2^53):
//!
//! ```text
//! {
//!   "schema": "faultline.report", "version": 1,
//!   "command": "run" | "check" | "merge",
//!   "scenario": { "name", "about", "file", "digest", "duration_ns", "sample_ns",
//!                 "checks": [ { "name", "class": "safety" | "liveness", "value" } ],
//!                 "rows": [ "<metric expression>" ],
//!                 "faults": [ { "label", "from_ns", "until_ns" } ] },
//!   "seeds": [ <u64> ],                     // every seed run, ascending
//!   "shard": null | { "index": K, "count": N },
//!   "variants": [ {
//!       "name", "about", "set": [ { "path", "value" } ],
//!       "expect": { "<check>": "Holds" | "Fails" | "FailsOnSome" },
//!       "runs": [ { "seed", "ended", "limit_hit", "trace_hash", "events", "end_ns",
//!                   "checks": [ { "holds", "value", "at_ns", "detail" } ],   // in check order
//!                   "rows": [ <number> | null ] } ],                         // in row order
//!       "summary": [ { "check", "holds", "fails", "expect", "met",
//!                      "median": null | { "value", "lo", "hi", "samples" },    // over seeds
//!                      "effect": null | { "value", "lo", "hi", "samples" } } ], // vs variant 0
//!       "met": bool } ],
//!   "outcome": { "ok": bool, "exit_code": 0 | 2 | 3, "reason": "..." }
//! }
//! ```
//!
//! `exit_code` follows the command line's classes: 0 every expectation met, 2 a safety check
//! missed its expectation, 3 a liveness check did, or a run ended at a limit.
//!
//! Schema `faultline.sweep`, version 1: what `faultline sweep` writes to `sweep.json` and
//! prints with `--json` ([`Sweep`]). One run report per value of the parameter, each of
//! command `sweep` and with the same seeds, so that a point can be read (or charted) as
//! any report is:
//!
//! ```text
//! {
//!   "schema": "faultline.sweep", "version": 1,
//!   "param": "<override path>",             // api.workers
//!   "points": [ {                           // in the order the values were given
//!       "value": "<RON text>",              // as it was set: 20, 0.5, "\"100ms\"", RoundRobin
//!       "report": { <faultline.report, version 1> } } ]
//! }
//! ```
//!
//! A point's report describes the scenario as it was at that value (its `digest` covers the
//! override), so two points never look like shards of one run to `faultline merge`.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::check::{CheckClass, Outcome};
use crate::report::stats::{Estimate, median_95, median_difference_95};
use crate::scenario::Expect;

pub const SCHEMA: &str = "faultline.report";
pub const VERSION: u32 = 1;
pub const SWEEP_SCHEMA: &str = "faultline.sweep";
pub const SWEEP_VERSION: u32 = 1;

/// A whole sweep: the reports of one scenario at each value of one parameter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sweep {
    pub schema: String,
    pub version: u32,
    /// The override path the sweep set (`api.workers`).
    pub param: String,
    pub points: Vec<SweepPoint>,
}

/// One value of a sweep's parameter and the report of the runs there.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepPoint {
    /// The value as RON text, as it was set: `20`, `"100ms"` (quotes included), `RoundRobin`.
    pub value: String,
    pub report: Report,
}

impl Sweep {
    /// A sweep document of the current schema and version.
    pub fn new(param: impl Into<String>, points: Vec<SweepPoint>) -> Sweep {
        Sweep {
            schema: SWEEP_SCHEMA.to_owned(),
            version: SWEEP_VERSION,
            param: param.into(),
            points,
        }
    }
}

/// A whole report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema: String,
    pub version: u32,
    pub command: String,
    pub scenario: ScenarioInfo,
    pub seeds: Vec<u64>,
    pub shard: Option<Shard>,
    pub variants: Vec<VariantReport>,
    pub outcome: ReportOutcome,
}

/// What was run: enough to label a report and to tell whether two shards ran the same thing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScenarioInfo {
    pub name: String,
    pub about: String,
    pub file: String,
    /// A fingerprint of the scenario text and any overrides.
    #[serde(with = "hex")]
    pub digest: u64,
    pub duration_ns: u64,
    pub sample_ns: u64,
    pub checks: Vec<CheckInfo>,
    pub rows: Vec<String>,
    pub faults: Vec<FaultInfo>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckInfo {
    pub name: String,
    pub class: Class,
    /// The metric expression it judges.
    pub value: String,
}

/// A check's class, which decides the exit code when it misses its expectation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    Safety,
    Liveness,
}

impl From<CheckClass> for Class {
    fn from(c: CheckClass) -> Class {
        match c {
            CheckClass::Safety => Class::Safety,
            CheckClass::Liveness => Class::Liveness,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultInfo {
    pub label: String,
    pub from_ns: u64,
    pub until_ns: u64,
}

/// Which part of the seeds a sharded run covered (1-based index).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Override {
    pub path: String,
    pub value: String,
}

/// One variant's runs and how they measure up to what it expects.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VariantReport {
    pub name: String,
    pub about: String,
    pub set: Vec<Override>,
    pub expect: BTreeMap<String, Expect>,
    pub runs: Vec<SeedRun>,
    pub summary: Vec<CheckSummary>,
    pub met: bool,
}

/// One seed of one variant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeedRun {
    pub seed: u64,
    /// How the run ended: `reached`, `drained`, or `limit:events` / `limit:queue` / `limit:time`.
    pub ended: String,
    pub limit_hit: bool,
    #[serde(with = "hex")]
    pub trace_hash: u64,
    pub events: u64,
    pub end_ns: u64,
    /// One outcome per check, in the scenario's check order.
    pub checks: Vec<Outcome>,
    /// One value per table row, in row order (null: no data).
    pub rows: Vec<Option<f64>>,
}

/// How often a check held in a variant, against what the variant expects of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckSummary {
    pub check: String,
    pub holds: u32,
    pub fails: u32,
    pub expect: Option<Expect>,
    /// Whether the expectation is met on every seed; null when nothing is expected.
    pub met: Option<bool>,
    /// The median of the check's value over the seeds with data, and its 95% interval
    /// (distribution-free, from the order statistics); null without data.
    #[serde(default)]
    pub median: Option<Interval>,
    /// This variant's median minus the first variant's (the baseline's), with a 95% bootstrap
    /// interval: the effect size of a fix. Null for the first variant and without data.
    #[serde(default)]
    pub effect: Option<Interval>,
}

/// A point estimate with its 95% interval (`lo`/`hi` null when one seed says nothing about
/// spread), over `samples` seeds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub value: f64,
    pub lo: Option<f64>,
    pub hi: Option<f64>,
    pub samples: u32,
}

impl From<Estimate> for Interval {
    fn from(e: Estimate) -> Interval {
        Interval {
            value: e.value,
            lo: e.interval.map(|i| i.0),
            hi: e.interval.map(|i| i.1),
            samples: e.samples,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportOutcome {
    pub ok: bool,
    pub exit_code: i32,
    pub reason: String,
}

impl VariantReport {
    /// The values check `i` judged on each seed that had data, in seed order.
    pub fn values(&self, i: usize) -> Vec<f64> {
        self.runs
            .iter()
            .filter_map(|r| r.checks.get(i).and_then(|o| o.value))
            .filter(|v| v.is_finite())
            .collect()
    }

    /// Recomputes `summary` and `met` from `runs` (after runs were added or merged).
    pub fn summarize(&mut self, checks: &[CheckInfo]) {
        self.runs.sort_by_key(|r| r.seed);
        self.summary = checks
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let holds = self
                    .runs
                    .iter()
                    .filter(|r| r.checks.get(i).is_some_and(|o| o.holds))
                    .count() as u32;
                let fails = self.runs.len() as u32 - holds;
                let expect = self.expect.get(&c.name).copied();
                let met = expect.map(|e| match e {
                    Expect::Holds => fails == 0,
                    Expect::Fails => holds == 0,
                    Expect::FailsOnSome => fails > 0,
                });
                CheckSummary {
                    check: c.name.clone(),
                    holds,
                    fails,
                    expect,
                    met,
                    median: median_95(&self.values(i)).map(Interval::from),
                    effect: None,
                }
            })
            .collect();
        self.met = self.summary.iter().all(|s| s.met != Some(false))
            && !self.runs.iter().any(|r| r.limit_hit);
    }
}

impl Report {
    /// Recomputes every summary and the outcome.
    pub fn summarize(&mut self) {
        let checks = self.scenario.checks.clone();
        let mut seeds: Vec<u64> = Vec::new();
        for v in &mut self.variants {
            v.summarize(&checks);
            seeds.extend(v.runs.iter().map(|r| r.seed));
        }
        if let Some((first, rest)) = self.variants.split_first_mut() {
            for v in rest {
                for i in 0..v.summary.len() {
                    let effect = median_difference_95(&first.values(i), &v.values(i));
                    v.summary[i].effect = effect.map(Interval::from);
                }
            }
        }
        seeds.sort_unstable();
        seeds.dedup();
        self.seeds = seeds;
        self.outcome = outcome(&self.scenario.checks, &self.variants);
    }

    /// Joins the reports of shards (or of separate runs) of the same scenario into one, as if
    /// all their seeds had run at once. Fails when they are not of the same scenario text,
    /// have different variants, or disagree about a seed both ran.
    pub fn merge(mut reports: Vec<Report>) -> Result<Report, String> {
        if reports.is_empty() {
            return Err("nothing to merge".into());
        }
        let mut merged = reports.remove(0);
        for r in reports {
            if r.schema != SCHEMA || r.version != VERSION {
                return Err(format!(
                    "a report has schema {} version {}, expected {SCHEMA} version {VERSION}",
                    r.schema, r.version
                ));
            }
            if r.scenario.digest != merged.scenario.digest {
                return Err(format!(
                    "the reports are of different scenarios (or different versions of `{}`): \
                     digests {:#018x} and {:#018x}",
                    merged.scenario.name, merged.scenario.digest, r.scenario.digest
                ));
            }
            let names = |rep: &Report| -> Vec<String> {
                rep.variants.iter().map(|v| v.name.clone()).collect()
            };
            if names(&r) != names(&merged) {
                return Err(format!(
                    "the reports ran different variants: {:?} and {:?}",
                    names(&merged),
                    names(&r)
                ));
            }
            for (into, from) in merged.variants.iter_mut().zip(r.variants) {
                for run in from.runs {
                    match into.runs.iter().find(|x| x.seed == run.seed) {
                        Some(seen) if seen.trace_hash != run.trace_hash => {
                            return Err(format!(
                                "variant `{}` seed {} has two different traces ({:#018x} and \
                                 {:#018x}): the runs are not of the same build",
                                into.name, run.seed, seen.trace_hash, run.trace_hash
                            ));
                        }
                        Some(_) => {}
                        None => into.runs.push(run),
                    }
                }
            }
        }
        merged.command = "merge".into();
        merged.shard = None;
        merged.summarize();
        Ok(merged)
    }
}

/// The outcome of a set of variants: the first class of miss decides the exit code.
fn outcome(checks: &[CheckInfo], variants: &[VariantReport]) -> ReportOutcome {
    let mut safety = Vec::new();
    let mut liveness = Vec::new();
    for v in variants {
        for (s, c) in v.summary.iter().zip(checks) {
            if s.met == Some(false) {
                let expect = match s.expect {
                    Some(Expect::Holds) => "hold on every seed",
                    Some(Expect::FailsOnSome) => "fail on at least one seed",
                    _ => "fail on every seed",
                };
                let line = format!(
                    "`{}` expects `{}` to {expect}; it held on {} of {}",
                    v.name,
                    c.name,
                    s.holds,
                    s.holds + s.fails
                );
                match c.class {
                    Class::Safety => safety.push(line),
                    Class::Liveness => liveness.push(line),
                }
            }
        }
        for r in v.runs.iter().filter(|r| r.limit_hit) {
            liveness.push(format!(
                "`{}` seed {} ended at a limit ({})",
                v.name, r.seed, r.ended
            ));
        }
    }
    let (exit_code, lines) = if !safety.is_empty() {
        (2, [safety, liveness].concat())
    } else if !liveness.is_empty() {
        (3, liveness)
    } else {
        (0, Vec::new())
    };
    ReportOutcome {
        ok: exit_code == 0,
        exit_code,
        reason: if lines.is_empty() {
            "every variant met its expectations".into()
        } else {
            lines.join("; ")
        },
    }
}

/// `u64` as a `0x`-prefixed hexadecimal string.
mod hex {
    use super::*;

    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{v:#018x}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let text = String::deserialize(d)?;
        let digits = text.strip_prefix("0x").unwrap_or(&text);
        u64::from_str_radix(digits, 16).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(seed: u64, holds: bool) -> SeedRun {
        SeedRun {
            seed,
            ended: "end".into(),
            limit_hit: false,
            trace_hash: seed,
            events: 1,
            end_ns: 1,
            checks: vec![Outcome {
                holds,
                value: Some(if holds { 1.0 } else { 2.0 }),
                at_ns: None,
                detail: String::new(),
            }],
            rows: Vec::new(),
        }
    }

    fn judged(expect: Expect, held: &[bool]) -> (VariantReport, ReportOutcome) {
        let checks = [CheckInfo {
            name: "storm".into(),
            class: Class::Liveness,
            value: "lag".into(),
        }];
        let mut v = VariantReport {
            name: "baseline".into(),
            about: String::new(),
            set: Vec::new(),
            expect: BTreeMap::from([("storm".to_string(), expect)]),
            runs: (1..).zip(held).map(|(seed, &h)| run(seed, h)).collect(),
            summary: Vec::new(),
            met: false,
        };
        v.summarize(&checks);
        let o = outcome(&checks, std::slice::from_ref(&v));
        (v, o)
    }

    /// `FailsOnSome` is met by one failing seed among many, where `Fails` is not; a run where
    /// every seed held misses it, and says which expectation it missed.
    #[test]
    fn fails_on_some_needs_one_failing_seed_and_fails_needs_them_all() {
        let mixed = [true, false, true, true];
        assert!(judged(Expect::FailsOnSome, &mixed).0.met);
        assert!(!judged(Expect::Fails, &mixed).0.met);
        assert!(judged(Expect::Fails, &[false, false]).0.met);
        assert!(judged(Expect::FailsOnSome, &[false]).0.met);
        let (v, o) = judged(Expect::FailsOnSome, &[true, true, true]);
        assert!(!v.met);
        assert_eq!(o.exit_code, 3, "a liveness check that missed");
        assert_eq!(
            o.reason,
            "`baseline` expects `storm` to fail on at least one seed; it held on 3 of 3"
        );
        let (_, o) = judged(Expect::Fails, &mixed);
        assert!(
            o.reason
                .contains("to fail on every seed; it held on 3 of 4")
        );
    }
}
