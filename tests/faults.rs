//! Misbehaving targets (SPEC §7, issue 4): every fault of the mock, run at 200 qps (20 for those
//! that never answer), ends, never panics, names its error, and its buckets add up to
//! `total_requests`.
//!
//! "Ends within `duration + 2 × timeout`" is the engine's deadline logic, tested over synthetic
//! time beside that logic; here a run gets that bound plus a generous slack for a loaded machine,
//! enforced by a watchdog so that a hang fails instead of stalling the suite, and the runs that
//! end in timeouts get the lower bound physics sets. `benches/faults.sh` prints the wall times.
//!
//! On a loaded machine an answer may take long and a connection may stay busy long: so the
//! faults that answer get a generous timeout, only those that never answer a short one, and every
//! request has a connection of its own, so that neither "timeout" nor "not sent" can stand in
//! for the name a fault must get.

mod util;

use std::net::SocketAddr;
use std::time::Duration;

use pacer::mock::{Fault, MockConfig, MockServer};
use util::*;

const QPS: f64 = 200.0;
const DURATION: f64 = 1.0;
/// For the faults that never answer: every request waits this long, so it is short, and they
/// run at a lower rate: each holds a mock thread (endless: one writing 4 KiB a millisecond) for
/// the whole timeout, and a hundred such threads would starve the engine's one on a loaded
/// machine until requests expired unsent.
const SHORT_TIMEOUT: f64 = 1.0;
const SHORT_QPS: f64 = 20.0;
/// For the faults that answer: far more than an answer takes even on a loaded machine, and no
/// longer for it, since those runs end as soon as the answers are in.
const TIMEOUT: f64 = 10.0;
/// Added to the promised bound: what a loaded 2-core machine may add, and far less than a
/// request that is never timed out would take (a drip of the plain response takes over 10 s,
/// endless and stall never end).
const SLACK: f64 = 5.0;

/// Runs `qps` × DURATION requests against `i`, each with a connection of its own (one thread,
/// as many workers as requests), and checks the common promises; the wall time too.
fn run_bounded(
    mut i: pacer::plan::Input,
    qps: f64,
    timeout: f64,
) -> (pacer::engine::RunStats, Duration) {
    let n = (qps * DURATION) as u64;
    i.timeout = Some(timeout);
    i.num_workers = Some(n as i64);
    i.threads = Some(1);
    let bound = Duration::from_secs_f64(DURATION + 2.0 * timeout + SLACK);
    let (s, wall) = run_within(&i, bound);
    assert_accounted(&s, n);
    (s, wall)
}

fn run_fault(url: &str, tweak: impl FnOnce(&mut pacer::plan::Input)) -> pacer::engine::RunStats {
    let mut i = input(url, QPS, DURATION);
    tweak(&mut i);
    run_bounded(i, QPS, TIMEOUT).0
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

/// Every request of the run timed out, and none sooner than it could: the last one is due
/// `(n − 1) / SHORT_QPS` after the start and cannot time out before `SHORT_TIMEOUT` after that.
fn all_timed_out(f: Fault) {
    let m = fault_mock(f);
    let i = input(&format!("{}/", m.url()), SHORT_QPS, DURATION);
    let (s, wall) = run_bounded(i, SHORT_QPS, SHORT_TIMEOUT);
    assert_eq!(
        named(&s, "timeout"),
        s.total_requests,
        "{f:?}: {:?}",
        s.errors
    );
    let earliest =
        Duration::from_secs_f64((s.total_requests - 1) as f64 / SHORT_QPS + SHORT_TIMEOUT);
    assert!(
        wall >= earliest,
        "{f:?}: ended after {wall:?}, before {earliest:?}"
    );
}

#[test]
fn endless_body_times_out() {
    all_timed_out(Fault::EndlessBody);
}

#[test]
fn drip_times_out() {
    all_timed_out(Fault::Drip);
}

#[test]
fn stall_times_out() {
    all_timed_out(Fault::Stall);
}

#[test]
fn interim_100_continue_then_the_real_response() {
    let m = fault_mock(Fault::Continue);
    let s = run_fault(&format!("{}/", m.url()), |_| {});
    assert_eq!(s.successes, s.total_requests, "{:?}", s.errors);
}

/// A target that sends `103 Early Hints` without end: each request fails as soon as the bound on
/// interim heads is passed, under its own name, instead of spinning until its timeout.
#[test]
fn endless_interim_answers_fail_by_name() {
    let m = fault_mock(Fault::EndlessInterim);
    let i = input(&format!("{}/", m.url()), SHORT_QPS, DURATION);
    let (s, _) = run_bounded(i, SHORT_QPS, TIMEOUT);
    assert_eq!(
        named(&s, "invalid response: too many interim responses"),
        s.total_requests,
        "{:?}",
        s.errors
    );
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
    let i = llm_input(&format!("{}/v1/completions", m.url()), 50.0, DURATION);
    let (s, _) = run_bounded(i, 50.0, TIMEOUT);
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
