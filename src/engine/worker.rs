//! The per-thread event loop: schedule → queue → dispatch → I/O → timeouts → poll, over one mio
//! `Poll`, a slab of connections (slab index = mio token) and a timerfd for the next deadline.
//!
//! Every request this thread is given ends in exactly one bucket: a success, an HTTP status, a named
//! failure, or "not sent". Timestamps are taken right after the read that carried the bytes.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use rustls::ClientConnection;
use rustls::pki_types::ServerName;
use slab::Slab;

use super::conn::{
    Conn, ConnState, InFlight, MAX_READS_PER_EVENT, READ_BUF, ReadResult, Transport, WriteResult,
};
use super::outcome::Failure;
use super::pacing::Schedule;
use super::{Timings, tls};
use crate::http1::parse_head;
use crate::llm::{Event, SseParser, classify, classify_body};
use crate::plan::{BodyMode, Plan, Rate};

const TIMER: Token = Token(usize::MAX);
/// The largest non-streaming LLM body kept to read its `usage`; past it the count falls back to 0.
const BODY_COPY_CAP: usize = 1 << 20;
/// Distinct server error messages kept per worker; more share one name so the map stays bounded.
const MAX_MESSAGES: usize = 64;

/// What one worker thread measured.
#[derive(Debug, Default)]
pub struct WorkerStats {
    pub timings: Timings,
    pub total: u64,
    pub successes: u64,
    pub statuses: HashMap<u16, u64>,
    pub failures: HashMap<Failure, u64>,
    pub messages: Vec<Box<str>>,
    pub bytes_received: u64,
    pub connections_opened: u64,
    pub output_tokens: u64,
    /// Requests handed to a connection, and the first and last moments that happened.
    pub dispatched: u64,
    /// TLS handshakes completed in full and resumed (session tickets shared by the run's config).
    pub tls_full: u64,
    pub tls_resumed: u64,
    pub scheduling: super::Scheduling,
    pub first_dispatch: Option<Instant>,
    pub last_dispatch: Option<Instant>,
}

impl WorkerStats {
    fn fail(&mut self, f: Failure) {
        *self.failures.entry(f).or_insert(0) += 1;
        self.total += 1;
    }

    fn intern(&mut self, msg: String) -> Failure {
        if let Some(i) = self.messages.iter().position(|m| **m == *msg) {
            return Failure::StreamMessage(i as u16);
        }
        if self.messages.len() >= MAX_MESSAGES {
            return Failure::Stream("(other server error messages)");
        }
        self.messages.push(msg.into_boxed_str());
        Failure::StreamMessage((self.messages.len() - 1) as u16)
    }
}

/// What every worker of a run shares (read-only).
pub struct Shared<'a> {
    pub plan: &'a Plan,
    pub addrs: &'a [SocketAddr],
    pub tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    pub t0: Instant,
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    index: u64,
    intended: Instant,
    /// Set for a request already dispatched once (a retry after a stale keep-alive connection).
    dispatch: Option<Instant>,
}

/// What to do after a chunk of bytes was processed.
enum Step {
    More,
    Complete {
        reuse: bool,
    },
    Fail(Failure),
    /// Bytes arrived on a connection with no request: close it.
    Close,
}

pub struct Worker<'a> {
    sh: &'a Shared<'a>,
    poll: Poll,
    events: Events,
    timer: Option<super::sys::Timer>,
    conns: Slab<Conn>,
    idle: Vec<(usize, u64)>,
    open: usize,
    busy: usize,
    cap: usize,
    next_conn_id: u64,
    serial: u64,
    addr_index: usize,
    schedule: Option<Schedule>,
    saturation_end: Option<Instant>,
    saturation_index: u64,
    queue: VecDeque<Pending>,
    /// `(dispatch + timeout, connection, request serial)` in the order they fall due. The timeout
    /// is the same for every request and dispatch times only grow, so a push at the back keeps
    /// the order (a retry keeps its first dispatch time and is put in its place): no heap, and
    /// no entry per request beyond the oldest one still in flight.
    deadlines: VecDeque<(Instant, usize, u64)>,
    revisit: Vec<usize>,
    llm_stream: bool,
    llm_body: bool,
    stats: WorkerStats,
    progress: &'a AtomicU64,
    unreported: u64,
    /// Wake this much before a deadline and busy-poll the rest (see `SPIN`).
    spin: Duration,
}

/// How early the timerfd is armed before a send deadline, the rest of the way being busy-polled.
/// A sleeping thread wakes tens of microseconds late, more when the core has gone idle (measured
/// on the 2-core VM: p50 ≈ 27 µs at 2,000 qps, ≈ 57 µs at 10 qps). Busy-polling costs CPU, so the
/// window is sized to spend at most `SPIN_CPU_SHARE` of a core: `SPIN_CPU_SHARE / rate`, capped
/// at `SPIN_MAX` (150 µs at 10 req/s per thread, 50 µs at 1,000, 10 µs at 5,000, ~0 above).
const SPIN_CPU_SHARE: f64 = 0.05;
const SPIN_MAX: Duration = Duration::from_micros(150);

impl<'a> Worker<'a> {
    /// Thread `thread` of `threads`, with at most `cap` connections.
    pub fn new(
        sh: &'a Shared<'a>,
        thread: usize,
        threads: usize,
        cap: usize,
        progress: &'a AtomicU64,
    ) -> io::Result<Self> {
        let poll = Poll::new()?;
        let timer = match super::sys::Timer::new() {
            Ok(t) => {
                poll.registry()
                    .register(&mut SourceFd(&t.raw_fd()), TIMER, Interest::READABLE)?;
                Some(t)
            }
            // Without a timerfd the loop still runs, with millisecond wake-ups.
            Err(_) => None,
        };
        let plan = sh.plan;
        let (schedule, saturation_end) = match plan.rate {
            Rate::PerSecond(qps) => (
                Some(Schedule::new(
                    sh.t0,
                    qps,
                    plan.count,
                    plan.arrival,
                    thread as u64,
                    threads as u64,
                )),
                None,
            ),
            Rate::Max => (None, Some(sh.t0 + plan.duration)),
        };
        let spin = match plan.rate {
            Rate::PerSecond(qps) => {
                Duration::from_secs_f64(SPIN_CPU_SHARE * threads as f64 / qps).min(SPIN_MAX)
            }
            Rate::Max => Duration::ZERO,
        };
        let llm_stream = plan.body_mode == BodyMode::Sse;
        let llm_body = plan.body_mode == BodyMode::WholeJson;
        Ok(Worker {
            sh,
            poll,
            events: Events::with_capacity(1024),
            timer,
            conns: Slab::with_capacity(cap),
            idle: Vec::with_capacity(cap),
            open: 0,
            busy: 0,
            cap,
            next_conn_id: 0,
            serial: 0,
            addr_index: 0,
            schedule,
            saturation_end,
            saturation_index: thread as u64,
            queue: VecDeque::new(),
            deadlines: VecDeque::new(),
            revisit: Vec::new(),
            llm_stream,
            llm_body,
            stats: WorkerStats::default(),
            progress,
            unreported: 0,
            spin,
        })
    }

    pub fn run(mut self) -> WorkerStats {
        loop {
            let now = Instant::now();
            self.release_due(now);
            self.expire(now);
            self.assign();
            if self.unreported > 0 {
                self.progress.fetch_add(self.unreported, Ordering::Relaxed);
                self.unreported = 0;
            }
            if self.finished(now) {
                break;
            }
            let timeout = self.poll_timeout();
            if let Err(e) = self.poll.poll(&mut self.events, timeout)
                && e.kind() != io::ErrorKind::Interrupted
            {
                // The poller itself failed: nothing more can be measured. Count what is left.
                self.abandon(Failure::Connect("poll failed"));
                break;
            }
            let events = std::mem::replace(&mut self.events, Events::with_capacity(0));
            for ev in events.iter() {
                if ev.token() == TIMER {
                    if let Some(t) = self.timer.as_mut() {
                        t.fired();
                    }
                    continue;
                }
                self.on_event(
                    ev.token().0,
                    ev.is_readable() || ev.is_read_closed() || ev.is_error(),
                    ev.is_writable(),
                );
            }
            self.events = events;
            for key in std::mem::take(&mut self.revisit) {
                if self.conns.contains(key) {
                    self.read(key);
                }
            }
        }
        // Close what is left so its TLS handshake is counted (in-flight saturation requests are
        // dropped uncounted, as documented).
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            self.close(key);
        }
        self.progress.fetch_add(self.unreported, Ordering::Relaxed);
        self.stats
    }

    /// Moves due requests from the schedule into the FIFO queue.
    fn release_due(&mut self, now: Instant) {
        let Some(s) = self.schedule.as_mut() else {
            return;
        };
        while let Some((index, intended)) = s.peek() {
            if intended > now {
                break;
            }
            self.queue.push_back(Pending {
                index,
                intended,
                dispatch: None,
            });
            s.advance();
        }
    }

    /// Requests that waited `timeout` for a worker become "not sent"; requests past their deadline
    /// become timeouts (their connection is closed: its state is unknown).
    fn expire(&mut self, now: Instant) {
        let timeout = self.sh.plan.timeout;
        while let Some(p) = self.queue.front() {
            if p.dispatch.is_some() || now < p.intended + timeout {
                break;
            }
            self.queue.pop_front();
            self.stats.fail(Failure::NotSent);
            self.unreported += 1;
        }
        // Entries of requests that already ended are dropped as they reach the front, so after
        // this the front is the oldest request still in flight.
        while let Some(&(deadline, key, serial)) = self.deadlines.front() {
            let live = self
                .conns
                .get(key)
                .and_then(|c| c.req)
                .is_some_and(|r| r.serial == serial);
            if live && deadline > now {
                break;
            }
            self.deadlines.pop_front();
            if live {
                self.fail_conn(key, Failure::Timeout);
            }
        }
        if let Some(end) = self.saturation_end
            && now >= end
        {
            // Closed loop ends at the deadline, as wrk does: what is in flight is not counted.
            self.queue.clear();
        }
    }

    /// Hands queued (or, in saturation, new) requests to idle connections or new ones.
    fn assign(&mut self) {
        // Bounded: a connection that fails at once frees its slot again, which must not spin here.
        let mut budget = self.cap + self.queue.len();
        while budget > 0 {
            budget -= 1;
            let pending = if let Some(p) = self.queue.front().copied() {
                p
            } else if let Some(end) = self.saturation_end {
                let now = Instant::now();
                if now >= end || self.busy >= self.cap {
                    return;
                }
                Pending {
                    index: self.saturation_index,
                    intended: now,
                    dispatch: None,
                }
            } else {
                return;
            };
            let idle = self.pop_idle();
            if idle.is_none() && self.open >= self.cap {
                return;
            }
            if self.queue.front().is_some() {
                self.queue.pop_front();
            } else {
                self.saturation_index += self.sh.plan.threads as u64;
            }
            match idle {
                Some(key) => self.dispatch_on(key, pending),
                None => self.open_and_dispatch(pending),
            }
        }
    }

    fn pop_idle(&mut self) -> Option<usize> {
        while let Some((key, id)) = self.idle.pop() {
            if self
                .conns
                .get(key)
                .is_some_and(|c| c.id == id && c.is_idle())
            {
                return Some(key);
            }
        }
        None
    }

    fn start(&mut self, p: Pending) -> InFlight {
        let dispatch = match p.dispatch {
            Some(d) => d,
            None => {
                let d = Instant::now();
                self.stats
                    .timings
                    .dispatch_delay
                    .record(d.saturating_duration_since(p.intended).as_secs_f64());
                self.stats.dispatched += 1;
                self.stats.first_dispatch.get_or_insert(d);
                self.stats.last_dispatch = Some(d);
                d
            }
        };
        self.serial += 1;
        self.busy += 1;
        InFlight::new(
            p.index,
            self.serial,
            p.intended,
            dispatch,
            p.dispatch.is_some(),
        )
    }

    fn dispatch_on(&mut self, key: usize, p: Pending) {
        let req = self.start(p);
        self.track_deadline(key, &req);
        let conn = &mut self.conns[key];
        conn.req = Some(req);
        conn.filled = 0;
        self.write(key);
    }

    fn track_deadline(&mut self, key: usize, req: &InFlight) {
        let entry = (req.dispatch + self.sh.plan.timeout, key, req.serial);
        if self.deadlines.back().is_none_or(|b| b.0 <= entry.0) {
            self.deadlines.push_back(entry);
        } else {
            let at = self.deadlines.partition_point(|d| d.0 <= entry.0);
            self.deadlines.insert(at, entry);
        }
    }

    fn open_and_dispatch(&mut self, p: Pending) {
        let req = self.start(p);
        // An address family the host cannot use (say ::1 without IPv6) fails at once: try the
        // next resolved address before giving up on this request.
        let n = self.sh.addrs.len();
        let mut attempt = self.connect(self.addr_index).map(|c| (c, self.addr_index));
        for k in 1..n {
            if attempt.is_ok() {
                break;
            }
            let index = (self.addr_index + k) % n;
            attempt = self.connect(index).map(|c| (c, index));
        }
        let conn = match attempt {
            Ok(((sock, transport), index)) => Conn::new(self.next_conn_id, sock, index, transport),
            Err(f) => {
                self.busy -= 1;
                self.stats.fail(f);
                self.unreported += 1;
                return;
            }
        };
        self.next_conn_id += 1;
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        let conn = entry.insert(conn);
        if let Err(e) = self.poll.registry().register(
            &mut conn.sock,
            Token(key),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            self.conns.remove(key);
            self.busy -= 1;
            self.stats.fail(Failure::from_io(&e));
            self.unreported += 1;
            return;
        }
        self.open += 1;
        self.conns[key].req = Some(req);
        self.track_deadline(key, &req);
    }

    fn connect(&self, index: usize) -> Result<(TcpStream, Transport), Failure> {
        let sock = TcpStream::connect(self.sh.addrs[index]).map_err(|e| Failure::from_io(&e))?;
        let transport = match &self.sh.tls {
            None => Transport::Plain,
            Some((config, name)) => match ClientConnection::new(config.clone(), name.clone()) {
                Ok(c) => Transport::Tls(Box::new(c)),
                Err(e) => return Err(Failure::Tls(tls::reason(&e))),
            },
        };
        Ok((sock, transport))
    }

    fn on_event(&mut self, key: usize, readable: bool, writable: bool) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.state == ConnState::Connecting {
            match conn.connect_done() {
                Ok(false) => return,
                Ok(true) => {
                    self.stats.connections_opened += 1;
                    self.addr_index = conn.addr_index;
                }
                Err(f) => {
                    // `localhost` may resolve to ::1 while the target listens on 127.0.0.1 only.
                    let next = conn.addr_attempts;
                    let retryable = matches!(f, Failure::Refused | Failure::Connect(_));
                    if retryable && next < self.sh.addrs.len() {
                        let index = (conn.addr_index + 1) % self.sh.addrs.len();
                        match self.connect(index) {
                            Ok((mut sock, transport)) => {
                                let reg = self.poll.registry().register(
                                    &mut sock,
                                    Token(key),
                                    Interest::READABLE | Interest::WRITABLE,
                                );
                                let conn = &mut self.conns[key];
                                conn.replace_socket(sock, index, transport);
                                if let Err(e) = reg {
                                    self.fail_conn(key, Failure::from_io(&e));
                                }
                            }
                            Err(f) => self.fail_conn(key, f),
                        }
                    } else {
                        self.fail_conn(key, f);
                    }
                    return;
                }
            }
            self.write(key);
            if !self.conns.contains(key) {
                return;
            }
        } else if writable || self.conns[key].wants_write() {
            self.write(key);
            if !self.conns.contains(key) {
                return;
            }
        }
        if readable {
            self.read(key);
        }
    }

    fn write(&mut self, key: usize) {
        let request = &self.sh.plan.request.0;
        let conn = &mut self.conns[key];
        if conn.state != ConnState::Open {
            return;
        }
        let result = if conn.req.is_some() {
            conn.write(request)
        } else {
            conn.flush()
        };
        if let WriteResult::Failed(f) = result {
            self.on_io_failure(key, f);
        }
    }

    fn read(&mut self, key: usize) {
        for _ in 0..MAX_READS_PER_EVENT {
            let Some(conn) = self.conns.get_mut(key) else {
                return;
            };
            let room = conn.buf.len() - conn.filled;
            match conn.read() {
                ReadResult::Data(n) => {
                    let now = Instant::now();
                    self.stats.bytes_received += n as u64;
                    let step = process(
                        conn,
                        n,
                        now,
                        &mut self.stats,
                        self.sh.plan.method_is_head,
                        self.llm_stream,
                        self.llm_body,
                    );
                    match step {
                        Step::More => {
                            // A read that filled the buffer means a big body: read it in larger pieces.
                            if n == room && conn.buf.len() < READ_BUF {
                                conn.buf.resize(READ_BUF, 0);
                            }
                        }
                        Step::Complete { reuse } => {
                            self.complete(key, now, reuse);
                            // The response is whole and the read did not fill the buffer: nothing
                            // more is due on this connection, so skip the read that would only say
                            // WouldBlock. Linux signals an edge for every later arrival (or close).
                            if reuse && n < room {
                                return;
                            }
                        }
                        Step::Fail(f) => return self.fail_conn(key, f),
                        Step::Close => return self.close(key),
                    }
                }
                ReadResult::WouldBlock => return,
                ReadResult::Eof => return self.on_eof(key),
                ReadResult::Failed(f) => return self.on_io_failure(key, f),
            }
        }
        // More may be waiting; edge-triggered readiness will not say so again.
        self.revisit.push(key);
    }

    fn on_eof(&mut self, key: usize) {
        let conn = &mut self.conns[key];
        let Some(req) = conn.req else {
            return self.close(key);
        };
        if req.status.is_none() {
            if !req.got_bytes {
                return self.on_io_failure(key, Failure::ClosedBeforeResponse);
            }
            return self.fail_conn(
                key,
                Failure::Invalid("connection closed inside the response head"),
            );
        }
        match conn.body.eof() {
            // A close-delimited body ends with the connection; its last byte came with the last read.
            Ok(()) => {
                let at = req.last_byte_at.unwrap_or_else(Instant::now);
                self.complete(key, at, false)
            }
            Err(e) => self.fail_conn(key, Failure::Invalid(e.reason())),
        }
    }

    /// A connection failed. A request that went out on a reused keep-alive connection and got
    /// nothing back hit a server-side close race: it is sent again once, on a fresh connection.
    fn on_io_failure(&mut self, key: usize, f: Failure) {
        let conn = &self.conns[key];
        if let Some(req) = conn.req {
            let stale = matches!(f, Failure::Reset | Failure::ClosedBeforeResponse);
            if stale && !req.got_bytes && conn.served > 0 && !req.retried {
                self.conns[key].req = None;
                self.busy -= 1;
                self.close(key);
                self.queue.push_front(Pending {
                    index: req.index,
                    intended: req.intended,
                    dispatch: Some(req.dispatch),
                });
                return;
            }
        }
        self.fail_conn(key, f);
    }

    fn fail_conn(&mut self, key: usize, f: Failure) {
        if let Some(conn) = self.conns.get_mut(key)
            && conn.req.take().is_some()
        {
            self.busy -= 1;
            self.stats.fail(f);
            self.unreported += 1;
        }
        self.close(key);
    }

    fn close(&mut self, key: usize) {
        if let Some(mut conn) = self.conns.try_remove(key) {
            let _ = self.poll.registry().deregister(&mut conn.sock);
            if let Transport::Tls(tls) = &conn.transport {
                match tls.handshake_kind() {
                    Some(rustls::HandshakeKind::Resumed) => self.stats.tls_resumed += 1,
                    Some(_) => self.stats.tls_full += 1,
                    None => {}
                }
            }
            self.open -= 1;
            if conn.req.is_some() {
                self.busy -= 1;
            }
        }
    }

    /// The response of the connection's request ended at `now`.
    fn complete(&mut self, key: usize, now: Instant, reuse: bool) {
        let conn = &mut self.conns[key];
        let Some(req) = conn.req.take() else { return };
        self.busy -= 1;
        conn.served += 1;
        let body_copy = conn.body_copy.as_deref();
        let st = &mut self.stats;
        let t = &mut st.timings;
        let response_time = now.saturating_duration_since(req.dispatch).as_secs_f64();
        t.response_time.record(response_time);
        t.corrected_response_time
            .record(now.saturating_duration_since(req.intended).as_secs_f64());
        if let Some(h) = req.head_at {
            t.latency
                .record(h.saturating_duration_since(req.dispatch).as_secs_f64());
        }
        if let Some(b) = req.first_body_at {
            t.time_to_first_byte
                .record(b.saturating_duration_since(req.dispatch).as_secs_f64());
        }
        st.total += 1;
        self.unreported += 1;
        let status = req.status.unwrap_or(0);
        if !(200..300).contains(&status) {
            *st.statuses.entry(status).or_insert(0) += 1;
        } else if self.llm_stream {
            if let Some(f) = req.stream_failure {
                *st.failures.entry(f).or_insert(0) += 1;
            } else if !req.stream_done {
                *st.failures
                    .entry(Failure::Stream("stream ended without [DONE]"))
                    .or_insert(0) += 1;
            } else {
                st.successes += 1;
                let output = req.usage_tokens.unwrap_or(req.token_events);
                st.output_tokens += output;
                if let Some(ft) = req.first_token_at {
                    let ttft = ft.saturating_duration_since(req.dispatch).as_secs_f64();
                    t.time_to_first_token.record(ttft);
                    if output >= 2 {
                        t.time_per_output_token
                            .record((response_time - ttft) / (output - 1) as f64);
                    }
                }
                if let Some(s) = req.server_ttft {
                    t.server_time_to_first_token.record(s);
                }
            }
        } else if self.llm_body {
            match body_copy.map(classify_body) {
                Some(Ok(Event::Error(msg))) => {
                    let f = st.intern(msg);
                    *st.failures.entry(f).or_insert(0) += 1;
                }
                Some(Ok(Event::Chunk(c))) => {
                    st.successes += 1;
                    st.output_tokens += c.completion_tokens.unwrap_or(0);
                }
                _ => st.successes += 1,
            }
        } else {
            st.successes += 1;
        }
        if reuse && req.keep_alive {
            self.idle.push((key, self.conns[key].id));
        } else {
            self.close(key);
        }
    }

    fn finished(&self, now: Instant) -> bool {
        match self.saturation_end {
            Some(end) => now >= end,
            None => {
                self.busy == 0
                    && self.queue.is_empty()
                    && self.schedule.as_ref().is_none_or(|s| s.remaining() == 0)
            }
        }
    }

    /// Counts every request not yet in a bucket as `f` (only when the loop cannot go on).
    fn abandon(&mut self, f: Failure) {
        let left = self.busy as u64
            + self.queue.len() as u64
            + self.schedule.as_ref().map_or(0, |s| s.remaining());
        for _ in 0..left {
            self.stats.fail(f);
        }
        self.unreported += left;
        self.busy = 0;
        self.queue.clear();
    }

    /// How long to sleep: until the next intended send, queue expiry, request deadline or run end.
    fn poll_timeout(&mut self) -> Option<Duration> {
        if !self.revisit.is_empty() {
            return Some(Duration::ZERO);
        }
        let mut next: Option<Instant> = None;
        let mut consider = |t: Instant| next = Some(next.map_or(t, |n: Instant| n.min(t)));
        if self.queue.is_empty() {
            if let Some((_, t)) = self.schedule.as_mut().and_then(Schedule::peek) {
                consider(t);
            }
        } else if let Some(p) = self.queue.iter().find(|p| p.dispatch.is_none()) {
            consider(p.intended + self.sh.plan.timeout);
        }
        if let Some((d, _, _)) = self.deadlines.front() {
            consider(*d);
        }
        if let Some(end) = self.saturation_end {
            consider(end);
        }
        let deadline = next?;
        let now = Instant::now();
        if deadline <= now || deadline - now <= self.spin {
            return Some(Duration::ZERO);
        }
        let armed = self
            .timer
            .as_mut()
            .is_some_and(|t| t.arm(deadline - self.spin, now).is_ok());
        if armed {
            // The timerfd wakes us; the poll timeout is only a safety net.
            Some(deadline - now + Duration::from_millis(10))
        } else {
            Some(deadline - now)
        }
    }
}

/// Handles `n` new bytes at `conn.buf[conn.filled..]`, read at `now`.
fn process(
    conn: &mut Conn,
    n: usize,
    now: Instant,
    stats: &mut WorkerStats,
    method_is_head: bool,
    llm_stream: bool,
    llm_body: bool,
) -> Step {
    let Conn {
        buf,
        filled,
        body,
        sse,
        body_copy,
        req,
        ..
    } = conn;
    let Some(req) = req.as_mut() else {
        return Step::Close;
    };
    req.got_bytes = true;
    req.last_byte_at = Some(now);
    let start;
    let end;
    if req.status.is_none() {
        *filled += n;
        loop {
            match parse_head(&buf[..*filled], method_is_head) {
                Ok(None) => return Step::More,
                Err(e) => return Step::Fail(Failure::Invalid(e.reason())),
                Ok(Some(h)) if h.interim => {
                    // 100 Continue and friends: the final response follows.
                    buf.copy_within(h.len..*filled, 0);
                    *filled -= h.len;
                }
                Ok(Some(h)) => {
                    req.status = Some(h.status);
                    req.keep_alive = h.keep_alive;
                    req.head_at = Some(now);
                    req.server_ttft = h.server_ttft;
                    body.reset(h.framing);
                    req.sse_active = llm_stream && (200..300).contains(&h.status);
                    if req.sse_active {
                        sse.get_or_insert_with(SseParser::new).reset();
                    }
                    if llm_body {
                        body_copy.get_or_insert_with(Vec::new).clear();
                    }
                    start = h.len;
                    end = *filled;
                    *filled = 0;
                    break;
                }
            }
        }
    } else {
        start = 0;
        end = n;
    }
    let data = &buf[start..end];
    if !data.is_empty() && req.first_body_at.is_none() {
        req.first_body_at = Some(now);
    }
    let mut sse_error = None;
    let fed = body.feed(data, |chunk| {
        if req.sse_active {
            if let Some(parser) = sse.as_mut()
                && let Err(e) = parser.feed(chunk, |event| on_event(req, stats, event, now))
            {
                sse_error = Some(e);
            }
        } else if let Some(copy) = body_copy.as_mut()
            && llm_body
            && copy.len() + chunk.len() <= BODY_COPY_CAP
        {
            copy.extend_from_slice(chunk);
        }
    });
    if let Some(e) = sse_error
        && req.stream_failure.is_none()
    {
        req.stream_failure = Some(Failure::Stream(e.reason()));
    }
    match fed {
        Err(e) => Step::Fail(Failure::Invalid(e.reason())),
        // Bytes after a complete response were never asked for: finish it, then drop the connection.
        Ok(f) if f.done => Step::Complete {
            reuse: f.consumed == data.len(),
        },
        Ok(_) => Step::More,
    }
}

/// One complete SSE event of a streaming LLM response, seen in the read at `now`.
fn on_event(req: &mut InFlight, stats: &mut WorkerStats, data: &[u8], now: Instant) {
    match classify(data) {
        Ok(Event::Done) => req.stream_done = true,
        Ok(Event::Chunk(c)) => {
            if c.token {
                match req.last_token_at {
                    Some(last) => stats
                        .timings
                        .inter_token_latency
                        .record(now.saturating_duration_since(last).as_secs_f64()),
                    None => req.first_token_at = Some(now),
                }
                req.last_token_at = Some(now);
                req.token_events += 1;
            }
            if c.completion_tokens.is_some() {
                req.usage_tokens = c.completion_tokens;
            }
            if c.server_ttft.is_some() {
                req.server_ttft = c.server_ttft;
            }
        }
        Ok(Event::Error(msg)) => {
            if req.stream_failure.is_none() {
                req.stream_failure = Some(stats.intern(msg));
            }
        }
        Err(e) => {
            if req.stream_failure.is_none() {
                req.stream_failure = Some(Failure::Stream(e.reason()));
            }
        }
    }
}
