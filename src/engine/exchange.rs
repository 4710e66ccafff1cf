//! One request/response exchange as a pure state machine: the request it carries (a [`Ticket`]
//! from dispatch), the response read so far, and what that response means for the run.
//!
//! ```text
//!  feed(n, now) ──> Head ── parse_head: 1xx? drop it, parse on ──> Body ── framing done ──> Done
//!                    │                                              │  (Content-Length,
//!  finish(close) ────┴─ no byte: closed before response             │   chunked, or the close)
//!                       else: closed inside the head                └─ SSE events, body copy
//! ```
//!
//! It owns the in-flight record (timestamps, status, token counts), the body framing
//! ([`http1::Body`](crate::http1::Body)) and the interpretation of the body by
//! [`BodyMode`]: SSE events timed as they complete, or a whole JSON body kept (capped) for its
//! `usage` and `error`. It never touches a socket or a clock: bytes and the instant they were read
//! come in, a [`Step`] goes out, and the lane acts on it. So every case here is tested by feeding
//! byte slices at made-up instants.
//!
//! The memory it works in belongs to the connection and is lent to each call ([`Scratch`]): the
//! read buffer (a response head is parsed where it was read, body bytes are handed on from there,
//! never copied), the SSE parser's line buffers and the kept body. So starting an exchange
//! allocates nothing. Server error messages go to a [`Sink`] (the thread's table of messages) as
//! they are seen; everything else ends up in one [`Completed`] record, and the gaps between the
//! response's content chunks ([`ChunkGap`]s, kept in the scratch memory, so reused) are handed out
//! with it ([`Exchange::completed`]): the statistics take the two together, once per request.
//!
//! **A chunk is what arrived together.** A content chunk is the token events one read brought:
//! when a read carries k token events (the lane read late, or the server wrote them together) they
//! all have the read's arrival time, so they are one chunk whose tokens share the gap before it,
//! as the tokens of one event do; no gap of 0 is made up between them. Each token gap joined this
//! way counts in [`Completed::token_gaps_coalesced`], so the report can say how many gaps were not
//! measured.
//!
//! Tokens are counted here too ([`Exchange::counting`]): output tokens from the server's `usage`,
//! else the run's tokenizer over the streamed text, else the number of token events; input
//! tokens from `usage.prompt_tokens`, else the count the plan made of the prompt before the run.
//! Each content chunk's gap is kept with the tokens it carried: the growth of a per-chunk
//! `usage.completion_tokens` when the server sends one with every chunk, else the tokenizer's
//! count of the chunk's text, else 1. Without a tokenizer no text is looked at, let alone copied.

use std::sync::Arc;
use std::time::Instant;

use super::dispatch::Ticket;
use super::outcome::{ChunkGap, Completed, Failure, Outcome, TLS_TRUNCATED, TokenSource};
use super::tokens::{Pair, Said};
use crate::http1::{
    Body, Framing, MAX_HEAD_BYTES, MAX_INTERIM_RESPONSES, ResponseError, parse_head,
};
use crate::llm::{
    ChunkInfo, ChunkText, Event, SseParser, Tokenizer, classify, classify_body, classify_body_text,
    classify_text,
};
use crate::plan::BodyMode;

/// Read buffer of a new connection: enough for a typical response, small enough that 10,000
/// connections stay cheap. It grows to `READ_BUF` once a read fills it (big bodies), and up to
/// the head cap while a large response head arrives.
pub const INITIAL_READ_BUF: usize = 4 * 1024;
pub const READ_BUF: usize = 16 * 1024;
/// The largest non-streaming LLM body kept to read its `usage`; past it the count is 0.
pub const BODY_COPY_CAP: usize = 1 << 20;

/// Where an exchange stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for (the rest of) the final response head; 1xx heads are skipped here.
    Head,
    /// Reading the body to the end its framing gives.
    Body,
    /// The response is complete; the lane takes the exchange off its connection.
    Done,
}

/// What the lane does next with the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// The response is not complete: read more.
    More,
    /// The response is complete. `reuse`: the connection may carry the next request (keep-alive,
    /// and no byte beyond this response: pacer never pipelines, so extra bytes mean close).
    Complete { reuse: bool },
    /// The exchange failed with this name: close the connection.
    Fail(Failure),
}

/// How the peer ended the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Close {
    /// A TCP FIN, or a TLS `close_notify`.
    Clean,
    /// TLS closed without `close_notify` (rustls' `UnexpectedEof`): data may have been cut off.
    Truncated,
}

/// Where the exchange names a server's error message as it sees it: the thread's table of
/// messages in the lane, a list in tests. Error path only.
pub trait Sink {
    /// A server's own error message: the failure that names it.
    fn server_error(&mut self, message: String) -> Failure;
}

/// The memory a connection lends to each exchange it carries, reused from one request to the next.
#[derive(Debug)]
pub struct Scratch {
    buf: Vec<u8>,
    /// Bytes of a response head not complete yet, at `buf[..kept]`; 0 while reading a body.
    kept: usize,
    sse: SseParser,
    copy: Vec<u8>,
    /// The streamed text of a response, kept only when a tokenizer counts it or a session's
    /// history needs it.
    text: String,
    /// A whole (not streamed) body's answer text, kept likewise.
    whole_text: String,
    /// The gaps before the content chunks of the response (after the first), in order.
    gaps: Vec<ChunkGap>,
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch {
            buf: vec![0; INITIAL_READ_BUF],
            kept: 0,
            sse: SseParser::new(),
            copy: Vec::new(),
            text: String::new(),
            whole_text: String::new(),
            gaps: Vec::new(),
        }
    }

    /// Where the next read goes: after the head bytes kept from earlier reads. A head that fills
    /// the buffer grows it, up to the head cap plus a read; None past that (the head parser's
    /// own cap normally speaks first).
    pub fn space(&mut self) -> Option<&mut [u8]> {
        if self.kept == self.buf.len() {
            if self.buf.len() >= MAX_HEAD_BYTES + READ_BUF {
                return None;
            }
            let new_len = (self.buf.len() * 2).min(MAX_HEAD_BYTES + READ_BUF);
            self.buf.resize(new_len, 0);
        }
        Some(&mut self.buf[self.kept..])
    }

    /// A read filled the buffer: a big body is coming, so read it in larger pieces.
    pub fn grow_for_body(&mut self) {
        if self.buf.len() < READ_BUF {
            self.buf.resize(READ_BUF, 0);
        }
    }

    /// The gaps before the content chunks of the last response (see [`Exchange::completed`]).
    pub fn gaps(&self) -> &[ChunkGap] {
        &self.gaps
    }

    /// The text of the last response's answer, when it was kept (a tokenizer counted it, or
    /// [`Exchange::keeping_text`]): a stream's deltas, or a whole body's message.
    pub fn text(&self) -> &str {
        if self.text.is_empty() {
            &self.whole_text
        } else {
            &self.text
        }
    }

    /// The read buffer's size (for tests of the growth rule).
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }
}

/// What a streaming response's events said so far.
#[derive(Debug, Default)]
struct Stream {
    first_token_at: Option<Instant>,
    /// The first event carrying a token of each kind (see `llm::ChunkInfo`).
    first_reasoning_at: Option<Instant>,
    first_content_at: Option<Instant>,
    first_tool_call_at: Option<Instant>,
    usage_reasoning: Option<u64>,
    usage_cached: Option<u64>,
    last_token_at: Option<Instant>,
    token_events: u64,
    /// The current chunk (the token events of the latest read that had one) has its gap at the
    /// end of the gaps: it is not the response's first chunk.
    chunk_has_gap: bool,
    /// Token events that joined the chunk of the one before (same read).
    coalesced: u32,
    usage_tokens: Option<u64>,
    usage_prompt: Option<u64>,
    /// The largest `usage.completion_tokens` seen on a content chunk so far: a server that sends
    /// usage with every chunk says how many tokens each one carried by its growth.
    usage_seen: u64,
    server_ttft: Option<f64>,
    server_tpot: Option<f64>,
    done: bool,
    failure: Option<Failure>,
    /// Events seen, of any kind: none at the end means the body was not an event stream.
    events: u64,
    /// The body's first byte, to name what came instead of events.
    first_byte: Option<u8>,
}

impl Stream {
    /// One complete SSE event, seen in the read at `now`. Its text is kept in `text` when given
    /// (a tokenizer counts it, or a session needs the answer), and counted with a tokenizer.
    fn on_event(
        &mut self,
        data: &[u8],
        now: Instant,
        tokenizer: Option<&Tokenizer>,
        text: Option<&mut String>,
        gaps: &mut Vec<ChunkGap>,
        sink: &mut impl Sink,
    ) {
        self.events += 1;
        let classified = match text {
            None => classify(data).map(|e| (e, None)),
            Some(_) => classify_text(data).map(|(e, t)| (e, Some(t))),
        };
        match classified {
            Ok((Event::Done, _)) => self.done = true,
            Ok((Event::Chunk(c), chunk_text)) => {
                if c.token {
                    let tokens = self.chunk_tokens(&c, chunk_text.as_ref(), tokenizer, text);
                    match self.last_token_at {
                        // Read together with the token event before: the same chunk.
                        Some(last) if last == now => {
                            self.coalesced += 1;
                            if self.chunk_has_gap
                                && let Some(g) = gaps.last_mut()
                            {
                                g.tokens += tokens;
                            }
                        }
                        Some(last) => {
                            let secs = now.saturating_duration_since(last).as_secs_f64();
                            // Pushing reuses the connection's buffer: no allocation once it
                            // has held a response this long.
                            gaps.push(ChunkGap { secs, tokens });
                            self.chunk_has_gap = true;
                        }
                        None => self.first_token_at = Some(now),
                    }
                    self.last_token_at = Some(now);
                    self.token_events += 1;
                    for (kind, first) in [
                        (c.reasoning, &mut self.first_reasoning_at),
                        (c.content, &mut self.first_content_at),
                        (c.tool_call, &mut self.first_tool_call_at),
                    ] {
                        if kind && first.is_none() {
                            *first = Some(now);
                        }
                    }
                }
                if c.reasoning_tokens.is_some() {
                    self.usage_reasoning = c.reasoning_tokens;
                }
                if c.cached_tokens.is_some() {
                    self.usage_cached = c.cached_tokens;
                }
                if c.completion_tokens.is_some() {
                    self.usage_tokens = c.completion_tokens;
                }
                if c.prompt_tokens.is_some() {
                    self.usage_prompt = c.prompt_tokens;
                }
                if c.server_ttft.is_some() {
                    self.server_ttft = c.server_ttft;
                }
                if c.server_tpot.is_some() {
                    self.server_tpot = c.server_tpot;
                }
            }
            Ok((Event::Error(msg), _)) => {
                if self.failure.is_none() {
                    self.failure = Some(sink.server_error(msg));
                }
            }
            Err(e) => {
                if self.failure.is_none() {
                    self.failure = Some(Failure::Stream(e.reason()));
                }
            }
        }
    }

    /// The tokens a content chunk carried (see the module docs), at least 1. The chunk's text
    /// joins `text` when a tokenizer is counting.
    fn chunk_tokens(
        &mut self,
        c: &ChunkInfo,
        chunk_text: Option<&ChunkText>,
        tokenizer: Option<&Tokenizer>,
        text: Option<&mut String>,
    ) -> u64 {
        let by_usage = c
            .completion_tokens
            .and_then(|n| n.checked_sub(self.usage_seen))
            .filter(|&grew| grew > 0);
        if let Some(n) = c.completion_tokens {
            self.usage_seen = self.usage_seen.max(n);
        }
        let mut counted = 0;
        if let (Some(chunk_text), Some(text)) = (chunk_text, text) {
            for part in chunk_text.parts() {
                text.push_str(part);
                if let (Some(t), None) = (tokenizer, by_usage) {
                    counted += t.count(part).unwrap_or(0) as u64;
                }
            }
        }
        by_usage.unwrap_or(counted).max(1)
    }
}

/// Output tokens and their source, from what a successful response said: its usage, else the
/// tokenizer's count of its text (`counted`), else `events` (None: a whole body, which has no
/// events).
fn output_count(
    usage: Option<u64>,
    counted: Option<u64>,
    events: Option<u64>,
) -> (u64, TokenSource) {
    if let Some(n) = usage {
        return (n, TokenSource::Usage);
    }
    if let Some(n) = counted {
        return (n, TokenSource::Tokenizer);
    }
    match events {
        Some(n) => (n, TokenSource::Events),
        None => (0, TokenSource::None),
    }
}

/// The tokenizer's count of `text`, when there is a tokenizer and it can count it.
fn count_text(tokenizer: Option<&Tokenizer>, text: &str) -> Option<u64> {
    tokenizer.and_then(|t| t.count(text).ok()).map(|n| n as u64)
}

/// Whether a whole-JSON body is being kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Copying {
    Off,
    On,
    /// Past [`BODY_COPY_CAP`]: dropped, and the response counts no tokens.
    Overflowed,
}

/// One request/response exchange. See the module docs.
#[derive(Debug)]
pub struct Exchange {
    ticket: Ticket,
    /// The connection carrying it (a serial per thread), for the record.
    conn: u64,
    mode: BodyMode,
    head_request: bool,
    /// Bytes of the request written so far (the connection writes, the count lives here).
    pub written: usize,
    phase: Phase,
    /// Interim (1xx) heads skipped so far; past [`MAX_INTERIM_RESPONSES`] the exchange fails.
    interim: u32,
    body: Body,
    status: Option<u16>,
    keep_alive: bool,
    bytes: u64,
    head_at: Option<Instant>,
    first_byte_at: Option<Instant>,
    last_byte_at: Option<Instant>,
    end_at: Option<Instant>,
    /// The body goes through the SSE parser (a streaming run and a 2xx head).
    sse: bool,
    copying: Copying,
    stream: Stream,
    outcome: Outcome,
    output_tokens: u64,
    output_source: TokenSource,
    /// The server's count of the prompt, from a whole body's usage (a stream's is in `stream`).
    usage_prompt: Option<u64>,
    /// The server's counts of reasoning and output tokens, from a whole body's usage.
    usage_reasoning: Option<u64>,
    usage_cached: Option<u64>,
    usage_output: Option<u64>,
    /// The run's tokenizer count of the whole answer's text, when it counts.
    counted_output: Option<u64>,
    /// The plan's tokenizer count of the prompt this request sends.
    prompt_tokens: Option<u32>,
    /// The run's tokenizer, when it counts streamed text.
    tokenizer: Option<Arc<Tokenizer>>,
    /// Keep the answer's text in the scratch memory even without a tokenizer (a session's
    /// history is the server's answer).
    keep_text: bool,
}

/// How an exchange counts tokens: `prompt_tokens`, the tokenizer's count of the prompt sent
/// (made before the run), stands in for a server that reports no `usage.prompt_tokens`;
/// `tokenizer` counts the streamed text and each chunk's tokens; `keep_text` keeps the answer's
/// text ([`Scratch::text`]) whether or not a tokenizer counts it (a session's history).
#[derive(Default)]
pub struct Counting {
    pub prompt_tokens: Option<u32>,
    pub tokenizer: Option<Arc<Tokenizer>>,
    pub keep_text: bool,
}

impl Exchange {
    /// The exchange of `ticket` on connection `conn`; `head_request`: the request is a HEAD, so
    /// the response has no body whatever its headers say.
    pub fn new(ticket: Ticket, conn: u64, mode: BodyMode, head_request: bool) -> Exchange {
        Exchange::counted(ticket, conn, (mode, head_request), Counting::default())
    }

    /// [`Exchange::new`], counting tokens as `counting` says; built in one expression, so that
    /// the engine writes it where the connection keeps it (no copy of the whole exchange per
    /// request: issue 18's instructions per request).
    #[inline(always)]
    pub fn counted(
        ticket: Ticket,
        conn: u64,
        (mode, head_request): (BodyMode, bool),
        counting: Counting,
    ) -> Exchange {
        Exchange {
            ticket,
            conn,
            mode,
            head_request,
            written: 0,
            phase: Phase::Head,
            interim: 0,
            body: Body::new(Framing::Empty),
            status: None,
            keep_alive: true,
            bytes: 0,
            head_at: None,
            first_byte_at: None,
            last_byte_at: None,
            end_at: None,
            sse: false,
            copying: Copying::Off,
            stream: Stream::default(),
            outcome: Outcome::Success,
            output_tokens: 0,
            output_source: TokenSource::None,
            usage_prompt: None,
            usage_reasoning: None,
            usage_cached: None,
            usage_output: None,
            counted_output: None,
            prompt_tokens: counting.prompt_tokens,
            tokenizer: counting.tokenizer,
            keep_text: counting.keep_text,
        }
    }

    /// How this exchange counts tokens (tests; the engine passes a [`Counting`] to
    /// [`Exchange::counted`]).
    #[cfg(test)]
    fn counting(mut self, prompt_tokens: Option<u32>, tokenizer: Option<Arc<Tokenizer>>) -> Self {
        self.prompt_tokens = prompt_tokens;
        self.tokenizer = tokenizer;
        self
    }

    pub fn ticket(&self) -> &Ticket {
        &self.ticket
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether any byte of a response came back (a request that got none may be retried).
    pub fn got_bytes(&self) -> bool {
        self.bytes > 0
    }

    /// Takes the `n` bytes just read into `mem.space()`, read at `now`.
    #[inline(always)]
    pub fn feed(
        &mut self,
        mem: &mut Scratch,
        n: usize,
        now: Instant,
        sink: &mut impl Sink,
    ) -> Step {
        self.bytes += n as u64;
        self.last_byte_at = Some(now);
        let (start, end) = match self.phase {
            Phase::Head => {
                mem.kept += n;
                match self.parse_heads(mem, now) {
                    Ok(Some(start)) => {
                        let end = mem.kept;
                        mem.kept = 0;
                        (start, end)
                    }
                    Ok(None) => return Step::More,
                    Err(f) => return Step::Fail(f),
                }
            }
            Phase::Body => (0, n),
            // The lane takes a complete exchange off its connection, so this is never reached;
            // if it were, the bytes would be as unasked-for as any after a response.
            Phase::Done => return Step::Fail(Failure::Invalid("data after the response")),
        };
        self.feed_body(mem, start, end, now, sink)
    }

    /// The peer closed the connection (`close` says how): `Ok` if that completed the response
    /// (a close-delimited body), else the failure that names the cut. A close carries no byte, so
    /// it takes no timestamp: a close-delimited body ends at the read that brought its last byte.
    pub fn finish(
        &mut self,
        close: Close,
        mem: &mut Scratch,
        sink: &mut impl Sink,
    ) -> Result<(), Failure> {
        match self.phase {
            Phase::Head if self.bytes == 0 => Err(Failure::ClosedBeforeResponse),
            Phase::Head => Err(Failure::Invalid(
                "connection closed inside the response head",
            )),
            Phase::Body => match (self.body.eof(), self.last_byte_at) {
                (Err(e), _) => Err(Failure::Invalid(e.reason())),
                // Only a close-delimited body gets here, and its end is the close itself: a
                // close that TLS cannot vouch for may have cut it.
                (Ok(()), _) if close == Close::Truncated => Err(TLS_TRUNCATED),
                (Ok(()), Some(end)) => {
                    self.complete(end, mem, sink);
                    Ok(())
                }
                // The body phase follows a head, so some byte came; were it not so, there would
                // be no response to time.
                (Ok(()), None) => Err(Failure::ClosedBeforeResponse),
            },
            Phase::Done => Err(Failure::Invalid("data after the response")),
        }
    }

    /// The record of the response this exchange completed (after [`Step::Complete`]), with the
    /// gaps before its content chunks (`mem`: the scratch memory it was fed through).
    #[inline(always)]
    pub fn completed<'m>(&self, thread: u32, mem: &'m Scratch) -> (Completed, &'m [ChunkGap]) {
        // A complete exchange always has its end; the dispatch stands in should that ever break.
        let ended = self.end_at.unwrap_or(self.ticket.dispatch);
        let c = self.record(thread, self.outcome, self.end_at, ended);
        (c, &mem.gaps)
    }

    /// The record of this exchange failing with `f` (a [`Step::Fail`], a timeout, a write error):
    /// no complete response, so no timings are recorded from it. `at`: when the failure was seen.
    pub fn failed(&self, f: Failure, thread: u32, at: Instant) -> Completed {
        self.record(thread, Outcome::Failed(f), None, at)
    }

    #[inline(always)]
    fn record(
        &self,
        thread: u32,
        outcome: Outcome,
        end_at: Option<Instant>,
        ended: Instant,
    ) -> Completed {
        let t = &self.ticket;
        let success = outcome == Outcome::Success;
        let (input_tokens, input_source) = match (
            self.stream.usage_prompt.or(self.usage_prompt),
            self.prompt_tokens,
        ) {
            _ if !success => (None, TokenSource::None),
            (Some(n), _) => (Some(n), TokenSource::Usage),
            (None, Some(n)) => (Some(u64::from(n)), TokenSource::Tokenizer),
            (None, None) => (None, TokenSource::None),
        };
        Completed {
            index: t.index,
            thread,
            conn: self.conn,
            intended: t.intended,
            dispatch: Some(t.dispatch),
            head_at: self.head_at,
            first_byte_at: self.first_byte_at,
            first_token_at: self.stream.first_token_at,
            first_reasoning_at: self.stream.first_reasoning_at,
            first_content_at: self.stream.first_content_at,
            first_tool_call_at: self.stream.first_tool_call_at,
            end_at,
            ended,
            status: self.status,
            outcome,
            bytes: self.bytes,
            output_tokens: if success { self.output_tokens } else { 0 },
            output_source: if success {
                self.output_source
            } else {
                TokenSource::None
            },
            said: if success {
                Said {
                    reasoning_tokens: self.stream.usage_reasoning.or(self.usage_reasoning),
                    cached_tokens: self.stream.usage_cached.or(self.usage_cached),
                    prompt: Pair {
                        server: self.stream.usage_prompt.or(self.usage_prompt),
                        pacer: self.prompt_tokens.map(u64::from),
                    },
                    output: Pair {
                        server: self.stream.usage_tokens.or(self.usage_output),
                        pacer: self.counted_output,
                    },
                }
            } else {
                Said::default()
            },
            input_tokens,
            input_source,
            server_ttft: if self.mode == BodyMode::Sse {
                self.stream.server_ttft
            } else {
                None
            },
            server_tpot: if self.mode == BodyMode::Sse {
                self.stream.server_tpot
            } else {
                None
            },
            retried: t.retried,
            token_gaps: u32::try_from(self.stream.token_events.saturating_sub(1))
                .unwrap_or(u32::MAX),
            token_gaps_coalesced: self.stream.coalesced,
        }
    }

    /// Parses heads at the start of `mem.buf[..mem.kept]`, skipping 1xx ones. `Some(len)`: the
    /// final head is complete and the body starts at `len`.
    #[inline(always)]
    fn parse_heads(&mut self, mem: &mut Scratch, now: Instant) -> Result<Option<usize>, Failure> {
        loop {
            match parse_head(&mem.buf[..mem.kept], self.head_request) {
                Ok(None) => return Ok(None),
                Err(e) => return Err(Failure::Invalid(e.reason())),
                Ok(Some(h)) if h.interim => {
                    // 100 Continue and friends: the final response follows, after a few.
                    self.interim += 1;
                    if self.interim > MAX_INTERIM_RESPONSES {
                        return Err(Failure::Invalid(ResponseError::TooManyInterim.reason()));
                    }
                    mem.buf.copy_within(h.len..mem.kept, 0);
                    mem.kept -= h.len;
                }
                Ok(Some(h)) => {
                    self.phase = Phase::Body;
                    self.status = Some(h.status);
                    self.keep_alive = h.keep_alive;
                    self.head_at = Some(now);
                    self.stream.server_ttft = h.server_ttft;
                    self.stream.server_tpot = None;
                    self.body.reset(h.framing);
                    mem.gaps.clear();
                    let ok = (200..300).contains(&h.status);
                    match self.mode {
                        BodyMode::Plain => {}
                        BodyMode::Sse => {
                            self.sse = ok;
                            if ok {
                                mem.sse.reset();
                                mem.text.clear();
                            }
                        }
                        BodyMode::WholeJson => {
                            self.copying = Copying::On;
                            mem.copy.clear();
                            mem.whole_text.clear();
                        }
                    }
                    return Ok(Some(h.len));
                }
            }
        }
    }

    /// Body bytes at `mem.buf[start..end]`, read at `now`.
    #[inline(always)]
    fn feed_body(
        &mut self,
        mem: &mut Scratch,
        start: usize,
        end: usize,
        now: Instant,
        sink: &mut impl Sink,
    ) -> Step {
        let Scratch {
            buf,
            sse: parser,
            copy,
            text,
            gaps,
            ..
        } = mem;
        let data = &buf[start..end];
        if !data.is_empty() && self.first_byte_at.is_none() {
            self.first_byte_at = Some(now);
        }
        let Exchange {
            body,
            sse,
            copying,
            stream,
            tokenizer,
            keep_text,
            ..
        } = self;
        let tokenizer = tokenizer.as_deref();
        // The answer's text is kept for the tokenizer to count, or for a session's history.
        let keep_text = *keep_text || tokenizer.is_some();
        let mut sse_error = None;
        let fed = body.feed(data, |chunk| {
            if *sse {
                if stream.first_byte.is_none() {
                    stream.first_byte = chunk.first().copied();
                }
                if let Err(e) = parser.feed(chunk, |event| {
                    let text = keep_text.then_some(&mut *text);
                    stream.on_event(event, now, tokenizer, text, gaps, sink)
                }) {
                    sse_error = Some(e);
                }
            } else if *copying == Copying::On {
                if copy.len() + chunk.len() <= BODY_COPY_CAP {
                    copy.extend_from_slice(chunk);
                } else {
                    // A gap would leave JSON that might still parse into something wrong.
                    *copying = Copying::Overflowed;
                    copy.clear();
                }
            }
        });
        if let Some(e) = sse_error
            && stream.failure.is_none()
        {
            stream.failure = Some(Failure::Stream(e.reason()));
        }
        match fed {
            Err(e) => Step::Fail(Failure::Invalid(e.reason())),
            Ok(f) if f.done => {
                let reuse = self.keep_alive && f.consumed == end - start;
                self.complete(now, mem, sink);
                Step::Complete { reuse }
            }
            Ok(_) => Step::More,
        }
    }

    /// The response ended at `end`: decide its outcome.
    #[inline(always)]
    fn complete(&mut self, end: Instant, mem: &mut Scratch, sink: &mut impl Sink) {
        self.phase = Phase::Done;
        self.end_at = Some(end);
        let status = self.status.unwrap_or(0);
        self.outcome = if !(200..300).contains(&status) {
            Outcome::Status(status)
        } else {
            match self.mode {
                BodyMode::Plain => Outcome::Success,
                BodyMode::Sse => match self.stream.failure {
                    Some(f) => Outcome::Failed(f),
                    // A body without a single event was something else (a JSON answer to a
                    // server that ignores `stream`, an HTML error page): say what.
                    None if self.stream.events == 0 => Outcome::Failed(Failure::Invalid(
                        not_an_event_stream(self.stream.first_byte),
                    )),
                    // Without [DONE] a stream cannot be told from a truncated one.
                    None if !self.stream.done => {
                        Outcome::Failed(Failure::Stream("stream ended without [DONE]"))
                    }
                    None => {
                        let s = &self.stream;
                        // Counted even when usage gives the figure: the two are checked.
                        self.counted_output = count_text(self.tokenizer.as_deref(), &mem.text);
                        (self.output_tokens, self.output_source) =
                            output_count(s.usage_tokens, self.counted_output, Some(s.token_events));
                        Outcome::Success
                    }
                },
                BodyMode::WholeJson if self.copying == Copying::On => {
                    let tokenizer = self.tokenizer.as_deref();
                    let classified = match tokenizer {
                        None if !self.keep_text => {
                            classify_body(&mem.copy).map(|e| (e, ChunkText::default()))
                        }
                        _ => classify_body_text(&mem.copy),
                    };
                    match classified {
                        Ok((Event::Error(msg), _)) => Outcome::Failed(sink.server_error(msg)),
                        Ok((Event::Chunk(c), text)) => {
                            let text: String = text.parts().collect();
                            self.counted_output = count_text(tokenizer, &text);
                            mem.whole_text = text;
                            (self.output_tokens, self.output_source) =
                                output_count(c.completion_tokens, self.counted_output, None);
                            self.usage_prompt = c.prompt_tokens;
                            self.usage_output = c.completion_tokens;
                            self.usage_reasoning = c.reasoning_tokens;
                            self.usage_cached = c.cached_tokens;
                            Outcome::Success
                        }
                        // Not JSON, or [DONE]: a 2xx all the same, without a token count.
                        _ => Outcome::Success,
                    }
                }
                BodyMode::WholeJson => Outcome::Success,
            }
        };
    }
}

/// What a streaming request got instead of events, from the body's first byte.
fn not_an_event_stream(first: Option<u8>) -> &'static str {
    match first {
        Some(b'{' | b'[') => "not an event stream (a JSON body)",
        Some(b'<') => "not an event stream (an HTML body)",
        None => "not an event stream (an empty body)",
        Some(_) => "not an event stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const FIXTURE: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/completions_stream_chunked.http"
    ));

    /// The server messages the exchange named as it went.
    #[derive(Default)]
    struct Seen {
        messages: Vec<String>,
    }

    impl Sink for Seen {
        fn server_error(&mut self, message: String) -> Failure {
            self.messages.push(message);
            Failure::StreamMessage((self.messages.len() - 1) as u16)
        }
    }

    /// An exchange with its scratch memory and sink, on a made-up clock starting at `t0`.
    struct Run {
        ex: Exchange,
        mem: Scratch,
        seen: Seen,
        t0: Instant,
    }

    impl Run {
        fn new(mode: BodyMode, head_request: bool) -> Run {
            let t0 = Instant::now();
            let ticket = Ticket {
                index: 7,
                serial: 1,
                intended: t0,
                dispatch: t0,
                retried: false,
            };
            Run {
                ex: Exchange::new(ticket, 3, mode, head_request),
                mem: Scratch::new(),
                seen: Seen::default(),
                t0,
            }
        }

        fn at(&self, us: u64) -> Instant {
            self.t0 + Duration::from_micros(us)
        }

        /// One socket read of `bytes` at `t0 + us`. Reads are as large as the buffer's room, as
        /// on a socket, so a longer slice arrives as several reads at the same instant.
        fn read(&mut self, bytes: &[u8], us: u64) -> Step {
            let now = self.at(us);
            let mut rest = bytes;
            loop {
                let space = self.mem.space().expect("room to read");
                let n = rest.len().min(space.len());
                space[..n].copy_from_slice(&rest[..n]);
                rest = &rest[n..];
                let step = self.ex.feed(&mut self.mem, n, now, &mut self.seen);
                if rest.is_empty() || step != Step::More {
                    return step;
                }
            }
        }

        fn close(&mut self, close: Close) -> Result<(), Failure> {
            self.ex.finish(close, &mut self.mem, &mut self.seen)
        }

        fn record(&self) -> Completed {
            self.ex.completed(0, &self.mem).0
        }

        /// The gaps handed out with the record, to the microsecond.
        fn gaps(&self) -> Vec<Duration> {
            let (_, gaps) = self.ex.completed(0, &self.mem);
            gaps.iter()
                .map(|g| Duration::from_micros((g.secs * 1e6).round() as u64))
                .collect()
        }

        /// The tokens each gap's chunk carried.
        fn tokens(&self) -> Vec<u64> {
            let (_, gaps) = self.ex.completed(0, &self.mem);
            gaps.iter().map(|g| g.tokens).collect()
        }
    }

    /// Offsets (in the fixture) of the byte that completes each SSE event: the second `\n` of
    /// its blank line. Chunk framing uses CRLF, so `\n\n` only ends events.
    fn event_ends(wire: &[u8]) -> Vec<usize> {
        wire.windows(2)
            .enumerate()
            .filter(|(_, w)| *w == b"\n\n")
            .map(|(i, _)| i + 1)
            .collect()
    }

    fn head_len(wire: &[u8]) -> usize {
        wire.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4
    }

    #[test]
    fn fixture_at_every_split_point_records_exact_times() {
        let ends = event_ends(FIXTURE);
        assert_eq!(ends.len(), 22, "21 JSON events and [DONE]");
        let tokens = &ends[..20];
        let head = head_len(FIXTURE);
        for k in 1..FIXTURE.len() {
            let mut r = Run::new(BodyMode::Sse, false);
            // The first read at t0 + 1 ms, the second at t0 + 2 ms.
            assert_eq!(r.read(&FIXTURE[..k], 1000), Step::More, "split {k}");
            let step = r.read(&FIXTURE[k..], 2000);
            assert_eq!(step, Step::Complete { reuse: false }, "split {k}");
            let at = |offset: usize| r.at(if offset < k { 1000 } else { 2000 });
            let c = r.record();
            assert_eq!(c.outcome, Outcome::Success, "split {k}");
            assert_eq!(c.status, Some(200));
            assert_eq!(c.head_at, Some(at(head - 1)), "split {k}");
            assert_eq!(c.first_byte_at, Some(at(head)), "split {k}");
            assert_eq!(c.first_token_at, Some(at(tokens[0])), "split {k}");
            // The token events of each read are one chunk: one gap of 1 ms, carried by the
            // tokens of the second read, when both reads have some; the other gaps were read
            // together and are counted as such, not measured as 0.
            let late = tokens.iter().filter(|&&t| t >= k).count() as u64;
            let (gaps, carried) = if late == 0 || late == 20 {
                (vec![], vec![])
            } else {
                (vec![Duration::from_millis(1)], vec![late])
            };
            assert_eq!(r.gaps(), gaps, "split {k}");
            assert_eq!(r.tokens(), carried, "split {k}");
            assert_eq!(c.token_gaps, 19);
            assert_eq!(c.token_gaps_coalesced, 19 - gaps.len() as u32, "split {k}");
            assert_eq!(c.end_at, Some(r.at(2000)));
            assert_eq!(
                c.output_tokens, 20,
                "no usage event: the token events count"
            );
            assert_eq!(c.bytes, FIXTURE.len() as u64);
            assert_eq!((c.index, c.conn, c.dispatch), (7, 3, Some(r.t0)));
        }
    }

    #[test]
    fn fixture_byte_by_byte_times_every_token_at_its_own_byte() {
        let mut r = Run::new(BodyMode::Sse, false);
        let (last, rest) = FIXTURE.split_last().unwrap();
        for (i, b) in rest.iter().enumerate() {
            assert_eq!(r.read(&[*b], i as u64), Step::More, "byte {i}");
        }
        let end = rest.len() as u64;
        assert_eq!(r.read(&[*last], end), Step::Complete { reuse: false });
        let ends = event_ends(FIXTURE);
        let c = r.record();
        assert_eq!(c.head_at, Some(r.at(head_len(FIXTURE) as u64 - 1)));
        assert_eq!(c.first_byte_at, Some(r.at(head_len(FIXTURE) as u64)));
        assert_eq!(c.first_token_at, Some(r.at(ends[0] as u64)));
        let gaps: Vec<Duration> = ends[..20]
            .windows(2)
            .map(|w| Duration::from_micros((w[1] - w[0]) as u64))
            .collect();
        assert_eq!(r.gaps(), gaps);
        assert_eq!((c.token_gaps, c.token_gaps_coalesced), (19, 0));
        assert_eq!(c.end_at, Some(r.at(end)));
    }

    #[test]
    fn interim_heads_are_skipped_at_every_split() {
        let wire = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n\
                     HTTP/1.1 201 Created\r\nContent-Length: 5\r\n\r\nhello";
        let final_head_end = wire.len() - 5;
        for k in 1..wire.len() {
            let mut r = Run::new(BodyMode::Plain, false);
            assert_eq!(r.read(&wire[..k], 10), Step::More, "split {k}");
            assert_eq!(r.read(&wire[k..], 20), Step::Complete { reuse: true });
            let c = r.record();
            assert_eq!((c.status, c.outcome), (Some(201), Outcome::Success));
            let head_at = if final_head_end <= k { 10 } else { 20 };
            assert_eq!(c.head_at, Some(r.at(head_at)), "split {k}");
            assert_eq!(c.end_at, Some(r.at(20)));
        }
    }

    #[test]
    fn endless_interim_heads_fail_past_the_bound() {
        let hint: &[u8] = b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n";
        let done: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        let bound = MAX_INTERIM_RESPONSES as usize;
        // As many as the bound, then the final answer: fine, in one read or one head a read.
        let mut wire = hint.repeat(bound);
        wire.extend_from_slice(done);
        let mut r = Run::new(BodyMode::Plain, false);
        assert_eq!(r.read(&wire, 10), Step::Complete { reuse: true });
        assert_eq!(r.record().outcome, Outcome::Success);
        let mut r = Run::new(BodyMode::Plain, false);
        for k in 0..bound {
            assert_eq!(r.read(hint, k as u64), Step::More);
        }
        assert_eq!(r.read(done, 99), Step::Complete { reuse: true });
        // One more fails at once, however they were split across reads.
        let too_many = Step::Fail(Failure::Invalid("too many interim responses"));
        let mut r = Run::new(BodyMode::Plain, false);
        assert_eq!(r.read(&hint.repeat(bound + 1), 10), too_many);
        let mut r = Run::new(BodyMode::Plain, false);
        for k in 0..bound {
            assert_eq!(r.read(hint, k as u64), Step::More);
        }
        assert_eq!(r.read(b"HTTP/1.1 100 Continue\r\n\r\n", 99), too_many);
    }

    #[test]
    fn head_response_has_no_body_whatever_its_length_says() {
        let mut r = Run::new(BodyMode::Plain, true);
        let step = r.read(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", 5);
        assert_eq!(step, Step::Complete { reuse: true });
        let c = r.record();
        assert_eq!((c.head_at, c.end_at), (Some(r.at(5)), Some(r.at(5))));
        assert_eq!(c.first_byte_at, None);
    }

    #[test]
    fn close_delimited_body_ends_at_its_last_read() {
        let mut r = Run::new(BodyMode::Plain, false);
        assert_eq!(r.read(b"HTTP/1.1 200 OK\r\n\r\nab", 10), Step::More);
        assert_eq!(r.read(b"c", 20), Step::More);
        assert_eq!(r.close(Close::Clean), Ok(()));
        let c = r.record();
        assert_eq!(c.outcome, Outcome::Success);
        assert_eq!(c.first_byte_at, Some(r.at(10)));
        assert_eq!(c.end_at, Some(r.at(20)));
    }

    #[test]
    fn close_delimited_body_closed_without_close_notify_is_truncated() {
        let mut r = Run::new(BodyMode::Plain, false);
        assert_eq!(r.read(b"HTTP/1.1 200 OK\r\n\r\nabc", 10), Step::More);
        assert_eq!(r.close(Close::Truncated), Err(TLS_TRUNCATED));
        let c = r.ex.failed(TLS_TRUNCATED, 0, Instant::now());
        assert_eq!(c.end_at, None, "a failure is not timed");
        assert_eq!(c.head_at, Some(r.at(10)));
    }

    #[test]
    fn framed_bodies_cut_by_a_close_ended_early_however_the_close() {
        for close in [Close::Clean, Close::Truncated] {
            let mut r = Run::new(BodyMode::Plain, false);
            r.read(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 10);
            let early = Err(Failure::Invalid("body ended early"));
            assert_eq!(r.close(close), early);
            let mut r = Run::new(BodyMode::Plain, false);
            r.read(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc",
                10,
            );
            assert_eq!(r.close(close), early);
        }
    }

    #[test]
    fn a_close_before_or_inside_the_head_is_named() {
        for close in [Close::Clean, Close::Truncated] {
            let mut r = Run::new(BodyMode::Plain, false);
            assert!(!r.ex.got_bytes());
            assert_eq!(r.close(close), Err(Failure::ClosedBeforeResponse));
            let mut r = Run::new(BodyMode::Plain, false);
            r.read(b"HTTP/1.1 200", 5);
            assert!(r.ex.got_bytes());
            assert_eq!(
                r.close(close),
                Err(Failure::Invalid(
                    "connection closed inside the response head"
                ))
            );
        }
    }

    #[test]
    fn chunked_with_trailers_at_every_split() {
        let wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                     5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: 1\r\nX-More: 2\r\n\r\n";
        for k in 1..wire.len() {
            let mut r = Run::new(BodyMode::Plain, false);
            assert_eq!(r.read(&wire[..k], 10), Step::More, "split {k}");
            assert_eq!(r.read(&wire[k..], 20), Step::Complete { reuse: true });
            assert_eq!(r.record().end_at, Some(r.at(20)));
            assert_eq!(r.record().bytes, wire.len() as u64);
        }
    }

    #[test]
    fn bytes_after_a_complete_response_close_the_connection() {
        let mut r = Run::new(BodyMode::Plain, false);
        let step = r.read(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200",
            5,
        );
        assert_eq!(step, Step::Complete { reuse: false });
        assert_eq!(r.record().outcome, Outcome::Success);
        // Connection: close also ends the connection after a whole response.
        let mut r = Run::new(BodyMode::Plain, false);
        let step = r.read(
            b"HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            5,
        );
        assert_eq!(step, Step::Complete { reuse: false });
        assert_eq!(r.record().outcome, Outcome::Status(404));
    }

    #[test]
    fn malformed_heads_are_invalid_responses() {
        let mut r = Run::new(BodyMode::Plain, false);
        assert_eq!(
            r.read(b"HTPT/1.1 200 OK\r\n\r\n", 5),
            Step::Fail(Failure::Invalid("malformed status line"))
        );
    }

    #[test]
    fn a_large_head_grows_the_buffer_across_reads() {
        let mut wire = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..100 {
            wire.extend_from_slice(format!("X-Header-{i}: {}\r\n", "v".repeat(90)).as_bytes());
        }
        wire.extend_from_slice(b"Content-Length: 2\r\n\r\nok");
        assert!(wire.len() > 2 * INITIAL_READ_BUF);
        let mut r = Run::new(BodyMode::Plain, false);
        assert_eq!(r.read(&wire, 5), Step::Complete { reuse: true });
        assert!(r.mem.capacity() > INITIAL_READ_BUF);
    }

    /// A streaming body in one Content-Length-framed response, so the SSE tests below do not
    /// depend on chunking (the fixture test covers that).
    fn sse_response(events: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: {}\r\n\r\n{events}",
            events.len()
        )
        .into_bytes()
    }

    #[test]
    fn sse_events_split_across_reads_are_timed_when_they_complete() {
        let wire = sse_response(concat!(
            "data: {\"choices\":[{\"text\":\"a\"}]}\n\n",
            ": ping\n\n",
            "data: {\"choices\":[{\"text\":\"b\"}]}\r\n\r\n",
            "data: {\"choices\":[{\"text\":\"\"}]}\n\n",
            "data: {\"choices\":[{\"text\":\"c\"}]}\n\n",
            "data: [DONE]\n\n",
        ));
        let body = head_len(&wire);
        let first = wire.windows(2).position(|w| w == b"\n\n").unwrap() + 1;
        // Cut inside the second token event, then inside the third.
        let find = |pat: &[u8]| wire.windows(pat.len()).position(|w| w == pat).unwrap();
        let b_at = find(b"\"text\":\"b");
        let c_at = find(b"\"text\":\"c");
        let mut r = Run::new(BodyMode::Sse, false);
        assert_eq!(r.read(&wire[..b_at], 100), Step::More);
        assert_eq!(r.read(&wire[b_at..c_at], 250), Step::More);
        assert_eq!(r.read(&wire[c_at..], 600), Step::Complete { reuse: true });
        assert!(first < b_at && body < first);
        let c = r.record();
        assert_eq!(c.first_token_at, Some(r.at(100)));
        assert_eq!(
            r.gaps(),
            vec![Duration::from_micros(150), Duration::from_micros(350)]
        );
        assert_eq!((c.outcome, c.output_tokens), (Outcome::Success, 3));
    }

    #[test]
    fn token_events_read_together_are_one_chunk() {
        let ev = |t: &str| format!("data: {{\"choices\":[{{\"text\":\"{t}\"}}]}}\n\n");
        let events = [ev("a"), ev("b"), ev("c"), ev("d"), ev("e"), ev("f")].concat();
        let wire = sse_response(&(events + "data: [DONE]\n\n"));
        let find = |pat: &[u8]| wire.windows(pat.len()).position(|w| w == pat).unwrap();
        // a and b in the first read, c alone, then d, e, f and [DONE] in one late read.
        let (c_at, d_at) = (find(b"\"text\":\"c"), find(b"\"text\":\"d"));
        let mut r = Run::new(BodyMode::Sse, false);
        assert_eq!(r.read(&wire[..c_at], 100), Step::More);
        assert_eq!(r.read(&wire[c_at..d_at], 300), Step::More);
        assert_eq!(r.read(&wire[d_at..], 900), Step::Complete { reuse: true });
        let c = r.record();
        assert_eq!(c.first_token_at, Some(r.at(100)));
        // b joins a's chunk (no gap of 0); d, e and f share the 600 µs before their read.
        assert_eq!(
            r.gaps(),
            [Duration::from_micros(200), Duration::from_micros(600)]
        );
        assert_eq!(r.tokens(), [1, 3]);
        assert_eq!((c.token_gaps, c.token_gaps_coalesced), (5, 3));
        assert_eq!(c.output_tokens, 6);
        // The next response on the connection starts with no gaps.
        let mut next = Exchange::new(*r.ex.ticket(), 3, BodyMode::Sse, false);
        let at = r.at(950);
        let step = next.feed_all(&mut r.mem, &sse_response("data: [DONE]\n\n"), at);
        assert_eq!(step, Step::Complete { reuse: true });
        assert!(next.completed(0, &r.mem).1.is_empty());
    }

    impl Exchange {
        /// Feeds `bytes` as one read at `now` (tests: the whole response fits the buffer).
        fn feed_all(&mut self, mem: &mut Scratch, bytes: &[u8], now: Instant) -> Step {
            let space = mem.space().expect("room");
            space[..bytes.len()].copy_from_slice(bytes);
            self.feed(mem, bytes.len(), now, &mut Seen::default())
        }
    }

    #[test]
    fn usage_event_gives_the_token_count_and_server_time() {
        let wire = sse_response(concat!(
            "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n",
            "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n",
            "data: {\"choices\":[],\"usage\":{\"completion_tokens\":7},",
            "\"perf_metrics\":{\"fireworks-server-time-to-first-token\":0.25}}\n\n",
            "data: [DONE]\n\n",
        ));
        let mut r = Run::new(BodyMode::Sse, false);
        assert_eq!(r.read(&wire, 9), Step::Complete { reuse: true });
        let c = r.record();
        assert_eq!(c.outcome, Outcome::Success);
        assert_eq!(c.output_tokens, 7, "usage wins over the one token event");
        assert_eq!(c.server_ttft, Some(0.25));
        assert_eq!(c.first_token_at, Some(r.at(9)));
        assert!(r.gaps().is_empty());
    }

    /// A word-level tokenizer that splits on whitespace only: a text's tokens are its words.
    fn words_tokenizer() -> Arc<Tokenizer> {
        let mut vocab = serde_json::Map::new();
        vocab.insert("[UNK]".into(), serde_json::json!(0));
        for w in ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"] {
            let id = vocab.len();
            vocab.insert(w.into(), serde_json::json!(id));
        }
        let json = serde_json::json!({
            "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
            "normalizer": null, "pre_tokenizer": {"type": "WhitespaceSplit"},
            "post_processor": null, "decoder": null,
            "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"}
        });
        Arc::new(Tokenizer::from_bytes(json.to_string().as_bytes(), "words.json").unwrap())
    }

    /// Content events carrying `texts`, each read at `t0 + 100 µs × k`, then `tail`.
    fn chunked_stream(r: &mut Run, texts: &[&str], usage: &[Option<u64>], tail: &str) -> Step {
        let mut events = String::new();
        for (text, u) in texts.iter().zip(usage) {
            let usage = u.map_or(String::new(), |n| {
                format!(r#","usage":{{"prompt_tokens":4,"completion_tokens":{n}}}"#)
            });
            events.push_str(&format!(
                "data: {{\"choices\":[{{\"text\":\"{text}\"}}]{usage}}}\n\n"
            ));
        }
        events.push_str(tail);
        let wire = sse_response(&events);
        // Split just after each event's blank line, so each is read at its own instant.
        let mut cuts: Vec<usize> = wire
            .windows(2)
            .enumerate()
            .filter(|(_, w)| *w == b"\n\n")
            .map(|(i, _)| i + 2)
            .collect();
        cuts.truncate(texts.len());
        let mut from = 0;
        let mut step = Step::More;
        for (k, &cut) in cuts.iter().enumerate() {
            step = r.read(&wire[from..cut], 100 * (k as u64 + 1));
            from = cut;
        }
        if from < wire.len() {
            step = r.read(&wire[from..], 100 * (cuts.len() as u64 + 1));
        }
        step
    }

    #[test]
    fn each_chunk_counts_its_tokens_by_usage_growth_or_the_tokenizer() {
        let texts = [" a b c", " d e f", " g h i", " j"];
        // Usage with every chunk (vLLM's continuous_usage_stats): its growth, no tokenizer.
        let mut r = Run::new(BodyMode::Sse, false);
        let usage = [Some(3), Some(6), Some(9), Some(10)];
        let step = chunked_stream(&mut r, &texts, &usage, "data: [DONE]\n\n");
        assert_eq!(step, Step::Complete { reuse: true });
        assert_eq!(r.tokens(), [3, 3, 1]);
        assert_eq!(r.gaps(), vec![Duration::from_micros(100); 3]);
        let c = r.record();
        assert_eq!((c.output_tokens, c.output_source), (10, TokenSource::Usage));
        assert_eq!(
            (c.input_tokens, c.input_source),
            (Some(4), TokenSource::Usage)
        );

        // A tokenizer counts each chunk's text, and the whole text when no usage comes.
        let mut r = Run::new(BodyMode::Sse, false);
        r.ex = Exchange::new(r.ex.ticket, 3, BodyMode::Sse, false)
            .counting(Some(12), Some(words_tokenizer()));
        chunked_stream(&mut r, &texts, &[None; 4], "data: [DONE]\n\n");
        assert_eq!(r.tokens(), [3, 3, 1]);
        let c = r.record();
        assert_eq!(
            (c.output_tokens, c.output_source),
            (10, TokenSource::Tokenizer)
        );
        assert_eq!(
            (c.input_tokens, c.input_source),
            (Some(12), TokenSource::Tokenizer),
            "the plan's count stands in for the server's"
        );

        // The server's final usage wins over the tokenizer's count.
        let mut r = Run::new(BodyMode::Sse, false);
        r.ex = Exchange::new(r.ex.ticket, 3, BodyMode::Sse, false)
            .counting(Some(12), Some(words_tokenizer()));
        let tail = "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":11}}\n\ndata: [DONE]\n\n";
        chunked_stream(&mut r, &texts, &[None; 4], tail);
        let c = r.record();
        assert_eq!((c.output_tokens, c.output_source), (11, TokenSource::Usage));
        assert_eq!(
            (c.input_tokens, c.input_source),
            (Some(5), TokenSource::Usage)
        );

        // Neither: one token per chunk, token events for the output, no input count.
        let mut r = Run::new(BodyMode::Sse, false);
        chunked_stream(&mut r, &texts, &[None; 4], "data: [DONE]\n\n");
        assert_eq!(r.tokens(), [1, 1, 1]);
        let c = r.record();
        assert_eq!((c.output_tokens, c.output_source), (4, TokenSource::Events));
        assert_eq!((c.input_tokens, c.input_source), (None, TokenSource::None));

        // A failed request counts nothing.
        let mut r = Run::new(BodyMode::Sse, false);
        chunked_stream(&mut r, &texts, &usage, "");
        let c = r.record();
        assert!(matches!(c.outcome, Outcome::Failed(_)));
        assert_eq!((c.output_tokens, c.input_tokens), (0, None));
    }

    #[test]
    fn whole_json_bodies_count_prompt_and_answer() {
        let body = br#"{"choices":[{"text":"a b c"}],"usage":{"prompt_tokens":7}}"#;
        let mut r = Run::new(BodyMode::WholeJson, false);
        r.ex = Exchange::new(r.ex.ticket, 3, BodyMode::WholeJson, false)
            .counting(Some(2), Some(words_tokenizer()));
        r.read(&json_response(body), 3);
        let c = r.record();
        assert_eq!(
            (c.output_tokens, c.output_source),
            (3, TokenSource::Tokenizer)
        );
        assert_eq!(
            (c.input_tokens, c.input_source),
            (Some(7), TokenSource::Usage)
        );
        // Without a tokenizer or usage, a whole body has no count.
        let mut r = Run::new(BodyMode::WholeJson, false);
        r.read(&json_response(br#"{"choices":[{"text":"a b c"}]}"#), 3);
        let c = r.record();
        assert_eq!((c.output_tokens, c.output_source), (0, TokenSource::None));
    }

    #[test]
    fn an_error_event_under_200_names_the_servers_message() {
        let wire = sse_response(concat!(
            "data: {\"choices\":[{\"text\":\"a\"}]}\n\n",
            "data: {\"error\":{\"message\":\"mock overloaded\"}}\n\n",
            "data: {\"error\":{\"message\":\"second\"}}\n\n",
            "data: [DONE]\n\n",
        ));
        let mut r = Run::new(BodyMode::Sse, false);
        assert_eq!(r.read(&wire, 9), Step::Complete { reuse: true });
        let c = r.record();
        assert_eq!(c.outcome, Outcome::Failed(Failure::StreamMessage(0)));
        assert_eq!(r.seen.messages, vec!["mock overloaded".to_string()]);
        assert_eq!(c.output_tokens, 0);
        assert_eq!(c.end_at, Some(r.at(9)), "a complete response is timed");
    }

    #[test]
    fn a_stream_without_done_is_an_error() {
        let wire = sse_response("data: {\"choices\":[{\"text\":\"a\"}]}\n\n");
        let mut r = Run::new(BodyMode::Sse, false);
        assert_eq!(r.read(&wire, 9), Step::Complete { reuse: true });
        assert_eq!(
            r.record().outcome,
            Outcome::Failed(Failure::Stream("stream ended without [DONE]"))
        );
        let mut r = Run::new(BodyMode::Sse, false);
        r.read(&sse_response("data: {not json}\n\ndata: [DONE]\n\n"), 9);
        assert_eq!(
            r.record().outcome,
            Outcome::Failed(Failure::Stream("invalid JSON in event"))
        );
    }

    #[test]
    fn a_json_answer_to_a_stream_says_it_was_not_an_event_stream() {
        // A server that ignores `stream` answers one JSON object: that is not a stream cut
        // short, and it said "stream ended without [DONE]".
        let mut r = Run::new(BodyMode::Sse, false);
        let wire = json_response(br#"{"choices":[{"text":"a b c"}]}"#);
        assert_eq!(r.read(&wire, 9), Step::Complete { reuse: true });
        assert_eq!(
            r.record().outcome,
            Outcome::Failed(Failure::Invalid("not an event stream (a JSON body)"))
        );
        let mut r = Run::new(BodyMode::Sse, false);
        r.read(&json_response(b"<html>busy</html>"), 9);
        assert_eq!(
            r.record().outcome,
            Outcome::Failed(Failure::Invalid("not an event stream (an HTML body)"))
        );
    }

    #[test]
    fn a_non_2xx_stream_is_its_status_and_not_parsed() {
        let wire = b"HTTP/1.1 429 Too Many Requests\r\nContent-Length: 10\r\n\r\ndata: x\n\n\n";
        let mut r = Run::new(BodyMode::Sse, false);
        assert_eq!(r.read(wire, 9), Step::Complete { reuse: true });
        let c = r.record();
        assert_eq!((c.outcome, c.status), (Outcome::Status(429), Some(429)));
        assert_eq!(c.first_token_at, None);
    }

    fn json_response(body: &[u8]) -> Vec<u8> {
        let mut wire =
            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        wire.extend_from_slice(body);
        wire
    }

    #[test]
    fn whole_json_bodies_give_usage_or_the_servers_error() {
        let mut r = Run::new(BodyMode::WholeJson, false);
        let body = br#"{"choices":[{"text":"hi"}],"usage":{"completion_tokens":12}}"#;
        let wire = json_response(body);
        // Split inside the body: the copy joins the reads.
        assert_eq!(r.read(&wire[..wire.len() - 9], 3), Step::More);
        assert_eq!(
            r.read(&wire[wire.len() - 9..], 4),
            Step::Complete { reuse: true }
        );
        assert_eq!(
            (r.record().outcome, r.record().output_tokens),
            (Outcome::Success, 12)
        );

        let mut r = Run::new(BodyMode::WholeJson, false);
        r.read(&json_response(br#"{"error":"quota exceeded"}"#), 3);
        assert_eq!(
            r.record().outcome,
            Outcome::Failed(Failure::StreamMessage(0))
        );
        assert_eq!(r.seen.messages, vec!["quota exceeded".to_string()]);
    }

    #[test]
    fn a_body_past_the_copy_cap_is_a_success_without_a_count() {
        // Valid JSON with a usage member at the end, one byte past the cap.
        let head = br#"{"usage":{"completion_tokens":5},"pad":""#;
        let mut body = head.to_vec();
        body.resize(BODY_COPY_CAP - 1, b'x');
        body.extend_from_slice(b"\"}");
        assert_eq!(body.len(), BODY_COPY_CAP + 1);
        let mut r = Run::new(BodyMode::WholeJson, false);
        assert_eq!(
            r.read(&json_response(&body), 3),
            Step::Complete { reuse: true }
        );
        let c = r.record();
        assert_eq!((c.outcome, c.output_tokens), (Outcome::Success, 0));
        // The same body at the cap is read.
        body.truncate(BODY_COPY_CAP - 2);
        body.extend_from_slice(b"\"}");
        let mut r = Run::new(BodyMode::WholeJson, false);
        r.read(&json_response(&body), 3);
        assert_eq!(r.record().output_tokens, 5);
    }

    #[test]
    fn plain_mode_does_not_look_inside_the_body() {
        let mut r = Run::new(BodyMode::Plain, false);
        r.read(&json_response(br#"{"error":"x"}"#), 3);
        assert_eq!(r.record().outcome, Outcome::Success);
        assert!(r.seen.messages.is_empty());
    }
}
