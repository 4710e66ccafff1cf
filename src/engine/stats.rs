//! What one engine thread measured ([`LaneStats`]), kept from one [`Completed`] record per request
//! through [`LaneStats::record`], its single way in, and merged across threads with `+=` once at
//! the end. The run's totals and the report's names are `engine::finish`'s; the summaries
//! (means, percentiles) are `crate::stats`'.
//!
//! `record` is the hook for everything per request that comes later (a timeline, a per-request
//! export, per-stage summaries, goodput): it sees each request once, whatever its fate.

use std::collections::HashMap;
use std::ops::AddAssign;
use std::time::{Duration, Instant};

use super::exchange::Sink;
use super::outcome::{Completed, Failure, Outcome};
use super::sched::Scheduling;
use crate::stats::Recorder;

/// Every timing of SPEC §2 and §4, one recorder each.
#[derive(Clone, Debug, Default)]
pub struct Timings {
    pub response_time: Recorder,
    pub latency: Recorder,
    pub corrected_response_time: Recorder,
    pub dispatch_delay: Recorder,
    pub time_to_first_byte: Recorder,
    pub time_to_first_token: Recorder,
    pub inter_token_latency: Recorder,
    pub time_per_output_token: Recorder,
    pub server_time_to_first_token: Recorder,
}

impl AddAssign for Timings {
    fn add_assign(&mut self, o: Timings) {
        self.response_time.merge(o.response_time);
        self.latency.merge(o.latency);
        self.corrected_response_time
            .merge(o.corrected_response_time);
        self.dispatch_delay.merge(o.dispatch_delay);
        self.time_to_first_byte.merge(o.time_to_first_byte);
        self.time_to_first_token.merge(o.time_to_first_token);
        self.inter_token_latency.merge(o.inter_token_latency);
        self.time_per_output_token.merge(o.time_per_output_token);
        self.server_time_to_first_token
            .merge(o.server_time_to_first_token);
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

/// What one engine thread measured.
#[derive(Debug, Default)]
pub struct LaneStats {
    pub timings: Timings,
    /// Requests that reached a bucket.
    pub total: u64,
    pub successes: u64,
    pub statuses: HashMap<u16, u64>,
    pub failures: HashMap<Failure, u64>,
    pub messages: Messages,
    pub bytes_received: u64,
    pub connections_opened: u64,
    pub output_tokens: u64,
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
}

impl LaneStats {
    /// Accounts for one request that ended: the only way a request reaches a bucket.
    pub fn record(&mut self, c: &Completed) {
        self.total += 1;
        self.bytes_received += c.bytes;
        let t = &mut self.timings;
        if let Some(d) = c.dispatch {
            t.dispatch_delay
                .record(d.saturating_duration_since(c.intended).as_secs_f64());
            self.dispatched += 1;
            self.first_dispatch = Some(self.first_dispatch.map_or(d, |f| f.min(d)));
            self.last_dispatch = Some(self.last_dispatch.map_or(d, |l| l.max(d)));
        }
        // Only a complete response is timed (statuses and stream errors included); a transport
        // failure has no end to time.
        let mut response_time = 0.0;
        if let (Some(end), Some(d)) = (c.end_at, c.dispatch) {
            response_time = end.saturating_duration_since(d).as_secs_f64();
            t.response_time.record(response_time);
            t.corrected_response_time
                .record(end.saturating_duration_since(c.intended).as_secs_f64());
            if let Some(h) = c.head_at {
                t.latency
                    .record(h.saturating_duration_since(d).as_secs_f64());
            }
            if let Some(b) = c.first_byte_at {
                t.time_to_first_byte
                    .record(b.saturating_duration_since(d).as_secs_f64());
            }
        }
        match c.outcome {
            Outcome::Success => {
                self.successes += 1;
                self.output_tokens += c.output_tokens;
                if let (Some(ft), Some(d)) = (c.first_token_at, c.dispatch) {
                    let ttft = ft.saturating_duration_since(d).as_secs_f64();
                    t.time_to_first_token.record(ttft);
                    if c.output_tokens >= 2 {
                        t.time_per_output_token
                            .record((response_time - ttft) / (c.output_tokens - 1) as f64);
                    }
                }
                if let Some(s) = c.server_ttft {
                    t.server_time_to_first_token.record(s);
                }
            }
            Outcome::Status(s) => *self.statuses.entry(s).or_insert(0) += 1,
            Outcome::Failed(f) => *self.failures.entry(f).or_insert(0) += 1,
        }
    }

    /// Requests that ended in an error bucket (a status, a failure, not sent).
    pub fn errors(&self) -> u64 {
        self.total - self.successes
    }
}

/// The lane hands its statistics to the exchange as the place for per-token gaps and server
/// error messages.
impl Sink for LaneStats {
    #[inline]
    fn token_gap(&mut self, gap: Duration) {
        self.timings.inter_token_latency.record(gap.as_secs_f64());
    }

    fn server_error(&mut self, message: String) -> Failure {
        self.messages.intern(&message)
    }
}

impl AddAssign for LaneStats {
    fn add_assign(&mut self, b: LaneStats) {
        self.timings += b.timings;
        self.total += b.total;
        self.successes += b.successes;
        for (s, n) in b.statuses {
            *self.statuses.entry(s).or_insert(0) += n;
        }
        // Message numbers are per thread: rename b's into this table.
        for (f, n) in b.failures {
            let f = self.messages.adopt(f, &b.messages);
            *self.failures.entry(f).or_insert(0) += n;
        }
        self.bytes_received += b.bytes_received;
        self.connections_opened += b.connections_opened;
        self.output_tokens += b.output_tokens;
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
            end_at: end_ms.map(at),
            status: Some(200),
            outcome,
            bytes: 100,
            output_tokens: 0,
            server_ttft: None,
            retried: false,
        }
    }

    #[test]
    fn record_buckets_and_times_each_request_once() {
        let t0 = Instant::now();
        let mut s = LaneStats::default();
        s.record(&done(t0, 0, Outcome::Success, Some(12)));
        s.record(&done(t0, 1, Outcome::Status(503), Some(22)));
        s.record(&done(t0, 2, Outcome::Failed(Failure::Timeout), None));
        s.record(&Completed::unsent(3, t0, 0, Failure::NotSent));
        assert_eq!((s.total, s.successes, s.errors()), (4, 1, 3));
        assert_eq!(s.statuses[&503], 1);
        assert_eq!(s.failures[&Failure::Timeout], 1);
        assert_eq!(s.failures[&Failure::NotSent], 1);
        // Complete responses are timed, statuses included; failures and unsent ones are not.
        let t = &s.timings;
        assert_eq!(t.response_time.count(), 2);
        assert_eq!(t.response_time.summary().min, Some(0.010));
        assert_eq!(t.corrected_response_time.summary().max, Some(0.022));
        assert_eq!(t.latency.summary().min, Some(0.003));
        assert_eq!(t.time_to_first_byte.summary().min, Some(0.004));
        // Dispatch delay for every request that went out, even one that failed.
        assert_eq!(t.dispatch_delay.count(), 3);
        assert_eq!(s.dispatched, 3);
        assert_eq!(s.bytes_received, 300);
    }

    #[test]
    fn streaming_success_records_token_timings() {
        let t0 = Instant::now();
        let mut c = done(t0, 0, Outcome::Success, Some(102));
        c.first_token_at = Some(t0 + Duration::from_millis(52));
        c.output_tokens = 11;
        c.server_ttft = Some(0.04);
        let mut s = LaneStats::default();
        s.record(&c);
        let t = &s.timings;
        assert_eq!(t.time_to_first_token.summary().mean, Some(0.050));
        // (0.100 - 0.050) / 10 tokens after the first.
        let tpot = t.time_per_output_token.summary().mean.unwrap();
        assert!((tpot - 0.005).abs() < 1e-12, "{tpot}");
        assert_eq!(t.server_time_to_first_token.count(), 1);
        assert_eq!(s.output_tokens, 11);
        // A stream error is timed as a response but gets no token timings.
        let mut failed = c;
        failed.outcome = Outcome::Failed(Failure::Stream("x"));
        s.record(&failed);
        assert_eq!(s.timings.response_time.count(), 2);
        assert_eq!(s.timings.time_to_first_token.count(), 1);
        assert_eq!(s.output_tokens, 11);
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
        a.record(&done(t0, 0, Outcome::Success, Some(12)));
        let mut late = done(t0, 1, Outcome::Success, Some(40));
        late.dispatch = Some(t0 + Duration::from_millis(30));
        b.record(&late);
        b.record(&done(t0, 2, Outcome::Status(404), Some(9)));
        b.interrupted = true;
        b.scheduling = Scheduling::RealtimeDenied("EPERM".into());
        a += b;
        assert_eq!((a.total, a.successes, a.dispatched), (3, 2, 3));
        assert_eq!(a.timings.response_time.count(), 3);
        assert_eq!(a.first_dispatch, Some(t0 + Duration::from_millis(2)));
        assert_eq!(a.last_dispatch, Some(t0 + Duration::from_millis(30)));
        assert!(a.interrupted);
        assert!(matches!(a.scheduling, Scheduling::RealtimeDenied(_)));
    }
}
