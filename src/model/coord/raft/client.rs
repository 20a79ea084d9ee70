//! The [`RaftClient`]: proposes entries to a Raft group at a constant rate, to whichever member
//! it believes leads, and keeps the entries the group acknowledged as committed.
//!
//! It starts by believing the first member of `group` leads. A `NotLeader` answer naming a
//! leader redirects it there at once — unless it names the member this entry's last attempt
//! timed out on (a follower that has not noticed yet that its leader died), which counts as
//! naming none; one naming none, or a `Dropped` answer, makes it ask the same member again
//! after `retry_backoff`; no answer within `timeout` makes it try the next member in the
//! list (once per unresponsive member, however many entries were waiting on it). An entry is retried until it is acknowledged, so it may be committed more than
//! once (at-least-once, as with etcd clients); each entry's payload is unique (the client's
//! actor id in the high 32 bits, its sequence number in the low), so duplicates are visible.
//! At most `max_outstanding` entries are in flight; an arrival beyond that is skipped and
//! counted.
//!
//! **Metrics** (owner = the client's name): `proposed_total` (new entries), `acked_total`,
//! `skipped_total`, `redirects_total`, `timeouts_total`, `dropped_total`, and the histogram
//! `commit_latency` (ns, from an entry's first send to its acknowledgement).

use std::collections::BTreeMap;
use std::marker::PhantomData;

use serde::{Deserialize, Serialize};

use super::node::{Propose, ProposeError, ProposeReply, Raft, RaftTick};
use crate::actor::{Actor, ActorId, Ctx, Durable};
use crate::engine::time::{SimDuration, SimTime};
use crate::metrics::{CounterId, HistogramId};
use crate::model::Carry;
use crate::model::rpc::{ConfigError, Rate, Validate, check_unique_names, nonzero};

/// How long a client waits for an answer by default: 1 s. An **assumption** of the order of
/// etcd's election timeout, so that a client gives up on a dead leader about when the group
/// does.
pub const DEFAULT_CLIENT_TIMEOUT: SimDuration = SimDuration::from_secs(1);
/// The pause before retrying after a refusal that names no leader: 100 ms, an **assumption**
/// (one heartbeat interval: by then a new leader may have made itself known).
pub const DEFAULT_RETRY_BACKOFF: SimDuration = SimDuration::from_millis(100);

fn default_timeout() -> SimDuration {
    DEFAULT_CLIENT_TIMEOUT
}
fn default_retry_backoff() -> SimDuration {
    DEFAULT_RETRY_BACKOFF
}
fn default_max_outstanding() -> u32 {
    100
}

/// A [`RaftClient`]'s config: `(group: ["n0", "n1", "n2"], rate: "10/s")`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RaftClientConfig {
    /// The group's members by actor name.
    pub group: Vec<String>,
    /// New entries, at a constant rate.
    pub rate: Rate,
    /// Default 1 s.
    #[serde(default = "default_timeout")]
    pub timeout: SimDuration,
    /// Default 100 ms.
    #[serde(default = "default_retry_backoff")]
    pub retry_backoff: SimDuration,
    /// Entries in flight at most; default 100.
    #[serde(default = "default_max_outstanding")]
    pub max_outstanding: u32,
    /// Stop after this many new entries; default None (never).
    #[serde(default)]
    pub limit: Option<u64>,
}

impl RaftClientConfig {
    /// The actor names this config refers to, with their field paths.
    pub fn targets(&self) -> Vec<(String, &str)> {
        let group = self.group.iter().enumerate();
        group
            .map(|(i, p)| (format!("group[{i}]"), p.as_str()))
            .collect()
    }
}

impl Validate for RaftClientConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.group.is_empty() {
            return Err(ConfigError::Empty {
                field: "group".into(),
            });
        }
        check_unique_names(self.group.iter().map(String::as_str), |i| {
            format!("group[{i}]")
        })?;
        nonzero("timeout", self.timeout.as_nanos())?;
        nonzero("retry_backoff", self.retry_backoff.as_nanos())?;
        nonzero("max_outstanding", u64::from(self.max_outstanding))?;
        Ok(())
    }
}

/// An entry the group acknowledged: its payload, its index, and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Acked {
    pub data: u64,
    pub index: u64,
    pub at: SimTime,
}

#[derive(Clone, Copy, Debug)]
struct InFlight {
    data: u64,
    first_sent: SimTime,
    attempt: u32,
    /// The member its latest timed-out attempt went to.
    timed_out_on: Option<ActorId>,
    /// The member (index) its current attempt went to.
    sent_to: usize,
}

#[derive(Clone, Copy)]
struct ClientMetrics {
    proposed: CounterId,
    acked: CounterId,
    skipped: CounterId,
    redirects: CounterId,
    timeouts: CounterId,
    dropped: CounterId,
    latency: HistogramId,
}

/// See the module docs.
#[derive(Clone)]
pub struct RaftClient<M> {
    config: RaftClientConfig,
    acked: Durable<Vec<Acked>>,
    members: Vec<ActorId>,
    /// The member it believes leads, as an index into `members`.
    leader: usize,
    in_flight: BTreeMap<u64, InFlight>,
    next_seq: u64,
    proposed: u64,
    metrics: Option<ClientMetrics>,
    _m: PhantomData<M>,
}

impl<M> RaftClient<M> {
    pub fn new(config: RaftClientConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(RaftClient {
            config,
            acked: Durable::new(Vec::new()),
            members: Vec::new(),
            leader: 0,
            in_flight: BTreeMap::new(),
            next_seq: 0,
            proposed: 0,
            metrics: None,
            _m: PhantomData,
        })
    }

    /// The acknowledged entries, in acknowledgement order (shared by clones; durable).
    pub fn acked(&self) -> Durable<Vec<Acked>> {
        self.acked.clone()
    }
}

impl<M: Carry<Raft>> RaftClient<M> {
    fn m(&self) -> ClientMetrics {
        self.metrics.expect("registered at start")
    }

    fn send(&mut self, ctx: &mut Ctx<'_, M>, id: u64) {
        let target = self.leader;
        let Some(f) = self.in_flight.get_mut(&id) else {
            return;
        };
        f.sent_to = target;
        let f = *f;
        let to = self.members[target];
        let p = Propose {
            id,
            reply_to: ctx.me(),
            data: f.data,
        };
        ctx.send(to, M::wrap(Raft::Propose(p)));
        let tick = RaftTick::Timeout {
            id,
            attempt: f.attempt,
        };
        ctx.set_timer(self.config.timeout, M::wrap(Raft::Tick(tick)));
    }

    /// Moves entry `id` to its next attempt; false if it is no longer in flight or `attempt`
    /// is not its current one (an old attempt's timer or answer).
    fn next_attempt(&mut self, id: u64, attempt: u32) -> bool {
        match self.in_flight.get_mut(&id) {
            Some(f) if f.attempt == attempt => {
                f.attempt += 1;
                true
            }
            _ => false,
        }
    }

    fn arrive(&mut self, ctx: &mut Ctx<'_, M>) {
        let m = self.m();
        if self.config.limit.is_some_and(|l| self.proposed >= l) {
            return;
        }
        self.proposed += 1;
        if self.in_flight.len() >= self.config.max_outstanding as usize {
            ctx.metrics().inc(m.skipped);
        } else {
            ctx.metrics().inc(m.proposed);
            let id = self.next_seq;
            self.next_seq += 1;
            let data = (u64::from(ctx.me().0) << 32) | (id & 0xffff_ffff);
            let f = InFlight {
                data,
                first_sent: ctx.now(),
                attempt: 0,
                timed_out_on: None,
                sent_to: 0,
            };
            self.in_flight.insert(id, f);
            self.send(ctx, id);
        }
        let gap = libm::round(self.config.rate.gap_nanos()).max(1.0) as u64;
        let tick = M::wrap(Raft::Tick(RaftTick::Arrive));
        ctx.set_timer(SimDuration::from_nanos(gap), tick);
    }

    fn reply(&mut self, ctx: &mut Ctx<'_, M>, from: ActorId, r: ProposeReply) {
        let m = self.m();
        let Some(f) = self.in_flight.get(&r.id).copied() else {
            return;
        };
        match r.result {
            Ok(index) => {
                self.in_flight.remove(&r.id);
                let acked = Acked {
                    data: f.data,
                    index,
                    at: ctx.now(),
                };
                self.acked.borrow_mut().push(acked);
                ctx.metrics().inc(m.acked);
                let latency = ctx.now().saturating_duration_since(f.first_sent);
                ctx.metrics().record(m.latency, latency.as_nanos());
                if let Some(i) = self.members.iter().position(|&a| a == from) {
                    self.leader = i;
                }
            }
            Err(e) => {
                // Only the answer to the current attempt moves the entry on: a refusal from a
                // member it was sent to before is stale.
                if from != self.members[f.sent_to] || !self.next_attempt(r.id, f.attempt) {
                    return;
                }
                match e {
                    ProposeError::NotLeader {
                        leader: Some(leader),
                    } if self.members.contains(&leader) && f.timed_out_on != Some(leader) => {
                        ctx.metrics().inc(m.redirects);
                        self.leader = self.members.iter().position(|&a| a == leader).unwrap();
                        self.send(ctx, r.id);
                    }
                    ProposeError::NotLeader { .. } | ProposeError::Dropped => {
                        if e == ProposeError::Dropped {
                            ctx.metrics().inc(m.dropped);
                        }
                        let tick = RaftTick::Retry {
                            id: r.id,
                            attempt: f.attempt + 1,
                        };
                        ctx.set_timer(self.config.retry_backoff, M::wrap(Raft::Tick(tick)));
                    }
                }
            }
        }
    }
}

impl<M: Carry<Raft>> Actor<M> for RaftClient<M> {
    fn on_start(&mut self, ctx: &mut Ctx<'_, M>) {
        self.metrics = Some(ClientMetrics {
            proposed: ctx.counter("proposed_total"),
            acked: ctx.counter("acked_total"),
            skipped: ctx.counter("skipped_total"),
            redirects: ctx.counter("redirects_total"),
            timeouts: ctx.counter("timeouts_total"),
            dropped: ctx.counter("dropped_total"),
            latency: ctx.histogram("commit_latency"),
        });
        let me = ctx.name().to_string();
        self.members = (self.config.group.iter().enumerate())
            .map(|(i, p)| match ctx.lookup(p) {
                Some(id) => id,
                None => panic!("{me}: group[{i}] names `{p}`, but no actor has that name"),
            })
            .collect();
        self.arrive(ctx);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, M>, from: ActorId, msg: M) {
        if let Some(Raft::ProposeReply(r)) = msg.unwrap() {
            self.reply(ctx, from, r);
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, M>, msg: M) {
        let Some(Raft::Tick(tick)) = msg.unwrap() else {
            return;
        };
        match tick {
            RaftTick::Arrive => self.arrive(ctx),
            RaftTick::Timeout { id, attempt } => {
                if self.next_attempt(id, attempt) {
                    let t = self.m().timeouts;
                    ctx.metrics().inc(t);
                    let f = self.in_flight.get_mut(&id).expect("in flight");
                    f.timed_out_on = Some(self.members[f.sent_to]);
                    // Move on from the member that did not answer, unless an earlier timeout
                    // or an answer already did (many entries time out on one dead leader).
                    if self.leader == f.sent_to {
                        self.leader = (self.leader + 1) % self.members.len();
                    }
                    self.send(ctx, id);
                }
            }
            RaftTick::Retry { id, attempt } => {
                let current = self.in_flight.get(&id).map(|f| f.attempt);
                if current == Some(attempt) {
                    self.send(ctx, id);
                }
            }
            RaftTick::Election { .. }
            | RaftTick::Heartbeat { .. }
            | RaftTick::CheckQuorum { .. }
            | RaftTick::Kill => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::rpc::from_ron;

    #[test]
    fn client_configs_parse_and_name_bad_fields() {
        let c: RaftClientConfig = from_ron(r#"(group: ["a", "b"], rate: "10/s")"#).unwrap();
        assert_eq!(c.timeout, DEFAULT_CLIENT_TIMEOUT);
        assert_eq!(c.max_outstanding, 100);
        assert_eq!(c.limit, None);
        let bad = |ron: &str| {
            from_ron::<RaftClientConfig>(ron)
                .unwrap_err()
                .field()
                .map(String::from)
        };
        assert_eq!(bad(r#"(group: [], rate: "1/s")"#), Some("group".into()));
        assert_eq!(
            bad(r#"(group: ["a", "a"], rate: "1/s")"#),
            Some("group[1]".into())
        );
        assert_eq!(
            bad(r#"(group: ["a"], rate: "1/s", timeout: "0s")"#),
            Some("timeout".into())
        );
        assert_eq!(
            bad(r#"(group: ["a"], rate: "1/s", max_outstanding: 0)"#),
            Some("max_outstanding".into())
        );
        assert!(from_ron::<RaftClientConfig>(r#"(group: ["a"], rate: "0/s")"#).is_err());
    }
}
