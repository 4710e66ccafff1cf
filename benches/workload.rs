//! The workload's costs: what a request pays on the hot path to find its body (one `entry_for`
//! and one `index_of`), what the classify step pays for a usage event (now reading
//! `prompt_tokens` too), and what loading a data set costs before a run (bytes per second).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pacer::llm::{Api, Bodies, BodyTemplate, Dataset, LoadOptions, Order, classify};

/// The trailing event of an OpenAI-style stream with `include_usage`.
const USAGE_EVENT: &[u8] = br#"{"id":"cmpl-8f2c","object":"text_completion","created":1717000000,"model":"accounts/fireworks/models/llama-v3p1-8b-instruct","choices":[],"usage":{"prompt_tokens":512,"total_tokens":640,"completion_tokens":128}}"#;

fn usage_event(c: &mut Criterion) {
    let mut g = c.benchmark_group("llm");
    g.throughput(Throughput::Elements(1));
    g.bench_function("classify_usage_event", |b| {
        b.iter(|| match classify(black_box(USAGE_EVENT)) {
            Ok(pacer::llm::Event::Chunk(info)) => black_box(info.completion_tokens),
            _ => None,
        })
    });
    g.finish();
}

/// A data set of `n` distinct completions prompts, as JSON lines.
fn jsonl(n: usize) -> String {
    (0..n)
        .map(|i| {
            let prompt = format!("Question {i}: {}", "why is the sky blue at noon ".repeat(8));
            format!(
                "{}\n",
                serde_json::json!({"prompt": prompt, "max_tokens": 64 + i % 64})
            )
        })
        .collect()
}

fn lookup(c: &mut Criterion) {
    let path = std::env::temp_dir().join(format!("pacer-bench-{}.jsonl", std::process::id()));
    std::fs::write(&path, jsonl(1000)).expect("the temp dir is writable");
    let data = Dataset::load(&path, &LoadOptions::default()).expect("a valid data set");
    let bodies = Bodies::build(
        &data.entries,
        &BodyTemplate {
            model: "m",
            stream: true,
            api: Api::Completions,
            max_tokens: 16,
            overrides: None,
        },
    )
    .expect("completions prompts");
    let order = Order::shuffled(data.len(), 42);
    let mut g = c.benchmark_group("workload");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("body_for_1000_requests", |b| {
        let mut request = 0u64;
        b.iter(|| {
            let mut sum = 0;
            for _ in 0..1000 {
                sum += bodies.index_of(order.entry_for(black_box(request)));
                request += 1;
            }
            black_box(sum)
        })
    });
    g.finish();
    let _ = std::fs::remove_file(&path);
}

fn load(c: &mut Criterion) {
    let text = jsonl(10_000);
    let path = std::env::temp_dir().join(format!("pacer-bench-load-{}.jsonl", std::process::id()));
    std::fs::write(&path, &text).expect("the temp dir is writable");
    let mut g = c.benchmark_group("workload");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.sample_size(10);
    g.bench_function("load_jsonl_10k_lines", |b| {
        b.iter(|| {
            Dataset::load(&path, &LoadOptions::default())
                .expect("a valid data set")
                .len()
        })
    });
    g.finish();
    let _ = std::fs::remove_file(&path);
}

fn config() -> Criterion {
    Criterion::default()
        .without_plots()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = usage_event, lookup, load
}
criterion_main!(benches);
