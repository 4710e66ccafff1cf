//! Statistics cost per sample: `Recorder::record` while exact (every sample kept, the first
//! 100,000) and once past that in the bounded sketch, and merging two per-thread recorders at the
//! end of a run (both exact, both sketched).

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use pacer::rng::SplitMix64;
use pacer::stats::{EXACT_LIMIT, Recorder};

/// Samples recorded per measured batch.
const BATCH: usize = 10_000;

/// Response-time-like samples: log-uniform between 100 µs and 100 ms.
fn samples(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = SplitMix64(seed);
    (0..n)
        .map(|_| 1e-4 * 1000f64.powf(rng.next_f64()))
        .collect()
}

fn filled(n: usize, seed: u64) -> Recorder {
    let mut r = Recorder::new();
    for x in samples(n, seed) {
        r.record(x);
    }
    r
}

fn record(c: &mut Criterion) {
    let xs = samples(BATCH, 1);
    let mut g = c.benchmark_group("stats_record");
    g.throughput(Throughput::Elements(BATCH as u64));
    // A fresh recorder each batch: the exact window's growth is part of the cost.
    g.bench_function("exact", |b| {
        b.iter_batched_ref(
            Recorder::new,
            |r| {
                for &x in &xs {
                    r.record(black_box(x));
                }
            },
            BatchSize::SmallInput,
        )
    });
    let sketched = filled(EXACT_LIMIT + 1, 2);
    assert!(
        !sketched.is_exact(),
        "past EXACT_LIMIT the recorder sketches"
    );
    g.bench_function("sketch", |b| {
        b.iter_batched_ref(
            || sketched.clone(),
            |r| {
                for &x in &xs {
                    r.record(black_box(x));
                }
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn merge(c: &mut Criterion) {
    let mut g = c.benchmark_group("stats_merge");
    let mut bench = |name: &str, a: Recorder, b_: Recorder| {
        g.bench_function(name, |b| {
            b.iter_batched(
                || (a.clone(), b_.clone()),
                |(mut x, y)| {
                    x.merge(y);
                    black_box(x.count())
                },
                BatchSize::SmallInput,
            )
        });
    };
    // Two threads' worth that still fit the exact window together.
    bench(
        "exact_2x50k",
        filled(EXACT_LIMIT / 2, 3),
        filled(EXACT_LIMIT / 2, 4),
    );
    let (a, b_) = (filled(4 * EXACT_LIMIT, 5), filled(4 * EXACT_LIMIT, 6));
    assert!(!a.is_exact() && !b_.is_exact());
    bench("sketch_2x400k", a, b_);
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .without_plots()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = record, merge
}
criterion_main!(benches);
