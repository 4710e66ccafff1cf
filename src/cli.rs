//! The command line: the clap definitions of every command, and what each does. The commands
//! that run a benchmark share their flags (`flags`) and one path from flags to report
//! (`bench`: the same [`Input`] the API builds, the same
//! [`Plan::new`](crate::plan::Plan::new)); durations are read by [`duration`]. This file keeps
//! the command list, the server and mock commands, the demo and the exit codes. `main` only wires.

mod bench;
pub mod duration;
mod flags;
mod progress;
mod signals;
mod stages;
mod sweep;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::api::{self, AllowTarget, ApiConfig};
use crate::llm::Api;
use crate::mock::{Fault, MockConfig, MockServer, ServerTimings};
use crate::plan::{Input, Limits, LlmInput, Plan, Rate, SessionInput, WorkloadInput, defaults};
pub use bench::Output;
pub use flags::{
    BenchArgs, DemoArgs, LlmArgs, RepeatArgs, RunArgs, SweepArgs, SweepFlags, SweepLlmArgs,
    WorkloadArgs, parse_bytes,
};

/// The process's exit codes (docs/cli.md "Exit codes"; [`EXIT_CODES`] in `--help`).
pub mod exit {
    /// The run completed; its failed requests are in the report.
    pub const OK: i32 = 0;
    /// The run could not start, or no request got a response (DNS failure, connection refused
    /// everywhere, ...), with the reason on stderr.
    pub const RUN_FAILED: i32 = 1;
    /// Bad usage: an unknown flag, a bad value (the message names the flag), a missing URL, an
    /// `--output`, `--requests` or `--html` file that cannot be written. clap's own usage errors
    /// exit 2 too.
    pub const USAGE: i32 = 2;
    /// A `--threshold` did not hold (the report lists each with its value).
    pub const THRESHOLD: i32 = 3;
    /// Interrupted by SIGINT (Ctrl-C) or SIGTERM, as shells report a SIGINT: after the first,
    /// the partial report was written; a second one ends the process at once.
    pub const INTERRUPTED: i32 = 130;
}

/// `--help`'s account of [`exit`].
pub const EXIT_CODES: &str = "\
Exit codes:
  0    the run completed (its failed requests are in the report)
  1    the run could not start, or no request got a response (DNS failure, connection
       refused, ...): the reason is on stderr
  2    bad usage: an unknown flag, a bad value, a missing URL, an --output, --requests or
       --html file that cannot be written
  3    a --threshold did not hold (the report lists each with its measured value)
  130  interrupted (Ctrl-C or SIGTERM): the partial report was written; a second Ctrl-C
       ends at once";

#[derive(Parser, Debug)]
#[command(
    name = "pacer",
    version,
    about = "HTTP load generator with precise pacing and exact LLM timings",
    after_help = EXIT_CODES
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the JSON API (POST /benchmark, POST /fireworks_benchmark, GET /runs).
    Serve(ServeArgs),
    /// Benchmark a URL at a fixed rate (or `--qps max` for closed-loop saturation).
    Bench(Box<BenchArgs>),
    /// Benchmark an OpenAI-compatible completions or chat API (Fireworks, vLLM, ...).
    #[command(visible_alias = "llm")]
    Fireworks(Box<LlmArgs>),
    /// Find how much a URL takes: a saturation probe, then constant-rate steps up to its peak
    /// (or --rates), a table of latency and errors per rate, and the knee.
    Sweep(Box<SweepArgs>),
    /// `sweep` for an OpenAI-compatible API, with the options of `fireworks`: the probe is a
    /// closed loop over --num-workers streams; the table adds time to first token and per
    /// output token.
    #[command(name = "sweep-llm", visible_alias = "llm-sweep")]
    SweepLlm(Box<SweepLlmArgs>),
    /// Run the built-in mock targets on loopback.
    Mock(MockArgs),
    /// Start the mock and benchmark it: a real report, no network needed.
    Demo(DemoArgs),
    /// Render a saved JSON report (`bench --json > run.json`) as one self-contained HTML page.
    Html(HtmlArgs),
    /// Merge the states of a run's shards (`--shard i/N --state FILE`) into one report, as if
    /// one process had sent the whole run.
    Merge(MergeArgs),
    /// Compare two runs (reports, shard states or --requests files): per figure both values,
    /// the change, and whether it is real or noise.
    Compare(CompareArgs),
    /// Print the API's OpenAPI 3 document (what `GET /openapi.json` serves): every route,
    /// request field and report field, with types, defaults and limits.
    Openapi,
    /// List the timing families the reports carry: name, scope (request, token or chunk), unit,
    /// which runs report it, which requests give it samples, and what it spans.
    Metrics(MetricsArgs),
}

#[derive(Args, Debug)]
pub struct MetricsArgs {
    /// Print the list as JSON
    #[arg(long, short = 'j')]
    pub json: bool,
}

#[derive(Args, Debug)]
#[command(after_help = EXIT_CODES)]
pub struct MergeArgs {
    /// State files (`--state FILE`), directories (every *.json in them), or `-`: standard input
    /// read as lines, any line holding a state (`kubectl logs ... | pacer merge -`)
    #[arg(value_name = "STATE", required = true)]
    pub states: Vec<PathBuf>,
    /// Print the JSON report on stdout instead of the text report
    #[arg(long, short = 'j')]
    pub json: bool,
    /// Also write the JSON report to FILE [default: none]
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Also write the report as an HTML page to FILE [default: none]
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Refuse a state (a line of a log or standard input, or a state file) longer than this:
    /// bytes, or with a unit (KB, MB, GB, KiB, MiB, GiB)
    #[arg(
        long,
        value_name = "SIZE",
        default_value_t = defaults::MAX_STATE_BYTES,
        value_parser = parse_bytes,
    )]
    pub max_state_bytes: u64,
}

/// `pacer compare`'s exit codes.
pub const COMPARE_EXIT_CODES: &str = "\
Exit codes:
  0    compared; no --fail-if held
  2    bad usage: a malformed --fail-if (refused before any file is read), a file that cannot
       be read, is not a report, state or --requests file, or the two are not of one kind
  3    a --fail-if held (or could not be checked: a figure missing from a run)";

#[derive(Args, Debug)]
#[command(after_help = COMPARE_EXIT_CODES)]
pub struct CompareArgs {
    /// The base run: a report (`-o`), a shard state (`--state`) or a `--requests` file
    #[arg(value_name = "BASE")]
    pub base: PathBuf,
    /// The new run, of the same kind as BASE
    #[arg(value_name = "NEW")]
    pub new: PathBuf,
    /// Exit 3 when a change holds: METRIC OP CHANGE, the change relative
    /// ('response_time_p99>+10%') or absolute in the metric's unit ('mean_latency>+2ms',
    /// 'error_rate>+0.01'); the threshold metrics; repeat for more [default: none]
    #[arg(long = "fail-if", value_name = "CONDITION")]
    pub fail_if: Vec<String>,
    /// Print the comparison as JSON instead of the text table
    #[arg(long, short = 'j')]
    pub json: bool,
    /// Also write the comparison's JSON to FILE [default: none]
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Also write an HTML page with both runs on one chart per timing family [default: none]
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// The smallest change, as a share of the base, that can be judged real: a significant
    /// change smaller than this is noise (runs of one setup differ by about 1% at p50)
    #[arg(long, value_name = "PERCENT", default_value = "2%", value_parser = parse_percent)]
    pub min_change: f64,
    /// Refuse a file larger than this: bytes, or with a unit (KB, MB, GB, KiB, MiB, GiB); a
    /// report or state is also held to the merge's --max-state-bytes default
    #[arg(long, value_name = "SIZE", default_value = "2GiB", value_parser = parse_bytes)]
    pub max_bytes: u64,
}

#[derive(Args, Debug)]
pub struct HtmlArgs {
    /// The JSON report, as `--json` prints it or the API returns it.
    pub report: std::path::PathBuf,
    /// The HTML file to write; `-` for standard output [default: the report's path with .html:
    /// run.json → run.html]
    #[arg(long, short = 'o')]
    pub output: Option<std::path::PathBuf>,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on. Off loopback, set --api-key: anyone who can reach the server can
    /// direct load with it.
    #[arg(long, default_value = api::DEFAULT_ADDR)]
    pub addr: String,
    /// Benchmark runs allowed at once (synchronous and async); more get 429.
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
    /// Largest data set file (`"dataset"`, a file in --data-dir) a request may read: bytes, or
    /// with a unit (KB, MB, GB, KiB, MiB, GiB).
    #[arg(long, default_value = "1GiB", value_parser = parse_bytes)]
    pub max_dataset_bytes: u64,
    /// Most bytes one request's workload may hold (its distinct request bytes: prompts, copies
    /// per drawn max_tokens, a data set), estimated before it is built; more get 422: bytes, or
    /// with a unit (KB, MB, GB, KiB, MiB, GiB).
    #[arg(long, default_value_t = defaults::MAX_WORKLOAD_BYTES, value_parser = parse_bytes)]
    pub max_workload_bytes: u64,
    /// Latest `start_at` a request may ask for, in seconds from when it arrives (a run waiting
    /// for its start holds a run slot); later ones get 422.
    #[arg(long, default_value_t = defaults::MAX_START_DELAY, value_parser = parse_seconds)]
    pub max_start_delay: f64,
    /// Require `Authorization: Bearer KEY` (or `X-API-Key: KEY`) on every route but /health.
    /// Visible to every local user in the process list: prefer --api-key-file or
    /// PACER_API_KEY.
    #[arg(long, env = "PACER_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Read the API key from FILE (its first line; surrounding blanks ignored), so it never
    /// appears in the process list.
    #[arg(long, value_name = "FILE")]
    pub api_key_file: Option<PathBuf>,
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
    /// previous response); slower ones are closed (408). The body has --io-timeout.
    #[arg(long, default_value_t = api::DEFAULT_HEAD_TIMEOUT, value_parser = parse_seconds)]
    pub head_timeout: f64,
    /// Seconds a request body may take to arrive once its head has, and an answer to be taken
    /// by the client; slower ones are cut (408 for a body) and their request thread freed.
    #[arg(long, default_value_t = defaults::API_IO_TIMEOUT, value_parser = parse_seconds)]
    pub io_timeout: f64,
    /// Connections from one client address (IPv6: one /64) served at once; more get 429 and are
    /// closed. GET /health is answered without a thread and never counts.
    #[arg(long, default_value_t = defaults::API_MAX_BUSY_PER_CLIENT, value_parser = parse_at_least_one)]
    pub max_busy_per_client: usize,
    /// Request threads kept for clients that have none being served (at most half of
    /// --max-connections): another client's flood leaves these free.
    #[arg(long, default_value_t = defaults::API_NEW_CLIENT_SLOTS)]
    pub new_client_slots: usize,
    /// Finished async runs (`"async": true`) kept for GET /runs/{id}; past this many, the
    /// oldest to finish is forgotten first. Running ones are always kept.
    #[arg(long, default_value_t = api::runs::DEFAULT_KEEP, value_parser = parse_at_least_one)]
    pub keep_runs: usize,
    /// The directory a request's `"dataset"` and `"tokenizer"` paths are relative to. They must
    /// resolve (symbolic links followed) to regular files inside it; anything else is a 422.
    /// Without it, requests may name no file (inline `"prompts"` still work).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<std::path::PathBuf>,
}

/// `2%` (or `2`) as the fraction 0.02, from 0 to 1000%.
fn parse_percent(s: &str) -> Result<f64, String> {
    let t = s.trim();
    match t.strip_suffix('%').unwrap_or(t).trim().parse::<f64>() {
        Ok(x) if (0.0..=1000.0).contains(&x) => Ok(x / 100.0),
        _ => Err(format!("{s:?} is not a percentage from 0% to 1000%")),
    }
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

#[derive(Args, Debug)]
pub struct MockArgs {
    /// Port to listen on (0: any free port, printed at start)
    #[arg(long, default_value_t = 8081)]
    pub port: u16,
    /// IP address to listen on (0.0.0.0 to be reachable from other machines)
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Share of `/` requests answered 400 (the original dummy API's mix).
    #[arg(long, default_value_t = 0.2)]
    pub error_rate: f64,
    /// Answer every `/` request with 200.
    #[arg(long)]
    pub all_200: bool,
    /// Seed of the 200/400 mix of `/` (--error-rate): the same seed answers the same sequence
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
    /// LLM routes: the first N tokens of an answer are reasoning (chat: reasoning_content
    /// deltas), counted in usage's completion_tokens_details.reasoning_tokens.
    #[arg(long, default_value_t = 0)]
    pub reasoning_tokens: u32,
    /// LLM routes: a chat answer ends with a tool call (its last 2 tokens are tool_calls deltas).
    #[arg(long)]
    pub tool_call: bool,
    /// LLM routes: add N (may be negative) to the prompt and completion tokens of the usage sent,
    /// as a server that miscounts.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub usage_skew: i64,
    /// LLM routes: say N prompt tokens (at most the prompt's) came from a prefix cache, in
    /// usage.prompt_tokens_details.cached_tokens.
    #[arg(long, default_value_t = 0)]
    pub cached_tokens: u32,
    /// LLM routes: how answers report the server's own timings: fireworks (its
    /// fireworks-server-time-to-first-token header and perf_metrics), llama (llama.cpp's timings
    /// object: prompt_ms = --ttft-ms, predicted_per_token_ms = --itl-ms, cache_n) or none.
    #[arg(long, default_value = "fireworks", value_name = "STYLE",
          value_parser = server_timings_parser())]
    pub server_timings: ServerTimings,
    /// LLM routes: write one JSON line per request to FILE (its connection number, chat
    /// messages, headers but Authorization, the body's keys), to see what a client sent
    /// [default: none]
    #[arg(long, value_name = "FILE")]
    pub log_requests: Option<PathBuf>,
    /// Serve HTTPS with a fresh self-signed CA.
    #[arg(long)]
    pub tls: bool,
    /// Where to write the CA certificate (PEM) with --tls [default: a file in the temporary
    /// directory, printed at start]
    #[arg(long)]
    pub ca_out: Option<PathBuf>,
    /// Misbehave on every request (reset, close, short-body, garbage, huge-headers, bad-chunk,
    /// endless, drip, stall, continue, endless-103, 429, 503, sse-broken-json, sse-error,
    /// sse-no-done).
    #[arg(long)]
    pub fault: Option<String>,
}

/// The command line, parsed; on a usage error clap's message (with a "did you mean" of ours when
/// clap has none: its similarity measure misses a swapped pair of letters such as `--qsp` for
/// `--qps`) and exit 2, as `Cli::parse` does.
pub fn parse() -> Cli {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(mut e) => {
            suggest(&mut e, &args);
            e.exit()
        }
    }
}

/// Adds a suggestion to an unknown-flag error that has none: the subcommand's long flag within
/// one edit (a swap of two neighbours counting as one; two edits for names of 6 letters or
/// more).
fn suggest(e: &mut clap::Error, args: &[std::ffi::OsString]) {
    use clap::CommandFactory;
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() != ErrorKind::UnknownArgument || e.get(ContextKind::SuggestedArg).is_some() {
        return;
    }
    let Some(ContextValue::String(given)) = e.get(ContextKind::InvalidArg) else {
        return;
    };
    let Some(typed) = given.strip_prefix("--") else {
        return;
    };
    let typed = typed.split('=').next().unwrap_or(typed).to_string();
    let mut cmd = Cli::command();
    cmd.build();
    let sub = args
        .iter()
        .skip(1)
        .filter_map(|a| a.to_str())
        .find(|a| !a.starts_with('-'))
        .and_then(|name| cmd.find_subcommand(name).cloned());
    let Some(sub) = sub else { return };
    let best = sub
        .get_arguments()
        .filter(|a| !a.is_hide_set())
        .filter_map(|a| a.get_long())
        .map(|long| (edits(&typed, long), long))
        .filter(|(d, long)| *d <= if long.len() >= 6 { 2 } else { 1 })
        .min();
    if let Some((_, long)) = best {
        e.insert(
            ContextKind::SuggestedArg,
            ContextValue::String(format!("--{long}")),
        );
    }
}

/// Edits (insert, delete, replace, swap of neighbours) from `a` to `b`: the optimal string
/// alignment distance.
fn edits(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// What went wrong, for `main` to print in one line and exit with `code` (one of [`exit`]).
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
            let api_key = match &a.api_key_file {
                Some(file) => Some(read_api_key(file)?),
                None => a.api_key,
            };
            if api_key.as_deref().is_some_and(|k| k.trim().is_empty()) {
                return Err(err(exit::USAGE, "--api-key (or PACER_API_KEY) is empty"));
            }
            check_listen_addr(&a.addr)?;
            if let Some(dir) = &a.data_dir {
                // Checked here too, for a usage error's exit code; the server resolves it again.
                api::DataDir::open(dir).map_err(|e| err(exit::USAGE, e.to_string()))?;
            }
            let addr = a.addr.clone();
            let cfg = ApiConfig {
                addr: a.addr,
                limits: Limits {
                    max_qps: a.max_qps,
                    max_duration: a.max_duration,
                    max_workers: a.max_workers,
                    max_dataset_bytes: a.max_dataset_bytes,
                    max_workload_bytes: a.max_workload_bytes,
                    max_start_delay: a.max_start_delay,
                },
                max_runs: a.max_runs,
                api_key,
                allow_realtime: a.allow_realtime,
                allow_targets: a.allow_target,
                max_connections: a.max_connections,
                head_timeout: Duration::from_secs_f64(a.head_timeout),
                io_timeout: Duration::from_secs_f64(a.io_timeout),
                max_busy_per_client: a.max_busy_per_client,
                new_client_slots: a.new_client_slots,
                keep_runs: a.keep_runs,
                data_dir: a.data_dir,
            };
            api::serve(cfg).map_err(|e| {
                use std::io::ErrorKind as K;
                let msg = match e.kind() {
                    K::AddrInUse | K::PermissionDenied | K::AddrNotAvailable => {
                        listen_error(&addr, &e)
                    }
                    _ => format!("serve: {e}"),
                };
                err(exit::RUN_FAILED, msg)
            })
        }
        Command::Bench(a) => bench::repeat(&bench_input(&a)?, &Output::of(&a.run), &a.repeat),
        Command::Openapi => {
            let doc = api::openapi::document();
            // A Value always serializes; a closed stdout (`pacer openapi | head`) is not an error.
            let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
            let _ = writeln!(std::io::stdout(), "{text}");
            Ok(())
        }
        Command::Fireworks(a) => {
            let out = Output {
                default_url: a.target.is_none() && a.url.is_none(),
                confirmed: a.yes,
                ..Output::of(&a.run)
            };
            bench::repeat(&llm_input(&a)?, &out, &a.repeat)
        }
        Command::Sweep(a) => {
            no_repeat(&a.bench.repeat)?;
            let input = sweep::input(bench_input(&a.bench)?, &a.bench.run, &a.sweep)?;
            sweep::run(&input, &sweep_output(&a.bench.run))
        }
        Command::SweepLlm(a) => {
            no_repeat(&a.llm.repeat)?;
            if a.llm.target.is_none() && a.llm.url.is_none() && !a.llm.yes {
                let host = crate::plan::Target::parse(defaults::LLM_URL)
                    .map(|t| t.host)
                    .unwrap_or_default();
                bench::check_default_url(None, &host)?;
            }
            let input = sweep::input(llm_input(&a.llm)?, &a.llm.run, &a.sweep)?;
            sweep::run(&input, &sweep_output(&a.llm.run))
        }
        Command::Mock(a) => mock(a),
        Command::Demo(a) => demo(a),
        Command::Html(a) => html(a),
        Command::Merge(a) => merge(a),
        Command::Compare(a) => compare(a),
        Command::Metrics(a) => {
            if a.json {
                let list = serde_json::to_string_pretty(&crate::metric::to_json())
                    .map_err(|e| err(exit::RUN_FAILED, e.to_string()))?;
                println!("{list}");
            } else {
                print!("{}", crate::metric::listing());
            }
            Ok(())
        }
    }
}

/// `pacer html`: the page beside the report unless `-o` says where (`-`: standard output).
fn html(a: HtmlArgs) -> Result<(), CliError> {
    let bad = |e: crate::html::HtmlError| err(exit::USAGE, e.to_string());
    match a.output.as_deref() {
        Some(p) if p.as_os_str() == "-" => {
            let text = std::fs::read(&a.report).map_err(|e| {
                err(
                    exit::USAGE,
                    format!("cannot read {}: {e}", a.report.display()),
                )
            })?;
            let report: serde_json::Value = serde_json::from_slice(&text).map_err(|e| {
                err(
                    exit::USAGE,
                    format!(
                        "{} is not a pacer report: not JSON ({e})",
                        a.report.display()
                    ),
                )
            })?;
            let page = crate::html::render(&report).map_err(bad)?;
            let _ = std::io::stdout().lock().write_all(page.as_bytes());
            Ok(())
        }
        Some(p) => crate::html::render_file(&a.report, p).map_err(bad),
        None => {
            let out = crate::html::default_output(&a.report).ok_or_else(|| {
                err(
                    exit::USAGE,
                    format!(
                        "{} already ends in .html: name the page with -o FILE",
                        a.report.display()
                    ),
                )
            })?;
            crate::html::render_file(&a.report, &out).map_err(bad)?;
            eprintln!("pacer: wrote {}", out.display());
            Ok(())
        }
    }
}

/// `pacer merge`: states that cannot be read or merged are bad input (exit 2), named.
fn merge(a: MergeArgs) -> Result<(), CliError> {
    let merged = crate::shard::merge_sources(&a.states, std::io::stdin().lock(), a.max_state_bytes)
        .map_err(|e| err(exit::USAGE, e.to_string()))?;
    let json = merged.to_json();
    let pretty = serde_json::to_string_pretty(&json).unwrap_or_default();
    if let Some(path) = &a.output {
        std::fs::write(path, format!("{pretty}\n")).map_err(|e| {
            err(
                exit::USAGE,
                format!("cannot write --output {}: {e}", path.display()),
            )
        })?;
    }
    if let Some(path) = &a.html {
        crate::html::write(&json, path).map_err(|e| err(exit::USAGE, e.to_string()))?;
    }
    let text = if a.json { pretty } else { merged.to_text() };
    let _ = writeln!(std::io::stdout().lock(), "{text}");
    // The run's thresholds, checked on the merged report as one process's run checks them.
    let failed = crate::report::failed_thresholds(&json);
    if !failed.is_empty() {
        return Err(err(
            exit::THRESHOLD,
            format!("threshold failed: {}", failed.join(", ")),
        ));
    }
    Ok(())
}

/// A sweep's steps are its repeats: `--repeat` is `bench`'s and `fireworks`'.
fn no_repeat(r: &RepeatArgs) -> Result<(), CliError> {
    if r.repeat != 1 {
        return Err(err(
            exit::USAGE,
            "--repeat does not apply to a sweep (each step is a run; repeat the sweep itself)",
        ));
    }
    Ok(())
}

/// `pacer compare`: the conditions parsed first, so a malformed one is refused before any file
/// is read; a file that cannot be compared is bad input (exit 2); a condition that holds, 3.
fn compare(a: CompareArgs) -> Result<(), CliError> {
    let usage = |e: &dyn std::fmt::Display| err(exit::USAGE, e.to_string());
    let changes = crate::slo::change::parse_all(&a.fail_if)
        .map_err(|e| err(exit::USAGE, format!("--fail-if {e}")))?;
    let base = crate::compare::load(&a.base, a.max_bytes).map_err(|e| usage(&e))?;
    let new = crate::compare::load(&a.new, a.max_bytes).map_err(|e| usage(&e))?;
    let c = crate::compare::compare(base, new, &changes, a.min_change).map_err(|e| usage(&e))?;
    let json = c.to_json();
    let pretty = bench::pretty(&json);
    if let Some(path) = &a.output {
        bench::OutputFile::open(path, "--output")?.write(&pretty)?;
    }
    if let Some(path) = &a.html {
        crate::html::write(&json, path).map_err(|e| usage(&e))?;
    }
    let text = if a.json { pretty } else { c.to_text() };
    let _ = writeln!(std::io::stdout().lock(), "{text}");
    let held: Vec<&str> = c.failed().iter().map(|c| c.expression.as_str()).collect();
    if !held.is_empty() {
        return Err(err(
            exit::THRESHOLD,
            format!("--fail-if held: {}", held.join(", ")),
        ));
    }
    Ok(())
}

/// Validates the flags of `bench` or `fireworks` into the run's plan without running it: the
/// command line's own limits and messages. Tests and tools check a command line this way.
pub fn plan_of(cli: &Cli) -> Result<Plan, CliError> {
    let input = match &cli.command {
        Command::Bench(a) => bench_input(a)?,
        Command::Fireworks(a) => llm_input(a)?,
        _ => return Err(err(exit::USAGE, "only bench and fireworks run a benchmark")),
    };
    bench::plan(&input)
}

fn bench_input(a: &BenchArgs) -> Result<Input, CliError> {
    // clap lets exactly one of the three through.
    let targets = match &a.targets {
        Some(path) => crate::plan::targets::read(path).map_err(|e| err(exit::USAGE, e))?,
        None => Vec::new(),
    };
    let url = a
        .target
        .clone()
        .or_else(|| a.url.clone())
        .or_else(|| targets.first().map(|t| t.url.clone()))
        .unwrap_or_default();
    let mut input = bench::input(url, &a.run, None)?;
    input.targets = targets;
    input.targets_random = a.targets_order == "random";
    Ok(input)
}

fn sweep_output(run: &RunArgs) -> sweep::SweepOutput {
    sweep::SweepOutput {
        report: Output::of(run),
        html: run.html.clone(),
    }
}

fn llm_input(a: &LlmArgs) -> Result<Input, CliError> {
    let payload = match &a.payload {
        None => None,
        Some(p) => match serde_json::from_str::<serde_json::Value>(p) {
            Ok(serde_json::Value::Object(m)) => Some(m),
            _ => return Err(err(exit::USAGE, "--payload must be a JSON object")),
        },
    };
    let llm = LlmInput {
        token: a.token.clone().unwrap_or_default(),
        model: a.model.clone(),
        prompt: a.prompt.clone(),
        max_tokens: a.max_tokens,
        stream: a.stream,
        api: a.api,
        payload_style: a.payload_style,
        payload,
    };
    let url = a
        .target
        .clone()
        .or_else(|| a.url.clone())
        .unwrap_or_else(|| defaults::LLM_URL.to_string());
    let mut input = bench::input(url, &a.run, Some(llm))?;
    let w = &a.workload;
    input.workload = WorkloadInput {
        dataset: w.dataset.clone(),
        prompts: None,
        max_dataset_bytes: Some(w.max_dataset_bytes),
        max_workload_bytes: Some(w.max_workload_bytes),
        output_len_from_dataset: w.output_len_from_dataset,
        shuffle: w.shuffle,
        input_tokens: w.input_tokens,
        output_tokens: w.output_tokens,
        ignore_eos: w.ignore_eos,
        tokenizer: w.tokenizer.clone(),
        prefix_tokens: w.prefix_tokens,
        prefix_groups: w.prefix_groups,
        prompt_overhead_tokens: w.prompt_overhead_tokens,
        sessions: w.sessions.then(|| SessionInput {
            max_turns: w.max_turns,
            think_time: w.think_time.unwrap_or_default(),
            header: w.session_header.clone(),
            history: w.history.unwrap_or_default(),
        }),
        trace: None,
    };
    if let Some(path) = &w.trace {
        let replay = crate::plan::trace::load(
            path,
            Some(w.replay_speed),
            Some(w.block_tokens),
            w.max_dataset_bytes,
        )
        .map_err(|e| err(exit::USAGE, e.to_string()))?;
        input.set_trace(replay);
    }
    Ok(input)
}

/// `--api-key-file`: the key is the file's first line, trimmed. Refused when the file cannot be
/// read, is larger than a key could be, or holds no key.
fn read_api_key(file: &Path) -> Result<String, CliError> {
    const MAX_KEY_FILE: u64 = 64 << 10;
    let fail = |why: String| {
        err(
            exit::USAGE,
            format!("--api-key-file {}: {why}", file.display()),
        )
    };
    let meta = std::fs::metadata(file).map_err(|e| fail(e.to_string()))?;
    if meta.len() > MAX_KEY_FILE {
        return Err(fail(format!(
            "{} bytes: a key file holds one line (at most {MAX_KEY_FILE} bytes)",
            meta.len()
        )));
    }
    let text = std::fs::read_to_string(file).map_err(|e| fail(e.to_string()))?;
    let key = text.lines().next().unwrap_or("").trim();
    if key.is_empty() {
        return Err(fail(
            "the file holds no key (its first line is empty)".into(),
        ));
    }
    Ok(key.to_string())
}

/// `--addr` must be `host:port`; a bare port is the likeliest slip, so say what was meant.
fn check_listen_addr(addr: &str) -> Result<(), CliError> {
    if addr.trim().parse::<u16>().is_ok() {
        return Err(err(
            exit::USAGE,
            format!(
                "--addr {addr} is a port; the address is host:port (e.g. --addr 127.0.0.1:{addr})"
            ),
        ));
    }
    if !addr.contains(':') {
        return Err(err(
            exit::USAGE,
            format!("--addr {addr:?} is not host:port (e.g. 127.0.0.1:8000)"),
        ));
    }
    Ok(())
}

/// `cannot listen on 127.0.0.1:8081: address in use`, in words rather than an errno.
fn listen_error(addr: &str, e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    let why = match e.kind() {
        K::AddrInUse => "address in use".to_string(),
        K::PermissionDenied => "permission denied (ports below 1024 need privileges)".into(),
        K::AddrNotAvailable => "no such address on this machine".into(),
        _ => e.to_string(),
    };
    format!("cannot listen on {addr}: {why}")
}

/// Lists the styles in `--help` and in the error for any other.
fn server_timings_parser() -> impl clap::builder::TypedValueParser<Value = ServerTimings> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(ServerTimings::ALL.map(ServerTimings::name)).try_map(
        |s: String| ServerTimings::from_name(&s).ok_or_else(|| format!("{s:?} is not a style")),
    )
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
        reasoning_tokens: a.reasoning_tokens,
        tool_call: a.tool_call,
        usage_skew: a.usage_skew,
        cached_tokens: a.cached_tokens,
        server_timings: a.server_timings,
        log_requests: a.log_requests.clone(),
        tls: a.tls,
        fault: match &a.fault {
            Some(f) => Some(
                f.parse::<Fault>()
                    .map_err(|e| err(exit::USAGE, e.to_string()))?,
            ),
            None => None,
        },
        ..MockConfig::default()
    };
    if !(0.0..=1.0).contains(&cfg.error_rate) {
        return Err(err(exit::USAGE, "--error-rate must be between 0 and 1"));
    }
    let ip: std::net::IpAddr = a.host.parse().map_err(|_| {
        err(
            exit::USAGE,
            format!("--host {:?} is not an IP address", a.host),
        )
    })?;
    let addr = SocketAddr::new(ip, a.port);
    let server = MockServer::start(addr, cfg).map_err(|e| {
        err(
            exit::RUN_FAILED,
            format!("mock: {}", listen_error(&addr.to_string(), &e)),
        )
    })?;
    if let Some(pem) = server.ca_cert_pem() {
        let path = a.ca_out.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!("pacer-mock-ca-{}.pem", std::process::id()))
        });
        std::fs::write(&path, pem)
            .map_err(|e| err(exit::RUN_FAILED, format!("writing {}: {e}", path.display())))?;
        eprintln!(
            "pacer mock: CA certificate written to {} (pass it to --ca-cert)",
            path.display()
        );
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
            exit::USAGE,
            format!("{ms} is not a non-negative number of milliseconds"),
        ))
    }
}

fn demo(a: DemoArgs) -> Result<(), CliError> {
    let cfg = MockConfig::default();
    let server = MockServer::start(SocketAddr::from(([127, 0, 0, 1], 0)), cfg.clone())
        .map_err(|e| err(exit::RUN_FAILED, format!("mock: {e}")))?;
    let base = server.url();
    println!(
        "pacer demo: mock target at {base} ({}% of `/` answered 400, like the original's dummy API)\n",
        cfg.error_rate * 100.0
    );
    let mut input = Input::new(format!("{base}/"), Rate::PerSecond(a.qps), a.duration);
    input.num_workers = Some(20);
    bench::bench(&input, &Output::default())?;
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
        payload_style: None,
        payload: None,
    });
    bench::bench(&input, &Output::default())?;
    server.shutdown();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

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
        assert_eq!(b.run.qps, Rate::PerSecond(defaults::BENCH_QPS));
        assert_eq!(
            (b.run.duration, b.run.timeout, b.run.num_workers),
            (defaults::BENCH_DURATION, defaults::TIMEOUT, None)
        );
        let Command::Fireworks(f) = parse(&["llm"]) else {
            panic!("not fireworks")
        };
        assert_eq!(f.run.qps, Rate::PerSecond(defaults::LLM_QPS));
        assert_eq!(
            (f.run.duration, f.run.timeout, f.run.num_workers),
            (
                defaults::LLM_DURATION,
                defaults::LLM_TIMEOUT,
                Some(defaults::LLM_WORKERS)
            )
        );
        assert_eq!(
            (f.model.as_str(), f.prompt.as_str(), f.url.as_deref()),
            (defaults::LLM_MODEL, defaults::LLM_PROMPT, None)
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

    fn bench(args: &[&str]) -> BenchArgs {
        let mut argv = vec!["bench"];
        argv.extend_from_slice(args);
        match parse(&argv) {
            Command::Bench(b) => *b,
            other => panic!("not bench: {other:?}"),
        }
    }

    #[test]
    fn the_flags_people_already_type() {
        // wrk, hey and oha: a positional URL, short flags, durations with units.
        let b = bench(&[
            "http://h/",
            "-c",
            "8",
            "-z",
            "250ms",
            "-q",
            "100",
            "-t",
            "2",
        ]);
        assert_eq!(b.target.as_deref(), Some("http://h/"));
        assert_eq!(
            (b.run.num_workers, b.run.duration, b.run.qps, b.run.threads),
            (Some(8), 0.25, Rate::PerSecond(100.0), Some(2))
        );
        let b = bench(&[
            "-d",
            "1m30s",
            "http://h/",
            "-m",
            "POST",
            "-H",
            "A: b",
            "-o",
            "r.json",
        ]);
        assert_eq!(b.run.duration, 90.0);
        assert_eq!(b.run.method.as_deref(), Some("POST"));
        assert_eq!(b.run.headers, ["A: b"]);
        assert_eq!(b.run.output, Some(PathBuf::from("r.json")));
        let b = bench(&["--url", "http://h/", "-X", "PUT", "--timeout", "1.5s", "-j"]);
        assert_eq!((b.url.as_deref(), b.target), (Some("http://h/"), None));
        assert_eq!(
            (b.run.method.as_deref(), b.run.timeout, b.run.json),
            (Some("PUT"), 1.5, true)
        );
        // A bare number stays seconds, as the original's flags were.
        assert_eq!(bench(&["http://h/", "--duration", "7"]).run.duration, 7.0);
        assert_eq!(
            bench(&["http://h/", "--duration", "2h"]).run.duration,
            7200.0
        );
    }

    #[test]
    fn the_originals_underscore_names_still_work() {
        let b = bench(&[
            "--url",
            "http://h/",
            "--num_workers",
            "5",
            "--ca_cert",
            "ca.pem",
        ]);
        assert_eq!(
            (b.run.num_workers, b.run.ca_cert.as_deref()),
            (Some(5), Some("ca.pem"))
        );
        let b = bench(&["http://h/", "--num-workers", "6", "--ca-cert", "x.pem"]);
        assert_eq!(
            (b.run.num_workers, b.run.ca_cert.as_deref()),
            (Some(6), Some("x.pem"))
        );
        for flag in ["--max_tokens", "--max-tokens"] {
            let Command::Fireworks(f) = parse(&["llm", flag, "7"]) else {
                panic!("not fireworks")
            };
            assert_eq!(f.max_tokens, 7, "{flag}");
        }
        // Hidden: --help shows the hyphenated names only.
        let help = Cli::command()
            .find_subcommand_mut("bench")
            .unwrap()
            .render_long_help()
            .to_string();
        assert!(
            help.contains("--num-workers") && !help.contains("--num_workers"),
            "{help}"
        );
    }

    #[test]
    fn payload_style_and_server_timings_take_their_names() {
        use crate::llm::PayloadStyle;
        let Command::Fireworks(f) = parse(&["llm"]) else {
            panic!("not fireworks")
        };
        assert_eq!(f.payload_style, None, "by the host");
        let Command::Fireworks(f) = parse(&["llm", "--payload-style", "openai"]) else {
            panic!("not fireworks")
        };
        assert_eq!(f.payload_style, Some(PayloadStyle::OpenAi));
        let e = Cli::try_parse_from(["pacer", "llm", "--payload-style", "vllm"]).unwrap_err();
        assert_eq!(e.exit_code(), exit::USAGE);
        let Command::Mock(m) = parse(&["mock"]) else {
            panic!("not mock")
        };
        assert_eq!(m.server_timings, ServerTimings::Fireworks);
        let Command::Mock(m) = parse(&["mock", "--server-timings", "llama"]) else {
            panic!("not mock")
        };
        assert_eq!(m.server_timings, ServerTimings::Llama);
        let e = Cli::try_parse_from(["pacer", "mock", "--server-timings", "x"]).unwrap_err();
        assert_eq!(e.exit_code(), exit::USAGE);
    }

    #[test]
    fn the_url_is_positional_or_a_flag_never_both() {
        let Command::Fireworks(f) = parse(&["llm", "http://127.0.0.1:9/v1/completions"]) else {
            panic!("not fireworks")
        };
        assert_eq!(
            f.target.as_deref(),
            Some("http://127.0.0.1:9/v1/completions")
        );
        let Command::Fireworks(f) = parse(&["fireworks"]) else {
            panic!("not fireworks")
        };
        assert_eq!((f.target, f.url.as_deref()), (None, None));
        for argv in [
            &["pacer", "bench"][..],
            &["pacer", "bench", "http://a/", "--url", "http://b/"],
            &["pacer", "llm", "http://a/", "--url", "http://b/"],
        ] {
            let e = Cli::try_parse_from(argv).unwrap_err();
            assert_eq!(e.exit_code(), exit::USAGE, "{argv:?}");
        }
    }

    #[test]
    fn a_day_long_soak_is_a_valid_plan() {
        let cli =
            Cli::try_parse_from(["pacer", "bench", "http://h/", "-z", "24h", "-q", "10"]).unwrap();
        let p = plan_of(&cli).unwrap();
        assert_eq!(
            (p.duration, p.count),
            (Duration::from_secs(86_400), 864_000)
        );
        let cli =
            Cli::try_parse_from(["pacer", "llm", "http://h/v1/completions", "-z", "2h"]).unwrap();
        assert_eq!(
            plan_of(&cli).unwrap_err().msg,
            "--token is required (or set FIREWORKS_API_KEY)"
        );
    }

    #[test]
    fn workload_flags() {
        let Command::Fireworks(f) = parse(&["llm"]) else {
            panic!("not fireworks")
        };
        let w = &f.workload;
        assert_eq!(w.max_dataset_bytes, 1 << 30);
        assert!(w.dataset.is_none() && w.input_tokens.is_none() && !w.shuffle);
        let Command::Fireworks(f) = parse(&[
            "llm",
            "--dataset",
            "d.jsonl",
            "--shuffle",
            "--output-tokens",
            "uniform:1:9",
            "--ignore-eos",
            "--tokenizer",
            "t.json",
            "--max-dataset-bytes",
            "512MiB",
            "--output-len-from-dataset",
        ]) else {
            panic!("not fireworks")
        };
        let w = &f.workload;
        assert_eq!(w.dataset.as_deref(), Some(std::path::Path::new("d.jsonl")));
        assert_eq!(
            w.output_tokens,
            Some(crate::llm::LengthDist::Uniform { min: 1, max: 9 })
        );
        assert!(w.shuffle && w.ignore_eos && w.output_len_from_dataset);
        assert_eq!(w.max_dataset_bytes, 512 << 20);
        for (text, want) in [
            ("1000", Ok(1000)),
            ("2KB", Ok(2000)),
            ("3 kib", Ok(3072)),
            ("1GB", Ok(1_000_000_000)),
            ("0", Err(())),
            ("5 TB", Err(())),
            ("x", Err(())),
            ("99999999999999999999", Err(())),
        ] {
            assert_eq!(parse_bytes(text).map_err(|_| ()), want, "{text}");
        }
        for bad in [
            &["llm", "--input-tokens", "0"][..],
            &["llm", "--output-tokens", "uniform:5"],
            &["llm", "--prefix-tokens", "-1"],
        ] {
            let mut argv = vec!["pacer"];
            argv.extend_from_slice(bad);
            let e = Cli::try_parse_from(argv).unwrap_err();
            assert_eq!(e.exit_code(), exit::USAGE, "{bad:?}");
        }
    }

    #[test]
    fn listen_addresses_are_host_and_port() {
        let e = check_listen_addr("28006").unwrap_err();
        assert_eq!(e.code, exit::USAGE);
        assert_eq!(
            e.msg,
            "--addr 28006 is a port; the address is host:port (e.g. --addr 127.0.0.1:28006)"
        );
        assert_eq!(
            check_listen_addr("localhost").unwrap_err().code,
            exit::USAGE
        );
        assert!(check_listen_addr("localhost:8000").is_ok());
        let in_use = std::io::Error::from(std::io::ErrorKind::AddrInUse);
        assert_eq!(
            listen_error("127.0.0.1:8081", &in_use),
            "cannot listen on 127.0.0.1:8081: address in use"
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
