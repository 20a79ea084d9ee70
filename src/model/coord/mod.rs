//! Coordination: leaders, leases and clocks (L1–L3 of the catalogue).
//!
//! Distributed systems coordinate through things that look like local primitives and are not:
//! a lock that expires while its holder is paused, a leader that does not know it was
//! replaced, a timestamp read off a clock that runs ahead. This family models them with pure
//! cores tested on their exact semantics — a lease lock table with fencing tokens
//! ([`lock`]), a side-effect store that fences and deduplicates ([`fenced`]), register merge
//! rules by wall clock, hybrid logical clock or sequence number ([`register`]), Lamport and
//! hybrid logical clocks ([`clock`]) — and actors that embed them, speaking [`Lease`]: a
//! [`LockService`], a [`FencedStorage`], job [`Worker`]s that take a lock, may pause and then
//! charge a card, and a [`RegisterStore`] with its [`RegisterClient`]s.
//!
//! Time discipline: every lease, TTL and timestamp is read off the acting host's own clock
//! (`ctx.local_clock()`), so clock faults act on them as they would in production; true time
//! (`ctx.now()`) is used only to measure, and the lease oracle ([`LeaseLog`]) that compares
//! holders' beliefs in true time is instrumentation that nothing reads back.
//!
//! Leadership by votes is [`raft`]: terms, RequestVote with the log up-to-date rule,
//! AppendEntries with majority commit, CheckQuorum and PreVote, a client and a safety
//! observer; its timers run on the host's monotonic clock, so drift changes them and steps do
//! not.

pub mod clock;
pub mod fenced;
pub mod lock;
mod msg;
pub mod raft;
pub mod register;
pub mod repl;
mod service;
mod worker;

pub use clock::{Hlc, HlcStamp, Lamport};
pub use fenced::{AuditEntry, ClaimOutcome, EffectOutcome, EffectWrite, FencePolicy, FencedStore};
pub use lock::{Acquire, LockKey, LockTable, NotHeld, Token};
pub use msg::{Lease, LockResult, Tick};
pub use register::{Applied, Merge, Register, RegisterWrite, Stamp, Version, WriteId};
pub use service::{
    FencedStorage, FencedStorageConfig, LockService, LockServiceConfig, RegisterClient,
    RegisterClientConfig, RegisterStore, RegisterStoreConfig,
};
pub use worker::{Hold, LeaseLog, Worker, WorkerConfig, overlaps};
