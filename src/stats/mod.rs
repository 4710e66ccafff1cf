//! Timing statistics: a per-thread [`Recorder`] per timing, merged once at the end of a run, and its
//! [`Summary`] (mean, sample std, p50/p90/p97/p99/p99.9, min, max) plus a log-scale [`Histogram`].
//!
//! Up to [`EXACT_LIMIT`] samples a recorder keeps every sample, and its summary equals numpy's
//! (`np.mean`, `np.std(ddof=1)`, `np.percentile` with the default linear method) on the same samples,
//! to floating rounding. Past that it switches, once, to a bounded-memory sketch ([`sketch`]) whose
//! percentiles stay within 0.1% rank error; mean and std stay exact to rounding (two-pass at the
//! switch, then Welford, merged with Chan's formula). The exact window is 800 KB per recorder at
//! most; the sketch about 20,000 floats. What the timings are and when they are taken belongs to the engine; turning
//! summaries into JSON or text belongs to the report.

pub mod histogram;
pub mod pack;
pub mod sketch;

pub use histogram::{HistRow, Histogram, Sample, bucket_of};
use sketch::{RankIndex, Sketch};

/// Samples kept exactly per recorder; past this a recorder moves to the sketch.
pub const EXACT_LIMIT: usize = 100_000;

/// One timing's samples, in seconds.
///
/// `record` drops NaN and infinities (no timing is infinite; a value that is not a number cannot be
/// ranked) and clamps negatives (clock quirks) to 0.0.
#[derive(Clone, Debug, Default)]
pub struct Recorder {
    /// Every sample in recording order, while exact; empty with no capacity once sketched.
    samples: Vec<f64>,
    /// Present once the count has passed [`EXACT_LIMIT`].
    sketch: Option<Box<Sketch>>,
    n: u64,
    /// Welford running mean and sum of squared deviations, kept only in sketch mode: while exact,
    /// the samples give them two-pass (as numpy does), and `record` skips a dependent division.
    mean: f64,
    m2: f64,
    hist: Histogram,
}

/// The statistics of one timing. `mean` is None with no samples; std and percentiles with fewer
/// than 2, as in the original service.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Summary {
    pub count: u64,
    pub mean: Option<f64>,
    pub std: Option<f64>,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p97: Option<f64>,
    pub p99: Option<f64>,
    /// p99.9.
    pub p999: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl Recorder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one timing. See the type docs for NaN, infinite and negative values.
    #[inline]
    pub fn record(&mut self, secs: f64) {
        if let Some(s) = Sample::of(secs) {
            self.record_sample(s);
        }
    }

    /// Counts a sample whose bucket is known ([`Sample::of`]).
    #[inline]
    pub fn record_sample(&mut self, sample: Sample) {
        let secs = sample.secs;
        self.n += 1;
        self.hist.record(sample);
        match &mut self.sketch {
            Some(s) => {
                let d = secs - self.mean;
                self.mean += d / self.n as f64;
                self.m2 += d * (secs - self.mean);
                s.insert(secs);
            }
            None => {
                self.samples.push(secs);
                if self.samples.len() > EXACT_LIMIT {
                    (self.mean, self.m2) = self.moments();
                    self.switch_to_sketch();
                }
            }
        }
    }

    /// Moves the exact samples into a new sketch and frees them. Called at most once per recorder,
    /// since nothing ever leaves sketch mode.
    /// The caller sets the running moments first (they are only kept in sketch mode).
    fn switch_to_sketch(&mut self) {
        let mut s = Box::new(Sketch::new());
        for &x in &self.samples {
            s.insert(x);
        }
        self.samples = Vec::new();
        self.sketch = Some(s);
    }

    /// Folds another recorder into this one. Stays exact when the combined count is within
    /// [`EXACT_LIMIT`]; the samples keep their order (self's, then other's).
    pub fn merge(&mut self, other: Recorder) {
        if other.n == 0 {
            return;
        }
        if self.is_exact()
            && other.is_exact()
            && self.samples.len() + other.samples.len() <= EXACT_LIMIT
        {
            self.samples.extend_from_slice(&other.samples);
            self.n += other.n;
            self.hist.merge(&other.hist);
            return;
        }
        // From here the result is a sketch, so it needs running moments: Chan's combination.
        let ((ma, m2a), (mb, m2b)) = (self.moments(), other.moments());
        let (na, nb) = (self.n as f64, other.n as f64);
        let n = na + nb;
        let d = mb - ma;
        self.mean = ma + d * (nb / n);
        self.m2 = m2a + m2b + d * d * (na * nb / n);
        self.n += other.n;
        self.hist.merge(&other.hist);

        match (self.sketch.as_mut(), other.sketch) {
            (Some(s), Some(o)) => s.merge(*o),
            (Some(s), None) => other.samples.iter().for_each(|&x| s.insert(x)),
            (None, Some(mut o)) => {
                self.samples.iter().for_each(|&x| o.insert(x));
                self.samples = Vec::new();
                self.sketch = Some(o);
            }
            (None, None) => {
                self.switch_to_sketch();
                if let Some(s) = self.sketch.as_mut() {
                    other.samples.iter().for_each(|&x| s.insert(x));
                }
            }
        }
    }

    pub fn count(&self) -> u64 {
        self.n
    }

    /// Mean and sum of squared deviations: two-pass from the samples while exact, else running.
    fn moments(&self) -> (f64, f64) {
        if self.is_exact() {
            if self.samples.is_empty() {
                return (0.0, 0.0);
            }
            let (mean, var) = exact_mean_var(&self.samples);
            let m2 = if self.samples.len() < 2 {
                0.0
            } else {
                var * (self.samples.len() - 1) as f64
            };
            (mean, m2)
        } else {
            (self.mean, self.m2)
        }
    }

    pub fn is_exact(&self) -> bool {
        self.sketch.is_none()
    }

    /// Every sample in recording order while the recorder is exact; None once it is a sketch.
    /// For checks against numpy on the same samples (a merged run against its shards').
    pub fn exact_samples(&self) -> Option<&[f64]> {
        self.is_exact().then_some(self.samples.as_slice())
    }

    /// Capacity of the exact sample store; 0 once the recorder has switched to the sketch.
    pub fn exact_capacity(&self) -> usize {
        self.samples.capacity()
    }

    /// Items the sketch holds (0 while exact), to check memory stays bounded.
    pub fn sketch_retained(&self) -> usize {
        self.sketch.as_ref().map_or(0, |s| s.retained())
    }

    pub fn histogram(&self) -> Histogram {
        self.hist.clone()
    }

    /// The q-quantile, q in [0, 1], by numpy's linear method (exactly while exact, to within 0.1%
    /// rank error after). None with no samples or q outside [0, 1]. Sorts a copy of the samples
    /// per call, so ask [`Recorder::summary`] for the usual four.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.n == 0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        let mut out = [0.0];
        self.percentiles(&[q * 100.0], &mut out);
        Some(out[0])
    }

    /// Fills `out[i]` with percentile `qs[i]` (in [0, 100]); the caller ensures n > 0. While
    /// exact, one copy of the samples serves every requested percentile (selection, not a sort).
    fn percentiles(&self, qs: &[f64], out: &mut [f64]) {
        match &self.sketch {
            None => {
                let mut ranked = self.samples.clone();
                percentiles_by_selection(&mut ranked, qs, out);
            }
            Some(s) => {
                let index = RankIndex::new(s.weighted());
                let (min, max) = (self.hist.min(), self.hist.max());
                for (o, &q) in out.iter_mut().zip(qs) {
                    *o = sketch_percentile(&index, self.n, q, min, max);
                }
            }
        }
    }

    pub fn summary(&self) -> Summary {
        let mut s = Summary {
            count: self.n,
            min: self.hist.min(),
            max: self.hist.max(),
            ..Summary::default()
        };
        if self.n == 0 {
            return s;
        }
        let (mean, var) = if self.is_exact() {
            exact_mean_var(&self.samples)
        } else {
            (self.mean, self.m2 / (self.n as f64 - 1.0))
        };
        s.mean = Some(mean);
        if self.n < 2 {
            return s;
        }
        s.std = Some(var.max(0.0).sqrt());
        let mut p = [0.0; 5];
        self.percentiles(&[50.0, 90.0, 97.0, 99.0, 99.9], &mut p);
        s.p50 = Some(p[0]);
        s.p90 = Some(p[1]);
        s.p97 = Some(p[2]);
        s.p99 = Some(p[3]);
        s.p999 = Some(p[4]);
        s
    }

    /// At most `k` equal-width rows from the smallest sample to the largest: finer than the
    /// log-scale [`Histogram`] (whose buckets are 26% wide) where the samples are close together,
    /// as an LLM mock's fixed timings are. Counts are exact while the recorder is; past
    /// [`EXACT_LIMIT`] they come from the sketch's weighted items, within its rank error. Empty
    /// with no samples or `k == 0`; one row when every sample is the same value.
    pub fn linear_rows(&self, k: usize) -> Vec<HistRow> {
        let (Some(min), Some(max)) = (self.hist.min(), self.hist.max()) else {
            return Vec::new();
        };
        if k == 0 {
            return Vec::new();
        }
        let k = if max > min { k } else { 1 };
        let width = (max - min) / k as f64;
        let mut rows: Vec<HistRow> = (0..k)
            .map(|i| HistRow {
                lower: min + width * i as f64,
                upper: if i + 1 == k {
                    max
                } else {
                    min + width * (i + 1) as f64
                },
                count: 0,
            })
            .collect();
        let mut add = |x: f64, w: u64| {
            // The last row is closed at `max`, so the largest sample lands in it.
            let i = if width > 0.0 {
                (((x - min) / width) as usize).min(k - 1)
            } else {
                0
            };
            rows[i].count += w;
        };
        match &self.sketch {
            None => self.samples.iter().for_each(|&x| add(x, 1)),
            Some(s) => s.weighted().into_iter().for_each(|(x, w)| add(x, w)),
        }
        rows
    }
}

/// The linear-method percentile over the sketch: numpy's formula on the sketch's estimated values
/// at the two neighbouring ranks, kept within the observed min and max.
fn sketch_percentile(index: &RankIndex, n: u64, q: f64, min: Option<f64>, max: Option<f64>) -> f64 {
    let vi = (n - 1) as f64 * (q / 100.0);
    let (Some(lo_v), Some(hi_v)) = (min, max) else {
        return f64::NAN;
    };
    if vi <= 0.0 {
        return lo_v;
    }
    if vi >= (n - 1) as f64 {
        return hi_v;
    }
    let prev = vi.floor();
    let a = index.at(prev as u64).unwrap_or(lo_v);
    let b = index.at(prev as u64 + 1).unwrap_or(hi_v);
    lerp(a, b, vi - prev).clamp(lo_v, hi_v)
}

/// numpy's `_lerp`: from below for t < 0.5, from above otherwise (so t = 1 gives b exactly).
fn lerp(a: f64, b: f64, t: f64) -> f64 {
    let d = b - a;
    if t >= 0.5 {
        b - d * (1.0 - t)
    } else {
        a + d * t
    }
}

/// numpy's default ("linear") percentile of an ascending-sorted slice, q in [0, 100]: rank
/// `q/100 × (n−1)` interpolated between its two neighbours. NaN for an empty slice; q outside
/// [0, 100] clamps to the ends.
pub fn percentile_linear(sorted: &[f64], q: f64) -> f64 {
    match linear_rank(sorted.len(), q) {
        None => f64::NAN,
        Some((i, t)) if t > 0.0 => lerp(sorted[i], sorted[i + 1], t),
        Some((i, _)) => sorted[i],
    }
}

/// Where numpy's linear percentile `q` of `n` sorted samples falls: the rank `i` of the lower
/// neighbour and the fraction `t` of the way to rank `i + 1` (`t > 0` only when `i + 1 < n`).
/// None for `n == 0`.
fn linear_rank(n: usize, q: f64) -> Option<(usize, f64)> {
    if n == 0 {
        return None;
    }
    let vi = (n - 1) as f64 * (q / 100.0);
    if vi >= (n - 1) as f64 {
        return Some((n - 1, 0.0));
    }
    if vi.is_nan() || vi < 0.0 {
        return Some((0, 0.0));
    }
    let prev = vi.floor();
    Some((prev as usize, vi - prev))
}

/// [`percentile_linear`] of `xs` for each of `qs` without sorting it: each needed rank is
/// selected in turn (quickselect over what lies above the previous one), which leaves every
/// selected rank holding the value a sort would put there. Reorders `xs`; `xs` is not empty.
/// A sort of 20,000 samples costs about 15 comparisons a sample; this about 3.
fn percentiles_by_selection(xs: &mut [f64], qs: &[f64], out: &mut [f64]) {
    let n = xs.len();
    // At most two ranks per percentile; the usual five need ten.
    let mut ranks: Vec<usize> = Vec::with_capacity(2 * qs.len());
    for &q in qs {
        if let Some((i, t)) = linear_rank(n, q) {
            ranks.push(i);
            if t > 0.0 {
                ranks.push(i + 1);
            }
        }
    }
    ranks.sort_unstable();
    ranks.dedup();
    let mut lo = 0;
    for &r in &ranks {
        // Every rank below `lo` is in place and no larger than anything at or above it.
        xs[lo..].select_nth_unstable_by(r - lo, f64::total_cmp);
        lo = r + 1;
    }
    for (o, &q) in out.iter_mut().zip(qs) {
        *o = match linear_rank(n, q) {
            None => f64::NAN,
            Some((i, t)) if t > 0.0 => lerp(xs[i], xs[i + 1], t),
            Some((i, _)) => xs[i],
        };
    }
}

/// numpy's summation order (pairwise, unrolled by 8, blocks of 128) over `f(x)` for each `x` of
/// `xs`, so means and variances round the way `np.mean` / `np.std` do on a contiguous float64
/// array. Over a slice, so the leaves are plain loops with no index checks.
fn pairwise_sum(xs: &[f64], f: &impl Fn(f64) -> f64) -> f64 {
    let n = xs.len();
    if n < 8 {
        let mut res = 0.0;
        for &x in xs {
            res += f(x);
        }
        res
    } else if n <= 128 {
        let whole = n - n % 8;
        let mut blocks = xs[..whole].chunks_exact(8);
        let mut r = [0.0f64; 8];
        if let Some(first) = blocks.next() {
            for (rj, &x) in r.iter_mut().zip(first) {
                *rj = f(x);
            }
        }
        for block in blocks {
            for (rj, &x) in r.iter_mut().zip(block) {
                *rj += f(x);
            }
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &x in &xs[whole..] {
            res += f(x);
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum(&xs[..n2], f) + pairwise_sum(&xs[n2..], f)
    }
}

/// Two-pass mean and sample variance (ddof = 1) as numpy computes them. The variance is NaN for
/// one sample; callers only read it with two or more.
fn exact_mean_var(xs: &[f64]) -> (f64, f64) {
    let n = xs.len();
    let mean = pairwise_sum(xs, &|x| x) / n as f64;
    let ss = pairwise_sum(xs, &|x| {
        let d = x - mean;
        d * d
    });
    (mean, ss / (n as f64 - 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_linear_matches_formula() {
        let xs: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile_linear(&xs, 0.0), 1.0);
        assert_eq!(percentile_linear(&xs, 100.0), 10.0);
        assert_eq!(percentile_linear(&xs, 50.0), 5.5);
        assert_eq!(percentile_linear(&xs, 90.0), 9.1);
        assert!(percentile_linear(&[], 50.0).is_nan());
        assert_eq!(percentile_linear(&[3.0], 97.0), 3.0);
        assert_eq!(percentile_linear(&xs, 150.0), 10.0);
        assert_eq!(percentile_linear(&xs, -5.0), 1.0);
    }

    #[test]
    fn record_cleans_inputs() {
        let mut r = Recorder::new();
        r.record(f64::NAN);
        r.record(f64::INFINITY);
        r.record(-1.0);
        r.record(-0.0);
        r.record(2.0);
        assert_eq!(r.count(), 3);
        let s = r.summary();
        assert_eq!(s.min, Some(0.0));
        assert_eq!(s.max, Some(2.0));
        assert!(s.min.is_some_and(|m| m.is_sign_positive()));
        assert_eq!(r.histogram().total(), 3);
    }

    #[test]
    fn pairwise_sum_agrees_with_plain_sum_on_integers() {
        for n in [0usize, 1, 7, 8, 9, 127, 128, 129, 1000, 4097] {
            let xs: Vec<f64> = (0..n).map(|i| i as f64).collect();
            let s = pairwise_sum(&xs, &|x| x);
            assert_eq!(s, (n * n.saturating_sub(1) / 2) as f64, "n={n}");
        }
    }

    #[test]
    fn selection_gives_the_sorted_percentiles() {
        let mut rng = crate::rng::SplitMix64::new(7);
        let qs = [
            0.0, 0.1, 1.0, 50.0, 90.0, 97.0, 99.0, 99.9, 100.0, 33.3, 50.0,
        ];
        for n in [1usize, 2, 3, 10, 11, 999, 1000, 20_001] {
            // Few distinct values too, so ties sit on the selected ranks.
            for distinct in [3u64, 1_000_000] {
                let xs: Vec<f64> = (0..n)
                    .map(|_| (rng.next_u64() % distinct) as f64 * 1e-4)
                    .collect();
                let mut sorted = xs.clone();
                sorted.sort_unstable_by(f64::total_cmp);
                let mut ranked = xs.clone();
                let mut got = [0.0; 11];
                percentiles_by_selection(&mut ranked, &qs, &mut got);
                for (g, &q) in got.iter().zip(&qs) {
                    let want = percentile_linear(&sorted, q);
                    assert_eq!(g.to_bits(), want.to_bits(), "n={n} q={q}");
                }
            }
        }
    }

    #[test]
    fn linear_rows_split_min_to_max_evenly() {
        let mut r = Recorder::new();
        assert!(r.linear_rows(4).is_empty());
        // Ten samples between 240.0 and 240.9 ms: one log bucket, four linear rows.
        for i in 0..10 {
            r.record(0.240 + i as f64 * 1e-4);
        }
        assert_eq!(r.histogram().rows(12).len(), 1);
        let rows = r.linear_rows(4);
        assert_eq!(rows.len(), 4);
        assert_eq!(
            rows.iter().map(|r| r.count).collect::<Vec<_>>(),
            [3, 2, 2, 3]
        );
        assert_eq!(rows[0].lower, 0.240);
        assert_eq!(rows[3].upper, 0.240 + 9.0 * 1e-4);
        for w in rows.windows(2) {
            assert!((w[0].upper - w[1].lower).abs() < 1e-15);
        }
        assert!(r.linear_rows(0).is_empty());
        // One distinct value: one row with every sample.
        let mut one = Recorder::new();
        (0..5).for_each(|_| one.record(0.05));
        assert_eq!(
            one.linear_rows(8),
            [HistRow {
                lower: 0.05,
                upper: 0.05,
                count: 5
            }]
        );
    }

    #[test]
    fn p999_is_numpys() {
        let mut r = Recorder::new();
        (1..=2000).for_each(|i| r.record(f64::from(i)));
        // numpy: np.percentile(np.arange(1, 2001), 99.9) == 1998.001
        let p = r.summary().p999.unwrap();
        assert!((p - 1998.001).abs() < 1e-9, "{p}");
        let mut one = Recorder::new();
        one.record(1.0);
        assert_eq!(one.summary().p999, None);
    }

    #[test]
    fn quantile_rejects_bad_q_and_empty() {
        let mut r = Recorder::new();
        assert_eq!(r.quantile(0.5), None);
        r.record(1.0);
        r.record(3.0);
        assert_eq!(r.quantile(0.5), Some(2.0));
        assert_eq!(r.quantile(1.5), None);
        assert_eq!(r.quantile(f64::NAN), None);
    }

    #[test]
    fn switch_happens_once_and_frees_samples() {
        let mut r = Recorder::new();
        for i in 0..EXACT_LIMIT {
            r.record(i as f64 * 1e-6);
        }
        assert!(r.is_exact());
        r.record(1.0);
        assert!(!r.is_exact());
        assert_eq!(r.exact_capacity(), 0);
        for i in 0..50_000 {
            r.record(i as f64 * 1e-6);
        }
        assert_eq!(r.exact_capacity(), 0);
        assert_eq!(r.count(), EXACT_LIMIT as u64 + 50_001);
        let s = r.summary();
        assert_eq!(s.min, Some(0.0));
        assert_eq!(s.max, Some(1.0));
    }

    /// Thread CPU time in ns, so the measurement below is not skewed by a busy machine.
    fn cpu_ns() -> f64 {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
        t.tv_sec as f64 * 1e9 + t.tv_nsec as f64
    }

    /// Prints the CPU cost of `record` in each mode and of its parts; run with
    /// `cargo test --release -- --ignored --nocapture record_cost`. No assertion on time.
    #[test]
    #[ignore]
    fn record_cost() {
        let n = 3_000_000usize;
        let mut x = 0x1234_5678u64;
        let vals: Vec<f64> = (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                0.001 + (x >> 11) as f64 / (1u64 << 53) as f64 * 0.2
            })
            .collect();
        let per = |t0: f64, k: usize| (cpu_ns() - t0) / k as f64;
        // Calibration: one dependent multiply-add per value, so the other numbers can be read
        // against the machine's speed at the time.
        let t = cpu_ns();
        let mut acc = 0.0;
        for &v in &vals {
            acc = acc * 0.999_999 + v;
        }
        let baseline = per(t, n);
        let mut h = Histogram::new();
        let t = cpu_ns();
        for &v in &vals {
            h.record(Sample::of(v).unwrap());
        }
        let hist = per(t, n);
        let mut r = Recorder::new();
        let t = cpu_ns();
        for &v in &vals[..EXACT_LIMIT] {
            r.record(v);
        }
        let exact = per(t, EXACT_LIMIT);
        r.record(0.5); // switch
        let t = cpu_ns();
        for &v in &vals[EXACT_LIMIT..] {
            r.record(v);
        }
        let sk = per(t, n - EXACT_LIMIT);
        let mut s = Sketch::new();
        let t = cpu_ns();
        for &v in &vals {
            s.insert(v);
        }
        let sketch_only = per(t, n);
        let t = cpu_ns();
        let summary = r.summary();
        println!(
            "baseline {baseline:.1} ns (acc {acc:.3}); record: exact {exact:.1} ns, sketch {sk:.1} ns (histogram alone {hist:.1}, sketch insert \
             alone {sketch_only:.1}); summary {:.0} us; retained {}; {summary:?}",
            (cpu_ns() - t) / 1e3,
            r.sketch_retained(),
        );
        assert_eq!(h.total(), n as u64);
    }
}
