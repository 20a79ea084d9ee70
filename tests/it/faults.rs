//! Each fault's semantics, applied through fault plans as a scenario would, and the crashes an
//! actor brings on itself (`Ctx::crash_self`) with the restarts it asks for.

use faultline::{
    Actor, ActorId, Ctx, CutMode, Durable, Fault, FaultPlan, LinkSpec, Sim, SimDuration, SimTime,
    Skew, TraceKind,
};

use crate::support::{Log, Recorder, Scripted, T, at_ms, ms, recorder, scripted, values};

/// A sender on host "a" messaging a recorder on host "b" every `every` ms for `n` messages;
/// 1 ms latency on the default link. Returns (sim, log, sender, recorder).
fn pair(every: u64, n: u64) -> (Sim<T>, Log, ActorId, ActorId) {
    pair_with(every, n, faultline::SimConfig::new(9))
}

fn pair_with(every: u64, n: u64, config: faultline::SimConfig) -> (Sim<T>, Log, ActorId, ActorId) {
    let mut sim = Sim::with_config(config).unwrap();
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

// ---------------------------------------------------------------------------------------------
// An actor that crashes itself (`Ctx::crash_self`)
// ---------------------------------------------------------------------------------------------

/// What a [`Crasher`] handled: (time, value, how many messages this incarnation had seen).
type Handled = Durable<Vec<(SimTime, u64, u64)>>;

/// Counts the messages it handles (volatile: a restart starts again at 0) and logs them
/// durably, with its starts. On `Msg(n)` for `n` in `crash_on` it sends `Msg(1000 + n)` to
/// `watch`, `Msg(100)` to itself and sets a 1 ms timer, then crashes itself.
struct Crasher {
    handled: Handled,
    starts: Durable<Vec<SimTime>>,
    seen: u64,
    crash_on: Vec<u64>,
    restart_after: Option<SimDuration>,
    watch: ActorId,
}

impl Actor<T> for Crasher {
    fn on_start(&mut self, ctx: &mut Ctx<'_, T>) {
        self.starts.borrow_mut().push(ctx.now());
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, T>, _: ActorId, msg: T) {
        let T::Msg(n) = msg else { return };
        self.seen += 1;
        self.handled.borrow_mut().push((ctx.now(), n, self.seen));
        if self.crash_on.contains(&n) {
            ctx.send(self.watch, T::Msg(1000 + n));
            let me = ctx.me();
            ctx.send(me, T::Msg(100));
            ctx.set_timer(ms(1), T::Fire(0));
            ctx.crash_self(self.restart_after);
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, T>, _: T) {
        // A timer set just before a self-crash dies with the incarnation: never logged.
        self.handled.borrow_mut().push((ctx.now(), 999, self.seen));
    }
}

/// What one crasher run is made of.
struct CrashRig {
    sim: Sim<T>,
    handled: Handled,
    starts: Durable<Vec<SimTime>>,
    watch: Log,
    crasher: ActorId,
}

/// "snd" on host a sends `Msg(1..=10)` every 10 ms (arriving at 11, 21, ..., 101 ms) to
/// "self" (a [`Crasher`]) on host b, which reports to "watch" on host a; 1 ms links.
fn crash_rig(crash_on: Vec<u64>, restart_after: Option<SimDuration>) -> CrashRig {
    crash_rig_with(crash_on, restart_after, faultline::SimConfig::new(1))
}

fn crash_rig_with(
    crash_on: Vec<u64>,
    restart_after: Option<SimDuration>,
    config: faultline::SimConfig,
) -> CrashRig {
    let mut sim = Sim::with_config(config).unwrap();
    let (a, b) = (sim.add_host("a").unwrap(), sim.add_host("b").unwrap());
    let (watch_id, watch) = recorder(&mut sim, a, "watch");
    let (handled, starts): (Handled, Durable<Vec<SimTime>>) =
        (Durable::new(vec![]), Durable::new(vec![]));
    let (h, s) = (handled.clone(), starts.clone());
    let crasher = sim
        .spawn(b, "self", move || Crasher {
            handled: h.clone(),
            starts: s.clone(),
            seen: 0,
            crash_on: crash_on.clone(),
            restart_after,
            watch: watch_id,
        })
        .unwrap();
    let script: Vec<_> = (1..=10).map(|i| (ms(i * 10), i)).collect();
    scripted(&mut sim, a, "snd", crasher, script);
    CrashRig {
        sim,
        handled,
        starts,
        watch,
        crasher,
    }
}

fn times(log: &Durable<Vec<SimTime>>) -> Vec<SimTime> {
    log.borrow().clone()
}

#[test]
fn an_actor_that_crashes_itself_is_down_until_the_restart_it_asked_for() {
    // Crashes on 3 (at 31 ms) and on 7, each time asking to be back 25 ms later.
    let mut rig = crash_rig(vec![3, 7], Some(ms(25)));
    let id = rig.crasher;
    rig.sim.run_until(at_ms(31));
    assert_eq!(rig.sim.status(id), faultline::Status::Down);
    assert_eq!(
        rig.sim.incarnation(id),
        1,
        "the crash bumps the incarnation"
    );
    assert_eq!(rig.sim.pending_restart(id), Some(at_ms(56)));
    assert!(
        rig.sim.inspect::<Crasher>(id).is_none(),
        "no instance while down"
    );
    rig.sim.run_until(at_ms(56));
    assert_eq!(rig.sim.status(id), faultline::Status::Up);
    assert_eq!(rig.sim.incarnation(id), 2, "and so does the restart");
    assert_eq!(rig.sim.pending_restart(id), None);
    assert_eq!(rig.sim.inspect::<Crasher>(id).map(|c| c.seen), Some(0));
    rig.sim.run();

    // 41 and 51 arrive while down; after the restart at 56 the count starts again from 0;
    // 7 (at 71) crashes it until 96, so 81 and 91 are lost too.
    assert_eq!(
        *rig.handled.borrow(),
        vec![
            (at_ms(11), 1, 1),
            (at_ms(21), 2, 2),
            (at_ms(31), 3, 3),
            (at_ms(61), 6, 1),
            (at_ms(71), 7, 2),
            (at_ms(101), 10, 1),
        ],
        "volatile state is lost, the timer set before each crash never fires"
    );
    assert_eq!(times(&rig.starts), [at_ms(0), at_ms(56), at_ms(96)]);
    let watched: Vec<_> = rig.watch.borrow().iter().map(|e| (e.0, e.3)).collect();
    assert_eq!(
        watched,
        [(at_ms(32), 1003), (at_ms(72), 1007)],
        "what a handler sent before crashing itself is delivered"
    );
    let stats = rig.sim.stats();
    assert_eq!(stats.self_crashes, 2);
    assert_eq!(stats.self_restarts, 2);
    assert_eq!(stats.dropped_down, 4, "41, 51, 81, 91");
    assert_eq!(
        stats.dropped_stale, 4,
        "per crash: the message to itself and the timer, both addressed to the dead incarnation"
    );
    assert_eq!(rig.sim.incarnation(id), 4);
    assert_eq!(stats.faults, 0, "nothing was scripted");
}

#[test]
fn a_self_crash_without_a_restart_stays_down_until_a_restart_fault() {
    let mut rig = crash_rig(vec![3], None);
    let restart = Fault::Restart {
        target: "self".into(),
    };
    rig.sim
        .add_faults(&FaultPlan::new().at(at_ms(75), restart))
        .unwrap();
    rig.sim.run_until(at_ms(70));
    assert_eq!(rig.sim.status(rig.crasher), faultline::Status::Down);
    assert_eq!(rig.sim.pending_restart(rig.crasher), None);
    rig.sim.run();
    let values: Vec<u64> = rig.handled.borrow().iter().map(|e| e.1).collect();
    assert_eq!(values, [1, 2, 3, 8, 9, 10]);
    assert_eq!(times(&rig.starts), [at_ms(0), at_ms(75)]);
    assert_eq!(rig.sim.stats().self_crashes, 1);
    assert_eq!(rig.sim.stats().self_restarts, 0);
    assert_eq!(rig.sim.stats().dropped_down, 4, "41 .. 71");
}

#[test]
fn a_fault_takes_over_an_actor_waiting_to_come_back_from_its_own_crash() {
    // The crasher goes down at 31 ms asking to be back at 56 ms; a fault arrives at 40 or 45.
    let run = |plan: FaultPlan| {
        let mut rig = crash_rig(vec![3], Some(ms(25)));
        rig.sim.add_faults(&plan).unwrap();
        rig.sim.run();
        let values: Vec<u64> = rig.handled.borrow().iter().map(|e| e.1).collect();
        let s = rig.sim.stats();
        let counts = (s.self_crashes, s.self_restarts);
        (
            values,
            times(&rig.starts),
            counts,
            rig.sim.incarnation(rig.crasher),
        )
    };
    let crash = || crash("self");

    // An instant crash cancels the pending restart: down for good (a crash of a down actor
    // does not bump its incarnation).
    let (values, starts, counts, inc) = run(FaultPlan::new().at(at_ms(40), crash()));
    assert_eq!(values, [1, 2, 3]);
    assert_eq!(starts, [at_ms(0)]);
    assert_eq!(counts, (1, 0));
    assert_eq!(inc, 1);

    // A crash window: back at the window's end, not at 56 ms.
    let (values, starts, counts, inc) = run(FaultPlan::new().window(at_ms(40), at_ms(80), crash()));
    assert_eq!(values, [1, 2, 3, 8, 9, 10], "8 arrives at 81 ms");
    assert_eq!(starts, [at_ms(0), at_ms(80)]);
    assert_eq!(counts, (1, 0));
    assert_eq!(inc, 2);

    // A restart: back at once, and not a second time at 56 ms.
    let restart = Fault::Restart {
        target: "self".into(),
    };
    let (values, starts, counts, inc) = run(FaultPlan::new().at(at_ms(45), restart));
    assert_eq!(values, [1, 2, 3, 5, 6, 7, 8, 9, 10]);
    assert_eq!(starts, [at_ms(0), at_ms(45)]);
    assert_eq!(counts, (1, 0));
    assert_eq!(inc, 2);
}

#[test]
fn a_self_crash_and_a_pause() {
    // Paused 25..75 ms: 3 .. 7 (arriving 31 .. 71) wait in the backlog and are handled at the
    // resume, in order. 3 crashes it (back 10 ms later, at 85): the rest of the backlog was
    // addressed to the incarnation that died, and is dropped.
    let mut rig = crash_rig(vec![3], Some(ms(10)));
    let pause = Fault::Pause {
        target: "self".into(),
    };
    rig.sim
        .add_faults(&FaultPlan::new().window(at_ms(25), at_ms(75), pause))
        .unwrap();
    rig.sim.run();
    assert_eq!(
        *rig.handled.borrow(),
        vec![
            (at_ms(11), 1, 1),
            (at_ms(21), 2, 2),
            (at_ms(75), 3, 3),
            (at_ms(91), 9, 1),
            (at_ms(101), 10, 2),
        ]
    );
    assert_eq!(times(&rig.starts), [at_ms(0), at_ms(85)]);
    let s = rig.sim.stats();
    assert_eq!(s.deferred, 5);
    assert_eq!(
        s.dropped_stale,
        4 + 2,
        "4 .. 7 of the backlog, the message to itself, the timer"
    );
    assert_eq!(s.dropped_down, 1, "8, at 81");

    // A pause while it is down reaches no process: the restart at 56 ms comes back running,
    // and the resume at 70 ms has nothing to resume.
    let mut rig = crash_rig(vec![3], Some(ms(25)));
    let pause = Fault::Pause {
        target: "self".into(),
    };
    rig.sim
        .add_faults(&FaultPlan::new().window(at_ms(40), at_ms(70), pause))
        .unwrap();
    rig.sim.run_until(at_ms(60));
    assert_eq!(rig.sim.status(rig.crasher), faultline::Status::Up);
    rig.sim.run();
    let handled: Vec<(SimTime, u64)> = rig.handled.borrow().iter().map(|e| (e.0, e.1)).collect();
    assert_eq!(
        handled[3..],
        [
            (at_ms(61), 6),
            (at_ms(71), 7),
            (at_ms(81), 8),
            (at_ms(91), 9),
            (at_ms(101), 10)
        ]
    );
    assert_eq!(rig.sim.stats().deferred, 0);
}

#[test]
fn self_crashes_are_traced_and_replay_exactly() {
    let rig = |restart_after: SimDuration, config: faultline::SimConfig| {
        crash_rig_with(vec![3, 7], Some(restart_after), config)
    };
    let build = |restart_after: SimDuration| move |config| rig(restart_after, config).sim;
    let config = faultline::SimConfig::new(3);
    let report = faultline::check_determinism(build(ms(25)), config.clone(), at_ms(200))
        .expect("the same seed replays the same self-crashes");
    let other = faultline::check_determinism(build(ms(26)), config.clone(), at_ms(200))
        .expect("so does another delay");
    assert_ne!(report.hash, other.hash, "the restart time is in the trace");
    let plain = |config| {
        let mut r = rig(ms(25), config);
        r.sim.run_until(at_ms(200));
        r.sim.trace_hash()
    };
    assert_eq!(
        plain(config.clone()),
        report.hash,
        "recording does not change the hash"
    );
    assert_eq!(plain(config.clone()), plain(config.clone()));

    // The full record names each crash and restart, its actor and its delay, like a fault.
    let mut recorded = rig(
        ms(25),
        faultline::SimConfig {
            record_trace: true,
            ..config
        },
    );
    recorded.sim.run();
    let trace = recorded.sim.take_trace().expect("recorded");
    let own: Vec<_> = trace
        .iter()
        .filter(|r| matches!(r.kind, TraceKind::SelfCrash | TraceKind::SelfRestart))
        .map(|r| {
            (
                r.time_ns / 1_000_000,
                r.kind,
                r.actor.as_deref(),
                r.detail.as_str(),
            )
        })
        .collect();
    let (crash, restart) = (TraceKind::SelfCrash, TraceKind::SelfRestart);
    let (crashed, back) = ("crash_self, restart after 25ms", "restart after crash_self");
    assert_eq!(
        own,
        [
            (31, crash, Some("self"), crashed),
            (56, restart, Some("self"), back),
            (71, crash, Some("self"), crashed),
            (96, restart, Some("self"), back),
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// An actor that kills another (`Ctx::kill`: a power switch, a kubelet)
// ---------------------------------------------------------------------------------------------

/// At its timer, kills `victim`, asking for a restart `restart_after` later.
struct Killer {
    victim: ActorId,
    at: SimDuration,
    restart_after: Option<SimDuration>,
}

impl Actor<T> for Killer {
    fn on_start(&mut self, ctx: &mut Ctx<'_, T>) {
        ctx.set_timer(self.at, T::Fire(0));
    }

    fn on_message(&mut self, _: &mut Ctx<'_, T>, _: ActorId, _: T) {}

    fn on_timer(&mut self, ctx: &mut Ctx<'_, T>, _: T) {
        ctx.kill(self.victim, self.restart_after);
    }
}

#[test]
fn a_kill_acts_on_a_paused_actor_at_once_and_its_backlog_is_never_handled() {
    // "rec" is paused 25..75 ms and killed at 50 ms with a restart 20 ms later: the messages
    // that arrived during the pause (31, 41) are gone unread, those arriving while it is down
    // (51, 61) are dropped, so is 7 (sent at 70 ms just before the restart, to the incarnation
    // that is down), and the restarted incarnation receives 8..10.
    let (mut sim, log, _, rec) = pair(10, 10);
    let c = sim.add_host("c").unwrap();
    sim.spawn(c, "switch", move || Killer {
        victim: rec,
        at: ms(50),
        restart_after: Some(ms(20)),
    })
    .unwrap();
    sim.add_faults(&FaultPlan::new().window(
        at_ms(25),
        at_ms(75),
        Fault::Pause {
            target: "rec".into(),
        },
    ))
    .unwrap();
    sim.run_until(at_ms(60));
    assert_eq!(sim.status(rec), faultline::Status::Down);
    sim.run();
    assert_eq!(values(&log), vec![1, 2, 8, 9, 10]);
    assert_eq!(sim.stats().kills, 1);
    assert_eq!(sim.stats().self_restarts, 1);
    let times: Vec<SimTime> = log.borrow().iter().map(|e| e.0).collect();
    assert_eq!(
        times[2],
        at_ms(81),
        "the first message after the restart, on time"
    );
}

#[test]
fn killing_an_actor_that_is_down_changes_nothing_and_kills_are_traced() {
    let run = |crash_first: bool| {
        let config = faultline::SimConfig {
            record_trace: true,
            ..faultline::SimConfig::new(9)
        };
        let (mut sim, log, _, rec) = pair_with(10, 10, config);
        let c = sim.add_host("c").unwrap();
        sim.spawn(c, "switch", move || Killer {
            victim: rec,
            at: ms(45),
            restart_after: Some(ms(10)),
        })
        .unwrap();
        if crash_first {
            sim.add_faults(&FaultPlan::new().at(at_ms(35), crash("rec")))
                .unwrap();
        }
        sim.run();
        let kills: Vec<_> = sim
            .trace()
            .records()
            .expect("recorded")
            .iter()
            .filter(|r| r.kind == TraceKind::Kill)
            .map(|r| (r.time_ns, r.actor.clone(), r.from.clone(), r.detail.clone()))
            .collect();
        (values(&log), sim.stats().kills, kills)
    };
    let (got, kills, traced) = run(false);
    assert_eq!(got, vec![1, 2, 3, 4, 6, 7, 8, 9, 10], "down 45..55 ms");
    assert_eq!(kills, 1);
    let expected = (
        45_000_000,
        Some("rec".to_string()),
        Some("switch".to_string()),
        "killed, restart after 10ms".to_string(),
    );
    assert_eq!(traced, vec![expected]);
    // Crashed by a fault first: the kill finds it down and schedules no restart of its own.
    let (got, kills, traced) = run(true);
    assert_eq!(got, vec![1, 2, 3]);
    assert_eq!((kills, traced.len()), (0, 0));
}
