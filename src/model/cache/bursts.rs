//! Bursts of queries for one key, as a database sees them: the measure of a cache stampede
//! (C1) that a check can read without knowing when the key expired.
//!
//! A burst of key `k` is a maximal set of queries for `k` whose run intervals (start to end)
//! overlap into one connected stretch of time: it starts when a query for `k` starts while
//! none is running, and ends when the last running one ends. When a hot key expires without
//! protection, every request that misses while the refill is under way queries, each starting
//! before the earlier ones end, so the whole stampede is one burst of `1 + lambda * window`
//! queries; with single-flight each refill is a burst of exactly one; with XFetch the early
//! recomputes overlap the first and make one burst of about `exp(1 / beta)`; refreshes far
//! apart are bursts of their own. The size of each burst is what the database records
//! (`burst_queries`), so `burst_queries.max` is the worst stampede and `burst_queries.count`
//! the number of refills.
//!
//! Only keys `0..tracked` are followed (the hottest, by the key-space convention that key `i`
//! is the `(i + 1)`-th most popular; see [`KeySpace`](super::KeySpace)), in dense vectors: a
//! bound on the state, and no map to iterate.

/// The most keys one database follows one by one.
pub const MAX_TRACKED_KEYS: u32 = 1_024;

/// Running queries and the size of the current burst, per tracked key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyBursts {
    running: Vec<u32>,
    size: Vec<u32>,
}

impl KeyBursts {
    /// Follows keys `0..tracked` (at most [`MAX_TRACKED_KEYS`]; more are clamped to it).
    pub fn new(tracked: u32) -> KeyBursts {
        let n = tracked.min(MAX_TRACKED_KEYS) as usize;
        KeyBursts {
            running: vec![0; n],
            size: vec![0; n],
        }
    }

    /// The number of keys followed.
    pub fn tracked(&self) -> u32 {
        self.running.len() as u32
    }

    /// The index of `key` if it is followed.
    pub fn slot(&self, key: u64) -> Option<usize> {
        usize::try_from(key)
            .ok()
            .filter(|&k| k < self.running.len())
    }

    /// A query for `key` started; whether the key is followed.
    pub fn started(&mut self, key: u64) -> bool {
        let Some(k) = self.slot(key) else {
            return false;
        };
        debug_assert!(
            self.running[k] > 0 || self.size[k] == 0,
            "a burst ends empty"
        );
        self.running[k] = self.running[k].saturating_add(1);
        self.size[k] = self.size[k].saturating_add(1);
        debug_assert!(self.size[k] >= self.running[k]);
        true
    }

    /// A query for `key` ended (answered, whatever the answer): the size of the burst if this
    /// was its last running query. A query that was never started (an untracked key, or a
    /// start lost with a crash) ends nothing.
    pub fn finished(&mut self, key: u64) -> Option<u32> {
        let k = self.slot(key)?;
        if self.running[k] == 0 {
            return None;
        }
        self.running[k] -= 1;
        if self.running[k] > 0 {
            return None;
        }
        let size = std::mem::take(&mut self.size[k]);
        debug_assert!(size >= 1);
        Some(size)
    }

    /// Queries for `key` running now (0 for a key not followed).
    pub fn running(&self, key: u64) -> u32 {
        self.slot(key).map_or(0, |k| self.running[k])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_queries_make_one_burst_and_separate_ones_their_own() {
        let mut b = KeyBursts::new(3);
        assert_eq!(b.tracked(), 3);
        // Key 0: three queries chained by overlaps (1 and 3 never run together) are one burst.
        assert!(b.started(0));
        assert!(b.started(0));
        assert_eq!(b.finished(0), None, "the second still runs");
        assert!(b.started(0));
        assert_eq!(b.running(0), 2);
        assert_eq!(b.finished(0), None);
        assert_eq!(b.finished(0), Some(3));
        assert_eq!(b.running(0), 0);
        // Then two refills far apart: a burst of one each.
        assert!(b.started(0));
        assert_eq!(b.finished(0), Some(1));
        assert!(b.started(0));
        assert_eq!(b.finished(0), Some(1));
        // Keys are independent: a burst of key 1 does not keep key 2's open.
        assert!(b.started(1));
        assert!(b.started(2));
        assert_eq!(b.finished(2), Some(1));
        assert_eq!(b.finished(1), Some(1));
    }

    #[test]
    fn untracked_keys_and_unmatched_ends_change_nothing() {
        let mut b = KeyBursts::new(2);
        assert!(!b.started(2));
        assert!(!b.started(u64::MAX));
        assert_eq!(b.finished(2), None);
        assert_eq!(b.finished(0), None, "never started: lost with a crash");
        assert_eq!(b, KeyBursts::new(2));
        assert_eq!(KeyBursts::new(u32::MAX).tracked(), MAX_TRACKED_KEYS);
        assert_eq!(KeyBursts::new(0).tracked(), 0);
        assert!(!KeyBursts::new(0).started(0));
    }
}
