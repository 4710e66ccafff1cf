//! One engine thread's loop, and only the loop:
//!
//! ```text
//!  wake ─> stop? ─> pacing: due requests ─> dispatch: expiries, hand-outs ─> progress ─> poll
//!    ^                                                                                   │
//!    └── record the outcome <── exchange steps <── hand bytes over <── socket I/O <──────┘
//! ```
//!
//! It owns one mio `Poll`, a slab of connections (slab index = mio token), a timerfd for the next
//! deadline, this thread's [`Pacing`], [`Dispatch`] and [`LaneStats`]. What a response means is
//! the exchange's, what a connection's bytes are is the connection's, which request goes next and
//! when one has waited too long is dispatch's; the lane reads the clock, moves bytes between
//! them, and ends every request it was given in exactly one [`Completed`] record handed to
//! [`LaneStats::record`]: a success, an HTTP status, a named failure, or not sent.
//!
//! The clock is read once per loop turn, once per read (that instant stamps everything the read
//! carried), once per first hand-over of a request and once per new closed-loop request.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
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
use super::export::LaneExport;
use super::outcome::{Completed, Failure};
use super::pacing::Pacing;
use super::stats::LaneStats;
use super::sys::{self, Timer};
use super::{Counts, LaneProgress, Stop, live, tls};
use crate::health::ThreadUsage;
use crate::plan::{BodyMode, Plan, Rate};

/// The timerfd's token; every other token is a slab key.
const TIMER: Token = Token(usize::MAX);

/// How early the timerfd is armed before a send deadline, the rest of the way being busy-polled.
/// A sleeping thread wakes tens of microseconds late, more when the core has gone idle (measured
/// on the 2-core VM: p50 ≈ 27 µs at 2,000 qps, ≈ 57 µs at 10 qps). Busy-polling costs CPU, so the
/// window is sized to spend at most `SPIN_CPU_SHARE` of a core: `SPIN_CPU_SHARE / rate`, capped
/// at `SPIN_MAX` (150 µs at 10 req/s per thread, 50 µs at 1,000, 10 µs at 5,000, ~0 above).
const SPIN_CPU_SHARE: f64 = 0.05;
const SPIN_MAX: Duration = Duration::from_micros(150);

/// The longest a lane sleeps without looking at its stop switch: a stopped run notices within
/// this even when nothing is due for much longer (a low rate, a long timeout).
const STOP_CHECK: Duration = Duration::from_millis(100);

/// What every lane of a run shares (read-only, or atomics).
pub struct Shared<'a> {
    pub plan: &'a Plan,
    pub addrs: &'a [SocketAddr],
    pub tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    pub t0: Instant,
    /// When the threads were ready. Before `t0` but for a late start (`start_at` passed), when
    /// a request due before it waits for a connection from here, not from its intended time.
    pub ready: Instant,
    pub stop: &'a Stop,
}

/// One engine thread. See the module docs.
pub struct Lane<'a> {
    sh: &'a Shared<'a>,
    thread: u32,
    poll: Poll,
    events: Events,
    timer: Option<Timer>,
    conns: Slab<Conn>,
    /// Connections that finished a response and may carry the next, with their ids (a slot
    /// reused by another connection since is skipped).
    idle: Vec<(usize, u64)>,
    pacing: Pacing,
    dispatch: Dispatch,
    next_conn_id: u64,
    /// The resolved address that last connected: new connections try it first.
    addr_index: usize,
    /// Connections whose drain loop hit its cap: read again before sleeping.
    revisit: Vec<usize>,
    stats: LaneStats,
    /// Requests handed out for the first time (retries are not sent twice for progress).
    sent: u64,
    progress: &'a LaneProgress,
    /// What `progress` shows already.
    shown: Counts,
    /// Wake this much before a deadline and busy-poll the rest (see `SPIN_CPU_SHARE`).
    spin: Duration,
    /// Every record also goes to the per-request file (`--requests`).
    export: Option<LaneExport<'a>>,
    /// The live view counts first tokens (a streaming run), else response times.
    live_first_token: bool,
}

impl<'a> Lane<'a> {
    /// Thread `thread` of `threads`, with at most `cap` connections.
    pub fn new(
        sh: &'a Shared<'a>,
        thread: usize,
        threads: usize,
        cap: usize,
        progress: &'a LaneProgress,
    ) -> io::Result<Self> {
        let poll = Poll::new()?;
        let timer = match Timer::new() {
            Ok(t) => {
                poll.registry()
                    .register(&mut SourceFd(&t.raw_fd()), TIMER, Interest::READABLE)?;
                Some(t)
            }
            // Without a timerfd the loop still runs, with millisecond wake-ups.
            Err(_) => None,
        };
        let plan = sh.plan;
        let spin = match plan.rate {
            Rate::PerSecond(qps) => {
                Duration::from_secs_f64(SPIN_CPU_SHARE * threads as f64 / qps).min(SPIN_MAX)
            }
            Rate::Max => Duration::ZERO,
        };
        Ok(Lane {
            sh,
            thread: thread as u32,
            poll,
            events: Events::with_capacity(1024),
            timer,
            conns: Slab::with_capacity(cap),
            idle: Vec::with_capacity(cap),
            pacing: Pacing::new(plan, sh.t0, thread as u64, threads as u64),
            dispatch: Dispatch::new(cap, plan.timeout).waiting_from(sh.ready),
            next_conn_id: 0,
            addr_index: 0,
            revisit: Vec::new(),
            stats: LaneStats::for_plan(plan, sh.t0),
            sent: 0,
            progress,
            shown: Counts::default(),
            spin,
            export: None,
            live_first_token: plan.body_mode == BodyMode::Sse,
        })
    }

    /// Also hands every record to `export` (the per-request file's writer).
    pub fn exporting(mut self, export: Option<LaneExport<'a>>) -> Self {
        self.export = export;
        self
    }

    pub fn run(mut self) -> LaneStats {
        // The CPU the run itself costs, not the thread's setup: counted from here.
        let before = sys::thread_usage().ok();
        loop {
            let now = Instant::now();
            if !self.stats.interrupted && self.sh.stop.is_stopped() {
                self.interrupt(now);
            }
            self.release_due(now);
            self.expire(now);
            self.assign();
            self.publish();
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
        // Close what is left so its TLS handshake is counted (in-flight closed-loop requests are
        // dropped uncounted, as wrk does).
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            self.close(key);
        }
        self.publish();
        // The thread's own CPU over its run, for `health` (none if the OS will not say). The
        // wall time it is a share of is the whole run's, which `engine::finish` knows.
        if let (Some((cpu0, switches0)), Ok((cpu, switches))) = (before, sys::thread_usage()) {
            let usage = ThreadUsage {
                cpu: cpu.saturating_sub(cpu0).as_secs_f64(),
                wall: 0.0,
                involuntary_switches: switches.saturating_sub(switches0),
            };
            self.stats.usage.push((self.thread, usage));
        }
        if let Some(e) = self.export.as_mut() {
            e.flush(&self.stats.messages);
        }
        self.stats
    }

    /// The run was stopped: nothing more is scheduled. An open loop's requests not yet sent end
    /// as `not sent: interrupted`, each a record of its own; those in flight get up to their
    /// timeout. A closed loop ends now, as at its end.
    fn interrupt(&mut self, now: Instant) {
        self.stats.interrupted = true;
        self.pacing.stop(now);
        while let Some((index, intended)) = self.pacing.take_rest() {
            self.record(&Completed::unsent(
                index,
                intended,
                self.thread,
                Failure::Interrupted,
                now,
            ));
        }
        for p in self.dispatch.take_unsent() {
            self.record(&Completed::unsent(
                p.index,
                p.intended,
                self.thread,
                Failure::Interrupted,
                now,
            ));
        }
    }

    /// Moves due requests from the schedule into the FIFO queue, noting how late the thread took
    /// them: the generator's own lateness, for the run's `health`. Requests that fall due while
    /// others wait for a connection are left out: the lane does not wake for them (they would only
    /// queue), so their lateness is the connections' wait.
    fn release_due(&mut self, now: Instant) {
        let punctual = self.dispatch.queued() == 0;
        while let Some((index, intended)) = self.pacing.due(now) {
            if punctual {
                self.stats
                    .lateness
                    .record(now.saturating_duration_since(intended).as_secs_f64());
            }
            self.dispatch.due(index, intended);
        }
    }

    /// Requests that waited `timeout` for a connection become "not sent"; requests past their
    /// deadline become timeouts (their connection is closed: its state is unknown).
    fn expire(&mut self, now: Instant) {
        while let Some(p) = self.dispatch.expire_unsent(now) {
            let c = Completed::unsent(p.index, p.intended, self.thread, Failure::NotSent, now);
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
        if let Pacing::Saturate { end, .. } = self.pacing
            && now >= end
        {
            // Closed loop ends at the deadline, as wrk does: what is in flight is not counted.
            self.dispatch.clear();
        }
    }

    /// Hands queued (or, in closed loop, new) requests to idle connections or new ones.
    fn assign(&mut self) {
        // Bounded: a connection that fails at once frees its slot again, which must not spin here.
        let mut budget = self.dispatch.cap() + self.dispatch.queued();
        while budget > 0 {
            budget -= 1;
            let queued = self.dispatch.peek();
            let pending = match queued {
                Some(p) => p,
                None => {
                    // Only a closed loop makes requests on demand, and only for a free connection.
                    let Pacing::Saturate { .. } = self.pacing else {
                        return;
                    };
                    if self.dispatch.busy() >= self.dispatch.cap() {
                        return;
                    }
                    let now = Instant::now();
                    let Some(index) = self.pacing.closed_loop(now) else {
                        return;
                    };
                    Pending {
                        index,
                        intended: now,
                        dispatch: None,
                    }
                }
            };
            let idle = self.pop_idle();
            if idle.is_none() && !self.dispatch.may_open() {
                return;
            }
            if queued.is_some() {
                self.dispatch.pop();
            } else {
                self.pacing.advance();
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
            None => {
                self.sent += 1;
                Instant::now()
            }
        };
        self.dispatch.start(p, now)
    }

    fn exchange(&self, ticket: Ticket, conn: u64) -> Exchange {
        let plan = self.sh.plan;
        let prompt_tokens = plan.prompt_tokens_for(ticket.index);
        Exchange::new(ticket, conn, plan.body_mode, plan.method_is_head)
            .counting(prompt_tokens, plan.tokenizer.clone())
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
                Err(f) => return self.connect_failed(key, f),
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

    /// A connect failed with `f`: the next resolved address gets a try (`localhost` may resolve
    /// to ::1 while the target listens on 127.0.0.1 only), else the request fails.
    fn connect_failed(&mut self, key: usize, f: Failure) {
        let conn = &self.conns[key];
        let (tried, from) = (conn.addr_attempts, conn.addr_index);
        let retryable = matches!(f, Failure::Refused | Failure::Connect(_));
        if !retryable || tried >= self.sh.addrs.len() {
            return self.fail(key, f);
        }
        let index = (from + 1) % self.sh.addrs.len();
        match self.connect(index) {
            Ok((mut sock, transport)) => {
                let reg = self.poll.registry().register(
                    &mut sock,
                    Token(key),
                    Interest::READABLE | Interest::WRITABLE,
                );
                self.conns[key].replace_socket(sock, index, transport);
                if let Err(e) = reg {
                    self.fail(key, Failure::from_io(&e));
                }
            }
            Err(f) => self.fail(key, f),
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
                let c = ex.failed(f, self.thread, Instant::now());
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
        let c = ex.failed(f, self.thread, Instant::now());
        self.dispatch.end(*ex.ticket());
        self.record(&c);
    }

    /// Every request of the lane ends here, once: its statistics, the live view, the file.
    #[inline(always)]
    fn record(&mut self, c: &Completed) {
        self.stats.record(c);
        if let Some((at, secs)) = live::sample(c, self.sh.t0, self.live_first_token) {
            self.progress.rolling.record(at, secs);
        }
        if let Some(e) = self.export.as_mut() {
            e.push(c, &self.stats.messages);
        }
    }

    /// Shows the counters to whoever watches the run (relaxed atomics, only when they moved).
    fn publish(&mut self) {
        let s = &self.stats;
        if s.total == self.shown.done && self.sent == self.shown.sent {
            return;
        }
        let now = Counts {
            sent: self.sent,
            completed: s.timings.response_time.count(),
            errors: s.errors(),
            done: s.total,
            settled: s.dispatched,
        };
        self.progress.add(now.since(self.shown));
        self.shown = now;
    }

    fn finished(&self, now: Instant) -> bool {
        match self.pacing {
            Pacing::Saturate { .. } => self.pacing.over(now),
            Pacing::Paced(_) => self.dispatch.quiet() && self.pacing.over(now),
        }
    }

    /// Ends every request not yet in a bucket as `f` (only when the loop cannot go on).
    fn abandon(&mut self, f: Failure) {
        let now = Instant::now();
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            let conn = &mut self.conns[key];
            if let Some(c) = conn.exchange().map(|ex| ex.failed(f, self.thread, now))
                && let Some(t) = conn.release()
            {
                self.dispatch.end(t);
                self.record(&c);
            }
        }
        for p in self.dispatch.take_all() {
            self.record(&Completed::unsent(p.index, p.intended, self.thread, f, now));
        }
        while let Some((index, intended)) = self.pacing.take_rest() {
            self.record(&Completed::unsent(index, intended, self.thread, f, now));
        }
    }

    /// How long to sleep: until the next intended send, queue expiry, request deadline or run end,
    /// and never longer than `STOP_CHECK`.
    fn poll_timeout(&mut self) -> Option<Duration> {
        if !self.revisit.is_empty() {
            return Some(Duration::ZERO);
        }
        let mut next: Option<Instant> = None;
        let mut consider = |t: Instant| next = Some(next.map_or(t, |n: Instant| n.min(t)));
        if let Some(t) = self.pacing.wake_at(self.dispatch.queued() == 0) {
            consider(t);
        }
        if let Some(t) = self.dispatch.next_wake() {
            consider(t);
        }
        let Some(deadline) = next else {
            return Some(STOP_CHECK);
        };
        let now = Instant::now();
        if deadline <= now || deadline - now <= self.spin {
            return Some(Duration::ZERO);
        }
        let armed = self
            .timer
            .as_mut()
            .is_some_and(|t| t.arm(deadline - self.spin, now).is_ok());
        let wait = if armed {
            // The timerfd wakes us; the poll timeout is only a safety net.
            deadline - now + Duration::from_millis(10)
        } else {
            deadline - now
        };
        Some(wait.min(STOP_CHECK))
    }
}
