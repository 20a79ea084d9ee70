//! The cache family end to end: keys on requests, the `Cache` actor's shards, cache-aside in a
//! `Service` with its stampede protections, and the failure modes C1–C5 they reproduce, each
//! measured with a tolerance derived from its variance.
//!
//! Components are built from RON text with `from_ron`, as a scenario writes them, so the tests
//! also pin the config field names the scenario files use.

use faultline::engine::rng::unit_f64;
use faultline::model::cache::{Cache, CacheConfig, KeySpace, Keys};
use faultline::model::rpc::{
    CacheOp, CacheReply, CacheRequest, CacheResult, Client, ClientConfig, Database, DatabaseConfig,
    LoadBalancer, LoadBalancerConfig, Rpc, Service, ServiceConfig, Tick, from_ron,
};
use faultline::{Actor, ActorId, Ctx, Durable, HostId, Sim, SimConfig, SimDuration, SimTime};

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

fn counter(sim: &Sim<Rpc>, name: &str) -> u64 {
    sim.metrics()
        .counter_value(name)
        .unwrap_or_else(|| panic!("no counter {name}"))
}

fn gauge(sim: &Sim<Rpc>, name: &str) -> f64 {
    sim.metrics()
        .gauge_value(name)
        .unwrap_or_else(|| panic!("no gauge {name}"))
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
