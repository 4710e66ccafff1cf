//! The statistics against numpy: constants computed with numpy 2.4 on the same samples (the
//! generator below is reproduced in Python), an independent implementation of numpy's documented
//! formula, the None rules, merging, the sketch's rank error past the exact window, and histograms.

use pacer::stats::{EXACT_LIMIT, Recorder, Summary, percentile_linear, sketch};

/// The sequence numpy saw: a 64-bit LCG, u in [0, 1) from its top 53 bits, skewed by u³.
/// Python: `x = (x * 6364136223846793005 + 1442695040888963407) & (2**64 - 1)`,
/// `u = (x >> 11) / 2**53`, `0.002 + u * u * u * 0.5`.
fn lcg_seq(seed: u64, n: usize) -> Vec<f64> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (x >> 11) as f64 / (1u64 << 53) as f64;
            0.002 + u * u * u * 0.5
        })
        .collect()
}

fn recorder_of(xs: &[f64]) -> Recorder {
    let mut r = Recorder::new();
    xs.iter().for_each(|&x| r.record(x));
    r
}

/// `(name, samples, np.mean, np.std(ddof=1), np.percentile(.., [50, 90, 97, 99]))`.
type NumpyCase = (&'static str, Vec<f64>, f64, f64, [f64; 4]);

fn numpy_cases() -> Vec<NumpyCase> {
    vec![
        (
            "1..10",
            (1..=10).map(f64::from).collect(),
            5.5,
            3.0276503540974917,
            [5.5, 9.1, 9.73, 9.91],
        ),
        (
            "seeded 1000",
            lcg_seq(42, 1000),
            0.13089415833646065,
            0.1432564484947943,
            [
                0.06588980390803453,
                0.3757356615500002,
                0.45349066234532476,
                0.4804193015453069,
            ],
        ),
        (
            "seeded 100000",
            lcg_seq(7, 100_000),
            0.12723168895560374,
            0.14179973998857076,
            [
                0.06459115989788476,
                0.3665597219176937,
                0.45806386483274353,
                0.487227232029658,
            ],
        ),
        (
            "duplicates",
            vec![0.1, 0.1, 0.1, 0.2, 0.2, 0.3, 0.3, 0.3, 0.3, 1.0],
            0.29000000000000004,
            0.264365067451978,
            [0.25, 0.3699999999999997, 0.8110000000000003, 0.937],
        ),
        (
            "two",
            vec![0.25, 0.75],
            0.5,
            0.3535533905932738,
            [0.5, 0.7, 0.735, 0.745],
        ),
        (
            "three, unsorted",
            vec![0.003, 0.001, 0.002],
            0.002,
            0.001,
            [0.002, 0.0028, 0.00294, 0.00298],
        ),
    ]
}

fn percentiles(s: &Summary) -> [Option<f64>; 4] {
    [s.p50, s.p90, s.p97, s.p99]
}

#[test]
fn summary_equals_numpy_constants() {
    for (name, xs, mean, std, ps) in numpy_cases() {
        let r = recorder_of(&xs);
        assert!(r.is_exact(), "{name}");
        let s = r.summary();
        assert_eq!(s.count, xs.len() as u64, "{name}");
        // Same summation order and interpolation as numpy, so equal to the last bit.
        assert_eq!(s.mean, Some(mean), "{name} mean");
        assert_eq!(s.std, Some(std), "{name} std");
        assert_eq!(percentiles(&s), ps.map(Some), "{name} percentiles");
        let mut sorted = xs.clone();
        sorted.sort_by(f64::total_cmp);
        assert_eq!(s.min, Some(sorted[0]), "{name}");
        assert_eq!(s.max, Some(sorted[xs.len() - 1]), "{name}");
        for (q, want) in [50.0, 90.0, 97.0, 99.0].into_iter().zip(ps) {
            assert_eq!(percentile_linear(&sorted, q), want, "{name} q={q}");
        }
    }
}

/// numpy's documented rule written plainly: rank = q/100·(n−1), interpolate between the floor and
/// ceiling ranks.
fn reference_percentile(sorted: &[f64], q: f64) -> f64 {
    let rank = q / 100.0 * (sorted.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
}

fn reference_std(xs: &[f64]) -> f64 {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    (xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0)).sqrt()
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()).max(f64::MIN_POSITIVE)
}

#[test]
fn summary_equals_reference_formula() {
    let sizes = [2usize, 3, 4, 5, 7, 10, 11, 99, 100, 101, 1000, 4097, 20_000];
    for (seed, &n) in sizes.iter().enumerate() {
        let xs = lcg_seq(1000 + seed as u64, n);
        let mut sorted = xs.clone();
        sorted.sort_by(f64::total_cmp);
        let r = recorder_of(&xs);
        let s = r.summary();
        let mean = xs.iter().sum::<f64>() / n as f64;
        assert!(close(s.mean.unwrap_or(f64::NAN), mean, 1e-12), "n={n}");
        assert!(
            close(s.std.unwrap_or(f64::NAN), reference_std(&xs), 1e-10),
            "n={n}"
        );
        for (q, got) in [50.0, 90.0, 97.0, 99.0].into_iter().zip(percentiles(&s)) {
            let want = reference_percentile(&sorted, q);
            assert!(close(got.unwrap_or(f64::NAN), want, 1e-12), "n={n} q={q}");
        }
        for q in [0.0, 0.1, 1.0, 25.0, 33.3, 66.7, 99.9, 100.0] {
            let want = reference_percentile(&sorted, q);
            assert!(close(percentile_linear(&sorted, q), want, 1e-12), "q={q}");
            let got = r.quantile(q / 100.0).unwrap_or(f64::NAN);
            assert!(close(got, want, 1e-12), "n={n} q={q}");
        }
    }
}

#[test]
fn none_rules() {
    let empty = Recorder::new().summary();
    assert_eq!(empty, Summary::default());
    assert_eq!(empty.count, 0);
    assert_eq!(Recorder::new().quantile(0.5), None);

    let one = recorder_of(&[0.25]).summary();
    assert_eq!(one.count, 1);
    assert_eq!(one.mean, Some(0.25));
    assert_eq!(one.std, None);
    assert_eq!(percentiles(&one), [None; 4]);
    assert_eq!((one.min, one.max), (Some(0.25), Some(0.25)));

    let two = recorder_of(&[0.25, 0.75]).summary();
    assert!(two.std.is_some() && two.p99.is_some());
}

#[test]
fn merge_equals_recording_into_one() {
    let xs = lcg_seq(99, 30_000);
    let whole = recorder_of(&xs);
    for split in [0, 1, 1234, 15_000, 29_999, 30_000] {
        let mut a = recorder_of(&xs[..split]);
        a.merge(recorder_of(&xs[split..]));
        assert!(a.is_exact());
        assert_eq!(a.count(), whole.count());
        let (got, want) = (a.summary(), whole.summary());
        assert_eq!(percentiles(&got), percentiles(&want), "split {split}");
        assert_eq!((got.min, got.max), (want.min, want.max));
        assert!(close(got.mean.unwrap(), want.mean.unwrap(), 1e-12));
        assert!(close(got.std.unwrap(), want.std.unwrap(), 1e-12));
        assert_eq!(a.histogram(), whole.histogram());
    }
    // Four-way, as the engine merges per-thread recorders.
    let mut total = Recorder::new();
    for chunk in xs.chunks(7_500) {
        total.merge(recorder_of(chunk));
    }
    assert_eq!(percentiles(&total.summary()), percentiles(&whole.summary()));
}

/// Rank error of `v` as the q-quantile of `sorted`, as a fraction of n: the distance from the
/// target rank q·(n−1) to the ranks `v` occupies (or sits between).
fn rank_error(sorted: &[f64], q: f64, v: f64) -> f64 {
    let lo = sorted.partition_point(|&x| x < v) as f64;
    let hi = sorted.partition_point(|&x| x <= v) as f64;
    let target = q * (sorted.len() - 1) as f64;
    let dist = if target < lo - 1.0 {
        lo - 1.0 - target
    } else if target > hi {
        target - hi
    } else {
        0.0
    };
    dist / sorted.len() as f64
}

/// A skewed, heavy-tailed sample (log-normal-ish latencies with a slow tail), seeded.
fn skewed(seed: u64, n: usize) -> Vec<f64> {
    let mut x = seed;
    let mut uniform = move || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            let z: f64 = (0..12).map(|_| uniform()).sum::<f64>() - 6.0;
            let tail = if uniform() < 0.02 { 20.0 } else { 1.0 };
            0.01 * (0.8 * z).exp() * tail
        })
        .collect()
}

const QS: [f64; 9] = [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.97, 0.99, 0.999];

fn assert_rank_errors(r: &Recorder, xs: &[f64], what: &str) -> f64 {
    let mut sorted = xs.to_vec();
    sorted.sort_by(f64::total_cmp);
    let s = r.summary();
    let mut worst: f64 = 0.0;
    for (q, v) in [0.5, 0.9, 0.97, 0.99].into_iter().zip(percentiles(&s)) {
        let e = rank_error(&sorted, q, v.unwrap_or(f64::NAN));
        assert!(e <= 0.001, "{what}: p{} rank error {e}", q * 100.0);
        worst = worst.max(e);
    }
    for q in QS {
        let e = rank_error(&sorted, q, r.quantile(q).unwrap_or(f64::NAN));
        assert!(e <= 0.001, "{what}: q={q} rank error {e}");
        worst = worst.max(e);
    }
    assert_eq!(s.min, Some(sorted[0]));
    assert_eq!(s.max, Some(sorted[sorted.len() - 1]));
    let mean = xs.iter().sum::<f64>() / xs.len() as f64;
    assert!(close(s.mean.unwrap(), mean, 1e-9), "{what} mean");
    assert!(close(s.std.unwrap(), reference_std(xs), 1e-9), "{what} std");
    worst
}

#[test]
fn sketch_rank_error_within_a_tenth_of_a_percent() {
    let xs = skewed(1, 300_000);
    let r = recorder_of(&xs);
    assert!(!r.is_exact());
    assert_eq!(r.count(), 300_000);
    assert_eq!(
        r.exact_capacity(),
        0,
        "the exact Vec is freed after the switch"
    );
    assert_rank_errors(&r, &xs, "300k skewed");
}

#[test]
fn merged_sketches_stay_within_bounds() {
    // Two threads that saw different distributions: one fast, one slow.
    let a_xs = skewed(2, 200_000);
    let b_xs: Vec<f64> = skewed(3, 250_000).iter().map(|x| x * 3.0 + 0.05).collect();
    let mut a = recorder_of(&a_xs);
    let b = recorder_of(&b_xs);
    assert!(!a.is_exact() && !b.is_exact());
    a.merge(b);
    let all: Vec<f64> = a_xs.iter().chain(&b_xs).copied().collect();
    assert_eq!(a.count(), all.len() as u64);
    assert_rank_errors(&a, &all, "sketch + sketch");
    assert_eq!(a.histogram().total(), all.len() as u64);

    // Exact into sketch, sketch into exact, and two exact ones that overflow together.
    let small = skewed(4, 50_000);
    let mut s = recorder_of(&a_xs);
    s.merge(recorder_of(&small));
    let all: Vec<f64> = a_xs.iter().chain(&small).copied().collect();
    assert_rank_errors(&s, &all, "sketch + exact");

    let mut e = recorder_of(&small);
    e.merge(recorder_of(&a_xs));
    assert!(!e.is_exact());
    assert_eq!(e.exact_capacity(), 0);
    let all: Vec<f64> = small.iter().chain(&a_xs).copied().collect();
    assert_rank_errors(&e, &all, "exact + sketch");

    let other = skewed(5, 60_000);
    let mut e = recorder_of(&small);
    e.merge(recorder_of(&other));
    assert!(!e.is_exact(), "110k samples no longer fit the exact window");
    assert_eq!(e.exact_capacity(), 0);
    let all: Vec<f64> = small.iter().chain(&other).copied().collect();
    assert_rank_errors(&e, &all, "exact + exact past the limit");
}

#[test]
fn exact_at_the_limit_then_sketch_one_past() {
    let xs = skewed(6, EXACT_LIMIT + 1);
    let mut r = recorder_of(&xs[..EXACT_LIMIT]);
    assert!(r.is_exact());
    let mut sorted = xs[..EXACT_LIMIT].to_vec();
    sorted.sort_by(f64::total_cmp);
    assert_eq!(r.summary().p99, Some(percentile_linear(&sorted, 99.0)));
    r.record(xs[EXACT_LIMIT]);
    assert!(!r.is_exact());
    assert_eq!(r.exact_capacity(), 0);
    assert_rank_errors(&r, &xs, "limit + 1");
}

#[test]
fn sketch_memory_does_not_grow_with_the_run() {
    let mut r = Recorder::new();
    let mut x = 11u64;
    let bound = 3 * sketch::K + 4096;
    for i in 0..3_000_000u64 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        r.record(0.001 + (x >> 40) as f64 * 1e-9);
        if i % 250_000 == 249_999 {
            assert_eq!(r.exact_capacity(), 0);
            assert!(
                r.sketch_retained() <= bound,
                "{} at {i}",
                r.sketch_retained()
            );
        }
    }
    assert_eq!(r.count(), 3_000_000);
}

#[test]
fn histogram_counts_add_up_and_merge_adds() {
    let a_xs = lcg_seq(21, 5_000);
    let b_xs: Vec<f64> = lcg_seq(22, 7_000).iter().map(|x| x * 100.0).collect();
    let mut a = recorder_of(&a_xs);
    let b = recorder_of(&b_xs);
    let (ha, hb) = (a.histogram(), b.histogram());
    assert_eq!(ha.total(), 5_000);
    assert_eq!(hb.total(), 7_000);
    assert_eq!(ha.iter().map(|r| r.count).sum::<u64>(), 5_000);
    a.merge(b);
    let h = a.histogram();
    assert_eq!(h.total(), 12_000);
    for ((m, x), y) in h.iter().zip(ha.iter()).zip(hb.iter()) {
        assert_eq!(m.count, x.count + y.count);
        assert_eq!((m.lower, m.upper), (x.lower, x.upper));
    }
    // Each sample sits in a bucket whose bounds hold it.
    let one = recorder_of(&[0.0123]).histogram();
    let row = one.iter().find(|r| r.count == 1).unwrap();
    assert!(row.lower <= 0.0123 && 0.0123 < row.upper);
    let rows = h.rows(12);
    assert!(!rows.is_empty() && rows.len() <= 12);
    assert_eq!(rows.iter().map(|r| r.count).sum::<u64>(), 12_000);
    // The sketch keeps counting the histogram past the exact window.
    let big = recorder_of(&skewed(8, 150_000));
    assert_eq!(big.histogram().total(), 150_000);
}

/// Worst rank error over many seeds and sizes; run with
/// `cargo test --release --test stats_reference -- --ignored --nocapture`.
#[test]
#[ignore]
fn rank_error_survey() {
    let mut worst: f64 = 0.0;
    for seed in 0..40u64 {
        for n in [150_000usize, 400_000, 1_000_000] {
            let xs = skewed(100 + seed, n);
            let half = n / 3;
            let mut r = recorder_of(&xs[..half]);
            r.merge(recorder_of(&xs[half..]));
            let w = assert_rank_errors(&r, &xs, "survey");
            worst = worst.max(w);
        }
    }
    println!("worst rank error over the survey: {:.5}%", worst * 100.0);
}
