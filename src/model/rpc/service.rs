//! A service: `workers` threads in front of a bounded FIFO queue, each request doing some CPU
//! work and then a sequence of synchronous downstream calls *while holding its worker*, some of
//! them through a client-side connection pool.
//!
//! Holding the worker is the mechanism of cascading timeouts (catalogue S1): when a dependency
//! slows down, every worker ends up waiting on it, and requests that never touch it queue behind
//! them. Holding a pooled connection for the whole query is the mechanism of pool exhaustion
//! (S3): throughput is capped at `pool_size / query time`, and waiters time out.
//!
//! Not yet here (they slot in around `begin_call` and `fail`): retries with backoff, circuit
//! breakers, bulkheads (a pool per dependency), load shedding on the request's deadline.

use std::collections::{BTreeMap, VecDeque};
use std::marker::PhantomData;

use serde::{Deserialize, Serialize};

use super::{
    ConfigError, ErrorKind, Request, Rpc, Status, Tick, Validate, check_kind_name, compile,
    nonzero, reply, resolve,
};
use crate::actor::{Actor, ActorId, Ctx, TimerId};
use crate::dist::{Dist, Sampler};
use crate::engine::time::{SimDuration, SimTime};
use crate::metrics::{CounterId, GaugeId, HistogramId};
use crate::model::Carry;

/// HikariCP's `maximumPoolSize` default, 10 ("Frequently used" properties in the HikariCP
/// README, github.com/brettwooldridge/HikariCP: "*Default: 10*").
pub const DEFAULT_POOL_SIZE: u32 = 10;

/// HikariCP's `connectionTimeout` default, 30 s (same README: "*Default: 30000 (30
/// seconds)*"), the longest a caller waits for a connection.
pub const DEFAULT_ACQUIRE_TIMEOUT: SimDuration = SimDuration::from_secs(30);

/// One synchronous downstream call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallConfig {
    /// The callee's actor name.
    pub target: String,
    /// The request kind sent to it.
    #[serde(default)]
    pub kind: u32,
    /// Give up (and fail the request with `Timeout`) after this long.
    pub timeout: SimDuration,
    /// Acquire a connection from the service's pool first and hold it for the call.
    #[serde(default)]
    pub pooled: bool,
}

/// One request kind the service handles.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindConfig {
    pub name: String,
    /// CPU work per request, scaled by `Slow` faults.
    pub service: Dist,
    /// Made in order after the CPU work, each only if the previous one succeeded.
    #[serde(default)]
    pub calls: Vec<CallConfig>,
}

/// A client-side connection pool (HikariCP-like: fixed size, FIFO waiters).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    #[serde(default = "default_pool_size")]
    pub pool_size: u32,
    #[serde(default = "default_acquire_timeout")]
    pub acquire_timeout: SimDuration,
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
        }
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
    /// Indexed by `Request::kind`.
    pub kinds: Vec<KindConfig>,
    /// The pool that `pooled` calls go through.
    #[serde(default)]
    pub pool: Option<PoolConfig>,
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
        }
        out
    }
}

impl Validate for ServiceConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        nonzero("workers", u64::from(self.workers))?;
        if self.kinds.is_empty() {
            return Err(ConfigError::Empty {
                field: "kinds".into(),
            });
        }
        if let Some(pool) = &self.pool {
            nonzero("pool.pool_size", u64::from(pool.pool_size))?;
            nonzero("pool.acquire_timeout", pool.acquire_timeout.as_nanos())?;
        }
        for (k, kind) in self.kinds.iter().enumerate() {
            check_kind_name(format!("kinds[{k}].name"), &kind.name)?;
            compile(format!("kinds[{k}].service"), &kind.service)?;
            for (c, call) in kind.calls.iter().enumerate() {
                nonzero(
                    format!("kinds[{k}].calls[{c}].timeout"),
                    call.timeout.as_nanos(),
                )?;
                if call.pooled && self.pool.is_none() {
                    return Err(ConfigError::Invalid {
                        field: format!("kinds[{k}].calls[{c}].pooled"),
                        reason: "the call goes through the pool, but the service has none \
                                 (add `pool: Some((pool_size: 10))`)"
                            .into(),
                    });
                }
            }
        }
        Ok(())
    }
}

/// A downstream call, resolved.
#[derive(Clone, Copy, Debug)]
struct Call {
    target: ActorId,
    kind: u32,
    timeout: SimDuration,
    pooled: bool,
}

#[derive(Clone, Debug)]
struct Kind {
    service: Sampler,
    calls: Vec<Call>,
}

/// Where a job stands.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// Doing its CPU work.
    Working,
    /// Waiting in the pool's queue since `since`.
    Acquiring { since: SimTime, timer: TimerId },
    /// Waiting for the response to call `call_id`.
    Calling {
        call_id: u64,
        timer: TimerId,
        pooled: bool,
    },
}

/// A request a worker holds.
#[derive(Clone, Copy, Debug)]
struct Job {
    req: Request,
    arrived: SimTime,
    /// Unique per job in this incarnation: timers carry it so a stale one is recognised.
    seq: u64,
    /// The index of the current (or next) downstream call.
    call: usize,
    phase: Phase,
}

#[derive(Clone, Debug)]
struct Pool {
    size: u32,
    acquire_timeout: SimDuration,
    in_use: u32,
    /// Workers waiting for a connection, first come first served.
    waiters: VecDeque<u32>,
}

#[derive(Clone, Copy)]
struct ServiceMetrics {
    queue_len: GaugeId,
    busy_workers: GaugeId,
    rejected: CounterId,
    completed: CounterId,
    failed: CounterId,
    latency: HistogramId,
    /// Registered only for a service with a pool.
    pool: Option<PoolMetrics>,
}

#[derive(Clone, Copy)]
struct PoolMetrics {
    in_use: GaugeId,
    waiting: GaugeId,
    timeouts: CounterId,
    wait: HistogramId,
}

/// A service with a worker pool, a queue, downstream calls and an optional connection pool.
///
/// Metrics (owner = the service's name): `queue_len` and `busy_workers` gauges,
/// `rejected_total` (no worker and no queue room), `completed_total` (replied Ok),
/// `failed_total` (replied with an error from a call, a call timeout or a pool timeout),
/// `latency` histogram (ns, arrival to reply, every request a worker took, ok or failed); with a
/// pool, `pool_in_use` and `pool_waiting` gauges, `pool_timeouts_total` and the `pool_wait`
/// histogram (ns, every acquire, including the ones that timed out).
#[derive(Clone)]
pub struct Service<M> {
    config: ServiceConfig,
    kinds: Vec<Kind>,
    workers: Vec<Option<Job>>,
    queue: VecDeque<(Request, SimTime)>,
    pool: Option<Pool>,
    /// Outstanding downstream calls: call id -> (worker, job seq).
    calls: BTreeMap<u64, (u32, u64)>,
    next_call_id: u64,
    next_seq: u64,
    metrics: Option<ServiceMetrics>,
    _m: PhantomData<M>,
}

impl<M> Service<M> {
    /// Validates `config` and prepares the samplers.
    pub fn new(config: ServiceConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let kinds = config
            .kinds
            .iter()
            .enumerate()
            .map(|(k, kind)| {
                Ok(Kind {
                    service: compile(format!("kinds[{k}].service"), &kind.service)?,
                    // Targets are resolved at start; the placeholder id is never sent to.
                    calls: kind
                        .calls
                        .iter()
                        .map(|c| Call {
                            target: ActorId(u32::MAX),
                            kind: c.kind,
                            timeout: c.timeout,
                            pooled: c.pooled,
                        })
                        .collect(),
                })
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
        let pool = config.pool.as_ref().map(|p| Pool {
            size: p.pool_size,
            acquire_timeout: p.acquire_timeout,
            in_use: 0,
            waiters: VecDeque::new(),
        });
        Ok(Service {
            workers: vec![None; config.workers as usize],
            config,
            kinds,
            queue: VecDeque::new(),
            pool,
            calls: BTreeMap::new(),
            next_call_id: 0,
            next_seq: 0,
            metrics: None,
            _m: PhantomData,
        })
    }

    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }

    pub fn busy_workers(&self) -> usize {
        self.workers.iter().filter(|w| w.is_some()).count()
    }

    /// Pooled connections in use.
    pub fn pool_in_use(&self) -> u32 {
        self.pool.as_ref().map_or(0, |p| p.in_use)
    }
}

impl<M: Carry<Rpc>> Service<M> {
    fn m(&self) -> ServiceMetrics {
        self.metrics.expect("registered at start")
    }

    fn pool_m(&self) -> PoolMetrics {
        self.m()
            .pool
            .expect("a service with a pool registers its metrics")
    }

    fn publish(&self, ctx: &mut Ctx<'_, M>) {
        let m = self.m();
        let (queue_len, busy) = (self.queue.len() as f64, self.busy_workers() as f64);
        ctx.metrics().set(m.queue_len, queue_len);
        ctx.metrics().set(m.busy_workers, busy);
        if let (Some(p), Some(pm)) = (&self.pool, m.pool) {
            debug_assert!(p.in_use <= p.size);
            debug_assert!(p.waiters.is_empty() || p.in_use == p.size);
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
        let seq = self.next_seq;
        self.next_seq += 1;
        self.workers[w as usize] = Some(Job {
            req,
            arrived,
            seq,
            call: 0,
            phase: Phase::Working,
        });
        let work = ctx.sample_duration(&self.kinds[req.kind as usize].service);
        let work = ctx.work(work);
        ctx.set_timer(work, M::wrap(Rpc::Tick(Tick::WorkDone { worker: w, seq })));
    }

    /// Makes the job's next call, or replies Ok if there is none left.
    fn advance(&mut self, ctx: &mut Ctx<'_, M>, w: u32) {
        let job = self.workers[w as usize].expect("advancing a held job");
        let Some(&call) = self.kinds[job.req.kind as usize].calls.get(job.call) else {
            self.finish(ctx, w, Status::Ok);
            return;
        };
        if !call.pooled {
            self.send_call(ctx, w, call);
            return;
        }
        let pool = self
            .pool
            .as_mut()
            .expect("validated: pooled calls have a pool");
        if pool.in_use < pool.size {
            pool.in_use += 1;
            let pm = self.pool_m();
            ctx.metrics().record(pm.wait, 0);
            self.send_call(ctx, w, call);
        } else {
            pool.waiters.push_back(w);
            let after = pool.acquire_timeout;
            let tick = Tick::PoolTimeout {
                worker: w,
                seq: job.seq,
            };
            let timer = ctx.set_timer(after, M::wrap(Rpc::Tick(tick)));
            let job = self.workers[w as usize].as_mut().expect("held");
            job.phase = Phase::Acquiring {
                since: ctx.now(),
                timer,
            };
        }
    }

    fn send_call(&mut self, ctx: &mut Ctx<'_, M>, w: u32, call: Call) {
        let call_id = self.next_call_id;
        self.next_call_id += 1;
        let job = self.workers[w as usize]
            .as_mut()
            .expect("calling from a held job");
        let seq = job.seq;
        let now = ctx.now();
        let tick = Tick::CallTimeout { worker: w, seq };
        let timer = ctx.set_timer(call.timeout, M::wrap(Rpc::Tick(tick)));
        job.phase = Phase::Calling {
            call_id,
            timer,
            pooled: call.pooled,
        };
        self.calls.insert(call_id, (w, seq));
        let req = Request {
            id: call_id,
            kind: call.kind,
            reply_to: ctx.me(),
            created: now,
            deadline: Some(now.saturating_add(call.timeout)),
        };
        ctx.send(call.target, M::wrap(Rpc::Request(req)));
    }

    /// Returns a connection: the first waiter gets it at once.
    fn release(&mut self, ctx: &mut Ctx<'_, M>) {
        let pool = self.pool.as_mut().expect("releasing into a pool");
        debug_assert!(pool.in_use > 0, "releasing a connection that is not held");
        let Some(w) = pool.waiters.pop_front() else {
            pool.in_use -= 1;
            return;
        };
        // The connection passes straight to the waiter: `in_use` is unchanged.
        let job = self.workers[w as usize].expect("a waiter holds its worker");
        let Phase::Acquiring { since, timer } = job.phase else {
            panic!("waiter {w} is not acquiring: {:?}", job.phase);
        };
        ctx.cancel_timer(timer);
        let pm = self.pool_m();
        let wait = (ctx.now() - since).as_nanos();
        ctx.metrics().record(pm.wait, wait);
        let call = self.kinds[job.req.kind as usize].calls[job.call];
        debug_assert!(call.pooled);
        self.send_call(ctx, w, call);
    }

    /// Replies to the job's caller, frees the worker and takes the next queued request.
    fn finish(&mut self, ctx: &mut Ctx<'_, M>, w: u32, status: Status) {
        let job = self.workers[w as usize]
            .take()
            .expect("finishing a held job");
        reply(ctx, job.req.reply_to, job.req.id, status);
        let m = self.m();
        let counter = if status == Status::Ok {
            m.completed
        } else {
            m.failed
        };
        ctx.metrics().inc(counter);
        let latency = (ctx.now() - job.arrived).as_nanos();
        ctx.metrics().record(m.latency, latency);
        if let Some((req, arrived)) = self.queue.pop_front() {
            self.begin(ctx, w, req, arrived);
        }
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
        if let Some(w) = self.workers.iter().position(Option::is_none) {
            debug_assert!(self.queue.is_empty(), "a free worker means an empty queue");
            self.begin(ctx, w as u32, req, now);
        } else if self
            .config
            .queue_capacity
            .is_none_or(|cap| self.queue.len() < cap as usize)
        {
            self.queue.push_back((req, now));
        } else {
            let m = self.m();
            ctx.metrics().inc(m.rejected);
            reply(ctx, req.reply_to, req.id, Status::Err(ErrorKind::Rejected));
        }
    }

    fn on_response(&mut self, ctx: &mut Ctx<'_, M>, id: u64, status: Status) {
        // Unknown ids are late responses to calls that already timed out.
        let Some((w, seq)) = self.calls.remove(&id) else {
            return;
        };
        let job = self.job(w, seq).expect("an outstanding call has its job");
        let Phase::Calling {
            call_id,
            timer,
            pooled,
        } = job.phase
        else {
            panic!("a response for a job that is not calling: {:?}", job.phase);
        };
        debug_assert_eq!(call_id, id);
        job.call += 1;
        ctx.cancel_timer(timer);
        if pooled {
            self.release(ctx);
        }
        match status {
            Status::Ok => self.advance(ctx, w),
            Status::Err(e) => self.finish(ctx, w, Status::Err(e)),
        }
    }

    fn on_tick(&mut self, ctx: &mut Ctx<'_, M>, tick: Tick) {
        match tick {
            Tick::WorkDone { worker, seq } if self.job(worker, seq).is_some() => {
                self.advance(ctx, worker);
            }
            Tick::CallTimeout { worker, seq } => {
                let Some(job) = self.job(worker, seq) else {
                    return;
                };
                let Phase::Calling {
                    call_id, pooled, ..
                } = job.phase
                else {
                    return;
                };
                let removed = self.calls.remove(&call_id);
                debug_assert_eq!(removed, Some((worker, seq)));
                if pooled {
                    self.release(ctx);
                }
                self.finish(ctx, worker, Status::Err(ErrorKind::Timeout));
            }
            Tick::PoolTimeout { worker, seq } => {
                let Some(job) = self.job(worker, seq) else {
                    return;
                };
                let Phase::Acquiring { since, .. } = job.phase else {
                    return;
                };
                let pool = self.pool.as_mut().expect("acquiring from a pool");
                let at = pool.waiters.iter().position(|&x| x == worker);
                let at = at.expect("an acquiring worker is in the waiters");
                pool.waiters.remove(at);
                let pm = self.pool_m();
                let wait = (ctx.now() - since).as_nanos();
                ctx.metrics().record(pm.wait, wait);
                ctx.metrics().inc(pm.timeouts);
                self.finish(ctx, worker, Status::Err(ErrorKind::PoolTimeout));
            }
            _ => {}
        }
    }
}

impl<M: Carry<Rpc>> Actor<M> for Service<M> {
    fn on_start(&mut self, ctx: &mut Ctx<'_, M>) {
        for (k, kind) in self.config.kinds.iter().enumerate() {
            for (c, call) in kind.calls.iter().enumerate() {
                let field = format!("kinds[{k}].calls[{c}].target");
                self.kinds[k].calls[c].target = resolve(ctx, &field, &call.target);
            }
        }
        self.metrics = Some(ServiceMetrics {
            queue_len: ctx.gauge("queue_len"),
            busy_workers: ctx.gauge("busy_workers"),
            rejected: ctx.counter("rejected_total"),
            completed: ctx.counter("completed_total"),
            failed: ctx.counter("failed_total"),
            latency: ctx.histogram("latency"),
            pool: self.pool.is_some().then(|| PoolMetrics {
                in_use: ctx.gauge("pool_in_use"),
                waiting: ctx.gauge("pool_waiting"),
                timeouts: ctx.counter("pool_timeouts_total"),
                wait: ctx.histogram("pool_wait"),
            }),
        });
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, M>, _from: ActorId, msg: M) {
        match msg.unwrap() {
            Some(Rpc::Request(req)) => self.on_request(ctx, req),
            Some(Rpc::Response(r)) => self.on_response(ctx, r.id, r.status),
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
