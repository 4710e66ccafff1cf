//! The API server end to end (SPEC §5): a real server on a loopback port, spoken to with a tiny
//! std HTTP client, against a tiny std target.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use pacer::api::{ApiConfig, ApiServer};
use pacer::plan::Limits;
use serde_json::{Value, json};

const TOKEN: &str = "tok-SECRET-4b1d";

fn config() -> ApiConfig {
    ApiConfig {
        addr: "127.0.0.1:0".into(),
        limits: Limits {
            max_qps: 1000.0,
            max_duration: 60.0,
            max_workers: 100,
        },
        max_runs: 2,
        ..ApiConfig::default()
    }
}

fn start(cfg: ApiConfig) -> ApiServer {
    ApiServer::start(cfg).expect("the API binds a loopback port")
}

struct Resp {
    status: u16,
    head: String,
    body: Value,
    raw: String,
}

/// Sends `raw` on a new connection and reads the whole response (the request asks to close).
fn exchange(addr: SocketAddr, raw: &[u8]) -> Resp {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // The server may answer (413) before reading everything; what it said is still readable.
    let _ = s.write_all(raw);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    parse(&buf)
}

fn parse(buf: &[u8]) -> Resp {
    let text = String::from_utf8_lossy(buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Resp {
        status,
        head: head.to_string(),
        body: serde_json::from_str(body).unwrap_or(Value::Null),
        raw: text.clone(),
    }
}

fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut raw = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (n, v) in headers {
        raw.push_str(&format!("{n}: {v}\r\n"));
    }
    raw.push_str("\r\n");
    let mut bytes = raw.into_bytes();
    bytes.extend_from_slice(body);
    exchange(addr, &bytes)
}

fn get(addr: SocketAddr, path: &str) -> Resp {
    request(addr, "GET", path, &[], b"")
}

fn post(addr: SocketAddr, path: &str, body: &str) -> Resp {
    request(
        addr,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
}

/// A loopback port with nothing listening.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A keep-alive target answering every request with `response`, until the test process ends.
fn target(response: &'static [u8]) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    thread::spawn(move || {
        for conn in l.incoming().flatten() {
            thread::spawn(move || serve_conn(conn, response));
        }
    });
    addr
}

fn serve_conn(conn: TcpStream, response: &[u8]) {
    conn.set_read_timeout(Some(Duration::from_secs(20))).ok();
    let mut w = conn.try_clone().unwrap();
    let mut r = BufReader::new(conn);
    loop {
        let mut len = 0usize;
        let mut line = String::new();
        loop {
            line.clear();
            match r.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line == "\r\n" {
                break;
            }
            if let Some((n, v)) = line.split_once(':')
                && n.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; len];
        if r.read_exact(&mut body).is_err() || w.write_all(response).is_err() {
            return;
        }
    }
}

#[test]
fn fixed_routes_and_unknown_ones() {
    let api = start(config());
    let a = api.addr();
    let r = get(a, "/");
    assert_eq!(
        (r.status, r.body),
        (200, json!({"message": "Hello, World!"}))
    );
    assert!(
        r.head
            .to_ascii_lowercase()
            .contains("content-type: application/json")
    );
    assert_eq!(get(a, "/health").body, json!({"status": "ok"}));

    let r = get(a, "/openapi.json");
    assert_eq!(r.status, 200);
    assert!(r.body["openapi"].as_str().unwrap().starts_with("3.0"));
    let paths = r.body["paths"].as_object().unwrap();
    for (path, method) in [
        ("/", "get"),
        ("/health", "get"),
        ("/openapi.json", "get"),
        ("/benchmark", "post"),
        ("/fireworks_benchmark", "post"),
    ] {
        assert!(paths[path][method].is_object(), "{method} {path}");
    }
    assert_eq!(
        paths.len(),
        5,
        "no route described that the server does not answer"
    );

    let r = get(a, "/nope");
    assert_eq!((r.status, r.body), (404, json!({"detail": "Not Found"})));
    let r = get(a, "/benchmark?x=1");
    assert_eq!(
        (r.status, r.body),
        (405, json!({"detail": "Method Not Allowed"}))
    );
    assert!(r.head.contains("Allow: POST"), "{}", r.head);
    let r = post(a, "/", "{}");
    assert_eq!(
        (r.status, r.body),
        (405, json!({"detail": "Method Not Allowed"}))
    );
    api.shutdown();
}

/// What a bad request must answer: the status and either the exact message or the first
/// validation entry's `(loc field, type)`.
enum Want {
    Msg(u16, &'static str),
    Field(&'static str, &'static str),
    Body(&'static str),
}

fn check(a: SocketAddr, path: &str, resp: Resp, want: &Want, what: &str) {
    assert!(
        !resp.raw.contains(TOKEN),
        "{what}: the token leaked: {}",
        resp.raw
    );
    let d = &resp.body["detail"];
    match *want {
        Want::Msg(status, msg) => {
            assert_eq!(
                (resp.status, d.as_str()),
                (status, Some(msg)),
                "{what} on {path}"
            );
        }
        Want::Field(field, kind) => {
            assert_eq!(resp.status, 422, "{what} on {path}: {}", resp.raw);
            assert_eq!(d[0]["loc"], json!(["body", field]), "{what}: {d}");
            assert_eq!(d[0]["type"], json!(kind), "{what}: {d}");
            assert!(
                d[0]["msg"].as_str().is_some_and(|m| !m.is_empty()),
                "{what}"
            );
        }
        Want::Body(kind) => {
            assert_eq!(resp.status, 422, "{what} on {path}: {}", resp.raw);
            assert_eq!(d[0]["loc"][0], json!("body"), "{what}: {d}");
            assert_eq!(d[0]["type"], json!(kind), "{what}: {d}");
        }
    }
    let _ = a;
}

#[test]
fn bad_benchmark_bodies() {
    let api = start(config());
    let a = api.addr();
    let ok = r#""url": "http://127.0.0.1:9/", "qps": 1, "duration": 1"#;
    let cases: Vec<(&str, String, Want)> = vec![
        (
            "malformed JSON",
            "{url: 1}".into(),
            Want::Body("json_invalid"),
        ),
        (
            "truncated JSON",
            r#"{"url": "http://h/", "qps""#.into(),
            Want::Body("json_invalid"),
        ),
        ("empty body", String::new(), Want::Body("missing")),
        (
            "not an object",
            "[1, 2]".into(),
            Want::Body("model_attributes_type"),
        ),
        (
            "missing url",
            r#"{"qps": 1, "duration": 1}"#.into(),
            Want::Field("url", "missing"),
        ),
        (
            "null url",
            r#"{"url": null, "qps": 1, "duration": 1}"#.into(),
            Want::Field("url", "string_type"),
        ),
        (
            "qps 0",
            r#"{"url": "http://h/", "qps": 0, "duration": 1}"#.into(),
            Want::Msg(400, "QPS, duration and timeout must be positive integers"),
        ),
        (
            "qps -1",
            r#"{"url": "http://h/", "qps": -1, "duration": 1}"#.into(),
            Want::Msg(400, "QPS, duration and timeout must be positive integers"),
        ),
        (
            "qps abc",
            r#"{"url": "http://h/", "qps": "abc", "duration": 1}"#.into(),
            Want::Field("qps", "float_parsing"),
        ),
        (
            "qps 1e309",
            r#"{"url": "http://h/", "qps": 1e309, "duration": 1}"#.into(),
            Want::Body("json_invalid"),
        ),
        (
            "timeout 0",
            format!(r#"{{{ok}, "timeout": 0}}"#),
            Want::Msg(400, "QPS, duration and timeout must be positive integers"),
        ),
        (
            "ftp url",
            r#"{"url": "ftp://h/", "qps": 1, "duration": 1}"#.into(),
            Want::Field("url", "value_error"),
        ),
        (
            "url without host",
            r#"{"url": "http:///x", "qps": 1, "duration": 1}"#.into(),
            Want::Field("url", "value_error"),
        ),
        (
            "duration past the limit",
            r#"{"url": "http://h/", "qps": 1, "duration": 61}"#.into(),
            Want::Field("duration", "value_error"),
        ),
        (
            "qps past the limit",
            r#"{"url": "http://h/", "qps": 1001, "duration": 1}"#.into(),
            Want::Field("qps", "value_error"),
        ),
        (
            "num_workers past the limit",
            format!(r#"{{{ok}, "num_workers": 101}}"#),
            Want::Field("num_workers", "value_error"),
        ),
        (
            "num_workers not an integer",
            format!(r#"{{{ok}, "num_workers": 2.5}}"#),
            Want::Field("num_workers", "int_from_float"),
        ),
        (
            "headers not an object",
            format!(r#"{{{ok}, "headers": "X: y"}}"#),
            Want::Field("headers", "dict_type"),
        ),
        (
            "unknown arrival",
            format!(r#"{{{ok}, "arrival": "burst"}}"#),
            Want::Field("arrival", "literal_error"),
        ),
        (
            "insecure not a boolean",
            format!(r#"{{{ok}, "insecure": "perhaps"}}"#),
            Want::Field("insecure", "bool_parsing"),
        ),
    ];
    for (what, body, want) in &cases {
        check(a, "/benchmark", post(a, "/benchmark", body), want, what);
    }

    // A body sent as another media type is not parsed, as FastAPI does.
    let r = request(
        a,
        "POST",
        "/benchmark",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        format!("{{{ok}}}").as_bytes(),
    );
    check(
        a,
        "/benchmark",
        r,
        &Want::Body("model_attributes_type"),
        "form body",
    );

    // Over 1 MiB, declared up front.
    let big = format!(r#"{{"url": "{}"}}"#, "x".repeat(2 << 20));
    let r = post(a, "/benchmark", &big);
    assert_eq!(r.status, 413, "{}", r.head);
    assert!(r.body["detail"].is_string());

    // Over 1 MiB, chunked: counted while read.
    let mut raw = format!(
        "POST /benchmark HTTP/1.1\r\nHost: {a}\r\nConnection: close\r\n\
         Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
    )
    .into_bytes();
    for _ in 0..3 {
        raw.extend_from_slice(format!("80000\r\n{}\r\n", "y".repeat(0x80000)).as_bytes());
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(exchange(a, &raw).status, 413);

    // A run that cannot start (its CA file does not exist) is a 500, and the server goes on.
    let body = format!(
        r#"{{"url": "https://127.0.0.1:{}/", "qps": 1, "duration": 1,
            "ca_cert": "/nonexistent/ca.pem"}}"#,
        closed_port()
    );
    let r = post(a, "/benchmark", &body);
    assert_eq!(r.status, 500, "{}", r.raw);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .starts_with("run failed: "),
        "{}",
        r.raw
    );

    // Still serving after all of it.
    assert_eq!(get(a, "/").status, 200);
    api.shutdown();
}

#[test]
fn bad_fireworks_bodies_never_echo_the_token() {
    let api = start(config());
    let a = api.addr();
    let t = TOKEN;
    let cases: Vec<(&str, String, Want)> = vec![
        (
            "missing token",
            r#"{"prompt": "hi"}"#.into(),
            Want::Field("token", "missing"),
        ),
        (
            "empty token",
            r#"{"token": "", "prompt": "hi"}"#.into(),
            Want::Msg(400, "Please pass an auth token for FireworksAI API request"),
        ),
        (
            "max_tokens 0",
            format!(r#"{{"token": "{t}", "prompt": "hi", "max_tokens": 0}}"#),
            Want::Msg(400, "Max tokens should be > 0"),
        ),
        (
            "empty prompt",
            format!(r#"{{"token": "{t}", "prompt": ""}}"#),
            Want::Msg(400, "Please enter a prompt with length > 0"),
        ),
        (
            "absent prompt",
            format!(r#"{{"token": "{t}"}}"#),
            Want::Msg(400, "Please enter a prompt with length > 0"),
        ),
        (
            "stream maybe",
            format!(r#"{{"token": "{t}", "prompt": "hi", "stream": "maybe"}}"#),
            Want::Field("stream", "bool_parsing"),
        ),
        (
            "qps 0",
            format!(r#"{{"token": "{t}", "prompt": "hi", "qps": 0}}"#),
            Want::Msg(400, "QPS and duration must be positive integers"),
        ),
        (
            "duration past the limit",
            format!(r#"{{"token": "{t}", "prompt": "hi", "duration": 1000}}"#),
            Want::Field("duration", "value_error"),
        ),
        (
            "num_workers past the limit",
            format!(r#"{{"token": "{t}", "prompt": "hi", "num_workers": 1000}}"#),
            Want::Field("num_workers", "value_error"),
        ),
        (
            "ftp url",
            format!(r#"{{"token": "{t}", "prompt": "hi", "url": "ftp://h/"}}"#),
            Want::Field("url", "value_error"),
        ),
        (
            "payload not an object",
            format!(r#"{{"token": "{t}", "prompt": "hi", "payload": "{t}"}}"#),
            Want::Field("payload", "dict_type"),
        ),
        (
            "token not a string",
            r#"{"token": 12345, "prompt": "hi"}"#.into(),
            Want::Field("token", "string_type"),
        ),
        (
            "malformed JSON after the token",
            format!(r#"{{"token": "{t}", "prompt": }}"#),
            Want::Body("json_invalid"),
        ),
    ];
    for (what, body, want) in &cases {
        let r = post(a, "/fireworks_benchmark", body);
        check(a, "/fireworks_benchmark", r, want, what);
    }
    // Every accepted form of `stream` passes the type check (and so reaches the qps check).
    for stream in [r#""True""#, r#""true""#, "true", r#""False""#, "false"] {
        let body = format!(r#"{{"token": "{t}", "prompt": "hi", "stream": {stream}, "qps": 0}}"#);
        let r = post(a, "/fireworks_benchmark", &body);
        assert_eq!(r.status, 400, "stream {stream}: {}", r.raw);
    }
    assert_eq!(get(a, "/").status, 200);
    api.shutdown();
}

#[test]
fn api_key_guards_every_route_but_health() {
    let api = start(ApiConfig {
        api_key: Some("k3y".into()),
        ..config()
    });
    let a = api.addr();
    let r = get(a, "/");
    assert_eq!(
        (r.status, r.body),
        (401, json!({"detail": "Not authenticated"}))
    );
    assert_eq!(post(a, "/benchmark", "{}").status, 401);
    assert_eq!(get(a, "/openapi.json").status, 401);
    let wrong = request(a, "GET", "/", &[("Authorization", "Bearer k3z")], b"");
    assert_eq!(wrong.status, 401);
    let r = request(a, "GET", "/", &[("Authorization", "Bearer k3y")], b"");
    assert_eq!(r.status, 200);
    let r = request(a, "GET", "/", &[("X-API-Key", "k3y")], b"");
    assert_eq!(r.status, 200);
    let r = request(
        a,
        "POST",
        "/benchmark",
        &[("X-API-Key", "k3y"), ("Content-Type", "application/json")],
        b"{}",
    );
    assert_eq!(r.status, 422);
    assert_eq!(get(a, "/health").status, 200);
    api.shutdown();
}

#[test]
fn a_slow_client_does_not_block_others() {
    let api = start(config());
    let a = api.addr();
    // Announces a body it never finishes sending.
    let mut slow = TcpStream::connect(a).unwrap();
    slow.write_all(b"POST /benchmark HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n{\"url\"")
        .unwrap();
    thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    assert_eq!(get(a, "/").status, 200);
    assert!(t.elapsed() < Duration::from_secs(5));
    drop(slow);
    api.shutdown();
}

#[test]
fn max_runs_answers_429_while_a_run_is_going() {
    // N = 2 runs allowed; N + 1 = 3 go at once: exactly one 429, the other two complete.
    let api = start(ApiConfig {
        max_runs: 2,
        ..config()
    });
    let a = api.addr();
    let body = format!(
        r#"{{"url": "http://127.0.0.1:{}/", "qps": 5, "duration": 2, "timeout": 1}}"#,
        closed_port()
    );
    let runs: Vec<_> = (0..3)
        .map(|i| {
            let b = body.clone();
            thread::spawn(move || {
                // Staggered so the third surely arrives while the first two run.
                thread::sleep(Duration::from_millis(300 * i));
                post(a, "/benchmark", &b)
            })
        })
        .collect();
    let answers: Vec<Resp> = runs.into_iter().map(|t| t.join().unwrap()).collect();
    let busy: Vec<&Resp> = answers.iter().filter(|r| r.status == 429).collect();
    assert_eq!(busy.len(), 1, "exactly one 429");
    assert_eq!(
        busy[0].body,
        json!({"detail": "too many runs in progress (max 2)"})
    );
    for r in answers.iter().filter(|r| r.status != 429) {
        assert_eq!(r.status, 200, "{}", r.raw);
        assert_eq!(r.body["total_requests"], json!(10));
        assert_eq!(r.body["errors"], json!(10));
        assert_eq!(r.body["errors_status"], json!(["connection refused"]));
    }
    // The slots are given back.
    let quick = format!(
        r#"{{"url": "http://127.0.0.1:{}/", "qps": 10, "duration": 0.1}}"#,
        closed_port()
    );
    assert_eq!(post(a, "/benchmark", &quick).status, 200);
    api.shutdown();
}

#[test]
fn a_benchmark_and_an_llm_run_answer_their_reports() {
    let api = start(config());
    let a = api.addr();
    let plain = target(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    let body =
        format!(r#"{{"url": "http://{plain}/", "qps": "20", "duration": 0.25, "extra": 1}}"#);
    let r = post(a, "/benchmark", &body);
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.body["total_requests"], json!(5));
    assert_eq!(r.body["successes"], json!(5));
    assert_eq!(r.body["config"]["qps"], json!(20));
    assert!(r.body["mean_response_time"].as_f64().unwrap() > 0.0);
    assert!(r.body.get("errors_status").is_none());

    let events = "data: {\"choices\":[{\"text\":\"a\"}]}\n\n\
                  data: {\"choices\":[{\"text\":\"b\"}]}\n\ndata: [DONE]\n\n";
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: {}\r\n\r\n{events}",
        events.len()
    );
    let sse = target(response.into_bytes().leak());
    let body = format!(
        r#"{{"token": "{TOKEN}", "prompt": "Snow is white", "url": "http://{sse}/v1/completions",
            "stream": "True", "qps": 20, "duration": 0.1}}"#
    );
    let r = post(a, "/fireworks_benchmark", &body);
    assert_eq!(r.status, 200, "{}", r.raw);
    assert!(!r.raw.contains(TOKEN));
    assert_eq!(r.body["total_requests"], json!(2));
    assert_eq!(r.body["successes"], json!(2), "{}", r.raw);
    assert!(r.body["mean_time_to_first_token"].as_f64().is_some());
    assert_eq!(
        r.body["config"]["fireworks_payload"]["prompt"],
        json!("Snow is white")
    );
    api.shutdown();
}

#[test]
fn shutdown_is_prompt_and_frees_the_port() {
    let api = start(config());
    let a = api.addr();
    assert_eq!(get(a, "/health").status, 200);
    let t = Instant::now();
    drop(api);
    assert!(t.elapsed() < Duration::from_secs(2));
    // The listener is closed: connecting fails or the connection gets no answer.
    let answered = TcpStream::connect_timeout(&a, Duration::from_millis(500))
        .ok()
        .map(|mut s| {
            s.set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
            let mut b = [0u8; 16];
            matches!(s.read(&mut b), Ok(n) if n > 0)
        })
        .unwrap_or(false);
    assert!(!answered);
}

#[test]
fn ipv6_literal_urls_and_unknown_fields_are_accepted() {
    let server = start(config());
    let a = server.addr();
    // A valid request against a closed port: 200 with every request counted as refused.
    // Unknown fields are ignored, as FastAPI does.
    let port = closed_port();
    let body = format!(
        r#"{{"url": "http://[::1]:{port}/", "qps": 10, "duration": 0.3, "timeout": 1, "colour": "blue"}}"#
    );
    let r = post(a, "/benchmark", &body);
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.body["total_requests"], json!(3));
    assert_eq!(
        r.body["config"]["url"],
        json!(format!("http://[::1]:{port}/"))
    );
    assert!(r.body.get("colour").is_none() && r.body["config"].get("colour").is_none());
    let counted: u64 = r.body["error_counts"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(counted + r.body["successes"].as_u64().unwrap(), 3);
}

/// The payload's final `stream` decides how the answer is read, so a non-streaming request
/// against an OpenAI-compatible server succeeds instead of waiting for a `[DONE]` that never
/// comes; `config.stream` says what was sent.
#[test]
fn the_payloads_stream_decides_how_the_answer_is_read() {
    let api = start(config());
    let m = pacer::mock::MockServer::start(
        "127.0.0.1:0".parse().unwrap(),
        pacer::mock::MockConfig {
            ttft: Duration::from_millis(5),
            itl: Duration::from_millis(1),
            tokens: 4,
            ..pacer::mock::MockConfig::default()
        },
    )
    .expect("mock starts");
    for (fields, stream) in [
        (r#""payload": {"stream": false}"#, false),
        (r#""stream": "False""#, false),
        (r#""stream": false, "payload": {"stream": "True"}"#, true),
    ] {
        let body = format!(
            r#"{{"token": "{TOKEN}", "prompt": "Snow is white", "url": "{}/v1/completions",
                "qps": 20, "duration": 0.2, {fields}}}"#,
            m.url()
        );
        let r = post(api.addr(), "/fireworks_benchmark", &body);
        assert_eq!(r.status, 200, "{fields}: {}", r.raw);
        assert_eq!(r.body["total_requests"], json!(4), "{fields}");
        assert_eq!(r.body["successes"], json!(4), "{fields}: {}", r.raw);
        assert_eq!(r.body["config"]["stream"], json!(stream), "{fields}");
        assert_eq!(r.body["output_tokens"], json!(16), "{fields}");
        assert_eq!(
            r.body.get("mean_time_to_first_token").is_some(),
            stream,
            "{fields}"
        );
    }
    api.shutdown();
}

/// A header value with a control character never reaches the wire: 422 naming the header.
#[test]
fn a_control_character_in_a_header_value_is_a_422() {
    let api = start(config());
    let port = closed_port();
    let body = format!(
        r#"{{"url": "http://127.0.0.1:{port}/", "qps": 1, "duration": 1,
            "headers": {{"X-Ok": "fine", "X-Bell": "ring\u0007"}}}}"#
    );
    let r = post(api.addr(), "/benchmark", &body);
    assert_eq!(r.status, 422, "{}", r.raw);
    assert_eq!(
        r.body,
        json!({"detail": [{"loc": ["body", "headers"],
            "msg": "header \"X-Bell\" has a control character in its value",
            "type": "value_error"}]})
    );
    api.shutdown();
}
