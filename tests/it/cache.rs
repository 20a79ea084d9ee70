//! The cache family end to end: keys on requests, the `Cache` actor's shards, cache-aside in a
//! `Service` with its stampede protections, and the failure modes C1–C5 they reproduce, each
//! measured with a tolerance derived from its variance.
//!
//! Components are built from RON text with `from_ron`, as a scenario writes them, so the tests
//! also pin the config field names the scenario files use.

use faultline::model::rpc::{
    Client, ClientConfig, Database, DatabaseConfig, LoadBalancer, LoadBalancerConfig, Rpc, Service,
    ServiceConfig, from_ron,
};
use faultline::{ActorId, HostId, Sim};

/// One host, so messages between actors arrive at the instant they are sent.
fn sim_one_host(seed: u64) -> (Sim<Rpc>, HostId) {
    let mut sim = Sim::new(seed);
    let h = sim.add_host("h").expect("fresh host");
    (sim, h)
}

fn client(sim: &mut Sim<Rpc>, h: HostId, name: &str, ron: &str) -> ActorId {
    let config: ClientConfig = from_ron(ron).unwrap_or_else(|e| panic!("{name}: {e}"));
    let proto: Client<Rpc> = Client::new(config).expect("valid client");
    sim.spawn(h, name, move || proto.clone()).expect("unique")
}

fn service(sim: &mut Sim<Rpc>, h: HostId, name: &str, ron: &str) -> ActorId {
    let config: ServiceConfig = from_ron(ron).unwrap_or_else(|e| panic!("{name}: {e}"));
    let proto: Service<Rpc> = Service::new(config).expect("valid service");
    sim.spawn(h, name, move || proto.clone()).expect("unique")
}

fn database(sim: &mut Sim<Rpc>, h: HostId, name: &str, ron: &str) -> ActorId {
    let config: DatabaseConfig = from_ron(ron).unwrap_or_else(|e| panic!("{name}: {e}"));
    let proto: Database<Rpc> = Database::new(config).expect("valid database");
    sim.spawn(h, name, move || proto.clone()).expect("unique")
}

fn balancer(sim: &mut Sim<Rpc>, h: HostId, name: &str, ron: &str) -> ActorId {
    let config: LoadBalancerConfig = from_ron(ron).unwrap_or_else(|e| panic!("{name}: {e}"));
    let proto: LoadBalancer<Rpc> = LoadBalancer::new(config).expect("valid balancer");
    sim.spawn(h, name, move || proto.clone()).expect("unique")
}

fn counter(sim: &Sim<Rpc>, name: &str) -> u64 {
    sim.metrics()
        .counter_value(name)
        .unwrap_or_else(|| panic!("no counter {name}"))
}

fn histogram(sim: &Sim<Rpc>, name: &str) -> faultline::metrics::Summary {
    sim.metrics()
        .histogram_summary(name)
        .unwrap_or_else(|| panic!("no histogram {name}"))
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

/// `P(key 0)` under Zipf(n, s): `1 / H(n, s)`.
fn zipf_top_share(n: u64, s: f64) -> f64 {
    let h: f64 = (1..=n).rev().map(|r| libm::pow(r as f64, -s)).sum();
    1.0 / h
}

// ---------------------------------------------------------------------------------------------
// Keys on requests
// ---------------------------------------------------------------------------------------------

#[test]
fn keys_travel_from_the_client_through_a_balancer_and_a_service_to_the_database() {
    // 20,000 requests on Zipf(1000, 1.0) keys with 30% missing: the database answers a missing
    // key NotFound after its full query time (10 ms, like a hit), the service passes that up,
    // and the client counts it as answered. Counts are exact where every request makes exactly
    // one query (no timeouts, no retries), binomial where the keys decide.
    let (mut sim, h) = sim_one_host(7);
    database(
        &mut sim,
        h,
        "db",
        r#"(queries: [(name: "get", time: Const("10ms"))], track_keys: 3)"#,
    );
    let api = r#"(workers: 64, kinds: [(name: "read", service: Const("1ms"),
                   calls: [(target: "db", timeout: "1s")])])"#;
    service(&mut sim, h, "api-0", api);
    service(&mut sim, h, "api-1", api);
    balancer(
        &mut sim,
        h,
        "lb",
        r#"(backends: ["api-0", "api-1"], policy: RoundRobin)"#,
    );
    let n = 20_000;
    client(
        &mut sim,
        h,
        "users",
        &format!(
            r#"(target: "lb", arrivals: Poisson("1000/s"), limit: Some({n}),
                keys: Some((popularity: Zipf(n: 1000, s: 1.0), missing: 0.3)))"#
        ),
    );
    sim.run();
    assert_eq!(counter(&sim, "users.sent_total"), n);
    assert_eq!(counter(&sim, "users.ok_total"), n, "NotFound is an answer");
    let not_found = counter(&sim, "users.not_found_total");
    assert_binomial("missing keys", not_found, n, 0.3);
    assert_eq!(counter(&sim, "db.not_found_total"), not_found);
    assert_eq!(counter(&sim, "db.queries_total"), n);
    let answered = counter(&sim, "api-0.completed_total") + counter(&sim, "api-1.completed_total");
    assert_eq!(answered, n);
    // A miss costs a full query: every query took exactly 10 ms.
    let lat = histogram(&sim, "db.latency");
    assert_eq!((lat.min, lat.max), (10_000_000, 10_000_000));
    // The tracked keys: key 0 is asked 0.7 / H(1000, 1) of the time, key 2 a third of that.
    let top = zipf_top_share(1_000, 1.0);
    for k in 0..3_u64 {
        let got = counter(&sim, &format!("db.key_queries_total.{k}"));
        assert_binomial(&format!("key {k}"), got, n, 0.7 * top / (k + 1) as f64);
    }
    assert!(
        sim.metrics()
            .counter_value("db.key_queries_total.3")
            .is_none()
    );
}

#[test]
fn keyless_traffic_draws_no_key_and_is_never_not_found() {
    // The same client without `keys`: the same arrivals as a client that never heard of keys
    // (nothing extra drawn), and no answer is NotFound.
    let run = |keys: &str| {
        let (mut sim, h) = sim_one_host(3);
        database(
            &mut sim,
            h,
            "db",
            r#"(queries: [(name: "get", time: Const("1ms"))])"#,
        );
        client(
            &mut sim,
            h,
            "users",
            &format!(r#"(target: "db", arrivals: Poisson("500/s"), limit: Some(2000){keys})"#),
        );
        sim.run();
        (sim.now(), counter(&sim, "users.not_found_total"))
    };
    let (end, not_found) = run("");
    assert_eq!(not_found, 0);
    assert_eq!(run(", keys: None"), (end, 0));
    // Keys make the client draw more, so its arrivals move.
    let (keyed_end, keyed_missing) =
        run(", keys: Some((popularity: Uniform(n: 10), missing: 0.5))");
    assert_ne!(keyed_end, end);
    assert_binomial("missing", keyed_missing, 2_000, 0.5);
}

#[test]
fn mix_entries_draw_from_their_own_key_spaces() {
    // Reads hit one hot key, writes spread over missing ids only: every read is of key 0
    // (found), every write NotFound.
    let (mut sim, h) = sim_one_host(5);
    database(
        &mut sim,
        h,
        "db",
        r#"(queries: [(name: "read", time: Const("1ms")), (name: "write", time: Const("1ms"))],
            track_keys: 1)"#,
    );
    client(
        &mut sim,
        h,
        "users",
        r#"(target: "db", arrivals: Poisson("500/s"), limit: Some(4000),
            keys: Some((popularity: HotSet(keys: 1, share: 1.0, rest: 0))),
            mix: [(name: "read", kind: 0, weight: 3.0),
                  (name: "write", kind: 1, weight: 1.0,
                   keys: Some((popularity: Uniform(n: 5), missing: 1.0)))])"#,
    );
    sim.run();
    let (reads, writes) = (
        counter(&sim, "users.ok_total.read"),
        counter(&sim, "users.ok_total.write"),
    );
    assert_eq!(reads + writes, 4_000);
    assert_binomial("reads", reads, 4_000, 0.75);
    assert_eq!(counter(&sim, "users.not_found_total.read"), 0);
    assert_eq!(counter(&sim, "users.not_found_total.write"), writes);
    assert_eq!(counter(&sim, "db.key_queries_total.0"), reads);
}

#[test]
fn the_database_counts_bursts_of_overlapping_queries_per_key() {
    // Key 0 asked every 10 ms (constant arrivals). With 5 ms queries no two overlap: 100
    // bursts of one. With 25 ms queries each overlaps the next two: the 100 queries are one
    // burst, recorded when the last ends.
    for (query_ms, bursts, largest) in [(5, 100, 1), (25, 1, 100)] {
        let (mut sim, h) = sim_one_host(1);
        database(
            &mut sim,
            h,
            "db",
            &format!(r#"(queries: [(name: "get", time: Const("{query_ms}ms"))], track_keys: 2)"#),
        );
        client(
            &mut sim,
            h,
            "users",
            r#"(target: "db", arrivals: Constant("100/s"), limit: Some(100),
                keys: Some((popularity: HotSet(keys: 1, share: 1.0, rest: 0))))"#,
        );
        sim.run();
        let b = histogram(&sim, "db.burst_queries");
        assert_eq!(b.count, bursts, "{query_ms} ms");
        assert_eq!(b.max, largest, "{query_ms} ms");
        assert_eq!(counter(&sim, "db.key_queries_total.0"), 100);
        assert_eq!(counter(&sim, "db.key_queries_total.1"), 0);
    }
}
