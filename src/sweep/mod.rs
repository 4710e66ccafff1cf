//! Sweeps: how much a target takes. A saturation probe (closed loop over the run's connections)
//! measures the peak throughput; then constant-rate steps from 10% to 100% of that peak (or the
//! rates given) each run for the same time; each step passes or fails its checks ([`table`]),
//! and the **knee** is the highest asked rate whose step passed.
//!
//! This module owns what a sweep is ([`SweepInput`] → validated [`SweepPlan`]), running it step
//! by step on the engine with one stop switch ([`run`]), and its JSON ([`Sweep::to_json`]).
//! The table, the checks and the knee rule are [`table`]'s; every step's report is
//! [`report::to_json`]'s, so a step reads exactly as a `bench` run at that rate. Both fronts
//! (`pacer sweep`, `POST /sweep`) build the same input; printing and the API's run registry are
//! theirs.
//!
//! Every run of a sweep, the probe included, uses the same connection cap (`num_workers`): the
//! peak is what the target gives through that many connections, and a step above it queues for
//! a connection (and counts `not sent` past the timeout) rather than opening more. Against a
//! target that serves each request in D seconds, the capacity is `num_workers / D` requests per
//! second, and that is where the knee lands.

pub mod table;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use crate::engine::{self, Controls, EngineError, OnTick, Progress, Stop};
use crate::live::{self, otlp};
use crate::plan::{Input, Limits, Plan, PlanError, Rate, defaults};
use crate::report;
pub use table::{Check, Knee, Row};

/// Default `--steps`: constant-rate steps after the probe.
pub const STEPS: usize = 8;
/// Most steps (or `--rates`) one sweep may have.
pub const MAX_STEPS: usize = 100;
/// Default `--probe-duration` and `--step-duration`, seconds.
pub const PROBE_DURATION: f64 = 10.0;
pub const STEP_DURATION: f64 = 10.0;
/// Default `--min-achieved`: the share of the asked rate a step must reach to pass.
pub const MIN_ACHIEVED: f64 = 0.99;
/// The first step's share of the peak; the last is the peak itself.
pub const FIRST_SHARE: f64 = 0.1;
/// The fewest requests a step may make: an achieved rate is measured between the first send
/// and the last, so one request has none, and would fail the step for it.
pub const MIN_STEP_REQUESTS: u64 = 2;

/// The requests a step at `rate` for `secs` schedules, as a run counts them.
fn step_requests(rate: f64, secs: f64) -> u64 {
    (rate * secs).round().max(0.0) as u64
}

/// What the user asked of a sweep, before validation.
#[derive(Clone, Debug)]
pub struct SweepInput {
    /// Every run's settings; its `qps` and `duration` are set per run.
    pub base: Input,
    /// The step rates; `None`: probe, then [`SweepInput::steps`] steps from 10% to 100% of the
    /// peak.
    pub rates: Option<Vec<f64>>,
    pub steps: usize,
    pub probe_duration: f64,
    pub step_duration: f64,
    /// Seconds between two runs.
    pub pause: f64,
    pub min_achieved: f64,
}

impl SweepInput {
    /// A sweep of `base` with every sweep setting at its default.
    pub fn new(base: Input) -> SweepInput {
        SweepInput {
            base,
            rates: None,
            steps: STEPS,
            probe_duration: PROBE_DURATION,
            step_duration: STEP_DURATION,
            pause: 0.0,
            min_achieved: MIN_ACHIEVED,
        }
    }

    /// The input of the probe: closed loop for the probe's duration.
    pub fn probe_input(&self) -> Input {
        let mut i = self.run_input(Rate::Max, self.probe_duration);
        // A closed loop has no arrival times to draw, and real-time scheduling would let its
        // threads, which never sleep, starve their cores: both are for the steps.
        i.poisson = false;
        i.realtime = false;
        // The probe measures the peak; the steps are what the thresholds judge.
        i.thresholds.clear();
        i
    }

    /// The input of one step.
    pub fn step_input(&self, rate: f64) -> Input {
        self.run_input(Rate::PerSecond(rate), self.step_duration)
    }

    fn run_input(&self, qps: Rate, duration: f64) -> Input {
        let mut i = self.base.clone();
        i.qps = qps;
        i.duration = duration;
        i.num_workers = Some(self.workers() as i64);
        i
    }

    /// The connection cap of every run: the one given, else a closed loop's default.
    pub fn workers(&self) -> usize {
        match self.base.num_workers {
            Some(n) if n > 0 => usize::try_from(n).unwrap_or(usize::MAX),
            _ => defaults::SATURATION_WORKERS,
        }
    }
}

/// Why a sweep cannot be planned: one of its own fields (named as the API names them; the
/// command line maps them to its flags), or a run it would make.
#[derive(Clone, Debug, PartialEq)]
pub enum SweepError {
    Invalid { field: &'static str, msg: String },
    Plan(PlanError),
}

impl std::fmt::Display for SweepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SweepError::Invalid { field, msg } => write!(f, "{field}: {msg}"),
            SweepError::Plan(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for SweepError {}

fn invalid(field: &'static str, msg: impl Into<String>) -> SweepError {
    SweepError::Invalid {
        field,
        msg: msg.into(),
    }
}

/// The sweep's own fields: counts, shares and durations in range, rates positive and finite.
/// Run settings are [`Plan::new`]'s (each run is planned in [`SweepPlan::new`]).
pub fn check(input: &SweepInput, limits: &Limits) -> Result<(), SweepError> {
    let secs = |field: &'static str, x: f64, zero_ok: bool| {
        let ok = x.is_finite() && (x > 0.0 || (zero_ok && x == 0.0));
        if !ok {
            let what = if zero_ok { ">= 0" } else { "> 0" };
            return Err(invalid(field, format!("must be {what} seconds (got {x})")));
        }
        if x > limits.max_duration {
            return Err(invalid(
                field,
                format!("must be at most {} seconds (got {x})", limits.max_duration),
            ));
        }
        Ok(())
    };
    secs("step_duration", input.step_duration, false)?;
    secs("pause", input.pause, true)?;
    match &input.rates {
        None => {
            secs("probe_duration", input.probe_duration, false)?;
            if !(1..=MAX_STEPS).contains(&input.steps) {
                return Err(invalid(
                    "steps",
                    format!("must be 1 to {MAX_STEPS} (got {})", input.steps),
                ));
            }
        }
        Some(rates) => {
            if rates.is_empty() || rates.len() > MAX_STEPS {
                return Err(invalid(
                    "rates",
                    format!("must list 1 to {MAX_STEPS} rates (got {})", rates.len()),
                ));
            }
            if let Some(bad) = rates.iter().find(|r| !(r.is_finite() && **r > 0.0)) {
                return Err(invalid(
                    "rates",
                    format!("every rate must be > 0 (got {bad})"),
                ));
            }
            if let Some(big) = rates.iter().find(|r| **r > limits.max_qps) {
                return Err(invalid(
                    "rates",
                    format!("every rate must be at most {} (got {big})", limits.max_qps),
                ));
            }
            if let Some(low) = rates
                .iter()
                .find(|r| step_requests(**r, input.step_duration) < MIN_STEP_REQUESTS)
            {
                let n = step_requests(*low, input.step_duration);
                return Err(invalid(
                    "rates",
                    format!(
                        "{low} req/s for a {} step makes {n} request{}: a step needs at least \
                         {MIN_STEP_REQUESTS} to measure the rate it achieved; raise the rate or \
                         the step duration",
                        report::secs_text(input.step_duration),
                        if n == 1 { "" } else { "s" }
                    ),
                ));
            }
        }
    }
    length(input, limits)?;
    if input.base.stages.is_some() {
        return Err(invalid(
            "stages",
            "does not apply to a sweep: it sets each step's rate itself",
        ));
    }
    if !(input.min_achieved > 0.0 && input.min_achieved <= 1.0) {
        return Err(invalid(
            "min_achieved",
            format!(
                "must be a share of the asked rate in (0, 1] (got {})",
                input.min_achieved
            ),
        ));
    }
    Ok(())
}

/// The sweep's whole length, probe, steps and the pauses between runs, within
/// `--max-duration`: a sweep holds its run slot all that time, as one long run would.
fn length(input: &SweepInput, limits: &Limits) -> Result<(), SweepError> {
    let (probe, steps) = match &input.rates {
        None => (Some(input.probe_duration), input.steps),
        Some(rates) => (None, rates.len()),
    };
    let runs = steps + usize::from(probe.is_some());
    let pauses = runs.saturating_sub(1) as f64 * input.pause;
    let total = probe.unwrap_or(0.0) + steps as f64 * input.step_duration + pauses;
    if total > limits.max_duration {
        let probe_text = probe.map_or(String::new(), |p| {
            format!("a {} probe, ", report::secs_text(p))
        });
        return Err(invalid(
            "step_duration",
            format!(
                "the sweep lasts {} in all ({probe_text}{steps} steps of {}, {} pauses of {}): \
                 at most {} (--max-duration)",
                report::secs_text(total),
                report::secs_text(input.step_duration),
                runs.saturating_sub(1),
                report::secs_text(input.pause),
                report::secs_text(limits.max_duration),
            ),
        ));
    }
    Ok(())
}

/// How the steps' rates are found.
#[derive(Clone, Debug, PartialEq)]
pub enum Rates {
    /// Probe, then this many steps from 10% to 100% of the peak.
    OfPeak(usize),
    /// These rates, ascending.
    Given(Vec<f64>),
}

/// A validated sweep: the probe's plan (when the rates come from a probe), and everything to
/// plan each step.
#[derive(Clone, Debug)]
pub struct SweepPlan {
    pub input: SweepInput,
    pub probe: Option<Plan>,
    pub rates: Rates,
    /// The probe's plan, or the first step's: where the sweep's requests go, and how.
    pub sample: Plan,
    limits: Limits,
    /// A step's config with the sweep's settings instead of `qps` and `duration`.
    pub config: Map<String, Value>,
    /// Whether the steps carry thresholds (else the default error-rate check applies).
    pub thresholds: bool,
}

impl SweepPlan {
    /// Checks the sweep's fields, then plans the probe and a step (every step, with given
    /// rates) so that anything a run would refuse is refused before the sweep starts.
    pub fn new(input: &SweepInput, limits: &Limits) -> Result<SweepPlan, SweepError> {
        check(input, limits)?;
        let plan = |i: &Input| Plan::new(i, limits).map_err(SweepError::Plan);
        // The config of a step, whatever its rate: the steps' settings (the probe's differ: a
        // closed loop has no arrival process).
        let step_config: Map<String, Value>;
        let (probe, rates, sample) = match &input.rates {
            None => {
                let probe = plan(&input.probe_input())?;
                // A step of one request says whether the steps plan; their rates are known once
                // the probe has run.
                let one = (1.0 / input.step_duration).min(limits.max_qps);
                step_config = plan(&input.step_input(one))?.config;
                (Some(probe.clone()), Rates::OfPeak(input.steps), probe)
            }
            Some(given) => {
                let mut rates = given.clone();
                rates.sort_by(f64::total_cmp);
                let mut first = None;
                for &r in &rates {
                    let p = plan(&input.step_input(r))?;
                    first.get_or_insert(p);
                }
                // `check` refused an empty list.
                let sample = first.ok_or_else(|| invalid("rates", "no rate given"))?;
                step_config = sample.config.clone();
                (None, Rates::Given(rates), sample)
            }
        };
        let mut config = step_config;
        config.remove("qps");
        config.remove("duration");
        config.insert(
            "sweep".into(),
            json!({
                "rates": match &rates { Rates::Given(r) => json!(r), Rates::OfPeak(_) => Value::Null },
                "steps": match &rates { Rates::Given(r) => r.len(), Rates::OfPeak(n) => *n },
                "probe_duration": probe.as_ref().map(|_| input.probe_duration),
                "step_duration": input.step_duration,
                "pause": input.pause,
                "min_achieved": input.min_achieved,
            }),
        );
        Ok(SweepPlan {
            input: input.clone(),
            probe,
            rates,
            sample,
            limits: *limits,
            config,
            thresholds: has_thresholds(&input.base),
        })
    }

    /// The plan of the step at `rate`, `None` when it makes too few requests to measure its
    /// rate (`rate × step_duration` rounds below [`MIN_STEP_REQUESTS`]).
    fn step(&self, rate: f64) -> Result<Option<Plan>, SweepError> {
        if step_requests(rate, self.input.step_duration) < MIN_STEP_REQUESTS {
            return Ok(None);
        }
        Plan::new(&self.input.step_input(rate), &self.limits)
            .map(Some)
            .map_err(SweepError::Plan)
    }

    /// The steps' rates from a measured peak: evenly from 10% to 100% of it, at three
    /// significant digits (rates a person can type back as `--rates`).
    pub fn rates_of_peak(peak: f64, steps: usize) -> Vec<f64> {
        (0..steps)
            .map(|i| {
                let share = if steps == 1 {
                    1.0
                } else {
                    FIRST_SHARE + (1.0 - FIRST_SHARE) * i as f64 / (steps - 1) as f64
                };
                significant(peak * share, 3)
            })
            .collect()
    }
}

/// Whether the runs of `input` check thresholds of their own.
fn has_thresholds(input: &Input) -> bool {
    !input.thresholds.is_empty()
}

/// `x` rounded to `digits` significant digits.
fn significant(x: f64, digits: i32) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let scale = 10f64.powi(digits - 1 - x.abs().log10().floor() as i32);
    (x * scale).round() / scale
}

/// What a sweep is doing now, for progress lines and the API's run status.
#[derive(Clone, Debug, PartialEq)]
pub enum Phase {
    Probe,
    Step { index: usize, of: usize, rate: f64 },
}

impl Phase {
    /// The phase as attributes of its pushed points (`--otlp`).
    fn attributes(&self) -> Vec<(&'static str, String)> {
        match self {
            Phase::Probe => vec![("phase", "probe".into())],
            Phase::Step { index, rate, .. } => vec![
                ("phase", "step".into()),
                ("step", index.to_string()),
                ("qps", rate.to_string()),
            ],
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            Phase::Probe => json!({"phase": "probe"}),
            Phase::Step { index, of, rate } => {
                json!({"phase": "step", "step": index, "steps": of, "qps": rate})
            }
        }
    }
}

/// How a caller watches and steers a sweep.
pub struct Hooks<'a> {
    /// Stops the sweep: the current run winds down as a stopped `bench` does, no more start.
    pub stop: &'a Stop,
    /// Told of each engine run as it starts, with the counters it publishes.
    pub on_start: &'a (dyn Fn(&Phase, &Arc<Progress>) + Sync),
    /// Called about every 200 ms while a run lasts.
    pub on_tick: Option<OnTick<'a>>,
    /// Told of the probe's result when it ends.
    pub on_probe: &'a (dyn Fn(&Probe) + Sync),
    /// Told of each step's row as the step ends.
    pub on_step: &'a (dyn Fn(&Row) + Sync),
}

/// The probe: its report and the peak it measured (successes per second).
#[derive(Clone, Debug)]
pub struct Probe {
    pub report: Value,
    pub peak: f64,
}

/// What a sweep measured.
#[derive(Clone, Debug)]
pub struct Sweep {
    pub config: Map<String, Value>,
    pub probe: Option<Probe>,
    /// One row and one report per step that ran, in order.
    pub rows: Vec<Row>,
    pub reports: Vec<Value>,
    pub knee: Knee,
    /// Stopped early by [`Hooks::stop`].
    pub interrupted: bool,
    /// Why the sweep stopped before its steps (the probe got no successful response).
    pub stopped: Option<String>,
    pub rule: String,
    /// Steps skipped because their rate makes too few requests in a step to measure.
    pub skipped: Vec<f64>,
    /// With `otlp`: the collector's URL as echoed and how the pushes of every phase went.
    pub otlp: Option<(String, otlp::Summary)>,
}

/// Runs the probe (unless the rates are given) and every step on `addrs` (resolved once by the
/// caller, who may have checked them), one after the other.
pub fn run(
    plan: &SweepPlan,
    addrs: Option<Vec<SocketAddr>>,
    hooks: &Hooks<'_>,
) -> Result<Sweep, EngineError> {
    let rule = table::rule(plan.input.min_achieved, plan.thresholds);
    let mut sweep = Sweep {
        config: plan.config.clone(),
        probe: None,
        rows: Vec::new(),
        reports: Vec::new(),
        knee: Knee::default(),
        interrupted: false,
        stopped: None,
        rule,
        skipped: Vec::new(),
        otlp: None,
    };
    let pushed: RefCell<Option<(String, otlp::Summary)>> = RefCell::new(None);
    let once = |p: &Plan, phase: Phase| {
        let progress = Arc::new(Progress::new(p));
        (hooks.on_start)(&phase, &progress);
        let controls = Controls {
            on_tick: hooks.on_tick,
            progress: Some(&progress),
            stop: Some(hooks.stop),
            requests: None,
        };
        // Each phase is a run of its own: its points carry the phase (and the step and its
        // rate), so a collector tells the steps apart.
        let push = otlp::Push::of(p, phase.attributes());
        let (stats, summary) = otlp::pushing(
            push.as_ref(),
            &progress,
            || engine::run_resolved_with(p, addrs.clone(), controls),
            |r| {
                r.as_ref()
                    .ok()
                    .map(|s| live::Figures::finished(p, s, &progress))
            },
        );
        if let (Some(push), Some(summary)) = (push, summary) {
            let mut all = pushed.borrow_mut();
            let (_, total) = all.get_or_insert_with(|| (push.url(), otlp::Summary::default()));
            total.absorb(summary);
        }
        stats
    };
    let rates = match (&plan.rates, &plan.probe) {
        (Rates::Given(r), _) => r.clone(),
        (Rates::OfPeak(n), Some(probe)) => {
            let stats = once(probe, Phase::Probe)?;
            let report = report::to_json(&report::Settings::of(probe), &stats);
            let peak = stats.successes as f64 / stats.elapsed.as_secs_f64().max(1e-9);
            let measured = Probe { report, peak };
            (hooks.on_probe)(&measured);
            sweep.probe = Some(measured);
            if stats.interrupted {
                sweep.interrupted = true;
                return Ok(finish(sweep, pushed.take()));
            }
            if stats.successes == 0 {
                sweep.stopped = Some(probe_failed(probe, &stats));
                return Ok(finish(sweep, pushed.take()));
            }
            SweepPlan::rates_of_peak(peak, *n)
        }
        (Rates::OfPeak(_), None) => {
            return Err(EngineError(
                "internal error: a sweep without rates or a probe".into(),
            ));
        }
    };
    let of = rates.len();
    for (i, &rate) in rates.iter().enumerate() {
        if hooks.stop.is_stopped() {
            sweep.interrupted = true;
            break;
        }
        if i > 0 || sweep.probe.is_some() {
            pause(plan.input.pause, hooks.stop);
        }
        let step = match plan.step(rate) {
            Ok(Some(p)) => p,
            Ok(None) => {
                sweep.skipped.push(rate);
                continue;
            }
            Err(e) => return Err(EngineError(format!("step at {rate} req/s: {e}"))),
        };
        let stats = once(
            &step,
            Phase::Step {
                index: i + 1,
                of,
                rate,
            },
        )?;
        let report = report::to_json(&report::Settings::of(&step), &stats);
        let row = Row::of(
            i + 1,
            rate,
            &report,
            plan.input.min_achieved,
            plan.thresholds,
        );
        (hooks.on_step)(&row);
        sweep.rows.push(row);
        sweep.reports.push(report);
        if stats.interrupted {
            sweep.interrupted = true;
            break;
        }
    }
    Ok(finish(sweep, pushed.take()))
}

fn finish(mut sweep: Sweep, pushed: Option<(String, otlp::Summary)>) -> Sweep {
    sweep.otlp = pushed;
    sweep.knee = table::knee(&sweep.rows, sweep.probe.is_some());
    sweep
}

/// The probe got no successful response: why, in the words `bench` uses for a run without
/// responses, or the errors it got instead.
fn probe_failed(plan: &Plan, stats: &engine::RunStats) -> String {
    if let Some(why) = report::no_response(&report::Settings::of(plan), stats) {
        return format!("the saturation probe failed: {why}");
    }
    let errors: Vec<String> = stats
        .errors
        .iter()
        .map(|(k, n)| format!("{} ×{n}", report::key_name(k)))
        .collect();
    format!(
        "the saturation probe got no successful response ({} requests: {}): there is no peak \
         to sweep up to",
        stats.total_requests,
        errors.join(", ")
    )
}

/// Waits `secs` between two runs, or until the sweep is stopped.
fn pause(secs: f64, stop: &Stop) {
    let until = Instant::now() + Duration::from_secs_f64(secs.max(0.0));
    while !stop.is_stopped() {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

impl Sweep {
    /// The sweep's JSON: its settings, the probe, the table, every step's full report and the
    /// knee.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("kind".into(), json!("sweep"));
        m.insert("config".into(), Value::Object(self.config.clone()));
        m.insert(
            "probe".into(),
            match &self.probe {
                Some(p) => json!({"peak": p.peak, "report": p.report}),
                None => Value::Null,
            },
        );
        m.insert("rule".into(), json!(self.rule));
        m.insert(
            "table".into(),
            Value::Array(self.rows.iter().map(Row::to_json).collect()),
        );
        m.insert("knee".into(), self.knee.to_json());
        m.insert("steps".into(), Value::Array(self.reports.clone()));
        if !self.skipped.is_empty() {
            m.insert("skipped".into(), json!(self.skipped));
        }
        if self.interrupted {
            m.insert("interrupted".into(), json!(true));
        }
        if let Some((url, pushes)) = &self.otlp {
            m.insert("otlp".into(), pushes.to_json(url));
        }
        if let Some(why) = &self.stopped {
            m.insert("stopped".into(), json!(why));
        }
        Value::Object(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> SweepInput {
        SweepInput::new(Input::new("http://h/", Rate::PerSecond(1.0), 1.0))
    }

    #[test]
    fn step_rates_run_from_a_tenth_of_the_peak_to_the_peak() {
        assert_eq!(
            SweepPlan::rates_of_peak(1000.0, 10),
            [
                100.0, 200.0, 300.0, 400.0, 500.0, 600.0, 700.0, 800.0, 900.0, 1000.0
            ]
        );
        assert_eq!(
            SweepPlan::rates_of_peak(487.3, 8),
            [48.7, 111.0, 174.0, 237.0, 299.0, 362.0, 425.0, 487.0]
        );
        assert_eq!(SweepPlan::rates_of_peak(3.21, 1), [3.21]);
        assert_eq!(significant(0.012345, 3), 0.0123);
    }

    /// The issue's: a 2,000 s sweep was accepted under --max-duration 10.
    #[test]
    fn the_whole_sweep_counts_against_the_longest_run() {
        let limits = Limits {
            max_duration: 10.0,
            ..Limits::default()
        };
        let mut i = input();
        i.rates = Some(vec![1.0; 100]);
        i.step_duration = 10.0;
        i.pause = 10.0;
        let e = check(&i, &limits).unwrap_err().to_string();
        assert_eq!(
            e,
            "step_duration: the sweep lasts 33m10s in all (100 steps of 10s, 99 pauses of 10s): \
             at most 10s (--max-duration)"
        );
        i.rates = None;
        i.steps = 2;
        i.step_duration = 3.0;
        i.pause = 1.0;
        i.probe_duration = 2.0;
        // 2 + 3 + 3 + 2 pauses = 10: just fits.
        assert!(check(&i, &limits).is_ok());
        i.pause = 1.5;
        let e = check(&i, &limits).unwrap_err().to_string();
        assert!(
            e.contains("(a 2s probe, 2 steps of 3s, 2 pauses of 1.5s)"),
            "{e}"
        );
    }

    #[test]
    fn every_run_gets_the_same_connections() {
        let mut i = input();
        assert_eq!(i.workers(), defaults::SATURATION_WORKERS);
        i.base.num_workers = Some(10);
        let p = SweepPlan::new(&i, &Limits::default()).unwrap();
        let probe = p.probe.as_ref().unwrap();
        assert_eq!((probe.rate, probe.num_workers), (Rate::Max, 10));
        assert_eq!(p.step(200.0).unwrap().unwrap().num_workers, 10);
        assert_eq!(p.step(0.01).unwrap().map(|s| s.count), None);
        assert!(p.config.get("qps").is_none() && p.config.get("duration").is_none());
        assert_eq!(p.config["num_workers"], json!(10));
        assert_eq!(p.config["sweep"]["steps"], json!(STEPS));
        assert_eq!(p.config["sweep"]["rates"], Value::Null);
    }

    #[test]
    fn thresholds_judge_the_steps_not_the_probe() {
        let mut i = input();
        i.base.thresholds = vec!["response_time_p99<=200ms".into()];
        let p = SweepPlan::new(&i, &Limits::default()).unwrap();
        assert!(p.thresholds);
        assert!(p.probe.as_ref().unwrap().thresholds.is_empty());
        assert_eq!(p.step(100.0).unwrap().unwrap().thresholds.len(), 1);
        assert!(
            !SweepPlan::new(&input(), &Limits::default())
                .unwrap()
                .thresholds
        );
    }

    #[test]
    fn given_rates_run_ascending_without_a_probe() {
        let mut i = input();
        i.rates = Some(vec![300.0, 100.0, 200.0]);
        let p = SweepPlan::new(&i, &Limits::default()).unwrap();
        assert!(p.probe.is_none());
        assert_eq!(p.rates, Rates::Given(vec![100.0, 200.0, 300.0]));
        assert_eq!(p.config["sweep"]["probe_duration"], Value::Null);
    }

    #[test]
    fn bad_fields_are_named() {
        let field = |f: &dyn Fn(&mut SweepInput)| {
            let mut i = input();
            f(&mut i);
            match SweepPlan::new(&i, &Limits::default()).unwrap_err() {
                SweepError::Invalid { field, msg } => format!("{field}: {msg}"),
                SweepError::Plan(e) => format!("plan: {e}"),
            }
        };
        assert_eq!(field(&|i| i.steps = 0), "steps: must be 1 to 100 (got 0)");
        assert_eq!(
            field(&|i| i.rates = Some(vec![100.0, -5.0])),
            "rates: every rate must be > 0 (got -5)"
        );
        assert_eq!(
            field(&|i| i.rates = Some(vec![])),
            "rates: must list 1 to 100 rates (got 0)"
        );
        assert_eq!(
            field(&|i| i.step_duration = 0.0),
            "step_duration: must be > 0 seconds (got 0)"
        );
        assert_eq!(
            field(&|i| i.probe_duration = f64::NAN),
            "probe_duration: must be > 0 seconds (got NaN)"
        );
        assert_eq!(
            field(&|i| i.pause = 4000.0),
            "pause: must be at most 3600 seconds (got 4000)"
        );
        assert_eq!(
            field(&|i| i.min_achieved = 1.5),
            "min_achieved: must be a share of the asked rate in (0, 1] (got 1.5)"
        );
        // A run setting is the plan's to refuse.
        assert_eq!(
            field(&|i| i.base.timeout = Some(0.0)),
            "plan: QPS, duration and timeout must be positive integers"
        );
        assert_eq!(
            field(&|i| i.base.stages = Some(vec![])),
            "stages: does not apply to a sweep: it sets each step's rate itself"
        );
        assert_eq!(
            field(&|i| i.rates = Some(vec![2e6])),
            "rates: every rate must be at most 1000000 (got 2000000)"
        );
        assert_eq!(
            field(&|i| {
                i.rates = Some(vec![0.4]);
                i.step_duration = 1.0;
            }),
            "rates: 0.4 req/s for a 1s step makes 0 requests: a step needs at least 2 to measure \
             the rate it achieved; raise the rate or the step duration"
        );
        // One request has no span to measure a rate over: it would fail its step for nothing.
        assert_eq!(
            field(&|i| {
                i.rates = Some(vec![1.0, 2.0, 50.0]);
                i.step_duration = 1.0;
            }),
            "rates: 1 req/s for a 1s step makes 1 request: a step needs at least 2 to measure \
             the rate it achieved; raise the rate or the step duration"
        );
        let mut i = input();
        i.step_duration = 1.0;
        let p = SweepPlan::new(&i, &Limits::default()).unwrap();
        assert!(
            p.step(1.0).unwrap().is_none(),
            "a step of one request is skipped"
        );
        assert_eq!(p.step(2.0).unwrap().unwrap().count, 2);
    }
}
