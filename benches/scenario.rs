//! Scenario throughput: how many small scenario runs a core does per second, which decides how
//! many cases a property test or a many-seed `check` can afford.
//!
//! `cargo bench --bench scenario` measures with criterion, per run (one variant, one seed, from
//! a loaded scenario: building the `Sim` from the resolved configs, running it, evaluating the
//! checks and the table rows, as `faultline check` does for every seed): `small` is a client
//! and a service, about 10,000 events; `composed` is the cascading-timeouts system (gateway,
//! order, inventory, payment) cut to 10 s of virtual time; `cache` is the cache-stampede system
//! (a client, a service running cache-aside, Redis shards, a pooled database) at 10,000
//! requests a second for 5 s, about 350,000 events, whose events per second show what the
//! cache path costs; `log` is the rebalance storm's baseline (a broker, a producer at 1,200
//! records/s, a consumer group of 6-12 with its autoscaler and probes) cut to 2 minutes, whose
//! events per second show what the log path costs. The target is 1,000 runs/s per core for
//! the small one.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use faultline::scenario::Scenario;
use faultline::scenario::run::run_seed;

/// About 10,000 events: 2,500 requests at 500/s for 5 s, each an arrival timer, a request, a
/// work timer and a response, plus the client's timeouts and the metric samples.
const SMALL: &str = r#"Scenario(
    name: "small",
    duration: "5s",
    components: {
        "users": Client(target: "api", arrivals: Poisson("500/s"), timeout: "1s"),
        "api": Service(workers: 4, kinds: [(name: "q", service: Exp(mean: "5ms"))]),
    },
    faults: [(from: "2s", until: "3s", fault: Slow(target: "api", factor: 2.0))],
    checks: [AtLeast(name: "served", value: "ratio(users.ok_total, users.sent_total)", min: 0.9)],
    table: ["users.latency.p99"],
)"#;

fn bench(c: &mut Criterion) {
    let small = Scenario::from_str(SMALL, "small.ron").expect("valid");
    let (run, _) = run_seed(&small, 0, 1, false);
    eprintln!("small: {} events per run", run.events);
    let (_, path, text) = faultline::scenario::SHIPPED
        .iter()
        .find(|(n, _, _)| *n == "cascading_timeouts")
        .expect("shipped");
    let extra = [(
        "users.arrivals".to_string(),
        "Poisson(\"100/s\")".to_string(),
    )];
    let mut composed = Scenario::with_overrides(text, path, &extra).expect("valid");
    composed.duration = "10s".parse().expect("a duration");
    composed.faults = faultline::FaultPlan::new();
    let (run, _) = run_seed(&composed, 0, 1, false);
    eprintln!("composed: {} events per run", run.events);

    let (_, path, text) = faultline::scenario::SHIPPED
        .iter()
        .find(|(n, _, _)| *n == "cache_stampede")
        .expect("shipped");
    let extra = [(
        "users.arrivals".to_string(),
        "Poisson(\"10000/s\")".to_string(),
    )];
    let mut cache = Scenario::with_overrides(text, path, &extra).expect("valid");
    cache.duration = "5s".parse().expect("a duration");
    let (run, _) = run_seed(&cache, 0, 1, false);
    let cache_events = run.events;
    eprintln!("cache: {cache_events} events per run");

    let (_, path, text) = faultline::scenario::SHIPPED
        .iter()
        .find(|(n, _, _)| *n == "rebalance_storm")
        .expect("shipped");
    let mut log = Scenario::from_str(text, path).expect("valid");
    log.duration = "2m".parse().expect("a duration");
    let (run, _) = run_seed(&log, 0, 1, false);
    let log_events = run.events;
    eprintln!("log: {log_events} events per run");

    let mut g = c.benchmark_group("scenario");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1));
    g.throughput(Throughput::Elements(1));
    let mut seed = 0;
    g.bench_function("small", |b| {
        b.iter(|| {
            seed += 1;
            black_box(run_seed(&small, 0, seed, false))
        })
    });
    g.bench_function("composed", |b| {
        b.iter(|| {
            seed += 1;
            black_box(run_seed(&composed, 0, seed, false))
        })
    });
    g.throughput(Throughput::Elements(cache_events));
    g.bench_function("cache", |b| {
        b.iter(|| {
            seed += 1;
            black_box(run_seed(&cache, 0, seed, false))
        })
    });
    g.throughput(Throughput::Elements(log_events));
    g.bench_function("log", |b| {
        b.iter(|| {
            seed += 1;
            black_box(run_seed(&log, 0, seed, false))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
