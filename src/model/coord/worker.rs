//! A job worker holding a lease lock (L2): take job `j`'s lock, do the work, maybe stall in a
//! GC pause, then perform the job's side effect (charge the card) at the fenced storage.
//!
//! The cycle, per job `0..jobs` in order:
//!
//! 1. **Acquire** lock `j` with `ttl` (`SET j me NX PX ttl`). Held: retry after `retry`.
//!    Done (another worker completed it): next job. Granted: the worker now believes it holds
//!    the lease until `sent + ttl - drift` **by its own clock**, where `sent` is its clock when
//!    it sent the request and `drift = ttl * drift_factor + 2ms` (Redlock's validity rule,
//!    `validity = ttl - elapsed - drift`, with its default `CLOCK_DRIFT_FACTOR = 0.01`).
//! 2. **Claim** the job at the storage with the token: is it done already (the order paid)?
//!    Done: release with `done`, next job. Stale (fenced: a newer holder claimed it): back
//!    to the acquire. Fresh: go on. (A claim is what a careful job does first; with fencing
//!    it also fences the previous holder out, see [`super::fenced`].)
//! 3. **Work** for a time drawn from `work`. With `renew_every`, a heartbeat extends the
//!    lease meanwhile (Redisson's lock watchdog renews every `lockWatchdogTimeout / 3`).
//! 4. **Check** (with `check_lease`): if its clock says the lease is over, give up the
//!    attempt and acquire again. Most code never looks again after acquiring, so the default
//!    is false; and the check does not close the gap — whatever happens after it is not
//!    covered (Kleppmann's point).
//! 5. **Pause**: with probability `pause_probability` the process stops for a time drawn from
//!    `pause` (a stop-the-world GC right before the request goes out). Nothing runs in it,
//!    the heartbeat included. The engine's `Pause` fault stops the worker the same way, at
//!    any point of the cycle.
//! 6. **Write** the side effect with the lock's fencing token (and the job id as idempotency
//!    key with `idempotency_keys`). Applied or deduplicated: release with `done` and move on.
//!    Stale (fenced): the lock is someone else's; acquire again, which answers Held or Done.
//!
//! An acquire or claim unanswered within `lock_timeout` starts the attempt over; a charge
//! unanswered within `write_timeout` is sent again (with the same idempotency key, if any):
//! a lost reply is one more way to charge twice.
//!
//! The worker's own counters say what it can know: `writes_after_lease_total` counts writes
//! it sent when its own clock already said the lease was over. What only true time can say —
//! whether two workers believed they held the same lock at the same moment — is recorded in
//! a [`LeaseLog`], an oracle the worker writes to and never reads.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::rc::Rc;

use rand::RngExt;
use serde::{Deserialize, Serialize};

use super::fenced::{ClaimOutcome, EffectOutcome, EffectWrite};
use super::lock::{LockKey, Token};
use super::msg::{Lease, LockResult, Tick};
use super::service::{bump, resolve};
use crate::actor::{Actor, ActorId, Ctx, TimerId};
use crate::dist::{Dist, Sampler, Scalar};
use crate::engine::time::{SimDuration, SimTime};
use crate::model::Carry;
use crate::model::rpc::{ConfigError, Validate, compile, nonzero};

/// The lock TTL by default: 30 s, Redisson's `lockWatchdogTimeout` default (30000 ms), the
/// lease a Redisson lock gets when none is given. Redis `SET PX` itself has no default.
pub const DEFAULT_TTL: SimDuration = SimDuration::from_secs(30);

/// Redlock's clock drift factor (`CLOCK_DRIFT_FACTOR = 0.01` in the reference
/// implementations; the distlock page: "drift ... plus 2 milliseconds").
pub const DEFAULT_DRIFT_FACTOR: f64 = 0.01;

/// A [`Worker`]'s config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    /// The lock service's actor name.
    pub lock_service: String,
    /// The side-effect store's actor name.
    pub storage: String,
    /// Jobs `0..jobs`, each guarded by the lock of its number; >= 1. Default 1.
    #[serde(default = "one")]
    pub jobs: u64,
    /// The lease asked for. Default 30 s.
    #[serde(default = "default_ttl")]
    pub ttl: SimDuration,
    /// Renew the lease this often while holding it; must be below `ttl`. Default None.
    #[serde(default)]
    pub renew_every: Option<SimDuration>,
    /// How long a job's work takes (a duration distribution). Default `Const("1s")`, an
    /// **assumption** (a payment job: a few API calls).
    #[serde(default = "default_work")]
    pub work: Dist,
    /// The chance, per attempt, of a stop-the-world pause right before the write; in [0, 1].
    /// Default 0.
    #[serde(default)]
    pub pause_probability: f64,
    /// How long such a pause lasts. Default `Const("0s")`.
    #[serde(default = "default_pause")]
    pub pause: Dist,
    /// The wait before retrying a held lock (a duration distribution). Default
    /// `Uniform(low: "500ms", high: "1500ms")`: the distlock page asks for a random delay so
    /// that racing clients desynchronise; the range is an **assumption**.
    #[serde(default = "default_retry")]
    pub retry: Dist,
    /// Look at the lease by the local clock once the work is done, and give up if it is over.
    /// Default false.
    #[serde(default)]
    pub check_lease: bool,
    /// Redlock's drift allowance per unit of TTL, in [0, 1). Default 0.01.
    #[serde(default = "default_drift_factor")]
    pub drift_factor: f64,
    /// Send the job id as the write's idempotency key. Default false.
    #[serde(default)]
    pub idempotency_keys: bool,
    /// When the worker starts asking for locks, after its own start. Default 0.
    #[serde(default)]
    pub start: SimDuration,
    /// How long an acquire or a claim may go unanswered before the worker starts the attempt
    /// over. Default 2 s: Jedis's default socket timeout (`DEFAULT_TIMEOUT = 2000` ms).
    #[serde(default = "default_lock_timeout")]
    pub lock_timeout: SimDuration,
    /// How long a charge may go unanswered before the worker sends it again (with the same
    /// idempotency key, if any). Default 80 s: the Stripe client libraries' default read
    /// timeout.
    #[serde(default = "default_write_timeout")]
    pub write_timeout: SimDuration,
}

fn default_lock_timeout() -> SimDuration {
    SimDuration::from_secs(2)
}

fn default_write_timeout() -> SimDuration {
    SimDuration::from_secs(80)
}

fn one() -> u64 {
    1
}

fn default_ttl() -> SimDuration {
    DEFAULT_TTL
}

fn default_work() -> Dist {
    Dist::Const(Scalar::duration(SimDuration::from_secs(1)))
}

fn default_pause() -> Dist {
    Dist::Const(Scalar::duration(SimDuration::ZERO))
}

fn default_retry() -> Dist {
    Dist::Uniform {
        low: Scalar::duration(SimDuration::from_millis(500)),
        high: Scalar::duration(SimDuration::from_millis(1500)),
    }
}

fn default_drift_factor() -> f64 {
    DEFAULT_DRIFT_FACTOR
}

impl WorkerConfig {
    /// The actor names this config refers to, with their field paths.
    pub fn targets(&self) -> Vec<(String, &str)> {
        vec![
            ("lock_service".to_string(), self.lock_service.as_str()),
            ("storage".to_string(), self.storage.as_str()),
        ]
    }

    /// The lease the worker believes it has after asking for `ttl`.
    pub fn validity(&self) -> SimDuration {
        let drift = self
            .ttl
            .mul_f64(self.drift_factor)
            .unwrap_or(SimDuration::MAX)
            .saturating_add(SimDuration::from_millis(2));
        self.ttl.saturating_sub(drift)
    }
}

fn duration_dist(field: &str, dist: &Dist) -> Result<Sampler, ConfigError> {
    let s = compile(field, dist)?;
    if !s.dist().is_duration() {
        return Err(ConfigError::Invalid {
            field: field.into(),
            reason: "must be a duration distribution (write \"1s\", not 1)".into(),
        });
    }
    Ok(s)
}

impl Validate for WorkerConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        nonzero("jobs", self.jobs)?;
        nonzero("ttl", self.ttl.as_nanos())?;
        nonzero("lock_timeout", self.lock_timeout.as_nanos())?;
        nonzero("write_timeout", self.write_timeout.as_nanos())?;
        if let Some(r) = self.renew_every {
            nonzero("renew_every", r.as_nanos())?;
            if r >= self.ttl {
                return Err(ConfigError::Invalid {
                    field: "renew_every".into(),
                    reason: format!(
                        "{r} is not below the ttl {}: the lease would lapse between renewals",
                        self.ttl
                    ),
                });
            }
        }
        duration_dist("work", &self.work)?;
        duration_dist("pause", &self.pause)?;
        duration_dist("retry", &self.retry)?;
        if !(0.0..=1.0).contains(&self.pause_probability) {
            return Err(ConfigError::Invalid {
                field: "pause_probability".into(),
                reason: format!("{} is not in [0, 1]", self.pause_probability),
            });
        }
        if !(0.0..1.0).contains(&self.drift_factor) {
            return Err(ConfigError::Invalid {
                field: "drift_factor".into(),
                reason: format!("{} is not in [0, 1)", self.drift_factor),
            });
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The oracle
// ---------------------------------------------------------------------------------------------

/// One grant as its holder lived it, in true time: from the grant's arrival to the moment
/// its belief ended — its own clock passed its lease, it released, or it learned the lease was
/// lost. Where the end comes from the clock, it is extrapolated at the holder's last event
/// (exact unless the clock drifts or steps after that).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hold {
    pub worker: ActorId,
    pub lock: LockKey,
    pub token: Token,
    pub from: SimTime,
    pub until: SimTime,
}

/// Instrumentation shared by the workers of one run: every [`Hold`]. Nothing in the
/// simulation reads it.
#[derive(Clone, Debug, Default)]
pub struct LeaseLog(Rc<RefCell<Vec<Hold>>>);

impl LeaseLog {
    pub fn new() -> Self {
        LeaseLog::default()
    }

    pub fn holds(&self) -> Vec<Hold> {
        self.0.borrow().clone()
    }

    fn push(&self, h: Hold) -> usize {
        let mut v = self.0.borrow_mut();
        v.push(h);
        v.len() - 1
    }

    fn end_by(&self, index: usize, at: SimTime) {
        let mut v = self.0.borrow_mut();
        let h = &mut v[index];
        h.until = h.until.min(at).max(h.from);
    }

    fn set_until(&self, index: usize, at: SimTime) {
        let mut v = self.0.borrow_mut();
        let h = &mut v[index];
        h.until = at.max(h.from);
    }
}

/// Pairs of holds of the same lock by different grants that overlap in true time, with the
/// length of the overlap: two workers that both believed they held the lock.
pub fn overlaps(holds: &[Hold]) -> Vec<(Hold, Hold, SimDuration)> {
    let mut out = Vec::new();
    for (i, a) in holds.iter().enumerate() {
        for b in &holds[i + 1..] {
            if a.lock != b.lock || a.token == b.token {
                continue;
            }
            let from = a.from.max(b.from);
            let until = a.until.min(b.until);
            if until > from {
                out.push((*a, *b, until.saturating_duration_since(from)));
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The actor
// ---------------------------------------------------------------------------------------------

const RETRY: u32 = 0;
const WORK_DONE: u32 = 1;
const PAUSE_OVER: u32 = 2;
const RENEW: u32 = 3;
/// A request's answer is overdue; the timer's `seq` is the request's id.
const TIMEOUT: u32 = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting to (re)try job `job`'s lock.
    Waiting,
    Acquiring {
        id: u64,
        sent: SimTime,
    },
    Claiming {
        id: u64,
    },
    Working,
    Paused,
    Writing {
        id: u64,
    },
    Finished,
}

#[derive(Clone, Copy, Debug)]
struct Holding {
    /// The grant's identity, for renew and release.
    token: Token,
    /// The fencing token sent with claims and writes.
    fence: Token,
    /// By this worker's clock.
    valid_until: SimTime,
    hold: Option<usize>,
}

/// A job worker; see the module docs.
///
/// Metrics: `acquired_total`, `held_total`, `effects_total` (writes sent), `jobs_done_total`,
/// `fenced_total` (a claim or write refused as stale), `found_done_total` (the claim found
/// the job done), `deduplicated_total`, `lease_expired_before_write_total` (the check
/// caught it), `writes_after_lease_total`, `pauses_total`, `renewals_total`,
/// `renewals_lost_total`, `lock_timeouts_total` (an acquire or claim unanswered within
/// `lock_timeout`: the attempt starts over), `write_timeouts_total` (a charge unanswered
/// within `write_timeout`: sent again).
pub struct Worker<M> {
    config: WorkerConfig,
    work: Sampler,
    pause: Sampler,
    retry: Sampler,
    log: Option<LeaseLog>,
    lock_service: Option<ActorId>,
    storage: Option<ActorId>,
    job: u64,
    phase: Phase,
    holding: Option<Holding>,
    /// Bumped on every attempt, so timers of an abandoned attempt are ignored.
    attempt: u64,
    renew_timer: Option<TimerId>,
    renewing: Option<(u64, SimTime)>,
    next_id: u64,
    _m: PhantomData<M>,
}

impl<M> Clone for Worker<M> {
    fn clone(&self) -> Self {
        Worker {
            config: self.config.clone(),
            work: self.work.clone(),
            pause: self.pause.clone(),
            retry: self.retry.clone(),
            log: self.log.clone(),
            lock_service: self.lock_service,
            storage: self.storage,
            job: self.job,
            phase: self.phase,
            holding: self.holding,
            attempt: self.attempt,
            renew_timer: self.renew_timer,
            renewing: self.renewing,
            next_id: self.next_id,
            _m: PhantomData,
        }
    }
}

impl<M> Worker<M> {
    pub fn new(config: WorkerConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Worker {
            work: duration_dist("work", &config.work)?,
            pause: duration_dist("pause", &config.pause)?,
            retry: duration_dist("retry", &config.retry)?,
            config,
            log: None,
            lock_service: None,
            storage: None,
            job: 0,
            phase: Phase::Waiting,
            holding: None,
            attempt: 0,
            renew_timer: None,
            renewing: None,
            next_id: 0,
            _m: PhantomData,
        })
    }

    /// Records every grant into `log` (instrumentation only).
    pub fn with_log(mut self, log: LeaseLog) -> Self {
        self.log = Some(log);
        self
    }
}

impl<M: Carry<Lease>> Worker<M> {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn timer(&mut self, ctx: &mut Ctx<'_, M>, after: SimDuration, kind: u32) -> TimerId {
        let seq = self.attempt;
        ctx.set_timer(after, M::wrap(Lease::Tick(Tick::Worker { kind, seq })))
    }

    fn timeout(&mut self, ctx: &mut Ctx<'_, M>, after: SimDuration, id: u64) {
        let kind = TIMEOUT;
        ctx.set_timer(after, M::wrap(Lease::Tick(Tick::Worker { kind, seq: id })));
    }

    fn on_timeout(&mut self, ctx: &mut Ctx<'_, M>, id: u64) {
        match self.phase {
            Phase::Acquiring { id: want, .. } if want == id => {
                bump(ctx, "lock_timeouts_total");
                self.try_acquire(ctx);
            }
            Phase::Claiming { id: want } if want == id => {
                bump(ctx, "lock_timeouts_total");
                // Give the lock back (best effort) rather than block everyone, itself
                // included, until the TTL runs out.
                self.release(ctx, false);
                self.drop_hold(ctx);
                self.try_acquire(ctx);
            }
            Phase::Writing { id: want } if want == id => {
                // The charge may or may not have happened: a client can only send it again.
                bump(ctx, "write_timeouts_total");
                self.write(ctx);
            }
            _ => {}
        }
    }

    fn to_locks(&self, ctx: &mut Ctx<'_, M>, msg: Lease) {
        let to = self.lock_service.expect("resolved at start");
        ctx.send(to, M::wrap(msg));
    }

    /// Whether this worker's clock says its lease is over. Also re-estimates, for the oracle,
    /// the true time at which its clock reaches the lease's end: later than first thought if
    /// the clock runs slow, earlier if it runs fast or stepped.
    fn lease_over(&self, ctx: &Ctx<'_, M>) -> bool {
        let Some(h) = self.holding else { return true };
        let local = ctx.local_clock();
        let over = local >= h.valid_until;
        if let (Some(log), Some(i)) = (&self.log, h.hold) {
            let now = ctx.now();
            if over {
                let late = local.saturating_duration_since(h.valid_until);
                log.end_by(
                    i,
                    SimTime::from_nanos(now.as_nanos().saturating_sub(late.as_nanos())),
                );
            } else {
                let left = h.valid_until.saturating_duration_since(local);
                log.set_until(i, now.saturating_add(left));
            }
        }
        over
    }

    /// Ends the current attempt's hold (released, lost or abandoned).
    fn drop_hold(&mut self, ctx: &mut Ctx<'_, M>) {
        self.lease_over(ctx);
        if let Some(h) = self.holding.take()
            && let (Some(log), Some(i)) = (&self.log, h.hold)
        {
            log.end_by(i, ctx.now());
        }
        if let Some(t) = self.renew_timer.take() {
            ctx.cancel_timer(t);
        }
        self.renewing = None;
    }

    fn try_acquire(&mut self, ctx: &mut Ctx<'_, M>) {
        if self.job >= self.config.jobs {
            self.phase = Phase::Finished;
            return;
        }
        self.attempt += 1;
        let id = self.id();
        let sent = ctx.local_clock();
        self.phase = Phase::Acquiring { id, sent };
        let me = ctx.me();
        self.to_locks(
            ctx,
            Lease::Acquire {
                id,
                reply_to: me,
                lock: self.job,
                ttl: self.config.ttl,
            },
        );
        self.timeout(ctx, self.config.lock_timeout, id);
    }

    fn wait_and_retry(&mut self, ctx: &mut Ctx<'_, M>) {
        self.phase = Phase::Waiting;
        self.attempt += 1;
        let d = ctx.sample_duration(&self.retry);
        self.timer(ctx, d, RETRY);
    }

    fn next_job(&mut self, ctx: &mut Ctx<'_, M>) {
        self.drop_hold(ctx);
        self.job += 1;
        self.try_acquire(ctx);
    }

    fn granted(&mut self, ctx: &mut Ctx<'_, M>, token: Token, fence: Token, sent: SimTime) {
        bump(ctx, "acquired_total");
        let valid_until = sent.saturating_add(self.config.validity());
        let hold = self.log.as_ref().map(|log| {
            let now = ctx.now();
            let left = valid_until.saturating_duration_since(ctx.local_clock());
            log.push(Hold {
                worker: ctx.me(),
                lock: self.job,
                token,
                from: now,
                until: now.saturating_add(left),
            })
        });
        self.holding = Some(Holding {
            token,
            fence,
            valid_until,
            hold,
        });
        if let Some(every) = self.config.renew_every {
            self.renew_timer = Some(self.timer(ctx, every, RENEW));
        }
        let id = self.id();
        self.phase = Phase::Claiming { id };
        let me = ctx.me();
        let to = self.storage.expect("resolved at start");
        ctx.send(
            to,
            M::wrap(Lease::Claim {
                id,
                reply_to: me,
                resource: self.job,
                token: fence,
                job: self.job,
            }),
        );
        self.timeout(ctx, self.config.lock_timeout, id);
    }

    fn on_claim_reply(&mut self, ctx: &mut Ctx<'_, M>, id: u64, outcome: ClaimOutcome) {
        let Phase::Claiming { id: want } = self.phase else {
            return;
        };
        if id != want {
            return;
        }
        match outcome {
            ClaimOutcome::Fresh => {
                self.phase = Phase::Working;
                let d = ctx.sample_duration(&self.work);
                let d = ctx.work(d);
                self.timer(ctx, d, WORK_DONE);
            }
            ClaimOutcome::Done => {
                bump(ctx, "found_done_total");
                self.release_done(ctx);
                self.next_job(ctx);
            }
            ClaimOutcome::Stale { .. } => {
                bump(ctx, "fenced_total");
                self.drop_hold(ctx);
                self.try_acquire(ctx);
            }
        }
    }

    fn release_done(&mut self, ctx: &mut Ctx<'_, M>) {
        self.release(ctx, true);
    }

    fn release(&mut self, ctx: &mut Ctx<'_, M>, done: bool) {
        if let Some(h) = self.holding {
            let me = ctx.me();
            let id = self.id();
            self.to_locks(
                ctx,
                Lease::Release {
                    id,
                    reply_to: me,
                    lock: self.job,
                    token: h.token,
                    done,
                },
            );
        }
    }

    fn work_done(&mut self, ctx: &mut Ctx<'_, M>) {
        if self.config.check_lease && self.lease_over(ctx) {
            bump(ctx, "lease_expired_before_write_total");
            self.drop_hold(ctx);
            self.try_acquire(ctx);
            return;
        }
        let p = self.config.pause_probability;
        if p > 0.0 && ctx.rng().random_bool(p) {
            let d = ctx.sample_duration(&self.pause);
            bump(ctx, "pauses_total");
            self.phase = Phase::Paused;
            // Stop-the-world: the heartbeat stops too.
            if let Some(t) = self.renew_timer.take() {
                ctx.cancel_timer(t);
            }
            self.timer(ctx, d, PAUSE_OVER);
            return;
        }
        self.write(ctx);
    }

    fn write(&mut self, ctx: &mut Ctx<'_, M>) {
        let Some(h) = self.holding else { return };
        if self.lease_over(ctx) {
            bump(ctx, "writes_after_lease_total");
        }
        bump(ctx, "effects_total");
        let id = self.id();
        self.phase = Phase::Writing { id };
        let write = EffectWrite {
            resource: self.job,
            token: h.fence,
            job: self.job,
            idempotency_key: self.config.idempotency_keys.then_some(self.job),
        };
        let me = ctx.me();
        let to = self.storage.expect("resolved at start");
        ctx.send(
            to,
            M::wrap(Lease::Effect {
                id,
                reply_to: me,
                write,
            }),
        );
        self.timeout(ctx, self.config.write_timeout, id);
    }

    fn renew(&mut self, ctx: &mut Ctx<'_, M>) {
        let Some(h) = self.holding else { return };
        let Some(every) = self.config.renew_every else {
            return;
        };
        let id = self.id();
        self.renewing = Some((id, ctx.local_clock()));
        let me = ctx.me();
        self.to_locks(
            ctx,
            Lease::Renew {
                id,
                reply_to: me,
                lock: self.job,
                token: h.token,
                ttl: self.config.ttl,
            },
        );
        self.renew_timer = Some(self.timer(ctx, every, RENEW));
    }

    fn on_lock_reply(&mut self, ctx: &mut Ctx<'_, M>, id: u64, result: LockResult) {
        match (self.phase, result) {
            (Phase::Acquiring { id: want, sent }, _) if id == want => match result {
                LockResult::Granted { token, fence } => self.granted(ctx, token, fence, sent),
                LockResult::Done => self.next_job(ctx),
                _ => {
                    bump(ctx, "held_total");
                    self.wait_and_retry(ctx);
                }
            },
            (_, LockResult::Renewed | LockResult::Lost | LockResult::Done)
                if self.renewing.is_some_and(|(r, _)| r == id) =>
            {
                let (_, sent) = self.renewing.take().expect("checked");
                if result == LockResult::Renewed {
                    bump(ctx, "renewals_total");
                    let validity = self.config.validity();
                    if let Some(h) = &mut self.holding {
                        h.valid_until = sent.saturating_add(validity);
                        if let (Some(log), Some(i)) = (&self.log, h.hold) {
                            let left = h.valid_until.saturating_duration_since(ctx.local_clock());
                            log.set_until(i, ctx.now().saturating_add(left));
                        }
                    }
                } else {
                    bump(ctx, "renewals_lost_total");
                    // The worker now knows the lease is gone. A careful one stops working;
                    // the default one carries on (the heartbeat was only a heartbeat).
                    if let Some(h) = &mut self.holding
                        && let (Some(log), Some(i)) = (&self.log, h.hold.take())
                    {
                        log.end_by(i, ctx.now());
                    }
                    if let Some(t) = self.renew_timer.take() {
                        ctx.cancel_timer(t);
                    }
                    if self.config.check_lease && self.phase == Phase::Working {
                        bump(ctx, "lease_expired_before_write_total");
                        self.drop_hold(ctx);
                        self.wait_and_retry(ctx);
                    }
                }
            }
            _ => {}
        }
    }

    fn on_effect_reply(&mut self, ctx: &mut Ctx<'_, M>, id: u64, outcome: EffectOutcome) {
        let Phase::Writing { id: want } = self.phase else {
            return;
        };
        if id != want {
            return;
        }
        match outcome {
            EffectOutcome::Applied { .. } | EffectOutcome::Deduplicated => {
                if outcome == EffectOutcome::Deduplicated {
                    bump(ctx, "deduplicated_total");
                }
                bump(ctx, "jobs_done_total");
                self.release_done(ctx);
                self.next_job(ctx);
            }
            EffectOutcome::Stale { .. } => {
                bump(ctx, "fenced_total");
                self.drop_hold(ctx);
                self.try_acquire(ctx);
            }
        }
    }
}

impl<M: Carry<Lease>> Actor<M> for Worker<M> {
    fn on_start(&mut self, ctx: &mut Ctx<'_, M>) {
        self.lock_service = Some(resolve(ctx, "lock_service", &self.config.lock_service));
        self.storage = Some(resolve(ctx, "storage", &self.config.storage));
        for name in [
            "acquired_total",
            "held_total",
            "effects_total",
            "jobs_done_total",
            "fenced_total",
            "deduplicated_total",
            "lease_expired_before_write_total",
            "writes_after_lease_total",
            "pauses_total",
            "renewals_total",
            "renewals_lost_total",
            "found_done_total",
            "lock_timeouts_total",
            "write_timeouts_total",
        ] {
            ctx.counter(name);
        }
        if self.config.start.is_zero() {
            self.try_acquire(ctx);
        } else {
            self.phase = Phase::Waiting;
            self.timer(ctx, self.config.start, RETRY);
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, M>, _from: ActorId, msg: M) {
        self.lease_over(ctx);
        match msg.unwrap() {
            Some(Lease::LockReply { id, result, .. }) => self.on_lock_reply(ctx, id, result),
            Some(Lease::EffectReply { id, outcome }) => self.on_effect_reply(ctx, id, outcome),
            Some(Lease::ClaimReply { id, outcome }) => self.on_claim_reply(ctx, id, outcome),
            _ => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, M>, msg: M) {
        let Some(Lease::Tick(Tick::Worker { kind, seq })) = msg.unwrap() else {
            return;
        };
        self.lease_over(ctx);
        if kind == TIMEOUT {
            self.on_timeout(ctx, seq);
            return;
        }
        if seq != self.attempt {
            return;
        }
        match (kind, self.phase) {
            (RETRY, Phase::Waiting) => self.try_acquire(ctx),
            (WORK_DONE, Phase::Working) => self.work_done(ctx),
            (PAUSE_OVER, Phase::Paused) => {
                // Resuming: the request the GC interrupted goes out first, then the overdue
                // heartbeat, which is too late to matter.
                self.write(ctx);
                if self.config.renew_every.is_some() {
                    self.renew(ctx);
                }
            }
            (RENEW, Phase::Claiming { .. } | Phase::Working | Phase::Writing { .. }) => {
                self.renew(ctx)
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: u64) -> SimTime {
        SimTime::from_nanos(s * 1_000_000_000)
    }

    fn hold(worker: u32, lock: u64, token: u64, from: u64, until: u64) -> Hold {
        Hold {
            worker: ActorId(worker),
            lock,
            token,
            from: t(from),
            until: t(until),
        }
    }

    #[test]
    fn overlaps_are_same_lock_different_grant_intersections() {
        let holds = [
            hold(1, 0, 1, 0, 46),
            hold(2, 0, 2, 30, 31),
            hold(2, 1, 1, 0, 100), // another lock
            hold(3, 0, 3, 46, 50), // touches, does not overlap
        ];
        let o = overlaps(&holds);
        assert_eq!(o.len(), 1);
        assert_eq!((o[0].0.token, o[0].1.token), (1, 2));
        assert_eq!(o[0].2, SimDuration::from_secs(1));
    }

    #[test]
    fn validity_is_redlocks_ttl_minus_drift() {
        let c: WorkerConfig =
            crate::model::rpc::from_ron(r#"(lock_service: "l", storage: "s")"#).unwrap();
        // 30 s - (30 s * 0.01 + 2 ms) = 29.698 s.
        assert_eq!(c.validity(), SimDuration::from_millis(29_698));
    }

    #[test]
    fn bad_configs_name_their_field() {
        let cases = [
            (r#"(lock_service: "l", storage: "s", jobs: 0)"#, "jobs"),
            (
                r#"(lock_service: "l", storage: "s", renew_every: Some("30s"))"#,
                "renew_every",
            ),
            (
                r#"(lock_service: "l", storage: "s", pause_probability: 1.5)"#,
                "pause_probability",
            ),
            (
                r#"(lock_service: "l", storage: "s", pause: Const(3))"#,
                "pause",
            ),
            (
                r#"(lock_service: "l", storage: "s", drift_factor: 1.0)"#,
                "drift_factor",
            ),
        ];
        for (ron, field) in cases {
            let e = crate::model::rpc::from_ron::<WorkerConfig>(ron).unwrap_err();
            assert_eq!(e.field(), Some(field), "{ron}: {e}");
        }
    }
}
