//! A database server: a hard cap on connections and queries that slow down with concurrency.
//!
//! Query time model: a query that starts while `active` queries run (itself included) takes
//! `base * multiplier(active)`, with `base` drawn from its kind's distribution and scaled by
//! `Slow` faults. The multiplier is either linear, `1 + contention * (active - 1)` (each
//! concurrent query adds a fixed fraction: lock, buffer and CPU contention, to first order), or
//! a table of `(active, multiplier)` points interpolated linearly and held flat beyond its ends
//! (for a measured curve with a knee). The time is fixed when the query starts: queries that
//! start later do not slow down ones already running. That keeps the model one timer per query;
//! a processor-sharing model would be closer for CPU-bound queries and is left for later.
//!
//! Beyond `max_connections` a query is refused at once with `Unavailable`, as PostgreSQL refuses
//! connections beyond `max_connections` ("FATAL: sorry, too many clients already").
//!
//! Keys: a query about a key that does not exist is answered `NotFound`, after its full query
//! time. Which keys exist follows the key-space convention ([`KeySpace`]): ids below 2^63 are
//! rows, ids from 2^63 on are not ([`NO_KEY`] is keyless and answered `Ok`). A miss costs as
//! much as a hit because a point lookup descends the same index either way and only the heap
//! fetch is saved; that is why penetration traffic (C3) loads a database as much as real
//! reads. With `track_keys`, the queries for keys `0..track_keys` (the hottest) are counted
//! one by one, and in bursts of overlapping queries ([`KeyBursts`]): the queries a hot key's
//! expiry sends.
//!
//! With `optimistic`, each query is a transaction under optimistic concurrency control: it reads
//! the record when it starts, works for its query time, then validates and commits. A writing
//! query (`writes`, the default) fails with [`ErrorKind::Conflict`] if another writing query
//! committed while it ran, and commits otherwise: first committer wins, the rule of snapshot
//! isolation and of every compare-and-swap (a DynamoDB conditional write, an `UPDATE ... WHERE
//! version = v`). The work is done either way, so a conflict costs as much as a commit: that
//! is what makes contention expensive. Reads see the snapshot they started with and never
//! conflict. Each key is a record with its own version, so two overlapping writes contend
//! only if they touch the same key; keyless requests all touch one record, so every pair of
//! overlapping keyless writes contends: the hot-row case (one counter, one account, one lease)
//! and the worst case of contention. A write of a key that does not exist is answered
//! `NotFound` and neither commits nor conflicts. Two queries that end at the same instant commit in event order,
//! so the outcome of a tie is deterministic. A crash loses the running transactions with the
//! rest of the volatile state; none of them commits.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use serde::{Deserialize, Serialize};

use super::{
    ConfigError, ErrorKind, NO_KEY, Request, Rpc, Status, Tick, Validate, check_kind_name,
    check_unique_names, compile, nonzero, reply,
};
use crate::actor::{Actor, ActorId, Ctx};
use crate::dist::{Dist, Sampler};
use crate::engine::time::SimTime;
use crate::metrics::{CounterId, GaugeId, HistogramId};
use crate::model::Carry;
#[cfg(doc)]
use crate::model::cache::KeySpace;
use crate::model::cache::{KeyBursts, MAX_TRACKED_KEYS, MISSING_KEY_BASE};

/// PostgreSQL's `max_connections` default: "The default is typically 100 connections"
/// (PostgreSQL documentation, 19.3.1 Connection Settings).
pub const DEFAULT_MAX_CONNECTIONS: u32 = 100;

/// How query time grows with the number of queries running.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Contention {
    /// `multiplier = 1 + c * (active - 1)`, c >= 0.
    Linear(f64),
    /// `(active, multiplier)` points with strictly increasing `active` (>= 1) and multipliers
    /// > 0; linear between points, flat beyond the ends.
    Table(Vec<(u32, f64)>),
}

impl Default for Contention {
    fn default() -> Self {
        Contention::Linear(0.0)
    }
}

impl Contention {
    /// The slowdown of a query that starts with `active` queries running (itself included).
    pub fn multiplier(&self, active: u32) -> f64 {
        debug_assert!(active >= 1, "the starting query is active");
        match self {
            Contention::Linear(c) => 1.0 + c * f64::from(active.saturating_sub(1)),
            Contention::Table(points) => {
                let a = f64::from(active);
                let i = points.partition_point(|&(x, _)| x <= active);
                match (i.checked_sub(1).map(|j| points[j]), points.get(i)) {
                    (None, Some(&(_, y))) | (Some((_, y)), None) => y,
                    (Some((x0, y0)), Some(&(x1, y1))) => {
                        let t = (a - f64::from(x0)) / f64::from(x1 - x0);
                        y0 + t * (y1 - y0)
                    }
                    (None, None) => 1.0,
                }
            }
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        match self {
            Contention::Linear(c) if !(c.is_finite() && *c >= 0.0) => Err(ConfigError::Invalid {
                field: "contention.Linear".into(),
                reason: format!("{c} must be finite and >= 0"),
            }),
            Contention::Linear(_) => Ok(()),
            Contention::Table(points) => {
                if points.is_empty() {
                    return Err(ConfigError::Empty {
                        field: "contention.Table".into(),
                    });
                }
                for (i, &(x, y)) in points.iter().enumerate() {
                    let field = format!("contention.Table[{i}]");
                    if x == 0 {
                        return Err(ConfigError::Zero { field });
                    }
                    if !(y.is_finite() && y > 0.0) {
                        let reason = format!("multiplier {y} must be finite and > 0");
                        return Err(ConfigError::Invalid { field, reason });
                    }
                    if i > 0 && x <= points[i - 1].0 {
                        let reason = "points must have strictly increasing `active`".into();
                        return Err(ConfigError::Invalid { field, reason });
                    }
                }
                Ok(())
            }
        }
    }
}

/// One query kind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryConfig {
    pub name: String,
    /// Query time when running alone.
    pub time: Dist,
    /// Whether the query writes the record, which matters only with the database's
    /// `optimistic`: a write can conflict and, committed, makes the writes that overlap it
    /// conflict; a read does neither. Default true, so that switching `optimistic` on makes
    /// every query a transaction that can lose its race unless it is declared read-only, as a
    /// transaction is read-write unless it says `READ ONLY` (SQL `SET TRANSACTION`).
    #[serde(default = "yes")]
    pub writes: bool,
}

fn yes() -> bool {
    true
}

/// A [`Database`]'s config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// Indexed by `Request::kind`; names unique (callers may refer to a query by name).
    pub queries: Vec<QueryConfig>,
    #[serde(default)]
    pub contention: Contention,
    /// Count the queries for keys `0..track_keys` one by one, and in bursts (see the module
    /// docs), at most 1,024 keys; default 0, none.
    #[serde(default)]
    pub track_keys: u32,
    /// Run each query as an optimistic transaction on the one record (see the module docs):
    /// a write fails with `Conflict` if another write committed while it ran. Default false:
    /// PostgreSQL's default isolation, READ COMMITTED, makes a second concurrent `UPDATE` of a
    /// row wait for the first and then proceed, while under REPEATABLE READ it fails with
    /// "could not serialize access due to concurrent update" once the first commits
    /// (PostgreSQL documentation, 13.2 Transaction Isolation). That outcome, the later writer
    /// failing, is what this models; PostgreSQL finds it at the row lock, an optimistic store
    /// at commit, as here.
    #[serde(default)]
    pub optimistic: bool,
}

fn default_max_connections() -> u32 {
    DEFAULT_MAX_CONNECTIONS
}

impl DatabaseConfig {
    /// The query names in table order: what a caller's `KindRef::Name` resolves against.
    pub fn kind_names(&self) -> Vec<&str> {
        self.queries.iter().map(|q| q.name.as_str()).collect()
    }
}

impl Validate for DatabaseConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        nonzero("max_connections", u64::from(self.max_connections))?;
        if self.queries.is_empty() {
            return Err(ConfigError::Empty {
                field: "queries".into(),
            });
        }
        for (i, q) in self.queries.iter().enumerate() {
            check_kind_name(format!("queries[{i}].name"), &q.name)?;
            compile(format!("queries[{i}].time"), &q.time)?;
        }
        let names = self.queries.iter().map(|q| q.name.as_str());
        check_unique_names(names, |i| format!("queries[{i}].name"))?;
        if self.track_keys > MAX_TRACKED_KEYS {
            return Err(ConfigError::Invalid {
                field: "track_keys".into(),
                reason: format!("{} is more than {MAX_TRACKED_KEYS}", self.track_keys),
            });
        }
        self.contention.validate()
    }
}

#[derive(Clone, Copy)]
struct DatabaseMetrics {
    active: GaugeId,
    queries: CounterId,
    commits: CounterId,
    conflicts: CounterId,
    rejected: CounterId,
    not_found: CounterId,
    latency: HistogramId,
    /// With `track_keys`: the burst sizes.
    bursts: Option<HistogramId>,
}

/// Whether a row with this key exists (the key-space convention; keyless requests always).
fn exists(key: u64) -> bool {
    key < MISSING_KEY_BASE || key == NO_KEY
}

/// A query that is running.
#[derive(Clone, Copy, Debug)]
struct Running {
    req: Request,
    arrived: SimTime,
    /// The record's version when the query started: what it read.
    read_version: u64,
}

/// A database server.
///
/// Metrics (owner = the database's name): `active` gauge (queries running), `queries_total`
/// (queries that ran to their end), of them `commits_total` (answered Ok), `conflicts_total`
/// (failed with `Conflict`, only with `optimistic`) and `not_found_total` (answered
/// `NotFound`), so `queries_total = commits_total + conflicts_total + not_found_total`;
/// `rejected_total` (beyond `max_connections`, never started); `latency` histogram (ns,
/// arrival to reply of the queries that ran to their end, conflicts included: a conflict is
/// known only at commit time). All are registered whether or not `optimistic` is on, so a
/// scenario's checks name the same metrics in every variant. With `track_keys: n`:
/// `key_queries_total.<k>` for each key `k < n` (queries started for it), and the
/// `burst_queries` histogram (queries per burst of a tracked key, recorded when the burst
/// ends: `burst_queries.max` is the largest stampede).
#[derive(Clone)]
pub struct Database<M> {
    config: DatabaseConfig,
    times: Vec<Sampler>,
    /// Running queries by the database's own number.
    active: BTreeMap<u64, Running>,
    next: u64,
    bursts: KeyBursts,
    /// Each record's version: writes committed to it by this incarnation, by key ([`NO_KEY`]
    /// is the keyless record). A transaction that read version `v` may commit a write only
    /// while the version is still `v`. Only optimistic databases keep it.
    versions: BTreeMap<u64, u64>,
    metrics: Option<DatabaseMetrics>,
    /// With `track_keys`: `key_queries_total.<k>`, by key.
    key_counters: Vec<CounterId>,
    _m: PhantomData<M>,
}

impl<M> Database<M> {
    /// Validates `config` and prepares the samplers.
    pub fn new(config: DatabaseConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let times = config
            .queries
            .iter()
            .enumerate()
            .map(|(i, q)| compile(format!("queries[{i}].time"), &q.time))
            .collect::<Result<_, _>>()?;
        let bursts = KeyBursts::new(config.track_keys);
        Ok(Database {
            config,
            times,
            active: BTreeMap::new(),
            next: 0,
            bursts,
            versions: BTreeMap::new(),
            metrics: None,
            key_counters: Vec::new(),
            _m: PhantomData,
        })
    }

    /// Queries running now.
    pub fn active(&self) -> usize {
        self.active.len()
    }

    /// Writes committed to the record of `key` by this incarnation ([`NO_KEY`]: the keyless
    /// record); always 0 unless the database is `optimistic`.
    pub fn version_of(&self, key: u64) -> u64 {
        self.versions.get(&key).copied().unwrap_or(0)
    }

    /// Whether query `kind` writes the record: an unknown kind never runs, so it does not.
    fn writes(&self, kind: u32) -> bool {
        self.config
            .queries
            .get(kind as usize)
            .is_some_and(|q| q.writes)
    }
}

impl<M: Carry<Rpc>> Actor<M> for Database<M> {
    fn on_start(&mut self, ctx: &mut Ctx<'_, M>) {
        let tracked = self.bursts.tracked();
        self.metrics = Some(DatabaseMetrics {
            active: ctx.gauge("active"),
            queries: ctx.counter("queries_total"),
            commits: ctx.counter("commits_total"),
            conflicts: ctx.counter("conflicts_total"),
            rejected: ctx.counter("rejected_total"),
            not_found: ctx.counter("not_found_total"),
            latency: ctx.histogram("latency"),
            bursts: (tracked > 0).then(|| ctx.histogram("burst_queries")),
        });
        self.key_counters = (0..tracked)
            .map(|k| ctx.counter(&format!("key_queries_total.{k}")))
            .collect();
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, M>, _from: ActorId, msg: M) {
        let Some(Rpc::Request(req)) = msg.unwrap() else {
            return;
        };
        let m = self.metrics.expect("registered at start");
        let full = self.active.len() >= self.config.max_connections as usize;
        let Some(time) = self.times.get(req.kind as usize).filter(|_| !full) else {
            ctx.metrics().inc(m.rejected);
            reply(
                ctx,
                req.reply_to,
                req.id,
                Status::Err(ErrorKind::Unavailable),
            );
            return;
        };
        let base = ctx.sample_duration(time);
        let active = self.active.len() as u32 + 1;
        let factor = self.config.contention.multiplier(active);
        debug_assert!(factor.is_finite() && factor > 0.0);
        // Saturating float-to-int: an absurd product means "never finishes" rather than a panic.
        let query = base.mul_f64(factor).unwrap_or(crate::SimDuration::MAX);
        let query = ctx.work(query);
        let id = self.next;
        self.next += 1;
        let running = Running {
            req,
            arrived: ctx.now(),
            read_version: self.version_of(req.key),
        };
        self.active.insert(id, running);
        debug_assert!(self.active.len() <= self.config.max_connections as usize);
        if self.bursts.started(req.key) {
            let k = self.bursts.slot(req.key).expect("tracked");
            ctx.metrics().inc(self.key_counters[k]);
        }
        ctx.set_timer(query, M::wrap(Rpc::Tick(Tick::QueryDone(id))));
        let n = self.active.len() as f64;
        ctx.metrics().set(m.active, n);
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, M>, msg: M) {
        let Some(Rpc::Tick(Tick::QueryDone(id))) = msg.unwrap() else {
            return;
        };
        // Timers die with the incarnation that set them, and each query sets one.
        let done = self
            .active
            .remove(&id)
            .expect("a finishing query is active");
        let m = self.metrics.expect("registered at start");
        let req = done.req;
        let version = self.version_of(req.key);
        debug_assert!(done.read_version <= version, "versions only grow");
        let writes = self.writes(req.kind);
        // First committer wins: a write whose read is no longer the record's latest version
        // would overwrite a commit it never saw.
        let conflict = self.config.optimistic && writes && done.read_version != version;
        let status = if !exists(req.key) {
            ctx.metrics().inc(m.not_found);
            Status::NotFound
        } else if conflict {
            ctx.metrics().inc(m.conflicts);
            Status::Err(ErrorKind::Conflict)
        } else {
            if writes && self.config.optimistic {
                *self.versions.entry(req.key).or_insert(0) += 1;
            }
            ctx.metrics().inc(m.commits);
            Status::Ok
        };
        reply(ctx, req.reply_to, req.id, status);
        if let (Some(size), Some(h)) = (self.bursts.finished(req.key), m.bursts) {
            ctx.metrics().record(h, u64::from(size));
        }
        ctx.metrics().inc(m.queries);
        let latency = (ctx.now() - done.arrived).as_nanos();
        ctx.metrics().record(m.latency, latency);
        let n = self.active.len() as f64;
        ctx.metrics().set(m.active, n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipliers_follow_the_formula_and_the_table() {
        let lin = Contention::Linear(0.5);
        assert_eq!(lin.multiplier(1), 1.0);
        assert_eq!(lin.multiplier(5), 3.0);
        let table = Contention::Table(vec![(1, 1.0), (10, 2.0), (20, 10.0)]);
        assert_eq!(table.multiplier(1), 1.0);
        assert_eq!(table.multiplier(10), 2.0);
        assert_eq!(table.multiplier(15), 6.0);
        assert_eq!(table.multiplier(100), 10.0, "flat beyond the last point");
        let late = Contention::Table(vec![(4, 2.0)]);
        assert_eq!(late.multiplier(1), 2.0, "flat before the first point");
        assert!(
            Contention::Table(vec![(2, 1.0), (2, 3.0)])
                .validate()
                .is_err()
        );
        assert!(Contention::Linear(-0.1).validate().is_err());
    }
}
