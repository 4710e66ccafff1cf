//! One connection: its socket, its transport (plain TCP or rustls as a pipe over it), its read
//! buffer, its response framing and SSE state, and the request in flight. I/O methods drain until
//! `WouldBlock` and return small `Copy` results; the worker decides what they mean for the run.

use std::io::{self, Read, Write};

use mio::net::TcpStream;
use rustls::ClientConnection;

use super::exchange::{Close, Exchange, Scratch};
use super::outcome::Failure;
use super::sys::{self, Io};
use super::tls;

/// A single drain loop never reads more than this many times before yielding to other connections.
pub const MAX_READS_PER_EVENT: usize = 16;

pub enum Transport {
    Plain,
    Tls(Box<ClientConnection>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnState {
    /// Non-blocking connect in progress.
    Connecting,
    /// Connected (TLS may still be handshaking; rustls buffers the request until it is done).
    Open,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteResult {
    Done,
    WouldBlock,
    Failed(Failure),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadResult {
    /// `n` new bytes in the scratch buffer's space; `full`: they filled it.
    Data {
        n: usize,
        full: bool,
    },
    WouldBlock,
    /// The peer closed the connection: cleanly (TCP FIN, TLS close_notify) or not (TLS without
    /// close_notify).
    Closed(Close),
    Failed(Failure),
}

pub struct Conn {
    pub id: u64,
    pub sock: TcpStream,
    pub addr_index: usize,
    pub addr_attempts: usize,
    pub transport: Transport,
    pub state: ConnState,
    /// Responses completed on this connection: a reused connection the server closed gets one retry.
    pub served: u64,
    /// Read buffer and parser memory, lent to each exchange.
    pub scratch: Scratch,
    pub exchange: Option<Exchange>,
}

impl Conn {
    pub fn new(id: u64, sock: TcpStream, addr_index: usize, transport: Transport) -> Conn {
        Conn {
            id,
            sock,
            addr_index,
            addr_attempts: 1,
            transport,
            state: ConnState::Connecting,
            served: 0,
            scratch: Scratch::new(),
            exchange: None,
        }
    }

    pub fn is_idle(&self) -> bool {
        self.state == ConnState::Open && self.exchange.is_none()
    }

    /// Checks a non-blocking connect: `Ok(true)` connected, `Ok(false)` still in progress.
    pub fn connect_done(&mut self) -> Result<bool, Failure> {
        if let Ok(Some(e)) | Err(e) = self.sock.take_error() {
            return Err(Failure::from_io(&e));
        }
        match self.sock.peer_addr() {
            Ok(_) => {
                self.state = ConnState::Open;
                // Requests are small and latency is what we measure: never wait for Nagle.
                let _ = self.sock.set_nodelay(true);
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) if e.raw_os_error() == Some(sys::EINPROGRESS) => Ok(false),
            Err(e) => Err(Failure::from_io(&e)),
        }
    }

    /// Writes what is left of `request` (and any TLS records rustls wants out).
    pub fn write(&mut self, request: &[u8]) -> WriteResult {
        let Some(req) = self.exchange.as_mut() else {
            return WriteResult::Done;
        };
        match &mut self.transport {
            Transport::Plain => {
                while req.written < request.len() {
                    match sys::send(&self.sock, &request[req.written..]) {
                        Io::Done(0) => return WriteResult::Failed(Failure::Reset),
                        Io::Done(n) => req.written += n,
                        Io::WouldBlock => return WriteResult::WouldBlock,
                        Io::Failed(e) => return WriteResult::Failed(Failure::from_io(&e)),
                    }
                }
                WriteResult::Done
            }
            Transport::Tls(tls) => {
                // rustls keeps plaintext written before the handshake ends and sends it after.
                while req.written < request.len() {
                    match tls.writer().write(&request[req.written..]) {
                        Ok(0) => break, // its buffer is full: flush first
                        Ok(n) => req.written += n,
                        Err(_) => return WriteResult::Failed(Failure::Tls("write failed")),
                    }
                }
                match flush_tls(tls, &mut self.sock) {
                    WriteResult::Done if req.written < request.len() => WriteResult::WouldBlock,
                    r => r,
                }
            }
        }
    }

    /// Reads once into the scratch buffer's free space (draining TLS records as needed).
    pub fn read(&mut self) -> ReadResult {
        // Only a response head accumulates in the buffer; the parser caps it before this.
        let Some(dst) = self.scratch.space() else {
            return ReadResult::Failed(Failure::Invalid("headers too large"));
        };
        let room = dst.len();
        let data = |n: usize| ReadResult::Data { n, full: n == room };
        match &mut self.transport {
            Transport::Plain => match sys::recv(&self.sock, dst) {
                Io::Done(0) => ReadResult::Closed(Close::Clean),
                Io::Done(n) => data(n),
                Io::WouldBlock => ReadResult::WouldBlock,
                Io::Failed(e) => ReadResult::Failed(Failure::from_io(&e)),
            },
            Transport::Tls(tls) => {
                // Bounded: each turn either returns or consumes socket bytes; the socket runs dry.
                for _ in 0..MAX_READS_PER_EVENT {
                    match tls.reader().read(dst) {
                        // close_notify: the peer vouches that nothing was cut.
                        Ok(0) => return ReadResult::Closed(Close::Clean),
                        Ok(n) => return data(n),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        // TCP closed without close_notify: whatever came may have been cut, and
                        // a body delimited by the close cannot be called whole.
                        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                            return ReadResult::Closed(Close::Truncated);
                        }
                        Err(_) => return ReadResult::Failed(Failure::Tls("read failed")),
                    }
                    match tls.read_tls(&mut self.sock) {
                        Ok(0) => {
                            if let Err(e) = tls.process_new_packets() {
                                return ReadResult::Failed(Failure::Tls(tls::reason(&e)));
                            }
                            // Hand over what is left; the next read reports the end.
                            return match tls.reader().read(dst) {
                                Ok(n) if n > 0 => data(n),
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
                                let _ = tls.write_tls(&mut self.sock);
                                return ReadResult::Failed(Failure::Tls(tls::reason(&e)));
                            }
                            if tls.wants_write()
                                && let WriteResult::Failed(f) = flush_tls(tls, &mut self.sock)
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

    /// Whether TLS records are waiting to go out (the handshake, or the buffered request).
    pub fn wants_write(&self) -> bool {
        match &self.transport {
            Transport::Plain => false,
            Transport::Tls(tls) => tls.wants_write(),
        }
    }

    pub fn flush(&mut self) -> WriteResult {
        match &mut self.transport {
            Transport::Plain => WriteResult::Done,
            Transport::Tls(tls) => flush_tls(tls, &mut self.sock),
        }
    }

    /// A new socket for the same connection slot (the next resolved address after a refusal).
    pub fn replace_socket(&mut self, sock: TcpStream, addr_index: usize, transport: Transport) {
        self.sock = sock;
        self.addr_index = addr_index;
        self.addr_attempts += 1;
        self.transport = transport;
        self.state = ConnState::Connecting;
    }
}

fn flush_tls(tls: &mut ClientConnection, sock: &mut TcpStream) -> WriteResult {
    while tls.wants_write() {
        match tls.write_tls(sock) {
            Ok(0) => return WriteResult::Failed(Failure::Reset),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return WriteResult::WouldBlock,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return WriteResult::Failed(Failure::from_io(&e)),
        }
    }
    WriteResult::Done
}
