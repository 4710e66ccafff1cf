//! The real `pacer` binary while it runs: Ctrl-C (SIGINT) and SIGTERM sent to the child process,
//! and the live progress line, forced on with the hidden `--force-progress` or on a real
//! terminal (a pty from util-linux's `script`). Every wait is bounded; no assertion depends on
//! how fast the machine is, only on what the output says.

mod util;

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use pacer::mock::MockConfig;
use serde_json::Value;
use util::*;

const PACER: &str = env!("CARGO_BIN_EXE_pacer");

/// A running `pacer` whose stderr is read on a thread as it comes, and stdout on another (so
/// a long report never blocks it on a full pipe).
struct Running {
    child: Child,
    stderr: mpsc::Receiver<Vec<u8>>,
    stdout: Option<std::thread::JoinHandle<Vec<u8>>>,
    seen: Vec<u8>,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        let mut child = Command::new(PACER)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("pacer starts");
        let mut out = child.stdout.take().unwrap();
        let stdout = std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = out.read_to_end(&mut v);
            v
        });
        let mut err = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            stderr: rx,
            stdout: Some(stdout),
            seen: Vec::new(),
        }
    }

    /// Waits (at most `bound`) until stderr has shown `needle`: the run is under way, and its
    /// signal handlers are in place (they are installed before the run starts).
    fn wait_for(&mut self, needle: &str, bound: Duration) {
        let deadline = Instant::now() + bound;
        while !String::from_utf8_lossy(&self.seen).contains(needle) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(bytes) => self.seen.extend(bytes),
                Err(_) => {
                    let _ = self.child.kill();
                    panic!(
                        "no {needle:?} on stderr within {bound:?}: {}",
                        String::from_utf8_lossy(&self.seen)
                    );
                }
            }
        }
    }

    fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name} failed");
    }

    /// `times` signals 50 ms apart: each is delivered on its own (two sent at once may merge
    /// into one pending signal), all well within the second that makes them one request.
    fn signal_times(&self, name: &str, times: usize) {
        for i in 0..times {
            if i > 0 {
                std::thread::sleep(Duration::from_millis(50));
            }
            self.signal(name);
        }
    }

    /// The exit status and how long it took, failing the test (after killing the child) past
    /// `bound`.
    fn wait(&mut self, bound: Duration) -> (ExitStatus, Duration) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                while let Ok(bytes) = self.stderr.recv_timeout(Duration::from_secs(5)) {
                    self.seen.extend(bytes);
                }
                return (status, start.elapsed());
            }
            if start.elapsed() > bound {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "pacer did not exit within {bound:?}; stderr: {}",
                    String::from_utf8_lossy(&self.seen)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything the child wrote on stdout (once it has exited).
    fn stdout(&mut self) -> Vec<u8> {
        self.stdout.take().unwrap().join().unwrap()
    }

    fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.seen).into_owned()
    }
}

/// Interrupts a 30 s run at 200 req/s once it is under way with `signal` (sent `times` times in
/// a row, as `timeout` does: to the child, then to its process group), and checks the partial
/// run is reported, accounted and written everywhere it was asked to go.
fn interrupt_keeps_the_run(signal: &str, times: usize) {
    // Every answer a success: the report of a clean run stopped early has no errors.
    let m = mock(MockConfig {
        error_rate: 0.0,
        ..MockConfig::default()
    });
    let dir = TempDir::new(signal);
    let (out, html, reqs) = (dir.path("r.json"), dir.path("r.html"), dir.path("r.jsonl"));
    let url = format!("{}/", m.url());
    let mut run = Running::start(&[
        "bench",
        &url,
        "-q",
        "200",
        "-z",
        "30s",
        "--json",
        "--force-progress",
        "-o",
        out.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
        "--requests",
        reqs.to_str().unwrap(),
    ]);
    // The progress line appears after a second of running.
    run.wait_for(" in flight ", Duration::from_secs(60));
    run.signal_times(signal, times);
    // In flight requests get up to the 2 s timeout; the mock answers at once.
    let (status, _) = run.wait(Duration::from_secs(60));
    let stdout = run.stdout();
    assert_eq!(status.code(), Some(130), "{}", run.stderr_text());
    assert!(
        run.stderr_text().contains("pacer: interrupted"),
        "{}",
        run.stderr_text()
    );
    let r: Value = serde_json::from_slice(&stdout).expect("--json prints the partial report");
    assert_eq!(r["interrupted"], true);
    assert_eq!(r["total_requests"], 6000, "the plan's count");
    // The headline covers what ran: the unsent requests are counted apart, not as errors
    // (before, a clean run stopped after 2 s said `errors 5600`, `error_rate 0.93`).
    let not_sent = r["unsent"].as_u64().expect("unsent is reported");
    let counts = r["error_counts"].as_object().unwrap();
    assert!(!counts.contains_key("not sent: interrupted"), "{counts:?}");
    let other = r["errors"].as_u64().unwrap();
    assert_eq!(
        other,
        counts.values().map(|n| n.as_u64().unwrap()).sum::<u64>()
    );
    assert_eq!((other, r["error_rate"].as_f64()), (0, Some(0.0)), "{r}");
    let successes = r["successes"].as_u64().unwrap();
    assert!(successes > 0, "it ran for a while first");
    assert_eq!(successes + not_sent + other, 6000);
    // Nothing intended after the run ended can have been sent: at 200 req/s, at least
    // 6000 - 200 × elapsed requests were not.
    let elapsed = r["elapsed"].as_f64().unwrap();
    assert!(elapsed < 29.0, "stopped early: {elapsed}");
    assert!(
        not_sent as f64 >= 6000.0 - 200.0 * elapsed - 1.0,
        "{not_sent} {elapsed}"
    );
    // The timeline ends with the run and says where the requests went.
    let timeline = r["timeline"].as_array().unwrap();
    assert_eq!(timeline.len(), elapsed.ceil() as usize);
    let sum = |k: &str| -> u64 { timeline.iter().map(|e| e[k].as_u64().unwrap()).sum() };
    assert_eq!(sum("not_sent"), not_sent);
    assert_eq!(sum("successes"), successes);
    // -o has the same report; --html the page; --requests one line per scheduled request.
    assert_no_temporary_files(&dir);
    let saved: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(saved["interrupted"], true);
    assert_eq!(saved["total_requests"], 6000);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>") && page.contains("\"interrupted\":true"));
    let lines = std::fs::read_to_string(&reqs).unwrap();
    let mut indexes = Vec::new();
    let mut unsent = 0;
    for l in lines.lines() {
        let v: Value = serde_json::from_str(l).expect("every line is JSON");
        indexes.push(v["index"].as_u64().unwrap());
        if v["error"] == "not sent: interrupted" {
            unsent += 1;
            assert_eq!(v["dispatched"], Value::Null);
        }
    }
    indexes.sort_unstable();
    assert_eq!(indexes, (0..6000).collect::<Vec<_>>());
    assert_eq!(unsent, not_sent);
    m.shutdown();
}

#[test]
fn sigint_stops_the_run_and_keeps_its_report() {
    interrupt_keeps_the_run("INT", 1);
}

#[test]
fn sigterm_does_the_same() {
    interrupt_keeps_the_run("TERM", 1);
}

#[test]
fn two_signals_at_once_are_one() {
    // `timeout -s INT` signals the child, then its process group: two SIGINTs microseconds
    // apart. Before, the second one ended the process at once: no report on stdout, and 0-byte
    // -o, --html and --requests files.
    interrupt_keeps_the_run("INT", 2);
    interrupt_keeps_the_run("TERM", 3);
}

/// Nothing of a report's temporary files (`.NAME.pacer-PID.tmp`) is left in `dir`.
fn assert_no_temporary_files(dir: &TempDir) {
    let left: Vec<String> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn under_timeout_the_report_is_whole() {
    // The command, with coreutils' timeout itself: it lost everything in 2 runs of 6.
    let m = mock(MockConfig {
        error_rate: 0.0,
        ..MockConfig::default()
    });
    let dir = TempDir::new("timeout");
    let url = format!("{}/", m.url());
    let (out, html, reqs) = (dir.arg("t.json"), dir.arg("t.html"), dir.arg("t.jsonl"));
    // -k: a pacer that ignored the signal would be killed (and fail the test), never hang it.
    let o = Command::new("timeout")
        .args([
            "--preserve-status",
            "-k",
            "60",
            "-s",
            "INT",
            "2",
            PACER,
            "bench",
            &url,
        ])
        .args(["-q", "100", "-z", "30s"])
        .args(["-o", &out, "--requests", &reqs, "--html", &html])
        .output()
        .expect("coreutils timeout runs");
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("INTERRUPTED"), "{text}");
    let r: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let total = r["total_requests"].as_u64().unwrap();
    assert_eq!(total, 3000);
    let ran = r["successes"].as_u64().unwrap() + r["errors"].as_u64().unwrap();
    assert!(ran > 0, "{r}");
    assert_eq!(ran + r["unsent"].as_u64().unwrap(), total);
    assert!(
        std::fs::read_to_string(&html)
            .unwrap()
            .starts_with("<!DOCTYPE html>")
    );
    assert_eq!(
        std::fs::read_to_string(&reqs).unwrap().lines().count() as u64,
        total
    );
    assert_no_temporary_files(&dir);
    m.shutdown();
}

#[test]
fn a_second_sigint_exits_at_once() {
    let m = mock(MockConfig::default());
    let dir = TempDir::new("second");
    // The target never answers and the timeout is long: after the first SIGINT the run would
    // wait a minute for the requests in flight.
    let url = format!("{}/fault/stall", m.url());
    let (out, html, reqs) = (dir.arg("r.json"), dir.arg("r.html"), dir.arg("r.jsonl"));
    let mut run = Running::start(&[
        "bench",
        &url,
        "-q",
        "20",
        "-z",
        "30s",
        "--timeout",
        "60s",
        "--force-progress",
        "-o",
        &out,
        "--html",
        &html,
        "--requests",
        &reqs,
    ]);
    run.wait_for(" in flight ", Duration::from_secs(60));
    run.signal("INT");
    // A second signal within a second is the first one repeated; this one comes after.
    std::thread::sleep(Duration::from_millis(1500));
    run.signal("INT");
    let (status, took) = run.wait(Duration::from_secs(45));
    assert_eq!(status.code(), Some(130), "{}", run.stderr_text());
    // Far less than the 60 s timeout the first signal alone would have waited for.
    assert!(took < Duration::from_secs(30), "{took:?}");
    // The reports were never written: no file at all, rather than an empty one.
    for f in [&out, &html] {
        assert!(!std::path::Path::new(f).exists(), "{f} was left");
    }
    assert_no_temporary_files(&dir);
    // --requests holds whole lines only (none of these requests ended: the target stalls).
    let lines = std::fs::read_to_string(&reqs).unwrap();
    for l in lines.lines() {
        serde_json::from_str::<Value>(l).expect("a whole JSON line");
    }
    m.shutdown();
}

#[test]
fn sigint_stops_a_sweep_and_reports_the_steps_that_ran() {
    let m = mock(MockConfig::default());
    // Two 30 s steps: stopped during the first (or before it), the sweep ends long before 60 s.
    let mut run = Running::start(&[
        "sweep",
        &m.url(),
        "--rates",
        "50,60",
        "--step-duration",
        "30s",
        "--json",
    ]);
    run.wait_for("pacer sweep", Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(500));
    run.signal("INT");
    let (status, took) = run.wait(Duration::from_secs(50));
    assert_eq!(status.code(), Some(130), "{}", run.stderr_text());
    assert!(took < Duration::from_secs(30), "{took:?}");
    let out = run.stdout();
    let j: Value = serde_json::from_slice(&out).expect("the sweep's JSON on stdout");
    assert_eq!(j["interrupted"], true, "{j}");
    let steps = j["steps"].as_array().unwrap();
    // The first step starts at once (no probe with --rates; the stop is only seen during a
    // step), and the second never does.
    assert_eq!(steps.len(), 1, "{j}");
    for s in steps {
        assert_eq!(s["interrupted"], true, "{s}");
        // 50 req/s for 30 s, stopped early: fewer sent than planned, the rest accounted.
        let not_sent = s["unsent"].as_u64().unwrap_or(0);
        assert!(not_sent > 0, "{s}");
        assert_eq!(s["total_requests"], 1500, "{s}");
    }
    assert!(
        run.stderr_text().contains("interrupted"),
        "{}",
        run.stderr_text()
    );
    m.shutdown();
}

/// The frames of the progress line in `stderr` (it redraws with a carriage return).
fn frames(stderr: &str) -> Vec<String> {
    stderr
        .split(['\r', '\n'])
        .map(|f| f.replace("\x1b[K", ""))
        .filter(|f| f.contains(" in flight "))
        .collect()
}

#[test]
fn the_progress_line_shows_the_run_as_it_goes() {
    let m = mock(MockConfig::default());
    let url = format!("{}/", m.url());
    let o = Command::new(PACER)
        .args(["bench", &url, "-q", "100", "-z", "3s", "--force-progress"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let err = String::from_utf8_lossy(&o.stderr);
    let frames = frames(&err);
    assert!(!frames.is_empty(), "{err}");
    for f in &frames {
        // "  1.2s / 3s  sent 120/300  in flight 0  100.0 req/s  errors 24  response p50 .. p99 .."
        let words: Vec<&str> = f.split_whitespace().collect();
        assert_eq!((words[1], words[2], words[3]), ("/", "3s", "sent"), "{f}");
        let (sent, scheduled) = words[4].split_once('/').unwrap();
        let sent: u64 = sent.parse().unwrap();
        assert_eq!(scheduled, "300", "{f}");
        assert!(sent <= 300, "{f}");
        assert_eq!((words[5], words[6]), ("in", "flight"), "{f}");
        assert_eq!(words[9], "req/s", "{f}");
        let rate: f64 = words[8].parse().unwrap();
        assert!((0.0..=1000.0).contains(&rate), "{f}");
        assert_eq!(words[10], "errors", "{f}");
        let errors: u64 = words[11].parse().unwrap();
        assert!(errors <= sent, "{f}");
        assert_eq!(
            (words[12], words[13], words[15]),
            ("response", "p50", "p99"),
            "{f}"
        );
    }
    // The line is cleared before the report, and the report is on stdout.
    assert!(err.ends_with("\r\x1b[K"), "{err:?}");
    assert!(String::from_utf8_lossy(&o.stdout).contains("requests 300"));
    m.shutdown();
}

#[test]
fn quiet_shows_neither_banner_nor_progress() {
    let m = mock(MockConfig::default());
    let url = format!("{}/", m.url());
    let o = Command::new(PACER)
        .args([
            "bench",
            &url,
            "-q",
            "50",
            "-z",
            "1.5s",
            "--quiet",
            "--force-progress",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&o.stderr), "");
    // Nothing was shown before it, so the report carries the settings.
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with(&format!("pacer: GET {url}\n")), "{out}");
    m.shutdown();
}

/// Runs `command` under a pseudo-terminal (util-linux's `script`), returning what the terminal
/// showed.
fn on_a_terminal(command: &str) -> String {
    let o = Command::new("script")
        .args(["-qec", command, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("util-linux script runs");
    assert!(o.status.success(), "{command}: {:?}", o);
    String::from_utf8_lossy(&o.stdout).replace("\r\n", "\n")
}

#[test]
fn on_a_terminal_the_line_shows_and_the_settings_are_said_once() {
    let m = mock(MockConfig::default());
    let url = format!("{}/", m.url());
    let dir = TempDir::new("pty");
    let screen = on_a_terminal(&format!("{PACER} bench {url} -q 100 -z 2s"));
    assert!(!frames(&screen).is_empty(), "{screen}");
    let settings = format!("pacer: GET {url}");
    assert_eq!(screen.matches(&settings).count(), 1, "{screen}");
    assert!(screen.contains("requests 200"), "{screen}");
    // The report sent elsewhere keeps its settings; the terminal shows the banner.
    let saved = dir.path("report.txt");
    let screen = on_a_terminal(&format!(
        "{PACER} bench {url} -q 100 -z 1s > {}",
        saved.display()
    ));
    assert_eq!(screen.matches(&settings).count(), 1, "{screen}");
    let text = std::fs::read_to_string(&saved).unwrap();
    assert!(text.starts_with(&settings), "{text}");
    // --quiet: no line, no banner, even on a terminal.
    let screen = on_a_terminal(&format!("{PACER} bench {url} -q 100 -z 1.5s --quiet"));
    assert!(frames(&screen).is_empty(), "{screen}");
    assert_eq!(screen.matches(&settings).count(), 1, "{screen}");
    m.shutdown();
}
