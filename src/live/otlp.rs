//! `--otlp URL`: a run's figures pushed as OTLP/HTTP JSON metrics (the JSON encoding of
//! `ExportMetricsServiceRequest`, no protobuf) to an OpenTelemetry collector, every interval of
//! the run's timeline and once more at its end.
//!
//! The pushes go from a thread of their own ([`pushing`]), reading the engine's lock-free
//! counters, so a slow or absent collector never holds up a send: each push has a short timeout
//! ([`TIMEOUT`]), a failed one is counted and the run goes on, and the caller says once, at the
//! end, how the pushes went ([`Summary`]). Each push is one request on a connection of its own
//! (`Connection: close`), written by [`http1::build_request`] and read by [`http1::parse_head`]
//! and [`http1::Body`]: plain TCP for `http://`, rustls as the engine's for `https://`.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

use super::{Figures, Kind, Value};
use crate::engine::Progress;
use crate::http1::{self, Body, parse_head};
use crate::plan::{Plan, Target};
use crate::wall::now_unix_ns;

/// The longest one push may take, connecting included.
pub const TIMEOUT: Duration = Duration::from_secs(2);
/// Bytes of an answer read at most (a collector answers `{}` or a short partial-success note).
const MAX_ANSWER: usize = 64 * 1024;

/// Where and what to push: the collector and the attributes every data point carries.
#[derive(Clone, Debug)]
pub struct Push {
    pub target: Target,
    pub attributes: Vec<(&'static str, String)>,
    /// Pushes while the run lasts, this far apart (the run's timeline interval).
    pub every: Duration,
}

impl Push {
    /// The pushes `plan` asks for (`--otlp`), each data point labelled with the run's `kind`
    /// (`bench`, `llm`), its target (query values hidden) and `extra` (the API's `run_id`).
    pub fn of(plan: &Plan, extra: Vec<(&'static str, String)>) -> Option<Push> {
        let target = plan.otlp.clone()?;
        let kind = if plan.llm.is_some() { "llm" } else { "bench" };
        let mut attributes = extra;
        attributes.push(("kind", kind.to_string()));
        attributes.push(("target", plan.url.clone()));
        Some(Push {
            target,
            attributes,
            every: plan.interval,
        })
    }

    /// The collector's URL as it may be echoed (query values hidden).
    pub fn url(&self) -> String {
        self.target.public_url()
    }
}

/// How the pushes of a run went.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub pushes: u64,
    pub failed: u64,
    /// The first failure, to say once.
    pub first_error: Option<String>,
}

impl Summary {
    fn add(&mut self, result: Result<(), String>) {
        self.pushes += 1;
        if let Err(e) = result {
            self.failed += 1;
            self.first_error.get_or_insert(e);
        }
    }

    /// Adds another run's pushes (a sweep's steps go to one collector).
    pub fn absorb(&mut self, other: Summary) {
        self.pushes += other.pushes;
        self.failed += other.failed;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    /// The one line to say when some pushes failed (None when all went through).
    pub fn warning(&self, url: &str) -> Option<String> {
        let e = self.first_error.as_deref()?;
        Some(format!(
            "--otlp {url}: {} of {} pushes failed (the run was not affected); first: {e}",
            self.failed, self.pushes
        ))
    }

    /// What a report says of the pushes (`otlp`).
    pub fn to_json(&self, url: &str) -> Json {
        json!({
            "url": url,
            "pushes": self.pushes,
            "failed": self.failed,
            "error": self.first_error,
        })
    }
}

/// Checks an `--otlp` URL: `http://` or `https://`, with a host; the path is where metrics go
/// (a collector's is `/v1/metrics`).
pub fn parse(url: &str) -> Result<Target, String> {
    Target::parse(url)
}

/// The request body of one push: `figures` at `now` (Unix ns), counted since `start`.
pub fn body(
    figures: &Figures,
    attributes: &[(&'static str, String)],
    start: i64,
    now: i64,
) -> Json {
    let attrs: Vec<Json> = attributes
        .iter()
        .map(|(k, v)| json!({"key": k, "value": {"stringValue": v}}))
        .collect();
    let metrics: Vec<Json> = figures
        .values()
        .into_iter()
        .map(|(s, v)| {
            // OTLP's JSON encoding writes 64-bit integers (fixed64 times, int64 values) as strings.
            let mut point = json!({
                "attributes": attrs,
                "startTimeUnixNano": start.to_string(),
                "timeUnixNano": now.to_string(),
            });
            match v {
                Value::Int(n) => point["asInt"] = json!(n.to_string()),
                Value::Float(x) => point["asDouble"] = json!(x),
            }
            let mut m = json!({"name": s.otel, "description": s.help, "unit": s.unit});
            match s.kind {
                // AGGREGATION_TEMPORALITY_CUMULATIVE (2): counts since the run's start.
                Kind::Counter => {
                    m["sum"] = json!({"dataPoints": [point], "aggregationTemporality": 2,
                        "isMonotonic": true})
                }
                Kind::Gauge => m["gauge"] = json!({"dataPoints": [point]}),
            }
            m
        })
        .collect();
    json!({"resourceMetrics": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "pacer"}}]},
        "scopeMetrics": [{
            "scope": {"name": "pacer", "version": env!("CARGO_PKG_VERSION")},
            "metrics": metrics,
        }],
    }]})
}

/// Runs `run` while a thread pushes `progress`'s figures every `push.every`; then pushes the
/// figures `last` makes of its result (the run's final counts). Without `push`, only runs it.
pub fn pushing<R>(
    push: Option<&Push>,
    progress: &Progress,
    run: impl FnOnce() -> R,
    last: impl FnOnce(&R) -> Option<Figures>,
) -> (R, Option<Summary>) {
    let Some(push) = push else {
        return (run(), None);
    };
    let start = now_unix_ns();
    let started = Instant::now();
    let (stop, stopped) = mpsc::channel::<()>();
    let (result, mut summary) = std::thread::scope(|scope| {
        let pusher = std::thread::Builder::new()
            .name("pacer-otlp".into())
            .spawn_scoped(scope, move || {
                let mut summary = Summary::default();
                // Until the run ends (its sender dropped or a message sent).
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(push.every) {
                    let figures = Figures::read(progress, started.elapsed());
                    summary.add(send(push, &figures, start));
                }
                summary
            });
        let result = run();
        drop(stop);
        let summary = match pusher {
            Ok(h) => h.join().unwrap_or_default(),
            Err(e) => Summary {
                first_error: Some(format!("cannot start the push thread: {e}")),
                ..Summary::default()
            },
        };
        (result, summary)
    });
    if let Some(figures) = last(&result) {
        summary.add(send(push, &figures, start));
    }
    (result, Some(summary))
}

/// One push; Err says why it failed.
fn send(push: &Push, figures: &Figures, start: i64) -> Result<(), String> {
    let body = body(figures, &push.attributes, start, now_unix_ns()).to_string();
    post(&push.target, body.as_bytes()).map_err(|e| format!("{}: {e}", push.target.public_url()))
}

/// POSTs `body` (JSON) to `target` and reads the answer; a 2xx is success.
pub fn post(target: &Target, body: &[u8]) -> Result<(), String> {
    let deadline = Instant::now() + TIMEOUT;
    let headers = [
        ("Content-Type".to_string(), "application/json".to_string()),
        ("Connection".to_string(), "close".to_string()),
    ];
    let request = http1::build_request("POST", &target.host_header, &target.path, &headers, body);
    let tcp = connect(target, deadline)?;
    let status = if target.tls {
        let config = crate::engine::tls::client_config(None, false)?;
        let name = crate::engine::tls::server_name(&target.host)?;
        let conn = rustls::ClientConnection::new(config, name).map_err(|e| format!("tls: {e}"))?;
        exchange(rustls::StreamOwned::new(conn, tcp), &request, deadline)
    } else {
        exchange(tcp, &request, deadline)
    }?;
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(format!("HTTP {status}"))
    }
}

fn connect(target: &Target, deadline: Instant) -> Result<TcpStream, String> {
    let addrs: Vec<SocketAddr> = crate::engine::resolve(&target.host, target.port)
        .ok_or_else(|| format!("dns: {} does not resolve", target.host))?;
    let mut last = String::new();
    for addr in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match TcpStream::connect_timeout(&addr, left) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = format!("connect {addr}: {e}"),
        }
    }
    Err(if last.is_empty() {
        "timeout".into()
    } else {
        last
    })
}

/// The stream whose timeouts bound each read and write.
trait Timed: Read + Write {
    fn tcp(&self) -> &TcpStream;
}

impl Timed for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl Timed for rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    fn tcp(&self) -> &TcpStream {
        &self.sock
    }
}

/// Writes `request` and reads the answer's head and body by `deadline`; the status.
fn exchange(mut s: impl Timed, request: &[u8], deadline: Instant) -> Result<u16, String> {
    let arm = |s: &dyn Timed| -> Result<(), String> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("timeout".into());
        }
        let t = s.tcp();
        t.set_read_timeout(Some(left))
            .and_then(|_| t.set_write_timeout(Some(left)))
            .map_err(|e| e.to_string())
    };
    arm(&s)?;
    s.write_all(request)
        .and_then(|_| s.flush())
        .map_err(|e| io_error("write", &e))?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let head = loop {
        arm(&s)?;
        let n = s.read(&mut chunk).map_err(|e| io_error("read", &e))?;
        if n == 0 {
            return Err("the collector closed the connection before answering".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        match parse_head(&buf, false) {
            Ok(Some(h)) if h.interim => {
                buf.drain(..h.len);
            }
            Ok(Some(h)) => break h,
            Ok(None) if buf.len() < MAX_ANSWER => {}
            Ok(None) => return Err("answer head too large".into()),
            Err(e) => return Err(e.to_string()),
        }
    };
    // The body is read to its end, so the collector's answer is whole; its content is not used.
    let mut framing = Body::new(head.framing);
    let mut rest = buf[head.len..].to_vec();
    let mut read = rest.len();
    loop {
        let fed = framing.feed(&rest, |_| {}).map_err(|e| e.to_string())?;
        if fed.done {
            return Ok(head.status);
        }
        arm(&s)?;
        let n = s.read(&mut chunk).map_err(|e| io_error("read", &e))?;
        if n == 0 {
            framing.eof().map_err(|e| e.to_string())?;
            return Ok(head.status);
        }
        read += n;
        if read > MAX_ANSWER {
            // Enough to know the status; the rest is the collector's business.
            return Ok(head.status);
        }
        rest = chunk[..n].to_vec();
    }
}

fn io_error(what: &str, e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => format!("{what}: timeout"),
        _ => format!("{what}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_follows_the_otlp_json_encoding() {
        let f = Figures {
            sent: 12,
            responses: 10,
            errors: 2,
            in_flight: 0,
            rate: Some(6.0),
            p50: Some(0.001),
            p99: Some(0.004),
            first_token: false,
        };
        let b = body(&f, &[("kind", "bench".into())], 5, 7);
        let rm = &b["resourceMetrics"][0];
        assert_eq!(
            rm["resource"]["attributes"][0],
            json!({"key": "service.name", "value": {"stringValue": "pacer"}})
        );
        let metrics = rm["scopeMetrics"][0]["metrics"].as_array().unwrap();
        assert_eq!(metrics.len(), 7);
        let sent = &metrics[0];
        assert_eq!(sent["name"], "pacer.requests.sent");
        assert_eq!(sent["sum"]["isMonotonic"], true);
        assert_eq!(sent["sum"]["aggregationTemporality"], 2);
        let p = &sent["sum"]["dataPoints"][0];
        assert_eq!(p["asInt"], "12");
        assert_eq!(p["timeUnixNano"], "7");
        assert_eq!(p["startTimeUnixNano"], "5");
        assert_eq!(p["attributes"][0]["key"], "kind");
        let p99 = &metrics[6];
        assert_eq!(p99["name"], "pacer.response_time.p99");
        assert_eq!(p99["unit"], "s");
        assert_eq!(p99["gauge"]["dataPoints"][0]["asDouble"], 0.004);
    }
}
