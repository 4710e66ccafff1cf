//! The engine: turns a [`Plan`] into merged [`RunStats`].
//!
//! ```text
//!  run(plan) ─ resolve, TLS config ─┬─> lane 0: Poll + Slab<Conn> + Pacing + Dispatch ─┐
//!                                   ├─> lane 1 ...                                      ├─ LaneStats ─> += ─> finish ─> RunStats
//!  caller: Progress (atomics) <─────┴── published once per loop turn; Stop read there ─┘  (crossbeam channel)
//! ```
//!
//! `run` resolves the target once, builds the TLS configuration once, then starts `plan.threads`
//! engine threads ([`lane`]), each with its own mio `Poll`, its own share of the connections
//! (`num_workers` split as evenly as possible) and its own share of the schedule (request `i` to
//! thread `i mod T`). The threads start together at `t0`; each sends its statistics back over a
//! crossbeam channel when its share is done, and they are merged once with `+=`. A caller may
//! watch [`Progress`] (relaxed atomics, per thread) and stop the run early with [`Stop`].
//! Nothing here knows about JSON or terminals.
//!
//! Inside a lane the first-token walk goes one way: socket → [`conn`] → [`exchange`] (→ `http1`,
//! `llm`) → the lane records one [`outcome::Completed`] → [`stats`]. When requests fall due is
//! [`pacing`]'s, which of them share a wake-up is [`wake`]'s, which goes next and when one waited
//! too long is [`dispatch`]'s, the kernel's receive stamps on the run's clock are [`clock`]'s, the
//! Linux calls are [`sys`]'s.

pub mod clock;
pub mod conn;
pub mod dispatch;
pub mod exchange;
pub mod export;
pub mod lane;
pub mod live;
pub mod outcome;
pub mod pacing;
pub mod packed;
pub mod sched;
pub mod session;
pub mod stats;
pub mod sys;
pub mod timeline;
pub mod tls;
pub mod tokens;
pub mod usage;
pub mod wake;

use std::collections::BTreeMap;
use std::fs::File;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Barrier, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use crate::plan::{BodyMode, Plan, Rate};
use crate::wall::{UnixNanos, WallTimes, now_unix_ns};
use lane::{Lane, Shared};
pub use live::Recent;
pub use outcome::Failure;
pub use outcome::TokenSource;
pub use sched::Scheduling;
use stats::Messages;
pub use stats::{LaneStats, Timings, TokenSources, Values, request_values};
pub use timeline::Timeline;
pub use tokens::TokenCounts;
pub use usage::{HealthInput, ThreadUsage};

/// An error bucket of the report: an HTTP status or a named failure. Statuses sort before names.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ErrorKey {
    Status(u16),
    Name(String),
}

/// What a run measured, merged over its threads. Serialized ([`packed`]) as a shard's state
/// carries it: what the run's report is computed from and what adds across shards; the rest
/// (the achieved rate, the targets, the clocks, the export's summary) is the process's own.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct RunStats {
    #[serde(with = "packed::timings")]
    pub timings: Timings,
    pub total_requests: u64,
    pub successes: u64,
    #[serde(with = "packed::errors")]
    pub errors: BTreeMap<ErrorKey, u64>,
    #[serde(with = "packed::secs")]
    pub elapsed: Duration,
    pub bytes_received: u64,
    pub connections_opened: u64,
    pub output_tokens: u64,
    /// Where the successes' output token counts came from (see `outcome::TokenSource`).
    pub output_sources: TokenSources,
    /// Prompt tokens of the successes that had a count, and where each success's came from.
    pub input_tokens: u64,
    pub input_sources: TokenSources,
    /// What the servers' usage said beside pacer's counts (see [`tokens`]).
    pub tokens: TokenCounts,
    /// Gaps between successive token events of the successes, and those read together with the
    /// event before (one chunk: not measured; see `engine::exchange`).
    pub token_gaps: u64,
    pub token_gaps_coalesced: u64,
    /// Requests sent per second over the span from the first send to the last (fixed rate), or
    /// completed per second of the duration (saturation, as wrk reports it).
    #[serde(skip)]
    pub achieved_qps: f64,
    /// TLS handshakes done in full, and resumed from an earlier connection's session.
    pub tls_full: u64,
    pub tls_resumed: u64,
    /// How the engine threads were scheduled (`--realtime`, or its refusal).
    #[serde(with = "packed::scheduling")]
    pub scheduling: Scheduling,
    /// The run was stopped early ([`Stop`]): requests not yet sent are `not sent: interrupted`.
    pub interrupted: bool,
    /// Where the run sat on the wall clock (start, readiness, end, first and last send), for a
    /// shard's state and `start_late`.
    pub wall: WallTimes,
    /// Successes that met every goodput objective of the plan (0 without objectives).
    pub good_requests: u64,
    /// Requests handed to a connection.
    pub sent: u64,
    /// One per stage of a staged run (empty otherwise): the requests intended in that stage,
    /// with `elapsed` the stage's duration.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<RunStats>,
    /// What the run measured about the generator itself, for the report's `health` verdict
    /// (`crate::health::judge`); None for a run whose target did not resolve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthInput>,
    /// The requests placed in time, merged over the threads (see [`timeline`]).
    #[serde(
        default,
        skip_serializing_if = "Timeline::is_off",
        with = "packed::timeline"
    )]
    pub timeline: Timeline,
    /// With `--targets`: per target, in the file's order (the plan's `targets` names them).
    #[serde(skip)]
    pub targets: Vec<stats::TargetTally>,
    /// The run's start on the system's clocks.
    #[serde(skip)]
    pub clock: Clock,
    /// How writing every request went, when asked for ([`Controls::requests`]).
    #[serde(skip)]
    pub requests: Option<export::Summary>,
    /// Where receive times came from (kernel stamps or the clock), and the clocks' drift.
    #[serde(skip)]
    pub timestamps: clock::StampReport,
    /// A session run's sessions and figures by turn (`--sessions`; a session run has no shards).
    #[serde(skip)]
    pub sessions: Option<session::SessionStats>,
}

/// The run's start, `t0` (the zero of the timeline and of per-request times), on the clocks other
/// programs read: `CLOCK_MONOTONIC` (to line requests up with another process's monotonic logs)
/// and Unix time, both read at the same moment.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Clock {
    pub monotonic_start_ns: u64,
    /// Seconds since 1970.
    pub unix_start: f64,
}

impl Clock {
    /// `t0` (an instant now or a moment ahead) on both clocks.
    pub fn at(t0: Instant) -> Clock {
        let mono = u64::try_from(sys::monotonic_ns()).unwrap_or(0);
        let now = Instant::now();
        let unix = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let ahead = t0.saturating_duration_since(now);
        let behind = now.saturating_duration_since(t0);
        let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Clock {
            monotonic_start_ns: (mono + ns(ahead)).saturating_sub(ns(behind)),
            unix_start: (unix + ahead).saturating_sub(behind).as_secs_f64(),
        }
    }
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

/// A switch that stops a run early, from any thread (a Ctrl-C handler, an API call). The run
/// then schedules nothing more, ends every request not yet sent as `not sent: interrupted`,
/// gives those in flight up to their timeout, and says it was interrupted. Each engine thread
/// looks at it once per loop turn (a relaxed load) and sleeps at most 100 ms between looks.
#[derive(Debug, Default)]
pub struct Stop(AtomicBool);

impl Stop {
    pub fn new() -> Stop {
        Stop::default()
    }

    pub fn stop(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Counts one engine thread shows, or their sum.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Requests handed to a connection (a retry is not sent twice).
    pub sent: u64,
    /// Requests whose whole response came back (any status).
    pub completed: u64,
    /// Requests that ended in an error bucket: a status, a named failure, not sent.
    pub errors: u64,
    /// Requests that reached a bucket: successes and errors.
    pub done: u64,
    /// Requests sent that have ended (any outcome): `sent - settled` are in flight.
    pub settled: u64,
}

impl Counts {
    fn since(self, before: Counts) -> Counts {
        Counts {
            sent: self.sent - before.sent,
            completed: self.completed - before.completed,
            errors: self.errors - before.errors,
            done: self.done - before.done,
            settled: self.settled - before.settled,
        }
    }

    /// Requests sent and not yet ended.
    pub fn in_flight(&self) -> u64 {
        self.sent.saturating_sub(self.settled)
    }
}

/// One engine thread's counters, on a cache line of their own so that threads publishing do not
/// slow each other or a reader down.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct LaneProgress {
    sent: AtomicU64,
    completed: AtomicU64,
    errors: AtomicU64,
    done: AtomicU64,
    settled: AtomicU64,
    /// Response times (first tokens when streaming) by half second, for rolling percentiles.
    rolling: live::Rolling,
}

impl LaneProgress {
    /// Adds a thread's new counts (once per loop turn that changed them).
    fn add(&self, d: Counts) {
        self.sent.fetch_add(d.sent, Ordering::Relaxed);
        self.completed.fetch_add(d.completed, Ordering::Relaxed);
        self.errors.fetch_add(d.errors, Ordering::Relaxed);
        self.done.fetch_add(d.done, Ordering::Relaxed);
        self.settled.fetch_add(d.settled, Ordering::Relaxed);
    }

    fn read(&self) -> Counts {
        Counts {
            sent: self.sent.load(Ordering::Relaxed),
            completed: self.completed.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            done: self.done.load(Ordering::Relaxed),
            settled: self.settled.load(Ordering::Relaxed),
        }
    }
}

/// A live view of a run for progress lines, readable from any thread without locks. The counts
/// lag the truth by at most one loop turn of each engine thread.
#[derive(Debug)]
pub struct Progress {
    lanes: Box<[LaneProgress]>,
    /// Requests scheduled (0 in saturation mode).
    pub total: u64,
    /// The rolling percentiles are of time to first token (a streaming run), not response time.
    pub first_token: bool,
}

impl Progress {
    /// Counters for a run of `plan` (one slot per engine thread).
    pub fn new(plan: &Plan) -> Progress {
        Progress {
            lanes: (0..plan.threads.max(1))
                .map(|_| LaneProgress::default())
                .collect(),
            total: plan.shard_requests(),
            first_token: plan.body_mode == BodyMode::Sse,
        }
    }

    /// The slot thread `thread` adds to (shared round-robin if there are fewer than threads).
    fn lane(&self, thread: usize) -> &LaneProgress {
        &self.lanes[thread % self.lanes.len()]
    }

    /// The sum over the threads.
    pub fn counts(&self) -> Counts {
        self.lanes
            .iter()
            .map(LaneProgress::read)
            .fold(Counts::default(), |a, b| Counts {
                sent: a.sent + b.sent,
                completed: a.completed + b.completed,
                errors: a.errors + b.errors,
                done: a.done + b.done,
                settled: a.settled + b.settled,
            })
    }

    /// p50 and p99 of the response times (first tokens when streaming) seen in the last whole
    /// second before `elapsed` (the run's clock), over every thread; lock-free.
    pub fn recent(&self, elapsed: Duration) -> Recent {
        live::recent(self.lanes.iter().map(|l| &l.rolling), elapsed)
    }

    /// Requests that reached a bucket so far.
    pub fn done(&self) -> u64 {
        self.counts().done
    }
}

/// Called about every 200 ms while a run lasts, with the time since its start.
pub type OnTick<'a> = &'a (dyn Fn(&Progress, Duration) + Sync);

/// How a caller watches and steers a run; every part is optional.
#[derive(Clone, Copy, Default)]
pub struct Controls<'a> {
    /// Called about every 200 ms from the calling thread while the run lasts.
    pub on_tick: Option<OnTick<'a>>,
    /// Counters to read from other threads (else the run keeps its own, shown to `on_tick`).
    /// Make it with [`Progress::new`] for the same plan.
    pub progress: Option<&'a Progress>,
    /// Stops the run early when set.
    pub stop: Option<&'a Stop>,
    /// Writes one JSON line per request to this file ([`export`]), from a thread of its own.
    pub requests: Option<&'a File>,
}

/// Runs `plan` to the end. `on_tick` is called about every 200 ms from the calling thread while
/// the run lasts.
pub fn run(plan: &Plan, on_tick: Option<OnTick<'_>>) -> Result<RunStats, EngineError> {
    run_with(
        plan,
        Controls {
            on_tick,
            ..Controls::default()
        },
    )
}

/// Runs `plan` to its end or until `controls.stop` is set.
pub fn run_with(plan: &Plan, controls: Controls<'_>) -> Result<RunStats, EngineError> {
    run_resolved_with(plan, resolve(&plan.target.host, plan.target.port), controls)
}

/// [`run`] on addresses the caller resolved with [`resolve`] (`None`: the name did not resolve),
/// so a caller that checked them (the API's `--allow-target`) runs on exactly what it checked.
pub fn run_resolved(
    plan: &Plan,
    addrs: Option<Vec<SocketAddr>>,
    on_tick: Option<OnTick<'_>>,
) -> Result<RunStats, EngineError> {
    run_resolved_with(
        plan,
        addrs,
        Controls {
            on_tick,
            ..Controls::default()
        },
    )
}

/// [`run_with`] on addresses the caller resolved (see [`run_resolved`]).
pub fn run_resolved_with(
    plan: &Plan,
    addrs: Option<Vec<SocketAddr>>,
    controls: Controls<'_>,
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
    // Kernel receive stamps are on before the first request (`clock`); held for the run.
    let (_stamping, stamps) = clock::warm_up();
    let own_progress;
    let progress = match controls.progress {
        Some(p) => p,
        None => {
            own_progress = Progress::new(plan);
            &own_progress
        }
    };
    let no_stop = Stop::new();
    let stop = controls.stop.unwrap_or(&no_stop);
    let barrier = Barrier::new(threads + 1);
    let t0_cell: OnceLock<Instant> = OnceLock::new();
    let anchor_cell: OnceLock<(Anchor, UnixNanos)> = OnceLock::new();
    let (tx, rx) = crossbeam_channel::unbounded::<Result<LaneStats, String>>();
    let waited = AtomicU64::new(0);
    let (export, writer) = match controls.requests {
        Some(file) => {
            let (e, w) = export::channels(threads, plan.interval);
            (Some(e), Some((w, file)))
        }
        None => (None, None),
    };
    let mut requests = None;
    let mut clock = Clock::default();
    let result = std::thread::scope(|scope| {
        for thread in 0..threads {
            let (tx, barrier, t0_cell, anchor_cell, addrs, tls, stamps) = (
                tx.clone(),
                &barrier,
                &t0_cell,
                &anchor_cell,
                &addrs,
                &tls,
                &stamps,
            );
            let workers = plan.shard_workers();
            let cap = workers / threads + usize::from(thread < workers % threads);
            let lane_export = export.as_ref().map(|e| e.lane(thread as u32, &waited));
            let spawned = std::thread::Builder::new()
                .name(format!("pacer-lane-{thread}"))
                .spawn_scoped(scope, move || {
                    let scheduling = if plan.realtime {
                        sched::make_current_thread_realtime()
                    } else {
                        Scheduling::Normal
                    };
                    barrier.wait();
                    let t0 = *t0_cell.get().unwrap_or(&Instant::now());
                    let ready = anchor_cell.get().map_or(t0, |(a, _)| a.mono);
                    let shared = Shared {
                        plan,
                        addrs,
                        tls: tls.clone(),
                        t0,
                        ready,
                        stop,
                        stamps: stamps.clone(),
                    };
                    let lane = Lane::new(&shared, thread, threads, cap, progress.lane(thread));
                    let stats = lane
                        .map(|l| l.exporting(lane_export))
                        .map(Lane::run)
                        .map(|mut s| {
                            s.scheduling = scheduling;
                            s
                        })
                        .map_err(|e| format!("engine thread setup: {e}"));
                    let _ = tx.send(stats);
                });
            if let Err(e) = spawned {
                // The threads already started wait at the barrier forever otherwise.
                return Err(EngineError(format!("cannot start engine thread: {e}")));
            }
        }
        drop(tx);
        // The lanes hold their own ends: the writer ends when the last lane is done.
        drop(export);
        // Every thread is ready: read the wall clock once, and start the clock a moment ahead
        // (or at `start_at`) so all see the same t0.
        let anchor = Anchor::now();
        let (t0, start) = anchor.t0(plan.start_at);
        let _ = anchor_cell.set((anchor, start));
        let _ = t0_cell.set(t0);
        // Unix time as the shard's wall clock has it (`start_at` itself when given).
        clock = Clock {
            unix_start: start as f64 / 1e9,
            ..Clock::at(t0)
        };
        let writing = writer.map(|(w, file)| {
            let format = export::Format {
                t0,
                host: plan.target.host.clone(),
                workers: plan.num_workers,
                llm: plan.llm.is_some(),
                groups: plan.requests.groups_by_slot(),
                sessions: plan.sessions.clone(),
                trace_lines: plan.trace_lines.clone(),
            };
            std::thread::Builder::new()
                .name("pacer-requests".into())
                .spawn_scoped(scope, move || export::write(w, file, &format))
        });
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
                    if let Some(tick) = controls.on_tick {
                        tick(progress, started.elapsed());
                    }
                }
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            }
        }
        requests = match writing {
            Some(Ok(h)) => Some(h.join().unwrap_or_else(|_| export::Summary {
                error: Some("the writer thread failed".into()),
                ..export::Summary::default()
            })),
            Some(Err(e)) => Some(export::Summary {
                error: Some(format!("cannot start the writer thread: {e}")),
                ..export::Summary::default()
            }),
            None => None,
        };
        if let Some(e) = failure {
            return Err(EngineError(e));
        }
        merged.ok_or_else(|| EngineError("no engine thread reported".into()))
    });
    let merged = result?;
    let started = t0_cell.get().copied().unwrap_or_else(Instant::now);
    if let Some(r) = requests.as_mut() {
        r.waited = Duration::from_nanos(waited.load(Ordering::Relaxed));
    }
    let elapsed = match plan.rate {
        // wrk's convention: a closed-loop run lasts exactly its duration (or until stopped);
        // one of `-n` requests lasts until its last response.
        Rate::Max if merged.interrupted || plan.count > 0 => started.elapsed().min(plan.duration),
        Rate::Max => plan.duration,
        Rate::PerSecond(_) => started.elapsed(),
    };
    let end = Instant::now();
    let (anchor, start) = anchor_cell
        .get()
        .copied()
        .unwrap_or_else(|| (Anchor::now(), now_unix_ns()));
    let wall = WallTimes {
        start,
        ready: anchor.wall,
        end: anchor.wall_of(end),
        first_dispatch: merged.first_dispatch.map(|t| anchor.wall_of(t)),
        last_dispatch: merged.last_dispatch.map(|t| anchor.wall_of(t)),
        dispatched: merged.dispatched,
    };
    // Each stage's sends on the wall clock too, so a merge of shards can tell a stage's rate.
    let stage_sends: Vec<_> = merged
        .stages
        .iter()
        .map(|s| (s.first_dispatch, s.last_dispatch, s.dispatched))
        .collect();
    let mut stats = finish(plan, merged, elapsed);
    stats.wall = wall;
    for (stage, (first, last, dispatched)) in stats.stages.iter_mut().zip(stage_sends) {
        stage.wall = WallTimes {
            first_dispatch: first.map(|t| anchor.wall_of(t)),
            last_dispatch: last.map(|t| anchor.wall_of(t)),
            dispatched,
            ..wall
        };
    }
    let scheduled = match &plan.sessions {
        // A session run's schedule starts sessions; each accounts for its turns.
        Some(s) => s.requests_for(plan.shard_requests()),
        None => plan.shard_requests(),
    };
    stats.clock = clock;
    stats.requests = requests;
    // A closed loop drops what is in flight when stopped: only a schedule is all accounted for.
    if scheduled > 0 && plan.curve.is_some() && stats.total_requests != scheduled {
        return Err(EngineError(format!(
            "internal error: {scheduled} requests scheduled but {} accounted for",
            stats.total_requests
        )));
    }
    Ok(stats)
}

fn finish(plan: &Plan, mut w: LaneStats, elapsed: Duration) -> RunStats {
    let stages = std::mem::take(&mut w.stages);
    let messages = std::mem::take(&mut w.messages);
    let health = HealthInput {
        // A thread's CPU is a share of the whole run: one that finished its share early was
        // idle for the rest of it.
        threads: std::mem::take(&mut w.usage)
            .into_iter()
            .map(|(_, u)| ThreadUsage {
                wall: elapsed.as_secs_f64(),
                ..u
            })
            .collect(),
        sent: w.dispatched,
        not_sent: w.failures.get(&Failure::NotSent).copied().unwrap_or(0),
        late_p99: w.lateness.quantile(0.99),
        // The mean interval between intended sends; closed loop has none.
        send_interval: plan
            .curve
            .as_ref()
            .filter(|_| plan.count > 0)
            .map(|c| c.duration() / plan.count as f64),
        num_workers: plan.num_workers,
    };
    let mut stats = summarize(plan, w, &messages, elapsed);
    stats.stages = stages
        .into_iter()
        .enumerate()
        .map(|(k, s)| {
            let secs = plan
                .curve
                .as_ref()
                .and_then(|c| c.span_of(k))
                .map_or(0.0, |(_, d)| d);
            summarize(plan, s, &messages, Duration::from_secs_f64(secs))
        })
        .collect();
    stats.health = Some(health);
    stats
}

/// The counts of `w` (a run's, or one stage's) named and totalled; `messages` names the server
/// error messages its failures point at.
fn summarize(plan: &Plan, w: LaneStats, messages: &Messages, elapsed: Duration) -> RunStats {
    let mut errors = BTreeMap::new();
    for (s, n) in w.statuses {
        *errors.entry(ErrorKey::Status(s)).or_insert(0) += n;
    }
    for (f, n) in w.failures {
        let name = f.name(&plan.target.host, plan.num_workers, messages.as_slice());
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
        output_sources: w.output_sources,
        input_tokens: w.input_tokens,
        input_sources: w.input_sources,
        tokens: w.tokens,
        token_gaps: w.token_gaps,
        token_gaps_coalesced: w.token_gaps_coalesced,
        interrupted: w.interrupted,
        good_requests: w.good,
        sent: w.dispatched,
        stages: Vec::new(),
        health: None,
        wall: WallTimes::default(),
        timeline: w.timeline,
        targets: w.targets,
        clock: Clock::default(),
        requests: None,
        timestamps: w.timestamps,
        sessions: w.sessions,
    }
}

/// One reading of both clocks, taken when every engine thread is ready: the wall clock is read
/// only here, and every wall time of the run is this reading plus monotonic time since.
#[derive(Clone, Copy, Debug)]
struct Anchor {
    mono: Instant,
    wall: UnixNanos,
}

impl Anchor {
    fn now() -> Anchor {
        Anchor {
            mono: Instant::now(),
            wall: now_unix_ns(),
        }
    }

    /// The wall time of monotonic instant `t`.
    fn wall_of(&self, t: Instant) -> UnixNanos {
        let nanos = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        match t.checked_duration_since(self.mono) {
            Some(d) => self.wall.saturating_add(nanos(d)),
            None => self.wall.saturating_sub(nanos(self.mono - t)),
        }
    }

    /// The run's t0 and the wall time it stands for: `start_at` mapped onto the monotonic clock
    /// (in the past for a late start, so every request keeps its intended time), or a moment
    /// from now.
    fn t0(&self, start_at: Option<UnixNanos>) -> (Instant, UnixNanos) {
        let soon = Duration::from_millis(1);
        let Some(start) = start_at else {
            return (self.mono + soon, self.wall_of(self.mono + soon));
        };
        let ahead = i128::from(start) - i128::from(self.wall);
        let by = Duration::from_nanos(u64::try_from(ahead.unsigned_abs()).unwrap_or(u64::MAX));
        let t0 = if ahead >= 0 {
            self.mono.checked_add(by)
        } else {
            self.mono.checked_sub(by)
        };
        // A start beyond what the monotonic clock can hold (before boot): start now.
        (t0.unwrap_or(self.mono), start)
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
        Rate::PerSecond(_) => plan.shard_requests(),
        // No schedule to count in closed loop: one failed attempt per connection.
        Rate::Max => plan.shard_workers() as u64,
    };
    let mut errors = BTreeMap::new();
    errors.insert(
        ErrorKey::Name(Failure::Dns.name(&plan.target.host, plan.num_workers, &[])),
        n,
    );
    RunStats {
        total_requests: n,
        errors,
        clock: Clock::at(Instant::now()),
        ..RunStats::default()
    }
}

/// Reads the progress counter (for callers that hold a `Progress`).
pub fn done(p: &Progress) -> u64 {
    p.done()
}
