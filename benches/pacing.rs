//! The schedule's cost per due request: `Pacing::due(now)` (the intended time, moving past it) as
//! a lane calls it, for constant spacing and for seeded Poisson arrivals, at one rate and along
//! a ramp (the inverse of the rate's integral is then a square root per request).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pacer::engine::pacing::{Pacing, Schedule};
use pacer::plan::Arrival;
use pacer::plan::stages::{RateCurve, Stage};

/// Requests walked per measured iteration.
const STEPS: u64 = 10_000;

fn walk(c: &mut Criterion) {
    let mut g = c.benchmark_group("pacing");
    g.throughput(Throughput::Elements(STEPS));
    let t0 = Instant::now();
    let flat = RateCurve::constant(100_000.0, 1_000.0);
    // 100 → 100,000 req/s over 1,000 s in ten ramped stages: every request on a quadratic piece.
    let ramp_stages: Vec<Stage> = std::iter::once(Stage {
        qps: 100.0,
        duration: 0.0,
    })
    .chain((1..=10).map(|k| Stage {
        qps: 10_000.0 * k as f64,
        duration: 100.0,
    }))
    .collect();
    let ramp = RateCurve::new(&ramp_stages, true);
    for (name, arrival, curve) in [
        ("constant", Arrival::Constant, &flat),
        ("poisson", Arrival::Poisson { seed: 42 }, &flat),
        ("ramp", Arrival::Constant, &ramp),
    ] {
        // One thread of two, as a 2-thread run walks its share (Poisson replays the other's gaps).
        for (threads, suffix) in [(1u64, "1_thread"), (2, "2_threads")] {
            g.bench_function(format!("{name}_{suffix}"), |b| {
                // Every request is due by then: the walk never waits.
                let now = t0 + Duration::from_secs(1_000_000);
                b.iter_batched_ref(
                    || {
                        let s = Schedule::new(t0, curve.clone(), u64::MAX, arrival, 0, threads);
                        Pacing::Paced(s)
                    },
                    |p| {
                        let mut last = t0;
                        for _ in 0..STEPS {
                            if let Some((_, at)) = p.due(now) {
                                last = at;
                            }
                        }
                        black_box(last)
                    },
                    criterion::BatchSize::SmallInput,
                )
            });
        }
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .without_plots()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = walk
}
criterion_main!(benches);
