//! A fixed log-scale histogram of timings for the text report: 10 buckets per decade from 1 µs to
//! 1000 s, plus one bucket below (including 0) and one at or above. Fixed bounds make it mergeable by
//! adding counts, and finding a bucket is a few compares, so recording stays O(1).

use std::sync::LazyLock;

/// Buckets per decade of the log-scale part.
pub const BUCKETS_PER_DECADE: usize = 10;
/// log10 of the lower edge of the first log-scale bucket (1 µs).
const LOW_DECADE: i32 = -6;
/// log10 of the upper edge of the last log-scale bucket (1000 s).
const HIGH_DECADE: i32 = 3;
const LOG_BUCKETS: usize = (HIGH_DECADE - LOW_DECADE) as usize * BUCKETS_PER_DECADE;
/// All buckets: underflow, the log-scale ones, overflow.
pub const BUCKETS: usize = LOG_BUCKETS + 2;

/// Bucket counts plus the min and max observed (which bound the display rows).
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    counts: [u64; BUCKETS],
    /// +inf / -inf while empty; plain floats keep `record` free of branches on Option.
    min: f64,
    max: f64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: [0; BUCKETS],
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

/// One row of a histogram: samples in `[lower, upper)` (the last bucket's upper is infinite).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HistRow {
    pub lower: f64,
    pub upper: f64,
    pub count: u64,
}

/// The log-scale edges, `edges[i] = 10^(i/10 − 6)`, and a lookup from a value's float bits to
/// its bucket, computed once so a bucket costs a shift, a load and one compare.
struct Table {
    edges: [f64; LOG_BUCKETS + 1],
    /// Slot `k` (the values whose bits shifted right by `52 − SLOT_BITS` are `low_key + k`):
    /// the edge index `i` with `edges[i]` ≤ the slot's smallest value (0 below the first edge).
    first: Box<[u16]>,
    low_key: u64,
}

/// Mantissa bits in a lookup key: slots of 1/16 octave (0.019 decade), narrower than a bucket
/// (0.1 decade), so one slot holds at most one edge and one compare settles the bucket.
const SLOT_BITS: u32 = 4;

fn key(secs: f64) -> u64 {
    secs.to_bits() >> (52 - SLOT_BITS)
}

static TABLE: LazyLock<Table> = LazyLock::new(|| {
    // Decade edges as literals so 1 ms is exactly the float 1e-3, not a rounding of powf.
    const DECADES: [f64; (HIGH_DECADE - LOW_DECADE) as usize + 1] =
        [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 1e1, 1e2, 1e3];
    let mut edges = [0.0; LOG_BUCKETS + 1];
    for (i, x) in edges.iter_mut().enumerate() {
        let (d, j) = (i / BUCKETS_PER_DECADE, i % BUCKETS_PER_DECADE);
        *x = DECADES[d] * 10f64.powf(j as f64 / BUCKETS_PER_DECADE as f64);
    }
    let low_key = key(edges[0]);
    let first = (low_key..=key(edges[LOG_BUCKETS]))
        .map(|k| {
            let smallest = f64::from_bits(k << (52 - SLOT_BITS));
            // The last edge at or below the slot's smallest value (edges are ascending).
            edges[..LOG_BUCKETS]
                .partition_point(|&e| e <= smallest)
                .saturating_sub(1) as u16
        })
        .collect();
    Table {
        edges,
        first,
        low_key,
    }
});

/// A value in seconds made fit to record (finite, non-negative: a negative one counts as 0) with
/// its bucket, found once for every recorder that counts it (the run's, its stage's, the
/// timeline's, the live view's).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    pub secs: f64,
    pub bucket: u16,
}

impl Sample {
    /// `secs` as a sample; None for NaN and infinities, which no recorder counts.
    #[inline]
    pub fn of(secs: f64) -> Option<Sample> {
        if !secs.is_finite() {
            return None;
        }
        // Also turns -0.0 into 0.0, so sorting by total order equals sorting by value.
        let secs = if secs > 0.0 { secs } else { 0.0 };
        // At most BUCKETS - 1, far below u16::MAX.
        Some(Sample {
            secs,
            bucket: bucket_of(secs) as u16,
        })
    }
}

/// The bucket of a non-negative finite value. The value's exponent and top mantissa bits pick a
/// slot narrower than any bucket; the slot's bucket, or the next one if the value is past the one
/// edge the slot may hold, is the answer: exact against the edges, with no logarithm. Other
/// recorders on the same buckets (the timeline's, the live progress line's) count with it.
#[inline]
pub fn bucket_of(secs: f64) -> usize {
    let t = &*TABLE;
    if secs < t.edges[0] {
        return 0;
    }
    if secs >= t.edges[LOG_BUCKETS] {
        return BUCKETS - 1;
    }
    // In range: edges[0] ≤ secs < edges[LOG_BUCKETS], so the key is within the table and
    // i < LOG_BUCKETS.
    let mut i = usize::from(t.first[(key(secs) - t.low_key) as usize]);
    if secs >= t.edges[i + 1] {
        i += 1;
    }
    1 + i
}

/// Log-scale boundary `i` (0 = 1 µs, LOG_BUCKETS = 1000 s).
fn edge(i: usize) -> f64 {
    TABLE.edges[i]
}

impl Histogram {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one value; the caller has already dropped NaN and clamped negatives.
    #[inline]
    pub(crate) fn record(&mut self, s: Sample) {
        self.counts[usize::from(s.bucket)] += 1;
        self.min = self.min.min(s.secs);
        self.max = self.max.max(s.secs);
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// The bucket counts, for [`super::pack`].
    pub(super) fn counts(&self) -> &[u64; BUCKETS] {
        &self.counts
    }

    /// A histogram with these counts and extremes (`+inf`/`-inf` when empty), for
    /// [`super::pack`], which checks them.
    pub(super) fn from_parts(counts: [u64; BUCKETS], min: f64, max: f64) -> Histogram {
        Histogram { counts, min, max }
    }

    /// Total number of samples counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Smallest value counted; None while empty.
    pub fn min(&self) -> Option<f64> {
        (self.min <= self.max).then_some(self.min)
    }

    /// Largest value counted; None while empty.
    pub fn max(&self) -> Option<f64> {
        (self.min <= self.max).then_some(self.max)
    }

    /// The bounds of bucket `i`: `[0, 1 µs)`, the log-scale buckets, then `[1000 s, inf)`.
    pub fn bounds(i: usize) -> (f64, f64) {
        if i == 0 {
            (0.0, edge(0))
        } else if i >= BUCKETS - 1 {
            (edge(LOG_BUCKETS), f64::INFINITY)
        } else {
            (edge(i - 1), edge(i))
        }
    }

    /// The value that stands for bucket `i` when only its count is known: the geometric middle
    /// of a log-scale bucket (within 10^(1/20) − 1 ≈ 12.2% of any value in it), half the first
    /// bucket's upper edge, the last bucket's lower edge.
    pub fn middle(i: usize) -> f64 {
        let (lo, hi) = Self::bounds(i);
        if lo <= 0.0 {
            hi / 2.0
        } else if hi.is_infinite() {
            lo
        } else {
            (lo * hi).sqrt()
        }
    }

    /// Every bucket as `(lower, upper, count)`, in ascending order, empty ones included.
    pub fn iter(&self) -> impl Iterator<Item = HistRow> + '_ {
        self.counts.iter().enumerate().map(|(i, &count)| {
            let (lower, upper) = Self::bounds(i);
            HistRow {
                lower,
                upper,
                count,
            }
        })
    }

    /// At most `k` display rows covering the buckets from the min to the max observed, each row
    /// joining an equal run of adjacent buckets; the outer edges are clamped to the min and max so
    /// the report does not show a range nothing fell in. Empty when nothing was counted or `k == 0`.
    pub fn rows(&self, k: usize) -> Vec<HistRow> {
        let (Some(min), Some(max)) = (self.min(), self.max()) else {
            return Vec::new();
        };
        if k == 0 {
            return Vec::new();
        }
        let first = bucket_of(min);
        let last = bucket_of(max);
        let span = last - first + 1;
        let per_row = span.div_ceil(k);
        let mut rows = Vec::with_capacity(span.div_ceil(per_row));
        let mut start = first;
        while start <= last {
            let end = (start + per_row - 1).min(last);
            let count = self.counts[start..=end].iter().sum();
            rows.push(HistRow {
                lower: Self::bounds(start).0.max(min),
                upper: Self::bounds(end).1.min(max),
                count,
            });
            start = end + 1;
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bucket by walking the edges: what the lookup must equal.
    fn bucket_by_walk(secs: f64) -> usize {
        let edges = &TABLE.edges;
        if secs < edges[0] {
            return 0;
        }
        1 + edges[..=LOG_BUCKETS].partition_point(|&e| e <= secs) - 1
    }

    #[test]
    fn the_lookup_equals_the_edges() {
        let mut probes = vec![0.0, 1e-9, 5e-7, 1e3, 1e4, f64::MAX, f64::MIN_POSITIVE];
        for &e in TABLE.edges.iter() {
            probes.extend([e, e.next_down(), e.next_up(), e * 1.01, e * 0.99]);
        }
        let mut x = 1e-7;
        while x < 2e3 {
            probes.push(x);
            x *= 1.000_7;
        }
        for secs in probes {
            let want = bucket_by_walk(secs).min(BUCKETS - 1);
            assert_eq!(bucket_of(secs), want, "{secs:e}");
        }
    }

    #[test]
    fn buckets_are_ordered_and_decade_aligned() {
        assert_eq!(BUCKETS, 92);
        assert_eq!(bucket_of(0.0), 0);
        assert_eq!(bucket_of(0.9e-6), 0);
        assert_eq!(bucket_of(1e-6), 1);
        assert_eq!(bucket_of(1.3e-6), 2);
        assert_eq!(bucket_of(0.0105), 41);
        assert_eq!(bucket_of(999.9), BUCKETS - 2);
        assert_eq!(bucket_of(1000.0), BUCKETS - 1);
        assert_eq!(bucket_of(1e12), BUCKETS - 1);
        let (lo, hi) = Histogram::bounds(41);
        assert!((lo - 0.01).abs() < 1e-15 && (hi - 10f64.powf(-1.9)).abs() < 1e-15);
        let mut prev = 0.0;
        for row in Histogram::new().iter() {
            assert!(row.lower >= prev && row.upper > row.lower);
            prev = row.upper;
        }
        // Every value lands in a bucket whose bounds contain it (up to log10 rounding at edges).
        for &x in &[2e-6, 3.3e-5, 0.00042, 0.05, 0.7, 8.0, 99.0, 512.0] {
            let (lo, hi) = Histogram::bounds(bucket_of(x));
            assert!(
                lo <= x * (1.0 + 1e-12) && x < hi * (1.0 + 1e-12),
                "{x} {lo} {hi}"
            );
        }
    }

    #[test]
    fn merge_adds_counts_and_rows_cover_all() {
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        for i in 0..1000 {
            a.record(Sample::of(0.001 + i as f64 * 1e-5).unwrap());
            b.record(Sample::of(0.5 + i as f64 * 1e-3).unwrap());
        }
        a.merge(&b);
        assert_eq!(a.total(), 2000);
        assert_eq!(a.min(), Some(0.001));
        assert_eq!(a.max(), Some(0.5 + 999.0 * 1e-3));
        let rows = a.rows(8);
        assert!(rows.len() <= 8 && !rows.is_empty());
        assert_eq!(rows.iter().map(|r| r.count).sum::<u64>(), 2000);
        assert_eq!(rows[0].lower, 0.001);
        assert_eq!(rows[rows.len() - 1].upper, 0.5 + 999.0 * 1e-3);
        assert!(Histogram::new().rows(8).is_empty());
        assert!(a.rows(0).is_empty());
        // One distinct value: one row.
        let mut one = Histogram::new();
        one.record(Sample::of(0.02).unwrap());
        assert_eq!(one.rows(10).len(), 1);
    }
}
