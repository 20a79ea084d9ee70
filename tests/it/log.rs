//! The log family's actors end to end: a `Producer` partitioning and batching into a `Broker`,
//! the broker's retention and what it costs a lagging group, fetches below the log start, and
//! the broker's group coordinator driven by raw protocol messages.
//!
//! Components are built from RON text with `from_ron`, as a scenario writes them, so the tests
//! also pin the config field names.

use std::rc::Rc;

use faultline::model::log::group::{Assignment, JoinRequest, Response};
use faultline::model::log::partitioner::partition_for_key;
use faultline::model::log::{
    Broker, BrokerConfig, BrokerDisk, CommitError, CommitMember, CommitOffset, Consumer,
    ConsumerConfig, Fetch, FetchCommitted, FetchOutcome, GroupOp, GroupRequest, Log, Producer,
    ProducerConfig, TopicPartition,
};
use faultline::model::rpc::from_ron;
use faultline::{
    Actor, ActorId, Ctx, CutMode, Durable, Fault, FaultPlan, HostId, Sim, SimConfig, SimDuration,
    SimTime,
};

use crate::support::{counter, gauge, histogram};

fn secs(n: u64) -> SimTime {
    SimTime::from_nanos(n * 1_000_000_000)
}

/// One host, so messages between actors arrive at the instant they are sent.
fn sim_one_host(seed: u64) -> (Sim<Log>, HostId) {
    let mut sim = Sim::with_config(SimConfig::new(seed)).expect("a valid config");
    let h = sim.add_host("h").expect("fresh host");
    (sim, h)
}

/// Spawns a broker; returns its disk, shared with every incarnation.
fn broker(sim: &mut Sim<Log>, h: HostId, name: &str, ron: &str) -> (ActorId, Durable<BrokerDisk>) {
    let config: BrokerConfig = from_ron(ron).unwrap_or_else(|e| panic!("{name}: {e}"));
    let proto: Broker<Log> = Broker::new(config).expect("valid broker");
    let disk = proto.disk();
    let id = sim.spawn(h, name, move || proto.clone()).expect("unique");
    (id, disk)
}

fn producer(sim: &mut Sim<Log>, h: HostId, name: &str, ron: &str) -> ActorId {
    let config: ProducerConfig = from_ron(ron).unwrap_or_else(|e| panic!("{name}: {e}"));
    let proto: Producer<Log> = Producer::new(config).expect("valid producer");
    sim.spawn(h, name, move || proto.clone()).expect("unique")
}

/// A message built once the tester knows its own id (for `reply_to`).
type Make = Rc<dyn Fn(ActorId) -> Log>;

/// Sends each scripted message to `to` at its time, and keeps every reply.
struct Tester {
    to: ActorId,
    script: Vec<(SimDuration, Make)>,
    replies: Durable<Vec<(SimTime, Log)>>,
}

impl Actor<Log> for Tester {
    fn on_start(&mut self, ctx: &mut Ctx<'_, Log>) {
        // The script is sorted by time and equal-time timers fire in the order they were set,
        // so the n-th timer to fire sends the n-th message.
        for (after, _) in &self.script {
            ctx.set_timer(*after, Log::Tick(faultline::model::log::Tick::Arrive));
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Log>, _from: ActorId, msg: Log) {
        self.replies.borrow_mut().push((ctx.now(), msg));
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Log>, _msg: Log) {
        let (_, make) = self.script.remove(0);
        let msg = make(ctx.me());
        ctx.send(self.to, msg);
    }
}

fn tester(
    sim: &mut Sim<Log>,
    h: HostId,
    name: &str,
    to: ActorId,
    script: Vec<(SimDuration, Make)>,
) -> Durable<Vec<(SimTime, Log)>> {
    let mut sorted = script;
    sorted.sort_by_key(|(at, _)| *at);
    let replies = Durable::new(Vec::new());
    let r = replies.clone();
    sim.spawn(h, name, move || Tester {
        to,
        script: sorted.clone(),
        replies: r.clone(),
    })
    .expect("unique");
    replies
}

/// Asserts that `count` of `n` trials is within 5 binomial standard deviations of `p`.
fn assert_binomial(what: &str, count: u64, n: u64, p: f64) {
    let sd = (n as f64 * p * (1.0 - p)).sqrt();
    let expected = n as f64 * p;
    assert!(
        (count as f64 - expected).abs() < 5.0 * sd.max(0.5),
        "{what}: {count} of {n}, expected {expected:.1} (sd {sd:.1})"
    );
}

// ---------------------------------------------------------------------------------------------
// Producer: partitioning and batching
// ---------------------------------------------------------------------------------------------

#[test]
fn keyed_records_land_on_the_partitions_murmur2_gives_in_its_proportions() {
    let (mut sim, h) = sim_one_host(7);
    let (_, disk) = broker(
        &mut sim,
        h,
        "broker",
        r#"(topics: [(name: "orders", partitions: 6)])"#,
    );
    producer(
        &mut sim,
        h,
        "producer",
        r#"(topic: "orders", partitions: 6, brokers: ["broker"], rate: Poisson("1000/s"),
            keys: Some((popularity: Uniform(n: 1000))), limit: Some(10000))"#,
    );
    sim.run_until(secs(20));
    let n = 10_000;
    assert_eq!(counter(&sim, "producer.records_total"), n);
    assert_eq!(counter(&sim, "producer.acked_total"), n);
    assert_eq!(counter(&sim, "broker.produced_total"), n);
    let disk = disk.borrow();
    let mut total = 0;
    for (p, log) in disk.logs[0].iter().enumerate() {
        // Exact: every record is on the partition murmur2 gives its key.
        for offset in log.log_start_offset()..log.log_end_offset() {
            let r = log.get(offset).expect("retained");
            assert_eq!(partition_for_key(r.key, 6), p as u32, "key {}", r.key);
            assert!(r.key < 1000);
        }
        // Statistical: the share of uniform keys 0..1000 that map to p.
        let keys_on_p = (0..1000u64)
            .filter(|&k| partition_for_key(k, 6) == p as u32)
            .count();
        let share = keys_on_p as f64 / 1000.0;
        assert_binomial(&format!("partition {p}"), log.len(), n, share);
        assert_eq!(
            gauge(&sim, &format!("broker.log_end_offset.orders-{p}")),
            log.log_end_offset() as f64
        );
        total += log.len();
    }
    assert_eq!(total, n);
}

#[test]
fn poison_ids_mark_exactly_those_records() {
    let (mut sim, h) = sim_one_host(4);
    let (_, disk) = broker(
        &mut sim,
        h,
        "broker",
        r#"(topics: [(name: "t", partitions: 1)])"#,
    );
    producer(
        &mut sim,
        h,
        "producer",
        r#"(topic: "t", partitions: 1, brokers: ["broker"], rate: Constant("100/s"),
            limit: Some(20), poison: Some((ids: [3, 17])))"#,
    );
    sim.run_until(secs(2));
    assert_eq!(counter(&sim, "producer.poison_total"), 2);
    let disk = disk.borrow();
    let log = &disk.logs[0][0];
    let poison: Vec<u64> = (0..log.log_end_offset())
        .filter(|&o| log.get(o).expect("retained").poison)
        .collect();
    // One producer, one partition: offsets are sequence numbers.
    assert_eq!(poison, vec![3, 17]);
}

fn batching_run(linger: &str, limit: u64) -> Sim<Log> {
    let (mut sim, h) = sim_one_host(3);
    broker(
        &mut sim,
        h,
        "broker",
        r#"(topics: [(name: "t", partitions: 4)])"#,
    );
    producer(
        &mut sim,
        h,
        "producer",
        &format!(
            r#"(topic: "t", partitions: 4, brokers: ["broker"], rate: Constant("1000/s"),
                record_bytes: Const(1024), batch_size: 16384, linger: "{linger}",
                limit: Some({limit}))"#
        ),
    );
    sim.run_until(secs(10));
    assert_eq!(counter(&sim, "producer.acked_total"), limit);
    assert_eq!(counter(&sim, "broker.produced_total"), limit);
    assert_eq!(counter(&sim, "broker.produced_bytes_total"), limit * 1024);
    sim
}

#[test]
fn linger_closes_batches_by_time_and_batch_size_by_bytes() {
    // 1 ms between records, 5 ms linger: a batch opened by a record collects it and the next
    // four (the fifth arrives as the linger timer, set earlier, fires).
    let sim = batching_run("5ms", 1000);
    let b = histogram(&sim, "producer.batch_records");
    assert_eq!(counter(&sim, "producer.batches_total"), 200);
    assert_eq!((b.min, b.max), (5, 5));
    // 100 ms linger: 16 records of 1 KiB fill a 16 KiB batch first; the last 8 go by linger.
    let sim = batching_run("100ms", 1000);
    let b = histogram(&sim, "producer.batch_records");
    assert_eq!(counter(&sim, "producer.batches_total"), 63);
    assert_eq!((b.min, b.max), (8, 16));
    assert_eq!(histogram(&sim, "producer.batch_bytes").max, 16_384);
    // No linger (Kafka before 4.0): each record is its own batch.
    let sim = batching_run("0ms", 100);
    assert_eq!(counter(&sim, "producer.batches_total"), 100);
    assert_eq!(histogram(&sim, "producer.batch_records").max, 1);
}

#[test]
fn null_keys_stick_to_a_partition_for_a_whole_batch() {
    let (mut sim, h) = sim_one_host(11);
    let (_, disk) = broker(
        &mut sim,
        h,
        "broker",
        r#"(topics: [(name: "t", partitions: 4)])"#,
    );
    producer(
        &mut sim,
        h,
        "producer",
        r#"(topic: "t", partitions: 4, brokers: ["broker"], rate: Constant("1000/s"),
            record_bytes: Const(1024), linger: "100ms", limit: Some(160))"#,
    );
    sim.run_until(secs(5));
    assert_eq!(counter(&sim, "producer.batches_total"), 10);
    let disk = disk.borrow();
    // Ten full batches of 16; consecutive batches go to different partitions (KIP-480), so
    // every partition holds whole batches.
    for log in &disk.logs[0] {
        assert_eq!(log.len() % 16, 0);
    }
    assert_eq!(disk.logs[0].iter().map(|l| l.len()).sum::<u64>(), 160);
}

#[test]
fn a_full_disk_refuses_batches_and_counts_them() {
    let (mut sim, h) = sim_one_host(5);
    broker(
        &mut sim,
        h,
        "broker",
        r#"(topics: [(name: "t", partitions: 1)], disk_capacity_bytes: Some(10240))"#,
    );
    producer(
        &mut sim,
        h,
        "producer",
        r#"(topic: "t", partitions: 1, brokers: ["broker"], rate: Constant("100/s"),
            record_bytes: Const(1024), linger: "0ms", limit: Some(20))"#,
    );
    sim.run_until(secs(5));
    assert_eq!(counter(&sim, "producer.acked_total"), 10);
    assert_eq!(counter(&sim, "producer.errors_total"), 10);
    assert_eq!(counter(&sim, "broker.disk_full_total"), 10);
    assert_eq!(gauge(&sim, "broker.disk_bytes"), 10240.0);
}

// ---------------------------------------------------------------------------------------------
// Broker: retention, lost records, out-of-range fetches
// ---------------------------------------------------------------------------------------------

fn commit(group: &'static str, offset: u64) -> Make {
    Rc::new(move |me| {
        Log::CommitOffset(CommitOffset {
            id: offset,
            reply_to: me,
            group: group.into(),
            tp: TopicPartition::new("t", 0),
            offset,
            member: None,
        })
    })
}

fn fetch(id: u64, offset: u64) -> Make {
    Rc::new(move |me| {
        Log::Fetch(Fetch {
            id,
            reply_to: me,
            tp: TopicPartition::new("t", 0),
            offset,
            max_records: 500,
            max_bytes: 1 << 20,
        })
    })
}

#[test]
fn retention_deletes_old_segments_and_charges_a_lagging_group_with_what_it_lost() {
    let (mut sim, h) = sim_one_host(1);
    // 10 records of 1 KiB per segment, kept 2 s after their last append, checked every 1 s.
    let (b, disk) = broker(
        &mut sim,
        h,
        "broker",
        r#"(topics: [(name: "t", partitions: 1, config: (segment_bytes: 10240,
            retention_ms: Some("2s"), retention_check_interval: "1s"))])"#,
    );
    producer(
        &mut sim,
        h,
        "producer",
        r#"(topic: "t", partitions: 1, brokers: ["broker"], rate: Constant("100/s"),
            record_bytes: Const(1024), linger: "0ms", limit: Some(1000))"#,
    );
    // `slow` committed offset 25 early and never again; `fast` is at the log end.
    let replies = tester(
        &mut sim,
        h,
        "consumer",
        b,
        vec![
            (SimDuration::from_millis(500), commit("slow", 25)),
            (SimDuration::from_millis(12_000), commit("fast", 1000)),
            (SimDuration::from_millis(12_500), fetch(1, 0)),
            (SimDuration::from_millis(12_600), fetch(2, 995)),
        ],
    );
    sim.run_until(secs(14));
    let disk = disk.borrow();
    let log = &disk.logs[0][0];
    assert_eq!(log.log_end_offset(), 1000);
    // The last append was just after 10 s: the 12 s check keeps its segment (990..1000), the
    // 13 s one finds it more than 2 s old and deletes everything.
    let start = log.log_start_offset();
    assert_eq!(start, 1000, "retention ran");
    assert_eq!(counter(&sim, "broker.retention_deleted_total"), start);
    assert_eq!(
        gauge(&sim, "broker.log_start_offset.t-0"),
        start as f64,
        "the gauge follows"
    );
    // `slow` lost what was deleted at or above its offset; `fast` lost nothing (it had no
    // committed offset while the earlier deletions ran, and its offset is the end after).
    let lost = log.lost_to_retention(25);
    assert_eq!(lost, start - 25);
    assert_eq!(counter(&sim, "broker.lost_to_retention_total.slow"), lost);
    assert_eq!(counter(&sim, "broker.lost_to_retention_total"), lost);
    assert_eq!(counter(&sim, "broker.commits_total"), 2);
    let replies = replies.borrow();
    let fetched: Vec<_> = replies
        .iter()
        .filter_map(|(_, m)| match m {
            Log::FetchReply(r) => Some(r.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(fetched.len(), 2);
    assert!(
        fetched[0].id == 1,
        "100 ms apart, the fetches are answered in order"
    );
    // Below the log start: out of range, with the log start to reset to.
    assert_eq!(fetched[0].id, 1);
    assert_eq!(
        fetched[0].outcome,
        FetchOutcome::OffsetOutOfRange { log_start: 990 }
    );
    assert_eq!(counter(&sim, "broker.offset_out_of_range_total"), 1);
    // Inside the last segment, still retained at 12.6 s: the records up to the high watermark.
    assert_eq!(fetched[1].high_watermark, 1000);
    let FetchOutcome::Records {
        records,
        next_offset,
    } = &fetched[1].outcome
    else {
        panic!("records expected, got {:?}", fetched[1]);
    };
    assert_eq!(records.len(), 5);
    assert_eq!(records[0].offset, 995);
    assert_eq!(*next_offset, 1000);
}

#[test]
fn a_fetch_below_the_log_start_is_out_of_range_while_one_inside_gets_records() {
    let (mut sim, h) = sim_one_host(2);
    let (b, _) = broker(
        &mut sim,
        h,
        "broker",
        r#"(topics: [(name: "t", partitions: 1, config: (segment_bytes: 10240,
            retention_bytes: Some(20480), retention_check_interval: "1s"))])"#,
    );
    producer(
        &mut sim,
        h,
        "producer",
        r#"(topic: "t", partitions: 1, brokers: ["broker"], rate: Constant("100/s"),
            record_bytes: Const(1024), linger: "0ms", limit: Some(100))"#,
    );
    // Ten segments of 10 records by 2 s; size retention deletes the oldest while what remains
    // is still at least 20 KiB: eight segments, offsets 0..80.
    let replies = tester(
        &mut sim,
        h,
        "consumer",
        b,
        vec![
            (SimDuration::from_millis(2_500), fetch(1, 10)),
            (SimDuration::from_millis(2_500), fetch(2, 90)),
        ],
    );
    sim.run_until(secs(3));
    // The two fetches run on two request handlers and may finish in either order.
    let mut replies: Vec<_> = replies
        .borrow()
        .iter()
        .filter_map(|(_, m)| match m {
            Log::FetchReply(r) => Some(r.clone()),
            _ => None,
        })
        .collect();
    replies.sort_by_key(|r| r.id);
    let [low, high] = &replies[..] else {
        panic!("two fetch replies, got {replies:?}");
    };
    assert_eq!(
        low.outcome,
        FetchOutcome::OffsetOutOfRange { log_start: 80 }
    );
    let FetchOutcome::Records { records, .. } = &high.outcome else {
        panic!("records expected, got {high:?}");
    };
    assert_eq!(records.len(), 10);
    assert_eq!(high.high_watermark, 100);
}

fn fetch_committed(group: &'static str) -> Make {
    Rc::new(move |me| {
        Log::FetchCommitted(FetchCommitted {
            id: 77,
            reply_to: me,
            group: group.into(),
            tp: TopicPartition::new("t", 0),
        })
    })
}

#[test]
fn a_broker_crash_keeps_the_log_and_the_committed_offsets_and_loses_what_was_in_flight() {
    let (mut sim, h) = sim_one_host(9);
    let (b, disk) = broker(
        &mut sim,
        h,
        "broker",
        r#"(topics: [(name: "t", partitions: 1)], groups: {"g": (initial_rebalance_delay: "0s")})"#,
    );
    producer(
        &mut sim,
        h,
        "producer",
        r#"(topic: "t", partitions: 1, brokers: ["broker"], rate: Constant("100/s"),
            linger: "0ms", limit: Some(300))"#,
    );
    let replies = tester(
        &mut sim,
        h,
        "consumer",
        b,
        vec![
            (SimDuration::from_millis(500), commit("g", 42)),
            (SimDuration::from_millis(2_000), fetch_committed("g")),
            (SimDuration::from_millis(2_000), fetch_committed("other")),
        ],
    );
    let crash = Fault::Crash {
        target: "broker".into(),
    };
    sim.add_faults(&FaultPlan::new().window(secs(1), SimTime::from_nanos(1_500_000_000), crash))
        .unwrap();
    sim.run_until(secs(5));
    assert_eq!(counter(&sim, "producer.records_total"), 300);
    let acked = counter(&sim, "producer.acked_total");
    // About 50 records were sent while the broker was down (and maybe one in service when it
    // died): never appended, never acknowledged. Everything acknowledged is in the log.
    assert!((240..=255).contains(&acked), "acked {acked}");
    let disk = disk.borrow();
    assert_eq!(disk.logs[0][0].log_end_offset(), acked);
    assert_eq!(gauge(&sim, "broker.log_end_offset.t-0"), acked as f64);
    // The committed offset survived the crash; a group that never committed has none.
    let committed: Vec<_> = replies
        .borrow()
        .iter()
        .filter_map(|(_, m)| match m {
            Log::CommittedReply(r) => Some(r.offset),
            _ => None,
        })
        .collect();
    assert_eq!(committed, vec![Some(42), None]);
    assert_eq!(gauge(&sim, "broker.generation.g"), 0.0);
}

// ---------------------------------------------------------------------------------------------
// Broker: the group coordinator
// ---------------------------------------------------------------------------------------------

/// A consumer stripped to its group protocol: joins, and if it is the leader assigns the
/// partitions round-robin over the members; then syncs and keeps what it was given.
struct Member {
    broker: ActorId,
    partitions: u32,
    got: Durable<Vec<(SimTime, Response)>>,
}

impl Member {
    fn req(&self, ctx: &Ctx<'_, Log>, op: GroupOp) -> Log {
        Log::Group(GroupRequest {
            group: "g".into(),
            reply_to: ctx.me(),
            op,
        })
    }
}

impl Actor<Log> for Member {
    fn on_start(&mut self, ctx: &mut Ctx<'_, Log>) {
        let join = GroupOp::Join(JoinRequest {
            client_id: ctx.name().to_string(),
            member_id: None,
            instance_id: None,
            owned: vec![],
        });
        let msg = self.req(ctx, join);
        ctx.send(self.broker, msg);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Log>, _from: ActorId, msg: Log) {
        let Log::GroupReply(reply) = msg else {
            return;
        };
        assert_eq!(reply.group, "g");
        self.got
            .borrow_mut()
            .push((ctx.now(), reply.response.clone()));
        if let Response::Join(Ok(join)) = reply.response {
            let assignment = (join.leader == join.member_id).then(|| {
                let mut a = Assignment::new();
                for p in 0..self.partitions {
                    let m = &join.members[p as usize % join.members.len()];
                    a.entry(m.member_id.clone()).or_default().push(p);
                }
                a
            });
            let sync = GroupOp::Sync {
                client_id: ctx.name().to_string(),
                member_id: join.member_id,
                instance_id: None,
                generation: join.generation,
                assignment,
            };
            let msg = self.req(ctx, sync);
            ctx.send(self.broker, msg);
        }
    }
}

type Got = Durable<Vec<(SimTime, Response)>>;

fn group_run(seed: u64) -> (Sim<Log>, Got, Got) {
    let (mut sim, h) = sim_one_host(seed);
    let (b, _) = broker(
        &mut sim,
        h,
        "broker",
        r#"(topics: [(name: "t", partitions: 3)], groups: {"g": ()})"#,
    );
    let member = |sim: &mut Sim<Log>, name: &str| {
        let got: Got = Durable::new(Vec::new());
        let g = got.clone();
        sim.spawn(h, name, move || Member {
            broker: b,
            partitions: 3,
            got: g.clone(),
        })
        .expect("unique");
        got
    };
    let a = member(&mut sim, "c1");
    let c = member(&mut sim, "c2");
    sim.run_until(secs(10));
    (sim, a, c)
}

#[test]
fn two_members_join_through_the_broker_get_a_generation_and_their_assignments() {
    let (sim, a, b) = group_run(1);
    let mut all = Vec::new();
    for got in [&a, &b] {
        let got = got.borrow();
        assert_eq!(got.len(), 2, "a join and a sync reply: {got:?}");
        let (t_join, Response::Join(Ok(join))) = &got[0] else {
            panic!("a JoinGroup response first: {got:?}");
        };
        // The initial rebalance delay (3 s by default) holds the first join phase, and the
        // second member's arrival during it extends it by another 3 s (KIP-134).
        assert_eq!(*t_join, secs(6), "joined at {t_join}");
        assert_eq!(join.generation, 1);
        let (_, Response::Sync(Ok(parts))) = &got[1] else {
            panic!("a SyncGroup response second: {got:?}");
        };
        all.extend(parts.iter().copied());
    }
    all.sort();
    assert_eq!(all, vec![0, 1, 2], "every partition assigned once");
    assert_eq!(gauge(&sim, "broker.generation.g"), 1.0);
    assert_eq!(gauge(&sim, "broker.members.g"), 2.0);
    assert_eq!(counter(&sim, "broker.rebalances_total.g"), 1);
}

#[test]
fn members_that_stop_heartbeating_are_expired_by_the_broker_timer() {
    // Nobody heartbeats: after the 45 s session timeout both members are removed and the
    // group empties, through the coordinator deadline timer alone.
    let (mut sim, _a, _b) = group_run(1);
    sim.run_until(secs(60));
    assert_eq!(gauge(&sim, "broker.members.g"), 0.0);
    assert!(counter(&sim, "broker.rebalances_total.g") >= 2);
}

// ---------------------------------------------------------------------------------------------
// Determinism
// ---------------------------------------------------------------------------------------------

fn traced_run(seed: u64) -> (u64, u64) {
    let (mut sim, h) = sim_one_host(seed);
    broker(
        &mut sim,
        h,
        "broker",
        r#"(topics: [(name: "t", partitions: 3, config: (segment_bytes: 65536,
            retention_ms: Some("1s"), retention_check_interval: "500ms"))],
            groups: {"g": (initial_rebalance_delay: "0s")})"#,
    );
    producer(
        &mut sim,
        h,
        "producer",
        r#"(topic: "t", partitions: 3, brokers: ["broker"], rate: Poisson("1000/s"),
            keys: Some((popularity: Zipf(n: 100, s: 1.0))),
            record_bytes: Uniform(low: 100, high: 2000), poison: Some((share: 0.01)))"#,
    );
    let b = sim.lookup("broker").expect("spawned");
    for name in ["c1", "c2"] {
        sim.spawn(h, name, move || Member {
            broker: b,
            partitions: 3,
            got: Durable::new(Vec::new()),
        })
        .expect("unique");
    }
    sim.run_until(secs(3));
    assert_eq!(gauge(&sim, "broker.members.g"), 2.0, "the group formed");
    (sim.trace_hash(), counter(&sim, "broker.produced_total"))
}

#[test]
fn the_same_seed_gives_the_same_trace_hash() {
    let (h1, n1) = traced_run(42);
    let (h2, n2) = traced_run(42);
    assert_eq!(h1, h2);
    assert_eq!(n1, n2);
    assert!(n1 > 2000, "records flowed: {n1}");
    let (h3, _) = traced_run(43);
    assert_ne!(h1, h3, "another seed, another trace");
}

// ---------------------------------------------------------------------------------------------
// Consumer: a group of consumers polling, processing and committing through the broker
// ---------------------------------------------------------------------------------------------

fn consumer(sim: &mut Sim<Log>, h: HostId, name: &str, ron: &str) -> ActorId {
    let config: ConsumerConfig = from_ron(ron).unwrap_or_else(|e| panic!("{name}: {e}"));
    let proto: Consumer<Log> = Consumer::new(config).expect("valid consumer");
    sim.spawn(h, name, move || proto.clone()).expect("unique")
}

/// A broker with a 6-partition topic and group `g` (session 6 s, rebalance timeout 10 s), a
/// producer of `limit` records at `rate`, and one consumer per entry of `processing` (the time
/// per record), committing after each batch and reading from the earliest offset.
fn group_of_consumers(
    seed: u64,
    rate: &str,
    limit: u64,
    processing: &[&str],
) -> (Sim<Log>, Durable<BrokerDisk>) {
    group_of_consumers_with(seed, rate, limit, processing, false, None)
}

/// What goes wrong in [`group_of_consumers_with`].
enum Outage {
    /// The actor crashes (and restarts at the window's end).
    Crash(&'static str),
    /// The broker, on a host of its own, is cut off from the others: it stays up, and nothing,
    /// not even the news that a connection is dead, crosses.
    BrokerCut,
}

/// [`group_of_consumers`], with static members (`group.instance.id` `i1`, `i2`, ...) if
/// `static_members`, and an outage `outage.0` from `outage.1` s to `outage.2` s.
fn group_of_consumers_with(
    seed: u64,
    rate: &str,
    limit: u64,
    processing: &[&str],
    static_members: bool,
    outage: Option<(Outage, u64, u64)>,
) -> (Sim<Log>, Durable<BrokerDisk>) {
    let (mut sim, h) = sim_one_host(seed);
    let broker_host = match outage {
        Some((Outage::BrokerCut, ..)) => sim.add_host("b").expect("fresh host"),
        _ => h,
    };
    let (_, disk) = broker(
        &mut sim,
        broker_host,
        "broker",
        r#"(topics: [(name: "t", partitions: 6)],
            groups: {"g": (session_timeout: "6s", rebalance_timeout: "10s")})"#,
    );
    producer(
        &mut sim,
        h,
        "producer",
        &format!(
            r#"(topic: "t", partitions: 6, brokers: ["broker"], rate: {rate},
                keys: Some((popularity: Uniform(n: 1000))), limit: Some({limit}))"#
        ),
    );
    for (i, time) in processing.iter().enumerate() {
        let instance = match static_members {
            true => format!(r#"Some("i{}")"#, i + 1),
            false => "None".to_string(),
        };
        consumer(
            &mut sim,
            h,
            &format!("c{}", i + 1),
            &format!(
                r#"(broker: "broker", group: "g", topic: "t", partitions: 6,
                    processing: {time}, auto_commit: None, auto_offset_reset: Earliest,
                    group_instance_id: {instance},
                    session_timeout: "6s", heartbeat_interval: "1s", max_poll_interval: "10s")"#
            ),
        );
    }
    if let Some((outage, from, to)) = outage {
        let fault = match outage {
            Outage::Crash(target) => Fault::Crash {
                target: target.into(),
            },
            Outage::BrokerCut => Fault::Partition {
                a: vec!["h".into()],
                b: vec!["b".into()],
                mode: CutMode::Drop,
            },
        };
        sim.add_faults(&FaultPlan::new().window(secs(from), secs(to), fault))
            .unwrap();
    }
    (sim, disk)
}

#[test]
fn three_consumers_share_six_partitions_keep_up_and_commit_what_they_processed() {
    // 300 records/s over 6 partitions; each consumer can process 1000/s.
    let fast = [r#"Const("1ms")"#; 3];
    let (mut sim, disk) = group_of_consumers(5, r#"Constant("300/s")"#, 6000, &fast);
    sim.run_until(secs(10));
    // One rebalance formed the group; every consumer owns two partitions (range: 6 / 3).
    assert_eq!(counter(&sim, "broker.rebalances_total.g"), 1);
    for c in ["c1", "c2", "c3"] {
        assert_eq!(gauge(&sim, &format!("{c}.partitions_owned")), 2.0, "{c}");
        assert_eq!(gauge(&sim, &format!("{c}.stopped")), 0.0, "{c}");
        assert_eq!(counter(&sim, &format!("{c}.rejoins_total")), 0, "{c}");
    }
    // While records flow the lag stays small: within a second's worth of records.
    let processed = |sim: &Sim<Log>| -> u64 {
        ["c1", "c2", "c3"]
            .iter()
            .map(|c| counter(sim, &format!("{c}.records_processed_total")))
            .sum()
    };
    for t in [12, 15, 18] {
        sim.run_until(secs(t));
        let produced = counter(&sim, "broker.produced_total");
        let done = processed(&sim);
        assert!(
            done <= produced && produced - done < 300,
            "at {t} s: produced {produced}, processed {done}"
        );
    }
    // Each partition's committed offset advanced to the log end, and nothing was processed
    // twice: every record was processed exactly once, by the one owner of its partition.
    let before: Vec<u64> = (0..6)
        .map(|p| {
            let key = ("g".to_string(), TopicPartition::new("t", p));
            disk.borrow().offsets.get(&key).copied().unwrap_or(0)
        })
        .collect();
    sim.run_until(secs(30));
    assert_eq!(counter(&sim, "producer.acked_total"), 6000);
    assert_eq!(processed(&sim), 6000);
    let disk = disk.borrow();
    for p in 0..6u32 {
        let key = ("g".to_string(), TopicPartition::new("t", p));
        let end = disk.logs[0][p as usize].log_end_offset();
        assert!(end > 0);
        assert_eq!(disk.offsets.get(&key), Some(&end), "partition {p}");
        assert!(
            end > before[p as usize],
            "partition {p} advanced after 18 s"
        );
    }
    for c in ["c1", "c2", "c3"] {
        assert!(counter(&sim, &format!("{c}.batches_total")) > 0);
        assert_eq!(counter(&sim, &format!("{c}.poll_timeouts_total")), 0);
    }
}

#[test]
fn a_consumer_whose_batch_outlasts_max_poll_interval_leaves_and_the_group_rebalances() {
    // c3 takes 50 ms a record: a batch of 500 takes 25 s, beyond the 10 s poll interval.
    let processing = [r#"Const("1ms")"#, r#"Const("1ms")"#, r#"Const("50ms")"#];
    let (mut sim, _) = group_of_consumers(6, r#"Constant("300/s")"#, 30_000, &processing);
    sim.run_until(secs(90));
    assert!(counter(&sim, "c3.poll_timeouts_total") > 0);
    assert!(counter(&sim, "c3.rejoins_total") > 0);
    assert!(
        counter(&sim, "broker.rebalances_total.g") > 1,
        "the slow member's leave and rejoin rebalance the group"
    );
    // The fast members never timed out; they rejoined for the slow member's rebalances.
    for c in ["c1", "c2"] {
        assert_eq!(counter(&sim, &format!("{c}.poll_timeouts_total")), 0, "{c}");
        assert!(counter(&sim, &format!("{c}.rejoins_total")) > 0, "{c}");
    }
}

#[test]
fn a_consumer_group_run_has_the_same_trace_hash_twice() {
    let run = |seed| {
        let processing = [
            r#"Exp(mean: "1ms")"#,
            r#"Exp(mean: "1ms")"#,
            r#"Const("2ms")"#,
        ];
        let (mut sim, _) = group_of_consumers(seed, r#"Poisson("300/s")"#, 3000, &processing);
        sim.run_until(secs(20));
        let processed: u64 = ["c1", "c2", "c3"]
            .iter()
            .map(|c| counter(&sim, &format!("{c}.records_processed_total")))
            .sum();
        (sim.trace_hash(), processed)
    };
    let (h1, n1) = run(8);
    let (h2, n2) = run(8);
    assert_eq!(h1, h2);
    assert_eq!(n1, n2);
    assert_eq!(n1, 3000, "everything produced was processed");
}

#[test]
fn a_static_member_restarted_within_its_session_timeout_causes_no_rebalance() {
    let fast = [r#"Const("1ms")"#; 3];
    let run = |static_members| {
        let crash = Some((Outage::Crash("c2"), 15, 17));
        let (mut sim, _) = group_of_consumers_with(
            6,
            r#"Constant("300/s")"#,
            9000,
            &fast,
            static_members,
            crash,
        );
        sim.run_until(secs(60));
        let processed: u64 = ["c1", "c2", "c3"]
            .iter()
            .map(|c| counter(&sim, &format!("{c}.records_processed_total")))
            .sum();
        // All consumed; the records c2 had processed of the batch it crashed in, and not
        // committed, are processed again (at most a batch of `max_poll_records`).
        assert!(
            (9000..=9500).contains(&processed),
            "static {static_members}: all consumed, {processed}"
        );
        for c in ["c1", "c2", "c3"] {
            assert_eq!(gauge(&sim, &format!("{c}.partitions_owned")), 2.0, "{c}");
        }
        let rejoins: u64 = ["c1", "c3"]
            .iter()
            .map(|c| counter(&sim, &format!("{c}.rejoins_total")))
            .sum();
        (counter(&sim, "broker.rebalances_total.g"), rejoins)
    };
    // Static (KIP-345): the restarted c2 rejoins under its instance id 2 s later, within the
    // 6 s session timeout, and takes its old place: the group never rebalances again.
    assert_eq!(run(true), (1, 0));
    // Dynamic: the restarted c2 is a new member; the group rebalances and the others rejoin.
    let (rebalances, rejoins) = run(false);
    assert!(rebalances >= 2, "rebalances {rebalances}");
    assert!(rejoins >= 2, "rejoins {rejoins}");
}

#[test]
fn cooperative_auto_committing_consumers_start_at_the_latest_offset_and_commit_the_log_end() {
    let (mut sim, h) = sim_one_host(12);
    let (_, disk) = broker(
        &mut sim,
        h,
        "broker",
        r#"(topics: [(name: "t", partitions: 6)],
            groups: {"g": (session_timeout: "6s", rebalance_timeout: "10s")})"#,
    );
    producer(
        &mut sim,
        h,
        "producer",
        r#"(topic: "t", partitions: 6, brokers: ["broker"], rate: Constant("300/s"),
            keys: Some((popularity: Uniform(n: 1000))), limit: Some(6000))"#,
    );
    // Kafka's defaults otherwise: auto-commit every 5 s, auto.offset.reset latest.
    for c in ["c1", "c2", "c3"] {
        consumer(
            &mut sim,
            h,
            c,
            r#"(broker: "broker", group: "g", topic: "t", partitions: 6,
                assignor: CooperativeSticky, processing: Const("1ms"),
                session_timeout: "6s", heartbeat_interval: "1s", max_poll_interval: "10s")"#,
        );
    }
    sim.run_until(secs(40));
    let mut owned = 0.0;
    let mut processed = 0;
    for c in ["c1", "c2", "c3"] {
        owned += gauge(&sim, &format!("{c}.partitions_owned"));
        assert_eq!(gauge(&sim, &format!("{c}.stopped")), 0.0, "{c}");
        processed += counter(&sim, &format!("{c}.records_processed_total"));
    }
    assert_eq!(owned, 6.0, "every partition has one owner");
    assert_eq!(counter(&sim, "broker.rebalances_total.g"), 1);
    // What was produced before the group formed (a few seconds' worth) was skipped.
    assert!(
        processed < 6000 && processed > 6000 - 300 * 8,
        "processed {processed}"
    );
    // Idle polls after the last record keep auto-committing: the positions reach the log end.
    let disk = disk.borrow();
    for p in 0..6u32 {
        let key = ("g".to_string(), TopicPartition::new("t", p));
        let end = disk.logs[0][p as usize].log_end_offset();
        assert_eq!(disk.offsets.get(&key), Some(&end), "partition {p}");
    }
}

// ---------------------------------------------------------------------------------------------
// Consumer: poison pills (K3)
// ---------------------------------------------------------------------------------------------

/// A broker leading a 2-partition topic `t` and a 1-partition dead-letter topic `dlq`; a
/// producer of 1000 keyed records at 200/s whose record number 100 is poison; one consumer
/// (1 ms a record, committing after each batch, from the earliest offset) with `on_poison`.
fn poison_run(on_poison: &str) -> (Sim<Log>, Durable<BrokerDisk>) {
    let (mut sim, h) = sim_one_host(21);
    let (_, disk) = broker(
        &mut sim,
        h,
        "broker",
        r#"(topics: [(name: "t", partitions: 2), (name: "dlq", partitions: 1)],
            groups: {"g": (session_timeout: "6s", rebalance_timeout: "10s")})"#,
    );
    producer(
        &mut sim,
        h,
        "producer",
        r#"(topic: "t", partitions: 2, brokers: ["broker"], rate: Constant("200/s"),
            keys: Some((popularity: Uniform(n: 1000))), limit: Some(1000),
            poison: Some((ids: [100])))"#,
    );
    consumer(
        &mut sim,
        h,
        "c1",
        &format!(
            r#"(broker: "broker", group: "g", topic: "t", partitions: 2,
                processing: Const("1ms"), auto_commit: None, auto_offset_reset: Earliest,
                session_timeout: "6s", heartbeat_interval: "1s", max_poll_interval: "10s",
                on_poison: {on_poison})"#
        ),
    );
    (sim, disk)
}

/// The partition and offset of the one poison record in topic `t`.
fn poison_at(disk: &Durable<BrokerDisk>) -> (usize, u64) {
    let disk = disk.borrow();
    let found: Vec<(usize, u64)> = (0..2)
        .flat_map(|p| {
            let log = &disk.logs[0][p];
            (log.log_start_offset()..log.log_end_offset())
                .filter(move |&o| log.get(o).is_some_and(|r| r.poison))
                .map(move |o| (p, o))
        })
        .collect();
    assert_eq!(found.len(), 1, "one poison record: {found:?}");
    found[0]
}

fn committed(disk: &Durable<BrokerDisk>, p: usize) -> Option<u64> {
    let key = ("g".to_string(), TopicPartition::new("t", p as u32));
    disk.borrow().offsets.get(&key).copied()
}

#[test]
fn a_poison_record_stalls_its_partition_forever_while_the_other_partition_flows() {
    let (mut sim, disk) = poison_run("Stall");
    // Production ends at 5 s; by 10 s everything that can be consumed has been.
    sim.run_until(secs(10));
    assert_eq!(counter(&sim, "producer.acked_total"), 1000);
    let (p, offset) = poison_at(&disk);
    assert!(
        offset > 0,
        "records precede the poison one on its partition"
    );
    let other = 1 - p;
    let ends: Vec<u64> = (0..2)
        .map(|q| disk.borrow().logs[0][q].log_end_offset())
        .collect();
    assert!(ends[p] > offset + 1, "records follow the poison one");
    let failures_10 = counter(&sim, "c1.poison_failures_total");
    assert!(failures_10 > 0);
    for t in [10, 20, 30] {
        sim.run_until(secs(t));
        assert_eq!(committed(&disk, p), Some(offset), "at {t} s");
        assert_eq!(committed(&disk, other), Some(ends[other]), "at {t} s");
    }
    // Successes only: the records before the poison one, once each, and all of the other
    // partition's; nothing after the poison record is ever processed.
    assert_eq!(
        counter(&sim, "c1.records_processed_total"),
        offset + ends[other]
    );
    // One failed attempt per retry: each follows the last by at least the 100 ms backoff and
    // at most backoff + the 500 ms idle poll wait + 1 ms of processing.
    let failures_30 = counter(&sim, "c1.poison_failures_total");
    let grown = failures_30 - failures_10;
    assert!(
        (20_000 / 601..=20_000 / 100 + 1).contains(&grown),
        "{grown}"
    );
    assert_eq!(counter(&sim, "c1.dead_lettered_total"), 0);
    assert_eq!(gauge(&sim, "broker.log_end_offset.dlq-0"), 0.0);
}

#[test]
fn a_dead_letter_policy_retries_the_poison_record_then_moves_it_to_the_dlq_topic() {
    let (mut sim, disk) = poison_run(r#"DeadLetter(max_retries: 3, topic: "dlq")"#);
    sim.run_until(secs(20));
    let produced = counter(&sim, "producer.acked_total");
    assert_eq!(produced, 1000);
    // Every record but the poison one was processed, once.
    assert_eq!(counter(&sim, "c1.records_processed_total"), produced - 1);
    // The first attempt and its 3 retries failed; then it was dead-lettered.
    assert_eq!(counter(&sim, "c1.poison_failures_total"), 1 + 3);
    assert_eq!(counter(&sim, "c1.dead_lettered_total"), 1);
    assert_eq!(gauge(&sim, "broker.log_end_offset.dlq-0"), 1.0);
    let (p, offset) = poison_at(&disk);
    let poison_id = disk.borrow().logs[0][p].get(offset).unwrap().id;
    let dead = disk.borrow().logs[1][0].get(0).expect("the dead letter");
    assert_eq!(dead.id, poison_id);
    assert!(dead.poison);
    // Both partitions were consumed to their log end and committed there.
    for q in 0..2 {
        let end = disk.borrow().logs[0][q].log_end_offset();
        assert_eq!(committed(&disk, q), Some(end), "partition {q}");
    }
}

// ---------------------------------------------------------------------------------------------
// Consumer: request timeouts, stale replies, zombie commits
// ---------------------------------------------------------------------------------------------

/// The records of group `g` the three consumers processed, summed.
fn processed_by(sim: &Sim<Log>, consumers: &[&str]) -> u64 {
    consumers
        .iter()
        .map(|c| counter(sim, &format!("{c}.records_processed_total")))
        .sum()
}

/// The consumers processed everything produced (at least `min` records: the producer's
/// sends during an outage are lost), the group holds all six partitions, and each
/// partition's committed offset is its log end.
fn caught_up(sim: &Sim<Log>, disk: &Durable<BrokerDisk>, min: u64) {
    let produced = counter(sim, "broker.produced_total");
    assert!(produced >= min, "produced {produced}");
    assert_eq!(processed_by(sim, &["c1", "c2", "c3"]), produced);
    let owned: f64 = ["c1", "c2", "c3"]
        .iter()
        .map(|c| gauge(sim, &format!("{c}.partitions_owned")))
        .sum();
    assert_eq!(owned, 6.0);
    let disk = disk.borrow();
    for p in 0..6u32 {
        let key = ("g".to_string(), TopicPartition::new("t", p));
        let end = disk.logs[0][p as usize].log_end_offset();
        assert_eq!(disk.offsets.get(&key), Some(&end), "partition {p}");
    }
}

/// The broker crashes at the start, with the consumers' first JoinGroups. Its death resets
/// their connections, so the JoinGroups fail at once rather than after Kafka's JoinGroup
/// timeout (`max(request.timeout.ms, rebalance timeout + 5 s)`, 30 s here); the consumers
/// retry on the reconnect backoff, are refused while the broker is down, and join as soon
/// as it is back: the group consumes within seconds, and no request timed out.
#[test]
fn consumers_whose_join_died_with_the_broker_rejoin_as_soon_as_it_is_back() {
    let fast = [r#"Const("1ms")"#; 3];
    let crash = Some((Outage::Crash("broker"), 0, 1));
    let (mut sim, disk) =
        group_of_consumers_with(4, r#"Constant("300/s")"#, 15_000, &fast, false, crash);
    // Back at 1 s; the reconnect backoff (at most 1 s) and the initial rebalance delay (3 s).
    sim.run_until(secs(8));
    assert!(
        processed_by(&sim, &["c1", "c2", "c3"]) > 0,
        "consuming by 8 s"
    );
    sim.run_until(secs(90));
    // 15,000 records at 300/s, less the second the broker was down.
    caught_up(&sim, &disk, 14_700);
    for c in ["c1", "c2", "c3"] {
        assert_eq!(
            counter(&sim, &format!("{c}.request_timeouts_total")),
            0,
            "{c}"
        );
        assert!(
            counter(&sim, &format!("{c}.connection_resets_total")) >= 1,
            "{c}"
        );
    }
    // The resets and reconnects replay exactly.
    let crash = Some((Outage::Crash("broker"), 0, 1));
    let (mut again, _) =
        group_of_consumers_with(4, r#"Constant("300/s")"#, 15_000, &fast, false, crash);
    again.run_until(secs(90));
    assert_eq!(again.trace_hash(), sim.trace_hash());
}

/// While the broker is down each refused connection waits Kafka's reconnect backoff, 50 ms
/// doubling to 1 s, each wait scaled by a uniform factor in 0.8-1.2 before the cap (the
/// client's `ExponentialBackoff`, jitter 0.2; at the cap, 0.8-1 s): consumers reset by the
/// same crash spread their reconnects instead of arriving together. Read from the consumers'
/// trace notes.
#[test]
fn reconnect_backoffs_double_to_the_cap_with_twenty_percent_jitter() {
    let mut sim: Sim<Log> = Sim::with_config(SimConfig {
        record_trace: true,
        ..SimConfig::new(3)
    })
    .expect("a valid config");
    let h = sim.add_host("h").expect("fresh host");
    broker(
        &mut sim,
        h,
        "broker",
        r#"(topics: [(name: "t", partitions: 6)])"#,
    );
    let names = ["c1", "c2", "c3", "c4"];
    for name in names {
        consumer(
            &mut sim,
            h,
            name,
            r#"(broker: "broker", group: "g", topic: "t", partitions: 6,
                processing: Const("1ms"))"#,
        );
    }
    // Down for the first 3 s: 50 + 100 + 200 + 400 + 800 ms of doubling waits, then the cap.
    let crash = Fault::Crash {
        target: "broker".into(),
    };
    sim.add_faults(&FaultPlan::new().window(secs(0), secs(3), crash))
        .unwrap();
    sim.run_until(secs(10));
    let records = sim.trace().records().expect("recorded");
    let mut firsts = Vec::new();
    for name in names {
        let waits: Vec<SimDuration> = records
            .iter()
            .filter_map(|r| {
                let rest = r.detail.strip_prefix(&format!("connection {name}#"))?;
                let (_, wait) = rest.split_once(" reset: reconnecting in ")?;
                Some(wait.parse().expect("a duration"))
            })
            .collect();
        assert!(waits.len() >= 6, "{name}: {waits:?}");
        for (k, wait) in waits.iter().enumerate() {
            let term = (50_000_000_u64 << k.min(5)).min(1_000_000_000);
            let (lo, hi) = (term * 4 / 5, (term * 6 / 5).min(1_000_000_000));
            let ns = wait.as_nanos();
            assert!((lo..=hi).contains(&ns), "{name}: wait {k} is {wait}");
        }
        firsts.push(waits[0]);
    }
    firsts.sort();
    firsts.dedup();
    assert_eq!(firsts.len(), names.len(), "jittered apart: {firsts:?}");
}

/// A partition instead: the broker stays up but nothing crosses, not even a reset. The
/// JoinGroups reach it, but their answers (held for the initial rebalance delay, 3 s and
/// once more 3 s as members kept joining) are lost in the cut from 1 s to 8 s without a
/// word. The client gives up on each after the
/// JoinGroup timeout (30 s), finds the coordinator again and rejoins; without that timeout
/// the group never formed (the harness's shrunk case in `log_properties`).
#[test]
fn consumers_whose_join_was_lost_in_a_partition_rejoin_after_the_request_timeout() {
    let fast = [r#"Const("1ms")"#; 3];
    let cut = Some((Outage::BrokerCut, 1, 8));
    let (mut sim, disk) =
        group_of_consumers_with(4, r#"Constant("300/s")"#, 15_000, &fast, false, cut);
    sim.run_until(secs(25));
    // Before the timeout nothing is consumed: the answers are lost.
    assert_eq!(processed_by(&sim, &["c1", "c2", "c3"]), 0);
    sim.run_until(secs(90));
    // Less the seven seconds of the cut.
    caught_up(&sim, &disk, 12_900);
    for c in ["c1", "c2", "c3"] {
        assert!(
            counter(&sim, &format!("{c}.request_timeouts_total")) >= 1,
            "{c}"
        );
        assert_eq!(
            counter(&sim, &format!("{c}.connection_resets_total")),
            0,
            "{c}"
        );
    }
}

/// A static member crashes while its first JoinGroup is parked in the initial rebalance
/// delay and restarts a second later under the same `group.instance.id`: the coordinator
/// replaces the old member and answers the old, parked JoinGroup FENCED_INSTANCE_ID. That
/// answer is for the dead process's connection; the new process ignores it, joins, and gets
/// its share (before, it took the answer for its own and stopped as a fenced consumer).
#[test]
fn a_restarted_static_member_ignores_the_fencing_of_its_dead_incarnations_parked_join() {
    let fast = [r#"Const("1ms")"#; 3];
    let crash = Some((Outage::Crash("c2"), 1, 2));
    let (mut sim, disk) =
        group_of_consumers_with(6, r#"Constant("300/s")"#, 9000, &fast, true, crash);
    sim.run_until(secs(60));
    for c in ["c1", "c2", "c3"] {
        assert_eq!(gauge(&sim, &format!("{c}.partitions_owned")), 2.0, "{c}");
    }
    assert_eq!(counter(&sim, "producer.acked_total"), 9000);
    assert_eq!(processed_by(&sim, &["c1", "c2", "c3"]), 9000);
    let disk = disk.borrow();
    for p in 0..6u32 {
        let key = ("g".to_string(), TopicPartition::new("t", p));
        let end = disk.logs[0][p as usize].log_end_offset();
        assert_eq!(disk.offsets.get(&key), Some(&end), "partition {p}");
    }
}

/// A commit as `member` of generation `generation` (the member id read at send time from the
/// first JoinGroup response `got` holds, or `fixed`), or outside group management (None).
fn commit_as(id: u64, offset: u64, member: Option<(Got, Option<&'static str>, u32)>) -> Make {
    Rc::new(move |me| {
        let member = member.as_ref().map(|(got, fixed, generation)| {
            let member_id = match fixed {
                Some(f) => f.to_string(),
                None => got
                    .borrow()
                    .iter()
                    .find_map(|(_, r)| match r {
                        Response::Join(Ok(j)) => Some(j.member_id.clone()),
                        _ => None,
                    })
                    .expect("joined"),
            };
            CommitMember {
                member_id,
                instance_id: None,
                generation: *generation,
            }
        });
        Log::CommitOffset(CommitOffset {
            id,
            reply_to: me,
            group: "g".into(),
            tp: TopicPartition::new("t", 0),
            offset,
            member,
        })
    })
}

/// The coordinator refuses an OffsetCommit from anyone but a current member of the current
/// generation (`ClassicGroup.validateOffsetCommit`), and stores nothing for it: a zombie's
/// commit cannot move the group's offset.
#[test]
fn the_broker_refuses_a_commit_from_a_member_or_generation_the_group_no_longer_has() {
    let (mut sim, c1, _c2) = group_run(1);
    let b = sim.lookup("broker").expect("spawned");
    let h = sim.add_host("h2").unwrap();
    // The group is Stable at generation 1 from 6 s; its members never heartbeat, so both are
    // removed when their 45 s sessions end (about 51 s) and the group is Empty.
    let m = |generation| Some((c1.clone(), None, generation));
    let replies = tester(
        &mut sim,
        h,
        "admin",
        b,
        vec![
            (SimDuration::from_secs(1), commit_as(1, 10, m(1))),
            (SimDuration::from_secs(2), commit_as(2, 20, m(0))),
            (
                SimDuration::from_secs(3),
                commit_as(3, 30, Some((c1.clone(), Some("ghost-9"), 1))),
            ),
            (SimDuration::from_secs(4), commit_as(4, 40, None)),
            (SimDuration::from_secs(50), commit_as(5, 50, m(1))),
            (SimDuration::from_secs(51), commit_as(6, 60, None)),
        ],
    );
    sim.run_until(secs(75));
    let acks: Vec<(u64, Result<(), CommitError>)> = replies
        .borrow()
        .iter()
        .filter_map(|(_, m)| match m {
            Log::OffsetCommitAck(a) => Some((a.id, a.result)),
            _ => None,
        })
        .collect();
    use faultline::model::log::group::GroupError::{IllegalGeneration, UnknownMemberId};
    assert_eq!(
        acks,
        vec![
            (1, Ok(())),
            (2, Err(CommitError::Group(IllegalGeneration))),
            (3, Err(CommitError::Group(UnknownMemberId))),
            // A commit outside group management while the group has members.
            (4, Err(CommitError::Group(UnknownMemberId))),
            // c1 was removed: its commit is a zombie's.
            (5, Err(CommitError::Group(UnknownMemberId))),
            // The group is Empty: an admin commit is stored.
            (6, Ok(())),
        ]
    );
    assert_eq!(counter(&sim, "broker.commits_total"), 2);
    assert_eq!(counter(&sim, "broker.commits_rejected_total"), 4);
}
