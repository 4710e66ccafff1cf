//! `pacer sweep` and `pacer sweep-llm`: the run flags become a [`SweepInput`], checked here with
//! messages that name the flags, then planned by the shared [`SweepPlan::new`]. While it runs:
//! the settings and the rule on stderr, each step's row as it ends (stdout, or stderr with
//! `--json`), a progress line on a terminal. At the end: the knee, the JSON (`--json`, `-o`)
//! and the HTML page (`--html`). Exit 1 when the probe got no successful response, 130 when
//! stopped.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::bench::{self, Output, OutputFile, pretty};
use super::flags::{RunArgs, SweepFlags};
use super::{CliError, err, exit, signals};
use crate::engine::{self, Progress, Stop};
use crate::plan::{Input, Limits, Rate};
use crate::report::secs_text;
use crate::sweep::{self, Hooks, Phase, Rates, SweepError, SweepInput, SweepPlan, table};

/// Where a sweep's results go.
#[derive(Clone, Debug, Default)]
pub struct SweepOutput {
    pub report: Output,
    pub html: Option<std::path::PathBuf>,
}

/// The [`SweepInput`] of the sweep flags over `base` (made from the run flags by
/// `bench::input`). The run flags a sweep sets itself are refused, with the flag to use.
pub fn input(base: Input, run: &RunArgs, flags: &SweepFlags) -> Result<SweepInput, CliError> {
    let refuse = |flag: &str, instead: &str| {
        Err(err(
            exit::USAGE,
            format!("{flag} does not apply to a sweep: {instead}"),
        ))
    };
    // The hidden defaults are 0: anything else was typed.
    if run.qps != Rate::PerSecond(0.0) {
        return refuse(
            "--qps",
            "it sets each step's rate (--steps N from the probe's peak, or --rates 100,200,...)",
        );
    }
    if run.duration != 0.0 {
        return refuse(
            "--duration",
            "each step runs --step-duration, the probe --probe-duration",
        );
    }
    if run.count.is_some() {
        return refuse(
            "-n/--count",
            "each step makes --step-duration × its rate requests",
        );
    }
    if run.requests.is_some() {
        return refuse(
            "--requests",
            "its steps are separate runs; --output keeps every step's full report",
        );
    }
    if run.shard.is_some() || run.start_at.is_some() || run.state.is_some() {
        return Err(err(
            exit::USAGE,
            "--shard, --start-at and --state do not apply to a sweep: it runs whole on one \
             machine",
        ));
    }
    let mut i = SweepInput::new(base);
    i.rates = flags.rates.clone();
    i.steps = flags.steps;
    i.probe_duration = flags.probe_duration;
    i.step_duration = flags.step_duration;
    i.pause = flags.pause;
    i.min_achieved = flags.min_achieved;
    Ok(i)
}

/// The sweep's checks with flag names, then each run's as `bench` words them, then the plan.
pub fn plan(input: &SweepInput) -> Result<SweepPlan, CliError> {
    let limits = Limits::command_line();
    sweep::check(input, &limits).map_err(|e| err(exit::USAGE, flagged(e)))?;
    match &input.rates {
        None => {
            bench::plan(&input.probe_input())?;
        }
        Some(rates) => {
            for &r in rates {
                bench::plan(&input.step_input(r))?;
            }
        }
    }
    SweepPlan::new(input, &limits).map_err(|e| err(exit::USAGE, flagged(e)))
}

fn flagged(e: SweepError) -> String {
    match e {
        SweepError::Invalid { field, msg } => {
            let flag = match field {
                "steps" => "--steps",
                "rates" => "--rates",
                "probe_duration" => "--probe-duration",
                "step_duration" => "--step-duration",
                "pause" => "--pause",
                "min_achieved" => "--min-achieved",
                "stages" => "--stages",
                other => return format!("--{other}: {msg}"),
            };
            format!("{flag} {msg}")
        }
        SweepError::Plan(e) => e.to_string(),
    }
}

/// What the sweep will do, in words: for stderr before it starts.
fn settings(plan: &SweepPlan) -> String {
    let s = &plan.sample;
    let i = &plan.input;
    let method = s.requests.method();
    let mut out = format!("pacer sweep: {method} {}\n", s.url);
    let step = secs_text(i.step_duration);
    let how = match &plan.rates {
        Rates::OfPeak(n) => format!(
            "  probe: closed loop for {} over {} connections, then {n} steps of {step} from 10% \
             to 100% of its peak\n",
            secs_text(i.probe_duration),
            s.num_workers
        ),
        Rates::Given(r) => {
            let list: Vec<String> = r.iter().map(|x| x.to_string()).collect();
            format!(
                "  {} steps of {step} at {} req/s, up to {} connections\n",
                r.len(),
                list.join(", "),
                s.num_workers
            )
        }
    };
    out.push_str(&how);
    if i.pause > 0.0 {
        out.push_str(&format!("  {} pause between runs\n", secs_text(i.pause)));
    }
    out.push_str(&format!(
        "  {}\n",
        table::rule(i.min_achieved, plan.thresholds)
    ));
    out
}

/// Runs a sweep and reports it.
pub fn run(input: &SweepInput, out: &SweepOutput) -> Result<(), CliError> {
    let plan = plan(input)?;
    let file = out
        .report
        .file
        .as_deref()
        .map(|p| OutputFile::open(p, "--output"))
        .transpose()?;
    let html = out
        .html
        .as_deref()
        .map(|p| OutputFile::open(p, "--html"))
        .transpose()?;
    // Ctrl-C (or SIGTERM) stops the sweep as it stops a run: the step under way winds down, no
    // other starts, and what ran is reported (exit 130). The handlers are in place before the
    // banner shows.
    let interrupted = signals::interrupted();
    let quiet = out.report.quiet;
    if !quiet {
        eprint!("{}", settings(&plan));
    }
    let stream = plan.sample.body_mode == crate::plan::BodyMode::Sse;
    let json_out = out.report.json;
    // Rows go where the table goes: stdout, or stderr when stdout carries the JSON.
    let say = move |line: &str| {
        let _ = if json_out {
            writeln!(std::io::stderr().lock(), "{line}")
        } else {
            writeln!(std::io::stdout().lock(), "{line}")
        };
    };
    let show = !quiet && std::io::stderr().is_terminal();
    let clear = || {
        if show {
            let _ = std::io::stderr().write_all(b"\r\x1b[K");
        }
    };
    let phase = Mutex::new(String::new());
    let head_shown = AtomicBool::new(false);
    let stop = Stop::new();
    let on_start = |p: &Phase, _: &Arc<Progress>| {
        let label = match p {
            Phase::Probe => "probe".to_string(),
            Phase::Step { index, of, rate } => format!("step {index}/{of} at {rate} req/s"),
        };
        if let Ok(mut l) = phase.lock() {
            *l = label;
        }
    };
    let on_probe = |p: &sweep::Probe| {
        clear();
        let n = p.report["total_requests"].as_u64().unwrap_or(0);
        eprintln!(
            "  probe: peak {:.1} req/s ({n} requests, {} successes)",
            p.peak,
            p.report["successes"].as_u64().unwrap_or(0)
        );
    };
    let on_step = |r: &sweep::Row| {
        clear();
        if !head_shown.swap(true, Ordering::Relaxed) {
            say(&table::text_head(stream));
        }
        say(&table::text_row(r, stream));
    };
    let tick = |p: &Progress, elapsed: Duration| {
        if interrupted.load(Ordering::Relaxed) {
            stop.stop();
        }
        if show {
            let label = phase.lock().map(|l| l.clone()).unwrap_or_default();
            let done = engine::done(p);
            let of = if p.total > 0 {
                format!("/{}", p.total)
            } else {
                String::new()
            };
            let line = format!(
                "\r  {label}: {:5.1}s  {done}{of} requests",
                elapsed.as_secs_f64()
            );
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    };
    let hooks = Hooks {
        stop: &stop,
        on_start: &on_start,
        on_tick: Some(&tick),
        on_probe: &on_probe,
        on_step: &on_step,
    };
    let target = &plan.sample.target;
    let result = sweep::run(&plan, engine::resolve(&target.host, target.port), &hooks);
    clear();
    let s = match result {
        Ok(s) => s,
        Err(e) => {
            for f in [file, html].into_iter().flatten() {
                f.discard();
            }
            return Err(err(exit::RUN_FAILED, e.to_string()));
        }
    };
    if let Some((url, pushes)) = &s.otlp
        && let Some(w) = pushes.warning(url)
    {
        eprintln!("pacer: warning: {w}");
    }
    let json = s.to_json();
    if json_out {
        let _ = writeln!(std::io::stdout().lock(), "{}", pretty(&json));
    }
    if s.stopped.is_none() && !s.interrupted {
        say(&s.knee.text());
    }
    if !s.skipped.is_empty() {
        let list: Vec<String> = s.skipped.iter().map(|r| r.to_string()).collect();
        eprintln!(
            "  skipped {} req/s: a {} step at that rate makes no request",
            list.join(", "),
            secs_text(input.step_duration)
        );
    }
    if let Some(f) = file {
        f.write(&pretty(&json))?;
    }
    if let Some(f) = html {
        let page = crate::html::render(&json).map_err(|e| err(exit::RUN_FAILED, e.to_string()))?;
        f.write(&page)?;
    }
    if s.interrupted {
        return Err(err(
            exit::INTERRUPTED,
            "interrupted: the sweep reports the steps that ran",
        ));
    }
    if let Some(why) = s.stopped {
        return Err(err(exit::RUN_FAILED, why));
    }
    if s.interrupted {
        return Err(err(
            exit::INTERRUPTED,
            "interrupted: the table shows the steps measured before the signal",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sweep_input(f: impl Fn(&mut SweepInput)) -> SweepInput {
        let mut i = SweepInput::new(Input::new("http://127.0.0.1:1/", Rate::Max, 1.0));
        f(&mut i);
        i
    }

    #[test]
    fn refusals_name_the_flag() {
        let msg = |f: &dyn Fn(&mut SweepInput)| plan(&sweep_input(f)).unwrap_err().msg;
        assert_eq!(msg(&|i| i.steps = 0), "--steps must be 1 to 100 (got 0)");
        assert_eq!(
            msg(&|i| i.step_duration = -1.0),
            "--step-duration must be > 0 seconds (got -1)"
        );
        assert_eq!(
            msg(&|i| i.rates = Some(vec![0.0])),
            "--rates every rate must be > 0 (got 0)"
        );
        assert_eq!(
            msg(&|i| i.min_achieved = 0.0),
            "--min-achieved must be a share of the asked rate in (0, 1] (got 0)"
        );
        // A run flag is refused in bench's words.
        assert_eq!(
            msg(&|i| i.base.timeout = Some(0.0)),
            "--timeout must be > 0 (got 0s)"
        );
        assert!(plan(&sweep_input(|_| {})).is_ok());
    }

    #[test]
    fn the_settings_say_what_will_run() {
        let p = plan(&sweep_input(|i| {
            i.base.num_workers = Some(10);
            i.probe_duration = 0.5;
            i.step_duration = 2.0;
        }))
        .unwrap();
        let s = settings(&p);
        assert!(
            s.starts_with("pacer sweep: GET http://127.0.0.1:1/\n"),
            "{s}"
        );
        assert!(
            s.contains("probe: closed loop for 500ms over 10 connections, then 8 steps of 2s"),
            "{s}"
        );
        let p = plan(&sweep_input(|i| i.rates = Some(vec![200.0, 100.0]))).unwrap();
        assert!(
            settings(&p).contains("2 steps of 10s at 100, 200 req/s, up to 50 connections"),
            "{}",
            settings(&p)
        );
    }
}
