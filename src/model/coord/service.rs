//! The family's servers and the register's clients: a [`LockService`] (a single Redis
//! instance used as a lock), a [`FencedStorage`] (the side-effect store), a [`RegisterStore`]
//! (one replica's merge rule, seen from a single store) and [`RegisterClient`]s doing
//! read-modify-write cycles against it.
//!
//! The servers answer at once (a Redis `SET` or a payment API call is sub-millisecond next to
//! the TTLs and pauses that matter here); the network between hosts adds its latency.
//!
//! **Crashes.** The lock table and the stores live in [`Durable`] cells: Redis with an
//! append-only file, a payment provider's ledger. (A Redis without persistence forgets its
//! locks on restart, which is another way to get two holders; it is not modelled here.)

use std::marker::PhantomData;

use serde::{Deserialize, Serialize};

use super::clock::Hlc;
use super::fenced::{ClaimOutcome, EffectOutcome, FencePolicy, FencedStore};
use super::lock::{Acquire, LockTable, NotHeld};
use super::msg::{Lease, LockResult, Tick};
use super::register::{Applied, Merge, Register, RegisterWrite, Stamp, Version};
use crate::actor::{Actor, ActorId, Ctx, Durable};
use crate::dist::{Dist, Sampler, Scalar};
use crate::engine::time::SimDuration;
use crate::model::Carry;
use crate::model::rpc::{ConfigError, Validate, compile, nonzero};

/// Adds one to this actor's counter `name`.
pub(super) fn bump<M: crate::actor::Message>(ctx: &mut Ctx<'_, M>, name: &str) {
    let c = ctx.counter(name);
    ctx.metrics().inc(c);
}

/// Resolves an actor name from inside a handler; a missing name is a wiring bug.
pub(super) fn resolve<M: crate::actor::Message>(
    ctx: &Ctx<'_, M>,
    field: &str,
    name: &str,
) -> ActorId {
    match ctx.lookup(name) {
        Some(id) => id,
        None => panic!(
            "{}: {field} names `{name}`, but no actor has that name",
            ctx.name()
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Lock service
// ---------------------------------------------------------------------------------------------

/// A [`LockService`]'s config. TTLs come with each request, as with `SET ... PX`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockServiceConfig {
    /// Hand out fencing tokens (strictly increasing per lock) with each grant. Default true.
    /// Plain Redis has none; false sends fencing token 0 with every grant, and a fencing
    /// store can then not tell an old holder from a new one.
    #[serde(default = "yes")]
    pub fencing_tokens: bool,
}

fn yes() -> bool {
    true
}

impl Default for LockServiceConfig {
    fn default() -> Self {
        LockServiceConfig {
            fencing_tokens: true,
        }
    }
}

impl Validate for LockServiceConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }
}

/// A single-instance lock service: a [`LockTable`] judged by this host's clock.
///
/// Metrics: `grants_total`, `held_total` (acquires refused), `renewals_total`,
/// `renewals_lost_total`, `releases_total`, `releases_lost_total`.
pub struct LockService<M> {
    config: LockServiceConfig,
    table: Durable<LockTable>,
    _m: PhantomData<M>,
}

impl<M> Clone for LockService<M> {
    fn clone(&self) -> Self {
        LockService {
            config: self.config.clone(),
            table: self.table.clone(),
            _m: PhantomData,
        }
    }
}

impl<M> LockService<M> {
    pub fn new(config: LockServiceConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(LockService {
            config,
            table: Durable::new(LockTable::new()),
            _m: PhantomData,
        })
    }

    /// The table, shared with every incarnation (for tests and checks).
    pub fn table(&self) -> Durable<LockTable> {
        self.table.clone()
    }
}

impl<M: Carry<Lease>> Actor<M> for LockService<M> {
    fn on_message(&mut self, ctx: &mut Ctx<'_, M>, _from: ActorId, msg: M) {
        let Some(msg) = msg.unwrap() else { return };
        // Expiry is judged by the service's own clock, as Redis judges PX.
        let now = ctx.local_clock();
        let (id, reply_to, lock, result) = match msg {
            Lease::Acquire {
                id,
                reply_to,
                lock,
                ttl,
            } => {
                let holder = reply_to.0;
                let r = self.table.borrow_mut().acquire(lock, holder, ttl, now);
                let result = match r {
                    Acquire::Granted { token, .. } => {
                        bump(ctx, "grants_total");
                        let fence = if self.config.fencing_tokens { token } else { 0 };
                        LockResult::Granted { token, fence }
                    }
                    Acquire::Held { .. } => {
                        bump(ctx, "held_total");
                        LockResult::Held
                    }
                    Acquire::Done => LockResult::Done,
                };
                (id, reply_to, lock, result)
            }
            Lease::Renew {
                id,
                reply_to,
                lock,
                token,
                ttl,
            } => {
                let r = self.table.borrow_mut().renew(lock, token, ttl, now);
                let result = match r {
                    Ok(_) => {
                        bump(ctx, "renewals_total");
                        LockResult::Renewed
                    }
                    Err(e) => {
                        bump(ctx, "renewals_lost_total");
                        not_held(e)
                    }
                };
                (id, reply_to, lock, result)
            }
            Lease::Release {
                id,
                reply_to,
                lock,
                token,
                done,
            } => {
                let r = self.table.borrow_mut().release(lock, token, done, now);
                let result = match r {
                    Ok(()) => {
                        bump(ctx, "releases_total");
                        LockResult::Released
                    }
                    Err(e) => {
                        bump(ctx, "releases_lost_total");
                        not_held(e)
                    }
                };
                (id, reply_to, lock, result)
            }
            _ => return,
        };
        ctx.send(reply_to, M::wrap(Lease::LockReply { id, lock, result }));
    }
}

fn not_held(e: NotHeld) -> LockResult {
    match e {
        NotHeld::Lost => LockResult::Lost,
        NotHeld::Done => LockResult::Done,
    }
}

// ---------------------------------------------------------------------------------------------
// Fenced storage
// ---------------------------------------------------------------------------------------------

/// A [`FencedStorage`]'s config: `(fencing: true, idempotency: false)`; both default false
/// (the baseline: a card network charges whatever it is sent).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FencedStorageConfig {
    #[serde(default)]
    pub fencing: bool,
    #[serde(default)]
    pub idempotency: bool,
}

impl Validate for FencedStorageConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }
}

/// The side-effect store as an actor, around a durable [`FencedStore`].
///
/// Metrics: `writes_total`, `applied_total`, `rejected_stale_total`, `deduplicated_total`,
/// `duplicate_effects_total` (an applied effect for a job that already had one: the double
/// charge), `stale_accepted_total` (a write applied with a token older than one the store had
/// seen for its resource: what fencing refuses), `claims_total`, `claims_stale_total`, and
/// the gauge `jobs_done`.
pub struct FencedStorage<M> {
    store: Durable<FencedStore>,
    _m: PhantomData<M>,
}

impl<M> Clone for FencedStorage<M> {
    fn clone(&self) -> Self {
        FencedStorage {
            store: self.store.clone(),
            _m: PhantomData,
        }
    }
}

impl<M> FencedStorage<M> {
    pub fn new(config: FencedStorageConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let policy = FencePolicy {
            fencing: config.fencing,
            idempotency: config.idempotency,
        };
        Ok(FencedStorage {
            store: Durable::new(FencedStore::new(policy)),
            _m: PhantomData,
        })
    }

    /// The store with its audit log, shared with every incarnation.
    pub fn store(&self) -> Durable<FencedStore> {
        self.store.clone()
    }
}

impl<M: Carry<Lease>> Actor<M> for FencedStorage<M> {
    fn on_start(&mut self, ctx: &mut Ctx<'_, M>) {
        // Registered up front so a run without writes still reports zeros.
        for name in [
            "writes_total",
            "applied_total",
            "rejected_stale_total",
            "deduplicated_total",
            "duplicate_effects_total",
            "stale_accepted_total",
            "claims_total",
            "claims_stale_total",
        ] {
            ctx.counter(name);
        }
        let g = ctx.gauge("jobs_done");
        let done = self.store.borrow().jobs_done() as f64;
        ctx.metrics().set(g, done);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, M>, _from: ActorId, msg: M) {
        let (id, reply_to, write) = match msg.unwrap() {
            Some(Lease::Effect {
                id,
                reply_to,
                write,
            }) => (id, reply_to, write),
            Some(Lease::Claim {
                id,
                reply_to,
                resource,
                token,
                job,
            }) => {
                let outcome = self.store.borrow_mut().claim(resource, token, job);
                bump(ctx, "claims_total");
                if let ClaimOutcome::Stale { .. } = outcome {
                    bump(ctx, "claims_stale_total");
                }
                ctx.send(reply_to, M::wrap(Lease::ClaimReply { id, outcome }));
                return;
            }
            _ => return,
        };
        let stale_before = self.store.borrow().stale_accepted();
        let outcome = self.store.borrow_mut().write(write);
        bump(ctx, "writes_total");
        if self.store.borrow().stale_accepted() > stale_before {
            bump(ctx, "stale_accepted_total");
        }
        match outcome {
            EffectOutcome::Applied { duplicate } => {
                bump(ctx, "applied_total");
                if duplicate {
                    bump(ctx, "duplicate_effects_total");
                }
            }
            EffectOutcome::Stale { .. } => bump(ctx, "rejected_stale_total"),
            EffectOutcome::Deduplicated => bump(ctx, "deduplicated_total"),
        }
        let g = ctx.gauge("jobs_done");
        let done = self.store.borrow().jobs_done() as f64;
        ctx.metrics().set(g, done);
        ctx.send(reply_to, M::wrap(Lease::EffectReply { id, outcome }));
    }
}

// ---------------------------------------------------------------------------------------------
// Register store
// ---------------------------------------------------------------------------------------------

/// A [`RegisterStore`]'s config: the merge rule, `LwwWall` (default), `LwwHlc` or `Sequence`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterStoreConfig {
    #[serde(default)]
    pub merge: Merge,
}

impl Validate for RegisterStoreConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }
}

/// A key-value register applying each write by its merge rule.
///
/// Its arrival order is the real order of writes (it is one serial store), so it can tell,
/// for each write it drops, whether that write came later than the one it lost to (always,
/// here: the loser arrives after the winner was applied) and whether it *causally* followed
/// it (its writer had read the winner, or had written it itself).
///
/// Metrics: `writes_total`, `won_total`, `lost_total` (acknowledged and silently dropped by
/// LWW: a later write lost to an earlier one), `lost_causal_total` (of those, the loser had
/// read the winner or written it: the property HLC guarantees never happens),
/// `conflicts_total` (sequence numbers: visible rejections), `reads_total`.
pub struct RegisterStore<M> {
    register: Durable<Register>,
    _m: PhantomData<M>,
}

impl<M> Clone for RegisterStore<M> {
    fn clone(&self) -> Self {
        RegisterStore {
            register: self.register.clone(),
            _m: PhantomData,
        }
    }
}

impl<M> RegisterStore<M> {
    pub fn new(config: RegisterStoreConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(RegisterStore {
            register: Durable::new(Register::new(config.merge)),
            _m: PhantomData,
        })
    }

    pub fn register(&self) -> Durable<Register> {
        self.register.clone()
    }
}

impl<M: Carry<Lease>> Actor<M> for RegisterStore<M> {
    fn on_start(&mut self, ctx: &mut Ctx<'_, M>) {
        for name in [
            "writes_total",
            "won_total",
            "lost_total",
            "lost_causal_total",
            "conflicts_total",
            "reads_total",
        ] {
            ctx.counter(name);
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, M>, _from: ActorId, msg: M) {
        match msg.unwrap() {
            Some(Lease::Read { id, reply_to, key }) => {
                bump(ctx, "reads_total");
                let current = self.register.borrow().read(key);
                ctx.send(reply_to, M::wrap(Lease::ReadReply { id, key, current }));
            }
            Some(Lease::Write {
                id,
                reply_to,
                write,
                read,
                prev,
            }) => {
                bump(ctx, "writes_total");
                let outcome = self.register.borrow_mut().apply(write);
                match outcome {
                    Applied::Won { .. } => bump(ctx, "won_total"),
                    Applied::Lost { to } => {
                        bump(ctx, "lost_total");
                        if read == Some(to) || prev == Some(to) {
                            bump(ctx, "lost_causal_total");
                        }
                    }
                    Applied::Conflict { .. } => bump(ctx, "conflicts_total"),
                }
                ctx.send(reply_to, M::wrap(Lease::WriteReply { id, outcome }));
            }
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Register client
// ---------------------------------------------------------------------------------------------

/// A [`RegisterClient`]'s config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterClientConfig {
    /// The store's actor name.
    pub store: String,
    /// How this client stamps its writes (its wall clock, or its HLC). The store's rule
    /// decides how stamps are compared, so scenarios set both alike; nothing checks that they
    /// agree. Default `LwwWall`.
    #[serde(default)]
    pub merge: Merge,
    /// Keys `0..keys` are written, each cycle picking one uniformly; >= 1. Default 1.
    #[serde(default = "one")]
    pub keys: u64,
    /// Time between the end of one cycle and the start of the next. Default `Exp(mean: 1s)`.
    /// An **assumption**: a user editing a profile every second or so.
    #[serde(default = "default_think")]
    pub think: Dist,
    /// Stop after this many cycles; None unbounded.
    #[serde(default)]
    pub limit: Option<u64>,
}

fn one() -> u64 {
    1
}

fn default_think() -> Dist {
    Dist::Exp {
        mean: Scalar::duration(SimDuration::from_secs(1)),
    }
}

impl RegisterClientConfig {
    pub fn targets(&self) -> Vec<(String, &str)> {
        vec![("store".to_string(), self.store.as_str())]
    }
}

impl Validate for RegisterClientConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        nonzero("keys", self.keys)?;
        let think = compile("think", &self.think)?;
        if !think.dist().is_duration() {
            return Err(ConfigError::Invalid {
                field: "think".into(),
                reason: "a think time is a duration (write \"1s\", not 1)".into(),
            });
        }
        if self.limit == Some(0) {
            return Err(ConfigError::Zero {
                field: "limit".into(),
            });
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug)]
enum Phase {
    Thinking,
    Reading { id: u64 },
    Writing { id: u64 },
}

/// A client doing read-modify-write cycles: read a key, then write a new value stamped by
/// its merge rule: its local clock (`LwwWall`), its HLC after observing the read's stamp
/// (`LwwHlc`), or the version it read (`Sequence`, retrying from the read on a conflict).
///
/// Metrics: `cycles_total`, `writes_total`, `acked_total`, `lost_total` (the store kept
/// another value: the client is told its write "succeeded" in a real LWW system, so this is
/// the simulator's view), `conflicts_total`, `retries_total`.
pub struct RegisterClient<M> {
    config: RegisterClientConfig,
    think: Sampler,
    store: Option<ActorId>,
    hlc: Hlc,
    next_id: u64,
    writes: u64,
    cycles: u64,
    phase: Phase,
    prev: Option<u64>,
    /// The key of the cycle in progress.
    key: u64,
    _m: PhantomData<M>,
}

impl<M> Clone for RegisterClient<M> {
    fn clone(&self) -> Self {
        RegisterClient {
            config: self.config.clone(),
            think: self.think.clone(),
            store: self.store,
            hlc: self.hlc,
            next_id: self.next_id,
            writes: self.writes,
            cycles: self.cycles,
            phase: self.phase,
            prev: self.prev,
            key: self.key,
            _m: PhantomData,
        }
    }
}

impl<M> RegisterClient<M> {
    pub fn new(config: RegisterClientConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let think = compile("think", &config.think)?;
        Ok(RegisterClient {
            config,
            think,
            store: None,
            hlc: Hlc::new(),
            next_id: 0,
            writes: 0,
            cycles: 0,
            phase: Phase::Thinking,
            prev: None,
            key: 0,
            _m: PhantomData,
        })
    }
}

impl<M: Carry<Lease>> RegisterClient<M> {
    fn think(&mut self, ctx: &mut Ctx<'_, M>) {
        self.phase = Phase::Thinking;
        if self.config.limit.is_some_and(|l| self.cycles >= l) {
            return;
        }
        let d = ctx.sample_duration(&self.think);
        ctx.set_timer(d, M::wrap(Lease::Tick(Tick::Client { seq: self.cycles })));
    }

    fn read(&mut self, ctx: &mut Ctx<'_, M>, key: u64) {
        self.next_id += 1;
        let id = self.next_id;
        self.phase = Phase::Reading { id };
        let to = self.store.expect("resolved at start");
        let me = ctx.me();
        ctx.send(
            to,
            M::wrap(Lease::Read {
                id,
                reply_to: me,
                key,
            }),
        );
    }

    fn write(&mut self, ctx: &mut Ctx<'_, M>, key: u64, current: Option<Version>) {
        let pt = ctx.local_clock();
        let node = ctx.me().0;
        let stamp = match self.config.merge {
            Merge::LwwWall | Merge::Sequence => Stamp {
                time: pt.as_nanos(),
                count: 0,
                node,
            },
            Merge::LwwHlc => {
                // Receive the read's stamp, then stamp the write as a send event.
                if let Some(v) = current {
                    let m = super::clock::HlcStamp {
                        l: v.stamp.time,
                        c: v.stamp.count,
                    };
                    self.hlc.observe(pt, m);
                }
                let s = self.hlc.now(pt);
                Stamp {
                    time: s.l,
                    count: s.c,
                    node,
                }
            }
        };
        self.writes += 1;
        // Unique in a run: the actor index in the high bits.
        let write_id = (u64::from(node) << 40) | self.writes;
        let write = RegisterWrite {
            key,
            value: self.writes,
            write: write_id,
            stamp,
            expected: current.map_or(0, |v| v.version),
        };
        self.next_id += 1;
        let id = self.next_id;
        self.phase = Phase::Writing { id };
        let to = self.store.expect("resolved at start");
        let me = ctx.me();
        let read = current.map(|v| v.write);
        let prev = self.prev;
        self.prev = Some(write_id);
        bump(ctx, "writes_total");
        ctx.send(
            to,
            M::wrap(Lease::Write {
                id,
                reply_to: me,
                write,
                read,
                prev,
            }),
        );
    }
}

impl<M: Carry<Lease>> Actor<M> for RegisterClient<M> {
    fn on_start(&mut self, ctx: &mut Ctx<'_, M>) {
        self.store = Some(resolve(ctx, "store", &self.config.store));
        for name in [
            "cycles_total",
            "writes_total",
            "acked_total",
            "lost_total",
            "conflicts_total",
            "retries_total",
        ] {
            ctx.counter(name);
        }
        self.think(ctx);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, M>, _from: ActorId, msg: M) {
        match (msg.unwrap(), self.phase) {
            (Some(Lease::ReadReply { id, key, current }), Phase::Reading { id: want, .. })
                if id == want =>
            {
                self.write(ctx, key, current);
            }
            (Some(Lease::WriteReply { id, outcome }), Phase::Writing { id: want })
                if id == want =>
            {
                match outcome {
                    Applied::Won { .. } => bump(ctx, "acked_total"),
                    Applied::Lost { .. } => {
                        bump(ctx, "acked_total");
                        bump(ctx, "lost_total");
                    }
                    Applied::Conflict { .. } => {
                        bump(ctx, "conflicts_total");
                        bump(ctx, "retries_total");
                        // Optimistic concurrency: read again and retry the cycle's write.
                        let key = self.key;
                        self.read(ctx, key);
                        return;
                    }
                }
                bump(ctx, "cycles_total");
                self.think(ctx);
            }
            _ => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, M>, msg: M) {
        if let Some(Lease::Tick(Tick::Client { .. })) = msg.unwrap()
            && let Phase::Thinking = self.phase
        {
            self.cycles += 1;
            let key = if self.config.keys == 1 {
                0
            } else {
                rand::RngExt::random_range(ctx.rng(), 0..self.config.keys)
            };
            self.key = key;
            self.read(ctx, key);
        }
    }
}
