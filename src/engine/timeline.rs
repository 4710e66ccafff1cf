//! The run over time: per interval of `plan.interval` from the run's start, how many requests
//! were scheduled, sent, answered, failed and not sent, and log-scale histograms of their
//! response time, dispatch delay and time to first token. Each lane keeps a [`Timeline`] from
//! the one [`Completed`] record of each request (through `LaneStats::record`); the lanes' are
//! merged with `+=` (they share `t0` and the interval, so the same grid); [`Timeline::entries`]
//! turns the merged one into the report's rows. What the JSON looks like is `report`'s.
//!
//! Which interval a request counts in, per figure (each figure counts where the moment it
//! describes falls; `t` is seconds from the run's start, interval `k` is `[k·I, (k+1)·I)`):
//!
//! | figure | placed by |
//! | --- | --- |
//! | `scheduled` | its intended time; a request whose intended time had not come when it was given up (an interrupted run's future) is in no interval's `scheduled` |
//! | `sent`, `dispatch_delay` | its dispatch (first hand-over to a connection) |
//! | `completed` (a whole response, any status), `response_time` | the last byte of the response |
//! | `successes`, `errors` (statuses and failures, not-sent excluded), `output_tokens` | when it ended: the last byte, or the moment the failure was seen |
//! | `not_sent` | when it was given up (`timeout` after its intended time, or the stop) |
//! | `time_to_first_token` | the first token's arrival (successful streams) |
//!
//! So `successes + errors + not_sent` summed over the intervals is `total_requests`, and each
//! interval's percentiles describe what was *seen* in it, as a live view would have shown it.
//!
//! Memory is constant per interval: counters, and per histogram only its non-empty buckets
//! ([`SparseHistogram`], 8 bytes each; the buckets are `stats::Histogram`'s, 10 per decade).
//! Response times within one second of one run rarely span more than a decade or two, so a
//! one-hour run at 1 s (3,600 intervals) keeps well under a megabyte per thread.

use std::ops::AddAssign;
use std::time::{Duration, Instant};

use super::outcome::{Completed, Failure, Outcome};
use super::stats::Values;
use crate::metric::Id;
use crate::plan::defaults::MAX_INTERVALS;
use crate::stats::histogram::BUCKETS;
use crate::stats::{Histogram, Sample, bucket_of};

/// Bits of a cell that hold its count; the bucket index sits above them.
const COUNT_BITS: u32 = 56;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;

/// A log-scale histogram on `stats::Histogram`'s buckets that stores only the non-empty ones:
/// one `u64` per bucket, its index in the top 8 bits and its count in the low 56, kept sorted,
/// plus the smallest and largest sample.
///
/// [`SparseHistogram::quantile`] answers with the geometric middle of the bucket holding the
/// sample of rank `round(q·(n−1))` (numpy's `nearest` method), clamped to the smallest and
/// largest sample, which are kept exactly (rank 0 and rank n − 1 answer them). A bucket spans a
/// factor of 10^(1/10) ≈ 1.259, so the answer is within 10^(1/20) − 1 ≈ 12.2% of that sample.
#[derive(Clone, Debug, PartialEq)]
pub struct SparseHistogram {
    cells: Vec<u64>,
    min: f64,
    max: f64,
}

impl Default for SparseHistogram {
    fn default() -> Self {
        SparseHistogram {
            cells: Vec::new(),
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

impl SparseHistogram {
    /// Counts one value in seconds: NaN and infinities are dropped, negatives count as 0, as
    /// `stats::Recorder` does.
    #[inline]
    pub fn record(&mut self, secs: f64) {
        if let Some(s) = Sample::of(secs) {
            self.record_sample(s);
        }
    }

    /// Counts a sample whose bucket is known ([`Sample::of`]).
    #[inline]
    pub fn record_sample(&mut self, s: Sample) {
        let (secs, b) = (s.secs, u64::from(s.bucket));
        match self.cells.binary_search_by_key(&b, |c| c >> COUNT_BITS) {
            Ok(i) => self.cells[i] += 1,
            Err(i) => self.cells.insert(i, (b << COUNT_BITS) | 1),
        }
        self.min = self.min.min(secs);
        self.max = self.max.max(secs);
    }

    pub fn count(&self) -> u64 {
        self.cells.iter().map(|c| c & COUNT_MASK).sum()
    }

    /// Non-empty buckets kept (the memory taken is 8 bytes each).
    pub fn buckets(&self) -> usize {
        self.cells.len()
    }

    /// The `q` quantile (0 ≤ q ≤ 1), None with no samples. See the type docs for its error.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * (n - 1) as f64).round() as u64).min(n - 1);
        // The extremes are kept exactly.
        if rank == 0 {
            return Some(self.min);
        }
        if rank == n - 1 {
            return Some(self.max);
        }
        let mut seen = 0;
        for &c in &self.cells {
            seen += c & COUNT_MASK;
            if seen > rank {
                let middle = Histogram::middle((c >> COUNT_BITS) as usize);
                return Some(middle.clamp(self.min, self.max));
            }
        }
        // The counts add up to n, so the loop returns; the largest sample is the right answer.
        Some(self.max)
    }

    /// The non-empty buckets, ascending, as (bucket index, count): what a shard's state keeps.
    pub fn nonempty(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        self.cells
            .iter()
            .map(|c| ((c >> COUNT_BITS) as usize, c & COUNT_MASK))
    }

    /// The smallest and largest sample, None when empty.
    pub fn extremes(&self) -> Option<(f64, f64)> {
        (!self.cells.is_empty()).then_some((self.min, self.max))
    }

    /// The histogram [`SparseHistogram::nonempty`] and [`SparseHistogram::extremes`] describe,
    /// checked (it may come from another machine's state): buckets strictly ascending and
    /// within `stats::Histogram`'s, counts from 1 to 2^56 − 1, extremes finite, non-negative,
    /// ordered, and in the first and last bucket.
    pub fn from_parts(
        buckets: &[(usize, u64)],
        extremes: Option<(f64, f64)>,
    ) -> Result<SparseHistogram, &'static str> {
        let Some((min, max)) = extremes else {
            return match buckets {
                [] => Ok(SparseHistogram::default()),
                _ => Err("a histogram with counts has no smallest and largest sample"),
            };
        };
        let (Some(&(first, _)), Some(&(last, _))) = (buckets.first(), buckets.last()) else {
            return Err("an empty histogram has a smallest and largest sample");
        };
        if !(min.is_finite() && max.is_finite() && 0.0 <= min && min <= max) {
            return Err("a histogram's smallest and largest samples are not ordered times");
        }
        if bucket_of(min) != first || bucket_of(max) != last {
            return Err("a histogram's smallest or largest sample lies outside its buckets");
        }
        let mut cells = Vec::with_capacity(buckets.len());
        let mut prev = None;
        for &(b, n) in buckets {
            if b >= BUCKETS || prev.is_some_and(|p| p >= b) {
                return Err("histogram buckets are not ascending within the known ones");
            }
            if n == 0 || n > COUNT_MASK {
                return Err("a histogram bucket's count is 0 or too large");
            }
            prev = Some(b);
            cells.push(((b as u64) << COUNT_BITS) | n);
        }
        Ok(SparseHistogram { cells, min, max })
    }

    /// Adds another histogram's counts (a merge of two sorted lists).
    pub fn merge(&mut self, other: &SparseHistogram) {
        if other.cells.is_empty() {
            return;
        }
        let (a, b) = (&self.cells, &other.cells);
        let mut out = Vec::with_capacity(a.len() + b.len());
        let (mut i, mut j) = (0, 0);
        while i < a.len() && j < b.len() {
            let (ka, kb) = (a[i] >> COUNT_BITS, b[j] >> COUNT_BITS);
            if ka < kb {
                out.push(a[i]);
                i += 1;
            } else if kb < ka {
                out.push(b[j]);
                j += 1;
            } else {
                out.push(a[i] + (b[j] & COUNT_MASK));
                i += 1;
                j += 1;
            }
        }
        out.extend_from_slice(&a[i..]);
        out.extend_from_slice(&b[j..]);
        self.cells = out;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }
}

/// The counts of one interval. See the module docs for which interval each counts in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub scheduled: u64,
    pub sent: u64,
    /// Whole responses, any status.
    pub completed: u64,
    pub successes: u64,
    /// Statuses and named failures; not-sent requests are `not_sent`.
    pub errors: u64,
    pub not_sent: u64,
    pub output_tokens: u64,
}

impl AddAssign for Tally {
    fn add_assign(&mut self, b: Tally) {
        self.scheduled += b.scheduled;
        self.sent += b.sent;
        self.completed += b.completed;
        self.successes += b.successes;
        self.errors += b.errors;
        self.not_sent += b.not_sent;
        self.output_tokens += b.output_tokens;
    }
}

/// What one interval of one thread (or, merged, of the run) saw.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Interval {
    pub n: Tally,
    pub response_time: SparseHistogram,
    pub dispatch_delay: SparseHistogram,
    pub time_to_first_token: SparseHistogram,
}

impl AddAssign<&Interval> for Interval {
    fn add_assign(&mut self, b: &Interval) {
        self.n += b.n;
        self.response_time.merge(&b.response_time);
        self.dispatch_delay.merge(&b.dispatch_delay);
        self.time_to_first_token.merge(&b.time_to_first_token);
    }
}

/// One thread's (or the merged run's) intervals. A default one is off: it records nothing.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    t0: Option<Instant>,
    /// Rebuilt from elsewhere (shards' states): on, with rows, but no `t0` to record against.
    rebuilt: bool,
    interval_ns: u64,
    intervals: Vec<Interval>,
    /// The latest moment any figure was placed at, in nanoseconds after the start: as rebuilt,
    /// or merged in from other timelines (see [`Timeline::last_ns`]).
    last_ns: u64,
    /// The latest moment this timeline placed a figure at itself.
    latest: Option<Instant>,
    /// The interval of the last placement, by the instants that bound it: a request's moments
    /// mostly fall in the interval of the one before, found then by two comparisons rather than
    /// a subtraction and a division.
    hot: Option<(Instant, Instant, usize)>,
}

/// One row of the report's `timeline`.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// Seconds from the run's start.
    pub start: f64,
    /// The interval's length; the last one ends with the run, so it may be shorter.
    pub duration: f64,
    pub n: Tally,
    /// `sent / duration`.
    pub achieved_qps: f64,
    pub response_time_p50: Option<f64>,
    pub response_time_p90: Option<f64>,
    pub response_time_p99: Option<f64>,
    pub dispatch_delay_p99: Option<f64>,
    pub time_to_first_token_p50: Option<f64>,
    pub time_to_first_token_p99: Option<f64>,
}

impl Timeline {
    /// A timeline of intervals of `interval` (at least 1 ns) from `t0`.
    pub fn new(t0: Instant, interval: Duration) -> Timeline {
        Timeline {
            t0: Some(t0),
            interval_ns: u64::try_from(interval.as_nanos())
                .unwrap_or(u64::MAX)
                .max(1),
            intervals: Vec::new(),
            last_ns: 0,
            latest: None,
            hot: None,
            rebuilt: false,
        }
    }

    /// A timeline rebuilt from its parts (a merge of shards' states): it has rows but records
    /// nothing more. `last_ns` is the latest moment placed, in nanoseconds from its start.
    pub fn rebuilt(interval: Duration, mut intervals: Vec<Interval>, last_ns: u64) -> Timeline {
        intervals.truncate(MAX_INTERVALS);
        Timeline {
            t0: None,
            interval_ns: u64::try_from(interval.as_nanos())
                .unwrap_or(u64::MAX)
                .max(1),
            intervals,
            last_ns,
            latest: None,
            hot: None,
            rebuilt: true,
        }
    }

    /// Whether it has rows: a run's lanes turn it on, as does rebuilding it from states; a
    /// default one (a run that never started, statistics rebuilt without it) is off.
    pub fn is_on(&self) -> bool {
        self.t0.is_some() || self.rebuilt
    }

    /// Not [`Timeline::is_on`].
    pub fn is_off(&self) -> bool {
        !self.is_on()
    }

    /// The latest moment anything was placed at, in nanoseconds from the start.
    pub fn last_ns(&self) -> u64 {
        let placed = match (self.t0, self.latest) {
            (Some(t0), Some(t)) => nanos(t.saturating_duration_since(t0)),
            _ => 0,
        };
        self.last_ns.max(placed)
    }

    pub fn interval(&self) -> Duration {
        Duration::from_nanos(self.interval_ns)
    }

    /// The intervals from the first to the last one anything was placed in.
    pub fn intervals(&self) -> &[Interval] {
        &self.intervals
    }

    /// Places one request's figures (see the module docs), its timings as the statistics
    /// computed them (`values`).
    #[inline]
    pub fn record(&mut self, c: &Completed, values: &Values) {
        let Some(t0) = self.t0 else {
            return;
        };
        if c.intended <= c.ended {
            self.at(t0, c.intended).n.scheduled += 1;
        }
        if let (Some(d), Some(x)) = (c.dispatch, values[Id::DispatchDelay as usize]) {
            let i = self.at(t0, d);
            i.n.sent += 1;
            i.dispatch_delay.record_sample(x);
        }
        let ended = &mut self.at(t0, c.ended).n;
        match c.outcome {
            Outcome::Success => {
                ended.successes += 1;
                ended.output_tokens += c.output_tokens;
            }
            Outcome::Failed(
                Failure::NotSent | Failure::Interrupted | Failure::RunEnded | Failure::SessionEnded,
            ) => ended.not_sent += 1,
            Outcome::Status(_) | Outcome::Failed(_) => ended.errors += 1,
        }
        if let (Some(end), Some(x)) = (c.end_at, values[Id::ResponseTime as usize]) {
            let i = self.at(t0, end);
            i.n.completed += 1;
            i.response_time.record_sample(x);
        }
        if let (Some(ft), Some(x)) = (c.first_token_at, values[Id::TimeToFirstToken as usize]) {
            self.at(t0, ft).time_to_first_token.record_sample(x);
        }
    }

    /// The interval holding `t`. Past [`MAX_INTERVALS`] (which the plan's checks keep a run
    /// within) the last one takes everything, so memory stays bounded whatever the clock says.
    /// The check of the cached interval is inlined into `record` (four places a request, nearly
    /// always the same interval); finding another interval is not.
    #[inline(always)]
    fn at(&mut self, t0: Instant, t: Instant) -> &mut Interval {
        if self.latest.is_none_or(|l| t > l) {
            self.latest = Some(t);
        }
        match self.hot {
            Some((lo, hi, k)) if lo <= t && t < hi => &mut self.intervals[k],
            _ => self.find(t0, t),
        }
    }

    /// The interval holding `t`, found and cached (see [`Timeline::at`]).
    #[cold]
    #[inline(never)]
    fn find(&mut self, t0: Instant, t: Instant) -> &mut Interval {
        let ns = nanos(t.saturating_duration_since(t0));
        let k = usize::try_from(ns / self.interval_ns)
            .unwrap_or(usize::MAX)
            .min(MAX_INTERVALS - 1);
        if k >= self.intervals.len() {
            self.intervals.resize_with(k + 1, Interval::default);
        }
        // The last interval takes everything after it, so it has no upper bound to cache; and
        // a moment before `t0` is placed in the first interval but outside its bounds.
        let start = (k as u64).checked_mul(self.interval_ns);
        let lo = start.and_then(|n| t0.checked_add(Duration::from_nanos(n)));
        let hi = lo.and_then(|lo| lo.checked_add(Duration::from_nanos(self.interval_ns)));
        self.hot = match (lo, hi) {
            (Some(lo), Some(hi)) if k < MAX_INTERVALS - 1 => Some((lo, hi, k)),
            _ => None,
        };
        &mut self.intervals[k]
    }

    /// The report's rows: one per interval from the start to the run's end (`elapsed`, or the
    /// last moment placed if later), empty ones included. Empty for a timeline that is off.
    pub fn entries(&self, elapsed: Duration) -> Vec<Entry> {
        if !self.is_on() {
            return Vec::new();
        }
        let i_ns = self.interval_ns;
        let end_ns = u64::try_from(elapsed.as_nanos())
            .unwrap_or(u64::MAX)
            .max(self.last_ns());
        let n = usize::try_from(end_ns.div_ceil(i_ns))
            .unwrap_or(usize::MAX)
            .max(self.intervals.len())
            .min(MAX_INTERVALS);
        let empty = Interval::default();
        (0..n)
            .map(|k| {
                let v = self.intervals.get(k).unwrap_or(&empty);
                let start_ns = k as u64 * i_ns;
                let dur_ns = end_ns.saturating_sub(start_ns).min(i_ns);
                let duration = Duration::from_nanos(dur_ns).as_secs_f64();
                Entry {
                    start: Duration::from_nanos(start_ns).as_secs_f64(),
                    duration,
                    n: v.n,
                    achieved_qps: if duration > 0.0 {
                        v.n.sent as f64 / duration
                    } else {
                        0.0
                    },
                    response_time_p50: v.response_time.quantile(0.50),
                    response_time_p90: v.response_time.quantile(0.90),
                    response_time_p99: v.response_time.quantile(0.99),
                    dispatch_delay_p99: v.dispatch_delay.quantile(0.99),
                    time_to_first_token_p50: v.time_to_first_token.quantile(0.50),
                    time_to_first_token_p99: v.time_to_first_token.quantile(0.99),
                }
            })
            .collect()
    }
}

impl AddAssign for Timeline {
    fn add_assign(&mut self, b: Timeline) {
        if !b.is_on() {
            return;
        }
        if !self.is_on() {
            *self = b;
            return;
        }
        if self.intervals.len() < b.intervals.len() {
            self.intervals
                .resize_with(b.intervals.len(), Interval::default);
        }
        for (a, b) in self.intervals.iter_mut().zip(&b.intervals) {
            *a += b;
        }
        self.last_ns = self.last_ns().max(b.last_ns());
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::super::stats::request_values;
    use super::*;

    impl Timeline {
        /// `record` with the values the statistics compute.
        fn record_of(&mut self, c: &Completed) {
            self.record(c, &request_values(c));
        }
    }

    #[test]
    fn the_cached_interval_places_as_the_division_does() {
        let t0 = Instant::now();
        let ten_ms = 10_000_000u64;
        let mut t = Timeline::new(t0, Duration::from_nanos(ten_ms));
        // Back and forth across boundaries, the cache's edges, and far ahead.
        let at = [
            0,
            9_999_999,
            10_000_000,
            5,
            25_000_000,
            19_999_999,
            20_000_000,
            10_000_000,
            3_000_000_000,
            29_999_999,
        ];
        let mut want = vec![0u64; 301];
        for &ns in &at {
            t.at(t0, t0 + Duration::from_nanos(ns)).n.sent += 1;
            want[(ns / ten_ms) as usize] += 1;
        }
        let got: Vec<u64> = t.intervals().iter().map(|i| i.n.sent).collect();
        assert_eq!(got, want);
        assert_eq!(t.last_ns(), 3_000_000_000);
    }

    const MS: Duration = Duration::from_millis(1);

    /// A request of the grid starting at `t0`, every time in milliseconds after it.
    struct R {
        t0: Instant,
        c: Completed,
    }

    impl R {
        fn new(t0: Instant, intended_ms: u64) -> R {
            let at = t0 + MS * intended_ms as u32;
            R {
                t0,
                c: Completed::unsent(0, at, 0, Failure::NotSent, at),
            }
        }
        fn at(&self, ms: u64) -> Instant {
            self.t0 + MS * ms as u32
        }
        /// Sent at `d`, whole response at `end` with `outcome`.
        fn answered(mut self, d: u64, end: u64, outcome: Outcome) -> Completed {
            self.c.dispatch = Some(self.at(d));
            self.c.end_at = Some(self.at(end));
            self.c.ended = self.at(end);
            self.c.status = Some(200);
            self.c.outcome = outcome;
            self.c
        }
        /// Sent at `d`, failed with `f` at `at`.
        fn failed(mut self, d: u64, at: u64, f: Failure) -> Completed {
            self.c.dispatch = Some(self.at(d));
            self.c.ended = self.at(at);
            self.c.outcome = Outcome::Failed(f);
            self.c
        }
        /// Never sent; given up at `at`.
        fn unsent(mut self, at: u64, f: Failure) -> Completed {
            self.c.ended = self.at(at);
            self.c.outcome = Outcome::Failed(f);
            self.c
        }
    }

    fn second(t0: Instant) -> Timeline {
        Timeline::new(t0, Duration::from_secs(1))
    }

    #[test]
    fn each_figure_counts_where_its_moment_falls() {
        let t0 = Instant::now();
        let mut t = second(t0);
        // Intended at 0.9 s, sent at 1.2 s, answered at 2.5 s: three intervals.
        t.record_of(&R::new(t0, 900).answered(1200, 2500, Outcome::Success));
        let iv = t.intervals();
        assert_eq!(iv.len(), 3);
        assert_eq!(
            (iv[0].n.scheduled, iv[0].n.sent, iv[0].n.completed),
            (1, 0, 0)
        );
        assert_eq!(
            (iv[1].n.scheduled, iv[1].n.sent, iv[1].n.completed),
            (0, 1, 0)
        );
        assert_eq!(iv[1].dispatch_delay.count(), 1);
        assert_eq!(iv[1].dispatch_delay.quantile(0.99), Some(0.3));
        assert_eq!(
            (iv[2].n.completed, iv[2].n.successes, iv[2].n.errors),
            (1, 1, 0)
        );
        assert_eq!(iv[2].response_time.quantile(0.5), Some(1.3));
        assert_eq!(iv[1].response_time.count() + iv[0].response_time.count(), 0);
    }

    #[test]
    fn errors_not_sent_and_statuses_are_told_apart() {
        let t0 = Instant::now();
        let mut t = second(t0);
        // An HTTP error is a whole response: completed and timed, and an error.
        t.record_of(&R::new(t0, 0).answered(1, 100, Outcome::Status(503)));
        // A timeout: an error when it was seen (2.1 s), never completed nor timed.
        t.record_of(&R::new(t0, 50).failed(100, 2100, Failure::Timeout));
        // Waited 2 s for a connection: not sent, at 2.3 s, scheduled at 0.3 s.
        t.record_of(&R::new(t0, 300).unsent(2300, Failure::NotSent));
        let iv = t.intervals();
        assert_eq!(
            (iv[0].n.completed, iv[0].n.errors, iv[0].n.not_sent),
            (1, 1, 0)
        );
        assert_eq!(iv[0].response_time.count(), 1);
        assert_eq!((iv[0].n.scheduled, iv[0].n.sent), (3, 2));
        assert_eq!(
            (iv[2].n.completed, iv[2].n.errors, iv[2].n.not_sent),
            (0, 1, 1)
        );
        assert_eq!(iv[2].response_time.count(), 0);
        let ended: u64 = iv
            .iter()
            .map(|i| i.n.successes + i.n.errors + i.n.not_sent)
            .sum();
        assert_eq!(ended, 3);
    }

    #[test]
    fn an_interrupted_future_is_not_scheduled_anywhere() {
        let t0 = Instant::now();
        let mut t = second(t0);
        // Stopped at 1.5 s: one request due at 1.4 s still queued, one due at 9 s never due.
        t.record_of(&R::new(t0, 1400).unsent(1500, Failure::Interrupted));
        t.record_of(&R::new(t0, 9000).unsent(1500, Failure::Interrupted));
        let iv = t.intervals();
        assert_eq!(iv.len(), 2, "nothing placed at 9 s");
        assert_eq!(
            (iv[1].n.scheduled, iv[1].n.not_sent, iv[1].n.errors),
            (1, 2, 0)
        );
        let e = t.entries(Duration::from_millis(1600));
        assert_eq!(e.len(), 2);
        assert_eq!(e[1].duration, 0.6);
        assert_eq!(e[1].n.scheduled, 1);
    }

    #[test]
    fn first_tokens_count_where_they_arrive_for_successful_streams() {
        let t0 = Instant::now();
        let mut t = second(t0);
        let mut c = R::new(t0, 0).answered(10, 3010, Outcome::Success);
        c.first_token_at = Some(t0 + MS * 1510);
        c.output_tokens = 7;
        t.record_of(&c);
        let mut failed = c;
        failed.outcome = Outcome::Failed(Failure::Stream("x"));
        t.record_of(&failed);
        let iv = t.intervals();
        assert_eq!(iv[1].time_to_first_token.quantile(0.5), Some(1.5));
        assert_eq!(
            iv[1].time_to_first_token.count(),
            1,
            "a failed stream has no TTFT"
        );
        assert_eq!(
            (iv[3].n.output_tokens, iv[3].n.successes, iv[3].n.errors),
            (7, 1, 1)
        );
    }

    #[test]
    fn entries_cover_the_run_and_their_rates_use_their_length() {
        let t0 = Instant::now();
        let mut t = Timeline::new(t0, Duration::from_millis(500));
        for k in 0..10u64 {
            // Ten requests sent 100 ms apart from 0 to 0.9 s, answered 5 ms later.
            t.record_of(&R::new(t0, k * 100).answered(k * 100, k * 100 + 5, Outcome::Success));
        }
        let e = t.entries(Duration::from_millis(1700));
        let starts: Vec<f64> = e.iter().map(|e| e.start).collect();
        assert_eq!(starts, [0.0, 0.5, 1.0, 1.5]);
        let durations: Vec<f64> = e.iter().map(|e| e.duration).collect();
        assert_eq!(durations, [0.5, 0.5, 0.5, 0.2]);
        assert_eq!((e[0].n.sent, e[0].achieved_qps), (5, 10.0));
        assert_eq!((e[2].n.sent, e[2].achieved_qps), (0, 0.0));
        assert_eq!(e[2].response_time_p50, None);
        assert_eq!(e[0].response_time_p99, Some(0.005));
        // A moment placed after `elapsed` (a closed loop's last answers) still gets its row.
        let e = t.entries(Duration::from_millis(600));
        assert_eq!(e.len(), 2);
        assert_eq!(e[1].duration, 0.405);
        // Off: nothing.
        assert!(
            Timeline::default()
                .entries(Duration::from_secs(3))
                .is_empty()
        );
    }

    #[test]
    fn lanes_merge_interval_by_interval() {
        let t0 = Instant::now();
        let (mut a, mut b) = (second(t0), second(t0));
        a.record_of(&R::new(t0, 0).answered(0, 10, Outcome::Success));
        b.record_of(&R::new(t0, 0).answered(0, 20, Outcome::Success));
        b.record_of(&R::new(t0, 2000).answered(2000, 2030, Outcome::Status(500)));
        a += b;
        let iv = a.intervals();
        assert_eq!(iv.len(), 3);
        assert_eq!((iv[0].n.successes, iv[0].response_time.count()), (2, 2));
        assert_eq!(iv[0].response_time.quantile(0.0), Some(0.010));
        assert_eq!(iv[0].response_time.quantile(1.0), Some(0.020));
        assert_eq!((iv[2].n.errors, iv[2].n.completed), (1, 1));
        let mut off = Timeline::default();
        off += a.clone();
        assert_eq!(off.intervals(), a.intervals());
    }

    #[test]
    fn sparse_quantiles_are_within_a_half_bucket() {
        let mut h = SparseHistogram::default();
        assert_eq!(h.quantile(0.5), None);
        // 1..=1000 ms: numpy's 'nearest' p50 is 500 or 501 ms, p90 900 ms, p99 990 ms.
        for i in 1..=1000 {
            h.record(f64::from(i) * 1e-3);
        }
        assert_eq!(h.count(), 1000);
        // Three decades of 10 buckets and the one holding 1 s, but for the three below 2 ms
        // that no whole millisecond falls in.
        assert_eq!(h.buckets(), 28);
        let bound = 10f64.powf(0.05) - 1.0;
        // The samples of rank round(q·999): 501, 900 and 990 ms.
        for (q, exact) in [(0.5, 0.501), (0.9, 0.900), (0.99, 0.990)] {
            let got = h.quantile(q).unwrap();
            assert!((got / exact - 1.0).abs() <= bound + 1e-12, "{q}: {got}");
        }
        assert_eq!(h.quantile(0.0), Some(0.001));
        assert_eq!(h.quantile(1.0), Some(1.0));
        // Equal samples read back exactly; NaN is dropped; a negative counts as 0.
        let mut one = SparseHistogram::default();
        for _ in 0..5 {
            one.record(0.0421);
        }
        one.record(f64::NAN);
        assert_eq!((one.count(), one.quantile(0.99)), (5, Some(0.0421)));
        one.record(-1.0);
        assert_eq!(one.quantile(0.0), Some(0.0));
        // Merging keeps the buckets sorted and adds equal ones.
        let mut m = SparseHistogram::default();
        m.record(0.0421);
        m.record(5.0);
        one.merge(&m);
        assert_eq!(one.count(), 8);
        assert_eq!(one.quantile(1.0), Some(5.0));
        assert!(
            one.cells
                .windows(2)
                .all(|w| w[0] >> COUNT_BITS < w[1] >> COUNT_BITS)
        );
    }
}
