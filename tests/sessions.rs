//! Multi-turn sessions (`--sessions`) end to end: the real binary against the mock, which logs
//! what every request carried (`log_requests`): each turn's history, its connection and its
//! session header; and pacer's own figures of the run (by turn, per session, think time).

mod util;

use std::collections::{HashMap, HashSet};

use pacer::mock::MockConfig;
use serde_json::Value;
use util::*;

const THINK_MS: f64 = 200.0;

fn lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn three_turn_sessions_send_their_history_on_one_connection_with_their_header() {
    let dir = TempDir::new("sessions");
    let log = dir.path("mock.jsonl");
    let m = mock(MockConfig {
        ttft: ms(5.0),
        itl: ms(1.0),
        tokens: 4,
        log_requests: Some(log.clone()),
        ..MockConfig::default()
    });
    let data = dir.file(
        "conv.jsonl",
        concat!(
            r#"{"turns": ["first question", "second question", "third question"]}"#,
            "\n",
            r#"{"conversations": [{"from": "human", "value": "h1"}, {"from": "gpt", "value": "g1"}, {"from": "human", "value": "h2"}, {"from": "gpt", "value": "g2"}, {"from": "human", "value": "h3"}, {"from": "human", "value": "dropped by --max-turns"}]}"#,
            "\n"
        ),
    );
    let url = format!("{}/v1/chat/completions", m.url());
    let requests = dir.arg("requests.jsonl");
    // 4 sessions a second for 2 s: 8 sessions; the last ones start late enough that their
    // later turns fall past the end (each turn takes about 10 ms plus 200 ms of think time).
    let o = pacer(&[
        "llm",
        &url,
        "--api",
        "chat",
        "--token",
        "t",
        "--qps",
        "4",
        "--duration",
        "2",
        "--timeout",
        "10",
        "--dataset",
        &data.to_string_lossy(),
        "--sessions",
        "--max-turns",
        "3",
        "--think-time",
        "200ms",
        "--session-header",
        "X-Session-ID",
        "--requests",
        &requests,
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report = json_of(&o);
    let sessions = &report["sessions"];
    assert_eq!(sessions["started"], 8, "{sessions}");
    let finished = sessions["finished"].as_u64().unwrap();
    let unfinished = sessions["unfinished"].as_u64().unwrap();
    assert_eq!(finished + unfinished, 8);
    assert!(finished >= 1, "{sessions}");
    // Every turn accounted for: 8 sessions × 3 turns, sent or not.
    assert_eq!(report["total_requests"], 24, "{report}");
    let by_turn = report["by_turn"].as_array().unwrap();
    assert_eq!(by_turn.len(), 3, "{by_turn:?}");
    for (k, row) in by_turn.iter().enumerate() {
        assert_eq!(row["turn"], k + 1);
        assert_eq!(
            row["requests"],
            8,
            "every session's turn {} ended somehow",
            k + 1
        );
        let p50 = row["time_to_first_token_p50"].as_f64().unwrap();
        assert!(
            p50 >= 0.005,
            "turn {}: ttft p50 {p50} below the mock's 5 ms",
            k + 1
        );
    }
    // Later turns carry longer prompts (the mock counts words of every message).
    let prompt = |k: usize| by_turn[k]["mean_prompt_tokens"].as_f64().unwrap();
    assert!(
        prompt(0) < prompt(1) && prompt(1) < prompt(2),
        "{by_turn:?}"
    );

    // What the mock received: by session id, in order.
    let got = lines(&log);
    let sent: u64 =
        report["total_requests"].as_u64().unwrap() - report["unsent"].as_u64().unwrap_or(0);
    assert_eq!(got.len() as u64, sent, "the mock saw every request sent");
    let mut by_session: HashMap<String, Vec<&Value>> = HashMap::new();
    for r in &got {
        let id = r["headers"]["x-session-id"]
            .as_str()
            .expect("every turn has the header");
        by_session.entry(id.to_owned()).or_default().push(r);
    }
    assert_eq!(
        by_session.len(),
        8,
        "a distinct id per session: {:?}",
        by_session.keys()
    );
    for (id, turns) in &by_session {
        let conns: HashSet<u64> = turns.iter().map(|r| r["conn"].as_u64().unwrap()).collect();
        assert_eq!(
            conns.len(),
            1,
            "session {id}: one connection for every turn: {conns:?}"
        );
        for (k, r) in turns.iter().enumerate() {
            let messages = r["messages"].as_array().unwrap();
            assert_eq!(messages.len(), 2 * k + 1, "session {id}, turn {}", k + 1);
            let roles: Vec<&str> = messages
                .iter()
                .map(|m| m["role"].as_str().unwrap())
                .collect();
            for (j, role) in roles.iter().enumerate() {
                assert_eq!(*role, if j % 2 == 0 { "user" } else { "assistant" });
            }
            if k > 0 {
                // The previous answer is the mock's streamed text (its fixed sentence).
                let answer = messages[2 * k - 1]["content"].as_str().unwrap();
                assert_eq!(
                    answer,
                    " The quick mock streams",
                    "session {id}, turn {}",
                    k + 1
                );
                // And the history before it is the previous turn's request, as sent.
                let before = turns[k - 1]["messages"].as_array().unwrap();
                assert_eq!(&messages[..2 * k - 1], &before[..], "session {id}");
            }
        }
    }

    // pacer's own rows: session and turn, one connection per session, and the think time.
    let rows = lines(std::path::Path::new(&requests));
    assert_eq!(rows.len(), 24);
    let mut turns: HashMap<u64, Vec<&Value>> = HashMap::new();
    for r in &rows {
        turns
            .entry(r["session"].as_u64().unwrap())
            .or_default()
            .push(r);
    }
    assert_eq!(turns.len(), 8);
    let mut gaps = 0;
    for (s, rows) in turns.iter_mut() {
        rows.sort_by_key(|r| r["turn"].as_u64().unwrap());
        assert_eq!(
            rows.iter()
                .map(|r| r["turn"].as_u64().unwrap())
                .collect::<Vec<_>>(),
            [1, 2, 3]
        );
        for pair in rows.windows(2) {
            let (Some(end), Some(next)) =
                (pair[0]["ended"].as_f64(), pair[1]["dispatched"].as_f64())
            else {
                continue;
            };
            if pair[0]["error"].is_null() {
                // Physics: the next turn cannot leave before the answer's end plus the think time.
                assert!(
                    next - end >= THINK_MS / 1e3 - 1e-6,
                    "session {s}: gap {}",
                    next - end
                );
                // Its intended time is exactly that; lateness counts from there.
                let intended = pair[1]["intended"].as_f64().unwrap();
                assert!(
                    (intended - end - THINK_MS / 1e3).abs() < 1e-5,
                    "session {s}: {intended} vs {end}"
                );
                gaps += 1;
            }
        }
    }
    assert!(gaps >= 2, "some later turns went out");
    // Turns past the run's end are unsent, not errors.
    assert_eq!(report["errors"], 0, "{report}");
}

#[test]
fn session_runs_refuse_what_they_cannot_do() {
    let dir = TempDir::new("sessions-refuse");
    let data = dir.file("c.jsonl", "{\"turns\": [\"a\", \"b\"]}\n");
    let data = data.to_string_lossy().into_owned();
    let url = "http://127.0.0.1:9/v1/completions";
    for (args, says) in [
        (vec!["--sessions", "--dataset", &data], "--api chat"),
        (vec!["--sessions", "--api", "chat"], "--dataset"),
        (
            vec!["--think-time", "1s", "--api", "chat", "--dataset", &data],
            "--sessions",
        ),
        (
            vec![
                "--sessions",
                "--api",
                "chat",
                "--dataset",
                &data,
                "--think-time",
                "uniform:2s:1s",
            ],
            "MAX is below MIN",
        ),
    ] {
        let mut all = vec!["llm", url, "--token", "t", "--qps", "1", "--duration", "1"];
        all.extend(args.iter().copied());
        let o = pacer(&all);
        assert_eq!(o.status.code(), Some(2), "{all:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{all:?}: {}", stderr(&o));
    }
    let bad = dir.file("bad.jsonl", "{\"turns\": [\"a\"]}\n{\"turns\": []}\n");
    let o = pacer(&[
        "llm",
        url,
        "--token",
        "t",
        "--api",
        "chat",
        "--sessions",
        "--dataset",
        &bad.to_string_lossy(),
        "--duration",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(&format!("{}: line 2: empty \"turns\"", bad.display())),
        "{}",
        stderr(&o)
    );
}

#[test]
fn turns_after_a_failed_one_are_counted_not_sent() {
    // Nothing listens: every first turn is refused, and its session's later turns are never
    // sent. Each is still a request of the report, in its own bucket.
    let dir = TempDir::new("sessions-ended");
    let data = dir.file("c.jsonl", "{\"turns\": [\"a\", \"b\", \"c\"]}\n");
    let url = format!("http://127.0.0.1:{}/v1/chat/completions", closed_port());
    let requests = dir.arg("requests.jsonl");
    let o = pacer(&[
        "llm",
        &url,
        "--api",
        "chat",
        "--token",
        "t",
        "--qps",
        "4",
        "--duration",
        "1",
        "--timeout",
        "5",
        "--sessions",
        "--dataset",
        &data.to_string_lossy(),
        "--requests",
        &requests,
        "--json",
    ]);
    let r = json_of(&o);
    assert_eq!(r["sessions"]["started"], 4, "{}", r["sessions"]);
    assert_eq!(r["sessions"]["unfinished"], 4);
    // 4 sessions × 3 turns: 4 refused, 8 never sent; the buckets add up.
    assert_eq!(r["total_requests"], 12, "{r}");
    assert_eq!(r["errors"], 4, "{}", r["error_counts"]);
    assert_eq!(r["unsent"], 8, "{r}");
    assert_eq!(r["successes"], 0);
    for row in r["by_turn"].as_array().unwrap() {
        assert_eq!(
            row["requests"], 4,
            "every session's turn ended somehow: {row}"
        );
    }
    let rows = lines(std::path::Path::new(&requests));
    assert_eq!(rows.len(), 12);
    for row in &rows {
        let want = if row["turn"] == 1 {
            "connection refused"
        } else {
            "not sent: session ended"
        };
        assert_eq!(row["error"], want, "{row}");
    }
    // The text report names the bucket.
    let o = pacer(&[
        "llm",
        &url,
        "--api",
        "chat",
        "--token",
        "t",
        "--qps",
        "4",
        "--duration",
        "1",
        "--sessions",
        "--dataset",
        &data.to_string_lossy(),
    ]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("errors 4   unsent 8 (8 session ended)"),
        "{text}"
    );
}
