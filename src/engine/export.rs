//! Every request on disk (`--requests FILE`): one JSON line per scheduled request, not-sent ones
//! included, written by a thread of its own so that formatting and disk writes stay off the
//! lanes. This module owns the lanes' side (batches of [`Completed`] records), the writer thread
//! and the line format; which file, and what an error means to the user, are the caller's.
//!
//! ```text
//!  lane: record ─> batch (512 records) ──full or 200 ms old──> bounded channel ──> writer: format, write
//!        <────────────── empty batches come back over a second channel <────────┘
//! ```
//!
//! Back-pressure: the channel holds at most [`QUEUED_PER_LANE`] batches per lane (plus a few),
//! and a lane takes an empty batch from the returns or makes one only when none is free, so the
//! batches in existence, and the memory, are bounded whatever the run's length. When the disk
//! is slower than the run the channel fills and a lane waits for room: no line is ever dropped,
//! and the wait shows in the run (later sends, `dispatch_delay`). The total wait is reported
//! ([`Summary::waited`]) so a slowed run says why.
//!
//! The file follows the run closely (`tail -f` shows it, and a crash loses little): a lane hands
//! its batch over once its oldest record is [`MAX_AGE`] old (or an interval of the timeline,
//! when that is shorter), checked at every turn of its loop, which comes at least every 100 ms;
//! the writer writes whenever its queue is empty, and in blocks of [`WRITE_AT`] when the lanes
//! keep it busy. The writer writes whole lines only, so the file holds complete JSON lines at
//! any moment, including after a second Ctrl-C that ends the process at once. Lines come in
//! the order requests ended on each lane, lanes interleaved by batch: sort by `index` for the
//! schedule's order.

use std::fs::File;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use super::outcome::{Completed, Outcome};
use super::stats::Messages;

/// Records per batch: large enough that a channel operation per batch is noise, small enough
/// that the batches in flight stay within a few megabytes.
pub const BATCH: usize = 512;
/// Batches queued per lane before a lane waits for the writer.
pub const QUEUED_PER_LANE: usize = 2;
/// A batch older than this is sent even if not full, so a slow run's file fills as it goes.
pub const MAX_AGE: Duration = Duration::from_millis(200);
/// The writer's buffer: written out (as whole lines) when it passes this, or when the queue is
/// empty.
pub const WRITE_AT: usize = 256 * 1024;

/// One lane's records on their way to the writer, with the server error messages the lane
/// interned since its last batch (its failures name them by number).
struct Batch {
    rows: Vec<Completed>,
    messages: Vec<Box<str>>,
    thread: u32,
}

/// What the writer needs to name things in a line.
#[derive(Clone, Debug)]
pub struct Format {
    pub t0: Instant,
    /// The report's names: `dns: <host>`, `not sent: all N workers busy`.
    pub host: String,
    pub workers: usize,
    /// LLM runs add output tokens and the server's time to first token.
    pub llm: bool,
    /// With `--prefix-groups`: request `i`'s prefix group is `groups[i % len]`, written as
    /// `prefix_group`.
    pub groups: Option<Box<[u32]>>,
    /// A session run (`--sessions`): each request's session and turn, written as `session`
    /// and `turn`.
    pub sessions: Option<std::sync::Arc<crate::plan::SessionPlan>>,
    /// A trace replay (`--trace`): request `i`'s line in the trace file, written as
    /// `trace_line`.
    pub trace_lines: Option<std::sync::Arc<[u32]>>,
}

/// How the writing went.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    /// Lines written.
    pub lines: u64,
    /// Time the lanes spent waiting for room in the writer's queue (the disk was slower).
    pub waited: Duration,
    /// The first write error; lines after it were not written.
    pub error: Option<String>,
}

/// Where each lane gets its ends of the channels. Hand every lane its [`LaneExport`], then drop
/// this: the writer ends when the last lane's ends are dropped.
pub struct Export {
    tx: Sender<Batch>,
    returns: Receiver<Vec<Completed>>,
    max_age: Duration,
}

/// The writer's ends, for [`write()`] on its own thread.
pub struct Writer {
    rx: Receiver<Batch>,
    returns: Sender<Vec<Completed>>,
}

/// The channels of a run with `lanes` lanes whose timeline has intervals of `interval`: a
/// lane's batch waits at most [`MAX_AGE`], or an interval when that is shorter.
pub fn channels(lanes: usize, interval: Duration) -> (Export, Writer) {
    let (tx, rx) = crossbeam_channel::bounded(QUEUED_PER_LANE * lanes + 2);
    let (rtx, rrx) = crossbeam_channel::unbounded();
    let max_age = MAX_AGE.min(interval.max(Duration::from_millis(1)));
    (
        Export {
            tx,
            returns: rrx,
            max_age,
        },
        Writer { rx, returns: rtx },
    )
}

impl Export {
    /// Lane `thread`'s ends; the time it waits for the writer is added to `waited` (ns).
    pub fn lane<'a>(&self, thread: u32, waited: &'a AtomicU64) -> LaneExport<'a> {
        LaneExport {
            tx: self.tx.clone(),
            returns: self.returns.clone(),
            waited,
            rows: Vec::with_capacity(BATCH),
            since: None,
            messages_sent: 0,
            thread,
            max_age: self.max_age,
        }
    }
}

/// One lane's side of the export: its ends of the channels and the batch being filled.
pub struct LaneExport<'a> {
    tx: Sender<Batch>,
    returns: Receiver<Vec<Completed>>,
    waited: &'a AtomicU64,
    rows: Vec<Completed>,
    /// When the batch's first record ended.
    since: Option<Instant>,
    /// Messages of the lane's table already sent to the writer.
    messages_sent: usize,
    thread: u32,
    max_age: Duration,
}

impl LaneExport<'_> {
    /// Adds one record; sends the batch when it is full or old. `messages` is the lane's table
    /// of server error messages.
    #[inline]
    pub fn push(&mut self, c: &Completed, messages: &Messages) {
        self.rows.push(*c);
        let since = *self.since.get_or_insert(c.ended);
        if self.rows.len() >= BATCH || c.ended.saturating_duration_since(since) >= self.max_age {
            self.flush(messages);
        }
    }

    /// Sends the batch if its oldest record has waited long enough: called at every turn of
    /// the lane's loop, so a quiet lane's last records do not wait for the next one.
    #[inline]
    pub fn tick(&mut self, now: Instant, messages: &Messages) {
        if self
            .since
            .is_some_and(|since| now.saturating_duration_since(since) >= self.max_age)
        {
            self.flush(messages);
        }
    }

    /// Sends what the batch holds (at the lane's end, or when full), waiting for room if the
    /// writer is behind.
    pub fn flush(&mut self, messages: &Messages) {
        if self.rows.is_empty() {
            return;
        }
        let fresh = match self.returns.try_recv() {
            Ok(v) => v,
            Err(_) => Vec::with_capacity(BATCH),
        };
        let all = messages.as_slice();
        let batch = Batch {
            rows: std::mem::replace(&mut self.rows, fresh),
            messages: all[self.messages_sent.min(all.len())..].to_vec(),
            thread: self.thread,
        };
        self.messages_sent = all.len();
        self.since = None;
        match self.tx.try_send(batch) {
            Ok(()) => {}
            Err(TrySendError::Full(batch)) => {
                let start = Instant::now();
                // Only fails when the writer is gone (it never leaves before the lanes).
                let _ = self.tx.send(batch);
                let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
                self.waited.fetch_add(ns, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

/// The writer's loop: formats and writes every batch until the lanes' side is dropped, then
/// writes what is left. After a write error it keeps taking batches (the lanes must never wait
/// on a writer that will not write), writes nothing more, and reports the error.
pub fn write(w: Writer, mut file: &File, f: &Format) -> Summary {
    let mut out = Vec::with_capacity(WRITE_AT + 64 * 1024);
    // Each lane's message table, grown from its batches.
    let mut tables: Vec<Vec<Box<str>>> = Vec::new();
    let mut summary = Summary::default();
    // The caller opened the file without truncating it (a run that cannot start leaves it as it
    // was); the run has started, so what it held goes now.
    if let Err(e) = file.set_len(0) {
        summary.error = Some(e.to_string());
    }
    // Lines in `out`, counted as written once they are.
    let mut buffered = 0;
    let mut put = |out: &mut Vec<u8>, buffered: &mut u64, summary: &mut Summary| {
        if summary.error.is_none() {
            match file.write_all(out) {
                Ok(()) => summary.lines += *buffered,
                Err(e) => summary.error = Some(e.to_string()),
            }
        }
        out.clear();
        *buffered = 0;
    };
    for mut batch in w.rx.iter() {
        let lane = batch.thread as usize;
        if tables.len() <= lane {
            tables.resize_with(lane + 1, Vec::new);
        }
        tables[lane].append(&mut batch.messages);
        for c in &batch.rows {
            line(&mut out, c, f, &tables[lane]);
            buffered += 1;
            if out.len() >= WRITE_AT {
                put(&mut out, &mut buffered, &mut summary);
            }
        }
        batch.rows.clear();
        let _ = w.returns.send(batch.rows);
        // Nothing more waiting: what is formatted goes to the file now, not at the next block.
        if w.rx.is_empty() && !out.is_empty() {
            put(&mut out, &mut buffered, &mut summary);
        }
    }
    if !out.is_empty() {
        put(&mut out, &mut buffered, &mut summary);
    }
    summary
}

/// Seconds from `t0`, microsecond precision: `12.345678`.
fn secs(out: &mut Vec<u8>, t0: Instant, t: Instant) {
    let us = t.saturating_duration_since(t0).as_micros();
    let _ = write!(out, "{}.{:06}", us / 1_000_000, us % 1_000_000);
}

fn opt_secs(out: &mut Vec<u8>, t0: Instant, t: Option<Instant>) {
    match t {
        Some(t) => secs(out, t0, t),
        None => out.extend_from_slice(b"null"),
    }
}

/// One request as a JSON line (docs/report.md, "Every request on disk", has each field).
pub fn line(out: &mut Vec<u8>, c: &Completed, f: &Format, messages: &[Box<str>]) {
    let t0 = f.t0;
    let _ = write!(
        out,
        "{{\"index\":{},\"thread\":{},\"conn\":",
        c.index, c.thread
    );
    match c.dispatch {
        Some(_) => {
            let _ = write!(out, "{}", c.conn);
        }
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"intended\":");
    secs(out, t0, c.intended);
    out.extend_from_slice(b",\"dispatched\":");
    opt_secs(out, t0, c.dispatch);
    out.extend_from_slice(b",\"headers\":");
    opt_secs(out, t0, c.head_at);
    out.extend_from_slice(b",\"first_token\":");
    opt_secs(out, t0, c.first_token_at);
    out.extend_from_slice(b",\"ended\":");
    secs(out, t0, c.ended);
    out.extend_from_slice(b",\"status\":");
    match c.status {
        Some(s) => {
            let _ = write!(out, "{s}");
        }
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"error\":");
    match c.outcome {
        Outcome::Success => out.extend_from_slice(b"null"),
        Outcome::Status(s) => {
            let _ = write!(out, "\"{s}\"");
        }
        Outcome::Failed(failure) => {
            let name = failure.name(&f.host, f.workers, messages);
            // A name may carry a server's message: JSON-escape it. A String always serializes.
            let _ = serde_json::to_writer(&mut *out, &name);
        }
    }
    let _ = write!(out, ",\"bytes\":{}", c.bytes);
    if c.retried {
        // Sent again after a keep-alive connection turned out closed: said only when it was.
        out.extend_from_slice(b",\"retried\":true");
    }
    if f.llm {
        let _ = write!(
            out,
            ",\"output_tokens\":{},\"server_ttft\":",
            c.output_tokens
        );
        for (i, figure) in [c.server_ttft, c.server_tpot].into_iter().enumerate() {
            if i == 1 {
                out.extend_from_slice(b",\"server_tpot\":");
            }
            match figure {
                Some(s) if s.is_finite() => {
                    let _ = write!(out, "{s}");
                }
                _ => out.extend_from_slice(b"null"),
            }
        }
    }
    if let Some(g) = f.groups.as_deref().filter(|g| !g.is_empty()) {
        let _ = write!(
            out,
            ",\"prefix_group\":{}",
            g[(c.index % g.len() as u64) as usize]
        );
    }
    if let Some(s) = &f.sessions {
        let (session, turn) = s.of_index(c.index);
        let _ = write!(out, ",\"session\":{session},\"turn\":{turn}");
    }
    if let Some(line) = f
        .trace_lines
        .as_deref()
        .and_then(|l| l.get(usize::try_from(c.index).ok()?))
    {
        let _ = write!(out, ",\"trace_line\":{line}");
    }
    out.extend_from_slice(b"}\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Failure;
    use serde_json::{Value, json};

    fn format(t0: Instant, llm: bool) -> Format {
        Format {
            t0,
            host: "h.example".into(),
            workers: 4,
            llm,
            groups: None,
            sessions: None,
            trace_lines: None,
        }
    }

    fn parse(out: &[u8]) -> Vec<Value> {
        std::str::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn answered(t0: Instant) -> Completed {
        let at = |us: u64| t0 + Duration::from_micros(us);
        let mut c = Completed::unsent(7, at(1_000_000), 1, Failure::NotSent, at(0));
        c.conn = 3;
        c.dispatch = Some(at(1_000_012));
        c.head_at = Some(at(1_000_500));
        c.first_byte_at = Some(at(1_000_600));
        c.end_at = Some(at(2_250_001));
        c.ended = at(2_250_001);
        c.status = Some(200);
        c.outcome = Outcome::Success;
        c.bytes = 131;
        c
    }

    #[test]
    fn lines_carry_every_field_in_seconds_from_the_start() {
        let t0 = Instant::now();
        let mut out = Vec::new();
        line(&mut out, &answered(t0), &format(t0, false), &[]);
        let text = std::str::from_utf8(&out).unwrap();
        assert_eq!(
            text,
            "{\"index\":7,\"thread\":1,\"conn\":3,\"intended\":1.000000,\"dispatched\":1.000012,\
             \"headers\":1.000500,\"first_token\":null,\"ended\":2.250001,\"status\":200,\
             \"error\":null,\"bytes\":131}\n"
        );
    }

    #[test]
    fn errors_are_named_as_the_report_counts_them() {
        let t0 = Instant::now();
        let f = format(t0, true);
        let msgs: Vec<Box<str>> = vec!["model \"x\" overloaded\n<retry>".into()];
        let mut out = Vec::new();
        let mut c = answered(t0);
        c.outcome = Outcome::Status(503);
        c.status = Some(503);
        line(&mut out, &c, &f, &msgs);
        c.outcome = Outcome::Failed(Failure::StreamMessage(0));
        c.output_tokens = 0;
        c.server_ttft = Some(0.05);
        c.server_tpot = Some(0.01);
        line(&mut out, &c, &f, &msgs);
        let never = Completed::unsent(9, t0, 0, Failure::NotSent, t0 + Duration::from_secs(2));
        line(&mut out, &never, &f, &msgs);
        let v = parse(&out);
        assert_eq!(v[0]["error"], "503");
        assert_eq!(
            v[1]["error"],
            "stream error: model \"x\" overloaded\n<retry>"
        );
        assert_eq!(
            (
                v[1]["output_tokens"].clone(),
                v[1]["server_ttft"].clone(),
                v[1]["server_tpot"].clone()
            ),
            (json!(0), json!(0.05), json!(0.01))
        );
        assert_eq!(v[2]["error"], "not sent: all 4 workers busy");
        assert_eq!(
            (
                v[2]["conn"].clone(),
                v[2]["dispatched"].clone(),
                v[2]["ended"].clone()
            ),
            (Value::Null, Value::Null, json!(2.0))
        );
        assert_eq!(v[2]["server_ttft"], Value::Null);
        assert_eq!(v[2]["server_tpot"], Value::Null);
    }

    #[test]
    fn the_writer_writes_every_line_of_every_lane_and_recycles_batches() {
        let t0 = Instant::now();
        let path = std::env::temp_dir().join(format!("pacer-export-{}.jsonl", std::process::id()));
        // An older, longer file is replaced, not overwritten in part.
        std::fs::write(&path, "not a line of this run\n".repeat(200_000)).unwrap();
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let f = format(t0, false);
        let (export, writer) = channels(2, Duration::from_secs(1));
        let waited = AtomicU64::new(0);
        let n = 3 * BATCH as u64 + 17;
        let summary = std::thread::scope(|s| {
            let w = s.spawn(|| write(writer, &file, &f));
            std::thread::scope(|lanes| {
                for thread in 0..2u32 {
                    let mut lane = export.lane(thread, &waited);
                    lanes.spawn(move || {
                        let mut messages = Messages::default();
                        let fail = messages.intern(&format!("lane {thread} says no"));
                        for i in 0..n {
                            let mut c = answered(t0);
                            c.index = i * 2 + u64::from(thread);
                            c.thread = thread;
                            if i % 100 == 0 {
                                c.outcome = Outcome::Failed(fail);
                            }
                            lane.push(&c, &messages);
                        }
                        lane.flush(&messages);
                    });
                }
            });
            drop(export);
            w.join().unwrap()
        });
        assert_eq!((summary.lines, summary.error.clone()), (2 * n, None));
        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        let v = parse(text.as_bytes());
        let mut indexes: Vec<u64> = v.iter().map(|l| l["index"].as_u64().unwrap()).collect();
        indexes.sort_unstable();
        assert_eq!(indexes, (0..2 * n).collect::<Vec<_>>());
        for l in &v {
            let i = l["index"].as_u64().unwrap();
            let want = if (i / 2) % 100 == 0 {
                json!(format!("stream error: lane {} says no", i % 2))
            } else {
                Value::Null
            };
            assert_eq!(l["error"], want, "{l}");
        }
    }

    #[test]
    fn a_quiet_lane_hands_its_records_over_within_200ms_or_an_interval() {
        // Before: a batch went only when full (512 records) or when a record came a second
        // after the first, and the writer wrote in 256 KB blocks, so a run at 200 req/s showed
        // nothing for seconds. Times are made up: nothing here sleeps.
        let t0 = Instant::now();
        let messages = Messages::default();
        let waited = AtomicU64::new(0);
        for (interval, age) in [
            (Duration::from_secs(1), MAX_AGE),
            (Duration::from_millis(50), Duration::from_millis(50)),
        ] {
            let (export, writer) = channels(1, interval);
            let mut lane = export.lane(0, &waited);
            lane.push(&answered(t0), &messages);
            let ended = answered(t0).ended;
            lane.tick(ended + age - Duration::from_millis(1), &messages);
            assert!(writer.rx.is_empty(), "handed over too early");
            lane.tick(ended + age, &messages);
            assert_eq!(writer.rx.len(), 1, "not handed over at {age:?}");
            // Nothing left: a tick sends nothing more.
            lane.tick(ended + 10 * age, &messages);
            assert_eq!(writer.rx.len(), 1);
        }
    }

    #[test]
    fn the_writer_writes_as_soon_as_its_queue_is_empty() {
        let t0 = Instant::now();
        let path =
            std::env::temp_dir().join(format!("pacer-export-now-{}.jsonl", std::process::id()));
        let file = File::create(&path).unwrap();
        let f = format(t0, false);
        let (export, writer) = channels(1, Duration::from_secs(1));
        let waited = AtomicU64::new(0);
        std::thread::scope(|s| {
            let w = s.spawn(|| write(writer, &file, &f));
            let mut lane = export.lane(0, &waited);
            let messages = Messages::default();
            lane.push(&answered(t0), &messages);
            lane.flush(&messages);
            // The run goes on (the lane's ends are still held): the line is in the file anyway.
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut text = String::new();
            while Instant::now() < deadline {
                text = std::fs::read_to_string(&path).unwrap();
                if !text.is_empty() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            assert_eq!(parse(text.as_bytes()).len(), 1, "{text:?}");
            drop(lane);
            drop(export);
            w.join().unwrap();
        });
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_write_error_is_reported_and_the_lanes_never_wait_on_it() {
        let t0 = Instant::now();
        // A file opened read-only: every write fails.
        let path =
            std::env::temp_dir().join(format!("pacer-export-ro-{}.jsonl", std::process::id()));
        std::fs::write(&path, "").unwrap();
        let file = File::open(&path).unwrap();
        let f = format(t0, false);
        let (export, writer) = channels(1, Duration::from_secs(1));
        let waited = AtomicU64::new(0);
        let summary = std::thread::scope(|s| {
            let w = s.spawn(|| write(writer, &file, &f));
            let mut lane = export.lane(0, &waited);
            let messages = Messages::default();
            for _ in 0..20 * BATCH {
                lane.push(&answered(t0), &messages);
            }
            lane.flush(&messages);
            drop(lane);
            drop(export);
            w.join().unwrap()
        });
        let _ = std::fs::remove_file(&path);
        assert_eq!(summary.lines, 0);
        assert!(summary.error.is_some());
    }
}
