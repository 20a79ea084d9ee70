//! Faults as data: what goes wrong, when, and to whom.
//!
//! A [`FaultPlan`] is a list of [`FaultEntry`]s, each either instantaneous (`at`) or a window
//! (`from`..`until`) whose end undoes the fault (a crash window ends in a restart, a pause in a
//! resume, a partition in its heal). The engine resolves names to actors and hosts when a plan is
//! added and applies each fault at its time; nothing here runs code.
//!
//! A [`Nemesis`] draws a plan from the run's seed — which faults, when, and whom — within bounds,
//! and always ends with a heal phase, so that liveness ("the system recovers") can be checked
//! after it. Like everything else it uses its own named stream, so changing the nemesis does not
//! change any actor's draws.

use std::fmt;
use std::str::FromStr;

use rand_core::Rng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::dist::Dist;
use crate::engine::rng::stream;
use crate::engine::time::{SimDuration, SimTime};
use crate::net::CutMode;

/// A signed duration for clock skew: `"+5s"`, `"5s"` (ahead) or `"-250ms"` (behind).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Skew {
    /// Nanoseconds; positive means the clock is ahead.
    pub nanos: i64,
}

impl Skew {
    pub fn ahead(d: SimDuration) -> Self {
        Skew {
            nanos: i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        }
    }

    pub fn behind(d: SimDuration) -> Self {
        Skew {
            nanos: -i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        }
    }
}

impl FromStr for Skew {
    type Err = FaultError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let (neg, body) = match t.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, t.strip_prefix('+').unwrap_or(t)),
        };
        let d: SimDuration = body.parse().map_err(|e| FaultError::BadSkew {
            input: s.to_string(),
            reason: format!("{e}"),
        })?;
        let nanos = i64::try_from(d.as_nanos()).map_err(|_| FaultError::BadSkew {
            input: s.to_string(),
            reason: "a clock skew must be under 292 years".into(),
        })?;
        Ok(Skew {
            nanos: if neg { -nanos } else { nanos },
        })
    }
}

impl fmt::Display for Skew {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mag = SimDuration::from_nanos(self.nanos.unsigned_abs());
        if self.nanos < 0 {
            write!(f, "-{mag}")
        } else {
            write!(f, "+{mag}")
        }
    }
}

impl Serialize for Skew {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Skew {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One thing that goes wrong. Targets are actor or host names: a host name hits every actor on
/// the host.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Fault {
    /// The target stops: volatile state is lost, messages to it are dropped, its timers die.
    Crash { target: String },
    /// The target starts again from its durable state (a crash first, if it was up).
    Restart { target: String },
    /// The target processes nothing (a GC or VM pause); events wait and are handled on resume.
    Pause { target: String },
    /// The target resumes and handles its backlog, late.
    Resume { target: String },
    /// The target's work takes `factor` times longer (gray failure). 1.0 is healthy.
    Slow { target: String, factor: f64 },
    /// The host's clock reads `offset` away from true time (absolute, replacing any offset).
    ClockOffset { host: String, offset: Skew },
    /// The host's clock gains (positive) or loses `ppm` microseconds per second from now on.
    ClockDrift { host: String, ppm: f64 },
    /// The host's clock jumps by `by`.
    ClockStep { host: String, by: Skew },
    /// Hosts in `a` and hosts in `b` cannot reach each other, in both directions.
    Partition {
        a: Vec<String>,
        b: Vec<String>,
        #[serde(default)]
        mode: CutMode,
    },
    /// Messages from `from` to `to` are cut; the other direction still works.
    OneWay {
        from: Vec<String>,
        to: Vec<String>,
        #[serde(default)]
        mode: CutMode,
    },
    /// Every cut heals and held messages are released.
    Heal,
    /// The link between `a` and `b` (both directions) gets a new latency distribution.
    LinkLatency { a: String, b: String, latency: Dist },
    /// The link between `a` and `b` (both directions) gets a new loss probability.
    LinkLoss { a: String, b: String, loss: f64 },
}

impl Fault {
    /// The short name of the fault's kind, for reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Crash { .. } => "crash",
            Fault::Restart { .. } => "restart",
            Fault::Pause { .. } => "pause",
            Fault::Resume { .. } => "resume",
            Fault::Slow { .. } => "slow",
            Fault::ClockOffset { .. } => "clock_offset",
            Fault::ClockDrift { .. } => "clock_drift",
            Fault::ClockStep { .. } => "clock_step",
            Fault::Partition { .. } => "partition",
            Fault::OneWay { .. } => "one_way",
            Fault::Heal => "heal",
            Fault::LinkLatency { .. } => "link_latency",
            Fault::LinkLoss { .. } => "link_loss",
        }
    }

    /// Checks values that need no knowledge of the model (factors, probabilities).
    pub fn validate(&self) -> Result<(), FaultError> {
        match self {
            Fault::Slow { factor, .. } if !(factor.is_finite() && *factor > 0.0) => {
                Err(FaultError::BadValue {
                    field: "factor",
                    reason: format!("must be a positive number, got {factor}"),
                })
            }
            Fault::ClockDrift { ppm, .. } if !(ppm.is_finite() && ppm.abs() <= 1e6) => {
                Err(FaultError::BadValue {
                    field: "ppm",
                    reason: format!("must be between -1000000 and 1000000, got {ppm}"),
                })
            }
            Fault::LinkLoss { loss, .. } if !(0.0..=1.0).contains(loss) => {
                Err(FaultError::BadValue {
                    field: "loss",
                    reason: format!("must be between 0 and 1, got {loss}"),
                })
            }
            Fault::LinkLatency { latency, .. } => {
                latency.validate().map_err(|e| FaultError::BadValue {
                    field: "latency",
                    reason: e.to_string(),
                })
            }
            Fault::Partition { a, b, .. } if a.is_empty() || b.is_empty() => {
                Err(FaultError::BadValue {
                    field: "a/b",
                    reason: "both sides of a partition need a host".into(),
                })
            }
            Fault::OneWay { from, to, .. } if from.is_empty() || to.is_empty() => {
                Err(FaultError::BadValue {
                    field: "from/to",
                    reason: "both sides of a cut need a host".into(),
                })
            }
            _ => Ok(()),
        }
    }

    /// Whether the fault can be a window (it has a natural end).
    pub fn has_end(&self) -> bool {
        !matches!(
            self,
            Fault::Restart { .. } | Fault::Resume { .. } | Fault::Heal
        )
    }
}

/// When a fault happens: at an instant, or over a window whose end undoes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timing {
    At(SimTime),
    Window { from: SimTime, until: SimTime },
}

/// One entry of a plan. In RON: `(at: "5m", fault: Crash(target: "db"))` or
/// `(from: "5m", until: "6m", fault: Pause(target: "db"))`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<SimTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<SimTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<SimTime>,
    pub fault: Fault,
}

impl FaultEntry {
    pub fn at(at: SimTime, fault: Fault) -> Self {
        FaultEntry {
            at: Some(at),
            from: None,
            until: None,
            fault,
        }
    }

    pub fn window(from: SimTime, until: SimTime, fault: Fault) -> Self {
        FaultEntry {
            at: None,
            from: Some(from),
            until: Some(until),
            fault,
        }
    }

    /// The entry's timing, or why it is malformed.
    pub fn timing(&self) -> Result<Timing, FaultError> {
        match (self.at, self.from, self.until) {
            (Some(at), None, None) => Ok(Timing::At(at)),
            (None, Some(from), Some(until)) if from < until => Ok(Timing::Window { from, until }),
            (None, Some(from), Some(until)) => Err(FaultError::WindowOrder { from, until }),
            _ => Err(FaultError::Timing),
        }
    }

    pub fn validate(&self) -> Result<(), FaultError> {
        let timing = self.timing()?;
        if matches!(timing, Timing::Window { .. }) && !self.fault.has_end() {
            return Err(FaultError::NoNaturalEnd {
                kind: self.fault.kind(),
            });
        }
        self.fault.validate()
    }
}

/// A list of faults with their times.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FaultPlan {
    pub entries: Vec<FaultEntry>,
}

impl FaultPlan {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn at(mut self, at: SimTime, fault: Fault) -> Self {
        self.entries.push(FaultEntry::at(at, fault));
        self
    }

    pub fn window(mut self, from: SimTime, until: SimTime, fault: Fault) -> Self {
        self.entries.push(FaultEntry::window(from, until, fault));
        self
    }

    pub fn validate(&self) -> Result<(), FaultError> {
        self.entries.iter().try_for_each(FaultEntry::validate)
    }

    /// The latest time at which anything in the plan happens.
    pub fn end(&self) -> SimTime {
        self.entries
            .iter()
            .filter_map(|e| e.at.or(e.until))
            .max()
            .unwrap_or(SimTime::ZERO)
    }
}

/// Errors in a fault or a plan.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum FaultError {
    #[error("a fault needs either `at`, or both `from` and `until`")]
    Timing,
    #[error("a fault window must end after it starts (from {from}, until {until})")]
    WindowOrder { from: SimTime, until: SimTime },
    #[error("a {kind} fault cannot be a window: it has no natural end (use `at`)")]
    NoNaturalEnd { kind: &'static str },
    #[error("`{field}` {reason}")]
    BadValue { field: &'static str, reason: String },
    #[error("invalid clock skew {input:?}: {reason}")]
    BadSkew { input: String, reason: String },
    #[error("no actor or host named {name:?}{}", did_you_mean(suggestion))]
    UnknownTarget {
        name: String,
        suggestion: Option<String>,
    },
    #[error("no host named {name:?}{}", did_you_mean(suggestion))]
    UnknownHost {
        name: String,
        suggestion: Option<String>,
    },
    #[error("a fault at {at} is in the past (the simulation is at {now})")]
    InThePast { at: SimTime, now: SimTime },
    #[error("nemesis: {0}")]
    Nemesis(String),
}

fn did_you_mean(s: &Option<String>) -> String {
    s.as_ref()
        .map(|s| format!(" (did you mean {s:?}?)"))
        .unwrap_or_default()
}

/// The kinds of fault a [`Nemesis`] may draw.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum NemesisKind {
    Crash,
    Pause,
    Partition,
    OneWay,
    Slow,
    ClockSkew,
}

/// A seeded generator of fault plans, in the spirit of Jepsen's nemesis and TigerBeetle's VOPR.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Nemesis {
    /// Which faults it may draw.
    pub kinds: Vec<NemesisKind>,
    /// Host (or actor) names it may hit. Partitions split these hosts into two sides.
    pub targets: Vec<String>,
    /// How many faults it draws.
    pub faults: u32,
    /// No fault starts before this.
    pub start: SimTime,
    /// Everything is healed by this time; after it the system must recover on its own.
    pub heal_at: SimTime,
    /// The longest fault window.
    pub max_window: SimDuration,
    /// The largest clock skew drawn (either direction).
    #[serde(default = "default_max_skew")]
    pub max_skew: SimDuration,
    /// The largest slowdown factor drawn.
    #[serde(default = "default_max_slow")]
    pub max_slow: f64,
}

fn default_max_skew() -> SimDuration {
    SimDuration::from_secs(10)
}

fn default_max_slow() -> f64 {
    10.0
}

impl Nemesis {
    /// Draws a plan from `seed` (on the stream "nemesis"). Every fault is a window ending by
    /// `heal_at`, and a final `Heal` at `heal_at` releases anything held.
    pub fn plan(&self, seed: u64) -> Result<FaultPlan, FaultError> {
        if self.kinds.is_empty() || self.targets.is_empty() {
            return Err(FaultError::Nemesis(
                "needs at least one kind and one target".into(),
            ));
        }
        if self.heal_at <= self.start {
            return Err(FaultError::Nemesis(format!(
                "heal_at ({}) must be after start ({})",
                self.heal_at, self.start
            )));
        }
        if self.max_window.is_zero() {
            return Err(FaultError::Nemesis("max_window must be positive".into()));
        }
        if !(self.max_slow.is_finite() && self.max_slow >= 1.0) {
            return Err(FaultError::Nemesis(format!(
                "max_slow must be >= 1, got {}",
                self.max_slow
            )));
        }
        let mut rng = stream(seed, "nemesis");
        let span = self.heal_at.as_nanos() - self.start.as_nanos();
        let mut plan = FaultPlan::new();
        for _ in 0..self.faults {
            let kind = self.kinds[pick(&mut rng, self.kinds.len())];
            let from = self.start.as_nanos() + rng.next_u64() % span;
            let room = self.heal_at.as_nanos() - from;
            let len = 1 + rng.next_u64() % room.min(self.max_window.as_nanos()).max(1);
            let (from, until) = (
                SimTime::from_nanos(from),
                SimTime::from_nanos((from + len).min(self.heal_at.as_nanos())),
            );
            if from >= until {
                continue;
            }
            let target = self.targets[pick(&mut rng, self.targets.len())].clone();
            let fault = match kind {
                NemesisKind::Crash => Fault::Crash { target },
                NemesisKind::Pause => Fault::Pause { target },
                NemesisKind::Slow => {
                    let factor =
                        1.0 + crate::engine::rng::unit_f64(&mut rng) * (self.max_slow - 1.0);
                    Fault::Slow {
                        target,
                        factor: factor.max(1.0),
                    }
                }
                NemesisKind::ClockSkew => {
                    let mag = rng.next_u64() % (self.max_skew.as_nanos().max(1));
                    let skew = if rng.next_u64() & 1 == 0 {
                        Skew::ahead(SimDuration::from_nanos(mag))
                    } else {
                        Skew::behind(SimDuration::from_nanos(mag))
                    };
                    Fault::ClockOffset {
                        host: target,
                        offset: skew,
                    }
                }
                NemesisKind::Partition | NemesisKind::OneWay => {
                    if self.targets.len() < 2 {
                        continue;
                    }
                    // A random split into two non-empty sides.
                    let (a, b) = split(&mut rng, &self.targets);
                    if kind == NemesisKind::Partition {
                        Fault::Partition {
                            a,
                            b,
                            mode: CutMode::Drop,
                        }
                    } else {
                        Fault::OneWay {
                            from: a,
                            to: b,
                            mode: CutMode::Drop,
                        }
                    }
                }
            };
            plan.entries.push(FaultEntry::window(from, until, fault));
        }
        plan.entries.sort_by_key(|e| e.from);
        plan.entries.push(FaultEntry::at(self.heal_at, Fault::Heal));
        Ok(plan)
    }
}

fn pick<R: Rng + ?Sized>(rng: &mut R, n: usize) -> usize {
    (rng.next_u64() % n as u64) as usize
}

fn split<R: Rng + ?Sized>(rng: &mut R, items: &[String]) -> (Vec<String>, Vec<String>) {
    debug_assert!(items.len() >= 2);
    loop {
        let mask = rng.next_u64();
        let (a, b): (Vec<_>, Vec<_>) = items
            .iter()
            .enumerate()
            .partition(|(i, _)| mask >> (i % 64) & 1 == 1);
        if !a.is_empty() && !b.is_empty() {
            return (
                a.into_iter().map(|(_, s)| s.clone()).collect(),
                b.into_iter().map(|(_, s)| s.clone()).collect(),
            );
        }
    }
}

/// The closest of `candidates` to `name` by edit distance, if close enough to be a likely typo.
pub fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = edit_distance(name, c);
        if d <= (name.len().max(c.len()) / 3).max(1) && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c.to_string())
}

/// Edit distance over chars, counting a swap of two neighbours as one edit (optimal string
/// alignment): `fsat` is one typo away from `fast`, as a person sees it.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Rows i-2, i-1 and i of the distance table.
    let mut before: Vec<usize> = Vec::new();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 0..a.len() {
        let mut cur = vec![i + 1; b.len() + 1];
        for j in 0..b.len() {
            let mut d = (prev[j] + usize::from(a[i] != b[j]))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
            if i > 0 && j > 0 && a[i] == b[j - 1] && a[i - 1] == b[j] {
                d = d.min(before[j - 1] + 1);
            }
            cur[j + 1] = d;
        }
        before = std::mem::replace(&mut prev, cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> SimTime {
        x.parse().unwrap()
    }

    #[test]
    fn skew_parses_signs() {
        assert_eq!("+5s".parse::<Skew>().unwrap().nanos, 5_000_000_000);
        assert_eq!("5s".parse::<Skew>().unwrap().nanos, 5_000_000_000);
        assert_eq!("-250ms".parse::<Skew>().unwrap().nanos, -250_000_000);
        assert!("5 parsecs".parse::<Skew>().is_err());
        assert_eq!("-250ms".parse::<Skew>().unwrap().to_string(), "-250ms");
    }

    #[test]
    fn entry_timing_rules() {
        let f = || Fault::Crash {
            target: "db".into(),
        };
        assert_eq!(
            FaultEntry::at(s("5s"), f()).timing().unwrap(),
            Timing::At(s("5s"))
        );
        assert!(matches!(
            FaultEntry::window(s("6s"), s("5s"), f()).validate(),
            Err(FaultError::WindowOrder { .. })
        ));
        let no_time = FaultEntry {
            at: None,
            from: Some(s("1s")),
            until: None,
            fault: f(),
        };
        assert_eq!(no_time.validate(), Err(FaultError::Timing));
        let heal_window = FaultEntry::window(s("1s"), s("2s"), Fault::Heal);
        assert_eq!(
            heal_window.validate(),
            Err(FaultError::NoNaturalEnd { kind: "heal" })
        );
    }

    #[test]
    fn bad_values_are_errors() {
        let slow = Fault::Slow {
            target: "x".into(),
            factor: -1.0,
        };
        assert!(matches!(
            slow.validate(),
            Err(FaultError::BadValue {
                field: "factor",
                ..
            })
        ));
        let loss = Fault::LinkLoss {
            a: "x".into(),
            b: "y".into(),
            loss: 2.0,
        };
        assert!(matches!(
            loss.validate(),
            Err(FaultError::BadValue { field: "loss", .. })
        ));
    }

    #[test]
    fn nemesis_is_seeded_bounded_and_heals() {
        let n = Nemesis {
            kinds: vec![
                NemesisKind::Crash,
                NemesisKind::Pause,
                NemesisKind::Partition,
                NemesisKind::ClockSkew,
            ],
            targets: vec!["n1".into(), "n2".into(), "n3".into()],
            faults: 20,
            start: s("10s"),
            heal_at: s("60s"),
            max_window: SimDuration::from_secs(5),
            max_skew: SimDuration::from_secs(2),
            max_slow: 5.0,
        };
        let p1 = n.plan(1).unwrap();
        assert_eq!(p1, n.plan(1).unwrap(), "same seed, same plan");
        assert_ne!(p1, n.plan(2).unwrap(), "different seeds, different plans");
        p1.validate().unwrap();
        let last = p1.entries.last().unwrap();
        assert_eq!(last.fault, Fault::Heal);
        assert_eq!(last.at, Some(s("60s")));
        for e in &p1.entries[..p1.entries.len() - 1] {
            let Timing::Window { from, until } = e.timing().unwrap() else {
                panic!("nemesis faults are windows")
            };
            assert!(from >= s("10s"));
            assert!(until <= s("60s"));
            assert!(until.as_nanos() - from.as_nanos() <= 5_000_000_000);
        }
    }

    #[test]
    fn suggestions_catch_typos_only() {
        assert_eq!(
            suggest("paymnet", ["payment", "order"]),
            Some("payment".into())
        );
        assert_eq!(suggest("zzz", ["payment", "order"]), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("fsat", "fast"), 1);
        assert_eq!(edit_distance("ab", "ba"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(suggest("fsat", ["fast", "slow"]), Some("fast".into()));
    }

    #[test]
    fn plan_parses_from_ron_shape() {
        let plan = FaultPlan::new()
            .at(
                s("5m"),
                Fault::Crash {
                    target: "db".into(),
                },
            )
            .window(
                s("1m"),
                s("2m"),
                Fault::Partition {
                    a: vec!["a".into()],
                    b: vec!["b".into()],
                    mode: CutMode::Hold,
                },
            );
        let json = serde_json::to_string(&plan).unwrap();
        let back: FaultPlan = serde_json::from_str(&json).unwrap();
        assert_eq!(back, plan);
        assert_eq!(plan.end(), s("5m"));
    }
}
