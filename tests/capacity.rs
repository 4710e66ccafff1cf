//! Finding the capacity (issue 11): thresholds with their exit code, stages and ramps, goodput,
//! corrected streaming timings and the health verdict, through the real binary, the library and
//! the API, against in-process mock targets on port 0.

mod util;

use std::process::{Command, Output};

use pacer::mock::MockConfig;
use serde_json::Value;
use util::*;

fn pacer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pacer"))
        .args(args)
        .env_remove("FIREWORKS_API_KEY")
        .output()
        .expect("the pacer binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json_of(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", stdout(o)))
}

/// A mock that answers every `/` with 200 after `delay_ms`.
fn slow_mock(delay_ms: f64) -> pacer::mock::MockServer {
    mock(MockConfig {
        error_rate: 0.0,
        delay: ms(delay_ms),
        ..MockConfig::default()
    })
}

/// The mock answers after 20 ms, so a p50 under 10 ms cannot hold and one at or over 20 ms must
/// (physics, whatever the machine's load); the error rate is 0 by the mock's configuration.
#[test]
fn thresholds_pass_with_exit_0_and_fail_with_exit_3() {
    let m = slow_mock(20.0);
    let url = format!("{}/", m.url());
    let base = ["bench", url.as_str(), "-q", "20", "-z", "500ms", "-c", "20"];

    let mut args = base.to_vec();
    args.extend([
        "--json",
        "--threshold",
        "response_time_p50>=20ms",
        "--threshold",
        "error_rate<=1%, response_time_p95 < 60s",
        "--threshold",
        "achieved_qps>0",
    ]);
    let o = pacer(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = json_of(&o);
    let t = r["thresholds"].as_array().expect("a thresholds list");
    assert_eq!(t.len(), 4, "{t:?}");
    let names: Vec<&str> = t.iter().map(|c| c["metric"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "response_time_p50",
            "error_rate",
            "response_time_p95",
            "achieved_qps"
        ]
    );
    assert!(t.iter().all(|c| c["pass"] == true), "{t:?}");
    // Each value is the report's own field (p95 is added for the threshold that reads it).
    for c in t {
        let metric = c["metric"].as_str().unwrap();
        assert_eq!(c["value"], r[metric], "{metric}");
    }
    assert!(r["response_time_p50"].as_f64().unwrap() >= 0.020);
    assert!(r["response_time_p95"].as_f64().unwrap() >= 0.020);
    assert_eq!(r["error_rate"], 0.0);
    assert_eq!(t[1]["expression"], "error_rate<=1%");
    // The config echoes each expression, a comma list split.
    assert_eq!(
        r["config"]["thresholds"],
        serde_json::json!([
            "response_time_p50>=20ms",
            "error_rate<=1%",
            "response_time_p95 < 60s",
            "achieved_qps>0"
        ])
    );

    // One failing threshold: exit 3, the report still printed, the failure named on stderr.
    let mut args = base.to_vec();
    args.extend([
        "--threshold",
        "response_time_p50<10ms",
        "--threshold",
        "error_rate==0",
    ]);
    let o = pacer(&args);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("threshold failed: response_time_p50<10ms"),
        "{}",
        stderr(&o)
    );
    let text = stdout(&o);
    assert!(text.contains("thresholds: 1 of 2 FAILED"), "{text}");
    assert!(
        text.lines().any(
            |l| l.trim_start().starts_with("FAIL  response_time_p50<10ms")
                && l.contains("response_time_p50 = ")
        ),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("pass  error_rate==0")
                && l.ends_with("error_rate = 0.00%")),
        "{text}"
    );
}

#[test]
fn malformed_or_unmeasured_thresholds_are_refused_before_the_run() {
    // Nothing listens there: a refusal must come before any connection is tried.
    let url = format!("http://127.0.0.1:{}/", closed_port());
    let o = pacer(&["bench", &url, "--threshold", "response_tme_p99<=200ms"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("--threshold"), "{e}");
    assert!(
        e.contains("at position 1: unknown metric \"response_tme_p99\""),
        "{e}"
    );
    assert!(e.contains("metrics: mean_X, std_X, max_X, X_pNN"), "{e}");
    assert!(e.contains("error_rate"), "{e}");

    // A valid threshold passes the checks; this run then fails for want of a target (exit 1).
    let o = pacer(&[
        "bench",
        &url,
        "-z",
        "100ms",
        "--threshold",
        "response_time_p99<=200",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));

    let o = pacer(&["bench", &url, "--threshold", "error_rate<=1ms"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("at position 14"), "{}", stderr(&o));

    let o = pacer(&["bench", &url, "--threshold", "time_to_first_token_p99<1s"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--threshold: \"time_to_first_token_p99<1s\": time_to_first_token_p99 is measured on streaming LLM runs only"),
        "{}",
        stderr(&o)
    );
}

fn api() -> pacer::api::ApiServer {
    pacer::api::ApiServer::start(pacer::api::ApiConfig {
        addr: "127.0.0.1:0".into(),
        ..pacer::api::ApiConfig::default()
    })
    .expect("the API binds a loopback port")
}

#[test]
fn the_api_reports_thresholds_and_refuses_malformed_ones_with_422() {
    let m = slow_mock(20.0);
    let server = api();
    let a = server.addr();
    let body = format!(
        r#"{{"url": "{}/", "qps": 20, "duration": 0.25, "num_workers": 10,
            "thresholds": ["response_time_p50>=20ms", "response_time_p99.9<10ms,error_rate==0"]}}"#,
        m.url()
    );
    let (status, r) = post_json(a, "/benchmark", &body);
    assert_eq!(status, 200, "{r}");
    let t = r["thresholds"].as_array().expect("thresholds");
    let got: Vec<(&str, bool)> = t
        .iter()
        .map(|c| (c["metric"].as_str().unwrap(), c["pass"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            ("response_time_p50", true),
            ("response_time_p999", false),
            ("error_rate", true)
        ]
    );
    assert!(t[1]["value"].as_f64().unwrap() >= 0.020, "{}", t[1]);
    assert_eq!(t[1]["value"], r["response_time_p999"]);

    let body = format!(
        r#"{{"url": "{}/", "qps": 20, "duration": 0.25, "thresholds": ["error_rate<=0.01", "p99 < 1s"]}}"#,
        m.url()
    );
    let (status, r) = post_json(a, "/benchmark", &body);
    assert_eq!(status, 422, "{r}");
    let d = &r["detail"][0];
    assert_eq!(d["loc"], serde_json::json!(["body", "thresholds"]));
    let msg = d["msg"].as_str().unwrap();
    assert!(
        msg.starts_with("\"p99 < 1s\" at position 1: unknown metric \"p99\""),
        "{msg}"
    );
    assert!(msg.contains("metrics: "), "{msg}");
    let (status, r) = post_json(
        a,
        "/benchmark",
        &format!(
            r#"{{"url": "{}/", "qps": 20, "duration": 0.25, "thresholds": "error_rate<1"}}"#,
            m.url()
        ),
    );
    assert_eq!(status, 422, "{r}");
    assert_eq!(r["detail"][0]["type"], "list_type");
    assert_eq!(m.counters().requests, 5, "only the valid run sent requests");
    server.shutdown();
}

#[test]
fn bad_stages_are_refused_before_the_run_with_exit_2() {
    let url = format!("http://127.0.0.1:{}/", closed_port());
    for (args, want) in [
        (
            vec!["--stages", "100:30s,0:10s"],
            "--stages: stage 2: the rate must be a number above 0, not 0",
        ),
        (
            vec!["--stages", "-5:10s"],
            "--stages: stage 1: the rate must be a number above 0, not -5",
        ),
        (
            vec!["--stages", "100:-1s"],
            "--stages: stage 1: the duration must be a number of seconds above 0, not -1",
        ),
        (
            vec!["--stages", "100:0s,200:10s"],
            "--stages: stage 1: a duration of 0 sends nothing without a ramp",
        ),
        (
            vec!["--stages", "100:10s,200:0s", "--ramp"],
            "--stages: stage 2: the last stage needs a duration above 0",
        ),
        (
            vec!["--stages", "100:10s,x:1s"],
            "stage 2 (\"x:1s\"): \"x\" is not a rate",
        ),
        (
            vec!["--stages", "100:10s,50"],
            "stage 2 (\"50\"): no `:` between the rate and the duration",
        ),
        (
            vec!["--stages", "100:10s", "-q", "50"],
            "cannot be used with",
        ),
        (
            vec!["--stages", "100:10s", "-z", "5s"],
            "cannot be used with",
        ),
        (vec!["--ramp"], "--stages"),
        (
            vec!["--goodput", "ttft<=1s,tbt<1s"],
            "at position 10: unknown per-request metric \"tbt\"",
        ),
        (
            vec!["--goodput", "time_to_first_token<=1s"],
            "--goodput: \"time_to_first_token<=1s\": time_to_first_token is measured on streaming LLM runs only",
        ),
    ] {
        let mut all = vec!["bench", url.as_str()];
        all.extend(&args);
        let o = pacer(&all);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn the_api_refuses_bad_stages_with_422() {
    let server = api();
    let a = server.addr();
    // Nothing listens at the target: every refusal must come before a connection is tried.
    let url = format!("http://127.0.0.1:{}/", closed_port());
    for (fields, loc, want) in [
        (
            r#""qps": 10, "stages": [{"qps": 10, "duration": 1}]"#,
            "stages",
            "stages replace qps and duration",
        ),
        (
            r#""duration": 10, "stages": [{"qps": 10, "duration": 1}]"#,
            "stages",
            "stages replace qps and duration",
        ),
        (
            r#""stages": [{"qps": 10, "duration": 1}, {"qps": 0, "duration": 1}]"#,
            "stages",
            "stage 2: the rate must be a number above 0, not 0",
        ),
        (
            r#""stages": [{"qps": 10, "duration": -3}]"#,
            "stages",
            "stage 1: the duration must be a number of seconds above 0, not -3",
        ),
        (
            r#""stages": [{"qps": 10, "duration": 0}, {"qps": 20, "duration": 1}]"#,
            "stages",
            "stage 1: a duration of 0 sends nothing without a ramp",
        ),
        (
            r#""stages": [{"qps": 2000000, "duration": 1}]"#,
            "stages",
            "(--max-qps)",
        ),
        (r#""stages": []"#, "stages", "non-empty list"),
        (r#""stages": [{"qps": 1}]"#, "stages", "non-empty list"),
        (
            r#""qps": 10, "duration": 1, "ramp": true"#,
            "ramp",
            "give stages too",
        ),
        (
            r#""qps": 10, "duration": 1, "goodput": ["response_time<=1s,latency>1s"]"#,
            "goodput",
            "at position 26: an objective is an upper bound",
        ),
    ] {
        let body = format!(r#"{{"url": "{url}", {fields}}}"#);
        let (status, r) = post_json(a, "/benchmark", &body);
        assert_eq!(status, 422, "{fields}: {r}");
        let d = &r["detail"][0];
        assert_eq!(d["loc"], serde_json::json!(["body", loc]), "{fields}: {r}");
        assert!(d["msg"].as_str().unwrap().contains(want), "{fields}: {r}");
    }
    server.shutdown();
}
