//! The JSON HTTP API (SPEC §5): a tiny_http server that mirrors the original FastAPI service.
//!
//! This module owns routing, authentication, body limits, the run slots (`--max-runs`) and the
//! error shapes; [`input`] owns request JSON to [`Input`] with FastAPI-style errors, and
//! [`openapi`] the description of all of it. Validation of values is [`Plan::new`]'s, running is
//! [`engine::run`]'s, the report is [`report::to_json`]'s.
//!
//! One thread receives requests and hands each to a thread of its own at once, so a client that
//! sends its body slowly, or a run that lasts a minute, never holds up another request. Request
//! bodies never reach a log line or an error detail: they may carry a bearer token.

pub mod input;
pub mod openapi;

use std::io::{self, Read};
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Instant;

use serde_json::{Value, json};
use tiny_http::{Header, Method, Request, Response, Server};

use crate::engine;
use crate::plan::{Input, Limits, Plan};
use crate::report;
pub use input::{ApiError, benchmark_input, fireworks_input, parse_json};

/// What `pacer serve` was asked to do.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    pub addr: String,
    pub limits: Limits,
    pub max_runs: usize,
    pub api_key: Option<String>,
}

/// The largest request body read (1 MiB); one more byte is a 413.
pub const MAX_BODY: usize = 1 << 20;

/// tiny_http drains an unread body when the request is dropped, allocating the *declared* length
/// in one piece first (`vec![0; remaining]`): a declared terabyte fails that allocation and aborts
/// the whole process. Up to this size the allocation is only address space, touched as far as the
/// client really sends; past it the request is abandoned unanswered instead (see
/// [`Reply::abandon`]), which leaks its connection but keeps the server alive.
const UNDRAINABLE_BODY: usize = 256 << 20;

/// Binds `cfg.addr` and serves until the listener fails.
pub fn serve(cfg: ApiConfig) -> io::Result<()> {
    let mut server = ApiServer::start(cfg)?;
    eprintln!("pacer api: listening on http://{}", server.addr());
    match server.thread.take().map(JoinHandle::join) {
        Some(Ok(result)) => result,
        Some(Err(_)) => Err(io::Error::other("the API's receive loop panicked")),
        None => Ok(()),
    }
}

/// A running API server. Stops on [`ApiServer::shutdown`] or drop; runs already going finish on
/// their own threads.
pub struct ApiServer {
    server: Arc<Server>,
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl ApiServer {
    /// Binds `cfg.addr` (port 0 picks a free port) and serves on a background thread.
    pub fn start(cfg: ApiConfig) -> io::Result<ApiServer> {
        let server = Server::http(cfg.addr.as_str()).map_err(|e| {
            io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                format!("cannot listen on {}: {e}", cfg.addr),
            )
        })?;
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| io::Error::other("the API listener has no IP address"))?;
        let server = Arc::new(server);
        let stop = Arc::new(AtomicBool::new(false));
        let state = Arc::new(State {
            openapi: serde_json::to_vec(&openapi::document()).unwrap_or_default(),
            cfg,
            running: AtomicUsize::new(0),
        });
        let (s, st) = (Arc::clone(&server), Arc::clone(&stop));
        let thread = thread::Builder::new()
            .name("api-recv".into())
            .spawn(move || receive_loop(&s, &state, &st))?;
        Ok(ApiServer {
            server,
            addr,
            stop,
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops receiving requests and closes the listener.
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        // The listener closes when the last `Arc<Server>`, this one, drops.
    }
}

struct State {
    cfg: ApiConfig,
    running: AtomicUsize,
    openapi: Vec<u8>,
}

fn receive_loop(server: &Server, state: &Arc<State>, stop: &AtomicBool) -> io::Result<()> {
    loop {
        let rq = match server.recv() {
            Ok(rq) => rq,
            Err(_) if stop.load(Ordering::SeqCst) => return Ok(()),
            // tiny_http's accept thread has ended (e.g. out of file descriptors): nothing more
            // will arrive.
            Err(e) => {
                eprintln!("pacer api: listener failed: {e}");
                return Err(e);
            }
        };
        let state = Arc::clone(state);
        let spawned = thread::Builder::new()
            .name("api-req".into())
            .spawn(move || handle(&state, rq));
        if let Err(e) = spawned {
            // The request was dropped with the closure; tiny_http answers it with an empty 500.
            eprintln!("pacer api: cannot start a request thread: {e}");
        }
    }
}

/// A response to send.
struct Reply {
    status: u16,
    body: Vec<u8>,
    headers: Vec<(&'static str, &'static str)>,
    /// Do not answer, and leak the request rather than let tiny_http drain a huge declared body.
    abandon: bool,
}

impl Reply {
    fn json(status: u16, v: &Value) -> Reply {
        Reply {
            status,
            // Serializing a `Value` cannot fail: its keys are strings.
            body: serde_json::to_vec(v).unwrap_or_default(),
            headers: Vec::new(),
            abandon: false,
        }
    }

    fn error(e: &ApiError) -> Reply {
        let mut r = Reply::json(e.status, &e.body());
        if e.status == 401 {
            r.headers.push(("WWW-Authenticate", "Bearer"));
        }
        r
    }
}

fn handle(state: &State, mut rq: Request) {
    let started = Instant::now();
    let method = rq.method().clone();
    let path = rq.url().split('?').next().unwrap_or("").to_string();
    let reply = catch_unwind(AssertUnwindSafe(|| route(state, &method, &path, &mut rq)))
        .unwrap_or_else(|_| Reply::error(&ApiError::message(500, "internal error")));
    let status = reply.status;
    let outcome = if reply.abandon {
        std::mem::forget(rq);
        "abandoned".to_string()
    } else {
        let mut resp = Response::from_data(reply.body)
            .with_status_code(status)
            .with_chunked_threshold(usize::MAX)
            .with_header(header("Content-Type", "application/json"));
        for (n, v) in reply.headers {
            resp.add_header(header(n, v));
        }
        match rq.respond(resp) {
            Ok(()) => status.to_string(),
            Err(e) => format!("{status} (not delivered: {e})"),
        }
    };
    eprintln!(
        "pacer api: {method} {} {outcome} {:.1} ms",
        printable(&path),
        started.elapsed().as_secs_f64() * 1e3
    );
}

fn header(name: &'static str, value: &'static str) -> Header {
    // Both are static ASCII without line breaks, so the conversion cannot fail.
    Header::from_bytes(name.as_bytes(), value.as_bytes())
        .unwrap_or_else(|_| unreachable!("static header {name}"))
}

/// A path as it may appear in a log line: no control characters, bounded length.
fn printable(path: &str) -> String {
    path.chars()
        .take(200)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// The routes and the one method each answers.
const ROUTES: [(&str, Method); 5] = [
    ("/", Method::Get),
    ("/health", Method::Get),
    ("/openapi.json", Method::Get),
    ("/benchmark", Method::Post),
    ("/fireworks_benchmark", Method::Post),
];

fn route(state: &State, method: &Method, path: &str, rq: &mut Request) -> Reply {
    let open = *method == Method::Get && path == "/health";
    if let Some(key) = &state.cfg.api_key
        && !open
        && !authorized(rq.headers(), key)
    {
        return Reply::error(&ApiError::message(401, "Not authenticated"));
    }
    let Some((_, allowed)) = ROUTES.iter().find(|(p, _)| *p == path) else {
        return Reply::error(&ApiError::message(404, "Not Found"));
    };
    if method != allowed {
        let mut r = Reply::error(&ApiError::message(405, "Method Not Allowed"));
        r.headers.push((
            "Allow",
            if *allowed == Method::Post {
                "POST"
            } else {
                "GET"
            },
        ));
        return r;
    }
    match path {
        "/" => Reply::json(200, &json!({"message": "Hello, World!"})),
        "/health" => Reply::json(200, &json!({"status": "ok"})),
        "/openapi.json" => Reply {
            status: 200,
            body: state.openapi.clone(),
            headers: Vec::new(),
            abandon: false,
        },
        "/benchmark" => benchmark(state, rq, benchmark_input),
        _ => benchmark(state, rq, fireworks_input),
    }
}

/// Reads, checks and runs one benchmark request.
fn benchmark(
    state: &State,
    rq: &mut Request,
    to_input: fn(&Value) -> Result<Input, ApiError>,
) -> Reply {
    if rq.body_length().is_some_and(|n| n > MAX_BODY) {
        let mut r = Reply::error(&too_large());
        r.abandon = rq.body_length().is_some_and(|n| n > UNDRAINABLE_BODY);
        return r;
    }
    let json_body = json_content_type(rq.headers());
    let result = read_body(rq)
        .and_then(|bytes| {
            if !json_body && !bytes.is_empty() {
                // FastAPI does not parse a body sent as another media type; the model then
                // sees raw bytes.
                return Err(ApiError::invalid(
                    vec![json!("body")],
                    "Input should be a valid dictionary or object to extract fields from",
                    "model_attributes_type",
                ));
            }
            parse_json(&bytes)
        })
        .and_then(|v| to_input(&v))
        .and_then(|input| Plan::new(&input, &state.cfg.limits).map_err(ApiError::from))
        .and_then(|plan| run(state, &plan));
    match result {
        Ok(report) => Reply::json(200, &report),
        Err(e) => Reply::error(&e),
    }
}

fn too_large() -> ApiError {
    ApiError::message(413, "Request body too large (max 1 MiB)")
}

fn read_body(rq: &mut Request) -> Result<Vec<u8>, ApiError> {
    let mut bytes = Vec::new();
    rq.as_reader()
        .take(MAX_BODY as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|_| ApiError::message(400, "There was an error parsing the body"))?;
    if bytes.len() > MAX_BODY {
        return Err(too_large());
    }
    Ok(bytes)
}

/// True when the body is to be parsed as JSON: no `Content-Type`, `application/json` or
/// `application/*+json`, as FastAPI decides.
fn json_content_type(headers: &[Header]) -> bool {
    let Some(h) = headers.iter().find(|h| h.field.equiv("Content-Type")) else {
        return true;
    };
    let v = h.value.as_str().trim();
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

/// Takes a run slot, runs the plan and turns the outcome into the report or a 500.
fn run(state: &State, plan: &Plan) -> Result<Value, ApiError> {
    let max = state.cfg.max_runs;
    let Some(_slot) = RunSlot::acquire(&state.running, max) else {
        return Err(ApiError::message(
            429,
            format!("too many runs in progress (max {max})"),
        ));
    };
    match catch_unwind(AssertUnwindSafe(|| engine::run(plan, None))) {
        Ok(Ok(stats)) => Ok(report::to_json(plan, &stats)),
        Ok(Err(e)) => Err(ApiError::message(500, format!("run failed: {e}"))),
        Err(_) => Err(ApiError::message(500, "run failed: internal error")),
    }
}

/// One of `max_runs` places; given back on drop, panics included.
struct RunSlot<'a>(&'a AtomicUsize);

impl<'a> RunSlot<'a> {
    fn acquire(running: &'a AtomicUsize, max: usize) -> Option<RunSlot<'a>> {
        running
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| RunSlot(running))
    }
}

impl Drop for RunSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// `Authorization: Bearer <key>` or `X-API-Key: <key>`.
fn authorized(headers: &[Header], key: &str) -> bool {
    let mut ok = false;
    for h in headers {
        let v = h.value.as_str().trim();
        if h.field.equiv("Authorization") {
            if let Some((scheme, token)) = v.split_once(' ')
                && scheme.eq_ignore_ascii_case("bearer")
            {
                ok |= ct_eq(token.trim().as_bytes(), key.as_bytes());
            }
        } else if h.field.equiv("X-API-Key") {
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

    fn hdr(n: &str, v: &str) -> Header {
        Header::from_bytes(n.as_bytes(), v.as_bytes()).unwrap()
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
        assert!(json_content_type(&[]));
        assert!(json_content_type(&[hdr(
            "Content-Type",
            "application/json; charset=utf-8"
        )]));
        assert!(json_content_type(&[hdr(
            "content-type",
            "Application/vnd.api+json"
        )]));
        assert!(!json_content_type(&[hdr("Content-Type", "text/plain")]));
        assert!(!json_content_type(&[hdr(
            "Content-Type",
            "application/x-www-form-urlencoded"
        )]));
    }

    #[test]
    fn run_slots_are_given_back() {
        let n = AtomicUsize::new(0);
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
