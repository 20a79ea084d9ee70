//! Services, databases and the calls between them: the `Rpc` message family and its components.
//!
//! Request/response calls with the mechanisms behind the service failure modes of the catalogue
//! (cascading timeouts, retry storms, connection-pool exhaustion, thundering herds, traffic
//! spikes): a workload [`Client`], a [`Service`] with a bounded worker pool and queue that
//! holds a worker for the whole of its downstream calls, named client-side connection pools in
//! front of a [`Database`] whose queries slow down with concurrency (and, optionally, run as
//! optimistic transactions that conflict), and a [`LoadBalancer`].
//! The service's overload controls (deadline-aware shedding, dropping expired work, deadline
//! propagation, fallbacks, a Retry-After hint on rejections) are off by default, so a
//! scenario's baseline shows the failure and its fix variants switch them on. So are the
//! client's: retries ([`RetryPolicy`]: backoff, jitter, a [`RetryBudget`], honouring
//! Retry-After) and a [`CircuitBreaker`] ([`BreakerConfig`]), which a service can also put on
//! each downstream call, and a [`TokenBucket`] rate limiter at a service's door. All four are
//! pure state machines in `resilience.rs` (time and the caller's stream in, decisions out), so
//! any component can embed them. Every component is an ordinary actor
//! generic over `M: Carry<Rpc>` and built from a serde config (`deny_unknown_fields`,
//! durations as `"250ms"`, rates as `"200/s"`, distributions as [`Dist`]) whose `validate()`
//! names the offending field (`retry.backoff.Exponential.cap`).
//!
//! Configs name their peers by actor name, as scenario files do; a component resolves the names
//! once in `on_start` (so actors can be spawned in any order and may call each other in cycles).
//! A name that resolves to no actor is a wiring bug and panics with the field's path; check a
//! config against a built `Sim` beforehand with its `targets()`.
//!
//! Request kinds are indices into the callee's table on the wire, but configs may name them
//! ([`KindRef`]): whoever assembles the system resolves the names against the callee's
//! `kind_names()` through the configs' `kind_refs_mut()` before building the components, which
//! take indices only.

mod balancer;
mod client;
mod database;
pub mod deployment;
mod resilience;
mod service;

use std::fmt;
use std::str::FromStr;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use balancer::{HealthCheck, LoadBalancer, LoadBalancerConfig, Policy, SlowStart};
pub use client::{Arrivals, Client, ClientConfig, Mix};
pub use database::{Contention, Database, DatabaseConfig, QueryConfig};
pub use deployment::{DeploymentConfig, ServiceDeployment};
pub use resilience::{
    Backoff, BreakerConfig, BreakerState, CircuitBreaker, Jitter, RetryBudget, RetryBudgetState,
    RetryPolicy, TokenBucket, TokenBucketConfig,
};
pub use service::{
    CallConfig, DEFAULT_RESTART_AFTER, DEFAULT_RESTART_AFTER_MAX, KindConfig, MemoryConfig,
    PoolConfig, QueueDiscipline, RESTART_BACKOFF_RESET, Service, ServiceConfig, Warmup,
};

use crate::actor::{ActorId, Ctx};
use crate::dist::{Dist, DistError, Sampler};
use crate::engine::time::{SimDuration, SimTime};
use crate::model::Carry;

/// The messages of the family. Requests and responses travel between actors; `Tick`s are the
/// components' own timer payloads (they travel through `M::wrap` like the rest). Cache
/// commands and their replies are the sub-protocol a service speaks to a
/// [`Cache`](crate::model::cache::Cache): get, set and delete by key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rpc {
    Request(Request),
    Response(Response),
    Tick(Tick),
    CacheRequest(CacheRequest),
    CacheReply(CacheReply),
}

/// A command to a cache. `id` is chosen by the caller and unique among its outstanding
/// commands; the cache answers to `reply_to` with a [`CacheReply`] of the same id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheRequest {
    pub id: u64,
    pub reply_to: ActorId,
    pub key: u64,
    pub op: CacheOp,
}

/// What a cache command does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheOp {
    /// Look the key up.
    Get,
    /// Store an entry for the key: expiring `ttl` after it is written (None: never), `size`
    /// bytes, produced by a recompute that took `delta` (kept for XFetch), `negative` if it
    /// records that the key does not exist (negative caching).
    Set {
        ttl: Option<SimDuration>,
        delta: SimDuration,
        size: u32,
        negative: bool,
    },
    /// Remove the key's entry (invalidation after a write).
    Delete,
}

/// The answer to the cache command `id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheReply {
    pub id: u64,
    pub result: CacheResult,
}

/// How a cache command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheResult {
    /// A get found a fresh entry.
    Hit(CachedValue),
    /// A get found an expired entry still in the store's stale window.
    Stale(CachedValue),
    /// A get found nothing.
    Miss,
    /// A set was written (on every replica, for a replicated key).
    Stored,
    /// A set was refused by a store at its limit (`noeviction`), or was too large.
    Refused,
    /// A delete ran (whether or not there was an entry).
    Deleted,
    /// The shard's command queue was full: the command was not run.
    Rejected,
    /// The shard is down (OOM-killed and not yet restarted): the command was not run.
    Unavailable,
}

impl CacheResult {
    /// Whether the command ran: not `Rejected` nor `Unavailable` (a refused set ran, and
    /// failed).
    pub fn ran(self) -> bool {
        !matches!(self, CacheResult::Rejected | CacheResult::Unavailable)
    }
}

/// What a get returns about the entry it found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CachedValue {
    /// When it stops being fresh; None never.
    pub expires_at: Option<SimTime>,
    /// How long the recompute that produced it took (XFetch's `delta`).
    pub delta: SimDuration,
    /// A negative entry: the key does not exist.
    pub negative: bool,
}

/// The key of a request about no key in particular (keyless traffic, health probes): `u64::MAX`.
/// No key space draws it (existing keys are below 2^63, missing ones below `u64::MAX`; see
/// [`KeySpace`](crate::model::cache::KeySpace)), so a keyed request can never be mistaken for
/// a keyless one.
pub const NO_KEY: u64 = u64::MAX;

/// A call. `id` is chosen by the caller and unique among its outstanding calls; the callee
/// answers to `reply_to` with the same id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    pub id: u64,
    /// The request type: an index into the callee's table of kinds.
    pub kind: u32,
    pub reply_to: ActorId,
    /// When the original caller created the request (kept across hops for end-to-end latency).
    pub created: SimTime,
    /// When the caller will give up, if it will.
    pub deadline: Option<SimTime>,
    /// The key the request is about: drawn by a [`Client`] with `keys`, carried unchanged by
    /// services (to every downstream call of the request) and load balancers, and looked up
    /// by a [`Database`] and a cache; [`NO_KEY`] for keyless traffic.
    pub key: u64,
}

/// The answer to the request `id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Response {
    pub id: u64,
    pub status: Status,
    /// The server's hint to wait at least this long before trying again (HTTP Retry-After on a
    /// 429 or 503): a [`Service`] with `retry_after` sets it on its rejections (queue full,
    /// shed by deadline, rate limited), and a [`Client`] (or a service's call) whose
    /// [`RetryPolicy`] has `respect_retry_after` waits at least this long.
    pub retry_after: Option<SimDuration>,
}

/// How a call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// Served, and the answer is that the request's key does not exist: a [`Database`]'s
    /// answer to a query for a missing key, passed up by the services that made it (HTTP's
    /// 404). It is a success for every purpose but the payload: breakers count it as one, and
    /// nothing retries it, because asking again gives the same answer.
    NotFound,
    Err(ErrorKind),
}

impl Status {
    /// Whether the call was served: `Ok` or `NotFound`.
    pub fn is_success(self) -> bool {
        matches!(self, Status::Ok | Status::NotFound)
    }
}

/// Why a call failed. Configs name kinds as written here (`retry_on: [Rejected, Timeout]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ErrorKind {
    /// No capacity: every worker busy and the queue full, or (with `shed_by_deadline`) the
    /// estimated wait longer than the time left before the request's deadline.
    Rejected,
    /// The caller (or a call the callee made) gave up waiting, or (with `drop_expired`) the
    /// request's deadline passed before a worker took it.
    Timeout,
    /// No database connection within the pool's `acquire_timeout`.
    PoolTimeout,
    /// The callee refused the call outright (beyond `max_connections`, unknown kind).
    Unavailable,
    /// An optimistic transaction lost its race: another write committed to the record after
    /// this one read it and before it could commit (a [`Database`] with `optimistic`; in real
    /// systems DynamoDB's `ConditionalCheckFailedException`, PostgreSQL's SQLSTATE 40001
    /// "could not serialize access due to concurrent update"). Trying again means running the
    /// transaction again from its read, which a resent request here does.
    Conflict,
}

/// Timer payloads of the family's components. Each names the slot it belongs to and, where a
/// slot is reused, the sequence number of the job it was set for, so a timer that outlived its
/// job is recognised and ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tick {
    /// Client: the next open-loop arrival is due.
    Arrive,
    /// Client: the rate schedule moves to step `n`.
    RateStep(u32),
    /// Client: closed-loop user `n` has finished thinking.
    UserWake(u32),
    /// Client: the attempt `id` has timed out.
    ClientTimeout(u64),
    /// Client: the backoff after the failed attempt `id` is over; send the request again.
    RetryDue(u64),
    /// Client or service: a circuit breaker's cooldown may be over (to move it to half-open
    /// on time). A service with several breakers advances each one that is due.
    BreakerCooldown,
    /// Service: worker `worker` finished the CPU work of job `seq`.
    WorkDone { worker: u32, seq: u64 },
    /// Service: the downstream call of job `seq` timed out.
    CallTimeout { worker: u32, seq: u64 },
    /// Service: job `seq` waited `acquire_timeout` for a pooled connection.
    PoolTimeout { worker: u32, seq: u64 },
    /// Service: the deadline of job `seq` has passed (with `propagate_deadline`): cancel it.
    JobDeadline { worker: u32, seq: u64 },
    /// Service: the backoff before the next attempt of job `seq`'s current downstream call is
    /// over; make the attempt.
    CallRetryDue { worker: u32, seq: u64 },
    /// Database: query `id` (the database's own number) is done.
    QueryDone(u64),
    /// Load balancer: forwarded call or health probe `id` passed its deadline; forget it (a
    /// probe that ends this way failed).
    Expire(u64),
    /// Load balancer: send the next health probe to backend `n` (its index in `backends`).
    Probe(u32),
    /// Cache: shard `shard` finished the command at the head of its queue; `seq` is the
    /// shard's command number, so a timer from before an OOM kill of the shard is ignored.
    ShardDone { shard: u32, seq: u64 },
    /// Cache: shard `shard` is back after an OOM kill.
    ShardRestart(u32),
    /// Cache: time for the active expiry sweep of every shard.
    Sweep,
    /// Service: the cache command of job `seq` timed out.
    CacheTimeout { worker: u32, seq: u64 },
    /// Service: job `seq` has waited for another request's database query (single-flight)
    /// as long as it may.
    FlightTimeout { worker: u32, seq: u64 },
    /// Service: rate-limited pool `pool` may hand out its next permit.
    PoolIssue { pool: u32 },
    /// Deployment: the controller's timer `kind` (an autoscaler poll, a pod provisioned),
    /// `seq` naming the pod and its epoch where it matters.
    Deployment { kind: u32, seq: u64 },
}

/// Why a component config cannot be used. Every variant names the field, as a path from the
/// config's root (`kinds[1].calls[0].timeout`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A count or duration that must be positive is zero.
    #[error("{field} must be > 0")]
    Zero { field: String },
    /// A list that needs at least one entry is empty.
    #[error("{field} must not be empty")]
    Empty { field: String },
    /// A distribution parameter is invalid.
    #[error("{field}: {source}")]
    Dist {
        field: String,
        #[source]
        source: DistError,
    },
    /// Any other rule; `reason` says what to change.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    /// A config names an actor that does not exist.
    #[error("{field}: no actor is called `{name}`")]
    UnknownTarget { field: String, name: String },
    /// The RON text did not parse (unknown field, wrong type, bad rate or duration string).
    #[error("{0}")]
    Ron(#[from] ron::error::SpannedError),
}

impl ConfigError {
    /// The same error about a field of the struct at `prefix`: `max_attempts` becomes
    /// `retry.max_attempts`.
    pub(crate) fn within(self, prefix: &str) -> ConfigError {
        let under = |field: String| format!("{prefix}.{field}");
        match self {
            ConfigError::Zero { field } => ConfigError::Zero {
                field: under(field),
            },
            ConfigError::Empty { field } => ConfigError::Empty {
                field: under(field),
            },
            ConfigError::Dist { field, source } => ConfigError::Dist {
                field: under(field),
                source,
            },
            ConfigError::Invalid { field, reason } => ConfigError::Invalid {
                field: under(field),
                reason,
            },
            ConfigError::UnknownTarget { field, name } => ConfigError::UnknownTarget {
                field: under(field),
                name,
            },
            ConfigError::Ron(e) => ConfigError::Ron(e),
        }
    }

    /// The path of the offending field, when the error is about one field.
    pub fn field(&self) -> Option<&str> {
        match self {
            ConfigError::Zero { field }
            | ConfigError::Empty { field }
            | ConfigError::Dist { field, .. }
            | ConfigError::Invalid { field, .. }
            | ConfigError::UnknownTarget { field, .. } => Some(field),
            ConfigError::Ron(_) => None,
        }
    }
}

/// A component config: checkable before the run.
pub trait Validate {
    fn validate(&self) -> Result<(), ConfigError>;
}

/// Parses and validates a config from RON: syntax, unknown fields and then the semantic rules.
pub fn from_ron<T: DeserializeOwned + Validate>(text: &str) -> Result<T, ConfigError> {
    let config: T = ron::from_str(text)?;
    config.validate()?;
    Ok(config)
}

/// Compiles a distribution, naming the field on error.
pub(crate) fn compile(field: impl fmt::Display, dist: &Dist) -> Result<Sampler, ConfigError> {
    dist.compile().map_err(|source| ConfigError::Dist {
        field: field.to_string(),
        source,
    })
}

pub(crate) fn nonzero(field: impl fmt::Display, value: u64) -> Result<(), ConfigError> {
    if value == 0 {
        return Err(ConfigError::Zero {
            field: field.to_string(),
        });
    }
    Ok(())
}

/// Resolves an actor name from inside a handler. A missing name is a wiring bug (configs can be
/// checked before the run with `targets()`), so it panics naming the field.
pub(crate) fn resolve<M: Carry<Rpc>>(ctx: &Ctx<'_, M>, field: &str, name: &str) -> ActorId {
    match ctx.lookup(name) {
        Some(id) => id,
        None => panic!(
            "{}: {field} names `{name}`, but no actor has that name",
            ctx.name()
        ),
    }
}

/// Checks that every `(field, name)` resolves.
pub fn check_targets<'a>(
    targets: impl IntoIterator<Item = (String, &'a str)>,
    known: impl Fn(&str) -> bool,
) -> Result<(), ConfigError> {
    for (field, name) in targets {
        if !known(name) {
            return Err(ConfigError::UnknownTarget {
                field,
                name: name.to_string(),
            });
        }
    }
    Ok(())
}

/// Metric-name suffixes the metrics module derives from a histogram's name: a request kind or a
/// pool may not be called one of these, or `latency.<kind>` (`pool_wait.<pool>`) would clash
/// with `latency`'s (`pool_wait`'s) own series.
const RESERVED_SUFFIXES: [&str; 4] = ["count", "max", "p50", "p99"];

/// Checks a name that becomes a metric-name suffix (`.<name>`); `what` says what it names.
pub(crate) fn check_suffix_name(
    field: impl fmt::Display,
    name: &str,
    what: &str,
) -> Result<(), ConfigError> {
    let valid = !name.is_empty() && !name.contains('.') && !RESERVED_SUFFIXES.contains(&name);
    if !valid {
        return Err(ConfigError::Invalid {
            field: field.to_string(),
            reason: format!(
                "`{name}` cannot name a {what}: it must be non-empty, contain no `.`, and not be \
                 one of {RESERVED_SUFFIXES:?}"
            ),
        });
    }
    Ok(())
}

pub(crate) fn check_kind_name(field: impl fmt::Display, name: &str) -> Result<(), ConfigError> {
    check_suffix_name(field, name, "request kind")
}

/// Checks that no two entries of a table (`field_of(i)` naming entry `i`) share a name: a
/// [`KindRef::Name`] must pick one entry.
pub(crate) fn check_unique_names<'a>(
    names: impl IntoIterator<Item = &'a str>,
    field_of: impl Fn(usize) -> String,
) -> Result<(), ConfigError> {
    let mut seen: Vec<&str> = Vec::new();
    for (i, name) in names.into_iter().enumerate() {
        if let Some(j) = seen.iter().position(|s| *s == name) {
            return Err(ConfigError::Invalid {
                field: field_of(i),
                reason: format!("`{name}` is already the name of {}", field_of(j)),
            });
        }
        seen.push(name);
    }
    Ok(())
}

/// `` `a`, `b`, `c` `` for error messages.
pub(crate) fn quoted_list<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let quoted: Vec<String> = names.into_iter().map(|n| format!("`{n}`")).collect();
    quoted.join(", ")
}

// ---------------------------------------------------------------------------------------------
// KindRef
// ---------------------------------------------------------------------------------------------

/// A request kind as a config refers to it: an index into the callee's table (`kind: 2`) or
/// the kind's name (`kind: "checkout"`).
///
/// Serde reads a non-negative integer as `Index` and a string as `Name`, and writes each back
/// the same way. Components take indices only: a `Name` must be [`resolve`](KindRef::resolve)d
/// against the callee's kinds first, because the callee's table is not known to the caller's
/// config on its own.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KindRef {
    Index(u32),
    Name(String),
}

impl Default for KindRef {
    /// Kind 0, the kind a callee with one kind serves.
    fn default() -> Self {
        KindRef::Index(0)
    }
}

impl From<u32> for KindRef {
    fn from(index: u32) -> Self {
        KindRef::Index(index)
    }
}

impl From<&str> for KindRef {
    fn from(name: &str) -> Self {
        KindRef::Name(name.to_string())
    }
}

impl fmt::Display for KindRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KindRef::Index(i) => write!(f, "{i}"),
            KindRef::Name(name) => write!(f, "`{name}`"),
        }
    }
}

impl KindRef {
    /// The index of this kind in the callee's table, `names` (in table order). An index must be
    /// in range; a name must be one of `names`. The error says which kinds exist and suggests
    /// the closest name to a misspelt one.
    pub fn resolve(&self, names: &[&str]) -> Result<u32, String> {
        let known = if names.is_empty() {
            "the callee has no kinds".to_string()
        } else {
            format!("its kinds are {}", quoted_list(names.iter().copied()))
        };
        match self {
            KindRef::Index(i) if (*i as usize) < names.len() => Ok(*i),
            KindRef::Index(i) => Err(format!("kind index {i} is out of range: {known}")),
            KindRef::Name(name) => match names.iter().position(|n| n == name) {
                // The table length is bounded by memory and a `u32` index on the wire.
                Some(i) => u32::try_from(i).map_err(|_| format!("kind `{name}` is past u32")),
                None => {
                    let hint = crate::fault::suggest(name, names.iter().copied())
                        .map(|s| format!(" (did you mean `{s}`?)"))
                        .unwrap_or_default();
                    Err(format!("no kind is called `{name}`{hint}; {known}"))
                }
            },
        }
    }

    /// The index, or the error a component gives for a name left unresolved at `field`.
    pub(crate) fn index(&self, field: impl fmt::Display) -> Result<u32, ConfigError> {
        match self {
            KindRef::Index(i) => Ok(*i),
            KindRef::Name(name) => Err(ConfigError::Invalid {
                field: field.to_string(),
                reason: format!(
                    "the kind name `{name}` must be resolved against the callee's kinds first \
                     (`KindRef::resolve` with the callee's `kind_names()`, as the scenario \
                     builder does), or written as an index"
                ),
            }),
        }
    }
}

impl Serialize for KindRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            KindRef::Index(i) => serializer.serialize_u32(*i),
            KindRef::Name(name) => serializer.serialize_str(name),
        }
    }
}

impl<'de> Deserialize<'de> for KindRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<KindRef, D::Error> {
        struct Visitor;

        impl serde::de::Visitor<'_> for Visitor {
            type Value = KindRef;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a request kind: a non-negative integer index or a kind name string")
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<KindRef, E> {
                u32::try_from(v)
                    .map(KindRef::Index)
                    .map_err(|_| E::custom(format!("kind index {v} is larger than {}", u32::MAX)))
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<KindRef, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(format!(
                        "kind index {v} is negative: write an index >= 0 or a kind name"
                    ))),
                }
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<KindRef, E> {
                Ok(KindRef::Name(v.to_string()))
            }

            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<KindRef, E> {
                Ok(KindRef::Name(v))
            }
        }

        deserializer.deserialize_any(Visitor)
    }
}

/// Sends `Response { id, status }`, with no Retry-After hint, to `to`.
pub(crate) fn reply<M: Carry<Rpc>>(ctx: &mut Ctx<'_, M>, to: ActorId, id: u64, status: Status) {
    reply_retry_after(ctx, to, id, status, None);
}

/// Sends `Response { id, status, retry_after }` to `to`.
pub(crate) fn reply_retry_after<M: Carry<Rpc>>(
    ctx: &mut Ctx<'_, M>,
    to: ActorId,
    id: u64,
    status: Status,
    retry_after: Option<SimDuration>,
) {
    let response = Response {
        id,
        status,
        retry_after,
    };
    ctx.send(to, M::wrap(Rpc::Response(response)));
}

// ---------------------------------------------------------------------------------------------
// Rate
// ---------------------------------------------------------------------------------------------

/// Events per unit of time, written `"200/s"`, `"5/ms"`, `"1000/m"` (units `ns`, `us`, `ms`,
/// `s`, `m`, `h`; the count may be fractional, `"0.5/s"`). Always finite and > 0.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    /// As written: `count` events per `per`.
    count: f64,
    per: SimDuration,
}

/// Why a rate string or value is not a rate.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RateError {
    #[error("invalid rate \"{input}\": expected <count>/<unit> such as \"200/s\" or \"5/ms\"")]
    Syntax { input: String },
    #[error("invalid rate \"{input}\": `{count}` is not a number")]
    Count { input: String, count: String },
    #[error("invalid rate \"{input}\": unknown unit `{unit}`; use ns, us, ms, s, m or h")]
    Unit { input: String, unit: String },
    #[error("invalid rate \"{input}\": the count must be finite and > 0")]
    NotPositive { input: String },
}

impl Rate {
    /// `per_sec` events a second.
    pub fn per_sec(per_sec: f64) -> Result<Rate, RateError> {
        if !(per_sec.is_finite() && per_sec > 0.0) {
            return Err(RateError::NotPositive {
                input: format!("{per_sec}/s"),
            });
        }
        Ok(Rate {
            count: per_sec,
            per: SimDuration::from_secs(1),
        })
    }

    /// Events per second.
    pub fn as_per_sec(self) -> f64 {
        self.count / self.per.as_secs_f64()
    }

    /// The mean gap between events, in nanoseconds (fractional: rounding happens once, when a
    /// timer is set, so constant-rate arrivals do not drift).
    pub fn gap_nanos(self) -> f64 {
        let gap = self.per.as_nanos() as f64 / self.count;
        debug_assert!(gap.is_finite() && gap > 0.0);
        gap
    }
}

impl FromStr for Rate {
    type Err = RateError;

    fn from_str(s: &str) -> Result<Rate, RateError> {
        let input = s.to_string();
        let Some((count, unit)) = s.trim().split_once('/') else {
            return Err(RateError::Syntax { input });
        };
        let (count, unit) = (count.trim(), unit.trim());
        let value: f64 = count.parse().map_err(|_| RateError::Count {
            input: input.clone(),
            count: count.to_string(),
        })?;
        let per = match unit {
            "ns" => SimDuration::from_nanos(1),
            "us" | "µs" => SimDuration::from_micros(1),
            "ms" => SimDuration::from_millis(1),
            "s" => SimDuration::from_secs(1),
            "m" | "min" => SimDuration::from_mins(1),
            "h" => SimDuration::from_hours(1),
            _ => {
                return Err(RateError::Unit {
                    input,
                    unit: unit.to_string(),
                });
            }
        };
        if !(value.is_finite() && value > 0.0) {
            return Err(RateError::NotPositive { input });
        }
        Ok(Rate { count: value, per })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.per.as_nanos() {
            1 => "ns",
            1_000 => "us",
            1_000_000 => "ms",
            1_000_000_000 => "s",
            60_000_000_000 => "m",
            _ => "h",
        };
        write!(f, "{}/{unit}", self.count)
    }
}

impl Serialize for Rate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Rate, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_with_units_and_round_trip() {
        let r: Rate = "200/s".parse().unwrap();
        assert_eq!(r.as_per_sec(), 200.0);
        assert_eq!(r.gap_nanos(), 5_000_000.0);
        assert_eq!("5/ms".parse::<Rate>().unwrap().as_per_sec(), 5_000.0);
        assert_eq!(
            "1000/m".parse::<Rate>().unwrap().as_per_sec(),
            1_000.0 / 60.0
        );
        assert_eq!("0.5 / s".parse::<Rate>().unwrap().as_per_sec(), 0.5);
        assert_eq!(ron::to_string(&r).unwrap(), "\"200/s\"");
        assert_eq!(ron::from_str::<Rate>("\"200/s\"").unwrap(), r);
    }

    #[test]
    fn bad_rates_say_what_is_wrong() {
        let err = |s: &str| s.parse::<Rate>().unwrap_err();
        assert!(matches!(err("200"), RateError::Syntax { .. }));
        assert!(matches!(err("x/s"), RateError::Count { .. }));
        assert!(matches!(err("5/fortnight"), RateError::Unit { .. }));
        assert!(matches!(err("0/s"), RateError::NotPositive { .. }));
        assert!(matches!(err("-3/s"), RateError::NotPositive { .. }));
        assert!(matches!(err("NaN/s"), RateError::NotPositive { .. }));
        assert!(Rate::per_sec(0.0).is_err());
        assert!(Rate::per_sec(f64::INFINITY).is_err());
        let msg = ron::from_str::<Rate>("\"-1/s\"").unwrap_err().to_string();
        assert!(msg.contains("> 0"), "{msg}");
    }
}
