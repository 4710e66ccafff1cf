//! The API's front door: one thread that accepts connections and reads their request heads,
//! all of them on one mio `Poll`, and hands each connection whose head has arrived to a thread of
//! its own.
//!
//! It exists because a flood of connections must not stop the server. tiny_http, which served
//! the API before, ends its accept thread on the first accept error (`EMFILE` when out of file
//! descriptors: the server never accepts again), gives every connection a thread before a byte
//! has arrived, holds any number of them, and has no timeout on a request head; it offers no way
//! to hand it a socket accepted elsewhere. So this module owns:
//!
//! - **A connection cap** (`--max-connections`): connections waiting for a head plus those being
//!   served. At the cap, a new connection closes the one that has waited longest for its head
//!   (a flood's idle or dripping connections go first; a real client sends its head at once and
//!   is handed over before it is the oldest). With none waiting, the new one gets a 503.
//! - **A head deadline** (`--head-timeout`), from the accept or from the previous response on a
//!   kept-alive connection: a partial head then gets a 408, an idle connection is closed.
//! - **Accept errors never end the loop.** Out of descriptors or memory, the oldest waiting
//!   connection is closed to make room; with none, accepting pauses for [`BACKOFF`] and resumes.
//!   Anything else is logged and retried.
//!
//! Waiting connections cost a descriptor and the bytes of their partial head, no thread.
//! Reading the body, routing and answering are the request thread's ([`super::http::Conn`] and
//! `api`); a kept-alive connection comes back here to wait for its next head.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use rustix::io::Errno;
use slab::Slab;

use super::http::{self, Conn, Request};

const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX);
/// Accepts per loop turn at most, so reading the heads that arrived is never starved by a
/// connect flood. Never more than half the cap either: a connection accepted in one turn has its
/// head read in the next, before enough newer ones can arrive to make it the oldest and shed it.
const ACCEPT_BATCH: usize = 256;
/// How long accepting pauses when out of descriptors with nothing to close.
pub const BACKOFF: Duration = Duration::from_millis(100);
/// How often the shed/refused counts are logged, at most.
const LOG_EVERY: Duration = Duration::from_secs(1);

/// What the gate enforces.
#[derive(Clone, Copy, Debug)]
pub struct GateLimits {
    pub max_connections: usize,
    pub head_timeout: Duration,
}

/// Serves one request on a connection whose head has arrived; true keeps the connection for
/// the next request.
pub type Handler = dyn Fn(Request, &mut Conn) -> bool + Send + Sync;

/// The running gate; stops (and closes the listener and every waiting connection) on drop.
pub struct Gate {
    waker: Arc<Waker>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Gate {
    /// Starts accepting on `listener` (blocking or not; it is made non-blocking).
    pub fn start(
        listener: std::net::TcpListener,
        limits: GateLimits,
        handler: Arc<Handler>,
    ) -> io::Result<Gate> {
        // std listens with a backlog of 128; a connect flood overflows that before the loop can
        // drain it, and then a real client's SYN waits a second or more for a retransmit. The
        // kernel caps this at `net.core.somaxconn`.
        rustix::net::listen(&listener, 4096)?;
        listener.set_nonblocking(true)?;
        let mut listener = TcpListener::from_std(listener);
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let stop = Arc::new(AtomicBool::new(false));
        let (back_tx, back_rx) = crossbeam_channel::unbounded();
        let mut lp = Loop {
            poll,
            listener,
            limits,
            waiting: Slab::new(),
            order: VecDeque::new(),
            busy: 0,
            next_gen: 0,
            accept_ready: true,
            paused_until: None,
            back_tx,
            back_rx,
            waker: Arc::clone(&waker),
            handler,
            log: Tally::default(),
        };
        let st = Arc::clone(&stop);
        let thread = thread::Builder::new()
            .name("api-gate".into())
            .spawn(move || lp.run(&st))?;
        Ok(Gate {
            waker,
            stop,
            thread: Some(thread),
        })
    }

    /// Waits until the gate stops (only [`Drop`] stops it).
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A connection waiting for its request head.
struct Waiting {
    stream: TcpStream,
    buf: Vec<u8>,
    /// How much of `buf` was already searched for the head's end.
    scanned: usize,
    generation: u64,
}

/// What a request thread gives back.
enum Back {
    Closed,
    KeepAlive(Conn),
}

/// How a waiting connection is let go.
#[derive(Clone, Copy)]
enum Close {
    /// The head did not arrive in time.
    Late,
    /// Room was needed for a newer connection.
    Shed,
    /// The head could not be served.
    Bad(http::HeadError),
    /// The peer closed or failed.
    Gone,
}

/// Counts logged at most once per [`LOG_EVERY`], so a flood does not become a log flood.
#[derive(Default)]
struct Tally {
    /// Waiting connections closed for a newcomer at the cap.
    shed_at_cap: u64,
    /// Waiting connections closed because accepting ran out of descriptors or memory.
    shed_for_resources: u64,
    /// Newcomers answered 503: the cap was full of connections being served.
    refused: u64,
    accept_errors: u64,
    last_error: String,
    last: Option<Instant>,
}

impl Tally {
    fn pending(&self) -> bool {
        self.shed_at_cap + self.shed_for_resources + self.refused + self.accept_errors > 0
    }

    fn flush(&mut self, now: Instant, max: usize) {
        if !self.pending() || self.last.is_some_and(|t| now < t + LOG_EVERY) {
            return;
        }
        let mut parts = Vec::new();
        if self.shed_at_cap > 0 {
            parts.push(format!(
                "closed {} connections that had not sent a request head, for newer ones \
                 (--max-connections {max})",
                self.shed_at_cap
            ));
        }
        if self.refused > 0 {
            parts.push(format!(
                "answered {} new connections 503 ({max} connections are being served)",
                self.refused
            ));
        }
        if self.accept_errors > 0 {
            parts.push(format!(
                "accepting failed {} times ({}); closed {} waiting connections to make room",
                self.accept_errors, self.last_error, self.shed_for_resources
            ));
        }
        eprintln!("pacer api: shedding load: {}", parts.join("; "));
        *self = Tally {
            last: Some(now),
            ..Tally::default()
        };
    }
}

struct Loop {
    poll: Poll,
    listener: TcpListener,
    limits: GateLimits,
    waiting: Slab<Waiting>,
    /// Deadlines in arrival order (all are `head_timeout` after arrival, so the front is the
    /// earliest); entries of connections that left are skipped by their generation.
    order: VecDeque<(Instant, usize, u64)>,
    /// Connections with a request thread.
    busy: usize,
    next_gen: u64,
    /// The listener may have connections to accept (mio is edge-triggered: cleared only by
    /// `WouldBlock`).
    accept_ready: bool,
    paused_until: Option<Instant>,
    back_tx: Sender<Back>,
    back_rx: Receiver<Back>,
    waker: Arc<Waker>,
    handler: Arc<Handler>,
    log: Tally,
}

impl Loop {
    fn run(&mut self, stop: &AtomicBool) {
        let mut events = Events::with_capacity(1024);
        while !stop.load(Ordering::SeqCst) {
            let timeout = self.next_wake(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    // Never seen in practice; waiting a moment keeps a persistent failure from
                    // spinning a core.
                    eprintln!("pacer api: poll failed: {e}");
                    thread::sleep(BACKOFF);
                }
                continue;
            }
            for ev in &events {
                match ev.token() {
                    LISTENER => self.accept_ready = true,
                    WAKER => {}
                    Token(key) => self.read_head(key),
                }
            }
            self.take_back();
            self.accept();
            let now = Instant::now();
            self.expire(now);
            self.log.flush(now, self.limits.max_connections);
        }
    }

    fn next_wake(&self, now: Instant) -> Option<Duration> {
        let mut wake: Option<Instant> = self.order.front().map(|&(at, _, _)| at);
        if self.accept_ready {
            let resume = self.paused_until.unwrap_or(now);
            wake = Some(wake.map_or(resume, |w| w.min(resume)));
        }
        if self.log.pending() {
            let at = self.log.last.map_or(now, |t| t + LOG_EVERY);
            wake = Some(wake.map_or(at, |w| w.min(at)));
        }
        wake.map(|w| w.saturating_duration_since(now))
    }

    fn accept(&mut self) {
        let batch = (self.limits.max_connections / 2).clamp(1, ACCEPT_BATCH);
        for _ in 0..batch {
            if !self.accept_ready {
                return;
            }
            let now = Instant::now();
            if self.paused_until.is_some_and(|t| now < t) {
                return;
            }
            self.paused_until = None;
            match self.listener.accept() {
                Ok((stream, _)) => self.admit(stream, Vec::new(), false, now),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.accept_ready = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.log.accept_errors += 1;
                    self.log.last_error = e.to_string();
                    let out_of_resources = matches!(
                        Errno::from_io_error(&e),
                        Some(Errno::MFILE | Errno::NFILE | Errno::NOBUFS | Errno::NOMEM)
                    );
                    // Out of descriptors: free one of ours for the newcomer. Otherwise (a
                    // connection aborted before it was accepted, a firewall's EPERM) go on.
                    if out_of_resources && !self.shed_oldest(false) {
                        self.paused_until = Some(now + BACKOFF);
                        return;
                    }
                }
            }
        }
    }

    /// Takes a connection in: a new one, or one back from a request thread (`returning`, with
    /// any pipelined bytes in `buf`), which already had its place under the cap.
    fn admit(&mut self, mut stream: TcpStream, buf: Vec<u8>, returning: bool, now: Instant) {
        if !returning
            && self.waiting.len() + self.busy >= self.limits.max_connections
            && !self.shed_oldest(true)
        {
            self.log.refused += 1;
            let msg = "Server busy: every connection is serving a request";
            let _ = stream.write(&http::error_response(503, msg));
            return;
        }
        let entry = self.waiting.vacant_entry();
        let key = entry.key();
        if self
            .poll
            .registry()
            .register(&mut stream, Token(key), Interest::READABLE)
            .is_err()
        {
            return;
        }
        self.next_gen += 1;
        let generation = self.next_gen;
        entry.insert(Waiting {
            stream,
            buf,
            scanned: 0,
            generation,
        });
        self.order
            .push_back((now + self.limits.head_timeout, key, generation));
        // Deadlines of connections that left stay queued until they come due; keep them from
        // piling up under churn.
        if self.order.len() > 2 * self.waiting.len() + 1024 {
            let waiting = &self.waiting;
            self.order
                .retain(|&(_, k, g)| waiting.get(k).is_some_and(|w| w.generation == g));
        }
        // A real client has usually sent its head by the time it is accepted.
        self.read_head(key);
    }

    /// Reads what a waiting connection sent; hands it over once its head is complete.
    fn read_head(&mut self, key: usize) {
        // A late event for a connection that already left is harmless.
        let Some(w) = self.waiting.get_mut(key) else {
            return;
        };
        let mut chunk = [0u8; 4096];
        loop {
            if w.buf.len() > http::MAX_HEAD {
                break;
            }
            match w.stream.read(&mut chunk) {
                Ok(0) => return self.close(key, Close::Gone),
                Ok(n) => w.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.close(key, Close::Gone),
            }
        }
        if !http::may_hold_head(&w.buf, w.scanned) {
            w.scanned = w.buf.len();
            if w.buf.len() >= http::MAX_HEAD {
                self.close(key, Close::Bad(http::HeadError::TooLarge));
            }
            return;
        }
        w.scanned = w.buf.len();
        match http::parse_head(&w.buf) {
            Ok(Some((req, len))) => self.hand_over(key, req, len),
            Ok(None) => {}
            Err(e) => self.close(key, Close::Bad(e)),
        }
    }

    fn hand_over(&mut self, key: usize, req: Request, head_len: usize) {
        let mut w = self.waiting.remove(key);
        let _ = self.poll.registry().deregister(&mut w.stream);
        let stream: std::net::TcpStream = w.stream.into();
        if stream.set_nonblocking(false).is_err() {
            return;
        }
        let rest = w.buf.split_off(head_len);
        let mut conn = Conn::new(stream, rest, self.limits.head_timeout);
        let (handler, tx, waker) = (
            Arc::clone(&self.handler),
            self.back_tx.clone(),
            Arc::clone(&self.waker),
        );
        let spawned = thread::Builder::new()
            .name("api-req".into())
            .spawn(move || {
                // A panic past the routes' own guard must still give the slot back.
                let keep =
                    catch_unwind(AssertUnwindSafe(|| handler(req, &mut conn))).unwrap_or(false);
                let _ = tx.send(if keep {
                    Back::KeepAlive(conn)
                } else {
                    Back::Closed
                });
                let _ = waker.wake();
            });
        match spawned {
            Ok(_) => self.busy += 1,
            // The connection was dropped with the closure, so it is closed unanswered: without
            // a thread there is nothing to answer it with but this one's time.
            Err(e) => eprintln!("pacer api: cannot start a request thread: {e}"),
        }
    }

    fn take_back(&mut self) {
        while let Ok(back) = self.back_rx.try_recv() {
            // Its place moves from `busy` to `waiting`: the count under the cap stays the same.
            self.busy = self.busy.saturating_sub(1);
            if let Back::KeepAlive(conn) = back {
                let (stream, rest) = conn.into_parts();
                if stream.set_nonblocking(true).is_ok() {
                    self.admit(TcpStream::from_std(stream), rest, true, Instant::now());
                }
            }
        }
    }

    /// Lets go of the connection that has waited longest for its head; false if none waits.
    fn shed_oldest(&mut self, at_cap: bool) -> bool {
        while let Some((_, key, generation)) = self.order.pop_front() {
            if self
                .waiting
                .get(key)
                .is_some_and(|w| w.generation == generation)
            {
                if at_cap {
                    self.log.shed_at_cap += 1;
                } else {
                    self.log.shed_for_resources += 1;
                }
                self.close(key, Close::Shed);
                return true;
            }
        }
        false
    }

    fn expire(&mut self, now: Instant) {
        while let Some(&(at, key, generation)) = self.order.front() {
            if at > now {
                return;
            }
            self.order.pop_front();
            if self
                .waiting
                .get(key)
                .is_some_and(|w| w.generation == generation)
            {
                self.close(key, Close::Late);
            }
        }
    }

    /// Closes a waiting connection, first telling a client that had started a request why
    /// (best effort: the socket does not block, and a full send buffer drops the answer).
    fn close(&mut self, key: usize, why: Close) {
        let mut w = self.waiting.remove(key);
        let started = !w.buf.is_empty();
        let answer = match why {
            Close::Late if started => Some(http::error_response(
                408,
                &format!(
                    "Request head not received within {} s",
                    self.limits.head_timeout.as_secs_f64()
                ),
            )),
            Close::Shed if started => Some(http::error_response(
                503,
                "Server busy: too many connections",
            )),
            Close::Bad(e) => Some(http::error_response(e.status(), e.message())),
            _ => None,
        };
        if let Some(bytes) = answer {
            let _ = w.stream.write(&bytes);
        }
        let _ = self.poll.registry().deregister(&mut w.stream);
    }
}

/// Raises the soft limit on open files to the hard limit, so the cap, not the default soft limit
/// (often 1024), decides how many connections are held. Returns the limit now in force.
pub fn raise_fd_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut lim = getrlimit(Resource::Nofile);
    if lim.current != lim.maximum {
        lim.current = lim.maximum;
        // Refused (some systems cap it below the hard limit): keep what there is.
        let _ = setrlimit(Resource::Nofile, lim);
    }
    getrlimit(Resource::Nofile).current
}
