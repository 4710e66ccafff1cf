//! One engine thread's loop, and only the loop:
//!
//! ```text
//!  wake ─> stop? ─> pacing: due requests ─> dispatch: expiries, hand-outs ─> progress ─> sleep
//!    ^                                                                                   │
//!    └── record the outcome <── exchange steps <── hand bytes over <── drain the sockets <┘
//! ```
//!
//! It owns one epoll instance (a mio `Poll`, for registration; the lane waits on it itself, with
//! `epoll_pwait2`'s nanosecond timeouts), a slab of connections (slab index = token), this
//! thread's [`Pacing`], [`Dispatch`] and [`LaneStats`], and the [`StampClock`] that puts the
//! kernel's receive stamps on the run's clock. What a response means is the exchange's, what a
//! connection's bytes are is the connection's, which request goes next and when one has waited
//! too long is dispatch's, when to wake for sends is [`wake`]'s; the lane reads the clock, moves
//! bytes between them, and ends every request it was given in exactly one [`Completed`] record
//! handed to [`LaneStats::record`]: a success, an HTTP status, a named failure, or not sent.
//!
//! **How it sleeps.** Every read carries the kernel's receive stamp of its bytes, so a response
//! read late is still timed when it arrived, and a paced lane needs to wake only to send: it
//! sleeps (`clock_nanosleep`) until the wake-up [`wake::send_wake`] picks for the next sends
//! within the lateness budget (`--max-lateness`), or the next deadline (a request's timeout, a
//! queued request's "not sent", a stop check), then drains whatever the sockets got meanwhile
//! (`epoll_pwait2` with a zero timeout) before it hands out the due requests, so connections
//! whose responses came back are found idle. Before a send it wakes the plan's spin early and
//! watches the clock for the rest ([`wake::how_to_wait`]), so the OS's wake-up latency does not
//! make the send late; the budget and the spin are the plan's ([`crate::plan::wake`]). It reacts to readiness instead (sleeping in
//! `epoll_pwait2` on the sockets, as at saturation) whenever waiting would change a number:
//!
//! - closed loop (saturation): the next request goes out when a response completes;
//! - requests queue for a connection (all `num_workers` busy): a response frees one;
//! - a connection is connecting, in its TLS handshake, has bytes to write, or has a response
//!   partly read (the rest comes soon; a big body left unread would fill the socket's receive
//!   buffer and stall the server): see [`Conn::needs_watch`];
//! - a streaming run (SSE): a read that returns several events gives them all the stamp of the
//!   last segment, so token times stay exact only if each segment is read as it arrives (the
//!   exchange makes such events one chunk, and the report counts their token gaps as
//!   `token_gaps_coalesced`);
//! - no send is left (the run's end waits on responses), or kernel stamps are off (refused, or
//!   `PACER_TIMESTAMPS=user`): then only reading at once gives the arrival time.
//!
//! The clock is read once per loop turn, once per read (the ceiling for that read's stamp, and
//! its time when there is no stamp), once per first hand-over of a request and once per new
//! closed-loop request.
//!
//! A test hook, `PACER_TEST_HOLD_MS=N` in the environment, keeps the lane busy N ms before it
//! first reads each response (once its request is out): the response then waits in the socket,
//! and the report shows whether its arrival time survived.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Interest, Poll, Token};
use rustls::ClientConnection;
use rustls::pki_types::ServerName;
use slab::Slab;
use std::os::fd::AsRawFd;

use super::clock::{self, Source, StampClock, StampReport};
use super::conn::{Conn, MAX_READS_PER_EVENT, ReadResult, Transport, WriteResult};
use super::dispatch::{Dispatch, Pending, Ticket};
use super::exchange::{Close, Counting, Exchange, Step};
use super::export::LaneExport;
use super::outcome::Outcome;
use super::outcome::{Completed, Failure};
use super::pacing::Pacing;
use super::session::LaneSessions;
use super::stats::{LaneStats, Values};
use super::sys::{self, Events};
use super::usage::ThreadUsage;
use super::wake::Wait;
use super::{Counts, LaneProgress, Stop, live, tls, wake};
use crate::metric::Id;
use crate::plan::{BodyMode, Plan};

/// Events taken from the kernel per `epoll_pwait2`; a full buffer is drained again at once.
const EVENTS: usize = 1024;
/// Most `epoll_pwait2` calls in one drain (a bound, so a flood cannot starve the sends).
const DRAIN_ROUNDS: usize = 8;

/// Set to `user` to time every read by the clock when the lane reads it, as if the kernel had
/// refused receive timestamps (the lane then reacts to every readiness).
pub const TIMESTAMPS_ENV: &str = "PACER_TIMESTAMPS";
/// Test hook: milliseconds the lane stays busy after each turn that sent something.
pub const HOLD_ENV: &str = "PACER_TEST_HOLD_MS";

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
    /// Where receive times come from: the kernel's stamps when the run turned them on
    /// ([`clock::warm_up`], once for the whole run), else why not.
    pub stamps: Source,
}

/// One engine thread. See the module docs.
pub struct Lane<'a> {
    sh: &'a Shared<'a>,
    thread: u32,
    poll: Poll,
    events: Events,
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
    /// Every record also goes to the per-request file (`--requests`).
    export: Option<LaneExport<'a>>,
    /// The live view counts first tokens (a streaming run), else response times.
    live_first_token: bool,
    /// Kernel receive stamps onto the run's clock, and when the offset was last read.
    clock: StampClock,
    clock_checked: Instant,
    /// Where receive times come from, and how many reads had a stamp.
    stamps: StampReport,
    /// Connections with `watched` set (see `Conn::needs_watch`): the lane reacts while any is.
    watch: usize,
    /// The lateness budget: sends due within it of the first share a wake-up.
    budget: Duration,
    /// The most the lane spins before a send (the plan's, chosen by the rate).
    spin: Duration,
    /// How late the OS has recently woken the lane: it spins that long (up to `spin`).
    oversleep: wake::Oversleep,
    /// Every segment is read as it arrives (streaming: every token's time matters).
    per_read: bool,
    /// Test hook (`PACER_TEST_HOLD_MS`), and the serial of the last request it held.
    hold: Option<Duration>,
    held: u64,
    /// A session run's live sessions (`--sessions`); None otherwise.
    sessions: Option<LaneSessions>,
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
        let plan = sh.plan;
        let hold = std::env::var(HOLD_ENV)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_millis);
        Ok(Lane {
            sh,
            thread: thread as u32,
            poll,
            events: Events::with_capacity(EVENTS),
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
            export: None,
            live_first_token: plan.body_mode == BodyMode::Sse,
            clock: StampClock::calibrate(),
            clock_checked: Instant::now(),
            stamps: StampReport {
                source: sh.stamps.clone(),
                ..StampReport::default()
            },
            watch: 0,
            budget: plan.wake.budget,
            spin: plan.wake.spin,
            oversleep: wake::Oversleep::new(plan.wake.spin),
            per_read: plan.body_mode == BodyMode::Sse,
            hold,
            held: 0,
            sessions: plan
                .sessions
                .clone()
                .map(|p| LaneSessions::new(p, sh.t0 + plan.duration, 0x5E55_1045 ^ thread as u64)),
        })
    }

    /// Also hands every record to `export` (the per-request file's writer).
    pub fn exporting(mut self, export: Option<LaneExport<'a>>) -> Self {
        self.export = export;
        self
    }

    pub fn run(mut self) -> LaneStats {
        sys::fine_timer_slack();
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
            if let Some(e) = self.export.as_mut() {
                e.tick(now, &self.stats.messages);
            }
            if self.finished(now) {
                break;
            }
            // The next session's first request is built now, between sends, not when it falls
            // due (where building it would count in its dispatch delay).
            if let Some(s) = self.sessions.as_mut()
                && let Some(next) = self.pacing.next_index()
            {
                s.prepare(next);
            }
            if now.duration_since(self.clock_checked) >= clock::RECHECK {
                self.clock.recheck();
                self.clock_checked = now;
            }
            if self.sleep().is_err() {
                // The poller itself failed: nothing more can be measured. Count what is left.
                self.abandon(Failure::Connect("poll failed"));
                break;
            }
            for key in std::mem::take(&mut self.revisit) {
                if self.conns.contains(key) {
                    self.read(key, false);
                    self.rewatch(key);
                }
            }
        }
        self.stats.timestamps = self.timestamps();
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
        self.stats.sessions = self.sessions.take().map(|s| s.stats);
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
        let waiting = self.sessions.as_mut().map(LaneSessions::take_waiting);
        for (index, intended) in waiting.into_iter().flatten() {
            self.turns_not_sent(index, intended, Failure::Interrupted, now);
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
            let index = match self.sessions.as_mut() {
                // A session run's schedule starts sessions: the request is its first turn.
                Some(s) => s.start(index, intended),
                None => index,
            };
            self.dispatch.due(index, intended);
        }
        if self.sessions.is_some() {
            self.release_turns(now);
        }
    }

    /// Sends the sessions' later turns whose think time is over, each on its session's own
    /// connection when that is still open (else the next free one); a turn due past the run's
    /// end is recorded as not sent, with the session's later turns.
    fn release_turns(&mut self, now: Instant) {
        while let Some(t) = self.sessions.as_mut().and_then(|s| s.due(now)) {
            if t.past_end {
                self.turns_not_sent(t.index, t.intended, Failure::RunEnded, now);
                continue;
            }
            self.stats
                .lateness
                .record(now.saturating_duration_since(t.intended).as_secs_f64());
            let p = Pending {
                index: t.index,
                intended: t.intended,
                dispatch: None,
            };
            let owned = t.conn.filter(|&(key, id)| {
                self.conns
                    .get(key)
                    .is_some_and(|c| c.id == id && c.is_idle())
            });
            match owned {
                Some((key, _)) => self.dispatch_on(key, p),
                None => self.dispatch.due(p.index, p.intended),
            }
        }
    }

    /// Turn `index` of a session, and the session's later turns, are not sent (`f`).
    fn turns_not_sent(&mut self, index: u64, intended: Instant, f: Failure, now: Instant) {
        let Some(s) = self.sessions.as_mut() else {
            return;
        };
        let later: Vec<u64> = s.later_turns(index).collect();
        // The session ends here, before its turns are recorded: recording a turn of a live
        // session would end it again as `not sent: session ended`.
        if let Some(owned) = s.ended(index) {
            self.free_owned(owned);
        }
        for i in std::iter::once(index).chain(later) {
            self.record(&Completed::unsent(i, intended, self.thread, f, now));
        }
    }

    /// A session that failed at turn request `index` ended: the connection it owned, if idle, is
    /// free again, and its later turns are recorded as not sent (`not sent: session ended`), so
    /// every turn of a started session is a request of the report.
    fn session_ended(&mut self, index: u64, owned: Option<(usize, u64)>, now: Instant) {
        self.free_owned(owned);
        let later: Vec<u64> = self
            .sessions
            .as_ref()
            .map(|s| s.later_turns(index).collect())
            .unwrap_or_default();
        for i in later {
            // Never scheduled: intended when the session ended. The session is no longer live,
            // so recording these ends nothing more.
            self.record(&Completed::unsent(
                i,
                now,
                self.thread,
                Failure::SessionEnded,
                now,
            ));
        }
    }

    /// The connection an ended session owned, if it is idle, goes back to the free ones.
    fn free_owned(&mut self, owned: Option<(usize, u64)>) {
        if let Some((key, id)) = owned
            && self
                .conns
                .get(key)
                .is_some_and(|conn| conn.id == id && conn.is_idle())
        {
            self.idle.push((key, id));
        }
    }

    /// Requests that waited `timeout` for a connection become "not sent"; requests past their
    /// deadline become timeouts (their connection is closed: its state is unknown).
    fn expire(&mut self, now: Instant) {
        while let Some(p) = self.dispatch.expire_unsent(now) {
            let c = Completed::unsent(p.index, p.intended, self.thread, Failure::NotSent, now);
            self.record(&c);
        }
        // A retry that waited for a connection until its first dispatch's deadline timed out:
        // it keeps that dispatch, and says it was retried.
        while let Some(p) = self.dispatch.expire_retry(now) {
            let mut c = Completed::unsent(p.index, p.intended, self.thread, Failure::Timeout, now);
            c.dispatch = p.dispatch;
            c.retried = true;
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
                let now = Instant::now();
                if let Some(s) = self.sessions.as_mut() {
                    s.dispatched(p.index, now);
                }
                now
            }
        };
        self.dispatch.start(p, now)
    }

    /// How the exchange of request `index` counts tokens.
    #[inline(always)]
    fn counting(&self, index: u64) -> Counting {
        let plan = self.sh.plan;
        match &self.sessions {
            // A turn's prompt is built on the lane: no count was made before the run.
            Some(s) => Counting {
                prompt_tokens: None,
                tokenizer: plan.tokenizer.clone(),
                keep_text: s.keeps_text(),
            },
            None => Counting {
                prompt_tokens: plan.prompt_tokens_for(index),
                tokenizer: plan.tokenizer.clone(),
                keep_text: false,
            },
        }
    }

    #[inline(always)]
    fn exchange(&self, ticket: Ticket, conn: u64) -> Exchange {
        let plan = self.sh.plan;
        let counting = self.counting(ticket.index);
        Exchange::counted(
            ticket,
            conn,
            (plan.body_mode, plan.method_is_head),
            counting,
        )
    }

    fn dispatch_on(&mut self, key: usize, p: Pending) {
        let ticket = self.start(p);
        self.dispatch.track(key, &ticket);
        let plan = self.sh.plan;
        let counting = self.counting(ticket.index);
        let conn = &mut self.conns[key];
        let mode = (plan.body_mode, plan.method_is_head);
        conn.carry(Exchange::counted(ticket, conn.id, mode, counting));
        self.write(key);
        self.rewatch(key);
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
        let stamps = self.stamps.source == Source::Kernel;
        let conn = entry.insert(Conn::new(id, sock, index, transport, ex));
        conn.set_stamps(stamps);
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
        self.rewatch(key);
    }

    fn connect(&mut self, index: usize) -> Result<(TcpStream, Transport), Failure> {
        let sock = TcpStream::connect(self.sh.addrs[index]).map_err(|e| Failure::from_io(&e))?;
        if self.stamps.source == Source::Kernel
            && let Err(e) = sys::enable_rx_timestamps(&sock)
        {
            // From now on every connection of this lane reads the clock instead.
            self.stamps.source =
                Source::User(format!("SO_TIMESTAMPING refused ({})", sys::errno_name(&e)));
        }
        let transport = match &self.sh.tls {
            None => Transport::Plain,
            Some((config, name)) => match ClientConnection::new(config.clone(), name.clone()) {
                Ok(c) => Transport::Tls(Box::new(c)),
                Err(e) => return Err(Failure::Tls(tls::reason(&e))),
            },
        };
        Ok((sock, transport))
    }

    fn on_event(&mut self, key: usize, readable: bool, writable: bool, hup: bool) {
        self.handle(key, readable, writable, hup);
        self.rewatch(key);
    }

    /// Keeps the count of connections the lane must react to (see `Conn::needs_watch`) true
    /// after anything happened to connection `key`.
    #[inline]
    fn rewatch(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let w = conn.needs_watch();
        if w != conn.watched {
            conn.watched = w;
            if w {
                self.watch += 1;
            } else {
                self.watch -= 1;
            }
        }
    }

    fn handle(&mut self, key: usize, readable: bool, writable: bool, hup: bool) {
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
            || (writable
                && self.conns[key].request_pending(|i| match &self.sessions {
                    None => plan.request_for(i).len(),
                    Some(s) => s.request(i).len(),
                }))
        {
            // Edge-triggered readiness reports "writable" with every response that arrives;
            // only a request not yet all out (or TLS records waiting) needs the write call.
            self.write(key);
            if !self.conns.contains(key) {
                return;
            }
        }
        if readable {
            self.read(key, hup);
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
                let stamps = self.stamps.source == Source::Kernel;
                self.conns[key].replace_socket(sock, index, transport);
                self.conns[key].set_stamps(stamps);
                if let Err(e) = reg {
                    self.fail(key, Failure::from_io(&e));
                }
            }
            Err(f) => self.fail(key, f),
        }
    }

    fn write(&mut self, key: usize) {
        let plan = self.sh.plan;
        let result = match &self.sessions {
            None => self.conns[key].write(|index| plan.request_for(index)),
            Some(s) => self.conns[key].write(|index| s.request(index)),
        };
        if let WriteResult::Failed(f) = result {
            self.fail(key, f);
        }
    }

    /// Reads what connection `key` has; `hup`: its readiness said the peer closed.
    fn read(&mut self, key: usize, hup: bool) {
        if let Some(hold) = self.hold {
            self.hold_before_reading(key, hold);
        }
        for _ in 0..MAX_READS_PER_EVENT {
            let Some(conn) = self.conns.get_mut(key) else {
                return;
            };
            match conn.read() {
                ReadResult::Data { n, full, stamp } => {
                    let now = Instant::now();
                    let at = match stamp {
                        Some(s) => {
                            self.stamps.stamped += 1;
                            // A response cannot arrive before its request went out.
                            let floor = conn.exchange().map_or(now, |e| e.ticket().dispatch);
                            self.clock.map(s, floor, now)
                        }
                        None => {
                            if self.stamps.source == Source::Kernel {
                                self.stamps.unstamped += 1;
                            }
                            now
                        }
                    };
                    let Some(step) = conn.feed(n, at, &mut self.stats) else {
                        // Bytes on a connection with no request: nothing asked for them.
                        return self.close(key);
                    };
                    match step {
                        // A read that filled the buffer means a big body: read it in larger pieces.
                        Step::More if full => conn.grow_for_body(),
                        Step::More => {}
                        Step::Complete { reuse } => {
                            // A request that said `Connection: close` closes its connection
                            // whatever the server answered (--no-keepalive).
                            let reuse = reuse && !self.sh.plan.closes;
                            self.complete(key, reuse);
                            // The response is whole and the read did not fill the buffer: nothing
                            // more is due on this connection, so skip the read that would only say
                            // WouldBlock. Linux signals an edge for every later arrival or close,
                            // but not for a close that came with this read's data: then read on,
                            // so the connection is closed now rather than found stale by the next
                            // request.
                            if reuse && !full && !hup {
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

    /// The test hook: once per request, when its request is out and nothing of its response
    /// was read yet, the lane stays busy for `hold` before reading.
    #[cold]
    fn hold_before_reading(&mut self, key: usize, hold: Duration) {
        let Some(conn) = self.conns.get(key) else {
            return;
        };
        let Some(serial) = conn.exchange().map(|e| e.ticket().serial) else {
            return;
        };
        if conn.is_busy() && !conn.needs_watch() && serial != self.held {
            self.held = serial;
            std::thread::sleep(hold);
        }
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
            if conn.watched {
                self.watch -= 1;
            }
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
        let conn = &self.conns[key];
        let Some(c) = conn.completed(self.thread) else {
            return;
        };
        let gaps = conn.gaps();
        // The one request that carries token gaps: they go in with its record, from the
        // connection's scratch memory, before the connection takes its next request.
        let values = self.stats.record(&c, gaps);
        self.observe(&c, &values);
        // A session that goes on keeps its connection for its next turn.
        let owned = self.sessions.is_some() && self.session_completed(key, &c, &values, reuse);
        let conn = &mut self.conns[key];
        if let Some(t) = conn.release() {
            self.dispatch.end(t);
        }
        conn.served += 1;
        if reuse && !owned {
            self.idle.push((key, conn.id));
        }
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

    /// Every request of the lane ends here, once (a complete response in `complete`, which adds
    /// its token gaps): its statistics, the live view, the file.
    #[inline(always)]
    fn record(&mut self, c: &Completed) {
        let values = self.stats.record(c, &[]);
        if self.sessions.is_some() {
            self.session_failed(c, &values);
        }
        self.observe(c, &values);
    }

    /// A session's turn got a complete response on connection `key`: its by-turn figures, and
    /// on success the session's next turn (true: the session keeps the connection).
    fn session_completed(
        &mut self,
        key: usize,
        c: &Completed,
        values: &Values,
        reuse: bool,
    ) -> bool {
        let conn = &self.conns[key];
        let Some(s) = self.sessions.as_mut() else {
            return false;
        };
        let (_, turn) = s.of_index(c.index);
        s.stats.turn_ended(
            turn,
            values[Id::TimeToFirstToken as usize],
            values[Id::DispatchDelay as usize],
            c.input_tokens,
        );
        if c.outcome != Outcome::Success {
            // Its connection is the one this answer came on: `complete` frees it.
            if s.ended(c.index).is_some() {
                self.session_ended(c.index, None, c.ended);
            }
            return false;
        }
        let end = c.end_at.unwrap_or(c.ended);
        let id = reuse.then_some((key, conn.id));
        s.answered(c.index, end, conn.answer_text(), id) && reuse
    }

    /// A session's turn ended without a response (failed, timed out, not sent): its by-turn
    /// count, and its session ends ([`Lane::session_ended`]).
    fn session_failed(&mut self, c: &Completed, values: &Values) {
        let Some(s) = self.sessions.as_mut() else {
            return;
        };
        let (_, turn) = s.of_index(c.index);
        s.stats.turn_ended(
            turn,
            values[Id::TimeToFirstToken as usize],
            values[Id::DispatchDelay as usize],
            c.input_tokens,
        );
        if let Some(owned) = s.ended(c.index) {
            self.session_ended(c.index, owned, c.ended);
        }
    }

    /// What else sees each ended request, with its values as the statistics computed them: the
    /// live view and the file.
    #[inline(always)]
    fn observe(&mut self, c: &Completed, values: &Values) {
        if let Some((at, secs)) = live::sample(c, values, self.sh.t0, self.live_first_token) {
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
            completed: s.timings[Id::ResponseTime].count(),
            errors: s.errors(),
            done: s.total,
            settled: s.dispatched,
        };
        self.progress.add(now.since(self.shown));
        self.shown = now;
    }

    fn finished(&self, now: Instant) -> bool {
        match self.pacing {
            Pacing::Saturate { .. } if self.pacing.cut(now) => true,
            Pacing::Saturate { .. } | Pacing::Paced(_) => {
                self.dispatch.quiet()
                    && self.pacing.over(now)
                    && self.sessions.as_ref().is_none_or(LaneSessions::quiet)
            }
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
            // A queued retry went out once: it keeps that dispatch, and says it was retried.
            let mut c = Completed::unsent(p.index, p.intended, self.thread, f, now);
            c.dispatch = p.dispatch;
            c.retried = p.dispatch.is_some();
            self.record(&c);
        }
        while let Some((index, intended)) = self.pacing.take_rest() {
            self.record(&Completed::unsent(index, intended, self.thread, f, now));
        }
        let waiting = self.sessions.as_mut().map(LaneSessions::take_waiting);
        for (index, intended) in waiting.into_iter().flatten() {
            self.turns_not_sent(index, intended, f, now);
        }
    }

    /// Whether receive times come from the kernel's stamps (so a read may come late). Not
    /// before the first stamp has been seen: the kernel turns stamping on a moment after the
    /// first socket asks for it, and a read before that is timed when it happens.
    fn kernel_stamps(&self) -> bool {
        self.stamps.source == Source::Kernel && self.stamps.stamped > 0
    }

    /// Whether waiting for the next send would change a number (see the module docs), so the
    /// lane must wake on readiness.
    fn reacting(&self) -> bool {
        !self.revisit.is_empty()
            || self.watch > 0
            || self.dispatch.queued() > 0
            || self.per_read
            || matches!(self.pacing, Pacing::Saturate { .. })
            || !self.kernel_stamps()
            || matches!(&self.pacing, Pacing::Paced(s) if s.remaining() == 0)
    }

    /// The next moment to wake for: the sends the lateness budget lets share a wake-up, a queue
    /// expiry, a request's deadline, or a closed loop's end; and whether it is for sends (the
    /// lane spins before those). None: nothing is scheduled.
    fn wake_at(&mut self) -> Option<(Instant, bool)> {
        let queue_empty = self.dispatch.queued() == 0;
        let sends = match self.pacing {
            // Due requests only queue behind waiting ones: those wake the lane as they go.
            Pacing::Paced(_) if queue_empty => {
                wake::send_wake(self.pacing.upcoming(), self.budget).map(|t| (t, true))
            }
            _ => self.pacing.wake_at(queue_empty).map(|t| (t, false)),
        };
        let turns = self
            .sessions
            .as_ref()
            .and_then(LaneSessions::next_due)
            .map(|t| (t, true));
        let sends = match (sends, turns) {
            (Some(a), Some(b)) => Some(if b.0 < a.0 { b } else { a }),
            (a, b) => a.or(b),
        };
        let other = self.dispatch.next_wake().map(|t| (t, false));
        match (sends, other) {
            (Some(s), Some(o)) => Some(if o.0 < s.0 { o } else { s }),
            (s, o) => s.or(o),
        }
    }

    /// Sleeps until the next wake-up (reacting to readiness or not, see the module docs), then
    /// hands over every event the sockets got.
    fn sleep(&mut self) -> io::Result<()> {
        let react = self.reacting();
        let now = Instant::now();
        let (wait, send) = match self.wake_at() {
            _ if !self.revisit.is_empty() => (Duration::ZERO, false),
            Some((at, send)) => (at.saturating_duration_since(now).min(STOP_CHECK), send),
            None => (STOP_CHECK, false),
        };
        let epfd = self.poll.as_raw_fd();
        match (
            wake::how_to_wait(wait, send, self.oversleep.spin(self.spin)),
            react,
        ) {
            // Reacting, a spin is polling: the loop comes back at once.
            (Wait::Spin(_), true) => sys::wait(epfd, &mut self.events, Some(Duration::ZERO))?,
            (Wait::Sleep(d), true) => sys::wait(epfd, &mut self.events, Some(d))?,
            (Wait::Spin(d), false) => {
                let until = now + d;
                while Instant::now() < until {
                    std::hint::spin_loop();
                }
                sys::wait(epfd, &mut self.events, Some(Duration::ZERO))?;
            }
            (Wait::Sleep(d), false) => {
                sys::sleep(d);
                if !self.spin.is_zero() {
                    self.oversleep
                        .note(Instant::now().saturating_duration_since(now + d));
                }
                sys::wait(epfd, &mut self.events, Some(Duration::ZERO))?;
            }
        }
        for round in 0.. {
            for i in 0..self.events.len() {
                let Some(ev) = self.events.get(i) else { break };
                self.on_event(ev.token, ev.read, ev.write, ev.hup);
            }
            if !self.events.is_full() || round + 1 >= DRAIN_ROUNDS {
                break;
            }
            sys::wait(epfd, &mut self.events, Some(Duration::ZERO))?;
        }
        Ok(())
    }

    /// What the report says about this lane's receive times.
    fn timestamps(&self) -> StampReport {
        let mut r = self.stamps.clone();
        r.drift_ns = self.clock.drift_ns();
        r.steps = self.clock.steps();
        if r.source == Source::Kernel && r.stamped == 0 && r.unstamped > 0 {
            r.source = Source::User("the kernel gave no receive timestamps".into());
        }
        r
    }
}
