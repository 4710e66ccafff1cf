//! Live metrics (issue 21): `pacer serve`'s `GET /metrics` scraped during a real run against the
//! mock, its exposition parsed and checked value by value and by `promtool check metrics`
//! (Debian's `prometheus` package; skipped without it), and `--otlp` pushes received by a small
//! OTLP/HTTP receiver on loopback that records every body.

mod util;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pacer::api::{ApiConfig, ApiServer};
use serde_json::{Value, json};
use util::TempDir;

const KEY: &str = "live-key-7f3a";

fn server(api_key: Option<&str>) -> ApiServer {
    ApiServer::start(ApiConfig {
        addr: "127.0.0.1:0".into(),
        api_key: api_key.map(String::from),
        ..ApiConfig::default()
    })
    .expect("the API binds a loopback port")
}

/// `GET path` with an optional bearer token: status, head, body.
fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    util::answer(&buf)
}

/// One sample line of an exposition: name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the text format: `# HELP`/`# TYPE` lines (every sample's metric must have both, TYPE
/// before its samples) and sample lines `name{k="v",...} value`, escapes included.
fn parse_exposition(text: &str) -> Vec<Sample> {
    let mut typed: BTreeMap<String, String> = BTreeMap::new();
    let mut helped = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            helped.insert(rest.split(' ').next().unwrap().to_string());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["counter", "gauge"].contains(&kind), "{line}");
            typed.insert(name.to_string(), kind.to_string());
            continue;
        }
        assert!(
            !line.starts_with('#') && !line.is_empty(),
            "stray line {line:?}"
        );
        let name_end = line.find(['{', ' ']).unwrap();
        let name = &line[..name_end];
        let mut labels = BTreeMap::new();
        let mut rest = &line[name_end..];
        if let Some(r) = rest.strip_prefix('{') {
            let mut chars = r.char_indices().peekable();
            let mut end = 0;
            loop {
                let (i, _) = *chars.peek().unwrap();
                if r[i..].starts_with('}') {
                    end = i + 1;
                    break;
                }
                let eq = r[i..].find("=\"").unwrap() + i;
                let key = r[i..eq].trim_start_matches(',').to_string();
                let mut value = String::new();
                let mut j = eq + 2;
                let bytes: Vec<char> = r[j..].chars().collect();
                let mut k = 0;
                while bytes[k] != '"' {
                    if bytes[k] == '\\' {
                        k += 1;
                        value.push(match bytes[k] {
                            'n' => '\n',
                            c => c,
                        });
                    } else {
                        value.push(bytes[k]);
                    }
                    k += 1;
                }
                j += bytes[..=k].iter().map(|c| c.len_utf8()).sum::<usize>();
                labels.insert(key, value);
                while chars.peek().is_some_and(|(p, _)| *p < j) {
                    chars.next();
                }
                if chars.peek().is_none() {
                    break;
                }
            }
            rest = &r[end..];
        }
        let value: f64 = rest
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("value of {line}"));
        assert!(typed.contains_key(name), "{name} has no # TYPE before it");
        assert!(helped.contains(name), "{name} has no # HELP");
        assert_eq!(typed[name] == "counter", name.ends_with("_total"), "{name}");
        out.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    out
}

fn value(samples: &[Sample], name: &str, label: (&str, &str)) -> Option<f64> {
    samples
        .iter()
        .find(|s| s.name == name && s.labels.get(label.0).map(String::as_str) == Some(label.1))
        .map(|s| s.value)
}

/// Runs `promtool check metrics` on `text`: None when promtool is not installed.
fn promtool(text: &str) -> Option<(bool, String)> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success(), said))
}

/// A real async run against the mock, scraped while it goes and after: the runs by state, its
/// counters and rolling percentiles as values, and the exposition accepted by promtool.
#[test]
fn metrics_show_a_running_run_and_pass_promtool() {
    let mock = util::mock_ok();
    let api = server(None);
    let a = api.addr();
    let body = json!({"url": format!("{}/", mock.url()), "qps": 100, "duration": 4,
        "num_workers": 4, "async": true});
    let (status, started) = util::post_json(a, "/benchmark", &body.to_string());
    assert_eq!(status, 202, "{started}");
    let id = started["id"].as_str().unwrap().to_string();
    // Scrape until the run has sent and its rolling p50 has a whole second behind it.
    let until = Instant::now() + Duration::from_secs(20);
    let (head, text, samples) = loop {
        let (status, head, text) = get(a, "/metrics", None);
        assert_eq!(status, 200, "{head}\n{text}");
        let samples = parse_exposition(&text);
        let run = ("run_id", id.as_str());
        if value(&samples, "pacer_requests_sent_total", run).is_some_and(|n| n >= 50.0)
            && value(&samples, "pacer_response_time_p50_seconds", run).is_some()
        {
            break (head, text, samples);
        }
        assert!(Instant::now() < until, "no live figures in time:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    let run = ("run_id", id.as_str());
    assert_eq!(
        value(&samples, "pacer_runs", ("state", "running")),
        Some(1.0)
    );
    assert_eq!(value(&samples, "pacer_runs", ("state", "done")), Some(0.0));
    let kind = samples
        .iter()
        .find(|s| s.name == "pacer_requests_sent_total")
        .map(|s| s.labels["kind"].clone());
    assert_eq!(kind.as_deref(), Some("benchmark"));
    let sent = value(&samples, "pacer_requests_sent_total", run).unwrap();
    let responses = value(&samples, "pacer_responses_total", run).unwrap();
    let in_flight = value(&samples, "pacer_requests_in_flight", run).unwrap();
    // 100/s for 4 s: at most 400 are ever sent; a response follows its send.
    assert!((50.0..=400.0).contains(&sent), "{text}");
    assert!(
        responses <= sent && responses + in_flight >= sent - 4.0,
        "{text}"
    );
    assert_eq!(value(&samples, "pacer_errors_total", run), Some(0.0));
    let rate = value(&samples, "pacer_achieved_rate_requests_per_second", run).unwrap();
    // Sent over the time since the run was registered: never above the asked 100/s by more
    // than the clock's head start, and not far below it on a loaded machine.
    assert!(rate > 10.0 && rate <= 110.0, "rate {rate}\n{text}");
    let p50 = value(&samples, "pacer_response_time_p50_seconds", run).unwrap();
    let p99 = value(&samples, "pacer_response_time_p99_seconds", run).unwrap();
    assert!(p50 > 0.0 && p50 <= p99 && p99 < 5.0, "{p50} {p99}");
    assert!(!text.contains("time_to_first_token"), "not a streaming run");
    match promtool(&text) {
        Some((ok, said)) => {
            assert!(ok, "promtool check metrics failed:\n{said}\n{text}");
            assert!(said.trim().is_empty(), "promtool's lint says:\n{said}");
        }
        None => util::skip(
            "metrics_show_a_running_run_and_pass_promtool (promtool part)",
            "promtool not installed (Debian package prometheus; .ci/run installs it)",
        ),
    }
    // Once the run is over it is counted as done and has no live figures any more.
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, _, text) = get(a, "/metrics", None);
        let samples = parse_exposition(&text);
        if value(&samples, "pacer_runs", ("state", "done")) == Some(1.0) {
            assert_eq!(
                value(&samples, "pacer_runs", ("state", "running")),
                Some(0.0)
            );
            assert!(!text.contains("pacer_requests_sent_total"), "{text}");
            break;
        }
        assert!(Instant::now() < until, "the run never ended:\n{text}");
        std::thread::sleep(Duration::from_millis(200));
    }
    api.shutdown();
}

/// With `--api-key`, a scrape needs the key as every route but /health does.
#[test]
fn metrics_need_the_api_key_as_a_bearer_token() {
    let api = server(Some(KEY));
    let (status, head, _) = get(api.addr(), "/metrics", None);
    assert_eq!(status, 401, "{head}");
    let (status, _, text) = get(api.addr(), "/metrics", Some(KEY));
    assert_eq!(status, 200);
    let samples = parse_exposition(&text);
    assert_eq!(samples.len(), 4, "the four states, no run: {text}");
    api.shutdown();
}

// ---- OTLP ----------------------------------------------------------------------------------

/// What the receiver got: path, content type, parsed body.
type Got = Arc<Mutex<Vec<(String, String, Value)>>>;

/// A small OTLP/HTTP receiver on a loopback port: reads each request (head and Content-Length
/// body), records it and answers 200 `{}`. Lives as long as the test process.
fn receiver() -> (SocketAddr, Got) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let got: Got = Arc::default();
    let record = Arc::clone(&got);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            let (head, body) = loop {
                let Ok(n) = s.read(&mut chunk) else {
                    break (String::new(), Vec::new());
                };
                if n == 0 {
                    break (String::new(), Vec::new());
                }
                buf.extend_from_slice(&chunk[..n]);
                let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                    continue;
                };
                let head = String::from_utf8_lossy(&buf[..end]).to_string();
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                while buf.len() < end + 4 + len {
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                break (head, buf[end + 4..].to_vec());
            };
            if head.is_empty() {
                continue;
            }
            let path = head.split(' ').nth(1).unwrap_or("").to_string();
            let ctype = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-type")
                        .then(|| v.trim().to_string())
                })
                .unwrap_or_default();
            let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
            record.lock().unwrap().push((path, ctype, body));
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
            );
        }
    });
    (addr, got)
}

/// The data points of one push, by metric name: (kind of metric, point).
fn points(body: &Value) -> BTreeMap<String, (String, Value)> {
    let rm = &body["resourceMetrics"][0];
    assert_eq!(
        rm["resource"]["attributes"],
        json!([{"key": "service.name", "value": {"stringValue": "pacer"}}]),
        "{body}"
    );
    let mut out = BTreeMap::new();
    for m in rm["scopeMetrics"][0]["metrics"].as_array().unwrap() {
        let (kind, data) = if m["sum"].is_object() {
            assert_eq!(m["sum"]["isMonotonic"], true);
            assert_eq!(m["sum"]["aggregationTemporality"], 2);
            ("sum", &m["sum"])
        } else {
            ("gauge", &m["gauge"])
        };
        let p = &data["dataPoints"][0];
        for t in ["timeUnixNano", "startTimeUnixNano"] {
            let s = p[t]
                .as_str()
                .unwrap_or_else(|| panic!("{t} is a string: {p}"));
            assert!(
                s.len() >= 19 && s.bytes().all(|b| b.is_ascii_digit()),
                "{t}: {s}"
            );
        }
        out.insert(
            m["name"].as_str().unwrap().to_string(),
            (kind.into(), p.clone()),
        );
    }
    out
}

fn int(points: &BTreeMap<String, (String, Value)>, name: &str) -> u64 {
    let p = &points[name].1;
    p["asInt"]
        .as_str()
        .unwrap_or_else(|| panic!("{name}: asInt is a string: {p}"))
        .parse()
        .unwrap()
}

fn attribute(point: &Value, key: &str) -> Option<String> {
    point["attributes"]
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)
        .map(|a| a["value"]["stringValue"].as_str().unwrap_or("").to_string())
}

/// `pacer bench --otlp`: a push every interval with rising counts, and a last one equal to the
/// report's totals.
#[test]
fn otlp_pushes_every_interval_and_the_last_equals_the_report() {
    let (collector, got) = receiver();
    let mock = util::mock_ok();
    let dir = TempDir::new("otlp");
    let report_path = dir.path("run.json");
    let o = util::pacer(&[
        "bench",
        &format!("{}/", mock.url()),
        "-q",
        "100",
        "-z",
        "3s",
        "-c",
        "4",
        "--interval",
        "500ms",
        "--quiet",
        "--otlp",
        &format!("http://{collector}/v1/metrics"),
        "-o",
        report_path.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", util::stderr(&o));
    assert!(!util::stderr(&o).contains("otlp"), "{}", util::stderr(&o));
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    let got = got.lock().unwrap().clone();
    // 3 s at one push per 500 ms, and the last: at least 4 even on a loaded machine.
    assert!(got.len() >= 4, "{} pushes", got.len());
    assert_eq!(report["otlp"]["pushes"], json!(got.len()));
    assert_eq!(report["otlp"]["failed"], json!(0));
    let mut sent = Vec::new();
    for (path, ctype, body) in &got {
        assert_eq!(path, "/v1/metrics");
        assert_eq!(ctype, "application/json");
        let p = points(body);
        assert_eq!(p["pacer.requests.sent"].0, "sum");
        assert_eq!(p["pacer.requests.in_flight"].0, "gauge");
        let point = &p["pacer.requests.sent"].1;
        assert_eq!(attribute(point, "kind").as_deref(), Some("bench"));
        assert_eq!(
            attribute(point, "target"),
            report["config"]["url"].as_str().map(String::from)
        );
        sent.push(int(&p, "pacer.requests.sent"));
    }
    assert!(sent.windows(2).all(|w| w[0] <= w[1]), "{sent:?}");
    assert!(sent[0] < *sent.last().unwrap(), "the count rises: {sent:?}");
    let last = points(&got.last().unwrap().2);
    let total = report["total_requests"].as_u64().unwrap();
    assert!(total >= 250, "{total}");
    assert_eq!(int(&last, "pacer.requests.sent"), total);
    assert_eq!(
        int(&last, "pacer.responses"),
        report["successes"].as_u64().unwrap()
    );
    assert_eq!(
        int(&last, "pacer.errors"),
        report["errors"].as_u64().unwrap()
    );
    assert_eq!(int(&last, "pacer.requests.in_flight"), 0);
    assert_eq!(
        last["pacer.achieved_rate"].1["asDouble"].as_f64(),
        report["achieved_qps"].as_f64()
    );
    assert!(last.contains_key("pacer.response_time.p50"));
}

/// A collector that is not there fails every push; the run goes on, exits 0, and says so once.
#[test]
fn failed_pushes_are_counted_and_said_once() {
    let mock = util::mock_ok();
    let dir = TempDir::new("otlp-down");
    let report_path = dir.path("run.json");
    let o = util::pacer(&[
        "bench",
        &format!("{}/", mock.url()),
        "-q",
        "50",
        "-z",
        "1500ms",
        "--interval",
        "500ms",
        "--quiet",
        "--otlp",
        &format!("http://127.0.0.1:{}/v1/metrics", util::closed_port()),
        "-o",
        report_path.to_str().unwrap(),
    ]);
    let err = util::stderr(&o);
    assert!(o.status.success(), "{err}");
    assert_eq!(err.matches("--otlp").count(), 1, "{err}");
    assert!(
        err.contains("pushes failed") && err.contains("refused"),
        "{err}"
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    assert_eq!(report["total_requests"], json!(75));
    let pushes = report["otlp"]["pushes"].as_u64().unwrap();
    assert!(pushes >= 2, "{report}");
    assert_eq!(report["otlp"]["failed"].as_u64(), Some(pushes));
    assert!(
        report["otlp"]["error"]
            .as_str()
            .unwrap()
            .contains("refused")
    );
}

/// A run started by the API pushes too, each point labelled with the run's id; so does a sweep,
/// each phase's points labelled with the phase, the step and its rate.
#[test]
fn an_api_run_pushes_with_its_run_id() {
    let (collector, got) = receiver();
    let mock = util::mock_ok();
    let api = server(None);
    let body = json!({"url": format!("{}/", mock.url()), "qps": 50, "duration": 1,
        "interval": 0.5, "otlp": format!("http://{collector}/v1/metrics")});
    let (status, report) = util::post_json(api.addr(), "/benchmark", &body.to_string());
    assert_eq!(status, 200, "{report}");
    let first = got.lock().unwrap().clone();
    assert!(!first.is_empty());
    assert_eq!(report["otlp"]["pushes"], json!(first.len()));
    let last = points(&first.last().unwrap().2);
    assert_eq!(
        int(&last, "pacer.requests.sent"),
        report["total_requests"].as_u64().unwrap()
    );
    let id = attribute(&last["pacer.requests.sent"].1, "run_id").unwrap();
    assert_eq!(id.len(), 16, "{id}");
    let before = first.len();
    let body = json!({"url": format!("{}/", mock.url()), "rates": [10, 20],
        "step_duration": 1, "pause": 0,
        "otlp": format!("http://{collector}/v1/metrics")});
    let (status, answer) = util::post_json(api.addr(), "/sweep", &body.to_string());
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["otlp"]["failed"], 0, "{answer}");
    let all = got.lock().unwrap()[before..].to_vec();
    let pushed = all.len() as u64;
    assert_eq!(answer["otlp"]["pushes"], json!(pushed), "{answer}");
    // Each step's last push equals that step's report: its requests, at its rate.
    for (k, rate) in [(1u64, 10.0), (2, 20.0)] {
        let last = all
            .iter()
            .map(|b| points(&b.2))
            .rfind(|p| {
                attribute(&p["pacer.requests.sent"].1, "step").as_deref()
                    == Some(k.to_string().as_str())
            })
            .unwrap_or_else(|| panic!("no push of step {k}: {answer}"));
        let sent = &last["pacer.requests.sent"].1;
        assert_eq!(attribute(sent, "phase").as_deref(), Some("step"));
        assert_eq!(attribute(sent, "qps"), Some(rate.to_string()));
        let report = &answer["steps"][(k - 1) as usize];
        assert_eq!(
            int(&last, "pacer.requests.sent"),
            report["total_requests"].as_u64().unwrap(),
            "step {k}"
        );
    }
    api.shutdown();
}

/// `pacer sweep --otlp`: every step is pushed, and the sweep's JSON counts the pushes.
#[test]
fn a_sweep_pushes_each_step() {
    let (collector, got) = receiver();
    let mock = util::mock_ok();
    let o = util::pacer(&[
        "sweep",
        &format!("{}/", mock.url()),
        "--rates",
        "10,20",
        "--step-duration",
        "1s",
        "--quiet",
        "--json",
        "--otlp",
        &format!("http://{collector}/v1/metrics"),
    ]);
    assert!(o.status.success(), "{}", util::stderr(&o));
    let sweep = util::json_of(&o);
    let got = got.lock().unwrap().clone();
    assert_eq!(
        sweep["otlp"]["pushes"],
        json!(got.len()),
        "{}",
        sweep["otlp"]
    );
    assert_eq!(sweep["otlp"]["failed"], 0);
    let steps: std::collections::BTreeSet<String> = got
        .iter()
        .filter_map(|b| attribute(&points(&b.2)["pacer.requests.sent"].1, "step"))
        .collect();
    assert_eq!(steps, ["1".to_string(), "2".to_string()].into(), "{got:?}");
}

/// A streaming LLM run pushes time to first token's percentiles instead of response time's.
#[test]
fn a_streaming_run_pushes_time_to_first_token() {
    let (collector, got) = receiver();
    let mock = util::llm_mock();
    let o = util::pacer(&[
        "llm",
        "--url",
        &format!("{}/v1/completions", mock.url()),
        "--token",
        "live-test",
        "-q",
        "20",
        "-z",
        "2s",
        "--timeout",
        "10s",
        "--quiet",
        "--json",
        "--otlp",
        &format!("http://{collector}/v1/metrics"),
    ]);
    assert!(o.status.success(), "{}", util::stderr(&o));
    let report = util::json_of(&o);
    let got = got.lock().unwrap().clone();
    let last = points(&got.last().unwrap().2);
    assert_eq!(
        attribute(&last["pacer.requests.sent"].1, "kind").as_deref(),
        Some("llm")
    );
    assert_eq!(
        int(&last, "pacer.requests.sent"),
        report["total_requests"].as_u64().unwrap()
    );
    // The mock's first token comes 5 ms after the request; the rolling p50 is the middle of
    // the log bucket (10 per decade) holding it, so no less than 5 ms / 10^0.1.
    let ttft = last["pacer.time_to_first_token.p50"].1["asDouble"]
        .as_f64()
        .unwrap();
    assert!((0.0039..5.0).contains(&ttft), "{ttft}");
    assert!(!last.contains_key("pacer.response_time.p50"));
}

/// A collector URL pacer cannot push to is refused before the run, naming the flag.
#[test]
fn a_bad_collector_url_is_refused_by_name() {
    let o = util::pacer(&["bench", "http://127.0.0.1:9/", "--otlp", "ftp://collector/"]);
    assert_eq!(o.status.code(), Some(2));
    let err = util::stderr(&o);
    assert!(err.contains("--otlp") && err.contains("scheme"), "{err}");
}
