//! `pacer serve` under the client patterns that used to stop it (issue 19, items 3 and 4), in a
//! bounded form: the real binary on a loopback port, a flood from this process, and a fresh
//! connection's `GET /health` that must be answered 200 within 3 s during the flood and after it.
//! The full-size floods are `benches/api_flood.sh`.
//!
//! - Pipelining: connections that write request after request without waiting for answers. They
//!   used to keep the gate's loop busy taking back and handing out their connections, so it never
//!   accepted again (with `--api-key`, their 401s kept the connections open for more).
//! - Stalled bodies and unread answers: connections that send a complete head and never the
//!   body, or never read what they asked for, used to hold every request thread until the head
//!   timeout: the cap was full of them and a new connection got 503.
//!
//! The server runs under the address-space limit of `util::serve` (`PACER_SAFETY_BIN` floods
//! another build, to see these fail on one from before the fix). The floods run one at a time
//! (they share two cores with everything else).

mod util;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use util::serve::Served;

/// The bound on a `GET /health` answer, during a flood and after.
const ANSWER_WITHIN: Duration = Duration::from_secs(3);

static SERIAL: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// One request on a fresh connection from `from` (a loopback address of the client's own):
/// the answer's status (0 for none) and how long it took, waiting at most 10 s.
fn ask_from(from: Option<[u8; 4]>, addr: SocketAddr, path: &str) -> (u16, Duration) {
    let t = Instant::now();
    let Some(mut s) = connect_from(from, addr) else {
        return (0, t.elapsed());
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let _ = s.write_all(req.as_bytes());
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    (status_of(&buf), t.elapsed())
}

fn health(addr: SocketAddr) -> (u16, Duration) {
    ask_from(None, addr, "/health")
}

fn status_of(buf: &[u8]) -> u16 {
    let text = String::from_utf8_lossy(buf);
    text.strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// A connection from the loopback address `from` (127.0.0.1 when None): the server counts
/// busy connections per client address, so a second address is a second client.
fn connect_from(from: Option<[u8; 4]>, to: SocketAddr) -> Option<TcpStream> {
    let Some(ip) = from else {
        return TcpStream::connect_timeout(&to, Duration::from_secs(5)).ok();
    };
    use rustix::net::{AddressFamily, SocketType, bind, connect, socket};
    let fd = socket(AddressFamily::INET, SocketType::STREAM, None).ok()?;
    bind(&fd, &SocketAddr::from((ip, 0))).ok()?;
    connect(&fd, &to).ok()?;
    Some(TcpStream::from(fd))
}

/// What every flood connection does.
#[derive(Clone, Copy)]
enum Attack {
    /// Writes `request` over and over, without waiting for answers, and reads what comes back.
    Pipeline(&'static [u8]),
    /// Sends a head announcing a 1,000-byte body, never the body; reads what comes back.
    StalledBody,
    /// Asks for `/openapi.json` 64 times in one write and never reads an answer.
    Unread,
}

/// `n` connections doing `attack`; one the server closes is opened again at once.
struct Flood {
    stop: Arc<AtomicBool>,
    /// Connections the server has closed so far.
    closed: Arc<AtomicUsize>,
    /// Bytes of answers read so far.
    read: Arc<AtomicUsize>,
    thread: JoinHandle<()>,
}

impl Flood {
    fn start(addr: SocketAddr, n: usize, attack: Attack) -> Flood {
        let stop = Arc::new(AtomicBool::new(false));
        let closed = Arc::new(AtomicUsize::new(0));
        let read = Arc::new(AtomicUsize::new(0));
        let (st, cl, rd) = (stop.clone(), closed.clone(), read.clone());
        let (up_tx, up_rx) = std::sync::mpsc::channel();
        let thread = thread::spawn(move || {
            let stream: Vec<u8> = match attack {
                Attack::Pipeline(req) => req.repeat(8192 / req.len() + 1),
                Attack::StalledBody => {
                    b"POST /benchmark HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n".to_vec()
                }
                Attack::Unread => b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n".repeat(64),
            };
            let open = || {
                let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
                if !matches!(attack, Attack::Pipeline(_)) {
                    s.write_all(&stream).ok()?;
                }
                s.set_nonblocking(true).ok()?;
                Some((s, 0usize))
            };
            let mut conns: Vec<Option<(TcpStream, usize)>> = (0..n).map(|_| open()).collect();
            let _ = up_tx.send(());
            let mut buf = [0u8; 16 * 1024];
            while !st.load(Ordering::SeqCst) {
                for c in conns.iter_mut() {
                    let alive = match c {
                        None => false,
                        Some((s, sent)) => match attack {
                            Attack::Pipeline(req) => {
                                // Keep the stream of requests whole across partial writes.
                                let at = *sent % req.len();
                                let wrote = match s.write(&stream[at..]) {
                                    Ok(k) => {
                                        *sent += k;
                                        true
                                    }
                                    Err(e) => e.kind() == ErrorKind::WouldBlock,
                                };
                                wrote && drain(s, &mut buf, &rd)
                            }
                            Attack::StalledBody => drain(s, &mut buf, &rd),
                            // Never reads: the server's close shows as a failed write.
                            Attack::Unread => match s.write(b"\r\n") {
                                Ok(_) => true,
                                Err(e) => e.kind() == ErrorKind::WouldBlock,
                            },
                        },
                    };
                    if !alive {
                        if c.is_some() {
                            cl.fetch_add(1, Ordering::Relaxed);
                        }
                        *c = open();
                    }
                }
                thread::sleep(Duration::from_millis(2));
            }
        });
        up_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the flood opened its connections");
        Flood {
            stop,
            closed,
            read,
            thread,
        }
    }

    /// Stops it and closes its connections; (connections the server closed, bytes read).
    fn stop(self) -> (usize, usize) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.thread.join();
        (
            self.closed.load(Ordering::Relaxed),
            self.read.load(Ordering::Relaxed),
        )
    }
}

/// Reads what a flood connection was sent; false once the server has closed it.
fn drain(s: &mut TcpStream, buf: &mut [u8], read: &AtomicUsize) -> bool {
    // Bounded: a few buffers per sweep, so one busy connection cannot hold the flood up.
    for _ in 0..4 {
        match s.read(buf) {
            Ok(0) => return false,
            Ok(k) => {
                read.fetch_add(k, Ordering::Relaxed);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

/// `GET /health` on fresh connections during the floods (after they have had a second to
/// settle), four times half a second apart, then once after them: each answer is 200 within
/// [`ANSWER_WITHIN`]. `also` runs once during the floods. Returns what each flood counted.
fn health_holds(
    server: &mut Served,
    floods: Vec<Flood>,
    what: &str,
    also: impl FnOnce(),
) -> Vec<(usize, usize)> {
    thread::sleep(Duration::from_secs(1));
    let during: Vec<(u16, Duration)> = (0..4)
        .map(|_| {
            let answer = health(server.addr);
            thread::sleep(Duration::from_millis(500));
            answer
        })
        .collect();
    also();
    let counted = floods.into_iter().map(Flood::stop).collect();
    let after = health(server.addr);
    let ok = |(status, took): &(u16, Duration)| *status == 200 && *took <= ANSWER_WITHIN;
    assert!(
        during.iter().all(ok),
        "{what}: GET /health during the flood: {during:?}"
    );
    assert!(ok(&after), "{what}: GET /health after the flood: {after:?}");
    assert!(server.alive(), "{what}: the server exited");
    counted
}

const PLAIN_GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

#[test]
fn pipelined_401s_do_not_starve_health() {
    let _one = one_at_a_time();
    let mut s = Served::start(&["--api-key", "k3y"]);
    let flood = Flood::start(s.addr, 150, Attack::Pipeline(PLAIN_GET));
    let counted = health_holds(&mut s, vec![flood], "150 pipelining 401s", || {});
    let (closed, read) = counted[0];
    assert!(read > 0, "the flood got no answer at all");
    // Each 401 closes its connection, so the flood had to open them again.
    assert!(closed >= 150, "the server closed only {closed} connections");
    served_again(s.addr, 401);
}

#[test]
fn pipelined_requests_do_not_starve_health() {
    let _one = one_at_a_time();
    let mut s = Served::start(&[]);
    let flood = Flood::start(s.addr, 150, Attack::Pipeline(PLAIN_GET));
    let counted = health_holds(&mut s, vec![flood], "150 pipelining GET /", || {});
    let read = counted[0].1;
    // Most of it is 200s: hundreds of answers at the least.
    assert!(read > 100 * 100, "the flood read only {read} bytes");
    served_again(s.addr, 200);
}

#[test]
fn a_401_closes_the_connection_and_pipelined_requests_answer_in_order() {
    let _one = one_at_a_time();
    let s = Served::start(&["--api-key", "k3y"]);
    let mut c = TcpStream::connect(s.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // Three requests in one write: the first has the key, the second not, the third is never
    // read, since the 401 closes the connection.
    c.write_all(
        b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n\
          GET / HTTP/1.1\r\nHost: x\r\nX-API-Key: k3y\r\n\r\n\
          GET / HTTP/1.1\r\nHost: x\r\n\r\n\
          GET / HTTP/1.1\r\nHost: x\r\nX-API-Key: k3y\r\n\r\n",
    )
    .unwrap();
    let mut all = Vec::new();
    let _ = c.read_to_end(&mut all);
    let text = String::from_utf8_lossy(&all);
    let statuses: Vec<&str> = text
        .match_indices("HTTP/1.1 ")
        .map(|(i, _)| &text[i + 9..i + 12])
        .collect();
    assert_eq!(statuses, ["200", "200", "401"], "{text}");
    assert!(text.contains("{\"status\":\"ok\"}"), "{text}");
    let last = text.rsplit("HTTP/1.1 ").next().unwrap();
    assert!(last.contains("\r\nConnection: close\r\n"), "{last}");
    assert!(last.contains("\r\nWWW-Authenticate: Bearer\r\n"), "{last}");
}

#[test]
fn stalled_bodies_and_unread_answers_do_not_take_every_worker() {
    let _one = one_at_a_time();
    // A small cap, so that 60 connections are more than it holds.
    let mut s = Served::start(&["--max-connections", "40"]);
    let floods = vec![
        Flood::start(s.addr, 30, Attack::StalledBody),
        Flood::start(s.addr, 30, Attack::Unread),
    ];
    let mut other = (0, Duration::ZERO);
    let addr = s.addr;
    let counted = health_holds(
        &mut s,
        floods,
        "30 stalled bodies, 30 unread answers",
        || {
            // Another client (another loopback address) is served while this one's are stalled.
            other = ask_from(Some([127, 0, 0, 2]), addr, "/");
        },
    );
    assert_eq!(
        other.0, 200,
        "GET / from 127.0.0.2 during the flood: {other:?}"
    );
    // The stalled ones past what one client may hold were refused at once, not held.
    assert!(counted[0].0 > 0, "no stalled connection was let go");
    served_again(s.addr, 200);
}

/// Once the flood's connections are gone (their threads see the close, or their timeout, a
/// moment later), `GET /` from this client answers `want` again.
fn served_again(addr: SocketAddr, want: u16) {
    let t = Instant::now();
    loop {
        let (status, _) = ask_from(None, addr, "/");
        if status == want {
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "GET / after the flood: {status}"
        );
        thread::sleep(Duration::from_millis(200));
    }
}
