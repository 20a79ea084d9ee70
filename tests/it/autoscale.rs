//! A service `Deployment` end to end: pods spawned at the start, a balancer restricted to the
//! endpoints, and an HPA that adds pods which take traffic only once provisioned and removes
//! pods which then get none. Components are built from RON text, as a scenario writes them.

use faultline::model::rpc::deployment::DeploymentConfig;
use faultline::model::rpc::{Client, ClientConfig, Rpc, from_ron};
use faultline::scenario::Scenario;
use faultline::{Sim, SimConfig, SimTime};

use crate::support::{counter, gauge};

fn secs(n: u64) -> SimTime {
    SimTime::from_nanos(n * 1_000_000_000)
}

/// A client at `rate` in front of the deployment `api` built from `deployment` (RON).
fn system(seed: u64, rate: &str, deployment: &str) -> Sim<Rpc> {
    system_with(seed, rate, deployment, |_, _| {})
}

/// [`system`], with `before` spawning what the pods call (on the same host) first.
fn system_with(
    seed: u64,
    rate: &str,
    deployment: &str,
    before: impl FnOnce(&mut Sim<Rpc>, faultline::HostId),
) -> Sim<Rpc> {
    let mut sim = Sim::with_config(SimConfig::new(seed)).expect("a valid config");
    let h = sim.add_host("h").expect("fresh host");
    before(&mut sim, h);
    crate::support::spawn_deployment(&mut sim, h, "api", deployment);
    let client: ClientConfig = from_ron(&format!(
        r#"(target: "api", arrivals: Poisson("{rate}"), timeout: Some("1s"))"#
    ))
    .expect("valid client");
    sim.spawn(h, "users", move || {
        Client::<Rpc>::new(client.clone()).expect("valid")
    })
    .expect("unique");
    sim
}

/// Two workers at 10 ms a pod: 200 requests/s each. One pod at 150/s is 75% busy, against a
/// 50% target: the first poll (15 s) asks for ceil(1.5 * 1) = 2 pods.
const SCALE_UP: &str = r#"(
    replicas: 1,
    service: (workers: 2, kinds: [(name: "page", service: Const("10ms"))]),
    autoscaler: Some((metric: Utilisation(target: 0.5), min_replicas: 1, max_replicas: 4,
                      polling_interval: "15s")),
    provisioning: Const("60s"),
)"#;

#[test]
fn a_scaled_up_pod_takes_traffic_only_once_provisioned() {
    let mut sim = system(3, "150/s", SCALE_UP);
    sim.run_until(secs(15) - faultline::SimDuration::from_nanos(1));
    assert_eq!(gauge(&sim, "api.replicas"), 1.0);
    sim.run_until(secs(16));
    // Created at the 15 s poll, not ready: every request still goes to api-0.
    assert_eq!(gauge(&sim, "api.replicas"), 2.0);
    assert_eq!(gauge(&sim, "api.replicas_ready"), 1.0);
    assert_eq!(gauge(&sim, "api.desired_replicas"), 2.0);
    let usage = gauge(&sim, "api.usage");
    assert!((0.7..0.8).contains(&usage), "75% busy, measured {usage}");
    // The polls while it starts count it as idle: 0.75 * 1 / 2 pods is below the target,
    // which keeps the count (no third pod) until it is ready at 15 s + 60 s.
    sim.run_until(secs(75) - faultline::SimDuration::from_nanos(1));
    assert_eq!(gauge(&sim, "api.replicas"), 2.0);
    assert_eq!(gauge(&sim, "api.replicas_ready"), 1.0);
    assert_eq!(counter(&sim, "api.forwarded_total.api-1"), 0);
    assert_eq!(counter(&sim, "api-1.completed_total"), 0);
    let before = counter(&sim, "api.forwarded_total.api-0");
    sim.run_until(secs(85));
    assert_eq!(gauge(&sim, "api.replicas_ready"), 2.0);
    // Round robin over two endpoints: half of ~1500 requests in the 10 s each.
    let new = counter(&sim, "api.forwarded_total.api-1");
    let old = counter(&sim, "api.forwarded_total.api-0") - before;
    assert!(new > 600 && old > 600, "api-1 {new}, api-0 {old}");
    assert!(
        new.abs_diff(old) <= 1,
        "round robin alternates: {new} vs {old}"
    );
    // The pods that were never created got nothing.
    for pod in ["api-2", "api-3"] {
        assert_eq!(counter(&sim, &format!("api.forwarded_total.{pod}")), 0);
    }
    assert_eq!(counter(&sim, "api.scale_ups_total"), 1);
}

/// Two workers a pod, each request 2 ms of CPU and then a 48 ms call to `db`, or the same
/// 50 ms as CPU alone, at 35 requests/s on one pod: either way the workers hold a request 87%
/// of the time. Blocked on the call, a worker uses no CPU: the HPA on utilisation (50%) sees
/// 35 x 2 ms = 3.5% of the pod's two cores and keeps one pod, where the CPU-bound pod's 87%
/// asks for a second. (An HPA on CPU does not scale a service whose dependency is slow.)
#[test]
fn workers_waiting_on_a_dependency_use_no_cpu() {
    let run = |kinds: &str| {
        let deployment = format!(
            r#"(replicas: 1, service: (workers: 2, kinds: [{kinds}]),
                autoscaler: Some((metric: Utilisation(target: 0.5), min_replicas: 1,
                                  max_replicas: 4, polling_interval: "15s")))"#
        );
        let mut sim = system_with(4, "35/s", &deployment, |sim, h| {
            let db: faultline::model::rpc::ServiceConfig =
                from_ron(r#"(workers: 100, kinds: [(name: "q", service: Const("48ms"))])"#)
                    .expect("valid db");
            sim.spawn(h, "db", move || {
                faultline::model::rpc::Service::<Rpc>::new(db.clone()).expect("valid")
            })
            .expect("unique");
        });
        sim.run_until(secs(16));
        let busy = sim
            .metrics()
            .gauge_integral("api-0.busy_workers")
            .unwrap_or(0.0)
            / 16e9;
        (
            gauge(&sim, "api.usage"),
            gauge(&sim, "api.desired_replicas"),
            busy,
        )
    };
    let (io_usage, io_desired, io_busy) =
        run(r#"(name: "page", service: Const("2ms"), calls: [(target: "db", timeout: "1s")])"#);
    let (cpu_usage, cpu_desired, cpu_busy) = run(r#"(name: "page", service: Const("50ms"))"#);
    // Both pods' workers are as full (1.75 of 2 on average, within Poisson noise).
    for busy in [io_busy, cpu_busy] {
        assert!((1.4..2.0).contains(&busy), "busy workers {busy}");
    }
    assert!(
        (0.02..0.05).contains(&io_usage),
        "3.5% CPU, measured {io_usage}"
    );
    assert_eq!(io_desired, 1.0, "an idle-looking pod is not scaled");
    assert!(
        (0.75..1.0).contains(&cpu_usage),
        "87% CPU, measured {cpu_usage}"
    );
    assert_eq!(cpu_desired, 2.0);
}

#[test]
fn a_scaled_down_pod_gets_no_more_traffic() {
    // Three pods at 20/s are ~3% busy: with no scale-down window, the first poll removes two
    // (the HPA's default policy allows 100% per 15 s) and the minimum keeps one.
    let mut sim = system(
        5,
        "20/s",
        r#"(
            replicas: 3,
            service: (workers: 2, kinds: [(name: "page", service: Const("10ms"))]),
            autoscaler: Some((metric: Utilisation(target: 0.5), min_replicas: 1,
                              max_replicas: 3, polling_interval: "15s",
                              scale_down: (stabilization_window: Some("0s")))),
        )"#,
    );
    sim.run_until(secs(15) - faultline::SimDuration::from_nanos(1));
    assert_eq!(gauge(&sim, "api.replicas_ready"), 3.0);
    let at_poll: Vec<u64> = (0..3)
        .map(|i| counter(&sim, &format!("api.forwarded_total.api-{i}")))
        .collect();
    assert!(
        at_poll.iter().all(|&n| n > 50),
        "all three served: {at_poll:?}"
    );
    sim.run_until(secs(16));
    assert_eq!(gauge(&sim, "api.replicas_ready"), 1.0);
    assert_eq!(counter(&sim, "api.scale_downs_total"), 2);
    sim.run_until(secs(120));
    // The newest pods were removed; nothing more went to them (a request in flight at the
    // poll could have been forwarded just before it, so the counts are those at the poll).
    for (i, &then) in at_poll.iter().enumerate().skip(1) {
        let now = counter(&sim, &format!("api.forwarded_total.api-{i}"));
        assert_eq!(now, then, "api-{i}");
    }
    let survivor = counter(&sim, "api.forwarded_total.api-0") - at_poll[0];
    assert!(
        survivor > 1_500,
        "api-0 took all of ~2100 requests: {survivor}"
    );
    // And every one was served.
    assert_eq!(counter(&sim, "users.error_total"), 0);
}

#[test]
fn a_deployment_run_is_deterministic() {
    let hash = |seed| {
        let mut sim = system(seed, "180/s", SCALE_UP);
        sim.run_until(secs(120));
        (sim.trace_hash(), counter(&sim, "users.ok_total"))
    };
    assert_eq!(hash(9), hash(9));
    assert_ne!(hash(9).0, hash(10).0);
}

#[test]
fn bad_configs_name_the_field() {
    let field = |ron: &str| {
        from_ron::<DeploymentConfig>(ron)
            .expect_err("invalid")
            .field()
            .map(str::to_string)
    };
    let service = r#"service: (workers: 2, kinds: [(name: "page", service: Const("10ms"))])"#;
    assert_eq!(
        field(&format!(
            "(replicas: 1, {service}, autoscaler: Some((metric: Cpu(target: 0.5), \
             min_replicas: 5, max_replicas: 4)))"
        ))
        .as_deref(),
        Some("autoscaler.max_replicas")
    );
    assert_eq!(
        field(&format!(
            "(replicas: 1, {service}, autoscaler: Some((metric: Lag(per_replica: 10))))"
        ))
        .as_deref(),
        Some("autoscaler.metric")
    );
    assert_eq!(
        field(&format!("(replicas: 0, {service})")).as_deref(),
        Some("replicas")
    );
    assert_eq!(
        field(&format!(
            "(replicas: 1, {service}, schedule: [(from: \"1m\", until: \"2m\", replicas: 3)])"
        ))
        .as_deref(),
        Some("schedule")
    );
    assert_eq!(
        field(&format!(
            "(replicas: 1, {service}, autoscaler: Some((metric: Cpu(target: 0.5), \
             min_replicas: 1, max_replicas: 4)), \
             schedule: [(from: \"1m\", until: \"2m\", replicas: 5)])"
        ))
        .as_deref(),
        Some("schedule[0].replicas")
    );
    assert_eq!(
        field(&format!(
            "(replicas: 1, {service}, balancer: (health: Some((kind: \"healthz\"))))"
        ))
        .as_deref(),
        Some("balancer.health.kind")
    );
    assert_eq!(
        field(&format!("(replicas: 1, {service}, provisioning: Const(3))")).as_deref(),
        Some("provisioning")
    );

    // In a scenario: a pod's call to a component that does not exist is reported at its
    // path, and so is a fault aimed at a pod the deployment can never have.
    let scenario = |api: &str, faults: &str| {
        let text = format!(
            r#"Scenario(name: "t", about: "t", seed: 1, duration: "1m",
                components: {{
                    "users": Client(target: "api", arrivals: Poisson("10/s")),
                    "api": Deployment({api}),
                }},
                faults: [{faults}],
                checks: [AtMost(name: "c", value: "users.error_total", max: 0)],
            )"#
        );
        match Scenario::from_str(&text, "t.ron") {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    };
    let calls_nowhere = r#"replicas: 1, service: (workers: 2, kinds: [(name: "page",
        service: Const("1ms"), calls: [(target: "db", timeout: "1s")])])"#;
    let e = scenario(calls_nowhere, "");
    assert!(
        e.contains("components.api.service.kinds[0].calls[0].target") && e.contains("`db`"),
        "{e}"
    );
    let ok = r#"replicas: 1, service: (workers: 2, kinds: [(name: "page",
        service: Const("1ms"))]), autoscaler: Some((metric: Cpu(target: 0.5), min_replicas: 1,
        max_replicas: 3))"#;
    assert_eq!(
        scenario(ok, r#"(at: "10s", fault: Crash(target: "api-2"))"#),
        "",
        "api-2 is a pod slot (max_replicas 3)"
    );
    let e = scenario(ok, r#"(at: "10s", fault: Crash(target: "api-3"))"#);
    assert!(e.contains("api-3"), "{e}");
}

/// autoscale_spike's arrivals with the peak at `{}` requests a second, reached at once at 5m.
const PEAK: &str = r#"Schedule([("0s", "100/s"), ("5m", "{}/s"), ("20m", "100/s")])"#;

/// Pre-scaling to 8 pods (1600 requests/s of capacity) serves any step up to 1200/s: at 75%
/// the HPA keeps the count within its tolerance and no pod's queue fills. The baseline, on
/// a space of overloads, fails already at its mildest spike, 600/s on two pods' 400/s: the
/// accept queues fill and the HPA waits minutes for its third pod.
#[test]
fn pre_scaling_serves_every_spike_up_to_twelve_times_the_load() {
    use crate::support::cases;
    use faultline::prop::{Param, Property};
    use faultline::scenario::Expect;
    let s = crate::support::load("autoscale_spike");
    let report = Property::new(&s)
        .variant("pre-scaling")
        .check("served during the spike")
        .expect(Expect::Holds)
        .param(Param::int("users.arrivals", 200, 1200).template(PEAK))
        .cases(cases(3, 60))
        .runner_seed(1)
        .run()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.held, report.cases);
    let failure = Property::new(&s)
        .variant("baseline")
        .check("served during the spike")
        .expect(Expect::Fails)
        .param(Param::int("users.arrivals", 600, 1200).template(PEAK))
        .seeds(1..=1000)
        .cases(cases(3, 60))
        .runner_seed(1)
        .run()
        .unwrap_or_else(|e| panic!("{e}"));
    let w = failure.witness.expect("the baseline fails on some spike");
    assert_eq!(
        w.params,
        [("users.arrivals".to_string(), PEAK.replace("{}", "600"))],
        "it shrinks to the mildest spike of the space"
    );
}
