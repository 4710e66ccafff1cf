//! The API server end to end (SPEC §5): a real server on a loopback port, spoken to with a tiny
//! std HTTP client, against a tiny std target.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

mod util;

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
            ..Limits::default()
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

use util::closed_port;

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
        ("/runs", "get"),
        ("/runs/{id}", "get"),
        ("/runs/{id}", "delete"),
        ("/runs/{id}/html", "get"),
        ("/sweep", "post"),
        ("/metrics", "get"),
    ] {
        assert!(paths[path][method].is_object(), "{method} {path}");
    }
    assert_eq!(
        paths.len(),
        10,
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
    let data = util::TempDir::new("api-bad-bodies");
    data.file("not-a-ca.pem", "not a certificate\n");
    let api = start(ApiConfig {
        data_dir: Some(data.0.clone()),
        ..config()
    });
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

    // A CA file outside the server's --data-dir is refused before the run, by its field.
    let body = format!(
        r#"{{"url": "https://127.0.0.1:{}/", "qps": 1, "duration": 1,
            "ca_cert": "/etc/ssl/certs/ca-certificates.crt"}}"#,
        closed_port()
    );
    let r = post(a, "/benchmark", &body);
    assert_eq!(r.status, 422, "{}", r.raw);
    assert_eq!(
        r.body["detail"][0]["loc"],
        json!(["body", "ca_cert"]),
        "{}",
        r.raw
    );
    // A run that cannot start (its CA file, inside the data dir, is no certificate) is a 500,
    // and the server goes on.
    let body = format!(
        r#"{{"url": "https://127.0.0.1:{}/", "qps": 1, "duration": 1,
            "ca_cert": "not-a-ca.pem"}}"#,
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
    for (method, path) in [
        ("GET", "/runs"),
        ("GET", "/runs/0123456789abcdef"),
        ("DELETE", "/runs/0123456789abcdef"),
        ("GET", "/runs/0123456789abcdef/html"),
    ] {
        assert_eq!(
            request(a, method, path, &[], b"").status,
            401,
            "{method} {path}"
        );
    }
    let r = request(a, "GET", "/runs", &[("X-API-Key", "k3y")], b"");
    assert_eq!((r.status, &r.body["runs"]), (200, &json!([])));
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
    let body = format!(r#"{{"url": "http://{plain}/", "qps": "20", "duration": 0.25}}"#);
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
fn ipv6_literal_urls_are_accepted_and_unknown_fields_refused() {
    let server = start(config());
    let a = server.addr();
    // Issue 21 defect 5: an unknown field was ignored, so a misspelt gate or arrival ran
    // without it. Now a 422 naming it, with the field it was probably meant to be.
    let port = closed_port();
    let body = format!(
        r#"{{"url": "http://[::1]:{port}/", "qps": 10, "duration": 0.3, "timeout": 1,
            "threshold": ["error_rate<1%"], "arival": "poisson", "colour": "blue"}}"#
    );
    let r = post(a, "/benchmark", &body);
    assert_eq!(r.status, 422, "{}", r.raw);
    let d = r.body["detail"].as_array().unwrap();
    // In the request's order.
    let named: Vec<(&Value, &Value, &Value)> = d
        .iter()
        .map(|e| (&e["loc"], &e["type"], &e["msg"]))
        .collect();
    assert_eq!(
        named,
        [
            (
                &json!(["body", "threshold"]),
                &json!("extra_forbidden"),
                &json!(
                    "Extra inputs are not permitted: unknown field `threshold`; did you mean `thresholds`?"
                )
            ),
            (
                &json!(["body", "arival"]),
                &json!("extra_forbidden"),
                &json!(
                    "Extra inputs are not permitted: unknown field `arival`; did you mean `arrival`?"
                )
            ),
            (
                &json!(["body", "colour"]),
                &json!("extra_forbidden"),
                &json!("Extra inputs are not permitted: unknown field `colour`")
            ),
        ]
    );
    for (path, body) in [
        ("/fireworks_benchmark", json!({"token": "t", "promt": "p"})),
        ("/sweep", json!({"url": "http://h/", "rate": [1]})),
    ] {
        let r = post(a, path, &body.to_string());
        assert_eq!(r.status, 422, "{path}: {}", r.raw);
        assert_eq!(
            r.body["detail"][0]["type"],
            json!("extra_forbidden"),
            "{path}"
        );
    }
    // A valid request against a closed port: 200 with every request counted as refused.
    let body =
        format!(r#"{{"url": "http://[::1]:{port}/", "qps": 10, "duration": 0.3, "timeout": 1}}"#);
    let r = post(a, "/benchmark", &body);
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.body["total_requests"], json!(3));
    assert_eq!(
        r.body["config"]["url"],
        json!(format!("http://[::1]:{port}/"))
    );
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

#[test]
fn realtime_is_refused_unless_the_server_allows_it() {
    let api = start(config());
    let a = api.addr();
    let port = closed_port();
    let body = format!(
        r#"{{"url": "http://127.0.0.1:{port}/", "qps": 5, "duration": 0.2, "realtime": true}}"#
    );
    let r = post(a, "/benchmark", &body);
    assert_eq!(r.status, 422, "{}", r.raw);
    let d = &r.body["detail"][0];
    assert_eq!(d["loc"], json!(["body", "realtime"]));
    assert_eq!(d["type"], json!("value_error"));
    let msg = d["msg"].as_str().unwrap();
    assert!(
        msg.contains("server's own CPUs") && msg.contains("--allow-realtime"),
        "{msg}"
    );
    // The LLM route too.
    let llm = format!(
        r#"{{"token": "{TOKEN}", "prompt": "hi", "url": "http://127.0.0.1:{port}/v1/completions",
            "qps": 5, "duration": 0.2, "realtime": true}}"#
    );
    let r = post(a, "/fireworks_benchmark", &llm);
    assert_eq!(
        (r.status, &r.body["detail"][0]["loc"]),
        (422, &json!(["body", "realtime"]))
    );
    // Not asking is fine.
    let off = body.replace("true", "false");
    assert_eq!(post(a, "/benchmark", &off).status, 200);
    api.shutdown();

    let api = start(ApiConfig {
        allow_realtime: true,
        ..config()
    });
    let r = post(api.addr(), "/benchmark", &body);
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.body["config"]["realtime"], json!(true));
    assert_eq!(r.body["total_requests"], json!(1));
    // Granted or refused by the OS, the report says which.
    let sched = r.body["scheduling"].as_str().unwrap();
    assert!(
        sched.starts_with("realtime") || sched.contains("refused"),
        "{sched}"
    );
}

/// A short benchmark of `url` through the API at `api`.
fn bench(api: SocketAddr, url: &str) -> Resp {
    let body = format!(r#"{{"url": "{url}", "qps": 10, "duration": 0.2, "timeout": 1}}"#);
    post(api, "/benchmark", &body)
}

/// An API server with these `--allow-target` entries.
fn fenced(entries: &[&str]) -> ApiServer {
    start(ApiConfig {
        allow_targets: entries.iter().map(|e| e.parse().unwrap()).collect(),
        ..config()
    })
}

/// What `host` resolves to here, computed with std alone.
fn resolved(host: &str) -> Vec<std::net::IpAddr> {
    use std::net::ToSocketAddrs;
    (host, 0)
        .to_socket_addrs()
        .map(|it| it.map(|a| a.ip().to_canonical()).collect())
        .unwrap_or_default()
}

#[test]
fn allow_target_refuses_other_targets_by_their_addresses() {
    let (open, other) = (closed_port(), closed_port());
    let allowed = [
        format!("127.0.0.1:{open}"),
        "::1".into(),
        "10.0.0.0/8".into(),
    ];
    let api = start(ApiConfig {
        allow_targets: allowed.iter().map(|s| s.parse().unwrap()).collect(),
        ..config()
    });
    let a = api.addr();

    let r = bench(a, &format!("http://127.0.0.1:{open}/"));
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.body["total_requests"], json!(2));
    assert_eq!(r.body["errors_status"], json!(["connection refused"]));

    let refused = [
        (
            format!("http://127.0.0.1:{other}/"),
            format!("target 127.0.0.1:{other} is not allowed by --allow-target"),
        ),
        (
            format!("http://[::2]:{other}/"),
            format!("target [::2]:{other} is not allowed by --allow-target"),
        ),
        (
            format!("http://nowhere.invalid:{open}/"),
            format!(
                "target nowhere.invalid:{open} is not allowed by --allow-target \
                 (its name does not resolve)"
            ),
        ),
    ];
    for (url, detail) in &refused {
        let r = bench(a, url);
        assert_eq!(
            (r.status, &r.body),
            (403, &json!({ "detail": detail })),
            "{url}"
        );
    }
    // An IPv6 literal entry allows every port of it.
    let r = bench(a, &format!("http://[::1]:{other}/"));
    assert_eq!(r.status, 200, "{}", r.raw);

    // A name is judged by what it resolves to: `localhost` passes only if every one of its
    // addresses is 127.0.0.1 (on the allowed port) or ::1.
    let want = if resolved("localhost")
        .iter()
        .all(|ip| ip.is_loopback() && (ip.is_ipv6() || ip.to_string() == "127.0.0.1"))
    {
        200
    } else {
        403
    };
    let r = bench(a, &format!("http://localhost:{open}/"));
    assert_eq!(r.status, want, "{}", r.raw);

    // The LLM route is checked the same way, and the refusal never carries the token.
    let llm = format!(
        r#"{{"token": "{TOKEN}", "prompt": "hi", "url": "http://127.0.0.1:{other}/v1/completions",
            "qps": 5, "duration": 0.2}}"#
    );
    let r = post(a, "/fireworks_benchmark", &llm);
    assert_eq!(r.status, 403, "{}", r.raw);
    assert!(!r.raw.contains(TOKEN));
    // Bad input is still a 422 first.
    assert_eq!(post(a, "/benchmark", r#"{"url": "http://h/"}"#).status, 422);
    api.shutdown();

    // A name that resolves elsewhere than the allowed block is refused, naming what it resolved to.
    let api = fenced(&["10.0.0.0/8"]);
    let r = bench(api.addr(), &format!("http://localhost:{open}/"));
    assert_eq!(r.status, 403, "{}", r.raw);
    let d = r.body["detail"].as_str().unwrap();
    assert!(
        d.starts_with(&format!("target localhost:{open} is not allowed"))
            && d.contains("resolves to"),
        "{d}"
    );
    api.shutdown();

    // A host name entry allows that name, and the addresses it resolved to at start.
    let api = fenced(&["localhost"]);
    let r = bench(api.addr(), &format!("http://localhost:{other}/"));
    assert_eq!(r.status, 200, "{}", r.raw);
    let via_ip = bench(api.addr(), &format!("http://127.0.0.1:{other}/"));
    let want = if resolved("localhost").contains(&"127.0.0.1".parse().unwrap()) {
        200
    } else {
        403
    };
    assert_eq!(via_ip.status, want, "{}", via_ip.raw);
}

/// Reads one response from a stream that may carry more: the head, then `Content-Length` bytes.
fn read_response(r: &mut BufReader<TcpStream>) -> Resp {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body).unwrap();
    let mut raw = head.into_bytes();
    raw.extend_from_slice(&body);
    parse(&raw)
}

#[test]
fn keep_alive_pipelining_and_expect_continue() {
    let api = start(config());
    let a = api.addr();
    let connect = || {
        let s = TcpStream::connect(a).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    };

    // Two requests in one write, answered in order on the same connection.
    let mut s = connect();
    s.write_all(
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let first = read_response(&mut r);
    assert_eq!(first.body, json!({"message": "Hello, World!"}));
    assert!(
        first.head.contains("Connection: keep-alive"),
        "{}",
        first.head
    );
    let second = read_response(&mut r);
    assert_eq!(second.body, json!({"status": "ok"}));
    assert!(second.head.contains("Connection: close"), "{}", second.head);
    let mut rest = Vec::new();
    assert_eq!(r.read_to_end(&mut rest).unwrap(), 0, "closed after `close`");

    // A kept-alive connection serves a POST after a GET.
    let mut s = connect();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    assert_eq!(read_response(&mut r).status, 200);
    s.write_all(b"POST /benchmark HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        .unwrap();
    let resp = read_response(&mut r);
    assert_eq!(resp.status, 422);
    assert_eq!(resp.body["detail"][0]["loc"], json!(["body", "url"]));

    // `Expect: 100-continue`: the interim answer comes before the body is sent.
    let mut s = connect();
    s.write_all(
        b"POST /benchmark HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\
          Content-Type: application/json\r\nExpect: 100-continue\r\n\r\n",
    )
    .unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert_eq!(line, "HTTP/1.1 100 Continue\r\n");
    r.read_line(&mut line).unwrap();
    s.write_all(b"{}").unwrap();
    assert_eq!(read_response(&mut r).status, 422);

    // A chunked body is read whole.
    let chunked = b"POST /benchmark HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
        Transfer-Encoding: chunked\r\n\r\n3\r\n{\"u\r\n5\r\nrl\": \r\n1\r\n1\r\n1\r\n}\r\n0\r\n\r\n";
    let resp = exchange(a, chunked);
    assert_eq!(resp.status, 422, "{}", resp.raw);
    assert_eq!(
        resp.body["detail"][0]["type"],
        json!("string_type"),
        "{}",
        resp.raw
    );

    // A body the route did not read is not drained: the connection closes after the answer.
    let mut s = connect();
    s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        .unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let resp = parse(&buf);
    assert_eq!(resp.status, 405);
    assert!(resp.head.contains("Connection: close"), "{}", resp.head);

    // Framing two servers could read differently is refused.
    let resp = exchange(
        a,
        b"POST /benchmark HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    assert_eq!(
        (resp.status, resp.body),
        (400, json!({"detail": "Ambiguous request body length"}))
    );
    // A HEAD answer has no body.
    let resp = exchange(
        a,
        b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(resp.status, 405);
    assert!(resp.raw.ends_with("\r\n\r\n"), "{}", resp.raw);
}

/// How a connection ended from the client's side.
struct Cut {
    after: Duration,
    /// What the server said before closing (empty when it closed silently).
    said: String,
}

/// Sends `first`, then `drip` one byte every 100 ms (never ending a head), until the server
/// closes the connection; gives up after 30 s.
fn until_cut(addr: SocketAddr, first: &[u8], drip: bool) -> Cut {
    let t = Instant::now();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    s.write_all(first).unwrap();
    let mut said = Vec::new();
    while t.elapsed() < Duration::from_secs(30) {
        let mut b = [0u8; 1024];
        match s.read(&mut b) {
            Ok(0) => break,
            Ok(n) => said.extend_from_slice(&b[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if drip {
                    // After the server has closed, this fails or resets: that ends it too.
                    let _ = s.write_all(b"a");
                }
            }
            Err(_) => break,
        }
    }
    Cut {
        after: t.elapsed(),
        said: String::from_utf8_lossy(&said).to_string(),
    }
}

#[test]
fn slow_and_idle_heads_are_cut_after_the_head_timeout() {
    let timeout = Duration::from_secs(1);
    let api = start(ApiConfig {
        head_timeout: timeout,
        ..config()
    });
    let a = api.addr();
    let (partial, dripping, idle, kept) = thread::scope(|s| {
        let partial = s.spawn(|| until_cut(a, b"GET / HT", false));
        let dripping = s.spawn(|| until_cut(a, b"GET / HTTP/1.1\r\nX-Slow: ", true));
        let idle = s.spawn(|| until_cut(a, b"", false));
        // A kept-alive connection after its answer waits for its next head as long.
        let kept = s.spawn(|| until_cut(a, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", false));
        (
            partial.join().unwrap(),
            dripping.join().unwrap(),
            idle.join().unwrap(),
            kept.join().unwrap(),
        )
    });
    for (what, cut) in [
        ("partial", &partial),
        ("dripping", &dripping),
        ("idle", &idle),
        ("kept", &kept),
    ] {
        assert!(
            cut.after >= timeout && cut.after < Duration::from_secs(20),
            "{what} cut after {:?}",
            cut.after
        );
    }
    let late = json!({"detail": "Request head not received within 1 s"});
    assert_eq!(
        parse(partial.said.as_bytes()).status,
        408,
        "{}",
        partial.said
    );
    assert_eq!(parse(partial.said.as_bytes()).body, late);
    // The dripping client may see a reset instead of the 408 (it keeps writing after the close).
    assert!(
        dripping.said.is_empty() || dripping.said.starts_with("HTTP/1.1 408 "),
        "{}",
        dripping.said
    );
    assert_eq!(
        idle.said, "",
        "a connection that never started a request is closed silently"
    );
    assert_eq!(parse(kept.said.as_bytes()).status, 200);
    assert!(
        kept.said.ends_with("{\"message\":\"Hello, World!\"}"),
        "{}",
        kept.said
    );
    // Still serving.
    assert_eq!(get(a, "/").status, 200);
}

// ---- `pacer serve`, the binary ----------------------------------------------------------------

/// A `pacer serve` process, killed on drop, with its stderr collected line by line.
struct Served {
    child: std::process::Child,
    addr: SocketAddr,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Served {
    /// Starts `pacer serve ARGS`, under `sh -c 'ulimit LIMIT'` when given, with `env` set (and
    /// `PACER_API_KEY` otherwise unset); returns once it says where it listens.
    fn start(args: &[&str], env: &[(&str, &str)], ulimit: Option<&str>) -> Served {
        use std::process::{Command, Stdio};
        let bin = env!("CARGO_BIN_EXE_pacer");
        let mut cmd = match ulimit {
            Some(l) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!("ulimit {l} && exec \"$0\" serve \"$@\""))
                    .arg(bin);
                c
            }
            None => {
                let mut c = Command::new(bin);
                c.arg("serve");
                c
            }
        };
        cmd.args(args)
            .env_remove("PACER_API_KEY")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("pacer serve starts");
        let stderr = child.stderr.take().unwrap();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let l = std::sync::Arc::clone(&lines);
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                l.lock().unwrap().push(line);
            }
        });
        let mut served = Served {
            child,
            addr: "127.0.0.1:0".parse().unwrap(),
            lines,
        };
        let line = served.wait_for("listening on http://");
        let at: SocketAddr = line.rsplit("http://").next().unwrap().parse().unwrap();
        served.addr = SocketAddr::from(([127, 0, 0, 1], at.port()));
        served
    }

    /// The first stderr line containing `text`, waiting up to 30 s for it.
    fn wait_for(&mut self, text: &str) -> String {
        let t = Instant::now();
        loop {
            if let Some(l) = self.lines.lock().unwrap().iter().find(|l| l.contains(text)) {
                return l.clone();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "pacer serve exited ({status}): {:?}",
                    self.lines.lock().unwrap()
                );
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "no {text:?} on stderr: {:?}",
                self.lines.lock().unwrap()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn stderr(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Descriptors the server process holds now.
    fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const EXPOSED: &str = "without --api-key (or PACER_API_KEY): anyone who can reach it can \
    direct load anywhere";

#[test]
fn serve_warns_when_reachable_without_a_key() {
    let mut open = Served::start(&["--addr", "0.0.0.0:0"], &[], None);
    // The warning is printed before the listening line, so it is there now.
    let warning = open.wait_for("warning:");
    assert!(warning.contains(EXPOSED), "{warning}");
    assert!(warning.contains("0.0.0.0:"), "{warning}");
    assert_eq!(get(open.addr, "/").status, 200);

    let local = Served::start(&["--addr", "127.0.0.1:0"], &[], None);
    assert!(
        local.stderr().iter().all(|l| !l.contains("warning")),
        "{:?}",
        local.stderr()
    );
}

#[test]
fn serve_takes_the_key_from_pacer_api_key() {
    let keyed = Served::start(&["--addr", "0.0.0.0:0"], &[("PACER_API_KEY", "k3y")], None);
    assert!(
        keyed.stderr().iter().all(|l| !l.contains("warning")),
        "{:?}",
        keyed.stderr()
    );
    let a = keyed.addr;
    assert_eq!(get(a, "/").status, 401);
    assert_eq!(
        request(a, "GET", "/", &[("X-API-Key", "k3y")], b"").status,
        200
    );
    assert_eq!(
        request(a, "GET", "/", &[("Authorization", "Bearer k3y")], b"").status,
        200
    );
    assert_eq!(get(a, "/health").status, 200);

    // An empty key would let anyone in who sends an empty header: refused at start.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pacer"))
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("PACER_API_KEY", "")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("PACER_API_KEY) is empty"));
}

/// `Max open files` soft and hard limits of a process.
fn fd_limits(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let mut f = line["Max open files".len()..].split_whitespace();
    (f.next().unwrap().into(), f.next().unwrap().into())
}

#[test]
fn serve_raises_the_soft_open_file_limit_to_the_hard_one() {
    let s = Served::start(&["--addr", "127.0.0.1:0"], &[], Some("-S -n 64"));
    let (soft, hard) = fd_limits(s.child.id());
    assert_eq!(soft, hard, "the soft limit was 64");
}

/// A GET / on a fresh connection: its status (0 if none came) and how long the answer took.
fn probe(addr: SocketAddr) -> (u16, Duration) {
    let t = Instant::now();
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(10)) else {
        return (0, t.elapsed());
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    (parse(&buf).status, t.elapsed())
}

#[test]
fn out_of_file_descriptors_the_server_sheds_and_keeps_answering() {
    // Hard and soft limit 48, and a cap far above it: accepting fails with EMFILE.
    let mut s = Served::start(
        &["--addr", "127.0.0.1:0", "--max-connections", "1000"],
        &[],
        Some("-n 48"),
    );
    s.wait_for("open-file limit (48) is below --max-connections (1000)");
    let idle: Vec<TcpStream> = (0..80)
        .filter_map(|_| TcpStream::connect_timeout(&s.addr, Duration::from_secs(5)).ok())
        .collect();
    let answered = (0..5).filter(|_| probe(s.addr).0 == 200).count();
    assert_eq!(answered, 5, "{:?}", s.stderr());
    s.wait_for("Too many open files");
    drop(idle);
    assert_eq!(probe(s.addr).0, 200);
    assert!(s.alive());
}

/// A flood of `idle` connections that send nothing and `drip` ones that send a request head a
/// byte every 100 ms, never ending it; a connection the server closes is opened again at once.
struct Flood {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Set once every connection has been opened once.
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: thread::JoinHandle<usize>,
}

impl Flood {
    fn start(addr: SocketAddr, idle: usize, drip: usize) -> Flood {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let up = std::sync::Arc::new(AtomicBool::new(false));
        let (st, u) = (stop.clone(), up.clone());
        let thread = thread::spawn(move || {
            const HEAD: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nX-Drip: ";
            let open = || {
                let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
                s.set_nonblocking(true).ok()?;
                Some(s)
            };
            // (socket, bytes dripped so far, drips?)
            let mut conns: Vec<(Option<TcpStream>, usize, bool)> =
                (0..idle + drip).map(|i| (open(), 0, i >= idle)).collect();
            u.store(true, Ordering::SeqCst);
            let mut closed_by_server = 0;
            while !st.load(Ordering::SeqCst) {
                for (sock, sent, drips) in conns.iter_mut() {
                    let alive = match sock {
                        None => false,
                        Some(s) => {
                            let mut b = [0u8; 512];
                            let read_ok = matches!(
                                s.read(&mut b),
                                Err(ref e) if e.kind() == std::io::ErrorKind::WouldBlock
                            );
                            let byte = [*HEAD.get(*sent).unwrap_or(&b'a')];
                            let write_ok = !*drips
                                || match s.write(&byte) {
                                    Ok(_) => {
                                        *sent += 1;
                                        true
                                    }
                                    Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
                                };
                            read_ok && write_ok
                        }
                    };
                    if !alive {
                        if sock.is_some() {
                            closed_by_server += 1;
                        }
                        *sock = open();
                        *sent = 0;
                    }
                }
                thread::sleep(Duration::from_millis(100));
            }
            closed_by_server
        });
        Flood { stop, up, thread }
    }

    fn wait_up(&self) {
        let t = Instant::now();
        while !self.up.load(std::sync::atomic::Ordering::SeqCst) {
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "the flood never opened"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops it; how many of its connections the server closed.
    fn stop(self) -> usize {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.thread.join().unwrap()
    }
}

#[test]
fn a_connection_flood_does_not_stop_the_server() {
    let cap = 64;
    let mut s = Served::start(
        &[
            "--addr",
            "127.0.0.1:0",
            "--max-connections",
            &cap.to_string(),
            "--head-timeout",
            "1",
        ],
        &[],
        None,
    );
    let (idle, drip) = (150, 150);
    let flood = Flood::start(s.addr, idle, drip);
    flood.wait_up();
    let mut answers = Vec::new();
    let mut most_fds = 0;
    for _ in 0..10 {
        answers.push(probe(s.addr));
        most_fds = most_fds.max(s.open_fds());
        thread::sleep(Duration::from_millis(200));
    }
    // The flood has outlived the head timeout: every first-wave connection was closed by now.
    thread::sleep(Duration::from_millis(1500));
    most_fds = most_fds.max(s.open_fds());
    let closed = flood.stop();
    let ok = answers.iter().filter(|(status, _)| *status == 200).count();
    assert!(ok >= 8, "answers during the flood: {answers:?}");
    // Held connections never pass the cap: the listener, poll, waker and stdio come on top
    // (and a newcomer for the moment before the oldest is closed).
    assert!(
        most_fds <= cap + 16,
        "{most_fds} descriptors with a cap of {cap}"
    );
    assert!(
        closed >= idle + drip - cap,
        "the server closed only {closed} flood connections"
    );

    // A benchmark after the flood works.
    let target = util::mock_ok();
    let body = format!(
        r#"{{"url": "{}/", "qps": 20, "duration": 0.5}}"#,
        target.url()
    );
    let r = post(s.addr, "/benchmark", &body);
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(
        (&r.body["total_requests"], &r.body["successes"]),
        (&json!(10), &json!(10))
    );
    assert!(s.alive());
}

// Runs started with "async": true: poll, cancel, 404/409, 429, how many are kept.

fn delete(addr: SocketAddr, path: &str) -> Resp {
    request(addr, "DELETE", path, &[], b"")
}

/// Starts `body` (with `"async": true`) at `path`; the run's id.
fn start_async(addr: SocketAddr, path: &str, mut body: Value) -> String {
    body["async"] = json!(true);
    let r = post(addr, path, &body.to_string());
    assert_eq!(r.status, 202, "{}", r.raw);
    let id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        r.body,
        json!({"id": id, "url": format!("/runs/{id}"), "state": "running"})
    );
    assert!(
        r.head.contains(&format!("\r\nLocation: /runs/{id}")),
        "{}",
        r.head
    );
    id
}

/// Polls `GET /runs/{id}` until `done` holds (failing the test after `bound`); the last status.
fn poll(
    addr: SocketAddr,
    id: &str,
    bound: Duration,
    mut done: impl FnMut(&Value) -> bool,
) -> Value {
    let until = Instant::now() + bound;
    loop {
        let r = get(addr, &format!("/runs/{id}"));
        assert_eq!(r.status, 200, "{}", r.raw);
        if done(&r.body) {
            return r.body;
        }
        assert!(Instant::now() < until, "run {id} still {}", r.body);
        thread::sleep(Duration::from_millis(20));
    }
}

fn ended(s: &Value) -> bool {
    s["state"] != json!("running")
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

#[test]
fn an_async_run_is_polled_to_the_report_a_sync_run_answers() {
    let api = start(config());
    let a = api.addr();
    let m = util::mock_ok();
    let url = format!("{}/", m.url());
    let body = json!({"url": url, "qps": 40, "duration": 0.5});
    let sync = post(a, "/benchmark", &body.to_string());
    assert_eq!(sync.status, 200, "{}", sync.raw);

    let id = start_async(a, "/benchmark", body);
    assert!(
        id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    let s = poll(a, &id, Duration::from_secs(20), ended);
    assert_eq!(s["state"], json!("done"), "{s}");
    let report = &s["report"];
    assert_eq!(keys(report), keys(&sync.body));
    assert_eq!(report["config"], sync.body["config"]);
    assert_eq!(
        (&report["total_requests"], &report["successes"]),
        (&json!(20), &json!(20))
    );
    assert!(report.get("interrupted").is_none());
    // The counters end at the report's totals.
    let p = &s["progress"];
    assert_eq!(
        [&p["scheduled"], &p["sent"], &p["done"], &p["completed"]],
        [&json!(20); 4]
    );
    assert_eq!((&p["in_flight"], &p["errors"]), (&json!(0), &json!(0)));
    assert_eq!(
        (&s["kind"], &s["target"], &s["url"]),
        (
            &json!("benchmark"),
            &json!(url),
            &json!(format!("/runs/{id}"))
        )
    );
    for at in ["started", "finished"] {
        let t = s[at].as_str().unwrap();
        assert!(
            t.len() == 20 && t.ends_with('Z') && t.as_bytes()[10] == b'T',
            "{at} {t}"
        );
    }
    assert!(s["elapsed"].as_f64().unwrap() >= 0.45, "{s}");
    // An ended run's counters and their clock stand still: polled again later, the same.
    let progress = s["progress"].clone();
    assert!(
        progress["elapsed"].as_f64().unwrap() <= s["elapsed"].as_f64().unwrap(),
        "{s}"
    );
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(get(a, &format!("/runs/{id}")).body["progress"], progress);

    let list = get(a, "/runs");
    assert_eq!(list.status, 200);
    assert_eq!(list.body["keep"], json!(32));
    let runs = list.body["runs"].as_array().unwrap();
    // The synchronous run is in the registry too (issue 19: it could not be listed or
    // cancelled), the newest first.
    assert_eq!(runs.len(), 2);
    assert_eq!(
        keys(&runs[0]),
        ["async", "id", "kind", "started", "state", "target", "url"]
    );
    assert_eq!(
        (&runs[0]["id"], &runs[0]["state"], &runs[0]["async"]),
        (&json!(id), &json!("done"), &json!(true))
    );
    assert_eq!(
        (&runs[1]["state"], &runs[1]["async"]),
        (&json!("done"), &json!(false))
    );
    let sync_run = get(a, runs[1]["url"].as_str().unwrap());
    assert_eq!(sync_run.body["report"]["config"], sync.body["config"]);

    let page = get(a, &format!("/runs/{id}/html"));
    assert_eq!(page.status, 200);
    assert!(
        page.head
            .to_ascii_lowercase()
            .contains("content-type: text/html; charset=utf-8"),
        "{}",
        page.head
    );
    assert!(page.raw.contains("<!DOCTYPE html>") && page.raw.contains(&url));
    api.shutdown();
}

#[test]
fn an_async_llm_run_reports_its_tokens_and_hides_query_values_everywhere() {
    let api = start(config());
    let a = api.addr();
    let m = util::mock_ok();
    let body = json!({"token": TOKEN, "prompt": "Snow is white", "qps": 20, "duration": 0.25,
        "url": format!("{}/v1/completions?key=q-SECRET", m.url())});
    let id = start_async(a, "/fireworks_benchmark", body);
    let s = poll(a, &id, Duration::from_secs(20), ended);
    assert_eq!(
        (&s["state"], &s["kind"]),
        (&json!("done"), &json!("fireworks_benchmark"))
    );
    assert_eq!(s["report"]["successes"], json!(5), "{s}");
    assert!(s["report"]["mean_time_to_first_token"].as_f64().unwrap() > 0.0);
    // Issue 19: the query's value was kept in config.url, GET /runs/{id} and the HTML page.
    // Every echo hides it and keeps its name.
    assert_eq!(
        s["target"],
        json!(format!("{}/v1/completions?key=***", m.url()))
    );
    assert_eq!(s["target"], s["report"]["config"]["url"]);
    for path in [
        "/runs".to_string(),
        format!("/runs/{id}"),
        format!("/runs/{id}/html"),
    ] {
        let r = get(a, &path);
        assert_eq!(r.status, 200, "{path}");
        assert!(
            !r.raw.contains("q-SECRET") && !r.raw.contains(TOKEN),
            "{path}: {}",
            r.raw
        );
    }
    // The state too (a synchronous run with "state": true).
    let body = json!({"token": TOKEN, "prompt": "Snow is white", "qps": 20, "duration": 0.1,
        "url": format!("{}/v1/completions?key=q-SECRET", m.url()), "state": true});
    let r = post(a, "/fireworks_benchmark", &body.to_string());
    assert_eq!(r.status, 200, "{}", r.raw);
    assert!(r.body.get("state").is_some());
    assert!(
        !r.raw.contains("q-SECRET") && !r.raw.contains(TOKEN),
        "{}",
        r.raw
    );
    api.shutdown();
}

#[test]
fn cancelling_a_long_run_accounts_every_request() {
    let api = start(config());
    let a = api.addr();
    let m = util::mock_ok();
    // 1,500 requests over 30 s; cancelled once a few went out.
    let body = json!({"url": format!("{}/", m.url()), "qps": 50, "duration": 30, "timeout": 1});
    let id = start_async(a, "/benchmark", body);
    let path = format!("/runs/{id}");
    let live = poll(a, &id, Duration::from_secs(10), |s| {
        s["progress"]["completed"].as_u64().unwrap_or(0) >= 10
    });
    assert_eq!(live["state"], json!("running"));
    assert_eq!(live["progress"]["scheduled"], json!(1500));
    // Nothing to draw yet.
    let page = get(a, &format!("{path}/html"));
    assert_eq!(
        (page.status, page.body),
        (
            409,
            json!({"detail": "the run is running: it has no report to draw"})
        )
    );

    let d = delete(a, &path);
    assert_eq!(d.status, 202, "{}", d.raw);
    assert_eq!(d.body["id"], json!(id));
    // Winding down (or, on a quick machine, already wound down).
    assert!(
        d.body["cancelling"] == json!(true) || d.body["state"] == json!("cancelled"),
        "{}",
        d.body
    );
    let s = poll(a, &id, Duration::from_secs(10), ended);
    assert_eq!(s["state"], json!("cancelled"), "{s}");
    assert!(s.get("cancelling").is_none());
    let r = &s["report"];
    assert_eq!(r["interrupted"], json!(true));
    // Every scheduled request is accounted for, the unsent under their own name.
    assert_eq!(r["total_requests"], json!(1500));
    let total = r["total_requests"].as_u64().unwrap();
    let (ok, errors) = (
        r["successes"].as_u64().unwrap(),
        r["errors"].as_u64().unwrap(),
    );
    // The headline covers what ran: the unsent are apart from the errors.
    let unsent = r["unsent"].as_u64().unwrap();
    assert_eq!(ok + errors + unsent, total);
    assert!(ok >= 10, "{r}");
    assert_eq!(errors, 0, "{}", r["error_counts"]);
    let sent = s["progress"]["sent"].as_u64().unwrap();
    assert_eq!(unsent, total - sent);
    // Stopped long before its 30 s.
    assert!(s["elapsed"].as_f64().unwrap() < 20.0, "{s}");

    let again = delete(a, &path);
    assert_eq!(
        (again.status, again.body),
        (
            409,
            json!({"detail": "the run is already cancelled: there is nothing to cancel"})
        )
    );
    assert_eq!(get(a, &format!("{path}/html")).status, 200);
    api.shutdown();
}

#[test]
fn unknown_runs_are_404_and_a_run_that_could_not_start_failed() {
    let data = util::TempDir::new("api-async-fail");
    data.file("not-a-ca.pem", "not a certificate\n");
    let api = start(ApiConfig {
        data_dir: Some(data.0.clone()),
        ..config()
    });
    let a = api.addr();
    let missing = "no such run (this server remembers every running run and the last 32 finished)";
    for r in [
        get(a, "/runs/0123456789abcdef"),
        delete(a, "/runs/0123456789abcdef"),
        get(a, "/runs/0123456789abcdef/html"),
    ] {
        assert_eq!((r.status, r.body), (404, json!({"detail": missing})));
    }
    for path in ["/runs/", "/runs/abc/report", "/runs//html"] {
        let r = get(a, path);
        assert_eq!(
            (r.status, r.body),
            (404, json!({"detail": "Not Found"})),
            "{path}"
        );
    }
    let r = post(a, "/runs/0123456789abcdef", "{}");
    assert_eq!(r.status, 405);
    assert!(r.head.contains("\r\nAllow: GET, DELETE"), "{}", r.head);
    let r = delete(a, "/runs");
    assert_eq!(r.status, 405);
    assert!(r.head.contains("\r\nAllow: GET"), "{}", r.head);

    // A bad `async` is a 422 beside the other field errors.
    let r = post(
        a,
        "/benchmark",
        r#"{"url": "http://h/", "duration": 1, "async": "soon"}"#,
    );
    assert_eq!(r.status, 422);
    let locs: Vec<&Value> = r.body["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["loc"])
        .collect();
    assert_eq!(locs, [&json!(["body", "qps"]), &json!(["body", "async"])]);
    // The checks a sync request gets come before the 202.
    let r = post(
        a,
        "/benchmark",
        r#"{"url": "http://h/", "qps": 0, "duration": 1, "async": true}"#,
    );
    assert_eq!(r.status, 400);
    assert_eq!(get(a, "/runs").body["runs"], json!([]));

    // A run that cannot start (its CA file is no certificate) fails with the sync request's 500.
    let body = json!({"url": format!("https://127.0.0.1:{}/", closed_port()), "qps": 1,
        "duration": 1, "ca_cert": "not-a-ca.pem"});
    let id = start_async(a, "/benchmark", body);
    let s = poll(a, &id, Duration::from_secs(10), ended);
    assert_eq!(s["state"], json!("failed"));
    assert_eq!(s["error"]["status"], json!(500));
    assert!(
        s["error"]["detail"]
            .as_str()
            .unwrap()
            .starts_with("run failed: "),
        "{s}"
    );
    assert!(s.get("report").is_none());
    let r = get(a, &format!("/runs/{id}/html"));
    assert_eq!(
        (r.status, r.body),
        (
            409,
            json!({"detail": "the run is failed: it has no report to draw"})
        )
    );
    assert_eq!(delete(a, &format!("/runs/{id}")).status, 409);
    api.shutdown();
}

#[test]
fn async_runs_hold_their_max_runs_slots_until_they_end() {
    let api = start(ApiConfig {
        max_runs: 2,
        ..config()
    });
    let a = api.addr();
    let m = util::mock_ok();
    let long = json!({"url": format!("{}/", m.url()), "qps": 20, "duration": 30});
    let ids: Vec<String> = (0..2)
        .map(|_| start_async(a, "/benchmark", long.clone()))
        .collect();
    let busy = json!({"detail": "too many runs in progress (max 2)"});
    let mut third = long.clone();
    third["async"] = json!(true);
    let r = post(a, "/benchmark", &third.to_string());
    assert_eq!((r.status, &r.body), (429, &busy));
    let quick = json!({"url": format!("{}/", m.url()), "qps": 10, "duration": 0.1});
    let r = post(a, "/benchmark", &quick.to_string());
    assert_eq!(
        (r.status, &r.body),
        (429, &busy),
        "a sync run waits for a slot too"
    );
    assert_eq!(get(a, "/runs").body["runs"].as_array().unwrap().len(), 2);

    for id in &ids {
        assert_eq!(delete(a, &format!("/runs/{id}")).status, 202);
    }
    for id in &ids {
        let s = poll(a, id, Duration::from_secs(10), ended);
        assert_eq!(s["state"], json!("cancelled"));
    }
    // A run seen as ended has given its slot back.
    assert_eq!(post(a, "/benchmark", &quick.to_string()).status, 200);
    let id = start_async(a, "/benchmark", quick);
    assert_eq!(
        poll(a, &id, Duration::from_secs(10), ended)["state"],
        json!("done")
    );
    api.shutdown();
}

#[test]
fn only_the_last_keep_runs_finished_runs_are_kept() {
    let api = start(ApiConfig {
        keep_runs: 2,
        ..config()
    });
    let a = api.addr();
    let m = util::mock_ok();
    let quick = json!({"url": format!("{}/", m.url()), "qps": 10, "duration": 0.1});
    let mut ids = Vec::new();
    for _ in 0..3 {
        let id = start_async(a, "/benchmark", quick.clone());
        poll(a, &id, Duration::from_secs(10), ended);
        ids.push(id);
    }
    let r = get(a, &format!("/runs/{}", ids[0]));
    assert_eq!(r.status, 404);
    assert_eq!(
        r.body,
        json!({"detail": "no such run (this server remembers every running run and the last 2 finished)"})
    );
    let list = get(a, "/runs").body;
    let listed: Vec<&Value> = list["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["id"])
        .collect();
    assert_eq!(listed, [&json!(ids[2]), &json!(ids[1])], "the newest first");
    for id in &ids[1..] {
        assert_eq!(get(a, &format!("/runs/{id}")).status, 200);
    }
    api.shutdown();
}

// POST /sweep, sync and async.

/// The mock at 20 ms: through 10 connections it answers at most 10 / 0.020 = 500 req/s.
fn slow_mock() -> pacer::mock::MockServer {
    util::mock(pacer::mock::MockConfig {
        error_rate: 0.0,
        delay: util::ms(20.0),
        ..pacer::mock::MockConfig::default()
    })
}

#[test]
fn a_sweep_answers_its_table_knee_and_every_steps_report() {
    let api = start(config());
    let a = api.addr();
    let m = slow_mock();
    let body = json!({"url": format!("{}/", m.url()), "num_workers": 10, "rates": [700, 100],
        "step_duration": 0.4, "min_achieved": 0.95});
    let r = post(a, "/sweep", &body.to_string());
    assert_eq!(r.status, 200, "{}", r.raw);
    let s = &r.body;
    assert_eq!((&s["kind"], &s["probe"]), (&json!("sweep"), &Value::Null));
    assert_eq!(s["config"]["sweep"]["rates"], json!([100.0, 700.0]));
    assert!(s["config"].get("qps").is_none());
    let asked: Vec<&Value> = s["table"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["asked_qps"])
        .collect();
    assert_eq!(asked, [&json!(100.0), &json!(700.0)]);
    // 700 req/s is past what 10 connections at 20 ms carry.
    assert_eq!(s["table"][1]["pass"], json!(false), "{}", s["table"]);
    assert_eq!(s["table"][1]["checks"][0]["metric"], json!("achieved_qps"));
    assert_eq!(s["steps"][0]["total_requests"], json!(40));
    assert_eq!(s["steps"][1]["total_requests"], json!(280));
    let knee = &s["knee"];
    assert!(
        knee["qps"] == json!(100.0) || knee["qps"].is_null(),
        "{knee}"
    );
    api.shutdown();
}

#[test]
fn an_async_sweep_shows_its_phase_and_can_be_cancelled() {
    let api = start(config());
    let a = api.addr();
    let m = slow_mock();
    let url = format!("{}/", m.url());
    // Probed: the progress names the phase as the sweep goes.
    let body = json!({"url": url, "num_workers": 10, "probe_duration": 0.3, "steps": 2,
        "step_duration": 0.3});
    let id = start_async(a, "/sweep", body);
    let mut phases = std::collections::BTreeSet::new();
    let s = poll(a, &id, Duration::from_secs(20), |s| {
        if let Some(p) = s["progress"]["phase"]["phase"].as_str() {
            phases.insert(p.to_string());
        }
        ended(s)
    });
    assert_eq!(
        (&s["state"], &s["kind"]),
        (&json!("done"), &json!("sweep")),
        "{s}"
    );
    assert!(!phases.is_empty(), "the progress named a phase");
    assert_eq!(s["progress"]["phase"]["phase"], json!("step"));
    assert_eq!(s["progress"]["phase"]["steps"], json!(2));
    assert_eq!(s["report"]["table"].as_array().unwrap().len(), 2);
    assert!(s["report"]["probe"]["peak"].as_f64().unwrap() > 0.0);
    let page = get(a, &format!("/runs/{id}/html"));
    assert_eq!(page.status, 200);
    assert!(
        page.raw.contains("<title>pacer sweep: "),
        "{}",
        &page.raw[..300.min(page.raw.len())]
    );

    // Long steps, cancelled in the first: the sweep ends cancelled with that step interrupted.
    let body = json!({"url": url, "num_workers": 10, "rates": [50, 100, 150],
        "step_duration": 20});
    let id = start_async(a, "/sweep", body);
    poll(a, &id, Duration::from_secs(10), |s| {
        s["progress"]["completed"].as_u64().unwrap_or(0) >= 5
    });
    assert_eq!(delete(a, &format!("/runs/{id}")).status, 202);
    let s = poll(a, &id, Duration::from_secs(10), ended);
    assert_eq!(s["state"], json!("cancelled"), "{s}");
    let r = &s["report"];
    assert_eq!(r["interrupted"], json!(true));
    assert_eq!(r["table"].as_array().unwrap().len(), 1);
    assert_eq!(r["table"][0]["interrupted"], json!(true));
    assert_eq!(
        r["steps"][0]["total_requests"],
        json!(1000),
        "every request accounted"
    );
    assert_eq!(r["knee"]["qps"], Value::Null);
    assert_eq!(r["knee"]["note"], json!("no step ran to its end"));
    api.shutdown();
}

#[test]
fn bad_sweep_bodies() {
    let api = start(config());
    let a = api.addr();
    let locs = |r: &Resp| -> Vec<Value> {
        r.body["detail"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["loc"].clone())
            .collect()
    };
    let r = post(
        a,
        "/sweep",
        r#"{"url": "http://h/", "qps": 10, "duration": 5, "steps": 0}"#,
    );
    assert_eq!(r.status, 422);
    assert_eq!(
        locs(&r),
        [
            json!(["body", "steps"]),
            json!(["body", "qps"]),
            json!(["body", "duration"])
        ]
    );
    assert!(r.raw.contains("qps does not apply to a sweep"), "{}", r.raw);
    let r = post(a, "/sweep", r#"{"url": "http://h/", "rates": [100, 0]}"#);
    assert_eq!((r.status, locs(&r)), (422, vec![json!(["body", "rates"])]));
    assert_eq!(
        r.body["detail"][0]["msg"],
        json!("every rate must be > 0 (got 0)")
    );
    let r = post(a, "/sweep", r#"{"url": "http://h/", "step_duration": 100}"#);
    assert_eq!(r.status, 422);
    assert_eq!(
        r.body["detail"][0]["msg"],
        json!("must be at most 60 seconds (got 100)")
    );
    let r = post(
        a,
        "/sweep",
        r#"{"kind": "fireworks_benchmark", "prompt": "p"}"#,
    );
    assert_eq!((r.status, locs(&r)), (422, vec![json!(["body", "token"])]));
    let r = post(a, "/sweep", r#"{"url": "http://h/", "rates": [2000]}"#);
    assert_eq!((r.status, locs(&r)), (422, vec![json!(["body", "rates"])]));
    assert_eq!(get(a, "/sweep").status, 405);
    assert_eq!(get(a, "/runs").body["runs"], json!([]));
    api.shutdown();
}

/// The command line's trace, session and prefix-group workloads are refused by the API on
/// purpose, each field named with its flag (not as a misspelling of another field), on both
/// run routes; `prefix_tokens`, which the API takes, is in its OpenAPI document.
#[test]
fn command_line_only_workloads_are_refused_by_name() {
    let server = start(config());
    let a = server.addr();
    for (field, value, flag) in [
        ("trace", json!("trace.jsonl"), "--trace"),
        ("replay_speed", json!(2), "--replay-speed"),
        ("block_tokens", json!(16), "--block-tokens"),
        ("sessions", json!(true), "--sessions"),
        ("think_time", json!("1s"), "--think-time"),
        ("prefix_groups", json!(4), "--prefix-groups"),
        (
            "prompt_overhead_tokens",
            json!(10),
            "--prompt-overhead-tokens",
        ),
    ] {
        for (path, mut body) in [
            (
                "/benchmark",
                json!({"url": "http://127.0.0.1:9/", "qps": 1, "duration": 1}),
            ),
            ("/fireworks_benchmark", json!({"token": "t", "prompt": "p"})),
        ] {
            body[field] = value.clone();
            let r = post(a, path, &body.to_string());
            assert_eq!(r.status, 422, "{path} {field}: {}", r.raw);
            let d = &r.body["detail"][0];
            assert_eq!(d["loc"], json!(["body", field]), "{path}: {}", r.raw);
            assert_eq!(d["type"], json!("extra_forbidden"));
            let msg = d["msg"].as_str().unwrap();
            assert!(
                msg.contains(&format!("`pacer llm {flag}`")) && msg.contains("not the API's"),
                "{path} {field}: {msg}"
            );
        }
    }
    let doc = get(a, "/openapi.json");
    assert_eq!(doc.status, 200);
    let text = doc.body.to_string();
    assert!(text.contains("\"prefix_tokens\""));
    for field in [
        "\"trace\"",
        "\"prefix_groups\"",
        "\"prompt_overhead_tokens\"",
    ] {
        assert!(
            !text.contains(field),
            "{field} is not the API's: {text:.200}"
        );
    }
}
