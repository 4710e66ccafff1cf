//! The real `pacer` binary, run as a user runs it: flags in, exit code, stdout and stderr out,
//! against in-process mock targets on port 0.

mod util;

use std::process::Command;

use pacer::mock::MockConfig;
use serde_json::Value;
use util::*;

/// Runs `pacer fireworks ... --json` against the mock with `extra` flags; returns the report
/// after checking the exit code.
fn fireworks_json(m: &pacer::mock::MockServer, extra: &[&str]) -> Value {
    let url = format!("{}/v1/completions", m.url());
    let mut args = vec![
        "fireworks",
        "--url",
        &url,
        "--token",
        "cli-test-token",
        "--qps",
        "10",
        "--duration",
        "0.5",
        "--timeout",
        "10",
        "--json",
    ];
    args.extend_from_slice(extra);
    let o = pacer(&args);
    assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).expect("--json prints JSON")
}

fn assert_all_succeeded(r: &Value) {
    assert_eq!(r["total_requests"], 5, "{r}");
    assert_eq!(r["successes"], r["total_requests"], "{}", r["error_counts"]);
}

#[test]
fn stream_takes_a_value() {
    let m = llm_mock();
    let r = fireworks_json(&m, &["--stream", "false"]);
    assert_all_succeeded(&r);
    assert_eq!(r["config"]["stream"], false);
    assert_eq!(r["config"]["fireworks_payload"]["stream"], false);
    // Not streaming: no time-to-first-token family, but the usage still counts tokens.
    assert!(r.get("mean_time_to_first_token").is_none(), "{r}");
    assert_eq!(r["output_tokens"], 25);

    let r = fireworks_json(&m, &["--stream", "True"]);
    assert_all_succeeded(&r);
    assert_eq!(r["config"]["stream"], true);
    assert_eq!(r["output_tokens"], 25);
    assert!(r["mean_time_to_first_token"].as_f64().unwrap() >= 0.005);

    // The API's words, and no others.
    let o = pacer(&["fireworks", "--token", "t", "--stream", "yes"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--stream"), "{}", stderr(&o));
}

#[test]
fn the_payloads_final_stream_decides_how_the_response_is_read() {
    let m = llm_mock();
    let r = fireworks_json(&m, &["--payload", r#"{"stream": false}"#]);
    assert_all_succeeded(&r);
    assert_eq!(r["config"]["stream"], false);
    let payload = &r["config"]["fireworks_payload"];
    assert_eq!(payload["stream"], false);
    // stream_options is only for streaming requests: servers refuse it otherwise.
    assert!(payload.get("stream_options").is_none(), "{payload}");
    assert!(r.get("mean_time_to_first_token").is_none(), "{r}");

    // And the other way round: the payload turns streaming on.
    let r = fireworks_json(
        &m,
        &["--stream", "false", "--payload", r#"{"stream": true}"#],
    );
    assert_all_succeeded(&r);
    assert_eq!(r["config"]["stream"], true);
    assert_eq!(
        r["config"]["fireworks_payload"]["stream_options"]["include_usage"],
        true
    );
    assert!(r["mean_time_to_first_token"].as_f64().unwrap() >= 0.005);
}

#[test]
fn a_control_character_in_a_header_value_is_bad_usage() {
    // Nothing listens there: the plan must refuse before any connection is tried.
    let url = format!("http://127.0.0.1:{}/", closed_port());
    for (header, shown) in [
        ("X-Bell: a\u{7}b", "X-Bell"),
        ("X-Esc: \u{1b}[31m", "X-Esc"),
        ("X-Del: a\u{7f}", "X-Del"),
    ] {
        let o = pacer(&[
            "bench",
            "--url",
            &url,
            "--qps",
            "1",
            "--duration",
            "1",
            "-H",
            header,
        ]);
        assert_eq!(o.status.code(), Some(2), "{header:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains(shown), "{header:?}: {err}");
        assert!(err.contains("control character"), "{header:?}: {err}");
        assert!(o.stdout.is_empty(), "no report for a refused plan");
    }
}

/// A path in the temporary directory no other test (or run) uses.
fn temp_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("pacer-cli-test-{}-{name}", std::process::id()))
}

#[test]
fn a_positional_url_and_durations_with_units() {
    let m = mock_ok();
    let url = format!("{}/", m.url());
    let o = pacer(&["bench", &url, "-z", "300ms", "-q", "20", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = json_of(&o);
    assert_eq!(r["config"]["url"], url.as_str());
    assert_eq!(r["config"]["duration"], 0.3);
    assert_eq!(r["total_requests"], 6);
    assert_eq!(r["successes"], 6, "{}", r["error_counts"]);
    assert_eq!(m.counters().requests, 6);
    // The settings come first, on stderr, so stdout stays JSON.
    let err = stderr(&o);
    assert!(
        err.starts_with(&format!(
            "pacer: GET {url}\n  20 req/s for 300ms (6 requests"
        )),
        "{err}"
    );
    // `-d` (wrk's) and minutes-and-seconds read the same way.
    let o = pacer(&["bench", &url, "-d", "0m0.2s", "-q", "10", "-j"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(json_of(&o)["total_requests"], 2);
}

#[test]
fn the_originals_underscore_flags_still_work() {
    let m = mock_ok();
    let url = format!("{}/", m.url());
    let o = pacer(&[
        "bench",
        "--url",
        &url,
        "--qps",
        "10",
        "--duration",
        "0.3",
        "--num_workers",
        "2",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = json_of(&o);
    assert_eq!(
        (
            r["config"]["num_workers"].as_u64(),
            r["total_requests"].as_u64()
        ),
        (Some(2), Some(3))
    );
    // --ca_cert is read as --ca-cert: a missing file is refused by that name.
    let missing = temp_path("no-such-ca.pem");
    let o = pacer(&["bench", &url, "--ca_cert", missing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("cannot read --ca-cert {}", missing.display())),
        "{}",
        stderr(&o)
    );
    let llm = llm_mock();
    let r = fireworks_json(&llm, &["--max_tokens", "3"]);
    assert_eq!(r["config"]["fireworks_payload"]["max_tokens"], 3);
}

#[test]
fn refused_everywhere_exits_1_with_the_address() {
    let port = closed_port();
    let url = format!("http://127.0.0.1:{port}/");
    let o = pacer(&["bench", &url, "-z", "300ms", "-q", "10"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "pacer: no request got a response: connection refused by 127.0.0.1:{port}"
        )),
        "{err}"
    );
    // The report still says what happened.
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("3  connection refused"), "{out}");
}

#[test]
fn a_name_that_does_not_resolve_exits_1_with_the_reason() {
    let o = pacer(&[
        "bench",
        "http://no-such-host.invalid:8080/",
        "-z",
        "300ms",
        "-q",
        "10",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(
            "no request got a response: cannot resolve no-such-host.invalid: names under \
             .invalid never resolve (RFC 6761)"
        ),
        "{}",
        stderr(&o)
    );
    let r = json_of(&o);
    assert_eq!(r["error_counts"]["dns: no-such-host.invalid"], 3);
}

#[test]
fn a_run_that_cannot_start_exits_1() {
    // A CA file that is not PEM: the TLS set-up fails before any request.
    let ca = temp_path("not-a-ca.pem");
    std::fs::write(&ca, "not a certificate").unwrap();
    let url = format!("https://127.0.0.1:{}/", closed_port());
    let o = pacer(&[
        "bench",
        &url,
        "-z",
        "300ms",
        "--ca-cert",
        ca.to_str().unwrap(),
    ]);
    let _ = std::fs::remove_file(&ca);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).starts_with("pacer: "), "{}", stderr(&o));
    assert!(
        o.stdout.is_empty(),
        "no report for a run that did not start"
    );
}

#[test]
fn bad_usage_exits_2_naming_the_flag_and_the_value() {
    let m = mock_ok();
    let url = format!("{}/", m.url());
    for (args, says) in [
        (&["-q", "0"][..], "--qps must be > 0 (got 0)"),
        (&["--duration", "0"], "--duration must be > 0 (got 0s)"),
        (&["--timeout=-1s"], "--timeout must be > 0 (got -1s)"),
        (&["-c", "0"], "--num-workers must be at least 1 (got 0)"),
        (&["-t", "0"], "--threads must be at least 1 (got 0)"),
        (
            &["-z", "5x"],
            "invalid value '5x' for '--duration <DURATION>'",
        ),
        (&["-c", "2.5"], "\"2.5\" is not a whole number"),
        (
            &["-q", "0.1", "-z", "1s"],
            "--qps × --duration must make at least 1 request",
        ),
        (
            &["--arrival", "poisson", "-q", "max"],
            "--arrival poisson needs a numeric --qps",
        ),
        (
            &["-H", "no colon"],
            "-H/--header \"no colon\" must be `Name: value`",
        ),
        (&["--no-such-flag"], "unexpected argument '--no-such-flag'"),
    ] {
        let mut argv = vec!["bench", url.as_str()];
        argv.extend_from_slice(args);
        let o = pacer(&argv);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("integers"), "{args:?}: {}", stderr(&o));
        assert!(o.stdout.is_empty(), "{args:?}");
    }
    let o = pacer(&["bench"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("<URL>"), "{}", stderr(&o));
    let o = pacer(&["fireworks", &url, "--max-tokens", "0", "--token", "t"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--max-tokens must be > 0 (got 0)"),
        "{}",
        stderr(&o)
    );
    // Nothing reached the target.
    assert_eq!(m.counters().requests, 0);
}

#[test]
fn output_writes_the_json_while_the_text_goes_to_the_terminal() {
    let m = mock_ok();
    let url = format!("{}/", m.url());
    let file = temp_path("report.json");
    let run = |extra: &[&str]| {
        let mut argv = vec!["bench", &url, "-z", "300ms", "-q", "20", "-o"];
        argv.push(file.to_str().unwrap());
        argv.extend_from_slice(extra);
        pacer(&argv)
    };
    let o = run(&[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.starts_with(&format!("pacer: GET {url}")), "{text}");
    assert!(text.contains("response time histogram"), "{text}");
    let saved: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(saved["total_requests"], 6);

    // The same fields as --json; with both, the file and stdout are the same report.
    let o = run(&["--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let printed = json_of(&o);
    let again: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let _ = std::fs::remove_file(&file);
    assert_eq!(printed, again);
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&saved), keys(&printed));
    assert_eq!(keys(&saved["histograms"]), keys(&printed["histograms"]));
}

#[test]
fn an_output_that_cannot_be_written_fails_before_the_run() {
    let m = mock_ok();
    let url = format!("{}/", m.url());
    let missing_dir = temp_path("no-such-dir").join("report.json");
    let dir = std::env::temp_dir();
    for path in [missing_dir.to_str().unwrap(), dir.to_str().unwrap()] {
        let o = pacer(&["bench", &url, "-z", "300ms", "-o", path]);
        assert_eq!(o.status.code(), Some(2), "{path}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(&format!("cannot write --output {path}: ")),
            "{}",
            stderr(&o)
        );
    }
    assert_eq!(m.counters().requests, 0, "the run never started");
}

/// The fields of a timing family that the text report shows too.
fn assert_family(r: &Value, name: &str) {
    let num = |k: String| {
        r[&k]
            .as_f64()
            .unwrap_or_else(|| panic!("{k} is not a number: {}", r[&k]))
    };
    let (p99, p999, max) = (
        num(format!("{name}_p99")),
        num(format!("{name}_p999")),
        num(format!("max_{name}")),
    );
    assert!(p99 <= p999 && p999 <= max, "{name}: {p99} {p999} {max}");
}

/// The histogram of `family`: buckets ascending, none empty; returns the sum of their counts.
fn histogram_total(r: &Value, family: &str) -> u64 {
    let buckets = r["histograms"][family]
        .as_array()
        .unwrap_or_else(|| panic!("no histograms.{family}: {}", r["histograms"]));
    let mut prev = 0.0;
    let mut total = 0;
    for b in buckets {
        let (from, to, n) = (
            b["from"].as_f64().unwrap(),
            b["to"].as_f64().unwrap(),
            b["count"].as_u64().unwrap(),
        );
        assert!(from >= prev && to > from && n > 0, "{family}: {b}");
        prev = to;
        total += n;
    }
    total
}

#[test]
fn json_carries_max_p999_and_histograms() {
    let m = mock(MockConfig::default()); // 20% answered 400: timed responses too
    let url = format!("{}/", m.url());
    let o = pacer(&["bench", &url, "-z", "500ms", "-q", "40", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = json_of(&o);
    for family in [
        "response_time",
        "latency",
        "corrected_response_time",
        "dispatch_delay",
    ] {
        assert_family(&r, family);
    }
    assert_eq!(r["total_requests"], 20);
    // Every request got a response (a 200 or a 400), and each was timed once.
    assert_eq!(histogram_total(&r, "response_time"), 20);
    assert_eq!(histogram_total(&r, "dispatch_delay"), 20);
    assert!(r["max_response_time"].as_f64() >= r["response_time_p99"].as_f64());

    let llm = llm_mock();
    let r = fireworks_json(&llm, &[]);
    assert_all_succeeded(&r);
    for family in [
        "time_to_first_token",
        "inter_token_latency",
        "time_per_output_token",
    ] {
        assert_family(&r, family);
    }
    assert_eq!(histogram_total(&r, "time_to_first_token"), 5);
    assert_eq!(histogram_total(&r, "time_per_output_token"), 5);
    // 5 tokens per answer: 4 gaps each, less the tokens a loaded machine read together with
    // the first one (they have no gap of their own; counted in token_gaps_coalesced).
    let itl = histogram_total(&r, "inter_token_latency");
    let coalesced = r["token_gaps_coalesced"]["count"].as_u64().unwrap_or(0);
    assert!(itl <= 20 && itl + coalesced >= 20, "{itl} + {coalesced}");
}

#[test]
fn the_llm_alias_takes_a_positional_url() {
    let m = llm_mock();
    let url = format!("{}/v1/completions", m.url());
    let o = pacer(&[
        "llm", &url, "--token", "t", "-z", "300ms", "-q", "10", "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = json_of(&o);
    assert_eq!(r["config"]["url"], url.as_str());
    assert_eq!(r["successes"], 3, "{}", r["error_counts"]);
}

#[test]
fn help_lists_every_flag_with_its_default() {
    use clap::CommandFactory;
    let o = pacer(&["--help"]);
    let top = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(top.contains("[alias: llm]"), "{top}");
    for code in ["0 ", "1 ", "2 ", "3 ", "130 "] {
        assert!(
            top.contains(&format!("\n  {code}")),
            "exit code {code}: {top}"
        );
    }
    let mut cli = pacer::cli::Cli::command();
    for name in ["bench", "fireworks"] {
        let o = pacer(&[name, "--help"]);
        assert_eq!(o.status.code(), Some(0));
        let help = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(help.contains("Exit codes:"), "{help}");
        let sub = cli.find_subcommand_mut(name).unwrap();
        for arg in sub.get_arguments() {
            let takes_value = arg.get_action().takes_values();
            let Some(long) = arg.get_long() else { continue };
            if arg.is_hide_set() || !takes_value {
                continue;
            }
            let line = help
                .lines()
                .find(|l| {
                    let l = l.trim_start();
                    l.starts_with(&format!("--{long} ")) || l.contains(&format!(", --{long} "))
                })
                .unwrap_or_else(|| panic!("{name}: --{long} is not in --help:\n{help}"));
            assert!(
                line.contains("[default: ") || line.contains("(required"),
                "{name} --{long} has no default in --help: {line}"
            );
        }
    }
    let o = pacer(&["bench", "--help"]);
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(
        help.contains(
            "[default: the qps rounded up, at least 1 and at most 10000; 50 with --qps max]"
        ),
        "{help}"
    );
    assert!(
        !help.contains("num_workers"),
        "underscore aliases stay hidden: {help}"
    );
}

#[test]
fn a_two_hour_run_passes_validation() {
    use clap::Parser;
    // Past the API's 3600 s limit: the command line is a person's own machine.
    let cli = pacer::cli::Cli::try_parse_from([
        "pacer",
        "bench",
        "http://127.0.0.1:9/",
        "--duration",
        "2h",
        "-q",
        "5",
    ])
    .unwrap();
    let plan = pacer::cli::plan_of(&cli).unwrap();
    assert_eq!(plan.duration, std::time::Duration::from_secs(7200));
    assert_eq!(plan.count, 36_000);
    assert!(
        pacer::plan::Plan::new(
            &input("http://127.0.0.1:9/", 5.0, 7200.0),
            &pacer::plan::Limits::default()
        )
        .is_err(),
        "the API's limits would refuse it"
    );
}

#[test]
fn listen_errors_name_the_address() {
    let taken = std::net::TcpListener::bind(loopback()).unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let in_use = format!("cannot listen on 127.0.0.1:{port}: address in use");
    for argv in [
        ["mock", "--port", &port],
        ["serve", "--addr", &format!("127.0.0.1:{port}")],
    ] {
        let o = pacer(&argv);
        assert_eq!(o.status.code(), Some(1), "{argv:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(&in_use), "{argv:?}: {}", stderr(&o));
    }
    let o = pacer(&["serve", "--addr", "28006"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("host:port (e.g. --addr 127.0.0.1:28006)"),
        "{}",
        stderr(&o)
    );
}

/// A `--data-dir` that is missing or not a directory stops `pacer serve` before it listens.
#[test]
fn serve_refuses_a_data_dir_that_is_not_a_directory() {
    let dir = TempDir::new("serve-datadir");
    let file = dir.file("f", "x");
    let missing = dir.arg("missing");
    for (given, why) in [
        (missing.as_str(), "No such file or directory"),
        (file.to_str().unwrap(), "not a directory"),
    ] {
        let o = pacer(&["serve", "--addr", "127.0.0.1:0", "--data-dir", given]);
        assert_eq!(o.status.code(), Some(2), "{given}: {}", stderr(&o));
        let want = format!("--data-dir {given}: {why}");
        assert!(stderr(&o).contains(&want), "{}", stderr(&o));
    }
}

#[test]
fn mock_tls_writes_its_ca_to_a_temporary_file_and_says_where() {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_pacer"))
        .args(["mock", "--port", "0", "--tls"])
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Generous: the key is generated at start-up on a busy machine.
    let line = rx.recv_timeout(std::time::Duration::from_secs(60));
    let _ = child.kill();
    let _ = child.wait();
    let line = line.expect("the mock says where its CA is");
    let path = line
        .strip_prefix("pacer mock: CA certificate written to ")
        .and_then(|rest| rest.strip_suffix(" (pass it to --ca-cert)"))
        .unwrap_or_else(|| panic!("{line}"));
    let path = std::path::Path::new(path);
    assert!(path.starts_with(std::env::temp_dir()), "{}", path.display());
    let pem = std::fs::read_to_string(path).unwrap();
    let _ = std::fs::remove_file(path);
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
}

// ---- pacer sweep ----------------------------------------------------------------------------

/// The mock at 20 ms: through 10 connections it answers at most 10 / 0.020 = 500 req/s.
fn slow_mock() -> pacer::mock::MockServer {
    mock(MockConfig {
        error_rate: 0.0,
        delay: ms(20.0),
        ..MockConfig::default()
    })
}

#[test]
fn a_sweep_prints_its_table_and_knee_and_writes_json_and_html() {
    let m = slow_mock();
    let url = format!("{}/", m.url());
    let (json, html) = (temp_path("sweep.json"), temp_path("sweep.html"));
    let o = pacer(&[
        "sweep",
        &url,
        "-c",
        "10",
        "--rates",
        "700,100,300",
        "--step-duration",
        "400ms",
        // 80%: room for a busy machine's late last send, and still above the ~520 req/s that
        // the 700 asked cannot pass.
        "--min-achieved",
        "0.8",
        "-o",
        json.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
    ]);
    let (out, err) = (String::from_utf8_lossy(&o.stdout), stderr(&o));
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("3 steps of 400ms at 100, 300, 700 req/s, up to 10 connections"),
        "{err}"
    );
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].trim_start().starts_with("step    asked/s"),
        "{out}"
    );
    assert!(lines[1].trim_start().starts_with("1      100.0"), "{out}");
    // Past the capacity a step cannot keep up (at most about 520 req/s of the 700 asked).
    assert!(lines[3].contains("FAIL achieved_qps>=560"), "{out}");
    assert!(lines[4].starts_with("knee: "), "{out}");

    let s: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(s["kind"], "sweep");
    assert_eq!(s["probe"], Value::Null);
    let knee = s["knee"]["qps"].as_f64().expect("a knee");
    assert!(knee == 100.0 || knee == 300.0, "{}", s["knee"]);
    // A note may follow (on a busy machine pacer may say it was generator-limited).
    let said = format!("knee: {knee} req/s (step {})", s["knee"]["step"]);
    assert!(lines[4].starts_with(&said), "{out}");
    let steps = s["steps"].as_array().unwrap();
    let totals: Vec<&Value> = steps.iter().map(|r| &r["total_requests"]).collect();
    assert_eq!(totals, [40, 120, 280]);
    assert_eq!(s["table"][2]["pass"], false);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>") && page.contains("<title>pacer sweep: "));
    let _ = std::fs::remove_file(json);
    let _ = std::fs::remove_file(html);
}

#[test]
fn an_llm_sweep_probes_a_closed_loop_and_reports_first_token_times() {
    let m = llm_mock();
    let url = format!("{}/v1/completions", m.url());
    let o = pacer(&[
        "sweep-llm",
        &url,
        "--token",
        "cli-test-token",
        "-c",
        "4",
        "--probe-duration",
        "300ms",
        "--steps",
        "2",
        "--step-duration",
        "300ms",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s = json_of(&o);
    let probe = &s["probe"]["report"];
    assert_eq!(probe["config"]["qps"], "max");
    assert_eq!(probe["config"]["num_workers"], 4);
    let peak = s["probe"]["peak"].as_f64().unwrap();
    // Each stream takes at least the mock's 5 ms to the first token and 4 × 1 ms after it.
    assert!(peak > 0.0 && peak <= 4.0 / 0.009, "{peak}");
    let table = s["table"].as_array().unwrap();
    assert_eq!(table.len(), 2);
    assert!(table[0]["time_to_first_token_p50"].as_f64().unwrap() >= 0.005);
    assert!(table[1]["time_per_output_token_p50"].as_f64().is_some());
    assert!(!String::from_utf8_lossy(&o.stdout).contains("cli-test-token"));
    // The rows went to stderr, beside the JSON on stdout.
    assert!(stderr(&o).contains("ttft p50"), "{}", stderr(&o));
}

#[test]
fn a_sweep_whose_probe_fails_says_so_and_exits_1() {
    let port = closed_port();
    let url = format!("http://127.0.0.1:{port}/");
    let o = pacer(&["sweep", &url, "--probe-duration", "200ms", "-j"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(&format!(
            "pacer: the saturation probe failed: no request got a response: connection refused \
             by 127.0.0.1:{port}"
        )),
        "{}",
        stderr(&o)
    );
    let s = json_of(&o);
    assert_eq!(s["steps"], serde_json::json!([]));
    assert!(
        s["stopped"]
            .as_str()
            .unwrap()
            .contains("connection refused")
    );
}

#[test]
fn sweep_refusals_name_the_flag() {
    for (args, says) in [
        (
            &["-q", "5"][..],
            "--qps does not apply to a sweep: it sets each step's rate",
        ),
        (
            &["-z", "5s"],
            "--duration does not apply to a sweep: each step runs --step-duration",
        ),
        (
            &["--shard", "0/2"],
            "--shard, --start-at and --state do not apply",
        ),
        (&["--steps", "0"], "--steps must be 1 to 100 (got 0)"),
        (
            &["--stages", "100:1s"],
            "--stages does not apply to a sweep: it sets each step's rate itself",
        ),
        (&["--threshold", "p99<1"], "--threshold"),
        (
            &["--rates", "100,-1"],
            "--rates every rate must be > 0 (got -1)",
        ),
        (
            &["--rates", "0.1", "--step-duration", "1s"],
            "--rates 0.1 req/s for a 1s step makes 0 requests",
        ),
        (
            // One request measures no rate: before, its step failed `achieved_qps>=0.99 (got 0)`.
            &["--rates", "1,2,50", "--step-duration", "1s"],
            "--rates 1 req/s for a 1s step makes 1 request: a step needs at least 2",
        ),
        (
            &["--step-duration", "0"],
            "--step-duration must be > 0 seconds (got 0)",
        ),
        (&["--min-achieved", "2"], "--min-achieved must be a share"),
        (&["--steps", "3", "--rates", "100"], "cannot be used with"),
        (&["--timeout", "0"], "--timeout must be > 0 (got 0s)"),
    ] {
        let mut argv = vec!["sweep", "http://127.0.0.1:1/"];
        argv.extend_from_slice(args);
        let o = pacer(&argv);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
    }
    let o = pacer(&["sweep", "--help"]);
    let help = String::from_utf8_lossy(&o.stdout);
    for shown in [
        "--steps",
        "--rates",
        "--step-duration",
        "--min-achieved",
        "--html",
    ] {
        assert!(help.contains(shown), "{shown}: {help}");
    }
    for hidden in ["--qps <", "--duration <", "--shard <", "--duration"] {
        assert!(!help.contains(hidden), "{hidden}: {help}");
    }
}

/// The settings are said once per stream: on stderr at the start, and again at the top of the
/// report on stdout only when stdout is another place (with `2>&1` both land in one pipe).
#[test]
fn the_settings_are_said_once_in_one_stream_and_in_each_of_two() {
    let m = mock_ok();
    let url = format!("{}/", m.url());
    let run = format!(
        "'{}' bench '{url}' -q 20 -z 0.5s 2>&1",
        env!("CARGO_BIN_EXE_pacer")
    );
    let o = Command::new("sh").args(["-c", &run]).output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let both = String::from_utf8_lossy(&o.stdout);
    assert_eq!(both.matches("pacer: GET").count(), 1, "{both}");
    assert!(both.contains("requests 10 "), "{both}");

    let o = pacer(&["bench", &url, "-q", "20", "-z", "0.5s"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.matches("pacer: GET").count(), 1, "{out}");
    assert_eq!(
        stderr(&o).matches("pacer: GET").count(),
        1,
        "{}",
        stderr(&o)
    );
    m.shutdown();
}

#[test]
fn habits_of_other_tools_get_real_errors() {
    let m = mock_ok();
    let url = format!("{}/", m.url());
    for (args, says) in [
        // clap's own similarity misses a swapped pair of letters.
        (&["--qsp", "10"][..], "a similar argument exists: '--qps'"),
        (
            &["--durtaion", "1s"],
            "a similar argument exists: '--duration'",
        ),
        // A negative duration is a value, refused with the flag's rule, not an unknown flag.
        (&["-z", "-5s"], "--duration must be > 0 (got -5s)"),
        (&["--timeout", "-2s"], "--timeout must be > 0 (got -2s)"),
    ] {
        let mut argv = vec!["bench", url.as_str()];
        argv.extend_from_slice(args);
        let o = pacer(&argv);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
    }
    assert_eq!(m.counters().requests, 0);
    // The mock's flags say what they do.
    let help = String::from_utf8(pacer(&["mock", "--help"]).stdout).unwrap();
    for (flag, words) in [
        ("--port", "Port to listen on"),
        ("--host", "IP address to listen on"),
        ("--seed", "Seed of the 200/400 mix"),
    ] {
        let at = help
            .find(&format!("{flag} <"))
            .unwrap_or_else(|| panic!("{help}"));
        let next = &help[at..at + 200.min(help.len() - at)];
        assert!(next.contains(words), "{flag}: {next}");
    }
}

#[test]
fn one_send_has_no_achieved_rate() {
    // `-q 1 -z 1s` sends one request: a rate needs a span between two sends. It said 0.0.
    let m = mock_ok();
    let url = format!("{}/", m.url());
    let o = pacer(&["bench", &url, "-q", "1", "-z", "1s", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = json_of(&o);
    assert_eq!(r["achieved_qps"], Value::Null, "{r}");
    assert!(
        r["achieved_qps_note"]
            .as_str()
            .is_some_and(|n| n.contains("fewer than 2 requests were sent")),
        "{r}"
    );
    let o = pacer(&["bench", &url, "-q", "1", "-z", "1s"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("achieved n/a (1 sent: a rate needs 2 sends)"),
        "{text}"
    );
    // Two sends make a rate.
    let r = json_of(&pacer(&["bench", &url, "-q", "2", "-z", "1s", "--json"]));
    assert!(r["achieved_qps"].as_f64().is_some_and(|q| q > 0.0), "{r}");
    assert!(r.get("achieved_qps_note").is_none());
}

#[test]
fn a_closed_loop_says_once_it_has_no_intended_times() {
    let m = mock_ok();
    let url = format!("{}/", m.url());
    let o = pacer(&["bench", &url, "-q", "max", "-z", "0.5s", "-c", "2"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains(
            "a closed loop (--qps max) has no intended send times: corrected_response_time, \
             dispatch_delay not shown"
        ),
        "{text}"
    );
    // No row and no "wrk2's correction" line for them.
    for l in text.lines() {
        let first = l.split_whitespace().next().unwrap_or("");
        assert!(
            first != "corrected_response_time" && first != "dispatch_delay",
            "{l}\n{text}"
        );
    }
    assert!(!text.contains("wrk2"), "{text}");
    // A fixed rate keeps them.
    let o = pacer(&["bench", &url, "-q", "20", "-z", "0.5s"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("wrk2's correction"), "{text}");
}

#[test]
fn llm_without_a_url_refuses_a_billed_run_before_connecting() {
    // The default URL is Fireworks' API, billed: 50 requests (the defaults) need it named or
    // --yes. The refusal comes before any connection (the test never reaches the network).
    let o = pacer(&["llm", "--token", "t"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains(
            "no URL given: the default is https://api.fireworks.ai/inference/v1/completions"
        ) && e.contains("this run would send 50 requests there (more than 10)")
            && e.contains("--yes"),
        "{e}"
    );
    assert!(o.stdout.is_empty());
    let o = pacer(&["sweep-llm", "--token", "t"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("a sweep sends many requests there"),
        "{}",
        stderr(&o)
    );
    // A named loopback URL runs as ever, with the host in the banner only for the default.
    let m = llm_mock();
    let url = format!("{}/v1/completions", m.url());
    let o = pacer(&["llm", &url, "--token", "t", "-q", "20", "-z", "1s"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stderr(&o).contains("the default URL"), "{}", stderr(&o));
}

#[test]
fn html_writes_beside_the_report_without_o() {
    let m = mock_ok();
    let dir = TempDir::new("html-default");
    let url = format!("{}/", m.url());
    let o = pacer(&["bench", &url, "-q", "10", "-z", "0.5s", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let report = dir.path("run.json");
    std::fs::write(&report, &o.stdout).unwrap();
    let o = pacer(&["html", report.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let page = std::fs::read_to_string(dir.path("run.html")).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"), "{page:.100}");
    assert!(stderr(&o).contains("run.html"), "{}", stderr(&o));
    // `-o -`: the page on stdout.
    let o = pacer(&["html", report.to_str().unwrap(), "-o", "-"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("<!DOCTYPE html>"));
}

#[test]
fn a_request_count_and_a_body_from_a_file() {
    let m = mock_ok();
    let dir = TempDir::new("count-body");
    let url = format!("{}/", m.url());
    // -n 30 at 60 req/s: 30 requests over half a second.
    let r = json_of(&pacer(&["bench", &url, "-n", "30", "-q", "60", "--json"]));
    assert_eq!(r["total_requests"], 30, "{r}");
    assert_eq!(r["config"]["duration"], 0.5, "{r}");
    let file = dir.file("body.json", "{\"a\": 1}\n");
    let before = m.counters().requests;
    for args in [
        vec!["--body".to_string(), format!("@{}", file.display())],
        vec!["-D".to_string(), file.display().to_string()],
    ] {
        let mut argv = vec!["bench", &url, "-n", "2", "-q", "20", "-X", "POST", "--json"];
        argv.extend(args.iter().map(String::as_str));
        let r = json_of(&pacer(&argv));
        assert_eq!(r["successes"], 2, "{args:?}: {r}");
        assert_eq!(r["config"]["body_bytes"], 9, "{args:?}: {r}");
    }
    assert_eq!(m.counters().requests, before + 4);
    // --body @- reads standard input.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pacer"))
        .args([
            "bench", &url, "-n", "1", "-q", "10", "-X", "PUT", "--body", "@-", "--json",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"from stdin").unwrap();
    }
    let o = child.wait_with_output().unwrap();
    let r = json_of(&o);
    assert_eq!(r["config"]["body_bytes"], 10, "{r}");
    for (args, says) in [
        (&["-n", "5", "-z", "1s"][..], "cannot be used with"),
        (
            &["--body", "@/no/such/file"],
            "cannot read --body @/no/such/file",
        ),
    ] {
        let mut argv = vec!["bench", url.as_str()];
        argv.extend_from_slice(args);
        let o = pacer(&argv);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn no_keepalive_opens_a_connection_per_request() {
    let m = mock_ok();
    let url = format!("{}/", m.url());
    // The mock keeps connections open whatever the request says: pacer closes them itself.
    let r = json_of(&pacer(&[
        "bench", &url, "-n", "10", "-q", "20", "-c", "2", "--json",
    ]));
    assert!(r["connections_opened"].as_u64().unwrap() <= 2, "{r}");
    let r = json_of(&pacer(&[
        "bench",
        &url,
        "-n",
        "10",
        "-q",
        "20",
        "-c",
        "2",
        "--no-keepalive",
        "--json",
    ]));
    assert_eq!(r["successes"], 10, "{r}");
    assert_eq!(r["connections_opened"], 10, "{r}");
    assert_eq!(
        r["config"]["headers"],
        serde_json::json!(["Connection"]),
        "{r}"
    );
}

#[test]
fn a_request_count_stops_a_closed_loop() {
    let m = mock_ok();
    let url = format!("{}/", m.url());
    let o = pacer(&["bench", &url, "-n", "25", "-q", "max", "-c", "4", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = json_of(&o);
    assert_eq!(r["total_requests"], 25, "{r}");
    assert_eq!(r["successes"], 25, "{r}");
    assert_eq!(r["config"]["max_requests"], 25, "{r}");
    assert_eq!(m.counters().requests, 25);
    // It ended with its last answer, not at a duration: far inside the run's longest.
    assert!(r["elapsed"].as_f64().unwrap() < 60.0, "{r}");
}

#[test]
fn a_targets_file_spreads_requests_and_reports_each_target() {
    let m = mock_ok();
    let dir = TempDir::new("targets");
    let body = dir.file("body.json", "{\"a\": 1}");
    let file = dir.file(
        "targets.txt",
        &format!(
            "# two paths\nGET {u}/?key=secret\nX-Test: 1\n\nPOST {u}/\nContent-Type: application/json\n@{b}\n",
            u = m.url(),
            b = body.display()
        ),
    );
    let f = file.display().to_string();
    let o = pacer(&["bench", "--targets", &f, "-n", "20", "-q", "100", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = json_of(&o);
    let t = r["targets"].as_array().unwrap_or_else(|| panic!("{r}"));
    assert_eq!(t.len(), 2, "{r}");
    // In order: exactly half each, and the counts add up to the total.
    assert_eq!(
        (t[0]["count"].as_u64(), t[1]["count"].as_u64()),
        (Some(10), Some(10)),
        "{r}"
    );
    assert_eq!(r["total_requests"], 20, "{r}");
    assert_eq!(t[0]["target"], format!("GET {}/?key=***", m.url()), "{r}");
    assert_eq!(t[1]["target"], format!("POST {}/", m.url()), "{r}");
    assert_eq!(t[0]["errors"], 0, "{r}");
    assert!(t[1]["response_time_p99"].as_f64().unwrap() > 0.0, "{r}");
    assert_eq!(m.counters().requests, 20);
    // At random (seeded): still every request counted once, both targets used.
    let o = pacer(&[
        "bench",
        "--targets",
        &f,
        "--targets-order",
        "random",
        "--seed",
        "7",
        "-n",
        "40",
        "-q",
        "200",
        "--json",
    ]);
    let r = json_of(&o);
    let t = r["targets"].as_array().unwrap_or_else(|| panic!("{r}"));
    let (a, b) = (
        t[0]["count"].as_u64().unwrap(),
        t[1]["count"].as_u64().unwrap(),
    );
    assert_eq!(a + b, 40, "{r}");
    assert!(a >= 5 && b >= 5, "both targets drawn: {a} and {b}");
    // The text report has the table.
    let o = pacer(&["bench", "--targets", &f, "-n", "4", "-q", "100"]);
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(text.contains("targets:"), "{text}");
    assert!(text.contains(&format!("POST {}/", m.url())), "{text}");
    // Errors name the file and the line.
    let bad = dir.file(
        "bad.txt",
        &format!("GET {}/\n\nGET http://elsewhere.invalid/\n", m.url()),
    );
    let o = pacer(&["bench", "--targets", &bad.display().to_string(), "-n", "2"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("{}:3:", bad.display())),
        "{}",
        stderr(&o)
    );
}

#[test]
fn requests_record_each_requests_prefix_group() {
    let m = llm_mock();
    let dir = TempDir::new("groups");
    let file = dir.path("requests.jsonl");
    let f = file.display().to_string();
    let r = fireworks_json(
        &m,
        &[
            "--input-tokens",
            "40",
            "--prefix-tokens",
            "10",
            "--prefix-groups",
            "2",
            "--requests",
            &f,
        ],
    );
    assert_all_succeeded(&r);
    assert_eq!(r["config"]["prefix_groups"], 2, "{r}");
    let text = std::fs::read_to_string(&file).unwrap();
    let mut groups: Vec<(u64, u64)> = text
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["index"].as_u64().unwrap(),
                v["prefix_group"].as_u64().unwrap(),
            )
        })
        .collect();
    groups.sort_unstable();
    assert_eq!(
        groups,
        [(0, 0), (1, 1), (2, 0), (3, 1), (4, 0)],
        "round robin"
    );
}
