//! The Prometheus text exposition format, version 0.0.4: a `# HELP` and a `# TYPE` line per
//! metric, then one sample line per label set. What the figures are and their names is the
//! parent module's; which runs are shown is `api`'s.

use std::fmt::Write as _;

use super::{Figures, Kind, PER_RUN, RUNS, Series, Value};

/// The `Content-Type` of a scrape's answer.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One running run: its labels (`run_id`, `kind`, ...) and figures.
pub struct Run<'a> {
    pub labels: &'a [(&'static str, String)],
    pub figures: Figures,
}

/// The whole exposition: `pacer_runs` by `states` (every state listed, 0 included), then each
/// figure of every run in `runs`. A figure no run has (a percentile nobody measured) is left out.
pub fn exposition(states: &[(&str, u64)], runs: &[Run<'_>]) -> String {
    let mut out = String::new();
    head(&mut out, &RUNS);
    for (state, n) in states {
        sample(&mut out, RUNS.prom, &[("state", state)], Value::Int(*n));
    }
    let values: Vec<_> = runs.iter().map(|r| r.figures.values()).collect();
    for series in PER_RUN {
        let mut headed = false;
        for (run, vals) in runs.iter().zip(&values) {
            let Some((_, v)) = vals.iter().find(|(s, _)| s.prom == series.prom) else {
                continue;
            };
            if !headed {
                head(&mut out, series);
                headed = true;
            }
            let labels: Vec<(&str, &str)> =
                run.labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
            sample(&mut out, series.prom, &labels, *v);
        }
    }
    out
}

fn head(out: &mut String, s: &Series) {
    let kind = match s.kind {
        Kind::Counter => "counter",
        Kind::Gauge => "gauge",
    };
    // Writing to a String cannot fail.
    let _ = writeln!(out, "# HELP {} {}", s.prom, escape(s.help, false));
    let _ = writeln!(out, "# TYPE {} {kind}", s.prom);
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], v: Value) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{k}=\"{}\"", escape(v, true));
        }
        out.push('}');
    }
    let _ = match v {
        Value::Int(n) => writeln!(out, " {n}"),
        // Rust's shortest round-trip form, which Go's ParseFloat reads back exactly.
        Value::Float(x) => writeln!(out, " {x:?}"),
    };
}

/// Escapes a HELP text (backslash, line feed) or a label value (also the double quote).
fn escape(s: &str, quote: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_has_help_type_and_escaped_labels() {
        let labels = [
            ("run_id", "00ff".to_string()),
            ("target", "http://h/\"x\"\\\n".to_string()),
        ];
        let run = Run {
            labels: &labels,
            figures: Figures {
                sent: 7,
                responses: 5,
                errors: 1,
                in_flight: 2,
                rate: Some(3.5),
                p50: Some(0.00125),
                p99: None,
                first_token: false,
            },
        };
        let text = exposition(&[("running", 1), ("done", 0)], &[run]);
        let want = [
            "# TYPE pacer_runs gauge",
            "pacer_runs{state=\"running\"} 1",
            "pacer_runs{state=\"done\"} 0",
            "# TYPE pacer_requests_sent_total counter",
            "pacer_requests_sent_total{run_id=\"00ff\",target=\"http://h/\\\"x\\\"\\\\\\n\"} 7",
            "# TYPE pacer_achieved_rate_requests_per_second gauge",
            "pacer_response_time_p50_seconds{run_id=\"00ff\",target=\"http://h/\\\"x\\\"\\\\\\n\"} 0.00125",
        ];
        for w in want {
            assert!(text.lines().any(|l| l == w), "{w} not in\n{text}");
        }
        assert!(
            !text.contains("p99_seconds"),
            "no p99 was measured:\n{text}"
        );
        assert!(!text.contains("time_to_first_token"));
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn without_runs_only_the_states_show() {
        let text = exposition(&[("running", 0)], &[]);
        assert_eq!(
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .collect::<Vec<_>>(),
            ["pacer_runs{state=\"running\"} 0"]
        );
    }
}
