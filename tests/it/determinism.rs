//! Same seed, same trace; different seeds, different traces; streams independent of each other.

use faultline::{
    Actor, ActorId, Ctx, CutMode, Dist, Durable, Fault, FaultPlan, LinkSpec, Scalar, Sim,
    SimConfig, SimDuration, SimTime, check_determinism,
};
use rand_core::Rng;

use crate::bench_workloads;
use crate::support::{T, ms};

/// A gossiping cluster: every node starts a rumour every 20 ms and forwards each rumour it hears
/// to a random peer after a random think time, over lossy, duplicating, reordering links, under
/// a plan of faults. It exercises every source of randomness and every fault path.
struct Gossip {
    peers: Vec<ActorId>,
    think: faultline::Sampler,
    hops: u64,
}

impl Actor<T> for Gossip {
    fn on_start(&mut self, ctx: &mut Ctx<'_, T>) {
        let me = ctx.me().0 as u64;
        ctx.set_timer(ms(1 + me), T::Tick);
    }
    fn on_message(&mut self, ctx: &mut Ctx<'_, T>, _from: ActorId, msg: T) {
        self.hops += 1;
        let think = ctx.sample_duration(&self.think);
        if let T::Msg(n) = msg {
            ctx.set_timer(think, T::Fire(n + 1));
        }
    }
    fn on_timer(&mut self, ctx: &mut Ctx<'_, T>, msg: T) {
        let n = match msg {
            T::Tick => {
                ctx.set_timer(ms(20), T::Tick);
                0
            }
            T::Fire(n) => n,
            T::Msg(_) => return,
        };
        let i = (ctx.rng().next_u64() % self.peers.len() as u64) as usize;
        ctx.send(self.peers[i], T::Msg(n));
        ctx.trace_note(&format!("forward {n}"));
    }
}

pub fn gossip(config: SimConfig) -> Sim<T> {
    let mut sim = Sim::with_config(config).unwrap();
    let hosts: Vec<_> = (0..5)
        .map(|i| sim.add_host(&format!("n{i}")).unwrap())
        .collect();
    let latency = Dist::LogNormal {
        p50: Scalar::duration(ms(2)),
        p99: Scalar::duration(ms(30)),
    };
    let link = LinkSpec {
        loss: 0.05,
        duplicate: 0.05,
        reorder: 0.1,
        ..LinkSpec::with_latency(latency)
    };
    for (i, &a) in hosts.iter().enumerate() {
        for &b in &hosts[i + 1..] {
            sim.link(a, b, link.clone()).unwrap();
        }
    }
    let ids: Vec<ActorId> = (0..5).map(|i| ActorId(i as u32)).collect();
    let think = Dist::Exp {
        mean: Scalar::duration(ms(3)),
    }
    .compile()
    .unwrap();
    for (i, &h) in hosts.iter().enumerate() {
        let (peers, think) = (ids.clone(), think.clone());
        sim.spawn(h, &format!("g{i}"), move || Gossip {
            peers: peers.clone(),
            think: think.clone(),
            hops: 0,
        })
        .unwrap();
    }
    let plan = FaultPlan::new()
        .window(
            SimTime::from_nanos(50_000_000),
            SimTime::from_nanos(90_000_000),
            Fault::Crash {
                target: "n1".into(),
            },
        )
        .window(
            SimTime::from_nanos(60_000_000),
            SimTime::from_nanos(120_000_000),
            Fault::Partition {
                a: vec!["n0".into(), "n2".into()],
                b: vec!["n3".into(), "n4".into()],
                mode: CutMode::Hold,
            },
        )
        .window(
            SimTime::from_nanos(70_000_000),
            SimTime::from_nanos(75_000_000),
            Fault::Pause {
                target: "g2".into(),
            },
        );
    sim.add_faults(&plan).unwrap();
    sim
}

const HORIZON: SimTime = SimTime::from_nanos(1_000_000_000);

fn hash_of(seed: u64) -> (u64, u64) {
    let mut sim = gossip(SimConfig::new(seed));
    sim.run_until(HORIZON);
    (sim.trace_hash(), sim.stats().events)
}

#[test]
fn same_seed_same_trace_hash() {
    for seed in [1, 2, 3, 42] {
        let (h1, n1) = hash_of(seed);
        let (h2, n2) = hash_of(seed);
        assert!(n1 > 500, "the model does real work ({n1} events)");
        assert_eq!(n1, n2);
        assert_eq!(h1, h2, "seed {seed}");
    }
}

#[test]
fn different_seeds_different_trace_hashes() {
    let hashes: std::collections::BTreeSet<u64> = (1..=20).map(|s| hash_of(s).0).collect();
    assert_eq!(hashes.len(), 20);
}

#[test]
fn the_trace_hash_is_pinned() {
    // The same value in debug and release, on every platform, run after run: if this changes,
    // recorded seeds no longer replay. Change it only with a deliberate engine change.
    assert_eq!(hash_of(7), PINNED_GOSSIP_7);
}
const PINNED_GOSSIP_7: (u64, u64) = (14_398_457_480_671_256_544, 18_225);

#[test]
fn bench_workloads_are_deterministic_too() {
    let run = |seed| {
        let (mut sim, _) = bench_workloads::build_queues(10, 20_000, seed);
        sim.run();
        sim.trace_hash()
    };
    assert_eq!(run(1), run(1));
    assert_ne!(run(1), run(2));
    let timers = |seed| {
        let (mut sim, _) = bench_workloads::build_timers(100, seed);
        sim.run_until(SimTime::from_nanos(60_000_000_000));
        sim.trace_hash()
    };
    assert_eq!(timers(3), timers(3));
    assert_ne!(timers(3), timers(4));
}

#[test]
fn the_self_check_passes_on_a_deterministic_model() {
    let report = check_determinism(gossip, SimConfig::new(11), HORIZON).unwrap();
    assert!(report.events > 500);
    assert_eq!(report.hash, {
        let mut sim = gossip(SimConfig::new(11));
        sim.run_until(HORIZON);
        sim.trace_hash()
    });
}

/// Waits a delay taken from outside the simulation: a counter shared between runs — the kind of
/// hidden state that breaks determinism.
struct Leaky {
    delay_ms: u64,
}
impl Actor<T> for Leaky {
    fn on_start(&mut self, ctx: &mut Ctx<'_, T>) {
        ctx.set_timer(ms(1), T::Fire(0));
        ctx.set_timer(ms(self.delay_ms), T::Fire(1));
    }
    fn on_message(&mut self, _: &mut Ctx<'_, T>, _: ActorId, _: T) {}
}

#[test]
fn the_self_check_names_the_first_divergent_event() {
    let leak = std::rc::Rc::new(std::cell::Cell::new(5u64));
    let build = |config: SimConfig| {
        let mut sim = Sim::with_config(config).unwrap();
        let h = sim.add_host("h").unwrap();
        let delay_ms = leak.get();
        leak.set(delay_ms + 1);
        sim.spawn(h, "leaky", move || Leaky { delay_ms }).unwrap();
        sim
    };
    let d = check_determinism(build, SimConfig::new(1), SimTime::from_nanos(1_000_000_000))
        .unwrap_err();
    // Event 0 is the start, event 1 the 1 ms timer; event 2 is the leaky timer at 5 ms vs 6 ms.
    assert_eq!(d.index, 2);
    assert_eq!(d.left.as_ref().unwrap().time_ns, 5_000_000);
    assert_eq!(d.right.as_ref().unwrap().time_ns, 6_000_000);
    assert!(d.to_string().contains("leaky"), "{d}");
}

/// Records the first draws of its own stream.
struct Drawer {
    draws: Durable<Vec<u64>>,
}
impl Actor<T> for Drawer {
    fn on_start(&mut self, ctx: &mut Ctx<'_, T>) {
        let draws: Vec<u64> = (0..16).map(|_| ctx.rng().next_u64()).collect();
        *self.draws.borrow_mut() = draws;
        ctx.set_timer(SimDuration::from_millis(1), T::Fire(0));
    }
    fn on_message(&mut self, _: &mut Ctx<'_, T>, _: ActorId, _: T) {}
}

fn draws_of(names: &[&str], seed: u64) -> Vec<(String, Vec<u64>)> {
    let mut sim: Sim<T> = Sim::new(seed);
    let h = sim.add_host("h").unwrap();
    let mut out = vec![];
    for name in names {
        let d = Durable::new(vec![]);
        let d2 = d.clone();
        sim.spawn(h, name, move || Drawer { draws: d2.clone() })
            .unwrap();
        out.push((name.to_string(), d));
    }
    sim.run();
    out.into_iter()
        .map(|(n, d)| (n, d.borrow().clone()))
        .collect()
}

#[test]
fn adding_or_removing_an_actor_leaves_other_streams_unchanged() {
    let base = draws_of(&["alpha", "beta", "gamma"], 7);
    let more = draws_of(&["zeta", "alpha", "beta", "delta", "gamma"], 7);
    let fewer = draws_of(&["gamma", "alpha"], 7);
    let find =
        |v: &[(String, Vec<u64>)], n: &str| v.iter().find(|(m, _)| m == n).unwrap().1.clone();
    for name in ["alpha", "gamma"] {
        assert_eq!(
            find(&base, name),
            find(&more, name),
            "{name} after adding actors"
        );
        assert_eq!(
            find(&base, name),
            find(&fewer, name),
            "{name} after removing one"
        );
    }
    assert_eq!(find(&base, "beta"), find(&more, "beta"));
    assert_ne!(
        find(&base, "alpha"),
        find(&base, "beta"),
        "streams differ by name"
    );
    let other_seed = draws_of(&["alpha"], 8);
    assert_ne!(
        find(&base, "alpha"),
        find(&other_seed, "alpha"),
        "streams differ by seed"
    );
}

#[test]
fn the_full_trace_is_written_as_json_lines() {
    let mut sim = gossip(SimConfig {
        record_trace: true,
        ..SimConfig::new(3)
    });
    sim.run_until(SimTime::from_nanos(100_000_000));
    let records = sim.take_trace().unwrap();
    assert_eq!(records.len() as u64, sim.trace().len());
    let mut buf = Vec::new();
    faultline::engine::trace::write_jsonl(&records, &mut buf).unwrap();
    let text = String::from_utf8(buf).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), records.len());
    let first: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(first["kind"], "start");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"kind\":\"fault\"") && l.contains("crash n1"))
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"kind\":\"note\"") && l.contains("forward"))
    );
    // Recording does not change the hash.
    let mut plain = gossip(SimConfig::new(3));
    plain.run_until(SimTime::from_nanos(100_000_000));
    assert_eq!(plain.trace_hash(), sim.trace_hash());
}
