//! The `config` member of the report: the effective inputs of a run, as the user would have typed
//! them, never a secret (no token, no header values, no body). An LLM run with a workload also
//! says where its prompts came from and how their lengths were made ([`workload`]).

use serde_json::{Map, Value, json};

use super::input::{Input, Rate};
use super::request::Shaped;
use super::workload::{PromptSource, WorkloadInfo};
use super::{Arrival, Plan};
use crate::wall::format_rfc3339;

/// `plan` is complete but for its `config`; `shaped` is what [`Plan::new`] built the request
/// from, `timeout` the effective one in seconds as given.
pub(super) fn echo(
    input: &Input,
    plan: &Plan,
    shaped: &Shaped,
    timeout: f64,
    threads_reason: &str,
) -> Map<String, Value> {
    let mut config = Map::new();
    let llm = shaped.llm.as_ref();
    if let Some((_, payload)) = llm {
        let payload = match &plan.workload {
            Some(w) => &w.payload,
            None => payload,
        };
        config.insert("fireworks_payload".into(), Value::Object(payload.clone()));
    }
    config.insert("url".into(), json!(plan.url));
    if plan.stages.is_empty() {
        config.insert(
            "qps".into(),
            match input.qps {
                Rate::PerSecond(q) => number(q),
                Rate::Max => json!("max"),
            },
        );
    } else {
        // The stages replace qps; duration is their total.
        let stages: Vec<Value> = plan
            .stages
            .iter()
            .map(|s| json!({"qps": number(s.qps), "duration": number(s.duration)}))
            .collect();
        config.insert("stages".into(), Value::Array(stages));
        config.insert("ramp".into(), json!(plan.ramp));
    }
    config.insert("duration".into(), number(input.duration));
    if !input.targets.is_empty() {
        config.insert("targets".into(), json!(input.targets.len()));
        let order = if input.targets_random {
            "random"
        } else {
            "in-order"
        };
        config.insert("targets_order".into(), json!(order));
    }
    if let Some(n) = input.max_requests {
        config.insert("max_requests".into(), json!(n));
    }
    config.insert("num_workers".into(), json!(plan.num_workers));
    config.insert("timeout".into(), json!(timeout));
    if input.method.is_some() || llm.is_some() {
        config.insert("method".into(), json!(shaped.method));
    }
    if !input.headers.is_empty() {
        // Header names only: values may be credentials.
        let names: Vec<&str> = input.headers.iter().map(|(n, _)| n.as_str()).collect();
        config.insert("headers".into(), json!(names));
    }
    if input.body.is_some() && llm.is_none() {
        config.insert("body_bytes".into(), json!(shaped.body_len));
    }
    config.insert(
        "arrival".into(),
        json!(if input.poisson { "poisson" } else { "constant" }),
    );
    let workload_seed = plan.workload.as_ref().and_then(|w| w.seed);
    match plan.arrival {
        Arrival::Poisson { seed } => {
            config.insert("seed".into(), json!(seed));
        }
        Arrival::Constant => {
            if let Some(seed) = workload_seed {
                config.insert("seed".into(), json!(seed));
            }
        }
    }
    config.insert("threads".into(), json!(plan.threads));
    config.insert("threads_reason".into(), json!(threads_reason));
    if let Rate::PerSecond(_) = input.qps {
        let w = &plan.wake;
        config.insert("max_lateness".into(), json!(w.budget.as_secs_f64()));
        // How the lanes wake for sends, and why (see `plan::wake`).
        config.insert(
            "pacing".into(),
            json!({
                "batch_budget_us": micros(w.budget),
                "spin_max_us": micros(w.spin),
                "why": w.why,
            }),
        );
    }
    config.insert("interval".into(), number(plan.interval.as_secs_f64()));
    if let Some((l, _)) = llm {
        config.insert("api".into(), json!(l.api.name()));
        config.insert("payload_style".into(), json!(l.payload_style.name()));
        config.insert("stream".into(), json!(l.stream));
        if input.workload.ignore_eos {
            config.insert("ignore_eos".into(), json!(true));
        }
        if input.workload.prompt_overhead_tokens > 0 {
            config.insert(
                "prompt_overhead_tokens".into(),
                json!(input.workload.prompt_overhead_tokens),
            );
        }
    }
    if let Some(w) = &plan.workload {
        workload(&mut config, w);
    }
    if let Some(ca) = &input.ca_cert {
        config.insert("ca_cert".into(), json!(ca));
    }
    if plan.target.tls || input.insecure {
        config.insert("insecure".into(), json!(input.insecure));
    }
    if input.realtime {
        config.insert("realtime".into(), json!(true));
    }
    if plan.shard.count() > 1 {
        config.insert("shard".into(), json!(plan.shard.to_string()));
    }
    if let Some(t) = plan.start_at {
        config.insert("start_at".into(), json!(format_rfc3339(t)));
    }
    if !plan.thresholds.is_empty() {
        let texts: Vec<&str> = plan.thresholds.iter().map(|t| t.text.as_str()).collect();
        config.insert("thresholds".into(), json!(texts));
    }
    if !plan.goodput.is_empty() {
        let texts: Vec<&str> = plan.goodput.iter().map(|o| o.text.as_str()).collect();
        config.insert("goodput".into(), json!(texts));
    }
    if input.insecure {
        config.insert(
            "warning".into(),
            json!("TLS certificate verification is DISABLED (insecure): the target's identity was not checked"),
        );
    }
    config
}

/// A duration in whole microseconds where it is one (as chosen), else to the nanosecond.
fn micros(d: std::time::Duration) -> Value {
    if d.subsec_nanos().is_multiple_of(1000) {
        json!(d.as_micros() as u64)
    } else {
        json!(d.as_nanos() as f64 / 1e3)
    }
}

/// Where the prompts came from (`prompts`: dataset, inline, synthetic or prompt; the data set's
/// path, entries and skipped conversations), their order, the distinct requests built, the
/// length distributions, the shared prefix, the tokenizer and whether lengths are exact.
fn workload(config: &mut Map<String, Value>, w: &WorkloadInfo) {
    config.insert("prompts".into(), json!(w.source.name()));
    if let PromptSource::Dataset(path) = &w.source {
        config.insert("dataset".into(), json!(path.display().to_string()));
    }
    config.insert("prompt_entries".into(), json!(w.entries));
    if let PromptSource::Dataset(_) = &w.source {
        config.insert("dataset_skipped".into(), json!(w.skipped));
    }
    config.insert(
        "order".into(),
        json!(if w.shuffled { "shuffled" } else { "sequential" }),
    );
    config.insert("distinct_requests".into(), json!(w.distinct_requests));
    if let Some(d) = w.input_tokens {
        config.insert("input_tokens".into(), json!(d.to_string()));
    }
    if let Some(d) = w.output_tokens {
        config.insert("output_tokens".into(), json!(d.to_string()));
    }
    if w.output_len_from_dataset {
        config.insert("output_len_from_dataset".into(), json!(true));
    }
    if w.prefix_groups > 1 {
        config.insert("prefix_groups".into(), json!(w.prefix_groups));
    }
    if w.prefix_tokens > 0 {
        config.insert("prefix_tokens".into(), json!(w.prefix_tokens));
    }
    if let Some(t) = &w.tokenizer {
        config.insert("tokenizer".into(), json!(t.display().to_string()));
    }
    config.insert("token_lengths".into(), json!(w.token_lengths()));
}

/// Integral floats print as integers, as the user most likely typed them (`"qps": 20`).
fn number(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9e15 {
        json!(x as i64)
    } else {
        json!(x)
    }
}
