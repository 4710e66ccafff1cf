//! The API's front door: one thread that accepts connections and reads their request heads,
//! all of them on one mio `Poll`, answers `GET /health` itself, and hands each other connection
//! whose head has arrived to a thread of its own.
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
//! - **Request threads are rationed** ([`GateLimits::may_serve`]): never all of the cap (one place
//!   is kept to read heads in, so a new connection is always read and `GET /health`, answered
//!   here without a thread, always answers), at most `--max-busy-per-client` per client address,
//!   and the last `--new-client-slots` only for clients with none. A head past these is answered
//!   at once (429 or 503) and its connection closed: a stalled upload, an answer never read or a
//!   pipelining client holds a thread for `--io-timeout` at most, and only its client's share.
//! - **Each turn of the loop handles only what was there when it began**: the events of one
//!   poll, the connections that had come back from their threads, one batch of accepts. A
//!   connection handed out again during the turn waits for the next one, so a client that
//!   pipelines requests can never keep the loop from accepting.
//!
//! Waiting connections cost a descriptor and the bytes of their partial head, no thread.
//! Reading the body, routing and answering are the request thread's ([`super::http::Conn`] and
//! `api`); requests pipelined behind the first are served in order on the same thread, as long
//! as their heads have arrived; then the kept-alive connection comes back here to wait for its
//! next head.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
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
/// `GET /health` requests one connection gets answered on the gate per read, at most; past them
/// its pipelined requests go to a thread (which answers `/health` too), so one connection's
/// bytes cannot hold the loop.
const GATE_ANSWERS: usize = 8;
/// The answer to `GET /health`, here and on a request thread alike.
pub const HEALTH: &[u8] = br#"{"status":"ok"}"#;

/// What the gate enforces.
#[derive(Clone, Copy, Debug)]
pub struct GateLimits {
    pub max_connections: usize,
    pub head_timeout: Duration,
    /// A request body's time to arrive, and an answer's to be taken (`--io-timeout`).
    pub io_timeout: Duration,
    /// Connections served at once per client address (`--max-busy-per-client`).
    pub max_busy_per_client: usize,
    /// Request threads kept for clients with none (`--new-client-slots`).
    pub new_client_slots: usize,
}

/// Why a connection whose head has arrived gets no request thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Its client has `--max-busy-per-client` connections being served: 429.
    Client,
    /// Its client has one being served, and only the places kept for new clients are left: 503.
    KeptForNewClients,
    /// Every request thread is in use: 503.
    Full,
}

impl GateLimits {
    /// Request threads at once: all of the cap but one place, kept for the gate to read a new
    /// connection's head in (a newcomer at the cap closes the oldest waiting connection).
    pub fn threads(&self) -> usize {
        self.max_connections.saturating_sub(1).max(1)
    }

    /// Of [`threads`](Self::threads), those a client that already has one may take: the rest are
    /// kept for new clients (at most half of them).
    pub fn shared_threads(&self) -> usize {
        let all = self.threads();
        all - self.new_client_slots.min(all / 2)
    }

    /// Whether a request from a client with `of_client` connections being served may have a
    /// thread, `busy` being served in all.
    pub fn may_serve(&self, busy: usize, of_client: usize) -> Result<(), Refusal> {
        if busy >= self.threads() {
            Err(Refusal::Full)
        } else if of_client >= self.max_busy_per_client {
            Err(Refusal::Client)
        } else if of_client > 0 && busy >= self.shared_threads() {
            Err(Refusal::KeptForNewClients)
        } else {
            Ok(())
        }
    }

    /// The answer to a refused request (it closes the connection).
    fn refusal(&self, why: Refusal) -> Vec<u8> {
        match why {
            Refusal::Client => http::error_response(
                429,
                &format!(
                    "Too many requests from your address are being served at once (at most {}, \
                     --max-busy-per-client)",
                    self.max_busy_per_client
                ),
            ),
            Refusal::KeptForNewClients => http::error_response(
                503,
                "Server busy: the request threads left are kept for other clients",
            ),
            Refusal::Full => {
                http::error_response(503, "Server busy: every request thread is in use")
            }
        }
    }
}

/// The client a connection counts against: its IP address, an IPv6 one by its /64 (what one
/// host is usually given), an IPv4-mapped one as the IPv4 address.
pub fn client_of(peer: SocketAddr) -> IpAddr {
    match peer.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !u128::from(u64::MAX))),
        },
        v4 => v4,
    }
}

/// Takes from `rx` only the items that were queued when it was called: an item sent while they
/// are handled (a connection handed out and back again) waits for the next call.
fn for_each_queued<T>(rx: &Receiver<T>, mut f: impl FnMut(T)) {
    for _ in 0..rx.len() {
        match rx.try_recv() {
            Ok(item) => f(item),
            Err(_) => return,
        }
    }
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
            busy_by_client: HashMap::new(),
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
    /// What it counts against ([`client_of`]).
    client: IpAddr,
    buf: Vec<u8>,
    /// How much of `buf` was already searched for the head's end.
    scanned: usize,
    generation: u64,
}

/// What a request thread gives back, with the client its connection counted against.
enum Back {
    Closed(IpAddr),
    KeepAlive(Conn, IpAddr),
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
    /// The head could have no request thread.
    Refused(Refusal),
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
    /// Requests refused a thread: their client's share was used up (429).
    refused_client: u64,
    /// Requests refused a thread: every one was in use, or left for new clients (503).
    refused_busy: u64,
    accept_errors: u64,
    last_error: String,
    last: Option<Instant>,
}

impl Tally {
    fn pending(&self) -> bool {
        self.shed_at_cap
            + self.shed_for_resources
            + self.refused
            + self.refused_client
            + self.refused_busy
            + self.accept_errors
            > 0
    }

    fn flush(&mut self, now: Instant, limits: &GateLimits) {
        let max = limits.max_connections;
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
        if self.refused_client > 0 {
            parts.push(format!(
                "answered {} requests 429 (their client had {} being served, \
                 --max-busy-per-client)",
                self.refused_client, limits.max_busy_per_client
            ));
        }
        if self.refused_busy > 0 {
            parts.push(format!(
                "answered {} requests 503 (request threads in use: {} for any client, {} more \
                 for new clients)",
                self.refused_busy,
                limits.shared_threads(),
                limits.threads() - limits.shared_threads()
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
    /// The same, per client ([`client_of`]); clients with none are not kept.
    busy_by_client: HashMap<IpAddr, usize>,
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
            self.log.flush(now, &self.limits);
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
                Ok((stream, peer)) => self.admit(stream, client_of(peer), Vec::new(), false, now),
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
    fn admit(
        &mut self,
        mut stream: TcpStream,
        client: IpAddr,
        buf: Vec<u8>,
        returning: bool,
        now: Instant,
    ) {
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
            client,
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
        self.serve_heads(key);
    }

    /// Serves the complete heads at the start of a waiting connection's buffer: `GET /health`
    /// here (at most [`GATE_ANSWERS`] of them), anything else on a request thread, which then
    /// serves the requests pipelined behind it.
    fn serve_heads(&mut self, key: usize) {
        for answered in 0..=GATE_ANSWERS {
            let Some(w) = self.waiting.get_mut(key) else {
                return;
            };
            match http::parse_head(&w.buf) {
                Ok(None) => return,
                Err(e) => return self.close(key, Close::Bad(e)),
                Ok(Some((req, len))) if answered < GATE_ANSWERS && answers_here(&req) => {
                    w.buf.drain(..len);
                    w.scanned = 0;
                    if !self.answer_health(key, req.keep_alive) {
                        return;
                    }
                }
                Ok(Some((req, len))) => return self.hand_over(key, req, len),
            }
        }
    }

    /// Answers `GET /health` on a waiting connection without blocking; true if it stays, waiting
    /// for its next head from now. A client whose socket cannot take the small answer at once is
    /// not reading its answers: it is closed.
    fn answer_health(&mut self, key: usize, keep_alive: bool) -> bool {
        let Some(w) = self.waiting.get_mut(key) else {
            return false;
        };
        let bytes = http::response(200, &[], HEALTH, keep_alive, false);
        let whole = loop {
            match w.stream.write(&bytes) {
                Ok(n) => break n == bytes.len(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break false,
            }
        };
        if !whole || !keep_alive {
            self.close(key, Close::Gone);
            return false;
        }
        self.next_gen += 1;
        w.generation = self.next_gen;
        self.order.push_back((
            Instant::now() + self.limits.head_timeout,
            key,
            self.next_gen,
        ));
        true
    }

    fn hand_over(&mut self, key: usize, req: Request, head_len: usize) {
        let Some(client) = self.waiting.get(key).map(|w| w.client) else {
            return;
        };
        let of_client = self.busy_by_client.get(&client).copied().unwrap_or(0);
        if let Err(why) = self.limits.may_serve(self.busy, of_client) {
            match why {
                Refusal::Client => self.log.refused_client += 1,
                _ => self.log.refused_busy += 1,
            }
            return self.close(key, Close::Refused(why));
        }
        let mut w = self.waiting.remove(key);
        let _ = self.poll.registry().deregister(&mut w.stream);
        let stream: std::net::TcpStream = w.stream.into();
        if stream.set_nonblocking(false).is_err() {
            return;
        }
        let rest = w.buf.split_off(head_len);
        let mut conn = Conn::new(stream, rest, self.limits.io_timeout);
        let (handler, tx, waker) = (
            Arc::clone(&self.handler),
            self.back_tx.clone(),
            Arc::clone(&self.waker),
        );
        let spawned = thread::Builder::new()
            .name("api-req".into())
            .spawn(move || {
                let mut req = req;
                let back = loop {
                    // A panic past the routes' own guard must still give the slot back.
                    let keep =
                        catch_unwind(AssertUnwindSafe(|| handler(req, &mut conn))).unwrap_or(false);
                    if !keep {
                        break Back::Closed(client);
                    }
                    // Requests pipelined behind it, in order, while their heads are here.
                    match conn.next_request() {
                        Ok(Some(next)) => req = next,
                        Ok(None) => break Back::KeepAlive(conn, client),
                        Err(_) => break Back::Closed(client),
                    }
                };
                let _ = tx.send(back);
                let _ = waker.wake();
            });
        match spawned {
            Ok(_) => {
                self.busy += 1;
                *self.busy_by_client.entry(client).or_insert(0) += 1;
            }
            // The connection was dropped with the closure, so it is closed unanswered: without
            // a thread there is nothing to answer it with but this one's time.
            Err(e) => eprintln!("pacer api: cannot start a request thread: {e}"),
        }
    }

    /// Takes back the connections whose threads had ended when the turn began.
    fn take_back(&mut self) {
        let back_rx = self.back_rx.clone();
        for_each_queued(&back_rx, |back| {
            // Its place moves from `busy` to `waiting`: the count under the cap stays the same.
            self.busy = self.busy.saturating_sub(1);
            let client = match &back {
                Back::Closed(c) | Back::KeepAlive(_, c) => *c,
            };
            if let Some(n) = self.busy_by_client.get_mut(&client) {
                *n -= 1;
                if *n == 0 {
                    self.busy_by_client.remove(&client);
                }
            }
            if let Back::KeepAlive(conn, client) = back {
                let (stream, rest) = conn.into_parts();
                if stream.set_nonblocking(true).is_ok() {
                    let stream = TcpStream::from_std(stream);
                    self.admit(stream, client, rest, true, Instant::now());
                }
            }
        });
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
            Close::Refused(why) => Some(self.limits.refusal(why)),
            _ => None,
        };
        if let Some(bytes) = answer {
            let _ = w.stream.write(&bytes);
        }
        let _ = self.poll.registry().deregister(&mut w.stream);
    }
}

/// Whether the gate answers this request itself: `GET /health` without a body, open to all
/// (the `--api-key` check spares it).
fn answers_here(req: &Request) -> bool {
    req.method == "GET" && req.path() == "/health" && !req.has_body()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_connections: usize, per_client: usize, kept: usize) -> GateLimits {
        GateLimits {
            max_connections,
            head_timeout: Duration::from_secs(10),
            io_timeout: Duration::from_secs(5),
            max_busy_per_client: per_client,
            new_client_slots: kept,
        }
    }

    #[test]
    fn threads_keep_a_place_for_heads_and_some_for_new_clients() {
        let l = limits(40, 64, 16);
        assert_eq!((l.threads(), l.shared_threads()), (39, 23));
        // A client may take the shared threads...
        assert_eq!(l.may_serve(0, 0), Ok(()));
        assert_eq!(l.may_serve(22, 22), Ok(()));
        // ... not the ones kept for new clients,
        assert_eq!(l.may_serve(23, 23), Err(Refusal::KeptForNewClients));
        assert_eq!(l.may_serve(30, 1), Err(Refusal::KeptForNewClients));
        // which a client with none being served gets, up to the last but one place.
        assert_eq!(l.may_serve(23, 0), Ok(()));
        assert_eq!(l.may_serve(38, 0), Ok(()));
        assert_eq!(l.may_serve(39, 0), Err(Refusal::Full));
        // Per client, whatever is free.
        let l = limits(1024, 4, 16);
        assert_eq!(l.may_serve(3, 3), Ok(()));
        assert_eq!(l.may_serve(4, 4), Err(Refusal::Client));
        assert_eq!(l.may_serve(1000, 0), Ok(()));
        assert_eq!(l.may_serve(1007, 3), Err(Refusal::KeptForNewClients));
        assert_eq!(l.may_serve(1023, 0), Err(Refusal::Full));
    }

    #[test]
    fn small_caps_keep_at_most_half_and_at_least_one_thread() {
        // The cap of one: one thread, no place kept (the gate then answers 503 at the cap).
        let l = limits(1, 64, 16);
        assert_eq!((l.threads(), l.shared_threads()), (1, 1));
        assert_eq!(l.may_serve(0, 0), Ok(()));
        assert_eq!(l.may_serve(1, 0), Err(Refusal::Full));
        let l = limits(5, 64, 16);
        assert_eq!((l.threads(), l.shared_threads()), (4, 2));
        assert_eq!(l.may_serve(1, 1), Ok(()));
        assert_eq!(l.may_serve(2, 2), Err(Refusal::KeptForNewClients));
        assert_eq!(l.may_serve(3, 0), Ok(()));
        // None kept.
        let l = limits(5, 64, 0);
        assert_eq!(l.shared_threads(), 4);
        assert_eq!(l.may_serve(3, 3), Ok(()));
    }

    #[test]
    fn refusals_name_their_status_and_limit() {
        let l = limits(40, 7, 16);
        let text = |why| String::from_utf8(l.refusal(why)).unwrap();
        let t = text(Refusal::Client);
        assert!(t.starts_with("HTTP/1.1 429 "), "{t}");
        assert!(t.contains("(at most 7, --max-busy-per-client)"), "{t}");
        assert!(t.contains("\r\nConnection: close\r\n"), "{t}");
        for why in [Refusal::KeptForNewClients, Refusal::Full] {
            let t = text(why);
            assert!(t.starts_with("HTTP/1.1 503 "), "{t}");
            assert!(t.contains("\r\nConnection: close\r\n"), "{t}");
        }
    }

    #[test]
    fn clients_are_addresses_and_ipv6_slash_64s() {
        let at = |s: &str| client_of(s.parse().unwrap());
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(at("10.1.2.3:5000"), ip("10.1.2.3"));
        assert_eq!(at("10.1.2.3:5001"), at("10.1.2.3:5000"));
        assert_ne!(at("10.1.2.4:5000"), at("10.1.2.3:5000"));
        assert_eq!(at("[::ffff:10.1.2.3]:80"), ip("10.1.2.3"));
        assert_eq!(at("[2001:db8:0:7:1:2:3:4]:80"), ip("2001:db8:0:7::"));
        assert_eq!(at("[2001:db8:0:7::9]:81"), at("[2001:db8:0:7:1:2:3:4]:80"));
        assert_ne!(at("[2001:db8:0:8::9]:81"), at("[2001:db8:0:7::9]:81"));
        assert_eq!(at("[::1]:80"), ip("::"));
    }

    #[test]
    fn a_turn_takes_back_only_what_had_come_back_when_it_began() {
        let (tx, rx) = crossbeam_channel::unbounded();
        for i in 0..3 {
            tx.send(i).unwrap();
        }
        // Each item handled sends another, as a connection handed out again and answered at
        // once comes back: the turn still ends after the three that were there.
        let mut seen = Vec::new();
        for_each_queued(&rx, |i| {
            seen.push(i);
            tx.send(i + 10).unwrap();
        });
        assert_eq!(seen, [0, 1, 2]);
        let mut next = Vec::new();
        for_each_queued(&rx, |i| next.push(i));
        assert_eq!(next, [10, 11, 12]);
        for_each_queued(&rx, |_| unreachable!("nothing is queued"));
    }
}
