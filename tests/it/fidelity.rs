//! Fidelity: queueing systems built from the public API agree with their closed forms.
//!
//! Each check runs R independent replications (seeds) and compares the mean of the per-seed
//! estimates with the analytic value, with a tolerance of t(0.999, R-1) standard errors of that
//! mean, where the standard error comes from the spread of the replications themselves. That is
//! the textbook independent-replications confidence interval: it accounts for the strong
//! autocorrelation within one run that a per-customer standard error would ignore. With R = 16,
//! t(0.9995, 15 df) = 4.07: a correct engine fails such a check about once in a thousand runs per
//! quantity. With the sample sizes below the standard error of the mean sojourn is about 0.5%,
//! so a bias of 2-3% (a wrong order, a lost event, a skewed sampler) fails it nearly every time.
//! `FAULTLINE_SLOW=1` runs ten times as many customers for a sharper check.

use faultline::model::queueing::{Job, Source, Station};
use faultline::{Dist, Scalar, Sim, SimDuration};

const REPLICATIONS: u64 = 16;
const T_999_DF15: f64 = 4.07;

/// Customers per replication, times ten under `FAULTLINE_SLOW`.
fn customers(n: u64) -> u64 {
    if std::env::var_os("FAULTLINE_SLOW").is_some() {
        n * 10
    } else {
        n
    }
}

/// Per-run estimates of one M/M/c system.
struct Estimate {
    /// Mean sojourn time (s).
    sojourn: f64,
    /// Fraction of arrivals that had to wait.
    waited: f64,
    /// Time-average number in system.
    in_system: f64,
    /// Arrival rate observed (per s).
    lambda: f64,
}

fn exp(mean_s: f64) -> faultline::Sampler {
    let mean = SimDuration::from_secs_f64(mean_s).unwrap();
    Dist::Exp {
        mean: Scalar::duration(mean),
    }
    .compile()
    .unwrap()
}

/// Poisson(lambda) arrivals to c exponential(mu) servers, `customers` customers, run to the end.
fn mmc(lambda: f64, mu: f64, c: u32, customers: u64, seed: u64) -> Estimate {
    let mut sim: Sim<Job> = Sim::new(seed);
    let h = sim.add_host("h").unwrap();
    let station = Station::new(c, exp(1.0 / mu), None).unwrap();
    let station = sim.spawn(h, "q", move || station.clone()).unwrap();
    let gap = exp(1.0 / lambda);
    sim.spawn(h, "src", move || {
        Source::new(station, gap.clone(), Some(customers))
    })
    .unwrap();
    sim.run();
    let end = sim.now();
    let m = sim.metrics();
    let completed = m.counter_value("q.completed_total").unwrap();
    assert_eq!(completed, customers, "every customer is served");
    let sojourn = m.histogram_summary("q.sojourn").unwrap();
    Estimate {
        sojourn: sojourn.mean / 1e9,
        waited: m.counter_value("q.waited_total").unwrap() as f64 / customers as f64,
        in_system: m.gauge_time_weighted_mean("q.in_system").unwrap(),
        lambda: customers as f64 / end.as_secs_f64(),
    }
}

fn erlang_c(c: u32, a: f64) -> f64 {
    // P(wait > 0) for M/M/c with offered load a = lambda / mu (< c).
    let mut term = 1.0; // a^k / k!
    let mut sum = 0.0;
    for k in 0..c {
        sum += term;
        term *= a / f64::from(k + 1);
    }
    let top = term * f64::from(c) / (f64::from(c) - a);
    top / (sum + top)
}

/// Mean and standard error of the mean of independent replications.
fn mean_se(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

fn assert_close(what: &str, xs: &[f64], expected: f64) {
    let (mean, se) = mean_se(xs);
    assert!(se > 0.0, "{what}: replications must differ");
    let z = (mean - expected).abs() / se;
    eprintln!("{what}: {mean:.4} se {se:.4} expected {expected:.4} z {z:.2}");
    assert!(
        z < T_999_DF15,
        "{what}: estimate {mean:.4} +- {se:.4} (se) vs closed form {expected:.4}: {z:.1} standard errors away"
    );
}

fn replicate(lambda: f64, mu: f64, c: u32, customers: u64) -> Vec<Estimate> {
    (1..=REPLICATIONS)
        .map(|seed| mmc(lambda, mu, c, customers, seed))
        .collect()
}

#[test]
fn mm1_mean_sojourn_matches_the_closed_form() {
    let (lambda, mu) = (0.7, 1.0);
    let runs = replicate(lambda, mu, 1, customers(100_000));
    let sojourn: Vec<f64> = runs.iter().map(|e| e.sojourn).collect();
    assert_close(
        "M/M/1 mean sojourn 1/(mu - lambda)",
        &sojourn,
        1.0 / (mu - lambda),
    );
    let waited: Vec<f64> = runs.iter().map(|e| e.waited).collect();
    assert_close("M/M/1 P(wait) = rho", &waited, lambda / mu);
}

#[test]
fn mmc_waiting_probability_and_sojourn_match_erlang_c() {
    let (lambda, mu, c) = (3.0, 1.0, 4);
    let runs = replicate(lambda, mu, c, customers(80_000));
    let pc = erlang_c(c, lambda / mu);
    let waited: Vec<f64> = runs.iter().map(|e| e.waited).collect();
    assert_close("M/M/4 P(wait > 0) (Erlang C)", &waited, pc);
    let sojourn: Vec<f64> = runs.iter().map(|e| e.sojourn).collect();
    let w = pc / (f64::from(c) * mu - lambda) + 1.0 / mu;
    assert_close("M/M/4 mean sojourn", &sojourn, w);
}

#[test]
fn littles_law_holds_on_every_run() {
    // L = lambda W holds on every sample path over a run that starts and ends empty; what is
    // left is the histogram's precision (3 significant figures: 0.1% on the mean).
    for e in replicate(3.0, 1.0, 4, 20_000)
        .iter()
        .chain(&replicate(0.7, 1.0, 1, 20_000))
    {
        let little = e.lambda * e.sojourn;
        let rel = (e.in_system - little).abs() / little;
        assert!(
            rel < 0.002,
            "L = {:.4} but lambda W = {little:.4} ({:.3}% off)",
            e.in_system,
            rel * 100.0
        );
    }
}

#[test]
fn erlang_c_reference_values() {
    // Sanity of the closed form itself: c = 1 reduces to rho; a textbook value for c = 2.
    assert!((erlang_c(1, 0.7) - 0.7).abs() < 1e-12);
    // c = 2, a = 1: C = (1/2 * 2) / (1 + 1 + 1) = 1/3.
    assert!((erlang_c(2, 1.0) - 1.0 / 3.0).abs() < 1e-12);
}
