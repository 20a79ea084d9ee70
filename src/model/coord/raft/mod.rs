//! Raft leader election and log replication (catalogue L1, split brain, and the issue's
//! `RaftGroup`): terms, randomised election timeouts, RequestVote with the log up-to-date rule,
//! AppendEntries heartbeats and replication with majority commit of current-term entries,
//! CheckQuorum step-down and PreVote.
//!
//! - `core.rs`: [`RaftCore`], one server as a pure state machine (messages and timer expiries
//!   in, messages and events out), tested on scripted message sequences (Figure 8 of the paper,
//!   stale leaders, one vote per term, the up-to-date rule).
//! - `node.rs`: the [`RaftNode`] actor running a core on timers measured by its host's
//!   monotonic clock (so clock drift changes them and offsets do not), its [`Raft`] messages
//!   and [`RaftConfig`] (defaults from etcd). The nodes report what they see broken, and
//!   what the observer sees, as group metrics (`raft.leaders_per_term_violations_total`,
//!   `raft.committed_lost_total`, ...) that a scenario checks, with the group's availability
//!   (`raft.leaderless_time`, split votes) and `raft.healthy_leaders_deposed_total` (a leader
//!   deposed while a majority kept answering it: what PreVote prevents).
//! - `observer.rs`: [`RaftObserver`], the safety oracle the members of a group share (in a
//!   scenario, every `RaftNode` naming the same members shares one): one leader per term, every
//!   committed entry in every later leader's log and committed with one entry only, each
//!   violation counted once for the group.
//! - `chaos.rs`: [`LeaderKiller`], a nemesis that kills whoever leads, at intervals, and
//!   restarts it after a while (the "leader crashes repeatedly").
//! - `client.rs`: the [`RaftClient`], proposing entries at a constant rate to whoever it
//!   believes leads, following redirects, and keeping what was acknowledged.
//!
//! What the family shows: with majority commit an isolated leader cannot acknowledge a write,
//! so no acknowledged write is lost under partitions, pauses and skew; how long the group is
//! without a leader after a crash depends on the election timeout range (detection takes at
//! least `election_timeout_min`; a narrow range makes split votes, and so extra rounds, more
//! likely).

mod chaos;
mod client;
mod core;
mod node;
mod observer;

pub use chaos::{DEFAULT_DOWN_FOR, DEFAULT_EVERY, LeaderKiller, LeaderKillerConfig};
pub use client::{
    Acked, DEFAULT_CLIENT_TIMEOUT, DEFAULT_RETRY_BACKOFF, RaftClient, RaftClientConfig,
};
pub use core::{
    AppendEntries, AppendReply, CoreConfig, Entry, Message, NodeId, Output, RaftCore, RaftDisk,
    RequestVote, Role, StepDown, Term, Violation, Vote,
};
pub use node::{
    DEFAULT_ELECTION_TIMEOUT_MAX, DEFAULT_ELECTION_TIMEOUT_MIN, DEFAULT_HEARTBEAT_INTERVAL,
    DEFAULT_MAX_ENTRIES_PER_APPEND, MAX_GROUP_SIZE, MAX_PENDING_PROPOSALS, Propose, ProposeError,
    ProposeReply, Raft, RaftConfig, RaftNode, RaftTick, true_duration,
};
pub use observer::{ElectionVerdict, RaftObserver, RaftWatch};
