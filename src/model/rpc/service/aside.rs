//! Cache-aside in the service: the state machine that runs a kind's [`CacheUse`] inside a job.
//!
//! A cached read's job, after its CPU work: Bloom filter → L1 → cache get (phase `CacheGet`,
//! with the cache timeout) → on a fresh hit, answer (maybe refreshing early or in the
//! background); on a miss (or a stale entry, or a cache error), recompute: run the kind's
//! calls exactly as an uncached job does (pools, breakers, retries and all), then write the
//! result to the cache (phase `CacheSet`) and answer. Single-flight keeps one recompute per key
//! in flight: a request that misses while one runs waits for it (phase `Waiting`, holding its
//! worker) and is answered with its outcome. Background refreshes (refresh-ahead,
//! stale-while-revalidate) run as jobs of their own in refresher slots after the request
//! workers: they hold no worker, answer nobody, and use the same calls and pools.
//!
//! Entries carry their own expiry; the service reads an entry as stale from `expires_at -
//! stale_for` on (it wrote it with the TTL plus the stale window), so stale-while-revalidate
//! needs nothing from the cache but a longer TTL, as it is done with Redis in practice.

use std::collections::BTreeMap;

use super::{Job, Outcome, Phase, Service};
use crate::actor::{ActorId, Ctx};
use crate::engine::time::{SimDuration, SimTime};
use crate::metrics::{CounterId, HistogramId};
use crate::model::Carry;
use crate::model::cache::{
    BloomFilter, CacheUse, Eviction, Lookup, Stampede, Store, StoreConfig, WriteMode, XFetch,
    XFetchConfig,
};
use crate::model::rpc::{
    CacheOp, CacheReply, CacheRequest, CacheResult, CachedValue, ConfigError, ErrorKind, NO_KEY,
    Request, Rpc, Status, Tick,
};

/// The most keys a Bloom filter is filled with when the service is built: 10 million (a
/// second or so of hashing; far more than any scenario here needs).
pub const MAX_BLOOM_PRELOAD: u64 = 10_000_000;

/// Checks that kind `k`'s Bloom filter can be filled when the service is built.
pub(super) fn check_bloom_preload(cache: &CacheUse, k: usize) -> Result<(), ConfigError> {
    match &cache.bloom {
        Some(b) if b.expected_keys > MAX_BLOOM_PRELOAD => Err(ConfigError::Invalid {
            field: format!("kinds[{k}].cache.bloom.expected_keys"),
            reason: format!(
                "{} keys to load at start; at most {MAX_BLOOM_PRELOAD}",
                b.expected_keys
            ),
        }),
        _ => Ok(()),
    }
}

/// Where a job stands with its kind's cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CacheStage {
    /// Not a cached kind, a keyless request, or done with the cache.
    Done,
    /// A cached kind's job: once its CPU work is done, it looks its key up.
    Lookup,
    /// Running its calls as a recompute since `since`; `leads` if it is its key's flight (a
    /// single-flight leader, or a background refresh).
    Loading { since: SimTime, leads: bool },
    /// A write running its calls; the write mode applies after them.
    Writing,
    /// Its calls done, writing the result to the cache; `leads` if it still holds its key's
    /// flight (until the write lands, so that nobody recomputes in between).
    Storing { leads: bool },
}

impl CacheStage {
    pub(super) fn initial(cached: bool) -> CacheStage {
        if cached {
            CacheStage::Lookup
        } else {
            CacheStage::Done
        }
    }
}

/// The requests waiting for one key's recompute.
#[derive(Clone, Debug, Default)]
pub(super) struct Flight {
    /// (worker, job seq), in the order they joined.
    waiters: Vec<(u32, u64)>,
}

/// A cached kind's state in one service instance.
#[derive(Clone, Debug)]
pub(super) struct CacheKind {
    pub(super) target: ActorId,
    use_: CacheUse,
    l1: Option<Store>,
    bloom: Option<BloomFilter>,
    xfetch: Option<XFetch>,
    /// Keys with a recompute in flight (single-flight leader or background refresh).
    flights: BTreeMap<u64, Flight>,
    /// With `coalesce_gets`: keys with a get in flight, and the (worker, job seq) of the
    /// lookups waiting for it.
    gets: BTreeMap<u64, Vec<(u32, u64)>>,
    /// The refresher slots `[first, end)` in `Service::workers`.
    slots: (u32, u32),
}

impl CacheKind {
    /// The state of kind `k`'s cache use; its refresher slots start at `*base`, which moves
    /// past them.
    pub(super) fn new(use_: &CacheUse, k: usize, base: &mut u32) -> Result<Self, ConfigError> {
        let field = format!("kinds[{k}].cache");
        let l1 = match &use_.l1 {
            Some(l1) => {
                let config = StoreConfig {
                    max_entries: Some(l1.capacity),
                    eviction: Eviction::Lru,
                    ..StoreConfig::default()
                };
                Some(Store::new(config).map_err(|e| e.within(&format!("{field}.l1")))?)
            }
            None => None,
        };
        let bloom = match &use_.bloom {
            Some(b) => {
                let mut filter =
                    BloomFilter::new(b).map_err(|e| e.within(&format!("{field}.bloom")))?;
                for key in 0..b.expected_keys.min(MAX_BLOOM_PRELOAD) {
                    filter.insert(key);
                }
                Some(filter)
            }
            None => None,
        };
        let xfetch = match &use_.stampede {
            Stampede::XFetch { beta } => Some(
                XFetch::new(&XFetchConfig { beta: *beta })
                    .map_err(|e| e.within(&format!("{field}.stampede.XFetch")))?,
            ),
            _ => None,
        };
        let first = *base;
        *base = base.saturating_add(use_.refresher_slots());
        Ok(CacheKind {
            // Resolved at start; the placeholder is never sent to.
            target: ActorId(u32::MAX),
            use_: use_.clone(),
            l1,
            bloom,
            xfetch,
            flights: BTreeMap::new(),
            gets: BTreeMap::new(),
            slots: (first, *base),
        })
    }
}

/// The service's cache-aside counters (registered when a kind has a cache).
#[derive(Clone, Copy)]
pub(super) struct CacheMetrics {
    lookups: CounterId,
    l1_hits: CounterId,
    gets: CounterId,
    hits: CounterId,
    misses: CounterId,
    errors: CounterId,
    negative_hits: CounterId,
    bloom_rejected: CounterId,
    db_queries: CounterId,
    early_refreshes: CounterId,
    background_refreshes: CounterId,
    refreshes_skipped: CounterId,
    stale_served: CounterId,
    coalesced: CounterId,
    gets_coalesced: CounterId,
    coalesce_timeouts: CounterId,
    sets: CounterId,
    deletes: CounterId,
    latency: HistogramId,
}

/// The status a cached value answers with.
fn status_of(negative: bool) -> Status {
    if negative {
        Status::NotFound
    } else {
        Status::Ok
    }
}

/// The outcome of a job that ends with `status`.
fn outcome_of(status: Status) -> Outcome {
    if status.is_success() {
        Outcome::Completed
    } else {
        Outcome::Failed
    }
}

impl<M: Carry<Rpc>> Service<M> {
    pub(super) fn register_cache_metrics(&mut self, ctx: &mut Ctx<'_, M>) {
        if self.kinds.iter().all(|k| k.cache.is_none()) {
            return;
        }
        self.cache_metrics = Some(CacheMetrics {
            lookups: ctx.counter("cache_lookups_total"),
            l1_hits: ctx.counter("l1_hits_total"),
            gets: ctx.counter("cache_gets_total"),
            hits: ctx.counter("cache_hits_total"),
            misses: ctx.counter("cache_misses_total"),
            errors: ctx.counter("cache_errors_total"),
            negative_hits: ctx.counter("negative_hits_total"),
            bloom_rejected: ctx.counter("bloom_rejected_total"),
            db_queries: ctx.counter("db_queries_total"),
            early_refreshes: ctx.counter("early_refreshes_total"),
            background_refreshes: ctx.counter("background_refreshes_total"),
            refreshes_skipped: ctx.counter("refreshes_skipped_total"),
            stale_served: ctx.counter("stale_served_total"),
            coalesced: ctx.counter("coalesced_total"),
            gets_coalesced: ctx.counter("gets_coalesced_total"),
            coalesce_timeouts: ctx.counter("coalesce_timeouts_total"),
            sets: ctx.counter("cache_sets_total"),
            deletes: ctx.counter("cache_deletes_total"),
            latency: ctx.histogram("cache_latency"),
        });
    }

    fn cm(&self) -> CacheMetrics {
        self.cache_metrics.expect("registered with a cached kind")
    }

    fn count(&self, ctx: &mut Ctx<'_, M>, pick: fn(&CacheMetrics) -> CounterId) {
        let c = pick(&self.cm());
        ctx.metrics().inc(c);
    }

    fn held(&self, w: u32) -> Job {
        self.workers[w as usize].expect("a held job")
    }

    fn cache_of(&self, job: &Job) -> &CacheKind {
        let kind = &self.kinds[job.req.kind as usize];
        kind.cache.as_ref().expect("a cached kind")
    }

    fn cache_of_mut(&mut self, kind: u32) -> &mut CacheKind {
        let kind = &mut self.kinds[kind as usize];
        kind.cache.as_mut().expect("a cached kind")
    }

    fn set_stage(&mut self, w: u32, stage: CacheStage) {
        self.workers[w as usize].as_mut().expect("held").cache = stage;
    }

    /// The CPU work of worker `w`'s cached job is done: Bloom filter, L1, then a cache get.
    pub(super) fn cache_lookup(&mut self, ctx: &mut Ctx<'_, M>, w: u32) {
        let job = self.held(w);
        debug_assert_eq!(job.cache, CacheStage::Lookup);
        let key = job.req.key;
        let c = self.cache_of(&job);
        if key == NO_KEY {
            // Nothing to look up: the request runs its calls as an uncached one does.
            self.set_stage(w, CacheStage::Done);
            self.advance(ctx, w);
            return;
        }
        if c.use_.writes {
            self.set_stage(w, CacheStage::Writing);
            self.advance(ctx, w);
            return;
        }
        self.count(ctx, |m| m.lookups);
        if c.bloom.as_ref().is_some_and(|b| !b.contains(key)) {
            // Certainly absent: no cache, no database.
            self.count(ctx, |m| m.bloom_rejected);
            self.set_stage(w, CacheStage::Done);
            self.finish(ctx, w, Status::NotFound, Outcome::Completed);
            return;
        }
        let now = ctx.now();
        let kind = job.req.kind;
        let l1 = self.cache_of_mut(kind).l1.as_mut();
        if let Some(Lookup::Hit(e)) = l1.map(|l1| l1.get(key, now)) {
            self.count(ctx, |m| m.l1_hits);
            if e.negative {
                self.count(ctx, |m| m.negative_hits);
            }
            self.set_stage(w, CacheStage::Done);
            self.finish(ctx, w, status_of(e.negative), Outcome::Completed);
            return;
        }
        if self.cache_of(&job).use_.coalesce_gets {
            let gets = &mut self.cache_of_mut(kind).gets;
            if let Some(waiters) = gets.get_mut(&key) {
                waiters.push((w, job.seq));
                self.count(ctx, |m| m.gets_coalesced);
                self.workers[w as usize].as_mut().expect("held").phase = Phase::GetWaiting;
                return;
            }
            gets.insert(key, Vec::new());
        }
        self.count(ctx, |m| m.gets);
        self.send_cache_op(ctx, w, CacheOp::Get);
    }

    /// Kind `kind`'s get of `key` ended with `result` (`Unavailable` for a timeout or a
    /// cancelled leader): the lookups that waited for it take the same answer.
    fn resolve_gets(&mut self, ctx: &mut Ctx<'_, M>, kind: u32, key: u64, result: CacheResult) {
        let c = self.cache_of_mut(kind);
        if !c.use_.coalesce_gets {
            return;
        }
        let waiters = c.gets.remove(&key);
        debug_assert!(waiters.is_some(), "a coalescing get of {key} is registered");
        for (w, seq) in waiters.unwrap_or_default() {
            let Some(job) = self.job(w, seq) else {
                continue;
            };
            if !matches!(job.phase, Phase::GetWaiting) {
                continue;
            }
            job.phase = Phase::Working;
            self.on_get(ctx, w, result, false);
        }
    }

    /// Sends worker `w`'s job's cache command and waits for it (with the cache timeout).
    fn send_cache_op(&mut self, ctx: &mut Ctx<'_, M>, w: u32, op: CacheOp) {
        let job = self.held(w);
        let (target, timeout) = {
            let c = self.cache_of(&job);
            (c.target, c.use_.timeout)
        };
        let id = self.next_cache_op;
        self.next_cache_op += 1;
        let previous = self.cache_ops.insert(id, (w, job.seq));
        debug_assert!(previous.is_none());
        let tick = Tick::CacheTimeout {
            worker: w,
            seq: job.seq,
        };
        let timer = ctx.set_timer(timeout, M::wrap(Rpc::Tick(tick)));
        let since = ctx.now();
        let phase = match op {
            CacheOp::Get => Phase::CacheGet {
                op: id,
                timer,
                since,
            },
            CacheOp::Set { .. } | CacheOp::Delete => Phase::CacheSet {
                op: id,
                timer,
                since,
            },
        };
        self.workers[w as usize].as_mut().expect("held").phase = phase;
        let req = CacheRequest {
            id,
            reply_to: ctx.me(),
            key: job.req.key,
            op,
        };
        ctx.send(target, M::wrap(Rpc::CacheRequest(req)));
    }

    pub(super) fn on_cache_reply(&mut self, ctx: &mut Ctx<'_, M>, r: CacheReply) {
        // Unknown: the command timed out, or its job was cancelled.
        let Some((w, seq)) = self.cache_ops.remove(&r.id) else {
            return;
        };
        let latency = self.cm().latency;
        let now = ctx.now();
        let job = self
            .job(w, seq)
            .expect("an outstanding command has its job");
        let (kind, key) = (job.req.kind, job.req.key);
        match job.phase {
            Phase::CacheGet { op, timer, since } => {
                debug_assert_eq!(op, r.id);
                job.phase = Phase::Working;
                ctx.cancel_timer(timer);
                ctx.metrics().record(latency, (now - since).as_nanos());
                self.on_get(ctx, w, r.result, true);
                self.resolve_gets(ctx, kind, key, r.result);
            }
            Phase::CacheSet { op, timer, since } => {
                debug_assert_eq!(op, r.id);
                job.phase = Phase::Working;
                ctx.cancel_timer(timer);
                ctx.metrics().record(latency, (now - since).as_nanos());
                self.answer(ctx, w);
            }
            other => panic!("a cache reply for a job in {other:?}"),
        }
    }

    pub(super) fn on_cache_timeout(&mut self, ctx: &mut Ctx<'_, M>, w: u32) {
        let job = self.workers[w as usize].as_mut().expect("checked");
        let (kind, key) = (job.req.kind, job.req.key);
        match job.phase {
            Phase::CacheGet { op, .. } => {
                job.phase = Phase::Working;
                self.cache_ops.remove(&op);
                self.count(ctx, |m| m.errors);
                self.miss(ctx, w);
                self.resolve_gets(ctx, kind, key, CacheResult::Unavailable);
            }
            Phase::CacheSet { op, .. } => {
                // The write may or may not have landed: the request is answered anyway.
                job.phase = Phase::Working;
                self.cache_ops.remove(&op);
                self.count(ctx, |m| m.errors);
                self.answer(ctx, w);
            }
            // The timer of an earlier command of this job (a get, before its set): stale.
            _ => {}
        }
    }

    /// A recompute or a write is done, its cache command too: answer with what the calls said
    /// (and, for a flight's leader, end the flight: `cache_job_ended`).
    fn answer(&mut self, ctx: &mut Ctx<'_, M>, w: u32) {
        let job = self.held(w);
        debug_assert!(
            matches!(job.cache, CacheStage::Storing { .. }),
            "{:?}",
            job.cache
        );
        self.finish(ctx, w, status_of(job.not_found), Outcome::Completed);
    }

    /// The answer to worker `w`'s cache get (`own`), or to the get it waited for: only a
    /// get's own answer counts as a hit, a miss or an error of the cache.
    fn on_get(&mut self, ctx: &mut Ctx<'_, M>, w: u32, result: CacheResult, own: bool) {
        let count = |this: &Self, ctx: &mut Ctx<'_, M>, pick: fn(&CacheMetrics) -> CounterId| {
            if own {
                this.count(ctx, pick);
            }
        };
        let job = self.held(w);
        let stale_for = self.cache_of(&job).use_.stampede.stale_for();
        let now = ctx.now();
        match result {
            CacheResult::Hit(v) | CacheResult::Stale(v) => {
                // The service wrote it with the TTL plus the stale window.
                let fresh_until = v
                    .expires_at
                    .map(|e| e.checked_sub(stale_for).unwrap_or(SimTime::ZERO));
                let fresh =
                    matches!(result, CacheResult::Hit(_)) && fresh_until.is_none_or(|f| now < f);
                if fresh {
                    self.fresh_hit(ctx, w, v, fresh_until);
                } else {
                    count(self, ctx, |m| m.misses);
                    self.stale_hit(ctx, w, v);
                }
            }
            CacheResult::Miss => {
                count(self, ctx, |m| m.misses);
                self.miss(ctx, w);
            }
            // Refused or down: the cache is no help, go to the source.
            _ => {
                count(self, ctx, |m| m.errors);
                self.miss(ctx, w);
            }
        }
    }

    /// The get found a fresh entry, fresh until `fresh_until`.
    fn fresh_hit(
        &mut self,
        ctx: &mut Ctx<'_, M>,
        w: u32,
        v: CachedValue,
        fresh_until: Option<SimTime>,
    ) {
        let job = self.held(w);
        let (kind, key) = (job.req.kind, job.req.key);
        self.count(ctx, |m| m.hits);
        if v.negative {
            self.count(ctx, |m| m.negative_hits);
        }
        let now = ctx.now();
        self.l1_put(ctx, kind, key, v.negative, v.expires_at);
        let c = self.cache_of(&job);
        match (&c.use_.stampede, fresh_until) {
            (Stampede::XFetch { .. }, Some(expiry)) if !v.negative => {
                let x = c.xfetch.clone().expect("built with XFetch");
                if x.should_refresh(now, expiry, v.delta, ctx.rng()) {
                    // Early, synchronously, by this request: nobody else coordinates.
                    self.count(ctx, |m| m.early_refreshes);
                    self.recompute(ctx, w, false);
                    return;
                }
            }
            (Stampede::RefreshAhead { before }, Some(expiry))
                if !v.negative && expiry.saturating_duration_since(now) <= *before =>
            {
                self.refresh_in_background(ctx, kind, key);
            }
            _ => {}
        }
        self.set_stage(w, CacheStage::Done);
        self.finish(ctx, w, status_of(v.negative), Outcome::Completed);
    }

    /// The get found an entry past its TTL but within its stale window.
    fn stale_hit(&mut self, ctx: &mut Ctx<'_, M>, w: u32, v: CachedValue) {
        let job = self.held(w);
        let (kind, key) = (job.req.kind, job.req.key);
        let c = self.cache_of(&job);
        let serve_stale = match c.use_.stampede {
            Stampede::StaleWhileRevalidate { .. } => {
                self.refresh_in_background(ctx, kind, key);
                true
            }
            // Someone is already recomputing it: the stale value beats waiting.
            Stampede::SingleFlight { stale_for, .. } => {
                !stale_for.is_zero() && c.flights.contains_key(&key)
            }
            _ => false,
        };
        if serve_stale {
            self.count(ctx, |m| m.stale_served);
            self.set_stage(w, CacheStage::Done);
            self.finish(ctx, w, status_of(v.negative), Outcome::Completed);
        } else {
            self.miss(ctx, w);
        }
    }

    /// Nothing usable in the cache: recompute, or (single-flight) wait for the one running.
    fn miss(&mut self, ctx: &mut Ctx<'_, M>, w: u32) {
        let job = self.held(w);
        let key = job.req.key;
        let c = self.cache_of(&job);
        let Stampede::SingleFlight { wait, .. } = c.use_.stampede else {
            self.recompute(ctx, w, false);
            return;
        };
        if !c.flights.contains_key(&key) {
            self.cache_of_mut(job.req.kind)
                .flights
                .insert(key, Flight::default());
            self.recompute(ctx, w, true);
            return;
        }
        self.count(ctx, |m| m.coalesced);
        let tick = Tick::FlightTimeout {
            worker: w,
            seq: job.seq,
        };
        let timer = ctx.set_timer(wait, M::wrap(Rpc::Tick(tick)));
        let flight = self.cache_of_mut(job.req.kind).flights.get_mut(&key);
        flight.expect("checked").waiters.push((w, job.seq));
        let job = self.workers[w as usize].as_mut().expect("held");
        job.phase = Phase::Waiting { timer };
        job.cache = CacheStage::Done;
    }

    /// Runs worker `w`'s calls as a recompute of its key.
    fn recompute(&mut self, ctx: &mut Ctx<'_, M>, w: u32, leads: bool) {
        self.count(ctx, |m| m.db_queries);
        let since = ctx.now();
        self.set_stage(w, CacheStage::Loading { since, leads });
        self.advance(ctx, w);
    }

    pub(super) fn on_flight_timeout(&mut self, ctx: &mut Ctx<'_, M>, w: u32) {
        let job = self.held(w);
        let Phase::Waiting { .. } = job.phase else {
            return;
        };
        self.leave_flight(w, &job);
        self.count(ctx, |m| m.coalesce_timeouts);
        self.workers[w as usize].as_mut().expect("held").phase = Phase::Working;
        self.finish(ctx, w, Status::Err(ErrorKind::Timeout), Outcome::Failed);
    }

    fn leave_flight(&mut self, w: u32, job: &Job) {
        let c = self.cache_of_mut(job.req.kind);
        let flight = c.flights.get_mut(&job.req.key);
        let flight = flight.expect("a waiter's flight is in flight");
        let at = flight.waiters.iter().position(|&x| x == (w, job.seq));
        flight
            .waiters
            .remove(at.expect("a waiter is in its flight"));
    }

    /// Answers every request waiting on key `key`'s flight of kind `kind` with `status`; the
    /// flight itself goes on (new requests for the key still wait) unless `end`.
    fn resolve_flight(
        &mut self,
        ctx: &mut Ctx<'_, M>,
        kind: u32,
        key: u64,
        status: Status,
        end: bool,
    ) {
        let flights = &mut self.cache_of_mut(kind).flights;
        let waiters = if end {
            flights.remove(&key).map(|f| f.waiters)
        } else {
            flights
                .get_mut(&key)
                .map(|f| std::mem::take(&mut f.waiters))
        };
        let Some(waiters) = waiters else {
            debug_assert!(
                false,
                "resolving a flight of key {key} that is not in flight"
            );
            return;
        };
        for (w, seq) in waiters {
            let job = self.job(w, seq).expect("a waiter holds its worker");
            let Phase::Waiting { timer } = job.phase else {
                panic!("waiter {w} is not waiting: {:?}", job.phase);
            };
            job.phase = Phase::Working;
            ctx.cancel_timer(timer);
            self.finish(ctx, w, status, outcome_of(status));
        }
    }

    /// Starts a background refresh of `key` for `kind`, unless one is in flight or every
    /// refresher slot is taken.
    fn refresh_in_background(&mut self, ctx: &mut Ctx<'_, M>, kind: u32, key: u64) {
        let c = self.cache_of_mut(kind);
        if c.flights.contains_key(&key) {
            return;
        }
        let (first, end) = c.slots;
        let free = (first..end).find(|&s| self.workers[s as usize].is_none());
        let Some(slot) = free else {
            self.count(ctx, |m| m.refreshes_skipped);
            return;
        };
        self.cache_of_mut(kind)
            .flights
            .insert(key, Flight::default());
        self.count(ctx, |m| m.background_refreshes);
        self.count(ctx, |m| m.db_queries);
        let seq = self.next_seq;
        self.next_seq += 1;
        let now = ctx.now();
        // No CPU work: the job starts its calls at once, from a timer like any job's.
        let tick = Tick::WorkDone { worker: slot, seq };
        let work_timer = ctx.set_timer(SimDuration::ZERO, M::wrap(Rpc::Tick(tick)));
        let req = Request {
            id: seq,
            kind,
            reply_to: ctx.me(),
            created: now,
            deadline: None,
            key,
        };
        let cache = CacheStage::Loading {
            since: now,
            leads: true,
        };
        let job = Job::start(req, now, now, seq, cache, true, work_timer, None);
        self.workers[slot as usize] = Some(job);
    }

    /// Worker `w`'s calls are done (all succeeded or fell back). A recompute writes its
    /// result to the cache and a write applies its mode; returns whether a cache command was
    /// sent (the job is then answered when it is done), or false to answer now.
    pub(super) fn cache_store(&mut self, ctx: &mut Ctx<'_, M>, w: u32) -> bool {
        let job = self.held(w);
        let (kind, key) = (job.req.kind, job.req.key);
        let status = status_of(job.not_found);
        let now = ctx.now();
        match job.cache {
            CacheStage::Loading { since, leads } => {
                // The waiters have their answer now; the flight lasts until the write lands.
                self.set_stage(w, CacheStage::Storing { leads });
                if leads {
                    self.resolve_flight(ctx, kind, key, status, false);
                }
                let c = self.cache_of(&job);
                let (ttl, stale_for) = (c.use_.ttl.clone(), c.use_.stampede.stale_for());
                let (negative_ttl, size) = (c.use_.negative_ttl, c.use_.value_size);
                let op = if job.not_found {
                    negative_ttl.map(|t| CacheOp::Set {
                        ttl: Some(t),
                        delta: SimDuration::ZERO,
                        size,
                        negative: true,
                    })
                } else {
                    let ttl = ttl.map(|t| t.draw(ctx.rng()).saturating_add(stale_for));
                    Some(CacheOp::Set {
                        ttl,
                        delta: now - since,
                        size,
                        negative: false,
                    })
                };
                let Some(op) = op else {
                    return false;
                };
                let CacheOp::Set { ttl, negative, .. } = op else {
                    unreachable!("a set");
                };
                let expires = ttl.map(|t| now.saturating_add(t));
                self.l1_put(ctx, kind, key, negative, expires);
                self.count(ctx, |m| m.sets);
                self.send_cache_op(ctx, w, op);
                true
            }
            CacheStage::Writing => {
                self.set_stage(w, CacheStage::Storing { leads: false });
                if job.not_found {
                    // Nothing was written: the key does not exist.
                    return false;
                }
                let c = self.cache_of(&job);
                let (mode, ttl, size) = (c.use_.mode, c.use_.ttl.clone(), c.use_.value_size);
                match mode {
                    WriteMode::Aside => {
                        if let Some(l1) = self.cache_of_mut(kind).l1.as_mut() {
                            l1.delete(key);
                        }
                        self.count(ctx, |m| m.deletes);
                        self.send_cache_op(ctx, w, CacheOp::Delete);
                        true
                    }
                    WriteMode::WriteThrough => {
                        let ttl = ttl.map(|t| t.draw(ctx.rng()));
                        self.l1_put(ctx, kind, key, false, ttl.map(|t| now.saturating_add(t)));
                        self.count(ctx, |m| m.sets);
                        let op = CacheOp::Set {
                            ttl,
                            delta: now.saturating_duration_since(job.started),
                            size,
                            negative: false,
                        };
                        self.send_cache_op(ctx, w, op);
                        true
                    }
                    WriteMode::WriteAround => false,
                }
            }
            CacheStage::Done | CacheStage::Lookup | CacheStage::Storing { .. } => false,
        }
    }

    /// Puts `key` in kind `kind`'s L1, if it has one, for the L1's own TTL counted from now,
    /// as Caffeine's `expireAfterWrite` does: the in-process cache does not know when the
    /// shared entry expires, so a value may outlive it there by up to the L1 TTL (that is the
    /// staleness an L1 costs), and the instances' L1 entries of one key expire at times of
    /// their own, not with the shared entry: that is why an L1 absorbs a mass expiry of the
    /// shared cache (C2). A negative entry is capped at the shared one's life (`expires`), so
    /// a "not found" is never believed longer than its negative TTL.
    fn l1_put(
        &mut self,
        ctx: &mut Ctx<'_, M>,
        kind: u32,
        key: u64,
        negative: bool,
        expires: Option<SimTime>,
    ) {
        let now = ctx.now();
        let c = self.cache_of_mut(kind);
        let (Some(l1), Some(l1_config)) = (c.l1.as_mut(), c.use_.l1.as_ref()) else {
            return;
        };
        let left = expires
            .filter(|_| negative)
            .map(|e| e.saturating_duration_since(now));
        let ttl = left.map_or(l1_config.ttl, |left| left.min(l1_config.ttl));
        if ttl.is_zero() {
            return;
        }
        let size = u64::from(c.use_.value_size);
        // An LRU store with an entry limit only: it always stores.
        let _ = if negative {
            l1.set_negative(key, now, Some(ttl), size, ctx.rng())
        } else {
            l1.set(key, now, Some(ttl), size, SimDuration::ZERO, ctx.rng())
        };
    }

    /// Worker `w`'s job ended with `status` (it has been taken from its slot): the flight it
    /// led ends, its waiters answered with that outcome (the recompute's, or the failure or
    /// cancellation that ended it first).
    pub(super) fn cache_job_ended(&mut self, ctx: &mut Ctx<'_, M>, job: &Job, status: Status) {
        match job.cache {
            CacheStage::Loading { leads: true, .. } | CacheStage::Storing { leads: true } => {
                self.resolve_flight(ctx, job.req.kind, job.req.key, status, true);
            }
            _ => {}
        }
    }

    /// Cancels what worker `w`'s job waits for in a cache phase (its deadline has passed).
    pub(super) fn cancel_cache_phase(&mut self, ctx: &mut Ctx<'_, M>, w: u32) {
        let job = self.held(w);
        match job.phase {
            Phase::CacheGet { op, timer, .. } => {
                ctx.cancel_timer(timer);
                self.cache_ops.remove(&op);
                // Nobody else will hear from this get: its waiters go on without it.
                self.resolve_gets(ctx, job.req.kind, job.req.key, CacheResult::Unavailable);
            }
            Phase::CacheSet { op, timer, .. } => {
                ctx.cancel_timer(timer);
                self.cache_ops.remove(&op);
            }
            Phase::GetWaiting => {
                let gets = &mut self.cache_of_mut(job.req.kind).gets;
                let waiters = gets.get_mut(&job.req.key).expect("its get is in flight");
                let at = waiters.iter().position(|&x| x == (w, job.seq));
                waiters.remove(at.expect("a waiter is listed"));
            }
            Phase::Waiting { timer } => {
                ctx.cancel_timer(timer);
                self.leave_flight(w, &job);
            }
            other => panic!("not a cache phase: {other:?}"),
        }
    }
}
