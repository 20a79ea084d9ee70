//! The coordinator's exact semantics, request by request, and a small simulated group (zero
//! network latency, members that heartbeat and react to replies as Kafka's consumer does)
//! for the properties of eager and cooperative rebalancing over random membership changes.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rand::RngExt;

use super::member::{
    DEFAULT_HEARTBEAT_INTERVAL, apply_assignment, direct_transfers, poll_timeout_expired,
    revoke_on_rejoin, sends_leave_group, withhold_transfers,
};
use super::*;
use crate::engine::rng::stream;
use crate::model::rpc::from_ron;

fn secs(n: u64) -> SimDuration {
    SimDuration::from_secs(n)
}

fn at(s: u64) -> SimTime {
    SimTime::ZERO + secs(s)
}

fn config() -> GroupConfig {
    GroupConfig::default()
}

fn req(client: &str, member_id: Option<&str>, instance: Option<&str>) -> JoinRequest {
    JoinRequest {
        client_id: client.into(),
        member_id: member_id.map(Into::into),
        instance_id: instance.map(Into::into),
        owned: Vec::new(),
    }
}

/// The replies in `out`, as (client, response).
fn replies(out: &[Output]) -> Vec<(String, Response)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Reply { to, response } => Some((to.clone(), response.clone())),
            _ => None,
        })
        .collect()
}

/// The one successful JoinGroup response to `client` in `out`.
fn joined(out: &[Output], client: &str) -> JoinResponse {
    let mut found = replies(out).into_iter().filter_map(|(to, r)| match r {
        Response::Join(Ok(j)) if to == client => Some(j),
        _ => None,
    });
    let j = found
        .next()
        .unwrap_or_else(|| panic!("no join reply for {client}: {out:?}"));
    assert!(found.next().is_none(), "two join replies for {client}");
    j
}

fn synced(out: &[Output], client: &str) -> Vec<Partition> {
    let mut found = replies(out).into_iter().filter_map(|(to, r)| match r {
        Response::Sync(Ok(a)) if to == client => Some(a),
        _ => None,
    });
    let a = found
        .next()
        .unwrap_or_else(|| panic!("no sync reply for {client}: {out:?}"));
    assert!(found.next().is_none(), "two sync replies for {client}");
    a
}

fn heartbeat_result(out: &[Output]) -> Result<(), GroupError> {
    match replies(out).last() {
        Some((_, Response::Heartbeat(r))) => *r,
        other => panic!("no heartbeat reply: {other:?}"),
    }
}

fn with_owned(mut r: JoinRequest, owned: Vec<Partition>) -> JoinRequest {
    r.owned = owned;
    r
}

fn rebalances_started(out: &[Output]) -> usize {
    out.iter()
        .filter(|o| matches!(o, Output::RebalanceStarted { .. }))
        .count()
}

fn assignment(pairs: &[(&str, &[Partition])]) -> Assignment {
    pairs
        .iter()
        .map(|(m, ps)| (m.to_string(), ps.to_vec()))
        .collect()
}

/// A group with one member `a`, Stable at generation 1 owning partitions 0..4, at t = 3 s.
fn stable_one(config: GroupConfig, instance: Option<&str>) -> (Coordinator, String) {
    let mut c = Coordinator::new(config);
    assert!(replies(&c.join(at(0), req("a", None, instance))).is_empty());
    let out = c.tick(at(3));
    let a = joined(&out, "a").member_id;
    let out = c.sync(
        at(3),
        "a",
        &a,
        instance,
        1,
        Some(assignment(&[(&a, &[0, 1, 2, 3])])),
    );
    assert_eq!(synced(&out, "a"), [0, 1, 2, 3]);
    (c, a)
}

/// A group with members `a` (leader) and `b`, Stable at generation 2, at t = 10 s: `a` owns
/// 0 and 1, `b` owns 2 and 3.
fn stable_two(
    config: GroupConfig,
    ia: Option<&str>,
    ib: Option<&str>,
) -> (Coordinator, String, String) {
    let (mut c, a) = stable_one(config, ia);
    let out = c.join(at(10), req("b", None, ib));
    assert_eq!(rebalances_started(&out), 1);
    let out = c.join(at(10), req("a", Some(&a), ia));
    let b = joined(&out, "b").member_id;
    assert_eq!(joined(&out, "a").generation, 2);
    let out = c.sync(at(10), "b", &b, ib, 2, None);
    assert!(out.is_empty());
    let out = c.sync(
        at(10),
        "a",
        &a,
        ia,
        2,
        Some(assignment(&[(&a, &[0, 1]), (&b, &[2, 3])])),
    );
    assert_eq!(synced(&out, "a"), [0, 1]);
    assert_eq!(synced(&out, "b"), [2, 3]);
    assert_eq!(c.state(), GroupState::Stable);
    (c, a, b)
}

// ---------------------------------------------------------------------------------------------
// Config
// ---------------------------------------------------------------------------------------------

#[test]
fn defaults_are_kafkas() {
    let d = GroupConfig::default();
    assert_eq!(d.session_timeout, secs(45));
    assert_eq!(d.rebalance_timeout, secs(300));
    assert_eq!(d.initial_rebalance_delay, secs(3));
    assert_eq!(d.new_member_join_timeout, secs(300));
    assert_eq!(d.protocol, Protocol::Eager);
    assert_eq!(DEFAULT_HEARTBEAT_INTERVAL, secs(3));
    assert_eq!(member::DEFAULT_MAX_POLL_RECORDS, 500);
    let parsed: GroupConfig =
        from_ron("(protocol: Cooperative, session_timeout: \"10s\")").unwrap();
    assert_eq!(parsed.protocol, Protocol::Cooperative);
    assert_eq!(parsed.session_timeout, secs(10));
    assert_eq!(
        parsed.rebalance_timeout,
        secs(300),
        "unset fields take defaults"
    );
}

#[test]
fn session_timeouts_outside_the_brokers_bounds_are_rejected() {
    for bad in [
        SimDuration::from_millis(5_999),
        SimDuration::from_secs(1_801),
    ] {
        let c = GroupConfig {
            session_timeout: bad,
            ..config()
        };
        let err = c.validate().unwrap_err();
        assert!(err.to_string().contains("INVALID_SESSION_TIMEOUT"), "{err}");
    }
    for good in [secs(6), secs(1_800)] {
        let c = GroupConfig {
            session_timeout: good,
            ..config()
        };
        assert!(c.validate().is_ok());
    }
    assert!(from_ron::<GroupConfig>("(rebalance_timeout: \"0s\")").is_err());
    assert!(
        from_ron::<GroupConfig>("(heartbeat: \"3s\")").is_err(),
        "unknown field"
    );
}

// ---------------------------------------------------------------------------------------------
// JoinGroup, the initial delay, SyncGroup
// ---------------------------------------------------------------------------------------------

#[test]
fn a_single_member_waits_out_the_initial_delay() {
    let mut c = Coordinator::new(config());
    let out = c.join(at(0), req("a", None, None));
    assert_eq!(rebalances_started(&out), 1);
    assert!(replies(&out).is_empty(), "the JoinGroup is parked");
    assert_eq!(c.state(), GroupState::PreparingRebalance);
    assert_eq!(c.next_deadline(), Some(at(3)));
    // Everyone has joined, but the initial delay runs its course.
    assert!(c.tick(at(3) - SimDuration::from_nanos(1)).is_empty());
    let out = c.tick(at(3));
    let j = joined(&out, "a");
    assert_eq!(j.member_id, "a-1");
    assert_eq!(j.generation, 1);
    assert_eq!(j.leader, "a-1");
    assert_eq!(j.members.len(), 1, "the leader gets the member list");
    assert!(!j.skip_assignment);
    assert_eq!(c.state(), GroupState::CompletingRebalance);
    let out = c.sync(
        at(4),
        "a",
        "a-1",
        None,
        1,
        Some(assignment(&[("a-1", &[0, 1, 2])])),
    );
    assert_eq!(synced(&out, "a"), [0, 1, 2]);
    assert_eq!(c.state(), GroupState::Stable);
    assert!(out.contains(&Output::Stabilized {
        at: at(4),
        generation: 1,
        took: secs(4),
        members: 1
    }));
    assert_eq!(c.metrics().rebalances_total, 1);
    assert_eq!(c.metrics().rebalance_time_total, secs(4));
    assert_eq!(
        c.next_deadline(),
        Some(at(4) + secs(45)),
        "the session timer"
    );
}

#[test]
fn the_initial_delay_extends_while_members_arrive() {
    // delay 3 s, rebalance timeout 10 s: steps of 3, 3 and 3 s when members keep arriving,
    // `remaining` going 7, 4, 1.
    let mut c = Coordinator::new(GroupConfig {
        rebalance_timeout: secs(10),
        ..config()
    });
    c.join(at(0), req("a", None, None));
    c.join(at(2), req("b", None, None));
    assert!(c.tick(at(3)).is_empty(), "b arrived: extend");
    assert_eq!(c.next_deadline(), Some(at(6)));
    c.join(at(4), req("c", None, None));
    assert!(c.tick(at(6)).is_empty(), "c arrived: extend");
    assert_eq!(c.next_deadline(), Some(at(9)));
    let out = c.tick(at(9));
    for client in ["a", "b", "c"] {
        assert_eq!(joined(&out, client).generation, 1);
    }
    assert_eq!(
        joined(&out, "a").leader,
        "a-1",
        "the first member added leads"
    );
    assert!(
        joined(&out, "b").members.is_empty(),
        "followers get no member list"
    );
}

#[test]
fn the_initial_delay_never_outlasts_the_rebalance_timeout() {
    // delay 3 s, rebalance timeout 5 s, a member every second: 3 s, then min(3, 2) = 2 s
    // with nothing remaining, so the phase ends at 5 s although members keep coming.
    let mut c = Coordinator::new(GroupConfig {
        rebalance_timeout: secs(5),
        ..config()
    });
    c.join(at(0), req("m0", None, None));
    c.join(at(1), req("m1", None, None));
    c.join(at(2), req("m2", None, None));
    assert!(c.tick(at(3)).is_empty());
    assert_eq!(c.next_deadline(), Some(at(5)));
    c.join(at(4), req("m4", None, None));
    let out = c.join(at(5), req("m5", None, None));
    // The timer at 5 s runs before the request at 5 s.
    assert_eq!(joined(&out, "m4").generation, 1);
    assert_eq!(
        c.state(),
        GroupState::PreparingRebalance,
        "m5 starts the next rebalance"
    );
    assert_eq!(c.generation(), 1);
    let started = out.iter().find_map(|o| match o {
        Output::RebalanceStarted { from, .. } => Some(*from),
        _ => None,
    });
    assert_eq!(started, Some(GroupState::CompletingRebalance));
}

#[test]
fn a_zero_initial_delay_completes_on_the_first_tick() {
    let mut c = Coordinator::new(GroupConfig {
        initial_rebalance_delay: SimDuration::ZERO,
        ..config()
    });
    let out = c.join(at(1), req("a", None, None));
    assert!(replies(&out).is_empty());
    assert_eq!(c.next_deadline(), Some(at(1)));
    assert_eq!(joined(&c.tick(at(1)), "a").generation, 1);
}

#[test]
fn a_second_member_rebalances_and_assignments_wait_for_the_leaders_sync() {
    let (mut c, a) = stable_one(config(), None);
    let out = c.join(at(10), req("b", None, None));
    assert_eq!(c.state(), GroupState::PreparingRebalance);
    assert!(replies(&out).is_empty(), "b waits for a to rejoin");
    assert_eq!(
        c.next_deadline(),
        Some(at(48)),
        "a's session; the phase would end at 310 s"
    );
    // a learns of the rebalance from its heartbeat, and rejoins.
    let out = c.heartbeat(at(11), "a", &a, None, 1);
    assert_eq!(heartbeat_result(&out), Err(GroupError::RebalanceInProgress));
    let out = c.join(at(11), req("a", Some(&a), None));
    let ja = joined(&out, "a");
    let jb = joined(&out, "b");
    assert_eq!((ja.generation, jb.generation), (2, 2));
    assert_eq!(ja.leader, a, "the leader stays leader");
    assert_eq!(jb.leader, a);
    let listed: Vec<&str> = ja.members.iter().map(|m| m.member_id.as_str()).collect();
    assert_eq!(listed, [a.as_str(), jb.member_id.as_str()]);
    // A heartbeat of the old generation is refused; of the new one, accepted while
    // completing.
    let out = c.heartbeat(at(12), "b", &jb.member_id, None, 1);
    assert_eq!(heartbeat_result(&out), Err(GroupError::IllegalGeneration));
    let out = c.heartbeat(at(12), "b", &jb.member_id, None, 2);
    assert_eq!(heartbeat_result(&out), Ok(()));
    // b's SyncGroup waits for the leader's.
    assert!(c.sync(at(12), "b", &jb.member_id, None, 2, None).is_empty());
    let out = c.sync(at(12), "a", &a, None, 1, None);
    assert_eq!(
        replies(&out),
        [(
            "a".into(),
            Response::Sync(Err(GroupError::IllegalGeneration))
        )]
    );
    let out = c.sync(
        at(13),
        "a",
        &a,
        None,
        2,
        Some(assignment(&[
            (&a, &[0, 1]),
            (&jb.member_id, &[2, 3]),
            ("ghost", &[9]),
        ])),
    );
    assert_eq!(synced(&out, "a"), [0, 1]);
    assert_eq!(synced(&out, "b"), [2, 3]);
    assert_eq!(c.metrics().rebalances_total, 2);
    assert_eq!(c.metrics().stabilized_total, 2);
    // 0 s to 3 s, then 10 s to 13 s.
    assert_eq!(c.metrics().rebalance_time_total, secs(6));
    assert_eq!(c.metrics().rebalance_time_max, secs(3));
    assert!(
        !c.has_member("ghost"),
        "assignments for strangers are dropped"
    );
    // A late follower's SyncGroup in Stable gets its stored assignment.
    let out = c.sync(at(14), "b", &jb.member_id, None, 2, None);
    assert_eq!(synced(&out, "b"), [2, 3]);
}

#[test]
fn members_the_leader_leaves_out_get_an_empty_assignment() {
    let (mut c, a) = stable_one(config(), None);
    c.join(at(10), req("b", None, None));
    let out = c.join(at(10), req("a", Some(&a), None));
    let b = joined(&out, "b").member_id;
    c.sync(at(10), "b", &b, None, 2, None);
    let out = c.sync(
        at(10),
        "a",
        &a,
        None,
        2,
        Some(assignment(&[(&a, &[0, 1, 2, 3])])),
    );
    assert_eq!(synced(&out, "b"), Vec::<Partition>::new());
}

#[test]
fn a_follower_rejoining_a_stable_group_unchanged_gets_the_current_generation() {
    let (mut c, a, b) = stable_two(config(), None, None);
    let out = c.join(at(20), req("b", Some(&b), None));
    let j = joined(&out, "b");
    assert_eq!((j.generation, j.leader.as_str()), (2, a.as_str()));
    assert!(j.members.is_empty());
    assert_eq!(c.state(), GroupState::Stable);
    // With changed metadata (owned partitions), it starts a rebalance.
    let mut changed = req("b", Some(&b), None);
    changed.owned = vec![2];
    let out = c.join(at(21), changed);
    assert_eq!(rebalances_started(&out), 1);
    assert_eq!(c.state(), GroupState::PreparingRebalance);
    // The leader's rejoin does too, even unchanged.
    let (mut c, a, _) = stable_two(config(), None, None);
    let out = c.join(at(20), req("a", Some(&a), None));
    assert_eq!(rebalances_started(&out), 1);
}

#[test]
fn unknown_members_are_refused_everywhere() {
    let (mut c, _) = stable_one(config(), None);
    let out = c.join(at(5), req("x", Some("x-9"), None));
    assert_eq!(
        replies(&out),
        [("x".into(), Response::Join(Err(GroupError::UnknownMemberId)))]
    );
    let out = c.sync(at(5), "x", "x-9", None, 1, None);
    assert_eq!(
        replies(&out),
        [("x".into(), Response::Sync(Err(GroupError::UnknownMemberId)))]
    );
    let out = c.heartbeat(at(5), "x", "x-9", None, 1);
    assert_eq!(heartbeat_result(&out), Err(GroupError::UnknownMemberId));
    let out = c.leave(at(5), "x", Some("x-9"), None);
    assert_eq!(
        replies(&out),
        [(
            "x".into(),
            Response::Leave(Err(GroupError::UnknownMemberId))
        )]
    );
    assert_eq!(c.metrics().rebalances_total, 1, "nothing changed");
}

// ---------------------------------------------------------------------------------------------
// Sessions, the rebalance timeout, the sync timeout
// ---------------------------------------------------------------------------------------------

#[test]
fn a_silent_member_is_evicted_exactly_at_its_session_timeout() {
    let (mut c, a, b) = stable_two(config(), None, None);
    // Both heartbeat at 20 s; then only a does.
    assert_eq!(
        heartbeat_result(&c.heartbeat(at(20), "a", &a, None, 2)),
        Ok(())
    );
    assert_eq!(
        heartbeat_result(&c.heartbeat(at(20), "b", &b, None, 2)),
        Ok(())
    );
    assert_eq!(c.session_deadline(&b), Some(at(65)));
    for t in (23..65).step_by(3) {
        assert_eq!(
            heartbeat_result(&c.heartbeat(at(t), "a", &a, None, 2)),
            Ok(())
        );
    }
    assert!(c.tick(at(65) - SimDuration::from_nanos(1)).is_empty());
    assert!(c.has_member(&b));
    let out = c.tick(at(65));
    assert_eq!(
        out[0],
        Output::MemberRemoved {
            at: at(65),
            member_id: b.clone(),
            reason: RemoveReason::SessionExpired
        }
    );
    assert!(matches!(
        &out[1],
        Output::RebalanceStarted { at: t, generation: 2, from: GroupState::Stable, reason: RebalanceReason::MemberRemoved(m) }
            if *t == at(65) && *m == b
    ));
    assert_eq!(c.metrics().removed_session_expired, 1);
    // A heartbeat from b at the very instant is too late: the timer runs first.
    let (mut c, _, b) = stable_two(config(), None, None);
    c.heartbeat(at(20), "b", &b, None, 2);
    let out = c.heartbeat(at(65), "b", &b, None, 2);
    assert_eq!(heartbeat_result(&out), Err(GroupError::UnknownMemberId));
}

#[test]
fn a_member_that_does_not_rejoin_is_dropped_at_the_rebalance_timeout() {
    let (mut c, a, b) = stable_two(config(), None, None);
    // The leader rejoins at 20 s; b keeps heartbeating (its session stays alive) but is stuck
    // in a long batch and never rejoins.
    let out = c.join(at(20), req("a", Some(&a), None));
    assert_eq!(rebalances_started(&out), 1);
    for t in (21..320).step_by(3) {
        let out = c.heartbeat(at(t), "b", &b, None, 2);
        assert_eq!(heartbeat_result(&out), Err(GroupError::RebalanceInProgress));
    }
    assert!(c.tick(at(320) - SimDuration::from_nanos(1)).is_empty());
    let out = c.tick(at(320));
    assert_eq!(
        out[0],
        Output::MemberRemoved {
            at: at(320),
            member_id: b.clone(),
            reason: RemoveReason::NotRejoined
        }
    );
    let j = joined(&out, "a");
    assert_eq!(j.generation, 3);
    assert_eq!(j.members.len(), 1);
    // b's next heartbeat learns it is gone: it must rejoin as a new member.
    let out = c.heartbeat(at(321), "b", &b, None, 2);
    assert_eq!(heartbeat_result(&out), Err(GroupError::UnknownMemberId));
}

#[test]
fn a_parked_member_is_not_evicted_by_its_session_timer() {
    // Session 10 s, rebalance 60 s: a waits in its JoinGroup for 60 s without heartbeating.
    let cfg = GroupConfig {
        session_timeout: secs(10),
        rebalance_timeout: secs(60),
        ..config()
    };
    let (mut c, a, b) = stable_two(cfg, None, None);
    assert_eq!(c.session_deadline(&a), Some(at(20)));
    c.join(at(15), req("a", Some(&a), None));
    for t in (16..75).step_by(3) {
        c.heartbeat(at(t), "b", &b, None, 2);
    }
    assert!(
        c.has_member(&a),
        "its session timer fired at 20 s and let it be"
    );
    assert_eq!(c.session_deadline(&a), None);
    let out = c.tick(at(75));
    assert_eq!(
        joined(&out, "a").generation,
        3,
        "a survived its 10 s session"
    );
    assert_eq!(
        c.session_deadline(&a),
        Some(at(85)),
        "re-armed when the phase ends"
    );
    assert!(!c.has_member(&b));
}

#[test]
fn a_new_members_join_expires_after_the_new_member_timeout() {
    // The rebalance timeout (10 min) is longer than the new-member timeout (5 min), and b is
    // stuck: it heartbeats but does not rejoin.
    let cfg = GroupConfig {
        rebalance_timeout: secs(600),
        ..config()
    };
    let (mut c, a, b) = stable_two(cfg, None, None);
    c.join(at(20), req("a", Some(&a), None));
    c.join(at(30), req("c", None, None));
    for t in (21..330).step_by(3) {
        c.heartbeat(at(t), "b", &b, None, 2);
    }
    assert!(c.tick(at(330) - SimDuration::from_nanos(1)).is_empty());
    let out = c.tick(at(330));
    assert_eq!(
        replies(&out),
        [("c".into(), Response::Join(Err(GroupError::UnknownMemberId)))]
    );
    assert!(matches!(
        &out[1],
        Output::MemberRemoved {
            reason: RemoveReason::SessionExpired,
            ..
        }
    ));
    assert_eq!(
        c.state(),
        GroupState::PreparingRebalance,
        "still waiting for b"
    );
    assert_eq!(
        c.next_deadline(),
        Some(at(327) + secs(45)),
        "b's session, then the phase"
    );
}

#[test]
fn members_that_never_sync_are_removed_after_the_rebalance_timeout() {
    let (mut c, a) = stable_one(config(), None);
    c.join(at(10), req("b", None, None));
    let out = c.join(at(10), req("a", Some(&a), None));
    let b = joined(&out, "b").member_id;
    // b heartbeats but never sends SyncGroup; the leader syncs.
    c.sync(
        at(11),
        "a",
        &a,
        None,
        2,
        Some(assignment(&[(&a, &[0, 1]), (&b, &[2, 3])])),
    );
    assert_eq!(c.state(), GroupState::Stable);
    for t in (12..310).step_by(3) {
        c.heartbeat(at(t), "a", &a, None, 2);
        c.heartbeat(at(t), "b", &b, None, 2);
    }
    let out = c.tick(at(310));
    assert_eq!(
        out[0],
        Output::MemberRemoved {
            at: at(310),
            member_id: b.clone(),
            reason: RemoveReason::SyncExpired
        }
    );
    assert_eq!(rebalances_started(&out), 1);
    assert_eq!(c.metrics().removed_sync_expired, 1);
}

#[test]
fn a_rebalance_during_completing_fails_the_parked_syncs() {
    let (mut c, a) = stable_one(config(), None);
    c.join(at(10), req("b", None, None));
    let out = c.join(at(10), req("a", Some(&a), None));
    let b = joined(&out, "b").member_id;
    assert!(c.sync(at(11), "b", &b, None, 2, None).is_empty());
    let out = c.join(at(12), req("c", None, None));
    assert_eq!(
        replies(&out),
        [(
            "b".into(),
            Response::Sync(Err(GroupError::RebalanceInProgress))
        )]
    );
    assert_eq!(c.state(), GroupState::PreparingRebalance);
    // The leader's late SyncGroup is refused the same way.
    let out = c.sync(at(12), "a", &a, None, 2, Some(Assignment::new()));
    assert_eq!(
        replies(&out),
        [(
            "a".into(),
            Response::Sync(Err(GroupError::RebalanceInProgress))
        )]
    );
}

#[test]
fn a_leader_that_does_not_rejoin_is_replaced_by_one_that_did() {
    let (mut c, a, b) = stable_two(config(), None, None);
    // b rejoins with new metadata (a rebalance); a keeps heartbeating but never rejoins.
    c.join(at(20), with_owned(req("b", Some(&b), None), vec![2]));
    for t in (20..320).step_by(3) {
        let out = c.heartbeat(at(t), "a", &a, None, 2);
        assert_eq!(heartbeat_result(&out), Err(GroupError::RebalanceInProgress));
    }
    let out = c.tick(at(320));
    let j = joined(&out, "b");
    assert_eq!(j.leader, b);
    assert_eq!(j.members.len(), 1);
    assert!(!c.has_member(&a));
}

#[test]
fn leaving_starts_a_rebalance_and_the_last_leave_empties_the_group() {
    let (mut c, a, b) = stable_two(config(), None, None);
    let out = c.leave(at(20), "b", Some(&b), None);
    assert_eq!(replies(&out), [("b".into(), Response::Leave(Ok(())))]);
    assert_eq!(rebalances_started(&out), 1);
    let out = c.join(at(21), req("a", Some(&a), None));
    assert_eq!(
        joined(&out, "a").generation,
        3,
        "a was the only one left to rejoin"
    );
    let out = c.leave(at(22), "a", Some(&a), None);
    assert!(out.contains(&Output::Emptied {
        at: at(22),
        generation: 4
    }));
    assert_eq!(c.state(), GroupState::Empty);
    assert_eq!(c.leader(), None);
    assert_eq!(c.next_deadline(), None);
    // The next member starts an initial rebalance with its delay.
    c.join(at(30), req("c", None, None));
    assert_eq!(c.next_deadline(), Some(at(33)));
    assert_eq!(joined(&c.tick(at(33)), "c").generation, 5);
}

// ---------------------------------------------------------------------------------------------
// Static membership
// ---------------------------------------------------------------------------------------------

#[test]
fn a_static_member_restarting_within_its_session_keeps_its_assignment() {
    let (mut c, a, b) = stable_two(config(), Some("ia"), Some("ib"));
    let rebalances = c.metrics().rebalances_total;
    // b's process dies at 20 s without a LeaveGroup (static members send none) and comes
    // back at 40 s with no member id.
    assert!(!sends_leave_group(Some("ib")));
    c.heartbeat(at(20), "b", &b, Some("ib"), 2);
    for t in (20..40).step_by(3) {
        c.heartbeat(at(t), "a", &a, Some("ia"), 2);
    }
    let out = c.join(at(40), req("b2", None, Some("ib")));
    assert_eq!(rebalances_started(&out), 0);
    let j = joined(&out, "b2");
    assert_ne!(j.member_id, b, "a new member id");
    assert_eq!((j.generation, j.leader.as_str()), (2, a.as_str()));
    assert!(j.members.is_empty());
    assert!(!j.skip_assignment);
    assert_eq!(c.static_member("ib"), Some(j.member_id.as_str()));
    let out = c.sync(at(40), "b2", &j.member_id, Some("ib"), 2, None);
    assert_eq!(synced(&out, "b2"), [2, 3], "the old member's assignment");
    assert_eq!(c.generation(), 2);
    assert_eq!(c.state(), GroupState::Stable);
    assert_eq!(c.metrics().rebalances_total, rebalances);
    assert_eq!(c.metrics().static_replacements, 1);
    // The old id is fenced; without the instance id it is simply unknown.
    let out = c.heartbeat(at(41), "b", &b, Some("ib"), 2);
    assert_eq!(heartbeat_result(&out), Err(GroupError::FencedInstanceId));
    let out = c.heartbeat(at(41), "b", &b, None, 2);
    assert_eq!(heartbeat_result(&out), Err(GroupError::UnknownMemberId));
    // Its session timer is the new member's, armed at 40 s.
    assert_eq!(c.session_deadline(&j.member_id), Some(at(85)));
}

#[test]
fn a_static_leader_restarting_is_told_to_skip_the_assignment() {
    let (mut c, a, _b) = stable_two(config(), Some("ia"), Some("ib"));
    let out = c.join(at(30), req("a2", None, Some("ia")));
    let j = joined(&out, "a2");
    assert_eq!(j.leader, j.member_id);
    assert!(j.skip_assignment);
    assert_eq!(j.members.len(), 2);
    assert_ne!(j.member_id, a);
    let out = c.sync(at(30), "a2", &j.member_id, Some("ia"), 2, None);
    assert_eq!(synced(&out, "a2"), [0, 1]);
    assert_eq!(c.metrics().rebalances_total, 2);
}

#[test]
fn a_static_member_restarting_after_its_session_causes_rebalances() {
    let (mut c, a, b) = stable_two(config(), Some("ia"), Some("ib"));
    c.heartbeat(at(20), "b", &b, Some("ib"), 2);
    for t in (20..60).step_by(3) {
        c.heartbeat(at(t), "a", &a, Some("ia"), 2);
    }
    let out = c.tick(at(65));
    assert!(matches!(
        &out[0],
        Output::MemberRemoved {
            reason: RemoveReason::SessionExpired,
            ..
        }
    ));
    assert_eq!(c.static_member("ib"), None);
    let out = c.join(at(66), req("a", Some(&a), Some("ia")));
    assert_eq!(joined(&out, "a").generation, 3);
    c.sync(
        at(66),
        "a",
        &a,
        Some("ia"),
        3,
        Some(assignment(&[(&a, &[0, 1, 2, 3])])),
    );
    // The restarted instance is a new member now.
    let out = c.join(at(70), req("b2", None, Some("ib")));
    assert_eq!(rebalances_started(&out), 1);
    let out = c.join(at(71), req("a", Some(&a), Some("ia")));
    assert_eq!(joined(&out, "b2").generation, 4);
    assert_eq!(c.metrics().rebalances_total, 4);
}

#[test]
fn static_members_that_do_not_rejoin_stay_until_their_sessions_expire() {
    let cfg = GroupConfig {
        rebalance_timeout: secs(60),
        ..config()
    };
    let (mut c, a, b) = stable_two(cfg, Some("ia"), Some("ib"));
    c.join(at(20), req("a", Some(&a), Some("ia")));
    // b heartbeats (so its session lives) but does not rejoin.
    for t in (20..80).step_by(3) {
        let out = c.heartbeat(at(t), "b", &b, Some("ib"), 2);
        assert_eq!(heartbeat_result(&out), Err(GroupError::RebalanceInProgress));
    }
    let out = c.tick(at(80));
    let j = joined(&out, "a");
    assert_eq!(j.generation, 3);
    assert_eq!(
        j.members.len(),
        2,
        "b is kept, and the leader assigns to it"
    );
    assert!(
        replies(&out).iter().all(|(to, _)| to == "a"),
        "b has no parked JoinGroup"
    );
    assert!(c.has_member(&b));
}

#[test]
fn a_static_replacement_during_completing_restarts_the_rebalance() {
    let (mut c, a) = stable_one(config(), Some("ia"));
    c.join(at(10), req("b", None, Some("ib")));
    let out = c.join(at(10), req("a", Some(&a), Some("ia")));
    let b = joined(&out, "b").member_id;
    assert!(c.sync(at(11), "b", &b, Some("ib"), 2, None).is_empty());
    let out = c.join(at(12), req("b2", None, Some("ib")));
    assert_eq!(
        replies(&out),
        [(
            "b".into(),
            Response::Sync(Err(GroupError::FencedInstanceId))
        )]
    );
    assert_eq!(c.state(), GroupState::PreparingRebalance);
}

// ---------------------------------------------------------------------------------------------
// The member side
// ---------------------------------------------------------------------------------------------

#[test]
fn eager_revokes_everything_and_cooperative_only_what_moves() {
    assert_eq!(revoke_on_rejoin(Protocol::Eager, &[3, 1, 2]), [1, 2, 3]);
    assert!(revoke_on_rejoin(Protocol::Cooperative, &[3, 1, 2]).is_empty());
    let eager = apply_assignment(Protocol::Eager, &[], &[4, 2]);
    assert_eq!(eager.owned, [2, 4]);
    assert_eq!(eager.added, [2, 4]);
    assert!(eager.revoked.is_empty() && !eager.rejoin);
    let coop = apply_assignment(Protocol::Cooperative, &[1, 2, 3], &[2, 3, 5]);
    assert_eq!(coop.owned, [2, 3, 5]);
    assert_eq!(coop.added, [5]);
    assert_eq!(coop.revoked, [1]);
    assert!(coop.rejoin, "revoked something: rejoin at once");
    let kept = apply_assignment(Protocol::Cooperative, &[1, 2], &[1, 2, 3]);
    assert!(kept.revoked.is_empty() && !kept.rejoin);
}

#[test]
fn a_cooperative_leader_withholds_partitions_still_owned_elsewhere() {
    let owned: BTreeMap<MemberId, Vec<Partition>> =
        [("a".into(), vec![0, 1, 2, 3]), ("b".into(), vec![])].into();
    let target = assignment(&[("a", &[0, 1]), ("b", &[2, 3])]);
    assert_eq!(direct_transfers(&owned, &target), [2, 3]);
    let first = withhold_transfers(&target, &owned);
    assert_eq!(first, assignment(&[("a", &[0, 1]), ("b", &[])]));
    assert!(direct_transfers(&owned, &first).is_empty());
    assert!(poll_timeout_expired(at(0), at(300), secs(300)));
    assert!(!poll_timeout_expired(
        at(0),
        at(300) - SimDuration::from_nanos(1),
        secs(300)
    ));
    assert!(sends_leave_group(None));
}

// ---------------------------------------------------------------------------------------------
// A simulated group
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// JoinGroup sent, not answered.
    Joining,
    /// SyncGroup sent, not answered.
    Syncing,
    Stable,
}

#[derive(Debug)]
struct Client {
    instance: Option<String>,
    member_id: Option<String>,
    generation: u32,
    owned: Vec<Partition>,
    phase: Phase,
    alive: bool,
    next_heartbeat: SimTime,
    /// What it owned when it last learnt of a rebalance, and what it revoked since.
    owned_at_rebalance: Vec<Partition>,
    revoked_since: BTreeSet<Partition>,
}

/// Counts of what happened, for `sometimes` checks and the eager/cooperative contrast.
#[derive(Debug, Default)]
struct Seen {
    /// Partitions a member owned when a rebalance started, got back, and had revoked in
    /// between.
    kept_but_revoked: u64,
    /// Cooperative second rounds: a member revoked, rejoined at once.
    cooperative_rejoins: u64,
    /// Static members replaced by a restarted instance (the coordinator's counter).
    static_replacements: u64,
    rebalances: u64,
}

struct Harness {
    coord: Coordinator,
    protocol: Protocol,
    partitions: u32,
    clients: BTreeMap<String, Client>,
    seen: Seen,
    now: SimTime,
    trace: Vec<String>,
}

/// A balanced, sticky assignor: members keep what they own up to their quota (the members
/// owning most get the larger quotas), the rest goes in order to members under quota.
fn sticky_assign(members: &[JoinMember], partitions: u32) -> Assignment {
    let m = members.len() as u32;
    let mut order: Vec<&JoinMember> = members.iter().collect();
    order.sort_by(|x, y| {
        y.owned
            .len()
            .cmp(&x.owned.len())
            .then(x.member_id.cmp(&y.member_id))
    });
    let mut quota: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, member) in order.iter().enumerate() {
        let q = partitions / m + u32::from((i as u32) < partitions % m);
        quota.insert(member.member_id.as_str(), q as usize);
    }
    let mut taken = BTreeSet::new();
    let mut out: Assignment = BTreeMap::new();
    for member in &order {
        let mine: &mut Vec<Partition> = out.entry(member.member_id.clone()).or_default();
        for &p in &member.owned {
            if p < partitions && mine.len() < quota[member.member_id.as_str()] && taken.insert(p) {
                mine.push(p);
            }
        }
    }
    let mut free = (0..partitions).filter(|p| !taken.contains(p));
    for member in &order {
        let mine = out.get_mut(&member.member_id).expect("inserted");
        while mine.len() < quota[member.member_id.as_str()] {
            mine.push(free.next().expect("quotas sum to the partitions"));
        }
        mine.sort_unstable();
    }
    out
}

impl Harness {
    fn new(protocol: Protocol, partitions: u32) -> Self {
        Harness {
            coord: Coordinator::new(GroupConfig {
                protocol,
                ..config()
            }),
            protocol,
            partitions,
            clients: BTreeMap::new(),
            seen: Seen::default(),
            now: SimTime::ZERO,
            trace: Vec::new(),
        }
    }

    fn start(&mut self, name: &str, instance: Option<&str>) {
        self.clients.insert(
            name.to_string(),
            Client {
                instance: instance.map(Into::into),
                member_id: None,
                generation: 0,
                owned: Vec::new(),
                phase: Phase::Joining,
                alive: true,
                next_heartbeat: SimTime::MAX,
                owned_at_rebalance: Vec::new(),
                revoked_since: BTreeSet::new(),
            },
        );
        let out = self.coord.join(self.now, req(name, None, instance));
        self.deliver(out);
    }

    /// The process dies: no more requests, and (static or not) no LeaveGroup.
    fn crash(&mut self, name: &str) {
        let c = self.clients.get_mut(name).expect("a client");
        c.alive = false;
        c.owned.clear();
    }

    /// A clean shutdown: revoke, and LeaveGroup if dynamic.
    fn stop(&mut self, name: &str) {
        let c = self.clients.get_mut(name).expect("a client");
        c.alive = false;
        c.owned.clear();
        if sends_leave_group(c.instance.as_deref()) {
            if let Some(id) = c.member_id.clone() {
                let out = self.coord.leave(self.now, name, Some(&id), None);
                self.deliver(out);
            }
        }
    }

    fn rejoin(&mut self, name: &str, reset: bool) -> Vec<Output> {
        let protocol = self.protocol;
        let c = self.clients.get_mut(name).expect("a client");
        if reset {
            // UNKNOWN_MEMBER_ID or ILLEGAL_GENERATION: the partitions are lost.
            c.member_id = None;
            c.owned.clear();
        }
        if c.phase == Phase::Stable {
            c.owned_at_rebalance = c.owned.clone();
            c.revoked_since.clear();
        }
        let revoked = revoke_on_rejoin(protocol, &c.owned);
        c.owned.retain(|p| !revoked.contains(p));
        c.revoked_since.extend(revoked);
        c.phase = Phase::Joining;
        c.next_heartbeat = SimTime::MAX;
        let mut r = req(name, c.member_id.as_deref(), c.instance.as_deref());
        r.owned = c.owned.clone();
        self.coord.join(self.now, r)
    }

    fn deliver(&mut self, out: Vec<Output>) {
        let mut queue: VecDeque<Output> = out.into();
        let mut steps = 0;
        while let Some(o) = queue.pop_front() {
            steps += 1;
            assert!(steps < 100_000, "replies do not settle");
            self.trace.push(format!("{} {o:?}", self.now));
            let (to, response) = match o {
                Output::Reply { to, response } => (to, response),
                Output::RebalanceStarted { .. } => {
                    self.seen.rebalances += 1;
                    continue;
                }
                _ => continue,
            };
            if !self.clients.get(&to).is_some_and(|c| c.alive) {
                continue;
            }
            let more = self.react(&to, response);
            queue.extend(more);
            self.check_single_ownership();
        }
    }

    fn react(&mut self, name: &str, response: Response) -> Vec<Output> {
        let now = self.now;
        let protocol = self.protocol;
        let partitions = self.partitions;
        match response {
            Response::Join(Ok(j)) => {
                let c = self.clients.get_mut(name).expect("a client");
                c.member_id = Some(j.member_id.clone());
                c.generation = j.generation;
                c.phase = Phase::Syncing;
                let instance = c.instance.clone();
                let plan = (j.leader == j.member_id && !j.skip_assignment).then(|| {
                    let target = sticky_assign(&j.members, partitions);
                    match protocol {
                        Protocol::Eager => target,
                        Protocol::Cooperative => {
                            let owned = j
                                .members
                                .iter()
                                .map(|m| (m.member_id.clone(), m.owned.clone()))
                                .collect();
                            let first = withhold_transfers(&target, &owned);
                            assert!(direct_transfers(&owned, &first).is_empty());
                            first
                        }
                    }
                });
                self.coord.sync(
                    now,
                    name,
                    &j.member_id,
                    instance.as_deref(),
                    j.generation,
                    plan,
                )
            }
            Response::Join(Err(GroupError::FencedInstanceId))
            | Response::Sync(Err(GroupError::FencedInstanceId))
            | Response::Heartbeat(Err(GroupError::FencedInstanceId)) => {
                self.clients.get_mut(name).expect("a client").alive = false;
                Vec::new()
            }
            Response::Join(Err(_)) => self.rejoin(name, true),
            Response::Sync(Ok(assigned)) => {
                let c = self.clients.get_mut(name).expect("a client");
                let change = apply_assignment(protocol, &c.owned, &assigned);
                c.revoked_since.extend(change.revoked.iter().copied());
                for p in &c.owned_at_rebalance {
                    if change.owned.contains(p) && c.revoked_since.contains(p) {
                        self.seen.kept_but_revoked += 1;
                    }
                }
                c.owned = change.owned;
                c.phase = Phase::Stable;
                c.next_heartbeat = now + DEFAULT_HEARTBEAT_INTERVAL;
                c.owned_at_rebalance = c.owned.clone();
                c.revoked_since.clear();
                if change.rejoin {
                    self.seen.cooperative_rejoins += 1;
                    self.rejoin(name, false)
                } else {
                    Vec::new()
                }
            }
            Response::Sync(Err(GroupError::RebalanceInProgress))
            | Response::Heartbeat(Err(GroupError::RebalanceInProgress)) => self.rejoin(name, false),
            Response::Sync(Err(_)) | Response::Heartbeat(Err(_)) => self.rejoin(name, true),
            Response::Heartbeat(Ok(())) | Response::Leave(_) => Vec::new(),
        }
    }

    /// Cooperative or eager, no partition ever has two live owners.
    fn check_single_ownership(&self) {
        let mut owner: BTreeMap<Partition, &str> = BTreeMap::new();
        for (name, c) in self.clients.iter().filter(|(_, c)| c.alive) {
            for &p in &c.owned {
                if let Some(other) = owner.insert(p, name) {
                    panic!(
                        "partition {p} owned by {other} and {name} at {}\n{}",
                        self.now,
                        self.trace.join("\n")
                    );
                }
            }
        }
    }

    /// Runs heartbeats and the coordinator's timers up to `until`.
    fn run_until(&mut self, until: SimTime) {
        loop {
            let heartbeat = self
                .clients
                .iter()
                .filter(|(_, c)| c.alive && c.phase == Phase::Stable)
                .map(|(n, c)| (c.next_heartbeat, n.clone()))
                .min();
            let timer = self.coord.next_deadline();
            let next = [heartbeat.as_ref().map(|(t, _)| *t), timer]
                .into_iter()
                .flatten()
                .min();
            let Some(next) = next.filter(|t| *t <= until) else {
                break;
            };
            self.now = next;
            if timer == Some(next) {
                let out = self.coord.tick(next);
                self.deliver(out);
            } else if let Some((_, name)) = heartbeat {
                let c = self.clients.get_mut(&name).expect("a client");
                c.next_heartbeat = next + DEFAULT_HEARTBEAT_INTERVAL;
                let (id, instance, generation) = (
                    c.member_id.clone().expect("stable"),
                    c.instance.clone(),
                    c.generation,
                );
                let out = self
                    .coord
                    .heartbeat(next, &name, &id, instance.as_deref(), generation);
                self.deliver(out);
            }
        }
        self.now = until;
    }

    fn live_owned(&self) -> Vec<Partition> {
        let mut all: Vec<Partition> = self
            .clients
            .values()
            .filter(|c| c.alive)
            .flat_map(|c| c.owned.iter().copied())
            .collect();
        all.sort_unstable();
        all
    }
}

#[test]
fn cooperative_rebalancing_takes_two_rounds_and_never_stops_kept_partitions() {
    let mut h = Harness::new(Protocol::Cooperative, 4);
    h.start("a", None);
    h.run_until(at(10));
    assert_eq!(h.clients["a"].owned, [0, 1, 2, 3]);
    assert_eq!(h.coord.generation(), 1);
    h.start("b", None);
    // a's next heartbeat (at 12 s) learns of the rebalance. Round one (generation 2): a keeps
    // 0 and 1 throughout, revokes 2 and 3 and rejoins at once; b gets nothing yet.
    h.run_until(at(13));
    assert_eq!(h.coord.generation(), 2);
    assert_eq!(
        h.coord.state(),
        GroupState::PreparingRebalance,
        "round two has begun"
    );
    assert_eq!(h.clients["a"].owned, [0, 1]);
    assert!(h.clients["b"].owned.is_empty());
    // b learns of round two from its heartbeat at 15 s (3 s after its SyncGroup), and gets 2
    // and 3 (generation 3).
    h.run_until(at(15) - SimDuration::from_nanos(1));
    assert_eq!(h.coord.generation(), 2);
    h.run_until(at(15));
    assert_eq!(h.clients["a"].owned, [0, 1]);
    assert_eq!(h.clients["b"].owned, [2, 3]);
    assert_eq!(h.coord.generation(), 3);
    assert_eq!(h.coord.state(), GroupState::Stable);
    assert_eq!(h.seen.cooperative_rejoins, 1);
    assert_eq!(h.seen.kept_but_revoked, 0);
    // Eager: one round, but a stopped 0 and 1 for it too.
    let mut h = Harness::new(Protocol::Eager, 4);
    h.start("a", None);
    h.run_until(at(10));
    h.start("b", None);
    h.run_until(at(13));
    assert_eq!(h.coord.generation(), 2);
    assert_eq!(h.live_owned(), [0, 1, 2, 3]);
    assert_eq!(h.seen.kept_but_revoked, 2, "a revoked what it got back");
}

/// Random membership: starts, clean stops, crashes and restarts of static instances, with
/// random gaps; then quiet. Returns what was seen and the coordinator's trace hash.
fn random_run(protocol: Protocol, seed: u64) -> (Seen, u64, Vec<Partition>) {
    let mut rng = stream(seed, "group-membership");
    let mut h = Harness::new(protocol, 12);
    let mut started = 0_u32;
    for _ in 0..40 {
        let gap = SimDuration::from_millis(rng.random_range(100..30_000_u64));
        let until = h.now + gap;
        h.run_until(until);
        let alive: Vec<String> = h
            .clients
            .iter()
            .filter(|(_, c)| c.alive)
            .map(|(n, _)| n.clone())
            .collect();
        let crashed_static: Vec<String> = h
            .clients
            .iter()
            .filter(|(_, c)| !c.alive && c.instance.is_some())
            .map(|(n, _)| n.clone())
            .collect();
        match rng.random_range(0..10_u32) {
            0..=3 if alive.len() < 8 => {
                started += 1;
                let name = format!("c{started}");
                let instance = rng.random_bool(0.5).then(|| format!("i{started}"));
                h.start(&name, instance.as_deref());
            }
            4..=5 if !alive.is_empty() => {
                let victim = &alive[rng.random_range(0..alive.len())];
                h.stop(&victim.clone());
            }
            6..=7 if !alive.is_empty() => {
                let victim = &alive[rng.random_range(0..alive.len())];
                h.crash(&victim.clone());
            }
            8..=9 if !crashed_static.is_empty() => {
                // The same instance comes back as a new process.
                let name = crashed_static[rng.random_range(0..crashed_static.len())].clone();
                let instance = h.clients[&name].instance.clone();
                started += 1;
                let restarted = format!("c{started}");
                h.clients.remove(&name);
                h.start(&restarted, instance.as_deref());
            }
            _ => {}
        }
    }
    // Quiet: every crashed member's session expires and the group settles.
    let end = h.now + SimDuration::from_mins(20);
    h.run_until(end);
    let live = h.clients.values().filter(|c| c.alive).count();
    if live > 0 {
        assert_eq!(h.coord.state(), GroupState::Stable, "seed {seed}: settles");
        assert_eq!(
            h.coord.member_ids().len(),
            live,
            "seed {seed}: only live members stay"
        );
    }
    let hash = crate::engine::rng::fnv1a(h.trace.join("\n").as_bytes());
    let owned = h.live_owned();
    h.seen.static_replacements = h.coord.metrics().static_replacements;
    (h.seen, hash, owned)
}

#[test]
fn property_cooperative_never_revokes_kept_partitions_and_eager_does() {
    let mut coop = Seen::default();
    let mut eager = Seen::default();
    for seed in 0..40 {
        let (seen, _, owned) = random_run(Protocol::Cooperative, seed);
        // Always: kept partitions are never stopped, and all partitions end up owned once.
        assert_eq!(seen.kept_but_revoked, 0, "replay: cooperative seed={seed}");
        assert!(
            owned.is_empty() || owned == (0..12).collect::<Vec<_>>(),
            "seed {seed}: {owned:?}"
        );
        coop.cooperative_rejoins += seen.cooperative_rejoins;
        coop.static_replacements += seen.static_replacements;
        coop.rebalances += seen.rebalances;
        let (seen, _, owned) = random_run(Protocol::Eager, seed);
        assert!(
            owned.is_empty() || owned == (0..12).collect::<Vec<_>>(),
            "seed {seed}: {owned:?}"
        );
        eager.kept_but_revoked += seen.kept_but_revoked;
        eager.rebalances += seen.rebalances;
    }
    // Sometimes (so that the above is not vacuous): second rounds happened, a restarted
    // static instance got its assignment back without a rebalance, and eager members did
    // stop partitions they got back.
    assert!(coop.cooperative_rejoins > 0, "{coop:?}");
    assert!(coop.static_replacements > 0, "{coop:?}");
    assert!(coop.rebalances > 40, "{coop:?}");
    assert!(eager.kept_but_revoked > 0, "{eager:?}");
}

#[test]
fn the_same_seed_gives_the_same_run() {
    for protocol in [Protocol::Eager, Protocol::Cooperative] {
        let (_, h1, o1) = random_run(protocol, 7);
        let (_, h2, o2) = random_run(protocol, 7);
        assert_eq!(h1, h2, "{protocol:?}");
        assert_eq!(o1, o2);
    }
}

// ---------------------------------------------------------------------------------------------
// OffsetCommit validation
// ---------------------------------------------------------------------------------------------

#[test]
fn an_offset_commit_needs_a_current_member_and_generation_except_in_an_empty_group() {
    // Empty: a commit outside group management is stored; Kafka's generation -1.
    let c = Coordinator::new(config());
    assert_eq!(c.validate_commit(None), Ok(()));
    let (mut c, a, b) = stable_two(config(), None, Some("ib"));
    assert_eq!(c.validate_commit(Some((&a, None, 2))), Ok(()));
    assert_eq!(c.validate_commit(Some((&b, Some("ib"), 2))), Ok(()));
    // Not a member any more, or never one: UNKNOWN_MEMBER_ID; so is an anonymous commit to a
    // group with members.
    assert_eq!(
        c.validate_commit(Some(("zombie-9", None, 2))),
        Err(GroupError::UnknownMemberId)
    );
    assert_eq!(c.validate_commit(None), Err(GroupError::UnknownMemberId));
    // A member of an earlier generation: ILLEGAL_GENERATION.
    assert_eq!(
        c.validate_commit(Some((&a, None, 1))),
        Err(GroupError::IllegalGeneration)
    );
    // Another member id under b's instance id: FENCED_INSTANCE_ID.
    assert_eq!(
        c.validate_commit(Some((&a, Some("ib"), 2))),
        Err(GroupError::FencedInstanceId)
    );
    // During a rebalance a member of the current generation still commits (the eager
    // member's commit before it rejoins); after the rebalance its old generation is refused.
    c.join(at(20), req("c", None, None));
    assert_eq!(c.state(), GroupState::PreparingRebalance);
    assert_eq!(c.validate_commit(Some((&a, None, 2))), Ok(()));
    // a leaves: its commits are a zombie's.
    c.leave(at(21), "a", Some(&a), None);
    assert_eq!(
        c.validate_commit(Some((&a, None, 2))),
        Err(GroupError::UnknownMemberId)
    );
}
