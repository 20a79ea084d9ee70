//! How a service uses a cache for one request kind (`KindConfig::cache`): cache-aside reads
//! with their stampede protection, negative caching, a Bloom filter, an in-process L1, and what
//! writes do to the cache. The config and its rules live here; the state machine that runs it
//! is the `Service`'s (`model/rpc/service/aside.rs`).
//!
//! A read (the default) looks the key up — Bloom filter, then L1, then the cache — and answers
//! from the first that knows; on a miss it runs the kind's `calls` (the recompute: usually one
//! database query), writes the result to the cache (and the L1) and answers. A write
//! (`writes: true`) runs its calls and then, by `mode`, deletes the key from the cache
//! (`Aside`: the next read reloads it), writes the new value (`WriteThrough`) or leaves the
//! cache alone (`WriteAround`: the old value stays until its TTL).
//!
//! The defaults are the failure's baselines: no stampede protection, no jitter, no negative
//! caching, no Bloom filter, no L1.

use serde::{Deserialize, Serialize};

use super::{BloomConfig, MAX_STORE_ENTRIES, Ttl, XFetchConfig};
use crate::engine::time::SimDuration;
use crate::model::rpc::{ConfigError, Validate, nonzero};

/// A cache command's timeout by default: 2 s, the Jedis client's (`Protocol.DEFAULT_TIMEOUT`,
/// 2000 ms, its connection and socket timeout).
pub const DEFAULT_CACHE_TIMEOUT: SimDuration = SimDuration::from_secs(2);

/// An entry's size by default, in bytes: 1 KiB. An assumption, not a measured figure: only
/// the caches' `bytes` gauges and byte limits read it.
pub const DEFAULT_VALUE_SIZE: u32 = 1_024;

/// Background refreshes of one kind in flight at most, by default: 16. Caffeine puts no bound
/// on its asynchronous refreshes (each is a future); this is the simulator's limit on
/// everything, and a refresh beyond it is skipped (a later access asks again).
pub const DEFAULT_REFRESHERS: u32 = 16;

/// What a write does to the cache after its calls succeed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum WriteMode {
    /// Delete the key (and drop it from the L1): the next read misses and reloads it. The
    /// usual cache-aside write ("update the database, then delete the cache entry").
    #[default]
    Aside,
    /// Write the new value to the cache (and the L1) with a fresh TTL.
    WriteThrough,
    /// Leave the cache alone: readers see the old value until its TTL runs out.
    WriteAround,
}

/// Protection against the stampede of C1: what the requests that find an expired (or
/// expiring) hot key do.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum Stampede {
    /// Every request that misses runs the recompute: `1 + rate x refill time` database
    /// queries per expiry of a hot key.
    #[default]
    None,
    /// One recompute per key in flight from this service: the first request that misses runs
    /// it, the others wait for its answer (holding their workers, as threads blocked on a
    /// lock or a future would) for at most `wait`, then fail with `Timeout`. With
    /// `stale_for > 0`, entries are kept that long past their TTL, and a request that finds
    /// one while a recompute is running is answered the stale value at once instead of
    /// waiting.
    SingleFlight {
        wait: SimDuration,
        #[serde(default)]
        stale_for: SimDuration,
    },
    /// Probabilistic early expiration (Vattani et al., VLDB 2015): a request that finds a
    /// fresh entry recomputes it itself, synchronously, with probability `exp(-t / (beta *
    /// delta))` at `t` before expiry, `delta` the entry's last recompute time. About
    /// `exp(1 / beta)` recomputes per expiry under heavy traffic, and no miss.
    XFetch {
        #[serde(default = "default_beta")]
        beta: f64,
    },
    /// A request that finds a fresh entry expiring within `before` starts a background
    /// refresh of it (one per key, not holding a worker) and is answered from the cache:
    /// a key read at least once in that window never expires (Caffeine's
    /// `refreshAfterWrite`).
    RefreshAhead { before: SimDuration },
    /// Entries are kept `stale_for` past their TTL; a request that finds one stale is
    /// answered the stale value at once and starts a background refresh (one per key), as
    /// HTTP's `stale-while-revalidate` (RFC 5861). A request that finds nothing still runs
    /// the recompute itself.
    StaleWhileRevalidate { stale_for: SimDuration },
}

fn default_beta() -> f64 {
    XFetchConfig::default().beta
}

impl Stampede {
    /// How long entries are kept past their TTL, answered as stale.
    pub fn stale_for(&self) -> SimDuration {
        match self {
            Stampede::SingleFlight { stale_for, .. }
            | Stampede::StaleWhileRevalidate { stale_for } => *stale_for,
            _ => SimDuration::ZERO,
        }
    }

    /// Whether it refreshes in the background (and needs refresher slots).
    pub fn refreshes_in_background(&self) -> bool {
        matches!(
            self,
            Stampede::RefreshAhead { .. } | Stampede::StaleWhileRevalidate { .. }
        )
    }
}

/// An in-process cache per service instance, consulted before the shared one (Caffeine,
/// Guava): `l1: Some((capacity: 10000, ttl: "1s"))`. LRU over `capacity` entries, each kept
/// `ttl` (its own, usually much shorter than the shared cache's: it is never invalidated by
/// other instances' writes, so its TTL bounds how stale it reads).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct L1Config {
    /// Entries at most, >= 1.
    pub capacity: u64,
    /// How long an entry is kept, > 0.
    pub ttl: SimDuration,
}

/// A request kind's use of a cache (see the module docs):
/// `cache: Some((cache: "redis", ttl: Some((base: "60s", jitter: 0.1)),
/// stampede: SingleFlight(wait: "500ms")))`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheUse {
    /// The [`Cache`](super::Cache) actor's name.
    pub cache: String,
    /// Give up on a cache command after this long: a get that times out is a miss (counted
    /// in `cache_errors_total`), a set or delete that does is forgotten. Default 2 s
    /// ([`DEFAULT_CACHE_TIMEOUT`]).
    #[serde(default = "default_timeout")]
    pub timeout: SimDuration,
    /// The TTL of entries the service writes, with jitter: `(base: "60s", jitter: 0.1)`.
    /// None (the default) never expires them.
    #[serde(default)]
    pub ttl: Option<Ttl>,
    /// Cache a `NotFound` answer for this long (negative caching, C3); None (the default)
    /// caches nothing for a missing key.
    #[serde(default)]
    pub negative_ttl: Option<SimDuration>,
    /// This kind writes the key (see [`WriteMode`]) instead of reading it. Default false.
    #[serde(default)]
    pub writes: bool,
    /// What a write does to the cache; default `Aside`. Only for `writes: true`.
    #[serde(default)]
    pub mode: WriteMode,
    /// A Bloom filter of the keys that exist, asked before anything else: a key it has never
    /// seen is answered `NotFound` at once (C3). Filled when the service is built with the
    /// ids `0..expected_keys`, the keys the database holds by the key-space convention (as a
    /// service would load its filter from a scan of the table). None (the default): no
    /// filter.
    #[serde(default)]
    pub bloom: Option<BloomConfig>,
    /// An in-process L1 cache; None (the default): none.
    #[serde(default)]
    pub l1: Option<L1Config>,
    /// Stampede protection; default `None`.
    #[serde(default)]
    pub stampede: Stampede,
    /// The size of an entry in bytes, > 0; default 1 KiB ([`DEFAULT_VALUE_SIZE`]).
    #[serde(default = "default_value_size")]
    pub value_size: u32,
    /// Background refreshes (`RefreshAhead`, `StaleWhileRevalidate`) in flight at most;
    /// default 16 ([`DEFAULT_REFRESHERS`]).
    #[serde(default = "default_refreshers")]
    pub refreshers: u32,
    /// Request coalescing (the C4 fix): one cache get per key in flight from this service
    /// instance; a lookup of a key whose get is in flight waits for that get and takes its
    /// answer (a hit answers it; a miss or an error sends it on to the recompute, under the
    /// kind's stampede protection). Go's `singleflight` around the cache read; a hot key then
    /// costs its shard one get per round trip per instance instead of one per request.
    /// Default false.
    #[serde(default)]
    pub coalesce_gets: bool,
}

fn default_timeout() -> SimDuration {
    DEFAULT_CACHE_TIMEOUT
}

fn default_value_size() -> u32 {
    DEFAULT_VALUE_SIZE
}

fn default_refreshers() -> u32 {
    DEFAULT_REFRESHERS
}

/// The most refresher slots one kind may have: every slot is a job slot of the service.
pub const MAX_REFRESHERS: u32 = 4_096;

impl CacheUse {
    /// The use of `cache` with every default: a plain cache-aside read without a TTL.
    pub fn new(cache: &str) -> CacheUse {
        CacheUse {
            cache: cache.to_string(),
            timeout: DEFAULT_CACHE_TIMEOUT,
            ttl: None,
            negative_ttl: None,
            writes: false,
            mode: WriteMode::Aside,
            bloom: None,
            l1: None,
            stampede: Stampede::None,
            value_size: DEFAULT_VALUE_SIZE,
            refreshers: DEFAULT_REFRESHERS,
            coalesce_gets: false,
        }
    }

    /// Refresher slots this kind needs: `refreshers` with a background refresh, else none.
    pub fn refresher_slots(&self) -> u32 {
        if self.stampede.refreshes_in_background() && !self.writes {
            self.refreshers
        } else {
            0
        }
    }
}

impl Validate for CacheUse {
    fn validate(&self) -> Result<(), ConfigError> {
        nonzero("timeout", self.timeout.as_nanos())?;
        if let Some(ttl) = &self.ttl {
            ttl.validate().map_err(|e| e.within("ttl"))?;
        }
        if self.negative_ttl == Some(SimDuration::ZERO) {
            return Err(ConfigError::Zero {
                field: "negative_ttl".into(),
            });
        }
        if let Some(bloom) = &self.bloom {
            bloom.validate().map_err(|e| e.within("bloom"))?;
        }
        if let Some(l1) = &self.l1 {
            nonzero("l1.capacity", l1.capacity)?;
            if l1.capacity > MAX_STORE_ENTRIES {
                return Err(ConfigError::Invalid {
                    field: "l1.capacity".into(),
                    reason: format!("{} is more than a store can hold", l1.capacity),
                });
            }
            nonzero("l1.ttl", l1.ttl.as_nanos())?;
        }
        nonzero("value_size", u64::from(self.value_size))?;
        if self.mode != WriteMode::Aside && !self.writes {
            return Err(ConfigError::Invalid {
                field: "mode".into(),
                reason: "a write mode is for a kind that writes: set `writes: true`".into(),
            });
        }
        let needs_ttl = |what: &str| ConfigError::Invalid {
            field: "stampede".into(),
            reason: format!("{what} acts before entries expire: set a `ttl`"),
        };
        if self.coalesce_gets && self.writes {
            return Err(ConfigError::Invalid {
                field: "coalesce_gets".into(),
                reason: "coalescing is for reads; a write kind makes no cache get".into(),
            });
        }
        match &self.stampede {
            Stampede::None => {}
            _ if self.writes => {
                return Err(ConfigError::Invalid {
                    field: "stampede".into(),
                    reason: "stampede protection is for reads; a write kind has none".into(),
                });
            }
            Stampede::SingleFlight { wait, .. } => {
                nonzero("stampede.SingleFlight.wait", wait.as_nanos())?;
            }
            Stampede::XFetch { beta } => {
                XFetchConfig { beta: *beta }
                    .validate()
                    .map_err(|e| e.within("stampede.XFetch"))?;
                if self.ttl.is_none() {
                    return Err(needs_ttl("XFetch"));
                }
            }
            Stampede::RefreshAhead { before } => {
                nonzero("stampede.RefreshAhead.before", before.as_nanos())?;
                let Some(ttl) = &self.ttl else {
                    return Err(needs_ttl("RefreshAhead"));
                };
                if *before >= ttl.base {
                    return Err(ConfigError::Invalid {
                        field: "stampede.RefreshAhead.before".into(),
                        reason: format!(
                            "{before} is not shorter than the TTL ({}): every hit would refresh",
                            ttl.base
                        ),
                    });
                }
            }
            Stampede::StaleWhileRevalidate { stale_for } => {
                nonzero(
                    "stampede.StaleWhileRevalidate.stale_for",
                    stale_for.as_nanos(),
                )?;
                if self.ttl.is_none() {
                    return Err(needs_ttl("StaleWhileRevalidate"));
                }
            }
        }
        if self.stampede.refreshes_in_background()
            && !(1..=MAX_REFRESHERS).contains(&self.refreshers)
        {
            return Err(ConfigError::Invalid {
                field: "refreshers".into(),
                reason: format!("{} must be in 1..={MAX_REFRESHERS}", self.refreshers),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(text: &str) -> String {
        let c: CacheUse = match ron::from_str(text) {
            Ok(c) => c,
            Err(e) => panic!("{text}: {e}"),
        };
        c.validate()
            .expect_err(text)
            .field()
            .unwrap_or_default()
            .to_string()
    }

    #[test]
    fn defaults_are_the_baselines_and_rules_name_the_field() {
        let c: CacheUse = ron::from_str(r#"(cache: "redis")"#).expect("parses");
        assert_eq!(c, CacheUse::new("redis"));
        assert!(c.validate().is_ok());
        assert_eq!(c.timeout, SimDuration::from_secs(2));
        assert_eq!((c.ttl.clone(), c.negative_ttl), (None, None));
        assert_eq!(
            (c.stampede.clone(), c.mode),
            (Stampede::None, WriteMode::Aside)
        );
        assert_eq!((c.value_size, c.refresher_slots()), (1_024, 0));
        let c: CacheUse = ron::from_str(
            r#"(cache: "r", ttl: Some((base: "10s", jitter: 0.2)), negative_ttl: Some("1s"),
                bloom: Some((expected_keys: 1000)), l1: Some((capacity: 100, ttl: "1s")),
                stampede: StaleWhileRevalidate(stale_for: "5s"), refreshers: 4)"#,
        )
        .expect("parses");
        assert!(c.validate().is_ok());
        assert_eq!(c.stampede.stale_for(), SimDuration::from_secs(5));
        assert_eq!(c.refresher_slots(), 4);
        let x: CacheUse =
            ron::from_str(r#"(cache: "r", ttl: Some((base: "1s")), stampede: XFetch())"#)
                .expect("parses");
        assert_eq!(x.stampede, Stampede::XFetch { beta: 1.0 });
        assert!(ron::from_str::<CacheUse>(r#"(cache: "r", tll: None)"#).is_err());

        let ttl = r#"ttl: Some((base: "10s"))"#;
        assert_eq!(field(r#"(cache: "r", timeout: "0s")"#), "timeout");
        assert_eq!(
            field(r#"(cache: "r", ttl: Some((base: "0s")))"#),
            "ttl.base"
        );
        assert_eq!(
            field(r#"(cache: "r", negative_ttl: Some("0s"))"#),
            "negative_ttl"
        );
        assert_eq!(
            field(r#"(cache: "r", bloom: Some((expected_keys: 0)))"#),
            "bloom.expected_keys"
        );
        assert_eq!(
            field(r#"(cache: "r", l1: Some((capacity: 0, ttl: "1s")))"#),
            "l1.capacity"
        );
        assert_eq!(
            field(r#"(cache: "r", l1: Some((capacity: 5, ttl: "0s")))"#),
            "l1.ttl"
        );
        assert_eq!(field(r#"(cache: "r", value_size: 0)"#), "value_size");
        assert_eq!(field(r#"(cache: "r", mode: WriteThrough)"#), "mode");
        assert_eq!(
            field(r#"(cache: "r", writes: true, stampede: SingleFlight(wait: "1s"))"#),
            "stampede"
        );
        assert_eq!(
            field(r#"(cache: "r", stampede: SingleFlight(wait: "0s"))"#),
            "stampede.SingleFlight.wait"
        );
        assert_eq!(
            field(r#"(cache: "r", stampede: XFetch(beta: 1.0))"#),
            "stampede"
        );
        assert_eq!(
            field(&format!(
                r#"(cache: "r", {ttl}, stampede: XFetch(beta: -1.0))"#
            )),
            "stampede.XFetch.beta"
        );
        assert_eq!(
            field(&format!(
                r#"(cache: "r", {ttl}, stampede: RefreshAhead(before: "10s"))"#
            )),
            "stampede.RefreshAhead.before"
        );
        assert_eq!(
            field(r#"(cache: "r", stampede: StaleWhileRevalidate(stale_for: "1s"))"#),
            "stampede"
        );
        assert_eq!(
            field(&format!(
                r#"(cache: "r", {ttl}, stampede: RefreshAhead(before: "1s"), refreshers: 0)"#
            )),
            "refreshers"
        );
        let w: CacheUse =
            ron::from_str(r#"(cache: "r", writes: true, mode: WriteAround)"#).expect("parses");
        assert!(w.validate().is_ok());
    }
}
