//! SVG line charts, sized for a slide (1000 × 500 px), in two kinds that share one frame (title,
//! legend, axes, grid) and one palette:
//!
//! - over virtual time ([`ChartSpec`], [`render_svg`]): one metric, one line per variant, with
//!   the fault windows shaded; the time axis reads in the simulator's own words ("1m30s", not
//!   "90.0");
//! - against a swept parameter ([`ParamChartSpec`], [`render_param_svg`]): one value per
//!   parameter setting and variant, a marker on every point (a sweep has few points, and a line
//!   alone hides where they are), and optionally a confidence interval per point as a shaded
//!   band or as error bars; the parameter's ticks carry its unit (`100 ms`, `20`, `50%`).
//!
//! A chart is a pure function of its spec: ticks, scales and colours are computed here rather
//! than left to defaults, so the same spec gives byte-identical SVG, and variant *i* has the
//! same colour in every chart.
//!
//! Text is measured with plotters' built-in estimate (no font files): the SVG names a generic
//! `sans-serif` and leaves the glyphs to the viewer, so layout keeps a safety margin around
//! every label instead of relying on exact widths.

use std::ops::Range;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use thiserror::Error;

use crate::engine::time::{SimDuration, SimTime};
use crate::metrics::Series;
use crate::report::unit::{Unit, fixed};

/// The size of every chart, in pixels: a 2:1 slide figure.
pub const WIDTH: u32 = 1000;
/// See [`WIDTH`].
pub const HEIGHT: u32 = 500;

/// The Okabe–Ito palette (distinguishable with every common colour-vision deficiency), in the
/// order variants get it. Yellow comes last: it is the hardest to see on white.
const PALETTE: [RGBColor; 8] = [
    RGBColor(0x00, 0x72, 0xB2), // blue
    RGBColor(0xD5, 0x5E, 0x00), // vermillion
    RGBColor(0x00, 0x9E, 0x73), // bluish green
    RGBColor(0xCC, 0x79, 0xA7), // reddish purple
    RGBColor(0xE6, 0x9F, 0x00), // orange
    RGBColor(0x56, 0xB4, 0xE9), // sky blue
    RGBColor(0x00, 0x00, 0x00), // black
    RGBColor(0xF0, 0xE4, 0x42), // yellow
];

/// The most lines a chart draws: one per palette colour, so no two variants ever share one.
pub const MAX_LINES: usize = PALETTE.len();

const FONT: &str = "sans-serif";
/// plotters writes `font-size` as the size it is given divided by 1.24 (a points-to-pixels
/// habit of its font code); sizes here are the pixels wanted, so they are multiplied back.
const PLOTTERS_FONT_SCALE: f64 = 1.24;
const TEXT: RGBColor = RGBColor(0x22, 0x22, 0x22);
const SUBTLE_TEXT: RGBColor = RGBColor(0x55, 0x55, 0x55);
const GRID: RGBColor = RGBColor(0xE3, 0xE3, 0xE3);
const AXIS: RGBColor = RGBColor(0x88, 0x88, 0x88);
const BAND: RGBColor = RGBColor(0x80, 0x80, 0x80);

const MARGIN: i32 = 24;
const TITLE_SIZE: f64 = 24.0;
const LEGEND_SIZE: f64 = 16.0;
const TICK_SIZE: f64 = 14.0;
const AXIS_TITLE_SIZE: f64 = 16.0;
const WINDOW_LABEL_SIZE: f64 = 13.0;
const LEGEND_TOP: i32 = 54;
const LEGEND_ROW: i32 = 24;
const LEGEND_SWATCH: i32 = 26;
const WINDOW_LABEL_ROW: i32 = 17;
/// A marker's half width in pixels: large enough to tell the shapes apart on a slide.
const MARKER_RADIUS: i32 = 5;
/// The white ring around every marker, so a marker on top of a line or another marker keeps
/// its outline.
const MARKER_HALO: i32 = 2;
/// Half the width of an error bar's caps.
const CAP_HALF: i32 = 5;
/// How far apart, in pixels, the variants at one parameter value are drawn. Sweeps often
/// give several variants the same value (every fix holds on every seed: 100%), and without
/// the offset the last variant's marker and error bar would hide the others'. On a numeric
/// axis the offset misplaces a point by a few pixels, so it stays small; a category's slot
/// has room to spare.
const DODGE: i32 = 8;
/// See [`DODGE`].
const DODGE_CATEGORIES: i32 = 18;
/// Opacity of an error bar: a little lighter than its line, so that where bars crowd the
/// lines and markers still lead the eye.
const ERROR_BAR_OPACITY: f64 = 0.75;
/// Opacity of a confidence band: light enough that three overlapping bands stay readable.
const CI_BAND_OPACITY: f64 = 0.18;
/// Space left of the first and right of the last parameter value, as a fraction of their
/// span, so the markers at the ends sit inside the plot.
const X_PADDING: f64 = 0.04;
/// Average glyph width as a fraction of the font size: DejaVu Sans, among the widest common
/// sans-serifs, averages about 0.51 on lower-case names; the margin makes an estimate err
/// towards more space rather than overlap.
const GLYPH_WIDTH: f64 = 0.56;
/// Headroom above the highest value, as a fraction of the value range, so the highest line
/// does not run into the fault-window labels along the top.
const HEADROOM: f64 = 0.1;
/// At most this many intervals between ticks on either axis: about 100 px apart at this size.
const MAX_TICK_INTERVALS: u64 = 8;

/// What to draw: one metric, one line per variant, and the fault windows.
#[derive(Clone, Debug, PartialEq)]
pub struct ChartSpec {
    pub title: String,
    /// What the y axis measures, without its unit ("p99 latency"); the unit is added from
    /// `unit` in the scale the axis ends up using ("p99 latency (ms)").
    pub y_label: String,
    pub unit: Unit,
    /// One line per variant, in variant order: the order picks the colours.
    pub series: Vec<ChartLine>,
    pub windows: Vec<FaultWindow>,
}

/// One variant's values of the metric. Points are drawn in the order given (time order);
/// NaN and infinite values are gaps that break the line.
#[derive(Clone, Debug, PartialEq)]
pub struct ChartLine {
    /// The variant's name, shown in the legend.
    pub label: String,
    pub points: Vec<(SimTime, f64)>,
}

impl ChartLine {
    /// A line from a sampled metric series.
    pub fn from_series(label: impl Into<String>, series: &Series) -> ChartLine {
        ChartLine {
            label: label.into(),
            points: series.points.clone(),
        }
    }
}

/// A span of virtual time during which a fault was active, shaded on the chart. A window with
/// `from == until` (an instant fault, such as a crash) is drawn as a thin line.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultWindow {
    pub from: SimTime,
    pub until: SimTime,
    pub label: String,
}

/// What to draw against a swept parameter: one value per parameter setting, one line per
/// variant, each point with a marker and, when given, its confidence interval.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamChartSpec {
    pub title: String,
    /// The parameter, as the user names it (`api.workers`): the x axis's title.
    pub x_label: String,
    pub x_scale: ParamScale,
    /// What the y axis measures, without its unit; as in [`ChartSpec::y_label`].
    pub y_label: String,
    pub unit: Unit,
    /// Values the y axis spans whatever the data, such as `Some((0.0, 1.0))` for a share of
    /// seeds: then every such chart reads on the same 0–100% scale, and 0% is not drawn as a
    /// flat line at the top of a tiny axis.
    pub y_span: Option<(f64, f64)>,
    /// One line per variant, in variant order: the order picks the colours and markers.
    pub series: Vec<ParamLine>,
    pub intervals: IntervalStyle,
    /// What the intervals are, for the legend (`95% Wilson interval, 20 seeds`); no legend
    /// entry when empty.
    pub interval_label: String,
}

/// Where parameter values sit on the x axis.
#[derive(Clone, Debug, PartialEq)]
pub enum ParamScale {
    /// A number in `unit` (a count, nanoseconds, a ratio...), on a linear axis whose ticks are
    /// written in that unit: `20`, `250 ms`, `50%`.
    Numeric(Unit),
    /// Values without an order or a distance (`RoundRobin`, `Random`): point `x` is an index
    /// into the list, evenly spaced and labelled with its name. Points are not joined by
    /// lines, since nothing lies between two categories, and intervals are error bars.
    Categories(Vec<String>),
}

/// How a point's confidence interval is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntervalStyle {
    /// A translucent band in the line's colour, joining the intervals of neighbouring points:
    /// reads as a trend, for a numeric parameter with several values.
    Band,
    /// A vertical bar with caps at each point.
    ErrorBars,
}

/// One variant's values against the parameter.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamLine {
    /// The variant's name, shown in the legend.
    pub label: String,
    /// In any order (they are drawn in x order); a NaN or infinite `y` is a gap in the line.
    pub points: Vec<ParamPoint>,
}

/// One value at one parameter setting.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ParamPoint {
    pub x: f64,
    pub y: f64,
    /// The confidence interval `(low, high)` around `y`, when there is one; an interval with a
    /// non-finite end is not drawn.
    pub interval: Option<(f64, f64)>,
}

/// Why a chart cannot be drawn. Each is a problem in the spec, except `Draw`.
#[derive(Clone, Debug, PartialEq, Error)]
#[non_exhaustive]
pub enum ChartError {
    #[error(
        "chart \"{title}\" has {count} lines, more than the {max} distinguishable colours; \
         split the variants over several charts"
    )]
    TooManyLines {
        title: String,
        count: usize,
        max: usize,
    },
    #[error("fault window \"{label}\" ends ({until}) before it starts ({from})")]
    WindowEndsBeforeStart {
        label: String,
        from: SimTime,
        until: SimTime,
    },
    #[error("chart \"{title}\": line \"{line}\" has a point at x = {x}, which is {why}")]
    ParamValue {
        title: String,
        line: String,
        x: f64,
        why: &'static str,
    },
    #[error(
        "chart \"{title}\": line \"{line}\" has an interval at x = {x} whose low end ({lo}) \
         is above its high end ({hi})"
    )]
    IntervalBackwards {
        title: String,
        line: String,
        x: f64,
        lo: f64,
        hi: f64,
    },
    #[error(
        "chart \"{title}\" cannot place values from {min:e} to {max:e} on one axis: the range \
         is too large for a 64-bit float"
    )]
    ValueRange { title: String, min: f64, max: f64 },
    /// plotters failed to draw into the in-memory SVG; a bug here rather than bad input.
    #[error("drawing chart \"{title}\" failed: {reason}")]
    Draw { title: String, reason: String },
}

/// Renders `spec` as an SVG document of [`WIDTH`] × [`HEIGHT`] pixels. A spec without any
/// finite value gives a chart with its axes, legend and windows and a "no data" note.
pub fn render_svg(spec: &ChartSpec) -> Result<String, ChartError> {
    if spec.series.len() > MAX_LINES {
        return Err(ChartError::TooManyLines {
            title: spec.title.clone(),
            count: spec.series.len(),
            max: MAX_LINES,
        });
    }
    if let Some(w) = spec.windows.iter().find(|w| w.until < w.from) {
        return Err(ChartError::WindowEndsBeforeStart {
            label: w.label.clone(),
            from: w.from,
            until: w.until,
        });
    }
    let x = TimeAxis::new(spec);
    let values = spec
        .series
        .iter()
        .flat_map(|line| line.points.iter().map(|&(_, v)| v));
    let y = ValueAxis::new(&spec.title, &spec.y_label, spec.unit, values, None)?;
    let frame = Frame {
        title: &spec.title,
        legend: spec
            .series
            .iter()
            .zip(PALETTE)
            .map(|(line, colour)| LegendEntry {
                label: &line.label,
                key: Key::Line {
                    colour,
                    marker: None,
                },
            })
            .collect(),
        x: x.ticked(),
        y: &y,
    };
    let mut svg = String::new();
    draw_frame(&mut svg, &frame, |root, chart| {
        draw_time_plot(root, chart, spec, &y)
    })
    .map_err(|reason| ChartError::Draw {
        title: spec.title.clone(),
        reason,
    })?;
    Ok(svg)
}

/// Renders `spec` as an SVG document of [`WIDTH`] × [`HEIGHT`] pixels, in the frame and
/// palette of [`render_svg`]. A spec without any finite value gives a chart with its axes and
/// legend and a "no data" note.
///
/// ```
/// use faultline::report::{IntervalStyle, ParamChartSpec, ParamLine, ParamPoint, ParamScale, Unit};
///
/// let ms = |v: f64| v * 1e6;
/// let svg = faultline::report::render_param_svg(&ParamChartSpec {
///     title: "p99 latency against the acquire timeout".to_owned(),
///     x_label: "api.pools.primary.acquire_timeout".to_owned(),
///     x_scale: ParamScale::Numeric(Unit::Nanos),
///     y_label: "p99 latency".to_owned(),
///     unit: Unit::Nanos,
///     y_span: None,
///     series: vec![ParamLine {
///         label: "baseline".to_owned(),
///         points: [(100.0, 180.0), (300.0, 420.0), (500.0, 650.0)]
///             .map(|(x, y)| ParamPoint {
///                 x: ms(x),
///                 y: ms(y),
///                 interval: Some((ms(y - 30.0), ms(y + 30.0))),
///             })
///             .to_vec(),
///     }],
///     intervals: IntervalStyle::Band,
///     interval_label: "95% t interval of the mean".to_owned(),
/// })?;
/// assert!(svg.contains(">\n300 ms\n</text>"));
/// assert!(svg.contains(">\np99 latency (ms)\n</text>"));
/// # Ok::<(), faultline::report::ChartError>(())
/// ```
pub fn render_param_svg(spec: &ParamChartSpec) -> Result<String, ChartError> {
    if spec.series.len() > MAX_LINES {
        return Err(ChartError::TooManyLines {
            title: spec.title.clone(),
            count: spec.series.len(),
            max: MAX_LINES,
        });
    }
    check_param_points(spec)?;
    let x = ParamAxis::new(spec)?;
    let values = spec.series.iter().flat_map(|line| {
        line.points.iter().flat_map(|p| {
            let (lo, hi) = p.interval.unwrap_or((f64::NAN, f64::NAN));
            [p.y, lo, hi]
        })
    });
    let y = ValueAxis::new(&spec.title, &spec.y_label, spec.unit, values, spec.y_span)?;
    let mut legend: Vec<LegendEntry<'_>> = spec
        .series
        .iter()
        .zip(PALETTE)
        .zip(MARKERS.iter().cycle())
        .map(|((line, colour), &marker)| LegendEntry {
            label: &line.label,
            key: if x.categorical {
                Key::Marker { colour, marker }
            } else {
                Key::Line {
                    colour,
                    marker: Some(marker),
                }
            },
        })
        .collect();
    let has_intervals = spec
        .series
        .iter()
        .flat_map(|line| &line.points)
        .any(|p| p.y.is_finite() && p.interval.is_some_and(finite_interval));
    if has_intervals && !spec.interval_label.is_empty() {
        legend.push(LegendEntry {
            label: &spec.interval_label,
            key: Key::Interval(x.interval_style(spec.intervals)),
        });
    }
    let frame = Frame {
        title: &spec.title,
        legend,
        x: x.axis.clone(),
        y: &y,
    };
    let mut svg = String::new();
    draw_frame(&mut svg, &frame, |root, chart| {
        draw_param_plot(root, chart, spec, &x, &y)
    })
    .map_err(|reason| ChartError::Draw {
        title: spec.title.clone(),
        reason,
    })?;
    Ok(svg)
}

/// Every point's `x` is a finite number (an index into the categories, for those) and every
/// interval runs from low to high.
fn check_param_points(spec: &ParamChartSpec) -> Result<(), ChartError> {
    for line in &spec.series {
        for p in &line.points {
            let why = match &spec.x_scale {
                _ if !p.x.is_finite() => Some("not a finite number"),
                ParamScale::Categories(names)
                    if p.x < 0.0 || p.x.fract() != 0.0 || p.x >= names.len() as f64 =>
                {
                    Some("not the index of one of the chart's categories")
                }
                _ => None,
            };
            if let Some(why) = why {
                return Err(ChartError::ParamValue {
                    title: spec.title.clone(),
                    line: line.label.clone(),
                    x: p.x,
                    why,
                });
            }
            if let Some((lo, hi)) = p.interval.filter(|&i| finite_interval(i))
                && lo > hi
            {
                return Err(ChartError::IntervalBackwards {
                    title: spec.title.clone(),
                    line: line.label.clone(),
                    x: p.x,
                    lo,
                    hi,
                });
            }
        }
    }
    Ok(())
}

fn finite_interval((lo, hi): (f64, f64)) -> bool {
    lo.is_finite() && hi.is_finite()
}

/// An axis as the frame draws it: a range, ticks with their labels, and a title.
#[derive(Clone, Debug)]
struct XAxis {
    lo: f64,
    hi: f64,
    ticks: Vec<(f64, String)>,
    title: String,
}

/// The x axis of a parameter chart, and whether it is a list of categories.
struct ParamAxis {
    axis: XAxis,
    categorical: bool,
}

impl ParamAxis {
    /// A numeric axis spans the values with a little padding and puts ticks at 1-2-5 steps
    /// in the unit's scale; a categorical one gives each category an equal slot.
    fn new(spec: &ParamChartSpec) -> Result<ParamAxis, ChartError> {
        let title = spec.x_label.clone();
        let unit = match &spec.x_scale {
            ParamScale::Categories(names) => {
                let slot_px = (WIDTH as i32 - 4 * MARGIN - 100) / names.len().max(1) as i32;
                let ticks = names
                    .iter()
                    .enumerate()
                    .map(|(i, name)| (i as f64, fit_text(name, slot_px - 8, TICK_SIZE)))
                    .collect();
                let axis = XAxis {
                    lo: -0.5,
                    hi: names.len().max(1) as f64 - 0.5,
                    ticks,
                    title,
                };
                return Ok(ParamAxis {
                    axis,
                    categorical: true,
                });
            }
            ParamScale::Numeric(unit) => *unit,
        };
        let xs = spec
            .series
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.x));
        let (mut min, mut max) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
            (lo.min(x), hi.max(x))
        });
        if min > max {
            // No points: a unit axis, so the frame still has something to draw.
            (min, max) = (0.0, 1.0);
        } else if min == max {
            // One value: centre it on an axis as wide as the value (or 1, around zero).
            let half = if min == 0.0 { 0.5 } else { min.abs() / 2.0 };
            (min, max) = (min - half, max + half);
        }
        let range_error = || ChartError::ValueRange {
            title: spec.title.clone(),
            min,
            max,
        };
        let pad = (max - min) * X_PADDING;
        let (lo, hi) = (min - pad, max + pad);
        if !(hi - lo).is_finite() {
            return Err(range_error());
        }
        let (divisor, suffix, gap) = tick_scale(unit, lo.abs().max(hi.abs()));
        let (step, decimals) = value_step((hi - lo) / divisor);
        let first = libm::ceil(lo / divisor / step);
        let last = libm::floor(hi / divisor / step);
        if !(first.is_finite()
            && last.is_finite()
            && last - first <= 2.0 * MAX_TICK_INTERVALS as f64)
        {
            return Err(range_error());
        }
        // Each tick is an integer times the step, so rounding never accumulates.
        // A step is at most a quarter of the span, so there are always ticks to place.
        let ticks = (0..=((last - first).max(0.0) as u64))
            .map(|k| (first + k as f64) * step)
            .map(|t| (t * divisor, format!("{}{gap}{suffix}", fixed(t, decimals))))
            .collect();
        Ok(ParamAxis {
            axis: XAxis {
                lo,
                hi,
                ticks,
                title,
            },
            categorical: false,
        })
    }

    /// Between categories there is nothing for a band to span.
    fn interval_style(&self, wanted: IntervalStyle) -> IntervalStyle {
        if self.categorical {
            IntervalStyle::ErrorBars
        } else {
            wanted
        }
    }
}

/// The scale of a parameter axis's tick labels: what to divide by, the suffix each label
/// carries (`ms`, `k`, `%`, `/s`), and the space before it (`100 ms` but `50%`).
fn tick_scale(unit: Unit, max_abs: f64) -> (f64, String, &'static str) {
    let (divisor, suffix) = unit.axis_scale(max_abs);
    // The axis title of a count says "thousands"; a tick says "k".
    let prefix = match divisor {
        d if d < 1e3 => "",
        d if d < 1e6 => "k",
        d if d < 1e9 => "M",
        d if d < 1e12 => "G",
        _ => "T",
    };
    match unit {
        Unit::Nanos => (divisor, suffix, " "),
        Unit::Ratio => (divisor, suffix, ""),
        Unit::Count => (divisor, prefix.to_owned(), ""),
        Unit::PerSecond => (divisor, format!("{prefix}/s"), ""),
    }
}

/// The time axis: its range in nanoseconds and its ticks at round durations.
struct TimeAxis {
    from_ns: u64,
    until_ns: u64,
    ticks_ns: Vec<u64>,
}

impl TimeAxis {
    /// Spans every point (gaps included: a run that sampled nothing for a minute still ran for
    /// that minute) and every window.
    fn new(spec: &ChartSpec) -> TimeAxis {
        let times = spec
            .series
            .iter()
            .flat_map(|line| line.points.iter().map(|&(t, _)| t.as_nanos()))
            .chain(
                spec.windows
                    .iter()
                    .flat_map(|w| [w.from.as_nanos(), w.until.as_nanos()]),
            );
        let (mut from_ns, mut until_ns) =
            times.fold((u64::MAX, 0), |(lo, hi), t| (lo.min(t), hi.max(t)));
        if from_ns > until_ns {
            // Nothing at all to place: show the first minute rather than an empty axis.
            (from_ns, until_ns) = (0, SimDuration::from_mins(1).as_nanos());
        }
        if from_ns == until_ns {
            // One instant: widen to a second centred on it so it has somewhere to sit.
            let second = SimDuration::from_secs(1).as_nanos();
            from_ns = from_ns.saturating_sub(second / 2);
            until_ns = from_ns.saturating_add(second);
            from_ns = until_ns - second;
        }
        let step = time_step(until_ns - from_ns);
        let first = from_ns.div_ceil(step).saturating_mul(step);
        let ticks_ns = (0..=MAX_TICK_INTERVALS)
            .filter_map(|k| first.checked_add(k.checked_mul(step)?))
            .take_while(|&t| t <= until_ns)
            .collect();
        TimeAxis {
            from_ns,
            until_ns,
            ticks_ns,
        }
    }
}

impl TimeAxis {
    /// The axis as the frame draws it, with durations as tick labels.
    fn ticked(&self) -> XAxis {
        XAxis {
            lo: self.from_ns as f64,
            hi: self.until_ns as f64,
            ticks: self
                .ticks_ns
                .iter()
                .map(|&t| (t as f64, SimDuration::from_nanos(t).to_string()))
                .collect(),
            title: "virtual time".to_owned(),
        }
    }
}

/// The smallest round duration that splits `span_ns` into at most [`MAX_TICK_INTERVALS`]
/// intervals: 1-2-5 steps below a second, then the steps a clock has (15 s, 30 s, 1 m, ...).
fn time_step(span_ns: u64) -> u64 {
    const SEC: u64 = 1_000_000_000;
    const CLOCK: [u64; 17] = [
        SEC,
        2 * SEC,
        5 * SEC,
        10 * SEC,
        15 * SEC,
        30 * SEC,
        60 * SEC,
        120 * SEC,
        300 * SEC,
        600 * SEC,
        900 * SEC,
        1_800 * SEC,
        3_600 * SEC,
        7_200 * SEC,
        3 * 3_600 * SEC,
        6 * 3_600 * SEC,
        12 * 3_600 * SEC,
    ];
    let sub_second = (0..9).flat_map(|e| [1, 2, 5].map(|m| m * 10u64.pow(e)));
    // Beyond a day: 1, 2, 5, 10, 20, 50... days, up to 50,000 (a u64 of nanoseconds holds
    // about 213,500 days, which 50,000-day steps split into five intervals).
    let days = (0..5).flat_map(|e| [1, 2, 5].map(|m| m * 10u64.pow(e) * 86_400 * SEC));
    sub_second
        .chain(CLOCK)
        .chain(days)
        .find(|&step| span_ns / step < MAX_TICK_INTERVALS)
        .unwrap_or(u64::MAX)
}

/// The value axis: the scale values are divided by, its range and ticks in scaled units, and
/// its title.
struct ValueAxis {
    divisor: f64,
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
    decimals: usize,
    title: String,
    has_data: bool,
}

impl ValueAxis {
    /// From 0 (or the lowest value, if negative) to the highest value plus headroom, both
    /// rounded out to a tick; non-finite values are left out. With `span`, the axis covers
    /// those two values too, data or not.
    fn new(
        chart_title: &str,
        label: &str,
        unit: Unit,
        values: impl Iterator<Item = f64>,
        span: Option<(f64, f64)>,
    ) -> Result<ValueAxis, ChartError> {
        let finite = values.filter(|v| v.is_finite());
        let (min, max) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        let has_data = min <= max;
        let (min, max) = if has_data {
            (min.min(0.0), max.max(0.0))
        } else {
            (0.0, 0.0)
        };
        let (min, max) = match span {
            Some((a, b)) => (min.min(a).min(b), max.max(a).max(b)),
            None => (min, max),
        };
        let (divisor, suffix) = unit.axis_scale(min.abs().max(max.abs()));
        let (mut lo, mut hi) = (min / divisor, max / divisor);
        let range_error = || ChartError::ValueRange {
            title: chart_title.to_owned(),
            min,
            max,
        };
        if !(hi - lo).is_finite() {
            return Err(range_error());
        }
        if hi == lo {
            // All zero (or nothing): a unit axis, so the flat line sits on the bottom edge.
            hi = lo + 1.0;
        } else if hi > 0.0 {
            hi += (hi - lo) * HEADROOM;
        }
        if lo < 0.0 && max <= 0.0 {
            lo -= (hi - lo) * HEADROOM;
        }
        if unit == Unit::Ratio && max <= 1.0 {
            // A share never exceeds everything: stop the axis at 100% rather than 120%.
            hi = hi.min(1.0 / divisor);
        }
        let (step, decimals) = value_step(hi - lo);
        let first = libm::floor(lo / step);
        let last = libm::ceil(hi / step);
        if !(first.is_finite()
            && last.is_finite()
            && last - first <= 2.0 * MAX_TICK_INTERVALS as f64)
        {
            return Err(range_error());
        }
        // Each tick is an integer times the step, so rounding never accumulates.
        let ticks: Vec<f64> = (0..=((last - first) as u64))
            .map(|k| (first + k as f64) * step)
            .collect();
        let title = if suffix.is_empty() {
            label.to_owned()
        } else {
            format!("{label} ({suffix})")
        };
        Ok(ValueAxis {
            divisor,
            lo: first * step,
            hi: last * step,
            ticks,
            decimals,
            title,
            has_data,
        })
    }

    fn tick_label(&self, value: f64) -> String {
        let magnitude = self.hi.abs().max(self.lo.abs());
        if magnitude >= 1e6 {
            // Only an axis beyond the largest named scale gets here (a runaway count).
            if value == 0.0 {
                return "0".to_owned();
            }
            let text = format!("{value:.2e}");
            return match text.split_once('e') {
                Some((mantissa, exponent)) => format!("{}e{exponent}", fixed_trim(mantissa)),
                None => text,
            };
        }
        fixed(value, self.decimals)
    }
}

/// A 1-2-5 step that splits `span` (positive) into at most [`MAX_TICK_INTERVALS`] intervals,
/// and the decimals its multiples need.
fn value_step(span: f64) -> (f64, usize) {
    let raw = span / MAX_TICK_INTERVALS as f64;
    let mut exponent = libm::floor(libm::log10(raw));
    let magnitude = libm::pow(10.0, exponent);
    // The tolerance keeps a span of exactly 8 steps from being pushed to the next factor by
    // rounding in log10 and pow.
    let factor = [1.0, 2.0, 5.0]
        .into_iter()
        .find(|&m| raw <= m * magnitude * (1.0 + 1e-9));
    let factor = factor.unwrap_or_else(|| {
        exponent += 1.0;
        1.0
    });
    let decimals = if exponent < 0.0 {
        (-exponent) as usize
    } else {
        0
    };
    (factor * libm::pow(10.0, exponent), decimals)
}

/// A decimal written by `format!`, trailing zeros and a bare point dropped.
fn fixed_trim(text: &str) -> &str {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    }
}

/// A linear axis with exactly the ticks and labels computed here: plotters' own key points
/// and `{:?}` labels know nothing of durations or units.
struct Ticked {
    inner: RangedCoordf64,
    ticks: Vec<(f64, String)>,
}

impl Ticked {
    fn new(range: Range<f64>, ticks: Vec<(f64, String)>) -> Ticked {
        Ticked {
            inner: range.into(),
            ticks,
        }
    }
}

impl Ranged for Ticked {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        // Light (minor) grid lines are asked for with a hint that allows them; none are wanted.
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.iter().map(|&(v, _)| v).collect()
        }
    }

    fn range(&self) -> Range<f64> {
        self.inner.range()
    }
}

impl ValueFormatter<f64> for Ticked {
    fn format(value: &f64) -> String {
        value.to_string()
    }

    fn format_ext(&self, value: &f64) -> String {
        // Plotters asks for labels of the very values `key_points` returned.
        self.ticks
            .iter()
            .find(|(v, _)| v == value)
            .map_or_else(|| value.to_string(), |(_, label)| label.clone())
    }
}

/// The chart's font at `size_px` pixels.
fn font(size_px: f64) -> FontDesc<'static> {
    (FONT, size_px * PLOTTERS_FONT_SCALE).into_font()
}

/// Estimated width in pixels of `text` at `size`; see [`GLYPH_WIDTH`].
fn text_width(text: &str, size: f64) -> i32 {
    (text.chars().count() as f64 * size * GLYPH_WIDTH).ceil() as i32
}

/// `text` cut with an ellipsis to fit `width_px` at `size` (bold text passes a larger size).
fn fit_text(text: &str, width_px: i32, size: f64) -> String {
    let fits = (f64::from(width_px) / (size * GLYPH_WIDTH)).floor() as usize;
    if text.chars().count() <= fits {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(fits.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Legend entries laid out left to right under the title, wrapping onto further rows: returns
/// each entry's top-left corner and the number of rows.
fn legend_layout(labels: &[&str]) -> (Vec<(i32, i32)>, i32) {
    let right = WIDTH as i32 - MARGIN;
    let mut spots = Vec::with_capacity(labels.len());
    let (mut x, mut row) = (MARGIN, 0);
    for label in labels {
        let width = LEGEND_SWATCH + 8 + text_width(label, LEGEND_SIZE);
        if x > MARGIN && x + width > right {
            x = MARGIN;
            row += 1;
        }
        spots.push((x, LEGEND_TOP + row * LEGEND_ROW));
        x += width + 24;
    }
    (spots, if labels.is_empty() { 0 } else { row + 1 })
}

/// The whole canvas, in pixels.
type Root<'b> = DrawingArea<SVGBackend<'b>, Shift>;
/// The plot inside the axes, in data coordinates (scaled values on the y axis).
type Plot<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<Ticked, Ticked>>;

fn err<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> String {
    e.to_string()
}

/// What every chart has around its data: a title, a legend, two axes.
struct Frame<'s> {
    title: &'s str,
    legend: Vec<LegendEntry<'s>>,
    x: XAxis,
    y: &'s ValueAxis,
}

struct LegendEntry<'s> {
    label: &'s str,
    key: Key,
}

/// What a legend entry shows left of its label.
#[derive(Clone, Copy)]
enum Key {
    /// A short stretch of a variant's line, with its marker when the chart has markers.
    Line {
        colour: RGBColor,
        marker: Option<Marker>,
    },
    /// A variant's marker alone, for a chart whose points are not joined.
    Marker { colour: RGBColor, marker: Marker },
    /// How intervals look, in grey: they take the colour of their line.
    Interval(IntervalStyle),
}

/// The shapes that tell variants apart where colour cannot (grey print, overlapping points),
/// in the order variants get them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Marker {
    Circle,
    Square,
    Triangle,
    Diamond,
}

const MARKERS: [Marker; 4] = [
    Marker::Circle,
    Marker::Square,
    Marker::Triangle,
    Marker::Diamond,
];

/// Draws the frame, then `plot` inside it, then the "no data" note if there is nothing.
fn draw_frame(
    svg: &mut String,
    frame: &Frame<'_>,
    plot: impl FnOnce(&Root<'_>, &mut Plot<'_, '_>) -> Result<(), String>,
) -> Result<(), String> {
    let root = SVGBackend::with_string(svg, (WIDTH, HEIGHT)).into_drawing_area();
    let y = frame.y;
    root.fill(&WHITE).map_err(err)?;

    let title_style = TextStyle::from(font(TITLE_SIZE).style(FontStyle::Bold))
        .color(&TEXT)
        .pos(Pos::new(HPos::Left, VPos::Top));
    let title = fit_text(frame.title, WIDTH as i32 - 2 * MARGIN, TITLE_SIZE * 1.1);
    root.draw(&Text::new(title, (MARGIN, 16), title_style))
        .map_err(err)?;

    let labels: Vec<&str> = frame.legend.iter().map(|e| e.label).collect();
    let (spots, rows) = legend_layout(&labels);
    let legend_style = TextStyle::from(font(LEGEND_SIZE))
        .color(&TEXT)
        .pos(Pos::new(HPos::Left, VPos::Center));
    for (entry, &(lx, ly)) in frame.legend.iter().zip(&spots) {
        let mid = ly + LEGEND_ROW / 2;
        draw_key(&root, entry.key, (lx, mid))?;
        root.draw(&Text::new(
            entry.label.to_owned(),
            (lx + LEGEND_SWATCH + 8, mid),
            legend_style.clone(),
        ))
        .map_err(err)?;
    }
    let header = LEGEND_TOP + rows.max(1) * LEGEND_ROW + 18;
    let (_, body) = root.split_vertically(header);

    let y_tick_chars = y
        .ticks
        .iter()
        .map(|&t| y.tick_label(t).chars().count())
        .max()
        .unwrap_or(1);
    let y_label_area = text_width(&"0".repeat(y_tick_chars), TICK_SIZE) + 52;
    let x_range = Ticked::new(frame.x.lo..frame.x.hi, frame.x.ticks.clone());
    let y_range = Ticked::new(
        y.lo..y.hi,
        y.ticks.iter().map(|&v| (v, y.tick_label(v))).collect(),
    );
    let mut chart = ChartBuilder::on(&body)
        .margin_left(MARGIN - 8)
        .margin_right(MARGIN + 12)
        .margin_bottom(12)
        .x_label_area_size(52)
        .y_label_area_size(y_label_area)
        .build_cartesian_2d(x_range, y_range)
        .map_err(err)?;

    chart
        .configure_mesh()
        .bold_line_style(GRID.stroke_width(1))
        .axis_style(AXIS.stroke_width(1))
        .label_style(font(TICK_SIZE).color(&SUBTLE_TEXT))
        .axis_desc_style(font(AXIS_TITLE_SIZE).color(&TEXT))
        .x_desc(frame.x.title.clone())
        .y_desc(y.title.clone())
        .draw()
        .map_err(err)?;

    if y.lo < 0.0 {
        // With negative values, zero is a reference line rather than the bottom edge.
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(frame.x.lo, 0.0), (frame.x.hi, 0.0)],
                AXIS.stroke_width(1),
            )))
            .map_err(err)?;
    }

    plot(&root, &mut chart)?;

    if !y.has_data {
        let (plot_x, plot_y) = chart.plotting_area().get_pixel_range();
        let centre = (
            (plot_x.start + plot_x.end) / 2,
            (plot_y.start + plot_y.end) / 2,
        );
        let style = TextStyle::from(font(LEGEND_SIZE))
            .color(&SUBTLE_TEXT)
            .pos(Pos::new(HPos::Center, VPos::Center));
        root.draw(&Text::new("no data".to_owned(), centre, style))
            .map_err(err)?;
    }
    root.present().map_err(err)?;
    Ok(())
}

/// A legend key whose left end is at `lx`, centred on `mid`.
fn draw_key(root: &Root<'_>, key: Key, (lx, mid): (i32, i32)) -> Result<(), String> {
    match key {
        Key::Line { colour, marker } => {
            root.draw(&PathElement::new(
                vec![(lx, mid), (lx + LEGEND_SWATCH, mid)],
                colour.stroke_width(3),
            ))
            .map_err(err)?;
            if let Some(shape) = marker {
                draw_marker(root, shape, colour, (lx + LEGEND_SWATCH / 2, mid))?;
            }
        }
        Key::Marker { colour, marker } => {
            draw_marker(root, marker, colour, (lx + LEGEND_SWATCH / 2, mid))?;
        }
        Key::Interval(IntervalStyle::Band) => {
            root.draw(&Rectangle::new(
                [(lx, mid - 7), (lx + LEGEND_SWATCH, mid + 7)],
                BAND.mix(CI_BAND_OPACITY * 2.0).filled(),
            ))
            .map_err(err)?;
        }
        Key::Interval(IntervalStyle::ErrorBars) => {
            draw_error_bar(root, BAND, lx + LEGEND_SWATCH / 2, (mid + 8, mid - 8))?;
        }
    }
    Ok(())
}

/// A filled marker centred on `at`, over a white halo.
fn draw_marker(
    root: &Root<'_>,
    shape: Marker,
    colour: RGBColor,
    at: (i32, i32),
) -> Result<(), String> {
    for (r, style) in [
        (MARKER_RADIUS + MARKER_HALO, WHITE.filled()),
        (MARKER_RADIUS, colour.filled()),
    ] {
        let (x, y) = at;
        // The polygons' corners are pushed out a little so each shape has about the area of
        // the circle: a square of the circle's width looks bigger, a triangle smaller.
        match shape {
            Marker::Circle => root.draw(&Circle::new(at, r, style)),
            Marker::Square => {
                let h = r * 9 / 10;
                root.draw(&Rectangle::new([(x - h, y - h), (x + h, y + h)], style))
            }
            Marker::Triangle => {
                let (w, up, down) = (r * 6 / 5, r * 7 / 5, r * 4 / 5);
                root.draw(&Polygon::new(
                    vec![(x, y - up), (x + w, y + down), (x - w, y + down)],
                    style,
                ))
            }
            Marker::Diamond => {
                let d = r * 13 / 10;
                root.draw(&Polygon::new(
                    vec![(x, y - d), (x + d, y), (x, y + d), (x - d, y)],
                    style,
                ))
            }
        }
        .map_err(err)?;
    }
    Ok(())
}

/// A vertical bar at `x` from pixel row `low` to `high` (`low` >= `high`: rows count down),
/// with caps.
fn draw_error_bar(
    root: &Root<'_>,
    colour: RGBColor,
    x: i32,
    (low, high): (i32, i32),
) -> Result<(), String> {
    let style = colour.mix(ERROR_BAR_OPACITY).stroke_width(2);
    root.draw(&PathElement::new(vec![(x, low), (x, high)], style))
        .map_err(err)?;
    for y in [low, high] {
        root.draw(&PathElement::new(
            vec![(x - CAP_HALF, y), (x + CAP_HALF, y)],
            style,
        ))
        .map_err(err)?;
    }
    Ok(())
}

/// The fault windows, shaded, and one line per variant over virtual time.
fn draw_time_plot(
    root: &Root<'_>,
    chart: &mut Plot<'_, '_>,
    spec: &ChartSpec,
    y: &ValueAxis,
) -> Result<(), String> {
    // Bands go under the lines, and are drawn in pixels so an instant fault is still visible.
    let (plot_x, plot_y) = chart.plotting_area().get_pixel_range();
    let to_px = |t: SimTime| chart.backend_coord(&(t.as_nanos() as f64, y.lo)).0;
    let mut label_rows_end: Vec<i32> = Vec::new();
    let label_style = TextStyle::from(font(WINDOW_LABEL_SIZE))
        .color(&SUBTLE_TEXT)
        .pos(Pos::new(HPos::Left, VPos::Top));
    let mut window_labels = Vec::with_capacity(spec.windows.len());
    for window in &spec.windows {
        let (mut left, mut right) = (to_px(window.from), to_px(window.until));
        if right - left < 2 {
            left -= 1;
            right = left + 2;
        }
        root.draw(&Rectangle::new(
            [(left, plot_y.start), (right, plot_y.end)],
            BAND.mix(0.16).filled(),
        ))
        .map_err(err)?;
        // A label goes on the first row along the top where it clears the labels before it.
        let width = text_width(&window.label, WINDOW_LABEL_SIZE);
        let lx = (left + 4).min(plot_x.end - width - 2).max(plot_x.start + 2);
        let row = label_rows_end
            .iter()
            .position(|&end| lx >= end + 8)
            .unwrap_or(label_rows_end.len());
        if row == label_rows_end.len() {
            label_rows_end.push(lx + width);
        } else {
            label_rows_end[row] = lx + width;
        }
        window_labels.push((
            window.label.clone(),
            (lx, plot_y.start + 4 + row as i32 * WINDOW_LABEL_ROW),
        ));
    }

    for (line, colour) in spec.series.iter().zip(PALETTE.iter()) {
        for run in finite_runs(&line.points, y.divisor) {
            if let [point] = run.as_slice() {
                chart
                    .draw_series(std::iter::once(Circle::new(*point, 4, colour.filled())))
                    .map_err(err)?;
            } else {
                chart
                    .draw_series(LineSeries::new(run, colour.stroke_width(2)))
                    .map_err(err)?;
            }
        }
    }

    for (label, at) in window_labels {
        root.draw(&Text::new(label, at, label_style.clone()))
            .map_err(err)?;
    }
    Ok(())
}

/// A parameter chart's point in pixels: where its marker goes and, if it has one, the rows
/// its interval spans.
#[derive(Clone, Copy, Debug, PartialEq)]
struct PixelPoint {
    x: i32,
    y: i32,
    interval: Option<(i32, i32)>,
}

/// Per variant: bands under everything, then lines, error bars, and markers on top, each
/// layer for every variant before the next, so no variant's band or line covers another's
/// markers. Drawn in pixels, each variant shifted sideways by its [`DODGE`].
fn draw_param_plot(
    root: &Root<'_>,
    chart: &mut Plot<'_, '_>,
    spec: &ParamChartSpec,
    x: &ParamAxis,
    y: &ValueAxis,
) -> Result<(), String> {
    let count = spec.series.len() as i32;
    let step = if x.categorical {
        DODGE_CATEGORIES
    } else {
        DODGE
    };
    let lines: Vec<Vec<Vec<PixelPoint>>> = spec
        .series
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let dodge = (2 * i as i32 + 1 - count) * step / 2;
            let px = |value: f64, v: f64| {
                let (px, py) = chart.backend_coord(&(value, v / y.divisor));
                (px + dodge, py)
            };
            finite_param_runs(&line.points)
                .into_iter()
                .map(|run| {
                    run.into_iter()
                        .map(|p| {
                            let (px_x, px_y) = px(p.x, p.y);
                            let interval = p
                                .interval
                                .filter(|&i| finite_interval(i))
                                .map(|(lo, hi)| (px(p.x, lo).1, px(p.x, hi).1));
                            PixelPoint {
                                x: px_x,
                                y: px_y,
                                interval,
                            }
                        })
                        .collect()
                })
                .collect()
        })
        .collect();
    let style = x.interval_style(spec.intervals);
    let colours = || lines.iter().zip(PALETTE);

    let mut bars: Vec<(RGBColor, PixelPoint)> = Vec::new();
    for (runs, colour) in colours() {
        for run in runs {
            for stretch in with_intervals(run) {
                match (style, stretch) {
                    (IntervalStyle::Band, [_, _, ..]) => {
                        let upper = stretch.iter().filter_map(|p| Some((p.x, p.interval?.1)));
                        let lower = stretch
                            .iter()
                            .rev()
                            .filter_map(|p| Some((p.x, p.interval?.0)));
                        root.draw(&Polygon::new(
                            upper.chain(lower).collect::<Vec<_>>(),
                            colour.mix(CI_BAND_OPACITY).filled(),
                        ))
                        .map_err(err)?;
                    }
                    // A band needs two points; one alone gets a bar.
                    _ => bars.extend(stretch.iter().map(|&p| (colour, p))),
                }
            }
        }
    }
    if !x.categorical {
        for (runs, colour) in colours() {
            for run in runs.iter().filter(|run| run.len() > 1) {
                root.draw(&PathElement::new(
                    run.iter().map(|p| (p.x, p.y)).collect::<Vec<_>>(),
                    colour.stroke_width(2),
                ))
                .map_err(err)?;
            }
        }
    }
    for (colour, p) in bars {
        if let Some(rows) = p.interval {
            draw_error_bar(root, colour, p.x, rows)?;
        }
    }
    for ((runs, colour), &shape) in colours().zip(MARKERS.iter().cycle()) {
        for p in runs.iter().flatten() {
            draw_marker(root, shape, colour, (p.x, p.y))?;
        }
    }
    Ok(())
}

/// The stretches of consecutive points (in x order) with a finite value; a NaN or infinity
/// ends a stretch, as in [`finite_runs`].
fn finite_param_runs(points: &[ParamPoint]) -> Vec<Vec<ParamPoint>> {
    let mut sorted = points.to_vec();
    sorted.sort_by(|a, b| a.x.total_cmp(&b.x));
    sorted
        .split(|p| !p.y.is_finite())
        .filter(|run| !run.is_empty())
        .map(<[ParamPoint]>::to_vec)
        .collect()
}

/// The stretches of consecutive points of `run` that have an interval.
fn with_intervals(run: &[PixelPoint]) -> impl Iterator<Item = &[PixelPoint]> {
    run.split(|p| p.interval.is_none())
        .filter(|stretch| !stretch.is_empty())
}

/// The stretches of consecutive finite points, in chart coordinates (nanoseconds, scaled
/// value); a NaN or infinity ends a stretch, which is how a gap becomes a break in the line.
fn finite_runs(points: &[(SimTime, f64)], divisor: f64) -> Vec<Vec<(f64, f64)>> {
    let mut runs = Vec::new();
    let mut run = Vec::new();
    for &(t, v) in points {
        if v.is_finite() {
            run.push((t.as_nanos() as f64, v / divisor));
        } else if !run.is_empty() {
            runs.push(std::mem::take(&mut run));
        }
    }
    if !run.is_empty() {
        runs.push(run);
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> SimTime {
        SimTime::from_nanos(s * 1_000_000_000)
    }

    /// Consumer lag in a rebalance storm: the baseline never recovers from the pause, one fix
    /// recovers slowly, the other at once; the baseline misses samples while it rebalances.
    fn sample_spec() -> ChartSpec {
        let line = |label: &str, f: &dyn Fn(u64) -> f64| ChartLine {
            label: label.to_owned(),
            points: (0..=180).map(|i| (secs(i * 10), f(i * 10))).collect(),
        };
        let wave = |t: u64| 2_000.0 + 600.0 * libm::sin(t as f64 / 40.0);
        ChartSpec {
            title: "Consumer lag during a rebalance storm".to_owned(),
            y_label: "lag".to_owned(),
            unit: Unit::Count,
            series: vec![
                line("baseline", &|t| {
                    if (600..660).contains(&t) {
                        f64::NAN
                    } else if t < 300 {
                        wave(t)
                    } else {
                        wave(t) + (t - 300) as f64 * 40.0
                    }
                }),
                line("cooperative", &|t| {
                    if (300..900).contains(&t) {
                        wave(t) + 12_000.0 * libm::exp(-((t - 300) as f64) / 150.0)
                    } else {
                        wave(t)
                    }
                }),
                line("static-membership", &|t| {
                    wave(t) * 0.6 + 300.0 * libm::cos(t as f64 / 25.0)
                }),
            ],
            windows: vec![
                FaultWindow {
                    from: secs(300),
                    until: secs(320),
                    label: "pause sink/1 (20s)".to_owned(),
                },
                FaultWindow {
                    from: secs(1_200),
                    until: secs(1_380),
                    label: "partition broker-2".to_owned(),
                },
            ],
        }
    }

    fn render(spec: &ChartSpec) -> String {
        match render_svg(spec) {
            Ok(svg) => svg,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn sample_chart_is_written_with_every_label_and_the_window_bands() {
        let spec = sample_spec();
        let svg = render(&spec);
        let dir = std::env::temp_dir().join(format!("faultline-chart-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("sample.svg");
        std::fs::write(&path, &svg).expect("write svg");
        let written = std::fs::read_to_string(&path).expect("read svg");
        assert_eq!(written, svg);
        assert!(written.starts_with("<svg"), "{}", &written[..80]);
        assert!(written.contains(&spec.title));
        for line in &spec.series {
            assert!(written.contains(&format!(">\n{}\n</text>", line.label)));
        }
        for window in &spec.windows {
            assert!(written.contains(&format!(">\n{}\n</text>", window.label)));
        }
        // The bands: translucent grey rectangles, one per window.
        assert_eq!(
            written
                .matches(r##"opacity="0.16" fill="#808080""##)
                .count(),
            2,
            "{written}"
        );
        // The axes speak in durations and in the unit's scale.
        assert!(written.contains(">\n5m\n</text>"));
        assert!(written.contains(">\nlag (thousands)\n</text>"));
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn the_same_spec_gives_the_same_bytes() {
        let spec = sample_spec();
        let svg = render(&spec);
        assert_eq!(svg, render(&spec.clone()));
        // Pinned across processes and machines too: a change here means every report chart
        // changed (a plotters upgrade, a style change); check a rendering, then update.
        let fnv1a = svg.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        assert_eq!((svg.len(), fnv1a), (11_421, 2_361_665_004_812_879_994));
    }

    fn spec_with(series: Vec<ChartLine>, windows: Vec<FaultWindow>, unit: Unit) -> ChartSpec {
        ChartSpec {
            title: "edge".to_owned(),
            y_label: "value".to_owned(),
            unit,
            series,
            windows,
        }
    }

    fn line(label: &str, points: &[(u64, f64)]) -> ChartLine {
        ChartLine {
            label: label.to_owned(),
            points: points.iter().map(|&(s, v)| (secs(s), v)).collect(),
        }
    }

    #[test]
    fn charts_without_data_say_so() {
        let cases = [
            spec_with(vec![], vec![], Unit::Count),
            spec_with(vec![line("baseline", &[])], vec![], Unit::Nanos),
            spec_with(
                vec![line("baseline", &[(0, f64::NAN), (10, f64::INFINITY)])],
                vec![],
                Unit::Ratio,
            ),
        ];
        for spec in &cases {
            let svg = render(spec);
            assert!(svg.contains(">\nno data\n</text>"), "{spec:?}");
        }
        // With nothing to place, the axis shows the first minute.
        assert!(render(&cases[0]).contains(">\n1m\n</text>"));
        // All-NaN points still span their time.
        assert!(render(&cases[2]).contains(">\n10s\n</text>"));
    }

    #[test]
    fn a_single_point_is_a_dot_on_a_one_second_axis() {
        let svg = render(&spec_with(
            vec![line("baseline", &[(5, 42.0)])],
            vec![],
            Unit::Count,
        ));
        assert!(!svg.contains("no data"));
        assert!(svg.contains("<circle"), "{svg}");
        assert!(svg.contains(">\n4.6s\n</text>"), "{svg}");
        assert!(svg.contains(">\n5s\n</text>"));
    }

    #[test]
    fn nan_breaks_the_line_into_pieces() {
        let points = [
            (0, 1.0),
            (1, 2.0),
            (2, f64::NAN),
            (3, 2.0),
            (4, 1.0),
            (5, f64::NAN),
            (6, 3.0),
        ];
        let svg = render(&spec_with(
            vec![line("baseline", &points)],
            vec![],
            Unit::Count,
        ));
        // Two polylines for the two stretches (plus the legend swatch), a dot for the last point.
        assert_eq!(
            svg.matches(r##"stroke="#0072B2" stroke-width="2""##)
                .count(),
            2,
            "{svg}"
        );
        assert_eq!(svg.matches("<circle").count(), 1);
        let runs = finite_runs(&line("b", &points).points, 1.0);
        assert_eq!(runs.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);
    }

    #[test]
    fn huge_and_negative_values_get_an_axis() {
        let huge = render(&spec_with(
            vec![line("baseline", &[(0, 0.0), (1, 1e300)])],
            vec![],
            Unit::Count,
        ));
        assert!(huge.contains("e288"), "{huge}");
        let negative = render(&spec_with(
            vec![line("baseline", &[(0, -5.0), (1, -1.0)])],
            vec![],
            Unit::Count,
        ));
        assert!(negative.contains(">\n-5\n</text>"), "{negative}");
        assert!(negative.contains(">\n0\n</text>"));
        // The widest range a float holds still fits once scaled to trillions.
        let widest = render(&spec_with(
            vec![line("baseline", &[(0, -f64::MAX), (1, f64::MAX)])],
            vec![],
            Unit::Count,
        ));
        assert!(widest.contains(">\n-2e296\n</text>"), "{widest}");
        let ratio = render_svg(&spec_with(
            vec![line("baseline", &[(0, f64::MAX)])],
            vec![],
            Unit::Ratio,
        ));
        assert!(
            matches!(ratio, Err(ChartError::ValueRange { .. })),
            "{ratio:?}"
        );
    }

    #[test]
    fn a_long_title_is_cut_to_the_width() {
        let mut spec = spec_with(vec![], vec![], Unit::Count);
        spec.title = "very long title ".repeat(20);
        let svg = render(&spec);
        let title = fit_text(&spec.title, WIDTH as i32 - 2 * MARGIN, TITLE_SIZE * 1.1);
        assert!(title.ends_with('…'));
        assert!(title.chars().count() < 80, "{title}");
        assert!(svg.contains(&title));
        assert_eq!(fit_text("short", 500, 24.0), "short");
    }

    #[test]
    fn shares_stop_at_a_hundred_percent() {
        let svg = render(&spec_with(
            vec![line("baseline", &[(0, 0.999), (60, 0.75)])],
            vec![],
            Unit::Ratio,
        ));
        assert!(svg.contains(">\nvalue (%)\n</text>"));
        assert!(svg.contains(">\n100\n</text>"), "{svg}");
        assert!(!svg.contains(">\n120\n</text>"));
    }

    #[test]
    fn durations_use_one_scale_on_the_axis() {
        let svg = render(&spec_with(
            vec![line("baseline", &[(0, 2e6), (60, 250e6)])],
            vec![],
            Unit::Nanos,
        ));
        assert!(svg.contains(">\nvalue (ms)\n</text>"));
        assert!(svg.contains(">\n250\n</text>"), "{svg}");
    }

    #[test]
    fn bad_specs_are_rejected_with_a_reason() {
        let nine = (0..9)
            .map(|i| line(&format!("v{i}"), &[(0, 1.0)]))
            .collect();
        let err = render_svg(&spec_with(nine, vec![], Unit::Count)).err();
        assert_eq!(
            err.map(|e| e.to_string()).as_deref(),
            Some(
                "chart \"edge\" has 9 lines, more than the 8 distinguishable colours; split the \
                 variants over several charts"
            )
        );
        let backwards = FaultWindow {
            from: secs(10),
            until: secs(5),
            label: "crash".to_owned(),
        };
        let err = render_svg(&spec_with(vec![], vec![backwards], Unit::Count)).err();
        assert_eq!(
            err.map(|e| e.to_string()).as_deref(),
            Some("fault window \"crash\" ends (5s) before it starts (10s)")
        );
    }

    #[test]
    fn an_instant_fault_is_still_visible_and_text_is_escaped() {
        let crash = FaultWindow {
            from: secs(30),
            until: secs(30),
            label: "crash <db> & restart".to_owned(),
        };
        let svg = render(&spec_with(
            vec![line("a<b", &[(0, 1.0), (60, 2.0)])],
            vec![crash],
            Unit::Count,
        ));
        assert!(svg.contains(r##"width="2" height"##), "{svg}");
        assert!(svg.contains("crash &lt;db&gt; &amp; restart"));
        assert!(svg.contains("a&lt;b"));
    }

    #[test]
    fn time_steps_are_round() {
        let s = 1_000_000_000;
        assert_eq!(time_step(0), 1);
        assert_eq!(time_step(7), 1);
        assert_eq!(time_step(1_800 * s), 300 * s);
        assert_eq!(time_step(90 * s), 15 * s);
        assert_eq!(time_step(s / 2), 100_000_000);
        assert_eq!(time_step(u64::MAX), 50_000 * 86_400 * s);
    }

    #[test]
    fn value_steps_are_one_two_five() {
        assert_eq!(value_step(70.0), (10.0, 0));
        assert_eq!(value_step(8.0), (1.0, 0));
        assert_eq!(value_step(1.0), (0.2, 1));
        assert_eq!(value_step(3e5), (50_000.0, 0));
    }

    /// A sweep of `api.workers` with three variants: the share of 20 seeds where a check
    /// held, with rough intervals (the statistics are not this module's business).
    fn param_sample() -> ParamChartSpec {
        let held = [[0, 0, 0, 1, 3], [0, 5, 20, 20, 20], [2, 18, 20, 20, 20]];
        let series = ["baseline", "bounded queue", "deadline shedding"]
            .iter()
            .zip(held)
            .map(|(name, held)| ParamLine {
                label: (*name).to_owned(),
                points: held
                    .iter()
                    .enumerate()
                    .map(|(i, &h)| {
                        let y = f64::from(h) / 20.0;
                        ParamPoint {
                            x: 10.0 * (i as f64 + 1.0),
                            y,
                            interval: Some(((y - 0.15).max(0.0), (y + 0.15).min(1.0))),
                        }
                    })
                    .collect(),
            })
            .collect();
        ParamChartSpec {
            title: "goodput during the spike: seeds where it held".to_owned(),
            x_label: "api.workers".to_owned(),
            x_scale: ParamScale::Numeric(Unit::Count),
            y_label: "seeds where it held".to_owned(),
            unit: Unit::Ratio,
            y_span: Some((0.0, 1.0)),
            series,
            intervals: IntervalStyle::Band,
            interval_label: "95% Wilson interval, 20 seeds".to_owned(),
        }
    }

    fn render_param(spec: &ParamChartSpec) -> String {
        match render_param_svg(spec) {
            Ok(svg) => svg,
            Err(e) => panic!("{e}"),
        }
    }

    fn text(label: &str) -> String {
        format!(">\n{label}\n</text>")
    }

    /// Markers of the three first variants: a circle, a square and a triangle (a polygon)
    /// in its colour, each over a white halo of the same shape.
    fn markers(svg: &str) -> [usize; 3] {
        let count = |element: &str, colour: &str| {
            svg.lines()
                .filter(|l| l.starts_with(element))
                .filter(|l| l.contains(&format!(r#"opacity="1" fill="{colour}""#)))
                .count()
        };
        [
            count("<circle", "#0072B2"),
            count("<rect", "#D55E00"),
            count("<polygon", "#009E73"),
        ]
    }

    #[test]
    fn a_param_chart_has_its_axes_a_marker_per_point_a_legend_and_bands() {
        let spec = param_sample();
        let svg = render_param(&spec);
        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        assert!(svg.contains(&spec.title));
        // The x axis is the parameter, with ticks at its values; the y axis a share.
        assert!(svg.contains(&text("api.workers")), "{svg}");
        for tick in ["10", "20", "30", "40", "50"] {
            assert!(svg.contains(&text(tick)), "tick {tick}");
        }
        assert!(svg.contains(&text("seeds where it held (%)")));
        assert!(svg.contains(&text("100")));
        assert!(!svg.contains(&text("120")), "a share stops at 100%");
        assert!(!svg.contains("virtual time"));
        // One legend entry per variant and one for the intervals.
        for line in &spec.series {
            assert!(svg.contains(&text(&line.label)), "{}", line.label);
        }
        assert!(svg.contains(&text("95% Wilson interval, 20 seeds")));
        // A marker per point and one in the legend, per variant.
        assert_eq!(markers(&svg), [6, 6, 6], "{svg}");
        // A band per variant, in its colour, and a grey key for it in the legend.
        for colour in ["#0072B2", "#D55E00", "#009E73"] {
            let band = format!(r#"<polygon opacity="0.18" fill="{colour}""#);
            assert_eq!(svg.matches(&band).count(), 1, "{colour}");
        }
        assert_eq!(svg.matches(r##"opacity="0.36" fill="#808080""##).count(), 1);
        // A line through each variant's points.
        assert_eq!(
            svg.matches(r##"<polyline fill="none" opacity="1" stroke="#D55E00" stroke-width="2""##)
                .count(),
            1,
            "{svg}"
        );
    }

    #[test]
    fn the_same_param_spec_gives_the_same_bytes() {
        let spec = param_sample();
        let svg = render_param(&spec);
        assert_eq!(svg, render_param(&spec.clone()));
        // Pinned as the time chart is (see `the_same_spec_gives_the_same_bytes`).
        let fnv1a = svg.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        assert_eq!((svg.len(), fnv1a), (9_037, 13_632_420_697_957_546_979));
    }

    fn param_spec(x_scale: ParamScale, series: Vec<ParamLine>) -> ParamChartSpec {
        ParamChartSpec {
            title: "sweep".to_owned(),
            x_label: "param".to_owned(),
            x_scale,
            y_label: "value".to_owned(),
            unit: Unit::Count,
            y_span: None,
            series,
            intervals: IntervalStyle::ErrorBars,
            interval_label: "95% interval".to_owned(),
        }
    }

    fn param_line(label: &str, points: &[(f64, f64)]) -> ParamLine {
        ParamLine {
            label: label.to_owned(),
            points: points
                .iter()
                .map(|&(x, y)| ParamPoint {
                    x,
                    y,
                    interval: Some((y * 0.9, y * 1.1)),
                })
                .collect(),
        }
    }

    #[test]
    fn a_numeric_param_gets_round_ticks_and_error_bars() {
        let spec = param_spec(
            ParamScale::Numeric(Unit::Count),
            vec![param_line(
                "baseline",
                &[(5.0, 10.0), (40.0, 30.0), (15.0, 20.0)],
            )],
        );
        let svg = render_param(&spec);
        for tick in ["5", "10", "20", "40"] {
            assert!(svg.contains(&text(tick)), "tick {tick}: {svg}");
        }
        assert!(!svg.contains(&text("45")), "ticks stay within the values");
        // Points are joined in x order, whatever order they came in.
        let line = svg
            .lines()
            .find(|l| {
                l.starts_with(
                    r##"<polyline fill="none" opacity="1" stroke="#0072B2" stroke-width="2""##,
                )
            })
            .expect("a line");
        let xs: Vec<i32> = line
            .split("points=\"")
            .nth(1)
            .expect("points")
            .split_whitespace()
            .filter_map(|p| p.split(',').next()?.parse().ok())
            .collect();
        assert_eq!(xs.len(), 3, "{line}");
        assert!(xs.windows(2).all(|w| w[0] < w[1]), "{xs:?}");
        // An error bar is a vertical line and two caps, per point: no band.
        assert_eq!(svg.matches(r#"opacity="0.18""#).count(), 0);
        let bars = svg
            .lines()
            .filter(|l| {
                l.starts_with("<polyline") && l.contains(r##"stroke="#0072B2" stroke-width="2""##)
            })
            .count();
        assert_eq!(
            bars,
            1 + 3 * 3,
            "the line, then three strokes per bar: {svg}"
        );
        assert_eq!(markers(&svg)[0], 3 + 1);
        // The key for error bars is a grey bar.
        assert!(svg.contains(r##"stroke="#808080" stroke-width="2""##));
    }

    #[test]
    fn a_duration_param_reads_in_one_time_unit() {
        let ms = |v: f64| v * 1e6;
        let spec = param_spec(
            ParamScale::Numeric(Unit::Nanos),
            vec![param_line(
                "baseline",
                &[(ms(100.0), 1.0), (ms(300.0), 2.0), (ms(500.0), 3.0)],
            )],
        );
        let svg = render_param(&spec);
        for tick in ["100 ms", "200 ms", "300 ms", "400 ms", "500 ms"] {
            assert!(svg.contains(&text(tick)), "tick {tick}: {svg}");
        }
        let long = param_spec(
            ParamScale::Numeric(Unit::Nanos),
            vec![param_line(
                "baseline",
                &[(ms(250.0), 1.0), (ms(2_000.0), 2.0)],
            )],
        );
        let svg = render_param(&long);
        assert!(svg.contains(&text("0.5 s")), "{svg}");
        assert!(svg.contains(&text("2 s")));
        assert!(!svg.contains(" ms\n"), "one scale for every tick");
    }

    #[test]
    fn a_ratio_param_and_a_ratio_value_read_in_percent() {
        let mut spec = param_spec(
            ParamScale::Numeric(Unit::Ratio),
            vec![param_line(
                "baseline",
                &[(0.1, 0.99), (0.3, 0.95), (0.5, 0.6)],
            )],
        );
        spec.unit = Unit::Ratio;
        let svg = render_param(&spec);
        for tick in ["10%", "20%", "50%"] {
            assert!(svg.contains(&text(tick)), "tick {tick}: {svg}");
        }
        assert!(svg.contains(&text("value (%)")));
        assert!(svg.contains(&text("100")));
        let counts = param_spec(
            ParamScale::Numeric(Unit::PerSecond),
            vec![param_line("baseline", &[(1_000.0, 1.0), (5_000.0, 2.0)])],
        );
        let svg = render_param(&counts);
        assert!(svg.contains(&text("1k/s")), "{svg}");
        assert!(svg.contains(&text("5k/s")));
    }

    #[test]
    fn categories_are_slots_with_names_and_unjoined_points() {
        let names = ["RoundRobin", "Random", "LeastOutstanding"].map(str::to_owned);
        let mut spec = param_spec(
            ParamScale::Categories(names.to_vec()),
            vec![
                param_line("baseline", &[(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)]),
                param_line("fix", &[(0.0, 2.0), (1.0, 3.0), (2.0, 4.0)]),
            ],
        );
        // A band cannot join categories: it is drawn as bars.
        spec.intervals = IntervalStyle::Band;
        let svg = render_param(&spec);
        for name in &names {
            assert!(svg.contains(&text(name)), "{name}");
        }
        assert_eq!(svg.matches(r#"opacity="0.18""#).count(), 0, "no band");
        assert_eq!(
            svg.lines()
                .filter(|l| l.starts_with("<polyline") && l.contains(r##"stroke="#0072B2""##))
                .count(),
            3 * 3,
            "three strokes per error bar and no line, legend included: {svg}"
        );
        assert_eq!(markers(&svg)[..2], [3 + 1, 3 + 1]);
    }

    #[test]
    fn gaps_single_points_and_no_data() {
        let mut spec = param_spec(
            ParamScale::Numeric(Unit::Count),
            vec![param_line(
                "baseline",
                &[(1.0, 1.0), (2.0, 2.0), (3.0, f64::NAN), (4.0, 2.0)],
            )],
        );
        for p in &mut spec.series[0].points {
            p.interval = None;
        }
        let svg = render_param(&spec);
        // One line for the first two points; the last, alone, is a marker.
        let line = r##"<polyline fill="none" opacity="1" stroke="#0072B2" stroke-width="2""##;
        let lines: Vec<&str> = svg.lines().filter(|l| l.starts_with(line)).collect();
        assert_eq!(lines.len(), 1, "{svg}");
        assert_eq!(lines[0].matches(',').count(), 2, "{}", lines[0]);
        assert_eq!(markers(&svg)[0], 3 + 1);
        assert!(
            !svg.contains("95% interval"),
            "no intervals, nothing to explain"
        );
        // One value alone still gets an axis around it.
        let one = render_param(&param_spec(
            ParamScale::Numeric(Unit::Count),
            vec![param_line("baseline", &[(20.0, 5.0)])],
        ));
        assert!(one.contains(&text("20")), "{one}");
        assert!(!one.contains("no data"));
        for empty in [
            param_spec(ParamScale::Numeric(Unit::Count), vec![]),
            param_spec(
                ParamScale::Numeric(Unit::Nanos),
                vec![param_line("baseline", &[(1.0, f64::NAN)])],
            ),
        ] {
            let svg = render_param(&empty);
            assert!(svg.contains(&text("no data")), "{empty:?}");
            // Without a value there is no interval to explain.
            assert!(!svg.contains("95% interval"), "{svg}");
        }
    }

    #[test]
    fn bad_param_specs_are_rejected_with_a_reason() {
        let reason = |spec: &ParamChartSpec| render_param_svg(spec).err().map(|e| e.to_string());
        let nan = param_spec(
            ParamScale::Numeric(Unit::Count),
            vec![param_line("baseline", &[(f64::NAN, 1.0)])],
        );
        assert_eq!(
            reason(&nan).as_deref(),
            Some(
                "chart \"sweep\": line \"baseline\" has a point at x = NaN, which is not a \
                 finite number"
            )
        );
        let outside = param_spec(
            ParamScale::Categories(vec!["a".to_owned()]),
            vec![param_line("fix", &[(1.0, 1.0)])],
        );
        assert_eq!(
            reason(&outside).as_deref(),
            Some(
                "chart \"sweep\": line \"fix\" has a point at x = 1, which is not the index \
                 of one of the chart's categories"
            )
        );
        let mut backwards = param_spec(ParamScale::Numeric(Unit::Count), vec![]);
        backwards.series = vec![ParamLine {
            label: "baseline".to_owned(),
            points: vec![ParamPoint {
                x: 1.0,
                y: 1.0,
                interval: Some((2.0, 0.5)),
            }],
        }];
        assert_eq!(
            reason(&backwards).as_deref(),
            Some(
                "chart \"sweep\": line \"baseline\" has an interval at x = 1 whose low end (2) \
                 is above its high end (0.5)"
            )
        );
        let nine = (0..9)
            .map(|i| param_line(&format!("v{i}"), &[(1.0, 1.0)]))
            .collect();
        let too_many = param_spec(ParamScale::Numeric(Unit::Count), nine);
        assert!(matches!(
            render_param_svg(&too_many),
            Err(ChartError::TooManyLines { count: 9, .. })
        ));
        let huge = param_spec(
            ParamScale::Numeric(Unit::Count),
            vec![param_line("baseline", &[(-f64::MAX, 1.0), (f64::MAX, 1.0)])],
        );
        assert!(matches!(
            render_param_svg(&huge),
            Err(ChartError::ValueRange { .. })
        ));
    }
}
