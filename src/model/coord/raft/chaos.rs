//! [`LeaderKiller`]: a nemesis that kills whichever member of a Raft group leads, at a fixed
//! interval, and has it restarted a while later — the issue's "leader crashes repeatedly".
//!
//! A scripted rolling restart takes members down in turn and hits the leader only when the
//! turn falls on it (about one restart in five for five members), so most restarts measure
//! nothing about elections. A Jepsen nemesis that targets the leader (the `:primaries` node
//! spec of `jepsen.nemesis.combined`) asks the database who leads; this one reads it from
//! the group's shared [`RaftObserver`](super::RaftObserver): the member of the highest term
//! that believes it leads and has neither stepped down nor crashed. Every `every` from `from`
//! (true time: a nemesis has no clock of its own to skew), until `until`, it kills that member
//! with [`Ctx::kill`] — at once, even when it is paused, as SIGKILL or a power cut would — and
//! the engine restarts it `down_for` later, with its disk. No leader at that instant (an
//! election is on): it kills nothing and waits for the next tick.
//!
//! **Metrics** (owner = the killer's name): `kills_total`, `no_leader_total` (ticks that found
//! no leader), and the histogram `time_to_elect` (ns; the issue's time-to-elect after a leader
//! crash): from each kill to the election of the next leader (the first after the kill, as
//! the observer saw it), recorded at the next tick — one more tick follows the last kill for
//! it; a kill with no leader by then counts in `unelected_total` instead. It includes the
//! detection (a follower's election timer firing, at least `election_timeout_min` minus a
//! heartbeat after the last one) and every round a split vote costs.

use std::marker::PhantomData;

use serde::{Deserialize, Serialize};

use super::node::{Raft, RaftTick};
use super::observer::RaftWatch;
use crate::actor::{Actor, ActorId, Ctx};
use crate::engine::time::{SimDuration, SimTime};
use crate::metrics::{CounterId, HistogramId};
use crate::model::Carry;
use crate::model::rpc::{ConfigError, Validate, check_unique_names, nonzero};

/// A kill every 15 s by default: an **assumption**, the cadence of the rolling restart it
/// replaces in `raft_election.ron` — long enough for a new leader (a few election timeouts)
/// and for the victim to rejoin before the next kill.
pub const DEFAULT_EVERY: SimDuration = SimDuration::from_secs(15);
/// The victim stays down 5 s by default: the Jepsen tutorial's nemesis schedule (5 s of
/// fault, 5 s of rest: `(gen/sleep 5) :start (gen/sleep 5) :stop`), about a process
/// supervisor's restart of a killed etcd.
pub const DEFAULT_DOWN_FOR: SimDuration = SimDuration::from_secs(5);

fn default_every() -> SimDuration {
    DEFAULT_EVERY
}
fn default_down_for() -> SimDuration {
    DEFAULT_DOWN_FOR
}

/// A [`LeaderKiller`]'s config: `(group: ["n0", "n1", "n2"], every: "15s", down_for: "5s",
/// from: "10s", until: "9m50s")`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaderKillerConfig {
    /// The group's members by actor name (the same set its `RaftNode`s form).
    pub group: Vec<String>,
    /// Between kills; default 15 s ([`DEFAULT_EVERY`]).
    #[serde(default = "default_every")]
    pub every: SimDuration,
    /// How long a victim stays down; default 5 s ([`DEFAULT_DOWN_FOR`]).
    #[serde(default = "default_down_for")]
    pub down_for: SimDuration,
    /// The first kill, from the run's start; default 0 s (one `every` in: the group first
    /// needs a leader).
    #[serde(default)]
    pub from: SimDuration,
    /// No kill at or after this time; default None (until the run ends).
    #[serde(default)]
    pub until: Option<SimDuration>,
}

impl LeaderKillerConfig {
    /// A config for `group` with every default.
    pub fn new(group: &[&str]) -> Self {
        LeaderKillerConfig {
            group: group.iter().map(|p| p.to_string()).collect(),
            every: DEFAULT_EVERY,
            down_for: DEFAULT_DOWN_FOR,
            from: SimDuration::ZERO,
            until: None,
        }
    }

    /// The actor names this config refers to, with their field paths.
    pub fn targets(&self) -> Vec<(String, &str)> {
        let group = self.group.iter().enumerate();
        group
            .map(|(i, p)| (format!("group[{i}]"), p.as_str()))
            .collect()
    }

    /// When the first kill is due: `from`, or one `every` in if `from` is 0.
    fn first(&self) -> SimTime {
        let from = if self.from.is_zero() {
            self.every
        } else {
            self.from
        };
        SimTime::ZERO.saturating_add(from)
    }
}

impl Validate for LeaderKillerConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.group.is_empty() {
            return Err(ConfigError::Empty {
                field: "group".into(),
            });
        }
        check_unique_names(self.group.iter().map(String::as_str), |i| {
            format!("group[{i}]")
        })?;
        nonzero("every", self.every.as_nanos())?;
        nonzero("down_for", self.down_for.as_nanos())?;
        if let Some(until) = self.until
            && until <= self.from
        {
            return Err(ConfigError::Invalid {
                field: "until".into(),
                reason: format!("{until} is not after from ({})", self.from),
            });
        }
        Ok(())
    }
}

#[derive(Clone, Copy)]
struct KillerMetrics {
    kills: CounterId,
    no_leader: CounterId,
    unelected: CounterId,
    time_to_elect: HistogramId,
}

/// See the module docs.
#[derive(Clone)]
pub struct LeaderKiller<M> {
    config: LeaderKillerConfig,
    observer: RaftWatch,
    metrics: Option<KillerMetrics>,
    /// When the latest kill was made, until its time to elect is recorded.
    killed_at: Option<SimTime>,
    _m: PhantomData<M>,
}

impl<M> LeaderKiller<M> {
    /// Validates `config`; `observer` is the one the group's members report to.
    pub fn new(config: LeaderKillerConfig, observer: RaftWatch) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(LeaderKiller {
            config,
            observer,
            metrics: None,
            killed_at: None,
            _m: PhantomData,
        })
    }

    pub fn config(&self) -> &LeaderKillerConfig {
        &self.config
    }

    pub fn observer(&self) -> RaftWatch {
        self.observer.clone()
    }
}

impl<M: Carry<Raft>> LeaderKiller<M> {
    fn over(&self, at: SimTime) -> bool {
        self.config
            .until
            .is_some_and(|u| at >= SimTime::ZERO.saturating_add(u))
    }

    fn tick(&mut self, ctx: &mut Ctx<'_, M>) {
        let m = self.metrics.expect("registered at start");
        if let Some(at) = self.killed_at.take() {
            let elected = self
                .observer
                .borrow()
                .first_leader_after(at)
                .map(|(t, _, _)| t);
            match elected {
                Some(t) => {
                    let d = t.saturating_duration_since(at);
                    ctx.metrics().record(m.time_to_elect, d.as_nanos());
                }
                None => ctx.metrics().inc(m.unelected),
            }
        }
        if self.over(ctx.now()) {
            return;
        }
        let victim = {
            let o = self.observer.borrow();
            o.leader().map(|(name, term)| (name.to_string(), term))
        };
        match victim.and_then(|(name, term)| ctx.lookup(&name).map(|id| (id, name, term))) {
            Some((id, name, term)) if self.config.group.contains(&name) => {
                ctx.trace_note(&format!("killing {name}, leader of term {term}"));
                ctx.metrics().inc(m.kills);
                ctx.kill(id, Some(self.config.down_for));
                self.killed_at = Some(ctx.now());
            }
            _ => ctx.metrics().inc(m.no_leader),
        }
        // The next kill, or after the last one the tick that measures it.
        let next = ctx.now().saturating_add(self.config.every);
        ctx.set_timer_at(next, M::wrap(Raft::Tick(RaftTick::Kill)));
    }
}

impl<M: Carry<Raft>> Actor<M> for LeaderKiller<M> {
    fn on_start(&mut self, ctx: &mut Ctx<'_, M>) {
        self.metrics = Some(KillerMetrics {
            kills: ctx.counter("kills_total"),
            no_leader: ctx.counter("no_leader_total"),
            unelected: ctx.counter("unelected_total"),
            time_to_elect: ctx.histogram("time_to_elect"),
        });
        // After a restart of the killer itself, the next tick on the same grid.
        let (first, every) = (self.config.first(), self.config.every.as_nanos());
        let mut at = first;
        if ctx.now() > first {
            let k = (ctx.now().as_nanos() - first.as_nanos()).div_ceil(every);
            at = SimTime::from_nanos(first.as_nanos().saturating_add(k.saturating_mul(every)));
        }
        if !self.over(at) {
            ctx.set_timer_at(at, M::wrap(Raft::Tick(RaftTick::Kill)));
        }
    }

    fn on_message(&mut self, _ctx: &mut Ctx<'_, M>, _from: ActorId, _msg: M) {}

    fn on_timer(&mut self, ctx: &mut Ctx<'_, M>, msg: M) {
        if let Some(Raft::Tick(RaftTick::Kill)) = msg.unwrap() {
            self.tick(ctx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::rpc::from_ron;

    #[test]
    fn configs_parse_with_defaults_and_name_bad_fields() {
        let c: LeaderKillerConfig = from_ron(r#"(group: ["a", "b", "c"])"#).unwrap();
        assert_eq!(c, LeaderKillerConfig::new(&["a", "b", "c"]));
        assert_eq!(c.every, SimDuration::from_secs(15));
        assert_eq!(c.down_for, SimDuration::from_secs(5));
        assert_eq!(c.first(), SimTime::from_nanos(15_000_000_000));
        let c: LeaderKillerConfig =
            from_ron(r#"(group: ["a"], from: "10s", until: Some("1m"), every: "2s")"#).unwrap();
        assert_eq!(c.first(), SimTime::from_nanos(10_000_000_000));
        let bad = |ron: &str| {
            from_ron::<LeaderKillerConfig>(ron)
                .unwrap_err()
                .field()
                .map(String::from)
        };
        assert_eq!(bad(r#"(group: [])"#), Some("group".into()));
        assert_eq!(bad(r#"(group: ["a", "a"])"#), Some("group[1]".into()));
        assert_eq!(bad(r#"(group: ["a"], every: "0s")"#), Some("every".into()));
        assert_eq!(
            bad(r#"(group: ["a"], down_for: "0s")"#),
            Some("down_for".into())
        );
        assert_eq!(
            bad(r#"(group: ["a"], from: "1m", until: Some("1m"))"#),
            Some("until".into())
        );
        assert!(from_ron::<LeaderKillerConfig>(r#"(group: ["a"], period: "1s")"#).is_err());
    }
}
