//! The real `pacer serve` as a child process under an address-space limit, and a small blocking
//! HTTP client with timeouts: what `tests/api_safety.rs` attacks and watches.
//!
//! `PACER_SAFETY_BIN` names another binary to run instead of this build's (to show a test
//! failing on an older build).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The address space the server gets: room for its threads' stacks and an ordinary run, far
/// below the gigabytes the attacks used to allocate (which then abort the process).
pub const MEMORY_LIMIT: u64 = 2 << 30;

/// A running `pacer serve` on a free loopback port.
pub struct Served {
    child: Child,
    pub addr: SocketAddr,
    /// The server's log lines so far.
    pub log: Arc<Mutex<Vec<String>>>,
}

fn binary() -> String {
    std::env::var("PACER_SAFETY_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_pacer").to_string())
}

impl Served {
    /// Starts `pacer serve --addr 127.0.0.1:0 ARGS` under `prlimit --as=MEMORY_LIMIT` and
    /// waits (at most 20 s) for its listening line.
    pub fn start(args: &[&str]) -> Served {
        let mut child = Command::new("prlimit")
            .arg(format!("--as={MEMORY_LIMIT}"))
            .arg("--")
            .arg(binary())
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(args)
            .env_remove("PACER_API_KEY")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("prlimit and pacer run");
        let stderr = child.stderr.take().expect("piped");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let lines = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(a) = line.strip_prefix("pacer api: listening on http://") {
                    let _ = tx.send(a.parse::<SocketAddr>().ok());
                }
                lines.lock().unwrap().push(line);
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(20))
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("no listening line: {:?}", log.lock().unwrap()));
        Served { child, addr, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Still running (not aborted, not killed by the limit).
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// A line of `/proc/PID/status` in kB: `VmRSS` now, `VmHWM` the peak.
    pub fn memory_kib(&self, field: &str) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// `GET /health` on a fresh connection: its status and how long the answer took, or why
    /// none came within `within`.
    pub fn health(&self, within: Duration) -> Result<(u16, Duration), String> {
        let started = Instant::now();
        let r = call(self.addr, "GET", "/health", "", within)?;
        Ok((r.status, started.elapsed()))
    }

    /// Asserts the server is alive and answers `/health` 200 within 3 s; returns the time.
    pub fn assert_healthy(&mut self, when: &str) -> Duration {
        assert!(
            self.alive(),
            "{when}: the server is gone: {:?}",
            self.log_tail()
        );
        match self.health(Duration::from_secs(3)) {
            Ok((200, took)) => took,
            other => panic!("{when}: /health answered {other:?}: {:?}", self.log_tail()),
        }
    }

    fn log_tail(&self) -> Vec<String> {
        let log = self.log.lock().unwrap();
        log.iter().rev().take(5).rev().cloned().collect()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub raw: String,
}

/// One request on a fresh connection (`Connection: close`), read to its end within `within`.
pub fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
    within: Duration,
) -> Result<Answer, String> {
    let deadline = Instant::now() + within;
    let mut s = TcpStream::connect_timeout(&addr, within).map_err(|e| format!("connect: {e}"))?;
    s.set_write_timeout(Some(within))
        .map_err(|e| e.to_string())?;
    let raw = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(raw.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("no whole answer within {within:?}"));
        }
        s.set_read_timeout(Some(left)).map_err(|e| e.to_string())?;
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(format!("read: {e} after {} bytes", buf.len())),
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no status line: {head:?}"))?;
    Ok(Answer {
        status,
        body: serde_json::from_str(rest).unwrap_or(Value::Null),
        raw: text,
    })
}

/// A request whose client then hangs up without reading the answer: sent, then the socket is
/// closed after `after`.
pub fn send_and_hang_up(addr: SocketAddr, path: &str, body: &str, after: Duration) {
    let mut s = TcpStream::connect(addr).expect("connects");
    let raw = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(raw.as_bytes()).expect("sent");
    std::thread::sleep(after);
    drop(s);
}
