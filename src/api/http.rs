//! The API's side of HTTP/1.1: request heads (httparse), request bodies (`Content-Length` or
//! chunked, with a size cap and a deadline), and responses.
//!
//! This module owns the bytes of one exchange on a connection whose head has already arrived
//! (the [`gate`](super::gate) reads heads, under its connection cap and head timeout, and hands
//! over the connection with the parsed [`Request`]). Routing is `api`'s. A body is read only when
//! a route asks for it, so a refused request never costs its upload; a connection whose body was
//! not read to its end is closed after the response rather than drained.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::http1::ChunkedDecoder;

/// A request head longer than this is answered 431.
pub const MAX_HEAD: usize = 16 * 1024;
/// The most header fields in a request head; more is a 431.
const MAX_HEADERS: usize = 64;

/// How a request's body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    Length(u64),
    Chunked,
}

/// A parsed request head.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// The request target as sent (path and query).
    pub target: String,
    /// Field names as sent; values decoded lossily as UTF-8 and trimmed.
    pub headers: Vec<(String, String)>,
    framing: Framing,
    /// The client asked to keep the connection open (HTTP/1.1 without `close`, or HTTP/1.0 with
    /// `keep-alive`).
    pub keep_alive: bool,
    expect_continue: bool,
}

impl Request {
    /// The target without its query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// Whether a body follows the head (`Content-Length` above 0, or chunked).
    pub fn has_body(&self) -> bool {
        self.framing != Framing::Length(0)
    }

    /// The value of the first field named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why a request head cannot be served; answered with its status, then the connection closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadError {
    Malformed,
    TooLarge,
    /// Both `Transfer-Encoding` and `Content-Length`, or two different lengths: a framing that
    /// two servers could read differently (request smuggling).
    AmbiguousLength,
    /// A transfer coding other than `chunked`.
    UnsupportedCoding,
}

impl HeadError {
    pub fn status(self) -> u16 {
        match self {
            HeadError::Malformed | HeadError::AmbiguousLength => 400,
            HeadError::TooLarge => 431,
            HeadError::UnsupportedCoding => 501,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            HeadError::Malformed => "Invalid HTTP request",
            HeadError::TooLarge => "Request header fields too large",
            HeadError::AmbiguousLength => "Ambiguous request body length",
            HeadError::UnsupportedCoding => "Transfer-Encoding not supported",
        }
    }
}

/// Parses a request head at the start of `buf`: `Ok(None)` while incomplete, else the request
/// and the head's length.
pub fn parse_head(buf: &[u8]) -> Result<Option<(Request, usize)>, HeadError> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut fields);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => {
            return Err(HeadError::TooLarge);
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(_) => return Err(HeadError::Malformed),
    };
    if len > MAX_HEAD {
        return Err(HeadError::TooLarge);
    }
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(HeadError::Malformed);
    };
    let headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|h| {
            let v = String::from_utf8_lossy(h.value);
            (h.name.to_string(), v.trim().to_string())
        })
        .collect();
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut close = false;
    let mut keep = false;
    let mut expect_continue = false;
    for (name, value) in &headers {
        if name.eq_ignore_ascii_case("content-length") {
            let n: u64 = value
                .bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| value.parse().ok())
                .flatten()
                .ok_or(HeadError::Malformed)?;
            if length.is_some_and(|l| l != n) {
                return Err(HeadError::AmbiguousLength);
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if chunked || !value.eq_ignore_ascii_case("chunked") {
                return Err(HeadError::UnsupportedCoding);
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                close |= token.eq_ignore_ascii_case("close");
                keep |= token.eq_ignore_ascii_case("keep-alive");
            }
        } else if name.eq_ignore_ascii_case("expect") {
            expect_continue = value.eq_ignore_ascii_case("100-continue");
        }
    }
    let framing = match (chunked, length) {
        (true, Some(_)) => return Err(HeadError::AmbiguousLength),
        (true, None) => Framing::Chunked,
        (false, n) => Framing::Length(n.unwrap_or(0)),
    };
    let request = Request {
        method: method.to_string(),
        target: target.to_string(),
        headers,
        framing,
        keep_alive: !close && (minor == 1 || keep),
        expect_continue: expect_continue && minor == 1,
    };
    Ok(Some((request, len)))
}

/// Whether `buf` may hold a complete head: a blank line ends it. `from` is how much was
/// checked before, so a head sent a byte at a time is scanned once, not once per byte.
pub fn may_hold_head(buf: &[u8], from: usize) -> bool {
    let start = from.saturating_sub(2);
    buf.get(start..).is_some_and(|tail| {
        tail.windows(2).any(|w| w == b"\n\n") || tail.windows(3).any(|w| w == b"\n\r\n")
    })
}

/// Why a request body could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyError {
    /// Over the cap (declared or counted while read).
    TooLarge,
    /// Bad chunked framing, or the connection ended early.
    Malformed,
    /// Not received within the connection's timeout.
    TimedOut,
}

/// A connection handed to a request thread: its socket (blocking) and the bytes already read
/// past the head. A request's body must arrive, and its answer be taken, within the `timeout`
/// it was made with (`--io-timeout`), each from when it starts.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    timeout: Duration,
    /// The current request's body has been read to its end (or it has none).
    body_done: bool,
}

impl Conn {
    pub fn new(stream: TcpStream, rest: Vec<u8>, timeout: Duration) -> Conn {
        Conn {
            stream,
            buf: rest,
            timeout,
            body_done: false,
        }
    }

    /// The socket, to watch for the client hanging up while its request is served.
    pub fn socket(&self) -> &TcpStream {
        &self.stream
    }

    /// The socket and the bytes read past the current request (a pipelined next request).
    pub fn into_parts(self) -> (TcpStream, Vec<u8>) {
        (self.stream, self.buf)
    }

    /// The next request pipelined behind the one just answered, when its whole head has been
    /// read already (`Ok(None)`: not yet, the gate waits for it without a thread). A head that
    /// cannot be served is answered here with its status; the connection then closes.
    pub fn next_request(&mut self) -> Result<Option<Request>, HeadError> {
        match parse_head(&self.buf) {
            Ok(Some((req, len))) => {
                self.buf.drain(..len);
                self.body_done = false;
                Ok(Some(req))
            }
            Ok(None) => Ok(None),
            Err(e) => {
                let deadline = Instant::now() + self.timeout;
                let _ = self.write_by(&error_response(e.status(), e.message()), deadline);
                Err(e)
            }
        }
    }

    /// Whether the connection can carry another request after this one's response.
    pub fn reusable(&self, req: &Request) -> bool {
        req.keep_alive && (self.body_done || req.framing == Framing::Length(0))
    }

    /// Reads the request's whole body, at most `max` bytes, within the connection's timeout.
    /// Sends `100 Continue` first when the client waits for it.
    pub fn read_body(&mut self, req: &Request, max: usize) -> Result<Vec<u8>, BodyError> {
        if req.framing == Framing::Length(0) || self.body_done {
            self.body_done = true;
            return Ok(Vec::new());
        }
        if let Framing::Length(n) = req.framing
            && n > max as u64
        {
            return Err(BodyError::TooLarge);
        }
        let deadline = Instant::now() + self.timeout;
        if req.expect_continue {
            self.write_by(b"HTTP/1.1 100 Continue\r\n\r\n", deadline)
                .map_err(|_| BodyError::Malformed)?;
        }
        let body = match req.framing {
            Framing::Length(n) => {
                // `n <= max`, so it fits in memory and a usize.
                let n = n as usize;
                while self.buf.len() < n {
                    self.fill(deadline)?;
                }
                let rest = self.buf.split_off(n);
                std::mem::replace(&mut self.buf, rest)
            }
            Framing::Chunked => self.read_chunked(max, deadline)?,
        };
        self.body_done = true;
        Ok(body)
    }

    fn read_chunked(&mut self, max: usize, deadline: Instant) -> Result<Vec<u8>, BodyError> {
        let mut decoder = ChunkedDecoder::new();
        let mut body = Vec::new();
        loop {
            let d = decoder
                .decode(&self.buf)
                .map_err(|_| BodyError::Malformed)?;
            if body.len() + d.data.len() > max {
                return Err(BodyError::TooLarge);
            }
            body.extend_from_slice(d.data);
            let (consumed, done) = (d.consumed, d.done);
            self.buf.drain(..consumed);
            if done {
                return Ok(body);
            }
            // One chunk per call, and progress on any input: read only when all is used.
            if self.buf.is_empty() {
                self.fill(deadline)?;
            }
        }
    }

    /// Reads more bytes into `buf`, waiting at most until `deadline`.
    fn fill(&mut self, deadline: Instant) -> Result<(), BodyError> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(BodyError::TimedOut);
            }
            self.stream
                .set_read_timeout(Some(left))
                .map_err(|_| BodyError::Malformed)?;
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(BodyError::Malformed),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(BodyError::TimedOut);
                }
                Err(_) => return Err(BodyError::Malformed),
            }
        }
    }

    /// Writes a response; `keep_alive` false says `Connection: close`. A client that does not
    /// take it within the connection's timeout gets an error here.
    pub fn respond(
        &mut self,
        req: &Request,
        status: u16,
        headers: &[(&str, &str)],
        body: &[u8],
        keep_alive: bool,
    ) -> io::Result<()> {
        let head_only = req.method == "HEAD";
        let bytes = response(status, headers, body, keep_alive, head_only);
        self.write_by(&bytes, Instant::now() + self.timeout)
    }

    /// Writes all of `bytes` by `deadline`: a client that takes its answer a byte at a time is
    /// cut there, not after a timeout per write.
    fn write_by(&mut self, bytes: &[u8], deadline: Instant) -> io::Result<()> {
        let mut at = 0;
        while at < bytes.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client did not take the answer in time",
                ));
            }
            self.stream.set_write_timeout(Some(left))?;
            match self.stream.write(&bytes[at..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => at += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client did not take the answer in time",
                    ));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// A whole response: status line, `Date`, `Content-Type` (JSON unless `headers` names
/// another), `Content-Length`, `Connection`, the extra `headers`, then `body` unless `head_only`.
pub fn response(
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
    keep_alive: bool,
    head_only: bool,
) -> Vec<u8> {
    let typed = headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("Content-Type"));
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nDate: {}\r\n{}Content-Length: {}\r\nConnection: {}\r\n",
        reason(status),
        http_date(SystemTime::now()),
        if typed {
            ""
        } else {
            "Content-Type: application/json\r\n"
        },
        body.len(),
        if keep_alive { "keep-alive" } else { "close" },
    );
    for (n, v) in headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    if !head_only {
        out.extend_from_slice(body);
    }
    out
}

/// A `{"detail": message}` response that closes the connection: what the gate writes to a
/// connection it gives up on.
pub fn error_response(status: u16, message: &str) -> Vec<u8> {
    let body = serde_json::json!({ "detail": message }).to_string();
    response(status, &[], body.as_bytes(), false, false)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// RFC 9110 §5.6.7 IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
fn http_date(t: SystemTime) -> String {
    let c = Civil::of(t);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[(c.days % 7) as usize],
        c.day,
        MONTHS[(c.month - 1) as usize],
        c.year,
        c.hour,
        c.minute,
        c.second
    )
}

/// RFC 3339 in UTC to the second, e.g. `1994-11-06T08:49:37Z`: when an API run started.
pub fn rfc3339(t: SystemTime) -> String {
    let c = Civil::of(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// A moment as a UTC calendar date and time of day (times before 1970 read as 1970).
struct Civil {
    /// Days since 1970-01-01.
    days: u64,
    year: i64,
    month: i64,
    day: i64,
    hour: u64,
    minute: u64,
    second: u64,
}

impl Civil {
    fn of(t: SystemTime) -> Civil {
        let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let (days, rem) = (secs / 86_400, secs % 86_400);
        // Civil date from days since 1970-01-01 (Howard Hinnant's `civil_from_days`).
        let z = days as i64 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        Civil {
            days,
            year: yoe + era * 400 + i64::from(month <= 2),
            month,
            day,
            hour: rem / 3600,
            minute: rem / 60 % 60,
            second: rem % 60,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(s: &str) -> Result<Option<(Request, usize)>, HeadError> {
        parse_head(s.as_bytes())
    }

    fn ok(s: &str) -> Request {
        let (r, n) = head(s).unwrap().unwrap();
        assert_eq!(n, s.len(), "{s:?}");
        r
    }

    #[test]
    fn heads_and_their_framing() {
        let r = ok("GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-Api-Key:  k \r\n\r\n");
        assert_eq!((r.method.as_str(), r.path()), ("GET", "/a"));
        assert_eq!(r.header("x-api-key"), Some("k"));
        assert_eq!(r.framing, Framing::Length(0));
        assert!(r.keep_alive && !r.expect_continue);

        let r = ok("POST / HTTP/1.1\r\nContent-Length: 12\r\nConnection: close\r\n\r\n");
        assert_eq!(r.framing, Framing::Length(12));
        assert!(!r.keep_alive);
        let r = ok("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\nExpect: 100-continue\r\n\r\n");
        assert_eq!(r.framing, Framing::Chunked);
        assert!(r.expect_continue);
        let r = ok("GET / HTTP/1.0\r\n\r\n");
        assert!(!r.keep_alive);
        let r = ok("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\nExpect: 100-continue\r\n\r\n");
        assert!(
            r.keep_alive && !r.expect_continue,
            "1.0 clients never wait for 100"
        );
        // Repeated equal lengths are one length.
        let r = ok("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n");
        assert_eq!(r.framing, Framing::Length(3));

        assert!(head("GET / HTTP/1.1\r\nHost: x\r\n").unwrap().is_none());
        for (raw, want) in [
            (
                "GET / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
                HeadError::AmbiguousLength,
            ),
            (
                "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
                HeadError::AmbiguousLength,
            ),
            (
                "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                HeadError::UnsupportedCoding,
            ),
            (
                "POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\n",
                HeadError::Malformed,
            ),
            (
                "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
                HeadError::Malformed,
            ),
            ("GET / HTTP/2.0\r\n\r\n", HeadError::Malformed),
            ("GET\x01 / HTTP/1.1\r\n\r\n", HeadError::Malformed),
        ] {
            assert_eq!(head(raw).unwrap_err(), want, "{raw:?}");
        }
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: v\r\n")).collect();
        let raw = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(head(&raw).unwrap_err(), HeadError::TooLarge);
        let long = format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(MAX_HEAD));
        assert_eq!(head(&long).unwrap_err(), HeadError::TooLarge);
    }

    #[test]
    fn the_end_of_a_head_is_found_across_reads() {
        let raw = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        // Fed a byte at a time, the end is seen exactly when the last byte arrives.
        let mut scanned = 0;
        for end in 1..=raw.len() {
            let found = may_hold_head(&raw[..end], scanned);
            assert_eq!(found, end == raw.len(), "at {end}");
            scanned = end;
        }
        assert!(may_hold_head(b"GET / HTTP/1.1\n\n", 0));
        assert!(!may_hold_head(b"GET / HTTP/1.1\r\nA: b\r\n", 0));
    }

    #[test]
    fn dates_are_imf_fixdate() {
        let at = |s: u64| http_date(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(at(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(at(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(at(4_102_444_799), "Thu, 31 Dec 2099 23:59:59 GMT");
        let iso = |s: u64| rfc3339(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(iso(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso(784_111_777), "1994-11-06T08:49:37Z");
        assert_eq!(iso(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn responses_carry_length_and_connection() {
        let r = String::from_utf8(response(404, &[("Allow", "GET")], b"{}", false, false)).unwrap();
        assert!(r.starts_with("HTTP/1.1 404 Not Found\r\nDate: "), "{r}");
        assert!(r.contains("\r\nContent-Length: 2\r\nConnection: close\r\nAllow: GET\r\n\r\n{}"));
        assert!(r.contains("\r\nContent-Type: application/json\r\n"), "{r}");
        // A route that names its own type gets that one only.
        let r = String::from_utf8(response(
            200,
            &[("Content-Type", "text/html")],
            b"<p>",
            false,
            false,
        ))
        .unwrap();
        assert_eq!(r.matches("Content-Type").count(), 1, "{r}");
        assert!(r.contains("\r\nContent-Type: text/html\r\n"), "{r}");
        let r = String::from_utf8(response(200, &[], b"{}", true, true)).unwrap();
        assert!(
            r.ends_with("Content-Length: 2\r\nConnection: keep-alive\r\n\r\n"),
            "{r}"
        );
        let r = String::from_utf8(error_response(408, "late")).unwrap();
        assert!(r.ends_with("\r\n\r\n{\"detail\":\"late\"}"), "{r}");
    }
}
