//! Virtual time for the simulator: [`SimTime`] is an instant (nanoseconds since the simulation
//! started) and [`SimDuration`] a span of nanoseconds. Both are plain `u64`s so ordering and
//! arithmetic are exact and identical on every platform, which deterministic replay depends on;
//! nothing here ever reads the wall clock.
//!
//! Scenario files write durations in a human form (`"250ms"`, `"1h30m"`, `"1.5s"`), which
//! [`FromStr`] parses exactly (decimal digits are handled as integers, never through `f64`) and
//! [`fmt::Display`] prints back in one canonical form that parses to the same value. Serde uses
//! the same string form in both directions.
//!
//! Engine code should use the `checked_*` / `saturating_*` methods. The `+`, `-` and `*`
//! operators panic on overflow or underflow, because reaching that through an operator means the
//! caller has a bug, not that a user wrote a bad scenario.

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Mul, MulAssign, Sub, SubAssign};
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

const NANOS_PER_MICRO: u64 = 1_000;
const NANOS_PER_MILLI: u64 = 1_000_000;
const NANOS_PER_SEC: u64 = 1_000_000_000;
const NANOS_PER_MIN: u64 = 60 * NANOS_PER_SEC;
const NANOS_PER_HOUR: u64 = 60 * NANOS_PER_MIN;
const NANOS_PER_DAY: u64 = 24 * NANOS_PER_HOUR;

/// `2^64` as an `f64`: the first float that no longer fits in a `u64` of nanoseconds.
/// (`u64::MAX as f64` rounds up to exactly this value.)
const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;

/// The units the parser accepts, spelled the way error messages list them.
const UNIT_LIST: &str = "ns, us, ms, s, m, h, d";

/// Everything that can go wrong turning numbers or text into simulated time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimeError {
    /// A duration or time string could not be parsed; `reason` says what to change.
    #[error("invalid duration \"{input}\": {reason}")]
    Parse {
        /// The text as the user wrote it.
        input: String,
        /// Why it was rejected, phrased as something the user can fix.
        reason: String,
    },
    /// An arithmetic result or an input value does not fit in 64 bits of nanoseconds.
    #[error(
        "{what} overflowed: the result is beyond the largest representable duration, \
         213503d23h34m33.709551615s (about 584 years)"
    )]
    Overflow {
        /// The operation that overflowed, e.g. `"SimTime + SimDuration"`.
        what: &'static str,
    },
    /// The result would be negative, which neither a time nor a duration can be.
    #[error(
        "the result would be negative, but simulated times and durations cannot go below zero; \
         check the order of the operands"
    )]
    Negative,
    /// A floating-point input was NaN or infinite.
    #[error("the number is NaN or infinite; a duration needs a finite number")]
    NotFinite,
}

/// An instant of simulated time: nanoseconds since the simulation started.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SimTime(u64);

/// A span of simulated time in nanoseconds.
///
/// `Display` (and `Debug`, and serde) print one canonical form:
///
/// * zero is `0s`;
/// * below one minute, a single component in the largest unit (`ns`, `us`, `ms`, `s`) that is
///   at most the value, with the rest as an exact decimal fraction: `1ns`, `1.5us`, `250ms`,
///   `1.000001ms`, `45.5s`;
/// * from one minute up, days, hours, minutes and seconds (`d`, `h`, `m`, `s`) from largest to
///   smallest, leaving out zero components, with anything below a second as a fraction of the
///   seconds: `1m30s`, `1h30m`, `2d`, `1h0.5s`.
///
/// Every such string parses back to the same value with [`FromStr`], which also accepts looser
/// input: `"1h 30m"`, `"100µs"`, `"0.25h"`, a bare `"0"`. Units must go from largest to
/// smallest, each at most once. Serde reads and writes only strings; a bare number, even `0`,
/// is rejected because it has no unit.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SimDuration(u64);

impl SimTime {
    /// The instant the simulation starts.
    pub const ZERO: SimTime = SimTime(0);
    /// The last representable instant, about 584 years after the start.
    pub const MAX: SimTime = SimTime(u64::MAX);

    /// The instant `nanos` nanoseconds after the start.
    pub const fn from_nanos(nanos: u64) -> SimTime {
        SimTime(nanos)
    }

    /// Nanoseconds since the start.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Seconds since the start, for reporting. Exact up to 2^53 ns (about 104 days).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / NANOS_PER_SEC as f64
    }

    /// `self + d`, or [`TimeError::Overflow`] past [`SimTime::MAX`].
    pub fn checked_add(self, d: SimDuration) -> Result<SimTime, TimeError> {
        self.0
            .checked_add(d.0)
            .map(SimTime)
            .ok_or(TimeError::Overflow {
                what: "SimTime + SimDuration",
            })
    }

    /// `self + d`, stopping at [`SimTime::MAX`]: useful for "never" deadlines.
    pub const fn saturating_add(self, d: SimDuration) -> SimTime {
        SimTime(self.0.saturating_add(d.0))
    }

    /// `self - d`, or [`TimeError::Negative`] if that would be before the start.
    pub fn checked_sub(self, d: SimDuration) -> Result<SimTime, TimeError> {
        self.0
            .checked_sub(d.0)
            .map(SimTime)
            .ok_or(TimeError::Negative)
    }

    /// The time elapsed from `earlier` to `self`, or [`TimeError::Negative`] if `earlier` is
    /// actually later.
    pub fn checked_duration_since(self, earlier: SimTime) -> Result<SimDuration, TimeError> {
        self.0
            .checked_sub(earlier.0)
            .map(SimDuration)
            .ok_or(TimeError::Negative)
    }

    /// The time elapsed from `earlier` to `self`, or zero if `earlier` is later.
    pub const fn saturating_duration_since(self, earlier: SimTime) -> SimDuration {
        SimDuration(self.0.saturating_sub(earlier.0))
    }
}

/// Multiplies `value` by `factor` in a const context, panicking with `msg` on overflow (the
/// panic becomes a compile error when the caller is itself const-evaluated).
const fn scale_or_panic(value: u64, factor: u64, msg: &'static str) -> SimDuration {
    match value.checked_mul(factor) {
        Some(nanos) => SimDuration(nanos),
        None => panic!("{}", msg),
    }
}

impl SimDuration {
    /// No time at all.
    pub const ZERO: SimDuration = SimDuration(0);
    /// The longest representable duration, about 584 years.
    pub const MAX: SimDuration = SimDuration(u64::MAX);

    /// `nanos` nanoseconds.
    pub const fn from_nanos(nanos: u64) -> SimDuration {
        SimDuration(nanos)
    }

    /// `micros` microseconds.
    ///
    /// # Panics
    /// If the result exceeds [`SimDuration::MAX`]; in a `const` this is a compile error. These
    /// constructors are for literals in code; parse user input with [`FromStr`] instead.
    pub const fn from_micros(micros: u64) -> SimDuration {
        scale_or_panic(
            micros,
            NANOS_PER_MICRO,
            "SimDuration::from_micros overflowed u64 nanoseconds",
        )
    }

    /// `millis` milliseconds.
    ///
    /// # Panics
    /// If the result exceeds [`SimDuration::MAX`] (see [`SimDuration::from_micros`]).
    pub const fn from_millis(millis: u64) -> SimDuration {
        scale_or_panic(
            millis,
            NANOS_PER_MILLI,
            "SimDuration::from_millis overflowed u64 nanoseconds",
        )
    }

    /// `secs` seconds.
    ///
    /// # Panics
    /// If the result exceeds [`SimDuration::MAX`] (see [`SimDuration::from_micros`]).
    pub const fn from_secs(secs: u64) -> SimDuration {
        scale_or_panic(
            secs,
            NANOS_PER_SEC,
            "SimDuration::from_secs overflowed u64 nanoseconds",
        )
    }

    /// `mins` minutes.
    ///
    /// # Panics
    /// If the result exceeds [`SimDuration::MAX`] (see [`SimDuration::from_micros`]).
    pub const fn from_mins(mins: u64) -> SimDuration {
        scale_or_panic(
            mins,
            NANOS_PER_MIN,
            "SimDuration::from_mins overflowed u64 nanoseconds",
        )
    }

    /// `hours` hours.
    ///
    /// # Panics
    /// If the result exceeds [`SimDuration::MAX`] (see [`SimDuration::from_micros`]).
    pub const fn from_hours(hours: u64) -> SimDuration {
        scale_or_panic(
            hours,
            NANOS_PER_HOUR,
            "SimDuration::from_hours overflowed u64 nanoseconds",
        )
    }

    /// `secs` seconds, rounded to the nearest nanosecond (ties away from zero).
    ///
    /// Errors: [`TimeError::NotFinite`] for NaN or ±infinity, [`TimeError::Negative`] for a
    /// negative value that does not round to zero, [`TimeError::Overflow`] above
    /// [`SimDuration::MAX`].
    pub fn from_secs_f64(secs: f64) -> Result<SimDuration, TimeError> {
        nanos_from_f64(secs * NANOS_PER_SEC as f64, "SimDuration::from_secs_f64")
    }

    /// The length in nanoseconds.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// The length in seconds. Exact up to 2^53 ns (about 104 days).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / NANOS_PER_SEC as f64
    }

    /// The length in milliseconds. Exact up to 2^53 ns (about 104 days).
    pub fn as_millis_f64(self) -> f64 {
        self.0 as f64 / NANOS_PER_MILLI as f64
    }

    /// Whether this is [`SimDuration::ZERO`].
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// `self + rhs`, or [`TimeError::Overflow`].
    pub fn checked_add(self, rhs: SimDuration) -> Result<SimDuration, TimeError> {
        self.0
            .checked_add(rhs.0)
            .map(SimDuration)
            .ok_or(TimeError::Overflow {
                what: "SimDuration + SimDuration",
            })
    }

    /// `self - rhs`, or [`TimeError::Negative`] if `rhs` is longer.
    pub fn checked_sub(self, rhs: SimDuration) -> Result<SimDuration, TimeError> {
        self.0
            .checked_sub(rhs.0)
            .map(SimDuration)
            .ok_or(TimeError::Negative)
    }

    /// `self * rhs`, or [`TimeError::Overflow`].
    pub fn checked_mul(self, rhs: u64) -> Result<SimDuration, TimeError> {
        self.0
            .checked_mul(rhs)
            .map(SimDuration)
            .ok_or(TimeError::Overflow {
                what: "SimDuration * u64",
            })
    }

    /// `self + rhs`, stopping at [`SimDuration::MAX`].
    pub const fn saturating_add(self, rhs: SimDuration) -> SimDuration {
        SimDuration(self.0.saturating_add(rhs.0))
    }

    /// `self - rhs`, stopping at zero.
    pub const fn saturating_sub(self, rhs: SimDuration) -> SimDuration {
        SimDuration(self.0.saturating_sub(rhs.0))
    }

    /// `self * rhs`, stopping at [`SimDuration::MAX`].
    pub const fn saturating_mul(self, rhs: u64) -> SimDuration {
        SimDuration(self.0.saturating_mul(rhs))
    }

    /// `self * factor`, rounded to the nearest nanosecond, e.g. for backoff multipliers or
    /// jitter. The product is computed in `f64`, so it is exact only while it stays below
    /// 2^53 ns (about 104 days); it is deterministic on every platform either way.
    ///
    /// Errors as for [`SimDuration::from_secs_f64`]: a non-finite factor, a negative product or
    /// one above [`SimDuration::MAX`].
    pub fn mul_f64(self, factor: f64) -> Result<SimDuration, TimeError> {
        if !factor.is_finite() {
            return Err(TimeError::NotFinite);
        }
        nanos_from_f64(self.0 as f64 * factor, "SimDuration::mul_f64")
    }
}

/// Rounds a nanosecond count held in an `f64` to a [`SimDuration`], rejecting what cannot be
/// one. Rounding is `f64::round`, which is exact and therefore identical on every platform.
fn nanos_from_f64(nanos: f64, what: &'static str) -> Result<SimDuration, TimeError> {
    if !nanos.is_finite() {
        return Err(TimeError::NotFinite);
    }
    let rounded = nanos.round();
    // `-0.4` rounds to `-0.0`, which is a legitimate zero; only a strictly negative result is
    // an error.
    if rounded < 0.0 {
        return Err(TimeError::Negative);
    }
    if rounded >= TWO_POW_64 {
        return Err(TimeError::Overflow { what });
    }
    // In range and integral, so the cast is exact.
    Ok(SimDuration(rounded as u64))
}

impl Add<SimDuration> for SimTime {
    type Output = SimTime;

    /// # Panics
    /// On overflow past [`SimTime::MAX`]; use [`SimTime::checked_add`] or
    /// [`SimTime::saturating_add`] where that can happen.
    fn add(self, rhs: SimDuration) -> SimTime {
        match self.0.checked_add(rhs.0) {
            Some(nanos) => SimTime(nanos),
            None => panic!(
                "SimTime overflow: {self} + {rhs} is past SimTime::MAX; \
                 use checked_add or saturating_add"
            ),
        }
    }
}

impl AddAssign<SimDuration> for SimTime {
    /// # Panics
    /// As [`SimTime`]` + `[`SimDuration`].
    fn add_assign(&mut self, rhs: SimDuration) {
        *self = *self + rhs;
    }
}

impl Sub<SimDuration> for SimTime {
    type Output = SimTime;

    /// # Panics
    /// If the result would be before the start; use [`SimTime::checked_sub`] where that can
    /// happen.
    fn sub(self, rhs: SimDuration) -> SimTime {
        match self.0.checked_sub(rhs.0) {
            Some(nanos) => SimTime(nanos),
            None => panic!(
                "SimTime underflow: {self} - {rhs} is before the start of the simulation; \
                 use checked_sub"
            ),
        }
    }
}

impl SubAssign<SimDuration> for SimTime {
    /// # Panics
    /// As [`SimTime`]` - `[`SimDuration`].
    fn sub_assign(&mut self, rhs: SimDuration) {
        *self = *self - rhs;
    }
}

impl Sub<SimTime> for SimTime {
    type Output = SimDuration;

    /// # Panics
    /// If `rhs` is later than `self`; use [`SimTime::checked_duration_since`] or
    /// [`SimTime::saturating_duration_since`] when the order is not certain.
    fn sub(self, rhs: SimTime) -> SimDuration {
        match self.0.checked_sub(rhs.0) {
            Some(nanos) => SimDuration(nanos),
            None => panic!(
                "SimTime underflow: {self} - {rhs} is negative because the second time is \
                 later; use checked_duration_since or saturating_duration_since"
            ),
        }
    }
}

impl Add for SimDuration {
    type Output = SimDuration;

    /// # Panics
    /// On overflow; use [`SimDuration::checked_add`] or [`SimDuration::saturating_add`].
    fn add(self, rhs: SimDuration) -> SimDuration {
        match self.0.checked_add(rhs.0) {
            Some(nanos) => SimDuration(nanos),
            None => panic!(
                "SimDuration overflow: {self} + {rhs} exceeds SimDuration::MAX; \
                 use checked_add or saturating_add"
            ),
        }
    }
}

impl AddAssign for SimDuration {
    /// # Panics
    /// As [`SimDuration`]` + `[`SimDuration`].
    fn add_assign(&mut self, rhs: SimDuration) {
        *self = *self + rhs;
    }
}

impl Sub for SimDuration {
    type Output = SimDuration;

    /// # Panics
    /// If `rhs` is longer than `self`; use [`SimDuration::checked_sub`] or
    /// [`SimDuration::saturating_sub`].
    fn sub(self, rhs: SimDuration) -> SimDuration {
        match self.0.checked_sub(rhs.0) {
            Some(nanos) => SimDuration(nanos),
            None => panic!(
                "SimDuration underflow: {self} - {rhs} is negative; \
                 use checked_sub or saturating_sub"
            ),
        }
    }
}

impl SubAssign for SimDuration {
    /// # Panics
    /// As [`SimDuration`]` - `[`SimDuration`].
    fn sub_assign(&mut self, rhs: SimDuration) {
        *self = *self - rhs;
    }
}

impl Mul<u64> for SimDuration {
    type Output = SimDuration;

    /// # Panics
    /// On overflow; use [`SimDuration::checked_mul`] or [`SimDuration::saturating_mul`].
    fn mul(self, rhs: u64) -> SimDuration {
        match self.0.checked_mul(rhs) {
            Some(nanos) => SimDuration(nanos),
            None => panic!(
                "SimDuration overflow: {self} * {rhs} exceeds SimDuration::MAX; \
                 use checked_mul or saturating_mul"
            ),
        }
    }
}

impl MulAssign<u64> for SimDuration {
    /// # Panics
    /// As [`SimDuration`]` * u64`.
    fn mul_assign(&mut self, rhs: u64) {
        *self = *self * rhs;
    }
}

impl Sum for SimDuration {
    /// # Panics
    /// If the total overflows, like `std::time::Duration`'s `Sum`.
    fn sum<I: Iterator<Item = SimDuration>>(iter: I) -> SimDuration {
        iter.fold(SimDuration::ZERO, |acc, d| acc + d)
    }
}

impl<'a> Sum<&'a SimDuration> for SimDuration {
    /// # Panics
    /// If the total overflows.
    fn sum<I: Iterator<Item = &'a SimDuration>>(iter: I) -> SimDuration {
        iter.copied().sum()
    }
}

// ---------------------------------------------------------------------------------------------
// Display
// ---------------------------------------------------------------------------------------------

/// Writes `nanos / unit` with the remainder as a decimal fraction, trailing zeros removed, so
/// the text is exact and as short as possible. `digits` is `log10(unit)`.
fn write_decimal(out: &mut String, nanos: u64, unit: u64, digits: usize) {
    use std::fmt::Write as _;
    let whole = nanos / unit;
    let frac = nanos % unit;
    // Writing into a String cannot fail.
    let _ = write!(out, "{whole}");
    if frac != 0 {
        let padded = format!("{frac:0digits$}");
        out.push('.');
        out.push_str(padded.trim_end_matches('0'));
    }
}

/// The canonical text of a nanosecond count; the rule is documented on [`SimDuration`].
fn format_nanos(nanos: u64) -> String {
    let mut out = String::new();
    if nanos == 0 {
        out.push_str("0s");
    } else if nanos < NANOS_PER_MICRO {
        write_decimal(&mut out, nanos, 1, 0);
        out.push_str("ns");
    } else if nanos < NANOS_PER_MILLI {
        write_decimal(&mut out, nanos, NANOS_PER_MICRO, 3);
        out.push_str("us");
    } else if nanos < NANOS_PER_SEC {
        write_decimal(&mut out, nanos, NANOS_PER_MILLI, 6);
        out.push_str("ms");
    } else if nanos < NANOS_PER_MIN {
        write_decimal(&mut out, nanos, NANOS_PER_SEC, 9);
        out.push('s');
    } else {
        let mut rest = nanos;
        for (unit, suffix) in [
            (NANOS_PER_DAY, "d"),
            (NANOS_PER_HOUR, "h"),
            (NANOS_PER_MIN, "m"),
        ] {
            let count = rest / unit;
            rest %= unit;
            if count != 0 {
                out.push_str(&count.to_string());
                out.push_str(suffix);
            }
        }
        if rest != 0 {
            write_decimal(&mut out, rest, NANOS_PER_SEC, 9);
            out.push('s');
        }
    }
    out
}

impl fmt::Display for SimDuration {
    /// The canonical form described on [`SimDuration`]; honours width and alignment.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&format_nanos(self.0))
    }
}

impl fmt::Debug for SimDuration {
    // Same as Display so that assertion failures read "250ms", not "SimDuration(250000000)".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for SimTime {
    /// The offset from the start, in the same form as [`SimDuration`]'s `Display`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&format_nanos(self.0))
    }
}

impl fmt::Debug for SimTime {
    // Same as Display, for readable assertion failures.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

/// Nanoseconds per unit, and the unit's rank (larger units have larger ranks) so the parser can
/// insist that components go from largest to smallest.
fn unit_info(unit: &str) -> Option<(u64, u8)> {
    Some(match unit {
        "ns" => (1, 0),
        "us" | "µs" | "μs" => (NANOS_PER_MICRO, 1),
        "ms" => (NANOS_PER_MILLI, 2),
        "s" => (NANOS_PER_SEC, 3),
        "m" => (NANOS_PER_MIN, 4),
        "h" => (NANOS_PER_HOUR, 5),
        "d" => (NANOS_PER_DAY, 6),
        _ => return None,
    })
}

/// The length in bytes of the leading run of `s` whose chars satisfy `pred`.
fn prefix_len(s: &str, pred: impl Fn(char) -> bool) -> usize {
    s.char_indices()
        .find(|&(_, c)| !pred(c))
        .map_or(s.len(), |(i, _)| i)
}

/// Parses a string of ASCII digits into a `u128`; `None` on overflow.
fn parse_digits(digits: &str) -> Option<u128> {
    digits.bytes().try_fold(0u128, |acc, b| {
        acc.checked_mul(10)?.checked_add(u128::from(b - b'0'))
    })
}

/// The exact nanosecond value of one component `whole[.frac]` in a unit of `unit_ns`, or a
/// reason it is not representable.
fn component_nanos(whole: &str, frac: &str, unit_ns: u64, text: &str) -> Result<u128, String> {
    let too_large = || {
        format!(
            "'{text}' is larger than the largest duration, {}",
            SimDuration::MAX
        )
    };
    let whole = parse_digits(whole).ok_or_else(too_large)?;
    let mut nanos = whole
        .checked_mul(u128::from(unit_ns))
        .ok_or_else(too_large)?;
    // Trailing zeros add nothing and would only make 10^k overflow for inputs like
    // "1.000000000000000000000000000000000000000s".
    let frac = frac.trim_end_matches('0');
    if !frac.is_empty() {
        let too_fine = || format!("'{text}' is finer than 1ns, the resolution of simulated time");
        // 10^k divides frac * unit_ns only if both 2^k and 5^k do. The last digit of frac is
        // non-zero, so frac lacks a factor of 2 or of 5, and all k of that prime must come from
        // unit_ns: a day (2^16 * 3^3 * 5^11 ns) allows at most k = 16. Anything longer is
        // certainly too fine, and the bound keeps 10^k and the product inside u128.
        if frac.len() > 18 {
            return Err(too_fine());
        }
        let digits = parse_digits(frac).ok_or_else(too_fine)?;
        let scale = 10u128.pow(frac.len() as u32);
        let scaled = digits * u128::from(unit_ns);
        if scaled % scale != 0 {
            return Err(too_fine());
        }
        nanos += scaled / scale;
    }
    Ok(nanos)
}

/// Parses the human duration forms into nanoseconds; the error is the user-facing reason.
///
/// Grammar: one or more components `DIGITS[.DIGITS] UNIT`, optionally separated by whitespace
/// (also allowed between a number and its unit), with units from largest to smallest and each
/// used at most once; or a bare `0`. Leading and trailing whitespace is ignored.
fn parse_nanos(input: &str) -> Result<u64, String> {
    let s = input.trim();
    if s.is_empty() {
        return Err(
            "empty string; write a duration such as 250ms, 45s or 1h30m (units: ns, us, ms, s, \
             m, h, d)"
                .to_string(),
        );
    }
    if s == "0" {
        return Ok(0);
    }
    let mut rest = s;
    let mut total: u128 = 0;
    // The rank and spelling of the previous unit, to enforce largest-to-smallest order.
    let mut previous: Option<(u8, &str)> = None;
    while !rest.is_empty() {
        let component_start = rest;
        if rest.starts_with('-') {
            return Err("durations cannot be negative".to_string());
        }
        let whole_len = prefix_len(rest, |c| c.is_ascii_digit());
        if whole_len == 0 {
            return Err(format!(
                "expected a number at '{rest}'; write a duration such as 250ms, 45s or 1h30m"
            ));
        }
        let whole = &rest[..whole_len];
        rest = &rest[whole_len..];
        let mut frac = "";
        if let Some(after_dot) = rest.strip_prefix('.') {
            let frac_len = prefix_len(after_dot, |c| c.is_ascii_digit());
            if frac_len == 0 {
                return Err(format!(
                    "expected digits after the decimal point in '{whole}.'"
                ));
            }
            frac = &after_dot[..frac_len];
            rest = &after_dot[frac_len..];
        }
        let number = &component_start[..component_start.len() - rest.len()];
        rest = rest.trim_start();
        let unit_len = prefix_len(rest, char::is_alphabetic);
        if unit_len == 0 {
            return Err(match rest.chars().next() {
                None => {
                    format!("missing unit: write {number}ms, {number}s or another of {UNIT_LIST}")
                }
                Some(c) => {
                    format!("unexpected '{c}' after '{number}'; expected a unit ({UNIT_LIST})")
                }
            });
        }
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let Some((unit_ns, rank)) = unit_info(unit) else {
            return Err(format!(
                "unknown unit '{unit}'; expected one of {UNIT_LIST}"
            ));
        };
        if let Some((previous_rank, previous_unit)) = previous
            && rank >= previous_rank
        {
            return Err(format!(
                "units must go from largest to smallest, each at most once, but '{unit}' \
                 follows '{previous_unit}'"
            ));
        }
        previous = Some((rank, unit));
        let text = format!("{number}{unit}");
        total += component_nanos(whole, frac, unit_ns, &text)?;
        if total > u128::from(u64::MAX) {
            return Err(format!(
                "the total is larger than the largest duration, {}",
                SimDuration::MAX
            ));
        }
        rest = rest.trim_start();
    }
    // The loop checks `total` against u64::MAX after every component.
    u64::try_from(total).map_err(|_| "the total is too large".to_string())
}

impl FromStr for SimDuration {
    type Err = TimeError;

    /// Parses `"250ms"`, `"1h30m"`, `"1h 30m"`, `"1.5s"`, `"100us"`, `"100µs"`, `"2d"`, `"0"`,
    /// ... exactly; see the module docs and the error reasons for the rules.
    fn from_str(s: &str) -> Result<SimDuration, TimeError> {
        parse_nanos(s)
            .map(SimDuration)
            .map_err(|reason| TimeError::Parse {
                input: s.to_string(),
                reason,
            })
    }
}

impl FromStr for SimTime {
    type Err = TimeError;

    /// Parses the same forms as [`SimDuration`], read as an offset from the start.
    fn from_str(s: &str) -> Result<SimTime, TimeError> {
        s.parse::<SimDuration>().map(|d| SimTime(d.0))
    }
}

// ---------------------------------------------------------------------------------------------
// serde: the Display string out, a FromStr string in. Integers are deliberately not accepted
// (not even 0): a bare number in a scenario file has no unit, which is exactly the ambiguity the
// string form exists to prevent.
// ---------------------------------------------------------------------------------------------

impl Serialize for SimDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl Serialize for SimTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Deserializes any `FromStr<Err = TimeError>` value from a string.
struct StrVisitor<T>(std::marker::PhantomData<T>);

impl<T: FromStr<Err = TimeError>> Visitor<'_> for StrVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration string such as \"250ms\", \"45s\" or \"1h30m\"")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        v.parse().map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for SimDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<SimDuration, D::Error> {
        deserializer.deserialize_str(StrVisitor(std::marker::PhantomData))
    }
}

impl<'de> Deserialize<'de> for SimTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<SimTime, D::Error> {
        deserializer.deserialize_str(StrVisitor(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(s: &str) -> SimDuration {
        match s.parse::<SimDuration>() {
            Ok(d) => d,
            Err(e) => panic!("{s:?} should parse: {e}"),
        }
    }

    /// The reason a string is rejected, panicking if it parses.
    fn reason(s: &str) -> String {
        match s.parse::<SimDuration>() {
            Ok(d) => panic!("{s:?} should not parse, got {d}"),
            Err(TimeError::Parse { input, reason }) => {
                assert_eq!(input, s, "the error keeps the original input");
                reason
            }
            Err(other) => panic!("{s:?}: expected a Parse error, got {other:?}"),
        }
    }

    #[test]
    fn parses_every_documented_form() {
        let cases: &[(&str, u64)] = &[
            ("250ms", 250 * NANOS_PER_MILLI),
            ("45s", 45 * NANOS_PER_SEC),
            ("5m", 5 * NANOS_PER_MIN),
            ("1h30m", 90 * NANOS_PER_MIN),
            ("1h 30m", 90 * NANOS_PER_MIN),
            ("  1h   30m  ", 90 * NANOS_PER_MIN),
            ("250 ms", 250 * NANOS_PER_MILLI),
            ("1.5s", 1_500 * NANOS_PER_MILLI),
            ("100us", 100 * NANOS_PER_MICRO),
            ("100µs", 100 * NANOS_PER_MICRO),
            ("10ns", 10),
            ("2d", 2 * NANOS_PER_DAY),
            ("0s", 0),
            ("0", 0),
            ("0.1s", 100_000_000),
            ("0.5ms", 500_000),
            ("1.25h", 75 * NANOS_PER_MIN),
            (
                "1.000000000000000000000000000000000000000000s",
                NANOS_PER_SEC,
            ),
            (
                "0000000000000000000000000000000000000000007ms",
                7 * NANOS_PER_MILLI,
            ),
            ("1d2h3m4s5ms6us7ns", {
                NANOS_PER_DAY
                    + 2 * NANOS_PER_HOUR
                    + 3 * NANOS_PER_MIN
                    + 4 * NANOS_PER_SEC
                    + 5 * NANOS_PER_MILLI
                    + 6 * NANOS_PER_MICRO
                    + 7
            }),
            ("213503d23h34m33.709551615s", u64::MAX),
        ];
        for &(text, nanos) in cases {
            assert_eq!(parse(text).as_nanos(), nanos, "parsing {text:?}");
        }
    }

    #[test]
    fn decimal_fractions_are_exact_not_floating_point() {
        // 0.1 and 0.3 have no exact binary representation; an f64 path would give
        // 100000000.00000001 or 299999999.99999994 and round unpredictably at larger scales.
        assert_eq!(parse("0.1s").as_nanos(), 100_000_000);
        assert_eq!(parse("0.3s").as_nanos(), 300_000_000);
        assert_eq!(parse("0.000000001s").as_nanos(), 1);
        assert_eq!(parse("0.000001ms").as_nanos(), 1);
        assert_eq!(parse("1.000000001d").as_nanos(), NANOS_PER_DAY + 86_400);
    }

    #[test]
    fn rejects_bad_input_with_precise_reasons() {
        assert!(reason("").starts_with("empty string"));
        assert!(reason("   ").starts_with("empty string"));
        assert_eq!(
            reason("250"),
            "missing unit: write 250ms, 250s or another of ns, us, ms, s, m, h, d"
        );
        assert_eq!(
            reason("1.5"),
            "missing unit: write 1.5ms, 1.5s or another of ns, us, ms, s, m, h, d"
        );
        assert!(reason("1h30").starts_with("missing unit: write 30ms"));
        assert!(reason("00").starts_with("missing unit"));
        assert_eq!(
            reason("5sec"),
            "unknown unit 'sec'; expected one of ns, us, ms, s, m, h, d"
        );
        assert_eq!(
            reason("5 weeks"),
            "unknown unit 'weeks'; expected one of ns, us, ms, s, m, h, d"
        );
        assert_eq!(reason("-5s"), "durations cannot be negative");
        assert_eq!(reason("1h -5m"), "durations cannot be negative");
        assert!(reason("0.5ns").contains("finer than 1ns"));
        assert!(reason("1.0000000001s").contains("finer than 1ns"));
        assert!(reason("0.0000000000000000000001s").contains("finer than 1ns"));
        assert!(reason("213503d23h34m33.709551616s").contains("larger than the largest"));
        assert!(reason("300000d").contains("larger than the largest"));
        assert!(reason("99999999999999999999999999999999999999999s").contains("larger"));
        assert!(reason("abc").starts_with("expected a number at 'abc'"));
        assert!(reason(".5s").starts_with("expected a number"));
        assert!(reason("1.s").contains("after the decimal point"));
        assert!(reason("5s!").starts_with("expected a number at '!'"));
        assert!(reason("5,5s").starts_with("unexpected ',' after '5'"));
        assert!(reason("+5s").starts_with("expected a number"));
        assert!(reason("30m1h").contains("'h' follows 'm'"));
        assert!(reason("1s1s").contains("'s' follows 's'"));
        assert!(reason("5ms 5s").contains("largest to smallest"));
    }

    #[test]
    fn parse_error_message_is_a_full_sentence() {
        let err = "5sec".parse::<SimDuration>().err();
        assert_eq!(
            err.map(|e| e.to_string()).as_deref(),
            Some(
                "invalid duration \"5sec\": unknown unit 'sec'; expected one of ns, us, ms, s, m, \
                 h, d"
            )
        );
    }

    #[test]
    fn display_uses_the_canonical_form() {
        let cases: &[(u64, &str)] = &[
            (0, "0s"),
            (1, "1ns"),
            (999, "999ns"),
            (1_000, "1us"),
            (1_500, "1.5us"),
            (250 * NANOS_PER_MILLI, "250ms"),
            (1_000_001, "1.000001ms"),
            (1_500 * NANOS_PER_MILLI, "1.5s"),
            (45 * NANOS_PER_SEC, "45s"),
            (59 * NANOS_PER_SEC + 1, "59.000000001s"),
            (60 * NANOS_PER_SEC, "1m"),
            (90 * NANOS_PER_SEC, "1m30s"),
            (5_400 * NANOS_PER_SEC, "1h30m"),
            (NANOS_PER_HOUR + NANOS_PER_SEC / 2, "1h0.5s"),
            (2 * NANOS_PER_DAY, "2d"),
            (u64::MAX, "213503d23h34m33.709551615s"),
        ];
        for &(nanos, text) in cases {
            let d = SimDuration::from_nanos(nanos);
            assert_eq!(d.to_string(), text);
            assert_eq!(format!("{d:?}"), text, "Debug matches Display");
            assert_eq!(SimTime::from_nanos(nanos).to_string(), text);
        }
        assert_eq!(format!("{:>8}|", SimDuration::from_millis(5)), "     5ms|");
    }

    proptest! {
        // Cheap cases, so sample the u64 space more densely than the default 256.
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn display_round_trips_for_every_u64(nanos in any::<u64>()) {
            let d = SimDuration::from_nanos(nanos);
            prop_assert_eq!(d.to_string().parse::<SimDuration>(), Ok(d));
            let t = SimTime::from_nanos(nanos);
            prop_assert_eq!(t.to_string().parse::<SimTime>(), Ok(t));
        }

        #[test]
        fn display_round_trips_for_round_values(
            // Round values exercise the omitted-zero-component paths that uniform u64s rarely
            // hit.
            count in 0u64..100_000,
            unit in prop::sample::select(vec![
                1, NANOS_PER_MICRO, NANOS_PER_MILLI, NANOS_PER_SEC, NANOS_PER_MIN,
                NANOS_PER_HOUR, NANOS_PER_DAY,
            ]),
            extra in 0u64..3,
        ) {
            let d = SimDuration::from_nanos(count * unit + extra);
            prop_assert_eq!(d.to_string().parse::<SimDuration>(), Ok(d));
        }

        #[test]
        fn components_with_spaces_sum(h in 0u64..1000, m in 0u64..60, ms in 0u64..1000) {
            let text = format!("{h}h {m}m {ms}ms");
            let expected = h * NANOS_PER_HOUR + m * NANOS_PER_MIN + ms * NANOS_PER_MILLI;
            prop_assert_eq!(text.parse::<SimDuration>().map(|d| d.as_nanos()), Ok(expected));
        }
    }

    #[test]
    fn const_constructors_scale_exactly() {
        const TIMEOUT: SimDuration = SimDuration::from_millis(250);
        assert_eq!(TIMEOUT.as_nanos(), 250_000_000);
        assert_eq!(SimDuration::from_micros(3).as_nanos(), 3_000);
        assert_eq!(SimDuration::from_secs(2).as_nanos(), 2 * NANOS_PER_SEC);
        assert_eq!(SimDuration::from_mins(2).as_nanos(), 120 * NANOS_PER_SEC);
        assert_eq!(SimDuration::from_hours(2).as_nanos(), 7_200 * NANOS_PER_SEC);
        assert_eq!(SimDuration::from_nanos(7).as_nanos(), 7);
    }

    #[test]
    #[should_panic(expected = "SimDuration::from_hours overflowed")]
    fn const_constructor_panics_on_overflow() {
        let _ = SimDuration::from_hours(u64::MAX / 1000);
    }

    #[test]
    fn from_secs_f64_rounds_and_rejects() {
        assert_eq!(
            SimDuration::from_secs_f64(1.5),
            Ok(SimDuration::from_millis(1_500))
        );
        assert_eq!(SimDuration::from_secs_f64(0.0), Ok(SimDuration::ZERO));
        assert_eq!(SimDuration::from_secs_f64(-0.0), Ok(SimDuration::ZERO));
        assert_eq!(
            SimDuration::from_secs_f64(1.4e-9),
            Ok(SimDuration::from_nanos(1))
        );
        assert_eq!(
            SimDuration::from_secs_f64(1.6e-9),
            Ok(SimDuration::from_nanos(2))
        );
        assert_eq!(SimDuration::from_secs_f64(-1e-10), Ok(SimDuration::ZERO));
        assert_eq!(SimDuration::from_secs_f64(-1.0), Err(TimeError::Negative));
        assert_eq!(
            SimDuration::from_secs_f64(f64::NAN),
            Err(TimeError::NotFinite)
        );
        assert_eq!(
            SimDuration::from_secs_f64(f64::INFINITY),
            Err(TimeError::NotFinite)
        );
        assert_eq!(
            SimDuration::from_secs_f64(f64::NEG_INFINITY),
            Err(TimeError::NotFinite)
        );
        assert!(matches!(
            SimDuration::from_secs_f64(1.9e10),
            Err(TimeError::Overflow { .. })
        ));
        // 1.8e10 s is just below the ~1.8447e10 s limit.
        assert_eq!(
            SimDuration::from_secs_f64(1.8e10).map(|d| d.as_nanos()),
            Ok(18_000_000_000 * NANOS_PER_SEC)
        );
    }

    #[test]
    fn float_views() {
        assert_eq!(SimDuration::from_millis(1_500).as_secs_f64(), 1.5);
        assert_eq!(SimDuration::from_micros(2_500).as_millis_f64(), 2.5);
        assert_eq!(SimTime::from_nanos(250_000_000).as_secs_f64(), 0.25);
    }

    #[test]
    fn mul_f64_rounds_and_rejects() {
        let d = SimDuration::from_millis(100);
        assert_eq!(d.mul_f64(1.5), Ok(SimDuration::from_millis(150)));
        assert_eq!(d.mul_f64(0.0), Ok(SimDuration::ZERO));
        assert_eq!(
            SimDuration::from_nanos(3).mul_f64(0.5),
            Ok(SimDuration::from_nanos(2))
        );
        assert_eq!(d.mul_f64(-1.0), Err(TimeError::Negative));
        assert_eq!(SimDuration::ZERO.mul_f64(-1.0), Ok(SimDuration::ZERO));
        assert_eq!(d.mul_f64(f64::NAN), Err(TimeError::NotFinite));
        assert_eq!(
            SimDuration::ZERO.mul_f64(f64::INFINITY),
            Err(TimeError::NotFinite)
        );
        assert!(matches!(
            SimDuration::MAX.mul_f64(2.0),
            Err(TimeError::Overflow { .. })
        ));
    }

    #[test]
    fn duration_arithmetic() {
        let a = SimDuration::from_millis(300);
        let b = SimDuration::from_millis(200);
        assert_eq!(a + b, SimDuration::from_millis(500));
        assert_eq!(a - b, SimDuration::from_millis(100));
        assert_eq!(a * 3, SimDuration::from_millis(900));
        assert_eq!(a.checked_add(b), Ok(SimDuration::from_millis(500)));
        assert_eq!(b.checked_sub(a), Err(TimeError::Negative));
        assert_eq!(a.checked_mul(2), Ok(SimDuration::from_millis(600)));
        assert!(matches!(
            SimDuration::MAX.checked_add(SimDuration::from_nanos(1)),
            Err(TimeError::Overflow { .. })
        ));
        assert!(matches!(
            SimDuration::MAX.checked_mul(2),
            Err(TimeError::Overflow { .. })
        ));
        assert_eq!(SimDuration::MAX.saturating_add(a), SimDuration::MAX);
        assert_eq!(b.saturating_sub(a), SimDuration::ZERO);
        assert_eq!(a.saturating_mul(u64::MAX), SimDuration::MAX);
        assert!(SimDuration::ZERO.is_zero());
        assert!(!a.is_zero());
        let mut c = a;
        c += b;
        c -= SimDuration::from_millis(100);
        c *= 2;
        assert_eq!(c, SimDuration::from_millis(800));
        let total: SimDuration = [a, b, b].iter().sum();
        assert_eq!(total, SimDuration::from_millis(700));
        let total: SimDuration = vec![a, b].into_iter().sum();
        assert_eq!(total, SimDuration::from_millis(500));
    }

    #[test]
    fn time_arithmetic() {
        let t = SimTime::from_nanos(1_000);
        let d = SimDuration::from_nanos(400);
        assert_eq!(t + d, SimTime::from_nanos(1_400));
        assert_eq!(t - d, SimTime::from_nanos(600));
        assert_eq!(SimTime::from_nanos(1_400) - t, d);
        assert_eq!(t.checked_add(d), Ok(SimTime::from_nanos(1_400)));
        assert!(matches!(
            SimTime::MAX.checked_add(d),
            Err(TimeError::Overflow { .. })
        ));
        assert_eq!(SimTime::MAX.saturating_add(d), SimTime::MAX);
        assert_eq!(t.checked_sub(d), Ok(SimTime::from_nanos(600)));
        assert_eq!(SimTime::ZERO.checked_sub(d), Err(TimeError::Negative));
        assert_eq!(SimTime::from_nanos(1_400).checked_duration_since(t), Ok(d));
        assert_eq!(
            t.checked_duration_since(SimTime::MAX),
            Err(TimeError::Negative)
        );
        assert_eq!(t.saturating_duration_since(SimTime::MAX), SimDuration::ZERO);
        assert_eq!(
            SimTime::MAX.saturating_duration_since(SimTime::ZERO),
            SimDuration::MAX
        );
        let mut u = t;
        u += d;
        u -= SimDuration::from_nanos(100);
        assert_eq!(u.as_nanos(), 1_300);
        assert!(SimTime::ZERO < t && t < SimTime::MAX);
        assert_eq!(SimTime::default(), SimTime::ZERO);
        assert_eq!(
            "1h30m".parse::<SimTime>(),
            Ok(SimTime::from_nanos(90 * NANOS_PER_MIN))
        );
    }

    #[test]
    #[should_panic(expected = "SimTime overflow: 213503d23h34m33.709551615s + 1ns")]
    fn time_add_panics_on_overflow() {
        let _ = SimTime::MAX + SimDuration::from_nanos(1);
    }

    #[test]
    #[should_panic(expected = "SimTime underflow: 1s - 2s")]
    fn time_sub_panics_when_the_second_time_is_later() {
        let _ = SimTime::from_nanos(NANOS_PER_SEC) - SimTime::from_nanos(2 * NANOS_PER_SEC);
    }

    #[test]
    #[should_panic(expected = "SimDuration underflow: 1ns - 2ns")]
    fn duration_sub_panics_on_underflow() {
        let _ = SimDuration::from_nanos(1) - SimDuration::from_nanos(2);
    }

    #[test]
    #[should_panic(expected = "SimDuration overflow")]
    fn duration_mul_panics_on_overflow() {
        let _ = SimDuration::MAX * 2;
    }

    #[test]
    fn error_messages_are_actionable() {
        assert_eq!(
            TimeError::Overflow {
                what: "SimTime + SimDuration"
            }
            .to_string(),
            "SimTime + SimDuration overflowed: the result is beyond the largest representable \
             duration, 213503d23h34m33.709551615s (about 584 years)"
        );
        assert!(
            TimeError::Negative
                .to_string()
                .contains("cannot go below zero")
        );
        assert!(TimeError::NotFinite.to_string().contains("NaN or infinite"));
    }

    #[test]
    fn serde_uses_the_string_form_in_ron() {
        assert_eq!(
            ron::from_str::<SimDuration>("\"250ms\"").ok(),
            Some(SimDuration::from_millis(250))
        );
        assert_eq!(
            ron::to_string(&SimDuration::from_secs(90)).ok().as_deref(),
            Some("\"1m30s\"")
        );
        assert_eq!(
            ron::from_str::<SimTime>("\"1h 30m\"").ok(),
            Some(SimTime::from_nanos(90 * NANOS_PER_MIN))
        );
        let err = ron::from_str::<SimDuration>("\"5sec\"")
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref().is_some_and(|e| e.contains(
                "invalid duration \"5sec\": unknown unit 'sec'; expected one of ns, us, ms, s, \
                 m, h, d"
            )),
            "{err:?}"
        );
        // Bare numbers are rejected: they carry no unit.
        assert!(ron::from_str::<SimDuration>("0").is_err());
    }

    #[test]
    fn serde_uses_the_string_form_in_json() {
        let d = SimDuration::from_nanos(1_000_001);
        assert_eq!(
            serde_json::to_string(&d).ok().as_deref(),
            Some("\"1.000001ms\"")
        );
        assert_eq!(
            serde_json::from_str::<SimDuration>("\"1.000001ms\"").ok(),
            Some(d)
        );
        assert_eq!(
            serde_json::to_string(&SimTime::from_nanos(5))
                .ok()
                .as_deref(),
            Some("\"5ns\"")
        );
        let err = serde_json::from_str::<SimDuration>("\"-5s\"")
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref().is_some_and(
                |e| e.contains("invalid duration \"-5s\": durations cannot be negative")
            ),
            "{err:?}"
        );
        let err = serde_json::from_str::<SimDuration>("250")
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("a duration string")),
            "{err:?}"
        );
    }
}
