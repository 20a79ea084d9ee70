//! Queueing primitives: a job source and a multi-server FIFO station.
//!
//! These are the smallest components that let the engine be checked against queueing theory
//! (M/M/1, M/M/c) and that a custom actor can be mixed with. A [`Source`] emits jobs with a
//! given inter-arrival distribution; a [`Station`] serves them with `servers` parallel servers
//! and an unbounded FIFO queue, and forwards each finished job to its `next` hop (or finishes
//! it); metrics record waiting and sojourn times and the number in the system.

use std::collections::VecDeque;
use std::marker::PhantomData;

use crate::actor::{Actor, ActorId, Ctx};
use crate::dist::Sampler;
use crate::engine::time::SimTime;
use crate::metrics::{CounterId, GaugeId, HistogramId};
use crate::model::Carry;

/// Errors in building a queueing component.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueueingError {
    #[error("a station needs at least one server (servers = 0)")]
    NoServers,
    #[error("service times must be a distribution of durations (write \"5ms\", not 5)")]
    ServiceNotDuration,
}

/// A unit of work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Job {
    /// A job created at `created` by its source.
    Work { id: u64, created: SimTime },
    /// A station's own timer: server `server` finished its job.
    Done { server: u32 },
    /// A source's own timer: time for the next job.
    Tick,
}

/// Emits `limit` jobs (or forever) to `target`, with inter-arrival times from `gap`.
pub struct Source<M> {
    target: ActorId,
    gap: Sampler,
    limit: Option<u64>,
    sent: u64,
    _m: PhantomData<M>,
}

impl<M> Source<M> {
    pub fn new(target: ActorId, gap: Sampler, limit: Option<u64>) -> Self {
        Source {
            target,
            gap,
            limit,
            sent: 0,
            _m: PhantomData,
        }
    }

    pub fn sent(&self) -> u64 {
        self.sent
    }
}

impl<M: Carry<Job>> Source<M> {
    fn schedule(&mut self, ctx: &mut Ctx<'_, M>) {
        if self.limit.is_none_or(|l| self.sent < l) {
            let gap = ctx.sample_duration(&self.gap);
            ctx.set_timer(gap, M::wrap(Job::Tick));
        }
    }
}

impl<M: Carry<Job>> Actor<M> for Source<M> {
    fn on_start(&mut self, ctx: &mut Ctx<'_, M>) {
        self.schedule(ctx);
    }

    fn on_message(&mut self, _ctx: &mut Ctx<'_, M>, _from: ActorId, _msg: M) {}

    fn on_timer(&mut self, ctx: &mut Ctx<'_, M>, msg: M) {
        if let Some(Job::Tick) = msg.unwrap() {
            let job = Job::Work {
                id: self.sent,
                created: ctx.now(),
            };
            self.sent += 1;
            ctx.send(self.target, M::wrap(job));
            self.schedule(ctx);
        }
    }
}

/// The metric handles of a station.
#[derive(Clone, Copy)]
struct StationMetrics {
    wait: HistogramId,
    sojourn: HistogramId,
    completed: CounterId,
    waited: CounterId,
    in_system: GaugeId,
}

/// `servers` identical servers in front of one unbounded FIFO queue.
///
/// Metrics (owner = the station's name): `wait` and `sojourn` histograms (ns, measured from the
/// job's arrival at this station), `completed_total`, `waited_total` (jobs that found every
/// server busy), and the `in_system` gauge (queued + in service).
#[derive(Clone)]
pub struct Station<M> {
    service: Sampler,
    next: Option<ActorId>,
    /// (job, arrival time here) per server; None when idle.
    busy: Vec<Option<(Job, SimTime)>>,
    queue: VecDeque<(Job, SimTime)>,
    metrics: Option<StationMetrics>,
    _m: PhantomData<M>,
}

impl<M> Station<M> {
    /// A station with `servers` servers (at least one) and the given service times, forwarding
    /// finished jobs to `next`. Build it once and clone it into the actor's factory.
    pub fn new(
        servers: u32,
        service: Sampler,
        next: Option<ActorId>,
    ) -> Result<Self, QueueingError> {
        if servers == 0 {
            return Err(QueueingError::NoServers);
        }
        if !service.dist().is_duration() {
            return Err(QueueingError::ServiceNotDuration);
        }
        Ok(Station {
            service,
            next,
            busy: vec![None; servers as usize],
            queue: VecDeque::new(),
            metrics: None,
            _m: PhantomData,
        })
    }

    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }

    pub fn busy_servers(&self) -> usize {
        self.busy.iter().filter(|s| s.is_some()).count()
    }
}

impl<M: Carry<Job>> Station<M> {
    fn begin(&mut self, ctx: &mut Ctx<'_, M>, server: usize, job: Job, arrived: SimTime) {
        let m = self.metrics.expect("registered at start");
        let wait = (ctx.now() - arrived).as_nanos();
        ctx.metrics().record(m.wait, wait);
        self.busy[server] = Some((job, arrived));
        let service = ctx.sample_duration(&self.service);
        let service = ctx.work(service);
        ctx.set_timer(
            service,
            M::wrap(Job::Done {
                server: server as u32,
            }),
        );
    }

    fn in_system(&self) -> f64 {
        (self.queue.len() + self.busy_servers()) as f64
    }
}

impl<M: Carry<Job>> Actor<M> for Station<M> {
    fn on_start(&mut self, ctx: &mut Ctx<'_, M>) {
        self.metrics = Some(StationMetrics {
            wait: ctx.histogram("wait"),
            sojourn: ctx.histogram("sojourn"),
            completed: ctx.counter("completed_total"),
            waited: ctx.counter("waited_total"),
            in_system: ctx.gauge("in_system"),
        });
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, M>, _from: ActorId, msg: M) {
        let Some(job @ Job::Work { .. }) = msg.unwrap() else {
            return;
        };
        let m = self.metrics.expect("registered at start");
        let now = ctx.now();
        match self.busy.iter().position(Option::is_none) {
            Some(server) => self.begin(ctx, server, job, now),
            None => {
                ctx.metrics().add(m.waited, 1);
                self.queue.push_back((job, now));
            }
        }
        let n = self.in_system();
        ctx.metrics().set(m.in_system, n);
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, M>, msg: M) {
        let Some(Job::Done { server }) = msg.unwrap() else {
            return;
        };
        let m = self.metrics.expect("registered at start");
        let server = server as usize;
        let (job, arrived) = self.busy[server]
            .take()
            .expect("a finishing server has a job");
        let sojourn = (ctx.now() - arrived).as_nanos();
        ctx.metrics().record(m.sojourn, sojourn);
        ctx.metrics().add(m.completed, 1);
        if let Some(next) = self.next {
            ctx.send(next, M::wrap(job));
        }
        if let Some((job, arrived)) = self.queue.pop_front() {
            self.begin(ctx, server, job, arrived);
        }
        let n = self.in_system();
        ctx.metrics().set(m.in_system, n);
    }
}
