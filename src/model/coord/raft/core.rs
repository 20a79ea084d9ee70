//! One Raft server as a pure state machine: messages and timer expiries in, messages and
//! events out (the Raft paper, Ongaro & Ousterhout, USENIX ATC 2014, §5; the PreVote and
//! CheckQuorum extensions of Ongaro's thesis, §9.6 and §6.2, as etcd's `raft` package has them).
//!
//! The core owns no timers and draws no random numbers: the actor arms the election timer
//! (randomised) when the core says [`Output::ResetElectionTimer`], calls
//! [`RaftCore::election_timeout`] when it fires, [`RaftCore::heartbeat`] every heartbeat
//! interval and [`RaftCore::check_quorum`] every election timeout while leading. So every rule
//! here is tested exactly, with scripted message sequences.
//!
//! - **State.** `currentTerm`, `votedFor` and the log are the server's persistent state (the
//!   paper's Figure 2): they live in a [`Durable`] [`RaftDisk`] and survive a crash, and are
//!   written before any message that depends on them is sent (here: in the same handler).
//!   The commit index, the role, the known leader and the leader's `nextIndex`/`matchIndex`
//!   are volatile: a restarted server is a follower with commit index 0 that relearns both.
//! - **Terms.** Any message with a higher term makes the server a follower of that term
//!   (§5.1), except a pre-vote request or a granted pre-vote reply, which never change a term;
//!   a message with a lower term is answered with the current term (so a stale leader or
//!   candidate learns it is stale) or dropped if it is a reply.
//! - **Votes.** One vote per term, durable (a restarted server cannot vote twice), granted only
//!   to a candidate whose log is at least as up to date: a higher last term, or the same last
//!   term and at least as long (§5.4.1). As in etcd, a server that knows a leader in the
//!   current term does not vote in that term.
//! - **Replication.** AppendEntries carries `prevLogIndex`/`prevLogTerm`; a follower whose log
//!   does not hold that entry refuses and hints its last index, and the leader backs
//!   `nextIndex` off and retries; a follower deletes an existing entry only when it conflicts
//!   (same index, different term) with a new one, never on a stale or duplicated message
//!   (§5.3). The leader commits an index once a majority holds it **and** it is of the
//!   current term (§5.4.2, the Figure 8 rule): earlier entries commit only with it. A new
//!   leader appends a no-op of its term at once (the thesis's §6.4 fix, as etcd does), so its
//!   predecessors' entries commit without waiting for a client.
//! - **CheckQuorum** (optional): a leader that has not heard from a majority (itself
//!   included) within an election timeout steps down, so a leader cut off in a minority stops
//!   claiming leadership; and a server that heard from its leader within the minimum election
//!   timeout — the actor says when that lease ends ([`RaftCore::lease_expired`]) — ignores
//!   vote requests of a higher term (the thesis's §4.2.3 rule against disruptive servers,
//!   etcd's "in lease"). The lease is the *minimum* timeout, as in etcd, not the server's own
//!   randomised one: otherwise an election would wait for a majority's timers to fire.
//! - **PreVote** (optional): an election timeout first asks for pre-votes at `term + 1`
//!   without incrementing the term; only a majority of pre-votes starts the real election. A
//!   partitioned server then cannot inflate its term and depose a healthy leader when it
//!   rejoins.
//!
//! A split vote, as counted here, is a candidate whose election timer fires again while it is
//! still a candidate: its term ended with no winner it heard of (the paper's third outcome).

use crate::actor::Durable;

/// A server's index in its group's member list, `0..size`.
pub type NodeId = u32;
/// A Raft term.
pub type Term = u64;

/// One log entry: the term it was created in and its payload; `None` is the no-op a new leader
/// appends at the start of its term.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Entry {
    pub term: Term,
    pub data: Option<u64>,
}

/// A server's persistent state (the paper's Figure 2): it survives crashes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RaftDisk {
    pub current_term: Term,
    pub voted_for: Option<NodeId>,
    /// `log[i]` is the entry at index `i + 1`.
    pub log: Vec<Entry>,
}

impl RaftDisk {
    pub fn last_index(&self) -> u64 {
        self.log.len() as u64
    }

    /// The term of the entry at `index` (0 at index 0), None beyond the log.
    pub fn term_at(&self, index: u64) -> Option<Term> {
        if index == 0 {
            return Some(0);
        }
        self.log.get(index as usize - 1).map(|e| e.term)
    }

    pub fn last_term(&self) -> Term {
        self.log.last().map_or(0, |e| e.term)
    }

    /// The entry at `index` (1-based).
    pub fn entry(&self, index: u64) -> Option<Entry> {
        index
            .checked_sub(1)
            .and_then(|i| self.log.get(i as usize).copied())
    }
}

/// What a server is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Follower,
    /// Asking for pre-votes (PreVote on): its term has not moved yet.
    PreCandidate,
    Candidate,
    Leader,
}

/// RequestVote (or a pre-vote request, at the term the candidate would take).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestVote {
    pub term: Term,
    pub last_log_index: u64,
    pub last_log_term: Term,
    pub pre_vote: bool,
}

/// The answer to a [`RequestVote`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vote {
    /// The voter's term; for a granted pre-vote, the term the request asked about.
    pub term: Term,
    pub granted: bool,
    pub pre_vote: bool,
}

/// AppendEntries: entries after `prev_log_index` (none for a pure heartbeat).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendEntries {
    pub term: Term,
    pub prev_log_index: u64,
    pub prev_log_term: Term,
    pub entries: Vec<Entry>,
    pub leader_commit: u64,
}

/// The answer to an [`AppendEntries`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendReply {
    pub term: Term,
    pub success: bool,
    /// On success, the index of the last entry the message covered (the follower's log matches
    /// the leader's up to it); on refusal, the `prev_log_index` refused.
    pub index: u64,
    /// On refusal, the follower's last index (capped below `index`): the leader retries from
    /// after it.
    pub hint: u64,
}

/// A message between servers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    RequestVote(RequestVote),
    Vote(Vote),
    AppendEntries(AppendEntries),
    AppendReply(AppendReply),
}

impl Message {
    pub fn term(&self) -> Term {
        match self {
            Message::RequestVote(m) => m.term,
            Message::Vote(m) => m.term,
            Message::AppendEntries(m) => m.term,
            Message::AppendReply(m) => m.term,
        }
    }
}

/// Why a leader stopped leading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepDown {
    /// It saw a higher term.
    HigherTerm,
    /// CheckQuorum: it heard from no majority within an election timeout.
    CheckQuorum,
}

/// What the core asks of its actor, and what it reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    Send {
        to: NodeId,
        msg: Message,
    },
    /// Re-arm the election timer with a fresh randomised timeout (after hearing from the
    /// leader, granting a vote, or starting an election).
    ResetElectionTimer,
    /// An election (or pre-vote round) for `term` started here.
    ElectionStarted {
        term: Term,
        pre_vote: bool,
    },
    /// This candidate's election for `term` timed out with no winner.
    SplitVote {
        term: Term,
    },
    /// This server won `term`.
    BecameLeader {
        term: Term,
    },
    /// This leader stopped leading in `term`.
    SteppedDown {
        term: Term,
        reason: StepDown,
    },
    /// This server heard from `leader`, the leader of `term`, for the first time.
    LeaderKnown {
        term: Term,
        leader: NodeId,
    },
    /// The entry at `index` is committed (in index order, each once per incarnation).
    Committed {
        index: u64,
        entry: Entry,
    },
    /// A conflicting AppendEntries made this server delete its entries from `from` on (§5.3).
    /// Legal for uncommitted entries; the actor compares it with what it knew committed.
    Truncated {
        from: u64,
    },
    /// This server saw a safety rule broken, and carried on (see [`Violation`]).
    Violation(Violation),
}

/// A safety rule a server saw broken with its own eyes. Raft as written here never breaks
/// one; the core reports instead of panicking so that a model with a bug — or a fault that
/// breaks an assumption (a lost disk) — shows up as a metric a scenario can check, and the
/// run goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Violation {
    /// An AppendEntries of `term` from `from` while this server leads `term` or follows
    /// another leader of it: two leaders in one term (Election Safety, §5.2).
    TwoLeaders {
        term: Term,
        leader: Option<NodeId>,
        from: NodeId,
    },
    /// A conflict would delete the entry at `index`, which this server knows is committed
    /// (Leader Completeness, §5.4); the entry is deleted, as the message says.
    TruncatedCommitted { index: u64 },
}

/// The core's switches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoreConfig {
    pub pre_vote: bool,
    pub check_quorum: bool,
    /// At most this many entries per AppendEntries (>= 1).
    pub max_entries_per_append: usize,
}

/// One Raft server; see the module docs.
#[derive(Clone, Debug)]
pub struct RaftCore {
    id: NodeId,
    size: u32,
    config: CoreConfig,
    disk: Durable<RaftDisk>,
    role: Role,
    leader: Option<NodeId>,
    /// Heard from the leader within the minimum election timeout (CheckQuorum's lease).
    lease: bool,
    commit_index: u64,
    /// Replies in the current (pre-)election, by server.
    votes: Vec<Option<bool>>,
    next_index: Vec<u64>,
    match_index: Vec<u64>,
    /// Leader: which servers answered since the last quorum check.
    recent_active: Vec<bool>,
    out: Vec<Output>,
}

impl RaftCore {
    /// Server `id` of a group of `size`, on `disk` (fresh or left by an earlier incarnation).
    pub fn new(id: NodeId, size: u32, config: CoreConfig, disk: Durable<RaftDisk>) -> Self {
        assert!(size >= 1, "a group has at least one server");
        assert!(id < size, "server {id} is not in a group of {size}");
        assert!(config.max_entries_per_append >= 1);
        let n = size as usize;
        RaftCore {
            id,
            size,
            config,
            disk,
            role: Role::Follower,
            leader: None,
            lease: false,
            commit_index: 0,
            votes: vec![None; n],
            next_index: vec![1; n],
            match_index: vec![0; n],
            recent_active: vec![false; n],
            out: Vec::new(),
        }
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn term(&self) -> Term {
        self.disk.borrow().current_term
    }

    /// The leader of the current term, as far as this server knows.
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }

    pub fn commit_index(&self) -> u64 {
        self.commit_index
    }

    pub fn disk(&self) -> Durable<RaftDisk> {
        self.disk.clone()
    }

    /// Votes needed to win, entries' copies needed to commit.
    pub fn quorum(&self) -> u32 {
        self.size / 2 + 1
    }

    fn peers(&self) -> impl Iterator<Item = NodeId> + use<> {
        let me = self.id;
        (0..self.size).filter(move |&p| p != me)
    }

    fn take(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.out)
    }

    fn send(&mut self, to: NodeId, msg: Message) {
        debug_assert_ne!(to, self.id);
        self.out.push(Output::Send { to, msg });
    }

    // ----- timers ---------------------------------------------------------------------------

    /// The election timer fired: start a (pre-)election, unless this server leads.
    pub fn election_timeout(&mut self) -> Vec<Output> {
        match self.role {
            // A leader arms no election timer; a stale expiry is ignored.
            Role::Leader => return self.take(),
            Role::Candidate => {
                let term = self.term();
                self.out.push(Output::SplitVote { term });
            }
            Role::Follower | Role::PreCandidate => {}
        }
        self.leader = None;
        if self.config.pre_vote {
            self.become_pre_candidate();
        } else {
            self.become_candidate();
        }
        self.take()
    }

    /// The minimum election timeout has passed since this server last heard from its leader:
    /// with CheckQuorum, it now listens to candidates of higher terms.
    pub fn lease_expired(&mut self) -> Vec<Output> {
        self.lease = false;
        self.take()
    }

    /// Leader: send every follower what it lacks (or an empty heartbeat).
    pub fn heartbeat(&mut self) -> Vec<Output> {
        if self.role == Role::Leader {
            for p in self.peers() {
                self.send_append(p);
            }
        }
        self.take()
    }

    /// Leader, every election timeout: with CheckQuorum, step down unless a majority
    /// (this server included) answered since the last check.
    pub fn check_quorum(&mut self) -> Vec<Output> {
        if self.role == Role::Leader && self.config.check_quorum {
            let active = 1 + self
                .peers()
                .filter(|&p| self.recent_active[p as usize])
                .count();
            self.recent_active.fill(false);
            if (active as u32) < self.quorum() {
                let term = self.term();
                self.become_follower(term, None, StepDown::CheckQuorum);
            }
        }
        self.take()
    }

    /// A client's entry: appended and replicated if this server leads (returns its index),
    /// else the leader it knows of.
    pub fn propose(&mut self, data: u64) -> (Result<u64, Option<NodeId>>, Vec<Output>) {
        if self.role != Role::Leader {
            return (Err(self.leader), self.take());
        }
        let index = self.append_own(Some(data));
        // Followers that were caught up get it now; the others are mid-catch-up, and the
        // reply to what they were sent brings them the rest.
        for p in self.peers() {
            if self.next_index[p as usize] == index {
                self.send_append(p);
            }
        }
        self.maybe_commit();
        (Ok(index), self.take())
    }

    // ----- roles ----------------------------------------------------------------------------

    fn become_follower(&mut self, term: Term, leader: Option<NodeId>, why: StepDown) {
        let was = self.role;
        let old_term = self.term();
        assert!(term >= old_term, "terms never go back");
        if term > old_term {
            let mut d = self.disk.borrow_mut();
            d.current_term = term;
            d.voted_for = None;
        }
        self.role = Role::Follower;
        self.leader = leader;
        self.lease = leader.is_some();
        if was == Role::Leader {
            self.out.push(Output::SteppedDown {
                term: old_term,
                reason: why,
            });
        }
        if let Some(l) = leader {
            self.out.push(Output::LeaderKnown { term, leader: l });
        }
    }

    fn become_pre_candidate(&mut self) {
        self.role = Role::PreCandidate;
        self.votes.fill(None);
        self.votes[self.id as usize] = Some(true);
        let term = self.term() + 1;
        self.out.push(Output::ElectionStarted {
            term,
            pre_vote: true,
        });
        self.out.push(Output::ResetElectionTimer);
        if self.granted() >= self.quorum() {
            self.become_candidate();
            return;
        }
        self.request_votes(term, true);
    }

    fn become_candidate(&mut self) {
        let term = {
            let mut d = self.disk.borrow_mut();
            d.current_term += 1;
            d.voted_for = Some(self.id);
            d.current_term
        };
        self.role = Role::Candidate;
        self.leader = None;
        self.votes.fill(None);
        self.votes[self.id as usize] = Some(true);
        self.out.push(Output::ElectionStarted {
            term,
            pre_vote: false,
        });
        self.out.push(Output::ResetElectionTimer);
        if self.granted() >= self.quorum() {
            self.become_leader();
            return;
        }
        self.request_votes(term, false);
    }

    fn request_votes(&mut self, term: Term, pre_vote: bool) {
        let (last_log_index, last_log_term) = {
            let d = self.disk.borrow();
            (d.last_index(), d.last_term())
        };
        for p in self.peers() {
            let rv = RequestVote {
                term,
                last_log_index,
                last_log_term,
                pre_vote,
            };
            self.send(p, Message::RequestVote(rv));
        }
    }

    fn become_leader(&mut self) {
        debug_assert_eq!(self.role, Role::Candidate);
        let term = self.term();
        self.role = Role::Leader;
        self.leader = Some(self.id);
        let next = self.disk.borrow().last_index() + 1;
        self.next_index.fill(next);
        self.match_index.fill(0);
        self.recent_active.fill(false);
        self.out.push(Output::BecameLeader { term });
        // The no-op of the new term, so that the predecessors' entries can commit (§5.4.2).
        self.append_own(None);
        for p in self.peers() {
            self.send_append(p);
        }
        self.maybe_commit();
    }

    fn append_own(&mut self, data: Option<u64>) -> u64 {
        debug_assert_eq!(self.role, Role::Leader);
        let index = {
            let mut d = self.disk.borrow_mut();
            let term = d.current_term;
            d.log.push(Entry { term, data });
            d.last_index()
        };
        self.match_index[self.id as usize] = index;
        self.next_index[self.id as usize] = index + 1;
        index
    }

    fn granted(&self) -> u32 {
        self.votes.iter().filter(|v| **v == Some(true)).count() as u32
    }

    fn rejected(&self) -> u32 {
        self.votes.iter().filter(|v| **v == Some(false)).count() as u32
    }

    // ----- messages -------------------------------------------------------------------------

    /// A message from server `from`.
    pub fn step(&mut self, from: NodeId, msg: Message) -> Vec<Output> {
        assert!(from < self.size, "server {from} is not in the group");
        assert_ne!(from, self.id, "a server does not message itself");
        let term = self.term();
        let t = msg.term();
        if t > term {
            match &msg {
                Message::RequestVote(_)
                    if self.config.check_quorum
                        && (self.role == Role::Leader || (self.leader.is_some() && self.lease)) =>
                {
                    // In lease: a live leader exists, so this candidate is disruptive.
                    return self.take();
                }
                Message::RequestVote(rv) if rv.pre_vote => {}
                Message::Vote(v) if v.pre_vote && v.granted => {}
                Message::AppendEntries(_) => {
                    self.become_follower(t, Some(from), StepDown::HigherTerm)
                }
                _ => self.become_follower(t, None, StepDown::HigherTerm),
            }
        } else if t < term {
            match msg {
                Message::AppendEntries(ae) => {
                    // Tell the stale leader the current term, so it steps down.
                    let last = self.disk.borrow().last_index();
                    let reply = AppendReply {
                        term,
                        success: false,
                        index: ae.prev_log_index,
                        hint: last.min(ae.prev_log_index.saturating_sub(1)),
                    };
                    self.send(from, Message::AppendReply(reply));
                }
                Message::RequestVote(rv) => {
                    let vote = Vote {
                        term,
                        granted: false,
                        pre_vote: rv.pre_vote,
                    };
                    self.send(from, Message::Vote(vote));
                }
                // A reply from an older term answers nothing still asked.
                Message::Vote(_) | Message::AppendReply(_) => {}
            }
            return self.take();
        }
        match msg {
            Message::RequestVote(rv) => self.on_request_vote(from, rv),
            Message::Vote(v) => self.on_vote(from, v),
            Message::AppendEntries(ae) => self.on_append(from, ae),
            Message::AppendReply(r) => self.on_append_reply(from, r),
        }
        self.take()
    }

    fn on_request_vote(&mut self, from: NodeId, rv: RequestVote) {
        let (term, voted_for, up_to_date) = {
            let d = self.disk.borrow();
            let (li, lt) = (d.last_index(), d.last_term());
            let ok = rv.last_log_term > lt || (rv.last_log_term == lt && rv.last_log_index >= li);
            (d.current_term, d.voted_for, ok)
        };
        debug_assert!(rv.term >= term);
        let can_vote = voted_for == Some(from)
            || (voted_for.is_none() && self.leader.is_none())
            || (rv.pre_vote && rv.term > term);
        let granted = can_vote && up_to_date;
        if granted && !rv.pre_vote {
            debug_assert_eq!(rv.term, term);
            self.disk.borrow_mut().voted_for = Some(from);
            self.out.push(Output::ResetElectionTimer);
        }
        let vote = Vote {
            term: if rv.pre_vote && granted {
                rv.term
            } else {
                term
            },
            granted,
            pre_vote: rv.pre_vote,
        };
        self.send(from, Message::Vote(vote));
    }

    fn on_vote(&mut self, from: NodeId, v: Vote) {
        let term = self.term();
        let ours = if v.pre_vote {
            self.role == Role::PreCandidate && (v.term == term + 1 || !v.granted)
        } else {
            self.role == Role::Candidate && v.term == term
        };
        if !ours {
            return;
        }
        self.votes[from as usize] = Some(v.granted);
        if self.granted() >= self.quorum() {
            if v.pre_vote {
                self.become_candidate();
            } else {
                self.become_leader();
            }
        } else if self.rejected() >= self.quorum() {
            self.become_follower(term, None, StepDown::HigherTerm);
        }
    }

    fn on_append(&mut self, from: NodeId, ae: AppendEntries) {
        let term = self.term();
        debug_assert_eq!(ae.term, term);
        let two_leaders = if self.role == Role::Leader {
            Some(Some(self.id))
        } else if self.role == Role::Follower && self.leader.is_some_and(|l| l != from) {
            Some(self.leader)
        } else {
            None
        };
        if let Some(leader) = two_leaders {
            // Report and ignore the message: which of the two to follow is moot.
            let v = Violation::TwoLeaders { term, leader, from };
            self.out.push(Output::Violation(v));
            return;
        }
        if self.role != Role::Follower {
            self.become_follower(term, Some(from), StepDown::HigherTerm);
        } else if self.leader != Some(from) {
            self.leader = Some(from);
            self.out.push(Output::LeaderKnown { term, leader: from });
        }
        self.lease = true;
        self.out.push(Output::ResetElectionTimer);
        let prev = ae.prev_log_index;
        let matches = self.disk.borrow().term_at(prev) == Some(ae.prev_log_term);
        if !matches {
            let last = self.disk.borrow().last_index();
            let reply = AppendReply {
                term,
                success: false,
                index: prev,
                hint: last.min(prev.saturating_sub(1)),
            };
            self.send(from, Message::AppendReply(reply));
            return;
        }
        let last_new = prev + ae.entries.len() as u64;
        {
            let mut d = self.disk.borrow_mut();
            for (k, e) in ae.entries.iter().enumerate() {
                let index = prev + 1 + k as u64;
                match d.term_at(index) {
                    Some(t) if t == e.term => continue,
                    Some(_) => {
                        // A conflict: this entry and all that follow it go (§5.3). Never a
                        // committed one: the leader holds every committed entry (§5.4).
                        if index <= self.commit_index {
                            let v = Violation::TruncatedCommitted { index };
                            self.out.push(Output::Violation(v));
                        }
                        self.out.push(Output::Truncated { from: index });
                        d.log.truncate(index as usize - 1);
                        d.log.push(*e);
                    }
                    None => d.log.push(*e),
                }
            }
            debug_assert!(d.last_index() >= last_new);
        }
        if ae.leader_commit > self.commit_index {
            self.commit_to(ae.leader_commit.min(last_new));
        }
        let reply = AppendReply {
            term,
            success: true,
            index: last_new,
            hint: 0,
        };
        self.send(from, Message::AppendReply(reply));
    }

    fn on_append_reply(&mut self, from: NodeId, r: AppendReply) {
        if self.role != Role::Leader {
            return;
        }
        let p = from as usize;
        self.recent_active[p] = true;
        let last = self.disk.borrow().last_index();
        if r.success {
            assert!(
                r.index <= last,
                "a follower matched beyond the leader's log"
            );
            if r.index > self.match_index[p] {
                self.match_index[p] = r.index;
            }
            self.next_index[p] = self.next_index[p].max(self.match_index[p] + 1);
            self.maybe_commit();
            if self.next_index[p] <= last {
                self.send_append(from);
            }
        } else if r.index + 1 == self.next_index[p] {
            // The refusal of the latest probe (an older one's is stale): back off.
            let next = r.index.min(r.hint + 1).max(1);
            debug_assert!(next > self.match_index[p]);
            self.next_index[p] = next;
            self.send_append(from);
        }
    }

    fn send_append(&mut self, to: NodeId) {
        let ae = {
            let d = self.disk.borrow();
            let next = self.next_index[to as usize];
            let prev = next - 1;
            let end = d
                .last_index()
                .min(prev + self.config.max_entries_per_append as u64);
            AppendEntries {
                term: d.current_term,
                prev_log_index: prev,
                prev_log_term: d.term_at(prev).expect("nextIndex is within the log"),
                entries: d.log[prev as usize..end as usize].to_vec(),
                leader_commit: self.commit_index,
            }
        };
        self.send(to, Message::AppendEntries(ae));
    }

    /// Leader: commit the highest index a majority holds, if it is of the current term.
    fn maybe_commit(&mut self) {
        let mut m = self.match_index.clone();
        m.sort_unstable_by(|a, b| b.cmp(a));
        let n = m[self.quorum() as usize - 1];
        if n > self.commit_index {
            let d = self.disk.borrow();
            let current = d.term_at(n) == Some(d.current_term);
            drop(d);
            if current {
                self.commit_to(n);
            }
        }
    }

    fn commit_to(&mut self, index: u64) {
        let d = self.disk.borrow();
        assert!(index <= d.last_index(), "commit beyond the log");
        for i in self.commit_index + 1..=index {
            let entry = d.entry(i).expect("within the log");
            self.out.push(Output::Committed { index: i, entry });
        }
        drop(d);
        self.commit_index = self.commit_index.max(index);
    }
}

#[cfg(test)]
mod tests;
