//! The `faultline` command. For now it only reports its version and points at the examples; the
//! scenario runner (`run`, `check`, `sweep`, ...) is built on the library in a later step.

use clap::Parser;

/// A deterministic simulator of distributed failure modes.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
    println!(
        "faultline {}: the scenario runner is not built yet; try `cargo run --release --example quickstart`.",
        env!("CARGO_PKG_VERSION")
    );
}
