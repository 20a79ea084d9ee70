//! The scenarios that ship in `scenarios/`, embedded so that `faultline run mmc_queue` works
//! from any directory and `faultline list` can describe them. A test checks that this list and
//! the folder agree.

/// (name, path, text) of every shipped scenario.
pub const SHIPPED: &[(&str, &str, &str)] = &[
    (
        "auto_commit_loss",
        "scenarios/auto_commit_loss.ron",
        include_str!("../../scenarios/auto_commit_loss.ron"),
    ),
    (
        "cache_avalanche",
        "scenarios/cache_avalanche.ron",
        include_str!("../../scenarios/cache_avalanche.ron"),
    ),
    (
        "cache_penetration",
        "scenarios/cache_penetration.ron",
        include_str!("../../scenarios/cache_penetration.ron"),
    ),
    (
        "cache_stampede",
        "scenarios/cache_stampede.ron",
        include_str!("../../scenarios/cache_stampede.ron"),
    ),
    (
        "cascading_timeouts",
        "scenarios/cascading_timeouts.ron",
        include_str!("../../scenarios/cascading_timeouts.ron"),
    ),
    (
        "clock_skew_lww",
        "scenarios/clock_skew_lww.ron",
        include_str!("../../scenarios/clock_skew_lww.ron"),
    ),
    (
        "consumer_lag_retention",
        "scenarios/consumer_lag_retention.ron",
        include_str!("../../scenarios/consumer_lag_retention.ron"),
    ),
    (
        "herd_after_restart",
        "scenarios/herd_after_restart.ron",
        include_str!("../../scenarios/herd_after_restart.ron"),
    ),
    (
        "hot_key",
        "scenarios/hot_key.ron",
        include_str!("../../scenarios/hot_key.ron"),
    ),
    (
        "hot_partition",
        "scenarios/hot_partition.ron",
        include_str!("../../scenarios/hot_partition.ron"),
    ),
    (
        "jitter_contention",
        "scenarios/jitter_contention.ron",
        include_str!("../../scenarios/jitter_contention.ron"),
    ),
    (
        "mmc_queue",
        "scenarios/mmc_queue.ron",
        include_str!("../../scenarios/mmc_queue.ron"),
    ),
    (
        "poison_pill",
        "scenarios/poison_pill.ron",
        include_str!("../../scenarios/poison_pill.ron"),
    ),
    (
        "pool_exhaustion",
        "scenarios/pool_exhaustion.ron",
        include_str!("../../scenarios/pool_exhaustion.ron"),
    ),
    (
        "raft_election",
        "scenarios/raft_election.ron",
        include_str!("../../scenarios/raft_election.ron"),
    ),
    (
        "rebalance_storm",
        "scenarios/rebalance_storm.ron",
        include_str!("../../scenarios/rebalance_storm.ron"),
    ),
    (
        "retry_storm",
        "scenarios/retry_storm.ron",
        include_str!("../../scenarios/retry_storm.ron"),
    ),
    (
        "rolling_restart",
        "scenarios/rolling_restart.ron",
        include_str!("../../scenarios/rolling_restart.ron"),
    ),
    (
        "slow_batch_poll_timeout",
        "scenarios/slow_batch_poll_timeout.ron",
        include_str!("../../scenarios/slow_batch_poll_timeout.ron"),
    ),
    (
        "traffic_spike",
        "scenarios/traffic_spike.ron",
        include_str!("../../scenarios/traffic_spike.ron"),
    ),
    (
        "unbounded_queue",
        "scenarios/unbounded_queue.ron",
        include_str!("../../scenarios/unbounded_queue.ron"),
    ),
    (
        "zombie_lock",
        "scenarios/zombie_lock.ron",
        include_str!("../../scenarios/zombie_lock.ron"),
    ),
];

/// The shipped scenario called `name` (with or without `.ron`): (path, text).
pub fn shipped(name: &str) -> Option<(&'static str, &'static str)> {
    let name = name.strip_suffix(".ron").unwrap_or(name);
    SHIPPED
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|&(_, path, text)| (path, text))
}
