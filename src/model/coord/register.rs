//! A replicated-register's merge rule, one key at a time (L3): last-writer-wins by the
//! writer's wall clock, by a hybrid logical clock, or per-key sequence numbers.
//!
//! - [`Merge::LwwWall`]: each write carries the writer's local clock reading; the register
//!   keeps the greatest `(time, node)`. That is Cassandra's rule with client-side timestamps
//!   (the driver stamps each statement with the client's clock; the cell with the highest
//!   write time wins, ties broken by value) and any CRDT LWW register stamped with `now()`.
//!   A write stamped lower than the current value is acknowledged and silently dropped: with
//!   a clock running ahead, the *older* write wins.
//! - [`Merge::LwwHlc`]: the same rule over HLC stamps `(l, c, node)`. A writer that read a
//!   value observes its stamp before it stamps its own write, so a write that causally
//!   follows another always carries a greater stamp ([`super::clock`]).
//! - [`Merge::Sequence`]: per-key version numbers with a conditional write: a write names
//!   the version it read and is applied only if that is still the current version (etcd's
//!   `mod_revision` compare, DynamoDB's condition expression on a version attribute). A stale
//!   writer gets a visible [`Applied::Conflict`] instead of a silent loss, and retries.
//!
//! Nothing here knows true time. The register's store actor judges losses by its own arrival
//! order, which is the real order of writes at a single store.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How concurrent writes to one key are ordered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Merge {
    /// Greatest wall-clock stamp wins.
    #[default]
    LwwWall,
    /// Greatest HLC stamp wins.
    LwwHlc,
    /// Conditional writes on a per-key version.
    Sequence,
}

/// A write's identity: unique in a run (the writer's actor index and its own counter).
pub type WriteId = u64;

/// A total order over writes: `(time, count, node)` lexicographically. LWW by wall clock
/// uses `(local clock ns, 0, node)`; HLC uses `(l, c, node)`; sequence numbers ignore it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Stamp {
    pub time: u64,
    pub count: u32,
    /// The writer, as a tie-break (Cassandra breaks ties by value; any fixed rule will do).
    pub node: u32,
}

/// The current value of a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Version {
    pub value: u64,
    pub write: WriteId,
    pub stamp: Stamp,
    /// Writes applied to the key so far (the sequence number), from 1.
    pub version: u64,
}

/// One write to a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegisterWrite {
    pub key: u64,
    pub value: u64,
    pub write: WriteId,
    pub stamp: Stamp,
    /// For [`Merge::Sequence`]: the version the writer read (0 for a key never written).
    pub expected: u64,
}

/// What the register did with a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The write is the key's value now.
    Won { version: u64 },
    /// LWW kept the current value (stamped higher); the write is acknowledged and gone.
    Lost { to: WriteId },
    /// Sequence: the key moved on since the writer read it (its version is `current`).
    Conflict { current: u64 },
}

/// All keys of one register.
#[derive(Clone, Debug, Default)]
pub struct Register {
    merge: Merge,
    cells: BTreeMap<u64, Version>,
}

impl Register {
    pub fn new(merge: Merge) -> Self {
        Register {
            merge,
            cells: BTreeMap::new(),
        }
    }

    pub fn merge(&self) -> Merge {
        self.merge
    }

    pub fn read(&self, key: u64) -> Option<Version> {
        self.cells.get(&key).copied()
    }

    pub fn apply(&mut self, w: RegisterWrite) -> Applied {
        let current = self.cells.get(&w.key).copied();
        let version = current.map_or(0, |c| c.version);
        match (self.merge, current) {
            (Merge::Sequence, _) if w.expected != version => {
                return Applied::Conflict { current: version };
            }
            (Merge::LwwWall | Merge::LwwHlc, Some(c)) if c.stamp >= w.stamp => {
                return Applied::Lost { to: c.write };
            }
            _ => {}
        }
        let next = version + 1;
        self.cells.insert(
            w.key,
            Version {
                value: w.value,
                write: w.write,
                stamp: w.stamp,
                version: next,
            },
        );
        Applied::Won { version: next }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(time: u64, count: u32, node: u32) -> Stamp {
        Stamp { time, count, node }
    }

    fn write(write: WriteId, stamp: Stamp, expected: u64) -> RegisterWrite {
        RegisterWrite {
            key: 1,
            value: write * 10,
            write,
            stamp,
            expected,
        }
    }

    #[test]
    fn lww_keeps_the_greatest_stamp_whatever_the_arrival_order() {
        let mut r = Register::new(Merge::LwwWall);
        // Node 1's clock runs 5 s ahead: its write at true 0 s is stamped 5 s.
        assert_eq!(
            r.apply(write(1, stamp(5_000, 0, 1), 0)),
            Applied::Won { version: 1 }
        );
        // Node 2 writes at true 1 s, stamped 1 s: later in reality, lost.
        assert_eq!(
            r.apply(write(2, stamp(1_000, 0, 2), 1)),
            Applied::Lost { to: 1 }
        );
        assert_eq!(r.read(1).map(|v| v.value), Some(10));
        // Equal times: the node breaks the tie; an identical stamp loses (no change).
        assert!(matches!(
            r.apply(write(3, stamp(5_000, 0, 3), 0)),
            Applied::Won { .. }
        ));
        assert_eq!(
            r.apply(write(4, stamp(5_000, 0, 3), 0)),
            Applied::Lost { to: 3 }
        );
    }

    #[test]
    fn hlc_stamps_order_by_count_within_one_l() {
        let mut r = Register::new(Merge::LwwHlc);
        r.apply(write(1, stamp(5_000, 0, 1), 0));
        // A writer that observed (5000, 0) stamps (5000, 1) even though its clock says 1000.
        assert_eq!(
            r.apply(write(2, stamp(5_000, 1, 2), 0)),
            Applied::Won { version: 2 }
        );
        assert_eq!(r.read(1).map(|v| v.write), Some(2));
    }

    #[test]
    fn sequence_applies_only_on_the_version_read_and_ignores_stamps() {
        let mut r = Register::new(Merge::Sequence);
        assert_eq!(
            r.apply(write(1, stamp(9_000, 0, 1), 0)),
            Applied::Won { version: 1 }
        );
        // A writer that read version 1 wins with a far lower stamp.
        assert_eq!(
            r.apply(write(2, stamp(1, 0, 2), 1)),
            Applied::Won { version: 2 }
        );
        // A writer that read version 1 too is now stale, and told so.
        assert_eq!(
            r.apply(write(3, stamp(99_999, 0, 3), 1)),
            Applied::Conflict { current: 2 }
        );
        assert_eq!(r.read(1).map(|v| (v.write, v.version)), Some((2, 2)));
    }
}
