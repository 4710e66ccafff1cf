//! The state one shard leaves for the merge: what its report would show, kept in mergeable form
//! (counters, error counts, every timing family packed by [`crate::stats::pack`]), plus what the
//! merge checks (layout version, plan fingerprint, shard `i/N`) and the wall-clock times that
//! place the shard in the run. One JSON object, written on one line so that a pod's log carries
//! it whole.
//!
//! Reading is where untrusted text becomes a state: the version is checked before anything else,
//! so a newer layout is refused by name rather than misread.
//!
//! Versions: 2 added `timeline` (the run's intervals) and `stages` (a staged run's per-stage
//! figures); 3 named every timing family by its [`crate::metric`] name; 4 is the run's own
//! statistics as `engine::packed` serializes a [`RunStats`] (no counts, error names or timings
//! of the state's own), with the report's [`Settings`] in place of a plan echo. A state of an
//! older version is refused by name ([`StateError::OlderVersion`]): its shards are re-run with
//! this build, not merged half-read.

use std::fmt;
use std::io::{BufRead, Read};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ShardIndex;
use crate::engine::RunStats;
use crate::report::Settings;
use crate::wall::{UnixNanos, WallTimes};

/// The layout this pacer writes, and the newest it reads.
pub const STATE_VERSION: u32 = 4;

/// The key every state starts with; a line holding it is taken for a state.
pub const STATE_KEY: &str = "pacer_state";

/// How the shard's times relate to the world, written into every state so a reader knows what
/// the start skew can and cannot show.
pub const CLOCK: &str = "wall clock (CLOCK_REALTIME) read once when the shard was ready, mapped \
onto the monotonic clock that times every request; shards on different machines agree as well \
as their clocks do";

/// One shard's mergeable state: the run's own statistics and the report's settings, as one
/// process's report is written from them, under what the merge checks.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ShardState {
    /// The layout's version ([`STATE_VERSION`]); first, so a reader checks it before the rest.
    pub pacer_state: u32,
    /// The pacer that wrote it (for people; the merge reads `pacer_state`).
    pub pacer_version: String,
    /// The plan's fingerprint ([`super::fingerprint`]): shards of one run share it.
    pub fingerprint: String,
    pub shard: ShardIndex,
    /// See [`CLOCK`].
    pub clock: String,
    /// What the report reads of the plan ([`Settings::of`]).
    pub settings: Settings,
    /// The run's statistics as `engine::packed` writes them: counts, error buckets, every
    /// timing family packed, the wall-clock times that place the shard in the run (`wall`:
    /// the schedule's start, when the shard was ready, its end, its first and last send), each
    /// stage's, the health inputs and the timeline.
    pub stats: RunStats,
}

impl ShardState {
    /// Where the shard sat on the wall clock.
    pub fn wall(&self) -> &WallTimes {
        &self.stats.wall
    }

    /// Seconds the shard was ready after its start (0 when on time); its requests were still all
    /// sent, each timed from its intended time.
    pub fn start_late(&self) -> f64 {
        self.stats.wall.start_late()
    }
}

/// Why text is not a state this pacer can merge.
#[derive(Debug, Clone, PartialEq)]
pub enum StateError {
    /// Not JSON, or JSON without the fields of a state.
    NotAState { source: String, why: String },
    /// Written in a newer layout than this pacer knows.
    NewerVersion { source: String, version: u64 },
    /// Written in an older layout than this pacer merges.
    OlderVersion { source: String, version: u64 },
    /// A file could not be read.
    Read { source: String, why: String },
    /// Standard input held no state line.
    NoneFound { source: String },
    /// A state (one line, or one file's whole text) longer than `--max-state-bytes`.
    TooLarge { source: String, limit: u64 },
    /// Read as a state, but its numbers cannot be a run's: a count past another it is part of, a
    /// time that is not a number of seconds, an end before its start.
    Invalid { source: String, why: String },
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateError::NotAState { source, why } => {
                write!(f, "{source} is not a pacer shard state: {why}")
            }
            StateError::NewerVersion { source, version } => write!(
                f,
                "{source} is a shard state of version {version}, newer than this pacer reads \
                 ({STATE_VERSION}): merge with the pacer that wrote it"
            ),
            StateError::OlderVersion { source, version } => write!(
                f,
                "{source} is a shard state of version {version}, older than this pacer merges \
                 (version {STATE_VERSION} is needed): re-run the shards with this build"
            ),
            StateError::Read { source, why } => write!(f, "cannot read {source}: {why}"),
            StateError::NoneFound { source } => write!(
                f,
                "{source} holds no shard state (a line with {{\"{STATE_KEY}\": ...}})"
            ),
            StateError::TooLarge { source, limit } => write!(
                f,
                "{source} is longer than {limit} bytes, more than a shard state can be \
                 (--max-state-bytes raises the limit)"
            ),
            StateError::Invalid { source, why } => {
                write!(f, "{source} is not a state a run can have written: {why}")
            }
        }
    }
}

impl std::error::Error for StateError {}

impl ShardState {
    /// The state as one line of JSON (no newline inside).
    pub fn to_line(&self) -> String {
        // A struct of strings, numbers and maps with string keys always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The state as a JSON value (the API report's `state` field).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Reads a state from JSON text; `source` names it in errors (a file name, `stdin line 7`).
    /// The version is checked first.
    pub fn parse(text: &str, source: &str) -> Result<ShardState, StateError> {
        let value: Value = serde_json::from_str(text).map_err(|e| StateError::NotAState {
            source: source.into(),
            why: e.to_string(),
        })?;
        Self::from_value(value, source)
    }

    /// [`ShardState::parse`] from a JSON value.
    pub fn from_value(value: Value, source: &str) -> Result<ShardState, StateError> {
        let version = match value.get(STATE_KEY) {
            Some(v) => v.as_u64().ok_or_else(|| StateError::NotAState {
                source: source.into(),
                why: format!("{STATE_KEY} is not a whole number"),
            })?,
            None => {
                return Err(StateError::NotAState {
                    source: source.into(),
                    why: format!("it has no {STATE_KEY} field"),
                });
            }
        };
        if version > u64::from(STATE_VERSION) {
            return Err(StateError::NewerVersion {
                source: source.into(),
                version,
            });
        }
        if version < u64::from(STATE_VERSION) {
            return Err(StateError::OlderVersion {
                source: source.into(),
                version,
            });
        }
        let state: ShardState =
            serde_json::from_value(value).map_err(|e| StateError::NotAState {
                source: source.into(),
                why: e.to_string(),
            })?;
        state.check(source)?;
        Ok(state)
    }

    /// Reads a state file: one JSON object (a `--state FILE`), or any text whose lines include
    /// state lines (a saved log), which gives one state per such line. A file longer than
    /// `max_bytes` is read as lines, each at most `max_bytes` long, so a huge or endless file is
    /// refused by name rather than read into memory.
    pub fn read_file(
        path: &std::path::Path,
        max_bytes: u64,
    ) -> Result<Vec<(String, ShardState)>, StateError> {
        let source = path.display().to_string();
        let read_error = |e: std::io::Error| StateError::Read {
            source: source.clone(),
            why: e.to_string(),
        };
        let file = std::fs::File::open(path).map_err(read_error)?;
        let mut head = Vec::new();
        file.take(max_bytes.saturating_add(1))
            .read_to_end(&mut head)
            .map_err(read_error)?;
        if head.len() as u64 > max_bytes {
            // Too long to be one state: a log of several, read a line at a time from the start.
            drop(head);
            let file = std::fs::File::open(path).map_err(read_error)?;
            return Self::read_lines(std::io::BufReader::new(file), &source, max_bytes);
        }
        let Ok(text) = std::str::from_utf8(&head) else {
            return Self::read_lines(head.as_slice(), &source, max_bytes);
        };
        // A `--state FILE` is one line; a state pretty-printed by hand is one JSON object.
        let whole = text.trim();
        if whole.starts_with('{') && !whole.contains('\n') {
            return Ok(vec![(source.clone(), Self::parse(whole, &source)?)]);
        }
        if let Ok(value @ Value::Object(_)) = serde_json::from_str::<Value>(whole) {
            return Ok(vec![(source.clone(), Self::from_value(value, &source)?)]);
        }
        Self::read_lines(text.as_bytes(), &source, max_bytes)
    }

    /// Every state in `input`'s lines, as `kubectl logs` prints them: a line holding
    /// `{"pacer_state":` has a state from there to its end (so a `--prefix` before it is fine);
    /// other lines (a text report, log noise) are skipped. None at all is an error, and so is a
    /// line longer than `max_bytes` (a state or not: it is not read whole to find out).
    pub fn read_lines(
        mut input: impl BufRead,
        source: &str,
        max_bytes: u64,
    ) -> Result<Vec<(String, ShardState)>, StateError> {
        let marker = format!("{{\"{STATE_KEY}\":");
        let mut out = Vec::new();
        let mut line = Vec::new();
        for i in 1.. {
            line.clear();
            // At most one byte past the limit is read: enough to know the line is too long.
            let n = (&mut input)
                .take(max_bytes.saturating_add(1))
                .read_until(b'\n', &mut line)
                .map_err(|e| StateError::Read {
                    source: source.into(),
                    why: e.to_string(),
                })?;
            if n == 0 {
                break;
            }
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            if line.len() as u64 > max_bytes {
                return Err(StateError::TooLarge {
                    source: format!("{source} line {i}"),
                    limit: max_bytes,
                });
            }
            // A line that is not UTF-8 is log noise, not a state.
            let Ok(text) = std::str::from_utf8(&line) else {
                continue;
            };
            if let Some(at) = text.find(&marker) {
                let label = format!("{source} line {i}");
                out.push((label.clone(), Self::parse(&text[at..], &label)?));
            }
        }
        if out.is_empty() {
            return Err(StateError::NoneFound {
                source: source.into(),
            });
        }
        Ok(out)
    }

    /// Whether this state's numbers can be a run's: each count within the one it is part of
    /// (successes ≤ dispatched ≤ requests, errors the requests that did not succeed, ...), every
    /// time in seconds finite, non-negative and within what a plan may ask for, its times in
    /// order. The merge adds what passes without overflow (its sums are checked as well).
    pub fn check(&self, source: &str) -> Result<(), StateError> {
        self.invariant().map_err(|why| StateError::Invalid {
            source: source.into(),
            why,
        })
    }

    fn invariant(&self) -> Result<(), String> {
        use crate::plan::defaults::{
            CLI_MAX_DURATION, CLI_MAX_QPS, CLI_MAX_WORKERS, MAX_REQUESTS, MAX_THREADS,
        };
        let p = &self.settings;
        seconds("settings.duration", p.duration, CLI_MAX_DURATION)?;
        seconds("settings.timeout", p.timeout, CLI_MAX_DURATION)?;
        if let Some(q) = p.qps
            && !(q.is_finite() && q > 0.0 && q <= CLI_MAX_QPS)
        {
            return Err(format!(
                "settings.qps is {q:?}, not a rate above 0 and at most {CLI_MAX_QPS}"
            ));
        }
        if p.count as f64 > MAX_REQUESTS {
            return Err(format!(
                "settings.count is {}, more than a plan may schedule ({MAX_REQUESTS})",
                p.count
            ));
        }
        if p.num_workers > CLI_MAX_WORKERS || p.threads > MAX_THREADS {
            return Err(format!(
                "settings.num_workers {} or settings.threads {} is past what a plan may have \
                 ({CLI_MAX_WORKERS}, {MAX_THREADS})",
                p.num_workers, p.threads
            ));
        }
        for (k, st) in p.stages.iter().enumerate() {
            let rate = |q: f64| q.is_finite() && (0.0..=CLI_MAX_QPS).contains(&q);
            if !(rate(st.qps) && rate(st.from_qps) && rate(st.to_qps)) {
                return Err(format!("settings.stages[{k}] has a rate that is not one"));
            }
            seconds(
                &format!("settings.stages[{k}].duration"),
                st.duration,
                CLI_MAX_DURATION,
            )?;
            seconds(
                &format!("settings.stages[{k}].start"),
                st.start,
                CLI_MAX_DURATION,
            )?;
        }
        let stats = &self.stats;
        let w = &stats.wall;
        // The late start is the distance from the start to the moment the shard was ready.
        seconds("start_late", w.start_late(), CLI_MAX_DURATION)?;
        if w.end < w.ready {
            return Err("it ends before it was ready to start".into());
        }
        dispatch_span("", w.first_dispatch, w.last_dispatch, w.end)?;
        counts("", stats)?;
        if stats.total_requests as f64 > MAX_REQUESTS {
            return Err(format!(
                "stats.total_requests is {}, more than a run may have ({MAX_REQUESTS})",
                stats.total_requests
            ));
        }
        let mut staged: u64 = 0;
        for (k, st) in stats.stages.iter().enumerate() {
            let at = format!("stages[{k}].");
            counts(&at, st)?;
            dispatch_span(&at, st.wall.first_dispatch, st.wall.last_dispatch, w.end)?;
            staged = staged
                .checked_add(st.total_requests)
                .filter(|&n| n <= stats.total_requests)
                .ok_or("the stages count more requests than the run")?;
        }
        if let Some(h) = &stats.health {
            if h.threads.len() > MAX_THREADS {
                return Err(format!("health has {} threads", h.threads.len()));
            }
            for (k, t) in h.threads.iter().enumerate() {
                seconds(&format!("health.threads[{k}].cpu"), t.cpu, f64::MAX)?;
                seconds(&format!("health.threads[{k}].wall"), t.wall, f64::MAX)?;
            }
            if let Some(x) = h.late_p99 {
                seconds("health.late_p99", x, f64::MAX)?;
            }
            if let Some(x) = h.send_interval {
                seconds("health.send_interval", x, f64::MAX)?;
            }
            let total = stats.total_requests;
            if h.sent > total || h.not_sent > total || h.num_workers > CLI_MAX_WORKERS {
                return Err(format!(
                    "health counts {} sent and {} not sent of {total} requests",
                    h.sent, h.not_sent
                ));
            }
        }
        Ok(())
    }
}

/// `x` is a number of seconds from 0 to `max`.
fn seconds(what: &str, x: f64, max: f64) -> Result<(), String> {
    if x.is_finite() && (0.0..=max).contains(&x) {
        Ok(())
    } else {
        Err(format!(
            "{what} is {x:?}, not a number of seconds from 0 to {max}"
        ))
    }
}

/// The first send is no later than the last, which is no later than the shard's end.
fn dispatch_span(
    at: &str,
    first: Option<UnixNanos>,
    last: Option<UnixNanos>,
    end: UnixNanos,
) -> Result<(), String> {
    match (first, last) {
        (None, None) => Ok(()),
        (Some(a), Some(b)) if a <= b && b <= end => Ok(()),
        _ => Err(format!(
            "{at}first_dispatch_unix_ns and {at}last_dispatch_unix_ns are not in order before \
             the end"
        )),
    }
}

/// A run's (or stage's) counts agree: successes ≤ sent ≤ requests, good requests among the
/// successes, each token source and each request count of the servers' usage within the
/// successes, and the error buckets exactly the requests that did not succeed.
fn counts(at: &str, c: &RunStats) -> Result<(), String> {
    if !(c.successes <= c.sent && c.sent <= c.total_requests) {
        return Err(format!(
            "{at}stats: {} successes, {} dispatched and {} requests are not in order \
             (successes ≤ dispatched ≤ requests)",
            c.successes, c.sent, c.total_requests
        ));
    }
    if c.good_requests > c.successes {
        return Err(format!(
            "{at}stats: {} good requests of {} successes",
            c.good_requests, c.successes
        ));
    }
    if c.token_gaps_coalesced > c.token_gaps {
        return Err(format!(
            "{at}stats: {} token gaps read together of {} token gaps",
            c.token_gaps_coalesced, c.token_gaps
        ));
    }
    for (what, s) in [("output", &c.output_sources), ("input", &c.input_sources)] {
        let counted = crate::engine::TokenSource::ALL
            .iter()
            .try_fold(0u64, |sum, &src| sum.checked_add(s.get(src)));
        if counted.is_none_or(|n| n > c.successes) {
            return Err(format!(
                "{at}stats: the {what} token sources count more than the successes"
            ));
        }
    }
    let t = &c.tokens;
    let per_success = [
        t.reasoning_requests,
        t.cached_requests,
        t.checked,
        t.mismatched,
        t.prompt.compared,
        t.prompt.requests,
        t.output.compared,
        t.output.requests,
    ];
    if per_success.iter().any(|&n| n > c.successes) {
        return Err(format!(
            "{at}stats: the servers' token usage counts more requests than the successes"
        ));
    }
    let errors = c
        .errors
        .values()
        .try_fold(0u64, |sum, &n| sum.checked_add(n));
    if errors != Some(c.total_requests - c.successes) {
        return Err(format!(
            "{at}stats: the errors by status and name do not add up to the {} requests that \
             did not succeed",
            c.total_requests - c.successes
        ));
    }
    Ok(())
}
