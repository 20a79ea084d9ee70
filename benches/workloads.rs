//! The three engine workloads of `../shared/bench-reference`, built on faultline's public actor
//! API, so the engine's speed can be compared with the bare event loop as a ratio.
//!
//! Model events are counted as the yardstick counts them (two per customer, one per heartbeat),
//! whatever number of engine events the model uses. Shared by `benches/engine.rs` and by the
//! integration tests, which check that each workload computes the right answer (an engine that
//! is fast because it is wrong is no use).

#![allow(dead_code)]

use std::collections::VecDeque;

use faultline::{
    Actor, ActorId, Ctx, Dist, Limits, Sampler, Scalar, Sim, SimConfig, SimDuration, SimTime,
    TimerId,
};

/// Timer payloads of the queueing models.
#[derive(Clone, Copy, Debug)]
pub enum QueueEvent {
    Arrival,
    Departure,
}

/// One FIFO queue with one server: Poisson arrivals, exponential service, all on the actor's
/// own random stream.
pub struct Mm1 {
    arrival: Sampler,
    service: Sampler,
    arrivals_left: u64,
    /// Arrival times of waiting customers.
    waiting: VecDeque<SimTime>,
    /// Arrival time of the customer in service.
    in_service: Option<SimTime>,
    pub departures: u64,
    pub sojourn_ns: u128,
}

fn exp_sampler(rate_per_s: f64) -> Sampler {
    let mean = SimDuration::from_secs_f64(1.0 / rate_per_s).expect("a positive rate");
    Dist::Exp {
        mean: Scalar::duration(mean),
    }
    .compile()
    .expect("a valid distribution")
}

impl Mm1 {
    pub fn new(lambda: f64, mu: f64, customers: u64) -> Self {
        Mm1 {
            arrival: exp_sampler(lambda),
            service: exp_sampler(mu),
            arrivals_left: customers,
            waiting: VecDeque::new(),
            in_service: None,
            departures: 0,
            sojourn_ns: 0,
        }
    }

    pub fn mean_sojourn_s(&self) -> f64 {
        self.sojourn_ns as f64 / 1e9 / self.departures.max(1) as f64
    }

    fn start_service(&mut self, ctx: &mut Ctx<'_, QueueEvent>, arrived: SimTime) {
        self.in_service = Some(arrived);
        let service = ctx.sample_duration(&self.service);
        ctx.set_timer(service, QueueEvent::Departure);
    }
}

impl Actor<QueueEvent> for Mm1 {
    fn on_start(&mut self, ctx: &mut Ctx<'_, QueueEvent>) {
        if self.arrivals_left > 0 {
            let gap = ctx.sample_duration(&self.arrival);
            ctx.set_timer(gap, QueueEvent::Arrival);
        }
    }

    fn on_message(&mut self, _ctx: &mut Ctx<'_, QueueEvent>, _from: ActorId, _msg: QueueEvent) {}

    fn on_timer(&mut self, ctx: &mut Ctx<'_, QueueEvent>, ev: QueueEvent) {
        let now = ctx.now();
        match ev {
            QueueEvent::Arrival => {
                self.arrivals_left -= 1;
                if self.arrivals_left > 0 {
                    let gap = ctx.sample_duration(&self.arrival);
                    ctx.set_timer(gap, QueueEvent::Arrival);
                }
                if self.in_service.is_some() {
                    self.waiting.push_back(now);
                } else {
                    self.start_service(ctx, now);
                }
            }
            QueueEvent::Departure => {
                let arrived = self
                    .in_service
                    .take()
                    .expect("a departure has a customer in service");
                self.departures += 1;
                self.sojourn_ns += u128::from((now - arrived).as_nanos());
                if let Some(next) = self.waiting.pop_front() {
                    self.start_service(ctx, next);
                }
            }
        }
    }
}

fn unlimited(seed: u64) -> SimConfig {
    let mut config = SimConfig::new(seed);
    config.limits = Limits {
        max_events: u64::MAX,
        ..Limits::default()
    };
    config
}

/// `queues` independent M/M/1 queues sharing `customers` customers; returns the sim and ids.
pub fn build_queues(queues: usize, customers: u64, seed: u64) -> (Sim<QueueEvent>, Vec<ActorId>) {
    let mut sim = Sim::with_config(unlimited(seed)).expect("valid config");
    let host = sim.add_host("h").expect("one host");
    let share = customers / queues as u64;
    let ids = (0..queues)
        .map(|i| {
            let n = share + u64::from((i as u64) < customers % queues as u64);
            sim.spawn(host, &format!("q{i}"), move || Mm1::new(0.9, 1.0, n))
                .expect("unique names")
        })
        .collect();
    (sim, ids)
}

/// Runs the queues to completion; returns (model events, mean sojourn in seconds).
pub fn run_queues(queues: usize, customers: u64, seed: u64) -> (u64, f64) {
    let (mut sim, ids) = build_queues(queues, customers, seed);
    sim.run();
    let (mut departures, mut sojourn) = (0u64, 0u128);
    for id in ids {
        let q = sim.inspect::<Mm1>(id).expect("queues never crash");
        departures += q.departures;
        sojourn += q.sojourn_ns;
    }
    assert_eq!(departures, customers, "every customer departs");
    (2 * customers, sojourn as f64 / 1e9 / departures as f64)
}

/// Timer payloads of the heartbeat model.
#[derive(Clone, Copy, Debug)]
pub enum Beat {
    Heartbeat,
    SessionTimeout,
}

/// A member that heartbeats every 3 s and, on each heartbeat, re-arms its 45 s session timeout
/// (cancelling the old one): most pending events in a real cluster look like this.
pub struct Member {
    first: SimDuration,
    session: Option<TimerId>,
    pub heartbeats: u64,
    pub expired: u64,
}

pub const HEARTBEAT: SimDuration = SimDuration::from_secs(3);
pub const SESSION: SimDuration = SimDuration::from_secs(45);

impl Actor<Beat> for Member {
    fn on_start(&mut self, ctx: &mut Ctx<'_, Beat>) {
        ctx.set_timer(self.first, Beat::Heartbeat);
    }

    fn on_message(&mut self, _ctx: &mut Ctx<'_, Beat>, _from: ActorId, _msg: Beat) {}

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Beat>, beat: Beat) {
        match beat {
            Beat::Heartbeat => {
                self.heartbeats += 1;
                if let Some(old) = self.session.take() {
                    ctx.cancel_timer(old);
                }
                self.session = Some(ctx.set_timer(SESSION, Beat::SessionTimeout));
                ctx.set_timer(HEARTBEAT, Beat::Heartbeat);
            }
            Beat::SessionTimeout => self.expired += 1,
        }
    }
}

/// `actors` members; first heartbeats at offsets drawn from the "workload" stream.
pub fn build_timers(actors: usize, seed: u64) -> (Sim<Beat>, Vec<ActorId>) {
    use rand_core::Rng;
    let mut sim = Sim::with_config(unlimited(seed)).expect("valid config");
    let host = sim.add_host("h").expect("one host");
    let mut phases = faultline::Streams::new(seed).fork("workload");
    let ids = (0..actors)
        .map(|i| {
            let first = SimDuration::from_nanos(phases.next_u64() % HEARTBEAT.as_nanos());
            sim.spawn(host, &format!("m{i}"), move || Member {
                first,
                session: None,
                heartbeats: 0,
                expired: 0,
            })
            .expect("unique names")
        })
        .collect();
    (sim, ids)
}

/// Runs the heartbeat model for 10 simulated minutes; returns (heartbeats, timeouts expired).
pub fn run_timers(actors: usize, seed: u64) -> (u64, u64) {
    run_timers_for(actors, SimDuration::from_secs(600), seed)
}

/// Runs the heartbeat model for `horizon`; returns (heartbeats, timeouts expired).
pub fn run_timers_for(actors: usize, horizon: SimDuration, seed: u64) -> (u64, u64) {
    let (mut sim, ids) = build_timers(actors, seed);
    sim.run_until(SimTime::ZERO + horizon);
    let (mut beats, mut expired) = (0, 0);
    for id in ids {
        let m = sim.inspect::<Member>(id).expect("members never crash");
        beats += m.heartbeats;
        expired += m.expired;
    }
    (beats, expired)
}
