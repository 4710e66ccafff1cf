//! The validated description of one run, built in exactly one place ([`Plan::new`]) from an
//! [`Input`] that both front doors fill: the API from request JSON (after its type checks), the CLI
//! from flags. Everything the engine needs is decided here: the target, the request bytes (built
//! once), the schedule, the worker and thread counts, TLS options and the LLM mode. The checks keep
//! the original service's 400 messages; limits answer 422 naming the limit.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::http1::build_request;
use crate::llm::{Api, PayloadInput, build_payload};

/// Requests per second, or closed-loop saturation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rate {
    PerSecond(f64),
    Max,
}

/// How intended send times are spaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    Constant,
    Poisson { seed: u64 },
}

/// What the user asked for, before validation. `None` means "use the default".
#[derive(Clone, Debug)]
pub struct Input {
    pub url: String,
    pub qps: Rate,
    pub duration: f64,
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
    pub ca_cert: Option<String>,
    pub insecure: bool,
    /// Run the workers under `SCHED_FIFO` (fixed-rate runs only; see `engine::sched`).
    pub realtime: bool,
    pub llm: Option<LlmInput>,
}

impl Input {
    /// An input with every optional field at its default.
    pub fn new(url: impl Into<String>, qps: Rate, duration: f64) -> Input {
        Input {
            url: url.into(),
            qps,
            duration,
            num_workers: None,
            timeout: None,
            method: None,
            headers: Vec::new(),
            body: None,
            poisson: false,
            seed: None,
            threads: None,
            ca_cert: None,
            insecure: false,
            realtime: false,
            llm: None,
        }
    }
}

/// The LLM benchmark's own inputs (SPEC §4).
#[derive(Clone)]
pub struct LlmInput {
    pub token: String,
    pub model: String,
    pub prompt: String,
    pub max_tokens: i64,
    pub stream: bool,
    pub api: Api,
    pub payload: Option<Map<String, Value>>,
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
            .finish_non_exhaustive()
    }
}

/// Server-side ceilings on what one run may ask for (SPEC §5).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    pub max_qps: f64,
    pub max_duration: f64,
    pub max_workers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_qps: 1_000_000.0,
            max_duration: 3600.0,
            max_workers: 10_000,
        }
    }
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

pub const MSG_BENCH_POSITIVE: &str = "QPS, duration and timeout must be positive integers";
pub const MSG_LLM_POSITIVE: &str = "QPS and duration must be positive integers";
pub const MSG_NO_TOKEN: &str = "Please pass an auth token for FireworksAI API request";
pub const MSG_MAX_TOKENS: &str = "Max tokens should be > 0";
pub const MSG_EMPTY_PROMPT: &str = "Please enter a prompt with length > 0";

/// Where requests go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub tls: bool,
    /// Host name or IP literal, without IPv6 brackets.
    pub host: String,
    pub port: u16,
    /// The `Host` header value (with brackets and a non-default port).
    pub host_header: String,
    /// Path and query, at least "/".
    pub path: String,
}

impl Target {
    /// Parses an absolute `http://` or `https://` URL with a host.
    pub fn parse(url: &str) -> Result<Target, String> {
        let url = url.trim();
        let (tls, rest) = if let Some(r) = strip_prefix_ci(url, "http://") {
            (false, r)
        } else if let Some(r) = strip_prefix_ci(url, "https://") {
            (true, r)
        } else {
            return Err("URL scheme should be 'http' or 'https'".into());
        };
        let rest = rest.split('#').next().unwrap_or("");
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'?' => (&rest[..i], format!("/{}", &rest[i..])),
            Some(i) => (&rest[..i], rest[i..].to_string()),
            None => (rest, "/".to_string()),
        };
        if authority.contains('@') {
            return Err("URL must not contain user information".into());
        }
        let default_port = if tls { 443 } else { 80 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let end = v6.find(']').ok_or("URL has an unterminated IPv6 literal")?;
            let host = &v6[..end];
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err("URL has an invalid IPv6 literal".into());
            }
            let port = parse_port(&v6[end + 1..], default_port)?;
            (host.to_string(), port)
        } else {
            let (h, p) = match authority.rfind(':') {
                Some(i) => (&authority[..i], parse_port(&authority[i..], default_port)?),
                None => (authority, default_port),
            };
            (h.to_ascii_lowercase(), p)
        };
        if host.is_empty() {
            return Err("URL must have a host".into());
        }
        if host
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || b == b'/')
        {
            return Err("URL host has invalid characters".into());
        }
        if path
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err("URL path must not contain spaces or control characters".into());
        }
        let bracketed = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.clone()
        };
        let host_header = if port == default_port {
            bracketed
        } else {
            format!("{bracketed}:{port}")
        };
        Ok(Target {
            tls,
            host,
            port,
            host_header,
            path,
        })
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    if s.len() >= prefix.len()
        && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
    {
        Some(&s[prefix.len()..])
    } else {
        None
    }
}

/// `rest` is empty or ":PORT".
fn parse_port(rest: &str, default: u16) -> Result<u16, String> {
    match rest.strip_prefix(':') {
        None if rest.is_empty() => Ok(default),
        None => Err("URL has garbage after the host".into()),
        Some("") => Ok(default),
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => Err(format!("URL port {p:?} is not a port number")),
            Ok(port) => Ok(port),
        },
    }
}

/// The request bytes of a run. Debug prints only the length: they may carry a bearer token.
#[derive(Clone)]
pub struct RequestBytes(pub Vec<u8>);

impl fmt::Debug for RequestBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RequestBytes({} bytes)", self.0.len())
    }
}

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
    pub stream: bool,
    pub api: Api,
}

/// A validated run.
#[derive(Clone, Debug)]
pub struct Plan {
    pub url: String,
    pub target: Target,
    pub request: RequestBytes,
    pub method_is_head: bool,
    pub rate: Rate,
    pub duration: Duration,
    /// `round(qps × duration)` for a fixed rate; 0 (unknown in advance) for saturation.
    pub count: u64,
    pub num_workers: usize,
    pub threads: usize,
    pub timeout: Duration,
    pub arrival: Arrival,
    pub ca_cert: Option<PathBuf>,
    pub insecure: bool,
    /// Ask for `SCHED_FIFO` workers (only ever set with a fixed rate).
    pub realtime: bool,
    pub llm: Option<LlmPlan>,
    /// How the engine reads response bodies.
    pub body_mode: BodyMode,
    /// The effective inputs, echoed as the report's `config` (never the token).
    pub config: Map<String, Value>,
}

/// A saturating worker never sleeps; under `SCHED_FIFO` it would starve the rest of its core.
pub const MSG_REALTIME_MAX: &str =
    "needs a fixed qps: a saturating real-time worker would starve everything else on its core";

/// Default `num_workers` in saturation mode, where there is no rate to derive it from (wrk's `-c` habit).
pub const DEFAULT_MAX_WORKERS: usize = 50;
pub const DEFAULT_TIMEOUT: f64 = 2.0;

impl Plan {
    /// Validates `input` against `limits` and builds the plan. The only way to make one.
    pub fn new(input: &Input, limits: &Limits) -> Result<Plan, PlanError> {
        let llm = input.llm.as_ref();
        let positive_msg = if llm.is_some() {
            MSG_LLM_POSITIVE
        } else {
            MSG_BENCH_POSITIVE
        };
        if let Some(l) = llm {
            if l.token.trim().is_empty() {
                return Err(PlanError::BadRequest(MSG_NO_TOKEN));
            }
            if l.max_tokens <= 0 {
                return Err(PlanError::BadRequest(MSG_MAX_TOKENS));
            }
            if l.prompt.is_empty() {
                return Err(PlanError::BadRequest(MSG_EMPTY_PROMPT));
            }
        }
        let timeout = input.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let qps_ok = match input.qps {
            Rate::PerSecond(q) => q.is_finite() && q > 0.0,
            Rate::Max => true,
        };
        if !(qps_ok && input.duration.is_finite() && input.duration > 0.0) {
            return Err(PlanError::BadRequest(positive_msg));
        }
        if !(timeout.is_finite() && timeout > 0.0) {
            return Err(PlanError::BadRequest(positive_msg));
        }
        if let Rate::PerSecond(q) = input.qps
            && q > limits.max_qps
        {
            return Err(invalid(
                "qps",
                format!("qps must be <= {} (--max-qps)", limits.max_qps),
            ));
        }
        if input.duration > limits.max_duration {
            return Err(invalid(
                "duration",
                format!(
                    "duration must be <= {} seconds (--max-duration)",
                    limits.max_duration
                ),
            ));
        }
        if timeout > limits.max_duration {
            return Err(invalid(
                "timeout",
                format!(
                    "timeout must be <= {} seconds (--max-duration)",
                    limits.max_duration
                ),
            ));
        }
        let target = Target::parse(&input.url).map_err(|msg| invalid("url", msg))?;

        let num_workers = match input.num_workers {
            Some(n) if n > 0 => {
                let n = usize::try_from(n).unwrap_or(usize::MAX);
                if n > limits.max_workers {
                    return Err(invalid(
                        "num_workers",
                        format!(
                            "num_workers must be <= {} (--max-workers)",
                            limits.max_workers
                        ),
                    ));
                }
                n
            }
            _ => match input.qps {
                // ceil keeps a fractional rate from getting 0 workers; the limit caps a huge one.
                Rate::PerSecond(q) => (q.ceil() as usize).clamp(1, limits.max_workers),
                Rate::Max => DEFAULT_MAX_WORKERS.min(limits.max_workers),
            },
        };
        let count = match input.qps {
            Rate::PerSecond(q) => (q * input.duration).round() as u64,
            Rate::Max => 0,
        };
        if let Rate::PerSecond(_) = input.qps
            && count == 0
        {
            return Err(invalid("qps", "qps × duration rounds to 0 requests".into()));
        }
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let threads = match input.threads {
            Some(0) => return Err(invalid("threads", "threads must be >= 1".into())),
            Some(t) if t > 1024 => {
                return Err(invalid("threads", "threads must be <= 1024".into()));
            }
            Some(t) => t,
            None => cores,
        };
        // Never more threads than connections, nor than requests: an idle thread would only add noise.
        let mut threads = threads.min(num_workers);
        if count > 0 {
            threads = threads.min(usize::try_from(count).unwrap_or(usize::MAX));
        }
        let threads = threads.max(1);

        let arrival = if input.poisson {
            if input.qps == Rate::Max {
                return Err(invalid(
                    "arrival",
                    "poisson arrivals need a numeric qps".into(),
                ));
            }
            Arrival::Poisson {
                seed: input.seed.unwrap_or_else(random_seed),
            }
        } else {
            Arrival::Constant
        };

        let (mut method, mut headers, mut body) = (
            input.method.clone().unwrap_or_else(|| "GET".into()),
            input.headers.clone(),
            input.body.clone().unwrap_or_default().into_bytes(),
        );
        if !method
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
            || method.is_empty()
        {
            return Err(invalid(
                "method",
                "method must be an HTTP token such as GET or POST".into(),
            ));
        }
        method.make_ascii_uppercase();
        for (name, value) in &headers {
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
            {
                return Err(invalid("headers", format!("invalid header name {name:?}")));
            }
            if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
                return Err(invalid(
                    "headers",
                    format!("header {name:?} has a line break in its value"),
                ));
            }
        }

        if input.realtime && input.qps == Rate::Max {
            return Err(invalid("realtime", MSG_REALTIME_MAX.into()));
        }

        let mut config = Map::new();
        let mut target = target;
        let mut llm_plan = None;
        if let Some(l) = llm {
            if l.api == Api::Chat && target.path.ends_with("/v1/completions") {
                let cut = target.path.len() - "/completions".len();
                target.path = format!("{}/chat/completions", &target.path[..cut]);
            }
            let payload = build_payload(&PayloadInput {
                model: &l.model,
                prompt: &l.prompt,
                max_tokens: l.max_tokens,
                stream: l.stream,
                api: l.api,
                overrides: l.payload.as_ref(),
            });
            body = serde_json::to_vec(&payload).map_err(|e| invalid("payload", e.to_string()))?;
            if input.method.is_none() {
                method = "POST".into();
            }
            headers.retain(|(n, _)| {
                !n.eq_ignore_ascii_case("authorization") && !n.eq_ignore_ascii_case("content-type")
            });
            headers.push(("Authorization".into(), format!("Bearer {}", l.token.trim())));
            headers.push(("Content-Type".into(), "application/json".into()));
            config.insert("fireworks_payload".into(), Value::Object(payload));
            llm_plan = Some(LlmPlan {
                stream: l.stream,
                api: l.api,
            });
        }
        let url = if llm.is_some() {
            let scheme = if target.tls { "https" } else { "http" };
            format!("{scheme}://{}{}", target.host_header, target.path)
        } else {
            input.url.trim().to_string()
        };

        config.insert("url".into(), json!(url));
        config.insert(
            "qps".into(),
            match input.qps {
                Rate::PerSecond(q) => number(q),
                Rate::Max => json!("max"),
            },
        );
        config.insert("duration".into(), number(input.duration));
        config.insert("num_workers".into(), json!(num_workers));
        config.insert("timeout".into(), json!(timeout));
        if input.method.is_some() || llm.is_some() {
            config.insert("method".into(), json!(method));
        }
        if !input.headers.is_empty() {
            // Header names only: values may be credentials.
            let names: Vec<&str> = input.headers.iter().map(|(n, _)| n.as_str()).collect();
            config.insert("headers".into(), json!(names));
        }
        if input.body.is_some() && llm.is_none() {
            config.insert("body_bytes".into(), json!(body.len()));
        }
        config.insert(
            "arrival".into(),
            json!(if input.poisson { "poisson" } else { "constant" }),
        );
        if let Arrival::Poisson { seed } = arrival {
            config.insert("seed".into(), json!(seed));
        }
        config.insert("threads".into(), json!(threads));
        if let Some(l) = llm {
            config.insert(
                "api".into(),
                json!(if l.api == Api::Chat {
                    "chat"
                } else {
                    "completions"
                }),
            );
            config.insert(
                "stream".into(),
                json!(llm_plan.as_ref().is_some_and(|p| p.stream)),
            );
        }
        if let Some(ca) = &input.ca_cert {
            config.insert("ca_cert".into(), json!(ca));
        }
        if target.tls || input.insecure {
            config.insert("insecure".into(), json!(input.insecure));
        }
        if input.realtime {
            config.insert("realtime".into(), json!(true));
        }
        if input.insecure {
            config.insert(
                "warning".into(),
                json!("TLS certificate verification is DISABLED (insecure): the target's identity was not checked"),
            );
        }

        let request = build_request(&method, &target.host_header, &target.path, &headers, &body);
        Ok(Plan {
            url,
            method_is_head: method == "HEAD",
            target,
            request: RequestBytes(request),
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
            body_mode: match &llm_plan {
                None => BodyMode::Plain,
                Some(l) if l.stream => BodyMode::Sse,
                Some(_) => BodyMode::WholeJson,
            },
            llm: llm_plan,
            config,
        })
    }

    /// The name of the error for a request that waited `timeout` for a free worker.
    pub fn not_sent_name(&self) -> String {
        format!("not sent: all {} workers busy", self.num_workers)
    }
}

fn invalid(field: &'static str, msg: String) -> PlanError {
    PlanError::Invalid { field, msg }
}

/// Integral floats print as integers, as the user most likely typed them (`"qps": 20`).
fn number(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9e15 {
        json!(x as i64)
    } else {
        json!(x)
    }
}

fn random_seed() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(input: &Input) -> Result<Plan, PlanError> {
        Plan::new(input, &Limits::default())
    }

    #[test]
    fn target_parsing() {
        let t = Target::parse("http://localhost:8081").unwrap();
        assert_eq!(
            (t.tls, t.host.as_str(), t.port, t.path.as_str()),
            (false, "localhost", 8081, "/")
        );
        assert_eq!(t.host_header, "localhost:8081");
        let t = Target::parse("https://API.example.com/v1/completions?x=1#frag").unwrap();
        assert_eq!(
            (t.tls, t.port, t.path.as_str()),
            (true, 443, "/v1/completions?x=1")
        );
        assert_eq!(t.host_header, "api.example.com");
        let t = Target::parse("http://[::1]:9000/a").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.host_header.as_str()),
            ("::1", 9000, "[::1]:9000")
        );
        let t = Target::parse("http://h?q").unwrap();
        assert_eq!(t.path, "/?q");
        for bad in [
            "ftp://x/",
            "http://",
            "http:///x",
            "http://a:0/",
            "http://a:99999/",
            "x",
            "http://u@h/",
            "http://[::1/",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
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
            payload: None,
        };
        i.llm = Some(l.clone());
        let p = plan(&i).unwrap();
        assert_eq!(p.target.path, "/v1/chat/completions");
        let req = String::from_utf8(p.request.0.clone()).unwrap();
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
    fn threads_are_capped_by_workers_and_requests() {
        let mut i = Input::new("http://h/", Rate::PerSecond(1.0), 1.0);
        i.threads = Some(8);
        assert_eq!(plan(&i).unwrap().threads, 1);
        i.qps = Rate::Max;
        i.num_workers = Some(3);
        assert_eq!(plan(&i).unwrap().threads, 3);
    }
}
