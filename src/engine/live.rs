//! Rolling percentiles for a live view of a run (the command line's progress line): each lane
//! counts the response times (time to first token in streaming runs) it sees into log-scale
//! buckets per half second, in atomics another thread reads without locks. It owns the counting
//! and the reading; when to show them and how is the caller's (`cli`).
//!
//! Each lane has [`SLOTS`] slots of [`stats::Histogram`](crate::stats::Histogram)'s buckets,
//! slot `e mod SLOTS` holding epoch `e` (the half second `[e·EPOCH, (e+1)·EPOCH)` after the
//! run's start). The lane is the only writer: an increment is a relaxed load and store (no
//! read-modify-write, no lock, no allocation), and the first sample of a new epoch clears its
//! slot, tagging it with the epoch. A reader takes the two epochs before the current one, the
//! last whole second, checking each slot's tag before and after reading it (a seqlock), so a
//! slot cleared under it is skipped rather than misread.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};
use std::time::{Duration, Instant};

use super::outcome::Completed;
use super::stats::Values;
use crate::metric::Id;
use crate::stats::histogram::BUCKETS;
use crate::stats::{Histogram, Sample};

/// The length of one epoch.
pub const EPOCH: Duration = Duration::from_millis(500);
/// Epochs kept per lane: the one being written, the two read, and one spare so a reader a
/// little late still finds its epochs intact.
pub const SLOTS: usize = 4;
/// A slot being cleared, or never used.
const NONE: u64 = u64::MAX;

struct Slot {
    epoch: AtomicU64,
    counts: [AtomicU32; BUCKETS],
}

impl Default for Slot {
    fn default() -> Self {
        Slot {
            epoch: AtomicU64::new(NONE),
            counts: std::array::from_fn(|_| AtomicU32::new(0)),
        }
    }
}

/// One lane's rolling buckets (see the module docs).
pub struct Rolling {
    slots: [Slot; SLOTS],
}

impl Default for Rolling {
    fn default() -> Self {
        Rolling {
            slots: std::array::from_fn(|_| Slot::default()),
        }
    }
}

impl std::fmt::Debug for Rolling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rolling")
    }
}

impl Rolling {
    /// Counts `secs`, seen `at` after the run's start. Only the lane that owns this may call it.
    /// A sample of an epoch whose slot already holds a later one comes too late and is dropped.
    #[inline]
    pub fn record(&self, at: Duration, sample: Sample) {
        let e = epoch_of(at);
        let slot = &self.slots[(e % SLOTS as u64) as usize];
        let tag = slot.epoch.load(Ordering::Relaxed);
        if tag != e {
            if tag != NONE && tag > e {
                return;
            }
            slot.epoch.store(NONE, Ordering::Relaxed);
            fence(Ordering::Release);
            for c in &slot.counts {
                c.store(0, Ordering::Relaxed);
            }
            slot.epoch.store(e, Ordering::Release);
        }
        let c = &slot.counts[usize::from(sample.bucket)];
        // The lane is the only writer: a load and a store, not a locked add.
        c.store(c.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
    }

    /// Adds epoch `e`'s counts to `into`; false when the slot was cleared while being read.
    fn add_epoch(&self, e: u64, into: &mut [u64; BUCKETS]) -> bool {
        let slot = &self.slots[(e % SLOTS as u64) as usize];
        if slot.epoch.load(Ordering::Acquire) != e {
            // Nothing was seen in that epoch (or it is long gone): it adds nothing.
            return true;
        }
        let mut read = [0u32; BUCKETS];
        for (r, c) in read.iter_mut().zip(&slot.counts) {
            *r = c.load(Ordering::Relaxed);
        }
        fence(Ordering::Acquire);
        if slot.epoch.load(Ordering::Relaxed) != e {
            return false;
        }
        for (i, r) in into.iter_mut().zip(read) {
            *i += u64::from(r);
        }
        true
    }
}

fn epoch_of(at: Duration) -> u64 {
    u64::try_from(at.as_nanos() / EPOCH.as_nanos()).unwrap_or(NONE - 1)
}

/// The value a lane's live view counts for a request, and when: its time to first token in a
/// streaming run (successes with a token), else its response time (whole responses), as the
/// statistics computed them (`values`).
#[inline]
pub fn sample(
    c: &Completed,
    values: &Values,
    t0: Instant,
    first_token: bool,
) -> Option<(Duration, Sample)> {
    let (id, at) = if first_token {
        (Id::TimeToFirstToken, c.first_token_at?)
    } else {
        (Id::ResponseTime, c.end_at?)
    };
    Some((at.saturating_duration_since(t0), values[id as usize]?))
}

/// What the lanes saw in the last whole second before `elapsed`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Recent {
    pub count: u64,
    pub p50: Option<f64>,
    pub p99: Option<f64>,
}

/// Sums the last whole second (the two epochs before the one `elapsed` falls in) over `lanes`.
pub fn recent<'a>(lanes: impl Iterator<Item = &'a Rolling>, elapsed: Duration) -> Recent {
    let now = epoch_of(elapsed);
    let mut counts = [0u64; BUCKETS];
    if now >= 1 {
        for lane in lanes {
            for e in now.saturating_sub(2)..now {
                let mut one = [0u64; BUCKETS];
                if lane.add_epoch(e, &mut one) {
                    for (c, o) in counts.iter_mut().zip(one) {
                        *c += o;
                    }
                }
            }
        }
    }
    let count = counts.iter().sum();
    Recent {
        count,
        p50: quantile(&counts, count, 0.50),
        p99: quantile(&counts, count, 0.99),
    }
}

/// The middle of the bucket holding the sample of rank `round(q·(n−1))`.
fn quantile(counts: &[u64; BUCKETS], n: u64, q: f64) -> Option<f64> {
    if n == 0 {
        return None;
    }
    let rank = ((q * (n - 1) as f64).round() as u64).min(n - 1);
    let mut seen = 0;
    for (b, &c) in counts.iter().enumerate() {
        seen += c;
        if seen > rank {
            return Some(Histogram::middle(b));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::outcome::Outcome;
    use super::super::stats::request_values;
    use super::*;

    fn secs(x: f64) -> Sample {
        Sample::of(x).unwrap()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn near(got: Option<f64>, want: f64) -> bool {
        got.is_some_and(|g| (g / want - 1.0).abs() <= 10f64.powf(0.05) - 1.0 + 1e-12)
    }

    #[test]
    fn the_last_whole_second_is_read() {
        let r = Rolling::default();
        // Epoch 0 (0-499 ms): 100 samples of 1 ms; epoch 1: 97 of 1 ms and 3 of 100 ms.
        for i in 0..100 {
            r.record(ms(i * 4), secs(0.001));
        }
        for i in 0..100 {
            r.record(ms(500 + i * 4), secs(if i % 40 == 7 { 0.1 } else { 0.001 }));
        }
        // During epoch 1 only epoch 0 is whole.
        let seen = recent(std::iter::once(&r), ms(700));
        assert_eq!(seen.count, 100);
        assert!(near(seen.p50, 0.001) && near(seen.p99, 0.001), "{seen:?}");
        // During epoch 2 both are read: the sample of rank round(0.99 · 199) = 197 is 100 ms.
        let seen = recent(std::iter::once(&r), ms(1200));
        assert_eq!(seen.count, 200);
        assert!(near(seen.p50, 0.001) && near(seen.p99, 0.1), "{seen:?}");
        // Two epochs later epoch 0 has left the window: nothing new was counted since.
        let seen = recent(std::iter::once(&r), ms(1700));
        assert_eq!(seen.count, 100);
        assert_eq!(recent(std::iter::once(&r), ms(2600)), Recent::default());
        // Before a whole epoch has passed there is nothing to show.
        assert_eq!(recent(std::iter::once(&r), ms(300)), Recent::default());
    }

    #[test]
    fn a_slot_is_cleared_for_its_next_epoch_and_late_samples_are_dropped() {
        let r = Rolling::default();
        r.record(ms(100), secs(0.002));
        // Epoch 4 reuses epoch 0's slot.
        r.record(ms(2100), secs(0.003));
        r.record(ms(100), secs(0.002));
        let seen = recent(std::iter::once(&r), ms(3000));
        assert_eq!(seen.count, 1, "epoch 4 holds its own sample only");
        assert!(near(seen.p50, 0.003), "{seen:?}");
        // Lanes add up.
        let other = Rolling::default();
        other.record(ms(2400), secs(0.003));
        let both = [r, other];
        assert_eq!(recent(both.iter(), ms(2600)).count, 2);
    }

    #[test]
    fn samples_are_first_tokens_or_whole_responses() {
        let t0 = Instant::now();
        let at = |n: u64| t0 + ms(n);
        let mut c = Completed::unsent(0, at(0), 0, super::super::Failure::Timeout, at(9));
        assert_eq!(
            sample(&c, &request_values(&c), t0, false),
            None,
            "never sent"
        );
        c.dispatch = Some(at(10));
        assert_eq!(
            sample(&c, &request_values(&c), t0, false),
            None,
            "no whole response"
        );
        c.end_at = Some(at(30));
        c.first_token_at = Some(at(15));
        assert_eq!(
            sample(&c, &request_values(&c), t0, true),
            None,
            "a failed stream has no first token"
        );
        c.outcome = Outcome::Success;
        assert_eq!(
            sample(&c, &request_values(&c), t0, false).map(|(at, s)| (at, s.secs)),
            Some((ms(30), 0.020))
        );
        assert_eq!(
            sample(&c, &request_values(&c), t0, true).map(|(at, s)| (at, s.secs)),
            Some((ms(15), 0.005))
        );
    }
}
