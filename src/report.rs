//! Turns a plan and its [`RunStats`] into the contract's JSON (SPEC §3 and §4: the original's
//! fields first, in the original's order, then the extensions) and into the text report a person
//! reads in a terminal.

use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use crate::engine::{ErrorKey, RunStats};
use crate::plan::Plan;
use crate::stats::{Recorder, Summary};

/// The JSON report of a run.
pub fn to_json(plan: &Plan, stats: &RunStats) -> Value {
    let t = &stats.timings;
    let errors = stats.error_count();
    let mut m = Map::new();
    m.insert("config".into(), Value::Object(plan.config.clone()));
    m.insert("total_requests".into(), json!(stats.total_requests));
    m.insert("errors".into(), json!(errors));
    family(&mut m, "response_time", &t.response_time.summary());
    family(&mut m, "latency", &t.latency.summary());
    let stream = plan.llm.as_ref().is_some_and(|l| l.stream);
    if stream {
        family(
            &mut m,
            "time_to_first_token",
            &t.time_to_first_token.summary(),
        );
    }
    if errors > 0 {
        let statuses: Vec<Value> = stats
            .errors
            .keys()
            .map(|k| match k {
                ErrorKey::Status(s) => json!(s),
                ErrorKey::Name(n) => json!(n),
            })
            .collect();
        m.insert("errors_status".into(), Value::Array(statuses));
    }
    // Extensions.
    m.insert("successes".into(), json!(stats.successes));
    let counts: Map<String, Value> = stats
        .errors
        .iter()
        .map(|(k, n)| (key_name(k), json!(n)))
        .collect();
    m.insert("error_counts".into(), Value::Object(counts));
    m.insert("elapsed".into(), json!(stats.elapsed.as_secs_f64()));
    m.insert("achieved_qps".into(), json!(stats.achieved_qps));
    family(
        &mut m,
        "corrected_response_time",
        &t.corrected_response_time.summary(),
    );
    family(&mut m, "dispatch_delay", &t.dispatch_delay.summary());
    if stream {
        family(
            &mut m,
            "time_to_first_byte",
            &t.time_to_first_byte.summary(),
        );
        family(
            &mut m,
            "inter_token_latency",
            &t.inter_token_latency.summary(),
        );
        family(
            &mut m,
            "time_per_output_token",
            &t.time_per_output_token.summary(),
        );
        if t.server_time_to_first_token.count() > 0 {
            family(
                &mut m,
                "server_time_to_first_token",
                &t.server_time_to_first_token.summary(),
            );
        }
    }
    if plan.llm.is_some() {
        m.insert("output_tokens".into(), json!(stats.output_tokens));
    }
    if stream {
        let mean = if stats.successes > 0 {
            Some(stats.output_tokens as f64 / stats.successes as f64)
        } else {
            None
        };
        m.insert("mean_output_tokens".into(), json!(mean));
        let secs = stats.elapsed.as_secs_f64();
        let rate = if secs > 0.0 {
            stats.output_tokens as f64 / secs
        } else {
            0.0
        };
        m.insert("output_tokens_per_second".into(), json!(rate));
    }
    m.insert("bytes_received".into(), json!(stats.bytes_received));
    m.insert("connections_opened".into(), json!(stats.connections_opened));
    m.insert("scheduling".into(), json!(stats.scheduling.describe()));
    if plan.target.tls {
        m.insert(
            "tls_handshakes".into(),
            json!({"full": stats.tls_full, "resumed": stats.tls_resumed}),
        );
    }
    Value::Object(m)
}

/// `error_counts` keys: statuses as their number in a string, names as they are.
pub fn key_name(k: &ErrorKey) -> String {
    match k {
        ErrorKey::Status(s) => s.to_string(),
        ErrorKey::Name(n) => n.clone(),
    }
}

/// `mean_X`, `std_X`, `X_p50`, `X_p90`, `X_p97`, `X_p99`, as the original names them.
fn family(m: &mut Map<String, Value>, name: &str, s: &Summary) {
    m.insert(format!("mean_{name}"), json!(s.mean));
    m.insert(format!("std_{name}"), json!(s.std));
    m.insert(format!("{name}_p50"), json!(s.p50));
    m.insert(format!("{name}_p90"), json!(s.p90));
    m.insert(format!("{name}_p97"), json!(s.p97));
    m.insert(format!("{name}_p99"), json!(s.p99));
}

/// Seconds in the unit a person reads best.
pub fn human(secs: f64) -> String {
    let a = secs.abs();
    if a < 1e-3 {
        format!("{:.1}µs", secs * 1e6)
    } else if a < 1.0 {
        format!("{:.2}ms", secs * 1e3)
    } else {
        format!("{secs:.3}s")
    }
}

fn opt(v: Option<f64>) -> String {
    v.map(human).unwrap_or_else(|| "-".into())
}

/// The terminal report: a summary, a table of every timing, the error buckets and a histogram.
pub fn to_text(plan: &Plan, stats: &RunStats) -> String {
    let mut out = String::new();
    let t = &stats.timings;
    let _ = writeln!(out, "pacer: {} {}", method_of(plan), plan.url);
    let rate = match plan.rate {
        crate::plan::Rate::PerSecond(q) => format!("{q} req/s"),
        crate::plan::Rate::Max => "max (closed loop)".into(),
    };
    let _ = writeln!(
        out,
        "  rate {rate}, duration {}s, {} workers, {} threads, timeout {}s",
        plan.duration.as_secs_f64(),
        plan.num_workers,
        plan.threads,
        plan.timeout.as_secs_f64()
    );
    if plan.insecure {
        let _ = writeln!(
            out,
            "  WARNING: TLS certificate verification was disabled (--insecure)"
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "  requests {}   successes {}   errors {}   elapsed {:.3}s   achieved {:.1} req/s",
        stats.total_requests,
        stats.successes,
        stats.error_count(),
        stats.elapsed.as_secs_f64(),
        stats.achieved_qps
    );
    let _ = writeln!(
        out,
        "  connections opened {}   bytes received {}",
        stats.connections_opened, stats.bytes_received
    );
    if stats.scheduling != crate::engine::Scheduling::Normal {
        let _ = writeln!(out, "  scheduling: {}", stats.scheduling.describe());
    }
    if plan.target.tls {
        let _ = writeln!(
            out,
            "  TLS handshakes: {} full, {} resumed",
            stats.tls_full, stats.tls_resumed
        );
    }
    if plan.llm.is_some() {
        let secs = stats.elapsed.as_secs_f64().max(1e-9);
        let _ = writeln!(
            out,
            "  output tokens {}   ({:.1} tokens/s)",
            stats.output_tokens,
            stats.output_tokens as f64 / secs
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "  {:<26} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "timing", "count", "mean", "std", "p50", "p90", "p97", "p99", "max"
    );
    let mut rows: Vec<(&str, &Recorder)> = vec![
        ("response_time", &t.response_time),
        ("latency (headers)", &t.latency),
        ("corrected_response_time", &t.corrected_response_time),
        ("dispatch_delay", &t.dispatch_delay),
    ];
    if plan.llm.as_ref().is_some_and(|l| l.stream) {
        rows.extend([
            ("time_to_first_byte", &t.time_to_first_byte),
            ("time_to_first_token", &t.time_to_first_token),
            ("inter_token_latency", &t.inter_token_latency),
            ("time_per_output_token", &t.time_per_output_token),
        ]);
        if t.server_time_to_first_token.count() > 0 {
            rows.push(("server_time_to_first_token", &t.server_time_to_first_token));
        }
    }
    for (name, rec) in rows {
        let s = rec.summary();
        let _ = writeln!(
            out,
            "  {:<26} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
            name,
            s.count,
            opt(s.mean),
            opt(s.std),
            opt(s.p50),
            opt(s.p90),
            opt(s.p97),
            opt(s.p99),
            opt(s.max)
        );
    }
    if !stats.errors.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "  errors:");
        for (k, n) in &stats.errors {
            let label = match k {
                ErrorKey::Status(s) => format!("HTTP {s}"),
                ErrorKey::Name(name) => name.clone(),
            };
            let _ = writeln!(out, "    {n:>9}  {label}");
        }
    }
    let hist = histogram_lines(&t.response_time, 12, 40);
    if !hist.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "  response time histogram:");
        out.push_str(&hist);
    }
    out
}

fn method_of(plan: &Plan) -> &str {
    let req = &plan.request.0;
    let end = req.iter().position(|&b| b == b' ').unwrap_or(0);
    std::str::from_utf8(&req[..end]).unwrap_or("?")
}

/// A text histogram of a recorder's samples in `rows` rows between its min and max.
fn histogram_lines(rec: &Recorder, rows: usize, width: usize) -> String {
    let mut out = String::new();
    let bars = rec.histogram().rows(rows);
    let most = bars.iter().map(|b| b.count).max().unwrap_or(0);
    if most == 0 {
        return out;
    }
    for r in bars {
        let (lo, hi, n) = (r.lower, r.upper, r.count);
        let len = ((n as f64 / most as f64) * width as f64).round() as usize;
        let _ = writeln!(
            out,
            "    {:>10} - {:<10} {:>9} |{}",
            human(lo),
            human(hi),
            n,
            "■".repeat(len)
        );
    }
    out
}
