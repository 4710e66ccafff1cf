//! Goodput objectives, as vLLM's `bench serve --goodput` defines them: per-request upper bounds
//! (`time_to_first_token<=200ms,time_per_output_token<=50ms`); a request counts toward goodput
//! when it succeeded and met every objective. The report's `goodput` is such requests per second
//! of the run, `goodput_ratio` their share of all requests. The engine measures each request and
//! asks [`met`]; this module owns the names, the parsing and the rule.
//!
//! A request without the timing an objective bounds (no first token, no response) does not meet
//! it, except `time_per_output_token` for a response of fewer than 2 tokens, which has no gap to be
//! slow in: vLLM counts its TPOT as 0, and so it meets the bound.

use super::parse::Op;
use super::{ExprError, Kind, Limit};
use crate::metric::Id;

/// A timing one request has, that an objective may bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestMetric {
    ResponseTime,
    Latency,
    TimeToFirstByte,
    TimeToFirstToken,
    TimePerOutputToken,
    CorrectedResponseTime,
    CorrectedTimeToFirstByte,
    CorrectedTimeToFirstToken,
    DispatchDelay,
}

/// Every per-request metric, by its report name (`crate::metric`), then vLLM's short names for
/// the three it knows.
const NAMES: [(&str, RequestMetric); 12] = {
    use RequestMetric as M;
    const fn by_name(m: M) -> (&'static str, M) {
        (m.id().name(), m)
    }
    [
        by_name(M::ResponseTime),
        by_name(M::Latency),
        by_name(M::TimeToFirstByte),
        by_name(M::TimeToFirstToken),
        by_name(M::TimePerOutputToken),
        by_name(M::CorrectedResponseTime),
        by_name(M::CorrectedTimeToFirstByte),
        by_name(M::CorrectedTimeToFirstToken),
        by_name(M::DispatchDelay),
        ("ttft", M::TimeToFirstToken),
        ("tpot", M::TimePerOutputToken),
        ("e2el", M::ResponseTime),
    ]
};

impl RequestMetric {
    /// The timing family it bounds.
    pub const fn id(self) -> Id {
        match self {
            RequestMetric::ResponseTime => Id::ResponseTime,
            RequestMetric::Latency => Id::Latency,
            RequestMetric::TimeToFirstByte => Id::TimeToFirstByte,
            RequestMetric::TimeToFirstToken => Id::TimeToFirstToken,
            RequestMetric::TimePerOutputToken => Id::TimePerOutputToken,
            RequestMetric::CorrectedResponseTime => Id::CorrectedResponseTime,
            RequestMetric::CorrectedTimeToFirstByte => Id::CorrectedTimeToFirstByte,
            RequestMetric::CorrectedTimeToFirstToken => Id::CorrectedTimeToFirstToken,
            RequestMetric::DispatchDelay => Id::DispatchDelay,
        }
    }

    /// Its name in the report.
    pub fn name(self) -> &'static str {
        self.id().name()
    }

    /// Measured only on streaming LLM runs.
    pub fn needs_stream(self) -> bool {
        use RequestMetric as M;
        matches!(
            self,
            M::TimeToFirstByte
                | M::TimeToFirstToken
                | M::TimePerOutputToken
                | M::CorrectedTimeToFirstByte
                | M::CorrectedTimeToFirstToken
        )
    }

    /// Whether a request without this timing meets a bound on it (see the module docs).
    fn missing_meets(self) -> bool {
        self == RequestMetric::TimePerOutputToken
    }
}

/// The goodput metrics in words, for error messages.
pub fn objective_metrics() -> String {
    let names: Vec<&str> = NAMES.iter().map(|(n, _)| *n).collect();
    format!(
        "{} (ttft, tpot and e2el are vLLM's names); each bounded with < or <= and a time",
        names.join(", ")
    )
}

/// One per-request objective: `metric < limit` or `metric <= limit`, in seconds.
#[derive(Clone, Debug, PartialEq)]
pub struct Objective {
    /// As written (trimmed), echoed in the report's config.
    pub text: String,
    pub metric: RequestMetric,
    /// `<` when true, `<=` otherwise.
    pub strict: bool,
    pub limit: f64,
}

impl Objective {
    /// Whether a request whose timing is `value` meets this objective.
    pub fn holds(&self, value: Option<f64>) -> bool {
        match value {
            None => self.metric.missing_meets(),
            Some(v) if self.strict => v < self.limit,
            Some(v) => v <= self.limit,
        }
    }
}

/// Parses a `--goodput` list (or one entry of the API's `goodput`).
pub fn parse_objectives(text: &str) -> Result<Vec<Objective>, ExprError> {
    super::items(text, objective_metrics, |raw, err| {
        let Some(&(_, metric)) = NAMES.iter().find(|(n, _)| *n == raw.metric) else {
            let hint = if raw.metric.contains("_p") || raw.metric.starts_with("mean_") {
                " (goodput bounds each request's own timing, not a statistic: thresholds \
                     take those)"
            } else {
                ""
            };
            return Err(err(
                raw.metric_at,
                format!("unknown per-request metric {:?}{hint}", raw.metric),
            ));
        };
        let strict = match raw.op {
            Op::Lt => true,
            Op::Le => false,
            other => {
                return Err(err(
                    raw.metric_at + raw.metric.len(),
                    format!(
                        "an objective is an upper bound: {} < or <= a time, not {other}",
                        raw.metric
                    ),
                ));
            }
        };
        let limit = match super::limit(raw.metric, Kind::Time, raw) {
            Ok(Limit::Number(x)) => x,
            Ok(Limit::Word(_)) => return Err(err(raw.value_at, "expected a time".into())),
            Err((at, msg)) => return Err(err(at, msg)),
        };
        Ok(Objective {
            text: raw.text.to_string(),
            metric,
            strict,
            limit,
        })
    })
}

/// Parses every `--goodput` given (or the API's `goodput` list), in order.
pub fn parse_all(texts: &[String]) -> Result<Vec<Objective>, ExprError> {
    super::each(texts, parse_objectives)
}

/// Whether a successful request meets every objective; `value` gives its timing for a metric
/// (None when it has none). The caller counts only successes.
pub fn met(objectives: &[Objective], value: impl Fn(RequestMetric) -> Option<f64>) -> bool {
    objectives.iter().all(|o| o.holds(value(o.metric)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vllm_style_objectives_parse_to_seconds() {
        let o = parse_objectives("time_to_first_token<=200ms, time_per_output_token<50ms").unwrap();
        assert_eq!(o.len(), 2);
        assert_eq!(
            (o[0].metric, o[0].strict, o[0].limit),
            (RequestMetric::TimeToFirstToken, false, 0.2)
        );
        assert_eq!(
            (o[1].metric, o[1].strict, o[1].limit),
            (RequestMetric::TimePerOutputToken, true, 0.05)
        );
        assert_eq!(o[1].text, "time_per_output_token<50ms");
        let short = parse_objectives("ttft<=0.2,tpot<=50ms,e2el<=2s").unwrap();
        assert_eq!(short[0].metric, RequestMetric::TimeToFirstToken);
        assert_eq!(short[2].metric, RequestMetric::ResponseTime);
        assert_eq!(short[2].metric.name(), "response_time");
        assert!(RequestMetric::CorrectedTimeToFirstToken.needs_stream());
        assert!(!RequestMetric::CorrectedResponseTime.needs_stream());
    }

    #[test]
    fn a_request_meets_all_objectives_or_none_count() {
        let o =
            parse_all(&["time_to_first_token<=200ms,time_per_output_token<=50ms".into()]).unwrap();
        let request = |ttft: Option<f64>, tpot: Option<f64>| {
            move |m: RequestMetric| match m {
                RequestMetric::TimeToFirstToken => ttft,
                RequestMetric::TimePerOutputToken => tpot,
                _ => None,
            }
        };
        assert!(
            met(&o, request(Some(0.2), Some(0.05))),
            "bounds are inclusive"
        );
        assert!(!met(&o, request(Some(0.2001), Some(0.01))));
        assert!(!met(&o, request(Some(0.1), Some(0.051))));
        assert!(!met(&o, request(None, Some(0.01))), "no first token");
        assert!(
            met(&o, request(Some(0.1), None)),
            "one token: no gap to be slow in"
        );
        let strict = parse_objectives("response_time<100ms").unwrap();
        assert!(!strict[0].holds(Some(0.1)));
        assert!(strict[0].holds(Some(0.0999)));
        assert!(!strict[0].holds(None));
        assert!(met(&[], |_| None), "no objectives: every success counts");
    }

    #[test]
    fn bad_objectives_say_where_and_what() {
        let e = parse_objectives("time_to_first_token<=200ms,tbt<=5ms").unwrap_err();
        assert_eq!(e.position, 28);
        assert_eq!(e.msg, "unknown per-request metric \"tbt\"");
        assert!(
            e.metrics.starts_with("response_time, latency"),
            "{}",
            e.metrics
        );
        let e = parse_objectives("response_time_p99<=1s").unwrap_err();
        assert!(e.msg.contains("thresholds take those"), "{e}");
        let e = parse_objectives("response_time>=1s").unwrap_err();
        assert_eq!(e.position, 14);
        assert!(e.msg.contains("upper bound"));
        let e = parse_objectives("response_time<=1%").unwrap_err();
        assert_eq!(e.position, 17);
        assert!(e.msg.contains("unknown time unit"));
        assert!(parse_objectives("response_time<=ok").is_err());
        assert_eq!(parse_objectives("").unwrap_err().position, 1);
        assert!(
            parse_objectives("ttft<=1s ttft<=2s")
                .unwrap_err()
                .msg
                .contains("separate items with commas")
        );
    }
}
