//! Checks and expressions judged on metrics built by hand, where every number is known: the
//! scalar and series semantics of each kind of metric and function, every check holding and
//! failing with the numbers in its detail, no vacuous passes, and the errors a scenario author
//! meets (with their suggestions and fields).

use faultline::check::{Check, CheckClass, CheckError, Expr, Outcome, Window};
use faultline::model::queueing::{Job, Source, Station};
use faultline::report::Unit;
use faultline::{Dist, Metrics, Scalar, Sim, SimConfig, SimDuration, SimTime};

fn secs(s: u64) -> SimTime {
    SimTime::from_nanos(s * 1_000_000_000)
}

fn ms(v: u64) -> u64 {
    v * 1_000_000
}

fn window(from: u64, until: u64) -> Option<Window> {
    Some(Window::new(secs(from), secs(until)))
}

fn expr(text: &str) -> Expr {
    match text.parse() {
        Ok(e) => e,
        Err(e) => panic!("{text:?}: {e}"),
    }
}

fn check(ron_text: &str) -> Check {
    match ron::from_str::<Check>(ron_text) {
        Ok(c) => c,
        Err(e) => panic!("{ron_text}: {e}"),
    }
}

/// Per second i (0..10), at i + 0.5 s.
const SENT: [u64; 10] = [10, 10, 10, 10, 10, 0, 10, 10, 10, 10];
const OK: [u64; 10] = [10, 10, 10, 10, 2, 0, 5, 10, 10, 10];
const QUEUE: [f64; 10] = [1.0, 2.0, 3.0, 4.0, 20.0, 30.0, 8.0, 4.0, 2.0, 1.0];

/// Ten seconds sampled every second. In second i (at i + 0.5 s) `users` sends SENT[i]
/// requests of which OK[i] succeed, `api.queue_len` is set to QUEUE[i], and three latencies
/// of 10, 20 and 30 ms are recorded, plus 250 ms in second 4 and 800 ms in second 5. So the
/// sample at k s holds second k - 1; the sample at 0 holds nothing. `users.errors_total`
/// never moves and the `api.idle_latency` histogram records nothing.
fn run() -> Metrics {
    let mut m = Metrics::new(Some(SimDuration::from_secs(1)));
    let sent = m.counter("users", "sent_total");
    let ok = m.counter("users", "ok_total");
    m.counter("users", "errors_total");
    let queue = m.gauge("api", "queue_len");
    let latency = m.histogram("users", "latency");
    m.histogram("api", "idle_latency");
    for i in 0..10 {
        m.advance_to(SimTime::from_nanos(i * 1_000_000_000 + 500_000_000));
        m.add(sent, SENT[i as usize]);
        m.add(ok, OK[i as usize]);
        m.set(queue, QUEUE[i as usize]);
        for v in [10, 20, 30] {
            m.record(latency, ms(v));
        }
        match i {
            4 => m.record(latency, ms(250)),
            5 => m.record(latency, ms(800)),
            _ => {}
        }
    }
    m.finish(secs(10));
    assert_eq!(m.sample_times().len(), 11);
    m
}

fn scalar(m: &Metrics, text: &str, w: Option<Window>) -> Option<f64> {
    let e = expr(text);
    assert_eq!(e.resolve(m), Ok(()), "{text}");
    e.scalar(m, w)
}

fn series(m: &Metrics, text: &str) -> Vec<f64> {
    let e = expr(text);
    assert_eq!(e.resolve_series(m), Ok(()), "{text}");
    let points = e.series(m).unwrap();
    let times: Vec<u64> = points
        .iter()
        .map(|(t, _)| t.as_nanos() / 1_000_000_000)
        .collect();
    assert_eq!(
        times,
        (0..=10).collect::<Vec<_>>(),
        "{text}: one point per sample"
    );
    points.into_iter().map(|(_, v)| v).collect()
}

/// Series equality with NaN equal to NaN.
fn same(got: &[f64], want: &[f64]) -> bool {
    got.len() == want.len()
        && got
            .iter()
            .zip(want)
            .all(|(g, w)| (g.is_nan() && w.is_nan()) || g == w)
}

const NAN: f64 = f64::NAN;

// ---------------------------------------------------------------------------------------------
// Scalars
// ---------------------------------------------------------------------------------------------

#[test]
fn counters_total_and_increase_in_a_window() {
    let m = run();
    assert_eq!(scalar(&m, "users.ok_total", None), Some(77.0));
    // ok at 5 s (42) minus ok at 2 s (20).
    assert_eq!(scalar(&m, "users.ok_total", window(2, 5)), Some(22.0));
    assert_eq!(scalar(&m, "users.ok_total", window(0, 10)), Some(77.0));
    assert_eq!(scalar(&m, "users.errors_total", window(0, 10)), Some(0.0));
    assert_eq!(
        scalar(&m, "users.ok_total", window(20, 30)),
        None,
        "no sample in the window"
    );
    assert_eq!(
        scalar(&m, "users.ok_total", window(10, 30)),
        None,
        "a window covering no time of the run"
    );
}

#[test]
fn a_counter_registered_mid_run_starts_from_zero() {
    let mut m = Metrics::new(Some(SimDuration::from_secs(1)));
    let early = m.gauge("early", "level");
    m.set(early, 2.0);
    m.advance_to(SimTime::from_nanos(3_500_000_000));
    let late = m.counter("late", "x_total");
    m.add(late, 4);
    m.advance_to(SimTime::from_nanos(5_500_000_000));
    m.add(late, 6);
    m.finish(secs(6));
    let s = m.series("late.x_total").unwrap();
    assert_eq!(s.points.first(), Some(&(secs(4), 4.0)));
    assert_eq!(scalar(&m, "late.x_total", window(0, 6)), Some(10.0));
    assert_eq!(scalar(&m, "late.x_total", window(4, 6)), Some(6.0));
    assert_eq!(scalar(&m, "rate(late.x_total)", window(2, 6)), Some(2.5));
    // The first point counts the increase since 0.
    assert!(same(
        &expr("rate(late.x_total)")
            .series(&m)
            .unwrap()
            .iter()
            .map(|p| p.1)
            .collect::<Vec<_>>(),
        &[4.0, 0.0, 6.0]
    ));
    // A pointwise ratio keeps the times both series have.
    let ratio = expr("ratio(late.x_total, early.level)").series(&m).unwrap();
    assert_eq!(ratio, [(secs(4), 2.0), (secs(5), 2.0), (secs(6), 5.0)]);
    assert_eq!(expr("early.level").series(&m).unwrap().len(), 7);
}

#[test]
fn gauges_time_weighted_over_the_run_and_sample_mean_in_a_window() {
    let m = run();
    // 0 for 0.5 s, then QUEUE[0..9] for a second each, QUEUE[9] for the last 0.5 s.
    let want = (QUEUE[..9].iter().sum::<f64>() + 0.5 * QUEUE[9]) / 10.0;
    let got = scalar(&m, "api.queue_len", None).unwrap();
    assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    assert!((got - 7.45).abs() < 1e-12);
    assert_eq!(
        Some(got),
        m.gauge_time_weighted_mean("api.queue_len"),
        "the registry's figure"
    );
    // Samples at 2, 3, 4 and 5 s: QUEUE[1..5].
    assert_eq!(scalar(&m, "api.queue_len", window(2, 5)), Some(29.0 / 4.0));
    assert_eq!(scalar(&m, "api.queue_len", window(20, 30)), None);
}

#[test]
fn histogram_statistics_whole_run_and_worst_interval() {
    let m = run();
    let summary = m.histogram_summary("users.latency").unwrap();
    assert_eq!(summary.count, 32);
    assert_eq!(scalar(&m, "users.latency.count", None), Some(32.0));
    assert_eq!(scalar(&m, "users.latency.max", None), Some(ms(800) as f64));
    assert_eq!(scalar(&m, "users.latency.min", None), Some(ms(10) as f64));
    assert_eq!(
        scalar(&m, "users.latency.mean", None),
        Some(ms(1_650) as f64 / 32.0)
    );
    for (stat, q) in [
        ("p50", summary.p50),
        ("p90", summary.p90),
        ("p99", summary.p99),
        ("p999", summary.p999),
    ] {
        let text = format!("users.latency.{stat}");
        assert_eq!(scalar(&m, &text, None), Some(q as f64), "{stat}");
    }
    assert!((summary.p50 as f64 - ms(20) as f64).abs() <= ms(20) as f64 * 1e-3);
    assert_eq!(summary.p99, ms(800), "rank 32 of 32 is the max");
    // Ranks 29 and 32 of 32.
    assert!((summary.p90 as f64 - ms(30) as f64).abs() <= ms(30) as f64 * 1e-3);
    assert_eq!(summary.p999, ms(800));

    // The worst interval: intervals ending at 3, 4 and 5 s hold second 4's 250 ms.
    assert_eq!(
        scalar(&m, "users.latency.p99", window(2, 5)),
        Some(ms(250) as f64)
    );
    assert_eq!(
        scalar(&m, "users.latency.max", window(2, 5)),
        Some(ms(250) as f64)
    );
    assert_eq!(
        scalar(&m, "users.latency.p50", window(2, 5)),
        Some(ms(20) as f64)
    );
    assert_eq!(
        scalar(&m, "users.latency.p99", window(5, 8)),
        Some(ms(800) as f64)
    );
    // The point at 6 s stands for (5 s, 6 s], before the window [6 s, 9 s].
    assert_eq!(
        scalar(&m, "users.latency.p99", window(6, 9)),
        Some(ms(30) as f64)
    );
    // Counts in (2 s, 5 s]: 3 + 3 + 4.
    assert_eq!(scalar(&m, "users.latency.count", window(2, 5)), Some(10.0));
    assert_eq!(scalar(&m, "users.latency.count", window(0, 10)), Some(32.0));
    // No windowed form.
    for stat in ["mean", "min", "p90", "p999"] {
        let text = format!("users.latency.{stat}");
        assert_eq!(scalar(&m, &text, window(2, 5)), None, "{stat}");
    }
    // Nothing recorded: no quantile, a count of 0.
    assert_eq!(scalar(&m, "api.idle_latency.p99", None), None);
    assert_eq!(scalar(&m, "api.idle_latency.mean", None), None);
    assert_eq!(scalar(&m, "api.idle_latency.count", None), Some(0.0));
    assert_eq!(scalar(&m, "api.idle_latency.p99", window(0, 10)), None);
    assert_eq!(
        scalar(&m, "api.idle_latency.count", window(0, 10)),
        Some(0.0)
    );
}

#[test]
fn rates_per_second_of_virtual_time() {
    let m = run();
    assert_eq!(scalar(&m, "rate(users.ok_total)", None), Some(7.7));
    assert_eq!(scalar(&m, "rate(users.ok_total)", window(0, 4)), Some(10.0));
    assert_eq!(
        scalar(&m, "rate(users.ok_total)", window(4, 7)),
        Some(7.0 / 3.0)
    );
    // A window past the end of the run is read up to its last sample, not diluted.
    assert_eq!(
        scalar(&m, "rate(users.ok_total)", window(8, 20)),
        Some(10.0)
    );
    assert_eq!(scalar(&m, "rate(users.latency.count)", None), Some(3.2));
    assert_eq!(
        scalar(&m, "rate(users.latency.count)", window(2, 5)),
        Some(10.0 / 3.0)
    );
    assert_eq!(scalar(&m, "rate(users.errors_total)", None), Some(0.0));

    let mut before_time = Metrics::new(Some(SimDuration::from_secs(1)));
    before_time.counter("a", "b");
    assert_eq!(
        expr("rate(a.b)").scalar(&before_time, None),
        None,
        "no time passed"
    );
}

#[test]
fn ratios_and_aggregates() {
    let m = run();
    assert_eq!(
        scalar(&m, "ratio(users.ok_total, users.sent_total)", None),
        Some(77.0 / 90.0)
    );
    // (2 + 0 + 5) / (10 + 0 + 10).
    assert_eq!(
        scalar(&m, "ratio(users.ok_total, users.sent_total)", window(4, 7)),
        Some(0.35)
    );
    assert_eq!(
        scalar(&m, "ratio(users.ok_total, users.errors_total)", None),
        None,
        "over 0"
    );
    assert_eq!(
        scalar(&m, "ratio(users.errors_total, users.ok_total)", None),
        Some(0.0)
    );
    assert_eq!(
        scalar(
            &m,
            "ratio(users.latency.p99, users.latency.p50)",
            window(2, 5)
        ),
        Some(12.5)
    );

    assert_eq!(scalar(&m, "max(api.queue_len)", None), Some(30.0));
    assert_eq!(scalar(&m, "max(api.queue_len)", window(7, 10)), Some(8.0));
    assert_eq!(
        scalar(&m, "min(api.queue_len)", None),
        Some(0.0),
        "the sample at 0"
    );
    assert_eq!(scalar(&m, "min(api.queue_len)", window(1, 10)), Some(1.0));
    assert_eq!(scalar(&m, "mean(api.queue_len)", None), Some(75.0 / 11.0));
    assert_eq!(scalar(&m, "last(api.queue_len)", None), Some(1.0));
    assert_eq!(scalar(&m, "last(api.queue_len)", window(0, 6)), Some(30.0));
    assert_eq!(
        scalar(&m, "max(rate(users.ok_total))", window(4, 7)),
        Some(5.0)
    );
    assert_eq!(
        scalar(&m, "min(users.latency.p99)", None),
        Some(ms(30) as f64),
        "NaN skipped"
    );
    assert_eq!(scalar(&m, "max(api.idle_latency.p99)", None), None);
}

// ---------------------------------------------------------------------------------------------
// Series
// ---------------------------------------------------------------------------------------------

#[test]
fn series_of_each_kind() {
    let m = run();
    let running_ok = [
        0.0, 10.0, 20.0, 30.0, 40.0, 42.0, 42.0, 47.0, 57.0, 67.0, 77.0,
    ];
    assert!(same(&series(&m, "users.ok_total"), &running_ok));
    let queue = [0.0, 1.0, 2.0, 3.0, 4.0, 20.0, 30.0, 8.0, 4.0, 2.0, 1.0];
    assert!(same(&series(&m, "api.queue_len"), &queue));
    let p99 = [
        NAN, 30.0, 30.0, 30.0, 30.0, 250.0, 800.0, 30.0, 30.0, 30.0, 30.0,
    ]
    .map(|v| v * 1e6);
    assert!(same(&series(&m, "users.latency.p99"), &p99));
    let count = [0.0, 3.0, 3.0, 3.0, 3.0, 4.0, 4.0, 3.0, 3.0, 3.0, 3.0];
    assert!(same(&series(&m, "users.latency.count"), &count));
    // Per-interval increase over one second; none at 0, which covers no time.
    let rate = [NAN, 10.0, 10.0, 10.0, 10.0, 2.0, 0.0, 5.0, 10.0, 10.0, 10.0];
    assert!(same(&series(&m, "rate(users.ok_total)"), &rate));
    let count_rate = [NAN, 3.0, 3.0, 3.0, 3.0, 4.0, 4.0, 3.0, 3.0, 3.0, 3.0];
    assert!(same(&series(&m, "rate(users.latency.count)"), &count_rate));
    // Increments over increments; NaN at 0 and at 6 s, where nothing was sent.
    let success = [NAN, 1.0, 1.0, 1.0, 1.0, 0.2, NAN, 0.5, 1.0, 1.0, 1.0];
    let got = series(&m, "ratio(users.ok_total, users.sent_total)");
    assert!(same(&got, &success), "{got:?}");
    // Pointwise otherwise: a counter's total over a gauge, NaN where the gauge is 0.
    let pointwise = series(&m, "ratio(users.ok_total, api.queue_len)");
    assert!(pointwise[0].is_nan());
    assert_eq!(pointwise[6], 42.0 / 30.0);
    assert_eq!(pointwise[10], 77.0);
    let running_max = [0.0, 1.0, 2.0, 3.0, 4.0, 20.0, 30.0, 30.0, 30.0, 30.0, 30.0];
    assert!(same(&series(&m, "max(api.queue_len)"), &running_max));
    let running_min_p99 = [
        NAN, 30.0, 30.0, 30.0, 30.0, 30.0, 30.0, 30.0, 30.0, 30.0, 30.0,
    ]
    .map(|v| v * 1e6);
    assert!(same(
        &series(&m, "min(users.latency.p99)"),
        &running_min_p99
    ));
    let running_mean = series(&m, "mean(api.queue_len)");
    assert_eq!(running_mean[2], 1.0);
    assert_eq!(running_mean[10], 75.0 / 11.0);
    assert!(same(&series(&m, "last(api.queue_len)"), &queue));

    assert_eq!(expr("users.latency.mean").series(&m), None, "not sampled");
    assert_eq!(expr("users.nope").series(&m), None);
    let unsampled = Metrics::new(None);
    assert_eq!(expr("users.ok_total").series(&unsampled), None);
}

#[test]
fn units_follow_what_is_measured() {
    let mut m = run();
    m.histogram("users", "latency.checkout");
    m.histogram("db", "rows");
    m.histogram("q", "sojourn");
    let cases = [
        ("users.latency.p99", Unit::Nanos),
        ("users.latency.mean", Unit::Nanos),
        ("users.latency.checkout.p50", Unit::Nanos),
        ("q.sojourn.max", Unit::Nanos),
        ("users.latency.count", Unit::Count),
        ("db.rows.p99", Unit::Count),
        ("users.ok_total", Unit::Count),
        ("api.queue_len", Unit::Count),
        ("rate(users.ok_total)", Unit::PerSecond),
        ("ratio(users.ok_total, users.sent_total)", Unit::Ratio),
        ("max(users.latency.p99)", Unit::Nanos),
        ("max(rate(users.ok_total))", Unit::PerSecond),
    ];
    for (text, unit) in cases {
        assert_eq!(expr(text).unit(&m), unit, "{text}");
    }
}

// ---------------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------------

fn judge(m: &Metrics, ron_text: &str) -> Outcome {
    let c = check(ron_text);
    assert_eq!(c.validate(), Ok(()), "{ron_text}");
    assert_eq!(c.resolve(m), Ok(()), "{ron_text}");
    c.evaluate(m)
}

fn outcome(holds: bool, value: Option<f64>, at_s: Option<u64>, detail: &str) -> Outcome {
    Outcome {
        holds,
        value,
        at_ns: at_s.map(|s| secs(s).as_nanos()),
        detail: detail.to_owned(),
    }
}

#[test]
fn at_most_at_least_within() {
    let m = run();
    assert_eq!(
        judge(
            &m,
            r#"AtMost(name: "p99 stays low", value: "users.latency.p99", max: "500ms")"#
        ),
        outcome(
            false,
            Some(ms(800) as f64),
            None,
            "users.latency.p99 = 800 ms > 500 ms"
        )
    );
    assert_eq!(
        judge(
            &m,
            r#"AtMost(name: "p99 low later", value: "users.latency.p99", max: "500ms", during: ("6s", "9s"))"#
        ),
        outcome(
            true,
            Some(ms(30) as f64),
            None,
            "users.latency.p99 in [6s, 9s] = 30 ms <= 500 ms"
        )
    );
    assert_eq!(
        judge(
            &m,
            r#"AtLeast(name: "reads succeed", value: "ratio(users.ok_total, users.sent_total)", min: 0.99, during: ("7s", "10s"))"#
        ),
        outcome(
            true,
            Some(1.0),
            None,
            "ratio(users.ok_total, users.sent_total) in [7s, 10s] = 100% >= 99%"
        )
    );
    assert_eq!(
        judge(
            &m,
            r#"AtLeast(name: "reads succeed", value: "ratio(users.ok_total, users.sent_total)", min: 0.99)"#
        ),
        outcome(
            false,
            Some(77.0 / 90.0),
            None,
            "ratio(users.ok_total, users.sent_total) = 85.6% < 99%"
        )
    );
    assert_eq!(
        judge(
            &m,
            r#"Within(name: "mean latency", value: "users.latency.mean", min: "50ms", max: "52ms")"#
        ),
        outcome(
            true,
            Some(51_562_500.0),
            None,
            "users.latency.mean = 51.6 ms in [50 ms, 52 ms]"
        )
    );
    assert_eq!(
        judge(
            &m,
            r#"Within(name: "mean latency", value: "users.latency.mean", min: "52ms", max: "60ms")"#
        ),
        outcome(
            false,
            Some(51_562_500.0),
            None,
            "users.latency.mean = 51.6 ms < 52 ms"
        )
    );
    assert_eq!(
        judge(
            &m,
            r#"Within(name: "goodput", value: "rate(users.ok_total)", min: 1, max: 5)"#
        ),
        outcome(false, Some(7.7), None, "rate(users.ok_total) = 7.7/s > 5/s")
    );
    // Bounds are inclusive.
    assert!(judge(&m, r#"AtMost(name: "n", value: "users.ok_total", max: 77)"#).holds);
    assert!(!judge(&m, r#"AtMost(name: "n", value: "users.ok_total", max: 76)"#).holds);
    assert!(
        judge(
            &m,
            r#"AtLeast(name: "n", value: "users.ok_total", min: 77)"#
        )
        .holds
    );
}

#[test]
fn scalar_checks_without_data_do_not_hold() {
    let m = run();
    assert_eq!(
        judge(
            &m,
            r#"AtMost(name: "idle", value: "api.idle_latency.p99", max: "1s")"#
        ),
        outcome(
            false,
            None,
            None,
            "api.idle_latency.p99 has no value: nothing was recorded"
        )
    );
    assert_eq!(
        judge(
            &m,
            r#"AtLeast(name: "late", value: "users.ok_total", min: 0, during: ("20s", "30s"))"#
        ),
        outcome(
            false,
            None,
            None,
            "users.ok_total in [20s, 30s] has no value: no sample in the window holds a value"
        )
    );
    assert_eq!(
        judge(
            &m,
            r#"AtMost(name: "errors", value: "ratio(users.ok_total, users.errors_total)", max: 1)"#
        ),
        outcome(
            false,
            None,
            None,
            "ratio(users.ok_total, users.errors_total) has no value: its denominator `users.errors_total` is 0"
        )
    );
}

#[test]
fn always_holds_fails_and_never_passes_vacuously() {
    let m = run();
    assert_eq!(
        judge(
            &m,
            r#"Always(name: "queue bounded", value: "api.queue_len", max: 25)"#
        ),
        outcome(
            false,
            Some(30.0),
            Some(6),
            "api.queue_len = 30 > 25 at 6s (first violation; 1 of 11 samples in [0s, 10s] out of bounds)"
        )
    );
    assert_eq!(
        judge(
            &m,
            r#"Always(name: "queue bounded", value: "api.queue_len", max: 10)"#
        ),
        outcome(
            false,
            Some(20.0),
            Some(5),
            "api.queue_len = 20 > 10 at 5s (first violation; 2 of 11 samples in [0s, 10s] out of bounds)"
        )
    );
    assert_eq!(
        judge(
            &m,
            r#"Always(name: "queue bounded", value: "api.queue_len", max: 30)"#
        ),
        outcome(
            true,
            Some(30.0),
            Some(6),
            "all 11 samples of api.queue_len in [0s, 10s] are <= 30 (highest: 30 at 6s)"
        )
    );
    assert_eq!(
        judge(
            &m,
            r#"Always(name: "queue settles", value: "api.queue_len", min: 1, max: 10, during: ("7s", "10s"))"#
        ),
        outcome(
            true,
            Some(1.0),
            Some(10),
            "all 4 samples of api.queue_len in [7s, 10s] are in [1, 10] (nearest a bound: 1 at 10s)"
        )
    );
    assert_eq!(
        judge(
            &m,
            r#"Always(name: "goodput", value: "rate(users.ok_total)", min: 8, during: ("0s", "4s"))"#
        ),
        outcome(
            true,
            Some(10.0),
            Some(1),
            "all 4 samples of rate(users.ok_total) in [0s, 4s] are >= 8/s (lowest: 10/s at 1s)"
        ),
        "the point at 0 covers no time and has no rate"
    );
    assert_eq!(
        judge(
            &m,
            r#"Always(name: "p99", value: "users.latency.p99", max: "100ms")"#
        ),
        outcome(
            false,
            Some(ms(250) as f64),
            Some(5),
            "users.latency.p99 = 250 ms > 100 ms at 5s (first violation; 2 of 10 samples in [0s, 10s] out of bounds)"
        ),
        "the empty interval at 0 is skipped"
    );
    // No vacuous pass: no samples in the window, or only empty intervals.
    assert_eq!(
        judge(
            &m,
            r#"Always(name: "later", value: "api.queue_len", max: 100, during: ("20s", "30s"))"#
        ),
        outcome(
            false,
            None,
            None,
            "no sample of api.queue_len in [20s, 30s]"
        )
    );
    assert_eq!(
        judge(
            &m,
            r#"Always(name: "idle", value: "api.idle_latency.p99", max: "1s")"#
        ),
        outcome(
            false,
            None,
            None,
            "no sample of api.idle_latency.p99 in [0s, 10s]"
        )
    );
}

#[test]
fn sometimes_holds_fails_and_never_passes_vacuously() {
    let m = run();
    assert_eq!(
        judge(
            &m,
            r#"Sometimes(name: "the queue fills", value: "api.queue_len", min: 20)"#
        ),
        outcome(
            true,
            Some(20.0),
            Some(5),
            "api.queue_len = 20 >= 20 at 5s (first of 2 of 11 samples in [0s, 10s] that are)"
        )
    );
    assert_eq!(
        judge(
            &m,
            r#"Sometimes(name: "the queue overflows", value: "api.queue_len", min: 50)"#
        ),
        outcome(
            false,
            Some(30.0),
            Some(6),
            "none of 11 samples of api.queue_len in [0s, 10s] is >= 50 (highest: 30 at 6s)"
        )
    );
    assert_eq!(
        judge(
            &m,
            r#"Sometimes(name: "goodput stalls", value: "rate(users.ok_total)", max: 0, during: ("1s", "10s"))"#
        ),
        outcome(
            true,
            Some(0.0),
            Some(6),
            "rate(users.ok_total) = 0/s <= 0/s at 6s (first of 1 of 9 samples in [1s, 10s] that are)"
        )
    );
    assert_eq!(
        judge(
            &m,
            r#"Sometimes(name: "mid queue", value: "api.queue_len", min: 5, max: 7)"#
        ),
        outcome(
            false,
            Some(4.0),
            Some(4),
            "none of 11 samples of api.queue_len in [0s, 10s] is in [5, 7] (nearest a bound: 4 at 4s)"
        )
    );
    assert_eq!(
        judge(
            &m,
            r#"Sometimes(name: "later", value: "api.queue_len", min: 0, during: ("20s", "30s"))"#
        ),
        outcome(
            false,
            None,
            None,
            "no sample of api.queue_len in [20s, 30s]"
        )
    );
    assert_eq!(
        judge(
            &m,
            r#"Sometimes(name: "idle", value: "api.idle_latency.max", min: "0s")"#
        ),
        outcome(
            false,
            None,
            None,
            "no sample of api.idle_latency.max in [0s, 10s]"
        )
    );
}

/// A gauge over eight seconds: bad (50) at 0, 1 and 4 s, good (10) at 2, 3, 5, 6 and 7 s.
fn relapsing() -> Metrics {
    let mut m = Metrics::new(Some(SimDuration::from_secs(1)));
    let g = m.gauge("svc", "backlog");
    for (t, v) in [(0, 50.0), (2, 10.0), (4, 50.0), (5, 10.0)] {
        m.advance_to(secs(t));
        m.set(g, v);
    }
    m.finish(secs(7));
    let s = m.series("svc.backlog").unwrap();
    let values: Vec<f64> = s.points.iter().map(|p| p.1).collect();
    assert_eq!(values, [50.0, 50.0, 10.0, 10.0, 50.0, 10.0, 10.0, 10.0]);
    m
}

#[test]
fn eventually_must_recover_in_time_and_stay() {
    let m = relapsing();
    // Good at 2 s, inside [1 s, 3 s], but bad again at 4 s.
    assert_eq!(
        judge(
            &m,
            r#"Eventually(name: "drains", value: "svc.backlog", max: 20, after: "1s", within: "2s")"#
        ),
        outcome(
            false,
            Some(50.0),
            Some(4),
            "recovered at 2s but relapsed at 4s (svc.backlog = 50 > 20); it recovered only at 5s"
        )
    );
    // Good for good from 5 s, inside [1 s, 5 s].
    assert_eq!(
        judge(
            &m,
            r#"Eventually(name: "drains", value: "svc.backlog", max: 20, after: "1s", within: "4s")"#
        ),
        outcome(
            true,
            Some(10.0),
            Some(5),
            "recovered at 5s (svc.backlog = 10 <= 20) and stayed <= 20 to the end of the run at 7s"
        )
    );
    // From 4 s: bad at 4 s, recovered at 5 s, which is the deadline.
    assert_eq!(
        judge(
            &m,
            r#"Eventually(name: "drains", value: "svc.backlog", max: 20, after: "4s", within: "1s")"#
        ),
        outcome(
            true,
            Some(10.0),
            Some(5),
            "recovered at 5s (svc.backlog = 10 <= 20) and stayed <= 20 to the end of the run at 7s"
        )
    );
    assert_eq!(
        judge(
            &m,
            r#"Eventually(name: "drains", value: "svc.backlog", max: 20, after: "4s", within: "500ms")"#
        ),
        outcome(
            false,
            Some(50.0),
            Some(4),
            "not recovered by 4.5s: svc.backlog = 50 > 20 at 4s; it recovered only at 5s"
        )
    );
    assert_eq!(
        judge(
            &m,
            r#"Eventually(name: "never", value: "svc.backlog", max: 5, after: "0s", within: "7s")"#
        ),
        outcome(
            false,
            Some(10.0),
            Some(7),
            "not recovered by 7s: svc.backlog = 10 > 5 at 7s"
        )
    );
    // Already within bounds at `after`, and stays: recovered at once.
    assert_eq!(
        judge(
            &m,
            r#"Eventually(name: "low", value: "svc.backlog", min: 5, max: 60, after: "3s", within: "0s")"#
        ),
        outcome(
            true,
            Some(10.0),
            Some(3),
            "recovered at 3s (svc.backlog = 10 in [5, 60]) and stayed in [5, 60] to the end of the run at 7s"
        )
    );
    assert_eq!(
        judge(
            &m,
            r#"Eventually(name: "late", value: "svc.backlog", max: 20, after: "8s", within: "1m")"#
        ),
        outcome(false, None, None, "no sample of svc.backlog at or after 8s")
    );
    assert_eq!(
        judge(
            &m,
            r#"Eventually(name: "gap", value: "svc.backlog", max: 20, after: "4.2s", within: "500ms")"#
        ),
        outcome(
            false,
            None,
            None,
            "no sample of svc.backlog in [4.2s, 4.7s]"
        )
    );
}

#[test]
fn recovers_against_a_baseline() {
    let m = run();
    // Baseline: the per-interval rates at 2, 3 and 4 s (the point at 1 s stands for the
    // second before the window).
    let c = r#"Recovers(name: "goodput back to 90%", value: "rate(users.ok_total)", fraction: 0.9, baseline: ("1s", "4s"), after: "5s", within: "3s")"#;
    assert_eq!(
        judge(&m, c),
        outcome(
            true,
            Some(10.0),
            Some(8),
            "baseline 10/s in [1s, 4s], 90% of it is 9/s: recovered at 8s (rate(users.ok_total) = 10/s >= 9/s) and stayed >= 9/s to the end of the run at 10s"
        )
    );
    let c = r#"Recovers(name: "goodput back to 90%", value: "rate(users.ok_total)", fraction: 0.9, baseline: ("1s", "4s"), after: "5s", within: "2s")"#;
    assert_eq!(
        judge(&m, c),
        outcome(
            false,
            Some(5.0),
            Some(7),
            "baseline 10/s in [1s, 4s], 90% of it is 9/s: not recovered by 7s: rate(users.ok_total) = 5/s < 9/s at 7s; it recovered only at 8s"
        )
    );
    // Half of the baseline is 5/s: reached at 7 s.
    let c = r#"Recovers(name: "half", value: "rate(users.ok_total)", fraction: 0.5, baseline: ("1s", "4s"), after: "5s", within: "2s")"#;
    assert_eq!(judge(&m, c).at_ns, Some(secs(7).as_nanos()));
    assert!(judge(&m, c).holds);
    // From 0, the point at 0 has no rate and is skipped; over the dip, the baseline is low.
    let c = r#"Recovers(name: "from zero", value: "rate(users.ok_total)", fraction: 1.0, baseline: ("0s", "4s"), after: "5s", within: "3s")"#;
    let o = judge(&m, c);
    assert!(
        o.detail
            .starts_with("baseline 10/s in [0s, 4s], 100% of it is 10/s: recovered at 8s"),
        "{}",
        o.detail
    );
    // Rates 10, 2 and 0 at 4, 5 and 6 s: a baseline of 4/s, reached again at 7 s.
    let c = r#"Recovers(name: "dip", value: "rate(users.ok_total)", fraction: 1.0, baseline: ("3s", "6s"), after: "5s", within: "3s")"#;
    assert_eq!(
        judge(&m, c),
        outcome(
            true,
            Some(5.0),
            Some(7),
            "baseline 4/s in [3s, 6s], 100% of it is 4/s: recovered at 7s (rate(users.ok_total) = 5/s >= 4/s) and stayed >= 4/s to the end of the run at 10s"
        )
    );
    assert_eq!(
        judge(
            &m,
            r#"Recovers(name: "none", value: "rate(users.ok_total)", fraction: 0.9, baseline: ("20s", "30s"), after: "5s", within: "3s")"#
        ),
        outcome(
            false,
            None,
            None,
            "no sample of rate(users.ok_total) in the baseline [20s, 30s]"
        )
    );
    assert_eq!(
        judge(
            &m,
            r#"Recovers(name: "zero", value: "rate(users.errors_total)", fraction: 0.9, baseline: ("1s", "4s"), after: "5s", within: "3s")"#
        ),
        outcome(
            false,
            None,
            None,
            "the baseline of rate(users.errors_total) in [1s, 4s] is 0/s: there is nothing to recover to"
        )
    );
}

#[test]
fn checks_know_their_name_and_class() {
    let cases = [
        (
            r#"AtMost(name: "a", value: "x.y", max: 1)"#,
            CheckClass::Safety,
        ),
        (
            r#"AtLeast(name: "b", value: "x.y", min: 1)"#,
            CheckClass::Safety,
        ),
        (
            r#"Within(name: "c", value: "x.y", min: 1, max: 2)"#,
            CheckClass::Safety,
        ),
        (
            r#"Always(name: "d", value: "x.y", max: 1)"#,
            CheckClass::Safety,
        ),
        (
            r#"Sometimes(name: "e", value: "x.y", max: 1)"#,
            CheckClass::Liveness,
        ),
        (
            r#"Eventually(name: "f", value: "x.y", max: 1, after: "1s", within: "1s")"#,
            CheckClass::Liveness,
        ),
        (
            r#"Recovers(name: "g", value: "x.y", fraction: 1, baseline: ("0s", "1s"), after: "1s", within: "1s")"#,
            CheckClass::Liveness,
        ),
    ];
    for (i, (text, class)) in cases.into_iter().enumerate() {
        let c = check(text);
        assert_eq!(c.class(), class, "{text}");
        assert_eq!(c.name(), ["a", "b", "c", "d", "e", "f", "g"][i]);
        assert_eq!(c.value().as_str(), "x.y");
        assert_eq!(c.validate(), Ok(()), "{text}");
    }
}

/// RON text without the whitespace outside string literals.
fn squeeze(text: &str) -> String {
    let mut in_string = false;
    let mut out = String::new();
    for c in text.chars() {
        if c == '"' {
            in_string = !in_string;
        }
        if in_string || !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

#[test]
fn checks_round_trip_through_ron() {
    let texts = [
        r#"AtMost(name: "p99 stays low", value: "users.latency.p99", max: "500ms")"#,
        r#"AtLeast(name: "reads succeed", value: "ratio(users.ok_total.read, users.sent_total.read)", min: 0.99, during: ("2m", "5m"))"#,
        r#"Within(name: "mean sojourn matches Erlang C", value: "svc.latency.mean", min: "1.18s", max: "1.3s")"#,
        r#"Always(name: "queue bounded", value: "api.queue_len", max: 100, during: ("0s", "10m"))"#,
        r#"Sometimes(name: "the pool saturates", value: "api.pool_in_use.primary", min: 10)"#,
        r#"Eventually(name: "goodput recovers", value: "rate(users.ok_total)", min: 150, after: "5m", within: "2m")"#,
        r#"Recovers(name: "goodput back to 90%", value: "rate(users.ok_total)", fraction: 0.9, baseline: ("1m", "2m"), after: "5m", within: "2m")"#,
    ];
    for text in texts {
        let c = check(text);
        assert_eq!(c.validate(), Ok(()), "{text}");
        let written = ron::to_string(&c).unwrap();
        assert_eq!(
            squeeze(&written),
            squeeze(text),
            "written back as it was read"
        );
        assert_eq!(check(&written), c);
    }
    let c = check(texts[0]);
    let Check::AtMost { max, during, .. } = &c else {
        panic!("{c:?}")
    };
    assert_eq!(*max, Scalar::duration(SimDuration::from_millis(500)));
    assert_eq!(*during, None);
    let c = check(texts[3]);
    let Check::Always {
        min, max, during, ..
    } = &c
    else {
        panic!("{c:?}")
    };
    assert_eq!((*min, *max), (None, Some(Scalar::number(100.0))));
    assert_eq!(*during, window(0, 600));

    // Outcomes serialize for reports.
    let o = outcome(true, Some(1.5), Some(3), "d");
    let json = serde_json::to_string(&o).unwrap();
    assert_eq!(
        json,
        r#"{"holds":true,"value":1.5,"at_ns":3000000000,"detail":"d"}"#
    );
    assert_eq!(serde_json::from_str::<Outcome>(&json).unwrap(), o);
}

#[test]
fn bad_ron_is_rejected_at_load_time() {
    let err = |text: &str| match ron::from_str::<Check>(text) {
        Ok(c) => panic!("{text} loaded as {c:?}"),
        Err(e) => e.to_string(),
    };
    let e = err(r#"AtMost(name: "x", value: "users.latency.p99", max: "500ms", maximum: 3)"#);
    assert!(e.contains("maximum"), "{e}");
    let e = err(
        r#"Recovers(name: "x", value: "rate(a.b)", fraction: 0.9, baseline: ("1m", "2m"), after: "5m", within: "2m", during: ("1m", "2m"))"#,
    );
    assert!(e.contains("during"), "{e}");
    let e = err(r#"AtMost(name: "x", value: "ratio(a.b, c.d", max: 1)"#);
    assert!(e.contains("`ratio(` at column 1 is never closed"), "{e}");
    let e = err(r#"AtMost(name: "x", value: "p99(users.latency)", max: "500ms")"#);
    assert!(e.contains("did you mean `users.latency.p99`?"), "{e}");
    let e = err(r#"AtMost(name: "x", value: "", max: 1)"#);
    assert!(e.contains("empty expression"), "{e}");
    let e = err(r#"AtMost(name: "x", value: "a.b", max: "500 apples")"#);
    assert!(e.contains("500 apples"), "{e}");
    let e = err(r#"AtMost(name: "x", value: "a.b")"#);
    assert!(e.contains("max"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Validation and resolution errors
// ---------------------------------------------------------------------------------------------

fn invalid(text: &str) -> CheckError {
    match check(text).validate() {
        Ok(()) => panic!("{text} validated"),
        Err(e) => e,
    }
}

#[test]
fn validation_errors_name_the_check_and_the_field() {
    let cases = [
        (
            r#"AtMost(name: " ", value: "a.b", max: 1)"#,
            "name",
            "check \" \": name: a check needs a name",
        ),
        (
            r#"AtMost(name: "x", value: "a.b", max: NaN)"#,
            "max",
            "check \"x\": max: must be a finite number, not NaN",
        ),
        (
            r#"AtLeast(name: "x", value: "a.b", min: inf)"#,
            "min",
            "check \"x\": min: must be a finite number, not inf",
        ),
        (
            r#"Within(name: "x", value: "a.b", min: "2s", max: "1s")"#,
            "min",
            "check \"x\": min: 2s is above max 1s",
        ),
        (
            r#"Within(name: "x", value: "a.b", min: 1, max: "1s")"#,
            "max",
            "check \"x\": max: is a duration but min is a plain number: write both the same way",
        ),
        (
            r#"Always(name: "x", value: "a.b")"#,
            "min",
            "check \"x\": min: needs a bound: give min, max or both",
        ),
        (
            r#"Sometimes(name: "x", value: "a.b", during: ("0s", "1s"))"#,
            "min",
            "check \"x\": min: needs a bound: give min, max or both",
        ),
        (
            r#"Eventually(name: "x", value: "a.b", after: "1s", within: "1s")"#,
            "min",
            "check \"x\": min: needs a bound: give min, max or both",
        ),
        (
            r#"Sometimes(name: "x", value: "a.b", min: 3, max: 2)"#,
            "min",
            "check \"x\": min: 3 is above max 2",
        ),
        (
            r#"AtMost(name: "x", value: "a.b", max: 1, during: ("5m", "2m"))"#,
            "during",
            "check \"x\": during: the window [5m, 2m] must end after it starts",
        ),
        (
            r#"Always(name: "x", value: "a.b", max: 1, during: ("2m", "2m"))"#,
            "during",
            "check \"x\": during: the window [2m, 2m] must end after it starts",
        ),
        (
            r#"Recovers(name: "x", value: "rate(a.b)", fraction: 0.9, baseline: ("2m", "1m"), after: "5m", within: "2m")"#,
            "baseline",
            "check \"x\": baseline: the window [2m, 1m] must end after it starts",
        ),
        (
            r#"Recovers(name: "x", value: "rate(a.b)", fraction: 0, baseline: ("1m", "2m"), after: "5m", within: "2m")"#,
            "fraction",
            "check \"x\": fraction: must be in (0, 1] (0.9 is 90% of the baseline), not 0",
        ),
        (
            r#"Recovers(name: "x", value: "rate(a.b)", fraction: 1.5, baseline: ("1m", "2m"), after: "5m", within: "2m")"#,
            "fraction",
            "check \"x\": fraction: must be in (0, 1] (0.9 is 90% of the baseline), not 1.5",
        ),
        (
            r#"Recovers(name: "x", value: "rate(a.b)", fraction: NaN, baseline: ("1m", "2m"), after: "5m", within: "2m")"#,
            "fraction",
            "check \"x\": fraction: must be in (0, 1] (0.9 is 90% of the baseline), not NaN",
        ),
    ];
    for (text, field, message) in cases {
        let e = invalid(text);
        assert_eq!(e.field(), field, "{text}");
        assert_eq!(e.to_string(), message, "{text}");
        assert_eq!(e.check(), Some(check(text).name()));
        assert_eq!(e.suggestion(), None);
    }
    // The edges that are allowed.
    for text in [
        r#"Within(name: "x", value: "a.b", min: 1, max: 1)"#,
        r#"Recovers(name: "x", value: "rate(a.b)", fraction: 1, baseline: ("1m", "2m"), after: "5m", within: "0s")"#,
        r#"Eventually(name: "x", value: "a.b", max: 1, after: "0s", within: "0s")"#,
    ] {
        assert_eq!(check(text).validate(), Ok(()), "{text}");
    }
}

fn unresolved(m: &Metrics, text: &str) -> CheckError {
    let c = check(text);
    assert_eq!(c.validate(), Ok(()), "{text}");
    match c.resolve(m) {
        Ok(()) => panic!("{text} resolved"),
        Err(e) => e,
    }
}

#[test]
fn resolution_errors_say_what_is_wrong_and_what_was_meant() {
    let m = run();
    let cases: &[(&str, &str, Option<&str>, &str)] = &[
        (
            r#"AtLeast(name: "reads succeed", value: "ratio(users.ok_totl, users.sent_total)", min: 0.99)"#,
            "value",
            Some("users.ok_total"),
            "check \"reads succeed\": value: unknown metric `users.ok_totl` (did you mean `users.ok_total`?)",
        ),
        (
            r#"AtLeast(name: "x", value: "ratio(users.ok_total, users.sent_totl)", min: 0.99)"#,
            "value",
            Some("users.sent_total"),
            "check \"x\": value: unknown metric `users.sent_totl` (did you mean `users.sent_total`?)",
        ),
        (
            r#"AtMost(name: "x", value: "users.latncy.p99", max: "1s")"#,
            "value",
            Some("users.latency.p99"),
            "check \"x\": value: unknown metric `users.latncy.p99` (did you mean `users.latency.p99`?)",
        ),
        (
            r#"AtMost(name: "x", value: "zzz.qqq", max: 1)"#,
            "value",
            None,
            "check \"x\": value: unknown metric `zzz.qqq`",
        ),
        (
            r#"AtMost(name: "x", value: "users.latency", max: "1s")"#,
            "value",
            Some("users.latency.p99"),
            "check \"x\": value: `users.latency` is a histogram: name one of its statistics (p50, p90, p99, p999, mean, max, min, count) (did you mean `users.latency.p99`?)",
        ),
        (
            r#"AtMost(name: "x", value: "users.latency.p95", max: "1s")"#,
            "value",
            Some("users.latency.p90"),
            "check \"x\": value: `users.latency` is a histogram, and `p95` is not one of its statistics (p50, p90, p99, p999, mean, max, min, count) (did you mean `users.latency.p90`?)",
        ),
        (
            r#"Eventually(name: "x", value: "rate(api.queue_len)", max: 1, after: "1s", within: "1s")"#,
            "value",
            None,
            "check \"x\": value: rate() needs a counter or a histogram count, and `api.queue_len` is a gauge",
        ),
        (
            r#"AtMost(name: "x", value: "rate(users.latency.p99)", max: 1)"#,
            "value",
            Some("users.latency.count"),
            "check \"x\": value: rate() needs a counter or a histogram count, and `users.latency.p99` is a histogram quantile (did you mean `users.latency.count`?)",
        ),
        (
            r#"AtMost(name: "x", value: "users.latency.mean", max: "1s", during: ("1s", "5s"))"#,
            "during",
            None,
            "check \"x\": during: `users.latency.mean` has no value over a window: a histogram keeps only its p50, p99, max and count per sample interval",
        ),
        (
            r#"AtMost(name: "x", value: "users.latency.p999", max: "1s", during: ("1s", "5s"))"#,
            "during",
            Some("users.latency.p99"),
            "check \"x\": during: `users.latency.p999` has no value over a window: a histogram keeps only its p50, p99, max and count per sample interval (did you mean `users.latency.p99`?)",
        ),
        (
            r#"Always(name: "x", value: "users.latency.min", min: "1ms")"#,
            "value",
            None,
            "check \"x\": value: `users.latency.min` has no time series: a histogram is sampled only as `.p50`, `.p99`, `.max` and `.count`",
        ),
        (
            r#"AtMost(name: "x", value: "max(users.latency.p90)", max: "1s")"#,
            "value",
            Some("users.latency.p99"),
            "check \"x\": value: `users.latency.p90` has no time series: a histogram is sampled only as `.p50`, `.p99`, `.max` and `.count` (did you mean `users.latency.p99`?)",
        ),
        (
            r#"AtLeast(name: "x", value: "rate(users.ok_total)", min: "1s")"#,
            "min",
            None,
            "check \"x\": min: is a duration, but `rate(users.ok_total)` is a rate per second: write a plain number",
        ),
        (
            r#"Always(name: "x", value: "ratio(users.ok_total, users.sent_total)", max: "1s")"#,
            "max",
            None,
            "check \"x\": max: is a duration, but `ratio(users.ok_total, users.sent_total)` is a ratio: write a plain number",
        ),
    ];
    for &(text, field, suggestion, message) in cases {
        let e = unresolved(&m, text);
        assert_eq!(e.to_string(), message, "{text}");
        assert_eq!(e.field(), field, "{text}");
        assert_eq!(e.suggestion(), suggestion, "{text}");
        assert_eq!(e.check(), Some(check(text).name()));
    }
    // A duration bound on a count is allowed: a histogram's name may not say it holds time.
    assert_eq!(
        check(r#"AtMost(name: "x", value: "users.ok_total", max: "1s")"#).resolve(&m),
        Ok(())
    );
}

#[test]
fn without_samples_only_whole_run_values_resolve() {
    let mut m = Metrics::new(None);
    let c = m.counter("users", "ok_total");
    m.advance_to(secs(1));
    m.add(c, 5);
    m.finish(secs(2));
    assert!(
        check(r#"AtLeast(name: "x", value: "rate(users.ok_total)", min: 1)"#)
            .resolve(&m)
            .is_ok()
    );
    assert_eq!(expr("rate(users.ok_total)").scalar(&m, None), Some(2.5));
    let e = unresolved(&m, r#"Always(name: "x", value: "users.ok_total", min: 1)"#);
    assert_eq!(
        e.to_string(),
        "check \"x\": value: `users.ok_total` has no time series: the run takes no samples (it has no sample interval)"
    );
    let e = unresolved(
        &m,
        r#"AtLeast(name: "x", value: "rate(users.ok_total)", min: 1, during: ("0s", "1s"))"#,
    );
    assert_eq!(e.field(), "during");
    assert!(e.to_string().contains("the run takes no samples"), "{e}");
    // Evaluated anyway, it does not hold and says why.
    let o = check(r#"Always(name: "x", value: "users.ok_total", min: 1)"#).evaluate(&m);
    assert_eq!(
        o,
        outcome(
            false,
            None,
            None,
            "users.ok_total has no time series: the run takes no samples"
        )
    );
    let o = check(r#"AtLeast(name: "x", value: "max(users.ok_total)", min: 1)"#).evaluate(&m);
    assert_eq!(
        o,
        outcome(
            false,
            None,
            None,
            "max(users.ok_total) has no value: the run takes no samples"
        )
    );
}

#[test]
fn expressions_resolve_on_their_own() {
    let m = run();
    assert_eq!(
        expr("ratio(rate(users.ok_total), max(api.queue_len))").resolve(&m),
        Ok(())
    );
    let e = expr("max(users.ok_totl)").resolve(&m).unwrap_err();
    assert_eq!(
        e.to_string(),
        "value: unknown metric `users.ok_totl` (did you mean `users.ok_total`?)"
    );
    assert_eq!(e.check(), None);
    assert_eq!(e.field(), "value");
    assert_eq!(e.suggestion(), Some("users.ok_total"));
    assert_eq!(expr("users.latency.mean").resolve(&m), Ok(()));
    let e = expr("users.latency.mean").resolve_series(&m).unwrap_err();
    assert!(e.to_string().contains("has no time series"), "{e}");
    let e = expr("rate(api.queue_len)").resolve(&m).unwrap_err();
    assert_eq!(
        e.to_string(),
        "value: rate() needs a counter or a histogram count, and `api.queue_len` is a gauge"
    );
    // Names that do not resolve give no value rather than a panic.
    assert_eq!(expr("users.nope").scalar(&m, None), None);
    assert_eq!(expr("rate(api.queue_len)").scalar(&m, None), None);
    assert_eq!(expr("users.latency").scalar(&m, None), None);
}

// ---------------------------------------------------------------------------------------------
// On a real run
// ---------------------------------------------------------------------------------------------

/// A job every 10 ms into one server that takes 5 ms, for ten seconds sampled every second.
fn queue_run() -> Sim<Job> {
    let constant = |ms: u64| {
        Dist::Const(Scalar::duration(SimDuration::from_millis(ms)))
            .compile()
            .unwrap()
    };
    let mut config = SimConfig::new(7);
    config.sample_interval = Some(SimDuration::from_secs(1));
    let mut sim = Sim::with_config(config).unwrap();
    let h = sim.add_host("h").unwrap();
    let station = Station::new(1, constant(5), None).unwrap();
    let q = sim.spawn(h, "q", move || station.clone()).unwrap();
    let gap = constant(10);
    sim.spawn(h, "src", move || Source::new(q, gap.clone(), None))
        .unwrap();
    sim.run_until(secs(10));
    sim
}

#[test]
fn checks_on_a_simulated_queue() {
    let sim = queue_run();
    let m = sim.metrics();
    assert_eq!(
        expr("q.sojourn.p99").unit(m),
        Unit::Nanos,
        "a sojourn is a time"
    );
    assert_eq!(
        judge(
            m,
            r#"Within(name: "sojourn is the service time", value: "q.sojourn.mean", min: "5ms", max: "5ms")"#
        ),
        outcome(
            true,
            Some(5e6),
            None,
            "q.sojourn.mean = 5 ms in [5 ms, 5 ms]"
        )
    );
    // 99 done at 1 s, 999 at 10 s.
    assert_eq!(
        judge(
            m,
            r#"AtLeast(name: "throughput", value: "rate(q.completed_total)", min: 100, during: ("1s", "10s"))"#
        ),
        outcome(
            true,
            Some(100.0),
            None,
            "rate(q.completed_total) in [1s, 10s] = 100/s >= 100/s"
        )
    );
    let o = judge(
        m,
        r#"Always(name: "one at a time", value: "q.in_system", max: 1)"#,
    );
    assert!(o.holds, "{}", o.detail);
    assert!(
        o.detail
            .starts_with("all 11 samples of q.in_system in [0s, 10s] are <= 1"),
        "{}",
        o.detail
    );
    let o = judge(
        m,
        r#"Sometimes(name: "a queue forms", value: "q.waited_total", min: 1)"#,
    );
    assert_eq!(
        o,
        outcome(
            false,
            Some(0.0),
            Some(0),
            "none of 11 samples of q.waited_total in [0s, 10s] is >= 1 (highest: 0 at 0s)"
        )
    );
    // Per-interval points at 2..10 s: (1 s, 2 s] is the first interval inside the window.
    assert_eq!(
        judge(
            m,
            r#"Always(name: "p99 flat", value: "q.sojourn.p99", min: "5ms", max: "5ms", during: ("1s", "10s"))"#
        ),
        outcome(
            true,
            Some(5e6),
            Some(2),
            "all 9 samples of q.sojourn.p99 in [1s, 10s] are in [5 ms, 5 ms] (nearest a bound: 5 ms at 2s)"
        )
    );
}
