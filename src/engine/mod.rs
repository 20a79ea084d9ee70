//! The kernel: virtual time, the event queue, random streams, the trace and the run loop.
//!
//! Nothing in here knows what a broker, a cache or a lease is; nothing in here reads the wall
//! clock or the operating system's entropy. Same seed, same trace.

pub mod queue;
pub mod rng;
pub mod sim;
pub mod time;
pub mod trace;
