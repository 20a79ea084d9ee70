//! A Bloom filter of the keys that exist: the fix for cache penetration (C3) that works even
//! when every missing key is different, where negative caching cannot help. A service asks it
//! before the cache: "no" is certain (the key does not exist, answer at once), "maybe" goes on
//! to the cache and the database; only the false positives of absent keys still get through.
//!
//! Sizing by the standard formulas, for `n` expected keys and a false-positive rate `p`:
//! `m = ceil(-n ln p / (ln 2)^2)` bits and `k = round(m / n ln 2)` hash functions (at least
//! 1), which give a rate of `(1 - e^{-k n / m})^k`, about `p`. RedisBloom's `BF.RESERVE`
//! (after libbloom) sizes its filters from the same formulas; its default error rate, 1%, is
//! the default here.
//!
//! Hashing, fixed and pinned by tests: `h1` and `h2` are the first two outputs of SplitMix64
//! seeded with `key ^ BLOOM_SALT`, and the `k` bit positions come from enhanced double
//! hashing (Dillinger & Manolios, "Bloom Filters in Probabilistic Verification", 2004):
//! `x = h1 mod m, y = h2 mod m`, then for `i` in `0..k`: use `x`, `x += y`, `y += i` (mod
//! `m`), which avoids the short cycles of plain double hashing when `y` shares a factor with
//! `m`. Kirsch and Mitzenmacher showed that two hashes lose nothing asymptotically against `k`
//! independent ones. The salt keeps these bits unrelated to the ring's `mix64(key)`.
//!
//! Own implementation rather than a crate: the Bloom crates (`bloomfilter`, `fastbloom`, ...)
//! hash through `std::hash::Hash` with their own, often randomly seeded, hashers, and their
//! bit layout is theirs to change between versions — either would change which requests a
//! recorded seed lets through. What is needed is a bit vector and the formulas.

use serde::{Deserialize, Serialize};

use super::{GOLDEN_GAMMA, mix64};
use crate::model::rpc::{ConfigError, Validate};

/// The false-positive rate by default: 1%, RedisBloom's default `error_rate` (0.01).
pub const DEFAULT_FALSE_POSITIVE_RATE: f64 = 0.01;

/// The largest filter: 2^33 bits (1 GiB). A filter for a billion keys at 1% is 9.6 Gbit;
/// this simulator's key spaces are far smaller.
pub const MAX_BLOOM_BITS: u64 = 1 << 33;

/// The most hash functions: 64 (p = 2^-64 needs about 64; more is a config mistake).
const MAX_HASHES: u32 = 64;

/// Mixed into every key before hashing, so that a filter's bits do not follow the ring's
/// positions (`mix64(key)`): the bytes of "faultblm".
const BLOOM_SALT: u64 = 0x6661_756c_7462_6c6d;

/// A filter's sizing: `bloom: (expected_keys: 100000, false_positive_rate: 0.01)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BloomConfig {
    /// The number of keys it is sized for, >= 1; more still work, with more false positives.
    pub expected_keys: u64,
    /// In `(0, 1)`; default 0.01.
    #[serde(default = "default_rate")]
    pub false_positive_rate: f64,
}

fn default_rate() -> f64 {
    DEFAULT_FALSE_POSITIVE_RATE
}

impl Validate for BloomConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.expected_keys == 0 {
            return Err(ConfigError::Zero {
                field: "expected_keys".into(),
            });
        }
        let p = self.false_positive_rate;
        if !(p.is_finite() && p > 0.0 && p < 1.0) {
            return Err(ConfigError::Invalid {
                field: "false_positive_rate".into(),
                reason: format!("{p} must be in (0, 1)"),
            });
        }
        let bits = optimal_bits(self.expected_keys, p);
        if bits > MAX_BLOOM_BITS {
            return Err(ConfigError::Invalid {
                field: "expected_keys".into(),
                reason: format!(
                    "{} keys at a rate of {p} need {bits} bits, more than {MAX_BLOOM_BITS}",
                    self.expected_keys
                ),
            });
        }
        if optimal_hashes(bits, self.expected_keys) > MAX_HASHES {
            return Err(ConfigError::Invalid {
                field: "false_positive_rate".into(),
                reason: format!("{p} needs more than {MAX_HASHES} hash functions"),
            });
        }
        Ok(())
    }
}

/// `m = ceil(-n ln p / (ln 2)^2)`, at least 1 (saturating at `u64::MAX`; `p` in `(0, 1)`).
pub fn optimal_bits(n: u64, p: f64) -> u64 {
    let ln2 = core::f64::consts::LN_2;
    let m = libm::ceil(-(n as f64) * libm::log(p) / (ln2 * ln2));
    // `as` saturates, and NaN (a bad p) becomes 0, then 1.
    (m as u64).max(1)
}

/// `k = round(m / n ln 2)`, at least 1 (and at most `u32::MAX`).
pub fn optimal_hashes(m: u64, n: u64) -> u32 {
    let k = libm::round(m as f64 / n.max(1) as f64 * core::f64::consts::LN_2);
    (k as u32).max(1)
}

/// A Bloom filter over `u64` keys (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BloomFilter {
    words: Vec<u64>,
    bits: u64,
    hashes: u32,
    inserted: u64,
}

impl BloomFilter {
    /// A filter sized for `config`; errors name the field.
    pub fn new(config: &BloomConfig) -> Result<BloomFilter, ConfigError> {
        config.validate()?;
        let bits = optimal_bits(config.expected_keys, config.false_positive_rate);
        let hashes = optimal_hashes(bits, config.expected_keys);
        BloomFilter::with_size(bits, hashes)
    }

    /// A filter of exactly `bits` bits and `hashes` hash functions.
    pub fn with_size(bits: u64, hashes: u32) -> Result<BloomFilter, ConfigError> {
        if bits == 0 || bits > MAX_BLOOM_BITS {
            return Err(ConfigError::Invalid {
                field: "bits".into(),
                reason: format!("{bits} must be in 1..={MAX_BLOOM_BITS}"),
            });
        }
        if hashes == 0 || hashes > MAX_HASHES {
            return Err(ConfigError::Invalid {
                field: "hashes".into(),
                reason: format!("{hashes} must be in 1..={MAX_HASHES}"),
            });
        }
        Ok(BloomFilter {
            words: vec![0; bits.div_ceil(64) as usize],
            bits,
            hashes,
            inserted: 0,
        })
    }

    /// Adds `key`; whether any of its bits was new (false: it was, or looked, present).
    pub fn insert(&mut self, key: u64) -> bool {
        let mut fresh = false;
        let (words, bits, hashes) = (&mut self.words, self.bits, self.hashes);
        for_each_bit(key, bits, hashes, |bit| {
            let (word, mask) = ((bit / 64) as usize, 1_u64 << (bit % 64));
            fresh |= words[word] & mask == 0;
            words[word] |= mask;
        });
        self.inserted += 1;
        debug_assert!(self.contains(key), "no false negatives");
        fresh
    }

    /// Whether `key` may have been inserted: false is certain, true is wrong with about
    /// [`false_positive_rate`](Self::false_positive_rate) for a key never inserted.
    pub fn contains(&self, key: u64) -> bool {
        let mut all = true;
        for_each_bit(key, self.bits, self.hashes, |bit| {
            all &= self.words[(bit / 64) as usize] & (1 << (bit % 64)) != 0;
        });
        all
    }

    pub fn bits(&self) -> u64 {
        self.bits
    }

    pub fn hashes(&self) -> u32 {
        self.hashes
    }

    /// Insertions so far (repeats included).
    pub fn inserted(&self) -> u64 {
        self.inserted
    }

    /// Bits set.
    pub fn ones(&self) -> u64 {
        self.words.iter().map(|w| u64::from(w.count_ones())).sum()
    }

    /// The predicted false-positive rate after the insertions so far:
    /// `(1 - e^{-k n / m})^k`.
    pub fn false_positive_rate(&self) -> f64 {
        let k = f64::from(self.hashes);
        let fill = -libm::expm1(-k * self.inserted as f64 / self.bits as f64);
        libm::pow(fill, k)
    }
}

/// Calls `f` with each of `key`'s `hashes` bit positions in `0..bits`.
fn for_each_bit(key: u64, bits: u64, hashes: u32, mut f: impl FnMut(u64)) {
    let seed = key ^ BLOOM_SALT;
    let h1 = mix64(seed.wrapping_add(GOLDEN_GAMMA));
    let h2 = mix64(seed.wrapping_add(GOLDEN_GAMMA.wrapping_mul(2)));
    let (mut x, mut y) = (h1 % bits, h2 % bits);
    for i in 0..u64::from(hashes) {
        f(x);
        // Sums of two values below `bits` <= 2^33 cannot overflow.
        x = (x + y) % bits;
        y = (y + i) % bits;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::rng::splitmix64;

    fn filter(n: u64, p: f64) -> BloomFilter {
        match BloomFilter::new(&BloomConfig {
            expected_keys: n,
            false_positive_rate: p,
        }) {
            Ok(f) => f,
            Err(e) => panic!("{n}, {p}: {e}"),
        }
    }

    #[test]
    fn sizes_follow_the_standard_formulas() {
        // n = 10,000 at 1%: m = ceil(10,000 x 4.60517 / 0.480453) = 95,851, k = round(6.64) = 7.
        assert_eq!(optimal_bits(10_000, 0.01), 95_851);
        assert_eq!(optimal_hashes(95_851, 10_000), 7);
        // 0.1%: 14.38 bits a key, k = 10; 50%: about 1.44 bits a key, k = 1.
        assert_eq!(optimal_bits(1_000, 0.001), 14_378);
        assert_eq!(optimal_hashes(14_378, 1_000), 10);
        assert_eq!(optimal_bits(1_000, 0.5), 1_443);
        assert_eq!(optimal_hashes(1_443, 1_000), 1);
        assert_eq!(optimal_bits(1, 0.999), 1);
        let f = filter(10_000, 0.01);
        assert_eq!(
            (f.bits(), f.hashes(), f.inserted(), f.ones()),
            (95_851, 7, 0, 0)
        );
        assert_eq!(f.false_positive_rate(), 0.0);
    }

    #[test]
    fn bit_positions_are_pinned_enhanced_double_hashing() {
        let mut got = Vec::new();
        for_each_bit(42, 1_000, 5, |b| got.push(b));
        let mut state = 42 ^ BLOOM_SALT;
        let (h1, h2) = (splitmix64(&mut state), splitmix64(&mut state));
        let (mut x, mut y) = (h1 % 1_000, h2 % 1_000);
        let mut want = Vec::new();
        for i in 0..5 {
            want.push(x);
            x = (x + y) % 1_000;
            y = (y + i) % 1_000;
        }
        assert_eq!(got, want);
        assert!(got.iter().all(|&b| b < 1_000));
    }

    #[test]
    fn no_false_negatives_and_the_measured_rate_matches_the_configured_one() {
        // Insert n existing keys (ids 0..n), query 1,000,000 absent ones (disjoint ids). Two
        // checks, each with a tolerance from its variance:
        // - the share of set bits is within 5 sd of 1 - (1 - 1/m)^{kn}, the occupancy sd of
        //   balls in bins being about sqrt(m e^{-c} (1 - (1 + c) e^{-c})) / m for c = k n / m;
        // - the false positives are within 5 binomial sd of Q rho^k, rho the measured share
        //   of set bits (the rate of *this* filter); and that rate is within 5 sd (binomial
        //   plus the fill's spread, propagated: k rho^{k-1} sd_rho) of the configured p.
        let queries = 1_000_000_u64;
        let mut report = Vec::new();
        for (n, p) in [
            (10_000, 0.01),
            (100_000, 0.01),
            (20_000, 0.001),
            (5_000, 0.1),
        ] {
            let mut f = filter(n, p);
            for key in 0..n {
                f.insert(key);
            }
            assert!((0..n).all(|key| f.contains(key)), "a false negative");
            let (m, k) = (f.bits() as f64, f64::from(f.hashes()));
            let c = k * n as f64 / m;
            let rho = f.ones() as f64 / m;
            let rho_expected = 1.0 - libm::pow(1.0 - 1.0 / m, k * n as f64);
            let rho_sd = (m * libm::exp(-c) * (1.0 - (1.0 + c) * libm::exp(-c))).sqrt() / m;
            assert!(
                (rho - rho_expected).abs() < 5.0 * rho_sd,
                "{n}, {p}: fill {rho} vs {rho_expected}"
            );
            let mut state = 7;
            let false_positives = (0..queries)
                .filter(|_| f.contains(n + splitmix64(&mut state) % (u64::MAX / 2)))
                .count() as f64;
            let q = queries as f64;
            let conditional = libm::pow(rho, k);
            let sd = (q * conditional * (1.0 - conditional)).sqrt();
            assert!(
                (false_positives - q * conditional).abs() < 5.0 * sd,
                "{n}, {p}: {false_positives} vs {}",
                q * conditional
            );
            // The filter's own prediction, and the configured rate.
            let predicted = f.false_positive_rate();
            let spread = ((predicted * (1.0 - predicted) / q)
                + (k * libm::pow(rho_expected, k - 1.0) * rho_sd).powi(2))
            .sqrt();
            let measured = false_positives / q;
            assert!(
                (measured - predicted).abs() < 5.0 * spread,
                "{n}, {p}: measured {measured}, predicted {predicted}"
            );
            // Rounding m up and k to an integer moves the rate by a few percent at most.
            assert!((predicted / p - 1.0).abs() < 0.08, "{n}, {p}: {predicted}");
            report.push((n, p, measured, predicted));
        }
        eprintln!("bloom (n, p, measured, predicted): {report:?}");
    }

    #[test]
    fn overfilling_raises_the_rate_as_predicted() {
        // Sized for 1,000 keys, given 4,000: (1 - e^{-4 k n / m})^k, far above 1%.
        let mut f = filter(1_000, 0.01);
        for key in 0..4_000 {
            f.insert(key);
        }
        let predicted = f.false_positive_rate();
        assert!(predicted > 0.3, "{predicted}");
        let q = 200_000;
        let fp = (0..q).filter(|i| f.contains(1_000_000 + i)).count() as f64 / q as f64;
        let rho = f.ones() as f64 / f.bits() as f64;
        let conditional = rho.powi(f.hashes() as i32);
        let sd = (conditional * (1.0 - conditional) / q as f64).sqrt();
        assert!((fp - conditional).abs() < 5.0 * sd, "{fp} vs {conditional}");
        // Re-inserting a key sets no new bit.
        assert!(!f.insert(3));
        assert_eq!(f.inserted(), 4_001);
    }

    #[test]
    fn configs_validate_naming_the_field() {
        let c: BloomConfig = ron::from_str("(expected_keys: 1000)").expect("parses");
        assert_eq!(c.false_positive_rate, 0.01);
        assert!(ron::from_str::<BloomConfig>("(expected_keys: 1, rate: 0.1)").is_err());
        let field = |n, p| {
            BloomFilter::new(&BloomConfig {
                expected_keys: n,
                false_positive_rate: p,
            })
            .unwrap_err()
            .field()
            .map(str::to_string)
        };
        assert_eq!(field(0, 0.01).as_deref(), Some("expected_keys"));
        for bad in [0.0, 1.0, -0.5, f64::NAN] {
            assert_eq!(
                field(10, bad).as_deref(),
                Some("false_positive_rate"),
                "{bad}"
            );
        }
        assert_eq!(field(1_000_000_000, 0.01).as_deref(), Some("expected_keys"));
        assert_eq!(field(10, 1e-30).as_deref(), Some("false_positive_rate"));
        assert_eq!(
            BloomFilter::with_size(0, 3).unwrap_err().field(),
            Some("bits")
        );
        assert_eq!(
            BloomFilter::with_size(64, 0).unwrap_err().field(),
            Some("hashes")
        );
        // A one-bit filter says "maybe" to everything once anything is in.
        let mut one = BloomFilter::with_size(1, 1).expect("valid");
        assert!(!one.contains(5));
        one.insert(9);
        assert!(one.contains(5));
    }
}
