//! The command line: clap definitions, turned into the same [`Input`] the API builds, validated by
//! the same [`Plan::new`]; then the run, its report, and the exit code. `main` only wires.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::time::Duration;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{ArgAction, Args, Parser, Subcommand};

use crate::api::{self, AllowTarget, ApiConfig};
use crate::engine::{self, Progress};
use crate::llm::Api;
use crate::mock::{Fault, MockConfig, MockServer};
use crate::plan::{Input, Limits, LlmInput, Plan, Rate, defaults, parse_bool};
use crate::report;

#[derive(Parser, Debug)]
#[command(
    name = "pacer",
    version,
    about = "HTTP load generator with precise pacing and exact LLM timings"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the JSON API (POST /benchmark, POST /fireworks_benchmark).
    Serve(ServeArgs),
    /// Benchmark a URL at a fixed rate (or `--qps max` for closed-loop saturation).
    Bench(BenchArgs),
    /// Benchmark an OpenAI-compatible completions or chat API (Fireworks, vLLM, ...).
    #[command(alias = "llm")]
    Fireworks(LlmArgs),
    /// Run the built-in mock targets on loopback.
    Mock(MockArgs),
    /// Start the mock and benchmark it: a real report, no network needed.
    Demo(DemoArgs),
    /// Render a saved JSON report (`bench --json > run.json`) as one self-contained HTML page.
    Html(HtmlArgs),
}

#[derive(Args, Debug)]
pub struct HtmlArgs {
    /// The JSON report, as `--json` prints it or the API returns it.
    pub report: std::path::PathBuf,
    /// The HTML file to write.
    #[arg(long, short = 'o')]
    pub output: std::path::PathBuf,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on. Off loopback, set --api-key: anyone who can reach the server can
    /// direct load with it.
    #[arg(long, default_value = api::DEFAULT_ADDR)]
    pub addr: String,
    /// Benchmark runs allowed at once; more get 429.
    #[arg(long, default_value_t = api::DEFAULT_MAX_RUNS)]
    pub max_runs: usize,
    /// Highest qps a request may ask for.
    #[arg(long, default_value_t = defaults::MAX_QPS)]
    pub max_qps: f64,
    /// Longest duration (seconds) a request may ask for.
    #[arg(long, default_value_t = defaults::MAX_DURATION)]
    pub max_duration: f64,
    /// Most workers (connections) a request may ask for.
    #[arg(long, default_value_t = defaults::MAX_WORKERS)]
    pub max_workers: usize,
    /// Require `Authorization: Bearer KEY` (or `X-API-Key: KEY`) on every route but /health.
    #[arg(long, env = "PACER_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Only benchmark these targets (repeatable): HOST, HOST:PORT, an IP, `[IPv6]:PORT`, or a CIDR
    /// such as 10.0.0.0/8. Every address a target resolves to must be allowed; a HOST allows
    /// itself and the addresses it resolves to at start. Others get 403. Default: any target.
    #[arg(long = "allow-target", value_name = "HOST|HOST:PORT|CIDR")]
    pub allow_target: Vec<AllowTarget>,
    /// Accept `"realtime": true`, which runs a benchmark's threads as SCHED_FIFO on this
    /// server's CPUs (otherwise 422).
    #[arg(long)]
    pub allow_realtime: bool,
    /// Most connections held at once (waiting for a request or being served). At the cap, the
    /// connection that has waited longest for its request head is closed for the new one.
    #[arg(long, default_value_t = api::DEFAULT_MAX_CONNECTIONS, value_parser = parse_at_least_one)]
    pub max_connections: usize,
    /// Seconds a connection may take to send a request head (from connecting, or from the
    /// previous response), and then its body; slower ones are closed (408).
    #[arg(long, default_value_t = api::DEFAULT_HEAD_TIMEOUT, value_parser = parse_seconds)]
    pub head_timeout: f64,
}

fn parse_at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{s:?} is not a whole number of at least 1")),
    }
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 && x <= 86_400.0 => Ok(x),
        _ => Err(format!(
            "{s:?} is not a number of seconds above 0 (at most a day)"
        )),
    }
}

/// Flags every run shares (SPEC §2, §3). The defaults shown are `pacer bench`'s; `pacer
/// fireworks` sets its own (see [`LlmArgs`]).
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Seconds to run.
    #[arg(long, default_value_t = defaults::BENCH_DURATION)]
    pub duration: f64,
    #[arg(long = "num_workers", alias = "num-workers", short = 'c', help = workers_help())]
    pub num_workers: Option<i64>,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = defaults::TIMEOUT)]
    pub timeout: f64,
    /// HTTP method.
    #[arg(long, short = 'X')]
    pub method: Option<String>,
    /// Extra header, `Name: value` (repeatable).
    #[arg(long = "header", short = 'H')]
    pub headers: Vec<String>,
    /// Request body.
    #[arg(long)]
    pub body: Option<String>,
    /// Arrival process: constant spacing or Poisson.
    #[arg(long, value_parser = ["constant", "poisson"], default_value = "constant")]
    pub arrival: String,
    /// Seed for Poisson arrivals.
    #[arg(long)]
    pub seed: Option<u64>,
    /// OS threads (default: cores, at most num_workers).
    #[arg(long, short = 't')]
    pub threads: Option<usize>,
    /// Extra trusted CA certificate (PEM file).
    #[arg(long = "ca-cert", alias = "ca_cert")]
    pub ca_cert: Option<String>,
    /// Do not verify TLS certificates (named in the report).
    #[arg(long)]
    pub insecure: bool,
    /// Run the worker threads as SCHED_FIFO (needs root or CAP_SYS_NICE; fixed rate only): a due
    /// send then never waits for another task's time slice. The report says if it was refused.
    #[arg(long)]
    pub realtime: bool,
    /// Print the API's JSON instead of the text report.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Target URL (http:// or https://).
    #[arg(long)]
    pub url: String,
    /// Requests per second, or `max`.
    #[arg(long, default_value_t = Rate::PerSecond(defaults::BENCH_QPS), value_parser = parse_rate)]
    pub qps: Rate,
    #[command(flatten)]
    pub run: RunArgs,
}

/// `--num_workers`' default is computed from the rate: say how, with the numbers it uses.
fn workers_help() -> String {
    format!(
        "Maximum simultaneous connections (= requests in flight) [default: the qps rounded up, at \
         most {}; {} with `--qps max`]",
        defaults::MAX_WORKERS,
        defaults::SATURATION_WORKERS
    )
}

/// clap keeps a default's text as a `&'static str`; the defaults are numbers. One text per call
/// site, made once (what `default_value_t` does inside).
macro_rules! shown {
    ($value:expr) => {{
        static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        TEXT.get_or_init(|| $value.to_string()).as_str()
    }};
}

/// The original `fireworks_ai_benchmark.py`'s defaults replace `pacer bench`'s for the shared
/// run flags.
#[derive(Args, Debug)]
#[command(
    mut_arg("duration", |a| a.default_value(shown!(defaults::LLM_DURATION))),
    mut_arg("timeout", |a| a.default_value(shown!(defaults::LLM_TIMEOUT))),
    mut_arg("num_workers", |a| a
        .default_value(shown!(defaults::LLM_WORKERS))
        .help("Maximum simultaneous connections (= requests in flight)")),
)]
pub struct LlmArgs {
    /// API token (or FIREWORKS_API_KEY).
    #[arg(long, env = "FIREWORKS_API_KEY", hide_env_values = true)]
    pub token: Option<String>,
    #[arg(long, default_value = defaults::LLM_MODEL)]
    pub model: String,
    #[arg(long, default_value = defaults::LLM_PROMPT)]
    pub prompt: String,
    #[arg(long = "max_tokens", alias = "max-tokens", default_value_t = defaults::LLM_MAX_TOKENS)]
    pub max_tokens: i64,
    /// Stream the response (Server-Sent Events): true or false (also True, False). A `stream`
    /// in --payload wins.
    #[arg(
        long,
        action = ArgAction::Set,
        value_name = "BOOL",
        num_args = 0..=1,
        default_value_t = defaults::LLM_STREAM,
        default_missing_value = "true",
        value_parser = parse_bool_arg,
    )]
    pub stream: bool,
    #[arg(long, default_value = defaults::LLM_URL)]
    pub url: String,
    /// `completions` or `chat` (/v1/chat/completions with a user message).
    #[arg(long, default_value = "completions", value_parser = api_parser())]
    pub api: Api,
    /// JSON object merged over the default payload (`null` removes a key).
    #[arg(long)]
    pub payload: Option<String>,
    #[arg(long, default_value_t = Rate::PerSecond(defaults::LLM_QPS), value_parser = parse_rate)]
    pub qps: Rate,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Args, Debug)]
pub struct MockArgs {
    #[arg(long, default_value_t = 8081)]
    pub port: u16,
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Share of `/` requests answered 400 (the original dummy API's mix).
    #[arg(long, default_value_t = 0.2)]
    pub error_rate: f64,
    /// Answer every `/` request with 200.
    #[arg(long)]
    pub all_200: bool,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Delay before answering `/`, in milliseconds.
    #[arg(long, default_value_t = 0.0)]
    pub delay_ms: f64,
    /// LLM routes: time to first token, milliseconds.
    #[arg(long, default_value_t = 50.0)]
    pub ttft_ms: f64,
    /// LLM routes: gap between tokens, milliseconds.
    #[arg(long, default_value_t = 10.0)]
    pub itl_ms: f64,
    /// LLM routes: tokens per response.
    #[arg(long, default_value_t = 20)]
    pub tokens: u32,
    /// LLM routes: tokens per streamed content event (the last one carries the remainder); each
    /// event then follows the one before by its tokens × --itl-ms.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub tokens_per_chunk: u32,
    /// LLM routes: never send the usage event.
    #[arg(long)]
    pub no_usage: bool,
    /// Serve HTTPS with a fresh self-signed CA.
    #[arg(long)]
    pub tls: bool,
    /// Where to write the CA certificate (PEM) with --tls.
    #[arg(long, default_value = "pacer-mock-ca.pem")]
    pub ca_out: String,
    /// Misbehave on every request (reset, close, short-body, garbage, huge-headers, bad-chunk,
    /// endless, drip, stall, continue, 429, 503, sse-broken-json, sse-error, sse-no-done).
    #[arg(long)]
    pub fault: Option<String>,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Requests per second of the plain benchmark.
    #[arg(long, default_value_t = 200.0)]
    pub qps: f64,
    /// Seconds each benchmark runs.
    #[arg(long, default_value_t = 3.0)]
    pub duration: f64,
}

fn parse_rate(s: &str) -> Result<Rate, String> {
    s.parse()
}

/// The API's boolean words ([`parse_bool`]), so a flag and a request field read alike.
fn parse_bool_arg(s: &str) -> Result<bool, String> {
    parse_bool(s).ok_or_else(|| format!("{s:?} is not true or false"))
}

/// Lists the names in `--help` and in the error for any other.
fn api_parser() -> impl TypedValueParser<Value = Api> {
    let names = [Api::Completions.name(), Api::Chat.name()];
    PossibleValuesParser::new(names)
        .try_map(|s: String| Api::from_name(&s).ok_or_else(|| format!("{s:?} is not an API")))
}

/// What went wrong, for `main` to print in one line and exit with `code`.
#[derive(Debug)]
pub struct CliError {
    pub code: i32,
    pub msg: String,
}

fn err(code: i32, msg: impl Into<String>) -> CliError {
    CliError {
        code,
        msg: msg.into(),
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Serve(a) => {
            if a.api_key.as_deref().is_some_and(|k| k.trim().is_empty()) {
                return Err(err(2, "--api-key (or PACER_API_KEY) is empty"));
            }
            let cfg = ApiConfig {
                addr: a.addr,
                limits: Limits {
                    max_qps: a.max_qps,
                    max_duration: a.max_duration,
                    max_workers: a.max_workers,
                },
                max_runs: a.max_runs,
                api_key: a.api_key,
                allow_realtime: a.allow_realtime,
                allow_targets: a.allow_target,
                max_connections: a.max_connections,
                head_timeout: Duration::from_secs_f64(a.head_timeout),
            };
            api::serve(cfg).map_err(|e| err(1, format!("serve: {e}")))
        }
        Command::Bench(a) => {
            let input = run_input(a.url, a.qps, &a.run, None)?;
            bench(&input, a.run.json)
        }
        Command::Fireworks(a) => {
            let token = a.token.clone().unwrap_or_default();
            let payload = match &a.payload {
                None => None,
                Some(p) => match serde_json::from_str::<serde_json::Value>(p) {
                    Ok(serde_json::Value::Object(m)) => Some(m),
                    _ => return Err(err(2, "--payload must be a JSON object")),
                },
            };
            let llm = LlmInput {
                token,
                model: a.model,
                prompt: a.prompt,
                max_tokens: a.max_tokens,
                stream: a.stream,
                api: a.api,
                payload,
            };
            let input = run_input(a.url, a.qps, &a.run, Some(llm))?;
            bench(&input, a.run.json)
        }
        Command::Mock(a) => mock(a),
        Command::Demo(a) => demo(a),
        Command::Html(a) => {
            crate::html::render_file(&a.report, &a.output).map_err(|e| err(2, e.to_string()))
        }
    }
}

fn run_input(
    url: String,
    qps: Rate,
    r: &RunArgs,
    llm: Option<LlmInput>,
) -> Result<Input, CliError> {
    let mut input = Input::new(url, qps, r.duration);
    input.num_workers = r.num_workers;
    input.timeout = Some(r.timeout);
    input.method = r.method.clone();
    for h in &r.headers {
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| err(2, format!("header {h:?} must be `Name: value`")))?;
        input
            .headers
            .push((name.trim().to_string(), value.trim().to_string()));
    }
    input.body = r.body.clone();
    input.poisson = r.arrival == "poisson";
    input.seed = r.seed;
    input.threads = r.threads;
    input.ca_cert = r.ca_cert.clone();
    input.insecure = r.insecure;
    input.realtime = r.realtime;
    input.llm = llm;
    Ok(input)
}

/// Validates, runs and prints one benchmark.
pub fn bench(input: &Input, json: bool) -> Result<(), CliError> {
    let plan = Plan::new(input, &Limits::default()).map_err(|e| err(2, e.to_string()))?;
    let stats = run_with_progress(&plan)?;
    let mut stdout = std::io::stdout().lock();
    let text = if json {
        serde_json::to_string_pretty(&report::to_json(&plan, &stats))
            .map_err(|e| err(1, e.to_string()))?
    } else {
        report::to_text(&plan, &stats)
    };
    let _ = writeln!(stdout, "{text}");
    Ok(())
}

fn run_with_progress(plan: &Plan) -> Result<engine::RunStats, CliError> {
    let show = std::io::stderr().is_terminal();
    let tick = |p: &Progress, elapsed: Duration| {
        if show && elapsed >= Duration::from_secs(1) {
            let done = engine::done(p);
            let line = if p.total > 0 {
                format!(
                    "\r  {:6.1}s  {done}/{} requests",
                    elapsed.as_secs_f64(),
                    p.total
                )
            } else {
                format!("\r  {:6.1}s  {done} requests", elapsed.as_secs_f64())
            };
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    };
    let stats = engine::run(plan, Some(&tick)).map_err(|e| err(1, e.to_string()));
    if show {
        let _ = std::io::stderr().write_all(b"\r\x1b[K");
    }
    stats
}

fn mock(a: MockArgs) -> Result<(), CliError> {
    let cfg = MockConfig {
        error_rate: if a.all_200 { 0.0 } else { a.error_rate },
        seed: a.seed,
        delay: secs_ms(a.delay_ms)?,
        ttft: secs_ms(a.ttft_ms)?,
        itl: secs_ms(a.itl_ms)?,
        tokens: a.tokens,
        tokens_per_chunk: a.tokens_per_chunk,
        usage: !a.no_usage,
        tls: a.tls,
        fault: match &a.fault {
            Some(f) => Some(f.parse::<Fault>().map_err(|e| err(2, e.to_string()))?),
            None => None,
        },
        ..MockConfig::default()
    };
    if !(0.0..=1.0).contains(&cfg.error_rate) {
        return Err(err(2, "--error-rate must be between 0 and 1"));
    }
    let ip: std::net::IpAddr = a
        .host
        .parse()
        .map_err(|_| err(2, format!("--host {:?} is not an IP address", a.host)))?;
    let server = MockServer::start(SocketAddr::new(ip, a.port), cfg)
        .map_err(|e| err(1, format!("mock: {e}")))?;
    if let Some(pem) = server.ca_cert_pem() {
        std::fs::write(&a.ca_out, pem).map_err(|e| err(1, format!("writing {}: {e}", a.ca_out)))?;
        eprintln!("pacer mock: CA certificate written to {}", a.ca_out);
    }
    eprintln!(
        "pacer mock: serving {} (/ , /v1/completions, /v1/chat/completions, /fault/<name>, /__counters); Ctrl-C to stop",
        server.url()
    );
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn secs_ms(ms: f64) -> Result<Duration, CliError> {
    if ms.is_finite() && ms >= 0.0 {
        Ok(Duration::from_secs_f64(ms / 1000.0))
    } else {
        Err(err(
            2,
            format!("{ms} is not a non-negative number of milliseconds"),
        ))
    }
}

fn demo(a: DemoArgs) -> Result<(), CliError> {
    let cfg = MockConfig::default();
    let server = MockServer::start(SocketAddr::from(([127, 0, 0, 1], 0)), cfg.clone())
        .map_err(|e| err(1, format!("mock: {e}")))?;
    let base = server.url();
    println!(
        "pacer demo: mock target at {base} ({}% of `/` answered 400, like the original's dummy API)\n",
        cfg.error_rate * 100.0
    );
    let mut input = Input::new(format!("{base}/"), Rate::PerSecond(a.qps), a.duration);
    input.num_workers = Some(20);
    bench(&input, false)?;
    println!(
        "pacer demo: streaming completions, mock time to first token {} ms, {} ms between {} tokens\n",
        cfg.ttft.as_millis(),
        cfg.itl.as_millis(),
        cfg.tokens
    );
    // The streaming benchmark as `pacer fireworks` runs it by default, but for the duration.
    let mut input = Input::new(
        format!("{base}/v1/completions"),
        Rate::PerSecond(defaults::LLM_QPS),
        a.duration,
    );
    input.num_workers = Some(defaults::LLM_WORKERS);
    input.timeout = Some(defaults::LLM_TIMEOUT);
    input.llm = Some(LlmInput {
        token: "demo-token".into(),
        model: "mock-model".into(),
        prompt: defaults::LLM_PROMPT.into(),
        max_tokens: defaults::LLM_MAX_TOKENS,
        stream: defaults::LLM_STREAM,
        api: Api::Completions,
        payload: None,
    });
    bench(&input, false)?;
    server.shutdown();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Command {
        let mut argv = vec!["pacer"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).unwrap().command
    }

    #[test]
    fn each_command_has_its_originals_defaults() {
        let Command::Bench(b) = parse(&["bench", "--url", "http://h/"]) else {
            panic!("not bench")
        };
        assert_eq!(b.qps, Rate::PerSecond(defaults::BENCH_QPS));
        assert_eq!(
            (b.run.duration, b.run.timeout, b.run.num_workers),
            (defaults::BENCH_DURATION, defaults::TIMEOUT, None)
        );
        let Command::Fireworks(f) = parse(&["llm"]) else {
            panic!("not fireworks")
        };
        assert_eq!(f.qps, Rate::PerSecond(defaults::LLM_QPS));
        assert_eq!(
            (f.run.duration, f.run.timeout, f.run.num_workers),
            (
                defaults::LLM_DURATION,
                defaults::LLM_TIMEOUT,
                Some(defaults::LLM_WORKERS)
            )
        );
        assert_eq!(
            (f.model.as_str(), f.prompt.as_str(), f.url.as_str()),
            (defaults::LLM_MODEL, defaults::LLM_PROMPT, defaults::LLM_URL)
        );
        assert_eq!(
            (f.max_tokens, f.stream, f.api),
            (defaults::LLM_MAX_TOKENS, true, Api::Completions)
        );
        let Command::Serve(s) = parse(&["serve"]) else {
            panic!("not serve")
        };
        let limits = Limits::default();
        assert_eq!(
            (s.max_qps, s.max_duration, s.max_workers),
            (limits.max_qps, limits.max_duration, limits.max_workers)
        );
    }

    #[test]
    fn stream_takes_the_apis_words() {
        for (args, want) in [
            (&["--stream", "false"][..], false),
            (&["--stream", "False"], false),
            (&["--stream=true"], true),
            (&["--stream", "True"], true),
            // The bare flag of earlier versions still means true.
            (&["--stream"], true),
            (&["--stream", "--api", "chat"], true),
        ] {
            let mut argv = vec!["fireworks"];
            argv.extend_from_slice(args);
            let Command::Fireworks(f) = parse(&argv) else {
                panic!("not fireworks")
            };
            assert_eq!(f.stream, want, "{args:?}");
        }
        for word in ["yes", "1", "TRUE", "no"] {
            let e = Cli::try_parse_from(["pacer", "fireworks", "--stream", word]).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{word}");
        }
    }
}
