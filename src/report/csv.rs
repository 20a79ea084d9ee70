//! The time series of every variant as one long-format CSV (`variant,series,time_s,value`, a
//! row per point), the shape pandas, R and spreadsheets pivot most easily. Rows come in the
//! order given (variants in variant order, series in name order as a snapshot holds them,
//! points in time order), times are exact decimals of the nanosecond clock and values are the
//! shortest text that reads back as the same `f64`, so the file is byte-for-byte reproducible.
//! Escaping follows RFC 4180; lines end in `\n`, which every reader of that RFC accepts.

use std::io;

use crate::engine::time::SimTime;
use crate::metrics::Series;

/// The header row.
pub const HEADER: &str = "variant,series,time_s,value";

/// Writes the CSV of `variants` (each a variant's name and its series) to `out`.
///
/// A NaN value (an interval with no samples) is an empty field, which readers take as
/// missing; infinities are `inf` and `-inf`.
pub fn write_series_csv<'a, W, V, S>(mut out: W, variants: V) -> io::Result<()>
where
    W: io::Write,
    V: IntoIterator<Item = (&'a str, S)>,
    S: IntoIterator<Item = &'a Series>,
{
    writeln!(out, "{HEADER}")?;
    for (variant, series) in variants {
        let variant = field(variant);
        for s in series {
            let name = field(&s.name);
            for &(t, v) in &s.points {
                writeln!(out, "{variant},{name},{},{}", seconds(t), value(v))?;
            }
        }
    }
    Ok(())
}

/// The CSV of `variants` as a string; see [`write_series_csv`].
pub fn series_csv<'a, V, S>(variants: V) -> String
where
    V: IntoIterator<Item = (&'a str, S)>,
    S: IntoIterator<Item = &'a Series>,
{
    let mut out = Vec::new();
    // Writing to a Vec cannot fail, and every piece written is a `str`, so the bytes are UTF-8;
    // the fallbacks below are unreachable rather than silently lossy.
    match write_series_csv(&mut out, variants) {
        Ok(()) => String::from_utf8(out).unwrap_or_else(|e| panic!("CSV is not UTF-8: {e}")),
        Err(e) => panic!("writing CSV to memory failed: {e}"),
    }
}

/// `text` as a CSV field: quoted, with quotes doubled, when it holds a separator, a quote, a
/// line break, or leading or trailing spaces (which some readers would trim).
fn field(text: &str) -> String {
    let needs_quotes =
        text.contains([',', '"', '\n', '\r']) || text.starts_with(' ') || text.ends_with(' ');
    if needs_quotes {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// Seconds since the start, exact: the nanosecond count with a decimal point put in, never a
/// float that would print 0.30000000000000004.
fn seconds(t: SimTime) -> String {
    let nanos = t.as_nanos();
    let (whole, fraction) = (nanos / 1_000_000_000, nanos % 1_000_000_000);
    if fraction == 0 {
        whole.to_string()
    } else {
        let digits = format!("{fraction:09}");
        format!("{whole}.{}", digits.trim_end_matches('0'))
    }
}

/// The shortest decimal that parses back to `v`; exponent notation outside the range where
/// plain digits stay short (Display would print 1e300 as 301 digits).
fn value(v: f64) -> String {
    if v.is_nan() {
        return String::new();
    }
    let magnitude = v.abs();
    if magnitude.is_finite() && (magnitude >= 1e16 || (magnitude < 1e-5 && magnitude > 0.0)) {
        format!("{v:e}")
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::SeriesKind;

    fn series(name: &str, points: &[(u64, f64)]) -> Series {
        Series {
            name: name.to_owned(),
            kind: SeriesKind::Gauge,
            points: points
                .iter()
                .map(|&(ns, v)| (SimTime::from_nanos(ns), v))
                .collect(),
        }
    }

    #[test]
    fn long_format_in_the_order_given() {
        let baseline = [
            series("sink.lag_total", &[(0, 0.0), (1_000_000_000, 1500.0)]),
            series("sink.members", &[(0, 3.0)]),
        ];
        let fix = [series("sink.lag_total", &[(0, 0.0), (1_500_000_000, 0.25)])];
        let csv = series_csv([("baseline", &baseline[..]), ("cooperative", &fix[..])]);
        assert_eq!(
            csv,
            "variant,series,time_s,value\n\
             baseline,sink.lag_total,0,0\n\
             baseline,sink.lag_total,1,1500\n\
             baseline,sink.members,0,3\n\
             cooperative,sink.lag_total,0,0\n\
             cooperative,sink.lag_total,1.5,0.25\n"
        );
    }

    #[test]
    fn awkward_names_are_quoted() {
        let s = [series("rpc \"get\", p99", &[(1, 1.0)])];
        let csv = series_csv([(" a,b\nc", &s[..])]);
        assert_eq!(
            csv,
            "variant,series,time_s,value\n\" a,b\nc\",\"rpc \"\"get\"\", p99\",0.000000001,1\n"
        );
    }

    #[test]
    fn values_round_trip_and_gaps_are_empty() {
        let s = [series(
            "x",
            &[
                (0, f64::NAN),
                (1, f64::INFINITY),
                (2, f64::NEG_INFINITY),
                (3, 1e300),
                (4, 1e-300),
                (5, 0.1 + 0.2),
                (6, -2.5),
                (u64::MAX, f64::MIN_POSITIVE),
            ],
        )];
        let csv = series_csv([("v", &s[..])]);
        let values: Vec<&str> = csv
            .lines()
            .skip(1)
            .map(|line| line.rsplit(',').next().unwrap_or("?"))
            .collect();
        assert_eq!(
            values,
            [
                "",
                "inf",
                "-inf",
                "1e300",
                "1e-300",
                "0.30000000000000004",
                "-2.5",
                "2.2250738585072014e-308"
            ]
        );
        for text in &values[1..] {
            let parsed: f64 = text.parse().unwrap_or(f64::NAN);
            assert!(!parsed.is_nan(), "{text} does not parse back");
        }
        assert!(csv.ends_with("\nv,x,18446744073.709551615,2.2250738585072014e-308\n"));
    }

    #[test]
    fn nothing_to_write_is_a_header() {
        let none: [(&str, &[Series]); 0] = [];
        assert_eq!(series_csv(none), "variant,series,time_s,value\n");
    }

    #[test]
    fn writer_errors_are_returned() {
        struct Broken;
        impl io::Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("disk full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let s = [series("x", &[(0, 1.0)])];
        let err = write_series_csv(Broken, [("v", &s[..])]).err();
        assert_eq!(err.map(|e| e.to_string()).as_deref(), Some("disk full"));
    }
}
