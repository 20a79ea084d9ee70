//! Property tests over scenarios: proptest strategies for fault plans, parameters and seeds; a
//! [`Property`] that runs one variant of a scenario on generated cases and judges one of its
//! checks; and shrinking of a failure down to a scenario file that replays it with one command.
//!
//! A case is a seed, a fault plan and a value for each parameter. A [`FaultSpace`] describes
//! the plans (which kinds of fault, whom they hit, how many, when, how long, how hard), a
//! [`Param`] the values of one override path (the paths of a variant's `set`), and a range the
//! seeds. Every case is loaded the way a file is — the parameters through
//! [`Scenario::with_overrides`], the plan through [`Scenario::with_faults`] — so a case that
//! runs is a case that a scenario file can state.
//!
//! ```no_run
//! use faultline::prop::{FaultSpace, Param, Property};
//! use faultline::NemesisKind;
//! use faultline::scenario::{Expect, Scenario, shipped};
//!
//! let (file, text) = shipped("traffic_spike").unwrap();
//! let s = Scenario::from_str(text, file).unwrap();
//! let slowdowns = FaultSpace::for_scenario(&s)
//!     .kinds([NemesisKind::Slow])
//!     .targets(["api"])
//!     .slow_factor(1.1, 4.0);
//! let verdict = Property::new(&s)
//!     .variant("deadline shedding")
//!     .check("goodput during the spike")
//!     .expect(Expect::Holds)
//!     .faults(slowdowns)
//!     .cases(16)
//!     .run();
//! if let Err(failure) = verdict {
//!     // A counterexample, shrunk, with the text of a scenario file that replays it.
//!     println!("{failure}");
//! }
//! ```
//!
//! **Shrinking.** proptest shrinks through a value tree; the trees here shrink greedily and to a
//! fixed point, in the spirit of Hypothesis: from the smallest failing case found so far they
//! try, in order, to drop each fault, to shorten each window from its end and from its start,
//! to make each fault milder (a factor nearer the mild end, a smaller clock skew, fewer hosts on
//! each side of a cut), to move each window earlier, to aim it at the first target, to move each
//! parameter toward its mild end, and to use the first seed of the range. Each way is a binary
//! search over how far to go (all the way first, then one step, then halves), a change that
//! still fails is kept, and rounds repeat until one changes nothing. Windows move *earlier*
//! because, of two windows of the same length, the earlier one ends sooner and leaves the
//! system more time to recover before the run ends: it is the milder; and it brings unrelated
//! faults to the same canonical times, so two counterexamples read alike. Shrinking only ever
//! makes a plan smaller, down to no fault at all: a failure that needs no fault is worth
//! knowing. Candidates that passed once are never run again.
//!
//! **Determinism.** The proptest runner is seeded from [`Property::runner_seed`] (ChaCha), its
//! failure persistence is off and every setting is given explicitly, so no `PROPTEST_*`
//! variable, file or clock changes which cases run or how they shrink: the same property gives
//! the same counterexample on every machine.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use proptest::prelude::RngCore as _;
use proptest::strategy::{NewTree, Strategy, ValueTree};
use proptest::test_runner::{
    Config, RngAlgorithm, RngSeed, TestCaseError, TestError, TestRng, TestRunner, noop_result_cache,
};
use rand_core::Rng as _;

use crate::check::Outcome;
use crate::engine::rng::stream;
use crate::engine::time::{SimDuration, SimTime};
use crate::fault::{Fault, FaultEntry, FaultPlan, NemesisKind, Skew, suggest};
use crate::net::CutMode;
use crate::scenario::run::run_seed;
use crate::scenario::tree::{self, Node, SourceId, Value};
use crate::scenario::{Expect, Scenario, ScenarioError, fault_plan_node, set_field};

// ---------------------------------------------------------------------------------------------
// Errors

/// Why a property, a space or a shrink cannot run at all (as opposed to a property that runs
/// and fails, which is a [`PropFailure`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PropError {
    #[error("no variant is called `{name}`{}", did_you_mean(suggestion))]
    UnknownVariant {
        name: String,
        suggestion: Option<String>,
    },
    #[error("no check is called `{name}`{}", did_you_mean(suggestion))]
    UnknownCheck {
        name: String,
        suggestion: Option<String>,
    },
    #[error("a property needs a check to judge: `.check(\"name\")`")]
    NoCheck,
    #[error("fault space: {0}")]
    Space(String),
    #[error("parameter `{path}`: {message}")]
    Param { path: String, message: String },
    #[error("seeds: {0}")]
    Seeds(String),
    /// A case that does not load: a parameter value or a fault plan the scenario rejects.
    #[error("a case does not load: {0}")]
    Case(Box<ScenarioError>),
    /// The replay file does not load: a bug in the writer, reported rather than written.
    #[error("the replay file does not load (a bug): {0}")]
    Replay(Box<ScenarioError>),
    #[error("the proptest runner gave up: {0}")]
    Runner(String),
    #[error("cannot write {path}: {message}")]
    Io { path: String, message: String },
}

fn did_you_mean(s: &Option<String>) -> String {
    s.as_ref()
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// The runner

/// A proptest runner set up the faultline way: ChaCha seeded from `seed`, no failure
/// persistence, no wall-clock limit on shrinking, at most `shrink_runs_max` runs of the test
/// while shrinking (0 turns shrinking off), and nothing read from `PROPTEST_*` variables. The
/// same arguments give the same cases in the same order, everywhere.
pub fn runner(cases: u32, shrink_runs_max: u32, seed: u64) -> TestRunner {
    let config = Config {
        cases,
        max_local_rejects: 65_536,
        max_global_rejects: 1_024,
        max_flat_map_regens: 1_000_000,
        failure_persistence: None,
        source_file: None,
        test_name: None,
        // A time limit would make the result depend on the machine's speed.
        max_shrink_time: 0,
        max_shrink_iters: shrink_runs_max,
        max_default_size_range: 100,
        result_cache: noop_result_cache,
        verbose: 0,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(seed),
        ..Config::default()
    };
    let mut key = [0u8; 32];
    stream(seed, "prop.runner").fill_bytes(&mut key);
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &key))
}

/// A uniform draw in `0..n` (0 when `n` is 0). The modulo bias is below 2^-40 for the small
/// `n` used here, and the draw is the same on every machine.
fn below(rng: &mut TestRng, n: u64) -> u64 {
    if n == 0 { 0 } else { rng.next_u64() % n }
}

// ---------------------------------------------------------------------------------------------
// The shrinker

/// One way of making a case simpler; `k` says how far ([`Space::reach`] is the farthest).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Drop fault `i`.
    Remove(usize),
    /// Shorten fault `i`'s window by `k` grains from its end.
    TrimEnd(usize),
    /// Shorten fault `i`'s window by `k` grains from its start.
    TrimStart(usize),
    /// Make fault `i` `k` grid steps milder.
    Milder(usize),
    /// Take host `h` out of fault `i`'s cut.
    DropHost(usize, usize),
    /// Move fault `i`'s window `k` grains earlier.
    Earlier(usize),
    /// Aim fault `i` at the first target (or host) of the space.
    FirstTarget(usize),
    /// Move parameter `i` `k` values toward its mild end.
    Param(usize),
    /// Use the first seed of the range.
    Seed,
}

impl Step {
    /// The same step after fault `removed` was dropped: the faults after it moved down one,
    /// and a step of the dropped fault is gone.
    fn after_remove(self, removed: usize) -> Option<Step> {
        let at = |i: usize| match i.cmp(&removed) {
            std::cmp::Ordering::Less => Some(i),
            std::cmp::Ordering::Equal => None,
            std::cmp::Ordering::Greater => Some(i - 1),
        };
        Some(match self {
            Step::Remove(i) => Step::Remove(at(i)?),
            Step::TrimEnd(i) => Step::TrimEnd(at(i)?),
            Step::TrimStart(i) => Step::TrimStart(at(i)?),
            Step::Milder(i) => Step::Milder(at(i)?),
            Step::DropHost(i, h) => Step::DropHost(at(i)?, h),
            Step::Earlier(i) => Step::Earlier(at(i)?),
            Step::FirstTarget(i) => Step::FirstTarget(at(i)?),
            Step::Param(_) | Step::Seed => self,
        })
    }
}

/// A space of values described by genomes the shrinker edits. Every genome a space produces
/// or an `apply` returns renders to a valid value; every step makes a genome strictly smaller
/// in one well-founded order (fewer faults, then shorter windows, milder faults, fewer hosts
/// in cuts, earlier windows, first targets, milder parameters, the first seed), so shrinking
/// ends.
trait Space: fmt::Debug {
    type Genome: Clone + PartialEq + fmt::Debug;
    type Value: Clone + fmt::Debug;
    fn render(&self, g: &Self::Genome) -> Self::Value;
    /// The steps to try on `g`, the most valuable first.
    fn steps(&self, g: &Self::Genome) -> Vec<Step>;
    /// How far `step` can go from `g`; 0 when it does not apply.
    fn reach(&self, g: &Self::Genome, step: Step) -> u64;
    /// `g` after `step` taken `k` times, `1 <= k <= reach`.
    fn apply(&self, g: &Self::Genome, step: Step, k: u64) -> Self::Genome;
}

/// A binary search for the farthest `k` a step can go while the case still fails: `fail` is
/// the farthest known to fail (0: the search's base), `pass` the nearest known to pass.
#[derive(Clone, Debug)]
struct Search<G> {
    step: Step,
    base: G,
    reach: u64,
    fail: u64,
    pass: u64,
    probes: u32,
    trying: u64,
}

impl<G> Search<G> {
    /// All the way first (a step often succeeds outright: a fault that is not needed), then
    /// one step (a dimension already at its edge costs two runs, not a whole search), then
    /// halves.
    fn next_k(&self) -> Option<u64> {
        if self.pass <= self.fail + 1 {
            return None;
        }
        Some(match self.probes {
            0 => self.reach,
            1 => 1,
            _ => self.fail + (self.pass - self.fail) / 2,
        })
    }
}

/// A proptest value tree that shrinks greedily to a fixed point (see the module docs).
///
/// proptest calls `simplify` after the current value failed and `complicate` after it passed;
/// either answers with the next candidate (true) or, when none is left, goes back to the
/// smallest failing value and answers false.
#[derive(Debug)]
struct Greedy<S: Space> {
    space: Arc<S>,
    best: S::Genome,
    current: S::Genome,
    /// The steps left in this round, the next one last.
    todo: Vec<Step>,
    progressed: bool,
    search: Option<Search<S::Genome>>,
    /// Candidates that passed: never run twice.
    passed: Vec<S::Genome>,
    started: bool,
    /// Candidates left to offer; None: as many as the runner asks for.
    budget: Option<u32>,
}

impl<S: Space> Greedy<S> {
    fn new(space: Arc<S>, genome: S::Genome, budget: Option<u32>) -> Self {
        Greedy {
            space,
            best: genome.clone(),
            current: genome,
            todo: Vec::new(),
            progressed: false,
            search: None,
            passed: Vec::new(),
            started: false,
            budget,
        }
    }

    fn start_round(&mut self) {
        self.todo = self.space.steps(&self.best);
        self.todo.reverse();
        self.search = None;
    }

    fn failed(&mut self) {
        if !self.started {
            self.started = true;
            self.best = self.current.clone();
            self.start_round();
            return;
        }
        if self.current == self.best {
            // Asked again after the search ended: nothing new failed.
            return;
        }
        self.best = self.current.clone();
        self.progressed = true;
        let Some(search) = &mut self.search else {
            return;
        };
        search.fail = search.trying;
        search.probes += 1;
        if let Step::Remove(removed) = search.step {
            // The faults after the dropped one moved down: so do the steps left to try.
            self.todo = self
                .todo
                .iter()
                .filter_map(|s| s.after_remove(removed))
                .collect();
        }
    }

    fn passed(&mut self) {
        self.passed.push(self.current.clone());
        if let Some(search) = &mut self.search {
            search.pass = search.trying;
            search.probes += 1;
        }
    }

    /// Moves to the next candidate; false (and back at the best) when there is none.
    fn advance(&mut self) -> bool {
        if self.budget == Some(0) {
            self.current = self.best.clone();
            return false;
        }
        let offered = self.offer();
        if offered && let Some(b) = &mut self.budget {
            *b -= 1;
        }
        offered
    }

    fn offer(&mut self) -> bool {
        loop {
            if let Some(search) = &mut self.search {
                if let Some(k) = search.next_k() {
                    debug_assert!(k >= 1 && k <= search.reach);
                    search.trying = k;
                    let candidate = self.space.apply(&search.base, search.step, k);
                    if self.passed.contains(&candidate) || candidate == self.best {
                        search.pass = k;
                        search.probes += 1;
                        continue;
                    }
                    self.current = candidate;
                    return true;
                }
                self.search = None;
            }
            if let Some(step) = self.todo.pop() {
                let reach = self.space.reach(&self.best, step);
                if reach > 0 {
                    self.search = Some(Search {
                        step,
                        base: self.best.clone(),
                        reach,
                        fail: 0,
                        pass: reach + 1,
                        probes: 0,
                        trying: 0,
                    });
                }
                continue;
            }
            if self.progressed {
                self.progressed = false;
                self.start_round();
                continue;
            }
            self.current = self.best.clone();
            return false;
        }
    }
}

impl<S: Space> ValueTree for Greedy<S> {
    type Value = S::Value;

    fn current(&self) -> S::Value {
        self.space.render(&self.current)
    }

    fn simplify(&mut self) -> bool {
        self.failed();
        self.advance()
    }

    fn complicate(&mut self) -> bool {
        if !self.started {
            // Called before any failure: nothing to go back to.
            return false;
        }
        self.passed();
        self.advance()
    }
}

// ---------------------------------------------------------------------------------------------
// Fault spaces

/// The fault plans a property draws from: which kinds of fault, whom they hit, how many, when,
/// for how long and how hard. Built for one scenario with defaults ([`FaultSpace::for_scenario`])
/// and adjusted with the builder methods; [`FaultSpace::strategy`] checks it against the
/// scenario and gives the proptest strategy.
///
/// Every fault is a window (it ends by undoing itself: a crash by a restart, a pause by a
/// resume, a slowdown by the normal speed, a cut by its heal, a skewed clock by the true time)
/// whose start and length are whole multiples of the grain, inside the time range, no longer
/// than the longest window. So every plan drawn names only actors and hosts that exist and ends
/// inside the run.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultSpace {
    scenario: String,
    kinds: Vec<NemesisKind>,
    targets: Vec<String>,
    hosts: Vec<String>,
    faults_max: usize,
    from: SimTime,
    until: SimTime,
    window_max: SimDuration,
    grain: SimDuration,
    slow_mild: f64,
    slow_harsh: f64,
    slow_step: f64,
    skew_max: SimDuration,
    skew_step: SimDuration,
    /// What the scenario has, for validation.
    known_actors: Vec<String>,
    known_hosts: Vec<String>,
    end: SimTime,
}

impl FaultSpace {
    /// The defaults for `s`: every kind of fault (cuts only with two hosts or more), every
    /// component as a target, every host, at most 3 faults, anywhere in the run, windows up to
    /// a quarter of it, on a grain of the scenario's sample interval; slowdowns from 1.5x to
    /// 10x in steps of 0.1, clock skews up to 10 s in steps of 100 ms.
    pub fn for_scenario(s: &Scenario) -> FaultSpace {
        let actors: Vec<String> = s
            .variants
            .first()
            .map(|v| v.components.iter().map(|c| c.name.clone()).collect())
            .unwrap_or_default();
        let end = SimTime::ZERO.saturating_add(s.duration);
        let grain = if s.sample.is_zero() {
            SimDuration::from_secs(1)
        } else {
            s.sample
        };
        let quarter = SimDuration::from_nanos(s.duration.as_nanos() / 4);
        let window_max = SimDuration::from_nanos(
            (quarter.as_nanos() / grain.as_nanos()).max(1) * grain.as_nanos(),
        );
        let mut kinds = vec![
            NemesisKind::Crash,
            NemesisKind::Pause,
            NemesisKind::Slow,
            NemesisKind::ClockSkew,
        ];
        if s.hosts.len() >= 2 {
            kinds.extend([NemesisKind::Partition, NemesisKind::OneWay]);
        }
        FaultSpace {
            scenario: s.name.clone(),
            kinds,
            targets: actors.clone(),
            hosts: s.hosts.clone(),
            faults_max: 3,
            from: SimTime::ZERO,
            until: end,
            window_max,
            grain,
            slow_mild: 1.5,
            slow_harsh: 10.0,
            slow_step: 0.1,
            skew_max: SimDuration::from_secs(10),
            skew_step: SimDuration::from_millis(100),
            // Faults may also name a consumer group's replicas (`workers-1`).
            known_actors: s.fault_targets(),
            known_hosts: s.hosts.clone(),
            end,
        }
    }

    /// The kinds of fault drawn: `Crash` (a crash, then a restart at the window's end),
    /// `Pause`, `Slow`, `Partition` (two groups of hosts), `OneWay` (one direction cut) and
    /// `ClockSkew` (a host's clock offset).
    pub fn kinds(mut self, kinds: impl IntoIterator<Item = NemesisKind>) -> Self {
        self.kinds = kinds.into_iter().collect();
        self.kinds.sort();
        self.kinds.dedup();
        self
    }

    /// The actors or hosts crashes, pauses and slowdowns hit. The first is where shrinking
    /// aims a fault.
    pub fn targets<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.targets = names.into_iter().map(Into::into).collect();
        self
    }

    /// The hosts cuts split and clocks skew on.
    pub fn hosts<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.hosts = names.into_iter().map(Into::into).collect();
        self
    }

    /// At most this many faults in a plan (each count from 0 is equally likely).
    pub fn faults_max(mut self, n: usize) -> Self {
        self.faults_max = n;
        self
    }

    /// Every window lies in `[from, until]`.
    pub fn between(mut self, from: SimTime, until: SimTime) -> Self {
        self.from = from;
        self.until = until;
        self
    }

    /// The longest window.
    pub fn window_max(mut self, d: SimDuration) -> Self {
        self.window_max = d;
        self
    }

    /// Windows start and last whole multiples of this (counted from the range's start).
    pub fn grain(mut self, d: SimDuration) -> Self {
        self.grain = d;
        self
    }

    /// Slowdown factors from `mild` (where shrinking heads) to `harsh`, in steps of 0.1.
    pub fn slow_factor(mut self, mild: f64, harsh: f64) -> Self {
        self.slow_mild = mild;
        self.slow_harsh = harsh;
        self
    }

    /// Clock skews of `step`, `2 * step`, ... up to `max`, ahead or behind.
    pub fn skew(mut self, max: SimDuration, step: SimDuration) -> Self {
        self.skew_max = max;
        self.skew_step = step;
        self
    }

    /// Checks the space against the scenario it was made for.
    pub fn validate(&self) -> Result<(), PropError> {
        self.compile().map(|_| ())
    }

    /// The proptest strategy of the space's plans, after [`FaultSpace::validate`].
    pub fn strategy(&self) -> Result<PlanStrategy, PropError> {
        Ok(PlanStrategy(Arc::new(self.compile()?)))
    }

    fn compile(&self) -> Result<PlanSpace, PropError> {
        let err = |m: String| Err(PropError::Space(m));
        let uses_targets = self.kinds.iter().any(|k| {
            matches!(
                k,
                NemesisKind::Crash | NemesisKind::Pause | NemesisKind::Slow
            )
        });
        let uses_cuts = self
            .kinds
            .iter()
            .any(|k| matches!(k, NemesisKind::Partition | NemesisKind::OneWay));
        if self.kinds.is_empty() && self.faults_max > 0 {
            return err("no kinds of fault to draw (`.kinds([...])`)".into());
        }
        if uses_targets && self.targets.is_empty() {
            return err("crashes, pauses and slowdowns need a target (`.targets([...])`)".into());
        }
        let actors_and_hosts: Vec<&str> = self
            .known_actors
            .iter()
            .chain(&self.known_hosts)
            .map(String::as_str)
            .collect();
        for t in &self.targets {
            if !actors_and_hosts.contains(&t.as_str()) {
                return err(format!(
                    "no component or host of `{}` is called `{t}`{}",
                    self.scenario,
                    did_you_mean(&suggest(t, actors_and_hosts.iter().copied()))
                ));
            }
        }
        for h in &self.hosts {
            if !self.known_hosts.contains(h) {
                return err(format!(
                    "no host of `{}` is called `{h}`{}",
                    self.scenario,
                    did_you_mean(&suggest(h, self.known_hosts.iter().map(String::as_str)))
                ));
            }
        }
        if self.kinds.contains(&NemesisKind::ClockSkew) && self.hosts.is_empty() {
            return err("clock skews need a host (`.hosts([...])`)".into());
        }
        if uses_cuts && self.hosts.len() < 2 {
            return err(format!(
                "partitions and one-way cuts need two hosts or more, the space has {}",
                self.hosts.len()
            ));
        }
        let hosts = self.hosts.clone();
        let mut distinct = hosts.clone();
        distinct.sort();
        distinct.dedup();
        if distinct.len() != hosts.len() || hosts.len() > 64 {
            return err("the hosts must be distinct, and at most 64".into());
        }
        if self.grain.is_zero() {
            return err("the grain must be positive".into());
        }
        if self.from >= self.until || self.until > self.end {
            return err(format!(
                "the time range [{}, {}] must be non-empty and end by the end of the run ({})",
                self.from, self.until, self.end
            ));
        }
        let grain = self.grain.as_nanos();
        let steps = (self.until.as_nanos() - self.from.as_nanos()) / grain;
        if steps == 0 {
            return err(format!(
                "the time range [{}, {}] is shorter than the grain {}",
                self.from, self.until, self.grain
            ));
        }
        let len_max = self.window_max.as_nanos() / grain;
        if len_max == 0 {
            return err(format!(
                "the longest window ({}) is shorter than the grain ({})",
                self.window_max, self.grain
            ));
        }
        let (mild, harsh, step) = (self.slow_mild, self.slow_harsh, self.slow_step);
        if !(mild.is_finite() && harsh.is_finite() && mild >= 1.0 && harsh >= mild) {
            return err(format!(
                "slowdown factors need 1 <= mild <= harsh, got {mild} and {harsh}"
            ));
        }
        // Whole steps only, with slack for decimal steps binary floats cannot hold (0.1):
        // the harshest factor drawn is never past `harsh`.
        let slow_steps = libm::floor((harsh - mild) / step + 1e-9) as u64;
        if slow_steps > 1_000_000 {
            return err("too many slowdown factors (more than a million steps)".into());
        }
        if self.skew_step.is_zero() || self.skew_max < self.skew_step {
            return err(format!(
                "clock skews need 0 < step <= max, got step {} and max {}",
                self.skew_step, self.skew_max
            ));
        }
        Ok(PlanSpace {
            kinds: self.kinds.clone(),
            targets: self.targets.clone(),
            hosts,
            faults_max: self.faults_max,
            from_ns: self.from.as_nanos(),
            grain_ns: grain,
            steps,
            len_max: len_max.min(steps),
            slow_mild: mild,
            slow_step: step,
            slow_steps,
            skew_step_ns: self.skew_step.as_nanos(),
            skew_steps: self.skew_max.as_nanos() / self.skew_step.as_nanos(),
        })
    }
}

/// A [`FaultSpace`] on its grid.
#[derive(Debug)]
struct PlanSpace {
    kinds: Vec<NemesisKind>,
    targets: Vec<String>,
    hosts: Vec<String>,
    faults_max: usize,
    from_ns: u64,
    grain_ns: u64,
    /// Grains in the time range.
    steps: u64,
    /// The longest window, in grains (at most `steps`).
    len_max: u64,
    slow_mild: f64,
    slow_step: f64,
    slow_steps: u64,
    skew_step_ns: u64,
    /// How many skews there are: `skew_step`, ... `skew_steps * skew_step`.
    skew_steps: u64,
}

/// One fault of a drawn plan, on the space's grid.
#[derive(Clone, Debug, PartialEq)]
struct Gene {
    kind: NemesisKind,
    /// Into the targets (crash, pause, slow) or the hosts (clock skew).
    target: usize,
    /// Grains from the range's start.
    start: u64,
    /// Grains, at least one.
    len: u64,
    /// Grid steps from the mildest: slowdowns `slow_mild + mag * 0.1`, skews `(mag + 1)`
    /// skew steps.
    mag: u64,
    ahead: bool,
    /// For cuts, per host: 0 not in the cut, 1 side `a` (or `from`), 2 side `b` (or `to`).
    sides: Vec<u8>,
}

impl Gene {
    fn aimed(&self) -> bool {
        !matches!(self.kind, NemesisKind::Partition | NemesisKind::OneWay)
    }

    fn graded(&self) -> bool {
        matches!(self.kind, NemesisKind::Slow | NemesisKind::ClockSkew)
    }
}

impl PlanSpace {
    fn draw(&self, rng: &mut TestRng) -> Vec<Gene> {
        let n = below(rng, self.faults_max as u64 + 1) as usize;
        let mut genes: Vec<Gene> = (0..n).map(|_| self.draw_gene(rng)).collect();
        genes.sort_by_key(|g| g.start);
        genes
    }

    fn draw_gene(&self, rng: &mut TestRng) -> Gene {
        let kind = self.kinds[below(rng, self.kinds.len() as u64) as usize];
        let len = 1 + below(rng, self.len_max);
        let start = below(rng, self.steps - len + 1);
        let (target, mag, sides) = match kind {
            NemesisKind::Crash | NemesisKind::Pause => (
                below(rng, self.targets.len() as u64) as usize,
                0,
                Vec::new(),
            ),
            NemesisKind::Slow => (
                below(rng, self.targets.len() as u64) as usize,
                below(rng, self.slow_steps + 1),
                Vec::new(),
            ),
            NemesisKind::ClockSkew => (
                below(rng, self.hosts.len() as u64) as usize,
                below(rng, self.skew_steps),
                Vec::new(),
            ),
            NemesisKind::Partition | NemesisKind::OneWay => (0, 0, self.draw_sides(rng)),
        };
        Gene {
            kind,
            target,
            start,
            len,
            mag,
            ahead: rng.next_u64() & 1 == 0,
            sides,
        }
    }

    /// Each host in side a, side b or neither, both sides non-empty.
    fn draw_sides(&self, rng: &mut TestRng) -> Vec<u8> {
        // Two hosts have two valid cuts of nine draws; 64 tries all fail with a probability
        // under 1e-6, and then the first two hosts are cut from each other.
        for _ in 0..64 {
            let sides: Vec<u8> = self.hosts.iter().map(|_| below(rng, 3) as u8).collect();
            if sides.contains(&1) && sides.contains(&2) {
                return sides;
            }
        }
        let mut sides = vec![0; self.hosts.len()];
        sides[0] = 1;
        sides[1] = 2;
        sides
    }

    fn slow_factor(&self, mag: u64) -> f64 {
        grid_float(self.slow_mild, self.slow_step, mag)
    }

    fn entry(&self, g: &Gene) -> FaultEntry {
        debug_assert!(g.len >= 1 && g.start + g.len <= self.steps);
        let from = self.from_ns + g.start * self.grain_ns;
        let until = from + g.len * self.grain_ns;
        let side = |s: u8| -> Vec<String> {
            self.hosts
                .iter()
                .zip(&g.sides)
                .filter(|(_, x)| **x == s)
                .map(|(h, _)| h.clone())
                .collect()
        };
        let fault = match g.kind {
            NemesisKind::Crash => Fault::Crash {
                target: self.targets[g.target].clone(),
            },
            NemesisKind::Pause => Fault::Pause {
                target: self.targets[g.target].clone(),
            },
            NemesisKind::Slow => Fault::Slow {
                target: self.targets[g.target].clone(),
                factor: self.slow_factor(g.mag),
            },
            NemesisKind::ClockSkew => {
                let by = SimDuration::from_nanos((g.mag + 1) * self.skew_step_ns);
                Fault::ClockOffset {
                    host: self.hosts[g.target].clone(),
                    offset: if g.ahead {
                        Skew::ahead(by)
                    } else {
                        Skew::behind(by)
                    },
                }
            }
            NemesisKind::Partition => Fault::Partition {
                a: side(1),
                b: side(2),
                mode: CutMode::Drop,
            },
            NemesisKind::OneWay => Fault::OneWay {
                from: side(1),
                to: side(2),
                mode: CutMode::Drop,
            },
        };
        FaultEntry::window(SimTime::from_nanos(from), SimTime::from_nanos(until), fault)
    }
}

/// `base + k * step`, with at most 12 decimals: binary noise (`2.3000000000000003`) would
/// otherwise reach the replay file.
fn grid_float(base: f64, step: f64, k: u64) -> f64 {
    let x = base + k as f64 * step;
    float_text(x).parse().unwrap_or(x)
}

/// A float as RON: at most 12 decimals, and always a `.` so that it reads back as a float.
fn float_text(x: f64) -> String {
    let text = format!("{x:.12}");
    let text = text.trim_end_matches('0');
    match text.strip_suffix('.') {
        Some(whole) => format!("{whole}.0"),
        None => text.to_string(),
    }
}

impl Space for PlanSpace {
    type Genome = Vec<Gene>;
    type Value = FaultPlan;

    fn render(&self, g: &Vec<Gene>) -> FaultPlan {
        let mut entries: Vec<FaultEntry> = g.iter().map(|x| self.entry(x)).collect();
        // Shifting windows earlier can reorder them; a plan reads best in time order.
        entries.sort_by_key(|e| e.from);
        FaultPlan { entries }
    }

    fn steps(&self, g: &Vec<Gene>) -> Vec<Step> {
        let mut steps: Vec<Step> = (0..g.len()).rev().map(Step::Remove).collect();
        for (i, gene) in g.iter().enumerate() {
            steps.extend([Step::TrimEnd(i), Step::TrimStart(i), Step::Milder(i)]);
            steps.extend((0..gene.sides.len()).map(|h| Step::DropHost(i, h)));
            steps.extend([Step::Earlier(i), Step::FirstTarget(i)]);
        }
        steps
    }

    fn reach(&self, g: &Vec<Gene>, step: Step) -> u64 {
        let gene = |i: usize| &g[i];
        match step {
            Step::Remove(i) => u64::from(i < g.len()),
            Step::TrimEnd(i) | Step::TrimStart(i) => gene(i).len - 1,
            Step::Milder(i) if gene(i).graded() => gene(i).mag,
            Step::DropHost(i, h) => {
                let side = gene(i).sides[h];
                let others = gene(i).sides.iter().filter(|s| **s == side).count();
                u64::from(side != 0 && others >= 2)
            }
            Step::Earlier(i) => gene(i).start,
            Step::FirstTarget(i) => u64::from(gene(i).aimed() && gene(i).target > 0),
            Step::Milder(_) | Step::Param(_) | Step::Seed => 0,
        }
    }

    fn apply(&self, g: &Vec<Gene>, step: Step, k: u64) -> Vec<Gene> {
        let mut g = g.clone();
        match step {
            Step::Remove(i) => {
                g.remove(i);
            }
            Step::TrimEnd(i) => g[i].len -= k,
            Step::TrimStart(i) => {
                g[i].start += k;
                g[i].len -= k;
            }
            Step::Milder(i) => g[i].mag -= k,
            Step::DropHost(i, h) => g[i].sides[h] = 0,
            Step::Earlier(i) => g[i].start -= k,
            Step::FirstTarget(i) => g[i].target = 0,
            Step::Param(_) | Step::Seed => {}
        }
        g
    }
}

/// The proptest strategy of a [`FaultSpace`]'s plans (see the module docs for how they
/// shrink).
#[derive(Clone, Debug)]
pub struct PlanStrategy(Arc<PlanSpace>);

/// A drawn plan and the ways it shrinks.
#[derive(Debug)]
pub struct PlanTree(Greedy<PlanSpace>);

impl Strategy for PlanStrategy {
    type Tree = PlanTree;
    type Value = FaultPlan;

    fn new_tree(&self, runner: &mut TestRunner) -> NewTree<Self> {
        let genome = self.0.draw(runner.rng());
        Ok(PlanTree(Greedy::new(Arc::clone(&self.0), genome, None)))
    }
}

impl ValueTree for PlanTree {
    type Value = FaultPlan;
    fn current(&self) -> FaultPlan {
        self.0.current()
    }
    fn simplify(&mut self) -> bool {
        self.0.simplify()
    }
    fn complicate(&mut self) -> bool {
        self.0.complicate()
    }
}

// ---------------------------------------------------------------------------------------------
// Parameters

/// The values a property tries for one override path (the paths of a variant's `set`:
/// `api.workers`, `api.pools.primary.pool_size`, `users.arrivals`), from a mild end, where
/// shrinking heads, to a harsh one. Each value is RON text, applied with
/// [`Scenario::with_overrides`] and so validated like a file.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    path: String,
    values: Values,
    template: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
enum Values {
    Int { mild: i64, harsh: i64 },
    Float { mild: f64, harsh: f64, step: f64 },
    Duration { mild: u64, harsh: u64, step: u64 },
    List(Vec<String>),
}

impl Param {
    /// Every integer from `mild` to `harsh` (either may be the larger).
    pub fn int(path: impl Into<String>, mild: i64, harsh: i64) -> Param {
        Param::with(path, Values::Int { mild, harsh })
    }

    /// `mild`, `mild ± step`, ... up to `harsh` (either may be the larger).
    pub fn float(path: impl Into<String>, mild: f64, harsh: f64, step: f64) -> Param {
        Param::with(path, Values::Float { mild, harsh, step })
    }

    /// Durations from `mild` to `harsh` in steps of `step`, written `"250ms"`.
    pub fn duration(
        path: impl Into<String>,
        mild: SimDuration,
        harsh: SimDuration,
        step: SimDuration,
    ) -> Param {
        let values = Values::Duration {
            mild: mild.as_nanos(),
            harsh: harsh.as_nanos(),
            step: step.as_nanos(),
        };
        Param::with(path, values)
    }

    /// These RON values, the mildest first: `["RoundRobin", "LeastOutstanding"]`.
    pub fn values<S: Into<String>>(
        path: impl Into<String>,
        values: impl IntoIterator<Item = S>,
    ) -> Param {
        let values = Values::List(values.into_iter().map(Into::into).collect());
        Param::with(path, values)
    }

    fn with(path: impl Into<String>, values: Values) -> Param {
        Param {
            path: path.into(),
            values,
            template: None,
        }
    }

    /// Writes each value into a RON template where `{}` stands for it, for a number inside a
    /// larger value: `Schedule([("0s", "100/s"), ("2m", "{}/s"), ("4m", "100/s")])`.
    pub fn template(mut self, ron: impl Into<String>) -> Param {
        self.template = Some(ron.into());
        self
    }

    /// The override path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// How many values there are (at least one for a valid parameter).
    pub fn count(&self) -> u64 {
        match &self.values {
            Values::Int { mild, harsh } => mild.abs_diff(*harsh).saturating_add(1),
            Values::Float { mild, harsh, step } => {
                (libm::floor((harsh - mild).abs() / step + 1e-9) as u64).saturating_add(1)
            }
            Values::Duration { mild, harsh, step } => {
                (mild.abs_diff(*harsh) / (*step).max(1)).saturating_add(1)
            }
            Values::List(xs) => xs.len() as u64,
        }
    }

    /// The `k`-th value from the mild end, as RON text (`k < count()`).
    pub fn value(&self, k: u64) -> String {
        let raw = match &self.values {
            Values::Int { mild, harsh } => {
                let v = if harsh >= mild {
                    i128::from(*mild) + i128::from(k)
                } else {
                    i128::from(*mild) - i128::from(k)
                };
                v.to_string()
            }
            Values::Float { mild, harsh, step } => {
                let signed = if harsh >= mild { *step } else { -step };
                float_text(grid_float(*mild, signed, k))
            }
            Values::Duration { mild, harsh, step } => {
                let v = if harsh >= mild {
                    mild.saturating_add(k.saturating_mul(*step))
                } else {
                    mild.saturating_sub(k.saturating_mul(*step))
                };
                format!("\"{}\"", SimDuration::from_nanos(v))
            }
            Values::List(xs) => xs.get(k as usize).cloned().unwrap_or_default(),
        };
        match &self.template {
            Some(t) => t.replace("{}", &raw),
            None => raw,
        }
    }

    fn validate(&self) -> Result<(), PropError> {
        let err = |m: &str| {
            Err(PropError::Param {
                path: self.path.clone(),
                message: m.to_string(),
            })
        };
        match &self.values {
            Values::Float { mild, harsh, step } => {
                if !(mild.is_finite() && harsh.is_finite() && step.is_finite() && *step > 0.0) {
                    return err("needs finite ends and a positive step");
                }
                if (harsh - mild).abs() / step > 1e6 {
                    return err("has more than a million values");
                }
            }
            Values::Duration { step, .. } if *step == 0 => return err("needs a positive step"),
            Values::List(xs) if xs.is_empty() => return err("needs at least one value"),
            _ => {}
        }
        if self.template.as_ref().is_some_and(|t| !t.contains("{}")) {
            return err("the template has no `{}` for the value");
        }
        Ok(())
    }
}

/// A list of [`Param`]s, each value an index from its mild end.
#[derive(Debug)]
struct ParamSpace {
    params: Vec<Param>,
}

impl Space for ParamSpace {
    type Genome = Vec<u64>;
    type Value = Vec<(String, String)>;

    fn render(&self, g: &Vec<u64>) -> Vec<(String, String)> {
        self.params
            .iter()
            .zip(g)
            .map(|(p, k)| (p.path.clone(), p.value(*k)))
            .collect()
    }

    fn steps(&self, g: &Vec<u64>) -> Vec<Step> {
        (0..g.len()).map(Step::Param).collect()
    }

    fn reach(&self, g: &Vec<u64>, step: Step) -> u64 {
        match step {
            Step::Param(i) => g[i],
            _ => 0,
        }
    }

    fn apply(&self, g: &Vec<u64>, step: Step, k: u64) -> Vec<u64> {
        let mut g = g.clone();
        if let Step::Param(i) = step {
            g[i] -= k;
        }
        g
    }
}

/// The proptest strategy of a list of parameters: one `(path, RON value)` each.
#[derive(Clone, Debug)]
pub struct ParamStrategy(Arc<ParamSpace>);

/// Drawn parameter values and the ways they shrink (each toward its mild end).
#[derive(Debug)]
pub struct ParamTree(Greedy<ParamSpace>);

impl ParamStrategy {
    /// The strategy of `params`, after checking each.
    pub fn new(params: &[Param]) -> Result<ParamStrategy, PropError> {
        params.iter().try_for_each(Param::validate)?;
        Ok(ParamStrategy(Arc::new(ParamSpace {
            params: params.to_vec(),
        })))
    }
}

impl Strategy for ParamStrategy {
    type Tree = ParamTree;
    type Value = Vec<(String, String)>;

    fn new_tree(&self, runner: &mut TestRunner) -> NewTree<Self> {
        let genome = self
            .0
            .params
            .iter()
            .map(|p| below(runner.rng(), p.count()))
            .collect();
        Ok(ParamTree(Greedy::new(Arc::clone(&self.0), genome, None)))
    }
}

impl ValueTree for ParamTree {
    type Value = Vec<(String, String)>;
    fn current(&self) -> Self::Value {
        self.0.current()
    }
    fn simplify(&mut self) -> bool {
        self.0.simplify()
    }
    fn complicate(&mut self) -> bool {
        self.0.complicate()
    }
}

// ---------------------------------------------------------------------------------------------
// Cases

/// One case of a property: the seed, the fault plan and the parameter values it runs with.
#[derive(Clone, Debug, PartialEq)]
pub struct Case {
    pub seed: u64,
    pub faults: FaultPlan,
    /// `(override path, RON value)`, in the property's order.
    pub params: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq)]
struct CaseGenome {
    plan: Vec<Gene>,
    params: Vec<u64>,
    seed: u64,
}

/// Plans, parameters and seeds together, so that one greedy shrinker can trade between them.
#[derive(Debug)]
struct CaseSpace {
    /// None: the scenario's own plan, as written.
    plan: Option<PlanSpace>,
    fixed: FaultPlan,
    params: ParamSpace,
    seeds: (u64, u64),
}

impl Space for CaseSpace {
    type Genome = CaseGenome;
    type Value = Case;

    fn render(&self, g: &CaseGenome) -> Case {
        Case {
            seed: g.seed,
            faults: match &self.plan {
                Some(p) => p.render(&g.plan),
                None => self.fixed.clone(),
            },
            params: self.params.render(&g.params),
        }
    }

    fn steps(&self, g: &CaseGenome) -> Vec<Step> {
        let mut steps = match &self.plan {
            Some(p) => p.steps(&g.plan),
            None => Vec::new(),
        };
        steps.extend(self.params.steps(&g.params));
        steps.push(Step::Seed);
        steps
    }

    fn reach(&self, g: &CaseGenome, step: Step) -> u64 {
        match (step, &self.plan) {
            (Step::Seed, _) => u64::from(g.seed != self.seeds.0),
            (Step::Param(_), _) => self.params.reach(&g.params, step),
            (_, Some(p)) => p.reach(&g.plan, step),
            (_, None) => 0,
        }
    }

    fn apply(&self, g: &CaseGenome, step: Step, k: u64) -> CaseGenome {
        let mut g = g.clone();
        match (step, &self.plan) {
            (Step::Seed, _) => g.seed = self.seeds.0,
            (Step::Param(_), _) => g.params = self.params.apply(&g.params, step, k),
            (_, Some(p)) => g.plan = p.apply(&g.plan, step, k),
            (_, None) => {}
        }
        g
    }
}

/// The proptest strategy of a property's cases.
#[derive(Clone, Debug)]
pub struct CaseStrategy {
    space: Arc<CaseSpace>,
    shrink_runs_max: Option<u32>,
}

/// A drawn case and the ways it shrinks.
#[derive(Debug)]
pub struct CaseTree(Greedy<CaseSpace>);

impl Strategy for CaseStrategy {
    type Tree = CaseTree;
    type Value = Case;

    fn new_tree(&self, runner: &mut TestRunner) -> NewTree<Self> {
        let space = &self.space;
        let rng = runner.rng();
        let plan = space.plan.as_ref().map(|p| p.draw(rng)).unwrap_or_default();
        let params = space
            .params
            .params
            .iter()
            .map(|p| below(rng, p.count()))
            .collect();
        let (lo, hi) = space.seeds;
        let seed = lo + below(rng, (hi - lo).saturating_add(1));
        let genome = CaseGenome { plan, params, seed };
        Ok(CaseTree(Greedy::new(
            Arc::clone(space),
            genome,
            self.shrink_runs_max,
        )))
    }
}

impl ValueTree for CaseTree {
    type Value = Case;
    fn current(&self) -> Case {
        self.0.current()
    }
    fn simplify(&mut self) -> bool {
        self.0.simplify()
    }
    fn complicate(&mut self) -> bool {
        self.0.complicate()
    }
}

/// What one run of a case said about the check.
#[derive(Clone, Debug)]
struct Judged {
    outcome: Outcome,
    ended: String,
    limit_hit: bool,
}

/// A scenario loaded with a set of parameter values.
type Loaded = (Vec<(String, String)>, Scenario);

/// Runs cases of one variant of a scenario and reads one check; loads each set of parameter
/// values once.
struct Judge<'a> {
    scenario: &'a Scenario,
    vi: usize,
    ci: usize,
    /// Whether the plan replaces the scenario's own.
    replace_plan: bool,
    loaded: RefCell<Vec<Loaded>>,
    runs: Cell<u32>,
}

impl<'a> Judge<'a> {
    fn new(scenario: &'a Scenario, vi: usize, ci: usize, replace_plan: bool) -> Self {
        Judge {
            scenario,
            vi,
            ci,
            replace_plan,
            loaded: RefCell::new(Vec::new()),
            runs: Cell::new(0),
        }
    }

    /// The scenario with `params` on top of its own overrides, as a sweep point is.
    fn with_params(&self, params: &[(String, String)]) -> Result<Scenario, PropError> {
        if params.is_empty() {
            return Ok(self.scenario.clone());
        }
        if let Some((_, s)) = self.loaded.borrow().iter().find(|(p, _)| p == params) {
            return Ok(s.clone());
        }
        let mut extra = self.scenario.extra.clone();
        extra.extend_from_slice(params);
        let s = Scenario::with_overrides(&self.scenario.text, &self.scenario.file, &extra)
            .map_err(|e| PropError::Case(Box::new(e)))?;
        let mut loaded = self.loaded.borrow_mut();
        // A handful of values are in play at once while shrinking; older ones are not needed.
        if loaded.len() >= 16 {
            loaded.remove(0);
        }
        loaded.push((params.to_vec(), s.clone()));
        Ok(s)
    }

    fn judge(&self, case: &Case) -> Result<Judged, PropError> {
        let mut s = self.with_params(&case.params)?;
        if self.replace_plan {
            s = s
                .with_faults(&case.faults)
                .map_err(|e| PropError::Case(Box::new(e)))?;
        }
        debug_assert_eq!(
            s.variants[self.vi].name,
            self.scenario.variants[self.vi].name
        );
        debug_assert_eq!(
            s.checks[self.ci].name(),
            self.scenario.checks[self.ci].name()
        );
        let (run, _) = run_seed(&s, self.vi, case.seed, false);
        self.runs.set(self.runs.get() + 1);
        let outcome = run.checks[self.ci].clone();
        Ok(Judged {
            outcome,
            ended: run.ended,
            limit_hit: run.limit_hit,
        })
    }
}

fn variant_index(s: &Scenario, name: &str) -> Result<usize, PropError> {
    s.variants
        .iter()
        .position(|v| v.name == name)
        .ok_or_else(|| PropError::UnknownVariant {
            name: name.to_string(),
            suggestion: suggest(name, s.variants.iter().map(|v| v.name.as_str())),
        })
}

fn check_index(s: &Scenario, name: &str) -> Result<usize, PropError> {
    if name.is_empty() {
        return Err(PropError::NoCheck);
    }
    s.checks
        .iter()
        .position(|c| c.name() == name)
        .ok_or_else(|| PropError::UnknownCheck {
            name: name.to_string(),
            suggestion: suggest(name, s.checks.iter().map(|c| c.name())),
        })
}

// ---------------------------------------------------------------------------------------------
// Properties

/// A property of one variant of a scenario: one of its checks holds on every case
/// ([`Expect::Holds`]), or fails on at least one that the harness must find
/// ([`Expect::Fails`], or its synonym here [`Expect::FailsOnSome`]: "exists", so a property
/// about a failure mode cannot pass vacuously).
///
/// A case is a seed from [`Property::seeds`], a plan from [`Property::faults`] (the scenario's
/// own plan when no space is given) and a value of each [`Property::param`]. A case fails when
/// the check does not hold; for [`Expect::Holds`] also when the run ends at a limit (a limit
/// reached is a verdict, not a pass).
#[derive(Clone, Debug)]
pub struct Property {
    scenario: Scenario,
    variant: String,
    check: String,
    expect: Expect,
    faults: Option<FaultSpace>,
    params: Vec<Param>,
    seeds: RangeInclusive<u64>,
    cases: u32,
    runner_seed: u64,
    shrink_runs_max: u32,
}

/// What a property that passed ran.
#[derive(Clone, Debug)]
pub struct PropReport {
    /// Cases drawn and run (not counting runs while shrinking).
    pub cases: u32,
    /// Of those, the ones where the check held.
    pub held: u32,
    /// Every run, shrinking included.
    pub runs: u32,
    /// For [`Expect::Fails`]: the failing case found, shrunk.
    pub witness: Option<Box<Counterexample>>,
}

/// How a property failed.
#[derive(Debug)]
pub enum PropFailure {
    /// [`Expect::Holds`]: a case where the check does not hold, shrunk.
    Counterexample(Box<Counterexample>),
    /// [`Expect::Fails`]: no case made the check fail.
    NotFound { cases: u32 },
    /// The property cannot run.
    Invalid(PropError),
}

impl fmt::Display for PropFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PropFailure::Counterexample(c) => write!(f, "{c}"),
            PropFailure::NotFound { cases } => write!(
                f,
                "no case of {cases} made the check fail: the property expects one to (is the \
                 space too mild, or the failure mode fixed?)"
            ),
            PropFailure::Invalid(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for PropFailure {}

impl From<PropError> for PropFailure {
    fn from(e: PropError) -> Self {
        PropFailure::Invalid(e)
    }
}

impl Property {
    /// A property of `scenario`'s first variant that expects its check to hold on 32 cases of
    /// its own fault plan and seeds from its seed to its seed + 999; name the check with
    /// [`Property::check`].
    pub fn new(scenario: &Scenario) -> Property {
        Property {
            variant: scenario
                .variants
                .first()
                .map(|v| v.name.clone())
                .unwrap_or_default(),
            check: String::new(),
            expect: Expect::Holds,
            faults: None,
            params: Vec::new(),
            seeds: scenario.seed..=scenario.seed.saturating_add(999),
            cases: 32,
            runner_seed: 1,
            shrink_runs_max: 256,
            scenario: scenario.clone(),
        }
    }

    /// The variant to run.
    pub fn variant(mut self, name: impl Into<String>) -> Self {
        self.variant = name.into();
        self
    }

    /// The check to judge, by name.
    pub fn check(mut self, name: impl Into<String>) -> Self {
        self.check = name.into();
        self
    }

    pub fn expect(mut self, expect: Expect) -> Self {
        self.expect = expect;
        self
    }

    /// Fault plans from this space replace the scenario's own.
    pub fn faults(mut self, space: FaultSpace) -> Self {
        self.faults = Some(space);
        self
    }

    /// Adds a parameter (applied to every variant, after their own `set`).
    pub fn param(mut self, param: Param) -> Self {
        self.params.push(param);
        self
    }

    /// The seeds drawn from; shrinking tries the first.
    pub fn seeds(mut self, seeds: RangeInclusive<u64>) -> Self {
        self.seeds = seeds;
        self
    }

    /// How many cases to draw.
    pub fn cases(mut self, n: u32) -> Self {
        self.cases = n;
        self
    }

    /// The seed of proptest's runner: it decides which cases are drawn.
    pub fn runner_seed(mut self, seed: u64) -> Self {
        self.runner_seed = seed;
        self
    }

    /// At most this many runs while shrinking (0: no shrinking).
    pub fn shrink_runs_max(mut self, n: u32) -> Self {
        self.shrink_runs_max = n;
        self
    }

    /// The proptest strategy of the property's cases, checked against the scenario.
    pub fn strategy(&self) -> Result<CaseStrategy, PropError> {
        let (lo, hi) = (*self.seeds.start(), *self.seeds.end());
        if lo > hi {
            return Err(PropError::Seeds(format!("the range {lo}..={hi} is empty")));
        }
        let plan = self.faults.as_ref().map(FaultSpace::compile).transpose()?;
        ParamStrategy::new(&self.params)?;
        let space = CaseSpace {
            plan,
            fixed: self.scenario.faults.clone(),
            params: ParamSpace {
                params: self.params.clone(),
            },
            seeds: (lo, hi),
        };
        Ok(CaseStrategy {
            space: Arc::new(space),
            shrink_runs_max: Some(self.shrink_runs_max),
        })
    }

    /// Runs the property: `Ok` with what ran when it is met, or how it failed.
    pub fn run(&self) -> Result<PropReport, PropFailure> {
        let vi = variant_index(&self.scenario, &self.variant)?;
        let ci = check_index(&self.scenario, &self.check)?;
        let strategy = self.strategy()?;
        // Both ends of every parameter load, or the property is wrong before anything runs.
        for p in &self.params {
            for k in [0, p.count() - 1] {
                let extra = [(p.path.clone(), p.value(k))];
                let judge = Judge::new(&self.scenario, vi, ci, false);
                judge.with_params(&extra)?;
            }
        }
        let judge = Judge::new(&self.scenario, vi, ci, self.faults.is_some());
        let held = Cell::new(0u32);
        let cases = Cell::new(0u32);
        let first: RefCell<Option<Case>> = RefCell::new(None);
        let last: RefCell<Option<(Case, Judged)>> = RefCell::new(None);
        let invalid: RefCell<Option<PropError>> = RefCell::new(None);
        let expect = self.expect;
        // The shrinker keeps to the budget itself, so proptest's own limit is never reached.
        let mut runner = runner(self.cases, u32::MAX - 1, self.runner_seed);
        let result = runner.run(&strategy, |case| {
            if invalid.borrow().is_some() {
                return Ok(());
            }
            let judged = match judge.judge(&case) {
                Ok(j) => j,
                Err(e) => {
                    *invalid.borrow_mut() = Some(e);
                    return Ok(());
                }
            };
            let bad = !judged.outcome.holds || (!expect.is_failure() && judged.limit_hit);
            if first.borrow().is_none() {
                cases.set(cases.get() + 1);
                if !bad {
                    held.set(held.get() + 1);
                }
            }
            if !bad {
                return Ok(());
            }
            let detail = judged.outcome.detail.clone();
            if first.borrow().is_none() {
                *first.borrow_mut() = Some(case.clone());
            }
            *last.borrow_mut() = Some((case, judged));
            Err(TestCaseError::fail(detail))
        });
        if let Some(e) = invalid.into_inner() {
            return Err(PropFailure::Invalid(e));
        }
        let found = match result {
            Ok(()) => None,
            Err(TestError::Fail(_, case)) => Some(case),
            Err(TestError::Abort(reason)) => {
                return Err(PropError::Runner(reason.to_string()).into());
            }
        };
        let (cases, held) = (cases.get(), held.get());
        let Some(case) = found else {
            return if expect.is_failure() {
                Err(PropFailure::NotFound { cases })
            } else {
                Ok(PropReport {
                    cases,
                    held,
                    runs: judge.runs.get(),
                    witness: None,
                })
            };
        };
        // The smallest failing case is the last one that failed; run it again only if proptest
        // reports another (it should not).
        let judged = match last.into_inner() {
            Some((c, j)) if c == case => j,
            _ => judge.judge(&case)?,
        };
        let original = first.into_inner().unwrap_or_else(|| case.clone());
        let cx = Counterexample::new(
            &self.scenario,
            Found {
                vi,
                ci,
                expect,
                case,
                judged,
                original,
                how: format!(
                    "Found by faultline::prop on case {cases} of {} (runner seed {})",
                    self.cases, self.runner_seed
                ),
                shrink_runs: judge.runs.get().saturating_sub(cases),
                plan_replaced: self.faults.is_some(),
            },
        )?;
        if expect.is_failure() {
            Ok(PropReport {
                cases,
                held,
                runs: judge.runs.get(),
                witness: Some(Box::new(cx)),
            })
        } else {
            Err(PropFailure::Counterexample(Box::new(cx)))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Counterexamples

/// A failing case after shrinking, and the scenario file that replays it.
#[derive(Clone, Debug)]
pub struct Counterexample {
    /// The scenario's name and where it came from.
    pub scenario: String,
    pub file: String,
    pub variant: String,
    pub check: String,
    /// What the property expected of the check.
    pub expect: Expect,
    pub seed: u64,
    /// The shrunk fault plan.
    pub faults: FaultPlan,
    /// The shrunk parameter values, `(override path, RON value)`.
    pub params: Vec<(String, String)>,
    /// The check's verdict on the shrunk case.
    pub outcome: Outcome,
    /// How the run ended (`reached`, `limit:events`, ...).
    pub ended: String,
    /// The case as first found, before shrinking.
    pub original: Case,
    /// The replay file's text, its replay command naming [`Counterexample::file_name`].
    pub text: String,
    header: Vec<String>,
    body: String,
}

/// What a search found, for [`Counterexample::new`].
struct Found {
    vi: usize,
    ci: usize,
    expect: Expect,
    case: Case,
    judged: Judged,
    original: Case,
    /// How it was found, as the start of a sentence.
    how: String,
    shrink_runs: u32,
    /// Whether the case's plan replaces the scenario's (else the file keeps its own).
    plan_replaced: bool,
}

impl Counterexample {
    fn new(s: &Scenario, found: Found) -> Result<Counterexample, PropError> {
        let variant = s.variants[found.vi].name.clone();
        let check = s.checks[found.ci].name().to_string();
        let stem = format!(
            "{}-{}-{}-seed{}",
            s.name,
            slug(&variant),
            slug(&check),
            found.case.seed
        );
        let body = replay_body(s, &found, &stem)?;
        let expect_word = if found.expect.is_failure() {
            "is expected to fail somewhere"
        } else {
            "is expected to hold"
        };
        let verdict = if found.judged.outcome.holds {
            "it holds"
        } else {
            "it fails"
        };
        // Shrinking ends on the edge, where the detail's rounding can read `150/s < 150/s`.
        let exact = found
            .judged
            .outcome
            .value
            .map_or(String::new(), |v| format!(" (the value is {v:.6})"));
        let mut header = vec![
            format!(
                "Scenario `{}` ({}), variant `{variant}`: the check `{check}` {expect_word}; on \
                 seed {} {verdict}: {}{exact}.",
                s.name, s.file, found.case.seed, found.judged.outcome.detail
            ),
            {
                let (was, now) = (
                    found.original.faults.entries.len(),
                    found.case.faults.entries.len(),
                );
                let seed = if found.original.seed == found.case.seed {
                    String::new()
                } else {
                    format!(" on seed {}", found.original.seed)
                };
                let plan = if found.plan_replaced {
                    format!("{was} {}{seed}", plural(was, "fault", "faults"))
                } else {
                    format!("the scenario's own faults{seed}")
                };
                format!(
                    "{} with {plan}; shrunk in {} runs to {now} {}.",
                    found.how,
                    found.shrink_runs,
                    plural(now, "fault", "faults")
                )
            },
        ];
        if found.judged.limit_hit {
            header.push(format!("The run ended at a limit: {}.", found.judged.ended));
        }
        for (path, value) in &found.case.params {
            let was = found
                .original
                .params
                .iter()
                .find(|(p, _)| p == path)
                .map(|(_, v)| v.as_str())
                .filter(|v| v != value)
                .map_or(String::new(), |v| format!(" (was {v})"));
            header.push(format!("Parameter {path} = {value}{was}."));
        }
        let kept = if found.vi == 0 {
            format!("`{variant}`")
        } else {
            format!("`{}` and `{variant}`", s.variants[0].name)
        };
        let params = if found.case.params.is_empty() && s.extra.is_empty() {
            ""
        } else {
            ", each with the parameters in its `set`"
        };
        header.push(format!(
            "Only the variants needed to compare are kept: {kept}{params}. The original's \
             comments are not."
        ));
        let mut cx = Counterexample {
            scenario: s.name.clone(),
            file: s.file.clone(),
            variant,
            check,
            expect: found.expect,
            seed: found.case.seed,
            faults: found.case.faults,
            params: found.case.params,
            outcome: found.judged.outcome,
            ended: found.judged.ended,
            original: found.original,
            text: String::new(),
            header,
            body,
        };
        let name = cx.file_name();
        cx.text = cx.render(&name);
        // The file must load before anyone is told to replay it.
        Scenario::from_str(&cx.text, &name).map_err(|e| PropError::Replay(Box::new(e)))?;
        Ok(cx)
    }

    /// The replay file's name: `<scenario>-<variant>-<check>-seed<N>.ron`.
    pub fn file_name(&self) -> String {
        format!(
            "{}-{}-{}-seed{}.ron",
            self.scenario,
            slug(&self.variant),
            slug(&self.check),
            self.seed
        )
    }

    /// The one-line command that replays the file at `path`.
    pub fn replay_command(&self, path: &str) -> String {
        format!("faultline run {path} --seed {}", self.seed)
    }

    /// Writes the replay file into `dir` (created if missing) and returns its path.
    pub fn write(&self, dir: &Path) -> Result<PathBuf, PropError> {
        let path = dir.join(self.file_name());
        let io = |e: std::io::Error, p: &Path| PropError::Io {
            path: p.display().to_string(),
            message: e.to_string(),
        };
        std::fs::create_dir_all(dir).map_err(|e| io(e, dir))?;
        std::fs::write(&path, self.render(&path.display().to_string()))
            .map_err(|e| io(e, &path))?;
        Ok(path)
    }

    /// The file's text with the replay command naming `path`.
    fn render(&self, path: &str) -> String {
        let mut out = String::new();
        out.push_str("// A shrunk counterexample. Replay it with:\n");
        out.push_str(&format!("//     {}\n//\n", self.replay_command(path)));
        for (i, paragraph) in self.header.iter().enumerate() {
            if i > 0 {
                out.push_str("//\n");
            }
            out.push_str(&comment(paragraph));
        }
        out.push_str(&self.body);
        out
    }
}

impl fmt::Display for Counterexample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let exact = self
            .outcome
            .value
            .map_or(String::new(), |v| format!(" (the value is {v:.6})"));
        writeln!(
            f,
            "`{}` / `{}` / `{}` on seed {}: {}{exact}",
            self.scenario, self.variant, self.check, self.seed, self.outcome.detail
        )?;
        writeln!(
            f,
            "  faults ({}, shrunk from {}):",
            self.faults.entries.len(),
            self.original.faults.entries.len()
        )?;
        for e in &self.faults.entries {
            let node = fault_plan_node(&FaultPlan {
                entries: vec![e.clone()],
            });
            let text = node
                .map(|n| match n.value {
                    Value::List(mut xs) if xs.len() == 1 => tree::to_ron(&xs.remove(0)),
                    _ => format!("{e:?}"),
                })
                .unwrap_or_else(|_| format!("{e:?}"));
            writeln!(f, "    {text}")?;
        }
        for (path, value) in &self.params {
            writeln!(f, "  {path} = {value}")?;
        }
        write!(f, "  replay: {}", self.replay_command(&self.file_name()))
    }
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// A name as a file-name part: `deadline shedding` -> `deadline-shedding`.
fn slug(name: &str) -> String {
    crate::report::slug(name, 48)
}

/// `text` as `//` comment lines of at most 100 columns.
fn comment(text: &str) -> String {
    let mut out = String::new();
    let mut line = String::from("//");
    for word in text.split_whitespace() {
        if line.len() > 2 && line.chars().count() + 1 + word.chars().count() > 100 {
            out.push_str(&line);
            out.push('\n');
            line = String::from("//");
        }
        line.push(' ');
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
    out
}

/// The scenario's tree with the case written in: its plan, its seed, its parameters in the
/// `set` of every variant kept (so the file is exactly the case the harness ran, and the
/// variants compare on the same system), and only the variants needed: the first (the
/// baseline) and the failing one, whose expectation of the check is the property's.
fn replay_body(s: &Scenario, found: &Found, name: &str) -> Result<String, PropError> {
    let bug = |m: String| PropError::Replay(Box::new(ScenarioError::plain(&s.file, m)));
    let mut root = tree::parse(&s.text, SourceId(0)).map_err(|e| bug(e.to_string()))?;
    let span = root.span;
    let str_node = |x: &str| Node::new(Value::Str(x.to_string()), span);
    // Where a field the file does not have goes: in the schema's order.
    const TOP: &[&str] = &crate::scenario::TOP_FIELDS;
    let after = |key: &str| -> &'static [&'static str] {
        let at = TOP
            .iter()
            .position(|k| *k == key)
            .map_or(TOP.len(), |i| i + 1);
        &TOP[at..]
    };
    let set = |root: &mut Node, key: &str, value: Node| -> Result<(), PropError> {
        set_field(root, key, value, after(key));
        Ok(())
    };
    set(&mut root, "name", str_node(name))?;
    let about = format!(
        "Counterexample to `{}` in variant `{}` of {}.",
        s.checks[found.ci].name(),
        s.variants[found.vi].name,
        s.name
    );
    set(&mut root, "about", str_node(&about))?;
    let seed = Node::new(Value::Int(i128::from(found.case.seed)), span);
    set(&mut root, "seed", seed)?;
    if found.plan_replaced {
        let plan = fault_plan_node(&found.case.faults).map_err(bug)?;
        set(&mut root, "faults", plan)?;
    }
    let keep: Vec<&str> = {
        let mut k = vec![s.variants[0].name.as_str()];
        if found.vi != 0 {
            k.push(s.variants[found.vi].name.as_str());
        }
        k
    };
    let variants = match root.take_field("variants") {
        Some(Node {
            value: Value::List(items),
            ..
        }) => items,
        // No variants: the scenario is its own baseline.
        _ => {
            vec![tree::parse("(name: \"baseline\")", SourceId(0)).map_err(|e| bug(e.to_string()))?]
        }
    };
    let mut sets: Vec<(String, Node)> = Vec::new();
    for (path, value) in s.extra.iter().chain(&found.case.params) {
        let node = tree::parse(value, SourceId(0)).map_err(|e| bug(format!("{path}: {e}")))?;
        sets.retain(|(p, _)| p != path);
        sets.push((path.clone(), node));
    }
    let mut kept = Vec::new();
    for mut v in variants {
        let name = match v.field("name").map(|n| &n.value) {
            Some(Value::Str(n)) => n.clone(),
            _ => continue,
        };
        if !keep.contains(&name.as_str()) {
            continue;
        }
        let mut entries = map_of(v.field("set").cloned());
        entries.retain(|(k, _)| {
            !sets
                .iter()
                .any(|(p, _)| matches!(&k.value, Value::Str(x) if x == p))
        });
        entries.extend(sets.iter().map(|(p, n)| (str_node(p), n.clone())));
        if !entries.is_empty() {
            set_field(
                &mut v,
                "set",
                Node::new(Value::Map(entries), span),
                &["expect"],
            );
        }
        if name == s.variants[found.vi].name {
            let mut expect = map_of(v.field("expect").cloned());
            let check = s.checks[found.ci].name();
            // The replay is one seed, where failing somewhere is failing.
            let word = if found.expect.is_failure() {
                "Fails"
            } else {
                "Holds"
            };
            let value = Node::new(Value::Ident(word.to_string()), span);
            match expect
                .iter_mut()
                .find(|(k, _)| matches!(&k.value, Value::Str(x) if x == check))
            {
                Some(entry) => entry.1 = value,
                None => expect.push((str_node(check), value)),
            }
            set_field(&mut v, "expect", Node::new(Value::Map(expect), span), &[]);
        }
        kept.push(v);
    }
    set(&mut root, "variants", Node::new(Value::List(kept), span))?;
    Ok(tree::to_ron_pretty(&root))
}

/// The entries of a map field (written as a map, or as an anonymous struct).
fn map_of(node: Option<Node>) -> Vec<(Node, Node)> {
    match node.map(|n| n.value) {
        Some(Value::Map(entries)) => entries,
        Some(Value::Struct { name: None, fields }) => fields
            .into_iter()
            .map(|f| (Node::new(Value::Str(f.key), f.key_span), f.value))
            .collect(),
        _ => Vec::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// Shrinking a scenario's own plan

/// Sub-plans of a written plan: some of its entries, each window a sub-window of the written
/// one (on a grain), each slowdown between 1 and its written factor.
#[derive(Debug)]
struct SubPlanSpace {
    written: FaultPlan,
    grain_ns: u64,
}

/// One kept entry of a written plan.
#[derive(Clone, Debug, PartialEq)]
struct Kept {
    entry: usize,
    /// Grains from the written start, and the length in grains (windows only).
    off: u64,
    len: u64,
    /// Steps of 0.1 taken off a slowdown's factor.
    milder: u64,
}

impl SubPlanSpace {
    /// The written window of entry `i` in grains (0 for an instant).
    fn grains(&self, i: usize) -> u64 {
        match (self.written.entries[i].from, self.written.entries[i].until) {
            (Some(from), Some(until)) if until > from => {
                (until.as_nanos() - from.as_nanos()).div_ceil(self.grain_ns)
            }
            _ => 0,
        }
    }

    /// How many 0.1 steps a slowdown can lose and stay at 1x or slower.
    fn milder_max(&self, i: usize) -> u64 {
        match self.written.entries[i].fault {
            Fault::Slow { factor, .. } if factor > 1.0 => {
                libm::floor((factor - 1.0) / 0.1 + 1e-9) as u64
            }
            _ => 0,
        }
    }

    fn whole(&self) -> Vec<Kept> {
        (0..self.written.entries.len())
            .map(|entry| Kept {
                entry,
                off: 0,
                len: self.grains(entry),
                milder: 0,
            })
            .collect()
    }
}

impl Space for SubPlanSpace {
    type Genome = Vec<Kept>;
    type Value = FaultPlan;

    fn render(&self, g: &Vec<Kept>) -> FaultPlan {
        let entries = g
            .iter()
            .map(|k| {
                let mut e = self.written.entries[k.entry].clone();
                if let (Some(from), Some(until)) = (e.from, e.until) {
                    let start = from.as_nanos() + k.off * self.grain_ns;
                    let end = (start + k.len * self.grain_ns).min(until.as_nanos());
                    e.from = Some(SimTime::from_nanos(start));
                    e.until = Some(SimTime::from_nanos(end));
                }
                if let Fault::Slow { factor, .. } = &mut e.fault {
                    *factor = grid_float(*factor, -0.1, k.milder);
                }
                e
            })
            .collect();
        FaultPlan { entries }
    }

    fn steps(&self, g: &Vec<Kept>) -> Vec<Step> {
        let mut steps: Vec<Step> = (0..g.len()).rev().map(Step::Remove).collect();
        for i in 0..g.len() {
            steps.extend([Step::TrimEnd(i), Step::TrimStart(i), Step::Milder(i)]);
        }
        steps
    }

    fn reach(&self, g: &Vec<Kept>, step: Step) -> u64 {
        match step {
            Step::Remove(i) => u64::from(i < g.len()),
            Step::TrimEnd(i) | Step::TrimStart(i) => g[i].len.saturating_sub(1),
            Step::Milder(i) => self.milder_max(g[i].entry) - g[i].milder,
            _ => 0,
        }
    }

    fn apply(&self, g: &Vec<Kept>, step: Step, k: u64) -> Vec<Kept> {
        let mut g = g.clone();
        match step {
            Step::Remove(i) => {
                g.remove(i);
            }
            Step::TrimEnd(i) => g[i].len -= k,
            Step::TrimStart(i) => {
                g[i].off += k;
                g[i].len -= k;
            }
            Step::Milder(i) => g[i].milder += k,
            _ => {}
        }
        g
    }
}

/// Shrinks the scenario's own fault plan for one seed on which `check` does not hold in
/// `variant`: the fewest entries, the shortest windows (on a grain of the sample interval) and
/// the mildest slowdowns that still make it fail, with a replay file. `None` when the check
/// holds on that seed. At most `shrink_runs_max` runs while shrinking.
pub fn shrink_plan(
    s: &Scenario,
    variant: &str,
    check: &str,
    seed: u64,
    shrink_runs_max: u32,
) -> Result<Option<Counterexample>, PropError> {
    let vi = variant_index(s, variant)?;
    let ci = check_index(s, check)?;
    let judge = Judge::new(s, vi, ci, true);
    let space = Arc::new(SubPlanSpace {
        written: s.faults.clone(),
        grain_ns: s.sample.as_nanos().max(1),
    });
    let whole = space.whole();
    let original = Case {
        seed,
        faults: space.render(&whole),
        params: Vec::new(),
    };
    debug_assert_eq!(
        original.faults, s.faults,
        "the whole plan renders as written"
    );
    let invalid: RefCell<Option<PropError>> = RefCell::new(None);
    let last: RefCell<Option<(FaultPlan, Judged)>> = RefCell::new(None);
    let mut runner = runner(1, u32::MAX - 1, seed);
    let tree = Greedy::new(Arc::clone(&space), whole, Some(shrink_runs_max));
    let result = runner.run_one(PlanTreeOf(tree), |plan| {
        if invalid.borrow().is_some() {
            return Ok(());
        }
        let case = Case {
            seed,
            faults: plan.clone(),
            params: Vec::new(),
        };
        match judge.judge(&case) {
            Ok(j) if j.outcome.holds && !j.limit_hit => Ok(()),
            Ok(j) => {
                let detail = j.outcome.detail.clone();
                *last.borrow_mut() = Some((plan, j));
                Err(TestCaseError::fail(detail))
            }
            Err(e) => {
                *invalid.borrow_mut() = Some(e);
                Ok(())
            }
        }
    });
    if let Some(e) = invalid.into_inner() {
        return Err(e);
    }
    let plan = match result {
        Err(TestError::Fail(_, plan)) => plan,
        // The written plan holds on this seed: nothing to shrink.
        Ok(_) => return Ok(None),
        Err(TestError::Abort(reason)) => return Err(PropError::Runner(reason.to_string())),
    };
    let judged = match last.into_inner() {
        Some((p, j)) if p == plan => j,
        _ => judge.judge(&Case {
            seed,
            faults: plan.clone(),
            params: Vec::new(),
        })?,
    };
    let runs = judge.runs.get();
    let cx = Counterexample::new(
        s,
        Found {
            vi,
            ci,
            expect: Expect::Holds,
            case: Case {
                seed,
                faults: plan,
                params: Vec::new(),
            },
            judged,
            original,
            how: format!("Found by `faultline check` on seed {seed}"),
            shrink_runs: runs.saturating_sub(1),
            plan_replaced: true,
        },
    )?;
    Ok(Some(cx))
}

/// A sub-plan tree as a proptest value tree.
struct PlanTreeOf(Greedy<SubPlanSpace>);

impl ValueTree for PlanTreeOf {
    type Value = FaultPlan;
    fn current(&self) -> FaultPlan {
        self.0.current()
    }
    fn simplify(&mut self) -> bool {
        self.0.simplify()
    }
    fn complicate(&mut self) -> bool {
        self.0.complicate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pairs of numbers that shrink toward (0, 0), one step kind per coordinate.
    #[derive(Debug)]
    struct Pairs;

    impl Space for Pairs {
        type Genome = (u64, u64);
        type Value = (u64, u64);
        fn render(&self, g: &(u64, u64)) -> (u64, u64) {
            *g
        }
        fn steps(&self, _: &(u64, u64)) -> Vec<Step> {
            vec![Step::Param(0), Step::Param(1)]
        }
        fn reach(&self, g: &(u64, u64), step: Step) -> u64 {
            match step {
                Step::Param(0) => g.0,
                Step::Param(1) => g.1,
                _ => 0,
            }
        }
        fn apply(&self, g: &(u64, u64), step: Step, k: u64) -> (u64, u64) {
            match step {
                Step::Param(0) => (g.0 - k, g.1),
                _ => (g.0, g.1 - k),
            }
        }
    }

    /// Drives a tree as proptest's runner does; returns the value it ends at and every value
    /// it offered.
    fn drive(
        mut tree: Greedy<Pairs>,
        fails: impl Fn((u64, u64)) -> bool,
    ) -> ((u64, u64), Vec<(u64, u64)>) {
        let mut offered = Vec::new();
        assert!(fails(tree.current()), "starts from a failing value");
        let mut more = tree.simplify();
        while more {
            let v = tree.current();
            offered.push(v);
            more = if fails(v) {
                tree.simplify()
            } else {
                tree.complicate()
            };
        }
        (tree.current(), offered)
    }

    #[test]
    fn greedy_shrinking_reaches_the_boundary_and_never_repeats_itself() {
        // Fails when x + 2y >= 100: from (90, 70) the greedy search first takes x to 0 (as far
        // as it can go with y at 70), then y as low as x = 0 allows, 50; x stays at 0.
        let fails = |(x, y): (u64, u64)| x + 2 * y >= 100;
        let (end, offered) = drive(Greedy::new(Arc::new(Pairs), (90, 70), None), fails);
        assert_eq!(end, (0, 50));
        assert!(fails(end));
        assert!(!fails((0, 49)));
        let mut seen = offered.clone();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), offered.len(), "no candidate twice: {offered:?}");
        // Binary searches, not walks: (0, 70) at once, then halves toward 50.
        assert!(offered.len() <= 12, "{offered:?}");
        assert_eq!(offered[0], (0, 70));

        // A budget stops it at the smallest failing value found so far.
        let (end, offered) = drive(Greedy::new(Arc::new(Pairs), (90, 70), Some(3)), fails);
        assert_eq!(offered.len(), 3);
        assert!(fails(end));
        assert_eq!(end, *offered.iter().rfind(|v| fails(**v)).unwrap());

        // A value at its minimum offers only what it must rule out.
        let (end, offered) = drive(Greedy::new(Arc::new(Pairs), (0, 50), None), fails);
        assert_eq!(end, (0, 50));
        assert_eq!(offered, [(0, 0), (0, 49)]);
    }

    #[test]
    fn steps_follow_a_removed_fault() {
        assert_eq!(Step::TrimEnd(3).after_remove(1), Some(Step::TrimEnd(2)));
        assert_eq!(Step::DropHost(1, 4).after_remove(1), None);
        assert_eq!(Step::Earlier(0).after_remove(1), Some(Step::Earlier(0)));
        assert_eq!(Step::Param(5).after_remove(0), Some(Step::Param(5)));
        assert_eq!(Step::Seed.after_remove(0), Some(Step::Seed));
    }

    #[test]
    fn numbers_and_names_are_written_as_a_person_would() {
        assert_eq!(float_text(2.0), "2.0");
        assert_eq!(float_text(0.1 + 0.2), "0.3");
        assert_eq!(grid_float(1.5, 0.1, 8), 2.3);
        assert_eq!(grid_float(10.0, -0.1, 90), 1.0);
        assert_eq!(float_text(-1.25), "-1.25");
        assert_eq!(slug("deadline shedding"), "deadline-shedding");
        assert_eq!(slug("fail fast + fallback"), "fail-fast-fallback");
        let text = comment(&"word ".repeat(60));
        assert!(text.lines().count() > 2);
        for line in text.lines() {
            assert!(line.starts_with("// "));
            assert!(line.chars().count() <= 100, "{line}");
        }
    }
}
