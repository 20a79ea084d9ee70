//! # faultline
//!
//! A deterministic, single-threaded discrete-event simulator of distributed failure modes.
//! Actors (services, brokers, caches, lock services, or your own) run on hosts joined by a
//! simulated network, on a virtual clock, with faults injected as data. The same seed gives the
//! same run, event for event, so a failure found once can be replayed, shrunk and compared with
//! its fixes on identical random draws.
//!
//! ```
//! use faultline::{Actor, ActorId, Ctx, Sim, SimDuration, SimTime};
//!
//! /// Answers every ping with a pong.
//! struct Echo;
//! impl Actor<&'static str> for Echo {
//!     fn on_message(&mut self, ctx: &mut Ctx<'_, &'static str>, from: ActorId, _msg: &'static str) {
//!         ctx.send(from, "pong");
//!     }
//! }
//!
//! /// Pings the echo once a second and counts the pongs.
//! struct Pinger { echo: ActorId, pongs: u64 }
//! impl Actor<&'static str> for Pinger {
//!     fn on_start(&mut self, ctx: &mut Ctx<'_, &'static str>) {
//!         ctx.set_timer(SimDuration::from_secs(1), "tick");
//!     }
//!     fn on_timer(&mut self, ctx: &mut Ctx<'_, &'static str>, _tick: &'static str) {
//!         ctx.send(self.echo, "ping");
//!         ctx.set_timer(SimDuration::from_secs(1), "tick");
//!     }
//!     fn on_message(&mut self, _ctx: &mut Ctx<'_, &'static str>, _from: ActorId, _msg: &'static str) {
//!         self.pongs += 1;
//!     }
//! }
//!
//! let mut sim = Sim::new(42);
//! let (a, b) = (sim.add_host("a").unwrap(), sim.add_host("b").unwrap());
//! let echo = sim.spawn(b, "echo", || Echo).unwrap();
//! let pinger = sim.spawn(a, "pinger", move || Pinger { echo, pongs: 0 }).unwrap();
//! sim.run_until(SimTime::from_nanos(10_500_000_000)); // 10.5 s
//! // Ten pings left at 1 s .. 10 s; the default link takes 1 ms each way.
//! assert_eq!(sim.inspect::<Pinger>(pinger).unwrap().pongs, 10);
//! ```
//!
//! The layers, from the bottom: [`engine`] (time, queue, streams, trace, run loop), [`actor`]
//! (the `Actor` trait and its `Ctx`), [`net`] (hosts, links, partitions, clocks), [`fault`]
//! (faults as data and the seeded nemesis), [`dist`] (distributions), [`metrics`]; above them
//! [`model`] (built-in components), [`check`] (checks on a run), [`scenario`] (scenario files),
//! [`report`], and [`prop`] (property tests over scenarios: fault plans, parameters and seeds
//! as proptest strategies, and failures shrunk to a scenario file that replays them).

pub mod actor;
pub mod check;
pub mod dist;
pub mod engine;
pub mod fault;
pub mod metrics;
pub mod model;
pub mod net;
pub mod prop;
pub mod report;
pub mod scenario;

pub use actor::{Actor, ActorId, Ctx, Durable, Message, TimerId};
pub use dist::{Dist, Sampler, Scalar};
pub use engine::rng::{SimRng, Streams};
pub use engine::sim::{
    DeterminismReport, LimitKind, Limits, Sim, SimConfig, SimError, Stats, Status, Step, Verdict,
    check_determinism,
};
pub use engine::time::{SimDuration, SimTime, TimeError};
pub use engine::trace::{Divergence, TraceKind, TraceRecord};
pub use fault::{Fault, FaultEntry, FaultPlan, Nemesis, NemesisKind, Skew};
pub use metrics::Metrics;
pub use net::{CutMode, HostId, LinkSpec};
