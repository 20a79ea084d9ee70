//! Rolling restarts of a service `Deployment` (Kubernetes' RollingUpdate strategy with pod
//! termination): every pod replaced once, within the surge and unavailability bounds; a
//! terminating pod drains before it exits; a restarted or scaled-up pod starts cold. Built
//! from RON text, as a scenario writes it.

use faultline::engine::trace::TraceKind;
use faultline::model::rpc::deployment::DeploymentConfig;
use faultline::model::rpc::{Client, ClientConfig, Rpc, from_ron};
use faultline::{Sim, SimConfig, SimDuration, SimTime};

use crate::support::{counter, gauge, ms};

fn secs(n: u64) -> SimTime {
    SimTime::from_nanos(n * 1_000_000_000)
}

/// A client sending `arrivals` with `timeout` to the deployment `api` built from
/// `deployment` (RON).
fn system(seed: u64, arrivals: &str, timeout: &str, deployment: &str) -> Sim<Rpc> {
    let config = SimConfig {
        record_trace: true,
        ..SimConfig::new(seed)
    };
    let mut sim = Sim::with_config(config).expect("a valid config");
    let h = sim.add_host("h").expect("fresh host");
    crate::support::spawn_deployment(&mut sim, h, "api", deployment);
    let client: ClientConfig = from_ron(&format!(
        r#"(target: "api", arrivals: {arrivals}, timeout: Some("{timeout}"))"#
    ))
    .expect("valid client");
    sim.spawn(h, "users", move || {
        Client::<Rpc>::new(client.clone()).expect("valid")
    })
    .expect("unique");
    sim
}

/// The kills in the trace: (time, pod, detail).
fn kills(sim: &Sim<Rpc>) -> Vec<(SimTime, String, String)> {
    (sim.trace().records().expect("recorded").iter())
        .filter(|r| r.kind == TraceKind::Kill)
        .map(|r| {
            let pod = r.actor.clone().expect("a victim");
            (SimTime::from_nanos(r.time_ns), pod, r.detail.clone())
        })
        .collect()
}

/// Runs to `until` in steps of `step`, returning the least and most of each gauge seen.
fn ranges(
    sim: &mut Sim<Rpc>,
    names: &[&str],
    until: SimTime,
    step: SimDuration,
) -> Vec<(f64, f64)> {
    let mut r = vec![(f64::INFINITY, f64::NEG_INFINITY); names.len()];
    while sim.now() < until {
        let next = sim.now().saturating_add(step).min(until);
        sim.run_until(next);
        for (name, (lo, hi)) in names.iter().zip(&mut r) {
            let v = gauge(sim, name);
            *lo = lo.min(v);
            *hi = hi.max(v);
        }
    }
    r
}

/// Four pods of 4 workers at 10 ms (400/s each) under 200/s: far from saturated.
fn four_pods(rollout: &str) -> String {
    format!(
        r#"(
            replicas: 4,
            service: (workers: 4, kinds: [(name: "page", service: Const("10ms"))]),
            provisioning: Const("5s"),
            rollout: Some({rollout}),
        )"#
    )
}

#[test]
fn surge_zero_restarts_every_pod_once_in_place_one_at_a_time() {
    let mut sim = system(
        1,
        r#"Constant("200/s")"#,
        "1s",
        &four_pods(r#"(at: "10s", max_surge: 0, max_unavailable: 1)"#),
    );
    sim.run_until(secs(10) - SimDuration::from_nanos(1));
    assert_eq!(gauge(&sim, "api.rollout_in_progress"), 0.0);
    assert!(kills(&sim).is_empty());
    // Never more than one pod out of rotation, and one is out at times.
    let r = ranges(
        &mut sim,
        &["api.replicas_ready", "api.replicas"],
        secs(40),
        ms(1),
    );
    assert_eq!(r, [(3.0, 4.0), (4.0, 4.0)], "ready, created");
    assert_eq!(gauge(&sim, "api.rollout_in_progress"), 0.0);
    assert_eq!(gauge(&sim, "api.replicas_ready"), 4.0);
    assert_eq!(counter(&sim, "api.restarts_total"), 4);
    // Each pod once, the highest first, each restarted in place 5 s after it is killed; the
    // next is terminated once the previous is back (in the same instant it rejoins), and
    // each drains its last 10 ms request first.
    let k = kills(&sim);
    let pods: Vec<&str> = k.iter().map(|(_, p, _)| p.as_str()).collect();
    assert_eq!(pods, ["api-3", "api-2", "api-1", "api-0"]);
    assert!(
        k.iter().all(|(_, _, d)| d == "killed, restart after 5s"),
        "{k:?}"
    );
    for w in k.windows(2) {
        let gap = w[1].0.saturating_duration_since(w[0].0);
        let (lo, hi) = (SimDuration::from_secs(5), SimDuration::from_millis(5_011));
        assert!(
            lo < gap && gap <= hi,
            "5 s down + up to one request drained: {gap}"
        );
    }
    assert!(k[0].0 >= secs(10) && k[0].0 <= secs(10) + SimDuration::from_millis(10));
    // In progress from 10 s until the last pod is back in the endpoints (5 s + 1 ns after
    // its kill), and only then.
    let busy = sim
        .metrics()
        .gauge_integral("api.rollout_in_progress")
        .expect("registered");
    let expected = k[3].0.saturating_add(SimDuration::from_secs(5)).as_nanos() + 1 - 10_000_000_000;
    assert_eq!(busy, expected as f64);
    // A drained pod cut nothing, and every request was served.
    assert_eq!(counter(&sim, "api.killed_requests_total"), 0);
    assert_eq!(counter(&sim, "api.grace_expired_total"), 0);
    assert_eq!(counter(&sim, "users.error_total"), 0);
    // Every pod serves again after its restart.
    let before: Vec<u64> = (0..4)
        .map(|i| counter(&sim, &format!("api.forwarded_total.api-{i}")))
        .collect();
    sim.run_until(secs(41));
    for (i, b) in before.iter().enumerate() {
        let now = counter(&sim, &format!("api.forwarded_total.api-{i}"));
        assert!(now >= b + 45, "api-{i}: {b} -> {now}");
    }
}

#[test]
fn surge_one_keeps_every_pod_in_rotation_and_uses_one_more_slot() {
    let mut sim = system(
        1,
        r#"Constant("200/s")"#,
        "1s",
        &four_pods(r#"(at: "10s", max_surge: 1, max_unavailable: 0)"#),
    );
    sim.run_until(secs(10));
    let r = ranges(
        &mut sim,
        &["api.replicas_ready", "api.replicas"],
        secs(45),
        ms(1),
    );
    // Never fewer than the 4 desired ready (an old pod leaves in the instant its replacement
    // is ready), and 5 pods while the surge pod starts.
    assert_eq!(r, [(4.0, 4.0), (4.0, 5.0)], "ready, created");
    assert_eq!(gauge(&sim, "api.rollout_in_progress"), 0.0);
    assert_eq!(counter(&sim, "api.restarts_total"), 4);
    // The surge pod goes in the fifth slot; each old pod then restarts in place as the next
    // new one, and the last old pod's slot is freed (its process restarted idle).
    let k = kills(&sim);
    let got: Vec<(&str, &str)> = k.iter().map(|(_, p, d)| (p.as_str(), d.as_str())).collect();
    let back = "killed, restart after 5s";
    assert_eq!(
        got,
        [
            ("api-4", back),
            ("api-3", back),
            ("api-2", back),
            ("api-1", back),
            ("api-0", "killed, restart after 0s"),
        ]
    );
    assert_eq!(gauge(&sim, "api.replicas"), 4.0);
    assert_eq!(counter(&sim, "users.error_total"), 0);
    // The freed slot gets nothing more.
    let freed = counter(&sim, "api.forwarded_total.api-0");
    sim.run_until(secs(50));
    assert_eq!(counter(&sim, "api.forwarded_total.api-0"), freed);
    assert!(counter(&sim, "api.forwarded_total.api-4") > 1_000);
}

/// One pod of 4 workers at 2 s a request, 1/s: each pod holds about two requests at a time.
fn slow_pods(grace: &str) -> String {
    format!(
        r#"(
            replicas: 2,
            service: (workers: 4, kinds: [(name: "page", service: Const("2s"))]),
            provisioning: Const("5s"),
            rollout: Some((at: "10s", max_surge: 0, max_unavailable: 1,
                           termination_grace: "{grace}")),
        )"#
    )
}

#[test]
fn a_terminating_pod_gets_no_new_traffic_and_finishes_what_it_holds() {
    let mut sim = system(3, r#"Constant("2/s")"#, "5s", &slow_pods("30s"));
    sim.run_until(secs(10));
    let forwarded = counter(&sim, "api.forwarded_total.api-1");
    let completed = counter(&sim, "api-1.completed_total");
    let held = forwarded - completed;
    assert!(
        held >= 1,
        "api-1 holds requests at 10 s: {forwarded} sent, {completed} done"
    );
    sim.run_until(secs(12) + SimDuration::from_millis(1));
    // It left the endpoints at 10 s: nothing more was sent to it, and within its 2 s of work
    // it answered everything it held, then exited (killed idle, restarted in place).
    assert_eq!(counter(&sim, "api.forwarded_total.api-1"), forwarded);
    assert_eq!(counter(&sim, "api-1.completed_total"), forwarded);
    let k = kills(&sim);
    assert_eq!(k.len(), 1, "{k:?}");
    assert_eq!(k[0].1, "api-1");
    assert!(k[0].0 > secs(10) && k[0].0 <= secs(12), "{k:?}");
    sim.run_until(secs(40));
    assert_eq!(counter(&sim, "api.grace_expired_total"), 0);
    assert_eq!(counter(&sim, "api.killed_requests_total"), 0);
    assert_eq!(counter(&sim, "users.error_total"), 0);
    assert_eq!(counter(&sim, "api.restarts_total"), 2);
}

#[test]
fn a_pod_killed_at_the_end_of_its_grace_cuts_what_it_holds() {
    let mut sim = system(3, r#"Constant("2/s")"#, "5s", &slow_pods("500ms"));
    sim.run_until(secs(40));
    // Each pod held work at its termination that needs up to 2 s: both are killed at 500 ms,
    // and the requests they held are answered 503 at once (their connections are reset).
    assert_eq!(counter(&sim, "api.grace_expired_total"), 2);
    let cut = counter(&sim, "api.killed_requests_total");
    assert!(cut >= 2, "{cut}");
    assert_eq!(counter(&sim, "users.error_total"), cut);
    assert_eq!(counter(&sim, "users.timeout_total"), 0);
    let k = kills(&sim);
    assert_eq!(k[0].0, secs(10) + SimDuration::from_millis(500), "{k:?}");
}

/// Two pods of 2 workers at Exp(10 ms), 400/s of capacity, under 300/s, a 50-request queue.
fn tight(rollout: &str) -> String {
    format!(
        r#"(
            replicas: 2,
            service: (workers: 2, queue_capacity: Some(50),
                      kinds: [(name: "page", service: Exp(mean: "10ms"))]),
            provisioning: Const("5s"),
            rollout: Some({rollout}),
        )"#
    )
}

#[test]
fn without_surge_a_tight_deployment_fails_requests_during_the_rollout_and_with_surge_it_does_not() {
    let run = |seed, rollout: &str| {
        let mut sim = system(seed, r#"Poisson("300/s")"#, "1s", &tight(rollout));
        sim.run_until(secs(40));
        assert_eq!(gauge(&sim, "api.rollout_in_progress"), 0.0);
        assert_eq!(counter(&sim, "api.restarts_total"), 2);
        let (ok, sent) = (
            counter(&sim, "users.ok_total"),
            counter(&sim, "users.sent_total"),
        );
        let failed = counter(&sim, "users.error_total") + counter(&sim, "users.timeout_total");
        (failed, ok as f64 / sent as f64)
    };
    for seed in 1..=10 {
        // One pod (200/s) for 300/s during each of two 5 s restarts: about 100/s of the
        // excess is refused once its queue is full, ~1000 requests, 8% of the 12 000 sent.
        let (failed, served) = run(seed, r#"(at: "10s", max_surge: 0, max_unavailable: 1)"#);
        assert!(failed > 500, "seed {seed}: surge 0, {failed} failed");
        assert!(served < 0.95, "seed {seed}: surge 0 served {served}");
        // A surge pod first: never fewer than two pods, at 75% load. Nothing fails (the
        // few requests not answered are those still in flight at the end).
        let (failed, served) = run(seed, r#"(at: "10s", max_surge: 1, max_unavailable: 0)"#);
        assert_eq!(failed, 0, "seed {seed}: surge 1");
        assert!(served > 0.998, "seed {seed}: surge 1 served {served}");
    }
}

/// The busy-worker time of `pod` between now and `secs` later, per second.
fn busy_over(sim: &mut Sim<Rpc>, pods: &[&str], secs_: u64) -> Vec<f64> {
    let integral = |sim: &Sim<Rpc>, p: &str| {
        let name = format!("{p}.busy_workers");
        sim.metrics().gauge_integral(&name).expect("registered")
    };
    let before: Vec<f64> = pods.iter().map(|p| integral(sim, p)).collect();
    let until = sim.now().saturating_add(SimDuration::from_secs(secs_));
    sim.run_until(until);
    pods.iter()
        .zip(before)
        .map(|(p, b)| (integral(sim, p) - b) / (secs_ as f64 * 1e9))
        .collect()
}

const WARMUP: &str = r#"warmup: Some((duration: "20s", factor: 5.0))"#;

#[test]
fn a_restarted_pod_starts_cold() {
    // Warm-up: work 5x slower at a start, back to normal over 20 s. Round robin gives each of
    // the 4 pods 50/s of 10 ms requests: 0.5 busy workers when warm.
    let mut sim = system(
        1,
        r#"Constant("200/s")"#,
        "1s",
        &format!(
            r#"(
                replicas: 4,
                service: (workers: 4, kinds: [(name: "page", service: Const("10ms"))], {WARMUP}),
                provisioning: Const("5s"),
                rollout: Some((at: "30s", max_surge: 0, max_unavailable: 1)),
            )"#
        ),
    );
    // api-3 is terminated at 30 s and back at 35 s, when api-2 goes; api-0 is still the one
    // from the start.
    sim.run_until(secs(35) + SimDuration::from_millis(20));
    let busy = busy_over(&mut sim, &["api-3", "api-0"], 1);
    // Three endpoints at 66.7/s each; just restarted, about 5x the work (the factor falls by
    // 5% over the second: ~4.9x).
    let ratio = busy[0] / busy[1];
    assert!((0.62..0.72).contains(&busy[1]), "api-0 warm: {busy:?}");
    assert!((4.5..5.0).contains(&ratio), "api-3 cold: {busy:?}");
}

#[test]
fn a_scaled_up_pod_starts_cold_when_it_is_provisioned() {
    // A scheduled minimum of 2 from 10 s: the 15 s poll creates a second pod, ready at 75 s,
    // long after a warm-up from the start of the run would have ended. 100/s on 8 workers:
    // far from saturated even cold.
    let mut sim = system(
        3,
        r#"Constant("100/s")"#,
        "1s",
        &format!(
            r#"(
                replicas: 1,
                service: (workers: 8, kinds: [(name: "page", service: Const("10ms"))], {WARMUP}),
                autoscaler: Some((metric: Utilisation(target: 0.5), min_replicas: 1,
                                  max_replicas: 4, polling_interval: "15s")),
                schedule: [(from: "10s", until: "10m", replicas: 2)],
                provisioning: Const("60s"),
            )"#
        ),
    );
    sim.run_until(secs(75) + SimDuration::from_millis(10));
    assert_eq!(gauge(&sim, "api.replicas_ready"), 2.0);
    let k = kills(&sim);
    assert_eq!(
        k,
        [(secs(15), "api-1".into(), "killed, restart after 1m".into())]
    );
    let busy = busy_over(&mut sim, &["api-1", "api-0"], 1);
    let ratio = busy[0] / busy[1];
    assert!((0.45..0.55).contains(&busy[1]), "api-0 warm: {busy:?}");
    assert!((4.5..5.0).contains(&ratio), "api-1 cold: {busy:?}");
}

#[test]
fn pods_the_hpa_adds_during_a_rollout_are_new_and_not_restarted() {
    // Two pods, rolled one at a time from 10 s; a scheduled minimum of 4 from 12 s makes the
    // 15 s poll add two pods while api-1's replacement is starting. The bounds follow the
    // count (4 desired, 3 available at least): api-0 goes only once the new pods are ready.
    let mut sim = system(
        1,
        r#"Constant("100/s")"#,
        "1s",
        r#"(
            replicas: 2,
            service: (workers: 4, kinds: [(name: "page", service: Const("10ms"))]),
            autoscaler: Some((metric: Utilisation(target: 0.5), min_replicas: 2,
                              max_replicas: 4, polling_interval: "15s")),
            schedule: [(from: "12s", until: "10m", replicas: 4)],
            provisioning: Const("5s"),
            rollout: Some((at: "10s", max_surge: 0, max_unavailable: 1)),
        )"#,
    );
    sim.run_until(secs(60));
    assert_eq!(gauge(&sim, "api.rollout_in_progress"), 0.0);
    assert_eq!(gauge(&sim, "api.replicas_ready"), 4.0);
    // Only the two old pods count as the rollout's restarts; every pod was started once.
    assert_eq!(counter(&sim, "api.restarts_total"), 2);
    assert_eq!(counter(&sim, "api.scale_ups_total"), 2);
    let k = kills(&sim);
    let got: Vec<(u64, &str)> = (k.iter())
        .map(|(t, p, _)| (t.as_nanos() / 1_000_000_000, p.as_str()))
        .collect();
    assert_eq!(
        got,
        [(10, "api-1"), (15, "api-2"), (15, "api-3"), (20, "api-0")]
    );
    assert_eq!(counter(&sim, "users.error_total"), 0);
}

#[test]
fn the_rollout_bounds_follow_kubernetes_and_bad_fields_are_named() {
    let c: DeploymentConfig = from_ron(&four_pods(r#"(at: "1m")"#)).expect("valid");
    let r = c.rollout.clone().expect("set");
    assert_eq!(r.termination_grace, SimDuration::from_secs(30));
    assert_eq!(r.min_ready, SimDuration::ZERO);
    // 25% of 4 is one of each; surge rounds up, unavailable down; both 0 by rounding: 1
    // unavailable (ResolveFenceposts).
    assert_eq!(r.fenceposts(4), (1, 1));
    assert_eq!(r.fenceposts(10), (3, 2));
    assert_eq!(r.fenceposts(1), (1, 0));
    assert_eq!(c.slots(), 5, "4 pods and one surge slot");
    let c: DeploymentConfig = from_ron(&four_pods(
        r#"(at: "1m", max_surge: 0, max_unavailable: "25%")"#,
    ))
    .expect("valid");
    assert_eq!(c.rollout.as_ref().expect("set").fenceposts(3), (0, 1));
    assert_eq!(c.slots(), 4);

    let field = |rollout: &str| {
        from_ron::<DeploymentConfig>(&four_pods(rollout))
            .expect_err("invalid")
            .field()
            .map(str::to_string)
    };
    for (rollout, expected) in [
        (
            r#"(at: "1m", max_surge: 0, max_unavailable: 0)"#,
            "rollout.max_unavailable",
        ),
        (
            r#"(at: "1m", max_surge: "0%", max_unavailable: "0%")"#,
            "rollout.max_unavailable",
        ),
        (r#"(at: "1m", max_surge: "a lot")"#, "rollout.max_surge"),
        (
            r#"(at: "1m", max_unavailable: "150%")"#,
            "rollout.max_unavailable",
        ),
        (
            r#"(at: "1m", max_unavailable: "25")"#,
            "rollout.max_unavailable",
        ),
        (
            r#"(at: "1m", restart_time: Some(Const(3)))"#,
            "rollout.restart_time",
        ),
    ] {
        assert_eq!(field(rollout).as_deref(), Some(expected), "{rollout}");
    }
    // Unknown and malformed fields are refused by the parser.
    assert!(from_ron::<DeploymentConfig>(&four_pods(r#"(at: "1m", surge: 1)"#)).is_err());
    assert!(
        from_ron::<DeploymentConfig>(&four_pods(r#"(at: "1m", termination_grace: "-1s")"#))
            .is_err()
    );
}

#[test]
fn a_rollout_run_is_deterministic() {
    let rollout = r#"(at: "10s", max_surge: 1, max_unavailable: 1, restart_time: Some(Uniform(low: "2s", high: "8s")))"#;
    let hash = |seed| {
        let mut sim = system(seed, r#"Poisson("300/s")"#, "1s", &tight(rollout));
        sim.run_until(secs(40));
        (
            sim.trace_hash(),
            counter(&sim, "users.ok_total"),
            kills(&sim),
        )
    };
    let a = hash(7);
    assert_eq!(a, hash(7));
    assert_ne!(a.0, hash(8).0);
}
