//! The side-by-side text table `faultline run` prints: one row per metric or check, one
//! column per variant, so a fix is read across from the baseline. It fits a terminal width
//! (100 columns in CI logs) by narrowing the widest columns first and abbreviating labels and
//! names with a middle ellipsis — metric names differ at the end (`….p50`, `….p99`), so the end
//! is kept — while numbers are never cut. Colour is opt-in, for verdicts only.

use std::fmt::Write as _;

use thiserror::Error;

use crate::report::unit::Unit;

/// Space between columns.
const GAP: usize = 2;
/// The row-label column is never narrowed below this.
const LABEL_MIN: usize = 8;
/// A variant column is never narrowed below this (nor below its widest number).
const COLUMN_MIN: usize = 5;

const GREEN: &str = "\x1b[32m";
const RED: &str = "\x1b[31m";
const RESET: &str = "\x1b[0m";

/// The outcome of a check in one variant, against what the variant expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Held, as expected.
    Pass,
    /// Failed, and the variant expected it to hold.
    Fail,
    /// Failed, as the variant expects: the failure mode was reproduced.
    ExpectedFail,
    /// Held, but the variant expects it to fail: the scenario no longer reproduces its failure.
    UnexpectedPass,
}

impl Verdict {
    /// The word in the table; the short forms are pytest's, explained under the table.
    fn word(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "FAIL",
            Verdict::ExpectedFail => "xfail",
            Verdict::UnexpectedPass => "XPASS",
        }
    }

    /// Whether the outcome is what the variant expects.
    fn is_good(self) -> bool {
        matches!(self, Verdict::Pass | Verdict::ExpectedFail)
    }
}

/// One variant's entry in a row.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    /// A number, written in its unit (`1.2 ms`); NaN is written `n/a`.
    Value {
        value: f64,
        unit: Unit,
    },
    Text(String),
    Verdict(Verdict),
    /// The variant has no such metric or check.
    Missing,
}

impl Cell {
    pub fn value(value: f64, unit: Unit) -> Cell {
        Cell::Value { value, unit }
    }

    /// The visible text, and whether it may be abbreviated (numbers may not).
    fn text(&self) -> (String, bool) {
        match self {
            Cell::Value { value, unit } => (unit.format(*value), false),
            Cell::Text(text) => (text.clone(), true),
            Cell::Verdict(v) => (v.word().to_owned(), false),
            Cell::Missing => ("–".to_owned(), false),
        }
    }
}

/// A row: a metric or a check, and one cell per variant.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub label: String,
    pub cells: Vec<Cell>,
}

/// A table built with a row of the wrong length is a bug in the caller.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TableError {
    #[error("row \"{label}\" has {cells} cells but the table has {columns} variant columns")]
    CellCount {
        label: String,
        cells: usize,
        columns: usize,
    },
}

/// Rows of metrics and checks, columns of variants.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    columns: Vec<String>,
    rows: Vec<Row>,
}

impl Table {
    /// An empty table with one column per variant, in variant order.
    pub fn new<S: Into<String>>(columns: impl IntoIterator<Item = S>) -> Table {
        Table {
            columns: columns.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row; it must have exactly one cell per column.
    pub fn push_row(
        &mut self,
        label: impl Into<String>,
        cells: Vec<Cell>,
    ) -> Result<(), TableError> {
        let label = label.into();
        if cells.len() != self.columns.len() {
            return Err(TableError::CellCount {
                label,
                cells: cells.len(),
                columns: self.columns.len(),
            });
        }
        self.rows.push(Row { label, cells });
        Ok(())
    }

    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// The table as lines of at most `width` characters (more only when even the narrowest
    /// layout does not fit), each ending in a newline. With `color`, verdicts are green when
    /// they are what the variant expects and red when not.
    pub fn render(&self, width: usize, color: bool) -> String {
        if self.columns.is_empty() && self.rows.is_empty() {
            return String::new();
        }
        let cells: Vec<Vec<(String, bool)>> = self
            .rows
            .iter()
            .map(|row| row.cells.iter().map(Cell::text).collect())
            .collect();
        let widths = self.fit(&cells, width);
        let (label_width, column_widths) = (widths[0], &widths[1..]);

        let mut out = String::new();
        let mut line = " ".repeat(label_width);
        for (name, &w) in self.columns.iter().zip(column_widths) {
            line.push_str(&" ".repeat(GAP));
            line.push_str(&pad_left(&abbreviate(name, w), w));
        }
        push_line(&mut out, &line);
        let total = label_width + column_widths.iter().map(|w| w + GAP).sum::<usize>();
        push_line(&mut out, &"─".repeat(total));

        let (mut any_xfail, mut any_xpass) = (false, false);
        for (row, texts) in self.rows.iter().zip(&cells) {
            let mut line = pad_right(&abbreviate(&row.label, label_width), label_width);
            for ((cell, (text, may_cut)), &w) in row.cells.iter().zip(texts).zip(column_widths) {
                let text = if *may_cut {
                    abbreviate(text, w)
                } else {
                    text.clone()
                };
                line.push_str(&" ".repeat(GAP + w.saturating_sub(chars(&text))));
                match cell {
                    Cell::Verdict(v) if color => {
                        let ansi = if v.is_good() { GREEN } else { RED };
                        let _ = write!(line, "{ansi}{text}{RESET}");
                    }
                    _ => line.push_str(&text),
                }
                any_xfail |= *cell == Cell::Verdict(Verdict::ExpectedFail);
                any_xpass |= *cell == Cell::Verdict(Verdict::UnexpectedPass);
            }
            push_line(&mut out, &line);
        }
        // The short verdicts are explained under the table, and only those that appear.
        if any_xfail {
            push_line(&mut out, "xfail: failed, as the variant expects");
        }
        if any_xpass {
            push_line(
                &mut out,
                "XPASS: held, though the variant expects it to fail",
            );
        }
        out
    }

    /// Column widths, the label column first: natural widths, then the widest column narrowed
    /// one character at a time until the table fits or every column is at its floor. The label
    /// column counts as half its width when picking the widest, since it deserves room.
    fn fit(&self, cells: &[Vec<(String, bool)>], width: usize) -> Vec<usize> {
        let label = self.rows.iter().map(|r| chars(&r.label)).max().unwrap_or(0);
        let mut widths = vec![label];
        let mut floors = vec![label.min(LABEL_MIN)];
        for (j, name) in self.columns.iter().enumerate() {
            let column = cells.iter().filter_map(|row| row.get(j));
            let natural = column
                .clone()
                .map(|(t, _)| chars(t))
                .fold(chars(name), usize::max);
            let fixed = column
                .filter(|(_, may_cut)| !may_cut)
                .map(|(t, _)| chars(t))
                .max();
            widths.push(natural);
            floors.push(natural.min(fixed.unwrap_or(0).max(COLUMN_MIN)));
        }
        let total = |w: &[usize]| w.iter().sum::<usize>() + GAP * (w.len() - 1);
        while total(&widths) > width {
            let weight = |i: usize| if i == 0 { widths[i] / 2 } else { widths[i] };
            // The last of equally wide columns gives way first, so ties resolve the same way
            // every time and from the right.
            let widest = (0..widths.len())
                .filter(|&i| widths[i] > floors[i])
                .max_by_key(|&i| (weight(i), i));
            match widest {
                Some(i) => widths[i] -= 1,
                None => break,
            }
        }
        widths
    }
}

fn chars(text: &str) -> usize {
    text.chars().count()
}

/// `text` cut to `width` characters with an ellipsis in the middle, keeping both ends.
fn abbreviate(text: &str, width: usize) -> String {
    let count = chars(text);
    if count <= width {
        return text.to_owned();
    }
    if width == 0 {
        return String::new();
    }
    let keep = width - 1;
    let head = keep.div_ceil(2);
    let tail = keep - head;
    let mut out: String = text.chars().take(head).collect();
    out.push('…');
    out.extend(text.chars().skip(count - tail));
    out
}

fn pad_left(text: &str, width: usize) -> String {
    format!("{}{text}", " ".repeat(width.saturating_sub(chars(text))))
}

fn pad_right(text: &str, width: usize) -> String {
    format!("{text}{}", " ".repeat(width.saturating_sub(chars(text))))
}

/// Appends `line` without trailing spaces, and a newline.
fn push_line(out: &mut String, line: &str) {
    out.push_str(line.trim_end());
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(columns: &[&str], rows: Vec<(&str, Vec<Cell>)>) -> Table {
        let mut t = Table::new(columns.iter().copied());
        for (label, cells) in rows {
            if let Err(e) = t.push_row(label, cells) {
                panic!("{e}");
            }
        }
        t
    }

    /// Compares a rendering with its expected text, written with a leading newline so the
    /// table lines up in the source.
    fn check(actual: &str, expected: &str) {
        let expected = expected.strip_prefix('\n').unwrap_or(expected);
        assert!(
            actual == expected,
            "rendering differs; actual:\n{actual}\nexpected:\n{expected}"
        );
    }

    fn ms(v: f64) -> Cell {
        Cell::value(v * 1e6, Unit::Nanos)
    }

    fn three_variants() -> Table {
        use Verdict::*;
        table(
            &["baseline", "cooperative", "static"],
            vec![
                (
                    "sink.lag_total max",
                    vec![
                        Cell::value(61_234.0, Unit::Count),
                        Cell::value(14_300.0, Unit::Count),
                        Cell::value(1_904.0, Unit::Count),
                    ],
                ),
                ("rpc.latency.p99", vec![ms(1.2), ms(250.0), ms(3_400.0)]),
                (
                    "producer.throughput",
                    vec![
                        Cell::value(12_300.0, Unit::PerSecond),
                        Cell::value(400.0, Unit::PerSecond),
                        Cell::Missing,
                    ],
                ),
                (
                    "availability",
                    vec![
                        Cell::value(0.985, Unit::Ratio),
                        Cell::value(1.0, Unit::Ratio),
                        Cell::value(f64::NAN, Unit::Ratio),
                    ],
                ),
                (
                    "lag recovers",
                    vec![
                        Cell::Verdict(ExpectedFail),
                        Cell::Verdict(Pass),
                        Cell::Verdict(Fail),
                    ],
                ),
                (
                    "note",
                    vec![
                        Cell::Text("storm".to_owned()),
                        Cell::Text("calm".to_owned()),
                        Cell::Missing,
                    ],
                ),
            ],
        )
    }

    #[test]
    fn three_variants_at_their_natural_width() {
        check(
            &three_variants().render(100, false),
            "
                     baseline  cooperative  static
──────────────────────────────────────────────────
sink.lag_total max      61.2k        14.3k    1904
rpc.latency.p99        1.2 ms       250 ms   3.4 s
producer.throughput   12.3k/s        400/s       –
availability            98.5%         100%     n/a
lag recovers            xfail         pass    FAIL
note                    storm         calm       –
xfail: failed, as the variant expects
",
        );
    }

    #[test]
    fn colour_marks_verdicts_only() {
        check(
            &three_variants().render(100, true),
            "
                     baseline  cooperative  static
──────────────────────────────────────────────────
sink.lag_total max      61.2k        14.3k    1904
rpc.latency.p99        1.2 ms       250 ms   3.4 s
producer.throughput   12.3k/s        400/s       –
availability            98.5%         100%     n/a
lag recovers            \x1b[32mxfail\x1b[0m         \x1b[32mpass\x1b[0m    \x1b[31mFAIL\x1b[0m
note                    storm         calm       –
xfail: failed, as the variant expects
",
        );
    }

    #[test]
    fn six_variants_fit_in_a_hundred_columns() {
        use Verdict::*;
        let t = table(
            &[
                "baseline",
                "cooperative-sticky",
                "static-membership",
                "cpu-scaling",
                "cooperative+static+cpu",
                "rate-limited-autoscaler",
            ],
            vec![
                (
                    "sink.consumer.processing_latency.p50",
                    (1..=6).map(|i| ms(i as f64 * 1.5)).collect(),
                ),
                (
                    "sink.consumer.processing_latency.p99",
                    (1..=6).map(|i| ms(i as f64 * 123.4)).collect(),
                ),
                (
                    "sink.rebalances_total",
                    (0..6)
                        .map(|i| Cell::value((i * i * 7) as f64, Unit::Count))
                        .collect(),
                ),
                (
                    "lag recovers within 10m after the pause ends",
                    vec![
                        Cell::Verdict(ExpectedFail),
                        Cell::Verdict(Pass),
                        Cell::Verdict(Pass),
                        Cell::Verdict(UnexpectedPass),
                        Cell::Verdict(Pass),
                        Cell::Verdict(Fail),
                    ],
                ),
            ],
        );
        let text = t.render(100, false);
        for line in text.lines() {
            assert!(chars(line) <= 100, "{line:?} is {} wide", chars(line));
        }
        check(
            &text,
            "
                           baseline  coope…ticky  stati…rship  cpu-scaling  coope…c+cpu  rate-…caler
────────────────────────────────────────────────────────────────────────────────────────────────────
sink.consume…_latency.p50    1.5 ms         3 ms       4.5 ms         6 ms       7.5 ms         9 ms
sink.consume…_latency.p99    123 ms       247 ms       370 ms       494 ms       617 ms       740 ms
sink.rebalances_total             0            7           28           63          112          175
lag recovers…e pause ends     xfail         pass         pass        XPASS         pass         FAIL
xfail: failed, as the variant expects
XPASS: held, though the variant expects it to fail
",
        );
    }

    #[test]
    fn a_narrow_terminal_abbreviates_names_but_not_numbers() {
        check(
            &three_variants().render(40, false),
            "
                 bas…ine  coo…ve  static
────────────────────────────────────────
sink.la…tal max    61.2k   14.3k    1904
rpc.latency.p99   1.2 ms  250 ms   3.4 s
produce…oughput  12.3k/s   400/s       –
availability       98.5%    100%     n/a
lag recovers       xfail    pass    FAIL
note               storm    calm       –
xfail: failed, as the variant expects
",
        );
        // Narrower than the floors: the table overflows rather than cut a number.
        check(
            &three_variants().render(10, false),
            "
          bas…ine  coo…ve  st…ic
────────────────────────────────
sink…max    61.2k   14.3k   1904
rpc.…p99   1.2 ms  250 ms  3.4 s
prod…put  12.3k/s   400/s      –
avai…ity    98.5%    100%    n/a
lag …ers    xfail    pass   FAIL
note        storm    calm      –
xfail: failed, as the variant expects
",
        );
    }

    #[test]
    fn rows_must_match_the_columns() {
        let mut t = Table::new(["a", "b"]);
        let err = t.push_row("x", vec![Cell::Missing]).err();
        assert_eq!(
            err.map(|e| e.to_string()).as_deref(),
            Some("row \"x\" has 1 cells but the table has 2 variant columns")
        );
        assert!(t.rows().is_empty());
        assert_eq!(t.columns(), ["a", "b"]);
    }

    #[test]
    fn an_empty_table_is_a_header() {
        check(
            &Table::new(["baseline"]).render(100, false),
            "
  baseline
──────────
",
        );
        assert_eq!(Table::default().render(100, false), "");
    }

    #[test]
    fn abbreviation_keeps_both_ends() {
        assert_eq!(abbreviate("sink.latency.p99", 9), "sink….p99");
        assert_eq!(abbreviate("sink.latency.p99", 8), "sink…p99");
        assert_eq!(abbreviate("abc", 3), "abc");
        assert_eq!(abbreviate("abcd", 1), "…");
        assert_eq!(abbreviate("abcd", 0), "");
    }
}
