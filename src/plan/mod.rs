//! The validated description of one run, built in exactly one place ([`Plan::new`]) from an
//! [`Input`] that both front doors fill: the API from request JSON (after its type checks), the CLI
//! from flags. Everything the engine needs is decided here: the target, the request bytes (built
//! once), the schedule, the worker and thread counts, TLS options, the LLM mode and how response
//! bodies are read. The checks keep the original service's 400 messages; limits answer 422 naming
//! the limit. Running the plan is the engine's; reporting it is `report`'s.
//!
//! - `input`: what the user asked for, and the words (rates, booleans) both fronts accept.
//! - [`defaults`]: every default and server limit, read by clap, the API and the OpenAPI document.
//! - `checks`: rates and limits, and the worker, request and thread counts.
//! - `target`: the URL parsed into host, port, `Host` header and path.
//! - `request`: method and header checks, LLM request shaping, the request bytes, the body mode.
//! - [`workload`]: an LLM run's prompts (data set, inline, synthetic), one request per distinct
//!   body, which one each request sends, and the tokenizer's count of each prompt.
//! - `config`: the effective inputs echoed as the report's `config`.
//! - [`session`]: multi-turn sessions: think times, and each turn's request built from its history.
//! - [`wake`]: how a paced lane wakes for its sends (batch budget, spin), chosen from the rate
//!   and the arrival process.

mod checks;
mod config;
pub mod defaults;
mod input;
mod request;
pub mod session;
pub mod shard_index;
pub mod stages;
mod target;
pub mod targets;
pub mod trace;
pub mod wake;
pub mod workload;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

/// The payload styles, for the modules that read a plan (`report`) but not `llm`.
pub use crate::llm::PayloadStyle;
use crate::llm::{Api, Tokenizer};
use crate::slo::Threshold;
use crate::slo::goodput::Objective;
use crate::wall::UnixNanos;
pub use checks::{Limits, default_num_workers};
pub use input::{Input, LlmInput, Rate, WorkloadInput, json_bool, parse_bool};
pub use session::{History, SessionInput, SessionPlan, ThinkTime};
pub use shard_index::ShardIndex;
use stages::{RateCurve, Stage};
pub use target::{Target, public_url};
pub use workload::{PromptSource, Requests, WorkloadInfo};

/// How intended send times are spaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    Constant,
    Poisson { seed: u64 },
}

/// Why an input cannot become a plan. `BadRequest` carries the original service's 400 messages;
/// `Invalid` is a FastAPI-style 422 on one field.
#[derive(Clone, Debug, PartialEq)]
pub enum PlanError {
    BadRequest(&'static str),
    Invalid { field: &'static str, msg: String },
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::BadRequest(msg) => f.write_str(msg),
            PlanError::Invalid { field, msg } => write!(f, "{field}: {msg}"),
        }
    }
}

impl std::error::Error for PlanError {}

fn invalid(field: &'static str, msg: String) -> PlanError {
    PlanError::Invalid { field, msg }
}

pub const MSG_BENCH_POSITIVE: &str = "QPS, duration and timeout must be positive integers";
pub const MSG_LLM_POSITIVE: &str = "QPS and duration must be positive integers";
pub const MSG_NO_TOKEN: &str = "Please pass an auth token for FireworksAI API request";
pub const MSG_MAX_TOKENS: &str = "Max tokens should be > 0";
pub const MSG_EMPTY_PROMPT: &str = "Please enter a prompt with length > 0";
/// A saturating worker never sleeps; under `SCHED_FIFO` it would starve the rest of its core.
pub const MSG_REALTIME_MAX: &str =
    "needs a fixed qps: a saturating real-time worker would starve everything else on its core";

/// How response bodies are read, decided once here from the request the plan sends, and consumed
/// by the engine without re-deriving it from flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyMode {
    /// Framing only: the body is read to its end and counted, not interpreted.
    Plain,
    /// A streaming LLM response: Server-Sent Events, timed per token event.
    Sse,
    /// A non-streaming LLM response: one JSON body, kept (capped) for its `usage` and `error`.
    WholeJson,
}

/// The LLM mode of a plan.
#[derive(Clone, Debug)]
pub struct LlmPlan {
    /// The `stream` the payload finally carries (the `payload` override wins over the field).
    pub stream: bool,
    pub api: Api,
    /// The default payload the requests carry.
    pub payload_style: PayloadStyle,
    /// The prompt tokens a chat template is expected to add (`--prompt-overhead-tokens`).
    pub prompt_overhead_tokens: u64,
}

/// A validated run.
#[derive(Clone, Debug)]
pub struct Plan {
    pub url: String,
    pub target: Target,
    /// The request bytes, built once: one per distinct body, and which one each request sends.
    pub requests: Requests,
    pub method_is_head: bool,
    /// Every request says `Connection: close` (a user header, as `--no-keepalive` adds): its
    /// connection is closed after the response whatever the server answers.
    pub closes: bool,
    pub rate: Rate,
    pub duration: Duration,
    /// `round(qps × duration)` for a fixed rate; in saturation the `-n` cap
    /// ([`Input::max_requests`]), or 0 (unknown in advance) without one.
    pub count: u64,
    pub num_workers: usize,
    pub threads: usize,
    pub timeout: Duration,
    pub arrival: Arrival,
    pub ca_cert: Option<PathBuf>,
    pub insecure: bool,
    /// Ask for `SCHED_FIFO` workers (only ever set with a fixed rate).
    pub realtime: bool,
    /// The length of one interval of the report's timeline.
    pub interval: Duration,
    /// How a paced lane wakes for its sends: the batch budget (`--max-lateness`) and the spin
    /// before each send, chosen from the rate and the arrival process ([`wake::choose`]).
    pub wake: wake::WakePolicy,
    pub llm: Option<LlmPlan>,
    /// An LLM run's prompts and lengths, when it has more than the one prompt.
    pub workload: Option<WorkloadInfo>,
    /// The model's tokenizer (`--tokenizer`): counts prompts before the run and streamed text.
    pub tokenizer: Option<Arc<Tokenizer>>,
    /// How the engine reads response bodies.
    pub body_mode: BodyMode,
    /// The stages as asked (empty for a plain run), and whether they ramp.
    pub stages: Vec<Stage>,
    pub ramp: bool,
    /// The rate function of a fixed-rate run (a plain run is one stage); None in closed loop.
    pub curve: Option<RateCurve>,
    /// A trace replay's send times, seconds from the start: request `i` is due at `[i]`
    /// rather than where the curve puts it (the curve is then the trace's mean rate).
    pub trace_times: Option<Arc<[f64]>>,
    /// A trace replay's line numbers in its file: request `i` is the entry of line `[i]`
    /// (the `--requests` rows' `trace_line`).
    pub trace_lines: Option<Arc<[u32]>>,
    /// Checked against the report at the end (`--threshold`).
    pub thresholds: Vec<Threshold>,
    /// Per-request goodput objectives (`--goodput`); empty: no goodput is reported.
    pub goodput: Vec<Objective>,
    /// The effective inputs, echoed as the report's `config` (never the token).
    pub config: Map<String, Value>,
    /// With `--targets`: each target's report key (`METHOD URL`, query values hidden), in the
    /// file's order; target `k` is distinct request `k`. Empty otherwise.
    pub targets: Vec<String>,
    /// The part of the run this process sends: request `j` of the whole plan is shard
    /// `j mod N`'s; the connections are split the same way ([`Plan::shard_workers`]).
    pub shard: ShardIndex,
    /// When the schedule starts on the wall clock; `None`: as soon as the threads are ready.
    pub start_at: Option<UnixNanos>,
    /// Where the run's live figures are pushed (`--otlp`, an OTLP/HTTP collector); not part of
    /// the run itself, so neither echoed in `config` nor in a shard's fingerprint.
    pub otlp: Option<Target>,
    /// A session run (`--sessions`): the schedule's requests start sessions, whose turns the
    /// lanes build and send ([`session`]). None for every other run.
    pub sessions: Option<Arc<SessionPlan>>,
}

impl Plan {
    /// Validates `input` against `limits` and builds the plan. The only way to make one:
    /// [`Plan::check`], then [`Draft::build`].
    ///
    /// The checks run in the original service's order (its 400s first), so the same bad request
    /// gets the same answer.
    pub fn new(input: &Input, limits: &Limits) -> Result<Plan, PlanError> {
        Plan::check(input, limits)?.build()
    }

    /// Every check of `input`, the workload's budget included, without building the workload:
    /// cheap whatever the input asks for (no file is read but for its size). The API takes its
    /// run slot between this and [`Draft::build`], so that nothing big is built for a request it
    /// then refuses.
    pub fn check<'i>(input: &'i Input, limits: &Limits) -> Result<Draft<'i>, PlanError> {
        checks::llm_fields(input)?;
        checks::stages(input, limits)?;
        let timeout = checks::rates(input, limits)?;
        let target = Target::parse(&input.url).map_err(|msg| invalid("url", msg))?;
        let num_workers = checks::num_workers(input, limits)?;
        let curve = checks::curve(input)?;
        let count = match (&curve, &input.workload.trace) {
            (_, Some(r)) => r.times.len() as u64,
            (Some(c), None) => c.count(),
            (None, None) => checks::closed_loop_count(input)?,
        };
        checks::shard(input, num_workers, count)?;
        checks::start_at(input, limits, i128::from(crate::wall::now_unix_ns()))?;
        // A shard sends its share of the rate: its threads and budget are sized to that.
        let shard_rate = match input.qps {
            Rate::PerSecond(q) => Rate::PerSecond(q / f64::from(input.shard.count())),
            Rate::Max => Rate::Max,
        };
        let (threads, threads_reason) = checks::threads(
            input.threads,
            shard_rate,
            input.shard.share_of(num_workers as u64) as usize,
            input.shard.share_of(count),
        )?;
        let asked_lateness = wake::asked_budget(input.max_lateness)?;
        let arrival = checks::arrival(input)?;
        let wake = wake::choose(asked_lateness, shard_rate, threads, arrival);
        checks::realtime(input)?;
        checks::ca_cert(input)?;
        let shaped = request::shape(input, target)?;
        let workload_bytes = match input.targets.is_empty() {
            true => workload::budget(input, &shaped, count, limits)?,
            false => targets::budget(input, &shaped, limits)?,
        };
        let seed = match arrival {
            Arrival::Poisson { seed } => seed,
            Arrival::Constant => input.seed.unwrap_or_else(checks::random_seed),
        };
        let interval = checks::interval(input, timeout)?;
        let (thresholds, goodput) = checks::slo(input, shaped.body_mode)?;
        let otlp = input
            .otlp
            .as_deref()
            .map(|u| Target::parse(u).map_err(|m| invalid("otlp", format!("{u:?}: {m}"))))
            .transpose()?;
        Ok(Draft {
            input,
            limits: *limits,
            shaped,
            timeout,
            num_workers,
            curve,
            count,
            threads,
            threads_reason,
            wake,
            arrival,
            seed,
            interval,
            thresholds,
            goodput,
            workload_bytes,
            otlp,
        })
    }

    /// The bytes of request `index` (O(1), no allocation: built before the run).
    #[inline]
    pub fn request_for(&self, index: u64) -> &crate::http1::Segments {
        self.requests.for_index(index)
    }

    /// The tokenizer's count of the prompt request `index` sends, made before the run (None
    /// without `--tokenizer`): the input tokens of a server that reports no usage.
    #[inline]
    pub fn prompt_tokens_for(&self, index: u64) -> Option<u32> {
        self.requests.prompt_tokens(index)
    }

    /// The requests this process sends: its shard's share of `count` (0 in saturation).
    pub fn shard_requests(&self) -> u64 {
        self.shard.share_of(self.count)
    }

    /// The connections this process may open: its shard's share of `num_workers`, so that the
    /// whole run never has more than `num_workers` requests in flight, as one process would.
    pub fn shard_workers(&self) -> usize {
        self.shard.share_of(self.num_workers as u64) as usize
    }
}

/// A checked input, not yet built: what [`Plan::check`] decided. [`Draft::build`] makes the
/// workload (the one step whose memory and time grow with the input) and the plan.
pub struct Draft<'i> {
    input: &'i Input,
    limits: Limits,
    shaped: request::Shaped,
    timeout: f64,
    num_workers: usize,
    curve: Option<RateCurve>,
    count: u64,
    threads: usize,
    threads_reason: String,
    wake: wake::WakePolicy,
    arrival: Arrival,
    seed: u64,
    interval: Duration,
    thresholds: Vec<Threshold>,
    goodput: Vec<Objective>,
    workload_bytes: u64,
    otlp: Option<Target>,
}

impl Draft<'_> {
    /// Where the run's requests go.
    pub fn target(&self) -> &Target {
        &self.shaped.target
    }

    /// The bytes the workload is estimated to hold once built (0 without one): within the
    /// budget, or [`Plan::check`] refused it.
    pub fn workload_bytes(&self) -> u64 {
        self.workload_bytes
    }

    /// Builds the workload and the plan.
    pub fn build(self) -> Result<Plan, PlanError> {
        let Draft {
            input,
            limits,
            mut shaped,
            timeout,
            num_workers,
            curve,
            count,
            threads,
            threads_reason,
            wake,
            arrival,
            seed,
            interval,
            thresholds,
            goodput,
            workload_bytes: _,
            otlp,
        } = self;
        if !input.targets.is_empty() {
            shaped.requests = targets::requests(input, &shaped, count, seed)?;
        }
        let workload = workload::build(input, &shaped, count, seed, &limits)?;
        let (tokenizer, workload, sessions) = match workload {
            Some(w) => {
                shaped.requests = w.requests;
                (w.tokenizer, Some(w.info), w.sessions.map(Arc::new))
            }
            None => (None, None, None),
        };
        let mut plan = Plan {
            // An LLM URL may have had its path rewritten for chat: echo where requests really go.
            // Echoed with its query's values hidden: they may carry a key.
            url: target::public_url(&if input.llm.is_some() {
                shaped.target.url()
            } else {
                input.url.trim().to_string()
            }),
            target: shaped.target.clone(),
            requests: shaped.requests.clone(),
            method_is_head: shaped.method == "HEAD",
            closes: input.headers.iter().any(|(n, v)| {
                n.eq_ignore_ascii_case("connection")
                    && v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close"))
            }),
            rate: input.qps,
            duration: Duration::from_secs_f64(input.duration),
            count,
            num_workers,
            threads,
            timeout: Duration::from_secs_f64(timeout),
            arrival,
            ca_cert: input.ca_cert.as_ref().map(PathBuf::from),
            insecure: input.insecure,
            realtime: input.realtime,
            interval,
            wake,
            llm: shaped.llm.as_ref().map(|(l, _)| l.clone()),
            workload,
            tokenizer,
            body_mode: shaped.body_mode,
            stages: input.stages.clone().unwrap_or_default(),
            ramp: input.ramp,
            curve,
            trace_times: input.workload.trace.as_ref().map(|r| Arc::clone(&r.times)),
            trace_lines: input.workload.trace.as_ref().map(|r| {
                r.trace
                    .entries
                    .iter()
                    .map(|e| u32::try_from(e.line).unwrap_or(u32::MAX))
                    .collect()
            }),
            thresholds,
            goodput,
            config: Map::new(),
            targets: input.targets.iter().map(targets::TargetSpec::key).collect(),
            shard: input.shard,
            start_at: input.start_at,
            otlp,
            sessions,
        };
        plan.config = config::echo(input, &plan, &shaped, timeout, &threads_reason);
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan(input: &Input) -> Result<Plan, PlanError> {
        Plan::new(input, &Limits::default())
    }

    #[test]
    fn original_messages_and_defaults() {
        let mut i = Input::new("http://localhost:8081", Rate::PerSecond(20.0), 5.0);
        let p = plan(&i).unwrap();
        assert_eq!(
            (p.count, p.num_workers, p.timeout),
            (100, 20, Duration::from_secs(2))
        );
        i.num_workers = Some(5);
        i.timeout = Some(2.0);
        let p = plan(&i).unwrap();
        assert_eq!(p.num_workers, 5);
        assert_eq!(p.config["qps"], json!(20));
        assert_eq!(p.config["timeout"], json!(2.0));
        i.qps = Rate::PerSecond(0.0);
        assert_eq!(
            plan(&i).unwrap_err(),
            PlanError::BadRequest(MSG_BENCH_POSITIVE)
        );
        i.qps = Rate::PerSecond(-1.0);
        assert_eq!(
            plan(&i).unwrap_err(),
            PlanError::BadRequest(MSG_BENCH_POSITIVE)
        );
        i.qps = Rate::PerSecond(10.0);
        i.timeout = Some(0.0);
        assert_eq!(
            plan(&i).unwrap_err(),
            PlanError::BadRequest(MSG_BENCH_POSITIVE)
        );
        i.timeout = None;
        i.num_workers = Some(20_000);
        assert!(matches!(
            plan(&i).unwrap_err(),
            PlanError::Invalid {
                field: "num_workers",
                ..
            }
        ));
        i.num_workers = Some(0);
        assert_eq!(plan(&i).unwrap().num_workers, 10);
    }

    #[test]
    fn llm_checks_and_token_stays_secret() {
        let mut i = Input::new(
            "http://127.0.0.1:1/v1/completions",
            Rate::PerSecond(10.0),
            5.0,
        );
        let mut l = LlmInput {
            token: "sekrit-token".into(),
            model: "m".into(),
            prompt: "Snow is white".into(),
            max_tokens: 25,
            stream: true,
            api: Api::Chat,
            payload_style: None,
            payload: None,
        };
        i.llm = Some(l.clone());
        let p = plan(&i).unwrap();
        assert_eq!(p.target.path, "/v1/chat/completions");
        let req = String::from_utf8(p.requests.first().to_vec()).unwrap();
        assert!(
            req.starts_with("POST /v1/chat/completions HTTP/1.1\r\n"),
            "{req}"
        );
        assert!(req.contains("Bearer sekrit-token"));
        assert!(!format!("{p:?}").contains("sekrit"));
        assert!(!serde_json::to_string(&p.config).unwrap().contains("sekrit"));
        l.token = String::new();
        i.llm = Some(l.clone());
        assert_eq!(plan(&i).unwrap_err(), PlanError::BadRequest(MSG_NO_TOKEN));
        l.token = "t".into();
        l.max_tokens = 0;
        i.llm = Some(l.clone());
        assert_eq!(plan(&i).unwrap_err(), PlanError::BadRequest(MSG_MAX_TOKENS));
        l.max_tokens = 5;
        l.prompt = String::new();
        i.llm = Some(l.clone());
        assert_eq!(
            plan(&i).unwrap_err(),
            PlanError::BadRequest(MSG_EMPTY_PROMPT)
        );
        l.prompt = "p".into();
        i.llm = Some(l);
        i.duration = 0.0;
        assert_eq!(
            plan(&i).unwrap_err(),
            PlanError::BadRequest(MSG_LLM_POSITIVE)
        );
    }

    #[test]
    fn start_at_is_at_most_the_start_delay_ahead() {
        let now = crate::wall::now_unix_ns();
        let mut i = Input::new("http://h/", Rate::PerSecond(1.0), 1.0);
        i.start_at = Some(now + 60_000_000_000);
        assert!(plan(&i).is_ok());
        // The issue's: two centuries ahead.
        i.start_at = Some(now + 200 * 365 * 86_400 * 1_000_000_000);
        let PlanError::Invalid { field, msg } = plan(&i).unwrap_err() else {
            panic!()
        };
        assert_eq!(field, "start_at");
        assert!(
            msg.ends_with("from now: at most 5m (--max-start-delay)"),
            "{msg}"
        );
        // A start in the past is a late start, as before; the command line has no such limit.
        i.start_at = Some(now - 3_600_000_000_000);
        assert!(plan(&i).is_ok());
        i.start_at = Some(now + 200 * 365 * 86_400 * 1_000_000_000);
        assert!(Plan::new(&i, &Limits::command_line()).is_ok());
    }

    #[test]
    fn a_ca_cert_larger_than_a_bundle_is_refused_unread() {
        let path = std::env::temp_dir().join(format!("pacer-ca-{}.pem", std::process::id()));
        let f = std::fs::File::create(&path).unwrap();
        // Sparse: the size is what is checked, nothing is read.
        f.set_len(defaults::MAX_CA_CERT_BYTES + 1).unwrap();
        let mut i = Input::new("https://h/", Rate::PerSecond(1.0), 1.0);
        i.ca_cert = Some(path.to_string_lossy().into_owned());
        let e = plan(&i).unwrap_err().to_string();
        let _ = std::fs::remove_file(&path);
        assert!(
            e.starts_with("ca_cert: ca_cert ") && e.contains("at most 4194304"),
            "{e}"
        );
    }

    #[test]
    fn echoed_urls_hide_query_values() {
        let i = Input::new("http://h/x?api_key=s3cret&b=1", Rate::PerSecond(1.0), 1.0);
        let p = plan(&i).unwrap();
        assert_eq!(p.url, "http://h/x?api_key=***&b=***");
        assert_eq!(p.config["url"], json!("http://h/x?api_key=***&b=***"));
        // Sent as given.
        assert!(
            p.requests
                .first()
                .to_vec()
                .starts_with(b"GET /x?api_key=s3cret&b=1 HTTP/1.1\r\n")
        );
    }

    #[test]
    fn threads_are_capped_by_workers_and_requests() {
        let mut i = Input::new("http://h/", Rate::PerSecond(1.0), 1.0);
        i.threads = Some(8);
        assert_eq!(plan(&i).unwrap().threads, 1);
        i.qps = Rate::Max;
        i.num_workers = Some(3);
        assert_eq!(plan(&i).unwrap().threads, 3);
    }

    /// The `config` echo, key order included, as the API has always answered it.
    #[test]
    fn config_echo_is_unchanged() {
        let mut i = Input::new(" http://h:8081/x ", Rate::PerSecond(2.5), 2.0);
        i.method = Some("post".into());
        i.headers = vec![("X-Secret".into(), "v4lue".into())];
        i.body = Some("abc".into());
        i.poisson = true;
        i.seed = Some(7);
        i.threads = Some(1);
        i.realtime = true;
        let p = plan(&i).unwrap();
        assert_eq!(
            serde_json::to_string(&p.config).unwrap(),
            r#"{"url":"http://h:8081/x","qps":2.5,"duration":2,"num_workers":3,"timeout":2.0,"method":"POST","headers":["X-Secret"],"body_bytes":3,"arrival":"poisson","seed":7,"threads":1,"threads_reason":"as asked","max_lateness":0.0,"pacing":{"batch_budget_us":0,"spin_max_us":100,"why":"poisson arrivals: never batched unless --max-lateness is given (a shared wake-up would erase their short gaps); spin up to 100 µs before each send (10% of the send interval, at most 100 µs), as long as the OS was recently late waking the thread"},"interval":1,"realtime":true}"#
        );
        assert!(!p.method_is_head && p.body_mode == BodyMode::Plain);

        let mut i = Input::new("https://h/v1/completions", Rate::Max, 1.0);
        i.insecure = true;
        i.threads = Some(2);
        i.llm = Some(LlmInput {
            token: "tok".into(),
            model: "m".into(),
            prompt: "p".into(),
            max_tokens: 3,
            stream: true,
            api: Api::Chat,
            payload_style: Some(PayloadStyle::Fireworks),
            payload: json!({"top_k": null, "stream": "False"})
                .as_object()
                .cloned(),
        });
        let p = plan(&i).unwrap();
        assert_eq!(
            serde_json::to_string(&p.config).unwrap(),
            concat!(
                r#"{"fireworks_payload":{"model":"m","messages":[{"role":"user","content":"p"}],"#,
                r#""max_tokens":3,"temperature":1,"top_p":1,"frequency_penalty":0,"#,
                r#""presence_penalty":0,"n":1,"stop":"<string>","stream":"False","#,
                r#""context_length_exceeded_behavior":"truncate","user":"<string>"},"#,
                r#""url":"https://h/v1/chat/completions","qps":"max","duration":1,"#,
                r#""num_workers":50,"timeout":2.0,"method":"POST","arrival":"constant","#,
                r#""threads":2,"threads_reason":"as asked","interval":1,"api":"chat","#,
                r#""payload_style":"fireworks","stream":false,"#,
                r#""insecure":true,"#,
                r#""warning":"TLS certificate verification is DISABLED (insecure): the target's identity was not checked"}"#
            )
        );
        assert_eq!(p.body_mode, BodyMode::WholeJson);
        assert_eq!(p.url, "https://h/v1/chat/completions");
    }

    #[test]
    fn a_shard_gets_its_share_of_requests_connections_and_threads() {
        let mut i = Input::new("http://h/", Rate::PerSecond(100.0), 1.0);
        i.num_workers = Some(10);
        i.threads = Some(4);
        i.shard = ShardIndex::new(2, 3).unwrap();
        i.start_at = Some(1_767_225_600_000_000_000);
        let p = plan(&i).unwrap();
        // 100 requests and 10 connections over 3 shards: 34/33/33 and 4/3/3.
        assert_eq!((p.count, p.num_workers), (100, 10));
        assert_eq!(
            (p.shard_requests(), p.shard_workers(), p.threads),
            (33, 3, 3)
        );
        assert_eq!(p.config["shard"], json!("2/3"));
        assert_eq!(p.config["start_at"], json!("2026-01-01T00:00:00.000000Z"));
        // (Shards of one plan share its fingerprint: `shard`'s tests.)
        let whole = Input {
            shard: ShardIndex::WHOLE,
            ..i.clone()
        };
        let w = plan(&whole).unwrap();
        assert_eq!((w.shard_requests(), w.shard_workers()), (100, 10));
        assert!(!w.config.contains_key("shard"));

        let refused = |i: &Input| match plan(i).unwrap_err() {
            PlanError::Invalid { field, msg } => format!("{field}: {msg}"),
            e => panic!("{e:?}"),
        };
        let mut few = i.clone();
        few.num_workers = Some(2);
        assert_eq!(
            refused(&few),
            "num_workers: num_workers (2) must be at least the number of shards (3): the shards \
             split the connections"
        );
        let mut short = i.clone();
        short.qps = Rate::PerSecond(2.0);
        assert_eq!(
            refused(&short),
            "shard: the run's 2 requests cannot be split over 3 shards"
        );
        let mut poisson = i.clone();
        poisson.poisson = true;
        assert!(refused(&poisson).starts_with("seed: a run split into shards with Poisson"));
        poisson.seed = Some(1);
        assert!(plan(&poisson).is_ok());
    }

    #[test]
    fn control_characters_in_header_values_are_refused() {
        let mut i = Input::new("http://h/", Rate::PerSecond(1.0), 1.0);
        i.headers = vec![("X-Bell".into(), "a\u{7}b".into())];
        assert_eq!(
            plan(&i).unwrap_err(),
            invalid(
                "headers",
                "header \"X-Bell\" has a control character in its value".into()
            )
        );
        // The message the API has always given for a line break stays as it was.
        i.headers = vec![("X-A".into(), "a\r\nB: c".into())];
        assert_eq!(
            plan(&i).unwrap_err().to_string(),
            "headers: header \"X-A\" has a line break in its value"
        );
    }

    fn staged(stages: &[(f64, f64)], ramp: bool) -> Input {
        let mut i = Input::new("http://h/", Rate::PerSecond(1.0), 1.0);
        let list = stages
            .iter()
            .map(|&(qps, duration)| Stage { qps, duration })
            .collect();
        i.set_stages(list, ramp);
        i
    }

    #[test]
    fn stages_make_the_schedule_and_take_the_peak_for_defaults() {
        let p = plan(&staged(&[(100.0, 0.0), (1000.0, 10.0)], true)).unwrap();
        assert_eq!(p.count, 5500);
        assert_eq!(p.duration, Duration::from_secs(10));
        assert_eq!(p.num_workers, 1000, "ceil of the peak rate");
        assert_eq!(p.rate, Rate::PerSecond(1000.0));
        let c = p.curve.as_ref().unwrap();
        assert_eq!((c.stages(), c.count()), (2, 5500));
        assert_eq!(
            serde_json::to_string(&p.config).unwrap(),
            r#"{"url":"http://h/","stages":[{"qps":100,"duration":0},{"qps":1000,"duration":10}],"ramp":true,"duration":10,"num_workers":1000,"timeout":2.0,"arrival":"constant","threads":"#
                .to_string()
                + &p.threads.to_string()
                + r#","threads_reason":"fixed rate: the fewest that carry 1000 qps at 40000 qps per thread","max_lateness":0.0,"pacing":{"batch_budget_us":0,"spin_max_us":100,"why":"constant arrivals every 1.000 ms per thread: one wake-up per send (batching starts at a send every 50 µs per thread); spin up to 100 µs before each send (10% of the send interval, at most 100 µs), as long as the OS was recently late waking the thread"},"interval":1}"#
        );
        let p = plan(&staged(&[(10.0, 2.0), (30.5, 2.0)], false)).unwrap();
        assert_eq!((p.count, p.num_workers), (81, 31));
        assert!(p.stages.len() == 2 && !p.ramp);
        // A plain run is one stage at its rate.
        let p = plan(&Input::new("http://h/", Rate::PerSecond(20.0), 5.0)).unwrap();
        assert!(p.stages.is_empty());
        assert_eq!(
            p.curve.as_ref().map(|c| (c.stages(), c.count())),
            Some((1, 100))
        );
        let p = plan(&Input::new("http://h/", Rate::Max, 5.0)).unwrap();
        assert!(p.curve.is_none());
    }

    #[test]
    fn bad_stages_are_422s_naming_the_stage() {
        let refusal = |i: &Input| match plan(i).unwrap_err() {
            PlanError::Invalid { field, msg } => (field, msg),
            e => panic!("{e:?}"),
        };
        assert_eq!(
            refusal(&staged(&[(100.0, 30.0), (0.0, 10.0)], false)),
            (
                "stages",
                "stage 2: the rate must be a number above 0, not 0".into()
            )
        );
        assert_eq!(
            refusal(&staged(&[(-1.0, 30.0)], false)).1,
            "stage 1: the rate must be a number above 0, not -1"
        );
        assert_eq!(
            refusal(&staged(&[(5.0, -1.0), (5.0, 2.0)], true)).1,
            "stage 1: the duration must be a number of seconds above 0, not -1"
        );
        assert!(
            refusal(&staged(&[(5.0, 0.0), (5.0, 2.0)], false))
                .1
                .starts_with("stage 1: a duration of 0 sends nothing without a ramp")
        );
        assert_eq!(
            refusal(&staged(&[(2e6, 1.0)], false)).1,
            "stage 1: the rate must be <= 1000000 (--max-qps), not 2000000"
        );
        assert_eq!(
            refusal(&staged(&[(1.0, 3000.0), (1.0, 3000.0)], false)).1,
            "the stages last 6000 seconds in all: at most 3600 (--max-duration)"
        );
        let mut i = Input::new("http://h/", Rate::PerSecond(1.0), 1.0);
        i.ramp = true;
        assert_eq!(refusal(&i).0, "ramp");
    }

    #[test]
    fn thresholds_and_goodput_only_on_what_the_run_measures() {
        let mut i = Input::new("http://h/", Rate::PerSecond(10.0), 1.0);
        i.thresholds = vec!["response_time_p99<=200ms, error_rate<1%".into()];
        let p = plan(&i).unwrap();
        assert_eq!(p.thresholds.len(), 2);
        assert_eq!(
            p.config["thresholds"],
            json!(["response_time_p99<=200ms", "error_rate<1%"])
        );
        let refusal = |i: &Input| plan(i).unwrap_err().to_string();
        i.thresholds = vec!["mean_time_to_first_token<1s".into()];
        assert_eq!(
            refusal(&i),
            "thresholds: \"mean_time_to_first_token<1s\": mean_time_to_first_token is measured on \
             streaming LLM runs only"
        );
        i.thresholds = vec!["output_tokens_per_second>5".into()];
        assert!(refusal(&i).contains("streaming LLM runs only"));
        i.thresholds = vec!["goodput>=5".into()];
        assert!(refusal(&i).contains("goodput needs goodput objectives"));
        i.thresholds = vec!["response_tme_p99<1s".into()];
        assert!(refusal(&i).starts_with("thresholds: \"response_tme_p99<1s\" at position 1"));
        i.thresholds.clear();
        i.goodput = vec!["time_to_first_token<=200ms".into()];
        assert!(
            refusal(&i).starts_with("goodput: \"time_to_first_token<=200ms\": time_to_first_token")
        );
        i.goodput = vec!["response_time<=200ms".into()];
        i.thresholds = vec!["goodput_ratio>=0.9".into()];
        let p = plan(&i).unwrap();
        assert_eq!((p.goodput.len(), p.thresholds.len()), (1, 1));
        assert_eq!(p.config["goodput"], json!(["response_time<=200ms"]));
    }

    /// Issue 18, defect 4: Poisson arrivals are never batched unless a budget is asked for (the
    /// echo says 0), constant ones at 2,000/s are not either (a send every 500 µs), and the echo
    /// says how the lanes wake and why.
    #[test]
    fn poisson_is_never_batched_by_default_and_the_echo_says_why() {
        let mut i = Input::new("http://h/", Rate::PerSecond(2_000.0), 5.0);
        i.poisson = true;
        i.seed = Some(1);
        let p = plan(&i).unwrap();
        assert_eq!(p.config["max_lateness"], json!(0.0));
        let pacing = &p.config["pacing"];
        assert_eq!(pacing["batch_budget_us"], json!(0));
        assert!(
            pacing["spin_max_us"].as_u64().is_some_and(|s| s > 0),
            "{pacing}"
        );
        assert!(
            pacing["why"].as_str().unwrap().contains("poisson"),
            "{pacing}"
        );
        i.max_lateness = Some(50e-6);
        let p = plan(&i).unwrap();
        assert_eq!(p.config["max_lateness"], json!(50e-6), "asked: as asked");
        assert_eq!(p.config["pacing"]["batch_budget_us"], json!(50));
        i.poisson = false;
        i.max_lateness = None;
        let p = plan(&i).unwrap();
        assert_eq!(p.config["max_lateness"], json!(0.0));
        i.qps = Rate::PerSecond(20_000.0);
        let p = plan(&i).unwrap();
        assert_eq!(p.config["max_lateness"], json!(50e-6));
        assert_eq!(p.config["pacing"]["spin_max_us"], json!(0));
        i.qps = Rate::Max;
        assert!(plan(&i).unwrap().config.get("pacing").is_none());
    }
}
