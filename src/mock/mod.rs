//! Built-in mock targets on loopback: what `pacer mock`, `pacer demo` and the tests benchmark against.
//!
//! A [`MockServer`] is a real HTTP/1.1 server (optionally HTTPS with a CA generated at start): an accept
//! thread and one thread per connection with blocking I/O, because a mock must above all be obviously
//! correct, and a thread per connection is cheap enough for a few thousand requests per second.
//! Requests are parsed with httparse directly (not with `crate::http1`, which is the client's parser and
//! is what the mock tests).
//!
//! Routes (the query string is ignored):
//! - `/` and any other path: 200 or 400 by a seeded mix, after a fixed delay ([`MockConfig`]);
//! - `/v1/completions`, `/v1/chat/completions`: OpenAI-compatible answers, streamed as SSE with set
//!   time to first token, inter-token gap and token count (module `llm`);
//! - `/fault/<name>`: that [`Fault`] for that request (module `fault`);
//! - `GET /__counters`: the [`Counters`] as JSON (not counted, and spared by a configured fault).
//!
//! Shutdown is prompt because every blocking call has a short timeout and every loop checks the stop
//! flag: sockets have 100 ms read and write timeouts, and sleeps are cut into slices.

mod conn;
mod fault;
mod llm;
mod tls;

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::rng::SplitMix64;

/// What the mock answers and how fast.
#[derive(Clone, Debug)]
pub struct MockConfig {
    /// Share of `/` requests answered 400 instead of 200, like the original's dummy API.
    pub error_rate: f64,
    /// Seed of the 200/400 mix, which is deterministic per request ordinal.
    pub seed: u64,
    /// Fixed delay before answering `/`.
    pub delay: Duration,
    /// The 200 body of `/` (served as JSON).
    pub body: String,
    /// LLM: time from the end of the request to the first token event.
    pub ttft: Duration,
    /// LLM: gap between token events.
    pub itl: Duration,
    /// LLM: number of token events (capped by the request's `max_tokens` when smaller).
    pub tokens: u32,
    /// LLM: send a final usage event when the request asks `stream_options.include_usage`.
    pub usage: bool,
    /// Serve HTTPS with a certificate signed by a CA generated at start.
    pub tls: bool,
    /// Apply this fault to every request, whatever the path.
    pub fault: Option<Fault>,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            error_rate: 0.2,
            seed: 42,
            delay: Duration::ZERO,
            body: r#"{"message":"ok"}"#.to_string(),
            ttft: Duration::from_millis(50),
            itl: Duration::from_millis(10),
            tokens: 20,
            usage: true,
            tls: false,
            fault: None,
        }
    }
}

impl MockConfig {
    /// The status the plain route gives its `ordinal`-th request (0-based, counted over all
    /// connections): a pure function of `seed`, `error_rate` and `ordinal`, so a run of N requests
    /// always sees the same number of 400s whatever the interleaving.
    pub fn status_for(&self, ordinal: u64) -> u16 {
        let u = SplitMix64::new(self.seed ^ ordinal.wrapping_mul(0x9E37_79B9_7F4A_7C15)).next_f64();
        if u < self.error_rate { 400 } else { 200 }
    }
}

/// A misbehaviour of the target, to rehearse how the client names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Read the request, then close with SO_LINGER 0: the client gets a TCP RST.
    Reset,
    /// Read the request, then close without writing a byte.
    CloseBeforeResponse,
    /// Announce `Content-Length: 100`, send 10 bytes, close.
    ShortBody,
    /// A malformed status line, then close.
    Garbage,
    /// A status line, then 100 KiB of headers.
    HugeHeaders,
    /// Chunked headers, then an invalid chunk size.
    BadChunk,
    /// A 200 with a chunked body that never ends (until the client leaves or shutdown).
    EndlessBody,
    /// The response one byte every 100 ms.
    Drip,
    /// Read the request, never answer.
    Stall,
    /// `100 Continue`, then a normal 200.
    Continue,
    /// 429 with `Retry-After: 1`.
    TooManyRequests,
    /// 503 with `Retry-After: 1`.
    Unavailable,
    /// An SSE stream whose second token event is broken JSON.
    SseBrokenJson,
    /// An SSE stream whose second token event is an `error` object.
    SseError,
    /// An SSE stream that ends the body without `data: [DONE]`.
    SseNoDone,
}

impl Fault {
    /// Every fault, in the order of the docs.
    pub const ALL: [Fault; 15] = [
        Fault::Reset,
        Fault::CloseBeforeResponse,
        Fault::ShortBody,
        Fault::Garbage,
        Fault::HugeHeaders,
        Fault::BadChunk,
        Fault::EndlessBody,
        Fault::Drip,
        Fault::Stall,
        Fault::Continue,
        Fault::TooManyRequests,
        Fault::Unavailable,
        Fault::SseBrokenJson,
        Fault::SseError,
        Fault::SseNoDone,
    ];

    /// The kebab-case name used by `--fault` and `/fault/<name>`.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Reset => "reset",
            Fault::CloseBeforeResponse => "close",
            Fault::ShortBody => "short-body",
            Fault::Garbage => "garbage",
            Fault::HugeHeaders => "huge-headers",
            Fault::BadChunk => "bad-chunk",
            Fault::EndlessBody => "endless",
            Fault::Drip => "drip",
            Fault::Stall => "stall",
            Fault::Continue => "continue",
            Fault::TooManyRequests => "429",
            Fault::Unavailable => "503",
            Fault::SseBrokenJson => "sse-broken-json",
            Fault::SseError => "sse-error",
            Fault::SseNoDone => "sse-no-done",
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A fault name that is not one of [`Fault::ALL`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownFault(pub String);

impl fmt::Display for UnknownFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown fault {:?}; expected one of:", self.0)?;
        for fault in Fault::ALL {
            write!(f, " {fault}")?;
        }
        Ok(())
    }
}

impl std::error::Error for UnknownFault {}

impl FromStr for Fault {
    type Err = UnknownFault;

    fn from_str(s: &str) -> Result<Fault, UnknownFault> {
        Fault::ALL
            .into_iter()
            .find(|fault| fault.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownFault(s.to_string()))
    }
}

/// What the mock has seen so far (a snapshot).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    /// Connections accepted.
    pub connections: u64,
    /// Requests read (all routes but `/__counters`).
    pub requests: u64,
    /// Responses with status 200 (including streams and faults that start a 200).
    pub status_200: u64,
    /// Responses with status 400 (the seeded mix and malformed requests).
    pub status_400: u64,
    /// Responses with any other status.
    pub other_status: u64,
    /// Requests on `/v1/completions` and `/v1/chat/completions`.
    pub llm_requests: u64,
}

#[derive(Default)]
struct AtomicCounters {
    connections: AtomicU64,
    requests: AtomicU64,
    status_200: AtomicU64,
    status_400: AtomicU64,
    other_status: AtomicU64,
    llm_requests: AtomicU64,
}

impl AtomicCounters {
    fn snapshot(&self) -> Counters {
        Counters {
            connections: self.connections.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            status_200: self.status_200.load(Ordering::Relaxed),
            status_400: self.status_400.load(Ordering::Relaxed),
            other_status: self.other_status.load(Ordering::Relaxed),
            llm_requests: self.llm_requests.load(Ordering::Relaxed),
        }
    }

    fn count_status(&self, status: u16) {
        let counter = match status {
            200 => &self.status_200,
            400 => &self.status_400,
            _ => &self.other_status,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// State shared by the accept thread and every connection thread.
struct Shared {
    cfg: MockConfig,
    stop: AtomicBool,
    counters: AtomicCounters,
    /// Next ordinal of the plain route, for the seeded mix.
    plain_ordinal: AtomicU64,
    tls: Option<Arc<rustls::ServerConfig>>,
    /// Whether a connection thread is spinning to the last microseconds of a deadline.
    spinner: AtomicBool,
}

impl Shared {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }
}

/// A running mock target. Dropping it shuts it down.
pub struct MockServer {
    addr: SocketAddr,
    url: String,
    ca_pem: Option<String>,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

/// Connection threads hold little: a request buffer and, with TLS, rustls state.
const CONN_STACK: usize = 512 * 1024;

impl MockServer {
    /// Binds `addr` (port 0 picks a free port) and starts serving `cfg` in background threads.
    pub fn start(addr: SocketAddr, cfg: MockConfig) -> io::Result<MockServer> {
        let (tls, ca_pem) = if cfg.tls {
            let identity = tls::Identity::generate()?;
            (Some(identity.server_config), Some(identity.ca_pem))
        } else {
            (None, None)
        };
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let url = server_url(addr, cfg.tls);
        let shared = Arc::new(Shared {
            cfg,
            stop: AtomicBool::new(false),
            counters: AtomicCounters::default(),
            plain_ordinal: AtomicU64::new(0),
            tls,
            spinner: AtomicBool::new(false),
        });
        let accept_shared = Arc::clone(&shared);
        let accept = thread::Builder::new()
            .name("pacer-mock-accept".to_string())
            .spawn(move || accept_loop(listener, accept_shared))?;
        Ok(MockServer {
            addr,
            url,
            ca_pem,
            shared,
            accept: Some(accept),
        })
    }

    /// The bound address (with the real port when started with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, or `https://localhost:PORT` with TLS (the name the certificate carries).
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The PEM of the CA that signed the server certificate, when serving TLS.
    pub fn ca_cert_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// Writes the CA certificate PEM to `path`, for clients that take a CA file (`--ca-cert`, curl
    /// `--cacert`). An error when the server does not serve TLS.
    pub fn write_ca_cert_pem(&self, path: &Path) -> io::Result<()> {
        match &self.ca_pem {
            Some(pem) => std::fs::write(path, pem),
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the mock serves plain HTTP: no CA certificate",
            )),
        }
    }

    /// The configuration served.
    pub fn config(&self) -> &MockConfig {
        &self.shared.cfg
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> Counters {
        self.shared.counters.snapshot()
    }

    /// Stops accepting and ends every connection thread (within about 100 ms).
    pub fn shutdown(self) {
        drop(self);
    }

    fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        let Some(accept) = self.accept.take() else {
            return;
        };
        // The accept thread is blocked in accept(): a connection of our own wakes it up. If that
        // fails, the thread is left to notice the flag at its next connection rather than hang here.
        let wake = wake_addr(self.addr);
        if TcpStream::connect_timeout(&wake, Duration::from_secs(1)).is_ok() {
            let _ = accept.join();
        }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.stop();
    }
}

impl fmt::Debug for MockServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockServer")
            .field("addr", &self.addr)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

fn server_url(addr: SocketAddr, tls: bool) -> String {
    let ip = addr.ip();
    let port = addr.port();
    if tls && (ip.is_loopback() || ip.is_unspecified()) {
        return format!("https://localhost:{port}");
    }
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{}", wake_addr(addr))
}

/// The address a client on this machine reaches the listener at.
fn wake_addr(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, addr.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, addr.port()).into(),
        _ => addr,
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    let mut prune_at = 64;
    // Bounded by the stop flag: MockServer::stop sets it and then connects to wake us.
    for incoming in listener.incoming() {
        if shared.stopped() {
            break;
        }
        let stream = match incoming {
            Ok(stream) => stream,
            Err(_) => {
                // Out of descriptors and the like: back off instead of spinning.
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        shared.counters.connections.fetch_add(1, Ordering::Relaxed);
        let conn_shared = Arc::clone(&shared);
        let spawned = thread::Builder::new()
            .name("pacer-mock-conn".to_string())
            .stack_size(CONN_STACK)
            .spawn(move || conn::serve(stream, conn_shared));
        // A failed spawn drops the stream: the client sees the connection closed.
        if let Ok(handle) = spawned {
            threads.push(handle);
        }
        if threads.len() >= prune_at {
            threads.retain(|t| !t.is_finished());
            prune_at = (threads.len() * 2).max(64);
        }
    }
    for t in threads {
        let _ = t.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_names_round_trip() {
        for fault in Fault::ALL {
            assert_eq!(fault.name().parse::<Fault>(), Ok(fault));
        }
        assert_eq!("SHORT-BODY".parse::<Fault>(), Ok(Fault::ShortBody));
        let err = "nope".parse::<Fault>().unwrap_err();
        assert_eq!(err, UnknownFault("nope".to_string()));
        assert!(err.to_string().contains("sse-no-done"));
    }

    #[test]
    fn mix_is_deterministic_and_near_the_rate() {
        let cfg = MockConfig::default();
        let a: Vec<u16> = (0..10_000).map(|i| cfg.status_for(i)).collect();
        let b: Vec<u16> = (0..10_000).map(|i| cfg.status_for(i)).collect();
        assert_eq!(a, b);
        let errors = a.iter().filter(|&&s| s == 400).count();
        assert!((1800..2200).contains(&errors), "{errors} 400s in 10000");
        let other_seed = MockConfig {
            seed: 7,
            ..MockConfig::default()
        };
        let c: Vec<u16> = (0..10_000).map(|i| other_seed.status_for(i)).collect();
        assert_ne!(a, c);
    }

    #[test]
    fn mix_extremes() {
        let none = MockConfig {
            error_rate: 0.0,
            ..MockConfig::default()
        };
        let all = MockConfig {
            error_rate: 1.0,
            ..MockConfig::default()
        };
        assert!((0..1000).all(|i| none.status_for(i) == 200));
        assert!((0..1000).all(|i| all.status_for(i) == 400));
    }

    #[test]
    fn urls() {
        let v4: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let v6: SocketAddr = "[::1]:8080".parse().unwrap();
        assert_eq!(server_url(v4, false), "http://127.0.0.1:8080");
        assert_eq!(server_url(any, false), "http://127.0.0.1:8080");
        assert_eq!(server_url(v6, false), "http://[::1]:8080");
        assert_eq!(server_url(v4, true), "https://localhost:8080");
        assert_eq!(server_url(any, true), "https://localhost:8080");
    }
}
