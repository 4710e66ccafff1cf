//! The JSON HTTP API (SPEC §5): a small HTTP/1.1 server that mirrors the original FastAPI
//! service.
//!
//! This module owns routing, authentication, body limits, the run slots (`--max-runs`), the
//! target allow-list, the `realtime` gate and the files a request may name, and the error
//! shapes; [`gate`] owns accepting connections and reading request heads under a connection cap
//! and a head timeout, [`http`] the bytes of one request and its response, [`allow`]
//! `--allow-target`, [`datadir`] `--data-dir` (where `dataset` and `tokenizer` may point),
//! [`input`] request JSON to
//! [`Input`] with FastAPI-style errors, [`runs`] the runs started with `"async": true` (ids,
//! states, cancelling, how many finished ones are kept), and [`openapi`] the description of all
//! of it. Validation of values is [`Plan::new`]'s, running is [`engine::run_resolved_with`]'s,
//! the report is [`report::to_json`]'s.
//!
//! A run request is synchronous by default: the answer is the report, when the run is over.
//! With `"async": true` it is checked the same way (every 4xx a synchronous request would get,
//! the 429 of `--max-runs` included), then answered at once with 202 and the run's id; the run
//! holds its slot on a thread of its own until it ends.
//!
//! Every connection whose head has arrived gets a thread of its own at once (within the gate's
//! shares per client), so a client that sends its body slowly, or a run that lasts a minute,
//! never holds up another request. Request
//! bodies never reach a log line or an error detail: they may carry a bearer token.

pub mod allow;
pub mod datadir;
pub mod gate;
pub mod http;
pub mod input;
pub mod openapi;
pub mod runs;

use std::io;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::engine::{self, Controls, Progress, RunStats};
use crate::live::{self, otlp};
use crate::plan::{Input, Limits, Plan, Target, defaults};
use crate::report;
use crate::shard::ShardState;
use crate::shard::report::add_start_late;
use crate::sweep::{self, SweepPlan};
pub use allow::{AllowTarget, Allowlist};
pub use datadir::DataDir;
use gate::{Gate, GateLimits};
use http::{BodyError, Conn, Request};
pub use input::{ApiError, benchmark_input, fireworks_input, flag, parse_json, sweep_input};
use runs::{CancelError, Kind, Outcome, Runs};

/// Default `--addr`.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8000";
/// Default `--max-runs`.
pub const DEFAULT_MAX_RUNS: usize = 2;
/// Default `--max-connections`: far above what API clients need, far below the descriptors
/// the runs themselves may want.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Default `--head-timeout`, seconds.
pub const DEFAULT_HEAD_TIMEOUT: f64 = 10.0;

/// What `pacer serve` was asked to do.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    pub addr: String,
    pub limits: Limits,
    pub max_runs: usize,
    pub api_key: Option<String>,
    /// Accept `"realtime": true` (SCHED_FIFO run threads on the server's own CPUs).
    pub allow_realtime: bool,
    /// `--allow-target`: empty means every target is allowed.
    pub allow_targets: Vec<AllowTarget>,
    /// Connections held at once, waiting for a head or being served.
    pub max_connections: usize,
    /// How long a connection may take to send a request head.
    pub head_timeout: Duration,
    /// How long a request body may take to arrive, and an answer to be taken (`--io-timeout`).
    pub io_timeout: Duration,
    /// Connections served at once per client address (`--max-busy-per-client`).
    pub max_busy_per_client: usize,
    /// Request threads kept for clients with none (`--new-client-slots`).
    pub new_client_slots: usize,
    /// Finished async runs remembered (`--keep-runs`), the oldest forgotten first.
    pub keep_runs: usize,
    /// `--data-dir`: the directory `dataset` and `tokenizer` paths are relative to. `None`: the
    /// API refuses both (inline `prompts` still work).
    pub data_dir: Option<PathBuf>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            addr: DEFAULT_ADDR.into(),
            limits: Limits::default(),
            max_runs: DEFAULT_MAX_RUNS,
            api_key: None,
            allow_realtime: false,
            allow_targets: Vec::new(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            head_timeout: Duration::from_secs_f64(DEFAULT_HEAD_TIMEOUT),
            io_timeout: Duration::from_secs_f64(defaults::API_IO_TIMEOUT),
            max_busy_per_client: defaults::API_MAX_BUSY_PER_CLIENT,
            new_client_slots: defaults::API_NEW_CLIENT_SLOTS,
            keep_runs: runs::DEFAULT_KEEP,
            data_dir: None,
        }
    }
}

/// The largest request body read (1 MiB); one more byte is a 413.
pub const MAX_BODY: usize = 1 << 20;

/// Binds `cfg.addr` and serves until the process ends. Raises the open-file limit first and warns
/// when the server is reachable from elsewhere without a key.
pub fn serve(cfg: ApiConfig) -> io::Result<()> {
    let fds = gate::raise_fd_limit();
    let server = ApiServer::start(cfg)?;
    // Warnings first: whoever sees the listening line has seen them.
    let cfg = &server.state.cfg;
    if let Some(w) = exposure_warning(server.addr(), cfg) {
        eprintln!("pacer api: warning: {w}");
    }
    if let Some(n) = fds
        && n < cfg.max_connections as u64 + 64
    {
        eprintln!(
            "pacer api: warning: the open-file limit ({n}) is below --max-connections ({}) plus \
             what runs need; out of descriptors, the oldest connections waiting for a request \
             are closed first",
            cfg.max_connections
        );
    }
    eprintln!("pacer api: listening on http://{}", server.addr());
    server.wait();
    Ok(())
}

/// The start-up warning for a server others can reach without a key.
fn exposure_warning(addr: SocketAddr, cfg: &ApiConfig) -> Option<String> {
    if addr.ip().is_loopback() || cfg.api_key.is_some() {
        return None;
    }
    let reach = if cfg.allow_targets.is_empty() {
        "anywhere".to_string()
    } else {
        "at any --allow-target target".to_string()
    };
    Some(format!(
        "listening on {addr} without --api-key (or PACER_API_KEY): anyone who can reach it can \
         direct load {reach}"
    ))
}

/// A running API server. Stops on [`ApiServer::shutdown`] or drop; requests already being
/// served (synchronous runs included) finish on their own threads, async runs are stopped
/// (nobody could read their reports any more) and wind down on theirs.
pub struct ApiServer {
    gate: Option<Gate>,
    addr: SocketAddr,
    state: Arc<State>,
}

impl ApiServer {
    /// Binds `cfg.addr` (port 0 picks a free port), resolves the `--allow-target` names and the
    /// `--data-dir` once, and serves on a background thread.
    pub fn start(cfg: ApiConfig) -> io::Result<ApiServer> {
        let data_dir = cfg.data_dir.as_deref().map(DataDir::open).transpose()?;
        let listener = std::net::TcpListener::bind(cfg.addr.as_str())
            .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {}: {e}", cfg.addr)))?;
        let addr = listener.local_addr()?;
        let allow = if cfg.allow_targets.is_empty() {
            None
        } else {
            let (list, unresolved) = Allowlist::resolve(&cfg.allow_targets);
            for name in unresolved {
                eprintln!(
                    "pacer api: warning: --allow-target {name} does not resolve now; only \
                     targets spelled {name} are allowed by it"
                );
            }
            Some(list)
        };
        let limits = GateLimits {
            max_connections: cfg.max_connections.max(1),
            head_timeout: cfg.head_timeout,
            io_timeout: cfg.io_timeout,
            max_busy_per_client: cfg.max_busy_per_client.max(1),
            new_client_slots: cfg.new_client_slots,
        };
        let state = Arc::new(State {
            openapi: serde_json::to_vec(&openapi::document()).unwrap_or_default(),
            runs: Arc::new(Runs::new(cfg.keep_runs)),
            cfg,
            allow,
            data_dir,
            running: Arc::new(AtomicUsize::new(0)),
            building: std::sync::Mutex::new(()),
        });
        let st = Arc::clone(&state);
        let gate = Gate::start(
            listener,
            limits,
            Arc::new(move |req: Request, conn: &mut Conn| handle(&st, &req, conn)),
        )?;
        Ok(ApiServer {
            gate: Some(gate),
            addr,
            state,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and closes the listener.
    pub fn shutdown(self) {
        drop(self);
    }

    /// Serves until the process ends.
    fn wait(mut self) {
        if let Some(g) = self.gate.take() {
            g.join();
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        // The gate first: no request can start a run once the runs are stopped.
        drop(self.gate.take());
        self.state.runs.stop_all();
    }
}

struct State {
    cfg: ApiConfig,
    /// `None`: no `--allow-target`, every target allowed.
    allow: Option<Allowlist>,
    /// `None`: no `--data-dir`, no file may be named.
    data_dir: Option<DataDir>,
    /// Runs going now, synchronous and async (`--max-runs`).
    running: Arc<AtomicUsize>,
    runs: Arc<Runs>,
    /// Held while a big workload is built: one at a time.
    building: std::sync::Mutex<()>,
    openapi: Vec<u8>,
}

/// A response to send.
struct Reply {
    status: u16,
    body: Vec<u8>,
    headers: Vec<(&'static str, String)>,
}

impl Reply {
    fn json(status: u16, v: &Value) -> Reply {
        Reply {
            status,
            // Serializing a `Value` cannot fail: its keys are strings.
            body: serde_json::to_vec(v).unwrap_or_default(),
            headers: Vec::new(),
        }
    }

    fn error(e: &ApiError) -> Reply {
        let mut r = Reply::json(e.status, &e.body());
        if e.status == 401 {
            r.headers.push(("WWW-Authenticate", "Bearer".into()));
        }
        r
    }
}

/// Serves one request on its own thread; true keeps the connection for another.
fn handle(state: &State, req: &Request, conn: &mut Conn) -> bool {
    let started = Instant::now();
    let path = req.path();
    let reply = catch_unwind(AssertUnwindSafe(|| route(state, req, conn)))
        .unwrap_or_else(|_| Reply::error(&ApiError::message(500, "internal error")));
    let mut reply = reply;
    if let Some(dir) = &state.data_dir {
        reply.body = dir.hide(std::mem::take(&mut reply.body));
    }
    let status = reply.status;
    // A client refused for its key is not given more tries on the same connection.
    let keep = conn.reusable(req) && status != 401;
    let headers: Vec<(&str, &str)> = reply
        .headers
        .iter()
        .map(|(n, v)| (*n, v.as_str()))
        .collect();
    let (outcome, delivered) = match conn.respond(req, status, &headers, &reply.body, keep) {
        Ok(()) => (status.to_string(), true),
        Err(e) => (format!("{status} (not delivered: {e})"), false),
    };
    eprintln!(
        "pacer api: {} {} {outcome} {:.1} ms",
        printable(&req.method),
        printable(path),
        started.elapsed().as_secs_f64() * 1e3
    );
    keep && delivered
}

/// A method or path as it may appear in a log line: no control characters, bounded length.
fn printable(path: &str) -> String {
    path.chars()
        .take(200)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// What a path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route<'a> {
    Root,
    Health,
    OpenApi,
    Benchmark,
    Fireworks,
    Sweep,
    Runs,
    Run(&'a str),
    RunHtml(&'a str),
    Metrics,
}

impl<'a> Route<'a> {
    fn of(path: &'a str) -> Option<Route<'a>> {
        Some(match path {
            "/" => Route::Root,
            "/health" => Route::Health,
            "/openapi.json" => Route::OpenApi,
            "/benchmark" => Route::Benchmark,
            "/fireworks_benchmark" => Route::Fireworks,
            "/sweep" => Route::Sweep,
            "/runs" => Route::Runs,
            "/metrics" => Route::Metrics,
            _ => {
                let rest = path.strip_prefix("/runs/")?;
                match rest.split_once('/') {
                    None if !rest.is_empty() => Route::Run(rest),
                    Some((id, "html")) if !id.is_empty() => Route::RunHtml(id),
                    _ => return None,
                }
            }
        })
    }

    /// The methods it answers, as the `Allow` header lists them.
    fn allow(self) -> &'static str {
        match self {
            Route::Benchmark | Route::Fireworks | Route::Sweep => "POST",
            Route::Run(_) => "GET, DELETE",
            _ => "GET",
        }
    }
}

fn route(state: &State, req: &Request, conn: &mut Conn) -> Reply {
    let (method, path) = (req.method.as_str(), req.path());
    let open = method == "GET" && path == "/health";
    if let Some(key) = &state.cfg.api_key
        && !open
        && !authorized(&req.headers, key)
    {
        return Reply::error(&ApiError::message(401, "Not authenticated"));
    }
    let Some(route) = Route::of(path) else {
        return Reply::error(&ApiError::message(404, "Not Found"));
    };
    if !route.allow().split(", ").any(|m| m == method) {
        let mut r = Reply::error(&ApiError::message(405, "Method Not Allowed"));
        r.headers.push(("Allow", route.allow().into()));
        return r;
    }
    match route {
        Route::Root => Reply::json(200, &json!({"message": "Hello, World!"})),
        // Answered by the gate itself, but for a request pipelined behind another.
        Route::Health => Reply {
            status: 200,
            body: gate::HEALTH.to_vec(),
            headers: Vec::new(),
        },
        Route::OpenApi => Reply {
            status: 200,
            body: state.openapi.clone(),
            headers: Vec::new(),
        },
        Route::Benchmark => benchmark(state, req, conn, Kind::Benchmark),
        Route::Fireworks => benchmark(state, req, conn, Kind::Fireworks),
        Route::Sweep => sweep(state, req, conn),
        Route::Runs => {
            let list: Vec<Value> = state.runs.list().iter().map(|r| r.brief()).collect();
            Reply::json(200, &json!({"runs": list, "keep": state.runs.keep()}))
        }
        Route::Run(id) if method == "DELETE" => cancel(state, id),
        Route::Run(id) => match state.runs.get(id) {
            Some(run) => Reply::json(200, &run.status()),
            None => Reply::error(&no_such_run(state)),
        },
        Route::RunHtml(id) => run_html(state, id),
        Route::Metrics => metrics(state),
    }
}

/// `GET /metrics`: the runs by state and every running run's live figures, in the Prometheus
/// text format (the names are `live`'s). Behind `--api-key` like every route but `/health`: a
/// scrape sends it as a bearer token (Prometheus's `authorization` setting).
fn metrics(state: &State) -> Reply {
    let runs = state.runs.list();
    let states: Vec<(&str, u64)> = runs::STATES
        .iter()
        .map(|s| (*s, runs.iter().filter(|r| r.state() == *s).count() as u64))
        .collect();
    let labelled: Vec<(Vec<(&'static str, String)>, live::Figures)> = runs
        .iter()
        .filter(|r| r.state() == "running")
        .filter_map(|r| {
            let (progress, elapsed) = r.watched()?;
            let labels = vec![
                ("run_id", r.id().to_string()),
                ("kind", r.kind().name().to_string()),
            ];
            Some((labels, live::Figures::read(&progress, elapsed)))
        })
        .collect();
    let shown: Vec<live::prom::Run<'_>> = labelled
        .iter()
        .map(|(labels, figures)| live::prom::Run {
            labels,
            figures: *figures,
        })
        .collect();
    Reply {
        status: 200,
        body: live::prom::exposition(&states, &shown).into_bytes(),
        headers: vec![("Content-Type", live::prom::CONTENT_TYPE.into())],
    }
}

fn no_such_run(state: &State) -> ApiError {
    ApiError::message(
        404,
        format!(
            "no such run (this server remembers every running run and the last {} finished)",
            state.runs.keep()
        ),
    )
}

/// `DELETE /runs/{id}`: 202 while the run winds down (its state stays `running`, with
/// `cancelling: true`, until the engine has given its requests in flight their timeout).
fn cancel(state: &State, id: &str) -> Reply {
    match state.runs.cancel(id) {
        Ok(run) => Reply::json(202, &run.status()),
        Err(CancelError::NotFound) => Reply::error(&no_such_run(state)),
        Err(CancelError::Finished(how)) => Reply::error(&ApiError::message(
            409,
            format!("the run is already {how}: there is nothing to cancel"),
        )),
    }
}

/// `GET /runs/{id}/html`: the HTML report of a run that has one.
fn run_html(state: &State, id: &str) -> Reply {
    let Some(run) = state.runs.get(id) else {
        return Reply::error(&no_such_run(state));
    };
    let Some(report) = run.report() else {
        return Reply::error(&ApiError::message(
            409,
            format!("the run is {}: it has no report to draw", run.state()),
        ));
    };
    match crate::html::render(&report) {
        Ok(page) => Reply {
            status: 200,
            body: page.into_bytes(),
            headers: vec![("Content-Type", "text/html; charset=utf-8".into())],
        },
        Err(e) => Reply::error(&ApiError::message(500, e.to_string())),
    }
}

/// Reads a run request's JSON body, as FastAPI reads a JSON body.
fn json_body(req: &Request, conn: &mut Conn) -> Result<Value, ApiError> {
    let bytes = read_body(req, conn)?;
    if !json_content_type(req.header("Content-Type")) && !bytes.is_empty() {
        // FastAPI does not parse a body sent as another media type; the model then sees raw
        // bytes.
        return Err(ApiError::invalid(
            vec![json!("body")],
            "Input should be a valid dictionary or object to extract fields from",
            "model_attributes_type",
        ));
    }
    parse_json(&bytes)
}

/// Reads, checks and runs one benchmark request, or starts it (`"async": true`).
///
/// The order is what keeps one request from taking the server down: every check of the input
/// (the workload's budget included, which reads nothing but a file's size), then the target
/// resolved and checked against `--allow-target`, then a run slot, and only then the workload
/// built, one big one at a time. A synchronous run is in the registry like an async one and is
/// cancelled when its client hangs up.
fn benchmark(state: &State, req: &Request, conn: &mut Conn, kind: Kind) -> Reply {
    let to_input = match kind {
        Kind::Fireworks => fireworks_input,
        _ => benchmark_input,
    };
    let result = json_body(req, conn)
        .and_then(|v| {
            let flags = input::both(flag(&v, "async"), flag(&v, "state"));
            input::both(to_input(&v), flags)
        })
        .and_then(|(mut input, (asked, with_state))| {
            realtime_allowed(state, &input)?;
            data_files(state, &mut input)?;
            let draft = Plan::check(&input, &state.cfg.limits).map_err(ApiError::from)?;
            let (addrs, slot) = admit(state, draft.target())?;
            otlp_allowed(state, &input)?;
            let plan = build(&state.building, draft.workload_bytes(), || {
                draft.build().map_err(ApiError::from)
            })?;
            let run = start(state, kind, asked, plan, addrs, slot, with_state)?;
            if asked {
                Ok(accepted(&run))
            } else {
                wait_for(state, &run, conn)
            }
        });
    result.unwrap_or_else(|e| Reply::error(&e))
}

/// Builds a plan whose workload holds `bytes`: those above
/// [`defaults::BUILD_ALONE_BYTES`](crate::plan::defaults::BUILD_ALONE_BYTES) one at a time,
/// so that requests arriving together never build several big workloads at once.
/// `alone` is the server's one lock of turns ([`State`]'s `building`).
fn build<T>(
    alone: &std::sync::Mutex<()>,
    bytes: u64,
    make: impl FnOnce() -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    if bytes <= crate::plan::defaults::BUILD_ALONE_BYTES {
        return make();
    }
    // A poisoned lock only means another build panicked; the lock guards nothing but turns.
    let _alone = alone.lock().unwrap_or_else(|e| e.into_inner());
    make()
}

/// Runs `plan` on a thread of its own, in the registry: the caller answers 202 with where to
/// follow it (`asked`: `"async": true`) or waits for it ([`wait_for`]).
fn start(
    state: &State,
    kind: Kind,
    asked: bool,
    plan: Plan,
    addrs: Option<Vec<SocketAddr>>,
    slot: RunSlot,
    with_state: bool,
) -> Result<Arc<runs::Run>, ApiError> {
    let target = plan.target.clone();
    state
        .runs
        .spawn(kind, asked, &target, slot, move |run| {
            let progress = Arc::new(Progress::new(&plan));
            run.watch(Arc::clone(&progress), None);
            let controls = Controls {
                progress: Some(&progress),
                stop: Some(run.stop()),
                ..Controls::default()
            };
            let push = otlp::Push::of(&plan, vec![("run_id", run.id().to_string())]);
            let (result, summary) = otlp::pushing(
                push.as_ref(),
                &progress,
                || engine::run_resolved_with(&plan, addrs, controls),
                |r| {
                    r.as_ref()
                        .ok()
                        .map(|s| live::Figures::finished(&plan, s, &progress))
                },
            );
            let answer = |stats: &RunStats| {
                let mut report = answer(&plan, stats, with_state);
                if let (Some(push), Some(summary)) = (&push, &summary) {
                    report["otlp"] = summary.to_json(&push.url());
                }
                report
            };
            match result {
                Ok(stats) if stats.interrupted => Outcome::Cancelled(answer(&stats)),
                Ok(stats) => Outcome::Done(answer(&stats)),
                Err(e) => Outcome::Failed(ApiError::message(500, format!("run failed: {e}"))),
            }
        })
        .map_err(|e| ApiError::message(500, format!("cannot start the run: {e}")))
}

/// How often a synchronous request looks whether its client is still there.
const HANGUP_POLL: Duration = Duration::from_millis(100);

/// Waits for a synchronous run and answers its report (a cancelled run's too: `interrupted`).
/// When the client hangs up meanwhile, the run is cancelled: nobody is left to read it, and it
/// holds a run slot.
fn wait_for(state: &State, run: &runs::Run, conn: &Conn) -> Result<Reply, ApiError> {
    loop {
        if let Some(outcome) = run.wait(HANGUP_POLL) {
            return match outcome {
                Outcome::Done(v) | Outcome::Cancelled(v) => Ok(Reply::json(200, &v)),
                Outcome::Failed(e) => Err(e),
                Outcome::Running => Err(ApiError::message(500, "internal error")),
            };
        }
        if hung_up(conn.socket()) {
            // Asking twice is asking once; a run that ended meanwhile has nothing to cancel.
            let _ = state.runs.cancel(run.id());
            eprintln!("pacer api: run {} cancelled: its client hung up", run.id());
            return Err(ApiError::message(
                499,
                "the client closed the connection: the run was cancelled",
            ));
        }
    }
}

/// True when the peer closed the connection (or shut down its sending side), or it failed: a
/// request's client that will never read its answer. Pipelined bytes waiting to be read do not
/// count. A client that half-closes after its request and still waits for the answer is taken
/// as gone too; HTTP clients do not do that.
fn hung_up(sock: &std::net::TcpStream) -> bool {
    use rustix::event::{PollFd, PollFlags, poll};
    let mut fds = [PollFd::new(sock, PollFlags::RDHUP)];
    let zero = rustix::time::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    match poll(&mut fds, Some(&zero)) {
        Ok(0) => false,
        Ok(_) => fds[0]
            .revents()
            .intersects(PollFlags::RDHUP | PollFlags::HUP | PollFlags::ERR),
        Err(_) => false,
    }
}

/// Reads, checks and runs a sweep (`POST /sweep`), or starts it (`"async": true`): in the order
/// of [`benchmark`], the sweep's first run standing for its target and budget.
fn sweep(state: &State, req: &Request, conn: &mut Conn) -> Reply {
    let result = json_body(req, conn)
        .and_then(|v| input::both(sweep_input(&v), flag(&v, "async")))
        .and_then(|(mut input, asked)| {
            realtime_allowed(state, &input.base)?;
            otlp_allowed(state, &input.base)?;
            data_files(state, &mut input.base)?;
            let limits = &state.cfg.limits;
            sweep::check(&input, limits)?;
            let first = match &input.rates {
                Some(rates) => input.step_input(rates.iter().copied().fold(f64::NAN, f64::min)),
                None => input.probe_input(),
            };
            let draft = Plan::check(&first, limits).map_err(ApiError::from)?;
            let (addrs, slot) = admit(state, draft.target())?;
            let bytes = draft.workload_bytes();
            drop(draft);
            let plan = build(&state.building, bytes, || {
                SweepPlan::new(&input, limits).map_err(ApiError::from)
            })?;
            let target = plan.sample.target.clone();
            let run = state
                .runs
                .spawn(Kind::Sweep, asked, &target, slot, move |run| {
                    run_sweep(&plan, addrs, run.stop(), Some(run))
                })
                .map_err(|e| ApiError::message(500, format!("cannot start the run: {e}")))?;
            if asked {
                Ok(accepted(&run))
            } else {
                wait_for(state, &run, conn)
            }
        });
    result.unwrap_or_else(|e| Reply::error(&e))
}

/// Runs a sweep to its end, showing each engine run's counters on `run` (async) as it goes.
fn run_sweep(
    plan: &SweepPlan,
    addrs: Option<Vec<SocketAddr>>,
    stop: &engine::Stop,
    run: Option<&runs::Run>,
) -> Outcome {
    let on_start = |phase: &sweep::Phase, progress: &Arc<Progress>| {
        if let Some(r) = run {
            r.watch(Arc::clone(progress), Some(phase.to_json()));
        }
    };
    let hooks = sweep::Hooks {
        stop,
        on_start: &on_start,
        on_tick: None,
        on_probe: &|_| {},
        on_step: &|_| {},
    };
    match catch_unwind(AssertUnwindSafe(|| sweep::run(plan, addrs, &hooks))) {
        Ok(Ok(s)) if s.interrupted => Outcome::Cancelled(s.to_json()),
        Ok(Ok(s)) => Outcome::Done(s.to_json()),
        Ok(Err(e)) => Outcome::Failed(ApiError::message(500, format!("run failed: {e}"))),
        Err(_) => Outcome::Failed(ApiError::message(500, "run failed: internal error")),
    }
}

/// The 202 of an async run: where to follow it.
fn accepted(run: &runs::Run) -> Reply {
    let mut reply = Reply::json(
        202,
        &json!({"id": run.id(), "url": run.path(), "state": "running"}),
    );
    reply.headers.push(("Location", run.path()));
    reply
}

/// An `otlp` collector is a place the server sends to, like a target: with `--allow-target`,
/// it must be allowed too (403 otherwise). Checked after the run's slot is taken, as the
/// target's own check is, so the answer does not tell which of the two was refused first.
fn otlp_allowed(state: &State, input: &Input) -> Result<(), ApiError> {
    let (Some(allow), Some(url)) = (&state.allow, &input.otlp) else {
        return Ok(());
    };
    let Ok(t) = otlp::parse(url) else {
        return Ok(());
    };
    let addrs = engine::resolve(&t.host, t.port);
    allow
        .check(&t.host, t.port, addrs.as_deref().unwrap_or(&[]))
        .map_err(|msg| ApiError::message(403, format!("otlp: {msg}")))
}

/// Why `"realtime": true` needs the operator's consent.
pub const MSG_REALTIME_OFF: &str = "realtime is off on this server: it runs the benchmark's \
    threads as SCHED_FIFO on the server's own CPUs, where a busy run can starve everything else \
    on them; start pacer serve with --allow-realtime to allow it";

fn realtime_allowed(state: &State, input: &Input) -> Result<(), ApiError> {
    if input.realtime && !state.cfg.allow_realtime {
        return Err(ApiError::invalid(
            vec![json!("body"), json!("realtime")],
            MSG_REALTIME_OFF,
            "value_error",
        ));
    }
    Ok(())
}

/// Why a request may not name a file here.
pub const MSG_NO_DATA_DIR: &str = "this server has no --data-dir, so a request may not name a \
    file on it: start pacer serve with --data-dir DIR to allow paths relative to DIR";

/// Points `dataset`, `tokenizer` and `ca_cert` at the files they name inside `--data-dir`,
/// resolved, or refuses them (422, one entry for each refused field): before the plan reads
/// anything. The CLI's flags are the user's own and read any path.
fn data_files(state: &State, input: &mut Input) -> Result<(), ApiError> {
    let w = &mut input.workload;
    let mut ca_cert = input.ca_cert.as_deref().map(PathBuf::from);
    let mut errors = Vec::new();
    for (field, slot) in [
        ("dataset", &mut w.dataset),
        ("tokenizer", &mut w.tokenizer),
        ("ca_cert", &mut ca_cert),
    ] {
        let Some(given) = slot.as_deref() else {
            continue;
        };
        let msg = match &state.data_dir {
            None if field == "dataset" => {
                format!("{MSG_NO_DATA_DIR} (or send the prompts inline, in \"prompts\")")
            }
            None => MSG_NO_DATA_DIR.to_string(),
            Some(dir) => match dir.resolve(given) {
                Ok(real) => {
                    *slot = Some(real);
                    continue;
                }
                Err(why) => refusal(field, given, why),
            },
        };
        errors.push(json!({"loc": ["body", field], "msg": msg, "type": "value_error"}));
    }
    input.ca_cert = ca_cert.map(|p| p.to_string_lossy().into_owned());
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError {
            status: 422,
            detail: Value::Array(errors),
        })
    }
}

/// A refusal's words: the path as the request gave it (bounded), never what is there.
fn refusal(field: &str, given: &Path, why: datadir::Refusal) -> String {
    let given = printable(&given.to_string_lossy());
    match why {
        datadir::Refusal::NotInside => format!(
            "{field} {given}: no such file inside the server's --data-dir (paths are relative \
             to it; neither .. nor a symbolic link may lead out of it)"
        ),
        datadir::Refusal::NotAFile => format!(
            "{field} {given}: not a regular file (a directory, a pipe or a device) in the \
             server's --data-dir"
        ),
    }
}

fn read_body(req: &Request, conn: &mut Conn) -> Result<Vec<u8>, ApiError> {
    conn.read_body(req, MAX_BODY).map_err(|e| match e {
        BodyError::TooLarge => ApiError::message(413, "Request body too large (max 1 MiB)"),
        BodyError::TimedOut => ApiError::message(408, "Request body not received in time"),
        BodyError::Malformed => ApiError::message(400, "There was an error parsing the body"),
    })
}

/// True when the body is to be parsed as JSON: no `Content-Type`, `application/json` or
/// `application/*+json`, as FastAPI decides.
fn json_content_type(value: Option<&str>) -> bool {
    let Some(v) = value.map(str::trim) else {
        return true;
    };
    if v.is_empty() {
        return true;
    }
    let essence = v
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.strip_prefix("application/") {
        Some(sub) => sub == "json" || sub.ends_with("+json"),
        None => false,
    }
}

/// Resolves the target once, checks it against `--allow-target` and takes a run slot: what
/// every run needs before its workload is built, synchronous or not. The addresses are the ones
/// checked, for the run to use exactly those.
fn admit(state: &State, target: &Target) -> Result<(Option<Vec<SocketAddr>>, RunSlot), ApiError> {
    let addrs = engine::resolve(&target.host, target.port);
    if let Some(allow) = &state.allow {
        allow
            .check(&target.host, target.port, addrs.as_deref().unwrap_or(&[]))
            .map_err(|msg| ApiError::message(403, msg))?;
    }
    let max = state.cfg.max_runs;
    let slot = RunSlot::acquire(&state.running, max)
        .ok_or_else(|| ApiError::message(429, format!("too many runs in progress (max {max})")))?;
    Ok((addrs, slot))
}

/// The report a run request answers: with `start_late` when a `start_at` run began late, and
/// with the run's mergeable state when the request asked for it (`"state": true`).
fn answer(plan: &Plan, stats: &RunStats, with_state: bool) -> Value {
    let mut report = report::to_json(&report::Settings::of(plan), stats);
    add_start_late(plan, stats, &mut report);
    if with_state && let Value::Object(m) = &mut report {
        let s = ShardState::of_run(plan, stats, &stats.wall);
        m.insert("state".into(), s.to_value());
    }
    report
}

/// One of `max_runs` places; given back on drop, panics included. Owned, so an async run's
/// thread can hold it.
struct RunSlot(Arc<AtomicUsize>);

impl RunSlot {
    fn acquire(running: &Arc<AtomicUsize>, max: usize) -> Option<RunSlot> {
        running
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| RunSlot(Arc::clone(running)))
    }
}

impl Drop for RunSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// `Authorization: Bearer <key>` or `X-API-Key: <key>`.
fn authorized(headers: &[(String, String)], key: &str) -> bool {
    let mut ok = false;
    for (name, v) in headers {
        let v = v.trim();
        if name.eq_ignore_ascii_case("Authorization") {
            if let Some((scheme, token)) = v.split_once(' ')
                && scheme.eq_ignore_ascii_case("bearer")
            {
                ok |= ct_eq(token.trim().as_bytes(), key.as_bytes());
            }
        } else if name.eq_ignore_ascii_case("X-API-Key") {
            ok |= ct_eq(v.as_bytes(), key.as_bytes());
        }
    }
    ok
}

/// Compares in time that depends only on the expected key's length, so a guess learns nothing
/// from how long a refusal takes.
fn ct_eq(given: &[u8], expected: &[u8]) -> bool {
    let mut diff = u8::from(given.len() != expected.len());
    for (i, &e) in expected.iter().enumerate() {
        diff |= e ^ given.get(i).copied().unwrap_or(0);
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Big builds arriving together take turns; a small one never waits behind a big one.
    #[test]
    fn big_workloads_are_built_one_at_a_time() {
        use crate::plan::defaults::BUILD_ALONE_BYTES;
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::{Barrier, Mutex, mpsc};
        let alone = Mutex::new(());
        let inside = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let start = Barrier::new(4);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    start.wait();
                    build(&alone, BUILD_ALONE_BYTES + 1, || {
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(20));
                        inside.fetch_sub(1, Ordering::SeqCst);
                        Ok::<_, ApiError>(())
                    })
                    .expect("a build that cannot fail");
                });
            }
        });
        assert_eq!(most.load(Ordering::SeqCst), 1, "two big builds ran at once");

        // A big build holds its turn until told; a small one meanwhile finishes at once.
        let (release, held) = mpsc::channel::<()>();
        let (entered, inside_big) = mpsc::channel::<()>();
        std::thread::scope(|s| {
            let alone = &alone;
            s.spawn(move || {
                build(alone, BUILD_ALONE_BYTES * 4, || {
                    entered.send(()).expect("the test waits for it");
                    held.recv_timeout(Duration::from_secs(30)).ok();
                    Ok::<_, ApiError>(())
                })
                .expect("a build that cannot fail");
            });
            inside_big
                .recv_timeout(Duration::from_secs(30))
                .expect("the big build started");
            let small = build(alone, BUILD_ALONE_BYTES, || Ok::<_, ApiError>(7));
            assert_eq!(small.ok(), Some(7));
            // The lock is held: a second big build would wait for it.
            assert!(alone.try_lock().is_err(), "the big build holds its turn");
            release.send(()).expect("the big build waits for it");
        });
        assert!(alone.try_lock().is_ok(), "the turn is given back");
    }

    fn hdr(n: &str, v: &str) -> (String, String) {
        (n.to_string(), v.to_string())
    }

    #[test]
    fn constant_time_compare() {
        assert!(ct_eq(b"key", b"key"));
        assert!(!ct_eq(b"kez", b"key"));
        assert!(!ct_eq(b"ke", b"key"));
        assert!(!ct_eq(b"keyy", b"key"));
        assert!(!ct_eq(b"", b"key"));
        assert!(ct_eq(b"", b""));
    }

    #[test]
    fn auth_headers() {
        assert!(authorized(&[hdr("Authorization", "Bearer s3")], "s3"));
        assert!(authorized(&[hdr("authorization", "bearer  s3 ")], "s3"));
        assert!(authorized(&[hdr("X-API-Key", "s3")], "s3"));
        assert!(!authorized(&[hdr("Authorization", "Basic s3")], "s3"));
        assert!(!authorized(&[hdr("Authorization", "Bearer s4")], "s3"));
        assert!(!authorized(&[], "s3"));
    }

    #[test]
    fn content_types() {
        assert!(json_content_type(None));
        assert!(json_content_type(Some(" ")));
        assert!(json_content_type(Some("application/json; charset=utf-8")));
        assert!(json_content_type(Some("Application/vnd.api+json")));
        assert!(!json_content_type(Some("text/plain")));
        assert!(!json_content_type(Some(
            "application/x-www-form-urlencoded"
        )));
    }

    #[test]
    fn exposure_is_warned_off_loopback_without_a_key() {
        let cfg = ApiConfig::default();
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(exposure_warning(at("127.0.0.1:8000"), &cfg), None);
        assert_eq!(exposure_warning(at("[::1]:8000"), &cfg), None);
        let w = exposure_warning(at("0.0.0.0:80"), &cfg).unwrap();
        assert!(
            w.contains("0.0.0.0:80")
                && w.ends_with("anyone who can reach it can direct load anywhere"),
            "{w}"
        );
        assert!(exposure_warning(at("[::]:80"), &cfg).is_some());
        let keyed = ApiConfig {
            api_key: Some("k".into()),
            ..ApiConfig::default()
        };
        assert_eq!(exposure_warning(at("0.0.0.0:80"), &keyed), None);
        let fenced = ApiConfig {
            allow_targets: vec!["10.0.0.0/8".parse().unwrap()],
            ..ApiConfig::default()
        };
        let w = exposure_warning(at("10.1.1.1:80"), &fenced).unwrap();
        assert!(
            w.ends_with("direct load at any --allow-target target"),
            "{w}"
        );
    }

    #[test]
    fn run_slots_are_given_back() {
        let n = Arc::new(AtomicUsize::new(0));
        let a = RunSlot::acquire(&n, 2).unwrap();
        let b = RunSlot::acquire(&n, 2).unwrap();
        assert!(RunSlot::acquire(&n, 2).is_none());
        drop(a);
        let c = RunSlot::acquire(&n, 2);
        assert!(c.is_some());
        drop((b, c));
        assert_eq!(n.load(Ordering::SeqCst), 0);
        assert!(RunSlot::acquire(&n, 0).is_none());
    }

    #[test]
    fn log_paths_are_printable() {
        assert_eq!(printable("/a\nb\x1b"), "/a?b?");
        assert_eq!(printable(&"x".repeat(500)).len(), 200);
    }
}
