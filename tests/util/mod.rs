//! Helpers shared by the integration tests: mock targets on port 0 and plans against them.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use pacer::engine::{self, ErrorKey, RunStats};
use pacer::mock::{MockConfig, MockServer};
use pacer::plan::{Input, Limits, LlmInput, Plan, Rate};

pub fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A mock target on a free loopback port.
pub fn mock(cfg: MockConfig) -> MockServer {
    MockServer::start(loopback(), cfg).expect("mock starts")
}

/// A mock that answers every `/` with 200.
pub fn mock_ok() -> MockServer {
    mock(MockConfig {
        error_rate: 0.0,
        ..MockConfig::default()
    })
}

/// A loopback port with nothing listening (bound, then released).
pub fn closed_port() -> u16 {
    let l = TcpListener::bind(loopback()).unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    port
}

pub fn input(url: &str, qps: f64, duration: f64) -> Input {
    Input::new(url, Rate::PerSecond(qps), duration)
}

pub fn llm_input(url: &str, qps: f64, duration: f64) -> Input {
    let mut i = input(url, qps, duration);
    i.llm = Some(LlmInput {
        token: "test-secret-token-123".into(),
        model: "mock-model".into(),
        prompt: "Snow is white".into(),
        max_tokens: 25,
        stream: true,
        api: pacer::llm::Api::Completions,
        payload: None,
    });
    i
}

pub fn plan(i: &Input) -> Plan {
    Plan::new(i, &Limits::default()).expect("valid plan")
}

pub fn run(i: &Input) -> RunStats {
    engine::run(&plan(i), None).expect("run completes")
}

/// Count of one named error bucket.
pub fn named(stats: &RunStats, name: &str) -> u64 {
    stats
        .errors
        .get(&ErrorKey::Name(name.to_string()))
        .copied()
        .unwrap_or(0)
}

pub fn status(stats: &RunStats, code: u16) -> u64 {
    stats
        .errors
        .get(&ErrorKey::Status(code))
        .copied()
        .unwrap_or(0)
}

/// Every request in exactly one bucket.
pub fn assert_accounted(stats: &RunStats, n: u64) {
    assert_eq!(stats.total_requests, n, "total_requests");
    assert_eq!(
        stats.successes + stats.error_count(),
        n,
        "buckets add up: {:?}",
        stats.errors
    );
}

pub fn ms(d: f64) -> Duration {
    Duration::from_secs_f64(d / 1000.0)
}
