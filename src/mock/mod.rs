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
//!   time to first token, inter-token gap, token count and tokens per event; usage counts the
//!   prompt's words, and the request's `max_tokens` caps the answer (module `routes::llm`);
//! - `/fault/<name>`: that [`Fault`] for that request (module `routes::fault`);
//! - `GET /__counters`: the [`Counters`] as JSON (not counted, and spared by a configured fault).
//!
//! Modules, each importing only those listed after it (no circle):
//! - this one: [`MockServer`] (bind, the accept thread, shutdown); it joins the wire to the routes;
//! - `routes`: what a request gets, by path and config (`/`, `/__counters`, the 404 of an unknown
//!   fault), with `routes::fault` (the misbehaviours) importing `routes::llm` (the OpenAI answers,
//!   which the `sse-*` faults break);
//! - `wire`: one connection's transport, request reading, head writing, timed sleeps and
//!   keep-alive; it calls the routes only through the handler it is given;
//! - `tls`: the CA and certificate generated at start;
//! - `state`: what the threads share (stop flag, counters); `config`: [`MockConfig`], [`Fault`].
//!
//! Shutdown is prompt because every blocking call has a short timeout and every loop checks the stop
//! flag: sockets have 100 ms read and write timeouts, and sleeps are cut into slices.

mod config;
mod routes;
mod state;
mod tls;
mod wire;

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::{self, JoinHandle};
use std::time::Duration;

pub use config::{Fault, MockConfig, ServerTimings, UnknownFault};
pub use state::Counters;
use state::Shared;

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
        let log = match &cfg.log_requests {
            Some(path) => Some(std::sync::Mutex::new(std::fs::File::create(path)?)),
            None => None,
        };
        let shared = Arc::new(Shared {
            log,
            ..Shared::new(cfg, tls)
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
            .spawn(move || wire::serve(stream, conn_shared, routes::handle));
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
