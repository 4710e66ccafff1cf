//! What one SSE event's data (or one non-streaming body) means for the benchmark: a token or not,
//! a token count, a server-reported time to first token, an error, or the end of the stream.
//!
//! This runs once per token event, so it deserializes straight into small structs of flags and
//! numbers: unknown fields are skipped (serde's `IgnoredAny`), strings are only looked at (a text's
//! emptiness is all a token needs) and never copied, and no `serde_json::Value` is built. Only an
//! error message is copied out, since it outlives the event's bytes.
//!
//! A run that counts streamed tokens with a tokenizer also needs the text an event carried:
//! [`classify_text`] (and [`classify_body_text`]) return it beside the event, as [`ChunkText`],
//! borrowed from the event's bytes (copied only when the JSON string has escapes, which serde
//! must decode). Both read the same structs, generic over what a text field keeps; [`classify`]
//! keeps the flag only, so a run without a tokenizer never copies text.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

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
    /// `choices[0]` carries a token of any kind: [`ChunkInfo::content`], [`ChunkInfo::reasoning`]
    /// or [`ChunkInfo::tool_call`]. Role-only and empty deltas are not tokens.
    pub token: bool,
    /// `choices[0]` carries answer text: non-empty `text` (completions), `delta.content` (chat),
    /// or, in a non-streaming chat body, `message.content`.
    pub content: bool,
    /// `choices[0]` carries reasoning text: non-empty `reasoning_content` (vLLM, DeepSeek) or
    /// `reasoning` (SGLang, vLLM's newer name) of its `delta` or `message`.
    pub reasoning: bool,
    /// `choices[0]` carries a non-empty `tool_calls` array in its `delta` or `message`.
    pub tool_call: bool,
    /// `usage.completion_tokens` when present (the trailing usage event has `"choices": []`).
    pub completion_tokens: Option<u64>,
    /// `usage.completion_tokens_details.reasoning_tokens` when present: the part of the
    /// completion the server counts as reasoning.
    pub reasoning_tokens: Option<u64>,
    /// `usage.prompt_tokens` when present: the server's count of the prompt.
    pub prompt_tokens: Option<u64>,
    /// `usage.prompt_tokens_details.cached_tokens` when present: the prompt tokens the server
    /// took from its prefix cache rather than computed.
    pub cached_tokens: Option<u64>,
    /// The server's own time to first token in seconds, when present (a number or a numeric
    /// string): Fireworks' `perf_metrics["fireworks-server-time-to-first-token"]`, else
    /// llama.cpp's `timings.prompt_ms`, else vLLM's `metrics.time_to_first_token_ms`.
    pub server_ttft: Option<f64>,
    /// The server's own decode time per output token in seconds: llama.cpp's
    /// `timings.predicted_per_token_ms`, else vLLM's `metrics.mean_itl_ms`.
    pub server_tpot: Option<f64>,
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

/// The text one event carried in `choices[0]`: its `text` (completions), then `content`,
/// `reasoning_content` and `reasoning` of its `delta` (chat) or `message` (a whole chat body).
/// Borrowed from the event's bytes unless the JSON string had escapes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChunkText<'a> {
    parts: [Option<Cow<'a, str>>; 4],
}

impl ChunkText<'_> {
    /// The non-empty pieces, in the order above.
    pub fn parts(&self) -> impl Iterator<Item = &str> {
        self.parts
            .iter()
            .flatten()
            .map(|p| &**p)
            .filter(|p| !p.is_empty())
    }

    /// No text at all.
    pub fn is_empty(&self) -> bool {
        self.parts().next().is_none()
    }
}

/// Classifies one SSE event's data.
///
/// `[DONE]` is [`Event::Done`]. Data that is empty or only whitespace (a bare `data:` line, which
/// some proxies send as a keep-alive) is a [`Event::Chunk`] carrying nothing. Anything else must
/// be a JSON object.
pub fn classify(data: &[u8]) -> Result<Event, EventError> {
    classify_as::<NonEmpty>(data).map(|(event, _)| event)
}

/// [`classify`], with the text the event carried (for a tokenizer to count).
pub fn classify_text(data: &[u8]) -> Result<(Event, ChunkText<'_>), EventError> {
    let (event, choice) = classify_as::<Piece>(data)?;
    Ok((event, choice.map(Choice::into_text).unwrap_or_default()))
}

fn classify_as<'a, T: TextField<'a>>(
    data: &'a [u8],
) -> Result<(Event, Option<Choice<T>>), EventError> {
    let trimmed = data.trim_ascii();
    if trimmed == b"[DONE]" {
        return Ok((Event::Done, None));
    }
    if trimmed.is_empty() {
        return Ok((Event::Chunk(ChunkInfo::default()), None));
    }
    classify_object(trimmed)
}

/// Classifies a whole non-streaming response body: `usage.completion_tokens` and
/// `usage.prompt_tokens`, whether
/// `choices[0]` carries text, and an `error` member's message. An empty body is
/// [`EventError::InvalidJson`].
pub fn classify_body(body: &[u8]) -> Result<Event, EventError> {
    classify_object::<NonEmpty>(body.trim_ascii()).map(|(event, _)| event)
}

/// [`classify_body`], with the answer's text (for a tokenizer to count).
pub fn classify_body_text(body: &[u8]) -> Result<(Event, ChunkText<'_>), EventError> {
    let (event, choice) = classify_object::<Piece>(body.trim_ascii())?;
    Ok((event, choice.map(Choice::into_text).unwrap_or_default()))
}

fn classify_object<'a, T: TextField<'a>>(
    json: &'a [u8],
) -> Result<(Event, Option<Choice<T>>), EventError> {
    // A derived struct would also accept a JSON array (fields by position); events are objects.
    if json.first() != Some(&b'{') {
        return Err(EventError::InvalidJson);
    }
    let raw: Raw<T> = serde_json::from_slice(json).map_err(|_| EventError::InvalidJson)?;
    if let Some(ErrorMessage(message)) = raw.error {
        return Ok((Event::Error(message), None));
    }
    let choice = raw.choices.and_then(|c| c.0);
    let any = |f: fn(&Delta<T>) -> bool| {
        choice
            .as_ref()
            .is_some_and(|c| c.delta.as_ref().is_some_and(f) || c.message.as_ref().is_some_and(f))
    };
    let content = choice.as_ref().is_some_and(|c| c.text.carries()) || any(|d| d.content.carries());
    let reasoning = any(|d| d.reasoning_content.carries() || d.reasoning.carries());
    let tool_call = any(|d| d.tool_calls.0);
    let usage = raw.usage.as_ref();
    let (timings, metrics) = (raw.timings.0, raw.metrics.0);
    let event = Event::Chunk(ChunkInfo {
        token: content || reasoning || tool_call,
        content,
        reasoning,
        tool_call,
        completion_tokens: usage.and_then(|u| u.completion_tokens.as_count()),
        reasoning_tokens: usage
            .and_then(|u| u.completion_tokens_details.as_ref())
            .and_then(|d| d.reasoning_tokens.as_count()),
        prompt_tokens: usage.and_then(|u| u.prompt_tokens.as_count()),
        cached_tokens: usage
            .and_then(|u| u.prompt_tokens_details.as_ref())
            .and_then(|d| d.cached_tokens.as_count())
            .or_else(|| timings.and_then(|t| t.cache_n.as_count())),
        server_ttft: raw
            .perf_metrics
            .0
            .and_then(|p| p.server_ttft.as_seconds())
            .or_else(|| timings.and_then(|t| t.prompt_ms.as_millis()))
            .or_else(|| metrics.and_then(|m| m.time_to_first_token_ms.as_millis())),
        server_tpot: timings
            .and_then(|t| t.predicted_per_token_ms.as_millis())
            .or_else(|| metrics.and_then(|m| m.mean_itl_ms.as_millis())),
    });
    Ok((event, choice))
}

/// What a text field of a choice keeps: whether it is non-empty ([`NonEmpty`]), or the text
/// itself ([`Piece`]).
trait TextField<'de>: Deserialize<'de> + Default {
    /// Non-empty text.
    fn carries(&self) -> bool;
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "T: TextField<'de>"))]
struct Raw<T> {
    #[serde(default)]
    choices: Option<FirstChoice<T>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<ErrorMessage>,
    /// Fireworks' figures.
    #[serde(default)]
    perf_metrics: Lenient<PerfMetrics>,
    /// llama.cpp's figures (its last streamed event, or a whole answer).
    #[serde(default)]
    timings: Lenient<LlamaTimings>,
    /// vLLM's figures (`--enable-per-request-metrics`: its usage event, or a whole answer).
    #[serde(default)]
    metrics: Lenient<VllmMetrics>,
}

#[derive(Deserialize, Default)]
#[serde(bound(deserialize = "T: TextField<'de>"))]
struct Choice<T> {
    #[serde(default)]
    text: T,
    #[serde(default)]
    delta: Option<Delta<T>>,
    /// Non-streaming chat responses carry the whole answer here.
    #[serde(default)]
    message: Option<Delta<T>>,
}

impl<'a> Choice<Piece<'a>> {
    fn into_text(self) -> ChunkText<'a> {
        let Delta {
            content,
            reasoning_content,
            reasoning,
            ..
        } = self.delta.or(self.message).unwrap_or_default();
        ChunkText {
            parts: [self.text.0, content.0, reasoning_content.0, reasoning.0],
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(bound(deserialize = "T: TextField<'de>"))]
struct Delta<T> {
    #[serde(default)]
    content: T,
    #[serde(default)]
    reasoning_content: T,
    #[serde(default)]
    reasoning: T,
    /// Only whether it holds a call: the arguments' text is not counted here.
    #[serde(default)]
    tool_calls: NonEmptyArray,
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    completion_tokens: Number,
    #[serde(default)]
    prompt_tokens: Number,
    #[serde(default)]
    completion_tokens_details: Option<CompletionDetails>,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
}

/// OpenAI's `usage.prompt_tokens_details` (vLLM with prefix caching, llama.cpp and others).
#[derive(Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Number,
}

/// OpenAI's `usage.completion_tokens_details` (vLLM and others send it for reasoning models).
#[derive(Deserialize)]
struct CompletionDetails {
    #[serde(default)]
    reasoning_tokens: Number,
}

/// True for an array with at least one element; anything else (null, `[]`, another value) is
/// false, not an error.
#[derive(Default, Clone, Copy)]
struct NonEmptyArray(bool);

impl<'de> Deserialize<'de> for NonEmptyArray {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // IgnoredAny takes any value; only an array's first element is looked for.
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = NonEmptyArray;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NonEmptyArray, A::Error> {
                let some = seq.next_element::<IgnoredAny>()?.is_some();
                skip_seq(seq).map(|()| NonEmptyArray(some))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<NonEmptyArray, A::Error> {
                skip_map(map).map(|()| NonEmptyArray(false))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<NonEmptyArray, E> {
                Ok(NonEmptyArray(false))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<NonEmptyArray, E> {
                Ok(NonEmptyArray(false))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<NonEmptyArray, E> {
                Ok(NonEmptyArray(false))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<NonEmptyArray, E> {
                Ok(NonEmptyArray(false))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<NonEmptyArray, E> {
                Ok(NonEmptyArray(false))
            }
            fn visit_unit<E: de::Error>(self) -> Result<NonEmptyArray, E> {
                Ok(NonEmptyArray(false))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
struct PerfMetrics {
    #[serde(default, rename = "fireworks-server-time-to-first-token")]
    server_ttft: Number,
}

/// llama.cpp's `timings` object: what its slot spent on the prompt (after taking the request
/// from its queue) and per generated token, in milliseconds, and the prompt tokens it reused.
#[derive(Deserialize, Clone, Copy)]
struct LlamaTimings {
    #[serde(default)]
    prompt_ms: Number,
    #[serde(default)]
    predicted_per_token_ms: Number,
    #[serde(default)]
    cache_n: Number,
}

/// vLLM's per-request `metrics` object (milliseconds): the first token from the request's
/// scheduling (its queue wait is `queue_time_ms`, not read), and the mean gap while decoding.
#[derive(Deserialize, Clone, Copy)]
struct VllmMetrics {
    #[serde(default)]
    time_to_first_token_ms: Number,
    #[serde(default)]
    mean_itl_ms: Number,
}

/// An object read as `T`, or nothing for any other JSON value (null, a number, an array): a
/// server's own figures are extras, never a reason to refuse its event, and `metrics` or
/// `timings` are common enough names that another server may mean something else by them.
struct Lenient<T>(Option<T>);

impl<T> Default for Lenient<T> {
    fn default() -> Self {
        Lenient(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Lenient<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Lenient<T>, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(|t| Lenient(Some(t)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Lenient<T>, A::Error> {
                skip_seq(seq).map(|()| Lenient(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Lenient<T>, E> {
                Ok(Lenient(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Lenient<T>, E> {
                Ok(Lenient(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Lenient<T>, E> {
                Ok(Lenient(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Lenient<T>, E> {
                Ok(Lenient(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Lenient<T>, E> {
                Ok(Lenient(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Lenient<T>, E> {
                Ok(Lenient(None))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
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
struct FirstChoice<T>(Option<Choice<T>>);

impl<'de, T: TextField<'de>> Deserialize<'de> for FirstChoice<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: TextField<'de>> Visitor<'de> for V<T> {
            type Value = FirstChoice<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of choices")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<FirstChoice<T>, A::Error> {
                let first = seq.next_element::<Choice<T>>()?;
                skip_seq(seq)?;
                Ok(FirstChoice(first))
            }
        }
        d.deserialize_seq(V(PhantomData))
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

impl TextField<'_> for NonEmpty {
    fn carries(&self) -> bool {
        self.0
    }
}

/// A string's text: borrowed from the input when it has no escapes, else decoded into a copy.
/// Anything else (null, a number, an array, an object) is no text, as for [`NonEmpty`].
#[derive(Default)]
struct Piece<'a>(Option<Cow<'a, str>>);

impl<'de> TextField<'de> for Piece<'de> {
    fn carries(&self) -> bool {
        self.0.as_ref().is_some_and(|t| !t.is_empty())
    }
}

impl<'de> Deserialize<'de> for Piece<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Piece<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Piece<'de>, E> {
                Ok(Piece(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Piece<'de>, E> {
                Ok(Piece(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Piece<'de>, E> {
                Ok(Piece(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Piece<'de>, E> {
                Ok(Piece(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Piece<'de>, E> {
                Ok(Piece(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Piece<'de>, E> {
                Ok(Piece(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Piece<'de>, E> {
                Ok(Piece(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Piece<'de>, A::Error> {
                skip_seq(seq).map(|()| Piece(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Piece<'de>, A::Error> {
                skip_map(map).map(|()| Piece(None))
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

    /// Milliseconds, as seconds.
    fn as_millis(self) -> Option<f64> {
        self.as_seconds().map(|ms| ms / 1000.0)
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

    /// A chunk whose token, if any, is answer text.
    fn chunk(token: bool, completion_tokens: Option<u64>, server_ttft: Option<f64>) -> Event {
        Event::Chunk(ChunkInfo {
            token,
            content: token,
            completion_tokens,
            server_ttft,
            ..ChunkInfo::default()
        })
    }

    /// A chunk carrying a token of the kinds given.
    fn kinds(content: bool, reasoning: bool, tool_call: bool) -> Event {
        Event::Chunk(ChunkInfo {
            token: true,
            content,
            reasoning,
            tool_call,
            ..ChunkInfo::default()
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
            kinds(false, true, false)
        );
        assert_eq!(
            ok(r#"{"choices":[{"delta":{"reasoning":"so"}}]}"#),
            kinds(false, true, false)
        );
        assert_eq!(
            ok(r#"{"choices":[{"delta":{"reasoning_content":"a","content":"b"}}]}"#),
            kinds(true, true, false)
        );
        // Tool calls: OpenAI's first delta names the function, later ones add arguments.
        let call = r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}]},"finish_reason":null}]}"#;
        assert_eq!(ok(call), kinds(false, false, true));
        assert_eq!(
            ok(
                r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"c"}}]}}]}"#
            ),
            kinds(false, false, true)
        );
        for none in [r#"[]"#, "null", r#"{}"#, r#""x""#, "3"] {
            let data = format!(r#"{{"choices":[{{"delta":{{"tool_calls":{none}}}}}]}}"#);
            assert_eq!(ok(&data), chunk(false, None, None), "{data}");
        }
        // A whole chat body that answers with a call.
        let body = br#"{"choices":[{"message":{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]}}]}"#;
        assert_eq!(classify_body(body), Ok(kinds(false, false, true)));
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
    fn reasoning_tokens_from_usage_details() {
        let data = r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":10,"completion_tokens_details":{"reasoning_tokens":4}}}"#;
        let Event::Chunk(c) = ok(data) else {
            panic!("not a chunk")
        };
        assert_eq!(
            (c.completion_tokens, c.reasoning_tokens, c.prompt_tokens),
            (Some(10), Some(4), Some(3))
        );
        let data = r#"{"choices":[],"usage":{"prompt_tokens":100,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":96}}}"#;
        let Event::Chunk(c) = ok(data) else {
            panic!("not a chunk")
        };
        assert_eq!((c.prompt_tokens, c.cached_tokens), (Some(100), Some(96)));
        for details in [r#"null"#, r#"{}"#, r#"{"reasoning_tokens":null}"#] {
            let data = format!(
                r#"{{"choices":[],"usage":{{"completion_tokens":2,"completion_tokens_details":{details}}}}}"#
            );
            assert_eq!(ok(&data), chunk(false, Some(2), None), "{data}");
        }
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

    fn server_figures(data: &str) -> (Option<f64>, Option<f64>, Option<u64>) {
        match ok(data) {
            Event::Chunk(c) => (c.server_ttft, c.server_tpot, c.cached_tokens),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn server_figures_from_llama_timings() {
        // llama.cpp's last streamed event (its shape as the server sends it).
        let data = r#"{"choices":[],"usage":{"completion_tokens":25,"prompt_tokens":68},"timings":{"cache_n":60,"prompt_n":8,"prompt_ms":43.25,"prompt_per_token_ms":5.4,"prompt_per_second":185.0,"predicted_n":25,"predicted_ms":238.74,"predicted_per_token_ms":9.5,"predicted_per_second":104.7}}"#;
        assert_eq!(
            server_figures(data),
            (Some(0.04325), Some(0.0095), Some(60))
        );
        // usage's cached_tokens wins over cache_n.
        let data = r#"{"choices":[],"usage":{"prompt_tokens_details":{"cached_tokens":7}},"timings":{"cache_n":60,"prompt_ms":"2"}}"#;
        assert_eq!(server_figures(data), (Some(0.002), None, Some(7)));
        // Fireworks' figure wins over llama.cpp's.
        let data = r#"{"choices":[],"perf_metrics":{"fireworks-server-time-to-first-token":0.5},"timings":{"prompt_ms":2}}"#;
        assert_eq!(server_figures(data), (Some(0.5), None, None));
        // Nonsense figures are absent, and other shapes of the names are not errors.
        for data in [
            r#"{"choices":[],"timings":{"prompt_ms":-1,"predicted_per_token_ms":"inf","cache_n":1.5}}"#,
            r#"{"choices":[],"timings":[1,2],"metrics":"fast","perf_metrics":7}"#,
            r#"{"choices":[],"timings":null,"metrics":{"x":{"y":[]}},"perf_metrics":null}"#,
        ] {
            assert_eq!(server_figures(data), (None, None, None), "{data}");
        }
    }

    #[test]
    fn server_figures_from_vllm_metrics() {
        let data = r#"{"choices":[],"usage":{"prompt_tokens":42,"completion_tokens":128},"metrics":{"time_to_first_token_ms":85.0,"generation_time_ms":1240.5,"queue_time_ms":12.3,"mean_itl_ms":9.0,"tokens_per_second":103.2}}"#;
        assert_eq!(server_figures(data), (Some(0.085), Some(0.009), None));
        // A single-token answer has no mean gap.
        let data = r#"{"choices":[],"metrics":{"time_to_first_token_ms":85,"mean_itl_ms":null}}"#;
        assert_eq!(server_figures(data), (Some(0.085), None, None));
        // A whole answer carries them too.
        let body =
            br#"{"choices":[{"message":{"content":"Hi"}}],"metrics":{"time_to_first_token_ms":5}}"#;
        match classify_body(body) {
            Ok(Event::Chunk(c)) => assert_eq!(c.server_ttft, Some(0.005)),
            other => panic!("{other:?}"),
        }
    }
    fn parts(t: &ChunkText) -> Vec<String> {
        t.parts().map(str::to_owned).collect()
    }

    #[test]
    fn text_comes_borrowed_unless_escaped() {
        let data = br#"{"choices":[{"text":" quick","index":0}],"usage":null}"#;
        let (event, text) = classify_text(data).unwrap();
        assert_eq!(event, chunk(true, None, None));
        assert_eq!(parts(&text), [" quick"]);
        assert!(matches!(text.parts[0], Some(Cow::Borrowed(_))));
        // An escape must be decoded: the text is then a copy.
        let (_, text) = classify_text(br#"{"choices":[{"text":"a\nb \u00e9"}]}"#).unwrap();
        assert_eq!(parts(&text), ["a\nb \u{e9}"]);
        assert!(matches!(text.parts[0], Some(Cow::Owned(_))));
        // Chat deltas: content and reasoning, in that order; a role-only delta has none.
        let data = br#"{"choices":[{"delta":{"reasoning_content":"hmm","content":"Hi"}}]}"#;
        let (event, text) = classify_text(data).unwrap();
        assert_eq!(event, kinds(true, true, false));
        assert_eq!(parts(&text), ["Hi", "hmm"]);
        let (event, text) = classify_text(br#"{"choices":[{"delta":{"role":"x"}}]}"#).unwrap();
        assert_eq!((event, text.is_empty()), (chunk(false, None, None), true));
        // Usage, [DONE], keep-alives and errors carry no text; classify agrees on the event.
        for data in [
            &br#"{"choices":[],"usage":{"completion_tokens":3}}"#[..],
            b"[DONE]",
            b"",
            br#"{"error":"x"}"#,
        ] {
            let (event, text) = classify_text(data).unwrap();
            assert!(text.is_empty());
            assert_eq!(Ok(event), classify(data));
        }
        assert_eq!(classify_text(b"{"), Err(EventError::InvalidJson));
        // Non-text values are no text, as for classify.
        let (event, text) = classify_text(br#"{"choices":[{"text":5}]}"#).unwrap();
        assert_eq!((event, text.is_empty()), (chunk(false, None, None), true));
    }

    #[test]
    fn whole_body_text() {
        let chat = br#"{"choices":[{"message":{"role":"assistant","content":"Hello there"}}],"usage":{"prompt_tokens":2}}"#;
        let (event, text) = classify_body_text(chat).unwrap();
        assert_eq!(event, with_prompt(chunk(true, None, None), 2));
        assert_eq!(parts(&text), ["Hello there"]);
        let (_, text) = classify_body_text(br#"{"choices":[{"text":"a b"}]}"#).unwrap();
        assert_eq!(parts(&text), ["a b"]);
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
