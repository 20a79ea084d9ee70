//! The checks a scenario states about a finished run, and the small expression language they
//! (and charts) use to name a number or a time series built from the run's metrics.
//!
//! An [`Expr`] is a metric by full name (`users.latency.p99`, `api.queue_len`) or a function of
//! one: `rate(users.ok_total)`, `ratio(users.ok_total, users.sent_total)`,
//! `max(api.queue_len)`. It is parsed when a scenario is loaded, with no model at hand, so a
//! typo in the syntax is caught before anything runs; [`Expr::resolve`] then checks the names
//! against a run's [`Metrics`] and says which one is unknown and what was probably meant. An
//! expression gives one number ([`Expr::scalar`]) or a time series ([`Expr::series`]).
//!
//! A [`Check`] judges one expression: a bound on its value over the run or a window
//! (`AtMost`, `AtLeast`, `Within`), or a property of its series (`Always`, `Sometimes`,
//! `Eventually`, `Recovers`). Nothing passes for lack of data: a check with no value or no
//! sample to judge does not hold, and says so. A violated check is data — an [`Outcome`] with
//! the value that decided it, when, and one line for a person — not an error; errors
//! ([`CheckError`]) are for checks that cannot be evaluated at all, found before the run
//! ([`Check::validate`]) or against its metrics ([`Check::resolve`]).
//!
//! ```
//! use faultline::check::{Check, CheckClass};
//! use faultline::{Metrics, SimDuration, SimTime};
//!
//! let mut m = Metrics::new(Some(SimDuration::from_secs(1)));
//! let queue = m.gauge("api", "queue_len");
//! for (t, len) in [(0, 3.0), (1, 7.0), (2, 12.0), (3, 4.0)] {
//!     m.advance_to(SimTime::from_nanos(t * 1_000_000_000));
//!     m.set(queue, len);
//! }
//! m.finish(SimTime::from_nanos(3_000_000_000));
//!
//! let check: Check =
//!     ron::from_str(r#"Always(name: "queue bounded", value: "api.queue_len", max: 10)"#)?;
//! check.validate()?;
//! check.resolve(&m)?;
//! let outcome = check.evaluate(&m);
//! assert_eq!(check.class(), CheckClass::Safety);
//! assert!(!outcome.holds);
//! assert_eq!(outcome.value, Some(12.0));
//! assert_eq!(outcome.at_ns, Some(2_000_000_000));
//! assert_eq!(
//!     outcome.detail,
//!     "api.queue_len = 12 > 10 at 2s (first violation; 1 of 4 samples in [0s, 3s] out of bounds)"
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use crate::dist::{self, Scalar};
use crate::engine::time::{SimDuration, SimTime};
use crate::fault::suggest;
use crate::metrics::Metrics;
use crate::report::Unit;

// ---------------------------------------------------------------------------------------------
// Windows
// ---------------------------------------------------------------------------------------------

/// A stretch of virtual time `[from, until]`, written `("2m", "5m")` in a scenario.
///
/// Windows are read at sample times. A point of a level series (a counter's running total, a
/// gauge, a running aggregate) belongs to the window when its time is in `[from, until]`. A
/// point of a per-interval series (a histogram's `.p99` or `.count`, a rate) at time T stands
/// for the interval that ends at T, so it belongs when `from < T <= until`: the point at `from`
/// describes time before the window. The point at 0, which stands for the instant 0 alone,
/// belongs to a window that starts at 0. Windows whose ends are multiples of the sample
/// interval are therefore exact.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "(SimTime, SimTime)", into = "(SimTime, SimTime)")]
pub struct Window {
    pub from: SimTime,
    pub until: SimTime,
}

impl Window {
    pub const fn new(from: SimTime, until: SimTime) -> Window {
        Window { from, until }
    }

    /// Whether a point of a series at `t` belongs to the window (see the type's docs).
    fn holds_point(self, t: SimTime, per_interval: bool) -> bool {
        if per_interval {
            (self.from < t && t <= self.until) || (t == SimTime::ZERO && self.from == t)
        } else {
            self.from <= t && t <= self.until
        }
    }
}

impl From<(SimTime, SimTime)> for Window {
    fn from((from, until): (SimTime, SimTime)) -> Window {
        Window { from, until }
    }
}

impl From<Window> for (SimTime, SimTime) {
    fn from(w: Window) -> (SimTime, SimTime) {
        (w.from, w.until)
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, {}]", self.from, self.until)
    }
}

// ---------------------------------------------------------------------------------------------
// Expressions: syntax
// ---------------------------------------------------------------------------------------------

/// The longest expression accepted, in bytes: a ratio of two long names is under 200.
pub const EXPR_MAX_LEN: usize = 1_024;

/// The deepest nesting of calls accepted (`max(ratio(rate(a.b), ...))` is three).
pub const EXPR_MAX_DEPTH: usize = 16;

/// The functions, for error messages and suggestions.
const FUNCTIONS: [&str; 6] = ["rate", "ratio", "max", "min", "mean", "last"];

/// The statistics a histogram answers to, as the last segment of a name.
const STATS: [(&str, Stat); 8] = [
    ("p50", Stat::P50),
    ("p90", Stat::P90),
    ("p99", Stat::P99),
    ("p999", Stat::P999),
    ("mean", Stat::Mean),
    ("max", Stat::Max),
    ("min", Stat::Min),
    ("count", Stat::Count),
];

/// Name segments that mark a histogram of durations (see [`Expr::unit`]).
const DURATION_WORDS: [&str; 5] = ["latency", "wait", "time", "duration", "sojourn"];

/// A number or time series named from a run's metrics, such as `users.latency.p99` or
/// `ratio(users.ok_total.read, users.sent_total.read)`.
///
/// Grammar (whitespace is allowed around tokens):
///
/// ```text
/// expr := name | rate(name) | ratio(expr, expr) | max(expr) | min(expr) | mean(expr) | last(expr)
/// name := segment ("." segment)+      a segment is any run of characters but whitespace, '(', ')', ',' and '.'
/// ```
///
/// A name is resolved against the run's metrics: a registered counter or gauge of exactly that
/// name; else, when its last segment is a statistic (`p50`, `p90`, `p99`, `p999`, `mean`,
/// `max`, `min`, `count`) and the rest is a registered histogram, that statistic of it.
///
/// Parsed from a string ([`FromStr`], serde) and written back as the same text (trimmed of
/// surrounding whitespace) by `Display` and serde, so a scenario round-trips unchanged.
/// Two expressions are equal when they are written alike.
#[derive(Clone, PartialEq)]
pub struct Expr {
    text: String,
    node: Node,
}

#[derive(Clone, Debug, PartialEq)]
enum Node {
    Metric(String),
    /// `rate()` takes a name only: a rate of a ratio or of a maximum means nothing.
    Rate(String),
    Ratio(Box<Node>, Box<Node>),
    Aggregate(Aggregate, Box<Node>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Aggregate {
    Max,
    Min,
    Mean,
    Last,
}

impl Aggregate {
    fn name(self) -> &'static str {
        match self {
            Aggregate::Max => "max",
            Aggregate::Min => "min",
            Aggregate::Mean => "mean",
            Aggregate::Last => "last",
        }
    }
}

/// What is wrong with an expression's text; positions are 1-based character columns.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ExprError {
    #[error(
        "empty expression: name a metric such as `users.latency.p99`, or a function of one \
         such as `rate(users.ok_total)`"
    )]
    Empty,
    #[error("the expression is longer than {max} bytes")]
    TooLong { max: usize },
    #[error(
        "unknown function `{name}` at column {column}{}; the functions are rate, ratio, max, \
         min, mean and last",
        did_you_mean(suggestion)
    )]
    UnknownFunction {
        name: String,
        column: usize,
        suggestion: Option<String>,
    },
    #[error("`{function}(` at column {column} is never closed: a `)` is missing")]
    Unclosed { function: String, column: usize },
    #[error("unexpected `)` at column {column}: there is no `(` for it to close")]
    UnexpectedClose { column: usize },
    #[error("expected {expected} at column {column}, found {found}")]
    Expected {
        expected: &'static str,
        found: String,
        column: usize,
    },
    #[error("{function}() at column {column} takes {expected}, found {found}")]
    Arity {
        function: &'static str,
        expected: &'static str,
        found: usize,
        column: usize,
    },
    #[error(
        "rate() at column {column} takes a metric name (a counter or a histogram's `.count`), \
         not `{found}`"
    )]
    RateOfExpression { found: String, column: usize },
    #[error("`{name}` at column {column} is not a metric name: {reason}")]
    BadName {
        name: String,
        column: usize,
        reason: &'static str,
    },
    #[error("calls nested deeper than {max} at column {column}")]
    TooDeep { max: usize, column: usize },
}

impl ExprError {
    /// The 1-based character column the error points at, if it points at one.
    pub fn column(&self) -> Option<usize> {
        match self {
            ExprError::Empty | ExprError::TooLong { .. } => None,
            ExprError::UnknownFunction { column, .. }
            | ExprError::Unclosed { column, .. }
            | ExprError::UnexpectedClose { column }
            | ExprError::Expected { column, .. }
            | ExprError::Arity { column, .. }
            | ExprError::RateOfExpression { column, .. }
            | ExprError::BadName { column, .. }
            | ExprError::TooDeep { column, .. } => Some(*column),
        }
    }

    /// What was probably meant, for an unknown function.
    pub fn suggestion(&self) -> Option<&str> {
        match self {
            ExprError::UnknownFunction { suggestion, .. } => suggestion.as_deref(),
            _ => None,
        }
    }
}

fn did_you_mean(s: &Option<String>) -> String {
    s.as_ref()
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default()
}

/// A recursive-descent parser over the text; `pos` is a byte offset.
#[derive(Clone, Copy)]
struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn column(&self, byte: usize) -> usize {
        self.text[..byte].chars().count() + 1
    }

    fn skip_ws(&mut self) {
        let rest = &self.text[self.pos..];
        self.pos += rest.len() - rest.trim_start().len();
    }

    /// The next character after whitespace, not consumed.
    fn peek(&mut self) -> Option<char> {
        self.skip_ws();
        self.text[self.pos..].chars().next()
    }

    fn found(&mut self) -> String {
        match self.peek() {
            None => "the end".to_owned(),
            Some(c) => format!("`{c}`"),
        }
    }

    /// A maximal run of word characters (anything but whitespace and the punctuation).
    fn word(&mut self) -> (usize, &'a str) {
        self.skip_ws();
        let start = self.pos;
        let rest = &self.text[start..];
        let len = rest
            .find(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | ','))
            .unwrap_or(rest.len());
        self.pos += len;
        (start, &rest[..len])
    }

    fn parse_all(mut self) -> Result<Node, ExprError> {
        if self.peek().is_none() {
            return Err(ExprError::Empty);
        }
        let node = self.expr(0)?;
        match self.peek() {
            None => Ok(node),
            Some(')') => Err(ExprError::UnexpectedClose {
                column: self.column(self.pos),
            }),
            Some(_) => Err(ExprError::Expected {
                expected: "the end of the expression",
                found: self.found(),
                column: self.column(self.pos),
            }),
        }
    }

    fn expr(&mut self, depth: usize) -> Result<Node, ExprError> {
        match self.peek() {
            None | Some('(' | ')' | ',') => {
                return Err(ExprError::Expected {
                    expected: "a metric name or a function",
                    found: self.found(),
                    column: self.column(self.pos),
                });
            }
            Some(_) => {}
        }
        let (start, word) = self.word();
        if self.peek() != Some('(') {
            check_name(word, self.column(start))?;
            return Ok(Node::Metric(word.to_owned()));
        }
        let column = self.column(start);
        let Some((function, arity)) = function(word) else {
            return Err(ExprError::UnknownFunction {
                name: word.to_owned(),
                column,
                suggestion: self.suggest_function(word),
            });
        };
        if depth + 1 > EXPR_MAX_DEPTH {
            return Err(ExprError::TooDeep {
                max: EXPR_MAX_DEPTH,
                column,
            });
        }
        self.pos += 1; // the '('
        let mut args = Vec::new();
        if self.peek() == Some(')') {
            self.pos += 1;
        } else {
            loop {
                self.skip_ws();
                let arg_start = self.pos;
                let arg = self.expr(depth + 1)?;
                args.push((arg_start, arg));
                match self.peek() {
                    Some(',') => self.pos += 1,
                    Some(')') => {
                        self.pos += 1;
                        break;
                    }
                    None => {
                        return Err(ExprError::Unclosed {
                            function: word.to_owned(),
                            column,
                        });
                    }
                    Some(_) => {
                        return Err(ExprError::Expected {
                            expected: "`,` or `)`",
                            found: self.found(),
                            column: self.column(self.pos),
                        });
                    }
                }
            }
        }
        let found = args.len();
        let end = self.pos - 1; // the byte of the closing ')'
        let mut args = args.into_iter();
        let node = match (word, args.next(), args.next(), args.next()) {
            ("rate", Some((_, Node::Metric(name))), None, _) => Node::Rate(name),
            ("rate", Some((at, _)), None, _) => {
                return Err(ExprError::RateOfExpression {
                    found: self.text[at..end].trim_end().to_owned(),
                    column: self.column(at),
                });
            }
            ("ratio", Some((_, a)), Some((_, b)), None) => Node::Ratio(Box::new(a), Box::new(b)),
            ("max", Some((_, x)), None, _) => Node::Aggregate(Aggregate::Max, Box::new(x)),
            ("min", Some((_, x)), None, _) => Node::Aggregate(Aggregate::Min, Box::new(x)),
            ("mean", Some((_, x)), None, _) => Node::Aggregate(Aggregate::Mean, Box::new(x)),
            ("last", Some((_, x)), None, _) => Node::Aggregate(Aggregate::Last, Box::new(x)),
            _ => {
                return Err(ExprError::Arity {
                    function,
                    expected: if arity == 1 {
                        "1 argument"
                    } else {
                        "2 arguments"
                    },
                    found,
                    column,
                });
            }
        };
        Ok(node)
    }

    /// For an unknown function: a close function name, or, for `p99(users.latency)` (the way
    /// the design notes write it), the name of that statistic.
    fn suggest_function(&self, word: &str) -> Option<String> {
        if STATS.iter().any(|&(s, _)| s == word) {
            let mut ahead = *self;
            ahead.pos += 1;
            if let Ok(Node::Metric(name)) = ahead.expr(EXPR_MAX_DEPTH) {
                if ahead.peek() == Some(')') {
                    return Some(format!("{name}.{word}"));
                }
            }
        }
        suggest(word, FUNCTIONS)
    }
}

/// A function's name as a `'static` string, and how many arguments it takes.
fn function(word: &str) -> Option<(&'static str, usize)> {
    let name = FUNCTIONS.iter().copied().find(|&f| f == word)?;
    Some((name, if name == "ratio" { 2 } else { 1 }))
}

fn check_name(word: &str, column: usize) -> Result<(), ExprError> {
    let bad = |reason| ExprError::BadName {
        name: word.to_owned(),
        column,
        reason,
    };
    if FUNCTIONS.contains(&word) {
        return Err(bad("it is a function; call it with `(...)`"));
    }
    if !word.contains('.') {
        return Err(bad("a metric's full name is `owner.name`"));
    }
    if word.split('.').any(str::is_empty) {
        return Err(bad(
            "a name cannot start or end with a dot or have two in a row",
        ));
    }
    Ok(())
}

impl Expr {
    /// Parses the text; checks syntax only (see [`Expr::resolve`] for the names).
    pub fn parse(text: &str) -> Result<Expr, ExprError> {
        if text.trim().len() > EXPR_MAX_LEN {
            return Err(ExprError::TooLong { max: EXPR_MAX_LEN });
        }
        // The untrimmed text, so that columns point into what the user wrote.
        let node = Parser { text, pos: 0 }.parse_all()?;
        Ok(Expr {
            text: text.trim().to_owned(),
            node,
        })
    }

    /// The text as written (without surrounding whitespace).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The metric names the expression refers to, as written, in order of first appearance.
    pub fn names(&self) -> Vec<&str> {
        fn walk<'a>(node: &'a Node, out: &mut Vec<&'a str>) {
            match node {
                Node::Metric(name) | Node::Rate(name) => {
                    if !out.contains(&name.as_str()) {
                        out.push(name);
                    }
                }
                Node::Ratio(a, b) => {
                    walk(a, out);
                    walk(b, out);
                }
                Node::Aggregate(_, x) => walk(x, out),
            }
        }
        let mut out = Vec::new();
        walk(&self.node, &mut out);
        out
    }
}

impl FromStr for Expr {
    type Err = ExprError;

    fn from_str(s: &str) -> Result<Expr, ExprError> {
        Expr::parse(s)
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.text)
    }
}

impl fmt::Debug for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Expr({:?})", self.text)
    }
}

impl Serialize for Expr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Expr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Expr, D::Error> {
        let text = String::deserialize(deserializer)?;
        Expr::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Node {
    /// The canonical form, for messages about a part of an expression.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Metric(name) => f.write_str(name),
            Node::Rate(name) => write!(f, "rate({name})"),
            Node::Ratio(a, b) => write!(f, "ratio({a}, {b})"),
            Node::Aggregate(agg, x) => write!(f, "{}({x})", agg.name()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Expressions: resolution against a run's metrics
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stat {
    P50,
    P90,
    P99,
    P999,
    Mean,
    Max,
    Min,
    Count,
}

impl Stat {
    fn suffix(self) -> &'static str {
        match self {
            Stat::P50 => "p50",
            Stat::P90 => "p90",
            Stat::P99 => "p99",
            Stat::P999 => "p999",
            Stat::Mean => "mean",
            Stat::Max => "max",
            Stat::Min => "min",
            Stat::Count => "count",
        }
    }

    /// Whether the histogram has a per-interval series of this statistic
    /// (`metrics::HISTOGRAM_SERIES`).
    fn sampled(self) -> bool {
        matches!(self, Stat::P50 | Stat::P99 | Stat::Max | Stat::Count)
    }
}

/// What a name resolves to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target<'n> {
    Counter,
    Gauge,
    /// A histogram (by name) and one of its statistics.
    Stat(&'n str, Stat),
}

/// Why an expression cannot be evaluated against a run, before the check and field are known.
#[derive(Debug)]
enum Problem {
    Unknown {
        name: String,
        suggestion: Option<String>,
    },
    /// Wrong whatever the window: a histogram without a statistic, a rate of a gauge, no series.
    Unusable {
        reason: String,
        suggestion: Option<String>,
    },
    /// Only wrong because a window was asked for.
    NoWindowedForm {
        reason: String,
        suggestion: Option<String>,
    },
}

/// What an evaluation needs of the metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Need {
    WholeRun,
    Window,
    Series,
}

const STAT_LIST: &str = "p50, p90, p99, p999, mean, max, min, count";

fn lookup<'n>(m: &Metrics, name: &'n str) -> Result<Target<'n>, Problem> {
    if m.counter_value(name).is_some() {
        return Ok(Target::Counter);
    }
    if m.gauge_value(name).is_some() {
        return Ok(Target::Gauge);
    }
    if m.histogram_view(name).is_some() {
        return Err(Problem::Unusable {
            reason: format!("`{name}` is a histogram: name one of its statistics ({STAT_LIST})"),
            suggestion: Some(format!("{name}.p99")),
        });
    }
    if let Some((hist, last)) = name.rsplit_once('.') {
        if m.histogram_view(hist).is_some() {
            return match STATS.iter().find(|&&(s, _)| s == last) {
                Some(&(_, stat)) => Ok(Target::Stat(hist, stat)),
                None => Err(Problem::Unusable {
                    reason: format!(
                        "`{hist}` is a histogram, and `{last}` is not one of its statistics \
                         ({STAT_LIST})"
                    ),
                    suggestion: suggest(last, STATS.iter().map(|&(s, _)| s))
                        .map(|s| format!("{hist}.{s}")),
                }),
            };
        }
    }
    let mut candidates = Vec::new();
    for (registered, kind) in m.names() {
        if kind == crate::metrics::MetricKind::Histogram {
            candidates.extend(STATS.iter().map(|(s, _)| format!("{registered}.{s}")));
        } else {
            candidates.push(registered.to_owned());
        }
    }
    Err(Problem::Unknown {
        name: name.to_owned(),
        suggestion: suggest(name, candidates.iter().map(String::as_str)),
    })
}

fn no_samples(name: &str, need: Need) -> Problem {
    let reason = format!(
        "`{name}` has no time series: the run takes no samples (it has no sample interval)"
    );
    match need {
        Need::Window => Problem::NoWindowedForm {
            reason,
            suggestion: None,
        },
        _ => Problem::Unusable {
            reason,
            suggestion: None,
        },
    }
}

fn require(node: &Node, m: &Metrics, need: Need) -> Result<(), Problem> {
    let sampling = m.sample_interval().is_some();
    match node {
        Node::Metric(name) => {
            let target = lookup(m, name)?;
            if need == Need::WholeRun {
                return Ok(());
            }
            if let Target::Stat(hist, stat) = target {
                if !stat.sampled() {
                    // A quantile has a close sampled relative; a mean or minimum has none.
                    let suggestion =
                        matches!(stat, Stat::P90 | Stat::P999).then(|| format!("{hist}.p99"));
                    return Err(if need == Need::Window {
                        Problem::NoWindowedForm {
                            reason: format!(
                                "`{name}` has no value over a window: a histogram keeps only its \
                                 p50, p99, max and count per sample interval"
                            ),
                            suggestion,
                        }
                    } else {
                        Problem::Unusable {
                            reason: format!(
                                "`{name}` has no time series: a histogram is sampled only as \
                                 `.p50`, `.p99`, `.max` and `.count`"
                            ),
                            suggestion,
                        }
                    });
                }
            }
            if sampling {
                Ok(())
            } else {
                Err(no_samples(name, need))
            }
        }
        Node::Rate(name) => {
            let what = match lookup(m, name)? {
                Target::Counter | Target::Stat(_, Stat::Count) => None,
                Target::Gauge => Some(("a gauge", None)),
                Target::Stat(hist, stat) => Some((
                    if stat == Stat::Mean || stat == Stat::Min || stat == Stat::Max {
                        "a histogram statistic"
                    } else {
                        "a histogram quantile"
                    },
                    Some(format!("{hist}.count")),
                )),
            };
            if let Some((what, suggestion)) = what {
                return Err(Problem::Unusable {
                    reason: format!(
                        "rate() needs a counter or a histogram count, and `{name}` is {what}"
                    ),
                    suggestion,
                });
            }
            if need == Need::WholeRun || sampling {
                Ok(())
            } else {
                Err(no_samples(name, need))
            }
        }
        Node::Ratio(a, b) => {
            require(a, m, need)?;
            require(b, m, need)
        }
        Node::Aggregate(_, x) => require(x, m, Need::Series),
    }
}

impl Problem {
    fn into_error(self, check: Option<&str>, during: &'static str) -> CheckError {
        let check = check.map(str::to_owned);
        match self {
            Problem::Unknown { name, suggestion } => CheckError::UnknownMetric {
                check,
                field: "value",
                name,
                suggestion,
            },
            Problem::Unusable { reason, suggestion } => CheckError::NotApplicable {
                check,
                field: "value",
                reason,
                suggestion,
            },
            Problem::NoWindowedForm { reason, suggestion } => CheckError::NotApplicable {
                check,
                field: during,
                reason,
                suggestion,
            },
        }
    }
}

/// Why a check (or an expression) cannot be evaluated: found before the run by
/// [`Check::validate`], or against the run's metrics by [`Check::resolve`] and
/// [`Expr::resolve`]. Each names the check (when there is one) and the field at fault, so the
/// scenario layer can point at the right place in the file.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CheckError {
    /// A name the run did not register.
    #[error(
        "{}unknown metric `{name}`{}",
        prefix(check, field),
        did_you_mean(suggestion)
    )]
    UnknownMetric {
        check: Option<String>,
        field: &'static str,
        name: String,
        suggestion: Option<String>,
    },
    /// A function or a check that does not apply to what it was given: `rate()` of a gauge, a
    /// histogram named without a statistic, a window over a statistic that has no windowed
    /// form, a series check of a value that has no series.
    #[error("{}{reason}{}", prefix(check, field), did_you_mean(suggestion))]
    NotApplicable {
        check: Option<String>,
        field: &'static str,
        reason: String,
        suggestion: Option<String>,
    },
    /// A field that is wrong whatever the run: a window that ends before it starts, `min`
    /// above `max`, a fraction outside (0, 1], a missing bound, a number that is not finite.
    #[error("{}{reason}", prefix(check, field))]
    Invalid {
        check: Option<String>,
        field: &'static str,
        reason: String,
    },
}

fn prefix(check: &Option<String>, field: &str) -> String {
    match check {
        Some(check) => format!("check {check:?}: {field}: "),
        None => format!("{field}: "),
    }
}

impl CheckError {
    /// The name of the check at fault; `None` for an expression resolved on its own.
    pub fn check(&self) -> Option<&str> {
        match self {
            CheckError::UnknownMetric { check, .. }
            | CheckError::NotApplicable { check, .. }
            | CheckError::Invalid { check, .. } => check.as_deref(),
        }
    }

    /// The field of the check at fault: `name`, `value`, `min`, `max`, `during`, `fraction`,
    /// `baseline`. A check with no bound at all is reported on `min`.
    pub fn field(&self) -> &str {
        match self {
            CheckError::UnknownMetric { field, .. }
            | CheckError::NotApplicable { field, .. }
            | CheckError::Invalid { field, .. } => field,
        }
    }

    /// What was probably meant: the closest registered name, or the usable form of a name.
    pub fn suggestion(&self) -> Option<&str> {
        match self {
            CheckError::UnknownMetric { suggestion, .. }
            | CheckError::NotApplicable { suggestion, .. } => suggestion.as_deref(),
            CheckError::Invalid { .. } => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Expressions: evaluation
// ---------------------------------------------------------------------------------------------

/// A series as evaluation sees it: points in time order, and whether each point stands for
/// the interval ending at it (see [`Window`]).
struct Line {
    points: Vec<(SimTime, f64)>,
    per_interval: bool,
}

impl Line {
    /// The non-NaN points in `window` (all of them without one).
    fn values_in(&self, window: Option<Window>) -> Vec<(SimTime, f64)> {
        self.points
            .iter()
            .filter(|&&(t, v)| {
                !v.is_nan() && window.is_none_or(|w| w.holds_point(t, self.per_interval))
            })
            .copied()
            .collect()
    }
}

/// The per-interval increase of a counter (the first sample's increase counts from 0, where
/// every counter starts) or a histogram's per-interval counts; `None` for anything else.
fn increments(m: &Metrics, name: &str) -> Option<Vec<(SimTime, f64)>> {
    match lookup(m, name).ok()? {
        Target::Counter => {
            let mut previous = 0.0;
            let points = m.series(name)?.points.iter().map(|&(t, v)| {
                let increase = v - previous;
                previous = v;
                (t, increase)
            });
            Some(points.collect())
        }
        Target::Stat(hist, Stat::Count) => Some(m.series(&format!("{hist}.count"))?.points.clone()),
        _ => None,
    }
}

/// A name that counts events (a counter or a histogram's count), whose ratios are taken
/// between increments.
fn flow(m: &Metrics, node: &Node) -> Option<Vec<(SimTime, f64)>> {
    match node {
        Node::Metric(name) => increments(m, name),
        _ => None,
    }
}

/// Points of `a` and `b` at the same times, combined; times present in only one are dropped
/// (a metric registered mid-run has no points before its registration).
fn join(
    a: &[(SimTime, f64)],
    b: &[(SimTime, f64)],
    f: impl Fn(f64, f64) -> f64,
) -> Vec<(SimTime, f64)> {
    let mut out = Vec::with_capacity(a.len().min(b.len()));
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push((a[i].0, f(a[i].1, b[j].1)));
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// `x / y`, NaN ("no value") when `y` is 0.
fn divide(x: f64, y: f64) -> f64 {
    if y == 0.0 { f64::NAN } else { x / y }
}

/// A running max, min, mean or last value.
#[derive(Clone, Copy)]
struct Running {
    agg: Aggregate,
    acc: f64,
    n: u64,
}

impl Running {
    fn new(agg: Aggregate) -> Running {
        Running {
            agg,
            acc: 0.0,
            n: 0,
        }
    }

    /// Folds in a value; NaN ("no value in this interval") is skipped.
    fn push(&mut self, v: f64) {
        if v.is_nan() {
            return;
        }
        self.acc = match (self.agg, self.n) {
            (_, 0) => v,
            (Aggregate::Max, _) => self.acc.max(v),
            (Aggregate::Min, _) => self.acc.min(v),
            (Aggregate::Mean, _) => self.acc + v,
            (Aggregate::Last, _) => v,
        };
        self.n += 1;
    }

    fn get(&self) -> Option<f64> {
        match (self.agg, self.n) {
            (_, 0) => None,
            (Aggregate::Mean, n) => Some(self.acc / n as f64),
            _ => Some(self.acc),
        }
    }
}

fn aggregate(agg: Aggregate, values: impl Iterator<Item = f64>) -> Option<f64> {
    let mut running = Running::new(agg);
    values.for_each(|v| running.push(v));
    running.get()
}

fn line(node: &Node, m: &Metrics) -> Option<Line> {
    match node {
        Node::Metric(name) => match lookup(m, name).ok()? {
            Target::Counter | Target::Gauge => Some(Line {
                points: m.series(name)?.points.clone(),
                per_interval: false,
            }),
            Target::Stat(hist, stat) if stat.sampled() => Some(Line {
                points: m
                    .series(&format!("{hist}.{}", stat.suffix()))?
                    .points
                    .clone(),
                per_interval: true,
            }),
            Target::Stat(..) => None,
        },
        Node::Rate(name) => {
            let secs = m.sample_interval()?.as_secs_f64();
            // The point at 0 covers no time, and a rate over no time has no value: 0/s
            // there would fail every `Always(rate >= x)` over a whole run at its first sample.
            let rate = |(t, v): (SimTime, f64)| {
                let r = if t == SimTime::ZERO {
                    f64::NAN
                } else {
                    v / secs
                };
                (t, r)
            };
            let points = increments(m, name)?.into_iter().map(rate);
            Some(Line {
                points: points.collect(),
                per_interval: true,
            })
        }
        Node::Ratio(a, b) => {
            if let (Some(da), Some(db)) = (flow(m, a), flow(m, b)) {
                return Some(Line {
                    points: join(&da, &db, divide),
                    per_interval: true,
                });
            }
            let (la, lb) = (line(a, m)?, line(b, m)?);
            Some(Line {
                points: join(&la.points, &lb.points, divide),
                per_interval: la.per_interval || lb.per_interval,
            })
        }
        Node::Aggregate(agg, x) => {
            let inner = line(x, m)?;
            let mut running = Running::new(*agg);
            let points = inner.points.iter().map(|&(t, v)| {
                running.push(v);
                (t, running.get().unwrap_or(f64::NAN))
            });
            Some(Line {
                points: points.collect(),
                per_interval: false,
            })
        }
    }
}

/// The increase of a counter, or the sum of a histogram's counts, over the part of `w` the
/// samples cover, and the end of that part: `None` when it covers no time.
fn flow_in(m: &Metrics, name: &str, target: Target<'_>, w: Window) -> Option<(f64, SimTime)> {
    let (increase, end) = match target {
        Target::Counter => {
            let series = m.series(name)?;
            let (end, at_end) = *series
                .points
                .iter()
                .rev()
                .find(|&&(t, _)| w.holds_point(t, false))?;
            // A counter registered after the window's start was 0 until then.
            (at_end - series.value_at(w.from).unwrap_or(0.0), end)
        }
        Target::Stat(hist, Stat::Count) => {
            let series = m.series(&format!("{hist}.count"))?;
            let inside = series
                .points
                .iter()
                .filter(|&&(t, _)| w.holds_point(t, true));
            let (sum, end) = inside.fold((0.0, None), |(sum, _), &(t, v)| (sum + v, Some(t)));
            (sum, end?)
        }
        _ => return None,
    };
    (end > w.from).then_some((increase, end))
}

fn whole_run_stat(m: &Metrics, hist: &str, stat: Stat) -> Option<f64> {
    let h = m.histogram_view(hist)?;
    if stat == Stat::Count {
        return Some(h.count() as f64);
    }
    if h.count() == 0 {
        return None;
    }
    Some(match stat {
        Stat::P50 => h.quantile(0.5) as f64,
        Stat::P90 => h.quantile(0.9) as f64,
        Stat::P99 => h.quantile(0.99) as f64,
        Stat::P999 => h.quantile(0.999) as f64,
        Stat::Mean => h.mean(),
        Stat::Max => h.max() as f64,
        Stat::Min => h.min() as f64,
        Stat::Count => h.count() as f64,
    })
}

fn scalar(node: &Node, m: &Metrics, window: Option<Window>) -> Option<f64> {
    match node {
        Node::Metric(name) => {
            let target = lookup(m, name).ok()?;
            let Some(w) = window else {
                return match target {
                    Target::Counter => m.counter_value(name).map(|v| v as f64),
                    Target::Gauge => m.gauge_time_weighted_mean(name),
                    Target::Stat(hist, stat) => whole_run_stat(m, hist, stat),
                };
            };
            match target {
                Target::Counter | Target::Stat(_, Stat::Count) => {
                    flow_in(m, name, target, w).map(|(increase, _)| increase)
                }
                Target::Gauge => aggregate(
                    Aggregate::Mean,
                    line(node, m)?
                        .values_in(Some(w))
                        .into_iter()
                        .map(|(_, v)| v),
                ),
                // The worst interval in the window: an interval's p99 is no bound on the
                // window's, but the largest of them is a conservative stand-in.
                Target::Stat(_, _) => aggregate(
                    Aggregate::Max,
                    line(node, m)?
                        .values_in(Some(w))
                        .into_iter()
                        .map(|(_, v)| v),
                ),
            }
        }
        Node::Rate(name) => {
            let target = lookup(m, name).ok()?;
            match window {
                None => {
                    let secs = m.now().as_secs_f64();
                    let total = match target {
                        Target::Counter => m.counter_value(name)? as f64,
                        Target::Stat(hist, Stat::Count) => m.histogram_view(hist)?.count() as f64,
                        _ => return None,
                    };
                    (secs > 0.0).then(|| total / secs)
                }
                Some(w) => {
                    let (increase, end) = flow_in(m, name, target, w)?;
                    Some(increase / end.saturating_duration_since(w.from).as_secs_f64())
                }
            }
        }
        Node::Ratio(a, b) => {
            let (x, y) = (scalar(a, m, window)?, scalar(b, m, window)?);
            let q = divide(x, y);
            (!q.is_nan()).then_some(q)
        }
        Node::Aggregate(agg, x) => {
            let values = line(x, m)?.values_in(window);
            aggregate(*agg, values.into_iter().map(|(_, v)| v))
        }
    }
}

/// Whether a histogram's name says it holds durations (see [`Expr::unit`]).
fn measures_time(hist: &str) -> bool {
    // The owner is the first segment; an actor called "runtime" says nothing of its metrics.
    hist.split('.')
        .skip(1)
        .any(|segment| DURATION_WORDS.iter().any(|w| segment.ends_with(w)))
}

fn unit(node: &Node, m: &Metrics) -> Unit {
    match node {
        Node::Metric(name) => match lookup(m, name) {
            Ok(Target::Stat(hist, stat)) if stat != Stat::Count && measures_time(hist) => {
                Unit::Nanos
            }
            _ => Unit::Count,
        },
        Node::Rate(_) => Unit::PerSecond,
        Node::Ratio(..) => Unit::Ratio,
        Node::Aggregate(_, x) => unit(x, m),
    }
}

/// Why [`scalar`] gave nothing, for a person.
fn no_value_reason(node: &Node, m: &Metrics, window: Option<Window>) -> String {
    if let Node::Ratio(a, b) = node {
        if scalar(a, m, window).is_none() {
            return no_value_reason(a, m, window);
        }
        if scalar(b, m, window).is_none() {
            return no_value_reason(b, m, window);
        }
        return format!("its denominator `{b}` is 0");
    }
    let needs_series = window.is_some() || matches!(node, Node::Aggregate(..));
    if needs_series && m.sample_interval().is_none() {
        "the run takes no samples".to_owned()
    } else if window.is_some() {
        "no sample in the window holds a value".to_owned()
    } else if matches!(node, Node::Rate(_)) && m.now() == SimTime::ZERO {
        "no virtual time passed".to_owned()
    } else {
        "nothing was recorded".to_owned()
    }
}

impl Expr {
    /// Checks the names against a run's metrics and that each function applies to what it is
    /// given, for a value over the whole run. The error says which name is unknown (with the
    /// closest registered one) or why a function does not apply.
    pub fn resolve(&self, metrics: &Metrics) -> Result<(), CheckError> {
        require(&self.node, metrics, Need::WholeRun).map_err(|p| p.into_error(None, "value"))
    }

    /// As [`Expr::resolve`], and that the expression has a time series ([`Expr::series`]), as
    /// a chart needs.
    pub fn resolve_series(&self, metrics: &Metrics) -> Result<(), CheckError> {
        require(&self.node, metrics, Need::Series).map_err(|p| p.into_error(None, "value"))
    }

    /// One number for the whole run (`window` None) or for a window of virtual time; `None`
    /// when there is no value (nothing recorded, a ratio over 0, no sample in the window, a
    /// name that does not resolve).
    ///
    /// * A counter: its final total. In a window: its increase from the window's start to its
    ///   end, read at sample times (the last sample at or before `from`, or 0 for a counter
    ///   registered later, to the last sample in the window).
    /// * A gauge: its time-weighted mean over the run
    ///   ([`Metrics::gauge_time_weighted_mean`]). In a window: the plain mean of its samples in
    ///   the window.
    /// * A histogram statistic: the exact whole-run value (quantiles within HDR's 0.1%); no
    ///   value when nothing was recorded, except `count`, which is then 0. In a window: `p50`,
    ///   `p99` and `max` are the largest per-interval value in the window (the worst
    ///   interval: conservative, since no per-interval series gives the window's own
    ///   quantile), `count` is the sum of the per-interval counts, and `mean`, `min`, `p90` and
    ///   `p999` have no value ([`Check::resolve`] rejects them with a window).
    /// * `rate(X)`: X's increase (a counter) or count (a histogram's `.count`) divided by the
    ///   seconds of virtual time it covers: the run's end ([`Metrics::now`]) for the whole run;
    ///   in a window, from its start to the last sample in it, so that a window reaching past
    ///   the end of the run is not diluted by time that never happened.
    /// * `ratio(A, B)`: A / B over the same window; no value when B is 0.
    /// * `max(X)`, `min(X)`, `mean(X)`, `last(X)`: that aggregate of X's series samples (those
    ///   in the window, if given), NaN intervals skipped.
    ///
    /// The window rules for sample points are on [`Window`].
    pub fn scalar(&self, metrics: &Metrics, window: Option<Window>) -> Option<f64> {
        scalar(&self.node, metrics, window).filter(|v| !v.is_nan())
    }

    /// The expression as a time series at the sample times, NaN marking "no value in this
    /// interval"; `None` when the run takes no samples, a name does not resolve, or the value
    /// has no series (a histogram's mean, min, p90 and p999 are not sampled).
    ///
    /// * A counter: its running total. A gauge: its values. A histogram statistic: its
    ///   per-interval series (`.p50`, `.p99`, `.max`, `.count`).
    /// * `rate(X)`: X's increase in each interval divided by the interval's seconds; the first
    ///   point of a metric registered mid-run, having no previous sample, counts the increase
    ///   since time 0 (when it was 0). The point at time 0 itself is NaN: it covers no time.
    /// * `ratio(A, B)` of two counters or histogram counts: A's increase in each interval over
    ///   B's, NaN where B did not increase. Of anything else: pointwise A / B, NaN where B is 0.
    ///   Points are kept at the times both have.
    /// * `max(X)`, `min(X)`, `mean(X)`, `last(X)`: the running aggregate of X's non-NaN
    ///   points so far, NaN before the first.
    pub fn series(&self, metrics: &Metrics) -> Option<Vec<(SimTime, f64)>> {
        line(&self.node, metrics).map(|l| l.points)
    }

    /// What the value measures, for tables and charts. Histograms record nanoseconds by
    /// convention, but also counts (batch sizes, rows), so a histogram statistic other than
    /// `count` is [`Unit::Nanos`] when a segment of the histogram's name after the owner ends
    /// in `latency`, `wait`, `time`, `duration` or `sojourn` (`users.latency`,
    /// `users.latency.checkout`, `api.pool_wait`, `q.sojourn`), else [`Unit::Count`].
    /// `rate` is [`Unit::PerSecond`], `ratio` is [`Unit::Ratio`], counters, gauges and counts
    /// are [`Unit::Count`], and an aggregate has the unit of what it aggregates.
    pub fn unit(&self, metrics: &Metrics) -> Unit {
        unit(&self.node, metrics)
    }
}

// ---------------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------------

/// Optional fields written bare (`during: ("2m", "5m")`, `min: 10`) rather than as RON's
/// `Some(...)`: a scenario says what a check needs, not how Rust stores it.
mod bare {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => v.serialize(s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        T::deserialize(d).map(Some)
    }
}

/// A property of a finished run, as written in a scenario's `checks`. Bounds are
/// [`Scalar`]s, so a latency bound can be written `"500ms"` (nanoseconds); bounds are
/// inclusive.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Check {
    /// The value over the run (or `during`) is at most `max`.
    AtMost {
        name: String,
        value: Expr,
        max: Scalar,
        #[serde(default, skip_serializing_if = "Option::is_none", with = "bare")]
        during: Option<Window>,
    },
    /// The value over the run (or `during`) is at least `min`.
    AtLeast {
        name: String,
        value: Expr,
        min: Scalar,
        #[serde(default, skip_serializing_if = "Option::is_none", with = "bare")]
        during: Option<Window>,
    },
    /// The value over the run (or `during`) is in `[min, max]`.
    Within {
        name: String,
        value: Expr,
        min: Scalar,
        max: Scalar,
        #[serde(default, skip_serializing_if = "Option::is_none", with = "bare")]
        during: Option<Window>,
    },
    /// Every sample of the value's series in `during` (default: the whole run) is within the
    /// bounds, and there is at least one.
    Always {
        name: String,
        value: Expr,
        #[serde(default, skip_serializing_if = "Option::is_none", with = "bare")]
        min: Option<Scalar>,
        #[serde(default, skip_serializing_if = "Option::is_none", with = "bare")]
        max: Option<Scalar>,
        #[serde(default, skip_serializing_if = "Option::is_none", with = "bare")]
        during: Option<Window>,
    },
    /// At least one sample of the value's series in `during` (default: the whole run) is
    /// within the bounds.
    Sometimes {
        name: String,
        value: Expr,
        #[serde(default, skip_serializing_if = "Option::is_none", with = "bare")]
        min: Option<Scalar>,
        #[serde(default, skip_serializing_if = "Option::is_none", with = "bare")]
        max: Option<Scalar>,
        #[serde(default, skip_serializing_if = "Option::is_none", with = "bare")]
        during: Option<Window>,
    },
    /// At some sample time in `[after, after + within]` the value is within the bounds, and
    /// every sample from then to the end of the run is too: it recovered, and stayed.
    Eventually {
        name: String,
        value: Expr,
        #[serde(default, skip_serializing_if = "Option::is_none", with = "bare")]
        min: Option<Scalar>,
        #[serde(default, skip_serializing_if = "Option::is_none", with = "bare")]
        max: Option<Scalar>,
        after: SimTime,
        within: SimDuration,
    },
    /// `Eventually` with `min = fraction * ` the mean of the value's samples in `baseline`.
    Recovers {
        name: String,
        value: Expr,
        fraction: f64,
        baseline: Window,
        after: SimTime,
        within: SimDuration,
    },
}

/// Which exit code a violated check maps to in the CLI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CheckClass {
    /// Something bad never happens: `AtMost`, `AtLeast`, `Within`, `Always` (exit code 2).
    Safety,
    /// Something good happens: `Sometimes`, `Eventually`, `Recovers` (exit code 3).
    Liveness,
}

/// The verdict on one check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub holds: bool,
    /// The number the check judged, never NaN: the scalar for `AtMost`/`AtLeast`/`Within`;
    /// for series checks the sample that decided it — `Always`: the first violating sample,
    /// or when it holds the one closest to a bound; `Sometimes`: the first satisfying sample,
    /// or when it fails the one closest to satisfying; `Eventually`/`Recovers`: the sample at
    /// recovery, or when it fails the one that shows it (the relapse, or the last sample by
    /// the deadline). `None` when there was no data.
    pub value: Option<f64>,
    /// When that sample was taken, for series checks, in nanoseconds of virtual time.
    pub at_ns: Option<u64>,
    /// One line for a person, values in their unit: `users.latency.p99 = 812 ms > 500 ms`.
    pub detail: String,
}

impl Outcome {
    fn no_data(detail: String) -> Outcome {
        Outcome {
            holds: false,
            value: None,
            at_ns: None,
            detail,
        }
    }

    fn at(holds: bool, (t, v): (SimTime, f64), detail: String) -> Outcome {
        Outcome {
            holds,
            value: Some(v),
            at_ns: Some(t.as_nanos()),
            detail,
        }
    }
}

/// A check's bounds as plain numbers, with the unit to write values in.
#[derive(Clone, Copy, Debug)]
struct Bounds {
    min: Option<f64>,
    max: Option<f64>,
    unit: Unit,
}

impl Bounds {
    fn admits(&self, v: f64) -> bool {
        self.min.is_none_or(|lo| v >= lo) && self.max.is_none_or(|hi| v <= hi)
    }

    /// How far inside the bounds `v` is (negative outside): the smaller of its distances to
    /// each bound.
    fn margin(&self, v: f64) -> f64 {
        let above_min = self.min.map_or(f64::INFINITY, |lo| v - lo);
        let below_max = self.max.map_or(f64::INFINITY, |hi| hi - v);
        above_min.min(below_max)
    }

    fn describe(&self) -> String {
        let f = |v| self.unit.format(v);
        match (self.min, self.max) {
            (Some(lo), Some(hi)) => format!("in [{}, {}]", f(lo), f(hi)),
            (Some(lo), None) => format!(">= {}", f(lo)),
            (None, Some(hi)) => format!("<= {}", f(hi)),
            (None, None) => "anything".to_owned(),
        }
    }

    /// `v` against the bounds: `812 ms > 500 ms`, `181/s >= 150/s`.
    fn judge(&self, v: f64) -> String {
        let f = |v| self.unit.format(v);
        match (self.min, self.max) {
            (Some(lo), _) if v < lo => format!("{} < {}", f(v), f(lo)),
            (_, Some(hi)) if v > hi => format!("{} > {}", f(v), f(hi)),
            _ => format!("{} {}", f(v), self.describe()),
        }
    }

    /// What to call the sample nearest a bound: from inside (the one that came closest to
    /// violating) or from outside (the one that came closest to satisfying).
    fn nearest(&self, inside: bool) -> &'static str {
        match (self.min, self.max, inside) {
            (Some(_), None, true) | (None, Some(_), false) => "lowest",
            (None, Some(_), true) | (Some(_), None, false) => "highest",
            _ => "nearest a bound",
        }
    }
}

impl Check {
    pub fn name(&self) -> &str {
        match self {
            Check::AtMost { name, .. }
            | Check::AtLeast { name, .. }
            | Check::Within { name, .. }
            | Check::Always { name, .. }
            | Check::Sometimes { name, .. }
            | Check::Eventually { name, .. }
            | Check::Recovers { name, .. } => name,
        }
    }

    /// The expression the check judges.
    pub fn value(&self) -> &Expr {
        match self {
            Check::AtMost { value, .. }
            | Check::AtLeast { value, .. }
            | Check::Within { value, .. }
            | Check::Always { value, .. }
            | Check::Sometimes { value, .. }
            | Check::Eventually { value, .. }
            | Check::Recovers { value, .. } => value,
        }
    }

    pub fn class(&self) -> CheckClass {
        match self {
            Check::AtMost { .. }
            | Check::AtLeast { .. }
            | Check::Within { .. }
            | Check::Always { .. } => CheckClass::Safety,
            Check::Sometimes { .. } | Check::Eventually { .. } | Check::Recovers { .. } => {
                CheckClass::Liveness
            }
        }
    }

    /// The bounds as written, `(min, max)`; `Recovers` has none until its baseline is known.
    fn written_bounds(&self) -> (Option<Scalar>, Option<Scalar>) {
        match self {
            Check::AtMost { max, .. } => (None, Some(*max)),
            Check::AtLeast { min, .. } => (Some(*min), None),
            Check::Within { min, max, .. } => (Some(*min), Some(*max)),
            Check::Always { min, max, .. }
            | Check::Sometimes { min, max, .. }
            | Check::Eventually { min, max, .. } => (*min, *max),
            Check::Recovers { .. } => (None, None),
        }
    }

    /// The window of a scalar check (`AtMost`, `AtLeast`, `Within`), if it has one.
    fn scalar_window(&self) -> Option<Window> {
        match self {
            Check::AtMost { during, .. }
            | Check::AtLeast { during, .. }
            | Check::Within { during, .. } => *during,
            _ => None,
        }
    }

    fn invalid(&self, field: &'static str, reason: String) -> CheckError {
        CheckError::Invalid {
            check: Some(self.name().to_owned()),
            field,
            reason,
        }
    }

    /// What can be checked without a run: a name, finite bounds written alike (both
    /// durations or both numbers), `min <= max`, at least one bound for `Always`,
    /// `Sometimes` and `Eventually`, windows that end after they start, a `fraction` in
    /// (0, 1].
    pub fn validate(&self) -> Result<(), CheckError> {
        if self.name().trim().is_empty() {
            return Err(self.invalid("name", "a check needs a name".to_owned()));
        }
        let (min, max) = self.written_bounds();
        for (field, bound) in [("min", min), ("max", max)] {
            if let Some(b) = bound {
                if !b.value.is_finite() {
                    return Err(
                        self.invalid(field, format!("must be a finite number, not {}", b.value))
                    );
                }
            }
        }
        if let (Some(lo), Some(hi)) = (min, max) {
            if lo.unit != hi.unit {
                let what = |s: Scalar| {
                    if s.unit == dist::Unit::Nanos {
                        "a duration"
                    } else {
                        "a plain number"
                    }
                };
                return Err(self.invalid(
                    "max",
                    format!(
                        "is {} but min is {}: write both the same way",
                        what(hi),
                        what(lo)
                    ),
                ));
            }
            if lo.value > hi.value {
                return Err(self.invalid("min", format!("{lo} is above max {hi}")));
            }
        }
        let needs_a_bound = matches!(
            self,
            Check::Always { .. } | Check::Sometimes { .. } | Check::Eventually { .. }
        );
        if needs_a_bound && min.is_none() && max.is_none() {
            return Err(self.invalid("min", "needs a bound: give min, max or both".to_owned()));
        }
        let windows = match self {
            Check::AtMost { during, .. }
            | Check::AtLeast { during, .. }
            | Check::Within { during, .. }
            | Check::Always { during, .. }
            | Check::Sometimes { during, .. } => vec![("during", *during)],
            Check::Recovers { baseline, .. } => vec![("baseline", Some(*baseline))],
            Check::Eventually { .. } => vec![],
        };
        for (field, window) in windows {
            if let Some(w) = window {
                if w.until <= w.from {
                    return Err(
                        self.invalid(field, format!("the window {w} must end after it starts"))
                    );
                }
            }
        }
        if let Check::Recovers { fraction, .. } = self {
            if !(fraction.is_finite() && *fraction > 0.0 && *fraction <= 1.0) {
                return Err(self.invalid(
                    "fraction",
                    format!("must be in (0, 1] (0.9 is 90% of the baseline), not {fraction}"),
                ));
            }
        }
        Ok(())
    }

    /// What can be checked against a run's metrics: the names exist, the functions apply, a
    /// windowed check's value has a windowed form (not a histogram's mean, min, p90 or p999),
    /// a series check's value has a series, and a duration bound is not set on a rate or a
    /// ratio. Does not repeat [`Check::validate`].
    pub fn resolve(&self, metrics: &Metrics) -> Result<(), CheckError> {
        let need = match self {
            Check::AtMost { .. } | Check::AtLeast { .. } | Check::Within { .. } => {
                if self.scalar_window().is_some() {
                    Need::Window
                } else {
                    Need::WholeRun
                }
            }
            _ => Need::Series,
        };
        let value = self.value();
        require(&value.node, metrics, need)
            .map_err(|p| p.into_error(Some(self.name()), "during"))?;
        let unit = value.unit(metrics);
        if matches!(unit, Unit::PerSecond | Unit::Ratio) {
            let (min, max) = self.written_bounds();
            for (field, bound) in [("min", min), ("max", max)] {
                if bound.is_some_and(|b| b.unit == dist::Unit::Nanos) {
                    let what = if unit == Unit::Ratio {
                        "a ratio"
                    } else {
                        "a rate per second"
                    };
                    return Err(CheckError::NotApplicable {
                        check: Some(self.name().to_owned()),
                        field,
                        reason: format!(
                            "is a duration, but `{value}` is {what}: write a plain number"
                        ),
                        suggestion: None,
                    });
                }
            }
        }
        Ok(())
    }

    /// Judges the check on a finished run. Never fails: a check whose value has no data does
    /// not hold, and its detail says why. Meant for checks that passed [`Check::validate`] and
    /// [`Check::resolve`]; on others it still returns (a bound that is NaN admits nothing).
    pub fn evaluate(&self, metrics: &Metrics) -> Outcome {
        let (min, max) = self.written_bounds();
        let written_as_duration = [min, max]
            .iter()
            .flatten()
            .any(|b| b.unit == dist::Unit::Nanos);
        // A duration bound says the value is one, even when a histogram's name does not.
        let unit = if written_as_duration {
            Unit::Nanos
        } else {
            self.value().unit(metrics)
        };
        let bounds = Bounds {
            min: min.map(|b| b.value),
            max: max.map(|b| b.value),
            unit,
        };
        let value = self.value();
        match self {
            Check::AtMost { during, .. }
            | Check::AtLeast { during, .. }
            | Check::Within { during, .. } => scalar_outcome(value, bounds, *during, metrics),
            Check::Always { during, .. } => series_outcome(value, bounds, *during, metrics, always),
            Check::Sometimes { during, .. } => {
                series_outcome(value, bounds, *during, metrics, sometimes)
            }
            Check::Eventually { after, within, .. } => match line(&value.node, metrics) {
                None => no_series(value, metrics),
                Some(line) => eventually(value, bounds, &line, *after, *within, metrics.now()),
            },
            Check::Recovers {
                fraction,
                baseline,
                after,
                within,
                ..
            } => {
                let Some(line) = line(&value.node, metrics) else {
                    return no_series(value, metrics);
                };
                let base = line.values_in(Some(*baseline));
                let Some(mean) = aggregate(Aggregate::Mean, base.iter().map(|&(_, v)| v)) else {
                    return Outcome::no_data(format!(
                        "no sample of {value} in the baseline {baseline}"
                    ));
                };
                let f = |v| unit.format(v);
                if mean <= 0.0 {
                    // Any value "recovers" to a fraction of nothing: that would be a vacuous pass.
                    return Outcome::no_data(format!(
                        "the baseline of {value} in {baseline} is {}: there is nothing to recover to",
                        f(mean)
                    ));
                }
                let bounds = Bounds {
                    min: Some(fraction * mean),
                    max: None,
                    unit,
                };
                let mut outcome = eventually(value, bounds, &line, *after, *within, metrics.now());
                outcome.detail = format!(
                    "baseline {} in {baseline}, {} of it is {}: {}",
                    f(mean),
                    Unit::Ratio.format(*fraction),
                    f(fraction * mean),
                    outcome.detail
                );
                outcome
            }
        }
    }
}

fn scalar_outcome(value: &Expr, bounds: Bounds, during: Option<Window>, m: &Metrics) -> Outcome {
    let label = match during {
        Some(w) => format!("{value} in {w}"),
        None => value.to_string(),
    };
    match value.scalar(m, during) {
        None => Outcome::no_data(format!(
            "{label} has no value: {}",
            no_value_reason(&value.node, m, during)
        )),
        Some(v) => Outcome {
            holds: bounds.admits(v),
            value: Some(v),
            at_ns: None,
            detail: format!("{label} = {}", bounds.judge(v)),
        },
    }
}

fn no_series(value: &Expr, m: &Metrics) -> Outcome {
    let why = if m.sample_interval().is_none() {
        ": the run takes no samples"
    } else {
        ""
    };
    Outcome::no_data(format!("{value} has no time series{why}"))
}

/// The verdict of `Always` or `Sometimes` on the samples in a window (at least one).
type Judge = fn(&Expr, Bounds, Window, &[(SimTime, f64)]) -> Outcome;

/// `Always` or `Sometimes` over the non-NaN samples in the window, at least one.
fn series_outcome(
    value: &Expr,
    bounds: Bounds,
    during: Option<Window>,
    m: &Metrics,
    judge: Judge,
) -> Outcome {
    let Some(line) = line(&value.node, m) else {
        return no_series(value, m);
    };
    let window = during.unwrap_or(Window::new(SimTime::ZERO, m.now()));
    let samples = line.values_in(Some(window));
    if samples.is_empty() {
        return Outcome::no_data(format!("no sample of {value} in {window}"));
    }
    judge(value, bounds, window, &samples)
}

fn always(value: &Expr, bounds: Bounds, window: Window, samples: &[(SimTime, f64)]) -> Outcome {
    let bad = samples.iter().filter(|&&(_, v)| !bounds.admits(v));
    let n = samples.len();
    if let Some(&(t, v)) = bad.clone().next() {
        let detail = format!(
            "{value} = {} at {t} (first violation; {} of {n} samples in {window} out of bounds)",
            bounds.judge(v),
            bad.count(),
        );
        return Outcome::at(false, (t, v), detail);
    }
    let closest = samples
        .iter()
        .copied()
        .reduce(|a, b| {
            if bounds.margin(b.1) < bounds.margin(a.1) {
                b
            } else {
                a
            }
        })
        .unwrap_or(samples[0]);
    let detail = format!(
        "all {n} samples of {value} in {window} are {} ({}: {} at {})",
        bounds.describe(),
        bounds.nearest(true),
        bounds.unit.format(closest.1),
        closest.0
    );
    Outcome::at(true, closest, detail)
}

fn sometimes(value: &Expr, bounds: Bounds, window: Window, samples: &[(SimTime, f64)]) -> Outcome {
    let good = samples.iter().filter(|&&(_, v)| bounds.admits(v));
    let n = samples.len();
    if let Some(&(t, v)) = good.clone().next() {
        let detail = format!(
            "{value} = {} at {t} (first of {} of {n} samples in {window} that are)",
            bounds.judge(v),
            good.count(),
        );
        return Outcome::at(true, (t, v), detail);
    }
    let best = samples
        .iter()
        .copied()
        .reduce(|a, b| {
            if bounds.margin(b.1) > bounds.margin(a.1) {
                b
            } else {
                a
            }
        })
        .unwrap_or(samples[0]);
    let detail = format!(
        "none of {n} samples of {value} in {window} is {} ({}: {} at {})",
        bounds.describe(),
        bounds.nearest(false),
        bounds.unit.format(best.1),
        best.0
    );
    Outcome::at(false, best, detail)
}

/// Recovered at a sample in `[after, after + within]` and within the bounds at every sample
/// after it, to the end of the run.
fn eventually(
    value: &Expr,
    bounds: Bounds,
    line: &Line,
    after: SimTime,
    within: SimDuration,
    end: SimTime,
) -> Outcome {
    let deadline = after.saturating_add(within);
    let samples = line.values_in(None);
    let from_after: Vec<(SimTime, f64)> = samples
        .iter()
        .copied()
        .filter(|&(t, _)| t >= after)
        .collect();
    if from_after.is_empty() {
        return Outcome::no_data(format!("no sample of {value} at or after {after}"));
    }
    // The first sample of the final run of samples within the bounds, if it is late enough.
    let settled = from_after
        .iter()
        .rposition(|&(_, v)| !bounds.admits(v))
        .map_or(0, |b| b + 1);
    let recovery = from_after.get(settled).copied();
    if let Some((t, v)) = recovery.filter(|&(t, _)| t <= deadline) {
        let detail = format!(
            "recovered at {t} ({value} = {}) and stayed {} to the end of the run at {end}",
            bounds.judge(v),
            bounds.describe()
        );
        return Outcome::at(true, (t, v), detail);
    }
    let in_time: Vec<(SimTime, f64)> = from_after
        .iter()
        .copied()
        .filter(|&(t, _)| t <= deadline)
        .collect();
    if in_time.is_empty() {
        return Outcome::no_data(format!("no sample of {value} in [{after}, {deadline}]"));
    }
    let later = recovery
        .map(|(t, _)| format!("; it recovered only at {t}"))
        .unwrap_or_default();
    let first_good = in_time.iter().position(|&(_, v)| bounds.admits(v));
    match first_good {
        Some(g) => {
            let (recovered_at, _) = in_time[g];
            // A relapse must exist: otherwise the recovery at `recovered_at` would have held.
            let relapse = from_after
                .iter()
                .copied()
                .find(|&(t, v)| t > recovered_at && !bounds.admits(v))
                .unwrap_or(in_time[g]);
            let detail = format!(
                "recovered at {recovered_at} but relapsed at {} ({value} = {}){later}",
                relapse.0,
                bounds.judge(relapse.1)
            );
            Outcome::at(false, relapse, detail)
        }
        None => {
            let last = in_time[in_time.len() - 1];
            let detail = format!(
                "not recovered by {deadline}: {value} = {} at {}{later}",
                bounds.judge(last.1),
                last.0
            );
            Outcome::at(false, last, detail)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Expr {
        match Expr::parse(text) {
            Ok(e) => e,
            Err(e) => panic!("{text:?}: {e}"),
        }
    }

    fn err(text: &str) -> ExprError {
        match Expr::parse(text) {
            Ok(e) => panic!("{text:?} parsed as {:?}", e.node),
            Err(e) => e,
        }
    }

    fn metric(name: &str) -> Box<Node> {
        Box::new(Node::Metric(name.to_owned()))
    }

    #[test]
    fn every_form_parses_and_prints_back_as_written() {
        let cases: &[(&str, Node, &str)] = &[
            (
                "users.latency.p99",
                *metric("users.latency.p99"),
                "users.latency.p99",
            ),
            (
                "rate(users.ok_total)",
                Node::Rate("users.ok_total".into()),
                "rate(users.ok_total)",
            ),
            (
                "ratio(users.ok_total.read, users.sent_total.read)",
                Node::Ratio(
                    metric("users.ok_total.read"),
                    metric("users.sent_total.read"),
                ),
                "ratio(users.ok_total.read, users.sent_total.read)",
            ),
            (
                "  max( api.queue_len )  ",
                Node::Aggregate(Aggregate::Max, metric("api.queue_len")),
                "max(api.queue_len)",
            ),
            (
                "min(ratio(a.b,c.d))",
                Node::Aggregate(
                    Aggregate::Min,
                    Box::new(Node::Ratio(metric("a.b"), metric("c.d"))),
                ),
                "min(ratio(a.b, c.d))",
            ),
            (
                "mean(rate(broker-0.sent_total))",
                Node::Aggregate(
                    Aggregate::Mean,
                    Box::new(Node::Rate("broker-0.sent_total".into())),
                ),
                "mean(rate(broker-0.sent_total))",
            ),
            (
                "last(\tq.sojourn.p50\n)",
                Node::Aggregate(Aggregate::Last, metric("q.sojourn.p50")),
                "last(q.sojourn.p50)",
            ),
        ];
        for (text, node, canonical) in cases {
            let e = parse(text);
            assert_eq!(&e.node, node, "{text:?}");
            assert_eq!(e.to_string(), text.trim(), "Display is the text as written");
            assert_eq!(e.as_str(), text.trim());
            assert_eq!(e.node.to_string(), *canonical);
            assert_eq!(parse(&e.to_string()), e, "Display round-trips");
            assert_eq!(
                parse(canonical).node,
                e.node,
                "the canonical form means the same"
            );
            let ron_text = ron::to_string(&e).unwrap();
            assert_eq!(ron_text, format!("{:?}", text.trim()));
            assert_eq!(ron::from_str::<Expr>(&ron_text).unwrap(), e);
            assert_eq!(text.parse::<Expr>().unwrap(), e, "FromStr");
        }
    }

    #[test]
    fn names_are_listed_once_in_order() {
        let e = parse("ratio(rate(b.x), max(a.y))");
        assert_eq!(e.names(), ["b.x", "a.y"]);
        assert_eq!(parse("ratio(a.b, a.b)").names(), ["a.b"]);
        assert_eq!(parse("a.b.c.d").names(), ["a.b.c.d"]);
    }

    #[test]
    fn empty_and_unbalanced() {
        assert_eq!(err(""), ExprError::Empty);
        assert_eq!(err("  \t "), ExprError::Empty);
        assert_eq!(
            err("ratio(a.b, c.d"),
            ExprError::Unclosed {
                function: "ratio".into(),
                column: 1
            }
        );
        assert_eq!(
            err("max(rate(a.b)"),
            ExprError::Unclosed {
                function: "max".into(),
                column: 1
            }
        );
        assert_eq!(err("rate(a.b))"), ExprError::UnexpectedClose { column: 10 });
        assert_eq!(
            err(") a.b"),
            ExprError::Expected {
                expected: "a metric name or a function",
                found: "`)`".into(),
                column: 1
            }
        );
        assert_eq!(
            err("max(a.b"),
            ExprError::Unclosed {
                function: "max".into(),
                column: 1
            }
        );
        assert_eq!(
            err("ratio(a.b,"),
            ExprError::Expected {
                expected: "a metric name or a function",
                found: "the end".into(),
                column: 11
            }
        );
        let msg = err("ratio(a.b, c.d").to_string();
        assert_eq!(
            msg,
            "`ratio(` at column 1 is never closed: a `)` is missing"
        );
        assert_eq!(err("rate(a.b))").column(), Some(10));
        assert_eq!(ExprError::Empty.column(), None);
    }

    #[test]
    fn unknown_functions_suggest_what_was_meant() {
        let e = err("rte(users.ok_total)");
        assert_eq!(e.suggestion(), Some("rate"));
        assert_eq!(
            e.to_string(),
            "unknown function `rte` at column 1 (did you mean `rate`?); the functions are \
             rate, ratio, max, min, mean and last"
        );
        assert_eq!(err("max(maxx(a.b))").suggestion(), Some("max"));
        assert_eq!(err("max(maxx(a.b))").column(), Some(5));
        // The design notes write `p99(rpc.latency)`: point at the name that means it.
        assert_eq!(
            err("p99(users.latency)").suggestion(),
            Some("users.latency.p99")
        );
        assert_eq!(
            err("p999( db.latency )").suggestion(),
            Some("db.latency.p999")
        );
        assert_eq!(err("p99(rate(a.b))").suggestion(), None);
        assert_eq!(err("frobnicate(a.b)").suggestion(), None);
        assert!(
            matches!(err("sum(a.b)"), ExprError::UnknownFunction { ref name, column: 1, .. } if name == "sum")
        );
    }

    #[test]
    fn wrong_arguments_and_names() {
        assert_eq!(
            err("ratio(a.b)"),
            ExprError::Arity {
                function: "ratio",
                expected: "2 arguments",
                found: 1,
                column: 1
            }
        );
        assert_eq!(
            err(" rate()"),
            ExprError::Arity {
                function: "rate",
                expected: "1 argument",
                found: 0,
                column: 2
            }
        );
        assert_eq!(
            err("max(a.b, c.d)"),
            ExprError::Arity {
                function: "max",
                expected: "1 argument",
                found: 2,
                column: 1
            }
        );
        assert_eq!(
            err("ratio(a.b, c.d, e.f)").to_string(),
            "ratio() at column 1 takes 2 arguments, found 3"
        );
        assert_eq!(
            err("rate( max(a.b) )"),
            ExprError::RateOfExpression {
                found: "max(a.b)".into(),
                column: 7
            }
        );
        let bad_name = |text: &str| match err(text) {
            ExprError::BadName {
                name,
                column,
                reason,
            } => (name, column, reason),
            other => panic!("{text:?}: {other:?}"),
        };
        assert_eq!(bad_name("latency").0, "latency");
        assert_eq!(
            bad_name("latency").2,
            "a metric's full name is `owner.name`"
        );
        assert_eq!(
            bad_name("max(a..b)"),
            (
                "a..b".into(),
                5,
                "a name cannot start or end with a dot or have two in a row"
            )
        );
        assert_eq!(bad_name(".a.b").0, ".a.b");
        assert_eq!(bad_name("a.b.").0, "a.b.");
        assert_eq!(bad_name("rate").2, "it is a function; call it with `(...)`");
        assert_eq!(
            err("a.b c.d"),
            ExprError::Expected {
                expected: "the end of the expression",
                found: "`c`".into(),
                column: 5
            }
        );
        assert_eq!(
            err("ratio(a.b c.d)"),
            ExprError::Expected {
                expected: "`,` or `)`",
                found: "`c`".into(),
                column: 11
            }
        );
        // Columns count characters, not bytes.
        assert_eq!(err("rate(µs.x))").column(), Some(11));
    }

    #[test]
    fn limits_on_length_and_depth() {
        let deep = format!(
            "{}a.b{}",
            "max(".repeat(EXPR_MAX_DEPTH),
            ")".repeat(EXPR_MAX_DEPTH)
        );
        assert_eq!(parse(&deep).names(), ["a.b"]);
        let deeper = format!("max({deep})");
        assert_eq!(
            err(&deeper),
            ExprError::TooDeep {
                max: EXPR_MAX_DEPTH,
                column: 1 + 4 * EXPR_MAX_DEPTH
            }
        );
        let long = format!("a.{}", "b".repeat(EXPR_MAX_LEN));
        assert_eq!(err(&long), ExprError::TooLong { max: EXPR_MAX_LEN });
        assert_eq!(parse(&long[..EXPR_MAX_LEN]).as_str().len(), EXPR_MAX_LEN);
    }

    #[test]
    fn serde_rejects_bad_text_with_the_parse_message() {
        let e = ron::from_str::<Expr>("\"ratio(a.b\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`ratio(` at column 1 is never closed"), "{e}");
        assert!(
            ron::from_str::<Expr>("42").is_err(),
            "an expression is a string"
        );
    }

    #[test]
    fn windows_serialize_as_a_pair_of_durations() {
        let s = |n: u64| SimTime::from_nanos(n * 1_000_000_000);
        let w: Window = ron::from_str(r#"("2m", "5m")"#).unwrap();
        assert_eq!(w, Window::new(s(120), s(300)));
        assert_eq!(ron::to_string(&w).unwrap(), r#"("2m","5m")"#);
        assert_eq!(w.to_string(), "[2m, 5m]");
        // Level points on both ends; interval points after the start only, except at 0.
        assert!(w.holds_point(s(120), false));
        assert!(w.holds_point(s(300), false));
        assert!(!w.holds_point(s(120), true));
        assert!(w.holds_point(s(121), true));
        assert!(w.holds_point(s(300), true));
        assert!(!w.holds_point(s(301), true));
        let from_zero = Window::new(SimTime::ZERO, s(1));
        assert!(from_zero.holds_point(SimTime::ZERO, true));
        assert!(!Window::new(s(0), s(0)).holds_point(s(1), false));
    }

    #[test]
    fn bounds_judge_and_describe_in_the_unit() {
        let b = Bounds {
            min: None,
            max: Some(500e6),
            unit: Unit::Nanos,
        };
        assert_eq!(b.judge(812e6), "812 ms > 500 ms");
        assert_eq!(b.judge(500e6), "500 ms <= 500 ms");
        assert!(b.admits(500e6));
        assert!(!b.admits(500e6 + 1.0));
        assert!(!b.admits(f64::NAN));
        let b = Bounds {
            min: Some(0.9),
            max: Some(1.0),
            unit: Unit::Ratio,
        };
        assert_eq!(b.describe(), "in [90%, 100%]");
        assert_eq!(b.judge(0.5), "50% < 90%");
        assert_eq!(b.judge(0.95), "95% in [90%, 100%]");
        let halves = Bounds {
            min: Some(0.5),
            max: Some(1.0),
            unit: Unit::Ratio,
        };
        assert_eq!(halves.margin(0.875), 0.125, "the nearer bound decides");
        assert_eq!(halves.margin(0.625), 0.125);
        assert_eq!(halves.margin(1.5), -0.5);
        assert_eq!(b.nearest(true), "nearest a bound");
        let b = Bounds {
            min: Some(150.0),
            max: None,
            unit: Unit::PerSecond,
        };
        assert_eq!(b.judge(181.0), "181/s >= 150/s");
        assert_eq!((b.nearest(true), b.nearest(false)), ("lowest", "highest"));
        assert_eq!(b.margin(100.0), -50.0);
    }

    #[test]
    fn durations_are_recognised_by_name_segment() {
        for name in [
            "users.latency",
            "users.latency.checkout",
            "api.pool_wait",
            "q.sojourn",
            "db.response_time",
            "x.gc_duration",
        ] {
            assert!(measures_time(name), "{name}");
        }
        for name in [
            "db.rows",
            "latency.rows",
            "runtime.batch_size",
            "x.latency_budget",
        ] {
            assert!(!measures_time(name), "{name}");
        }
    }
}
