//! The OpenAI-compatible routes: `/v1/completions` and `/v1/chat/completions`, streamed as SSE with
//! set timings (or answered in one JSON body), and the broken streams of the `sse-*` faults.
//!
//! What an answer holds:
//! - completion tokens: `min(tokens, max_tokens)` (`max_tokens`, or `max_completion_tokens`, from
//!   the request body when positive). Every token is one whitespace-separated word of a fixed
//!   sentence, so a client can count them in the text;
//! - usage: `prompt_tokens` is the number of words of the prompt (completions `prompt`, a string
//!   or an array of strings; chat `messages[*].content`, a string or text parts), and
//!   `completion_tokens` the count above. Streams send usage when the request asks
//!   `stream_options.include_usage` (and the config allows); whole answers always do. With
//!   `stream_options.continuous_usage_stats` as well (vLLM's option), every content event also
//!   carries the usage so far, its `completion_tokens` counting the tokens sent up to it;
//! - framing, checked against llama.cpp's server (tests/mock_server.rs, on fixtures saved from
//!   it): a chat stream opens with a role event (`delta: {"role": "assistant", "content": null}`),
//!   the last content event is followed by one with an empty text or delta and the
//!   `finish_reason` (`length` when max_tokens cut the answer, else `stop`), then the usage event
//!   (`choices: []`) when asked for, then `data: [DONE]`. One event per HTTP chunk;
//! - chunks: each streamed content event carries `tokens_per_chunk` tokens (K), the last one the
//!   remainder. The first content event leaves `ttft` after the request's end; each later one
//!   leaves `n × itl` after the one before, n the tokens it carries: the mock behaves like a
//!   server decoding one token per `itl` that sends a batch when its last token is decoded,
//!   counted from the first batch. So the gap before an event, divided by its tokens, is `itl`
//!   whatever K; with K = 1 event k leaves at `ttft + k × itl`.
//!
//! - the server's own timings, as `server_timings` says ([`ServerTimings`]): Fireworks' header
//!   and `perf_metrics`, llama.cpp's `timings` object, or none.
//!
//! Every event is scheduled from one `Instant` (the request's end), so sleep overshoot never
//! accumulates along a stream. A whole (non-streamed) answer is sent when the stream's last event
//! would have been.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::mock::ServerTimings;
use crate::mock::wire::{Conn, Next, Request, keep_or_close, write_head};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Api {
    Completions,
    Chat,
}

/// How an `sse-*` fault breaks the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SseFault {
    /// The second token event is cut JSON.
    BrokenJson,
    /// The second token event is an `error` object; the stream then ends with `[DONE]`.
    Error,
    /// Tokens and the final event, then the last chunk without `[DONE]`.
    NoDone,
}

/// The text of token `k`: a fixed sentence, so streams are the same from run to run. Each token
/// is one word with its leading space, so the words of any text are its tokens.
const WORDS: [&str; 12] = [
    " The", " quick", " mock", " streams", " tokens", " at", " a", " steady", " pace", " for",
    " the", " client.",
];

/// The text of tokens `first..first + n`.
fn text(first: u64, n: u64) -> String {
    (first..first.saturating_add(n))
        .map(|k| WORDS[(k % WORDS.len() as u64) as usize])
        .collect()
}

/// The parts of an OpenAI request the mock acts on.
#[derive(Debug, PartialEq)]
struct Ask {
    stream: bool,
    max_tokens: Option<u64>,
    include_usage: bool,
    /// Usage in every content event too (vLLM's `continuous_usage_stats`).
    continuous_usage: bool,
    model: String,
    prompt_tokens: u64,
}

impl Default for Ask {
    fn default() -> Self {
        Ask {
            stream: false,
            max_tokens: None,
            include_usage: false,
            continuous_usage: false,
            model: "mock-model".to_string(),
            prompt_tokens: 0,
        }
    }
}

/// The words of a prompt: a string, an array of them, chat messages (their `content`) or content
/// parts (their `text`).
fn words(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.split_whitespace().count() as u64,
        Value::Array(items) => items.iter().map(words).sum(),
        Value::Object(map) => map
            .get("content")
            .or_else(|| map.get("text"))
            .map_or(0, words),
        _ => 0,
    }
}

fn parse_ask(body: &[u8], api: Api) -> Result<Ask, &'static str> {
    let v: Value = serde_json::from_slice(body).map_err(|_| "request body is not JSON")?;
    let Value::Object(map) = v else {
        return Err("request body is not a JSON object");
    };
    let stream = match map.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => true,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => false,
        Some(_) => return Err("stream must be a boolean"),
    };
    let max_tokens = map
        .get("max_tokens")
        .or_else(|| map.get("max_completion_tokens"))
        .and_then(Value::as_u64)
        .filter(|&n| n > 0);
    let option = |name: &str| {
        map.get("stream_options")
            .and_then(|o| o.get(name))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    let include_usage = option("include_usage");
    let continuous_usage = include_usage && option("continuous_usage_stats");
    let model = map
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("mock-model")
        .to_string();
    let prompt = match api {
        Api::Completions => map.get("prompt"),
        Api::Chat => map.get("messages"),
    };
    let prompt_tokens = prompt.map_or(0, words);
    Ok(Ask {
        stream,
        max_tokens,
        include_usage,
        continuous_usage,
        model,
        prompt_tokens,
    })
}

/// The fields every event of one response repeats.
struct Stamp {
    id: String,
    created: u64,
    model: String,
    api: Api,
}

impl Stamp {
    fn event(&self, choices: Value) -> Value {
        let object = match self.api {
            Api::Completions => "text_completion",
            Api::Chat => "chat.completion.chunk",
        };
        json!({"id": self.id, "object": object, "created": self.created, "model": self.model, "choices": choices})
    }

    fn token(&self, text: &str, finish: Option<&str>) -> Value {
        let choice = match self.api {
            Api::Completions => {
                json!({"text": text, "index": 0, "logprobs": null, "finish_reason": finish})
            }
            Api::Chat if finish.is_some() => {
                json!({"index": 0, "delta": {}, "finish_reason": finish})
            }
            Api::Chat => json!({"index": 0, "delta": {"content": text}, "finish_reason": null}),
        };
        self.event(json!([choice]))
    }

    fn usage(prompt: u64, completion: u64) -> Value {
        json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion})
    }

    /// The content event of `n` tokens from token `first`, each of its kind (see [`Kinds`]).
    fn tokens(&self, first: u64, n: u64, kinds: Kinds) -> Value {
        if self.api == Api::Completions {
            // A completions stream has one text: a reasoning model's thinking is part of it.
            return self.token(&text(first, n), None);
        }
        let end = first.saturating_add(n);
        let span = |from: u64, to: u64| (first.max(from), end.min(to));
        let mut delta = serde_json::Map::new();
        let (a, b) = span(0, kinds.reasoning);
        if a < b {
            delta.insert("reasoning_content".into(), json!(text(a, b - a)));
        }
        let (a, b) = span(kinds.reasoning, kinds.tool_from);
        if a < b {
            delta.insert("content".into(), json!(text(a, b - a)));
        }
        let (a, b) = span(kinds.tool_from, u64::MAX);
        if a < b {
            let calls: Vec<Value> = (a..b).map(|k| tool_delta(k - kinds.tool_from)).collect();
            delta.insert("tool_calls".into(), Value::Array(calls));
        }
        let choice = json!({"index": 0, "delta": delta, "finish_reason": null});
        self.event(json!([choice]))
    }
}

/// Which tokens of an answer are which: tokens `0..reasoning` are reasoning (chat:
/// `delta.reasoning_content`), tokens from `tool_from` are a tool call's deltas (chat:
/// `delta.tool_calls`), the rest the answer's text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Kinds {
    reasoning: u64,
    tool_from: u64,
}

/// Tokens of the mock's tool call: one delta names the function, one carries its arguments.
const TOOL_CALL_TOKENS: u64 = 2;

impl Kinds {
    /// The first `reasoning` of `tokens` tokens are reasoning; with `tool_call`, the last
    /// [`TOOL_CALL_TOKENS`] of those left are the call.
    fn of(tokens: u64, reasoning: u64, tool_call: bool) -> Kinds {
        let reasoning = reasoning.min(tokens);
        let tool = if tool_call {
            TOOL_CALL_TOKENS.min(tokens - reasoning)
        } else {
            0
        };
        Kinds {
            reasoning,
            tool_from: tokens - tool,
        }
    }
}

/// The `k`-th delta of the mock's tool call, as OpenAI streams one: the first names it, the
/// next carry its arguments.
fn tool_delta(k: u64) -> Value {
    match k {
        0 => json!({"index": 0, "id": "call_mock", "type": "function",
                    "function": {"name": "lookup", "arguments": ""}}),
        1 => json!({"index": 0, "function": {"arguments": "{\"q\":\"mock\"}"}}),
        _ => json!({"index": 0, "function": {"arguments": " "}}),
    }
}

/// The usage object of an answer: `completion` tokens of which `reasoning` reasoning (its
/// `completion_tokens_details`, sent when there are any), both counts moved by `skew` (the
/// `--usage-skew` of a server that miscounts).
fn usage_of(prompt: u64, completion: u64, reasoning: u64, skew: i64) -> Value {
    let (prompt, completion) = (
        prompt.saturating_add_signed(skew),
        completion.saturating_add_signed(skew),
    );
    let mut usage = Stamp::usage(prompt, completion);
    if reasoning > 0 {
        usage["completion_tokens_details"] = json!({"reasoning_tokens": reasoning});
    }
    usage
}

/// One SSE event in one HTTP chunk.
fn push_event(out: &mut Vec<u8>, data: &str) {
    let len = "data: ".len() + data.len() + 2;
    out.extend_from_slice(format!("{len:x}\r\ndata: ").as_bytes());
    out.extend_from_slice(data.as_bytes());
    out.extend_from_slice(b"\n\n\r\n");
}

/// Answers an LLM request, or rehearses an `sse-*` fault on it.
pub(super) fn answer(conn: &mut Conn, req: &Request, api: Api, fault: Option<SseFault>) -> Next {
    if conn.shared.log.is_some() {
        log_request(conn, req);
    }
    let ask = match (parse_ask(&req.body, api), fault) {
        (Ok(ask), _) => ask,
        // A fault rehearses the broken stream whatever the request says.
        (Err(_), Some(_)) => Ask::default(),
        (Err(detail), None) => {
            let body = json!({"error": {"message": detail, "type": "invalid_request_error"}});
            let body = body.to_string();
            return conn.answer_json(req, 400, body.as_bytes(), &[]);
        }
    };
    let cfg = &conn.shared.cfg;
    let mut tokens = u64::from(cfg.tokens);
    if let Some(cap) = ask.max_tokens {
        tokens = tokens.min(cap);
    }
    // As llama.cpp and OpenAI say: "length" when max_tokens cut the answer short.
    let finish = if tokens < u64::from(cfg.tokens) {
        "length"
    } else {
        "stop"
    };
    let stream = ask.stream || fault.is_some();
    let per_chunk = u64::from(cfg.tokens_per_chunk.max(1));
    if fault.is_some() {
        // The fault needs a second content event to break.
        tokens = tokens.max(per_chunk + 1);
    }
    let stamp = Stamp {
        id: format!(
            "cmpl-mock-{}",
            conn.shared
                .counters
                .requests
                .load(std::sync::atomic::Ordering::Relaxed)
        ),
        created: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        model: ask.model.clone(),
        api,
    };
    let timing = Timing {
        tokens,
        per_chunk,
        ttft: cfg.ttft,
        itl: cfg.itl,
        kinds: Kinds::of(tokens, u64::from(cfg.reasoning_tokens), cfg.tool_call),
        skew: cfg.usage_skew,
        cached: u64::from(cfg.cached_tokens),
        server: cfg.server_timings,
        finish,
    };
    let usage = cfg.usage && ask.include_usage;
    if stream {
        stream_answer(conn, req, &stamp, &ask, timing, usage, fault)
    } else {
        whole_answer(conn, req, &stamp, &ask, timing)
    }
}

/// One line of the request log (`log_requests`): the connection, when it was read (Unix
/// seconds), the completions prompt and the chat messages (null when the body has none), the
/// headers but `Authorization`, and the body's keys in order (`keys`: which payload the client
/// sent).
fn log_request(conn: &Conn, req: &Request) {
    use std::io::Write as _;
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let headers: serde_json::Map<String, Value> = req
        .headers
        .iter()
        .filter(|(n, _)| n != "authorization")
        .map(|(n, v)| (n.clone(), Value::String(v.clone())))
        .collect();
    let keys: Vec<&String> = body
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    // When it was logged (read whole), Unix seconds: tests compare the gaps between requests.
    let received = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let line = json!({
        "conn": conn.id,
        "path": req.path,
        "received": received,
        "prompt": body.get("prompt"),
        "messages": body.get("messages"),
        "headers": headers,
        "keys": keys,
    });
    if let Some(log) = &conn.shared.log
        && let Ok(mut f) = log.lock()
    {
        let _ = writeln!(f, "{line}");
    }
}

/// How many tokens an answer has and when they are due, for both answer shapes.
#[derive(Clone, Copy)]
struct Timing {
    tokens: u64,
    /// Tokens per content event, at least 1.
    per_chunk: u64,
    ttft: Duration,
    itl: Duration,
    kinds: Kinds,
    /// Added to both counts of the usage sent.
    skew: i64,
    /// Prompt tokens said to be cached (at most the prompt's).
    cached: u64,
    /// How the server's own timings are reported.
    server: ServerTimings,
    /// The finish reason of an answer without a tool call: `stop`, or `length` when the
    /// request's max_tokens cut it short.
    finish: &'static str,
}

impl Timing {
    /// llama.cpp's `timings` object for an answer of `prompt` prompt tokens: the prompt took
    /// `ttft` (the cached ones skipped), each generated token `itl`.
    fn llama_timings(self, prompt: u64) -> Value {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let cache_n = self.cached.min(prompt);
        let prompt_n = prompt - cache_n;
        let (prompt_ms, per_token_ms) = (ms(self.ttft), ms(self.itl));
        let per_second = |n: u64, ms: f64| {
            if ms > 0.0 {
                n as f64 * 1000.0 / ms
            } else {
                0.0
            }
        };
        let predicted_ms = per_token_ms * self.tokens as f64;
        json!({
            "cache_n": cache_n,
            "prompt_n": prompt_n,
            "prompt_ms": prompt_ms,
            "prompt_per_token_ms": if prompt_n > 0 { prompt_ms / prompt_n as f64 } else { 0.0 },
            "prompt_per_second": per_second(prompt_n, prompt_ms),
            "predicted_n": self.tokens,
            "predicted_ms": predicted_ms,
            "predicted_per_token_ms": per_token_ms,
            "predicted_per_second": per_second(self.tokens, predicted_ms),
        })
    }

    fn usage(self, prompt: u64, sent: u64) -> Value {
        let mut usage = usage_of(prompt, sent, self.kinds.reasoning.min(sent), self.skew);
        if self.cached > 0 {
            usage["prompt_tokens_details"] = json!({"cached_tokens": self.cached.min(prompt)});
        }
        usage
    }
}

impl Timing {
    fn chunks(self) -> impl Iterator<Item = Chunk> {
        chunks(self.tokens, self.per_chunk)
    }

    /// When the event `gaps` inter-token gaps after the first is due, for a request that ended
    /// at `end`; None past what an `Instant` can hold.
    fn due(self, end: Instant, gaps: u64) -> Option<Instant> {
        deadline(end.checked_add(self.ttft)?, self.itl, gaps)
    }
}

/// One streamed content event: the tokens it carries and when it is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Chunk {
    /// Index of its first token.
    first: u64,
    /// Tokens it carries, at least 1.
    tokens: u64,
    /// When it is due after the first content event, in inter-token gaps.
    gaps: u64,
}

/// The content events of `tokens` tokens sent `per_chunk` at a time (see the module docs): event
/// j carries tokens `j·K .. min((j+1)·K, tokens)` and is due when its last token is, counted from
/// the first event's last token.
fn chunks(tokens: u64, per_chunk: u64) -> impl Iterator<Item = Chunk> {
    let per = per_chunk.max(1);
    let lead = per.min(tokens);
    (0..tokens.div_ceil(per)).map(move |j| {
        let first = j * per;
        let n = per.min(tokens - first);
        Chunk {
            first,
            tokens: n,
            gaps: first + n - lead,
        }
    })
}

/// `start + k × itl`, or None past what an `Instant` can hold.
fn deadline(start: Instant, itl: Duration, k: u64) -> Option<Instant> {
    let k = u32::try_from(k).ok()?;
    start.checked_add(itl.checked_mul(k)?)
}

fn stream_answer(
    conn: &mut Conn,
    req: &Request,
    stamp: &Stamp,
    ask: &Ask,
    timing: Timing,
    usage: bool,
    fault: Option<SseFault>,
) -> Next {
    conn.out.clear();
    // As Fireworks does: the server's own time to first token, in seconds, so clients can tell
    // network and client time from server time. The mock's is the configured `ttft`.
    let server_ttft = format!("{:.6}", timing.ttft.as_secs_f64());
    let fireworks = timing.server == ServerTimings::Fireworks;
    let with_header = [
        ("Cache-Control", "no-cache"),
        ("fireworks-server-time-to-first-token", server_ttft.as_str()),
    ];
    let extra = if fireworks {
        &with_header[..]
    } else {
        &with_header[..1]
    };
    write_head(
        &mut conn.out,
        200,
        "text/event-stream",
        None,
        req.keep_alive,
        extra,
    );
    if stamp.api == Api::Chat {
        // `content: null` beside the role, as llama.cpp's server sends it: a client must not
        // take the role event for a token, nor choke on the null.
        let role = json!([{"index": 0, "delta": {"role": "assistant", "content": null}, "finish_reason": null}]);
        push_event(&mut conn.out, &stamp.event(role).to_string());
    }
    conn.shared.counters.count_status(200);
    if !conn.send_out() {
        return Next::Abort;
    }
    // When the first token really left, measured here: sent in the final event as Fireworks'
    // `perf_metrics`, so a client can tell its own share of the time to first token.
    let mut first_sent: Option<Duration> = None;
    // Bounded by `tokens` (a u32 from the config) and the stop flag inside sleep_until.
    for (j, chunk) in timing.chunks().enumerate() {
        let Some(at) = timing.due(req.end, chunk.gaps) else {
            return Next::Abort;
        };
        if !conn.sleep_until(at) {
            return Next::Abort;
        }
        conn.out.clear();
        match (fault, j) {
            (Some(SseFault::BrokenJson), 1) => {
                push_event(
                    &mut conn.out,
                    r#"{"id":"cmpl-mock","choices":[{"text":" bro"#,
                );
            }
            (Some(SseFault::Error), 1) => {
                let error =
                    json!({"error": {"message": "mock overloaded", "type": "server_error"}});
                push_event(&mut conn.out, &error.to_string());
                push_event(&mut conn.out, "[DONE]");
                conn.out.extend_from_slice(b"0\r\n\r\n");
                return if conn.send_out() {
                    keep_or_close(req.keep_alive)
                } else {
                    Next::Abort
                };
            }
            _ => {
                let mut event = stamp.tokens(chunk.first, chunk.tokens, timing.kinds);
                if usage && ask.continuous_usage {
                    let sent = chunk.first + chunk.tokens;
                    event["usage"] = timing.usage(ask.prompt_tokens, sent);
                }
                push_event(&mut conn.out, &event.to_string());
            }
        }
        if !conn.send_out() {
            return Next::Abort;
        }
        if j == 0 {
            first_sent = Some(req.end.elapsed());
        }
    }
    conn.out.clear();
    let called = stamp.api == Api::Chat && timing.kinds.tool_from < timing.tokens;
    let mut stop = stamp.token("", Some(if called { "tool_calls" } else { timing.finish }));
    if let (Some(t), true) = (first_sent, fireworks) {
        stop["perf_metrics"] = json!({"fireworks-server-time-to-first-token": t.as_secs_f64()});
    }
    let llama = timing.server == ServerTimings::Llama;
    // llama.cpp sends its timings in the stream's last event: the usage event when there is one.
    if llama && !usage {
        stop["timings"] = timing.llama_timings(ask.prompt_tokens);
    }
    push_event(&mut conn.out, &stop.to_string());
    if usage {
        let mut event = stamp.event(json!([]));
        event["usage"] = timing.usage(ask.prompt_tokens, timing.tokens);
        if llama {
            event["timings"] = timing.llama_timings(ask.prompt_tokens);
        }
        push_event(&mut conn.out, &event.to_string());
    }
    if fault != Some(SseFault::NoDone) {
        push_event(&mut conn.out, "[DONE]");
    }
    conn.out.extend_from_slice(b"0\r\n\r\n");
    if !conn.send_out() {
        return Next::Abort;
    }
    keep_or_close(req.keep_alive)
}

fn whole_answer(conn: &mut Conn, req: &Request, stamp: &Stamp, ask: &Ask, timing: Timing) -> Next {
    let last = timing.chunks().last().map_or(0, |c| c.gaps);
    let Some(done) = timing.due(req.end, last) else {
        return Next::Abort;
    };
    if !conn.sleep_until(done) {
        return Next::Abort;
    }
    let k = timing.kinds;
    let choice = match stamp.api {
        Api::Completions => {
            let text = text(0, timing.tokens);
            json!({"text": text, "index": 0, "logprobs": null, "finish_reason": timing.finish})
        }
        Api::Chat => {
            let mut message = json!({"role": "assistant", "content": text(k.reasoning, k.tool_from - k.reasoning)});
            if k.reasoning > 0 {
                message["reasoning_content"] = json!(text(0, k.reasoning));
            }
            let mut finish = timing.finish;
            if k.tool_from < timing.tokens {
                message["tool_calls"] = json!([{"id": "call_mock", "type": "function",
                    "function": {"name": "lookup", "arguments": "{\"q\":\"mock\"}"}}]);
                finish = "tool_calls";
            }
            json!({"index": 0, "message": message, "finish_reason": finish})
        }
    };
    let object = match stamp.api {
        Api::Completions => "text_completion",
        Api::Chat => "chat.completion",
    };
    let body = json!({
        "id": stamp.id,
        "object": object,
        "created": stamp.created,
        "model": stamp.model,
        "choices": [choice],
        "usage": timing.usage(ask.prompt_tokens, timing.tokens),
    });
    let mut body = body;
    if timing.server == ServerTimings::Llama {
        body["timings"] = timing.llama_timings(ask.prompt_tokens);
    }
    let body = body.to_string();
    conn.answer_json(req, 200, body.as_bytes(), &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_completions_requests() {
        let body = br#"{"model":"m","prompt":"a b c","max_tokens":5,"stream":true,
                        "stream_options":{"include_usage":true}}"#;
        let ask = parse_ask(body, Api::Completions).unwrap();
        assert_eq!(
            ask,
            Ask {
                stream: true,
                max_tokens: Some(5),
                include_usage: true,
                continuous_usage: false,
                model: "m".to_string(),
                prompt_tokens: 3,
            }
        );
        let ask = parse_ask(br#"{"stream":"True"}"#, Api::Completions).unwrap();
        assert!(ask.stream);
        assert_eq!(ask.prompt_tokens, 0);
        let ask = parse_ask(br#"{"prompt":["a b", " c  d\ne "]}"#, Api::Completions).unwrap();
        assert_eq!(ask.prompt_tokens, 5);
    }

    #[test]
    fn parses_chat_requests() {
        let body = br#"{"messages":[{"role":"user","content":"hello there"}],"max_tokens":0}"#;
        let ask = parse_ask(body, Api::Chat).unwrap();
        assert_eq!(
            (ask.stream, ask.max_tokens, ask.prompt_tokens),
            (false, None, 2)
        );
        // Every message counts, roles do not; content may come as text parts.
        let body = br#"{"messages":[{"role":"system","content":"be brief"},
            {"role":"user","content":[{"type":"text","text":"one two three"}]}],
            "max_completion_tokens":4}"#;
        let ask = parse_ask(body, Api::Chat).unwrap();
        assert_eq!((ask.max_tokens, ask.prompt_tokens), (Some(4), 5));
    }

    #[test]
    fn rejects_bad_requests() {
        assert!(parse_ask(b"", Api::Completions).is_err());
        assert!(parse_ask(b"[1]", Api::Completions).is_err());
        assert!(parse_ask(br#"{"stream":3}"#, Api::Completions).is_err());
    }

    #[test]
    fn events_are_chunks() {
        let mut out = Vec::new();
        push_event(&mut out, "[DONE]");
        assert_eq!(out, b"e\r\ndata: [DONE]\n\n\r\n");
    }

    #[test]
    fn event_shapes() {
        let chat = Stamp {
            id: "x".to_string(),
            created: 1,
            model: "m".to_string(),
            api: Api::Chat,
        };
        assert_eq!(
            chat.token("hi", None)["choices"][0]["delta"]["content"],
            "hi"
        );
        assert_eq!(
            chat.token("", Some("stop"))["choices"][0]["delta"],
            json!({})
        );
        let completions = Stamp {
            api: Api::Completions,
            ..chat
        };
        let stop = completions.token("", Some("stop"));
        assert_eq!(stop["choices"][0]["text"], "");
        assert_eq!(stop["choices"][0]["finish_reason"], "stop");
        assert_eq!(stop["object"], "text_completion");
    }

    fn chunk_list(tokens: u64, per_chunk: u64) -> Vec<(u64, u64, u64)> {
        chunks(tokens, per_chunk)
            .map(|c| (c.first, c.tokens, c.gaps))
            .collect()
    }

    #[test]
    fn reasoning_then_content_then_a_tool_call() {
        let chat = Stamp {
            id: "x".to_string(),
            created: 1,
            model: "m".to_string(),
            api: Api::Chat,
        };
        let kinds = Kinds::of(8, 3, true);
        assert_eq!(
            kinds,
            Kinds {
                reasoning: 3,
                tool_from: 6
            }
        );
        let delta = |first, n| chat.tokens(first, n, kinds)["choices"][0]["delta"].clone();
        assert_eq!(delta(0, 1), json!({"reasoning_content": " The"}));
        // A chunk across kinds carries each part in its field.
        assert_eq!(
            delta(2, 2),
            json!({"reasoning_content": " mock", "content": " streams"})
        );
        assert_eq!(delta(6, 1)["tool_calls"][0]["function"]["name"], "lookup");
        assert_eq!(
            delta(7, 1)["tool_calls"][0]["function"]["arguments"],
            r#"{"q":"mock"}"#
        );
        // Fewer tokens than asked for: reasoning first, the call only from what is left.
        assert_eq!(
            Kinds::of(2, 5, true),
            Kinds {
                reasoning: 2,
                tool_from: 2
            }
        );
        assert_eq!(
            Kinds::of(5, 0, false),
            Kinds {
                reasoning: 0,
                tool_from: 5
            }
        );
        let usage = usage_of(4, 10, 3, -1);
        assert_eq!(
            usage,
            json!({"prompt_tokens": 3, "completion_tokens": 9, "total_tokens": 12,
                   "completion_tokens_details": {"reasoning_tokens": 3}})
        );
        assert_eq!(usage_of(0, 2, 0, -5)["completion_tokens"], 0);
    }

    #[test]
    fn chunks_carry_k_tokens_and_the_remainder_last() {
        // (first token, tokens, gaps after the first event): each event is due when its last
        // token is, so the gap before it is its own tokens × itl.
        assert_eq!(
            chunk_list(10, 3),
            [(0, 3, 0), (3, 3, 3), (6, 3, 6), (9, 1, 7)]
        );
        assert_eq!(
            chunk_list(4, 1),
            [(0, 1, 0), (1, 1, 1), (2, 1, 2), (3, 1, 3)]
        );
        assert_eq!(chunk_list(6, 3), [(0, 3, 0), (3, 3, 3)]);
        assert_eq!(chunk_list(2, 5), [(0, 2, 0)]);
        assert_eq!(chunk_list(0, 3), []);
        // 0 is taken as 1.
        assert_eq!(chunk_list(2, 0), [(0, 1, 0), (1, 1, 1)]);
        for (tokens, per) in [(1, 1), (7, 2), (20, 4), (13, 13), (100, 7)] {
            let list = chunk_list(tokens, per);
            assert_eq!(list.iter().map(|c| c.1).sum::<u64>(), tokens);
            for pair in list.windows(2) {
                assert_eq!(pair[0].0 + pair[0].1, pair[1].0, "contiguous");
                assert_eq!(pair[1].2 - pair[0].2, pair[1].1, "gap = its tokens");
            }
        }
    }

    #[test]
    fn every_token_is_one_word() {
        for (first, n) in [(0, 1), (0, 12), (5, 30), (11, 2)] {
            let t = text(first, n);
            assert_eq!(t.split_whitespace().count() as u64, n, "{t:?}");
        }
        assert_eq!(text(0, 3), " The quick mock");
        assert_eq!(text(11, 2), " client. The");
    }

    #[test]
    fn deadlines_come_from_one_origin() {
        let start = Instant::now();
        let itl = Duration::from_millis(10);
        assert_eq!(deadline(start, itl, 0), Some(start));
        assert_eq!(
            deadline(start, itl, 7),
            Some(start + Duration::from_millis(70))
        );
        assert_eq!(deadline(start, Duration::MAX, 2), None);
    }
}
