//! The JSON body of an OpenAI-compatible completions or chat request, built once per run.
//!
//! It owns the original's default payload and the `payload` overrides merged over it. Turning the
//! result into request bytes (headers, `Authorization`) is `http1`'s and the plan's job, and so is
//! deciding which `stream` the payload carries (an override may change it). The defaults of the
//! fields (model, max_tokens, URL) are `plan::defaults`'.
//!
//! For chat the payload keeps the completions defaults except where a chat server would read them
//! differently or refuse them: `prompt` becomes `messages: [{"role": "user", "content": prompt}]`
//! in the same position, and `logprobs: 2` and `echo: true` are dropped. In the chat API
//! `logprobs` is a boolean (OpenAI and vLLM reject `2`; the count moved to `top_logprobs`), and
//! `echo` (repeat the prompt in the output) is not a chat parameter at all: OpenAI rejects it,
//! and vLLM gives it another meaning. The Fireworks-specific fields (`top_k`,
//! `context_length_exceeded_behavior`) stay, as for completions: Fireworks and vLLM accept them;
//! for a strict server remove them with `"payload": {"top_k": null, ...}`.
//!
//! That payload is Fireworks' ([`PayloadStyle::Fireworks`]), and it changes what other servers
//! do: its `stop` string makes llama.cpp hold back every token that could start it, and
//! `logprobs: 2` makes its answers many times larger. So the command line sends it only to
//! Fireworks and, elsewhere, a minimal OpenAI payload ([`PayloadStyle::OpenAi`]; the rule is
//! [`PayloadStyle::for_host`]); `/fireworks_benchmark` always sends the original's.

use serde_json::{Map, Value, json};

/// Which default payload a run sends (`--payload-style`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadStyle {
    /// The original's payload, as Fireworks reads it: see [`build_payload`].
    Fireworks,
    /// The fields every OpenAI-compatible server reads the same way, and nothing else: `model`,
    /// `prompt` or `messages`, `max_tokens`, `stream`, and `stream_options` when streaming.
    OpenAi,
}

impl PayloadStyle {
    /// Both styles, in the order of the docs.
    pub const ALL: [PayloadStyle; 2] = [PayloadStyle::Fireworks, PayloadStyle::OpenAi];

    /// The name `--payload-style` takes and the report's `config.payload_style` says.
    pub fn name(self) -> &'static str {
        match self {
            PayloadStyle::Fireworks => "fireworks",
            PayloadStyle::OpenAi => "openai",
        }
    }

    /// The inverse of [`PayloadStyle::name`]; `None` for anything else.
    pub fn from_name(name: &str) -> Option<PayloadStyle> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The command line's default for a target host (the one home of the rule): Fireworks'
    /// payload for Fireworks' API (`api.fireworks.ai`, or another host under `fireworks.ai`),
    /// the minimal OpenAI one for any other server.
    pub fn for_host(host: &str) -> PayloadStyle {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if host == "fireworks.ai" || host.ends_with(".fireworks.ai") {
            PayloadStyle::Fireworks
        } else {
            PayloadStyle::OpenAi
        }
    }
}

/// Which OpenAI-compatible API the payload is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// `/v1/completions`: a `prompt` string.
    Completions,
    /// `/v1/chat/completions`: `messages`.
    Chat,
}

impl Api {
    /// The name used in the API's `api` field and the CLI's `--api`.
    pub fn name(self) -> &'static str {
        match self {
            Api::Completions => "completions",
            Api::Chat => "chat",
        }
    }

    /// The inverse of [`Api::name`]; `None` for anything else.
    pub fn from_name(name: &str) -> Option<Api> {
        match name {
            "completions" => Some(Api::Completions),
            "chat" => Some(Api::Chat),
            _ => None,
        }
    }
}

/// What the payload is built from.
#[derive(Clone, Copy, Debug)]
pub struct PayloadInput<'a> {
    pub model: &'a str,
    pub prompt: &'a str,
    pub max_tokens: i64,
    pub stream: bool,
    pub api: Api,
    /// Which default payload the overrides are merged over.
    pub style: PayloadStyle,
    /// Merged over the default: a key replaces (or adds) that key, a `null` removes it.
    pub overrides: Option<&'a Map<String, Value>>,
}

/// The original's default payload, in its key order: `model`, `prompt`, `max_tokens`,
/// `logprobs: 2`, `echo: true`, `temperature: 1`, `top_p: 1`, `top_k: 50`,
/// `frequency_penalty: 0`, `presence_penalty: 0`, `n: 1`, `stop: "<string>"`, `stream`,
/// `context_length_exceeded_behavior: "truncate"`, `user: "<string>"`; then, when streaming,
/// `stream_options: {"include_usage": true}` so servers report token counts. For
/// [`Api::Chat`], see the module docs. [`PayloadStyle::OpenAi`] keeps only `model`, `prompt`
/// (or `messages`), `max_tokens`, `stream` and `stream_options`, in that order. Then
/// `overrides` are merged over the top: replaced keys keep their place, new keys go at the end,
/// and `null` removes a key.
pub fn build_payload(input: &PayloadInput) -> Map<String, Value> {
    let mut p = Map::new();
    p.insert("model".into(), json!(input.model));
    let fireworks = input.style == PayloadStyle::Fireworks;
    match input.api {
        Api::Completions => {
            p.insert("prompt".into(), json!(input.prompt));
            p.insert("max_tokens".into(), json!(input.max_tokens));
            if fireworks {
                p.insert("logprobs".into(), json!(2));
                p.insert("echo".into(), json!(true));
            }
        }
        Api::Chat => {
            p.insert(
                "messages".into(),
                json!([{"role": "user", "content": input.prompt}]),
            );
            p.insert("max_tokens".into(), json!(input.max_tokens));
        }
    }
    if fireworks {
        fireworks_fields(&mut p, input.stream);
    } else {
        p.insert("stream".into(), json!(input.stream));
    }
    if input.stream {
        p.insert("stream_options".into(), json!({"include_usage": true}));
    }
    for (key, value) in input.overrides.into_iter().flatten() {
        if value.is_null() {
            // shift_remove keeps the other keys in order (remove would swap the last one in).
            p.shift_remove(key);
        } else {
            p.insert(key.clone(), value.clone());
        }
    }
    p
}

/// The original's sampling and Fireworks fields after the prompt and `max_tokens`, `stream`
/// among them in its place.
fn fireworks_fields(p: &mut Map<String, Value>, stream: bool) {
    p.insert("temperature".into(), json!(1));
    p.insert("top_p".into(), json!(1));
    p.insert("top_k".into(), json!(50));
    p.insert("frequency_penalty".into(), json!(0));
    p.insert("presence_penalty".into(), json!(0));
    p.insert("n".into(), json!(1));
    p.insert("stop".into(), json!("<string>"));
    p.insert("stream".into(), json!(stream));
    p.insert("context_length_exceeded_behavior".into(), json!("truncate"));
    p.insert("user".into(), json!("<string>"));
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = include_str!("../../tests/fixtures/fireworks_benchmark_response.json");

    fn fixture_payload() -> Map<String, Value> {
        let response: Value = serde_json::from_str(FIXTURE).expect("the fixture is valid JSON");
        response["config"]["fireworks_payload"]
            .as_object()
            .expect("the fixture has a payload")
            .clone()
    }

    fn input(api: Api, stream: bool) -> PayloadInput<'static> {
        PayloadInput {
            model: "mock-model",
            prompt: "Snow is white",
            max_tokens: 25,
            stream,
            api,
            style: PayloadStyle::Fireworks,
            overrides: None,
        }
    }

    fn keys(p: &Map<String, Value>) -> Vec<&str> {
        p.keys().map(String::as_str).collect()
    }

    #[test]
    fn default_completions_payload_is_the_originals() {
        let expected = fixture_payload();
        let streaming = build_payload(&input(Api::Completions, true));
        let (last, rest) = keys(&streaming)
            .split_last()
            .map(|(l, r)| (*l, r.to_vec()))
            .unwrap();
        assert_eq!(rest, keys(&expected), "same keys in the same order");
        assert_eq!(last, "stream_options");
        assert_eq!(streaming["stream_options"], json!({"include_usage": true}));
        let mut without = streaming.clone();
        without.shift_remove("stream_options");
        assert_eq!(without, expected);
        // Serialized byte for byte like the original (integers stay integers).
        assert_eq!(
            serde_json::to_string(&without).unwrap(),
            serde_json::to_string(&expected).unwrap()
        );

        let mut not_streaming = expected.clone();
        not_streaming["stream"] = json!(false);
        assert_eq!(
            build_payload(&input(Api::Completions, false)),
            not_streaming
        );
    }

    #[test]
    fn chat_payload() {
        let p = build_payload(&input(Api::Chat, true));
        assert_eq!(
            keys(&p),
            [
                "model",
                "messages",
                "max_tokens",
                "temperature",
                "top_p",
                "top_k",
                "frequency_penalty",
                "presence_penalty",
                "n",
                "stop",
                "stream",
                "context_length_exceeded_behavior",
                "user",
                "stream_options"
            ]
        );
        assert_eq!(
            p["messages"],
            json!([{"role": "user", "content": "Snow is white"}])
        );
        assert_eq!(p["max_tokens"], json!(25));
        assert_eq!(p["stream"], json!(true));
        let p = build_payload(&input(Api::Chat, false));
        assert!(!p.contains_key("stream_options"));
        assert_eq!(p["stream"], json!(false));
    }

    #[test]
    fn overrides_change_add_and_remove_keys() {
        let overrides = json!({
            "temperature": 0.2,
            "stream_options": null,
            "top_k": null,
            "perf_metrics_in_response": true,
            "absent": null
        });
        let overrides = overrides.as_object().unwrap();
        let p = build_payload(&PayloadInput {
            overrides: Some(overrides),
            ..input(Api::Completions, true)
        });
        assert_eq!(
            keys(&p),
            [
                "model",
                "prompt",
                "max_tokens",
                "logprobs",
                "echo",
                "temperature",
                "top_p",
                "frequency_penalty",
                "presence_penalty",
                "n",
                "stop",
                "stream",
                "context_length_exceeded_behavior",
                "user",
                "perf_metrics_in_response"
            ]
        );
        assert_eq!(p["temperature"], json!(0.2));
        assert_eq!(p["perf_metrics_in_response"], json!(true));
    }

    #[test]
    fn openai_payload_is_minimal() {
        let openai = |api, stream| {
            build_payload(&PayloadInput {
                style: PayloadStyle::OpenAi,
                ..input(api, stream)
            })
        };
        let p = openai(Api::Completions, true);
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"model":"mock-model","prompt":"Snow is white","max_tokens":25,"stream":true,"stream_options":{"include_usage":true}}"#
        );
        let p = openai(Api::Chat, false);
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"model":"mock-model","messages":[{"role":"user","content":"Snow is white"}],"max_tokens":25,"stream":false}"#
        );
        // Overrides go over it as over the original's: temperature or ignore_eos when asked.
        let overrides = json!({"temperature": 0.0, "ignore_eos": true, "stream_options": null});
        let p = build_payload(&PayloadInput {
            style: PayloadStyle::OpenAi,
            overrides: overrides.as_object(),
            ..input(Api::Completions, true)
        });
        assert_eq!(
            keys(&p),
            [
                "model",
                "prompt",
                "max_tokens",
                "stream",
                "temperature",
                "ignore_eos"
            ]
        );
    }

    #[test]
    fn the_style_follows_the_host() {
        for host in ["api.fireworks.ai", "API.Fireworks.AI", "api.fireworks.ai."] {
            assert_eq!(
                PayloadStyle::for_host(host),
                PayloadStyle::Fireworks,
                "{host}"
            );
        }
        for host in [
            "127.0.0.1",
            "localhost",
            "fireworks.ai.example.com",
            "notfireworks.ai",
            "[::1]",
        ] {
            assert_eq!(PayloadStyle::for_host(host), PayloadStyle::OpenAi, "{host}");
        }
        for style in PayloadStyle::ALL {
            assert_eq!(PayloadStyle::from_name(style.name()), Some(style));
        }
        assert_eq!(PayloadStyle::from_name("vllm"), None);
    }

    #[test]
    fn api_names_round_trip() {
        for api in [Api::Completions, Api::Chat] {
            assert_eq!(Api::from_name(api.name()), Some(api));
        }
        assert_eq!(Api::from_name("embeddings"), None);
    }
}
