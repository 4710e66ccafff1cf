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
//! run's per-stage figures). A version-1 state is still read and merged; it has neither, so a
//! merge that includes one has no timeline (and says why, `timeline_alignment.omitted`) and no
//! `stages`.

use std::collections::BTreeMap;
use std::fmt;
use std::io::BufRead;
use std::ops::AddAssign;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::ShardIndex;
use super::time::UnixNanos;
use super::timeline::StateTimeline;
use crate::engine::TokenSources;
use crate::health::HealthInput;

/// The layout this pacer writes, and the newest it reads.
pub const STATE_VERSION: u32 = 2;

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
    /// The run over time, intervals from `start_unix_ns` (absent from version-1 states, and
    /// from a run that never started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<StateTimeline>,
    /// A staged run's stages, in order, each with the requests intended in it (absent from a
    /// run without stages, and from version-1 states).
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
}

impl AddAssign for Counts {
    fn add_assign(&mut self, o: Counts) {
        self.total_requests += o.total_requests;
        self.successes += o.successes;
        self.dispatched += o.dispatched;
        self.bytes_received += o.bytes_received;
        self.connections_opened += o.connections_opened;
        self.output_tokens += o.output_tokens;
        self.output_sources += o.output_sources;
        self.input_tokens += o.input_tokens;
        self.input_sources += o.input_sources;
        self.tls_full += o.tls_full;
        self.tls_resumed += o.tls_resumed;
        self.good_requests += o.good_requests;
    }
}

/// Why text is not a state this pacer can merge.
#[derive(Debug, Clone, PartialEq)]
pub enum StateError {
    /// Not JSON, or JSON without the fields of a state.
    NotAState { source: String, why: String },
    /// Written in a newer layout than this pacer knows.
    NewerVersion { source: String, version: u64 },
    /// A file could not be read.
    Read { source: String, why: String },
    /// Standard input held no state line.
    NoneFound { source: String },
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
            StateError::Read { source, why } => write!(f, "cannot read {source}: {why}"),
            StateError::NoneFound { source } => write!(
                f,
                "{source} holds no shard state (a line with {{\"{STATE_KEY}\": ...}})"
            ),
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
        serde_json::from_value(value).map_err(|e| StateError::NotAState {
            source: source.into(),
            why: e.to_string(),
        })
    }

    /// Reads a state file: one JSON object (a `--state FILE`), or any text whose lines include
    /// state lines (a saved log), which gives one state per such line.
    pub fn read_file(path: &std::path::Path) -> Result<Vec<(String, ShardState)>, StateError> {
        let source = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| StateError::Read {
            source: source.clone(),
            why: e.to_string(),
        })?;
        // A `--state FILE` is one line; a state pretty-printed by hand is one JSON object.
        let whole = text.trim();
        if whole.starts_with('{') && !whole.contains('\n') {
            return Ok(vec![(source.clone(), Self::parse(whole, &source)?)]);
        }
        if let Ok(value @ Value::Object(_)) = serde_json::from_str::<Value>(whole) {
            return Ok(vec![(source.clone(), Self::from_value(value, &source)?)]);
        }
        Self::read_lines(text.as_bytes(), &source)
    }

    /// Every state in `input`'s lines, as `kubectl logs` prints them: a line holding
    /// `{"pacer_state":` has a state from there to its end (so a `--prefix` before it is fine);
    /// other lines (a text report, log noise) are skipped. None at all is an error.
    pub fn read_lines(
        input: impl BufRead,
        source: &str,
    ) -> Result<Vec<(String, ShardState)>, StateError> {
        let marker = format!("{{\"{STATE_KEY}\":");
        let mut out = Vec::new();
        for (i, line) in input.lines().enumerate() {
            let line = line.map_err(|e| StateError::Read {
                source: source.into(),
                why: e.to_string(),
            })?;
            if let Some(at) = line.find(&marker) {
                let label = format!("{source} line {}", i + 1);
                out.push((label.clone(), Self::parse(&line[at..], &label)?));
            }
        }
        if out.is_empty() {
            return Err(StateError::NoneFound {
                source: source.into(),
            });
        }
        Ok(out)
    }
}
