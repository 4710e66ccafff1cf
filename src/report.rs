//! Turns a plan and its [`RunStats`] into the contract's JSON (SPEC §3 and §4: the original's
//! fields first, in the original's order, then the extensions) and into the text report a person
//! reads in a terminal; [`settings`] is the run's settings in words, for the report's head and for
//! the command line to print before a run starts. The timing families are
//! [`crate::metric`]'s, their samples the engine's [`Timings`] (indexed by family): this module
//! reports them, the OpenAPI document (`api::openapi`) describes them.
//!
//! The JSON carries everything the text shows: per family the text's max and p99.9
//! (`max_X`, `X_p999`) and, under `histograms`, the log-scale buckets its histograms are drawn
//! from (`histograms.X` = `[{"from", "to", "count"}, ...]`, the non-empty buckets ascending, in
//! seconds; the counts add up to the family's sample count).
//!
//! An LLM run's token figures (`tokens`) say where each count came from: `output_tokens_source`
//! is `usage` (the server's `usage.completion_tokens`), `tokenizer` (the run's `--tokenizer` over
//! the streamed text), `events` (one per token event) or `none`, when every successful request
//! counted its tokens the same way, else `mixed`, with the number of requests per source in
//! `output_tokens_sources`; the same for the input side.

use std::fmt::Write as _;
use std::net::ToSocketAddrs;

use serde_json::{Map, Value, json};

use crate::engine::session::{SessionStats, TurnStats};
use crate::engine::tokens::Mismatch;
use crate::engine::{ErrorKey, RunStats, Timings, TokenSource, TokenSources};
use crate::health;
use crate::slo::{self, Checked, Kind};
use crate::stats::{Recorder, Summary};
// The units live in a leaf module, so that modules below the report can use them; these names
// stay for the report's callers.
pub use crate::units::{human, secs_text};

pub use crate::metric::Runs as Scope;
pub use settings::{LlmSettings, Settings, StageSettings};

mod settings;
use crate::metric::{Id, Metric};

/// One field of a timing family: its suffix role, as the original names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stat {
    Mean,
    Std,
    P50,
    P90,
    P97,
    P99,
    /// p99.9 (an extension).
    P999,
    /// The largest sample (an extension); null with no samples.
    Max,
}

impl Stat {
    pub const ALL: [Stat; 8] = [
        Stat::Mean,
        Stat::Std,
        Stat::P50,
        Stat::P90,
        Stat::P97,
        Stat::P99,
        Stat::P999,
        Stat::Max,
    ];

    /// The field's name for timing `name`: `mean_X`, `std_X`, `X_p50`, ..., `X_p999`, `max_X`
    /// (so the original's `mean_time_to_first_token` for `time_to_first_token`).
    pub fn field(self, name: &str) -> String {
        match self {
            Stat::Mean => format!("mean_{name}"),
            Stat::Std => format!("std_{name}"),
            Stat::P50 => format!("{name}_p50"),
            Stat::P90 => format!("{name}_p90"),
            Stat::P97 => format!("{name}_p97"),
            Stat::P99 => format!("{name}_p99"),
            Stat::P999 => format!("{name}_p999"),
            Stat::Max => format!("max_{name}"),
        }
    }

    fn of(self, s: &Summary) -> Option<f64> {
        match self {
            Stat::Mean => s.mean,
            Stat::Std => s.std,
            Stat::P50 => s.p50,
            Stat::P90 => s.p90,
            Stat::P97 => s.p97,
            Stat::P99 => s.p99,
            Stat::P999 => s.p999,
            Stat::Max => s.max,
        }
    }

    /// The text report's column heading.
    fn heading(self) -> &'static str {
        match self {
            Stat::Mean => "mean",
            Stat::Std => "std",
            Stat::P50 => "p50",
            Stat::P90 => "p90",
            Stat::P97 => "p97",
            Stat::P99 => "p99",
            Stat::P999 => "p99.9",
            Stat::Max => "max",
        }
    }
}

/// The timing families this run reports, in the text report's order.
fn reported<'a>(
    setup: &Settings,
    t: &'a Timings,
) -> impl Iterator<Item = (&'static Metric, &'a Recorder)> {
    let stream = setup.stream;
    t.iter().filter_map(move |(timing, rec)| {
        let shown = match timing.runs {
            Scope::Every => true,
            Scope::Stream => stream,
            Scope::StreamWhenReported => stream && rec.count() > 0,
        };
        shown.then_some((timing, rec))
    })
}

/// The run's `health`, judged from what the engine measured (its threads, its lateness, the
/// token gaps read together): the one place the report draws it, for the JSON and the text
/// alike, for one process's run and a merged one. None when the run measured nothing of it.
pub fn verdict(setup: &Settings, stats: &RunStats) -> Option<health::Health> {
    let h = stats.health.clone()?;
    let h = health::judge(h).with_token_gaps(stats.token_gaps, stats.token_gaps_coalesced);
    // A run built to share prefixes (sessions, a trace's blocks, --prefix-tokens) means the
    // cache hits it gets: its cached share is on the tokens line, not a warning.
    Some(match setup.shares_prefixes() {
        true => h,
        false => h.with_prompt_cache(
            stats.tokens.cached_tokens,
            stats.tokens.cached_of_prompt_tokens,
        ),
    })
}

/// The JSON report of a run.
pub fn to_json(setup: &Settings, stats: &RunStats) -> Value {
    let t = &stats.timings;
    let mut m = Map::new();
    m.insert("config".into(), Value::Object(setup.config.clone()));
    measured(&mut m, setup, stats);
    m.insert("connections_opened".into(), json!(stats.connections_opened));
    m.insert("scheduling".into(), json!(stats.scheduling.describe()));
    m.insert("timestamps".into(), json!(stats.timestamps.describe()));
    if let Some(drift) = stats.timestamps.drift_secs() {
        m.insert("timestamps_clock_drift".into(), json!(drift));
    }
    if stats.interrupted {
        m.insert("interrupted".into(), json!(true));
    }
    if setup.tls {
        m.insert(
            "tls_handshakes".into(),
            json!({"full": stats.tls_full, "resumed": stats.tls_resumed}),
        );
    }
    if let Some(h) = verdict(setup, stats) {
        m.insert("health".into(), h.to_json());
    }
    if !stats.stages.is_empty() {
        let stages: Vec<Value> = (0..stats.stages.len())
            .map(|k| stage_json(setup, k, &stats.stages[k]))
            .collect();
        m.insert("stages".into(), Value::Array(stages));
    }
    if !stats.targets.is_empty() {
        m.insert("targets".into(), targets_json(setup, stats));
    }
    if let Some(s) = &stats.sessions {
        let (sessions, by_turn) = sessions_json(s);
        m.insert("sessions".into(), sessions);
        m.insert("by_turn".into(), by_turn);
    }
    // Last but for the histograms: thresholds read every field above.
    if !setup.thresholds.is_empty() {
        let so_far = Value::Object(m);
        let checked: Vec<Value> = slo::evaluate(&setup.thresholds, &so_far)
            .iter()
            .map(Checked::to_json)
            .collect();
        m = match so_far {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        m.insert("thresholds".into(), Value::Array(checked));
    }
    let histograms: Map<String, Value> = reported(setup, t)
        .map(|(timing, rec)| (timing.name.to_string(), buckets(rec)))
        .collect();
    m.insert("histograms".into(), Value::Object(histograms));
    // Known for a run this process ran, and for a merge of shards' states that carry them
    // (`shard::merge`); not for statistics rebuilt without them.
    if stats.timeline.is_on() {
        m.insert("timeline".into(), timeline(setup, stats));
    }
    if stats.clock != crate::engine::Clock::default() {
        m.insert(
            "clock".into(),
            json!({
                "monotonic_start_ns": stats.clock.monotonic_start_ns,
                "unix_start": stats.clock.unix_start,
            }),
        );
    }
    Value::Object(m)
}

/// With `--targets`: per target (the plan's key, `METHOD URL` with query values hidden), the
/// requests that ended, those that did not succeed, and the response time's p50 and p99.
fn targets_json(setup: &Settings, stats: &RunStats) -> Value {
    let rows: Vec<Value> = stats
        .targets
        .iter()
        .enumerate()
        .map(|(k, t)| {
            json!({
                "target": setup.targets.get(k),
                "count": t.total,
                "errors": t.errors,
                "response_time_p50": t.response_time.quantile(0.5),
                "response_time_p99": t.response_time.quantile(0.99),
            })
        })
        .collect();
    Value::Array(rows)
}

/// A session run's `sessions` (started, finished, unfinished, turns and duration per session)
/// and `by_turn` (per turn index: requests, time to first token, dispatch delay, mean prompt
/// tokens).
fn sessions_json(s: &SessionStats) -> (Value, Value) {
    let sessions = json!({
        "started": s.started,
        "finished": s.finished,
        "unfinished": s.unfinished(),
        "turns_p50": s.turns.quantile(0.5),
        "duration_p50": s.duration.quantile(0.5),
        "duration_p99": s.duration.quantile(0.99),
    });
    let by_turn: Vec<Value> = s
        .by_turn
        .iter()
        .enumerate()
        .map(|(k, t)| {
            json!({
                "turn": k + 1,
                "requests": t.requests,
                "time_to_first_token_p50": t.ttft.quantile(0.5),
                "time_to_first_token_p90": t.ttft.quantile(0.9),
                "time_to_first_token_p99": t.ttft.quantile(0.99),
                "dispatch_delay_p50": t.dispatch_delay.quantile(0.5),
                "dispatch_delay_p99": t.dispatch_delay.quantile(0.99),
                "mean_prompt_tokens": mean_prompt_tokens(t),
            })
        })
        .collect();
    (sessions, Value::Array(by_turn))
}

fn mean_prompt_tokens(t: &TurnStats) -> Option<f64> {
    (t.prompt_counted > 0).then(|| t.prompt_tokens as f64 / t.prompt_counted as f64)
}

/// The text report's sessions line and by-turn table (as [`sessions_json`]).
fn sessions_text(s: &SessionStats) -> String {
    let mut out = String::new();
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "  sessions: {} started, {} finished, {} unfinished; turns p50 {}; duration p50 {}  p99 {}",
        s.started,
        s.finished,
        s.unfinished(),
        s.turns
            .quantile(0.5)
            .map_or("-".into(), |v| format!("{v:.0}")),
        opt(s.duration.quantile(0.5)),
        opt(s.duration.quantile(0.99)),
    );
    let _ = writeln!(
        out,
        "  by turn:   turn   requests   ttft p50   ttft p90   ttft p99   dispatch p50   prompt tokens"
    );
    for (k, t) in s.by_turn.iter().enumerate() {
        let _ = writeln!(
            out,
            "           {:>6} {:>10} {:>10} {:>10} {:>10} {:>14} {:>15}",
            k + 1,
            t.requests,
            opt(t.ttft.quantile(0.5)),
            opt(t.ttft.quantile(0.9)),
            opt(t.ttft.quantile(0.99)),
            opt(t.dispatch_delay.quantile(0.5)),
            mean_prompt_tokens(t).map_or("-".into(), |v| format!("{v:.1}")),
        );
    }
    out
}

/// The text report's table of targets (as [`targets_json`]).
fn targets_text(setup: &Settings, stats: &RunStats) -> String {
    let mut out = String::new();
    let _ = writeln!(out);
    let _ = writeln!(out, "  targets:    count     errors        p50        p99");
    for (k, t) in stats.targets.iter().enumerate() {
        let _ = writeln!(
            out,
            "           {:>8} {:>10} {:>10} {:>10}  {}",
            t.total,
            t.errors,
            opt(t.response_time.quantile(0.5)),
            opt(t.response_time.quantile(0.99)),
            setup.targets.get(k).map_or("?", String::as_str),
        );
    }
    out
}

/// The counts and timings of a run, or of one of its stages, in the report's order: the
/// original's fields first, then the extensions (goodput with objectives).
fn measured(m: &mut Map<String, Value>, setup: &Settings, stats: &RunStats) {
    let t = &stats.timings;
    let unsent = unsent(stats);
    let errors = stats.error_count() - unsent;
    m.insert("total_requests".into(), json!(stats.total_requests));
    m.insert("errors".into(), json!(errors));
    for (timing, rec) in reported(setup, t).filter(|(timing, _)| timing.original) {
        family(m, setup, timing.name, rec);
    }
    if errors > 0 {
        let statuses: Vec<Value> = stats
            .errors
            .keys()
            .filter(|k| !is_unsent(k))
            .map(|k| match k {
                ErrorKey::Status(s) => json!(s),
                ErrorKey::Name(n) => json!(n),
            })
            .collect();
        m.insert("errors_status".into(), Value::Array(statuses));
    }
    // Extensions.
    m.insert("successes".into(), json!(stats.successes));
    if unsent > 0 {
        m.insert("unsent".into(), json!(unsent));
    }
    let counts: Map<String, Value> = stats
        .errors
        .iter()
        .filter(|(k, _)| !is_unsent(k))
        .map(|(k, n)| (key_name(k), json!(n)))
        .collect();
    m.insert("error_counts".into(), Value::Object(counts));
    let secs = stats.elapsed.as_secs_f64();
    m.insert("elapsed".into(), json!(secs));
    let achieved = achieved_qps(setup, stats);
    m.insert("achieved_qps".into(), json!(achieved));
    if achieved.is_none() {
        m.insert("achieved_qps_note".into(), json!(ACHIEVED_NEEDS_TWO));
    }
    // Over the requests that ran: those the run never sent are not its errors.
    let ran = stats.total_requests - unsent;
    let share = |n: u64| (ran > 0).then(|| n as f64 / ran as f64);
    m.insert("error_rate".into(), json!(share(errors)));
    if !setup.goodput.is_empty() {
        // vLLM's goodput: requests that succeeded and met every objective, per second of the run.
        let per_second = run_secs(setup, stats).map(|secs| stats.good_requests as f64 / secs);
        m.insert("goodput".into(), json!(per_second));
        m.insert("goodput_ratio".into(), json!(share(stats.good_requests)));
        m.insert("good_requests".into(), json!(stats.good_requests));
    }
    for (timing, rec) in reported(setup, t).filter(|(timing, _)| !timing.original) {
        family(m, setup, timing.name, rec);
    }
    if setup.llm.is_some() {
        m.insert("output_tokens".into(), json!(stats.output_tokens));
        tokens(m, setup, stats);
    }
    if setup.stream {
        let mean = if stats.successes > 0 {
            Some(stats.output_tokens as f64 / stats.successes as f64)
        } else {
            None
        };
        m.insert("mean_output_tokens".into(), json!(mean));
        let rate = if secs > 0.0 {
            stats.output_tokens as f64 / secs
        } else {
            0.0
        };
        m.insert("output_tokens_per_second".into(), json!(rate));
        m.insert("token_gaps_coalesced".into(), coalesced_json(stats));
    }
    m.insert("bytes_received".into(), json!(stats.bytes_received));
}

/// The error names of requests the run never sent because it was stopped, or (a session's
/// later turns) because its duration was over or a turn before failed (the engine's
/// `Failure::Interrupted`, `Failure::RunEnded` and `Failure::SessionEnded`).
fn unsent_names() -> [String; 3] {
    use crate::engine::outcome::Failure;
    [
        Failure::Interrupted,
        Failure::RunEnded,
        Failure::SessionEnded,
    ]
    .map(|f| f.name("", 0, &[]))
}

/// Whether an error bucket holds requests never sent because the run was stopped or over.
pub fn is_unsent(k: &ErrorKey) -> bool {
    matches!(k, ErrorKey::Name(n) if unsent_names().contains(n))
}

/// Requests a stopped run never sent (`unsent` in the report). The headline (`errors`,
/// `error_rate`) covers the requests that ran; `total_requests` = `successes` + `errors` +
/// `unsent` always.
pub fn unsent(stats: &RunStats) -> u64 {
    unsent_names()
        .into_iter()
        .filter_map(|n| stats.errors.get(&ErrorKey::Name(n)).copied())
        .sum()
}

/// `1 request`, `2 requests`: the one way the reports count things in words.
pub fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Why a fixed-rate run has no achieved rate.
pub const ACHIEVED_NEEDS_TWO: &str =
    "fewer than 2 requests were sent: a rate is measured between the first send and the last";

/// The achieved rate, or None for a fixed-rate run that sent fewer than two requests (a rate
/// is sends over the span from the first to the last: one send has no span, and 0 would be a
/// false figure).
pub fn achieved_qps(setup: &Settings, stats: &RunStats) -> Option<f64> {
    if setup.qps.is_some() && stats.sent < 2 {
        None
    } else {
        Some(stats.achieved_qps)
    }
}

/// The seconds a per-second count of the run is over: its scheduled duration, or its elapsed
/// time when that is longer (the responses of the last sends came after it). Not the elapsed
/// time alone: a run of N sends at rate R ends about (N−1)/R after its start, so a short run
/// would count N over less than N/R and show more than it was asked.
pub fn run_secs(setup: &Settings, stats: &RunStats) -> Option<f64> {
    let scheduled = match setup.qps {
        Some(_) if setup.stages.is_empty() => setup.duration,
        _ => 0.0,
    };
    let secs = stats.elapsed.as_secs_f64().max(scheduled);
    (secs > 0.0).then_some(secs)
}

/// `token_gaps_coalesced`: of the `of` gaps between successive token events of the successes,
/// the `count` whose two events came in one read (one chunk, so not measured), and their `share`
/// (null without gaps).
fn coalesced_json(stats: &RunStats) -> Value {
    let (count, of) = (stats.token_gaps_coalesced, stats.token_gaps);
    let share = (of > 0).then(|| count as f64 / of as f64);
    json!({"count": count, "of": of, "share": share})
}

/// One entry of the report's `stages`: which stage (1-based, as asked: `qps`, `duration`, and
/// with a ramp the rate it starts from), when it starts (seconds into the run), the mean rate
/// its schedule asked for, then its own counts and timings as [`measured`] gives them (its
/// `elapsed` is its duration).
fn stage_json(setup: &Settings, k: usize, stats: &RunStats) -> Value {
    let mut m = Map::new();
    m.insert("stage".into(), json!(k + 1));
    let asked = setup.stages.get(k);
    m.insert("qps".into(), json!(asked.map(|s| s.qps)));
    m.insert("duration".into(), json!(asked.map(|s| s.duration)));
    if setup.ramp
        && let Some(a) = asked
    {
        m.insert("from_qps".into(), json!(a.from_qps));
    }
    let start = asked.map(|a| a.start);
    m.insert("start".into(), json!(start));
    let secs = stats.elapsed.as_secs_f64();
    let intended = (secs > 0.0).then(|| stats.total_requests as f64 / secs);
    m.insert("intended_qps".into(), json!(intended));
    measured(&mut m, setup, stats);
    Value::Object(m)
}

/// The text report's stages: one row per stage with its rate, requests, achieved rate, errors
/// and response-time p50/p99 (and goodput with objectives).
fn stages_text(setup: &Settings, stats: &RunStats) -> String {
    let mut out = String::new();
    let _ = writeln!(out);
    let goodput = !setup.goodput.is_empty();
    let _ = writeln!(
        out,
        "  {:>5}  {:>18} {:>9} {:>9} {:>10} {:>8} {:>10} {:>10}{}",
        "stage",
        "rate (req/s)",
        "duration",
        "requests",
        "achieved",
        "errors",
        "p50",
        "p99",
        if goodput { "    goodput" } else { "" }
    );
    for (k, st) in stats.stages.iter().enumerate() {
        let (from, to) = setup
            .stages
            .get(k)
            .map(|a| (a.from_qps, a.to_qps))
            .unwrap_or_default();
        let rate = if from == to {
            format!("{to}")
        } else {
            format!("{from} → {to}")
        };
        let s = st.timings[Id::ResponseTime].summary();
        let good = match (goodput, st.total_requests) {
            (false, _) => String::new(),
            (true, 0) => format!(" {:>10}", "-"),
            (true, n) => format!(" {:>9.1}%", 100.0 * st.good_requests as f64 / n as f64),
        };
        let _ = writeln!(
            out,
            "  {:>5}  {:>18} {:>9} {:>9} {:>10.1} {:>8} {:>10} {:>10}{good}",
            k + 1,
            rate,
            secs_text(st.elapsed.as_secs_f64()),
            st.total_requests,
            st.achieved_qps,
            st.error_count() - unsent(st),
            opt(s.p50),
            opt(s.p99),
        );
    }
    let _ = writeln!(
        out,
        "  (each stage holds the requests intended in it; achieved is sent per second there, \
         p50/p99 are response times)"
    );
    out
}

/// The report's `thresholds` entries that did not hold (empty when all held, or none were set).
pub fn failed_thresholds(report: &Value) -> Vec<&str> {
    report
        .get("thresholds")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter(|c| c.get("pass") != Some(&Value::Bool(true)))
                .map(|c| c.get("expression").and_then(Value::as_str).unwrap_or("?"))
                .collect()
        })
        .unwrap_or_default()
}

/// The text report's thresholds section: each with pass or FAIL and the value it read.
fn thresholds_text(setup: &Settings, report: &Value) -> String {
    let mut out = String::new();
    let Some(list) = report.get("thresholds").and_then(Value::as_array) else {
        return out;
    };
    let failed = failed_thresholds(report).len();
    let _ = writeln!(out);
    let _ = if failed == 0 {
        writeln!(out, "  thresholds: all {} held", list.len())
    } else {
        writeln!(out, "  thresholds: {failed} of {} FAILED", list.len())
    };
    let width = list
        .iter()
        .filter_map(|c| c["expression"].as_str())
        .map(|e| e.chars().count())
        .max()
        .unwrap_or(0);
    for (c, t) in list.iter().zip(&setup.thresholds) {
        let verdict = if c["pass"] == Value::Bool(true) {
            "pass"
        } else {
            "FAIL"
        };
        let value = match (&c["value"], t.metric.kind()) {
            (Value::Null, _) => "no value in this run".to_string(),
            (Value::Number(n), Kind::Time) => n.as_f64().map(human).unwrap_or_default(),
            (Value::Number(n), Kind::Ratio) => n
                .as_f64()
                .map(|x| format!("{:.2}%", x * 100.0))
                .unwrap_or_default(),
            (Value::String(w), _) => w.clone(),
            (v, _) => v.to_string(),
        };
        let _ = writeln!(
            out,
            "    {verdict}  {:<width$}  {} = {value}",
            t.text,
            c["metric"].as_str().unwrap_or("?")
        );
    }
    out
}

/// `s`'s one source, `mixed`, or null when no request was counted.
fn source_word(s: &TokenSources) -> Value {
    match s.only() {
        Some(one) => json!(one.name()),
        None if TokenSource::ALL.iter().all(|&x| s.get(x) == 0) => Value::Null,
        None => json!("mixed"),
    }
}

fn source_counts(s: &TokenSources) -> Value {
    let m: Map<String, Value> = TokenSource::ALL
        .iter()
        .map(|&x| (x.name().to_string(), json!(s.get(x))))
        .collect();
    Value::Object(m)
}

/// Successes whose prompt tokens were counted (by the server or the tokenizer).
fn input_counted(stats: &RunStats) -> u64 {
    stats.successes - stats.input_sources.get(TokenSource::None)
}

/// The token figures of an LLM run beyond `output_tokens` (see the module docs).
fn tokens(m: &mut Map<String, Value>, setup: &Settings, stats: &RunStats) {
    m.insert(
        "output_tokens_source".into(),
        source_word(&stats.output_sources),
    );
    m.insert(
        "output_tokens_sources".into(),
        source_counts(&stats.output_sources),
    );
    let counted = input_counted(stats);
    let (total, mean) = if counted > 0 {
        (
            Some(stats.input_tokens),
            Some(stats.input_tokens as f64 / counted as f64),
        )
    } else {
        (None, None)
    };
    m.insert("input_tokens".into(), json!(total));
    m.insert("mean_input_tokens".into(), json!(mean));
    m.insert(
        "input_tokens_source".into(),
        source_word(&stats.input_sources),
    );
    m.insert(
        "input_tokens_sources".into(),
        source_counts(&stats.input_sources),
    );
    let secs = stats.elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        (stats.input_tokens + stats.output_tokens) as f64 / secs
    } else {
        0.0
    };
    m.insert("total_token_throughput".into(), json!(rate));
    let said = &stats.tokens;
    let reasoning = (said.reasoning_requests > 0).then_some(said.reasoning_tokens);
    m.insert("reasoning_tokens".into(), json!(reasoning));
    m.insert(
        "mean_reasoning_tokens".into(),
        json!(said.mean_reasoning_tokens()),
    );
    let side = |x: &Mismatch| {
        json!({"compared": x.compared, "requests": x.requests,
               "mean_diff": x.mean_diff(), "max_diff": (x.compared > 0).then_some(x.max_diff)})
    };
    m.insert(
        "token_mismatch".into(),
        json!({"prompt": side(&said.prompt), "output": side(&said.output),
               "prompt_overhead_tokens": prompt_overhead(setup), "note": MISMATCH_NOTE}),
    );
    m.insert("token_mismatch_rate".into(), json!(said.mismatch_rate()));
    let cached = (said.cached_requests > 0).then_some(said.cached_tokens);
    m.insert("cached_tokens".into(), json!(cached));
    m.insert("cached_token_share".into(), json!(said.cached_share()));
}

/// What `token_mismatch` compares, and why a chat prompt's counts differ.
pub const MISMATCH_NOTE: &str = "server usage against pacer's tokenizer, where both exist: \
    usage.prompt_tokens against the count of the prompt sent, usage.completion_tokens against \
    the count of the streamed text; a difference is server minus pacer, minus \
    prompt_overhead_tokens on the prompt side: a chat template adds its own tokens to every \
    prompt, give how many with --prompt-overhead-tokens";

/// The prompt tokens a chat template is expected to add (`--prompt-overhead-tokens`).
fn prompt_overhead(setup: &Settings) -> u64 {
    setup.llm.as_ref().map_or(0, |l| l.prompt_overhead_tokens)
}

/// Where the counts came from, in words: `from usage`, `from usage for 8, events for 2`.
fn source_text(s: &TokenSources) -> String {
    let used: Vec<String> = TokenSource::ALL
        .iter()
        .filter(|&&x| s.get(x) > 0)
        .map(|&x| (x, s.get(x)))
        .map(|(x, n)| format!("{} for {n}", x.name()))
        .collect();
    match s.only() {
        Some(one) => format!("from {}", one.name()),
        None if used.is_empty() => "none counted".into(),
        None => format!("from {}", used.join(", ")),
    }
}

/// The report's `timeline`: one object per interval (`engine::timeline` says which interval each
/// figure counts in); the time-to-first-token percentiles in streaming runs and the output tokens
/// in LLM runs, as the run's own families.
fn timeline(setup: &Settings, stats: &RunStats) -> Value {
    let stream = setup.stream;
    let llm = setup.llm.is_some();
    // The percentiles are bucket estimates (within 12.2%): four digits say all they know.
    let sig = |x: Option<f64>| x.map(|x| format!("{x:.3e}").parse::<f64>().unwrap_or(x));
    let rows = stats.timeline.entries(stats.elapsed).into_iter().map(|e| {
        let mut row = json!({
            "start": e.start,
            "duration": e.duration,
            "scheduled": e.n.scheduled,
            "sent": e.n.sent,
            "completed": e.n.completed,
            "successes": e.n.successes,
            "errors": e.n.errors,
            "not_sent": e.n.not_sent,
            "achieved_qps": e.achieved_qps,
            "response_time_p50": sig(e.response_time_p50),
            "response_time_p90": sig(e.response_time_p90),
            "response_time_p99": sig(e.response_time_p99),
            "dispatch_delay_p99": sig(e.dispatch_delay_p99),
        });
        if stream {
            row["time_to_first_token_p50"] = json!(sig(e.time_to_first_token_p50));
            row["time_to_first_token_p99"] = json!(sig(e.time_to_first_token_p99));
        }
        if llm {
            row["output_tokens"] = json!(e.n.output_tokens);
        }
        row
    });
    Value::Array(rows.collect())
}

/// The non-empty log-scale buckets of a recorder, ascending, as `{"from", "to", "count"}` in
/// seconds. The last bucket (1000 s and up) has no upper edge: its `to` is the largest sample.
fn buckets(rec: &Recorder) -> Value {
    let hist = rec.histogram();
    let max = hist.max().unwrap_or(0.0);
    let rows: Vec<Value> = hist
        .iter()
        .filter(|b| b.count > 0)
        .map(|b| {
            let to = if b.upper.is_finite() { b.upper } else { max };
            json!({"from": b.lower, "to": to, "count": b.count})
        })
        .collect();
    Value::Array(rows)
}

/// `error_counts` keys: statuses as their number in a string, names as they are.
pub fn key_name(k: &ErrorKey) -> String {
    match k {
        ErrorKey::Status(s) => s.to_string(),
        ErrorKey::Name(n) => n.clone(),
    }
}

/// The fields of one timing family (see [`Stat::field`]), and any other percentile of it a
/// threshold reads (`X_p95` for `X_p95<=...`), null under 2 samples like the others.
fn family(m: &mut Map<String, Value>, setup: &Settings, name: &str, rec: &Recorder) {
    let s = rec.summary();
    for stat in Stat::ALL {
        m.insert(stat.field(name), json!(stat.of(&s)));
    }
    for (f, q, key) in slo::percentiles_needed(&setup.thresholds) {
        if f == name && !m.contains_key(&key) {
            let v = if rec.count() >= 2 {
                rec.quantile(q / 100.0)
            } else {
                None
            };
            m.insert(key, json!(v));
        }
    }
}

fn opt(v: Option<f64>) -> String {
    v.map(human).unwrap_or_else(|| "-".into())
}

/// The run's settings in words: the request line, then the rate, length and limits (and the LLM
/// mode, TLS verification, real-time scheduling when they apply). The text report starts with it,
/// and the command line prints it before the run starts.
pub fn settings(setup: &Settings) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "pacer: {} {}", setup.method, setup.url);
    let duration = secs_text(setup.duration);
    let pace = match setup.qps {
        Some(q) => {
            let arrival = match setup.seed {
                None => "evenly spaced".to_string(),
                Some(seed) => format!("Poisson arrivals, seed {seed}"),
            };
            let requests = plural(setup.count, "request");
            if setup.trace {
                let mean = setup.count as f64 / setup.duration.max(1e-9);
                // `q` is what connections and threads are sized to: the most requests due in
                // any one second, or the mean when that is higher (a trace under a second).
                format!(
                    "{requests} at the trace's times over {duration} (mean {mean:.1} req/s, \
                     sized for {q:.1} req/s: its busiest second or its mean)"
                )
            } else if setup.stages.is_empty() {
                format!("{q} req/s for {duration} ({requests}, {arrival})")
            } else {
                let how = if setup.ramp { "ramped" } else { "stepped" };
                let stages: Vec<String> = setup
                    .stages
                    .iter()
                    .map(|st| format!("{}:{}", st.qps, secs_text(st.duration)))
                    .collect();
                format!(
                    "stages {} {how}, {duration} ({requests}, {arrival})",
                    stages.join(",")
                )
            }
        }
        None if setup.count > 0 => format!(
            "as fast as responses come (closed loop), {}",
            plural(setup.count, "request")
        ),
        None => format!("as fast as responses come (closed loop) for {duration}"),
    };
    let _ = writeln!(
        out,
        "  {pace}, up to {}, {}, timeout {}",
        plural(setup.num_workers as u64, "connection"),
        plural(setup.threads as u64, "thread"),
        secs_text(setup.timeout)
    );
    if let Some(l) = &setup.llm {
        let _ = writeln!(
            out,
            "  {} {}, model {}, max_tokens {}, {} payload",
            if l.stream {
                "streaming"
            } else {
                "non-streaming"
            },
            l.api,
            l.model,
            l.max_tokens,
            l.payload_style,
        );
        if let Some(line) = &l.prompts {
            out.push_str(line);
        }
    }
    if setup.insecure {
        let _ = writeln!(
            out,
            "  WARNING: TLS certificate verification is disabled (--insecure)"
        );
    }
    if setup.realtime {
        let _ = writeln!(out, "  real-time scheduling asked for (SCHED_FIFO)");
    }
    if let Some(line) = &setup.sessions {
        let _ = writeln!(out, "  {line}");
    }
    out
}

/// An LLM run's prompts in one line: how many, from where, in which order, how many distinct
/// requests, and how their lengths were made.
fn workload_line(w: &crate::plan::WorkloadInfo) -> String {
    use crate::plan::PromptSource;
    let from = match &w.source {
        PromptSource::Dataset(path) => format!("from {}", path.display()),
        PromptSource::Inline => "given inline".into(),
        PromptSource::Synthetic => "synthetic".into(),
        PromptSource::Prompt => "copies of --prompt".into(),
        PromptSource::Trace(path) => format!("replayed from {}", path.display()),
    };
    let mut notes = vec![if w.shuffled { "shuffled" } else { "in order" }.to_string()];
    if w.skipped > 0 {
        notes.push(format!(
            "{} skipped",
            plural(w.skipped as u64, "conversation")
        ));
    }
    let mut out = format!(
        "  prompts: {} {from} ({}), {} distinct requests",
        w.entries,
        notes.join(", "),
        w.distinct_requests
    );
    if let Some(d) = w.input_tokens {
        let _ = write!(out, "; input tokens {d}");
        if w.prefix_tokens > 0 {
            let _ = write!(out, " with a shared {}-token prefix", w.prefix_tokens);
        }
    }
    if let Some(r) = &w.replay {
        let _ = write!(
            out,
            "; at {}x speed, {} shared blocks of {} tokens",
            r.speed, r.blocks, r.block_tokens
        );
    }
    if w.wire_bytes > w.held_bytes {
        let _ = write!(
            out,
            "; {} held for {} of requests",
            crate::plan::workload::bytes_text(w.held_bytes as u64),
            crate::plan::workload::bytes_text(w.wire_bytes as u64)
        );
    }
    let _ = writeln!(out, "; lengths {}", w.token_lengths());
    out
}

/// Why two timing families can show the same figures, for the one line the text report prints
/// instead of the second row.
fn same_because(shown: &str, dropped: &str) -> &'static str {
    match (shown, dropped) {
        ("response_time", "latency") => ": every body came with its headers (or there was none)",
        ("time_to_first_token", "time_to_first_byte")
        | ("corrected_time_to_first_token", "corrected_time_to_first_byte") => {
            ": the first body byte carried the first token"
        }
        ("inter_token_latency", "inter_chunk_latency") => ": every chunk counted as one token",
        _ => "",
    }
}

/// The terminal report: the settings, a summary, a table of every timing with one line on what
/// each spans, the error buckets and histograms (response time; time to first token when
/// streaming). A family whose figures equal an earlier row's is said in one line, not a row.
pub fn to_text(setup: &Settings, stats: &RunStats) -> String {
    let mut out = settings(setup);
    out.push_str(&to_text_body(setup, stats));
    out
}

/// [`to_text`] without the settings at its head: for a screen that shows them just above (the
/// command line printed them as the run started, to the same terminal).
pub fn to_text_body(setup: &Settings, stats: &RunStats) -> String {
    let mut out = String::new();
    let t = &stats.timings;
    let _ = writeln!(out);
    let unsent = unsent(stats);
    let unsent_text = if unsent > 0 {
        // Each bucket's count and name without its `not sent: `.
        let why: Vec<String> = unsent_names()
            .into_iter()
            .filter_map(|n| {
                let k = stats.errors.get(&ErrorKey::Name(n.clone())).copied()?;
                let what = n.strip_prefix("not sent: ").unwrap_or(&n).to_owned();
                Some(format!("{k} {what}"))
            })
            .collect();
        format!("   unsent {unsent} ({})", why.join(", "))
    } else {
        String::new()
    };
    let achieved = match achieved_qps(setup, stats) {
        Some(q) => format!("{q:.1} req/s"),
        None => format!("n/a ({} sent: a rate needs 2 sends)", stats.sent),
    };
    let _ = writeln!(
        out,
        "  requests {}   successes {}   errors {}{unsent_text}   elapsed {:.3}s   achieved {achieved}",
        stats.total_requests,
        stats.successes,
        stats.error_count() - unsent,
        stats.elapsed.as_secs_f64(),
    );
    let _ = writeln!(
        out,
        "  connections opened {}   bytes received {}",
        stats.connections_opened, stats.bytes_received
    );
    if stats.scheduling != crate::engine::Scheduling::Normal {
        let _ = writeln!(out, "  scheduling: {}", stats.scheduling.describe());
    }
    if stats.interrupted {
        let _ = writeln!(
            out,
            "  INTERRUPTED: stopped before its end; the figures cover the requests that ran, \
             the {} never sent are counted apart as unsent",
            unsent
        );
    }
    for line in verdict(setup, stats)
        .iter()
        .flat_map(health::Health::text_lines)
    {
        let _ = writeln!(out, "  {line}");
    }
    if setup.tls {
        let _ = writeln!(
            out,
            "  TLS handshakes: {} full, {} resumed",
            stats.tls_full, stats.tls_resumed
        );
    }
    if setup.llm.is_some() {
        let secs = stats.elapsed.as_secs_f64().max(1e-9);
        let _ = writeln!(
            out,
            "  output tokens {}   ({:.1} tokens/s, {})",
            stats.output_tokens,
            stats.output_tokens as f64 / secs,
            source_text(&stats.output_sources)
        );
        if setup.stream && stats.token_gaps > 0 {
            let (n, of) = (stats.token_gaps_coalesced, stats.token_gaps);
            let _ = writeln!(
                out,
                "  token gaps read together {n} of {of} ({:.1}%): one chunk each, not measured",
                100.0 * n as f64 / of as f64
            );
        }
        let counted = input_counted(stats);
        if counted > 0 {
            let _ = writeln!(
                out,
                "  input tokens {}   (mean {:.1}, {})   total {:.1} tokens/s",
                stats.input_tokens,
                stats.input_tokens as f64 / counted as f64,
                source_text(&stats.input_sources),
                (stats.input_tokens + stats.output_tokens) as f64 / secs
            );
        }
        let said = &stats.tokens;
        if let Some(share) = said.cached_share() {
            let _ = writeln!(
                out,
                "  cached prompt tokens {} of {} ({:.1}%, the server's prefix cache; from usage for {})",
                said.cached_tokens,
                said.cached_of_prompt_tokens,
                100.0 * share,
                said.cached_requests
            );
        }
        if let Some(mean) = said.mean_reasoning_tokens() {
            let _ = writeln!(
                out,
                "  reasoning tokens {}   (mean {mean:.1} per answer, of its output tokens; from usage for {})",
                said.reasoning_tokens, said.reasoning_requests
            );
        }
        if let Some(rate) = said.mismatch_rate() {
            let side = |x: &Mismatch| match x.mean_diff() {
                Some(mean) => format!(
                    "{} of {} differ (mean {mean:+.1}, max {})",
                    x.requests, x.compared, x.max_diff
                ),
                None => "not compared".to_string(),
            };
            let _ = writeln!(
                out,
                "  token counts vs the server's usage: {:.1}% of {} requests differ; prompt {}; output {}",
                100.0 * rate,
                said.checked,
                side(&said.prompt),
                side(&said.output)
            );
            let overhead = prompt_overhead(setup);
            let why = if overhead > 0 {
                format!("{overhead} prompt tokens per request expected from the chat template")
            } else {
                "a chat template adds tokens to every prompt: give how many with \
                 --prompt-overhead-tokens"
                    .to_string()
            };
            let _ = writeln!(out, "    (server minus pacer's tokenizer; {why})");
        }
    }
    if !setup.goodput.is_empty() {
        let secs = run_secs(setup, stats).unwrap_or(1e-9);
        let objectives: Vec<&str> = setup.goodput.iter().map(String::as_str).collect();
        let _ = writeln!(
            out,
            "  goodput {:.1} req/s: {} of {} requests ({:.1}%) succeeded and met {}",
            stats.good_requests as f64 / secs,
            stats.good_requests,
            stats.total_requests,
            100.0 * stats.good_requests as f64 / stats.total_requests.max(1) as f64,
            objectives.join(", ")
        );
    }
    let _ = writeln!(out);
    out.push_str(&table(setup, t));
    if !stats.stages.is_empty() {
        out.push_str(&stages_text(setup, stats));
    }
    if !stats.targets.is_empty() {
        out.push_str(&targets_text(setup, stats));
    }
    if let Some(s) = &stats.sessions {
        out.push_str(&sessions_text(s));
    }
    if stats.errors.keys().any(|k| !is_unsent(k)) {
        let _ = writeln!(out);
        let _ = writeln!(out, "  errors:");
        for (k, n) in stats.errors.iter().filter(|(k, _)| !is_unsent(k)) {
            let label = match k {
                ErrorKey::Status(s) => format!("HTTP {s}"),
                ErrorKey::Name(name) => name.clone(),
            };
            let _ = writeln!(out, "    {n:>9}  {label}");
        }
    }
    let mut hists = vec![("response time", &t[Id::ResponseTime])];
    if setup.stream {
        hists.push(("time to first token", &t[Id::TimeToFirstToken]));
    }
    for (what, rec) in hists {
        let (hist, finer) = histogram_lines(rec, 12, 40);
        if !hist.is_empty() {
            let _ = writeln!(out);
            let how = if finer {
                " (equal-width rows: the samples fell in too few log-scale buckets)"
            } else {
                ""
            };
            let _ = writeln!(out, "  {what} histogram{how}:");
            out.push_str(&hist);
        }
    }
    if !setup.thresholds.is_empty() {
        out.push_str(&thresholds_text(setup, &to_json(setup, stats)));
    }
    out
}

/// The timing table, then one line per row on what it spans, and one line per family left out
/// because its figures equal a row's.
fn table(setup: &Settings, t: &Timings) -> String {
    let mut rows: Vec<(&Metric, Summary)> = Vec::new();
    let mut same: Vec<(&Metric, &Metric)> = Vec::new();
    // A closed loop sends each request when a connection frees: its intended time is its send
    // time, so the corrected families repeat the uncorrected ones and dispatch_delay is 0 (up
    // to the nanoseconds between two clock readings). Said once instead of as rows.
    let closed = setup.closed_loop();
    let mut no_intended: Vec<&str> = Vec::new();
    for (timing, rec) in reported(setup, t) {
        if closed && (timing.name.starts_with("corrected_") || timing.name == "dispatch_delay") {
            no_intended.push(timing.name);
            continue;
        }
        let s = rec.summary();
        match rows.iter().find(|(_, r)| s.count > 0 && *r == s) {
            Some((earlier, _)) => same.push((timing, *earlier)),
            None => rows.push((timing, s)),
        }
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|(timing, s)| {
            let mut row = vec![timing.label.to_string(), s.count.to_string()];
            row.extend(Stat::ALL.iter().map(|stat| opt(stat.of(s))));
            row
        })
        .collect();
    let mut head = vec!["timing".to_string(), "count".to_string()];
    head.extend(Stat::ALL.iter().map(|s| s.heading().to_string()));
    let widths: Vec<usize> = (0..head.len())
        .map(|i| {
            std::iter::once(&head)
                .chain(&cells)
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in std::iter::once(&head).chain(&cells) {
        let _ = write!(out, "  {:<w$}", row[0], w = widths[0]);
        for (cell, w) in row.iter().zip(&widths).skip(1) {
            let _ = write!(out, "  {cell:>w$}");
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(out);
    let label_w = rows
        .iter()
        .map(|(t, _)| t.label)
        .chain(same.iter().map(|(t, _)| t.label))
        .map(str::len)
        .max()
        .unwrap_or(0);
    for (timing, _) in &rows {
        let _ = writeln!(out, "  {:<label_w$}  {}", timing.label, timing.note);
    }
    for (dropped, shown) in same {
        let _ = writeln!(
            out,
            "  {:<label_w$}  = {} on every figure{}",
            dropped.label,
            shown.label,
            same_because(shown.name, dropped.name)
        );
    }
    if !no_intended.is_empty() {
        let _ = writeln!(
            out,
            "  a closed loop (--qps max) has no intended send times: {} not shown (each \
             corrected_X equals X, dispatch_delay is 0)",
            no_intended.join(", ")
        );
    }
    if rows.iter().any(|(t, _)| t.runs != Scope::Every) {
        let _ = writeln!(out, "  samples: {}", crate::metric::POPULATION_RULE);
    }
    out
}

/// Fewer log-scale rows than this, over samples that differ, draw equal-width rows instead.
const FINER_BELOW: usize = 4;

/// A text histogram of a recorder's samples in at most `rows` rows between its min and max, and
/// whether it had to use equal-width rows: when the samples fall in one log-scale bucket or two
/// (an LLM mock's fixed timings do), one or two rows 26% wide would say nothing.
fn histogram_lines(rec: &Recorder, rows: usize, width: usize) -> (String, bool) {
    let mut out = String::new();
    let mut bars = rec.histogram().rows(rows);
    let finer = bars.len() < FINER_BELOW && bars.first().is_some_and(|b| b.lower < b.upper);
    if finer {
        let k = rows
            .min(usize::try_from(rec.count()).unwrap_or(rows))
            .max(2);
        bars = rec.linear_rows(k);
    }
    let most = bars.iter().map(|b| b.count).max().unwrap_or(0);
    if most == 0 {
        return (out, false);
    }
    // Equal-width rows may be microseconds apart in a 240 ms range: enough digits to tell them
    // apart. Log-scale rows differ by 26% at least, and `human`'s digits do.
    let step = if finer {
        bars.iter()
            .map(|b| b.upper - b.lower)
            .fold(f64::INFINITY, f64::min)
    } else {
        f64::INFINITY
    };
    for r in bars {
        let (lo, hi, n) = (r.lower, r.upper, r.count);
        let len = ((n as f64 / most as f64) * width as f64).round() as usize;
        let _ = writeln!(
            out,
            "    {:>10} - {:<10} {:>9} |{}",
            human_to(lo, step),
            human_to(hi, step),
            n,
            "■".repeat(len)
        );
    }
    (out, finer)
}

/// [`human`], with more decimals when needed to show differences of `step` seconds (at most 6).
fn human_to(secs: f64, step: f64) -> String {
    let a = secs.abs();
    let (scale, unit, decimals) = if a < 1e-3 {
        (1e6, "µs", 1)
    } else if a < 1.0 {
        (1e3, "ms", 2)
    } else {
        (1.0, "s", 3)
    };
    let step = step * scale;
    // One digit past the step's first significant one, so row edges read evenly spaced.
    let needed = if step > 0.0 && step < 1.0 {
        (-step.log10()).ceil() as usize + 1
    } else {
        0
    };
    let d = needed.clamp(decimals, 6);
    format!("{:.d$}{unit}", secs * scale)
}

/// Why a finished run measured nothing about its target: None when any request got a response
/// (a success or any HTTP status); else every error bucket with its reason, e.g. `connection
/// refused by 127.0.0.1:1` or the resolver's message for a name that does not resolve.
pub fn no_response(setup: &Settings, stats: &RunStats) -> Option<String> {
    let responded = stats.successes > 0
        || stats.timings[Id::ResponseTime].count() > 0
        || stats
            .errors
            .keys()
            .any(|k| matches!(k, ErrorKey::Status(_)));
    if responded || stats.total_requests == 0 {
        return None;
    }
    let total = stats.total_requests;
    let reasons: Vec<String> = stats
        .errors
        .iter()
        .map(|(k, &n)| {
            let why = reason(setup, &key_name(k));
            if n == total {
                why
            } else {
                format!("{why} ({n} of {total} requests)")
            }
        })
        .collect();
    Some(format!("no request got a response: {}", reasons.join("; ")))
}

/// One error bucket of a run without responses, said with the target's address.
fn reason(setup: &Settings, name: &str) -> String {
    let (host, port) = (&setup.host, setup.port);
    let addr = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    match name {
        "connection refused" => format!("connection refused by {addr}"),
        "timeout" => format!(
            "no answer from {addr} within the timeout ({})",
            secs_text(setup.timeout)
        ),
        n if n.starts_with("dns: ") => {
            format!("cannot resolve {}: {}", host, resolver_says(host, port))
        }
        n => format!("{n} ({addr})"),
    }
}

/// The resolver's own words for a host that did not resolve. The engine refuses `.invalid`
/// names without asking (RFC 6761 §6.4), so they are not asked here either.
fn resolver_says(host: &str, port: u16) -> String {
    let lower = host.to_ascii_lowercase();
    if lower == "invalid" || lower.ends_with(".invalid") {
        return "names under .invalid never resolve (RFC 6761)".into();
    }
    match (host, port).to_socket_addrs() {
        Err(e) => e.to_string(),
        Ok(addrs) if addrs.as_slice().is_empty() => "the resolver returned no address".into(),
        Ok(_) => "it did not resolve when the run started".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Input, Limits, Plan, Rate};

    fn plan() -> Settings {
        let input = Input::new("http://h:8081/", Rate::PerSecond(10.0), 1.0);
        Settings::of(&Plan::new(&input, &Limits::default()).unwrap())
    }

    /// A run of 10 responses, 10..=19 ms; headers at the same instants when `bodies_with_heads`.
    fn stats(bodies_with_heads: bool) -> RunStats {
        let mut s = RunStats {
            total_requests: 10,
            successes: 10,
            ..RunStats::default()
        };
        for i in 0..10 {
            let rt = 0.010 + f64::from(i) * 1e-3;
            s.timings[Id::ResponseTime].record(rt);
            s.timings[Id::Latency].record(if bodies_with_heads { rt } else { rt / 2.0 });
            s.timings[Id::CorrectedResponseTime].record(rt + 1e-4);
            s.timings[Id::DispatchDelay].record(1e-4);
        }
        s
    }

    #[test]
    fn json_carries_max_p999_and_the_histograms() {
        let r = to_json(&plan(), &stats(false));
        let keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
        // The original's fields first, in its order; the new ones join each family.
        assert_eq!(
            keys[..12],
            [
                "config",
                "total_requests",
                "errors",
                "mean_response_time",
                "std_response_time",
                "response_time_p50",
                "response_time_p90",
                "response_time_p97",
                "response_time_p99",
                "response_time_p999",
                "max_response_time",
                "mean_latency",
            ]
        );
        assert_eq!(r["max_response_time"], json!(0.010 + 9.0 * 1e-3));
        // numpy: np.percentile(np.arange(10, 20) / 1000, 99.9) == 0.018991
        let p999 = r["response_time_p999"].as_f64().unwrap();
        assert!((p999 - 0.018991).abs() < 1e-12, "{p999}");
        assert_eq!(r["max_dispatch_delay"], json!(1e-4));
        let hist = r["histograms"]["response_time"].as_array().unwrap();
        let total: u64 = hist.iter().map(|b| b["count"].as_u64().unwrap()).sum();
        assert_eq!(total, 10);
        let mut prev_to = 0.0;
        for b in hist {
            let (from, to) = (b["from"].as_f64().unwrap(), b["to"].as_f64().unwrap());
            assert!(
                from >= prev_to && to > from && b["count"].as_u64() > Some(0),
                "{b}"
            );
            prev_to = to;
        }
        assert!(hist[0]["from"].as_f64() <= Some(0.010));
        assert!(hist[hist.len() - 1]["to"].as_f64() > Some(0.019));
        let families: Vec<&str> = r["histograms"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            families,
            [
                "response_time",
                "latency",
                "corrected_response_time",
                "dispatch_delay"
            ]
        );
    }

    #[test]
    fn the_timeline_has_one_row_per_interval_and_llm_fields_only_in_llm_runs() {
        use crate::engine::outcome::{Completed, Failure, Outcome};
        let t0 = std::time::Instant::now();
        let mut s = stats(false);
        s.elapsed = std::time::Duration::from_millis(2500);
        s.timeline = crate::engine::Timeline::new(t0, std::time::Duration::from_secs(1));
        let at = |ms: u64| t0 + std::time::Duration::from_millis(ms);
        let mut c = Completed::unsent(0, at(100), 0, Failure::NotSent, at(1234));
        c.dispatch = Some(at(101));
        c.end_at = Some(at(1234));
        c.outcome = Outcome::Success;
        s.timeline.record(&c, &crate::engine::request_values(&c));
        let r = to_json(&plan(), &s);
        let rows = r["timeline"].as_array().unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows[1],
            json!({"start": 1.0, "duration": 1.0, "scheduled": 0, "sent": 0, "completed": 1,
                "successes": 1, "errors": 0, "not_sent": 0, "achieved_qps": 0.0,
                "response_time_p50": 1.133, "response_time_p90": 1.133, "response_time_p99": 1.133,
                "dispatch_delay_p99": null})
        );
        assert_eq!(
            (rows[2]["start"].clone(), rows[2]["duration"].clone()),
            (json!(2.0), json!(0.5))
        );
        assert_eq!(r["config"]["interval"], json!(1));
        assert_eq!(r.get("clock"), None, "not known: not said");
        s.clock = crate::engine::Clock {
            monotonic_start_ns: 5_000_000_123,
            unix_start: 1_767_225_600.25,
        };
        let r = to_json(&plan(), &s);
        assert_eq!(
            r["clock"],
            json!({"monotonic_start_ns": 5_000_000_123u64, "unix_start": 1_767_225_600.25})
        );
        // Statistics without a timeline (rebuilt from states that lack one) show none.
        assert_eq!(to_json(&plan(), &stats(false)).get("timeline"), None);
    }

    #[test]
    fn a_bucket_past_1000s_ends_at_the_largest_sample() {
        let mut s = RunStats::default();
        s.timings[Id::ResponseTime].record(1500.0);
        let r = to_json(&plan(), &s);
        assert_eq!(
            r["histograms"]["response_time"],
            json!([{"from": 1000.0, "to": 1500.0, "count": 1}])
        );
        assert_eq!(r["histograms"]["latency"], json!([]));
    }

    #[test]
    fn identical_rows_are_said_once() {
        let text = to_text(&plan(), &stats(true));
        let rows: Vec<&str> = text
            .lines()
            .filter(|l| l.trim_start().starts_with("latency (headers)"))
            .collect();
        assert_eq!(
            rows,
            [
                "  latency (headers)        = response_time on every figure: every body came \
              with its headers (or there was none)"
            ]
        );
        let text = to_text(&plan(), &stats(false));
        let rows: Vec<&str> = text
            .lines()
            .filter(|l| l.trim_start().starts_with("latency (headers)"))
            .collect();
        assert_eq!(rows.len(), 2, "a row and its note:\n{text}");
        assert!(rows[1].ends_with("dispatch to the end of the response headers"));
    }

    #[test]
    fn the_text_starts_with_the_settings_and_shows_p999_and_max() {
        let text = to_text(&plan(), &stats(false));
        assert!(text.starts_with(&settings(&plan())), "{text}");
        assert!(
            settings(&plan())
                .contains("10 req/s for 1s (10 requests, evenly spaced), up to 10 connections")
        );
        let head = text.lines().find(|l| l.contains("timing")).unwrap();
        let cols: Vec<&str> = head.split_whitespace().collect();
        assert_eq!(
            cols,
            [
                "timing", "count", "mean", "std", "p50", "p90", "p97", "p99", "p99.9", "max"
            ]
        );
        let row = text
            .lines()
            .find(|l| l.trim_start().starts_with("response_time "))
            .unwrap();
        assert!(row.trim_end().ends_with("19.00ms"), "{row}");
        assert!(text.contains("corrected_response_time  intended send time to the last byte"));
    }

    #[test]
    fn token_fields_name_their_sources() {
        use crate::engine::{TokenSource, TokenSources};
        let mut input = Input::new("http://h/v1/completions", Rate::PerSecond(10.0), 1.0);
        input.llm = Some(crate::plan::LlmInput::example());
        let plan = Settings::of(&Plan::new(&input, &Limits::default()).unwrap());
        let sources = |pairs: &[(TokenSource, u64)]| {
            let mut s = TokenSources::default();
            for &(src, n) in pairs {
                (0..n).for_each(|_| s.add(src));
            }
            s
        };
        let mut s = stats(false);
        s.elapsed = std::time::Duration::from_secs(2);
        s.output_tokens = 100;
        s.output_sources = sources(&[(TokenSource::Usage, 8), (TokenSource::Events, 2)]);
        s.input_sources = sources(&[(TokenSource::None, 10)]);
        let r = to_json(&plan, &s);
        assert_eq!(r["output_tokens_source"], json!("mixed"));
        assert_eq!(
            r["output_tokens_sources"],
            json!({"usage": 8, "tokenizer": 0, "events": 2, "none": 0})
        );
        assert_eq!(
            (r["input_tokens"].clone(), r["mean_input_tokens"].clone()),
            (Value::Null, Value::Null)
        );
        assert_eq!(r["input_tokens_source"], json!("none"));
        assert_eq!(r["total_token_throughput"], json!(50.0));
        let text = to_text(&plan, &s);
        assert!(
            text.contains("output tokens 100   (50.0 tokens/s, from usage for 8, events for 2)"),
            "{text}"
        );
        assert!(!text.contains("input tokens"), "no input count, no line");
        // Counted on 4 of 10 successes: the mean is over those 4.
        s.input_tokens = 40;
        s.input_sources = sources(&[(TokenSource::Tokenizer, 4), (TokenSource::None, 6)]);
        let r = to_json(&plan, &s);
        assert_eq!(r["input_tokens"], json!(40));
        assert_eq!(r["mean_input_tokens"], json!(10.0));
        assert_eq!(r["input_tokens_source"], json!("mixed"));
        assert_eq!(r["total_token_throughput"], json!(70.0));
        // No success: no source.
        let r = to_json(&plan, &RunStats::default());
        assert_eq!(r["output_tokens_source"], Value::Null);
    }

    #[test]
    fn one_of_a_thing_is_said_in_the_singular() {
        // It said "up to 1 connections" (and "1 conversations skipped").
        let mut i = Input::new("http://h/", Rate::PerSecond(1.0), 1.0);
        i.num_workers = Some(1);
        i.threads = Some(1);
        let text = settings(&Settings::of(&Plan::new(&i, &Limits::default()).unwrap()));
        assert!(
            text.contains(
                "1 req/s for 1s (1 request, evenly spaced), up to 1 connection, 1 thread,"
            ),
            "{text}"
        );
        i.num_workers = Some(2);
        i.duration = 2.0;
        let text = settings(&Settings::of(&Plan::new(&i, &Limits::default()).unwrap()));
        assert!(
            text.contains("(2 requests, evenly spaced), up to 2 connections, 1 thread,"),
            "{text}"
        );
        assert_eq!(plural(1, "conversation"), "1 conversation");
        assert_eq!(plural(0, "conversation"), "0 conversations");
    }

    #[test]
    fn close_samples_get_finer_rows() {
        let mut rec = Recorder::new();
        for i in 0..10 {
            rec.record(0.2402 + f64::from(i) * 2e-5);
        }
        let (lines, finer) = histogram_lines(&rec, 12, 40);
        assert!(finer);
        assert_eq!(lines.lines().count(), 10, "{lines}");
        // Rows 20 µs apart need three decimals of milliseconds.
        assert!(lines.starts_with("     240.200ms - 240.218ms"), "{lines}");
        let mut spread = Recorder::new();
        for i in 1..=100 {
            spread.record(f64::from(i) * 1e-3);
        }
        let (lines, finer) = histogram_lines(&spread, 12, 40);
        assert!(!finer && lines.lines().count() > 4, "{lines}");
        // Log-scale rows keep `human`'s digits, even next to a last row clamped narrow.
        spread.record(0.10001);
        let (lines, _) = histogram_lines(&spread, 12, 40);
        assert!(lines.contains(" 100.00ms - 100.01ms "), "{lines}");
    }
}
