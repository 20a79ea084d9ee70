//! One cache shard's key/value store: entries with a TTL, a size and the cost of their last
//! recompute, bounded in entries and bytes, with exact LRU, Redis-style sampled LRU, or no
//! eviction at all.
//!
//! What it models, and from where:
//! - **Eviction.** `Lru` is exact LRU (memcached's per-slab-class LRU before its segmented
//!   HOT/WARM/COLD rework; one class here, so sizes do not partition memory). `SampledLru`
//!   is Redis's approximated LRU as of 2.8 (`maxmemory-policy allkeys-lru`): sample
//!   `maxmemory-samples` keys (default 5) at random, evict the one idle longest. Redis 3.0 adds
//!   a pool of 16 candidates kept across evictions, which brings it closer to exact LRU; the
//!   pool is not modelled, so this is the rougher approximation. `None` never evicts: without
//!   limits the store grows without bound (the leak of C5, measured by [`Store::bytes`]); with
//!   limits it refuses writes that would exceed them, as Redis's `noeviction` answers "OOM
//!   command not allowed".
//! - **Expiry**, lazy *and* active, as Redis does both: a lookup never returns an expired
//!   entry as a hit, and removes one it finds past its stale window; [`Store::purge_expired`]
//!   is the active sweep an actor runs from a timer. Redis's sweep samples 20 keys with a TTL
//!   ten times a second and repeats while more than a quarter of them had expired; this one
//!   removes *every* entry that is due, earliest first, up to a bound per call, from an index
//!   ordered by deadline: memory never holds more expired entries than the sweep's timing and
//!   bound allow, which is an upper bound on how well Redis's does.
//! - **Stale-while-revalidate.** With `stale_for > 0` an expired entry stays for that long
//!   and is answered as [`Lookup::Stale`] (HTTP's `stale-while-revalidate`, RFC 5861), so
//!   the caller can serve it while one refresh runs.
//!
//! An entry set at `t` with TTL `d` is fresh for `now` in `[t, t + d)`, stale in
//! `[t + d, t + d + stale_for)`, and gone from `t + d + stale_for` on (a TTL of zero is
//! expired at once). Sets and hits both count as uses for LRU, stale hits too.
//!
//! The data structure: a dense slab of entries (`Vec`) threaded by an intrusive doubly linked
//! recency list of `u32` slot indices, and a `HashMap` from key to slot for lookup. Every
//! operation is O(1) except the deadline index (a `BTreeSet`, O(log n) for entries with a
//! TTL). Removal swaps the last slot into the hole, so the slab stays dense and a uniform
//! random entry (for sampled LRU) is one draw. Crates such as `lru` give the list but neither
//! dense sampling nor the per-entry metadata and stale window; the whole thing is a hundred
//! lines, checked below against a naive model under random operations. The map is never
//! iterated and uses a fixed hash ([`KeyHasher`](super::KeyHasher)): no result depends on its
//! order.

use std::collections::{BTreeSet, HashMap};

use rand::RngExt;
use serde::{Deserialize, Serialize};

use super::KeyHashBuilder;
use crate::engine::rng::SimRng;
use crate::engine::time::{SimDuration, SimTime};
use crate::model::rpc::{ConfigError, Validate};

/// Keys sampled per eviction by default: 5, Redis's `maxmemory-samples` default (redis.conf:
/// "The default of 5 produces good enough results. 10 Approximates very closely true LRU").
pub const DEFAULT_SAMPLES: u32 = 5;

/// The most keys a sampled eviction may look at: 64, the upper bound Redis accepts for
/// `maxmemory-samples`.
pub const MAX_SAMPLES: u32 = 64;

/// The most entries one store can hold, whatever its config: slots are `u32`s, one value kept
/// for "no slot". A store at this limit refuses new keys ([`Refusal::Full`]).
pub const MAX_STORE_ENTRIES: u64 = u32::MAX as u64 - 1;

const NIL: u32 = u32::MAX;

/// What to do when a write would go past a limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Eviction {
    /// Never evict (Redis's default `noeviction`). With no limits the store just grows; with
    /// limits, writes that would exceed them are refused.
    #[default]
    None,
    /// Evict the least recently used entry, exactly.
    Lru,
    /// Sample `samples` entries uniformly (with replacement) and evict the one used least
    /// recently: Redis's approximated LRU without its eviction pool. `SampledLru()` samples 5.
    SampledLru {
        #[serde(default = "default_samples")]
        samples: u32,
    },
}

fn default_samples() -> u32 {
    DEFAULT_SAMPLES
}

/// A store's bounds and policies: `(max_entries: Some(10000), eviction: Lru)`; every field has
/// a default, and the defaults are Redis's (`maxmemory 0`: no limit; `noeviction`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// At most this many entries, >= 1; None for no limit.
    #[serde(default)]
    pub max_entries: Option<u64>,
    /// At most this many bytes (the sum of entry sizes), >= 1; None for no limit. A single
    /// entry larger than this is refused ([`Refusal::TooLarge`]).
    #[serde(default)]
    pub max_bytes: Option<u64>,
    /// Default `None`. `Lru` and `SampledLru` need a limit to evict at.
    #[serde(default)]
    pub eviction: Eviction,
    /// How long an expired entry is kept and answered as [`Lookup::Stale`]; default 0 (an
    /// expired entry is a miss, as in Redis and memcached).
    #[serde(default)]
    pub stale_for: SimDuration,
}

impl Validate for StoreConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(n) = self.max_entries {
            if n == 0 {
                return Err(ConfigError::Zero {
                    field: "max_entries".into(),
                });
            }
            if n > MAX_STORE_ENTRIES {
                return Err(ConfigError::Invalid {
                    field: "max_entries".into(),
                    reason: format!("{n} is more than a store can hold ({MAX_STORE_ENTRIES})"),
                });
            }
        }
        if self.max_bytes == Some(0) {
            return Err(ConfigError::Zero {
                field: "max_bytes".into(),
            });
        }
        let limited = self.max_entries.is_some() || self.max_bytes.is_some();
        match self.eviction {
            Eviction::None => {}
            Eviction::Lru | Eviction::SampledLru { .. } if !limited => {
                return Err(ConfigError::Invalid {
                    field: "eviction".into(),
                    reason: "an evicting store evicts only at a limit: set max_entries or \
                             max_bytes (or use `None` for an unbounded store)"
                        .into(),
                });
            }
            Eviction::Lru => {}
            Eviction::SampledLru { samples } => {
                if !(1..=MAX_SAMPLES).contains(&samples) {
                    return Err(ConfigError::Invalid {
                        field: "eviction.SampledLru.samples".into(),
                        reason: format!("{samples} must be in 1..={MAX_SAMPLES} (as in Redis)"),
                    });
                }
            }
        }
        Ok(())
    }
}

/// What a store holds about a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// When it was written.
    pub stored_at: SimTime,
    /// When it stops being fresh; None never.
    pub expires_at: Option<SimTime>,
    /// Its size in bytes, as the writer gave it.
    pub size: u64,
    /// How long the recompute that produced it took: XFetch's `delta`.
    pub delta: SimDuration,
    /// The store's write counter at the write that made it (1 for the store's first write):
    /// two lookups returning the same version saw the same write.
    pub version: u64,
    /// A negative entry: the database said the key does not exist (negative caching).
    pub negative: bool,
    /// When it was last used (written or looked up) *before* the lookup that returns it.
    pub last_access: SimTime,
}

impl Entry {
    /// Whether it is fresh at `now`: no expiry, or `now` before it.
    pub fn is_fresh(&self, now: SimTime) -> bool {
        self.expires_at.is_none_or(|e| now < e)
    }

    /// The time left before it expires (zero once expired); None if it never does.
    pub fn ttl_left(&self, now: SimTime) -> Option<SimDuration> {
        self.expires_at.map(|e| e.saturating_duration_since(now))
    }
}

/// The answer to a lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// A fresh entry.
    Hit(Entry),
    /// An expired entry still within its `stale_for` window: serve it while revalidating.
    Stale(Entry),
    /// No entry (never written, deleted, evicted, or past its stale window).
    Miss,
}

impl Lookup {
    /// The entry of a hit or a stale hit.
    pub fn entry(&self) -> Option<&Entry> {
        match self {
            Lookup::Hit(e) | Lookup::Stale(e) => Some(e),
            Lookup::Miss => None,
        }
    }
}

/// Why a write was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// An evicting store was given an entry larger than `max_bytes` on its own. Any older
    /// entry for the key is removed, as memcached does on a failed set, so a stale value does
    /// not outlive the failed write.
    TooLarge,
    /// A non-evicting store (`Eviction::None`) would go past a limit, or the store holds
    /// [`MAX_STORE_ENTRIES`]. Nothing changes, as after Redis's OOM error.
    Full,
}

/// The result of a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetOutcome {
    /// Written; `replaced` if the key had an entry, `evicted` other entries to make room.
    Stored {
        replaced: bool,
        evicted: u32,
    },
    Refused(Refusal),
}

/// Counts since the store was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub hits: u64,
    pub stale_hits: u64,
    /// Lookups that found nothing, including those that found an entry past its window.
    pub misses: u64,
    pub sets: u64,
    pub refused: u64,
    /// Entries removed by [`Store::delete`].
    pub deletes: u64,
    pub evictions: u64,
    pub evicted_bytes: u64,
    /// Entries removed for being past their stale window, lazily or by the sweep.
    pub expired: u64,
    /// The most bytes held at once.
    pub peak_bytes: u64,
}

#[derive(Clone, Debug)]
struct Node {
    key: u64,
    entry: Entry,
    /// Towards the most recently used end; NIL at the head.
    prev: u32,
    /// Towards the least recently used end; NIL at the tail.
    next: u32,
}

/// One shard's store (see the module docs).
#[derive(Clone, Debug)]
pub struct Store {
    config: StoreConfig,
    nodes: Vec<Node>,
    index: HashMap<u64, u32, KeyHashBuilder>,
    /// Most recently used.
    head: u32,
    /// Least recently used.
    tail: u32,
    bytes: u64,
    /// `(removal time, key)` of every entry with an expiry; removal is `expires_at +
    /// stale_for`.
    deadlines: BTreeSet<(SimTime, u64)>,
    writes: u64,
    stats: StoreStats,
}

/// Where an entry stands at a given time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Age {
    Fresh,
    Stale,
    Gone,
}

impl Store {
    /// An empty store; errors name the config's field.
    pub fn new(config: StoreConfig) -> Result<Store, ConfigError> {
        config.validate()?;
        Ok(Store {
            config,
            nodes: Vec::new(),
            index: HashMap::default(),
            head: NIL,
            tail: NIL,
            bytes: 0,
            deadlines: BTreeSet::new(),
            writes: 0,
            stats: StoreStats::default(),
        })
    }

    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// Entries held, expired ones not yet removed included (they take memory, as in Redis).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The sum of the held entries' sizes.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn stats(&self) -> &StoreStats {
        &self.stats
    }

    /// Looks `key` up at `now`: a fresh entry is a [`Lookup::Hit`], an expired one within its
    /// stale window a [`Lookup::Stale`] (both count as a use), and one past its window is
    /// removed and is a [`Lookup::Miss`] (lazy expiry).
    pub fn get(&mut self, key: u64, now: SimTime) -> Lookup {
        let Some(&slot) = self.index.get(&key) else {
            self.stats.misses += 1;
            return Lookup::Miss;
        };
        let entry = self.nodes[slot as usize].entry;
        debug_assert_eq!(self.nodes[slot as usize].key, key);
        match self.age(&entry, now) {
            Age::Gone => {
                self.remove_slot(slot);
                self.stats.expired += 1;
                self.stats.misses += 1;
                debug_assert!(!self.index.contains_key(&key));
                Lookup::Miss
            }
            age => {
                self.touch(slot, now);
                if age == Age::Fresh {
                    self.stats.hits += 1;
                    Lookup::Hit(entry)
                } else {
                    self.stats.stale_hits += 1;
                    Lookup::Stale(entry)
                }
            }
        }
    }

    /// What [`get`](Self::get) would answer, without counting, using or removing anything.
    pub fn peek(&self, key: u64, now: SimTime) -> Lookup {
        let Some(&slot) = self.index.get(&key) else {
            return Lookup::Miss;
        };
        let entry = self.nodes[slot as usize].entry;
        match self.age(&entry, now) {
            Age::Fresh => Lookup::Hit(entry),
            Age::Stale => Lookup::Stale(entry),
            Age::Gone => Lookup::Miss,
        }
    }

    /// Writes `key` at `now`: expiring `ttl` from now (None: never), `size` bytes, produced by a
    /// recompute that took `delta`. Evicts other entries if a limit requires it (drawing from
    /// `rng` for sampled LRU only), or refuses (see [`Refusal`]).
    pub fn set(
        &mut self,
        key: u64,
        now: SimTime,
        ttl: Option<SimDuration>,
        size: u64,
        delta: SimDuration,
        rng: &mut SimRng,
    ) -> SetOutcome {
        self.put(key, now, ttl, size, delta, false, rng)
    }

    /// Writes a negative entry for `key` (the database has no such key): negative caching,
    /// usually with a short `ttl`. Limits and eviction as for [`set`](Self::set).
    pub fn set_negative(
        &mut self,
        key: u64,
        now: SimTime,
        ttl: Option<SimDuration>,
        size: u64,
        rng: &mut SimRng,
    ) -> SetOutcome {
        self.put(key, now, ttl, size, SimDuration::ZERO, true, rng)
    }

    /// Removes `key`; whether it was there.
    pub fn delete(&mut self, key: u64) -> bool {
        let Some(&slot) = self.index.get(&key) else {
            return false;
        };
        self.remove_slot(slot);
        self.stats.deletes += 1;
        true
    }

    /// Active expiry: removes entries past their stale window at `now`, earliest deadline
    /// first, at most `max` of them (a limit per call, as Redis bounds each sweep's time).
    /// Returns how many it removed.
    pub fn purge_expired(&mut self, now: SimTime, max: usize) -> usize {
        let mut removed = 0;
        while removed < max {
            let Some(&(due, key)) = self.deadlines.first() else {
                break;
            };
            if due > now {
                break;
            }
            let slot = self.index.get(&key).copied();
            debug_assert!(slot.is_some(), "deadline of a key not held: {key}");
            match slot {
                Some(slot) => self.remove_slot(slot),
                // Unreachable (the index and the deadlines change together); drop the
                // orphan rather than loop on it.
                None => {
                    self.deadlines.remove(&(due, key));
                }
            }
            self.stats.expired += 1;
            removed += 1;
        }
        debug_assert!(removed == max || self.deadlines.first().is_none_or(|&(d, _)| d > now));
        removed
    }

    /// When the next entry leaves its stale window: when a sweep next has work.
    pub fn next_deadline(&self) -> Option<SimTime> {
        self.deadlines.first().map(|&(due, _)| due)
    }

    fn age(&self, entry: &Entry, now: SimTime) -> Age {
        match entry.expires_at {
            None => Age::Fresh,
            Some(e) if now < e => Age::Fresh,
            Some(e) if now < e.saturating_add(self.config.stale_for) => Age::Stale,
            Some(_) => Age::Gone,
        }
    }

    fn removal_time(&self, entry: &Entry) -> Option<SimTime> {
        entry
            .expires_at
            .map(|e| e.saturating_add(self.config.stale_for))
    }

    #[allow(clippy::too_many_arguments)]
    fn put(
        &mut self,
        key: u64,
        now: SimTime,
        ttl: Option<SimDuration>,
        size: u64,
        delta: SimDuration,
        negative: bool,
        rng: &mut SimRng,
    ) -> SetOutcome {
        let old = self.index.get(&key).copied();
        // An evicting store (memcached) drops the old value of a write too large to ever fit;
        // a non-evicting one (Redis's noeviction) refuses it like any write over the limit.
        let evicting = self.config.eviction != Eviction::None;
        if evicting && self.config.max_bytes.is_some_and(|max| size > max) {
            if let Some(slot) = old {
                self.remove_slot(slot);
            }
            self.stats.refused += 1;
            return SetOutcome::Refused(Refusal::TooLarge);
        }
        let old_size = old.map_or(0, |s| self.nodes[s as usize].entry.size);
        let entries_after = self.nodes.len() as u64 + u64::from(old.is_none());
        let bytes_after = self.bytes - old_size + size;
        let over = self.config.max_entries.is_some_and(|m| entries_after > m)
            || self.config.max_bytes.is_some_and(|m| bytes_after > m);
        if (over && !evicting) || entries_after > MAX_STORE_ENTRIES {
            self.stats.refused += 1;
            return SetOutcome::Refused(Refusal::Full);
        }

        self.writes += 1;
        let entry = Entry {
            stored_at: now,
            expires_at: ttl.map(|d| now.saturating_add(d)),
            size,
            delta,
            version: self.writes,
            negative,
            last_access: now,
        };
        let deadline = self.removal_time(&entry);
        match old {
            Some(slot) => {
                let previous = self.nodes[slot as usize].entry;
                if let Some(due) = self.removal_time(&previous) {
                    let was_there = self.deadlines.remove(&(due, key));
                    debug_assert!(was_there);
                }
                self.nodes[slot as usize].entry = entry;
                self.bytes = bytes_after;
                self.unlink(slot);
                self.push_front(slot);
            }
            None => {
                let slot = self.nodes.len() as u32;
                self.nodes.push(Node {
                    key,
                    entry,
                    prev: NIL,
                    next: NIL,
                });
                self.index.insert(key, slot);
                self.bytes = bytes_after;
                self.push_front(slot);
            }
        }
        if let Some(due) = deadline {
            self.deadlines.insert((due, key));
        }
        self.stats.sets += 1;
        let evicted = self.evict_for(key, rng);
        self.stats.peak_bytes = self.stats.peak_bytes.max(self.bytes);
        debug_assert!(self.within_limits(), "{:?}", self.config);
        debug_assert_eq!(self.index.len(), self.nodes.len());
        SetOutcome::Stored {
            replaced: old.is_some(),
            evicted,
        }
    }

    fn within_limits(&self) -> bool {
        self.config
            .max_entries
            .is_none_or(|m| self.nodes.len() as u64 <= m)
            && self.config.max_bytes.is_none_or(|m| self.bytes <= m)
    }

    /// Evicts until within limits, never the entry just written (`keep`).
    fn evict_for(&mut self, keep: u64, rng: &mut SimRng) -> u32 {
        let mut evicted = 0;
        while !self.within_limits() {
            // Slots move as entries are removed: find the kept one afresh each time.
            let Some(&kept) = self.index.get(&keep) else {
                break;
            };
            let victim = match self.config.eviction {
                Eviction::None => None,
                Eviction::Lru => {
                    let tail = self.tail;
                    let victim = if tail == kept {
                        self.nodes[tail as usize].prev
                    } else {
                        tail
                    };
                    (victim != NIL).then_some(victim)
                }
                Eviction::SampledLru { samples } => self.sample_victim(kept, samples, rng),
            };
            // The kept entry fits alone (larger ones are refused first), so there is always
            // another entry to evict while over a limit.
            debug_assert!(victim.is_some(), "over a limit with nothing to evict");
            let Some(victim) = victim else {
                break;
            };
            debug_assert_ne!(victim, kept);
            self.stats.evictions += 1;
            self.stats.evicted_bytes += self.nodes[victim as usize].entry.size;
            self.remove_slot(victim);
            evicted += 1;
        }
        evicted
    }

    /// The least recently used of `samples` uniform draws (with replacement) among the slots
    /// other than `kept`; ties go to the earlier draw.
    fn sample_victim(&self, kept: u32, samples: u32, rng: &mut SimRng) -> Option<u32> {
        let others = self.nodes.len().checked_sub(1)?;
        if others == 0 {
            return None;
        }
        let mut best: Option<(SimTime, u32)> = None;
        for _ in 0..samples {
            // Uniform over the other slots: draw among `others` and skip over `kept`.
            let mut slot = rng.random_range(0..others as u32);
            if slot >= kept {
                slot += 1;
            }
            let used = self.nodes[slot as usize].entry.last_access;
            if best.is_none_or(|(b, _)| used < b) {
                best = Some((used, slot));
            }
        }
        best.map(|(_, slot)| slot)
    }

    fn touch(&mut self, slot: u32, now: SimTime) {
        self.nodes[slot as usize].entry.last_access = now;
        if self.head != slot {
            self.unlink(slot);
            self.push_front(slot);
        }
    }

    fn push_front(&mut self, slot: u32) {
        let old_head = self.head;
        {
            let node = &mut self.nodes[slot as usize];
            node.prev = NIL;
            node.next = old_head;
        }
        if old_head != NIL {
            self.nodes[old_head as usize].prev = slot;
        } else {
            self.tail = slot;
        }
        self.head = slot;
    }

    fn unlink(&mut self, slot: u32) {
        let (prev, next) = {
            let node = &self.nodes[slot as usize];
            (node.prev, node.next)
        };
        if prev != NIL {
            self.nodes[prev as usize].next = next;
        } else {
            debug_assert_eq!(self.head, slot);
            self.head = next;
        }
        if next != NIL {
            self.nodes[next as usize].prev = prev;
        } else {
            debug_assert_eq!(self.tail, slot);
            self.tail = prev;
        }
        let node = &mut self.nodes[slot as usize];
        node.prev = NIL;
        node.next = NIL;
    }

    /// Removes the entry in `slot` from the list, the index, the deadlines and the byte count,
    /// and moves the last slot into its place.
    fn remove_slot(&mut self, slot: u32) {
        self.unlink(slot);
        let (key, entry) = {
            let node = &self.nodes[slot as usize];
            (node.key, node.entry)
        };
        let was_indexed = self.index.remove(&key);
        debug_assert_eq!(was_indexed, Some(slot));
        if let Some(due) = self.removal_time(&entry) {
            let was_there = self.deadlines.remove(&(due, key));
            debug_assert!(was_there);
        }
        self.bytes -= entry.size;
        let last = (self.nodes.len() - 1) as u32;
        if slot != last {
            self.nodes.swap(slot as usize, last as usize);
            // The moved node's neighbours (and the ends) still point at `last`.
            let (moved_key, prev, next) = {
                let moved = &self.nodes[slot as usize];
                (moved.key, moved.prev, moved.next)
            };
            if prev != NIL {
                self.nodes[prev as usize].next = slot;
            } else {
                self.head = slot;
            }
            if next != NIL {
                self.nodes[next as usize].prev = slot;
            } else {
                self.tail = slot;
            }
            self.index.insert(moved_key, slot);
        }
        self.nodes.pop();
        debug_assert_eq!(self.index.len(), self.nodes.len());
    }

    /// Keys from most to least recently used (tests and debugging; O(n)).
    #[cfg(test)]
    fn recency(&self) -> Vec<u64> {
        let mut keys = Vec::with_capacity(self.nodes.len());
        let mut at = self.head;
        while at != NIL {
            keys.push(self.nodes[at as usize].key);
            at = self.nodes[at as usize].next;
        }
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::rng::stream;

    fn secs(s: u64) -> SimTime {
        SimTime::from_nanos(s * 1_000_000_000)
    }

    fn ms(n: u64) -> SimDuration {
        SimDuration::from_millis(n)
    }

    fn store(config: StoreConfig) -> Store {
        match Store::new(config) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        }
    }

    fn lru(max_entries: Option<u64>, max_bytes: Option<u64>) -> Store {
        store(StoreConfig {
            max_entries,
            max_bytes,
            eviction: Eviction::Lru,
            stale_for: SimDuration::ZERO,
        })
    }

    #[test]
    fn an_entry_is_fresh_then_stale_then_gone_at_exact_times() {
        let mut rng = stream(1, "store");
        let mut s = store(StoreConfig {
            stale_for: SimDuration::from_secs(5),
            ..StoreConfig::default()
        });
        let out = s.set(
            7,
            secs(0),
            Some(SimDuration::from_secs(10)),
            100,
            ms(40),
            &mut rng,
        );
        assert_eq!(
            out,
            SetOutcome::Stored {
                replaced: false,
                evicted: 0
            }
        );
        let ns = |n: u64| SimTime::from_nanos(n);
        let Lookup::Hit(e) = s.get(7, ns(9_999_999_999)) else {
            panic!("fresh until the last nanosecond before expiry");
        };
        assert_eq!(e.stored_at, secs(0));
        assert_eq!(e.expires_at, Some(secs(10)));
        assert_eq!(
            (e.size, e.delta, e.version, e.negative),
            (100, ms(40), 1, false)
        );
        assert_eq!(e.last_access, secs(0), "the use before this one");
        assert_eq!(
            e.ttl_left(ns(9_999_999_999)),
            Some(SimDuration::from_nanos(1))
        );
        assert!(
            matches!(s.get(7, secs(10)), Lookup::Stale(_)),
            "expired at expiry"
        );
        let Lookup::Stale(e) = s.get(7, ns(14_999_999_999)) else {
            panic!("stale until the end of the window");
        };
        assert_eq!(e.last_access, secs(10));
        assert!(!e.is_fresh(secs(10)));
        assert_eq!(e.ttl_left(secs(12)), Some(SimDuration::ZERO));
        assert_eq!(s.peek(7, secs(15)), Lookup::Miss, "peek sees it gone");
        assert_eq!(s.len(), 1, "peek removes nothing");
        assert_eq!(s.get(7, secs(15)), Lookup::Miss);
        assert_eq!(s.len(), 0, "lazily removed");
        assert_eq!(s.bytes(), 0);
        let st = *s.stats();
        assert_eq!(
            (st.hits, st.stale_hits, st.misses, st.expired),
            (1, 2, 1, 1)
        );

        // Without a stale window an expired entry is a miss at once; a TTL of 0 is expired
        // as written; no TTL never expires.
        let mut s = store(StoreConfig::default());
        s.set(
            1,
            secs(0),
            Some(SimDuration::from_secs(1)),
            1,
            ms(0),
            &mut rng,
        );
        s.set(2, secs(0), Some(SimDuration::ZERO), 1, ms(0), &mut rng);
        s.set(3, secs(0), None, 1, ms(0), &mut rng);
        assert!(matches!(
            s.get(1, SimTime::from_nanos(999_999_999)),
            Lookup::Hit(_)
        ));
        assert_eq!(s.get(1, secs(1)), Lookup::Miss);
        assert_eq!(s.get(2, secs(0)), Lookup::Miss);
        assert!(matches!(s.get(3, SimTime::MAX), Lookup::Hit(_)));
        assert_eq!(s.stats().expired, 2);
    }

    #[test]
    fn writes_replace_delete_and_negative_entries() {
        let mut rng = stream(1, "store");
        let mut s = store(StoreConfig::default());
        s.set(5, secs(1), None, 10, ms(3), &mut rng);
        let out = s.set(
            5,
            secs(2),
            Some(SimDuration::from_secs(4)),
            30,
            ms(8),
            &mut rng,
        );
        assert_eq!(
            out,
            SetOutcome::Stored {
                replaced: true,
                evicted: 0
            }
        );
        assert_eq!((s.len(), s.bytes()), (1, 30));
        let e = *s.peek(5, secs(3)).entry().expect("present");
        assert_eq!((e.stored_at, e.version, e.delta), (secs(2), 2, ms(8)));
        assert_eq!(s.next_deadline(), Some(secs(6)));
        s.set_negative(6, secs(3), Some(SimDuration::from_secs(1)), 1, &mut rng);
        let n = *s.peek(6, secs(3)).entry().expect("present");
        assert!(n.negative);
        assert_eq!((n.version, n.delta), (3, SimDuration::ZERO));
        assert_eq!(s.next_deadline(), Some(secs(4)));
        assert!(s.delete(5));
        assert!(!s.delete(5));
        assert_eq!((s.len(), s.bytes()), (1, 1));
        assert_eq!(s.stats().deletes, 1);
        assert_eq!(
            s.next_deadline(),
            Some(secs(4)),
            "the deleted key's deadline went with it"
        );
        assert_eq!(s.stats().peak_bytes, 31);
    }

    #[test]
    fn exact_lru_evicts_the_least_recently_used() {
        let mut rng = stream(1, "store");
        let mut s = lru(Some(3), None);
        for (t, k) in [(1, 1), (2, 2), (3, 3)] {
            s.set(k, secs(t), None, 1, ms(0), &mut rng);
        }
        assert!(matches!(s.get(1, secs(4)), Lookup::Hit(_)));
        assert_eq!(s.recency(), vec![1, 3, 2]);
        let out = s.set(4, secs(5), None, 1, ms(0), &mut rng);
        assert_eq!(
            out,
            SetOutcome::Stored {
                replaced: false,
                evicted: 1
            }
        );
        assert_eq!(
            s.peek(2, secs(5)),
            Lookup::Miss,
            "2 was least recently used"
        );
        assert_eq!(s.recency(), vec![4, 1, 3]);
        // Rewriting a key is a use, and evicts nothing.
        s.set(3, secs(6), None, 1, ms(0), &mut rng);
        assert_eq!(s.recency(), vec![3, 4, 1]);
        assert_eq!(s.stats().evictions, 1);

        // Byte limits evict as many as needed, oldest first, never the new entry.
        let mut s = lru(None, Some(100));
        for k in 0..10 {
            s.set(k, secs(k), None, 10, ms(0), &mut rng);
        }
        let out = s.set(99, secs(20), None, 35, ms(0), &mut rng);
        assert_eq!(
            out,
            SetOutcome::Stored {
                replaced: false,
                evicted: 4
            }
        );
        assert_eq!((s.len(), s.bytes()), (7, 95));
        assert_eq!(s.recency(), vec![99, 9, 8, 7, 6, 5, 4]);
        assert_eq!(s.stats().evicted_bytes, 40);
        // Larger than the whole store: refused, and the old value for the key is gone.
        let out = s.set(9, secs(21), None, 101, ms(0), &mut rng);
        assert_eq!(out, SetOutcome::Refused(Refusal::TooLarge));
        assert_eq!(s.peek(9, secs(21)), Lookup::Miss);
        assert_eq!((s.len(), s.bytes()), (6, 85));
        // Exactly the limit fits, evicting everything else.
        let out = s.set(50, secs(22), None, 100, ms(0), &mut rng);
        assert_eq!(
            out,
            SetOutcome::Stored {
                replaced: false,
                evicted: 6
            }
        );
        assert_eq!(s.recency(), vec![50]);
    }

    #[test]
    fn no_eviction_grows_without_limits_and_refuses_at_them() {
        let mut rng = stream(1, "store");
        // C5: every new key adds its bytes; nothing ever leaves.
        let mut s = store(StoreConfig::default());
        for k in 0..50_000_u64 {
            s.set(k, SimTime::from_nanos(k), None, 1 + k % 7, ms(1), &mut rng);
        }
        let expected: u64 = (0..50_000_u64).map(|k| 1 + k % 7).sum();
        assert_eq!((s.len(), s.bytes()), (50_000, expected));
        assert_eq!(s.stats().evictions, 0);
        assert_eq!(s.stats().peak_bytes, expected);

        // With limits, noeviction refuses what would pass them and keeps what it has.
        let mut s = store(StoreConfig {
            max_entries: Some(2),
            max_bytes: Some(10),
            ..StoreConfig::default()
        });
        s.set(1, secs(0), None, 4, ms(0), &mut rng);
        s.set(2, secs(0), None, 4, ms(0), &mut rng);
        assert_eq!(
            s.set(3, secs(1), None, 1, ms(0), &mut rng),
            SetOutcome::Refused(Refusal::Full)
        );
        assert_eq!(
            s.set(2, secs(1), None, 7, ms(0), &mut rng),
            SetOutcome::Refused(Refusal::Full),
            "4 + 7 > 10"
        );
        assert_eq!(
            s.peek(2, secs(1)).entry().map(|e| e.size),
            Some(4),
            "kept as it was"
        );
        assert_eq!(
            s.set(2, secs(1), None, 11, ms(0), &mut rng),
            SetOutcome::Refused(Refusal::Full),
            "too large for the store: refused like the rest, the old value kept"
        );
        assert_eq!(s.peek(2, secs(1)).entry().map(|e| e.size), Some(4));
        assert!(matches!(
            s.set(2, secs(1), None, 6, ms(0), &mut rng),
            SetOutcome::Stored { replaced: true, .. }
        ));
        assert_eq!((s.len(), s.bytes(), s.stats().refused), (2, 10, 3));
    }

    #[test]
    fn the_sweep_removes_what_is_due_earliest_first_within_its_bound() {
        let mut rng = stream(1, "store");
        let mut s = store(StoreConfig {
            stale_for: SimDuration::from_secs(1),
            ..StoreConfig::default()
        });
        // Key k expires at k s (gone at k + 1 s); key 100 never.
        for k in 1..=10 {
            s.set(
                k,
                secs(0),
                Some(SimDuration::from_secs(k)),
                10,
                ms(0),
                &mut rng,
            );
        }
        s.set(100, secs(0), None, 10, ms(0), &mut rng);
        assert_eq!(s.next_deadline(), Some(secs(2)));
        assert_eq!(s.purge_expired(SimTime::from_nanos(1_999_999_999), 100), 0);
        assert_eq!(s.purge_expired(secs(6), 2), 2, "bounded");
        assert!(matches!(s.peek(3, secs(2)), Lookup::Hit(_)));
        assert!(
            matches!(s.peek(3, secs(3)), Lookup::Stale(_)),
            "stale from its expiry"
        );
        assert_eq!(s.peek(1, secs(0)), Lookup::Miss, "1 and 2 went first");
        assert_eq!(s.purge_expired(secs(6), 100), 3, "3, 4, 5 were due by 6 s");
        assert_eq!(s.next_deadline(), Some(secs(7)));
        assert_eq!((s.len(), s.bytes()), (6, 60));
        assert_eq!(s.purge_expired(SimTime::MAX, 100), 5);
        assert_eq!(s.recency(), vec![100]);
        assert_eq!(s.next_deadline(), None);
        assert_eq!(s.stats().expired, 10);
    }

    #[test]
    fn with_ttls_and_a_sweep_memory_is_bounded_by_rate_times_lifetime() {
        // New keys at 1,000 a second for 100 s, each living 2 s (+1 s stale), swept every
        // 100 ms: at most 1,000 x (3 s + 0.1 s) entries are ever held. Without the sweep
        // all 100,000 stay (nobody reads them again, so lazy expiry never runs).
        let mut rng = stream(1, "store");
        let config = StoreConfig {
            stale_for: SimDuration::from_secs(1),
            ..StoreConfig::default()
        };
        let (mut swept, mut lazy) = (store(config.clone()), store(config));
        let mut max_len = 0;
        for i in 0..100_000_u64 {
            let now = SimTime::from_nanos(i * 1_000_000);
            for s in [&mut swept, &mut lazy] {
                s.set(
                    i,
                    now,
                    Some(SimDuration::from_secs(2)),
                    100,
                    ms(1),
                    &mut rng,
                );
            }
            max_len = max_len.max(swept.len());
            if i % 100 == 0 {
                swept.purge_expired(now, usize::MAX);
            }
        }
        // Just before a sweep: the last 3 s of keys plus up to 100 ms of due ones.
        assert_eq!(max_len, 3_100);
        assert_eq!(lazy.len(), 100_000);
        assert_eq!(swept.stats().peak_bytes, max_len as u64 * 100);
    }

    /// A naive exact-LRU model: a Vec of (key, size), most recently used first.
    struct Model {
        entries: Vec<(u64, u64)>,
        max_entries: u64,
        max_bytes: u64,
    }

    impl Model {
        fn bytes(&self) -> u64 {
            self.entries.iter().map(|e| e.1).sum()
        }

        fn get(&mut self, key: u64) -> bool {
            match self.entries.iter().position(|e| e.0 == key) {
                Some(i) => {
                    let e = self.entries.remove(i);
                    self.entries.insert(0, e);
                    true
                }
                None => false,
            }
        }

        fn set(&mut self, key: u64, size: u64) -> Option<u32> {
            if let Some(i) = self.entries.iter().position(|e| e.0 == key) {
                self.entries.remove(i);
            }
            if size > self.max_bytes {
                return None;
            }
            self.entries.insert(0, (key, size));
            let mut evicted = 0;
            while self.entries.len() as u64 > self.max_entries || self.bytes() > self.max_bytes {
                self.entries.pop();
                evicted += 1;
            }
            Some(evicted)
        }
    }

    #[test]
    fn lru_matches_a_naive_model_under_random_operations() {
        for (seed, max_entries, max_bytes) in [(1, 10, 1_000), (2, 40, 200), (3, 5, 60)] {
            let mut rng = stream(seed, "ops");
            let mut evict_rng = stream(seed, "evict");
            let mut s = lru(Some(max_entries), Some(max_bytes));
            let mut m = Model {
                entries: Vec::new(),
                max_entries,
                max_bytes,
            };
            for op in 0..20_000_u64 {
                let now = SimTime::from_nanos(op);
                let key = rng.random_range(0..60_u64);
                match rng.random_range(0..10_u32) {
                    0..=4 => {
                        let hit = matches!(s.get(key, now), Lookup::Hit(_));
                        assert_eq!(hit, m.get(key), "seed {seed} op {op}: get {key}");
                    }
                    5..=8 => {
                        let size = rng.random_range(1..=70_u64);
                        let got = s.set(key, now, None, size, ms(0), &mut evict_rng);
                        let want = m.set(key, size);
                        match (got, want) {
                            (SetOutcome::Stored { evicted, .. }, Some(w)) => {
                                assert_eq!(evicted, w, "seed {seed} op {op}")
                            }
                            (SetOutcome::Refused(Refusal::TooLarge), None) => {}
                            other => panic!("seed {seed} op {op}: {other:?}"),
                        }
                    }
                    _ => {
                        let was = m.entries.iter().position(|e| e.0 == key);
                        if let Some(i) = was {
                            m.entries.remove(i);
                        }
                        assert_eq!(s.delete(key), was.is_some());
                    }
                }
                let model_keys: Vec<u64> = m.entries.iter().map(|e| e.0).collect();
                assert_eq!(s.recency(), model_keys, "seed {seed} op {op}");
                assert_eq!(s.bytes(), m.bytes());
                assert_eq!(s.len(), m.entries.len());
            }
            assert!(s.stats().evictions > 1_000, "{:?}", s.stats());
        }
    }

    #[test]
    fn sampled_lru_evicts_the_oldest_of_k_uniform_samples() {
        // A full store of M entries, key i last used at time i (key 0 the oldest); writing one
        // more evicts one of those M. The victim is the oldest sample, so it is among the m
        // oldest iff some sample fell there: probability 1 - (1 - m/M)^k, checked over T
        // trials with a binomial tolerance of 5 sd (k = 1 is random eviction; k = 64 is nearly
        // exact LRU).
        let m_total = 100_u64;
        let trials = 20_000;
        for (k, oldest) in [(1, 10), (5, 10), (5, 30), (10, 10), (64, 5)] {
            let mut template = store(StoreConfig {
                max_entries: Some(m_total),
                eviction: Eviction::SampledLru { samples: k },
                ..StoreConfig::default()
            });
            let mut rng = stream(7, "fill");
            for i in 0..m_total {
                template.set(i, SimTime::from_nanos(i), None, 1, ms(0), &mut rng);
            }
            let mut rng = stream(u64::from(k), "evict");
            let mut among_oldest = 0_u64;
            for _ in 0..trials {
                let mut s = template.clone();
                let out = s.set(1_000, secs(1), None, 1, ms(0), &mut rng);
                assert_eq!(
                    out,
                    SetOutcome::Stored {
                        replaced: false,
                        evicted: 1
                    }
                );
                assert_eq!(s.len() as u64, m_total);
                assert!(
                    matches!(s.peek(1_000, secs(1)), Lookup::Hit(_)),
                    "never the new one"
                );
                let victim = (0..m_total)
                    .find(|&i| s.peek(i, secs(1)) == Lookup::Miss)
                    .expect("one was evicted");
                among_oldest += u64::from(victim < oldest);
            }
            let p = 1.0 - (1.0 - oldest as f64 / m_total as f64).powi(k as i32);
            let sd = (trials as f64 * p * (1.0 - p)).sqrt().max(1.0);
            let got = among_oldest as f64;
            assert!(
                (got - trials as f64 * p).abs() < 5.0 * sd,
                "k {k}: {got} of {trials} among the {oldest} oldest, expected {}",
                trials as f64 * p
            );
        }
    }

    #[test]
    fn configs_have_redis_defaults_and_validate() {
        let c: StoreConfig = ron::from_str("()").expect("defaults");
        assert_eq!(c, StoreConfig::default());
        assert_eq!(c.eviction, Eviction::None);
        assert_eq!((c.max_entries, c.max_bytes), (None, None));
        assert_eq!(c.stale_for, SimDuration::ZERO);
        let c: StoreConfig =
            ron::from_str(r#"(max_bytes: Some(1000), eviction: SampledLru(), stale_for: "2s")"#)
                .expect("parses");
        assert_eq!(c.eviction, Eviction::SampledLru { samples: 5 });
        assert_eq!(c.stale_for, SimDuration::from_secs(2));
        assert!(c.validate().is_ok());
        let c: StoreConfig =
            ron::from_str("(max_entries: Some(3), eviction: SampledLru(samples: 10))").expect("ok");
        assert_eq!(c.eviction, Eviction::SampledLru { samples: 10 });
        let err = ron::from_str::<StoreConfig>("(max_entry: Some(3))").unwrap_err();
        assert!(err.to_string().contains("max_entry"), "{err}");

        let field = |c: StoreConfig| Store::new(c).unwrap_err().field().map(str::to_string);
        let with = |max_entries, max_bytes, eviction| StoreConfig {
            max_entries,
            max_bytes,
            eviction,
            stale_for: SimDuration::ZERO,
        };
        assert_eq!(
            field(with(Some(0), None, Eviction::Lru)).as_deref(),
            Some("max_entries")
        );
        assert_eq!(
            field(with(None, Some(0), Eviction::Lru)).as_deref(),
            Some("max_bytes")
        );
        assert_eq!(
            field(with(Some(1 << 40), None, Eviction::Lru)).as_deref(),
            Some("max_entries")
        );
        assert_eq!(
            field(with(None, None, Eviction::Lru)).as_deref(),
            Some("eviction")
        );
        assert_eq!(
            field(with(Some(9), None, Eviction::SampledLru { samples: 0 })).as_deref(),
            Some("eviction.SampledLru.samples")
        );
        assert_eq!(
            field(with(Some(9), None, Eviction::SampledLru { samples: 65 })).as_deref(),
            Some("eviction.SampledLru.samples")
        );
        assert!(Store::new(with(Some(1), None, Eviction::SampledLru { samples: 64 })).is_ok());
    }

    #[test]
    fn a_store_is_deterministic() {
        // Two stores fed the same operations and streams end in the same state, sampled
        // eviction included.
        let run = || {
            let mut ops = stream(3, "ops");
            let mut ev = stream(3, "evict");
            let mut s = store(StoreConfig {
                max_entries: Some(50),
                eviction: Eviction::SampledLru { samples: 3 },
                ..StoreConfig::default()
            });
            for t in 0..5_000_u64 {
                let k = ops.random_range(0..200_u64);
                if ops.random_range(0..2_u32) == 0 {
                    s.get(k, SimTime::from_nanos(t));
                } else {
                    s.set(k, SimTime::from_nanos(t), None, 1, ms(0), &mut ev);
                }
            }
            (s.recency(), *s.stats())
        };
        assert_eq!(run(), run());
    }
}
