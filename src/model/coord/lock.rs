//! The lock table of a lease-based lock service (L2): Redis's `SET key value NX PX ttl`, its
//! value-checked renewal (`PEXPIRE` if the value matches) and release (`DEL` if the value
//! matches), plus a fencing token per lock.
//!
//! Semantics, as Redis documents them for the single-instance lock pattern (`SET` command
//! page, "Patterns"; the `distlock` page): acquiring sets the key only if it does not exist
//! (`NX`) with an expiry of `ttl` milliseconds (`PX`); the value is a token unique to the
//! holder, and release and renewal are Lua scripts that act only if the key still holds the
//! caller's value, so a client never deletes or extends a lock that expired and was taken by
//! someone else. A key whose expiry has passed is gone for every command (Redis expires keys
//! lazily on access and actively in the background; which one removes it is unobservable), so
//! renewing after the expiry fails even if nobody took the lock in between.
//!
//! Expiry is judged only by the **service's** clock: `now` here is what the service host's
//! clock reads. The holder judges its lease by its own clock (see the worker), and nothing
//! connects the two but the TTL: that gap is the whole failure mode.
//!
//! Redis itself hands out no fencing token (Kleppmann, "How to do distributed locking", 2016,
//! makes that the core objection to Redlock); this table issues one per grant, strictly
//! increasing per lock (1, 2, 3, ...), as ZooKeeper's `zxid` or a lock's version would, so
//! that a side-effect store can reject an old holder. Whether anyone checks it is the store's
//! choice ([`FencedStore`](super::fenced::FencedStore)).
//!
//! Locks also double as job claims: a holder may release with `done`, after which the lock
//! answers [`Acquire::Done`] forever (a job queue's "completed" mark, as a visibility-timeout
//! queue such as SQS has), so workers racing over a list of jobs move on.

use std::collections::{BTreeMap, BTreeSet};

use crate::engine::time::{SimDuration, SimTime};

/// A lock's name: jobs are numbered, and job `j` is guarded by lock `j`.
pub type LockKey = u64;

/// A fencing token: strictly increasing per lock, from 1.
pub type Token = u64;

/// Who holds a lock (an actor index, opaque here).
pub type Holder = u32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    holder: Holder,
    token: Token,
    /// By the service's clock; the lock is free from this instant on.
    expires_at: SimTime,
}

/// The answer to an acquire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acquire {
    /// The caller holds the lock until `expires_at` on the service's clock.
    Granted { token: Token, expires_at: SimTime },
    /// Someone holds it (possibly the caller, by an older grant): `SET NX` returned nil.
    Held {
        holder: Holder,
        token: Token,
        remaining: SimDuration,
    },
    /// The job is done: a holder released it with `done`.
    Done,
}

/// The answer to a renewal or release that did not find the caller's token on the lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotHeld {
    /// The lock expired (and maybe was taken by a newer token).
    Lost,
    /// The job was completed by someone.
    Done,
}

/// All locks of one service, as values; the service actor wraps it.
#[derive(Clone, Debug, Default)]
pub struct LockTable {
    locks: BTreeMap<LockKey, Entry>,
    /// The last token issued per lock: kept after expiry and release, so tokens never repeat.
    last_token: BTreeMap<LockKey, Token>,
    done: BTreeSet<LockKey>,
}

impl LockTable {
    pub fn new() -> Self {
        LockTable::default()
    }

    /// The live entry of `key` at `now`, dropping an expired one.
    fn live(&mut self, key: LockKey, now: SimTime) -> Option<Entry> {
        match self.locks.get(&key) {
            Some(e) if now < e.expires_at => Some(*e),
            Some(_) => {
                self.locks.remove(&key);
                None
            }
            None => None,
        }
    }

    /// `SET key holder NX PX ttl` at the service's time `now`.
    pub fn acquire(
        &mut self,
        key: LockKey,
        holder: Holder,
        ttl: SimDuration,
        now: SimTime,
    ) -> Acquire {
        if self.done.contains(&key) {
            return Acquire::Done;
        }
        if let Some(e) = self.live(key, now) {
            return Acquire::Held {
                holder: e.holder,
                token: e.token,
                remaining: e.expires_at.saturating_duration_since(now),
            };
        }
        let token = self.last_token.get(&key).copied().unwrap_or(0) + 1;
        self.last_token.insert(key, token);
        let expires_at = now.saturating_add(ttl);
        self.locks.insert(
            key,
            Entry {
                holder,
                token,
                expires_at,
            },
        );
        Acquire::Granted { token, expires_at }
    }

    /// Extends the lease of `token` to `now + ttl`, if it still holds `key`.
    pub fn renew(
        &mut self,
        key: LockKey,
        token: Token,
        ttl: SimDuration,
        now: SimTime,
    ) -> Result<SimTime, NotHeld> {
        if self.done.contains(&key) {
            return Err(NotHeld::Done);
        }
        match self.live(key, now) {
            Some(e) if e.token == token => {
                let expires_at = now.saturating_add(ttl);
                self.locks.insert(key, Entry { expires_at, ..e });
                Ok(expires_at)
            }
            _ => Err(NotHeld::Lost),
        }
    }

    /// Deletes the lock if `token` still holds it, marking the job done if `done`.
    pub fn release(
        &mut self,
        key: LockKey,
        token: Token,
        done: bool,
        now: SimTime,
    ) -> Result<(), NotHeld> {
        if self.done.contains(&key) {
            return Err(NotHeld::Done);
        }
        match self.live(key, now) {
            Some(e) if e.token == token => {
                self.locks.remove(&key);
                if done {
                    self.done.insert(key);
                }
                Ok(())
            }
            _ => Err(NotHeld::Lost),
        }
    }

    /// Whether `key` was completed.
    pub fn is_done(&self, key: LockKey) -> bool {
        self.done.contains(&key)
    }

    /// The token holding `key` at `now`, if any (without dropping an expired entry).
    pub fn holder_token(&self, key: LockKey, now: SimTime) -> Option<Token> {
        self.locks
            .get(&key)
            .filter(|e| now < e.expires_at)
            .map(|e| e.token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u64) -> SimTime {
        SimTime::from_nanos(n * 1_000_000_000)
    }

    const TTL: SimDuration = SimDuration::from_secs(30);

    #[test]
    fn nx_grants_once_until_the_ttl_passes_by_the_service_clock() {
        let mut t = LockTable::new();
        assert_eq!(
            t.acquire(7, 1, TTL, s(0)),
            Acquire::Granted {
                token: 1,
                expires_at: s(30)
            }
        );
        assert_eq!(
            t.acquire(7, 2, TTL, s(10)),
            Acquire::Held {
                holder: 1,
                token: 1,
                remaining: SimDuration::from_secs(20)
            }
        );
        // One nanosecond before expiry it is still held; at expiry it is free.
        let just_before = SimTime::from_nanos(s(30).as_nanos() - 1);
        assert!(matches!(
            t.acquire(7, 2, TTL, just_before),
            Acquire::Held { .. }
        ));
        assert_eq!(
            t.acquire(7, 2, TTL, s(30)),
            Acquire::Granted {
                token: 2,
                expires_at: s(60)
            }
        );
        // Other locks are independent and count their own tokens.
        assert_eq!(
            t.acquire(8, 1, TTL, s(30)),
            Acquire::Granted {
                token: 1,
                expires_at: s(60)
            }
        );
    }

    #[test]
    fn renewal_extends_only_the_current_holders_live_lease() {
        let mut t = LockTable::new();
        t.acquire(1, 1, TTL, s(0));
        assert_eq!(t.renew(1, 1, TTL, s(20)), Ok(s(50)));
        assert!(matches!(t.acquire(1, 2, TTL, s(45)), Acquire::Held { .. }));
        // Expired at 50: renewing at 50 fails even though nobody took it.
        assert_eq!(t.renew(1, 1, TTL, s(50)), Err(NotHeld::Lost));
        // Taken by token 2: token 1 can neither renew nor release it.
        assert!(matches!(
            t.acquire(1, 2, TTL, s(51)),
            Acquire::Granted { token: 2, .. }
        ));
        assert_eq!(t.renew(1, 1, TTL, s(52)), Err(NotHeld::Lost));
        assert_eq!(t.release(1, 1, true, s(52)), Err(NotHeld::Lost));
        assert_eq!(t.holder_token(1, s(52)), Some(2));
    }

    #[test]
    fn release_frees_the_lock_and_done_closes_the_job() {
        let mut t = LockTable::new();
        t.acquire(1, 1, TTL, s(0));
        assert_eq!(t.release(1, 1, false, s(1)), Ok(()));
        assert!(matches!(
            t.acquire(1, 2, TTL, s(2)),
            Acquire::Granted { token: 2, .. }
        ));
        assert_eq!(t.release(1, 2, true, s(3)), Ok(()));
        assert!(t.is_done(1));
        assert_eq!(t.acquire(1, 3, TTL, s(4)), Acquire::Done);
        assert_eq!(t.renew(1, 2, TTL, s(4)), Err(NotHeld::Done));
    }

    #[test]
    fn tokens_strictly_increase_per_lock_over_any_history() {
        let mut t = LockTable::new();
        let mut last = 0;
        let mut now = s(0);
        for i in 0..200u64 {
            now = now.saturating_add(SimDuration::from_secs(i % 7 * 6));
            if let Acquire::Granted { token, .. } = t.acquire(3, (i % 3) as u32, TTL, now) {
                assert!(token > last, "token {token} after {last}");
                last = token;
                if i % 2 == 0 {
                    let _ = t.release(3, token, false, now);
                }
            }
        }
        assert!(
            last > 10,
            "the history granted the lock many times ({last})"
        );
    }
}
