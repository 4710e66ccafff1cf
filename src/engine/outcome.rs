//! How a request ended. [`Failure`] is a small `Copy` value with a static name: the lane counts
//! failures in a map without allocating, and the report turns them into the contract's error
//! names once, at the end. [`Completed`] is the one record every scheduled request ends as,
//! whatever its fate; the thread's statistics take nothing else.

use std::io;
use std::time::Instant;

use super::sys;
use super::tokens::Said;

/// A request that did not get a usable response. `name` gives the report's stable text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Failure {
    Timeout,
    Refused,
    Reset,
    ClosedBeforeResponse,
    /// The host did not resolve; the name carries the host.
    Dns,
    /// Waited `timeout` past its intended time for a free connection; the name carries `num_workers`.
    NotSent,
    /// Still waiting to be sent when the run was stopped early.
    Interrupted,
    /// A session's turn due when the run's duration was over (`--sessions`).
    RunEnded,
    /// A session's turn after one that failed: the session ended there (`--sessions`).
    SessionEnded,
    Tls(&'static str),
    Invalid(&'static str),
    Stream(&'static str),
    /// A server's own error message in the stream, interned per thread (index into its table).
    StreamMessage(u16),
    Connect(&'static str),
}

/// A TLS peer closed without `close_notify` while the body was delimited by the close: its end
/// cannot be told from a cut, so the response is not counted as whole.
pub const TLS_TRUNCATED: Failure = Failure::Tls("truncated");

impl Failure {
    /// The report's name. `host` and `workers` fill the two names that carry them; `messages` is the
    /// thread's table of interned stream error messages.
    pub fn name(self, host: &str, workers: usize, messages: &[Box<str>]) -> String {
        match self {
            Failure::Timeout => "timeout".into(),
            Failure::Refused => "connection refused".into(),
            Failure::Reset => "connection reset".into(),
            Failure::ClosedBeforeResponse => "connection closed before response".into(),
            Failure::Dns => format!("dns: {host}"),
            Failure::NotSent => format!("not sent: all {workers} workers busy"),
            Failure::Interrupted => "not sent: interrupted".into(),
            Failure::RunEnded => "not sent: run ended".into(),
            Failure::SessionEnded => "not sent: session ended".into(),
            Failure::Tls(reason) => format!("tls: {reason}"),
            Failure::Invalid(reason) => format!("invalid response: {reason}"),
            Failure::Stream(reason) => format!("stream error: {reason}"),
            Failure::StreamMessage(i) => match messages.get(usize::from(i)) {
                Some(m) => format!("stream error: {m}"),
                None => "stream error: (message lost)".into(),
            },
            Failure::Connect(reason) => format!("connect error: {reason}"),
        }
    }

    /// Classifies a socket error seen while connecting, reading or writing.
    pub fn from_io(e: &io::Error) -> Failure {
        use io::ErrorKind as K;
        match e.kind() {
            K::ConnectionRefused => Failure::Refused,
            K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => Failure::Reset,
            K::TimedOut => Failure::Timeout,
            K::UnexpectedEof => Failure::ClosedBeforeResponse,
            K::AddrNotAvailable => Failure::Connect("address not available (out of local ports?)"),
            K::NetworkUnreachable => Failure::Connect("network unreachable"),
            K::HostUnreachable => Failure::Connect("host unreachable"),
            K::PermissionDenied => Failure::Connect("permission denied"),
            _ if sys::is_out_of_files(e) => {
                Failure::Connect("too many open files (raise ulimit -n)")
            }
            _ => Failure::Connect("i/o error"),
        }
    }
}

/// Which bucket a request ends in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A complete 2xx response (and, for an LLM run, a stream or body without an error).
    Success,
    /// A complete response with another status.
    Status(u16),
    /// A named failure: transport, protocol, stream error, timeout or not sent.
    Failed(Failure),
}

/// Where a request's token count came from, in the order they are preferred: the server's
/// `usage`, else the run's tokenizer over the prompt or the streamed text, else (output only)
/// the number of token events. `None`: not counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TokenSource {
    Usage,
    Tokenizer,
    Events,
    #[default]
    None,
}

impl TokenSource {
    pub const ALL: [TokenSource; 4] = [
        TokenSource::Usage,
        TokenSource::Tokenizer,
        TokenSource::Events,
        TokenSource::None,
    ];

    /// The report's word for it.
    pub fn name(self) -> &'static str {
        match self {
            TokenSource::Usage => "usage",
            TokenSource::Tokenizer => "tokenizer",
            TokenSource::Events => "events",
            TokenSource::None => "none",
        }
    }
}

/// The gap before one content chunk of a streamed response: seconds since the previous content
/// chunk's arrival, and the tokens this chunk carried (at least 1). A chunk is what arrived
/// together: the token events of one read are one chunk, whatever the server's framing, so a
/// late read makes fewer, longer-carrying chunks, never a gap of 0 (see `engine::exchange`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChunkGap {
    pub secs: f64,
    pub tokens: u64,
}

/// Everything measured about one scheduled request, built once when it ends. Every request of a
/// run becomes exactly one of these, and the thread's statistics are kept from them alone.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Completed {
    /// The request's global index (its place in the schedule; in closed loop, a count).
    pub index: u64,
    /// The engine thread that carried it.
    pub thread: u32,
    /// The connection it last went out on (a serial per thread, from 1); 0 if never sent.
    pub conn: u64,
    pub intended: Instant,
    /// When it was first handed to a connection (a retry keeps this); None if never sent.
    pub dispatch: Option<Instant>,
    /// The final (non-1xx) response head parsed complete.
    pub head_at: Option<Instant>,
    /// The first byte after the head.
    pub first_byte_at: Option<Instant>,
    /// The first SSE event carrying a token (of any kind).
    pub first_token_at: Option<Instant>,
    /// The first SSE event carrying a token of each kind: reasoning, the answer's own text, a
    /// tool call (`llm::ChunkInfo`).
    pub first_reasoning_at: Option<Instant>,
    pub first_content_at: Option<Instant>,
    pub first_tool_call_at: Option<Instant>,
    /// The last byte of a complete response; None when no complete response came, and then no
    /// timing of the request is recorded (transport failures are not timed).
    pub end_at: Option<Instant>,
    /// When the request reached its bucket: the last byte of a complete response (`end_at`), the
    /// moment its failure was seen, or when it was given up as not sent. Every request has one,
    /// so a timeline can place each ending and a per-request export can say when it ended.
    pub ended: Instant,
    /// The final status, when a head came.
    pub status: Option<u16>,
    pub outcome: Outcome,
    /// Response bytes received (heads and body, after TLS).
    pub bytes: u64,
    /// Output tokens of a successful LLM response, and where the count came from (usage, else the
    /// run's tokenizer over the streamed text, else token events).
    pub output_tokens: u64,
    pub output_source: TokenSource,
    /// What the server's usage said about the tokens of a success, beside pacer's own counts
    /// (reasoning tokens; prompt and output tokens checked against the tokenizer's).
    pub said: Said,
    /// Prompt tokens of a successful LLM response: the server's `usage.prompt_tokens`, else the
    /// run's tokenizer count of the prompt sent (made before the run), else none.
    pub input_tokens: Option<u64>,
    pub input_source: TokenSource,
    /// The server's own time to first token, seconds (streaming runs).
    pub server_ttft: Option<f64>,
    /// The server's own decode time per output token, seconds (streaming runs).
    pub server_tpot: Option<f64>,
    /// It was sent a second time after a stale keep-alive connection.
    pub retried: bool,
    /// Gaps between successive token events of the response (token events − 1, 0 without
    /// tokens), and how many of them joined two events that arrived in one read: those are not
    /// measured (the events are one chunk), and their share says how late the reads were.
    pub token_gaps: u32,
    pub token_gaps_coalesced: u32,
}

impl Completed {
    /// A request that never left: no connection, no timings; given up at `at`.
    pub fn unsent(
        index: u64,
        intended: Instant,
        thread: u32,
        why: Failure,
        at: Instant,
    ) -> Completed {
        Completed {
            index,
            thread,
            conn: 0,
            intended,
            dispatch: None,
            head_at: None,
            first_byte_at: None,
            first_token_at: None,
            first_reasoning_at: None,
            first_content_at: None,
            first_tool_call_at: None,
            end_at: None,
            ended: at,
            status: None,
            outcome: Outcome::Failed(why),
            bytes: 0,
            output_tokens: 0,
            output_source: TokenSource::None,
            said: Said::default(),
            input_tokens: None,
            input_source: TokenSource::None,
            server_ttft: None,
            server_tpot: None,
            retried: false,
            token_gaps: 0,
            token_gaps_coalesced: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_contract() {
        let msgs: Vec<Box<str>> = vec!["mock overloaded".into()];
        let n = |f: Failure| f.name("example.invalid", 5, &msgs);
        assert_eq!(n(Failure::Timeout), "timeout");
        assert_eq!(n(Failure::Refused), "connection refused");
        assert_eq!(n(Failure::Reset), "connection reset");
        assert_eq!(
            n(Failure::ClosedBeforeResponse),
            "connection closed before response"
        );
        assert_eq!(n(Failure::Dns), "dns: example.invalid");
        assert_eq!(n(Failure::NotSent), "not sent: all 5 workers busy");
        assert_eq!(n(Failure::Interrupted), "not sent: interrupted");
        assert_eq!(n(Failure::SessionEnded), "not sent: session ended");
        assert_eq!(n(TLS_TRUNCATED), "tls: truncated");
        assert_eq!(
            n(Failure::Tls("invalid certificate: unknown issuer")),
            "tls: invalid certificate: unknown issuer"
        );
        assert_eq!(
            n(Failure::Invalid("bad chunk size")),
            "invalid response: bad chunk size"
        );
        assert_eq!(
            n(Failure::StreamMessage(0)),
            "stream error: mock overloaded"
        );
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(Failure::from_io(&refused), Failure::Refused);
        for errno in [sys::EMFILE, sys::ENFILE] {
            assert_eq!(
                Failure::from_io(&io::Error::from_raw_os_error(errno)),
                Failure::Connect("too many open files (raise ulimit -n)")
            );
        }
    }
}
