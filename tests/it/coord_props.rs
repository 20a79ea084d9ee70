//! The coordination family's properties through the harness (`faultline::prop::Property`),
//! on the shipped scenario files, under generated plans of partitions, pauses and clock
//! skews that replace each file's own faults:
//!
//! - Raft (`raft_election`): one leader per term, no committed entry lost or reordered, and a
//!   leader back within a bound after the last fault heals (with the scenario's leader killer
//!   at work too); without randomised timeouts the harness finds a run with votes split term
//!   after term, and shrinks it to a few crashes; with PreVote no partition lets a member
//!   that rejoins depose a leader a majority kept answering, and without it the harness finds
//!   one and shrinks it to a single partition.
//! - Fencing (`zombie_lock`): the store never applies a write with an older token than one it
//!   saw; without fencing the harness finds it and shrinks it to one pause.
//! - HLC (`clock_skew_lww`): a write that causally follows another is never overwritten by
//!   it, under any skews; LWW on wall clocks loses one, shrunk to a single skew.
//!
//! A few cases each by default; `FAULTLINE_SLOW=1` runs many more.

use faultline::prop::{FaultSpace, PropFailure, Property};
use faultline::scenario::{Expect, Scenario, shipped};
use faultline::{Fault, NemesisKind, SimDuration};

use crate::coord_lease::{worker_faults, zombie_under_faults};
use crate::support::{cases, d, load, t};

const NODES: [&str; 5] = ["n0", "n1", "n2", "n3", "n4"];

/// The Raft group's faults: cuts between its members' hosts (the writer's host stays joined
/// to all), pauses of members and clock offsets of their hosts, up to 4 of them, each up to
/// 30 s, all healed by 11 m — where the scenario's check "writes commit after the heal" looks
/// from 11m10s on.
fn raft_faults(s: &Scenario) -> FaultSpace {
    FaultSpace::for_scenario(s)
        .kinds([
            NemesisKind::Partition,
            NemesisKind::Pause,
            NemesisKind::ClockSkew,
        ])
        .targets(NODES)
        .hosts(NODES)
        .faults_max(4)
        .between(t("0s"), t("11m"))
        .window_max(d("30s"))
}

/// `raft_election` with `sets` overridden in every variant, and without its leader killer
/// (moved past the end of the run): the harness replaces the file's fault plan, but the
/// killer is a component, and a property about crashes or partitions alone wants no other
/// faults than the plan's.
fn raft_without_killer(sets: &[(String, String)]) -> Scenario {
    let (file, text) = shipped("raft_election").expect("shipped");
    let mut all: Vec<(String, String)> = [("chaos.from", r#""20m""#), ("chaos.until", r#""21m""#)]
        .iter()
        .map(|(p, v)| (p.to_string(), v.to_string()))
        .collect();
    all.extend_from_slice(sets);
    Scenario::with_overrides(text, file, &all).unwrap_or_else(|e| panic!("{e}"))
}

/// A property that must hold, with a failure shown whole.
fn holds(p: Property, what: &str) {
    match p.run() {
        Ok(report) => assert_eq!(report.held, report.cases, "{what}"),
        Err(e) => panic!("{what}: {e}"),
    }
}

/// A property that must fail: the shrunk counterexample.
fn fails(p: Property, what: &str) -> faultline::prop::Counterexample {
    match p.run() {
        Err(PropFailure::Counterexample(c)) => {
            if std::env::var("FAULTLINE_PRINT").is_ok() {
                eprintln!("{what}: seed {} {:?}", c.seed, c.faults.entries);
            }
            *c
        }
        Err(e) => panic!("{what}: {e}"),
        Ok(report) => panic!("{what}: every case held: {report:?}"),
    }
}

#[test]
fn raft_keeps_one_leader_per_term_and_its_commits_under_cuts_pauses_and_skews() {
    let s = load("raft_election");
    // The paper's range, and etcd's defaults: both must be safe.
    for variant in ["paper 150-300 ms", "etcd defaults"] {
        for check in [
            "one leader per term",
            "no committed entry lost",
            "no committed entry reordered",
        ] {
            let p = Property::new(&s)
                .variant(variant)
                .check(check)
                .expect(Expect::Holds)
                .faults(raft_faults(&s))
                .cases(cases(3, 32))
                .runner_seed(7);
            holds(p, &format!("{variant}: {check}"));
        }
    }
}

#[test]
fn raft_elects_a_leader_within_the_bound_after_the_faults_heal() {
    // The bound is the scenario's: writes commit from 10 s after the last heal (three rounds
    // of the widest timeout range and the writer's retry; see the check's comment).
    let s = load("raft_election");
    for variant in ["paper 150-300 ms", "etcd defaults"] {
        let p = Property::new(&s)
            .variant(variant)
            .check("writes commit after the heal")
            .expect(Expect::Holds)
            .faults(raft_faults(&s))
            .cases(cases(4, 32))
            .runner_seed(8);
        holds(p, variant);
    }
}

#[test]
fn without_randomised_timeouts_the_harness_finds_split_votes_and_shrinks_them_to_few_crashes() {
    let s = raft_without_killer(&[]);
    // Crashes of members only, each restarted within 10 s, during the rollout's stretch.
    let crashes = FaultSpace::for_scenario(&s)
        .kinds([NemesisKind::Crash])
        .targets(NODES)
        .faults_max(6)
        .between(t("0s"), t("10m"))
        .window_max(d("10s"));
    let p = |variant: &str| {
        Property::new(&s)
            .variant(variant)
            .check("few terms without a leader")
            .expect(Expect::Holds)
            .faults(crashes.clone())
            .cases(cases(4, 32))
            .runner_seed(3)
            .shrink_runs_max(96)
    };
    let c = fails(p("no randomisation"), "no randomisation");
    // Each crash of the leader costs several split terms when every timeout is the same:
    // one or two such crashes make more than 2 leaderless terms.
    let entries = &c.faults.entries;
    assert!(
        !entries.is_empty() && entries.len() <= 3,
        "shrunk to {} faults: {entries:?}",
        entries.len()
    );
    assert!(
        entries
            .iter()
            .all(|e| matches!(e.fault, Fault::Crash { .. })),
        "{entries:?}"
    );
    // The same plans with the paper's randomised range hold: it is the timeouts, not the
    // crashes.
    holds(p("paper 150-300 ms"), "paper 150-300 ms");
}

/// PreVote (etcd's `PreVote`, "prevents disruption when a node that has been partitioned away
/// rejoins the cluster"; Ongaro's thesis §9.6): a member cut off by a partition keeps timing
/// out; without PreVote each timeout raises its term, and when the partition heals the first
/// AppendEntries it answers carries that term back to the leader, which steps down — though a
/// majority answered it all along — and the group holds a needless election. With PreVote the
/// member only asks whether it could win, a majority that hears its leader says no (in lease,
/// or its log is longer), and its term stays.
///
/// The statement checked, `raft.healthy_leaders_deposed_total` = 0: no leader steps down on
/// seeing a higher term while a majority (itself included) kept answering it — none of them
/// silent for half an election timeout (`election_timeout_min / 2`) at any time since it was
/// elected. That excludes the legitimate case, a leader cut off long enough for the others to
/// elect another: a member that granted that election (or its pre-vote) had not heard the
/// leader for a whole `election_timeout_min`, so the leader had not heard it for about as
/// long. Over plans of partitions only (up to three, of any shape, each up to 30 s; no pauses,
/// whose backlog would reach a leader as a burst that looks like answers).
fn partitions(s: &Scenario) -> FaultSpace {
    FaultSpace::for_scenario(s)
        .kinds([NemesisKind::Partition])
        .targets(NODES)
        .hosts(NODES)
        .faults_max(3)
        .between(t("0s"), t("11m"))
        .window_max(d("30s"))
}

#[test]
fn with_pre_vote_no_healed_partition_deposes_a_leader_a_majority_kept_answering() {
    let check = "no leader deposed by a rejoining member";
    let p = |s: &Scenario, variant: &str| {
        Property::new(s)
            .variant(variant)
            .check(check)
            .expect(Expect::Holds)
            .faults(partitions(s))
            .cases(cases(3, 32))
            .runner_seed(12)
            .shrink_runs_max(48)
    };
    let with = raft_without_killer(&[]);
    for variant in ["paper 150-300 ms", "etcd defaults"] {
        holds(p(&with, variant), &format!("{variant}, pre-vote"));
    }
    // Without PreVote (CheckQuorum still on, as etcd runs it) the same plans depose leaders,
    // and one partition is enough: a member cut off from the leader for a few election
    // timeouts (here the harness shrinks to two followers cut from each other for 2 s, one
    // of them the leader-to-be).
    let off: Vec<(String, String)> = NODES
        .iter()
        .map(|n| (format!("{n}.pre_vote"), "false".to_string()))
        .collect();
    let without = raft_without_killer(&off);
    let c = fails(p(&without, "etcd defaults"), "etcd defaults, no pre-vote");
    let entries = &c.faults.entries;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(
        matches!(entries[0].fault, Fault::Partition { .. }),
        "{entries:?}"
    );
}

#[test]
fn with_fencing_no_write_with_an_older_token_is_accepted_under_pauses_and_skews() {
    let s = zombie_under_faults();
    let check = "no write with an older token is accepted";
    let p = Property::new(&s)
        .variant("fencing tokens")
        .check(check)
        .expect(Expect::Holds)
        .faults(worker_faults(&s))
        .cases(cases(4, 32))
        .runner_seed(5);
    holds(p, "fencing tokens");
    // Without fencing the harness finds a zombie's write accepted, and one pause explains it.
    let p = Property::new(&s)
        .variant("baseline")
        .check(check)
        .expect(Expect::Holds)
        .faults(worker_faults(&s))
        .cases(cases(16, 32))
        .runner_seed(11)
        .shrink_runs_max(64);
    let c = fails(p, "baseline");
    let entries = &c.faults.entries;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(
        matches!(entries[0].fault, Fault::Pause { .. }),
        "{entries:?}"
    );
}

/// Clock offsets of either client's host, up to 10 s either way, up to three at a time.
fn skews(s: &Scenario) -> FaultSpace {
    FaultSpace::for_scenario(s)
        .kinds([NemesisKind::ClockSkew])
        .hosts(["c1", "c2"])
        .faults_max(3)
        .between(t("0s"), t("10m"))
        .window_max(d("5m"))
        .skew(SimDuration::from_secs(10), SimDuration::from_millis(100))
}

#[test]
fn hlc_never_lets_a_write_overwrite_one_that_followed_it_under_random_skews() {
    let s = load("clock_skew_lww");
    let p = Property::new(&s)
        .variant("hybrid logical clock")
        .check("no write is lost to one it followed")
        .expect(Expect::Holds)
        .faults(skews(&s))
        .cases(cases(4, 32))
        .runner_seed(2);
    holds(p, "hlc");
}

#[test]
fn lww_under_skew_fails_and_the_harness_shrinks_it_to_one_skewed_clock() {
    let s = load("clock_skew_lww");
    let p = Property::new(&s)
        .variant("baseline")
        .check("no write is lost to one it followed")
        .expect(Expect::Holds)
        .faults(skews(&s))
        .cases(cases(8, 32))
        .runner_seed(2)
        .shrink_runs_max(64);
    let c = fails(p, "lww");
    // With true clocks LWW loses nothing that followed; one skewed clock is all it takes.
    let entries = &c.faults.entries;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(
        matches!(entries[0].fault, Fault::ClockOffset { .. }),
        "{entries:?}"
    );
}
