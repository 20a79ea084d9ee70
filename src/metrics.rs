//! Counters, gauges and HDR histograms that actors and subsystems register under an owner
//! ("db", "net") and a metric name, giving the full name "owner.name", plus time series of
//! them sampled on the virtual clock. Registration hands out a small `Copy` id and every update
//! goes through it as a plain `Vec` index, so an actor bumping a counter per event pays no name
//! lookup; names are only looked up at registration and query time. Every map is a `BTreeMap`
//! and every iteration is in name order, so two runs with the same seed produce byte-identical
//! reports.

use std::collections::BTreeMap;
use std::fmt;

use hdrhistogram::Histogram;
use serde::{Serialize, Serializer};
use thiserror::Error;

use crate::engine::time::{SimDuration, SimTime};

/// Histogram values above this (one hour in nanoseconds) are recorded as this value.
///
/// Histograms auto-resize, so their memory follows the largest value actually seen; the ceiling
/// stops one runaway value (a `u64` underflow turned into a "latency", say) from growing every
/// bucket array to its 64-bit maximum. Exact `min`/`max`/`mean` are tracked beside the
/// histogram, so only the quantiles see the clamped value, and [`Summary::saturated`] counts
/// how many values were clamped.
pub const HISTOGRAM_CEILING: u64 = 3_600 * 1_000_000_000;

/// Three significant figures: quantiles are within 0.1% of the true value.
const SIGNIFICANT_FIGURES: u8 = 3;

/// The per-interval series every histogram gets when sampling is on, in registration order.
const HISTOGRAM_SERIES: [(&str, SeriesKind); 4] = [
    ("p50", SeriesKind::HistogramP50),
    ("p99", SeriesKind::HistogramP99),
    ("max", SeriesKind::HistogramMax),
    ("count", SeriesKind::HistogramCount),
];

/// Handle to a registered counter; valid only for the [`Metrics`] that issued it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CounterId(u32);

/// Handle to a registered gauge; valid only for the [`Metrics`] that issued it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GaugeId(u32);

/// Handle to a registered histogram; valid only for the [`Metrics`] that issued it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HistogramId(u32);

/// What a registered metric is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

impl fmt::Display for MetricKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
        })
    }
}

/// What the points of a [`Series`] measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SeriesKind {
    /// A counter's running total (series name "owner.name").
    Counter,
    /// A gauge's current value (series name "owner.name").
    Gauge,
    /// Median of the values recorded since the previous sample ("owner.name.p50"): exact up to
    /// 16,384 values in the interval, within HDR's 0.1% beyond.
    HistogramP50,
    /// 99th percentile of the values recorded since the previous sample ("owner.name.p99"),
    /// with the same precision as the median.
    HistogramP99,
    /// Largest value recorded since the previous sample, exact ("owner.name.max").
    HistogramMax,
    /// Number of values recorded since the previous sample ("owner.name.count").
    HistogramCount,
}

/// Misuse of the registry; each is a bug in the caller, so the plain registration methods
/// panic with this message and the `try_` ones return it.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MetricsError {
    #[error(
        "metric `{name}` is already registered as a {existing}, cannot register it as a {requested}"
    )]
    KindMismatch {
        name: String,
        existing: MetricKind,
        requested: MetricKind,
    },
    #[error(
        "metric `{name}` cannot be registered: its time series `{series}` would clash with that of metric `{existing}`"
    )]
    SeriesNameClash {
        name: String,
        series: String,
        existing: String,
    },
    #[error("the sample interval must be positive")]
    ZeroSampleInterval,
}

/// Whole-run statistics of a histogram. `count`, `min`, `max` and `mean` are exact (taken
/// before the [`HISTOGRAM_CEILING`] clamp); the quantiles and `stdev` are within HDR's 0.1%,
/// with the quantiles clamped into `[min, max]`. All zero for an empty histogram.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub count: u64,
    pub min: u64,
    pub max: u64,
    pub mean: f64,
    pub stdev: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    /// How many recorded values exceeded [`HISTOGRAM_CEILING`] and were clamped to it.
    pub saturated: u64,
}

/// A metric's values over virtual time, one point per sample taken while it was registered.
///
/// Histogram series have a NaN point for an interval in which nothing was recorded (0 for the
/// ".count" series): there is no p99 of nothing, and 0 would read as "very fast". NaN becomes
/// `null` in JSON; the query methods skip it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Series {
    pub name: String,
    pub kind: SeriesKind,
    /// Sample time and value, in time order. Serialized as `[nanoseconds, value]` pairs.
    #[serde(serialize_with = "serialize_points")]
    pub points: Vec<(SimTime, f64)>,
}

impl Series {
    /// The value of the last sample at or before `t`; `None` before the first sample or when
    /// that sample has no value (an empty histogram interval).
    pub fn value_at(&self, t: SimTime) -> Option<f64> {
        let after = self.points.partition_point(|&(pt, _)| pt <= t);
        let (_, v) = *self.points[..after].last()?;
        (!v.is_nan()).then_some(v)
    }

    /// Mean of the sample values at times in `[from, to]`; `None` if there are none.
    pub fn mean_over(&self, from: SimTime, to: SimTime) -> Option<f64> {
        let (sum, n) = self
            .values_in(from, to)
            .fold((0.0, 0_u64), |(sum, n), v| (sum + v, n + 1));
        (n > 0).then(|| sum / n as f64)
    }

    /// Largest sample value at times in `[from, to]`; `None` if there are none.
    pub fn max_over(&self, from: SimTime, to: SimTime) -> Option<f64> {
        self.values_in(from, to).reduce(f64::max)
    }

    /// Smallest sample value at times in `[from, to]`; `None` if there are none.
    pub fn min_over(&self, from: SimTime, to: SimTime) -> Option<f64> {
        self.values_in(from, to).reduce(f64::min)
    }

    /// Events per second of virtual time between the first and the last sample in
    /// `[from, to]`: the counter's increase between them for a counter series, the sum of the
    /// per-interval counts after the first for a histogram ".count" series. `None` for other
    /// kinds, or when the window holds fewer than two samples.
    pub fn rate_over(&self, from: SimTime, to: SimTime) -> Option<f64> {
        let window = self.window(from, to);
        let (&(t0, v0), &(t1, v1)) = (window.first()?, window.last()?);
        if t1 <= t0 {
            return None;
        }
        let increase = match self.kind {
            SeriesKind::Counter => v1 - v0,
            // A count sampled at T covers (T - interval, T], so the first sample's count
            // happened before the window's start.
            SeriesKind::HistogramCount => window[1..].iter().map(|&(_, v)| v).sum(),
            _ => return None,
        };
        let secs = SimDuration::from_nanos(t1.as_nanos() - t0.as_nanos()).as_secs_f64();
        Some(increase / secs)
    }

    fn window(&self, from: SimTime, to: SimTime) -> &[(SimTime, f64)] {
        let lo = self.points.partition_point(|&(t, _)| t < from);
        let hi = self.points.partition_point(|&(t, _)| t <= to);
        self.points.get(lo..hi).unwrap_or(&[])
    }

    fn values_in(&self, from: SimTime, to: SimTime) -> impl Iterator<Item = f64> + '_ {
        self.window(from, to)
            .iter()
            .map(|&(_, v)| v)
            .filter(|v| !v.is_nan())
    }
}

fn serialize_points<S: Serializer>(points: &[(SimTime, f64)], s: S) -> Result<S::Ok, S::Error> {
    // Through nanoseconds so that reports do not depend on how the engine's time types
    // serialize (or whether they do).
    s.collect_seq(points.iter().map(|&(t, v)| (t.as_nanos(), v)))
}

/// A gauge's end-of-run state in a [`Snapshot`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct GaugeSnapshot {
    pub value: f64,
    /// See [`Metrics::gauge_time_weighted_mean`].
    pub time_weighted_mean: Option<f64>,
}

/// Everything [`Metrics`] knows, owned and serializable for JSON reports; maps are keyed by
/// full name and so serialize in name order.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Snapshot {
    pub now_ns: u64,
    pub sample_interval_ns: Option<u64>,
    pub sample_times_ns: Vec<u64>,
    pub counters: BTreeMap<String, u64>,
    pub gauges: BTreeMap<String, GaugeSnapshot>,
    pub histograms: BTreeMap<String, Summary>,
    pub series: BTreeMap<String, Series>,
}

/// Read access to one histogram's whole-run data.
#[derive(Clone, Copy)]
pub struct HistogramView<'a> {
    slot: &'a HistSlot,
}

impl HistogramView<'_> {
    pub fn count(&self) -> u64 {
        self.slot.whole.len()
    }

    /// Exact smallest recorded value; 0 when empty.
    pub fn min(&self) -> u64 {
        if self.count() == 0 { 0 } else { self.slot.min }
    }

    /// Exact largest recorded value (before clamping); 0 when empty.
    pub fn max(&self) -> u64 {
        self.slot.max
    }

    /// Exact mean of the recorded values (before clamping); 0 when empty.
    pub fn mean(&self) -> f64 {
        match self.count() {
            0 => 0.0,
            n => self.slot.sum as f64 / n as f64,
        }
    }

    /// Standard deviation, within HDR precision.
    pub fn stdev(&self) -> f64 {
        self.slot.whole.stdev()
    }

    /// The value at quantile `q` (clamped into `[0, 1]`; NaN counts as 0), within HDR
    /// precision and clamped into `[min, max]`; 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count() == 0 {
            return 0;
        }
        let q = if q >= 0.0 { q.min(1.0) } else { 0.0 };
        // HDR answers with the top of the value's bucket, which can overshoot the exact max.
        self.slot
            .whole
            .value_at_quantile(q)
            .clamp(self.min(), self.max())
    }

    /// How many recorded values exceeded [`HISTOGRAM_CEILING`].
    pub fn saturated(&self) -> u64 {
        self.slot.saturated
    }

    pub fn summary(&self) -> Summary {
        Summary {
            count: self.count(),
            min: self.min(),
            max: self.max(),
            mean: self.mean(),
            stdev: self.stdev(),
            p50: self.quantile(0.5),
            p90: self.quantile(0.9),
            p99: self.quantile(0.99),
            p999: self.quantile(0.999),
            saturated: self.saturated(),
        }
    }
}

impl fmt::Debug for HistogramView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The summary, not the bucket array, which holds thousands of counts.
        f.debug_tuple("HistogramView")
            .field(&self.summary())
            .finish()
    }
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    kind: MetricKind,
    slot: u32,
}

#[derive(Clone, Debug)]
struct GaugeSlot {
    value: f64,
    /// When `value` was last folded into `integral`.
    since: u64,
    /// Integral of the value over virtual time up to `since`, in value × nanoseconds.
    integral: f64,
    registered_at: u64,
    series: u32,
}

impl GaugeSlot {
    #[inline]
    fn integrate(&mut self, now: u64) {
        // Skipping dt == 0 also keeps an infinite value from turning the integral into NaN.
        if now > self.since {
            self.integral += self.value * (now - self.since) as f64;
            self.since = now;
        }
    }
}

#[derive(Clone, Debug)]
struct HistSlot {
    whole: Histogram<u64>,
    /// Exact statistics, because HDR only knows bucket bounds and sees clamped values.
    min: u64,
    max: u64,
    sum: u128,
    saturated: u64,
    /// Present only when sampling.
    interval: Option<IntervalValues>,
    /// Index of the ".p50" series; the other three follow it.
    series: u32,
}

/// The values recorded since the last sample, for the per-interval series.
///
/// Raw values rather than a second HDR histogram: finding a quantile in an HDR histogram scans
/// its bucket array up to the quantile's bucket and resetting it zeroes the whole array, about
/// 35us per sample for latencies up to a second (a 168 KiB array), however few values the
/// interval saw. A buffer costs a push per record, gives exact quantiles, and makes sampling
/// cost proportional to the values recorded. Past [`INTERVAL_BUFFER`] values in one interval,
/// further values spill into an HDR histogram, bounding memory; the scan is then cheap next to
/// the recording that preceded it.
#[derive(Clone, Debug)]
struct IntervalValues {
    /// Clamped to the ceiling, as in the whole-run histogram.
    values: Vec<u64>,
    /// Created at the first spill and reused, reset, after it.
    spill: Option<Histogram<u64>>,
    /// Exact, before clamping.
    max: u64,
}

/// Values kept raw per histogram and interval before spilling (128 KiB).
const INTERVAL_BUFFER: usize = 16_384;

impl IntervalValues {
    #[inline]
    fn record(&mut self, raw: u64, clamped: u64) {
        self.max = self.max.max(raw);
        if self.values.len() < INTERVAL_BUFFER {
            self.values.push(clamped);
        } else {
            self.spill(clamped);
        }
    }

    #[cold]
    #[inline(never)]
    fn spill(&mut self, v: u64) {
        record_clamped(self.spill.get_or_insert_with(new_histogram), v);
    }

    /// The p50, p99, max and count of the interval, in [`HISTOGRAM_SERIES`] order, and a reset.
    fn take(&mut self) -> [f64; 4] {
        let spilled = self.spill.as_ref().map_or(0, Histogram::len);
        let count = self.values.len() as u64 + spilled;
        if count == 0 {
            return [f64::NAN, f64::NAN, f64::NAN, 0.0];
        }
        let (p50, p99) = match &mut self.spill {
            Some(hist) if spilled > 0 => {
                for &v in &self.values {
                    record_clamped(hist, v);
                }
                // As for the whole run: never report a quantile above the exact max.
                let q = |q: f64| hist.value_at_quantile(q).min(self.max);
                let quantiles = (q(0.5), q(0.99));
                hist.reset();
                quantiles
            }
            _ => {
                let i50 = rank_index(0.5, count);
                let i99 = rank_index(0.99, count);
                let (_, &mut p50, above) = self.values.select_nth_unstable(i50);
                let p99 = if i99 > i50 {
                    *above.select_nth_unstable(i99 - i50 - 1).1
                } else {
                    p50
                };
                (p50, p99)
            }
        };
        let max = self.max;
        self.values.clear();
        self.max = 0;
        [p50 as f64, p99 as f64, max as f64, count as f64]
    }
}

/// Index into the sorted values of the quantile `q` of `count` values, by HDR's definition
/// (the value at rank ceil(q * count), at least rank 1), so exact and spilled intervals agree.
fn rank_index(q: f64, count: u64) -> usize {
    let rank = ((q * count as f64).ceil() as u64).clamp(1, count);
    (rank - 1) as usize
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new(SIGNIFICANT_FIGURES).expect("3 significant figures is a valid HDR configuration")
}

#[inline]
fn record_clamped(h: &mut Histogram<u64>, v: u64) {
    // With auto-resize, `record` fails only if the bucket array's length overflows usize,
    // which values up to the ceiling cannot cause; the fallback keeps `record` panic-free.
    if h.record(v).is_err() {
        h.saturating_record(v);
    }
}

/// The registry of a run's metrics and their time series.
pub struct Metrics {
    /// Full name to kind and slot.
    index: BTreeMap<String, Entry>,
    /// Counter values alone, so the hottest update touches a dense `Vec<u64>`.
    counters: Vec<u64>,
    counter_series: Vec<u32>,
    gauges: Vec<GaugeSlot>,
    histograms: Vec<HistSlot>,
    /// Every series name, sampled or not, so that clashes are found whether sampling is on.
    series_index: BTreeMap<String, u32>,
    series: Vec<Series>,
    interval: Option<SimDuration>,
    /// Virtual time of the event being processed, from `advance_to`/`finish`.
    now: u64,
    /// The next multiple of the interval to sample; `u64::MAX` when there is none, so that
    /// `advance_to`'s single comparison never fires.
    next_due: u64,
    /// Whether `next_due` is a real sample time (false once it would overflow, or without
    /// sampling), which matters only for `finish(u64::MAX)`.
    sampling: bool,
    sample_times: Vec<SimTime>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("metrics", &self.index.len())
            .field("interval", &self.interval)
            .field("now", &self.now)
            .field("samples", &self.sample_times.len())
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// A registry sampling every `sample_interval` of virtual time (starting with a sample at
    /// time 0), or never with `None`. Panics on a zero interval; see [`Metrics::try_new`].
    #[track_caller]
    pub fn new(sample_interval: Option<SimDuration>) -> Self {
        match Self::try_new(sample_interval) {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        }
    }

    pub fn try_new(sample_interval: Option<SimDuration>) -> Result<Self, MetricsError> {
        if sample_interval.is_some_and(|i| i.as_nanos() == 0) {
            return Err(MetricsError::ZeroSampleInterval);
        }
        let sampling = sample_interval.is_some();
        Ok(Self {
            index: BTreeMap::new(),
            counters: Vec::new(),
            counter_series: Vec::new(),
            gauges: Vec::new(),
            histograms: Vec::new(),
            series_index: BTreeMap::new(),
            series: Vec::new(),
            interval: sample_interval,
            now: 0,
            next_due: if sampling { 0 } else { u64::MAX },
            sampling,
            sample_times: Vec::new(),
        })
    }

    /// Get or register the counter "owner.name". Panics (at the caller, through
    /// `#[track_caller]`) if that name is another kind of metric or clashes with a histogram's
    /// series; see [`Metrics::try_counter`].
    #[track_caller]
    pub fn counter(&mut self, owner: &str, name: &str) -> CounterId {
        match self.try_counter(owner, name) {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        }
    }

    /// Get or register the gauge "owner.name" (starting at 0). Panics like [`Metrics::counter`].
    #[track_caller]
    pub fn gauge(&mut self, owner: &str, name: &str) -> GaugeId {
        match self.try_gauge(owner, name) {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        }
    }

    /// Get or register the histogram "owner.name". Panics like [`Metrics::counter`].
    #[track_caller]
    pub fn histogram(&mut self, owner: &str, name: &str) -> HistogramId {
        match self.try_histogram(owner, name) {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        }
    }

    pub fn try_counter(&mut self, owner: &str, name: &str) -> Result<CounterId, MetricsError> {
        self.register(owner, name, MetricKind::Counter)
            .map(CounterId)
    }

    pub fn try_gauge(&mut self, owner: &str, name: &str) -> Result<GaugeId, MetricsError> {
        self.register(owner, name, MetricKind::Gauge).map(GaugeId)
    }

    pub fn try_histogram(&mut self, owner: &str, name: &str) -> Result<HistogramId, MetricsError> {
        self.register(owner, name, MetricKind::Histogram)
            .map(HistogramId)
    }

    fn register(&mut self, owner: &str, name: &str, kind: MetricKind) -> Result<u32, MetricsError> {
        let full = format!("{owner}.{name}");
        if let Some(entry) = self.index.get(&full) {
            return if entry.kind == kind {
                Ok(entry.slot)
            } else {
                Err(MetricsError::KindMismatch {
                    name: full,
                    existing: entry.kind,
                    requested: kind,
                })
            };
        }

        let series: Vec<(String, SeriesKind)> = match kind {
            MetricKind::Counter => vec![(full.clone(), SeriesKind::Counter)],
            MetricKind::Gauge => vec![(full.clone(), SeriesKind::Gauge)],
            MetricKind::Histogram => HISTOGRAM_SERIES
                .iter()
                .map(|&(suffix, k)| (format!("{full}.{suffix}"), k))
                .collect(),
        };
        if let Some((clash, _)) = series
            .iter()
            .find(|(s, _)| self.series_index.contains_key(s))
        {
            // A series name is either a counter's or gauge's own name, or a histogram's name
            // plus a dot-free suffix.
            let existing = if self.index.contains_key(clash) {
                clash.clone()
            } else {
                clash
                    .rsplit_once('.')
                    .map_or(clash.as_str(), |(h, _)| h)
                    .to_owned()
            };
            return Err(MetricsError::SeriesNameClash {
                name: full,
                series: clash.clone(),
                existing,
            });
        }

        let first_series = to_u32(self.series.len());
        for (series_name, series_kind) in series {
            self.series_index
                .insert(series_name.clone(), to_u32(self.series.len()));
            self.series.push(Series {
                name: series_name,
                kind: series_kind,
                points: Vec::new(),
            });
        }

        let slot = match kind {
            MetricKind::Counter => {
                self.counters.push(0);
                self.counter_series.push(first_series);
                to_u32(self.counters.len() - 1)
            }
            MetricKind::Gauge => {
                self.gauges.push(GaugeSlot {
                    value: 0.0,
                    since: self.now,
                    integral: 0.0,
                    registered_at: self.now,
                    series: first_series,
                });
                to_u32(self.gauges.len() - 1)
            }
            MetricKind::Histogram => {
                self.histograms.push(HistSlot {
                    whole: new_histogram(),
                    min: u64::MAX,
                    max: 0,
                    sum: 0,
                    saturated: 0,
                    interval: self.interval.map(|_| IntervalValues {
                        values: Vec::new(),
                        spill: None,
                        max: 0,
                    }),
                    series: first_series,
                });
                to_u32(self.histograms.len() - 1)
            }
        };
        self.index.insert(full, Entry { kind, slot });
        Ok(slot)
    }

    /// Add `n` to a counter (saturating at `u64::MAX`).
    #[inline]
    pub fn add(&mut self, id: CounterId, n: u64) {
        let c = &mut self.counters[id.0 as usize];
        *c = c.saturating_add(n);
    }

    /// Add 1 to a counter.
    #[inline]
    pub fn inc(&mut self, id: CounterId) {
        self.add(id, 1);
    }

    /// Set a gauge, as of the virtual time last given to `advance_to`.
    #[inline]
    pub fn set(&mut self, id: GaugeId, v: f64) {
        let now = self.now;
        let g = &mut self.gauges[id.0 as usize];
        g.integrate(now);
        g.value = v;
    }

    /// Add `delta` (possibly negative) to a gauge.
    #[inline]
    pub fn adjust(&mut self, id: GaugeId, delta: f64) {
        let now = self.now;
        let g = &mut self.gauges[id.0 as usize];
        g.integrate(now);
        g.value += delta;
    }

    /// Record one value; values above [`HISTOGRAM_CEILING`] go into the top bucket as the
    /// ceiling (the exact min/max/mean still see them).
    #[inline]
    pub fn record(&mut self, id: HistogramId, v: u64) {
        let h = &mut self.histograms[id.0 as usize];
        h.min = h.min.min(v);
        h.max = h.max.max(v);
        h.sum += u128::from(v);
        let clamped = if v > HISTOGRAM_CEILING {
            h.saturated += 1;
            HISTOGRAM_CEILING
        } else {
            v
        };
        record_clamped(&mut h.whole, clamped);
        if let Some(iv) = &mut h.interval {
            iv.record(v, clamped);
        }
    }

    /// Called by the engine before it processes an event at time `now` (cheap when no sample
    /// is due: one comparison). Takes a sample at every multiple T of the interval with
    /// T < `now` not taken yet; a sample at T reflects every update made by events at times
    /// <= T, because every such event has been processed once time moves past T.
    #[inline]
    pub fn advance_to(&mut self, now: SimTime) {
        let now = now.as_nanos();
        debug_assert!(
            now >= self.now,
            "virtual time went back from {}ns to {now}ns",
            self.now
        );
        // `max` keeps gauge integrals sane in release builds should time ever go back.
        self.now = self.now.max(now);
        if self.next_due < now {
            // next_due < now, so now >= 1.
            self.sample_through(now - 1);
        }
    }

    /// Called at the end of a run: samples every multiple T of the interval with T <= `end`
    /// not taken yet, and ends the gauges' time-weighted means at `end`.
    pub fn finish(&mut self, end: SimTime) {
        let end = end.as_nanos();
        debug_assert!(
            end >= self.now,
            "run ended at {end}ns, before {}ns",
            self.now
        );
        self.now = self.now.max(end);
        self.sample_through(end);
    }

    /// Takes every due sample at times <= `last`.
    #[cold]
    #[inline(never)]
    fn sample_through(&mut self, last: u64) {
        let Some(interval) = self.interval else {
            return;
        };
        while self.sampling && self.next_due <= last {
            self.take_sample(SimTime::from_nanos(self.next_due));
            match self.next_due.checked_add(interval.as_nanos()) {
                Some(next) => self.next_due = next,
                None => {
                    self.next_due = u64::MAX;
                    self.sampling = false;
                }
            }
        }
    }

    fn take_sample(&mut self, t: SimTime) {
        self.sample_times.push(t);
        for (&value, &s) in self.counters.iter().zip(&self.counter_series) {
            self.series[s as usize].points.push((t, value as f64));
        }
        for g in &self.gauges {
            self.series[g.series as usize].points.push((t, g.value));
        }
        for h in &mut self.histograms {
            let Some(iv) = &mut h.interval else {
                continue;
            };
            for (i, v) in iv.take().into_iter().enumerate() {
                self.series[h.series as usize + i].points.push((t, v));
            }
        }
    }

    /// A counter's value by full name; `None` if there is no counter of that name.
    pub fn counter_value(&self, name: &str) -> Option<u64> {
        self.slot_of(name, MetricKind::Counter)
            .map(|i| self.counters[i])
    }

    /// A gauge's current value by full name; `None` if there is no gauge of that name.
    pub fn gauge_value(&self, name: &str) -> Option<f64> {
        self.slot_of(name, MetricKind::Gauge)
            .map(|i| self.gauges[i].value)
    }

    /// A gauge's mean over virtual time, from its registration to the latest `advance_to` or
    /// `finish`, each value weighted by how long it held. `None` if no time has passed since
    /// the gauge was registered (or there is no gauge of that name).
    pub fn gauge_time_weighted_mean(&self, name: &str) -> Option<f64> {
        let g = &self.gauges[self.slot_of(name, MetricKind::Gauge)?];
        let span = self.now.saturating_sub(g.registered_at);
        if span == 0 {
            return None;
        }
        let held = self.now.saturating_sub(g.since);
        let tail = if held > 0 { g.value * held as f64 } else { 0.0 };
        Some((g.integral + tail) / span as f64)
    }

    /// A gauge's integral over virtual time, from its registration to the latest
    /// `advance_to`, in value × nanoseconds (a busy-worker gauge gives worker-nanoseconds, as
    /// a CPU accounting counter gives CPU time); `None` if there is no gauge of that name.
    /// The difference between two readings over their time apart is the mean in between.
    pub fn gauge_integral(&self, name: &str) -> Option<f64> {
        let g = &self.gauges[self.slot_of(name, MetricKind::Gauge)?];
        let held = self.now.saturating_sub(g.since);
        let tail = if held > 0 { g.value * held as f64 } else { 0.0 };
        Some(g.integral + tail)
    }

    /// A histogram's whole-run statistics by full name.
    pub fn histogram_summary(&self, name: &str) -> Option<Summary> {
        self.histogram_view(name).map(|h| h.summary())
    }

    /// A histogram's whole-run data by full name, for quantiles beyond those in [`Summary`].
    pub fn histogram_view(&self, name: &str) -> Option<HistogramView<'_>> {
        self.slot_of(name, MetricKind::Histogram)
            .map(|i| HistogramView {
                slot: &self.histograms[i],
            })
    }

    /// A series by name: a counter's or gauge's full name, or a histogram's full name plus
    /// ".p50", ".p99", ".max" or ".count". `None` when sampling is off.
    pub fn series(&self, name: &str) -> Option<&Series> {
        self.interval?;
        self.series_index
            .get(name)
            .map(|&i| &self.series[i as usize])
    }

    /// Every series name, sorted; empty when sampling is off.
    pub fn series_names(&self) -> impl Iterator<Item = &str> {
        let names = if self.interval.is_some() {
            Some(self.series_index.keys().map(String::as_str))
        } else {
            None
        };
        names.into_iter().flatten()
    }

    /// Every registered metric's full name and kind, sorted by name.
    pub fn names(&self) -> impl Iterator<Item = (&str, MetricKind)> {
        self.index.iter().map(|(n, e)| (n.as_str(), e.kind))
    }

    /// The times of the samples taken so far.
    pub fn sample_times(&self) -> &[SimTime] {
        &self.sample_times
    }

    pub fn sample_interval(&self) -> Option<SimDuration> {
        self.interval
    }

    /// The latest time given to `advance_to` or `finish`.
    pub fn now(&self) -> SimTime {
        SimTime::from_nanos(self.now)
    }

    /// An owned copy of everything, for reports.
    pub fn snapshot(&self) -> Snapshot {
        let mut snapshot = Snapshot {
            now_ns: self.now,
            sample_interval_ns: self.interval.map(|i| i.as_nanos()),
            sample_times_ns: self.sample_times.iter().map(|t| t.as_nanos()).collect(),
            counters: BTreeMap::new(),
            gauges: BTreeMap::new(),
            histograms: BTreeMap::new(),
            series: BTreeMap::new(),
        };
        for (name, entry) in &self.index {
            let slot = entry.slot as usize;
            match entry.kind {
                MetricKind::Counter => {
                    snapshot.counters.insert(name.clone(), self.counters[slot]);
                }
                MetricKind::Gauge => {
                    let gauge = GaugeSnapshot {
                        value: self.gauges[slot].value,
                        time_weighted_mean: self.gauge_time_weighted_mean(name),
                    };
                    snapshot.gauges.insert(name.clone(), gauge);
                }
                MetricKind::Histogram => {
                    let view = HistogramView {
                        slot: &self.histograms[slot],
                    };
                    snapshot.histograms.insert(name.clone(), view.summary());
                }
            }
        }
        for name in self.series_names() {
            if let Some(series) = self.series(name) {
                snapshot.series.insert(name.to_owned(), series.clone());
            }
        }
        snapshot
    }

    fn slot_of(&self, name: &str, kind: MetricKind) -> Option<usize> {
        self.index
            .get(name)
            .filter(|e| e.kind == kind)
            .map(|e| e.slot as usize)
    }
}

fn to_u32(n: usize) -> u32 {
    // Four billion metrics would exhaust memory long before this.
    u32::try_from(n).expect("more than u32::MAX metrics registered")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(n: u64) -> SimTime {
        SimTime::from_nanos(n * 1_000_000)
    }

    fn sampled(interval_ms: u64) -> Metrics {
        Metrics::new(Some(SimDuration::from_millis(interval_ms)))
    }

    fn points(m: &Metrics, name: &str) -> Vec<(u64, f64)> {
        m.series(name)
            .unwrap()
            .points
            .iter()
            .map(|&(t, v)| (t.as_nanos() / 1_000_000, v))
            .collect()
    }

    #[test]
    fn counters_are_get_or_register_and_queryable_by_full_name() {
        let mut m = Metrics::new(None);
        let q = m.counter("db", "queries_total");
        let e = m.counter("db", "errors_total");
        assert_ne!(q, e);
        assert_eq!(m.counter("db", "queries_total"), q);
        m.add(q, 3);
        m.inc(q);
        m.add(e, u64::MAX);
        m.add(e, 1);
        assert_eq!(m.counter_value("db.queries_total"), Some(4));
        assert_eq!(
            m.counter_value("db.errors_total"),
            Some(u64::MAX),
            "saturates"
        );
        assert_eq!(m.counter_value("db.nope"), None);
        assert_eq!(m.gauge_value("db.queries_total"), None, "wrong kind");
    }

    #[test]
    fn gauges_set_and_adjust() {
        let mut m = Metrics::new(None);
        let g = m.gauge("net", "in_flight");
        assert_eq!(m.gauge_value("net.in_flight"), Some(0.0));
        m.set(g, 5.0);
        m.adjust(g, -1.5);
        assert_eq!(m.gauge_value("net.in_flight"), Some(3.5));
        assert_eq!(m.counter_value("net.in_flight"), None);
    }

    #[test]
    fn histogram_basics() {
        let mut m = Metrics::new(None);
        let h = m.histogram("db", "latency");
        assert_eq!(
            m.histogram_summary("db.latency"),
            Some(Summary {
                count: 0,
                min: 0,
                max: 0,
                mean: 0.0,
                stdev: 0.0,
                p50: 0,
                p90: 0,
                p99: 0,
                p999: 0,
                saturated: 0,
            })
        );
        for v in [1_000_001, 1_000_001, 1_000_001] {
            m.record(h, v);
        }
        let s = m.histogram_summary("db.latency").unwrap();
        assert_eq!(
            (s.count, s.min, s.max, s.mean),
            (3, 1_000_001, 1_000_001, 1_000_001.0)
        );
        // HDR's bucket top would be above 1_000_001; quantiles never exceed the exact max.
        assert_eq!((s.p50, s.p999), (1_000_001, 1_000_001));
        assert!(m.histogram_summary("db.nope").is_none());
    }

    #[test]
    fn percentiles_of_a_known_data_set_are_within_hdr_precision() {
        let mut m = Metrics::new(None);
        let h = m.histogram("db", "latency");
        for v in 1..=10_000 {
            m.record(h, v);
        }
        let s = m.histogram_summary("db.latency").unwrap();
        assert_eq!(
            (s.count, s.min, s.max, s.mean),
            (10_000, 1, 10_000, 5_000.5)
        );
        let close = |got: u64, want: u64| got.abs_diff(want) * 1_000 <= want;
        for (got, want) in [
            (s.p50, 5_000),
            (s.p90, 9_000),
            (s.p99, 9_900),
            (s.p999, 9_990),
        ] {
            assert!(close(got, want), "{got} is not within 0.1% of {want}");
        }
        let view = m.histogram_view("db.latency").unwrap();
        assert!(close(view.quantile(0.25), 2_500));
        assert_eq!(view.quantile(2.0), 10_000, "q clamps to 1");
        assert_eq!(view.quantile(f64::NAN), 1, "NaN counts as 0");
        // Population stdev of 1..=n is sqrt((n² - 1) / 12).
        let want = ((1e8 - 1.0) / 12.0_f64).sqrt();
        assert!((s.stdev - want).abs() <= want * 1e-3, "stdev {}", s.stdev);
    }

    #[test]
    fn huge_values_saturate_without_panicking() {
        let mut m = sampled(10);
        let h = m.histogram("net", "rtt");
        for v in [5, HISTOGRAM_CEILING, HISTOGRAM_CEILING + 1, u64::MAX] {
            m.record(h, v);
        }
        let s = m.histogram_summary("net.rtt").unwrap();
        assert_eq!((s.count, s.min, s.max, s.saturated), (4, 5, u64::MAX, 2));
        let want_mean =
            (5 + 2 * u128::from(HISTOGRAM_CEILING) + 1 + u128::from(u64::MAX)) as f64 / 4.0;
        assert_eq!(s.mean, want_mean);
        // The quantiles see the clamped values: the top bucket holds the ceiling.
        assert!(s.p999.abs_diff(HISTOGRAM_CEILING) <= HISTOGRAM_CEILING / 1_000);
        m.finish(ms(0));
        assert_eq!(points(&m, "net.rtt.max"), [(0, u64::MAX as f64)]);
        assert_eq!(points(&m, "net.rtt.count"), [(0, 4.0)]);
    }

    #[test]
    fn samples_reflect_updates_at_or_before_their_time() {
        let mut m = sampled(10);
        let c = m.counter("db", "queries_total");
        m.advance_to(ms(0));
        m.add(c, 1);
        m.advance_to(ms(5));
        m.add(c, 1);
        assert_eq!(m.sample_times(), [ms(0)], "time 0 was passed");
        m.advance_to(ms(10));
        m.add(c, 1);
        m.advance_to(ms(10));
        m.add(c, 1);
        assert_eq!(
            m.sample_times(),
            [ms(0)],
            "events at exactly 10ms may still come"
        );
        m.advance_to(ms(11));
        m.add(c, 1);
        assert_eq!(m.sample_times(), [ms(0), ms(10)]);
        assert_eq!(points(&m, "db.queries_total"), [(0, 1.0), (10, 4.0)]);

        // Samples with no events between them repeat the value.
        m.advance_to(ms(45));
        m.add(c, 1);
        assert_eq!(
            points(&m, "db.queries_total"),
            [(0, 1.0), (10, 4.0), (20, 5.0), (30, 5.0), (40, 5.0)]
        );

        // finish() takes the tail up to and including the end, but no further.
        m.finish(ms(55));
        assert_eq!(m.sample_times(), [0, 10, 20, 30, 40, 50].map(ms));
        assert_eq!(
            m.series("db.queries_total").unwrap().value_at(ms(50)),
            Some(6.0)
        );
        m.finish(ms(55));
        assert_eq!(m.sample_times().len(), 6, "finish is idempotent");
        assert_eq!(m.counter_value("db.queries_total"), Some(6));
    }

    #[test]
    fn histogram_series_cover_one_interval_each() {
        let mut m = sampled(10);
        let h = m.histogram("db", "latency");
        m.advance_to(ms(1));
        for v in 1..=100 {
            m.record(h, v);
        }
        m.advance_to(ms(10));
        m.record(h, 1_000);
        m.advance_to(ms(25));
        m.record(h, 7);
        m.finish(ms(30));

        let count = [(0, 0.0), (10, 101.0), (20, 0.0), (30, 1.0)];
        assert_eq!(points(&m, "db.latency.count"), count);
        let p50 = m.series("db.latency.p50").unwrap();
        let p99 = m.series("db.latency.p99").unwrap();
        let max = m.series("db.latency.max").unwrap();
        assert_eq!(p50.kind, SeriesKind::HistogramP50);
        // Ranks 51 and 100 of 101 values.
        assert_eq!(p50.value_at(ms(10)), Some(51.0));
        assert_eq!(p99.value_at(ms(10)), Some(100.0));
        assert_eq!(max.value_at(ms(15)), Some(1_000.0));
        assert_eq!(max.value_at(ms(0)), None, "nothing recorded by time 0");
        assert!(max.points[2].1.is_nan(), "nothing recorded in (10, 20]");
        assert_eq!(max.value_at(ms(20)), None);
        assert_eq!(max.value_at(ms(30)), Some(7.0));
        assert_eq!(
            p99.max_over(ms(0), ms(30)),
            Some(100.0),
            "NaN points are skipped"
        );
        assert_eq!(p99.min_over(ms(0), ms(30)), Some(7.0));

        // The whole-run histogram is not reset by sampling.
        let s = m.histogram_summary("db.latency").unwrap();
        assert_eq!((s.count, s.min, s.max), (102, 1, 1_000));
    }

    #[test]
    fn busy_intervals_spill_into_hdr_precision() {
        let mut m = sampled(10);
        let h = m.histogram("db", "latency");
        let n = INTERVAL_BUFFER as u64 + 3_616;
        for v in (1..=n).rev() {
            m.record(h, v);
        }
        m.advance_to(ms(5));
        // A quiet interval after a spilled one is exact again.
        for v in [3, 1_000_003, 2] {
            m.record(h, v);
        }
        m.finish(ms(10));
        let p50 = m.series("db.latency.p50").unwrap();
        let p99 = m.series("db.latency.p99").unwrap();
        let close = |got: f64, want: f64| (got - want).abs() <= want * 1e-3;
        assert!(close(p50.value_at(ms(0)).unwrap(), 10_000.0));
        assert!(close(p99.value_at(ms(0)).unwrap(), 19_800.0));
        assert_eq!(points(&m, "db.latency.count"), [(0, n as f64), (10, 3.0)]);
        assert_eq!(
            points(&m, "db.latency.max"),
            [(0, n as f64), (10, 1_000_003.0)]
        );
        assert_eq!(p50.value_at(ms(10)), Some(3.0));
        assert_eq!(
            p99.value_at(ms(10)),
            Some(1_000_003.0),
            "HDR would say 1_000_447"
        );
    }

    #[test]
    fn value_at_and_window_queries_on_a_known_series() {
        let mut m = sampled(100);
        m.advance_to(ms(150));
        // Registered mid-run: its series starts with the first sample after registration.
        let c = m.counter("net", "packets_total");
        for t in (150..=1_000).step_by(50) {
            m.advance_to(ms(t));
            m.add(c, 5);
        }
        m.finish(ms(1_000));
        let s = m.series("net.packets_total").unwrap();
        assert_eq!(s.kind, SeriesKind::Counter);
        assert_eq!(
            s.points.first(),
            Some(&(ms(200), 10.0)),
            "the adds at 150ms and 200ms"
        );
        assert_eq!(s.points.len(), 9);
        assert_eq!(m.sample_times().len(), 11);
        assert_eq!(s.value_at(ms(100)), None, "before the first sample");
        assert_eq!(s.value_at(ms(299)), Some(10.0));
        assert_eq!(s.value_at(ms(300)), Some(20.0));
        assert_eq!(s.value_at(ms(5_000)), Some(90.0));
        // 10 increments of 5 per 100ms: 100 per second.
        assert_eq!(s.rate_over(ms(200), ms(1_000)), Some(100.0));
        assert_eq!(
            s.rate_over(ms(150), ms(1_050)),
            Some(100.0),
            "uses the samples inside"
        );
        assert_eq!(s.rate_over(ms(250), ms(350)), None, "one sample is no rate");
        assert_eq!(s.rate_over(ms(900), ms(100)), None);
        assert_eq!(s.mean_over(ms(200), ms(400)), Some(20.0));
        assert_eq!(s.max_over(ms(0), ms(450)), Some(30.0));
        assert_eq!(s.min_over(ms(450), ms(10_000)), Some(40.0));
        assert_eq!(s.mean_over(ms(201), ms(299)), None);

        let g = m.gauge("net", "queue");
        m.set(g, 1.0);
        m.finish(ms(1_100));
        let gs = m.series("net.queue").unwrap();
        assert_eq!(
            gs.rate_over(ms(0), ms(2_000)),
            None,
            "rates are for counters"
        );
    }

    #[test]
    fn histogram_count_series_gives_a_rate() {
        let mut m = sampled(100);
        let h = m.histogram("db", "latency");
        for t in (0..1_000).step_by(10) {
            m.advance_to(ms(t));
            m.record(h, 42);
        }
        m.finish(ms(1_000));
        let count = m.series("db.latency.count").unwrap();
        assert_eq!(count.value_at(ms(500)), Some(10.0));
        // The record at 0 is in the sample at 0, so the window (0, 1000] holds 99 of them.
        assert_eq!(count.rate_over(ms(0), ms(1_000)), Some(99.0));
        assert_eq!(count.rate_over(ms(300), ms(700)), Some(100.0));
    }

    #[test]
    fn gauge_time_weighted_mean_by_hand() {
        let mut m = Metrics::new(None);
        let g = m.gauge("db", "connections");
        assert_eq!(
            m.gauge_time_weighted_mean("db.connections"),
            None,
            "no time passed"
        );
        m.advance_to(ms(10));
        m.set(g, 4.0);
        m.advance_to(ms(30));
        m.set(g, 100.0);
        m.set(g, 1.0); // held for no time: weighs nothing
        m.advance_to(ms(40));
        m.adjust(g, 1.0);
        m.finish(ms(50));
        // 0 for 10ms, 4 for 20ms, 1 for 10ms, 2 for 10ms: 110 / 50.
        let mean = m.gauge_time_weighted_mean("db.connections").unwrap();
        assert!((mean - 2.2).abs() < 1e-12, "{mean}");

        // A gauge registered mid-run is averaged from its registration.
        let mut m = Metrics::new(None);
        m.advance_to(ms(20));
        let g = m.gauge("db", "late");
        m.set(g, 3.0);
        m.advance_to(ms(40));
        assert_eq!(m.gauge_time_weighted_mean("db.late"), Some(3.0));
        m.adjust(g, 3.0);
        m.finish(ms(60));
        assert_eq!(m.gauge_time_weighted_mean("db.late"), Some(4.5));
        assert_eq!(m.gauge_time_weighted_mean("db.nope"), None);
    }

    #[test]
    fn kind_mismatch_is_a_typed_error() {
        let mut m = Metrics::new(None);
        m.counter("db", "x");
        assert_eq!(
            m.try_gauge("db", "x"),
            Err(MetricsError::KindMismatch {
                name: "db.x".into(),
                existing: MetricKind::Counter,
                requested: MetricKind::Gauge,
            })
        );
        assert!(m.try_histogram("db", "x").is_err());
        assert!(m.try_counter("db", "x").is_ok());
    }

    #[test]
    #[should_panic(
        expected = "metric `db.x` is already registered as a counter, cannot register it as a gauge"
    )]
    fn kind_mismatch_panics_in_the_plain_variant() {
        let mut m = Metrics::new(None);
        m.counter("db", "x");
        m.gauge("db", "x");
    }

    #[test]
    fn series_names_may_not_clash() {
        let mut m = Metrics::new(None);
        m.histogram("db", "lat");
        assert_eq!(
            m.try_counter("db", "lat.p99"),
            Err(MetricsError::SeriesNameClash {
                name: "db.lat.p99".into(),
                series: "db.lat.p99".into(),
                existing: "db.lat".into(),
            })
        );
        m.gauge("net", "rtt.max");
        assert_eq!(
            m.try_histogram("net", "rtt"),
            Err(MetricsError::SeriesNameClash {
                name: "net.rtt".into(),
                series: "net.rtt.max".into(),
                existing: "net.rtt.max".into(),
            })
        );
        let names: Vec<_> = m.names().collect();
        assert_eq!(
            names,
            [
                ("db.lat", MetricKind::Histogram),
                ("net.rtt.max", MetricKind::Gauge)
            ]
        );
    }

    #[test]
    fn zero_interval_is_rejected() {
        let zero = Some(SimDuration::from_nanos(0));
        assert_eq!(
            Metrics::try_new(zero).err(),
            Some(MetricsError::ZeroSampleInterval)
        );
    }

    #[test]
    fn without_an_interval_there_are_no_series() {
        let mut m = Metrics::new(None);
        let c = m.counter("db", "q");
        let h = m.histogram("db", "lat");
        m.advance_to(ms(1_000));
        m.add(c, 1);
        m.record(h, 5);
        m.finish(SimTime::from_nanos(u64::MAX));
        assert!(m.series("db.q").is_none());
        assert_eq!(m.series_names().count(), 0);
        assert!(m.sample_times().is_empty());
        assert_eq!(m.histogram_summary("db.lat").unwrap().count, 1);
    }

    #[test]
    fn names_and_snapshot_are_in_name_order() {
        let mut m = sampled(10);
        let z = m.counter("zeta", "a");
        let h = m.histogram("alpha", "lat");
        let g = m.gauge("mid", "g");
        m.add(z, 2);
        m.set(g, 1.5);
        m.advance_to(ms(5));
        m.record(h, 9);
        m.finish(ms(10));
        let names: Vec<_> = m.names().map(|(n, _)| n).collect();
        assert_eq!(names, ["alpha.lat", "mid.g", "zeta.a"]);
        let series: Vec<_> = m.series_names().collect();
        let want = [
            "alpha.lat.count",
            "alpha.lat.max",
            "alpha.lat.p50",
            "alpha.lat.p99",
            "mid.g",
            "zeta.a",
        ];
        assert_eq!(series, want);

        let snap = m.snapshot();
        assert_eq!(snap.counters["zeta.a"], 2);
        assert_eq!(snap.histograms["alpha.lat"].count, 1);
        assert_eq!(snap.gauges["mid.g"].time_weighted_mean, Some(1.5));
        let json = serde_json::to_string(&snap).unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["sample_times_ns"], serde_json::json!([0, 10_000_000]));
        assert_eq!(v["series"]["alpha.lat.max"]["kind"], "histogram_max");
        // An empty interval's quantile is NaN, which JSON spells null.
        assert_eq!(
            v["series"]["alpha.lat.max"]["points"],
            serde_json::json!([[0, null], [10_000_000, 9.0]])
        );
        assert_eq!(
            v["series"]["zeta.a"]["points"],
            serde_json::json!([[0, 2.0], [10_000_000, 2.0]])
        );
        let series_json = &json[json.find("\"series\"").unwrap()..];
        let pos = |s: &str| series_json.find(&format!("\"{s}\":")).unwrap();
        assert!(pos("alpha.lat.count") < pos("mid.g") && pos("mid.g") < pos("zeta.a"));
        assert_eq!(
            json,
            serde_json::to_string(&m.snapshot()).unwrap(),
            "deterministic"
        );
    }

    proptest! {
        /// Whatever the event times, the sample at T holds exactly the updates made at times
        /// <= T, samples land on every multiple of the interval, and the per-interval counts
        /// add up to the whole run's.
        #[test]
        fn samples_match_a_replay(events in prop::collection::vec((0_u64..35, 0_u64..5), 0..60)) {
            let mut m = sampled(10);
            let c = m.counter("p", "c");
            let h = m.histogram("p", "h");
            let mut t = 0;
            let mut log = Vec::new();
            for (dt, n) in events {
                t += dt;
                m.advance_to(ms(t));
                m.add(c, n);
                m.record(h, n);
                log.push((t, n));
            }
            m.finish(ms(t));
            let times = m.sample_times();
            prop_assert_eq!(times.len() as u64, t / 10 + 1);
            let series = m.series("p.c").unwrap();
            for (i, &(at, v)) in series.points.iter().enumerate() {
                prop_assert_eq!(at, ms(10 * i as u64));
                prop_assert_eq!(times[i], at);
                let want: u64 = log.iter().filter(|&&(et, _)| ms(et) <= at).map(|&(_, n)| n).sum();
                prop_assert_eq!(v, want as f64);
            }
            // Records after the last multiple of the interval are in no sample.
            let last = ms(t / 10 * 10);
            let counts: f64 = m.series("p.h.count").unwrap().points.iter().map(|&(_, v)| v).sum();
            prop_assert_eq!(counts, log.iter().filter(|&&(et, _)| ms(et) <= last).count() as f64);
        }
    }
}
