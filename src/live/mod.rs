//! Live metrics: the figures of a run in progress as other programs read them, pulled by
//! Prometheus from `pacer serve`'s `GET /metrics` ([`prom`]) or pushed to an OpenTelemetry
//! collector every interval with `--otlp` ([`otlp`]).
//!
//! This module is the one home of those figures: what they are ([`Figures`], read from the
//! engine's lock-free [`Progress`]: the counters and the rolling percentiles of
//! [`engine::live`](crate::engine::live) the progress line shows) and what each is called, in
//! either format ([`Series`]). When to read them, and for which runs, is the caller's (`api`,
//! `cli`); the bytes of each format are [`prom`]'s and [`otlp`]'s.

pub mod otlp;
pub mod prom;

use std::time::Duration;

use crate::engine::{Progress, RunStats};
use crate::metric::Id;
use crate::plan::Plan;

/// How a figure behaves: a count that only rises during a run, or a value read as it is now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

/// One figure's names: Prometheus's (counters end in `_total`, seconds are the unit) and
/// OpenTelemetry's (dotted, with a UCUM unit).
#[derive(Debug, PartialEq, Eq)]
pub struct Series {
    pub prom: &'static str,
    pub otel: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub unit: &'static str,
}

/// Runs the server remembers, by state (label `state`): `pacer serve` only.
pub const RUNS: Series = Series {
    prom: "pacer_runs",
    otel: "pacer.runs",
    help: "Runs pacer serve remembers (every running one and the last --keep-runs finished), by state.",
    kind: Kind::Gauge,
    unit: "{run}",
};
pub const SENT: Series = Series {
    prom: "pacer_requests_sent_total",
    otel: "pacer.requests.sent",
    help: "Requests handed to a connection.",
    kind: Kind::Counter,
    unit: "{request}",
};
pub const RESPONSES: Series = Series {
    prom: "pacer_responses_total",
    otel: "pacer.responses",
    help: "Requests whose whole response came back (any status).",
    kind: Kind::Counter,
    unit: "{response}",
};
pub const ERRORS: Series = Series {
    prom: "pacer_errors_total",
    otel: "pacer.errors",
    help: "Requests that ended in an error: an error status or a named failure.",
    kind: Kind::Counter,
    unit: "{request}",
};
pub const IN_FLIGHT: Series = Series {
    prom: "pacer_requests_in_flight",
    otel: "pacer.requests.in_flight",
    help: "Requests sent and not yet ended.",
    kind: Kind::Gauge,
    unit: "{request}",
};
pub const RATE: Series = Series {
    prom: "pacer_achieved_rate_requests_per_second",
    otel: "pacer.achieved_rate",
    help: "Requests sent per second since the run started (the report's achieved_qps at the end).",
    kind: Kind::Gauge,
    unit: "{request}/s",
};
pub const RESPONSE_TIME_P50: Series = Series {
    prom: "pacer_response_time_p50_seconds",
    otel: "pacer.response_time.p50",
    help: "Median response time of the responses in the last whole second.",
    kind: Kind::Gauge,
    unit: "s",
};
pub const RESPONSE_TIME_P99: Series = Series {
    prom: "pacer_response_time_p99_seconds",
    otel: "pacer.response_time.p99",
    help: "99th percentile of response time of the responses in the last whole second.",
    kind: Kind::Gauge,
    unit: "s",
};
pub const TTFT_P50: Series = Series {
    prom: "pacer_time_to_first_token_p50_seconds",
    otel: "pacer.time_to_first_token.p50",
    help: "Median time to first token of the streams whose first token came in the last whole second.",
    kind: Kind::Gauge,
    unit: "s",
};
pub const TTFT_P99: Series = Series {
    prom: "pacer_time_to_first_token_p99_seconds",
    otel: "pacer.time_to_first_token.p99",
    help: "99th percentile of time to first token of the streams whose first token came in the last whole second.",
    kind: Kind::Gauge,
    unit: "s",
};

/// Every figure of one run, in the order both formats write them.
pub const PER_RUN: [&Series; 9] = [
    &SENT,
    &RESPONSES,
    &ERRORS,
    &IN_FLIGHT,
    &RATE,
    &RESPONSE_TIME_P50,
    &RESPONSE_TIME_P99,
    &TTFT_P50,
    &TTFT_P99,
];

/// A figure's value: counts stay integers (OTLP's `asInt`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    Int(u64),
    Float(f64),
}

/// What one run shows now.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Figures {
    pub sent: u64,
    pub responses: u64,
    pub errors: u64,
    pub in_flight: u64,
    /// None before a rate can be told (nothing sent yet, or a fixed-rate run of one send).
    pub rate: Option<f64>,
    /// Rolling percentiles over the last whole second; None when it saw no sample.
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    /// The percentiles are of time to first token (a streaming run), not of response time.
    pub first_token: bool,
}

impl Figures {
    /// The figures of a run going on, `elapsed` after its start (the run's clock).
    pub fn read(p: &Progress, elapsed: Duration) -> Figures {
        let c = p.counts();
        let recent = p.recent(elapsed);
        let secs = elapsed.as_secs_f64();
        Figures {
            sent: c.sent,
            responses: c.completed,
            errors: c.errors,
            in_flight: c.in_flight(),
            rate: (c.sent > 0 && secs > 0.0).then(|| c.sent as f64 / secs),
            p50: recent.p50,
            p99: recent.p99,
            first_token: p.first_token,
        }
    }

    /// The figures of a run that ended, as its report counts them: errors without the requests
    /// a stopped run never sent, and the report's achieved rate.
    pub fn finished(plan: &Plan, stats: &RunStats, p: &Progress) -> Figures {
        let last = Figures::read(p, stats.elapsed);
        Figures {
            sent: stats.sent,
            responses: last.responses,
            errors: stats.error_count() - crate::report::unsent(stats),
            in_flight: 0,
            rate: crate::report::achieved_qps(&crate::report::Settings::of(plan), stats),
            ..last
        }
    }

    /// Each figure that has a value, with its series, in [`PER_RUN`]'s order; the percentiles
    /// under time to first token's names in a streaming run, response time's otherwise.
    pub fn values(&self) -> Vec<(&'static Series, Value)> {
        let (p50, p99) = if self.first_token {
            (&TTFT_P50, &TTFT_P99)
        } else {
            (&RESPONSE_TIME_P50, &RESPONSE_TIME_P99)
        };
        let mut out = vec![
            (&SENT, Value::Int(self.sent)),
            (&RESPONSES, Value::Int(self.responses)),
            (&ERRORS, Value::Int(self.errors)),
            (&IN_FLIGHT, Value::Int(self.in_flight)),
        ];
        let floats = [(&RATE, self.rate), (p50, self.p50), (p99, self.p99)];
        for (s, v) in floats {
            if let Some(v) = v.filter(|v| v.is_finite()) {
                out.push((s, Value::Float(v)));
            }
        }
        out
    }
}

/// The timing family each percentile series stands for, so their names follow `metric`'s.
pub fn family_of(s: &Series) -> Option<Id> {
    let is = |other: &Series| s.prom == other.prom;
    if is(&RESPONSE_TIME_P50) || is(&RESPONSE_TIME_P99) {
        Some(Id::ResponseTime)
    } else if is(&TTFT_P50) || is(&TTFT_P99) {
        Some(Id::TimeToFirstToken)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_each_format_and_the_timing_families() {
        for s in PER_RUN.iter().copied().chain([&RUNS]) {
            assert!(s.prom.starts_with("pacer_") && s.otel.starts_with("pacer."));
            assert_eq!(
                s.kind == Kind::Counter,
                s.prom.ends_with("_total"),
                "{}",
                s.prom
            );
            assert!(!s.otel.ends_with("_total"), "{}", s.otel);
            if let Some(id) = family_of(s) {
                assert!(s.prom.contains(id.name()) && s.otel.contains(id.name()));
                assert!(s.prom.ends_with("_seconds") && s.unit == "s");
            }
        }
        let mut names: Vec<_> = PER_RUN.iter().map(|s| s.prom).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), PER_RUN.len());
    }

    #[test]
    fn values_skip_what_is_unknown_and_pick_the_family() {
        let f = Figures {
            sent: 10,
            responses: 9,
            errors: 1,
            in_flight: 1,
            rate: None,
            p50: Some(0.002),
            p99: None,
            first_token: true,
        };
        let v = f.values();
        let names: Vec<_> = v.iter().map(|(s, _)| s.prom).collect();
        assert_eq!(
            names,
            [
                SENT.prom,
                RESPONSES.prom,
                ERRORS.prom,
                IN_FLIGHT.prom,
                TTFT_P50.prom
            ]
        );
        assert_eq!(v[0].1, Value::Int(10));
        assert_eq!(v[4].1, Value::Float(0.002));
    }
}
