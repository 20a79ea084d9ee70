//! Scenario files: the RON schema a person writes, its validation, variants as overrides of
//! the baseline, and building a runnable `Sim` from one variant.

pub mod tree;
