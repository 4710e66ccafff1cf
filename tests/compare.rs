//! `pacer compare` and `--repeat N` through the real binary against real mocks on loopback: a
//! mock 1 ms slower is a real change, two runs of one setup are noise at p50, `--fail-if`'s exit
//! codes, bad input refused by name, the page's embedded comparison, and a repeated run's
//! summary.

mod util;

use std::time::Duration;

use pacer::mock::{MockConfig, MockServer};
use serde_json::Value;
use util::{TempDir, json_of, pacer, stderr};

fn mock_with_delay(ms: f64) -> MockServer {
    util::mock(MockConfig {
        error_rate: 0.0,
        delay: Duration::from_secs_f64(ms / 1000.0),
        ..MockConfig::default()
    })
}

/// 200 req/s for 2 s against `url`, every request to `requests`.
fn run_to(url: &str, requests: &str) {
    let o = pacer(&[
        "bench",
        url,
        "-q",
        "200",
        "-z",
        "2s",
        "-c",
        "20",
        "--quiet",
        "--requests",
        requests,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

fn figure<'a>(c: &'a Value, name: &str) -> &'a Value {
    c["figures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["figure"] == name)
        .unwrap_or_else(|| panic!("no {name} in {c}"))
}

#[test]
fn a_mock_one_millisecond_slower_is_real_and_the_same_setup_is_noise() {
    let (fast, slow) = (mock_with_delay(1.0), mock_with_delay(2.0));
    let dir = TempDir::new("compare-real");
    let (a, c) = (dir.arg("a.jsonl"), dir.arg("c.jsonl"));
    run_to(&format!("{}/", fast.url()), &a);
    run_to(&format!("{}/", slow.url()), &c);
    // The same setup: one run's requests dealt alternately into two files, so the two halves
    // saw the same machine at the same moments (two runs one after the other on a busy machine
    // can differ for real, and a test must not depend on a quiet machine).
    let (a1, a2) = (dir.arg("a1.jsonl"), dir.arg("a2.jsonl"));
    let lines = std::fs::read_to_string(&a).unwrap();
    let (mut odd, mut even) = (String::new(), String::new());
    for (i, line) in lines.lines().enumerate() {
        let half = if i % 2 == 0 { &mut even } else { &mut odd };
        half.push_str(line);
        half.push('\n');
    }
    std::fs::write(&a1, even).unwrap();
    std::fs::write(&a2, odd).unwrap();

    let o = pacer(&["compare", &a, &c, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let cmp = json_of(&o);
    assert_eq!(cmp["kind"], "compare");
    assert_eq!(cmp["source"], "requests");
    let p50 = figure(&cmp, "response_time_p50");
    assert_eq!(p50["verdict"], "real", "{p50}");
    // The mock waits 1 ms longer: physics gives at least most of it, the machine at most a lot.
    let change = p50["change"].as_f64().unwrap();
    assert!(change > 0.0005 && change < 0.05, "{p50}");
    let iv = p50["interval"].as_array().unwrap();
    assert!(iv[0].as_f64().unwrap() > 0.0, "{p50}");
    assert!(p50["p_value"].as_f64().unwrap() < 0.05, "{p50}");
    // Every answered request of the base run is a sample (400 were scheduled; a busy machine
    // may leave some unsent, which have no response time).
    let answered = std::fs::read_to_string(&a)
        .unwrap()
        .lines()
        .filter(|l| !serde_json::from_str::<Value>(l).unwrap()["status"].is_null())
        .count();
    assert!(answered >= 100, "{answered} of 400 answered");
    assert_eq!(p50["samples"][0], answered);

    let o = pacer(&["compare", &a1, &a2, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let same = json_of(&o);
    let p50 = figure(&same, "response_time_p50");
    assert_eq!(p50["verdict"], "noise", "{p50}");

    // --fail-if: a 10% slower p50 holds (exit 3), a 1000% one does not (exit 0).
    let o = pacer(&["compare", &a, &c, "--fail-if", "response_time_p50>+10%"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("--fail-if held: response_time_p50>+10%"));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("HOLDS") && text.contains("real"), "{text}");
    let o = pacer(&[
        "compare",
        &a,
        &c,
        "--fail-if",
        "response_time_p50>+1000%",
        "--fail-if",
        "mean_response_time>+500ms",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    // The page: one file, the comparison inside, both runs' curves for the chart.
    let html = dir.arg("cmp.html");
    let o = pacer(&[
        "compare",
        &a,
        &c,
        "--html",
        &html,
        "-o",
        &dir.arg("cmp.json"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let page = std::fs::read_to_string(&html).unwrap();
    let start = page.find("id=\"report-data\">").unwrap() + "id=\"report-data\">".len();
    let end = start + page[start..].find("</script>").unwrap();
    let data: Value = serde_json::from_str(&page[start..end]).unwrap();
    let curve = &data["curves"]["response_time"];
    assert_eq!(curve["base"].as_array().unwrap().len(), 100);
    assert_eq!(curve["new"].as_array().unwrap().len(), 100);
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path("cmp.json")).unwrap()).unwrap();
    assert_eq!(saved["figures"], data["figures"]);
}

#[test]
fn reports_are_compared_but_not_judged() {
    let m = mock_with_delay(0.0);
    let dir = TempDir::new("compare-reports");
    let url = format!("{}/", m.url());
    for name in ["a.json", "b.json"] {
        let o = pacer(&[
            "bench",
            &url,
            "-q",
            "50",
            "-z",
            "1s",
            "--quiet",
            "-o",
            &dir.arg(name),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let o = pacer(&["compare", &dir.arg("a.json"), &dir.arg("b.json"), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let cmp = json_of(&o);
    assert_eq!(cmp["source"], "report");
    let p50 = figure(&cmp, "response_time_p50");
    assert_eq!(p50["verdict"], "cannot judge");
    assert!(p50["why"].as_str().unwrap().contains("--requests"), "{p50}");
    assert!(p50["base"].as_f64().unwrap() > 0.0 && p50["new"].as_f64().unwrap() > 0.0);
    assert_eq!(figure(&cmp, "achieved_qps")["verdict"], "cannot judge");
}

#[test]
fn bad_input_is_refused_by_name_before_anything_is_judged() {
    let dir = TempDir::new("compare-bad");
    let line = r#"{"index":0,"thread":0,"conn":1,"intended":0.0,"dispatched":0.0,"headers":0.001,"first_token":null,"ended":0.001,"status":200,"error":null,"bytes":131}"#;
    let good = dir.file("good.jsonl", &format!("{line}\n{line}\n"));
    let good = good.to_str().unwrap();
    let bad_line = dir.file("bad.jsonl", &format!("{line}\n{{\"index\": \"x\"}}\n"));
    let garbage = dir.file("garbage.txt", "hello\n");
    let report = dir.file("r.json", "{\"total_requests\": 1, \"config\": {}}");
    let sweep = dir.file("s.json", "{\"kind\": \"sweep\", \"table\": []}");
    let cases: [(&str, &str, &str); 6] = [
        (
            good,
            "/nonexistent/x.jsonl",
            "cannot read /nonexistent/x.jsonl",
        ),
        (
            good,
            bad_line.to_str().unwrap(),
            "bad.jsonl line 2: not a --requests line",
        ),
        (
            garbage.to_str().unwrap(),
            good,
            "garbage.txt is not a pacer report",
        ),
        (report.to_str().unwrap(), good, "two of a kind"),
        (sweep.to_str().unwrap(), good, "it is a sweep"),
        (good, dir.0.to_str().unwrap(), "it is a directory"),
    ];
    for (base, new, want) in cases {
        let o = pacer(&["compare", base, new]);
        assert_eq!(o.status.code(), Some(2), "{base} {new}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{want}: {}", stderr(&o));
    }
    // Too large for --max-bytes.
    let o = pacer(&["compare", good, good, "--max-bytes", "10"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("larger than the 10 allowed"),
        "{}",
        stderr(&o)
    );
    // A malformed --fail-if is refused before the files are read (these do not exist).
    let o = pacer(&[
        "compare",
        "/nonexistent/a",
        "/nonexistent/b",
        "--fail-if",
        "response_time_p99>+10 parsecs",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--fail-if"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("cannot read"), "{}", stderr(&o));
    // Two samples a side: shown, not judged.
    let o = pacer(&["compare", good, good, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let p50 = &figure(&json_of(&o), "response_time_p50").clone();
    assert_eq!(p50["verdict"], "cannot judge");
    assert!(
        p50["why"]
            .as_str()
            .unwrap()
            .contains("fewer than 20 samples")
    );
}

#[test]
fn repeat_reports_each_run_then_a_summary() {
    let m = mock_with_delay(0.0);
    let dir = TempDir::new("repeat");
    let url = format!("{}/", m.url());
    let (out, req) = (dir.arg("rep.json"), dir.arg("r.jsonl"));
    let o = pacer(&[
        "bench",
        &url,
        "-q",
        "50",
        "-z",
        "1s",
        "--repeat",
        "3",
        "--repeat-pause",
        "100ms",
        "-o",
        &out,
        "--requests",
        &req,
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        text.matches("requests 50 ").count(),
        3,
        "three run reports: {text}"
    );
    assert!(text.contains("summary of 3 runs"), "{text}");
    let rep: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(
        (rep["kind"].as_str(), rep["completed"].as_u64()),
        (Some("repeat"), Some(3))
    );
    assert_eq!(rep["runs"].as_array().unwrap().len(), 3);
    for key in ["response_time_p50", "mean_response_time", "achieved_qps"] {
        let s = &rep["summary"][key];
        let (mean, min, max) = (
            s["mean"].as_f64().unwrap(),
            s["min"].as_f64().unwrap(),
            s["max"].as_f64().unwrap(),
        );
        assert!(min <= mean && mean <= max, "{key}: {s}");
        assert!(s["ci95_half_width"].as_f64().unwrap() >= 0.0, "{key}: {s}");
        assert_eq!(s["n"], 3);
    }
    for i in 1..=3 {
        let lines = std::fs::read_to_string(dir.path(&format!("r.{i}.jsonl"))).unwrap();
        assert_eq!(lines.lines().count(), 50, "run {i}");
    }
    // A threshold is checked on each run: exit 3, and both runs still ran.
    let o = pacer(&[
        "bench",
        &url,
        "-q",
        "20",
        "-z",
        "500ms",
        "--repeat",
        "2",
        "--repeat-pause",
        "0s",
        "--threshold",
        "response_time_p50<1us",
        "--json",
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let rep = json_of(&o);
    assert_eq!(rep["runs"].as_array().unwrap().len(), 2);
    assert!(
        stderr(&o).contains("run 1:") && stderr(&o).contains("run 2:"),
        "{}",
        stderr(&o)
    );
    // A sweep refuses it.
    let o = pacer(&["sweep", &url, "--repeat", "2"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--repeat does not apply to a sweep"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn ctrl_c_between_repeats_keeps_the_runs_that_finished() {
    use std::process::{Command, Stdio};
    use std::time::Instant;
    let m = mock_with_delay(0.0);
    let dir = TempDir::new("repeat-int");
    let url = format!("{}/", m.url());
    let (html, out) = (dir.arg("r.html"), dir.arg("r.json"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_pacer"))
        .args([
            "bench",
            &url,
            "-q",
            "50",
            "-z",
            "1s",
            "--repeat",
            "3",
            "--repeat-pause",
            "60s",
            "--quiet",
            "--html",
            &html,
            "-o",
            &out,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Run 1's page is written when it ends: then the command is in its 60 s pause.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !dir.path("r.1.html").exists() {
        assert!(Instant::now() < deadline, "run 1 never ended");
        std::thread::sleep(Duration::from_millis(20));
    }
    let ok = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the pause was not cut short by Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let o = child.wait_with_output().unwrap();
    assert_eq!(status.code(), Some(130), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("interrupted after 1 of 3 runs"),
        "{}",
        stderr(&o)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("summary of 1 run:"));
    let rep: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(rep["completed"], 1);
    assert!(!dir.path("r.2.html").exists(), "no second run started");
}
