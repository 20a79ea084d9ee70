//! A thundering herd, and its fix: the shipped `cache_stampede` scenario, run as it is (every
//! request that misses the cache recomputes the page) and with single-flight (one recompute per
//! key at a time, the other requests wait for its answer), on the same seed, so both see the
//! very same requests.
//!
//! A product page is cached in Redis and recomputed from PostgreSQL, through a pool of 20
//! connections, when it expires. The hottest page is read over a thousand times a second, so in
//! the ~50 ms its recompute takes dozens of readers find it missing, and without protection each
//! of them sends the same query: the pool drains, and everyone queued behind it waits. The
//! example prints, in plain words and with the numbers of the two runs, how many requests there
//! were, how often the hot page expired, how many database queries each expiry caused, the pool
//! wait and the users' latency, the cache hit ratio, and how many requests single-flight made
//! wait for another's recompute. It asserts what it says, so it doubles as a test.
//!
//!     cargo run --release --example thundering_herd

use faultline::SimTime;
use faultline::check::{Check, Expr, Window};
use faultline::metrics::Metrics;
use faultline::report::grouped;
use faultline::scenario::{Scenario, build, shipped};

/// What one run of a variant gave, in the numbers the story needs.
struct Run {
    events: u64,
    sent: u64,
    ok: u64,
    /// Requests the service refused: every worker busy and its accept queue full.
    refused: u64,
    /// The most requests waiting for a database connection at once (in the window), and all
    /// queries run.
    most_waiting: f64,
    queries: u64,
    /// When the hot page's refills ended (the sample that recorded each burst), whole run.
    refill_times: Vec<SimTime>,
    /// Bursts of the hottest page's queries in the steady-state window: one per refill, that is
    /// one per expiry (a refill is a burst of overlapping queries; see `model/cache/bursts.rs`).
    refills: f64,
    /// The largest burst in the window, and the hot page's queries there.
    max_burst: f64,
    hot_queries: f64,
    /// Whole-run `pg.burst_queries`: warm-up included.
    bursts_all: faultline::metrics::Summary,
    hot_queries_all: u64,
    /// The worst one-second p99 in the window, in ms.
    pool_wait_p99_ms: f64,
    users_p99_ms: f64,
    /// Whole-run users' p99, in ms.
    users_p99_all_ms: f64,
    hit_ratio: f64,
    gets: u64,
    coalesced: u64,
}

impl Run {
    /// Database queries per expiry of the hot page, on average: every query for the key
    /// belongs to exactly one burst.
    fn per_expiry(&self) -> f64 {
        self.hot_queries / self.refills
    }

    /// The share of users' requests answered, in percent (those still in flight at the end
    /// count as unanswered: a few dozen).
    fn answered(&self) -> f64 {
        100.0 * self.ok as f64 / self.sent as f64
    }
}

fn value(m: &Metrics, expr: &str, window: Option<Window>) -> f64 {
    Expr::parse(expr)
        .unwrap_or_else(|e| panic!("`{expr}`: {e}"))
        .scalar(m, window)
        .unwrap_or_else(|| panic!("`{expr}` has no value in this run"))
}

fn counter(m: &Metrics, name: &str) -> u64 {
    m.counter_value(name)
        .unwrap_or_else(|| panic!("no counter `{name}`"))
}

fn ms(ns: f64) -> f64 {
    ns / 1e6
}

/// The window the scenario judges stampedes in (its "queries per hot-key expiry" check): after
/// the warm-up, whose first fill and ramp are no stampede. Read from the file rather than
/// repeated here, so the example measures what the scenario's checks measure.
fn steady_window(scenario: &Scenario) -> Window {
    scenario
        .checks
        .iter()
        .find_map(|c| match c {
            Check::AtMost {
                value,
                during: Some(w),
                ..
            } if value.as_str() == "pg.burst_queries.max" => Some(*w),
            _ => None,
        })
        .expect("cache_stampede judges pg.burst_queries.max in a window")
}

fn run(scenario: &Scenario, variant: &str, seed: u64, window: Window) -> Run {
    let v = scenario
        .variant(variant)
        .unwrap_or_else(|| panic!("cache_stampede has a variant `{variant}`"));
    let mut sim = build(scenario, v, seed, false).expect("a loaded scenario builds");
    sim.run_until(SimTime::ZERO.saturating_add(scenario.duration));
    let events = sim.stats().events;
    let m = sim.metrics();
    let w = Some(window);
    let gets = counter(m, "api.cache_gets_total");
    Run {
        events,
        sent: counter(m, "users.sent_total"),
        ok: counter(m, "users.ok_total"),
        refused: counter(m, "api.rejected_total"),
        most_waiting: value(m, "max(api.pool_waiting.pg)", w),
        queries: counter(m, "pg.queries_total"),
        refill_times: Expr::parse("pg.burst_queries.count")
            .expect("an expression")
            .series(m)
            .expect("the scenario samples")
            .into_iter()
            .filter(|&(_, n)| n > 0.0)
            .map(|(t, _)| t)
            .collect(),
        refills: value(m, "pg.burst_queries.count", w),
        max_burst: value(m, "pg.burst_queries.max", w),
        hot_queries: value(m, "pg.key_queries_total.0", w),
        bursts_all: m
            .histogram_summary("pg.burst_queries")
            .expect("pg tracks the hottest key"),
        hot_queries_all: counter(m, "pg.key_queries_total.0"),
        pool_wait_p99_ms: ms(value(m, "api.pool_wait.pg.p99", w)),
        users_p99_ms: ms(value(m, "users.latency.p99", w)),
        users_p99_all_ms: ms(m
            .histogram_summary("users.latency")
            .expect("users record latency")
            .p99 as f64),
        hit_ratio: counter(m, "api.cache_hits_total") as f64 / gets as f64,
        gets,
        coalesced: counter(m, "api.coalesced_total"),
    }
}

/// `1321897` as "1,321,897".
fn n(v: u64) -> String {
    grouped(v as i64)
}

/// `[31s, 63s, 95s]` as "31 s, 63 s and 95 s".
fn times(ts: &[SimTime]) -> String {
    let words: Vec<String> = ts
        .iter()
        .map(|t| {
            format!(
                "{:.0} s",
                t.saturating_duration_since(SimTime::ZERO).as_secs_f64()
            )
        })
        .collect();
    match words.split_last() {
        None => "never".to_string(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

pub fn main() {
    let (path, text) = shipped("cache_stampede").expect("cache_stampede ships with faultline");
    let scenario = Scenario::from_str(text, path).unwrap_or_else(|e| panic!("{e}"));
    // One seed for both variants: the same users send the same requests for the same pages at
    // the same times, so every difference below is the fix's.
    let seed = scenario.seed;
    let window = steady_window(&scenario);
    // A run is a pure function of (scenario, variant, seed), so the two can run on two
    // threads at once: the same numbers, in half the time.
    let (base, fix) = std::thread::scope(|s| {
        let base = s.spawn(|| run(&scenario, "baseline", seed, window));
        let fix = run(&scenario, "single-flight", seed, window);
        (base.join().expect("the baseline run"), fix)
    });
    // The refills after the first fill, which is the cache warming up, not an expiry.
    let expiries = &base.refill_times[1..];
    let gaps: Vec<f64> = base
        .refill_times
        .windows(2)
        .map(|w| w[1].saturating_duration_since(w[0]).as_secs_f64())
        .collect();
    let every = gaps.iter().sum::<f64>() / gaps.len() as f64;

    println!(
        "faultline: a cache stampede and single-flight ({}, seed {seed}, {:.0} s of traffic)",
        scenario.file,
        scenario.duration.as_secs_f64()
    );
    println!();
    println!(
        "Users sent {} requests for product pages, the same ones in both runs. The hottest page \
         was filled at {} and then expired about every {every:.0} s, refilled at {}.",
        n(base.sent),
        times(&base.refill_times[..1]),
        times(expiries),
    );
    println!(
        "From {} to {} (after the warm-up, where the scenario's checks look) it expired {:.0} \
         times.",
        window.from, window.until, base.refills
    );
    println!();
    println!(
        "Without protection, each time the hot page expired, {:.0} requests on average (at \
         worst {:.0}) found it missing and recomputed it at once: {:.0} identical database \
         queries for the {:.0} expiries, into a pool of 20 connections.",
        base.per_expiry(),
        base.max_burst,
        base.hot_queries,
        base.refills
    );
    println!(
        "Every request that missed any other page queued behind them for a connection (its queue \
         peaked at {:.0}): the pool wait's p99 reached {:.0} ms in the worst second, and users' p99 \
         latency {:.0} ms (over the whole run: {:.0} ms). With the workers held by those waits, \
         the service refused {} requests: users got an answer to {:.2}% of theirs.",
        base.most_waiting,
        base.pool_wait_p99_ms,
        base.users_p99_ms,
        base.users_p99_all_ms,
        n(base.refused),
        base.answered()
    );
    println!(
        "Yet the cache answered {:.2}% of {} lookups: a stampede is not a low hit ratio, it is \
         a few misses at the same moment.",
        100.0 * base.hit_ratio,
        n(base.gets)
    );
    println!();
    println!(
        "With single-flight, one request recomputed the page at each expiry ({:.0} queries for \
         {:.0} expiries, never more than {:.0} at a time) and the others waited for its answer: \
         across all pages, {} requests waited for another's recompute instead of querying. The \
         database ran {} queries in all, against {} without it.",
        fix.hot_queries,
        fix.refills,
        fix.max_burst,
        n(fix.coalesced),
        n(fix.queries),
        n(base.queries)
    );
    println!(
        "The pool wait's p99 was {:.1} ms in the worst second (the pool's queue peaked at \
         {:.0} requests), users' p99 {:.0} ms (whole run: {:.0} ms), {} requests were \
         refused ({:.2}% answered), and the hit ratio was {:.2}%.",
        fix.pool_wait_p99_ms,
        fix.most_waiting,
        fix.users_p99_ms,
        fix.users_p99_all_ms,
        n(fix.refused),
        fix.answered(),
        100.0 * fix.hit_ratio
    );
    println!();
    println!(
        "pg.burst_queries over the whole run, warm-up included: baseline {} bursts, max {}, \
         mean {:.1} ({} queries for the hot page); single-flight {} bursts, max {}, mean {:.1} \
         ({} queries).",
        base.bursts_all.count,
        base.bursts_all.max,
        base.bursts_all.mean,
        base.hot_queries_all,
        fix.bursts_all.count,
        fix.bursts_all.max,
        fix.bursts_all.mean,
        fix.hot_queries_all
    );
    println!(
        "Events simulated: {} and {}.",
        n(base.events),
        n(fix.events)
    );

    // What the text claims, checked, so that running the example as a test catches a change
    // that makes it false.
    assert_eq!(base.sent, fix.sent, "one seed, the same traffic");
    assert!(
        base.refills >= 2.0 && expiries.len() >= 2,
        "the hot page expires repeatedly"
    );
    // The herd: dozens of queries per expiry, more than the pool has connections.
    assert!(
        base.max_burst > 20.0 && base.per_expiry() > 20.0,
        "without protection an expiry sends dozens of queries (max {}, mean {:.1})",
        base.max_burst,
        base.per_expiry()
    );
    // The fix: exactly one query per expiry, every time, warm-up included, and the herd
    // coalesced onto it.
    assert_eq!(fix.max_burst, 1.0, "single-flight: one query at a time");
    assert_eq!(fix.bursts_all.max, 1, "single-flight, warm-up included");
    assert_eq!(
        fix.hot_queries, fix.refills,
        "single-flight: one query per expiry"
    );
    assert_eq!(
        fix.bursts_all.count, base.bursts_all.count,
        "the same expiries, one query each"
    );
    assert!(
        fix.coalesced as f64 > 20.0 * fix.refills,
        "the herd waits for the one recompute ({} coalesced over {} expiries)",
        fix.coalesced,
        fix.refills
    );
    // What the herd costs, and that single-flight removes the cost (the scenario's bound on
    // the pool wait is 50 ms).
    assert!(
        base.pool_wait_p99_ms > 50.0 && fix.pool_wait_p99_ms < 50.0,
        "the pool wait p99 goes from {:.0} ms to {:.1} ms",
        base.pool_wait_p99_ms,
        fix.pool_wait_p99_ms
    );
    assert!(
        fix.users_p99_ms < base.users_p99_ms,
        "users see the difference ({:.0} ms -> {:.0} ms)",
        base.users_p99_ms,
        fix.users_p99_ms
    );
    assert!(
        fix.refused < base.refused && fix.queries < base.queries,
        "fewer refusals ({} -> {}) and fewer queries ({} -> {})",
        base.refused,
        fix.refused,
        base.queries,
        fix.queries
    );
    // The scenario's "reads answered" check: 99.9% with the fix.
    assert!(
        fix.answered() >= 99.9,
        "single-flight answers {:.3}%",
        fix.answered()
    );
    // Neither run is a cache that does not work: the stampede is a few simultaneous misses.
    assert!(
        base.hit_ratio > 0.9 && fix.hit_ratio > 0.9,
        "hit ratios {:.3} and {:.3}",
        base.hit_ratio,
        fix.hit_ratio
    );
}
