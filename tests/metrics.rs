//! The per-request figures of a streaming run, end to end through the real binary (issue 18):
//! which requests feed the per-token families, that a stage gets them too, and what happens to
//! token gaps read together.

mod util;

use std::process::Command;

use pacer::mock::{Fault, MockConfig};
use serde_json::Value;
use util::*;

/// `pacer llm URL --json` with `args` and `env`; the report, after checking the exit code.
fn llm(url: &str, args: &[&str], env: &[(&str, &str)]) -> Value {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pacer"));
    c.args(["llm", url, "--token", "t", "--quiet", "--json"])
        .args(args)
        .env_remove("FIREWORKS_API_KEY")
        .env_remove("PACER_TIMESTAMPS")
        .env_remove("PACER_TEST_HOLD_MS");
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().expect("the pacer binary runs");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    json_of(&o)
}

fn completions(m: &pacer::mock::MockServer) -> String {
    format!("{}/v1/completions", m.url())
}

/// Defect 3: a stream that fails (here: it ends without `[DONE]`) had no time to first token but
/// gave inter-token samples. Every per-request family now takes successes only.
#[test]
fn a_failed_stream_adds_no_per_token_sample() {
    let m = mock(MockConfig {
        ttft: ms(5.0),
        itl: ms(1.0),
        tokens: 5,
        fault: Some(Fault::SseNoDone),
        ..MockConfig::default()
    });
    let r = llm(&completions(&m), &["-q", "10", "-z", "400ms"], &[]);
    assert_eq!(r["total_requests"], 4, "{r}");
    assert_eq!(r["successes"], 0, "{r}");
    assert_eq!(
        r["error_counts"]["stream error: stream ended without [DONE]"],
        4
    );
    // The responses were complete, so they are timed as responses...
    assert!(r["mean_response_time"].is_number(), "{r}");
    // ...but none of the per-request or per-token families of a success is.
    for family in [
        "time_to_first_token",
        "inter_token_latency",
        "inter_chunk_latency",
        "time_per_output_token",
    ] {
        assert!(r[format!("mean_{family}")].is_null(), "{family}: {r}");
        assert!(
            r["histograms"][family].as_array().unwrap().is_empty(),
            "{family}"
        );
    }
}

/// Defect 2: each stage reports its own inter-token and inter-chunk latency (they were always
/// null). 5 tokens per answer, so 4 gaps per request, in whichever stage it was intended.
#[test]
fn each_stage_has_its_per_token_figures() {
    let m = mock(MockConfig {
        ttft: ms(5.0),
        itl: ms(2.0),
        tokens: 5,
        ..MockConfig::default()
    });
    let r = llm(
        &completions(&m),
        &["--stages", "10:300ms,10:300ms", "--timeout", "10s"],
        &[],
    );
    assert_eq!(r["successes"], 6, "{}", r["error_counts"]);
    let run_gaps: u64 = r["histograms"]["inter_token_latency"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    // 4 token gaps a request; a loaded machine may read two events together (one chunk), and a
    // token joining the first chunk of its response then has no gap before it.
    let co = &r["token_gaps_coalesced"];
    assert_eq!(co["of"], 6 * 4, "{co}");
    let coalesced = co["count"].as_u64().unwrap();
    assert!(
        run_gaps <= 6 * 4 && run_gaps + coalesced >= 6 * 4,
        "{run_gaps} {co}"
    );
    let stages = r["stages"].as_array().expect("stages");
    assert_eq!(stages.len(), 2);
    for s in stages {
        assert_eq!(s["successes"], 3, "{s}");
        for family in ["inter_token_latency", "inter_chunk_latency"] {
            let mean = s[format!("mean_{family}")].as_f64();
            assert!(mean.is_some_and(|x| x > 0.0), "{family}: {s}");
            assert!(s[format!("{family}_p50")].is_number(), "{family}: {s}");
        }
        // A stage's gaps are the run's gaps of its requests: the run's mean lies between the
        // stages' means.
    }
    let means: Vec<f64> = stages
        .iter()
        .map(|s| s["mean_inter_token_latency"].as_f64().unwrap())
        .collect();
    let run = r["mean_inter_token_latency"].as_f64().unwrap();
    let (lo, hi) = (means[0].min(means[1]), means[0].max(means[1]));
    assert!(
        lo - 1e-12 <= run && run <= hi + 1e-12,
        "{run} not in {means:?}"
    );
}

/// Defect 1: a lane that reads late (the test hook holds it 400 ms before the first read of each
/// response, while the mock streams 10 tokens 2 ms apart) finds every event of a response in one
/// read. Those gaps were all 0 (each event got the read's stamp); now a read's events are one
/// chunk, no gap of 0 is made up, and the report counts the token gaps read together and says so
/// in its health.
#[test]
fn token_gaps_read_together_are_one_chunk_and_flagged() {
    let m = mock(MockConfig {
        ttft: ms(5.0),
        itl: ms(2.0),
        tokens: 10,
        ..MockConfig::default()
    });
    let r = llm(
        &completions(&m),
        &["-q", "5", "-z", "600ms", "-c", "1", "--timeout", "10s"],
        &[("PACER_TEST_HOLD_MS", "400")],
    );
    let n = r["successes"].as_u64().unwrap();
    assert_eq!(n, 3, "{}", r["error_counts"]);
    // No gap of 0 from reading late.
    let itl = &r["histograms"]["inter_token_latency"];
    for b in itl.as_array().unwrap() {
        assert!(b["from"].as_f64().unwrap() > 0.0, "a gap of 0: {itl}");
    }
    // 9 gaps a request, every one read together with the token before it.
    let c = &r["token_gaps_coalesced"];
    assert_eq!(c["count"], 9 * n, "{c}");
    assert_eq!(c["of"], 9 * n, "{c}");
    assert_eq!(c["share"], 1.0, "{c}");
    assert_eq!(
        r["health"]["verdict"], "generator-limited",
        "{}",
        r["health"]
    );
    let reasons = r["health"]["reasons"].to_string();
    assert!(
        reasons.contains("token gaps") && reasons.contains("--realtime"),
        "{reasons}"
    );
}

/// Without a late read nothing is coalesced: each token event of the mock came in its own read.
/// (On a loaded machine a few may still come together; the share stays small.)
#[test]
fn token_gaps_read_as_they_come_are_not_coalesced() {
    let m = mock(MockConfig {
        ttft: ms(5.0),
        itl: ms(5.0),
        tokens: 5,
        ..MockConfig::default()
    });
    let r = llm(
        &completions(&m),
        &["-q", "10", "-z", "300ms", "--timeout", "10s"],
        &[],
    );
    let n = r["successes"].as_u64().unwrap();
    assert_eq!(n, 3, "{}", r["error_counts"]);
    let c = &r["token_gaps_coalesced"];
    assert_eq!(c["of"], 4 * n, "{c}");
    assert!(
        c["count"].as_u64().unwrap() <= c["of"].as_u64().unwrap(),
        "{c}"
    );
    for s in r["stages"].as_array().into_iter().flatten() {
        assert!(s["token_gaps_coalesced"].is_object(), "{s}");
    }
}

/// `pacer metrics` lists every timing family the report carries, with its scope and the rule of
/// which requests feed it; `--json` gives the same list for generated docs.
#[test]
fn pacer_metrics_lists_every_family() {
    let o = pacer(&["metrics"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    for m in &pacer::metric::METRICS {
        let line = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(m.name))
            .unwrap_or_else(|| panic!("{} missing: {text}", m.name));
        assert!(
            line.contains(m.scope.word()) && line.contains(m.note),
            "{line}"
        );
    }
    assert!(text.contains(pacer::metric::POPULATION_RULE), "{text}");
    let list = json_of(&pacer(&["metrics", "--json"]));
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), pacer::metric::METRICS.len());
    assert!(names.contains(&"time_to_first_content_token"));
    assert_eq!(names[8], "inter_token_latency");
    assert_eq!(list[8]["scope"], "token");
    assert_eq!(list[8]["samples_from"], "successes");
}
