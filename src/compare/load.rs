//! Reading what `pacer compare` compares: a report (`-o`, `--json`), a shard state (`--state`)
//! or a `--requests` file, told apart by content. Every refusal names the file; nothing in a
//! file can make this panic, and every read is bounded (`--max-bytes` for a whole file, the
//! merge's [`MAX_STATE_BYTES`](crate::plan::defaults::MAX_STATE_BYTES) for a JSON document,
//! [`MAX_LINE_BYTES`] for one request's line).
//!
//! A `--requests` line becomes the engine's own record of a request ([`Completed`]) and its
//! values come from the one home of the per-request formulas
//! ([`request_values`](crate::engine::stats::request_values)). The line has no first body byte
//! and no token gaps, so `time_to_first_byte`, its corrected form, `inter_token_latency` and
//! `inter_chunk_latency` cannot be compared from lines (the reports have them). A line's
//! response counts as complete (so timed) when a status came with headers and its error is none,
//! the status itself, or a stream error, as the engine times them.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::engine::outcome::{Completed, Failure, Outcome};
use crate::engine::stats::request_values;
use crate::metric::{Id, METRICS};
use crate::plan::defaults::MAX_STATE_BYTES;
use crate::stats::percentile_linear;

/// The longest `--requests` line read (a line is ~200 bytes; a server's error message may
/// make it longer).
pub const MAX_LINE_BYTES: u64 = 64 << 10;

/// The percentiles a figure object from `--requests` lines carries, as the report's.
const REPORT_PERCENTILES: [(f64, &str); 5] = [
    (50.0, "50"),
    (90.0, "90"),
    (97.0, "97"),
    (99.0, "99"),
    (99.9, "999"),
];

/// What a file held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Report,
    State,
    Requests,
}

impl Source {
    pub fn word(self) -> &'static str {
        match self {
            Source::Report => "report",
            Source::State => "state",
            Source::Requests => "requests",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Source::Report => "report",
            Source::State => "shard state",
            Source::Requests => "--requests file",
        }
    }

    fn plural(self) -> &'static str {
        match self {
            Source::Report => "reports (-o)",
            Source::State => "shard states (--state)",
            Source::Requests => "--requests files",
        }
    }
}

/// Each request's values of the families a line gives, and the counts.
#[derive(Clone, Debug, Default)]
pub struct Samples {
    /// Per family ([`Id`] order), sorted ascending.
    pub values: Vec<Vec<f64>>,
    /// Requests that ran (sent or failed; not the `not sent: interrupted` ones).
    pub ran: u64,
    pub errors: u64,
}

/// One side of a comparison.
#[derive(Clone, Debug)]
pub struct Run {
    pub path: PathBuf,
    pub source: Source,
    /// The report, or an object with the report's field names built from the lines.
    pub figures: Value,
    /// With `--requests` lines only.
    pub samples: Option<Samples>,
}

/// Why a file cannot be compared.
#[derive(Debug)]
pub enum LoadError {
    Read {
        path: PathBuf,
        why: String,
    },
    TooLarge {
        path: PathBuf,
        bytes: u64,
        max: u64,
        what: &'static str,
    },
    NotRecognized {
        path: PathBuf,
        why: String,
    },
    BadLine {
        path: PathBuf,
        line: u64,
        why: String,
    },
    Mixed {
        base: Source,
        new: Source,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Read { path, why } => write!(f, "cannot read {}: {why}", path.display()),
            LoadError::TooLarge {
                path,
                bytes,
                max,
                what,
            } => write!(
                f,
                "{}: {what} of {bytes} bytes is larger than the {max} allowed (--max-bytes)",
                path.display()
            ),
            LoadError::NotRecognized { path, why } => write!(
                f,
                "{} is not a pacer report (-o), shard state (--state) or --requests file: {why}",
                path.display()
            ),
            LoadError::BadLine { path, line, why } => {
                write!(f, "{} line {line}: {why}", path.display())
            }
            LoadError::Mixed { base, new } => write!(
                f,
                "the base is a {} and the new run a {}: compare two {} (two of a kind)",
                base.noun(),
                new.noun(),
                new.plural()
            ),
        }
    }
}

impl std::error::Error for LoadError {}

/// Reads `path`, whatever of the three it holds; `max_bytes` bounds the whole file.
pub fn load(path: &Path, max_bytes: u64) -> Result<Run, LoadError> {
    let read_err = |e: std::io::Error| LoadError::Read {
        path: path.to_path_buf(),
        why: e.to_string(),
    };
    let not = |why: String| LoadError::NotRecognized {
        path: path.to_path_buf(),
        why,
    };
    let file = File::open(path).map_err(read_err)?;
    let meta = file.metadata().map_err(read_err)?;
    if meta.is_dir() {
        return Err(not("it is a directory".into()));
    }
    if meta.len() > max_bytes {
        return Err(LoadError::TooLarge {
            path: path.to_path_buf(),
            bytes: meta.len(),
            max: max_bytes,
            what: "a file",
        });
    }
    let mut reader = BufReader::new(file.take(max_bytes));
    // The first line tells a state (one line) or a `--requests` file (one line per request)
    // from a report (pretty JSON over many lines).
    let mut first = Vec::new();
    (&mut reader)
        .take(MAX_STATE_BYTES + 1)
        .read_until(b'\n', &mut first)
        .map_err(read_err)?;
    let head: Option<Value> = serde_json::from_slice(&first).ok();
    let has = |k: &str| head.as_ref().is_some_and(|v| v.get(k).is_some());
    if has("pacer_state") {
        drop(reader);
        let merged =
            crate::shard::merge_sources(&[path.to_path_buf()], std::io::empty(), max_bytes)
                .map_err(|e| not(format!("a shard state that cannot be read: {e}")))?;
        let figures = merged.to_json();
        return Ok(Run {
            path: path.to_path_buf(),
            source: Source::State,
            figures,
            samples: None,
        });
    }
    if has("index") && has("intended") {
        let samples = requests(path, &first, reader)?;
        let figures = figures_of(&samples);
        return Ok(Run {
            path: path.to_path_buf(),
            source: Source::Requests,
            figures,
            samples: Some(samples),
        });
    }
    if meta.len() > MAX_STATE_BYTES {
        return Err(LoadError::TooLarge {
            path: path.to_path_buf(),
            bytes: meta.len(),
            max: MAX_STATE_BYTES,
            what: "a JSON report",
        });
    }
    let mut text = first;
    reader.read_to_end(&mut text).map_err(read_err)?;
    let v: Value = serde_json::from_slice(&text).map_err(|e| not(format!("not JSON ({e})")))?;
    match v.get("kind").and_then(Value::as_str) {
        Some("sweep") => return Err(not("it is a sweep: compare two runs' reports".into())),
        Some("compare") => return Err(not("it is already a comparison".into())),
        Some("repeat") => {
            return Err(not(
                "it is a --repeat file: compare two runs' own reports or --requests files".into(),
            ));
        }
        _ => {}
    }
    if !v.is_object() || !v.get("total_requests").is_some_and(Value::is_number) {
        return Err(not("no numeric \"total_requests\" field".into()));
    }
    Ok(Run {
        path: path.to_path_buf(),
        source: Source::Report,
        figures: v,
        samples: None,
    })
}

/// One `--requests` line, as `engine::export` writes it.
#[derive(Deserialize)]
struct Line {
    index: u64,
    #[serde(default)]
    thread: u32,
    intended: f64,
    dispatched: Option<f64>,
    headers: Option<f64>,
    first_token: Option<f64>,
    ended: f64,
    status: Option<u16>,
    error: Option<String>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    server_ttft: Option<f64>,
    #[serde(default)]
    server_tpot: Option<f64>,
}

/// The error name of a request the report counts as unsent.
const UNSENT: &str = "not sent: interrupted";
/// Seconds a line's time may be (a year): past it, or negative, the line is refused.
const MAX_SECS: f64 = 366.0 * 86_400.0;

fn requests(path: &Path, first: &[u8], mut rest: impl BufRead) -> Result<Samples, LoadError> {
    let t0 = Instant::now();
    let mut s = Samples {
        values: vec![Vec::new(); Id::ALL.len()],
        ..Samples::default()
    };
    let mut line = first.to_vec();
    let mut number = 1u64;
    loop {
        let bad = |why: String| LoadError::BadLine {
            path: path.to_path_buf(),
            line: number,
            why,
        };
        if line.len() as u64 > MAX_LINE_BYTES {
            return Err(bad(format!("longer than {MAX_LINE_BYTES} bytes")));
        }
        if !line.iter().all(u8::is_ascii_whitespace) {
            let l: Line = serde_json::from_slice(&line)
                .map_err(|e| bad(format!("not a --requests line ({e})")))?;
            let at = |secs: f64| -> Result<Instant, LoadError> {
                if secs.is_finite() && (0.0..=MAX_SECS).contains(&secs) {
                    Ok(t0 + Duration::from_secs_f64(secs))
                } else {
                    Err(bad(format!("a time of {secs} s")))
                }
            };
            let opt = |secs: Option<f64>| secs.map(at).transpose();
            let mut c = Completed::unsent(
                l.index,
                at(l.intended)?,
                l.thread,
                Failure::Interrupted,
                at(l.ended)?,
            );
            c.dispatch = opt(l.dispatched)?;
            c.head_at = opt(l.headers)?;
            c.first_token_at = opt(l.first_token)?;
            c.status = l.status;
            c.output_tokens = l.output_tokens.unwrap_or(0);
            c.server_ttft = l.server_ttft.filter(|x| x.is_finite());
            c.server_tpot = l.server_tpot.filter(|x| x.is_finite());
            let status_error = |e: &str| l.status.is_some_and(|s| e == s.to_string());
            let complete = c.dispatch.is_some()
                && l.status.is_some()
                && l.headers.is_some()
                && l.error
                    .as_deref()
                    .is_none_or(|e| status_error(e) || e.starts_with("stream error"));
            c.end_at = complete.then_some(c.ended);
            c.outcome = match (&l.error, l.status) {
                (None, _) => Outcome::Success,
                (Some(e), Some(code)) if status_error(e) => Outcome::Status(code),
                _ => Outcome::Failed(Failure::Interrupted),
            };
            if l.error.as_deref() != Some(UNSENT) {
                s.ran += 1;
                s.errors += u64::from(l.error.is_some());
            }
            for (v, x) in s.values.iter_mut().zip(request_values(&c)) {
                // A Sample is finite by construction.
                if let Some(x) = x {
                    v.push(x.secs);
                }
            }
        }
        line.clear();
        number += 1;
        let n = (&mut rest)
            .take(MAX_LINE_BYTES + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| LoadError::Read {
                path: path.to_path_buf(),
                why: e.to_string(),
            })?;
        if n == 0 {
            break;
        }
    }
    for v in &mut s.values {
        v.sort_by(f64::total_cmp);
    }
    Ok(s)
}

/// The report's fields that the lines give: per family its mean, standard deviation, the
/// report's percentiles and maximum; the counts and the error rate.
fn figures_of(s: &Samples) -> Value {
    let mut m = Map::new();
    for (metric, v) in METRICS.iter().zip(&s.values) {
        if v.is_empty() {
            continue;
        }
        let x = metric.name;
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / n;
        m.insert(format!("mean_{x}"), json!(mean));
        m.insert(format!("std_{x}"), json!(var.sqrt()));
        for (q, digits) in REPORT_PERCENTILES {
            m.insert(format!("{x}_p{digits}"), json!(percentile_linear(v, q)));
        }
        m.insert(format!("max_{x}"), json!(v[v.len() - 1]));
    }
    m.insert("total_requests".into(), json!(s.ran));
    m.insert("errors".into(), json!(s.errors));
    m.insert("successes".into(), json!(s.ran - s.errors));
    let rate = (s.ran > 0).then(|| s.errors as f64 / s.ran as f64);
    m.insert("error_rate".into(), json!(rate));
    Value::Object(m)
}

/// Adds `key` (a family's percentile `q`) to a figure object made from lines, for a condition
/// that reads a percentile the report's set lacks.
pub fn add_percentile(run: &mut Run, family: Id, q: f64, key: &str) {
    let (Some(s), Some(m)) = (&run.samples, run.figures.as_object_mut()) else {
        return;
    };
    let v = &s.values[family as usize];
    if !v.is_empty() && !m.contains_key(key) {
        m.insert(key.to_string(), json!(percentile_linear(v, q)));
    }
}
