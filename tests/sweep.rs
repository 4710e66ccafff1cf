//! Sweeps against the mock, whose capacity is known: it serves each connection on a thread of
//! its own and answers `/` after `delay`, so `num_workers` connections carry at most
//! `num_workers / delay` requests per second. With 10 connections and 20 ms that is
//! 10 / 0.020 s = 500 req/s, and the knee must land below it (a step past it cannot keep up)
//! and, on a loaded machine too, not far below: between 60% and 100% of it.

mod util;

use std::sync::Mutex;

use pacer::engine::{self, Stop};
use pacer::mock::MockConfig;
use pacer::plan::Limits;
use pacer::sweep::{self, Hooks, Phase, Row, SweepInput, SweepPlan};
use serde_json::json;

const WORKERS: i64 = 10;
const DELAY_MS: f64 = 20.0;
/// `WORKERS / DELAY`: the most the mock can answer through the sweep's connections.
const CAPACITY: f64 = WORKERS as f64 / (DELAY_MS / 1000.0);

fn mock() -> pacer::mock::MockServer {
    util::mock(MockConfig {
        error_rate: 0.0,
        delay: util::ms(DELAY_MS),
        ..MockConfig::default()
    })
}

fn input(url: &str) -> SweepInput {
    let mut base = util::input(url, 1.0, 1.0);
    base.num_workers = Some(WORKERS);
    base.timeout = Some(2.0);
    let mut i = SweepInput::new(base);
    i.probe_duration = 0.5;
    i.step_duration = 0.5;
    // A half-second step that falls 5 ms behind on a busy machine misses 99%; 95% still
    // separates a step past the capacity, whose achieved rate is at most 520 (see below):
    // 95% of 600 is 570.
    i.min_achieved = 0.95;
    i
}

/// Runs a sweep to its end; what the hooks saw (phases started, rows ended) beside it.
fn run(i: &SweepInput) -> (sweep::Sweep, Vec<Phase>, Vec<Row>) {
    let plan = SweepPlan::new(i, &Limits::default()).unwrap();
    let phases = Mutex::new(Vec::new());
    let rows = Mutex::new(Vec::new());
    let stop = Stop::new();
    let hooks = Hooks {
        stop: &stop,
        on_start: &|p, _| phases.lock().unwrap().push(p.clone()),
        on_tick: None,
        on_probe: &|_| {},
        on_step: &|r| rows.lock().unwrap().push(r.clone()),
    };
    let t = &plan
        .probe
        .as_ref()
        .map_or(i.base.url.clone(), |p| p.url.clone());
    let target = pacer::plan::Target::parse(t).unwrap();
    let s = sweep::run(&plan, engine::resolve(&target.host, target.port), &hooks).unwrap();
    (s, phases.into_inner().unwrap(), rows.into_inner().unwrap())
}

#[test]
fn a_probed_sweep_finds_the_knee_the_mocks_capacity_implies() {
    let m = mock();
    let mut i = input(&format!("{}/", m.url()));
    i.steps = 8;
    // A step of 0.5 s whose last send is 25 ms late misses 95%: on a busy machine the steps
    // keep up by half, which every step below the peak does with room to spare.
    i.min_achieved = 0.5;
    let (s, phases, rows) = run(&i);
    let probe = s.probe.as_ref().expect("a probe ran");
    // Each connection answers at most once per delay: the peak cannot pass the capacity (one
    // delay's worth of slack for requests that started inside the window).
    assert!(
        probe.peak <= CAPACITY * 1.05 && probe.peak >= CAPACITY * 0.3,
        "peak {}",
        probe.peak
    );
    assert_eq!(probe.report["config"]["qps"], json!("max"));
    assert_eq!(probe.report["config"]["num_workers"], json!(WORKERS));
    assert_eq!(phases.len(), 9);
    assert_eq!(phases[0], Phase::Probe);
    assert_eq!(s.rows.len(), 8);
    assert_eq!(rows, s.rows, "every row was told as its step ended");
    // The steps run from a tenth of the peak to the peak.
    let asked: Vec<f64> = s.rows.iter().map(|r| r.asked).collect();
    assert_eq!(asked, SweepPlan::rates_of_peak(probe.peak, 8));
    for (r, report) in s.rows.iter().zip(&s.reports) {
        assert_eq!(report["config"]["qps"].as_f64(), Some(r.asked));
        assert_eq!(report["config"]["num_workers"], json!(WORKERS));
        assert_eq!(
            report["total_requests"],
            json!((r.asked * 0.5).round() as u64)
        );
    }
    // The knee is a step's rate, so at most the peak, which the capacity bounds.
    let knee = s.knee.qps.expect("a knee");
    assert!(
        (asked[0]..=probe.peak).contains(&knee) && asked.contains(&knee),
        "knee {knee} req/s, capacity {CAPACITY}: {:#?}",
        s.rows
    );
    let j = s.to_json();
    assert_eq!(j["kind"], json!("sweep"));
    assert_eq!(j["knee"]["qps"], json!(knee));
    assert_eq!(j["steps"].as_array().unwrap().len(), 8);
    assert_eq!(j["table"].as_array().unwrap().len(), 8);
    assert_eq!(j["probe"]["peak"], json!(probe.peak));
}

#[test]
fn steps_past_the_capacity_cannot_keep_up() {
    let m = mock();
    let mut i = input(&format!("{}/", m.url()));
    i.rates = Some(vec![600.0, 100.0, 300.0, 400.0, 800.0]);
    let (s, phases, _) = run(&i);
    assert!(s.probe.is_none());
    assert_eq!(phases.len(), 5);
    let asked: Vec<f64> = s.rows.iter().map(|r| r.asked).collect();
    assert_eq!(asked, [100.0, 300.0, 400.0, 600.0, 800.0], "ascending");
    for r in &s.rows[3..] {
        // 10 connections send at most 10 at once and then one per connection per 20 ms: over
        // the N requests' dispatch span T >= (N - 10) / 500 s, achieved <= 500 + 9 / T, under
        // 520 here, which is below 99% of 600.
        assert!(r.achieved.is_some_and(|a| a < 520.0), "{r:?}");
        assert!(!r.pass, "{r:?}");
        assert!(!r.checks[0].pass && r.checks[0].metric == "achieved_qps");
    }
    // Only the steps under the capacity can pass (each needs 95% of its rate over 0.5 s,
    // which a busy machine may deny them too): the knee, if any, is one of them.
    if let Some(knee) = s.knee.qps {
        assert!(
            [100.0, 300.0, 400.0].contains(&knee),
            "knee {knee}: {:#?}",
            s.rows
        );
    }
}

#[test]
fn thresholds_decide_which_steps_pass() {
    let m = mock();
    let mut i = input(&format!("{}/", m.url()));
    i.rates = Some(vec![50.0, 100.0]);
    i.step_duration = 0.3;
    // This test is about thresholds: keeping up by half is enough on a busy machine.
    i.min_achieved = 0.5;
    // Every answer takes the mock's 20 ms: a p50 under 1 ms cannot hold, one under 10 s must.
    i.base.thresholds = vec!["response_time_p50<=1ms".into(), "error_rate<=1%".into()];
    let (s, _, _) = run(&i);
    assert_eq!(s.knee.qps, None, "{:#?}", s.rows);
    for r in &s.rows {
        let failed: Vec<&str> = r
            .checks
            .iter()
            .filter(|c| !c.pass)
            .map(|c| c.expression.as_str())
            .collect();
        assert_eq!(failed, ["response_time_p50<=1ms"], "{r:?}");
        assert_eq!(r.checks.len(), 3, "keeping up and the two thresholds");
    }
    assert!(s.rule.contains("every threshold held"), "{}", s.rule);
    i.base.thresholds = vec!["response_time_p50<=10s".into()];
    let (s, _, _) = run(&i);
    assert!(s.rows.iter().all(|r| r.checks[1].pass), "{:#?}", s.rows);
    // The probe-free sweep's steps carry the thresholds in their reports.
    assert_eq!(
        s.reports[0]["thresholds"][0]["expression"],
        json!("response_time_p50<=10s")
    );
}

#[test]
fn a_short_step_is_judged_on_what_it_measures() {
    // `--rates 2,4 --step-duration 1s`: two and four requests a step. Before, goodput was the
    // successes over the step's active time (its last send came at 0.5 s): 3.9/s asked 2/s.
    let m = mock();
    let mut i = input(&format!("{}/", m.url()));
    i.rates = Some(vec![2.0, 4.0]);
    i.step_duration = 1.0;
    i.min_achieved = 0.5;
    let (s, _, _) = run(&i);
    assert_eq!(s.rows.len(), 2);
    for r in &s.rows {
        // Every request succeeded: goodput is the asked rate (the step's elapsed time can only
        // pass its duration, never fall short of it, in the denominator).
        assert!(
            r.goodput <= r.asked + 1e-9 && r.goodput >= r.asked * 0.5,
            "{r:?}"
        );
        // Two sends make a rate: (n - 1) / (last - first) is measured, never a false 0.
        assert!(r.achieved.is_some_and(|a| a > 0.0), "{r:?}");
    }
    // A step of one request cannot measure its rate: refused before the sweep starts.
    i.rates = Some(vec![1.0, 2.0, 50.0]);
    let e = SweepPlan::new(&i, &Limits::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("makes 1 request: a step needs at least 2"),
        "{e}"
    );
}
