//! Reading a scenario file: the schema, the layering of each component (model defaults, the
//! scenario's fields, each variant's `set`, a sweep's parameter), and the checks that catch
//! what the types cannot: dangling names, impossible values, unknown metrics, expectations
//! about checks that do not exist.
//!
//! A scenario is read in stages, and every stage reports all it finds: syntax (one error, the
//! rest of the file cannot be read past it); then each top-level field, component, fault,
//! check, chart and variant on its own; then, once every variant resolves, one simulation per
//! variant is built and started, so that checks can be matched against the metrics the
//! components actually register. Nothing is run and nothing is written before all of it
//! passes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::check::{Check, Expr};
use crate::dist::Dist;
use crate::engine::sim::Limits;
use crate::engine::time::{SimDuration, SimTime};
use crate::fault::{Fault, FaultEntry, FaultPlan, suggest};
use crate::model::rpc::KindRef;
use crate::net::LinkSpec;
use crate::report::Unit;
use crate::scenario::components::{Config, Kind};
use crate::scenario::error::{Problem, Problems, ScenarioError, Sources, join};
use crate::scenario::models::{self, Model};
use crate::scenario::tree::{self, Node, SourceId, Span, Value, to_ron};

/// The top-level fields of a scenario file, in the order the shipped scenarios write them (for
/// "did you mean", and for where a generated file puts a field).
pub const TOP_FIELDS: [&str; 14] = [
    "name",
    "about",
    "seed",
    "duration",
    "sample",
    "default_link",
    "limits",
    "links",
    "components",
    "faults",
    "checks",
    "charts",
    "table",
    "variants",
];

/// What a variant expects of a check, judged over the seeds it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Expect {
    /// The check holds on every seed: the fix works.
    Holds,
    /// The check fails on every seed: the failure mode is reproduced.
    Fails,
    /// The check fails on at least one of the seeds run: a failure mode that emerges on most
    /// seeds but not all, as a feedback loop that a lucky schedule escapes. This is the
    /// catalogue's "there exist seeds where it does not", and what a property with
    /// [`Expect::Fails`] asks of the harness; on a single seed it is the same as `Fails`.
    FailsOnSome,
}

impl Expect {
    /// Whether the variant shows a failure: `Fails` or `FailsOnSome`, which a single run (a
    /// property's case, a replay) judges alike.
    pub fn is_failure(self) -> bool {
        matches!(self, Expect::Fails | Expect::FailsOnSome)
    }
}

/// A link between two hosts, both directions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkDecl {
    pub a: String,
    pub b: String,
    pub latency: Dist,
    #[serde(default)]
    pub loss: f64,
    #[serde(default)]
    pub duplicate: f64,
    #[serde(default)]
    pub reorder: f64,
    #[serde(default = "yes")]
    pub fifo: bool,
}

fn yes() -> bool {
    true
}

impl LinkDecl {
    pub fn spec(&self) -> LinkSpec {
        LinkSpec {
            latency: self.latency.clone(),
            loss: self.loss,
            duplicate: self.duplicate,
            reorder: self.reorder,
            fifo: self.fifo,
        }
    }
}

/// A chart: a metric expression over virtual time, one line per variant. Written as a plain
/// string (`"users.latency.p99"`) or `Chart(value: "...", title: "...")`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChartDecl {
    pub value: Expr,
    pub title: Option<String>,
}

impl ChartDecl {
    pub fn title(&self) -> String {
        self.title.clone().unwrap_or_else(|| self.value.to_string())
    }
}

impl<'de> Deserialize<'de> for ChartDecl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields, rename = "Chart")]
        struct Full {
            value: Expr,
            #[serde(default)]
            title: Option<String>,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Short(Expr),
            Full(Full),
        }
        Ok(match Form::deserialize(d)? {
            Form::Short(value) => ChartDecl { value, title: None },
            Form::Full(f) => ChartDecl {
                value: f.value,
                title: f.title,
            },
        })
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsDecl {
    #[serde(default)]
    max_events: Option<u64>,
    #[serde(default)]
    max_queue: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename = "Scenario")]
struct Header {
    name: String,
    #[serde(default)]
    about: String,
    #[serde(default = "default_seed")]
    seed: u64,
    duration: SimDuration,
    #[serde(default = "default_sample")]
    sample: SimDuration,
    #[serde(default)]
    default_link: Option<LinkSpec>,
    #[serde(default)]
    limits: LimitsDecl,
}

fn default_seed() -> u64 {
    1
}

fn default_sample() -> SimDuration {
    SimDuration::from_secs(1)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VariantHeader {
    name: String,
    #[serde(default)]
    about: String,
}

/// A variant as read, before its components are resolved.
struct RawVariant {
    head: VariantHeader,
    sets: Vec<Set>,
    /// Check name -> expectation, with the key's position for messages.
    expect: Vec<(String, Span, Expect)>,
}

/// One component of one variant, resolved: its model, host and typed config.
#[derive(Clone, Debug, PartialEq)]
pub struct Component {
    pub name: String,
    pub model: String,
    pub host: String,
    pub config: Config,
}

/// The baseline or a fix: every component resolved with the variant's overrides applied.
#[derive(Clone, Debug, PartialEq)]
pub struct Variant {
    pub name: String,
    pub about: String,
    pub expect: BTreeMap<String, Expect>,
    /// The overrides as written: (path, RON value).
    pub set: Vec<(String, String)>,
    pub components: Vec<Component>,
}

impl Variant {
    pub fn component(&self, name: &str) -> Option<&Component> {
        self.components.iter().find(|c| c.name == name)
    }
}

/// A loaded, fully validated scenario.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub name: String,
    pub about: String,
    /// Where it came from: a path, or `shipped:<name>`.
    pub file: String,
    pub seed: u64,
    pub duration: SimDuration,
    pub sample: SimDuration,
    pub limits: Limits,
    pub default_link: Option<LinkSpec>,
    pub links: Vec<LinkDecl>,
    /// Every host, in order of first mention (components, then links and faults).
    pub hosts: Vec<String>,
    pub faults: FaultPlan,
    pub checks: Vec<Check>,
    pub charts: Vec<ChartDecl>,
    /// Extra metric rows for the side-by-side table.
    pub table: Vec<Expr>,
    pub variants: Vec<Variant>,
    /// The unit of each check's value, table row and chart, read off the registered metrics.
    pub check_units: Vec<Unit>,
    pub table_units: Vec<Unit>,
    pub chart_units: Vec<Unit>,
    /// FNV-1a of the text and the overrides: result files from shards must agree on it.
    pub digest: u64,
    /// The text, so a sweep can re-read it with more overrides.
    pub text: String,
    /// Overrides given on top of the file (a sweep's parameter): (path, RON value).
    pub extra: Vec<(String, String)>,
    /// The variants kept (`--variant`), in file order; empty keeps them all. The others are
    /// dropped before the overrides are applied, so a `--set` need only make sense for the
    /// variants that run.
    pub only: Vec<String>,
}

impl Scenario {
    /// Reads and validates a scenario from `text`, shown as `file` in messages.
    pub fn from_str(text: &str, file: &str) -> Result<Scenario, ScenarioError> {
        Scenario::with_overrides(text, file, &[])
    }

    /// Reads a scenario file from disk.
    pub fn from_path(path: &std::path::Path) -> Result<Scenario, ScenarioError> {
        Scenario::from_path_with_overrides(path, &[], &[])
    }

    /// Reads a scenario file from disk, with overrides and the variants kept as in
    /// [`Scenario::with_overrides_for`].
    pub fn from_path_with_overrides(
        path: &std::path::Path,
        extra: &[(String, String)],
        only: &[String],
    ) -> Result<Scenario, ScenarioError> {
        let file = path.display().to_string();
        let bytes = std::fs::read(path)
            .map_err(|e| ScenarioError::plain(&file, format!("cannot read the file: {e}")))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            ScenarioError::plain(
                &file,
                format!(
                    "the file is not UTF-8 text (invalid byte at offset {}): is it a scenario?",
                    e.utf8_error().valid_up_to()
                ),
            )
        })?;
        Scenario::with_overrides_for(&text, &file, extra, only)
    }

    /// Reads a scenario with extra overrides `(path, RON value)` applied to every variant
    /// after its own (a sweep point, `--set` on the command line).
    pub fn with_overrides(
        text: &str,
        file: &str,
        extra: &[(String, String)],
    ) -> Result<Scenario, ScenarioError> {
        Scenario::with_overrides_for(text, file, extra, &[])
    }

    /// As [`Scenario::with_overrides`], keeping only the variants named in `only` (all when
    /// it is empty): `--variant`. A name that is not a variant is a problem of the file.
    pub fn with_overrides_for(
        text: &str,
        file: &str,
        extra: &[(String, String)],
        only: &[String],
    ) -> Result<Scenario, ScenarioError> {
        let mut sources = Sources::default();
        let source = sources.add(file, text);
        let mut problems = Problems::default();
        let scenario = read(
            text,
            file,
            source,
            (extra, only),
            &mut sources,
            &mut problems,
        );
        match scenario {
            Some(s) if problems.is_empty() => Ok(s),
            _ => {
                if problems.is_empty() {
                    problems.push(Problem::new(None, "", "the scenario cannot be read"));
                }
                Err(ScenarioError {
                    file: file.to_string(),
                    problems: problems.0,
                    sources,
                })
            }
        }
    }

    /// The same scenario with its fault plan replaced by `plan`. The text is rewritten with
    /// `plan` in place of the file's `faults` (by [`tree::to_ron_pretty`]) and read again with
    /// the same overrides, so the plan is checked exactly as a file's faults are (names that
    /// exist, well-formed windows, nothing that starts after the run ends), and everything
    /// derived from the text (the digest, a sweep that re-reads it) agrees with the plan. The
    /// rewritten text keeps no comments.
    pub fn with_faults(&self, plan: &FaultPlan) -> Result<Scenario, ScenarioError> {
        let mut root = tree::parse(&self.text, SourceId(0))
            .map_err(|e| ScenarioError::plain(&self.file, e.to_string()))?;
        let faults = fault_plan_node(plan).map_err(|e| ScenarioError::plain(&self.file, e))?;
        set_field(
            &mut root,
            "faults",
            faults,
            &["checks", "charts", "table", "variants"],
        );
        Scenario::with_overrides_for(
            &tree::to_ron_pretty(&root),
            &self.file,
            &self.extra,
            &self.only,
        )
    }

    /// The scenario's faults as `variant` runs them: a fault whose target names a
    /// `ConsumerGroup` component is one fault for each of its replicas (`<name>-0`,
    /// `<name>-1`, ... every pod slot the variant has, running or parked), not for its
    /// controller. A user who writes `Slow(target: "workers")` means the group's pods — the
    /// processes that consume — and the controller (the orchestrator: autoscaler, rollouts,
    /// probes) is not a process of the application. To hit one pod, name it (`workers-1`).
    pub fn faults_for(&self, variant: &Variant) -> FaultPlan {
        let mut plan = FaultPlan::new();
        for e in &self.faults.entries {
            let slots = fault_names(&e.fault)
                .first()
                .filter(|(field, _, _)| *field == "target")
                .and_then(
                    |(_, name, _)| match variant.component(name).map(|c| &c.config) {
                        Some(Config::ConsumerGroup(g)) => Some((name.to_string(), g.slots())),
                        _ => None,
                    },
                );
            match slots {
                Some((group, n)) => {
                    for i in 0..n {
                        let pod = crate::model::log::deployment::replica_name(&group, i);
                        let mut each = e.clone();
                        retarget(&mut each.fault, pod);
                        plan.entries.push(each);
                    }
                }
                None => plan.entries.push(e.clone()),
            }
        }
        plan
    }

    /// The actors a fault can name: the components (a consumer group standing for all its
    /// replicas, see [`faults_for`](Self::faults_for)), and the replicas of consumer groups and
    /// deployments.
    pub fn fault_targets(&self) -> Vec<String> {
        let mut names: Vec<String> = (self.variants.first())
            .map(|v| v.components.iter().map(|c| c.name.clone()).collect())
            .unwrap_or_default();
        names.extend(replica_names(&self.variants));
        names
    }

    pub fn variant(&self, name: &str) -> Option<&Variant> {
        self.variants.iter().find(|v| v.name == name)
    }

    /// Fault windows for charts: (from, until, label), instants as zero-length windows.
    pub fn fault_windows(&self) -> Vec<(SimTime, SimTime, String)> {
        self.faults
            .entries
            .iter()
            .filter_map(|e| {
                let label = fault_label(&e.fault);
                match (e.at, e.from, e.until) {
                    (Some(at), _, _) => Some((at, at, label)),
                    (None, Some(from), Some(until)) => Some((from, until, label)),
                    _ => None,
                }
            })
            .collect()
    }
}

/// The replicas (`<group>-<i>`, their own actors) of every consumer group and service
/// deployment that every variant has: the actors a fault can name besides the components.
pub fn replica_names(variants: &[Variant]) -> Vec<String> {
    let Some(first) = variants.first() else {
        return Vec::new();
    };
    let slots = |v: &Variant, name: &str| match v.component(name).map(|c| &c.config) {
        Some(Config::ConsumerGroup(g)) => g.slots(),
        Some(Config::Deployment(d)) => d.slots(),
        _ => 0,
    };
    let mut names = Vec::new();
    for c in &first.components {
        let n = variants
            .iter()
            .map(|v| slots(v, &c.name))
            .min()
            .unwrap_or(0);
        names.extend((0..n).map(|i| crate::model::log::deployment::replica_name(&c.name, i)));
    }
    names
}

/// Sets field `key` of a struct node to `value`: in place when it is there, else before the
/// first of the fields `before` that is (so a new field lands where a person would write it),
/// else at the end. Anything but a struct is left alone.
pub(crate) fn set_field(node: &mut Node, key: &str, value: Node, before: &[&str]) {
    let span = value.span;
    let Value::Struct { fields, .. } = &mut node.value else {
        return;
    };
    if let Some(f) = fields.iter_mut().find(|f| f.key == key) {
        f.value = value;
        return;
    }
    let at = fields
        .iter()
        .position(|f| before.contains(&f.key.as_str()))
        .unwrap_or(fields.len());
    fields.insert(
        at,
        tree::Field {
            key: key.to_string(),
            key_span: span,
            value,
        },
    );
}

/// A fault plan as the tree of a scenario's `faults: [...]`, as written in a file.
pub(crate) fn fault_plan_node(plan: &FaultPlan) -> Result<Node, String> {
    // The plan's serde form is the file's form; ron writes it and the tree reader reads it
    // back, so the two cannot drift apart. Implicit `Some` writes `from: "2m"` as a person
    // does, not `from: Some("2m")`.
    let text = ron::Options::default()
        .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME)
        .to_string(&plan.entries)
        .map_err(|e| format!("a fault plan as RON: {e}"))?;
    tree::parse(&text, SourceId(0)).map_err(|e| format!("a fault plan as RON: {e}: {text}"))
}

/// A short label for a fault: `slow pg x10`, `crash api`.
pub fn fault_label(f: &Fault) -> String {
    match f {
        Fault::Crash { target }
        | Fault::Restart { target }
        | Fault::Pause { target }
        | Fault::Resume { target } => format!("{} {target}", f.kind()),
        Fault::Slow { target, factor } => format!("slow {target} x{factor}"),
        Fault::ClockOffset { host, offset } => format!("clock {host} {offset}"),
        Fault::ClockDrift { host, ppm } => format!("drift {host} {ppm}ppm"),
        Fault::ClockStep { host, by } => format!("clock step {host} {by}"),
        Fault::Partition { a, b, .. } => format!("partition {} | {}", a.join(","), b.join(",")),
        Fault::OneWay { from, to, .. } => format!("cut {} -> {}", from.join(","), to.join(",")),
        Fault::Heal => "heal".to_string(),
        Fault::LinkLatency { a, b, .. } => format!("latency {a}-{b}"),
        Fault::LinkLoss { a, b, loss } => format!("loss {a}-{b} {loss}"),
    }
}

/// FNV-1a, 64 bits: a stable fingerprint of a scenario's text (not a security hash).
fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain([0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// A list-valued top-level field, taken out of the root to be read item by item.
fn take_list(root: &mut Node, field: &str, problems: &mut Problems) -> Vec<Node> {
    match root.take_field(field) {
        None => Vec::new(),
        Some(Node {
            value: Value::List(items),
            ..
        }) => items,
        Some(other) => {
            problems.push(Problem::new(
                Some(other.span),
                field,
                format!("expected a list `[...]`, found {}", other.describe()),
            ));
            Vec::new()
        }
    }
}

/// The map `{ "name": ..., }` of a field, as (key, key span, value).
fn map_entries(node: Node, path: &str, problems: &mut Problems) -> Vec<(String, Span, Node)> {
    let entries = match node.value {
        Value::Map(entries) => entries,
        Value::Struct { name: None, fields } => fields
            .into_iter()
            .map(|f| {
                let key = Node::new(Value::Str(f.key), f.key_span);
                (key, f.value)
            })
            .collect(),
        _ => {
            problems.push(Problem::new(
                Some(node.span),
                path,
                format!(
                    "expected a map `{{ \"name\": ..., }}`, found {}",
                    node.describe()
                ),
            ));
            return Vec::new();
        }
    };
    let mut out: Vec<(String, Span, Node)> = Vec::new();
    for (k, v) in entries {
        let Value::Str(key) = &k.value else {
            problems.push(Problem::new(
                Some(k.span),
                path,
                format!("expected a string key, found {}", k.describe()),
            ));
            continue;
        };
        if out.iter().any(|(seen, _, _)| seen == key) {
            problems.push(Problem::new(
                Some(k.span),
                join(path, key),
                format!("`{key}` appears twice"),
            ));
            continue;
        }
        out.push((key.clone(), k.span, v));
    }
    out
}

/// Reads one item with `from_node`, recording a problem under `path` on failure.
fn item<T: serde::de::DeserializeOwned>(
    node: &Node,
    path: &str,
    problems: &mut Problems,
) -> Option<T> {
    problems.keep(tree::from_node(node).map_err(|e| Problem::from_tree(path, e)))
}

/// The span of the deepest node on `path` that exists in `tree` (a defaulted field has no
/// node; its parent is the best place to point at).
fn span_of(tree: &Node, path: &str) -> Span {
    let mut p = path;
    loop {
        if p.is_empty() {
            return tree.span;
        }
        if let Some(n) = tree.get_path(p) {
            return n.span;
        }
        match p.rfind(['.', '[']) {
            Some(i) => p = &p[..i],
            None => return tree.span,
        }
    }
}

/// A variant's override, as read from its `set` map.
#[derive(Clone, Debug)]
struct Set {
    /// The whole path, `api.pools.primary.pool_size`.
    path: String,
    key_span: Span,
    value: Node,
    /// Where the override came from, for messages: `variants[2].set`, `--set`.
    origin: String,
}

struct RawComponent {
    name: String,
    key_span: Span,
    node: Node,
}

fn read(
    text: &str,
    file: &str,
    source: SourceId,
    (extra, only): (&[(String, String)], &[String]),
    sources: &mut Sources,
    problems: &mut Problems,
) -> Option<Scenario> {
    let mut root = match tree::parse(text, source) {
        Ok(root) => root,
        Err(e) => {
            problems.push(Problem::from_tree("", e));
            return None;
        }
    };
    match &root.value {
        Value::Struct { name, .. } if name.as_deref().is_none_or(|n| n == "Scenario") => {}
        _ => {
            problems.push(Problem::new(
                Some(root.span),
                "",
                format!(
                    "expected `Scenario(name: ..., duration: ..., components: {{...}}, ...)`, \
                     found {}",
                    root.describe()
                ),
            ));
            return None;
        }
    }
    let models = match models::all(sources) {
        Ok(m) => m,
        Err(ps) => {
            ps.into_iter().for_each(|p| problems.push(p));
            return None;
        }
    };

    // Take out the fields read item by item; the header is what is left.
    let components_node = root.take_field("components");
    let variant_nodes = take_list(&mut root, "variants", problems);
    let fault_nodes = take_list(&mut root, "faults", problems);
    let check_nodes = take_list(&mut root, "checks", problems);
    let chart_nodes = take_list(&mut root, "charts", problems);
    let table_nodes = take_list(&mut root, "table", problems);
    let link_nodes = take_list(&mut root, "links", problems);
    let header: Option<Header> = match tree::from_node(&root) {
        Ok(h) => Some(h),
        Err(e) => {
            let mut p = Problem::from_tree("", e);
            if p.suggestion.is_none() && p.message.starts_with("unknown field") {
                let field = p.message.split('`').nth(1).unwrap_or("");
                p.suggestion = suggest(field, TOP_FIELDS);
            }
            problems.push(p);
            None
        }
    };
    if let Some(h) = &header {
        if h.duration == SimDuration::ZERO {
            let span = root.field("duration").map(|n| n.span);
            problems.push(Problem::new(span, "duration", "must be > 0"));
        }
        if h.sample == SimDuration::ZERO {
            let span = root.field("sample").map(|n| n.span);
            problems.push(Problem::new(span, "sample", "must be > 0"));
        }
        if let Some(link) = &h.default_link
            && let Err(e) = link.validate()
        {
            let span = root.field("default_link").map(|n| n.span);
            problems.push(Problem::new(span, "default_link", e.to_string()));
        }
    }

    let raw_components: Vec<RawComponent> = match components_node {
        None => {
            problems.push(Problem::new(
                Some(root.span),
                "components",
                "a scenario needs `components: { \"name\": Kind(...), ... }`",
            ));
            Vec::new()
        }
        Some(node) => map_entries(node, "components", problems)
            .into_iter()
            .map(|(name, key_span, node)| RawComponent {
                name,
                key_span,
                node,
            })
            .collect(),
    };
    for c in &raw_components {
        if c.name.is_empty() || c.name.contains(['.', '[', ']', ' ']) {
            problems.push(Problem::new(
                Some(c.key_span),
                join("components", &c.name),
                "a component name must be non-empty, without `.`, `[`, `]` or spaces (metric \
                 names and override paths start with it)",
            ));
        }
    }

    // Variants: their headers now, their overrides when the components are resolved.
    let mut raw_variants: Vec<RawVariant> = Vec::new();
    for (i, mut node) in variant_nodes.into_iter().enumerate() {
        let path = format!("variants[{i}]");
        let sets = match node.take_field("set") {
            None => Vec::new(),
            Some(set) => map_entries(set, &join(&path, "set"), problems)
                .into_iter()
                .map(|(key, key_span, value)| Set {
                    path: key,
                    key_span,
                    value,
                    origin: format!("{path}.set"),
                })
                .collect(),
        };
        let expect = match node.take_field("expect") {
            None => Vec::new(),
            Some(e) => {
                let epath = join(&path, "expect");
                map_entries(e, &epath, problems)
                    .into_iter()
                    .filter_map(|(key, span, value)| {
                        let x = item::<Expect>(&value, &format!("{epath}[\"{key}\"]"), problems)?;
                        Some((key, span, x))
                    })
                    .collect()
            }
        };
        if let Some(head) = item::<VariantHeader>(&node, &path, problems) {
            if raw_variants.iter().any(|v| v.head.name == head.name) {
                let span = node.field("name").map(|n| n.span);
                problems.push(Problem::new(
                    span,
                    join(&path, "name"),
                    format!("two variants are called `{}`", head.name),
                ));
            }
            raw_variants.push(RawVariant { head, sets, expect });
        }
    }
    if raw_variants.is_empty() && problems.is_empty() {
        // No variants: the scenario is its own baseline, with nothing expected.
        raw_variants.push(RawVariant {
            head: VariantHeader {
                name: "baseline".into(),
                about: String::new(),
            },
            sets: Vec::new(),
            expect: Vec::new(),
        });
    }
    if !only.is_empty() && problems.is_empty() {
        let known: Vec<&str> = raw_variants.iter().map(|v| v.head.name.as_str()).collect();
        for name in only.iter().filter(|n| !known.contains(&n.as_str())) {
            problems.push(
                Problem::new(
                    None,
                    "--variant",
                    format!("no variant is called `{name}`; the variants are {known:?}"),
                )
                .suggest(suggest(name, known.iter().copied())),
            );
        }
        raw_variants.retain(|v| only.contains(&v.head.name));
    }
    let mut extra_sets = Vec::new();
    for (path, value) in extra {
        let id = sources.add(format!("--set {path}"), value.clone());
        match tree::parse(value, id) {
            Ok(node) => extra_sets.push(Set {
                path: path.clone(),
                key_span: node.span,
                value: node,
                origin: "--set".into(),
            }),
            Err(e) => problems.push(Problem::from_tree(&format!("--set {path}"), e)),
        }
    }

    // Resolve every variant's components.
    let names: Vec<&str> = raw_components.iter().map(|c| c.name.as_str()).collect();
    let mut variants = Vec::new();
    for rv in &raw_variants {
        let all_sets: Vec<&Set> = rv.sets.iter().chain(&extra_sets).collect();
        for s in &all_sets {
            let first = s.path.split(['.', '[']).next().unwrap_or("");
            if !names.contains(&first) {
                problems.push(
                    Problem::new(
                        Some(s.key_span),
                        format!("{}[\"{}\"]", s.origin, s.path),
                        format!(
                            "an override path starts with a component name, and no component \
                             is called `{first}`"
                        ),
                    )
                    .suggest(suggest(first, names.iter().copied())),
                );
            }
        }
        let resolved: Vec<Option<(Component, Node)>> = raw_components
            .iter()
            .map(|c| resolve_component(c, &models, &all_sets, problems))
            .collect();
        // Each config's own rules can be checked whatever the others look like.
        for c in resolved.iter().flatten() {
            check_config(c, problems);
        }
        if resolved.iter().all(Option::is_some) {
            let (mut comps, trees): (Vec<Component>, Vec<Node>) =
                resolved.into_iter().flatten().unzip();
            resolve_kinds(&mut comps, &trees, problems);
            check_components(&comps, &trees, problems);
            configure_groups(&mut comps, &trees, problems);
            configure_repl(&comps, &trees, problems);
            variants.push(Variant {
                name: rv.head.name.clone(),
                about: rv.head.about.clone(),
                expect: rv.expect.iter().map(|(k, _, x)| (k.clone(), *x)).collect(),
                set: all_sets
                    .iter()
                    .map(|s| (s.path.clone(), to_ron(&s.value)))
                    .collect(),
                components: comps,
            });
        }
    }

    // Hosts: each component's, in order.
    let mut hosts: Vec<String> = Vec::new();
    if let Some(v) = variants.first() {
        for c in &v.components {
            if !hosts.contains(&c.host) {
                hosts.push(c.host.clone());
            }
        }
    }
    let links: Vec<LinkDecl> = link_nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| {
            let path = format!("links[{i}]");
            let link: LinkDecl = item(n, &path, problems)?;
            for (field, host) in [("a", &link.a), ("b", &link.b)] {
                if !hosts.contains(host) {
                    problems.push(unknown_host(n, &path, field, host, &hosts));
                }
            }
            if let Err(e) = link.spec().validate() {
                problems.push(Problem::new(Some(n.span), path, e.to_string()));
            }
            Some(link)
        })
        .collect();

    // A fault may also hit one replica of a consumer group (`workers-1`), if every variant
    // has that replica.
    let replicas = replica_names(&variants);
    let names: Vec<&str> = (names.iter().copied())
        .chain(replicas.iter().map(String::as_str))
        .collect();
    let mut faults = FaultPlan::new();
    for (i, n) in fault_nodes.iter().enumerate() {
        let path = format!("faults[{i}]");
        let Some(entry) = item::<FaultEntry>(n, &path, problems) else {
            continue;
        };
        if let Err(e) = entry.validate() {
            problems.push(Problem::new(Some(n.span), &path, e.to_string()));
        }
        for (field, name, host_only) in fault_names(&entry.fault) {
            let known = hosts.iter().any(|h| h == name) || (!host_only && names.contains(&name));
            if !known {
                let candidates: Vec<&str> = if host_only {
                    hosts.iter().map(String::as_str).collect()
                } else {
                    names
                        .iter()
                        .copied()
                        .chain(hosts.iter().map(String::as_str))
                        .collect()
                };
                let fpath = join(&path, &format!("fault.{field}"));
                let span = n
                    .get_path(&format!("fault.{field}"))
                    .map_or(n.span, |x| x.span);
                let what = if host_only {
                    "host"
                } else {
                    "component or host"
                };
                problems.push(
                    Problem::new(Some(span), fpath, format!("no {what} is called `{name}`"))
                        .suggest(suggest(name, candidates)),
                );
            }
        }
        if let Some(h) = &header
            && let Some(at) = entry.at.or(entry.from)
            && at > SimTime::ZERO.saturating_add(h.duration)
        {
            problems.push(Problem::new(
                Some(n.span),
                &path,
                format!("starts at {at}, after the run ends ({})", h.duration),
            ));
        }
        faults.entries.push(entry);
    }

    let mut checks: Vec<Check> = Vec::new();
    for (i, n) in check_nodes.iter().enumerate() {
        let path = format!("checks[{i}]");
        let Some(check) = item::<Check>(n, &path, problems) else {
            continue;
        };
        if let Err(e) = check.validate() {
            let span = n.get_path(e.field()).map_or(n.span, |x| x.span);
            problems.push(
                Problem::new(Some(span), join(&path, e.field()), e.to_string())
                    .suggest(e.suggestion().map(str::to_string)),
            );
        }
        if checks.iter().any(|c| c.name() == check.name()) {
            problems.push(Problem::new(
                n.get_path("name").map(|x| x.span),
                join(&path, "name"),
                format!("two checks are called `{}`", check.name()),
            ));
        }
        checks.push(check);
    }
    let charts: Vec<ChartDecl> = chart_nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| item(n, &format!("charts[{i}]"), problems))
        .collect();
    let table: Vec<Expr> = table_nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| item(n, &format!("table[{i}]"), problems))
        .collect();

    // Expectations must name checks.
    for (i, rv) in raw_variants.iter().enumerate() {
        for (name, span, _) in &rv.expect {
            if !checks.iter().any(|c| c.name() == name) {
                problems.push(
                    Problem::new(
                        Some(*span),
                        format!("variants[{i}].expect[\"{name}\"]"),
                        format!("no check is called `{name}`"),
                    )
                    .suggest(suggest(name, checks.iter().map(Check::name))),
                );
            }
        }
    }

    let header = header?;
    if !problems.is_empty() {
        return None;
    }
    let mut limits = Limits {
        max_time: SimTime::ZERO.saturating_add(header.duration),
        ..Limits::default()
    };
    if let Some(e) = header.limits.max_events {
        limits.max_events = e;
    }
    if let Some(q) = header.limits.max_queue {
        limits.max_queue = q;
    }
    let extra_text: Vec<String> = extra.iter().map(|(p, v)| format!("{p}={v}")).collect();
    let mut parts = vec![text];
    parts.extend(extra_text.iter().map(String::as_str));
    // Only a filter changes the digest: a file read whole digests as it always has.
    let only_text = format!("--variant {only:?}");
    if !only.is_empty() {
        parts.push(&only_text);
    }
    let mut scenario = Scenario {
        name: header.name,
        about: header.about,
        file: file.to_string(),
        seed: header.seed,
        duration: header.duration,
        sample: header.sample,
        limits,
        default_link: header.default_link,
        links,
        hosts,
        faults,
        checks,
        charts,
        table,
        variants,
        check_units: Vec::new(),
        table_units: Vec::new(),
        chart_units: Vec::new(),
        digest: fnv1a(&parts),
        text: text.to_string(),
        extra: extra.to_vec(),
        only: only.to_vec(),
    };
    // The model as a whole: build each variant and start it, then match the checks, charts
    // and table rows against the metrics its components register.
    let units = crate::scenario::build::check_metrics(
        &scenario,
        [&check_nodes, &chart_nodes, &table_nodes],
        problems,
    );
    (
        scenario.check_units,
        scenario.chart_units,
        scenario.table_units,
    ) = units;
    Some(scenario)
}

fn unknown_host(n: &Node, path: &str, field: &str, host: &str, hosts: &[String]) -> Problem {
    let span = n.field(field).map_or(n.span, |x| x.span);
    Problem::new(
        Some(span),
        join(path, field),
        format!("no host is called `{host}` (each component runs on the host its `host` names, or on one named after it)"),
    )
    .suggest(suggest(host, hosts.iter().map(String::as_str)))
}

/// Points a fault with a `target` at `to`.
fn retarget(f: &mut Fault, to: String) {
    match f {
        Fault::Crash { target }
        | Fault::Restart { target }
        | Fault::Pause { target }
        | Fault::Resume { target }
        | Fault::Slow { target, .. } => *target = to,
        _ => {}
    }
}

/// The names a fault refers to: (field, name, whether it must be a host).
fn fault_names(f: &Fault) -> Vec<(&'static str, &str, bool)> {
    match f {
        Fault::Crash { target }
        | Fault::Restart { target }
        | Fault::Pause { target }
        | Fault::Resume { target }
        | Fault::Slow { target, .. } => vec![("target", target.as_str(), false)],
        Fault::ClockOffset { host, .. }
        | Fault::ClockDrift { host, .. }
        | Fault::ClockStep { host, .. } => vec![("host", host.as_str(), true)],
        Fault::Partition { a, b, .. } => a
            .iter()
            .map(|h| ("a", h.as_str(), true))
            .chain(b.iter().map(|h| ("b", h.as_str(), true)))
            .collect(),
        Fault::OneWay { from, to, .. } => from
            .iter()
            .map(|h| ("from", h.as_str(), true))
            .chain(to.iter().map(|h| ("to", h.as_str(), true)))
            .collect(),
        Fault::Heal => Vec::new(),
        Fault::LinkLatency { a, b, .. } | Fault::LinkLoss { a, b, .. } => {
            vec![("a", a.as_str(), true), ("b", b.as_str(), true)]
        }
    }
}

/// Layers one component for one variant: model defaults, the scenario's fields, overrides.
fn resolve_component(
    raw: &RawComponent,
    models: &[Model],
    sets: &[&Set],
    problems: &mut Problems,
) -> Option<(Component, Node)> {
    let path = join("components", &raw.name);
    let (kind_name, fields) = match &raw.node.value {
        Value::Struct {
            name: Some(kind),
            fields,
        } => (kind.as_str(), fields.clone()),
        Value::Tuple {
            name: Some(kind),
            items,
        } if items.is_empty() => (kind.as_str(), Vec::new()),
        Value::Ident(kind) => (kind.as_str(), Vec::new()),
        _ => {
            problems.push(Problem::new(
                Some(raw.node.span),
                path,
                format!(
                    "expected a component such as `Service(workers: 8, ...)`, found {}",
                    raw.node.describe()
                ),
            ));
            return None;
        }
    };
    let Some(kind) = Kind::from_name(kind_name) else {
        problems.push(
            Problem::new(
                Some(raw.node.span),
                path,
                format!(
                    "`{kind_name}` is not a component kind; the kinds are {}",
                    Kind::ALL.map(|k| format!("`{}`", k.name())).join(", ")
                ),
            )
            .suggest(suggest(kind_name, Kind::ALL.iter().map(|k| k.name()))),
        );
        return None;
    };
    let mut over = Node::new(Value::Struct { name: None, fields }, raw.node.span);
    let model_name = match over.take_field("model") {
        None => kind.default_model().to_string(),
        Some(Node {
            value: Value::Str(m),
            ..
        }) => m,
        Some(other) => {
            problems.push(Problem::new(
                Some(other.span),
                join(&path, "model"),
                format!(
                    "expected a model name such as \"{}\", found {}",
                    kind.default_model(),
                    other.describe()
                ),
            ));
            return None;
        }
    };
    let Some(model) = models.iter().find(|m| m.name == model_name) else {
        let span = raw.node.field("model").map_or(raw.node.span, |n| n.span);
        problems.push(
            Problem::new(
                Some(span),
                join(&path, "model"),
                format!("no model is called `{model_name}` (see `faultline models`)"),
            )
            .suggest(suggest(&model_name, models.iter().map(|m| m.name.as_str()))),
        );
        return None;
    };
    if model.kind != kind {
        let span = raw.node.field("model").map_or(raw.node.span, |n| n.span);
        problems.push(Problem::new(
            Some(span),
            join(&path, "model"),
            format!(
                "`{model_name}` is a model of a {}, not of a {}",
                model.kind.name(),
                kind.name()
            ),
        ));
        return None;
    }
    let mut tree = model.defaults.clone();
    tree.merge(over);
    let mut ok = true;
    let prefix = format!("{}.", raw.name);
    for s in sets {
        let Some(rest) = s.path.strip_prefix(&prefix) else {
            if s.path == raw.name {
                problems.push(Problem::new(
                    Some(s.key_span),
                    format!("{}[\"{}\"]", s.origin, s.path),
                    format!(
                        "an override names a field of the component: `{}.workers`, say",
                        raw.name
                    ),
                ));
                ok = false;
            }
            continue;
        };
        if rest == "model" {
            problems.push(Problem::new(
                Some(s.key_span),
                format!("{}[\"{}\"]", s.origin, s.path),
                "a variant cannot change a component's model; override its fields instead",
            ));
            ok = false;
            continue;
        }
        if let Err(e) = tree.set_path(rest, s.value.clone()) {
            let mut p = Problem::from_tree("", e);
            p.span = Some(s.key_span);
            p.path = format!("{}[\"{}\"]", s.origin, s.path);
            problems.push(p);
            ok = false;
        }
    }
    if !ok {
        return None;
    }
    let host = match tree.take_field("host") {
        None => raw.name.clone(),
        Some(Node {
            value: Value::Str(h),
            ..
        }) if !h.is_empty() => h,
        Some(other) => {
            problems.push(Problem::new(
                Some(other.span),
                join(&path, "host"),
                format!("expected a host name, found {}", other.describe()),
            ));
            return None;
        }
    };
    let config = problems.keep(Config::from_node(kind, &tree).map_err(|e| {
        let mut p = Problem::from_tree(&path, e);
        if p.span.is_none() {
            p.span = Some(raw.node.span);
        }
        p
    }))?;
    Some((
        Component {
            name: raw.name.clone(),
            model: model_name,
            host,
            config,
        },
        tree,
    ))
}

/// Replaces request-kind names by indices into the callee's table, following load balancers
/// to a backend.
fn resolve_kinds(comps: &mut [Component], trees: &[Node], problems: &mut Problems) {
    // Kind names per component, computed first: the references are resolved in place.
    /// (component, the kinds it serves, the backends it forwards to).
    type Table = (String, Option<Vec<String>>, Option<Vec<String>>);
    let tables: Vec<Table> = comps
        .iter()
        .map(|c| {
            let names = c
                .config
                .kind_names()
                .map(|ns| ns.into_iter().map(str::to_string).collect());
            let forwards = c.config.forwards_to().map(<[String]>::to_vec);
            (c.name.clone(), names, forwards)
        })
        .collect();
    let kinds_of = |target: &str| -> Option<&Vec<String>> {
        let mut name = target;
        // A chain of load balancers is followed to its first real backend; the hop limit
        // stops a cycle of balancers from looping.
        for _ in 0..=tables.len() {
            let (_, names, forwards) = tables.iter().find(|(n, _, _)| n == name)?;
            if let Some(names) = names {
                return Some(names);
            }
            name = forwards.as_ref()?.first()?;
        }
        None
    };
    for (c, tree) in comps.iter_mut().zip(trees) {
        let comp_name = c.name.clone();
        for (field, target, kref) in c.config.kind_refs_mut() {
            let KindRef::Name(kind) = &*kref else {
                continue;
            };
            let path = join(&join("components", &comp_name), &field);
            let span = span_of(tree, &field);
            let Some(names) = kinds_of(&target) else {
                // A dangling target is reported by `check_components`.
                continue;
            };
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            match KindRef::Name(kind.clone()).resolve(&refs) {
                Ok(i) => *kref = KindRef::Index(i),
                Err(msg) => problems.push(
                    Problem::new(Some(span), path, format!("`{target}`: {msg}"))
                        .suggest(suggest(kind, refs)),
                ),
            }
        }
    }
}

/// Checks that every actor a variant's components name exists.
fn check_components(comps: &[Component], trees: &[Node], problems: &mut Problems) {
    let names: Vec<&str> = comps.iter().map(|c| c.name.as_str()).collect();
    for (c, tree) in comps.iter().zip(trees) {
        let path = join("components", &c.name);
        for (field, target) in c.config.targets() {
            if !names.contains(&target) {
                problems.push(
                    Problem::new(
                        Some(span_of(tree, &field)),
                        join(&path, &field),
                        format!("no component is called `{target}`"),
                    )
                    .suggest(suggest(target, names.iter().copied())),
                );
            }
            // A store's node lists every node, itself too; a watcher every watcher.
            let lists_itself = match &c.config {
                Config::ReplNode(_) => field.starts_with("peers"),
                Config::Sentinel(_) => field.starts_with("watchers"),
                _ => false,
            };
            if target == c.name && !lists_itself {
                problems.push(Problem::new(
                    Some(span_of(tree, &field)),
                    join(&path, &field),
                    "a component cannot call itself",
                ));
            }
        }
    }
}

/// Wires the log family across components: every topic a producer or consumer group names
/// must be led by its broker with the partition count it assumes, and each consumer group's
/// coordinator on its broker takes the group's session timeout, rebalance timeout (its
/// `max_poll_interval`) and protocol from the members, as Kafka's coordinator takes them from
/// each JoinGroup; what else the broker's `groups` entry says (the initial rebalance delay)
/// is kept.
fn configure_groups(comps: &mut [Component], trees: &[Node], problems: &mut Problems) {
    use crate::model::log::assign::RebalanceProtocol;
    use crate::model::log::group::{
        GroupConfig, MAX_SESSION_TIMEOUT, MIN_SESSION_TIMEOUT, Protocol,
    };
    // (component index, broker, topic, partitions, field path prefix) of every user.
    let mut uses = Vec::new();
    let mut groups = Vec::new();
    for (i, c) in comps.iter().enumerate() {
        match &c.config {
            Config::Producer(p) => {
                for b in &p.brokers {
                    uses.push((i, b.clone(), p.topic.clone(), p.partitions, ""));
                }
            }
            Config::ConsumerGroup(g) => {
                let k = &g.consumer;
                uses.push((
                    i,
                    k.broker.clone(),
                    k.topic.clone(),
                    k.partitions,
                    "consumer.",
                ));
                let protocol = match k.assignor.protocol() {
                    RebalanceProtocol::Eager => Protocol::Eager,
                    RebalanceProtocol::Cooperative => Protocol::Cooperative,
                };
                groups.push((
                    i,
                    k.broker.clone(),
                    k.group.clone(),
                    k.session_timeout,
                    k.max_poll_interval,
                    protocol,
                ));
            }
            _ => {}
        }
    }
    let broker_of = |comps: &[Component], name: &str| {
        comps
            .iter()
            .position(|c| c.name == name && matches!(c.config, Config::Broker(_)))
    };
    for (i, broker, topic, partitions, prefix) in uses {
        let path = join("components", &comps[i].name);
        let Some(b) = broker_of(comps, &broker) else {
            // A dangling name is reported by `check_components`; another kind is wrong here.
            if comps.iter().any(|c| c.name == broker) {
                let field = format!("{prefix}broker");
                problems.push(Problem::new(
                    Some(span_of(&trees[i], &field)),
                    join(&path, &field),
                    format!("`{broker}` is not a Broker"),
                ));
            }
            continue;
        };
        let Config::Broker(bc) = &comps[b].config else {
            unreachable!()
        };
        let field = format!("{prefix}topic");
        match bc.topics.iter().find(|t| t.name == topic) {
            None => problems.push(
                Problem::new(
                    Some(span_of(&trees[i], &field)),
                    join(&path, &field),
                    format!("broker `{broker}` has no topic `{topic}`"),
                )
                .suggest(suggest(&topic, bc.topics.iter().map(|t| t.name.as_str()))),
            ),
            Some(t) if t.partitions != partitions => {
                let field = format!("{prefix}partitions");
                problems.push(Problem::new(
                    Some(span_of(&trees[i], &field)),
                    join(&path, &field),
                    format!(
                        "{partitions}, but topic `{topic}` on `{broker}` has {} partitions",
                        t.partitions
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    for (i, broker, group, session, rebalance, protocol) in groups {
        let Some(b) = broker_of(comps, &broker) else {
            continue;
        };
        if !(MIN_SESSION_TIMEOUT..=MAX_SESSION_TIMEOUT).contains(&session) {
            let field = "consumer.session_timeout";
            problems.push(Problem::new(
                Some(span_of(&trees[i], field)),
                join(&join("components", &comps[i].name), field),
                format!(
                    "{session} is outside the broker's bounds [{MIN_SESSION_TIMEOUT},                      {MAX_SESSION_TIMEOUT}] (INVALID_SESSION_TIMEOUT)"
                ),
            ));
            continue;
        }
        let Config::Broker(bc) = &mut comps[b].config else {
            unreachable!()
        };
        let entry = bc.groups.entry(group).or_insert_with(GroupConfig::default);
        entry.session_timeout = session;
        entry.rebalance_timeout = rebalance;
        entry.protocol = protocol;
    }
}

/// Checks the replicated store's wiring (the names exist: `check_components`): each name is
/// of the kind its field needs, every node lists itself and the same peers with the same
/// first (the initial primary), every watcher lists itself, and the watchers and clients name
/// the nodes of a store (the watchers with its initial primary first). Components naming the
/// same node set share one oracle (`components.rs`), so these agreements are what make them
/// one store. A `LeaderKiller`'s group, likewise, must name RaftNodes and be exactly one
/// Raft group's members (the set it shares an observer with).
fn configure_repl(comps: &[Component], trees: &[Node], problems: &mut Problems) {
    let kind_of = |name: &str| {
        comps
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.config.kind())
    };
    let sorted = |names: &[String]| {
        let mut v: Vec<String> = names.to_vec();
        v.sort();
        v
    };
    for (i, c) in comps.iter().enumerate() {
        let path = join("components", &c.name);
        let mut problem = |field: String, message: String| {
            problems.push(Problem::new(
                Some(span_of(&trees[i], &field)),
                join(&path, &field),
                message,
            ));
        };
        // (field, names, the kind they must be)
        let mut lists: Vec<(&str, &[String], Kind)> = Vec::new();
        // The node list this component calls its store's, and whether its first must be the
        // store's first.
        let mut store: Option<(&str, &[String], bool)> = None;
        // A nemesis's Raft group, which must be one group's members.
        let mut killer: Option<&[String]> = None;
        match &c.config {
            Config::LeaderKiller(k) => {
                lists.push(("group", &k.group, Kind::RaftNode));
                killer = Some(&k.group);
            }
            Config::ReplNode(n) => {
                lists.push(("peers", &n.peers, Kind::ReplNode));
                if let Some(s) = &n.fence_store {
                    lists.push(("fence_store", std::slice::from_ref(s), Kind::EpochStore));
                }
                if !n.peers.contains(&c.name) {
                    problem(
                        "peers".into(),
                        format!(
                            "a node lists every node of its store, itself too: add `{}`",
                            c.name
                        ),
                    );
                }
                store = Some(("peers", &n.peers, true));
            }
            Config::Sentinel(w) => {
                lists.push(("nodes", &w.nodes, Kind::ReplNode));
                lists.push(("watchers", &w.watchers, Kind::Sentinel));
                lists.push(("clients", &w.clients, Kind::ReplClient));
                if let Some(s) = &w.stonith {
                    lists.push(("stonith", std::slice::from_ref(s), Kind::PowerSwitch));
                }
                if let Some(s) = &w.fence_store {
                    lists.push(("fence_store", std::slice::from_ref(s), Kind::EpochStore));
                }
                if !w.watchers.contains(&c.name) {
                    problem(
                        "watchers".into(),
                        format!(
                            "a watcher lists every watcher, itself too: add `{}`",
                            c.name
                        ),
                    );
                }
                store = Some(("nodes", &w.nodes, true));
            }
            Config::ReplClient(k) => {
                lists.push(("nodes", &k.nodes, Kind::ReplNode));
                store = Some(("nodes", &k.nodes, false));
            }
            _ => {}
        }
        let mut well_typed = true;
        for (field, names, kind) in lists {
            for (j, name) in names.iter().enumerate() {
                match kind_of(name) {
                    Some(k) if k != kind => {
                        well_typed = false;
                        let f = if field == "stonith" {
                            field.to_string()
                        } else {
                            format!("{field}[{j}]")
                        };
                        problem(
                            f,
                            format!("`{name}` is a {}, not a {}", k.name(), kind.name()),
                        );
                    }
                    Some(_) => {}
                    // Reported by `check_components`.
                    None => well_typed = false,
                }
            }
        }
        if let Some(group) = killer
            && well_typed
            && let Some(first) = group.first()
            && let Some(Config::RaftNode(n)) =
                comps.iter().find(|x| &x.name == first).map(|x| &x.config)
        {
            // The group a member forms is its peers and itself; the killer shares that
            // group's observer only if it names exactly those (otherwise it would watch a
            // group of its own that never has a leader, and kill nothing).
            let mut members = n.peers.clone();
            members.push(first.clone());
            let (mut members, mut named) = (sorted(&members), sorted(group));
            members.dedup();
            named.dedup();
            if members != named {
                problem(
                    "group".into(),
                    format!(
                        "[{}] is not the Raft group `{first}` belongs to, whose members are [{}]",
                        group.join(", "),
                        members.join(", ")
                    ),
                );
            }
        }
        let Some((field, nodes, same_first)) = store else {
            continue;
        };
        if !well_typed {
            continue;
        }
        // The store as its first node sees it; a node compares itself with every peer.
        let is_node = matches!(c.config, Config::ReplNode(_));
        let others: Vec<&String> = if is_node {
            nodes.iter().collect()
        } else {
            nodes.first().into_iter().collect()
        };
        for other in others {
            let Some(Config::ReplNode(o)) =
                comps.iter().find(|x| &x.name == other).map(|x| &x.config)
            else {
                continue;
            };
            if sorted(&o.peers) != sorted(nodes) {
                problem(
                    field.into(),
                    format!(
                        "[{}] is not the store `{other}` belongs to, whose nodes are [{}]",
                        nodes.join(", "),
                        o.peers.join(", ")
                    ),
                );
                break;
            } else if same_first && o.peers.first() != nodes.first() {
                problem(
                    format!("{field}[0]"),
                    format!(
                        "the first node is the store's initial primary, and `{other}` says it \
                         is `{}`",
                        o.peers[0]
                    ),
                );
                break;
            }
        }
    }
}

/// One component's own rules (`workers > 0`, pools that exist, ...).
fn check_config((c, tree): &(Component, Node), problems: &mut Problems) {
    if let Err(e) = c.config.validate() {
        let field = e.field().unwrap_or("");
        problems.push(Problem::new(
            Some(span_of(tree, field)),
            join(&join("components", &c.name), field),
            strip_field(&e.to_string(), field),
        ));
    }
}

/// A config error's message without its leading "field: ", which the problem's path already
/// says.
fn strip_field(message: &str, field: &str) -> String {
    message
        .strip_prefix(field)
        .and_then(|m| m.strip_prefix(": ").or(Some(m.trim_start())))
        .filter(|m| !m.is_empty())
        .unwrap_or(message)
        .to_string()
}
