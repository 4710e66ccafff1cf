//! One benchmark from the command line: flags become the same [`Input`] the API builds, checked
//! here first with messages that name the flag and the value (`--qps must be > 0 (got 0)`) and
//! the command line's own ceilings ([`Limits::command_line`]: a person at their terminal may run
//! a day-long soak), then validated by the shared [`Plan::new`]. Before the run: the `--output`,
//! `--html` and `--requests` files opened, so a bad path fails at once, and the settings on
//! stderr. During it: the progress line, and Ctrl-C ([`signals`](super::signals)). After it:
//! the report and its files, exit code 130 when interrupted, and 1 with the reason when no
//! request got any response.

use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::Value;

use super::flags::RunArgs;
use super::progress::{self, Line};
use super::{CliError, err, exit, signals};
use crate::engine::{self, Controls, Progress, RunStats, Stop};
use crate::live::Figures;
use crate::live::otlp::{self, Push};
use crate::plan::stages;
use crate::plan::{Input, Limits, LlmInput, Plan, PlanError, Rate, default_num_workers, defaults};
use crate::report::{self, no_response, secs_text};
use crate::shard::report::add_start_late;
use crate::shard::time::format_rfc3339;
use crate::shard::{ShardIndex, ShardState};

/// Where the report goes, and what else is shown and written.
#[derive(Clone, Debug, Default)]
pub struct Output {
    /// The JSON report on stdout instead of the text one.
    pub json: bool,
    /// Also the JSON report in this file.
    pub file: Option<PathBuf>,
    /// The run's mergeable state to this file (`-`: stdout, after the report).
    pub state: Option<PathBuf>,
    /// Also the HTML page in this file.
    pub html: Option<PathBuf>,
    /// One JSON line per request in this file.
    pub requests: Option<PathBuf>,
    /// No banner, no progress line.
    pub quiet: bool,
    /// The progress line even when stderr is not a terminal.
    pub force_progress: bool,
    /// The URL is the built-in default (`pacer fireworks` without one): the banner names its
    /// host, and unless `confirmed`, a run of more than
    /// [`defaults::LLM_DEFAULT_URL_MAX_REQUESTS`] requests to a host off loopback is refused.
    pub default_url: bool,
    /// `--yes`.
    pub confirmed: bool,
    /// Print nothing on stdout (a `--repeat --json` run: the one JSON comes at the end).
    pub no_stdout: bool,
}

impl Output {
    pub fn of(r: &RunArgs) -> Output {
        Output {
            json: r.json,
            file: r.output.clone(),
            state: r.state.clone(),
            html: r.html.clone(),
            requests: r.requests.clone(),
            quiet: r.quiet,
            force_progress: r.force_progress,
            default_url: false,
            confirmed: false,
            no_stdout: false,
        }
    }
}

/// The [`Input`] of `bench` or `fireworks` flags. The URL is the positional one or `--url`
/// (clap lets only one through).
pub fn input(url: String, r: &RunArgs, llm: Option<LlmInput>) -> Result<Input, CliError> {
    let mut input = Input::new(url, r.qps, r.duration);
    input.num_workers = r.num_workers;
    input.timeout = Some(r.timeout);
    input.method = r.method.clone();
    for h in &r.headers {
        let (name, value) = h.split_once(':').ok_or_else(|| {
            err(
                exit::USAGE,
                format!("-H/--header {h:?} must be `Name: value`"),
            )
        })?;
        input
            .headers
            .push((name.trim().to_string(), value.trim().to_string()));
    }
    if llm.is_some() && (r.body.is_some() || r.body_file.is_some()) {
        return Err(err(
            exit::USAGE,
            "--body does not apply to an LLM benchmark: the body is the JSON payload (change it \
             with --payload)",
        ));
    }
    if r.no_keepalive
        && !input
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("connection"))
    {
        input.headers.push(("Connection".into(), "close".into()));
    }
    input.body = body(r)?;
    if let Some(n) = r.count {
        input.duration = count_duration(n, r.qps)?;
        if r.qps == Rate::Max {
            input.max_requests = Some(n);
        }
    }
    input.poisson = r.arrival == "poisson";
    input.seed = r.seed;
    input.threads = r.threads;
    input.max_lateness = r.max_lateness;
    input.ca_cert = r.ca_cert.clone();
    input.insecure = r.insecure;
    input.realtime = r.realtime;
    if let Some(s) = &r.stages {
        input.set_stages(s.0.clone(), r.ramp);
    }
    input.thresholds = r.thresholds.clone();
    input.goodput = r.goodput.clone();
    input.interval = r.interval;
    input.llm = llm;
    input.shard = r.shard.unwrap_or(ShardIndex::WHOLE);
    input.start_at = r.start_at;
    input.otlp = r.otlp.clone();
    Ok(input)
}

/// The request body of `--body TEXT`, `--body @FILE`, `--body @-` (standard input) or
/// `-D FILE`, read once before the run.
fn body(r: &RunArgs) -> Result<Option<String>, CliError> {
    let (file, flag) = match (&r.body, &r.body_file) {
        (Some(b), _) => match b.strip_prefix('@') {
            Some(path) => (PathBuf::from(path), "--body @"),
            None => return Ok(Some(b.clone())),
        },
        (None, Some(f)) => (f.clone(), "-D/--body-file "),
        (None, None) => return Ok(None),
    };
    let bytes = if file.as_os_str() == "-" {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut v).map(|_| v)
    } else {
        std::fs::read(&file)
    }
    .map_err(|e| {
        err(
            exit::USAGE,
            format!("cannot read {flag}{}: {e}", file.display()),
        )
    })?;
    String::from_utf8(bytes).map(Some).map_err(|_| {
        err(
            exit::USAGE,
            format!("{flag}{}: the body must be UTF-8 text", file.display()),
        )
    })
}

/// `-n N`: the duration that makes N requests at `qps` (N / qps, so `qps × duration` rounds to
/// N). A closed loop has no rate to divide by: it stops after N sends
/// ([`Input::max_requests`]), and its duration is only the longest a run may last.
fn count_duration(n: u64, qps: Rate) -> Result<f64, CliError> {
    match qps {
        _ if n == 0 => Err(err(exit::USAGE, "-n/--count must be at least 1 (got 0)")),
        Rate::PerSecond(q) if q > 0.0 && q.is_finite() => Ok(n as f64 / q),
        // --qps's own check names the bad rate.
        Rate::PerSecond(_) => Ok(1.0),
        Rate::Max => Ok(defaults::CLI_MAX_DURATION),
    }
}

/// Validates, runs and reports one benchmark.
pub fn bench(input: &Input, out: &Output) -> Result<(), CliError> {
    run_once(input, out, &mut None)
}

/// `--repeat N`: N runs of `input`, each reported as usual ([`bench`]), `pause` apart, then the
/// summary of every figure across the runs ([`crate::compare::repeat`]) on stdout, and with
/// `-o FILE` one JSON in FILE: `{"kind": "repeat", "runs": [each report], "summary": {...}}`.
/// `--html`, `--requests` and `--state` files get the run's number before their extension. A
/// Ctrl-C stops the run under way as usual and starts no other: the summary covers the runs
/// that finished. A run that fails or cannot start stops the repeats with its error. A
/// threshold is checked on every run; exit 3 when it failed in any.
pub fn repeat(input: &Input, out: &Output, r: &super::RepeatArgs) -> Result<(), CliError> {
    let n = r.repeat as usize;
    if n <= 1 {
        return bench(input, out);
    }
    if out.state.as_deref().is_some_and(|p| p.as_os_str() == "-") {
        return Err(err(
            exit::USAGE,
            "--state - (the state on stdout) does not go with --repeat: name a file, which              each run numbers",
        ));
    }
    // Refused before the first run, as one run's would be.
    plan(input)?;
    let combined = out
        .file
        .as_deref()
        .map(|p| OutputFile::open(p, "--output"))
        .transpose()?;
    let interrupted = signals::interrupted();
    let mut reports = Vec::with_capacity(n);
    let mut failed = Vec::new();
    let mut stopped: Option<CliError> = None;
    for i in 1..=n {
        let nth = |p: &Option<PathBuf>| p.as_deref().map(|p| numbered(p, i));
        let run_out = Output {
            file: None,
            html: nth(&out.html),
            requests: nth(&out.requests),
            state: nth(&out.state),
            no_stdout: out.json,
            ..out.clone()
        };
        if !out.quiet {
            eprintln!("pacer: run {i} of {n}");
        }
        let mut report = None;
        let result = run_once(input, &run_out, &mut report);
        match result {
            Ok(()) => reports.extend(report),
            Err(e) if e.code == exit::THRESHOLD => {
                reports.extend(report);
                failed.push(format!("run {i}: {}", e.msg));
            }
            Err(e) => {
                stopped = Some(e);
                break;
            }
        }
        if i < n {
            let until = std::time::Instant::now() + Duration::from_secs_f64(r.repeat_pause);
            while std::time::Instant::now() < until && !interrupted.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if interrupted.load(Ordering::Relaxed) {
            stopped = Some(err(
                exit::INTERRUPTED,
                format!(
                    "interrupted after {i} of {n} runs: the summary covers those that finished"
                ),
            ));
            break;
        }
    }
    let summary = crate::compare::repeat::summary(&reports);
    let json = serde_json::json!({
        "kind": "repeat",
        "repeat": n,
        "completed": reports.len(),
        "pause": r.repeat_pause,
        "summary": crate::compare::repeat::to_json(&summary),
        "runs": reports,
    });
    let text = if out.json {
        pretty(&json)
    } else {
        crate::compare::repeat::to_text(&summary, reports.len())
    };
    if !reports.is_empty() || out.json {
        let _ = writeln!(std::io::stdout().lock(), "{text}");
    }
    match combined {
        Some(f) if !reports.is_empty() => f.write(&pretty(&json))?,
        Some(f) => f.discard(),
        None => {}
    }
    if let Some(e) = stopped {
        return Err(e);
    }
    if !failed.is_empty() {
        return Err(err(exit::THRESHOLD, failed.join("; ")));
    }
    Ok(())
}

/// `run.html` → `run.3.html` (`run` → `run.3`): run `i`'s file of a `--repeat`.
fn numbered(path: &Path, i: usize) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match path.extension() {
        Some(ext) => format!("{stem}.{i}.{}", ext.to_string_lossy()),
        None => format!("{stem}.{i}"),
    };
    path.with_file_name(name)
}

/// One run; its JSON report goes to `keep` as soon as there is one, whatever the result.
fn run_once(input: &Input, out: &Output, keep: &mut Option<Value>) -> Result<(), CliError> {
    let plan = plan(input)?;
    if out.default_url && !out.confirmed {
        check_default_url(Some(plan.count), &plan.target.host)?;
    }
    let state_path = out.state.as_deref().filter(|p| p.as_os_str() != "-");
    let mut opened = Vec::with_capacity(4);
    for (path, flag) in [
        (out.file.as_deref(), "--output"),
        (out.html.as_deref(), "--html"),
        (out.requests.as_deref(), "--requests"),
        (state_path, "--state"),
    ] {
        let open = if flag == "--requests" {
            OutputFile::live
        } else {
            OutputFile::open
        };
        match path.map(|p| open(p, flag)).transpose() {
            Ok(f) => opened.push(f),
            Err(e) => {
                discard(opened);
                return Err(e);
            }
        }
    }
    let mut files = opened.into_iter();
    let mut next = || files.next().flatten();
    let (json_file, html_file, requests_file, state_file) = (next(), next(), next(), next());
    let setup = report::Settings::of(&plan);
    if !out.quiet {
        let mut banner = report::settings(&setup);
        if out.default_url {
            banner.push_str(&format!(
                "  host {}: the default URL (no --url given), a billed API\n",
                plan.target.host
            ));
        }
        banner.push_str(&shard_settings(&plan));
        let named = [&json_file, &html_file, &requests_file, &state_file];
        for (f, what) in named
            .iter()
            .zip(["JSON report", "HTML report", "every request", "state"])
        {
            if let Some(f) = f {
                banner.push_str(&format!("  {what} to {}\n", f.path.display()));
            }
        }
        eprint!("{banner}");
    }
    let (stats, pushed) = match run_live(&plan, out, requests_file.as_ref().map(|f| &f.file)) {
        Ok(s) => s,
        Err(e) => {
            discard([json_file, html_file, requests_file, state_file]);
            return Err(e);
        }
    };
    let mut json = report::to_json(&setup, &stats);
    add_start_late(&plan, &stats, &mut json);
    if let Some((push, summary)) = &pushed {
        if let Some(w) = summary.warning(&push.url()) {
            eprintln!("pacer: warning: {w}");
        }
        json["otlp"] = summary.to_json(&push.url());
    }
    *keep = Some(json.clone());
    let late = stats.wall.start_late();
    let mut text = if out.json {
        pretty(&json)
    } else if !out.quiet && same_place() {
        // The banner is just above in the same stream: say the settings once.
        report::to_text_body(&setup, &stats)
    } else {
        report::to_text(&setup, &stats)
    };
    if plan.start_at.is_some() && late > 0.0 {
        eprintln!(
            "pacer: started {} late (ready after --start-at); every request was still sent, \
             timed from its intended time",
            secs_text(late)
        );
    }
    // Packing every sample costs time in proportion to the run: only when asked for.
    let state = out
        .state
        .is_some()
        .then(|| ShardState::of_run(&plan, &stats, &stats.wall));
    if let Some(state) = &state
        && out.state.as_deref().is_some_and(|p| p.as_os_str() == "-")
    {
        text.push('\n');
        text.push_str(&state.to_line());
    }
    if !out.no_stdout {
        let _ = writeln!(std::io::stdout().lock(), "{text}");
    }
    if let Some(f) = json_file {
        f.write(&pretty(&json))?;
    }
    if let (Some(f), Some(state)) = (state_file, &state) {
        f.write(&state.to_line())?;
    }
    if let Some(f) = html_file {
        let page = crate::html::render(&json).map_err(|e| err(exit::RUN_FAILED, e.to_string()))?;
        f.write(&page)?;
    }
    if let (Some(f), Some(r)) = (&requests_file, &stats.requests) {
        // A few milliseconds of waiting are a writer thread off its core for a moment.
        if r.waited >= WAITED_WORTH_SAYING {
            eprintln!(
                "pacer: writing --requests {} was slower than the run: the engine threads waited \
                 {} for it in all, and sent that much later (dispatch_delay shows where)",
                f.path.display(),
                report::human(r.waited.as_secs_f64())
            );
        }
        if let Some(e) = &r.error {
            return Err(err(
                exit::RUN_FAILED,
                format!("writing --requests {}: {e}", f.path.display()),
            ));
        }
    }
    if stats.interrupted {
        return Err(err(
            exit::INTERRUPTED,
            "interrupted: the report covers the run until the signal",
        ));
    }
    if let Some(why) = no_response(&setup, &stats) {
        return Err(err(exit::RUN_FAILED, why));
    }
    let failed = report::failed_thresholds(&json);
    if !failed.is_empty() {
        return Err(err(
            exit::THRESHOLD,
            format!("threshold failed: {}", failed.join(", ")),
        ));
    }
    Ok(())
}

/// Refuses a run of more than [`defaults::LLM_DEFAULT_URL_MAX_REQUESTS`] requests (`None`: a
/// sweep, which always sends more) to the default LLM URL when the user named no URL: it is a
/// billed API. Loopback hosts are never refused. Checked before any connection is made.
pub fn check_default_url(requests: Option<u64>, host: &str) -> Result<(), CliError> {
    let h = host.trim_matches(['[', ']']);
    let loopback = h.eq_ignore_ascii_case("localhost")
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    let most = defaults::LLM_DEFAULT_URL_MAX_REQUESTS;
    if loopback || requests.is_some_and(|n| n <= most) {
        return Ok(());
    }
    let how_many = match requests {
        Some(n) => format!("this run would send {n} requests there"),
        None => "a sweep sends many requests there".into(),
    };
    Err(err(
        exit::USAGE,
        format!(
            "no URL given: the default is {}, a billed API ({host}), and {how_many} (more than \
             {most}); name the target (a positional URL or --url), or add --yes to go ahead",
            defaults::LLM_URL
        ),
    ))
}

/// How long the engine threads may wait for the `--requests` writer before the run says so.
const WAITED_WORTH_SAYING: Duration = Duration::from_millis(50);

/// Whether stdout and stderr end in the same place (one terminal, or one pipe or file as with
/// `2>&1`): what goes to either shows in one stream, so the settings need saying only once.
fn same_place() -> bool {
    use std::os::unix::fs::MetadataExt;
    let (a, b) = match (
        std::fs::metadata("/proc/self/fd/1"),
        std::fs::metadata("/proc/self/fd/2"),
    ) {
        (Ok(a), Ok(b)) => (a, b),
        // Unknown (no /proc): say the settings in the report too, as a separate stream needs.
        _ => return false,
    };
    if std::io::stdout().is_terminal() && std::io::stderr().is_terminal() {
        // Two opens of one terminal are different files of the same device.
        return a.rdev() == b.rdev();
    }
    (a.dev(), a.ino()) == (b.dev(), b.ino())
}

fn discard(files: impl IntoIterator<Item = Option<OutputFile>>) {
    for f in files.into_iter().flatten() {
        f.discard();
    }
}

pub(super) fn pretty(json: &Value) -> String {
    // A Value always serializes: its keys are strings and its numbers finite.
    serde_json::to_string_pretty(json).unwrap_or_default()
}

/// The command line's checks, then [`Plan::new`] with its ceilings. Every refusal names the flag.
pub fn plan(input: &Input) -> Result<Plan, CliError> {
    check(input).map_err(|m| err(exit::USAGE, m))?;
    let mut input = input.clone();
    // The command line allows many connections when asked, but its default stays the API's.
    // A session run's default is the plan's own (sessions hold their connections).
    if input.workload.sessions.is_none() {
        input.num_workers = Some(
            input
                .num_workers
                .unwrap_or(default_num_workers(input.qps, defaults::MAX_WORKERS) as i64),
        );
    }
    Plan::new(&input, &Limits::command_line()).map_err(|e| err(exit::USAGE, plan_error(&input, e)))
}

/// What [`Plan::new`] would refuse with the original's wording, said with the flag and the value.
fn check(i: &Input) -> Result<(), String> {
    let limits = Limits::command_line();
    if let Some(l) = &i.llm {
        if l.token.trim().is_empty() {
            return Err("--token is required (or set FIREWORKS_API_KEY)".into());
        }
        if l.max_tokens <= 0 {
            return Err(format!("--max-tokens must be > 0 (got {})", l.max_tokens));
        }
        if l.prompt.is_empty() && !i.workload.brings_prompts() {
            return Err("--prompt must not be empty".into());
        }
    }
    // Stages replace --qps and --duration (clap refuses them together); the plan then checks
    // their limits, naming --stages.
    if let Some(list) = &i.stages {
        stages::check(list, i.ramp).map_err(|e| format!("--stages: {e}"))?;
    } else if let Rate::PerSecond(q) = i.qps {
        if q.is_nan() || q <= 0.0 {
            return Err(format!("--qps must be > 0 (got {q})"));
        }
        if q > limits.max_qps {
            return Err(format!(
                "--qps must be at most {} (got {q})",
                limits.max_qps
            ));
        }
    }
    let timeout = i.timeout.unwrap_or(defaults::TIMEOUT);
    let duration = i.stages.is_none().then_some(("--duration", i.duration));
    for (flag, secs) in duration.into_iter().chain([("--timeout", timeout)]) {
        if secs.is_nan() || secs <= 0.0 {
            return Err(format!("{flag} must be > 0 (got {})", secs_text(secs)));
        }
        if secs > limits.max_duration {
            return Err(format!(
                "{flag} must be at most {} days (got {})",
                limits.max_duration / 86_400.0,
                secs_text(secs)
            ));
        }
    }
    if let Some(n) = i.num_workers {
        if n < 1 {
            return Err(format!("--num-workers must be at least 1 (got {n})"));
        }
        if n as u64 > limits.max_workers as u64 {
            return Err(format!(
                "--num-workers must be at most {} (got {n})",
                limits.max_workers
            ));
        }
    }
    if let (Rate::PerSecond(q), None) = (i.qps, &i.stages) {
        let n = (q * i.duration).round();
        let both = format!("{q} req/s × {}", secs_text(i.duration));
        if n < 1.0 {
            return Err(format!(
                "--qps × --duration must make at least 1 request (got {both} = {})",
                q * i.duration
            ));
        }
        if n > defaults::MAX_REQUESTS {
            return Err(format!(
                "--qps × --duration must make at most 2^53 requests (got {both})"
            ));
        }
    }
    match i.threads {
        Some(0) => return Err("--threads must be at least 1 (got 0)".into()),
        Some(t) if t > defaults::MAX_THREADS => {
            return Err(format!(
                "--threads must be at most {} (got {t})",
                defaults::MAX_THREADS
            ));
        }
        _ => {}
    }
    if i.qps == Rate::Max && i.poisson {
        return Err("--arrival poisson needs a numeric --qps (got max)".into());
    }
    if i.qps == Rate::Max && i.realtime {
        return Err(format!("--realtime {}", crate::plan::MSG_REALTIME_MAX));
    }
    if let Some(ca) = &i.ca_cert
        && let Err(e) = File::open(ca)
    {
        return Err(format!("cannot read --ca-cert {ca}: {e}"));
    }
    Ok(())
}

/// A refusal [`check`] did not foresee, with the flag of the field it names.
fn plan_error(input: &Input, e: PlanError) -> String {
    match e {
        PlanError::BadRequest(msg) => msg.to_string(),
        PlanError::Invalid { field: "url", msg } => {
            let url = input.url.trim();
            let hint = if url.contains("://") {
                String::new()
            } else {
                format!(" (did you mean http://{url}?)")
            };
            format!("URL {url:?}: {msg}{hint}")
        }
        PlanError::Invalid { field, msg } => {
            let flag = match field {
                "headers" => "-H/--header",
                "num_workers" => "--num-workers",
                "max_tokens" => "--max-tokens",
                "ca_cert" => "--ca-cert",
                "thresholds" => "--threshold",
                "stages" => "--stages",
                "ramp" => "--ramp",
                "goodput" => "--goodput",
                other => {
                    let flag = format!("--{}", other.replace('_', "-"));
                    // "dataset x.jsonl: line 3: ..." already names the file: "--dataset x.jsonl: ..."
                    return match msg.strip_prefix(other).and_then(|m| m.strip_prefix(' ')) {
                        Some(rest) if ["dataset", "tokenizer"].contains(&other) => {
                            format!("{flag} {rest}")
                        }
                        _ => format!("{flag}: {msg}"),
                    };
                }
            };
            format!("{flag}: {msg}")
        }
    }
}

/// A file the run writes (`--output`, `--html`, `--requests`, `--state`), checked before the run
/// so that a path that cannot be written fails at once (exit 2, naming the flag and the path).
///
/// A report file (`--output`, `--html`, `--state`: [`OutputFile::open`]) is written whole at the
/// end: to a temporary file beside its path, made now (so the check is the directory's), synced,
/// then renamed over the path. The path itself is never empty or half-written, whatever
/// interrupts the run: an existing file stays as it was until the new one replaces it, and a
/// run that cannot start, or a forced exit ([`signals`]), removes the temporary file.
///
/// `--requests` ([`OutputFile::live`]) is written as the run goes, so that `tail -f` shows it:
/// opened without truncating (a run that cannot start leaves an existing file as it was, and
/// removes one it created); the engine's writer empties it when the run starts.
pub(super) struct OutputFile {
    pub(super) path: PathBuf,
    /// The flag that named it, for errors.
    flag: &'static str,
    file: File,
    /// A report's temporary file, renamed to `path` once written; None for a live file.
    temp: Option<PathBuf>,
    created: bool,
}

/// On stderr before a run: the shard and the start, when given.
fn shard_settings(plan: &Plan) -> String {
    let mut out = String::new();
    if plan.shard.count() > 1 {
        out.push_str(&format!(
            "  shard {}: {} of the plan's requests, {} of its connections\n",
            plan.shard,
            plan.shard_requests(),
            plan.shard_workers()
        ));
    }
    if let Some(t) = plan.start_at {
        let ahead = crate::shard::time::secs_between(crate::shard::time::now_unix_ns(), t);
        let when = if ahead >= 0.0 {
            format!("in {}", secs_text(ahead))
        } else {
            format!("{} ago: starting late", secs_text(-ahead))
        };
        out.push_str(&format!("  starts at {} ({when})\n", format_rfc3339(t)));
    }
    out
}

impl OutputFile {
    /// A report file: its temporary file made now beside `path`.
    pub(super) fn open(path: &Path, flag: &'static str) -> Result<OutputFile, CliError> {
        let cannot = |e: std::io::Error| {
            err(
                exit::USAGE,
                format!("cannot write {flag} {}: {e}", path.display()),
            )
        };
        if path.is_dir() {
            return Err(cannot(std::io::Error::from(
                std::io::ErrorKind::IsADirectory,
            )));
        }
        let temp = temp_beside(path);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(cannot)?;
        signals::pending(&temp);
        Ok(OutputFile {
            path: path.to_path_buf(),
            flag,
            file,
            temp: Some(temp),
            created: true,
        })
    }

    /// A file written as the run goes (`--requests`).
    pub(super) fn live(path: &Path, flag: &'static str) -> Result<OutputFile, CliError> {
        let created = !path.exists();
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| {
                err(
                    exit::USAGE,
                    format!("cannot write {flag} {}: {e}", path.display()),
                )
            })?;
        Ok(OutputFile {
            path: path.to_path_buf(),
            flag,
            file,
            temp: None,
            created,
        })
    }

    pub(super) fn write(mut self, text: &str) -> Result<(), CliError> {
        let mut write = || -> std::io::Result<()> {
            self.file.set_len(0)?;
            self.file.write_all(text.as_bytes())?;
            self.file.write_all(b"\n")?;
            self.file.sync_all()?;
            if let Some(temp) = &self.temp {
                std::fs::rename(temp, &self.path)?;
            }
            Ok(())
        };
        let result = write();
        if let Some(temp) = &self.temp {
            if result.is_err() {
                let _ = std::fs::remove_file(temp);
            }
            signals::done(temp);
        }
        result.map_err(|e| {
            err(
                exit::RUN_FAILED,
                format!("writing {} {}: {e}", self.flag, self.path.display()),
            )
        })
    }

    pub(super) fn discard(self) {
        drop(self.file);
        if let Some(temp) = &self.temp {
            let _ = std::fs::remove_file(temp);
            signals::done(temp);
        } else if self.created {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// `dir/.NAME.pacer-PID.tmp` for `dir/NAME`: in the same directory, so the rename is atomic.
fn temp_beside(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report".into());
    path.with_file_name(format!(".{name}.pacer-{}.tmp", std::process::id()))
}

/// Runs `plan` with the progress line (on a terminal, or forced; never with `--quiet`) and
/// Ctrl-C turned into the engine's stop switch, writing every request to `requests` if given.
/// With `--otlp`, the run's figures are pushed meanwhile ([`otlp::pushing`]): the pushes and
/// how they went come back with the statistics.
fn run_live(
    plan: &Plan,
    out: &Output,
    requests: Option<&File>,
) -> Result<(RunStats, Option<(Push, otlp::Summary)>), CliError> {
    let show = !out.quiet && (out.force_progress || std::io::stderr().is_terminal());
    let interrupted = signals::interrupted();
    let stop = Stop::new();
    let progress = Progress::new(plan);
    let line = Mutex::new(Line::new(plan.duration));
    let tick = |p: &Progress, elapsed: Duration| {
        if interrupted.load(Ordering::Relaxed) {
            stop.stop();
        }
        if show
            && let Ok(mut line) = line.lock()
            && let Some(view) = line.tick(p, elapsed)
        {
            progress::draw(&view);
        }
    };
    let controls = Controls {
        on_tick: Some(&tick),
        progress: Some(&progress),
        stop: Some(&stop),
        requests,
    };
    let push = Push::of(plan, Vec::new());
    let (stats, summary) = otlp::pushing(
        push.as_ref(),
        &progress,
        || engine::run_with(plan, controls),
        |r| {
            r.as_ref()
                .ok()
                .map(|s| Figures::finished(plan, s, &progress))
        },
    );
    if show {
        progress::clear();
    }
    let stats = stats.map_err(|e| err(exit::RUN_FAILED, e.to_string()))?;
    Ok((stats, push.zip(summary)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ErrorKey;
    use std::collections::BTreeMap;

    fn bench_input(qps: Rate, duration: f64) -> Input {
        Input::new("http://127.0.0.1:1/", qps, duration)
    }

    fn refusal(i: &Input) -> String {
        plan(i).unwrap_err().msg
    }

    #[test]
    fn refusals_name_the_flag_and_the_value() {
        let mut i = bench_input(Rate::PerSecond(0.0), 5.0);
        assert_eq!(refusal(&i), "--qps must be > 0 (got 0)");
        i.qps = Rate::PerSecond(-2.5);
        assert_eq!(refusal(&i), "--qps must be > 0 (got -2.5)");
        i.qps = Rate::PerSecond(10.0);
        i.duration = 0.0;
        assert_eq!(refusal(&i), "--duration must be > 0 (got 0s)");
        i.duration = 1.0;
        i.timeout = Some(-0.25);
        assert_eq!(refusal(&i), "--timeout must be > 0 (got -250ms)");
        i.timeout = None;
        i.num_workers = Some(0);
        assert_eq!(refusal(&i), "--num-workers must be at least 1 (got 0)");
        i.num_workers = None;
        i.threads = Some(0);
        assert_eq!(refusal(&i), "--threads must be at least 1 (got 0)");
        i.threads = None;
        i.qps = Rate::PerSecond(0.1);
        assert_eq!(
            refusal(&i),
            "--qps × --duration must make at least 1 request (got 0.1 req/s × 1s = 0.1)"
        );
        i.qps = Rate::Max;
        i.poisson = true;
        assert_eq!(
            refusal(&i),
            "--arrival poisson needs a numeric --qps (got max)"
        );
        i.poisson = false;
        i.url = "localhost:8080".into();
        assert_eq!(
            refusal(&i),
            "URL \"localhost:8080\": URL scheme should be 'http' or 'https' (did you mean \
             http://localhost:8080?)"
        );
        i.url = "http://h/".into();
        i.headers = vec![("X A".into(), "b".into())];
        assert_eq!(refusal(&i), "-H/--header: invalid header name \"X A\"");
        for m in [
            "--qps",
            "--duration",
            "--timeout",
            "--num-workers",
            "--threads",
        ] {
            assert!(!m.contains("integers"));
        }
        assert_eq!(plan(&i).unwrap_err().code, exit::USAGE);
    }

    #[test]
    fn the_api_limits_do_not_bind_the_command_line() {
        // A 24-hour soak, a 2-hour run, a long timeout, many connections: all accepted.
        let mut i = bench_input(Rate::PerSecond(100.0), 24.0 * 3600.0);
        i.timeout = Some(2.0 * 3600.0);
        i.num_workers = Some(50_000);
        let p = plan(&i).unwrap();
        assert_eq!(p.count, 8_640_000);
        assert_eq!(p.duration, Duration::from_secs(86_400));
        assert_eq!(p.num_workers, 50_000);
        // The default connection count is still the API's, capped at 10,000.
        let p = plan(&bench_input(Rate::PerSecond(50_000.0), 1.0)).unwrap();
        assert_eq!(p.num_workers, defaults::MAX_WORKERS);
        let p = plan(&bench_input(Rate::PerSecond(2.5), 2.0)).unwrap();
        assert_eq!(p.num_workers, 3);
        // Only nonsense is refused.
        let i = bench_input(Rate::PerSecond(1.0), 400.0 * 86_400.0);
        assert_eq!(
            refusal(&i),
            "--duration must be at most 365 days (got 9600h)"
        );
        let i = bench_input(Rate::PerSecond(1e9), 300.0 * 86_400.0);
        assert!(
            refusal(&i).contains("at most 2^53 requests"),
            "{}",
            refusal(&i)
        );
    }

    #[test]
    fn llm_refusals_name_the_flag() {
        let mut i = bench_input(Rate::PerSecond(1.0), 1.0);
        let mut l = LlmInput {
            token: " ".into(),
            ..LlmInput::example()
        };
        i.llm = Some(l.clone());
        assert_eq!(
            refusal(&i),
            "--token is required (or set FIREWORKS_API_KEY)"
        );
        l.token = "t".into();
        l.max_tokens = 0;
        i.llm = Some(l.clone());
        assert_eq!(refusal(&i), "--max-tokens must be > 0 (got 0)");
        l.max_tokens = 1;
        l.prompt = String::new();
        i.llm = Some(l);
        assert_eq!(refusal(&i), "--prompt must not be empty");
    }

    fn stats_with(errors: &[(ErrorKey, u64)]) -> RunStats {
        let errors: BTreeMap<ErrorKey, u64> = errors.iter().cloned().collect();
        RunStats {
            total_requests: errors.values().sum(),
            errors,
            ..RunStats::default()
        }
    }

    #[test]
    fn a_run_without_responses_says_why() {
        let p = report::Settings::of(&plan(&bench_input(Rate::PerSecond(4.0), 1.0)).unwrap());
        let name = |s: &str| ErrorKey::Name(s.into());
        let s = stats_with(&[(name("connection refused"), 4)]);
        assert_eq!(
            no_response(&p, &s).unwrap(),
            "no request got a response: connection refused by 127.0.0.1:1"
        );
        let s = stats_with(&[(name("connection refused"), 3), (name("timeout"), 1)]);
        assert_eq!(
            no_response(&p, &s).unwrap(),
            "no request got a response: connection refused by 127.0.0.1:1 (3 of 4 requests); \
             no answer from 127.0.0.1:1 within the timeout (2s) (1 of 4 requests)"
        );
        // Any HTTP status is a response, even an error one.
        let s = stats_with(&[(name("connection refused"), 3), (ErrorKey::Status(500), 1)]);
        assert_eq!(no_response(&p, &s), None);
        let mut ok = stats_with(&[]);
        ok.total_requests = 4;
        ok.successes = 4;
        assert_eq!(no_response(&p, &ok), None);

        let mut i = bench_input(Rate::PerSecond(1.0), 1.0);
        i.url = "http://no-such-host.invalid:8080/".into();
        let p = report::Settings::of(&plan(&i).unwrap());
        let s = stats_with(&[(name("dns: no-such-host.invalid"), 1)]);
        assert_eq!(
            no_response(&p, &s).unwrap(),
            "no request got a response: cannot resolve no-such-host.invalid: names under \
             .invalid never resolve (RFC 6761)"
        );
    }
}
