//! The simulated network: hosts, links, partitions, and per-host clocks.
//!
//! Actors live on hosts. A message between two actors on the same host skips the network and is
//! delivered at the current instant (after everything already scheduled for that instant). A
//! message between hosts crosses the link joining them — a petgraph edge carrying a latency
//! distribution, loss, duplication and reordering — or the network's default link when no edge
//! was declared. The network only *decides* a message's fate ([`Fate`]); the engine carries it
//! out, so everything here is plain data and testable on its own.
//!
//! What happens to a message is explicit:
//! - a **cut** between two hosts (a partition, symmetric or one-way) is checked when the message
//!   is sent: in [`CutMode::Drop`] the message is lost; in [`CutMode::Hold`] it is buffered and
//!   sent again, with a fresh latency, when the cut heals. A message already in flight when a
//!   cut starts still arrives (it is on the wire).
//! - **loss** drops the message with the link's probability; **duplication** delivers a second
//!   copy with its own latency; **reordering** gives a message an extra latency draw and exempts
//!   it from the link's FIFO order.
//! - with `fifo` on (the default, as over one TCP connection) a message never overtakes an
//!   earlier one on the same directed link.
//!
//! Each host also has a clock: an offset, a drift (parts per billion, integer) and steps. The
//! engine's `now` is true time; `local_clock` is what the host believes. Only code that asks for
//! the local clock (leases, TTLs, last-writer-wins timestamps) sees skew.

use std::collections::BTreeMap;

use petgraph::graph::{EdgeIndex, NodeIndex};
use petgraph::stable_graph::StableDiGraph;
use serde::{Deserialize, Serialize};

use crate::dist::{Dist, DistError, Sampler};
use crate::engine::rng::{SimRng, unit_f64};
use crate::engine::time::{SimDuration, SimTime};

/// A host (a machine, a pod): the unit of placement, partition and clock skew.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct HostId(pub u32);

impl HostId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// What a cut between hosts does with the messages that meet it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum CutMode {
    /// Messages are lost (a firewall, a pulled cable).
    #[default]
    Drop,
    /// Messages are buffered and delivered when the cut heals (a stalled switch, a long GC of a
    /// proxy): turmoil's `hold` / `release`.
    Hold,
}

/// The properties of one direction of a link.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    /// One-way latency.
    pub latency: Dist,
    /// Probability that a message is lost.
    #[serde(default)]
    pub loss: f64,
    /// Probability that a message is delivered twice.
    #[serde(default)]
    pub duplicate: f64,
    /// Probability that a message is delayed by a second latency draw and may overtake others.
    #[serde(default)]
    pub reorder: f64,
    /// Messages on this link arrive in the order they were sent (unless reordered).
    #[serde(default = "yes")]
    pub fifo: bool,
}

fn yes() -> bool {
    true
}

impl LinkSpec {
    /// A link with a constant latency and no loss.
    pub fn constant(latency: SimDuration) -> Self {
        LinkSpec {
            latency: Dist::Const(crate::dist::Scalar::duration(latency)),
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            fifo: true,
        }
    }

    /// A link whose latency follows `latency`.
    pub fn with_latency(latency: Dist) -> Self {
        LinkSpec {
            latency,
            ..LinkSpec::constant(SimDuration::ZERO)
        }
    }

    pub fn validate(&self) -> Result<(), NetError> {
        for (what, p) in [
            ("loss", self.loss),
            ("duplicate", self.duplicate),
            ("reorder", self.reorder),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(NetError::Probability { what, value: p });
            }
        }
        if !self.latency.is_duration() {
            return Err(NetError::LatencyNotDuration);
        }
        self.latency.validate().map_err(NetError::Dist)?;
        Ok(())
    }
}

/// Errors in building or changing a network.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum NetError {
    #[error("{what} must be a probability between 0 and 1, got {value}")]
    Probability { what: &'static str, value: f64 },
    #[error("link latency must be a distribution of durations (write \"5ms\", not 5)")]
    LatencyNotDuration,
    #[error("link latency: {0}")]
    Dist(DistError),
    #[error("there is already a host named {0:?}")]
    DuplicateHost(String),
    #[error("no host named {0:?}")]
    UnknownHost(String),
}

/// A compiled link direction: the spec plus its prepared sampler and FIFO watermark.
#[derive(Clone, Debug)]
struct Link {
    spec: LinkSpec,
    latency: Sampler,
    /// The latest delivery time scheduled on this link, for FIFO order.
    last_delivery: SimTime,
}

impl Link {
    fn new(spec: LinkSpec) -> Result<Self, NetError> {
        spec.validate()?;
        let latency = spec.latency.compile().map_err(NetError::Dist)?;
        Ok(Link {
            spec,
            latency,
            last_delivery: SimTime::ZERO,
        })
    }
}

/// A host's clock: what the host believes the time is.
///
/// `local(now) = now + offset + drift_ppb * (now - anchor) / 1e9`, all in integers (i128), so the
/// same plan gives the same local times everywhere.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Clock {
    /// Offset in nanoseconds at `anchor` (positive: the host is ahead).
    pub offset_ns: i64,
    /// Drift in parts per billion (1 ppm = 1,000 ppb; positive: runs fast).
    pub drift_ppb: i64,
    /// When the current drift started to accumulate.
    pub anchor: SimTime,
}

impl Clock {
    /// The offset (ns) this clock has at true time `now`.
    pub fn offset_at(&self, now: SimTime) -> i128 {
        let since = i128::from(now.as_nanos()) - i128::from(self.anchor.as_nanos());
        i128::from(self.offset_ns) + i128::from(self.drift_ppb) * since / 1_000_000_000
    }

    /// What the host reads at true time `now` (clamped to the representable range: a clock set
    /// before the start of the run reads zero).
    pub fn local(&self, now: SimTime) -> SimTime {
        let t = i128::from(now.as_nanos()) + self.offset_at(now);
        SimTime::from_nanos(t.clamp(0, i128::from(u64::MAX)) as u64)
    }

    /// Folds the drift accumulated so far into the offset and starts a new drift at `now`.
    pub fn set_drift(&mut self, now: SimTime, drift_ppb: i64) {
        self.offset_ns = saturate_i64(self.offset_at(now));
        self.anchor = now;
        self.drift_ppb = drift_ppb;
    }

    /// Jumps the clock by `delta_ns` (an NTP step, a VM migration).
    pub fn step(&mut self, delta_ns: i64) {
        self.offset_ns = self.offset_ns.saturating_add(delta_ns);
    }
}

fn saturate_i64(x: i128) -> i64 {
    x.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// What the network decided for one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Deliver at this time.
    Deliver(SimTime),
    /// Deliver at both times (duplicated).
    Twice(SimTime, SimTime),
    /// Lost to the link's loss probability.
    Lost,
    /// Lost to a cut in drop mode.
    Cut,
    /// Buffered by a cut in hold mode; the engine keeps it until the cut heals.
    Held,
}

#[derive(Clone, Debug)]
struct HostInfo {
    name: String,
    clock: Clock,
}

/// Hosts, links, cuts and clocks.
#[derive(Debug)]
pub struct Network {
    graph: StableDiGraph<HostInfo, Link>,
    by_name: BTreeMap<String, HostId>,
    default_link: Link,
    /// Directed cuts: how many partitions currently cut `from -> to`, and the mode of the most
    /// recent one. A count, so that overlapping partitions heal one at a time.
    cuts: BTreeMap<(HostId, HostId), (u32, CutMode)>,
    /// FIFO watermarks of default-link directions used so far.
    default_last: BTreeMap<(HostId, HostId), SimTime>,
}

impl Default for Network {
    fn default() -> Self {
        Self::new(LinkSpec::constant(SimDuration::from_millis(1)))
            .expect("the built-in default link is valid")
    }
}

impl Network {
    /// A network whose undeclared links behave like `default_link`.
    pub fn new(default_link: LinkSpec) -> Result<Self, NetError> {
        Ok(Network {
            graph: StableDiGraph::new(),
            by_name: BTreeMap::new(),
            default_link: Link::new(default_link)?,
            cuts: BTreeMap::new(),
            default_last: BTreeMap::new(),
        })
    }

    pub fn set_default_link(&mut self, spec: LinkSpec) -> Result<(), NetError> {
        self.default_link = Link::new(spec)?;
        Ok(())
    }

    pub fn add_host(&mut self, name: &str) -> Result<HostId, NetError> {
        if self.by_name.contains_key(name) {
            return Err(NetError::DuplicateHost(name.to_string()));
        }
        let idx = self.graph.add_node(HostInfo {
            name: name.to_string(),
            clock: Clock::default(),
        });
        let id = HostId(idx.index() as u32);
        self.by_name.insert(name.to_string(), id);
        Ok(id)
    }

    pub fn host(&self, name: &str) -> Option<HostId> {
        self.by_name.get(name).copied()
    }

    pub fn host_name(&self, id: HostId) -> &str {
        &self.graph[NodeIndex::new(id.index())].name
    }

    pub fn hosts(&self) -> impl Iterator<Item = (HostId, &str)> {
        self.by_name.iter().map(|(n, &id)| (id, n.as_str()))
    }

    pub fn host_count(&self) -> usize {
        self.by_name.len()
    }

    /// Declares (or replaces) the link `a -> b` and `b -> a`.
    pub fn link(&mut self, a: HostId, b: HostId, spec: LinkSpec) -> Result<(), NetError> {
        self.link_one_way(a, b, spec.clone())?;
        self.link_one_way(b, a, spec)
    }

    /// Declares (or replaces) the link `from -> to` only.
    pub fn link_one_way(
        &mut self,
        from: HostId,
        to: HostId,
        spec: LinkSpec,
    ) -> Result<(), NetError> {
        let link = Link::new(spec)?;
        let (f, t) = (NodeIndex::new(from.index()), NodeIndex::new(to.index()));
        match self.graph.find_edge(f, t) {
            Some(e) => {
                // Keep the FIFO watermark: changing a link's latency must not let new messages
                // overtake ones already in flight on it.
                let last = self.graph[e].last_delivery;
                self.graph[e] = Link {
                    last_delivery: last,
                    ..link
                };
            }
            None => {
                self.graph.add_edge(f, t, link);
            }
        }
        Ok(())
    }

    /// The spec of `from -> to` (the default link's if none was declared).
    pub fn link_spec(&self, from: HostId, to: HostId) -> &LinkSpec {
        match self.edge(from, to) {
            Some(e) => &self.graph[e].spec,
            None => &self.default_link.spec,
        }
    }

    fn edge(&self, from: HostId, to: HostId) -> Option<EdgeIndex> {
        self.graph
            .find_edge(NodeIndex::new(from.index()), NodeIndex::new(to.index()))
    }

    /// Cuts `from -> to` (one direction).
    pub fn cut(&mut self, from: HostId, to: HostId, mode: CutMode) {
        let entry = self.cuts.entry((from, to)).or_insert((0, mode));
        entry.0 += 1;
        entry.1 = mode;
    }

    /// Removes one cut of `from -> to`; returns true when the direction is open again.
    pub fn uncut(&mut self, from: HostId, to: HostId) -> bool {
        match self.cuts.get_mut(&(from, to)) {
            Some(entry) if entry.0 > 1 => {
                entry.0 -= 1;
                false
            }
            Some(_) => {
                self.cuts.remove(&(from, to));
                true
            }
            None => true,
        }
    }

    /// Removes every cut.
    pub fn heal_all(&mut self) {
        self.cuts.clear();
    }

    pub fn is_cut(&self, from: HostId, to: HostId) -> Option<CutMode> {
        self.cuts.get(&(from, to)).map(|&(_, mode)| mode)
    }

    pub fn clock(&self, host: HostId) -> &Clock {
        &self.graph[NodeIndex::new(host.index())].clock
    }

    pub fn clock_mut(&mut self, host: HostId) -> &mut Clock {
        &mut self.graph[NodeIndex::new(host.index())].clock
    }

    /// Decides the fate of a message sent at `now` from host `from` to host `to` (different
    /// hosts). Draws from `rng` only for the link features that are switched on, so a lossless
    /// link does not consume randomness for loss.
    pub fn route(&mut self, now: SimTime, from: HostId, to: HostId, rng: &mut SimRng) -> Fate {
        debug_assert_ne!(from, to, "same-host messages do not cross the network");
        if let Some(mode) = self.is_cut(from, to) {
            return match mode {
                CutMode::Drop => Fate::Cut,
                CutMode::Hold => Fate::Held,
            };
        }
        self.transmit(now, from, to, rng)
    }

    /// The link part of [`route`](Self::route), also used for held messages being released.
    pub fn transmit(&mut self, now: SimTime, from: HostId, to: HostId, rng: &mut SimRng) -> Fate {
        let edge = self.edge(from, to);
        let link = match edge {
            Some(e) => &mut self.graph[e],
            None => &mut self.default_link,
        };
        if link.spec.loss > 0.0 && unit_f64(rng) < link.spec.loss {
            return Fate::Lost;
        }
        let mut latency = link.latency.sample_duration(rng);
        let reordered = link.spec.reorder > 0.0 && unit_f64(rng) < link.spec.reorder;
        if reordered {
            latency = latency.saturating_add(link.latency.sample_duration(rng));
        }
        let mut at = now.saturating_add(latency);
        if link.spec.fifo && !reordered {
            let last = match edge {
                Some(_) => &mut link.last_delivery,
                None => self.default_last.entry((from, to)).or_insert(SimTime::ZERO),
            };
            at = at.max(*last);
            *last = at;
        }
        let duplicated = link.spec.duplicate > 0.0 && unit_f64(rng) < link.spec.duplicate;
        if duplicated {
            let link = match edge {
                Some(e) => &self.graph[e],
                None => &self.default_link,
            };
            let second = now
                .saturating_add(link.latency.sample_duration(rng))
                .max(at);
            return Fate::Twice(at, second);
        }
        Fate::Deliver(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::rng::stream;

    fn net2() -> (Network, HostId, HostId) {
        let mut net = Network::new(LinkSpec::constant(SimDuration::from_millis(1))).unwrap();
        let a = net.add_host("a").unwrap();
        let b = net.add_host("b").unwrap();
        (net, a, b)
    }

    #[test]
    fn default_link_delivers_after_its_latency() {
        let (mut net, a, b) = net2();
        let mut rng = stream(1, "net");
        let t = SimTime::from_nanos(5);
        assert_eq!(
            net.route(t, a, b, &mut rng),
            Fate::Deliver(t + SimDuration::from_millis(1))
        );
    }

    #[test]
    fn declared_link_overrides_default() {
        let (mut net, a, b) = net2();
        net.link(a, b, LinkSpec::constant(SimDuration::from_millis(7)))
            .unwrap();
        let mut rng = stream(1, "net");
        assert_eq!(
            net.route(SimTime::ZERO, b, a, &mut rng),
            Fate::Deliver(SimTime::ZERO + SimDuration::from_millis(7))
        );
    }

    #[test]
    fn one_way_cut_blocks_one_direction_only() {
        let (mut net, a, b) = net2();
        let mut rng = stream(1, "net");
        net.cut(a, b, CutMode::Drop);
        assert_eq!(net.route(SimTime::ZERO, a, b, &mut rng), Fate::Cut);
        assert!(matches!(
            net.route(SimTime::ZERO, b, a, &mut rng),
            Fate::Deliver(_)
        ));
        net.cut(b, a, CutMode::Hold);
        assert_eq!(net.route(SimTime::ZERO, b, a, &mut rng), Fate::Held);
    }

    #[test]
    fn overlapping_cuts_heal_one_at_a_time() {
        let (mut net, a, b) = net2();
        net.cut(a, b, CutMode::Drop);
        net.cut(a, b, CutMode::Drop);
        assert!(!net.uncut(a, b));
        assert_eq!(net.is_cut(a, b), Some(CutMode::Drop));
        assert!(net.uncut(a, b));
        assert_eq!(net.is_cut(a, b), None);
    }

    #[test]
    fn fifo_link_never_reorders() {
        let (mut net, a, b) = net2();
        let spec = LinkSpec::with_latency(Dist::Exp {
            mean: crate::dist::Scalar::duration(SimDuration::from_millis(5)),
        });
        net.link(a, b, spec).unwrap();
        let mut rng = stream(3, "net");
        let mut last = SimTime::ZERO;
        for i in 0..1000u64 {
            let Fate::Deliver(at) = net.route(SimTime::from_nanos(i * 1000), a, b, &mut rng) else {
                panic!("lossless link lost a message")
            };
            assert!(at >= last, "message {i} overtook an earlier one");
            last = at;
        }
    }

    #[test]
    fn loss_rate_matches_probability() {
        let (mut net, a, b) = net2();
        let spec = LinkSpec {
            loss: 0.2,
            ..LinkSpec::constant(SimDuration::from_millis(1))
        };
        net.link(a, b, spec).unwrap();
        let mut rng = stream(4, "net");
        let n = 100_000;
        let lost = (0..n)
            .filter(|_| net.route(SimTime::ZERO, a, b, &mut rng) == Fate::Lost)
            .count();
        // Binomial(n, 0.2): sd = sqrt(n p (1-p)) ~ 126; allow 5 sd.
        let sd = (n as f64 * 0.2 * 0.8).sqrt();
        assert!(
            (lost as f64 - 0.2 * n as f64).abs() < 5.0 * sd,
            "lost {lost} of {n}"
        );
    }

    #[test]
    fn bad_probabilities_are_errors() {
        let spec = LinkSpec {
            loss: 1.5,
            ..LinkSpec::constant(SimDuration::from_millis(1))
        };
        assert!(matches!(
            spec.validate(),
            Err(NetError::Probability { what: "loss", .. })
        ));
        let spec = LinkSpec {
            duplicate: f64::NAN,
            ..LinkSpec::constant(SimDuration::from_millis(1))
        };
        assert!(matches!(
            spec.validate(),
            Err(NetError::Probability {
                what: "duplicate",
                ..
            })
        ));
    }

    #[test]
    fn clock_offset_drift_and_step() {
        let mut c = Clock::default();
        let t = SimTime::from_nanos(10_000_000_000);
        assert_eq!(c.local(t), t);
        c.step(5_000_000_000);
        assert_eq!(c.local(t).as_nanos(), 15_000_000_000);
        // 1000 ppm from t = 10 s: at 20 s the clock has gained 10 ms more.
        c.set_drift(t, 1_000_000);
        let t2 = SimTime::from_nanos(20_000_000_000);
        assert_eq!(c.local(t2).as_nanos(), 25_010_000_000);
        // A clock far behind reads zero rather than wrapping.
        c.step(-100_000_000_000);
        assert_eq!(c.local(t2), SimTime::ZERO);
    }
}
