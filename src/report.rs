//! Turns a plan and its [`RunStats`] into the contract's JSON (SPEC §3 and §4: the original's
//! fields first, in the original's order, then the extensions) and into the text report a person
//! reads in a terminal. [`TIMINGS`] is the one list of the timing families: this module reports
//! them, the OpenAPI document (`api::openapi`) describes them.

use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use crate::engine::{ErrorKey, RunStats, Timings};
use crate::plan::{BodyMode, Plan};
use crate::stats::{Recorder, Summary};

/// Which runs report a timing family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every run (SPEC §2).
    Every,
    /// Streaming LLM runs (SPEC §4).
    Stream,
    /// Streaming LLM runs whose server reports the figure (Fireworks' header or `perf_metrics`).
    StreamWhenReported,
}

/// One timing family: `mean_X`, `std_X`, `X_p50` ... in the JSON, a row in the text report.
#[derive(Clone, Copy)]
pub struct Timing {
    /// `X` in the field names.
    pub name: &'static str,
    /// The row's label in the text report.
    pub label: &'static str,
    pub scope: Scope,
    /// One of the original service's fields: reported before the extensions, in this order.
    pub original: bool,
    /// Where the engine keeps its samples.
    pub samples: fn(&Timings) -> &Recorder,
}

/// Every timing family, in the text report's order. The JSON reports the `original` ones first
/// (`response_time`, `latency`, then `time_to_first_token`, as the original did), then the rest.
pub const TIMINGS: [Timing; 9] = [
    Timing {
        name: "response_time",
        label: "response_time",
        scope: Scope::Every,
        original: true,
        samples: |t| &t.response_time,
    },
    Timing {
        name: "latency",
        label: "latency (headers)",
        scope: Scope::Every,
        original: true,
        samples: |t| &t.latency,
    },
    Timing {
        name: "corrected_response_time",
        label: "corrected_response_time",
        scope: Scope::Every,
        original: false,
        samples: |t| &t.corrected_response_time,
    },
    Timing {
        name: "dispatch_delay",
        label: "dispatch_delay",
        scope: Scope::Every,
        original: false,
        samples: |t| &t.dispatch_delay,
    },
    Timing {
        name: "time_to_first_byte",
        label: "time_to_first_byte",
        scope: Scope::Stream,
        original: false,
        samples: |t| &t.time_to_first_byte,
    },
    Timing {
        name: "time_to_first_token",
        label: "time_to_first_token",
        scope: Scope::Stream,
        original: true,
        samples: |t| &t.time_to_first_token,
    },
    Timing {
        name: "inter_token_latency",
        label: "inter_token_latency",
        scope: Scope::Stream,
        original: false,
        samples: |t| &t.inter_token_latency,
    },
    Timing {
        name: "time_per_output_token",
        label: "time_per_output_token",
        scope: Scope::Stream,
        original: false,
        samples: |t| &t.time_per_output_token,
    },
    Timing {
        name: "server_time_to_first_token",
        label: "server_time_to_first_token",
        scope: Scope::StreamWhenReported,
        original: false,
        samples: |t| &t.server_time_to_first_token,
    },
];

/// [`TIMINGS`] in the JSON report's order: the original's families first, then the extensions.
pub fn timings_in_json_order() -> impl Iterator<Item = &'static Timing> {
    let (original, extensions): (Vec<_>, Vec<_>) = TIMINGS.iter().partition(|t| t.original);
    original.into_iter().chain(extensions)
}

/// One field of a timing family: its suffix role, as the original names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stat {
    Mean,
    Std,
    P50,
    P90,
    P97,
    P99,
}

impl Stat {
    pub const ALL: [Stat; 6] = [
        Stat::Mean,
        Stat::Std,
        Stat::P50,
        Stat::P90,
        Stat::P97,
        Stat::P99,
    ];

    /// The field's name for timing `name`: `mean_X`, `std_X`, `X_p50`, ... (so the original's
    /// `mean_time_to_first_token` for `time_to_first_token`).
    pub fn field(self, name: &str) -> String {
        match self {
            Stat::Mean => format!("mean_{name}"),
            Stat::Std => format!("std_{name}"),
            Stat::P50 => format!("{name}_p50"),
            Stat::P90 => format!("{name}_p90"),
            Stat::P97 => format!("{name}_p97"),
            Stat::P99 => format!("{name}_p99"),
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
        }
    }
}

/// The timing families this run reports, in the text report's order.
fn reported<'a>(
    plan: &Plan,
    t: &'a Timings,
) -> impl Iterator<Item = (&'static Timing, &'a Recorder)> {
    let stream = plan.body_mode == BodyMode::Sse;
    TIMINGS.iter().filter_map(move |timing| {
        let rec = (timing.samples)(t);
        let shown = match timing.scope {
            Scope::Every => true,
            Scope::Stream => stream,
            Scope::StreamWhenReported => stream && rec.count() > 0,
        };
        shown.then_some((timing, rec))
    })
}

/// The JSON report of a run.
pub fn to_json(plan: &Plan, stats: &RunStats) -> Value {
    let t = &stats.timings;
    let errors = stats.error_count();
    let mut m = Map::new();
    m.insert("config".into(), Value::Object(plan.config.clone()));
    m.insert("total_requests".into(), json!(stats.total_requests));
    m.insert("errors".into(), json!(errors));
    for (timing, rec) in reported(plan, t).filter(|(timing, _)| timing.original) {
        family(&mut m, timing.name, &rec.summary());
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
    for (timing, rec) in reported(plan, t).filter(|(timing, _)| !timing.original) {
        family(&mut m, timing.name, &rec.summary());
    }
    if plan.llm.is_some() {
        m.insert("output_tokens".into(), json!(stats.output_tokens));
    }
    if plan.body_mode == BodyMode::Sse {
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

/// The six fields of one timing family (see [`Stat::field`]).
fn family(m: &mut Map<String, Value>, name: &str, s: &Summary) {
    for stat in Stat::ALL {
        m.insert(stat.field(name), json!(stat.of(s)));
    }
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
    for (timing, rec) in reported(plan, t) {
        let s = rec.summary();
        let _ = writeln!(
            out,
            "  {:<26} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
            timing.label,
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
