//! One connection: its socket, its transport underneath (plain TCP, or rustls as a pipe over the
//! socket), where it stands ([`State`]) and the memory its exchanges read into ([`Scratch`]).
//!
//! ```text
//!  Connecting(ex) ──connected──> Handshaking(ex) ──TLS done──> Busy(ex) ──complete──> Idle
//!        └─────────── plain ───────────────────────────────────┘  ^                   │
//!                                                                  └───── carry(ex) ───┘
//! ```
//!
//! A connection is opened for a request, so it carries that request's exchange from the start:
//! the request is written as soon as the socket takes it (over TLS, rustls keeps it until the
//! handshake is done). I/O methods drain until `WouldBlock` (reads capped per event) and return
//! small `Copy` results; what a failure means for the request, and whether the connection is
//! reused, is the lane's to decide.
//!
//! With kernel receive timestamps on (`SO_TIMESTAMPING`, see [`super::clock`]) every read is a
//! `recvmsg` that also returns the stamp of the last segment it consumed, and [`ReadResult::Data`]
//! carries it. Over TLS, rustls reads the socket through `StampedSocket`, which remembers the
//! stamp of the socket read that brought the bytes; plaintext handed out later from records
//! rustls already holds keeps the stamp of the read that carried them.

use std::io::{self, IoSlice, Read, Write};
use std::time::Instant;

use mio::net::TcpStream;
use rustls::{ClientConnection, HandshakeKind};

use super::dispatch::Ticket;
use super::exchange::{Close, Exchange, Scratch, Sink, Step};
use super::outcome::{ChunkGap, Completed, Failure};
use super::sys::{self, Io, RealtimeNs};
use super::tls;
use crate::http1::Segments;

/// Segments handed to one vectored write; a request of more is written over several turns.
const SEGMENTS_PER_WRITE: usize = 32;

/// A single drain loop never reads more than this many times before yielding to other connections.
pub const MAX_READS_PER_EVENT: usize = 16;

/// Where a connection stands. See the module docs.
#[derive(Debug)]
pub enum State {
    /// Non-blocking connect in progress.
    Connecting(Exchange),
    /// TLS handshake in progress; the request waits inside rustls.
    Handshaking(Exchange),
    /// Open, with nothing in flight: may carry the next request.
    Idle,
    /// Open, carrying a request.
    Busy(Exchange),
}

/// How bytes cross the socket.
pub enum Transport {
    Plain,
    Tls(Box<ClientConnection>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteResult {
    Done,
    WouldBlock,
    Failed(Failure),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadResult {
    /// `n` new bytes in the scratch buffer's space; `full`: they filled it; `stamp`: when the
    /// kernel received the last segment of them (None without kernel timestamps).
    Data {
        n: usize,
        full: bool,
        stamp: Option<RealtimeNs>,
    },
    WouldBlock,
    /// The peer closed the connection: cleanly (TCP FIN, TLS close_notify) or not (TLS without
    /// close_notify).
    Closed(Close),
    Failed(Failure),
}

pub struct Conn {
    /// A serial per thread (from 1): tells a reused slab slot from the connection that held it.
    pub id: u64,
    sock: TcpStream,
    transport: Transport,
    state: State,
    /// Which resolved address it uses, and how many it has tried (refusals move to the next).
    pub addr_index: usize,
    pub addr_attempts: usize,
    /// Responses completed on this connection: a reused connection the server closed gets one retry.
    pub served: u64,
    /// Read buffer and parser memory, lent to each exchange.
    scratch: Scratch,
    /// Reads ask the kernel for their receive stamp (`SO_TIMESTAMPING` is on for the socket).
    stamps: bool,
    /// Over TLS: the stamp of the latest socket read that brought bytes.
    last_stamp: Option<RealtimeNs>,
    /// The last write left bytes (or TLS records) unsent.
    write_blocked: bool,
    /// The lane counts this connection among those it must wake for (see [`Conn::needs_watch`]).
    pub watched: bool,
}

impl Conn {
    /// A connection being opened on `sock` for the request of `ex`.
    pub fn new(
        id: u64,
        sock: TcpStream,
        addr_index: usize,
        transport: Transport,
        ex: Exchange,
    ) -> Conn {
        Conn {
            id,
            sock,
            transport,
            state: State::Connecting(ex),
            addr_index,
            addr_attempts: 1,
            served: 0,
            scratch: Scratch::new(),
            stamps: false,
            last_stamp: None,
            write_blocked: false,
            watched: false,
        }
    }

    /// Reads ask for kernel receive stamps (the lane turned `SO_TIMESTAMPING` on for the socket).
    pub fn set_stamps(&mut self, on: bool) {
        self.stamps = on;
    }

    /// Whether the lane must react to this connection's readiness rather than read it at its
    /// next send: a connect or TLS handshake under way, bytes waiting to go out, or a response
    /// partly read (its rest arrives soon, and a big body would fill the socket's receive buffer
    /// and stall the server if left unread). A connection waiting for the first byte of its
    /// response, or idle, can wait: its reads carry their arrival time.
    #[inline]
    pub fn needs_watch(&self) -> bool {
        match &self.state {
            State::Connecting(_) | State::Handshaking(_) => true,
            State::Busy(ex) => self.write_blocked || ex.got_bytes() || self.transport.wants_write(),
            State::Idle => self.write_blocked || self.transport.wants_write(),
        }
    }

    /// The socket, for (de)registration with the poller.
    pub fn socket(&mut self) -> &mut TcpStream {
        &mut self.sock
    }

    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Idle)
    }

    /// Open and carrying a request (connected, handshake done).
    pub fn is_busy(&self) -> bool {
        matches!(self.state, State::Busy(_))
    }

    pub fn is_connecting(&self) -> bool {
        matches!(self.state, State::Connecting(_))
    }

    /// The exchange in flight, in whatever state the connection is.
    #[inline]
    pub fn exchange(&self) -> Option<&Exchange> {
        match &self.state {
            State::Connecting(ex) | State::Handshaking(ex) | State::Busy(ex) => Some(ex),
            State::Idle => None,
        }
    }

    /// The record of the response the exchange in flight completed (see
    /// [`Exchange::completed`]); None when there is none. Its gaps are [`Conn::gaps`]: apart, so
    /// that the record is built where the caller keeps it, not moved out of a pair.
    #[inline(always)]
    pub fn completed(&self, thread: u32) -> Option<Completed> {
        self.exchange()
            .map(|ex| ex.completed(thread, &self.scratch).0)
    }

    /// The gaps before the content chunks of the response last completed on this connection.
    #[inline(always)]
    pub fn gaps(&self) -> &[ChunkGap] {
        self.scratch.gaps()
    }

    /// The answer text of the last response, when its exchange kept it ([`Scratch::text`]).
    pub fn answer_text(&self) -> &str {
        self.scratch.text()
    }

    #[inline]
    fn exchange_mut(&mut self) -> Option<&mut Exchange> {
        match &mut self.state {
            State::Connecting(ex) | State::Handshaking(ex) | State::Busy(ex) => Some(ex),
            State::Idle => None,
        }
    }

    /// An idle connection takes the next request.
    #[inline(always)]
    pub fn carry(&mut self, ex: Exchange) {
        debug_assert!(self.is_idle(), "a connection carries one request at a time");
        self.state = State::Busy(ex);
    }

    /// Ends the exchange in flight where it lies (read what it measured first), leaving the
    /// connection idle, and gives back its ticket: the one way a ticket goes back to dispatch.
    /// Only a completed exchange leaves a connection fit for reuse; after a failure the lane
    /// closes it.
    #[inline]
    pub fn release(&mut self) -> Option<Ticket> {
        let t = *self.exchange()?.ticket();
        self.state = State::Idle;
        Some(t)
    }

    /// Checks a non-blocking connect: `Ok(true)` connected, `Ok(false)` still in progress.
    pub fn connect_done(&mut self) -> Result<bool, Failure> {
        if let Ok(Some(e)) | Err(e) = self.sock.take_error() {
            return Err(Failure::from_io(&e));
        }
        match self.sock.peer_addr() {
            Ok(_) => {
                // Requests are small and latency is what we measure: never wait for Nagle.
                let _ = self.sock.set_nodelay(true);
                let state = std::mem::replace(&mut self.state, State::Idle);
                self.state = match (state, &self.transport) {
                    (State::Connecting(ex), Transport::Tls(_)) => State::Handshaking(ex),
                    (State::Connecting(ex), Transport::Plain) => State::Busy(ex),
                    (other, _) => other,
                };
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) if e.raw_os_error() == Some(sys::EINPROGRESS) => Ok(false),
            Err(e) => Err(Failure::from_io(&e)),
        }
    }

    /// Writes what is left of the request in flight (`request(index)` gives its bytes), and any
    /// TLS records rustls wants out. Nothing before the connect completes.
    pub fn write<'r>(&mut self, request: impl FnOnce(u64) -> &'r Segments) -> WriteResult {
        let Conn {
            sock,
            transport,
            state,
            ..
        } = self;
        let result = match state {
            State::Connecting(_) => return WriteResult::Done,
            State::Idle => transport.flush(sock),
            State::Handshaking(ex) | State::Busy(ex) => {
                let bytes = request(ex.ticket().index);
                transport.write(sock, bytes, &mut ex.written)
            }
        };
        self.write_blocked = result == WriteResult::WouldBlock;
        self.settle();
        result
    }

    /// Reads once into the scratch buffer's free space (draining TLS records as needed).
    #[inline]
    pub fn read(&mut self) -> ReadResult {
        // Only a response head accumulates in the buffer; the parser caps it before this.
        let Some(dst) = self.scratch.space() else {
            return ReadResult::Failed(Failure::Invalid("headers too large"));
        };
        let result = self
            .transport
            .read(&mut self.sock, dst, self.stamps, &mut self.last_stamp);
        if let State::Handshaking(_) = self.state {
            self.settle();
        }
        result
    }

    /// Hands the `n` bytes just read, at `now`, to the exchange in flight. None when there is
    /// none: the bytes were never asked for.
    #[inline]
    pub fn feed(&mut self, n: usize, now: Instant, sink: &mut impl Sink) -> Option<Step> {
        let Conn { state, scratch, .. } = self;
        match state {
            State::Handshaking(ex) | State::Busy(ex) => Some(ex.feed(scratch, n, now, sink)),
            State::Connecting(_) | State::Idle => None,
        }
    }

    /// The peer closed: what that means for the exchange in flight (None when there is none).
    pub fn finish(&mut self, close: Close, sink: &mut impl Sink) -> Option<Result<(), Failure>> {
        let Conn { state, scratch, .. } = self;
        match state {
            State::Connecting(ex) | State::Handshaking(ex) | State::Busy(ex) => {
                Some(ex.finish(close, scratch, sink))
            }
            State::Idle => None,
        }
    }

    /// A read filled the buffer: a big body is coming, so read it in larger pieces.
    pub fn grow_for_body(&mut self) {
        self.scratch.grow_for_body();
    }

    /// Whether the request in flight still has bytes to go out (`len(index)`: its length).
    #[inline]
    pub fn request_pending(&self, len: impl FnOnce(u64) -> usize) -> bool {
        self.exchange()
            .is_some_and(|ex| ex.written < len(ex.ticket().index))
    }

    /// Whether TLS records are waiting to go out (the handshake, or the buffered request).
    #[inline]
    pub fn wants_write(&self) -> bool {
        self.transport.wants_write()
    }

    /// How the TLS handshake went, once it has (None for plain connections).
    pub fn handshake_kind(&self) -> Option<HandshakeKind> {
        match &self.transport {
            Transport::Plain => None,
            Transport::Tls(tls) => tls.handshake_kind(),
        }
    }

    /// A new socket for the same connection slot (the next resolved address after a refusal).
    pub fn replace_socket(&mut self, sock: TcpStream, addr_index: usize, transport: Transport) {
        self.sock = sock;
        self.addr_index = addr_index;
        self.addr_attempts += 1;
        self.transport = transport;
        self.write_blocked = false;
        self.last_stamp = None;
        let state = std::mem::replace(&mut self.state, State::Idle);
        self.state = match state {
            State::Handshaking(ex) | State::Busy(ex) | State::Connecting(ex) => {
                State::Connecting(ex)
            }
            State::Idle => State::Idle,
        };
        // The request starts over on the new socket.
        if let Some(ex) = self.exchange_mut() {
            ex.written = 0;
        }
    }

    /// A finished TLS handshake moves the connection on to carrying its request.
    fn settle(&mut self) {
        if let State::Handshaking(_) = self.state
            && !self.transport.handshaking()
            && let State::Handshaking(ex) = std::mem::replace(&mut self.state, State::Idle)
        {
            self.state = State::Busy(ex);
        }
    }
}

impl Transport {
    #[inline]
    fn handshaking(&self) -> bool {
        match self {
            Transport::Plain => false,
            Transport::Tls(tls) => tls.is_handshaking(),
        }
    }

    #[inline]
    fn wants_write(&self) -> bool {
        match self {
            Transport::Plain => false,
            Transport::Tls(tls) => tls.wants_write(),
        }
    }

    /// Writes what is left of `request` after its first `*written` bytes, advancing `written`.
    #[inline]
    fn write(
        &mut self,
        sock: &mut TcpStream,
        request: &Segments,
        written: &mut usize,
    ) -> WriteResult {
        match request {
            Segments::One(bytes) => self.write_bytes(sock, bytes, written),
            many => self.write_segments(sock, many, written),
        }
    }

    /// Writes `bytes[*written..]`, advancing `written`.
    #[inline]
    fn write_bytes(
        &mut self,
        sock: &mut TcpStream,
        bytes: &[u8],
        written: &mut usize,
    ) -> WriteResult {
        match self {
            Transport::Plain => {
                while *written < bytes.len() {
                    match sys::send(&*sock, &bytes[*written..]) {
                        Io::Done(0) => return WriteResult::Failed(Failure::Reset),
                        Io::Done(n) => *written += n,
                        Io::WouldBlock => return WriteResult::WouldBlock,
                        Io::Failed(e) => return WriteResult::Failed(Failure::from_io(&e)),
                    }
                }
                WriteResult::Done
            }
            Transport::Tls(tls) => write_plaintext(tls, sock, bytes.len(), written, |w, at| {
                w.write(&bytes[at..])
            }),
        }
    }

    /// The segmented form of [`Transport::write_bytes`]: each turn hands the segments left
    /// (up to [`SEGMENTS_PER_WRITE`]) to one `sendmsg`, or to rustls's vectored write.
    fn write_segments(
        &mut self,
        sock: &mut TcpStream,
        request: &Segments,
        written: &mut usize,
    ) -> WriteResult {
        let len = request.len();
        let mut slices = [IoSlice::new(&[]); SEGMENTS_PER_WRITE];
        match self {
            Transport::Plain => {
                while *written < len {
                    let n = request.remaining(*written, &mut slices);
                    match sys::send_vectored(&*sock, &slices[..n]) {
                        Io::Done(0) => return WriteResult::Failed(Failure::Reset),
                        Io::Done(n) => *written += n,
                        Io::WouldBlock => return WriteResult::WouldBlock,
                        Io::Failed(e) => return WriteResult::Failed(Failure::from_io(&e)),
                    }
                }
                WriteResult::Done
            }
            Transport::Tls(tls) => write_plaintext(tls, sock, len, written, |w, at| {
                let n = request.remaining(at, &mut slices);
                w.write_vectored(&slices[..n])
            }),
        }
    }

    fn flush(&mut self, sock: &mut TcpStream) -> WriteResult {
        match self {
            Transport::Plain => WriteResult::Done,
            Transport::Tls(tls) => flush_tls(tls, sock),
        }
    }

    /// Reads once into `dst`; `stamps`: ask the kernel for the receive stamp; `last`: over TLS,
    /// the stamp of the latest socket read that brought bytes (kept between calls, as rustls
    /// keeps their plaintext).
    #[inline]
    fn read(
        &mut self,
        sock: &mut TcpStream,
        dst: &mut [u8],
        stamps: bool,
        last: &mut Option<RealtimeNs>,
    ) -> ReadResult {
        let room = dst.len();
        match self {
            Transport::Plain => {
                let (io, stamp) = if stamps {
                    sys::recv_stamped(&*sock, dst)
                } else {
                    (sys::recv(&*sock, dst), None)
                };
                match io {
                    Io::Done(0) => ReadResult::Closed(Close::Clean),
                    Io::Done(n) => ReadResult::Data {
                        n,
                        full: n == room,
                        stamp,
                    },
                    Io::WouldBlock => ReadResult::WouldBlock,
                    Io::Failed(e) => ReadResult::Failed(Failure::from_io(&e)),
                }
            }
            Transport::Tls(tls) => {
                let data = |n: usize, stamp: Option<RealtimeNs>| ReadResult::Data {
                    n,
                    full: n == room,
                    stamp,
                };
                let mut sock = StampedSocket {
                    sock: &*sock,
                    stamps,
                    last,
                };
                // Bounded: each turn either returns or consumes socket bytes; the socket runs dry.
                for _ in 0..MAX_READS_PER_EVENT {
                    match tls.reader().read(dst) {
                        // close_notify: the peer vouches that nothing was cut.
                        Ok(0) => return ReadResult::Closed(Close::Clean),
                        Ok(n) => return data(n, *sock.last),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        // TCP closed without close_notify: whatever came may have been cut, and
                        // a body delimited by the close cannot be called whole.
                        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                            return ReadResult::Closed(Close::Truncated);
                        }
                        Err(_) => return ReadResult::Failed(Failure::Tls("read failed")),
                    }
                    match tls.read_tls(&mut sock) {
                        Ok(0) => {
                            if let Err(e) = tls.process_new_packets() {
                                return ReadResult::Failed(Failure::Tls(tls::reason(&e)));
                            }
                            // Hand over what is left; the next read reports the end.
                            return match tls.reader().read(dst) {
                                Ok(n) if n > 0 => data(n, *sock.last),
                                _ if tls.is_handshaking() => ReadResult::Failed(Failure::Tls(
                                    "connection closed during handshake",
                                )),
                                Ok(_) => ReadResult::Closed(Close::Clean),
                                // UnexpectedEof: no close_notify came before the TCP close.
                                Err(_) => ReadResult::Closed(Close::Truncated),
                            };
                        }
                        Ok(_) => {
                            if let Err(e) = tls.process_new_packets() {
                                // Tell the server why, best effort.
                                let _ = tls.write_tls(&mut sock.sock);
                                return ReadResult::Failed(Failure::Tls(tls::reason(&e)));
                            }
                            if tls.wants_write()
                                && let WriteResult::Failed(f) = flush_tls(tls, sock.sock)
                            {
                                return ReadResult::Failed(f);
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            return ReadResult::WouldBlock;
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            if tls.is_handshaking() && e.kind() == io::ErrorKind::ConnectionReset {
                                return ReadResult::Failed(Failure::Tls(
                                    "connection reset during handshake",
                                ));
                            }
                            return ReadResult::Failed(Failure::from_io(&e));
                        }
                    }
                }
                ReadResult::WouldBlock
            }
        }
    }
}

/// The socket as rustls reads it: each read a `recvmsg` that remembers its kernel receive stamp,
/// so the plaintext of the records it carried is timed by it.
struct StampedSocket<'a> {
    sock: &'a TcpStream,
    stamps: bool,
    last: &'a mut Option<RealtimeNs>,
}

impl Read for StampedSocket<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let (io, stamp) = if self.stamps {
            sys::recv_stamped(self.sock, buf)
        } else {
            (sys::recv(self.sock, buf), None)
        };
        match io {
            Io::Done(n) => {
                if n > 0 {
                    *self.last = stamp;
                }
                Ok(n)
            }
            Io::WouldBlock => Err(io::ErrorKind::WouldBlock.into()),
            Io::Failed(e) => Err(e),
        }
    }
}

/// Hands the request's plaintext from `*written` on to rustls (`put` writes what is left from an
/// offset) and its records to the socket, until all of it is out, the socket is full, or rustls
/// takes nothing more (the handshake is not done: it keeps a buffer's worth until then).
/// rustls's buffer is bounded (64 KiB), so a larger request goes in several rounds: stopping
/// after the first one waited for a writable edge that a socket with room never sends, and a
/// request of more than 64 KiB over TLS hung until its timeout.
fn write_plaintext(
    tls: &mut ClientConnection,
    sock: &TcpStream,
    len: usize,
    written: &mut usize,
    mut put: impl FnMut(&mut rustls::Writer<'_>, usize) -> io::Result<usize>,
) -> WriteResult {
    // A round that takes nothing may follow a flush that made room (its buffer was full when
    // the last call stopped at a full socket); two in a row mean rustls waits for the handshake,
    // whose progress wakes the connection. Every other round takes bytes, so this ends.
    let mut idle_rounds = 0;
    loop {
        let before = *written;
        while *written < len {
            match put(&mut tls.writer(), *written) {
                Ok(0) => break, // its buffer is full: flush first
                Ok(n) => *written += n,
                Err(_) => return WriteResult::Failed(Failure::Tls("write failed")),
            }
        }
        idle_rounds = if *written == before {
            idle_rounds + 1
        } else {
            0
        };
        match flush_tls(tls, sock) {
            WriteResult::Done if *written < len && idle_rounds < 2 => {}
            WriteResult::Done if *written < len => return WriteResult::WouldBlock,
            r => return r,
        }
    }
}

fn flush_tls(tls: &mut ClientConnection, mut sock: &TcpStream) -> WriteResult {
    while tls.wants_write() {
        match tls.write_tls(&mut sock) {
            Ok(0) => return WriteResult::Failed(Failure::Reset),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return WriteResult::WouldBlock,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return WriteResult::Failed(Failure::from_io(&e)),
        }
    }
    WriteResult::Done
}
