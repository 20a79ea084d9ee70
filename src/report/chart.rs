//! SVG line charts of one metric over virtual time, one line per variant, with the fault
//! windows shaded, sized for a slide (1000 × 500 px). The chart is a pure function of its
//! [`ChartSpec`]: ticks, scales and colours are computed here rather than left to defaults, so
//! the same spec gives byte-identical SVG, baseline has the same colour in every chart, and the
//! time axis reads in the simulator's own words ("1m30s", not "90.0").
//!
//! Text is measured with plotters' built-in estimate (no font files): the SVG names a generic
//! `sans-serif` and leaves the glyphs to the viewer, so layout keeps a safety margin around
//! every label instead of relying on exact widths.

use std::ops::Range;

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
    let y = ValueAxis::new(spec)?;
    let mut svg = String::new();
    draw(&mut svg, spec, &x, &y).map_err(|reason| ChartError::Draw {
        title: spec.title.clone(),
        reason,
    })?;
    Ok(svg)
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
    /// rounded out to a tick.
    fn new(spec: &ChartSpec) -> Result<ValueAxis, ChartError> {
        let finite = spec
            .series
            .iter()
            .flat_map(|line| line.points.iter().map(|&(_, v)| v))
            .filter(|v| v.is_finite());
        let (min, max) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        let has_data = min <= max;
        let (min, max) = if has_data {
            (min.min(0.0), max.max(0.0))
        } else {
            (0.0, 0.0)
        };
        let (divisor, suffix) = spec.unit.axis_scale(min.abs().max(max.abs()));
        let (mut lo, mut hi) = (min / divisor, max / divisor);
        let range_error = || ChartError::ValueRange {
            title: spec.title.clone(),
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
        if spec.unit == Unit::Ratio && max <= 1.0 {
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
            spec.y_label.clone()
        } else {
            format!("{} ({suffix})", spec.y_label)
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

fn draw(svg: &mut String, spec: &ChartSpec, x: &TimeAxis, y: &ValueAxis) -> Result<(), String> {
    let root = SVGBackend::with_string(svg, (WIDTH, HEIGHT)).into_drawing_area();
    let err = |e: DrawingAreaErrorKind<_>| e.to_string();
    root.fill(&WHITE).map_err(err)?;

    let title_style = TextStyle::from(font(TITLE_SIZE).style(FontStyle::Bold))
        .color(&TEXT)
        .pos(Pos::new(HPos::Left, VPos::Top));
    let title = fit_text(&spec.title, WIDTH as i32 - 2 * MARGIN, TITLE_SIZE * 1.1);
    root.draw(&Text::new(title, (MARGIN, 16), title_style))
        .map_err(err)?;

    let labels: Vec<&str> = spec.series.iter().map(|l| l.label.as_str()).collect();
    let (spots, rows) = legend_layout(&labels);
    let legend_style = TextStyle::from(font(LEGEND_SIZE))
        .color(&TEXT)
        .pos(Pos::new(HPos::Left, VPos::Center));
    for ((label, &(lx, ly)), colour) in labels.iter().zip(&spots).zip(PALETTE.iter()) {
        let mid = ly + LEGEND_ROW / 2;
        root.draw(&PathElement::new(
            vec![(lx, mid), (lx + LEGEND_SWATCH, mid)],
            colour.stroke_width(3),
        ))
        .map_err(err)?;
        root.draw(&Text::new(
            (*label).to_owned(),
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
    let x_range = Ticked::new(
        x.from_ns as f64..x.until_ns as f64,
        x.ticks_ns
            .iter()
            .map(|&t| (t as f64, SimDuration::from_nanos(t).to_string()))
            .collect(),
    );
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
        .x_desc("virtual time")
        .y_desc(y.title.clone())
        .draw()
        .map_err(err)?;

    if y.lo < 0.0 {
        // With negative values, zero is a reference line rather than the bottom edge.
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(x.from_ns as f64, 0.0), (x.until_ns as f64, 0.0)],
                AXIS.stroke_width(1),
            )))
            .map_err(err)?;
    }

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
    if !y.has_data {
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
}
