//! What every thread of one mock shares: the configuration, the stop flag, the [`Counters`] and
//! the few atomics the wire and the routes coordinate through. Plain data, no I/O.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::config::MockConfig;

/// What the mock has seen so far (a snapshot).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    /// Connections accepted.
    pub connections: u64,
    /// Requests read (all routes but `/__counters`).
    pub requests: u64,
    /// Responses with status 200 (including streams and faults that start a 200).
    pub status_200: u64,
    /// Responses with status 400 (the seeded mix and malformed requests).
    pub status_400: u64,
    /// Responses with any other status.
    pub other_status: u64,
    /// Requests on `/v1/completions` and `/v1/chat/completions`.
    pub llm_requests: u64,
}

#[derive(Default)]
pub(super) struct AtomicCounters {
    pub(super) connections: AtomicU64,
    pub(super) requests: AtomicU64,
    pub(super) status_200: AtomicU64,
    pub(super) status_400: AtomicU64,
    pub(super) other_status: AtomicU64,
    pub(super) llm_requests: AtomicU64,
}

impl AtomicCounters {
    pub(super) fn snapshot(&self) -> Counters {
        Counters {
            connections: self.connections.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            status_200: self.status_200.load(Ordering::Relaxed),
            status_400: self.status_400.load(Ordering::Relaxed),
            other_status: self.other_status.load(Ordering::Relaxed),
            llm_requests: self.llm_requests.load(Ordering::Relaxed),
        }
    }

    pub(super) fn count_status(&self, status: u16) {
        let counter = match status {
            200 => &self.status_200,
            400 => &self.status_400,
            _ => &self.other_status,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// State shared by the accept thread and every connection thread.
pub(super) struct Shared {
    pub(super) cfg: MockConfig,
    pub(super) stop: AtomicBool,
    pub(super) counters: AtomicCounters,
    /// Next ordinal of the plain route, for the seeded mix.
    pub(super) plain_ordinal: AtomicU64,
    pub(super) tls: Option<Arc<rustls::ServerConfig>>,
    /// Whether a connection thread is spinning to the last microseconds of a deadline.
    pub(super) spinner: AtomicBool,
    /// `log_requests`' file, opened at start.
    pub(super) log: Option<std::sync::Mutex<std::fs::File>>,
    /// The next connection's number (from 1), for the log.
    pub(super) conn_ids: AtomicU64,
}

impl Shared {
    pub(super) fn new(cfg: MockConfig, tls: Option<Arc<rustls::ServerConfig>>) -> Shared {
        Shared {
            cfg,
            stop: AtomicBool::new(false),
            counters: AtomicCounters::default(),
            plain_ordinal: AtomicU64::new(0),
            tls,
            spinner: AtomicBool::new(false),
            log: None,
            conn_ids: AtomicU64::new(1),
        }
    }

    pub(super) fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }
}
