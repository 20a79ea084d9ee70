//! Logical clocks for ordering writes without trusting wall clocks (L3): a Lamport clock and a
//! hybrid logical clock (HLC).
//!
//! Last-writer-wins by the writer's wall clock drops a newer write whenever the older writer's
//! clock runs ahead (Cassandra's client-side timestamps, DynamoDB global tables, any CRDT LWW
//! register stamped with `now()`). A Lamport clock (Lamport 1978) orders causally related
//! events but has no relation to real time. An HLC (Kulkarni, Demirbas, Madappa, Avva and
//! Leone, "Logical Physical Clocks and Consistent Snapshots in Globally Distributed
//! Databases", 2014) keeps a Lamport-style pair `(l, c)` whose `l` is the largest physical
//! time the node has heard of, so that it orders causal chains like a Lamport clock and stays
//! within the clock-sync error of physical time. The update rules are the paper's:
//!
//! - send or local event: `l' = l; l = max(l', pt); c = if l == l' { c + 1 } else { 0 }`;
//! - receive of `(l_m, c_m)`: `l' = l; l = max(l', l_m, pt)`, and `c` is `max(c, c_m) + 1` if
//!   `l == l' == l_m`, `c + 1` if only `l == l'`, `c_m + 1` if only `l == l_m`, else 0.
//!
//! Both clocks are pure values: the caller passes the physical time `pt` it read off its own
//! (possibly skewed) clock, `ctx.local_clock()`.

use serde::Serialize;

use crate::engine::time::SimTime;

/// A Lamport clock: a counter that every local event increments and every receive moves past
/// the sender's value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lamport {
    time: u64,
}

impl Lamport {
    pub fn new() -> Self {
        Lamport::default()
    }

    /// The current value (the last stamp handed out).
    pub fn time(&self) -> u64 {
        self.time
    }

    /// A send or local event: the next value.
    pub fn tick(&mut self) -> u64 {
        self.time = self.time.saturating_add(1);
        self.time
    }

    /// A receive of a message stamped `m`: past both the local value and `m`.
    pub fn observe(&mut self, m: u64) -> u64 {
        self.time = self.time.max(m).saturating_add(1);
        self.time
    }
}

/// An HLC timestamp, ordered lexicographically by `(l, c)` as in the paper.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct HlcStamp {
    /// The largest physical time (nanoseconds of the local clocks) heard of.
    pub l: u64,
    /// Events since `l` last changed along the causal chain.
    pub c: u32,
}

/// A hybrid logical clock (Kulkarni et al. 2014, Figure 5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hlc {
    last: HlcStamp,
}

impl Hlc {
    pub fn new() -> Self {
        Hlc::default()
    }

    /// The last stamp handed out.
    pub fn last(&self) -> HlcStamp {
        self.last
    }

    /// A send or local event at physical time `pt`.
    pub fn now(&mut self, pt: SimTime) -> HlcStamp {
        let old = self.last.l;
        let l = old.max(pt.as_nanos());
        // `c` saturates rather than wraps: a wrap would reorder events. The paper's bound
        // (c <= N * (eps + 1) in clock ticks) keeps it far below u32::MAX with nanosecond
        // ticks; saturation only matters for a clock that never advances.
        let c = if l == old {
            self.last.c.saturating_add(1)
        } else {
            0
        };
        self.last = HlcStamp { l, c };
        self.last
    }

    /// A receive of a message stamped `m` at physical time `pt`.
    pub fn observe(&mut self, pt: SimTime, m: HlcStamp) -> HlcStamp {
        let old = self.last;
        let l = old.l.max(m.l).max(pt.as_nanos());
        let c = if l == old.l && l == m.l {
            old.c.max(m.c).saturating_add(1)
        } else if l == old.l {
            old.c.saturating_add(1)
        } else if l == m.l {
            m.c.saturating_add(1)
        } else {
            0
        };
        self.last = HlcStamp { l, c };
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::rng::stream;
    use rand::RngExt;

    fn t(n: u64) -> SimTime {
        SimTime::from_nanos(n)
    }

    #[test]
    fn lamport_orders_a_message_chain() {
        let mut a = Lamport::new();
        let mut b = Lamport::new();
        for _ in 0..5 {
            b.tick();
        }
        let sent = a.tick();
        assert_eq!(sent, 1);
        // b is ahead: the receive moves past its own value, not to the sender's.
        assert_eq!(b.observe(sent), 6);
        let back = b.tick();
        assert_eq!(a.observe(back), 8);
    }

    #[test]
    fn hlc_local_events_follow_physical_time_and_count_when_it_stands_still() {
        let mut h = Hlc::new();
        assert_eq!(h.now(t(100)), HlcStamp { l: 100, c: 0 });
        assert_eq!(h.now(t(100)), HlcStamp { l: 100, c: 1 });
        // The physical clock stepped back: l holds, c counts.
        assert_eq!(h.now(t(50)), HlcStamp { l: 100, c: 2 });
        assert_eq!(h.now(t(101)), HlcStamp { l: 101, c: 0 });
    }

    #[test]
    fn hlc_receive_takes_each_branch_of_the_paper() {
        // l == l' == l_m: max(c, c_m) + 1.
        let mut h = Hlc {
            last: HlcStamp { l: 10, c: 3 },
        };
        assert_eq!(
            h.observe(t(5), HlcStamp { l: 10, c: 7 }),
            HlcStamp { l: 10, c: 8 }
        );
        // only l == l': c + 1.
        let mut h = Hlc {
            last: HlcStamp { l: 10, c: 3 },
        };
        assert_eq!(
            h.observe(t(5), HlcStamp { l: 9, c: 7 }),
            HlcStamp { l: 10, c: 4 }
        );
        // only l == l_m: c_m + 1 (the sender's clock is ahead of ours).
        let mut h = Hlc {
            last: HlcStamp { l: 10, c: 3 },
        };
        assert_eq!(
            h.observe(t(5), HlcStamp { l: 20, c: 7 }),
            HlcStamp { l: 20, c: 8 }
        );
        // physical time is ahead of both: c = 0.
        let mut h = Hlc {
            last: HlcStamp { l: 10, c: 3 },
        };
        assert_eq!(
            h.observe(t(30), HlcStamp { l: 20, c: 7 }),
            HlcStamp { l: 30, c: 0 }
        );
    }

    /// Random runs of `n` nodes whose clocks are offset by up to `eps` ticks and advance by at
    /// least one tick between a node's events (the paper's assumption for its bound on `c`),
    /// exchanging messages at random: the paper's Theorems hold at every event.
    #[test]
    fn hlc_keeps_the_papers_properties_on_random_runs() {
        for seed in 0..50 {
            let mut rng = stream(seed, "hlc");
            let n = 4usize;
            let eps: u64 = 20;
            let offsets: Vec<u64> = (0..n).map(|_| rng.random_range(0..=eps)).collect();
            let mut clocks = vec![Hlc::new(); n];
            // The physical clock of node j at true time `now` is now + offset[j].
            let mut now: u64 = 1000;
            // Messages in flight: (to, stamp, the sender's event stamp for causality).
            let mut flight: Vec<(usize, HlcStamp)> = Vec::new();
            for _ in 0..2000 {
                now += rng.random_range(1..=3);
                let j = rng.random_range(0..n);
                let pt = now + offsets[j];
                let before = clocks[j].last();
                let stamp = if !flight.is_empty() && rng.random_bool(0.5) {
                    let k = rng.random_range(0..flight.len());
                    let (to, m) = flight.swap_remove(k);
                    let s = clocks[to].observe(t(now + offsets[to]), m);
                    // Causality: a receive is after its send, and after the receiver's past.
                    assert!(s > m, "seed {seed}: receive {s:?} not after send {m:?}");
                    let pt_to = now + offsets[to];
                    assert!(s.l >= pt_to, "seed {seed}: l {} < pt {pt_to}", s.l);
                    assert!(s.l - pt_to <= eps, "seed {seed}: l drifted past eps");
                    assert!(
                        u64::from(s.c) <= n as u64 * (eps + 1),
                        "seed {seed}: c {} over the bound",
                        s.c
                    );
                    continue;
                } else {
                    let s = clocks[j].now(t(pt));
                    let to = rng.random_range(0..n);
                    flight.push((to, s));
                    s
                };
                assert!(stamp > before, "seed {seed}: local events are monotonic");
                // l >= pt, and l stays within the clock-sync error eps of pt.
                assert!(stamp.l >= pt, "seed {seed}: l {} < pt {pt}", stamp.l);
                assert!(stamp.l - pt <= eps, "seed {seed}: l - pt over eps");
                assert!(
                    u64::from(stamp.c) <= n as u64 * (eps + 1),
                    "seed {seed}: c {} over the bound",
                    stamp.c
                );
            }
        }
    }
}
