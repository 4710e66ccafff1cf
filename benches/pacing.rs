//! The schedule's cost per due request: `Pacing::due(now)` (the intended time, moving past it) as
//! a lane calls it, for constant spacing and for seeded Poisson arrivals.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pacer::engine::pacing::{Pacing, Schedule};
use pacer::plan::Arrival;

/// Requests walked per measured iteration.
const STEPS: u64 = 10_000;

fn walk(c: &mut Criterion) {
    let mut g = c.benchmark_group("pacing");
    g.throughput(Throughput::Elements(STEPS));
    let t0 = Instant::now();
    for (name, arrival) in [
        ("constant", Arrival::Constant),
        ("poisson", Arrival::Poisson { seed: 42 }),
    ] {
        // One thread of two, as a 2-thread run walks its share (Poisson replays the other's gaps).
        for (threads, suffix) in [(1u64, "1_thread"), (2, "2_threads")] {
            g.bench_function(format!("{name}_{suffix}"), |b| {
                // Every request is due by then: the walk never waits.
                let now = t0 + Duration::from_secs(1_000_000);
                b.iter_batched_ref(
                    || {
                        let s = Schedule::new(t0, 100_000.0, u64::MAX, arrival, 0, threads);
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
