//! The engine: turns a [`Plan`] into merged [`RunStats`].
//!
//! `run` resolves the target once, builds the TLS configuration once, then starts `plan.threads`
//! worker threads ([`worker`]), each with its own mio `Poll`, its own share of the connections
//! (`num_workers` split as evenly as possible) and its own share of the schedule (request `i` to
//! thread `i mod T`). The threads start together at `t0`; each sends its statistics back over a
//! crossbeam channel when its share is done, and they are merged once. Progress is a relaxed atomic
//! counter the caller may poll. Nothing here knows about JSON or terminals.

pub mod conn;
pub mod dispatch;
pub mod exchange;
pub mod outcome;
pub mod pacing;
pub mod sched;
pub mod stats;
pub mod sys;
pub mod tls;
pub mod worker;

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Barrier, OnceLock};
use std::time::{Duration, Instant};

use crate::plan::{Plan, Rate};
pub use outcome::Failure;
pub use sched::Scheduling;
pub use stats::{LaneStats, Timings};
use worker::{Shared, Worker};

/// An error bucket of the report: an HTTP status or a named failure. Statuses sort before names.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ErrorKey {
    Status(u16),
    Name(String),
}

/// What a run measured, merged over its threads.
#[derive(Clone, Debug, Default)]
pub struct RunStats {
    pub timings: Timings,
    pub total_requests: u64,
    pub successes: u64,
    pub errors: BTreeMap<ErrorKey, u64>,
    pub elapsed: Duration,
    pub bytes_received: u64,
    pub connections_opened: u64,
    pub output_tokens: u64,
    /// Requests sent per second over the span from the first send to the last (fixed rate), or
    /// completed per second of the duration (saturation, as wrk reports it).
    pub achieved_qps: f64,
    /// TLS handshakes done in full, and resumed from an earlier connection's session.
    pub tls_full: u64,
    pub tls_resumed: u64,
    /// How the worker threads were scheduled (`--realtime`, or its refusal).
    pub scheduling: Scheduling,
}

impl RunStats {
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// A run that could not start at all (the run's own requests failing is not an error here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineError(pub String);

impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EngineError {}

/// A live view of a run for progress lines.
pub struct Progress {
    /// Requests that reached a bucket so far.
    pub done: AtomicU64,
    /// Requests scheduled (0 in saturation mode).
    pub total: u64,
}

/// Called about every 200 ms while a run lasts, with the time since its start.
pub type OnTick<'a> = &'a dyn Fn(&Progress, Duration);

/// Runs `plan` to the end. `on_tick` is called about every 200 ms from the calling thread while
/// the run lasts.
pub fn run(plan: &Plan, on_tick: Option<OnTick<'_>>) -> Result<RunStats, EngineError> {
    run_resolved(plan, resolve(&plan.target.host, plan.target.port), on_tick)
}

/// [`run`] on addresses the caller resolved with [`resolve`] (`None`: the name did not resolve),
/// so a caller that checked them (the API's `--allow-target`) runs on exactly what it checked.
pub fn run_resolved(
    plan: &Plan,
    addrs: Option<Vec<SocketAddr>>,
    on_tick: Option<OnTick<'_>>,
) -> Result<RunStats, EngineError> {
    let addrs = match addrs {
        Some(a) if !a.is_empty() => a,
        _ => return Ok(dns_failure(plan)),
    };
    let tls = if plan.target.tls {
        let config =
            tls::client_config(plan.ca_cert.as_deref(), plan.insecure).map_err(EngineError)?;
        let name = tls::server_name(&plan.target.host).map_err(EngineError)?;
        Some((config, name))
    } else {
        None
    };
    let threads = plan.threads.max(1);
    let progress = Progress {
        done: AtomicU64::new(0),
        total: plan.count,
    };
    let barrier = Barrier::new(threads + 1);
    let t0_cell: OnceLock<Instant> = OnceLock::new();
    let (tx, rx) = crossbeam_channel::unbounded::<Result<LaneStats, String>>();
    let result = std::thread::scope(|scope| {
        for thread in 0..threads {
            let (tx, barrier, t0_cell, progress, addrs, tls) =
                (tx.clone(), &barrier, &t0_cell, &progress, &addrs, &tls);
            let cap = plan.num_workers / threads + usize::from(thread < plan.num_workers % threads);
            let spawned = std::thread::Builder::new()
                .name(format!("pacer-worker-{thread}"))
                .spawn_scoped(scope, move || {
                    let scheduling = if plan.realtime {
                        sched::make_current_thread_realtime()
                    } else {
                        Scheduling::Normal
                    };
                    barrier.wait();
                    let t0 = *t0_cell.get().unwrap_or(&Instant::now());
                    let shared = Shared {
                        plan,
                        addrs,
                        tls: tls.clone(),
                        t0,
                    };
                    let stats = Worker::new(&shared, thread, threads, cap, &progress.done)
                        .map(Worker::run)
                        .map(|mut s| {
                            s.scheduling = scheduling;
                            s
                        })
                        .map_err(|e| format!("worker setup: {e}"));
                    let _ = tx.send(stats);
                });
            if let Err(e) = spawned {
                // The threads already started wait at the barrier forever otherwise.
                return Err(EngineError(format!("cannot start worker thread: {e}")));
            }
        }
        drop(tx);
        // Every worker is ready: start the clock a moment ahead so all see the same t0.
        let t0 = Instant::now() + Duration::from_millis(1);
        let _ = t0_cell.set(t0);
        barrier.wait();
        let started = t0;
        let mut merged: Option<LaneStats> = None;
        let mut got = 0;
        let mut failure = None;
        while got < threads {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(Ok(stats)) => {
                    got += 1;
                    match merged.as_mut() {
                        None => merged = Some(stats),
                        Some(m) => *m += stats,
                    }
                }
                Ok(Err(e)) => {
                    got += 1;
                    failure = Some(e);
                }
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    if let Some(tick) = on_tick {
                        tick(&progress, started.elapsed());
                    }
                }
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            }
        }
        if let Some(e) = failure {
            return Err(EngineError(e));
        }
        merged.ok_or_else(|| EngineError("no worker reported".into()))
    });
    let merged = result?;
    let started = t0_cell.get().copied().unwrap_or_else(Instant::now);
    let elapsed = match plan.rate {
        // wrk's convention: a closed-loop run lasts exactly its duration.
        Rate::Max => plan.duration,
        Rate::PerSecond(_) => started.elapsed(),
    };
    let stats = finish(plan, merged, elapsed);
    debug_assert!(
        plan.count == 0 || stats.total_requests == plan.count,
        "lost requests"
    );
    if plan.count > 0 && stats.total_requests != plan.count {
        return Err(EngineError(format!(
            "internal error: {} requests scheduled but {} accounted for",
            plan.count, stats.total_requests
        )));
    }
    Ok(stats)
}

fn finish(plan: &Plan, w: LaneStats, elapsed: Duration) -> RunStats {
    let mut errors = BTreeMap::new();
    for (s, n) in w.statuses {
        *errors.entry(ErrorKey::Status(s)).or_insert(0) += n;
    }
    for (f, n) in w.failures {
        let name = f.name(&plan.target.host, plan.num_workers, w.messages.as_slice());
        *errors.entry(ErrorKey::Name(name)).or_insert(0) += n;
    }
    let achieved_qps = match (plan.rate, w.first_dispatch, w.last_dispatch) {
        (Rate::Max, _, _) => w.total as f64 / elapsed.as_secs_f64().max(1e-9),
        (Rate::PerSecond(_), Some(first), Some(last)) if w.dispatched >= 2 && last > first => {
            (w.dispatched - 1) as f64 / (last - first).as_secs_f64()
        }
        _ => 0.0,
    };
    RunStats {
        achieved_qps,
        tls_full: w.tls_full,
        tls_resumed: w.tls_resumed,
        scheduling: w.scheduling,
        timings: w.timings,
        total_requests: w.total,
        successes: w.successes,
        errors,
        elapsed,
        bytes_received: w.bytes_received,
        connections_opened: w.connections_opened,
        output_tokens: w.output_tokens,
    }
}

/// Resolves the target once per run. `.invalid` names fail at once, as RFC 6761 §6.4 asks of
/// resolver libraries, so a run against one never waits on the network.
pub fn resolve(host: &str, port: u16) -> Option<Vec<SocketAddr>> {
    if host.eq_ignore_ascii_case("invalid") || host.to_ascii_lowercase().ends_with(".invalid") {
        return None;
    }
    let addrs: Vec<SocketAddr> = (host, port).to_socket_addrs().ok()?.collect();
    if addrs.is_empty() { None } else { Some(addrs) }
}

/// Every request of a run whose host does not resolve ends as `dns: <host>`.
fn dns_failure(plan: &Plan) -> RunStats {
    let n = match plan.rate {
        Rate::PerSecond(_) => plan.count,
        // No schedule to count in closed loop: one failed attempt per worker.
        Rate::Max => plan.num_workers as u64,
    };
    let mut errors = BTreeMap::new();
    errors.insert(
        ErrorKey::Name(Failure::Dns.name(&plan.target.host, plan.num_workers, &[])),
        n,
    );
    RunStats {
        total_requests: n,
        errors,
        ..RunStats::default()
    }
}

/// Reads the progress counter (for callers that hold a `Progress`).
pub fn done(p: &Progress) -> u64 {
    p.done.load(Ordering::Relaxed)
}
