//! The run's timeline in a shard's state, and the merge's one timeline for the whole run.
//!
//! A shard keeps its [`Timeline`] (`engine::timeline`: per interval, counts and log-scale
//! histograms) as [`StateTimeline`]: the interval in plain JSON, so the merge checks it without
//! unpacking, and the non-empty intervals packed with `stats::pack`'s varints (only the non-empty
//! histogram buckets, as the timeline itself keeps them). Unpacking checks every length and value.
//!
//! Each shard's intervals count from its own start (`start_unix_ns` in its state, the wall time of
//! its `t0`). [`align`] puts them on one grid of the run's interval from the earliest start:
//! shard `i`'s interval `k` becomes the run's interval `k + shift_i`, `shift_i` the whole number
//! of intervals nearest to its start's distance from the earliest. Shards started with one
//! `--start-at` share their start, so the shifts are 0 and every interval adds exactly. A shard
//! off the grid by at most [`TOLERANCE`] of an interval is moved to the nearest interval, and the
//! merged report says by how much (`timeline_alignment.off_grid`); further off, its figures would
//! land in an interval that did not see them, so the merged report has no timeline and says why.
//!
//! Packed layout, version 1, every integer LEB128 (as `stats::pack`):
//!
//! ```text
//! u8 version (1)   k (non-empty intervals)
//! per interval: index − previous index − 1 (previous from −1)
//!               scheduled sent completed successes errors not_sent output_tokens
//!               3 histograms (response_time, dispatch_delay, time_to_first_token), each:
//!                 b (buckets), b × (bucket − previous bucket − 1, count), then if b > 0:
//!                 min, max (as stats::pack's plain values)
//! ```

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::ShardIndex;
use super::state::{Counts, ShardState};
use crate::engine::Timeline;
use crate::engine::timeline::{Interval, SparseHistogram, Tally};
use crate::plan::defaults::MAX_INTERVALS;
use crate::report::human;
use crate::stats::pack::{PackError, Reader, put_plain, put_varint};
use crate::wall::{UnixNanos, format_rfc3339};

/// The packed layout this pacer writes, and the newest it reads.
pub const TIMELINE_LAYOUT: u8 = 1;

/// The largest distance, as a share of the interval, a shard's start may lie off the merged
/// grid and still have its intervals moved onto it.
pub const TOLERANCE: f64 = 0.01;

/// A shard's timeline as its state carries it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StateTimeline {
    /// The interval, nanoseconds.
    pub interval_ns: u64,
    /// The latest moment anything was placed at, nanoseconds from the shard's start.
    pub last_ns: u64,
    /// The non-empty intervals, packed (see the module docs), base64.
    pub intervals: String,
}

impl StateTimeline {
    /// `t`'s state form; None when it is off (a run that never started).
    pub fn of(t: &Timeline) -> Option<StateTimeline> {
        if !t.is_on() {
            return None;
        }
        let nonempty: Vec<(usize, &Interval)> = t
            .intervals()
            .iter()
            .enumerate()
            .filter(|(_, iv)| **iv != Interval::default())
            .collect();
        let mut out = vec![TIMELINE_LAYOUT];
        put_varint(&mut out, nonempty.len() as u64);
        let mut prev: i64 = -1;
        for (k, iv) in nonempty {
            put_varint(&mut out, (k as i64 - prev - 1) as u64);
            prev = k as i64;
            let n = iv.n;
            for c in [
                n.scheduled,
                n.sent,
                n.completed,
                n.successes,
                n.errors,
                n.not_sent,
                n.output_tokens,
            ] {
                put_varint(&mut out, c);
            }
            for h in [
                &iv.response_time,
                &iv.dispatch_delay,
                &iv.time_to_first_token,
            ] {
                put_histogram(&mut out, h);
            }
        }
        Some(StateTimeline {
            interval_ns: u64::try_from(t.interval().as_nanos()).unwrap_or(u64::MAX),
            last_ns: t.last_ns(),
            intervals: STANDARD.encode(out),
        })
    }

    /// The non-empty intervals by index, ascending, checked.
    pub fn unpack(&self) -> Result<Vec<(usize, Interval)>, PackError> {
        if self.interval_ns == 0 {
            return Err(PackError::Inconsistent("a timeline's interval is 0"));
        }
        let bytes = STANDARD
            .decode(&self.intervals)
            .map_err(|_| PackError::Base64)?;
        let mut rd = Reader::new(&bytes);
        let version = rd.byte()?;
        if version > TIMELINE_LAYOUT {
            return Err(PackError::NewerVersion(version));
        }
        if version == 0 {
            return Err(PackError::Inconsistent("layout 0 does not exist"));
        }
        let k = rd.varint()?;
        if k > MAX_INTERVALS as u64 {
            return Err(PackError::Inconsistent(
                "a timeline has more intervals than a run may",
            ));
        }
        let mut out = Vec::with_capacity(rd.cap_for(k));
        let mut next: u64 = 0;
        for _ in 0..k {
            let index = next
                .checked_add(rd.varint()?)
                .filter(|&i| i < MAX_INTERVALS as u64)
                .ok_or(PackError::Inconsistent(
                    "a timeline interval lies past the last a run may have",
                ))?;
            next = index + 1;
            // In the order `of` wrote them (struct fields are evaluated as written).
            let n = Tally {
                scheduled: rd.varint()?,
                sent: rd.varint()?,
                completed: rd.varint()?,
                successes: rd.varint()?,
                errors: rd.varint()?,
                not_sent: rd.varint()?,
                output_tokens: rd.varint()?,
            };
            let iv = Interval {
                n,
                response_time: read_histogram(&mut rd)?,
                dispatch_delay: read_histogram(&mut rd)?,
                time_to_first_token: read_histogram(&mut rd)?,
            };
            out.push((index as usize, iv));
        }
        if !rd.at_end() {
            return Err(PackError::Trailing);
        }
        Ok(out)
    }

    /// The timeline back, as the shard's report drew it.
    pub fn to_timeline(&self) -> Result<Timeline, PackError> {
        Ok(Timeline::rebuilt(
            Duration::from_nanos(self.interval_ns),
            dense(self.unpack()?),
            self.last_ns,
        ))
    }
}

/// Whether a shard's intervals count at most what the shard counted: each request is scheduled,
/// sent, completed and ended once, and timed at most once in each histogram; the tokens are its
/// successes'.
fn within(intervals: &[(usize, Interval)], counts: &Counts) -> Result<(), PackError> {
    let sum = |f: &dyn Fn(&Interval) -> u64| {
        intervals
            .iter()
            .try_fold(0u64, |a, (_, iv)| a.checked_add(f(iv)))
    };
    let histogram = |h: &SparseHistogram| {
        h.nonempty()
            .try_fold(0u64, |a, (_, n)| a.checked_add(n))
            .unwrap_or(u64::MAX)
    };
    let total = counts.total_requests;
    let per_request: [&dyn Fn(&Interval) -> u64; 9] = [
        &|iv| iv.n.scheduled,
        &|iv| iv.n.sent,
        &|iv| iv.n.completed,
        &|iv| iv.n.successes,
        &|iv| iv.n.errors,
        &|iv| iv.n.not_sent,
        &|iv| histogram(&iv.response_time),
        &|iv| histogram(&iv.dispatch_delay),
        &|iv| histogram(&iv.time_to_first_token),
    ];
    let more = per_request.iter().any(|f| sum(f).is_none_or(|n| n > total))
        || sum(&|iv| iv.n.output_tokens).is_none_or(|n| n > counts.output_tokens);
    if more {
        return Err(PackError::Inconsistent(
            "the timeline counts more than the state's requests",
        ));
    }
    Ok(())
}

/// Intervals by index into one list from 0, the empty ones filled in.
fn dense(sparse: Vec<(usize, Interval)>) -> Vec<Interval> {
    let mut out = Vec::new();
    for (k, iv) in sparse {
        if out.len() <= k {
            out.resize_with(k + 1, Interval::default);
        }
        out[k] += &iv;
    }
    out
}

fn put_histogram(out: &mut Vec<u8>, h: &SparseHistogram) {
    put_varint(out, h.buckets() as u64);
    let mut prev: i64 = -1;
    for (b, n) in h.nonempty() {
        put_varint(out, (b as i64 - prev - 1) as u64);
        prev = b as i64;
        put_varint(out, n);
    }
    if let Some((min, max)) = h.extremes() {
        put_plain(out, min);
        put_plain(out, max);
    }
}

fn read_histogram(rd: &mut Reader<'_>) -> Result<SparseHistogram, PackError> {
    let b = rd.varint()?;
    if b > crate::stats::histogram::BUCKETS as u64 {
        return Err(PackError::Inconsistent("more histogram buckets than exist"));
    }
    let mut buckets = Vec::with_capacity(b as usize);
    let mut next: u64 = 0;
    for _ in 0..b {
        let i = next
            .checked_add(rd.varint()?)
            .ok_or(PackError::Inconsistent("a histogram bucket past the last"))?;
        next = i.saturating_add(1);
        buckets.push((usize::try_from(i).unwrap_or(usize::MAX), rd.varint()?));
    }
    let extremes = if b > 0 {
        Some((rd.plain()?, rd.plain()?))
    } else {
        None
    };
    SparseHistogram::from_parts(&buckets, extremes).map_err(PackError::Inconsistent)
}

/// Where each shard's intervals go in the run's timeline, or why there is none.
#[derive(Clone, Debug, PartialEq)]
pub enum Alignment {
    /// Shard `i`'s interval `k` is the run's interval `k + shifts[i]` (by shard index).
    Aligned {
        /// The earliest shard start: the run's interval `k` begins `k` intervals after it.
        origin: UnixNanos,
        interval_ns: u64,
        shifts: Vec<u64>,
        /// The largest distance a shard's start lay off the grid, nanoseconds (0: exact).
        off_grid_ns: u64,
    },
    /// No merged timeline, and why.
    Omitted { origin: UnixNanos, why: String },
}

/// The shards' placement on the run's grid, from their starts and intervals. The states must
/// have passed `merge::check` (one interval among those that carry a timeline).
pub fn align(states: &[(String, ShardState)]) -> Alignment {
    let origin = states
        .iter()
        .map(|(_, s)| s.start_unix_ns)
        .min()
        .unwrap_or(0);
    let omitted = |why: String| Alignment::Omitted { origin, why };
    let without: Vec<&(String, ShardState)> = states
        .iter()
        .filter(|(_, s)| s.timeline.is_none())
        .collect();
    if !without.is_empty() {
        let mut names: Vec<&str> = without.iter().take(3).map(|(n, _)| n.as_str()).collect();
        let more = format!("and {} more", without.len().saturating_sub(3));
        if without.len() > 3 {
            names.push(&more);
        }
        let why = "its run never started";
        return omitted(format!(
            "{} carr{} no timeline ({why}): a timeline of part of the run is not the run's",
            names.join(", "),
            if without.len() == 1 { "ies" } else { "y" }
        ));
    }
    let interval_ns = states
        .iter()
        .filter_map(|(_, s)| s.timeline.as_ref().map(|t| t.interval_ns))
        .max()
        .unwrap_or(1)
        .max(1);
    let count = states
        .iter()
        .map(|(_, s)| s.shard.count())
        .max()
        .unwrap_or(1);
    let mut shifts = vec![0u64; count as usize];
    let mut worst: Option<(ShardIndex, u64, u64)> = None;
    for (_, s) in states {
        let d = u64::try_from(i128::from(s.start_unix_ns) - i128::from(origin)).unwrap_or(0);
        let (q, r) = (d / interval_ns, d % interval_ns);
        let (shift, off) = if r.saturating_mul(2) >= interval_ns {
            (q + 1, interval_ns - r)
        } else {
            (q, r)
        };
        if let Some(slot) = shifts.get_mut(s.shard.index() as usize) {
            *slot = shift;
        }
        if worst.is_none_or(|(_, o, _)| off > o) {
            worst = Some((s.shard, off, d));
        }
    }
    let (shard, off_grid_ns, d) = worst.unwrap_or((ShardIndex::WHOLE, 0, 0));
    let secs = |ns: u64| Duration::from_nanos(ns).as_secs_f64();
    if off_grid_ns as f64 > TOLERANCE * interval_ns as f64 {
        return omitted(format!(
            "shard {shard} started {} after the earliest shard, {} off the grid of {} \
             intervals (more than {}% of one): its figures cannot be placed in the run's \
             intervals without moving them into one that did not see them; start every shard \
             with the same --start-at for a merged timeline",
            human(secs(d)),
            human(secs(off_grid_ns)),
            human(secs(interval_ns)),
            TOLERANCE * 100.0
        ));
    }
    Alignment::Aligned {
        origin,
        interval_ns,
        shifts,
        off_grid_ns,
    }
}

impl Alignment {
    /// The merged report's `timeline_alignment`.
    pub fn to_json(&self) -> Value {
        let secs = |ns: u64| Duration::from_nanos(ns).as_secs_f64();
        match self {
            Alignment::Aligned {
                origin,
                interval_ns,
                off_grid_ns,
                ..
            } => {
                let note = if *off_grid_ns == 0 {
                    "every shard started on the grid of intervals from the earliest start: each \
                     interval adds the shards' figures of the same wall-clock interval exactly"
                        .to_string()
                } else {
                    format!(
                        "shards started up to {} off the grid of intervals from the earliest \
                         start (within {}% of an interval): each shard's intervals were moved to \
                         the nearest ones, so a figure may be counted up to that far from its \
                         wall-clock interval",
                        human(secs(*off_grid_ns)),
                        TOLERANCE * 100.0
                    )
                };
                json!({
                    "origin": format_rfc3339(*origin),
                    "interval": secs(*interval_ns),
                    "off_grid": secs(*off_grid_ns),
                    "note": note,
                })
            }
            Alignment::Omitted { origin, why } => json!({
                "origin": format_rfc3339(*origin),
                "omitted": why,
            }),
        }
    }
}

/// The run's timeline under way: each shard's intervals added where [`align`] placed them.
#[derive(Clone, Debug, Default)]
pub struct TimelineFold {
    intervals: Vec<Interval>,
    last_ns: u64,
}

impl TimelineFold {
    /// Adds a shard's intervals `shift` intervals later. Its intervals may count no more than
    /// the shard did (`counts`, its state's): the sums over shards then stay within the run's.
    pub fn add(&mut self, t: &StateTimeline, shift: u64, counts: &Counts) -> Result<(), PackError> {
        let intervals = t.unpack()?;
        within(&intervals, counts)?;
        for (k, iv) in intervals {
            let at = usize::try_from(shift)
                .ok()
                .and_then(|s| s.checked_add(k))
                .unwrap_or(usize::MAX)
                // Past the last interval a run may have, the last takes everything, as
                // `Timeline` does while recording.
                .min(MAX_INTERVALS - 1);
            if self.intervals.len() <= at {
                self.intervals.resize_with(at + 1, Interval::default);
            }
            self.intervals[at] += &iv;
        }
        let moved = shift.saturating_mul(t.interval_ns);
        self.last_ns = self.last_ns.max(moved.saturating_add(t.last_ns));
        Ok(())
    }

    pub fn finish(self, interval_ns: u64) -> Timeline {
        Timeline::rebuilt(
            Duration::from_nanos(interval_ns),
            self.intervals,
            self.last_ns,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::outcome::{Completed, Failure, Outcome};
    use crate::shard::merge::tests::state;
    use std::time::Instant;

    const MS: Duration = Duration::from_millis(1);

    /// A timeline with a bit of everything: successes with first tokens, an HTTP error, a
    /// timeout, a request never sent, over 1 s intervals, quiet from 4 s to 6 s.
    fn busy(t0: Instant, seed: u64) -> Timeline {
        let mut t = Timeline::new(t0, Duration::from_secs(1));
        let at = |ms: u64| t0 + MS * ms as u32;
        for j in 0..40u64 {
            let intended = (j * 53 + seed * 7) % 2000 + if j % 3 == 0 { 6000 } else { 0 };
            let mut c = Completed::unsent(0, at(intended), 0, Failure::NotSent, at(intended));
            match j % 5 {
                4 => c.ended = at(intended + 1500),
                3 => {
                    c.dispatch = Some(at(intended + 1));
                    c.ended = at(intended + 900);
                    c.outcome = Outcome::Failed(Failure::Timeout);
                }
                2 => {
                    c.dispatch = Some(at(intended + 2));
                    c.end_at = Some(at(intended + 30 + j));
                    c.ended = at(intended + 30 + j);
                    c.outcome = Outcome::Status(503);
                }
                _ => {
                    c.dispatch = Some(at(intended + j % 4));
                    c.first_token_at = Some(at(intended + 11 + j));
                    c.end_at = Some(at(intended + 50 + 3 * j));
                    c.ended = at(intended + 50 + 3 * j);
                    c.outcome = Outcome::Success;
                    c.output_tokens = j;
                }
            }
            t.record(&c, &crate::engine::request_values(&c));
        }
        t
    }

    #[test]
    fn a_timeline_round_trips_through_its_state_form() {
        let t = busy(Instant::now(), 1);
        assert!(t.intervals().iter().any(|iv| *iv == Interval::default()));
        let s = StateTimeline::of(&t).unwrap();
        assert_eq!(s.interval_ns, 1_000_000_000);
        let json = serde_json::to_string(&s).unwrap();
        let back: StateTimeline = serde_json::from_str(&json).unwrap();
        let t2 = back.to_timeline().unwrap();
        assert_eq!(t2.intervals(), t.intervals());
        assert_eq!(t2.interval(), t.interval());
        assert_eq!(t2.last_ns(), t.last_ns());
        let e = Duration::from_millis(9200);
        assert_eq!(t2.entries(e), t.entries(e));
        // Compact: the empty intervals and empty buckets take nothing.
        assert!(
            s.intervals.len() < 600,
            "{} base64 bytes",
            s.intervals.len()
        );
        assert!(StateTimeline::of(&Timeline::default()).is_none());
    }

    #[test]
    fn packed_intervals_are_checked() {
        let s = StateTimeline::of(&busy(Instant::now(), 2)).unwrap();
        let bytes = STANDARD.decode(&s.intervals).unwrap();
        let with = |b: &[u8]| StateTimeline {
            intervals: STANDARD.encode(b),
            ..s.clone()
        };
        assert_eq!(
            with(&bytes[..bytes.len() - 3]).unpack().unwrap_err(),
            PackError::Truncated
        );
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(with(&trailing).unpack().unwrap_err(), PackError::Trailing);
        let mut newer = bytes.clone();
        newer[0] = 2;
        assert_eq!(
            with(&newer).unpack().unwrap_err(),
            PackError::NewerVersion(2)
        );
        // An interval index past the last a run may have.
        let far = [1u8, 1, 0xa0, 0x8d, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert!(matches!(
            with(&far).unpack().unwrap_err(),
            PackError::Inconsistent(_)
        ));
        // One bucket whose smallest sample is not in it.
        let mut h = Vec::new();
        put_varint(&mut h, 1);
        put_varint(&mut h, 40);
        put_varint(&mut h, 3);
        put_plain(&mut h, 5.0);
        put_plain(&mut h, 5.0);
        let mut bad = vec![1u8, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        bad.extend_from_slice(&h);
        bad.extend_from_slice(&[0, 0]);
        assert!(matches!(
            with(&bad).unpack().unwrap_err(),
            PackError::Inconsistent(_)
        ));
        let zero = StateTimeline {
            interval_ns: 0,
            ..s.clone()
        };
        assert!(zero.unpack().is_err());
        assert_eq!(
            with(b"x").unpack().unwrap_err(),
            PackError::NewerVersion(b'x')
        );
    }

    /// Starts on the grid add exactly; a start off it by a little is moved and said; by more,
    /// the timeline is omitted with the shard named; a state without one omits it too.
    #[test]
    fn shards_are_aligned_on_the_earliest_start() {
        const SEC: i64 = 1_000_000_000;
        let with_starts = |offsets_ms: &[i64]| -> Vec<(String, ShardState)> {
            let n = offsets_ms.len() as u32;
            offsets_ms
                .iter()
                .enumerate()
                .map(|(i, &ms)| {
                    let mut s = state(i as u32, n, 10, 0);
                    s.start_unix_ns += ms * 1_000_000;
                    (format!("s{i}"), s)
                })
                .collect()
        };
        let origin = state(0, 1, 10, 0).start_unix_ns;
        // One --start-at: all on one start.
        let a = align(&with_starts(&[0, 0, 0]));
        assert_eq!(
            a,
            Alignment::Aligned {
                origin,
                interval_ns: SEC as u64,
                shifts: vec![0, 0, 0],
                off_grid_ns: 0
            }
        );
        assert_eq!(a.to_json()["off_grid"], json!(0.0));
        assert!(a.to_json()["note"].as_str().unwrap().contains("exactly"));
        // Whole intervals apart (the earliest need not be shard 0): exact shifts.
        let a = align(&with_starts(&[2000, 0, 5000]));
        assert!(
            matches!(&a, Alignment::Aligned { shifts, off_grid_ns: 0, origin: o, .. }
                if shifts == &[2, 0, 5] && *o == origin)
        );
        // 3 ms and 9 ms off a 1 s grid, either side: to the nearest interval, said.
        let a = align(&with_starts(&[3, 0, 1991]));
        assert!(
            matches!(&a, Alignment::Aligned { shifts, off_grid_ns: 9_000_000, .. }
                if shifts == &[0, 0, 2]),
            "{a:?}"
        );
        let j = a.to_json();
        assert_eq!(j["off_grid"], json!(0.009));
        assert!(j["note"].as_str().unwrap().contains("up to 9.00ms"), "{j}");
        // 11 ms off is more than 1%: omitted, the shard named.
        let a = align(&with_starts(&[0, 1011, 3]));
        let Alignment::Omitted { why, .. } = &a else {
            panic!("{a:?}")
        };
        assert!(
            why.contains("shard 1/3") && why.contains("--start-at"),
            "{why}"
        );
        assert!(a.to_json()["omitted"].is_string());
        // A state without a timeline (its run never started): the run's is omitted, the state
        // named.
        let mut old = with_starts(&[0, 0]);
        old[1].1.timeline = None;
        let Alignment::Omitted { why, .. } = align(&old) else {
            panic!()
        };
        assert!(
            why.starts_with("s1 carries no timeline") && why.contains("never started"),
            "{why}"
        );
    }

    /// Two shards started one interval apart fold into one timeline whose intervals are the
    /// sums of the intervals that cover the same wall-clock time.
    #[test]
    fn the_fold_adds_intervals_of_the_same_wall_time() {
        let t0 = Instant::now();
        let (a, b) = (busy(t0, 1), busy(t0, 3));
        let (sa, sb) = (
            StateTimeline::of(&a).unwrap(),
            StateTimeline::of(&b).unwrap(),
        );
        let mut fold = TimelineFold::default();
        // Each timeline's 40 requests, with room for their tokens.
        let counts = Counts {
            total_requests: 40,
            output_tokens: 40 * 40,
            ..Counts::default()
        };
        fold.add(&sa, 0, &counts).unwrap();
        fold.add(&sb, 1, &counts).unwrap();
        let merged = fold.finish(1_000_000_000);
        let m = merged.intervals();
        assert_eq!(m.len(), a.intervals().len().max(b.intervals().len() + 1));
        for (k, iv) in m.iter().enumerate() {
            let mut want = a.intervals().get(k).cloned().unwrap_or_default();
            if k >= 1
                && let Some(x) = b.intervals().get(k - 1)
            {
                want += x;
            }
            assert_eq!(*iv, want, "interval {k}");
        }
        assert_eq!(
            merged.last_ns(),
            a.last_ns().max(b.last_ns() + 1_000_000_000)
        );
        let sent: u64 = m.iter().map(|iv| iv.n.sent).sum();
        let each: u64 = [&a, &b]
            .iter()
            .flat_map(|t| t.intervals())
            .map(|iv| iv.n.sent)
            .sum();
        assert_eq!(sent, each);
    }
}
