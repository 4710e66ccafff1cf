//! The whole engine on loopback: requests per second one engine thread completes in closed loop
//! (`--qps max`, 8 connections) against a minimal keep-alive HTTP server that lives in this file
//! (one mio thread answering every request head with a fixed 13-byte 200), so the server is as
//! cheap as possible and the engine's own cost shows.
//!
//! Each criterion iteration is one request: `iter_custom` runs saturation plans until the asked
//! number of requests has completed and returns their time scaled to exactly that many, so the
//! throughput line reads as requests/s. A single 1-second run is printed first as a plain figure.
//!
//! The `exchange` group times the socket-free part of one request on its own: a response fed to a
//! fresh `Exchange` from a connection's scratch memory and turned into its `Completed` record, for
//! the 13-byte answer above and for the real streamed completion in `tests/fixtures` (22 SSE
//! events over chunked framing, every token timed).

use std::hint::black_box;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use pacer::engine;
use pacer::engine::dispatch::Ticket;
use pacer::engine::exchange::{Exchange, Scratch, Sink, Step};
use pacer::engine::outcome::Failure;
use pacer::plan::{BodyMode, Input, Limits, Plan, Rate};

const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello, world!";
const LISTENER: Token = Token(usize::MAX);
const WAKER: Token = Token(usize::MAX - 1);

/// One keep-alive connection of the minimal server.
struct ServerConn {
    stream: TcpStream,
    /// The last 3 bytes read, so a `\r\n\r\n` split across reads is still seen.
    tail: [u8; 3],
    out: Vec<u8>,
    /// Bytes of `out` already written.
    sent: usize,
}

/// A one-thread mio HTTP/1.1 server on 127.0.0.1:0 that answers `RESPONSE` to every request head
/// (GETs without bodies, which is all the bench sends). Stops on drop.
struct MiniServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    thread: Option<JoinHandle<()>>,
}

impl MiniServer {
    fn start() -> io::Result<MiniServer> {
        let mut listener = TcpListener::bind("127.0.0.1:0".parse().expect("a literal address"))?;
        let addr = listener.local_addr()?;
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("mini-server".into())
                .spawn(move || serve(poll, listener, &stop))?
        };
        Ok(MiniServer {
            addr,
            stop,
            waker,
            thread: Some(thread),
        })
    }

    fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

impl Drop for MiniServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(mut poll: Poll, listener: TcpListener, stop: &AtomicBool) {
    let mut events = Events::with_capacity(256);
    let mut conns: Vec<Option<ServerConn>> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while !stop.load(Ordering::SeqCst) {
        // Bounded wait so a lost wake-up still ends the loop.
        if poll
            .poll(&mut events, Some(Duration::from_millis(100)))
            .is_err()
        {
            continue;
        }
        for ev in events.iter() {
            match ev.token() {
                WAKER => {}
                LISTENER => {
                    while let Ok((mut stream, _)) = listener.accept() {
                        let _ = stream.set_nodelay(true);
                        let slot = conns.iter().position(Option::is_none).unwrap_or_else(|| {
                            conns.push(None);
                            conns.len() - 1
                        });
                        let interest = Interest::READABLE | Interest::WRITABLE;
                        if poll
                            .registry()
                            .register(&mut stream, Token(slot), interest)
                            .is_ok()
                        {
                            conns[slot] = Some(ServerConn {
                                stream,
                                tail: [0; 3],
                                out: Vec::with_capacity(4096),
                                sent: 0,
                            });
                        }
                    }
                }
                Token(i) => {
                    let Some(Some(c)) = conns.get_mut(i) else {
                        continue;
                    };
                    if !drive(c, &mut buf) {
                        let _ = poll.registry().deregister(&mut c.stream);
                        conns[i] = None;
                    }
                }
            }
        }
    }
}

/// Reads every request head available, queues one response each, writes what the socket takes.
/// False when the connection is over.
fn drive(c: &mut ServerConn, buf: &mut [u8]) -> bool {
    loop {
        match c.stream.read(buf) {
            Ok(0) => return false,
            Ok(n) => {
                // Heads inside this read, plus one that straddles the previous read's end.
                let mut edge = [0u8; 6];
                let k = n.min(3);
                edge[..3].copy_from_slice(&c.tail);
                edge[3..3 + k].copy_from_slice(&buf[..k]);
                let heads = buf[..n].windows(4).filter(|w| *w == b"\r\n\r\n").count()
                    + edge[..3 + k]
                        .windows(4)
                        .filter(|w| *w == b"\r\n\r\n")
                        .count();
                // Keep the last 3 bytes of everything seen so far.
                let mut seen = [0u8; 6];
                seen[..3].copy_from_slice(&c.tail);
                seen[3..3 + k].copy_from_slice(&buf[n - k..n]);
                c.tail.copy_from_slice(&seen[k..k + 3]);
                for _ in 0..heads {
                    c.out.extend_from_slice(RESPONSE);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
    while c.sent < c.out.len() {
        match c.stream.write(&c.out[c.sent..]) {
            Ok(n) => c.sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
    c.out.clear();
    c.sent = 0;
    true
}

fn saturation_plan(url: &str, secs: f64) -> Plan {
    let mut input = Input::new(url, Rate::Max, secs);
    input.threads = Some(1);
    input.num_workers = Some(8);
    Plan::new(&input, &Limits::default()).expect("a valid saturation plan") // fixed valid inputs
}

/// One run; returns (completed requests, run length, errors).
fn run(url: &str, secs: f64) -> (u64, Duration, u64) {
    let stats = engine::run(&saturation_plan(url, secs), None).expect("the engine starts");
    (stats.total_requests, stats.elapsed, stats.error_count())
}

fn loopback(c: &mut Criterion) {
    let server = MiniServer::start().expect("bind 127.0.0.1:0");
    let url = server.url();

    let (n, elapsed, errors) = run(&url, 1.0);
    println!(
        "engine/loopback: 1 thread, 8 connections, 1 s: {n} requests, {:.0} requests/s, {errors} errors",
        n as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(errors, 0, "the minimal server never fails a request");

    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(1));
    g.bench_function("loopback_saturation_1_thread_8_conns", |b| {
        b.iter_custom(|iters| {
            let rate_guess = 50_000.0;
            let (mut done, mut spent) = (0u64, Duration::ZERO);
            while done < iters {
                let secs = ((iters - done) as f64 / rate_guess).clamp(0.1, 1.0);
                let (n, elapsed, _) = run(&url, secs);
                done += n;
                spent += elapsed;
            }
            spent.mul_f64(iters as f64 / done.max(1) as f64)
        })
    });
    g.finish();
}

const SSE_FIXTURE: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/completions_stream_chunked.http"
));

/// Names server messages as a lane's statistics would, without growing anything.
#[derive(Default)]
struct Tally;

impl Sink for Tally {
    fn server_error(&mut self, _message: String) -> Failure {
        Failure::Stream("bench")
    }
}

/// One response through a fresh exchange, as a lane does it: the bytes already sit in the
/// scratch buffer (a socket read put them there), the exchange is fed them and makes the record.
fn exchange(c: &mut Criterion) {
    let mut g = c.benchmark_group("exchange");
    let t0 = Instant::now();
    let ticket = Ticket {
        index: 0,
        serial: 1,
        intended: t0,
        dispatch: t0,
        retried: false,
    };
    for (name, wire, mode) in [
        ("plain_13_byte_response", RESPONSE, BodyMode::Plain),
        ("sse_fixture_22_events", SSE_FIXTURE, BodyMode::Sse),
    ] {
        g.throughput(Throughput::Bytes(wire.len() as u64));
        g.bench_function(name, |b| {
            let mut mem = Scratch::new();
            // A connection that has seen a big body reads 16 KiB at a time.
            mem.grow_for_body();
            let mut tally = Tally;
            b.iter(|| {
                let space = mem.space().expect("room for a response");
                space[..wire.len()].copy_from_slice(wire);
                let mut ex = Exchange::new(ticket, 1, mode, false);
                let step = ex.feed(&mut mem, wire.len(), t0, &mut tally);
                assert!(matches!(step, Step::Complete { .. }), "{step:?}");
                let (record, gaps) = ex.completed(0, &mem);
                black_box((record, gaps.len()))
            })
        });
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .without_plots()
        // Warm-up calls run at least 0.1 s each however few requests they ask for: keep it short.
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(3))
        .sample_size(10)
}

criterion_group! {
    name = benches;
    config = config();
    targets = loopback, exchange
}
criterion_main!(benches);
