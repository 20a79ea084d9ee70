//! A consumer group's ledger: what an all-seeing observer knows about the group that no member
//! does — which offsets have been processed and how often, which partitions nobody is
//! consuming at this instant, and which records were skipped (the group moved past them and
//! nobody processed them). The metrics the catalogue asks for (records processed twice,
//! records lost, the fraction of time each partition is stopped) are facts about the whole
//! group, so the members of one group share one ledger and report to it.
//!
//! It is instrumentation: members write to it and never read it, so it cannot change what the
//! simulation does (the trace of a run with and without it is the same). It lives outside the
//! members, in an `Rc<RefCell<..>>` the group's component hands to each, so a crash does not
//! erase what it saw; a member crashed from outside reports, in [`Actor::on_crash`], that it
//! consumes nothing any more.
//!
//! [`Actor::on_crash`]: crate::actor::Actor::on_crash

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use crate::metrics::{CounterId, GaugeId, Metrics};
use crate::model::log::group::Partition;

/// A ledger shared by the members of one group.
pub type SharedLedger = Rc<RefCell<Ledger>>;

#[derive(Clone, Debug)]
struct LedgerMetrics {
    processed: CounterId,
    twice: CounterId,
    skipped: GaugeId,
    stopped_fraction: GaugeId,
    partitions_stopped: GaugeId,
    partitions_shared: GaugeId,
    /// By partition.
    stopped: Vec<GaugeId>,
}

/// See the module docs.
///
/// Metrics (owner = the group component's name): `records_processed_total` (every successful
/// processing, repeats included), `processed_twice_total` (processings of a record already
/// processed before), `records_skipped` gauge (records below an offset some member resumed a
/// partition from that no member has processed: lost, unless a late batch still processes
/// them), `stopped.<topic>-<p>` gauges (1 while no member is consuming the partition),
/// `partitions_stopped` and `stopped_fraction` (the share of partitions stopped; its mean over
/// a window is the fraction of partition-time nothing was consumed), `partitions_shared` gauge
/// (partitions two members or more consume at this instant: an assignment that gave one
/// partition twice, or a member still consuming what the group gave another).
#[derive(Clone, Debug)]
pub struct Ledger {
    owner: String,
    topic: String,
    /// How many times each offset was processed, by partition (saturating at 255).
    counts: Vec<Vec<u8>>,
    /// Offsets below this were judged for skipping, by partition.
    judged: Vec<u64>,
    skipped: u64,
    /// Which member consumes which partitions now.
    consuming: BTreeMap<String, Vec<Partition>>,
    /// How many members consume each partition now.
    consumers: Vec<u32>,
    metrics: Option<LedgerMetrics>,
}

impl Ledger {
    /// A ledger for the group whose component is `owner`, consuming `partitions` partitions of
    /// `topic`.
    pub fn new(owner: &str, topic: &str, partitions: u32) -> Ledger {
        let n = partitions as usize;
        Ledger {
            owner: owner.to_string(),
            topic: topic.to_string(),
            counts: vec![Vec::new(); n],
            judged: vec![0; n],
            skipped: 0,
            consuming: BTreeMap::new(),
            consumers: vec![0; n],
            metrics: None,
        }
    }

    pub fn shared(owner: &str, topic: &str, partitions: u32) -> SharedLedger {
        Rc::new(RefCell::new(Ledger::new(owner, topic, partitions)))
    }

    /// Registers the metrics (once; every member calls it at start).
    pub fn register(&mut self, metrics: &mut Metrics) {
        if self.metrics.is_some() {
            return;
        }
        let o = self.owner.as_str();
        let stopped = (0..self.consumers.len())
            .map(|p| metrics.gauge(o, &format!("stopped.{}-{p}", self.topic)))
            .collect();
        let m = LedgerMetrics {
            processed: metrics.counter(o, "records_processed_total"),
            twice: metrics.counter(o, "processed_twice_total"),
            skipped: metrics.gauge(o, "records_skipped"),
            stopped_fraction: metrics.gauge(o, "stopped_fraction"),
            partitions_stopped: metrics.gauge(o, "partitions_stopped"),
            partitions_shared: metrics.gauge(o, "partitions_shared"),
            stopped,
        };
        // Nothing is consumed before a member says so.
        for &g in &m.stopped {
            metrics.set(g, 1.0);
        }
        metrics.set(m.partitions_stopped, self.consumers.len() as f64);
        metrics.set(m.stopped_fraction, 1.0);
        self.metrics = Some(m);
    }

    fn m(&self) -> &LedgerMetrics {
        self.metrics
            .as_ref()
            .expect("registered at the member's start")
    }

    /// `n` records of partition `p` from offset `first` were processed.
    pub fn processed(&mut self, metrics: &mut Metrics, p: Partition, first: u64, n: u64) {
        let Some(counts) = self.counts.get_mut(p as usize) else {
            return;
        };
        let end = (first + n) as usize;
        if counts.len() < end {
            counts.resize(end, 0);
        }
        let judged = self.judged[p as usize];
        let (mut twice, mut recovered) = (0, 0);
        for (offset, c) in (first..).zip(&mut counts[first as usize..end]) {
            if *c > 0 {
                twice += 1;
            } else if offset < judged {
                // Judged skipped, but a late batch processed it after all.
                recovered += 1;
            }
            *c = c.saturating_add(1);
        }
        self.skipped -= recovered;
        let m = self.m().clone();
        metrics.add(m.processed, n);
        metrics.add(m.twice, twice);
        metrics.set(m.skipped, self.skipped as f64);
    }

    /// A member resumes partition `p` from `offset` (a committed offset, or a reset): every
    /// record below it that nobody processed is skipped.
    pub fn resumed(&mut self, metrics: &mut Metrics, p: Partition, offset: u64) {
        let i = p as usize;
        if i >= self.judged.len() || offset <= self.judged[i] {
            return;
        }
        let counts = &self.counts[i];
        let from = self.judged[i];
        let unprocessed = (from..offset)
            .filter(|&o| counts.get(o as usize).is_none_or(|&c| c == 0))
            .count() as u64;
        self.judged[i] = offset;
        self.skipped += unprocessed;
        let g = self.m().skipped;
        metrics.set(g, self.skipped as f64);
    }

    /// Partitions before `offset` a reset skipped on purpose (`latest` on a fresh group) are
    /// not losses: they were never the group's to process.
    pub fn start_at(&mut self, p: Partition, offset: u64) {
        if let Some(j) = self.judged.get_mut(p as usize)
            && *j == 0
            && self.counts[p as usize].is_empty()
        {
            *j = offset;
        }
    }

    /// `member` now consumes exactly `partitions` (empty: nothing).
    pub fn consuming(&mut self, metrics: &mut Metrics, member: &str, partitions: &[Partition]) {
        let before = self.consuming.get(member).cloned().unwrap_or_default();
        if before == partitions {
            return;
        }
        for &p in &before {
            self.consumers[p as usize] -= 1;
        }
        for &p in partitions {
            self.consumers[p as usize] += 1;
        }
        if partitions.is_empty() {
            self.consuming.remove(member);
        } else {
            self.consuming
                .insert(member.to_string(), partitions.to_vec());
        }
        let m = self.m().clone();
        for &p in before.iter().chain(partitions) {
            let stopped = self.consumers[p as usize] == 0;
            metrics.set(m.stopped[p as usize], if stopped { 1.0 } else { 0.0 });
        }
        let stopped = self.consumers.iter().filter(|&&c| c == 0).count();
        metrics.set(m.partitions_stopped, stopped as f64);
        let shared = self.consumers.iter().filter(|&&c| c > 1).count();
        metrics.set(m.partitions_shared, shared as f64);
        let share = stopped as f64 / self.consumers.len() as f64;
        metrics.set(m.stopped_fraction, share);
    }

    /// How many times offset `offset` of partition `p` was processed.
    pub fn times_processed(&self, p: Partition, offset: u64) -> u32 {
        let counts = self.counts.get(p as usize);
        u32::from(
            counts
                .and_then(|c| c.get(offset as usize))
                .copied()
                .unwrap_or(0),
        )
    }

    /// Records skipped so far.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger() -> (Ledger, Metrics) {
        let mut metrics = Metrics::new(None);
        let mut l = Ledger::new("g", "t", 2);
        l.register(&mut metrics);
        (l, metrics)
    }

    #[test]
    fn counts_repeats_and_skips_and_forgives_late_batches() {
        let (mut l, mut m) = ledger();
        l.processed(&mut m, 0, 0, 10);
        l.processed(&mut m, 0, 5, 10);
        assert_eq!(m.counter_value("g.records_processed_total"), Some(20));
        assert_eq!(m.counter_value("g.processed_twice_total"), Some(5));
        // Resumed at 30: 15..30 were never processed.
        l.resumed(&mut m, 0, 30);
        assert_eq!(l.skipped(), 15);
        // A zombie's batch of 15..20 lands late.
        l.processed(&mut m, 0, 15, 5);
        assert_eq!(l.skipped(), 10);
        assert_eq!(m.gauge_value("g.records_skipped"), Some(10.0));
        // Resuming below what was judged changes nothing.
        l.resumed(&mut m, 0, 12);
        assert_eq!(l.skipped(), 10);
        assert_eq!(l.times_processed(0, 7), 2);
        assert_eq!(l.times_processed(1, 0), 0);
    }

    #[test]
    fn a_fresh_start_at_latest_is_not_a_loss() {
        let (mut l, mut m) = ledger();
        l.start_at(1, 100);
        l.resumed(&mut m, 1, 100);
        assert_eq!(l.skipped(), 0);
        l.processed(&mut m, 1, 100, 3);
        l.start_at(1, 500);
        l.resumed(&mut m, 1, 110);
        assert_eq!(l.skipped(), 7);
    }

    #[test]
    fn a_partition_is_stopped_while_nobody_consumes_it() {
        let (mut l, mut m) = ledger();
        assert_eq!(m.gauge_value("g.partitions_stopped"), Some(2.0));
        l.consuming(&mut m, "a", &[0]);
        assert_eq!(m.gauge_value("g.stopped.t-0"), Some(0.0));
        assert_eq!(m.gauge_value("g.stopped.t-1"), Some(1.0));
        assert_eq!(m.gauge_value("g.stopped_fraction"), Some(0.5));
        // Two owners for a moment (a revoked member finishing), then one.
        l.consuming(&mut m, "b", &[0, 1]);
        assert_eq!(m.gauge_value("g.partitions_shared"), Some(1.0));
        l.consuming(&mut m, "a", &[]);
        assert_eq!(m.gauge_value("g.partitions_shared"), Some(0.0));
        assert_eq!(m.gauge_value("g.stopped_fraction"), Some(0.0));
        l.consuming(&mut m, "b", &[1]);
        assert_eq!(m.gauge_value("g.stopped.t-0"), Some(1.0));
        assert_eq!(m.gauge_value("g.partitions_stopped"), Some(1.0));
    }
}
