//! The LLM side of a benchmark: framing Server-Sent Events ([`sse`]), reading what each event
//! means ([`event`]: token, usage, error, done), building the OpenAI-compatible request
//! payload ([`payload`]), and the workload a run sends: prompts from a data set ([`dataset`]) or
//! made to a length ([`synth`], [`lengths`]), counted by the model's tokenizer ([`tokenizer`]),
//! and turned into one request body per distinct prompt ([`bodies`]). [`excerpt`] bounds what
//! an error quotes of a file's text.
//!
//! The response side is pure: no I/O, no clocks. The engine feeds body bytes (already de-chunked
//! by `http1`) to an [`SseParser`], classifies each event's data with [`classify`], and stamps
//! the times itself. The workload side runs once, before a run: it reads files (a data set, a
//! `tokenizer.json`) and builds everything the run sends, so nothing is serialized per request.

pub mod bodies;
pub mod dataset;
pub mod event;
pub mod excerpt;
pub mod lengths;
pub mod payload;
pub mod sse;
pub mod synth;
pub mod tokenizer;
pub mod trace;

pub use bodies::{Bodies, BodyError, BodyTemplate};
pub use dataset::{
    Conversation, DEFAULT_MAX_DATASET_BYTES, Dataset, DatasetError, Entry, LoadOptions, Message,
    Order, Prompt, SessionTurn, draw_max_tokens,
};
pub use event::{
    ChunkInfo, ChunkText, Event, EventError, classify, classify_body, classify_body_text,
    classify_text,
};
pub use lengths::{LengthDist, LengthError};
pub use payload::{Api, PayloadInput, PayloadStyle, build_payload};
pub use sse::{MAX_EVENT_BYTES, SseError, SseParser};
pub use synth::{SynthError, SynthPrompt, Synthesizer, approx_tokens};
pub use tokenizer::{Tokenizer, TokenizerError};
pub use trace::{BlockText, Trace, TraceEntry, TraceError};

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &[u8] = include_bytes!("../../tests/fixtures/completions_stream_chunked.http");

    /// Test-only de-chunker for a well-formed fixture (the real one lives in `http1`): skips the
    /// head, then copies each chunk's data until the zero-size chunk.
    fn dechunk(response: &[u8]) -> Vec<u8> {
        let head_end = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("fixture has a head")
            + 4;
        let mut rest = &response[head_end..];
        let mut body = Vec::new();
        loop {
            let line_end = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .expect("chunk size line");
            let size_text = std::str::from_utf8(&rest[..line_end]).expect("ASCII size");
            let size = usize::from_str_radix(size_text.trim(), 16).expect("hex size");
            rest = &rest[line_end + 2..];
            if size == 0 {
                return body;
            }
            body.extend_from_slice(&rest[..size]);
            assert_eq!(&rest[size..size + 2], b"\r\n", "chunk data ends in CRLF");
            rest = &rest[size + 2..];
        }
    }

    fn classify_all(pieces: &[&[u8]]) -> Vec<Event> {
        let mut parser = SseParser::new();
        let mut events = Vec::new();
        for piece in pieces {
            parser
                .feed(piece, |data| {
                    events.push(classify(data).expect("fixture events are JSON"))
                })
                .expect("fixture events are small");
        }
        events
    }

    #[test]
    fn real_completions_stream_at_every_split() {
        let body = dechunk(FIXTURE);
        let token = Event::Chunk(ChunkInfo {
            token: true,
            content: true,
            ..ChunkInfo::default()
        });
        let last = Event::Chunk(ChunkInfo::default());
        let mut expected = vec![token; 20];
        expected.extend([last, Event::Done]);

        assert_eq!(classify_all(&[&body]), expected);
        for at in 0..=body.len() {
            let (a, b) = body.split_at(at);
            assert_eq!(classify_all(&[a, b]), expected, "split at {at}");
        }
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(classify_all(&bytes), expected, "byte by byte");
    }
}
