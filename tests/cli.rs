//! The real `pacer` binary, run as a user runs it: flags in, exit code, stdout and stderr out,
//! against in-process mock targets on port 0.

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

/// A mock LLM fast enough that a short run finishes well inside its timeout.
fn llm_mock() -> pacer::mock::MockServer {
    mock(MockConfig {
        ttft: ms(5.0),
        itl: ms(1.0),
        tokens: 5,
        ..MockConfig::default()
    })
}

/// Runs `pacer fireworks ... --json` against the mock with `extra` flags; returns the report
/// after checking the exit code.
fn fireworks_json(m: &pacer::mock::MockServer, extra: &[&str]) -> Value {
    let url = format!("{}/v1/completions", m.url());
    let mut args = vec![
        "fireworks",
        "--url",
        &url,
        "--token",
        "cli-test-token",
        "--qps",
        "10",
        "--duration",
        "0.5",
        "--timeout",
        "10",
        "--json",
    ];
    args.extend_from_slice(extra);
    let o = pacer(&args);
    assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).expect("--json prints JSON")
}

fn assert_all_succeeded(r: &Value) {
    assert_eq!(r["total_requests"], 5, "{r}");
    assert_eq!(r["successes"], r["total_requests"], "{}", r["error_counts"]);
}

#[test]
fn stream_takes_a_value() {
    let m = llm_mock();
    let r = fireworks_json(&m, &["--stream", "false"]);
    assert_all_succeeded(&r);
    assert_eq!(r["config"]["stream"], false);
    assert_eq!(r["config"]["fireworks_payload"]["stream"], false);
    // Not streaming: no time-to-first-token family, but the usage still counts tokens.
    assert!(r.get("mean_time_to_first_token").is_none(), "{r}");
    assert_eq!(r["output_tokens"], 25);

    let r = fireworks_json(&m, &["--stream", "True"]);
    assert_all_succeeded(&r);
    assert_eq!(r["config"]["stream"], true);
    assert_eq!(r["output_tokens"], 25);
    assert!(r["mean_time_to_first_token"].as_f64().unwrap() >= 0.005);

    // The API's words, and no others.
    let o = pacer(&["fireworks", "--token", "t", "--stream", "yes"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--stream"), "{}", stderr(&o));
}

#[test]
fn the_payloads_final_stream_decides_how_the_response_is_read() {
    let m = llm_mock();
    let r = fireworks_json(&m, &["--payload", r#"{"stream": false}"#]);
    assert_all_succeeded(&r);
    assert_eq!(r["config"]["stream"], false);
    let payload = &r["config"]["fireworks_payload"];
    assert_eq!(payload["stream"], false);
    // stream_options is only for streaming requests: servers refuse it otherwise.
    assert!(payload.get("stream_options").is_none(), "{payload}");
    assert!(r.get("mean_time_to_first_token").is_none(), "{r}");

    // And the other way round: the payload turns streaming on.
    let r = fireworks_json(
        &m,
        &["--stream", "false", "--payload", r#"{"stream": true}"#],
    );
    assert_all_succeeded(&r);
    assert_eq!(r["config"]["stream"], true);
    assert_eq!(
        r["config"]["fireworks_payload"]["stream_options"]["include_usage"],
        true
    );
    assert!(r["mean_time_to_first_token"].as_f64().unwrap() >= 0.005);
}

#[test]
fn a_control_character_in_a_header_value_is_bad_usage() {
    // Nothing listens there: the plan must refuse before any connection is tried.
    let url = format!("http://127.0.0.1:{}/", closed_port());
    for (header, shown) in [
        ("X-Bell: a\u{7}b", "X-Bell"),
        ("X-Esc: \u{1b}[31m", "X-Esc"),
        ("X-Del: a\u{7f}", "X-Del"),
    ] {
        let o = pacer(&[
            "bench",
            "--url",
            &url,
            "--qps",
            "1",
            "--duration",
            "1",
            "-H",
            header,
        ]);
        assert_eq!(o.status.code(), Some(2), "{header:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains(shown), "{header:?}: {err}");
        assert!(err.contains("control character"), "{header:?}: {err}");
        assert!(o.stdout.is_empty(), "no report for a refused plan");
    }
}
