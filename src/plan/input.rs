//! What the user asked for, before validation: the [`Input`] both front doors fill (the API from
//! request JSON after its type checks, the CLI from flags), and the words both accept for a rate
//! and a boolean, so `"max"` or `"True"` mean the same wherever they are typed.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::ShardIndex;
use super::stages::Stage;
use crate::llm::{Api, LengthDist, PayloadStyle};
use crate::wall::UnixNanos;

/// Requests per second, or closed-loop saturation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rate {
    PerSecond(f64),
    Max,
}

/// `max`, or the number as typed (`10`, not `10.0`): clap shows it as a default and reads it back.
impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rate::PerSecond(q) => write!(f, "{q}"),
            Rate::Max => f.write_str("max"),
        }
    }
}

impl FromStr for Rate {
    type Err = String;

    /// A number, or `max` in any case. Range checks are [`Plan::new`](super::Plan::new)'s.
    fn from_str(s: &str) -> Result<Rate, String> {
        if s.trim().eq_ignore_ascii_case("max") {
            return Ok(Rate::Max);
        }
        s.trim()
            .parse::<f64>()
            .map(Rate::PerSecond)
            .map_err(|_| format!("{s:?} is not a number or `max`"))
    }
}

/// The boolean words pacer accepts anywhere: the original API's for `stream` (its curl example
/// sends `"True"`), and nothing looser, so a typo is an error rather than a guess.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "true" | "True" => Some(true),
        "false" | "False" => Some(false),
        _ => None,
    }
}

/// A boolean in request JSON: `true`/`false`, or a string [`parse_bool`] accepts.
pub fn json_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => parse_bool(s),
        _ => None,
    }
}

/// What the user asked for, before validation. `None` means "use the default".
#[derive(Clone, Debug)]
pub struct Input {
    pub url: String,
    pub qps: Rate,
    pub duration: f64,
    /// Closed loop (`qps` max) only: stop after this many sends (`-n`); `duration` is then only
    /// an upper bound. None: as many as fit in `duration`.
    pub max_requests: Option<u64>,
    /// 0, negative or absent mean the default, as in the original.
    pub num_workers: Option<i64>,
    pub timeout: Option<f64>,
    pub method: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    /// `Some(true)` for Poisson arrivals.
    pub poisson: bool,
    pub seed: Option<u64>,
    pub threads: Option<usize>,
    /// Seconds a send may wait so that sends due close together share a wake-up
    /// (`--max-lateness`; absent: see `defaults::MAX_LATENESS`).
    pub max_lateness: Option<f64>,
    pub ca_cert: Option<String>,
    pub insecure: bool,
    /// Run the workers under `SCHED_FIFO` (fixed-rate runs only; see `engine::sched`).
    pub realtime: bool,
    /// Seconds per interval of the report's timeline.
    pub interval: Option<f64>,
    pub llm: Option<LlmInput>,
    /// The part of the run this process sends (`--shard i/N`); the whole run by default.
    pub shard: ShardIndex,
    /// When the schedule starts, on the wall clock (`--start-at`); as soon as ready by default.
    pub start_at: Option<UnixNanos>,
    /// Stages instead of one rate (see [`Input::set_stages`]); None for a plain run.
    pub stages: Option<Vec<Stage>>,
    /// Ramp between the stages' rates instead of stepping (needs `stages`).
    pub ramp: bool,
    /// Threshold expressions as given (`response_time_p99<=200ms`; each may be a comma list).
    pub thresholds: Vec<String>,
    /// Goodput objectives as given (`time_to_first_token<=200ms,...`).
    pub goodput: Vec<String>,
    /// LLM runs only: where the prompts come from and how long prompts and answers are.
    pub workload: WorkloadInput,
    /// Push the run's live figures to this OTLP/HTTP collector URL (`--otlp`; see `live::otlp`).
    pub otlp: Option<String>,
    /// A targets file, parsed (`--targets`; [`super::targets::read`]): requests spread over
    /// them, and `url` is the first one's. Empty: every request goes to `url`.
    pub targets: Vec<super::targets::TargetSpec>,
    /// Spread over the targets in a seeded random order rather than in turn.
    pub targets_random: bool,
}

impl Input {
    /// An input with every optional field at its default.
    pub fn new(url: impl Into<String>, qps: Rate, duration: f64) -> Input {
        Input {
            url: url.into(),
            qps,
            duration,
            max_requests: None,
            num_workers: None,
            timeout: None,
            method: None,
            headers: Vec::new(),
            body: None,
            poisson: false,
            seed: None,
            threads: None,
            max_lateness: None,
            ca_cert: None,
            insecure: false,
            realtime: false,
            interval: None,
            llm: None,
            shard: ShardIndex::WHOLE,
            start_at: None,
            stages: None,
            ramp: false,
            thresholds: Vec::new(),
            goodput: Vec::new(),
            workload: WorkloadInput::default(),
            otlp: None,
            targets: Vec::new(),
            targets_random: false,
        }
    }

    /// Runs `stages` instead of one rate. `qps` and `duration` become the highest stage rate and
    /// the stages' total length, which the shared limits and defaults (`num_workers`: the peak
    /// rather than the mean) then read; the front has already refused a `qps` or `duration`
    /// given beside the stages.
    pub fn set_stages(&mut self, stages: Vec<Stage>, ramp: bool) {
        let peak = stages.iter().map(|s| s.qps).fold(0.0, f64::max);
        self.qps = Rate::PerSecond(peak);
        self.duration = stages.iter().map(|s| s.duration).sum();
        self.stages = Some(stages);
        self.ramp = ramp;
    }
}

/// The prompts of an LLM run and their lengths (issue 12). All default to off: one prompt, the
/// `max_tokens` of [`LlmInput`], no tokenizer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkloadInput {
    /// A data set file (JSON lines or a ShareGPT array), read before the run.
    pub dataset: Option<PathBuf>,
    /// Prompts given inline (the API's `prompts`).
    pub prompts: Option<Vec<String>>,
    /// Largest data set file accepted; `None`: the front's limit.
    pub max_dataset_bytes: Option<u64>,
    /// Most bytes the workload may hold (`--max-workload-bytes`); `None`: the front's limit.
    pub max_workload_bytes: Option<u64>,
    /// ShareGPT: the reply's length sets `max_tokens`.
    pub output_len_from_dataset: bool,
    /// Take the entries in a seeded shuffled order rather than file order.
    pub shuffle: bool,
    /// Synthetic prompts of these lengths.
    pub input_tokens: Option<LengthDist>,
    /// Per-request `max_tokens` drawn from this.
    pub output_tokens: Option<LengthDist>,
    /// Adds `"ignore_eos": true` to the payload, so answers reach `max_tokens`.
    pub ignore_eos: bool,
    /// A Hugging Face `tokenizer.json`: exact lengths and token counts.
    pub tokenizer: Option<PathBuf>,
    /// Every synthetic prompt starts with the same this many tokens.
    pub prefix_tokens: Option<u32>,
    /// That many distinct prefixes of `prefix_tokens` each, prompts spread over them round
    /// robin (`--prefix-groups`); None: one.
    pub prefix_groups: Option<u32>,
    /// The prompt tokens a chat template adds: the expected excess of the server's
    /// `usage.prompt_tokens` over the tokenizer's count (`engine::tokens`).
    pub prompt_overhead_tokens: u64,
    /// Run the data set's conversations as multi-turn sessions (`--sessions`).
    pub sessions: Option<super::session::SessionInput>,
    /// A trace to replay (`--trace`, read by [`super::trace::load`] and set with
    /// [`Input::set_trace`]): its times are the schedule, its lengths and blocks the prompts.
    pub trace: Option<Arc<super::trace::Replay>>,
}

impl WorkloadInput {
    /// Whether anything but the single prompt is asked for (`ignore_eos` only changes the
    /// payload, `prompt_overhead_tokens` only how counts are checked).
    pub fn is_set(&self) -> bool {
        let WorkloadInput {
            dataset,
            prompts,
            max_dataset_bytes: _,
            max_workload_bytes: _,
            output_len_from_dataset,
            shuffle,
            input_tokens,
            output_tokens,
            ignore_eos: _,
            prompt_overhead_tokens: _,
            tokenizer,
            prefix_tokens,
            prefix_groups,
            sessions,
            trace,
        } = self;
        trace.is_some()
            || dataset.is_some()
            || prompts.is_some()
            || *output_len_from_dataset
            || *shuffle
            || input_tokens.is_some()
            || output_tokens.is_some()
            || tokenizer.is_some()
            || prefix_tokens.is_some_and(|p| p > 0)
            || prefix_groups.is_some()
            || sessions.is_some()
    }

    /// Prompts that replace the single `prompt`: a data set, inline ones, or synthetic ones.
    pub fn brings_prompts(&self) -> bool {
        self.dataset.is_some()
            || self.prompts.is_some()
            || self.input_tokens.is_some()
            || self.trace.is_some()
    }
}

/// The LLM benchmark's own inputs (SPEC §4).
#[derive(Clone)]
pub struct LlmInput {
    pub token: String,
    pub model: String,
    pub prompt: String,
    pub max_tokens: i64,
    /// Asked-for streaming; a `stream` in `payload` overrides it (see `Plan::new`).
    pub stream: bool,
    pub api: Api,
    /// Which default payload to send; `None`: by the target's host
    /// ([`PayloadStyle::for_host`]).
    pub payload_style: Option<PayloadStyle>,
    pub payload: Option<Map<String, Value>>,
}

#[cfg(test)]
impl LlmInput {
    /// Streaming completions of prompt "p" to model "m", 5 tokens, token "t": for unit tests,
    /// which change what they test (`LlmInput { max_tokens: 9, ..LlmInput::example() }`).
    pub(crate) fn example() -> LlmInput {
        LlmInput {
            token: "t".into(),
            model: "m".into(),
            prompt: "p".into(),
            max_tokens: 5,
            stream: true,
            api: Api::Completions,
            payload_style: None,
            payload: None,
        }
    }
}

// The token is a secret: never printed, not even in debug output.
impl fmt::Debug for LlmInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LlmInput")
            .field("token", &"<redacted>")
            .field("model", &self.model)
            .field("max_tokens", &self.max_tokens)
            .field("stream", &self.stream)
            .field("api", &self.api)
            .field("payload_style", &self.payload_style)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bool_words_are_the_apis() {
        for (s, want) in [
            ("true", Some(true)),
            ("True", Some(true)),
            ("false", Some(false)),
            ("False", Some(false)),
            ("TRUE", None),
            ("yes", None),
            ("1", None),
            (" true", None),
            ("", None),
        ] {
            assert_eq!(parse_bool(s), want, "{s:?}");
        }
        for (v, want) in [
            (json!(true), Some(true)),
            (json!(false), Some(false)),
            (json!("True"), Some(true)),
            (json!("false"), Some(false)),
            (json!("maybe"), None),
            (json!(1), None),
            (json!(null), None),
            (json!([true]), None),
        ] {
            assert_eq!(json_bool(&v), want, "{v}");
        }
    }

    #[test]
    fn rates_print_as_typed_and_read_back() {
        for r in [Rate::PerSecond(10.0), Rate::PerSecond(0.5), Rate::Max] {
            assert_eq!(r.to_string().parse::<Rate>(), Ok(r));
        }
        assert_eq!(Rate::PerSecond(20.0).to_string(), "20");
        assert_eq!("MAX".parse::<Rate>(), Ok(Rate::Max));
        assert_eq!(
            "ten".parse::<Rate>(),
            Err("\"ten\" is not a number or `max`".into())
        );
    }
}
