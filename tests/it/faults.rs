//! Each fault's semantics, applied through fault plans as a scenario would.

use faultline::{
    Actor, ActorId, Ctx, CutMode, Durable, Fault, FaultPlan, LinkSpec, Sim, SimDuration, SimTime,
    Skew,
};

use crate::support::{Log, Recorder, Scripted, T, at_ms, ms, recorder, scripted, values};

/// A sender on host "a" messaging a recorder on host "b" every `every` ms for `n` messages;
/// 1 ms latency on the default link. Returns (sim, log, sender, recorder).
fn pair(every: u64, n: u64) -> (Sim<T>, Log, ActorId, ActorId) {
    let mut sim = Sim::new(9);
    let (a, b) = (sim.add_host("a").unwrap(), sim.add_host("b").unwrap());
    let (rec, log) = recorder(&mut sim, b, "rec");
    let script: Vec<_> = (1..=n).map(|i| (ms(i * every), i)).collect();
    let snd = sim
        .spawn(a, "snd", move || Scripted {
            to: rec,
            script: script.clone(),
        })
        .unwrap();
    (sim, log, snd, rec)
}

fn crash(t: &str) -> Fault {
    Fault::Crash { target: t.into() }
}

#[test]
fn a_crashed_actor_receives_nothing_and_restarts_fresh() {
    // Messages every 10 ms, sent at 10..100 ms, arriving 1 ms later. "rec" is down 25..55 ms.
    let (mut sim, log, _, rec) = pair(10, 10);
    sim.add_faults(&FaultPlan::new().window(at_ms(25), at_ms(55), crash("rec")))
        .unwrap();
    sim.run_until(at_ms(40));
    assert_eq!(sim.status(rec), faultline::Status::Down);
    assert!(
        sim.inspect::<Recorder>(rec).is_none(),
        "a crashed actor has no instance"
    );
    sim.run();
    // Sent at 30, 40, 50 arrive at 31, 41, 51 while down: dropped.
    assert_eq!(values(&log), vec![1, 2, 6, 7, 8, 9, 10]);
    assert_eq!(sim.stats().dropped_down, 3);
}

#[test]
fn messages_in_flight_across_a_restart_are_lost() {
    // A slow link (20 ms): messages sent just before a crash arrive after the restart, to a new
    // incarnation, and are dropped like on a reset connection.
    let (mut sim, log, _, _) = pair(10, 5);
    let (a, b) = (sim.net().host("a").unwrap(), sim.net().host("b").unwrap());
    sim.link(a, b, LinkSpec::constant(ms(20))).unwrap();
    // Sent at 10 (arrives 30), 20 (arrives 40). Crash at 25, restart at 35.
    sim.add_faults(&FaultPlan::new().window(at_ms(25), at_ms(35), crash("rec")))
        .unwrap();
    sim.run();
    // 10 arrived at 30 while down; 20 arrives at 40 after the restart but was addressed to the
    // old incarnation; 30 (sent while down, to the down incarnation) arrives at 50: dropped;
    // 40 and 50 are sent after the restart and arrive.
    assert_eq!(values(&log), vec![4, 5]);
    assert_eq!(sim.stats().dropped_down + sim.stats().dropped_stale, 3);
}

#[test]
fn a_paused_actor_handles_its_backlog_on_resume_in_order() {
    let (mut sim, log, _, rec) = pair(10, 10);
    sim.add_faults(&FaultPlan::new().window(
        at_ms(25),
        at_ms(75),
        Fault::Pause {
            target: "rec".into(),
        },
    ))
    .unwrap();
    sim.run_until(at_ms(70));
    assert_eq!(values(&log), vec![1, 2]);
    assert_eq!(sim.status(rec), faultline::Status::Paused);
    sim.run();
    assert_eq!(
        values(&log),
        (1..=10).collect::<Vec<_>>(),
        "nothing lost, order kept"
    );
    let times: Vec<SimTime> = log.borrow().iter().map(|e| e.0).collect();
    // Arrivals at 31..71 were deferred to the resume at 75.
    assert_eq!(&times[2..7], &[at_ms(75); 5]);
    assert_eq!(times[7], at_ms(81));
    assert_eq!(sim.stats().deferred, 5);
}

/// Sets a timer for 10 ms; records when it fired.
struct Alarm {
    fired_at: Durable<Option<SimTime>>,
}
impl Actor<T> for Alarm {
    fn on_start(&mut self, ctx: &mut Ctx<'_, T>) {
        ctx.set_timer(ms(10), T::Fire(0));
    }
    fn on_message(&mut self, _: &mut Ctx<'_, T>, _: ActorId, _: T) {}
    fn on_timer(&mut self, ctx: &mut Ctx<'_, T>, _: T) {
        *self.fired_at.borrow_mut() = Some(ctx.now());
    }
}

#[test]
fn timers_of_a_paused_actor_fire_late() {
    let mut sim = Sim::new(1);
    let h = sim.add_host("h").unwrap();
    let fired = Durable::new(None);
    let f = fired.clone();
    sim.spawn(h, "alarm", move || Alarm {
        fired_at: f.clone(),
    })
    .unwrap();
    sim.add_faults(&FaultPlan::new().window(
        at_ms(5),
        at_ms(40),
        Fault::Pause { target: "h".into() },
    ))
    .unwrap();
    sim.run();
    assert_eq!(*fired.borrow(), Some(at_ms(40)));
}

#[test]
fn timers_of_a_crashed_actor_never_fire() {
    let mut sim = Sim::new(1);
    let h = sim.add_host("h").unwrap();
    let fired = Durable::new(None);
    let f = fired.clone();
    sim.spawn(h, "alarm", move || Alarm {
        fired_at: f.clone(),
    })
    .unwrap();
    sim.add_faults(&FaultPlan::new().at(at_ms(5), crash("alarm")))
        .unwrap();
    sim.run();
    assert_eq!(*fired.borrow(), None);
    assert_eq!(sim.stats().dropped_stale, 1);
}

/// Two recorders on hosts a and b that message each other every 10 ms.
fn chatter() -> (Sim<T>, Log, Log) {
    let mut sim = Sim::new(4);
    let (a, b) = (sim.add_host("a").unwrap(), sim.add_host("b").unwrap());
    let (la, lb): (Log, Log) = (Durable::new(vec![]), Durable::new(vec![]));
    let (la2, lb2) = (la.clone(), lb.clone());
    let ra = sim
        .spawn(a, "ra", move || Recorder { log: la2.clone() })
        .unwrap();
    let rb = sim
        .spawn(b, "rb", move || Recorder { log: lb2.clone() })
        .unwrap();
    let script: Vec<_> = (1..=10).map(|i| (ms(i * 10), i)).collect();
    let s2 = script.clone();
    sim.spawn(a, "sa", move || Scripted {
        to: rb,
        script: script.clone(),
    })
    .unwrap();
    sim.spawn(b, "sb", move || Scripted {
        to: ra,
        script: s2.clone(),
    })
    .unwrap();
    (sim, la, lb)
}

#[test]
fn a_symmetric_partition_drops_both_directions_for_its_window() {
    let (mut sim, la, lb) = chatter();
    let p = Fault::Partition {
        a: vec!["a".into()],
        b: vec!["b".into()],
        mode: CutMode::Drop,
    };
    // Sent at 30, 40, 50 meet the cut; the one sent at 20 is in flight (arrives 21) before it.
    sim.add_faults(&FaultPlan::new().window(at_ms(25), at_ms(55), p))
        .unwrap();
    sim.run();
    let expect = vec![1, 2, 6, 7, 8, 9, 10];
    assert_eq!(values(&la), expect);
    assert_eq!(values(&lb), expect);
    assert_eq!(sim.stats().cut, 6);
    assert_eq!(sim.metrics().counter_value("net.cut_total"), Some(6));
}

#[test]
fn a_one_way_partition_cuts_one_direction_only() {
    let (mut sim, la, lb) = chatter();
    let p = Fault::OneWay {
        from: vec!["a".into()],
        to: vec!["b".into()],
        mode: CutMode::Drop,
    };
    sim.add_faults(&FaultPlan::new().window(at_ms(25), at_ms(55), p))
        .unwrap();
    sim.run();
    assert_eq!(values(&lb), vec![1, 2, 6, 7, 8, 9, 10], "a -> b is cut");
    assert_eq!(
        values(&la),
        (1..=10).collect::<Vec<_>>(),
        "b -> a still works"
    );
}

#[test]
fn a_holding_partition_delivers_everything_after_it_heals() {
    let (mut sim, la, lb) = chatter();
    let p = Fault::Partition {
        a: vec!["a".into()],
        b: vec!["b".into()],
        mode: CutMode::Hold,
    };
    sim.add_faults(&FaultPlan::new().window(at_ms(25), at_ms(55), p))
        .unwrap();
    sim.run_until(at_ms(54));
    assert_eq!(sim.held_count(), 6);
    sim.run();
    assert_eq!(values(&la), (1..=10).collect::<Vec<_>>());
    assert_eq!(values(&lb), (1..=10).collect::<Vec<_>>());
    let times: Vec<SimTime> = lb.borrow().iter().map(|e| e.0).collect();
    // Held messages leave at the heal (55 ms) and cross the 1 ms link.
    assert_eq!(&times[2..5], &[at_ms(56); 3]);
    assert_eq!(sim.held_count(), 0);
}

#[test]
fn heal_releases_held_messages_and_ends_every_cut() {
    let (mut sim, la, lb) = chatter();
    let p = Fault::Partition {
        a: vec!["a".into()],
        b: vec!["b".into()],
        mode: CutMode::Hold,
    };
    sim.add_faults(&FaultPlan::new().at(at_ms(25), p).at(at_ms(45), Fault::Heal))
        .unwrap();
    sim.run();
    assert_eq!(values(&la).len(), 10);
    assert_eq!(values(&lb).len(), 10);
    assert_eq!(
        sim.net()
            .is_cut(sim.net().host("a").unwrap(), sim.net().host("b").unwrap()),
        None
    );
}

#[test]
fn clock_skew_changes_the_local_clock_and_nothing_else() {
    let run = |skew: Option<Fault>| {
        let (mut sim, la, lb) = chatter();
        if let Some(f) = skew {
            sim.add_faults(&FaultPlan::new().at(at_ms(1), f)).unwrap();
        }
        sim.run();
        let (la, lb) = (la.borrow().clone(), lb.borrow().clone());
        (la, lb)
    };
    let (base_a, base_b) = run(None);
    let skew = Fault::ClockOffset {
        host: "b".into(),
        offset: Skew::ahead(SimDuration::from_secs(5)),
    };
    let (skew_a, skew_b) = run(Some(skew));
    let strip = |log: &[(SimTime, SimTime, ActorId, u64)]| {
        log.iter().map(|e| (e.0, e.2, e.3)).collect::<Vec<_>>()
    };
    assert_eq!(
        strip(&base_a),
        strip(&skew_a),
        "same deliveries at the same true times"
    );
    assert_eq!(strip(&base_b), strip(&skew_b));
    assert_eq!(base_a, skew_a, "host a's clock is untouched");
    for (e, s) in base_b.iter().zip(&skew_b) {
        assert_eq!(e.1, e.0, "an unskewed clock reads true time");
        assert_eq!(
            s.1.as_nanos(),
            s.0.as_nanos() + 5_000_000_000,
            "b reads 5 s ahead"
        );
    }
}

#[test]
fn clock_drift_and_steps_accumulate() {
    let mut sim: Sim<T> = Sim::new(1);
    let h = sim.add_host("h").unwrap();
    let plan = FaultPlan::new()
        .at(
            SimTime::from_nanos(1_000_000_000),
            Fault::ClockDrift {
                host: "h".into(),
                ppm: 500.0,
            },
        )
        .at(
            SimTime::from_nanos(3_000_000_000),
            Fault::ClockStep {
                host: "h".into(),
                by: "-1s".parse().unwrap(),
            },
        );
    sim.add_faults(&plan).unwrap();
    sim.run_until(SimTime::from_nanos(2_000_000_000));
    // 1 s of drift at 500 ppm = 0.5 ms ahead.
    assert_eq!(sim.local_clock(h).as_nanos(), 2_000_500_000);
    sim.run_until(SimTime::from_nanos(5_000_000_000));
    // 4 s of drift (2 ms) and a step of -1 s.
    assert_eq!(sim.local_clock(h).as_nanos(), 4_002_000_000);
}

/// Records how long 10 ms of work takes, once per message.
struct Worker {
    took: Durable<Vec<SimDuration>>,
}
impl Actor<T> for Worker {
    fn on_message(&mut self, ctx: &mut Ctx<'_, T>, _: ActorId, _: T) {
        let d = ctx.work(ms(10));
        self.took.borrow_mut().push(d);
    }
}

#[test]
fn slow_scales_work_for_its_window() {
    let mut sim = Sim::new(1);
    let (a, b) = (sim.add_host("a").unwrap(), sim.add_host("b").unwrap());
    let took = Durable::new(vec![]);
    let t = took.clone();
    let w = sim
        .spawn(b, "w", move || Worker { took: t.clone() })
        .unwrap();
    scripted(
        &mut sim,
        a,
        "s",
        w,
        vec![(ms(10), 1), (ms(30), 2), (ms(60), 3)],
    );
    sim.add_faults(&FaultPlan::new().window(
        at_ms(20),
        at_ms(50),
        Fault::Slow {
            target: "w".into(),
            factor: 4.0,
        },
    ))
    .unwrap();
    sim.run();
    assert_eq!(*took.borrow(), vec![ms(10), ms(40), ms(10)]);
}

#[test]
fn link_latency_and_loss_changes_apply_and_revert() {
    let (mut sim, log, _, _) = pair(10, 6);
    let latency = faultline::Dist::Const(faultline::Scalar::duration(ms(5)));
    let plan = FaultPlan::new()
        .window(
            at_ms(15),
            at_ms(35),
            Fault::LinkLatency {
                a: "a".into(),
                b: "b".into(),
                latency,
            },
        )
        .window(
            at_ms(45),
            at_ms(55),
            Fault::LinkLoss {
                a: "b".into(),
                b: "a".into(),
                loss: 1.0,
            },
        );
    sim.add_faults(&plan).unwrap();
    sim.run();
    let got: Vec<(u64, SimTime)> = log.borrow().iter().map(|e| (e.3, e.0)).collect();
    assert_eq!(
        got,
        vec![
            (1, at_ms(11)),
            (2, at_ms(25)),
            (3, at_ms(35)),
            (4, at_ms(41)),
            (6, at_ms(61))
        ]
    );
    assert_eq!(sim.stats().lost, 1);
}

#[test]
fn a_host_target_hits_every_actor_on_it() {
    let (mut sim, _, snd, rec) = pair(10, 3);
    sim.add_faults(&FaultPlan::new().at(at_ms(5), crash("b")))
        .unwrap();
    sim.run_until(at_ms(6));
    assert_eq!(sim.status(rec), faultline::Status::Down);
    assert_eq!(sim.status(snd), faultline::Status::Up);
}

#[test]
fn a_nemesis_plan_runs_and_is_reproducible() {
    let nemesis = faultline::Nemesis {
        kinds: vec![
            faultline::NemesisKind::Crash,
            faultline::NemesisKind::Pause,
            faultline::NemesisKind::Partition,
            faultline::NemesisKind::OneWay,
            faultline::NemesisKind::Slow,
            faultline::NemesisKind::ClockSkew,
        ],
        targets: vec!["a".into(), "b".into()],
        faults: 12,
        start: at_ms(5),
        heal_at: at_ms(80),
        max_window: ms(20),
        max_skew: SimDuration::from_secs(1),
        max_slow: 3.0,
    };
    let run = |seed| {
        let (mut sim, la, lb) = chatter();
        sim.add_faults(&nemesis.plan(seed).unwrap()).unwrap();
        sim.run();
        let n = values(&la).len() + values(&lb).len();
        (sim.trace_hash(), n, sim.stats().faults)
    };
    let (h1, n1, f1) = run(5);
    assert_eq!((h1, n1, f1), run(5));
    assert!(f1 > 0);
    assert!(n1 > 0, "some messages got through");
    assert_ne!(h1, run(6).0);
}
