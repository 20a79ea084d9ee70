//! The pure cores of the cache family (C1–C5 of the catalogue): consistent hashing, a per-shard
//! store with TTLs and eviction, TTL jitter, probabilistic early expiration (XFetch), a Bloom
//! filter of existing keys, and key popularity for workloads. None of them is an actor: like
//! `model/rpc/resilience.rs`, each takes `now` and, where it draws, the caller's own
//! `&mut SimRng`, and returns a decision, so each is tested on its exact semantics here and the
//! actors that embed them stay pure functions of their events and their streams.
//!
//! # How the pieces will fit
//!
//! A `Cache` actor stands for a cluster of N shards (Redis Cluster nodes, a memcached pool).
//! Callers find a key's shard on a [`Ring`] (ketama-style consistent hashing, 160 virtual nodes
//! a shard), so adding or losing a shard moves only that shard's share of the keys. Each shard
//! is a [`Store`]: entries with a TTL, a size and the cost of their last recompute, bounded in
//! entries and bytes, evicting by exact LRU, Redis-style sampled LRU, or not at all (the
//! unbounded cache of C5, whose memory the actor compares with a limit and OOM-crashes on).
//! Each shard also has its own service time that grows with its load — a shard is one
//! single-threaded Redis process — so a hot key (C4) saturates *its* shard and slows every key
//! that hashes there while the others idle; the fixes are an L1 cache in the service, and
//! replicating a hot key over [`Ring::replicas`].
//!
//! The service in front of a database runs cache-aside: `get` → miss → query the database →
//! `set`. What the failure modes add to that loop, each a switch so that a baseline shows the
//! failure and a variant its fix:
//! - **Stampede (C1)**: a hot key expires and every concurrent miss queries the database.
//!   Fixes: single-flight (one query per key in flight, the other requests wait for it or are
//!   served the [`Lookup::Stale`] value: stale-while-revalidate, with the store's `stale_for`
//!   window), [`XFetch`] (a request recomputes early with a probability that rises as expiry
//!   nears; the store keeps the last recompute's duration, `delta`, for it), and background
//!   refresh ahead of expiry. Per expiry of a key read at rate `lambda`, recomputed in
//!   `delta`: `1 + lambda delta` database queries without a fix, `exp(1 / beta)` with XFetch
//!   alone under heavy traffic ([`expected_recomputations`]), one with single-flight.
//! - **Avalanche (C2)**: keys written together with one TTL expire together. Fix: jittered
//!   TTLs ([`Ttl`], [`ttl_with_jitter`]).
//! - **Penetration (C3)**: requests for keys that do not exist ([`KeySpace`]'s `missing`
//!   share) miss every time. Fixes: negative caching ([`Store::set_negative`], a short TTL),
//!   and a [`BloomFilter`] of the keys that exist, asked before the cache.
//! - **Unbounded growth (C5)**: `Eviction::None` and no TTLs. Fixes: an LRU bound, TTLs and
//!   active expiry ([`Store::purge_expired`]).
//!
//! # Hashing
//!
//! Every hash here is a fixed integer function, documented where it is used and pinned by
//! tests, never std's randomly keyed `RandomState` or a crate's hasher that may change between
//! versions: a key's shard, a Bloom filter's bits and a store's lookups must be the same on
//! every run, platform and build. The building block is [`mix64`], SplitMix64's output
//! function (Steele, Lea, Flood 2014; the constants of Stafford's "Mix13"), a bijection on
//! `u64` with full avalanche, together with FNV-1a for names (`engine::rng::fnv1a`). The
//! stores' hash maps use [`KeyHasher`] (also [`mix64`]) and are never iterated: every result
//! that depends on an order comes from a `Vec` or a `BTreeSet`.

mod actor;
mod aside;
mod bloom;
mod bursts;
mod keys;
mod ring;
mod store;
mod ttl;
mod xfetch;

use std::hash::{BuildHasherDefault, Hasher};

pub use actor::{
    Cache, CacheConfig, DEFAULT_QUEUE_CAPACITY, DEFAULT_SWEEP_INTERVAL, MAX_SHARDS, Replication,
    SWEEP_MAX_PER_SHARD, ShardMemory,
};
pub use aside::{
    CacheUse, DEFAULT_CACHE_TIMEOUT, DEFAULT_REFRESHERS, DEFAULT_VALUE_SIZE, L1Config,
    MAX_REFRESHERS, Stampede, WriteMode,
};
pub use bloom::{
    BloomConfig, BloomFilter, DEFAULT_FALSE_POSITIVE_RATE, MAX_BLOOM_BITS, optimal_bits,
    optimal_hashes,
};
pub use bursts::{KeyBursts, MAX_TRACKED_KEYS};
pub use keys::{DEFAULT_MISSING_KEYS, KeySpace, Keys, MISSING_KEY_BASE, Popularity};
pub use ring::{DEFAULT_VNODES, MAX_RING_POINTS, Ring};
pub use store::{
    DEFAULT_SAMPLES, Entry, Eviction, Lookup, MAX_SAMPLES, MAX_STORE_ENTRIES, Refusal, SetOutcome,
    Store, StoreConfig, StoreStats,
};
pub use ttl::{MAX_TTL_JITTER, Ttl, ttl_with_jitter};
pub use xfetch::{DEFAULT_BETA, MAX_BETA, XFetch, XFetchConfig, expected_recomputations};

/// SplitMix64's increment, the golden ratio in 64-bit fixed point (`engine::rng::splitmix64`
/// adds it before mixing).
pub const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// SplitMix64's output function: a bijection on `u64` in which every input bit flips each
/// output bit with probability close to 1/2. `mix64(s + GOLDEN_GAMMA)` is the next output of
/// a SplitMix64 generator in state `s`, so `engine::rng::splitmix64` and this agree.
///
/// Used to place keys on the ring, to hash keys into Bloom filter bits and in store lookups.
/// Being a bijection, it never merges two keys: distinct keys get distinct positions.
#[inline]
pub const fn mix64(x: u64) -> u64 {
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A fixed [`Hasher`] for `u64` keys: [`mix64`] of the key. The stores' `HashMap`s use it
/// (through [`KeyHashBuilder`]) instead of std's `RandomState`, so lookups cost the same on
/// every run; nothing iterates those maps, so their order never reaches a result either way.
/// Other input (never given by this module) is folded in with FNV-1a steps.
#[derive(Clone, Copy, Debug, Default)]
pub struct KeyHasher {
    state: u64,
}

impl Hasher for KeyHasher {
    #[inline]
    fn write_u64(&mut self, key: u64) {
        self.state = mix64(self.state ^ key);
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.state = (self.state ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.state = mix64(self.state);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.state
    }
}

/// The `BuildHasher` of [`KeyHasher`].
pub type KeyHashBuilder = BuildHasherDefault<KeyHasher>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::rng::splitmix64;
    use std::hash::{BuildHasher, Hash};

    #[test]
    fn mix64_is_splitmix64s_output_function() {
        for seed in [0_u64, 1, 42, u64::MAX, 0xdead_beef] {
            let mut state = seed;
            let expected = splitmix64(&mut state);
            assert_eq!(mix64(seed.wrapping_add(GOLDEN_GAMMA)), expected, "{seed}");
            assert_eq!(state, seed.wrapping_add(GOLDEN_GAMMA));
        }
        // Pinned values: if these change, every key's shard and Bloom bits change.
        assert_eq!(mix64(0), 0);
        assert_eq!(mix64(1), 0x5692_161d_100b_05e5);
        assert_eq!(mix64(GOLDEN_GAMMA), 0xe220_a839_7b1d_cdaf);
    }

    #[test]
    fn mix64_avalanches() {
        // Flipping one input bit flips each output bit with probability ~1/2: over 64 input
        // bits x 2,000 inputs, each output bit's flip count is Binomial(128,000, 1/2), sd 179.
        let n = 2_000_u64;
        let mut flips = [0_u64; 64];
        for i in 0..n {
            let x = mix64(i.wrapping_mul(0x1234_5678_9abc_def1));
            for bit in 0..64 {
                let d = mix64(x) ^ mix64(x ^ (1 << bit));
                for (o, f) in flips.iter_mut().enumerate() {
                    *f += (d >> o) & 1;
                }
            }
        }
        let trials = (n * 64) as f64;
        let sd = (trials * 0.25).sqrt();
        for (o, &f) in flips.iter().enumerate() {
            assert!(
                (f as f64 - trials / 2.0).abs() < 6.0 * sd,
                "output bit {o}: {f}"
            );
        }
    }

    #[test]
    fn the_key_hasher_is_fixed() {
        // What a HashMap<u64, _, KeyHashBuilder> computes for a key: `u64::hash` calls
        // `write_u64` once, so the hash is mix64(key).
        let hash = |k: u64| KeyHashBuilder::default().hash_one(k);
        assert_eq!(hash(7), mix64(7));
        let mut by_hand = KeyHasher::default();
        7_u64.hash(&mut by_hand);
        assert_eq!(by_hand.finish(), hash(7));
        assert_ne!(hash(7), hash(8));
        let mut h = KeyHasher::default();
        h.write(b"abc");
        let mut again = KeyHasher::default();
        again.write(b"abc");
        assert_eq!(h.finish(), again.finish());
        assert_ne!(h.finish(), 0);
    }
}
