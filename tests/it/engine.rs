//! The run loop: ordering, timers, limits, dynamic actors, durable state.

use faultline::{
    Actor, ActorId, Ctx, Durable, LimitKind, Limits, Sim, SimConfig, SimDuration, SimTime, Step,
    TimerId, Verdict,
};

use crate::support::{T, at_ms, ms, recorder, scripted, values};

/// Sets `n` timers for the same instant, then records the order in which they fire.
struct SameInstant {
    n: u64,
    fired: Vec<u64>,
}

impl Actor<T> for SameInstant {
    fn on_start(&mut self, ctx: &mut Ctx<'_, T>) {
        for i in 0..self.n {
            ctx.set_timer(ms(5), T::Fire(i));
        }
    }
    fn on_message(&mut self, _: &mut Ctx<'_, T>, _: ActorId, _: T) {}
    fn on_timer(&mut self, _: &mut Ctx<'_, T>, msg: T) {
        if let T::Fire(i) = msg {
            self.fired.push(i);
        }
    }
}

#[test]
fn equal_times_fire_in_insertion_order() {
    let mut sim = Sim::new(1);
    let h = sim.add_host("h").unwrap();
    let id = sim
        .spawn(h, "a", || SameInstant {
            n: 1000,
            fired: vec![],
        })
        .unwrap();
    assert_eq!(sim.run(), Verdict::Drained);
    let fired = &sim.inspect::<SameInstant>(id).unwrap().fired;
    assert_eq!(fired.len(), 1000);
    assert!(
        fired.windows(2).all(|w| w[0] < w[1]),
        "FIFO among equal times"
    );
}

#[test]
fn messages_and_timers_at_one_instant_interleave_in_send_order() {
    // Two senders on the recorder's host send at the same instant; arrival follows the order of
    // the sends, which follows the order of the timers that caused them.
    let mut sim = Sim::new(1);
    let h = sim.add_host("h").unwrap();
    let (rec, log) = recorder(&mut sim, h, "rec");
    scripted(&mut sim, h, "s1", rec, vec![(ms(10), 1), (ms(10), 3)]);
    scripted(&mut sim, h, "s2", rec, vec![(ms(10), 2)]);
    sim.run();
    assert_eq!(values(&log), vec![1, 3, 2]);
    assert!(
        log.borrow().iter().all(|e| e.0 == at_ms(10)),
        "same-host messages arrive at once"
    );
}

/// Sets a timer per step and cancels some of them.
struct Canceller {
    ids: Vec<TimerId>,
    fired: Vec<u64>,
    cancel_results: Vec<bool>,
}

impl Actor<T> for Canceller {
    fn on_start(&mut self, ctx: &mut Ctx<'_, T>) {
        for i in 0..10 {
            self.ids.push(ctx.set_timer(ms(10 + i), T::Fire(i)));
        }
        // Cancel the odd ones now; cancelling twice fails the second time.
        for i in (1..10).step_by(2) {
            self.cancel_results.push(ctx.cancel_timer(self.ids[i]));
        }
        self.cancel_results.push(ctx.cancel_timer(self.ids[1]));
        // And one that fires later than the cancel request: cancelled at 12 ms (see on_timer).
        ctx.set_timer(ms(12), T::Msg(0));
    }
    fn on_message(&mut self, _: &mut Ctx<'_, T>, _: ActorId, _: T) {}
    fn on_timer(&mut self, ctx: &mut Ctx<'_, T>, msg: T) {
        match msg {
            T::Fire(i) => self.fired.push(i),
            T::Msg(_) | T::Tick => {
                // Timer 0 has fired already: cancelling it reports false. Timer 4 is pending.
                self.cancel_results.push(ctx.cancel_timer(self.ids[0]));
                self.cancel_results.push(ctx.cancel_timer(self.ids[4]));
            }
        }
    }
}

#[test]
fn cancelled_timers_never_fire() {
    let mut sim = Sim::new(1);
    let h = sim.add_host("h").unwrap();
    let id = sim
        .spawn(h, "c", || Canceller {
            ids: vec![],
            fired: vec![],
            cancel_results: vec![],
        })
        .unwrap();
    sim.run();
    let c = sim.inspect::<Canceller>(id).unwrap();
    assert_eq!(c.fired, vec![0, 2, 6, 8]);
    assert_eq!(
        c.cancel_results,
        vec![true, true, true, true, true, false, false, true]
    );
}

/// Sends itself a message forever at the same instant: only a limit stops it.
struct Spinner;
impl Actor<T> for Spinner {
    fn on_start(&mut self, ctx: &mut Ctx<'_, T>) {
        let me = ctx.me();
        ctx.send(me, T::Msg(0));
    }
    fn on_message(&mut self, ctx: &mut Ctx<'_, T>, _: ActorId, msg: T) {
        let me = ctx.me();
        ctx.send(me, msg);
    }
}

/// Doubles its pending timers every millisecond: a runaway.
struct Doubler;
impl Actor<T> for Doubler {
    fn on_start(&mut self, ctx: &mut Ctx<'_, T>) {
        ctx.set_timer(ms(1), T::Fire(0));
    }
    fn on_message(&mut self, _: &mut Ctx<'_, T>, _: ActorId, _: T) {}
    fn on_timer(&mut self, ctx: &mut Ctx<'_, T>, _: T) {
        ctx.set_timer(ms(1), T::Fire(0));
        ctx.set_timer(ms(1), T::Fire(0));
    }
}

fn limited(limits: Limits) -> SimConfig {
    let mut c = SimConfig::new(3);
    c.limits = limits;
    c
}

#[test]
fn event_limit_ends_a_zero_time_loop() {
    let mut sim = Sim::with_config(limited(Limits {
        max_events: 10_000,
        ..Limits::default()
    }))
    .unwrap();
    let h = sim.add_host("h").unwrap();
    sim.spawn(h, "spin", || Spinner).unwrap();
    assert_eq!(sim.run(), Verdict::Limit(LimitKind::Events));
    assert_eq!(sim.stats().events, 10_000);
    assert_eq!(sim.now(), SimTime::ZERO, "the loop never advanced time");
    // The limit is sticky: stepping again reports it instead of processing more.
    assert_eq!(sim.step(), Step::Limit(LimitKind::Events));
}

#[test]
fn queue_limit_catches_a_runaway() {
    let mut sim = Sim::with_config(limited(Limits {
        max_queue: 5_000,
        ..Limits::default()
    }))
    .unwrap();
    let h = sim.add_host("h").unwrap();
    sim.spawn(h, "d", || Doubler).unwrap();
    let verdict = sim.run();
    assert_eq!(verdict, Verdict::Limit(LimitKind::Queue));
    assert!(
        verdict.to_string().contains("max_queue"),
        "the verdict names the limit: {verdict}"
    );
    assert!(sim.pending() > 5_000);
    assert!(sim.stats().events < 20_000);
}

#[test]
fn time_limit_stops_before_later_events() {
    let max_time = at_ms(50);
    let mut sim = Sim::with_config(limited(Limits {
        max_time,
        ..Limits::default()
    }))
    .unwrap();
    let h = sim.add_host("h").unwrap();
    let (rec, log) = recorder(&mut sim, h, "rec");
    scripted(
        &mut sim,
        h,
        "s",
        rec,
        vec![(ms(10), 1), (ms(50), 2), (ms(51), 3)],
    );
    // Short of the limit, run_until reaches its time as usual.
    assert_eq!(sim.run_until(at_ms(20)), Verdict::Reached);
    assert_eq!(sim.run_until(at_ms(50)), Verdict::Reached);
    assert_eq!(values(&log), vec![1, 2]);
    assert_eq!(sim.run(), Verdict::Limit(LimitKind::Time));
    assert_eq!(values(&log), vec![1, 2]);
    assert_eq!(sim.run_until(at_ms(100)), Verdict::Limit(LimitKind::Time));
    assert_eq!(sim.now(), max_time);
}

#[test]
fn run_until_processes_up_to_and_including_the_time() {
    let mut sim: Sim<T> = Sim::new(1);
    let h = sim.add_host("h").unwrap();
    let (rec, log) = recorder(&mut sim, h, "rec");
    scripted(&mut sim, h, "s", rec, vec![(ms(10), 1), (ms(20), 2)]);
    assert_eq!(sim.run_until(at_ms(10)), Verdict::Reached);
    assert_eq!(values(&log), vec![1]);
    assert_eq!(sim.now(), at_ms(10));
    assert_eq!(sim.run_until(at_ms(15)), Verdict::Reached);
    assert_eq!(
        sim.now(),
        at_ms(15),
        "the clock moves to the requested time"
    );
    assert_eq!(sim.run_until(at_ms(100)), Verdict::Drained);
    assert_eq!(values(&log), vec![1, 2]);
    assert_eq!(sim.step(), Step::Idle);
}

/// Spawns a worker at start and sends it a message; the worker answers.
struct Parent {
    child: Option<ActorId>,
    answers: u64,
}
struct Child;
impl Actor<T> for Child {
    fn on_message(&mut self, ctx: &mut Ctx<'_, T>, from: ActorId, msg: T) {
        ctx.send(from, msg);
    }
}
impl Actor<T> for Parent {
    fn on_start(&mut self, ctx: &mut Ctx<'_, T>) {
        let host = ctx.host();
        let child = ctx.spawn(host, "child", || Child);
        assert_eq!(ctx.lookup("child"), Some(child));
        ctx.send(child, T::Msg(7));
        self.child = Some(child);
    }
    fn on_message(&mut self, _: &mut Ctx<'_, T>, _: ActorId, msg: T) {
        assert_eq!(msg, T::Msg(7));
        self.answers += 1;
    }
}

#[test]
fn actors_can_spawn_actors_at_run_time() {
    let mut sim = Sim::new(1);
    let h = sim.add_host("h").unwrap();
    let p = sim
        .spawn(h, "parent", || Parent {
            child: None,
            answers: 0,
        })
        .unwrap();
    sim.run();
    assert_eq!(sim.inspect::<Parent>(p).unwrap().answers, 1);
    assert_eq!(sim.actor_count(), 2);
    assert_eq!(
        sim.name_of(sim.inspect::<Parent>(p).unwrap().child.unwrap()),
        "child"
    );
}

/// Counts starts in durable state and messages in volatile state.
struct Counting {
    starts: Durable<u64>,
    seen: u64,
}
impl Actor<T> for Counting {
    fn on_start(&mut self, _: &mut Ctx<'_, T>) {
        *self.starts.borrow_mut() += 1;
    }
    fn on_message(&mut self, _: &mut Ctx<'_, T>, _: ActorId, _: T) {
        self.seen += 1;
    }
}

#[test]
fn restart_keeps_durable_state_and_loses_volatile_state() {
    let mut sim = Sim::new(1);
    let (a, b) = (sim.add_host("a").unwrap(), sim.add_host("b").unwrap());
    let starts = Durable::new(0u64);
    let s = starts.clone();
    let c = sim
        .spawn(b, "c", move || Counting {
            starts: s.clone(),
            seen: 0,
        })
        .unwrap();
    scripted(
        &mut sim,
        a,
        "s",
        c,
        vec![(ms(1), 1), (ms(2), 2), (ms(30), 3)],
    );
    sim.run_until(at_ms(10));
    assert_eq!(sim.inspect::<Counting>(c).unwrap().seen, 2);
    sim.restart(c);
    sim.run();
    assert_eq!(*starts.borrow(), 2, "on_start ran again");
    assert_eq!(
        sim.inspect::<Counting>(c).unwrap().seen,
        1,
        "the fresh instance saw only the later message"
    );
}

#[test]
fn names_are_unique_and_hosts_must_exist() {
    let mut sim: Sim<T> = Sim::new(1);
    let h = sim.add_host("h").unwrap();
    sim.spawn(h, "x", || Spinner).unwrap();
    assert!(matches!(
        sim.spawn(h, "x", || Spinner),
        Err(faultline::SimError::DuplicateActor(_))
    ));
    assert!(matches!(
        sim.spawn(h, "", || Spinner),
        Err(faultline::SimError::EmptyName)
    ));
    assert!(matches!(
        sim.spawn(faultline::HostId(9), "y", || Spinner),
        Err(faultline::SimError::NoSuchHost(_))
    ));
    assert!(sim.add_host("h").is_err());
}

#[test]
fn time_moves_monotonically_and_durations_add_up() {
    // A timer set at t for d fires at exactly t + d (integer time: no drift from rounding).
    struct Ticker {
        ticks: Vec<SimTime>,
    }
    impl Actor<T> for Ticker {
        fn on_start(&mut self, ctx: &mut Ctx<'_, T>) {
            ctx.set_timer(SimDuration::from_nanos(333_333_333), T::Fire(0));
        }
        fn on_message(&mut self, _: &mut Ctx<'_, T>, _: ActorId, _: T) {}
        fn on_timer(&mut self, ctx: &mut Ctx<'_, T>, _: T) {
            self.ticks.push(ctx.now());
            if self.ticks.len() < 3000 {
                ctx.set_timer(SimDuration::from_nanos(333_333_333), T::Fire(0));
            }
        }
    }
    let mut sim = Sim::new(1);
    let h = sim.add_host("h").unwrap();
    let id = sim.spawn(h, "t", || Ticker { ticks: vec![] }).unwrap();
    sim.run();
    let ticks = &sim.inspect::<Ticker>(id).unwrap().ticks;
    assert_eq!(ticks.len(), 3000);
    assert_eq!(ticks[2999].as_nanos(), 3000 * 333_333_333);
}

/// A client that watches its connection to `server` from its start, and again each time a
/// reset comes (a reconnect after `retry`), recording when each reset arrived.
struct Watcher {
    server: ActorId,
    retry: Option<SimDuration>,
    resets: Durable<Vec<SimTime>>,
}
impl Actor<T> for Watcher {
    fn on_start(&mut self, ctx: &mut Ctx<'_, T>) {
        ctx.monitor(self.server, T::Msg(0));
    }
    fn on_message(&mut self, ctx: &mut Ctx<'_, T>, from: ActorId, msg: T) {
        assert_eq!(from, self.server, "a reset comes from the dead end");
        if let T::Msg(0) = msg {
            self.resets.borrow_mut().push(ctx.now());
            if let Some(after) = self.retry {
                ctx.set_timer(after, T::Tick);
            }
        }
    }
    fn on_timer(&mut self, ctx: &mut Ctx<'_, T>, _: T) {
        ctx.monitor(self.server, T::Msg(0));
    }
}

/// A server that does nothing: only its crashes matter.
struct Idle;
impl Actor<T> for Idle {
    fn on_message(&mut self, _: &mut Ctx<'_, T>, _: ActorId, _: T) {}
}

/// Two hosts 5 ms apart, an idle server on one and a watcher on the other.
fn watched(retry: Option<SimDuration>) -> (Sim<T>, ActorId, ActorId, Durable<Vec<SimTime>>) {
    let mut sim = Sim::new(1);
    let (a, b) = (sim.add_host("a").unwrap(), sim.add_host("b").unwrap());
    let spec = faultline::LinkSpec::constant(ms(5));
    sim.link(a, b, spec.clone()).unwrap();
    sim.link(b, a, spec).unwrap();
    let server = sim.spawn(a, "server", || Idle).unwrap();
    let resets = Durable::new(Vec::new());
    let r = resets.clone();
    let client = sim
        .spawn(b, "client", move || Watcher {
            server,
            retry,
            resets: r.clone(),
        })
        .unwrap();
    (sim, server, client, resets)
}

#[test]
fn a_crash_resets_the_connections_watching_it_one_trip_later() {
    let (mut sim, server, _, resets) = watched(None);
    sim.run_until(at_ms(100));
    assert!(resets.borrow().is_empty(), "nothing happened yet");
    sim.crash(server);
    sim.run_until(at_ms(200));
    assert_eq!(
        *resets.borrow(),
        [at_ms(105)],
        "one trip from the server's host"
    );
    // One-shot: a restart and a second crash reset nothing the client did not watch again.
    sim.restart(server);
    sim.crash(server);
    sim.run_until(at_ms(300));
    assert_eq!(resets.borrow().len(), 1);
}

#[test]
fn a_refused_connection_is_retried_until_the_server_is_back() {
    // Watching a server that is down is refused by its host; the client retries every 50 ms.
    let (mut sim, server, _, resets) = watched(Some(ms(50)));
    sim.run_until(at_ms(10));
    sim.crash(server);
    sim.run_until(at_ms(300));
    let refused = resets.borrow().clone();
    // The crash's reset at 15 ms, then a refusal a round trip (2 x 5 ms) after each retry.
    let expected: Vec<SimTime> = (0..5).map(|i| at_ms(15 + 60 * i)).collect();
    assert_eq!(refused, expected);
    sim.restart(server);
    sim.run_until(at_ms(1000));
    assert_eq!(
        resets.borrow().len(),
        refused.len(),
        "connected: no more resets"
    );
}

/// An attempt that reaches the server's host after the server is back connects: nothing comes
/// back, and the server's next crash resets the new connection. One cut off on its way gets no
/// answer at all, as a SYN into a partition gets none.
#[test]
fn a_connection_attempt_that_arrives_after_the_restart_connects() {
    let (mut sim, server, _, resets) = watched(Some(ms(50)));
    sim.run_until(at_ms(10));
    sim.crash(server);
    // The crash's reset at 15 ms; the retry leaves at 65 ms and arrives at 70 ms.
    sim.run_until(at_ms(67));
    sim.restart(server);
    sim.run_until(at_ms(200));
    assert_eq!(*resets.borrow(), [at_ms(15)], "connected, not refused");
    sim.crash(server);
    sim.run_until(at_ms(210));
    assert_eq!(
        *resets.borrow(),
        [at_ms(15), at_ms(205)],
        "the new connection reset"
    );

    let (mut sim, server, _, resets) = watched(Some(ms(50)));
    sim.run_until(at_ms(10));
    sim.crash(server);
    sim.run_until(at_ms(20));
    let (a, b) = (faultline::HostId(0), faultline::HostId(1));
    sim.net_mut().cut(b, a, faultline::CutMode::Drop);
    sim.run_until(at_ms(500));
    assert_eq!(*resets.borrow(), [at_ms(15)], "the attempt never arrived");
}

#[test]
fn a_cut_stops_the_reset() {
    let (mut sim, server, _, resets) = watched(None);
    sim.run_until(at_ms(10));
    let (a, b) = (faultline::HostId(0), faultline::HostId(1));
    sim.net_mut().cut(a, b, faultline::CutMode::Drop);
    sim.crash(server);
    sim.run_until(at_ms(100));
    assert!(resets.borrow().is_empty(), "no RST crosses a partition");
}

#[test]
fn a_restarted_watcher_has_none_of_its_old_connections() {
    let (mut sim, server, client, resets) = watched(None);
    sim.run_until(at_ms(10));
    // The restarted client watches the server again from its start; only that one fires.
    sim.restart(client);
    sim.run_until(at_ms(20));
    sim.crash(server);
    sim.run_until(at_ms(100));
    assert_eq!(*resets.borrow(), [at_ms(25)]);
    // A client that crashed and stays down gets nothing (and nothing is delivered to it).
    let (mut sim, server, client, resets) = watched(None);
    sim.run_until(at_ms(10));
    sim.crash(client);
    sim.crash(server);
    sim.run_until(at_ms(100));
    assert!(resets.borrow().is_empty());
    assert_eq!(sim.stats().dropped_down, 0, "no reset was even sent");
}
