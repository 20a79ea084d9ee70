//! The component models that ship in `models/`, embedded in the binary so that a scenario runs
//! from any directory: each is a component kind with a set of defaults calibrated to a real
//! system, the source of each number written beside it in the file.

use serde::Deserialize;

use crate::scenario::components::Kind;
use crate::scenario::error::{Problem, Sources};
use crate::scenario::tree::{self, Node, Value};

/// The files of `models/`, by path. A test checks that this list and the folder agree.
pub const FILES: &[(&str, &str)] = &[
    (
        "models/rpc/client.ron",
        include_str!("../../models/rpc/client.ron"),
    ),
    (
        "models/rpc/service.ron",
        include_str!("../../models/rpc/service.ron"),
    ),
    (
        "models/rpc/postgres.ron",
        include_str!("../../models/rpc/postgres.ron"),
    ),
    (
        "models/rpc/load_balancer.ron",
        include_str!("../../models/rpc/load_balancer.ron"),
    ),
    (
        "models/rpc/deployment.ron",
        include_str!("../../models/rpc/deployment.ron"),
    ),
    (
        "models/cache/redis.ron",
        include_str!("../../models/cache/redis.ron"),
    ),
    (
        "models/kafka/broker.ron",
        include_str!("../../models/kafka/broker.ron"),
    ),
    (
        "models/kafka/producer.ron",
        include_str!("../../models/kafka/producer.ron"),
    ),
    (
        "models/kafka/consumer_group.ron",
        include_str!("../../models/kafka/consumer_group.ron"),
    ),
    (
        "models/coord/redis_lock.ron",
        include_str!("../../models/coord/redis_lock.ron"),
    ),
    (
        "models/coord/fenced_storage.ron",
        include_str!("../../models/coord/fenced_storage.ron"),
    ),
    (
        "models/coord/job_worker.ron",
        include_str!("../../models/coord/job_worker.ron"),
    ),
    (
        "models/coord/register.ron",
        include_str!("../../models/coord/register.ron"),
    ),
    (
        "models/coord/register_client.ron",
        include_str!("../../models/coord/register_client.ron"),
    ),
    (
        "models/coord/raft.ron",
        include_str!("../../models/coord/raft.ron"),
    ),
    (
        "models/coord/raft_client.ron",
        include_str!("../../models/coord/raft_client.ron"),
    ),
    (
        "models/coord/leader_killer.ron",
        include_str!("../../models/coord/leader_killer.ron"),
    ),
    (
        "models/coord/redis_replicated.ron",
        include_str!("../../models/coord/redis_replicated.ron"),
    ),
    (
        "models/coord/sentinel.ron",
        include_str!("../../models/coord/sentinel.ron"),
    ),
    (
        "models/coord/repl_client.ron",
        include_str!("../../models/coord/repl_client.ron"),
    ),
    (
        "models/coord/power_switch.ron",
        include_str!("../../models/coord/power_switch.ron"),
    ),
    (
        "models/coord/epoch_store.ron",
        include_str!("../../models/coord/epoch_store.ron"),
    ),
];

/// A parsed model file.
#[derive(Clone, Debug)]
pub struct Model {
    /// How scenarios name it: `rpc/service`.
    pub name: String,
    pub kind: Kind,
    /// One line for `faultline models`.
    pub about: String,
    /// Any subset of the component's fields, as a tree to merge a scenario's fields onto.
    pub defaults: Node,
    /// The file it came from.
    pub path: &'static str,
    pub text: &'static str,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename = "Model")]
struct Header {
    name: String,
    component: String,
    about: String,
}

/// Parses one embedded model file, registering its text in `sources` for error quoting.
fn parse(path: &'static str, text: &'static str, sources: &mut Sources) -> Result<Model, Problem> {
    let source = sources.add(path, text);
    let mut root = tree::parse(text, source).map_err(|e| Problem::from_tree("", e))?;
    let Some(defaults) = root.take_field("defaults") else {
        return Err(Problem::new(
            Some(root.span),
            "",
            "a model needs `defaults: (...)`",
        ));
    };
    if !matches!(defaults.value, Value::Struct { .. }) {
        return Err(Problem::new(
            Some(defaults.span),
            "defaults",
            format!("expected a struct of fields, found {}", defaults.describe()),
        ));
    }
    let header: Header = tree::from_node(&root).map_err(|e| Problem::from_tree("", e))?;
    let kind = Kind::from_name(&header.component).ok_or_else(|| {
        Problem::new(
            root.field("component").map(|n| n.span),
            "component",
            format!("`{}` is not a component kind", header.component),
        )
        .suggest(crate::fault::suggest(
            &header.component,
            Kind::ALL.iter().map(|k| k.name()),
        ))
    })?;
    Ok(Model {
        name: header.name,
        kind,
        about: header.about,
        defaults,
        path,
        text,
    })
}

/// Every shipped model, parsed. The files are part of the binary, so a problem in one is a bug
/// in faultline (a test parses them all); it is still reported, not a panic.
pub fn all(sources: &mut Sources) -> Result<Vec<Model>, Vec<Problem>> {
    let mut models = Vec::new();
    let mut problems = Vec::new();
    for &(path, text) in FILES {
        match parse(path, text, sources) {
            Ok(m) => models.push(m),
            Err(p) => problems.push(p),
        }
    }
    if problems.is_empty() {
        Ok(models)
    } else {
        Err(problems)
    }
}
