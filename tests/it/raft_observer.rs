//! The Raft group's shared observer and the leader killer, end to end.
//!
//! - A run whose per-member view misses a second leader of a term and a committed entry a new
//!   leader lacks, and the shared observer counts both (the same run: the observer is
//!   instrumentation, so the trace is the same with it and without).
//! - In a scenario, every `RaftNode` naming the same members and the `LeaderKiller` share one
//!   observer; the killer kills the member that leads each time, and a clean run counts no
//!   violation.

use std::rc::Rc;

use faultline::model::coord::raft::{
    LeaderKiller, Raft, RaftClient, RaftClientConfig, RaftConfig, RaftDisk, RaftNode, RaftObserver,
    RaftWatch, Role,
};
use faultline::model::rpc::from_ron;
use faultline::scenario::{Msg, Scenario, build};
use faultline::{ActorId, Durable, Sim, SimConfig, SimTime};

use crate::support::{counter, histogram, load};

const NAMES: [&str; 5] = ["n0", "n1", "n2", "n3", "n4"];

fn secs(n: u64) -> SimTime {
    SimTime::from_nanos(n * 1_000_000_000)
}

/// What the lost-disks run counted, before the two intact members return (at 30 s) and at
/// the end (40 s).
#[derive(Debug, PartialEq)]
struct Counts {
    two_leaders_30: u64,
    lost_30: u64,
    two_leaders: u64,
    lost: u64,
    reordered: u64,
    trace: u64,
}

/// Five members (each on its own host) and a writer; at 20 s every member is down and three
/// of them lose their disks (term, vote and log, as a wiped volume) — never the leader of
/// term 1 — and come back alone. Starting over from term 0, they elect a leader of term 1
/// again, another member, with an empty log, and commit new entries at the indices the group
/// had committed. The first term-1 leader is long gone and the other two members are down, so
/// no member ever hears two leaders of term 1; and a member counts a lost entry only when it
/// deletes one it knew committed, which the three (with empty logs) never do.
fn lost_disks(seed: u64, observer: Option<RaftWatch>) -> Counts {
    let mut sim: Sim<Raft> = Sim::with_config(SimConfig::new(seed)).expect("a valid config");
    let config: RaftConfig = from_ron(r#"(peers: ["n0", "n1", "n2", "n3", "n4"])"#).unwrap();
    let mut ids = Vec::new();
    let mut disks: Vec<Durable<RaftDisk>> = Vec::new();
    for (i, name) in NAMES.iter().enumerate() {
        let h = sim.add_host(&format!("h{i}")).unwrap();
        let mut proto: RaftNode<Raft> = RaftNode::new(config.clone()).unwrap();
        if let Some(o) = &observer {
            proto = proto.with_observer(o.clone());
        }
        disks.push(proto.disk());
        ids.push(sim.spawn(h, name, move || proto.clone()).unwrap());
    }
    let h = sim.add_host("hc").unwrap();
    let c: RaftClientConfig =
        from_ron(r#"(group: ["n0", "n1", "n2", "n3", "n4"], rate: "20/s")"#).expect("valid client");
    let proto: RaftClient<Raft> = RaftClient::new(c).unwrap();
    sim.spawn(h, "client", move || proto.clone()).unwrap();
    let leader = |sim: &Sim<Raft>| {
        ids.iter().position(|&id| {
            sim.inspect::<RaftNode<Raft>>(id)
                .and_then(|n| n.core())
                .is_some_and(|c| c.role() == Role::Leader)
        })
    };
    sim.run_until(secs(10));
    // The first election of this seed is won in term 1, without a split vote.
    let first = leader(&sim).expect("a leader");
    let term = sim
        .inspect::<RaftNode<Raft>>(ids[first])
        .and_then(|n| n.core())
        .map(|c| c.term());
    assert_eq!(term, Some(1), "seed {seed}: the first leader won term 1");
    // A leader change, so that the intact members' logs end in a later term.
    sim.crash(ids[first]);
    sim.run_until(secs(15));
    sim.restart(ids[first]);
    sim.run_until(secs(20));
    for &id in &ids {
        sim.crash(id);
    }
    let wiped: Vec<usize> = (0..5).filter(|&i| i != first).take(3).collect();
    for &i in &wiped {
        *disks[i].borrow_mut() = RaftDisk::default();
        sim.restart(ids[i]);
    }
    sim.run_until(secs(30));
    let two_leaders_30 = counter(&sim, "raft.leaders_per_term_violations_total");
    let lost_30 = counter(&sim, "raft.committed_lost_total");
    for i in (0..5).filter(|i| !wiped.contains(i)) {
        sim.restart(ids[i]);
    }
    sim.run_until(secs(40));
    Counts {
        two_leaders_30,
        lost_30,
        two_leaders: counter(&sim, "raft.leaders_per_term_violations_total"),
        lost: counter(&sim, "raft.committed_lost_total"),
        reordered: counter(&sim, "raft.committed_reordered_total"),
        trace: sim.trace_hash(),
    }
}

#[test]
fn the_shared_observer_counts_a_second_leader_and_a_lost_entry_no_member_sees() {
    let seed = 8;
    let alone = lost_disks(seed, None);
    let watch = RaftObserver::shared();
    let shared = lost_disks(seed, Some(watch.clone()));
    // The same run: the observer only listens.
    assert_eq!(alone.trace, shared.trace);
    // Alone, the members see no second leader of a term, and no lost entry while the three
    // are on their own.
    assert_eq!(alone.two_leaders_30, 0, "{alone:?}");
    assert_eq!(alone.lost_30, 0, "{alone:?}");
    // The observer: term 1 had two leaders, and the three's leader lacked every entry
    // committed before, counted at its election.
    let w = watch.borrow();
    assert!(w.two_leader_terms.contains(&1), "{:?}", w.two_leader_terms);
    assert_eq!(shared.two_leaders_30, w.two_leader_terms.len() as u64);
    assert!(shared.lost_30 > 0, "{shared:?}");
    // Once per term and per index, however many members see it.
    assert_eq!(shared.two_leaders, w.two_leader_terms.len() as u64);
    assert_eq!(shared.lost, w.lost.len() as u64);
    assert_eq!(shared.reordered, w.reordered.len() as u64);
    // Every index counted lost was committed, and everything committed before 20 s is lost
    // from the three's leader's log.
    assert!(w.lost.iter().all(|i| w.committed.contains_key(i)));
    // Alone, members count the deletions of what each knew committed, once per member and
    // entry: at least as many as the group's distinct indices.
    assert!(
        alone.lost >= shared.lost - shared.lost_30,
        "{alone:?} {shared:?}"
    );
    assert!(alone.reordered >= 1, "{alone:?}");
}

/// The scenario's actors, by name.
fn actor(sim: &Sim<Msg>, name: &str) -> ActorId {
    sim.lookup(name)
        .unwrap_or_else(|| panic!("no actor `{name}`"))
}

#[test]
fn a_scenario_group_shares_one_observer_and_the_killer_kills_each_leader() {
    let s: Scenario = load("raft_election");
    let v = s.variant("paper 150-300 ms").expect("the variant");
    let mut sim = build(&s, v, 3, false).expect("builds");
    let watch = {
        let k = sim
            .inspect::<LeaderKiller<Msg>>(actor(&sim, "chaos"))
            .expect("the killer");
        k.observer()
    };
    for n in NAMES {
        let node = sim
            .inspect::<RaftNode<Msg>>(actor(&sim, n))
            .expect("a node");
        let o = node.observer().expect("an observer");
        assert!(Rc::ptr_eq(&o, &watch), "{n} reports to another observer");
    }
    // The rollout stretch (kills every 15 s from 10 s): before each kill, the killer's victim
    // is the one member that leads, in the highest term.
    let mut victims = Vec::new();
    for k in 0..12u64 {
        let at = secs(10 + 15 * k);
        sim.run_until(SimTime::from_nanos(at.as_nanos() - 1_000_000));
        let leading: Vec<(String, u64)> = NAMES
            .iter()
            .filter_map(|n| {
                let c = sim.inspect::<RaftNode<Msg>>(actor(&sim, n))?.core()?;
                (c.role() == Role::Leader).then(|| (n.to_string(), c.term()))
            })
            .collect();
        assert_eq!(leading.len(), 1, "before kill {k}: {leading:?}");
        let (name, term) = &leading[0];
        assert_eq!(
            watch.borrow().leader(),
            Some((name.as_str(), *term)),
            "kill {k}"
        );
        sim.run_until(at);
        assert!(sim.inspect::<RaftNode<Msg>>(actor(&sim, name)).is_none());
        victims.push(name.clone());
    }
    sim.run_until(secs(12 * 60));
    assert_eq!(counter(&sim, "chaos.kills_total"), 39);
    assert_eq!(counter(&sim, "chaos.no_leader_total"), 0);
    assert_eq!(counter(&sim, "chaos.unelected_total"), 0);
    // Every kill needs an election: a time to elect for each, within the paper's range plus
    // a split vote's round at most.
    let t = histogram(&sim, "chaos.time_to_elect");
    assert_eq!(t.count, 39);
    assert!(t.p50 >= 100_000_000 && t.max <= 900_000_000, "{t:?}");
    assert!(counter(&sim, "raft.leaders_elected_total") >= 40);
    // Clean: no violation, by the members or the observer.
    let w = watch.borrow();
    assert!(w.violations.is_empty(), "{:?}", w.violations);
    for name in [
        "raft.leaders_per_term_violations_total",
        "raft.committed_lost_total",
        "raft.committed_reordered_total",
        "raft.healthy_leaders_deposed_total",
    ] {
        assert_eq!(counter(&sim, name), 0, "{name}");
    }
    // Whoever led: not one member every time (a restarted victim can win again later).
    let distinct: std::collections::BTreeSet<&String> = victims.iter().collect();
    assert!(distinct.len() >= 2, "{victims:?}");
}

/// A killer's group that is not one Raft group's members, or that names something else, is
/// reported at load with the field: it would otherwise watch a group of its own and kill
/// nothing.
#[test]
fn a_leader_killer_naming_no_raft_group_is_reported_with_the_field() {
    use faultline::scenario::{Scenario, shipped};
    let (path, text) = shipped("raft_election").expect("shipped");
    let from = r#"LeaderKiller(group: ["n0", "n1", "n2", "n3", "n4"]"#;
    assert!(text.contains(from));
    for (to, says) in [
        (
            r#"LeaderKiller(group: ["n0", "n1", "n2", "n3"]"#,
            "is not the Raft group `n0` belongs to, whose members are [n0, n1, n2, n3, n4]",
        ),
        (
            r#"LeaderKiller(group: ["n0", "n1", "n2", "n3", "writer"]"#,
            "`writer` is a RaftClient, not a RaftNode",
        ),
    ] {
        let bad = text.replacen(from, to, 1);
        let e = Scenario::from_str(&bad, path).expect_err(to).to_string();
        assert!(
            e.contains("components.chaos.group") && e.contains(says),
            "{to}: {e}"
        );
    }
    assert!(Scenario::from_str(text, path).is_ok());
}
