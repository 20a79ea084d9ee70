//! Built-in components, one module per family.
//!
//! Components are ordinary actors written against the public API; nothing in the engine knows
//! about them. A component family defines the messages it speaks, and works inside any message
//! type that can [`Carry`] them — so a user's own actors and built-in ones can share one message
//! enum and talk to each other.

pub mod autoscale;
pub mod cache;
pub mod coord;
pub mod log;
pub mod queueing;
pub mod rpc;

use crate::actor::Message;

/// A message type that can carry a family's messages of type `T`.
///
/// Every message type carries itself; a user's enum carries a family by wrapping it in one of
/// its variants:
/// ```
/// use faultline::model::{Carry, queueing::Job};
/// #[derive(Clone, Debug)]
/// enum MyMsg { Job(Job), Audit(u64) }
/// impl Carry<Job> for MyMsg {
///     fn wrap(job: Job) -> Self { MyMsg::Job(job) }
///     fn unwrap(self) -> Option<Job> { match self { MyMsg::Job(j) => Some(j), _ => None } }
/// }
/// ```
pub trait Carry<T>: Message {
    fn wrap(inner: T) -> Self;
    /// The family's message, or None if this message belongs to someone else.
    fn unwrap(self) -> Option<T>;
}

impl<T: Message> Carry<T> for T {
    fn wrap(inner: T) -> Self {
        inner
    }

    fn unwrap(self) -> Option<T> {
        Some(self)
    }
}
