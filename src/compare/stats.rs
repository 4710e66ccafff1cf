//! The statistics `pacer compare` and `--repeat` judge with, pure functions over sorted samples:
//! the Mann–Whitney U test (normal approximation with the tie and continuity corrections, as
//! scipy's `mannwhitneyu(..., method="asymptotic")`), a percentile bootstrap of the difference of
//! a statistic between two runs, a two-proportion test for error rates, and Student's t
//! quantiles for a mean's confidence interval. Where the samples come from and what a result
//! means to a user is [`super`]'s.

use crate::rng::SplitMix64;
use crate::stats::percentile_linear;

/// The statistics the bootstrap resamples, in this order: p50, p90, p99 and the mean.
pub const QUANTILES: [f64; 3] = [50.0, 90.0, 99.0];

/// `1 − Φ(x)` for the standard normal: `erfc(x / √2) / 2`.
pub fn normal_sf(x: f64) -> f64 {
    0.5 * erfc(x / std::f64::consts::SQRT_2)
}

/// The complementary error function, with a relative error below 1.2e-7 everywhere (Numerical
/// Recipes' `erfcc`, a Chebyshev fit): far finer than any p-value is read.
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// The two-sided p-value of the Mann–Whitney U test that `a` and `b` (each sorted ascending,
/// no NaN) come from one distribution: ranks by one merge of the two lists, ties given their
/// mean rank, the variance corrected for ties, and a continuity correction of 0.5. `None` when
/// either side is empty or every value is the same (no variance: nothing to test).
pub fn mann_whitney_p(a: &[f64], b: &[f64]) -> Option<f64> {
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let (mut i, mut j) = (0usize, 0usize);
    let mut rank = 0.0f64; // ranks given so far
    let mut r1 = 0.0f64; // rank sum of `a`
    let mut ties = 0.0f64; // Σ (t³ − t) over tied groups
    while i < a.len() || j < b.len() {
        let v = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => break,
        };
        let (mut ta, mut tb) = (0usize, 0usize);
        while a.get(i) == Some(&v) {
            i += 1;
            ta += 1;
        }
        while b.get(j) == Some(&v) {
            j += 1;
            tb += 1;
        }
        let t = (ta + tb) as f64;
        // Ranks rank+1 ..= rank+t share their mean.
        let mean_rank = rank + (t + 1.0) / 2.0;
        r1 += ta as f64 * mean_rank;
        rank += t;
        ties += t * t * t - t;
    }
    let n = n1 + n2;
    let u1 = r1 - n1 * (n1 + 1.0) / 2.0;
    let mu = n1 * n2 / 2.0;
    let var = n1 * n2 / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)));
    if var.is_nan() || var <= 0.0 {
        return None;
    }
    let z = ((u1 - mu).abs() - 0.5).max(0.0) / var.sqrt();
    Some((2.0 * normal_sf(z)).min(1.0))
}

/// p50, p90, p99 and the mean of a sorted slice ([`QUANTILES`], numpy's linear percentiles).
pub fn summary4(sorted: &[f64]) -> [f64; 4] {
    let mean = sorted.iter().sum::<f64>() / sorted.len() as f64;
    [
        percentile_linear(sorted, QUANTILES[0]),
        percentile_linear(sorted, QUANTILES[1]),
        percentile_linear(sorted, QUANTILES[2]),
        mean,
    ]
}

/// At most `cap` values standing for `sorted`: evenly spaced order statistics (the middle of
/// each of `cap` equal shares of the ranks), so the bootstrap's work is bounded whatever the
/// run's length while the shape of the distribution is kept.
pub fn thin(sorted: &[f64], cap: usize) -> Vec<f64> {
    let n = sorted.len();
    if n <= cap {
        return sorted.to_vec();
    }
    (0..cap)
        .map(|k| sorted[((k as f64 + 0.5) * n as f64 / cap as f64) as usize % n])
        .collect()
}

/// [`summary4`] of a bootstrap resample of `sorted` given by `counts` (how often each index was
/// drawn; they sum to `sorted.len()`): the resample is never built or sorted, the counts are
/// walked once, since `sorted` is already in order.
fn resampled4(sorted: &[f64], counts: &[u32]) -> [f64; 4] {
    let n = sorted.len();
    // The ranks each percentile needs, below and above its fractional rank.
    let mut want = [(0usize, 0usize, 0.0f64); 3];
    for (w, q) in want.iter_mut().zip(QUANTILES) {
        let r = (n - 1) as f64 * q / 100.0;
        let lo = r.floor() as usize;
        *w = (lo, (lo + 1).min(n - 1), r - lo as f64);
    }
    let mut at = [[0.0f64; 2]; 3];
    let mut seen = 0usize; // values of the resample before index i
    let mut sum = 0.0;
    for (i, &c) in counts.iter().enumerate() {
        if c == 0 {
            continue;
        }
        let end = seen + c as usize;
        for (w, slot) in want.iter().zip(at.iter_mut()) {
            if (seen..end).contains(&w.0) {
                slot[0] = sorted[i];
            }
            if (seen..end).contains(&w.1) {
                slot[1] = sorted[i];
            }
        }
        sum += c as f64 * sorted[i];
        seen = end;
    }
    let lerp = |k: usize| at[k][0] + (at[k][1] - at[k][0]) * want[k].2;
    [lerp(0), lerp(1), lerp(2), sum / n as f64]
}

/// 95% percentile-bootstrap intervals of `stat(b) − stat(a)` for p50, p90, p99 and the mean
/// ([`QUANTILES`]), from `resamples` resamples of each side drawn with `rng`. Both slices sorted
/// and non-empty ([`thin`] them first to bound the work: each resample costs O(n)).
pub fn bootstrap_diff(
    a: &[f64],
    b: &[f64],
    resamples: usize,
    rng: &mut SplitMix64,
) -> [(f64, f64); 4] {
    let mut diffs: [Vec<f64>; 4] = std::array::from_fn(|_| Vec::with_capacity(resamples));
    let mut ca = vec![0u32; a.len()];
    let mut cb = vec![0u32; b.len()];
    let draw = |counts: &mut Vec<u32>, rng: &mut SplitMix64| {
        counts.iter_mut().for_each(|c| *c = 0);
        let n = counts.len();
        for _ in 0..n {
            counts[rng.below(n)] += 1;
        }
    };
    for _ in 0..resamples {
        draw(&mut ca, rng);
        draw(&mut cb, rng);
        let (sa, sb) = (resampled4(a, &ca), resampled4(b, &cb));
        for k in 0..4 {
            diffs[k].push(sb[k] - sa[k]);
        }
    }
    diffs.map(|mut d| {
        d.sort_by(f64::total_cmp);
        (percentile_linear(&d, 2.5), percentile_linear(&d, 97.5))
    })
}

/// The two-sided p-value that two error rates (`x1` of `n1`, `x2` of `n2`) are one rate (the
/// pooled two-proportion z test) and the 95% (Wald) interval of their difference, rate 2 − rate
/// 1. `None` when a side has no requests or neither has an error.
pub fn two_proportions(x1: u64, n1: u64, x2: u64, n2: u64) -> Option<(f64, (f64, f64))> {
    if n1 == 0 || n2 == 0 || x1 + x2 == 0 {
        return None;
    }
    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let (p1, p2) = (x1 as f64 / n1f, x2 as f64 / n2f);
    let pooled = (x1 + x2) as f64 / (n1f + n2f);
    let se0 = (pooled * (1.0 - pooled) * (1.0 / n1f + 1.0 / n2f)).sqrt();
    let p = if se0 > 0.0 {
        (2.0 * normal_sf((p2 - p1).abs() / se0)).min(1.0)
    } else {
        1.0
    };
    let se = (p1 * (1.0 - p1) / n1f + p2 * (1.0 - p2) / n2f).sqrt();
    let z = 1.959_963_985;
    Some((p, (p2 - p1 - z * se, p2 - p1 + z * se)))
}

/// Student's t quantile of 0.975 (a two-sided 95% interval) for `dof` degrees of freedom: the
/// one table of them. Between rows the smaller dof's (larger) value is used, so an interval is
/// never narrower than it should be; `None` for 0 dof (one run has no spread).
pub fn t975(dof: usize) -> Option<f64> {
    const SMALL: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match dof {
        0 => None,
        1..=30 => Some(SMALL[dof - 1]),
        31..=39 => Some(2.042),
        40..=59 => Some(2.021),
        60..=119 => Some(2.000),
        120..=999 => Some(1.980),
        _ => Some(1.960),
    }
}

/// The mean of `xs` and the half-width of its 95% confidence interval (Student's t, n − 1
/// degrees of freedom); the half-width is `None` for fewer than two values.
pub fn mean_ci(xs: &[f64]) -> Option<(f64, Option<f64>)> {
    if xs.is_empty() {
        return None;
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let half = t975(xs.len() - 1).map(|t| {
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        t * (var / n).sqrt()
    });
    Some((mean, half))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_tail_matches_the_tables() {
        for (x, want) in [
            (0.0, 0.5),
            (1.959_964, 0.025),
            (1.0, 0.158_655_25),
            (3.0, 0.001_349_9),
        ] {
            assert!((normal_sf(x) - want).abs() < 1e-6, "{x}: {}", normal_sf(x));
        }
        assert!((normal_sf(-1.0) - 0.841_344_75).abs() < 1e-6);
    }

    #[test]
    fn mann_whitney_matches_scipy() {
        // scipy.stats.mannwhitneyu(a, b, method="asymptotic")'s formula (continuity and tie
        // corrections), worked by hand: ranks of a 1, 2, 3.5, 5.5, 7.5, so R1 = 19.5 and
        // U1 = 4.5; mu = 15, three tied pairs, N = 11: z = (10.5 − 0.5) / sqrt(30/12 × (12 −
        // 18/110)) = 1.8384 and p = erfc(z/√2) = 0.066015 (Python's math.erfc).
        let a = [1.0, 2.0, 3.0, 4.0, 5.0];
        let b = [3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        let p = mann_whitney_p(&a, &b).unwrap();
        let var: f64 = 30.0 / 12.0 * (12.0 - 18.0 / 110.0);
        let want = 2.0 * normal_sf((10.5 - 0.5) / var.sqrt());
        assert!((p - want).abs() < 1e-12, "{p} {want}");
        assert!((p - 0.066_015).abs() < 1e-5, "{p}");
        // Symmetric, and 1 for identical samples with spread.
        assert!((mann_whitney_p(&b, &a).unwrap() - p).abs() < 1e-12);
        assert_eq!(mann_whitney_p(&a, &a), Some(1.0));
        assert_eq!(mann_whitney_p(&[2.0; 5], &[2.0; 7]), None, "no variance");
        assert_eq!(mann_whitney_p(&[], &a), None);
        // Disjoint samples of 30 each: p far below 0.05.
        let lo: Vec<f64> = (0..30).map(f64::from).collect();
        let hi: Vec<f64> = (100..130).map(f64::from).collect();
        assert!(mann_whitney_p(&lo, &hi).unwrap() < 1e-9);
    }

    #[test]
    fn resampling_by_counts_is_the_resample_sorted() {
        let sorted: Vec<f64> = (0..37).map(|i| f64::from(i * i) / 7.0).collect();
        let mut rng = SplitMix64::new(3);
        for _ in 0..50 {
            let mut counts = vec![0u32; sorted.len()];
            let mut resample = Vec::new();
            for _ in 0..sorted.len() {
                let i = rng.below(sorted.len());
                counts[i] += 1;
                resample.push(sorted[i]);
            }
            resample.sort_by(f64::total_cmp);
            let got = resampled4(&sorted, &counts);
            let want = summary4(&resample);
            for k in 0..4 {
                assert!((got[k] - want[k]).abs() < 1e-9, "{k}: {got:?} {want:?}");
            }
        }
    }

    #[test]
    fn bootstrap_intervals_cover_a_shift_and_zero_for_none() {
        let mut rng = SplitMix64::new(7);
        let a: Vec<f64> = {
            let mut v: Vec<f64> = (0..400).map(|_| 1.0 + rng.next_f64()).collect();
            v.sort_by(f64::total_cmp);
            v
        };
        let shifted: Vec<f64> = a.iter().map(|x| x + 0.5).collect();
        let iv = bootstrap_diff(&a, &shifted, 500, &mut SplitMix64::new(1));
        for (lo, hi) in iv {
            assert!(lo > 0.3 && hi < 0.7 && lo <= hi, "{lo} {hi}");
        }
        let iv = bootstrap_diff(&a, &a, 500, &mut SplitMix64::new(1));
        for (lo, hi) in &iv[..2] {
            assert!(*lo < 0.0 && *hi > 0.0, "{lo} {hi}");
        }
    }

    #[test]
    fn thinning_keeps_the_quantiles() {
        let v: Vec<f64> = (0..100_000).map(f64::from).collect();
        let t = thin(&v, 1000);
        assert_eq!(t.len(), 1000);
        assert!(t.windows(2).all(|w| w[0] <= w[1]));
        assert!((percentile_linear(&t, 50.0) - 50_000.0).abs() < 100.0);
        assert_eq!(thin(&v[..10], 1000).len(), 10);
    }

    #[test]
    fn proportions_and_t() {
        let (p, (lo, hi)) = two_proportions(10, 1000, 40, 1000).unwrap();
        assert!(p < 1e-4 && lo > 0.0 && hi < 0.06, "{p} {lo} {hi}");
        let (p, (lo, hi)) = two_proportions(10, 1000, 11, 1000).unwrap();
        assert!(p > 0.5 && lo < 0.0 && hi > 0.0);
        assert_eq!(two_proportions(0, 10, 0, 10), None);
        assert_eq!(t975(0), None);
        assert_eq!(t975(4), Some(2.776));
        assert_eq!(t975(35), Some(2.042));
        assert_eq!(t975(10_000), Some(1.960));
        let (m, h) = mean_ci(&[1.0, 2.0, 3.0]).unwrap();
        // sd 1, n 3: 4.303 / √3.
        assert!((m - 2.0).abs() < 1e-12 && (h.unwrap() - 4.303 / 3f64.sqrt()).abs() < 1e-9);
        assert_eq!(mean_ci(&[5.0]), Some((5.0, None)));
    }
}
