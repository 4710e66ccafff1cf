//! The merge's one timeline for the whole run, from the shards' own (`engine::timeline`, in a
//! state packed as `engine::packed` writes it).
//!
//! Each shard's intervals count from its own start (`stats.wall.start_unix_ns` in its state, the
//! wall time of its `t0`). [`align`] puts them on one grid of the run's interval from the earliest start:
//! shard `i`'s interval `k` becomes the run's interval `k + shift_i`, `shift_i` the whole number
//! of intervals nearest to its start's distance from the earliest. Shards started with one
//! `--start-at` share their start, so the shifts are 0 and every interval adds exactly. A shard
//! off the grid by at most [`TOLERANCE`] of an interval is moved to the nearest interval, and the
//! merged report says by how much (`timeline_alignment.off_grid`); further off, its figures would
//! land in an interval that did not see them, so the merged report has no timeline and says why.

use std::time::Duration;

use serde_json::{Value, json};

use super::ShardIndex;
use super::state::ShardState;
use crate::engine::timeline::{Interval, SparseHistogram};
use crate::engine::{RunStats, Timeline};
use crate::plan::defaults::MAX_INTERVALS;
use crate::report::human;
use crate::stats::pack::PackError;
use crate::wall::{UnixNanos, format_rfc3339};

/// The largest distance, as a share of the interval, a shard's start may lie off the merged
/// grid and still have its intervals moved onto it.
pub const TOLERANCE: f64 = 0.01;

/// Whether a shard's intervals count at most what the shard counted: each request is scheduled,
/// sent, completed and ended once, and timed at most once in each histogram; the tokens are its
/// successes'.
fn within(intervals: &[Interval], counts: &RunStats) -> Result<(), PackError> {
    let sum = |f: &dyn Fn(&Interval) -> u64| {
        intervals
            .iter()
            .try_fold(0u64, |a, iv| a.checked_add(f(iv)))
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

/// A timeline's interval in nanoseconds.
pub fn interval_ns(t: &Timeline) -> u64 {
    u64::try_from(t.interval().as_nanos()).unwrap_or(u64::MAX)
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
        .map(|(_, s)| s.wall().start)
        .min()
        .unwrap_or(0);
    let omitted = |why: String| Alignment::Omitted { origin, why };
    let without: Vec<&(String, ShardState)> = states
        .iter()
        .filter(|(_, s)| s.stats.timeline.is_off())
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
        .filter(|(_, s)| s.stats.timeline.is_on())
        .map(|(_, s)| interval_ns(&s.stats.timeline))
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
        let d = u64::try_from(i128::from(s.wall().start) - i128::from(origin)).unwrap_or(0);
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
    pub fn add(&mut self, t: &Timeline, shift: u64, counts: &RunStats) -> Result<(), PackError> {
        let intervals = t.intervals();
        within(intervals, counts)?;
        let nonempty = intervals
            .iter()
            .enumerate()
            .filter(|(_, iv)| **iv != Interval::default());
        for (k, iv) in nonempty {
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
            self.intervals[at] += iv;
        }
        let moved = shift.saturating_mul(interval_ns(t));
        self.last_ns = self.last_ns.max(moved.saturating_add(t.last_ns()));
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
    use crate::engine::packed::tests::busy;
    use crate::shard::merge::tests::state;
    use std::time::Instant;

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
                    s.stats.wall.start += ms * 1_000_000;
                    (format!("s{i}"), s)
                })
                .collect()
        };
        let origin = state(0, 1, 10, 0).wall().start;
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
        old[1].1.stats.timeline = Timeline::default();
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
        let mut fold = TimelineFold::default();
        // Each timeline's 40 requests, with room for their tokens.
        let counts = RunStats {
            total_requests: 40,
            output_tokens: 40 * 40,
            ..RunStats::default()
        };
        fold.add(&a, 0, &counts).unwrap();
        fold.add(&b, 1, &counts).unwrap();
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
