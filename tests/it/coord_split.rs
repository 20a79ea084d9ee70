//! Majority quorum as a property: the replicated store with Sentinel-like failover (the
//! component API, built as in `coord_repl.rs`: nodes `db0..db2`, watchers `s0..s2` with
//! quorum 2, clients `c0`, `c1`, each on its own host) under seeded random schedules of
//! partitions and pauses. With `ack: Majority` no acknowledged write is ever lost, whatever
//! the schedule; with the default asynchronous acknowledgement (`Local`) some schedule loses one.

use faultline::model::coord::repl::{
    NodeDisk, Outcome, Repl, ReplClient, ReplClientConfig, ReplLog, ReplNode, ReplNodeConfig,
    Sentinel, SentinelConfig,
};
use faultline::model::rpc::from_ron;
use faultline::{ActorId, Durable, Nemesis, NemesisKind, Sim, SimConfig, SimDuration, SimTime};

use crate::support::{cases, counter};

fn secs(n: u64) -> SimTime {
    SimTime::from_nanos(n * 1_000_000_000)
}

const HOSTS: [&str; 8] = ["hdb0", "hdb1", "hdb2", "hs0", "hs1", "hs2", "hc0", "hc1"];

/// Runs the store with `ack` (RON) under the nemesis plan of `seed` (partitions and pauses
/// from 5 s, all healed by 70 s) to 160 s, and returns the oracle's verdict on the log of the
/// primary of the highest epoch.
fn run(seed: u64, ack: &str) -> Outcome {
    let mut sim = Sim::with_config(SimConfig::new(seed)).expect("a valid config");
    let watch = ReplLog::shared();
    let mut nodes: Vec<ActorId> = Vec::new();
    let mut disks: Vec<Durable<NodeDisk>> = Vec::new();
    let ron = format!(
        r#"(peers: ["db0", "db1", "db2"], lag: Some(LogNormal(p50: "5ms", p99: "50ms")),
            ack: {ack})"#
    );
    let config: ReplNodeConfig = from_ron(&ron).unwrap_or_else(|e| panic!("{ron}: {e}"));
    for i in 0..3 {
        let h = sim.add_host(&format!("hdb{i}")).unwrap();
        let proto: ReplNode<Repl> = ReplNode::new(config.clone())
            .unwrap()
            .with_watch(watch.clone());
        disks.push(proto.disk());
        nodes.push(
            sim.spawn(h, &format!("db{i}"), move || proto.clone())
                .unwrap(),
        );
    }
    let ron = r#"(nodes: ["db0", "db1", "db2"], watchers: ["s0", "s1", "s2"],
                  clients: ["c0", "c1"], quorum: 2)"#;
    let sconfig: SentinelConfig = from_ron(ron).unwrap_or_else(|e| panic!("{ron}: {e}"));
    for i in 0..3 {
        let h = sim.add_host(&format!("hs{i}")).unwrap();
        let proto: Sentinel<Repl> = Sentinel::new(sconfig.clone()).unwrap();
        sim.spawn(h, &format!("s{i}"), move || proto.clone())
            .unwrap();
    }
    let ron = r#"(nodes: ["db0", "db1", "db2"], rate: "20/s")"#;
    let cconfig: ReplClientConfig = from_ron(ron).unwrap_or_else(|e| panic!("{ron}: {e}"));
    for i in 0..2 {
        let h = sim.add_host(&format!("hc{i}")).unwrap();
        let proto: ReplClient<Repl> = ReplClient::new(cconfig.clone())
            .unwrap()
            .with_watch(watch.clone());
        sim.spawn(h, &format!("c{i}"), move || proto.clone())
            .unwrap();
    }
    let nemesis = Nemesis {
        kinds: vec![NemesisKind::Partition, NemesisKind::Pause],
        targets: HOSTS.map(String::from).to_vec(),
        faults: 6,
        start: secs(5),
        heal_at: secs(70),
        max_window: SimDuration::from_secs(50),
        max_skew: SimDuration::ZERO,
        max_slow: 1.0,
    };
    let plan = nemesis.plan(seed).expect("a plan");
    sim.add_faults(&plan).unwrap();
    sim.run_until(secs(160));
    let primary = (0..3)
        .filter(|&i| disks[i].borrow().primary == Some(nodes[i]))
        .max_by_key(|&i| disks[i].borrow().fence.seen());
    let log = primary.map_or_else(Vec::new, |p| disks[p].borrow().log.clone());
    let w = watch.borrow();
    let o = w.outcome(&log);
    assert_eq!(
        counter(&sim, "oracle.acked_writes_lost_total"),
        o.lost,
        "seed {seed}: the metric says what the oracle says"
    );
    o
}

/// Ignored: the property does not hold. Seed 12's schedule loses 247 acknowledged writes with
/// `ack: Majority` (21 s with two primaries; the loss stays when run to 400 s, so it is not a
/// run cut short). Majority acknowledgement alone is not enough when the failover may promote
/// a replica that lacks a majority-acknowledged write (Sentinel picks among the replicas it
/// can reach). Reported to the lead; run with `cargo test --test it coord_split -- --ignored`.
#[test]
#[ignore = "fails on seed 12: a failover under these schedules loses majority-acked writes"]
fn with_majority_acks_no_schedule_of_partitions_and_pauses_loses_an_acknowledged_write() {
    let n = u64::from(cases(16, 100));
    for seed in 0..n {
        let o = run(seed, "Majority");
        assert_eq!(o.lost, 0, "seed {seed}: {o:?}");
        assert!(o.acked > 0, "seed {seed}: {o:?}");
    }
}

#[test]
fn with_asynchronous_acks_some_schedule_loses_an_acknowledged_write() {
    // The same schedules: the property can fail, and does without the fix.
    let n = u64::from(cases(8, 100));
    let lost: Vec<u64> = (0..n).map(|seed| run(seed, "Local").lost).collect();
    assert!(lost.iter().any(|&l| l > 0), "{lost:?}");
}
