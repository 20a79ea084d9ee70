//! Which keys a workload asks for: popularity over the keys that exist, and a share of
//! requests for keys that do not.
//!
//! Existing keys are the ids `0..n` (a database's rows); key `i` is the `(i + 1)`-th most
//! popular. Missing keys — penetration traffic (C3): a scraper's guesses, deleted ids, an
//! attack — are drawn from a disjoint range, `MISSING_KEY_BASE + (0..missing_keys)`, so
//! [`Keys::exists`] is a comparison and a Bloom filter of `0..n` is their ground truth. With
//! the default `missing_keys` (2^48) missing ids practically never repeat, so negative caching
//! cannot help and only a Bloom filter can; a small `missing_keys` (the same few bad ids
//! hammered) is where negative caching works.
//!
//! Popularity, as scenarios write it:
//! - `Uniform(n: 100000)`: every key alike.
//! - `Zipf(n: 100000, s: 0.99)`: key rank `r` with probability `r^-s / H(n, s)`. Breslau et
//!   al. (INFOCOM 1999) measured `s` of 0.64–0.83 on web proxy traces; YCSB's default
//!   "zipfian" constant is 0.99. Drawn through [`Dist::Zipf`] and its `rand_distr` sampler.
//! - `HotSet(keys: 10, share: 0.9, rest: 100000)`: `share` of the traffic to `keys` hot keys
//!   (uniform among them), the rest uniform over `rest` others: the hot key of C4, bluntly.
//! - `Scan(n: 100000)`: keys `0, 1, ..., n - 1, 0, 1, ...` in order, drawing nothing: a
//!   warm-up job or a batch that touches every key once (the mass write of C2).

use rand::RngExt;
use serde::{Deserialize, Serialize};

use crate::dist::{Dist, Sampler};
use crate::engine::rng::{SimRng, unit_f64};
use crate::model::rpc::{ConfigError, Validate, compile};

/// The first missing key id: 2^63. Existing ids are below it, missing ids from it on (up to
/// `u64::MAX - 1`: `u64::MAX` is [`NO_KEY`](crate::model::rpc::NO_KEY), the key of keyless
/// requests).
pub const MISSING_KEY_BASE: u64 = 1 << 63;

/// Distinct missing ids by default: 2^48, so that even 10^7 missing requests repeat an id
/// with probability about 0.2 (the birthday bound `q^2 / 2N`).
pub const DEFAULT_MISSING_KEYS: u64 = 1 << 48;

/// How popularity is spread over the existing keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Popularity {
    Uniform {
        n: u64,
    },
    Zipf {
        n: u64,
        s: f64,
    },
    HotSet {
        /// Hot keys, ids `0..keys`.
        keys: u64,
        /// Their share of the traffic to existing keys, in `[0, 1]`.
        share: f64,
        /// The other keys, ids `keys..keys + rest`.
        rest: u64,
    },
    Scan {
        n: u64,
    },
}

/// A workload's keys: `keys: (popularity: Zipf(n: 100000, s: 0.99), missing: 0.05)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySpace {
    pub popularity: Popularity,
    /// The share of requests for keys that do not exist, in `[0, 1]`; default 0.
    #[serde(default)]
    pub missing: f64,
    /// How many distinct missing ids those requests pick from (uniformly), in `1..2^63`;
    /// default 2^48 (practically never the same twice).
    #[serde(default = "default_missing_keys")]
    pub missing_keys: u64,
}

fn default_missing_keys() -> u64 {
    DEFAULT_MISSING_KEYS
}

impl Popularity {
    /// The number of existing keys.
    pub fn existing(&self) -> u64 {
        match *self {
            Popularity::Uniform { n } | Popularity::Zipf { n, .. } | Popularity::Scan { n } => n,
            Popularity::HotSet { keys, rest, .. } => keys.saturating_add(rest),
        }
    }
}

impl Validate for KeySpace {
    fn validate(&self) -> Result<(), ConfigError> {
        let too_many = |field: &str, n: u64| ConfigError::Invalid {
            field: field.into(),
            reason: format!("{n} keys: existing ids must stay below 2^63"),
        };
        match self.popularity {
            Popularity::Uniform { n } => {
                if n == 0 {
                    return Err(ConfigError::Zero {
                        field: "popularity.Uniform.n".into(),
                    });
                }
                if n > MISSING_KEY_BASE {
                    return Err(too_many("popularity.Uniform.n", n));
                }
            }
            Popularity::Scan { n } => {
                if n == 0 {
                    return Err(ConfigError::Zero {
                        field: "popularity.Scan.n".into(),
                    });
                }
                if n > MISSING_KEY_BASE {
                    return Err(too_many("popularity.Scan.n", n));
                }
            }
            Popularity::Zipf { n, s } => {
                if n > MISSING_KEY_BASE {
                    return Err(too_many("popularity.Zipf.n", n));
                }
                compile("popularity.Zipf", &Dist::Zipf { n, s })?;
            }
            Popularity::HotSet { keys, share, rest } => {
                if !(share.is_finite() && (0.0..=1.0).contains(&share)) {
                    return Err(ConfigError::Invalid {
                        field: "popularity.HotSet.share".into(),
                        reason: format!("{share} must be a fraction in [0, 1]"),
                    });
                }
                if keys == 0 {
                    return Err(ConfigError::Zero {
                        field: "popularity.HotSet.keys".into(),
                    });
                }
                if rest == 0 && share < 1.0 {
                    return Err(ConfigError::Invalid {
                        field: "popularity.HotSet.rest".into(),
                        reason: format!(
                            "no other keys to send the other {} of the traffic to",
                            1.0 - share
                        ),
                    });
                }
                if keys.checked_add(rest).is_none_or(|t| t > MISSING_KEY_BASE) {
                    return Err(too_many(
                        "popularity.HotSet.rest",
                        keys.saturating_add(rest),
                    ));
                }
            }
        }
        if !(self.missing.is_finite() && (0.0..=1.0).contains(&self.missing)) {
            return Err(ConfigError::Invalid {
                field: "missing".into(),
                reason: format!("{} must be a fraction in [0, 1]", self.missing),
            });
        }
        if self.missing_keys == 0 {
            return Err(ConfigError::Zero {
                field: "missing_keys".into(),
            });
        }
        // Below 2^63, so that the largest missing id is `u64::MAX - 1`: `u64::MAX` is NO_KEY.
        if self.missing_keys >= MISSING_KEY_BASE {
            return Err(ConfigError::Invalid {
                field: "missing_keys".into(),
                reason: format!(
                    "{} must be below 2^63 (the missing ids stop short of u64::MAX, the key of \
                     keyless requests)",
                    self.missing_keys
                ),
            });
        }
        Ok(())
    }
}

/// A [`KeySpace`] ready to draw from.
#[derive(Clone, Debug)]
pub struct Keys {
    space: KeySpace,
    existing: u64,
    zipf: Option<Sampler>,
    /// With `Scan`: the next key.
    next: u64,
}

impl Keys {
    /// Errors name the field (`popularity.Zipf`, `missing`, ...).
    pub fn new(space: &KeySpace) -> Result<Keys, ConfigError> {
        space.validate()?;
        let zipf = match space.popularity {
            Popularity::Zipf { n, s } => Some(compile("popularity.Zipf", &Dist::Zipf { n, s })?),
            _ => None,
        };
        Ok(Keys {
            existing: space.popularity.existing(),
            space: space.clone(),
            zipf,
            next: 0,
        })
    }

    pub fn space(&self) -> &KeySpace {
        &self.space
    }

    /// The number of existing keys: their ids are `0..existing()`.
    pub fn existing(&self) -> u64 {
        self.existing
    }

    /// Whether `key` exists (is below [`existing`](Self::existing)).
    pub fn exists(&self, key: u64) -> bool {
        key < self.existing
    }

    /// One key: missing with probability `missing` (one `u64` draw decides, made only when
    /// `missing > 0`), else by popularity.
    pub fn draw(&mut self, rng: &mut SimRng) -> u64 {
        if self.space.missing > 0.0 && unit_f64(rng) < self.space.missing {
            let key = MISSING_KEY_BASE + rng.random_range(0..self.space.missing_keys);
            debug_assert!(!self.exists(key));
            return key;
        }
        let key = match (&self.space.popularity, &self.zipf) {
            (Popularity::Uniform { n }, _) => rng.random_range(0..*n),
            (Popularity::Zipf { n, .. }, Some(zipf)) => {
                // Ranks come back as integral floats in 1..=n; clamp so that a rounding
                // surprise cannot name a key that does not exist.
                zipf.sample_u64(rng).clamp(1, *n) - 1
            }
            // Unreachable: `new` compiles the sampler of every Zipf.
            (Popularity::Zipf { n, .. }, None) => rng.random_range(0..*n),
            (Popularity::Scan { n }, _) => {
                let key = self.next;
                self.next = (self.next + 1) % *n;
                key
            }
            (Popularity::HotSet { keys, share, rest }, _) => {
                if *rest == 0 || unit_f64(rng) < *share {
                    rng.random_range(0..*keys)
                } else {
                    keys + rng.random_range(0..*rest)
                }
            }
        };
        debug_assert!(self.exists(key), "{key} of {}", self.existing);
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::rng::stream;

    fn keys(popularity: Popularity, missing: f64) -> Keys {
        let space = KeySpace {
            popularity,
            missing,
            missing_keys: DEFAULT_MISSING_KEYS,
        };
        match Keys::new(&space) {
            Ok(k) => k,
            Err(e) => panic!("{space:?}: {e}"),
        }
    }

    /// Asserts `count` of `n` draws is within 5 binomial sd of probability `p`.
    fn assert_share(what: &str, count: u64, n: u64, p: f64) {
        let sd = (n as f64 * p * (1.0 - p)).sqrt();
        assert!(
            (count as f64 - n as f64 * p).abs() < 5.0 * sd.max(0.5),
            "{what}: {count} of {n}, expected {}",
            n as f64 * p
        );
    }

    #[test]
    fn zipf_ranks_have_their_shares() {
        // P(key r - 1) = r^-s / H(n, s): the first five ranks and the top 10% each within 5
        // binomial sd over 500,000 draws.
        let (n, s) = (1_000_u64, 1.1);
        let mut k = keys(Popularity::Zipf { n, s }, 0.0);
        let mut rng = stream(3, "keys");
        let draws = 500_000;
        let mut counts = vec![0_u64; n as usize];
        for _ in 0..draws {
            let key = k.draw(&mut rng);
            assert!(k.exists(key));
            counts[key as usize] += 1;
        }
        let weight = |r: u64| libm::pow(r as f64, -s);
        let h: f64 = (1..=n).rev().map(weight).sum();
        for r in 1..=5 {
            assert_share(
                &format!("rank {r}"),
                counts[r as usize - 1],
                draws,
                weight(r) / h,
            );
        }
        let top: u64 = counts[..100].iter().sum();
        let top_p: f64 = (1..=100).map(weight).sum::<f64>() / h;
        assert_share("top 100", top, draws, top_p);
        // The hottest key alone: about 18% of the traffic at s = 1.1 over 1,000 keys.
        assert!((weight(1) / h - 0.18).abs() < 0.01, "{}", weight(1) / h);
    }

    #[test]
    fn uniform_keys_pass_a_chi_square_test() {
        // 100 keys, 400,000 draws: sum (c - e)^2 / e is chi-square with 99 degrees of
        // freedom, mean 99 and sd sqrt(198) = 14.1; within 5 sd both ways (too even would be
        // as wrong as too uneven).
        let n = 100_u64;
        let mut k = keys(Popularity::Uniform { n }, 0.0);
        let mut rng = stream(4, "keys");
        let draws = 400_000_u64;
        let mut counts = vec![0_u64; n as usize];
        for _ in 0..draws {
            counts[k.draw(&mut rng) as usize] += 1;
        }
        let e = draws as f64 / n as f64;
        let chi2: f64 = counts.iter().map(|&c| (c as f64 - e).powi(2) / e).sum();
        let df = (n - 1) as f64;
        assert!((chi2 - df).abs() < 5.0 * (2.0 * df).sqrt(), "chi2 {chi2}");
    }

    #[test]
    fn a_hot_set_gets_its_share_and_missing_keys_theirs() {
        let mut k = keys(
            Popularity::HotSet {
                keys: 10,
                share: 0.9,
                rest: 990,
            },
            0.2,
        );
        assert_eq!(k.existing(), 1_000);
        let mut rng = stream(5, "keys");
        let draws = 500_000_u64;
        let (mut hot, mut missing, mut rest) = (0, 0, 0);
        let mut per_hot = [0_u64; 10];
        for _ in 0..draws {
            let key = k.draw(&mut rng);
            if key >= MISSING_KEY_BASE {
                assert!(!k.exists(key));
                assert!(key - MISSING_KEY_BASE < DEFAULT_MISSING_KEYS);
                missing += 1;
            } else if key < 10 {
                assert!(k.exists(key));
                hot += 1;
                per_hot[key as usize] += 1;
            } else {
                assert!(key < 1_000 && k.exists(key));
                rest += 1;
            }
        }
        assert_eq!(hot + missing + rest, draws);
        assert_share("missing", missing, draws, 0.2);
        assert_share("hot", hot, draws, 0.8 * 0.9);
        assert_share("rest", rest, draws, 0.8 * 0.1);
        for (i, &c) in per_hot.iter().enumerate() {
            assert_share(&format!("hot key {i}"), c, draws, 0.8 * 0.9 / 10.0);
        }
        assert!(!k.exists(1_000));
        assert!(k.exists(999));
    }

    #[test]
    fn missing_ids_repeat_only_as_often_as_asked() {
        // Few distinct missing ids (the same bad ids hammered): each is hit uniformly.
        let space = KeySpace {
            popularity: Popularity::Uniform { n: 50 },
            missing: 1.0,
            missing_keys: 4,
        };
        let mut k = Keys::new(&space).expect("valid");
        let mut rng = stream(6, "keys");
        let mut counts = [0_u64; 4];
        for _ in 0..40_000 {
            counts[(k.draw(&mut rng) - MISSING_KEY_BASE) as usize] += 1;
        }
        for (i, &c) in counts.iter().enumerate() {
            assert_share(&format!("missing id {i}"), c, 40_000, 0.25);
        }
        // With the default range, 100,000 missing draws are all distinct (the chance of a
        // repeat is about 100,000^2 / 2^49 = 2e-5).
        let mut k = keys(Popularity::Uniform { n: 50 }, 1.0);
        let mut seen: Vec<u64> = (0..100_000).map(|_| k.draw(&mut rng)).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 100_000);
    }

    #[test]
    fn draws_are_deterministic_and_missing_zero_draws_no_coin() {
        let mut k = keys(Popularity::Zipf { n: 10_000, s: 0.99 }, 0.05);
        let a: Vec<u64> = {
            let mut rng = stream(8, "keys");
            (0..1_000).map(|_| k.draw(&mut rng)).collect()
        };
        let b: Vec<u64> = {
            let mut rng = stream(8, "keys");
            (0..1_000).map(|_| k.draw(&mut rng)).collect()
        };
        assert_eq!(a, b);
        // Without missing traffic a uniform draw is exactly one `random_range`.
        let mut k = keys(Popularity::Uniform { n: 77 }, 0.0);
        let mut rng = stream(9, "keys");
        let mut same = stream(9, "keys");
        for _ in 0..100 {
            assert_eq!(k.draw(&mut rng), same.random_range(0..77_u64));
        }
    }

    #[test]
    fn key_spaces_parse_and_validate_naming_the_field() {
        let s: KeySpace =
            ron::from_str("(popularity: Zipf(n: 100000, s: 0.99), missing: 0.05)").expect("ok");
        assert_eq!(
            s.popularity,
            Popularity::Zipf {
                n: 100_000,
                s: 0.99
            }
        );
        assert_eq!((s.missing, s.missing_keys), (0.05, DEFAULT_MISSING_KEYS));
        let s: KeySpace =
            ron::from_str("(popularity: HotSet(keys: 3, share: 0.5, rest: 10), missing_keys: 7)")
                .expect("ok");
        assert_eq!(s.popularity.existing(), 13);
        assert_eq!(s.missing, 0.0);
        assert!(ron::from_str::<KeySpace>("(popularity: Uniform(n: 5), miss: 0.1)").is_err());
        assert!(ron::from_str::<KeySpace>("(popularity: Uniform(n: 5, s: 1.0))").is_err());

        let field = |popularity, missing, missing_keys| {
            Keys::new(&KeySpace {
                popularity,
                missing,
                missing_keys,
            })
            .unwrap_err()
            .field()
            .map(str::to_string)
        };
        let ok_pop = Popularity::Uniform { n: 10 };
        let m = DEFAULT_MISSING_KEYS;
        assert_eq!(
            field(Popularity::Uniform { n: 0 }, 0.0, m).as_deref(),
            Some("popularity.Uniform.n")
        );
        assert_eq!(
            field(Popularity::Uniform { n: u64::MAX }, 0.0, m).as_deref(),
            Some("popularity.Uniform.n")
        );
        assert_eq!(
            field(Popularity::Zipf { n: 0, s: 1.0 }, 0.0, m).as_deref(),
            Some("popularity.Zipf")
        );
        assert_eq!(
            field(Popularity::Zipf { n: 9, s: -1.0 }, 0.0, m).as_deref(),
            Some("popularity.Zipf")
        );
        let hot = |keys, share, rest| Popularity::HotSet { keys, share, rest };
        assert_eq!(
            field(hot(0, 0.5, 9), 0.0, m).as_deref(),
            Some("popularity.HotSet.keys")
        );
        assert_eq!(
            field(hot(1, 1.5, 9), 0.0, m).as_deref(),
            Some("popularity.HotSet.share")
        );
        assert_eq!(
            field(hot(1, 0.5, 0), 0.0, m).as_deref(),
            Some("popularity.HotSet.rest")
        );
        assert_eq!(
            field(hot(1 << 62, 0.5, 1 << 62 | 1), 0.0, m).as_deref(),
            Some("popularity.HotSet.rest")
        );
        assert_eq!(field(ok_pop.clone(), -0.1, m).as_deref(), Some("missing"));
        assert_eq!(
            field(ok_pop.clone(), f64::NAN, m).as_deref(),
            Some("missing")
        );
        assert_eq!(
            field(ok_pop.clone(), 0.1, 0).as_deref(),
            Some("missing_keys")
        );
        assert_eq!(
            field(ok_pop.clone(), 0.1, u64::MAX).as_deref(),
            Some("missing_keys")
        );
        assert_eq!(
            field(ok_pop.clone(), 0.1, MISSING_KEY_BASE).as_deref(),
            Some("missing_keys"),
            "2^63 missing ids would reach u64::MAX, the key of keyless requests"
        );
        let widest = KeySpace {
            popularity: ok_pop,
            missing: 1.0,
            missing_keys: MISSING_KEY_BASE - 1,
        };
        assert!(widest.validate().is_ok());
        // All hot and no rest is fine.
        let mut k = keys(hot(4, 1.0, 0), 0.0);
        let mut rng = stream(1, "k");
        assert!((0..100).all(|_| k.draw(&mut rng) < 4));
    }

    #[test]
    fn a_scan_visits_every_key_in_order_and_draws_nothing() {
        let mut k = keys(Popularity::Scan { n: 3 }, 0.0);
        let mut rng = stream(1, "scan");
        let mut untouched = stream(1, "scan");
        let got: Vec<u64> = (0..7).map(|_| k.draw(&mut rng)).collect();
        assert_eq!(got, [0, 1, 2, 0, 1, 2, 0]);
        assert_eq!(rng.random::<u64>(), untouched.random::<u64>());
        assert!(
            KeySpace {
                popularity: Popularity::Scan { n: 0 },
                missing: 0.0,
                missing_keys: DEFAULT_MISSING_KEYS,
            }
            .validate()
            .is_err()
        );
    }
}
