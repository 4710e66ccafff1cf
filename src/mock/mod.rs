//! STUB (replaced by the mock branch): signatures only, so the rest compiles.
#![allow(unused_variables, dead_code)]
use std::net::SocketAddr;
use std::time::Duration;
#[derive(Clone, Debug)]
pub struct MockConfig {
    pub error_rate: f64,
    pub seed: u64,
    pub delay: Duration,
    pub body: String,
    pub ttft: Duration,
    pub itl: Duration,
    pub tokens: u32,
    pub usage: bool,
    pub tls: bool,
    pub fault: Option<Fault>,
}
impl Default for MockConfig {
    fn default() -> Self {
        todo!()
    }
}
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Reset,
}
impl std::str::FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        todo!()
    }
}
pub struct MockServer;
impl MockServer {
    pub fn start(addr: SocketAddr, cfg: MockConfig) -> std::io::Result<MockServer> {
        todo!()
    }
    pub fn addr(&self) -> SocketAddr {
        todo!()
    }
    pub fn url(&self) -> String {
        todo!()
    }
    pub fn ca_cert_pem(&self) -> Option<&str> {
        todo!()
    }
    pub fn counters(&self) -> Counters {
        todo!()
    }
    pub fn shutdown(self) {
        todo!()
    }
}
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub connections: u64,
    pub requests: u64,
    pub status_200: u64,
    pub status_400: u64,
    pub other_status: u64,
    pub llm_requests: u64,
}
