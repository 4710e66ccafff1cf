//! What a mock serves: [`MockConfig`] and the [`Fault`] modes, with the pure rules over them (the
//! seeded 200/400 mix). No I/O here; the wire and the routes read these values.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::rng::SplitMix64;

/// What the mock answers and how fast.
#[derive(Clone, Debug)]
pub struct MockConfig {
    /// Share of `/` requests answered 400 instead of 200, like the original's dummy API.
    pub error_rate: f64,
    /// Seed of the 200/400 mix, which is deterministic per request ordinal.
    pub seed: u64,
    /// Fixed delay before answering `/`.
    pub delay: Duration,
    /// The 200 body of `/` (served as JSON).
    pub body: String,
    /// LLM: time from the end of the request to the first token event.
    pub ttft: Duration,
    /// LLM: gap between token events.
    pub itl: Duration,
    /// LLM: number of completion tokens (capped by the request's `max_tokens` when smaller).
    pub tokens: u32,
    /// LLM: tokens carried by each streamed content event (the last one carries the remainder), as
    /// a server that batches deltas or decodes speculatively sends them. 0 is taken as 1.
    pub tokens_per_chunk: u32,
    /// LLM: send a final usage event when the request asks `stream_options.include_usage`.
    pub usage: bool,
    /// LLM: the first tokens of an answer that are reasoning (chat: `delta.reasoning_content`;
    /// usage: `completion_tokens_details.reasoning_tokens`).
    pub reasoning_tokens: u32,
    /// LLM: a chat answer ends with a tool call (its last two tokens are `tool_calls` deltas).
    pub tool_call: bool,
    /// LLM: added to both counts of the usage the mock sends (a server that miscounts).
    pub usage_skew: i64,
    /// LLM: prompt tokens said to come from a prefix cache
    /// (`usage.prompt_tokens_details.cached_tokens`, at most the prompt's; sent when above 0).
    pub cached_tokens: u32,
    /// LLM: how a streamed answer reports the server's own timings (see [`ServerTimings`]).
    pub server_timings: ServerTimings,
    /// Serve HTTPS with a certificate signed by a CA generated at start.
    pub tls: bool,
    /// Apply this fault to every request, whatever the path.
    pub fault: Option<Fault>,
    /// LLM routes: write one JSON line per request to this file (its connection, chat messages,
    /// headers but `Authorization`), for tests of what a client sent.
    pub log_requests: Option<std::path::PathBuf>,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            error_rate: 0.2,
            seed: 42,
            delay: Duration::ZERO,
            body: r#"{"message":"ok"}"#.to_string(),
            ttft: Duration::from_millis(50),
            itl: Duration::from_millis(10),
            tokens: 20,
            tokens_per_chunk: 1,
            usage: true,
            reasoning_tokens: 0,
            tool_call: false,
            usage_skew: 0,
            cached_tokens: 0,
            server_timings: ServerTimings::Fireworks,
            log_requests: None,
            tls: false,
            fault: None,
        }
    }
}

impl MockConfig {
    /// The status the plain route gives its `ordinal`-th request (0-based, counted over all
    /// connections): a pure function of `seed`, `error_rate` and `ordinal`, so a run of N requests
    /// always sees the same number of 400s whatever the interleaving.
    pub fn status_for(&self, ordinal: u64) -> u16 {
        let u = SplitMix64::new(self.seed ^ ordinal.wrapping_mul(0x9E37_79B9_7F4A_7C15)).next_f64();
        if u < self.error_rate { 400 } else { 200 }
    }
}

/// How the mock's answers report the server's own timings, as one kind of server does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerTimings {
    /// Fireworks': a `fireworks-server-time-to-first-token` header (the configured `ttft`) and,
    /// in the stream's last token event, `perf_metrics` with the time the first token really
    /// left.
    Fireworks,
    /// llama.cpp's: a `timings` object in the stream's last event before `[DONE]` and in a
    /// whole answer (`prompt_ms` is the configured `ttft`, `predicted_per_token_ms` the `itl`,
    /// `cache_n` the cached tokens).
    Llama,
    /// None at all.
    None,
}

impl ServerTimings {
    /// Every style, in the order of the docs.
    pub const ALL: [ServerTimings; 3] = [
        ServerTimings::Fireworks,
        ServerTimings::Llama,
        ServerTimings::None,
    ];

    /// The name `--server-timings` takes.
    pub fn name(self) -> &'static str {
        match self {
            ServerTimings::Fireworks => "fireworks",
            ServerTimings::Llama => "llama",
            ServerTimings::None => "none",
        }
    }

    /// The inverse of [`ServerTimings::name`]; `None` for anything else.
    pub fn from_name(name: &str) -> Option<ServerTimings> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// A misbehaviour of the target, to rehearse how the client names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Read the request, then close with SO_LINGER 0: the client gets a TCP RST.
    Reset,
    /// Read the request, then close without writing a byte.
    CloseBeforeResponse,
    /// Announce `Content-Length: 100`, send 10 bytes, close.
    ShortBody,
    /// A malformed status line, then close.
    Garbage,
    /// A status line, then 100 KiB of headers.
    HugeHeaders,
    /// Chunked headers, then an invalid chunk size.
    BadChunk,
    /// A 200 with a chunked body that never ends (until the client leaves or shutdown).
    EndlessBody,
    /// The response one byte every 100 ms.
    Drip,
    /// Read the request, never answer.
    Stall,
    /// `100 Continue`, then a normal 200.
    Continue,
    /// `103 Early Hints` heads without end (until the client leaves or shutdown), never the
    /// final answer.
    EndlessInterim,
    /// 429 with `Retry-After: 1`.
    TooManyRequests,
    /// 503 with `Retry-After: 1`.
    Unavailable,
    /// An SSE stream whose second token event is broken JSON.
    SseBrokenJson,
    /// An SSE stream whose second token event is an `error` object.
    SseError,
    /// An SSE stream that ends the body without `data: [DONE]`.
    SseNoDone,
}

impl Fault {
    /// Every fault, in the order of the docs.
    pub const ALL: [Fault; 16] = [
        Fault::Reset,
        Fault::CloseBeforeResponse,
        Fault::ShortBody,
        Fault::Garbage,
        Fault::HugeHeaders,
        Fault::BadChunk,
        Fault::EndlessBody,
        Fault::Drip,
        Fault::Stall,
        Fault::Continue,
        Fault::EndlessInterim,
        Fault::TooManyRequests,
        Fault::Unavailable,
        Fault::SseBrokenJson,
        Fault::SseError,
        Fault::SseNoDone,
    ];

    /// The kebab-case name used by `--fault` and `/fault/<name>`.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Reset => "reset",
            Fault::CloseBeforeResponse => "close",
            Fault::ShortBody => "short-body",
            Fault::Garbage => "garbage",
            Fault::HugeHeaders => "huge-headers",
            Fault::BadChunk => "bad-chunk",
            Fault::EndlessBody => "endless",
            Fault::Drip => "drip",
            Fault::Stall => "stall",
            Fault::Continue => "continue",
            Fault::EndlessInterim => "endless-103",
            Fault::TooManyRequests => "429",
            Fault::Unavailable => "503",
            Fault::SseBrokenJson => "sse-broken-json",
            Fault::SseError => "sse-error",
            Fault::SseNoDone => "sse-no-done",
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A fault name that is not one of [`Fault::ALL`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownFault(pub String);

impl fmt::Display for UnknownFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown fault {:?}; expected one of:", self.0)?;
        for fault in Fault::ALL {
            write!(f, " {fault}")?;
        }
        Ok(())
    }
}

impl std::error::Error for UnknownFault {}

impl FromStr for Fault {
    type Err = UnknownFault;

    fn from_str(s: &str) -> Result<Fault, UnknownFault> {
        Fault::ALL
            .into_iter()
            .find(|fault| fault.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownFault(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_names_round_trip() {
        for fault in Fault::ALL {
            assert_eq!(fault.name().parse::<Fault>(), Ok(fault));
        }
        assert_eq!("SHORT-BODY".parse::<Fault>(), Ok(Fault::ShortBody));
        let err = "nope".parse::<Fault>().unwrap_err();
        assert_eq!(err, UnknownFault("nope".to_string()));
        assert!(err.to_string().contains("sse-no-done"));
    }

    #[test]
    fn server_timings_names_round_trip() {
        for st in ServerTimings::ALL {
            assert_eq!(ServerTimings::from_name(st.name()), Some(st));
        }
        assert_eq!(ServerTimings::from_name("vllm"), None);
        assert_eq!(
            MockConfig::default().server_timings,
            ServerTimings::Fireworks
        );
    }

    #[test]
    fn mix_is_deterministic_and_near_the_rate() {
        let cfg = MockConfig::default();
        let a: Vec<u16> = (0..10_000).map(|i| cfg.status_for(i)).collect();
        let b: Vec<u16> = (0..10_000).map(|i| cfg.status_for(i)).collect();
        assert_eq!(a, b);
        let errors = a.iter().filter(|&&s| s == 400).count();
        assert!((1800..2200).contains(&errors), "{errors} 400s in 10000");
        let other_seed = MockConfig {
            seed: 7,
            ..MockConfig::default()
        };
        let c: Vec<u16> = (0..10_000).map(|i| other_seed.status_for(i)).collect();
        assert_ne!(a, c);
    }

    #[test]
    fn mix_extremes() {
        let none = MockConfig {
            error_rate: 0.0,
            ..MockConfig::default()
        };
        let all = MockConfig {
            error_rate: 1.0,
            ..MockConfig::default()
        };
        assert!((0..1000).all(|i| none.status_for(i) == 200));
        assert!((0..1000).all(|i| all.status_for(i) == 400));
    }
}
