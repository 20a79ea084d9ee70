//! Probabilistic early expiration, "XFetch" (A. Vattani, F. Chierichetti, K. Lowenstein,
//! "Optimal Probabilistic Cache Stampede Prevention", VLDB 2015): a fix for the stampede of
//! C1 that needs no lock.
//!
//! Each request that finds a fresh entry recomputes it early when
//! `now - delta * beta * ln(rand()) >= expiry`, with `rand()` uniform in `(0, 1]`, `delta` the
//! duration of the recompute that produced the entry (the store keeps it), and `beta` a knob
//! (1 by default, the paper's recommendation; larger refreshes earlier). With `tau = beta *
//! delta`, a request `t` before expiry refreshes with probability `P(-tau ln u >= t) =
//! exp(-t / tau)`: negligible far from expiry, 37% one `tau` before it, certain at it.
//!
//! **How many recomputes per expiry, without single-flight.** Requests arrive as a Poisson
//! process of rate `lambda`; every request that decides to refresh (and every miss after
//! expiry) starts a recompute of `delta`, and the first to finish replaces the entry. Measure
//! time as the lead `s` before expiry. Refreshing requests are a Poisson process of intensity
//! `lambda exp(-s / tau)` (`lambda` once `s <= 0`), whose cumulative intensity from the far
//! past is `C(s) = lambda tau exp(-s / tau)` for `s >= 0` and `lambda tau + lambda |s|` after.
//! At the first refresh, at lead `s1`, `E = C(s1)` is Exp(1); the requests that also refresh
//! before the first recompute lands, in `(s1 - delta, s1)`, are Poisson with mean
//! `C(s1 - delta) - E`. So the expected number of recomputes per expiry is
//! `1 + E[C(C^-1(E) - delta) - E]` ([`expected_recomputations`] integrates it). Under heavy
//! traffic (`lambda tau exp(-1 / beta) >> 1`) the first refresh comes more than `delta` early,
//! `C(s1 - delta) = exp(1 / beta) E`, and the expectation is exactly **`exp(1 / beta)`**:
//! e = 2.72 at beta = 1, 1.65 at beta = 2, 7.39 at beta = 0.5, whatever `lambda` and `delta`
//! (against `1 + lambda delta` without XFetch). The first refresh then comes on average
//! `tau (ln(lambda tau) + gamma)` before expiry (gamma = 0.5772, Euler's constant), with
//! standard deviation `tau pi / sqrt(6)` (a Gumbel law): that lead is what XFetch pays, in
//! freshness lost, for a bounded stampede. With single-flight there is one recompute, always.
//!
//! Determinism: the logarithm is `libm::log` (pure Rust), never `f64::ln`, which calls the
//! platform's libm and may differ in the last bit between systems; the uniform is
//! `engine::rng::unit_f64` of one `u64` draw.

use serde::{Deserialize, Serialize};

use super::Entry;
use crate::engine::rng::{SimRng, unit_f64};
use crate::engine::time::{SimDuration, SimTime};
use crate::model::rpc::{ConfigError, Validate};

/// `beta` by default: 1, the value the paper recommends ("setting beta = 1 ... is a good
/// default", and what its optimality argument assumes).
pub const DEFAULT_BETA: f64 = 1.0;

/// The largest `beta` accepted: 100 (a refresh ~100 recompute-times early, already wasteful).
pub const MAX_BETA: f64 = 100.0;

/// XFetch's one parameter: `xfetch: (beta: 1.5)`, or `()` for the default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XFetchConfig {
    /// In `[0, 100]`; 0 never refreshes early (plain expiry). Default 1.
    #[serde(default = "default_beta")]
    pub beta: f64,
}

fn default_beta() -> f64 {
    DEFAULT_BETA
}

impl Default for XFetchConfig {
    fn default() -> Self {
        XFetchConfig { beta: DEFAULT_BETA }
    }
}

impl Validate for XFetchConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if !(self.beta.is_finite() && (0.0..=MAX_BETA).contains(&self.beta)) {
            return Err(ConfigError::Invalid {
                field: "beta".into(),
                reason: format!("{} must be in [0, {MAX_BETA}]", self.beta),
            });
        }
        Ok(())
    }
}

/// The XFetch decision (see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct XFetch {
    beta: f64,
}

impl XFetch {
    pub fn new(config: &XFetchConfig) -> Result<XFetch, ConfigError> {
        config.validate()?;
        Ok(XFetch { beta: config.beta })
    }

    pub fn beta(&self) -> f64 {
        self.beta
    }

    /// Whether a request at `now` for an entry expiring at `expires_at`, whose last recompute
    /// took `delta`, should recompute it: `now - delta * beta * ln(u) >= expires_at`, `u`
    /// uniform in `(0, 1]` from `rng`.
    ///
    /// At or after expiry the answer is yes without a draw; with `delta` or `beta` zero it is
    /// no (before expiry) without a draw. Otherwise exactly one `u64` is drawn.
    pub fn should_refresh(
        &self,
        now: SimTime,
        expires_at: SimTime,
        delta: SimDuration,
        rng: &mut SimRng,
    ) -> bool {
        if now >= expires_at {
            return true;
        }
        let left = expires_at.saturating_duration_since(now);
        debug_assert!(!left.is_zero());
        if delta.is_zero() || self.beta == 0.0 {
            return false;
        }
        // unit_f64 is in [0, 1): 1 - it is in (0, 1], so the log is finite and <= 0.
        let u = 1.0 - unit_f64(rng);
        debug_assert!(u > 0.0 && u <= 1.0);
        let early_ns = -(delta.as_nanos() as f64 * self.beta) * libm::log(u);
        debug_assert!(early_ns >= 0.0);
        early_ns >= left.as_nanos() as f64
    }

    /// [`should_refresh`](Self::should_refresh) for a store entry; an entry that never expires
    /// is never refreshed early (and draws nothing).
    pub fn should_refresh_entry(&self, now: SimTime, entry: &Entry, rng: &mut SimRng) -> bool {
        match entry.expires_at {
            Some(expiry) => self.should_refresh(now, expiry, entry.delta, rng),
            None => false,
        }
    }

    /// The probability that a request `time_left` before expiry refreshes:
    /// `exp(-time_left / (beta * delta))`, 1 at expiry, 0 with `beta` or `delta` zero.
    pub fn refresh_probability(&self, time_left: SimDuration, delta: SimDuration) -> f64 {
        if time_left.is_zero() {
            return 1.0;
        }
        let tau = self.beta * delta.as_nanos() as f64;
        if tau == 0.0 {
            return 0.0;
        }
        libm::exp(-(time_left.as_nanos() as f64) / tau)
    }
}

/// Simpson panels for the middle part of [`expected_recomputations`]: its integrand is smooth
/// on a finite interval, and 4,096 panels put the error far below any simulation's noise.
const SIMPSON_PANELS: usize = 4_096;

/// The expected number of recomputes per expiry of one key read at `rate_per_sec` (Poisson)
/// with XFetch at `beta`, each recompute taking `delta`, and no single-flight (the derivation
/// is in the module docs): `1 + E[C(C^-1(E) - delta) - E]`, `E ~ Exp(1)`, which is `exp(1 /
/// beta)` under heavy traffic and `1 + rate * delta` at `beta = 0`.
///
/// Split by where the first refresh falls: more than `delta` before expiry (`E <= a =
/// C(delta)`, closed form), within `delta` of it (`a < E <= b = C(0)`, Simpson's rule in
/// the lead), or after it (`E > b`: a plain miss, then `rate * delta` more). NaN for a negative or
/// non-finite rate or beta.
pub fn expected_recomputations(rate_per_sec: f64, delta: SimDuration, beta: f64) -> f64 {
    let valid = |x: f64| x.is_finite() && x >= 0.0;
    if !(valid(rate_per_sec) && valid(beta)) {
        return f64::NAN;
    }
    let lambda = rate_per_sec;
    let d = delta.as_secs_f64();
    let tau = beta * d;
    if tau == 0.0 {
        return 1.0 + lambda * d;
    }
    let b = lambda * tau;
    let inv_beta = d / tau;
    let a = b * libm::exp(-inv_beta);
    // First refresh more than `delta` early: extra = E (e^{1/beta} - 1); the integral of
    // E e^{-E} over [0, a] is 1 - (1 + a) e^{-a}, computed without cancellation. For
    // 1/beta > 700 the factor overflows while `a` underflows; the product is then ~0.
    let early = if inv_beta > 700.0 {
        0.0
    } else {
        libm::expm1(inv_beta) * (-libm::expm1(-a) - a * libm::exp(-a))
    };
    // First refresh within `delta` of expiry, at lead s = tau w for w in [0, 1/beta): in w
    // its density is C e^{-C} with C = C(s) = b e^{-w}, and the extra refreshes number
    // C(s - delta) - C(s) = b + lambda (delta - s) - C. Past w = ln(b) + 64 the density is
    // below e^{-64} of its peak, so the integral stops there: Simpson's panels then stay
    // fine-grained even for a tiny beta (a long window in w).
    let w_end = inv_beta.min(libm::log(b.max(1.0)) + 64.0);
    let integrand = |w: f64| {
        let cw = b * libm::exp(-w);
        (b + lambda * (d - tau * w) - cw) * cw * libm::exp(-cw)
    };
    let h = w_end / SIMPSON_PANELS as f64;
    let mut sum = integrand(0.0) + integrand(w_end);
    for i in 1..SIMPSON_PANELS {
        let weight = if i % 2 == 1 { 4.0 } else { 2.0 };
        sum += weight * integrand(i as f64 * h);
    }
    let near = sum * h / 3.0;
    // No refresh before expiry (probability e^{-b}): the first miss, then rate * delta more.
    let late = lambda * d * libm::exp(-b);
    1.0 + early + near + late
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::rng::stream;
    use rand_core::Rng;

    const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

    fn xfetch(beta: f64) -> XFetch {
        match XFetch::new(&XFetchConfig { beta }) {
            Ok(x) => x,
            Err(e) => panic!("{e}"),
        }
    }

    fn ms(n: u64) -> SimDuration {
        SimDuration::from_millis(n)
    }

    #[test]
    fn the_refresh_probability_is_exp_of_minus_t_over_beta_delta() {
        // For each (beta, t / delta) the share of 200,000 requests that refresh is within 5
        // binomial sd of exp(-t / (beta delta)).
        let mut rng = stream(11, "xfetch");
        let expiry = SimTime::from_nanos(1_000_000_000_000);
        let delta = ms(100);
        let n = 200_000;
        for beta in [0.5, 1.0, 2.0] {
            let x = xfetch(beta);
            for t_over_delta in [0.05, 0.3, 1.0, 2.0, 4.0] {
                let left = delta.mul_f64(t_over_delta).expect("small");
                let now = expiry - left;
                let p = x.refresh_probability(left, delta);
                assert!((p - libm::exp(-t_over_delta / beta)).abs() < 1e-9);
                let hits = (0..n)
                    .filter(|_| x.should_refresh(now, expiry, delta, &mut rng))
                    .count();
                let sd = (n as f64 * p * (1.0 - p)).sqrt();
                assert!(
                    (hits as f64 - n as f64 * p).abs() < 5.0 * sd,
                    "beta {beta}, t {t_over_delta} delta: {hits} of {n}, p {p}"
                );
            }
        }
    }

    #[test]
    fn edges_decide_without_drawing() {
        let x = xfetch(1.0);
        let expiry = SimTime::from_nanos(5_000);
        let mut rng = stream(1, "x");
        let mut untouched = stream(1, "x");
        assert!(
            x.should_refresh(expiry, expiry, ms(10), &mut rng),
            "at expiry"
        );
        assert!(
            x.should_refresh(SimTime::MAX, expiry, ms(10), &mut rng),
            "after"
        );
        assert!(!x.should_refresh(SimTime::ZERO, expiry, SimDuration::ZERO, &mut rng));
        assert!(!xfetch(0.0).should_refresh(SimTime::from_nanos(4_999), expiry, ms(10), &mut rng));
        assert_eq!(rng.next_u64(), untouched.next_u64(), "no draws so far");
        // Undecided: exactly one draw.
        let _ = x.should_refresh(SimTime::ZERO, expiry, ms(10), &mut rng);
        untouched.next_u64();
        assert_eq!(rng.next_u64(), untouched.next_u64());
        // One nanosecond before expiry with a 10 ms recompute: practically always.
        let mut rng = stream(2, "x");
        assert!((0..1_000).all(|_| x.should_refresh(
            SimTime::from_nanos(4_999),
            expiry,
            ms(10),
            &mut rng
        )));
        assert_eq!(x.refresh_probability(SimDuration::ZERO, ms(1)), 1.0);
        assert_eq!(xfetch(0.0).refresh_probability(ms(1), ms(1)), 0.0);
        // Entries: no expiry, no early refresh.
        let entry = Entry {
            stored_at: SimTime::ZERO,
            expires_at: None,
            size: 1,
            delta: ms(10),
            version: 1,
            negative: false,
            last_access: SimTime::ZERO,
        };
        assert!(!x.should_refresh_entry(SimTime::MAX, &entry, &mut rng));
        let expiring = Entry {
            expires_at: Some(expiry),
            ..entry
        };
        assert!(x.should_refresh_entry(expiry, &expiring, &mut rng));
    }

    /// One expiry of a key read at `rate` per second with no single-flight: returns the
    /// number of recomputes started before the first one lands, and how long before expiry
    /// the first one started (negative: after).
    fn episode(
        x: &XFetch,
        rate: f64,
        delta: SimDuration,
        arrivals: &mut SimRng,
        draws: &mut SimRng,
    ) -> (u64, f64) {
        let expiry = SimTime::from_nanos(10_000_000_000_000);
        let tau_s = x.beta() * delta.as_secs_f64();
        // Start where the cumulative refresh intensity is 1e-6: a refresh before the start
        // would have had probability 1e-6.
        let start_lead_s = if tau_s > 0.0 {
            (tau_s * libm::log((rate * tau_s * 1e6).max(1.0))).max(0.0)
        } else {
            0.0
        };
        let mut t = expiry.as_nanos() - (start_lead_s * 1e9) as u64;
        let mut next = |t: &mut u64| {
            let u = 1.0 - unit_f64(arrivals);
            *t += (-libm::log(u) / rate * 1e9) as u64;
        };
        let first = loop {
            next(&mut t);
            if x.should_refresh(SimTime::from_nanos(t), expiry, delta, draws) {
                break t;
            }
        };
        let landed = first + delta.as_nanos();
        let mut recomputes = 1;
        loop {
            next(&mut t);
            if t >= landed {
                break;
            }
            recomputes += u64::from(x.should_refresh(SimTime::from_nanos(t), expiry, delta, draws));
        }
        (recomputes, (expiry.as_nanos() as f64 - first as f64) / 1e9)
    }

    #[test]
    fn recomputes_per_expiry_match_the_formula_by_simulation() {
        // For each case: 4,000 simulated expiries; the mean number of recomputes is within 5
        // standard errors (from the sample variance) of `expected_recomputations`, which in
        // heavy traffic is exp(1 / beta); and the first refresh's mean lead is within 5 SE of
        // tau (ln(lambda tau) + gamma) where that law holds.
        let episodes = 4_000;
        let mut report = Vec::new();
        for (rate, delta_ms, beta, heavy) in [
            (1_000.0, 100, 1.0, true),
            (1_000.0, 100, 2.0, true),
            (1_000.0, 100, 0.5, true),
            (200.0, 50, 1.0, false),
            (10.0, 100, 1.0, false),
            (1_000.0, 100, 0.0, false),
        ] {
            let delta = ms(delta_ms);
            let x = xfetch(beta);
            let mut arrivals = stream(delta_ms, "arrivals");
            let mut draws = stream(delta_ms, "draws");
            let (mut sum, mut sum_sq, mut lead_sum, mut lead_sq) = (0.0, 0.0, 0.0, 0.0);
            for _ in 0..episodes {
                let (n, lead) = episode(&x, rate, delta, &mut arrivals, &mut draws);
                sum += n as f64;
                sum_sq += (n * n) as f64;
                lead_sum += lead;
                lead_sq += lead * lead;
            }
            let k = episodes as f64;
            let mean = sum / k;
            let se = ((sum_sq / k - mean * mean) / k).sqrt();
            let expected = expected_recomputations(rate, delta, beta);
            assert!(
                (mean - expected).abs() < 5.0 * se,
                "rate {rate}, delta {delta}, beta {beta}: {mean} recomputes, expected {expected} (se {se})"
            );
            if heavy {
                // lambda tau e^{-1/beta} is 37, 61 and 6.8 here: the heavy-traffic limit holds
                // to within e^{-6.8} = 1e-3 even in the last case.
                let limit = libm::exp(1.0 / beta);
                assert!(
                    (expected / limit - 1.0).abs() < 1e-3,
                    "{expected} vs {limit}"
                );
                let tau = beta * delta.as_secs_f64();
                let lead_mean = lead_sum / k;
                let lead_se = ((lead_sq / k - lead_mean * lead_mean) / k).sqrt();
                let want = tau * (libm::log(rate * tau) + EULER_GAMMA);
                assert!(
                    (lead_mean - want).abs() < 5.0 * lead_se,
                    "beta {beta}: lead {lead_mean} s, expected {want} s"
                );
                // And its spread is the Gumbel's, tau pi / sqrt(6), within 10%.
                let lead_sd = (lead_sq / k - lead_mean * lead_mean).sqrt();
                let want_sd = tau * std::f64::consts::PI / 6.0_f64.sqrt();
                assert!(
                    (lead_sd / want_sd - 1.0).abs() < 0.1,
                    "{lead_sd} vs {want_sd}"
                );
            }
            report.push((rate, delta_ms, beta, mean, expected));
        }
        eprintln!(
            "xfetch recomputes per expiry (rate, delta_ms, beta, measured, expected): {report:?}"
        );
    }

    #[test]
    fn the_formula_has_its_limits() {
        let d = ms(100);
        // beta = 0: the plain stampede, 1 + lambda delta.
        assert_eq!(expected_recomputations(1_000.0, d, 0.0), 101.0);
        assert_eq!(
            expected_recomputations(1_000.0, SimDuration::ZERO, 1.0),
            1.0
        );
        // Heavy traffic: e^{1/beta}, independent of the rate.
        for beta in [0.5, 1.0, 2.0, 4.0] {
            for rate in [5_000.0, 50_000.0] {
                let e = expected_recomputations(rate, d, beta);
                assert!(
                    (e - libm::exp(1.0 / beta)).abs() < 1e-6,
                    "{rate} {beta}: {e}"
                );
            }
        }
        // Vanishing traffic: one recompute (the first miss) and nothing else.
        assert!((expected_recomputations(1e-6, d, 1.0) - 1.0).abs() < 1e-6);
        // A tiny beta approaches the stampede without overflowing.
        let e = expected_recomputations(1_000.0, d, 1e-4);
        assert!(e.is_finite() && (e - 101.0).abs() < 1.0, "{e}");
        // Never below 1, rising as beta falls.
        let mut last = 1.0;
        for beta in [8.0, 4.0, 2.0, 1.0, 0.5, 0.25] {
            let e = expected_recomputations(300.0, d, beta);
            assert!(e >= last, "{beta}: {e} < {last}");
            last = e;
        }
        assert!(expected_recomputations(-1.0, d, 1.0).is_nan());
        assert!(expected_recomputations(1.0, d, f64::NAN).is_nan());
    }

    #[test]
    fn configs_default_to_beta_one_and_validate() {
        let c: XFetchConfig = ron::from_str("()").expect("defaults");
        assert_eq!(c, XFetchConfig::default());
        assert_eq!(c.beta, 1.0);
        let c: XFetchConfig = ron::from_str("(beta: 2.5)").expect("parses");
        assert_eq!(XFetch::new(&c).map(|x| x.beta()).ok(), Some(2.5));
        assert!(ron::from_str::<XFetchConfig>("(bta: 1)").is_err());
        for bad in [-1.0, 101.0, f64::NAN, f64::INFINITY] {
            let err = XFetch::new(&XFetchConfig { beta: bad }).unwrap_err();
            assert_eq!(err.field(), Some("beta"), "{bad}");
        }
        assert!(XFetch::new(&XFetchConfig { beta: 0.0 }).is_ok());
    }
}
