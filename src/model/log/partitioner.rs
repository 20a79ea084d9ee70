//! Kafka's default partitioner: which partition a producer sends a record to.
//!
//! A record with a key goes to `to_positive(murmur2(key bytes)) % partitions`, exactly as the
//! Java producer computes it (`BuiltInPartitioner.partitionForKey`, and `DefaultPartitioner`
//! before it, in apache/kafka's `clients/.../producer/internals/`), so a key lands on the same
//! partition here as on a real cluster with the same partition count — which is what makes a
//! hot key a hot *partition* (K7), and what a partition increase remaps (K9). [`murmur2`] is
//! `org.apache.kafka.common.utils.Utils.murmur2` bit for bit, pinned by the vectors of Kafka's
//! own `UtilsTest.testMurmur2`.
//!
//! Keys in the simulator are `u64` ids. A Java producer that keys by an id almost always sends
//! the id as text — a `StringSerializer` of `String.valueOf(id)`, the serializer of the Kafka
//! quickstarts, of Connect's `StringConverter` and of most keyed topics that humans read — so
//! [`key_bytes`] is the id's decimal digits in ASCII (= UTF-8): key 21 hashes the bytes `"21"`,
//! the first of Kafka's test vectors. A producer with a `LongSerializer` would send 8
//! big-endian bytes instead and spread keys differently; [`partition_for_key_bytes`] takes any
//! bytes for that case.
//!
//! A record without a key goes to the producer's *sticky* partition (KIP-480, Kafka 2.4's
//! `StickyPartitionCache`): every null-keyed record goes to one partition until a batch for it
//! is completed, and then a new partition is drawn at random from those with a leader,
//! different from the last one whenever there is a choice. [`StickyPartitioner`] is that state;
//! it draws from the caller's stream. Kafka 3.3 (KIP-794) later made the switch happen after
//! `batch.size` bytes rather than at each new batch, and weighted the draw by queue sizes; this
//! is the KIP-480 rule, the one every 2.4–3.2 client uses.

use rand::RngExt;

use crate::engine::rng::SimRng;

/// murmur2's seed in Kafka's `Utils.murmur2`.
const MURMUR2_SEED: u32 = 0x9747_b28c;
/// murmur2's mixing multiplier (Austin Appleby's MurmurHash2, kept by Kafka).
const MURMUR2_M: u32 = 0x5bd1_e995;
/// murmur2's mixing shift.
const MURMUR2_R: u32 = 24;

/// The 32-bit murmur2 hash of `data`, exactly as Kafka's `Utils.murmur2` computes it: seed
/// `0x9747b28c` xor the length, 4-byte little-endian blocks mixed with `m = 0x5bd1e995`, `r =
/// 24`, then the 1–3 tail bytes (the highest first, falling through as Java's `switch` does),
/// then the final avalanche. Java's `int` arithmetic wraps and its `>>>` is a logical shift, so
/// the whole computation is done on `u32` and the bits returned as Java's signed `int`.
pub fn murmur2(data: &[u8]) -> i32 {
    // Java's `int length = data.length`: Kafka's records are far below 2 GiB, and the length
    // enters the hash only through its low 32 bits.
    let length = data.len() as u32;
    let mut h = MURMUR2_SEED ^ length;
    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let mut k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        k = k.wrapping_mul(MURMUR2_M);
        k ^= k >> MURMUR2_R;
        k = k.wrapping_mul(MURMUR2_M);
        h = h.wrapping_mul(MURMUR2_M);
        h ^= k;
    }
    let tail = blocks.remainder();
    debug_assert!(tail.len() < 4);
    // Kafka's `switch (length % 4)` falls through from case 3 to case 1: each present tail byte
    // is xored in at its position, and the multiply happens once, only if there was a tail.
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(MURMUR2_M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(MURMUR2_M);
    h ^= h >> 15;
    h as i32
}

/// Kafka's `Utils.toPositive`: `n & 0x7fffffff`, not `abs` — `abs(i32::MIN)` would stay
/// negative, and clearing the sign bit maps `n` and `n + 2^31` to the same value.
pub fn to_positive(n: i32) -> i32 {
    let p = n & 0x7fff_ffff;
    debug_assert!(p >= 0);
    p
}

/// The bytes a producer sends for key `key`: its decimal digits, as Java's
/// `StringSerializer` encodes `String.valueOf(key)` (see the module docs for the choice).
/// Up to 20 bytes (`u64::MAX` has 20 digits), without allocating.
pub fn key_bytes(key: u64) -> KeyBytes {
    let mut buf = [0_u8; 20];
    let mut at = buf.len();
    let mut rest = key;
    loop {
        at -= 1;
        buf[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    KeyBytes { buf, start: at }
}

/// A key's serialized bytes, as [`key_bytes`] makes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyBytes {
    buf: [u8; 20],
    start: usize,
}

impl KeyBytes {
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

/// The partition of a record whose serialized key is `bytes`, among `num_partitions`:
/// `to_positive(murmur2(bytes)) % num_partitions` (`BuiltInPartitioner.partitionForKey`).
/// A topic has at least one partition: `num_partitions` of 0 is a bug and panics.
pub fn partition_for_key_bytes(bytes: &[u8], num_partitions: u32) -> u32 {
    assert!(num_partitions > 0, "a topic has at least one partition");
    // Kafka's partition count is a Java `int`; the modulo is done in non-negative `i32`s, which
    // is the same as in `u32`s since both operands are non-negative.
    let hash = to_positive(murmur2(bytes)) as u32;
    let partition = hash % num_partitions;
    debug_assert!(partition < num_partitions);
    partition
}

/// The partition of a record keyed by id `key` (serialized by [`key_bytes`]).
pub fn partition_for_key(key: u64, num_partitions: u32) -> u32 {
    partition_for_key_bytes(key_bytes(key).as_bytes(), num_partitions)
}

/// The sticky partition of a producer's null-keyed records for one topic (KIP-480), as Kafka's
/// `StickyPartitionCache` keeps it.
///
/// [`partition`](Self::partition) is the partition of the next null-keyed record: the current
/// sticky partition, drawn on first use. When the producer's accumulator completes a batch for
/// a partition (the batch is full, or `linger.ms` expired, and a record needs a new batch), it
/// calls [`on_new_batch`](Self::on_new_batch) with that partition; if it is the sticky one, a
/// new sticky partition is drawn. Kafka's draw, kept here:
/// - no partition has a leader: uniform over all `num_partitions` (the record waits for one);
/// - one has: that one, without a draw;
/// - several have: uniform over them, excluding the previous sticky partition. Kafka draws
///   again until the result differs; one uniform draw over the others is the same
///   distribution and needs no loop.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StickyPartitioner {
    current: Option<u32>,
}

impl StickyPartitioner {
    pub fn new() -> Self {
        StickyPartitioner { current: None }
    }

    /// The current sticky partition, if one was drawn.
    pub fn current(&self) -> Option<u32> {
        self.current
    }

    /// The partition for the next null-keyed record. `available` lists the partitions that have
    /// a leader (each at most once, all below `num_partitions`); draws only the first time.
    pub fn partition(&mut self, available: &[u32], num_partitions: u32, rng: &mut SimRng) -> u32 {
        match self.current {
            Some(p) => p,
            None => {
                let p = draw(None, available, num_partitions, rng);
                self.current = Some(p);
                p
            }
        }
    }

    /// A batch for `prev` was completed: if `prev` is the sticky partition (or there is none
    /// yet), draw a new one, else keep it (another thread already moved on, in Kafka). Returns
    /// the sticky partition after the call.
    pub fn on_new_batch(
        &mut self,
        prev: u32,
        available: &[u32],
        num_partitions: u32,
        rng: &mut SimRng,
    ) -> u32 {
        match self.current {
            Some(p) if p != prev => p,
            old => {
                let p = draw(old, available, num_partitions, rng);
                self.current = Some(p);
                p
            }
        }
    }
}

/// A new sticky partition, different from `old` when at least two partitions are available.
fn draw(old: Option<u32>, available: &[u32], num_partitions: u32, rng: &mut SimRng) -> u32 {
    assert!(num_partitions > 0, "a topic has at least one partition");
    debug_assert!(available.iter().all(|&p| p < num_partitions));
    debug_assert!(
        available
            .iter()
            .enumerate()
            .all(|(i, p)| !available[..i].contains(p)),
        "available partitions are distinct"
    );
    let p = match (available.len(), old) {
        (0, _) => rng.random_range(0..num_partitions),
        (1, _) => available[0],
        (n, None) => available[rng.random_range(0..n)],
        (n, Some(old)) => match available.iter().position(|&p| p == old) {
            // Uniform over the other n - 1: draw an index among them and skip the old one's.
            Some(skip) => {
                let i = rng.random_range(0..n - 1);
                available[if i >= skip { i + 1 } else { i }]
            }
            None => available[rng.random_range(0..n)],
        },
    };
    debug_assert!(p < num_partitions);
    debug_assert!(available.len() < 2 || Some(p) != old);
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::rng::stream;

    #[test]
    fn murmur2_matches_kafkas_utils_test_vectors() {
        // apache/kafka clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java,
        // testMurmur2: Java's `getBytes()` of ASCII strings, i.e. these bytes.
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (data, expected) in cases {
            assert_eq!(
                murmur2(data),
                expected,
                "{:?}",
                String::from_utf8_lossy(data)
            );
        }
    }

    #[test]
    fn murmur2_covers_every_tail_length() {
        // Kafka's vectors have tails of 2 ("21", "foobar", "a-little-bit-longer-string"), 0
        // and 3 ("abc") bytes, and none of 1. These are from akka/akka's
        // `akka-cluster-sharding-typed/src/test/scala/.../internal/Murmur2Spec.scala`,
        // "expected correct hash values from the kafka murmur2 impl": tails of 1, 2, 3, 0, and
        // 1 after a block.
        let cases: [(&[u8], i32); 5] = [
            (b"1", -1_993_445_489),
            (b"12", 126_087_238),
            (b"123", -267_702_483),
            (b"1234", -1_614_185_708),
            (b"12345", -1_188_365_604),
        ];
        for (data, expected) in cases {
            assert_eq!(
                murmur2(data),
                expected,
                "{:?}",
                String::from_utf8_lossy(data)
            );
        }
        // Empty input: no block, no tail multiply, only the avalanche of `seed ^ 0`.
        let mut h: u32 = MURMUR2_SEED;
        h ^= h >> 13;
        h = h.wrapping_mul(MURMUR2_M);
        h ^= h >> 15;
        assert_eq!(murmur2(b""), h as i32);
        // Bytes above 0x7f are taken unsigned (Java's `& 0xff`), in the blocks and the tail.
        assert_ne!(murmur2(&[0xff, 0x80, 0x01]), murmur2(&[0x7f, 0x00, 0x01]));
        assert_ne!(murmur2(&[0xff; 4]), murmur2(&[0x7f; 4]));
        // Key id 1 is the bytes "1": the same hash.
        assert_eq!(murmur2(key_bytes(1).as_bytes()), -1_993_445_489);
    }

    #[test]
    fn to_positive_clears_the_sign_bit() {
        assert_eq!(to_positive(0), 0);
        assert_eq!(to_positive(5), 5);
        assert_eq!(to_positive(i32::MAX), i32::MAX);
        assert_eq!(to_positive(-1), i32::MAX);
        assert_eq!(to_positive(i32::MIN), 0);
        assert_eq!(
            i64::from(to_positive(-973_932_308)),
            -973_932_308 + (1_i64 << 31)
        );
    }

    #[test]
    fn keys_are_sent_as_their_decimal_digits() {
        assert_eq!(key_bytes(0).as_bytes(), b"0");
        assert_eq!(key_bytes(21).as_bytes(), b"21");
        assert_eq!(key_bytes(1_000_000).as_bytes(), b"1000000");
        assert_eq!(key_bytes(u64::MAX).as_bytes(), b"18446744073709551615");
        for k in [1_u64, 9, 10, 99, 100, 12_345, 4_294_967_296] {
            assert_eq!(key_bytes(k).as_bytes(), k.to_string().as_bytes());
        }
    }

    #[test]
    fn keyed_records_go_to_murmur2_modulo_the_partitions() {
        // Key 21 is the bytes "21": toPositive(-973932308) = 1173551340.
        let positive = 1_173_551_340_u32;
        assert_eq!(to_positive(-973_932_308) as u32, positive);
        for n in [1_u32, 2, 3, 6, 10, 12, 32, 100, 1_000] {
            assert_eq!(partition_for_key(21, n), positive % n, "{n} partitions");
            assert_eq!(partition_for_key_bytes(b"21", n), positive % n);
        }
        assert_eq!(partition_for_key(21, 6), 0);
        assert_eq!(partition_for_key(21, 10), 0);
        assert_eq!(partition_for_key(21, 7), positive % 7);
        // One partition takes everything.
        assert!((0..1_000).all(|k| partition_for_key(k, 1) == 0));
    }

    #[test]
    fn consecutive_ids_spread_evenly() {
        // murmur2 of decimal ids: each of 12 partitions gets its 1/12 of 120,000 ids, within 5
        // binomial standard deviations.
        let n = 12_u32;
        let keys = 120_000_u64;
        let mut counts = vec![0_u64; n as usize];
        for k in 0..keys {
            counts[partition_for_key(k, n) as usize] += 1;
        }
        let p = 1.0 / f64::from(n);
        let mean = keys as f64 * p;
        let sd = (keys as f64 * p * (1.0 - p)).sqrt();
        for (i, &c) in counts.iter().enumerate() {
            assert!((c as f64 - mean).abs() < 5.0 * sd, "partition {i}: {c}");
        }
    }

    #[test]
    fn growing_the_partition_count_remaps_most_keys() {
        // Modulo hashing, not a ring (K9): from 6 to 7 partitions a key stays only if its hash
        // has the same residue mod 6 and mod 7, about 1 in 7 of the keys.
        let keys = 42_000_u64;
        let stayed = (0..keys)
            .filter(|&k| partition_for_key(k, 6) == partition_for_key(k, 7))
            .count() as f64;
        let frac = stayed / keys as f64;
        assert!((frac - 1.0 / 7.0).abs() < 0.01, "{frac}");
        // Doubling keeps exactly the keys whose hash mod 12 is below 6, about half.
        let kept = (0..keys)
            .filter(|&k| partition_for_key(k, 6) == partition_for_key(k, 12))
            .count() as f64;
        assert!((kept / keys as f64 - 0.5).abs() < 0.02);
    }

    #[test]
    fn sticky_partition_holds_until_its_batch_completes() {
        let mut rng = stream(7, "producer");
        let all: Vec<u32> = (0..6).collect();
        let mut sticky = StickyPartitioner::new();
        assert_eq!(sticky.current(), None);
        let first = sticky.partition(&all, 6, &mut rng);
        assert!(first < 6);
        // Every null-keyed record goes to it, with no further draws.
        let untouched = rng.clone();
        for _ in 0..100 {
            assert_eq!(sticky.partition(&all, 6, &mut rng), first);
        }
        assert_eq!(rng, untouched, "no draw while the batch is open");
        // A batch completing on another partition changes nothing (and draws nothing).
        let other = (first + 1) % 6;
        assert_eq!(sticky.on_new_batch(other, &all, 6, &mut rng), first);
        assert_eq!(rng, untouched);
        // The sticky partition's batch completes: a new, different partition.
        let second = sticky.on_new_batch(first, &all, 6, &mut rng);
        assert_ne!(second, first);
        assert_eq!(sticky.current(), Some(second));
        assert_eq!(sticky.partition(&all, 6, &mut rng), second);
    }

    #[test]
    fn new_sticky_partitions_are_uniform_over_the_others() {
        let mut rng = stream(11, "producer");
        let all: Vec<u32> = (0..5).collect();
        let mut sticky = StickyPartitioner::new();
        let mut prev = sticky.partition(&all, 5, &mut rng);
        // Transitions from each partition: never to itself, evenly to the 4 others.
        let mut moves = [[0_u32; 5]; 5];
        let switches = 40_000;
        for _ in 0..switches {
            let next = sticky.on_new_batch(prev, &all, 5, &mut rng);
            moves[prev as usize][next as usize] += 1;
            prev = next;
        }
        for (from, row) in moves.iter().enumerate() {
            assert_eq!(row[from], 0, "stayed on {from}");
            let total: u32 = row.iter().sum();
            for (to, &c) in row.iter().enumerate().filter(|&(to, _)| to != from) {
                let p = 0.25;
                let sd = (f64::from(total) * p * (1.0 - p)).sqrt();
                assert!(
                    (f64::from(c) - f64::from(total) * p).abs() < 5.0 * sd,
                    "{from} -> {to}: {c} of {total}"
                );
            }
        }
    }

    #[test]
    fn sticky_draws_only_partitions_with_a_leader() {
        let mut rng = stream(3, "producer");
        // Partitions 1 and 4 of 6 have a leader: switches alternate between them.
        let available = [1_u32, 4];
        let mut sticky = StickyPartitioner::new();
        let mut prev = sticky.partition(&available, 6, &mut rng);
        assert!(available.contains(&prev));
        for _ in 0..50 {
            let next = sticky.on_new_batch(prev, &available, 6, &mut rng);
            assert!(available.contains(&next));
            assert_ne!(next, prev);
            prev = next;
        }
        // A single available partition is taken without a draw, even if it is the last one.
        let untouched = rng.clone();
        let mut one = StickyPartitioner::new();
        assert_eq!(one.partition(&[3], 6, &mut rng), 3);
        assert_eq!(one.on_new_batch(3, &[3], 6, &mut rng), 3);
        assert_eq!(rng, untouched);
        // None available: any of the topic's partitions (the record waits for a leader).
        let mut none = StickyPartitioner::new();
        for _ in 0..20 {
            let p = none.on_new_batch(none.current().unwrap_or(0), &[], 6, &mut rng);
            assert!(p < 6);
        }
        // The previous sticky partition lost its leader: uniform over the available ones.
        let mut moved = StickyPartitioner::new();
        assert_eq!(moved.partition(&[2], 6, &mut rng), 2);
        let p = moved.on_new_batch(2, &[0, 5], 6, &mut rng);
        assert!(p == 0 || p == 5);
    }

    #[test]
    fn sticky_draws_are_reproducible_from_the_seed() {
        let run = |seed| {
            let mut rng = stream(seed, "producer");
            let all: Vec<u32> = (0..8).collect();
            let mut sticky = StickyPartitioner::new();
            let mut prev = sticky.partition(&all, 8, &mut rng);
            let mut seen = vec![prev];
            for _ in 0..64 {
                prev = sticky.on_new_batch(prev, &all, 8, &mut rng);
                seen.push(prev);
            }
            seen
        };
        assert_eq!(run(5), run(5));
        assert_ne!(run(5), run(6));
    }
}
