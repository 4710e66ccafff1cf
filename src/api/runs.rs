//! Every run the server makes, synchronous or started with `"async": true`: the registry behind
//! `GET /runs`, `GET /runs/{id}` and `DELETE /runs/{id}`. A synchronous request waits for its
//! run here ([`Run::wait`]) on its own thread, so it too is listed and can be cancelled.
//!
//! This module owns a run's identity (an unguessable id), its state (`running`, then `done`,
//! `cancelled` or `failed`), its live counters, its stop switch, the thread it runs on, and how
//! long it is remembered: every running run, and the last `keep` finished ones (the oldest to
//! finish is forgotten first). What a run does is the caller's job (a closure given to
//! [`Runs::spawn`]); validating requests, run slots and routes are `api`'s.
//!
//! Locks: the registry's list and each run's own state are separate mutexes, never held
//! together, so reading one run's report never waits on another run finishing.

use std::collections::VecDeque;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Map, Value, json};

use super::http::rfc3339;
use super::input::ApiError;
use crate::engine::{Progress, Stop};
use crate::plan::Target;

/// Default `--keep-runs`: finished runs remembered.
pub const DEFAULT_KEEP: usize = 32;

/// Which endpoint started a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Benchmark,
    Fireworks,
    Sweep,
}

impl Kind {
    /// The name in the run's JSON: the endpoint's path without its slash.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Benchmark => "benchmark",
            Kind::Fireworks => "fireworks_benchmark",
            Kind::Sweep => "sweep",
        }
    }
}

/// How a run ended (or that it has not).
#[derive(Clone, Debug)]
pub enum Outcome {
    Running,
    /// Ran to its end; the report.
    Done(Value),
    /// Stopped by `DELETE /runs/{id}`; the report of what was measured (`interrupted: true`).
    Cancelled(Value),
    /// Could not run, or failed inside the server: the error a synchronous request would
    /// have answered.
    Failed(ApiError),
}

/// Every state a run can be in, in the order it goes through them.
pub const STATES: [&str; 4] = ["running", "done", "cancelled", "failed"];

impl Outcome {
    pub fn state(&self) -> &'static str {
        match self {
            Outcome::Running => "running",
            Outcome::Done(_) => "done",
            Outcome::Cancelled(_) => "cancelled",
            Outcome::Failed(_) => "failed",
        }
    }

    /// The report of a run that has one.
    pub fn report(&self) -> Option<&Value> {
        match self {
            Outcome::Done(r) | Outcome::Cancelled(r) => Some(r),
            _ => None,
        }
    }
}

/// What a run shows while it goes: the counters of the engine run in progress (a sweep runs one
/// per step, so they are replaced) and, for a sweep, which step that is.
#[derive(Default)]
struct Live {
    progress: Option<Arc<Progress>>,
    /// When `progress` was set.
    since: Option<Instant>,
    /// What the current engine run is, for a run made of several (a sweep's step).
    phase: Option<Value>,
}

struct Ended {
    outcome: Outcome,
    finished: Option<SystemTime>,
    /// Wall time from the start to the end.
    took: Option<Duration>,
}

/// One run.
pub struct Run {
    id: String,
    kind: Kind,
    /// Started with `"async": true` (else a request waits for it).
    asynchronous: bool,
    /// The target as `scheme://host[:port]/path?name=***`: its query's values hidden, as every
    /// echo of a URL ([`crate::plan::public_url`]).
    target: String,
    started: SystemTime,
    clock: Instant,
    stop: Stop,
    live: Mutex<Live>,
    ended: Mutex<Ended>,
    /// Signalled when `ended` gets its outcome.
    end: Condvar,
}

/// A poisoned lock here only means a panic elsewhere while the lock was held; the data (a
/// state, counters) is still whole, so it is read on.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Run {
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The switch the run's engine runs watch.
    pub fn stop(&self) -> &Stop {
        &self.stop
    }

    /// Shows `progress` as the run's live counters from now on; `phase` says what it counts.
    pub fn watch(&self, progress: Arc<Progress>, phase: Option<Value>) {
        let mut live = lock(&self.live);
        live.progress = Some(progress);
        live.since = Some(Instant::now());
        live.phase = phase;
    }

    pub fn state(&self) -> &'static str {
        lock(&self.ended).outcome.state()
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The counters the run shows now and how long they have been counting (the time since the
    /// engine run they belong to was started: a sweep's current step).
    pub fn watched(&self) -> Option<(Arc<Progress>, Duration)> {
        let live = lock(&self.live);
        let p = live.progress.as_ref()?;
        Some((
            Arc::clone(p),
            live.since.map_or(Duration::ZERO, |t| t.elapsed()),
        ))
    }

    /// The path of the run's status.
    pub fn path(&self) -> String {
        format!("/runs/{}", self.id)
    }

    /// The report, when the run has one.
    pub fn report(&self) -> Option<Value> {
        lock(&self.ended).outcome.report().cloned()
    }

    /// Waits up to `timeout` for the run to end: its outcome then, or `None` while it runs.
    pub fn wait(&self, timeout: Duration) -> Option<Outcome> {
        let ended = lock(&self.ended);
        let (ended, _) = self
            .end
            .wait_timeout_while(ended, timeout, |e| matches!(e.outcome, Outcome::Running))
            .unwrap_or_else(|e| e.into_inner());
        match &ended.outcome {
            Outcome::Running => None,
            done => Some(done.clone()),
        }
    }

    /// What `GET /runs` lists.
    pub fn brief(&self) -> Value {
        json!({
            "id": self.id,
            "kind": self.kind.name(),
            "async": self.asynchronous,
            "state": self.state(),
            "started": rfc3339(self.started),
            "target": self.target,
            "url": self.path(),
        })
    }

    /// What `GET /runs/{id}` answers: the brief, then the counters, then how it ended.
    pub fn status(&self) -> Value {
        let mut m = match self.brief() {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let ended = lock(&self.ended);
        let running = matches!(ended.outcome, Outcome::Running);
        let elapsed = ended.took.unwrap_or_else(|| self.clock.elapsed());
        m.insert("state".into(), json!(ended.outcome.state()));
        m.insert("elapsed".into(), json!(elapsed.as_secs_f64()));
        if running && self.stop.is_stopped() {
            m.insert("cancelling".into(), json!(true));
        }
        // An ended run's counters stand still, and so does their clock: at the run's end.
        if let Some(p) = self.progress(ended.took.map(|t| self.clock + t)) {
            m.insert("progress".into(), p);
        }
        if let Some(f) = ended.finished {
            m.insert("finished".into(), json!(rfc3339(f)));
        }
        match &ended.outcome {
            Outcome::Done(r) | Outcome::Cancelled(r) => {
                m.insert("html".into(), json!(format!("{}/html", self.path())));
                m.insert("report".into(), r.clone());
            }
            Outcome::Failed(e) => {
                m.insert(
                    "error".into(),
                    json!({"status": e.status, "detail": e.detail}),
                );
            }
            Outcome::Running => {}
        }
        Value::Object(m)
    }

    /// The live counters, as the command line's progress line shows them; their `elapsed` runs
    /// until `end` when the run has ended.
    fn progress(&self, end: Option<Instant>) -> Option<Value> {
        let live = lock(&self.live);
        let p = live.progress.as_ref()?;
        let c = p.counts();
        let until = end.unwrap_or_else(Instant::now);
        let elapsed = live
            .since
            .map_or(0.0, |t| until.saturating_duration_since(t).as_secs_f64());
        let mut v = json!({
            "elapsed": elapsed,
            "sent": c.sent,
            // Unknown in advance in closed loop (qps "max").
            "scheduled": (p.total > 0).then_some(p.total),
            "in_flight": c.in_flight(),
            "completed": c.completed,
            "errors": c.errors,
            "done": c.done,
        });
        if let Some(phase) = &live.phase {
            v["phase"] = phase.clone();
        }
        Some(v)
    }
}

/// Why `DELETE /runs/{id}` cannot cancel.
#[derive(Debug, PartialEq, Eq)]
pub enum CancelError {
    NotFound,
    /// The run already ended, in this state.
    Finished(&'static str),
}

/// Every async run the server remembers.
pub struct Runs {
    keep: usize,
    inner: Mutex<Inner>,
    /// Keyed from the OS's randomness at start: ids cannot be guessed from earlier ones.
    ids: RandomState,
    counter: AtomicU64,
}

#[derive(Default)]
struct Inner {
    /// In the order they started.
    all: Vec<Arc<Run>>,
    /// Ids of the finished ones, in the order they finished.
    finished: VecDeque<String>,
}

impl Runs {
    /// A registry that remembers the last `keep` finished runs (at least one: a client must be
    /// able to read the run it just saw finish).
    pub fn new(keep: usize) -> Runs {
        Runs {
            keep: keep.max(1),
            inner: Mutex::new(Inner::default()),
            ids: RandomState::new(),
            counter: AtomicU64::new(0),
        }
    }

    pub fn keep(&self) -> usize {
        self.keep
    }

    /// 16 hex digits: SipHash, keyed at random, of a counter, so never the same twice in a
    /// process, and not guessable from another.
    fn fresh_id(&self, taken: &[Arc<Run>]) -> String {
        loop {
            let mut h = self.ids.build_hasher();
            h.write_u64(self.counter.fetch_add(1, Ordering::Relaxed));
            let id = format!("{:016x}", h.finish());
            // A 64-bit collision among at most a few thousand ids is not expected in the
            // life of the universe; checked anyway, since two runs with one id would be a bug.
            if !taken.iter().any(|r| r.id == id) {
                return id;
            }
        }
    }

    /// Registers a run of `kind` against `target` and runs `job` on a thread of its own. `slot`
    /// (a run slot, or anything to hold while the run goes) is dropped when `job` returns,
    /// before the run shows as finished, so a client that sees it finish can start another.
    /// `asynchronous`: started with `"async": true` (else its request waits for it).
    pub fn spawn<S: Send + 'static>(
        self: &Arc<Self>,
        kind: Kind,
        asynchronous: bool,
        target: &Target,
        slot: S,
        job: impl FnOnce(&Run) -> Outcome + Send + 'static,
    ) -> io::Result<Arc<Run>> {
        let run = {
            let mut inner = lock(&self.inner);
            let run = Arc::new(Run {
                id: self.fresh_id(&inner.all),
                kind,
                asynchronous,
                target: target.public_url(),
                started: SystemTime::now(),
                clock: Instant::now(),
                stop: Stop::new(),
                live: Mutex::new(Live::default()),
                ended: Mutex::new(Ended {
                    outcome: Outcome::Running,
                    finished: None,
                    took: None,
                }),
                end: Condvar::new(),
            });
            inner.all.push(Arc::clone(&run));
            run
        };
        let (runs, r) = (Arc::clone(self), Arc::clone(&run));
        let spawned = std::thread::Builder::new()
            .name(format!("pacer-run-{}", run.id))
            .spawn(move || {
                let outcome = catch_unwind(AssertUnwindSafe(|| job(&r))).unwrap_or_else(|_| {
                    Outcome::Failed(ApiError::message(500, "run failed: internal error"))
                });
                drop(slot);
                runs.finish(&r, outcome);
            });
        if let Err(e) = spawned {
            lock(&self.inner).all.retain(|x| !Arc::ptr_eq(x, &run));
            return Err(e);
        }
        Ok(run)
    }

    /// Records how `run` ended, then forgets the oldest finished runs past `keep`.
    fn finish(&self, run: &Arc<Run>, outcome: Outcome) {
        {
            let mut ended = lock(&run.ended);
            ended.outcome = outcome;
            ended.finished = Some(SystemTime::now());
            ended.took = Some(run.clock.elapsed());
        }
        run.end.notify_all();
        let mut inner = lock(&self.inner);
        inner.finished.push_back(run.id.clone());
        while inner.finished.len() > self.keep {
            if let Some(old) = inner.finished.pop_front() {
                inner.all.retain(|r| r.id != old);
            }
        }
    }

    pub fn get(&self, id: &str) -> Option<Arc<Run>> {
        lock(&self.inner).all.iter().find(|r| r.id == id).cloned()
    }

    /// Every run remembered, the newest first.
    pub fn list(&self) -> Vec<Arc<Run>> {
        let mut all = lock(&self.inner).all.clone();
        all.reverse();
        all
    }

    /// Asks a running run to stop: scheduling stops at once, requests in flight get up to their
    /// timeout, and the run then ends `cancelled` with its report. Asking twice is asking once.
    pub fn cancel(&self, id: &str) -> Result<Arc<Run>, CancelError> {
        let run = self.get(id).ok_or(CancelError::NotFound)?;
        let ended = lock(&run.ended);
        match ended.outcome {
            Outcome::Running => {
                run.stop.stop();
                drop(ended);
                Ok(run)
            }
            ref done => Err(CancelError::Finished(done.state())),
        }
    }

    /// Stops every running run (the server is going away: nobody could read their reports).
    pub fn stop_all(&self) {
        for r in lock(&self.inner).all.iter() {
            r.stop.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn target(url: &str) -> Target {
        Target::parse(url).unwrap()
    }

    /// Spawns a run that waits for `go`, then ends with `outcome`.
    fn gated(runs: &Arc<Runs>, outcome: Outcome) -> (Arc<Run>, mpsc::Sender<()>) {
        let (tx, rx) = mpsc::channel::<()>();
        let run = runs
            .spawn(Kind::Benchmark, true, &target("http://h/"), (), move |_| {
                let _ = rx.recv();
                outcome
            })
            .unwrap();
        (run, tx)
    }

    fn wait_state(run: &Run, state: &str) {
        let until = Instant::now() + Duration::from_secs(10);
        while run.state() != state {
            assert!(Instant::now() < until, "still {}", run.state());
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn ids_are_sixteen_hex_digits_and_distinct() {
        let runs = Runs::new(4);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..2000 {
            let id = runs.fresh_id(&[]);
            assert_eq!(id.len(), 16);
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            );
            assert!(seen.insert(id));
        }
        // Another registry (another server) starts from other keys.
        let other = Runs::new(4);
        assert!(!seen.contains(&other.fresh_id(&[])));
    }

    #[test]
    fn the_oldest_finished_runs_are_forgotten_first_and_running_ones_never() {
        let runs = Arc::new(Runs::new(2));
        let (long, long_go) = gated(&runs, Outcome::Done(json!({"n": 0})));
        let mut done = Vec::new();
        for n in 1..=3 {
            let (r, go) = gated(&runs, Outcome::Done(json!({ "n": n })));
            go.send(()).unwrap();
            wait_state(&r, "done");
            done.push(r);
        }
        // Kept: the last two to finish, and the one still running.
        assert!(runs.get(done[0].id()).is_none());
        assert!(runs.get(done[1].id()).is_some() && runs.get(done[2].id()).is_some());
        assert_eq!(runs.get(long.id()).unwrap().state(), "running");
        let listed: Vec<String> = runs.list().iter().map(|r| r.id.clone()).collect();
        assert_eq!(listed, [&*done[2].id, &*done[1].id, &*long.id]);
        assert_eq!(done[2].report(), Some(json!({"n": 3})));
        long_go.send(()).unwrap();
        wait_state(&long, "done");
        assert!(runs.get(done[1].id()).is_none());
        assert_eq!(runs.list().len(), 2);
    }

    #[test]
    fn cancel_stops_a_running_run_and_refuses_a_finished_one() {
        let runs = Arc::new(Runs::new(8));
        let (r, go) = gated(&runs, Outcome::Cancelled(json!({"interrupted": true})));
        assert!(matches!(
            runs.cancel("0000000000000000"),
            Err(CancelError::NotFound)
        ));
        let Ok(c) = runs.cancel(r.id()) else {
            panic!("not cancelled")
        };
        assert!(c.stop().is_stopped());
        assert_eq!(c.status()["cancelling"], json!(true));
        // Twice is once.
        assert!(runs.cancel(r.id()).is_ok());
        go.send(()).unwrap();
        wait_state(&r, "cancelled");
        assert!(matches!(
            runs.cancel(r.id()),
            Err(CancelError::Finished("cancelled"))
        ));
        let s = r.status();
        assert!(s.get("cancelling").is_none());
        assert_eq!(s["report"], json!({"interrupted": true}));
        assert_eq!(s["html"], json!(format!("/runs/{}/html", r.id())));
    }

    #[test]
    fn a_panicking_job_fails_and_gives_its_slot_back() {
        let runs = Arc::new(Runs::new(8));
        let slot = Arc::new(());
        let held = Arc::clone(&slot);
        let r = runs
            .spawn(Kind::Sweep, false, &target("http://h/"), held, |_| {
                panic!("boom")
            })
            .unwrap();
        wait_state(&r, "failed");
        assert_eq!(Arc::strong_count(&slot), 1);
        let s = r.status();
        assert_eq!(
            s["error"],
            json!({"status": 500, "detail": "run failed: internal error"})
        );
        assert_eq!(s["kind"], json!("sweep"));
        assert!(s.get("report").is_none());
    }

    #[test]
    fn the_listed_target_hides_its_query_values() {
        let t = |u: &str| target(u).public_url();
        assert_eq!(
            t("https://Example.com:8443/v1/x?key=s3cret"),
            "https://example.com:8443/v1/x?key=***"
        );
        assert_eq!(t("http://h"), "http://h/");
        assert_eq!(t("http://[::1]:80/a"), "http://[::1]/a");
    }

    #[test]
    fn wait_returns_the_outcome_once_the_run_ends() {
        let runs = Arc::new(Runs::new(8));
        let (r, go) = gated(&runs, Outcome::Done(json!({"n": 1})));
        assert!(r.wait(Duration::from_millis(20)).is_none());
        go.send(()).unwrap();
        let until = Instant::now() + Duration::from_secs(10);
        let outcome = loop {
            if let Some(o) = r.wait(Duration::from_millis(100)) {
                break o;
            }
            assert!(Instant::now() < until, "never ended");
        };
        assert_eq!(outcome.report(), Some(&json!({"n": 1})));
        assert_eq!(r.brief()["async"], json!(true));
    }
}
