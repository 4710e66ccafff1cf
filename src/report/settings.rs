//! What the report reads of a plan, taken once ([`Settings::of`]) and serializable: a shard's
//! state carries it, so a merged run is reported from the settings its shards ran with rather
//! than from a plan rebuilt around placeholders. Nothing secret is in it: the URL has its query
//! values hidden (as the plan echoes it), and no token, header or body is kept.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::plan::{Arrival, BodyMode, Plan, Rate};
use crate::slo::Threshold;

/// Everything the report reads of a run's plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// The run's `config` as its report shows it.
    pub config: Map<String, Value>,
    /// Where the requests went, query values hidden (`Plan::url`).
    pub url: String,
    pub method: String,
    /// Requests per second; `None` for saturation (`--qps max`).
    pub qps: Option<f64>,
    /// Seconds.
    pub duration: f64,
    /// Requests of the whole plan (all shards).
    pub count: u64,
    /// The Poisson arrivals' seed; `None` for constant spacing.
    pub seed: Option<u64>,
    /// Connections of the whole plan (all shards).
    pub num_workers: usize,
    /// The threads that ran it (a merged run: the sum over its shards).
    pub threads: usize,
    /// Seconds.
    pub timeout: f64,
    pub insecure: bool,
    /// Real-time scheduling was asked for.
    pub realtime: bool,
    /// The target, as a run without responses names it (`connection refused by host:port`).
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// Response bodies were read as SSE streams.
    pub stream: bool,
    /// A staged run's stages as asked and as its schedule ran them (empty otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<StageSettings>,
    pub ramp: bool,
    /// The requests went out at a replayed trace's times (`--trace`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub trace: bool,
    /// An LLM run's mode (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm: Option<LlmSettings>,
    /// `--threshold`, written as given and parsed again when read.
    #[serde(
        default,
        with = "threshold_texts",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub thresholds: Vec<Threshold>,
    /// `--goodput` objectives as given (empty: no goodput is reported).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub goodput: Vec<String>,
    /// With `--targets`: each target's report key, in the file's order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    /// A session run's line (`--sessions`): conversations, turns, think time, history, header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions: Option<String>,
}

/// One stage: as asked (`qps`, `duration`), and as the schedule runs it (the rate it goes from
/// and to, its start in seconds into the run).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageSettings {
    pub qps: f64,
    pub duration: f64,
    pub from_qps: f64,
    pub to_qps: f64,
    pub start: f64,
}

/// What the report says of an LLM run's mode.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LlmSettings {
    /// The payload asked for a stream.
    pub stream: bool,
    /// `completions` or `chat`.
    pub api: String,
    /// The default payload sent: `fireworks` or `openai` (`--payload-style`). A state written
    /// before the styles were sent the original's.
    #[serde(default = "fireworks_style")]
    pub payload_style: String,
    pub model: String,
    /// `max_tokens` in words (a number, or where the lengths were drawn from).
    pub max_tokens: String,
    /// The prompts in one line, when the run has more than the one prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompts: Option<String>,
    /// `--prompt-overhead-tokens`.
    pub prompt_overhead_tokens: u64,
}

impl Settings {
    /// The run was built for its prompts to share prefixes (a session's history, a trace's
    /// shared blocks, `--prefix-tokens`): a prefix cache's hits are what it measures.
    pub fn shares_prefixes(&self) -> bool {
        self.sessions.is_some()
            || self.trace
            || self
                .config
                .get("prefix_tokens")
                .and_then(serde_json::Value::as_u64)
                .is_some_and(|n| n > 0)
    }

    /// What the report reads of `plan`.
    pub fn of(plan: &Plan) -> Settings {
        let method = plan.requests.method();
        let stages = plan
            .stages
            .iter()
            .enumerate()
            .map(|(k, st)| {
                let curve = plan.curve.as_ref();
                let (from_qps, to_qps) = curve.and_then(|c| c.rates_of(k)).unwrap_or_default();
                let start = curve.and_then(|c| c.span_of(k)).map_or(0.0, |(s, _)| s);
                StageSettings {
                    qps: st.qps,
                    duration: st.duration,
                    from_qps,
                    to_qps,
                    start,
                }
            })
            .collect();
        let llm = plan.llm.as_ref().map(|l| {
            let payload = plan.config.get("fireworks_payload");
            let field = |k: &str| {
                payload.and_then(|p| p.get(k)).map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
            };
            let w = plan.workload.as_ref();
            let max_tokens = match (w.and_then(|w| w.output_tokens), w) {
                (Some(d), _) => format!("drawn from {d}"),
                (None, Some(w)) if w.output_len_from_dataset => {
                    "from the data set's replies".into()
                }
                _ => field("max_tokens").unwrap_or_else(|| "-".into()),
            };
            LlmSettings {
                stream: l.stream,
                api: l.api.name().into(),
                payload_style: l.payload_style.name().into(),
                model: field("model").unwrap_or_else(|| "-".into()),
                max_tokens,
                prompts: w.map(super::workload_line),
                prompt_overhead_tokens: l.prompt_overhead_tokens,
            }
        });
        Settings {
            config: plan.config.clone(),
            url: plan.url.clone(),
            method,
            qps: match plan.rate {
                Rate::PerSecond(q) => Some(q),
                Rate::Max => None,
            },
            duration: plan.duration.as_secs_f64(),
            count: plan.count,
            seed: match plan.arrival {
                Arrival::Poisson { seed } => Some(seed),
                Arrival::Constant => None,
            },
            num_workers: plan.num_workers,
            threads: plan.threads,
            timeout: plan.timeout.as_secs_f64(),
            insecure: plan.insecure,
            realtime: plan.realtime,
            tls: plan.target.tls,
            host: plan.target.host.clone(),
            port: plan.target.port,
            stream: plan.body_mode == BodyMode::Sse,
            stages,
            ramp: plan.ramp,
            trace: plan.trace_times.is_some(),
            llm,
            thresholds: plan.thresholds.clone(),
            goodput: plan.goodput.iter().map(|o| o.text.clone()).collect(),
            targets: plan.targets.clone(),
            sessions: plan.sessions.as_ref().map(|s| {
                format!(
                    "sessions: {} conversations, at most {} turns each, think time {}, history from the {}{}",
                    s.conversations.len(),
                    s.conversations
                        .iter()
                        .map(|c| c.turns.len())
                        .max()
                        .unwrap_or(0),
                    s.think_time,
                    s.history.name(),
                    s.header
                        .as_ref()
                        .map_or(String::new(), |h| format!(", session id in {h}")),
                )
            }),
        }
    }

    /// The run has no intended send times (`--qps max`).
    pub fn closed_loop(&self) -> bool {
        self.qps.is_none()
    }
}

fn fireworks_style() -> String {
    crate::plan::PayloadStyle::Fireworks.name().into()
}

/// Thresholds as their texts; read back through the parser that made them.
mod threshold_texts {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::slo::Threshold;

    pub fn serialize<S: Serializer>(list: &[Threshold], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(list.iter().map(|t| t.text.as_str()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Threshold>, D::Error> {
        let texts = Vec::<String>::deserialize(d)?;
        crate::slo::parse_all(&texts).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_from_before_the_payload_styles_sent_the_originals() {
        let old = r#"{"stream":true,"api":"completions","model":"m","max_tokens":"25","prompt_overhead_tokens":0}"#;
        let l: LlmSettings = serde_json::from_str(old).unwrap();
        assert_eq!(l.payload_style, "fireworks");
        let back: LlmSettings = serde_json::from_str(&serde_json::to_string(&l).unwrap()).unwrap();
        assert_eq!(back, l);
    }
}
