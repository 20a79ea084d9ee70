//! Consistent hashing with virtual nodes: which cache shard holds a key.
//!
//! Each shard puts `vnodes` points on a circle of `2^64` positions; a key belongs to the shard
//! of the first point at or after the key's position, going round (ketama's rule, as in
//! libketama, twemproxy and spymemcached). A shard's points depend on its name alone, so
//! adding a shard only takes over the arcs in front of its own points — about `1/(n+1)` of the
//! keys, all of them moving *to* it — and removing one hands its arcs to the next points, so
//! only its keys move. Many points per shard even out the loads: see [`Ring`] for the bound.
//!
//! Hashes, fixed and pinned by tests: shard `name`'s points are the first `vnodes` outputs of a
//! SplitMix64 generator seeded with FNV-1a-64 of the name's UTF-8 bytes (point `i` is
//! `mix64(fnv1a(name) + (i + 1) * GOLDEN_GAMMA)`), and a key's position is `mix64(key)`.
//! Ketama uses MD5 and 32-bit points; any well-mixed function gives the same statistics, and
//! 64-bit points make ties between shards practically impossible (a tie goes to the shard
//! whose name sorts first, so the order of the shard list never matters).

use super::{GOLDEN_GAMMA, mix64};
use crate::engine::rng::fnv1a;
use crate::model::rpc::ConfigError;

/// Virtual nodes per shard by default: 160, ketama's `KETAMA_POINTS_PER_SERVER` (40 MD5
/// digests of 4 points each, in libketama and twemproxy's `nc_ketama.c`). With `v` points a
/// shard's load has a relative standard deviation of about `1/sqrt(v)`, 7.9% at 160.
pub const DEFAULT_VNODES: u32 = 160;

/// At most this many points in one ring (shards x vnodes): 16 MiB of points, far beyond any
/// real cluster (1,000 shards x 10,000 vnodes).
pub const MAX_RING_POINTS: u64 = 10_000_000;

/// A consistent-hash ring over named shards.
///
/// Load spread: with `n` shards of `v` points each, the `N = n v` points are, for a well-mixed
/// hash, like independent uniform points on the circle, and the `N` arcs between them are
/// Dirichlet(1, ..., 1). A shard owns the `v` arcs ending at its points, so its share of
/// uniformly spread keys is Beta(v, (n - 1) v): mean `1/n`, relative standard deviation
/// `sqrt((n - 1) / (n v + 1))`, about `1/sqrt(v)`. The most loaded of `n` shards is then
/// around `1 + sqrt(2 ln n / v)` times the mean (1.17 for 10 shards of 160), and below
/// `1 + z sqrt((n - 1) / (n v + 1))` except with probability about `n (1 - Phi(z))`.
#[derive(Clone, Debug)]
pub struct Ring {
    names: Vec<String>,
    vnodes: u32,
    /// `(position, shard)`, sorted by position, ties by shard name.
    points: Vec<(u64, u32)>,
}

impl Ring {
    /// The ring of `shards` (the actors' or hosts' names, in any order), each with `vnodes`
    /// points. Errors name the field: no shards, a repeated name (two shards with the same
    /// points), `vnodes` of 0, or more than [`MAX_RING_POINTS`] points.
    pub fn new(shards: &[String], vnodes: u32) -> Result<Ring, ConfigError> {
        if shards.is_empty() {
            return Err(ConfigError::Empty {
                field: "shards".into(),
            });
        }
        for (i, name) in shards.iter().enumerate() {
            if let Some(j) = shards[..i].iter().position(|other| other == name) {
                return Err(ConfigError::Invalid {
                    field: format!("shards[{i}]"),
                    reason: format!(
                        "`{name}` is already shards[{j}]: each shard needs its own name"
                    ),
                });
            }
        }
        if vnodes == 0 {
            return Err(ConfigError::Zero {
                field: "vnodes".into(),
            });
        }
        let total = shards.len() as u64 * u64::from(vnodes);
        if total > MAX_RING_POINTS {
            return Err(ConfigError::Invalid {
                field: "vnodes".into(),
                reason: format!(
                    "{} shards x {vnodes} vnodes is {total} points, more than {MAX_RING_POINTS}",
                    shards.len()
                ),
            });
        }
        let shard_count = u32::try_from(shards.len()).map_err(|_| ConfigError::Invalid {
            field: "shards".into(),
            reason: "too many shards".into(),
        })?;
        let mut points = Vec::with_capacity(total as usize);
        for (shard, name) in (0..shard_count).zip(shards) {
            let seed = fnv1a(name.as_bytes());
            for i in 0..u64::from(vnodes) {
                points.push((point(seed, i), shard));
            }
        }
        // Ties (two shards drawing the same 64-bit point) go to the name that sorts first, so
        // the ring is the same whatever order the shards were listed in.
        points.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| shards[a.1 as usize].cmp(&shards[b.1 as usize]))
        });
        debug_assert_eq!(points.len() as u64, total);
        debug_assert!(points.windows(2).all(|w| w[0].0 <= w[1].0));
        Ok(Ring {
            names: shards.to_vec(),
            vnodes,
            points,
        })
    }

    /// The shard names, in the order given: [`shard_of`](Self::shard_of) indexes them.
    pub fn shards(&self) -> &[String] {
        &self.names
    }

    /// Shards on the ring (at least one).
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Always false: a ring has at least one shard.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn vnodes(&self) -> u32 {
        self.vnodes
    }

    /// Where `key` sits on the circle: `mix64(key)`.
    pub fn position(key: u64) -> u64 {
        mix64(key)
    }

    /// The index (into [`shards`](Self::shards)) of the shard that holds `key`: the owner of
    /// the first point at or after the key's position, wrapping round to the first point.
    pub fn shard_of(&self, key: u64) -> usize {
        let at = self.successor(Ring::position(key));
        let shard = self.points[at].1 as usize;
        debug_assert!(shard < self.names.len());
        shard
    }

    /// The first `count` distinct shards met going round from `key`'s position, the first
    /// being [`shard_of`](Self::shard_of): where to put copies of a hot key (or, as Dynamo's
    /// preference list, replicas). Fewer if the ring has fewer shards.
    pub fn replicas(&self, key: u64, count: usize) -> Vec<usize> {
        let want = count.min(self.names.len());
        let mut found: Vec<usize> = Vec::with_capacity(want);
        let start = self.successor(Ring::position(key));
        // A limit on the walk: every shard owns `vnodes` points, so one lap finds them all.
        for step in 0..self.points.len() {
            if found.len() == want {
                break;
            }
            let shard = self.points[(start + step) % self.points.len()].1 as usize;
            if !found.contains(&shard) {
                found.push(shard);
            }
        }
        debug_assert_eq!(found.len(), want);
        debug_assert!(want == 0 || found[0] == self.shard_of(key));
        found
    }

    /// Each shard's exact share of the circle (and so of uniformly spread keys), indexed like
    /// [`shards`](Self::shards); the shares add up to 1.
    pub fn shares(&self) -> Vec<f64> {
        let mut owned = vec![0_u128; self.names.len()];
        let circle = 1_u128 << 64;
        for (i, &(pos, shard)) in self.points.iter().enumerate() {
            // The arc (previous point, this point] belongs to this point; the first point's
            // arc wraps round from the last one.
            let arc = match i.checked_sub(1) {
                Some(p) => u128::from(pos - self.points[p].0),
                None => {
                    let last = self.points[self.points.len() - 1].0;
                    circle - u128::from(last) + u128::from(pos)
                }
            };
            owned[shard as usize] += arc;
        }
        // A single point owns the whole circle (its arc from itself round to itself).
        debug_assert_eq!(owned.iter().sum::<u128>(), circle);
        owned.iter().map(|&a| a as f64 / circle as f64).collect()
    }

    /// The index of the first point at or after `pos`, wrapping to 0.
    fn successor(&self, pos: u64) -> usize {
        let at = self.points.partition_point(|&(p, _)| p < pos);
        if at == self.points.len() { 0 } else { at }
    }
}

/// Point `i` of the shard whose name hashes to `seed`: output `i` of SplitMix64 from `seed`.
fn point(seed: u64, i: u64) -> u64 {
    mix64(seed.wrapping_add(GOLDEN_GAMMA.wrapping_mul(i + 1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::rng::splitmix64;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("cache-{i}")).collect()
    }

    fn ring(n: usize, vnodes: u32) -> Ring {
        match Ring::new(&names(n), vnodes) {
            Ok(r) => r,
            Err(e) => panic!("{n} x {vnodes}: {e}"),
        }
    }

    #[test]
    fn points_are_splitmix64_from_the_fnv_of_the_name() {
        let r = ring(3, 4);
        assert_eq!(r.points.len(), 12);
        assert_eq!(r.vnodes(), 4);
        for (shard, name) in r.shards().iter().enumerate() {
            let mut state = fnv1a(name.as_bytes());
            for _ in 0..4 {
                let p = splitmix64(&mut state);
                assert!(
                    r.points.contains(&(p, shard as u32)),
                    "{name}: point {p:#x}"
                );
            }
        }
        // Ownership follows the rule: the first point at or after the key's position.
        for key in 0..1_000 {
            let pos = Ring::position(key);
            let owner = r
                .points
                .iter()
                .find(|&&(p, _)| p >= pos)
                .unwrap_or(&r.points[0])
                .1;
            assert_eq!(r.shard_of(key), owner as usize, "key {key}");
        }
        // A key exactly on a point belongs to that point; one past the last point wraps.
        let (p, s) = r.points[5];
        assert_eq!(r.points[r.successor(p)].1, s);
        assert_eq!(r.successor(r.points[11].0.wrapping_add(1)), 0);
    }

    #[test]
    fn the_ring_does_not_depend_on_the_order_of_the_shards() {
        let a = ring(5, 160);
        let mut reversed = names(5);
        reversed.reverse();
        let b = Ring::new(&reversed, 160).expect("valid");
        for key in 0..20_000 {
            assert_eq!(a.shards()[a.shard_of(key)], b.shards()[b.shard_of(key)]);
        }
    }

    #[test]
    fn bad_rings_are_refused_naming_the_field() {
        let field = |shards: &[String], v| {
            Ring::new(shards, v)
                .unwrap_err()
                .field()
                .map(str::to_string)
        };
        assert_eq!(field(&[], 160).as_deref(), Some("shards"));
        let twice = vec!["a".to_string(), "b".into(), "a".into()];
        assert_eq!(field(&twice, 160).as_deref(), Some("shards[2]"));
        assert_eq!(field(&names(2), 0).as_deref(), Some("vnodes"));
        assert_eq!(field(&names(1_001), 10_000).as_deref(), Some("vnodes"));
        assert!(Ring::new(&names(1_000), 10_000).is_ok());
        // One shard owns everything, with any number of points.
        let one = ring(1, 1);
        assert_eq!(one.shares(), vec![1.0]);
        assert!((0..100).all(|k| one.shard_of(k) == 0));
        assert_eq!(one.replicas(3, 5), vec![0]);
        assert!(!one.is_empty());
        assert_eq!(one.len(), 1);
    }

    /// Keys 0..count (consecutive ids, as a database hands them out) on `r`.
    fn owners(r: &Ring, count: u64) -> Vec<usize> {
        (0..count).map(|k| r.shard_of(k)).collect()
    }

    #[test]
    fn adding_a_shard_moves_only_its_share_and_only_to_it() {
        let keys = 200_000_u64;
        for (n, vnodes) in [(4, 160), (9, 160), (20, 100), (3, 1_000)] {
            let before = ring(n, vnodes);
            let after = ring(n + 1, vnodes);
            let (old, new) = (owners(&before, keys), owners(&after, keys));
            let moved: Vec<u64> = (0..keys)
                .filter(|&k| old[k as usize] != new[k as usize])
                .collect();
            // Exact: every moved key moved to the new shard (index n), and none of the new
            // shard's keys stayed where they were.
            assert!(
                moved.iter().all(|&k| new[k as usize] == n),
                "{n}: a key moved elsewhere"
            );
            let to_new = new.iter().filter(|&&s| s == n).count();
            assert_eq!(moved.len(), to_new, "{n}");
            // The moved fraction is the new shard's share, up to the binomial noise of
            // sampling `keys` keys: 5 standard deviations.
            let share = after.shares()[n];
            let frac = moved.len() as f64 / keys as f64;
            let sd = (share * (1.0 - share) / keys as f64).sqrt();
            assert!(
                (frac - share).abs() < 5.0 * sd,
                "{n}: moved {frac}, share {share}"
            );
            // And that share is about 1/(n+1): Beta(v, n v), whose relative sd is
            // sqrt(n / ((n+1) v + 1)); within 5 of them.
            let m = n as f64 + 1.0;
            let rel_sd = ((m - 1.0) / (m * vnodes as f64 + 1.0)).sqrt();
            assert!(
                (share * m - 1.0).abs() < 5.0 * rel_sd,
                "{n} x {vnodes}: new shard's share {share} vs 1/{m}"
            );
        }
    }

    #[test]
    fn removing_a_shard_moves_only_its_keys() {
        let keys = 100_000_u64;
        let all = names(10);
        let full = Ring::new(&all, 160).expect("valid");
        let old = owners(&full, keys);
        for gone in [0, 4, 9] {
            let rest: Vec<String> = all.iter().filter(|s| **s != all[gone]).cloned().collect();
            let smaller = Ring::new(&rest, 160).expect("valid");
            let mut moved = 0;
            for k in 0..keys {
                let was = &all[old[k as usize]];
                let now = &smaller.shards()[smaller.shard_of(k)];
                if old[k as usize] == gone {
                    assert_ne!(now, was);
                    moved += 1;
                } else {
                    assert_eq!(now, was, "key {k} of a remaining shard moved");
                }
            }
            let expected = old.iter().filter(|&&s| s == gone).count();
            assert_eq!(moved, expected);
            assert!(moved > 0);
        }
    }

    /// The Chernoff bound on the most loaded of `n` shards of `v` points: a shard's load over
    /// the mean is about Gamma(v)/v, and `P(Gamma(v) >= (1 + e) v) <= exp(-v (e - ln(1 + e)))`,
    /// so with probability at least `1 - delta` (union over the shards) every shard is below
    /// `1 + e` times the mean, for the `e` that makes `n exp(-v (e - ln(1 + e))) = delta`.
    fn max_load_bound(n: usize, v: u32, delta: f64) -> f64 {
        let need = libm::log(n as f64 / delta) / f64::from(v);
        let (mut lo, mut hi) = (0.0_f64, 1_000.0_f64);
        for _ in 0..200 {
            let e = (lo + hi) / 2.0;
            if e - libm::log1p(e) >= need {
                hi = e;
            } else {
                lo = e;
            }
        }
        1.0 + hi
    }

    #[test]
    fn loads_spread_as_beta_with_a_max_over_mean_bound_from_the_vnodes() {
        // For each (n, v), the shares' spread across shards matches the Beta(v, (n-1) v)
        // model: the sum of squared deviations from 1/n has mean n sigma^2, and its ratio to
        // that has sd about sqrt((kappa - 1) / n), kappa = 3 + 6 / v the kurtosis of Gamma(v).
        // And the most loaded shard stays below the Chernoff bound at delta = 1e-3.
        let mut report = Vec::new();
        for (n, vnodes) in [
            (100, 1),
            (100, 10),
            (100, 160),
            (10, 160),
            (50, 1_000),
            (30, 40),
        ] {
            let r = ring(n, vnodes);
            let shares = r.shares();
            assert_eq!(shares.len(), n);
            assert!((shares.iter().sum::<f64>() - 1.0).abs() < 1e-9);
            let nf = n as f64;
            let mean = 1.0 / nf;
            let rel_sd = ((nf - 1.0) / (nf * f64::from(vnodes) + 1.0)).sqrt();
            let sigma = mean * rel_sd;
            let ss: f64 = shares.iter().map(|s| (s - mean).powi(2)).sum();
            let ratio = ss / (nf * sigma * sigma);
            let ratio_sd = ((2.0 + 6.0 / f64::from(vnodes)) / nf).sqrt();
            assert!(
                (ratio - 1.0).abs() < 5.0 * ratio_sd,
                "{n} x {vnodes}: variance ratio {ratio} (sd {ratio_sd})"
            );
            let max_over_mean = shares.iter().fold(0.0_f64, |a, &b| a.max(b)) / mean;
            let bound = max_load_bound(n, vnodes, 1e-3);
            assert!(
                max_over_mean < bound,
                "{n} x {vnodes}: max/mean {max_over_mean} > {bound}"
            );
            report.push((n, vnodes, max_over_mean, bound));
        }
        // The default: 10 shards of 160 points keep every shard within 38% of the mean.
        let (_, _, default_max, default_bound) = report[3];
        assert!(default_bound < 1.39, "{report:?}");
        assert!(default_max < default_bound, "{report:?}");
        // One point a shard is far worse than 160: the 1/sqrt(v) law.
        assert!(report[0].2 > 2.0, "{report:?}");
        assert!(report[2].2 < 1.4, "{report:?}");
        eprintln!("ring max/mean vs bound: {report:?}");
    }

    #[test]
    fn uniform_keys_follow_the_shares() {
        let r = ring(8, 160);
        let shares = r.shares();
        let keys = 400_000_u64;
        let mut counts = [0_u64; 8];
        // Random-looking ids as well as consecutive ones: both must follow the arcs.
        for k in 0..keys {
            counts[r.shard_of(k)] += 1;
        }
        let mut state = 99;
        for _ in 0..keys {
            counts[r.shard_of(splitmix64(&mut state))] += 1;
        }
        let total = 2 * keys;
        for (s, (&c, &p)) in counts.iter().zip(&shares).enumerate() {
            let sd = (total as f64 * p * (1.0 - p)).sqrt();
            assert!(
                (c as f64 - total as f64 * p).abs() < 5.0 * sd,
                "shard {s}: {c} vs {}",
                total as f64 * p
            );
        }
    }

    #[test]
    fn replicas_are_the_next_distinct_shards() {
        let r = ring(6, 160);
        for key in 0..2_000 {
            let reps = r.replicas(key, 3);
            assert_eq!(reps.len(), 3);
            assert_eq!(reps[0], r.shard_of(key));
            assert_ne!(reps[0], reps[1]);
            assert_ne!(reps[1], reps[2]);
            assert_ne!(reps[0], reps[2]);
            // The second replica is where the key would go if its shard left the ring.
            let rest: Vec<String> = r
                .shards()
                .iter()
                .enumerate()
                .filter(|&(i, _)| i != reps[0])
                .map(|(_, s)| s.clone())
                .collect();
            if key < 50 {
                let without = Ring::new(&rest, 160).expect("valid");
                assert_eq!(without.shards()[without.shard_of(key)], r.shards()[reps[1]]);
            }
        }
        assert_eq!(r.replicas(1, 10).len(), 6);
        assert!(r.replicas(1, 0).is_empty());
    }
}
