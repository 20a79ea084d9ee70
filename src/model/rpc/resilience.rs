//! The client-side resilience mechanisms as pure state machines: a retry policy (backoff and
//! jitter), a retry budget, a circuit breaker and a token-bucket rate limiter.
//!
//! None of them knows about actors: each takes the current time (`now`) and, where it draws, the
//! caller's own `&mut SimRng`, so a component that embeds one stays a pure function of its
//! events and its stream, and each can be tested on its exact semantics without a simulation.
//! Time is integer nanoseconds throughout, and the budget and the bucket count in integers, so
//! hours of simulated time add no drift. Each config is serde data with a default taken from a
//! named library, given beside the constant.
//!
//! Which library each follows:
//! - [`RetryPolicy`]: backoff and jitter exactly as defined in the AWS Architecture Blog,
//!   "Exponential Backoff And Jitter" (Marc Brooker, 2015) and its simulator
//!   (github.com/aws-samples/aws-arch-backoff-simulator); defaults of the AWS SDKs' standard
//!   retry mode.
//! - [`RetryBudget`]: Finagle's `RetryBudget` (twitter/finagle, `RetryBudget.scala`): a token
//!   bucket whose deposits and withdrawals expire after `ttl`, plus a reserve for quiet
//!   clients.
//! - [`CircuitBreaker`]: resilience4j's count-based `CircuitBreaker`, with its defaults, except
//!   that a half-open breaker reopens on the first failed probe (see [`BreakerConfig`]).
//! - [`TokenBucket`]: the classic bucket (rate, burst), refilled exactly in integer time.

use std::collections::VecDeque;

use rand::RngExt;
use serde::{Deserialize, Serialize};

use super::{ConfigError, ErrorKind, Rate, Validate, nonzero};
use crate::engine::rng::SimRng;
use crate::engine::time::{SimDuration, SimTime};

// ---------------------------------------------------------------------------------------------
// Retry policy
// ---------------------------------------------------------------------------------------------

/// Total attempts by default, the first included: 3, the AWS SDKs' standard retry mode ("The
/// default maximum number of attempts with this mode is three", AWS SDKs and Tools Reference
/// Guide, "Retry behavior").
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

/// The first retry's backoff ceiling by default: 1 s, the initial backoff of the AWS SDKs for
/// Rust (aws-smithy-client `retry::Config`: "the default backoff multiplier of 1 second ...
/// the first retry will occur after 0 to 1 seconds, the second retry will occur after 0 to 2
/// seconds").
pub const DEFAULT_BACKOFF_BASE: SimDuration = SimDuration::from_secs(1);

/// The longest backoff by default: 20 s, `MAX_BACKOFF` in the standard retry strategy of
/// aws-smithy-runtime (the same SDKs).
pub const DEFAULT_BACKOFF_CAP: SimDuration = SimDuration::from_secs(20);

/// How long to wait before a retry, before jitter. Retry `n` (1 for the first retry) waits
/// [`RetryPolicy::ceiling`]`(n)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Backoff {
    /// Retry at once.
    None,
    /// The same wait before every retry: `Fixed("100ms")`.
    Fixed(SimDuration),
    /// `min(cap, base * 2^(n - 1))` before retry `n`: doubling from `base`, at most `cap`
    /// (`Exponential(base: "100ms", cap: "10s")`).
    Exponential { base: SimDuration, cap: SimDuration },
}

impl Default for Backoff {
    /// Exponential from 1 s to 20 s: the AWS SDKs' standard mode (`DEFAULT_BACKOFF_BASE`,
    /// `DEFAULT_BACKOFF_CAP`).
    fn default() -> Self {
        Backoff::Exponential {
            base: DEFAULT_BACKOFF_BASE,
            cap: DEFAULT_BACKOFF_CAP,
        }
    }
}

/// How the backoff is randomised, with the definitions of "Exponential Backoff And Jitter"
/// (AWS Architecture Blog). `t` is the backoff's ceiling for this retry (`min(cap, base *
/// 2^(n - 1))` for an exponential backoff, `d` for a fixed one); draws are uniform on the
/// integer nanoseconds of the interval, from the caller's stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Jitter {
    /// Wait exactly `t`: synchronised clients stay synchronised.
    None,
    /// `random(0, t)`. The AWS SDKs' choice, and the default: the blog found it does the least
    /// total work for the same completion time.
    #[default]
    Full,
    /// `t / 2 + random(0, t / 2)`: never less than half the backoff.
    Equal,
    /// `min(cap, random(base, previous * 3))`, starting from `previous = base` (as the blog's
    /// simulator does): each wait depends on the last one rather than on the retry number.
    /// Needs an `Exponential` backoff, whose `base` and `cap` it uses.
    Decorrelated,
}

/// When and how often a client retries a failed request.
///
/// An attempt fails with an error response or by its timeout. It is retried when its error is
/// in `retry_on`, fewer than `max_attempts` attempts have been made, and the `budget` (if any)
/// has a token; the retry is sent after the backoff, randomised by the jitter, and (with
/// `respect_retry_after`) no sooner than the server's Retry-After hint.
///
/// In a scenario: `retry: (max_attempts: 4, backoff: Exponential(base: "50ms", cap: "2s"),
/// jitter: Full, budget: (ratio: 0.1))`; every field has a default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts per request, the first included: 1 never retries. Default 3
    /// (the AWS SDKs' standard mode).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Default `Exponential(base: "1s", cap: "20s")`.
    #[serde(default)]
    pub backoff: Backoff,
    /// Default `Full`.
    #[serde(default)]
    pub jitter: Jitter,
    /// The errors worth another attempt. By default all four kinds: each says "not now"
    /// rather than "never" — `Rejected` and `Unavailable` are load refusals (HTTP 429/503,
    /// gRPC UNAVAILABLE, the codes every retrying client retries), `Timeout` and `PoolTimeout`
    /// are slowness that may be gone by the next attempt (the AWS SDKs retry timeouts and
    /// 5xx). Retrying timeouts is also exactly what makes retry storms: a scenario that wants
    /// to show one needs no extra setting. `Conflict` is not retried by default: it says the
    /// write was built on a stale read, and the libraries that retry the other four leave it
    /// to the application, which must read again and redo its work (the AWS SDK for Rust's
    /// classifier, aws-runtime `retries::classifiers`, lists neither DynamoDB's
    /// `ConditionalCheckFailedException` nor `TransactionConflictException` among its
    /// throttling or transient errors; PostgreSQL: "applications using this level must be
    /// prepared to retry transactions due to serialization failures", 13.2.2). A client that
    /// models that application loop says so: `retry_on: [Conflict]`, and a resent request is
    /// a fresh transaction. Not empty (use `max_attempts: 1` for no retries).
    #[serde(default = "default_retry_on")]
    pub retry_on: Vec<ErrorKind>,
    /// At most this share of requests may be retried; None retries whenever the rest allows.
    #[serde(default)]
    pub budget: Option<RetryBudget>,
    /// Wait at least a response's `retry_after` hint before retrying it (HTTP Retry-After, RFC
    /// 9110 §10.2.3). Default true: well-behaved HTTP clients honour the header.
    #[serde(default = "yes")]
    pub respect_retry_after: bool,
}

fn default_max_attempts() -> u32 {
    DEFAULT_MAX_ATTEMPTS
}

fn default_retry_on() -> Vec<ErrorKind> {
    vec![
        ErrorKind::Rejected,
        ErrorKind::Timeout,
        ErrorKind::PoolTimeout,
        ErrorKind::Unavailable,
    ]
}

fn yes() -> bool {
    true
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            backoff: Backoff::default(),
            jitter: Jitter::default(),
            retry_on: default_retry_on(),
            budget: None,
            respect_retry_after: true,
        }
    }
}

impl Validate for RetryPolicy {
    fn validate(&self) -> Result<(), ConfigError> {
        nonzero("max_attempts", u64::from(self.max_attempts))?;
        match self.backoff {
            Backoff::None => {}
            Backoff::Fixed(d) => nonzero("backoff.Fixed", d.as_nanos())?,
            Backoff::Exponential { base, cap } => {
                nonzero("backoff.Exponential.base", base.as_nanos())?;
                if cap < base {
                    return Err(ConfigError::Invalid {
                        field: "backoff.Exponential.cap".into(),
                        reason: format!("the cap {cap} is below the base {base}"),
                    });
                }
            }
        }
        if self.jitter == Jitter::Decorrelated
            && !matches!(self.backoff, Backoff::Exponential { .. })
        {
            return Err(ConfigError::Invalid {
                field: "jitter".into(),
                reason: "Decorrelated jitter grows from the backoff's base to its cap: it needs \
                         `backoff: Exponential(base: .., cap: ..)`"
                    .into(),
            });
        }
        if self.retry_on.is_empty() {
            return Err(ConfigError::Empty {
                field: "retry_on".into(),
            });
        }
        if let Some(budget) = &self.budget {
            budget.validate().map_err(|e| e.within("budget"))?;
        }
        Ok(())
    }
}

impl RetryPolicy {
    /// Whether an attempt that failed with `error` is worth another.
    pub fn retries_on(&self, error: ErrorKind) -> bool {
        self.retry_on.contains(&error)
    }

    /// Whether a request that has made `attempts` attempts may make another.
    pub fn has_attempts_left(&self, attempts: u32) -> bool {
        attempts < self.max_attempts
    }

    /// The backoff before retry `retry` (1 for the first retry) without jitter: 0, `d`, or
    /// `min(cap, base * 2^(retry - 1))`, saturating instead of overflowing.
    pub fn ceiling(&self, retry: u32) -> SimDuration {
        debug_assert!(retry >= 1, "retries are numbered from 1");
        match self.backoff {
            Backoff::None => SimDuration::ZERO,
            Backoff::Fixed(d) => d,
            Backoff::Exponential { base, cap } => {
                let doublings = retry.saturating_sub(1);
                let factor = 1_u64.checked_shl(doublings).unwrap_or(u64::MAX);
                base.saturating_mul(factor).min(cap)
            }
        }
    }

    /// The wait before retry `retry` (1 for the first), drawing the jitter from `rng`.
    /// `previous` is the wait before the previous retry of the same request (None before the
    /// first); only decorrelated jitter reads it.
    pub fn sleep(
        &self,
        retry: u32,
        previous: Option<SimDuration>,
        rng: &mut SimRng,
    ) -> SimDuration {
        let t = self.ceiling(retry);
        let sleep = match (self.jitter, self.backoff) {
            (_, Backoff::None) | (Jitter::None, _) => t,
            (Jitter::Full, _) => full_jitter(t, rng),
            (Jitter::Equal, _) => equal_jitter(t, rng),
            (Jitter::Decorrelated, Backoff::Exponential { base, cap }) => {
                decorrelated_jitter(base, cap, previous.unwrap_or(base), rng)
            }
            // Rejected by `validate`; no jitter is the least surprising reading.
            (Jitter::Decorrelated, Backoff::Fixed(_)) => t,
        };
        debug_assert!(
            self.jitter == Jitter::Decorrelated || sleep <= t,
            "{sleep} > {t}"
        );
        sleep
    }
}

/// Uniform on the integer nanoseconds of `[lo, hi]`.
fn uniform(lo: u64, hi: u64, rng: &mut SimRng) -> u64 {
    debug_assert!(lo <= hi);
    rng.random_range(lo..=hi)
}

/// `random(0, t)`.
fn full_jitter(t: SimDuration, rng: &mut SimRng) -> SimDuration {
    SimDuration::from_nanos(uniform(0, t.as_nanos(), rng))
}

/// `t / 2 + random(0, t / 2)`: the random half is `t - t / 2`, so an odd `t` still ends at `t`.
fn equal_jitter(t: SimDuration, rng: &mut SimRng) -> SimDuration {
    let fixed = t.as_nanos() / 2;
    SimDuration::from_nanos(fixed + uniform(0, t.as_nanos() - fixed, rng))
}

/// `min(cap, random(base, previous * 3))`. A `previous` below `base / 3` (which the policy
/// never passes) draws `base`.
fn decorrelated_jitter(
    base: SimDuration,
    cap: SimDuration,
    previous: SimDuration,
    rng: &mut SimRng,
) -> SimDuration {
    let lo = base.as_nanos();
    let hi = previous.saturating_mul(3).as_nanos().max(lo);
    SimDuration::from_nanos(uniform(lo, hi, rng)).min(cap)
}

// ---------------------------------------------------------------------------------------------
// Retry budget
// ---------------------------------------------------------------------------------------------

/// The share of requests that may be retried by default: 0.2, Finagle's default budget ("allows
/// for 20% of requests to be retried on top of a minimum of 10 retries per second ... credits
/// expire after 10 seconds", Finagle blog, "Retry Budgets", 2016; `RetryBudget.apply()`).
pub const DEFAULT_BUDGET_RATIO: f64 = 0.2;

/// Retries a second allowed regardless of traffic by default: 10 (Finagle, as above).
pub const DEFAULT_BUDGET_MIN_PER_SEC: f64 = 10.0;

/// How long a deposit lasts by default: 10 s (Finagle, as above).
pub const DEFAULT_BUDGET_TTL: SimDuration = SimDuration::from_secs(10);

/// The window of a budget is kept as this many slices of `ttl / 10`, as Finagle's leaky
/// `TokenBucket` keeps its `WindowedAdder` (util-core, `TokenBucket.newLeakyBucket`).
const BUDGET_SLICES: usize = 10;

/// Budget amounts are counted in thousandths of a retry, so a ratio like 0.2 is exact (Finagle
/// scales by 1,000 for the same reason, its `ScaleFactor`).
const MILLI: i64 = 1_000;

/// A Finagle-style retry budget: retries may be at most `ratio` of requests, plus
/// `min_per_sec` a second so that a quiet or just-started client can still retry.
///
/// It is a token bucket over a sliding window of `ttl`: each original request deposits `ratio`
/// of a token, each retry withdraws one and is refused when the balance is below one token.
/// The balance is a reserve of `min_per_sec * ttl` tokens plus what was deposited minus what
/// was withdrawn within the window; both deposits and withdrawals expire after `ttl`, so credit
/// does not pile up over a long quiet spell, and the reserve is spent afresh every `ttl`. The
/// window moves in slices of `ttl / 10` aligned on time 0, as Finagle's does.
///
/// The guarantee (proved in [`RetryBudgetState`]): over `[0, T)`, retries are at most
/// `ratio * requests + min_per_sec * ttl * ceil(T / ttl)`, which for `T` a multiple of `ttl`
/// is `ratio * requests + min_per_sec * T`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryBudget {
    /// Tokens each original request deposits, in `[0, 1000]` (Finagle's bounds). Default 0.2.
    #[serde(default = "default_ratio")]
    pub ratio: f64,
    /// The reserve, in retries a second, >= 0. Default 10.
    #[serde(default = "default_min_per_sec")]
    pub min_per_sec: f64,
    /// How long a deposit or a withdrawal counts, at least 10 ns. Default 10 s.
    #[serde(default = "default_ttl")]
    pub ttl: SimDuration,
}

fn default_ratio() -> f64 {
    DEFAULT_BUDGET_RATIO
}

fn default_min_per_sec() -> f64 {
    DEFAULT_BUDGET_MIN_PER_SEC
}

fn default_ttl() -> SimDuration {
    DEFAULT_BUDGET_TTL
}

impl Default for RetryBudget {
    fn default() -> Self {
        RetryBudget {
            ratio: DEFAULT_BUDGET_RATIO,
            min_per_sec: DEFAULT_BUDGET_MIN_PER_SEC,
            ttl: DEFAULT_BUDGET_TTL,
        }
    }
}

impl Validate for RetryBudget {
    fn validate(&self) -> Result<(), ConfigError> {
        if !(self.ratio.is_finite() && (0.0..=1_000.0).contains(&self.ratio)) {
            return Err(ConfigError::Invalid {
                field: "ratio".into(),
                reason: format!("{} must be in [0, 1000]", self.ratio),
            });
        }
        if !(self.min_per_sec.is_finite() && self.min_per_sec >= 0.0) {
            return Err(ConfigError::Invalid {
                field: "min_per_sec".into(),
                reason: format!("{} must be finite and >= 0", self.min_per_sec),
            });
        }
        // The reserve in thousandths must fit the integer balance.
        let reserve = self.min_per_sec * self.ttl.as_secs_f64() * MILLI as f64;
        if reserve > 1e15 {
            return Err(ConfigError::Invalid {
                field: "min_per_sec".into(),
                reason: format!(
                    "a reserve of {} retries per ttl is beyond any real budget",
                    reserve / MILLI as f64
                ),
            });
        }
        if self.ttl.as_nanos() < BUDGET_SLICES as u64 {
            return Err(ConfigError::Invalid {
                field: "ttl".into(),
                reason: format!(
                    "{} is below 10ns (the window is kept as 10 slices)",
                    self.ttl
                ),
            });
        }
        Ok(())
    }
}

/// The running state of a [`RetryBudget`].
///
/// Why the bound holds: let `D(j)`, `W(j)` be the thousandths deposited and withdrawn in slices
/// `0..=j`, and `f(j) = W(j) - D(j)`. A withdrawal in slice `j` needs a balance of a token
/// first, so after it `W(j) - W(j - 10) <= R + D(j) - D(j - 10)`, i.e. `f(j) <= R + f(j - 10)`
/// (later deposits in the slice only lower `f(j)`); a slice without withdrawals has
/// `f(j) <= f(j - 1)`. So `g(j) = max f(0..=j)` obeys `g(j) <= R + g(j - 10)`, and over the
/// first `10k` slices (`k` windows) `W <= D + k R`. The unit tests check it, and that it is
/// reached.
#[derive(Clone, Debug)]
pub struct RetryBudgetState {
    slice_ns: u64,
    /// Net thousandths (deposits minus withdrawals) of each of the last `BUDGET_SLICES`
    /// slices, slice `i` at `i % BUDGET_SLICES`.
    slices: [i64; BUDGET_SLICES],
    /// The newest slice's index (`now / slice_ns`).
    current: u64,
    reserve: i64,
    deposit: i64,
}

impl RetryBudgetState {
    /// A full budget (the reserve, nothing deposited). `config` must be valid.
    pub fn new(config: &RetryBudget) -> Self {
        debug_assert!(config.validate().is_ok(), "{config:?}");
        let slice_ns = (config.ttl.as_nanos() / BUDGET_SLICES as u64).max(1);
        let window_secs = (slice_ns * BUDGET_SLICES as u64) as f64 / 1e9;
        // Rounded once, here: a ratio with at most three decimals (0.2, 0.05) is exact.
        let reserve = libm::round(config.min_per_sec * window_secs * MILLI as f64) as i64;
        let deposit = libm::round(config.ratio * MILLI as f64) as i64;
        RetryBudgetState {
            slice_ns,
            slices: [0; BUDGET_SLICES],
            current: 0,
            reserve,
            deposit,
        }
    }

    /// Moves the window to `now`, forgetting the slices it leaves.
    fn advance(&mut self, now: SimTime) {
        let index = now.as_nanos() / self.slice_ns;
        debug_assert!(index >= self.current, "time goes forward");
        if index <= self.current {
            return;
        }
        let fresh = (index - self.current).min(BUDGET_SLICES as u64);
        for k in 1..=fresh {
            let slot = ((self.current + k) % BUDGET_SLICES as u64) as usize;
            self.slices[slot] = 0;
        }
        self.current = index;
    }

    fn slot(&self) -> usize {
        (self.current % BUDGET_SLICES as u64) as usize
    }

    /// The balance in thousandths of a retry (may be negative once deposits that paid for
    /// retries expire before the retries do).
    fn balance_milli(&mut self, now: SimTime) -> i64 {
        self.advance(now);
        self.reserve + self.slices.iter().sum::<i64>()
    }

    /// An original request was sent: deposit `ratio` of a token.
    pub fn deposit(&mut self, now: SimTime) {
        self.advance(now);
        let slot = self.slot();
        self.slices[slot] += self.deposit;
    }

    /// Takes a token for a retry, or returns false (and takes nothing) if there is not one.
    pub fn try_withdraw(&mut self, now: SimTime) -> bool {
        if self.balance_milli(now) < MILLI {
            return false;
        }
        let slot = self.slot();
        self.slices[slot] -= MILLI;
        debug_assert!(self.balance_milli(now) >= 0);
        true
    }

    /// Retries the budget would allow now, as a fraction (for reports and tests).
    pub fn balance(&mut self, now: SimTime) -> f64 {
        self.balance_milli(now) as f64 / MILLI as f64
    }
}

// ---------------------------------------------------------------------------------------------
// Circuit breaker
// ---------------------------------------------------------------------------------------------

/// resilience4j's `slidingWindowSize` default, 100 calls (count-based window); the four below
/// are its defaults too (resilience4j.readme.io, CircuitBreaker, the configuration table:
/// failureRateThreshold 50, slidingWindowSize 100, minimumNumberOfCalls 100,
/// waitDurationInOpenState 60000 ms, permittedNumberOfCallsInHalfOpenState 10; Apache Camel's
/// resilience4j EIP documents the same values).
pub const DEFAULT_BREAKER_WINDOW: u32 = 100;
/// resilience4j's `minimumNumberOfCalls` default, 100.
pub const DEFAULT_BREAKER_MINIMUM_CALLS: u32 = 100;
/// resilience4j's `failureRateThreshold` default, 50 %.
pub const DEFAULT_BREAKER_FAILURE_RATE: f64 = 0.5;
/// resilience4j's `waitDurationInOpenState` default, 60 s.
pub const DEFAULT_BREAKER_COOLDOWN: SimDuration = SimDuration::from_secs(60);
/// resilience4j's `permittedNumberOfCallsInHalfOpenState` default, 10.
pub const DEFAULT_BREAKER_HALF_OPEN_CALLS: u32 = 10;

/// A [`CircuitBreaker`]'s config: `breaker: (window: 20, minimum_calls: 10, cooldown: "5s")`;
/// every field has resilience4j's default.
///
/// Closed, it records the outcome of the last `window` calls and opens when at least
/// `minimum_calls` are recorded and the share of failures is `>= failure_rate`. Open, it
/// refuses every call for `cooldown`. Then, half-open, it admits `half_open_calls` probes and
/// refuses the rest: when all of them succeed it closes (with an empty window), and at the
/// first that fails it opens again for another `cooldown`.
///
/// One difference from resilience4j, on purpose: resilience4j closes a half-open breaker when
/// the probes' failure rate is below the threshold (so 4 failures in 10 probes close it); here
/// one failed probe reopens it, as Hystrix's single probe does, which is the stricter and more
/// common reading of "half-open". As in resilience4j, a probe that never completes (no
/// timeout, a silent target) keeps the breaker half-open (resilience4j issue #903).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerConfig {
    /// Calls in the sliding window, > 0.
    #[serde(default = "default_window")]
    pub window: u32,
    /// Calls recorded before the breaker may open, in `1..=window`.
    #[serde(default = "default_minimum_calls")]
    pub minimum_calls: u32,
    /// The failing share that opens it, in `(0, 1]` (resilience4j writes 50 for 0.5).
    #[serde(default = "default_failure_rate")]
    pub failure_rate: f64,
    /// How long it stays open, > 0.
    #[serde(default = "default_cooldown")]
    pub cooldown: SimDuration,
    /// Probes admitted half-open, > 0.
    #[serde(default = "default_half_open_calls")]
    pub half_open_calls: u32,
}

fn default_window() -> u32 {
    DEFAULT_BREAKER_WINDOW
}

fn default_minimum_calls() -> u32 {
    DEFAULT_BREAKER_MINIMUM_CALLS
}

fn default_failure_rate() -> f64 {
    DEFAULT_BREAKER_FAILURE_RATE
}

fn default_cooldown() -> SimDuration {
    DEFAULT_BREAKER_COOLDOWN
}

fn default_half_open_calls() -> u32 {
    DEFAULT_BREAKER_HALF_OPEN_CALLS
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            window: DEFAULT_BREAKER_WINDOW,
            minimum_calls: DEFAULT_BREAKER_MINIMUM_CALLS,
            failure_rate: DEFAULT_BREAKER_FAILURE_RATE,
            cooldown: DEFAULT_BREAKER_COOLDOWN,
            half_open_calls: DEFAULT_BREAKER_HALF_OPEN_CALLS,
        }
    }
}

impl Validate for BreakerConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        nonzero("window", u64::from(self.window))?;
        nonzero("minimum_calls", u64::from(self.minimum_calls))?;
        if self.minimum_calls > self.window {
            // resilience4j silently lowers it to the window; a config that says otherwise is
            // more likely a mistake than a wish.
            return Err(ConfigError::Invalid {
                field: "minimum_calls".into(),
                reason: format!(
                    "{} is more than the window of {} calls: the breaker could never open",
                    self.minimum_calls, self.window
                ),
            });
        }
        if !(self.failure_rate.is_finite() && self.failure_rate > 0.0 && self.failure_rate <= 1.0) {
            return Err(ConfigError::Invalid {
                field: "failure_rate".into(),
                reason: format!(
                    "{} must be a fraction in (0, 1] (0.5 for resilience4j's 50)",
                    self.failure_rate
                ),
            });
        }
        nonzero("cooldown", self.cooldown.as_nanos())?;
        nonzero("half_open_calls", u64::from(self.half_open_calls))
    }
}

/// Where a breaker stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BreakerState {
    Closed,
    HalfOpen,
    Open,
}

impl BreakerState {
    /// The value of a `breaker_state` gauge: 0 closed, 1 half-open, 2 open (so a chart's
    /// height reads as "how shut").
    pub fn gauge(self) -> f64 {
        match self {
            BreakerState::Closed => 0.0,
            BreakerState::HalfOpen => 1.0,
            BreakerState::Open => 2.0,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::HalfOpen => "half-open",
            BreakerState::Open => "open",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Closed,
    Open {
        until: SimTime,
    },
    /// `admitted` probes let through, `succeeded` of them back with a success.
    HalfOpen {
        admitted: u32,
        succeeded: u32,
    },
}

/// A count-based circuit breaker (see [`BreakerConfig`] for the rules).
///
/// The caller asks [`allow`](Self::allow) before each call and reports each admitted call's
/// outcome with [`record`](Self::record). The open-to-half-open step happens on the first
/// `allow` (or [`advance`](Self::advance)) at or after the cooldown's end, as resilience4j does
/// by default; a caller that wants its state on time calls `advance` from a timer.
///
/// An outcome only means something in the state its call was admitted in: a call admitted
/// while closed that returns after the breaker has opened and half-opened is no probe. The
/// [`epoch`](Self::epoch) (the number of transitions so far) lets the caller tell: record an
/// outcome only if the epoch is the one its call was admitted in. Outcomes reported while open
/// are ignored.
#[derive(Clone, Debug)]
pub struct CircuitBreaker {
    config: BreakerConfig,
    /// The last `window` outcomes while closed, oldest first (true = failure).
    outcomes: VecDeque<bool>,
    failures: u32,
    phase: Phase,
    epoch: u64,
}

impl CircuitBreaker {
    /// A closed breaker. `config` must be valid.
    pub fn new(config: BreakerConfig) -> Self {
        debug_assert!(config.validate().is_ok(), "{config:?}");
        CircuitBreaker {
            outcomes: VecDeque::with_capacity(config.window as usize),
            config,
            failures: 0,
            phase: Phase::Closed,
            epoch: 0,
        }
    }

    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// The state as of the last call; an open breaker whose cooldown has passed still says
    /// `Open` until `allow` or `advance` is called.
    pub fn state(&self) -> BreakerState {
        match self.phase {
            Phase::Closed => BreakerState::Closed,
            Phase::Open { .. } => BreakerState::Open,
            Phase::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// [`BreakerState::gauge`] of the current state.
    pub fn gauge(&self) -> f64 {
        self.state().gauge()
    }

    /// Transitions so far: an outcome belongs to the epoch its call was admitted in.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// When an open breaker will let probes through; None unless open.
    pub fn open_until(&self) -> Option<SimTime> {
        match self.phase {
            Phase::Open { until } => Some(until),
            _ => None,
        }
    }

    /// Outcomes in the closed window and how many of them failed.
    pub fn window_counts(&self) -> (u32, u32) {
        (self.outcomes.len() as u32, self.failures)
    }

    fn enter(&mut self, phase: Phase) {
        self.phase = phase;
        self.epoch += 1;
        // Each state starts with fresh statistics, as in resilience4j.
        self.outcomes.clear();
        self.failures = 0;
    }

    fn open(&mut self, now: SimTime) {
        let until = now.saturating_add(self.config.cooldown);
        self.enter(Phase::Open { until });
    }

    /// Makes the time-based step (open to half-open) if it is due.
    pub fn advance(&mut self, now: SimTime) {
        if let Phase::Open { until } = self.phase
            && now >= until
        {
            self.enter(Phase::HalfOpen {
                admitted: 0,
                succeeded: 0,
            });
        }
    }

    /// Whether a call may be made now. Half-open, a `true` admits one of the probes.
    pub fn allow(&mut self, now: SimTime) -> bool {
        self.advance(now);
        match &mut self.phase {
            Phase::Closed => true,
            Phase::Open { .. } => false,
            Phase::HalfOpen { admitted, .. } => {
                if *admitted < self.config.half_open_calls {
                    *admitted += 1;
                    true
                } else {
                    false
                }
            }
        }
    }

    /// Gives back the permission `allow` granted (in the current epoch) to a call that was
    /// then not made, so that it counts as neither outcome: resilience4j's
    /// `releasePermission`. Only a half-open breaker counts permissions (its probes); without
    /// this, a probe that is never sent would hold its slot, and the breaker would stay
    /// half-open, refusing every call, for good.
    pub fn release(&mut self) {
        if let Phase::HalfOpen {
            admitted,
            succeeded,
        } = &mut self.phase
        {
            debug_assert!(*admitted > *succeeded, "a probe to release was admitted");
            *admitted -= 1;
        }
    }

    /// The outcome of a call `allow` admitted (in the current epoch).
    pub fn record(&mut self, now: SimTime, success: bool) {
        match &mut self.phase {
            Phase::Closed => {
                self.outcomes.push_back(!success);
                self.failures += u32::from(!success);
                if self.outcomes.len() > self.config.window as usize {
                    let oldest_failed = self.outcomes.pop_front().expect("over the window");
                    self.failures -= u32::from(oldest_failed);
                }
                debug_assert!(self.outcomes.len() <= self.config.window as usize);
                debug_assert!(self.failures as usize <= self.outcomes.len());
                let recorded = self.outcomes.len() as u32;
                let failing =
                    f64::from(self.failures) >= self.config.failure_rate * f64::from(recorded);
                if recorded >= self.config.minimum_calls && failing {
                    self.open(now);
                }
            }
            // A call admitted before the breaker opened; its outcome changes nothing.
            Phase::Open { .. } => {}
            Phase::HalfOpen {
                admitted,
                succeeded,
            } => {
                debug_assert!(*succeeded < *admitted, "more outcomes than probes");
                if !success {
                    self.open(now);
                    return;
                }
                *succeeded += 1;
                if *succeeded >= self.config.half_open_calls {
                    self.enter(Phase::Closed);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Token bucket
// ---------------------------------------------------------------------------------------------

/// A [`TokenBucket`]'s config: `(rate: "200/s", burst: 50)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenBucketConfig {
    /// Tokens added per unit of time; its count is used to a millionth (`"0.000001/s"`).
    pub rate: Rate,
    /// The most tokens the bucket holds, > 0; it starts full.
    pub burst: u32,
}

/// Millionths of a token: the resolution of a rate's count.
const MICRO: u128 = 1_000_000;

impl Validate for TokenBucketConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        nonzero("burst", u64::from(self.burst))?;
        let micro = self.rate.count * MICRO as f64;
        if !(1.0..=u64::MAX as f64).contains(&libm::round(micro)) {
            return Err(ConfigError::Invalid {
                field: "rate".into(),
                reason: format!(
                    "{} is outside what a bucket can count (1e-6 to 1.8e13 per unit)",
                    self.rate
                ),
            });
        }
        Ok(())
    }
}

/// A token-bucket rate limiter: `burst` tokens at most, refilled at `rate`, one token per
/// admitted event. It starts full, so a burst is allowed at once.
///
/// The level is kept in integer units of `1 / (per_ns * 10^6)` of a token (`per_ns` the rate's
/// unit in nanoseconds), so `elapsed_ns * count_micro` units arrive in `elapsed_ns` and the
/// refill is exact: over any run, the tokens granted are exactly `burst + floor(T * rate)` when
/// demand never lets the bucket fill, however many calls the time is split into.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    /// Units earned per nanosecond: the rate's count in millionths.
    per_ns: u128,
    /// Units in one token: the rate's unit in nanoseconds times a million.
    per_token: u128,
    capacity: u128,
    level: u128,
    last: SimTime,
}

impl TokenBucket {
    /// A full bucket, validating `config`.
    pub fn new(config: &TokenBucketConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let per_ns = libm::round(config.rate.count * MICRO as f64) as u128;
        let per_token = u128::from(config.rate.per.as_nanos()) * MICRO;
        let capacity = per_token * u128::from(config.burst);
        Ok(TokenBucket {
            per_ns,
            per_token,
            capacity,
            level: capacity,
            last: SimTime::ZERO,
        })
    }

    fn refill(&mut self, now: SimTime) {
        let elapsed = u128::from(now.saturating_duration_since(self.last).as_nanos());
        self.level = self
            .level
            .saturating_add(elapsed.saturating_mul(self.per_ns))
            .min(self.capacity);
        self.last = self.last.max(now);
    }

    /// Takes a token if there is one.
    pub fn try_take(&mut self, now: SimTime) -> bool {
        self.refill(now);
        if self.level < self.per_token {
            return false;
        }
        self.level -= self.per_token;
        true
    }

    /// Whole tokens available now.
    pub fn tokens(&mut self, now: SimTime) -> u64 {
        self.refill(now);
        (self.level / self.per_token) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::rng::stream;

    fn ms(n: u64) -> SimDuration {
        SimDuration::from_millis(n)
    }

    fn at_ms(n: u64) -> SimTime {
        SimTime::from_nanos(n * 1_000_000)
    }

    fn policy(backoff: Backoff, jitter: Jitter) -> RetryPolicy {
        RetryPolicy {
            backoff,
            jitter,
            ..RetryPolicy::default()
        }
    }

    /// Mean and variance of `n` draws of `draw`, in ns.
    fn moments(n: usize, mut draw: impl FnMut() -> SimDuration) -> (f64, f64, u64, u64) {
        let xs: Vec<f64> = (0..n).map(|_| draw().as_nanos() as f64).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n as f64 - 1.0);
        let lo = xs.iter().copied().fold(f64::INFINITY, f64::min) as u64;
        let hi = xs.iter().copied().fold(0.0, f64::max) as u64;
        (mean, var, lo, hi)
    }

    /// `|got - want|` within 5 standard errors of a mean of `n` draws of variance `var`: a
    /// correct sampler misses with probability ~6e-7.
    fn assert_mean(what: &str, got: f64, want: f64, var: f64, n: usize) {
        let se = (var / n as f64).sqrt();
        assert!(
            (got - want).abs() < 5.0 * se,
            "{what}: mean {got:.0} vs {want:.0} (se {se:.0})"
        );
    }

    #[test]
    fn exponential_backoff_doubles_to_its_cap() {
        let p = policy(
            Backoff::Exponential {
                base: ms(100),
                cap: ms(1_000),
            },
            Jitter::None,
        );
        let ceilings: Vec<u64> = (1..=6)
            .map(|n| p.ceiling(n).as_nanos() / 1_000_000)
            .collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1_000, 1_000]);
        // No overflow however far it goes.
        assert_eq!(p.ceiling(64), ms(1_000));
        assert_eq!(p.ceiling(u32::MAX), ms(1_000));
        let mut rng = stream(1, "t");
        assert_eq!(
            p.sleep(3, None, &mut rng),
            ms(400),
            "no jitter: the ceiling"
        );
        let fixed = policy(Backoff::Fixed(ms(30)), Jitter::None);
        assert_eq!(fixed.ceiling(1), ms(30));
        assert_eq!(fixed.ceiling(9), ms(30));
        let none = policy(Backoff::None, Jitter::Full);
        assert_eq!(none.sleep(2, None, &mut rng), SimDuration::ZERO);
        // An uncapped doubling saturates instead of wrapping.
        let huge = policy(
            Backoff::Exponential {
                base: ms(1),
                cap: SimDuration::MAX,
            },
            Jitter::None,
        );
        assert_eq!(huge.ceiling(70), SimDuration::MAX);
        assert_eq!(huge.ceiling(11), ms(1_024));
    }

    #[test]
    fn full_jitter_is_uniform_below_the_ceiling() {
        // U(0, t): mean t/2, variance t^2/12.
        let p = policy(
            Backoff::Exponential {
                base: ms(10),
                cap: ms(50),
            },
            Jitter::Full,
        );
        let mut rng = stream(2, "full");
        let n = 20_000;
        for (retry, t_ms) in [(1, 10), (3, 40), (5, 50)] {
            let t = (t_ms * 1_000_000) as f64;
            let (mean, var, lo, hi) = moments(n, || p.sleep(retry, None, &mut rng));
            assert!(hi <= t as u64, "retry {retry}: {hi} > {t}");
            // With 20,000 draws the extremes come within 0.05% of the ends (P(miss) ~ e^-10).
            assert!((lo as f64) < t * 5e-4, "retry {retry}: min {lo}");
            assert!(hi as f64 > t * (1.0 - 5e-4), "retry {retry}: max {hi}");
            assert_mean("full", mean, t / 2.0, t * t / 12.0, n);
            let want_var = t * t / 12.0;
            assert!(
                (var / want_var - 1.0).abs() < 0.05,
                "variance {var} vs {want_var}"
            );
        }
    }

    #[test]
    fn equal_jitter_keeps_half_and_randomises_half() {
        // t/2 + U(0, t/2): in [t/2, t], mean 3t/4, variance t^2/48.
        let p = policy(
            Backoff::Exponential {
                base: ms(8),
                cap: ms(64),
            },
            Jitter::Equal,
        );
        let mut rng = stream(3, "equal");
        let n = 20_000;
        for (retry, t_ms) in [(1, 8), (2, 16), (4, 64), (9, 64)] {
            let t = (t_ms * 1_000_000) as f64;
            let (mean, var, lo, hi) = moments(n, || p.sleep(retry, None, &mut rng));
            assert!(lo >= (t / 2.0) as u64, "retry {retry}: {lo} < t/2");
            assert!(hi <= t as u64, "retry {retry}: {hi} > t");
            assert_mean("equal", mean, 0.75 * t, t * t / 48.0, n);
            let want_var = t * t / 48.0;
            assert!(
                (var / want_var - 1.0).abs() < 0.05,
                "variance {var} vs {want_var}"
            );
        }
        // An odd ceiling still spans exactly [t / 2, t].
        let mut rng = stream(3, "odd");
        let odd = SimDuration::from_nanos(3);
        let seen: std::collections::BTreeSet<u64> = (0..200)
            .map(|_| equal_jitter(odd, &mut rng).as_nanos())
            .collect();
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), [1, 2, 3]);
    }

    #[test]
    fn decorrelated_jitter_draws_from_base_to_three_times_the_last_sleep() {
        let (base, cap) = (ms(10), ms(1_000));
        let p = policy(Backoff::Exponential { base, cap }, Jitter::Decorrelated);
        let mut rng = stream(4, "decorrelated");
        let n = 20_000;
        // Given the previous sleep s (3s below the cap): U(base, 3s), mean (base + 3s) / 2,
        // variance (3s - base)^2 / 12 — the next wait follows the last, not the retry number.
        for (prev_ms, retry) in [(10, 1), (40, 1), (100, 7), (300, 2)] {
            let prev = ms(prev_ms);
            let (b, hi3) = (base.as_nanos() as f64, 3.0 * prev.as_nanos() as f64);
            let (mean, _, lo, hi) = moments(n, || p.sleep(retry, Some(prev), &mut rng));
            assert!(lo >= base.as_nanos(), "prev {prev_ms}: {lo}");
            assert!(hi as f64 <= hi3, "prev {prev_ms}: {hi}");
            assert_mean(
                "decorrelated",
                mean,
                (b + hi3) / 2.0,
                (hi3 - b).powi(2) / 12.0,
                n,
            );
        }
        // The first retry behaves as if the previous sleep were the base: U(base, 3 base).
        let (mean, _, lo, hi) = moments(n, || p.sleep(1, None, &mut rng));
        assert!(lo >= 10_000_000 && hi <= 30_000_000, "{lo}..{hi}");
        assert_mean("first", mean, 20e6, (20e6_f64).powi(2) / 12.0, n);
        // Near the cap, draws above it are clipped to it: from s = 500 ms, U(10, 1500) ms
        // exceeds 1,000 ms with probability 500 / 1490.
        let clipped = (0..n)
            .filter(|_| p.sleep(1, Some(ms(500)), &mut rng) == cap)
            .count() as f64;
        let q = 500.0 / 1_490.0;
        let sd = (n as f64 * q * (1.0 - q)).sqrt();
        assert!(
            (clipped - n as f64 * q).abs() < 5.0 * sd,
            "{clipped} at the cap"
        );
        // Chained as a client chains them, each sleep is a draw from the last: the sequence
        // wanders (its lag-1 correlation is strongly positive) but stays in [base, cap].
        let mut prev = None;
        let chain: Vec<f64> = (0..n)
            .map(|i| {
                let s = p.sleep(i as u32 + 1, prev, &mut rng);
                assert!(base <= s && s <= cap, "{s}");
                prev = Some(s);
                s.as_nanos() as f64
            })
            .collect();
        let m = chain.iter().sum::<f64>() / n as f64;
        let var = chain.iter().map(|x| (x - m).powi(2)).sum::<f64>();
        let cov: f64 = chain.windows(2).map(|w| (w[0] - m) * (w[1] - m)).sum();
        assert!(cov / var > 0.3, "lag-1 correlation {}", cov / var);
    }

    #[test]
    fn jitter_draws_replay_from_the_same_stream() {
        let p = RetryPolicy::default();
        let draws = |seed| {
            let mut rng = stream(seed, "client");
            (1..=5)
                .map(|n| p.sleep(n, None, &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(draws(9), draws(9));
        assert_ne!(draws(9), draws(10));
    }

    #[test]
    fn retry_policies_validate_and_name_the_field() {
        assert!(RetryPolicy::default().validate().is_ok());
        let field = |p: RetryPolicy| p.validate().unwrap_err().field().map(str::to_string);
        let bad = RetryPolicy {
            max_attempts: 0,
            ..RetryPolicy::default()
        };
        assert_eq!(field(bad).as_deref(), Some("max_attempts"));
        let low_cap = policy(
            Backoff::Exponential {
                base: ms(10),
                cap: ms(5),
            },
            Jitter::Full,
        );
        assert_eq!(field(low_cap).as_deref(), Some("backoff.Exponential.cap"));
        let zero = policy(Backoff::Fixed(SimDuration::ZERO), Jitter::None);
        assert_eq!(field(zero).as_deref(), Some("backoff.Fixed"));
        let decorrelated = policy(Backoff::Fixed(ms(5)), Jitter::Decorrelated);
        assert_eq!(field(decorrelated).as_deref(), Some("jitter"));
        let nothing = RetryPolicy {
            retry_on: vec![],
            ..RetryPolicy::default()
        };
        assert_eq!(field(nothing).as_deref(), Some("retry_on"));
        let budget = RetryPolicy {
            budget: Some(RetryBudget {
                ratio: -0.1,
                ..RetryBudget::default()
            }),
            ..RetryPolicy::default()
        };
        assert_eq!(field(budget).as_deref(), Some("budget.ratio"));
        let ttl = RetryBudget {
            ttl: SimDuration::from_nanos(9),
            ..RetryBudget::default()
        };
        assert_eq!(ttl.validate().unwrap_err().field(), Some("ttl"));

        // Defaults, from RON with nothing but the parentheses.
        let p: RetryPolicy = ron::from_str("()").unwrap();
        assert_eq!(p, RetryPolicy::default());
        assert_eq!(p.max_attempts, 3);
        assert_eq!(
            p.backoff,
            Backoff::Exponential {
                base: ms(1_000),
                cap: ms(20_000)
            }
        );
        assert_eq!(p.jitter, Jitter::Full);
        assert!(p.respect_retry_after);
        for e in [
            ErrorKind::Rejected,
            ErrorKind::Timeout,
            ErrorKind::PoolTimeout,
            ErrorKind::Unavailable,
        ] {
            assert!(p.retries_on(e), "{e:?}");
        }
        assert!(p.has_attempts_left(2));
        assert!(!p.has_attempts_left(3));
        let text = r#"(max_attempts: 4, backoff: None, jitter: None, retry_on: [Timeout],
                       budget: Some((ratio: 0.1)), respect_retry_after: false)"#;
        let p: RetryPolicy = ron::from_str(text).unwrap();
        assert_eq!(p.backoff, Backoff::None);
        assert_eq!(p.jitter, Jitter::None);
        assert!(!p.retries_on(ErrorKind::Rejected));
        let b = p.budget.expect("a budget");
        assert_eq!(
            (b.ratio, b.min_per_sec, b.ttl),
            (0.1, 10.0, SimDuration::from_secs(10))
        );
        let err = ron::from_str::<RetryPolicy>("(max_attempt: 2)").unwrap_err();
        assert!(err.to_string().contains("max_attempt"), "{err}");
    }

    #[test]
    fn a_budget_allows_the_reserve_and_its_share_of_requests() {
        // No requests: the reserve, min_per_sec * ttl = 5 retries, and no more.
        let cfg = RetryBudget {
            ratio: 0.5,
            min_per_sec: 1.0,
            ttl: SimDuration::from_secs(5),
        };
        let mut b = RetryBudgetState::new(&cfg);
        assert_eq!(b.balance(SimTime::ZERO), 5.0);
        let t = at_ms(100);
        assert_eq!((0..8).filter(|_| b.try_withdraw(t)).count(), 5);
        assert_eq!(b.balance(t), 0.0);
        // Each request deposits half a token: two requests pay for a retry.
        b.deposit(t);
        assert!(!b.try_withdraw(t), "half a token is not a retry");
        assert_eq!(b.balance(t), 0.5);
        b.deposit(t);
        assert!(b.try_withdraw(t));
        assert!(!b.try_withdraw(t));
        // Everything in the slice of 100 ms expires when the window has moved past it
        // (slices of 500 ms: slice 0 leaves the window at 5,000 ms), giving the reserve back.
        assert_eq!(b.balance(at_ms(4_999)), 0.0);
        assert_eq!(b.balance(at_ms(5_000)), 5.0);
        // Deposits expire too: credit does not pile up over quiet time.
        for _ in 0..10 {
            b.deposit(at_ms(6_000));
        }
        assert_eq!(b.balance(at_ms(6_000)), 10.0);
        assert_eq!(b.balance(at_ms(10_999)), 10.0);
        assert_eq!(b.balance(at_ms(11_000)), 5.0);
        // A long jump clears the whole window.
        assert_eq!(b.balance(SimTime::from_nanos(3_600_000_000_000)), 5.0);
    }

    #[test]
    fn under_a_total_outage_retries_stay_within_ratio_requests_plus_min_per_sec_seconds() {
        // A client sends `rps` requests a second (evenly spread) to a dead target and wants
        // 3 retries for each; the budget is the only limit. Over T = k * ttl the proof in
        // `RetryBudgetState` gives retries <= ratio * requests + min_per_sec * T, and since
        // demand (3 per request) far exceeds it, the bound is nearly reached.
        for (ratio, min_per_sec, rps, ttl_s, secs) in [
            (0.2, 10.0, 100, 10, 600),
            (0.1, 1.0, 1_000, 10, 120),
            (0.0, 5.0, 50, 1, 60),
            (1.5, 0.0, 20, 7, 70),
        ] {
            let cfg = RetryBudget {
                ratio,
                min_per_sec,
                ttl: SimDuration::from_secs(ttl_s),
            };
            let mut b = RetryBudgetState::new(&cfg);
            let gap = 1_000_000_000 / rps;
            let (mut requests, mut retries, mut refused) = (0_u64, 0_u64, 0_u64);
            let end = secs * 1_000_000_000;
            let mut t = 0;
            while t < end {
                let now = SimTime::from_nanos(t);
                b.deposit(now);
                requests += 1;
                // Each failure is retried up to 3 times, a little later each time.
                for k in 1..=3 {
                    let at = SimTime::from_nanos((t + k * gap / 4).min(end - 1));
                    if b.try_withdraw(at) {
                        retries += 1;
                    } else {
                        refused += 1;
                    }
                }
                t += gap;
            }
            let bound = ratio * requests as f64 + min_per_sec * secs as f64;
            let case = format!("ratio {ratio}, min {min_per_sec}/s, {rps}/s, {secs} s");
            assert_eq!(requests, rps * secs, "{case}");
            assert!(
                retries as f64 <= bound + 1e-9,
                "{case}: {retries} > {bound}"
            );
            assert!(
                retries as f64 >= 0.95 * bound,
                "{case}: {retries} well below {bound}"
            );
            assert!(refused > 0, "{case}: the budget was the limit");
        }
    }

    fn breaker(window: u32, minimum_calls: u32, half_open_calls: u32) -> CircuitBreaker {
        CircuitBreaker::new(BreakerConfig {
            window,
            minimum_calls,
            failure_rate: 0.5,
            cooldown: ms(1_000),
            half_open_calls,
        })
    }

    #[test]
    fn a_breaker_opens_at_the_failure_rate_once_enough_calls_are_recorded() {
        let mut b = breaker(10, 4, 2);
        let t = at_ms(1);
        // Three failures: 100% failing, but fewer than minimum_calls recorded.
        for _ in 0..3 {
            assert!(b.allow(t));
            b.record(t, false);
        }
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.window_counts(), (3, 3));
        // The fourth call opens it, at exactly that call.
        assert!(b.allow(t));
        b.record(t, false);
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.open_until(), Some(at_ms(1_001)));
        assert_eq!(b.window_counts(), (0, 0), "each state starts fresh");
        assert_eq!(b.epoch(), 1);

        // Below the threshold it stays closed: in a window of 10, 4 failures (40%) do not
        // open it, the 5th (50%, `>=`) does.
        let mut b = breaker(10, 10, 2);
        for i in 0..6 {
            b.record(t, true);
            assert_eq!(b.state(), BreakerState::Closed, "{i}");
        }
        for i in 0..4 {
            b.record(t, false);
            assert_eq!(b.state(), BreakerState::Closed, "failure {i}");
        }
        assert_eq!(b.window_counts(), (10, 4));
        // The window slides: the oldest success drops out as the next outcome comes in.
        b.record(t, false);
        assert_eq!(b.state(), BreakerState::Open, "5 of the last 10 failed");
    }

    #[test]
    fn a_breaker_goes_open_half_open_closed_and_back_open_with_exact_counts() {
        let mut b = breaker(4, 2, 3);
        b.record(at_ms(0), false);
        b.record(at_ms(0), false);
        assert_eq!(b.state(), BreakerState::Open);
        // Open: every call refused until the cooldown ends, 1,000 ms later.
        for t in [0, 1, 500, 999] {
            assert!(!b.allow(at_ms(t)), "{t} ms");
        }
        assert_eq!(b.state(), BreakerState::Open);
        // At the cooldown's end: half-open, exactly 3 probes admitted, the 4th refused.
        let probes = (0..5).filter(|_| b.allow(at_ms(1_000))).count();
        assert_eq!(probes, 3);
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert_eq!(b.gauge(), 1.0);
        // Two successes are not enough; the third closes it.
        b.record(at_ms(1_010), true);
        b.record(at_ms(1_010), true);
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(!b.allow(at_ms(1_010)), "still no more than 3 probes");
        b.record(at_ms(1_020), true);
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.gauge(), 0.0);
        assert_eq!(b.window_counts(), (0, 0), "closed with a fresh window");
        assert!(b.allow(at_ms(1_020)));
        assert_eq!(b.epoch(), 3);

        // Again to open, then half-open, where the first failed probe reopens it at once.
        b.record(at_ms(2_000), false);
        b.record(at_ms(2_000), false);
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.gauge(), 2.0);
        b.advance(at_ms(3_000));
        assert_eq!(
            b.state(),
            BreakerState::HalfOpen,
            "advance makes the timed step"
        );
        assert!(b.allow(at_ms(3_000)));
        assert!(b.allow(at_ms(3_000)));
        b.record(at_ms(3_005), true);
        b.record(at_ms(3_007), false);
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(
            b.open_until(),
            Some(at_ms(4_007)),
            "a fresh cooldown from the failure"
        );
        // The outcome of the remaining probe, arriving while open, changes nothing.
        b.record(at_ms(3_008), true);
        assert_eq!(b.state(), BreakerState::Open);
        assert!(!b.allow(at_ms(4_006)));
        assert!(b.allow(at_ms(4_007)));
        assert_eq!(b.epoch(), 7);
    }

    #[test]
    fn a_released_probe_slot_admits_another_probe() {
        let mut b = breaker(4, 2, 2);
        b.record(at_ms(0), false);
        b.record(at_ms(0), false);
        // Open: nothing to release, nothing changes.
        b.release();
        assert_eq!(b.state(), BreakerState::Open);
        assert!(!b.allow(at_ms(999)));
        // Half-open with both probes out: a third is refused until one is given back.
        assert!(b.allow(at_ms(1_000)));
        assert!(b.allow(at_ms(1_000)));
        assert!(!b.allow(at_ms(1_000)));
        b.release();
        assert_eq!(b.state(), BreakerState::HalfOpen);
        let epoch = b.epoch();
        assert!(b.allow(at_ms(1_001)), "the released slot");
        assert!(!b.allow(at_ms(1_001)));
        // The two probes still out decide: both succeed, it closes.
        b.record(at_ms(1_002), true);
        assert_eq!(b.state(), BreakerState::HalfOpen);
        b.record(at_ms(1_003), true);
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.epoch(), epoch + 1);
        // Closed: a release changes neither the window nor the state.
        b.record(at_ms(1_004), false);
        b.release();
        assert_eq!(b.window_counts(), (1, 1));
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn breaker_configs_have_resilience4j_defaults_and_validate() {
        let d: BreakerConfig = ron::from_str("()").unwrap();
        assert_eq!(d, BreakerConfig::default());
        assert_eq!(
            (d.window, d.minimum_calls, d.failure_rate, d.half_open_calls),
            (100, 100, 0.5, 10)
        );
        assert_eq!(d.cooldown, SimDuration::from_secs(60));
        assert!(d.validate().is_ok());
        let field = |c: BreakerConfig| c.validate().unwrap_err().field().map(str::to_string);
        let over = BreakerConfig {
            minimum_calls: 101,
            ..BreakerConfig::default()
        };
        assert_eq!(field(over).as_deref(), Some("minimum_calls"));
        for rate in [0.0, 1.5, 50.0, f64::NAN] {
            let c = BreakerConfig {
                failure_rate: rate,
                ..BreakerConfig::default()
            };
            assert_eq!(field(c).as_deref(), Some("failure_rate"), "{rate}");
        }
        let c = BreakerConfig {
            cooldown: SimDuration::ZERO,
            ..BreakerConfig::default()
        };
        assert_eq!(field(c).as_deref(), Some("cooldown"));
        let c = BreakerConfig {
            half_open_calls: 0,
            ..BreakerConfig::default()
        };
        assert_eq!(field(c).as_deref(), Some("half_open_calls"));
        // With the defaults, 100 calls are needed before it can open: 99 failures do not.
        let mut b = CircuitBreaker::new(d);
        for _ in 0..99 {
            b.record(at_ms(1), false);
        }
        assert_eq!(b.state(), BreakerState::Closed);
        b.record(at_ms(1), true);
        assert_eq!(b.state(), BreakerState::Open, "99 of 100 failed");
    }

    fn bucket(rate: &str, burst: u32) -> TokenBucket {
        let config = TokenBucketConfig {
            rate: rate.parse().unwrap(),
            burst,
        };
        TokenBucket::new(&config).unwrap()
    }

    #[test]
    fn a_token_bucket_allows_its_burst_then_its_rate() {
        let mut b = bucket("10/s", 3);
        let t = at_ms(0);
        assert_eq!((0..5).filter(|_| b.try_take(t)).count(), 3, "the burst");
        assert!(!b.try_take(at_ms(99)));
        assert!(b.try_take(at_ms(100)), "one token every 100 ms");
        assert!(!b.try_take(at_ms(100)));
        // A long rest refills it to the burst and no further.
        assert_eq!(b.tokens(at_ms(60_000)), 3);
        assert_eq!((0..5).filter(|_| b.try_take(at_ms(60_000))).count(), 3);
        let err = TokenBucket::new(&TokenBucketConfig {
            rate: "1/s".parse().unwrap(),
            burst: 0,
        })
        .unwrap_err();
        assert_eq!(err.field(), Some("burst"));
        let err = TokenBucket::new(&TokenBucketConfig {
            rate: "0.0000001/s".parse().unwrap(),
            burst: 1,
        })
        .unwrap_err();
        assert_eq!(err.field(), Some("rate"));
    }

    #[test]
    fn a_token_bucket_is_exact_over_hours() {
        // Demand every `step` (faster than the rate, and never a multiple of a token's gap)
        // for 10 hours: the bucket never fills again after its first burst, so the tokens
        // granted are exactly burst + floor(T * rate), T the last demand's time. Any rounding
        // per refill would have drifted from it over these millions of refills.
        let end = 10 * 3_600_000_000_000_u64;
        for (rate, burst, step_ns, per_sec_num, per_sec_den) in [
            ("200/s", 20, 1_300_000, 200, 1),
            ("1000/m", 5, 13_000_000, 1_000, 60),
            ("0.3/ms", 2, 1_300_000, 300, 1),
            ("7/h", 2, 13_000_000, 7, 3_600),
        ] {
            let mut b = bucket(rate, burst);
            let (mut granted, mut t) = (0_u64, 0);
            while t <= end {
                granted += u64::from(b.try_take(SimTime::from_nanos(t)));
                t += step_ns;
            }
            let last = u128::from(t - step_ns);
            let earned = last * per_sec_num / (per_sec_den * 1_000_000_000);
            assert_eq!(granted, u64::from(burst) + earned as u64, "{rate}");
            let at_last = SimTime::from_nanos(last as u64);
            assert_eq!(b.tokens(at_last), 0, "{rate}: demand kept it drained");
        }
    }
}
