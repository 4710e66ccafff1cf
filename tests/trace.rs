//! Trace replay (`--trace`) end to end: the real binary against the mock, which logs every
//! request it read (`log_requests`: when, and the prompt). A Mooncake trace's requests reach the
//! mock at the trace's times (scaled by `--replay-speed`), their prompts share exactly the blocks
//! their `hash_ids` name, a tokenizer makes their lengths exact; the CSV form; what the command
//! line refuses; and how the report and `--requests` account for every line.

mod util;

use std::path::Path;

use pacer::llm::synth::CORPUS;
use pacer::mock::MockConfig;
use serde_json::{Value, json};
use util::*;

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The block size of the traces below: small, so prompts stay short.
const BLOCK: u32 = 16;

/// (timestamp ms, input_length, output_length, hash_ids): entries 0, 1 and 4 share blocks 1
/// and 2, entry 2 shares only block 1, entry 3 shares nothing, entry 5 has no blocks.
const ENTRIES: [(u64, u32, u32, &[u64]); 6] = [
    (0, 30, 3, &[1, 2]),
    (400, 40, 2, &[1, 2, 3]),
    (800, 20, 4, &[1, 4]),
    (1000, 16, 2, &[5]),
    (1400, 25, 3, &[1, 2]),
    (1600, 9, 2, &[]),
];

/// The trace of [`ENTRIES`] as Mooncake JSON lines, a blank line and its timestamps' offset
/// `t0` (a trace's clock need not start at 0).
fn mooncake(t0: u64) -> String {
    let mut s = String::new();
    for (k, (ts, input, output, ids)) in ENTRIES.iter().enumerate() {
        let mut e = json!({"timestamp": t0 + ts, "input_length": input, "output_length": output});
        if !ids.is_empty() {
            e["hash_ids"] = json!(ids);
        }
        s.push_str(&e.to_string());
        s.push('\n');
        if k == 2 {
            s.push('\n');
        }
    }
    s
}

/// The file line of entry `k` in [`mooncake`] (a blank line after entry 2).
fn mooncake_line(k: usize) -> u64 {
    k as u64 + 1 + u64::from(k > 2)
}

/// Runs `pacer llm` against `m`'s completions route with `args`; its JSON report.
fn replay(m: &pacer::mock::MockServer, args: &[&str]) -> Value {
    let url = format!("{}/v1/completions", m.url());
    let mut all = vec!["llm", &url, "--token", "t", "--timeout", "10", "--json"];
    all.extend_from_slice(args);
    let o = pacer(&all);
    assert_eq!(o.status.code(), Some(0), "{all:?}: {}", stderr(&o));
    json_of(&o)
}

fn logging_mock(log: &Path) -> pacer::mock::MockServer {
    mock(MockConfig {
        ttft: ms(2.0),
        itl: ms(1.0),
        tokens: 50,
        log_requests: Some(log.to_path_buf()),
        ..MockConfig::default()
    })
}

/// The prompts the mock read, in the order it read them, with when (seconds, its clock).
fn received(log: &Path) -> Vec<(f64, String)> {
    let mut got: Vec<(f64, String)> = lines(log)
        .iter()
        .map(|r| {
            (
                r["received"].as_f64().expect("the mock logs when"),
                r["prompt"]
                    .as_str()
                    .expect("a completions prompt")
                    .to_owned(),
            )
        })
        .collect();
    got.sort_by(|a, b| a.0.total_cmp(&b.0));
    got
}

/// The `--requests` rows, by `index`.
fn rows(path: &str) -> Vec<Value> {
    let mut rows = lines(Path::new(path));
    rows.sort_by_key(|r| r["index"].as_u64().unwrap());
    rows
}

#[test]
fn a_mooncake_trace_goes_out_at_its_times_with_its_blocks_shared() {
    let dir = TempDir::new("trace-times");
    let trace = dir.file("trace.jsonl", &mooncake(27_000));
    let tok = word_tokenizer(&dir);
    for speed in [1.0, 4.0] {
        let log = dir.path(&format!("mock-{speed}.jsonl"));
        let m = logging_mock(&log);
        let requests = dir.arg(&format!("requests-{speed}.jsonl"));
        let r = replay(
            &m,
            &[
                "--trace",
                &trace.to_string_lossy(),
                "--replay-speed",
                &speed.to_string(),
                "--block-tokens",
                &BLOCK.to_string(),
                "--tokenizer",
                &tok.to_string_lossy(),
                "--requests",
                &requests,
            ],
        );
        let n = ENTRIES.len();
        assert_eq!(r["total_requests"], n, "{r}");
        assert_eq!(r["successes"], n, "{}", r["error_counts"]);
        // Exact lengths: the tokenizer counts words, as the mock does.
        let want_in: u32 = ENTRIES.iter().map(|e| e.1).sum();
        let want_out: u32 = ENTRIES.iter().map(|e| e.2).sum();
        assert_eq!(r["input_tokens"], want_in, "{r}");
        assert_eq!(r["output_tokens"], want_out, "max_tokens is output_length");
        assert_eq!(r["config"]["token_lengths"], "exact", "{}", r["config"]);
        // Lateness against the trace's times: one dispatch delay per request sent, the
        // largest the rows' own (checked below, not bounded: a busy machine sends late, and
        // the report says so).
        assert_eq!(
            r["histograms"]["dispatch_delay"].as_array().map(|b| b
                .iter()
                .map(|b| b["count"].as_u64().unwrap_or(0))
                .sum::<u64>()),
            Some(n as u64),
            "{r}"
        );
        let max_late = r["max_dispatch_delay"].as_f64().unwrap();

        // pacer's own rows: each request intended at its line's time over the speed, never
        // dispatched before it (physics), and naming its line.
        let rows = rows(&requests);
        assert_eq!(rows.len(), n);
        let late =
            |row: &Value| row["dispatched"].as_f64().unwrap() - row["intended"].as_f64().unwrap();
        let rows_max = rows.iter().map(late).fold(0.0, f64::max);
        assert!(
            (rows_max - max_late).abs() < 1e-5,
            "{rows_max} vs {max_late}"
        );
        for (k, row) in rows.iter().enumerate() {
            assert_eq!(row["trace_line"], mooncake_line(k), "{row}");
            let intended = row["intended"].as_f64().unwrap();
            let due = ENTRIES[k].0 as f64 / 1e3 / speed;
            assert!((intended - due).abs() < 2e-6, "{k}: {intended} vs {due}");
            let dispatched = row["dispatched"].as_f64().unwrap();
            assert!(dispatched >= intended, "{k}: sent early: {row}");
        }

        // The mock's clock: the gaps between its receive times are the trace's over the
        // speed, give or take the lateness pacer itself reports for the two requests (its
        // rows, checked above) and the mock's own delay in reading them, which a shared
        // machine can stretch: bounded generously (0.25 s), not timed.
        let got = received(&log);
        assert_eq!(got.len(), n, "the mock read every request");
        for k in 1..n {
            let gap = got[k].0 - got[0].0;
            let want = (ENTRIES[k].0 - ENTRIES[0].0) as f64 / 1e3 / speed;
            let (late_first, late_k) = (late(&rows[0]), late(&rows[k]));
            assert!(
                gap > want - late_first - 0.25 && gap < want + late_k + 0.25,
                "speed {speed}: request {k} read {gap:.4}s after the first, the trace says \
                 {want:.4}s (pacer's lateness {late_first:.4}s / {late_k:.4}s)"
            );
        }

        // Prompts: the mock read them in the trace's order (gaps of 100 ms at least).
        let words: Vec<Vec<&str>> = got
            .iter()
            .map(|(_, p)| p.split_whitespace().collect())
            .collect();
        for (k, w) in words.iter().enumerate() {
            assert_eq!(w.len(), ENTRIES[k].1 as usize, "entry {k}: exact length");
        }
        let b = BLOCK as usize;
        // Entries 0, 1, 4 (blocks 1, 2, ...): the same two blocks, byte for byte, as far as
        // the shorter goes.
        let bytes_of = |k: usize, words: usize| -> String { words_prefix(&got[k].1, words) };
        assert_eq!(bytes_of(0, 30), bytes_of(1, 30), "blocks 1 and 2 shared");
        assert_eq!(bytes_of(0, 25), bytes_of(4, 25));
        // Entry 2 (blocks 1, 4): block 1 shared, then its own block 4.
        assert_eq!(bytes_of(2, b), bytes_of(0, b), "block 1 shared");
        assert_ne!(words[2][b..], words[0][b..20], "block 4 is not block 2");
        // Entry 3 (block 5) and entry 5 (no blocks) share nothing with block 1.
        assert_ne!(words[3][..], words[0][..b]);
        assert_ne!(words[5][..], words[0][..9]);
    }
}

/// The first `words` words of `text`, as the bytes they are (spaces kept).
fn words_prefix(text: &str, words: usize) -> String {
    let mut seen = 0;
    let mut in_word = false;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            if in_word {
                seen += 1;
                if seen == words {
                    return text[..i].to_owned();
                }
            }
            in_word = false;
        } else {
            in_word = true;
        }
    }
    assert!(
        seen + usize::from(in_word) >= words,
        "{words} words asked of {text:?}"
    );
    text.to_owned()
}

#[test]
fn blocks_past_the_corpus_keep_exact_lengths_with_a_tokenizer() {
    // More distinct ids than the corpus has words: the later blocks are led by their round's
    // marker ("1. "), one token of the block's. Blocks of one token: such a block is its
    // marker alone, and so is the last block here (1 token past the whole ones).
    let dir = TempDir::new("trace-rounds");
    let words = CORPUS.split_whitespace().count() as u64;
    let ids: Vec<u64> = (0..words + 3).collect();
    let n = ids.len();
    let trace = dir.file(
        "t.jsonl",
        &format!(
            "{}\n",
            json!({"timestamp": 0, "input_length": n, "output_length": 2, "hash_ids": ids})
        ),
    );
    let tok = word_tokenizer(&dir);
    let log = dir.path("mock.jsonl");
    let m = logging_mock(&log);
    let r = replay(
        &m,
        &[
            "--trace",
            &trace.to_string_lossy(),
            "--block-tokens",
            "1",
            "--tokenizer",
            &tok.to_string_lossy(),
        ],
    );
    assert_eq!(r["successes"], 1, "{r}");
    assert_eq!(r["input_tokens"], n, "{r}");
    let got = received(&log);
    let prompt: Vec<&str> = got[0].1.split_whitespace().collect();
    assert_eq!(prompt.len(), n);
    assert_eq!(prompt[n - 3..], ["1.", "1.", "1."], "marker-only blocks");
}

#[test]
fn the_csv_form_replays_with_exact_lengths_and_names_its_lines() {
    let dir = TempDir::new("trace-csv");
    let trace = dir.file(
        "trace.csv",
        "timestamp,input_tokens,output_tokens\n# a comment\n0,12,3\n50,7,2\n\n120,20,4\n",
    );
    let tok = word_tokenizer(&dir);
    let log = dir.path("mock.jsonl");
    let m = logging_mock(&log);
    let requests = dir.arg("requests.jsonl");
    let r = replay(
        &m,
        &[
            "--trace",
            &trace.to_string_lossy(),
            "--tokenizer",
            &tok.to_string_lossy(),
            "--requests",
            &requests,
        ],
    );
    assert_eq!(r["total_requests"], 3, "{r}");
    assert_eq!(r["successes"], 3, "{}", r["error_counts"]);
    assert_eq!(r["input_tokens"], 12 + 7 + 20);
    assert_eq!(r["output_tokens"], 3 + 2 + 4);
    let got = received(&log);
    let counts: Vec<usize> = got
        .iter()
        .map(|(_, p)| p.split_whitespace().count())
        .collect();
    assert_eq!(counts, [12, 7, 20]);
    let rows = rows(&requests);
    let lines: Vec<u64> = rows
        .iter()
        .map(|r| r["trace_line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [3, 4, 6], "each request names its file line");
    let intended: Vec<f64> = rows
        .iter()
        .map(|r| r["intended"].as_f64().unwrap())
        .collect();
    for (got, want) in intended.iter().zip([0.0, 0.05, 0.12]) {
        assert!((got - want).abs() < 2e-6, "{intended:?}");
    }
}

#[test]
fn requests_the_trace_cannot_send_in_time_are_counted_not_sent() {
    // One connection and a server slower than the trace's gaps: the first request holds the
    // connection past the others' intended time plus the timeout, so they are not sent.
    let dir = TempDir::new("trace-unsent");
    let trace = dir.file("t.csv", "0,5,2\n10,5,2\n20,5,2\n");
    let m = mock(MockConfig {
        ttft: ms(800.0),
        itl: ms(1.0),
        tokens: 2,
        ..MockConfig::default()
    });
    let url = format!("{}/v1/completions", m.url());
    let requests = dir.arg("requests.jsonl");
    let o = pacer(&[
        "llm",
        &url,
        "--token",
        "t",
        "--trace",
        &trace.to_string_lossy(),
        "--num-workers",
        "1",
        "--timeout",
        "0.3",
        "--requests",
        &requests,
        "--json",
    ]);
    let r = json_of(&o);
    assert_eq!(r["total_requests"], 3, "{r}");
    // The first times out at 0.3 s; each later one is given up a timeout after its own time,
    // unless the freed connection takes it first (then it times out too).
    let errors = r["error_counts"].as_object().unwrap();
    let count = |name: &str| errors.get(name).and_then(Value::as_u64).unwrap_or(0);
    let unsent = count("not sent: all 1 workers busy");
    assert!(unsent >= 1, "{errors:?}");
    assert_eq!(count("timeout") + unsent, 3, "{errors:?}");
    assert_eq!(r["successes"], 0);
    let rows = rows(&requests);
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["error"], "timeout", "{}", rows[0]);
    for row in rows
        .iter()
        .filter(|r| r["error"] == "not sent: all 1 workers busy")
    {
        assert!(row["dispatched"].is_null());
        // Given up a timeout after its trace time, not before (physics: the clock's).
        let waited = row["ended"].as_f64().unwrap() - row["intended"].as_f64().unwrap();
        assert!(waited >= 0.3 - 1e-6, "{row}");
    }
    // The text report says so too.
    let o = pacer(&[
        "llm",
        &url,
        "--token",
        "t",
        "--trace",
        &trace.to_string_lossy(),
        "--num-workers",
        "1",
        "--timeout",
        "0.3",
    ]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("3 requests at the trace's times"), "{text}");
    assert!(text.contains("not sent: all 1 workers busy"), "{text}");
    assert!(text.contains("dispatch_delay"), "{text}");
}

#[test]
fn the_command_line_refuses_bad_traces_and_conflicting_flags() {
    let dir = TempDir::new("trace-refuse");
    let good = dir.file("good.jsonl", &mooncake(0));
    let good = good.to_string_lossy().into_owned();
    let url = "http://127.0.0.1:9/v1/completions";
    let refused = |args: &[&str], says: &str| {
        let mut all = vec!["llm", url, "--token", "t"];
        all.extend_from_slice(args);
        let o = pacer(&all);
        assert_eq!(o.status.code(), Some(2), "{all:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{all:?}: {}", stderr(&o));
        assert!(o.stdout.is_empty(), "{all:?}: refused before any request");
    };
    let bad_json = dir.file(
        "bad.jsonl",
        "{\"timestamp\": 0, \"input_length\": 5, \"output_length\": 1}\n\n{oops\n",
    );
    refused(
        &["--trace", &bad_json.to_string_lossy()],
        &format!("trace {}: line 3: not JSON", bad_json.display()),
    );
    let back = dir.file("back.csv", "5,10,2\n4,10,2\n");
    refused(
        &["--trace", &back.to_string_lossy()],
        "line 2: timestamp 4 goes back (line 1 has 5)",
    );
    let csv = dir.file("short.csv", "0,10,2\n1,10\n");
    refused(
        &["--trace", &csv.to_string_lossy()],
        "line 2: expected timestamp,input_tokens,output_tokens",
    );
    // 30 tokens do not fit two blocks of 512 (more than 512 needed).
    refused(
        &["--trace", &good],
        "line 1: input_length 30 does not fit its 2 blocks of 512 tokens",
    );
    let missing = dir.path("missing.jsonl");
    refused(
        &["--trace", &missing.to_string_lossy()],
        &missing.display().to_string(),
    );
    let ok = ["--trace", good.as_str(), "--block-tokens", "16"];
    for (extra, says) in [
        (vec!["--qps", "5"], "--qps"),
        (vec!["--duration", "2"], "--duration"),
        (vec!["--count", "3"], "--count"),
        (vec!["--stages", "1:1s"], "--stages"),
        (vec!["--dataset", good.as_str()], "--dataset"),
        (vec!["--input-tokens", "10"], "--input-tokens"),
        (vec!["--sessions"], "--sessions"),
        (
            vec!["--replay-speed", "0"],
            "replay_speed must be a number above 0",
        ),
        (vec!["--block-tokens", "0"], "--block-tokens"),
    ] {
        let mut args = ok.to_vec();
        args.extend(extra);
        refused(&args, says);
    }
    refused(&["--replay-speed", "2"], "--trace");
    refused(&["--block-tokens", "64"], "--trace");
}
