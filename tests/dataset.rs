//! LLM workloads end to end against the mock: data sets (completions, chat, ShareGPT) and inline
//! prompts, drawn output lengths, synthetic prompts cut by a tokenizer the test writes, chunks
//! carrying several tokens, and every refusal before a run. The mock counts a prompt's words as
//! its `usage.prompt_tokens` and honours `max_tokens`, so the report's token figures are checked
//! against exact numbers; the tokenizers written here split on whitespace, so their counts are
//! word counts too.

mod util;

use std::path::{Path, PathBuf};
use std::process::Command;

use pacer::api::{ApiConfig, ApiServer};
use pacer::engine::TokenSource;
use pacer::llm::Api;
use pacer::metric::Id;
use pacer::mock::{MockConfig, MockServer};
use serde_json::{Value, json};
use util::*;

/// Generous: a loaded machine's slow stream still ends within it.
const TIMEOUT: f64 = 10.0;

fn llm_mock(tokens: u32, tokens_per_chunk: u32) -> MockServer {
    mock(MockConfig {
        ttft: ms(5.0),
        itl: ms(2.0),
        tokens,
        tokens_per_chunk,
        ..MockConfig::default()
    })
}

fn words(s: &str) -> u64 {
    s.split_whitespace().count() as u64
}

/// `pacer llm URL --token ... -q QPS -z 1 --json` and `extra`; the report, after checking that
/// it exited 0.
fn llm_json(m: &MockServer, qps: &str, extra: &[&str]) -> Value {
    let url = format!("{}/v1/completions", m.url());
    let mut args = vec![
        "llm",
        &url,
        "--token",
        "t",
        "-q",
        qps,
        "-z",
        "1",
        "--timeout",
        "10",
        "--json",
    ];
    args.extend_from_slice(extra);
    let o = pacer(&args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{args:?}: {err}");
    serde_json::from_slice(&o.stdout).expect("--json prints JSON")
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The library's input for a run of `n` requests against `m`, its prompts from `dataset`.
fn dataset_input(m: &MockServer, n: f64, dataset: PathBuf) -> pacer::plan::Input {
    let mut i = llm_input(&format!("{}/v1/completions", m.url()), n, 1.0);
    i.timeout = Some(TIMEOUT);
    i.workload.dataset = Some(dataset);
    i
}

#[test]
fn a_completions_data_set_cycles_and_the_mocks_usage_gives_its_input_tokens() {
    let dir = TempDir::new("completions");
    let prompts = [
        "Why is the sky blue?",
        "Name three rivers",
        "one",
        "Write a haiku about load tests and tail latency",
    ];
    let lines: String = prompts
        .iter()
        .map(|p| format!("{}\n", json!({"prompt": p})))
        .collect();
    let m = llm_mock(6, 1);
    let i = dataset_input(&m, 10.0, dir.file("prompts.jsonl", &lines));
    let s = run(&i);
    assert_accounted(&s, 10);
    assert_eq!(s.successes, 10, "{:?}", s.errors);
    // Sequential order: request k sends prompt k mod 4.
    let want: u64 = (0..10).map(|k| words(prompts[k % 4])).sum();
    assert_eq!(s.input_tokens, want);
    assert_eq!(s.input_sources.only(), Some(TokenSource::Usage));
    assert_eq!(s.output_tokens, 60);
    assert_eq!(s.output_sources.only(), Some(TokenSource::Usage));
    assert_eq!(m.counters().llm_requests, 10);
}

#[test]
fn a_chat_data_set_sends_its_messages() {
    let dir = TempDir::new("chat");
    let conversations = [
        json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"}]),
        json!([{"role": "user", "content": "What is a token, exactly?"}]),
    ];
    let lines: String = conversations
        .iter()
        .map(|c| format!("{}\n", json!({"messages": c, "max_tokens": 3})))
        .collect();
    let m = llm_mock(20, 1);
    let mut i = dataset_input(&m, 6.0, dir.file("chat.jsonl", &lines));
    if let Some(l) = i.llm.as_mut() {
        l.api = Api::Chat;
    }
    let s = run(&i);
    assert_eq!(s.successes, 6, "{:?}", s.errors);
    // The mock counts the words of every message; each line's max_tokens is honoured.
    let per = [
        words("Be brief.") + words("Hi there"),
        words("What is a token, exactly?"),
    ];
    assert_eq!(s.input_tokens, 3 * (per[0] + per[1]));
    assert_eq!(s.output_tokens, 6 * 3);
}

#[test]
fn a_sharegpt_file_through_the_binary() {
    let dir = TempDir::new("sharegpt");
    // The public ShareGPT files are one JSON array; a conversation without a human turn is
    // skipped, as vLLM skips it.
    let data = json!([
        {"id": "a", "conversations": [
            {"from": "human", "value": "Tell me about rivers"},
            {"from": "gpt", "value": "Rivers flow downhill."}]},
        {"id": "b", "conversations": [{"from": "gpt", "value": "Nobody asked."}]},
        {"id": "c", "conversations": [
            {"from": "system", "value": "ignored"},
            {"from": "human", "value": "Why?"},
            {"from": "gpt", "value": "Because six words make eight tokens."}]},
    ]);
    let file = dir.file(
        "sharegpt.json",
        &serde_json::to_string_pretty(&data).unwrap(),
    );
    let m = llm_mock(20, 1);
    let r = llm_json(
        &m,
        "8",
        &["--dataset", path(&file), "--output-len-from-dataset"],
    );
    assert_eq!(r["successes"], 8, "{}", r["error_counts"]);
    let c = &r["config"];
    assert_eq!(c["prompts"], "dataset");
    assert_eq!(c["dataset"], path(&file));
    assert_eq!(
        (c["prompt_entries"].clone(), c["dataset_skipped"].clone()),
        (json!(2), json!(1))
    );
    assert_eq!(c["distinct_requests"], 2);
    assert_eq!(c["order"], "sequential");
    assert_eq!(c["output_len_from_dataset"], true);
    assert_eq!(c["token_lengths"], "approximate");
    assert_eq!(
        c["fireworks_payload"]["prompt"],
        json!(format!("<2 prompts: {}>", path(&file)))
    );
    // Reply lengths without a tokenizer: 3 words ≈ 4 tokens, 6 words = 8 tokens (0.75 words
    // per token); the mock stops at max_tokens.
    assert_eq!(r["output_tokens"], 4 * (4 + 8));
    assert_eq!(
        r["input_tokens"],
        4 * (words("Tell me about rivers") + words("Why?"))
    );
    assert_eq!(r["output_tokens_source"], "usage");
    assert_eq!(r["input_tokens_source"], "usage");
    let elapsed = r["elapsed"].as_f64().unwrap();
    let total = r["total_token_throughput"].as_f64().unwrap();
    let want = (48 + r["input_tokens"].as_u64().unwrap()) as f64 / elapsed;
    assert!((total - want).abs() < 1e-6 * want, "{total} vs {want}");
}

#[test]
fn output_tokens_5_0_gives_exactly_5_tokens_per_request() {
    let m = llm_mock(20, 1);
    let r = llm_json(&m, "10", &["--output-tokens", "5:0", "--ignore-eos"]);
    assert_eq!(r["successes"], 10, "{}", r["error_counts"]);
    assert_eq!(r["output_tokens"], 50);
    assert_eq!(r["mean_output_tokens"], 5.0);
    assert_eq!(r["config"]["output_tokens"], "5");
    assert_eq!(r["config"]["ignore_eos"], true);
    assert_eq!(r["config"]["fireworks_payload"]["ignore_eos"], true);
    assert_eq!(r["config"]["fireworks_payload"]["max_tokens"], 5);
    // Without usage the token events count, and they say so.
    let r = llm_json(
        &m,
        "10",
        &[
            "--output-tokens",
            "5:0",
            "--payload",
            r#"{"stream_options": null}"#,
        ],
    );
    assert_eq!(r["output_tokens"], 50);
    assert_eq!(r["output_tokens_source"], "events");
    assert_eq!(
        r["input_tokens"],
        Value::Null,
        "no usage, no tokenizer: no input count"
    );
    assert_eq!(r["input_tokens_source"], "none");
}

/// The per-token and per-chunk families of a run of `n` requests, each 10 tokens in chunks of
/// 3, 3, 3 and 1: the first chunk ends the time to first token, so each request has 3 chunk
/// gaps and 3 + 3 + 1 = 7 token gaps, and the token gaps of a chunk add up to its gap.
fn check_chunked(s: &pacer::engine::RunStats, n: u64, tokens_counted: bool) {
    let t = &s.timings;
    assert_eq!(s.successes, n, "{:?}", s.errors);
    // Three chunk gaps a request, less those whose two events a loaded machine read together
    // (one chunk then: flagged as token_gaps_coalesced, and their tokens share the gap).
    assert_eq!(s.token_gaps, 3 * n);
    assert_eq!(
        t[Id::InterChunkLatency].count() + s.token_gaps_coalesced,
        3 * n
    );
    let sum = |r: &pacer::stats::Recorder| r.summary().mean.unwrap() * r.count() as f64;
    if tokens_counted {
        // Less the tokens of events read together with the first one (no gap of their own).
        let itl = t[Id::InterTokenLatency].count();
        assert!(itl <= 7 * n, "{itl}");
        if s.token_gaps_coalesced == 0 {
            assert_eq!(itl, 7 * n);
        }
    } else {
        // Nothing says a chunk carried more than one token: the families are the same.
        assert_eq!(
            t[Id::InterTokenLatency].summary(),
            t[Id::InterChunkLatency].summary()
        );
    }
    let (itl, icl) = (
        sum(&t[Id::InterTokenLatency]),
        sum(&t[Id::InterChunkLatency]),
    );
    assert!(
        (itl - icl).abs() < 1e-9,
        "token gaps add up to chunk gaps: {itl} vs {icl}"
    );
    // time_per_output_token stays the SPEC's: (response - ttft) / (10 - 1), one per request.
    assert_eq!(t[Id::TimePerOutputToken].count(), n);
    assert_eq!(s.output_tokens, 10 * n);
}

#[test]
fn three_tokens_per_chunk_divide_the_chunk_gap() {
    let dir = TempDir::new("chunks");
    let m = llm_mock(10, 3);
    let url = format!("{}/v1/completions", m.url());
    let input = || {
        let mut i = llm_input(&url, 5.0, 1.0);
        i.timeout = Some(TIMEOUT);
        i
    };
    // The tokenizer counts each chunk's words.
    let mut i = input();
    i.workload.tokenizer = Some(word_tokenizer(&dir));
    check_chunked(&run(&i), 5, true);
    // The server's usage in every chunk (vLLM's continuous_usage_stats) says the same.
    let mut i = input();
    if let Some(l) = i.llm.as_mut() {
        l.payload =
            json!({"stream_options": {"include_usage": true, "continuous_usage_stats": true}})
                .as_object()
                .cloned();
    }
    check_chunked(&run(&i), 5, true);
    // Neither: one token per chunk, so the per-chunk gap is all there is.
    check_chunked(&run(&input()), 5, false);
}

#[test]
fn a_tokenizer_gives_exact_input_lengths() {
    let dir = TempDir::new("exact");
    let tok = word_tokenizer(&dir);
    let m = llm_mock(6, 1);
    let flags = [
        "--input-tokens",
        "37",
        "--prefix-tokens",
        "12",
        "--tokenizer",
        path(&tok),
        "--prompt",
        "",
    ];
    let r = llm_json(&m, "8", &flags);
    assert_eq!(r["successes"], 8, "{}", r["error_counts"]);
    // The mock counts words; the tokenizer's tokens are words: every prompt is exactly 37.
    assert_eq!(r["input_tokens"], 8 * 37);
    assert_eq!(r["mean_input_tokens"], 37.0);
    assert_eq!(r["input_tokens_source"], "usage");
    let c = &r["config"];
    assert_eq!(c["token_lengths"], "exact");
    assert_eq!(c["prefix_tokens"], 12);
    assert_eq!(c["input_tokens"], "37");
    assert_eq!(c["prompts"], "synthetic");
    assert_eq!(c["tokenizer"], path(&tok));
    assert_eq!(c["distinct_requests"], 8);
    // Without usage, the tokenizer's counts stand in: its count of each prompt before the run,
    // and of the streamed text.
    let mut flags = flags.to_vec();
    flags.extend(["--payload", r#"{"stream_options": null}"#]);
    let r = llm_json(&m, "8", &flags);
    assert_eq!(r["input_tokens"], 8 * 37);
    assert_eq!(r["input_tokens_source"], "tokenizer");
    assert_eq!(r["output_tokens"], 8 * 6);
    assert_eq!(r["output_tokens_source"], "tokenizer");
}

#[test]
fn bad_data_sets_and_tokenizers_are_refused_before_any_request() {
    let dir = TempDir::new("refusals");
    let m = llm_mock(5, 1);
    let malformed = dir.file(
        "malformed.jsonl",
        "{\"prompt\": \"fine\"}\n\n{\"prompt\": \"also fine\"}\n{\"text\": \"wrong shape\"}\n",
    );
    let empty = dir.file("empty.jsonl", "");
    let missing = dir.path("missing.jsonl");
    let bad_tok = dir.file("tokenizer.json", "{\"model\": 1}");
    let chat = dir.file(
        "chat.jsonl",
        "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}\n",
    );
    let cases: [(&[&str], String); 6] = [
        (
            &["--dataset", path(&malformed)],
            format!(
                "--dataset {}: line 4: expected a JSON object",
                path(&malformed)
            ),
        ),
        (
            &["--dataset", path(&empty)],
            format!("--dataset {}: no prompts in it", path(&empty)),
        ),
        (
            &["--dataset", path(&missing)],
            format!("--dataset {}: No such file", path(&missing)),
        ),
        (
            &["--tokenizer", path(&bad_tok)],
            format!(
                "--tokenizer {}: not a Hugging Face tokenizer.json",
                path(&bad_tok)
            ),
        ),
        (
            &["--dataset", path(&chat)],
            format!("--dataset {}: line 1 has chat \"messages\"", path(&chat)),
        ),
        (
            &["--dataset", path(&malformed), "--input-tokens", "5"],
            "--input-tokens: input_tokens makes synthetic prompts".to_string(),
        ),
    ];
    let url = format!("{}/v1/completions", m.url());
    for (flags, want) in cases {
        let mut args = vec!["llm", &url, "--token", "t", "-q", "5", "-z", "1"];
        args.extend_from_slice(flags);
        let o = pacer(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{flags:?}: {err}");
        assert!(err.contains(&want), "{flags:?}: want {want:?} in {err}");
    }
    assert_eq!(m.counters().requests, 0, "no request was sent");
}

/// The API: a data set in the server's `--data-dir` runs, a bad line in one is a 422 naming the
/// line (quoting only a short excerpt of it), inline prompts run, all before any request reaches
/// the target when refused.
#[test]
fn the_api_takes_inline_prompts_and_refuses_a_bad_data_set() {
    let dir = TempDir::new("api");
    let m = llm_mock(4, 1);
    let api = api_server(Some(&dir));
    let url = format!("{}/v1/completions", m.url());
    let long = "s".repeat(1000);
    dir.file(
        "bad.jsonl",
        &format!("{{\"prompt\": \"ok\"}}\n{{\"messages\": \"{long}\"}}\n"),
    );
    let body = json!({"token": "t", "url": url, "qps": 5, "duration": 1, "timeout": 10,
        "dataset": "bad.jsonl"});
    let (status, r) = post_json(api.addr(), "/fireworks_benchmark", &body.to_string());
    assert_eq!(status, 422, "{r}");
    assert_eq!(r["detail"][0]["loc"], json!(["body", "dataset"]));
    let msg = r["detail"][0]["msg"].as_str().unwrap();
    assert!(
        msg.contains("bad.jsonl: line 2: invalid type: string \""),
        "{msg}"
    );
    // The line's value, quoted by serde, is cut to 80 characters.
    assert!(msg.contains(&format!("\"{}…\"", &long[..80])), "{msg}");
    assert!(!msg.contains(&long[..81]), "{msg}");
    let body = json!({"token": "t", "url": url, "qps": 5, "duration": 1, "timeout": 10,
        "max_dataset_bytes": 2_000_000_000_u64, "dataset": "bad.jsonl"});
    let (status, r) = post_json(api.addr(), "/fireworks_benchmark", &body.to_string());
    assert_eq!(status, 422, "{r}");
    assert_eq!(r["detail"][0]["loc"], json!(["body", "max_dataset_bytes"]));
    assert_eq!(m.counters().requests, 0);

    let prompts = ["alpha beta", "gamma", "delta epsilon zeta"];
    let body = json!({"token": "t", "url": url, "qps": 6, "duration": 1, "timeout": 10,
        "prompts": prompts, "shuffle": true, "seed": 4});
    let (status, r) = post_json(api.addr(), "/fireworks_benchmark", &body.to_string());
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["successes"], 6, "{}", r["error_counts"]);
    // A shuffled order is a permutation: 6 requests send each prompt twice.
    assert_eq!(r["input_tokens"], 2 * (2 + 1 + 3));
    assert_eq!(r["config"]["prompts"], "inline");
    assert_eq!(r["config"]["order"], "shuffled");
    assert_eq!(r["config"]["seed"], 4);
    assert!(r["mean_inter_chunk_latency"].is_number(), "{r}");
    assert_eq!(m.counters().llm_requests, 6);

    // The same file, named relative to the data directory: it runs.
    dir.file(
        "good.jsonl",
        "{\"prompt\": \"one two three\"}\n{\"prompt\": \"four five\"}\n",
    );
    let body = json!({"token": "t", "url": url, "qps": 4, "duration": 1, "timeout": 10,
        "dataset": "good.jsonl"});
    let (status, r) = post_json(api.addr(), "/fireworks_benchmark", &body.to_string());
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["successes"], 4, "{}", r["error_counts"]);
    // Sequential: the two lines twice, counted by the mock's usage.
    assert_eq!(r["input_tokens"], 2 * (3 + 2));
    assert_eq!(r["config"]["prompts"], "dataset");
    assert_eq!(m.counters().llm_requests, 6 + 4);
}

/// `pacer serve` on a loopback port 0, with `data_dir` as its `--data-dir`.
fn api_server(data_dir: Option<&TempDir>) -> ApiServer {
    ApiServer::start(ApiConfig {
        addr: "127.0.0.1:0".into(),
        data_dir: data_dir.map(|d| d.0.clone()),
        ..ApiConfig::default()
    })
    .expect("the API binds a loopback port")
}

/// Every `(loc, msg)` of a 422.
fn field_errors(r: &Value) -> Vec<(Value, String)> {
    r["detail"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list of errors: {r}"))
        .iter()
        .map(|e| {
            (
                e["loc"].clone(),
                e["msg"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// With `--data-dir`, a request's `dataset` and `tokenizer` are files inside it: relative paths
/// (and absolute ones inside) run and send the file's prompts; `..`, an absolute path outside, a
/// symbolic link out, a missing file and a directory are each a 422 naming the field and the
/// path as given, never what the file outside holds; the sweep takes the same rule.
#[test]
fn the_api_reads_files_only_inside_its_data_dir() {
    let data = TempDir::new("datadir");
    let outside = TempDir::new("outside");
    let m = llm_mock(3, 1);
    let url = format!("{}/v1/completions", m.url());
    data.file(
        "prompts.jsonl",
        "{\"prompt\": \"alpha beta gamma\"}\n{\"prompt\": \"delta\"}\n",
    );
    std::fs::create_dir(data.path("sub")).unwrap();
    let tok = word_tokenizer(&data);
    std::fs::rename(&tok, data.path("sub/tokenizer.json")).unwrap();
    let secret = outside.file("secret.jsonl", "{\"prompt\": \"TOPSECRET words\"}\n");
    std::os::unix::fs::symlink(&secret, data.path("link.jsonl")).unwrap();
    let api = api_server(Some(&data));

    // Relative dataset, absolute tokenizer inside the directory; usage off, so the input
    // tokens are the tokenizer's: both files were read.
    let tok_abs = data.arg("sub/tokenizer.json");
    let body = json!({"token": "t", "url": url, "qps": 4, "duration": 1, "timeout": TIMEOUT,
        "dataset": "prompts.jsonl", "tokenizer": tok_abs,
        "payload": {"stream_options": null}});
    let (status, r) = post_json(api.addr(), "/fireworks_benchmark", &body.to_string());
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["successes"], 4, "{}", r["error_counts"]);
    assert_eq!(r["input_tokens"], 2 * (3 + 1));
    assert_eq!(r["input_tokens_source"], "tokenizer");
    assert_eq!(r["config"]["prompts"], "dataset");
    assert_eq!(r["config"]["prompt_entries"], 2);
    assert_eq!(r["config"]["token_lengths"], "exact");
    assert_eq!(m.counters().llm_requests, 4);

    let escape = format!(
        "../{}/secret.jsonl",
        outside.0.file_name().unwrap().to_str().unwrap()
    );
    let outside_abs = path(&secret).to_string();
    let not_inside = "no such file inside the server's --data-dir";
    let cases: [(&str, &str, &str); 7] = [
        ("dataset", &escape, not_inside),
        ("dataset", &outside_abs, not_inside),
        ("dataset", "link.jsonl", not_inside),
        ("dataset", "missing.jsonl", not_inside),
        ("dataset", "sub", "not a regular file"),
        ("dataset", "", "not a regular file"),
        ("tokenizer", "../tokenizer.json", not_inside),
    ];
    for (field, given, want) in cases {
        let mut body = json!({"token": "t", "url": url, "qps": 4, "duration": 1,
            "timeout": TIMEOUT});
        body[field] = json!(given);
        if field == "tokenizer" {
            body["input_tokens"] = json!(5);
        }
        for (route, body) in [
            ("/fireworks_benchmark", body.clone()),
            ("/fireworks_benchmark", {
                let mut b = body.clone();
                b["async"] = json!(true);
                b
            }),
            ("/sweep", {
                let mut b = body.clone();
                let o = b.as_object_mut().unwrap();
                o.remove("qps");
                o.remove("duration");
                o.insert("kind".into(), json!("fireworks_benchmark"));
                o.insert("rates".into(), json!([1]));
                b
            }),
        ] {
            let (status, r) = post_json(api.addr(), route, &body.to_string());
            assert_eq!(status, 422, "{route} {field} {given:?}: {r}");
            let errors = field_errors(&r);
            assert_eq!(errors.len(), 1, "{r}");
            let (loc, msg) = &errors[0];
            assert_eq!(*loc, json!(["body", field]), "{r}");
            assert!(
                msg.starts_with(&format!("{field} {given}: {want}")),
                "{route} {given:?}: {msg}"
            );
            assert!(!r.to_string().contains("TOPSECRET"), "{r}");
        }
    }
    // A tokenizer.json inside that does not parse: named, and what it quotes of the file is short.
    let long = "q".repeat(500);
    data.file("bad_tokenizer.json", &json!({"version": long}).to_string());
    let body = json!({"token": "t", "url": url, "tokenizer": "bad_tokenizer.json",
        "input_tokens": 5});
    let (status, r) = post_json(api.addr(), "/fireworks_benchmark", &body.to_string());
    assert_eq!(status, 422, "{r}");
    let errors = field_errors(&r);
    assert_eq!(errors[0].0, json!(["body", "tokenizer"]), "{r}");
    assert!(
        errors[0]
            .1
            .contains("bad_tokenizer.json: not a Hugging Face tokenizer.json"),
        "{}",
        errors[0].1
    );
    assert!(
        errors[0].1.contains(&format!("'{}…'", &long[..80])),
        "{}",
        errors[0].1
    );
    // Both at once: one 422 with both fields.
    let body = json!({"token": "t", "url": url, "dataset": "../x", "tokenizer": "sub"});
    let (status, r) = post_json(api.addr(), "/fireworks_benchmark", &body.to_string());
    assert_eq!(status, 422, "{r}");
    let locs: Vec<Value> = field_errors(&r).into_iter().map(|(l, _)| l).collect();
    assert_eq!(
        locs,
        [json!(["body", "dataset"]), json!(["body", "tokenizer"])]
    );
    assert_eq!(m.counters().llm_requests, 4, "no refused request ran");
}

/// Without `--data-dir`, the API names no file: `dataset` and `tokenizer` are a 422 that says
/// so, even for a file that exists; inline prompts still run.
#[test]
fn without_a_data_dir_the_api_reads_no_files() {
    let dir = TempDir::new("nodatadir");
    let m = llm_mock(2, 1);
    let url = format!("{}/v1/completions", m.url());
    let file = dir.file("prompts.jsonl", "{\"prompt\": \"TOPSECRET\"}\n");
    let tok = word_tokenizer(&dir);
    let api = api_server(None);
    for (field, given) in [("dataset", path(&file)), ("tokenizer", path(&tok))] {
        let mut body = json!({"token": "t", "url": url, "qps": 2, "duration": 1});
        body[field] = json!(given);
        let (status, r) = post_json(api.addr(), "/fireworks_benchmark", &body.to_string());
        assert_eq!(status, 422, "{r}");
        let errors = field_errors(&r);
        assert_eq!(errors.len(), 1, "{r}");
        assert_eq!(errors[0].0, json!(["body", field]));
        assert!(
            errors[0].1.starts_with("this server has no --data-dir"),
            "{}",
            errors[0].1
        );
        assert!(!r.to_string().contains("TOPSECRET"), "{r}");
    }
    assert_eq!(m.counters().requests, 0);
    let body = json!({"token": "t", "url": url, "qps": 3, "duration": 1, "timeout": TIMEOUT,
        "prompts": ["one two", "three"]});
    let (status, r) = post_json(api.addr(), "/fireworks_benchmark", &body.to_string());
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["successes"], 3, "{}", r["error_counts"]);
    assert_eq!(r["input_tokens"], 2 + 1 + 2);
    assert_eq!(m.counters().llm_requests, 3);
}

/// A data set run split over two shard processes and merged counts its tokens as one process
/// would: every shard builds the same requests (same seed, same order, so the same plan
/// fingerprint), and the token counts and both inter-token families travel in the states.
#[test]
fn shards_of_a_data_set_run_merge_with_their_tokens() {
    use pacer::shard::time::{format_rfc3339, now_unix_ns};
    use std::process::Stdio;
    let dir = TempDir::new("shards");
    let prompts = ["a b", "c d e", "f", "g h i j"];
    let lines: String = prompts
        .iter()
        .map(|p| format!("{}\n", json!({"prompt": p})))
        .collect();
    let data = dir.file("d.jsonl", &lines);
    let m = llm_mock(6, 3);
    let url = format!("{}/v1/completions", m.url());
    let base = [
        "llm",
        &url,
        "--token",
        "t",
        "-q",
        "16",
        "-z",
        "1",
        "-c",
        "4",
        "--timeout",
        "10",
        "--dataset",
        path(&data),
        "--shuffle",
    ];
    // Without a seed each shard would shuffle its own way: refused before anything is sent.
    let mut args = base.to_vec();
    args.extend(["--shard", "0/2"]);
    let o = pacer(&args);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("needs a seed"));

    let start = format_rfc3339(now_unix_ns() + 1_500_000_000);
    let states: Vec<PathBuf> = (0..2).map(|i| dir.path(&format!("s{i}.json"))).collect();
    let children: Vec<_> = (0..2)
        .map(|i| {
            let shard = format!("{i}/2");
            let mut args = base.to_vec();
            args.extend(["--seed", "9", "--shard", &shard, "--start-at", &start]);
            args.extend(["--state", path(&states[i])]);
            Command::new(env!("CARGO_BIN_EXE_pacer"))
                .args(&args)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let o = pacer(&["merge", "--json", path(&states[0]), path(&states[1])]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["successes"], 16, "{}", r["error_counts"]);
    // 16 requests over a shuffled order of 4 entries send each prompt 4 times.
    assert_eq!(r["input_tokens"], 4 * (2 + 3 + 1 + 4));
    assert_eq!(r["input_tokens_source"], "usage");
    assert_eq!(r["output_tokens"], 16 * 6);
    assert_eq!(r["config"]["order"], "shuffled");
    assert!(r["mean_inter_chunk_latency"].is_number(), "{r}");
}

/// `pacer llm` on the mock's chat route with a word tokenizer and a mismatch threshold: the
/// exit code and the report.
fn mismatch_run(m: &MockServer, tok: &Path, extra: &[&str]) -> (Option<i32>, Value) {
    let url = format!("{}/v1/chat/completions", m.url());
    let mut args = vec![
        "llm",
        &url,
        "--api",
        "chat",
        "--token",
        "t",
        "-n",
        "6",
        "-q",
        "20",
        "--timeout",
        "10",
        "--json",
        "--prompt",
        "one two three four",
        "--tokenizer",
        path(tok),
        "--threshold",
        "token_mismatch_rate<=1%",
    ];
    args.extend_from_slice(extra);
    let o = pacer(&args);
    let r = serde_json::from_slice(&o.stdout).expect("--json prints JSON");
    (o.status.code(), r)
}

#[test]
fn token_counts_are_checked_against_the_servers_usage() {
    let dir = TempDir::new("mismatch");
    let tok = word_tokenizer(&dir);
    // The mock counts words, as the tokenizer does: no mismatch, the threshold holds.
    let m = mock(MockConfig {
        ttft: ms(5.0),
        itl: ms(1.0),
        tokens: 6,
        reasoning_tokens: 2,
        ..MockConfig::default()
    });
    let (code, r) = mismatch_run(&m, &tok, &[]);
    assert_eq!(code, Some(0), "{r}");
    assert_eq!(r["successes"], 6);
    assert_eq!(r["token_mismatch_rate"], 0.0);
    let t = &r["token_mismatch"];
    assert_eq!(
        t["prompt"],
        json!({"compared": 6, "requests": 0, "mean_diff": 0.0, "max_diff": 0})
    );
    // The reasoning text is counted with the answer's, as usage counts it.
    assert_eq!(t["output"]["compared"], 6);
    assert_eq!(t["output"]["requests"], 0);
    assert_eq!(r["thresholds"][0]["pass"], true);
    // A server that counts 3 more of each: every request differs, the run fails with exit 3.
    let skewed = mock(MockConfig {
        ttft: ms(5.0),
        itl: ms(1.0),
        tokens: 6,
        usage_skew: 3,
        ..MockConfig::default()
    });
    let (code, r) = mismatch_run(&skewed, &tok, &[]);
    assert_eq!(code, Some(3), "{r}");
    assert_eq!(r["token_mismatch_rate"], 1.0);
    let t = &r["token_mismatch"];
    assert_eq!(
        t["prompt"],
        json!({"compared": 6, "requests": 6, "mean_diff": 3.0, "max_diff": 3})
    );
    assert_eq!(t["output"]["mean_diff"], 3.0);
    assert_eq!(r["thresholds"][0]["value"], 1.0);
    // Expected prompt overhead (a chat template's) is no mismatch; the output still differs.
    let (code, r) = mismatch_run(&skewed, &tok, &["--prompt-overhead-tokens", "3"]);
    assert_eq!(code, Some(3), "{r}");
    let t = &r["token_mismatch"];
    assert_eq!(
        (
            t["prompt"]["requests"].clone(),
            t["output"]["requests"].clone()
        ),
        (json!(0), json!(6))
    );
    assert_eq!(t["prompt_overhead_tokens"], 3);
    assert_eq!(r["config"]["prompt_overhead_tokens"], 3);
}
