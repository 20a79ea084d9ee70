//! The failover manager: [`Sentinel`] watchers and the STONITH [`PowerSwitch`] (see the module
//! docs of [`repl`](super)).
//!
//! A watcher pings every node each `ping_interval` (Sentinel pings masters and replicas once
//! a second) and keeps, per node, the last reply's time (its own clock) and the replication
//! offset and epoch the node reported (Sentinel reads them from `INFO`). It calls the primary
//! subjectively down (SDOWN) after `down_after` without a reply, and sends its opinion to the
//! other watchers every round. When it and enough others that their fresh opinions reach
//! `quorum` agree, the primary is objectively down (ODOWN). The watcher that acts is the
//! lowest-named among those that hold the primary down — a simplification: real Sentinel
//! elects a leader among sentinels for the epoch, Raft-style, and needs a majority of
//! sentinels to authorize the failover, not only `quorum`.
//!
//! It promotes the reachable replica (a reply within `down_after`) with the largest offset
//! (ties: the first in `nodes`), with an epoch one above the newest it knows, and announces
//! `Follow { epoch, primary }` to the other nodes, watchers and clients. A node that later
//! reports an older configuration (the old primary back from a partition, a replica that missed
//! the announcement) is told again, as Sentinel reconfigures a returning old master.
//!
//! **Metrics** (owner = the watcher's name): `sdown_total` (rounds that began an SDOWN),
//! `failovers_total`, `stonith_requests_total`, `store_fences_total`, gauge `epoch`.
//!
//! With `fence_store` the watcher fences the [`EpochStore`](super::EpochStore) with the new
//! epoch before promoting, and promotes once the store confirms.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use serde::{Deserialize, Serialize};

use super::{Epoch, Repl, ReplTick};
use crate::actor::{Actor, ActorId, Ctx};
use crate::engine::time::{SimDuration, SimTime};
use crate::metrics::{CounterId, GaugeId};
use crate::model::Carry;
use crate::model::rpc::{ConfigError, Validate, check_unique_names, nonzero};

/// Sentinel's `down-after-milliseconds`: 30 000 ms (sentinel.conf default).
pub const DEFAULT_DOWN_AFTER: SimDuration = SimDuration::from_secs(30);
/// Sentinel pings every instance once a second.
pub const DEFAULT_PING_INTERVAL: SimDuration = SimDuration::from_secs(1);

fn default_down_after() -> SimDuration {
    DEFAULT_DOWN_AFTER
}
fn default_ping_interval() -> SimDuration {
    DEFAULT_PING_INTERVAL
}

/// A [`Sentinel`]'s config:
/// `(nodes: ["db0", "db1", "db2"], watchers: ["s0", "s1", "s2"], clients: ["c0"], quorum: 2)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SentinelConfig {
    /// The store's nodes; the first is the initial primary (epoch 1).
    pub nodes: Vec<String>,
    /// Every watcher, this one included.
    pub watchers: Vec<String>,
    /// Clients to announce a new primary to.
    #[serde(default)]
    pub clients: Vec<String>,
    /// Watchers that must hold the primary down (Sentinel's `quorum`).
    pub quorum: u32,
    /// Default 30 s (`down-after-milliseconds`).
    #[serde(default = "default_down_after")]
    pub down_after: SimDuration,
    /// Default 1 s.
    #[serde(default = "default_ping_interval")]
    pub ping_interval: SimDuration,
    /// The [`PowerSwitch`] actor: power the old primary off, and promote only once the switch
    /// confirms. Default None (no STONITH, as in Sentinel).
    #[serde(default)]
    pub stonith: Option<String>,
    /// The [`EpochStore`](super::EpochStore) the nodes write through: fence it with the new
    /// epoch and promote only once it confirms, so the old primary's next write is refused.
    /// Default None. An alternative to `stonith`, not a companion.
    #[serde(default)]
    pub fence_store: Option<String>,
    /// Which replica a failover promotes. Default `Reachable` (Sentinel).
    #[serde(default)]
    pub promotion: Promotion,
}

/// How a failover picks the replica to promote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Promotion {
    /// Sentinel's rule: the replica with the largest replication offset among those that
    /// answered within `down_after`. Best effort: Redis's docs for `WAIT` warn that a write
    /// replicated to several replicas can still be lost, because the failover picks "the best
    /// replica among the set of available replicas" — one that lacks it, when those that have
    /// it are out of reach.
    #[default]
    Reachable,
    /// Raft's rule (the election restriction, Raft paper §5.4.1), as an election with a new
    /// epoch: the watcher asks every node to promise the epoch (`Prepare`); a node that
    /// promises takes nothing more from an older primary and reports where its log ends;
    /// with promises from a majority of the nodes the watcher promotes the most up to date
    /// of them (last entry's epoch, then length). With majority acknowledgements, a write
    /// acknowledged before the election is on a majority, so on one of the promisers, so in
    /// the promoted log. An election that gets no majority within `3 × ping_interval` is
    /// abandoned and a later round tries again with a newer epoch.
    Majority,
}

impl SentinelConfig {
    /// The actor names this config refers to, with their field paths.
    pub fn targets(&self) -> Vec<(String, &str)> {
        let mut t = Vec::new();
        for (field, names) in [
            ("nodes", &self.nodes),
            ("watchers", &self.watchers),
            ("clients", &self.clients),
        ] {
            for (i, n) in names.iter().enumerate() {
                t.push((format!("{field}[{i}]"), n.as_str()));
            }
        }
        if let Some(s) = &self.stonith {
            t.push(("stonith".to_string(), s.as_str()));
        }
        if let Some(s) = &self.fence_store {
            t.push(("fence_store".to_string(), s.as_str()));
        }
        t
    }
}

impl Validate for SentinelConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.nodes.len() < 2 {
            return Err(ConfigError::Invalid {
                field: "nodes".into(),
                reason: "failover needs a primary and at least one replica".into(),
            });
        }
        check_unique_names(self.nodes.iter().map(String::as_str), |i| {
            format!("nodes[{i}]")
        })?;
        if self.watchers.is_empty() {
            return Err(ConfigError::Empty {
                field: "watchers".into(),
            });
        }
        check_unique_names(self.watchers.iter().map(String::as_str), |i| {
            format!("watchers[{i}]")
        })?;
        nonzero("quorum", u64::from(self.quorum))?;
        if self.quorum as usize > self.watchers.len() {
            return Err(ConfigError::Invalid {
                field: "quorum".into(),
                reason: format!(
                    "{} exceeds the {} watchers",
                    self.quorum,
                    self.watchers.len()
                ),
            });
        }
        if self.stonith.is_some() && self.fence_store.is_some() {
            return Err(ConfigError::Invalid {
                field: "fence_store".into(),
                reason: "set either stonith or fence_store: each fences the old primary".into(),
            });
        }
        nonzero("down_after", self.down_after.as_nanos())?;
        nonzero("ping_interval", self.ping_interval.as_nanos())?;
        Ok(())
    }
}

#[derive(Clone, Copy, Debug)]
struct Seen {
    at: SimTime,
    offset: u64,
    epoch: Epoch,
}

#[derive(Clone, Copy, Debug)]
struct Opinion {
    epoch: Epoch,
    primary: ActorId,
    down: bool,
    at: SimTime,
}

/// An election for `epoch`: the promises so far, by node, with where each log ends.
#[derive(Clone, Debug)]
struct Election {
    epoch: Epoch,
    started: SimTime,
    promises: BTreeMap<ActorId, (Epoch, u64)>,
}

#[derive(Clone, Copy)]
struct SentinelMetrics {
    sdown: CounterId,
    failovers: CounterId,
    stonith: CounterId,
    store_fences: CounterId,
    epoch: GaugeId,
}

/// See the module docs.
#[derive(Clone)]
pub struct Sentinel<M> {
    config: SentinelConfig,
    nodes: Vec<ActorId>,
    watchers: Vec<ActorId>,
    clients: Vec<ActorId>,
    switch: Option<ActorId>,
    store: Option<ActorId>,
    primary: ActorId,
    epoch: Epoch,
    seen: BTreeMap<ActorId, Seen>,
    opinions: BTreeMap<ActorId, Opinion>,
    was_down: bool,
    /// A failover waiting for the switch: (epoch, candidate).
    fencing: Option<(Epoch, ActorId)>,
    /// `Promotion::Majority`: the election under way, and the newest epoch it has asked for.
    election: Option<Election>,
    asked: Epoch,
    seq: u64,
    metrics: Option<SentinelMetrics>,
    _m: PhantomData<M>,
}

impl<M> Sentinel<M> {
    pub fn new(config: SentinelConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Sentinel {
            config,
            nodes: Vec::new(),
            watchers: Vec::new(),
            clients: Vec::new(),
            switch: None,
            store: None,
            primary: ActorId(0),
            epoch: 1,
            seen: BTreeMap::new(),
            opinions: BTreeMap::new(),
            was_down: false,
            fencing: None,
            election: None,
            asked: 0,
            seq: 0,
            metrics: None,
            _m: PhantomData,
        })
    }

    /// The primary it believes in, and its epoch.
    pub fn belief(&self) -> (ActorId, Epoch) {
        (self.primary, self.epoch)
    }
}

impl<M: Carry<Repl>> Sentinel<M> {
    fn m(&self) -> SentinelMetrics {
        self.metrics.expect("registered at start")
    }

    fn adopt(&mut self, ctx: &mut Ctx<'_, M>, epoch: Epoch, primary: ActorId) {
        if epoch <= self.epoch {
            return;
        }
        self.epoch = epoch;
        self.primary = primary;
        self.fencing = None;
        self.election = None;
        self.was_down = false;
        let now = ctx.local_clock();
        let s = self.seen.entry(primary).or_insert(Seen {
            at: now,
            offset: 0,
            epoch,
        });
        s.at = now;
        let m = self.m();
        ctx.metrics().set(m.epoch, epoch as f64);
    }

    fn sdown(&self, now: SimTime) -> bool {
        let last = self.seen.get(&self.primary).map_or(SimTime::ZERO, |s| s.at);
        now.saturating_duration_since(last) > self.config.down_after
    }

    fn round(&mut self, ctx: &mut Ctx<'_, M>) {
        self.seq += 1;
        for &n in &self.nodes {
            ctx.send(n, M::wrap(Repl::Ping { seq: self.seq }));
        }
        let now = ctx.local_clock();
        let down = self.sdown(now);
        if down && !self.was_down {
            let m = self.m();
            ctx.metrics().inc(m.sdown);
        }
        self.was_down = down;
        let op = Repl::Opinion {
            epoch: self.epoch,
            primary: self.primary,
            down,
        };
        for &w in &self.watchers {
            if w != ctx.me() {
                ctx.send(w, M::wrap(op.clone()));
            }
        }
        if let Some(e) = &self.election
            && now.saturating_duration_since(e.started)
                > self.config.ping_interval.saturating_mul(3)
        {
            // No majority promised in time: a later round asks again with a newer epoch.
            self.election = None;
        }
        if !down || self.fencing.is_some() || self.election.is_some() {
            return;
        }
        // Fresh opinions: from the last few rounds.
        let fresh = self.config.ping_interval.saturating_mul(3);
        let mut agreeing: Vec<ActorId> = vec![ctx.me()];
        for (&w, o) in &self.opinions {
            if o.down
                && o.epoch == self.epoch
                && o.primary == self.primary
                && now.saturating_duration_since(o.at) <= fresh
            {
                agreeing.push(w);
            }
        }
        if (agreeing.len() as u32) < self.config.quorum {
            return;
        }
        let lowest = agreeing
            .iter()
            .min_by(|a, b| ctx.name_of(**a).cmp(ctx.name_of(**b)))
            .copied();
        if lowest != Some(ctx.me()) {
            return;
        }
        self.failover(ctx, now);
    }

    fn failover(&mut self, ctx: &mut Ctx<'_, M>, now: SimTime) {
        let newest = (self.nodes.iter().filter_map(|n| self.seen.get(n)))
            .map(|s| s.epoch)
            .fold(self.epoch, Epoch::max);
        if self.config.promotion == Promotion::Majority {
            let epoch = newest.max(self.asked) + 1;
            self.asked = epoch;
            self.election = Some(Election {
                epoch,
                started: now,
                promises: BTreeMap::new(),
            });
            for &n in &self.nodes {
                ctx.send(n, M::wrap(Repl::Prepare { epoch }));
            }
            return;
        }
        // Sentinel's rule: the reachable replica with the largest offset (ties: the first).
        let mut best: Option<(u64, ActorId)> = None;
        for &n in &self.nodes {
            let Some(s) = self.seen.get(&n) else {
                continue;
            };
            if n == self.primary || now.saturating_duration_since(s.at) > self.config.down_after {
                continue;
            }
            if best.is_none_or(|(o, _)| s.offset > o) {
                best = Some((s.offset, n));
            }
        }
        let Some((_, candidate)) = best else {
            return;
        };
        self.fence_and_promote(ctx, newest + 1, candidate);
    }

    /// A node's promise for the election under way; with a majority, the most up-to-date
    /// promiser is the candidate.
    fn on_promise(&mut self, ctx: &mut Ctx<'_, M>, from: ActorId, epoch: Epoch, end: (Epoch, u64)) {
        let Some(e) = &mut self.election else {
            return;
        };
        if e.epoch != epoch {
            return;
        }
        e.promises.insert(from, end);
        if e.promises.len() <= self.nodes.len() / 2 {
            return;
        }
        // The most up to date; ties go to the first in `nodes`.
        let mut best: Option<((Epoch, u64), ActorId)> = None;
        for &n in &self.nodes {
            if let Some(&end) = e.promises.get(&n)
                && best.is_none_or(|(b, _)| end > b)
            {
                best = Some((end, n));
            }
        }
        self.election = None;
        if let Some((_, candidate)) = best {
            self.fence_and_promote(ctx, epoch, candidate);
        }
    }

    /// Promotes `candidate` with `epoch`, after fencing the store or powering the old primary
    /// off if configured.
    fn fence_and_promote(&mut self, ctx: &mut Ctx<'_, M>, epoch: Epoch, candidate: ActorId) {
        if let Some(store) = self.store {
            let m = self.m();
            ctx.metrics().inc(m.store_fences);
            self.fencing = Some((epoch, candidate));
            ctx.send(store, M::wrap(Repl::StoreFence { epoch }));
            return;
        }
        match self.switch {
            Some(sw) => {
                let m = self.m();
                ctx.metrics().inc(m.stonith);
                self.fencing = Some((epoch, candidate));
                let node = self.primary;
                ctx.send(sw, M::wrap(Repl::PowerOffRequest { node, epoch }));
            }
            None => self.promote(ctx, epoch, candidate),
        }
    }

    fn promote(&mut self, ctx: &mut Ctx<'_, M>, epoch: Epoch, candidate: ActorId) {
        let m = self.m();
        ctx.metrics().inc(m.failovers);
        ctx.trace_note(&format!("failover: epoch {epoch}"));
        ctx.send(candidate, M::wrap(Repl::Promote { epoch }));
        let follow = Repl::Follow {
            epoch,
            primary: candidate,
        };
        let others = self.nodes.iter().chain(&self.watchers).chain(&self.clients);
        let targets: Vec<ActorId> = others
            .copied()
            .filter(|&a| a != candidate && a != ctx.me())
            .collect();
        for a in targets {
            ctx.send(a, M::wrap(follow.clone()));
        }
        self.adopt(ctx, epoch, candidate);
    }
}

impl<M: Carry<Repl>> Actor<M> for Sentinel<M> {
    fn on_start(&mut self, ctx: &mut Ctx<'_, M>) {
        let own = ctx.name().to_string();
        let look = |ctx: &Ctx<'_, M>, field: &str, names: &[String]| -> Vec<ActorId> {
            names
                .iter()
                .map(|p| {
                    ctx.lookup(p)
                        .unwrap_or_else(|| panic!("{own}: {field}: no actor is called `{p}`"))
                })
                .collect()
        };
        self.nodes = look(ctx, "nodes", &self.config.nodes);
        self.watchers = look(ctx, "watchers", &self.config.watchers);
        self.clients = look(ctx, "clients", &self.config.clients);
        self.switch = self
            .config
            .stonith
            .as_ref()
            .map(|s| look(ctx, "stonith", std::slice::from_ref(s))[0]);
        self.store = self
            .config
            .fence_store
            .as_ref()
            .map(|s| look(ctx, "fence_store", std::slice::from_ref(s))[0]);
        self.metrics = Some(SentinelMetrics {
            sdown: ctx.counter("sdown_total"),
            failovers: ctx.counter("failovers_total"),
            stonith: ctx.counter("stonith_requests_total"),
            store_fences: ctx.counter("store_fences_total"),
            epoch: ctx.gauge("epoch"),
        });
        self.primary = self.nodes[0];
        let now = ctx.local_clock();
        self.seen.insert(
            self.primary,
            Seen {
                at: now,
                offset: 0,
                epoch: 1,
            },
        );
        let m = self.m();
        ctx.metrics().set(m.epoch, self.epoch as f64);
        ctx.set_timer(
            self.config.ping_interval,
            M::wrap(Repl::Tick(ReplTick::Ping)),
        );
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, M>, from: ActorId, msg: M) {
        let Some(msg) = msg.unwrap() else {
            return;
        };
        match msg {
            Repl::Pong {
                epoch,
                primary,
                offset,
                ..
            } => {
                let at = ctx.local_clock();
                self.seen.insert(from, Seen { at, offset, epoch });
                if primary && epoch > self.epoch {
                    self.adopt(ctx, epoch, from);
                } else if (primary && from != self.primary) || (!primary && epoch < self.epoch) {
                    // An old configuration: tell it again.
                    let f = Repl::Follow {
                        epoch: self.epoch,
                        primary: self.primary,
                    };
                    ctx.send(from, M::wrap(f));
                }
            }
            Repl::Opinion {
                epoch,
                primary,
                down,
            } => {
                let at = ctx.local_clock();
                let o = Opinion {
                    epoch,
                    primary,
                    down,
                    at,
                };
                self.opinions.insert(from, o);
            }
            Repl::Follow { epoch, primary } => self.adopt(ctx, epoch, primary),
            Repl::Promise {
                epoch,
                last_epoch,
                offset,
            } => self.on_promise(ctx, from, epoch, (last_epoch, offset)),
            Repl::PoweredOff { epoch, .. } | Repl::StoreFenced { epoch } => {
                if let Some((e, candidate)) = self.fencing
                    && e == epoch
                {
                    self.fencing = None;
                    self.promote(ctx, epoch, candidate);
                }
            }
            _ => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, M>, msg: M) {
        if let Some(Repl::Tick(ReplTick::Ping)) = msg.unwrap() {
            self.round(ctx);
            ctx.set_timer(
                self.config.ping_interval,
                M::wrap(Repl::Tick(ReplTick::Ping)),
            );
        }
    }
}

fn default_power_wait() -> SimDuration {
    DEFAULT_POWER_WAIT
}

/// How long a fence agent waits after the power-off before it reports: fence_ipmilan's
/// `power_wait`, 2 s (fence-agents man page, "-T Wait X seconds after on/off operation
/// (Default Value: 2)").
pub const DEFAULT_POWER_WAIT: SimDuration = SimDuration::from_secs(2);

/// A [`PowerSwitch`]'s config: `()` or `(power_wait: "4s")`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PowerSwitchConfig {
    /// Between cutting the power and confirming it to the watcher; default 2 s.
    #[serde(default = "default_power_wait")]
    pub power_wait: SimDuration,
}

impl Default for PowerSwitchConfig {
    fn default() -> Self {
        PowerSwitchConfig {
            power_wait: DEFAULT_POWER_WAIT,
        }
    }
}

impl Validate for PowerSwitchConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }
}

/// STONITH: a power switch on its own management network. On a watcher's `PowerOffRequest` it
/// tells the node to power off (the node crashes itself when the order arrives) and confirms to
/// the watcher `power_wait` later, as a fence agent reports after its wait. Counts
/// `power_offs_total`.
#[derive(Clone)]
pub struct PowerSwitch<M> {
    config: PowerSwitchConfig,
    _m: PhantomData<M>,
}

impl<M> Default for PowerSwitch<M> {
    fn default() -> Self {
        PowerSwitch::new()
    }
}

impl<M> PowerSwitch<M> {
    /// A switch that confirms at once (`power_wait` 0).
    pub fn new() -> Self {
        PowerSwitch::with_config(PowerSwitchConfig {
            power_wait: SimDuration::ZERO,
        })
    }

    pub fn with_config(config: PowerSwitchConfig) -> Self {
        PowerSwitch {
            config,
            _m: PhantomData,
        }
    }
}

impl<M: Carry<Repl>> Actor<M> for PowerSwitch<M> {
    fn on_start(&mut self, ctx: &mut Ctx<'_, M>) {
        ctx.counter("power_offs_total");
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, M>, from: ActorId, msg: M) {
        if let Some(Repl::PowerOffRequest { node, epoch }) = msg.unwrap() {
            let c = ctx.counter("power_offs_total");
            ctx.metrics().inc(c);
            // The power is cut at once, whatever the process is doing (a paused one too).
            ctx.kill(node, None);
            let t = ReplTick::Confirm {
                watcher: from,
                node,
                epoch,
            };
            ctx.set_timer(self.config.power_wait, M::wrap(Repl::Tick(t)));
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, M>, msg: M) {
        if let Some(Repl::Tick(ReplTick::Confirm {
            watcher,
            node,
            epoch,
        })) = msg.unwrap()
        {
            ctx.send(watcher, M::wrap(Repl::PoweredOff { node, epoch }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::rpc::from_ron;

    #[test]
    fn configs_parse_with_defaults_and_bad_ones_name_the_field() {
        let c: SentinelConfig =
            from_ron(r#"(nodes: ["a", "b"], watchers: ["s0", "s1", "s2"], quorum: 2)"#).unwrap();
        assert_eq!(c.down_after, DEFAULT_DOWN_AFTER);
        assert_eq!(c.ping_interval, DEFAULT_PING_INTERVAL);
        assert_eq!(c.stonith, None);
        assert_eq!(c.fence_store, None);
        let e = from_ron::<SentinelConfig>(
            r#"(nodes: ["a", "b"], watchers: ["s0"], quorum: 1, stonith: Some("p"), fence_store: Some("f"))"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("fence_store"), "{e}");
        let e = from_ron::<SentinelConfig>(r#"(nodes: ["a", "b"], watchers: ["s0"], quorum: 2)"#)
            .unwrap_err();
        assert!(e.to_string().contains("quorum"), "{e}");
        let e = from_ron::<SentinelConfig>(r#"(nodes: ["a"], watchers: ["s0"], quorum: 1)"#)
            .unwrap_err();
        assert!(e.to_string().contains("nodes"), "{e}");
        let c: SentinelConfig = from_ron(
            r#"(nodes: ["a", "b"], watchers: ["s0"], clients: ["c"], quorum: 1, stonith: Some("p"))"#,
        )
        .unwrap();
        let t: Vec<String> = c
            .targets()
            .into_iter()
            .map(|(f, n)| format!("{f}={n}"))
            .collect();
        assert_eq!(
            t,
            [
                "nodes[0]=a",
                "nodes[1]=b",
                "watchers[0]=s0",
                "clients[0]=c",
                "stonith=p"
            ]
        );
    }
}
