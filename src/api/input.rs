//! Request JSON to [`Input`], with the type checks the original's pydantic models made and the
//! FastAPI error shapes they produced: every field error is collected into one 422 list of
//! `{loc, msg, type}`. Range checks (positive rates, limits, URLs) are left to [`Plan::new`],
//! so the API and the CLI share them. Errors never carry the offending input: a request may
//! hold a bearer token.
//!
//! [`Plan::new`]: crate::plan::Plan::new

use serde_json::{Map, Value, json};

use crate::llm::{Api, LengthDist, PayloadStyle};
use crate::plan::stages::Stage;
use crate::plan::{Input, LlmInput, PlanError, Rate, WorkloadInput, defaults, json_bool};
use crate::shard::ShardIndex;
use crate::shard::time::{UnixNanos, parse_time};
use crate::sweep::{SweepError, SweepInput};

/// An API error: the HTTP status and the value of the `detail` member of the body.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub detail: Value,
}

impl ApiError {
    /// An error whose detail is a plain message, as `HTTPException(status, msg)` writes it.
    pub fn message(status: u16, msg: impl Into<String>) -> ApiError {
        ApiError {
            status,
            detail: Value::String(msg.into()),
        }
    }

    /// A 422 with one FastAPI validation entry.
    pub fn invalid(loc: Vec<Value>, msg: &str, kind: &str) -> ApiError {
        ApiError {
            status: 422,
            detail: json!([{ "loc": loc, "msg": msg, "type": kind }]),
        }
    }

    /// The response body: `{"detail": ...}`.
    pub fn body(&self) -> Value {
        json!({ "detail": self.detail })
    }
}

impl From<SweepError> for ApiError {
    fn from(e: SweepError) -> ApiError {
        match e {
            SweepError::Invalid { field, msg } => {
                ApiError::invalid(vec![json!("body"), json!(field)], &msg, "value_error")
            }
            SweepError::Plan(e) => e.into(),
        }
    }
}

impl From<PlanError> for ApiError {
    fn from(e: PlanError) -> ApiError {
        match e {
            PlanError::BadRequest(msg) => ApiError::message(400, msg),
            PlanError::Invalid { field, msg } => {
                ApiError::invalid(vec![json!("body"), json!(field)], &msg, "value_error")
            }
        }
    }
}

/// Parses a request body as FastAPI does for a JSON body: an empty body is a missing body, bad
/// JSON is `json_invalid` at the byte where parsing stopped.
pub fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::invalid(
            vec![json!("body")],
            "Field required",
            "missing",
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        let pos = byte_offset(bytes, e.line(), e.column());
        ApiError {
            status: 422,
            // serde_json's messages describe syntax only, never the input itself.
            detail: json!([{
                "loc": ["body", pos],
                "msg": "JSON decode error",
                "type": "json_invalid",
                "ctx": { "error": e.to_string() },
            }]),
        }
    })
}

/// serde_json reports 1-based line and byte column; FastAPI reports an offset.
fn byte_offset(bytes: &[u8], line: usize, column: usize) -> usize {
    let mut start = 0;
    for _ in 1..line {
        match bytes[start..].iter().position(|&b| b == b'\n') {
            Some(i) => start += i + 1,
            None => break,
        }
    }
    (start + column.saturating_sub(1)).min(bytes.len())
}

/// Members of a run request that say how to answer rather than what to run (read by
/// [`flag`]): known to every run route.
pub const ANSWER_FLAGS: [&str; 2] = ["async", "state"];

/// `POST /benchmark`'s body (SPEC §3) to an [`Input`].
pub fn benchmark_input(body: &Value) -> Result<Input, ApiError> {
    benchmark_input_in(body, &[])
}

/// [`benchmark_input`], for a route whose own fields (`also`, already taken out of `body`) are
/// suggested for an unknown one too.
fn benchmark_input_in(body: &Value, also: &[&'static str]) -> Result<Input, ApiError> {
    let mut f = Fields::new(body)?;
    f.also(also);
    let url = f.field("url", Presence::Required, string);
    // Stages replace qps and duration (run_extensions refuses them together).
    let needed = if f.present("stages") {
        Presence::Nullable
    } else {
        Presence::Required
    };
    let qps = f.field("qps", needed, rate);
    let duration = f.field("duration", needed, number);
    let (qps, duration) = if f.present("stages") {
        (Some(Rate::PerSecond(0.0)), Some(0.0))
    } else {
        (qps, duration)
    };
    let input = f.run_extensions(url, qps, duration);
    f.finish()?;
    input.ok_or_else(unreachable_missing)
}

/// `POST /fireworks_benchmark`'s body (SPEC §4) to an [`Input`] with its [`LlmInput`].
pub fn fireworks_input(body: &Value) -> Result<Input, ApiError> {
    fireworks_input_in(body, &[])
}

/// [`fireworks_input`], with `also` as for [`benchmark_input_in`].
fn fireworks_input_in(body: &Value, also: &[&'static str]) -> Result<Input, ApiError> {
    let mut f = Fields::new(body)?;
    f.also(also);
    let token = f.field("token", Presence::Required, string);
    let model = f.field("model", Presence::Defaulted, string);
    let prompt = f.field("prompt", Presence::Defaulted, string);
    let max_tokens = f.field("max_tokens", Presence::Defaulted, integer);
    let url = f.field("url", Presence::Defaulted, string);
    let stream = f.field("stream", Presence::Defaulted, boolean);
    let api = f.field("api", Presence::Defaulted, api_kind);
    let payload = f.field("payload", Presence::Nullable, object);
    let workload = f.workload();
    let qps = f.field("qps", Presence::Defaulted, rate);
    let duration = f.field("duration", Presence::Defaulted, number);
    let mut input = f.run_extensions(
        Some(url.unwrap_or_else(|| defaults::LLM_URL.to_string())),
        Some(qps.unwrap_or(Rate::PerSecond(defaults::LLM_QPS))),
        Some(duration.unwrap_or(defaults::LLM_DURATION)),
    );
    // The original's defaults differ from /benchmark's for these two.
    if let Some(i) = input.as_mut() {
        if !f.present("num_workers") {
            i.num_workers = Some(defaults::LLM_WORKERS);
        }
        if !f.present("timeout") {
            i.timeout = Some(defaults::LLM_TIMEOUT);
        }
    }
    f.finish()?;
    let (Some(mut input), Some(token)) = (input, token) else {
        return Err(unreachable_missing());
    };
    input.llm = Some(LlmInput {
        token,
        model: model.unwrap_or_else(|| defaults::LLM_MODEL.to_string()),
        // The original's prompt defaults to empty, which its own check then refuses.
        prompt: prompt.unwrap_or_default(),
        max_tokens: max_tokens.unwrap_or(defaults::LLM_MAX_TOKENS),
        stream: stream.unwrap_or(defaults::LLM_STREAM),
        api: api.unwrap_or(Api::Completions),
        // The original's payload, whatever the URL: the endpoint is the original's.
        payload_style: Some(PayloadStyle::Fireworks),
        payload: payload.cloned(),
    });
    input.workload = workload;
    Ok(input)
}

/// A boolean member of a run request that says how to answer rather than what to run (`async`:
/// 202 at once; `state`: add the run's mergeable state): absent or `null` is false. The words of
/// every boolean.
pub fn flag(body: &Value, name: &'static str) -> Result<bool, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(false),
        Some(v) => boolean(v)
            .map_err(|(kind, msg)| ApiError::invalid(vec![json!("body"), json!(name)], msg, kind)),
    }
}

/// Both results, or their errors: two 422s become one with every field error, in order.
pub fn both<A, B>(a: Result<A, ApiError>, b: Result<B, ApiError>) -> Result<(A, B), ApiError> {
    match (a, b) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (Err(mut first), Err(second)) => {
            if let (Value::Array(list), Value::Array(more)) = (&mut first.detail, second.detail)
                && first.status == 422
                && second.status == 422
            {
                list.extend(more);
            }
            Err(first)
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
    }
}

/// Fields of a run request a sweep sets itself, and what to give instead.
const NOT_IN_A_SWEEP: [(&str, &str); 5] = [
    (
        "qps",
        "qps does not apply to a sweep: it sets each step's rate (give rates, or steps from the probe's peak)",
    ),
    (
        "duration",
        "duration does not apply to a sweep: each step runs step_duration, the probe probe_duration",
    ),
    (
        "shard",
        "shard does not apply to a sweep: it runs whole on one machine",
    ),
    (
        "start_at",
        "start_at does not apply to a sweep: it starts at once",
    ),
    (
        "state",
        "state does not apply to a sweep: its steps are not merged",
    ),
];

/// `POST /sweep`'s body: a `/benchmark` body (or, with `"kind": "fireworks_benchmark"`, a
/// `/fireworks_benchmark` one) without `qps` and `duration`, and the sweep's own fields. Their
/// ranges are [`sweep::check`]'s.
///
/// [`sweep::check`]: crate::sweep::check
pub fn sweep_input(body: &Value) -> Result<SweepInput, ApiError> {
    let mut f = Fields::new(body)?;
    let llm = f.field("kind", Presence::Nullable, sweep_kind);
    let rates = f.field("rates", Presence::Nullable, rate_list);
    let steps = f.field("steps", Presence::Nullable, count);
    let probe_duration = f.field("probe_duration", Presence::Nullable, number);
    let step_duration = f.field("step_duration", Presence::Nullable, number);
    let pause = f.field("pause", Presence::Nullable, number);
    let min_achieved = f.field("min_achieved", Presence::Nullable, number);
    for (name, msg) in NOT_IN_A_SWEEP {
        if f.present(name) {
            f.error(&[name], ("value_error", msg));
        }
    }
    // The sweep's own fields: known here, suggested for an unknown one among the run's.
    let own_names = f.asked.clone();
    // Unknown members are the run's to name (it knows the run fields).
    let own = f.finish_open();
    // Each run's rate and length are the sweep's: the run's fields are read with stand-ins.
    let mut run = body.as_object().cloned().unwrap_or_default();
    for name in NOT_IN_A_SWEEP
        .iter()
        .map(|(n, _)| *n)
        .chain(own_names.iter().copied())
    {
        run.remove(name);
    }
    run.insert("qps".into(), json!(1));
    run.insert("duration".into(), json!(1));
    let run = Value::Object(run);
    let base = if llm == Some(true) {
        fireworks_input_in(&run, &own_names)
    } else {
        benchmark_input_in(&run, &own_names)
    };
    let (base, ()) = both(base, own)?;
    let mut i = SweepInput::new(base);
    i.rates = rates;
    i.steps = steps.unwrap_or(i.steps);
    i.probe_duration = probe_duration.unwrap_or(i.probe_duration);
    i.step_duration = step_duration.unwrap_or(i.step_duration);
    i.pause = pause.unwrap_or(i.pause);
    i.min_achieved = min_achieved.unwrap_or(i.min_achieved);
    Ok(i)
}

/// `kind`: whether the runs are `/benchmark`'s (false) or `/fireworks_benchmark`'s (true).
fn sweep_kind(v: &Value) -> Result<bool, FieldError> {
    match v.as_str() {
        Some("benchmark") => Ok(false),
        Some("fireworks_benchmark") => Ok(true),
        _ => Err((
            "literal_error",
            "Input should be 'benchmark' or 'fireworks_benchmark'",
        )),
    }
}

fn rate_list(v: &Value) -> Result<Vec<f64>, FieldError> {
    let list = v
        .as_array()
        .ok_or(("list_type", "Input should be a valid list"))?;
    list.iter().map(number).collect()
}

/// A required field that parsed without error is always present; this answers if that ever breaks
/// rather than panicking on a request.
fn unreachable_missing() -> ApiError {
    ApiError::message(500, "internal error: a validated field is missing")
}

/// What an absent or `null` field means.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Presence {
    /// Absent is `missing`; `null` is a type error.
    Required,
    /// Absent takes the default; `null` is a type error (pydantic's `x: T = default`).
    Defaulted,
    /// Absent or `null` take the default (`Optional[T] = None`).
    Nullable,
}

/// Workload fields of the command line that the API refuses on purpose, with their flags: a
/// trace is a file the server would have to read (through `--data-dir`, with a rate and a
/// duration of its own), and sessions, prefix groups and the prompt overhead are not wired to
/// the API's plan yet. Named in the refusal rather than called unknown.
const CLI_ONLY: [(&str, &str); 10] = [
    ("trace", "--trace"),
    ("replay_speed", "--replay-speed"),
    ("block_tokens", "--block-tokens"),
    ("sessions", "--sessions"),
    ("max_turns", "--max-turns"),
    ("think_time", "--think-time"),
    ("session_header", "--session-header"),
    ("history", "--history"),
    ("prefix_groups", "--prefix-groups"),
    ("prompt_overhead_tokens", "--prompt-overhead-tokens"),
];

/// A field-level failure: pydantic's error type and message.
type FieldError = (&'static str, &'static str);

struct Fields<'a> {
    obj: &'a Map<String, Value>,
    errors: Vec<Value>,
    /// Every field name read: what the route knows. Any other member is refused.
    asked: Vec<&'static str>,
    /// Names to suggest for an unknown member besides `asked` (another part of the route's).
    also: Vec<&'static str>,
}

impl<'a> Fields<'a> {
    fn new(body: &'a Value) -> Result<Fields<'a>, ApiError> {
        match body {
            Value::Object(obj) => Ok(Fields {
                obj,
                errors: Vec::new(),
                asked: Vec::new(),
                also: Vec::new(),
            }),
            _ => Err(ApiError::invalid(
                vec![json!("body")],
                "Input should be a valid dictionary or object to extract fields from",
                "model_attributes_type",
            )),
        }
    }

    fn also(&mut self, names: &[&'static str]) {
        self.also.extend_from_slice(names);
    }

    fn present(&self, name: &str) -> bool {
        self.obj.get(name).is_some_and(|v| !v.is_null())
    }

    fn error(&mut self, loc: &[&str], (kind, msg): FieldError) {
        self.error_with(loc, kind, msg.to_string());
    }

    fn error_with(&mut self, loc: &[&str], kind: &str, msg: String) {
        let mut l = vec![json!("body")];
        l.extend(loc.iter().map(|s| json!(s)));
        self.errors
            .push(json!({ "loc": l, "msg": msg, "type": kind }));
    }

    /// The prompts of an LLM run and their lengths (see [`WorkloadInput`]). Paths are as the
    /// request gave them: which file they name is `datadir`'s to say (the route resolves them
    /// before the plan reads anything), whether it parses is the plan's.
    fn workload(&mut self) -> WorkloadInput {
        let dataset = self.field("dataset", Presence::Nullable, string);
        let prompts = self.prompts();
        let max_dataset_bytes = self.field("max_dataset_bytes", Presence::Nullable, at_least_one);
        let output_len_from_dataset =
            self.field("output_len_from_dataset", Presence::Nullable, boolean);
        let shuffle = self.field("shuffle", Presence::Nullable, boolean);
        let input_tokens = self.lengths("input_tokens");
        let output_tokens = self.lengths("output_tokens");
        let ignore_eos = self.field("ignore_eos", Presence::Nullable, boolean);
        let tokenizer = self.field("tokenizer", Presence::Nullable, string);
        let prefix_tokens = self.field("prefix_tokens", Presence::Nullable, non_negative);
        WorkloadInput {
            dataset: dataset.map(Into::into),
            prompts,
            max_dataset_bytes,
            // The server's --max-workload-bytes alone: a request cannot choose its own.
            max_workload_bytes: None,
            output_len_from_dataset: output_len_from_dataset.unwrap_or(false),
            shuffle: shuffle.unwrap_or(false),
            input_tokens,
            output_tokens,
            ignore_eos: ignore_eos.unwrap_or(false),
            tokenizer: tokenizer.map(Into::into),
            prefix_tokens: prefix_tokens.map(|p| u32::try_from(p).unwrap_or(u32::MAX)),
            // Not on the API yet: the command line's `--prefix-groups`.
            prefix_groups: None,
            // The command line's --prompt-overhead-tokens; not (yet) a field of the API.
            prompt_overhead_tokens: 0,
            sessions: None,
            // Not on the API yet: the command line's `--trace`.
            trace: None,
        }
    }

    /// `prompts`: a list of strings (each error at its index).
    fn prompts(&mut self) -> Option<Vec<String>> {
        self.asked.push("prompts");
        match self.obj.get("prompts") {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::String(s) => out.push(s.clone()),
                        _ => self.error(&["prompts", &i.to_string()], STRING_TYPE),
                    }
                }
                Some(out)
            }
            Some(_) => {
                self.error(&["prompts"], LIST_TYPE);
                None
            }
        }
    }

    /// A token length: a number (the mean), or a string `MEAN`, `MEAN:STDDEV`, `uniform:MIN:MAX`.
    fn lengths(&mut self, name: &'static str) -> Option<LengthDist> {
        self.asked.push(name);
        let text = match self.obj.get(name)? {
            Value::Null => return None,
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.clone(),
            _ => {
                self.error(&[name], STRING_TYPE);
                return None;
            }
        };
        match text.parse::<LengthDist>() {
            Ok(d) => Some(d),
            Err(e) => {
                self.error_with(&[name], "value_error", e.to_string());
                None
            }
        }
    }

    fn field<T>(
        &mut self,
        name: &'static str,
        presence: Presence,
        parse: impl Fn(&'a Value) -> Result<T, FieldError>,
    ) -> Option<T> {
        self.asked.push(name);
        match self.obj.get(name) {
            None if presence == Presence::Required => {
                self.error(&[name], ("missing", "Field required"));
                None
            }
            None => None,
            Some(Value::Null) if presence == Presence::Nullable => None,
            Some(v) => match parse(v) {
                Ok(x) => Some(x),
                Err(e) => {
                    self.error(&[name], e);
                    None
                }
            },
        }
    }

    /// The fields both endpoints share (SPEC §3's extensions). `None` when a required field failed.
    fn run_extensions(
        &mut self,
        url: Option<String>,
        qps: Option<Rate>,
        duration: Option<f64>,
    ) -> Option<Input> {
        let num_workers = self.field("num_workers", Presence::Nullable, integer);
        let timeout = self.field("timeout", Presence::Nullable, number);
        let method = self.field("method", Presence::Nullable, string);
        let headers = self.headers();
        let body = self.field("body", Presence::Nullable, string);
        let poisson = self.field("arrival", Presence::Nullable, arrival);
        let seed = self.field("seed", Presence::Nullable, seed);
        let threads = self.field("threads", Presence::Nullable, count);
        let max_lateness = self.field("max_lateness", Presence::Nullable, number);
        let ca_cert = self.field("ca_cert", Presence::Nullable, string);
        let insecure = self.field("insecure", Presence::Nullable, boolean);
        let realtime = self.field("realtime", Presence::Nullable, boolean);
        let shard = self.field("shard", Presence::Nullable, shard);
        let start_at = self.field("start_at", Presence::Nullable, start_at);
        let thresholds = self.field("thresholds", Presence::Nullable, strings);
        let goodput = self.field("goodput", Presence::Nullable, strings);
        let stages = self.field("stages", Presence::Nullable, stage_list);
        let ramp = self.field("ramp", Presence::Nullable, boolean);
        if stages.is_some() && (self.present("qps") || self.present("duration")) {
            self.error(&["stages"], STAGES_OR_RATE);
        }
        let interval = self.field("interval", Presence::Nullable, number);
        let otlp = self.field("otlp", Presence::Nullable, string);
        let mut input = Input::new(url?, qps?, duration?);
        input.num_workers = num_workers;
        input.timeout = timeout;
        input.method = method;
        input.headers = headers;
        input.body = body;
        input.poisson = poisson.unwrap_or(false);
        input.seed = seed;
        input.threads = threads;
        input.max_lateness = max_lateness;
        input.ca_cert = ca_cert;
        input.insecure = insecure.unwrap_or(false);
        input.realtime = realtime.unwrap_or(false);
        input.shard = shard.unwrap_or(ShardIndex::WHOLE);
        input.start_at = start_at;
        input.thresholds = thresholds.unwrap_or_default();
        input.goodput = goodput.unwrap_or_default();
        match stages {
            Some(list) => input.set_stages(list, ramp.unwrap_or(false)),
            None => input.ramp = ramp.unwrap_or(false),
        }
        input.interval = interval;
        input.otlp = otlp;
        Some(input)
    }

    fn headers(&mut self) -> Vec<(String, String)> {
        self.asked.push("headers");
        let mut out = Vec::new();
        match self.obj.get("headers") {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                for (name, value) in m {
                    match value {
                        Value::String(v) => out.push((name.clone(), v.clone())),
                        _ => self.error(&["headers", name], STRING_TYPE),
                    }
                }
            }
            Some(_) => self.error(&["headers"], DICT_TYPE),
        }
        out
    }

    /// The errors, with one for each member the route does not know (a misspelt field would
    /// otherwise be ignored, and the run made without it): pydantic's `extra_forbidden`, with
    /// the closest known name when one is close.
    fn finish(mut self) -> Result<(), ApiError> {
        let known: Vec<&str> = (self.asked.iter().chain(&self.also))
            .chain(ANSWER_FLAGS.iter())
            .copied()
            .collect();
        let unknown: Vec<&String> = self
            .obj
            .keys()
            .filter(|k| !known.contains(&k.as_str()))
            .collect();
        for name in unknown {
            let shown: String = name.chars().take(64).collect();
            let cli = CLI_ONLY.iter().find(|(field, _)| *field == name.as_str());
            let msg = match (cli, closest(name, &known)) {
                (Some((field, flag)), _) => format!(
                    "Extra inputs are not permitted: `{field}` is the command line's \
                     (`pacer llm {flag}`), not the API's: the API runs no trace replay, \
                     session or prefix-group workload"
                ),
                (None, near) => match near {
                    Some(near) => format!(
                        "Extra inputs are not permitted: unknown field `{shown}`; did you mean \
                     `{near}`?"
                    ),
                    None => format!("Extra inputs are not permitted: unknown field `{shown}`"),
                },
            };
            self.errors
                .push(json!({ "loc": ["body", name], "msg": msg, "type": "extra_forbidden" }));
        }
        self.finish_open()
    }

    /// The errors, members the route does not know left alone (another part reads them).
    fn finish_open(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError {
                status: 422,
                detail: Value::Array(self.errors),
            })
        }
    }
}

/// The name among `known` closest to `name` (case aside), when it is close enough to be a slip:
/// at most one edit for names of up to four letters, two up to eight, three beyond, a swap of two
/// neighbours counting as one.
fn closest<'k>(name: &str, known: &[&'k str]) -> Option<&'k str> {
    let name = name.to_ascii_lowercase();
    let allowed = match name.chars().count() {
        0..=4 => 1,
        5..=8 => 2,
        _ => 3,
    };
    known
        .iter()
        .map(|k| (edit_distance(&name, k), *k))
        .filter(|(d, _)| *d <= allowed)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Edits (insert, delete, replace, swap two neighbours) from `a` to `b`: the optimal string
/// alignment distance.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    // Long garbage is no slip: bounded work whatever a request sends.
    if a.len() > 64 || b.len() > 64 {
        return usize::MAX;
    }
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        for j in 0..=b.len() {
            d[i * w + j] = if i == 0 {
                j
            } else if j == 0 {
                i
            } else {
                let cost = usize::from(a[i - 1] != b[j - 1]);
                let mut best = (d[(i - 1) * w + j] + 1)
                    .min(d[i * w + j - 1] + 1)
                    .min(d[(i - 1) * w + j - 1] + cost);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    best = best.min(d[(i - 2) * w + j - 2] + 1);
                }
                best
            };
        }
    }
    d[a.len() * w + b.len()]
}

const STRING_TYPE: FieldError = ("string_type", "Input should be a valid string");
const DICT_TYPE: FieldError = ("dict_type", "Input should be a valid dictionary");
const FLOAT_TYPE: FieldError = ("float_type", "Input should be a valid number");
const FLOAT_PARSING: FieldError = (
    "float_parsing",
    "Input should be a valid number, unable to parse string as a number",
);
const FINITE: FieldError = ("finite_number", "Input should be a finite number");
const INT_TYPE: FieldError = ("int_type", "Input should be a valid integer");
const INT_PARSING: FieldError = (
    "int_parsing",
    "Input should be a valid integer, unable to parse string as an integer",
);
const INT_FROM_FLOAT: FieldError = (
    "int_from_float",
    "Input should be a valid integer, got a number with a fractional part",
);
const BOOL_TYPE: FieldError = ("bool_type", "Input should be a valid boolean");
const BOOL_PARSING: FieldError = (
    "bool_parsing",
    "Input should be a valid boolean, unable to interpret input",
);

fn string(v: &Value) -> Result<String, FieldError> {
    v.as_str().map(str::to_string).ok_or(STRING_TYPE)
}

const STAGES_OR_RATE: FieldError = (
    "value_error",
    "stages replace qps and duration: send stages, or qps and duration, not both",
);
const STAGES_TYPE: FieldError = (
    "list_type",
    "Input should be a non-empty list of {\"qps\": number, \"duration\": number} objects",
);

/// `[{"qps": 100, "duration": 30}, ...]`: the types here; rates, durations and limits are the
/// plan's checks, which name the stage.
fn stage_list(v: &Value) -> Result<Vec<Stage>, FieldError> {
    let list = v.as_array().filter(|l| !l.is_empty()).ok_or(STAGES_TYPE)?;
    list.iter()
        .map(|item| {
            let qps = item.get("qps").ok_or(STAGES_TYPE).and_then(number)?;
            let duration = item.get("duration").ok_or(STAGES_TYPE).and_then(number)?;
            Ok(Stage { qps, duration })
        })
        .collect()
}

const LIST_TYPE: FieldError = ("list_type", "Input should be a valid list");

/// A list of strings (the expressions of `thresholds` and `goodput`).
fn strings(v: &Value) -> Result<Vec<String>, FieldError> {
    v.as_array().ok_or(LIST_TYPE)?.iter().map(string).collect()
}

fn object(v: &Value) -> Result<&Map<String, Value>, FieldError> {
    v.as_object().ok_or(DICT_TYPE)
}

/// A number, or a string holding one (pydantic's lax mode). Never NaN or infinite.
fn number(v: &Value) -> Result<f64, FieldError> {
    let x = match v {
        Value::Number(n) => n.as_f64().ok_or(FLOAT_TYPE)?,
        Value::String(s) => s.trim().parse::<f64>().map_err(|_| FLOAT_PARSING)?,
        _ => return Err(FLOAT_TYPE),
    };
    if x.is_finite() { Ok(x) } else { Err(FINITE) }
}

fn rate(v: &Value) -> Result<Rate, FieldError> {
    match v {
        Value::String(s) if s.trim().eq_ignore_ascii_case("max") => Ok(Rate::Max),
        Value::String(_) => number(v)
            .map_err(|_| {
                (
                    "float_parsing",
                    "Input should be a valid number or \"max\", unable to parse string as a number",
                )
            })
            .map(Rate::PerSecond),
        _ => number(v).map(Rate::PerSecond),
    }
}

/// An integer; integral floats and integer strings are accepted, as pydantic's lax mode does.
/// Values past the range of i64 saturate: every integer field has a limit far below that.
fn integer(v: &Value) -> Result<i64, FieldError> {
    match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Ok(i)
            } else if n.as_u64().is_some() {
                Ok(i64::MAX)
            } else {
                let x = n.as_f64().ok_or(INT_TYPE)?;
                if !x.is_finite() {
                    Err(FINITE)
                } else if x.fract() != 0.0 {
                    Err(INT_FROM_FLOAT)
                } else {
                    // `as` saturates at the ends of i64.
                    Ok(x as i64)
                }
            }
        }
        Value::String(s) => {
            let s = s.trim();
            let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(INT_PARSING);
            }
            Ok(s.parse::<i64>().unwrap_or(if s.starts_with('-') {
                i64::MIN
            } else {
                i64::MAX
            }))
        }
        _ => Err(INT_TYPE),
    }
}

fn seed(v: &Value) -> Result<u64, FieldError> {
    if let Some(s) = v.as_u64() {
        return Ok(s);
    }
    let i = integer(v)?;
    u64::try_from(i).map_err(|_| {
        (
            "greater_than_equal",
            "Input should be greater than or equal to 0",
        )
    })
}

fn non_negative(v: &Value) -> Result<u64, FieldError> {
    u64::try_from(integer(v)?).map_err(|_| {
        (
            "greater_than_equal",
            "Input should be greater than or equal to 0",
        )
    })
}

fn at_least_one(v: &Value) -> Result<u64, FieldError> {
    match non_negative(v)? {
        0 => Err((
            "greater_than_equal",
            "Input should be greater than or equal to 1",
        )),
        n => Ok(n),
    }
}

/// A count of at least one (`threads`, a sweep's `steps`).
fn count(v: &Value) -> Result<usize, FieldError> {
    let i = integer(v)?;
    if i < 1 {
        return Err((
            "greater_than_equal",
            "Input should be greater than or equal to 1",
        ));
    }
    Ok(usize::try_from(i).unwrap_or(usize::MAX))
}

/// A boolean as the original's `stream` takes it (JSON `true`/`false`, or `"True"`, `"true"`,
/// `"False"`, `"false"`): the same words for every boolean field, and on the command line.
fn boolean(v: &Value) -> Result<bool, FieldError> {
    json_bool(v).ok_or(match v {
        Value::String(_) | Value::Bool(_) | Value::Number(_) => BOOL_PARSING,
        _ => BOOL_TYPE,
    })
}

/// `"i/N"` with `0 <= i < N`. The server's environment does not choose a run's shard, so `env/N`
/// is not taken here.
fn shard(v: &Value) -> Result<ShardIndex, FieldError> {
    let s = v.as_str().ok_or(STRING_TYPE)?;
    ShardIndex::parse(s, |_| None).map_err(|_| {
        (
            "value_error",
            "Input should be a shard \"i/N\" with 0 <= i < N, such as \"0/4\"",
        )
    })
}

/// Unix seconds (a number, or a string of one), or an RFC 3339 time with its offset.
fn start_at(v: &Value) -> Result<UnixNanos, FieldError> {
    const TIME: FieldError = (
        "value_error",
        "Input should be unix seconds or an RFC 3339 time with an offset, such as \"2026-01-01T00:00:00Z\"",
    );
    match v {
        Value::String(s) => parse_time(s).map_err(|_| TIME),
        Value::Number(_) => {
            let secs = number(v)?;
            if !(0.0..9e9).contains(&secs) {
                return Err(TIME);
            }
            Ok((secs * 1e9).round() as UnixNanos)
        }
        _ => Err(TIME),
    }
}

fn arrival(v: &Value) -> Result<bool, FieldError> {
    match v.as_str() {
        Some("constant") => Ok(false),
        Some("poisson") => Ok(true),
        _ => Err(("literal_error", "Input should be 'constant' or 'poisson'")),
    }
}

fn api_kind(v: &Value) -> Result<Api, FieldError> {
    v.as_str()
        .and_then(Api::from_name)
        .ok_or(("literal_error", "Input should be 'completions' or 'chat'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bench(v: Value) -> Result<Input, ApiError> {
        benchmark_input(&v)
    }

    /// The `(loc, type)` pairs of a 422.
    fn errs(e: ApiError) -> Vec<(Value, String)> {
        assert_eq!(e.status, 422, "{e:?}");
        e.detail
            .as_array()
            .unwrap()
            .iter()
            .map(|d| (d["loc"].clone(), d["type"].as_str().unwrap().to_string()))
            .collect()
    }

    /// The issue's request: a misspelt gate and arrival ran without them, 200.
    #[test]
    fn unknown_fields_are_named_with_the_closest_known_one() {
        let e = bench(json!({"url": "http://h/", "qps": 1, "duration": 1,
            "threshold": ["error_rate<1%"], "arival": "poisson", "zzzzzz": 1}))
        .unwrap_err();
        assert_eq!(e.status, 422);
        let d = e.detail.as_array().unwrap();
        let by_loc = |name: &str| {
            d.iter()
                .find(|x| x["loc"] == json!(["body", name]))
                .unwrap_or_else(|| panic!("{name}: {d:?}"))
                .clone()
        };
        assert_eq!(d.len(), 3, "{d:?}");
        let t = by_loc("threshold");
        assert_eq!(t["type"], json!("extra_forbidden"));
        assert_eq!(
            t["msg"],
            json!(
                "Extra inputs are not permitted: unknown field `threshold`; did you mean `thresholds`?"
            )
        );
        assert!(
            by_loc("arival")["msg"]
                .as_str()
                .unwrap()
                .ends_with("did you mean `arrival`?")
        );
        assert_eq!(
            by_loc("zzzzzz")["msg"],
            json!("Extra inputs are not permitted: unknown field `zzzzzz`")
        );
        // Fields of another route are unknown here too.
        let e = bench(json!({"url": "http://h/", "qps": 1, "duration": 1, "dataset": "d"}))
            .unwrap_err();
        assert_eq!(e.detail[0]["loc"], json!(["body", "dataset"]));
        // Every route that takes JSON: the LLM one (its own fields known) and the sweep (a slip in
        // its own fields or in the run's).
        let e =
            fireworks_input(&json!({"token": "t", "input_tokens": 5, "shufle": true})).unwrap_err();
        assert_eq!(e.detail[0]["loc"], json!(["body", "shufle"]));
        assert!(e.detail[0]["msg"].as_str().unwrap().ends_with("`shuffle`?"));
        assert!(fireworks_input(&json!({"token": "t", "async": true, "state": true})).is_ok());
        let e = sweep_input(&json!({"url": "http://h/", "stpes": 3, "arival": "poisson",
            "async": true}))
        .unwrap_err();
        let d = e.detail.as_array().unwrap();
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d.iter().any(|x| x["loc"] == json!(["body", "stpes"])
            && x["msg"].as_str().unwrap().ends_with("`steps`?")));
        assert!(d.iter().any(|x| x["loc"] == json!(["body", "arival"])));
        assert!(
            sweep_input(&json!({"url": "http://h/", "steps": 3, "kind": "benchmark",
            "pause": 1, "async": true}))
            .is_ok()
        );
    }

    #[test]
    fn close_names_are_one_to_three_edits_away() {
        let known = ["qps", "arrival", "thresholds", "num_workers", "timeout"];
        assert_eq!(closest("qsp", &known), Some("qps"), "a swap is one edit");
        assert_eq!(closest("QPS", &known), Some("qps"));
        assert_eq!(closest("num_worker", &known), Some("num_workers"));
        assert_eq!(closest("numworkrs", &known), Some("num_workers"));
        assert_eq!(closest("qx", &known), None);
        assert_eq!(closest("time", &known), None);
        assert_eq!(closest(&"a".repeat(100), &known), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn benchmark_fields_and_defaults() {
        let i =
            bench(json!({"url": "http://h/", "qps": 20, "duration": 5, "async": true})).unwrap();
        assert_eq!(i.url, "http://h/");
        assert_eq!(i.qps, Rate::PerSecond(20.0));
        assert_eq!(i.duration, 5.0);
        assert_eq!(
            (i.num_workers, i.timeout, i.llm.is_none()),
            (None, None, true)
        );
        let i = bench(json!({
            "url": "http://h/", "qps": "max", "duration": "2.5", "num_workers": null,
            "timeout": "3", "method": "post", "headers": {"X-A": "1"}, "body": "b",
            "arrival": "poisson", "seed": 7, "threads": "2", "insecure": "true", "ca_cert": "/c.pem",
            "realtime": true
        }))
        .unwrap();
        assert_eq!(i.qps, Rate::Max);
        assert_eq!((i.duration, i.timeout), (2.5, Some(3.0)));
        assert_eq!(i.headers, vec![("X-A".to_string(), "1".to_string())]);
        assert_eq!(
            (i.poisson, i.seed, i.threads, i.insecure),
            (true, Some(7), Some(2), true)
        );
        assert_eq!(i.ca_cert.as_deref(), Some("/c.pem"));
        assert!(i.realtime);
        let i = bench(json!({"url": "u", "qps": 1.5, "duration": 1, "num_workers": 4.0})).unwrap();
        assert_eq!((i.qps, i.num_workers), (Rate::PerSecond(1.5), Some(4)));
    }

    #[test]
    fn benchmark_type_errors_are_all_reported() {
        let e = bench(json!({"qps": "abc", "duration": null, "num_workers": 1.5})).unwrap_err();
        assert_eq!(
            errs(e),
            vec![
                (json!(["body", "url"]), "missing".into()),
                (json!(["body", "qps"]), "float_parsing".into()),
                (json!(["body", "duration"]), "float_type".into()),
                (json!(["body", "num_workers"]), "int_from_float".into()),
            ]
        );
        let e = bench(json!({"url": null, "qps": "inf", "duration": true})).unwrap_err();
        assert_eq!(
            errs(e),
            vec![
                (json!(["body", "url"]), "string_type".into()),
                (json!(["body", "qps"]), "float_parsing".into()),
                (json!(["body", "duration"]), "float_type".into()),
            ]
        );
        let e = bench(
            json!({"url": "u", "qps": 1, "duration": 1, "headers": {"A": 1},
            "arrival": "burst", "seed": -1, "threads": 0, "insecure": "maybe", "timeout": "x",
            "num_workers": "two"}),
        )
        .unwrap_err();
        assert_eq!(
            errs(e),
            vec![
                (json!(["body", "num_workers"]), "int_parsing".into()),
                (json!(["body", "timeout"]), "float_parsing".into()),
                (json!(["body", "headers", "A"]), "string_type".into()),
                (json!(["body", "arrival"]), "literal_error".into()),
                (json!(["body", "seed"]), "greater_than_equal".into()),
                (json!(["body", "threads"]), "greater_than_equal".into()),
                (json!(["body", "insecure"]), "bool_parsing".into()),
            ]
        );
        for body in [json!([1]), json!("x"), json!(null), json!(3)] {
            assert_eq!(
                errs(bench(body).unwrap_err()),
                vec![(json!(["body"]), "model_attributes_type".into())]
            );
        }
    }

    #[test]
    fn shard_and_start_at() {
        let i = bench(json!({"url": "http://h/", "qps": 20, "duration": 5,
            "shard": "1/4", "start_at": "2026-01-01T00:00:00Z"}))
        .unwrap();
        assert_eq!(i.shard, ShardIndex::new(1, 4).unwrap());
        assert_eq!(i.start_at, Some(1_767_225_600_000_000_000));
        let i = bench(json!({"url": "http://h/", "qps": 20, "duration": 5,
            "shard": null, "start_at": 1767225600.5}))
        .unwrap();
        assert_eq!(i.shard, ShardIndex::WHOLE);
        assert_eq!(i.start_at, Some(1_767_225_600_500_000_000));
        let e = bench(json!({"url": "http://h/", "qps": 20, "duration": 5,
            "shard": "4/4", "start_at": "tomorrow"}))
        .unwrap_err();
        assert_eq!(
            errs(e),
            vec![
                (json!(["body", "shard"]), "value_error".into()),
                (json!(["body", "start_at"]), "value_error".into()),
            ]
        );
        for bad in [json!("env/4"), json!(3), json!("1/0")] {
            assert!(shard(&bad).is_err(), "{bad}");
        }
        for bad in [json!(-1), json!(true), json!(1e12)] {
            assert!(start_at(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn flags_take_the_boolean_words_and_join_the_other_field_errors() {
        for (v, want) in [
            (json!({}), false),
            (json!({"async": null}), false),
            (json!({"async": true}), true),
            (json!({"async": "True"}), true),
            (json!({"async": "false"}), false),
        ] {
            assert_eq!(flag(&v, "async"), Ok(want), "{v}");
        }
        let body = json!({"url": "u", "duration": 1, "async": "soon"});
        let e = both(bench(body.clone()), flag(&body, "async")).unwrap_err();
        assert_eq!(
            errs(e),
            vec![
                (json!(["body", "qps"]), "missing".into()),
                (json!(["body", "async"]), "bool_parsing".into()),
            ]
        );
        let e = flag(&json!({"async": [1]}), "async").unwrap_err();
        assert_eq!(
            errs(e),
            vec![(json!(["body", "async"]), "bool_type".into())]
        );
        // A non-422 wins alone.
        let e = both::<(), ()>(
            Err(ApiError::message(400, "x")),
            Err(ApiError::message(422, "y")),
        );
        assert_eq!(e.unwrap_err().status, 400);
    }

    #[test]
    fn sweep_bodies() {
        let i = sweep_input(
            &json!({"url": "http://h/", "num_workers": 10, "rates": [100, "200"],
            "step_duration": "0.5", "pause": 1, "min_achieved": 0.9, "arrival": "poisson"}),
        )
        .unwrap();
        assert_eq!(i.rates, Some(vec![100.0, 200.0]));
        assert_eq!(
            (i.step_duration, i.pause, i.min_achieved, i.steps),
            (0.5, 1.0, 0.9, crate::sweep::STEPS)
        );
        assert_eq!(
            (i.base.url.as_str(), i.base.num_workers),
            ("http://h/", Some(10))
        );
        assert!(i.base.poisson && i.base.llm.is_none());
        let i = sweep_input(
            &json!({"kind": "fireworks_benchmark", "token": "t", "steps": 3,
            "probe_duration": 2}),
        )
        .unwrap();
        assert_eq!((i.steps, i.probe_duration, i.rates.clone()), (3, 2.0, None));
        let l = i.base.llm.unwrap();
        assert_eq!(l.token, "t");
        assert_eq!(i.base.num_workers, Some(defaults::LLM_WORKERS));
        // Every error at once: the run's, the sweep's, the fields a sweep sets itself.
        let e = sweep_input(
            &json!({"qps": 10, "duration": 5, "steps": 0, "rates": "100",
            "kind": "grpc", "timeout": "x"}),
        )
        .unwrap_err();
        assert_eq!(
            errs(e),
            vec![
                (json!(["body", "url"]), "missing".into()),
                (json!(["body", "timeout"]), "float_parsing".into()),
                (json!(["body", "kind"]), "literal_error".into()),
                (json!(["body", "rates"]), "list_type".into()),
                (json!(["body", "steps"]), "greater_than_equal".into()),
                (json!(["body", "qps"]), "value_error".into()),
                (json!(["body", "duration"]), "value_error".into()),
            ]
        );
        let e = sweep_input(&json!({"url": "http://h/", "rates": [1, null]})).unwrap_err();
        assert_eq!(
            errs(e),
            vec![(json!(["body", "rates"]), "float_type".into())]
        );
        let e: ApiError = SweepError::Invalid {
            field: "steps",
            msg: "must be 1 to 100 (got 101)".into(),
        }
        .into();
        assert_eq!(e.detail[0]["loc"], json!(["body", "steps"]));
    }

    #[test]
    fn json_errors_point_at_the_byte() {
        let e = parse_json(b"").unwrap_err();
        assert_eq!(errs(e), vec![(json!(["body"]), "missing".into())]);
        let e = parse_json(b"{\n  \"url\": ").unwrap_err();
        assert_eq!(e.detail[0]["loc"], json!(["body", 10]));
        assert_eq!(e.detail[0]["type"], "json_invalid");
        let e = parse_json(b"{x}").unwrap_err();
        assert_eq!(e.detail[0]["loc"], json!(["body", 1]));
        // Out of f64 range: serde_json refuses it, so no infinity gets through.
        let e = parse_json(br#"{"qps": 1e309}"#).unwrap_err();
        assert_eq!(e.detail[0]["type"], "json_invalid");
        assert!(parse_json(b"{\"a\": 1}").is_ok());
    }

    #[test]
    fn integers_saturate_and_parse_strings() {
        assert_eq!(integer(&json!("  12 ")), Ok(12));
        assert_eq!(integer(&json!("-3")), Ok(-3));
        assert_eq!(integer(&json!(u64::MAX)), Ok(i64::MAX));
        assert_eq!(integer(&json!("99999999999999999999999")), Ok(i64::MAX));
        assert_eq!(integer(&json!(1e30)), Ok(i64::MAX));
        assert_eq!(integer(&json!("1.0")), Err(INT_PARSING));
        assert_eq!(integer(&json!(true)), Err(INT_TYPE));
        assert_eq!(number(&json!(" 2.5")), Ok(2.5));
        assert_eq!(number(&json!("nan")), Err(FINITE));
        assert_eq!(number(&json!([])), Err(FLOAT_TYPE));
        assert_eq!(seed(&json!(u64::MAX)), Ok(u64::MAX));
    }

    #[test]
    fn plan_errors_map_to_fastapi_shapes() {
        let e: ApiError = PlanError::BadRequest("nope").into();
        assert_eq!(e.body(), json!({"detail": "nope"}));
        assert_eq!(e.status, 400);
        let e: ApiError = PlanError::Invalid {
            field: "qps",
            msg: "too big".into(),
        }
        .into();
        assert_eq!(e.status, 422);
        assert_eq!(
            e.body(),
            json!({"detail": [{"loc": ["body", "qps"], "msg": "too big", "type": "value_error"}]})
        );
    }

    #[test]
    fn stream_flags() {
        for (v, want) in [
            (json!("True"), true),
            (json!("true"), true),
            (json!(true), true),
            (json!("False"), false),
            (json!(false), false),
        ] {
            let i = fireworks_input(&json!({"token": "t", "stream": v})).unwrap();
            assert_eq!(i.llm.unwrap().stream, want, "{v}");
        }
        let e = fireworks_input(&json!({"token": "t", "stream": "maybe"})).unwrap_err();
        assert_eq!(
            errs(e),
            vec![(json!(["body", "stream"]), "bool_parsing".into())]
        );
        let e = fireworks_input(&json!({"token": "t", "stream": null})).unwrap_err();
        assert_eq!(
            errs(e),
            vec![(json!(["body", "stream"]), "bool_type".into())]
        );
    }

    /// Every boolean field takes the words `stream` takes, and no others.
    #[test]
    fn every_boolean_takes_the_same_words() {
        let ok = r#"{"url": "http://h/", "qps": 1, "duration": 1"#;
        for (word, want) in [
            ("true", true),
            ("\"True\"", true),
            ("\"false\"", false),
            ("\"False\"", false),
        ] {
            let body = format!(r#"{ok}, "insecure": {word}, "realtime": {word}}}"#);
            let i = benchmark_input(&serde_json::from_str(&body).unwrap()).unwrap();
            assert_eq!((i.insecure, i.realtime), (want, want), "{word}");
        }
        for word in ["\"yes\"", "1", "\"TRUE\"", "\"on\""] {
            let body = format!(r#"{ok}, "insecure": {word}, "realtime": {word}}}"#);
            let e = benchmark_input(&serde_json::from_str(&body).unwrap()).unwrap_err();
            assert_eq!(
                errs(e),
                vec![
                    (json!(["body", "insecure"]), "bool_parsing".into()),
                    (json!(["body", "realtime"]), "bool_parsing".into()),
                ],
                "{word}"
            );
        }
    }

    /// A header value the request writer would refuse is a 422 naming the header (not its value,
    /// which may be a credential).
    #[test]
    fn control_characters_in_header_values_answer_422() {
        use crate::plan::{Limits, Plan};
        for (value, why) in [
            ("s3cret\u{7}", "a control character"),
            ("s3cret\u{1b}[0m", "a control character"),
            ("s3cret\r\nX-Injected: 1", "a line break"),
        ] {
            let body = json!({"url": "http://h/", "qps": 1, "duration": 1,
                "headers": {"X-Token": value}});
            let input = benchmark_input(&body).unwrap();
            let e: ApiError = Plan::new(&input, &Limits::default()).unwrap_err().into();
            assert_eq!(e.status, 422);
            assert_eq!(
                e.body(),
                json!({"detail": [{"loc": ["body", "headers"],
                    "msg": format!("header \"X-Token\" has {why} in its value"),
                    "type": "value_error"}]}),
                "{value:?}"
            );
            assert!(!e.body().to_string().contains("s3cret"));
        }
    }

    /// The payload's `stream` decides how the answer is read, and `config.stream` says so.
    #[test]
    fn the_payloads_stream_decides_the_body_mode() {
        use crate::plan::{BodyMode, Limits, Plan};
        for (body, mode, stream) in [
            (
                json!({"payload": {"stream": false}}),
                BodyMode::WholeJson,
                false,
            ),
            (
                json!({"stream": "False", "payload": {"stream": true}}),
                BodyMode::Sse,
                true,
            ),
            (
                json!({"payload": {"stream": null}}),
                BodyMode::WholeJson,
                false,
            ),
            (json!({"stream": false}), BodyMode::WholeJson, false),
            (json!({}), BodyMode::Sse, true),
        ] {
            let mut body = body;
            body["token"] = json!("t");
            body["prompt"] = json!("p");
            body["url"] = json!("http://h/v1/completions");
            let p = Plan::new(&fireworks_input(&body).unwrap(), &Limits::default()).unwrap();
            assert_eq!(p.body_mode, mode, "{body}");
            assert_eq!(p.config["stream"], json!(stream), "{body}");
            assert_eq!(
                p.config["fireworks_payload"]
                    .get("stream_options")
                    .is_some(),
                stream,
                "{body}"
            );
        }
        let body = json!({"token": "t", "prompt": "p", "payload": {"stream": 1}});
        let e: ApiError = Plan::new(&fireworks_input(&body).unwrap(), &Limits::default())
            .unwrap_err()
            .into();
        assert_eq!(e.status, 422);
        assert_eq!(e.detail[0]["loc"], json!(["body", "payload"]));
    }

    #[test]
    fn workload_fields() {
        let i = fireworks_input(&json!({"token": "t"})).unwrap();
        assert_eq!(i.workload, WorkloadInput::default());
        let i = fireworks_input(&json!({"token": "t", "dataset": "/data/d.jsonl",
            "max_dataset_bytes": 1000, "output_len_from_dataset": true, "shuffle": "True",
            "output_tokens": 128, "ignore_eos": true, "tokenizer": "/t/tokenizer.json"}))
        .unwrap();
        let w = &i.workload;
        assert_eq!(
            w.dataset.as_deref(),
            Some(std::path::Path::new("/data/d.jsonl"))
        );
        assert_eq!(w.max_dataset_bytes, Some(1000));
        assert!(w.output_len_from_dataset && w.shuffle && w.ignore_eos);
        assert_eq!(w.output_tokens, Some(LengthDist::Fixed(128)));
        assert_eq!(
            w.tokenizer.as_deref(),
            Some(std::path::Path::new("/t/tokenizer.json"))
        );
        let i = fireworks_input(&json!({"token": "t", "prompts": ["a", "b c"],
            "input_tokens": "uniform:5:9", "prefix_tokens": 4}))
        .unwrap();
        let w = &i.workload;
        assert_eq!(w.prompts, Some(vec!["a".to_string(), "b c".to_string()]));
        assert_eq!(w.input_tokens, Some(LengthDist::Uniform { min: 5, max: 9 }));
        assert_eq!(w.prefix_tokens, Some(4));

        let e = fireworks_input(&json!({"token": "t", "prompts": ["a", 3], "dataset": 1,
            "input_tokens": "5:x", "output_tokens": [1], "prefix_tokens": -1,
            "max_dataset_bytes": 0, "shuffle": "maybe"}))
        .unwrap_err();
        assert_eq!(
            errs(e.clone()),
            vec![
                (json!(["body", "dataset"]), "string_type".into()),
                (json!(["body", "prompts", "1"]), "string_type".into()),
                (
                    json!(["body", "max_dataset_bytes"]),
                    "greater_than_equal".into()
                ),
                (json!(["body", "shuffle"]), "bool_parsing".into()),
                (json!(["body", "input_tokens"]), "value_error".into()),
                (json!(["body", "output_tokens"]), "string_type".into()),
                (
                    json!(["body", "prefix_tokens"]),
                    "greater_than_equal".into()
                ),
            ]
        );
        assert_eq!(
            e.detail[4]["msg"],
            json!(
                "\"5:x\": at character 3, expected STDDEV, a number of tokens from 0 \
                   (forms: MEAN, MEAN:STDDEV, uniform:MIN:MAX)"
            )
        );
        let e = fireworks_input(&json!({"token": "t", "prompts": "a"})).unwrap_err();
        assert_eq!(
            errs(e),
            vec![(json!(["body", "prompts"]), "list_type".into())]
        );
    }

    #[test]
    fn fireworks_defaults_and_errors() {
        let i = fireworks_input(&json!({"token": "t0k"})).unwrap();
        let l = i.llm.as_ref().unwrap();
        assert_eq!(i.url, defaults::LLM_URL);
        assert_eq!((i.qps, i.duration), (Rate::PerSecond(10.0), 5.0));
        assert_eq!((i.num_workers, i.timeout), (Some(10), Some(3.0)));
        assert_eq!(
            (l.model.as_str(), l.prompt.as_str(), l.max_tokens),
            (defaults::LLM_MODEL, "", 25)
        );
        assert_eq!(l.api, Api::Completions);
        let i = fireworks_input(&json!({"token": "t", "api": "chat", "payload": {"n": 2},
            "num_workers": 3, "timeout": 1}))
        .unwrap();
        assert_eq!((i.num_workers, i.timeout), (Some(3), Some(1.0)));
        let l = i.llm.unwrap();
        assert_eq!(l.api, Api::Chat);
        assert_eq!(l.payload.unwrap()["n"], json!(2));
        let e = fireworks_input(&json!({"model": null, "max_tokens": "x", "api": "x",
            "payload": [1]}))
        .unwrap_err();
        assert_eq!(
            errs(e),
            vec![
                (json!(["body", "token"]), "missing".into()),
                (json!(["body", "model"]), "string_type".into()),
                (json!(["body", "max_tokens"]), "int_parsing".into()),
                (json!(["body", "api"]), "literal_error".into()),
                (json!(["body", "payload"]), "dict_type".into()),
            ]
        );
    }
}
