//! Misbehaving targets (SPEC §7, issue 4): every fault of the mock, run at a few hundred qps,
//! ends within `duration + 2 × timeout` (plus a second), never panics, names its error, and
//! its buckets add up to `total_requests`.

mod util;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use pacer::mock::{Fault, MockConfig, MockServer};
use util::*;

const QPS: f64 = 200.0;
const DURATION: f64 = 1.0;
const TIMEOUT: f64 = 0.5;

/// Runs QPS × DURATION requests against `url` and checks the common promises.
fn run_fault(url: &str, tweak: impl FnOnce(&mut pacer::plan::Input)) -> pacer::engine::RunStats {
    let mut i = input(url, QPS, DURATION);
    i.timeout = Some(TIMEOUT);
    tweak(&mut i);
    let start = Instant::now();
    let s = run(&i);
    let wall = start.elapsed();
    let bound = Duration::from_secs_f64(DURATION + 2.0 * TIMEOUT + 1.0);
    assert!(wall <= bound, "{url}: took {wall:?}, bound {bound:?}");
    assert_accounted(&s, (QPS * DURATION) as u64);
    s
}

fn fault_mock(f: Fault) -> MockServer {
    mock(MockConfig {
        fault: Some(f),
        ..MockConfig::default()
    })
}

/// Every request of the run ended in the bucket `name`.
fn all_named(f: Fault, name: &str) {
    let m = fault_mock(f);
    let s = run_fault(&format!("{}/", m.url()), |_| {});
    assert_eq!(named(&s, name), s.total_requests, "{f:?}: {:?}", s.errors);
}

#[test]
fn refused() {
    let s = run_fault(&format!("http://127.0.0.1:{}/", closed_port()), |_| {});
    assert_eq!(named(&s, "connection refused"), s.total_requests);
}

#[test]
fn reset_before_answering() {
    all_named(Fault::Reset, "connection reset");
}

#[test]
fn closed_without_a_byte() {
    all_named(
        Fault::CloseBeforeResponse,
        "connection closed before response",
    );
}

#[test]
fn short_content_length() {
    all_named(Fault::ShortBody, "invalid response: body ended early");
}

#[test]
fn garbage_status_line() {
    all_named(Fault::Garbage, "invalid response: malformed status line");
}

#[test]
fn huge_headers() {
    all_named(Fault::HugeHeaders, "invalid response: headers too large");
}

#[test]
fn bad_chunk_size() {
    all_named(Fault::BadChunk, "invalid response: bad chunk size");
}

#[test]
fn endless_body_times_out() {
    all_named(Fault::EndlessBody, "timeout");
}

#[test]
fn drip_times_out() {
    all_named(Fault::Drip, "timeout");
}

#[test]
fn stall_times_out() {
    all_named(Fault::Stall, "timeout");
}

#[test]
fn interim_100_continue_then_the_real_response() {
    let m = fault_mock(Fault::Continue);
    let s = run_fault(&format!("{}/", m.url()), |_| {});
    assert_eq!(s.successes, s.total_requests, "{:?}", s.errors);
}

#[test]
fn retry_after_statuses_are_counted_not_retried() {
    for (f, code) in [(Fault::TooManyRequests, 429), (Fault::Unavailable, 503)] {
        let m = fault_mock(f);
        let s = run_fault(&format!("{}/", m.url()), |_| {});
        assert_eq!(status(&s, code), s.total_requests, "{:?}", s.errors);
        assert_eq!(m.counters().requests, s.total_requests, "no retries");
    }
}

#[test]
fn fault_selected_by_path() {
    let m = mock(MockConfig::default());
    let s = run_fault(&format!("{}/fault/bad-chunk", m.url()), |_| {});
    assert_eq!(
        named(&s, "invalid response: bad chunk size"),
        s.total_requests
    );
}

#[test]
fn dns_failure_is_named() {
    let s = run_fault("http://nonexistent.invalid/", |_| {});
    assert_eq!(named(&s, "dns: nonexistent.invalid"), s.total_requests);
}

#[test]
fn self_signed_without_ca_is_a_tls_error() {
    let m = mock(MockConfig {
        tls: true,
        ..MockConfig::default()
    });
    let s = run_fault(&format!("{}/", m.url()), |_| {});
    assert_eq!(
        named(&s, "tls: invalid certificate: unknown issuer"),
        s.total_requests,
        "{:?}",
        s.errors
    );
}

#[test]
fn certificate_for_another_name_is_a_tls_error() {
    // The mock's certificate names localhost, 127.0.0.1 and ::1; 127.0.0.2 is loopback too.
    let m = MockServer::start(
        SocketAddr::from(([127, 0, 0, 2], 0)),
        MockConfig {
            tls: true,
            ..MockConfig::default()
        },
    )
    .expect("mock on 127.0.0.2");
    let ca = std::env::temp_dir().join(format!("pacer-faults-{}.pem", std::process::id()));
    std::fs::write(&ca, m.ca_cert_pem().unwrap()).unwrap();
    let url = format!("https://127.0.0.2:{}/", m.addr().port());
    let s = run_fault(&url, |i| {
        i.ca_cert = Some(ca.to_string_lossy().into_owned())
    });
    assert_eq!(
        named(&s, "tls: invalid certificate: not valid for name"),
        s.total_requests,
        "{:?}",
        s.errors
    );
    let _ = std::fs::remove_file(ca);
}

#[test]
fn plain_http_on_an_https_url_is_a_tls_error() {
    let m = mock(MockConfig::default());
    let url = format!("https://127.0.0.1:{}/", m.addr().port());
    let s = run_fault(&url, |_| {});
    let tls: u64 = s
        .errors
        .iter()
        .filter(|(k, _)| matches!(k, pacer::engine::ErrorKey::Name(n) if n.starts_with("tls: ")))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(tls, s.total_requests, "{:?}", s.errors);
}

fn llm_fault(f: Fault, name: &str) {
    let m = mock(MockConfig {
        fault: Some(f),
        ttft: ms(1.0),
        itl: ms(1.0),
        tokens: 5,
        ..MockConfig::default()
    });
    let mut i = llm_input(&format!("{}/v1/completions", m.url()), 50.0, DURATION);
    i.timeout = Some(TIMEOUT);
    let s = run(&i);
    assert_accounted(&s, 50);
    assert_eq!(named(&s, name), 50, "{f:?}: {:?}", s.errors);
}

#[test]
fn sse_broken_json() {
    llm_fault(Fault::SseBrokenJson, "stream error: invalid JSON in event");
}

#[test]
fn sse_error_event_under_200() {
    llm_fault(Fault::SseError, "stream error: mock overloaded");
}

#[test]
fn sse_without_done() {
    llm_fault(
        Fault::SseNoDone,
        "stream error: stream ended without [DONE]",
    );
}
