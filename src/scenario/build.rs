//! Building a runnable [`Sim`] from one variant of a loaded scenario and a seed: hosts, links,
//! components, faults and sampling. Loading has already checked everything a build needs, so a
//! build error here is a bug, reported as a message rather than a panic all the same.
//!
//! The last stage of loading lives here too: each variant is built and started (its actors'
//! `on_start` registers their metrics) so that the checks, charts and table rows can be matched
//! against the metrics that really exist, before anything runs.

use crate::check::Expr;
use crate::engine::sim::{Sim, SimConfig};
use crate::engine::time::{SimDuration, SimTime};
use crate::net::LinkSpec;
use crate::report::Unit;
use crate::scenario::components::Msg;
use crate::scenario::error::{Problem, Problems, join};
use crate::scenario::load::{Scenario, Variant};
use crate::scenario::tree::Node;

/// The link between hosts that declare none: 1 ms one way, constant (a LAN round trip of 2 ms).
pub const DEFAULT_LINK_LATENCY: SimDuration = SimDuration::from_millis(1);

/// Builds the simulation of `variant` for `seed`, ready to run.
pub fn build(
    scenario: &Scenario,
    variant: &Variant,
    seed: u64,
    record_trace: bool,
) -> Result<Sim<Msg>, String> {
    let config = SimConfig {
        seed,
        limits: scenario.limits,
        sample_interval: Some(scenario.sample),
        record_trace,
        default_link: scenario
            .default_link
            .clone()
            .unwrap_or_else(|| LinkSpec::constant(DEFAULT_LINK_LATENCY)),
    };
    let mut sim = Sim::with_config(config).map_err(|e| e.to_string())?;
    for h in &scenario.hosts {
        sim.add_host(h).map_err(|e| format!("host `{h}`: {e}"))?;
    }
    for l in &scenario.links {
        let (a, b) = (host(&sim, &l.a)?, host(&sim, &l.b)?);
        sim.link(a, b, l.spec())
            .map_err(|e| format!("link {}-{}: {e}", l.a, l.b))?;
    }
    for c in &variant.components {
        let h = host(&sim, &c.host)?;
        c.config
            .spawn(&mut sim, h, &c.name)
            .map_err(|e| format!("component `{}`: {e}", c.name))?;
    }
    // A fault naming a consumer group hits each of its replicas.
    sim.add_faults(&scenario.faults_for(variant))
        .map_err(|e| format!("faults: {e}"))?;
    Ok(sim)
}

fn host(sim: &Sim<Msg>, name: &str) -> Result<crate::net::HostId, String> {
    sim.net()
        .host(name)
        .ok_or_else(|| format!("no host `{name}`"))
}

/// Matches checks, charts and table rows against the metrics each variant registers, and
/// returns the unit of each (checks, charts, table rows). A check must resolve in every
/// variant (it is judged in every one); a chart or a row in at least one (a variant without
/// the metric gets no line, or a dash).
pub(crate) fn check_metrics(
    scenario: &Scenario,
    [check_nodes, chart_nodes, table_nodes]: [&[Node]; 3],
    problems: &mut Problems,
) -> (Vec<Unit>, Vec<Unit>, Vec<Unit>) {
    let mut started = Vec::new();
    for v in &scenario.variants {
        match build(scenario, v, scenario.seed, false) {
            Ok(mut sim) => {
                sim.run_until(SimTime::ZERO);
                started.push((v, sim));
            }
            Err(e) => problems.push(Problem::new(
                None,
                format!("variants.{}", v.name),
                format!("cannot be built: {e}"),
            )),
        }
    }
    let mut check_units = Vec::new();
    for (i, check) in scenario.checks.iter().enumerate() {
        let path = format!("checks[{i}]");
        for (v, sim) in &started {
            if let Err(e) = check.resolve(sim.metrics()) {
                let node = &check_nodes[i];
                let span = node.get_path(e.field()).map_or(node.span, |n| n.span);
                let in_variant = if scenario.variants.len() > 1 {
                    format!(" (in variant `{}`)", v.name)
                } else {
                    String::new()
                };
                problems.push(
                    Problem::new(
                        Some(span),
                        join(&path, e.field()),
                        format!("{e}{in_variant}"),
                    )
                    .suggest(e.suggestion().map(str::to_string)),
                );
                break;
            }
        }
        check_units.push(unit_in(&started, check.value()));
    }
    let mut exprs = |what: &str, list: &[&Expr], nodes: &[Node]| -> Vec<Unit> {
        let mut units = Vec::new();
        for (i, expr) in list.iter().enumerate() {
            let errors: Vec<_> = started
                .iter()
                .filter_map(|(_, sim)| expr.resolve(sim.metrics()).err())
                .collect();
            if errors.len() == started.len()
                && let Some(e) = errors.into_iter().next()
            {
                problems.push(
                    Problem::new(Some(nodes[i].span), format!("{what}[{i}]"), e.to_string())
                        .suggest(e.suggestion().map(str::to_string)),
                );
            }
            units.push(unit_in(&started, expr));
        }
        units
    };
    let charts: Vec<&Expr> = scenario.charts.iter().map(|c| &c.value).collect();
    let chart_units = exprs("charts", &charts, chart_nodes);
    let rows: Vec<&Expr> = scenario.table.iter().collect();
    let table_units = exprs("table", &rows, table_nodes);
    (check_units, chart_units, table_units)
}

/// The unit of `expr` in the first variant where it resolves.
fn unit_in(started: &[(&Variant, Sim<Msg>)], expr: &Expr) -> Unit {
    started
        .iter()
        .find(|(_, sim)| expr.resolve(sim.metrics()).is_ok())
        .map_or(Unit::Count, |(_, sim)| expr.unit(sim.metrics()))
}
