//! Between runs and states: what a shard's run becomes as a [`ShardState`], and what a
//! [`Merged`] run becomes for the report (a [`Plan`] and [`RunStats`], so `report::to_json` and
//! `report::to_text` write it exactly as they write one process's run, plus the fields only a
//! merged run has).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde_json::Value;

use super::merge::Merged;
use super::state::{CLOCK, Counts, LlmEcho, PlanEcho, STATE_VERSION, ShardState, StageState};
use super::timeline::{Alignment, StateTimeline};
use crate::engine::{ErrorKey, RunStats, Scheduling, Timings};
use crate::llm::Api;
use crate::plan::stages::Stage;
use crate::plan::{Arrival, BodyMode, Input, Limits, LlmInput, Plan, Rate};
use crate::report;
use crate::stats::pack::pack_base64;
use crate::wall::WallTimes;

/// A state's words for how the threads were scheduled; [`scheduling_of`] reads them back.
fn scheduling_word(s: &Scheduling) -> String {
    match s {
        Scheduling::Normal => "normal".into(),
        Scheduling::Realtime => "realtime".into(),
        Scheduling::RealtimeDenied(e) => format!("realtime refused: {e}"),
    }
}

/// The scheduling a state's word names ([`scheduling_word`]'s inverse).
pub(super) fn scheduling_of(word: &str) -> Scheduling {
    match word {
        "realtime" => Scheduling::Realtime,
        w => match w.strip_prefix("realtime refused: ") {
            Some(e) => Scheduling::RealtimeDenied(e.to_string()),
            None => Scheduling::Normal,
        },
    }
}

impl PlanEcho {
    /// What the merged report needs of `plan`.
    pub fn of(plan: &Plan) -> PlanEcho {
        let method = std::str::from_utf8(plan.requests.first())
            .ok()
            .and_then(|r| r.split(' ').next())
            .unwrap_or("GET")
            .to_string();
        PlanEcho {
            config: plan.config.clone(),
            url: plan.url.clone(),
            method,
            qps: match plan.rate {
                Rate::PerSecond(q) => Some(q),
                Rate::Max => None,
            },
            duration: plan.duration.as_secs_f64(),
            count: plan.count,
            num_workers: plan.num_workers,
            threads: plan.threads,
            timeout: plan.timeout.as_secs_f64(),
            seed: match plan.arrival {
                Arrival::Poisson { seed } => Some(seed),
                Arrival::Constant => None,
            },
            insecure: plan.insecure,
            realtime: plan.realtime,
            body_mode: match plan.body_mode {
                BodyMode::Plain => "plain",
                BodyMode::Sse => "sse",
                BodyMode::WholeJson => "whole_json",
            }
            .into(),
            llm: plan.llm.as_ref().map(|l| LlmEcho {
                stream: l.stream,
                api: l.api.name().into(),
            }),
        }
    }

    /// A plan the report can be written from: the run's settings as the shards echoed them (the
    /// request itself is not rebuilt: the report only names its method).
    pub fn to_plan(&self) -> Result<Plan, String> {
        let rate = self.qps.map_or(Rate::Max, Rate::PerSecond);
        let mut input = Input::new(self.url.clone(), rate, self.duration);
        input.num_workers = Some(i64::try_from(self.num_workers).unwrap_or(i64::MAX));
        input.timeout = Some(self.timeout);
        input.method = Some(self.method.clone());
        input.poisson = self.seed.is_some();
        input.seed = self.seed;
        input.insecure = self.insecure;
        // What the shards' config echoed of stages, thresholds and goodput, so the merged report
        // has the whole run's schedule, counts goodput and checks the thresholds.
        let texts = |key: &str| -> Vec<String> {
            self.config
                .get(key)
                .and_then(Value::as_array)
                .map(|l| {
                    l.iter()
                        .filter_map(|t| t.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        input.thresholds = texts("thresholds");
        input.goodput = texts("goodput");
        if let Some(list) = self.config.get("stages").and_then(Value::as_array) {
            let stages = list
                .iter()
                .map(|s| Stage {
                    qps: s["qps"].as_f64().unwrap_or(0.0),
                    duration: s["duration"].as_f64().unwrap_or(0.0),
                })
                .collect();
            let ramp = self.config.get("ramp").and_then(Value::as_bool) == Some(true);
            input.set_stages(stages, ramp);
        }
        input.llm = self.llm.as_ref().map(|l| LlmInput {
            token: "-".into(),
            model: "-".into(),
            prompt: "-".into(),
            max_tokens: 1,
            stream: l.stream,
            api: Api::from_name(&l.api).unwrap_or(Api::Completions),
            payload: None,
        });
        // The command line's ceilings: what any shard's plan passed (a state past them is
        // refused when read, `ShardState::check`).
        let mut plan = Plan::new(&input, &Limits::command_line())
            .map_err(|e| format!("the states' plan cannot be read back: {e}"))?;
        plan.url = self.url.clone();
        plan.config = self.config.clone();
        plan.threads = self.threads;
        plan.realtime = self.realtime;
        plan.body_mode = match self.body_mode.as_str() {
            "sse" => BodyMode::Sse,
            "whole_json" => BodyMode::WholeJson,
            _ => BodyMode::Plain,
        };
        Ok(plan)
    }
}

/// A run's (or stage's) errors, split as a state keeps them: by HTTP status, and by name.
fn split_errors(stats: &RunStats) -> (BTreeMap<u16, u64>, BTreeMap<String, u64>) {
    let mut statuses = BTreeMap::new();
    let mut failures = BTreeMap::new();
    for (k, &n) in &stats.errors {
        match k {
            ErrorKey::Status(s) => {
                statuses.insert(*s, n);
            }
            ErrorKey::Name(name) => {
                failures.insert(name.clone(), n);
            }
        }
    }
    (statuses, failures)
}

/// Every non-empty timing family of `t`, packed.
fn packed_timings(t: &Timings) -> BTreeMap<String, String> {
    t.iter()
        .map(|(m, r)| (m.name, r))
        .filter(|(_, r)| r.count() > 0)
        .map(|(name, r)| (name.to_string(), pack_base64(r)))
        .collect()
}

impl Counts {
    /// The counters of a run (or stage) that handed `dispatched` requests to a connection.
    fn of(stats: &RunStats, dispatched: u64) -> Counts {
        Counts {
            total_requests: stats.total_requests,
            successes: stats.successes,
            dispatched,
            bytes_received: stats.bytes_received,
            connections_opened: stats.connections_opened,
            output_tokens: stats.output_tokens,
            output_sources: stats.output_sources,
            input_tokens: stats.input_tokens,
            input_sources: stats.input_sources,
            tls_full: stats.tls_full,
            tls_resumed: stats.tls_resumed,
            good_requests: stats.good_requests,
            token_gaps: stats.token_gaps,
            token_gaps_coalesced: stats.token_gaps_coalesced,
            tokens: stats.tokens,
        }
    }
}

impl StageState {
    /// One stage of a shard's run (`stats` is its entry in the run's `stages`).
    fn of(stats: &RunStats) -> StageState {
        let (statuses, failures) = split_errors(stats);
        StageState {
            duration: stats.elapsed.as_secs_f64(),
            counts: Counts::of(stats, stats.wall.dispatched),
            first_dispatch_unix_ns: stats.wall.first_dispatch,
            last_dispatch_unix_ns: stats.wall.last_dispatch,
            statuses,
            failures,
            timings: packed_timings(&stats.timings),
        }
    }
}

impl ShardState {
    /// The state of a shard's finished run.
    pub fn of_run(plan: &Plan, stats: &RunStats, times: &WallTimes) -> ShardState {
        let (statuses, failures) = split_errors(stats);
        ShardState {
            pacer_state: STATE_VERSION,
            pacer_version: env!("CARGO_PKG_VERSION").into(),
            fingerprint: super::fingerprint(plan),
            shard: plan.shard,
            clock: CLOCK.into(),
            start_unix_ns: times.start,
            ready_unix_ns: times.ready,
            end_unix_ns: times.end,
            start_late: times.start_late(),
            plan: PlanEcho::of(plan),
            counts: Counts::of(stats, times.dispatched),
            first_dispatch_unix_ns: times.first_dispatch,
            last_dispatch_unix_ns: times.last_dispatch,
            scheduling: scheduling_word(&stats.scheduling),
            interrupted: stats.interrupted,
            statuses,
            failures,
            timings: packed_timings(&stats.timings),
            health: stats.health.clone(),
            timeline: StateTimeline::of(&stats.timeline),
            stages: stats.stages.iter().map(StageState::of).collect(),
        }
    }
}

/// What a run's report says about its start when it was given one (`--start-at`): how late it
/// was ready, in seconds (0 when on time).
pub fn add_start_late(plan: &Plan, stats: &RunStats, report: &mut Value) {
    if plan.start_at.is_some()
        && let Value::Object(m) = report
    {
        m.insert(
            "start_late".into(),
            serde_json::json!(stats.wall.start_late()),
        );
    }
}

impl Merged {
    /// The merged report's JSON: a run's report (`report::to_json`), with its `timeline` on the
    /// earliest start's grid and its `clock` in Unix time only (each shard's monotonic clock is
    /// its machine's), then `shards`, `start_skew`, `fingerprint`, `timeline_alignment`, and
    /// `percentile_rank_error` when a sketch was read.
    pub fn to_json(&self) -> Result<Value, String> {
        let plan = self.plan.to_plan()?;
        let stats = &self.stats;
        let mut v = report::to_json(&plan, stats);
        if let Value::Object(m) = &mut v {
            m.insert(
                "clock".into(),
                serde_json::json!({"unix_start": stats.clock.unix_start}),
            );
            for (k, field) in self.shard_fields() {
                m.insert(k.into(), field);
            }
        }
        Ok(v)
    }

    /// The merged report's text: a run's text report, then a line per shard.
    pub fn to_text(&self) -> Result<String, String> {
        let plan = self.plan.to_plan()?;
        let mut out = report::to_text(&plan, &self.stats);
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "  merged from {} shards (plan {}), start skew {}",
            self.shards,
            self.fingerprint,
            report::human(self.start_skew)
        );
        match &self.alignment {
            Alignment::Aligned { off_grid_ns: 0, .. } => {
                let _ = writeln!(
                    out,
                    "  timeline: the shards' intervals added on one grid from the earliest start"
                );
            }
            Alignment::Aligned { off_grid_ns, .. } => {
                let _ = writeln!(
                    out,
                    "  timeline: the shards' intervals moved to the nearest of one grid from the \
                     earliest start (up to {} off)",
                    report::human(Duration::from_nanos(*off_grid_ns).as_secs_f64())
                );
            }
            Alignment::Omitted { why, .. } => {
                let _ = writeln!(out, "  no timeline: {why}");
            }
        }
        if let Some(e) = self.percentile_rank_error {
            let _ = writeln!(
                out,
                "  percentiles from the merged sketch: within {}% rank error (more than {} samples)",
                e * 100.0,
                crate::stats::EXACT_LIMIT
            );
        }
        let _ = writeln!(
            out,
            "    {:<9} {:<27} {:>10} {:>10} {:>10} {:>9} {:>7}",
            "shard", "start", "offset", "late", "elapsed", "requests", "errors"
        );
        for s in &self.per_shard {
            let _ = writeln!(
                out,
                "    {:<9} {:<27} {:>10} {:>10} {:>10} {:>9} {:>7}",
                s.shard.to_string(),
                s.start,
                report::human(s.start_offset),
                report::human(s.start_late),
                report::human(s.elapsed),
                s.total_requests,
                s.errors
            );
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::Id;
    use crate::shard::{ShardIndex, merge};
    use crate::wall::UnixNanos;

    fn input(url: &str) -> Input {
        let mut i = Input::new(url, Rate::PerSecond(40.0), 2.5);
        i.num_workers = Some(6);
        i.threads = Some(2);
        i
    }

    #[test]
    fn plans_read_back_as_the_report_shows_them() {
        let mut poisson = input("http://127.0.0.1:9/x");
        poisson.poisson = true;
        poisson.seed = Some(11);
        poisson.method = Some("POST".into());
        poisson.realtime = true;
        let mut llm = input("https://127.0.0.1:9/v1/completions");
        llm.insecure = true;
        llm.llm = Some(LlmInput {
            token: "secret-token".into(),
            model: "m".into(),
            prompt: "p".into(),
            max_tokens: 7,
            stream: true,
            api: Api::Chat,
            payload: None,
        });
        let mut whole = llm.clone();
        if let Some(l) = whole.llm.as_mut() {
            l.stream = false;
        }
        let mut max = input("http://127.0.0.1:9/");
        max.qps = Rate::Max;
        for i in [input("http://127.0.0.1:9/"), poisson, llm, whole, max] {
            let plan = Plan::new(&i, &Limits::default()).unwrap();
            let back = PlanEcho::of(&plan).to_plan().unwrap();
            assert_eq!(
                report::settings(&back),
                report::settings(&plan),
                "{}",
                i.url
            );
            assert_eq!(back.config, plan.config);
            assert_eq!(back.body_mode, plan.body_mode);
            assert_eq!(back.target.tls, plan.target.tls);
            assert_eq!(back.llm.is_some(), plan.llm.is_some());
            assert!(
                !serde_json::to_string(&PlanEcho::of(&plan))
                    .unwrap()
                    .contains("secret")
            );
        }
    }

    /// A run of one shard, stated and merged, reports as the run itself did.
    #[test]
    fn one_shard_merged_reports_as_its_run() {
        let mut i = input("http://127.0.0.1:9/");
        i.shard = ShardIndex::WHOLE;
        let plan = Plan::new(&i, &Limits::default()).unwrap();
        let mut stats = RunStats {
            total_requests: 100,
            successes: 97,
            elapsed: Duration::from_millis(2500),
            bytes_received: 12_345,
            connections_opened: 6,
            achieved_qps: 40.0,
            // As the run's own stats say: every request was handed to a connection.
            sent: 100,
            ..RunStats::default()
        };
        stats.errors.insert(ErrorKey::Status(400), 2);
        stats.errors.insert(ErrorKey::Name("timeout".into()), 1);
        for k in 0..99u64 {
            let x = Duration::from_nanos(1_000_000 + k * 7919).as_secs_f64();
            stats.timings[Id::ResponseTime].record(x);
            stats.timings[Id::Latency].record(x / 2.0);
            stats.timings[Id::CorrectedResponseTime].record(x + 1e-4);
            stats.timings[Id::DispatchDelay].record(1e-5 * (k % 5) as f64);
        }
        const T: UnixNanos = 1_767_225_600_000_000_000;
        let times = WallTimes {
            start: T,
            ready: T - 5_000_000,
            end: T + 2_500_000_000,
            first_dispatch: Some(T),
            last_dispatch: Some(T + 2_475_000_000),
            dispatched: 100,
        };
        let state = ShardState::of_run(&plan, &stats, &times);
        assert_eq!(state.start_late, 0.0);
        assert_eq!(state.statuses[&400], 2);
        assert_eq!(state.failures["timeout"], 1);
        // Empty families are left out; the merge reads them as empty.
        assert_eq!(state.timings.len(), 4);
        let line = state.to_line();
        let back = ShardState::parse(&line, "s").unwrap();
        let merged = merge(vec![("s".into(), back)]).unwrap();
        let got = merged.to_json().unwrap();
        let want = report::to_json(&plan, &stats);
        for (k, v) in want.as_object().unwrap() {
            match k.as_str() {
                // Computed from the wall times rather than the engine's clock.
                "elapsed" => assert_eq!(got[k], serde_json::json!(2.5)),
                "achieved_qps" => assert!((got[k].as_f64().unwrap() - 99.0 / 2.475).abs() < 1e-9),
                "config" => {
                    let mut c = v.as_object().unwrap().clone();
                    c.insert("shards".into(), serde_json::json!(1));
                    assert_eq!(got[k], Value::Object(c));
                }
                _ => assert_eq!(&got[k], v, "{k}"),
            }
        }
        assert_eq!(got["shards"][0]["shard"], "0/1");
        assert_eq!(got["start_skew"], 0.0);
        assert_eq!(
            got["fingerprint"],
            serde_json::json!(crate::shard::fingerprint(&plan))
        );
        assert!(got.get("percentile_rank_error").is_none());
        let text = merged.to_text().unwrap();
        assert!(text.contains("merged from 1 shards"), "{text}");
        assert!(
            text.contains("requests 100   successes 97   errors 3"),
            "{text}"
        );
    }

    #[test]
    fn scheduling_words_read_back() {
        for s in [
            Scheduling::Normal,
            Scheduling::Realtime,
            Scheduling::RealtimeDenied("EPERM".into()),
        ] {
            assert_eq!(scheduling_of(&scheduling_word(&s)), s);
        }
    }
}
