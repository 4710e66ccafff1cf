//! What one engine thread measured ([`LaneStats`]), kept from one [`Completed`] record per request
//! through [`LaneStats::record`], its single way in, and merged across threads with `+=` once at
//! the end. The run's totals and the report's names are `engine::finish`'s; the summaries
//! (means, percentiles) are `crate::stats`'.
//!
//! `record` is the hook for everything per request (here the timeline; the lane adds the live
//! view and the per-request export beside it): it sees each request once, whatever its fate.
//! Here it also decides goodput (a success that met
//! every objective of `--goodput`) and files the request under its stage (the one its intended
//! time falls in), whose own [`LaneStats`] keep the same counts and timings. The generator's own
//! lateness and each thread's CPU are kept beside, for the run's `health`.
//!
//! Two per-token families come from the gaps the exchange hands out with a response's record
//! ([`ChunkGap`]s, passed to `record` beside it): `inter_chunk_latency` takes every gap between
//! two content chunks of a response, and `inter_token_latency` takes that gap divided by the
//! tokens the later chunk carried, once per token, so its samples are per token and a chunk of 3
//! tokens after 30 ms counts as three tokens 10 ms apart. With one token per chunk the two are the
//! same. Like every per-request family they are kept for successes only (a failed stream has no
//! time to first token, so it has no token gaps either), and in the request's stage as in the run.
//! Token gaps read together (one chunk) are counted beside: `token_gaps`, `token_gaps_coalesced`.

use std::collections::HashMap;
use std::ops::{AddAssign, Index, IndexMut};
use std::time::{Duration, Instant};

use super::exchange::Sink;
use super::outcome::{ChunkGap, Completed, Failure, Outcome, TokenSource};
use super::sched::Scheduling;
use super::timeline::Timeline;
use super::tokens::TokenCounts;
use super::usage::ThreadUsage;
use crate::metric::{Id, METRICS, Metric};
use crate::plan::Plan;
use crate::slo::goodput::{self, Objective};
use crate::stats::{Recorder, Sample};

/// Every timing family of [`crate::metric`], one recorder each, indexed by [`Id`]: a family added
/// to `metric` (its `Id` variant, its `METRICS` entry, its formula in [`request_values`]) gets its
/// recorder here with no other change.
#[derive(Clone, Debug, Default)]
pub struct Timings([Recorder; Id::ALL.len()]);

impl Timings {
    /// Every family with its recorder, in [`crate::metric::METRICS`]' order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static Metric, &Recorder)> {
        METRICS.iter().zip(&self.0)
    }
}

impl Index<Id> for Timings {
    type Output = Recorder;
    fn index(&self, id: Id) -> &Recorder {
        &self.0[id as usize]
    }
}

impl IndexMut<Id> for Timings {
    fn index_mut(&mut self, id: Id) -> &mut Recorder {
        &mut self.0[id as usize]
    }
}

impl AddAssign for Timings {
    fn add_assign(&mut self, o: Timings) {
        for (mine, theirs) in self.0.iter_mut().zip(o.0) {
            mine.merge(theirs);
        }
    }
}

/// Most per-token samples one chunk adds to `inter_token_latency`: a guard against a nonsense
/// per-chunk usage figure (speculative decoding sends a handful of tokens per chunk, not
/// thousands). A chunk counted with more tokens still adds its gap divided by all of them.
pub const MAX_TOKEN_SAMPLES_PER_CHUNK: u64 = 4096;

/// How many successful requests counted their tokens from each [`TokenSource`]. Written (in a
/// shard's state) as `{"usage": n, "tokenizer": n, "events": n, "none": n}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(from = "SourceCounts", into = "SourceCounts")]
pub struct TokenSources([u64; 4]);

/// [`TokenSources`] by name, for serde.
#[derive(Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
struct SourceCounts {
    usage: u64,
    tokenizer: u64,
    events: u64,
    none: u64,
}

impl From<SourceCounts> for TokenSources {
    fn from(c: SourceCounts) -> Self {
        TokenSources([c.usage, c.tokenizer, c.events, c.none])
    }
}

impl From<TokenSources> for SourceCounts {
    fn from(TokenSources([usage, tokenizer, events, none]): TokenSources) -> Self {
        SourceCounts {
            usage,
            tokenizer,
            events,
            none,
        }
    }
}

impl TokenSources {
    pub fn add(&mut self, source: TokenSource) {
        self.0[source as usize] += 1;
    }

    pub fn get(&self, source: TokenSource) -> u64 {
        self.0[source as usize]
    }

    /// The one source every counted request shares; `None` when they differ or none was counted.
    pub fn only(&self) -> Option<TokenSource> {
        let mut used = TokenSource::ALL.into_iter().filter(|&s| self.get(s) > 0);
        match (used.next(), used.next()) {
            (Some(s), None) => Some(s),
            _ => None,
        }
    }
}

impl AddAssign for TokenSources {
    fn add_assign(&mut self, o: TokenSources) {
        for (a, b) in self.0.iter_mut().zip(o.0) {
            *a += b;
        }
    }
}

/// Distinct server error messages kept per thread; more share one name so the table stays bounded.
pub const MAX_MESSAGES: usize = 64;

/// The server error messages (`stream error: <message>`) one thread has seen, each kept once and
/// named by its place. Touched on the error path only: a request that succeeds never looks here.
#[derive(Clone, Debug, Default)]
pub struct Messages(Vec<Box<str>>);

impl Messages {
    /// The failure naming `msg`: its place in the table, added if new and there is room, else a
    /// shared name for the overflow.
    pub fn intern(&mut self, msg: &str) -> Failure {
        if let Some(i) = self.0.iter().position(|m| **m == *msg) {
            return Failure::StreamMessage(i as u16);
        }
        if self.0.len() >= MAX_MESSAGES {
            return Failure::Stream("(other server error messages)");
        }
        self.0.push(msg.into());
        Failure::StreamMessage((self.0.len() - 1) as u16)
    }

    pub fn as_slice(&self) -> &[Box<str>] {
        &self.0
    }

    /// `f` from a thread whose table is `theirs`, renamed into this table.
    fn adopt(&mut self, f: Failure, theirs: &Messages) -> Failure {
        match f {
            Failure::StreamMessage(i) => match theirs.0.get(usize::from(i)) {
                Some(m) => self.intern(m),
                None => f,
            },
            f => f,
        }
    }
}

/// What one engine thread measured (or, in [`LaneStats::stages`], one stage of it).
#[derive(Debug, Default)]
pub struct LaneStats {
    pub timings: Timings,
    /// Requests that reached a bucket.
    pub total: u64,
    pub successes: u64,
    /// Successes that met every goodput objective (0 without objectives).
    pub good: u64,
    pub statuses: HashMap<u16, u64>,
    /// Failures; a server's message is named by the thread's table (the top level's `messages`,
    /// for a stage too).
    pub failures: HashMap<Failure, u64>,
    pub messages: Messages,
    pub bytes_received: u64,
    pub connections_opened: u64,
    pub output_tokens: u64,
    pub output_sources: TokenSources,
    /// Prompt tokens of the successes that had a count, and where each success's came from.
    pub input_tokens: u64,
    pub input_sources: TokenSources,
    /// What the servers' usage said beside pacer's counts (`engine::tokens`).
    pub tokens: TokenCounts,
    /// Gaps between successive token events of the successes, and those whose two events were
    /// read together (one chunk, not measured).
    pub token_gaps: u64,
    pub token_gaps_coalesced: u64,
    /// Requests handed to a connection, and the first and last moments that happened.
    pub dispatched: u64,
    pub first_dispatch: Option<Instant>,
    pub last_dispatch: Option<Instant>,
    /// TLS handshakes completed in full and resumed (session tickets shared by the run's config).
    pub tls_full: u64,
    pub tls_resumed: u64,
    pub scheduling: Scheduling,
    /// The run was stopped before its end.
    pub interrupted: bool,
    /// One per stage of a staged run, in order (empty otherwise): the same counts and timings
    /// for the requests intended in that stage.
    pub stages: Vec<LaneStats>,
    /// The generator's own lateness: from a request's intended time to the moment its thread
    /// took it off the schedule, for requests that did not fall due behind others waiting for a
    /// connection (that wait is the connections', not the generator's).
    pub lateness: Recorder,
    /// Each thread's CPU and preemptions, taken by the thread at its end (thread number, usage).
    pub usage: Vec<(u32, ThreadUsage)>,
    /// The same requests placed in time (off in a default `LaneStats`: `for_plan` turns it on;
    /// a stage has none).
    pub timeline: Timeline,
    /// What `record` needs from the plan: the goodput objectives, and where each stage starts.
    objectives: Vec<Objective>,
    stage_starts: Vec<Instant>,
    /// The prompt tokens a chat template is expected to add (`--prompt-overhead-tokens`).
    prompt_overhead: u64,
    /// Where receive times came from (see `engine::clock`).
    pub timestamps: super::clock::StampReport,
    /// With `--targets`: one tally per target, in the file's order (empty otherwise).
    pub targets: Vec<TargetTally>,
    /// Which target request `i` went to: `target_slots[i % len]` (the plan's request table).
    target_slots: Box<[u32]>,
    /// A session run's sessions (`--sessions`), put here by the lane at its end.
    pub sessions: Option<super::session::SessionStats>,
}

/// One target's requests (`--targets`): how many ended, how many of those did not succeed,
/// and their response times. Merged with `+=` like the rest.
#[derive(Clone, Debug, Default)]
pub struct TargetTally {
    pub total: u64,
    pub errors: u64,
    pub response_time: Recorder,
}

impl TargetTally {
    fn tally(&mut self, c: &Completed, values: &Values) {
        self.total += 1;
        self.errors += u64::from(c.outcome != Outcome::Success);
        if let Some(x) = values[Id::ResponseTime as usize] {
            self.response_time.record_sample(x);
        }
    }
}

impl AddAssign for TargetTally {
    fn add_assign(&mut self, b: TargetTally) {
        self.total += b.total;
        self.errors += b.errors;
        self.response_time.merge(b.response_time);
    }
}

impl LaneStats {
    /// Statistics for one thread of `plan`, whose run starts at `t0`: goodput objectives to
    /// check, and a slot per stage with where it starts.
    pub fn for_plan(plan: &Plan, t0: Instant) -> LaneStats {
        let stage_starts: Vec<Instant> = match &plan.curve {
            Some(c) if !plan.stages.is_empty() => c
                .starts()
                .map(|s| t0 + Duration::from_secs_f64(s))
                .collect(),
            _ => Vec::new(),
        };
        let prompt_overhead = plan.llm.as_ref().map_or(0, |l| l.prompt_overhead_tokens);
        let stage = || LaneStats {
            prompt_overhead,
            ..LaneStats::default()
        };
        LaneStats {
            stages: stage_starts.iter().map(|_| stage()).collect(),
            timeline: Timeline::new(t0, plan.interval),
            objectives: plan.goodput.clone(),
            stage_starts,
            targets: vec![TargetTally::default(); plan.targets.len()],
            target_slots: if plan.targets.is_empty() {
                Box::default()
            } else {
                plan.requests.slots().into()
            },
            prompt_overhead,
            ..LaneStats::default()
        }
    }

    /// Accounts for one request that ended, with the gaps before its content chunks (empty for
    /// any but a complete streamed response): the only way a request reaches a bucket, and the
    /// only way into the statistics. Returns the request's values of each family, computed here
    /// once, for what else sees the request (the live view).
    pub fn record(&mut self, c: &Completed, gaps: &[ChunkGap]) -> Values {
        let values = request_values(c);
        let good = c.outcome == Outcome::Success
            && !self.objectives.is_empty()
            && goodput::met(&self.objectives, |m| values[m as usize].map(|s| s.secs));
        self.tally(c, &values, gaps, good);
        if !self.stage_starts.is_empty() {
            // The stage whose span holds the intended time (a 0 s stage starts where the next
            // does, so the next one takes it).
            let k = self
                .stage_starts
                .partition_point(|s| *s <= c.intended)
                .saturating_sub(1);
            if let Some(stage) = self.stages.get_mut(k) {
                stage.tally(c, &values, gaps, good);
            }
        }
        self.timeline.record(c, &values);
        if !self.target_slots.is_empty() {
            let k = self.target_slots[(c.index % self.target_slots.len() as u64) as usize];
            if let Some(t) = self.targets.get_mut(k as usize) {
                t.tally(c, &values);
            }
        }
        values
    }

    /// Counts and times one request (see [`LaneStats::record`]).
    fn tally(&mut self, c: &Completed, values: &Values, gaps: &[ChunkGap], good: bool) {
        self.total += 1;
        self.good += u64::from(good);
        self.bytes_received += c.bytes;
        if let Some(d) = c.dispatch {
            self.dispatched += 1;
            self.first_dispatch = Some(self.first_dispatch.map_or(d, |f| f.min(d)));
            self.last_dispatch = Some(self.last_dispatch.map_or(d, |l| l.max(d)));
        }
        let t = &mut self.timings;
        for (r, x) in t.0.iter_mut().zip(values) {
            if let Some(x) = *x {
                r.record_sample(x);
            }
        }
        match c.outcome {
            Outcome::Success => {
                self.successes += 1;
                self.output_tokens += c.output_tokens;
                self.output_sources.add(c.output_source);
                self.input_tokens += c.input_tokens.unwrap_or(0);
                self.input_sources.add(c.input_source);
                self.tokens.add(&c.said, self.prompt_overhead);
                // The per-token families: successes only, as every family of a streamed answer.
                for g in gaps {
                    t[Id::InterChunkLatency].record(g.secs);
                    let per_token = g.secs / g.tokens.max(1) as f64;
                    for _ in 0..g.tokens.clamp(1, MAX_TOKEN_SAMPLES_PER_CHUNK) {
                        t[Id::InterTokenLatency].record(per_token);
                    }
                }
                self.token_gaps += u64::from(c.token_gaps);
                self.token_gaps_coalesced += u64::from(c.token_gaps_coalesced);
            }
            Outcome::Status(s) => *self.statuses.entry(s).or_insert(0) += 1,
            Outcome::Failed(f) => *self.failures.entry(f).or_insert(0) += 1,
        }
    }

    /// Requests that ended in an error bucket (a status, a failure, not sent).
    pub fn errors(&self) -> u64 {
        self.total - self.successes
    }

    /// Merges `b` into this one, renaming b's server messages with `rename` (into the table of
    /// the thread they are merged into). Everything but the message table itself.
    fn absorb(&mut self, b: LaneStats, rename: &mut impl FnMut(Failure) -> Failure) {
        self.timings += b.timings;
        self.total += b.total;
        self.successes += b.successes;
        self.good += b.good;
        for (s, n) in b.statuses {
            *self.statuses.entry(s).or_insert(0) += n;
        }
        for (f, n) in b.failures {
            *self.failures.entry(rename(f)).or_insert(0) += n;
        }
        self.bytes_received += b.bytes_received;
        self.connections_opened += b.connections_opened;
        self.output_tokens += b.output_tokens;
        self.output_sources += b.output_sources;
        self.input_tokens += b.input_tokens;
        self.input_sources += b.input_sources;
        self.tokens += b.tokens;
        self.token_gaps += b.token_gaps;
        self.token_gaps_coalesced += b.token_gaps_coalesced;
        self.dispatched += b.dispatched;
        self.first_dispatch = [self.first_dispatch, b.first_dispatch]
            .into_iter()
            .flatten()
            .min();
        self.last_dispatch = [self.last_dispatch, b.last_dispatch]
            .into_iter()
            .flatten()
            .max();
        self.tls_full += b.tls_full;
        self.tls_resumed += b.tls_resumed;
        self.scheduling = std::mem::take(&mut self.scheduling).worst(b.scheduling);
        self.interrupted |= b.interrupted;
        self.lateness.merge(b.lateness);
        self.timestamps += b.timestamps;
        self.usage.extend(b.usage);
        self.usage.sort_by_key(|(thread, _)| *thread);
        if self.stages.len() < b.stages.len() {
            self.stages.resize_with(b.stages.len(), LaneStats::default);
        }
        for (mine, theirs) in self.stages.iter_mut().zip(b.stages) {
            mine.absorb(theirs, rename);
        }
        self.timeline += b.timeline;
        if self.targets.len() < b.targets.len() {
            self.targets
                .resize_with(b.targets.len(), TargetTally::default);
        }
        for (mine, theirs) in self.targets.iter_mut().zip(b.targets) {
            *mine += theirs;
        }
        match (&mut self.sessions, b.sessions) {
            (Some(mine), Some(theirs)) => *mine += theirs,
            (mine @ None, theirs) => *mine = theirs,
            (Some(_), None) => {}
        }
    }
}

/// One request's value of each per-request family, by [`Id`], with its histogram bucket (None
/// where it has none; the per-token families come from its gaps instead).
pub type Values = [Option<Sample>; Id::ALL.len()];

/// The per-request formulas, the one place they live: each of a request's values computed once,
/// for its statistics (the run's and its stage's) and its goodput alike. Which requests have
/// which values is [`crate::metric::Population`]: `dispatch_delay` every request sent, the
/// response families every complete response, the streamed answer's families successes only.
/// Each value is found its histogram bucket here too, once for every recorder that counts it.
///
/// Each moment of the record is read once, as signed nanoseconds from the dispatch ([`offset`]),
/// and a figure is the difference of two of them: an integer, so exactly the
/// `saturating_duration_since` of the two instants (0 when the later one is not later), with one
/// `Instant` subtraction per moment instead of one per figure. The table is filled in place.
#[inline]
pub fn request_values(c: &Completed) -> Values {
    let mut v: Values = [None; Id::ALL.len()];
    let Some(d) = c.dispatch else {
        return v;
    };
    // The intended time is nearly always the earlier one: measured from it, the subtraction
    // succeeds at the first try.
    let intended = offset(c.intended, d).saturating_neg();
    v[Id::DispatchDelay as usize] = Sample::of(secs(intended, 0));
    // Only a complete response is timed (statuses and stream errors included); a transport
    // failure has no end to time.
    let Some(end) = c.end_at else {
        return v;
    };
    let end = offset(d, end);
    let response_time = secs(0, end);
    v[Id::ResponseTime as usize] = Sample::of(response_time);
    v[Id::CorrectedResponseTime as usize] = Sample::of(secs(intended, end));
    if let Some(h) = c.head_at {
        v[Id::Latency as usize] = Sample::of(secs(0, offset(d, h)));
    }
    if let Some(b) = c.first_byte_at {
        let b = offset(d, b);
        v[Id::TimeToFirstByte as usize] = Sample::of(secs(0, b));
        v[Id::CorrectedTimeToFirstByte as usize] = Sample::of(secs(intended, b));
    }
    if c.outcome == Outcome::Success {
        // The first token of each kind, from dispatch and from the intended time.
        for (at, id, corrected) in [
            (
                c.first_reasoning_at,
                Id::TimeToFirstReasoningToken,
                Id::CorrectedTimeToFirstReasoningToken,
            ),
            (
                c.first_content_at,
                Id::TimeToFirstContentToken,
                Id::CorrectedTimeToFirstContentToken,
            ),
            (
                c.first_tool_call_at,
                Id::TimeToFirstToolCall,
                Id::CorrectedTimeToFirstToolCall,
            ),
        ] {
            if let Some(at) = at {
                let at = offset(d, at);
                v[id as usize] = Sample::of(secs(0, at));
                v[corrected as usize] = Sample::of(secs(intended, at));
            }
        }
        let server_ttft = c.server_ttft.and_then(Sample::of);
        v[Id::ServerTimeToFirstToken as usize] = server_ttft;
        if let Some(ft) = c.first_token_at {
            let ft = offset(d, ft);
            let ttft = secs(0, ft);
            v[Id::TimeToFirstToken as usize] = Sample::of(ttft);
            v[Id::CorrectedTimeToFirstToken as usize] = Sample::of(secs(intended, ft));
            if c.output_tokens >= 2 {
                v[Id::TimePerOutputToken as usize] =
                    Sample::of((response_time - ttft) / (c.output_tokens - 1) as f64);
            }
            // What the server's own figure leaves out: its queue, the network, the client.
            if let Some(server) = server_ttft {
                v[Id::TtftOutsideServer as usize] = Sample::of(ttft - server.secs);
            }
        }
        v[Id::ServerTimePerOutputToken as usize] = c.server_tpot.and_then(Sample::of);
    }
    v
}

/// `t` in signed nanoseconds from `base` (saturated at ±292 years, far beyond any run).
#[inline]
fn offset(base: Instant, t: Instant) -> i64 {
    let nanos = |d: Duration| {
        i64::try_from(d.as_secs())
            .unwrap_or(i64::MAX)
            .saturating_mul(1_000_000_000)
            .saturating_add(i64::from(d.subsec_nanos()))
    };
    match t.checked_duration_since(base) {
        Some(d) => nanos(d),
        None => nanos(base.duration_since(t)).saturating_neg(),
    }
}

/// Seconds from `from` to `to` (offsets from one base), 0 when `to` is not later: the value
/// `Duration::as_secs_f64` gives for the same span, since a `Duration` is its whole nanoseconds.
#[inline]
fn secs(from: i64, to: i64) -> f64 {
    match to.checked_sub(from) {
        Some(n) if n > 0 => Duration::from_nanos(n as u64).as_secs_f64(),
        _ => 0.0,
    }
}

/// The lane hands its statistics to the exchange as the table that names server error messages.
impl Sink for LaneStats {
    fn server_error(&mut self, message: String) -> Failure {
        self.messages.intern(&message)
    }
}

impl AddAssign for LaneStats {
    fn add_assign(&mut self, mut b: LaneStats) {
        // Message numbers are per thread: rename b's (its stages' too) into this table.
        let theirs = std::mem::take(&mut b.messages);
        let mut mine = std::mem::take(&mut self.messages);
        self.absorb(b, &mut |f| mine.adopt(f, &theirs));
        self.messages = mine;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(t0: Instant, index: u64, outcome: Outcome, end_ms: Option<u64>) -> Completed {
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        Completed {
            index,
            thread: 0,
            conn: 1,
            intended: t0,
            dispatch: Some(at(2)),
            head_at: end_ms.map(|_| at(5)),
            first_byte_at: end_ms.map(|_| at(6)),
            first_token_at: None,
            first_reasoning_at: None,
            first_content_at: None,
            first_tool_call_at: None,
            end_at: end_ms.map(at),
            ended: at(end_ms.unwrap_or(30)),
            status: Some(200),
            outcome,
            bytes: 100,
            output_tokens: 0,
            output_source: TokenSource::None,
            said: Default::default(),
            input_tokens: None,
            input_source: TokenSource::None,
            server_ttft: None,
            server_tpot: None,
            retried: false,
            token_gaps: 0,
            token_gaps_coalesced: 0,
        }
    }

    /// The formulas as they were before each moment was read once ([`request_values`]): one
    /// `saturating_duration_since` per figure, in seconds, then its sample.
    fn values_by_durations(c: &Completed) -> Values {
        let mut v: [Option<f64>; Id::ALL.len()] = [None; Id::ALL.len()];
        let Some(d) = c.dispatch else {
            return [None; Id::ALL.len()];
        };
        let since = |from: Instant, to: Instant| to.saturating_duration_since(from).as_secs_f64();
        v[Id::DispatchDelay as usize] = Some(since(c.intended, d));
        let Some(end) = c.end_at else {
            return v.map(|x| x.and_then(Sample::of));
        };
        let response_time = since(d, end);
        v[Id::ResponseTime as usize] = Some(response_time);
        v[Id::CorrectedResponseTime as usize] = Some(since(c.intended, end));
        v[Id::Latency as usize] = c.head_at.map(|h| since(d, h));
        if let Some(b) = c.first_byte_at {
            v[Id::TimeToFirstByte as usize] = Some(since(d, b));
            v[Id::CorrectedTimeToFirstByte as usize] = Some(since(c.intended, b));
        }
        if c.outcome == Outcome::Success {
            for (at, id, corrected) in [
                (
                    c.first_reasoning_at,
                    Id::TimeToFirstReasoningToken,
                    Id::CorrectedTimeToFirstReasoningToken,
                ),
                (
                    c.first_content_at,
                    Id::TimeToFirstContentToken,
                    Id::CorrectedTimeToFirstContentToken,
                ),
                (
                    c.first_tool_call_at,
                    Id::TimeToFirstToolCall,
                    Id::CorrectedTimeToFirstToolCall,
                ),
            ] {
                if let Some(at) = at {
                    v[id as usize] = Some(since(d, at));
                    v[corrected as usize] = Some(since(c.intended, at));
                }
            }
            let server = c.server_ttft.filter(|s| s.is_finite()).map(|s| s.max(0.0));
            if let Some(ft) = c.first_token_at {
                let ttft = since(d, ft);
                v[Id::TimeToFirstToken as usize] = Some(ttft);
                v[Id::CorrectedTimeToFirstToken as usize] = Some(since(c.intended, ft));
                if c.output_tokens >= 2 {
                    v[Id::TimePerOutputToken as usize] =
                        Some((response_time - ttft) / (c.output_tokens - 1) as f64);
                }
                v[Id::TtftOutsideServer as usize] = server.map(|s| ttft - s);
            }
            v[Id::ServerTimeToFirstToken as usize] = c.server_ttft;
            v[Id::ServerTimePerOutputToken as usize] = c.server_tpot;
        }
        v.map(|x| x.and_then(Sample::of))
    }

    #[test]
    fn values_from_offsets_equal_one_duration_per_figure_bit_for_bit() {
        let origin = Instant::now();
        let mut rng = crate::rng::SplitMix64::new(18);
        // Moments within two hours of each other, often equal, often a nanosecond or a whole
        // second apart, in any order (a send may go out before its intended time).
        let moment = |rng: &mut crate::rng::SplitMix64| {
            let ns = match rng.below(4) {
                0 => rng.below(3) as u64 * 1_000_000_000 + rng.below(3) as u64,
                1 => rng.next_u64() % 2_000_000,
                _ => rng.next_u64() % 7_200_000_000_000,
            };
            origin + Duration::from_nanos(ns)
        };
        let outcomes = [
            Outcome::Success,
            Outcome::Status(503),
            Outcome::Failed(Failure::Stream("x")),
        ];
        let mut compared = 0;
        for k in 0..20_000u64 {
            let mut c = done(origin, k, outcomes[rng.below(3)], Some(0));
            let maybe = |rng: &mut crate::rng::SplitMix64, p: usize| {
                (rng.below(4) < p).then(|| moment(rng))
            };
            c.intended = moment(&mut rng);
            c.dispatch = maybe(&mut rng, 3);
            c.end_at = maybe(&mut rng, 3);
            c.head_at = maybe(&mut rng, 3);
            c.first_byte_at = maybe(&mut rng, 3);
            c.first_token_at = maybe(&mut rng, 2);
            c.first_reasoning_at = maybe(&mut rng, 2);
            c.first_content_at = maybe(&mut rng, 2);
            c.first_tool_call_at = maybe(&mut rng, 2);
            c.output_tokens = rng.below(4) as u64;
            c.server_ttft = match rng.below(5) {
                0 => Some(f64::NAN),
                1 => Some(-0.5),
                2 => Some(rng.next_f64()),
                _ => None,
            };
            c.server_tpot = match rng.below(4) {
                0 => Some(f64::INFINITY),
                1 => Some(rng.next_f64() / 100.0),
                _ => None,
            };
            let bits = |v: Values| v.map(|x| x.map(|s| (s.secs.to_bits(), s.bucket)));
            let (new, old) = (request_values(&c), values_by_durations(&c));
            assert_eq!(bits(new), bits(old), "{c:?}");
            compared += new.iter().flatten().count();
        }
        assert!(compared > 50_000, "{compared} values compared");
    }

    #[test]
    fn record_buckets_and_times_each_request_once() {
        let t0 = Instant::now();
        let mut s = LaneStats::default();
        s.record(&done(t0, 0, Outcome::Success, Some(12)), &[]);
        s.record(&done(t0, 1, Outcome::Status(503), Some(22)), &[]);
        s.record(&done(t0, 2, Outcome::Failed(Failure::Timeout), None), &[]);
        s.record(&Completed::unsent(3, t0, 0, Failure::NotSent, t0), &[]);
        assert_eq!((s.total, s.successes, s.errors()), (4, 1, 3));
        assert_eq!(s.statuses[&503], 1);
        assert_eq!(s.failures[&Failure::Timeout], 1);
        assert_eq!(s.failures[&Failure::NotSent], 1);
        // Complete responses are timed, statuses included; failures and unsent ones are not.
        let t = &s.timings;
        assert_eq!(t[Id::ResponseTime].count(), 2);
        assert_eq!(t[Id::ResponseTime].summary().min, Some(0.010));
        assert_eq!(t[Id::CorrectedResponseTime].summary().max, Some(0.022));
        assert_eq!(t[Id::Latency].summary().min, Some(0.003));
        assert_eq!(t[Id::TimeToFirstByte].summary().min, Some(0.004));
        // Dispatch delay for every request that went out, even one that failed.
        assert_eq!(t[Id::DispatchDelay].count(), 3);
        assert_eq!(s.dispatched, 3);
        assert_eq!(s.bytes_received, 300);
    }

    #[test]
    fn record_places_each_request_on_the_timeline_when_it_is_on() {
        let t0 = Instant::now();
        let mut s = LaneStats::default();
        s.record(&done(t0, 0, Outcome::Success, Some(12)), &[]);
        assert!(s.timeline.intervals().is_empty(), "off by default");
        s.timeline = Timeline::new(t0, Duration::from_millis(10));
        s.record(&done(t0, 1, Outcome::Success, Some(12)), &[]);
        s.record(&done(t0, 2, Outcome::Failed(Failure::Timeout), None), &[]);
        let iv = s.timeline.intervals();
        assert_eq!(iv.len(), 4, "the timeout was seen at 30 ms");
        assert_eq!((iv[0].n.scheduled, iv[0].n.sent), (2, 2));
        assert_eq!((iv[1].n.successes, iv[1].n.completed), (1, 1));
        assert_eq!(iv[3].n.errors, 1);
    }

    #[test]
    fn streaming_success_records_token_timings() {
        let t0 = Instant::now();
        let mut c = done(t0, 0, Outcome::Success, Some(102));
        c.first_token_at = Some(t0 + Duration::from_millis(52));
        c.output_tokens = 11;
        c.server_ttft = Some(0.04);
        let mut s = LaneStats::default();
        s.record(&c, &[]);
        let t = &s.timings;
        assert_eq!(t[Id::TimeToFirstToken].summary().mean, Some(0.050));
        // (0.100 - 0.050) / 10 tokens after the first.
        let tpot = t[Id::TimePerOutputToken].summary().mean.unwrap();
        assert!((tpot - 0.005).abs() < 1e-12, "{tpot}");
        assert_eq!(t[Id::ServerTimeToFirstToken].count(), 1);
        // The client's 50 ms less the server's 40 ms.
        let outside = t[Id::TtftOutsideServer].summary().mean.unwrap();
        assert!((outside - 0.010).abs() < 1e-12, "{outside}");
        assert_eq!(t[Id::ServerTimePerOutputToken].count(), 0, "none sent");
        assert_eq!(s.output_tokens, 11);
        // A stream error is timed as a response but gets no token timings.
        let mut failed = c;
        failed.outcome = Outcome::Failed(Failure::Stream("x"));
        s.record(&failed, &[]);
        assert_eq!(s.timings[Id::ResponseTime].count(), 2);
        assert_eq!(s.timings[Id::TimeToFirstToken].count(), 1);
        assert_eq!(s.output_tokens, 11);
    }

    #[test]
    fn a_chunk_of_k_tokens_is_one_chunk_gap_and_k_token_gaps() {
        let t0 = Instant::now();
        let gap = |ms: u64, tokens: u64| ChunkGap {
            secs: ms as f64 / 1000.0,
            tokens,
        };
        let mut c = done(t0, 0, Outcome::Success, Some(102));
        c.first_token_at = Some(t0 + Duration::from_millis(52));
        c.output_tokens = 5;
        (c.token_gaps, c.token_gaps_coalesced) = (4, 2);
        let mut s = LaneStats::default();
        // A zero count is one token: every content chunk carries at least one.
        s.record(&c, &[gap(30, 3), gap(10, 1), gap(8, 0)]);
        let t = &s.timings;
        assert_eq!(t[Id::InterChunkLatency].count(), 3);
        assert_eq!(t[Id::InterChunkLatency].summary().max, Some(0.030));
        assert_eq!(t[Id::InterTokenLatency].count(), 5);
        let itl = t[Id::InterTokenLatency].summary();
        assert_eq!((itl.min, itl.max), (Some(0.008), Some(0.010)));
        // The per-token gaps add up to the chunk gaps.
        let sum = |r: &crate::stats::Recorder| r.summary().mean.unwrap() * r.count() as f64;
        assert!((sum(&t[Id::InterTokenLatency]) - sum(&t[Id::InterChunkLatency])).abs() < 1e-12);
        assert_eq!((s.token_gaps, s.token_gaps_coalesced), (4, 2));
        // A nonsense count adds a bounded number of samples, each the gap over all its tokens.
        let mut s = LaneStats::default();
        s.record(&c, &[gap(1000, 1_000_000)]);
        let t = &s.timings;
        assert_eq!(
            t[Id::InterTokenLatency].count(),
            MAX_TOKEN_SAMPLES_PER_CHUNK
        );
        assert_eq!(t[Id::InterTokenLatency].summary().max, Some(1e-6));
        // A failed stream keeps none of them, as it keeps no time to first token.
        let mut s = LaneStats::default();
        c.outcome = Outcome::Failed(Failure::Stream("x"));
        s.record(&c, &[gap(30, 3)]);
        assert_eq!(s.timings[Id::InterChunkLatency].count(), 0);
        assert_eq!(s.timings[Id::InterTokenLatency].count(), 0);
        assert_eq!((s.token_gaps, s.token_gaps_coalesced), (0, 0));
    }

    #[test]
    fn a_stage_keeps_the_token_gaps_of_its_requests() {
        let t0 = Instant::now();
        let mut s = LaneStats::for_plan(&staged_plan("response_time<=1s"), t0);
        let mut c = done(t0, 0, Outcome::Success, Some(102));
        c.first_token_at = Some(t0 + Duration::from_millis(52));
        c.intended += Duration::from_millis(1500);
        (c.token_gaps, c.token_gaps_coalesced) = (3, 1);
        let gaps = [ChunkGap {
            secs: 0.002,
            tokens: 2,
        }];
        s.record(&c, &gaps);
        assert_eq!(s.stages[0].timings[Id::InterTokenLatency].count(), 0);
        let second = &s.stages[1];
        assert_eq!(second.timings[Id::InterTokenLatency].count(), 2);
        assert_eq!(second.timings[Id::InterChunkLatency].count(), 1);
        assert_eq!((second.token_gaps, second.token_gaps_coalesced), (3, 1));
        assert_eq!(s.timings[Id::InterTokenLatency].count(), 2);
    }

    #[test]
    fn token_counts_and_their_sources_add_up_and_merge() {
        let t0 = Instant::now();
        let mut a = LaneStats::default();
        let mut ok = done(t0, 0, Outcome::Success, Some(12));
        ok.output_tokens = 10;
        ok.output_source = TokenSource::Usage;
        ok.input_tokens = Some(7);
        ok.input_source = TokenSource::Usage;
        a.record(&ok, &[]);
        let mut b = LaneStats::default();
        let mut other = ok;
        other.output_source = TokenSource::Events;
        other.input_tokens = None;
        other.input_source = TokenSource::None;
        b.record(&other, &[]);
        // A failure counts no tokens.
        let mut failed = ok;
        failed.outcome = Outcome::Status(500);
        b.record(&failed, &[]);
        assert_eq!(a.output_sources.only(), Some(TokenSource::Usage));
        a += b;
        assert_eq!((a.output_tokens, a.input_tokens), (20, 7));
        assert_eq!(a.output_sources.only(), None);
        assert_eq!(a.output_sources.get(TokenSource::Usage), 1);
        assert_eq!(a.output_sources.get(TokenSource::Events), 1);
        assert_eq!(a.input_sources.get(TokenSource::None), 1);
        assert_eq!(TokenSources::default().only(), None);
    }

    #[test]
    fn messages_are_bounded_and_renamed_when_merged() {
        let mut a = LaneStats::default();
        let mut b = LaneStats::default();
        let fa = a.server_error("overloaded".into());
        let fb0 = b.server_error("quota".into());
        let fb1 = b.server_error("overloaded".into());
        assert_eq!(
            b.server_error("quota".into()),
            fb0,
            "each message kept once"
        );
        *a.failures.entry(fa).or_insert(0) += 1;
        *b.failures.entry(fb0).or_insert(0) += 2;
        *b.failures.entry(fb1).or_insert(0) += 3;
        a += b;
        let named: HashMap<String, u64> = a
            .failures
            .iter()
            .map(|(f, n)| (f.name("h", 1, a.messages.as_slice()), *n))
            .collect();
        assert_eq!(named["stream error: overloaded"], 4);
        assert_eq!(named["stream error: quota"], 2);
        let mut m = Messages::default();
        for i in 0..MAX_MESSAGES + 5 {
            m.intern(&format!("message {i}"));
        }
        assert_eq!(m.as_slice().len(), MAX_MESSAGES);
        assert_eq!(
            m.intern("one more"),
            Failure::Stream("(other server error messages)")
        );
    }

    #[test]
    fn merge_adds_counts_and_keeps_the_dispatch_span() {
        let t0 = Instant::now();
        let mut a = LaneStats::default();
        let mut b = LaneStats::default();
        a.record(&done(t0, 0, Outcome::Success, Some(12)), &[]);
        let mut late = done(t0, 1, Outcome::Success, Some(40));
        late.dispatch = Some(t0 + Duration::from_millis(30));
        b.record(&late, &[]);
        b.record(&done(t0, 2, Outcome::Status(404), Some(9)), &[]);
        b.interrupted = true;
        b.scheduling = Scheduling::RealtimeDenied("EPERM".into());
        a += b;
        assert_eq!((a.total, a.successes, a.dispatched), (3, 2, 3));
        assert_eq!(a.timings[Id::ResponseTime].count(), 3);
        assert_eq!(a.first_dispatch, Some(t0 + Duration::from_millis(2)));
        assert_eq!(a.last_dispatch, Some(t0 + Duration::from_millis(30)));
        assert!(a.interrupted);
        assert!(matches!(a.scheduling, Scheduling::RealtimeDenied(_)));
    }

    /// A streaming LLM plan of two stepped stages (10 req/s for 1 s, then 20 for 1 s) with
    /// these goodput objectives.
    fn staged_plan(goodput: &str) -> Plan {
        use crate::plan::stages::Stage;
        use crate::plan::{Input, Limits, LlmInput, Rate};
        let mut i = Input::new("http://h/v1/completions", Rate::PerSecond(1.0), 1.0);
        i.llm = Some(LlmInput::example());
        i.set_stages(
            vec![
                Stage {
                    qps: 10.0,
                    duration: 1.0,
                },
                Stage {
                    qps: 20.0,
                    duration: 1.0,
                },
            ],
            false,
        );
        i.goodput = vec![goodput.into()];
        Plan::new(&i, &Limits::default()).unwrap()
    }

    #[test]
    fn requests_are_filed_under_the_stage_of_their_intended_time() {
        let t0 = Instant::now();
        let mut s = LaneStats::for_plan(&staged_plan("response_time<=10ms"), t0);
        assert_eq!(s.stages.len(), 2);
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let shift = |mut c: Completed, ms: u64| {
            // Intended at t0 + ms, every other instant moved along with it.
            let d = Duration::from_millis(ms);
            c.intended += d;
            c.dispatch = c.dispatch.map(|x| x + d);
            c.head_at = c.head_at.map(|x| x + d);
            c.first_byte_at = c.first_byte_at.map(|x| x + d);
            c.end_at = c.end_at.map(|x| x + d);
            c
        };
        // Stage 1: a success in 10 ms (meets the objective), one in 12 ms (does not).
        s.record(&shift(done(t0, 0, Outcome::Success, Some(12)), 0), &[]);
        s.record(&shift(done(t0, 1, Outcome::Success, Some(14)), 500), &[]);
        // Stage 2 from exactly 1 s: a fast 503 (not a success, so not good), an unsent request.
        s.record(
            &shift(done(t0, 2, Outcome::Status(503), Some(5)), 1000),
            &[],
        );
        s.record(
            &Completed::unsent(3, at(1500), 0, Failure::NotSent, at(3500)),
            &[],
        );
        assert_eq!((s.total, s.successes, s.good), (4, 2, 1));
        let (a, b) = (&s.stages[0], &s.stages[1]);
        assert_eq!((a.total, a.successes, a.good, a.errors()), (2, 2, 1, 0));
        assert_eq!((b.total, b.successes, b.good, b.errors()), (2, 0, 0, 2));
        assert_eq!(b.statuses[&503], 1);
        assert_eq!(b.failures[&Failure::NotSent], 1);
        assert_eq!(a.timings[Id::ResponseTime].count(), 2);
        assert_eq!(b.timings[Id::ResponseTime].summary().max, Some(0.003));
        assert_eq!(a.dispatched + b.dispatched, s.dispatched);
        assert!(a.stages.is_empty(), "a stage has no stages of its own");
    }

    #[test]
    fn goodput_checks_every_objective_on_each_success() {
        let t0 = Instant::now();
        let plan = staged_plan("ttft<=50ms, tpot<=10ms, dispatch_delay<=5ms");
        let mut s = LaneStats::for_plan(&plan, t0);
        let stream = |ttft_ms: u64, end_ms: u64, tokens: u64| {
            let mut c = done(t0, 0, Outcome::Success, Some(end_ms));
            c.first_token_at = Some(t0 + Duration::from_millis(ttft_ms));
            c.output_tokens = tokens;
            c
        };
        // Dispatched at 2 ms: ttft 48 ms, tpot (100 - 48) / 10 = 5.2 ms: good.
        s.record(&stream(50, 102, 11), &[]);
        // ttft 51 ms: not good.
        s.record(&stream(53, 102, 11), &[]);
        // tpot (200 - 48) / 10 = 15.2 ms: not good.
        s.record(&stream(50, 202, 11), &[]);
        // One token: no gap to be slow in, so tpot is met.
        s.record(&stream(50, 500, 1), &[]);
        // Dispatched 6 ms late: not good.
        let mut late = stream(50, 102, 11);
        late.dispatch = Some(t0 + Duration::from_millis(6));
        s.record(&late, &[]);
        // No first token at all: not good.
        s.record(&done(t0, 0, Outcome::Success, Some(20)), &[]);
        assert_eq!((s.total, s.successes, s.good), (6, 6, 2));
        // Without objectives nothing is counted.
        let mut plain = LaneStats::default();
        plain.record(&stream(50, 102, 11), &[]);
        assert_eq!(plain.good, 0);
    }

    #[test]
    fn corrected_first_byte_and_token_count_from_the_intended_time() {
        let t0 = Instant::now();
        let mut c = done(t0, 0, Outcome::Success, Some(102));
        c.first_token_at = Some(t0 + Duration::from_millis(52));
        let mut s = LaneStats::default();
        s.record(&c, &[]);
        let t = &s.timings;
        // Dispatched 2 ms after its intended time: the corrected figures carry those 2 ms.
        assert_eq!(t[Id::TimeToFirstToken].summary().mean, Some(0.050));
        assert_eq!(t[Id::CorrectedTimeToFirstToken].summary().mean, Some(0.052));
        assert_eq!(t[Id::TimeToFirstByte].summary().mean, Some(0.004));
        assert_eq!(t[Id::CorrectedTimeToFirstByte].summary().mean, Some(0.006));
        // A failure after the first byte has a corrected first byte but no token timings.
        let mut failed = c;
        failed.outcome = Outcome::Failed(Failure::Stream("x"));
        s.record(&failed, &[]);
        assert_eq!(s.timings[Id::CorrectedTimeToFirstByte].count(), 2);
        assert_eq!(s.timings[Id::CorrectedTimeToFirstToken].count(), 1);
    }

    #[test]
    fn stages_and_health_parts_merge_across_threads() {
        let t0 = Instant::now();
        let plan = staged_plan("response_time<=1s");
        let mut a = LaneStats::for_plan(&plan, t0);
        let mut b = LaneStats::for_plan(&plan, t0);
        // A server message interned in b's table, filed in b's second stage.
        let quota = b.server_error("quota".into());
        let mut c = done(t0, 0, Outcome::Failed(quota), Some(9));
        c.intended += Duration::from_millis(1200);
        b.record(&c, &[]);
        a.record(&done(t0, 1, Outcome::Success, Some(12)), &[]);
        a.server_error("other".into());
        a.lateness.record(0.001);
        b.lateness.record(0.003);
        b.usage.push((1, ThreadUsage::default()));
        a.usage.push((0, ThreadUsage::default()));
        a += b;
        assert_eq!(a.stages[0].total, 1);
        assert_eq!(a.stages[1].total, 1);
        let named: Vec<String> = a.stages[1]
            .failures
            .keys()
            .map(|f| f.name("h", 1, a.messages.as_slice()))
            .collect();
        assert_eq!(named, ["stream error: quota"]);
        assert_eq!(a.lateness.count(), 2);
        assert_eq!(a.usage.iter().map(|(t, _)| *t).collect::<Vec<_>>(), [0, 1]);
        assert_eq!(a.good, 1);
    }
}
