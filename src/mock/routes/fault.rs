//! The fault modes: what each [`Fault`] puts on the wire, so clients can rehearse naming it.
//! The wire does the writing and the sleeping; the `sse-*` faults are the LLM answers of `llm`
//! broken on purpose.

use std::time::Duration;

use super::llm::{self, Api, SseFault};
use crate::mock::config::Fault;
use crate::mock::wire::{Conn, Next, Request, write_head};

/// Drip: one byte per this.
const DRIP_GAP: Duration = Duration::from_millis(100);
/// Endless: one chunk of this many bytes per millisecond at most.
const ENDLESS_CHUNK: usize = 4096;
/// Huge headers: at least this many bytes of header lines.
const HUGE_HEADERS: usize = 100 * 1024;
/// Endless 103: this many interim heads per millisecond.
const INTERIM_BURST: usize = 8;

pub(super) fn apply(conn: &mut Conn, req: &Request, fault: Fault, api: Api) -> Next {
    match fault {
        Fault::Reset => Next::Reset,
        Fault::CloseBeforeResponse => Next::Abort,
        Fault::ShortBody => {
            conn.out.clear();
            write_head(
                &mut conn.out,
                200,
                "application/json",
                Some(100),
                false,
                &[],
            );
            conn.out.extend_from_slice(b"{\"message\"");
            conn.shared.counters.count_status(200);
            conn.send_out();
            Next::Abort
        }
        Fault::Garbage => {
            conn.send(b"HTTP/1.1 abc nonsense\r\n\r\n");
            Next::Abort
        }
        Fault::HugeHeaders => {
            conn.out.clear();
            conn.out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
            let filler = "x".repeat(100);
            let mut i = 0;
            // Bounded by HUGE_HEADERS.
            while conn.out.len() < HUGE_HEADERS {
                conn.out
                    .extend_from_slice(format!("X-Mock-Filler-{i}: {filler}\r\n").as_bytes());
                i += 1;
            }
            conn.out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
            conn.shared.counters.count_status(200);
            conn.send_out();
            Next::Abort
        }
        Fault::BadChunk => {
            conn.out.clear();
            write_head(&mut conn.out, 200, "application/json", None, false, &[]);
            conn.out.extend_from_slice(b"zz\r\n");
            conn.shared.counters.count_status(200);
            conn.send_out();
            Next::Abort
        }
        Fault::EndlessBody => endless(conn, req),
        Fault::Drip => drip(conn, req),
        Fault::Stall => {
            conn.hold();
            Next::Abort
        }
        Fault::Continue => {
            if !conn.send(b"HTTP/1.1 100 Continue\r\n\r\n") {
                return Next::Abort;
            }
            let body = conn.shared.cfg.body.clone();
            conn.answer_json(req, 200, body.as_bytes(), &[])
        }
        Fault::EndlessInterim => endless_interim(conn, req),
        Fault::TooManyRequests | Fault::Unavailable => {
            let (status, body): (u16, &[u8]) = if fault == Fault::TooManyRequests {
                (
                    429,
                    br#"{"error":{"message":"mock rate limit","type":"rate_limit"}}"#,
                )
            } else {
                (
                    503,
                    br#"{"error":{"message":"mock unavailable","type":"server_error"}}"#,
                )
            };
            let extra = [("Retry-After", "1")];
            conn.answer_json(req, status, body, &extra)
        }
        Fault::SseBrokenJson => llm::answer(conn, req, api, Some(SseFault::BrokenJson)),
        Fault::SseError => llm::answer(conn, req, api, Some(SseFault::Error)),
        Fault::SseNoDone => llm::answer(conn, req, api, Some(SseFault::NoDone)),
    }
}

fn endless(conn: &mut Conn, req: &Request) -> Next {
    conn.out.clear();
    write_head(
        &mut conn.out,
        200,
        "application/octet-stream",
        None,
        false,
        &[],
    );
    conn.shared.counters.count_status(200);
    if !conn.send_out() {
        return Next::Abort;
    }
    let mut chunk = format!("{ENDLESS_CHUNK:x}\r\n").into_bytes();
    chunk.resize(chunk.len() + ENDLESS_CHUNK, b'a');
    chunk.extend_from_slice(b"\r\n");
    let mut at = req.end;
    // Ends when the client goes away (a write fails) or on shutdown (send and sleep check the flag).
    loop {
        if !conn.send(&chunk) {
            return Next::Abort;
        }
        at += Duration::from_millis(1);
        if !conn.sleep_until(at) {
            return Next::Abort;
        }
    }
}

fn endless_interim(conn: &mut Conn, req: &Request) -> Next {
    let burst = b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
        .repeat(INTERIM_BURST);
    let mut at = req.end;
    // Ends when the client goes away (a write fails) or on shutdown (send and sleep check the flag).
    loop {
        if !conn.send(&burst) {
            return Next::Abort;
        }
        at += Duration::from_millis(1);
        if !conn.sleep_until(at) {
            return Next::Abort;
        }
    }
}

fn drip(conn: &mut Conn, req: &Request) -> Next {
    conn.out.clear();
    let body = conn.shared.cfg.body.clone();
    write_head(
        &mut conn.out,
        200,
        "application/json",
        Some(body.len()),
        false,
        &[],
    );
    conn.out.extend_from_slice(body.as_bytes());
    conn.shared.counters.count_status(200);
    let response = std::mem::take(&mut conn.out);
    let mut at = req.end;
    // Bounded by the response's length.
    for byte in &response {
        if !conn.sleep_until(at) || !conn.send(std::slice::from_ref(byte)) {
            return Next::Abort;
        }
        at += DRIP_GAP;
    }
    conn.out = response;
    Next::Close
}
