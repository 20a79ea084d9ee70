//! Split brain, and what each fix does about it: the shipped `split_brain` scenario (a Redis-like
//! primary, two asynchronous replicas, three Sentinel watchers, a client on each side of a 70 s
//! partition) run once per variant on the same seed.
//!
//! For each variant the example tells the run from its own trace and metrics: the partition,
//! the watchers' failover (which node, which epoch), how long the isolated primary kept
//! acknowledging writes as the old epoch, the heal and the old primary's resync, and the
//! oracle's verdict (acknowledged writes lost, time two primaries both acknowledged writes).
//! It asserts what it says (so it doubles as a test, run by `tests/it/main.rs`), and writes,
//! per variant, an SVG chart of who believed it was primary over time into
//! `faultline-out/split_brain-example/`.
//!
//!     cargo run --release --example split_brain

use faultline::report::chart::{ChartLine, ChartSpec, FaultWindow, render_svg};
use faultline::report::{Unit, grouped};
use faultline::scenario::{Scenario, build, shipped};
use faultline::{SimTime, TraceKind};

const NODES: [&str; 3] = ["db0", "db1", "db2"];

fn count(n: u64) -> String {
    grouped(n as i64)
}

fn secs(t: u64) -> f64 {
    t as f64 / 1e9
}

/// What one variant's run showed.
struct Run {
    name: String,
    timeline: Vec<String>,
    lost: u64,
    acked: u64,
    overlap: f64,
    /// Writes db0 acknowledged as primary of epoch 1 after a replica was promoted.
    zombie_acks: u64,
    promoted: Option<(f64, String, u64)>,
    power_offs: u64,
    /// Per node, its `is_primary` samples.
    primary: Vec<Vec<(SimTime, f64)>>,
}

fn run(scenario: &Scenario, variant: &str, seed: u64) -> Run {
    let v = (scenario.variants.iter())
        .find(|v| v.name == variant)
        .unwrap_or_else(|| panic!("no variant `{variant}`"));
    let mut sim = build(scenario, v, seed, true).expect("a loaded scenario builds");
    sim.run_until(SimTime::ZERO.saturating_add(scenario.duration));
    let m = sim.metrics();
    let counter = |name: &str| {
        m.counter_value(name)
            .unwrap_or_else(|| panic!("no counter `{name}`"))
    };
    let lost = counter("oracle.acked_writes_lost_total");
    let acked = counter("oracle.acked_writes_total");
    let overlap = m
        .series("oracle.two_primaries_overlap_seconds")
        .and_then(|s| s.points.last().map(|p| p.1))
        .unwrap_or(0.0);
    let power_offs = counter("pdu.power_offs_total");
    let lost_series = m
        .series("oracle.acked_writes_lost_total")
        .expect("the oracle's counter is sampled")
        .clone();
    // The counter's sampled value one sample interval after `t_ns`.
    let lost_after = |t_ns: u64| {
        let t = SimTime::from_nanos(t_ns).saturating_add(scenario.sample);
        lost_series.value_at(t).unwrap_or(0.0) as u64
    };
    let mut lost_at_resync = None;
    let mut lost_before_heal = None;
    let primary = NODES
        .iter()
        .map(|n| {
            let s = m
                .series(&format!("{n}.is_primary"))
                .expect("a gauge per node");
            s.points.clone()
        })
        .collect();

    let mut timeline = Vec::new();
    let mut promoted: Option<(f64, String, u64)> = None;
    let mut zombie_acks = 0u64;
    let mut last_zombie: Option<f64> = None;
    let mut synced = false;
    let mut refusing = false;
    let records = sim.trace().records().expect("recorded");
    for r in records {
        let t = secs(r.time_ns);
        let actor = r.actor.as_deref().unwrap_or("");
        match r.kind {
            TraceKind::Fault => {
                let heal = r.detail.starts_with("end of ");
                if heal {
                    lost_before_heal = Some(
                        lost_series
                            .value_at(SimTime::from_nanos(r.time_ns.saturating_sub(1_000_000_000))),
                    );
                }
                if heal && let Some(z) = last_zombie.take() {
                    timeline.push(format!(
                        "          ... {} of them until t={z:.1}s",
                        count(zombie_acks)
                    ));
                }
                let what = (r.detail.trim_start_matches("end of "))
                    .replace("\"", "")
                    .replace('[', "{")
                    .replace(']', "}")
                    .replace(" (Drop)", "");
                let what = if heal { format!("heal ({what})") } else { what };
                timeline.push(format!("t={t:.1}s {what}"));
            }
            TraceKind::Message
                if !refusing
                    && r.from.as_deref() == Some("db0")
                    && r.detail.contains("result: Refused") =>
            {
                refusing = true;
                timeline.push(format!("t={t:.1}s db0 starts refusing writes"));
            }
            TraceKind::Message if r.detail.contains("Promote {") => {
                let epoch = (r.detail.split("epoch: ").nth(1))
                    .and_then(|x| x.trim_end_matches(['}', ')', ' ']).parse().ok())
                    .unwrap_or(0);
                if promoted.is_none() {
                    timeline.push(format!("t={t:.1}s {actor} promoted, epoch {epoch}"));
                    promoted = Some((t, actor.to_string(), epoch));
                }
            }
            TraceKind::Message if promoted.is_none() && r.detail.contains("Promise {") => {
                // The election before a majority-quorum promotion: who promised, and where
                // its log ends.
                let from = r.from.as_deref().unwrap_or("?");
                let at = (r.detail.split("offset: ").nth(1))
                    .and_then(|x| x.trim_end_matches(['}', ')', ' ']).parse::<u64>().ok())
                    .unwrap_or(0);
                timeline.push(format!(
                    "t={t:.1}s {from} promises {actor} the new epoch (its log ends at {at})"
                ));
            }
            TraceKind::Message if actor == "store" && r.detail.contains("StoreFence {") => {
                timeline.push(format!(
                    "t={t:.1}s the watcher fences the shared store with the new epoch"
                ));
            }
            TraceKind::Message
                if actor == "db0"
                    && r.from.as_deref() == Some("store")
                    && r.detail.contains("Fenced {") =>
            {
                timeline.push(format!(
                    "t={t:.1}s the store refuses db0's epoch-1 write: db0 steps down"
                ));
            }
            TraceKind::Kill if r.from.as_deref() == Some("pdu") => {
                timeline.push(format!("t={t:.1}s the power switch turns {actor} off"));
            }
            TraceKind::Message
                if promoted.is_some()
                    && r.from.as_deref() == Some("db0")
                    && r.detail.contains("Ok { epoch: 1 }") =>
            {
                if zombie_acks == 0 {
                    timeline.push(format!(
                        "t={t:.1}s db0 still acknowledges writes as primary (epoch 1)"
                    ));
                }
                zombie_acks += 1;
                last_zombie = Some(t);
            }
            TraceKind::Message if actor == "db0" && r.detail.starts_with("Repl(Sync {") => {
                if !synced {
                    let n = lost_after(r.time_ns);
                    lost_at_resync = Some(n);
                    timeline.push(format!(
                        "t={t:.1}s db0 resyncs from the new primary, discarding what it took \
                         alone: {} acknowledged writes lost",
                        count(n)
                    ));
                }
                synced = true;
            }
            _ => {}
        }
    }
    if !synced && let Some(z) = last_zombie {
        timeline.push(format!(
            "          ... {} of them until t={z:.1}s",
            count(zombie_acks)
        ));
    }
    timeline.push(format!(
        "end: {} acknowledged writes lost of {}; two primaries acknowledged writes together \
         for {overlap:.1} s",
        count(lost),
        count(acked)
    ));
    if lost > 0 && lost_at_resync.is_some() {
        // The oracle counts the loss when it happens: nothing before the heal, all of it at
        // the resync.
        assert_eq!(
            lost_before_heal,
            Some(Some(0.0)),
            "{variant}: lost before the heal"
        );
        assert_eq!(lost_at_resync, Some(lost), "{variant}: lost at the resync");
    }
    Run {
        name: variant.to_string(),
        timeline,
        lost,
        acked,
        overlap,
        zombie_acks,
        promoted,
        power_offs,
        primary,
    }
}

/// Who believed it was primary: one line per node, at the node's lane (db0 at 1, db1 at 2,
/// db2 at 3) while it believes it, at 0 when it does not.
fn chart(run: &Run, windows: &[FaultWindow]) -> String {
    let series = (NODES.iter().zip(&run.primary).enumerate())
        .map(|(i, (n, points))| ChartLine {
            label: (*n).to_string(),
            points: points
                .iter()
                .map(|&(t, v)| (t, if v > 0.5 { (i + 1) as f64 } else { 0.0 }))
                .collect(),
        })
        .collect();
    let spec = ChartSpec {
        title: format!("Who believes it is primary — {}", run.name),
        y_label: "lane: db0 1, db1 2, db2 3 (0 = not)".to_string(),
        unit: Unit::Count,
        series,
        windows: windows.to_vec(),
    };
    render_svg(&spec).expect("a chart of sampled series renders")
}

// The suite runs the story without writing charts (`tests/it/main.rs`), so `main` is unused
// there.
#[allow(dead_code)]
fn main() {
    story(Some(std::path::Path::new(
        "faultline-out/split_brain-example",
    )));
}

/// Runs, tells and checks the story; writes the charts into `out` if given.
pub fn story(out: Option<&std::path::Path>) {
    let (path, text) = shipped("split_brain").expect("split_brain ships with faultline");
    let scenario = Scenario::from_str(text, path).expect("the shipped scenario loads");
    let seed = 1;
    println!("Split brain: db0 primary, db1 and db2 asynchronous replicas, three Sentinels");
    println!("(quorum 2), c0 beside db0 and c1 beside the rest, 20 writes/s each. Seed {seed}.");
    let runs: Vec<Run> = (scenario.variants.iter())
        .map(|v| run(&scenario, &v.name, seed))
        .collect();
    for r in &runs {
        println!("\n{}:", r.name);
        for line in &r.timeline {
            println!("  {line}");
        }
    }
    let get = |name: &str| runs.iter().find(|r| r.name == name).expect("a variant");
    let base = get("baseline");
    let min_rep = get("min_replicas_to_write");
    let majority = get("majority acks");
    let quorum = get("majority quorum");
    let fencing = get("epoch fencing");
    let stonith = get("STONITH");

    // What the story claims, checked.
    let (at, node, epoch) = base.promoted.clone().expect("the watchers fail over");
    assert!(
        (40.0..45.0).contains(&at) && node != "db0" && epoch == 2,
        "a replica is promoted ~30 s (down-after) into the partition: {node} at {at} s"
    );
    assert!(
        base.zombie_acks > 500 && base.lost > 1000 && base.overlap > 30.0,
        "the isolated db0 keeps acknowledging for the rest of the partition and loses it all: \
         {} acks after the promotion, {} lost, {:.1} s of overlap",
        base.zombie_acks,
        base.lost,
        base.overlap
    );
    assert!(base.lost <= base.acked);
    assert!(
        min_rep.lost > 0 && min_rep.lost <= 230 && min_rep.overlap == 0.0,
        "min-replicas-to-write loses the 10 s lag window and nothing after the promotion: {}",
        min_rep.lost
    );
    assert_eq!(min_rep.zombie_acks, 0, "db0 stopped before the failover");
    assert_eq!(majority.lost, 0, "majority acks lose nothing acknowledged");
    assert_eq!(
        majority.zombie_acks, 0,
        "the isolated db0 acknowledges nothing"
    );
    assert!(
        quorum.lost == 0 && quorum.overlap == 0.0 && quorum.zombie_acks == 0,
        "the elected failover loses nothing either: {} lost",
        quorum.lost
    );
    assert!(
        fencing.lost == 0 && fencing.overlap == 0.0 && fencing.zombie_acks == 0,
        "the store fenced with epoch 2 refuses db0's next write, and db1 starts from the \
         store's log: {} lost, {:.1} s of overlap, {} acks after the promotion",
        fencing.lost,
        fencing.overlap,
        fencing.zombie_acks
    );
    assert!(
        stonith.overlap == 0.0 && stonith.power_offs == 1 && stonith.zombie_acks == 0,
        "STONITH: db0 is off before the replica takes writes"
    );
    assert!(
        stonith.lost > 0 && stonith.lost < base.lost,
        "what db0 acknowledged before the power-off is still lost: {}",
        stonith.lost
    );

    println!("\nAcknowledged writes lost / seconds with two primaries acknowledging:");
    for r in &runs {
        println!(
            "  {:<22} {:>6} / {:>5.1} s",
            r.name,
            count(r.lost),
            r.overlap
        );
    }

    let Some(out) = out else {
        return;
    };
    std::fs::create_dir_all(out).expect("the output directory can be made");
    let windows: Vec<FaultWindow> = (scenario.fault_windows().into_iter())
        .map(|(from, until, label)| FaultWindow { from, until, label })
        .collect();
    let mut files = Vec::new();
    for r in &runs {
        let file = format!("primary-{}.svg", r.name.replace([' ', '_'], "-"));
        std::fs::write(out.join(&file), chart(r, &windows)).expect("the chart can be written");
        files.push(file);
    }
    println!("\nwrote {} in {}", files.join(", "), out.display());
}
