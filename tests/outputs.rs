//! What a run leaves behind besides its summary: the report's `timeline` and `clock`, the
//! per-request file (`--requests`), the HTML page (`--html`), and the refusal of a file that
//! cannot be written, before the run. Real runs against the mock on port 0; assertions on what
//! the schedule makes exact (constant arrivals place request `i` at `i / qps`), never on speed.

mod util;

use std::process::Output;

use pacer::mock::MockConfig;
use serde_json::Value;
use util::*;

fn json_of(o: &Output) -> Value {
    assert_eq!(o.status.code(), Some(0), "{}", stderr(o));
    serde_json::from_slice(&o.stdout).expect("--json prints JSON")
}

fn column(timeline: &[Value], key: &str) -> Vec<u64> {
    timeline.iter().map(|e| e[key].as_u64().unwrap()).collect()
}

/// The buckets of a timeline add up to the report's.
fn assert_adds_up(r: &Value) {
    let t = r["timeline"].as_array().unwrap();
    let sum = |k: &str| column(t, k).iter().sum::<u64>();
    let total = r["total_requests"].as_u64().unwrap();
    let not_sent: u64 = r["error_counts"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("not sent"))
        .map(|(_, n)| n.as_u64().unwrap())
        .sum::<u64>()
        // A stopped run's never-sent requests are counted apart from its errors.
        + r["unsent"].as_u64().unwrap_or(0);
    assert_eq!(sum("successes"), r["successes"].as_u64().unwrap());
    assert_eq!(sum("not_sent"), not_sent);
    assert_eq!(sum("successes") + sum("errors") + sum("not_sent"), total);
    let responses: u64 = r["histograms"]["response_time"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    assert_eq!(sum("completed"), responses);
    for e in t {
        let d = e["duration"].as_f64().unwrap();
        let rate = e["achieved_qps"].as_f64().unwrap();
        assert!((rate - e["sent"].as_f64().unwrap() / d).abs() < 1e-6, "{e}");
    }
}

#[test]
fn a_fixed_rate_run_places_each_request_in_its_interval() {
    let m = mock(MockConfig::default());
    let url = format!("{}/", m.url());
    let before = pacer::engine::sys::monotonic_ns();
    let unix_before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let r = json_of(&pacer(&["bench", &url, "-q", "200", "-z", "2s", "--json"]));
    let after = pacer::engine::sys::monotonic_ns();
    assert_eq!(r["config"]["interval"], 1);
    let t = r["timeline"].as_array().unwrap();
    // The run lasts a little over 2 s: three intervals, the last one short.
    let elapsed = r["elapsed"].as_f64().unwrap();
    assert_eq!(t.len(), elapsed.ceil() as usize, "{elapsed}");
    assert_eq!(
        (t[0]["start"].as_f64(), t[1]["start"].as_f64()),
        (Some(0.0), Some(1.0))
    );
    assert_eq!(t[0]["duration"], 1.0);
    // Request i is intended at i / 200 s: exactly 200 per second.
    let scheduled = column(t, "scheduled");
    assert_eq!(scheduled[..2], [200, 200]);
    assert_eq!(scheduled.iter().sum::<u64>(), 400);
    assert_eq!(column(t, "sent").iter().sum::<u64>(), 400);
    assert_adds_up(&r);
    for e in &t[..2] {
        let p50 = e["response_time_p50"].as_f64().unwrap();
        let p99 = e["response_time_p99"].as_f64().unwrap();
        assert!(p50 > 0.0 && p50 <= p99, "{e}");
        assert!(
            e.get("time_to_first_token_p50").is_none(),
            "not an LLM run: {e}"
        );
        assert!(e.get("output_tokens").is_none(), "{e}");
    }
    // The clock: t0 on CLOCK_MONOTONIC and Unix time, within the process's lifetime.
    let start = r["clock"]["monotonic_start_ns"].as_i64().unwrap();
    assert!(before < start && start < after, "{before} {start} {after}");
    let unix = r["clock"]["unix_start"].as_f64().unwrap();
    assert!(unix > unix_before && unix < unix_before + 60.0, "{unix}");
    m.shutdown();
}

#[test]
fn the_interval_is_settable_and_saturation_has_a_timeline_too() {
    let m = mock(MockConfig::default());
    let url = format!("{}/", m.url());
    let r = json_of(&pacer(&[
        "bench",
        &url,
        "-q",
        "100",
        "-z",
        "2s",
        "--interval",
        "500ms",
        "--json",
    ]));
    assert_eq!(r["config"]["interval"], 0.5);
    let t = r["timeline"].as_array().unwrap();
    assert_eq!(column(t, "scheduled")[..4], [50, 50, 50, 50]);
    assert_eq!(t[3]["start"], 1.5);
    assert_adds_up(&r);

    let r = json_of(&pacer(&[
        "bench", &url, "-q", "max", "-z", "1s", "-c", "4", "--json",
    ]));
    let t = r["timeline"].as_array().unwrap();
    assert!(!t.is_empty());
    assert_eq!(
        column(t, "sent").iter().sum::<u64>(),
        r["total_requests"].as_u64().unwrap()
    );
    assert_adds_up(&r);

    let o = pacer(&["bench", &url, "--interval", "0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--interval"), "{}", stderr(&o));
    m.shutdown();
}

#[test]
fn an_llm_run_has_first_tokens_and_output_tokens_per_interval() {
    let m = llm_mock();
    let url = format!("{}/v1/completions", m.url());
    let dir = TempDir::new("llm");
    let reqs = dir.arg("r.jsonl");
    let r = json_of(&pacer(&[
        "fireworks",
        &url,
        "--token",
        "t",
        "-q",
        "20",
        "-z",
        "1s",
        "--timeout",
        "10s",
        "--json",
        "--requests",
        &reqs,
    ]));
    let t = r["timeline"].as_array().unwrap();
    assert_eq!(column(t, "output_tokens").iter().sum::<u64>(), 100);
    let ttft = t[0]["time_to_first_token_p50"].as_f64().unwrap();
    assert!(ttft >= 0.005, "{ttft}");
    assert_adds_up(&r);
    let lines: Vec<Value> = std::fs::read_to_string(&reqs)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 20);
    for l in &lines {
        assert_eq!(l["output_tokens"], 5, "{l}");
        let first = l["first_token"].as_f64().unwrap();
        let sent = l["dispatched"].as_f64().unwrap();
        assert!(first - sent >= 0.005 - 1e-6, "{l}");
        // The mock reports when it sent its first token (perf_metrics), in seconds.
        assert!(l["server_ttft"].as_f64().is_some(), "{l}");
        // Fireworks sends no time per output token of its own.
        assert_eq!(l["server_tpot"], Value::Null, "{l}");
    }
    m.shutdown();
}

#[test]
fn every_request_is_one_line_with_its_times_and_fate() {
    let m = mock(MockConfig::default());
    let url = format!("{}/", m.url());
    let dir = TempDir::new("reqs");
    let reqs = dir.arg("r.jsonl");
    let r = json_of(&pacer(&[
        "bench",
        &url,
        "-q",
        "50",
        "-z",
        "1s",
        "--json",
        "--requests",
        &reqs,
    ]));
    let text = std::fs::read_to_string(&reqs).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 50);
    let mut indexes: Vec<u64> = lines.iter().map(|l| l["index"].as_u64().unwrap()).collect();
    indexes.sort_unstable();
    assert_eq!(indexes, (0..50).collect::<Vec<_>>());
    let mut errors = 0;
    for l in &lines {
        let keys: Vec<&str> = l.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "index",
                "thread",
                "conn",
                "intended",
                "dispatched",
                "headers",
                "first_token",
                "ended",
                "status",
                "error",
                "bytes"
            ]
        );
        // Request i is intended at i / 50 s, written to the microsecond.
        let i = l["index"].as_u64().unwrap();
        let intended = l["intended"].as_f64().unwrap();
        assert!((intended - i as f64 / 50.0).abs() < 2e-6, "{l}");
        let (d, h, e) = (
            l["dispatched"].as_f64().unwrap(),
            l["headers"].as_f64().unwrap(),
            l["ended"].as_f64().unwrap(),
        );
        assert!(intended <= d && d <= h && h <= e, "{l}");
        assert!(
            l["conn"].as_u64().unwrap() >= 1 && l["bytes"].as_u64().unwrap() > 0,
            "{l}"
        );
        assert!(l["thread"].as_u64().unwrap() < 2, "{l}");
        match l["status"].as_u64() {
            Some(200) => assert_eq!(l["error"], Value::Null),
            Some(400) => {
                assert_eq!(l["error"], "400");
                errors += 1;
            }
            other => panic!("status {other:?}: {l}"),
        }
    }
    assert_eq!(errors, r["errors"].as_u64().unwrap());
    // Every line is written when the run ends, in whole lines.
    assert!(text.ends_with("}\n"));
    m.shutdown();
}

#[test]
fn html_writes_the_page_of_the_run() {
    let m = mock(MockConfig::default());
    let url = format!("{}/", m.url());
    let dir = TempDir::new("html");
    let page = dir.arg("r.html");
    let o = pacer(&["bench", &url, "-q", "50", "-z", "1s", "--html", &page]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(
        html.contains("\"timeline\":[{\"start\":0.0"),
        "the run's report is in it"
    );
    assert!(
        stderr(&o).contains(&format!("HTML report to {page}")),
        "{}",
        stderr(&o)
    );
    m.shutdown();
}

#[test]
fn a_file_that_cannot_be_written_fails_before_the_run_naming_it() {
    // Nothing listens there: had the run started, it would exit 1, not 2.
    let url = format!("http://127.0.0.1:{}/", closed_port());
    let dir = TempDir::new("bad");
    let missing = dir.path("no-such-dir");
    for flag in ["--requests", "--html", "-o"] {
        let bad = missing.join("x").to_string_lossy().into_owned();
        let o = pacer(&["bench", &url, "-q", "5", "-z", "1s", flag, &bad]);
        assert_eq!(o.status.code(), Some(2), "{flag}: {}", stderr(&o));
        let name = if flag == "-o" { "--output" } else { flag };
        assert!(
            stderr(&o).starts_with(&format!("pacer: cannot write {name} {bad}: ")),
            "{}",
            stderr(&o)
        );
        assert!(!stderr(&o).contains("pacer: GET"), "no banner: nothing ran");
    }
    // A report file opened before the bad one is not left behind.
    let report = dir.arg("report.json");
    let bad = missing.join("r.jsonl").to_string_lossy().into_owned();
    let o = pacer(&[
        "bench",
        &url,
        "-o",
        &report,
        "--html",
        &dir.arg("p.html"),
        "--requests",
        &bad,
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!dir.path("report.json").exists() && !dir.path("p.html").exists());
}

#[test]
fn the_api_takes_an_interval_and_answers_a_timeline() {
    let m = mock(MockConfig::default());
    let api = pacer::api::ApiServer::start(pacer::api::ApiConfig {
        addr: "127.0.0.1:0".into(),
        ..pacer::api::ApiConfig::default()
    })
    .expect("the API binds a loopback port");
    let body = format!(
        r#"{{"url": "{}/", "qps": 40, "duration": 1, "interval": 0.25}}"#,
        m.url()
    );
    let (status, r) = post_json(api.addr(), "/benchmark", &body);
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["config"]["interval"], 0.25);
    let t = r["timeline"].as_array().unwrap();
    assert_eq!(column(t, "scheduled")[..4], [10, 10, 10, 10]);
    assert_adds_up(&r);
    assert!(r["clock"]["monotonic_start_ns"].as_u64().unwrap() > 0);
    // Not a number, not above 0, or so short that 1 s + 2 × 2 s would make 5 million intervals.
    for interval in ["\"soon\"", "0", "0.000001"] {
        let body = format!(
            r#"{{"url": "{}/", "qps": 1, "duration": 1, "interval": {interval}}}"#,
            m.url()
        );
        let (status, r) = post_json(api.addr(), "/benchmark", &body);
        assert_eq!(status, 422, "{interval}: {r}");
        assert_eq!(r["detail"][0]["loc"][1], "interval", "{r}");
    }
    api.shutdown();
    m.shutdown();
}

#[test]
fn the_requests_file_follows_the_run() {
    // At 50 req/s a lane's batch of 512 records filled in 10 s, and the writer wrote in blocks
    // of 256 KB: `tail -f` showed nothing until the run ended. Now a record reaches the file
    // within about 200 ms of its end; asserted only as "before the run ends", with 8 s of room.
    let m = mock(MockConfig::default());
    let dir = TempDir::new("follow");
    let reqs = dir.path("r.jsonl");
    let url = format!("{}/", m.url());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pacer"))
        .args([
            "bench",
            &url,
            "-q",
            "50",
            "-z",
            "10s",
            "--quiet",
            "--requests",
        ])
        .arg(&reqs)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut seen = 0;
    while std::time::Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        let text = std::fs::read_to_string(&reqs).unwrap_or_default();
        seen = text.lines().count();
        if seen > 0 {
            for l in text.lines() {
                serde_json::from_str::<Value>(l).expect("whole JSON lines only");
            }
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let still_running = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        still_running && seen > 0,
        "no line in --requests while the run went on (running: {still_running})"
    );
    m.shutdown();
}
