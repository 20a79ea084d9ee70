//! Raft leader election and log replication (catalogue L1): a [`RaftCore`] per server as a pure
//! state machine (`core.rs`), the [`RaftNode`] actor that runs it on timers measured by its
//! host's clock, a [`RaftClient`] that proposes entries to whoever it believes leads, and a
//! [`RaftObserver`] that tests use as a safety oracle.

mod core;

pub use core::{
    AppendEntries, AppendReply, CoreConfig, Entry, Message, NodeId, Output, RaftCore, RaftDisk,
    RequestVote, Role, StepDown, Term, Vote,
};
