//! The `config` member of the report: the effective inputs of a run, as the user would have typed
//! them, never a secret (no token, no header values, no body).

use serde_json::{Map, Value, json};

use super::input::{Input, Rate};
use super::request::Shaped;
use super::{Arrival, Plan};
use crate::shard::time::format_rfc3339;

/// `plan` is complete but for its `config`; `shaped` is what [`Plan::new`] built the request
/// from, `timeout` the effective one in seconds as given.
pub(super) fn echo(
    input: &Input,
    plan: &Plan,
    shaped: &Shaped,
    timeout: f64,
) -> Map<String, Value> {
    let mut config = Map::new();
    let llm = shaped.llm.as_ref();
    if let Some((_, payload)) = llm {
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
    if let Arrival::Poisson { seed } = plan.arrival {
        config.insert("seed".into(), json!(seed));
    }
    config.insert("threads".into(), json!(plan.threads));
    if let Some((l, _)) = llm {
        config.insert("api".into(), json!(l.api.name()));
        config.insert("stream".into(), json!(l.stream));
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

/// Integral floats print as integers, as the user most likely typed them (`"qps": 20`).
fn number(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9e15 {
        json!(x as i64)
    } else {
        json!(x)
    }
}
