//! A Kafka producer: records at a rate, partitioned as Kafka's default partitioner does,
//! batched per partition with `linger` and `batch_size`, and sent to each partition's leader.
//!
//! - **Records.** Each arrival (Poisson or evenly spaced, at `rate`) is one record with a key
//!   drawn from `keys` (a [`KeySpace`]) or no key, a size drawn from `record_bytes`, and a
//!   poison flag (`poison`: chosen sequence numbers, or a share drawn per record). Its id is
//!   `actor id << 40 | sequence number`, unique in a run; the sequence number (from 0, the
//!   records this producer created) survives crashes, so a restarted producer does not reuse
//!   ids. That counter is simulator bookkeeping, not producer state: a real producer's
//!   record identity is its payload.
//! - **Partition.** A keyed record goes to [`partition_for_key`] (murmur2 of the key's decimal
//!   text, as a Java producer with a `StringSerializer` sends it). With `salt: Some(n)` (key
//!   salting, the usual cure for a hot key, K7) the producer sends each keyed record under
//!   one of `n` composite keys `"<key>-<s>"`, `s` drawn uniformly from `0..n` per record, so
//!   one key's records spread over up to `n` partitions; the record's own key is unchanged
//!   (its consumers must then merge the sub-keys, and per-key order holds only within each
//!   one). A null-keyed one goes to the
//!   [`StickyPartitioner`]'s partition, which moves on each time a batch for it is closed
//!   (KIP-480; Kafka moves when the next record would open a new batch, which is the same
//!   sequence of partitions).
//! - **Batching** (the `RecordAccumulator`'s rules, record overheads ignored): a record joins
//!   its partition's open batch; if it would take a non-empty batch past `batch_size`, that
//!   batch is sent first and the record opens a new one. A batch that reaches `batch_size` is
//!   sent at once; otherwise it is sent `linger` after it was opened. With `linger` 0 every
//!   record is sent as it comes (Kafka with `linger.ms=0` still batches records that arrive
//!   while earlier requests are in flight; without in-flight limits that never happens here).
//! - **Sending.** Each batch is one [`Produce`] to the partition's leader (`brokers`: one
//!   actor name for all partitions, or one per partition). Acks are counted by record; there
//!   are no retries, no request timeout and no in-flight limit (`max.in.flight.requests`
//!   is 5 in Kafka): a lost request is simply never acknowledged.
//!
//! A crash loses the open batches and the requests in flight (nothing is acknowledged for
//! them): the records a producer loses when it dies with unsent data.

use std::collections::{BTreeMap, BTreeSet};
use std::marker::PhantomData;

use rand::RngExt;
use serde::{Deserialize, Serialize};

use super::msg::{Log, Produce, ProduceAck, Tick, TopicPartition};
use super::partition::NewRecord;
use super::partitioner::{
    StickyPartitioner, key_bytes, partition_for_key, partition_for_key_bytes,
};
use crate::actor::{Actor, ActorId, Ctx, Durable};
use crate::dist::{Dist, Sampler, Scalar};
use crate::engine::time::{SimDuration, SimTime};
use crate::metrics::{CounterId, GaugeId, HistogramId};
use crate::model::Carry;
use crate::model::cache::{KeySpace, Keys};
use crate::model::rpc::{ConfigError, Rate, Validate, compile, nonzero};

/// `linger.ms` by default: 5 ms, the Java producer's default since Kafka 4.0 (KIP-1030,
/// "Change constraints and default values for various configurations": `linger.ms` previous
/// 0, new 5, target release 4.0). Before 4.0 it was 0; set `linger: "0ms"` to model an older
/// client.
pub const DEFAULT_LINGER: SimDuration = SimDuration::from_millis(5);

/// `batch.size` by default: 16384 bytes (`ProducerConfig`, "batch.size", default 16384;
/// Apache Kafka documentation, 3.3 Producer Configs).
pub const DEFAULT_BATCH_SIZE: u32 = 16_384;

/// Bytes per record by default: 1 KiB. An **assumption** (Kafka has no default record size):
/// small JSON events are a few hundred bytes to a few KB.
pub const DEFAULT_RECORD_BYTES: f64 = 1024.0;

/// How records arrive.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum ProduceRate {
    /// Exponential gaps: `Poisson("1000/s")`.
    Poisson(Rate),
    /// Evenly spaced, the first one gap after the start: `Constant("1000/s")`.
    Constant(Rate),
    /// Poisson, the rate changing at the given times: `Schedule([("0s", "1000/s"), ("2m",
    /// "3000/s"), ("3m", "1000/s")])`. Nothing is produced before the first step.
    Schedule(Vec<(SimTime, Rate)>),
}

/// The next arrival of a Poisson process whose rate steps at `steps`, after `now`, for one
/// unit exponential draw per attempt (`draw`). A draw that would cross the next step is
/// dropped and a fresh one taken at the step, with the new rate: exact, by memorylessness.
/// None when no step after `now` has a rate that ever produces.
fn next_scheduled(
    steps: &[(SimTime, Rate)],
    now: SimTime,
    mut draw: impl FnMut() -> f64,
) -> Option<f64> {
    let mut t = now.as_nanos() as f64;
    loop {
        let i = match steps.iter().rposition(|&(at, _)| at.as_nanos() as f64 <= t) {
            Some(i) => i,
            None => {
                t = steps.first()?.0.as_nanos() as f64;
                continue;
            }
        };
        let next = steps.get(i + 1).map(|&(at, _)| at.as_nanos() as f64);
        let at = t + draw() * steps[i].1.gap_nanos();
        match next {
            Some(step) if at >= step => t = step,
            _ if at.is_finite() => return Some(at),
            _ => return None,
        }
    }
}

/// The partition of `key`'s records sent under sub-key `s`: the composite key `"<key>-<s>"`'s
/// murmur2 partition among `partitions`.
pub fn salted_partition(key: u64, s: u32, partitions: u32) -> u32 {
    // At most 20 + 1 + 10 bytes, built without allocating.
    let mut buf = [0_u8; 31];
    let (k, sub) = (key_bytes(key), key_bytes(u64::from(s)));
    let (k, sub) = (k.as_bytes(), sub.as_bytes());
    buf[..k.len()].copy_from_slice(k);
    buf[k.len()] = b'-';
    let end = k.len() + 1 + sub.len();
    buf[k.len() + 1..end].copy_from_slice(sub);
    partition_for_key_bytes(&buf[..end], partitions)
}

/// Which records are poison pills (K3): `poison: (ids: [10, 500])` or `poison: (share: 0.001)`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Poison {
    /// Sequence numbers (the n-th record this producer creates, from 0) that are poison.
    #[serde(default)]
    pub ids: BTreeSet<u64>,
    /// Each other record is poison with this probability, in `[0, 1]`; default 0 (no draw).
    #[serde(default)]
    pub share: f64,
}

/// A [`Producer`]'s config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProducerConfig {
    pub topic: String,
    /// The topic's partition count, >= 1 (what the producer's metadata says).
    pub partitions: u32,
    /// The leader of each partition by actor name: one name for all, or exactly `partitions`.
    pub brokers: Vec<String>,
    pub rate: ProduceRate,
    /// The records' keys; None (the default): null keys, partitioned sticky.
    #[serde(default)]
    pub keys: Option<KeySpace>,
    /// Bytes per record (a number distribution, rounded, at least 1). Default `Const(1024)`.
    #[serde(default = "default_record_bytes")]
    pub record_bytes: Dist,
    /// How long a batch waits for more records. Default 5 ms (Kafka 4.0).
    #[serde(default = "default_linger")]
    pub linger: SimDuration,
    /// A batch is sent when it holds this many bytes, >= 1. Default 16384.
    #[serde(default = "default_batch_size")]
    pub batch_size: u32,
    /// Create at most this many records (over all incarnations); None unbounded.
    #[serde(default)]
    pub limit: Option<u64>,
    #[serde(default)]
    pub poison: Option<Poison>,
    /// Key salting: send each keyed record under one of this many composite keys
    /// (`"<key>-<s>"`, `s` uniform in `0..salt`), >= 1; needs `keys`. Default None.
    #[serde(default)]
    pub salt: Option<u32>,
}

fn default_record_bytes() -> Dist {
    Dist::Const(Scalar::number(DEFAULT_RECORD_BYTES))
}

fn default_linger() -> SimDuration {
    DEFAULT_LINGER
}

fn default_batch_size() -> u32 {
    DEFAULT_BATCH_SIZE
}

impl ProducerConfig {
    /// The actor names this config refers to, with their field paths.
    pub fn targets(&self) -> Vec<(String, &str)> {
        let names = self.brokers.iter().enumerate();
        names
            .map(|(i, b)| (format!("brokers[{i}]"), b.as_str()))
            .collect()
    }
}

impl Validate for ProducerConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        nonzero("partitions", u64::from(self.partitions))?;
        nonzero("batch_size", u64::from(self.batch_size))?;
        if self.brokers.is_empty() {
            return Err(ConfigError::Empty {
                field: "brokers".into(),
            });
        }
        if self.brokers.len() != 1 && self.brokers.len() != self.partitions as usize {
            return Err(ConfigError::Invalid {
                field: "brokers".into(),
                reason: format!(
                    "{} names: give one broker for all partitions or one per partition ({})",
                    self.brokers.len(),
                    self.partitions
                ),
            });
        }
        if let ProduceRate::Schedule(steps) = &self.rate {
            if steps.is_empty() {
                return Err(ConfigError::Empty {
                    field: "rate.Schedule".into(),
                });
            }
            for (i, w) in steps.windows(2).enumerate() {
                if w[1].0 <= w[0].0 {
                    return Err(ConfigError::Invalid {
                        field: format!("rate.Schedule[{}]", i + 1),
                        reason: format!(
                            "steps must be in strictly increasing time order, but {} follows {}",
                            w[1].0, w[0].0
                        ),
                    });
                }
            }
        }
        if let Some(keys) = &self.keys {
            keys.validate().map_err(|e| e.within("keys"))?;
        }
        if let Some(salt) = self.salt {
            nonzero("salt", u64::from(salt))?;
            if self.keys.is_none() {
                return Err(ConfigError::Invalid {
                    field: "salt".into(),
                    reason: "salting splits keys, and the records have none: set `keys`".into(),
                });
            }
        }
        let bytes = compile("record_bytes", &self.record_bytes)?;
        if bytes.dist().is_duration() {
            return Err(ConfigError::Invalid {
                field: "record_bytes".into(),
                reason: "a size is a number of bytes, not a duration".into(),
            });
        }
        if let Some(p) = &self.poison
            && !(0.0..=1.0).contains(&p.share)
        {
            return Err(ConfigError::Invalid {
                field: "poison.share".into(),
                reason: format!("{} is not in [0, 1]", p.share),
            });
        }
        Ok(())
    }
}

#[derive(Clone, Copy)]
struct ProducerMetrics {
    records: CounterId,
    poison: CounterId,
    batches: CounterId,
    acked: CounterId,
    errors: CounterId,
    in_flight: GaugeId,
    batch_records: HistogramId,
    batch_bytes: HistogramId,
    ack_latency: HistogramId,
}

#[derive(Clone, Debug)]
struct OpenBatch {
    seq: u64,
    records: Vec<NewRecord>,
    bytes: u64,
}

#[derive(Clone, Copy, Debug)]
struct InFlight {
    records: u64,
    sent: SimTime,
}

/// A producer; see the module docs.
///
/// Metrics (owner = the producer's name): `records_total` (created), of them `poison_total`;
/// `batches_total` (sent), `batch_records` and `batch_bytes` histograms; `acked_total` and
/// `errors_total` (records in acknowledged and refused batches); `in_flight` gauge (batches
/// sent and not answered); `ack_latency` histogram (ns, batch sent to ack, successes only).
#[derive(Clone)]
pub struct Producer<M> {
    config: ProducerConfig,
    record_bytes: Sampler,
    keys: Option<Keys>,
    unit_exp: Sampler,
    sticky: StickyPartitioner,
    all_partitions: Vec<u32>,
    /// Resolved in `on_start`, by partition.
    leaders: Vec<ActorId>,
    open: Vec<Option<OpenBatch>>,
    next_batch: u64,
    in_flight: BTreeMap<u64, InFlight>,
    next_constant_ns: f64,
    /// Records created, over all incarnations.
    created: Durable<u64>,
    metrics: Option<ProducerMetrics>,
    _m: PhantomData<M>,
}

impl<M> Producer<M> {
    /// Validates `config`. Clones share the record counter: build one and clone it in the
    /// factory.
    pub fn new(config: ProducerConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let record_bytes = compile("record_bytes", &config.record_bytes)?;
        let keys = match &config.keys {
            Some(k) => Some(Keys::new(k).map_err(|e| e.within("keys"))?),
            None => None,
        };
        let unit_exp = compile(
            "Exp(1)",
            &Dist::Exp {
                mean: Scalar::number(1.0),
            },
        )?;
        let n = config.partitions;
        Ok(Producer {
            record_bytes,
            keys,
            unit_exp,
            sticky: StickyPartitioner::new(),
            all_partitions: (0..n).collect(),
            leaders: Vec::new(),
            open: vec![None; n as usize],
            next_batch: 0,
            in_flight: BTreeMap::new(),
            next_constant_ns: 0.0,
            created: Durable::new(0),
            metrics: None,
            config,
            _m: PhantomData,
        })
    }

    /// Records created so far, over all incarnations.
    pub fn created(&self) -> Durable<u64> {
        self.created.clone()
    }

    fn may_create(&self) -> bool {
        self.config
            .limit
            .is_none_or(|limit| *self.created.borrow() < limit)
    }
}

impl<M: Carry<Log>> Producer<M> {
    fn m(&self) -> ProducerMetrics {
        self.metrics.expect("registered at start")
    }

    fn schedule_arrival(&mut self, ctx: &mut Ctx<'_, M>) {
        if !self.may_create() {
            return;
        }
        let at_ns = match &self.config.rate {
            ProduceRate::Constant(rate) => {
                self.next_constant_ns += rate.gap_nanos();
                self.next_constant_ns
            }
            ProduceRate::Poisson(rate) => {
                ctx.now().as_nanos() as f64 + self.unit_exp.sample(ctx.rng()) * rate.gap_nanos()
            }
            ProduceRate::Schedule(steps) => {
                let unit = &self.unit_exp;
                let now = ctx.now();
                match next_scheduled(steps, now, || unit.sample(ctx.rng())) {
                    Some(at) => at,
                    None => return,
                }
            }
        };
        // Saturating float-to-int: a gap beyond u64 nanoseconds means "never".
        let at = SimTime::from_nanos(libm::round(at_ns) as u64);
        ctx.set_timer_at(at, M::wrap(Log::Tick(Tick::Arrive)));
    }

    /// Creates one record and hands it to its partition's batch.
    fn arrive(&mut self, ctx: &mut Ctx<'_, M>) {
        let seq = {
            let mut created = self.created.borrow_mut();
            let seq = *created;
            *created += 1;
            seq
        };
        let n = self.config.partitions;
        let (key, partition) = match self.keys.as_mut() {
            Some(keys) => {
                let key = keys.draw(ctx.rng());
                let partition = match self.config.salt {
                    Some(salt) if salt > 1 => {
                        let s = ctx.rng().random_range(0..salt);
                        salted_partition(key, s, n)
                    }
                    _ => partition_for_key(key, n),
                };
                (key, partition)
            }
            None => {
                let p = self.sticky.partition(&self.all_partitions, n, ctx.rng());
                (crate::model::rpc::NO_KEY, p)
            }
        };
        assert!(partition < n, "partition {partition} of {n}");
        let size = self.record_bytes.sample(ctx.rng());
        let bytes = libm::round(size).clamp(1.0, f64::from(u32::MAX)) as u32;
        let poison = match &self.config.poison {
            None => false,
            Some(p) if p.ids.contains(&seq) => true,
            Some(p) if p.share > 0.0 => ctx.rng().random_bool(p.share),
            Some(_) => false,
        };
        let m = self.m();
        ctx.metrics().inc(m.records);
        if poison {
            ctx.metrics().inc(m.poison);
        }
        let record = NewRecord {
            id: (u64::from(ctx.me().0) << 40) | seq,
            key,
            bytes,
            poison,
        };
        self.append(ctx, partition, record);
    }

    fn append(&mut self, ctx: &mut Ctx<'_, M>, partition: u32, record: NewRecord) {
        let p = partition as usize;
        let batch_size = u64::from(self.config.batch_size);
        let incoming = u64::from(record.bytes);
        if self.open[p]
            .as_ref()
            .is_some_and(|b| !b.records.is_empty() && b.bytes + incoming > batch_size)
        {
            self.send(ctx, partition);
        }
        if self.open[p].is_none() {
            let seq = self.next_batch;
            self.next_batch += 1;
            self.open[p] = Some(OpenBatch {
                seq,
                records: Vec::new(),
                bytes: 0,
            });
            if !self.config.linger.is_zero() {
                let tick = Tick::Linger { partition, seq };
                ctx.set_timer(self.config.linger, M::wrap(Log::Tick(tick)));
            }
        }
        let batch = self.open[p].as_mut().expect("opened above");
        batch.records.push(record);
        batch.bytes += incoming;
        if batch.bytes >= batch_size || self.config.linger.is_zero() {
            self.send(ctx, partition);
        }
    }

    /// Closes `partition`'s open batch and sends it to the partition's leader.
    fn send(&mut self, ctx: &mut Ctx<'_, M>, partition: u32) {
        let Some(batch) = self.open[partition as usize].take() else {
            return;
        };
        assert!(!batch.records.is_empty(), "a batch is opened for a record");
        if self.keys.is_none() {
            let n = self.config.partitions;
            self.sticky
                .on_new_batch(partition, &self.all_partitions, n, ctx.rng());
        }
        let m = self.m();
        let count = batch.records.len() as u64;
        ctx.metrics().inc(m.batches);
        ctx.metrics().record(m.batch_records, count);
        ctx.metrics().record(m.batch_bytes, batch.bytes);
        let id = batch.seq;
        self.in_flight.insert(
            id,
            InFlight {
                records: count,
                sent: ctx.now(),
            },
        );
        let n = self.in_flight.len() as f64;
        ctx.metrics().set(m.in_flight, n);
        let req = Produce {
            id,
            reply_to: ctx.me(),
            tp: TopicPartition::new(&self.config.topic, partition),
            records: batch.records,
        };
        let to = self.leaders[partition as usize];
        ctx.send(to, M::wrap(Log::Produce(req)));
    }

    fn on_ack(&mut self, ctx: &mut Ctx<'_, M>, ack: ProduceAck) {
        // An ack for a batch this incarnation did not send (or a duplicate) is ignored.
        let Some(sent) = self.in_flight.remove(&ack.id) else {
            return;
        };
        let m = self.m();
        match ack.result {
            Ok(_) => {
                ctx.metrics().add(m.acked, sent.records);
                let latency = (ctx.now() - sent.sent).as_nanos();
                ctx.metrics().record(m.ack_latency, latency);
            }
            Err(_) => ctx.metrics().add(m.errors, sent.records),
        }
        let n = self.in_flight.len() as f64;
        ctx.metrics().set(m.in_flight, n);
    }
}

impl<M: Carry<Log>> Actor<M> for Producer<M> {
    fn on_start(&mut self, ctx: &mut Ctx<'_, M>) {
        self.metrics = Some(ProducerMetrics {
            records: ctx.counter("records_total"),
            poison: ctx.counter("poison_total"),
            batches: ctx.counter("batches_total"),
            acked: ctx.counter("acked_total"),
            errors: ctx.counter("errors_total"),
            in_flight: ctx.gauge("in_flight"),
            batch_records: ctx.histogram("batch_records"),
            batch_bytes: ctx.histogram("batch_bytes"),
            ack_latency: ctx.histogram("ack_latency"),
        });
        let resolve = |i: usize, name: &str| match ctx.lookup(name) {
            Some(id) => id,
            None => panic!(
                "{}: brokers[{i}] names `{name}`, but no actor has that name",
                ctx.name()
            ),
        };
        let names: Vec<ActorId> = (self.config.brokers.iter().enumerate())
            .map(|(i, b)| resolve(i, b))
            .collect();
        self.leaders = (0..self.config.partitions as usize)
            .map(|p| names[if names.len() == 1 { 0 } else { p }])
            .collect();
        self.next_constant_ns = ctx.now().as_nanos() as f64;
        self.schedule_arrival(ctx);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, M>, _from: ActorId, msg: M) {
        if let Some(Log::ProduceAck(ack)) = msg.unwrap() {
            self.on_ack(ctx, ack);
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, M>, msg: M) {
        let Some(Log::Tick(tick)) = msg.unwrap() else {
            return;
        };
        match tick {
            Tick::Arrive => {
                self.arrive(ctx);
                self.schedule_arrival(ctx);
            }
            Tick::Linger { partition, seq } => {
                // The batch may have been sent full already; then a newer one (or none) is open.
                let due = self.open[partition as usize]
                    .as_ref()
                    .is_some_and(|b| b.seq == seq);
                if due {
                    self.send(ctx, partition);
                }
            }
            Tick::Served { .. }
            | Tick::Retention(_)
            | Tick::GroupDeadline(_)
            | Tick::Consumer { .. }
            | Tick::Group { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::rpc::from_ron;

    #[test]
    fn configs_parse_with_kafka_defaults_and_name_bad_fields() {
        let c: ProducerConfig =
            from_ron(r#"(topic: "t", partitions: 4, brokers: ["b"], rate: Poisson("1000/s"))"#)
                .unwrap();
        assert_eq!(c.linger, SimDuration::from_millis(5));
        assert_eq!(c.batch_size, 16_384);
        assert_eq!(c.keys, None);
        assert_eq!(c.poison, None);
        let bad = |ron: &str| {
            from_ron::<ProducerConfig>(ron)
                .unwrap_err()
                .field()
                .map(String::from)
        };
        assert_eq!(
            bad(r#"(topic: "t", partitions: 0, brokers: ["b"], rate: Poisson("1/s"))"#),
            Some("partitions".into())
        );
        assert_eq!(
            bad(r#"(topic: "t", partitions: 3, brokers: ["a", "b"], rate: Poisson("1/s"))"#),
            Some("brokers".into())
        );
        assert_eq!(
            bad(r#"(topic: "t", partitions: 3, brokers: [], rate: Poisson("1/s"))"#),
            Some("brokers".into())
        );
        assert_eq!(
            bad(
                r#"(topic: "t", partitions: 1, brokers: ["b"], rate: Poisson("1/s"), batch_size: 0)"#
            ),
            Some("batch_size".into())
        );
        assert_eq!(
            bad(
                r#"(topic: "t", partitions: 1, brokers: ["b"], rate: Poisson("1/s"), poison: Some((share: 1.5)))"#
            ),
            Some("poison.share".into())
        );
        assert_eq!(
            bad(
                r#"(topic: "t", partitions: 1, brokers: ["b"], rate: Poisson("1/s"), record_bytes: Const("1ms"))"#
            ),
            Some("record_bytes".into())
        );
    }
}

#[cfg(test)]
mod salt_tests {
    use super::*;
    use crate::engine::sim::{Sim, SimConfig};
    use crate::model::log::{Broker, BrokerConfig};
    use crate::model::rpc::from_ron;

    /// The records of a 12-partition topic per partition, after a producer made of `ron`
    /// (topic `t`, one key) has sent 4,000 of them.
    fn per_partition(ron: &str) -> Vec<u64> {
        let mut sim: Sim<Log> = Sim::with_config(SimConfig::new(3)).unwrap();
        let h = sim.add_host("h").unwrap();
        let config: BrokerConfig = from_ron(r#"(topics: [(name: "t", partitions: 12)])"#).unwrap();
        let broker: Broker<Log> = Broker::new(config).unwrap();
        let disk = broker.disk();
        sim.spawn(h, "broker", move || broker.clone()).unwrap();
        let config: ProducerConfig = from_ron(ron).unwrap();
        let producer: Producer<Log> = Producer::new(config).unwrap();
        sim.spawn(h, "producer", move || producer.clone()).unwrap();
        sim.run_until(SimTime::from_nanos(10_000_000_000));
        let disk = disk.borrow();
        (0..12).map(|p| disk.logs[0][p].log_end_offset()).collect()
    }

    const ONE_KEY: &str = r#"topic: "t", partitions: 12, brokers: ["broker"],
        rate: Constant("1000/s"), limit: Some(4000), keys: Some((popularity: Uniform(n: 1)))"#;

    #[test]
    fn a_salted_key_spreads_over_its_sub_keys_partitions_and_an_unsalted_one_does_not() {
        let plain = per_partition(&format!("({ONE_KEY})"));
        let home = partition_for_key(0, 12) as usize;
        assert_eq!(plain[home], 4000, "one key, one partition: {plain:?}");
        let salted = per_partition(&format!("({ONE_KEY}, salt: Some(8))"));
        assert_eq!(salted.iter().sum::<u64>(), 4000);
        // Each sub-key "0-s" has its own murmur2 partition; a partition gets the records of
        // the sub-keys that hash to it, each sub-key 1/8 of them (binomial, 4,000 draws).
        let mut expected = [0_u32; 12];
        for s in 0..8 {
            expected[salted_partition(0, s, 12) as usize] += 1;
        }
        assert!(
            expected.iter().filter(|&&k| k > 0).count() > 1,
            "the sub-keys land on several partitions"
        );
        for p in 0..12 {
            let share = f64::from(expected[p]) / 8.0;
            let mean = 4000.0 * share;
            let sd = (4000.0 * share * (1.0 - share)).sqrt();
            let got = salted[p] as f64;
            assert!(
                (got - mean).abs() <= 5.0 * sd.max(0.5),
                "partition {p}: {got} records, expected {mean} ± {sd}: {salted:?}"
            );
        }
    }

    #[test]
    fn salt_must_be_positive_and_needs_keys() {
        let bad = |ron: &str| {
            from_ron::<ProducerConfig>(ron)
                .unwrap_err()
                .field()
                .map(String::from)
        };
        assert_eq!(
            bad(&format!("({ONE_KEY}, salt: Some(0))")),
            Some("salt".into())
        );
        assert_eq!(
            bad(
                r#"(topic: "t", partitions: 2, brokers: ["b"], rate: Poisson("1/s"), salt: Some(4))"#
            ),
            Some("salt".into())
        );
        assert_eq!(salted_partition(7, 3, 1), 0);
    }
}
