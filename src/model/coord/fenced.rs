//! A side-effect store (a payment provider, a mail relay, a database row) that records every
//! write with the token it came with and, when fencing is on, rejects a write older than the
//! newest it has accepted for the same resource (L1, L2).
//!
//! This is the check Kleppmann's fencing argument puts at the resource ("How to do distributed
//! locking", 2016): the lock service hands out a monotonically increasing token with every
//! grant, every write carries it, and the storage remembers the highest token it has accepted
//! per resource and refuses a lower one. A write with an **equal** token is accepted (the same
//! holder may write many times under one grant). The token is a bare `u64` per resource key,
//! so the same store fences a lock's fencing tokens (L2) and a leader's epochs or terms (L1).
//!
//! Idempotency keys are the other fix: a write carrying a key already applied is acknowledged
//! without a second effect (Stripe's `Idempotency-Key` header; a unique constraint on a
//! payment's order id). The store checks the key before the token, as a payment API
//! deduplicates before it does anything else.
//!
//! **Claims.** A worker that has just been granted a lock first asks the store whether its job
//! was already done (is the order paid?), and only then works and writes. The claim carries
//! the token too, and the store remembers it as the resource's newest: the new holder fences
//! the old one out *before* it does anything, as a new HDFS NameNode writer first promises its
//! epoch to the journal nodes. Without that, fencing orders writes but cannot stop a zombie
//! that writes first, after which the new holder (who saw the job not yet done) charges
//! again. With claims and fencing, each job has at most one effect under any interleaving.
//!
//! The store keeps its audit log of every write (accepted or not) and counts, per job, how
//! many side effects actually happened: more than one is the duplicate the failure mode is
//! about. The audit is what a reconciliation job would see afterwards; it never feeds a
//! decision.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// A resource key: what a token fences (a lock's job, a replicated store's shard).
pub type Resource = u64;

/// What the store checks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FencePolicy {
    /// Reject a write whose token is below the newest accepted for its resource. Default
    /// false: most real side-effect APIs (a card network, SMTP) know nothing of tokens.
    #[serde(default)]
    pub fencing: bool,
    /// Apply a write whose idempotency key was already applied only once. Default false.
    #[serde(default)]
    pub idempotency: bool,
}

/// One write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EffectWrite {
    pub resource: Resource,
    /// The writer's fencing token or epoch for `resource`.
    pub token: u64,
    /// The job the side effect belongs to (the order being charged).
    pub job: u64,
    /// The caller's idempotency key, if it sends one.
    pub idempotency_key: Option<u64>,
}

/// What the store did with a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EffectOutcome {
    /// The side effect happened. `duplicate`: the job already had one (audit only).
    Applied { duplicate: bool },
    /// Fenced: a write with token `newest` was already accepted for the resource.
    Stale { newest: u64 },
    /// The idempotency key was already applied: acknowledged, no effect.
    Deduplicated,
}

/// The answer to a claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The job has no effect yet: go ahead.
    Fresh,
    /// The job already had its effect.
    Done,
    /// Fenced: a newer token already claimed or wrote the resource.
    Stale { newest: u64 },
}

/// One entry of the audit log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    pub write: EffectWrite,
    pub outcome: EffectOutcome,
}

/// The store's state, as a value.
#[derive(Clone, Debug, Default)]
pub struct FencedStore {
    policy: FencePolicy,
    newest: BTreeMap<Resource, u64>,
    applied_keys: BTreeSet<u64>,
    effects: BTreeMap<u64, u32>,
    audit: Vec<AuditEntry>,
    /// Writes applied with a token below the newest the resource had seen (a write's or a
    /// claim's): what fencing exists to refuse.
    stale_accepted: u64,
}

impl FencedStore {
    pub fn new(policy: FencePolicy) -> Self {
        FencedStore {
            policy,
            ..FencedStore::default()
        }
    }

    pub fn policy(&self) -> FencePolicy {
        self.policy
    }

    /// Applies (or refuses) one write.
    pub fn write(&mut self, w: EffectWrite) -> EffectOutcome {
        let outcome = self.decide(w);
        if let EffectOutcome::Applied { .. } = outcome {
            if self.newest.get(&w.resource).is_some_and(|&n| w.token < n) {
                self.stale_accepted += 1;
            }
            *self.effects.entry(w.job).or_insert(0) += 1;
            if let Some(k) = w.idempotency_key {
                self.applied_keys.insert(k);
            }
        }
        // The newest token is remembered whether or not fencing is on, so the audit can say
        // what fencing would have done; only `decide` makes it a rule.
        if !matches!(outcome, EffectOutcome::Stale { .. }) {
            let n = self.newest.entry(w.resource).or_insert(0);
            *n = (*n).max(w.token);
        }
        self.audit.push(AuditEntry { write: w, outcome });
        outcome
    }

    /// A new holder's first request: is job `job` done? With fencing, a token below the
    /// newest is refused, and the claim's token becomes the newest.
    pub fn claim(&mut self, resource: Resource, token: u64, job: u64) -> ClaimOutcome {
        if let Some(&newest) = self.newest.get(&resource)
            && self.policy.fencing
            && token < newest
        {
            return ClaimOutcome::Stale { newest };
        }
        let n = self.newest.entry(resource).or_insert(0);
        *n = (*n).max(token);
        if self.effects(job) > 0 {
            ClaimOutcome::Done
        } else {
            ClaimOutcome::Fresh
        }
    }

    fn decide(&self, w: EffectWrite) -> EffectOutcome {
        if self.policy.idempotency
            && let Some(k) = w.idempotency_key
            && self.applied_keys.contains(&k)
        {
            return EffectOutcome::Deduplicated;
        }
        if self.policy.fencing
            && let Some(&newest) = self.newest.get(&w.resource)
            && w.token < newest
        {
            return EffectOutcome::Stale { newest };
        }
        let duplicate = self.effects.get(&w.job).copied().unwrap_or(0) > 0;
        EffectOutcome::Applied { duplicate }
    }

    /// The newest token accepted for `resource`.
    pub fn newest(&self, resource: Resource) -> Option<u64> {
        self.newest.get(&resource).copied()
    }

    /// How many side effects job `job` had.
    pub fn effects(&self, job: u64) -> u32 {
        self.effects.get(&job).copied().unwrap_or(0)
    }

    /// Side effects beyond the first, over all jobs.
    pub fn duplicate_effects(&self) -> u64 {
        self.effects
            .values()
            .map(|&n| u64::from(n.saturating_sub(1)))
            .sum()
    }

    /// Jobs with at least one side effect.
    pub fn jobs_done(&self) -> u64 {
        self.effects.len() as u64
    }

    /// Writes applied although their token was below the newest the resource had seen, from
    /// a write or a claim: the zombie's write fencing refuses (0 whenever fencing is on).
    pub fn stale_accepted(&self) -> u64 {
        self.stale_accepted
    }

    /// Every write in arrival order, with what happened to it.
    pub fn audit(&self) -> &[AuditEntry] {
        &self.audit
    }

    /// Whether an accepted write ever had a token below one accepted before it for the same
    /// resource: the property fencing guarantees (false whenever fencing is on).
    pub fn accepted_out_of_order(&self) -> bool {
        let mut newest: BTreeMap<Resource, u64> = BTreeMap::new();
        for e in &self.audit {
            if let EffectOutcome::Applied { .. } = e.outcome {
                let n = newest.entry(e.write.resource).or_insert(0);
                if e.write.token < *n {
                    return true;
                }
                *n = e.write.token;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(token: u64, job: u64, key: Option<u64>) -> EffectWrite {
        EffectWrite {
            resource: job,
            token,
            job,
            idempotency_key: key,
        }
    }

    #[test]
    fn without_fixes_a_zombie_write_is_a_second_effect() {
        let mut s = FencedStore::new(FencePolicy::default());
        assert_eq!(
            s.write(w(2, 0, None)),
            EffectOutcome::Applied { duplicate: false }
        );
        assert_eq!(
            s.write(w(1, 0, None)),
            EffectOutcome::Applied { duplicate: true }
        );
        assert_eq!(s.effects(0), 2);
        assert_eq!(s.duplicate_effects(), 1);
        assert!(s.accepted_out_of_order());
        assert_eq!(s.stale_accepted(), 1);
    }

    #[test]
    fn fencing_rejects_older_tokens_and_accepts_equal_and_newer() {
        let policy = FencePolicy {
            fencing: true,
            idempotency: false,
        };
        let mut s = FencedStore::new(policy);
        assert!(matches!(
            s.write(w(2, 0, None)),
            EffectOutcome::Applied { .. }
        ));
        assert_eq!(s.write(w(1, 0, None)), EffectOutcome::Stale { newest: 2 });
        // The same holder writing again under its grant is not fenced (it is a duplicate).
        assert_eq!(
            s.write(w(2, 0, None)),
            EffectOutcome::Applied { duplicate: true }
        );
        assert!(matches!(
            s.write(w(3, 0, None)),
            EffectOutcome::Applied { .. }
        ));
        // Resources are fenced independently.
        assert!(matches!(
            s.write(w(1, 5, None)),
            EffectOutcome::Applied { duplicate: false }
        ));
        assert!(!s.accepted_out_of_order());
        assert_eq!(s.stale_accepted(), 0);
        assert_eq!(s.newest(0), Some(3));
        assert_eq!(s.audit().len(), 5);
    }

    #[test]
    fn a_claim_fences_the_old_holder_out_before_the_new_one_writes() {
        let fenced = FencePolicy {
            fencing: true,
            idempotency: false,
        };
        let mut s = FencedStore::new(fenced);
        assert_eq!(s.claim(0, 1, 0), ClaimOutcome::Fresh);
        // The lock expired; holder 2 claims: still fresh (the zombie has not written).
        assert_eq!(s.claim(0, 2, 0), ClaimOutcome::Fresh);
        // The zombie's write now comes too late, and so would a late claim of its.
        assert_eq!(s.write(w(1, 0, None)), EffectOutcome::Stale { newest: 2 });
        assert_eq!(s.claim(0, 1, 0), ClaimOutcome::Stale { newest: 2 });
        assert!(matches!(
            s.write(w(2, 0, None)),
            EffectOutcome::Applied { duplicate: false }
        ));
        // A later holder finds the job done.
        assert_eq!(s.claim(0, 3, 0), ClaimOutcome::Done);
        assert_eq!(s.effects(0), 1);

        // Without fencing the same interleaving charges twice.
        let mut s = FencedStore::new(FencePolicy::default());
        s.claim(0, 1, 0);
        s.claim(0, 2, 0);
        s.write(w(1, 0, None));
        s.write(w(2, 0, None));
        assert_eq!(s.effects(0), 2);
    }

    #[test]
    fn idempotency_keys_apply_a_job_once_whatever_the_tokens() {
        let policy = FencePolicy {
            fencing: false,
            idempotency: true,
        };
        let mut s = FencedStore::new(policy);
        assert!(matches!(
            s.write(w(2, 0, Some(0))),
            EffectOutcome::Applied { .. }
        ));
        assert_eq!(s.write(w(1, 0, Some(0))), EffectOutcome::Deduplicated);
        assert_eq!(s.write(w(3, 0, Some(0))), EffectOutcome::Deduplicated);
        // A writer that sends no key is not protected.
        assert_eq!(
            s.write(w(4, 0, None)),
            EffectOutcome::Applied { duplicate: true }
        );
        assert_eq!(s.effects(0), 2);
    }
}
