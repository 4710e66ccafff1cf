//! What goes on the wire: the method and headers checked once (so nothing the request writer
//! would refuse reaches it), the LLM request shaped (payload, method, auth headers, the chat path),
//! and the request bytes built once. Which body mode reads the answer is decided here too, from the
//! `stream` the payload finally carries. A run with many prompts builds its other requests from
//! what is decided here ([`super::workload`]).

use serde_json::{Map, Value, json};

use super::input::{Input, LlmInput, json_bool};
use super::workload::Requests;
use super::{BodyMode, LlmPlan, PlanError, Target, invalid};
use crate::http1::{build_request, is_field_value, is_token};
use crate::llm::{Api, PayloadInput, PayloadStyle, build_payload};

/// The request of a run, ready for the engine and the `config` echo.
pub(super) struct Shaped {
    pub target: Target,
    /// Upper case, as sent.
    pub method: String,
    /// The headers sent, the LLM ones included.
    pub headers: Vec<(String, String)>,
    /// The one request of a single-prompt run.
    pub requests: Requests,
    pub body_len: usize,
    pub body_mode: BodyMode,
    /// With the payload sent, for LLM runs.
    pub llm: Option<(LlmPlan, Map<String, Value>)>,
    /// What is merged over every LLM payload: `ignore_eos`, then the user's `payload`.
    pub overrides: Option<Map<String, Value>>,
}

pub(super) fn shape(input: &Input, mut target: Target) -> Result<Shaped, PlanError> {
    let mut method = input.method.clone().unwrap_or_else(|| "GET".into());
    if !is_token(&method) {
        return Err(invalid(
            "method",
            "method must be an HTTP token such as GET or POST".into(),
        ));
    }
    method.make_ascii_uppercase();
    check_headers(&input.headers)?;
    let mut headers = input.headers.clone();
    let mut body = input.body.clone().unwrap_or_default().into_bytes();
    let mut llm = None;
    let mut body_mode = BodyMode::Plain;
    let mut overrides = None;
    if let Some(l) = &input.llm {
        overrides = merged_overrides(l, input.workload.ignore_eos);
        let (mut plan, payload) = shape_llm(l, overrides.as_ref(), &mut target, &mut headers)?;
        plan.prompt_overhead_tokens = input.workload.prompt_overhead_tokens;
        body = serde_json::to_vec(&payload).map_err(|e| invalid("payload", e.to_string()))?;
        if input.method.is_none() {
            method = "POST".into();
        }
        body_mode = if plan.stream {
            BodyMode::Sse
        } else {
            BodyMode::WholeJson
        };
        llm = Some((plan, payload));
    }
    let request = build_request(&method, &target.host_header, &target.path, &headers, &body);
    Ok(Shaped {
        target,
        method,
        headers,
        requests: Requests::single(request),
        body_len: body.len(),
        body_mode,
        llm,
        overrides,
    })
}

/// `"ignore_eos": true` when asked (the field vLLM-compatible servers read to keep generating
/// to `max_tokens`), with the user's `payload` merged over it: theirs wins.
fn merged_overrides(l: &LlmInput, ignore_eos: bool) -> Option<Map<String, Value>> {
    if !ignore_eos {
        return l.payload.clone();
    }
    let mut m = Map::new();
    m.insert("ignore_eos".into(), json!(true));
    m.extend(
        l.payload
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    Some(m)
}

/// Every name an HTTP token and every value one [`is_field_value`] accepts: the rule the request
/// writer relies on, so no control character reaches the wire. Errors name the header, never its
/// value (it may be a credential).
pub(super) fn check_headers(headers: &[(String, String)]) -> Result<(), PlanError> {
    for (name, value) in headers {
        if !is_token(name) {
            return Err(invalid("headers", format!("invalid header name {name:?}")));
        }
        if is_field_value(value) {
            continue;
        }
        let why = if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            "a line break"
        } else if value.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
            "a control character"
        } else {
            "leading or trailing whitespace"
        };
        return Err(invalid(
            "headers",
            format!("header {name:?} has {why} in its value"),
        ));
    }
    Ok(())
}

/// The LLM request: the chat path, the payload (with the `stream` it finally carries), and the
/// `Authorization` and `Content-Type` headers, replacing any the user gave.
fn shape_llm(
    l: &LlmInput,
    overrides: Option<&Map<String, Value>>,
    target: &mut Target,
    headers: &mut Vec<(String, String)>,
) -> Result<(LlmPlan, Map<String, Value>), PlanError> {
    if l.api == Api::Chat && target.path.ends_with("/v1/completions") {
        let cut = target.path.len() - "/completions".len();
        target.path = format!("{}/chat/completions", &target.path[..cut]);
    }
    let stream = final_stream(l)?;
    let style = l
        .payload_style
        .unwrap_or_else(|| PayloadStyle::for_host(&target.host));
    let payload = build_payload(&PayloadInput {
        model: &l.model,
        prompt: &l.prompt,
        max_tokens: l.max_tokens,
        stream,
        api: l.api,
        style,
        overrides,
    });
    let auth = format!("Bearer {}", l.token.trim());
    if !is_field_value(&auth) {
        // Never the token itself in the message.
        return Err(invalid(
            "token",
            "token must not contain control characters or line breaks".into(),
        ));
    }
    headers.retain(|(n, _)| {
        !n.eq_ignore_ascii_case("authorization") && !n.eq_ignore_ascii_case("content-type")
    });
    headers.push(("Authorization".into(), auth));
    headers.push(("Content-Type".into(), "application/json".into()));
    Ok((
        LlmPlan {
            stream,
            api: l.api,
            payload_style: style,
            prompt_overhead_tokens: 0,
        },
        payload,
    ))
}

/// The `stream` the server will read, which decides how its answer is read: the payload's when
/// it sets one (`null` removes the key, and an OpenAI-compatible server then answers in one JSON
/// body), else the `stream` field. Deciding it before the payload is built keeps `stream_options`
/// with streaming requests only: servers refuse it on the others.
fn final_stream(l: &LlmInput) -> Result<bool, PlanError> {
    match l.payload.as_ref().and_then(|p| p.get("stream")) {
        None => Ok(l.stream),
        Some(Value::Null) => Ok(false),
        Some(v) => json_bool(v).ok_or_else(|| {
            invalid(
                "payload",
                "payload stream must be true or false (or \"true\"/\"True\"/\"false\"/\"False\")"
                    .into(),
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn h(name: &str, value: &str) -> Vec<(String, String)> {
        vec![(name.into(), value.into())]
    }

    #[test]
    fn header_values_follow_the_writers_rule() {
        assert_eq!(check_headers(&h("X-Ok", "a\tb c")), Ok(()));
        assert_eq!(check_headers(&h("X-Empty", "")), Ok(()));
        for (value, why) in [
            ("a\r\nInjected: 1", "a line break"),
            ("a\nb", "a line break"),
            ("a\0b", "a line break"),
            ("a\u{7}b", "a control character"),
            ("\u{1b}[31m", "a control character"),
            ("a\u{7f}", "a control character"),
            (" lead", "leading or trailing whitespace"),
            ("trail\t", "leading or trailing whitespace"),
        ] {
            assert_eq!(
                check_headers(&h("X-A", value)),
                Err(invalid(
                    "headers",
                    format!("header \"X-A\" has {why} in its value")
                )),
                "{value:?}"
            );
        }
        assert_eq!(
            check_headers(&h("X A", "v")),
            Err(invalid("headers", "invalid header name \"X A\"".into()))
        );
    }

    fn llm(stream: bool, payload: Value) -> LlmInput {
        LlmInput {
            stream,
            payload: payload.as_object().cloned(),
            ..LlmInput::example()
        }
    }

    #[test]
    fn the_payloads_stream_wins() {
        for (stream, payload, want) in [
            (true, json!(null), Ok(true)),
            (false, json!(null), Ok(false)),
            (true, json!({"stream": false}), Ok(false)),
            (false, json!({"stream": true}), Ok(true)),
            (false, json!({"stream": "True"}), Ok(true)),
            (true, json!({"stream": null}), Ok(false)),
            (true, json!({"n": 2}), Ok(true)),
        ] {
            assert_eq!(
                final_stream(&llm(stream, payload.clone())),
                want,
                "{payload}"
            );
        }
        assert!(final_stream(&llm(true, json!({"stream": 1}))).is_err());
    }

    #[test]
    fn llm_shaping() {
        let mut i = Input::new("http://h/v1/completions", super::super::Rate::Max, 1.0);
        let mut l = llm(true, json!({"stream": false}));
        l.api = Api::Chat;
        i.llm = Some(l.clone());
        i.headers = vec![
            ("authorization".into(), "Bearer other".into()),
            ("X-Keep".into(), "1".into()),
        ];
        let s = shape(&i, Target::parse(&i.url).unwrap()).unwrap();
        assert_eq!(s.target.path, "/v1/chat/completions");
        assert_eq!(s.method, "POST");
        assert_eq!(s.body_mode, BodyMode::WholeJson);
        let (plan, payload) = s.llm.unwrap();
        assert!(!plan.stream);
        assert_eq!(payload["stream"], json!(false));
        assert!(!payload.contains_key("stream_options"));
        let req = String::from_utf8(s.requests.first().to_vec()).unwrap();
        assert!(req.contains("\r\nAuthorization: Bearer t\r\n"), "{req}");
        assert!(
            !req.contains("other"),
            "the user's Authorization is replaced"
        );
        assert!(req.contains("\r\nX-Keep: 1\r\n"));

        l.token = "t\r\nX-Injected: 1".into();
        i.llm = Some(l);
        let e = shape(&i, Target::parse(&i.url).unwrap()).err().unwrap();
        assert!(matches!(e, PlanError::Invalid { field: "token", .. }));
        assert!(!e.to_string().contains("Injected"), "{e}");
    }
}
