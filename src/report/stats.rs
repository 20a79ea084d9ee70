//! The statistics reports give about many seeds: a share with its Wilson interval, a mean with
//! its Student t interval, a median with its distribution-free interval, and the difference
//! between two variants' medians with a bootstrap interval — the effect size of a fix. Seeds
//! are few (a handful to a few hundred), shares are often 0 or 1 and values are anything but
//! normal (a collapsed goodput is exactly 0 on every seed), so each estimate is chosen to stay
//! honest there. Everything is a pure function of its input: the bootstrap draws from a ChaCha
//! stream with a fixed key, so a report is the same byte for byte on every run and every
//! machine, and merged shards give the figures of one run.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

/// A statistic of a set of seeds, with its 95% confidence interval when the seeds allow one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    pub value: f64,
    /// `(low, high)`, containing `value`; None when one sample says nothing about spread.
    pub interval: Option<(f64, f64)>,
    /// How many samples (seeds) it is from.
    pub samples: u32,
}

/// z for a two-sided 95% interval: the 0.975 quantile of the standard normal.
const Z_975: f64 = 1.959_963_984_540_054;

/// The share of `trials` that were `successes`, with the 95% Wilson score interval. Wilson
/// rather than the normal approximation because sweeps run few seeds and shares are often
/// 0 or 1, where the normal interval collapses to a point and claims certainty; Wilson's
/// stays inside [0, 1] and keeps a width that shrinks as seeds are added. None without
/// trials.
pub fn wilson_95(successes: u32, trials: u32) -> Option<Estimate> {
    assert!(
        successes <= trials,
        "{successes} successes in {trials} trials"
    );
    if trials == 0 {
        return None;
    }
    let n = f64::from(trials);
    let p = f64::from(successes) / n;
    let z2 = Z_975 * Z_975;
    let scale = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / scale;
    // `sqrt` is correctly rounded by IEEE 754, so this is the same on every platform.
    let half = Z_975 / scale * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    // Rounding can leave an end a hair past the share (at 0 or 1) or past [0, 1].
    let lo = (centre - half).clamp(0.0, 1.0).min(p);
    let hi = (centre + half).clamp(0.0, 1.0).max(p);
    assert!(lo <= p && p <= hi, "{lo} <= {p} <= {hi}");
    Some(Estimate {
        value: p,
        interval: Some((lo, hi)),
        samples: trials,
    })
}

/// The mean of `samples` with its 95% Student t interval (the seeds are a small sample of
/// the runs the scenario could have, and their spread is estimated from themselves). When
/// every sample is non-negative the interval is cut at 0: a count or a latency cannot have a
/// negative mean, however few the seeds. None without samples; no interval from one.
pub fn mean_95(samples: &[f64]) -> Option<Estimate> {
    if samples.is_empty() {
        return None;
    }
    assert!(
        samples.iter().all(|x| x.is_finite()),
        "samples are finite: {samples:?}"
    );
    let n = samples.len() as f64;
    let mean = samples.iter().sum::<f64>() / n;
    let count = u32::try_from(samples.len()).unwrap_or(u32::MAX);
    if samples.len() < 2 {
        return Some(Estimate {
            value: mean,
            interval: None,
            samples: count,
        });
    }
    let variance = samples.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
    let half = t_975(count - 1) * (variance / n).sqrt();
    let mut lo = mean - half;
    if samples.iter().all(|&x| x >= 0.0) {
        lo = lo.max(0.0);
    }
    // With identical samples the half width is zero and the interval the mean itself.
    let (lo, hi) = (lo.min(mean), (mean + half).max(mean));
    Some(Estimate {
        value: mean,
        interval: Some((lo, hi)),
        samples: count,
    })
}

/// The 0.975 quantile of Student's t with `df` degrees of freedom (df >= 1): tabulated to
/// 30, then the Cornish-Fisher expansion around the normal quantile, which is within 3e-8 of
/// the exact value from 31 on.
fn t_975(df: u32) -> f64 {
    const TABLE: [f64; 30] = [
        12.706_204_736,
        4.302_652_730,
        3.182_446_305,
        2.776_445_105,
        2.570_581_836,
        2.446_911_851,
        2.364_624_252,
        2.306_004_135,
        2.262_157_163,
        2.228_138_852,
        2.200_985_160,
        2.178_812_830,
        2.160_368_656,
        2.144_786_688,
        2.131_449_546,
        2.119_905_299,
        2.109_815_578,
        2.100_922_040,
        2.093_024_054,
        2.085_963_447,
        2.079_613_845,
        2.073_873_068,
        2.068_657_610,
        2.063_898_562,
        2.059_538_553,
        2.055_529_439,
        2.051_830_516,
        2.048_407_142,
        2.045_229_642,
        2.042_272_456,
    ];
    assert!(df >= 1, "a t quantile needs a degree of freedom");
    if let Some(&t) = TABLE.get(df as usize - 1) {
        return t;
    }
    let (z, v) = (Z_975, f64::from(df));
    let z3 = z * z * z;
    let z5 = z3 * z * z;
    let z7 = z5 * z * z;
    let z9 = z7 * z * z;
    z + (z3 + z) / (4.0 * v)
        + (5.0 * z5 + 16.0 * z3 + 3.0 * z) / (96.0 * v * v)
        + (3.0 * z7 + 19.0 * z5 + 17.0 * z3 - 15.0 * z) / (384.0 * v * v * v)
        + (79.0 * z9 + 776.0 * z7 + 1482.0 * z5 - 1920.0 * z3 - 945.0 * z)
            / (92_160.0 * v * v * v * v)
}

/// The median of `samples` (sorted or not) with a 95% distribution-free interval from the
/// order statistics: the ranks `j`, `k` around `n/2` such that the number of samples below the
/// true median is binomial(n, 1/2), by its normal approximation. Below 6 samples the interval
/// is the whole range (no narrower distribution-free interval reaches 95%). None without
/// samples.
pub fn median_95(samples: &[f64]) -> Option<Estimate> {
    if samples.is_empty() {
        return None;
    }
    let mut xs = samples.to_vec();
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    let median = if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    };
    let count = u32::try_from(n).unwrap_or(u32::MAX);
    if n == 1 {
        return Some(Estimate {
            value: median,
            interval: None,
            samples: count,
        });
    }
    let (lo, hi) = if n < 6 {
        (xs[0], xs[n - 1])
    } else {
        let half = Z_975 * (n as f64).sqrt() / 2.0;
        // 1-based ranks: floor(n/2 - half) and ceil(n/2 + half) + 1, kept inside 1..=n.
        let j = libm::floor(n as f64 / 2.0 - half).max(1.0) as usize;
        let k = (libm::ceil(n as f64 / 2.0 + half) as usize + 1).min(n);
        (xs[j - 1], xs[k - 1])
    };
    Some(Estimate {
        value: median,
        interval: Some((lo.min(median), hi.max(median))),
        samples: count,
    })
}

/// Resamples of the bootstrap: enough for the 2.5% and 97.5% percentiles to be stable to a
/// few per cent of the interval's width.
const BOOTSTRAP_RESAMPLES: usize = 2000;

/// The key of the bootstrap's stream: fixed, so a report's intervals never change between
/// runs (any key would do; this one spells "effect").
const BOOTSTRAP_KEY: u64 = 0x0000_e0ff_ec70;

/// `median(b) - median(a)`, the effect of variant b over variant a on the seeds each ran,
/// with a 95% percentile-bootstrap interval (each sample resampled with replacement,
/// independently). None when either side has no samples.
pub fn median_difference_95(a: &[f64], b: &[f64]) -> Option<Estimate> {
    let (ma, mb) = (median_95(a)?, median_95(b)?);
    let diff = mb.value - ma.value;
    let samples = ma.samples.min(mb.samples);
    if a.len() < 2 || b.len() < 2 {
        return Some(Estimate {
            value: diff,
            interval: None,
            samples,
        });
    }
    let mut rng = ChaCha8Rng::seed_from_u64(BOOTSTRAP_KEY);
    let mut scratch_a = vec![0.0; a.len()];
    let mut scratch_b = vec![0.0; b.len()];
    let mut diffs: Vec<f64> = (0..BOOTSTRAP_RESAMPLES)
        .map(|_| {
            for x in scratch_a.iter_mut() {
                *x = a[rng.random_range(0..a.len())];
            }
            for x in scratch_b.iter_mut() {
                *x = b[rng.random_range(0..b.len())];
            }
            let m = |xs: &[f64]| median_95(xs).map_or(f64::NAN, |e| e.value);
            m(&scratch_b) - m(&scratch_a)
        })
        .collect();
    diffs.sort_by(f64::total_cmp);
    let at = |q: f64| diffs[((BOOTSTRAP_RESAMPLES - 1) as f64 * q).round() as usize];
    Some(Estimate {
        value: diff,
        interval: Some((at(0.025).min(diff), at(0.975).max(diff))),
        samples,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tolerance: f64) -> bool {
        (a - b).abs() <= tolerance
    }

    fn interval(e: Option<Estimate>) -> (f64, f64) {
        match e.and_then(|e| e.interval) {
            Some(i) => i,
            None => panic!("no interval in {e:?}"),
        }
    }

    #[test]
    fn wilson_intervals_match_the_textbook_and_stay_in_range() {
        // Reference values computed apart from this code, from the closed form.
        let (lo, hi) = interval(wilson_95(0, 10));
        assert_eq!(lo, 0.0);
        assert!(close(hi, 0.277_54, 1e-5), "{hi}");
        let (lo, hi) = interval(wilson_95(5, 10));
        assert!(close(lo, 0.236_59, 1e-5), "{lo}");
        assert!(close(hi, 0.763_41, 1e-5), "{hi}");
        let all = wilson_95(8, 8).expect("trials");
        assert_eq!(all.value, 1.0);
        assert_eq!(interval(Some(all)).1, 1.0);
        assert!(close(interval(Some(all)).0, 0.675_6, 1e-4));
        assert_eq!(all.samples, 8);
        // More seeds, a narrower interval around the same share.
        let width = |h, n| {
            let (lo, hi) = interval(wilson_95(h, n));
            hi - lo
        };
        assert!(width(10, 20) < width(5, 10));
        assert!(width(0, 20) < width(0, 5));
        assert_eq!(wilson_95(0, 0), None);
    }

    #[test]
    fn t_intervals_of_the_mean() {
        // Mean 3, sd 1.5811, se 0.7071, t(4) = 2.7764: 3 ± 1.9632.
        let e = mean_95(&[1.0, 2.0, 3.0, 4.0, 5.0]).expect("samples");
        assert_eq!(e.value, 3.0);
        assert_eq!(e.samples, 5);
        let (lo, hi) = interval(Some(e));
        assert!(close(lo, 1.036_8, 1e-4), "{lo}");
        assert!(close(hi, 4.963_2, 1e-4), "{hi}");
        // Non-negative samples: the interval stops at zero.
        let (lo, hi) = interval(mean_95(&[0.0, 0.0, 9.0]));
        assert_eq!(lo, 0.0);
        assert!(hi > 9.0, "{hi}");
        // Negative samples: it does not.
        assert!(interval(mean_95(&[-1.0, 0.0, 9.0])).0 < -1.0);
        // Identical samples: no spread, the interval is the mean.
        assert_eq!(interval(mean_95(&[4.0, 4.0])), (4.0, 4.0));
        // One sample says nothing about spread; none, nothing at all.
        let one = mean_95(&[7.0]).expect("a sample");
        assert_eq!((one.value, one.interval), (7.0, None));
        assert_eq!(mean_95(&[]), None);
    }

    #[test]
    fn t_quantiles_continue_past_the_table() {
        assert_eq!(t_975(1), 12.706_204_736);
        assert_eq!(t_975(30), 2.042_272_456);
        // Exact values (numerical inversion of the t distribution) for df 31, 60 and 1000.
        assert!(close(t_975(31), 2.039_513_446, 1e-7), "{}", t_975(31));
        assert!(close(t_975(60), 2.000_297_822, 1e-8));
        assert!(close(t_975(1000), 1.962_339_081, 1e-8));
        assert!(t_975(31) < t_975(30), "decreasing across the seam");
        assert!(t_975(u32::MAX) > Z_975);
    }

    #[test]
    fn median_intervals_from_order_statistics() {
        let e = median_95(&[5.0, 1.0, 3.0]).expect("samples");
        assert_eq!(e.value, 3.0);
        assert_eq!(interval(Some(e)), (1.0, 5.0), "below 6 samples, the range");
        assert_eq!(median_95(&[1.0, 2.0, 3.0, 4.0]).unwrap().value, 2.5);
        // n = 20: half = 1.96 * sqrt(20) / 2 = 4.38, ranks 5 and 16.
        let xs: Vec<f64> = (1..=20).map(f64::from).collect();
        let e = median_95(&xs).unwrap();
        assert_eq!(e.value, 10.5);
        assert_eq!(interval(Some(e)), (5.0, 16.0));
        // The binomial coverage of ranks 5..16 of 20 is 98.8% (>= 95%).
        let one = median_95(&[7.0]).unwrap();
        assert_eq!((one.value, one.interval), (7.0, None));
        assert_eq!(median_95(&[]), None);
    }

    #[test]
    fn the_bootstrap_effect_is_deterministic_and_brackets_the_difference() {
        let a: Vec<f64> = (0..20).map(|i| f64::from(i % 5)).collect();
        let b: Vec<f64> = (0..20).map(|i| 100.0 + f64::from(i % 7)).collect();
        let e = median_difference_95(&a, &b).unwrap();
        assert_eq!(e.value, 103.0 - 2.0);
        let (lo, hi) = interval(Some(e));
        assert!(lo <= e.value && e.value <= hi);
        assert!(lo > 95.0 && hi < 108.0, "{lo} {hi}");
        assert_eq!(median_difference_95(&a, &b), Some(e), "the same every time");
        // No difference: an interval around 0.
        let same = median_difference_95(&a, &a).unwrap();
        assert_eq!(same.value, 0.0);
        let (lo, hi) = interval(Some(same));
        assert!(lo <= 0.0 && hi >= 0.0);
        // Constant samples: no spread at all.
        let zeros = [0.0; 10];
        let e = median_difference_95(&zeros, &[5.0; 10]).unwrap();
        assert_eq!(interval(Some(e)), (5.0, 5.0));
        assert_eq!(median_difference_95(&[], &[1.0]), None);
    }
}
