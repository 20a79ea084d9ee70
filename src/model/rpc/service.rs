//! A service: `workers` threads in front of a bounded queue, each request doing some CPU work
//! and then a sequence of synchronous downstream calls *while holding its worker*, some of them
//! through named pools (connection pools or bulkheads), under an optional memory limit.
//!
//! Holding the worker is the mechanism of cascading timeouts (catalogue S1): when a dependency
//! slows down, every worker ends up waiting on it, and requests that never touch it queue behind
//! them. Holding a pooled connection for the whole query is the mechanism of pool exhaustion
//! (S3): throughput through a pool is capped at `pool_size / query time`, and waiters time out.
//! Pools are named and a call names the one it uses, so reads and writes (or a replica and the
//! primary) can have separate pools and a slow one exhausts only its own. A pool is also a
//! semaphore bulkhead: a pool per dependency caps the workers that dependency can hold, and with
//! `acquire_timeout: "0ms"` a call that finds no free permit fails at once (`PoolTimeout`)
//! instead of waiting (S1's bulkhead fix).
//!
//! Holding memory per request is the mechanism of OOM crashes (S5) and restart loops (S4): with
//! `memory`, each queued or held request holds `per_request` bytes, an unbounded queue under
//! overload grows past `limit`, and the service is OOM-killed (everything queued or in flight
//! lost, callers left to time out) and restarted by the orchestrator after Kubernetes'
//! CrashLoopBackOff delay (10 s, doubling to 5 min). It comes back empty and, with `warmup`,
//! slower for a while (cold caches, JIT), so the load that built up while it was down can kill
//! it again: the loop emerges from the load, nothing scripts it.
//!
//! Overload controls, each off by default so that a baseline shows the failure:
//! - `fallback` on a call: a failed call (error response, call timeout, pool timeout) does not
//!   fail the request; the job goes on as if the call had returned a cached or default answer,
//!   and the caller sees `Ok` (graceful degradation, S1).
//! - `drop_expired`: a request whose deadline has passed when a worker would take it (or when it
//!   arrives) is answered `Timeout` without any work: its caller has given up, so serving it
//!   would only delay the requests behind it.
//! - `shed_by_deadline`: on arrival with every worker busy, a request whose estimated answer time
//!   exceeds the time left before its deadline is rejected at once (S2, S6: "reject when the
//!   queue wait exceeds the client timeout"). See [`ServiceConfig::shed_by_deadline`] for the
//!   estimate and why it carries a margin.
//! - `propagate_deadline`: a downstream call inherits the request's deadline when it is earlier
//!   than the call's own timeout, so callees (with `drop_expired` or `shed_by_deadline`) can skip
//!   work whose original caller has given up; and a job still held when its deadline passes is
//!   cancelled then (CPU work stopped, a call in flight abandoned, the worker freed; counted in
//!   `cancelled_total`), so a callee stops working on a request whose caller has given up.
//! - `queue`: `Fifo` (default), `Lifo` (newest first: its caller is the most likely to still be
//!   waiting) or `AdaptiveLifo(threshold)` (FIFO until more than `threshold` are queued, then
//!   LIFO: Facebook's adaptive LIFO, S2).
//! - `breaker` on a call: a [`CircuitBreaker`] per downstream target. Open, it fails the call
//!   at once, without sending it or taking a pool permit, so a dead or slow dependency stops
//!   holding workers (S1); with `fallback` the request is answered at once, degraded (the
//!   standard breaker + fallback pair).
//! - `retry` on a call: a [`RetryPolicy`] applied while the worker is held, as a synchronous
//!   client library retries: it multiplies the load on the dependency and the time each
//!   worker is held (retry amplification down a call chain, S2), unless a budget caps it.
//! - `rate_limit`: a [`TokenBucket`] at the door; a request beyond its rate is rejected at
//!   once (S5, S8).
//! - `retry_after`: a Retry-After hint on every `Rejected` reply (queue full, shed, rate
//!   limited).
//!
//! Fields and metrics added with these mechanisms, all off (or absent) by default:
//! `queue` ([`QueueDiscipline`]); `memory` ([`MemoryConfig`]: `limit`, `per_request`, `base`,
//! `restart_after`, `restart_after_max`), with the `memory_bytes` gauge and the
//! `oom_kills_total` counter; `warmup` ([`Warmup`]: `duration`, `factor`); `cancelled_total`;
//! and pools' `acquire_timeout` may be 0. Then, per call, `breaker` ([`BreakerConfig`]) and
//! `retry` ([`RetryPolicy`]), with, per target `<target>`, the `breaker_state.<target>` gauge
//! and the `breaker_rejected_total.<target>`, `call_attempts_total.<target>`,
//! `call_retries_total.<target>` and `call_retry_budget_exhausted_total.<target>` counters;
//! and `rate_limit` ([`TokenBucketConfig`]) with `rate_limited_total`.
//!
//! The state machines are the client's, from `resilience.rs`; this module only wires them
//! into the job's phases: an attempt asks the breaker (`attempt`), takes its permit and is
//! sent (`send_call`), ends (`attempt_ended`: recorded, then retried after a backoff or
//! ended for good), and only then does the call end (`call_ended`: next call, fallback, or
//! failure).
//!
//! Not yet here: CoDel-style queue timeouts; a breaker that also counts slow calls
//! (resilience4j's slow-call rate); here a slow call is a failure only once it times out,
//! so a breaker needs a call timeout shorter than the slowness it is to catch.

use std::collections::{BTreeMap, VecDeque};
use std::marker::PhantomData;

use serde::{Deserialize, Serialize};

use super::resilience::{BreakerState, RetryBudgetState};
use super::{
    BreakerConfig, CircuitBreaker, ConfigError, ErrorKind, KindRef, Rate, Request, Response,
    RetryPolicy, Rpc, Status, Tick, TokenBucket, TokenBucketConfig, Validate, check_kind_name,
    check_suffix_name, check_unique_names, compile, nonzero, quoted_list, reply, reply_retry_after,
    resolve,
};
use crate::actor::{Actor, ActorId, Ctx, Durable, TimerId};
use crate::dist::{Dist, Sampler};
use crate::engine::time::{SimDuration, SimTime};
use crate::metrics::{CounterId, GaugeId, HistogramId};
use crate::model::Carry;
use crate::model::cache::CacheUse;
#[cfg(doc)]
use crate::model::rpc::NO_KEY;

mod aside;

use aside::{CacheKind, CacheMetrics, CacheStage};

/// HikariCP's `maximumPoolSize` default, 10 ("Frequently used" properties in the HikariCP
/// README, github.com/brettwooldridge/HikariCP: "*Default: 10*").
pub const DEFAULT_POOL_SIZE: u32 = 10;

/// HikariCP's `connectionTimeout` default, 30 s (same README: "*Default: 30000 (30
/// seconds)*"), the longest a caller waits for a connection.
pub const DEFAULT_ACQUIRE_TIMEOUT: SimDuration = SimDuration::from_secs(30);

/// Gain of a new sample in the smoothed hold time, 1/32: a quarter of TCP's `alpha` for SRTT
/// (1/8, RFC 6298 §2.3). TCP gets one sample per round trip; a service gets `workers` per hold
/// time and every arrival reads the estimate, so its noise moves the shedding threshold. The
/// smoothed mean of exponential hold times has a relative standard deviation of
/// `sqrt(alpha / (2 - alpha))`: 26% at 1/8, 12.6% at 1/32. Under the 10x overload of
/// `tests/it/rpc.rs` that is 84% of served requests in time at 1/8 against 94-96% at 1/32
/// (a model of the threshold's noise predicts 89% and 98%). The price: a change of hold time
/// (a `Slow` fault) is followed to 63% within 32 completions.
const HOLD_MEAN_GAIN: f64 = 1.0 / 32.0;

/// Gain of a new sample in the smoothed mean deviation of the hold time, 1/16: RFC 6298's ratio
/// `beta = 2 alpha` (1/4 and 1/8, §2.3), scaled as [`HOLD_MEAN_GAIN`] is.
const HOLD_DEV_GAIN: f64 = 1.0 / 16.0;

/// Mean deviations of margin in the answer-time estimate: TCP's `K` in
/// `RTO = SRTT + K * RTTVAR`, 4 (RFC 6298 §2.2). For a normal spread a mean deviation is 0.8
/// standard deviations, so the margin is about 3.2 of them.
const SHED_MARGIN_DEVS: f64 = 4.0;

/// Kubernetes' CrashLoopBackOff initial delay, 10 s: "After containers in a Pod exit, the
/// kubelet restarts them with an exponential back-off delay (10s, 20s, 40s, …), that is capped
/// at five minutes" (Kubernetes documentation, Pod Lifecycle, "Container restart policy").
/// The kubelet restarts the very first crash of a container at once and only then starts
/// backing off; the model waits `restart_after` every time, so the first restart is 10 s later
/// than Kubernetes'.
pub const DEFAULT_RESTART_AFTER: SimDuration = SimDuration::from_secs(10);

/// Kubernetes' CrashLoopBackOff cap, 5 min (same page: "capped at five minutes";
/// `MaxContainerBackOff` in the kubelet).
pub const DEFAULT_RESTART_AFTER_MAX: SimDuration = SimDuration::from_secs(300);

/// How long a service must run without an OOM kill for the restart delay to start again from
/// `restart_after`: the kubelet's 10 minutes ("Once a container has executed for 10 minutes
/// without any problems, the kubelet resets the restart backoff timer for that container", same
/// page).
pub const RESTART_BACKOFF_RESET: SimDuration = SimDuration::from_secs(600);

/// One synchronous downstream call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallConfig {
    /// The callee's actor name.
    pub target: String,
    /// The request kind sent to it: an index into the callee's table or its name (resolved
    /// before the service is built; see [`KindRef`]).
    #[serde(default)]
    pub kind: KindRef,
    /// Give up (and fail the call with `Timeout`) after this long.
    pub timeout: SimDuration,
    /// The name of the pool (in [`ServiceConfig::pools`]) to acquire a connection from before the
    /// call; the connection is held until the call ends. None calls directly.
    #[serde(default)]
    pub pool: Option<String>,
    /// When the call fails (error response, call timeout, pool acquire timeout), carry on with
    /// the next call as if it had succeeded (a cached or default answer) instead of failing the
    /// request. The caller then sees `Ok`; the service counts `fallback_total` and, for the
    /// request, `degraded_total`. A call that the breaker refuses, or that has used up its
    /// retries, falls back the same way.
    #[serde(default)]
    pub fallback: bool,
    /// A circuit breaker in front of the call (`breaker: (window: 20, minimum_calls: 10,
    /// cooldown: "5s")`; `breaker: ()` takes resilience4j's defaults, [`BreakerConfig`]);
    /// None (the default) makes every call.
    ///
    /// The breaker belongs to the call's *target*, not to the entry: every entry that names
    /// the same target and sets `breaker` goes through one breaker, so their configs must be
    /// equal; an entry to that target without `breaker` neither asks it nor feeds it. Client
    /// libraries key breakers by dependency (resilience4j by the instance name a client is
    /// built for, Hystrix by command group, Envoy by upstream cluster), and for good reason:
    /// a dead dependency is dead for every kind of call, and the failures one kind sees should
    /// spare the others the timeouts.
    ///
    /// Open (or half-open with its probes out), the breaker fails an attempt at once with
    /// `Unavailable`, without sending it and without taking a pool permit; with `fallback`
    /// the job goes on at once, degraded. A refusal is not retried. An admitted attempt
    /// counts as a failure unless it is answered `Ok`: an error response (a `Rejected` from
    /// a full downstream queue too: it says the dependency is overloaded, and only fewer
    /// calls let it drain; resilience4j records every error by default), a call timeout, a
    /// pool timeout (the permits all held by calls that have not come back) or cancellation
    /// at the request's deadline while the attempt waits (which, with the propagated deadline,
    /// is the attempt's own timeout). An attempt admitted but never sent, because the
    /// request's deadline had already passed, counts as neither.
    #[serde(default)]
    pub breaker: Option<BreakerConfig>,
    /// Retry a failed attempt of the call (`retry: (max_attempts: 3, backoff: Fixed("50ms"),
    /// jitter: None)`; `retry: ()` takes the AWS SDKs' defaults, [`RetryPolicy`]); None (the
    /// default) never retries.
    ///
    /// The retry is synchronous, as in a client library called from a thread-per-request
    /// handler: the worker stays held through every attempt and every backoff, so retries
    /// inside a service amplify the load on the dependency (`max_attempts` times the calls
    /// when it is down) and hold the service's own workers for as long. Each attempt takes
    /// its own pool permit (released when it ends, held during no backoff) and asks the
    /// breaker again. The policy's budget is this entry's own: every call of the entry
    /// deposits, each of its retries withdraws. With `propagate_deadline`, every attempt's
    /// deadline is capped by the request's, and a retry whose backoff would end at or after
    /// the request's deadline is not made (nobody would wait for its answer): the call ends
    /// with its last failure then.
    #[serde(default)]
    pub retry: Option<RetryPolicy>,
}

/// One request kind the service handles.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindConfig {
    pub name: String,
    /// CPU work per request, scaled by `Slow` faults.
    pub service: Dist,
    /// Made in order after the CPU work, each only if the previous one succeeded (or fell back).
    #[serde(default)]
    pub calls: Vec<CallConfig>,
    /// Cache-aside in front of the calls ([`CacheUse`]): after the CPU work a read looks its
    /// key up (Bloom filter, L1, cache) and runs the calls only on a miss, then writes the
    /// result to the cache; a write runs the calls and then deletes, writes or leaves the
    /// cached key. None (the default): no cache. Requests without a key ([`NO_KEY`]) skip
    /// the cache.
    #[serde(default)]
    pub cache: Option<CacheUse>,
}

/// A named pool of permits in front of the calls that name it: a client-side connection pool
/// (HikariCP-like: fixed size, FIFO waiters) or, equally, a semaphore bulkhead per dependency
/// (resilience4j's `SemaphoreBulkhead`): a call holds one permit from before it is sent until
/// it ends, so at most `pool_size` calls through the pool are in flight and a slow dependency
/// can hold at most that many workers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    /// Permits (connections). Default 10, HikariCP's `maximumPoolSize`.
    #[serde(default = "default_pool_size")]
    pub pool_size: u32,
    /// The longest a call waits for a permit before failing with `PoolTimeout`. Default 30 s,
    /// HikariCP's `connectionTimeout`. `"0ms"` means do not wait: with every permit taken the
    /// call fails at once (resilience4j's semaphore bulkhead with `maxWaitDuration` 0, its
    /// default).
    #[serde(default = "default_acquire_timeout")]
    pub acquire_timeout: SimDuration,
    /// Hand out permits at most this often, evenly spaced (`rate: Some("1000/s")`): a call
    /// that finds a free connection but not yet its turn waits for it, in the same FIFO queue
    /// and under the same `acquire_timeout`. A limit on the queries sent to a dependency,
    /// however many connections are free: Guava's `RateLimiter.acquire()` in front of the
    /// pool, without its stored permits (no burst after a quiet spell, so a flood of misses
    /// reaches the database at the rate and no faster). None (the default): no limit.
    #[serde(default)]
    pub rate: Option<Rate>,
}

fn default_pool_size() -> u32 {
    DEFAULT_POOL_SIZE
}

fn default_acquire_timeout() -> SimDuration {
    DEFAULT_ACQUIRE_TIMEOUT
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            pool_size: DEFAULT_POOL_SIZE,
            acquire_timeout: DEFAULT_ACQUIRE_TIMEOUT,
            rate: None,
        }
    }
}

/// In what order free workers take queued requests. Whatever the order, a request joins the
/// queue only if there is room (`queue_capacity`): a full queue rejects the newcomer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum QueueDiscipline {
    /// Oldest first (Tomcat's accept queue, and every `java.util.concurrent` executor queue).
    #[default]
    Fifo,
    /// Newest first: under overload the newest request is the one whose caller is most likely
    /// still waiting, while the oldest have often given up already (S2). Old requests may wait
    /// for ever behind a stream of new ones: pair it with a bound or with `drop_expired`.
    Lifo,
    /// FIFO while the queue holds at most this many requests, LIFO while it holds more:
    /// Facebook's adaptive LIFO ("During normal operating conditions, requests are processed
    /// in FIFO order, but when a queue is starting to form, the server switches to LIFO mode",
    /// B. Maurer, "Fail at Scale", ACM Queue 13(8), 2015). `AdaptiveLifo(0)` is `Lifo`.
    AdaptiveLifo(u32),
}

/// A memory limit that kills the service when it holds too many requests (catalogue S4, S5):
/// the container runtime's OOM killer, and the orchestrator that restarts it.
///
/// The service holds `base + (queued + held) * per_request` bytes, where `queued` counts the
/// requests waiting for a worker and `held` the requests a worker has (in CPU work, waiting for
/// a pooled connection or in a downstream call). When an admitted request takes that past
/// `limit` the service is OOM-killed at once ([`Ctx::crash_self`]): everything queued or in
/// flight is lost without an answer (its callers time out), pooled connections and all other
/// volatile state with it, and it is restarted (empty, cold, with `warmup` again) after a
/// delay that doubles with each kill in a row, as Kubernetes' CrashLoopBackOff does:
/// `min(restart_after * 2^(n - 1), restart_after_max)` for the `n`-th kill since the service
/// last ran [`RESTART_BACKOFF_RESET`] (10 min) without one. Set `restart_after_max` to
/// `restart_after` for a constant delay.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryConfig {
    /// Bytes the service may hold; more and it is killed. No default: it is the container's
    /// `resources.limits.memory`.
    pub limit: u64,
    /// Bytes each queued or held request holds (its buffers, parsed body, stack). No default.
    pub per_request: u64,
    /// Bytes held at rest (heap, code, caches). Default 0.
    #[serde(default)]
    pub base: u64,
    /// How long the orchestrator takes to bring the service back after its first kill in a
    /// row. Default 10 s, Kubernetes' CrashLoopBackOff initial delay ([`DEFAULT_RESTART_AFTER`]).
    #[serde(default = "default_restart_after")]
    pub restart_after: SimDuration,
    /// The most the doubling delay grows to. Default 5 min, Kubernetes' CrashLoopBackOff cap
    /// ([`DEFAULT_RESTART_AFTER_MAX`]).
    #[serde(default = "default_restart_after_max")]
    pub restart_after_max: SimDuration,
}

fn default_restart_after() -> SimDuration {
    DEFAULT_RESTART_AFTER
}

fn default_restart_after_max() -> SimDuration {
    DEFAULT_RESTART_AFTER_MAX
}

impl MemoryConfig {
    /// The restart delay after the `n`-th OOM kill in a row (n >= 1).
    pub fn restart_delay(&self, n: u32) -> SimDuration {
        debug_assert!(n >= 1, "the first kill is n = 1");
        debug_assert!(self.restart_after <= self.restart_after_max);
        // 2^(n-1) overflows nothing: past 2^63 the cap has long been reached.
        let doublings = n.saturating_sub(1).min(63);
        let delay = self
            .restart_after
            .as_nanos()
            .saturating_mul(1_u64 << doublings);
        let delay = SimDuration::from_nanos(delay).min(self.restart_after_max);
        debug_assert!(delay >= self.restart_after || delay == self.restart_after_max);
        delay
    }
}

/// Slower service right after each (re)start (catalogue S4): cold caches, classes loading, a
/// JIT compiler that has not yet compiled the hot paths. For `duration` after the service
/// starts, CPU work takes `m` times its draw, where `m` falls linearly from `factor` at the
/// start to 1 at `duration`, and stays 1 after. It multiplies on top of a `Slow` fault. No
/// defaults: reported JVM warm-ups range from a few seconds to minutes and from 2x to over 10x
/// slower, depending on the code and the JIT; a scenario picks its own.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Warmup {
    /// How long the warm-up lasts after each start; > 0.
    pub duration: SimDuration,
    /// How many times slower CPU work is at the instant of the start; finite and >= 1.
    pub factor: f64,
}

impl Warmup {
    /// The multiplier of CPU work started `since_start` after the service started.
    pub fn factor_at(&self, since_start: SimDuration) -> f64 {
        if since_start >= self.duration {
            return 1.0;
        }
        let left = 1.0 - since_start.as_nanos() as f64 / self.duration.as_nanos() as f64;
        let m = 1.0 + (self.factor - 1.0) * left;
        debug_assert!((1.0..=self.factor).contains(&m), "{m}");
        m
    }
}

/// A [`Service`]'s config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    pub workers: u32,
    /// Requests waiting for a worker beyond this are rejected; None is unbounded.
    #[serde(default)]
    pub queue_capacity: Option<u32>,
    /// Indexed by `Request::kind`; names unique (callers may refer to a kind by name).
    pub kinds: Vec<KindConfig>,
    /// Connection pools by name (`pools: {"reads": (pool_size: 20), "writes": ()}`), which calls
    /// name in their `pool`. A name becomes a metric suffix (`pool_wait.reads`): non-empty, no
    /// `.`, and not `count`, `max`, `p50` or `p99`.
    #[serde(default)]
    pub pools: BTreeMap<String, PoolConfig>,
    /// Answer `Timeout`, without doing any work, a request whose deadline has passed (deadline
    /// <= now: no answer could reach the caller in time) when it arrives or when a worker would
    /// take it from the queue; counted in `expired_total`.
    #[serde(default)]
    pub drop_expired: bool,
    /// Reject (`Rejected`, counted in `shed_total`) a request that arrives with every worker
    /// busy when its estimated answer time exceeds the time left before its deadline. With
    /// `ahead` requests queued in front of it, `c` workers, and `h`, `d` the smoothed mean and
    /// mean deviation of the time a worker is held per request (exponentially weighted over
    /// completed jobs, as TCP smooths round-trip times (RFC 6298), with gains 1/32 and 1/16;
    /// before the first job completes, `h` is the mean of the request kind's service-time
    /// distribution and `d = h / 2`):
    ///
    /// `estimate = (ahead + 1) * h / c + h + 4 * d * sqrt((ahead + 1) / c^2 + 1)`
    ///
    /// The first term is the expected wait for a worker (the `ahead + 1`-th departure from `c`
    /// busy workers, one every `h / c`), the second the request's own service, the third a
    /// margin of four deviations of their sum (the wait for `n` departures spreads as
    /// `sqrt(n) * d / c`, the own service as `d`). The own service and the margin are both
    /// needed: under sustained overload every admitted request sits at the shedding threshold,
    /// so an estimate that is right on average admits requests half of which finish after
    /// their deadline. Requests without a deadline are never shed. Queue full is checked
    /// first (`rejected_total`).
    #[serde(default)]
    pub shed_by_deadline: bool,
    /// Work stops when the caller gives up. A downstream call's deadline is the earlier of
    /// `now + timeout` and the request's own deadline, so callees (with `drop_expired` or
    /// `shed_by_deadline`) can skip work nobody waits for; a call whose deadline has already
    /// passed is not sent (its callee could only waste work on it) and times out at once. And a
    /// job whose deadline passes while a worker holds it is cancelled at that instant, whatever
    /// it is doing: its CPU work stops, a wait for a pooled connection is given up, a
    /// downstream call in flight is abandoned (its connection released, its late response
    /// ignored), the worker is freed for the next request, and the caller gets `Timeout`
    /// (counted in `cancelled_total`, not `failed_total`). A worker is then never held past the
    /// deadline of the request it serves, which is what stops a slow dependency from holding
    /// every worker for the whole of its callers' call timeouts (S1).
    #[serde(default)]
    pub propagate_deadline: bool,
    /// The order in which free workers take queued requests. Default `Fifo`.
    #[serde(default)]
    pub queue: QueueDiscipline,
    /// A memory limit and the restart after an OOM kill; None (the default) never runs out.
    #[serde(default)]
    pub memory: Option<MemoryConfig>,
    /// Slower CPU work after each start; None (the default) starts warm.
    #[serde(default)]
    pub warmup: Option<Warmup>,
    /// Attach this Retry-After hint to every `Rejected` reply: a full queue (an HTTP 429 with
    /// `Retry-After`), a request shed by `shed_by_deadline` and one refused by `rate_limit`
    /// (503s and 429s with the hint, as load shedders and rate limiters send them), so that
    /// clients honouring it back off; None sends no hint. Other replies carry none.
    #[serde(default)]
    pub retry_after: Option<SimDuration>,
    /// A token-bucket rate limit at the door (`rate_limit: (rate: "200/s", burst: 50)`): a
    /// request that arrives when the bucket is empty is answered `Rejected` at once (with the
    /// `retry_after` hint, if set) and counted in `rate_limited_total`, before anything else
    /// looks at it (its deadline, a free worker, the queue). Every admitted request takes a
    /// token. The bucket is the process's: it starts full, and full again after a restart.
    /// None (the default) admits any rate.
    #[serde(default)]
    pub rate_limit: Option<TokenBucketConfig>,
}

impl ServiceConfig {
    /// The actor names this config refers to, with their field paths.
    pub fn targets(&self) -> Vec<(String, &str)> {
        let mut out = Vec::new();
        for (k, kind) in self.kinds.iter().enumerate() {
            for (c, call) in kind.calls.iter().enumerate() {
                out.push((
                    format!("kinds[{k}].calls[{c}].target"),
                    call.target.as_str(),
                ));
            }
            if let Some(cache) = &kind.cache {
                out.push((format!("kinds[{k}].cache.cache"), cache.cache.as_str()));
            }
        }
        out
    }

    /// The kind names in table order: what a caller's `KindRef::Name` resolves against.
    pub fn kind_names(&self) -> Vec<&str> {
        self.kinds.iter().map(|k| k.name.as_str()).collect()
    }

    /// Every request-kind reference in the config (one per downstream call), with its field
    /// path and the actor it is a kind of, for resolving names before the service is built.
    pub fn kind_refs_mut(&mut self) -> Vec<(String, String, &mut KindRef)> {
        let mut out = Vec::new();
        for (k, kind) in self.kinds.iter_mut().enumerate() {
            for (c, call) in kind.calls.iter_mut().enumerate() {
                let field = format!("kinds[{k}].calls[{c}].kind");
                out.push((field, call.target.clone(), &mut call.kind));
            }
        }
        out
    }
}

/// The field path of pool `name`.
fn pool_field(name: &str) -> String {
    format!("pools[{name:?}]")
}

impl Validate for ServiceConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        nonzero("workers", u64::from(self.workers))?;
        if self.kinds.is_empty() {
            return Err(ConfigError::Empty {
                field: "kinds".into(),
            });
        }
        for (name, pool) in &self.pools {
            let field = pool_field(name);
            check_suffix_name(&field, name, "connection pool")?;
            nonzero(format!("{field}.pool_size"), u64::from(pool.pool_size))?;
            // An `acquire_timeout` of 0 is a bulkhead that never waits.
        }
        if let Some(memory) = &self.memory {
            memory.validate()?;
        }
        if let Some(rate_limit) = &self.rate_limit {
            rate_limit.validate().map_err(|e| e.within("rate_limit"))?;
        }
        if let Some(warmup) = &self.warmup {
            nonzero("warmup.duration", warmup.duration.as_nanos())?;
            if !(warmup.factor.is_finite() && warmup.factor >= 1.0) {
                return Err(ConfigError::Invalid {
                    field: "warmup.factor".into(),
                    reason: format!(
                        "{} must be a finite number >= 1 (1 is no warm-up)",
                        warmup.factor
                    ),
                });
            }
        }
        // The first breaker config seen per target, with its entry's field path: the others
        // must equal it (one breaker per target).
        let mut breakers: Vec<(&str, String, &BreakerConfig)> = Vec::new();
        let mut slots = u64::from(self.workers);
        for (k, kind) in self.kinds.iter().enumerate() {
            check_kind_name(format!("kinds[{k}].name"), &kind.name)?;
            compile(format!("kinds[{k}].service"), &kind.service)?;
            if let Some(cache) = &kind.cache {
                cache
                    .validate()
                    .map_err(|e| e.within(&format!("kinds[{k}].cache")))?;
                aside::check_bloom_preload(cache, k)?;
                slots += u64::from(cache.refresher_slots());
                if slots > u64::from(u32::MAX) {
                    return Err(ConfigError::Invalid {
                        field: format!("kinds[{k}].cache.refreshers"),
                        reason: "workers and refreshers together must fit in a u32".into(),
                    });
                }
            }
            for (c, call) in kind.calls.iter().enumerate() {
                let field = format!("kinds[{k}].calls[{c}]");
                nonzero(format!("{field}.timeout"), call.timeout.as_nanos())?;
                if let Some(pool) = &call.pool
                    && !self.pools.contains_key(pool)
                {
                    return Err(ConfigError::Invalid {
                        field: format!("{field}.pool"),
                        reason: self.unknown_pool(pool),
                    });
                }
                if let Some(retry) = &call.retry {
                    retry
                        .validate()
                        .map_err(|e| e.within(&format!("{field}.retry")))?;
                }
                let Some(breaker) = &call.breaker else {
                    continue;
                };
                let here = format!("{field}.breaker");
                breaker.validate().map_err(|e| e.within(&here))?;
                match breakers.iter().find(|(t, _, _)| *t == call.target) {
                    Some((_, first, config)) if *config != breaker => {
                        return Err(ConfigError::Invalid {
                            field: here,
                            reason: format!(
                                "differs from {first}: calls to `{}` share one breaker, so \
                                 every call to it that sets `breaker` must set the same one",
                                call.target
                            ),
                        });
                    }
                    Some(_) => {}
                    None => breakers.push((&call.target, here, breaker)),
                }
            }
        }
        let names = self.kinds.iter().map(|k| k.name.as_str());
        check_unique_names(names, |k| format!("kinds[{k}].name"))
    }
}

impl MemoryConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        nonzero("memory.limit", self.limit)?;
        nonzero("memory.per_request", self.per_request)?;
        let one = self.base.saturating_add(self.per_request);
        if one > self.limit {
            return Err(ConfigError::Invalid {
                field: "memory.limit".into(),
                reason: format!(
                    "{} bytes cannot hold even one request: base + per_request = {one} bytes",
                    self.limit
                ),
            });
        }
        if self.restart_after_max < self.restart_after {
            return Err(ConfigError::Invalid {
                field: "memory.restart_after_max".into(),
                reason: format!(
                    "{} is shorter than restart_after ({}): the delay starts at restart_after \
                     and doubles up to restart_after_max",
                    self.restart_after_max, self.restart_after
                ),
            });
        }
        Ok(())
    }
}

impl ServiceConfig {
    fn unknown_pool(&self, pool: &str) -> String {
        if self.pools.is_empty() {
            return format!(
                "the call names pool `{pool}`, but the service has no pools (add \
                 `pools: {{{pool:?}: (pool_size: 10)}}`)"
            );
        }
        let names = self.pools.keys().map(String::as_str);
        let hint = crate::fault::suggest(pool, names.clone())
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        format!(
            "no pool is called `{pool}`{hint}; the service's pools are {}",
            quoted_list(names)
        )
    }
}

/// A downstream call, resolved.
#[derive(Clone, Copy, Debug)]
struct Call {
    target: ActorId,
    /// Index into `Service::deps`: the target's breaker and metrics.
    dep: u32,
    kind: u32,
    timeout: SimDuration,
    /// Index into `Service::pools`.
    pool: Option<u32>,
    fallback: bool,
    /// Whether the call goes through its target's breaker.
    breaker: bool,
}

#[derive(Clone, Debug)]
struct Kind {
    service: Sampler,
    /// The analytic mean of `service` in ns, the hold-time estimate before any job completed.
    service_mean_ns: Option<f64>,
    calls: Vec<Call>,
    /// Per call: its retry budget, if its retry policy has one.
    budgets: Vec<Option<RetryBudgetState>>,
    /// Cache-aside state: the L1, the Bloom filter, single flights, refresher slots.
    cache: Option<CacheKind>,
}

/// A downstream target, as every call entry naming it shares it: its breaker (if any entry
/// asks for one) and its metrics.
#[derive(Clone, Debug)]
struct Dependency {
    /// The target's actor name: the suffix of its metrics.
    name: String,
    breaker: Option<CircuitBreaker>,
}

/// Where a job stands.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// Doing its CPU work.
    Working,
    /// Waiting in pool `pool`'s queue since `since`.
    Acquiring {
        pool: u32,
        since: SimTime,
        timer: TimerId,
    },
    /// Waiting for the response to call `call_id`, holding a connection of `pool` if any.
    Calling {
        call_id: u64,
        timer: TimerId,
        pool: Option<u32>,
    },
    /// Between two attempts of the current call: `timer` ends the backoff.
    Backoff { timer: TimerId },
    /// Waiting for the answer to cache get `op`, sent at `since`.
    CacheGet {
        op: u64,
        timer: TimerId,
        since: SimTime,
    },
    /// Waiting for the answer to cache set or delete `op`, sent at `since`.
    CacheSet {
        op: u64,
        timer: TimerId,
        since: SimTime,
    },
    /// Waiting for another request's recompute of the same key (single-flight).
    Waiting { timer: TimerId },
    /// Waiting for another request's cache get of the same key (`coalesce_gets`); that get's
    /// own timeout bounds the wait.
    GetWaiting,
}

/// A request a worker holds.
#[derive(Clone, Copy, Debug)]
struct Job {
    req: Request,
    /// When the request reached the service.
    arrived: SimTime,
    /// When the worker took it.
    started: SimTime,
    /// Unique per job in this incarnation: timers carry it so a stale one is recognised.
    seq: u64,
    /// The index of the current (or next) downstream call.
    call: usize,
    /// Attempts of the current call made so far, the one in progress included.
    attempt: u32,
    /// The backoff before the current call's latest retry (decorrelated jitter walks from it).
    last_sleep: Option<SimDuration>,
    /// The breaker epoch in which the current attempt was admitted, while its outcome is
    /// still to be recorded; None when the call has no breaker or between attempts.
    admitted: Option<u64>,
    /// A call fell back: the answer, if Ok, is degraded.
    degraded: bool,
    /// A call answered `NotFound`: so does the job, if nothing fails.
    not_found: bool,
    /// Where the job stands with its kind's cache.
    cache: CacheStage,
    /// A background refresh in a refresher slot: there is no caller to answer.
    background: bool,
    phase: Phase,
    /// Its CPU work has not ended yet (its `work_timer` is pending).
    computing: bool,
    /// The timer of the CPU work (stopped if the job is cancelled during it).
    work_timer: TimerId,
    /// With `propagate_deadline` and a request deadline: the timer that cancels the job then.
    deadline_timer: Option<TimerId>,
}

impl Job {
    /// A job that has just been given its worker (or refresher slot): nothing called yet, no
    /// attempt made, its CPU work timed by `work_timer`.
    #[allow(clippy::too_many_arguments)]
    fn start(
        req: Request,
        arrived: SimTime,
        started: SimTime,
        seq: u64,
        cache: CacheStage,
        background: bool,
        work_timer: TimerId,
        deadline_timer: Option<TimerId>,
    ) -> Job {
        Job {
            req,
            arrived,
            started,
            seq,
            call: 0,
            attempt: 0,
            last_sleep: None,
            admitted: None,
            degraded: false,
            not_found: false,
            cache,
            background,
            phase: Phase::Working,
            computing: true,
            work_timer,
            deadline_timer,
        }
    }
}

/// How a job that a worker held ended, for its counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// Replied `Ok` or `NotFound` (`completed_total`).
    Completed,
    /// Replied with an error from a call, a call timeout or a pool timeout (`failed_total`).
    Failed,
    /// Its deadline passed while held, with `propagate_deadline` (`cancelled_total`).
    Cancelled,
}

/// What a service remembers across OOM kills: how many it has had in a row (since it last ran
/// [`RESTART_BACKOFF_RESET`] without one), for the CrashLoopBackOff delay. In a real cluster
/// the kubelet keeps this, not the process; here it lives in a [`Durable`] cell shared by the
/// service's incarnations, the one place state survives a crash.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct OomRecord {
    kills_in_a_row: u32,
}

#[derive(Clone, Debug)]
struct Pool {
    size: u32,
    acquire_timeout: SimDuration,
    in_use: u32,
    /// Workers waiting for a connection, first come first served.
    waiters: VecDeque<u32>,
    /// With a `rate`: the gap between two permits (ns, fractional), the earliest time the
    /// next one may go, and the timer set for it while somebody waits for it.
    gap_ns: Option<f64>,
    next_issue: SimTime,
    issue_timer: Option<TimerId>,
}

impl Pool {
    /// Whether a permit may be handed out now: a connection is free and, with a rate, its
    /// turn has come.
    fn may_issue(&self, now: SimTime) -> bool {
        self.in_use < self.size && now >= self.next_issue
    }

    /// A permit was handed out at `now`: the next may go one gap later.
    fn issued(&mut self, now: SimTime) {
        if let Some(gap) = self.gap_ns {
            // Rounded per permit: a rate of 3/s gives gaps of 333,333,333 ns, so the limit
            // holds (it is 1 ns per permit stricter than exact).
            let gap = SimDuration::from_nanos(libm::ceil(gap) as u64);
            self.next_issue = now.saturating_add(gap);
        }
    }
}

/// How long a worker is held per request, estimated as TCP estimates a round-trip time
/// (RFC 6298 §2, with smaller gains): a smoothed mean and a smoothed mean deviation.
#[derive(Clone, Copy, Debug, PartialEq)]
struct HoldEstimate {
    mean_ns: f64,
    dev_ns: f64,
}

impl HoldEstimate {
    /// From one measurement (or a prior mean): RFC 6298 §2.2 starts RTTVAR at half of it.
    fn first(mean_ns: f64) -> Self {
        debug_assert!(mean_ns.is_finite() && mean_ns >= 0.0, "{mean_ns}");
        HoldEstimate {
            mean_ns,
            dev_ns: mean_ns / 2.0,
        }
    }

    /// As RFC 6298 §2.3: the deviation is updated with the old mean, then the mean.
    fn observe(&mut self, sample_ns: f64) {
        debug_assert!(sample_ns.is_finite() && sample_ns >= 0.0, "{sample_ns}");
        let dev = (self.mean_ns - sample_ns).abs();
        self.dev_ns += HOLD_DEV_GAIN * (dev - self.dev_ns);
        self.mean_ns += HOLD_MEAN_GAIN * (sample_ns - self.mean_ns);
        debug_assert!(self.mean_ns >= 0.0 && self.dev_ns >= 0.0);
    }

    /// The estimated time (ns) to answer a request with `ahead` requests queued in front of it
    /// and all `workers` busy, with its margin (see [`ServiceConfig::shed_by_deadline`]).
    fn answer_ns(&self, ahead: usize, workers: u32) -> f64 {
        debug_assert!(workers > 0);
        let (n, c) = (ahead as f64 + 1.0, f64::from(workers));
        let wait = n * self.mean_ns / c;
        let spread = self.dev_ns * libm::sqrt(n / (c * c) + 1.0);
        wait + self.mean_ns + SHED_MARGIN_DEVS * spread
    }
}

#[derive(Clone)]
struct ServiceMetrics {
    queue_len: GaugeId,
    busy_workers: GaugeId,
    cpu_workers: GaugeId,
    rejected: CounterId,
    shed: CounterId,
    expired: CounterId,
    completed: CounterId,
    failed: CounterId,
    fallback: CounterId,
    degraded: CounterId,
    cancelled: CounterId,
    latency: HistogramId,
    /// One per pool, in `Service::pools` order.
    pools: Vec<PoolMetrics>,
    /// With `memory`: the `memory_bytes` gauge and the `oom_kills_total` counter.
    memory: Option<(GaugeId, CounterId)>,
    rate_limited: CounterId,
    /// One per downstream target, in `Service::deps` order.
    deps: Vec<DepMetrics>,
}

/// The metrics of one downstream target, suffixed `.<target>`.
#[derive(Clone, Copy)]
struct DepMetrics {
    breaker_state: GaugeId,
    breaker_rejected: CounterId,
    attempts: CounterId,
    retries: CounterId,
    budget_exhausted: CounterId,
}

#[derive(Clone, Copy)]
struct PoolMetrics {
    in_use: GaugeId,
    waiting: GaugeId,
    timeouts: CounterId,
    wait: HistogramId,
}

/// A service with a worker pool, a queue, downstream calls (with breakers and retries) and
/// named connection pools, behind an optional rate limit.
///
/// Metrics (owner = the service's name): `queue_len`, `busy_workers` and `cpu_workers` (the
/// busy workers in their CPU work rather than waiting on a pool, a call or the cache) gauges;
/// `rate_limited_total` (refused at the door by `rate_limit`), `rejected_total` (no worker and
/// no queue room), `shed_total` (rejected by `shed_by_deadline`), `expired_total` (dropped by
/// `drop_expired`), `completed_total` (replied Ok or NotFound, degraded or not),
/// `failed_total` (replied with an error from a call, a call timeout, a pool timeout or an
/// open breaker),
/// `cancelled_total` (stopped at their deadline with `propagate_deadline`),
/// `fallback_total` (calls that failed and fell back), `degraded_total` (requests replied Ok
/// after at least one fallback); the `latency` histogram (ns, arrival to reply, every request
/// a worker took: ok, failed or cancelled; not the shed, rejected or expired ones).
/// Per pool `<pool>`: `pool_in_use.<pool>` and `pool_waiting.<pool>` gauges,
/// `pool_timeouts_total.<pool>` (waits that ran out, and with a 0 `acquire_timeout` every call
/// that found no free permit), and the `pool_wait.<pool>` histogram (ns, every acquire,
/// including the ones that timed out or were cancelled). With `memory`: the `memory_bytes`
/// gauge (0 while the service is down) and `oom_kills_total`. Metrics live in the simulation,
/// not in the instance, so every counter keeps counting across restarts.
///
/// Per downstream target `<target>` (the actor name a call names), registered whether or not
/// its calls have a breaker or retries: the `breaker_state.<target>` gauge (0 closed, 1
/// half-open, 2 open; 0 without a breaker), `breaker_rejected_total.<target>` (attempts the
/// breaker refused: not sent), `call_attempts_total.<target>` (requests actually sent to it,
/// first tries and retries: the load it sees), `call_retries_total.<target>` (of those, the
/// retries), and `call_retry_budget_exhausted_total.<target>` (retries wanted but refused by
/// an entry's budget; the call then ended with its last failure). Breaker transitions are
/// trace notes, `breaker <target>: closed -> open`. So `call_attempts_total -
/// call_retries_total` is the calls whose first attempt was sent, and `breaker_rejected_total`
/// the attempts that never left.
///
/// Breakers, budgets and the rate limiter are the process's state: an OOM kill or a crash
/// loses them, and the next incarnation starts with closed breakers, fresh budgets and a full
/// bucket, as a restarted process does.
///
/// A `Service` value is one actor's: its factory may clone it for each incarnation (the clones
/// share the OOM record that must survive a crash), but two actors need two `Service::new`s.
#[derive(Clone)]
pub struct Service<M> {
    config: ServiceConfig,
    kinds: Vec<Kind>,
    workers: Vec<Option<Job>>,
    /// How many request workers (the slots before the refreshers') hold a job: every sample
    /// publishes it, and counting a pool of 100,000 slots each time was most of a run's cost.
    busy: usize,
    /// How many of those are in their CPU work (the rest wait on a pool, a call, a backoff or
    /// the cache, which uses no CPU): what the pod's CPU usage is made of.
    computing: usize,
    queue: VecDeque<(Request, SimTime)>,
    /// In name order (the config's BTreeMap order); calls refer to them by index.
    pools: Vec<Pool>,
    /// Downstream targets in the order the kinds' calls first name them; calls refer to them
    /// by index.
    deps: Vec<Dependency>,
    /// With `rate_limit`.
    bucket: Option<TokenBucket>,
    /// Outstanding downstream calls: call id -> (worker, job seq).
    calls: BTreeMap<u64, (u32, u64)>,
    next_call_id: u64,
    /// Outstanding cache commands: command id -> (worker, job seq).
    cache_ops: BTreeMap<u64, (u32, u64)>,
    next_cache_op: u64,
    /// With a cached kind.
    cache_metrics: Option<CacheMetrics>,
    next_seq: u64,
    /// None until the first job completes.
    hold: Option<HoldEstimate>,
    metrics: Option<ServiceMetrics>,
    /// When this incarnation started (for `warmup` and the OOM backoff reset).
    started: SimTime,
    /// Shared by every incarnation built from the same `Service::new`.
    oom: Durable<OomRecord>,
    _m: PhantomData<M>,
}

impl<M> Service<M> {
    /// Validates `config` and prepares the samplers. Kind names in calls must have been
    /// resolved to indices (a `KindRef::Name` is an error at its field).
    pub fn new(config: ServiceConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let pool_index = |name: &str| {
            let i = config.pools.keys().position(|p| p == name);
            let i = i.expect("validated: a call's pool exists");
            u32::try_from(i).expect("fewer than 2^32 pools")
        };
        let mut kinds = Vec::with_capacity(config.kinds.len());
        let mut deps: Vec<Dependency> = Vec::new();
        // Refresher slots follow the request workers in `workers`, kind after kind.
        let mut refresher_base = config.workers;
        for (k, kind) in config.kinds.iter().enumerate() {
            let mut calls = Vec::with_capacity(kind.calls.len());
            let mut budgets = Vec::with_capacity(kind.calls.len());
            for (c, call) in kind.calls.iter().enumerate() {
                let dep = match deps.iter().position(|d| d.name == call.target) {
                    Some(i) => i,
                    None => {
                        deps.push(Dependency {
                            name: call.target.clone(),
                            breaker: None,
                        });
                        deps.len() - 1
                    }
                };
                if let Some(b) = &call.breaker {
                    // Validated: every entry to this target that sets a breaker sets this one.
                    let shared = &mut deps[dep].breaker;
                    debug_assert!(shared.as_ref().is_none_or(|s| s.config() == b));
                    shared.get_or_insert_with(|| CircuitBreaker::new(b.clone()));
                }
                let budget = call.retry.as_ref().and_then(|r| r.budget.as_ref());
                budgets.push(budget.map(RetryBudgetState::new));
                calls.push(Call {
                    // Targets are resolved at start; the placeholder id is never sent to.
                    target: ActorId(u32::MAX),
                    dep: u32::try_from(dep).expect("fewer than 2^32 targets"),
                    kind: call.kind.index(format!("kinds[{k}].calls[{c}].kind"))?,
                    timeout: call.timeout,
                    pool: call.pool.as_deref().map(pool_index),
                    fallback: call.fallback,
                    breaker: call.breaker.is_some(),
                });
            }
            let cache = match &kind.cache {
                Some(use_) => Some(CacheKind::new(use_, k, &mut refresher_base)?),
                None => None,
            };
            kinds.push(Kind {
                service: compile(format!("kinds[{k}].service"), &kind.service)?,
                service_mean_ns: kind.service.mean().filter(|m| m.is_finite() && *m >= 0.0),
                calls,
                budgets,
                cache,
            });
        }
        let bucket = match &config.rate_limit {
            Some(r) => Some(TokenBucket::new(r).map_err(|e| e.within("rate_limit"))?),
            None => None,
        };
        let pools = config
            .pools
            .values()
            .map(|p| Pool {
                size: p.pool_size,
                acquire_timeout: p.acquire_timeout,
                in_use: 0,
                waiters: VecDeque::new(),
                gap_ns: p.rate.map(Rate::gap_nanos),
                next_issue: SimTime::ZERO,
                issue_timer: None,
            })
            .collect();
        Ok(Service {
            workers: vec![None; refresher_base as usize],
            busy: 0,
            computing: 0,
            config,
            kinds,
            queue: VecDeque::new(),
            pools,
            deps,
            bucket,
            calls: BTreeMap::new(),
            next_call_id: 0,
            cache_ops: BTreeMap::new(),
            next_cache_op: 0,
            cache_metrics: None,
            next_seq: 0,
            hold: None,
            metrics: None,
            started: SimTime::ZERO,
            oom: Durable::new(OomRecord::default()),
            _m: PhantomData,
        })
    }

    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }

    /// Workers holding a request (background refreshes are not workers).
    pub fn busy_workers(&self) -> usize {
        self.busy
    }

    /// The request workers' slots; the refresher slots follow them.
    fn request_workers(&self) -> &[Option<Job>] {
        &self.workers[..self.config.workers as usize]
    }

    /// Connections of pool `name` in use, or None if the service has no such pool.
    pub fn pool_in_use(&self, name: &str) -> Option<u32> {
        let i = self.config.pools.keys().position(|p| p == name)?;
        Some(self.pools[i].in_use)
    }

    /// The state of the breaker in front of calls to `target`, if any of them has one.
    pub fn breaker_state(&self, target: &str) -> Option<BreakerState> {
        let dep = self.deps.iter().find(|d| d.name == target)?;
        dep.breaker.as_ref().map(CircuitBreaker::state)
    }

    /// Bytes held now, `base + (queued + held) * per_request`, if the service has a `memory`
    /// limit.
    pub fn memory_bytes(&self) -> Option<u64> {
        let memory = self.config.memory.as_ref()?;
        let requests = (self.queue.len() + self.busy_workers()) as u64;
        Some(
            memory
                .base
                .saturating_add(requests.saturating_mul(memory.per_request)),
        )
    }

    /// OOM kills in a row so far (reset after [`RESTART_BACKOFF_RESET`] without one).
    pub fn oom_kills_in_a_row(&self) -> u32 {
        self.oom.borrow().kills_in_a_row
    }

    /// The CPU-work multiplier of `warmup` at `now` (1 without warm-up or after it).
    fn warmup_factor(&self, now: SimTime) -> f64 {
        match &self.config.warmup {
            Some(w) => w.factor_at(now.saturating_duration_since(self.started)),
            None => 1.0,
        }
    }

    /// The queued request a free worker takes next, removed from the queue.
    fn pop_next(&mut self) -> Option<(Request, SimTime)> {
        let newest_first = match self.config.queue {
            QueueDiscipline::Fifo => false,
            QueueDiscipline::Lifo => true,
            QueueDiscipline::AdaptiveLifo(threshold) => self.queue.len() > threshold as usize,
        };
        if newest_first {
            self.queue.pop_back()
        } else {
            self.queue.pop_front()
        }
    }

    /// How many queued requests would be served before one arriving now, were no other to
    /// arrive: all of them in FIFO order, none in LIFO order (adaptive LIFO: as the mode the
    /// queue is in once the newcomer has joined).
    fn ahead_of_newcomer(&self) -> usize {
        let queued = self.queue.len();
        match self.config.queue {
            QueueDiscipline::Fifo => queued,
            QueueDiscipline::Lifo => 0,
            QueueDiscipline::AdaptiveLifo(threshold) if queued + 1 > threshold as usize => 0,
            QueueDiscipline::AdaptiveLifo(_) => queued,
        }
    }
}

impl<M: Carry<Rpc>> Service<M> {
    fn m(&self) -> &ServiceMetrics {
        self.metrics.as_ref().expect("registered at start")
    }

    fn publish(&self, ctx: &mut Ctx<'_, M>) {
        let m = self.m();
        let (queue_len, busy) = (self.queue.len() as f64, self.busy_workers() as f64);
        ctx.metrics().set(m.queue_len, queue_len);
        ctx.metrics().set(m.busy_workers, busy);
        debug_assert!(self.computing <= self.busy, "only a busy worker computes");
        ctx.metrics().set(m.cpu_workers, self.computing as f64);
        if let (Some((gauge, _)), Some(bytes)) = (m.memory, self.memory_bytes()) {
            debug_assert!(
                self.config
                    .memory
                    .as_ref()
                    .is_some_and(|c| bytes <= c.limit),
                "a service over its limit is killed before it publishes"
            );
            ctx.metrics().set(gauge, bytes as f64);
        }
        debug_assert_eq!(self.pools.len(), m.pools.len());
        for (p, pm) in self.pools.iter().zip(&m.pools) {
            debug_assert!(p.in_use <= p.size);
            debug_assert!(p.waiters.is_empty() || p.in_use == p.size || p.gap_ns.is_some());
            let (in_use, waiting) = (f64::from(p.in_use), p.waiters.len() as f64);
            ctx.metrics().set(pm.in_use, in_use);
            ctx.metrics().set(pm.waiting, waiting);
        }
    }

    /// The job worker `w` holds, if its sequence number is `seq`.
    fn job(&mut self, w: u32, seq: u64) -> Option<&mut Job> {
        self.workers
            .get_mut(w as usize)?
            .as_mut()
            .filter(|j| j.seq == seq)
    }

    fn begin(&mut self, ctx: &mut Ctx<'_, M>, w: u32, req: Request, arrived: SimTime) {
        debug_assert!(self.workers[w as usize].is_none(), "worker {w} is free");
        debug_assert!(arrived <= ctx.now());
        let seq = self.next_seq;
        self.next_seq += 1;
        // Set before the work timer, so that work ending exactly at the deadline is cancelled
        // (a deadline is the last instant nobody waits for, as `drop_expired` reads it).
        let deadline_timer = match req.deadline {
            Some(deadline) if self.config.propagate_deadline => {
                let tick = Tick::JobDeadline { worker: w, seq };
                Some(ctx.set_timer_at(deadline, M::wrap(Rpc::Tick(tick))))
            }
            _ => None,
        };
        let work = ctx.sample_duration(&self.kinds[req.kind as usize].service);
        let work = ctx.work(work);
        let warm = self.warmup_factor(ctx.now());
        let work = if warm == 1.0 {
            work
        } else {
            let ns = libm::round(work.as_nanos() as f64 * warm).min(u64::MAX as f64);
            SimDuration::from_nanos(ns as u64)
        };
        let tick = Tick::WorkDone { worker: w, seq };
        let work_timer = ctx.set_timer(work, M::wrap(Rpc::Tick(tick)));
        let cache = CacheStage::initial(self.kinds[req.kind as usize].cache.is_some());
        let job = Job::start(
            req,
            arrived,
            ctx.now(),
            seq,
            cache,
            false,
            work_timer,
            deadline_timer,
        );
        self.workers[w as usize] = Some(job);
        if w < self.config.workers {
            self.busy += 1;
            self.computing += 1;
        }
    }

    /// Makes the job's next call, or replies Ok if there is none left.
    fn advance(&mut self, ctx: &mut Ctx<'_, M>, w: u32) {
        let job = self.workers[w as usize]
            .as_mut()
            .expect("advancing a held job");
        if job.cache == CacheStage::Lookup {
            // The CPU work is done: look the key up before any call.
            self.cache_lookup(ctx, w);
            return;
        }
        let job = self.workers[w as usize].as_mut().expect("held");
        let (k, c) = (job.req.kind as usize, job.call);
        if c >= self.kinds[k].calls.len() {
            // A recompute or a write ends with a cache command, answered when it is done.
            if self.cache_store(ctx, w) {
                return;
            }
            let job = self.workers[w as usize].as_mut().expect("held");
            let status = if job.not_found {
                Status::NotFound
            } else {
                Status::Ok
            };
            self.finish(ctx, w, status, Outcome::Completed);
            return;
        }
        // A fresh call: attempts count from the first, and the call pays into its entry's
        // budget (every call deposits, as every request of a client does).
        job.attempt = 0;
        job.last_sleep = None;
        debug_assert!(job.admitted.is_none());
        let now = ctx.now();
        if let Some(budget) = &mut self.kinds[k].budgets[c] {
            budget.deposit(now);
        }
        self.attempt(ctx, w);
    }

    /// Makes an attempt at the job's current call: past its breaker, then its pool, then sent.
    fn attempt(&mut self, ctx: &mut Ctx<'_, M>, w: u32) {
        let job = self.workers[w as usize]
            .as_mut()
            .expect("attempting from a held job");
        debug_assert!(matches!(job.phase, Phase::Working), "{:?}", job.phase);
        debug_assert!(job.admitted.is_none(), "the last attempt was recorded");
        let call = self.kinds[job.req.kind as usize].calls[job.call];
        job.attempt += 1;
        let seq = job.seq;
        if call.breaker {
            let now = ctx.now();
            let dep = &mut self.deps[call.dep as usize];
            let b = dep.breaker.as_mut().expect("a call with a breaker has one");
            let before = (b.epoch(), b.state());
            let allowed = b.allow(now);
            let epoch = b.epoch();
            self.breaker_moved(ctx, call.dep, before);
            if !allowed {
                // Failing fast is the point: nothing sent, no permit taken, and no retry (a
                // retry into an open breaker would only spend an attempt).
                let rejected = self.m().deps[call.dep as usize].breaker_rejected;
                ctx.metrics().inc(rejected);
                self.call_ended(ctx, w, Status::Err(ErrorKind::Unavailable));
                return;
            }
            let job = self.workers[w as usize].as_mut().expect("held");
            job.admitted = Some(epoch);
        }
        let Some(p) = call.pool else {
            self.send_call(ctx, w, call);
            return;
        };
        let now = ctx.now();
        let pool = &mut self.pools[p as usize];
        if pool.may_issue(now) && pool.waiters.is_empty() {
            pool.in_use += 1;
            pool.issued(now);
            let wait = self.m().pools[p as usize].wait;
            ctx.metrics().record(wait, 0);
            self.send_call(ctx, w, call);
        } else if pool.acquire_timeout == SimDuration::ZERO {
            // A bulkhead that never waits: no permit, no call, at once.
            debug_assert!(pool.waiters.is_empty(), "nobody waits on a 0-wait pool");
            let pm = self.m().pools[p as usize];
            ctx.metrics().record(pm.wait, 0);
            ctx.metrics().inc(pm.timeouts);
            self.attempt_ended(ctx, w, Status::Err(ErrorKind::PoolTimeout), None);
        } else {
            pool.waiters.push_back(w);
            self.wait_for_issue(ctx, p);
            let pool = &mut self.pools[p as usize];
            let after = pool.acquire_timeout;
            let tick = Tick::PoolTimeout { worker: w, seq };
            let timer = ctx.set_timer(after, M::wrap(Rpc::Tick(tick)));
            let job = self.workers[w as usize].as_mut().expect("held");
            job.phase = Phase::Acquiring {
                pool: p,
                since: ctx.now(),
                timer,
            };
        }
    }

    /// Sends the call (holding its connection, if pooled) and sets its timeout.
    fn send_call(&mut self, ctx: &mut Ctx<'_, M>, w: u32, call: Call) {
        let call_id = self.next_call_id;
        self.next_call_id += 1;
        let propagate = self.config.propagate_deadline;
        let job = self.workers[w as usize]
            .as_mut()
            .expect("calling from a held job");
        let seq = job.seq;
        let now = ctx.now();
        let own = now.saturating_add(call.timeout);
        let deadline = match job.req.deadline {
            Some(parent) if propagate => own.min(parent),
            _ => own,
        };
        debug_assert!(deadline <= own);
        let tick = Tick::CallTimeout { worker: w, seq };
        // A deadline in the past fires now (the timer is clamped), failing the call at once.
        let timer = ctx.set_timer_at(deadline, M::wrap(Rpc::Tick(tick)));
        job.phase = Phase::Calling {
            call_id,
            timer,
            pool: call.pool,
        };
        self.calls.insert(call_id, (w, seq));
        if deadline <= now {
            // The original caller has given up already: sending would only make the callee
            // work for nobody. Only a propagated deadline can be this early (timeouts are > 0).
            // The attempt is not made, so its breaker learns nothing from it.
            debug_assert!(propagate);
            self.release_admission(w);
            return;
        }
        let req = Request {
            id: call_id,
            kind: call.kind,
            reply_to: ctx.me(),
            created: job.req.created,
            deadline: Some(deadline),
            // Every call of a request is about the request's key.
            key: job.req.key,
        };
        let retry = job.attempt > 1;
        debug_assert!(job.attempt >= 1);
        let dm = self.m().deps[call.dep as usize];
        ctx.metrics().inc(dm.attempts);
        if retry {
            ctx.metrics().inc(dm.retries);
        }
        ctx.send(call.target, M::wrap(Rpc::Request(req)));
    }

    /// The current attempt of worker `w`'s call ended with `status` (its connection, if any,
    /// already released; `hint` the response's Retry-After): tells the breaker, then retries
    /// after the backoff or ends the call.
    fn attempt_ended(
        &mut self,
        ctx: &mut Ctx<'_, M>,
        w: u32,
        status: Status,
        hint: Option<SimDuration>,
    ) {
        self.record_admission(ctx, w, status.is_success());
        let job = self.workers[w as usize].as_mut().expect("held");
        job.phase = Phase::Working;
        let retry = match status {
            // Served: a `NotFound` would be the same answer however often it is asked.
            Status::Ok | Status::NotFound => None,
            Status::Err(e) => self.retry_delay(ctx, w, e, hint),
        };
        match retry {
            None => self.call_ended(ctx, w, status),
            Some(delay) if delay.is_zero() => self.attempt(ctx, w),
            Some(delay) => {
                let job = self.workers[w as usize].as_mut().expect("held");
                let tick = Tick::CallRetryDue {
                    worker: w,
                    seq: job.seq,
                };
                let timer = ctx.set_timer(delay, M::wrap(Rpc::Tick(tick)));
                job.phase = Phase::Backoff { timer };
            }
        }
    }

    /// The wait before retrying worker `w`'s call after `error`, or None to end the call.
    /// Draws the jitter from the service's stream and withdraws from the entry's budget.
    fn retry_delay(
        &mut self,
        ctx: &mut Ctx<'_, M>,
        w: u32,
        error: ErrorKind,
        hint: Option<SimDuration>,
    ) -> Option<SimDuration> {
        let job = self.workers[w as usize].expect("held");
        let (k, c) = (job.req.kind as usize, job.call);
        let policy = self.config.kinds[k].calls[c].retry.as_ref()?;
        if !(policy.retries_on(error) && policy.has_attempts_left(job.attempt)) {
            return None;
        }
        // After `attempt` attempts this is retry number `attempt`.
        let sleep = policy.sleep(job.attempt, job.last_sleep, ctx.rng());
        let floor = hint.filter(|_| policy.respect_retry_after);
        let delay = floor.map_or(sleep, |h| sleep.max(h));
        let now = ctx.now();
        let too_late = job
            .req
            .deadline
            .is_some_and(|d| now.saturating_add(delay) >= d);
        if self.config.propagate_deadline && too_late {
            // Its answer could only come after the caller has given up (and at the deadline
            // the job is cancelled anyway): end the call now, with the failure it has.
            return None;
        }
        if let Some(budget) = &mut self.kinds[k].budgets[c]
            && !budget.try_withdraw(now)
        {
            let dep = self.kinds[k].calls[c].dep as usize;
            let exhausted = self.m().deps[dep].budget_exhausted;
            ctx.metrics().inc(exhausted);
            return None;
        }
        let job = self.workers[w as usize].as_mut().expect("held");
        // The walk of decorrelated jitter follows its own draws, not the server's hints.
        job.last_sleep = Some(sleep);
        Some(delay)
    }

    /// Takes worker `w`'s admission by its call's breaker, if the breaker is still in the
    /// state that admitted it (an outcome says nothing about a later state).
    fn take_admission(&mut self, w: u32) -> Option<u32> {
        let job = self.workers[w as usize].as_mut().expect("held");
        let epoch = job.admitted.take()?;
        let dep = self.kinds[job.req.kind as usize].calls[job.call].dep;
        let b = self.deps[dep as usize].breaker.as_ref();
        let b = b.expect("an admitted call has a breaker");
        (b.epoch() == epoch).then_some(dep)
    }

    /// Tells the breaker that admitted worker `w`'s attempt how it went.
    fn record_admission(&mut self, ctx: &mut Ctx<'_, M>, w: u32, success: bool) {
        let Some(dep) = self.take_admission(w) else {
            return;
        };
        let now = ctx.now();
        let b = self.deps[dep as usize].breaker.as_mut().expect("admitted");
        let before = (b.epoch(), b.state());
        b.record(now, success);
        self.breaker_moved(ctx, dep, before);
    }

    /// Gives back the breaker's permission for worker `w`'s attempt, which was not made.
    fn release_admission(&mut self, w: u32) {
        if let Some(dep) = self.take_admission(w) {
            let b = self.deps[dep as usize].breaker.as_mut().expect("admitted");
            b.release();
        }
    }

    /// Notes a transition of `dep`'s breaker, if its epoch is no longer `before`'s: a trace
    /// note, the gauge, and a timer for the end of an open state's cooldown (so the gauge
    /// turns half-open on time, not at the next call).
    fn breaker_moved(&mut self, ctx: &mut Ctx<'_, M>, dep: u32, before: (u64, BreakerState)) {
        let d = &self.deps[dep as usize];
        let b = d.breaker.as_ref().expect("only breakers move");
        if b.epoch() == before.0 {
            return;
        }
        let (state, until) = (b.state(), b.open_until());
        debug_assert!(until.is_some() == (state == BreakerState::Open));
        let note = format!(
            "breaker {}: {} -> {}",
            d.name,
            before.1.name(),
            state.name()
        );
        ctx.trace_note(&note);
        let gauge = self.m().deps[dep as usize].breaker_state;
        ctx.metrics().set(gauge, state.gauge());
        if let Some(until) = until {
            ctx.set_timer_at(until, M::wrap(Rpc::Tick(Tick::BreakerCooldown)));
        }
    }

    /// Returns a connection of pool `p`: the first waiter gets it at once (with a rate, if
    /// its turn has come; else when it comes).
    fn release(&mut self, ctx: &mut Ctx<'_, M>, p: u32) {
        let now = ctx.now();
        let pool = &mut self.pools[p as usize];
        debug_assert!(pool.in_use > 0, "releasing a connection that is not held");
        if now < pool.next_issue || pool.waiters.is_empty() {
            pool.in_use -= 1;
            self.wait_for_issue(ctx, p);
            return;
        }
        // The connection passes straight to the waiter: `in_use` is unchanged.
        pool.issued(now);
        self.hand_to_first_waiter(ctx, p);
    }

    /// With waiters, a free connection and a rate: sets the timer for the next permit's turn
    /// (once).
    fn wait_for_issue(&mut self, ctx: &mut Ctx<'_, M>, p: u32) {
        let now = ctx.now();
        let pool = &mut self.pools[p as usize];
        if pool.gap_ns.is_none()
            || pool.issue_timer.is_some()
            || pool.waiters.is_empty()
            || pool.in_use >= pool.size
        {
            return;
        }
        let after = pool.next_issue.saturating_duration_since(now);
        let tick = Tick::PoolIssue { pool: p };
        pool.issue_timer = Some(ctx.set_timer(after, M::wrap(Rpc::Tick(tick))));
    }

    /// A rate-limited pool's turn has come: the first waiter gets a permit, if a connection
    /// is free.
    fn issue(&mut self, ctx: &mut Ctx<'_, M>, p: u32) {
        let now = ctx.now();
        let pool = &mut self.pools[p as usize];
        pool.issue_timer = None;
        if !pool.waiters.is_empty() && pool.may_issue(now) {
            pool.in_use += 1;
            pool.issued(now);
            self.hand_to_first_waiter(ctx, p);
        }
        self.wait_for_issue(ctx, p);
    }

    /// Gives the first waiter of pool `p` the connection just taken for it.
    fn hand_to_first_waiter(&mut self, ctx: &mut Ctx<'_, M>, p: u32) {
        let w = self.pools[p as usize]
            .waiters
            .pop_front()
            .expect("a waiter to hand to");
        let job = self.workers[w as usize].expect("a waiter holds its worker");
        let Phase::Acquiring { pool, since, timer } = job.phase else {
            panic!("waiter {w} is not acquiring: {:?}", job.phase);
        };
        debug_assert_eq!(pool, p, "a waiter waits for the pool it is queued in");
        ctx.cancel_timer(timer);
        let wait = (ctx.now() - since).as_nanos();
        let h = self.m().pools[p as usize].wait;
        ctx.metrics().record(h, wait);
        let call = self.kinds[job.req.kind as usize].calls[job.call];
        debug_assert_eq!(call.pool, Some(p));
        self.send_call(ctx, w, call);
    }

    /// The job's current call ended with `status`, for good (its connection, if any, already
    /// released; no retry left or wanted): go on to the next call, fall back, or fail the
    /// request.
    fn call_ended(&mut self, ctx: &mut Ctx<'_, M>, w: u32, status: Status) {
        let job = self.workers[w as usize]
            .as_mut()
            .expect("a call ends in a held job");
        debug_assert!(job.admitted.is_none(), "the attempt was recorded");
        let call = self.kinds[job.req.kind as usize].calls[job.call];
        job.call += 1;
        // Whatever the call was waiting for (a connection, a response) is over; a fallback may
        // complete the job from here, so it must no longer look like it is waiting.
        job.phase = Phase::Working;
        match status {
            Status::Ok => self.advance(ctx, w),
            Status::NotFound => {
                // The request's key does not exist: the rest of the job goes on (a call chain
                // may still have work for it) and the caller hears `NotFound`.
                job.not_found = true;
                self.advance(ctx, w);
            }
            Status::Err(_) if call.fallback => {
                job.degraded = true;
                let fallback = self.m().fallback;
                ctx.metrics().inc(fallback);
                self.advance(ctx, w);
            }
            Status::Err(e) => self.finish(ctx, w, Status::Err(e), Outcome::Failed),
        }
    }

    /// Replies to the job's caller, frees the worker and takes the next queued request.
    fn finish(&mut self, ctx: &mut Ctx<'_, M>, w: u32, status: Status, outcome: Outcome) {
        let job = self.workers[w as usize]
            .take()
            .expect("finishing a held job");
        if w < self.config.workers {
            self.busy -= 1;
            if job.computing {
                self.computing -= 1;
            }
        }
        debug_assert!(
            !matches!(job.phase, Phase::Acquiring { .. }) || !status.is_success(),
            "a job waiting for a connection cannot have succeeded"
        );
        debug_assert_eq!(status.is_success(), outcome == Outcome::Completed);
        // A single-flight leader (or a background refresh) that ends before its recompute
        // did answers the requests waiting on it with its own outcome.
        self.cache_job_ended(ctx, &job, status);
        if job.background {
            debug_assert!(w >= self.config.workers, "a refresher slot");
            debug_assert!(job.deadline_timer.is_none());
            return;
        }
        if let Some(timer) = job.deadline_timer
            && outcome != Outcome::Cancelled
        {
            // Finished in time: the deadline no longer concerns this worker.
            ctx.cancel_timer(timer);
        }
        reply(ctx, job.req.reply_to, job.req.id, status);
        let m = self.m();
        let (completed, failed, degraded) = (m.completed, m.failed, m.degraded);
        let (cancelled, latency) = (m.cancelled, m.latency);
        match outcome {
            Outcome::Completed => {
                ctx.metrics().inc(completed);
                if job.degraded {
                    ctx.metrics().inc(degraded);
                }
            }
            Outcome::Failed => ctx.metrics().inc(failed),
            Outcome::Cancelled => ctx.metrics().inc(cancelled),
        }
        let now = ctx.now();
        ctx.metrics()
            .record(latency, (now - job.arrived).as_nanos());
        let held_ns = (now - job.started).as_nanos() as f64;
        match &mut self.hold {
            Some(h) => h.observe(held_ns),
            None => self.hold = Some(HoldEstimate::first(held_ns)),
        }
        self.take_next(ctx, w);
    }

    /// The deadline of worker `w`'s job has passed (with `propagate_deadline`): stops whatever
    /// the job is waiting for, so the worker is free at once, and answers `Timeout`.
    fn cancel(&mut self, ctx: &mut Ctx<'_, M>, w: u32) {
        let job = self.workers[w as usize].expect("cancelling a held job");
        debug_assert!(self.config.propagate_deadline);
        debug_assert!(job.req.deadline.is_some_and(|d| d <= ctx.now()));
        match job.phase {
            Phase::Working => {
                ctx.cancel_timer(job.work_timer);
            }
            Phase::Acquiring {
                pool: p,
                since,
                timer,
            } => {
                ctx.cancel_timer(timer);
                let pool = &mut self.pools[p as usize];
                let at = pool.waiters.iter().position(|&x| x == w);
                pool.waiters
                    .remove(at.expect("an acquiring worker is in the waiters"));
                let wait = self.m().pools[p as usize].wait;
                let waited = (ctx.now() - since).as_nanos();
                ctx.metrics().record(wait, waited);
                // A wait for a permit that ran out, as a pool timeout does.
                self.record_admission(ctx, w, false);
            }
            Phase::Calling {
                call_id,
                timer,
                pool,
            } => {
                ctx.cancel_timer(timer);
                // Its response, if it ever comes, finds no call and is ignored.
                let removed = self.calls.remove(&call_id);
                debug_assert_eq!(removed, Some((w, job.seq)));
                if let Some(p) = pool {
                    self.release(ctx, p);
                }
                // The call's deadline was the request's: this is its timeout.
                self.record_admission(ctx, w, false);
            }
            Phase::Backoff { timer } => {
                // Not reached while a retry whose backoff would outlast the deadline is never
                // scheduled (`retry_delay`); kept so that every phase can be cancelled.
                ctx.cancel_timer(timer);
            }
            Phase::CacheGet { .. }
            | Phase::CacheSet { .. }
            | Phase::Waiting { .. }
            | Phase::GetWaiting => {
                self.cancel_cache_phase(ctx, w);
            }
        }
        let job = self.workers[w as usize].as_mut().expect("still held");
        job.phase = Phase::Working;
        let timeout = Status::Err(ErrorKind::Timeout);
        self.finish(ctx, w, timeout, Outcome::Cancelled);
    }

    /// With `memory`, after a request was admitted: if the service now holds more than its
    /// limit it is OOM-killed, losing every queued and held request unanswered, and restarted
    /// after the CrashLoopBackOff delay. Returns whether it was killed.
    fn out_of_memory(&mut self, ctx: &mut Ctx<'_, M>) -> bool {
        let (Some(memory), Some(bytes)) = (&self.config.memory, self.memory_bytes()) else {
            return false;
        };
        if bytes <= memory.limit {
            return false;
        }
        let now = ctx.now();
        let n = {
            let mut record = self.oom.borrow_mut();
            if now.saturating_duration_since(self.started) >= RESTART_BACKOFF_RESET {
                record.kills_in_a_row = 0;
            }
            record.kills_in_a_row = record.kills_in_a_row.saturating_add(1);
            record.kills_in_a_row
        };
        let delay = memory.restart_delay(n);
        debug_assert!(delay <= memory.restart_after_max);
        let m = self.m();
        let (gauge, kills) = m.memory.expect("registered with memory");
        ctx.metrics().inc(kills);
        // What the dead process held is gone: its gauges read nothing until it is back.
        let mut gauges = vec![gauge, m.queue_len, m.busy_workers];
        gauges.extend(m.pools.iter().flat_map(|p| [p.in_use, p.waiting]));
        // Its breakers die with it; the next incarnation's start closed.
        gauges.extend(m.deps.iter().map(|d| d.breaker_state));
        for g in gauges {
            ctx.metrics().set(g, 0.0);
        }
        ctx.trace_note("OOMKilled");
        ctx.crash_self(Some(delay));
        true
    }

    /// Gives free worker `w` the first queued request that is still worth serving.
    fn take_next(&mut self, ctx: &mut Ctx<'_, M>, w: u32) {
        debug_assert!(self.workers[w as usize].is_none());
        while let Some((req, arrived)) = self.pop_next() {
            if self.is_dropped_expired(ctx, req) {
                continue;
            }
            self.begin(ctx, w, req, arrived);
            return;
        }
    }

    /// With `drop_expired`, answers `req` `Timeout` if its deadline has passed.
    fn is_dropped_expired(&mut self, ctx: &mut Ctx<'_, M>, req: Request) -> bool {
        let expired = req.deadline.is_some_and(|d| d <= ctx.now());
        if !(self.config.drop_expired && expired) {
            return false;
        }
        let counter = self.m().expired;
        ctx.metrics().inc(counter);
        reply(ctx, req.reply_to, req.id, Status::Err(ErrorKind::Timeout));
        true
    }

    /// With `shed_by_deadline` (and every worker busy): whether `req` would be answered after
    /// its deadline.
    fn should_shed(&self, now: SimTime, req: Request) -> bool {
        debug_assert!(self.request_workers().iter().all(Option::is_some));
        let Some(deadline) = req.deadline.filter(|_| self.config.shed_by_deadline) else {
            return false;
        };
        let estimate = match self.hold {
            Some(h) => h,
            // No job has completed: the kind's own service time is the best guess. A kind
            // whose mean is not known (Pareto with shape <= 1) sheds nothing until then.
            None => match self.kinds[req.kind as usize].service_mean_ns {
                Some(mean) => HoldEstimate::first(mean),
                None => return false,
            },
        };
        let left_ns = deadline.saturating_duration_since(now).as_nanos() as f64;
        estimate.answer_ns(self.ahead_of_newcomer(), self.config.workers) > left_ns
    }

    fn on_request(&mut self, ctx: &mut Ctx<'_, M>, req: Request) {
        if req.kind as usize >= self.kinds.len() {
            // A wiring bug in the caller's mix; the service cannot serve it.
            reply(
                ctx,
                req.reply_to,
                req.id,
                Status::Err(ErrorKind::Unavailable),
            );
            return;
        }
        let now = ctx.now();
        if let Some(bucket) = &mut self.bucket
            && !bucket.try_take(now)
        {
            // At the door: before the deadline, the workers or the queue are looked at.
            let limited = self.m().rate_limited;
            ctx.metrics().inc(limited);
            let (status, hint) = (Status::Err(ErrorKind::Rejected), self.config.retry_after);
            reply_retry_after(ctx, req.reply_to, req.id, status, hint);
            return;
        }
        if self.is_dropped_expired(ctx, req) {
            return;
        }
        let free = (self.busy < self.config.workers as usize)
            .then(|| self.request_workers().iter().position(Option::is_none))
            .flatten();
        if let Some(w) = free {
            debug_assert!(self.queue.is_empty(), "a free worker means an empty queue");
            self.begin(ctx, w as u32, req, now);
        } else if self
            .config
            .queue_capacity
            .is_some_and(|cap| self.queue.len() >= cap as usize)
        {
            let rejected = self.m().rejected;
            ctx.metrics().inc(rejected);
            let (status, hint) = (Status::Err(ErrorKind::Rejected), self.config.retry_after);
            reply_retry_after(ctx, req.reply_to, req.id, status, hint);
        } else if self.should_shed(now, req) {
            let shed = self.m().shed;
            ctx.metrics().inc(shed);
            let (status, hint) = (Status::Err(ErrorKind::Rejected), self.config.retry_after);
            reply_retry_after(ctx, req.reply_to, req.id, status, hint);
        } else {
            self.queue.push_back((req, now));
        }
    }

    fn on_response(&mut self, ctx: &mut Ctx<'_, M>, r: Response) {
        let id = r.id;
        // Unknown ids are late responses to calls that already timed out, or that a cancelled
        // job abandoned.
        let Some((w, seq)) = self.calls.remove(&id) else {
            return;
        };
        let job = self.job(w, seq).expect("an outstanding call has its job");
        let Phase::Calling {
            call_id,
            timer,
            pool,
        } = job.phase
        else {
            panic!("a response for a job that is not calling: {:?}", job.phase);
        };
        debug_assert_eq!(call_id, id);
        ctx.cancel_timer(timer);
        if let Some(p) = pool {
            self.release(ctx, p);
        }
        self.attempt_ended(ctx, w, r.status, r.retry_after);
    }

    fn on_tick(&mut self, ctx: &mut Ctx<'_, M>, tick: Tick) {
        match tick {
            Tick::WorkDone { worker, seq } if self.job(worker, seq).is_some() => {
                let job = self.workers[worker as usize].as_mut().expect("held");
                if std::mem::replace(&mut job.computing, false) && worker < self.config.workers {
                    self.computing -= 1;
                }
                self.advance(ctx, worker);
            }
            Tick::CallTimeout { worker, seq } => {
                let Some(job) = self.job(worker, seq) else {
                    return;
                };
                let Phase::Calling { call_id, pool, .. } = job.phase else {
                    return;
                };
                let removed = self.calls.remove(&call_id);
                debug_assert_eq!(removed, Some((worker, seq)));
                if let Some(p) = pool {
                    self.release(ctx, p);
                }
                self.attempt_ended(ctx, worker, Status::Err(ErrorKind::Timeout), None);
            }
            Tick::JobDeadline { worker, seq } if self.job(worker, seq).is_some() => {
                self.cancel(ctx, worker);
            }
            Tick::CacheTimeout { worker, seq } if self.job(worker, seq).is_some() => {
                self.on_cache_timeout(ctx, worker);
            }
            Tick::FlightTimeout { worker, seq } if self.job(worker, seq).is_some() => {
                self.on_flight_timeout(ctx, worker);
            }
            Tick::CallRetryDue { worker, seq } => {
                let Some(job) = self.job(worker, seq) else {
                    return;
                };
                let Phase::Backoff { .. } = job.phase else {
                    return;
                };
                job.phase = Phase::Working;
                self.attempt(ctx, worker);
            }
            Tick::PoolIssue { pool } => self.issue(ctx, pool),
            Tick::BreakerCooldown => {
                let now = ctx.now();
                for dep in 0..self.deps.len() {
                    let Some(b) = &mut self.deps[dep].breaker else {
                        continue;
                    };
                    let before = (b.epoch(), b.state());
                    b.advance(now);
                    self.breaker_moved(ctx, dep as u32, before);
                }
            }
            Tick::PoolTimeout { worker, seq } => {
                let Some(job) = self.job(worker, seq) else {
                    return;
                };
                let Phase::Acquiring { pool: p, since, .. } = job.phase else {
                    return;
                };
                let pool = &mut self.pools[p as usize];
                let at = pool.waiters.iter().position(|&x| x == worker);
                let at = at.expect("an acquiring worker is in the waiters");
                pool.waiters.remove(at);
                let pm = self.m().pools[p as usize];
                let wait = (ctx.now() - since).as_nanos();
                ctx.metrics().record(pm.wait, wait);
                ctx.metrics().inc(pm.timeouts);
                self.attempt_ended(ctx, worker, Status::Err(ErrorKind::PoolTimeout), None);
            }
            _ => {}
        }
    }
}

impl<M: Carry<Rpc>> Actor<M> for Service<M> {
    fn on_start(&mut self, ctx: &mut Ctx<'_, M>) {
        self.started = ctx.now();
        for (k, kind) in self.config.kinds.iter().enumerate() {
            for (c, call) in kind.calls.iter().enumerate() {
                let field = format!("kinds[{k}].calls[{c}].target");
                self.kinds[k].calls[c].target = resolve(ctx, &field, &call.target);
            }
            if let (Some(use_), Some(state)) = (&kind.cache, &mut self.kinds[k].cache) {
                let field = format!("kinds[{k}].cache.cache");
                state.target = resolve(ctx, &field, &use_.cache);
            }
        }
        self.register_cache_metrics(ctx);
        let pools = self
            .config
            .pools
            .keys()
            .map(|name| PoolMetrics {
                in_use: ctx.gauge(&format!("pool_in_use.{name}")),
                waiting: ctx.gauge(&format!("pool_waiting.{name}")),
                timeouts: ctx.counter(&format!("pool_timeouts_total.{name}")),
                wait: ctx.histogram(&format!("pool_wait.{name}")),
            })
            .collect();
        // Registered for every target whether or not its calls have a breaker or retries, so
        // that a scenario's checks and charts name the same metrics in its baseline and fixes.
        let deps = self
            .deps
            .iter()
            .map(|d| DepMetrics {
                breaker_state: ctx.gauge(&format!("breaker_state.{}", d.name)),
                breaker_rejected: ctx.counter(&format!("breaker_rejected_total.{}", d.name)),
                attempts: ctx.counter(&format!("call_attempts_total.{}", d.name)),
                retries: ctx.counter(&format!("call_retries_total.{}", d.name)),
                budget_exhausted: ctx
                    .counter(&format!("call_retry_budget_exhausted_total.{}", d.name)),
            })
            .collect();
        self.metrics = Some(ServiceMetrics {
            queue_len: ctx.gauge("queue_len"),
            busy_workers: ctx.gauge("busy_workers"),
            cpu_workers: ctx.gauge("cpu_workers"),
            rejected: ctx.counter("rejected_total"),
            shed: ctx.counter("shed_total"),
            expired: ctx.counter("expired_total"),
            completed: ctx.counter("completed_total"),
            failed: ctx.counter("failed_total"),
            fallback: ctx.counter("fallback_total"),
            degraded: ctx.counter("degraded_total"),
            cancelled: ctx.counter("cancelled_total"),
            latency: ctx.histogram("latency"),
            pools,
            memory: self
                .config
                .memory
                .as_ref()
                .map(|_| (ctx.gauge("memory_bytes"), ctx.counter("oom_kills_total"))),
            rate_limited: ctx.counter("rate_limited_total"),
            deps,
        });
        for (d, dm) in self.deps.iter().zip(&self.m().deps) {
            let state = d.breaker.as_ref().map_or(0.0, CircuitBreaker::gauge);
            ctx.metrics().set(dm.breaker_state, state);
        }
        self.publish(ctx);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, M>, _from: ActorId, msg: M) {
        match msg.unwrap() {
            Some(Rpc::Request(req)) => {
                self.on_request(ctx, req);
                // Only an admitted request adds memory, so this is the one place to check.
                if self.out_of_memory(ctx) {
                    return;
                }
            }
            Some(Rpc::Response(r)) => self.on_response(ctx, r),
            Some(Rpc::CacheReply(r)) => self.on_cache_reply(ctx, r),
            _ => return,
        }
        self.publish(ctx);
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, M>, msg: M) {
        if let Some(Rpc::Tick(tick)) = msg.unwrap() {
            self.on_tick(ctx, tick);
            self.publish(ctx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hold_estimate_smooths_as_rfc_6298_does() {
        let mut h = HoldEstimate::first(100.0);
        assert_eq!(
            h,
            HoldEstimate {
                mean_ns: 100.0,
                dev_ns: 50.0
            }
        );
        // dev = 15/16 * 50 + 1/16 * |100 - 180| = 51.875; mean = 31/32 * 100 + 1/32 * 180 = 102.5.
        h.observe(180.0);
        assert_eq!(h.dev_ns, 51.875);
        assert_eq!(h.mean_ns, 102.5);
        // A constant hold time drives the deviation to 0 and the mean to it.
        for _ in 0..2_000 {
            h.observe(40.0);
        }
        assert!((h.mean_ns - 40.0).abs() < 1e-9, "{h:?}");
        assert!(h.dev_ns < 1e-9, "{h:?}");
        // No spread: (ahead + 1) * h / c + h exactly.
        assert!((h.answer_ns(7, 4) - (8.0 * 40.0 / 4.0 + 40.0)).abs() < 1e-6);
        // With spread: the margin is 4 deviations of the sum.
        let s = HoldEstimate {
            mean_ns: 10.0,
            dev_ns: 5.0,
        };
        let want = 3.0 * 10.0 / 2.0 + 10.0 + 4.0 * 5.0 * libm::sqrt(3.0 / 4.0 + 1.0);
        assert_eq!(s.answer_ns(2, 2), want);
        assert!(
            s.answer_ns(3, 2) > s.answer_ns(2, 2),
            "longer queue, later answer"
        );
        assert!(
            s.answer_ns(2, 4) < s.answer_ns(2, 2),
            "more workers, sooner answer"
        );
    }
}
