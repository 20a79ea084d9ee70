//! Probability distributions for latencies, sizes and choices, behind one serde-friendly type.
//!
//! Scenario files describe a distribution as a [`Dist`] (`Exp(mean: "20ms")`,
//! `LogNormal(p50: "20ms", p99: "200ms")`, `Zipf(n: 10000, s: 1.1)`, ...). Its parameters are
//! [`Scalar`]s, which remember whether they were written as a duration or a plain number, so a
//! scenario round-trips through serde unchanged and a latency cannot silently be mixed with a
//! unitless number. [`Dist::compile`] validates the parameters once and prepares a [`Sampler`]
//! holding the ready-made `rand_distr` objects, so the hot path does no setup work.
//!
//! Determinism: the same seed must give the same samples on every OS and architecture. The
//! samplers come from `rand_distr` built without its `std_math` feature, so its `ln`/`exp`/
//! `powf` go through `libm` (pure Rust) rather than the platform's C math library, whose results
//! differ in the last bits between systems. The float math this module does itself (the
//! LogNormal parameter conversion, analytic means, rounding) uses `libm` for the same reason,
//! never `f64::ln` or `f64::exp`.

use std::fmt;

use rand_core::Rng;
use rand_distr::{Distribution, Exp, LogNormal, Pareto, Uniform, Zipf};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::engine::time::SimDuration;

/// The 99th percentile of the standard normal distribution, z_0.99: a LogNormal's p99 lies this
/// many sigmas above its median in log space.
const Z_99: f64 = 2.326_347_874_040_840_8;

/// Above this many ranks [`Dist::mean`] gives up on Zipf rather than sum forever.
const ZIPF_MEAN_MAX_N: u64 = 1_000_000;

/// `2^64` as an `f64`: the first value that no longer fits in a `u64`.
const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;

/// Integral `f64`s up to this magnitude are exact, so they are serialized as integers.
const MAX_EXACT_INT: f64 = 9_007_199_254_740_992.0;

/// What a [`Scalar`]'s value counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unit {
    /// Nanoseconds: the scalar was written as a duration string such as `"20ms"`.
    Nanos,
    /// A plain number such as `0.3` or `10000`.
    Number,
}

/// A distribution parameter that remembers whether it was written as a duration.
///
/// Deserializes from a number (`0.3`, `10000`) or a duration string (`"20ms"`, held as
/// nanoseconds), and serializes back to the same kind of form.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scalar {
    /// The value; nanoseconds when `unit` is [`Unit::Nanos`].
    pub value: f64,
    /// Whether `value` is a duration or a plain number.
    pub unit: Unit,
}

impl Scalar {
    /// A duration parameter.
    pub fn duration(d: SimDuration) -> Scalar {
        Scalar {
            value: d.as_nanos() as f64,
            unit: Unit::Nanos,
        }
    }

    /// A plain-number parameter.
    pub fn number(value: f64) -> Scalar {
        Scalar {
            value,
            unit: Unit::Number,
        }
    }

    /// The value as a whole number of nanoseconds, if it is a duration that fits in one.
    fn as_duration(self) -> Option<SimDuration> {
        let v = self.value;
        let representable = self.unit == Unit::Nanos
            && v.is_finite()
            && v >= 0.0
            && libm::trunc(v) == v
            && v < TWO_POW_64;
        // Checked just above: non-negative, integral and below 2^64, so the cast is exact.
        representable.then(|| SimDuration::from_nanos(v as u64))
    }
}

impl fmt::Display for Scalar {
    /// Durations print in [`SimDuration`]'s form (`20ms`), numbers as `f64` (`0.5`, `NaN`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.unit, self.as_duration()) {
            (Unit::Nanos, Some(d)) => fmt::Display::fmt(&d, f),
            // A hand-built duration that is negative, fractional or non-finite has no duration
            // text; show the raw nanoseconds so a validation message still says what was wrong.
            (Unit::Nanos, None) => write!(f, "{}ns", self.value),
            (Unit::Number, _) => write!(f, "{}", self.value),
        }
    }
}

impl Serialize for Scalar {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.unit {
            Unit::Nanos => match self.as_duration() {
                Some(d) => d.serialize(serializer),
                None => Err(serde::ser::Error::custom(format_args!(
                    "a duration parameter of {} ns is not a whole, non-negative number of \
                     nanoseconds and cannot be written as a duration",
                    self.value
                ))),
            },
            Unit::Number => {
                let v = self.value;
                // Write integral values as integers so `Zipf`-style counts and `10000` read back
                // the way they were written rather than as `10000.0`.
                if libm::trunc(v) == v && libm::fabs(v) <= MAX_EXACT_INT {
                    serializer.serialize_i64(v as i64)
                } else {
                    serializer.serialize_f64(v)
                }
            }
        }
    }
}

/// Accepts a number or a duration string.
struct ScalarVisitor;

impl Visitor<'_> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number such as 0.3 or a duration string such as \"20ms\"")
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
        Ok(Scalar::number(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar::number(v as f64))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
        Ok(Scalar::number(v as f64))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
        v.parse::<SimDuration>()
            .map(Scalar::duration)
            .map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Scalar, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// A probability distribution as written in a scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Dist {
    /// Always the same value.
    Const(Scalar),
    /// Exponential with the given mean (memoryless arrivals, service times).
    Exp {
        /// The mean, `1 / lambda`.
        mean: Scalar,
    },
    /// Log-normal given by its median and 99th percentile, the numbers people actually know
    /// about a latency: `mu = ln(p50)`, `sigma = (ln(p99) - ln(p50)) / z_0.99`.
    LogNormal {
        /// The median.
        p50: Scalar,
        /// The 99th percentile; `p99 == p50` gives a constant.
        p99: Scalar,
    },
    /// Uniform on `[low, high]`.
    Uniform {
        /// The smallest value.
        low: Scalar,
        /// The largest value.
        high: Scalar,
    },
    /// Pareto (heavy-tailed) with minimum `scale` and tail index `shape` (alpha).
    Pareto {
        /// The minimum value, x_m.
        scale: Scalar,
        /// The tail index alpha; the mean is finite only for `shape > 1`.
        shape: f64,
    },
    /// Zipf over the ranks `1..=n` (as numbers) with exponent `s`: popularity skew.
    Zipf {
        /// The number of ranks.
        n: u64,
        /// The exponent; larger is more skewed.
        s: f64,
    },
    /// One of the observed values, each equally likely.
    Empirical(Vec<Scalar>),
}

/// Why a [`Dist`] cannot be used. Messages name the distribution, the parameter and the rule.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DistError {
    /// A parameter is NaN or infinite.
    #[error("{dist}: {param} must be a finite number, not {value}")]
    NotFinite {
        /// The distribution, e.g. `"Exp"`.
        dist: &'static str,
        /// The parameter, e.g. `"mean"`.
        param: String,
        /// The offending value.
        value: Scalar,
    },
    /// A parameter that must be strictly positive is not.
    #[error("{dist}: {param} ({value}) must be > 0")]
    NotPositive {
        /// The distribution.
        dist: &'static str,
        /// The parameter.
        param: String,
        /// The offending value.
        value: Scalar,
    },
    /// A duration parameter is negative.
    #[error("{dist}: {param} ({value}) must be >= 0 because it is a duration")]
    NegativeDuration {
        /// The distribution.
        dist: &'static str,
        /// The parameter.
        param: String,
        /// The offending value.
        value: Scalar,
    },
    /// Two parameters are in the wrong order, e.g. `high < low`.
    #[error("{dist}: {upper_param} ({upper}) must be >= {lower_param} ({lower})")]
    OutOfOrder {
        /// The distribution.
        dist: &'static str,
        /// The parameter that must be the smaller, e.g. `"p50"`.
        lower_param: &'static str,
        /// Its value.
        lower: Scalar,
        /// The parameter that must be the larger, e.g. `"p99"`.
        upper_param: &'static str,
        /// Its value.
        upper: Scalar,
    },
    /// Some parameters are durations and others plain numbers.
    #[error(
        "{dist}: parameters must be all durations or all plain numbers, but {first_param} is \
         {first} and {other_param} is {other}"
    )]
    MixedUnits {
        /// The distribution.
        dist: &'static str,
        /// The first parameter.
        first_param: String,
        /// Its value.
        first: Scalar,
        /// The first parameter whose unit differs.
        other_param: String,
        /// Its value.
        other: Scalar,
    },
    /// Zipf needs at least one rank.
    #[error("Zipf: n ({n}) must be >= 1")]
    NoRanks {
        /// The offending rank count.
        n: u64,
    },
    /// An Empirical distribution without observations.
    #[error("Empirical: needs at least one observed value, but the list is empty")]
    Empty,
    /// A Uniform whose width does not fit in an `f64`.
    #[error("Uniform: the range from low ({low}) to high ({high}) is too wide to sample")]
    RangeTooWide {
        /// The lower bound.
        low: Scalar,
        /// The upper bound.
        high: Scalar,
    },
    /// `rand_distr` refused parameters that passed validation; this indicates a gap in
    /// [`Dist::validate`] and is reported rather than panicking.
    #[error("{dist}: the sampler rejected the parameters: {reason}")]
    Rejected {
        /// The distribution.
        dist: &'static str,
        /// `rand_distr`'s explanation.
        reason: String,
    },
}

/// Checks one scalar parameter: finite, and non-negative if it is a duration.
fn check_scalar(dist: &'static str, param: &str, value: Scalar) -> Result<(), DistError> {
    if !value.value.is_finite() {
        return Err(DistError::NotFinite {
            dist,
            param: param.to_string(),
            value,
        });
    }
    if value.unit == Unit::Nanos && value.value < 0.0 {
        return Err(DistError::NegativeDuration {
            dist,
            param: param.to_string(),
            value,
        });
    }
    Ok(())
}

/// Checks that a parameter is strictly positive (after [`check_scalar`]).
fn check_positive(dist: &'static str, param: &str, value: Scalar) -> Result<(), DistError> {
    check_scalar(dist, param, value)?;
    if value.value > 0.0 {
        Ok(())
    } else {
        Err(DistError::NotPositive {
            dist,
            param: param.to_string(),
            value,
        })
    }
}

/// Checks that all `params` share the first one's unit.
fn check_same_unit<'a>(
    dist: &'static str,
    mut params: impl Iterator<Item = (String, &'a Scalar)>,
) -> Result<(), DistError> {
    let Some((first_param, first)) = params.next() else {
        return Ok(());
    };
    match params.find(|(_, s)| s.unit != first.unit) {
        None => Ok(()),
        Some((other_param, other)) => Err(DistError::MixedUnits {
            dist,
            first_param,
            first: *first,
            other_param,
            other: *other,
        }),
    }
}

impl Dist {
    /// The distribution's name as written in scenarios, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Dist::Const(_) => "Const",
            Dist::Exp { .. } => "Exp",
            Dist::LogNormal { .. } => "LogNormal",
            Dist::Uniform { .. } => "Uniform",
            Dist::Pareto { .. } => "Pareto",
            Dist::Zipf { .. } => "Zipf",
            Dist::Empirical(_) => "Empirical",
        }
    }

    /// Checks every parameter rule; the first violation is returned.
    ///
    /// Rules: every parameter finite and every duration non-negative; `Exp` mean > 0;
    /// `LogNormal` p50 > 0 and p99 >= p50; `Uniform` low <= high; `Pareto` scale > 0 and
    /// shape > 0; `Zipf` n >= 1 and s > 0; `Empirical` non-empty; and the scalars of one
    /// distribution all durations or all plain numbers.
    pub fn validate(&self) -> Result<(), DistError> {
        let dist = self.name();
        match self {
            Dist::Const(v) => check_scalar(dist, "value", *v),
            Dist::Exp { mean } => check_positive(dist, "mean", *mean),
            Dist::LogNormal { p50, p99 } => {
                check_same_unit(
                    dist,
                    [("p50".to_string(), p50), ("p99".to_string(), p99)].into_iter(),
                )?;
                check_positive(dist, "p50", *p50)?;
                check_scalar(dist, "p99", *p99)?;
                if p99.value < p50.value {
                    return Err(DistError::OutOfOrder {
                        dist,
                        lower_param: "p50",
                        lower: *p50,
                        upper_param: "p99",
                        upper: *p99,
                    });
                }
                Ok(())
            }
            Dist::Uniform { low, high } => {
                check_same_unit(
                    dist,
                    [("low".to_string(), low), ("high".to_string(), high)].into_iter(),
                )?;
                check_scalar(dist, "low", *low)?;
                check_scalar(dist, "high", *high)?;
                if high.value < low.value {
                    return Err(DistError::OutOfOrder {
                        dist,
                        lower_param: "low",
                        lower: *low,
                        upper_param: "high",
                        upper: *high,
                    });
                }
                if !(high.value - low.value).is_finite() {
                    return Err(DistError::RangeTooWide {
                        low: *low,
                        high: *high,
                    });
                }
                Ok(())
            }
            Dist::Pareto { scale, shape } => {
                check_positive(dist, "scale", *scale)?;
                check_positive(dist, "shape", Scalar::number(*shape))
            }
            Dist::Zipf { n, s } => {
                if *n < 1 {
                    return Err(DistError::NoRanks { n: *n });
                }
                check_positive(dist, "s", Scalar::number(*s))
            }
            Dist::Empirical(values) => {
                if values.is_empty() {
                    return Err(DistError::Empty);
                }
                check_same_unit(
                    dist,
                    values
                        .iter()
                        .enumerate()
                        .map(|(i, v)| (format!("value {i}"), v)),
                )?;
                for (i, v) in values.iter().enumerate() {
                    check_scalar(dist, &format!("value {i}"), *v)?;
                }
                Ok(())
            }
        }
    }

    /// Whether samples are durations (the scalars were written as duration strings). Zipf
    /// yields ranks, which are counts, so it is never a duration.
    pub fn is_duration(&self) -> bool {
        let first = match self {
            Dist::Const(v) => Some(v),
            Dist::Exp { mean } => Some(mean),
            Dist::LogNormal { p50, .. } => Some(p50),
            Dist::Uniform { low, .. } => Some(low),
            Dist::Pareto { scale, .. } => Some(scale),
            Dist::Zipf { .. } => None,
            Dist::Empirical(values) => values.first(),
        };
        first.is_some_and(|v| v.unit == Unit::Nanos)
    }

    /// The analytic mean (in nanoseconds for durations), or `None` where it does not exist or
    /// is not computed: invalid parameters, Pareto with `shape <= 1` (infinite mean), and Zipf
    /// with more than 1,000,000 ranks (the exact finite sum would be too slow).
    pub fn mean(&self) -> Option<f64> {
        self.validate().ok()?;
        match self {
            Dist::Const(v) => Some(v.value),
            Dist::Exp { mean } => Some(mean.value),
            Dist::LogNormal { p50, p99 } => {
                let (mu, sigma) = lognormal_params(p50.value, p99.value);
                Some(libm::exp(mu + sigma * sigma / 2.0))
            }
            Dist::Uniform { low, high } => Some(low.value / 2.0 + high.value / 2.0),
            Dist::Pareto { scale, shape } => {
                (*shape > 1.0).then(|| shape * scale.value / (shape - 1.0))
            }
            Dist::Zipf { n, s } => {
                if *n > ZIPF_MEAN_MAX_N {
                    return None;
                }
                // E[X] = sum k^(1-s) / sum k^(-s). Summing from the smallest terms up keeps the
                // rounding error down.
                let (mut num, mut den) = (0.0, 0.0);
                for k in (1..=*n).rev() {
                    let w = libm::pow(k as f64, -s);
                    num += w * k as f64;
                    den += w;
                }
                Some(num / den)
            }
            Dist::Empirical(values) => {
                Some(values.iter().map(|v| v.value).sum::<f64>() / values.len() as f64)
            }
        }
    }

    /// Validates the distribution and prepares a [`Sampler`] for it.
    pub fn compile(&self) -> Result<Sampler, DistError> {
        self.validate()?;
        let dist = self.name();
        let rejected = |reason: String| DistError::Rejected { dist, reason };
        let kind = match self {
            Dist::Const(v) => Kind::Const(v.value),
            Dist::Exp { mean } => {
                Kind::Exp(Exp::new(1.0 / mean.value).map_err(|e| rejected(e.to_string()))?)
            }
            Dist::LogNormal { p50, p99 } => {
                let (mu, sigma) = lognormal_params(p50.value, p99.value);
                Kind::LogNormal(LogNormal::new(mu, sigma).map_err(|e| rejected(e.to_string()))?)
            }
            Dist::Uniform { low, high } => Kind::Uniform(
                // Inclusive so that low == high (a degenerate but valid range) is accepted.
                Uniform::new_inclusive(low.value, high.value)
                    .map_err(|e| rejected(e.to_string()))?,
            ),
            Dist::Pareto { scale, shape } => {
                Kind::Pareto(Pareto::new(scale.value, *shape).map_err(|e| rejected(e.to_string()))?)
            }
            Dist::Zipf { n, s } => {
                Kind::Zipf(Zipf::new(*n as f64, *s).map_err(|e| rejected(e.to_string()))?)
            }
            Dist::Empirical(values) => Kind::Empirical {
                values: values.iter().map(|v| v.value).collect(),
                // rand's usize sampler draws a u32 whenever the range fits in one, so the
                // stream is the same on 32- and 64-bit targets.
                index: Uniform::new(0, values.len()).map_err(|e| rejected(e.to_string()))?,
            },
        };
        Ok(Sampler {
            kind,
            dist: Box::new(self.clone()),
        })
    }
}

/// Converts a median and 99th percentile into the log-space `(mu, sigma)` of a LogNormal,
/// through `libm` so that the parameters, and hence every sample, match across platforms.
fn lognormal_params(p50: f64, p99: f64) -> (f64, f64) {
    let mu = libm::log(p50);
    let sigma = (libm::log(p99) - mu) / Z_99;
    (mu, sigma)
}

/// A validated [`Dist`] with its `rand_distr` sampler built, ready for the hot path.
///
/// One cache line: the prepared sampler inline, the source distribution (needed only for
/// reports) behind a pointer. Components keep several samplers per actor, and a large model's
/// actors do not fit in cache, so every byte here is a byte of cache miss.
#[derive(Clone, Debug)]
pub struct Sampler {
    kind: Kind,
    dist: Box<Dist>,
}

/// The prepared sampler for each kind of [`Dist`].
#[derive(Clone, Debug)]
enum Kind {
    Const(f64),
    Exp(Exp<f64>),
    LogNormal(LogNormal<f64>),
    Uniform(Uniform<f64>),
    Pareto(Pareto<f64>),
    Zipf(Zipf<f64>),
    Empirical {
        values: Vec<f64>,
        index: Uniform<usize>,
    },
}

impl Sampler {
    /// The distribution this sampler was compiled from.
    pub fn dist(&self) -> &Dist {
        &self.dist
    }

    /// One sample, in nanoseconds for duration distributions. `Const` draws nothing from
    /// `rng`, so it leaves the stream where it was.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        match &self.kind {
            Kind::Const(v) => *v,
            Kind::Exp(d) => d.sample(rng),
            Kind::LogNormal(d) => d.sample(rng),
            Kind::Uniform(d) => d.sample(rng),
            Kind::Pareto(d) => d.sample(rng),
            Kind::Zipf(d) => d.sample(rng),
            Kind::Empirical { values, index } => {
                let i = index.sample(rng);
                // `index` was built as Uniform(0, values.len()), so `i` is always in range; the
                // fallback only exists so this line cannot panic.
                values.get(i).copied().unwrap_or(0.0)
            }
        }
    }

    /// One sample as a duration: the value is read as nanoseconds, rounded to the nearest
    /// nanosecond, with negative values (and NaN) clamped to zero and values beyond
    /// [`SimDuration::MAX`] (including +infinity from an extreme Pareto tail) clamped to it.
    /// For a distribution whose parameters are plain numbers the sample is still read as
    /// nanoseconds; check [`Dist::is_duration`] when that matters.
    pub fn sample_duration<R: Rng + ?Sized>(&self, rng: &mut R) -> SimDuration {
        SimDuration::from_nanos(round_to_u64(self.sample(rng)))
    }

    /// One sample rounded to the nearest integer and clamped to `0..=u64::MAX` (NaN gives 0):
    /// for Zipf ranks, counts and indices.
    pub fn sample_u64<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        round_to_u64(self.sample(rng))
    }
}

/// Rounds to the nearest integer (ties away from zero) and clamps into `u64`; NaN becomes 0.
///
/// Exact and branch-light (it is on the hot path of every sampled duration): the truncation
/// and the fraction are both exact in f64 for every value below 2^53, and above that every
/// f64 is already an integer. Float-to-int `as` casts saturate and map NaN to 0, which is the
/// clamping wanted, and the comparison is false for NaN and negative values.
#[inline]
fn round_to_u64(x: f64) -> u64 {
    let whole = x as u64;
    if x - whole as f64 >= 0.5 {
        whole.saturating_add(1)
    } else {
        whole
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha8Rng;
    use rand_core::SeedableRng;

    const DRAWS: usize = 200_000;

    fn ms(n: u64) -> Scalar {
        Scalar::duration(SimDuration::from_millis(n))
    }

    fn num(v: f64) -> Scalar {
        Scalar::number(v)
    }

    fn compile(d: &Dist) -> Sampler {
        match d.compile() {
            Ok(s) => s,
            Err(e) => panic!("{d:?} should compile: {e}"),
        }
    }

    fn draws(d: &Dist, seed: u64) -> Vec<f64> {
        let sampler = compile(d);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..DRAWS).map(|_| sampler.sample(&mut rng)).collect()
    }

    fn sample_mean(xs: &[f64]) -> f64 {
        xs.iter().sum::<f64>() / xs.len() as f64
    }

    /// Asserts the sample mean is within 5 standard errors of `mean`, the standard error being
    /// `sqrt(variance / N)` from the distribution's known variance.
    fn assert_mean(d: &Dist, xs: &[f64], mean: f64, variance: f64) {
        let se = (variance / xs.len() as f64).sqrt();
        let got = sample_mean(xs);
        assert!(
            (got - mean).abs() <= 5.0 * se,
            "{d:?}: sample mean {got} is not within 5 SE ({se}) of {mean}"
        );
        // The analytic mean must agree with the one the test derived independently.
        if let Some(analytic) = d.mean() {
            assert!(
                (analytic - mean).abs() <= 1e-9 * mean.abs(),
                "{d:?}: Dist::mean {analytic} != {mean}"
            );
        }
    }

    /// The `q` quantile of sorted data (nearest rank).
    fn quantile(sorted: &[f64], q: f64) -> f64 {
        let i = ((sorted.len() as f64 * q) as usize).min(sorted.len() - 1);
        sorted[i]
    }

    #[test]
    fn const_always_returns_its_value_and_draws_nothing() {
        let d = Dist::Const(ms(5));
        let sampler = compile(&d);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut untouched = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..100 {
            assert_eq!(
                sampler.sample_duration(&mut rng),
                SimDuration::from_millis(5)
            );
        }
        assert_eq!(rng.next_u64(), untouched.next_u64());
        assert_eq!(d.mean(), Some(5e6));
    }

    #[test]
    fn exp_mean_matches() {
        let m = 20e6;
        let d = Dist::Exp { mean: ms(20) };
        assert_mean(&d, &draws(&d, 11), m, m * m);
    }

    #[test]
    fn uniform_mean_matches_and_stays_in_range() {
        let (lo, hi) = (1e6, 3e6);
        let d = Dist::Uniform {
            low: ms(1),
            high: ms(3),
        };
        let xs = draws(&d, 12);
        assert!(xs.iter().all(|&x| (lo..=hi).contains(&x)));
        assert_mean(&d, &xs, (lo + hi) / 2.0, (hi - lo) * (hi - lo) / 12.0);
    }

    #[test]
    fn uniform_with_equal_bounds_is_constant() {
        let d = Dist::Uniform {
            low: num(7.0),
            high: num(7.0),
        };
        assert!(draws(&d, 3).iter().all(|&x| x == 7.0));
    }

    #[test]
    fn pareto_mean_matches_and_respects_the_minimum() {
        // shape > 2 so the variance, and with it the standard error, is finite.
        let (xm, a) = (1e6, 4.5);
        let d = Dist::Pareto {
            scale: ms(1),
            shape: a,
        };
        let xs = draws(&d, 13);
        assert!(xs.iter().all(|&x| x >= xm));
        let mean = a * xm / (a - 1.0);
        let variance = xm * xm * a / ((a - 1.0) * (a - 1.0) * (a - 2.0));
        assert_mean(&d, &xs, mean, variance);
    }

    #[test]
    fn pareto_with_heavy_tail_has_no_mean() {
        let d = Dist::Pareto {
            scale: ms(1),
            shape: 1.0,
        };
        assert_eq!(d.mean(), None);
        assert!(d.compile().is_ok());
    }

    #[test]
    fn lognormal_matches_mean_median_and_p99() {
        let (p50, p99): (f64, f64) = (20e6, 200e6);
        let d = Dist::LogNormal {
            p50: ms(20),
            p99: ms(200),
        };
        let mut xs = draws(&d, 14);
        // The expected values use std's float math on purpose: it is an independent reference
        // for the libm-based code under test, and only feeds tolerances, never samples.
        let mu = p50.ln();
        let sigma = (p99.ln() - mu) / Z_99;
        let mean = (mu + sigma * sigma / 2.0).exp();
        let variance = ((sigma * sigma).exp() - 1.0) * (2.0 * mu + sigma * sigma).exp();
        assert_mean(&d, &xs, mean, variance);

        xs.sort_by(f64::total_cmp);
        let n = xs.len() as f64;
        let density = |x: f64, z: f64| {
            (-z * z / 2.0).exp() / ((2.0 * std::f64::consts::PI).sqrt() * x * sigma)
        };
        // The standard error of the q-quantile is sqrt(q(1-q)/N) / f(x_q).
        for (q, x_q, z) in [(0.5, p50, 0.0), (0.99, p99, Z_99)] {
            let se = (q * (1.0 - q) / n).sqrt() / density(x_q, z);
            let got = quantile(&xs, q);
            assert!(
                (got - x_q).abs() <= 5.0 * se,
                "quantile {q}: {got} is not within 5 SE ({se}) of {x_q}"
            );
        }
    }

    #[test]
    fn lognormal_with_equal_percentiles_is_constant() {
        let d = Dist::LogNormal {
            p50: num(8.0),
            p99: num(8.0),
        };
        let xs = draws(&d, 5);
        assert!(
            xs.iter().all(|&x| (x - 8.0).abs() < 1e-12),
            "{:?}",
            &xs[..3]
        );
    }

    /// E[X] and Var[X] of Zipf(n, s) by direct summation.
    fn zipf_moments(n: u64, s: f64) -> (f64, f64) {
        let (mut h, mut m1, mut m2) = (0.0, 0.0, 0.0);
        for k in 1..=n {
            let k = k as f64;
            let w = k.powf(-s);
            h += w;
            m1 += w * k;
            m2 += w * k * k;
        }
        let mean = m1 / h;
        (mean, m2 / h - mean * mean)
    }

    #[test]
    fn zipf_mean_matches_and_ranks_are_in_range() {
        for (n, s) in [(100, 1.1), (1000, 1.0), (50, 2.5)] {
            let d = Dist::Zipf { n, s };
            let sampler = compile(&d);
            let mut rng = ChaCha8Rng::seed_from_u64(15);
            let ranks: Vec<u64> = (0..DRAWS).map(|_| sampler.sample_u64(&mut rng)).collect();
            assert!(ranks.iter().all(|&r| (1..=n).contains(&r)), "{d:?}");
            let xs: Vec<f64> = ranks.iter().map(|&r| r as f64).collect();
            let (mean, variance) = zipf_moments(n, s);
            assert_mean(&d, &xs, mean, variance);
        }
    }

    #[test]
    fn zipf_mean_is_skipped_for_huge_n() {
        assert_eq!(
            Dist::Zipf {
                n: 2_000_000,
                s: 1.1
            }
            .mean(),
            None
        );
        assert!(
            Dist::Zipf {
                n: 1_000_000,
                s: 1.1
            }
            .mean()
            .is_some()
        );
    }

    #[test]
    fn empirical_mean_matches_and_only_observed_values_appear() {
        let values = [1e6, 2e6, 40e6];
        let d = Dist::Empirical(vec![ms(1), ms(2), ms(40)]);
        let xs = draws(&d, 16);
        assert!(xs.iter().all(|x| values.contains(x)));
        let mean = values.iter().sum::<f64>() / 3.0;
        let variance = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / 3.0;
        assert_mean(&d, &xs, mean, variance);
        for v in values {
            assert!(xs.contains(&v), "{v} never drawn");
        }
    }

    fn all_forms() -> Vec<Dist> {
        vec![
            Dist::Const(ms(5)),
            Dist::Exp { mean: ms(20) },
            Dist::LogNormal {
                p50: ms(20),
                p99: ms(200),
            },
            Dist::Uniform {
                low: ms(1),
                high: ms(3),
            },
            Dist::Pareto {
                scale: ms(1),
                shape: 1.5,
            },
            Dist::Zipf { n: 10_000, s: 1.1 },
            Dist::Empirical(vec![ms(1), ms(2), ms(40)]),
            Dist::Uniform {
                low: num(0.25),
                high: num(10000.0),
            },
        ]
    }

    #[test]
    fn sampling_is_deterministic_for_a_seed() {
        for d in all_forms() {
            let (a, b) = (compile(&d), compile(&d));
            let mut ra = ChaCha8Rng::seed_from_u64(99);
            let mut rb = ChaCha8Rng::seed_from_u64(99);
            let xs: Vec<f64> = (0..1000).map(|_| a.sample(&mut ra)).collect();
            let ys: Vec<f64> = (0..1000).map(|_| b.sample(&mut rb)).collect();
            assert!(xs == ys, "{d:?}: same seed, different draws");
            // And a different seed gives a different stream; Const ignores the generator.
            if !matches!(d, Dist::Const(_)) {
                let mut rc = ChaCha8Rng::seed_from_u64(100);
                let zs: Vec<f64> = (0..1000).map(|_| a.sample(&mut rc)).collect();
                assert!(xs != zs, "{d:?}: different seeds, same draws");
            }
        }
    }

    /// Pins the first draws for seed 7 bit for bit. Recorded runs are replayed from their seed,
    /// so these must not change between platforms or builds; if this fails after upgrading
    /// rand, rand_distr or libm, or on a new target, replays of old seeds are no longer exact.
    #[test]
    fn samples_are_pinned_for_a_seed() {
        let cases: [(Dist, [f64; 3]); 6] = [
            (
                Dist::Exp { mean: ms(20) },
                [3166417.0469249906, 9487116.284040809, 42973380.15934026],
            ),
            (
                Dist::LogNormal {
                    p50: ms(20),
                    p99: ms(200),
                },
                [9283888.488271035, 5085745.841211357, 48248136.42239376],
            ),
            (
                Dist::Uniform {
                    low: ms(1),
                    high: ms(3),
                },
                [1315592.1940412389, 1335978.7255442026, 2408552.2560729133],
            ),
            (
                Dist::Pareto {
                    scale: ms(1),
                    shape: 1.5,
                },
                [3424541.9871435994, 3284572.190579321, 1263294.7405728686],
            ),
            (Dist::Zipf { n: 10_000, s: 1.1 }, [2.0, 151.0, 49.0]),
            (Dist::Empirical(vec![ms(1), ms(2), ms(40)]), [1e6, 1e6, 1e6]),
        ];
        for (d, expected) in cases {
            let sampler = compile(&d);
            let mut rng = ChaCha8Rng::seed_from_u64(7);
            let got = [(); 3].map(|_| sampler.sample(&mut rng));
            assert_eq!(
                got.map(f64::to_bits),
                expected.map(f64::to_bits),
                "{d:?}: {got:?}"
            );
        }
    }

    proptest::proptest! {
        /// The fast rounding agrees with libm's round (ties away from zero) everywhere,
        /// including the classic trap 0.49999999999999994 and the edges of u64.
        #[test]
        fn fast_rounding_matches_libm(bits in proptest::prelude::any::<u64>(), scale in 0i32..70) {
            let x = f64::from_bits(bits);
            let y = (bits as f64) / 2f64.powi(scale);
            for v in [x, y, -y, 0.499_999_999_999_999_94, 2f64.powi(53) + 1.0, 2f64.powi(64)] {
                proptest::prop_assert_eq!(round_to_u64(v), libm::round(v) as u64, "{}", v);
            }
        }
    }

    #[test]
    fn sample_duration_and_u64_round_and_clamp() {
        assert_eq!(round_to_u64(2.5), 3);
        assert_eq!(round_to_u64(2.4), 2);
        assert_eq!(round_to_u64(-3.0), 0);
        assert_eq!(round_to_u64(f64::NAN), 0);
        assert_eq!(round_to_u64(f64::INFINITY), u64::MAX);
        assert_eq!(round_to_u64(1e30), u64::MAX);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let s = compile(&Dist::Const(num(1.6)));
        assert_eq!(s.sample_duration(&mut rng), SimDuration::from_nanos(2));
        assert_eq!(s.sample_u64(&mut rng), 2);
        let s = compile(&Dist::Const(num(-5.0)));
        assert_eq!(s.sample_duration(&mut rng), SimDuration::ZERO);
        let s = compile(&Dist::Const(num(1e300)));
        assert_eq!(s.sample_duration(&mut rng), SimDuration::MAX);
    }

    #[test]
    fn sampler_remembers_its_dist() {
        let d = Dist::Exp { mean: ms(20) };
        assert_eq!(compile(&d).dist(), &d);
    }

    #[test]
    fn is_duration_follows_the_scalars() {
        assert!(Dist::Exp { mean: ms(1) }.is_duration());
        assert!(!Dist::Exp { mean: num(1.0) }.is_duration());
        assert!(!Dist::Zipf { n: 10, s: 1.0 }.is_duration());
        assert!(Dist::Empirical(vec![ms(1)]).is_duration());
        assert!(!Dist::Empirical(vec![]).is_duration());
        assert!(
            Dist::Pareto {
                scale: ms(1),
                shape: 2.0
            }
            .is_duration()
        );
    }

    /// Asserts `d` fails validation *and* compilation with `expected`, whose message is `text`.
    /// Errors are compared through `Debug` because NaN parameters make `==` false even for
    /// identical errors.
    fn assert_invalid(d: Dist, expected: DistError, text: &str) {
        let want = format!("{expected:?}");
        assert_eq!(
            d.validate().map_err(|e| format!("{e:?}")),
            Err(want.clone()),
            "{d:?}"
        );
        assert_eq!(
            d.compile().err().map(|e| format!("{e:?}")),
            Some(want),
            "{d:?}"
        );
        assert_eq!(expected.to_string(), text);
        assert_eq!(d.mean(), None, "{d:?} has no mean");
    }

    fn p(name: &str) -> String {
        name.to_string()
    }

    #[test]
    fn every_bad_parameter_is_rejected_with_its_error() {
        let nan = num(f64::NAN);
        assert_invalid(
            Dist::Const(nan),
            DistError::NotFinite {
                dist: "Const",
                param: p("value"),
                value: nan,
            },
            "Const: value must be a finite number, not NaN",
        );
        let negative = Scalar {
            value: -1.0,
            unit: Unit::Nanos,
        };
        assert_invalid(
            Dist::Const(negative),
            DistError::NegativeDuration {
                dist: "Const",
                param: p("value"),
                value: negative,
            },
            "Const: value (-1ns) must be >= 0 because it is a duration",
        );
        assert_invalid(
            Dist::Exp { mean: ms(0) },
            DistError::NotPositive {
                dist: "Exp",
                param: p("mean"),
                value: ms(0),
            },
            "Exp: mean (0s) must be > 0",
        );
        assert_invalid(
            Dist::Exp {
                mean: num(f64::INFINITY),
            },
            DistError::NotFinite {
                dist: "Exp",
                param: p("mean"),
                value: num(f64::INFINITY),
            },
            "Exp: mean must be a finite number, not inf",
        );
        assert_invalid(
            Dist::Exp { mean: num(-2.0) },
            DistError::NotPositive {
                dist: "Exp",
                param: p("mean"),
                value: num(-2.0),
            },
            "Exp: mean (-2) must be > 0",
        );
        assert_invalid(
            Dist::LogNormal {
                p50: ms(20),
                p99: ms(10),
            },
            DistError::OutOfOrder {
                dist: "LogNormal",
                lower_param: "p50",
                lower: ms(20),
                upper_param: "p99",
                upper: ms(10),
            },
            "LogNormal: p99 (10ms) must be >= p50 (20ms)",
        );
        assert_invalid(
            Dist::LogNormal {
                p50: ms(0),
                p99: ms(10),
            },
            DistError::NotPositive {
                dist: "LogNormal",
                param: p("p50"),
                value: ms(0),
            },
            "LogNormal: p50 (0s) must be > 0",
        );
        assert_invalid(
            Dist::LogNormal {
                p50: num(1.0),
                p99: num(f64::NAN),
            },
            DistError::NotFinite {
                dist: "LogNormal",
                param: p("p99"),
                value: num(f64::NAN),
            },
            "LogNormal: p99 must be a finite number, not NaN",
        );
        assert_invalid(
            Dist::LogNormal {
                p50: ms(20),
                p99: num(0.5),
            },
            DistError::MixedUnits {
                dist: "LogNormal",
                first_param: p("p50"),
                first: ms(20),
                other_param: p("p99"),
                other: num(0.5),
            },
            "LogNormal: parameters must be all durations or all plain numbers, but p50 is 20ms \
             and p99 is 0.5",
        );
        assert_invalid(
            Dist::Uniform {
                low: ms(3),
                high: ms(1),
            },
            DistError::OutOfOrder {
                dist: "Uniform",
                lower_param: "low",
                lower: ms(3),
                upper_param: "high",
                upper: ms(1),
            },
            "Uniform: high (1ms) must be >= low (3ms)",
        );
        assert_invalid(
            Dist::Uniform {
                low: negative,
                high: ms(1),
            },
            DistError::NegativeDuration {
                dist: "Uniform",
                param: p("low"),
                value: negative,
            },
            "Uniform: low (-1ns) must be >= 0 because it is a duration",
        );
        assert_invalid(
            Dist::Uniform {
                low: num(-f64::MAX),
                high: num(f64::MAX),
            },
            DistError::RangeTooWide {
                low: num(-f64::MAX),
                high: num(f64::MAX),
            },
            &format!(
                "Uniform: the range from low ({}) to high ({}) is too wide to sample",
                -f64::MAX,
                f64::MAX
            ),
        );
        assert_invalid(
            Dist::Uniform {
                low: num(1.0),
                high: ms(3),
            },
            DistError::MixedUnits {
                dist: "Uniform",
                first_param: p("low"),
                first: num(1.0),
                other_param: p("high"),
                other: ms(3),
            },
            "Uniform: parameters must be all durations or all plain numbers, but low is 1 and \
             high is 3ms",
        );
        assert_invalid(
            Dist::Pareto {
                scale: ms(0),
                shape: 1.5,
            },
            DistError::NotPositive {
                dist: "Pareto",
                param: p("scale"),
                value: ms(0),
            },
            "Pareto: scale (0s) must be > 0",
        );
        assert_invalid(
            Dist::Pareto {
                scale: ms(1),
                shape: 0.0,
            },
            DistError::NotPositive {
                dist: "Pareto",
                param: p("shape"),
                value: num(0.0),
            },
            "Pareto: shape (0) must be > 0",
        );
        assert_invalid(
            Dist::Pareto {
                scale: ms(1),
                shape: f64::NAN,
            },
            DistError::NotFinite {
                dist: "Pareto",
                param: p("shape"),
                value: num(f64::NAN),
            },
            "Pareto: shape must be a finite number, not NaN",
        );
        assert_invalid(
            Dist::Zipf { n: 0, s: 1.1 },
            DistError::NoRanks { n: 0 },
            "Zipf: n (0) must be >= 1",
        );
        assert_invalid(
            Dist::Zipf { n: 10, s: 0.0 },
            DistError::NotPositive {
                dist: "Zipf",
                param: p("s"),
                value: num(0.0),
            },
            "Zipf: s (0) must be > 0",
        );
        assert_invalid(
            Dist::Zipf {
                n: 10,
                s: f64::INFINITY,
            },
            DistError::NotFinite {
                dist: "Zipf",
                param: p("s"),
                value: num(f64::INFINITY),
            },
            "Zipf: s must be a finite number, not inf",
        );
        assert_invalid(
            Dist::Empirical(vec![]),
            DistError::Empty,
            "Empirical: needs at least one observed value, but the list is empty",
        );
        assert_invalid(
            Dist::Empirical(vec![ms(1), ms(2), num(0.5)]),
            DistError::MixedUnits {
                dist: "Empirical",
                first_param: p("value 0"),
                first: ms(1),
                other_param: p("value 2"),
                other: num(0.5),
            },
            "Empirical: parameters must be all durations or all plain numbers, but value 0 is \
             1ms and value 2 is 0.5",
        );
        assert_invalid(
            Dist::Empirical(vec![num(1.0), num(f64::NEG_INFINITY)]),
            DistError::NotFinite {
                dist: "Empirical",
                param: p("value 1"),
                value: num(f64::NEG_INFINITY),
            },
            "Empirical: value 1 must be a finite number, not -inf",
        );
    }

    #[test]
    fn edge_values_that_are_valid() {
        for d in [
            Dist::Const(ms(0)),
            Dist::Const(num(-3.0)),
            Dist::Uniform {
                low: num(-2.0),
                high: num(-1.0),
            },
            Dist::Zipf { n: 1, s: 1.0 },
            Dist::Empirical(vec![num(4.0)]),
        ] {
            assert_eq!(d.validate(), Ok(()), "{d:?}");
            assert!(d.compile().is_ok(), "{d:?}");
        }
        // A single-rank Zipf can only ever give rank 1.
        let s = compile(&Dist::Zipf { n: 1, s: 1.0 });
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        assert!((0..100).all(|_| s.sample_u64(&mut rng) == 1));
    }

    fn from_ron(text: &str) -> Dist {
        match ron::from_str::<Dist>(text) {
            Ok(d) => d,
            Err(e) => panic!("{text} should parse: {e}"),
        }
    }

    fn to_ron(d: &Dist) -> String {
        match ron::to_string(d) {
            Ok(s) => s,
            Err(e) => panic!("{d:?} should serialize: {e}"),
        }
    }

    #[test]
    fn every_form_parses_from_ron_and_round_trips() {
        let cases = [
            (r#"Const("5ms")"#, Dist::Const(ms(5)), r#"Const("5ms")"#),
            (
                r#"Exp(mean: "20ms")"#,
                Dist::Exp { mean: ms(20) },
                r#"Exp(mean:"20ms")"#,
            ),
            (
                r#"LogNormal(p50: "20ms", p99: "200ms")"#,
                Dist::LogNormal {
                    p50: ms(20),
                    p99: ms(200),
                },
                r#"LogNormal(p50:"20ms",p99:"200ms")"#,
            ),
            (
                r#"Uniform(low: "1ms", high: "3ms")"#,
                Dist::Uniform {
                    low: ms(1),
                    high: ms(3),
                },
                r#"Uniform(low:"1ms",high:"3ms")"#,
            ),
            (
                r#"Pareto(scale: "1ms", shape: 1.5)"#,
                Dist::Pareto {
                    scale: ms(1),
                    shape: 1.5,
                },
                r#"Pareto(scale:"1ms",shape:1.5)"#,
            ),
            (
                "Zipf(n: 10000, s: 1.1)",
                Dist::Zipf { n: 10_000, s: 1.1 },
                "Zipf(n:10000,s:1.1)",
            ),
            (
                r#"Empirical(["1ms", "2ms", "40ms"])"#,
                Dist::Empirical(vec![ms(1), ms(2), ms(40)]),
                r#"Empirical(["1ms","2ms","40ms"])"#,
            ),
            (
                "Uniform(low: 0.3, high: 10000)",
                Dist::Uniform {
                    low: num(0.3),
                    high: num(10000.0),
                },
                "Uniform(low:0.3,high:10000)",
            ),
            ("Const(-2)", Dist::Const(num(-2.0)), "Const(-2)"),
            (
                r#"Exp(mean: "1h 30m")"#,
                Dist::Exp {
                    mean: Scalar::duration(SimDuration::from_mins(90)),
                },
                r#"Exp(mean:"1h30m")"#,
            ),
        ];
        for (text, expected, canonical) in cases {
            let parsed = from_ron(text);
            assert_eq!(parsed, expected, "{text}");
            let written = to_ron(&parsed);
            assert_eq!(
                written, canonical,
                "{text} serializes back in the form it came in"
            );
            assert_eq!(from_ron(&written), parsed, "{text} round-trips");
            assert_eq!(parsed.validate(), Ok(()), "{text}");
        }
    }

    #[test]
    fn scalars_keep_their_unit_through_serde() {
        assert_eq!(ron::from_str::<Scalar>("\"20ms\"").ok(), Some(ms(20)));
        assert_eq!(ron::from_str::<Scalar>("0.3").ok(), Some(num(0.3)));
        assert_eq!(ron::from_str::<Scalar>("10000").ok(), Some(num(10000.0)));
        assert_eq!(ron::from_str::<Scalar>("-4").ok(), Some(num(-4.0)));
        assert_eq!(ron::to_string(&num(0.3)).ok().as_deref(), Some("0.3"));
        assert_eq!(ron::to_string(&ms(20)).ok().as_deref(), Some("\"20ms\""));
        // A hand-built duration with no duration text refuses to serialize rather than
        // silently changing its value or unit.
        let fractional = Scalar {
            value: 0.5,
            unit: Unit::Nanos,
        };
        assert!(ron::to_string(&fractional).is_err());
        assert_eq!(format!("{fractional}"), "0.5ns");
    }

    #[test]
    fn json_round_trips_too() {
        let d = Dist::LogNormal {
            p50: ms(20),
            p99: ms(200),
        };
        let text = serde_json::to_string(&d).ok();
        assert_eq!(
            text.as_deref(),
            Some(r#"{"LogNormal":{"p50":"20ms","p99":"200ms"}}"#)
        );
        let back = text.and_then(|t| serde_json::from_str::<Dist>(&t).ok());
        assert_eq!(back, Some(d));
        assert_eq!(
            serde_json::from_str::<Dist>(r#"{"Uniform":{"low":0.5,"high":2}}"#).ok(),
            Some(Dist::Uniform {
                low: num(0.5),
                high: num(2.0)
            })
        );
    }

    #[test]
    fn bad_ron_is_rejected_with_a_useful_message() {
        let err = |text: &str| match ron::from_str::<Dist>(text) {
            Ok(d) => panic!("{text} should not parse, got {d:?}"),
            Err(e) => e.to_string(),
        };
        let e = err(r#"Exp(mean: "5sec")"#);
        assert!(
            e.contains(
                "invalid duration \"5sec\": unknown unit 'sec'; expected one of ns, us, ms, s, m, \
                 h, d"
            ),
            "{e}"
        );
        let e = err(r#"Exp(mean: "20ms", median: "5ms")"#);
        assert!(e.contains("median"), "unknown fields are named: {e}");
        let e = err(r#"Gamma(k: 2)"#);
        assert!(e.contains("Gamma"), "{e}");
        let e = err("Const(true)");
        assert!(
            e.contains("a number such as 0.3 or a duration string"),
            "{e}"
        );
    }

    #[test]
    fn analytic_means() {
        let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() <= 1e-9 * b.abs());
        assert!(close(Dist::Exp { mean: ms(20) }.mean(), 20e6));
        assert!(close(
            Dist::Uniform {
                low: ms(1),
                high: ms(3)
            }
            .mean(),
            2e6
        ));
        assert!(close(
            Dist::Pareto {
                scale: ms(1),
                shape: 3.0
            }
            .mean(),
            1.5e6
        ));
        // Zipf over one rank is always rank 1; with s = 1 over 2 ranks, (1 + 2/2) / (1 + 1/2).
        assert!(close(Dist::Zipf { n: 1, s: 2.0 }.mean(), 1.0));
        assert!(close(Dist::Zipf { n: 2, s: 1.0 }.mean(), 2.0 / 1.5));
        assert!(close(
            Dist::LogNormal {
                p50: num(1.0),
                p99: num(1.0)
            }
            .mean(),
            1.0
        ));
        assert!(close(
            Dist::Empirical(vec![num(1.0), num(2.0), num(6.0)]).mean(),
            3.0
        ));
    }
}
