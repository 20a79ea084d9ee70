//! The cache family end to end: keys on requests, the `Cache` actor's shards, cache-aside in a
//! `Service` with its stampede protections, and the failure modes C1–C5 they reproduce, each
//! measured with a tolerance derived from its variance.
//!
//! Components are built from RON text with `from_ron`, as a scenario writes them, so the tests
//! also pin the config field names the scenario files use.

use faultline::engine::rng::unit_f64;
use faultline::model::cache::{
    BloomConfig, BloomFilter, Cache, CacheConfig, KeySpace, Keys, expected_recomputations,
};
use faultline::model::rpc::{
    CacheOp, CacheReply, CacheRequest, CacheResult, Client, ClientConfig, Database, DatabaseConfig,
    LoadBalancer, LoadBalancerConfig, Rpc, Service, ServiceConfig, Tick, from_ron,
};
use faultline::{Actor, ActorId, Ctx, Durable, HostId, Sim, SimConfig, SimDuration, SimTime};

use crate::support::{counter, gauge, histogram};

fn secs(n: u64) -> SimTime {
    SimTime::from_nanos(n * 1_000_000_000)
}

/// One host, so messages between actors arrive at the instant they are sent; metrics sampled
/// every 100 ms.
fn sim_one_host(seed: u64) -> (Sim<Rpc>, HostId) {
    let config = SimConfig {
        sample_interval: Some(SimDuration::from_millis(100)),
        ..SimConfig::new(seed)
    };
    let mut sim = Sim::with_config(config).expect("a valid config");
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

fn cache(sim: &mut Sim<Rpc>, h: HostId, name: &str, ron: &str) -> ActorId {
    let config: CacheConfig = from_ron(ron).unwrap_or_else(|e| panic!("{name}: {e}"));
    let proto: Cache<Rpc> = Cache::new(config).expect("valid cache");
    sim.spawn(h, name, move || proto.clone()).expect("unique")
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

// ---------------------------------------------------------------------------------------------
// The Cache actor
// ---------------------------------------------------------------------------------------------

/// What a [`Hammer`] saw: replies by result, and every reply's (send time, result).
#[derive(Default)]
struct Tally {
    hits: u64,
    stale: u64,
    misses: u64,
    stored: u64,
    refused: u64,
    deleted: u64,
    rejected: u64,
    unavailable: u64,
    /// Round trips of the replies, ns.
    round_trips: Vec<u64>,
}

/// Sends cache commands straight to a cache: `op` for keys drawn from `keys`, Poisson at
/// `rate` per second from `start` until `until` (or `count` commands at once at `start`, if
/// `burst`).
struct Hammer {
    to: ActorId,
    op: CacheOp,
    keys: Keys,
    rate: f64,
    start: SimTime,
    until: SimTime,
    burst: Option<u64>,
    sent_at: std::collections::BTreeMap<u64, SimTime>,
    next_id: u64,
    tally: Durable<Tally>,
}

impl Hammer {
    fn send(&mut self, ctx: &mut Ctx<'_, Rpc>) {
        let key = self.keys.draw(ctx.rng());
        let id = self.next_id;
        self.next_id += 1;
        self.sent_at.insert(id, ctx.now());
        let req = CacheRequest {
            id,
            reply_to: ctx.me(),
            key,
            op: self.op,
        };
        ctx.send(self.to, Rpc::CacheRequest(req));
    }

    fn schedule(&mut self, ctx: &mut Ctx<'_, Rpc>) {
        let u = 1.0 - unit_f64(ctx.rng());
        let gap = -libm::log(u) / self.rate;
        let at = ctx.now() + SimDuration::from_nanos((gap * 1e9) as u64);
        if at < self.until {
            ctx.set_timer_at(at, Rpc::Tick(Tick::Arrive));
        }
    }
}

impl Actor<Rpc> for Hammer {
    fn on_start(&mut self, ctx: &mut Ctx<'_, Rpc>) {
        ctx.set_timer_at(self.start, Rpc::Tick(Tick::RateStep(0)));
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Rpc>, msg: Rpc) {
        match msg {
            Rpc::Tick(Tick::RateStep(_)) => match self.burst {
                Some(n) => (0..n).for_each(|_| self.send(ctx)),
                None => self.schedule(ctx),
            },
            Rpc::Tick(Tick::Arrive) => {
                self.send(ctx);
                self.schedule(ctx);
            }
            _ => {}
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Rpc>, _from: ActorId, msg: Rpc) {
        let Rpc::CacheReply(CacheReply { id, result }) = msg else {
            return;
        };
        let sent = self.sent_at.remove(&id).expect("a reply to a command sent");
        let mut t = self.tally.borrow_mut();
        t.round_trips.push((ctx.now() - sent).as_nanos());
        match result {
            CacheResult::Hit(_) => t.hits += 1,
            CacheResult::Stale(_) => t.stale += 1,
            CacheResult::Miss => t.misses += 1,
            CacheResult::Stored => t.stored += 1,
            CacheResult::Refused => t.refused += 1,
            CacheResult::Deleted => t.deleted += 1,
            CacheResult::Rejected => t.rejected += 1,
            CacheResult::Unavailable => t.unavailable += 1,
        }
    }
}

/// A set of `ttl` (None: never expires) of 100 bytes.
fn set(ttl: Option<SimDuration>) -> CacheOp {
    CacheOp::Set {
        ttl,
        delta: SimDuration::from_millis(5),
        size: 100,
        negative: false,
    }
}

#[allow(clippy::too_many_arguments)]
fn hammer(
    sim: &mut Sim<Rpc>,
    h: HostId,
    name: &str,
    to: ActorId,
    op: CacheOp,
    keys: &str,
    rate: f64,
    (start, until): (SimTime, SimTime),
    burst: Option<u64>,
) -> Durable<Tally> {
    let space: KeySpace = ron::from_str(keys).expect("a key space");
    let keys = Keys::new(&space).expect("valid keys");
    let tally = Durable::new(Tally::default());
    let t = tally.clone();
    sim.spawn(h, name, move || Hammer {
        to,
        op,
        keys: keys.clone(),
        rate,
        start,
        until,
        burst,
        sent_at: Default::default(),
        next_id: 0,
        tally: t.clone(),
    })
    .expect("unique");
    tally
}

/// The mean and the standard error of the mean of a shard's latencies, in ns, over
/// `batches` consecutive batches (batch means soak up the queue's autocorrelation).
fn batch_mean_se(values: &[u64], batches: usize) -> (f64, f64) {
    let per = values.len() / batches;
    let means: Vec<f64> = values
        .chunks(per)
        .take(batches)
        .map(|c| c.iter().sum::<u64>() as f64 / c.len() as f64)
        .collect();
    let n = means.len() as f64;
    let mean = means.iter().sum::<f64>() / n;
    let var = means.iter().map(|m| (m - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

#[test]
fn a_hot_key_saturates_its_shard_while_the_others_idle_and_replication_spreads_it() {
    // 8 shards serving 10,000 commands a second each (Exp(100 us)). 20,000 gets a second: half
    // for one hot key, half spread uniformly over 100,000 others, so every shard gets its ring
    // share of 10,000/s (about 1,250/s) and the hot key's shard 10,000/s more: over its
    // capacity. In 3 s its queue grows by about (10,000 + 1,250 - 10,000) x 3 = 3,750 commands
    // while every other shard is an M/M/1 queue at load 0.125, whose mean sojourn is
    // 1 / (mu - lambda_s) (114 us at the mean share; computed from each shard's exact share).
    // With the hot key replicated over 4 shards, each replica gets 2,500/s of it: no shard is
    // over capacity, and the one with the most load has a sojourn within bounds.
    let keys = "(popularity: HotSet(keys: 1, share: 0.5, rest: 100000))";
    let run = |replication: &str| {
        let (mut sim, h) = sim_one_host(11);
        let id = cache(
            &mut sim,
            h,
            "redis",
            &format!(
                r#"(shards: 8, service: Exp(mean: "100us"), queue_capacity: None{replication})"#
            ),
        );
        let tally = hammer(
            &mut sim,
            h,
            "load",
            id,
            CacheOp::Get,
            keys,
            20_000.0,
            (SimTime::ZERO, secs(3)),
            None,
        );
        sim.run_until(secs(3));
        (sim, id, tally)
    };
    let (sim, id, _) = run("");
    let c = sim.inspect::<Cache<Rpc>>(id).expect("a cache");
    let shares = c.ring().shares();
    let hot = c.shard_of(0);
    let mu = 10_000.0;
    for (s, share) in shares.iter().enumerate() {
        let queue = gauge(&sim, &format!("redis.queue_len.{s}"));
        let lambda = 10_000.0 * share;
        if s == hot {
            // Arrivals over 3 s minus at most mu x 3 departures: Poisson sd sqrt(3 lambda).
            let growth = (lambda + 10_000.0 - mu) * 3.0;
            let sd = (3.0 * (lambda + 10_000.0) + 3.0 * mu).sqrt();
            assert!(
                (queue - growth).abs() < 5.0 * sd,
                "hot shard {s}: queue {queue}, expected {growth:.0} (sd {sd:.0})"
            );
            let p99 = histogram(&sim, &format!("redis.latency.{s}")).p99;
            assert!(p99 > 100_000_000, "hot shard p99 {p99} ns");
            eprintln!(
                "hot shard {s}: queue {queue} (expected {growth:.0} +- {sd:.0}), p99 {p99} ns"
            );
        } else {
            assert!(queue < 20.0, "shard {s}: queue {queue}");
            let s_hist = histogram(&sim, &format!("redis.latency.{s}"));
            let expected = 1e9 / (mu - lambda);
            // Exponential sojourns: sd = mean; the sample mean of n of them has sd mean /
            // sqrt(n), times ~1.3 for the queue's correlation at this load; 5 of those.
            let tol = 5.0 * 1.3 * expected / (s_hist.count as f64).sqrt();
            assert!(
                (s_hist.mean - expected).abs() < tol,
                "shard {s}: mean sojourn {} ns, M/M/1 {expected:.0} +- {tol:.0}",
                s_hist.mean
            );
            eprintln!(
                "shard {s}: queue {queue}, mean sojourn {:.0} ns vs M/M/1 {expected:.0} +- {tol:.0}",
                s_hist.mean
            );
        }
    }
    assert_eq!(
        counter(&sim, "redis.misses_total"),
        counter(&sim, "redis.gets_total")
    );

    // Replicated over 4 shards: the hot key's reads spread evenly (binomial), and no queue
    // grows.
    let (sim, id, tally) = run(", replication: Some((keys: 1, replicas: 4))");
    let c = sim.inspect::<Cache<Rpc>>(id).expect("a cache");
    let replicas = c.ring().replicas(0, 4);
    assert_eq!(replicas[0], hot);
    let shares = c.ring().shares();
    let total_gets: u64 = (0..8)
        .map(|s| counter(&sim, &format!("redis.ops_total.{s}")))
        .sum();
    for (s, share) in shares.iter().enumerate() {
        let ops = counter(&sim, &format!("redis.ops_total.{s}"));
        let p = 0.5 * share
            + if replicas.contains(&s) {
                0.5 / 4.0
            } else {
                0.0
            };
        assert_binomial(&format!("shard {s} ops"), ops, total_gets, p);
        let queue = gauge(&sim, &format!("redis.queue_len.{s}"));
        assert!(queue < 50.0, "shard {s}: queue {queue}");
    }
    // The busiest replica runs at about (2,500 + 1,250) / 10,000: its p99 is a few hundred us.
    let worst = (0..8)
        .map(|s| histogram(&sim, &format!("redis.latency.{s}")).p99)
        .max()
        .expect("8 shards");
    assert!(worst < 5_000_000, "worst p99 {worst} ns with replication");
    eprintln!("replicated: worst shard p99 {worst} ns");
    let t = tally.borrow();
    let (mean, se) = batch_mean_se(&t.round_trips, 30);
    assert!(mean < 1e6, "mean round trip {mean} +- {se} ns");
}

#[test]
fn lru_keeps_entries_bounded_while_noeviction_grows_until_the_shard_is_oom_killed() {
    // 5,000 sets a second of keys never seen again (uniform over 10^12 ids: a key reused
    // with probability ~1e-5 over the run), no TTL, 100 bytes each: the leak of C5. Without
    // eviction every set adds an entry; with LRU at 1,000 entries a shard, 4 shards hold
    // exactly 4,000 once full; with a 2 MB limit a shard (its share of 5,000/s x 100 B is
    // about 125 kB/s) is OOM-killed after about 16 s, loses everything and comes back
    // empty.
    let keys = "(popularity: Uniform(n: 1000000000000))";
    let run = |store: &str, until: u64| {
        let (mut sim, h) = sim_one_host(2);
        let id = cache(
            &mut sim,
            h,
            "redis",
            &format!(r#"(shards: 4, service: Const("20us"){store})"#),
        );
        hammer(
            &mut sim,
            h,
            "load",
            id,
            set(None),
            keys,
            5_000.0,
            (SimTime::ZERO, secs(until)),
            None,
        );
        sim.run_until(secs(until));
        (sim, id)
    };
    let (leak, id) = run("", 30);
    let stored = counter(&leak, "redis.sets_total");
    assert_binomial("sets in 30 s", stored, 300_000, 0.5);
    assert_eq!(
        gauge(&leak, "redis.entries"),
        stored as f64,
        "every set kept"
    );
    assert_eq!(gauge(&leak, "redis.bytes"), 100.0 * stored as f64);
    assert_eq!(counter(&leak, "redis.evictions_total"), 0);
    let c = leak.inspect::<Cache<Rpc>>(id).expect("a cache");
    assert_eq!(c.entries() as u64, stored);
    // The leak is a straight line: entries sampled each second grow by ~5,000 a second.
    let series = leak.metrics().series("redis.entries").expect("sampled");
    let at = |t: u64| series.value_at(secs(t)).expect("sampled");
    for t in [10, 20, 30] {
        assert_binomial(&format!("entries at {t} s"), at(t) as u64, 10_000 * t, 0.5);
    }

    let (lru, _) = run(", store: (max_entries: Some(1000), eviction: Lru)", 30);
    assert_eq!(gauge(&lru, "redis.entries"), 4_000.0);
    let sets = counter(&lru, "redis.sets_total");
    assert_eq!(counter(&lru, "redis.evictions_total"), sets - 4_000);
    let series = lru.metrics().series("redis.entries").expect("sampled");
    let lru_peak = series
        .max_over(SimTime::ZERO, SimTime::MAX)
        .expect("sampled");
    assert_eq!(lru_peak, 4_000.0);

    let (oom, _) = run(
        ", memory: Some((limit: 2000000, restart_after: \"1s\"))",
        25,
    );
    let kills = counter(&oom, "redis.oom_kills_total");
    // Each shard reaches 2 MB after 20,000 of its sets: 16 s at a quarter of 5,000/s, then
    // again 17 s after its restart, so in 25 s every shard is killed once (for any ring share
    // between 0.16 and 0.33; 4 shards of 160 points are within 0.25 +- 0.04).
    assert_eq!(kills, 4, "one kill a shard");
    eprintln!(
        "oom: kills {kills}, unavailable {}, entries {}",
        counter(&oom, "redis.unavailable_total"),
        gauge(&oom, "redis.entries")
    );
    let per_shard: u64 = (0..4)
        .map(|s| counter(&oom, &format!("redis.oom_kills_total.{s}")))
        .sum();
    assert_eq!(per_shard, kills);
    assert!(
        counter(&oom, "redis.unavailable_total") > 0,
        "sets refused while down"
    );
    let entries = gauge(&oom, "redis.entries");
    assert!(entries < 4.0 * 20_000.0, "{entries}");
    let series = oom.metrics().series("redis.entries").expect("sampled");
    let peak = series
        .max_over(SimTime::ZERO, SimTime::MAX)
        .expect("sampled");
    assert!(
        peak <= 4.0 * 20_000.0,
        "no shard above its limit for long: {peak}"
    );
}

#[test]
fn replicated_sets_reach_every_replica_and_expired_entries_are_swept() {
    // 300 sets of 3 replicated keys land on all 3 replicas each; keys 3.. only on their own
    // shard. With a 1 s TTL, 1.5 s later the sweep has removed them all; without the sweep
    // they stay until a lookup finds them.
    let (mut sim, h) = sim_one_host(4);
    let with_sweep = cache(
        &mut sim,
        h,
        "swept",
        r#"(shards: 5, service: Const("10us"), replication: Some((keys: 3, replicas: 3)))"#,
    );
    let lazy = cache(
        &mut sim,
        h,
        "lazy",
        r#"(shards: 5, service: Const("10us"), sweep_interval: None)"#,
    );
    let hot = "(popularity: HotSet(keys: 3, share: 1.0, rest: 0))";
    let t = hammer(
        &mut sim,
        h,
        "w",
        with_sweep,
        set(Some(SimDuration::from_secs(1))),
        hot,
        1.0,
        (SimTime::ZERO, secs(1)),
        Some(300),
    );
    let spread = "(popularity: Uniform(n: 1000))";
    hammer(
        &mut sim,
        h,
        "l",
        lazy,
        set(Some(SimDuration::from_secs(1))),
        spread,
        1.0,
        (SimTime::ZERO, secs(1)),
        Some(300),
    );
    sim.run_until(SimTime::from_nanos(500_000_000));
    assert_eq!(
        t.borrow().stored,
        300,
        "answered once every copy is written"
    );
    let c = sim.inspect::<Cache<Rpc>>(with_sweep).expect("a cache");
    for key in 0..3 {
        let replicas = c.ring().replicas(key, 3);
        for s in 0..5 {
            let held = c.store(s).peek(key, SimTime::ZERO).entry().is_some();
            assert_eq!(held, replicas.contains(&s), "key {key} on shard {s}");
        }
    }
    assert_eq!(c.entries(), 9);
    assert_eq!(counter(&sim, "swept.sets_total"), 900);
    let lazy_entries = gauge(&sim, "lazy.entries");
    // Distinct keys among 300 uniform draws from 1,000: 1,000 (1 - e^{-0.3}) = 259, sd 5.2.
    assert!((lazy_entries - 259.2).abs() < 5.0 * 5.2, "{lazy_entries}");
    sim.run_until(SimTime::from_nanos(1_500_000_000));
    assert_eq!(gauge(&sim, "swept.entries"), 0.0);
    assert_eq!(counter(&sim, "swept.expired_total"), 9);
    assert_eq!(
        gauge(&sim, "lazy.entries"),
        lazy_entries,
        "nothing looked them up"
    );
    assert_eq!(counter(&sim, "lazy.expired_total"), 0);
}

#[test]
fn a_full_queue_rejects_at_once() {
    // 10 gets at once for one key at a shard that queues 3: 3 run, 7 are rejected at once.
    let (mut sim, h) = sim_one_host(6);
    let id = cache(
        &mut sim,
        h,
        "redis",
        r#"(shards: 2, service: Const("1ms"), queue_capacity: Some(3))"#,
    );
    let one = "(popularity: HotSet(keys: 1, share: 1.0, rest: 0))";
    let t = hammer(
        &mut sim,
        h,
        "g",
        id,
        CacheOp::Get,
        one,
        1.0,
        (SimTime::ZERO, secs(1)),
        Some(10),
    );
    sim.run_until(secs(1));
    let t = t.borrow();
    assert_eq!((t.misses, t.rejected), (3, 7));
    assert_eq!(counter(&sim, "redis.rejected_total"), 7);
    assert_eq!(counter(&sim, "redis.gets_total"), 3);
    // The three run one after the other: 1, 2 and 3 ms; the rejected are answered at once.
    let mut rt = t.round_trips.clone();
    rt.sort_unstable();
    assert_eq!(rt, [0, 0, 0, 0, 0, 0, 0, 1_000_000, 2_000_000, 3_000_000]);
}

// ---------------------------------------------------------------------------------------------
// Cache-aside in a service
// ---------------------------------------------------------------------------------------------

/// `users` -> `api` (cached reads of kind `read` through `redis`, misses to `db`).
struct Aside {
    sim: Sim<Rpc>,
}

/// Builds the cache-aside bench: the client's arrivals and keys, the kind's `cache` use
/// (written after `cache: "redis"`), the database's query time; 4 cache shards of 10 us.
fn aside(seed: u64, arrivals: &str, keys: &str, cache_use: &str, query: &str) -> Aside {
    let (mut sim, h) = sim_one_host(seed);
    cache(
        &mut sim,
        h,
        "redis",
        r#"(shards: 4, service: Exp(mean: "10us"))"#,
    );
    database(
        &mut sim,
        h,
        "db",
        &format!(
            r#"(max_connections: 100000, queries: [(name: "get", time: {query})], track_keys: 1)"#
        ),
    );
    service(
        &mut sim,
        h,
        "api",
        &format!(
            r#"(workers: 5000, kinds: [(name: "read", service: Const("100us"),
                 calls: [(target: "db", timeout: "5s")],
                 cache: Some((cache: "redis"{cache_use})))])"#
        ),
    );
    client(
        &mut sim,
        h,
        "users",
        &format!(r#"(target: "api", arrivals: {arrivals}, keys: Some({keys}))"#),
    );
    Aside { sim }
}

impl Aside {
    fn count(&self, name: &str) -> u64 {
        counter(&self.sim, name)
    }
}

#[test]
fn a_cached_read_misses_once_then_hits_until_its_ttl() {
    // One key read every 10 ms; a 10 ms query; TTL 1 s. The first read misses (cold), its
    // query takes 10 ms and the set lands at 10.1 ms + the shard's time: the second read (at
    // 10 ms, looking up at 10.1 ms) may still miss. After that every read hits until the
    // entry expires, 1 s after the last set, and the next read misses again.
    let mut a = aside(
        1,
        r#"Constant("100/s")"#,
        "(popularity: HotSet(keys: 1, share: 1.0, rest: 0))",
        r#", ttl: Some((base: "1s"))"#,
        r#"Const("10ms")"#,
    );
    a.sim.run_until(SimTime::from_nanos(10_500_000_000));
    let gets = a.count("api.cache_gets_total");
    let (hits, misses) = (
        a.count("api.cache_hits_total"),
        a.count("api.cache_misses_total"),
    );
    assert_eq!(hits + misses, gets);
    assert_eq!(a.count("api.cache_errors_total"), 0);
    assert_eq!(
        a.count("api.cache_lookups_total"),
        gets,
        "no L1, no Bloom filter"
    );
    // 10 or 11 expiries in 10.5 s (one per ~1.02 s cycle, the first a cold miss), each 1 or
    // 2 misses. The second miss of a cycle looks up about when the first one's query ends,
    // so the database sees one burst of two or, when it starts just after, two bursts of
    // one: bursts are queries that overlap at the database.
    let queries = a.count("db.key_queries_total.0");
    assert_eq!(queries, a.count("api.db_queries_total"));
    assert_eq!(queries, misses);
    assert!((10..=22).contains(&misses), "{misses}");
    let bursts = histogram(&a.sim, "db.burst_queries");
    assert!((10..=queries).contains(&bursts.count), "{bursts:?}");
    assert_eq!((bursts.count as f64 * bursts.mean).round() as u64, queries);
    assert!(bursts.max <= 2, "{bursts:?}");
    assert_eq!(a.count("api.cache_sets_total"), misses);
    assert_eq!(
        counter(&a.sim, "users.ok_total"),
        a.count("api.completed_total")
    );
    // Hits answer in 100 us of CPU and two 10 us cache legs at most; misses take 10 ms more.
    let lat = histogram(&a.sim, "users.latency");
    assert!(lat.p50 < 1_000_000, "{lat:?}");
    assert!(lat.max >= 10_000_000, "{lat:?}");
}

/// Key 0's share of Zipf(1000, 0.99) traffic at 10,000 requests a second: its rate.
fn hot_rate(total: f64) -> f64 {
    total * zipf_top_share(1_000, 0.99)
}

const ZIPF: &str = "(popularity: Zipf(n: 1000, s: 0.99))";

/// What happened after the cold start: runs to `from`, notes the counts, runs to `until`
/// (after the client has stopped, so every burst has ended) and returns the differences.
struct Warm {
    /// Database queries for key 0, and its bursts.
    queries: u64,
    bursts: u64,
    /// The service's counters, by name without the `api.` prefix.
    api: std::collections::BTreeMap<&'static str, u64>,
}

const API_COUNTERS: [&str; 8] = [
    "cache_misses_total",
    "cache_hits_total",
    "db_queries_total",
    "background_refreshes_total",
    "stale_served_total",
    "coalesced_total",
    "early_refreshes_total",
    "refreshes_skipped_total",
];

fn after_warmup(a: &mut Aside, from: SimTime, until: SimTime) -> Warm {
    let snapshot = |a: &Aside| {
        let q = a.count("db.key_queries_total.0");
        let b = histogram(&a.sim, "db.burst_queries").count;
        let api: Vec<u64> = API_COUNTERS
            .iter()
            .map(|n| a.count(&format!("api.{n}")))
            .collect();
        (q, b, api)
    };
    a.sim.run_until(from);
    let (q0, b0, api0) = snapshot(a);
    a.sim.run_until(until);
    let (q1, b1, api1) = snapshot(a);
    Warm {
        queries: q1 - q0,
        bursts: b1 - b0,
        api: API_COUNTERS
            .iter()
            .zip(api0.iter().zip(&api1))
            .map(|(&n, (x0, x1))| (n, x1 - x0))
            .collect(),
    }
}

#[test]
fn a_hot_key_expiry_stampedes_the_database() {
    // 10,000 requests a second on Zipf(1000, 0.99) keys: key 0 gets 1/H(1000, 0.99) = 13.7%
    // of them, lambda = 1,370/s. Its entry (TTL 2 s, no jitter) expires; the first request
    // after that misses and queries (20 ms); every request that looks up before that query's
    // set lands, w = 20 ms + the set's few us later, misses too. Per expiry: 1 +
    // Poisson(lambda w) queries, one burst at the database (they all overlap). Mean over the
    // expiries after the cold start within 5 standard errors, sqrt(lambda w / bursts).
    let mut a = aside(
        1,
        r#"Poisson("10000/s"), limit: Some(300000)"#,
        ZIPF,
        r#", ttl: Some((base: "2s"))"#,
        r#"Const("20ms")"#,
    );
    let Warm {
        queries, bursts, ..
    } = after_warmup(&mut a, secs(1), secs(32));
    let lambda_w = hot_rate(10_000.0) * 0.020;
    let mean = queries as f64 / bursts as f64;
    let se = (lambda_w / bursts as f64).sqrt();
    eprintln!(
        "no protection: {queries} queries in {bursts} bursts, mean {mean:.2} vs 1 + {lambda_w:.2} (se {se:.2})"
    );
    assert!((14..=15).contains(&bursts), "{bursts} expiries in 30 s");
    assert!(
        (mean - (1.0 + lambda_w)).abs() < 5.0 * se,
        "{mean} queries per expiry, expected {} +- {se}",
        1.0 + lambda_w
    );
    assert!(histogram(&a.sim, "db.burst_queries").max > 15);
}

#[test]
fn single_flight_sends_exactly_one_query_per_expiry_for_every_seed_and_load() {
    // The same workload with single-flight, at two loads and three seeds: every burst of key
    // 0 is a single query (the cold start's too), one per expiry; the requests that missed
    // while it ran waited for it instead: 1 + Poisson(lambda w) of them per expiry join.
    for rate in [1_000_u64, 10_000] {
        for seed in 1..=3 {
            let mut a = aside(
                seed,
                &format!(r#"Poisson("{rate}/s"), limit: Some({})"#, rate * 10),
                ZIPF,
                r#", ttl: Some((base: "2s")), stampede: SingleFlight(wait: "1s")"#,
                r#"Const("20ms")"#,
            );
            let Warm {
                queries, bursts, ..
            } = after_warmup(&mut a, secs(1), secs(12));
            let all = histogram(&a.sim, "db.burst_queries");
            assert_eq!(all.max, 1, "rate {rate}, seed {seed}: {all:?}");
            assert_eq!(queries, bursts, "rate {rate}, seed {seed}");
            assert!(
                (4..=5).contains(&bursts),
                "rate {rate}, seed {seed}: {bursts}"
            );
            assert_eq!(a.count("api.coalesce_timeouts_total"), 0);
            assert_eq!(a.count("api.db_queries_total"), a.count("db.queries_total"));
            if rate == 10_000 {
                // Waiters on every key's flights; key 0 alone contributes ~26 an expiry.
                let coalesced = a.count("api.coalesced_total");
                assert!(coalesced > 25 * 5, "seed {seed}: {coalesced}");
            }
            // Every request was answered: the waiters with their leader's answer.
            assert_eq!(
                counter(&a.sim, "users.ok_total"),
                counter(&a.sim, "users.sent_total")
            );
        }
    }
}

/// One key read at 2,000/s, TTL 500 ms, 20 ms queries, and a stampede protection: what
/// happened after the cold start, over 30 s; and the bench.
fn one_hot_key(seed: u64, stampede: &str) -> (Warm, Aside) {
    let mut a = aside(
        seed,
        r#"Poisson("2000/s"), limit: Some(60000)"#,
        "(popularity: HotSet(keys: 1, share: 1.0, rest: 0))",
        &format!(r#", ttl: Some((base: "500ms")), stampede: {stampede}"#),
        r#"Const("20ms")"#,
    );
    let counts = after_warmup(&mut a, secs(1), secs(31));
    (counts, a)
}

#[test]
fn xfetch_recomputes_about_e_to_the_one_over_beta_times_per_expiry() {
    // Per expiry, XFetch alone sends 1 + Poisson(E (e^{1/beta} - 1)) queries, E ~ Exp(1), in
    // heavy traffic (lambda tau e^{-1/beta} = 15 and 49 here): mean `expected_recomputations`
    // (= e^{1/beta} to 1e-6), variance a + a^2 with a = e^{1/beta} - 1. Four seeds of ~60
    // expiries each; the mean within 5 standard errors. Nothing waits and nothing misses.
    for beta in [1.0, 2.0] {
        let (mut queries, mut bursts) = (0, 0);
        for seed in 1..=4 {
            let (w, _) = one_hot_key(seed, &format!("XFetch(beta: {beta})"));
            queries += w.queries;
            bursts += w.bursts;
            assert_eq!(w.api["early_refreshes_total"], w.queries, "all early");
            assert_eq!(w.api["cache_misses_total"], 0);
        }
        let expected = expected_recomputations(2_000.0, SimDuration::from_millis(20), beta);
        assert!(
            (expected - libm::exp(1.0 / beta)).abs() < 1e-3,
            "{expected}"
        );
        let a_ = libm::exp(1.0 / beta) - 1.0;
        let se = ((a_ + a_ * a_) / bursts as f64).sqrt();
        let mean = queries as f64 / bursts as f64;
        eprintln!(
            "xfetch beta {beta}: {queries} queries in {bursts} expiries, mean {mean:.3} vs {expected:.3} (se {se:.3})"
        );
        assert!(bursts > 4 * 50, "{bursts}");
        assert!(
            (mean - expected).abs() < 5.0 * se,
            "beta {beta}: {mean} per expiry, expected {expected} +- {se}"
        );
    }
}

#[test]
fn refresh_ahead_sends_one_background_query_per_cycle_and_none_at_expiry() {
    // With RefreshAhead(before: 100ms) the first hit within 100 ms of expiry starts one
    // background refresh; it lands 20 ms later, well before the entry expires. After the
    // cold start, the key never misses: one query per cycle of ~420 ms, all in the
    // background, and every request answered from the cache.
    let (w, a) = one_hot_key(7, r#"RefreshAhead(before: "100ms")"#);
    assert_eq!(w.queries, w.bursts, "one query per burst");
    let cycles = 30.0 / 0.42;
    assert!(
        (w.queries as f64 - cycles).abs() < 3.0,
        "{} refreshes, ~{cycles:.0} cycles",
        w.queries
    );
    assert_eq!(w.api["background_refreshes_total"], w.queries);
    assert_eq!(w.api["db_queries_total"], w.queries);
    assert_eq!(w.api["cache_misses_total"], 0, "none at expiry");
    assert_eq!(w.api["refreshes_skipped_total"], 0);
    // The only misses were the cold start's: about lambda x 20 ms of them.
    let misses = a.count("api.cache_misses_total");
    assert!((1..80).contains(&misses), "{misses}");
}

#[test]
fn stale_while_revalidate_answers_from_stale_during_the_refresh() {
    // Entries live 500 ms + 1 s stale. At each logical expiry the first request is answered
    // stale and starts the refresh; the requests in the next 20 ms are answered stale too,
    // 1 + Poisson(2,000 x 20 ms) per cycle, and no request ever waits for the database
    // after the cold start.
    let (w, a) = one_hot_key(3, r#"StaleWhileRevalidate(stale_for: "1s")"#);
    assert_eq!(w.queries, w.bursts);
    assert_eq!(w.api["background_refreshes_total"], w.queries);
    assert_eq!(w.api["cache_misses_total"], w.api["stale_served_total"]);
    let per_cycle = w.api["stale_served_total"] as f64 / w.queries as f64;
    let se = (40.0 / w.queries as f64).sqrt();
    eprintln!(
        "swr: {} refreshes, {per_cycle:.2} stale answers each",
        w.queries
    );
    assert!(
        (per_cycle - 41.0).abs() < 5.0 * se,
        "{per_cycle} stale answers a cycle"
    );
    let lat = a
        .sim
        .metrics()
        .series("users.latency.max")
        .expect("sampled");
    let worst = lat.max_over(secs(1), secs(31)).expect("requests");
    assert!(
        worst < 1_000_000.0,
        "slowest answer after the cold start: {worst} ns"
    );
}

/// The avalanche bench (C2): a loader writes 100,000 keys' worth of requests through the
/// service (WriteThrough, keys uniform over 100,000, so 63% of them are written) at
/// 200,000/s in the first 0.5 s, a deploy's warm-up; then users read 2,000 of those keys at
/// 10,000/s (5/s each) from 0.5 s to 12 s; TTL 5 s with `jitter`. Returns the database's
/// read queries in each second from 0 to 12 s.
fn avalanche(seed: u64, jitter: f64) -> Vec<u64> {
    let (mut sim, h) = sim_one_host(seed);
    cache(
        &mut sim,
        h,
        "redis",
        r#"(shards: 8, service: Exp(mean: "5us"))"#,
    );
    database(
        &mut sim,
        h,
        "db",
        r#"(max_connections: 100000, queries: [(name: "get", time: Const("5ms")),
            (name: "put", time: Const("1ms"))])"#,
    );
    let ttl = format!(r#"ttl: Some((base: "5s", jitter: {jitter}))"#);
    service(
        &mut sim,
        h,
        "api",
        &format!(
            r#"(workers: 5000, kinds: [
                (name: "read", service: Const("50us"), calls: [(target: "db", kind: 0, timeout: "5s")],
                 cache: Some((cache: "redis", {ttl}))),
                (name: "load", service: Const("50us"), calls: [(target: "db", kind: 1, timeout: "5s")],
                 cache: Some((cache: "redis", {ttl}, writes: true, mode: WriteThrough)))])"#
        ),
    );
    let keys = "(popularity: HotSet(keys: 2000, share: 1.0, rest: 0))";
    client(
        &mut sim,
        h,
        "loader",
        r#"(target: "api", arrivals: Poisson("200000/s"), limit: Some(100000),
            mix: [(name: "load", kind: 1, weight: 1.0)],
            keys: Some((popularity: Uniform(n: 100000))))"#,
    );
    client(
        &mut sim,
        h,
        "users",
        &format!(
            r#"(target: "api", arrivals: Schedule([("500ms", "10000/s")]), limit: Some(115000),
                keys: Some({keys}))"#
        ),
    );
    sim.run_until(secs(12));
    let series = sim
        .metrics()
        .series("api.db_queries_total")
        .expect("sampled");
    let at = |t: u64| series.value_at(secs(t)).expect("sampled") as u64;
    (0..12).map(|t| at(t + 1) - at(t)).collect()
}

#[test]
fn jittered_ttls_spread_a_mass_expiry() {
    // Without jitter the warm-up's entries expire in [5 s, 5.5 s] (and the read keys the
    // loader missed, set by their first read at 0.5-1.5 s, soon after): the second [5 s, 6 s)
    // holds at least 0.63 x 2,000 x P(read within 0.5 s) = 1,265 x 0.89 = 1,125 refills.
    // With jitter 1.0, each key's TTL is uniform on [5 s, 10 s]: any one second holds a key's
    // expiry with probability at most 1/5, so its refills are at most Binomial(2,000, 0.2),
    // 400 + 5 sd (17.9) < 490, plus stampede extras (5/s x 5 ms x 400 = 10). Every key is
    // refilled about once either way: jitter moves the load, it does not remove it.
    let flat = avalanche(1, 0.0);
    let spread = avalanche(1, 1.0);
    eprintln!("db reads per second: no jitter {flat:?}, jitter 1.0 {spread:?}");
    let peak = |v: &[u64]| *v[3..].iter().max().expect("seconds");
    let (flat_peak, spread_peak) = (peak(&flat), peak(&spread));
    assert_eq!(flat[5], flat_peak, "the mass expiry is at 5 s: {flat:?}");
    assert!(flat_peak >= 1_000, "{flat:?}");
    assert!(spread_peak < 500, "{spread:?}");
    assert!(flat_peak >= 3 * spread_peak, "{flat_peak} vs {spread_peak}");
    // Without jitter, every key is refilled once in [3 s, 9 s); with jitter the refills of
    // that first expiry reach to 11.5 s, and a key whose first TTL was short may expire again
    // before 12 s: at least once each.
    let flat_refills: u64 = flat[3..9].iter().sum();
    assert!((1_950..=2_100).contains(&flat_refills), "{flat_refills}");
    let spread_refills: u64 = spread[3..12].iter().sum();
    assert!(
        (1_950..=2_400).contains(&spread_refills),
        "{spread_refills}"
    );
}

#[test]
fn negative_caching_and_a_bloom_filter_stop_penetration_traffic() {
    // 50,000 reads (5,000/s for 10 s) on Zipf(1000, 0.99) keys, 30% of them for keys that do
    // not exist. Without a fix each of those misses the cache and queries the database (a
    // NotFound at full query cost): Binomial(50,000, 0.3). Negative caching cannot help when
    // the missing ids never repeat (the default: 2^48 of them), but stops a small set of
    // hammered bad ids: with 100 of them and a 1 s negative TTL, about one query per id per
    // second. A Bloom filter of the 1,000 keys stops all but its false positives: Binomial
    // over the missing reads with this filter's rate, (ones / bits)^hashes.
    let run = |missing_keys: &str, cache_use: &str| {
        let mut a = aside(
            9,
            r#"Poisson("5000/s"), limit: Some(50000)"#,
            &format!("(popularity: Zipf(n: 1000, s: 0.99), missing: 0.3{missing_keys})"),
            &format!(r#", ttl: Some((base: "60s")){cache_use}"#),
            r#"Const("5ms")"#,
        );
        a.sim.run_until(secs(11));
        let missing = counter(&a.sim, "users.not_found_total");
        assert_eq!(counter(&a.sim, "users.ok_total"), 50_000);
        assert_binomial("missing reads", missing, 50_000, 0.3);
        (missing, a)
    };
    let (missing, base) = run("", "");
    assert_eq!(
        base.count("db.not_found_total"),
        missing,
        "every one reaches the database"
    );

    let (missing, neg) = run("", r#", negative_ttl: Some("1s")"#);
    assert_eq!(
        neg.count("db.not_found_total"),
        missing,
        "new ids: nothing to reuse"
    );
    assert_eq!(neg.count("api.negative_hits_total"), 0);

    let (missing, hammered) = run(", missing_keys: 100", r#", negative_ttl: Some("1s")"#);
    let reached = hammered.count("db.not_found_total");
    // Each id is asked 15 times a second: a query, then hits for 1 s; ~11 queries an id.
    assert!((900..=1_300).contains(&reached), "{reached} of {missing}");
    assert_eq!(hammered.count("api.negative_hits_total") + reached, missing);

    let (missing, bloom) = run(
        "",
        r#", bloom: Some((expected_keys: 1000, false_positive_rate: 0.01))"#,
    );
    let mut filter = BloomFilter::new(&BloomConfig {
        expected_keys: 1_000,
        false_positive_rate: 0.01,
    })
    .expect("valid");
    (0..1_000).for_each(|k| {
        filter.insert(k);
    });
    let rate = libm::pow(
        filter.ones() as f64 / filter.bits() as f64,
        f64::from(filter.hashes()),
    );
    let reached = bloom.count("db.not_found_total");
    assert_binomial("false positives", reached, missing, rate);
    assert_eq!(bloom.count("api.bloom_rejected_total") + reached, missing);
    eprintln!(
        "penetration: {missing} missing reads; database reached by all without a fix, {} with \
         negative caching of 100 hammered ids, {reached} with a Bloom filter (rate {rate:.4})",
        hammered.count("db.not_found_total")
    );
}

#[test]
fn a_hot_key_saturates_its_shard_through_the_service_and_an_l1_relieves_it() {
    // 20,000 reads a second, half of them for one key, through a service to 8 shards of
    // 10,000 commands a second each: the hot key's shard gets 10,000/s of gets alone, plus its
    // share of the rest, over its capacity; its queue grows and every request for a key on it
    // waits (then times out at 100 ms and goes to the database, whose answer is written back
    // through the same shard). With an L1 of 1 s per service instance, the hot key's reads
    // stay in the process: one remote get a second for it, and the shard idles like the
    // others.
    let run = |l1: &str| {
        let (mut sim, h) = sim_one_host(13);
        let id = cache(
            &mut sim,
            h,
            "redis",
            r#"(shards: 8, service: Exp(mean: "100us"), queue_capacity: None)"#,
        );
        database(
            &mut sim,
            h,
            "db",
            r#"(max_connections: 100000, queries: [(name: "get", time: Const("5ms"))])"#,
        );
        service(
            &mut sim,
            h,
            "api",
            &format!(
                r#"(workers: 10000, kinds: [(name: "read", service: Const("50us"),
                     calls: [(target: "db", timeout: "1s")],
                     cache: Some((cache: "redis", timeout: "100ms", ttl: Some((base: "60s"))
                                  {l1})))])"#
            ),
        );
        client(
            &mut sim,
            h,
            "users",
            r#"(target: "api", arrivals: Poisson("20000/s"), limit: Some(60000),
                keys: Some((popularity: HotSet(keys: 1, share: 0.5, rest: 100000))))"#,
        );
        sim.run_until(secs(3));
        let hot = sim.inspect::<Cache<Rpc>>(id).expect("a cache").shard_of(0);
        (sim, hot)
    };
    let (base, hot) = run("");
    let queue = gauge(&base, &format!("redis.queue_len.{hot}"));
    // Arrivals at the hot shard exceed 11,000/s against 10,000/s of service: over 3 s its
    // queue grows by more than 3,000 (the timed-out gets come back as sets, adding more).
    assert!(queue > 2_500.0, "hot shard queue {queue}");
    let others: f64 = (0..8)
        .filter(|&s| s != hot)
        .map(|s| gauge(&base, &format!("redis.queue_len.{s}")))
        .fold(0.0, f64::max);
    assert!(others < 20.0, "the other shards idle: {others}");
    let errors = counter(&base, "api.cache_errors_total");
    assert!(errors > 10_000, "timed-out gets: {errors}");
    let p99 = histogram(&base, "users.latency").p99;
    assert!(
        p99 >= 100_000_000,
        "users wait for the cache timeout: p99 {p99}"
    );

    let (l1, hot) = run(r#", l1: Some((capacity: 1000, ttl: "1s"))"#);
    let series = l1
        .metrics()
        .series(&format!("redis.queue_len.{hot}"))
        .expect("sampled");
    let worst = series.max_over(SimTime::ZERO, secs(3)).expect("sampled");
    assert!(
        worst < 50.0,
        "with an L1 the hot shard's queue stays short: {worst}"
    );
    let l1_hits = counter(&l1, "api.l1_hits_total");
    // The hot key's ~30,000 reads, minus about one a second that goes to the cache.
    assert_binomial("hot reads", l1_hits + 3, 60_000, 0.5);
    assert_eq!(counter(&l1, "api.cache_errors_total"), 0);
    let p99 = histogram(&l1, "users.latency").p99;
    assert!(p99 < 10_000_000, "p99 {p99} ns with an L1");
    eprintln!(
        "hot key: queue {queue} on its shard without an L1 ({errors} cache timeouts), at most {worst} with one"
    );
}

#[test]
fn coalesced_gets_send_one_get_per_round_trip_and_spare_the_shard() {
    // One key read 10,000 times a second from one service instance, a shard of 1 ms a command
    // (1,000 a second). Without coalescing every read is a get: the shard gets ten times what
    // it serves, its queue grows, gets time out. With `coalesce_gets` a get is in flight at
    // most once: each lasts a service time S ~ Exp(1 ms) (messages are instant here), reads
    // arriving meanwhile wait for it, and the next get starts with the next read, A ~ Exp(0.1
    // ms) later. Gets form a renewal process of mean gap 1.1 ms: over 5 s, 4,545 of them, sd
    // sqrt(T var / mean^3) = sqrt(5 x 1.01e-6 / 1.1e-3^3) = 62; within 5 sd.
    let run = |coalesce: bool| {
        let (mut sim, h) = sim_one_host(21);
        cache(
            &mut sim,
            h,
            "redis",
            r#"(shards: 1, service: Exp(mean: "1ms"))"#,
        );
        database(
            &mut sim,
            h,
            "db",
            r#"(max_connections: 100000, queries: [(name: "get", time: Const("1ms"))])"#,
        );
        service(
            &mut sim,
            h,
            "api",
            &format!(
                r#"(workers: 100000, kinds: [(name: "read", service: Const("10us"),
                     calls: [(target: "db", timeout: "1s")],
                     cache: Some((cache: "redis", timeout: "100ms", ttl: Some((base: "1h")),
                                  coalesce_gets: {coalesce})))])"#
            ),
        );
        client(
            &mut sim,
            h,
            "users",
            r#"(target: "api", arrivals: Poisson("10000/s"), limit: Some(50000),
                keys: Some((popularity: HotSet(keys: 1, share: 1.0, rest: 0))))"#,
        );
        sim.run_until(secs(10));
        sim
    };
    let plain = run(false);
    assert_eq!(counter(&plain, "api.cache_gets_total"), 50_000);
    let errors = counter(&plain, "api.cache_errors_total");
    assert!(
        errors > 40_000,
        "the shard cannot keep up: {errors} timeouts"
    );

    let sim = run(true);
    let (lookups, gets, waited) = (
        counter(&sim, "api.cache_lookups_total"),
        counter(&sim, "api.cache_gets_total"),
        counter(&sim, "api.gets_coalesced_total"),
    );
    assert_eq!(lookups, 50_000);
    assert_eq!(gets + waited, lookups, "every lookup got or waited");
    assert_eq!(
        counter(&sim, "redis.gets_total"),
        gets,
        "the shard saw only the gets"
    );
    assert!(
        (gets as f64 - 4_545.0).abs() < 5.0 * 62.0,
        "{gets} gets, expected 4,545 +- 62"
    );
    assert_eq!(counter(&sim, "api.cache_errors_total"), 0);
    // The first get missed (cold) and its waiters recomputed with it: then hits only.
    assert_eq!(counter(&sim, "users.ok_total"), 50_000);
    let queries = counter(&sim, "db.queries_total");
    assert!((1..=20).contains(&queries), "{queries} queries");
}

#[test]
fn writes_delete_write_through_or_leave_the_cached_key() {
    // A reader reads key 0 ten times a second (TTL 1 h: one cold miss, then hits); one write
    // of key 0 at 1 s. After it, by mode: `Aside` deletes the entry and the next read reloads
    // it (a second read query); `WriteThrough` writes the new value (a second set, no query);
    // `WriteAround` leaves the old value, which keeps being read (no set, no query).
    let run = |mode: &str| {
        let (mut sim, h) = sim_one_host(5);
        cache(
            &mut sim,
            h,
            "redis",
            r#"(shards: 2, service: Const("10us"))"#,
        );
        database(
            &mut sim,
            h,
            "db",
            r#"(queries: [(name: "get", time: Const("1ms")), (name: "put", time: Const("2ms"))])"#,
        );
        service(
            &mut sim,
            h,
            "api",
            &format!(
                r#"(workers: 10, kinds: [
                    (name: "read", service: Const("10us"), calls: [(target: "db", kind: 0, timeout: "1s")],
                     cache: Some((cache: "redis", ttl: Some((base: "1h"))))),
                    (name: "write", service: Const("10us"), calls: [(target: "db", kind: 1, timeout: "1s")],
                     cache: Some((cache: "redis", ttl: Some((base: "1h")), writes: true, mode: {mode})))])"#
            ),
        );
        let one_key = "keys: Some((popularity: HotSet(keys: 1, share: 1.0, rest: 0)))";
        client(
            &mut sim,
            h,
            "reader",
            &format!(r#"(target: "api", arrivals: Constant("10/s"), limit: Some(30), {one_key})"#),
        );
        client(
            &mut sim,
            h,
            "writer",
            &format!(
                r#"(target: "api", arrivals: Schedule([("1s", "1/s")]), limit: Some(1),
                    mix: [(name: "w", kind: 1, weight: 1.0)], {one_key})"#
            ),
        );
        sim.run_until(secs(4));
        let c = |n: &str| counter(&sim, &format!("api.{n}"));
        (
            counter(&sim, "db.queries_total"),
            c("cache_sets_total"),
            c("cache_deletes_total"),
            c("cache_misses_total"),
            counter(&sim, "reader.ok_total") + counter(&sim, "writer.ok_total"),
        )
    };
    // (queries, sets, deletes, read misses, answered)
    assert_eq!(run("Aside"), (3, 1 + 1, 1, 2, 31));
    assert_eq!(run("WriteThrough"), (2, 2, 0, 1, 31));
    assert_eq!(run("WriteAround"), (2, 1, 0, 1, 31));
}
