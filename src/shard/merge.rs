//! The merge: shard states in, one run out, as if one process had sent it; or a refusal that
//! names the states at fault. Pure: no files, no clocks.
//!
//! - Counters and error counts add exactly, the whole run's and each stage's.
//! - Each timing family merges as [`Recorder::merge`] does: exact while all the shards' samples
//!   together fit [`crate::stats::EXACT_LIMIT`], so the percentiles are numpy's on the union; past it, from the
//!   merged sketch, whose rank error bound ([`RANK_ERROR`]) the merged run states. Shards are
//!   folded in index order, so the result does not depend on the order the states were given in.
//! - `elapsed` runs from the earliest shard's start to the latest shard's end (wall clock).
//! - The start skew is the spread of the moments the shards really began: each shard's start, or
//!   when it was ready if that was later.
//! - The timeline: each shard's intervals placed on one grid from the earliest start, and added
//!   interval by interval, histogram bucket by bucket ([`super::timeline`] says how, and when
//!   there is none).
//!
//! Refused, in this order: no states; a state newer than this pacer reads; states of different
//! plans (fingerprints); states split into different numbers of shards; duplicate or missing
//! shards; timelines of different intervals; a timeline that counts more than its state. (A
//! timing family or timeline that does not unpack is refused when the state is read.)

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde_json::{Value, json};

use super::ShardIndex;
use super::state::{STATE_VERSION, ShardState, StateError};
use super::timeline::{Alignment, TimelineFold, align, interval_ns};
use crate::engine::{Clock, RunStats};
use crate::health::HealthInput;
use crate::report::Settings;
use crate::stats::pack::PackError;
use crate::stats::sketch::RANK_ERROR;
use crate::wall::{UnixNanos, format_rfc3339, secs_between};

/// The whole run, merged from its shards.
#[derive(Clone, Debug)]
pub struct Merged {
    /// Shard 0's settings, with `config.shards` set and `threads` the total over the shards.
    pub settings: Settings,
    pub fingerprint: String,
    pub shards: u32,
    /// The run's statistics as one process would have handed them to the report: the shards'
    /// counts, errors and timing families added (each stage's as well), `elapsed` from the
    /// earliest start to the latest end, the achieved rate over every shard's sends, the worst
    /// scheduling, `health` over every shard (None when a state did not carry it), and the
    /// timeline on one grid (off when `alignment` says why).
    pub stats: RunStats,
    pub start_unix_ns: UnixNanos,
    pub end_unix_ns: UnixNanos,
    /// Seconds between the first and the last shard to really begin.
    pub start_skew: f64,
    pub per_shard: Vec<ShardLine>,
    /// Set when any timing family's percentiles come from a sketch: their rank error bound.
    pub percentile_rank_error: Option<f64>,
    /// How the shards' timelines were placed on the run's, or why it has none.
    pub alignment: Alignment,
}

/// `a + b`, or the refusal that names `source` and the count `what` that would overflow.
fn sum(a: u64, b: u64, what: &str, source: &str) -> Result<u64, MergeError> {
    a.checked_add(b).ok_or_else(|| MergeError::Overflow {
        source: source.to_string(),
        what: what.to_string(),
    })
}

/// Adds one state's statistics (its run's, or one stage's) into `into` as the lanes' `+=` adds
/// a thread's, but checked: a count that would overflow, or make the run larger than a run can
/// be, is refused naming `source` (`label` says whose samples: the run's, or a stage's). Returns
/// the part's errors.
fn add_checked(
    into: &mut RunStats,
    part: RunStats,
    source: &str,
    label: &str,
) -> Result<u64, MergeError> {
    // The counts first: every other sum is bounded by them.
    let c = &part;
    into.total_requests = sum(
        into.total_requests,
        c.total_requests,
        "total_requests",
        source,
    )?;
    // Every count derived from requests (a timeline's, a histogram's) stays below this too.
    if into.total_requests as f64 > crate::plan::defaults::MAX_REQUESTS {
        return Err(MergeError::Overflow {
            source: source.to_string(),
            what: "total_requests".into(),
        });
    }
    into.successes = sum(into.successes, c.successes, "successes", source)?;
    into.sent = sum(into.sent, c.sent, "dispatched", source)?;
    into.bytes_received = sum(
        into.bytes_received,
        c.bytes_received,
        "bytes_received",
        source,
    )?;
    into.connections_opened = sum(
        into.connections_opened,
        c.connections_opened,
        "connections_opened",
        source,
    )?;
    into.output_tokens = sum(into.output_tokens, c.output_tokens, "output_tokens", source)?;
    into.input_tokens = sum(into.input_tokens, c.input_tokens, "input_tokens", source)?;
    into.tls_full = sum(into.tls_full, c.tls_full, "tls_full", source)?;
    into.tls_resumed = sum(into.tls_resumed, c.tls_resumed, "tls_resumed", source)?;
    into.good_requests = sum(into.good_requests, c.good_requests, "good_requests", source)?;
    into.token_gaps = sum(into.token_gaps, c.token_gaps, "token_gaps", source)?;
    // Each bounded by a count summed above (`ShardState::check`): the token sources and the
    // servers' usage counts by the successes (its token sums saturate), the coalesced gaps by
    // the gaps.
    into.output_sources += c.output_sources;
    into.input_sources += c.input_sources;
    into.tokens += c.tokens;
    into.token_gaps_coalesced += c.token_gaps_coalesced;
    // The errors are the requests that did not succeed (`ShardState::check`), whose sum did
    // not overflow.
    let errors = part.errors.values().sum();
    let w = &mut into.wall;
    w.first_dispatch = min(w.first_dispatch, part.wall.first_dispatch);
    w.last_dispatch = max(w.last_dispatch, part.wall.last_dispatch);
    for (k, n) in part.errors {
        *into.errors.entry(k).or_insert(0) += n;
    }
    for ((m, mine), (_, theirs)) in into.timings.iter().zip(part.timings.iter()) {
        if mine.count().checked_add(theirs.count()).is_none() {
            return Err(MergeError::Overflow {
                source: source.to_string(),
                what: format!("the samples of {label}{}", m.name),
            });
        }
    }
    into.timings += part.timings;
    Ok(errors)
}

fn min(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    a.into_iter().chain(b).min()
}

fn max(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    a.into_iter().chain(b).max()
}

/// Requests sent per second from the first send to the last over every shard (fixed rate), or
/// completed per second of `duration` (saturation), as the engine computes a run's.
fn achieved(qps: Option<f64>, stats: &RunStats, duration: f64) -> f64 {
    match (qps, stats.wall.first_dispatch, stats.wall.last_dispatch) {
        (None, _, _) => stats.total_requests as f64 / duration.max(1e-9),
        (Some(_), Some(a), Some(b)) if stats.sent >= 2 && b > a => {
            (stats.sent - 1) as f64 / secs_between(a, b)
        }
        _ => 0.0,
    }
}

/// One shard as the merged report lists it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ShardLine {
    pub shard: ShardIndex,
    /// Its schedule's start, RFC 3339.
    pub start: String,
    /// Seconds after the first shard to begin that this one began.
    pub start_offset: f64,
    pub start_late: f64,
    /// Seconds from its start to its end.
    pub elapsed: f64,
    pub total_requests: u64,
    pub errors: u64,
}

/// Why states cannot be merged. Every variant names the states (by their source) or shards at
/// fault.
#[derive(Clone, Debug, PartialEq)]
pub enum MergeError {
    NoStates,
    NewerVersion {
        source: String,
        version: u32,
    },
    /// Fingerprints and the states that carry each.
    DifferentPlans(Vec<(String, Vec<String>)>),
    /// Numbers of shards and the states that say each.
    DifferentSplits(Vec<(u32, Vec<String>)>),
    Shards {
        count: u32,
        duplicates: Vec<(ShardIndex, Vec<String>)>,
        missing: Vec<ShardIndex>,
    },
    /// Timeline intervals (nanoseconds) and the states that have each.
    DifferentIntervals(Vec<(u64, Vec<String>)>),
    Timeline {
        source: String,
        error: PackError,
    },
    /// A state whose numbers a run cannot have (see [`ShardState::check`]).
    Invalid(StateError),
    /// Adding this state would take a sum past what a run can count.
    Overflow {
        source: String,
        what: String,
    },
}

impl fmt::Display for MergeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MergeError::NoStates => f.write_str("no shard states to merge"),
            MergeError::NewerVersion { source, version } => write!(
                f,
                "{source} is a shard state of version {version}, newer than this pacer reads \
                 ({STATE_VERSION}): merge with the pacer that wrote it"
            ),
            MergeError::DifferentPlans(groups) => {
                f.write_str("the states come from different plans (fingerprints differ):")?;
                for (fp, sources) in groups {
                    write!(f, " plan {fp}: {};", sources.join(", "))?;
                }
                Ok(())
            }
            MergeError::DifferentSplits(groups) => {
                f.write_str("the states split the run differently:")?;
                for (n, sources) in groups {
                    write!(f, " into {n} shards: {};", sources.join(", "))?;
                }
                Ok(())
            }
            MergeError::Shards {
                count,
                duplicates,
                missing,
            } => {
                let mut parts = Vec::new();
                for (shard, sources) in duplicates {
                    parts.push(format!(
                        "shard {shard} appears {} times ({})",
                        sources.len(),
                        sources.join(", ")
                    ));
                }
                if !missing.is_empty() {
                    const SHOWN: usize = 20;
                    let mut names: Vec<String> =
                        missing.iter().take(SHOWN).map(|s| s.to_string()).collect();
                    if missing.len() > SHOWN {
                        names.push(format!("and {} more", missing.len() - SHOWN));
                    }
                    parts.push(format!(
                        "{} of {count} shards missing: {}",
                        missing.len(),
                        names.join(", ")
                    ));
                }
                write!(f, "cannot merge: {}", parts.join("; "))
            }
            MergeError::DifferentIntervals(groups) => {
                f.write_str(
                    "the states' timelines have different intervals (--interval must be the \
                     same in every shard):",
                )?;
                for (ns, sources) in groups {
                    let secs = std::time::Duration::from_nanos(*ns).as_secs_f64();
                    write!(f, " {secs} s: {};", sources.join(", "))?;
                }
                Ok(())
            }
            MergeError::Timeline { source, error } => write!(f, "{source}: timeline: {error}"),
            MergeError::Invalid(e) => e.fmt(f),
            MergeError::Overflow { source, what } => write!(
                f,
                "cannot merge {source}: with it, {what} would be more than a run can count"
            ),
        }
    }
}

impl std::error::Error for MergeError {}

/// Groups `items` by a key, keeping each group's sources, in key order.
fn groups<K: Ord + Clone>(
    items: &[(String, ShardState)],
    key: impl Fn(&ShardState) -> K,
) -> Vec<(K, Vec<String>)> {
    let mut map: BTreeMap<K, Vec<String>> = BTreeMap::new();
    for (source, s) in items {
        map.entry(key(s)).or_default().push(source.clone());
    }
    map.into_iter().collect()
}

/// Merges the states of one run, each with the name of where it came from (a file, a log line).
pub fn merge(mut states: Vec<(String, ShardState)>) -> Result<Merged, MergeError> {
    check(&states)?;
    states.sort_by_key(|(_, s)| s.shard);
    let alignment = align(&states);
    let mut states = states.into_iter();
    let Some((source, first)) = states.next() else {
        return Err(MergeError::NoStates);
    };
    let mut fold = Fold::new(&first, alignment);
    fold.add(&source, first)?;
    for (source, s) in states {
        fold.add(&source, s)?;
    }
    Ok(fold.finish())
}

/// Whether `states` can be merged: some, none newer than this pacer, one plan, one split, every
/// shard once. Reads no timings, so it may be given states whose timings are not loaded yet.
pub fn check(states: &[(String, ShardState)]) -> Result<(), MergeError> {
    if states.is_empty() {
        return Err(MergeError::NoStates);
    }
    if let Some((source, s)) = states.iter().find(|(_, s)| s.pacer_state > STATE_VERSION) {
        return Err(MergeError::NewerVersion {
            source: source.clone(),
            version: s.pacer_state,
        });
    }
    if let Some((source, s)) = states.iter().find(|(_, s)| s.pacer_state < STATE_VERSION) {
        return Err(MergeError::Invalid(StateError::OlderVersion {
            source: source.clone(),
            version: u64::from(s.pacer_state),
        }));
    }
    for (source, s) in states {
        s.check(source).map_err(MergeError::Invalid)?;
    }
    let plans = groups(states, |s| s.fingerprint.clone());
    if plans.len() > 1 {
        return Err(MergeError::DifferentPlans(plans));
    }
    let splits = groups(states, |s| s.shard.count());
    if splits.len() > 1 {
        return Err(MergeError::DifferentSplits(splits));
    }
    let count = states[0].1.shard.count();
    // Every index is below the count (a `ShardIndex` cannot be otherwise), so N distinct ones
    // are exactly 0..N.
    let by_index = groups(states, |s| s.shard);
    let duplicates: Vec<_> = by_index
        .iter()
        .filter(|(_, sources)| sources.len() > 1)
        .map(|(shard, sources)| (*shard, sources.clone()))
        .collect();
    let missing: Vec<_> = (0..count)
        .filter_map(|i| ShardIndex::new(i, count))
        .filter(|shard| by_index.binary_search_by_key(shard, |(k, _)| *k).is_err())
        .collect();
    if !duplicates.is_empty() || !missing.is_empty() {
        return Err(MergeError::Shards {
            count,
            duplicates,
            missing,
        });
    }
    // The interval is no part of the plan's fingerprint (it decides nothing about what is
    // sent), but intervals of different lengths cannot be added.
    let intervals = groups(states, |s| {
        let t = &s.stats.timeline;
        t.is_on().then(|| interval_ns(t))
    });
    let intervals: Vec<(u64, Vec<String>)> = intervals
        .into_iter()
        .filter_map(|(ns, sources)| ns.map(|ns| (ns, sources)))
        .collect();
    if intervals.len() > 1 {
        return Err(MergeError::DifferentIntervals(intervals));
    }
    Ok(())
}

/// The merge under way: states [`check`]ed together are added one at a time, in shard order (so
/// the result does not depend on the order they were given in), each dropped once added. Holds
/// the merged statistics and one line per shard, nothing that grows with the requests.
pub struct Fold {
    settings: Settings,
    fingerprint: String,
    shards: u32,
    stats: RunStats,
    threads: usize,
    /// Per shard: its line, and its effective start (the later of its start and its readiness).
    lines: Vec<(ShardLine, UnixNanos)>,
    start: Option<UnixNanos>,
    end: Option<UnixNanos>,
    /// None as soon as one state lacks it: a verdict on part of the run is not the run's.
    health: Option<HealthInput>,
    states: usize,
    alignment: Alignment,
    timeline: TimelineFold,
    /// False as soon as one state lacks the plan's stages.
    staged: bool,
}

impl Fold {
    /// A merge whose plan is `first`'s (the states were checked to share it), placing the
    /// shards' timelines as `alignment` ([`align`] of every state) says.
    pub fn new(first: &ShardState, alignment: Alignment) -> Fold {
        let stages = first.settings.stages.len();
        Fold {
            settings: first.settings.clone(),
            fingerprint: first.fingerprint.clone(),
            shards: first.shard.count(),
            stats: RunStats {
                stages: vec![RunStats::default(); stages],
                ..RunStats::default()
            },
            threads: 0,
            lines: Vec::new(),
            start: None,
            end: None,
            health: None,
            states: 0,
            alignment,
            timeline: TimelineFold::default(),
            staged: true,
        }
    }

    /// Adds one shard; `source` names it if its numbers cannot be added.
    pub fn add(&mut self, source: &str, s: ShardState) -> Result<(), MergeError> {
        let ShardState {
            shard,
            settings,
            mut stats,
            ..
        } = s;
        let wall = stats.wall;
        let start_late = wall.start_late();
        let timeline = std::mem::take(&mut stats.timeline);
        let stages = std::mem::take(&mut stats.stages);
        let health = stats.health.take();
        let scheduling = std::mem::take(&mut stats.scheduling);
        let interrupted = stats.interrupted;
        if let Alignment::Aligned { shifts, .. } = &self.alignment
            && timeline.is_on()
        {
            let shift = shifts.get(shard.index() as usize).copied().unwrap_or(0);
            self.timeline
                .add(&timeline, shift, &stats)
                .map_err(|error| MergeError::Timeline {
                    source: source.to_string(),
                    error,
                })?;
        }
        let total_requests = stats.total_requests;
        let errors = add_checked(&mut self.stats, stats, source, "")?;
        if self.stats.stages.len() == stages.len() {
            for (k, (mine, theirs)) in self.stats.stages.iter_mut().zip(stages).enumerate() {
                let label = format!("stage {}: ", k + 1);
                let elapsed = theirs.elapsed;
                add_checked(mine, theirs, source, &label)?;
                mine.elapsed = elapsed;
            }
        } else {
            // Stages of part of the run are not the run's.
            self.staged = false;
        }
        self.health = match (self.states, self.health.take(), health) {
            (0, _, h) => h,
            (_, Some(mut h), Some(o)) => {
                h.add_shard(o);
                Some(h)
            }
            _ => None,
        };
        self.states += 1;
        // At most `MAX_THREADS` each (`ShardState::check`) over at most `MAX_SHARDS` shards.
        self.threads += settings.threads;
        self.stats.interrupted |= interrupted;
        let worst = std::mem::take(&mut self.stats.scheduling);
        self.stats.scheduling = worst.worst(scheduling);
        self.start = min(self.start, Some(wall.start));
        self.end = max(self.end, Some(wall.end));
        let line = ShardLine {
            shard,
            start: format_rfc3339(wall.start),
            start_offset: 0.0,
            start_late,
            elapsed: secs_between(wall.start, wall.end),
            total_requests,
            errors,
        };
        self.lines.push((line, wall.start.max(wall.ready)));
        Ok(())
    }

    /// The merged run.
    pub fn finish(self) -> Merged {
        let mut settings = self.settings;
        settings.threads = self.threads;
        settings.config.remove("shard");
        settings
            .config
            .insert("threads".into(), json!(self.threads));
        settings.config.insert("shards".into(), json!(self.shards));
        let earliest = self.lines.iter().map(|(_, t)| *t).min().unwrap_or(0);
        let latest = self.lines.iter().map(|(_, t)| *t).max().unwrap_or(0);
        let per_shard = self
            .lines
            .into_iter()
            .map(|(mut line, began)| {
                line.start_offset = secs_between(earliest, began);
                line
            })
            .collect();
        let (start, end) = (self.start.unwrap_or(0), self.end.unwrap_or(0));
        let mut stats = self.stats;
        let elapsed = secs_between(start, end).max(0.0);
        stats.elapsed = Duration::from_secs_f64(elapsed);
        stats.achieved_qps = achieved(settings.qps, &stats, elapsed);
        if !self.staged {
            stats.stages.clear();
        }
        for st in &mut stats.stages {
            st.achieved_qps = achieved(settings.qps, st, st.elapsed.as_secs_f64());
        }
        let sketched = std::iter::once(&stats)
            .chain(&stats.stages)
            .flat_map(|s| s.timings.iter())
            .any(|(_, r)| !r.is_exact());
        stats.health = self.health.map(|mut h| {
            // The whole plan's mean interval between sends, not one shard's.
            h.send_interval = h
                .send_interval
                .and(settings.qps)
                .filter(|_| settings.count > 0)
                .map(|_| settings.duration / settings.count as f64);
            h
        });
        if let Alignment::Aligned { interval_ns, .. } = &self.alignment {
            stats.timeline = self.timeline.finish(*interval_ns);
        }
        // The monotonic clock is each machine's own: only Unix time places the whole run
        // (`to_json` leaves the monotonic reading out).
        stats.clock = Clock {
            monotonic_start_ns: 0,
            unix_start: start as f64 / 1e9,
        };
        Merged {
            settings,
            fingerprint: self.fingerprint,
            shards: self.shards,
            stats,
            start_unix_ns: start,
            end_unix_ns: end,
            start_skew: secs_between(earliest, latest),
            per_shard,
            percentile_rank_error: sketched.then_some(RANK_ERROR),
            alignment: self.alignment,
        }
    }
}

impl Merged {
    /// The fields a merged report has beyond a run's: `shards` (one line per shard),
    /// `start_skew`, `fingerprint`, `timeline_alignment`, and `percentile_rank_error` when a
    /// sketch was read.
    pub fn shard_fields(&self) -> Vec<(&'static str, Value)> {
        let mut out = vec![
            ("shards", json!(self.per_shard)),
            ("start_skew", json!(self.start_skew)),
            ("fingerprint", json!(self.fingerprint)),
            ("timeline_alignment", self.alignment.to_json()),
        ];
        if let Some(e) = self.percentile_rank_error {
            out.push(("percentile_rank_error", json!(e)));
        }
        out
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::engine::timeline::Interval;
    use crate::engine::{ErrorKey, Timeline};
    use crate::metric::Id;
    use crate::plan::defaults::MAX_STATE_BYTES;
    use crate::report::StageSettings;
    use crate::rng::SplitMix64;
    use crate::shard::state::{CLOCK, STATE_VERSION, StateError};
    use crate::stats::EXACT_LIMIT;
    use crate::stats::Recorder;
    use crate::stats::percentile_linear;
    use crate::wall::WallTimes;
    use serde_json::Map;

    const SEC: i64 = 1_000_000_000;
    const T0: i64 = 1_767_225_600 * SEC;

    fn settings(threads: usize) -> Settings {
        let mut config = Map::new();
        config.insert("url".into(), json!("http://127.0.0.1:9/"));
        config.insert("threads".into(), json!(threads));
        Settings {
            config,
            url: "http://127.0.0.1:9/".into(),
            method: "GET".into(),
            qps: Some(1000.0),
            duration: 10.0,
            count: 10_000,
            seed: None,
            num_workers: 30,
            threads,
            timeout: 2.0,
            insecure: false,
            realtime: false,
            tls: false,
            host: "127.0.0.1".into(),
            port: 9,
            stream: false,
            stages: Vec::new(),
            ramp: false,
            trace: false,
            llm: None,
            thresholds: Vec::new(),
            goodput: Vec::new(),
            targets: Vec::new(),
            sessions: None,
        }
    }

    /// Timings as the engine makes them (whole nanoseconds), with a long tail.
    fn samples(seed: u64, n: usize) -> Vec<f64> {
        let mut rng = SplitMix64::new(seed);
        (0..n)
            .map(|_| {
                let u = rng.next_f64();
                let ms = 1.0
                    + 4.0 * u
                    + if u > 0.98 {
                        200.0 * rng.next_f64()
                    } else {
                        0.0
                    };
                std::time::Duration::from_nanos((ms * 1e6) as u64).as_secs_f64()
            })
            .collect()
    }

    fn recorder(xs: &[f64]) -> Recorder {
        let mut r = Recorder::new();
        xs.iter().for_each(|&x| r.record(x));
        r
    }

    fn shard_samples(i: u32, k: usize) -> Vec<f64> {
        samples(u64::from(i) * 1000 + k as u64, k)
    }

    /// Shard `i` of `n` with `k` response times of its own seed, started `late_ms` after `T0`.
    pub(in crate::shard) fn state(i: u32, n: u32, k: usize, late_ms: i64) -> ShardState {
        let xs = shard_samples(i, k);
        let errors = u64::from(i) + 3;
        let mut stats = RunStats {
            total_requests: k as u64 + errors,
            successes: k as u64,
            sent: k as u64 + errors - 2,
            bytes_received: 100 * k as u64,
            connections_opened: 5,
            good_requests: k as u64 / 2,
            token_gaps: 10 * k as u64,
            token_gaps_coalesced: u64::from(i),
            wall: WallTimes {
                start: T0,
                ready: T0 + late_ms * 1_000_000 - 40_000_000,
                end: T0 + 10 * SEC + i64::from(i) * 1_000_000,
                first_dispatch: Some(T0 + i64::from(i) * 1_000_000),
                last_dispatch: Some(T0 + 9 * SEC + i64::from(i) * 1_000_000),
                dispatched: k as u64 + errors - 2,
            },
            health: Some(HealthInput {
                threads: vec![crate::health::ThreadUsage {
                    cpu: 0.5 + f64::from(i),
                    wall: 10.0,
                    involuntary_switches: 3,
                }],
                sent: k as u64 + errors - 2,
                not_sent: 2,
                late_p99: Some(f64::from(i + 1) / 1e5),
                // A shard's own view; the merge puts the whole plan's interval.
                send_interval: Some(0.5),
                num_workers: 10,
            }),
            timeline: timeline(i, k),
            ..RunStats::default()
        };
        stats.timings[Id::ResponseTime] = recorder(&xs);
        stats.timings[Id::Latency] = recorder(&xs[..k / 2]);
        stats.errors.insert(ErrorKey::Status(400), u64::from(i) + 1);
        stats.errors.insert(ErrorKey::Name("timeout".into()), 2);
        ShardState {
            pacer_state: STATE_VERSION,
            pacer_version: "test".into(),
            fingerprint: "f00d".into(),
            shard: ShardIndex::new(i, n).unwrap(),
            clock: CLOCK.into(),
            settings: settings(2),
            stats,
        }
    }

    /// Shard `i`'s timeline: its `k` successes spread over ten 1 s intervals, with a response
    /// time each.
    pub(in crate::shard) fn timeline(i: u32, k: usize) -> Timeline {
        let xs = shard_samples(i, k);
        let mut intervals = vec![Interval::default(); 10];
        for (j, &x) in xs.iter().enumerate() {
            let iv = &mut intervals[j % 10];
            iv.n.scheduled += 1;
            iv.n.sent += 1;
            iv.n.completed += 1;
            iv.n.successes += 1;
            iv.response_time.record(x);
        }
        Timeline::rebuilt(
            std::time::Duration::from_secs(1),
            intervals,
            10 * SEC as u64,
        )
    }

    fn named(states: Vec<ShardState>) -> Vec<(String, ShardState)> {
        states
            .into_iter()
            .map(|s| (format!("shard-{}.json", s.shard.index()), s))
            .collect()
    }

    /// Every response time of the states' shards (regenerated from their seeds), ascending.
    fn union(states: &[ShardState]) -> Vec<f64> {
        let mut all: Vec<f64> = states
            .iter()
            .flat_map(|s| shard_samples(s.shard.index(), s.stats.successes as usize))
            .collect();
        all.sort_by(f64::total_cmp);
        all
    }

    #[test]
    fn counts_add_and_times_span_the_run() {
        let states: Vec<_> = (0..3)
            .map(|i| state(i, 3, 1000, i64::from(i) * 10))
            .collect();
        let m = merge(named(states.clone())).unwrap();
        assert_eq!(m.shards, 3);
        assert_eq!(m.stats.total_requests, 3000 + 3 + 4 + 5);
        assert_eq!(m.stats.successes, 3000);
        assert_eq!(m.stats.bytes_received, 300_000);
        assert_eq!(m.stats.errors[&ErrorKey::Status(400)], 1 + 2 + 3);
        assert_eq!(m.stats.errors[&ErrorKey::Name("timeout".into())], 6);
        assert_eq!(m.stats.timings[Id::ResponseTime].count(), 3000);
        assert_eq!(m.stats.timings[Id::Latency].count(), 1500);
        // Earliest start to latest end: shard 2 ends 2 ms after 10 s.
        assert!(
            (m.stats.elapsed.as_secs_f64() - 10.002).abs() < 1e-9,
            "{:?}",
            m.stats.elapsed
        );
        // Shard 0 and 1 were ready before the start (on time); shard 2 began 20 − 40 < 0 ms,
        // also on time: no skew. Then make shard 1 late by 150 ms.
        assert_eq!(m.start_skew, 0.0);
        let mut late = states.clone();
        late[1].stats.wall.ready = T0 + 150_000_000;
        let m = merge(named(late)).unwrap();
        assert!((m.start_skew - 0.15).abs() < 1e-9, "{}", m.start_skew);
        assert_eq!(m.per_shard[1].start_offset, m.start_skew);
        assert_eq!(m.per_shard[1].start_late, 0.15);
        assert_eq!(m.per_shard[0].start, "2026-01-01T00:00:00.000000Z");
        assert_eq!(m.per_shard[2].errors, 5);
        // Dispatches from T0 to T0 + 9.002 s.
        let dispatched = m.stats.sent as f64;
        assert!((m.stats.achieved_qps - (dispatched - 1.0) / 9.002).abs() < 1e-6);
        assert_eq!(m.settings.config["shards"], json!(3));
        assert_eq!(m.settings.config["threads"], json!(6));
        assert_eq!(m.percentile_rank_error, None);
        let fields: Map<String, Value> = m
            .shard_fields()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        assert_eq!(fields["shards"][1]["shard"], json!("1/3"));
        assert!(!fields.contains_key("percentile_rank_error"));
        assert_eq!(m.stats.good_requests, 1500);
        // Token gaps read together add up like every count (they judge the merged run's health).
        assert_eq!(m.stats.token_gaps, 30_000);
        assert_eq!(m.stats.token_gaps_coalesced, 3);
        // What the servers' usage said adds too (before the state was the run's own statistics,
        // the merge dropped it: every merged `token_mismatch` and `cached_tokens` was empty).
        let mut said = states;
        for (i, s) in said.iter_mut().enumerate() {
            s.stats.tokens.checked = 10 + i as u64;
            s.stats.tokens.cached_requests = 2;
            s.stats.tokens.cached_tokens = 300;
        }
        let t = merge(named(said)).unwrap().stats.tokens;
        assert_eq!(
            (t.checked, t.cached_requests, t.cached_tokens),
            (33, 6, 900)
        );
    }

    /// The whole run is judged from every shard's threads and counts; the lateness is bounded by
    /// the largest shard p99. A state without health leaves the merged run without a verdict.
    #[test]
    fn health_is_judged_on_the_whole_run() {
        let states: Vec<_> = (0..3).map(|i| state(i, 3, 1000, 0)).collect();
        let m = merge(named(states.clone())).unwrap();
        let h = m.stats.health.clone().unwrap();
        assert_eq!(h.threads.len(), 3);
        assert_eq!(h.sent, m.stats.sent);
        assert_eq!(h.not_sent, 6);
        assert_eq!(h.late_p99, Some(3e-5));
        assert_eq!(h.send_interval, Some(10.0 / 10_000.0));
        assert_eq!(h.num_workers, 30);
        // Shard 2 used 2.5 s of CPU in 10 s; none is past a rule.
        assert_eq!(crate::health::judge(h).verdict, crate::health::Verdict::Ok);
        let mut busy = states.clone();
        if let Some(h) = busy[1].stats.health.as_mut() {
            h.threads[0].cpu = 9.5;
        }
        let h = merge(named(busy)).unwrap().stats.health.unwrap();
        assert_eq!(
            crate::health::judge(h).reasons[0],
            "thread 1 at 95% of a core, and 6 requests not sent: a thread that busy is slow to \
             free its connections"
        );
        let mut old = states;
        old[2].stats.health = None;
        assert!(merge(named(old)).unwrap().stats.health.is_none());
    }

    #[test]
    fn exact_while_the_union_fits_and_independent_of_order() {
        let states: Vec<_> = (0..7).map(|i| state(i, 7, 9000 + i as usize, 0)).collect();
        let m = merge(named(states.clone())).unwrap();
        let rt = &m.stats.timings[Id::ResponseTime];
        assert!(rt.is_exact() && rt.count() < EXACT_LIMIT as u64);
        let all = union(&states);
        let s = rt.summary();
        for (q, got) in [(50.0, s.p50), (90.0, s.p90), (97.0, s.p97), (99.0, s.p99)] {
            assert_eq!(got, Some(percentile_linear(&all, q)), "p{q}");
        }
        assert_eq!(s.min, all.first().copied());
        assert_eq!(s.max, all.last().copied());
        // The states in another order merge to the very same recorders.
        let mut shuffled = named(states);
        shuffled.reverse();
        shuffled.swap(1, 4);
        let again = merge(shuffled).unwrap();
        for ((family, r), (_, again)) in m.stats.timings.iter().zip(again.stats.timings.iter()) {
            assert_eq!(
                crate::stats::pack::pack(r),
                crate::stats::pack::pack(again),
                "{}",
                family.name
            );
        }
    }

    /// Past the exact limit the merged percentiles come from the sketch, within the rank error
    /// the merged run states, however many shards fold into it.
    #[test]
    fn past_the_exact_limit_percentiles_stay_within_the_stated_rank_error() {
        for (n, k) in [(3u32, 40_000usize), (7, 30_000), (50, 20_000), (4, 150_000)] {
            let states: Vec<_> = (0..n).map(|i| state(i, n, k, 0)).collect();
            let m = merge(named(states.clone())).unwrap();
            let rt = &m.stats.timings[Id::ResponseTime];
            assert!(!rt.is_exact(), "{n}x{k}");
            let bound = m.percentile_rank_error.expect("a sketch was read");
            assert_eq!(bound, RANK_ERROR);
            let all = union(&states);
            let total = all.len() as f64;
            let s = rt.summary();
            for (q, got) in [(50.0, s.p50), (90.0, s.p90), (97.0, s.p97), (99.0, s.p99)] {
                let v = got.unwrap();
                let below = all.partition_point(|&x| x < v) as f64;
                let upto = all.partition_point(|&x| x <= v) as f64;
                let want = q / 100.0 * (total - 1.0);
                // v stands at the ranks [below, upto); an interpolated v between two samples at
                // the rank between them.
                let miss = (below - 1.0 - want).max(want - upto).max(0.0);
                assert!(
                    miss / total <= bound,
                    "{n}x{k} p{q}: rank error {:.5}% > {}%",
                    miss / total * 100.0,
                    bound * 100.0
                );
            }
            assert_eq!(s.count, all.len() as u64);
            assert_eq!(s.min, all.first().copied());
            assert_eq!(s.max, all.last().copied());
            let mean = all.iter().sum::<f64>() / total;
            assert!((s.mean.unwrap() - mean).abs() < 1e-12, "mean");
        }
    }

    /// Shards on one start merge into one timeline: every interval the sum of the shards'; a
    /// state without one (its run never started) still merges, and the run then has none,
    /// saying why; a state of an older version is refused by name.
    #[test]
    fn timelines_merge_interval_by_interval_and_old_states_omit_them() {
        let states: Vec<_> = (0..3).map(|i| state(i, 3, 500 + i as usize, 0)).collect();
        let m = merge(named(states.clone())).unwrap();
        assert!(m.stats.timeline.is_on(), "a timeline");
        let t = &m.stats.timeline;
        assert_eq!(t.intervals().len(), 10);
        for (k, iv) in t.intervals().iter().enumerate() {
            let mut want = Interval::default();
            for i in 0..3 {
                want += &timeline(i, 500 + i as usize).intervals()[k];
            }
            assert_eq!(*iv, want, "interval {k}");
        }
        let sent: u64 = t.intervals().iter().map(|iv| iv.n.sent).sum();
        assert_eq!(sent, 1503);
        assert!(matches!(
            m.alignment,
            Alignment::Aligned { off_grid_ns: 0, .. }
        ));

        // A version-1 line, as the pacer before the timeline wrote it: refused, as is version 2.
        let mut v: Value = serde_json::from_str(&states[1].to_line()).unwrap();
        v["stats"].as_object_mut().unwrap().remove("timeline");
        for version in [1, 2] {
            v["pacer_state"] = json!(version);
            let e = ShardState::parse(&v.to_string(), "old.json").unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "old.json is a shard state of version {version}, older than this pacer \
                     merges (version 4 is needed): re-run the shards with this build"
                )
            );
            let mut stale = states.clone();
            stale[1].pacer_state = version;
            assert_eq!(
                merge(named(stale)).unwrap_err(),
                MergeError::Invalid(StateError::OlderVersion {
                    source: "shard-1.json".into(),
                    version: u64::from(version)
                })
            );
        }
        v["pacer_state"] = json!(STATE_VERSION);
        let old = ShardState::parse(&v.to_string(), "old.json").unwrap();
        assert!(old.stats.timeline.is_off());
        let mut mixed = named(states.clone());
        mixed[1] = ("old.json".into(), old);
        let m = merge(mixed).unwrap();
        assert!(!m.stats.timeline.is_on());
        assert_eq!(m.stats.successes, 1503, "the rest merges as before");
        let Alignment::Omitted { why, .. } = &m.alignment else {
            panic!("{:?}", m.alignment)
        };
        assert!(why.starts_with("old.json carries no timeline"), "{why}");
        assert!(why.contains("never started"), "{why}");
    }

    /// A staged plan's stages add over the shards like the whole run; a state without them
    /// leaves the merged run without stages rather than with part of them.
    #[test]
    fn stages_merge_like_the_run_and_need_every_state() {
        let staged = |i: u32| {
            let mut s = state(i, 2, 100, 0);
            s.settings.stages = [(500.0, 0.0), (1500.0, 5.0)]
                .map(|(qps, start)| StageSettings {
                    qps,
                    duration: 5.0,
                    from_qps: qps,
                    to_qps: qps,
                    start,
                })
                .to_vec();
            s.stats.stages = (0..2u32)
                .map(|k| {
                    let xs = shard_samples(i * 10 + k, 40 + 10 * k as usize);
                    let mut st = RunStats {
                        total_requests: xs.len() as u64 + u64::from(k + 1),
                        successes: xs.len() as u64,
                        sent: xs.len() as u64 + u64::from(k + 1),
                        elapsed: Duration::from_secs(5),
                        // Shard i's sends in stage k: from 5k s + i ms to 5k + 4 s + i ms.
                        wall: WallTimes {
                            first_dispatch: Some(
                                T0 + i64::from(k) * 5 * SEC + i64::from(i) * 1_000_000,
                            ),
                            last_dispatch: Some(
                                T0 + (i64::from(k) * 5 + 4) * SEC + i64::from(i) * 1_000_000,
                            ),
                            ..WallTimes::default()
                        },
                        ..RunStats::default()
                    };
                    st.timings[Id::ResponseTime] = recorder(&xs);
                    st.errors.insert(ErrorKey::Status(503), u64::from(k + 1));
                    st
                })
                .collect();
            s
        };
        let m = merge(named(vec![staged(0), staged(1)])).unwrap();
        assert_eq!(m.stats.stages.len(), 2);
        for (k, st) in m.stats.stages.iter().enumerate() {
            let n = 2 * (40 + 10 * k as u64);
            assert_eq!(st.successes, n);
            assert_eq!(st.errors[&ErrorKey::Status(503)], 2 * (k as u64 + 1));
            assert_eq!(st.timings[Id::ResponseTime].count(), n);
            assert_eq!(st.elapsed.as_secs_f64(), 5.0);
            // Both shards' sends, from shard 0's first to shard 1's last: 4.001 s.
            let sent = st.sent as f64;
            assert!(
                (st.achieved_qps - (sent - 1.0) / 4.001).abs() < 1e-9,
                "{}",
                st.achieved_qps
            );
        }
        let mut union: Vec<f64> = (0..2).flat_map(|i| shard_samples(i * 10 + 1, 50)).collect();
        union.sort_by(f64::total_cmp);
        assert_eq!(
            m.stats.stages[1].timings[Id::ResponseTime].summary().p50,
            Some(percentile_linear(&union, 50.0))
        );
        let mut old = staged(1);
        old.stats.stages.clear();
        assert!(
            merge(named(vec![staged(0), old]))
                .unwrap()
                .stats
                .stages
                .is_empty()
        );
        // A stage's timing family that does not unpack: the state is refused when read.
        let mut torn: Value = serde_json::from_str(&staged(1).to_line()).unwrap();
        torn["stats"]["stages"][1]["timings"]["latency"] = json!("AQ==");
        let e = ShardState::parse(&torn.to_string(), "shard-1.json").unwrap_err();
        assert!(
            e.to_string()
                .contains("timing family latency: timing data ends too early"),
            "{e}"
        );
    }

    #[test]
    fn refusals_name_what_is_wrong() {
        let three = || (0..3).map(|i| state(i, 3, 10, 0)).collect::<Vec<_>>();
        assert_eq!(merge(Vec::new()).unwrap_err(), MergeError::NoStates);

        let mut other = three();
        other[2].fingerprint = "beef".into();
        let e = merge(named(other)).unwrap_err();
        assert_eq!(
            e,
            MergeError::DifferentPlans(vec![
                ("beef".into(), vec!["shard-2.json".into()]),
                (
                    "f00d".into(),
                    vec!["shard-0.json".into(), "shard-1.json".into()]
                ),
            ])
        );
        let text = e.to_string();
        assert!(
            text.contains("different plans") && text.contains("plan beef: shard-2.json"),
            "{text}"
        );

        let mut dup = three();
        dup[2] = state(1, 3, 10, 0);
        let e = merge(named(dup)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot merge: shard 1/3 appears 2 times (shard-1.json, shard-1.json); \
             1 of 3 shards missing: 2/3"
        );
        let mut missing = three();
        missing.remove(0);
        assert_eq!(
            merge(named(missing)).unwrap_err().to_string(),
            "cannot merge: 1 of 3 shards missing: 0/3"
        );
        let many: Vec<_> = (0..3).map(|i| state(i, 100, 10, 0)).collect();
        let text = merge(named(many)).unwrap_err().to_string();
        assert!(
            text.contains("97 of 100 shards missing: 3/100, 4/100") && text.contains("and 77 more"),
            "{text}"
        );

        let mut split = three();
        split.push(state(3, 4, 10, 0));
        let e = merge(named(split)).unwrap_err();
        assert!(matches!(&e, MergeError::DifferentSplits(g) if g.len() == 2));
        assert!(e.to_string().contains("into 4 shards: shard-3.json"), "{e}");

        let mut newer = three();
        newer[1].pacer_state = STATE_VERSION + 1;
        assert_eq!(
            merge(named(newer)).unwrap_err(),
            MergeError::NewerVersion {
                source: "shard-1.json".into(),
                version: STATE_VERSION + 1
            }
        );

        let mut intervals = three();
        let t = &intervals[2].stats.timeline;
        intervals[2].stats.timeline = Timeline::rebuilt(
            Duration::from_millis(500),
            t.intervals().to_vec(),
            t.last_ns(),
        );
        let e = merge(named(intervals)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the states' timelines have different intervals (--interval must be the same in \
             every shard): 0.5 s: shard-2.json; 1 s: shard-0.json, shard-1.json;"
        );

        // A timeline or a timing family that does not unpack: refused when read, by name.
        let line: Value = serde_json::from_str(&three()[1].to_line()).unwrap();
        for (field, key, says) in [
            (
                "timeline",
                "intervals",
                "timeline: timing data ends too early",
            ),
            (
                "timings",
                "latency",
                "timing family latency: timing data ends too early",
            ),
        ] {
            let mut v = line.clone();
            v["stats"][field][key] = json!("AQ==");
            let e = ShardState::parse(&v.to_string(), "shard-1.json").unwrap_err();
            assert!(
                matches!(&e, StateError::NotAState { source, why }
                    if source == "shard-1.json" && why.contains(says)),
                "{e:?}"
            );
        }
    }

    #[test]
    fn states_round_trip_through_lines_and_logs() {
        let s = state(1, 2, 500, 0);
        let line = s.to_line();
        assert!(line.starts_with("{\"pacer_state\":4,") && !line.contains('\n'));
        assert_eq!(ShardState::parse(&line, "x").unwrap().to_line(), line);

        // `kubectl logs --prefix` of two pods, with their text reports around the states.
        let s0 = state(0, 2, 300, 0);
        let log = format!(
            "pacer: GET http://x/\n  requests 300\n[pod/run-0-abc/pacer] {}\n[pod/run-1-def/pacer] requests 500\n[pod/run-1-def/pacer] {line}\n",
            s0.to_line()
        );
        let got = ShardState::read_lines(log.as_bytes(), "stdin", MAX_STATE_BYTES).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, "stdin line 3");
        assert_eq!(
            (got[0].1.to_line(), got[1].1.to_line()),
            (s0.to_line(), line.clone())
        );
        let e = ShardState::read_lines("nothing here\n".as_bytes(), "stdin", MAX_STATE_BYTES)
            .unwrap_err();
        assert_eq!(
            e,
            StateError::NoneFound {
                source: "stdin".into()
            }
        );

        let newer = line.replacen("{\"pacer_state\":4,", "{\"pacer_state\":5,", 1);
        assert_eq!(
            ShardState::parse(&newer, "b.json").unwrap_err(),
            StateError::NewerVersion {
                source: "b.json".into(),
                version: 5
            }
        );
        // A newer state is refused by its version even when the rest is unreadable to us.
        assert!(matches!(
            ShardState::parse("{\"pacer_state\":9,\"x\":[]}", "c").unwrap_err(),
            StateError::NewerVersion { version: 9, .. }
        ));
        let e = ShardState::parse("{\"hello\":1}", "d.json").unwrap_err();
        assert!(
            e.to_string().contains("d.json is not a pacer shard state"),
            "{e}"
        );
        let bad_shard = line.replacen("\"shard\":\"1/2\"", "\"shard\":\"2/2\"", 1);
        assert!(ShardState::parse(&bad_shard, "e").is_err());

        // Files: one line, pretty-printed, or a saved log.
        let dir = std::env::temp_dir().join(format!("pacer-state-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let one = dir.join("one.json");
        std::fs::write(&one, format!("{line}\n")).unwrap();
        assert_eq!(
            ShardState::read_file(&one, MAX_STATE_BYTES).unwrap()[0]
                .1
                .to_line(),
            line
        );
        let pretty = dir.join("pretty.json");
        std::fs::write(&pretty, serde_json::to_string_pretty(&s).unwrap()).unwrap();
        assert_eq!(
            ShardState::read_file(&pretty, MAX_STATE_BYTES).unwrap()[0]
                .1
                .to_line(),
            line
        );
        let log_file = dir.join("pods.log");
        std::fs::write(&log_file, &log).unwrap();
        assert_eq!(
            ShardState::read_file(&log_file, MAX_STATE_BYTES)
                .unwrap()
                .len(),
            2
        );
        let e = ShardState::read_file(&dir.join("absent.json"), MAX_STATE_BYTES).unwrap_err();
        assert!(matches!(e, StateError::Read { .. }));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// `pacer merge` trusts no number in a state (issue 19): one a run cannot have written is
    /// refused by the state's name and the field, never a panic or a wrapped sum.
    #[test]
    fn states_whose_numbers_no_run_has_are_refused_by_name() {
        type Break = Box<dyn Fn(&mut ShardState)>;
        let cases: Vec<(&str, Break)> = vec![
            (
                "settings.duration is 1e20",
                Box::new(|s| s.settings.duration = 1e20),
            ),
            (
                "settings.timeout is 1e20",
                Box::new(|s| s.settings.timeout = 1e20),
            ),
            (
                "settings.timeout is -1.0",
                Box::new(|s| s.settings.timeout = -1.0),
            ),
            (
                "settings.qps is 1e300",
                Box::new(|s| s.settings.qps = Some(1e300)),
            ),
            (
                "successes ≤ dispatched ≤ requests",
                Box::new(|s| s.stats.successes = s.stats.total_requests + 1),
            ),
            (
                "successes ≤ dispatched ≤ requests",
                Box::new(|s| s.stats.sent = s.stats.total_requests + 1),
            ),
            (
                "good requests",
                Box::new(|s| s.stats.good_requests = s.stats.successes + 1),
            ),
            (
                "the servers' token usage counts more requests than the successes",
                Box::new(|s| s.stats.tokens.checked = s.stats.successes + 1),
            ),
            (
                "do not add up to the 4 requests that did not succeed",
                Box::new(|s| {
                    s.stats
                        .errors
                        .insert(ErrorKey::Name("timeout".into()), u64::MAX);
                }),
            ),
            (
                "start_late is 40000000.0",
                Box::new(|s| s.stats.wall.start = s.stats.wall.ready - 40_000_000 * SEC),
            ),
            (
                "ends before it was ready",
                Box::new(|s| s.stats.wall.end = s.stats.wall.ready - 1),
            ),
            (
                "not in order before the end",
                Box::new(|s| s.stats.wall.last_dispatch = Some(T0 - SEC)),
            ),
            (
                "not in order before the end",
                Box::new(|s| s.stats.wall.first_dispatch = None),
            ),
            (
                "more than a run may have",
                Box::new(|s| {
                    s.stats.total_requests = u64::MAX;
                    s.stats.sent = u64::MAX;
                    let n = u64::MAX - s.stats.successes - 2;
                    s.stats.errors.insert(ErrorKey::Status(400), n);
                }),
            ),
            (
                "health.threads[0].cpu is -1.0",
                Box::new(|s| {
                    if let Some(h) = s.stats.health.as_mut() {
                        h.threads[0].cpu = -1.0;
                    }
                }),
            ),
            (
                "settings.stages[0].duration is 1e20",
                Box::new(|s| {
                    s.settings.stages = vec![StageSettings {
                        qps: 5.0,
                        duration: 1e20,
                        from_qps: 5.0,
                        to_qps: 5.0,
                        start: 0.0,
                    }];
                }),
            ),
        ];
        for (says, change) in cases {
            let mut states = vec![state(0, 2, 3, 0), state(1, 2, 4, 0)];
            change(&mut states[1]);
            let e = merge(named(states.clone())).unwrap_err();
            let text = e.to_string();
            assert!(
                matches!(&e, MergeError::Invalid(StateError::Invalid { source, .. })
                    if source == "shard-1.json"),
                "{says}: {e:?}"
            );
            assert!(
                text.starts_with("shard-1.json is not a state a run can have written: ")
                    && text.contains(says),
                "{says}: {text}"
            );
            // Read from its line, the same refusal.
            let e = ShardState::parse(&states[1].to_line(), "s.json").unwrap_err();
            assert!(e.to_string().contains(says), "{says}: {e}");
        }
        // Before: merged, and the family dropped from the report without a word.
        let mut v: Value = serde_json::from_str(&state(1, 2, 4, 0).to_line()).unwrap();
        v["stats"]["timings"]["nope"] = v["stats"]["timings"]["response_time"].clone();
        let e = ShardState::parse(&v.to_string(), "s.json").unwrap_err();
        assert!(
            e.to_string()
                .contains("nope is not a timing family (`pacer metrics` lists them)"),
            "{e}"
        );
    }

    /// Sums over shards are checked: two states each at the top of a count are refused, naming
    /// the state that would take the sum past it (before, 2 × u64::MAX wrapped to 2^64 − 2).
    #[test]
    fn sums_past_what_a_run_can_count_are_refused() {
        let mut states = vec![state(0, 2, 3, 0), state(1, 2, 4, 0)];
        for s in &mut states {
            s.stats.bytes_received = u64::MAX;
        }
        assert_eq!(
            merge(named(states)).unwrap_err().to_string(),
            "cannot merge shard-1.json: with it, bytes_received would be more than a run can \
             count"
        );
        // Each state within a run's 2^53 requests, both together past it.
        let big = |i: u32| {
            let mut s = state(i, 2, 3, 0);
            let n = 1u64 << 52;
            s.stats.total_requests = n + 1;
            s.stats.sent = n;
            s.stats.errors.insert(ErrorKey::Status(400), n + 1 - 3 - 2);
            if let Some(h) = s.stats.health.as_mut() {
                h.sent = n;
            }
            s
        };
        let e = merge(named(vec![big(0), big(1)])).unwrap_err();
        assert_eq!(
            e,
            MergeError::Overflow {
                source: "shard-1.json".into(),
                what: "total_requests".into()
            }
        );
        // A timeline that counts more requests than its state is refused, not added.
        let mut lying = state(1, 2, 4, 0);
        lying.stats.timeline = timeline(1, 400);
        let e = merge(named(vec![state(0, 2, 3, 0), lying])).unwrap_err();
        assert!(
            matches!(&e, MergeError::Timeline { source, error: PackError::Inconsistent(_) }
                if source == "shard-1.json"),
            "{e:?}"
        );
    }

    /// A line longer than the limit is refused at the limit, read no further: an endless
    /// stream (`pacer merge - < /dev/zero`) ends in a named error, not an abort on allocation.
    #[test]
    fn lines_and_files_past_the_size_limit_are_refused() {
        let endless = std::io::BufReader::new(std::io::repeat(0));
        assert_eq!(
            ShardState::read_lines(endless, "stdin", 1000).unwrap_err(),
            StateError::TooLarge {
                source: "stdin line 1".into(),
                limit: 1000
            }
        );
        let line = state(0, 1, 50, 0).to_line();
        let cap = line.len() as u64;
        let noise = "x".repeat(line.len() + 1);
        let log = format!("{line}\n{noise}\n");
        let e = ShardState::read_lines(log.as_bytes(), "stdin", cap).unwrap_err();
        assert!(
            e.to_string()
                .starts_with(&format!("stdin line 2 is longer than {cap} bytes")),
            "{e}"
        );
        // A file of two states, longer than the limit but each line within it: read as a log.
        let dir = std::env::temp_dir().join(format!("pacer-state-cap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let two = dir.join("two.log");
        let other = state(0, 1, 49, 0).to_line();
        std::fs::write(&two, format!("{line}\n{other}\n")).unwrap();
        let got = ShardState::read_file(&two, cap).unwrap();
        assert_eq!(got.len(), 2);
        let e = ShardState::read_file(&two, cap - 1).unwrap_err();
        assert!(matches!(e, StateError::TooLarge { .. }), "{e:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
