//! The state one shard leaves for the merge: what its report would show, kept in mergeable form
//! (counters, error counts, every timing family packed by [`crate::stats::pack`]), plus what the
//! merge checks (layout version, plan fingerprint, shard `i/N`) and the wall-clock times that
//! place the shard in the run. One JSON object, written on one line so that a pod's log carries
//! it whole.
//!
//! Reading is where untrusted text becomes a state: the version is checked before anything else,
//! so a newer layout is refused by name rather than misread.
//!
//! Versions: 2 added `timeline` (the run's intervals, [`super::timeline`]) and `stages` (a staged
//! run's per-stage figures); 3 is the run's own statistics, every timing family by its
//! [`crate::metric`] name. A state of an older version is refused by name
//! ([`StateError::OlderVersion`]): its shards are re-run with this build, not merged half-read.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, Read};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::ShardIndex;
use super::timeline::StateTimeline;
use crate::engine::{TokenCounts, TokenSources};
use crate::health::HealthInput;
use crate::wall::UnixNanos;

/// The layout this pacer writes, and the newest it reads.
pub const STATE_VERSION: u32 = 3;

/// The key every state starts with; a line holding it is taken for a state.
pub const STATE_KEY: &str = "pacer_state";

/// How the shard's times relate to the world, written into every state so a reader knows what
/// the start skew can and cannot show.
pub const CLOCK: &str = "wall clock (CLOCK_REALTIME) read once when the shard was ready, mapped \
onto the monotonic clock that times every request; shards on different machines agree as well \
as their clocks do";

/// One shard's mergeable state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
    /// When the shard's schedule starts (its request times count from here): `--start-at`, or
    /// the moment it was ready when none was given.
    pub start_unix_ns: UnixNanos,
    /// When the shard was ready to send (its threads started, the target resolved).
    pub ready_unix_ns: UnixNanos,
    /// When its last request ended.
    pub end_unix_ns: UnixNanos,
    /// Seconds the shard was ready after its start (0 when on time); its requests were still all
    /// sent, each timed from its intended time.
    pub start_late: f64,
    pub plan: PlanEcho,
    pub counts: Counts,
    pub first_dispatch_unix_ns: Option<UnixNanos>,
    pub last_dispatch_unix_ns: Option<UnixNanos>,
    /// How the worker threads were scheduled: `normal`, `realtime`, or `realtime refused: <why>`.
    pub scheduling: String,
    /// The shard was stopped before its end (its unsent requests are `not sent: interrupted`).
    pub interrupted: bool,
    /// Error responses by HTTP status.
    pub statuses: BTreeMap<u16, u64>,
    /// Other errors by name (`timeout`, `connection refused`, ...).
    pub failures: BTreeMap<String, u64>,
    /// Every timing family by its report name, packed ([`crate::stats::pack::pack_base64`]).
    /// Kept packed until the merge folds it in, so a merge holds one family unpacked at a time.
    pub timings: BTreeMap<String, String>,
    /// What this shard's `health` verdict was drawn from, so the merge judges the whole run
    /// (absent from states written before it).
    #[serde(default)]
    pub health: Option<HealthInput>,
    /// The run over time, intervals from `start_unix_ns` (absent from a run that never
    /// started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<StateTimeline>,
    /// A staged run's stages, in order, each with the requests intended in it (absent from a
    /// run without stages).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<StageState>,
}

/// What a shard measured of one stage: the requests intended in it, as its report's `stages`
/// entry counts them, in mergeable form.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageState {
    /// The stage's length in seconds (its `elapsed`; the same in every shard of a plan).
    pub duration: f64,
    pub counts: Counts,
    pub first_dispatch_unix_ns: Option<UnixNanos>,
    pub last_dispatch_unix_ns: Option<UnixNanos>,
    pub statuses: BTreeMap<u16, u64>,
    pub failures: BTreeMap<String, u64>,
    /// Packed as [`ShardState::timings`].
    pub timings: BTreeMap<String, String>,
}

/// What the merged report needs of the plan to be written like a run's report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanEcho {
    /// The run's `config` as its report shows it.
    pub config: Map<String, Value>,
    pub url: String,
    pub method: String,
    /// Requests per second; `None` for saturation (`--qps max`).
    pub qps: Option<f64>,
    /// Seconds.
    pub duration: f64,
    /// Requests of the whole plan (all shards).
    pub count: u64,
    /// Connections of the whole plan (all shards).
    pub num_workers: usize,
    /// This shard's threads.
    pub threads: usize,
    /// Seconds.
    pub timeout: f64,
    /// The Poisson arrivals' seed; `None` for constant spacing.
    pub seed: Option<u64>,
    pub insecure: bool,
    /// Real-time scheduling was asked for.
    pub realtime: bool,
    /// `plain`, `sse` or `whole_json`: how response bodies were read.
    pub body_mode: String,
    /// For LLM runs: whether the payload streamed, and the API (`completions` or `chat`).
    pub llm: Option<LlmEcho>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LlmEcho {
    pub stream: bool,
    pub api: String,
}

/// The counters that add across shards.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub total_requests: u64,
    pub successes: u64,
    /// Requests handed to a connection.
    pub dispatched: u64,
    pub bytes_received: u64,
    pub connections_opened: u64,
    pub output_tokens: u64,
    /// Where the successes' token counts came from, and their prompt tokens (absent in states
    /// written before pacer counted them: read as zeros).
    #[serde(default)]
    pub output_sources: TokenSources,
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub input_sources: TokenSources,
    pub tls_full: u64,
    pub tls_resumed: u64,
    /// Successes that met every goodput objective (0 without objectives; absent from states
    /// written before goodput, which had none).
    #[serde(default)]
    pub good_requests: u64,
    /// Gaps between successive token events of the successes, and those read together (one
    /// chunk); absent from states written before pacer counted them: read as zeros.
    #[serde(default)]
    pub token_gaps: u64,
    #[serde(default)]
    pub token_gaps_coalesced: u64,
    /// What the servers' usage said beside pacer's counts (absent from states written before
    /// pacer compared them: read as zeros).
    #[serde(default)]
    pub tokens: TokenCounts,
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
        let p = &self.plan;
        seconds("plan.duration", p.duration, CLI_MAX_DURATION)?;
        seconds("plan.timeout", p.timeout, CLI_MAX_DURATION)?;
        if let Some(q) = p.qps
            && !(q.is_finite() && q > 0.0 && q <= CLI_MAX_QPS)
        {
            return Err(format!(
                "plan.qps is {q:?}, not a rate above 0 and at most {CLI_MAX_QPS}"
            ));
        }
        if p.count as f64 > MAX_REQUESTS {
            return Err(format!(
                "plan.count is {}, more than a plan may schedule ({MAX_REQUESTS})",
                p.count
            ));
        }
        if p.num_workers > CLI_MAX_WORKERS || p.threads > MAX_THREADS {
            return Err(format!(
                "plan.num_workers {} or plan.threads {} is past what a plan may have \
                 ({CLI_MAX_WORKERS}, {MAX_THREADS})",
                p.num_workers, p.threads
            ));
        }
        if let Some(list) = p.config.get("stages").and_then(Value::as_array) {
            for (k, st) in list.iter().enumerate() {
                let (q, d) = (st["qps"].as_f64(), st["duration"].as_f64());
                if !q.is_some_and(|q| q.is_finite() && (0.0..=CLI_MAX_QPS).contains(&q)) {
                    return Err(format!("config.stages[{k}].qps is not a rate"));
                }
                seconds(
                    &format!("config.stages[{k}].duration"),
                    d.unwrap_or(f64::NAN),
                    CLI_MAX_DURATION,
                )?;
            }
        }
        // The late start is the distance from the start to the moment the shard was ready.
        seconds("start_late", self.start_late, CLI_MAX_DURATION)?;
        let late = crate::wall::secs_between(self.start_unix_ns, self.ready_unix_ns).max(0.0);
        if (self.start_late - late).abs() > 1e-6 {
            return Err(format!(
                "start_late is {:?} s, but the shard was ready {late} s after its start",
                self.start_late
            ));
        }
        if self.end_unix_ns < self.ready_unix_ns {
            return Err("it ends before it was ready to start".into());
        }
        dispatch_span(
            "",
            self.first_dispatch_unix_ns,
            self.last_dispatch_unix_ns,
            self.end_unix_ns,
        )?;
        counts("", &self.counts, &self.statuses, &self.failures)?;
        families("timings", &self.timings)?;
        if self.counts.total_requests as f64 > MAX_REQUESTS {
            return Err(format!(
                "counts.total_requests is {}, more than a run may have ({MAX_REQUESTS})",
                self.counts.total_requests
            ));
        }
        let mut staged: u64 = 0;
        for (k, st) in self.stages.iter().enumerate() {
            let at = format!("stages[{k}].");
            seconds(&format!("{at}duration"), st.duration, CLI_MAX_DURATION)?;
            counts(&at, &st.counts, &st.statuses, &st.failures)?;
            families(&format!("{at}timings"), &st.timings)?;
            dispatch_span(
                &at,
                st.first_dispatch_unix_ns,
                st.last_dispatch_unix_ns,
                self.end_unix_ns,
            )?;
            staged = staged
                .checked_add(st.counts.total_requests)
                .filter(|&n| n <= self.counts.total_requests)
                .ok_or("the stages count more requests than the run")?;
        }
        if let Some(h) = &self.health {
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
            let total = self.counts.total_requests;
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

/// Every timing family is named as [`crate::metric`] names them: one this pacer does not know
/// would be dropped from the merged report without a word.
fn families(at: &str, timings: &BTreeMap<String, String>) -> Result<(), String> {
    match timings.keys().find(|k| crate::metric::by_name(k).is_none()) {
        Some(k) => Err(format!(
            "{at}.{k} is not a timing family (`pacer metrics` lists them)"
        )),
        None => Ok(()),
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

/// A run's (or stage's) counts agree: successes ≤ dispatched ≤ requests, good requests among
/// the successes, each token source counting successes, and the errors (by status and by name)
/// exactly the requests that did not succeed.
fn counts(
    at: &str,
    c: &Counts,
    statuses: &BTreeMap<u16, u64>,
    failures: &BTreeMap<String, u64>,
) -> Result<(), String> {
    if !(c.successes <= c.dispatched && c.dispatched <= c.total_requests) {
        return Err(format!(
            "{at}counts: {} successes, {} dispatched and {} requests are not in order \
             (successes ≤ dispatched ≤ requests)",
            c.successes, c.dispatched, c.total_requests
        ));
    }
    if c.good_requests > c.successes {
        return Err(format!(
            "{at}counts: {} good requests of {} successes",
            c.good_requests, c.successes
        ));
    }
    if c.token_gaps_coalesced > c.token_gaps {
        return Err(format!(
            "{at}counts: {} token gaps read together of {} token gaps",
            c.token_gaps_coalesced, c.token_gaps
        ));
    }
    for (what, s) in [("output", &c.output_sources), ("input", &c.input_sources)] {
        let counted = crate::engine::TokenSource::ALL
            .iter()
            .try_fold(0u64, |sum, &src| sum.checked_add(s.get(src)));
        if counted.is_none_or(|n| n > c.successes) {
            return Err(format!(
                "{at}counts: the {what} token sources count more than the successes"
            ));
        }
    }
    let errors = statuses
        .values()
        .chain(failures.values())
        .try_fold(0u64, |sum, &n| sum.checked_add(n));
    if errors != Some(c.total_requests - c.successes) {
        return Err(format!(
            "{at}counts: the errors by status and name do not add up to the {} requests that \
             did not succeed",
            c.total_requests - c.successes
        ));
    }
    Ok(())
}
