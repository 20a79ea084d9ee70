//! Jittered TTLs, the fix for a cache avalanche (C2): keys written together with one TTL
//! expire together, and their misses reach the database together; a random addition to each
//! key's TTL spreads the expiries over a window.
//!
//! The convention is the additive one, `uniform[base, base * (1 + jitter)]` on integer
//! nanoseconds, as in AWS's caching guidance ("add some time jitter to your TTLs": TTL =
//! base + random) and most client libraries: an entry lives at least the TTL it was given, so
//! jitter never lowers the hit rate below the un-jittered one; the price is that the staleness
//! bound becomes `base * (1 + jitter)`. The symmetric `base * (1 ± j)` keeps the mean TTL but
//! lets some keys expire early; with this module the same spread is had by lowering `base`.

use rand::RngExt;
use serde::{Deserialize, Serialize};

use crate::engine::rng::SimRng;
use crate::engine::time::SimDuration;
use crate::model::rpc::{ConfigError, Validate};

/// The largest jitter fraction accepted: 10 (a TTL of up to 11 times its base). More than
/// that is no longer "jitter".
pub const MAX_TTL_JITTER: f64 = 10.0;

/// A TTL with jitter: `(base: "5m", jitter: 0.1)` lives between 5 and 5.5 minutes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ttl {
    /// The shortest TTL, > 0.
    pub base: SimDuration,
    /// The extra, as a fraction of `base`, in `[0, 10]`; default 0 (no jitter: the
    /// avalanche baseline).
    #[serde(default)]
    pub jitter: f64,
}

impl Validate for Ttl {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.base.is_zero() {
            return Err(ConfigError::Zero {
                field: "base".into(),
            });
        }
        if !(self.jitter.is_finite() && (0.0..=MAX_TTL_JITTER).contains(&self.jitter)) {
            return Err(ConfigError::Invalid {
                field: "jitter".into(),
                reason: format!(
                    "{} must be a fraction in [0, {MAX_TTL_JITTER}]",
                    self.jitter
                ),
            });
        }
        Ok(())
    }
}

impl Ttl {
    /// One TTL, from the caller's stream (see [`ttl_with_jitter`]).
    pub fn draw(&self, rng: &mut SimRng) -> SimDuration {
        ttl_with_jitter(self.base, self.jitter, rng)
    }
}

/// A TTL uniform on the integer nanoseconds of `[base, base + floor(base * jitter)]`.
///
/// A jitter of 0 (or a zero base) returns `base` without drawing, so a scenario that turns
/// jitter off leaves the stream where it was. A jitter outside `[0, 10]` (or NaN), which a
/// validated [`Ttl`] never has, is clamped into it; a spread beyond `u64` saturates.
pub fn ttl_with_jitter(base: SimDuration, jitter: f64, rng: &mut SimRng) -> SimDuration {
    let j = if jitter.is_nan() {
        0.0
    } else {
        jitter.clamp(0.0, MAX_TTL_JITTER)
    };
    // `as` saturates; below 2^53 ns (104 days) the product is exact to a nanosecond.
    let spread = (base.as_nanos() as f64 * j) as u64;
    if spread == 0 {
        return base;
    }
    let extra = rng.random_range(0..=spread);
    let ttl = base.saturating_add(SimDuration::from_nanos(extra));
    debug_assert!(ttl >= base);
    debug_assert!(ttl.as_nanos() - base.as_nanos() <= spread);
    ttl
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::rng::stream;
    use rand_core::Rng;

    #[test]
    fn jittered_ttls_are_uniform_on_base_to_base_times_one_plus_j() {
        // Uniform on the n + 1 integers 0..=spread: mean spread / 2, variance
        // ((n + 1)^2 - 1) / 12. 100,000 draws: the mean within 5 standard errors, every draw
        // in range, and each tenth of the window within 5 binomial sd of 10%.
        let mut rng = stream(5, "ttl");
        let base = SimDuration::from_secs(300);
        let j = 0.2;
        let spread = 60_000_000_000_u64;
        let n = 100_000;
        let (mut sum, mut deciles) = (0.0, [0_u64; 10]);
        let (mut lo, mut hi) = (u64::MAX, 0);
        for _ in 0..n {
            let ttl = ttl_with_jitter(base, j, &mut rng);
            assert!(ttl >= base);
            let extra = ttl.as_nanos() - base.as_nanos();
            assert!(extra <= spread);
            lo = lo.min(extra);
            hi = hi.max(extra);
            sum += extra as f64;
            deciles[((extra * 10 / (spread + 1)) as usize).min(9)] += 1;
        }
        let mean = sum / n as f64;
        let var = ((spread as f64 + 1.0).powi(2) - 1.0) / 12.0;
        let se = (var / n as f64).sqrt();
        assert!((mean - spread as f64 / 2.0).abs() < 5.0 * se, "{mean}");
        let sd = (n as f64 * 0.1 * 0.9).sqrt();
        for (i, &c) in deciles.iter().enumerate() {
            assert!(
                (c as f64 - n as f64 / 10.0).abs() < 5.0 * sd,
                "decile {i}: {c}"
            );
        }
        // The window is used to its ends (within 0.1% of them).
        assert!(
            lo < spread / 1_000 && hi > spread - spread / 1_000,
            "{lo} {hi}"
        );
    }

    #[test]
    fn no_jitter_draws_nothing_and_bad_fractions_are_clamped() {
        let base = SimDuration::from_millis(250);
        let mut rng = stream(5, "ttl");
        let mut untouched = stream(5, "ttl");
        assert_eq!(ttl_with_jitter(base, 0.0, &mut rng), base);
        assert_eq!(ttl_with_jitter(base, f64::NAN, &mut rng), base);
        assert_eq!(ttl_with_jitter(base, -3.0, &mut rng), base);
        assert_eq!(
            ttl_with_jitter(SimDuration::ZERO, 0.5, &mut rng),
            SimDuration::ZERO
        );
        assert_eq!(rng.next_u64(), untouched.next_u64(), "no draw was made");
        // Huge fractions are clamped to 10: at most 11 x base.
        for _ in 0..1_000 {
            let ttl = ttl_with_jitter(base, 1e9, &mut rng);
            assert!(ttl <= base.saturating_mul(11));
        }
        // One nanosecond of spread takes both values.
        let one = SimDuration::from_nanos(10);
        let seen: Vec<u64> = (0..100)
            .map(|_| ttl_with_jitter(one, 0.1, &mut rng).as_nanos())
            .collect();
        assert!(seen.contains(&10) && seen.contains(&11));
        assert!(seen.iter().all(|&t| t == 10 || t == 11));
        // Saturation instead of overflow near the end of time.
        let ttl = ttl_with_jitter(SimDuration::MAX, 0.5, &mut rng);
        assert_eq!(ttl, SimDuration::MAX);
    }

    #[test]
    fn jitter_spreads_an_avalanche() {
        // 10,000 keys written at once with a 60 s TTL: without jitter they all expire in the
        // same nanosecond; with 10% they spread over 6 s, so no 100 ms holds more than about
        // 10,000 x 0.1 / 6 = 167 expiries (binomial sd 12.8; 5 sd margin).
        let mut rng = stream(9, "avalanche");
        let flat = Ttl {
            base: SimDuration::from_secs(60),
            jitter: 0.0,
        };
        let spread = Ttl {
            jitter: 0.1,
            ..flat.clone()
        };
        assert!(flat.validate().is_ok() && spread.validate().is_ok());
        let keys = 10_000;
        let flat_expiries: Vec<u64> = (0..keys).map(|_| flat.draw(&mut rng).as_nanos()).collect();
        assert!(flat_expiries.iter().all(|&e| e == 60_000_000_000));
        let mut buckets = [0_u64; 61];
        for _ in 0..keys {
            let extra = spread.draw(&mut rng).as_nanos() - 60_000_000_000;
            buckets[(extra / 100_000_000) as usize] += 1;
        }
        let p = 0.1 / 6.0;
        let worst = *buckets[..60].iter().max().expect("60 buckets");
        let sd = (keys as f64 * p * (1.0 - p)).sqrt();
        assert!((worst as f64) < keys as f64 * p + 5.0 * sd, "{worst}");
        assert!(
            buckets[60] <= 2,
            "the last nanosecond only: {}",
            buckets[60]
        );
    }

    #[test]
    fn ttl_configs_parse_and_validate() {
        let t: Ttl = ron::from_str(r#"(base: "5m", jitter: 0.1)"#).expect("parses");
        assert_eq!(t.base, SimDuration::from_mins(5));
        assert_eq!(t.jitter, 0.1);
        let t: Ttl = ron::from_str(r#"(base: "30s")"#).expect("parses");
        assert_eq!(t.jitter, 0.0);
        assert!(ron::from_str::<Ttl>(r#"(base: "30s", jiter: 0.1)"#).is_err());
        let field = |base, jitter| {
            Ttl { base, jitter }
                .validate()
                .unwrap_err()
                .field()
                .map(str::to_string)
        };
        let s = SimDuration::from_secs(1);
        assert_eq!(field(SimDuration::ZERO, 0.1).as_deref(), Some("base"));
        for bad in [-0.1, 10.5, f64::NAN, f64::INFINITY] {
            assert_eq!(field(s, bad).as_deref(), Some("jitter"), "{bad}");
        }
        assert!(
            Ttl {
                base: s,
                jitter: 10.0
            }
            .validate()
            .is_ok()
        );
    }
}
