//! The coordination family's properties through the harness (`faultline::prop::Property`),
//! on the shipped scenario files, under generated plans of partitions, pauses and clock
//! skews that replace each file's own faults:
//!
//! - Raft (`raft_election`): one leader per term, no committed entry lost or reordered, and a
//!   leader back within a bound after the last fault heals; without randomised timeouts the
//!   harness finds a run with votes split term after term, and shrinks it to a few crashes.
//! - Fencing (`zombie_lock`): the store never applies a write with an older token than one it
//!   saw; without fencing the harness finds it and shrinks it to one pause.
//! - HLC (`clock_skew_lww`): a write that causally follows another is never overwritten by
//!   it, under any skews; LWW on wall clocks loses one, shrunk to a single skew.
//!
//! A few cases each by default; `FAULTLINE_SLOW=1` runs many more.

use faultline::prop::{FaultSpace, PropFailure, Property};
use faultline::scenario::{Expect, Scenario};
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
    let s = load("raft_election");
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
