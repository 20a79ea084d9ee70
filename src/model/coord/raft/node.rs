//! The [`RaftNode`] actor: one Raft server ([`RaftCore`]) on its timers, talking [`Raft`]
//! messages to the other members of its group and answering clients' proposals.
//!
//! - **Timers on the host's clock.** The election timeout (drawn uniformly from
//!   `[election_timeout_min, election_timeout_max]` on the node's own stream every time it is
//!   armed), the heartbeat interval and the CheckQuorum interval (`election_timeout_min`, as
//!   etcd checks every `electionTimeout`) are durations measured on the host's *monotonic*
//!   clock, as etcd's ticker is (Go's `time.Ticker` runs on the monotonic clock). So a
//!   `ClockDrift` fault changes them — a host whose clock runs fast by `r` times out after
//!   `d / (1 + r)` of true time, and a slow one after longer — while `ClockOffset` and
//!   `ClockStep` faults, which move only the wall clock, change nothing. A timer is converted
//!   at the drift in force when it is armed; election timers are re-armed at every heartbeat,
//!   so a drift change takes effect within one heartbeat interval. The election timer runs in
//!   two phases: at `election_timeout_min` it ends CheckQuorum's lease (the node listens to
//!   candidates again, as etcd's `inLease` ends at `electionTimeout`), and at the drawn
//!   timeout it starts an election.
//! - **Crashes.** `currentTerm`, `votedFor` and the log are a [`Durable`] [`RaftDisk`];
//!   everything else — role, commit index, the leader's replication state, proposals waiting
//!   for their commit — is lost, and a restarted node starts as a follower with a fresh
//!   election timer.
//! - **Clients.** A [`Propose`] to the leader is appended and answered with its index once
//!   committed; a follower answers `NotLeader` naming the leader it knows (a redirect); a
//!   leader that loses leadership before the commit answers `Dropped` for every proposal it
//!   was holding (etcd's `ErrProposalDropped`): the entry may still commit, so a client that
//!   retries can duplicate it — at least once, as with etcd.
//!
//! **Metrics** (owner = the node's name): `term` and `is_leader` gauges;
//! `elections_started_total` (real elections: the term was incremented), `pre_votes_total`
//! (pre-vote rounds), `split_votes_total` (this node's elections that timed out with no
//! winner), `terms_without_leader_total` (terms that passed with no leader, as this node saw
//! them: when it learns the leader of term T, the terms since the last one it knew a leader
//! of — every member counts every split vote of the group, not only its own), `leader_elected_total` (terms this node won), `stepped_down_total` (of which
//! `check_quorum_step_downs_total`), `commits_total` (entries this node learnt committed, again
//! after a restart), `proposals_total`; and the histogram `election_duration` (ns; the issue's
//! time-to-elect, named so that reports show a duration): from this
//! node's first election timeout with no leader it knew of, to the moment it next knows a leader
//! (it won, or heard from the winner). The first node to time out after a leader dies records
//! the group's whole detection-to-leader delay; the crash-to-leader delay is that plus the
//! election timeout it took to notice.
//!
//! **Group metrics** (owner = [`RaftConfig::group`], `raft` by default; every member adds to
//! the same ones), so that a scenario can check the group's safety and availability:
//! - `leaders_per_term_violations_total`: two leaders in one term, as a member saw it (an
//!   AppendEntries of its term from another leader while it leads or follows one) or, with a
//!   shared [`RaftObserver`](super::RaftObserver), as the observer saw it (a second member
//!   winning a term).
//! - `committed_lost_total`: entries a member knew committed and deleted from its log after
//!   (a conflicting AppendEntries) or, with an observer, committed entries a new leader's log
//!   lacks at its election; `committed_reordered_total`: an index a member had learnt
//!   committed with one entry later committed with another (by it, again after a restart, or
//!   with an observer by another member). What a member learnt committed is kept beside its
//!   disk, so a restarted member checks against it too. With an observer each violation is
//!   counted once for the group (per term, per index), not once per member that sees it;
//!   without one, once per sighting.
//! - `healthy_leaders_deposed_total`: leaders that stepped down on seeing a higher term while
//!   a majority (themselves included) kept answering them: none of that majority silent (no
//!   AppendReply of the leader's term) for `election_timeout_min / 2` or more at any time
//!   since the election. Such a leader could be deposed only by a member that raised its term
//!   without a majority's consent — a member cut off by a partition, rejoining, without
//!   PreVote — so with PreVote it stays 0 under partitions (a pause is different: the
//!   backlog of a paused leader reaches it as a burst after the pause, and is timed then).
//! - `leaders_elected_total`, `elections_started_total`, `split_votes_total`; the `term`
//!   gauge, the term of the latest leader (its max is the terms used);
//!   `terms_without_leader_total`, the terms each new leader saw pass with no leader since the
//!   last one it knew of.
//! - `leaderless_time` (histogram, ns; the issue's time-to-elect): for each election won,
//!   from the last moment the winner knew a leader was alive (its last AppendEntries from one,
//!   its own last heartbeat, or its start) to its win — after a leader's loss, the
//!   loss-to-leader delay to within a heartbeat.
//!
//! Without an observer the safety counters see what each member sees: two leaders of a term
//! that never reach a common member, or committed entries lost on members that never learn
//! of it, go uncounted. A scenario's members naming the same group share one observer
//! (`components.rs`); tests that build a group share one for the complete check.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use rand_core::Rng;
use serde::{Deserialize, Serialize};

use super::core::{
    AppendEntries, AppendReply, CoreConfig, Entry, Message, NodeId, Output, RaftCore, RaftDisk,
    RequestVote, Role, StepDown, Term, Violation, Vote,
};
use super::observer::RaftWatch;
use crate::actor::{Actor, ActorId, Ctx, Durable, TimerId};
use crate::engine::time::{SimDuration, SimTime};
use crate::metrics::{CounterId, GaugeId, HistogramId, Metrics};
use crate::model::Carry;
use crate::model::rpc::{ConfigError, Validate, check_unique_names, nonzero};

/// The messages of the Raft family: the four server-to-server messages of the core, a client's
/// proposal and its answer, and the family's timer payloads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Raft {
    RequestVote(RequestVote),
    Vote(Vote),
    AppendEntries(AppendEntries),
    AppendReply(AppendReply),
    Propose(Propose),
    ProposeReply(ProposeReply),
    Tick(RaftTick),
}

/// A client's entry for the log; `id` is the client's, unique among its outstanding ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Propose {
    pub id: u64,
    pub reply_to: ActorId,
    pub data: u64,
}

/// Why a proposal was not committed by the node asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProposeError {
    /// Not the leader; the leader it knows of, if any (a redirect).
    NotLeader { leader: Option<ActorId> },
    /// It led when the entry was appended and lost leadership before the commit (or holds too
    /// many proposals already): the entry may or may not commit.
    Dropped,
}

/// The answer to a [`Propose`]: the entry's index once committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProposeReply {
    pub id: u64,
    pub result: Result<u64, ProposeError>,
}

/// Timer payloads of the family's actors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RaftTick {
    /// Node: the election timer armed `seq`-th reached `election_timeout_min` (the end of
    /// CheckQuorum's lease) or, with `lease_over`, its full randomised timeout.
    Election { seq: u64, lease_over: bool },
    /// Node: heartbeat of leadership number `epoch`.
    Heartbeat { epoch: u64 },
    /// Node: CheckQuorum of leadership number `epoch`.
    CheckQuorum { epoch: u64 },
    /// Client: the next entry is due.
    Arrive,
    /// Client: attempt `attempt` of entry `id` timed out.
    Timeout { id: u64, attempt: u32 },
    /// Client: try entry `id` again (attempt `attempt` is the one that failed).
    Retry { id: u64, attempt: u32 },
    /// [`LeaderKiller`](super::LeaderKiller): the next kill is due.
    Kill,
}

/// The lower end of the election timeout by default: 1 s, etcd's `--election-timeout`
/// default (1000 ms; etcd docs, "Tuning"). The Raft paper's own experiments use 150–300 ms
/// (§9.3), for a LAN with a ~15 ms broadcast time.
pub const DEFAULT_ELECTION_TIMEOUT_MIN: SimDuration = SimDuration::from_secs(1);
/// The upper end by default: 2 s. etcd's raft draws each timeout from
/// `[electionTimeout, 2 * electionTimeout)` (`randomizedElectionTimeout` in `raft.go`).
pub const DEFAULT_ELECTION_TIMEOUT_MAX: SimDuration = SimDuration::from_secs(2);
/// The heartbeat interval by default: 100 ms, etcd's `--heartbeat-interval` default (etcd
/// docs, "Tuning": "around the round-trip time between members").
pub const DEFAULT_HEARTBEAT_INTERVAL: SimDuration = SimDuration::from_millis(100);
/// Entries per AppendEntries by default: 64. An **assumption**: etcd bounds a message by
/// bytes (`MaxSizePerMsg`, 1 MiB in etcd server), which for small entries is thousands; a
/// smaller batch only slows a follower's catch-up, which nothing here measures.
pub const DEFAULT_MAX_ENTRIES_PER_APPEND: u32 = 64;
/// Proposals a leader holds waiting for their commit, at most: a limit, so that a leader that
/// cannot commit (cut off, without CheckQuorum) does not grow without bound.
pub const MAX_PENDING_PROPOSALS: usize = 65_536;
/// Members of a group, at most.
pub const MAX_GROUP_SIZE: usize = 255;

fn default_election_timeout_min() -> SimDuration {
    DEFAULT_ELECTION_TIMEOUT_MIN
}
fn default_election_timeout_max() -> SimDuration {
    DEFAULT_ELECTION_TIMEOUT_MAX
}
fn default_heartbeat_interval() -> SimDuration {
    DEFAULT_HEARTBEAT_INTERVAL
}
fn default_max_entries_per_append() -> u32 {
    DEFAULT_MAX_ENTRIES_PER_APPEND
}
fn yes() -> bool {
    true
}
fn default_group() -> String {
    DEFAULT_GROUP.to_string()
}

/// The owner of a group's metrics by default: `raft.leaders_per_term_violations_total`.
pub const DEFAULT_GROUP: &str = "raft";

/// A [`RaftNode`]'s config. In RON: `(peers: ["n0", "n1", "n2"], election_timeout_min:
/// "150ms", election_timeout_max: "300ms")`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RaftConfig {
    /// The other members of the group by actor name. The group is these and this node, in
    /// name order, so every member must name the same group; listing this node too is
    /// allowed (one list can then serve every member). Empty: a group of one.
    pub peers: Vec<String>,
    /// Default 1 s ([`DEFAULT_ELECTION_TIMEOUT_MIN`]).
    #[serde(default = "default_election_timeout_min")]
    pub election_timeout_min: SimDuration,
    /// Default 2 s ([`DEFAULT_ELECTION_TIMEOUT_MAX`]); `>= election_timeout_min` (equal: no
    /// randomisation at all, the split-vote worst case).
    #[serde(default = "default_election_timeout_max")]
    pub election_timeout_max: SimDuration,
    /// Default 100 ms; below `election_timeout_min`.
    #[serde(default = "default_heartbeat_interval")]
    pub heartbeat_interval: SimDuration,
    /// A leader that heard from no majority within `election_timeout_min` steps down, and a
    /// node that knows a live leader ignores higher-term vote requests. Default true: etcd
    /// server runs its raft with `CheckQuorum: true`.
    #[serde(default = "yes")]
    pub check_quorum: bool,
    /// Pre-vote before every election. Default true: etcd's `--pre-vote`, true by default
    /// since v3.5.
    #[serde(default = "yes")]
    pub pre_vote: bool,
    /// Default 64 ([`DEFAULT_MAX_ENTRIES_PER_APPEND`]).
    #[serde(default = "default_max_entries_per_append")]
    pub max_entries_per_append: u32,
    /// The name the group's own metrics are reported under (safety violations, elections,
    /// time to elect: see the module docs); every member should give the same. Default
    /// `"raft"` ([`DEFAULT_GROUP`]): two groups in one scenario need two names.
    #[serde(default = "default_group")]
    pub group: String,
}

impl RaftConfig {
    /// A config for `peers` with every default.
    pub fn new(peers: &[&str]) -> Self {
        RaftConfig {
            peers: peers.iter().map(|p| p.to_string()).collect(),
            election_timeout_min: DEFAULT_ELECTION_TIMEOUT_MIN,
            election_timeout_max: DEFAULT_ELECTION_TIMEOUT_MAX,
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
            check_quorum: true,
            pre_vote: true,
            max_entries_per_append: DEFAULT_MAX_ENTRIES_PER_APPEND,
            group: DEFAULT_GROUP.to_string(),
        }
    }

    /// The actor names this config refers to, with their field paths.
    pub fn targets(&self) -> Vec<(String, &str)> {
        let peers = self.peers.iter().enumerate();
        peers
            .map(|(i, p)| (format!("peers[{i}]"), p.as_str()))
            .collect()
    }

    fn core(&self) -> CoreConfig {
        CoreConfig {
            pre_vote: self.pre_vote,
            check_quorum: self.check_quorum,
            max_entries_per_append: self.max_entries_per_append as usize,
        }
    }
}

impl Validate for RaftConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.peers.len() >= MAX_GROUP_SIZE {
            return Err(ConfigError::Invalid {
                field: "peers".into(),
                reason: format!(
                    "{} peers make a group of more than {MAX_GROUP_SIZE} members",
                    self.peers.len()
                ),
            });
        }
        for (i, p) in self.peers.iter().enumerate() {
            if p.is_empty() {
                return Err(ConfigError::Invalid {
                    field: format!("peers[{i}]"),
                    reason: "an actor name cannot be empty".into(),
                });
            }
        }
        check_unique_names(self.peers.iter().map(String::as_str), |i| {
            format!("peers[{i}]")
        })?;
        nonzero("election_timeout_min", self.election_timeout_min.as_nanos())?;
        if self.election_timeout_max < self.election_timeout_min {
            return Err(ConfigError::Invalid {
                field: "election_timeout_max".into(),
                reason: format!(
                    "{} is below election_timeout_min ({})",
                    self.election_timeout_max, self.election_timeout_min
                ),
            });
        }
        nonzero("heartbeat_interval", self.heartbeat_interval.as_nanos())?;
        if self.heartbeat_interval >= self.election_timeout_min {
            return Err(ConfigError::Invalid {
                field: "heartbeat_interval".into(),
                reason: format!(
                    "{} must be below election_timeout_min ({}): followers of a healthy leader \
                     would time out between its heartbeats",
                    self.heartbeat_interval, self.election_timeout_min
                ),
            });
        }
        nonzero(
            "max_entries_per_append",
            u64::from(self.max_entries_per_append),
        )?;
        if self.group.is_empty() {
            return Err(ConfigError::Invalid {
                field: "group".into(),
                reason: "the group's metrics need an owner name".into(),
            });
        }
        Ok(())
    }
}

/// How long `local` of the host's monotonic clock takes in true time, at a drift of
/// `drift_ppb` (rounded up, so that the local clock has surely advanced by `local`). A clock
/// that has stopped (`-1e9` ppb) never gets there.
pub fn true_duration(local: SimDuration, drift_ppb: i64) -> SimDuration {
    let rate = 1_000_000_000i128 + i128::from(drift_ppb);
    if rate <= 0 {
        return SimDuration::MAX;
    }
    let ns = (i128::from(local.as_nanos()) * 1_000_000_000 + rate - 1) / rate;
    SimDuration::from_nanos(ns.min(i128::from(u64::MAX)) as u64)
}

// ---------------------------------------------------------------------------------------------
// The node
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
struct NodeMetrics {
    term: GaugeId,
    is_leader: GaugeId,
    elections: CounterId,
    pre_votes: CounterId,
    split_votes: CounterId,
    elected: CounterId,
    stepped_down: CounterId,
    check_quorum: CounterId,
    commits: CounterId,
    proposals: CounterId,
    leaderless_terms: CounterId,
    election_duration: HistogramId,
}

/// The group's metrics (owner = [`RaftConfig::group`]): every member adds to the same ones.
#[derive(Clone, Copy)]
struct GroupMetrics {
    two_leaders: CounterId,
    committed_lost: CounterId,
    committed_reordered: CounterId,
    elected: CounterId,
    elections: CounterId,
    split_votes: CounterId,
    leaderless_terms: CounterId,
    deposed: CounterId,
    term: GaugeId,
    leaderless_time: HistogramId,
}

/// A proposal the leader holds until its index commits.
#[derive(Clone, Copy, Debug)]
struct Waiting {
    reply_to: ActorId,
    id: u64,
    term: Term,
}

/// One Raft server; see the module docs.
#[derive(Clone)]
pub struct RaftNode<M> {
    config: RaftConfig,
    disk: Durable<RaftDisk>,
    /// Instrumentation beside the disk, surviving crashes too: the entries this node learnt
    /// committed, by index, so that a committed entry later deleted or replaced is seen even
    /// by an incarnation whose commit index (volatile) has not caught up yet.
    known: Durable<Vec<Entry>>,
    observer: Option<RaftWatch>,
    core: Option<RaftCore>,
    /// Actor ids by [`NodeId`].
    ids: Vec<ActorId>,
    election_timer: Option<TimerId>,
    election_seq: u64,
    /// What remains of the armed timeout after its first phase (the lease).
    election_rest: SimDuration,
    /// Bumped at every change of leadership, so a former leadership's timers do nothing.
    epoch: u64,
    waiting: BTreeMap<u64, Waiting>,
    /// When this node's election timer first fired with no leader known.
    leaderless_since: Option<SimTime>,
    /// The latest term this node knew the leader of (0 on a fresh disk; unknown after a
    /// restart, when terms may have passed unseen).
    last_led_term: Option<Term>,
    /// When this node last knew a leader was alive: an AppendEntries from it, or its own
    /// heartbeat while leading (the start, for a new incarnation).
    last_contact: SimTime,
    metrics: Option<NodeMetrics>,
    group_metrics: Option<GroupMetrics>,
    /// Leader: when it last heard an AppendReply of its term from each member (its start as
    /// leader to begin with), and the longest silence of each since (see
    /// `healthy_leaders_deposed_total`).
    heard: Vec<SimTime>,
    longest_silence: Vec<SimDuration>,
    /// Its name, for `on_crash` (which has no context).
    name: String,
    _m: PhantomData<M>,
}

impl<M> RaftNode<M> {
    /// Validates `config` and creates an empty disk. Clones share the disk: build one and clone
    /// it in the factory, and every incarnation finds the term, vote and log it left.
    pub fn new(config: RaftConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(RaftNode {
            config,
            disk: Durable::new(RaftDisk::default()),
            known: Durable::new(Vec::new()),
            observer: None,
            core: None,
            ids: Vec::new(),
            election_timer: None,
            election_seq: 0,
            election_rest: SimDuration::ZERO,
            epoch: 0,
            waiting: BTreeMap::new(),
            leaderless_since: None,
            last_led_term: None,
            last_contact: SimTime::ZERO,
            metrics: None,
            group_metrics: None,
            heard: Vec::new(),
            longest_silence: Vec::new(),
            name: String::new(),
            _m: PhantomData,
        })
    }

    /// Reports to `observer` (see [`RaftObserver`]).
    pub fn with_observer(mut self, observer: RaftWatch) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The node's disk (shared by every clone and incarnation), for inspection.
    pub fn disk(&self) -> Durable<RaftDisk> {
        self.disk.clone()
    }

    /// The running core (None before the start).
    pub fn core(&self) -> Option<&RaftCore> {
        self.core.as_ref()
    }

    pub fn config(&self) -> &RaftConfig {
        &self.config
    }

    /// The observer it reports to, if any.
    pub fn observer(&self) -> Option<RaftWatch> {
        self.observer.clone()
    }
}

impl<M: Carry<Raft>> RaftNode<M> {
    fn m(&self) -> NodeMetrics {
        self.metrics.expect("registered at start")
    }

    fn g(&self) -> GroupMetrics {
        self.group_metrics.expect("registered at start")
    }

    /// A safety violation seen: to the observer, if any, and the trace.
    fn violated(&mut self, ctx: &mut Ctx<'_, M>, what: String) {
        let v = format!("{}: {}: {what}", ctx.now(), ctx.name());
        ctx.trace_note(&format!("safety violation: {what}"));
        if let Some(o) = &self.observer {
            o.borrow_mut().violations.push(v);
        }
    }

    /// The core deleted its entries from `from` on: those this node knew committed are lost.
    fn truncated(&mut self, ctx: &mut Ctx<'_, M>, from: u64) {
        let known = self.known.borrow().len() as u64;
        if from <= known {
            let lost = known - from + 1;
            // With an observer, each index once for the whole group.
            let count = match &self.observer {
                Some(o) => o.borrow_mut().lost_seen(from..=known),
                None => lost,
            };
            let c = self.g().committed_lost;
            ctx.metrics().add(c, count);
            self.violated(
                ctx,
                format!("deleted {lost} committed entries from index {from}"),
            );
        }
    }

    /// This node learnt `entry` committed at `index`: it must be what it learnt before.
    fn check_committed(&mut self, ctx: &mut Ctx<'_, M>, index: u64, entry: Entry) {
        let before = {
            let mut known = self.known.borrow_mut();
            match known.get(index as usize - 1) {
                Some(e) => Some(*e),
                None => {
                    // Commits come in index order from 1 in every incarnation.
                    debug_assert_eq!(known.len() as u64 + 1, index);
                    known.push(entry);
                    None
                }
            }
        };
        let mut reordered = before.is_some_and(|e| e != entry);
        if reordered {
            let e = before.expect("some");
            self.violated(
                ctx,
                format!("committed {entry:?} at {index}, which held {e:?}"),
            );
        }
        // With an observer, each index once for the whole group, and against what any
        // member committed there first.
        if let Some(o) = &self.observer {
            reordered = o
                .borrow_mut()
                .committed(ctx.now(), ctx.name(), index, entry, before);
        }
        if reordered {
            let c = self.g().committed_reordered;
            ctx.metrics().inc(c);
        }
    }

    /// Whether this leader, deposed at `now`, had kept a quorum all through its leadership:
    /// itself and enough members that none of them was silent (no AppendReply of its term)
    /// for `election_timeout_min / 2` or more at any time since it was elected, now
    /// included. A member silent that long has not heard the leader for about as long, so
    /// after `election_timeout_min` it may vote for another; while a quorum never was, no
    /// election could legitimately have been won, and with PreVote none can even start
    /// (see `healthy_leaders_deposed_total` in the module docs).
    fn kept_quorum(&self, now: SimTime) -> bool {
        let limit = SimDuration::from_nanos(self.config.election_timeout_min.as_nanos() / 2);
        let me = self.core.as_ref().expect("started").id() as usize;
        let answering = (0..self.ids.len())
            .filter(|&p| p != me)
            .filter(|&p| {
                let now_silent = now.saturating_duration_since(self.heard[p]);
                self.longest_silence[p].max(now_silent) < limit
            })
            .count();
        let quorum = self.ids.len() / 2 + 1;
        answering + 1 >= quorum
    }

    fn core_mut(&mut self) -> &mut RaftCore {
        self.core.as_mut().expect("started")
    }

    /// A timer after `local` of this host's monotonic clock.
    fn local_timer(ctx: &mut Ctx<'_, M>, local: SimDuration, tick: RaftTick) -> TimerId {
        let after = true_duration(local, ctx.clock().drift_ppb);
        ctx.set_timer(after, M::wrap(Raft::Tick(tick)))
    }

    fn arm_election(&mut self, ctx: &mut Ctx<'_, M>) {
        if let Some(t) = self.election_timer.take() {
            ctx.cancel_timer(t);
        }
        let (lo, hi) = (
            self.config.election_timeout_min.as_nanos(),
            self.config.election_timeout_max.as_nanos(),
        );
        let span = hi - lo;
        let draw = if span == 0 {
            0
        } else {
            ctx.rng().next_u64() % (span + 1)
        };
        let timeout = SimDuration::from_nanos(lo + draw);
        debug_assert!(timeout >= self.config.election_timeout_min);
        debug_assert!(timeout <= self.config.election_timeout_max);
        // Two phases on one timer: the lease ends at the minimum timeout, the election
        // starts at the drawn one.
        self.election_seq += 1;
        self.election_rest = timeout.saturating_sub(self.config.election_timeout_min);
        let tick = RaftTick::Election {
            seq: self.election_seq,
            lease_over: false,
        };
        let first = self.config.election_timeout_min;
        self.election_timer = Some(Self::local_timer(ctx, first, tick));
    }

    /// This node learnt the leader of `term`: the terms it saw pass since the last one it knew
    /// a leader of had none (split votes, or candidates that could not win).
    /// `won`: this node is that leader, and reports the terms to the group's count too.
    fn leader_of(&mut self, ctx: &mut Ctx<'_, M>, term: Term, won: bool) {
        if let Some(last) = self.last_led_term
            && term > last + 1
        {
            let c = self.m().leaderless_terms;
            ctx.metrics().add(c, term - last - 1);
            if won {
                let c = self.g().leaderless_terms;
                ctx.metrics().add(c, term - last - 1);
            }
        }
        self.last_led_term = Some(term);
        self.knows_leader(ctx);
    }

    fn knows_leader(&mut self, ctx: &mut Ctx<'_, M>) {
        if let Some(since) = self.leaderless_since.take() {
            let h = self.m().election_duration;
            let d = ctx.now().saturating_duration_since(since);
            ctx.metrics().record(h, d.as_nanos());
        }
    }

    fn handle(&mut self, ctx: &mut Ctx<'_, M>, outs: Vec<Output>) {
        let m = self.m();
        let g = self.g();
        for out in outs {
            match out {
                Output::Send { to, msg } => {
                    let msg = match msg {
                        Message::RequestVote(x) => Raft::RequestVote(x),
                        Message::Vote(x) => Raft::Vote(x),
                        Message::AppendEntries(x) => Raft::AppendEntries(x),
                        Message::AppendReply(x) => Raft::AppendReply(x),
                    };
                    ctx.send(self.ids[to as usize], M::wrap(msg));
                }
                Output::ResetElectionTimer => self.arm_election(ctx),
                Output::ElectionStarted { term, pre_vote } => {
                    if pre_vote {
                        ctx.metrics().inc(m.pre_votes);
                    } else {
                        ctx.metrics().inc(m.elections);
                        ctx.metrics().inc(g.elections);
                        if let Some(o) = &self.observer {
                            o.borrow_mut().elections_started += 1;
                        }
                        ctx.trace_note(&format!("election for term {term}"));
                    }
                }
                Output::SplitVote { term } => {
                    ctx.metrics().inc(m.split_votes);
                    ctx.metrics().inc(g.split_votes);
                    if let Some(o) = &self.observer {
                        o.borrow_mut().split_votes += 1;
                    }
                    ctx.trace_note(&format!("split vote in term {term}"));
                }
                Output::BecameLeader { term } => {
                    ctx.metrics().inc(m.elected);
                    ctx.metrics().inc(g.elected);
                    ctx.metrics().set(g.term, term as f64);
                    let waited = ctx.now().saturating_duration_since(self.last_contact);
                    ctx.metrics().record(g.leaderless_time, waited.as_nanos());
                    self.last_contact = ctx.now();
                    ctx.trace_note(&format!("leader of term {term}"));
                    if let Some(o) = &self.observer {
                        let disk = self.disk.borrow();
                        let v =
                            o.borrow_mut()
                                .became_leader(ctx.now(), term, ctx.name(), &disk.log);
                        drop(disk);
                        ctx.metrics().add(g.two_leaders, v.two_leaders);
                        ctx.metrics().add(g.committed_lost, v.lost);
                    }
                    let n = self.ids.len();
                    self.heard = vec![ctx.now(); n];
                    self.longest_silence = vec![SimDuration::ZERO; n];
                    self.leader_of(ctx, term, true);
                    if let Some(t) = self.election_timer.take() {
                        ctx.cancel_timer(t);
                    }
                    self.epoch += 1;
                    let epoch = self.epoch;
                    let hb = self.config.heartbeat_interval;
                    Self::local_timer(ctx, hb, RaftTick::Heartbeat { epoch });
                    let cq = self.config.election_timeout_min;
                    Self::local_timer(ctx, cq, RaftTick::CheckQuorum { epoch });
                }
                Output::SteppedDown { term, reason } => {
                    ctx.metrics().inc(m.stepped_down);
                    if reason == StepDown::CheckQuorum {
                        ctx.metrics().inc(m.check_quorum);
                    }
                    ctx.trace_note(&format!("stepped down from term {term}: {reason:?}"));
                    if let Some(o) = &self.observer {
                        o.borrow_mut().stopped_leading(ctx.name());
                    }
                    if reason == StepDown::HigherTerm && self.kept_quorum(ctx.now()) {
                        ctx.metrics().inc(g.deposed);
                        ctx.trace_note(&format!("deposed from term {term} with a quorum"));
                    }
                    self.epoch += 1;
                    for (_, w) in std::mem::take(&mut self.waiting) {
                        let reply = ProposeReply {
                            id: w.id,
                            result: Err(ProposeError::Dropped),
                        };
                        ctx.send(w.reply_to, M::wrap(Raft::ProposeReply(reply)));
                    }
                    self.arm_election(ctx);
                }
                Output::LeaderKnown { term, .. } => self.leader_of(ctx, term, false),
                Output::Truncated { from } => self.truncated(ctx, from),
                Output::Violation(v) => match v {
                    Violation::TwoLeaders { term, leader, from } => {
                        // With an observer, each term once for the whole group.
                        let new = self
                            .observer
                            .as_ref()
                            .is_none_or(|o| o.borrow_mut().two_leaders_seen(term));
                        if new {
                            ctx.metrics().inc(g.two_leaders);
                        }
                        let (l, f) = (
                            leader.map(|l| self.ids[l as usize]),
                            self.ids[from as usize],
                        );
                        let l = l.map_or("?".to_string(), |l| ctx.name_of(l).to_string());
                        let f = ctx.name_of(f).to_string();
                        self.violated(ctx, format!("two leaders in term {term}: {l} and {f}"));
                    }
                    // Counted by the `Truncated` that follows, against what this node knew.
                    Violation::TruncatedCommitted { index } => {
                        self.violated(ctx, format!("truncating committed index {index}"));
                    }
                },
                Output::Committed { index, entry } => {
                    ctx.metrics().inc(m.commits);
                    self.check_committed(ctx, index, entry);
                    if let Some(w) = self.waiting.remove(&index) {
                        let result = if w.term == entry.term {
                            Ok(index)
                        } else {
                            Err(ProposeError::Dropped)
                        };
                        let reply = ProposeReply { id: w.id, result };
                        ctx.send(w.reply_to, M::wrap(Raft::ProposeReply(reply)));
                    }
                }
            }
        }
        let core = self.core.as_ref().expect("started");
        let (term, leading) = (core.term(), core.role() == Role::Leader);
        ctx.metrics().set(m.term, term as f64);
        ctx.metrics()
            .set(m.is_leader, if leading { 1.0 } else { 0.0 });
    }

    fn propose(&mut self, ctx: &mut Ctx<'_, M>, p: Propose) {
        ctx.metrics().inc(self.m().proposals);
        if self.waiting.len() >= MAX_PENDING_PROPOSALS {
            let reply = ProposeReply {
                id: p.id,
                result: Err(ProposeError::Dropped),
            };
            ctx.send(p.reply_to, M::wrap(Raft::ProposeReply(reply)));
            return;
        }
        let term = self.core_mut().term();
        let (result, outs) = self.core_mut().propose(p.data);
        match result {
            Ok(index) => {
                let w = Waiting {
                    reply_to: p.reply_to,
                    id: p.id,
                    term,
                };
                // Before the outputs: a group of one commits at once.
                self.waiting.insert(index, w);
            }
            Err(leader) => {
                let leader = leader.map(|l| self.ids[l as usize]);
                let reply = ProposeReply {
                    id: p.id,
                    result: Err(ProposeError::NotLeader { leader }),
                };
                ctx.send(p.reply_to, M::wrap(Raft::ProposeReply(reply)));
            }
        }
        self.handle(ctx, outs);
    }
}

impl<M: Carry<Raft>> Actor<M> for RaftNode<M> {
    fn on_start(&mut self, ctx: &mut Ctx<'_, M>) {
        self.metrics = Some(NodeMetrics {
            term: ctx.gauge("term"),
            is_leader: ctx.gauge("is_leader"),
            elections: ctx.counter("elections_started_total"),
            pre_votes: ctx.counter("pre_votes_total"),
            split_votes: ctx.counter("split_votes_total"),
            elected: ctx.counter("leader_elected_total"),
            stepped_down: ctx.counter("stepped_down_total"),
            check_quorum: ctx.counter("check_quorum_step_downs_total"),
            commits: ctx.counter("commits_total"),
            proposals: ctx.counter("proposals_total"),
            leaderless_terms: ctx.counter("terms_without_leader_total"),
            election_duration: ctx.histogram("election_duration"),
        });
        let owner = self.config.group.clone();
        let mut c = |name: &str| ctx.metrics().counter(&owner, name);
        self.group_metrics = Some(GroupMetrics {
            two_leaders: c("leaders_per_term_violations_total"),
            committed_lost: c("committed_lost_total"),
            committed_reordered: c("committed_reordered_total"),
            elected: c("leaders_elected_total"),
            elections: c("elections_started_total"),
            split_votes: c("split_votes_total"),
            leaderless_terms: c("terms_without_leader_total"),
            deposed: c("healthy_leaders_deposed_total"),
            term: ctx.metrics().gauge(&owner, "term"),
            leaderless_time: ctx.metrics().histogram(&owner, "leaderless_time"),
        });
        self.last_contact = ctx.now();
        self.name = ctx.name().to_string();
        let me = ctx.name().to_string();
        let mut group: Vec<&str> = self.config.peers.iter().map(String::as_str).collect();
        if !group.contains(&me.as_str()) {
            group.push(&me);
        }
        group.sort_unstable();
        let index = group.iter().position(|p| *p == me).expect("added");
        self.ids = group
            .iter()
            .map(|p| match ctx.lookup(p) {
                Some(id) => id,
                None => panic!("{me}: peers names `{p}`, but no actor has that name"),
            })
            .collect();
        let size = group.len() as u32;
        let core = RaftCore::new(index as NodeId, size, self.config.core(), self.disk.clone());
        if self.disk.borrow().current_term == 0 {
            self.last_led_term = Some(0);
        }
        self.core = Some(core);
        self.arm_election(ctx);
        self.handle(ctx, Vec::new());
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, M>, from: ActorId, msg: M) {
        let Some(msg) = msg.unwrap() else {
            return;
        };
        let peer = match &msg {
            Raft::RequestVote(_)
            | Raft::Vote(_)
            | Raft::AppendEntries(_)
            | Raft::AppendReply(_) => match self.ids.iter().position(|&id| id == from) {
                Some(p) => p as NodeId,
                None => {
                    ctx.trace_note(&format!("raft message from a non-member {from}"));
                    return;
                }
            },
            _ => 0,
        };
        let core_msg = match msg {
            Raft::RequestVote(x) => Message::RequestVote(x),
            Raft::Vote(x) => Message::Vote(x),
            Raft::AppendEntries(x) => Message::AppendEntries(x),
            Raft::AppendReply(x) => Message::AppendReply(x),
            Raft::Propose(p) => return self.propose(ctx, p),
            Raft::ProposeReply(_) | Raft::Tick(_) => return,
        };
        let from_leader = matches!(core_msg, Message::AppendEntries(_));
        if let Message::AppendReply(r) = &core_msg {
            let core = self.core.as_ref().expect("started");
            if core.role() == Role::Leader && r.term == core.term() {
                let p = peer as usize;
                let silence = ctx.now().saturating_duration_since(self.heard[p]);
                self.longest_silence[p] = self.longest_silence[p].max(silence);
                self.heard[p] = ctx.now();
            }
        }
        let outs = self.core_mut().step(peer, core_msg);
        if from_leader && self.core.as_ref().and_then(RaftCore::leader) == Some(peer) {
            self.last_contact = ctx.now();
        }
        self.handle(ctx, outs);
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, M>, msg: M) {
        let Some(Raft::Tick(tick)) = msg.unwrap() else {
            return;
        };
        let outs = match tick {
            RaftTick::Election { seq, lease_over } => {
                if seq != self.election_seq {
                    return;
                }
                self.election_timer = None;
                if !lease_over {
                    let outs = self.core_mut().lease_expired();
                    self.handle(ctx, outs);
                    if !self.election_rest.is_zero() {
                        let rest = self.election_rest;
                        let tick = RaftTick::Election {
                            seq,
                            lease_over: true,
                        };
                        self.election_timer = Some(Self::local_timer(ctx, rest, tick));
                        return;
                    }
                }
                if self.leaderless_since.is_none() {
                    self.leaderless_since = Some(ctx.now());
                }
                self.core_mut().election_timeout()
            }
            RaftTick::Heartbeat { epoch } => {
                if epoch != self.epoch {
                    return;
                }
                let hb = self.config.heartbeat_interval;
                Self::local_timer(ctx, hb, RaftTick::Heartbeat { epoch });
                self.last_contact = ctx.now();
                self.core_mut().heartbeat()
            }
            RaftTick::CheckQuorum { epoch } => {
                if epoch != self.epoch {
                    return;
                }
                let cq = self.config.election_timeout_min;
                Self::local_timer(ctx, cq, RaftTick::CheckQuorum { epoch });
                self.core_mut().check_quorum()
            }
            RaftTick::Arrive
            | RaftTick::Timeout { .. }
            | RaftTick::Retry { .. }
            | RaftTick::Kill => return,
        };
        self.handle(ctx, outs);
    }

    fn on_crash(&mut self, _now: SimTime, _metrics: &mut Metrics) {
        // A crash (a fault, a kill): whatever it believed, it leads no more.
        if let Some(o) = &self.observer {
            o.borrow_mut().stopped_leading(&self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::rpc::from_ron;

    #[test]
    fn configs_parse_with_defaults_and_name_bad_fields() {
        let c: RaftConfig = from_ron(r#"(peers: ["a", "b", "c"])"#).unwrap();
        assert_eq!(c, RaftConfig::new(&["a", "b", "c"]));
        assert_eq!(c.election_timeout_min, SimDuration::from_secs(1));
        assert_eq!(c.election_timeout_max, SimDuration::from_secs(2));
        assert_eq!(c.heartbeat_interval, SimDuration::from_millis(100));
        assert!(c.check_quorum && c.pre_vote);
        let bad = |ron: &str| {
            from_ron::<RaftConfig>(ron)
                .unwrap_err()
                .field()
                .map(String::from)
        };
        assert!(
            from_ron::<RaftConfig>("(peers: [])").is_ok(),
            "a group of one"
        );
        assert_eq!(bad(r#"(peers: ["a", ""])"#), Some("peers[1]".into()));
        assert_eq!(bad(r#"(peers: ["a", "b", "a"])"#), Some("peers[2]".into()));
        assert_eq!(
            bad(r#"(peers: ["a"], election_timeout_min: "0s")"#),
            Some("election_timeout_min".into())
        );
        assert_eq!(
            bad(r#"(peers: ["a"], election_timeout_min: "300ms", election_timeout_max: "150ms")"#),
            Some("election_timeout_max".into())
        );
        assert_eq!(
            bad(r#"(peers: ["a"], heartbeat_interval: "1s")"#),
            Some("heartbeat_interval".into())
        );
        assert_eq!(
            bad(r#"(peers: ["a"], max_entries_per_append: 0)"#),
            Some("max_entries_per_append".into())
        );
        assert!(from_ron::<RaftConfig>(r#"(peers: ["a"], election_timeout: "1s")"#).is_err());
        // Equal ends are allowed: no randomisation, a legal (bad) setting to measure.
        let fixed = r#"(peers: ["a"], election_timeout_min: "1s", election_timeout_max: "1s")"#;
        assert!(from_ron::<RaftConfig>(fixed).is_ok());
    }

    #[test]
    fn local_durations_scale_with_drift_only() {
        let d = SimDuration::from_millis(1000);
        assert_eq!(true_duration(d, 0), d);
        // +100,000 ppm (10% fast): 1 s local passes in 909.09.. ms.
        assert_eq!(true_duration(d, 100_000_000).as_nanos(), 909_090_910);
        // -500,000 ppm (half speed): 2 s.
        assert_eq!(true_duration(d, -500_000_000), SimDuration::from_secs(2));
        assert_eq!(true_duration(d, -1_000_000_000), SimDuration::MAX);
    }
}
