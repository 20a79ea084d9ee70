//! The presentation layer: what a run's results look like to a person or a spreadsheet once the
//! simulation is over. A side-by-side text table for the terminal ([`table`]), SVG line charts
//! with the fault windows shaded ([`chart`]), and a long-format CSV of the time series
//! ([`csv`]). Nothing here runs or changes a simulation; every function is a pure function of
//! its input, so the same results give byte-identical files, which keeps reports diffable and
//! their tests exact.

pub mod chart;
pub mod csv;
pub mod table;
mod unit;

pub use chart::{ChartError, ChartLine, ChartSpec, FaultWindow, render_svg};
pub use csv::{series_csv, write_series_csv};
pub use table::{Cell, Row, Table, TableError, Verdict};
pub use unit::Unit;
