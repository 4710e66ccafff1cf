//! The per-thread event loop: schedule → queue → dispatch → I/O → timeouts → poll, over one mio
//! `Poll`, a slab of connections (slab index = mio token) and a timerfd for the next deadline.
//!
//! Every request this thread is given ends in exactly one bucket: a success, an HTTP status, a named
//! failure, or "not sent". Timestamps are taken right after the read that carried the bytes.

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

use super::conn::{Conn, MAX_READS_PER_EVENT, ReadResult, Transport, WriteResult};
use super::dispatch::{Dispatch, Pending, Ticket};
use super::exchange::{Close, Exchange, Step};
use super::outcome::{Completed, Failure};
use super::pacing::Schedule;
use super::stats::LaneStats;
use super::tls;
use crate::plan::{Plan, Rate};

const TIMER: Token = Token(usize::MAX);
/// What every worker of a run shares (read-only).
pub struct Shared<'a> {
    pub plan: &'a Plan,
    pub addrs: &'a [SocketAddr],
    pub tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    pub t0: Instant,
}

pub struct Worker<'a> {
    sh: &'a Shared<'a>,
    thread: u32,
    poll: Poll,
    events: Events,
    timer: Option<super::sys::Timer>,
    conns: Slab<Conn>,
    idle: Vec<(usize, u64)>,
    dispatch: Dispatch,
    next_conn_id: u64,
    addr_index: usize,
    schedule: Option<Schedule>,
    saturation_end: Option<Instant>,
    saturation_index: u64,
    revisit: Vec<usize>,
    stats: LaneStats,
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
        Ok(Worker {
            sh,
            thread: thread as u32,
            poll,
            events: Events::with_capacity(1024),
            timer,
            conns: Slab::with_capacity(cap),
            idle: Vec::with_capacity(cap),
            dispatch: Dispatch::new(cap, plan.timeout),
            next_conn_id: 0,
            addr_index: 0,
            schedule,
            saturation_end,
            saturation_index: thread as u64,
            revisit: Vec::new(),
            stats: LaneStats::default(),
            progress,
            unreported: 0,
            spin,
        })
    }

    pub fn run(mut self) -> LaneStats {
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
            self.dispatch.due(index, intended);
            s.advance();
        }
    }

    /// Requests that waited `timeout` for a worker become "not sent"; requests past their deadline
    /// become timeouts (their connection is closed: its state is unknown).
    fn expire(&mut self, now: Instant) {
        while let Some(p) = self.dispatch.expire_unsent(now) {
            let c = Completed::unsent(p.index, p.intended, self.thread, Failure::NotSent);
            self.record(&c);
        }
        loop {
            let conns = &self.conns;
            let live = |key: usize, serial: u64| {
                conns
                    .get(key)
                    .and_then(Conn::exchange)
                    .is_some_and(|e| e.ticket().serial == serial)
            };
            let Some(key) = self.dispatch.expire_sent(now, live) else {
                break;
            };
            self.fail(key, Failure::Timeout);
        }
        if let Some(end) = self.saturation_end
            && now >= end
        {
            // Closed loop ends at the deadline, as wrk does: what is in flight is not counted.
            self.dispatch.clear();
        }
    }

    /// Hands queued (or, in saturation, new) requests to idle connections or new ones.
    fn assign(&mut self) {
        // Bounded: a connection that fails at once frees its slot again, which must not spin here.
        let mut budget = self.dispatch.cap() + self.dispatch.queued();
        while budget > 0 {
            budget -= 1;
            let queued = self.dispatch.peek();
            let pending = if let Some(p) = queued {
                p
            } else if let Some(end) = self.saturation_end {
                let now = Instant::now();
                if now >= end || self.dispatch.busy() >= self.dispatch.cap() {
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
            if idle.is_none() && !self.dispatch.may_open() {
                return;
            }
            if queued.is_some() {
                self.dispatch.pop();
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

    fn start(&mut self, p: Pending) -> Ticket {
        // A retry keeps its first dispatch time; only a first hand-over reads the clock.
        let now = match p.dispatch {
            Some(d) => d,
            None => Instant::now(),
        };
        self.dispatch.start(p, now)
    }

    fn exchange(&self, ticket: Ticket, conn: u64) -> Exchange {
        let plan = self.sh.plan;
        Exchange::new(ticket, conn, plan.body_mode, plan.method_is_head)
    }

    fn dispatch_on(&mut self, key: usize, p: Pending) {
        let ticket = self.start(p);
        self.dispatch.track(key, &ticket);
        let ex = self.exchange(ticket, self.conns[key].id);
        self.conns[key].carry(ex);
        self.write(key);
    }

    fn open_and_dispatch(&mut self, p: Pending) {
        let ticket = self.start(p);
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
        self.next_conn_id += 1;
        let id = self.next_conn_id;
        let ex = self.exchange(ticket, id);
        let ((sock, transport), index) = match attempt {
            Ok(a) => a,
            Err(f) => return self.end(&ex, f),
        };
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        // Tracked before the connection exists: should registering fail, the entry is stale.
        self.dispatch.track(key, ex.ticket());
        let conn = entry.insert(Conn::new(id, sock, index, transport, ex));
        if let Err(e) = self.poll.registry().register(
            conn.socket(),
            Token(key),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            let conn = self.conns.remove(key);
            if let Some(ex) = conn.exchange() {
                self.end(ex, Failure::from_io(&e));
            }
            return;
        }
        self.dispatch.opened();
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
        let plan = self.sh.plan;
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.is_connecting() {
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
                                    self.fail(key, Failure::from_io(&e));
                                }
                            }
                            Err(f) => self.fail(key, f),
                        }
                    } else {
                        self.fail(key, f);
                    }
                    return;
                }
            }
            self.write(key);
            if !self.conns.contains(key) {
                return;
            }
        } else if self.conns[key].wants_write()
            || (writable && self.conns[key].request_pending(|i| plan.request_for(i).len()))
        {
            // Edge-triggered readiness reports "writable" with every response that arrives;
            // only a request not yet all out (or TLS records waiting) needs the write call.
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
        let plan = self.sh.plan;
        if let WriteResult::Failed(f) = self.conns[key].write(|index| plan.request_for(index)) {
            self.fail(key, f);
        }
    }

    fn read(&mut self, key: usize) {
        for _ in 0..MAX_READS_PER_EVENT {
            let Some(conn) = self.conns.get_mut(key) else {
                return;
            };
            match conn.read() {
                ReadResult::Data { n, full } => {
                    let now = Instant::now();
                    let Some(step) = conn.feed(n, now, &mut self.stats) else {
                        // Bytes on a connection with no request: nothing asked for them.
                        return self.close(key);
                    };
                    match step {
                        // A read that filled the buffer means a big body: read it in larger pieces.
                        Step::More if full => conn.grow_for_body(),
                        Step::More => {}
                        Step::Complete { reuse } => {
                            self.complete(key, reuse);
                            // The response is whole and the read did not fill the buffer: nothing
                            // more is due on this connection, so skip the read that would only say
                            // WouldBlock. Linux signals an edge for every later arrival (or close).
                            if reuse && !full {
                                return;
                            }
                        }
                        Step::Fail(f) => return self.fail(key, f),
                    }
                }
                ReadResult::WouldBlock => return,
                ReadResult::Closed(close) => return self.on_close(key, close),
                ReadResult::Failed(f) => return self.fail(key, f),
            }
        }
        // More may be waiting; edge-triggered readiness will not say so again.
        self.revisit.push(key);
    }

    fn on_close(&mut self, key: usize, close: Close) {
        match self.conns[key].finish(close, &mut self.stats) {
            None => self.close(key),
            Some(Ok(())) => self.complete(key, false),
            Some(Err(f)) => self.fail(key, f),
        }
    }

    /// The connection's exchange failed with `f`. A request that went out on a reused keep-alive
    /// connection and got nothing back hit a server-side close race: it is sent again once, on a
    /// fresh connection, keeping its first dispatch time.
    fn fail(&mut self, key: usize, f: Failure) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if let Some(ex) = conn.exchange() {
            if Dispatch::retryable(f, ex.got_bytes(), conn.served, ex.ticket()) {
                if let Some(t) = conn.release() {
                    self.dispatch.retry(t);
                }
            } else {
                let c = ex.failed(f, self.thread);
                if let Some(t) = conn.release() {
                    self.dispatch.end(t);
                }
                self.record(&c);
            }
        }
        self.close(key);
    }

    fn close(&mut self, key: usize) {
        if let Some(mut conn) = self.conns.try_remove(key) {
            let _ = self.poll.registry().deregister(conn.socket());
            match conn.handshake_kind() {
                Some(rustls::HandshakeKind::Resumed) => self.stats.tls_resumed += 1,
                Some(_) => self.stats.tls_full += 1,
                None => {}
            }
            self.dispatch.closed();
            if let Some(t) = conn.release() {
                // Only at a closed loop's end: what is in flight is not counted.
                self.dispatch.end(t);
            }
        }
    }

    /// The response of the connection's exchange is complete.
    #[inline(always)]
    fn complete(&mut self, key: usize, reuse: bool) {
        let conn = &mut self.conns[key];
        let Some(c) = conn.exchange().map(|ex| ex.completed(self.thread)) else {
            return;
        };
        if let Some(t) = conn.release() {
            self.dispatch.end(t);
        }
        conn.served += 1;
        if reuse {
            self.idle.push((key, conn.id));
        }
        self.record(&c);
        if !reuse {
            self.close(key);
        }
    }

    /// The exchange of a connection that never came to be failed with `f`.
    fn end(&mut self, ex: &Exchange, f: Failure) {
        let c = ex.failed(f, self.thread);
        self.dispatch.end(*ex.ticket());
        self.record(&c);
    }

    fn record(&mut self, c: &Completed) {
        self.stats.record(c);
        self.unreported += 1;
    }

    fn finished(&self, now: Instant) -> bool {
        match self.saturation_end {
            Some(end) => now >= end,
            None => {
                self.dispatch.quiet() && self.schedule.as_ref().is_none_or(|s| s.remaining() == 0)
            }
        }
    }

    /// Ends every request not yet in a bucket as `f` (only when the loop cannot go on).
    fn abandon(&mut self, f: Failure) {
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            let conn = &mut self.conns[key];
            if let Some(c) = conn.exchange().map(|ex| ex.failed(f, self.thread))
                && let Some(t) = conn.release()
            {
                self.dispatch.end(t);
                self.record(&c);
            }
        }
        for p in self.dispatch.take_all() {
            self.record(&Completed::unsent(p.index, p.intended, self.thread, f));
        }
        if let Some(s) = self.schedule.as_mut() {
            while let Some((index, intended)) = s.peek() {
                s.advance();
                let c = Completed::unsent(index, intended, self.thread, f);
                self.stats.record(&c);
                self.unreported += 1;
            }
        }
    }

    /// How long to sleep: until the next intended send, queue expiry, request deadline or run end.
    fn poll_timeout(&mut self) -> Option<Duration> {
        if !self.revisit.is_empty() {
            return Some(Duration::ZERO);
        }
        let mut next: Option<Instant> = None;
        let mut consider = |t: Instant| next = Some(next.map_or(t, |n: Instant| n.min(t)));
        // Requests due while others wait only queue behind them: no need to wake for those.
        if self.dispatch.queued() == 0
            && let Some((_, t)) = self.schedule.as_mut().and_then(Schedule::peek)
        {
            consider(t);
        }
        if let Some(t) = self.dispatch.next_wake() {
            consider(t);
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
