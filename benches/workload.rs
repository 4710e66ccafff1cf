//! The workload's costs: what a request pays on the hot path to find its body (one `entry_for`
//! and one `index_of` in the library; `Plan::request_for` as the engine calls it, over a
//! 1,000-line data set shuffled and over one prompt), what the classify step pays for a usage
//! event (now reading `prompt_tokens` too, and llama.cpp's `timings` when sent), and what loading a data set and building a plan from
//! it cost before a run.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pacer::llm::{Api, Bodies, BodyTemplate, Dataset, LoadOptions, Order, PayloadStyle, classify};
use pacer::plan::{Input, Limits, LlmInput, Plan, Rate};

/// The trailing event of an OpenAI-style stream with `include_usage`.
const USAGE_EVENT: &[u8] = br#"{"id":"cmpl-8f2c","object":"text_completion","created":1717000000,"model":"accounts/fireworks/models/llama-v3p1-8b-instruct","choices":[],"usage":{"prompt_tokens":512,"total_tokens":640,"completion_tokens":128}}"#;

/// llama.cpp's last event: the usage with its `timings` (the server's own figures).
const LLAMA_USAGE_EVENT: &[u8] = br#"{"choices":[],"created":1717000000,"id":"chatcmpl-Vd","model":"tiny","object":"chat.completion.chunk","usage":{"completion_tokens":128,"prompt_tokens":512,"total_tokens":640,"prompt_tokens_details":{"cached_tokens":500}},"timings":{"cache_n":500,"prompt_n":12,"prompt_ms":43.237,"prompt_per_token_ms":3.603,"prompt_per_second":277.5,"predicted_n":128,"predicted_ms":1238.74,"predicted_per_token_ms":9.677,"predicted_per_second":103.3}}"#;

fn usage_event(c: &mut Criterion) {
    let mut g = c.benchmark_group("llm");
    g.throughput(Throughput::Elements(1));
    g.bench_function("classify_usage_event", |b| {
        b.iter(|| match classify(black_box(USAGE_EVENT)) {
            Ok(pacer::llm::Event::Chunk(info)) => black_box(info.completion_tokens),
            _ => None,
        })
    });
    g.bench_function("classify_llama_usage_event", |b| {
        b.iter(|| match classify(black_box(LLAMA_USAGE_EVENT)) {
            Ok(pacer::llm::Event::Chunk(info)) => black_box(info.server_ttft),
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
            // The original's payload, as the figures measured before the styles were.
            style: PayloadStyle::Fireworks,
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

/// A streaming completions run of 10,000 requests; with `dataset`, over it, shuffled.
fn llm_plan(dataset: Option<&std::path::Path>) -> Plan {
    let mut i = Input::new(
        "http://127.0.0.1:1/v1/completions",
        Rate::PerSecond(1000.0),
        10.0,
    );
    i.llm = Some(LlmInput {
        token: "t".into(),
        model: "m".into(),
        prompt: format!("Question: {}", "why is the sky blue at noon ".repeat(8)),
        max_tokens: 64,
        stream: true,
        api: Api::Completions,
        payload_style: Some(PayloadStyle::Fireworks),
        payload: None,
    });
    if let Some(path) = dataset {
        i.workload.dataset = Some(path.to_owned());
        i.workload.shuffle = true;
        i.seed = Some(1);
    }
    Plan::new(&i, &Limits::default()).expect("a valid plan")
}

fn plan_lookup(c: &mut Criterion) {
    let path = std::env::temp_dir().join(format!("pacer-bench-plan-{}.jsonl", std::process::id()));
    std::fs::write(&path, jsonl(1000)).expect("the temp dir is writable");
    let mut g = c.benchmark_group("workload");
    g.throughput(Throughput::Elements(1000));
    for (name, plan) in [
        ("request_for_1000_requests_one_prompt", llm_plan(None)),
        (
            "request_for_1000_requests_1000_prompts",
            llm_plan(Some(&path)),
        ),
    ] {
        g.bench_function(name, |b| {
            let mut request = 0u64;
            b.iter(|| {
                let mut sum = 0;
                for _ in 0..1000 {
                    sum += plan.request_for(black_box(request)).len();
                    request += 1;
                }
                black_box(sum)
            })
        });
    }
    g.throughput(Throughput::Elements(1));
    g.sample_size(10);
    g.bench_function("plan_from_1000_line_data_set", |b| {
        b.iter(|| llm_plan(Some(&path)).requests.distinct().len())
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
    targets = usage_event, lookup, plan_lookup, load
}
criterion_main!(benches);
