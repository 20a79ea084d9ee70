//! Scenario files: the RON schema a person writes, its validation, variants as overrides of
//! the baseline, building a runnable `Sim` from one variant, and running variants on many
//! seeds.
//!
//! ```text
//! text ──tree::parse──▶ Node ──load──▶ Scenario (every variant resolved and validated)
//!                                         │
//!                          build(variant, seed) ──▶ Sim<Msg> ──run──▶ SeedRun ──▶ Report
//! ```
//!
//! A component is layered from its model's defaults (`models/`), the scenario's fields, the
//! variant's `set` overrides and a sweep's parameter, as trees that keep names and positions
//! ([`tree`]), and only then read into its typed config; so every error, at any layer, points
//! at the file, line and column it came from.

mod build;
pub mod components;
pub mod error;
mod library;
mod load;
pub mod models;
pub mod run;
pub mod tree;

pub use build::build;
pub use components::{Config, Kind, Msg};
pub use error::{Problem, ScenarioError, Sources};
pub use library::{SHIPPED, shipped};
pub use load::{
    ChartDecl, Component, Expect, LinkDecl, Scenario, TOP_FIELDS, Variant, fault_label,
};
pub(crate) use load::{fault_plan_node, set_field};
pub use tree::{to_ron, to_ron_pretty};
