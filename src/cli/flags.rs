//! The flags of the commands that run a benchmark (`bench`, `fireworks`/`llm`, `demo`), named as
//! wrk, hey, oha, vegeta and k6 users type them: the URL positional, durations with units,
//! hyphenated long names first (the original's underscore names still work, hidden), and short
//! flags only where one of those tools has the habit (`-c`, `-z`/`-d`, `-q`, `-t`, `-H`, `-X`/`-m`,
//! `-o`, `-j`). Every flag that takes a value shows its default in `--help`, computed ones
//! included. Turning the flags into an `Input` and checking them is `bench`'s.

use std::path::PathBuf;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{ArgAction, Args};

use super::EXIT_CODES;
use super::duration::parse_secs;
use super::stages::{self, StageList};
use crate::llm::{Api, LengthDist, PayloadStyle};
use crate::plan::{History, Rate, ThinkTime, defaults, parse_bool};
use crate::report::secs_text;
use crate::shard::ShardIndex;
use crate::shard::time::{UnixNanos, parse_time};
use crate::slo;
use crate::sweep;

/// clap keeps a default's text as a `&'static str`; the defaults are numbers. One text per call
/// site, made once (what `default_value_t` does inside).
macro_rules! shown {
    ($value:expr) => {{
        static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        TEXT.get_or_init(|| $value.to_string()).as_str()
    }};
}

/// Flags every run shares (SPEC §2, §3). The defaults shown are `pacer bench`'s; `pacer
/// fireworks` sets its own (see [`LlmArgs`]).
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Requests per second (fractions allowed), or `max`: each connection sends its next request
    /// as soon as the last one ends (closed loop, as wrk)
    #[arg(
        long,
        short = 'q',
        value_name = "QPS",
        default_value_t = Rate::PerSecond(defaults::BENCH_QPS),
        value_parser = parse_rate,
        allow_negative_numbers = true,
    )]
    pub qps: Rate,
    /// How long to send requests: 250ms, 5s, 1m30s, 2h (a bare number is seconds)
    #[arg(
        long,
        short = 'z',
        visible_short_alias = 'd',
        value_name = "DURATION",
        default_value = shown!(secs_text(defaults::BENCH_DURATION)),
        value_parser = parse_secs,
        allow_hyphen_values = true,
    )]
    pub duration: f64,
    /// Send N requests (hey's and oha's -n): at a fixed rate the duration is N / --qps; with
    /// --qps max, stop after N sends [default: --qps × --duration]
    #[arg(
        long = "count",
        short = 'n',
        value_name = "N",
        value_parser = parse_whole::<u64>,
        conflicts_with_all = ["duration", "stages"],
    )]
    pub count: Option<u64>,
    #[arg(
        long = "num-workers",
        alias = "num_workers",
        short = 'c',
        value_name = "N",
        value_parser = parse_whole::<i64>,
        allow_negative_numbers = true,
        help = workers_help(),
    )]
    pub num_workers: Option<i64>,
    /// Longest wait for a response, and for a free connection before a request is given up as
    /// not sent; units as --duration
    #[arg(
        long,
        value_name = "DURATION",
        default_value = shown!(secs_text(defaults::TIMEOUT)),
        value_parser = parse_secs,
        allow_hyphen_values = true,
    )]
    pub timeout: f64,
    /// HTTP method [default: GET]
    #[arg(long, short = 'X', visible_short_alias = 'm')]
    pub method: Option<String>,
    /// Extra request header, repeat for more [default: none]
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Request body: TEXT, @FILE for a file's contents, @- for standard input [default: none]
    #[arg(long, value_name = "TEXT|@FILE", allow_hyphen_values = true)]
    pub body: Option<String>,
    /// Request body from FILE (oha's -D), as --body @FILE [default: none]
    #[arg(
        long = "body-file",
        short = 'D',
        value_name = "FILE",
        conflicts_with = "body"
    )]
    pub body_file: Option<PathBuf>,
    /// How send times are spaced: evenly, or as a Poisson process of the same mean rate
    #[arg(long, value_parser = ["constant", "poisson"], default_value = "constant")]
    pub arrival: String,
    /// Seed of the Poisson arrivals (and of an LLM run's --shuffle and drawn token lengths), to
    /// repeat a run [default: random, echoed in the report's config]
    #[arg(long)]
    pub seed: Option<u64>,
    #[arg(long, short = 't', value_name = "N", value_parser = parse_whole::<usize>, help = threads_help())]
    pub threads: Option<usize>,
    /// Sends due within this of each other may go out in one wake-up of the thread, the first
    /// at most this late (fixed rate; 0 wakes for every send): 50us, 1ms (a bare number is
    /// seconds). Given, it applies to any arrival process [default: constant arrivals 50us when
    /// a thread sends at least every 50us (20,000/s per thread), else 0; Poisson 0; the
    /// report's config.pacing says what was chosen and why]
    #[arg(long = "max-lateness", alias = "max_lateness", value_name = "DURATION", value_parser = parse_secs, allow_hyphen_values = true)]
    pub max_lateness: Option<f64>,
    /// Extra trusted CA certificate, a PEM file [default: none]
    #[arg(long = "ca-cert", alias = "ca_cert", value_name = "FILE")]
    pub ca_cert: Option<String>,
    /// A new connection for every request (oha's --disable-keepalive): each request says
    /// `Connection: close`, and its connection is closed after the response
    #[arg(long = "no-keepalive", alias = "disable-keepalive")]
    pub no_keepalive: bool,
    /// Do not verify TLS certificates (the report says so)
    #[arg(long)]
    pub insecure: bool,
    /// Run the worker threads as SCHED_FIFO (needs root or CAP_SYS_NICE; fixed rate only): a due
    /// send then never waits for another task's time slice. The report says if it was refused
    #[arg(long)]
    pub realtime: bool,
    /// Instead of --qps and --duration: stages run one after the other, RATE:DURATION,...
    /// (e.g. 100:30s,200:30s,400:1m; durations as --duration) [default: none]
    #[arg(
        long,
        value_name = "STAGES",
        value_parser = stages::parse_list,
        conflicts_with_all = ["qps", "duration"],
        allow_hyphen_values = true,
    )]
    pub stages: Option<StageList>,
    /// Reach each stage's rate at its end, moving linearly from the previous stage's rate (k6's
    /// ramping arrival rate), instead of stepping; the first stage holds its rate, so a first
    /// stage of 0s sets where the ramp starts: --stages 100:0s,1000:10s --ramp goes from 100 to
    /// 1000 req/s in 10 s
    #[arg(long, requires = "stages")]
    pub ramp: bool,
    /// Count the requests that succeeded and met every objective, per second (goodput) and as a
    /// share, as vLLM does, e.g. 'time_to_first_token<=200ms,time_per_output_token<=50ms'
    /// [default: none]
    #[arg(long, value_name = "OBJECTIVES", value_parser = parse_goodput)]
    pub goodput: Vec<String>,
    /// Fail the run (exit 3) unless this holds, e.g. 'response_time_p99<=200ms',
    /// 'error_rate<=1%', 'achieved_qps>=990', 'health==ok'; repeat for more. The report lists
    /// each with its measured value [default: none]
    #[arg(long = "threshold", value_name = "EXPR", value_parser = parse_threshold)]
    pub thresholds: Vec<String>,
    /// Also write the JSON report to FILE; the text report still goes to the terminal
    /// [default: none]
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Print the JSON report on stdout instead of the text report
    #[arg(long, short = 'j')]
    pub json: bool,
    /// Send only shard I of N of the run: the requests j with j mod N = I, over its share of
    /// the connections; `env/N` reads I from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job).
    /// Merge the shards' --state files with `pacer merge` [default: the whole run]
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<ShardIndex>,
    /// Start the schedule at this wall-clock time, unix seconds or RFC 3339 with Z or ±hh:mm
    /// (2026-01-01T00:00:00Z), waiting until then: shards started together line up
    /// [default: at once]
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub start_at: Option<UnixNanos>,
    /// Write the run's mergeable state to FILE for `pacer merge`; `-` prints it on stdout, one
    /// line after the report (for a pod's log) [default: none]
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Also write the report as one self-contained HTML page to FILE [default: none]
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Write one JSON line per scheduled request to FILE: its times, status, error, bytes
    /// [default: none]
    #[arg(long, value_name = "FILE")]
    pub requests: Option<PathBuf>,
    /// Length of one interval of the report's timeline: 500ms, 10s, 1m (a bare number is
    /// seconds) [default: 1s, longer when the run (its duration + 2 × timeout) would make more
    /// than 100,000 intervals]
    #[arg(long, value_name = "DURATION", value_parser = parse_secs, allow_hyphen_values = true)]
    pub interval: Option<f64>,
    /// Push the run's live figures (requests, responses, errors, achieved rate, rolling p50/p99)
    /// as OTLP/HTTP JSON metrics to this collector URL (e.g. http://127.0.0.1:4318/v1/metrics)
    /// every --interval and once at the end, from a thread of its own; a failed push is counted
    /// and said once, never fatal [default: none]
    #[arg(long, value_name = "URL")]
    pub otlp: Option<String>,
    /// No settings banner and no progress line on stderr (errors still go there)
    #[arg(long)]
    pub quiet: bool,
    /// Draw the progress line even when stderr is not a terminal (for tests and benchmarks)
    #[arg(long, hide = true)]
    pub force_progress: bool,
}

#[derive(Args, Debug)]
#[command(after_help = EXIT_CODES)]
pub struct BenchArgs {
    /// Target URL, http:// or https:// (required, here or as --url, unless --targets)
    #[arg(value_name = "URL", required_unless_present_any = ["url", "targets"])]
    pub target: Option<String>,
    /// Target URL, as the positional URL (required, one or the other, unless --targets)
    #[arg(long, value_name = "URL", conflicts_with = "target")]
    pub url: Option<String>,
    /// Requests from a targets file (vegeta's format): `METHOD URL` lines, each optionally
    /// followed by `Name: value` header lines and an `@FILE` body line, a blank line between
    /// targets, `#` comments; all on one origin. The report counts each target apart
    /// [default: none]
    #[arg(long, value_name = "FILE", conflicts_with_all = ["target", "url"])]
    pub targets: Option<PathBuf>,
    /// How requests spread over --targets: each in turn, or drawn at random (seeded by --seed)
    #[arg(long = "targets-order", value_parser = ["in-order", "random"], default_value = "in-order")]
    pub targets_order: String,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub repeat: RepeatArgs,
}

/// `--repeat N` on `bench` and `fireworks` (a sweep refuses it: its steps are its repeats).
#[derive(Args, Debug, Clone)]
pub struct RepeatArgs {
    /// Run the benchmark N times, each reported as usual, then a summary of every figure: its
    /// mean across the runs and 95% confidence interval (docs/compare.md). With -o FILE, FILE
    /// holds every run's report and the summary; --html, --requests and --state get one file
    /// per run (run.html → run.1.html, run.2.html, ...). A --threshold is checked on each run
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub repeat: u32,
    /// The pause between two repeated runs: 500ms, 2s, 1m (a bare number is seconds)
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_pause)]
    pub repeat_pause: f64,
}

/// `--repeat-pause`: a duration from 0 to an hour.
fn parse_pause(s: &str) -> Result<f64, String> {
    let secs = parse_secs(s)?;
    if (0.0..=3600.0).contains(&secs) {
        Ok(secs)
    } else {
        Err(format!("{s:?} is not a pause from 0 to 1h"))
    }
}

/// `--num-workers`' default is computed from the rate: say how, with the numbers it uses
/// (`plan::default_num_workers`, capped at [`defaults::MAX_WORKERS`] on the command line).
fn workers_help() -> String {
    format!(
        "Most connections open at once, which is also the most requests in flight [default: \
         the qps rounded up, at least 1 and at most {}; {} with --qps max]",
        defaults::MAX_WORKERS,
        defaults::SATURATION_WORKERS
    )
}

/// `--threads`' default, as `plan::checks::threads` decides it, with this machine's core count.
fn threads_help() -> String {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!(
        "OS threads, each with its own event loop [default: at a fixed rate the fewest that carry \
         it, {} qps per thread, at most the cores ({cores} here); with --qps max the cores; at \
         most --num-workers and the number of requests]",
        defaults::THREAD_QPS
    )
}

/// The original `fireworks_ai_benchmark.py`'s defaults replace `pacer bench`'s for the shared
/// run flags; the body is the JSON payload, so `--body` is not offered.
#[derive(Args, Debug)]
#[command(
    after_help = EXIT_CODES,
    mut_arg("qps", |a| a.default_value(shown!(Rate::PerSecond(defaults::LLM_QPS)))),
    mut_arg("duration", |a| a.default_value(shown!(secs_text(defaults::LLM_DURATION)))),
    mut_arg("timeout", |a| a.default_value(shown!(secs_text(defaults::LLM_TIMEOUT)))),
    mut_arg("num_workers", |a| a
        .default_value(shown!(defaults::LLM_WORKERS))
        .help("Most connections open at once, which is also the most requests in flight")),
    mut_arg("method", |a| a.help("HTTP method [default: POST]")),
    mut_arg("body", |a| a.hide(true)),
)]
pub struct LlmArgs {
    /// Completions (or chat) URL of an OpenAI-compatible API (or --url)
    #[arg(value_name = "URL")]
    pub target: Option<String>,
    /// The API's URL, as the positional URL [default: Fireworks' completions API,
    /// https://api.fireworks.ai/inference/v1/completions, billed: more than 10 requests there
    /// need the URL named or --yes]
    // The doc comment is the --help text, where the URL reads best bare.
    #[allow(rustdoc::bare_urls)]
    #[arg(long, value_name = "URL", conflicts_with = "target")]
    pub url: Option<String>,
    /// Send more than a few requests to the default URL (a billed API) without naming it
    #[arg(long)]
    pub yes: bool,
    /// API token, sent as `Authorization: Bearer TOKEN` (required)
    #[arg(long, env = "FIREWORKS_API_KEY", hide_env_values = true)]
    pub token: Option<String>,
    /// Model name, the payload's `model`
    #[arg(long, default_value = defaults::LLM_MODEL)]
    pub model: String,
    /// Prompt, the payload's `prompt` (chat: the user message)
    #[arg(long, default_value = defaults::LLM_PROMPT)]
    pub prompt: String,
    /// Most tokens per answer, the payload's `max_tokens`
    #[arg(
        long = "max-tokens",
        alias = "max_tokens",
        value_name = "N",
        default_value_t = defaults::LLM_MAX_TOKENS,
        value_parser = parse_whole::<i64>,
        allow_negative_numbers = true,
    )]
    pub max_tokens: i64,
    /// Stream the response (Server-Sent Events): true or false (also True, False); a bare
    /// --stream means true. A `stream` in --payload wins
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
    /// `completions`, or `chat` (/v1/chat/completions with one user message)
    #[arg(long, default_value = "completions", value_parser = api_parser())]
    pub api: Api,
    /// The default payload: `fireworks` (the original's: logprobs, echo, a stop string, top_k,
    /// user, ...) or `openai` (model, prompt or messages, max_tokens, stream, stream_options
    /// only) [default: fireworks for a host under fireworks.ai, openai for any other]
    #[arg(long, value_name = "STYLE", value_parser = payload_style_parser())]
    pub payload_style: Option<PayloadStyle>,
    /// JSON object merged over the default payload; a `null` value removes the key
    /// [default: none]
    #[arg(long, value_name = "JSON")]
    pub payload: Option<String>,
    #[command(flatten)]
    pub workload: WorkloadArgs,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub repeat: RepeatArgs,
}

/// Where an LLM run's prompts come from and how long prompts and answers are (docs/llm.md,
/// "Data sets, token lengths, tokenizers").
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Prompts and tokens")]
pub struct WorkloadArgs {
    /// Prompts from a file: JSON lines with "prompt", "messages" (chat) or ShareGPT
    /// "conversations" (optionally "max_tokens"), or a ShareGPT JSON array; cycled when the run
    /// needs more [default: none: every request sends --prompt]
    #[arg(long, value_name = "FILE")]
    pub dataset: Option<PathBuf>,
    /// Largest --dataset file read: bytes, or with a unit (KB, MB, GB, KiB, MiB, GiB)
    #[arg(
        long = "max-dataset-bytes",
        value_name = "SIZE",
        default_value = "1GiB",
        value_parser = parse_bytes,
    )]
    pub max_dataset_bytes: u64,
    /// Most bytes the workload may hold (its distinct request bytes: prompts, copies per drawn
    /// max_tokens, a data set), estimated before it is built: bytes, or with a unit
    #[arg(
        long = "max-workload-bytes",
        value_name = "SIZE",
        default_value_t = crate::plan::defaults::MAX_WORKLOAD_BYTES,
        value_parser = parse_bytes,
    )]
    pub max_workload_bytes: u64,
    /// ShareGPT: the length of the reply to each prompt sets its max_tokens (counted by
    /// --tokenizer, else about 0.75 words per token)
    #[arg(long = "output-len-from-dataset")]
    pub output_len_from_dataset: bool,
    /// Take the prompts in a shuffled order, seeded by --seed [default: file order]
    #[arg(long)]
    pub shuffle: bool,
    /// Synthetic prompts of drawn lengths in tokens: MEAN, MEAN:STDDEV (normal) or
    /// uniform:MIN:MAX [default: none: --prompt]
    #[arg(long = "input-tokens", value_name = "LENGTHS", value_parser = parse_lengths)]
    pub input_tokens: Option<LengthDist>,
    /// Each request's max_tokens, drawn: MEAN, MEAN:STDDEV or uniform:MIN:MAX (a data set
    /// line's own max_tokens wins) [default: --max-tokens]
    #[arg(long = "output-tokens", value_name = "LENGTHS", value_parser = parse_lengths)]
    pub output_tokens: Option<LengthDist>,
    /// Add "ignore_eos": true to the payload, so vLLM-compatible servers generate max_tokens
    /// tokens
    #[arg(long = "ignore-eos")]
    pub ignore_eos: bool,
    /// The model's Hugging Face tokenizer.json: exact prompt lengths, and token counts when the
    /// server sends no usage [default: none: lengths are approximate]
    #[arg(long, value_name = "FILE")]
    pub tokenizer: Option<PathBuf>,
    /// Every synthetic prompt (--input-tokens) starts with the same N tokens, to exercise
    /// prefix caching [default: 0]
    #[arg(long = "prefix-tokens", value_name = "N", value_parser = parse_whole::<u32>)]
    pub prefix_tokens: Option<u32>,
    /// G distinct shared prefixes of --prefix-tokens each instead of one; prompt i starts with
    /// prefix i mod G (round robin), and --requests records each request's `prefix_group`
    /// [default: 1]
    #[arg(long = "prefix-groups", value_name = "G", value_parser = parse_whole::<u32>)]
    pub prefix_groups: Option<u32>,
    /// Prompt tokens a chat template adds: the expected excess of the server's
    /// usage.prompt_tokens over the --tokenizer's count, not a mismatch (token_mismatch)
    #[arg(long = "prompt-overhead-tokens", value_name = "N", default_value_t = 0, value_parser = parse_whole::<u64>)]
    pub prompt_overhead_tokens: u64,
    /// Run the --dataset's conversations (ShareGPT multi-turn, or JSON lines of "turns") as
    /// multi-turn sessions with --api chat: the rate starts sessions, each turn sends the history
    /// so far on the session's own connection (docs/llm.md, "Sessions")
    #[arg(long)]
    pub sessions: bool,
    /// At most N turns per session [default: every turn of the conversation]
    #[arg(long = "max-turns", value_name = "N", requires = "sessions", value_parser = parse_whole::<u32>)]
    pub max_turns: Option<u32>,
    /// Time between a turn's answer and the next turn: DURATION, exp:MEAN or uniform:MIN:MAX
    /// (e.g. 500ms, exp:500ms, uniform:200ms:800ms) [default: 0]
    #[arg(long = "think-time", value_name = "TIME", requires = "sessions", value_parser = parse_think_time)]
    pub think_time: Option<ThinkTime>,
    /// A header sent with every turn, its value the session's id (e.g. X-Session-ID), so a
    /// router can keep a session on one replica [default: none]
    #[arg(long = "session-header", value_name = "NAME", requires = "sessions")]
    pub session_header: Option<String>,
    /// The assistant turns of the history: `server` (the answers the server streamed) or
    /// `dataset` (the data set's answers) [default: server]
    #[arg(long, value_name = "FROM", requires = "sessions", value_parser = parse_history)]
    pub history: Option<History>,
    /// Replay a trace: JSON lines {"timestamp": ms, "input_length": n, "output_length": m,
    /// "hash_ids": [..]} (Mooncake) or a CSV timestamp,input_tokens,output_tokens; requests go
    /// out at its times, prompts share the blocks its hash_ids name [default: none]
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = ["qps", "duration", "count", "stages", "arrival", "dataset", "input_tokens", "output_tokens", "shuffle", "sessions"],
    )]
    pub trace: Option<PathBuf>,
    /// How much faster than recorded --trace is replayed (2: twice as fast)
    #[arg(
        long = "replay-speed",
        value_name = "X",
        default_value_t = crate::plan::defaults::REPLAY_SPEED,
        requires = "trace",
    )]
    pub replay_speed: f64,
    /// Tokens per hash_ids block of --trace
    #[arg(
        long = "block-tokens",
        value_name = "N",
        default_value_t = crate::plan::defaults::BLOCK_TOKENS,
        value_parser = parse_whole::<u32>,
        requires = "trace",
    )]
    pub block_tokens: u32,
}

fn parse_think_time(s: &str) -> Result<ThinkTime, String> {
    ThinkTime::parse(s, parse_secs)
}

fn parse_history(s: &str) -> Result<History, String> {
    History::from_name(s).ok_or_else(|| format!("{s:?}: expected server or dataset"))
}

/// What a sweep adds to the run flags (`pacer sweep`, `pacer sweep-llm`). Flattened after
/// them, it also reshapes them for a sweep.
#[derive(Args, Debug, Clone)]
#[command(
    // Hidden and refused when given (`cli::sweep` says which flag to use instead): their
    // defaults here are markers no one types.
    mut_arg("qps", |a| a.hide(true).default_value("0")),
    mut_arg("duration", |a| a.hide(true).default_value("0")),
    mut_arg("count", |a| a.hide(true)),
    mut_arg("shard", |a| a.hide(true)),
    mut_arg("start_at", |a| a.hide(true)),
    mut_arg("state", |a| a.hide(true)),
    mut_arg("stages", |a| a.hide(true)),
    mut_arg("ramp", |a| a.hide(true)),
    mut_arg("requests", |a| a.hide(true)),
    mut_arg("output", |a| a.help("Also write the sweep's JSON to FILE [default: none]")),
    mut_arg("html", |a| a.help("Also write the sweep as an HTML page with a latency-vs-rate \
        chart [default: none]")),
    mut_arg("json", |a| a.help("Print the sweep's JSON on stdout instead of the table")),
    mut_arg("timeout", |a| a.help(SWEEP_TIMEOUT_HELP)),
    mut_arg("thresholds", |a| a.help("A step passes only if this holds over it, e.g. \
        'response_time_p99<=200ms', 'error_rate<=1%'; repeat for more. The knee is the highest \
        rate whose step passed; a failing step does not change the exit code [default: \
        error_rate<=1%]")),
)]
pub struct SweepFlags {
    /// Constant-rate steps after the probe, evenly from 10% to 100% of its peak
    #[arg(
        long,
        value_name = "N",
        default_value_t = sweep::STEPS,
        value_parser = parse_whole::<usize>,
        conflicts_with = "rates",
    )]
    pub steps: usize,
    /// The steps' rates instead of a probe, req/s, comma-separated (100,200,400); run
    /// ascending [default: from the probe's peak]
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        value_parser = parse_number,
        allow_negative_numbers = true,
    )]
    pub rates: Option<Vec<f64>>,
    /// How long the saturation probe runs (closed loop over --num-workers connections); units
    /// as --step-duration
    #[arg(
        long,
        value_name = "DURATION",
        default_value = shown!(secs_text(sweep::PROBE_DURATION)),
        value_parser = parse_secs,
        allow_hyphen_values = true,
        conflicts_with = "rates",
    )]
    pub probe_duration: f64,
    /// How long each step runs: 500ms, 10s, 1m (a bare number is seconds)
    #[arg(
        long,
        value_name = "DURATION",
        default_value = shown!(secs_text(sweep::STEP_DURATION)),
        value_parser = parse_secs,
        allow_hyphen_values = true,
    )]
    pub step_duration: f64,
    /// Quiet time between two runs, for the target to settle
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "0s",
        value_parser = parse_secs,
        allow_hyphen_values = true,
    )]
    pub pause: f64,
    /// A step passes only if its achieved rate is at least this share of the asked rate
    #[arg(
        long,
        value_name = "SHARE",
        default_value_t = sweep::MIN_ACHIEVED,
        value_parser = parse_number,
        allow_negative_numbers = true,
    )]
    pub min_achieved: f64,
}

/// `--timeout` of a sweep (its units are those of `--step-duration`: `--duration` is hidden).
const SWEEP_TIMEOUT_HELP: &str = "Longest wait for a response, and for a free connection \
    before a request is given up as not sent; units as --step-duration";

/// `--num-workers` of a sweep: one cap for every run, the probe's included. `default` when clap
/// has none to show (`sweep-llm` keeps `fireworks`' default, which clap shows).
fn sweep_workers_help(default: Option<usize>) -> String {
    let shown = default.map_or(String::new(), |d| format!(" [default: {d}]"));
    format!(
        "Most connections open at once, in the probe and in every step: the peak is what the \
         target gives through this many{shown}"
    )
}

/// `pacer sweep`: the run flags of `bench`, but the sweep sets each run's rate and length.
#[derive(Args, Debug)]
#[command(
    after_help = EXIT_CODES,
    mut_arg("num_workers", |a| a.help(sweep_workers_help(Some(defaults::SATURATION_WORKERS)))),
    mut_arg("repeat", |a| a.hide(true)),
    mut_arg("repeat_pause", |a| a.hide(true)),
)]
pub struct SweepArgs {
    #[command(flatten)]
    pub bench: BenchArgs,
    #[command(flatten)]
    pub sweep: SweepFlags,
}

/// `pacer sweep-llm`: the flags of `fireworks`, the probe a closed loop over --num-workers
/// streams.
#[derive(Args, Debug)]
#[command(
    after_help = EXIT_CODES,
    mut_arg("num_workers", |a| a.help(sweep_workers_help(None))),
    mut_arg("repeat", |a| a.hide(true)),
    mut_arg("repeat_pause", |a| a.hide(true)),
)]
pub struct SweepLlmArgs {
    #[command(flatten)]
    pub llm: LlmArgs,
    #[command(flatten)]
    pub sweep: SweepFlags,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Requests per second of the plain benchmark
    #[arg(long, short = 'q', default_value_t = 200.0)]
    pub qps: f64,
    /// How long each benchmark runs; units as `bench --duration`
    #[arg(
        long,
        short = 'z',
        visible_short_alias = 'd',
        value_name = "DURATION",
        default_value = "3s",
        value_parser = parse_secs
    )]
    pub duration: f64,
}

/// `I/N`, or `env/N` with I from the environment Kubernetes sets.
fn parse_shard(s: &str) -> Result<ShardIndex, String> {
    ShardIndex::parse(s, |name| std::env::var(name).ok())
}

/// Checked here so that a malformed expression is refused before the run, naming the flag; the
/// plan parses it again (the API's way in).
fn parse_threshold(s: &str) -> Result<String, String> {
    slo::parse_thresholds(s)
        .map(|_| s.trim().to_string())
        .map_err(|e| e.to_string())
}

/// Checked here for the same reason as `parse_threshold`.
fn parse_goodput(s: &str) -> Result<String, String> {
    slo::goodput::parse_objectives(s)
        .map(|_| s.trim().to_string())
        .map_err(|e| e.to_string())
}

fn parse_rate(s: &str) -> Result<Rate, String> {
    s.parse()
}

/// A number (range checks are the command's, which names the flag and the value).
fn parse_number(s: &str) -> Result<f64, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number"))
}

/// A whole number. Range checks are `bench`'s, which names the flag and the value.
fn parse_whole<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number"))
}

/// `--input-tokens` and `--output-tokens`: the error says at which character and what was expected.
fn parse_lengths(s: &str) -> Result<LengthDist, String> {
    s.parse()
        .map_err(|e: crate::llm::LengthError| e.to_string())
}

/// A size in bytes: a whole number, optionally followed by a unit (B, KB, MB, GB: powers of
/// 1000; KiB, MiB, GiB: powers of 1024), case-insensitive.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => {
            return Err(format!(
                "{s:?} is not a size (bytes, or with KB, MB, GB, KiB, MiB, GiB)"
            ));
        }
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("{s:?} is not a size of at least 1 byte"))
}

/// The API's boolean words ([`parse_bool`]), so a flag and a request field read alike.
fn parse_bool_arg(s: &str) -> Result<bool, String> {
    parse_bool(s).ok_or_else(|| format!("{s:?} is not true or false"))
}

/// Lists the styles in `--help` and in the error for any other.
fn payload_style_parser() -> impl TypedValueParser<Value = PayloadStyle> {
    PossibleValuesParser::new(PayloadStyle::ALL.map(PayloadStyle::name)).try_map(|s: String| {
        PayloadStyle::from_name(&s).ok_or_else(|| format!("{s:?} is not a payload style"))
    })
}

/// Lists the names in `--help` and in the error for any other.
fn api_parser() -> impl TypedValueParser<Value = Api> {
    let names = [Api::Completions.name(), Api::Chat.name()];
    PossibleValuesParser::new(names)
        .try_map(|s: String| Api::from_name(&s).ok_or_else(|| format!("{s:?} is not an API")))
}
