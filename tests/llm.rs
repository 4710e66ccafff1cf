//! Streaming LLM benchmarks end to end against the mock's OpenAI-compatible SSE routes,
//! plain and over TLS.

mod util;

use pacer::llm::Api;
use pacer::mock::MockConfig;
use pacer::report;
use util::*;

fn llm_mock(tls: bool) -> pacer::mock::MockServer {
    mock(MockConfig {
        ttft: ms(50.0),
        itl: ms(10.0),
        tokens: 20,
        tls,
        ..MockConfig::default()
    })
}

fn write_ca(m: &pacer::mock::MockServer, name: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("pacer-test-{}-{name}.pem", std::process::id()));
    std::fs::write(&path, m.ca_cert_pem().expect("tls mock has a CA")).unwrap();
    path
}

fn check_timings(s: &pacer::engine::RunStats) {
    let t = &s.timings;
    let ttft = t.time_to_first_token.summary();
    // The mock sends the first token 50 ms after the request; loopback adds little.
    assert!(ttft.min.unwrap() >= 0.050, "ttft min {:?}", ttft.min);
    assert!(ttft.p50.unwrap() < 0.050 + 0.015, "ttft p50 {:?}", ttft.p50);
    let itl = t.inter_token_latency.summary();
    assert!(
        (itl.p50.unwrap() - 0.010).abs() < 0.003,
        "itl p50 {:?}",
        itl.p50
    );
    assert_eq!(t.inter_token_latency.count(), 19 * s.successes);
    let tpot = t.time_per_output_token.summary();
    assert!(
        (tpot.mean.unwrap() - 0.010).abs() < 0.003,
        "tpot {:?}",
        tpot.mean
    );
    assert_eq!(s.output_tokens, 20 * s.successes);
    // The mock reports when its first token really left (Fireworks' perf_metrics in the final
    // event, which overrides the header's configured value); ours adds the network and client.
    let server = t.server_time_to_first_token.summary();
    assert_eq!(server.count, s.successes);
    assert!(server.min.unwrap() >= 0.050, "server ttft {:?}", server.min);
    assert!(
        server.max.unwrap() < 0.050 + 0.015,
        "server ttft {:?}",
        server.max
    );
    assert!(
        ttft.mean.unwrap() >= server.mean.unwrap(),
        "{ttft:?} vs {server:?}"
    );
}

#[test]
fn completions_stream_over_plain_http() {
    let m = llm_mock(false);
    let i = llm_input(&format!("{}/v1/completions", m.url()), 10.0, 1.0);
    let s = run(&i);
    assert_accounted(&s, 10);
    assert_eq!(s.successes, 10, "{:?}", s.errors);
    check_timings(&s);
}

#[test]
fn chat_stream_over_tls_with_the_mock_ca() {
    let m = llm_mock(true);
    let ca = write_ca(&m, "chat");
    let mut i = llm_input(&format!("{}/v1/completions", m.url()), 10.0, 1.0);
    i.ca_cert = Some(ca.to_string_lossy().into_owned());
    if let Some(l) = i.llm.as_mut() {
        l.api = Api::Chat;
    }
    let p = plan(&i);
    assert_eq!(p.target.path, "/v1/chat/completions");
    let s = pacer::engine::run(&p, None).unwrap();
    assert_accounted(&s, 10);
    assert_eq!(s.successes, 10, "{:?}", s.errors);
    check_timings(&s);
    // The chat mock sends a role-only event at once: first byte well before the first token.
    let ttfb = s.timings.time_to_first_byte.summary().p50.unwrap();
    assert!(ttfb < 0.040, "ttfb {ttfb}");
    let json = report::to_json(&p, &s);
    assert!(json["mean_time_to_first_token"].as_f64().unwrap() >= 0.050);
    assert_eq!(json["output_tokens"], serde_json::json!(200));
    assert!(json["config"]["fireworks_payload"]["messages"].is_array());
    let text = serde_json::to_string(&json).unwrap();
    assert!(!text.contains("test-secret-token-123"));
    let _ = std::fs::remove_file(ca);
}

#[test]
fn tls_without_the_ca_fails_every_request_by_name() {
    let m = llm_mock(true);
    let i = llm_input(&format!("{}/v1/completions", m.url()), 10.0, 1.0);
    let s = run(&i);
    assert_accounted(&s, 10);
    assert_eq!(
        named(&s, "tls: invalid certificate: unknown issuer"),
        10,
        "{:?}",
        s.errors
    );
}

#[test]
fn insecure_skips_verification_and_says_so() {
    let m = llm_mock(true);
    let mut i = llm_input(&format!("{}/v1/completions", m.url()), 10.0, 0.5);
    i.insecure = true;
    let p = plan(&i);
    let s = pacer::engine::run(&p, None).unwrap();
    assert_eq!(s.successes, 5, "{:?}", s.errors);
    let json = report::to_json(&p, &s);
    assert_eq!(json["config"]["insecure"], serde_json::json!(true));
}

#[test]
fn non_streaming_counts_usage_tokens() {
    let m = mock(MockConfig {
        ttft: ms(5.0),
        itl: ms(1.0),
        tokens: 7,
        ..MockConfig::default()
    });
    let mut i = llm_input(&format!("{}/v1/completions", m.url()), 10.0, 0.5);
    if let Some(l) = i.llm.as_mut() {
        l.stream = false;
    }
    let s = run(&i);
    assert_eq!(s.successes, 5, "{:?}", s.errors);
    assert_eq!(s.output_tokens, 35);
}

#[test]
fn tls_sessions_resume_across_reconnects() {
    // The mock closes after reading each request: every request needs a new connection, and all
    // but the first handshakes can resume the session of an earlier one.
    let m = mock(MockConfig {
        tls: true,
        fault: Some(pacer::mock::Fault::CloseBeforeResponse),
        ..MockConfig::default()
    });
    let ca = write_ca(&m, "resume");
    let mut i = input(&format!("{}/", m.url()), 20.0, 0.5);
    i.ca_cert = Some(ca.to_string_lossy().into_owned());
    i.threads = Some(1);
    let s = run(&i);
    assert_accounted(&s, 10);
    assert_eq!(
        named(&s, "connection closed before response"),
        10,
        "{:?}",
        s.errors
    );
    assert_eq!(s.tls_full + s.tls_resumed, 10);
    assert!(
        s.tls_resumed >= 8,
        "full {} resumed {}",
        s.tls_full,
        s.tls_resumed
    );
    let _ = std::fs::remove_file(ca);
}
