//! Streaming LLM benchmarks end to end against the mock's OpenAI-compatible SSE routes,
//! plain and over TLS.

mod util;

use pacer::llm::Api;
use pacer::metric::Id;
use pacer::mock::MockConfig;
use pacer::report;
use util::*;

/// The mock's timings in these tests: loose enough that requests never pile up on a loaded
/// machine, long enough that the physics bounds below mean something.
const TTFT: f64 = 0.050;
const ITL: f64 = 0.010;
const TOKENS: u64 = 20;
/// Generous: a loaded machine's slow stream still ends within it, and nothing here comes near it
/// on an idle machine. A run ends when its answers are in, so it costs no time.
const TIMEOUT: f64 = 10.0;

/// A streaming completions run with the generous timeout.
fn stream_input(url: &str, qps: f64, duration: f64) -> pacer::plan::Input {
    let mut i = llm_input(url, qps, duration);
    i.timeout = Some(TIMEOUT);
    i
}

fn llm_mock(tls: bool) -> pacer::mock::MockServer {
    mock(MockConfig {
        ttft: ms(TTFT * 1000.0),
        itl: ms(ITL * 1000.0),
        tokens: TOKENS as u32,
        tls,
        ..MockConfig::default()
    })
}

fn write_ca(m: &pacer::mock::MockServer, name: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("pacer-test-{}-{name}.pem", std::process::id()));
    std::fs::write(&path, m.ca_cert_pem().expect("tls mock has a CA")).unwrap();
    path
}

/// What holds for a stream of `TOKENS` tokens from a mock with `TTFT` and `ITL`, however loaded
/// the machine: exact counts, lower bounds from physics (the mock sends nothing before its
/// deadlines, which run from the end of the request, after the dispatch), the order of the events
/// of one request, and the accounting between the families. How close the figures come to the
/// configured ones is measured in `benches/`, not here.
fn check_timings(s: &pacer::engine::RunStats, timeout: f64) {
    let t = &s.timings;
    let n = s.successes;
    assert_eq!(s.output_tokens, TOKENS * n);
    assert_eq!(t[Id::TimeToFirstToken].count(), n);
    // Every token after the first has a gap, but those a loaded machine read together with the
    // first token (no gap of their own; counted in token_gaps_coalesced).
    let itl = t[Id::InterTokenLatency].count();
    assert!(
        itl <= (TOKENS - 1) * n && itl + s.token_gaps_coalesced >= (TOKENS - 1) * n,
        "{itl} + {}",
        s.token_gaps_coalesced
    );
    assert_eq!(t[Id::TimePerOutputToken].count(), n);
    // Dispatch < end of head <= first body byte <= first token <= last byte, for every request.
    assert_not_before(&t[Id::TimeToFirstByte], &t[Id::Latency], "ttfb vs latency");
    assert_not_before(
        &t[Id::TimeToFirstToken],
        &t[Id::TimeToFirstByte],
        "ttft vs ttfb",
    );
    assert_not_before(
        &t[Id::ResponseTime],
        &t[Id::TimeToFirstToken],
        "response vs ttft",
    );
    let ttft = t[Id::TimeToFirstToken].summary();
    let rt = t[Id::ResponseTime].summary();
    assert!(ttft.min.unwrap() >= TTFT, "ttft min {:?}", ttft.min);
    // The last token is due TTFT + (TOKENS - 1) × ITL after the request's end.
    let last_due = TTFT + (TOKENS - 1) as f64 * ITL;
    assert!(rt.min.unwrap() >= last_due, "response min {:?}", rt.min);
    // A success ended within the timeout.
    assert!(rt.max.unwrap() <= timeout, "response max {:?}", rt.max);
    // Per request the gaps add up to (last token − first token) <= (response − ttft), and the
    // first token plus the gaps reach the last token's deadline.
    let (ttft_mean, rt_mean) = (ttft.mean.unwrap(), rt.mean.unwrap());
    let itl_mean = t[Id::InterTokenLatency].summary().mean.unwrap();
    let gaps = (TOKENS - 1) as f64 * itl_mean;
    assert!(
        ttft_mean + gaps <= rt_mean + 1e-9,
        "{ttft_mean} + {gaps} > {rt_mean}"
    );
    assert!(
        ttft_mean + gaps >= last_due - 1e-9,
        "{ttft_mean} + {gaps} < {last_due}"
    );
    // TPOT is (response − ttft) / (tokens − 1) per request, so its mean is that of the means.
    let tpot = t[Id::TimePerOutputToken].summary().mean.unwrap();
    let want = (rt_mean - ttft_mean) / (TOKENS - 1) as f64;
    assert!((tpot - want).abs() < 1e-9, "tpot {tpot}, want {want}");
    assert_tpot_near(t, ITL, "every token ITL apart");
    // The mock reports when its first token really left (Fireworks' perf_metrics in the final
    // event, which overrides the header's configured value): never before its deadline, and in
    // seconds (a value in milliseconds would be far past any timeout).
    let server = t[Id::ServerTimeToFirstToken].summary();
    assert_eq!(server.count, n);
    assert!(server.min.unwrap() >= TTFT, "server ttft {:?}", server.min);
    assert!(
        server.max.unwrap() <= timeout,
        "server ttft {:?}",
        server.max
    );
}

#[test]
fn completions_stream_over_plain_http() {
    let m = llm_mock(false);
    let i = stream_input(&format!("{}/v1/completions", m.url()), 10.0, 1.0);
    let s = run(&i);
    assert_accounted(&s, 10);
    assert_eq!(s.successes, 10, "{:?}", s.errors);
    check_timings(&s, TIMEOUT);
}

#[test]
fn chat_stream_over_tls_with_the_mock_ca() {
    let m = llm_mock(true);
    let ca = write_ca(&m, "chat");
    let mut i = stream_input(&format!("{}/v1/completions", m.url()), 10.0, 1.0);
    i.ca_cert = Some(ca.to_string_lossy().into_owned());
    if let Some(l) = i.llm.as_mut() {
        l.api = Api::Chat;
    }
    let p = plan(&i);
    assert_eq!(p.target.path, "/v1/chat/completions");
    let s = pacer::engine::run(&p, None).unwrap();
    assert_accounted(&s, 10);
    assert_eq!(s.successes, 10, "{:?}", s.errors);
    check_timings(&s, TIMEOUT);
    let json = report::to_json(&report::Settings::of(&p), &s);
    assert!(json["mean_time_to_first_token"].as_f64().unwrap() >= TTFT);
    assert_eq!(json["output_tokens"], serde_json::json!(200));
    assert!(json["config"]["fireworks_payload"]["messages"].is_array());
    let text = serde_json::to_string(&json).unwrap();
    assert!(!text.contains("test-secret-token-123"));
    let _ = std::fs::remove_file(ca);
}

/// A request larger than rustls's 64 KiB plaintext buffer goes out in several rounds, whole
/// (one copy) or in shared segments (one prompt under drawn max_tokens). Stopping after the first
/// round waited for a writable edge a socket with room never sends: every such request timed
/// out.
#[test]
fn requests_larger_than_the_tls_buffer_go_out_whole() {
    let m = llm_mock(true);
    let ca = write_ca(&m, "big");
    for output_tokens in [None, Some("uniform:1:1000")] {
        let mut i = stream_input(&format!("{}/v1/completions", m.url()), 10.0, 0.5);
        i.ca_cert = Some(ca.to_string_lossy().into_owned());
        if let Some(l) = i.llm.as_mut() {
            l.prompt = "w ".repeat(100_000);
        }
        i.workload.output_tokens = output_tokens.map(|o| o.parse().unwrap());
        let p = plan(&i);
        assert!(p.requests.first().len() > 200_000);
        let s = pacer::engine::run(&p, None).unwrap();
        assert_accounted(&s, 5);
        assert_eq!(s.successes, 5, "{output_tokens:?}: {:?}", s.errors);
    }
    let _ = std::fs::remove_file(ca);
}

#[test]
fn chat_first_byte_is_the_role_event_not_the_first_token() {
    // The chat mock sends a role-only event with the head, the first token TTFT later: with a
    // TTFT of two seconds, a first byte timed at the first token (or later) cannot pass, and a
    // loaded machine has two seconds to deliver the role event.
    let ttft = 2.0;
    let m = mock(MockConfig {
        ttft: ms(ttft * 1000.0),
        itl: ms(1.0),
        tokens: 2,
        ..MockConfig::default()
    });
    let mut i = llm_input(&format!("{}/v1/chat/completions", m.url()), 4.0, 0.5);
    i.timeout = Some(30.0);
    if let Some(l) = i.llm.as_mut() {
        l.api = Api::Chat;
    }
    let s = run(&i);
    assert_eq!(s.successes, 2, "{:?}", s.errors);
    let t = &s.timings;
    let ttfb = t[Id::TimeToFirstByte].summary();
    let first = t[Id::TimeToFirstToken].summary();
    assert_eq!((ttfb.count, first.count), (2, 2));
    assert!(ttfb.max.unwrap() < ttft, "ttfb {:?}", ttfb.max);
    assert!(first.min.unwrap() >= ttft, "ttft {:?}", first.min);
}

#[test]
fn several_tokens_per_event_are_counted_by_usage() {
    // 10 tokens, 3 per event: 4 content events (3, 3, 3, 1), due 0, 3, 6 and 7 gaps after the
    // first; usage says 10.
    let m = mock(MockConfig {
        ttft: ms(20.0),
        itl: ms(5.0),
        tokens: 10,
        tokens_per_chunk: 3,
        ..MockConfig::default()
    });
    let i = stream_input(&format!("{}/v1/completions", m.url()), 10.0, 0.5);
    let s = run(&i);
    assert_eq!(s.successes, 5, "{:?}", s.errors);
    assert_eq!(s.output_tokens, 50);
    let t = &s.timings;
    assert!(t[Id::TimeToFirstToken].summary().min.unwrap() >= 0.020);
    assert!(t[Id::ResponseTime].summary().min.unwrap() >= 0.020 + 7.0 * 0.005);
    // TPOT divides by the usage count, not by the events.
    let tpot = t[Id::TimePerOutputToken].summary().mean.unwrap();
    let (rt, ttft) = (
        t[Id::ResponseTime].summary().mean.unwrap(),
        t[Id::TimeToFirstToken].summary().mean.unwrap(),
    );
    assert!((tpot - (rt - ttft) / 9.0).abs() < 1e-9, "tpot {tpot}");
    // The mock's own schedule: the last event 7 gaps after the first, over 10 - 1 tokens.
    assert_tpot_near(t, 7.0 * 0.005 / 9.0, "10 tokens in events of 3");
}

/// `time_per_output_token` against the mock's set timings, not pacer's other figures: the mock
/// sends its token events on a fixed schedule (the first `ttft` after the request, then every
/// `itl`) and ends the stream right after the last, so each request's TPOT is `want` but for how
/// late the mock's first event left. The median lies within a factor of two of it on any machine
/// this suite runs on (the first event of most requests would have to leave more than half the
/// stream late, or the last more than the whole stream late, to break it).
fn assert_tpot_near(t: &pacer::engine::Timings, want: f64, what: &str) {
    let p50 = t[Id::TimePerOutputToken]
        .quantile(0.5)
        .expect("TPOT samples");
    assert!(
        (want / 2.0..=want * 2.0).contains(&p50),
        "{what}: TPOT p50 {p50}, the mock's schedule gives {want}"
    );
}

#[test]
fn tls_without_the_ca_fails_every_request_by_name() {
    let m = llm_mock(true);
    let i = stream_input(&format!("{}/v1/completions", m.url()), 10.0, 1.0);
    let s = run(&i);
    assert_accounted(&s, 10);
    assert_eq!(
        named(&s, "tls: invalid certificate: unknown issuer"),
        10,
        "{:?}",
        s.errors
    );
}

#[test]
fn insecure_skips_verification_and_says_so() {
    let m = llm_mock(true);
    let mut i = stream_input(&format!("{}/v1/completions", m.url()), 10.0, 0.5);
    i.insecure = true;
    let p = plan(&i);
    let s = pacer::engine::run(&p, None).unwrap();
    assert_eq!(s.successes, 5, "{:?}", s.errors);
    let json = report::to_json(&report::Settings::of(&p), &s);
    assert_eq!(json["config"]["insecure"], serde_json::json!(true));
}

#[test]
fn non_streaming_counts_usage_tokens() {
    let m = mock(MockConfig {
        ttft: ms(5.0),
        itl: ms(1.0),
        tokens: 7,
        ..MockConfig::default()
    });
    let mut i = stream_input(&format!("{}/v1/completions", m.url()), 10.0, 0.5);
    if let Some(l) = i.llm.as_mut() {
        l.stream = false;
    }
    let s = run(&i);
    assert_eq!(s.successes, 5, "{:?}", s.errors);
    assert_eq!(s.output_tokens, 35);
}

#[test]
fn tls_sessions_resume_across_reconnects() {
    // The mock closes after reading each request: every request needs a new connection. With one
    // connection at a time, each handshake after the first finds the ticket the one before got
    // (the mock sends it before it reads the request, so before it closes): exactly 1 full.
    let m = mock(MockConfig {
        tls: true,
        fault: Some(pacer::mock::Fault::CloseBeforeResponse),
        ..MockConfig::default()
    });
    let ca = write_ca(&m, "resume");
    let mut i = input(&format!("{}/", m.url()), 20.0, 0.5);
    i.ca_cert = Some(ca.to_string_lossy().into_owned());
    i.threads = Some(1);
    i.num_workers = Some(1);
    // One connection at a time: a generous timeout, so that on a loaded machine a request waiting
    // for the connection is late rather than "not sent".
    i.timeout = Some(TIMEOUT);
    let s = run(&i);
    assert_accounted(&s, 10);
    assert_eq!(
        named(&s, "connection closed before response"),
        10,
        "{:?}",
        s.errors
    );
    assert_eq!((s.tls_full, s.tls_resumed), (1, 9));
    let _ = std::fs::remove_file(ca);
}

/// A chat run against a mock that reasons for its first 4 tokens (5 ms to the first, 2 ms
/// between), out of 10, and, with `tool_call`, ends with a tool call (its last 2 tokens).
fn reasoning_run(tool_call: bool) -> (pacer::plan::Plan, pacer::engine::RunStats) {
    let m = mock(MockConfig {
        ttft: ms(5.0),
        itl: ms(2.0),
        tokens: 10,
        reasoning_tokens: 4,
        tool_call,
        ..MockConfig::default()
    });
    let mut i = stream_input(&format!("{}/v1/chat/completions", m.url()), 10.0, 0.5);
    if let Some(l) = i.llm.as_mut() {
        l.api = Api::Chat;
    }
    let p = plan(&i);
    let s = pacer::engine::run(&p, None).unwrap();
    assert_eq!(s.successes, 5, "{:?}", s.errors);
    (p, s)
}

#[test]
fn reasoning_content_and_tool_calls_have_their_own_first_token() {
    let (p, s) = reasoning_run(false);
    let t = &s.timings;
    let (first, reasoning, content) = (
        t[Id::TimeToFirstToken].summary(),
        t[Id::TimeToFirstReasoningToken].summary(),
        t[Id::TimeToFirstContentToken].summary(),
    );
    assert_eq!((first.count, reasoning.count, content.count), (5, 5, 5));
    // The reasoning comes first: it is the first token; the answer's first token is the fifth,
    // sent 4 gaps later (physics: never before 5 ms + 4 × 2 ms after dispatch).
    assert_eq!(reasoning.mean, first.mean);
    assert!(reasoning.min.unwrap() >= 0.005, "{:?}", reasoning.min);
    assert!(
        content.min.unwrap() >= 0.005 + 4.0 * 0.002,
        "{:?}",
        content.min
    );
    assert!(content.max.unwrap() <= TIMEOUT, "{:?}", content.max);
    assert_not_before(
        &t[Id::TimeToFirstContentToken],
        &t[Id::TimeToFirstReasoningToken],
        "content after reasoning",
    );
    assert_not_before(
        &t[Id::CorrectedTimeToFirstContentToken],
        &t[Id::TimeToFirstContentToken],
        "corrected from the intended time",
    );
    assert_eq!(t[Id::CorrectedTimeToFirstReasoningToken].count(), 5);
    assert_eq!(t[Id::TimeToFirstToolCall].count(), 0);
    let json = report::to_json(&report::Settings::of(&p), &s);
    assert_eq!(json["output_tokens"], 50);
    assert_eq!(json["reasoning_tokens"], 20);
    assert_eq!(json["mean_reasoning_tokens"], 4.0);
    // A family no request fed is absent, as the server's own first token is without it.
    assert!(json.get("mean_time_to_first_tool_call").is_none());
    assert!(json["histograms"].get("time_to_first_tool_call").is_none());
    assert!(json["mean_time_to_first_reasoning_token"].as_f64().unwrap() >= 0.005);

    let (p, s) = reasoning_run(true);
    let t = &s.timings;
    let tool = t[Id::TimeToFirstToolCall].summary();
    assert_eq!(
        (tool.count, t[Id::CorrectedTimeToFirstToolCall].count()),
        (5, 5)
    );
    // The call is the last 2 of 10 tokens: 8 gaps after the first.
    assert!(tool.min.unwrap() >= 0.005 + 8.0 * 0.002, "{:?}", tool.min);
    assert_not_before(
        &t[Id::TimeToFirstToolCall],
        &t[Id::TimeToFirstContentToken],
        "the call after the answer's text",
    );
    let json = report::to_json(&report::Settings::of(&p), &s);
    assert!(json["mean_time_to_first_tool_call"].as_f64().unwrap() >= 0.021);
    // Output tokens from usage: the call's deltas count.
    assert_eq!(json["output_tokens"], 50);
}

#[test]
fn a_prompt_mostly_cached_is_reported_and_noted() {
    // The one repeated prompt ("Snow is white", 3 words) said to be cached in full.
    let m = mock(MockConfig {
        ttft: ms(5.0),
        itl: ms(1.0),
        tokens: 3,
        cached_tokens: 3,
        ..MockConfig::default()
    });
    let i = stream_input(&format!("{}/v1/completions", m.url()), 10.0, 0.5);
    let p = plan(&i);
    let s = pacer::engine::run(&p, None).unwrap();
    assert_eq!(s.successes, 5, "{:?}", s.errors);
    let json = report::to_json(&report::Settings::of(&p), &s);
    assert_eq!(json["cached_tokens"], 15);
    assert_eq!(json["cached_token_share"], 1.0);
    let notes = json["health"]["notes"].to_string();
    assert!(
        notes.contains("prefix cache gave 15 of 15 prompt tokens"),
        "{notes}"
    );
    // A run built to share prefixes (--prefix-tokens) means its cache hits: the share is
    // reported, and no note warns about it.
    let all_cached = mock(MockConfig {
        ttft: ms(5.0),
        itl: ms(1.0),
        tokens: 3,
        cached_tokens: 1000,
        ..MockConfig::default()
    });
    let mut i = stream_input(&format!("{}/v1/completions", all_cached.url()), 10.0, 0.5);
    i.workload.input_tokens = Some("8".parse().unwrap());
    i.workload.prefix_tokens = Some(4);
    let p = plan(&i);
    let s = pacer::engine::run(&p, None).unwrap();
    let json = report::to_json(&report::Settings::of(&p), &s);
    assert_eq!(json["cached_token_share"], 1.0, "{json}");
    let notes = json["health"]["notes"].to_string();
    assert!(!notes.contains("prefix cache"), "{notes}");
    // Without the cache's figure: null, and no note.
    let plain = llm_mock(false);
    let i = stream_input(&format!("{}/v1/completions", plain.url()), 10.0, 0.3);
    let p = plan(&i);
    let json = report::to_json(
        &report::Settings::of(&p),
        &pacer::engine::run(&p, None).unwrap(),
    );
    assert_eq!(json["cached_tokens"], serde_json::Value::Null);
    assert!(!json["health"]["notes"].to_string().contains("prefix cache"));
}

#[test]
fn llama_timings_give_the_servers_figures_and_what_lies_outside_them() {
    // `pacer mock --server-timings llama`: timings.prompt_ms is the mock's ttft, and
    // predicted_per_token_ms its itl, in the stream's last event.
    let m = mock(MockConfig {
        ttft: ms(TTFT * 1000.0),
        itl: ms(ITL * 1000.0),
        tokens: TOKENS as u32,
        server_timings: pacer::mock::ServerTimings::Llama,
        ..MockConfig::default()
    });
    let url = format!("{}/v1/completions", m.url());
    let o = pacer(&[
        "llm",
        &url,
        "--token",
        "t",
        "-q",
        "10",
        "-z",
        "0.5",
        "--timeout",
        "10",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = json_of(&o);
    let n = r["successes"].as_u64().unwrap_or(0);
    assert_eq!(n, 5, "{r}");
    let f = |k: &str| r[k].as_f64().unwrap_or_else(|| panic!("{k} missing: {r}"));
    // The server's figures are what the mock sent, exactly, for every request.
    for k in [
        "server_time_to_first_token_p50",
        "max_server_time_to_first_token",
    ] {
        assert_eq!(f(k), TTFT, "{k}");
    }
    for k in [
        "server_time_per_output_token_p50",
        "max_server_time_per_output_token",
    ] {
        assert_eq!(f(k), ITL, "{k}");
    }
    // What lies outside the server: the client's first token comes no earlier than the
    // server's deadline, and the difference is per request, so the means subtract.
    let ttft = f("mean_time_to_first_token");
    assert!(ttft >= TTFT, "ttft {ttft}");
    let outside = f("mean_ttft_outside_server");
    assert!(
        (outside - (ttft - TTFT)).abs() < 1e-9,
        "outside {outside}, ttft {ttft}"
    );
    assert!(f("max_ttft_outside_server") < TIMEOUT);
    // The text report lists them too, with the note that the server's figure excludes its queue.
    let o = pacer(&[
        "llm",
        &url,
        "--token",
        "t",
        "-q",
        "10",
        "-z",
        "0.2",
        "--timeout",
        "10",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    for row in [
        "server_time_to_first_token",
        "ttft_outside_server",
        "server_time_per_output_token",
    ] {
        assert!(text.contains(row), "{row}: {text}");
    }
    assert!(
        text.contains("its wait in the server's queue is not in it"),
        "{text}"
    );
}

#[test]
fn without_server_timings_the_server_families_are_absent() {
    let m = mock(MockConfig {
        ttft: ms(5.0),
        itl: ms(1.0),
        tokens: 3,
        server_timings: pacer::mock::ServerTimings::None,
        ..MockConfig::default()
    });
    let i = stream_input(&format!("{}/v1/completions", m.url()), 10.0, 0.3);
    let p = plan(&i);
    let s = pacer::engine::run(&p, None).unwrap();
    assert_eq!(s.successes, 3, "{:?}", s.errors);
    for id in [
        Id::ServerTimeToFirstToken,
        Id::TtftOutsideServer,
        Id::ServerTimePerOutputToken,
    ] {
        assert_eq!(s.timings[id].count(), 0, "{}", id.name());
    }
    let json = report::to_json(&report::Settings::of(&p), &s);
    assert!(json.get("mean_ttft_outside_server").is_none(), "{json}");
}

/// The body keys the mock logged for each request.
fn logged_keys(log: &std::path::Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(log).unwrap();
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k.as_str().unwrap().to_string())
                .collect()
        })
        .collect()
}

#[test]
fn the_cli_sends_a_minimal_openai_payload_unless_asked_for_fireworks() {
    let dir = TempDir::new("payload-style");
    let run_with = |name: &str, extra: &[&str]| {
        let log = dir.path(name);
        let m = mock(MockConfig {
            ttft: ms(2.0),
            itl: ms(1.0),
            tokens: 3,
            log_requests: Some(log.clone()),
            ..MockConfig::default()
        });
        let url = format!("{}/v1/completions", m.url());
        let mut args = vec![
            "llm", &url, "--token", "t", "-q", "10", "-z", "0.2", "--json",
        ];
        args.extend_from_slice(extra);
        let o = pacer(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let r = json_of(&o);
        drop(m);
        (r, logged_keys(&log))
    };
    // A loopback server is not Fireworks: the minimal payload, and the report says so.
    let (r, keys) = run_with("openai.jsonl", &[]);
    assert_eq!(r["config"]["payload_style"], "openai");
    assert_eq!(keys.len(), 2, "{keys:?}");
    for k in &keys {
        assert_eq!(
            k,
            &["model", "prompt", "max_tokens", "stream", "stream_options"],
            "{keys:?}"
        );
    }
    assert_eq!(
        r["config"]["fireworks_payload"]["stream_options"],
        serde_json::json!({"include_usage": true})
    );
    // Asked for: the original's payload, key for key, and ignore_eos only when asked.
    let (r, keys) = run_with(
        "fireworks.jsonl",
        &["--payload-style", "fireworks", "--ignore-eos"],
    );
    assert_eq!(r["config"]["payload_style"], "fireworks");
    let want = [
        "model",
        "prompt",
        "max_tokens",
        "logprobs",
        "echo",
        "temperature",
        "top_p",
        "top_k",
        "frequency_penalty",
        "presence_penalty",
        "n",
        "stop",
        "stream",
        "context_length_exceeded_behavior",
        "user",
        "stream_options",
        "ignore_eos",
    ];
    assert_eq!(keys.len(), 2, "{keys:?}");
    for k in &keys {
        assert_eq!(k, &want, "{keys:?}");
    }
}

/// Streams llama.cpp's `llama-server` sent (`benches/llama_server.sh fixtures`: its head and
/// chunked body as they came off the socket).
const LLAMA_COMPLETIONS: &[u8] = include_bytes!("fixtures/llama_cpp_completions_stream.http");
const LLAMA_CHAT: &[u8] = include_bytes!("fixtures/llama_cpp_chat_stream.http");

/// The SSE data of a saved response, read here without pacer's parsers: the body after the head,
/// de-chunked, split at blank lines, `data: ` taken off.
fn saved_events(raw: &[u8]) -> Vec<String> {
    let at = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let mut rest = &raw[at..];
    let mut body = Vec::new();
    // Bounded by the fixture's length: every turn takes at least 2 bytes off it.
    while !rest.is_empty() {
        let eol = rest.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap(), 16).unwrap();
        if size == 0 {
            break;
        }
        body.extend_from_slice(&rest[eol + 2..eol + 2 + size]);
        rest = &rest[eol + 2 + size + 2..];
    }
    String::from_utf8(body)
        .unwrap()
        .split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| e.strip_prefix("data: ").unwrap().to_string())
        .collect()
}

/// A server on loopback that answers every request with `response`, whatever it asked, then
/// closes the connection (the saved head says `Connection: close`); it serves at most `n`
/// requests and stops by itself after `within`.
fn replay_server(response: &'static [u8], n: usize, within: std::time::Duration) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind(loopback()).unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let end = std::time::Instant::now() + within;
        let mut served = 0;
        while served < n && std::time::Instant::now() < end {
            let Ok((mut s, _)) = listener.accept() else {
                std::thread::sleep(ms(1.0));
                continue;
            };
            s.set_nonblocking(false).unwrap();
            s.set_read_timeout(Some(ms(5000.0))).unwrap();
            // The request: its head, then Content-Length bytes of body.
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            let complete = loop {
                let Ok(k) = s.read(&mut buf) else { break false };
                if k == 0 {
                    break false;
                }
                req.extend_from_slice(&buf[..k]);
                if let Some(h) = req.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&req[..h]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse().unwrap());
                    if req.len() >= h + 4 + len {
                        break true;
                    }
                }
            };
            if complete {
                let _ = s.write_all(response);
            }
            served += 1;
        }
    });
    url
}

/// pacer reading llama.cpp's own bytes: every content event is a chunk of output, the first is
/// the first token (not chat's role event before it), and the output tokens are the server's
/// usage, whatever the events carried (llama.cpp holds back a token that ends inside a UTF-8
/// character and sends it with the next, so events and tokens need not match).
#[test]
fn llama_cpp_streams_are_read_as_the_server_counted_them() {
    for (raw, api, path) in [
        (LLAMA_COMPLETIONS, Api::Completions, "/v1/completions"),
        (LLAMA_CHAT, Api::Chat, "/v1/chat/completions"),
    ] {
        let events = saved_events(raw);
        let json: Vec<serde_json::Value> = events
            .iter()
            .filter(|e| *e != "[DONE]")
            .map(|e| serde_json::from_str(e).unwrap())
            .collect();
        let text = |j: &serde_json::Value| {
            let c = &j["choices"][0];
            c["text"]
                .as_str()
                .or(c["delta"]["content"].as_str())
                .unwrap_or("")
                .to_string()
        };
        let content = json.iter().filter(|j| !text(j).is_empty()).count() as u64;
        let usage = json
            .iter()
            .rev()
            .find_map(|j| j["usage"].as_object())
            .unwrap();
        let tokens = usage["completion_tokens"].as_u64().unwrap();
        let prompt = usage["prompt_tokens"].as_u64().unwrap();
        assert!(
            content >= 2 && tokens >= content,
            "{api:?}: {content} events, {tokens} tokens"
        );

        let url = replay_server(raw, 5, std::time::Duration::from_secs(30));
        let mut i = stream_input(&format!("{url}{path}"), 20.0, 0.25);
        if let Some(l) = i.llm.as_mut() {
            l.api = api;
        }
        let s = run(&i);
        assert_eq!(s.successes, 5, "{api:?}: {:?}", s.errors);
        let t = &s.timings;
        assert_eq!(s.output_tokens, tokens * 5, "{api:?}: usage's count");
        assert_eq!(s.input_tokens, prompt * 5, "{api:?}: usage's prompt");
        assert_eq!(t[Id::TimeToFirstToken].count(), 5);
        assert_eq!(t[Id::TimeToFirstContentToken].count(), 5);
        // One gap between each two content events of a request (chat's role event is none);
        // this server writes the whole answer at once, so most are read together.
        assert_eq!(s.token_gaps, (content - 1) * 5, "{api:?}");
        assert!(s.token_gaps_coalesced <= s.token_gaps);
        assert_eq!(
            t[Id::InterChunkLatency].count(),
            s.token_gaps - s.token_gaps_coalesced
        );
    }
}
