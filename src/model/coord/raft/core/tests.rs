//! The core's rules, each driven by a scripted message sequence through a tiny hand-run
//! network: messages wait in a queue until the test delivers (or drops) them.

use super::*;

const PLAIN: CoreConfig = CoreConfig {
    pre_vote: false,
    check_quorum: false,
    max_entries_per_append: 64,
};

/// A group whose messages the test delivers by hand.
struct Net {
    cores: Vec<Option<RaftCore>>,
    disks: Vec<Durable<RaftDisk>>,
    config: CoreConfig,
    /// (from, to, message), in send order.
    queue: Vec<(NodeId, NodeId, Message)>,
    /// Everything other than sends, by server, in order.
    events: Vec<Vec<Output>>,
}

impl Net {
    fn new(n: u32, config: CoreConfig) -> Net {
        let disks: Vec<_> = (0..n).map(|_| Durable::new(RaftDisk::default())).collect();
        Net::with_disks(disks, config)
    }

    fn with_disks(disks: Vec<Durable<RaftDisk>>, config: CoreConfig) -> Net {
        let n = disks.len() as u32;
        let cores = (0..n)
            .map(|i| Some(RaftCore::new(i, n, config, disks[i as usize].clone())))
            .collect();
        Net {
            cores,
            disks,
            config,
            queue: Vec::new(),
            events: vec![Vec::new(); n as usize],
        }
    }

    fn core(&self, i: NodeId) -> &RaftCore {
        self.cores[i as usize].as_ref().expect("up")
    }

    fn absorb(&mut self, from: NodeId, outs: Vec<Output>) {
        for o in outs {
            match o {
                Output::Send { to, msg } => self.queue.push((from, to, msg)),
                other => self.events[from as usize].push(other),
            }
        }
    }

    fn timeout(&mut self, i: NodeId) {
        let outs = self.cores[i as usize].as_mut().unwrap().election_timeout();
        self.absorb(i, outs);
    }

    fn heartbeat(&mut self, i: NodeId) {
        let outs = self.cores[i as usize].as_mut().unwrap().heartbeat();
        self.absorb(i, outs);
    }

    fn propose(&mut self, i: NodeId, data: u64) -> Result<u64, Option<NodeId>> {
        let (r, outs) = self.cores[i as usize].as_mut().unwrap().propose(data);
        self.absorb(i, outs);
        r
    }

    fn crash(&mut self, i: NodeId) {
        self.cores[i as usize] = None;
        self.queue.retain(|(f, t, _)| *f != i && *t != i);
    }

    fn restart(&mut self, i: NodeId) {
        let n = self.disks.len() as u32;
        let disk = self.disks[i as usize].clone();
        self.cores[i as usize] = Some(RaftCore::new(i, n, self.config, disk));
    }

    /// Delivers queued messages that `pass` accepts (dropping those it rejects), repeatedly,
    /// until the queue is empty. Messages to a crashed server are dropped.
    fn run(&mut self, mut pass: impl FnMut(NodeId, NodeId, &Message) -> bool) {
        let mut steps = 0;
        while !self.queue.is_empty() {
            steps += 1;
            assert!(steps < 10_000, "the exchange does not settle");
            let (from, to, msg) = self.queue.remove(0);
            if !pass(from, to, &msg) {
                continue;
            }
            let Some(core) = self.cores[to as usize].as_mut() else {
                continue;
            };
            let outs = core.step(from, msg);
            self.absorb(to, outs);
        }
    }

    fn run_all(&mut self) {
        self.run(|_, _, _| true);
    }

    fn leaders(&self) -> Vec<(NodeId, Term)> {
        self.cores
            .iter()
            .flatten()
            .filter(|c| c.role() == Role::Leader)
            .map(|c| (c.id(), c.term()))
            .collect()
    }

    fn log_terms(&self, i: NodeId) -> Vec<Term> {
        self.disks[i as usize]
            .borrow()
            .log
            .iter()
            .map(|e| e.term)
            .collect()
    }

    fn committed(&self, i: NodeId) -> Vec<u64> {
        self.events[i as usize]
            .iter()
            .filter_map(|o| match o {
                Output::Committed { index, .. } => Some(*index),
                _ => None,
            })
            .collect()
    }
}

fn disk(term: Term, voted_for: Option<NodeId>, terms: &[Term]) -> Durable<RaftDisk> {
    Durable::new(RaftDisk {
        current_term: term,
        voted_for,
        log: terms
            .iter()
            .enumerate()
            .map(|(i, &t)| Entry {
                term: t,
                data: Some(i as u64 + 1),
            })
            .collect(),
    })
}

fn vote_request(term: Term, last_log_index: u64, last_log_term: Term) -> Message {
    Message::RequestVote(RequestVote {
        term,
        last_log_index,
        last_log_term,
        pre_vote: false,
    })
}

/// The vote a single `step` answered with.
fn answer(outs: &[Output]) -> Vote {
    let votes: Vec<Vote> = outs
        .iter()
        .filter_map(|o| match o {
            Output::Send {
                msg: Message::Vote(v),
                ..
            } => Some(*v),
            _ => None,
        })
        .collect();
    assert_eq!(votes.len(), 1, "one answer: {outs:?}");
    votes[0]
}

#[test]
fn five_servers_elect_the_first_to_time_out_and_replicate_its_no_op() {
    let mut net = Net::new(5, PLAIN);
    net.timeout(2);
    assert_eq!(net.core(2).role(), Role::Candidate);
    assert_eq!(net.core(2).term(), 1);
    assert_eq!(net.disks[2].borrow().voted_for, Some(2));
    net.run_all();
    assert_eq!(net.leaders(), vec![(2, 1)]);
    for i in 0..5 {
        assert_eq!(net.core(i).term(), 1);
        assert_eq!(
            net.log_terms(i),
            vec![1],
            "the leader's no-op on server {i}"
        );
        assert_eq!(net.core(i).leader(), Some(2));
    }
    // The leader committed its no-op; followers learn it with the next heartbeat.
    assert_eq!(net.core(2).commit_index(), 1);
    assert_eq!(net.core(0).commit_index(), 0);
    net.heartbeat(2);
    net.run_all();
    for i in 0..5 {
        assert_eq!(net.core(i).commit_index(), 1);
        assert_eq!(net.committed(i), vec![1]);
    }
}

#[test]
fn proposals_commit_on_a_majority_only() {
    let mut net = Net::new(5, PLAIN);
    net.timeout(0);
    net.run_all();
    assert_eq!(net.propose(1, 7), Err(Some(0)), "a follower redirects");
    assert_eq!(net.propose(0, 7), Ok(2));
    // Only servers 1 and 2 hear of it: 3 of 5 hold it, so it commits.
    net.run(|_, to, _| to <= 2);
    assert_eq!(net.core(0).commit_index(), 2);
    assert_eq!(net.propose(0, 8), Ok(3));
    // Now only server 1 does: 2 of 5, no commit.
    net.run(|_, to, _| to <= 1);
    assert_eq!(net.core(0).commit_index(), 2);
    assert_eq!(net.log_terms(1), vec![1, 1, 1]);
    assert_eq!(net.log_terms(2), vec![1, 1]);
    // A heartbeat brings the others up: committed.
    net.heartbeat(0);
    net.run_all();
    assert_eq!(net.core(0).commit_index(), 3);
    for i in 0..5 {
        assert_eq!(net.log_terms(i), vec![1, 1, 1]);
    }
}

#[test]
fn a_server_votes_once_per_term_even_across_a_restart() {
    let mut net = Net::new(3, PLAIN);
    let c = net.cores[0].as_mut().unwrap();
    let first = answer(&c.step(1, vote_request(1, 0, 0)));
    assert!(first.granted);
    assert_eq!(first.term, 1);
    let second = answer(&c.step(2, vote_request(1, 0, 0)));
    assert!(!second.granted, "already voted for 1 in term 1");
    // Asked again by the same candidate (a retransmission): the same answer.
    assert!(answer(&c.step(1, vote_request(1, 0, 0))).granted);
    net.crash(0);
    net.restart(0);
    let c = net.cores[0].as_mut().unwrap();
    assert_eq!(c.term(), 1, "the term is durable");
    assert!(
        !answer(&c.step(2, vote_request(1, 0, 0))).granted,
        "the vote is durable"
    );
    // A new term frees the vote.
    assert!(answer(&c.step(2, vote_request(2, 0, 0))).granted);
    assert_eq!(net.disks[0].borrow().voted_for, Some(2));
}

#[test]
fn votes_go_only_to_candidates_with_logs_at_least_as_up_to_date() {
    // The voter's log: terms [1, 1, 2] at term 2.
    let voter = || {
        let d = disk(2, None, &[1, 1, 2]);
        RaftCore::new(0, 3, PLAIN, d)
    };
    let ask = |term, li, lt| answer(&voter().step(1, vote_request(term, li, lt))).granted;
    assert!(
        !ask(3, 5, 1),
        "a lower last term loses, however long the log"
    );
    assert!(!ask(3, 2, 2), "the same last term and a shorter log loses");
    assert!(ask(3, 3, 2), "the same last term and length wins");
    assert!(ask(3, 4, 2), "the same last term and a longer log wins");
    assert!(ask(3, 1, 3), "a higher last term wins, however short");
    // Refusing still adopts the higher term (and clears the vote).
    let mut v = voter();
    let vote = answer(&v.step(1, vote_request(3, 1, 1)));
    assert_eq!((vote.term, vote.granted), (3, false));
    assert_eq!(v.term(), 3);
    assert_eq!(v.disk().borrow().voted_for, None);
    // A request from an older term is refused with the current term.
    let mut v = voter();
    assert_eq!(answer(&v.step(1, vote_request(1, 9, 9))).term, 2);
}

#[test]
fn a_stale_leader_is_refused_and_steps_down() {
    let mut net = Net::new(3, PLAIN);
    net.timeout(0);
    net.run_all();
    assert_eq!(net.leaders(), vec![(0, 1)]);
    // Server 0 is cut off; server 1 wins term 2 with server 2.
    net.timeout(1);
    net.run(|f, t, _| f != 0 && t != 0);
    assert_eq!(net.core(1).role(), Role::Leader);
    assert_eq!(net.core(1).term(), 2);
    assert_eq!(net.core(0).role(), Role::Leader, "it has not heard");
    // Two servers each think they lead, but in different terms: the old one cannot commit.
    assert_eq!(net.propose(0, 99), Ok(2));
    net.run(|f, t, m| {
        // Server 2 refuses it with term 2; drop everything else.
        f == 0 && t == 2 || f == 2 && t == 0 && m.term() == 2
    });
    assert_eq!(net.core(0).role(), Role::Follower, "the refusal deposed it");
    assert_eq!(net.core(0).term(), 2);
    assert_eq!(
        net.core(0).commit_index(),
        1,
        "its entry at index 2 never committed"
    );
    assert!(net.events[0].contains(&Output::SteppedDown {
        term: 1,
        reason: StepDown::HigherTerm
    }));
    // Its uncommitted entry is replaced by the new leader's log.
    net.heartbeat(1);
    net.run_all();
    assert_eq!(net.log_terms(0), vec![1, 2]);
    assert_eq!(net.log_terms(2), vec![1, 2]);
}

#[test]
fn conflicting_entries_are_truncated_but_stale_messages_truncate_nothing() {
    let d = disk(3, None, &[1, 1, 2, 2]);
    let mut f = RaftCore::new(1, 3, PLAIN, d.clone());
    let ae = |prev_log_index, prev_log_term, terms: &[Term], leader_commit| {
        Message::AppendEntries(AppendEntries {
            term: 3,
            prev_log_index,
            prev_log_term,
            entries: terms
                .iter()
                .map(|&t| Entry {
                    term: t,
                    data: Some(100 + t),
                })
                .collect(),
            leader_commit,
        })
    };
    let reply = |outs: Vec<Output>| -> AppendReply {
        let r: Vec<_> = outs
            .into_iter()
            .filter_map(|o| match o {
                Output::Send {
                    msg: Message::AppendReply(r),
                    ..
                } => Some(r),
                _ => None,
            })
            .collect();
        assert_eq!(r.len(), 1);
        r[0]
    };
    // A gap: prev 6 beyond the log (4): refused, hint 4.
    let r = reply(f.step(0, ae(6, 3, &[3], 0)));
    assert_eq!((r.success, r.index, r.hint), (false, 6, 4));
    // A mismatch at prev 4 (term 2 here, 3 asked): refused, hint 3.
    let r = reply(f.step(0, ae(4, 3, &[3], 0)));
    assert_eq!((r.success, r.index, r.hint), (false, 4, 3));
    // Index 3 conflicts (2 vs 3): it and index 4 go, replaced by the leader's.
    let r = reply(f.step(0, ae(2, 1, &[3, 3], 1)));
    assert_eq!((r.success, r.index), (true, 4));
    assert_eq!(
        d.borrow().log.iter().map(|e| e.term).collect::<Vec<_>>(),
        vec![1, 1, 3, 3]
    );
    assert_eq!(f.commit_index(), 1);
    // A delayed copy of an older, shorter message matches and must not cut index 4.
    let r = reply(f.step(0, ae(2, 1, &[3], 4)));
    assert_eq!((r.success, r.index), (true, 3));
    assert_eq!(d.borrow().log.len(), 4);
    // The commit index follows the leader's only up to what this message verified.
    assert_eq!(f.commit_index(), 3);
}

/// Figure 8 of the paper: an entry of an earlier term on a majority is not committed by
/// counting replicas, because a later leader can still overwrite it.
#[test]
fn figure_8_an_old_term_entry_on_a_majority_is_not_committed() {
    // (b): S1 (index 0) led term 2 and wrote index 2 only to itself (it has since heard of
    // term 3); S5 (4) led term 3 and wrote index 2 only to itself, with S3 and S4 voting for
    // it. All have index 1 (term 1).
    let disks = vec![
        disk(3, None, &[1, 2]),
        disk(2, Some(0), &[1]),
        disk(3, Some(4), &[1]),
        disk(3, Some(4), &[1]),
        disk(3, Some(4), &[1, 3]),
    ];
    let one_at_a_time = CoreConfig {
        max_entries_per_append: 1,
        ..PLAIN
    };
    let mut net = Net::with_disks(disks, one_at_a_time);
    // (c): S1 wins term 4 with S2 and S3 (S5 is down), appends its no-op at index 3, and
    // replicates its term-2 entry to S2 and S3 — one entry per message, so that the no-op
    // does not reach them yet.
    net.crash(4);
    net.timeout(0);
    // The first AppendEntries after index 2 each follower gets is refused (they lack index
    // 2); the second, carrying the no-op once index 2 is there, is dropped.
    let mut after_2 = [0; 5];
    net.run(|_, to, m| {
        if to == 3 {
            return false;
        }
        match m {
            Message::AppendEntries(ae) if ae.prev_log_index == 2 => {
                after_2[to as usize] += 1;
                after_2[to as usize] == 1
            }
            _ => true,
        }
    });
    assert_eq!(net.leaders(), vec![(0, 4)]);
    assert_eq!(net.log_terms(0), vec![1, 2, 4]);
    assert_eq!(net.log_terms(1), vec![1, 2]);
    assert_eq!(net.log_terms(2), vec![1, 2]);
    // Index 2 is on a majority (S1, S2, S3), but of term 2: not committed.
    assert_eq!(net.core(0).commit_index(), 0);
    assert!(net.committed(0).is_empty());
    // (d): S1 crashes; S5 restarts and wins term 5 with S2, S3 and S4 (its last term 3 beats
    // their 2), and overwrites index 2 everywhere.
    net.crash(0);
    net.restart(4);
    net.timeout(4);
    net.run_all();
    assert!(net.leaders().is_empty(), "S2 and S3 voted for S1 in term 4");
    net.timeout(4);
    net.run_all();
    assert_eq!(net.leaders(), vec![(4, 5)]);
    for i in 1..5 {
        assert_eq!(net.log_terms(i), vec![1, 3, 5], "server {i}");
    }
    // Had index 2 been committed in (c), it would now be lost; it never was: whatever was
    // committed at index 2 is S5's term-3 entry.
    for events in &net.events {
        for o in events {
            if let Output::Committed { index: 2, entry } = o {
                assert_eq!(entry.term, 3);
            }
        }
    }
}

/// The other branch of Figure 8 (e): once an entry of the current term is on a majority,
/// it and the older entries before it are committed, and S5 can no longer win.
#[test]
fn figure_8_a_current_term_entry_commits_the_old_ones_with_it() {
    let disks = vec![
        disk(3, None, &[1, 2]),
        disk(2, Some(0), &[1]),
        disk(3, Some(4), &[1]),
        disk(3, Some(4), &[1]),
        disk(3, Some(4), &[1, 3]),
    ];
    let mut net = Net::with_disks(disks, PLAIN);
    net.crash(4);
    net.timeout(0);
    net.run(|_, to, _| to != 3);
    assert_eq!(net.log_terms(1), vec![1, 2, 4]);
    assert_eq!(net.log_terms(2), vec![1, 2, 4]);
    assert_eq!(net.core(0).commit_index(), 3);
    assert_eq!(net.committed(0), vec![1, 2, 3]);
    net.crash(0);
    net.restart(4);
    net.timeout(4);
    net.run_all();
    assert!(
        net.leaders().is_empty(),
        "S2 and S3 refuse S5: their logs are newer"
    );
    assert_eq!(
        net.log_terms(1),
        vec![1, 2, 4],
        "the committed entries stay"
    );
    // S2 then wins (its log is the most up to date) and keeps every committed entry.
    net.timeout(1);
    net.run_all();
    assert_eq!(net.leaders(), vec![(1, 5)]);
    net.heartbeat(1);
    net.run_all();
    for i in 1..5 {
        assert_eq!(net.log_terms(i), vec![1, 2, 4, 5], "server {i}");
        assert_eq!(net.core(i).commit_index(), 4);
    }
}

#[test]
fn a_candidate_that_times_out_without_a_winner_counts_a_split_vote() {
    let mut net = Net::new(4, PLAIN);
    // Two candidates at once, each with one other vote: 2 of 4 each, no majority.
    net.timeout(0);
    net.timeout(1);
    net.run(|from, to, m| match m {
        Message::RequestVote(_) => (from == 0 && to == 2) || (from == 1 && to == 3),
        _ => true,
    });
    assert!(net.leaders().is_empty());
    net.timeout(0);
    assert!(net.events[0].contains(&Output::SplitVote { term: 1 }));
    assert_eq!(net.core(0).term(), 2);
    net.run_all();
    assert_eq!(net.leaders(), vec![(0, 2)]);
}

#[test]
fn check_quorum_deposes_a_leader_that_hears_from_no_majority() {
    let cq = CoreConfig {
        check_quorum: true,
        ..PLAIN
    };
    let mut net = Net::new(5, cq);
    net.timeout(0);
    net.run_all();
    net.heartbeat(0);
    net.run_all();
    let outs = net.cores[0].as_mut().unwrap().check_quorum();
    assert!(outs.is_empty(), "all answered");
    // Only server 1 answers now: 2 of 5.
    net.heartbeat(0);
    net.run(|f, t, _| (f == 0 && t == 1) || (f == 1 && t == 0));
    let outs = net.cores[0].as_mut().unwrap().check_quorum();
    assert_eq!(
        outs,
        vec![Output::SteppedDown {
            term: 1,
            reason: StepDown::CheckQuorum
        }]
    );
    assert_eq!(net.core(0).role(), Role::Follower);
    assert_eq!(
        net.core(0).term(),
        1,
        "stepping down does not change the term"
    );
    assert_eq!(net.core(0).leader(), None);
}

#[test]
fn in_lease_followers_ignore_a_disruptive_candidate() {
    let cq = CoreConfig {
        check_quorum: true,
        ..PLAIN
    };
    let mut net = Net::new(3, cq);
    net.timeout(0);
    net.run_all();
    // Server 2 was cut off and times out twice: term 3, no leader.
    net.crash(2);
    net.restart(2);
    net.disks[2].borrow_mut().current_term = 3;
    let c = net.cores[2].as_mut().unwrap();
    let outs = c.election_timeout();
    net.absorb(2, outs);
    net.run_all();
    assert_eq!(net.leaders(), vec![(0, 1)], "the leader stays");
    assert_eq!(net.core(1).term(), 1, "the follower ignored term 4");
    // Once its lease has expired (no heartbeat for the minimum timeout), it listens.
    let outs = net.cores[1].as_mut().unwrap().lease_expired();
    assert!(outs.is_empty());
    net.timeout(2);
    net.run(|_, to, _| to != 0);
    assert_eq!(net.core(1).term(), 5);
    assert_eq!(net.core(2).role(), Role::Leader);
    // Without CheckQuorum the same request deposes the leader's follower and the leader.
    let mut net = Net::new(3, PLAIN);
    net.timeout(0);
    net.run_all();
    net.disks[2].borrow_mut().current_term = 3;
    net.timeout(2);
    net.run_all();
    assert_eq!(net.core(1).term(), 4);
}

#[test]
fn pre_vote_keeps_a_partitioned_server_from_inflating_its_term() {
    let pv = CoreConfig {
        pre_vote: true,
        ..PLAIN
    };
    let mut net = Net::new(3, pv);
    net.timeout(0);
    assert_eq!(net.core(0).role(), Role::PreCandidate);
    assert_eq!(net.core(0).term(), 0, "a pre-vote moves no term");
    net.run_all();
    assert_eq!(net.leaders(), vec![(0, 1)]);
    net.heartbeat(0);
    net.run_all();
    // Server 2 is cut off and times out again and again: its term stays at 1.
    for _ in 0..5 {
        net.timeout(2);
        net.run(|f, t, _| f != 2 && t != 2);
    }
    assert_eq!(net.core(2).term(), 1);
    assert_eq!(net.core(2).role(), Role::PreCandidate);
    // It rejoins; its pre-votes are refused (its log is behind after a new entry).
    assert_eq!(net.propose(0, 5), Ok(2));
    net.run(|f, t, _| f != 2 && t != 2);
    net.timeout(2);
    net.run_all();
    assert_eq!(net.leaders(), vec![(0, 1)], "the leader was not disrupted");
    assert_eq!(net.core(1).term(), 1);
}

#[test]
fn a_single_server_group_leads_and_commits_alone() {
    let mut net = Net::new(1, PLAIN);
    net.timeout(0);
    assert_eq!(net.leaders(), vec![(0, 1)]);
    assert_eq!(net.propose(0, 1), Ok(2));
    assert_eq!(net.core(0).commit_index(), 2);
    assert!(net.queue.is_empty());
}

#[test]
fn a_restarted_server_relearns_the_commit_index_and_reports_entries_again() {
    let mut net = Net::new(3, PLAIN);
    net.timeout(0);
    net.run_all();
    net.propose(0, 1).unwrap();
    net.run_all();
    net.heartbeat(0);
    net.run_all();
    assert_eq!(net.core(1).commit_index(), 2);
    net.crash(1);
    net.restart(1);
    assert_eq!(net.core(1).commit_index(), 0, "volatile");
    assert_eq!(net.core(1).role(), Role::Follower);
    assert_eq!(net.log_terms(1), vec![1, 1], "durable");
    net.heartbeat(0);
    net.run_all();
    assert_eq!(net.core(1).commit_index(), 2);
    assert_eq!(net.committed(1), vec![1, 2, 1, 2]);
}

/// Messages no correct server sends — a second leader's AppendEntries in a term, a leader
/// overwriting a committed entry — are reported as violations, and the server carries on.
#[test]
fn a_second_leader_or_a_committed_entry_overwritten_is_reported_not_a_panic() {
    let heartbeat = |term, prev_log_index, prev_log_term, entries: Vec<Entry>, commit| {
        Message::AppendEntries(AppendEntries {
            term,
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit: commit,
        })
    };
    let violations = |outs: &[Output]| -> Vec<Violation> {
        outs.iter()
            .filter_map(|o| match o {
                Output::Violation(v) => Some(*v),
                _ => None,
            })
            .collect()
    };
    // A follower of 0 in term 3 hears from 2 as leader of term 3.
    let d = disk(3, Some(0), &[1, 3]);
    let mut f = RaftCore::new(1, 3, PLAIN, d.clone());
    let outs = f.step(0, heartbeat(3, 2, 3, vec![], 2));
    assert!(violations(&outs).is_empty(), "{outs:?}");
    assert_eq!(f.commit_index(), 2);
    let outs = f.step(2, heartbeat(3, 2, 3, vec![], 2));
    let two = Violation::TwoLeaders {
        term: 3,
        leader: Some(0),
        from: 2,
    };
    assert_eq!(violations(&outs), [two]);
    // The message was ignored: no answer, the leader still 0.
    assert!(outs.iter().all(|o| !matches!(o, Output::Send { .. })));
    assert_eq!(f.leader(), Some(0));
    // 0 now replaces committed index 2 with an entry of another term.
    let e = Entry {
        term: 2,
        data: Some(9),
    };
    let outs = f.step(0, heartbeat(3, 1, 1, vec![e], 2));
    assert_eq!(
        violations(&outs),
        [Violation::TruncatedCommitted { index: 2 }]
    );
    assert!(outs.contains(&Output::Truncated { from: 2 }));
    assert_eq!(d.borrow().entry(2), Some(e));
    // A leader hearing from another leader of its own term reports it too.
    let mut n = Net::new(3, PLAIN);
    n.timeout(0);
    n.run_all();
    assert_eq!(n.leaders(), [(0, 1)]);
    let outs = n.cores[0]
        .as_mut()
        .unwrap()
        .step(1, heartbeat(1, 0, 0, vec![], 0));
    let two = Violation::TwoLeaders {
        term: 1,
        leader: Some(0),
        from: 1,
    };
    assert_eq!(violations(&outs), [two]);
    assert_eq!(n.core(0).role(), Role::Leader);
}
