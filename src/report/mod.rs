//! The presentation layer: what a run's results look like to a person or a spreadsheet once the
//! simulation is over. A side-by-side text table for the terminal ([`table`]), SVG line charts
//! over virtual time with the fault windows shaded, or against a swept parameter with
//! confidence intervals ([`chart`]), a long-format CSV of the time series ([`csv`]), and the
//! JSON schemas of run and sweep reports ([`json`]). Nothing here runs or changes a
//! simulation; every function is a pure function of its input, so the same results give
//! byte-identical files, which keeps reports diffable and their tests exact.
//!
//! ```
//! use faultline::SimTime;
//! use faultline::report::{Cell, ChartLine, ChartSpec, FaultWindow, Table, Unit, Verdict};
//!
//! let mut table = Table::new(["baseline", "cooperative"]);
//! table.push_row("sink.lag_total max", vec![
//!     Cell::value(61_234.0, Unit::Count),
//!     Cell::value(1_904.0, Unit::Count),
//! ])?;
//! table.push_row("lag recovers", vec![
//!     Cell::Verdict(Verdict::ExpectedFail),
//!     Cell::Verdict(Verdict::Pass),
//! ])?;
//! assert!(table.render(100, false).contains("sink.lag_total max     61.2k         1904"));
//!
//! let secs = |s: u64| SimTime::from_nanos(s * 1_000_000_000);
//! let svg = faultline::report::render_svg(&ChartSpec {
//!     title: "Consumer lag".to_owned(),
//!     y_label: "lag".to_owned(),
//!     unit: Unit::Count,
//!     series: vec![ChartLine {
//!         label: "baseline".to_owned(),
//!         points: vec![(secs(0), 0.0), (secs(60), 5_000.0)],
//!     }],
//!     windows: vec![FaultWindow { from: secs(20), until: secs(40), label: "pause".to_owned() }],
//! })?;
//! assert!(svg.contains("Consumer lag"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod chart;
pub mod csv;
pub mod json;
pub mod stats;
pub mod table;
mod unit;

pub use chart::{
    ChartError, ChartLine, ChartSpec, FaultWindow, IntervalStyle, ParamChartSpec, ParamLine,
    ParamPoint, ParamScale, render_param_svg, render_svg,
};
pub use csv::{series_csv, write_series_csv};
pub use table::{Cell, Row, Table, TableError, Verdict};
pub use unit::{Unit, grouped};

/// `text` as a file-name part of at most `max` characters: lower-case ASCII letters and digits,
/// every other run of characters one `-` (`Fail fast + fallback` -> `fail-fast-fallback`).
pub fn slug(text: &str, max: usize) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').chars().take(max).collect()
}
