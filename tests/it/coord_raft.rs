//! The Raft family end to end: five `RaftNode`s on five hosts elect a leader, replace a crashed
//! one within a bound the election timeout range gives, stay safe (one leader per term,
//! committed entries never lost or reordered, acknowledged entries committed) under seeded
//! plans of crashes, pauses, partitions and clock faults, and split their votes more often
//! with a narrower timeout range.
//!
//! Configs are written in RON with `from_ron`, as a scenario writes them, so the tests also pin
//! the field names.

use faultline::engine::rng::stream;
use faultline::model::coord::raft::{
    Acked, Raft, RaftClient, RaftClientConfig, RaftConfig, RaftDisk, RaftNode, RaftObserver,
    RaftWatch, Role,
};
use faultline::model::rpc::from_ron;
use faultline::{
    ActorId, Durable, Fault, FaultPlan, Nemesis, NemesisKind, Sim, SimConfig, SimDuration, SimTime,
    Skew,
};
use rand_core::Rng;

use crate::support::{counter, gauge, histogram};

const NAMES: [&str; 5] = ["n0", "n1", "n2", "n3", "n4"];

fn secs(n: u64) -> SimTime {
    SimTime::from_nanos(n * 1_000_000_000)
}

fn ms(n: u64) -> SimDuration {
    SimDuration::from_millis(n)
}

/// A five-node group, each node on its own host (`h0`..`h4`), the default 1 ms link, and
/// optionally a client on its own host.
struct Group {
    sim: Sim<Raft>,
    ids: Vec<ActorId>,
    disks: Vec<Durable<RaftDisk>>,
    watch: RaftWatch,
    acked: Option<Durable<Vec<Acked>>>,
}

fn group(seed: u64, extra: &str, client_rate: Option<&str>) -> Group {
    let mut sim = Sim::with_config(SimConfig::new(seed)).expect("a valid config");
    let watch = RaftObserver::shared();
    let mut ids = Vec::new();
    let mut disks = Vec::new();
    let ron = format!(r#"(peers: ["n0", "n1", "n2", "n3", "n4"], {extra})"#);
    let config: RaftConfig = from_ron(&ron).unwrap_or_else(|e| panic!("{ron}: {e}"));
    for (i, name) in NAMES.iter().enumerate() {
        let h = sim.add_host(&format!("h{i}")).expect("fresh host");
        let proto: RaftNode<Raft> = RaftNode::new(config.clone())
            .expect("valid")
            .with_observer(watch.clone());
        disks.push(proto.disk());
        ids.push(sim.spawn(h, name, move || proto.clone()).expect("unique"));
    }
    let acked = client_rate.map(|rate| {
        let h = sim.add_host("hc").expect("fresh host");
        let ron = format!(r#"(group: ["n0", "n1", "n2", "n3", "n4"], rate: "{rate}")"#);
        let config: RaftClientConfig = from_ron(&ron).expect("valid client");
        let proto: RaftClient<Raft> = RaftClient::new(config).expect("valid");
        let acked = proto.acked();
        sim.spawn(h, "client", move || proto.clone())
            .expect("unique");
        acked
    });
    Group {
        sim,
        ids,
        disks,
        watch,
        acked,
    }
}

impl Group {
    /// Who leads now, by the nodes' own state: the node that is leader in the highest term.
    fn leader(&self) -> Option<(usize, u64)> {
        let mut best = None;
        for (i, &id) in self.ids.iter().enumerate() {
            let Some(core) = self
                .sim
                .inspect::<RaftNode<Raft>>(id)
                .and_then(|n| n.core())
            else {
                continue;
            };
            if core.role() == Role::Leader && best.is_none_or(|(_, t)| core.term() > t) {
                best = Some((i, core.term()));
            }
        }
        best
    }

    /// Whether every node that is up follows (or is) `leader` in `term`.
    fn all_follow(&self, leader: usize, term: u64) -> bool {
        self.ids.iter().all(|&id| {
            self.sim
                .inspect::<RaftNode<Raft>>(id)
                .and_then(|n| n.core())
                .is_none_or(|c| c.term() == term && c.leader() == Some(leader as u32))
        })
    }

    /// The safety checks every test makes: the observer saw no two leaders in a term and no two
    /// entries committed at one index; every committed entry is still in the logs of a majority
    /// at its index; and every entry the client was told is committed is committed, at that
    /// index.
    fn assert_safe(&self, what: &str) {
        let w = self.watch.borrow();
        assert!(w.violations.is_empty(), "{what}: {:?}", w.violations);
        for (&index, entry) in &w.committed {
            let holders = self
                .disks
                .iter()
                .filter(|d| d.borrow().entry(index) == Some(*entry))
                .count();
            assert!(
                holders >= 3,
                "{what}: committed index {index} ({entry:?}) is on {holders} of 5 logs"
            );
        }
        if let Some(acked) = &self.acked {
            for a in acked.borrow().iter() {
                let committed = w.committed.get(&a.index).and_then(|e| e.data);
                assert_eq!(
                    committed,
                    Some(a.data),
                    "{what}: acknowledged {a:?} is not what index {} committed",
                    a.index
                );
            }
        }
    }
}

#[test]
fn five_nodes_elect_one_leader_and_commit_what_the_client_proposes() {
    let mut g = group(1, "", Some("20/s"));
    g.sim.run_until(secs(20));
    let (leader, term) = g.leader().expect("a leader");
    assert!(g.all_follow(leader, term), "everyone follows it");
    let leaders: f64 = NAMES
        .iter()
        .map(|n| gauge(&g.sim, &format!("{n}.is_leader")))
        .sum();
    assert_eq!(leaders, 1.0);
    for n in NAMES {
        assert_eq!(gauge(&g.sim, &format!("{n}.term")), term as f64);
    }
    // A quiet start needs one election, maybe a few more on a split.
    let elections: u64 = NAMES
        .iter()
        .map(|n| counter(&g.sim, &format!("{n}.elections_started_total")))
        .sum();
    assert!((1..=5).contains(&elections), "{elections} elections");
    assert_eq!(g.watch.borrow().leaders.len() as u64, {
        let w = g.watch.borrow();
        w.history.len() as u64
    });
    // The client's entries commit: all but the last second's or so.
    let acked = counter(&g.sim, "client.acked_total");
    let proposed = counter(&g.sim, "client.proposed_total");
    assert!(proposed >= 399, "{proposed}");
    assert!(acked + 40 >= proposed, "{acked} of {proposed} acknowledged");
    let latency = histogram(&g.sim, "client.commit_latency");
    // One round trip to a majority after the leader is known: a few ms, far below a timeout.
    assert!(latency.p50 < 10_000_000, "{latency:?}");
    g.assert_safe("quiet run");
    // Every node holds the same log prefix up to what it committed.
    let leader_log = g.disks[leader].borrow().log.clone();
    for d in &g.disks {
        let log = &d.borrow().log;
        let n = log.len().min(leader_log.len());
        assert_eq!(log[..n], leader_log[..n]);
    }
}

/// The paper's and etcd's 150–300 ms-style range, scaled to etcd's defaults: 1–2 s, heartbeat
/// 100 ms. The earliest a follower can notice a dead leader is `min - heartbeat` after the
/// crash (it heard the last heartbeat at most one interval before); without a split vote it
/// has a leader a pre-vote and a vote round trip (4 ms here) after the first follower notices,
/// so by `max + 4 ms`.
#[test]
fn a_crashed_leader_is_replaced_within_the_bound_the_timeout_range_gives() {
    let (min, max, hb) = (ms(1000), ms(2000), ms(100));
    let mut delays = Vec::new();
    for seed in 0..30 {
        let mut g = group(seed, "", None);
        g.sim.run_until(secs(10));
        let (old, term) = g.leader().expect("a leader after 10 s");
        let crash_at = g.sim.now();
        g.sim.crash(g.ids[old]);
        g.sim.run_until(crash_at.saturating_add(ms(20_000)));
        let (elected_at, new_term, who) = {
            let w = g.watch.borrow();
            let (at, t, n) = w.first_leader_after(crash_at).expect("a new leader");
            (at, t, n.to_string())
        };
        assert!(new_term > term);
        assert_ne!(who, NAMES[old]);
        let delay = elected_at.saturating_duration_since(crash_at);
        assert!(
            delay >= min.saturating_sub(hb),
            "seed {seed}: elected {delay} after the crash, before any timer could fire"
        );
        delays.push(delay);
        // The old leader comes back as a follower of the new term, without an election.
        let before = g.watch.borrow().history.len();
        g.sim.restart(g.ids[old]);
        g.sim.run_for(ms(5_000));
        assert_eq!(g.watch.borrow().history.len(), before, "seed {seed}");
        let (now_leader, now_term) = g.leader().expect("still a leader");
        assert!(g.all_follow(now_leader, now_term), "seed {seed}");
        g.assert_safe(&format!("seed {seed}"));
    }
    delays.sort();
    let within = delays
        .iter()
        .filter(|d| **d <= max.saturating_add(ms(4)))
        .count();
    // A split vote costs a round; with a 1 s wide range and 1 ms links it is rare.
    assert!(within >= 27, "{within} of 30 within one round: {delays:?}");
    assert!(
        *delays.last().unwrap() <= max.saturating_mul(3),
        "{delays:?}"
    );
    eprintln!(
        "raft crash-to-leader (1-2 s): min {} p50 {} max {}",
        delays[0],
        delays[delays.len() / 2],
        delays[delays.len() - 1]
    );
}

/// Split brain (L1): the leader is cut off from the other four. The majority elects a new
/// leader; the old one, without CheckQuorum, keeps believing it leads — two nodes claim
/// leadership, in different terms — but it cannot commit, so nothing it accepts is
/// acknowledged. With CheckQuorum it steps down within two election timeouts.
#[test]
fn an_isolated_leader_acknowledges_nothing_and_steps_down_only_with_check_quorum() {
    for check_quorum in [false, true] {
        let extra = format!("check_quorum: {check_quorum}");
        let mut g = group(3, &extra, Some("20/s"));
        g.sim.run_until(secs(10));
        let (old, _) = g.leader().expect("a leader");
        let others: Vec<String> = (0..5)
            .filter(|&i| i != old)
            .map(|i| format!("h{i}"))
            .collect();
        // The client is on the majority's side.
        let mut b = others.clone();
        b.push("hc".into());
        let plan = FaultPlan::new().window(
            secs(10),
            secs(30),
            Fault::Partition {
                a: vec![format!("h{old}")],
                b,
                mode: Default::default(),
            },
        );
        g.sim.add_faults(&plan).unwrap();
        let old_name = NAMES[old];
        let acked_before = counter(&g.sim, "client.acked_total");
        g.sim.run_until(secs(29));
        let old_leads = gauge(&g.sim, &format!("{old_name}.is_leader")) == 1.0;
        assert_eq!(old_leads, !check_quorum, "check_quorum {check_quorum}");
        let new = g.leader().map(|(i, _)| i);
        assert!(new.is_some_and(|n| n != old) || !check_quorum);
        let step_downs = counter(&g.sim, &format!("{old_name}.check_quorum_step_downs_total"));
        assert_eq!(step_downs, u64::from(check_quorum));
        // The majority side kept committing the client's entries.
        assert!(counter(&g.sim, "client.acked_total") > acked_before + 200);
        g.sim.run_until(secs(40));
        g.assert_safe(&format!("check_quorum {check_quorum}"));
        let (l, t) = g.leader().expect("a leader after the heal");
        assert!(g.all_follow(l, t));
    }
}

/// Seeded plans of crashes, pauses, partitions (both ways and one way), clock offsets and
/// clock drift: safety always holds, and after the heal a leader every node follows is
/// elected within a bound.
#[test]
fn safety_holds_and_a_leader_returns_under_random_faults() {
    let seeds = if std::env::var("FAULTLINE_SLOW").is_ok() {
        200
    } else {
        40
    };
    let heal_at = secs(40);
    let mut settle = Vec::new();
    for seed in 0..seeds {
        let extra = if seed % 2 == 0 {
            ""
        } else {
            "pre_vote: false, check_quorum: false"
        };
        let mut g = group(seed, extra, Some("20/s"));
        let hosts: Vec<String> = (0..5).map(|i| format!("h{i}")).collect();
        let nemesis = Nemesis {
            kinds: vec![
                NemesisKind::Crash,
                NemesisKind::Pause,
                NemesisKind::Partition,
                NemesisKind::OneWay,
                NemesisKind::ClockSkew,
            ],
            targets: hosts.clone(),
            faults: 12,
            start: secs(5),
            heal_at,
            max_window: SimDuration::from_secs(6),
            max_skew: SimDuration::from_secs(5),
            max_slow: 1.0,
        };
        let mut plan = nemesis.plan(seed).expect("a plan");
        // And drift, which changes how long the nodes' timeouts last: up to 50% either way.
        let mut rng = stream(seed, "raft-drift");
        for _ in 0..3 {
            let host = hosts[(rng.next_u64() % 5) as usize].clone();
            let from = 5_000 + rng.next_u64() % 30_000;
            let until = (from + 1_000 + rng.next_u64() % 5_000).min(heal_at.as_nanos() / 1_000_000);
            let ppm = (rng.next_u64() % 1_000_001) as f64 - 500_000.0;
            plan = plan.window(
                SimTime::from_nanos(from * 1_000_000),
                SimTime::from_nanos(until * 1_000_000),
                Fault::ClockDrift { host, ppm },
            );
        }
        g.sim.add_faults(&plan).unwrap();
        g.sim.run_until(heal_at.saturating_add(ms(30_000)));
        let what = format!("seed {seed} ({extra})");
        g.assert_safe(&what);
        // The group's metrics say the same as the observer: no violation, one count per
        // leadership, one time-to-elect sample per election won.
        for name in [
            "raft.leaders_per_term_violations_total",
            "raft.committed_lost_total",
            "raft.committed_reordered_total",
        ] {
            assert_eq!(counter(&g.sim, name), 0, "{what}: {name}");
        }
        let won = g.watch.borrow().history.len() as u64;
        assert_eq!(counter(&g.sim, "raft.leaders_elected_total"), won, "{what}");
        assert_eq!(
            histogram(&g.sim, "raft.leaderless_time").count,
            won,
            "{what}"
        );
        let max_term = *g.watch.borrow().leaders.keys().last().unwrap();
        assert!(
            counter(&g.sim, "raft.terms_without_leader_total") < max_term,
            "{what}"
        );
        let (l, t) = g.leader().unwrap_or_else(|| panic!("{what}: no leader"));
        assert!(g.all_follow(l, t), "{what}: not everyone follows {l}");
        // When did the final leadership start? Within the bound after the heal.
        let elected = g.watch.borrow().leaders[&t].1;
        settle.push(elected.saturating_duration_since(heal_at));
    }
    settle.sort();
    eprintln!(
        "raft leader after heal: p50 {} max {}",
        settle[settle.len() / 2],
        settle[settle.len() - 1]
    );
    // After the heal: a crashed node restarts with a fresh timer, a partitioned one may
    // depose the leader once (without PreVote); each round takes at most one
    // election_timeout_max (2 s) — five rounds is generous.
    assert!(
        *settle.last().unwrap() <= SimDuration::from_secs(10),
        "{settle:?}"
    );
}

/// Clock offsets and steps move the wall clock only; the nodes time on the monotonic clock,
/// so a run with them elects the same leaders at the same instants as one without.
#[test]
fn clock_offsets_and_steps_change_nothing_but_drift_does() {
    // The leaders elected, and how long after the leader's crash at 30 s the next one was.
    let run = |faults: &FaultPlan| {
        let mut g = group(9, "", None);
        g.sim.add_faults(faults).unwrap();
        g.sim.run_until(secs(30));
        g.sim.crash(g.ids[g.leader().unwrap().0]);
        g.sim.run_until(secs(40));
        let w = g.watch.borrow();
        let (at, _, _) = w.first_leader_after(secs(30)).expect("a new leader");
        (w.history.clone(), at.saturating_duration_since(secs(30)))
    };
    let base = run(&FaultPlan::new());
    let skewed = FaultPlan::new()
        .at(
            secs(1),
            Fault::ClockOffset {
                host: "h1".into(),
                offset: Skew::ahead(ms(30_000)),
            },
        )
        .at(
            secs(12),
            Fault::ClockStep {
                host: "h2".into(),
                by: Skew::behind(ms(5_000)),
            },
        );
    assert_eq!(run(&skewed), base);
    // A clock running at double speed on every host but h0 halves their timeouts: the first
    // election after the crash comes sooner.
    let mut fast = FaultPlan::new();
    for h in 1..5 {
        fast = fast.at(
            secs(1),
            Fault::ClockDrift {
                host: format!("h{h}"),
                ppm: 1_000_000.0,
            },
        );
    }
    let (drifted, delay_fast) = run(&fast);
    assert_ne!(drifted, base.0);
    // Without drift nobody can notice before min - heartbeat = 900 ms; at double speed at
    // least three of the four followers time out within max / 2 = 1 s of the last heartbeat,
    // and a pre-vote and a vote later there is a leader.
    assert!(base.1 >= ms(900), "{:?}", base.1);
    assert!(delay_fast <= ms(1_010), "{delay_fast:?}");
    assert!(delay_fast >= ms(400), "{delay_fast:?}");
}

/// The Raft paper's Figure 16 point: the narrower the randomisation, the more split votes.
/// Each seed crashes the leader ten times; 150–155 ms against the paper's 150–300 ms.
#[test]
fn a_narrow_timeout_range_splits_votes_more_often() {
    let seeds = if std::env::var("FAULTLINE_SLOW").is_ok() {
        60
    } else {
        20
    };
    let crashes = 10;
    let mut per_range = Vec::new();
    let mut leaderless_by_range = Vec::new();
    for (lo, hi) in [(150, 155), (150, 300)] {
        let extra = format!(
            r#"election_timeout_min: "{lo}ms", election_timeout_max: "{hi}ms", heartbeat_interval: "50ms""#
        );
        let mut splits = Vec::new();
        let mut delays = Vec::new();
        // Terms without a leader as the nodes saw them (running totals, summed per crash: a
        // weight on later crashes, the same for both ranges).
        let mut leaderless = 0u64;
        for seed in 0..seeds {
            let mut g = group(seed, &extra, None);
            g.sim.run_until(secs(2));
            for _ in 0..crashes {
                let Some((l, _)) = g.leader() else {
                    g.sim.run_for(ms(2_000));
                    continue;
                };
                let before = g.watch.borrow().split_votes;
                let at = g.sim.now();
                g.sim.crash(g.ids[l]);
                g.sim.run_for(ms(3_000));
                g.sim.restart(g.ids[l]);
                g.sim.run_for(ms(1_000));
                let w = g.watch.borrow();
                splits.push((w.split_votes - before) as f64);
                leaderless += NAMES
                    .iter()
                    .map(|n| counter(&g.sim, &format!("{n}.terms_without_leader_total")))
                    .sum::<u64>();
                if let Some((t, _, _)) = w.first_leader_after(at) {
                    delays.push(t.saturating_duration_since(at).as_millis_f64());
                }
            }
            g.assert_safe(&format!("{lo}-{hi} ms seed {seed}"));
        }
        let n = splits.len() as f64;
        let mean = splits.iter().sum::<f64>() / n;
        let var = splits.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (n - 1.0);
        delays.sort_by(f64::total_cmp);
        eprintln!(
            "raft {lo}-{hi} ms: {mean:.2} split votes per leader crash ({} crashes), \
             crash-to-leader p50 {:.0} ms p90 {:.0} ms max {:.0} ms",
            splits.len(),
            delays[delays.len() / 2],
            delays[delays.len() * 9 / 10],
            delays[delays.len() - 1]
        );
        per_range.push((mean, var / n));
        leaderless_by_range.push(leaderless);
    }
    // Every split vote leaves a term without a leader, which the members count.
    assert!(
        leaderless_by_range[0] > leaderless_by_range[1],
        "{leaderless_by_range:?}"
    );
    let ((narrow, se_n), (wide, se_w)) = (per_range[0], per_range[1]);
    let se = (se_n + se_w).sqrt();
    assert!(
        narrow - wide > 4.0 * se,
        "narrow {narrow:.2} vs wide {wide:.2} split votes per crash (se {se:.3})"
    );
}

#[test]
fn a_raft_group_under_faults_replays_the_same_trace_from_the_same_seed() {
    let run = |seed| {
        let mut g = group(seed, "", Some("50/s"));
        let nemesis = Nemesis {
            kinds: vec![
                NemesisKind::Crash,
                NemesisKind::Partition,
                NemesisKind::Pause,
            ],
            targets: (0..5).map(|i| format!("h{i}")).collect(),
            faults: 8,
            start: secs(3),
            heal_at: secs(20),
            max_window: SimDuration::from_secs(4),
            max_skew: SimDuration::from_secs(1),
            max_slow: 1.0,
        };
        g.sim.add_faults(&nemesis.plan(seed).unwrap()).unwrap();
        g.sim.run_until(secs(30));
        let acked = g.acked.as_ref().unwrap().borrow().len();
        (g.sim.trace_hash(), acked, g.watch.borrow().history.clone())
    };
    let a = run(5);
    assert_eq!(a, run(5));
    assert_ne!(a.0, run(6).0);
    assert!(a.1 > 0);
}

/// The oracle can fail: three of five members lose their disks (term, vote and log gone, as
/// with a wiped volume) while the whole group is down. The three come back alone, elect a
/// leader of term 1 with an empty log and commit new entries at the indices the group had
/// committed. When the other two return, their logs (with entries of a later term, after a
/// leader change) are more up to date: one of them wins and overwrites the entries the three
/// had committed. The group metrics count both the deleted entries and the indices committed
/// with two different entries.
#[test]
fn a_majority_of_lost_disks_loses_committed_entries_and_the_metrics_say_so() {
    let mut g = group(8, "", Some("20/s"));
    g.sim.run_until(secs(10));
    // A leader change first, so the survivors' logs end in a later term than 1.
    let (old, _) = g.leader().expect("a leader");
    g.sim.crash(g.ids[old]);
    g.sim.run_until(secs(15));
    g.sim.restart(g.ids[old]);
    g.sim.run_until(secs(20));
    for &id in &g.ids {
        g.sim.crash(id);
    }
    let wiped: Vec<usize> = (0..5).filter(|&i| i != old).take(3).collect();
    for &i in &wiped {
        *g.disks[i].borrow_mut() = RaftDisk::default();
        g.sim.restart(g.ids[i]);
    }
    g.sim.run_until(secs(30));
    let reordered_alone = counter(&g.sim, "raft.committed_reordered_total");
    for i in (0..5).filter(|i| !wiped.contains(i)) {
        g.sim.restart(g.ids[i]);
    }
    g.sim.run_until(secs(40));
    let lost = counter(&g.sim, "raft.committed_lost_total");
    let reordered = counter(&g.sim, "raft.committed_reordered_total");
    // The three committed other entries at indices already committed (the observer sees it),
    // then lost what they had committed alone to the survivors' leader.
    assert!(reordered_alone > 0, "reordered {reordered_alone}");
    assert!(reordered >= reordered_alone);
    assert!(lost > 0, "lost {lost}");
    assert!(!g.watch.borrow().violations.is_empty());
    if std::env::var("FAULTLINE_PRINT").is_ok() {
        let two = counter(&g.sim, "raft.leaders_per_term_violations_total");
        eprintln!("lost disks: {lost} lost, {reordered} reordered, two leaders {two}");
    }
}
