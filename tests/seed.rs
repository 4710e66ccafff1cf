//! The original service's own examples, verbatim, against the API and the mock target: what its
//! users' scripts send must keep working and get a superset of what they got.

mod util;

use pacer::api::{ApiConfig, ApiServer};
use pacer::mock::MockConfig;
use pacer::plan::Limits;
use serde_json::{Value, json};
use util::*;

fn api() -> ApiServer {
    ApiServer::start(ApiConfig {
        addr: "127.0.0.1:0".into(),
        limits: Limits::default(),
        max_runs: 2,
        api_key: None,
        ..ApiConfig::default()
    })
    .expect("api starts")
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Each family of `names` times, per request, an event no earlier than the next family's: so are
/// their means and percentiles in the report (see `util::assert_not_before`).
fn assert_ordered(r: &Value, names: &[&str]) {
    for pair in names.windows(2) {
        for stat in ["mean_{}", "{}_p50", "{}_p90", "{}_p99"] {
            let (later, earlier) = (stat.replace("{}", pair[0]), stat.replace("{}", pair[1]));
            let (a, b) = (r[&later].as_f64().unwrap(), r[&earlier].as_f64().unwrap());
            assert!(a >= b - 1e-9, "{later} {a} < {earlier} {b}");
        }
    }
}

#[test]
fn the_seed_benchmark_curl() {
    let target = mock(MockConfig {
        error_rate: 0.2,
        seed: 11,
        ..MockConfig::default()
    });
    let server = api();
    // The README's curl, with the mock's port instead of 8081.
    let body = format!(
        r#"{{"url": "http://localhost:{}", "qps": 20, "duration": 5, "num_workers": 5, "timeout": 2}}"#,
        target.addr().port()
    );
    let (status, r) = post_json(server.addr(), "/benchmark", &body);
    assert_eq!(status, 200, "{r}");
    assert_superset(&r, &fixture("benchmark_response.json"), "");
    let c = target.counters();
    assert_eq!(r["total_requests"], json!(100));
    assert_eq!(c.requests, 100);
    // The mix gives ordinals 0..100 whatever the interleaving: 27 of them are 400 for seed 11 at
    // 0.2, counted by an independent SplitMix64 in Python (status 400 when the first output for
    // seed `11 ^ (i × 0x9E3779B97F4A7C15)`, shifted right 11 and divided by 2^53, is below 0.2).
    assert_eq!(c.status_400, 27, "{c:?}");
    assert_eq!(r["errors"], json!(c.status_400));
    assert_eq!(r["errors_status"], json!([400]));
    assert_eq!(r["successes"], json!(c.status_200));
    assert_eq!(r["error_counts"], json!({"400": c.status_400}));
    assert_eq!(r["config"]["timeout"], json!(2.0));
    for key in [
        "mean_response_time",
        "std_response_time",
        "response_time_p50",
        "response_time_p99",
        "mean_latency",
        "latency_p97",
        "elapsed",
        "achieved_qps",
        "mean_corrected_response_time",
        "corrected_response_time_p99",
        "mean_dispatch_delay",
        "dispatch_delay_p99",
    ] {
        let v = r[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} is not a number: {}", r[key]));
        assert!(v > 0.0 && v.is_finite(), "{key} = {v}");
    }
    let p50 = r["response_time_p50"].as_f64().unwrap();
    let p99 = r["response_time_p99"].as_f64().unwrap();
    // Every response counted came within the 2 s timeout.
    assert!(p50 <= p99 && p99 <= 2.0, "{p50} {p99}");
    assert_ordered(&r, &["response_time", "latency"]);
    // 100 sends due 50 ms apart, the last 4.95 s after the first. None leaves before it is due,
    // none waits more than the 2 s timeout for a worker: the first send is within 2 s of the
    // start and the last after 4.95 s, so the span is within 4.95 ± 2 s (the rate's precision is
    // measured in benches/compare.sh).
    let qps = r["achieved_qps"].as_f64().unwrap();
    assert!(
        (99.0 / (4.95 + 2.0)..=99.0 / (4.95 - 2.0)).contains(&qps),
        "achieved_qps {qps}"
    );
    assert!(r["elapsed"].as_f64().unwrap() >= 4.95, "{}", r["elapsed"]);
    assert!(r["bytes_received"].as_u64().unwrap() > 0);
    let opened = r["connections_opened"].as_u64().unwrap();
    assert!((1..=5).contains(&opened), "connections_opened {opened}");
}

#[test]
fn the_seed_fireworks_curl_against_the_mock() {
    let target = mock(MockConfig {
        ttft: ms(20.0),
        itl: ms(5.0),
        tokens: 20,
        ..MockConfig::default()
    });
    let server = api();
    let body = format!(
        r#"{{"qps": 10, "duration": 2, "token": "fw-SEED-TOKEN",
             "model": "accounts/fireworks/models/llama-v3-8b-instruct-hf", "max_tokens": 25,
             "prompt": "Snow is white", "url": "http://127.0.0.1:{}/v1/completions",
             "stream": "True", "num_workers": 10, "timeout": 3}}"#,
        target.addr().port()
    );
    let (status, r) = post_json(server.addr(), "/fireworks_benchmark", &body);
    assert_eq!(status, 200, "{r}");
    let original = fixture("fireworks_benchmark_response.json");
    assert_superset(&r, &original, "");
    assert_eq!(r["total_requests"], json!(20));
    assert_eq!(r["errors"], json!(0));
    assert_eq!(r["output_tokens"], json!(400));
    assert_eq!(r["mean_output_tokens"], json!(20.0));
    // No token before the mock's 20 ms, and the whole stream (20 ms + 19 × 5 ms at least)
    // within the 3 s timeout.
    let ttft = r["mean_time_to_first_token"].as_f64().unwrap();
    assert!((0.020..=3.0).contains(&ttft), "ttft {ttft}");
    let rt = r["mean_response_time"].as_f64().unwrap();
    assert!((0.020 + 19.0 * 0.005..=3.0).contains(&rt), "response {rt}");
    assert_ordered(
        &r,
        &[
            "response_time",
            "time_to_first_token",
            "time_to_first_byte",
            "latency",
        ],
    );
    for family in [
        "time_to_first_byte",
        "inter_token_latency",
        "time_per_output_token",
    ] {
        assert!(r[format!("mean_{family}")].as_f64().is_some(), "{family}");
        assert!(r[format!("{family}_p99")].as_f64().is_some(), "{family}");
    }
    // The payload sent, as the original echoed it (plus stream_options), and never the token.
    let payload = &r["config"]["fireworks_payload"];
    for (k, v) in original["config"]["fireworks_payload"].as_object().unwrap() {
        if k != "model" {
            assert_eq!(&payload[k], v, "payload {k}");
        }
    }
    assert_eq!(payload["stream_options"], json!({"include_usage": true}));
    assert!(!r.to_string().contains("fw-SEED-TOKEN"));
}
