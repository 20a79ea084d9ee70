//! The trace: a running 64-bit hash of every processed event, and optionally the full record.
//!
//! The hash folds each event's time, target, kind and source (and every trace note) through a
//! fixed integer mixing function, so it is the same run after run, in debug and in release, on
//! every platform: two runs with the same seed must end with the same hash, and a test says so.
//! It deliberately leaves out the insertion counter (`seq`), so that engine bookkeeping (metric
//! sampling, for instance) can change without changing any model's trace.
//!
//! The full record ([`TraceRecord`]) is kept only when asked for. [`first_divergence`] compares
//! two records and names the first event at which two runs differ — what you need when a
//! determinism check fails.

use std::io::{self, Write};

use serde::Serialize;

use crate::engine::time::SimTime;

/// Kinds of traced events (folded into the hash; stable numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TraceKind {
    Start = 1,
    Message = 2,
    Timer = 3,
    Fault = 4,
    Note = 5,
    /// An event addressed to an earlier incarnation of a restarted actor, dropped.
    Stale = 6,
    /// An event addressed to a crashed actor, dropped.
    Down = 7,
    /// An event for a paused actor, put in its backlog.
    Deferred = 8,
    /// An actor crashed itself (`Ctx::crash_self`), right after its handler returned.
    SelfCrash = 9,
    /// An actor came back after the delay it asked for when it crashed itself.
    SelfRestart = 10,
    /// An actor was killed by another (`Ctx::kill`: a power switch, a kubelet), right after the
    /// killer's handler returned. The event's actor is the victim, `from` the killer.
    Kill = 11,
    /// A connection attempt to an actor that was down reached its host (`Ctx::monitor`): the
    /// event's actor is the target, `from` the one connecting.
    Connect = 12,
}

/// One line of the full trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TraceRecord {
    /// Index of the event in the run (0-based).
    pub index: u64,
    /// True time, in nanoseconds.
    pub time_ns: u64,
    pub kind: TraceKind,
    /// The actor the event was for (absent for faults).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// The sender of a message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The message, timer payload, fault or note, as text.
    pub detail: String,
    /// The running hash after this event.
    pub hash: u64,
}

/// The running hash and the optional record.
#[derive(Debug)]
pub struct Trace {
    hash: u64,
    index: u64,
    record: Option<Vec<TraceRecord>>,
}

const SEED: u64 = 0x6a09_e667_f3bc_c908;
const NO_ACTOR: u64 = u64::MAX;

#[inline]
fn mix(h: u64, x: u64) -> u64 {
    // A multiply-rotate step (as in FxHash) followed by xor-shift finalisation at read time is
    // enough to make any changed word change the result; it is also cheap on the hot path.
    (h.rotate_left(23) ^ x).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

impl Default for Trace {
    fn default() -> Self {
        Self::new(false)
    }
}

impl Trace {
    pub fn new(record: bool) -> Self {
        Trace {
            hash: SEED,
            index: 0,
            record: record.then(Vec::new),
        }
    }

    /// Whether the full record is being kept (callers skip formatting details otherwise).
    #[inline]
    pub fn recording(&self) -> bool {
        self.record.is_some()
    }

    /// Folds one event into the hash.
    #[inline]
    pub fn fold(&mut self, time: SimTime, kind: TraceKind, actor: Option<u32>, from: Option<u32>) {
        let mut h = mix(self.hash, time.as_nanos());
        h = mix(h, kind as u64);
        h = mix(h, actor.map_or(NO_ACTOR, u64::from));
        h = mix(h, from.map_or(NO_ACTOR, u64::from));
        self.hash = h;
        self.index += 1;
    }

    /// Appends the record of the event just folded (only when recording).
    pub fn push_record(
        &mut self,
        time: SimTime,
        kind: TraceKind,
        actor: Option<String>,
        from: Option<String>,
        detail: String,
    ) {
        let (index, hash) = (self.index.saturating_sub(1), self.hash());
        if let Some(rec) = &mut self.record {
            rec.push(TraceRecord {
                index,
                time_ns: time.as_nanos(),
                kind,
                actor,
                from,
                detail,
                hash,
            });
        }
    }

    /// Folds a note written by an actor: its bytes, so that what the actor said matters.
    pub fn note(&mut self, time: SimTime, actor: crate::actor::ActorId, note: &str) {
        self.fold(time, TraceKind::Note, Some(actor.0), None);
        for chunk in note.as_bytes().chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.hash = mix(self.hash, u64::from_le_bytes(word));
        }
        if self.recording() {
            self.push_record(
                time,
                TraceKind::Note,
                Some(format!("#{}", actor.0)),
                None,
                note.to_string(),
            );
        }
    }

    /// The hash so far (finalised so that nearby states give distant values).
    pub fn hash(&self) -> u64 {
        let mut z = self.hash ^ self.index;
        z = (z ^ (z >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
        z = (z ^ (z >> 33)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        z ^ (z >> 33)
    }

    /// Events folded so far.
    pub fn len(&self) -> u64 {
        self.index
    }

    pub fn is_empty(&self) -> bool {
        self.index == 0
    }

    pub fn records(&self) -> Option<&[TraceRecord]> {
        self.record.as_deref()
    }

    pub(crate) fn take_records(&mut self) -> Option<Vec<TraceRecord>> {
        self.record.take()
    }
}

/// Writes records as JSON lines.
pub fn write_jsonl<W: Write>(records: &[TraceRecord], mut out: W) -> io::Result<()> {
    for r in records {
        serde_json::to_writer(&mut out, r)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// Where two runs parted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    /// Index of the first differing event.
    pub index: u64,
    /// The event in the first run (None if it ended first).
    pub left: Option<TraceRecord>,
    /// The event in the second run (None if it ended first).
    pub right: Option<TraceRecord>,
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |r: &Option<TraceRecord>| match r {
            Some(r) => format!(
                "t={}ns {:?} {} {}{}",
                r.time_ns,
                r.kind,
                r.actor.as_deref().unwrap_or("-"),
                r.from
                    .as_deref()
                    .map(|s| format!("from {s} "))
                    .unwrap_or_default(),
                r.detail
            ),
            None => "(run ended)".to_string(),
        };
        write!(
            f,
            "runs diverge at event {}: first run {}; second run {}",
            self.index,
            show(&self.left),
            show(&self.right)
        )
    }
}

/// The first event at which two records differ (ignoring the running hash, which differs from
/// there on anyway), or None if they are identical.
pub fn first_divergence(a: &[TraceRecord], b: &[TraceRecord]) -> Option<Divergence> {
    let same = |x: &TraceRecord, y: &TraceRecord| {
        x.time_ns == y.time_ns
            && x.kind == y.kind
            && x.actor == y.actor
            && x.from == y.from
            && x.detail == y.detail
    };
    let n = a.len().min(b.len());
    for i in 0..n {
        if !same(&a[i], &b[i]) {
            return Some(Divergence {
                index: i as u64,
                left: Some(a[i].clone()),
                right: Some(b[i].clone()),
            });
        }
    }
    if a.len() != b.len() {
        return Some(Divergence {
            index: n as u64,
            left: a.get(n).cloned(),
            right: b.get(n).cloned(),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_depends_on_every_field_and_on_order() {
        let run = |events: &[(u64, TraceKind, Option<u32>, Option<u32>)]| {
            let mut t = Trace::new(false);
            for &(time, k, a, f) in events {
                t.fold(SimTime::from_nanos(time), k, a, f);
            }
            t.hash()
        };
        let base = [
            (1, TraceKind::Message, Some(1), Some(2)),
            (2, TraceKind::Timer, Some(1), None),
        ];
        let h = run(&base);
        assert_eq!(h, run(&base));
        assert_ne!(
            h,
            run(&[
                (1, TraceKind::Message, Some(1), Some(2)),
                (3, TraceKind::Timer, Some(1), None)
            ])
        );
        assert_ne!(
            h,
            run(&[
                (1, TraceKind::Message, Some(1), Some(3)),
                (2, TraceKind::Timer, Some(1), None)
            ])
        );
        assert_ne!(
            h,
            run(&[
                (1, TraceKind::Start, Some(1), Some(2)),
                (2, TraceKind::Timer, Some(1), None)
            ])
        );
        assert_ne!(h, run(&[base[1], base[0]]));
        assert_ne!(h, run(&base[..1]));
    }

    #[test]
    fn hash_is_pinned() {
        // A pinned value: the hash must not change between builds, platforms or profiles. If a
        // deliberate change to the mixing breaks this, every recorded trace hash changes too.
        let mut t = Trace::new(false);
        t.fold(
            SimTime::from_nanos(1_000),
            TraceKind::Message,
            Some(3),
            Some(4),
        );
        t.fold(SimTime::from_nanos(2_000), TraceKind::Timer, Some(3), None);
        assert_eq!(t.hash(), PINNED);
    }
    const PINNED: u64 = 2_747_305_976_596_914_805;

    #[test]
    fn divergence_names_first_difference() {
        let rec = |i: u64, d: &str| TraceRecord {
            index: i,
            time_ns: i * 10,
            kind: TraceKind::Message,
            actor: Some("a".into()),
            from: None,
            detail: d.into(),
            hash: 0,
        };
        let a = vec![rec(0, "x"), rec(1, "y"), rec(2, "z")];
        let mut b = a.clone();
        assert_eq!(first_divergence(&a, &b), None);
        b[1].detail = "Y".into();
        let d = first_divergence(&a, &b).unwrap();
        assert_eq!(d.index, 1);
        assert!(d.to_string().contains("event 1"));
        let d = first_divergence(&a, &a[..2]).unwrap();
        assert_eq!(d.index, 2);
        assert_eq!(d.right, None);
    }
}
