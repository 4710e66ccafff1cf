//! Between runs and states: what a shard's run becomes as a [`ShardState`] (its own statistics
//! and the report's settings), and what a [`Merged`] run becomes for the report (the same
//! `report::to_json` and `report::to_text` as one process's run, plus the fields only a merged
//! run has).

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::Value;

use super::merge::Merged;
use super::state::{CLOCK, STATE_VERSION, ShardState};
use super::timeline::Alignment;
use crate::engine::RunStats;
use crate::plan::Plan;
use crate::report::{self, Settings};
use crate::wall::WallTimes;

impl ShardState {
    /// The state of a shard's finished run: its statistics as the run made them, placed on the
    /// wall clock by `times` (the run's own `stats.wall`, whose `dispatched` is its `sent`).
    pub fn of_run(plan: &Plan, stats: &RunStats, times: &WallTimes) -> ShardState {
        let mut stats = stats.clone();
        stats.wall = *times;
        stats.sent = times.dispatched;
        ShardState {
            pacer_state: STATE_VERSION,
            pacer_version: env!("CARGO_PKG_VERSION").into(),
            fingerprint: super::fingerprint(plan),
            shard: plan.shard,
            clock: CLOCK.into(),
            settings: Settings::of(plan),
            stats,
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
    pub fn to_json(&self) -> Value {
        let stats = &self.stats;
        let mut v = report::to_json(&self.settings, stats);
        if let Value::Object(m) = &mut v {
            m.insert(
                "clock".into(),
                serde_json::json!({"unix_start": stats.clock.unix_start}),
            );
            for (k, field) in self.shard_fields() {
                m.insert(k.into(), field);
            }
        }
        v
    }

    /// The merged report's text: a run's text report, then a line per shard.
    pub fn to_text(&self) -> String {
        let mut out = report::to_text(&self.settings, &self.stats);
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
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ErrorKey;
    use crate::llm::Api;
    use crate::metric::Id;
    use crate::plan::{Input, Limits, LlmInput, Rate};
    use crate::shard::{ShardIndex, merge};
    use crate::wall::UnixNanos;

    fn input(url: &str) -> Input {
        let mut i = Input::new(url, Rate::PerSecond(40.0), 2.5);
        i.num_workers = Some(6);
        i.threads = Some(2);
        i
    }

    /// A state's settings read back as the report shows them, with no token in them.
    #[test]
    fn settings_read_back_as_the_report_shows_them() {
        let mut poisson = input("http://127.0.0.1:9/x?key=secret-key");
        poisson.poisson = true;
        poisson.seed = Some(11);
        poisson.method = Some("POST".into());
        poisson.realtime = true;
        poisson.thresholds = vec!["response_time_p99<=0.5".into()];
        let mut llm = input("https://127.0.0.1:9/v1/completions");
        llm.insecure = true;
        llm.llm = Some(LlmInput {
            token: "secret-token".into(),
            model: "m".into(),
            prompt: "p".into(),
            max_tokens: 7,
            stream: true,
            api: Api::Chat,
            payload_style: None,
            payload: None,
        });
        let mut whole = llm.clone();
        if let Some(l) = whole.llm.as_mut() {
            l.stream = false;
        }
        let mut max = input("http://127.0.0.1:9/");
        max.qps = Rate::Max;
        let mut staged = input("http://127.0.0.1:9/");
        staged.set_stages(
            vec![
                crate::plan::stages::Stage {
                    qps: 10.0,
                    duration: 1.0,
                },
                crate::plan::stages::Stage {
                    qps: 30.0,
                    duration: 2.0,
                },
            ],
            true,
        );
        for i in [
            input("http://127.0.0.1:9/"),
            poisson,
            llm,
            whole,
            max,
            staged,
        ] {
            let plan = Plan::new(&i, &Limits::default()).unwrap();
            let settings = Settings::of(&plan);
            let line = serde_json::to_string(&settings).unwrap();
            assert!(!line.contains("secret"), "{line}");
            let back: Settings = serde_json::from_str(&line).unwrap();
            assert_eq!(back, settings, "{}", i.url);
            assert_eq!(report::settings(&back), report::settings(&settings));
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
        assert_eq!(state.start_late(), 0.0);
        assert_eq!(state.stats.errors[&ErrorKey::Status(400)], 2);
        let line = state.to_line();
        // Empty families are left out; the merge reads them as empty.
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["stats"]["timings"].as_object().unwrap().len(), 4);
        assert_eq!(
            v["stats"]["errors"],
            serde_json::json!([{"status": 400, "count": 2}, {"failure": "timeout", "count": 1}])
        );
        let back = ShardState::parse(&line, "s").unwrap();
        let merged = merge(vec![("s".into(), back)]).unwrap();
        let got = merged.to_json();
        let want = report::to_json(&Settings::of(&plan), &stats);
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
        let text = merged.to_text();
        assert!(text.contains("merged from 1 shards"), "{text}");
        assert!(
            text.contains("requests 100   successes 97   errors 3"),
            "{text}"
        );
    }
}
