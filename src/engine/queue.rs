//! The engine's pending-event queue: a min-priority queue on `(time, seq)`, where `seq` is a
//! global insertion counter (so equal times pop in insertion order), with O(1) cancellation
//! through an [`EventKey`]. The simulator's determinism rests on that order being exact, so it is
//! the same whatever internal path an event takes.
//!
//! **Why not just a binary heap.** A heap is the fastest structure for a handful of pending
//! events, but it degrades in exactly the workloads a failure simulator loves: thousands of
//! actors, each re-arming timeouts that almost never fire. With lazy deletion the heap fills with
//! cancelled entries (~8 stale per live one when a 45 s timeout is re-armed every 3 s), every
//! operation pays `log n` cache misses on that bloated heap, and memory grows with the
//! cancellation rate instead of with the live events. So the queue is three parts:
//!
//! * A **slab** owns the payloads, with a LIFO free list (a just-freed slot is reused while it is
//!   still in cache). Each slot has a generation, kept in a dense `gens` array of its own so that
//!   the frequent "is this reference still live?" check reads 4 bytes per slot from an array
//!   that stays in cache; an [`EventKey`] is `(slot, generation)`. Firing or cancelling bumps
//!   the generation, which makes every other reference to the event stale at once, in O(1), and
//!   keeps an old key from ever matching a reused slot. A slot whose generation reaches
//!   `u32::MAX` is retired instead of wrapping, so that guarantee holds for runs of any length.
//! * A **near heap** of 24-byte references `(time, seq, slot, generation)`: a hand-written 4-ary
//!   min-heap (see `NearHeap` for why not `std`'s `BinaryHeap`).
//! * A **hierarchical timing wheel** for later events: 8 levels of 64 slots, level-0 slots
//!   2^20 ns (~1 ms) wide and each level 64 times coarser, so it spans all of `u64`. A reference
//!   is filed, as in tokio's timer wheel, at the level of the highest 6-bit group in which its
//!   tick differs from the wheel's current tick; each level has a 64-bit occupancy mask, so the
//!   next occupied slot is one `trailing_zeros`.
//!
//! **The horizon.** One number separates heap and wheel: every heap reference has
//! `time <= horizon`, every wheel reference `time > horizon`. So the heap's minimum, when it has
//! a live one, is the global minimum; equal times always share a structure, so FIFO among them is
//! just the heap's `seq` order, however the events got there; and `cancel` can tell where a
//! reference lives from its event's time, with nothing stored.
//!
//! **Modes.** While the queue is small the wheel is empty and `horizon == u64::MAX`: every event
//! goes to the heap and the wheel is never touched, so a queue of two or three events costs what a
//! tiny heap costs. When the heap grows past `SPILL_AT` references it *spills*: the wheel is put
//! at the current tick, the horizon at that tick's end, and later events go into the wheel, in
//! O(1). When the heap runs dry the wheel *advances*: it empties the first occupied slot of its
//! lowest non-empty level, moves its current tick to that slot's earliest tick, and re-files the
//! slot's references lower down or into the heap (each reference moves at most once per level).
//! When fewer than `COLLAPSE_BELOW` events are left at an advance, the wheel is folded back
//! into the heap; the gap between the two thresholds keeps the mode from flapping, so each O(n)
//! switch follows Ω(n) operations.
//!
//! **Bounded garbage.** Stale references are skipped when met, and counted where they lie. The
//! heap is rebuilt without them once they are more than half of it (if it has more than
//! `HEAP_REBUILD_MIN` references); the wheel's slots are compacted once their stale references
//! outnumber the live ones by more than `WHEEL_SLACK`. Each purge is paid for by the
//! cancellations that made its garbage, so storage stays O(live events) (the slab: O(peak live
//! events)) and every operation is amortised O(1) besides the heap's `log n`, on a heap that holds
//! only a small queue or the current millisecond.
//!
//! **Where this departs from the first design, and why** (all measured with the scratch crate's
//! criterion bench and A/B harness):
//! * Wheel slots hold the full 24-byte reference, not just `(slot, generation)`, and references
//!   moving between levels are not checked for liveness: re-filing then reads nothing but the
//!   slot being emptied. Only a reference entering the heap is checked (and its payload's cache
//!   line touched, since it will pop within the millisecond). Reading the slab at every level was
//!   a cache miss per reference per level, and this halved the cost of the `timers` pattern.
//! * An advance moves the wheel to the earliest tick in the slot it empties rather than to the
//!   slot's first tick, so a sparse wheel gives the heap an event at every advance instead of
//!   cascading empty level by level (2x on events ~1 h apart, neutral elsewhere).
//! * The horizon is inclusive (the last nanosecond of the current tick), so that the end of the
//!   last tick, at `u64::MAX`, is representable and needs no special case.
//! * `SPILL_AT` is 512, below the 4,096-16,384 first suggested: that is where the wheel starts
//!   to win once the heap is hand-written; see its documentation for the numbers.
//! * A slot's buffer is kept for reuse when the slot empties only if it is small
//!   (`KEEP_BUCKET_CAP`); keeping every buffer held ~250 MB on `timers` for 200k live events.

use std::hint::black_box;
use std::mem;

/// log2 of the width of a level-0 wheel slot, in nanoseconds (2^20 ns ≈ 1.05 ms): fine enough
/// that the heap only sorts ~1 ms of events at a time, coarse enough that a 45 s timeout sits
/// only three levels up.
const TICK_SHIFT: u32 = 20;
/// The nanoseconds inside one tick.
const TICK_MASK: u64 = (1 << TICK_SHIFT) - 1;
/// Bits of the tick number resolved per wheel level: 64 slots, so a level's occupancy is one
/// `u64` and the next occupied slot is one `trailing_zeros`.
const LEVEL_BITS: u32 = 6;
const SLOTS: usize = 1 << LEVEL_BITS;
/// Enough levels to cover every tick: ceil((64 - 20) / 6) = 8.
const LEVELS: usize = (64 - TICK_SHIFT as usize).div_ceil(LEVEL_BITS as usize);
const _: () = assert!(LEVELS * LEVEL_BITS as usize >= 64 - TICK_SHIFT as usize);

/// Largest (empty) slot buffer, in references, that the wheel keeps for reuse: so at most
/// `LEVELS * SLOTS * KEEP_BUCKET_CAP` references' worth of idle capacity (~800 KB).
const KEEP_BUCKET_CAP: usize = 64;

/// The horizon in pure-heap mode: every time is `<=` it, so everything goes to the heap.
const NO_HORIZON: u64 = u64::MAX;

/// Heap size (in references) past which the queue spills into the wheel. Measured with events
/// rescheduling themselves an exponential delay ahead (`examples/ab` in the scratch crate): with
/// a 1 s mean the wheel is as fast as the heap from ~64 pending events and 1.5x faster at 16k;
/// with a 1 h mean it catches up at ~150; with a 1 ms mean nearly every event sits in the
/// current tick, so the wheel cannot help and costs up to ~10% until ~16k. 512 takes the wheel's
/// large wins at the price of that small loss, and keeps small queues (`mm1`) in pure-heap mode.
const SPILL_AT: usize = 512;
/// Live-event count under which an advancing wheel is folded back into the heap: an eighth of
/// `SPILL_AT`, so that a spill and the next collapse are Ω(`SPILL_AT`) operations apart (a
/// spill can happen with half of the heap stale, so with only `SPILL_AT / 2` live events).
const COLLAPSE_BELOW: usize = SPILL_AT / 8;
/// Heaps at most this big are never rebuilt for their stale references: they are cheap anyway.
const HEAP_REBUILD_MIN: usize = 64;
/// How far stale wheel references may outnumber live ones before the slot vectors are compacted.
const WHEEL_SLACK: usize = 1_024;

/// A handle to a pending event; cancelling through it is O(1).
///
/// It names a slab slot and that slot's generation at the time of the push; firing or cancelling
/// the event bumps the generation, so the key then matches nothing, even after the slot is reused.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct EventKey {
    index: u32,
    generation: u32,
}

/// A reference to an event, as ordered by the heap and filed by the wheel. It carries the whole
/// sort key so that neither structure reads the slab to compare or re-file it; the slab is only
/// consulted, through the dense `gens` array, to see whether the reference went stale.
#[derive(Clone, Copy, Debug)]
struct Ref {
    time: u64,
    seq: u64,
    index: u32,
    generation: u32,
}

impl Ref {
    /// `(time, seq)` as one integer, so a comparison is one branch-free 128-bit compare. `seq` is
    /// unique, so this is a strict total order on references.
    #[inline(always)]
    fn rank(&self) -> u128 {
        (u128::from(self.time) << 64) | u128::from(self.seq)
    }

    /// Whether the event this reference names is still pending.
    #[inline(always)]
    fn is_live(&self, gens: &[u32]) -> bool {
        gens[self.index as usize] == self.generation
    }
}

/// Children per node of the near heap. A 4-ary heap is half as deep as a binary one and a node's
/// children share a cache line or two, which pays on the heaps of a few dozen to a few thousand
/// references that the queue keeps.
const ARITY: usize = 4;

/// The smallest of the `ARITY` references from `first` on, as a tournament of branch-free
/// selections: the comparisons are data-dependent coin flips, so branches would mispredict half
/// the time.
#[inline(always)]
fn min_child(refs: &[Ref], first: usize) -> usize {
    let pick = |a: usize, b: usize| {
        if refs[b].rank() < refs[a].rank() {
            b
        } else {
            a
        }
    };
    const _: () = assert!(ARITY == 4, "min_child is written for four children");
    let low = pick(first, first + 1);
    let high = pick(first + 2, first + 3);
    pick(low, high)
}

/// The near heap: a min-heap of references on `(time, seq)`.
///
/// Hand-written rather than `std`'s `BinaryHeap` with a reversed `Ord`: that one moves the
/// 24-byte element through a stack temporary written and read back in pieces of different
/// widths, which defeats store-to-load forwarding; on the two-event `mm1` pattern that stall was
/// most of the queue's cost. Here the element being sifted stays in registers.
#[derive(Default)]
struct NearHeap {
    refs: Vec<Ref>,
}

impl NearHeap {
    fn with_capacity(n: usize) -> Self {
        NearHeap {
            refs: Vec::with_capacity(n),
        }
    }

    /// Heap-orders `refs` in O(n).
    fn from_vec(refs: Vec<Ref>) -> Self {
        let mut heap = NearHeap { refs };
        heap.heapify();
        heap
    }

    fn into_vec(self) -> Vec<Ref> {
        self.refs
    }

    #[inline(always)]
    fn len(&self) -> usize {
        self.refs.len()
    }

    #[inline(always)]
    fn is_empty(&self) -> bool {
        self.refs.is_empty()
    }

    #[cfg(test)]
    fn iter(&self) -> std::slice::Iter<'_, Ref> {
        self.refs.iter()
    }

    /// The smallest reference.
    #[inline(always)]
    fn peek(&self) -> Option<&Ref> {
        self.refs.first()
    }

    /// The second smallest reference: the smallest of the root's children.
    #[inline(always)]
    fn peek_second(&self) -> Option<&Ref> {
        self.refs
            .get(1..(1 + ARITY).min(self.refs.len()))?
            .iter()
            .min_by_key(|r| r.rank())
    }
    #[inline(always)]
    fn push(&mut self, r: Ref) {
        let hole = self.refs.len();
        self.refs.push(r);
        self.sift_up(hole, r);
    }

    /// Removes the smallest reference.
    #[inline(always)]
    fn pop(&mut self) -> Option<Ref> {
        let last = self.refs.pop()?;
        if self.refs.is_empty() {
            return Some(last);
        }
        let top = self.refs[0];
        debug_assert!(top.rank() < last.rank(), "the root is the minimum");
        // As `std` does: move the hole all the way down along the smaller children, then sift
        // `last` (which came from the bottom, so it usually belongs near there) back up. That
        // saves the comparison with `last` at every level of a plain sift-down.
        let hole = self.hole_to_bottom(0);
        self.sift_up(hole, last);
        Some(top)
    }

    /// Puts `r` into the hole at `hole`, moving larger parents down until it fits.
    #[inline(always)]
    fn sift_up(&mut self, mut hole: usize, r: Ref) {
        let rank = r.rank();
        while hole > 0 {
            let parent = (hole - 1) / ARITY;
            let p = self.refs[parent];
            if p.rank() < rank {
                break;
            }
            self.refs[hole] = p;
            hole = parent;
        }
        self.refs[hole] = r;
    }

    /// Moves the hole at `hole` down to a leaf, pulling the smallest child up at each level;
    /// returns where the hole ended.
    #[inline(always)]
    fn hole_to_bottom(&mut self, mut hole: usize) -> usize {
        let refs = &mut self.refs[..];
        let n = refs.len();
        loop {
            let first = ARITY * hole + 1;
            let best = if first + ARITY <= n {
                min_child(refs, first)
            } else if first < n {
                // The last, partial family.
                (first + 1..n).fold(first, |b, c| {
                    if refs[c].rank() < refs[b].rank() {
                        c
                    } else {
                        b
                    }
                })
            } else {
                return hole;
            };
            refs[hole] = refs[best];
            hole = best;
        }
    }

    /// Puts `r` into the hole at `hole`, moving smaller children up until it fits.
    fn sift_down(&mut self, mut hole: usize, r: Ref) {
        let refs = &mut self.refs[..];
        let rank = r.rank();
        loop {
            let first = ARITY * hole + 1;
            if first >= refs.len() {
                break;
            }
            let end = (first + ARITY).min(refs.len());
            let best = (first + 1..end).fold(first, |b, c| {
                if refs[c].rank() < refs[b].rank() {
                    c
                } else {
                    b
                }
            });
            // Ranks are unique (`seq` is), so this is the strict order.
            if rank < refs[best].rank() {
                break;
            }
            refs[hole] = refs[best];
            hole = best;
        }
        refs[hole] = r;
    }

    fn heapify(&mut self) {
        if self.refs.len() < 2 {
            return;
        }
        for i in (0..=(self.refs.len() - 2) / ARITY).rev() {
            let r = self.refs[i];
            self.sift_down(i, r);
        }
        debug_assert!(self.is_heap());
    }

    /// Keeps only the references `keep` accepts. O(n).
    fn retain(&mut self, keep: impl FnMut(&Ref) -> bool) {
        self.refs.retain(keep);
        self.heapify();
    }

    fn is_heap(&self) -> bool {
        (1..self.refs.len()).all(|i| self.refs[(i - 1) / ARITY].rank() < self.refs[i].rank())
    }
}

/// A slab slot. `time` is kept (rather than where the reference lives) because comparing it with
/// the horizon tells `cancel` whether the heap or the wheel holds the reference.
struct Slot<T> {
    time: u64,
    payload: Option<T>,
}

/// The tuning knobs, constants in production; tests shrink them so that every mode switch and
/// purge happens within a few operations.
#[derive(Clone, Copy, Debug)]
struct Tuning {
    spill_at: usize,
    collapse_below: usize,
    heap_rebuild_min: usize,
    wheel_slack: usize,
}

const TUNING: Tuning = Tuning {
    spill_at: SPILL_AT,
    collapse_below: COLLAPSE_BELOW,
    heap_rebuild_min: HEAP_REBUILD_MIN,
    wheel_slack: WHEEL_SLACK,
};

/// The hierarchical timing wheel for events beyond the horizon.
///
/// A reference with tick `d = time >> TICK_SHIFT` is filed at the level of the highest 6-bit
/// group in which `d` differs from `cur`, in the slot given by `d`'s group at that level. Since
/// `d > cur`, that group of `d` is larger than `cur`'s, and all higher groups are equal; so every
/// level-`l` reference precedes every level-`l+1` reference, and within a level the slot order is
/// the time order. The earliest reference is therefore in the lowest occupied slot of the lowest
/// non-empty level.
struct Wheel {
    /// The tick the wheel stands on; the horizon is the last nanosecond of it.
    cur: u64,
    /// Bit `s` of `occupied[l]` is set iff slot `s` of level `l` is non-empty.
    occupied: [u64; LEVELS],
    /// `LEVELS * SLOTS` vectors, level-major; empty (unallocated) until the first spill.
    slots: Vec<Vec<Ref>>,
    /// References in `slots` whose event is pending.
    live: usize,
    /// References in `slots` whose event was cancelled.
    stale: usize,
}

impl Wheel {
    fn new() -> Self {
        Wheel {
            cur: 0,
            occupied: [0; LEVELS],
            slots: Vec::new(),
            live: 0,
            stale: 0,
        }
    }

    /// The level and slot that a reference with tick `tick` belongs to, seen from `cur`.
    #[inline(always)]
    fn place(cur: u64, tick: u64) -> (usize, usize) {
        debug_assert!(tick > cur, "wheel entries lie beyond the current tick");
        let level = (63 - (tick ^ cur).leading_zeros()) / LEVEL_BITS;
        let slot = (tick >> (level * LEVEL_BITS)) as usize & (SLOTS - 1);
        (level as usize, slot)
    }

    /// Files `r` (not counted: the caller keeps `live` up to date).
    #[inline]
    fn file(&mut self, r: Ref) {
        let (level, slot) = Self::place(self.cur, r.time >> TICK_SHIFT);
        self.occupied[level] |= 1 << slot;
        self.slots[level * SLOTS + slot].push(r);
    }

    fn is_empty(&self) -> bool {
        self.occupied.iter().all(|&o| o == 0)
    }
}

/// The engine's pending events: a min-queue on `(time, insertion order)` with O(1) cancel.
/// See the module documentation for the structure.
pub struct EventQueue<T> {
    /// References with `time <= horizon`, smallest `(time, seq)` on top; may hold stale ones.
    heap: NearHeap,
    /// Stale references in `heap`.
    heap_stale: usize,
    /// Inclusive boundary between heap and wheel; `NO_HORIZON` while the wheel is out of use.
    horizon: u64,
    wheel: Wheel,
    /// Payload slab; `slab[i].payload.is_some()` iff slot `i` holds a pending event.
    slab: Vec<Slot<T>>,
    /// Generation of each slab slot (parallel to `slab`); see [`EventKey`].
    gens: Vec<u32>,
    /// Free slab slots, most recently freed last.
    free: Vec<u32>,
    /// The `seq` the next push gets.
    next_seq: u64,
    /// Pending (neither fired nor cancelled) events.
    len: usize,
    /// Time of the last popped event: no event may be pushed before it.
    now: u64,
    tuning: Tuning,
}

impl<T> Default for EventQueue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> EventQueue<T> {
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// A queue with room for `n` pending events before it reallocates.
    pub fn with_capacity(n: usize) -> Self {
        Self::with_tuning(n, TUNING)
    }

    fn with_tuning(n: usize, tuning: Tuning) -> Self {
        assert!(
            tuning.collapse_below <= tuning.spill_at / 2,
            "no hysteresis"
        );
        EventQueue {
            // Past `spill_at` references the heap spills, so reserving more would be waste.
            heap: NearHeap::with_capacity(n.min(tuning.spill_at + 1)),
            heap_stale: 0,
            horizon: NO_HORIZON,
            wheel: Wheel::new(),
            slab: Vec::with_capacity(n),
            gens: Vec::with_capacity(n),
            free: Vec::new(),
            next_seq: 0,
            len: 0,
            now: 0,
            tuning,
        }
    }

    /// Schedules `payload` at `time` (nanoseconds) and returns its key. Among events with the same
    /// time, the earlier push pops first.
    #[inline]
    pub fn push(&mut self, time: u64, payload: T) -> EventKey {
        debug_assert!(
            time >= self.now,
            "event at {time} ns scheduled before the last popped one ({} ns)",
            self.now
        );
        let seq = self.next_seq;
        self.next_seq += 1;
        let index = match self.free.pop() {
            Some(index) => {
                let slot = &mut self.slab[index as usize];
                debug_assert!(slot.payload.is_none(), "free slot {index} holds a payload");
                slot.time = time;
                slot.payload = Some(payload);
                index
            }
            None => self.grow_slab(time, payload),
        };
        let generation = self.gens[index as usize];
        let r = Ref {
            time,
            seq,
            index,
            generation,
        };
        self.len += 1;
        if time <= self.horizon {
            self.heap.push(r);
            if self.heap.len() > self.tuning.spill_at && self.horizon == NO_HORIZON {
                self.spill();
            }
        } else {
            self.wheel.file(r);
            self.wheel.live += 1;
        }
        EventKey { index, generation }
    }

    /// Appends a fresh slab slot (the free list is empty) holding `payload`.
    #[cold]
    #[inline(never)]
    fn grow_slab(&mut self, time: u64, payload: T) -> u32 {
        debug_assert_eq!(self.slab.len(), self.gens.len());
        let index = u32::try_from(self.slab.len()).expect("more than 2^32 slab slots");
        self.slab.push(Slot {
            time,
            payload: Some(payload),
        });
        self.gens.push(0);
        index
    }

    /// Marks slot `index` free: every key and reference to its event goes stale.
    #[inline(always)]
    fn release(&mut self, index: u32) {
        let generation = &mut self.gens[index as usize];
        *generation += 1;
        // A slot whose generation would wrap is retired: reusing it could let a 2^32-reuses-old
        // key match again. Costs one slot per 4 billion reuses.
        if *generation != u32::MAX {
            self.free.push(index);
        }
    }

    /// Cancels the event `key` names. O(1) amortised. Returns its payload if it was pending,
    /// `None` if it already fired or was cancelled.
    #[inline]
    pub fn cancel(&mut self, key: EventKey) -> Option<T> {
        if !self.is_pending(key) {
            return None;
        }
        let slot = &mut self.slab[key.index as usize];
        let payload = slot.payload.take();
        debug_assert!(payload.is_some(), "a pending key's slot holds a payload");
        let in_heap = slot.time <= self.horizon;
        self.release(key.index);
        self.len -= 1;
        if in_heap {
            self.heap_stale += 1;
            debug_assert!(self.heap_stale <= self.heap.len());
            if self.heap_stale > self.heap.len() / 2
                && self.heap.len() > self.tuning.heap_rebuild_min
            {
                self.purge_heap();
            }
        } else {
            debug_assert!(self.wheel.live > 0);
            self.wheel.live -= 1;
            self.wheel.stale += 1;
            if self.wheel.stale > self.wheel.live + self.tuning.wheel_slack {
                self.compact_wheel();
            }
        }
        payload
    }

    /// Whether `key`'s event is still pending (neither fired nor cancelled).
    #[inline]
    pub fn is_pending(&self, key: EventKey) -> bool {
        // A freed slot's generation was bumped past every key issued for it, so equality alone
        // means "pending".
        self.gens.get(key.index as usize) == Some(&key.generation)
    }

    /// Removes and returns the pending event with the smallest `(time, seq)`.
    #[inline]
    pub fn pop(&mut self) -> Option<(u64, T)> {
        loop {
            if let Some(r) = self.heap.pop() {
                if r.is_live(&self.gens) {
                    debug_assert!(r.time >= self.now, "time went backwards");
                    debug_assert!(r.time <= self.horizon);
                    self.now = r.time;
                    self.len -= 1;
                    let payload = self.slab[r.index as usize].payload.take();
                    self.release(r.index);
                    return Some((r.time, payload.expect("a live reference's slot is full")));
                }
                self.heap_stale -= 1;
            } else if self.len == 0 {
                return None;
            } else {
                self.advance();
            }
        }
    }

    /// Pops the next event if its time is at most `bound`; otherwise leaves it in place. One
    /// traversal instead of [`peek_time`](Self::peek_time) then [`pop`](Self::pop): the run loop
    /// calls this once per event.
    #[inline]
    pub fn pop_until(&mut self, bound: u64) -> Option<(u64, T)> {
        let time = self.peek_time()?;
        if time > bound {
            return None;
        }
        let r = self
            .heap
            .pop()
            .expect("peek_time left a live reference on top");
        debug_assert!(r.is_live(&self.gens), "peek_time discards stale references");
        debug_assert!(r.time >= self.now, "time went backwards");
        self.now = r.time;
        self.len -= 1;
        let payload = self.slab[r.index as usize].payload.take();
        self.release(r.index);
        Some((r.time, payload.expect("a live reference's slot is full")))
    }

    /// The time of the event [`pop`](Self::pop) would return next. Takes `&mut self` because
    /// finding it may discard stale references and advance the wheel.
    #[inline]
    pub fn peek_time(&mut self) -> Option<u64> {
        loop {
            match self.heap.peek() {
                Some(r) if r.is_live(&self.gens) => return Some(r.time),
                Some(_) => {
                    self.heap.pop();
                    self.heap_stale -= 1;
                }
                None if self.len == 0 => return None,
                None => self.advance(),
            }
        }
    }

    /// The payload of the next event to pop, with its time (the engine looks one event ahead to
    /// warm the cache for it).
    #[inline]
    pub fn peek(&mut self) -> Option<(u64, &T)> {
        let time = self.peek_time()?;
        let r = self
            .heap
            .peek()
            .expect("peek_time left a live reference on top");
        let payload = self.slab[r.index as usize].payload.as_ref();
        Some((time, payload.expect("a live reference's slot is full")))
    }

    /// A guess at the payload of the event after the next one, for cache warming only: it may
    /// be a cancelled event's, or miss an event still in the wheel. Never use it for anything
    /// that affects results.
    #[inline]
    pub fn peek_after_next(&self) -> Option<&T> {
        let r = self.heap.peek_second()?;
        self.slab.get(r.index as usize)?.payload.as_ref()
    }

    /// Pending (neither fired nor cancelled) events.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Drops the heap's stale references (they are over half of it).
    #[cold]
    #[inline(never)]
    fn purge_heap(&mut self) {
        let gens = &self.gens;
        self.heap.retain(|r| r.is_live(gens));
        debug_assert_eq!(self.heap.len(), self.len - self.wheel.live);
        self.heap_stale = 0;
    }

    /// Leaves pure-heap mode: puts the wheel at the current tick and moves every heap reference
    /// past that tick into it, dropping stale ones on the way.
    #[cold]
    #[inline(never)]
    fn spill(&mut self) {
        debug_assert_eq!(self.horizon, NO_HORIZON);
        debug_assert!(self.wheel.is_empty() && self.wheel.live == 0 && self.wheel.stale == 0);
        if self.wheel.slots.is_empty() {
            self.wheel.slots.resize_with(LEVELS * SLOTS, Vec::new);
        }
        // Every pending event is at or after `now`, so its tick is at or after this one.
        self.wheel.cur = self.now >> TICK_SHIFT;
        self.horizon = (self.wheel.cur << TICK_SHIFT) | TICK_MASK;
        let horizon = self.horizon;
        let mut refs = mem::take(&mut self.heap).into_vec();
        let (gens, wheel) = (&self.gens, &mut self.wheel);
        refs.retain(|r| {
            if !r.is_live(gens) {
                false
            } else if r.time <= horizon {
                true
            } else {
                wheel.file(*r);
                wheel.live += 1;
                false
            }
        });
        self.heap = NearHeap::from_vec(refs);
        self.heap_stale = 0;
        debug_assert_eq!(self.heap.len() + self.wheel.live, self.len);
    }

    /// Called when the heap is empty but events are pending (so all of them are in the wheel):
    /// moves the wheel forward until some event lands in the heap, or folds the wheel back into
    /// the heap if few events are left.
    #[cold]
    #[inline(never)]
    fn advance(&mut self) {
        debug_assert!(self.heap.is_empty() && self.heap_stale == 0);
        debug_assert!(self.len > 0 && self.wheel.live == self.len);
        debug_assert_ne!(
            self.horizon, NO_HORIZON,
            "pure-heap mode with an empty heap"
        );
        if self.len < self.tuning.collapse_below {
            self.collapse();
            return;
        }
        while self.heap.is_empty() {
            // `wheel.live > 0`, so some level is occupied.
            let level = self
                .wheel
                .occupied
                .iter()
                .position(|&o| o != 0)
                .expect("events pending but the wheel is empty");
            let slot = self.wheel.occupied[level].trailing_zeros() as usize;
            self.wheel.occupied[level] &= !(1 << slot);
            let mut bucket = mem::take(&mut self.wheel.slots[level * SLOTS + slot]);
            debug_assert!(!bucket.is_empty());
            // Jump to the bucket's earliest tick rather than to the slot's first tick (as tokio
            // does): every other reference is in a later slot of this level or in a higher level,
            // whose placement only depends on the groups of `cur` above this level, which the
            // jump keeps. So the wheel never stops at an empty tick, and a sparse wheel hands
            // the heap an event at each advance instead of cascading level by level first.
            let cur = if level == 0 {
                (self.wheel.cur & !(SLOTS as u64 - 1)) | slot as u64
            } else {
                bucket
                    .iter()
                    .map(|r| r.time >> TICK_SHIFT)
                    .min()
                    .expect("occupied slots are not empty")
            };
            debug_assert!(cur > self.wheel.cur, "the wheel only moves forward");
            debug_assert_eq!(Wheel::place(self.wheel.cur, cur), (level, slot));
            self.wheel.cur = cur;
            self.horizon = (cur << TICK_SHIFT) | TICK_MASK;
            for r in bucket.drain(..) {
                if r.time > self.horizon {
                    // Re-filed strictly lower: `r` now agrees with `cur` down to `level`. Live or
                    // not, it stays in the wheel, so the counts hold without reading `gens`: a
                    // cache miss per entry per level saved (stale ones go at the next compaction
                    // or when they reach the heap).
                    debug_assert!(Wheel::place(cur, r.time >> TICK_SHIFT).0 < level);
                    self.wheel.file(r);
                } else if r.is_live(&self.gens) {
                    // Touch the slot now: this event pops within the millisecond, and loading its
                    // payload line here overlaps with the rest of the drain instead of stalling
                    // that pop (2x on `timers`). `black_box` keeps the load from being optimised
                    // away: a safe stand-in for a prefetch intrinsic, which would need `unsafe`.
                    black_box(self.slab[r.index as usize].time);
                    self.heap.push(r);
                    self.wheel.live -= 1;
                } else {
                    self.wheel.stale -= 1;
                }
            }
            // A small buffer is kept for the slot's next lap, which saves the level-0 slots (the
            // busiest) an allocation per tick. A large one is freed: a slot comes round again only
            // after 64^(level+1) ticks, and keeping every big buffer would hold the wheel's peak
            // size in every slot of a level (hundreds of MB on `timers`).
            if bucket.capacity() <= KEEP_BUCKET_CAP {
                self.wheel.slots[level * SLOTS + slot] = bucket;
            }
        }
        // Moving live references to the heap can leave the stale ones in the majority; purge
        // here too, so `wheel.stale <= wheel.live + wheel_slack` holds at all times.
        if self.wheel.stale > self.wheel.live + self.tuning.wheel_slack {
            self.compact_wheel();
        }
    }

    /// Returns to pure-heap mode: moves every live wheel reference into the heap and frees the
    /// wheel's buffers (it holds few events now, so their capacity would be mostly waste).
    #[cold]
    #[inline(never)]
    fn collapse(&mut self) {
        let mut refs = mem::take(&mut self.heap).into_vec();
        refs.reserve(self.wheel.live);
        for bucket in &mut self.wheel.slots {
            let gens = &self.gens;
            refs.extend(bucket.drain(..).filter(|r| r.is_live(gens)));
            *bucket = Vec::new();
        }
        self.wheel.occupied = [0; LEVELS];
        self.wheel.live = 0;
        self.wheel.stale = 0;
        self.horizon = NO_HORIZON;
        // Heap references that were stale are dropped too.
        let gens = &self.gens;
        refs.retain(|r| r.is_live(gens));
        self.heap = NearHeap::from_vec(refs);
        self.heap_stale = 0;
        debug_assert_eq!(self.heap.len(), self.len);
    }

    /// Drops every stale wheel reference (they outnumber the live ones).
    #[cold]
    #[inline(never)]
    fn compact_wheel(&mut self) {
        let gens = &self.gens;
        for level in 0..LEVELS {
            let mut occupied = self.wheel.occupied[level];
            while occupied != 0 {
                let slot = occupied.trailing_zeros() as usize;
                occupied &= occupied - 1;
                let bucket = &mut self.wheel.slots[level * SLOTS + slot];
                bucket.retain(|r| r.is_live(gens));
                if bucket.is_empty() {
                    self.wheel.occupied[level] &= !(1 << slot);
                }
                // A bucket that lost most of its references gives the memory back, so storage
                // follows the live count rather than the peak.
                if bucket.capacity() > 4 * bucket.len() + 64 {
                    bucket.shrink_to(2 * bucket.len());
                }
            }
        }
        self.wheel.stale = 0;
    }
}

#[cfg(test)]
impl<T> EventQueue<T> {
    /// Checks every structural invariant; the tests call it after each operation.
    fn check(&self) {
        let t = &self.tuning;
        assert_eq!(self.slab.len(), self.gens.len());
        let pending = self.slab.iter().filter(|s| s.payload.is_some()).count();
        assert_eq!(pending, self.len, "len counts the full slots");
        assert_eq!(self.is_empty(), self.len == 0);

        // The free list: distinct, empty, never a retired slot, and every empty unretired slot.
        let mut on_free = vec![false; self.slab.len()];
        for &i in &self.free {
            let i = i as usize;
            assert!(!on_free[i], "slot {i} is on the free list twice");
            on_free[i] = true;
            assert!(self.slab[i].payload.is_none());
            assert_ne!(self.gens[i], u32::MAX, "a retired slot is never reused");
        }
        for (i, s) in self.slab.iter().enumerate() {
            assert_eq!(
                s.payload.is_none() && self.gens[i] != u32::MAX,
                on_free[i],
                "slot {i}: empty iff free (or retired)"
            );
        }

        // Every pending event is referenced exactly once, by a reference that agrees with the
        // slab; stale references are counted where they lie.
        let mut refs = vec![0_usize; self.slab.len()];
        let mut visit = |r: &Ref| -> bool {
            assert!(r.seq < self.next_seq);
            let live = r.is_live(&self.gens);
            if live {
                assert_eq!(r.time, self.slab[r.index as usize].time);
                refs[r.index as usize] += 1;
            }
            live
        };
        assert!(self.heap.is_heap(), "heap order");
        let mut heap_stale = 0;
        for r in self.heap.iter() {
            assert!(r.time <= self.horizon, "heap reference beyond the horizon");
            heap_stale += usize::from(!visit(r));
        }
        assert_eq!(heap_stale, self.heap_stale);

        let w = &self.wheel;
        if self.horizon == NO_HORIZON {
            assert!(
                w.is_empty() && w.live == 0 && w.stale == 0,
                "pure-heap mode"
            );
            assert!(w.slots.iter().all(Vec::is_empty));
        } else {
            assert_eq!(self.horizon, (w.cur << TICK_SHIFT) | TICK_MASK);
            assert!(
                w.stale <= w.live + t.wheel_slack,
                "wheel garbage is bounded"
            );
            let (mut live, mut stale) = (0, 0);
            for level in 0..LEVELS {
                for slot in 0..SLOTS {
                    let bucket = &w.slots[level * SLOTS + slot];
                    assert_eq!(bucket.is_empty(), w.occupied[level] & (1 << slot) == 0);
                    for r in bucket {
                        assert!(r.time > self.horizon, "wheel reference inside the horizon");
                        assert_eq!(Wheel::place(w.cur, r.time >> TICK_SHIFT), (level, slot));
                        if visit(r) {
                            live += 1;
                        } else {
                            stale += 1;
                        }
                    }
                }
            }
            assert_eq!((live, stale), (w.live, w.stale));
        }
        for (i, s) in self.slab.iter().enumerate() {
            assert_eq!(
                refs[i],
                usize::from(s.payload.is_some()),
                "slot {i} references"
            );
        }
    }

    /// References held by the heap and the wheel, stale or not, plus slab slots: what the
    /// queue's memory is proportional to.
    fn storage(&self) -> usize {
        let wheel: usize = self.wheel.slots.iter().map(Vec::len).sum();
        self.heap.len() + wheel + self.slab.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::rc::Rc;

    const MS: u64 = 1 << TICK_SHIFT;

    /// Thresholds small enough that a few operations spill, collapse and purge.
    const TINY: Tuning = Tuning {
        spill_at: 4,
        collapse_below: 2,
        heap_rebuild_min: 2,
        wheel_slack: 0,
    };
    const SMALL: Tuning = Tuning {
        spill_at: 24,
        collapse_below: 6,
        heap_rebuild_min: 8,
        wheel_slack: 5,
    };

    #[derive(Clone, Debug)]
    enum Op {
        /// Push at a time derived from `(kind, raw)` and the current time.
        Push(u8, u64),
        /// Cancel one of the keys issued so far (pending, fired or cancelled).
        Cancel(usize),
        Pop,
        Peek,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0_u8..8, any::<u64>()).prop_map(|(k, raw)| Op::Push(k, raw)),
            2 => any::<usize>().prop_map(Op::Cancel),
            4 => Just(Op::Pop),
            1 => Just(Op::Peek),
        ]
    }

    /// A time at or after `now`: duplicates, same tick, near, far, tick edges, near `u64::MAX`.
    fn time_for(kind: u8, raw: u64, now: u64, used: &[u64]) -> u64 {
        let t = match kind {
            0 => {
                let later: Vec<u64> = used.iter().copied().filter(|&t| t >= now).collect();
                if later.is_empty() {
                    now
                } else {
                    later[raw as usize % later.len()]
                }
            }
            1 => now,
            2 => now.saturating_add(raw % MS),
            3 => now.saturating_add(raw % (1 << 28)),
            4 => now.saturating_add(raw % (1 << 40)),
            5 => now.saturating_add(raw),
            6 => u64::MAX - raw % (4 * MS),
            // The last or first nanosecond of a tick a little ahead.
            _ => {
                let tick = (now >> TICK_SHIFT).saturating_add(raw % 130);
                tick.saturating_mul(MS).saturating_sub(raw >> 63)
            }
        };
        t.max(now)
    }

    /// Runs `ops` on a queue and on a `BTreeMap` model, comparing every answer.
    fn run_against_model(tuning: Tuning, ops: &[Op]) {
        let mut q = EventQueue::with_tuning(0, tuning);
        let mut model: BTreeMap<(u64, u64), u64> = BTreeMap::new();
        let mut keys: Vec<(EventKey, u64, u64)> = Vec::new();
        let mut used: Vec<u64> = Vec::new();
        let (mut now, mut seq) = (0_u64, 0_u64);
        for op in ops {
            match *op {
                Op::Push(kind, raw) => {
                    let time = time_for(kind, raw, now, &used);
                    let key = q.push(time, seq);
                    assert!(q.is_pending(key));
                    model.insert((time, seq), seq);
                    keys.push((key, time, seq));
                    used.push(time);
                    seq += 1;
                }
                Op::Cancel(i) if !keys.is_empty() => {
                    let (key, time, s) = keys[i % keys.len()];
                    let expected = model.remove(&(time, s));
                    assert_eq!(q.cancel(key), expected);
                    assert!(!q.is_pending(key));
                    assert_eq!(q.cancel(key), None, "a second cancel finds nothing");
                }
                Op::Cancel(_) => {}
                Op::Pop => {
                    let expected = model.pop_first().map(|((t, _), p)| (t, p));
                    assert_eq!(q.pop(), expected);
                    if let Some((t, _)) = expected {
                        now = t;
                    }
                }
                Op::Peek => {
                    assert_eq!(q.peek_time(), model.first_key_value().map(|(k, _)| k.0));
                }
            }
            assert_eq!(q.len(), model.len());
            q.check();
        }
        // Drain: the rest comes out in model order too.
        while let Some(expected) = model.pop_first() {
            assert_eq!(q.pop(), Some((expected.0.0, expected.1)));
            q.check();
        }
        assert_eq!(q.pop(), None);
        assert_eq!(q.peek_time(), None);
        assert!(q.is_empty());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn matches_model(
            tuning in prop_oneof![Just(TINY), Just(SMALL), Just(TUNING)],
            ops in prop::collection::vec(op(), 0..300),
        ) {
            run_against_model(tuning, &ops);
        }
    }

    /// Pushes-heavy runs, so that the wheel holds many events on several levels at once.
    #[test]
    fn matches_model_on_long_runs() {
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            // xorshift64*: enough to mix the operation stream, and deterministic.
            rng ^= rng >> 12;
            rng ^= rng << 25;
            rng ^= rng >> 27;
            rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
        };
        for tuning in [TINY, SMALL] {
            let ops: Vec<Op> = (0..20_000)
                .map(|_| match next() % 10 {
                    0..=4 => Op::Push((next() % 8) as u8, next()),
                    5 | 6 => Op::Cancel(next() as usize),
                    _ => Op::Pop,
                })
                .collect();
            run_against_model(tuning, &ops);
        }
    }

    /// An event filed far up the wheel and cascaded down still precedes a later push with the
    /// same time, wherever that push lands.
    #[test]
    fn fifo_among_equal_times_across_heap_and_wheel() {
        let mut q = EventQueue::with_tuning(0, TINY);
        let far = 3 * (1 << 40) + 12_345; // a few levels up from tick 0
        let mut order = Vec::new();
        // Fill the heap past `spill_at` so the queue is in wheel mode.
        for i in 0..6 {
            q.push(i, 1000 + i);
        }
        assert_ne!(q.horizon, NO_HORIZON, "spilled");
        order.push(q.push(far, 0));
        q.check();
        // Walk the clock forward; the far event is re-filed lower at each advance.
        let mut t = 0;
        for step in 1..=4 {
            while q.peek_time().is_some_and(|pt| pt < t) {
                q.pop();
            }
            t = far - (far >> (10 * step)); // approach `far`
            q.push(t, 2000 + step);
            order.push(q.push(far, step));
            q.check();
        }
        // Advance until `far`'s tick is the current one: now the heap takes pushes at `far`.
        while q.peek_time() != Some(far) {
            q.pop();
        }
        assert!(far <= q.horizon);
        order.push(q.push(far, 5));
        order.push(q.push(far, 6));
        q.check();
        let popped: Vec<u64> = std::iter::from_fn(|| q.pop())
            .map(|(t, p)| {
                assert_eq!(t, far);
                p
            })
            .collect();
        assert_eq!(popped, vec![0, 1, 2, 3, 4, 5, 6]);
        assert!(order.iter().all(|&k| !q.is_pending(k)));
    }

    #[test]
    fn equal_times_near_u64_max_keep_insertion_order() {
        for tuning in [TINY, TUNING] {
            let mut q = EventQueue::with_tuning(0, tuning);
            for i in 0..40 {
                q.push(u64::MAX - (i % 3), i);
                q.push(u64::MAX, 100 + i);
                q.check();
            }
            let mut popped = Vec::new();
            while let Some(e) = q.pop() {
                popped.push(e);
                q.check();
            }
            let mut expected: Vec<(u64, u64)> = (0..40)
                .map(|i| (u64::MAX - (i % 3), i))
                .chain((0..40).map(|i| (u64::MAX, 100 + i)))
                .collect();
            // Among equal times, the order of the pushes, which alternate between the two series.
            let pos = |p: u64| if p >= 100 { 2 * (p - 100) + 1 } else { 2 * p };
            expected.sort_by_key(|&(t, p)| (t, pos(p)));
            assert_eq!(popped, expected);
        }
    }

    #[test]
    fn cancelled_events_never_pop() {
        for tuning in [TINY, SMALL, TUNING] {
            let mut q = EventQueue::with_tuning(0, tuning);
            let keys: Vec<EventKey> = (0..100).map(|i| q.push(i * 7 * MS / 3, i)).collect();
            for (i, &k) in keys.iter().enumerate() {
                if i % 3 != 0 {
                    assert_eq!(q.cancel(k), Some(i as u64));
                    assert_eq!(q.cancel(k), None);
                }
                q.check();
            }
            let popped: Vec<u64> = std::iter::from_fn(|| q.pop()).map(|(_, p)| p).collect();
            assert_eq!(popped, (0..100).step_by(3).collect::<Vec<u64>>());
            for k in keys {
                assert!(!q.is_pending(k));
                assert_eq!(q.cancel(k), None, "cancel after pop");
            }
        }
    }

    #[test]
    fn reused_slot_does_not_resurrect_an_old_key() {
        let mut q = EventQueue::new();
        let old = q.push(5, "old");
        assert_eq!(q.pop(), Some((5, "old")));
        let new = q.push(6, "new");
        assert_eq!(new.index, old.index, "the freed slot is reused");
        assert_ne!(new, old);
        assert!(!q.is_pending(old));
        assert_eq!(q.cancel(old), None);
        assert!(q.is_pending(new));
        assert_eq!(q.pop(), Some((6, "new")));

        // Same through a cancel rather than a pop.
        let a = q.push(7, "a");
        assert_eq!(q.cancel(a), Some("a"));
        let b = q.push(7, "b");
        assert_eq!(b.index, a.index);
        assert_eq!(q.cancel(a), None);
        assert_eq!(q.pop(), Some((7, "b")));
        q.check();
    }

    #[test]
    fn a_slot_is_retired_before_its_generation_wraps() {
        let mut q = EventQueue::new();
        let k = q.push(0, 0);
        assert_eq!(q.pop(), Some((0, 0)));
        // Pretend the slot has already been reused almost 2^32 times.
        q.gens[k.index as usize] = u32::MAX - 2;
        let k = q.push(1, 1);
        assert_eq!(k.generation, u32::MAX - 2);
        q.check();
        assert_eq!(q.pop(), Some((1, 1)));
        let k2 = q.push(2, 2);
        assert_eq!(
            k2,
            EventKey {
                index: k.index,
                generation: u32::MAX - 1
            }
        );
        assert_eq!(q.pop(), Some((2, 2)));
        // Generation `u32::MAX` is never handed out: the slot is retired.
        let k3 = q.push(3, 3);
        assert_ne!(k3.index, k.index);
        assert!(!q.is_pending(k) && !q.is_pending(k2));
        q.check();
    }

    /// Payloads are moved out exactly once: by `pop`, by `cancel`, or by dropping the queue.
    #[test]
    fn payloads_are_neither_leaked_nor_duplicated() {
        let token = Rc::new(());
        {
            let mut q = EventQueue::with_tuning(0, TINY);
            let mut keys = Vec::new();
            for i in 0..200_u64 {
                keys.push(q.push(i * i * MS, Rc::clone(&token)));
                if i % 4 == 1 {
                    drop(q.cancel(keys[(i / 2) as usize]));
                }
                if i % 5 == 0 {
                    drop(q.pop());
                }
            }
            q.check();
            assert_eq!(Rc::strong_count(&token), 1 + q.len());
        }
        assert_eq!(Rc::strong_count(&token), 1);
    }

    /// The `timers` workload: each actor's heartbeat re-arms its session timeout. Stale
    /// references must not pile up: storage stays within a constant factor of the live events.
    fn timers_stay_bounded(tuning: Tuning, actors: u64, rounds: u64) {
        const HEARTBEAT: u64 = 3_000_000_000;
        const TIMEOUT: u64 = 45_000_000_000;
        let mut q = EventQueue::with_tuning(0, tuning);
        let mut timeouts = Vec::new();
        for a in 0..actors {
            let phase = a * HEARTBEAT / actors;
            q.push(phase, a);
            timeouts.push(q.push(phase + TIMEOUT, actors + a));
        }
        let live = 2 * actors as usize;
        let mut worst = 0;
        for _ in 0..rounds * actors {
            let (t, a) = q.pop().expect("heartbeats never stop");
            assert!(a < actors, "no session ever times out");
            let a = a as usize;
            assert!(q.cancel(timeouts[a]).is_some());
            timeouts[a] = q.push(t + TIMEOUT, actors + a as u64);
            q.push(t + HEARTBEAT, a as u64);
            assert_eq!(q.len(), live);
            worst = worst.max(q.storage());
        }
        q.check();
        // Slab: one slot per live event. Heap and wheel: at most about two references per live
        // event each, plus the purge thresholds.
        let bound = 5 * live + tuning.heap_rebuild_min + tuning.wheel_slack + 1;
        assert!(
            worst <= bound,
            "storage {worst} > {bound} for {live} live events"
        );
        // A lazily-deleting heap would hold ~ (TIMEOUT / HEARTBEAT) references per actor.
        assert!(worst < 8 * live);
    }

    #[test]
    fn timers_storage_is_bounded_in_heap_mode() {
        timers_stay_bounded(TUNING, 1_000, 40);
    }

    #[test]
    fn timers_storage_is_bounded_in_wheel_mode() {
        timers_stay_bounded(SMALL, 1_000, 40);
        timers_stay_bounded(TUNING, 6_000, 20);
    }

    #[test]
    fn collapses_back_to_a_heap_when_the_queue_shrinks() {
        let mut q = EventQueue::with_tuning(0, SMALL);
        for i in 0..100 {
            q.push(i * 10 * MS, i);
        }
        assert_ne!(q.horizon, NO_HORIZON);
        while q.len() > 2 {
            q.pop();
            q.check();
        }
        // The next advance folds the wheel back.
        q.pop();
        q.check();
        assert_eq!(q.horizon, NO_HORIZON);
        assert!(
            q.wheel.slots.iter().all(|b| b.capacity() == 0),
            "buffers freed"
        );
        assert_eq!(q.pop(), Some((99 * 10 * MS, 99)));
        assert_eq!(q.pop(), None);
    }
}
