//! What a number in a report measures, and how to write it for a person: `1.2 ms`, `3.4 s`,
//! `12.3k/s`, `98.5%`. Tables format each value on its own; a chart axis picks one scale for
//! all its ticks (`latency (ms)`), so both live here to keep the two in agreement. Rounding
//! uses comparisons and `libm`, not the platform's `log10`, so a report reads the same on
//! every operating system.

use serde::Serialize;

/// What a value measures; decides the suffix and the scale it is shown in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// A duration in nanoseconds (the unit of every latency histogram), shown in ns, µs, ms,
    /// s, min, h or d, whichever keeps the number below 1000.
    Nanos,
    /// A plain count: exact below 10,000 when whole, else `12.3k`, `4.56M`.
    Count,
    /// A rate per second of virtual time: `400/s`, `12.3k/s`.
    PerSecond,
    /// A fraction where 1.0 is everything, shown as a percentage: `98.5%`.
    Ratio,
}

/// One rung of a scale: values at or above `from` are divided by `divisor` and get `suffix`.
struct Rung {
    from: f64,
    divisor: f64,
    suffix: &'static str,
}

const fn rung(from: f64, divisor: f64, suffix: &'static str) -> Rung {
    Rung {
        from,
        divisor,
        suffix,
    }
}

/// Durations in nanoseconds. Seconds run up to 1000 s before minutes take over, so that the
/// common case (a timeout of 30 s, a recovery of 90 s) stays in one familiar unit.
const NANOS: [Rung; 7] = [
    rung(0.0, 1.0, "ns"),
    rung(1e3, 1e3, "µs"),
    rung(1e6, 1e6, "ms"),
    rung(1e9, 1e9, "s"),
    rung(1e12, 60e9, "min"),
    rung(60e12, 3_600e9, "h"),
    rung(3_600e12, 86_400e9, "d"),
];

/// Metric (SI-style) multipliers for counts and rates.
const METRIC: [Rung; 5] = [
    rung(0.0, 1.0, ""),
    rung(1e3, 1e3, "k"),
    rung(1e6, 1e6, "M"),
    rung(1e9, 1e9, "G"),
    rung(1e12, 1e12, "T"),
];

/// Beyond this many of the largest rung a value is written in scientific notation: a count of
/// 10^15 is a bug being reported, and `1.00e15` says so more plainly than `1000T`.
const SCIENTIFIC_ABOVE: f64 = 1e15;

/// Counts below this that are whole numbers are written exactly: "1234 messages" should not
/// read "1.23k" in a table comparing two runs that differ by one.
const EXACT_COUNT_BELOW: f64 = 10_000.0;

impl Unit {
    /// The value written for a person, e.g. `1.2 ms`; `n/a` for NaN (an interval with no
    /// samples), `∞` for infinities.
    pub fn format(self, value: f64) -> String {
        if value.is_nan() {
            return "n/a".to_owned();
        }
        if value.is_infinite() {
            return if value > 0.0 { "∞" } else { "-∞" }.to_owned();
        }
        let sign = if value < 0.0 { "-" } else { "" };
        let magnitude = value.abs();
        let body = match self {
            Unit::Nanos => on_ladder(magnitude, &NANOS, " "),
            Unit::Count => count_body(magnitude),
            Unit::PerSecond => format!("{}/s", count_body(magnitude)),
            Unit::Ratio => format!("{}%", fixed(magnitude * 100.0, 1)),
        };
        // A tiny negative that rounds to zero is written "0 ms", not "-0 ms".
        let rounds_to_zero = body.chars().filter(char::is_ascii_digit).all(|c| c == '0');
        if rounds_to_zero {
            body
        } else {
            format!("{sign}{body}")
        }
    }

    /// The scale a chart axis uses for values up to `max_abs` in magnitude: what to divide
    /// every value by, and the suffix for the axis title (`"ms"`, `"k/s"`, `"%"`); an empty
    /// suffix means plain numbers.
    pub(crate) fn axis_scale(self, max_abs: f64) -> (f64, String) {
        let pick = |ladder: &[Rung]| {
            let chosen = ladder
                .iter()
                .rev()
                .find(|r| max_abs >= r.from)
                .unwrap_or(&ladder[0]);
            (chosen.divisor, chosen.suffix)
        };
        match self {
            Unit::Nanos => {
                let (divisor, suffix) = pick(&NANOS);
                (divisor, suffix.to_owned())
            }
            Unit::Count => {
                let (divisor, suffix) = pick(&METRIC);
                let name = match suffix {
                    "" => "",
                    "k" => "thousands",
                    "M" => "millions",
                    "G" => "billions",
                    _ => "trillions",
                };
                (divisor, name.to_owned())
            }
            Unit::PerSecond => {
                let (divisor, suffix) = pick(&METRIC);
                let name = if suffix.is_empty() {
                    "per second".to_owned()
                } else {
                    format!("{suffix}/s")
                };
                (divisor, name)
            }
            Unit::Ratio => (0.01, "%".to_owned()),
        }
    }
}

/// A non-negative count with three significant figures and a metric suffix.
fn count_body(magnitude: f64) -> String {
    if magnitude < EXACT_COUNT_BELOW && magnitude.fract() == 0.0 {
        return fixed(magnitude, 0);
    }
    on_ladder(magnitude, &METRIC, "")
}

/// `magnitude` (finite, non-negative) on the highest rung it reaches, with three significant
/// figures; a value that rounds up to 1000 of one rung moves to the next ("1 ms", not
/// "1000 µs").
fn on_ladder(magnitude: f64, ladder: &[Rung], gap: &str) -> String {
    let top = &ladder[ladder.len() - 1];
    if magnitude >= SCIENTIFIC_ABOVE * top.divisor {
        return format!("{:.2e}{gap}{}", magnitude / top.divisor, top.suffix);
    }
    let mut index = ladder
        .iter()
        .rposition(|r| magnitude >= r.from)
        .unwrap_or(0);
    loop {
        let r = &ladder[index];
        let text = significant(magnitude / r.divisor);
        let rolls_over = text.parse::<f64>().is_ok_and(|v| v >= 1000.0);
        if rolls_over && index + 1 < ladder.len() {
            index += 1;
            continue;
        }
        return format!("{text}{gap}{}", r.suffix);
    }
}

/// Three significant figures, trailing zeros dropped: `1.2`, `12.3`, `123`, `0.005`.
pub(crate) fn significant(value: f64) -> String {
    let magnitude = value.abs();
    // Decimals for three significant figures, found by comparison rather than log10.
    let mut decimals = 2;
    let mut threshold = 1.0;
    if magnitude >= 100.0 {
        decimals = 0;
    } else if magnitude >= 10.0 {
        decimals = 1;
    } else {
        while magnitude < threshold && magnitude > 0.0 && decimals < 9 {
            threshold /= 10.0;
            decimals += 1;
        }
    }
    fixed(value, decimals)
}

/// `value` with at most `decimals` decimals, trailing zeros (and a bare point) dropped.
pub(crate) fn fixed(value: f64, decimals: usize) -> String {
    let text = format!("{value:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    };
    if text == "-0" { "0".to_owned() } else { text }
}

/// A whole number with its thousands grouped by commas, as narration prints counts:
/// `-1321897` as "-1,321,897".
pub fn grouped(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouped_puts_a_comma_every_three_digits_from_the_right() {
        let cases = [
            (0, "0"),
            (999, "999"),
            (1000, "1,000"),
            (1321897, "1,321,897"),
        ];
        for (n, text) in cases {
            assert_eq!(grouped(n), text);
        }
        assert_eq!(grouped(-45200), "-45,200");
        assert_eq!(grouped(i64::MIN), "-9,223,372,036,854,775,808");
    }

    #[test]
    fn durations_pick_the_unit_that_keeps_three_digits() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0 ns"),
            (1.0, "1 ns"),
            (999.0, "999 ns"),
            (1_500.0, "1.5 µs"),
            (1_200_000.0, "1.2 ms"),
            (12_345_678.0, "12.3 ms"),
            (999_600.0, "1 ms"),
            (999_999_999.0, "1 s"),
            (3_400_000_000.0, "3.4 s"),
            (90e9, "90 s"),
            (999e9, "999 s"),
            (1_000e9, "16.7 min"),
            (7_200e9, "120 min"),
            (360_000e9, "100 h"),
            (8.64e15, "100 d"),
            (-1_200_000.0, "-1.2 ms"),
            (0.25, "0.25 ns"),
            (1e40, "1.16e26 d"),
        ];
        for &(value, text) in cases {
            assert_eq!(Unit::Nanos.format(value), text, "{value}");
        }
    }

    #[test]
    fn counts_rates_and_ratios() {
        assert_eq!(Unit::Count.format(0.0), "0");
        assert_eq!(Unit::Count.format(1_234.0), "1234");
        assert_eq!(Unit::Count.format(9_999.0), "9999");
        assert_eq!(Unit::Count.format(12_345.0), "12.3k");
        assert_eq!(Unit::Count.format(1_234.5), "1.23k");
        assert_eq!(Unit::Count.format(0.5), "0.5");
        assert_eq!(Unit::Count.format(4_560_000.0), "4.56M");
        assert_eq!(Unit::Count.format(999_999.0), "1M");
        assert_eq!(Unit::Count.format(1e300), "1.00e288T");
        assert_eq!(Unit::PerSecond.format(400.0), "400/s");
        assert_eq!(Unit::PerSecond.format(12_300.0), "12.3k/s");
        assert_eq!(Unit::PerSecond.format(0.5), "0.5/s");
        assert_eq!(Unit::Ratio.format(0.985), "98.5%");
        assert_eq!(Unit::Ratio.format(1.0), "100%");
        assert_eq!(Unit::Ratio.format(0.0), "0%");
        assert_eq!(Unit::Ratio.format(-0.0001), "0%");
    }

    #[test]
    fn non_finite_values_are_words() {
        assert_eq!(Unit::Nanos.format(f64::NAN), "n/a");
        assert_eq!(Unit::Count.format(f64::INFINITY), "∞");
        assert_eq!(Unit::Ratio.format(f64::NEG_INFINITY), "-∞");
    }

    #[test]
    fn significant_figures() {
        assert_eq!(significant(0.005), "0.005");
        assert_eq!(significant(0.012345), "0.0123");
        assert_eq!(significant(0.5), "0.5");
        assert_eq!(significant(1.234), "1.23");
        assert_eq!(significant(12.34), "12.3");
        assert_eq!(significant(123.4), "123");
        assert_eq!(significant(0.0), "0");
    }

    #[test]
    fn axis_scales() {
        assert_eq!(Unit::Nanos.axis_scale(250e6), (1e6, "ms".to_owned()));
        assert_eq!(Unit::Nanos.axis_scale(2e9), (1e9, "s".to_owned()));
        assert_eq!(Unit::Count.axis_scale(50.0), (1.0, String::new()));
        assert_eq!(Unit::Count.axis_scale(5e4), (1e3, "thousands".to_owned()));
        assert_eq!(Unit::PerSecond.axis_scale(5e4), (1e3, "k/s".to_owned()));
        assert_eq!(
            Unit::PerSecond.axis_scale(50.0),
            (1.0, "per second".to_owned())
        );
        assert_eq!(Unit::Ratio.axis_scale(1.0), (0.01, "%".to_owned()));
    }
}
