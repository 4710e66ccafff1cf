//! The mock's wire: one connection's transport (plain or TLS), reading request heads (httparse)
//! and Content-Length bodies, writing response heads and bodies, timed sleeps, keep-alive and the
//! four ways a connection ends ([`Next`]). It knows nothing of paths: [`serve`] hands each request
//! to the handler it is given (the routes), and the routes call back only through [`Conn`].

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use rustls::{ServerConnection, StreamOwned};

use super::state::Shared;

/// How long a blocking read or write waits before the stop flag is checked again.
const POLL: Duration = Duration::from_millis(100);
/// Largest request head accepted (431 beyond).
const MAX_HEAD: usize = 64 * 1024;
/// Largest request body accepted (413 beyond).
const MAX_BODY: usize = 16 * 1024 * 1024;
const MAX_HEADERS: usize = 64;
/// The last stretch before a deadline is spent yielding rather than sleeping (by one thread at a
/// time): a sleep overshoots by the kernel's timer slack and wake-up latency (60-300 µs), which would
/// show as time-to-first-token error in the client.
const SPIN: Duration = Duration::from_micros(150);

enum Transport {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
}

impl Transport {
    fn tcp(&self) -> &TcpStream {
        match self {
            Transport::Plain(s) => s,
            Transport::Tls(s) => &s.sock,
        }
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.read(buf),
            Transport::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.write(buf),
            Transport::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(s) => s.flush(),
            Transport::Tls(s) => s.flush(),
        }
    }
}

/// Socket timeouts surface as `WouldBlock` (or `TimedOut`): the moment to look at the stop flag.
fn is_poll_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// How a connection ends after a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Next {
    /// Wait for the next request.
    KeepAlive,
    /// Close cleanly (TLS `close_notify`, then FIN).
    Close,
    /// Close without `close_notify`: the client sees the body cut.
    Abort,
    /// Close with SO_LINGER 0: the client gets RST.
    Reset,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Method {
    Head,
    Other,
}

pub(super) struct Request {
    pub(super) method: Method,
    /// The path without the query string.
    pub(super) path: String,
    pub(super) keep_alive: bool,
    pub(super) body: Vec<u8>,
    /// When the last byte of the request was read: the origin of every timed answer.
    pub(super) end: Instant,
    /// Its headers, kept only when the mock logs requests (`log_requests`).
    pub(super) headers: Vec<(String, String)>,
}

enum ReadEnd {
    /// The client closed, an I/O error, or shutdown.
    Closed,
    /// A request the mock will not serve: answer this status and close.
    Malformed(u16, &'static str),
}

pub(super) struct Conn {
    io: Transport,
    pub(super) shared: Arc<Shared>,
    /// Bytes received and not yet consumed (the start of a pipelined request, say).
    buf: Vec<u8>,
    /// Scratch for building responses, reused across requests.
    pub(super) out: Vec<u8>,
    /// The connection's number (from 1, in accept order).
    pub(super) id: u64,
}

/// What answers a request: the routes. Its [`Next`] says how the connection goes on.
pub(super) type Handler = fn(&mut Conn, Request) -> Next;

/// Serves one accepted connection until it ends, handing every well-formed request to `handle`;
/// a malformed one is answered here (400, 411, 413 or 431) and the connection closed.
pub(super) fn serve(stream: TcpStream, shared: Arc<Shared>, handle: Handler) {
    // Token events must leave when written, not when Nagle decides.
    let setup = stream
        .set_nodelay(true)
        .and_then(|()| stream.set_read_timeout(Some(POLL)))
        .and_then(|()| stream.set_write_timeout(Some(POLL)));
    if setup.is_err() {
        return;
    }
    let io = match &shared.tls {
        Some(config) => match ServerConnection::new(Arc::clone(config)) {
            Ok(tls) => Transport::Tls(Box::new(StreamOwned::new(tls, stream))),
            Err(_) => return,
        },
        None => Transport::Plain(stream),
    };
    let id = shared
        .conn_ids
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut conn = Conn {
        io,
        id,
        shared,
        buf: Vec::with_capacity(4096),
        out: Vec::with_capacity(4096),
    };
    // Bounded: each turn consumes one request, and reads give up on shutdown.
    let next = loop {
        let next = match conn.read_request() {
            Ok(req) => handle(&mut conn, req),
            Err(ReadEnd::Closed) => Next::Abort,
            Err(ReadEnd::Malformed(status, detail)) => {
                conn.shared
                    .counters
                    .requests
                    .fetch_add(1, Ordering::Relaxed);
                let body = format!("{{\"error\":{{\"message\":\"{detail}\"}}}}");
                conn.respond(status, "application/json", body.as_bytes(), false, &[]);
                Next::Close
            }
        };
        if next != Next::KeepAlive || conn.shared.stopped() {
            break next;
        }
    };
    conn.finish(next);
}

impl Conn {
    pub(super) fn stopped(&self) -> bool {
        self.shared.stopped()
    }

    /// Reads more bytes into `buf`; false on EOF, error or shutdown.
    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        // Bounded by the stop flag: each timeout comes back here.
        loop {
            if self.stopped() {
                return false;
            }
            match self.io.read(&mut chunk) {
                Ok(0) => return false,
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return true;
                }
                Err(e) if is_poll_timeout(&e) => continue,
                Err(_) => return false,
            }
        }
    }

    fn read_request(&mut self) -> Result<Request, ReadEnd> {
        let mut head = loop {
            if !self.buf.is_empty() {
                match parse_head(&self.buf)? {
                    Some(head) => break head,
                    None if self.buf.len() > MAX_HEAD => {
                        return Err(ReadEnd::Malformed(431, "request head too large"));
                    }
                    None => {}
                }
            }
            if !self.fill() {
                return Err(ReadEnd::Closed);
            }
        };
        let headers = match self.shared.log {
            Some(_) => header_list(&self.buf[..head.len]),
            None => Vec::new(),
        };
        self.buf.drain(..head.len);
        if head.content_length > MAX_BODY {
            return Err(ReadEnd::Malformed(413, "request body too large"));
        }
        if head.expect_continue && self.buf.len() < head.content_length {
            let shared = Arc::clone(&self.shared);
            if !write_all(&mut self.io, &shared, b"HTTP/1.1 100 Continue\r\n\r\n") {
                return Err(ReadEnd::Closed);
            }
        }
        while self.buf.len() < head.content_length {
            if !self.fill() {
                return Err(ReadEnd::Closed);
            }
        }
        let body: Vec<u8> = self.buf.drain(..head.content_length).collect();
        Ok(Request {
            method: head.method,
            path: std::mem::take(&mut head.path),
            keep_alive: head.keep_alive,
            body,
            end: Instant::now(),
            headers,
        })
    }

    /// Answers `req` with a whole JSON response, then keeps or closes the connection as asked.
    pub(super) fn answer_json(
        &mut self,
        req: &Request,
        status: u16,
        body: &[u8],
        extra: &[(&str, &str)],
    ) -> Next {
        if !self.respond(status, "application/json", body, req.keep_alive, extra) {
            return Next::Abort;
        }
        keep_or_close(req.keep_alive)
    }

    /// Writes a whole response with a Content-Length body, and counts its status.
    pub(super) fn respond(
        &mut self,
        status: u16,
        content_type: &str,
        body: &[u8],
        keep_alive: bool,
        extra: &[(&str, &str)],
    ) -> bool {
        self.out.clear();
        write_head(
            &mut self.out,
            status,
            content_type,
            Some(body.len()),
            keep_alive,
            extra,
        );
        self.out.extend_from_slice(body);
        self.shared.counters.count_status(status);
        self.send_out()
    }

    /// Sends `out`; false when the client is gone or on shutdown.
    pub(super) fn send_out(&mut self) -> bool {
        write_all(&mut self.io, &self.shared, &self.out)
    }

    pub(super) fn send(&mut self, bytes: &[u8]) -> bool {
        write_all(&mut self.io, &self.shared, bytes)
    }

    /// Sleeps until `deadline` in short slices; false if shutdown came first.
    pub(super) fn sleep_until(&self, deadline: Instant) -> bool {
        // Bounded by the deadline and the stop flag.
        loop {
            if self.stopped() {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            let left = deadline - now;
            if left > SPIN {
                thread::sleep((left - SPIN).min(POLL));
            } else if self.shared.spinner.swap(true, Ordering::Acquire) {
                // Someone else is spinning: a busy mock sleeps, so spinning never costs more than
                // one core's share of the last stretches.
                thread::sleep(left);
            } else {
                // Bounded by the deadline (at most SPIN).
                while Instant::now() < deadline {
                    thread::yield_now();
                }
                self.shared.spinner.store(false, Ordering::Release);
                return !self.stopped();
            }
        }
    }

    /// Holds the connection, discarding what the client sends, until it closes or shutdown.
    pub(super) fn hold(&mut self) {
        while self.fill() {
            self.buf.clear();
        }
    }

    fn finish(mut self, next: Next) {
        match next {
            Next::KeepAlive | Next::Close => {
                if let Transport::Tls(tls) = &mut self.io {
                    tls.conn.send_close_notify();
                    let shared = Arc::clone(&self.shared);
                    flush_all(&mut self.io, &shared);
                }
                let _ = self.io.tcp().shutdown(Shutdown::Write);
            }
            Next::Abort => {}
            Next::Reset => {
                let _ =
                    rustix::net::sockopt::set_socket_linger(self.io.tcp(), Some(Duration::ZERO));
            }
        }
    }
}

pub(super) fn keep_or_close(keep_alive: bool) -> Next {
    if keep_alive {
        Next::KeepAlive
    } else {
        Next::Close
    }
}

/// Writes all of `bytes` (and, with TLS, pushes the records out); false when the client is gone
/// or on shutdown.
fn write_all(io: &mut Transport, shared: &Shared, mut bytes: &[u8]) -> bool {
    // Bounded: every turn writes something, or waits one POLL and checks the stop flag.
    while !bytes.is_empty() {
        if shared.stopped() {
            return false;
        }
        match io.write(bytes) {
            Ok(0) => return false,
            Ok(n) => bytes = &bytes[n..],
            Err(e) if is_poll_timeout(&e) => {}
            Err(_) => return false,
        }
    }
    flush_all(io, shared)
}

fn flush_all(io: &mut Transport, shared: &Shared) -> bool {
    // Bounded like write_all. Plain sockets have nothing buffered; TLS may hold records.
    loop {
        let pending = match io {
            Transport::Plain(_) => return true,
            Transport::Tls(tls) => tls.conn.wants_write(),
        };
        if !pending {
            return true;
        }
        if shared.stopped() {
            return false;
        }
        match io.flush() {
            Ok(()) => {}
            Err(e) if is_poll_timeout(&e) => {}
            Err(_) => return false,
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        411 => "Length Required",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// A response head; `len: None` means a chunked body.
pub(super) fn write_head(
    out: &mut Vec<u8>,
    status: u16,
    content_type: &str,
    len: Option<usize>,
    keep_alive: bool,
    extra: &[(&str, &str)],
) {
    use std::fmt::Write as _;
    let mut head = String::with_capacity(160);
    // Writing to a String cannot fail.
    let _ = write!(head, "HTTP/1.1 {status} {}\r\n", reason(status));
    let _ = write!(
        head,
        "Server: pacer-mock\r\nContent-Type: {content_type}\r\n"
    );
    match len {
        Some(len) => {
            let _ = write!(head, "Content-Length: {len}\r\n");
        }
        None => head.push_str("Transfer-Encoding: chunked\r\n"),
    }
    // Said even when HTTP/1.1 implies it: HTTP/1.0 clients (ab -k) keep the connection only then.
    head.push_str(if keep_alive {
        "Connection: keep-alive\r\n"
    } else {
        "Connection: close\r\n"
    });
    for (name, value) in extra {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    head.push_str("\r\n");
    out.extend_from_slice(head.as_bytes());
}

/// The parts of a request head the mock acts on.
#[derive(Debug, PartialEq, Eq)]
struct Head {
    /// Bytes of the head, blank line included.
    len: usize,
    method: Method,
    path: String,
    keep_alive: bool,
    content_length: usize,
    expect_continue: bool,
}

/// The headers of a complete head (names lower case), for the request log.
fn header_list(head: &[u8]) -> Vec<(String, String)> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    if req.parse(head).is_err() {
        return Vec::new();
    }
    req.headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect()
}

/// `Ok(None)`: the head is not complete yet.
fn parse_head(buf: &[u8]) -> Result<Option<Head>, ReadEnd> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(ReadEnd::Malformed(431, "too many request headers"));
        }
        Err(_) => return Err(ReadEnd::Malformed(400, "malformed request")),
    };
    let malformed = ReadEnd::Malformed(400, "malformed request");
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(malformed);
    };
    let path = target
        .split(['?', '#'])
        .next()
        .unwrap_or(target)
        .to_string();
    let mut keep_alive = minor == 1;
    let mut content_length: Option<usize> = None;
    let mut expect_continue = false;
    for h in req.headers.iter() {
        let value = std::str::from_utf8(h.value)
            .map_err(|_| ReadEnd::Malformed(400, "malformed request"))?;
        if h.name.eq_ignore_ascii_case("content-length") {
            let n: usize = value
                .trim()
                .parse()
                .map_err(|_| ReadEnd::Malformed(400, "bad content-length"))?;
            if content_length.is_some_and(|m| m != n) {
                return Err(ReadEnd::Malformed(400, "conflicting content-length"));
            }
            content_length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(ReadEnd::Malformed(
                411,
                "chunked request bodies are not supported; send Content-Length",
            ));
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    keep_alive = true;
                }
            }
        } else if h.name.eq_ignore_ascii_case("expect") {
            expect_continue = value.trim().eq_ignore_ascii_case("100-continue");
        }
    }
    let method = if method == "HEAD" {
        Method::Head
    } else {
        Method::Other
    };
    Ok(Some(Head {
        len,
        method,
        path,
        keep_alive,
        content_length: content_length.unwrap_or(0),
        expect_continue,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(bytes: &[u8]) -> Head {
        match parse_head(bytes) {
            Ok(Some(head)) => head,
            Ok(None) => panic!("partial head"),
            Err(ReadEnd::Malformed(status, detail)) => panic!("{status} {detail}"),
            Err(ReadEnd::Closed) => panic!("closed"),
        }
    }

    fn rejected(bytes: &[u8]) -> u16 {
        match parse_head(bytes) {
            Err(ReadEnd::Malformed(status, _)) => status,
            _ => 0,
        }
    }

    #[test]
    fn parses_heads() {
        let h = head(b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(
            (h.path.as_str(), h.keep_alive, h.content_length, h.len),
            ("/a", true, 0, 32)
        );
        let h = head(
            b"POST /v1/completions HTTP/1.1\r\nContent-Length: 12\r\nConnection: close\r\n\r\n",
        );
        assert_eq!((h.keep_alive, h.content_length), (false, 12));
        let h = head(b"GET / HTTP/1.0\r\n\r\n");
        assert!(!h.keep_alive);
        let h = head(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
        assert!(h.keep_alive);
        let h = head(b"HEAD / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n");
        assert_eq!((h.method, h.expect_continue), (Method::Head, true));
    }

    #[test]
    fn partial_heads_wait() {
        let full = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        for split in 1..full.len() {
            assert!(
                matches!(parse_head(&full[..split]), Ok(None)),
                "split {split}"
            );
        }
    }

    #[test]
    fn rejects_bad_heads() {
        assert_eq!(
            rejected(b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n"),
            400
        );
        assert_eq!(
            rejected(b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            400
        );
        assert_eq!(
            rejected(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            411
        );
        assert_eq!(rejected(b"\x01\x02 nonsense\r\n\r\n"), 400);
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..100 {
            many.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(rejected(&many), 431);
    }

    #[test]
    fn heads_are_well_formed() {
        let mut out = Vec::new();
        write_head(
            &mut out,
            429,
            "application/json",
            Some(2),
            false,
            &[("Retry-After", "1")],
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 429 Too Many Requests\r\nServer: pacer-mock\r\nContent-Type: application/json\r\n\
             Content-Length: 2\r\nConnection: close\r\nRetry-After: 1\r\n\r\n"
        );
    }
}
