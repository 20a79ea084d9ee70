//! faultline's one integration-test binary: each module drives a part of the public API the way
//! a user would. Slow sweeps are gated by `FAULTLINE_SLOW=1`.

mod autoscale;
mod bad_input;
mod cache;
mod checks;
mod cli;
mod coord_lease;
mod coord_props;
mod coord_raft;
mod coord_repl;
mod coord_split;
mod deploy_roll;
mod determinism;
mod engine;
mod faults;
mod fidelity;
mod log;
mod log_properties;
mod metrics;
mod properties;
mod raft_observer;
mod rpc;
mod scenarios;
mod storm;
mod support;
mod workloads;

#[path = "../../benches/workloads.rs"]
mod bench_workloads;

/// The examples assert their own outcomes; running them here keeps them honest.
#[allow(dead_code)]
#[path = "../../examples/quickstart.rs"]
mod quickstart;

#[test]
fn quickstart_example_runs_and_holds() {
    quickstart::main();
}

#[path = "../../examples/rebalance_storm.rs"]
mod rebalance_storm;

#[test]
fn rebalance_storm_example_runs_and_holds() {
    rebalance_storm::story(None);
}

#[allow(dead_code)]
#[path = "../../examples/thundering_herd.rs"]
mod thundering_herd;

#[test]
fn thundering_herd_example_runs_and_holds() {
    thundering_herd::main();
}

#[path = "../../examples/split_brain.rs"]
mod split_brain;

#[test]
fn split_brain_example_runs_and_holds() {
    split_brain::story(None);
}
