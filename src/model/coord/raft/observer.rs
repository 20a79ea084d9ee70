//! [`RaftObserver`], the safety oracle the members of one Raft group share: every member
//! reports "I became leader of term T" (with its log), "entry (index, term) committed", "I
//! stopped leading" and "I crashed", in true time, and the observer judges the group as no
//! member can.
//!
//! Why a shared oracle: each member counts only the violations it sees itself (an
//! AppendEntries of its term from a second leader, a committed entry it must delete). Two
//! members that each believe they lead the same term and never reach a common member, or a
//! new leader whose log lacks an entry committed before (Leader Completeness, the Raft paper
//! §5.4), are invisible to every one of them. The observer sees every leadership and every
//! commit, so it counts:
//!
//! - a second leader of a term (Election Safety, §5.2), once per term however many members
//!   see it;
//! - a committed entry lost: an index whose first committed entry a later leader's log does
//!   not hold when it is elected, or that a member deletes; once per index;
//! - a committed entry reordered: an index committed with an entry other than the one first
//!   committed there (by another member, or by the same one before); once per index.
//!
//! Members add what the observer reports new to the group's metrics
//! (`raft.leaders_per_term_violations_total`, `committed_lost_total`,
//! `committed_reordered_total`), so a violation is counted once, not once per member that
//! sees it. It is instrumentation only — a member writes to it and never reads it back —
//! except for chaos components, which read who leads now ([`RaftObserver::leader`]) as a
//! Jepsen nemesis reads the nodes' status to pick its victim.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use super::core::{Entry, Term};
use crate::engine::time::SimTime;

/// A safety oracle for a group: what every member did, in true time. See the module docs.
#[derive(Clone, Debug, Default)]
pub struct RaftObserver {
    /// The first leader of each term that had one, and when it was elected.
    pub leaders: BTreeMap<Term, (String, SimTime)>,
    /// Every leadership in election order: (elected at, term, node).
    pub history: Vec<(SimTime, Term, String)>,
    /// The entry committed at each index, as first reported.
    pub committed: BTreeMap<u64, Entry>,
    /// Safety violations seen, as text: two leaders in a term, two entries committed at one
    /// index, committed entries lost (the observer's, and those members saw themselves).
    pub violations: Vec<String>,
    /// Real elections started, over all members.
    pub elections_started: u64,
    /// Split votes, over all members.
    pub split_votes: u64,
    /// The members that believe they lead now, with the term: elected, and neither stepped
    /// down nor crashed since.
    pub leading: BTreeMap<String, Term>,
    /// Terms counted as having two leaders.
    pub two_leader_terms: BTreeSet<Term>,
    /// Indices counted as having lost their committed entry.
    pub lost: BTreeSet<u64>,
    /// Indices counted as committed with two different entries.
    pub reordered: BTreeSet<u64>,
}

/// The shared handle members (and chaos components) hold.
pub type RaftWatch = Rc<RefCell<RaftObserver>>;

/// What the observer found new at an election: to add to the group's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ElectionVerdict {
    /// 1 if the term already had another leader (and had not been counted), else 0.
    pub two_leaders: u64,
    /// Committed indices the new leader's log does not hold, not counted before.
    pub lost: u64,
}

impl RaftObserver {
    pub fn shared() -> RaftWatch {
        Rc::new(RefCell::new(RaftObserver::default()))
    }

    /// `node` won `term` with `log` (its whole log, the new term's no-op included).
    pub fn became_leader(
        &mut self,
        now: SimTime,
        term: Term,
        node: &str,
        log: &[Entry],
    ) -> ElectionVerdict {
        let mut verdict = ElectionVerdict::default();
        if let Some((other, _)) = self.leaders.get(&term)
            && other != node
        {
            let v = format!("{now}: two leaders in term {term}: {other} and {node}");
            self.violations.push(v);
            if self.two_leader_terms.insert(term) {
                verdict.two_leaders = 1;
            }
        }
        self.leaders
            .entry(term)
            .or_insert_with(|| (node.to_string(), now));
        self.history.push((now, term, node.to_string()));
        self.leading.insert(node.to_string(), term);
        // Leader Completeness: the new leader holds every entry committed before.
        let missing: Vec<u64> = self
            .committed
            .iter()
            .filter(|&(&i, e)| log.get(i as usize - 1) != Some(e))
            .map(|(&i, _)| i)
            .collect();
        if let (Some(&first), Some(&last)) = (missing.first(), missing.last()) {
            let v = format!(
                "{now}: {node} leads term {term} without {} committed entries ({first}..={last})",
                missing.len()
            );
            self.violations.push(v);
        }
        for i in missing {
            if self.lost.insert(i) {
                verdict.lost += 1;
            }
        }
        verdict
    }

    /// `node` stopped believing it leads (it stepped down, or crashed).
    pub fn stopped_leading(&mut self, node: &str) {
        self.leading.remove(node);
    }

    /// A member saw two leaders of `term` itself; true if the term was not counted yet.
    pub fn two_leaders_seen(&mut self, term: Term) -> bool {
        self.two_leader_terms.insert(term)
    }

    /// A member deleted the entries it knew committed at `indices`: the ones not counted
    /// yet.
    pub fn lost_seen(&mut self, indices: impl IntoIterator<Item = u64>) -> u64 {
        indices.into_iter().filter(|&i| self.lost.insert(i)).count() as u64
    }

    /// `node` learnt `entry` committed at `index`, where it had learnt `before` (if any);
    /// true if that makes the index committed with two entries and it was not counted yet.
    pub fn committed(
        &mut self,
        now: SimTime,
        node: &str,
        index: u64,
        entry: Entry,
        before: Option<Entry>,
    ) -> bool {
        let first = *self.committed.entry(index).or_insert(entry);
        let conflict = first != entry || before.is_some_and(|b| b != entry);
        if first != entry {
            let v = format!("{now}: {node} committed {entry:?} at {index}, which held {first:?}");
            self.violations.push(v);
        }
        conflict && self.reordered.insert(index)
    }

    /// Who leads now, as far as the members believe: the member leading the highest term
    /// (a deposed leader that has not heard of it yet leads a lower one).
    pub fn leader(&self) -> Option<(&str, Term)> {
        self.leading
            .iter()
            .max_by_key(|&(name, term)| (*term, std::cmp::Reverse(name.clone())))
            .map(|(n, t)| (n.as_str(), *t))
    }

    /// The leader elected first at or after `t`, with its election time.
    pub fn first_leader_after(&self, t: SimTime) -> Option<(SimTime, Term, &str)> {
        self.history
            .iter()
            .find(|(at, _, _)| *at >= t)
            .map(|(at, term, n)| (*at, *term, n.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(term: Term, data: u64) -> Entry {
        Entry {
            term,
            data: Some(data),
        }
    }

    #[test]
    fn a_second_leader_of_a_term_is_counted_once_however_many_see_it() {
        let mut o = RaftObserver::default();
        let t = SimTime::ZERO;
        assert_eq!(o.became_leader(t, 1, "a", &[]).two_leaders, 0);
        // The same member again (a restart that wins nothing new) is not a second leader.
        assert_eq!(o.became_leader(t, 1, "a", &[]).two_leaders, 0);
        assert_eq!(o.became_leader(t, 1, "b", &[]).two_leaders, 1);
        assert_eq!(o.became_leader(t, 1, "c", &[]).two_leaders, 0);
        // A member seeing it itself adds nothing to a term counted, but counts a new one.
        assert!(!o.two_leaders_seen(1));
        assert!(o.two_leaders_seen(2));
        assert!(!o.two_leaders_seen(2));
        assert_eq!(o.leaders[&1].0, "a");
    }

    #[test]
    fn a_leader_without_a_committed_entry_loses_it_once() {
        let mut o = RaftObserver::default();
        let t = SimTime::ZERO;
        assert!(!o.committed(t, "a", 1, e(1, 10), None));
        assert!(!o.committed(t, "b", 1, e(1, 10), None));
        assert!(!o.committed(t, "a", 2, e(1, 11), None));
        // Holds both: nothing lost.
        let full = [e(1, 10), e(1, 11), e(2, 0)];
        assert_eq!(o.became_leader(t, 2, "a", &full).lost, 0);
        // Holds the first only, and a different second: index 2 is lost.
        let other = [e(1, 10), e(2, 99)];
        assert_eq!(o.became_leader(t, 3, "b", &other).lost, 1);
        // Another leader without either: only index 1 is new.
        assert_eq!(o.became_leader(t, 4, "c", &[]).lost, 1);
        assert_eq!(o.lost_seen([1, 2, 3]), 1);
        assert_eq!(o.lost.len(), 3);
    }

    #[test]
    fn an_index_committed_with_two_entries_is_counted_once() {
        let mut o = RaftObserver::default();
        let t = SimTime::ZERO;
        assert!(!o.committed(t, "a", 1, e(1, 10), None));
        assert!(o.committed(t, "b", 1, e(2, 20), None));
        assert!(!o.committed(t, "c", 1, e(2, 20), None));
        // A member that learnt another entry before: counted by itself, even if the entry it
        // commits now is the first one.
        assert!(!o.committed(t, "a", 2, e(1, 11), None));
        assert!(o.committed(t, "a", 2, e(1, 11), Some(e(1, 12))));
        assert_eq!(o.reordered.len(), 2);
    }

    #[test]
    fn the_leader_is_the_one_of_the_highest_term_still_leading() {
        let mut o = RaftObserver::default();
        let t = SimTime::ZERO;
        assert_eq!(o.leader(), None);
        o.became_leader(t, 1, "a", &[]);
        o.became_leader(t, 2, "b", &[]);
        // `a` has not heard of term 2 yet: it still leads term 1.
        assert_eq!(o.leader(), Some(("b", 2)));
        o.stopped_leading("b");
        assert_eq!(o.leader(), Some(("a", 1)));
        o.stopped_leading("a");
        assert_eq!(o.leader(), None);
    }
}
