//! What one SSE event's data (or one non-streaming body) means for the benchmark: a token or not,
//! a token count, a server-reported time to first token, an error, or the end of the stream.
//!
//! This runs once per token event, so it deserializes straight into small structs of flags and
//! numbers: unknown fields are skipped (serde's `IgnoredAny`), strings are only looked at (a text's
//! emptiness is all a token needs) and never copied, and no `serde_json::Value` is built. Only an
//! error message is copied out, since it outlives the event's bytes.

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// Longest error message kept, in characters: enough to name the problem, short enough for a
/// report's error table.
const MAX_ERROR_CHARS: usize = 200;

/// What one event's data means for the benchmark.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The data is `[DONE]` (surrounding ASCII whitespace tolerated): the stream is over.
    Done,
    /// An ordinary event: maybe a token, maybe usage, maybe server timings.
    Chunk(ChunkInfo),
    /// An object with an `error` member: its message (`error.message`, or the error value if a
    /// string), truncated to 200 characters on a character boundary.
    Error(String),
}

/// The facts about one event that the statistics need.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ChunkInfo {
    /// `choices[0]` carries non-empty `text` (completions), `delta.content`,
    /// `delta.reasoning_content` or `delta.reasoning` (chat), or, in a non-streaming chat body,
    /// `message.content`. Role-only and empty deltas are not tokens.
    pub token: bool,
    /// `usage.completion_tokens` when present (the trailing usage event has `"choices": []`).
    pub completion_tokens: Option<u64>,
    /// `usage.prompt_tokens` when present: the server's count of the prompt.
    pub prompt_tokens: Option<u64>,
    /// `perf_metrics["fireworks-server-time-to-first-token"]` in seconds, when present (a number or
    /// a numeric string).
    pub server_ttft: Option<f64>,
}

/// Why an event could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventError {
    /// Not a JSON object (or not JSON at all).
    InvalidJson,
}

impl EventError {
    /// A short, stable name for reports.
    pub fn reason(self) -> &'static str {
        match self {
            EventError::InvalidJson => "invalid JSON in event",
        }
    }
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for EventError {}

/// Classifies one SSE event's data.
///
/// `[DONE]` is [`Event::Done`]. Data that is empty or only whitespace (a bare `data:` line, which
/// some proxies send as a keep-alive) is a [`Event::Chunk`] carrying nothing. Anything else must
/// be a JSON object.
pub fn classify(data: &[u8]) -> Result<Event, EventError> {
    let trimmed = data.trim_ascii();
    if trimmed == b"[DONE]" {
        return Ok(Event::Done);
    }
    if trimmed.is_empty() {
        return Ok(Event::Chunk(ChunkInfo::default()));
    }
    classify_object(trimmed)
}

/// Classifies a whole non-streaming response body: `usage.completion_tokens` and
/// `usage.prompt_tokens`, whether
/// `choices[0]` carries text, and an `error` member's message. An empty body is
/// [`EventError::InvalidJson`].
pub fn classify_body(body: &[u8]) -> Result<Event, EventError> {
    classify_object(body.trim_ascii())
}

fn classify_object(json: &[u8]) -> Result<Event, EventError> {
    // A derived struct would also accept a JSON array (fields by position); events are objects.
    if json.first() != Some(&b'{') {
        return Err(EventError::InvalidJson);
    }
    let raw: Raw = serde_json::from_slice(json).map_err(|_| EventError::InvalidJson)?;
    if let Some(ErrorMessage(message)) = raw.error {
        return Ok(Event::Error(message));
    }
    let choice = raw.choices.and_then(|c| c.0).unwrap_or_default();
    let carries =
        |d: Option<Delta>| d.is_some_and(|d| d.content.0 || d.reasoning_content.0 || d.reasoning.0);
    Ok(Event::Chunk(ChunkInfo {
        token: choice.text.0 || carries(choice.delta) || carries(choice.message),
        completion_tokens: raw
            .usage
            .as_ref()
            .and_then(|u| u.completion_tokens.as_count()),
        prompt_tokens: raw.usage.and_then(|u| u.prompt_tokens.as_count()),
        server_ttft: raw.perf_metrics.and_then(|p| p.server_ttft.as_seconds()),
    }))
}

#[derive(Deserialize)]
struct Raw {
    #[serde(default)]
    choices: Option<FirstChoice>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<ErrorMessage>,
    #[serde(default)]
    perf_metrics: Option<PerfMetrics>,
}

#[derive(Deserialize, Default)]
struct Choice {
    #[serde(default)]
    text: NonEmpty,
    #[serde(default)]
    delta: Option<Delta>,
    /// Non-streaming chat responses carry the whole answer here.
    #[serde(default)]
    message: Option<Delta>,
}

#[derive(Deserialize)]
struct Delta {
    #[serde(default)]
    content: NonEmpty,
    #[serde(default)]
    reasoning_content: NonEmpty,
    #[serde(default)]
    reasoning: NonEmpty,
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    completion_tokens: Number,
    #[serde(default)]
    prompt_tokens: Number,
}

#[derive(Deserialize)]
struct PerfMetrics {
    #[serde(default, rename = "fireworks-server-time-to-first-token")]
    server_ttft: Number,
}

/// Drains the rest of a sequence without looking at it.
fn skip_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Drains the rest of a map without looking at it.
fn skip_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// `choices[0]` only; the other choices (n > 1) are skipped, and nothing is collected.
#[derive(Default)]
struct FirstChoice(Option<Choice>);

impl<'de> Deserialize<'de> for FirstChoice {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FirstChoice;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of choices")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<FirstChoice, A::Error> {
                let first = seq.next_element::<Choice>()?;
                skip_seq(seq)?;
                Ok(FirstChoice(first))
            }
        }
        d.deserialize_seq(V)
    }
}

/// True for a non-empty string. Anything else (null, a number, an array, an object) is not text,
/// and not an error either: servers differ, and the benchmark only asks "was a token sent".
#[derive(Default, Clone, Copy)]
struct NonEmpty(bool);

impl<'de> Deserialize<'de> for NonEmpty {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = NonEmpty;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<NonEmpty, E> {
                Ok(NonEmpty(!v.is_empty()))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<NonEmpty, E> {
                Ok(NonEmpty(false))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<NonEmpty, E> {
                Ok(NonEmpty(false))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<NonEmpty, E> {
                Ok(NonEmpty(false))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<NonEmpty, E> {
                Ok(NonEmpty(false))
            }
            fn visit_unit<E: de::Error>(self) -> Result<NonEmpty, E> {
                Ok(NonEmpty(false))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<NonEmpty, A::Error> {
                skip_seq(seq).map(|()| NonEmpty(false))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<NonEmpty, A::Error> {
                skip_map(map).map(|()| NonEmpty(false))
            }
        }
        d.deserialize_any(V)
    }
}

/// A number, or a string holding one (Fireworks' perf metrics come as either); anything else is
/// absent rather than an error.
#[derive(Default, Clone, Copy)]
struct Number(Option<f64>);

impl Number {
    fn as_count(self) -> Option<u64> {
        // Counts are integers well below 2^53, so the f64 round trip is exact.
        self.0
            .filter(|n| n.is_finite() && *n >= 0.0 && n.fract() == 0.0 && *n <= u64::MAX as f64)
            .map(|n| n as u64)
    }

    fn as_seconds(self) -> Option<f64> {
        self.0.filter(|s| s.is_finite() && *s >= 0.0)
    }
}

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Number;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number or a numeric string")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Number, E> {
                Ok(Number(Some(v as f64)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Number, E> {
                Ok(Number(Some(v as f64)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Number, E> {
                Ok(Number(Some(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Number, E> {
                Ok(Number(v.trim().parse().ok()))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Number, E> {
                Ok(Number(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Number, E> {
                Ok(Number(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Number, A::Error> {
                skip_seq(seq).map(|()| Number(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Number, A::Error> {
                skip_map(map).map(|()| Number(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// An `error` member's message: `error.message` (else `error.type`) of an object, or the value
/// itself if a string or scalar. Only reached on errors, so owning the text costs nothing per token.
struct ErrorMessage(String);

/// The keys of an error object that matter, told apart without copying the key.
enum ErrorKey {
    Message,
    Type,
    Other,
}

impl<'de> Deserialize<'de> for ErrorKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ErrorKey;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ErrorKey, E> {
                Ok(match v {
                    "message" => ErrorKey::Message,
                    "type" => ErrorKey::Type,
                    _ => ErrorKey::Other,
                })
            }
        }
        d.deserialize_identifier(V)
    }
}

/// A string value, or nothing for any other JSON value.
struct Text(Option<String>);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(Some(truncate(v))))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Text, E> {
                Ok(Text(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Text, E> {
                Ok(Text(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Text, E> {
                Ok(Text(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Text, E> {
                Ok(Text(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Text, E> {
                Ok(Text(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Text, A::Error> {
                skip_seq(seq).map(|()| Text(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Text, A::Error> {
                skip_map(map).map(|()| Text(None))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for ErrorMessage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ErrorMessage;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an error object or message")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ErrorMessage, E> {
                Ok(ErrorMessage::new(truncate(v)))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<ErrorMessage, E> {
                Ok(ErrorMessage::new(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ErrorMessage, E> {
                Ok(ErrorMessage::new(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ErrorMessage, E> {
                Ok(ErrorMessage::new(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ErrorMessage, E> {
                Ok(ErrorMessage::new(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<ErrorMessage, A::Error> {
                skip_seq(seq).map(|()| ErrorMessage::new(String::new()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ErrorMessage, A::Error> {
                let (mut message, mut kind) = (None, None);
                while let Some(key) = map.next_key::<ErrorKey>()? {
                    match key {
                        ErrorKey::Message => message = map.next_value::<Text>()?.0,
                        ErrorKey::Type => kind = map.next_value::<Text>()?.0,
                        ErrorKey::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                let text = message
                    .filter(|m| !m.is_empty())
                    .or(kind)
                    .unwrap_or_default();
                Ok(ErrorMessage::new(text))
            }
        }
        d.deserialize_any(V)
    }
}

impl ErrorMessage {
    /// An error must be named by something: an empty message becomes "unknown error".
    fn new(text: String) -> Self {
        if text.is_empty() {
            ErrorMessage("unknown error".to_owned())
        } else {
            ErrorMessage(text)
        }
    }
}

/// The first [`MAX_ERROR_CHARS`] characters of `s`.
fn truncate(s: &str) -> String {
    match s.char_indices().nth(MAX_ERROR_CHARS) {
        Some((end, _)) => s[..end].to_owned(),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(token: bool, completion_tokens: Option<u64>, server_ttft: Option<f64>) -> Event {
        Event::Chunk(ChunkInfo {
            token,
            completion_tokens,
            prompt_tokens: None,
            server_ttft,
        })
    }

    /// A chunk that also carries `usage.prompt_tokens`.
    fn with_prompt(event: Event, prompt_tokens: u64) -> Event {
        match event {
            Event::Chunk(c) => Event::Chunk(ChunkInfo {
                prompt_tokens: Some(prompt_tokens),
                ..c
            }),
            other => other,
        }
    }

    fn ok(data: &str) -> Event {
        classify(data.as_bytes()).unwrap_or_else(|e| panic!("{data}: {e}"))
    }

    #[test]
    fn done() {
        assert_eq!(ok("[DONE]"), Event::Done);
        assert_eq!(ok(" [DONE]\n"), Event::Done);
        assert_eq!(classify(b"[DONE"), Err(EventError::InvalidJson));
    }

    #[test]
    fn completions_tokens() {
        let data = r#"{"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":[{"text":"Score","index":0,"finish_reason":null}]}"#;
        assert_eq!(ok(data), chunk(true, None, None));
        assert_eq!(
            ok(r#"{"choices":[{"text":" ","index":1}]}"#),
            chunk(true, None, None)
        );
        // The final event of a completions stream: empty text, a finish reason, not a token.
        assert_eq!(
            ok(r#"{"choices":[{"text":"","index":19,"finish_reason":"stop"}]}"#),
            chunk(false, None, None)
        );
        // Escapes are decoded into serde's scratch space, not by us; still a token.
        assert_eq!(
            ok(r#"{"choices":[{"text":"\u00e9\n"}]}"#),
            chunk(true, None, None)
        );
    }

    #[test]
    fn chat_deltas() {
        // Role-only first delta: not a token.
        let role = r#"{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"#;
        assert_eq!(ok(role), chunk(false, None, None));
        assert_eq!(
            ok(r#"{"choices":[{"delta":{"role":"assistant"}}]}"#),
            chunk(false, None, None)
        );
        assert_eq!(
            ok(r#"{"choices":[{"delta":{"content":null}}]}"#),
            chunk(false, None, None)
        );
        assert_eq!(
            ok(r#"{"choices":[{"delta":{}}]}"#),
            chunk(false, None, None)
        );
        assert_eq!(
            ok(r#"{"choices":[{"delta":{"content":"Hi"},"finish_reason":null}]}"#),
            chunk(true, None, None)
        );
        assert_eq!(
            ok(r#"{"choices":[{"delta":{"reasoning_content":"hmm","content":null}}]}"#),
            chunk(true, None, None)
        );
        assert_eq!(
            ok(r#"{"choices":[{"delta":{"reasoning":"so"}}]}"#),
            chunk(true, None, None)
        );
        // Only choices[0] counts.
        assert_eq!(
            ok(r#"{"choices":[{"delta":{}},{"delta":{"content":"x"}}]}"#),
            chunk(false, None, None)
        );
    }

    #[test]
    fn usage_event() {
        let data = r#"{"id":"c","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":5,"total_tokens":25,"completion_tokens":20}}"#;
        assert_eq!(ok(data), with_prompt(chunk(false, Some(20), None), 5));
        // Prompt tokens alone (some servers send usage before the completion is counted).
        assert_eq!(
            ok(r#"{"choices":[{"text":"a"}],"usage":{"prompt_tokens":"12"}}"#),
            with_prompt(chunk(true, None, None), 12)
        );
        assert_eq!(
            ok(r#"{"choices":[],"usage":{"prompt_tokens":1.5,"completion_tokens":2}}"#),
            chunk(false, Some(2), None)
        );
        assert_eq!(
            ok(r#"{"choices":[],"usage":{"prompt_tokens":null,"completion_tokens":0}}"#),
            chunk(false, Some(0), None)
        );
        // OpenAI sends "usage": null on every chunk when include_usage is on.
        assert_eq!(
            ok(r#"{"choices":[{"text":"a"}],"usage":null}"#),
            chunk(true, None, None)
        );
        assert_eq!(
            ok(r#"{"choices":[],"usage":{"completion_tokens":"7"}}"#),
            chunk(false, Some(7), None)
        );
        assert_eq!(
            ok(r#"{"choices":[],"usage":{"completion_tokens":-1}}"#),
            chunk(false, None, None)
        );
        assert_eq!(
            ok(r#"{"choices":null,"usage":{"completion_tokens":3.0}}"#),
            chunk(false, Some(3), None)
        );
    }

    #[test]
    fn errors() {
        assert_eq!(
            ok(r#"{"error":{"message":"boom","type":"x"}}"#),
            Event::Error("boom".into())
        );
        assert_eq!(
            ok(r#"{"error":"overloaded"}"#),
            Event::Error("overloaded".into())
        );
        assert_eq!(
            ok(r#"{"error":{"type":"server_error","code":500}}"#),
            Event::Error("server_error".into())
        );
        assert_eq!(
            ok(r#"{"error":{"code":500}}"#),
            Event::Error("unknown error".into())
        );
        assert_eq!(
            ok(r#"{"error":{"message":{"nested":1}}}"#),
            Event::Error("unknown error".into())
        );
        assert_eq!(ok(r#"{"error":429}"#), Event::Error("429".into()));
        // An error mid-stream, alongside choices, still wins.
        assert_eq!(
            ok(r#"{"choices":[{"text":"a"}],"error":{"message":"cut"}}"#),
            Event::Error("cut".into())
        );
        // "error": null is no error.
        assert_eq!(
            ok(r#"{"choices":[{"text":"a"}],"error":null}"#),
            chunk(true, None, None)
        );
    }

    #[test]
    fn long_error_message_is_truncated_on_a_char_boundary() {
        let long = "é".repeat(300);
        let Event::Error(message) = ok(&format!(r#"{{"error":{{"message":"{long}"}}}}"#)) else {
            panic!("not an error");
        };
        assert_eq!(message.chars().count(), 200);
        assert_eq!(message, "é".repeat(200));
    }

    #[test]
    fn broken_json() {
        for data in [
            "{",
            "{\"choices\":[",
            "not json",
            "[1,2]",
            "{\"choices\":{}}",
            "{} x",
            "\"str\"",
            "42",
        ] {
            assert_eq!(
                classify(data.as_bytes()),
                Err(EventError::InvalidJson),
                "{data}"
            );
        }
        // Invalid UTF-8 in a string we read is refused (serde_json skips unread strings unchecked).
        assert_eq!(
            classify(b"{\"choices\":[{\"text\":\"\xff\"}]}"),
            Err(EventError::InvalidJson)
        );
        assert_eq!(EventError::InvalidJson.reason(), "invalid JSON in event");
    }

    #[test]
    fn empty_data_is_a_keepalive() {
        assert_eq!(ok(""), chunk(false, None, None));
        assert_eq!(ok(" \n"), chunk(false, None, None));
        assert_eq!(classify_body(b""), Err(EventError::InvalidJson));
    }

    #[test]
    fn server_ttft_from_perf_metrics() {
        let data = r#"{"choices":[{"text":"","finish_reason":"length"}],"usage":{"completion_tokens":25},"perf_metrics":{"fireworks-server-time-to-first-token":0.0421,"fireworks-prompt-tokens":"4"}}"#;
        assert_eq!(ok(data), chunk(false, Some(25), Some(0.0421)));
        let data =
            r#"{"choices":[],"perf_metrics":{"fireworks-server-time-to-first-token":"0.5"}}"#;
        assert_eq!(ok(data), chunk(false, None, Some(0.5)));
        let data =
            r#"{"choices":[],"perf_metrics":{"fireworks-server-time-to-first-token":"n/a"}}"#;
        assert_eq!(ok(data), chunk(false, None, None));
        assert_eq!(
            ok(r#"{"choices":[],"perf_metrics":{}}"#),
            chunk(false, None, None)
        );
    }

    #[test]
    fn whole_bodies() {
        let completions = r#"{"id":"cmpl-1","object":"text_completion","choices":[{"text":"Snow is white because","index":0,"logprobs":{"tokens":["a"],"token_logprobs":[-0.1]},"finish_reason":"length"}],"usage":{"prompt_tokens":4,"total_tokens":29,"completion_tokens":25}}"#;
        assert_eq!(
            classify_body(completions.as_bytes()),
            Ok(with_prompt(chunk(true, Some(25), None), 4))
        );
        let chat = r#"
            {"choices":[{"index":0,"message":{"role":"assistant","content":"Hello"}}],"usage":{"completion_tokens":1}}
        "#;
        assert_eq!(
            classify_body(chat.as_bytes()),
            Ok(chunk(true, Some(1), None))
        );
        assert_eq!(
            classify_body(br#"{"error":{"message":"bad model"}}"#),
            Ok(Event::Error("bad model".into()))
        );
        // A body is never the end-of-stream marker.
        assert_eq!(classify_body(b"[DONE]"), Err(EventError::InvalidJson));
    }
}
