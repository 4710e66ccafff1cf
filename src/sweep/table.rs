//! A sweep's table and its knee: one [`Row`] per step, read from the step's report (so the table
//! says what the reports say), the checks each step passes or fails, and the knee rule.
//!
//! **The knee rule.** A step passes when it kept up with its schedule (its achieved rate is at
//! least `min_achieved` of the asked rate, 99% by default: a target past its capacity falls
//! behind whatever the latency objectives) and every threshold held: the `--threshold`s given,
//! or, with none, `error_rate<=0.01`. A step that was interrupted does not count. The knee is
//! the highest asked rate whose step passed; with no step passing it is undefined, and the
//! JSON says why. Steps that failed below the knee are listed: a knee above a failure is worth a
//! second look (a noisy neighbour, a garbage collection).

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::metric::Id;
use crate::report::Stat::{P50, P99};
use crate::report::human;

/// The error rate a step may have when no `--threshold` is given.
pub const DEFAULT_MAX_ERROR_RATE: f64 = 0.01;

/// One check of a step: what a threshold in the report looks like
/// (`{"expression", "metric", "value", "pass"}`).
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    pub expression: String,
    pub metric: String,
    pub value: Value,
    pub pass: bool,
}

impl Check {
    pub fn to_json(&self) -> Value {
        json!({"expression": self.expression, "metric": self.metric, "value": self.value,
            "pass": self.pass})
    }

    /// A threshold the step's report checked itself.
    fn from_report(v: &Value) -> Option<Check> {
        Some(Check {
            expression: v.get("expression")?.as_str()?.to_string(),
            metric: v.get("metric")?.as_str()?.to_string(),
            value: v.get("value").cloned().unwrap_or(Value::Null),
            pass: v.get("pass")?.as_bool()?,
        })
    }
}

/// The rule in words, as the table and the JSON state it.
pub fn rule(min_achieved: f64, thresholds: bool) -> String {
    let keep_up = format!(
        "its achieved rate is at least {}% of the asked rate",
        min_achieved * 100.0
    );
    let rest = if thresholds {
        "every threshold held".to_string()
    } else {
        format!(
            "its error rate is at most {}% (no --threshold given)",
            DEFAULT_MAX_ERROR_RATE * 100.0
        )
    };
    format!(
        "a step passes when {keep_up} and {rest}; the knee is the highest asked rate whose \
         step passed"
    )
}

/// One step of the table.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// 1-based.
    pub step: usize,
    pub asked: f64,
    /// None when the step sent fewer than two requests (no span to measure a rate over).
    pub achieved: Option<f64>,
    /// Response time.
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    /// Corrected response time (from the intended send time): past the capacity, requests wait
    /// for a connection, and this is where that wait shows.
    pub corrected_p99: Option<f64>,
    /// Streaming runs only.
    pub ttft_p50: Option<f64>,
    pub ttft_p99: Option<f64>,
    pub tpot_p50: Option<f64>,
    pub tpot_p99: Option<f64>,
    pub error_rate: f64,
    /// Requests per second that succeeded (and met every `--goodput` objective, when given).
    pub goodput: f64,
    pub checks: Vec<Check>,
    pub interrupted: bool,
    /// Why pacer itself limited the step (its report's `health`), when it did: a failure then
    /// may be the generator's, not the target's.
    pub generator_limited: Option<String>,
    pub pass: bool,
}

fn f(report: &Value, key: &str) -> Option<f64> {
    report.get(key).and_then(Value::as_f64)
}

impl Row {
    /// The row of the step at `asked` req/s from its report.
    pub fn of(step: usize, asked: f64, report: &Value, min_achieved: f64, thresholds: bool) -> Row {
        let achieved = f(report, "achieved_qps");
        let total = f(report, "total_requests").unwrap_or(0.0);
        let error_rate = f(report, "error_rate").unwrap_or_else(|| {
            if total > 0.0 {
                f(report, "errors").unwrap_or(0.0) / total
            } else {
                0.0
            }
        });
        // Successes per second of the step: over its duration, or its elapsed time when the
        // last responses came after it (never the elapsed time alone: a step of N sends at R
        // req/s ends about (N-1)/R after its start, which would show more than it asked).
        let secs = f(report, "elapsed").unwrap_or(0.0).max(
            report
                .pointer("/config/duration")
                .and_then(Value::as_f64)
                .unwrap_or(0.0),
        );
        let goodput = f(report, "goodput")
            .unwrap_or_else(|| f(report, "successes").unwrap_or(0.0) / secs.max(1e-9));
        let floor = min_achieved * asked;
        let mut checks = vec![Check {
            expression: format!("achieved_qps>={}", round6(floor)),
            metric: "achieved_qps".into(),
            value: json!(achieved),
            pass: achieved.is_some_and(|a| a >= floor),
        }];
        if thresholds {
            let listed = report.get("thresholds").and_then(Value::as_array);
            checks.extend(listed.into_iter().flatten().filter_map(Check::from_report));
        } else {
            checks.push(Check {
                expression: format!("error_rate<={DEFAULT_MAX_ERROR_RATE}"),
                metric: "error_rate".into(),
                value: json!(error_rate),
                pass: error_rate <= DEFAULT_MAX_ERROR_RATE,
            });
        }
        let interrupted = report.get("interrupted") == Some(&json!(true));
        let health = report.get("health");
        let generator_limited = (health.and_then(|h| h.get("verdict"))
            == Some(&json!("generator-limited")))
        .then(|| {
            let reasons = health
                .and_then(|h| h.get("reasons"))
                .and_then(Value::as_array);
            let words: Vec<&str> = reasons
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            words.join("; ")
        });
        let pass = !interrupted && checks.iter().all(|c| c.pass);
        Row {
            step,
            asked,
            achieved,
            p50: f(report, &P50.field(Id::ResponseTime.name())),
            p99: f(report, &P99.field(Id::ResponseTime.name())),
            corrected_p99: f(report, &P99.field(Id::CorrectedResponseTime.name())),
            ttft_p50: f(report, &P50.field(Id::TimeToFirstToken.name())),
            ttft_p99: f(report, &P99.field(Id::TimeToFirstToken.name())),
            tpot_p50: f(report, &P50.field(Id::TimePerOutputToken.name())),
            tpot_p99: f(report, &P99.field(Id::TimePerOutputToken.name())),
            error_rate,
            goodput,
            checks,
            interrupted,
            generator_limited,
            pass,
        }
    }

    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "step": self.step,
            "asked_qps": self.asked,
            "achieved_qps": self.achieved,
            "response_time_p50": self.p50,
            "response_time_p99": self.p99,
            "corrected_response_time_p99": self.corrected_p99,
        });
        if self.ttft_p50.is_some() || self.ttft_p99.is_some() {
            v["time_to_first_token_p50"] = json!(self.ttft_p50);
            v["time_to_first_token_p99"] = json!(self.ttft_p99);
            v["time_per_output_token_p50"] = json!(self.tpot_p50);
            v["time_per_output_token_p99"] = json!(self.tpot_p99);
        }
        v["error_rate"] = json!(self.error_rate);
        v["goodput"] = json!(self.goodput);
        v["pass"] = json!(self.pass);
        v["checks"] = Value::Array(self.checks.iter().map(Check::to_json).collect());
        if self.interrupted {
            v["interrupted"] = json!(true);
        }
        if let Some(why) = &self.generator_limited {
            v["generator_limited"] = json!(why);
        }
        v
    }

    /// What the result column says: `ok`, `interrupted`, or the checks that failed with their
    /// values.
    fn verdict(&self) -> String {
        if self.interrupted {
            return "interrupted (not counted)".into();
        }
        let limited = match &self.generator_limited {
            Some(why) => format!(" [pacer was generator-limited: {why}]"),
            None => String::new(),
        };
        if self.pass {
            return format!("ok{limited}");
        }
        let failed: Vec<String> = self
            .checks
            .iter()
            .filter(|c| !c.pass)
            .map(|c| format!("{} (got {})", c.expression, value_text(&c.metric, &c.value)))
            .collect();
        format!("FAIL {}{limited}", failed.join(", "))
    }
}

/// A check's measured value: times in their unit, other numbers to three decimals.
fn value_text(metric: &str, v: &Value) -> String {
    let timed = ["time", "latency", "delay"]
        .iter()
        .any(|w| metric.contains(w));
    match v.as_f64() {
        Some(x) if timed => human(x),
        Some(x) => ((x * 1e3).round() / 1e3).to_string(),
        None if v.is_null() => "nothing".into(),
        None => v.to_string(),
    }
}

/// At most 6 significant decimals: `0.99 × 450` as 445.5, not 445.49999999999994.
fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// The knee: the highest asked rate whose step passed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Knee {
    pub qps: Option<f64>,
    pub step: Option<usize>,
    /// Why there is none, or what to know about it.
    pub note: Option<String>,
    /// Asked rates below the knee whose steps failed.
    pub failed_below: Vec<f64>,
}

impl Knee {
    pub fn to_json(&self) -> Value {
        let mut v = json!({"qps": self.qps, "step": self.step});
        if let Some(n) = &self.note {
            v["note"] = json!(n);
        }
        if !self.failed_below.is_empty() {
            v["failed_below"] = json!(self.failed_below);
        }
        v
    }

    /// One line for the end of the table.
    pub fn text(&self) -> String {
        let mut out = match (self.qps, self.step) {
            (Some(q), Some(s)) => format!("knee: {q} req/s (step {s})"),
            _ => "knee: undefined".into(),
        };
        if let Some(n) = &self.note {
            let _ = write!(out, ": {n}");
        }
        out
    }
}

/// The knee of the steps that ran; `probed` when their rates came from a probe's peak (so the
/// highest one is the peak itself).
pub fn knee(rows: &[Row], probed: bool) -> Knee {
    let counted: Vec<&Row> = rows.iter().filter(|r| !r.interrupted).collect();
    let best = counted
        .iter()
        .filter(|r| r.pass)
        .max_by(|a, b| a.asked.total_cmp(&b.asked));
    let Some(best) = best else {
        let note = if counted.is_empty() {
            "no step ran to its end"
        } else {
            "no step passed its checks: the target did not take even the lowest rate"
        };
        return Knee {
            note: Some(note.into()),
            ..Knee::default()
        };
    };
    let failed_below: Vec<f64> = counted
        .iter()
        .filter(|r| !r.pass && r.asked < best.asked)
        .map(|r| r.asked)
        .collect();
    let mut notes = Vec::new();
    let limited: Vec<String> = counted
        .iter()
        .filter(|r| !r.pass && r.generator_limited.is_some())
        .map(|r| r.asked.to_string())
        .collect();
    if !failed_below.is_empty() {
        let list: Vec<String> = failed_below.iter().map(|r| r.to_string()).collect();
        notes.push(format!(
            "steps below it failed ({} req/s): the result is noisy, run it again",
            list.join(", ")
        ));
    }
    if !limited.is_empty() {
        notes.push(format!(
            "pacer itself was generator-limited in failed steps ({} req/s): give it more CPU \
             (--threads, a quieter machine) before trusting them",
            limited.join(", ")
        ));
    }
    if counted.iter().all(|r| r.pass) && !probed {
        notes.push("every step passed: the target may take more than the highest rate".into());
    }
    Knee {
        qps: Some(best.asked),
        step: Some(best.step),
        note: (!notes.is_empty()).then(|| notes.join("; ")),
        failed_below,
    }
}

/// The table's head; `stream` adds time to first token and time per output token.
pub fn text_head(stream: bool) -> String {
    let mut cols = vec!["step", "asked/s", "achieved/s", "p50", "p99", "corr. p99"];
    if stream {
        cols.extend(["ttft p50", "ttft p99", "tpot p50", "tpot p99"]);
    }
    cols.extend(["errors", "goodput/s"]);
    line(
        &cols.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        "result",
    )
}

/// One row of the table, as [`text_head`] heads it.
pub fn text_row(r: &Row, stream: bool) -> String {
    let t = |x: Option<f64>| x.map(human).unwrap_or_else(|| "-".into());
    let mut cells = vec![
        r.step.to_string(),
        format!("{:.1}", r.asked),
        r.achieved.map_or_else(|| "-".into(), |a| format!("{a:.1}")),
        t(r.p50),
        t(r.p99),
        t(r.corrected_p99),
    ];
    if stream {
        cells.extend([t(r.ttft_p50), t(r.ttft_p99), t(r.tpot_p50), t(r.tpot_p99)]);
    }
    cells.push(format!("{:.2}%", r.error_rate * 100.0));
    cells.push(format!("{:.1}", r.goodput));
    line(&cells, &r.verdict())
}

/// Cells right-aligned in fixed widths, then the free-width last column.
fn line(cells: &[String], last: &str) -> String {
    let mut out = String::from(" ");
    for (i, c) in cells.iter().enumerate() {
        let w = if i == 0 { 4 } else { 10 };
        let _ = write!(out, " {c:>w$}");
    }
    let _ = write!(out, "  {last}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(achieved: f64, total: u64, errors: u64) -> Value {
        json!({"achieved_qps": achieved, "total_requests": total, "errors": errors,
            "successes": total - errors, "elapsed": 1.0,
            "response_time_p50": 0.02, "response_time_p99": 0.03})
    }

    fn row(step: usize, asked: f64, achieved: f64, errors: u64) -> Row {
        Row::of(
            step,
            asked,
            &report(achieved, asked as u64, errors),
            0.99,
            false,
        )
    }

    #[test]
    fn a_step_passes_when_it_keeps_up_without_errors() {
        let r = row(1, 100.0, 99.5, 1);
        assert!(r.pass, "{r:?}");
        assert_eq!(
            r.checks
                .iter()
                .map(|c| c.expression.as_str())
                .collect::<Vec<_>>(),
            ["achieved_qps>=99", "error_rate<=0.01"]
        );
        assert_eq!((r.error_rate, r.goodput), (0.01, 99.0));
        // Behind its schedule.
        let r = row(2, 450.0, 440.0, 0);
        assert!(!r.pass);
        assert_eq!(r.verdict(), "FAIL achieved_qps>=445.5 (got 440)");
        // Too many errors.
        let r = row(3, 100.0, 100.0, 2);
        assert_eq!(r.verdict(), "FAIL error_rate<=0.01 (got 0.02)");
        // The report's own error_rate and goodput win.
        let mut rep = report(100.0, 100, 0);
        rep["error_rate"] = json!(0.5);
        rep["goodput"] = json!(12.5);
        let r = Row::of(1, 100.0, &rep, 0.99, false);
        assert_eq!((r.error_rate, r.goodput, r.pass), (0.5, 12.5, false));
    }

    #[test]
    fn thresholds_in_the_report_replace_the_default_error_check() {
        let mut rep = report(100.0, 100, 50);
        rep["thresholds"] = json!([
            {"expression": "response_time_p99<=25ms", "metric": "response_time_p99",
                "value": 0.03, "pass": false},
            {"expression": "error_rate<=60%", "metric": "error_rate", "value": 0.5, "pass": true},
        ]);
        let r = Row::of(4, 100.0, &rep, 0.99, true);
        assert_eq!(r.checks.len(), 3);
        assert!(!r.pass);
        assert_eq!(r.verdict(), "FAIL response_time_p99<=25ms (got 30.00ms)");
        assert_eq!(
            r.to_json()["checks"][1]["metric"],
            json!("response_time_p99")
        );
    }

    #[test]
    fn the_knee_is_the_highest_passing_rate() {
        let rows = vec![
            row(1, 100.0, 100.0, 0),
            row(2, 200.0, 200.0, 0),
            row(3, 300.0, 299.0, 0),
            row(4, 400.0, 350.0, 0),
            row(5, 500.0, 351.0, 0),
        ];
        let k = knee(&rows, false);
        assert_eq!(
            (k.qps, k.step, k.note.as_deref()),
            (Some(300.0), Some(3), None)
        );
        assert_eq!(k.text(), "knee: 300 req/s (step 3)");
        assert_eq!(k.to_json(), json!({"qps": 300.0, "step": 3}));

        // A failure below the knee is said.
        let mut noisy = rows.clone();
        noisy[1] = row(2, 200.0, 150.0, 0);
        let k = knee(&noisy, false);
        assert_eq!((k.qps, k.failed_below.clone()), (Some(300.0), vec![200.0]));
        assert!(
            k.note
                .unwrap()
                .starts_with("steps below it failed (200 req/s)")
        );

        // Every step passing says the sweep did not reach the limit, unless the highest step
        // was the probe's peak.
        let k = knee(&rows[..3], false);
        assert_eq!(k.qps, Some(300.0));
        assert!(k.note.unwrap().starts_with("every step passed"));
        assert_eq!(knee(&rows[..3], true).note, None);

        // None passing, or none counted: undefined, with the reason.
        let k = knee(&rows[3..], false);
        assert_eq!(k.qps, None);
        assert_eq!(
            k.text(),
            "knee: undefined: no step passed its checks: the target did not take even the \
             lowest rate"
        );
        let mut cut = rows[0].clone();
        cut.interrupted = true;
        cut.pass = false;
        assert_eq!(
            knee(&[cut], true).note.as_deref(),
            Some("no step ran to its end")
        );
        assert_eq!(knee(&[], true).qps, None);
    }

    #[test]
    fn a_generator_limited_step_says_so() {
        let mut rep = report(300.0, 300, 0);
        rep["health"] = json!({"verdict": "generator-limited",
            "reasons": ["one thread at 97% of a core"]});
        let r = Row::of(2, 400.0, &rep, 0.99, false);
        assert_eq!(
            r.generator_limited.as_deref(),
            Some("one thread at 97% of a core")
        );
        assert_eq!(
            r.verdict(),
            "FAIL achieved_qps>=396 (got 300) [pacer was generator-limited: one thread at 97% \
             of a core]"
        );
        assert_eq!(
            r.to_json()["generator_limited"],
            json!("one thread at 97% of a core")
        );
        let k = knee(&[row(1, 100.0, 100.0, 0), r], true);
        assert!(
            k.note
                .unwrap()
                .starts_with("pacer itself was generator-limited in failed steps (400 req/s)")
        );
        rep["health"] = json!({"verdict": "ok", "reasons": []});
        assert_eq!(Row::of(2, 400.0, &rep, 0.99, false).generator_limited, None);
    }

    #[test]
    fn an_interrupted_step_does_not_count() {
        let mut rep = report(100.0, 100, 0);
        rep["interrupted"] = json!(true);
        let r = Row::of(2, 100.0, &rep, 0.99, false);
        assert!(!r.pass && r.interrupted);
        assert_eq!(r.verdict(), "interrupted (not counted)");
        let k = knee(&[row(1, 50.0, 50.0, 0), r], true);
        assert_eq!(k.qps, Some(50.0));
    }

    #[test]
    fn text_rows_line_up_under_the_head() {
        let head = text_head(false);
        let r = text_row(&row(1, 100.0, 99.5, 0), false);
        assert_eq!(head.find("result"), r.find("ok"), "{head}\n{r}");
        assert!(r.contains("20.00ms") && r.contains("0.00%"), "{r}");
        let head = text_head(true);
        let mut stream = row(1, 100.0, 99.5, 0);
        stream.ttft_p50 = Some(0.05);
        let r = text_row(&stream, true);
        assert_eq!(head.find("result"), r.find("ok"), "{head}\n{r}");
        assert!(head.contains("ttft p99") && r.contains("50.00ms"));
        assert!(rule(0.99, false).starts_with(
            "a step passes when its achieved rate is at least 99% of the asked rate and its \
             error rate is at most 1% (no --threshold given)"
        ));
    }
}
