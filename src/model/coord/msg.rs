//! The messages of the lease family: lock requests and replies, side-effect writes, register
//! reads and writes, and the family's timer payloads.
//!
//! As in the other families, every request carries a caller-chosen `id` and the actor the
//! answer goes to (`reply_to`), and every reply carries the request's `id`.

use super::fenced::{ClaimOutcome, EffectOutcome, EffectWrite};
use super::lock::{LockKey, Token};
use super::register::{Applied, RegisterWrite, Version};
use crate::actor::ActorId;
use crate::engine::time::SimDuration;

/// The messages of the family.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lease {
    /// `SET lock me NX PX ttl`.
    Acquire {
        id: u64,
        reply_to: ActorId,
        lock: LockKey,
        ttl: SimDuration,
    },
    /// Extend `token`'s lease by `ttl` from now (the service's now).
    Renew {
        id: u64,
        reply_to: ActorId,
        lock: LockKey,
        token: Token,
        ttl: SimDuration,
    },
    /// Delete the lock if `token` holds it; `done` marks the job completed.
    Release {
        id: u64,
        reply_to: ActorId,
        lock: LockKey,
        token: Token,
        done: bool,
    },
    LockReply {
        id: u64,
        lock: LockKey,
        result: LockResult,
    },
    /// A new holder's claim of job `job` at the fenced store, with its token.
    Claim {
        id: u64,
        reply_to: ActorId,
        resource: u64,
        token: Token,
        job: u64,
    },
    ClaimReply {
        id: u64,
        outcome: ClaimOutcome,
    },
    /// A side effect for the fenced store.
    Effect {
        id: u64,
        reply_to: ActorId,
        write: EffectWrite,
    },
    EffectReply {
        id: u64,
        outcome: EffectOutcome,
    },
    /// A register read.
    Read {
        id: u64,
        reply_to: ActorId,
        key: u64,
    },
    ReadReply {
        id: u64,
        key: u64,
        current: Option<Version>,
    },
    /// A register write.
    Write {
        id: u64,
        reply_to: ActorId,
        write: RegisterWrite,
        /// The write this one's writer read before writing (its causal predecessor), and its
        /// own previous write: what the store needs to tell a causal loss from a concurrent
        /// one. Real systems carry the same (a read's etag, a session token).
        read: Option<u64>,
        prev: Option<u64>,
    },
    WriteReply {
        id: u64,
        outcome: Applied,
    },
    Tick(Tick),
}

/// A lock service's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockResult {
    /// Acquired. `token` identifies the grant (Redis's random lock value, for renew and
    /// release); `fence` is the fencing token to send with writes (`token` itself when the
    /// service issues fencing tokens, 0 when it does not, as plain Redis does not).
    Granted { token: Token, fence: Token },
    /// Someone holds it.
    Held,
    /// The job is completed.
    Done,
    /// A renewal took.
    Renewed,
    /// A release took.
    Released,
    /// A renewal or release found another token or none: the lease is gone.
    Lost,
}

/// Timer payloads of the family's components.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tick {
    /// Worker: its timer of kind `kind` numbered `seq` is due.
    Worker { kind: u32, seq: u64 },
    /// Register client: the next operation is due.
    Client { seq: u64 },
}
