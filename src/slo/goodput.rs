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
use crate::metric::{self, Id, Runs, Scope};

/// vLLM's short names for the three families it bounds.
const ALIASES: [(&str, Id); 3] = [
    ("ttft", Id::TimeToFirstToken),
    ("tpot", Id::TimePerOutputToken),
    ("e2el", Id::ResponseTime),
];

/// The family an objective may bound by `name`: every family with one value per request
/// ([`Scope::Request`], from [`crate::metric`]: a family added there is an objective at once),
/// or one of vLLM's short names. A token or chunk family has no one value per request.
fn family(name: &str) -> Result<Id, String> {
    if let Some(&(_, id)) = ALIASES.iter().find(|(n, _)| *n == name) {
        return Ok(id);
    }
    match metric::by_name(name) {
        Some(m) if m.scope == Scope::Request => Ok(m.id),
        Some(m) => Err(format!(
            "{name} is a per-{} family, not one value per request: thresholds take its \
             percentiles",
            m.scope.word()
        )),
        None => {
            let hint = if name.contains("_p") || name.starts_with("mean_") {
                " (goodput bounds each request's own timing, not a statistic: thresholds \
                 take those)"
            } else {
                ""
            };
            Err(format!("unknown per-request metric {name:?}{hint}"))
        }
    }
}

/// Measured on streaming LLM runs only.
pub fn needs_stream(id: Id) -> bool {
    id.metric().runs != Runs::Every
}

/// Whether a request without this timing meets a bound on it (see the module docs).
fn missing_meets(id: Id) -> bool {
    id == Id::TimePerOutputToken
}

/// The goodput metrics in words, for error messages.
pub fn objective_metrics() -> String {
    let names: Vec<&str> = metric::METRICS
        .iter()
        .filter(|m| m.scope == Scope::Request)
        .map(|m| m.name)
        .chain(ALIASES.iter().map(|(n, _)| *n))
        .collect();
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
    pub metric: Id,
    /// `<` when true, `<=` otherwise.
    pub strict: bool,
    pub limit: f64,
}

impl Objective {
    /// Whether a request whose timing is `value` meets this objective.
    pub fn holds(&self, value: Option<f64>) -> bool {
        match value {
            None => missing_meets(self.metric),
            Some(v) if self.strict => v < self.limit,
            Some(v) => v <= self.limit,
        }
    }
}

/// Parses a `--goodput` list (or one entry of the API's `goodput`).
pub fn parse_objectives(text: &str) -> Result<Vec<Objective>, ExprError> {
    super::items(text, objective_metrics, |raw, err| {
        let metric = family(raw.metric).map_err(|msg| err(raw.metric_at, msg))?;
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
pub fn met(objectives: &[Objective], value: impl Fn(Id) -> Option<f64>) -> bool {
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
            (Id::TimeToFirstToken, false, 0.2)
        );
        assert_eq!(
            (o[1].metric, o[1].strict, o[1].limit),
            (Id::TimePerOutputToken, true, 0.05)
        );
        assert_eq!(o[1].text, "time_per_output_token<50ms");
        let short = parse_objectives("ttft<=0.2,tpot<=50ms,e2el<=2s").unwrap();
        assert_eq!(short[0].metric, Id::TimeToFirstToken);
        assert_eq!(short[2].metric, Id::ResponseTime);
        assert_eq!(short[2].metric.name(), "response_time");
        assert!(objective_metrics().contains("time_to_first_content_token, "));
        assert!(needs_stream(Id::CorrectedTimeToFirstToken));
        assert!(!needs_stream(Id::CorrectedResponseTime));
        // Every per-request family of the metric model is an objective, the newest included.
        let o = parse_objectives(
            "time_to_first_content_token<=1s,corrected_time_to_first_tool_call<2s,\
             server_time_to_first_token<=20ms",
        )
        .unwrap();
        assert_eq!(
            o.iter().map(|o| o.metric).collect::<Vec<_>>(),
            [
                Id::TimeToFirstContentToken,
                Id::CorrectedTimeToFirstToolCall,
                Id::ServerTimeToFirstToken
            ]
        );
        assert!(o.iter().all(|o| needs_stream(o.metric)));
        let e = parse_objectives("inter_token_latency<=5ms").unwrap_err();
        assert!(e.msg.contains("a per-token family"), "{e}");
    }

    #[test]
    fn a_request_meets_all_objectives_or_none_count() {
        let o =
            parse_all(&["time_to_first_token<=200ms,time_per_output_token<=50ms".into()]).unwrap();
        let request = |ttft: Option<f64>, tpot: Option<f64>| {
            move |m: Id| match m {
                Id::TimeToFirstToken => ttft,
                Id::TimePerOutputToken => tpot,
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
