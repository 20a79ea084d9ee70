//! One Kafka partition's log: an append-only sequence of records with consecutive offsets from
//! 0, grouped into segments that roll by size and by age, and deleted a whole segment at a time
//! by time and by size retention whether or not any consumer group has read them. That last
//! property is how a lagging group loses data (K2): a fetch below the log start offset is
//! answered `OffsetOutOfRange`, the consumer's `auto.offset.reset` decides where it resumes,
//! and the records in between are gone ([`PartitionLog::lost_to_retention`],
//! [`PartitionLog::reset_offset`]).
//!
//! The rules are Kafka's own (`UnifiedLog`, `LogSegment`), quoted where they are applied:
//! - **Rolling** happens on append only, as in `LogSegment.shouldRoll`: a batch starts a new
//!   segment when it would take the active segment past `segment_bytes`, or when the active
//!   segment is not empty and its first record was appended more than `segment_ms` ago. An
//!   empty active segment never rolls (Kafka would recreate it at the same base offset), so a
//!   batch larger than `segment_bytes` gets a segment of its own. `segment.jitter.ms` is 0.
//! - **Retention** (`UnifiedLog.deleteOldSegments`) walks the segments oldest first and stops
//!   at the first one that may not go, so what is deleted is always a prefix of the log. Time
//!   retention deletes a segment when `now - newest append time > retention_ms` (strictly);
//!   size retention, while the log is at least `retention_bytes`, deletes the oldest segment
//!   when what remains is still at least `retention_bytes` (`diff - segment.size >= 0`), so the
//!   log stays between `retention_bytes` and `retention_bytes` plus one segment. Neither deletes
//!   a segment holding offsets at or above the high watermark, nor an empty last segment. When
//!   every segment is to go, the log first rolls a new empty active segment ("we must always
//!   have at least one segment, so if we are going to delete all the segments, create a new one
//!   first"), which is how an idle topic's last records expire; so the segment being appended
//!   to is never deleted, but a segment that was active can be, once it has been rolled.
//! - **Timestamps** are append times: in the simulator a producer's clock is the engine's, so
//!   Kafka's default `CreateTime` differs from `LogAppendTime` only by the produce latency, and
//!   retention by append time is the conservative one (records live at least `retention_ms`
//!   after they reached the broker).
//! - **High watermark.** Consumers read, and retention deletes, only below it. With one replica
//!   it follows the log end offset on every append; replication (a later issue) takes it over
//!   with [`PartitionLog::set_high_watermark`], after which appends leave it where it is.
//!
//! Memory: the records live in one `VecDeque` of 32-byte structs, indexed by `offset - log start
//! offset`, so appends are amortised O(1), a fetch by offset is O(1) to find plus O(records
//! returned), and deleting a segment pops records off the front; the segments are a second,
//! much shorter `VecDeque` of boundaries and byte counts. Millions of records cost tens of MB.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::engine::time::{SimDuration, SimTime};
use crate::model::rpc::{ConfigError, Validate};

/// Segment size at which the log rolls by default: 1 GiB, Kafka's `log.segment.bytes` ("The
/// maximum size of a single log file", type int, default 1073741824 (1 gibibyte); Apache Kafka
/// documentation, 3.1 Broker Configs).
pub const DEFAULT_SEGMENT_BYTES: u64 = 1 << 30;

/// Segment age at which the log rolls by default: 168 h, Kafka's `log.roll.hours` ("The maximum
/// time before a new log segment is rolled out (in hours), secondary to log.roll.ms property",
/// type int, default 168; `log.roll.ms` itself defaults to null, so the hours apply; Apache
/// Kafka documentation, 3.1 Broker Configs).
pub const DEFAULT_SEGMENT_MS: SimDuration = SimDuration::from_hours(168);

/// How long records are kept by default: 168 h (7 days), Kafka's `log.retention.hours` ("The
/// number of hours to keep a log file before deleting it (in hours), tertiary to
/// log.retention.ms property", type int, default 168; `log.retention.ms` and
/// `log.retention.minutes` default to null; Apache Kafka documentation, 3.1 Broker Configs).
pub const DEFAULT_RETENTION_MS: SimDuration = SimDuration::from_hours(168);

/// The size limit by default: none, Kafka's `log.retention.bytes` ("The maximum size of the log
/// before deleting it", type long, default -1; Apache Kafka documentation, 3.1 Broker Configs).
/// `-1` is `None` here.
pub const DEFAULT_RETENTION_BYTES: Option<u64> = None;

/// How often retention runs by default: 5 minutes, Kafka's `log.retention.check.interval.ms`
/// ("The frequency in milliseconds that the log cleaner checks whether any log is eligible for
/// deletion", type long, default 300000 (5 minutes); Apache Kafka documentation, 3.1 Broker
/// Configs).
pub const DEFAULT_RETENTION_CHECK_INTERVAL: SimDuration = SimDuration::from_mins(5);

/// The size and retention rules of one partition: `(segment_bytes: 104857600, retention_ms:
/// Some("1h"))`; every field has Kafka's broker default. The `_ms` names are Kafka's topic
/// configs (`segment.ms`, `retention.ms`) so scenarios read like Kafka configs; the values are
/// durations (`"7d"`, `"90s"`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionConfig {
    /// Roll the active segment before it would exceed this many bytes, >= 1. Default 1 GiB
    /// (`log.segment.bytes`).
    #[serde(default = "default_segment_bytes")]
    pub segment_bytes: u64,
    /// Roll a non-empty active segment whose first record is older than this, > 0. Default
    /// 168 h (`log.roll.hours`).
    #[serde(default = "default_segment_ms")]
    pub segment_ms: SimDuration,
    /// Delete a segment whose newest record is older than this; None for no time limit
    /// (Kafka's `-1`). Default `Some("7d")` (`log.retention.hours`).
    #[serde(default = "default_retention_ms")]
    pub retention_ms: Option<SimDuration>,
    /// Delete the oldest segments while what remains is at least this many bytes; None for no
    /// size limit. Default None (`log.retention.bytes = -1`).
    #[serde(default)]
    pub retention_bytes: Option<u64>,
    /// How often the broker runs [`PartitionLog::enforce_retention`], > 0. Default 5 min
    /// (`log.retention.check.interval.ms`). The log only records it; the broker's timer uses it.
    #[serde(default = "default_retention_check_interval")]
    pub retention_check_interval: SimDuration,
}

fn default_segment_bytes() -> u64 {
    DEFAULT_SEGMENT_BYTES
}

fn default_segment_ms() -> SimDuration {
    DEFAULT_SEGMENT_MS
}

fn default_retention_ms() -> Option<SimDuration> {
    Some(DEFAULT_RETENTION_MS)
}

fn default_retention_check_interval() -> SimDuration {
    DEFAULT_RETENTION_CHECK_INTERVAL
}

impl Default for PartitionConfig {
    fn default() -> Self {
        PartitionConfig {
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            segment_ms: DEFAULT_SEGMENT_MS,
            retention_ms: Some(DEFAULT_RETENTION_MS),
            retention_bytes: DEFAULT_RETENTION_BYTES,
            retention_check_interval: DEFAULT_RETENTION_CHECK_INTERVAL,
        }
    }
}

impl Validate for PartitionConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        // Kafka's own lower bound on segment.bytes (14, later 1 MiB) is about file formats; the
        // simulator only needs a positive size, and small segments make retention visible in
        // short runs.
        if self.segment_bytes == 0 {
            return Err(ConfigError::Zero {
                field: "segment_bytes".into(),
            });
        }
        if self.segment_ms.is_zero() {
            return Err(ConfigError::Zero {
                field: "segment_ms".into(),
            });
        }
        if self.retention_check_interval.is_zero() {
            return Err(ConfigError::Zero {
                field: "retention_check_interval".into(),
            });
        }
        Ok(())
    }
}

/// What a producer hands the log: the payload tags the simulator follows a record by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewRecord {
    /// The producer-assigned id, for exactly-once and loss accounting.
    pub id: u64,
    /// The record key (what the partitioner hashed).
    pub key: u64,
    /// Size on disk and on the wire, in bytes.
    pub bytes: u32,
    /// A record the consumer cannot process (K3, the poison pill).
    pub poison: bool,
}

/// A record as stored: the offset is implicit in its position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stored {
    append_time: SimTime,
    id: u64,
    key: u64,
    bytes: u32,
    poison: bool,
}

/// A record as read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    pub offset: u64,
    /// When the leader appended it.
    pub append_time: SimTime,
    pub id: u64,
    pub key: u64,
    pub bytes: u32,
    pub poison: bool,
}

/// One segment's boundaries and totals; its records are `records[base - log_start ..]` up to
/// the next segment's base.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Segment {
    base_offset: u64,
    records: u64,
    bytes: u64,
    /// Kafka's `rollingBasedTimestamp`: the first record's time, for rolling by age.
    first_append: Option<SimTime>,
    /// Kafka's `largestTimestamp`: the newest record's time, for retention by age.
    last_append: Option<SimTime>,
}

impl Segment {
    fn empty(base_offset: u64) -> Segment {
        Segment {
            base_offset,
            records: 0,
            bytes: 0,
            first_append: None,
            last_append: None,
        }
    }

    fn end_offset(&self) -> u64 {
        self.base_offset + self.records
    }
}

/// What one [`PartitionLog::enforce_retention`] call deleted: whole segments covering the
/// offsets `first_offset..end_offset`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Deleted {
    pub segments: u64,
    pub records: u64,
    pub bytes: u64,
    /// Of `segments`, how many went by time retention (the rest by size).
    pub segments_by_time: u64,
    /// The first deleted offset (the old log start offset); equal to `end_offset` if nothing was
    /// deleted.
    pub first_offset: u64,
    /// One past the last deleted offset: the new log start offset.
    pub end_offset: u64,
}

impl Deleted {
    /// How many of the deleted records a group whose committed offset is `committed` had not yet
    /// consumed: the records lost to it by this deletion.
    pub fn unconsumed_by(&self, committed: u64) -> u64 {
        self.end_offset
            .saturating_sub(self.first_offset.max(committed))
    }
}

/// The answer to a fetch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchResult {
    /// Records from the requested offset, possibly none (at the high watermark).
    Records {
        records: Vec<Record>,
        /// Their total size.
        bytes: u64,
        /// The offset to fetch next: the requested one plus `records.len()`.
        next_offset: u64,
        high_watermark: u64,
    },
    /// The offset is below the log start offset (deleted by retention) or above the log end
    /// offset: Kafka's `OFFSET_OUT_OF_RANGE`, after which the consumer applies its
    /// `auto.offset.reset`. (An offset between the high watermark and the log end is not out of
    /// range: it gets no records until the watermark passes it.)
    OffsetOutOfRange {
        requested: u64,
        log_start_offset: u64,
        high_watermark: u64,
    },
}

/// A consumer's `auto.offset.reset`: where it resumes when it has no valid offset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum OffsetReset {
    /// The log start offset: re-read everything still retained.
    Earliest,
    /// The high watermark: skip to new records. Kafka's default (`auto.offset.reset=latest`).
    #[default]
    Latest,
    /// No automatic reset: the consumer fails (`none`, which throws `NoOffsetForPartition` or
    /// `OffsetOutOfRange` to the application).
    None,
}

/// Where a consumer resumes after [`OffsetReset`], and how many records it never reads because
/// of the jump.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reset {
    pub offset: u64,
    /// Records in `requested..offset` the consumer skips: those retention deleted and, with
    /// `Latest`, those still retained below the high watermark. 0 when it moves backwards.
    pub skipped: u64,
}

/// A broker disk shared by its partitions: capacity accounting only. What happens when it is
/// full (refuse appends, go offline) is the broker's decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disk {
    /// Bytes the log directory may hold, >= 1.
    pub capacity_bytes: u64,
}

impl Validate for Disk {
    fn validate(&self) -> Result<(), ConfigError> {
        crate::model::rpc::nonzero("capacity_bytes", self.capacity_bytes)
    }
}

impl Disk {
    /// Bytes used by these partitions' logs.
    pub fn used<'a>(logs: impl IntoIterator<Item = &'a PartitionLog>) -> u64 {
        logs.into_iter().map(PartitionLog::bytes).sum()
    }

    /// Bytes still free when `used` are taken (0 when over capacity).
    pub fn free(&self, used: u64) -> u64 {
        self.capacity_bytes.saturating_sub(used)
    }

    /// Whether `incoming` more bytes fit beside `used`.
    pub fn fits(&self, used: u64, incoming: u64) -> bool {
        used.checked_add(incoming)
            .is_some_and(|total| total <= self.capacity_bytes)
    }
}

/// One partition's log.
#[derive(Clone, Debug)]
pub struct PartitionLog {
    config: PartitionConfig,
    records: VecDeque<Stored>,
    /// Oldest first; never empty; the last is the active segment.
    segments: VecDeque<Segment>,
    log_start_offset: u64,
    high_watermark: u64,
    /// True until the caller takes the high watermark over.
    high_watermark_follows_end: bool,
    bytes: u64,
    segments_rolled_total: u64,
    deleted_total: Deleted,
}

impl PartitionLog {
    /// An empty log (offsets from 0). `config` should be validated; a zero `segment_bytes`
    /// behaves as 1 (a segment per batch).
    pub fn new(config: PartitionConfig) -> PartitionLog {
        let mut segments = VecDeque::new();
        segments.push_back(Segment::empty(0));
        PartitionLog {
            config,
            records: VecDeque::new(),
            segments,
            log_start_offset: 0,
            high_watermark: 0,
            high_watermark_follows_end: true,
            bytes: 0,
            segments_rolled_total: 0,
            deleted_total: Deleted::default(),
        }
    }

    pub fn config(&self) -> &PartitionConfig {
        &self.config
    }

    /// The first offset still in the log.
    pub fn log_start_offset(&self) -> u64 {
        self.log_start_offset
    }

    /// The offset the next record will get (Kafka's LEO).
    pub fn log_end_offset(&self) -> u64 {
        self.log_start_offset + self.records.len() as u64
    }

    /// The first offset consumers cannot read yet; `log_start <= hw <= log_end`.
    pub fn high_watermark(&self) -> u64 {
        self.high_watermark
    }

    /// Records retained.
    pub fn len(&self) -> u64 {
        self.records.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Bytes retained: this partition's share of its broker's disk.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Segments, the active one included (always >= 1).
    pub fn segment_count(&self) -> u64 {
        self.segments.len() as u64
    }

    /// Segments rolled so far (by size, by age, or before deleting them all).
    pub fn segments_rolled_total(&self) -> u64 {
        self.segments_rolled_total
    }

    /// Everything retention has deleted so far, summed (`first_offset` 0, `end_offset` the
    /// log start offset).
    pub fn deleted_total(&self) -> Deleted {
        self.deleted_total
    }

    /// Appends one record at `now`; returns its offset.
    pub fn append(&mut self, now: SimTime, record: NewRecord) -> u64 {
        self.append_batch(now, &[record])
    }

    /// Appends a producer batch at `now`, all in one segment (Kafka checks the roll against
    /// the whole batch's size); returns the first offset. An empty batch appends nothing and
    /// returns the log end offset.
    pub fn append_batch(&mut self, now: SimTime, batch: &[NewRecord]) -> u64 {
        let first = self.log_end_offset();
        if batch.is_empty() {
            return first;
        }
        let batch_bytes: u64 = batch.iter().map(|r| u64::from(r.bytes)).sum();
        if self.should_roll(now, batch_bytes) {
            self.roll();
        }
        for r in batch {
            self.records.push_back(Stored {
                append_time: now,
                id: r.id,
                key: r.key,
                bytes: r.bytes,
                poison: r.poison,
            });
        }
        let active = self
            .segments
            .back_mut()
            .expect("a log always has a segment");
        active.records += batch.len() as u64;
        active.bytes += batch_bytes;
        active.first_append.get_or_insert(now);
        debug_assert!(active.last_append.is_none_or(|t| t <= now), "time ran back");
        active.last_append = Some(now);
        self.bytes += batch_bytes;
        let end = self.log_end_offset();
        if self.high_watermark_follows_end {
            self.high_watermark = end;
        }
        debug_assert_eq!(end, first + batch.len() as u64);
        debug_assert_eq!(active_end(&self.segments), end);
        first
    }

    /// `LogSegment.shouldRoll`: `size > maxSegmentBytes - messagesSize` or `size > 0 &&
    /// now - rollingBasedTimestamp > rollMs`. An empty segment is never rolled.
    fn should_roll(&self, now: SimTime, batch_bytes: u64) -> bool {
        let active = self.segments.back().expect("a log always has a segment");
        if active.records == 0 {
            return false;
        }
        let segment_bytes = self.config.segment_bytes.max(1);
        let too_big = active.bytes.saturating_add(batch_bytes) > segment_bytes;
        let too_old = active
            .first_append
            .is_some_and(|first| now.saturating_duration_since(first) > self.config.segment_ms);
        too_big || too_old
    }

    /// Starts a new empty active segment at the log end offset.
    fn roll(&mut self) {
        let end = self.log_end_offset();
        let active = self.segments.back().expect("a log always has a segment");
        assert!(active.records > 0, "an empty segment is never rolled");
        self.segments.push_back(Segment::empty(end));
        self.segments_rolled_total += 1;
    }

    /// Hands the high watermark to the caller (replication) and sets it. From the first call on,
    /// appends no longer move it.
    ///
    /// # Panics
    /// If `hw` is below the log start offset or above the log end offset: a replication bug.
    pub fn set_high_watermark(&mut self, hw: u64) {
        assert!(
            hw >= self.log_start_offset,
            "high watermark {hw} below the log start offset {}",
            self.log_start_offset
        );
        assert!(
            hw <= self.log_end_offset(),
            "high watermark {hw} above the log end offset {}",
            self.log_end_offset()
        );
        self.high_watermark_follows_end = false;
        self.high_watermark = hw;
    }

    /// Runs time retention, then size retention (the order of `UnifiedLog.deleteOldSegments`),
    /// as of `now`; see the module docs for the rules. The broker calls it every
    /// `retention_check_interval`.
    pub fn enforce_retention(&mut self, now: SimTime) -> Deleted {
        let first_offset = self.log_start_offset;
        let mut deleted = Deleted {
            first_offset,
            end_offset: first_offset,
            ..Deleted::default()
        };
        if let Some(retention) = self.config.retention_ms {
            let n = self.deletable_prefix(|seg, _| {
                seg.last_append
                    .is_some_and(|t| now.saturating_duration_since(t) > retention)
            });
            self.delete_segments(n, &mut deleted);
            deleted.segments_by_time = n;
        }
        if let Some(limit) = self.config.retention_bytes
            && self.bytes >= limit
        {
            let mut diff = self.bytes - limit;
            let n = self.deletable_prefix(|seg, _| {
                if diff >= seg.bytes {
                    diff -= seg.bytes;
                    true
                } else {
                    false
                }
            });
            self.delete_segments(n, &mut deleted);
        }
        debug_assert_eq!(deleted.end_offset, self.log_start_offset);
        debug_assert_eq!(
            deleted.records,
            deleted.end_offset - deleted.first_offset,
            "deletion is a prefix"
        );
        self.deleted_total.segments += deleted.segments;
        self.deleted_total.records += deleted.records;
        self.deleted_total.bytes += deleted.bytes;
        self.deleted_total.segments_by_time += deleted.segments_by_time;
        self.deleted_total.end_offset = self.log_start_offset;
        deleted
    }

    /// `UnifiedLog.deletableSegments`: how many segments, oldest first, satisfy `predicate`,
    /// end at or below the high watermark, and are not an empty last segment; stops at the
    /// first that does not.
    fn deletable_prefix(&self, mut predicate: impl FnMut(&Segment, bool) -> bool) -> u64 {
        let last = self.segments.len() - 1;
        let mut n = 0;
        for (i, seg) in self.segments.iter().enumerate() {
            let is_last = i == last;
            let upper_bound = seg.end_offset();
            let is_last_and_empty = is_last && seg.records == 0;
            if self.high_watermark >= upper_bound && !is_last_and_empty && predicate(seg, is_last) {
                n += 1;
            } else {
                break;
            }
        }
        n
    }

    /// Deletes the `n` oldest segments, rolling first if that is all of them.
    fn delete_segments(&mut self, n: u64, deleted: &mut Deleted) {
        if n == 0 {
            return;
        }
        if n == self.segments.len() as u64 {
            // "we must always have at least one segment, so if we are going to delete all the
            // segments, create a new one first" (UnifiedLog.deleteSegments).
            self.roll();
        }
        for _ in 0..n {
            let seg = self
                .segments
                .pop_front()
                .expect("n is at most the segments before the roll");
            debug_assert_eq!(seg.base_offset, self.log_start_offset);
            let mut bytes = 0;
            for _ in 0..seg.records {
                let r = self.records.pop_front().expect("a segment's records exist");
                bytes += u64::from(r.bytes);
            }
            debug_assert_eq!(bytes, seg.bytes);
            self.log_start_offset = seg.end_offset();
            self.bytes -= seg.bytes;
            deleted.segments += 1;
            deleted.records += seg.records;
            deleted.bytes += seg.bytes;
        }
        deleted.end_offset = self.log_start_offset;
        assert!(!self.segments.is_empty(), "a log always has a segment");
        debug_assert!(self.log_start_offset <= self.high_watermark);
    }

    /// Records from `offset` up to the high watermark (none if `offset` is at or past it but not
    /// past the log end): at most `max_records`, and no more than
    /// `max_bytes` in total except that the first record is always returned whatever its size,
    /// as Kafka does so that a consumer can make progress past a large record (`fetch.max.bytes`:
    /// "if the first record batch ... is larger than this value, the record batch will still be
    /// returned"). `max_records` is the consumer's `max.poll.records`; 0 returns nothing.
    pub fn fetch(&self, offset: u64, max_records: u32, max_bytes: u64) -> FetchResult {
        // LocalLog.read: an offset past the log end is out of range; one between the high
        // watermark and the log end is valid but has nothing a consumer may read yet.
        if offset < self.log_start_offset || offset > self.log_end_offset() {
            return FetchResult::OffsetOutOfRange {
                requested: offset,
                log_start_offset: self.log_start_offset,
                high_watermark: self.high_watermark,
            };
        }
        let start = (offset - self.log_start_offset) as usize;
        let end = (self.high_watermark.max(offset) - self.log_start_offset) as usize;
        let mut records = Vec::new();
        let mut bytes = 0u64;
        for (i, s) in self.records.range(start..end).enumerate() {
            if records.len() >= max_records as usize {
                break;
            }
            let size = u64::from(s.bytes);
            if !records.is_empty() && bytes + size > max_bytes {
                break;
            }
            bytes += size;
            records.push(Record {
                offset: offset + i as u64,
                append_time: s.append_time,
                id: s.id,
                key: s.key,
                bytes: s.bytes,
                poison: s.poison,
            });
        }
        let next_offset = offset + records.len() as u64;
        debug_assert!(records.is_empty() || next_offset <= self.high_watermark);
        FetchResult::Records {
            records,
            bytes,
            next_offset,
            high_watermark: self.high_watermark,
        }
    }

    /// The record at `offset`, if retained (whatever the high watermark).
    pub fn get(&self, offset: u64) -> Option<Record> {
        let i = offset.checked_sub(self.log_start_offset)?;
        let s = self.records.get(usize::try_from(i).ok()?)?;
        Some(Record {
            offset,
            append_time: s.append_time,
            id: s.id,
            key: s.key,
            bytes: s.bytes,
            poison: s.poison,
        })
    }

    /// Where a consumer whose position is `requested` resumes under `policy`, and how many
    /// records it skips; None for [`OffsetReset::None`] (the consumer fails instead).
    /// `Earliest` resumes at the log start offset, `Latest` at the high watermark.
    pub fn reset_offset(&self, requested: u64, policy: OffsetReset) -> Option<Reset> {
        let offset = match policy {
            OffsetReset::Earliest => self.log_start_offset,
            OffsetReset::Latest => self.high_watermark,
            OffsetReset::None => return None,
        };
        Some(Reset {
            offset,
            skipped: offset.saturating_sub(requested),
        })
    }

    /// Records a group with committed offset `committed` lost to retention: deleted before it
    /// consumed them (`committed..log_start_offset`). Since deletion only ever removes a
    /// prefix, this is exact however many retention runs did it.
    pub fn lost_to_retention(&self, committed: u64) -> u64 {
        self.log_start_offset.saturating_sub(committed)
    }

    /// Records a group with committed offset `committed` has yet to consume (its lag): up to
    /// the high watermark, counting records already deleted (which it will never get).
    pub fn lag(&self, committed: u64) -> u64 {
        self.high_watermark.saturating_sub(committed)
    }
}

fn active_end(segments: &VecDeque<Segment>) -> u64 {
    segments.back().map_or(0, Segment::end_offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn t(secs: u64) -> SimTime {
        SimTime::from_nanos(secs * S)
    }

    fn rec(id: u64, bytes: u32) -> NewRecord {
        NewRecord {
            id,
            key: id % 7,
            bytes,
            poison: false,
        }
    }

    fn config(segment_bytes: u64) -> PartitionConfig {
        PartitionConfig {
            segment_bytes,
            ..PartitionConfig::default()
        }
    }

    /// Each segment's (base offset, records, bytes), oldest first.
    fn layout(log: &PartitionLog) -> Vec<(u64, u64, u64)> {
        log.segments
            .iter()
            .map(|s| (s.base_offset, s.records, s.bytes))
            .collect()
    }

    fn offsets(result: &FetchResult) -> Vec<u64> {
        match result {
            FetchResult::Records { records, .. } => records.iter().map(|r| r.offset).collect(),
            FetchResult::OffsetOutOfRange { .. } => panic!("out of range: {result:?}"),
        }
    }

    #[test]
    fn defaults_are_kafkas_broker_defaults() {
        let c = PartitionConfig::default();
        assert_eq!(c.segment_bytes, 1_073_741_824);
        assert_eq!(c.segment_ms, SimDuration::from_hours(7 * 24));
        assert_eq!(c.retention_ms, Some(SimDuration::from_hours(168)));
        assert_eq!(c.retention_bytes, None);
        assert_eq!(
            c.retention_check_interval,
            SimDuration::from_millis(300_000)
        );
        assert!(c.validate().is_ok());
        assert_eq!(OffsetReset::default(), OffsetReset::Latest);
    }

    #[test]
    fn offsets_are_consecutive_from_zero_and_the_watermark_follows_the_end() {
        let mut log = PartitionLog::new(PartitionConfig::default());
        assert_eq!(
            (
                log.log_start_offset(),
                log.log_end_offset(),
                log.high_watermark()
            ),
            (0, 0, 0)
        );
        assert!(log.is_empty());
        assert_eq!(log.append(t(1), rec(10, 100)), 0);
        assert_eq!(log.append(t(2), rec(11, 50)), 1);
        assert_eq!(
            log.append_batch(t(3), &[rec(12, 1), rec(13, 2), rec(14, 3)]),
            2
        );
        assert_eq!(log.append_batch(t(3), &[]), 5);
        assert_eq!(log.log_end_offset(), 5);
        assert_eq!(log.high_watermark(), 5);
        assert_eq!((log.len(), log.bytes()), (5, 156));
        let r = log.get(3).expect("retained");
        assert_eq!(
            (r.offset, r.id, r.key, r.bytes, r.append_time),
            (3, 13, 6, 2, t(3))
        );
        assert_eq!(log.get(5), None);
        assert_eq!(layout(&log), vec![(0, 5, 156)]);
    }

    #[test]
    fn segments_roll_before_a_batch_would_exceed_segment_bytes() {
        // shouldRoll: size > segment_bytes - batch_bytes, i.e. size + batch > segment_bytes.
        let mut log = PartitionLog::new(config(100));
        log.append(t(0), rec(0, 60));
        log.append(t(0), rec(1, 40)); // exactly 100: fits
        assert_eq!(layout(&log), vec![(0, 2, 100)]);
        log.append(t(0), rec(2, 1)); // 101 would exceed
        assert_eq!(layout(&log), vec![(0, 2, 100), (2, 1, 1)]);
        // A batch is checked as a whole and lands in one segment.
        log.append_batch(t(0), &[rec(3, 50), rec(4, 50)]); // 1 + 100 > 100: roll
        assert_eq!(layout(&log), vec![(0, 2, 100), (2, 1, 1), (3, 2, 100)]);
        // An oversized record goes into an empty segment rather than rolling it again.
        log.append(t(0), rec(5, 500));
        log.append(t(0), rec(6, 500));
        assert_eq!(
            layout(&log),
            vec![
                (0, 2, 100),
                (2, 1, 1),
                (3, 2, 100),
                (5, 1, 500),
                (6, 1, 500)
            ]
        );
        assert_eq!(log.segments_rolled_total(), 4);
        assert_eq!(log.bytes(), 1201);
    }

    #[test]
    fn segments_roll_when_the_first_record_is_older_than_segment_ms() {
        let c = PartitionConfig {
            segment_ms: SimDuration::from_secs(60),
            ..PartitionConfig::default()
        };
        let mut log = PartitionLog::new(c);
        log.append(t(10), rec(0, 1));
        log.append(t(70), rec(1, 1)); // 60 s after the first: not more than segment_ms
        assert_eq!(log.segment_count(), 1);
        log.append(SimTime::from_nanos(70 * S + 1), rec(2, 1)); // 60 s + 1 ns
        assert_eq!(layout(&log), vec![(0, 2, 2), (2, 1, 1)]);
        // The age is the first record's, not the segment's creation: an idle active segment
        // is not rolled until something is appended, and then by the new record's clock.
        log.append(t(500), rec(3, 1));
        assert_eq!(layout(&log), vec![(0, 2, 2), (2, 1, 1), (3, 1, 1)]);
    }

    #[test]
    fn time_retention_deletes_segments_whose_newest_record_is_older_than_retention() {
        let c = PartitionConfig {
            segment_bytes: 10,
            retention_ms: Some(SimDuration::from_secs(100)),
            ..PartitionConfig::default()
        };
        let mut log = PartitionLog::new(c);
        // Segment 0: offsets 0-1 at 0 s and 50 s; segment 1: offsets 2-3 at 60 s and 120 s;
        // segment 2 (active): offset 4 at 200 s.
        log.append(t(0), rec(0, 5));
        log.append(t(50), rec(1, 5));
        log.append(t(60), rec(2, 5));
        log.append(t(120), rec(3, 5));
        log.append(t(200), rec(4, 5));
        assert_eq!(layout(&log), vec![(0, 2, 10), (2, 2, 10), (4, 1, 5)]);
        // At 150 s segment 0's newest record is exactly 100 s old: not yet (strictly older).
        assert_eq!(log.enforce_retention(t(150)).segments, 0);
        let d = log.enforce_retention(SimTime::from_nanos(150 * S + 1));
        assert_eq!(
            d,
            Deleted {
                segments: 1,
                records: 2,
                bytes: 10,
                segments_by_time: 1,
                first_offset: 0,
                end_offset: 2,
            }
        );
        assert_eq!(log.log_start_offset(), 2);
        assert_eq!(log.bytes(), 15);
        // Segment 1's oldest record (60 s) is long expired, but its newest (120 s) is not:
        // segments go by their newest record, so offset 2 outlives its retention.
        assert_eq!(log.enforce_retention(t(219)).segments, 0);
        assert_eq!(log.get(2).map(|r| r.append_time), Some(t(60)));
        assert_eq!(log.enforce_retention(t(221)).end_offset, 4);
        assert_eq!(layout(&log), vec![(4, 1, 5)]);
    }

    #[test]
    fn deletion_is_a_prefix_and_stops_at_the_first_segment_that_may_stay() {
        let c = PartitionConfig {
            segment_bytes: 1,
            retention_ms: Some(SimDuration::from_secs(10)),
            ..PartitionConfig::default()
        };
        let mut log = PartitionLog::new(c);
        log.append(t(0), rec(0, 1));
        log.append(t(100), rec(1, 1)); // young
        log.append(t(0), rec(2, 1)); // old again (time never runs back in a sim, but a
        // producer's CreateTime could): behind a young segment it is not deleted.
        log.append(t(100), rec(3, 1));
        let d = log.enforce_retention(t(105));
        assert_eq!((d.segments, d.end_offset), (1, 1));
        assert_eq!(log.log_start_offset(), 1);
    }

    #[test]
    fn an_expired_active_segment_is_rolled_then_deleted() {
        // UnifiedLog.deleteSegments: if every segment is deletable, roll first, so an idle
        // topic's records expire and the log keeps one empty active segment.
        let c = PartitionConfig {
            retention_ms: Some(SimDuration::from_secs(10)),
            ..PartitionConfig::default()
        };
        let mut log = PartitionLog::new(c);
        log.append(t(0), rec(0, 7));
        log.append(t(1), rec(1, 7));
        assert_eq!(log.segment_count(), 1);
        let d = log.enforce_retention(t(12));
        assert_eq!((d.segments, d.records, d.bytes), (1, 2, 14));
        assert_eq!(layout(&log), vec![(2, 0, 0)]);
        assert_eq!(
            (
                log.log_start_offset(),
                log.log_end_offset(),
                log.high_watermark()
            ),
            (2, 2, 2)
        );
        assert!(log.is_empty());
        assert_eq!(log.segments_rolled_total(), 1);
        // The empty last segment is never deleted, and appends continue at offset 2.
        assert_eq!(log.enforce_retention(t(1_000)).segments, 0);
        assert_eq!(log.append(t(1_000), rec(2, 1)), 2);
        assert_eq!(layout(&log), vec![(2, 1, 1)]);
    }

    #[test]
    fn size_retention_keeps_at_least_retention_bytes() {
        // diff = size - retention_bytes; delete the oldest segment while diff - its size >= 0.
        let c = PartitionConfig {
            segment_bytes: 100,
            retention_ms: None,
            retention_bytes: Some(250),
            ..PartitionConfig::default()
        };
        let mut log = PartitionLog::new(c);
        for i in 0..5 {
            log.append(t(i), rec(i, 100)); // five segments of 100 bytes
        }
        assert_eq!(log.bytes(), 500);
        let d = log.enforce_retention(t(10));
        // 500 - 250 = 250: delete two (leaving 300 >= 250), not a third (200 < 250).
        assert_eq!((d.segments, d.bytes, d.segments_by_time), (2, 200, 0));
        assert_eq!(log.bytes(), 300);
        assert_eq!(log.log_start_offset(), 2);
        assert_eq!(log.enforce_retention(t(10)).segments, 0);
        // Exactly at the limit nothing more goes.
        let c = PartitionConfig {
            retention_bytes: Some(300),
            ..log.config().clone()
        };
        let mut exact = PartitionLog::new(c);
        for i in 0..3 {
            exact.append(t(i), rec(i, 100));
        }
        assert_eq!(exact.enforce_retention(t(5)).segments, 0);
        exact.append(t(6), rec(9, 1)); // 301: diff 1 < 100
        assert_eq!(exact.enforce_retention(t(7)).segments, 0);
        exact.append(t(6), rec(10, 99)); // 400: diff 100 >= 100
        assert_eq!(exact.enforce_retention(t(7)).segments, 1);
        assert_eq!(exact.bytes(), 300);
    }

    #[test]
    fn size_retention_may_delete_every_segment_but_the_new_active_one() {
        let c = PartitionConfig {
            retention_ms: None,
            retention_bytes: Some(0),
            ..PartitionConfig::default()
        };
        let mut log = PartitionLog::new(c);
        log.append(t(0), rec(0, 10));
        let d = log.enforce_retention(t(0));
        assert_eq!((d.segments, d.records), (1, 1));
        assert_eq!(layout(&log), vec![(1, 0, 0)]);
    }

    #[test]
    fn time_then_size_retention_in_one_run() {
        let c = PartitionConfig {
            segment_bytes: 10,
            retention_ms: Some(SimDuration::from_secs(100)),
            retention_bytes: Some(15),
            ..PartitionConfig::default()
        };
        let mut log = PartitionLog::new(c);
        for i in 0..4 {
            log.append(t(i * 100), rec(i, 10)); // segments at 0, 100, 200, 300 s
        }
        // At 250 s the first two are older than 100 s; then 20 bytes remain: 20 - 15 = 5 < 10,
        // so size retention deletes nothing more.
        let d = log.enforce_retention(t(250));
        assert_eq!((d.segments, d.segments_by_time, d.end_offset), (2, 2, 2));
        log.append(t(260), rec(9, 10)); // 30 bytes in three segments
        let d = log.enforce_retention(t(260));
        assert_eq!((d.segments, d.segments_by_time, d.first_offset), (1, 0, 2));
        assert_eq!(log.bytes(), 20);
        let total = log.deleted_total();
        assert_eq!((total.segments, total.records, total.bytes), (3, 3, 30));
        assert_eq!((total.segments_by_time, total.end_offset), (2, 3));
    }

    #[test]
    fn nothing_at_or_above_the_high_watermark_is_deleted_or_read() {
        let c = PartitionConfig {
            segment_bytes: 1,
            retention_ms: Some(SimDuration::from_secs(1)),
            ..PartitionConfig::default()
        };
        let mut log = PartitionLog::new(c);
        for i in 0..4 {
            log.append(t(0), rec(i, 1));
        }
        log.set_high_watermark(2);
        log.append(t(0), rec(4, 1)); // appends no longer move it
        assert_eq!((log.high_watermark(), log.log_end_offset()), (2, 5));
        assert_eq!(offsets(&log.fetch(0, 100, 100)), vec![0, 1]);
        assert_eq!(offsets(&log.fetch(2, 100, 100)), Vec::<u64>::new());
        // Between the watermark and the log end: valid, but nothing to read yet.
        assert_eq!(offsets(&log.fetch(5, 100, 100)), Vec::<u64>::new());
        let FetchResult::Records { next_offset, .. } = log.fetch(3, 100, 100) else {
            panic!("in range");
        };
        assert_eq!(next_offset, 3);
        assert!(matches!(
            log.fetch(6, 100, 100),
            FetchResult::OffsetOutOfRange {
                high_watermark: 2,
                ..
            }
        ));
        // Segments ending at or below the watermark may go; the one holding offset 2 may not.
        let d = log.enforce_retention(t(100));
        assert_eq!((d.segments, d.end_offset), (2, 2));
        log.set_high_watermark(5);
        assert_eq!(log.enforce_retention(t(100)).end_offset, 5);
    }

    #[test]
    #[should_panic(expected = "above the log end offset")]
    fn a_high_watermark_past_the_end_is_a_bug() {
        let mut log = PartitionLog::new(PartitionConfig::default());
        log.append(t(0), rec(0, 1));
        log.set_high_watermark(2);
    }

    #[test]
    fn fetch_is_bounded_by_records_and_bytes_but_always_makes_progress() {
        let mut log = PartitionLog::new(PartitionConfig::default());
        for (i, b) in [100, 200, 300, 400].into_iter().enumerate() {
            log.append(t(i as u64), rec(i as u64, b));
        }
        let FetchResult::Records {
            records,
            bytes,
            next_offset,
            high_watermark,
        } = log.fetch(1, 10, 550)
        else {
            panic!("in range");
        };
        // 200 + 300 = 500 <= 550; + 400 would exceed.
        assert_eq!(records.iter().map(|r| r.id).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!((bytes, next_offset, high_watermark), (500, 3, 4));
        assert_eq!(records[1].append_time, t(2));
        assert_eq!(offsets(&log.fetch(0, 2, u64::MAX)), vec![0, 1]);
        // The first record comes back even when it alone is over max_bytes.
        assert_eq!(offsets(&log.fetch(3, 10, 1)), vec![3]);
        assert_eq!(offsets(&log.fetch(0, 0, u64::MAX)), Vec::<u64>::new());
        assert_eq!(offsets(&log.fetch(4, 10, 10)), Vec::<u64>::new());
        assert_eq!(
            log.fetch(5, 10, 10),
            FetchResult::OffsetOutOfRange {
                requested: 5,
                log_start_offset: 0,
                high_watermark: 4,
            }
        );
    }

    #[test]
    fn a_lagging_group_loses_what_retention_deleted_and_reset_decides_the_rest() {
        // K2 in miniature: a group committed at offset 3 while retention moved the log start
        // to 6 and the producer reached 10.
        let c = PartitionConfig {
            segment_bytes: 3,
            retention_ms: Some(SimDuration::from_secs(60)),
            ..PartitionConfig::default()
        };
        let mut log = PartitionLog::new(c);
        for i in 0..6 {
            log.append(t(i), rec(i, 1)); // segments [0..3), [3..6) at 0-5 s
        }
        for i in 6..10 {
            log.append(t(100 + i), rec(i, 1)); // [6..9), [9..10) at 106-109 s
        }
        let committed = 3;
        let d = log.enforce_retention(t(100));
        assert_eq!((d.first_offset, d.end_offset), (0, 6));
        assert_eq!(
            d.unconsumed_by(committed),
            3,
            "offsets 3, 4, 5 never reached the group"
        );
        assert_eq!(d.unconsumed_by(0), 6);
        assert_eq!(d.unconsumed_by(8), 0);
        assert_eq!(log.lost_to_retention(committed), 3);
        assert_eq!(log.lost_to_retention(7), 0);
        assert_eq!(log.lag(committed), 7);
        assert_eq!(
            log.fetch(committed, 500, u64::MAX),
            FetchResult::OffsetOutOfRange {
                requested: 3,
                log_start_offset: 6,
                high_watermark: 10,
            }
        );
        let earliest = log.reset_offset(committed, OffsetReset::Earliest);
        assert_eq!(
            earliest,
            Some(Reset {
                offset: 6,
                skipped: 3
            })
        );
        let latest = log.reset_offset(committed, OffsetReset::Latest);
        assert_eq!(
            latest,
            Some(Reset {
                offset: 10,
                skipped: 7
            })
        );
        assert_eq!(log.reset_offset(committed, OffsetReset::None), None);
        // A position ahead of the log (after an unclean failover, say) moves back: no skip.
        assert_eq!(
            log.reset_offset(12, OffsetReset::Earliest),
            Some(Reset {
                offset: 6,
                skipped: 0
            })
        );
        assert_eq!(offsets(&log.fetch(6, 500, u64::MAX)), vec![6, 7, 8, 9]);
    }

    #[test]
    fn disk_accounting_sums_partitions() {
        let mut a = PartitionLog::new(PartitionConfig::default());
        let mut b = PartitionLog::new(PartitionConfig::default());
        a.append(t(0), rec(0, 600));
        b.append(t(0), rec(1, 300));
        let disk = Disk {
            capacity_bytes: 1_000,
        };
        assert!(disk.validate().is_ok());
        let used = Disk::used([&a, &b]);
        assert_eq!(used, 900);
        assert_eq!(disk.free(used), 100);
        assert!(disk.fits(used, 100));
        assert!(!disk.fits(used, 101));
        assert!(!disk.fits(u64::MAX, 1));
        assert_eq!(disk.free(2_000), 0);
        assert!(Disk { capacity_bytes: 0 }.validate().is_err());
    }

    #[test]
    fn configs_parse_and_validate() {
        let c: PartitionConfig = ron::from_str(
            r#"(segment_bytes: 1048576, segment_ms: "1h", retention_ms: Some("30m"),
                retention_bytes: Some(10000000), retention_check_interval: "30s")"#,
        )
        .expect("parses");
        assert_eq!(c.segment_bytes, 1 << 20);
        assert_eq!(c.segment_ms, SimDuration::from_hours(1));
        assert_eq!(c.retention_ms, Some(SimDuration::from_mins(30)));
        assert_eq!(c.retention_bytes, Some(10_000_000));
        assert_eq!(c.retention_check_interval, SimDuration::from_secs(30));
        assert!(c.validate().is_ok());
        let c: PartitionConfig = ron::from_str("(retention_ms: None)").expect("parses");
        assert_eq!(c.retention_ms, None);
        assert_eq!(c.segment_bytes, DEFAULT_SEGMENT_BYTES);
        assert_eq!(
            ron::from_str::<PartitionConfig>("()").ok(),
            Some(PartitionConfig::default())
        );
        assert!(ron::from_str::<PartitionConfig>("(retention_hours: 5)").is_err());
        let field = |c: PartitionConfig| c.validate().unwrap_err().field().map(str::to_string);
        let d = PartitionConfig::default();
        let zero = |f: fn(&mut PartitionConfig)| {
            let mut c = d.clone();
            f(&mut c);
            field(c)
        };
        assert_eq!(
            zero(|c| c.segment_bytes = 0).as_deref(),
            Some("segment_bytes")
        );
        assert_eq!(
            zero(|c| c.segment_ms = SimDuration::ZERO).as_deref(),
            Some("segment_ms")
        );
        assert_eq!(
            zero(|c| c.retention_check_interval = SimDuration::ZERO).as_deref(),
            Some("retention_check_interval")
        );
    }

    /// The log against a naive model (a Vec of every record ever appended, plus the start
    /// offset), under random appends, retention runs and fetches.
    #[test]
    fn matches_a_naive_model_under_random_operations() {
        use rand::RngExt;
        let mut rng = crate::engine::rng::stream(17, "partition");
        for round in 0..50 {
            let c = PartitionConfig {
                segment_bytes: rng.random_range(1..400),
                segment_ms: SimDuration::from_secs(rng.random_range(1..50)),
                retention_ms: if rng.random_bool(0.7) {
                    Some(SimDuration::from_secs(rng.random_range(0..100)))
                } else {
                    None
                },
                retention_bytes: if rng.random_bool(0.5) {
                    Some(rng.random_range(0..2_000))
                } else {
                    None
                },
                ..PartitionConfig::default()
            };
            let mut log = PartitionLog::new(c);
            let mut all: Vec<(SimTime, NewRecord)> = Vec::new();
            let mut now = 0u64;
            for step in 0..400 {
                now += rng.random_range(0..3);
                match rng.random_range(0..10) {
                    0..=5 => {
                        let n = rng.random_range(0..4);
                        let batch: Vec<NewRecord> = (0..n)
                            .map(|k| rec((step * 4 + k) as u64, rng.random_range(0..120)))
                            .collect();
                        let first = log.append_batch(t(now), &batch);
                        assert_eq!(first, all.len() as u64);
                        all.extend(batch.iter().map(|r| (t(now), *r)));
                    }
                    6 | 7 => {
                        let before = log.log_start_offset();
                        let d = log.enforce_retention(t(now));
                        assert_eq!(d.first_offset, before);
                        let expected_bytes: u64 = all[before as usize..d.end_offset as usize]
                            .iter()
                            .map(|(_, r)| u64::from(r.bytes))
                            .sum();
                        assert_eq!(d.bytes, expected_bytes, "round {round} step {step}");
                    }
                    _ => {
                        let lo = log.log_start_offset();
                        let offset = rng.random_range(0..=all.len() as u64 + 1);
                        let max_records = rng.random_range(0..6);
                        let max_bytes = rng.random_range(0..300);
                        match log.fetch(offset, max_records, max_bytes) {
                            FetchResult::Records {
                                records,
                                next_offset,
                                ..
                            } => {
                                assert!(offset >= lo && offset <= all.len() as u64);
                                assert_eq!(next_offset, offset + records.len() as u64);
                                let mut bytes = 0;
                                for (i, r) in records.iter().enumerate() {
                                    let (at, want) = all[(offset + i as u64) as usize];
                                    assert_eq!(
                                        (r.id, r.bytes, r.append_time),
                                        (want.id, want.bytes, at)
                                    );
                                    bytes += u64::from(r.bytes);
                                    if i > 0 {
                                        assert!(bytes <= max_bytes);
                                    }
                                }
                                assert!(records.len() <= max_records as usize);
                                let more = (offset as usize + records.len()) < all.len();
                                if more && records.len() < max_records as usize {
                                    // Stopped by bytes: the next record would not have fitted.
                                    let next = all[offset as usize + records.len()].1.bytes;
                                    assert!(
                                        records.is_empty() || bytes + u64::from(next) > max_bytes
                                    );
                                }
                            }
                            FetchResult::OffsetOutOfRange { .. } => {
                                assert!(offset < lo || offset > all.len() as u64);
                            }
                        }
                    }
                }
                // Invariants after every operation.
                let start = log.log_start_offset();
                assert_eq!(log.log_end_offset(), all.len() as u64);
                assert_eq!(log.high_watermark(), log.log_end_offset());
                assert!(start <= log.high_watermark());
                let retained: u64 = all[start as usize..]
                    .iter()
                    .map(|(_, r)| u64::from(r.bytes))
                    .sum();
                assert_eq!(log.bytes(), retained);
                assert_eq!(log.deleted_total().records, start);
                let mut expect_base = start;
                for s in &log.segments {
                    assert_eq!(s.base_offset, expect_base);
                    expect_base = s.end_offset();
                }
                assert_eq!(expect_base, log.log_end_offset());
                assert!(!log.segments.is_empty());
                for s in log.segments.iter().take(log.segments.len() - 1) {
                    assert!(s.records > 0, "only the active segment may be empty");
                }
            }
        }
    }

    #[test]
    fn a_million_records_stay_compact() {
        assert_eq!(std::mem::size_of::<Stored>(), 32);
        let c = PartitionConfig {
            segment_bytes: 1 << 20,
            ..PartitionConfig::default()
        };
        let mut log = PartitionLog::new(c);
        for i in 0..1_000_000u64 {
            log.append(SimTime::from_nanos(i * 1_000), rec(i, 100));
        }
        assert_eq!(log.len(), 1_000_000);
        assert_eq!(log.bytes(), 100_000_000);
        // 1 MiB segments of 100-byte records hold 10,485 records each.
        assert_eq!(log.segment_count(), 1_000_000_u64.div_ceil(10_485));
        assert_eq!(log.get(765_432).map(|r| r.id), Some(765_432));
        assert_eq!(
            offsets(&log.fetch(999_998, 500, u64::MAX)),
            vec![999_998, 999_999]
        );
    }
}
