//! Engine speed: the yardstick's three workloads (`mm1`, `many`, `timers`) run through
//! faultline's public actor API.
//!
//! `cargo bench --bench engine` measures each with criterion (throughput in model events/s).
//! `benches/compare.sh` runs each workload once per round, alternating with the bare event loop
//! of `../shared/bench-reference`, and prints medians and ratios, plus peak memory: for that it
//! calls this binary with `FAULTLINE_ONESHOT=<workload>`, which runs the workload once and
//! prints one JSON line (wall-clock timing is fine here: this is the bench harness, not the
//! simulation).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group};
use faultline::SimDuration;

#[path = "workloads.rs"]
mod workloads;

const CUSTOMERS: u64 = 1_000_000;
const QUEUES: usize = 10_000;
const ACTORS: usize = 100_000;
const MILLION_ACTORS: usize = 500_000;
const MILLION_HORIZON: SimDuration = SimDuration::from_secs(60);

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(8))
        .warm_up_time(Duration::from_secs(1));
    g.throughput(Throughput::Elements(2 * CUSTOMERS));
    g.bench_function("mm1", |b| {
        b.iter(|| black_box(workloads::run_queues(1, CUSTOMERS, 42)))
    });
    g.throughput(Throughput::Elements(2 * CUSTOMERS));
    g.bench_function("many", |b| {
        b.iter(|| black_box(workloads::run_queues(QUEUES, CUSTOMERS, 42)))
    });
    // 100,000 members x 200 heartbeats in 10 minutes (the first is at a random phase).
    let (beats, _) = workloads::run_timers(ACTORS, 42);
    g.throughput(Throughput::Elements(beats));
    g.bench_function("timers", |b| {
        b.iter(|| black_box(workloads::run_timers(ACTORS, 42)))
    });
    g.finish();
}

criterion_group!(benches, bench);

/// Peak resident memory of this process, from /proc (Linux); None elsewhere.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn oneshot(workload: &str) {
    let t0 = Instant::now();
    let (events, extra) = match workload {
        "mm1" => {
            let (events, sojourn) = workloads::run_queues(1, CUSTOMERS, 42);
            (events, format!("\"mean_sojourn\":{sojourn:.4}"))
        }
        "many" => {
            let (events, sojourn) = workloads::run_queues(QUEUES, CUSTOMERS, 42);
            (events, format!("\"mean_sojourn\":{sojourn:.4}"))
        }
        "timers" => {
            let (beats, expired) = workloads::run_timers(ACTORS, 42);
            (beats, format!("\"expired\":{expired}"))
        }
        "timers1m" => {
            let (beats, expired) = workloads::run_timers_for(MILLION_ACTORS, MILLION_HORIZON, 42);
            (beats, format!("\"expired\":{expired}"))
        }
        other => {
            eprintln!("unknown workload {other}: use mm1, many, timers or timers1m");
            std::process::exit(2);
        }
    };
    let wall = t0.elapsed().as_secs_f64();
    println!(
        "{{\"workload\":\"{workload}\",\"events\":{events},\"wall_s\":{wall:.4},\"events_per_s\":{:.0},\"peak_rss_kib\":{},{extra}}}",
        events as f64 / wall,
        peak_rss_kib().unwrap_or(0)
    );
}

fn main() {
    if let Ok(w) = std::env::var("FAULTLINE_ONESHOT") {
        oneshot(&w);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
