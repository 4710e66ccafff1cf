//! Issue 19's attacks on `pacer serve`, each run against the real binary started under an
//! address-space limit (`util::serve::MEMORY_LIMIT`), which turns an allocation of gigabytes into
//! the abort the issue saw: after each, the server must still be there and answer `GET /health`
//! within 3 s, and its peak memory (`VmHWM`) must stay small. Each test prints a line
//! `attack | answer | time | peak RSS` (see them with `--nocapture`).

mod util;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use util::serve::{Served, call, send_and_hang_up};

/// Peak memory the server may reach in these tests: a few threads and small plans. The attacks
/// used to reach 0.7 to several GB.
const SMALL_PEAK_KIB: u64 = 200 << 10;

const WAIT: Duration = Duration::from_secs(30);

/// Sends `body` to `path` while another thread asks `/health` every 100 ms: every one of those
/// must be answered within 3 s. Returns the answer, how long it took, and the server's peak RSS.
fn attack(s: &mut Served, what: &str, path: &str, body: &str) -> (util::serve::Answer, Duration) {
    let done = Arc::new(AtomicBool::new(false));
    let (addr, flag) = (s.addr, Arc::clone(&done));
    let watcher = std::thread::spawn(move || {
        let mut worst = Duration::ZERO;
        while !flag.load(Ordering::Relaxed) {
            let started = Instant::now();
            match call(addr, "GET", "/health", "", Duration::from_secs(3)) {
                Ok(r) if r.status == 200 => worst = worst.max(started.elapsed()),
                other => return Err(format!("/health during the attack: {other:?}")),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(worst)
    });
    let started = Instant::now();
    let answer = call(s.addr, "POST", path, body, WAIT);
    let took = started.elapsed();
    done.store(true, Ordering::Relaxed);
    let worst = watcher
        .join()
        .unwrap()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let answer = answer.unwrap_or_else(|e| panic!("{what}: no answer: {e}"));
    let after = s.assert_healthy(what);
    let peak = s.memory_kib("VmHWM");
    eprintln!(
        "attack | {what} | {} | {:.0} ms | peak RSS {} MiB | /health at worst {:.0} ms during, {:.0} ms after",
        answer.status,
        took.as_secs_f64() * 1e3,
        peak >> 10,
        worst.as_secs_f64() * 1e3,
        after.as_secs_f64() * 1e3
    );
    (answer, took)
}

fn loc(a: &util::serve::Answer) -> Value {
    a.body["detail"][0]["loc"].clone()
}

fn msg(a: &util::serve::Answer) -> String {
    match &a.body["detail"] {
        Value::String(s) => s.clone(),
        d => d[0]["msg"].as_str().unwrap_or("").to_string(),
    }
}

/// The issue's 114-byte request built gigabytes of synthetic prompts before the allow-list
/// check, and the server aborted. The budget refuses it from arithmetic, and a workload within
/// the budget for a target outside `--allow-target` is refused before it is built.
#[test]
fn oversized_workloads_are_refused_before_anything_is_built() {
    let mut s = Served::start(&["--allow-target", "10.0.0.0/8"]);
    let body =
        r#"{"token": "t", "input_tokens": 1000000, "url": "http://127.0.0.1:9/v1/completions"}"#;
    let (a, _) = attack(
        &mut s,
        "input_tokens 1000000, target not allowed",
        "/fireworks_benchmark",
        body,
    );
    assert_eq!(a.status, 422, "{}", a.raw);
    assert_eq!(loc(&a), json!(["body", "input_tokens"]));
    assert!(
        msg(&a).contains("(50 synthetic prompts of up to 1000000 tokens)")
            && msg(&a).ends_with("more than the budget of 256 MiB (--max-workload-bytes)"),
        "{}",
        a.raw
    );
    // A thousand requests, a thousand prompts of 100,000 tokens.
    let body = r#"{"token": "t", "input_tokens": 100000, "qps": 100, "duration": 10, "url": "http://127.0.0.1:9/v1/completions"}"#;
    let (a, _) = attack(
        &mut s,
        "input_tokens 100000 x 1000 requests",
        "/fireworks_benchmark",
        body,
    );
    assert_eq!((a.status, loc(&a)), (422, json!(["body", "input_tokens"])));
    assert!(msg(&a).contains("(1000 synthetic prompts"), "{}", a.raw);

    // Within the budget (50 prompts, about 20 MB once built), but the target is not allowed:
    // 403, and nothing was built (the peak stays small).
    let body =
        r#"{"token": "t", "input_tokens": 100000, "url": "http://127.0.0.1:9/v1/completions"}"#;
    let (a, _) = attack(
        &mut s,
        "input_tokens 100000, target not allowed",
        "/fireworks_benchmark",
        body,
    );
    assert_eq!(a.status, 403, "{}", a.raw);
    // A 260 KB prompt copied once per drawn max_tokens: the same order.
    let body = json!({"token": "t", "prompt": "w ".repeat(130_000),
        "output_tokens": "uniform:1:1000000", "url": "http://127.0.0.1:9/v1/completions"})
    .to_string();
    let (a, _) = attack(
        &mut s,
        "260 KB prompt, output_tokens uniform:1:1000000, target not allowed",
        "/fireworks_benchmark",
        &body,
    );
    assert_eq!(a.status, 403, "{}", a.raw);
    let peak = s.memory_kib("VmHWM");
    assert!(peak < SMALL_PEAK_KIB, "peak RSS {peak} kB");
}

/// Four parallel requests for a 300 MB data set reached 1.2 GB; a 2 GB `ca_cert` was read
/// whole. Both are refused by their size, unread; and no answer names where `--data-dir` is.
#[test]
fn data_sets_and_ca_certs_past_their_caps_are_refused_unread() {
    let dir = std::env::temp_dir().join(format!("pacer-safety-data-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // Sparse: their sizes are what is checked, so nothing of them is ever written or read.
    std::fs::File::create(dir.join("big.jsonl"))
        .unwrap()
        .set_len(300 << 20)
        .unwrap();
    std::fs::File::create(dir.join("ca.pem"))
        .unwrap()
        .set_len(2 << 30)
        .unwrap();
    std::fs::write(dir.join("bad.jsonl"), "{\"prompt\": \"a\"}\n[1]\n").unwrap();
    let root = dir.canonicalize().unwrap().display().to_string();
    let mut s = Served::start(&["--data-dir", dir.to_str().unwrap()]);
    let m = util::mock_ok();
    let body = json!({"token": "t", "dataset": "big.jsonl", "qps": 1, "duration": 1,
        "url": format!("{}/v1/completions", m.url())})
    .to_string();
    let parallel: Vec<_> = (0..4)
        .map(|_| {
            let (addr, body) = (s.addr, body.clone());
            std::thread::spawn(move || call(addr, "POST", "/fireworks_benchmark", &body, WAIT))
        })
        .collect();
    let (a, _) = attack(
        &mut s,
        "300 MB data set (and 4 more in parallel)",
        "/fireworks_benchmark",
        &body,
    );
    for p in parallel {
        let r = p.join().unwrap().unwrap();
        assert_eq!(
            (r.status, loc(&r)),
            (422, json!(["body", "dataset"])),
            "{}",
            r.raw
        );
    }
    assert_eq!((a.status, loc(&a)), (422, json!(["body", "dataset"])));
    assert!(msg(&a).contains("the data set's 300 MiB"), "{}", a.raw);

    let body = json!({"url": "https://127.0.0.1:9/", "qps": 1, "duration": 1, "ca_cert": "ca.pem"})
        .to_string();
    let (a, _) = attack(&mut s, "2 GB ca_cert", "/benchmark", &body);
    assert_eq!(
        (a.status, loc(&a)),
        (422, json!(["body", "ca_cert"])),
        "{}",
        a.raw
    );
    assert!(
        msg(&a).starts_with("ca_cert ca.pem: 2147483648 bytes"),
        "{}",
        a.raw
    );
    assert!(!a.raw.contains(&root), "{}", a.raw);

    // A data set's own error names it relative to the directory.
    let body = json!({"token": "t", "dataset": "bad.jsonl", "qps": 1, "duration": 1,
        "url": format!("{}/v1/completions", m.url())})
    .to_string();
    let a = call(s.addr, "POST", "/fireworks_benchmark", &body, WAIT).unwrap();
    assert_eq!(a.status, 422, "{}", a.raw);
    assert!(msg(&a).contains("bad.jsonl: line 2"), "{}", a.raw);
    assert!(!a.raw.contains(&root), "{}", a.raw);
    let peak = s.memory_kib("VmHWM");
    assert!(peak < SMALL_PEAK_KIB, "peak RSS {peak} kB");
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

fn runs(s: &Served) -> Vec<Value> {
    let r = call(s.addr, "GET", "/runs", "", Duration::from_secs(3)).unwrap();
    r.body["runs"].as_array().cloned().unwrap_or_default()
}

/// Polls `GET /runs` (at most 20 s) until `ok`.
fn runs_until(s: &Served, what: &str, ok: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let list = runs(s);
        if ok(&list) {
            return list;
        }
        assert!(Instant::now() < until, "{what}: {list:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Two synchronous runs starting in 2226, whose clients hung up, held both run slots for
/// centuries, unlisted and uncancellable. Such a start is refused; a run waiting for a start
/// within the limit is listed, cancelled when its client hangs up, and cancellable.
#[test]
fn far_starts_are_refused_and_hung_up_runs_give_their_slots_back() {
    let mut s = Served::start(&["--max-runs", "2"]);
    let m = util::mock_ok();
    let url = format!("{}/", m.url());
    let body = json!({"url": url, "qps": 10, "duration": 1, "start_at": "2226-01-01T00:00:00Z"})
        .to_string();
    let (a, _) = attack(&mut s, "start_at 2226", "/benchmark", &body);
    assert_eq!(
        (a.status, loc(&a)),
        (422, json!(["body", "start_at"])),
        "{}",
        a.raw
    );
    assert!(
        msg(&a).ends_with("at most 5m (--max-start-delay)"),
        "{}",
        a.raw
    );

    // Within the limit: two runs that start in a minute, whose clients hang up.
    let soon = pacer::shard::time::now_unix_ns() / 1_000_000_000 + 60;
    let body = json!({"url": url, "qps": 10, "duration": 1, "start_at": soon}).to_string();
    let started = Instant::now();
    for _ in 0..2 {
        send_and_hang_up(s.addr, "/benchmark", &body, Duration::from_millis(300));
    }
    let list = runs_until(&s, "both hung-up runs cancelled", |l| {
        l.len() == 2 && l.iter().all(|r| r["state"] == json!("cancelled"))
    });
    let freed = started.elapsed();
    assert!(list.iter().all(|r| r["async"] == json!(false)), "{list:?}");
    // The slots are free: a run goes (it was 429 for every later run).
    let quick = json!({"url": url, "qps": 10, "duration": 0.2}).to_string();
    let r = call(s.addr, "POST", "/benchmark", &quick, WAIT).unwrap();
    assert_eq!(r.status, 200, "{}", r.raw);
    eprintln!(
        "attack | 2 sync runs with start_at +60 s, clients hang up | slots free after {:.1} s | peak RSS {} MiB",
        freed.as_secs_f64(),
        s.memory_kib("VmHWM") >> 10
    );

    // A synchronous run whose client stays is listed and cancelled by DELETE: its client gets
    // the report of what ran.
    let (addr, waiting) = (s.addr, body.clone());
    let client = std::thread::spawn(move || call(addr, "POST", "/benchmark", &waiting, WAIT));
    let list = runs_until(&s, "the waiting run listed", |l| {
        l.iter().any(|r| r["state"] == json!("running"))
    });
    let id = list
        .iter()
        .find(|r| r["state"] == json!("running"))
        .and_then(|r| r["id"].as_str())
        .unwrap()
        .to_string();
    let d = call(
        s.addr,
        "DELETE",
        &format!("/runs/{id}"),
        "",
        Duration::from_secs(3),
    )
    .unwrap();
    assert_eq!(d.status, 202, "{}", d.raw);
    let r = client.join().unwrap().unwrap();
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.body["interrupted"], json!(true), "{}", r.raw);
    assert_eq!(r.body["successes"], json!(0));
    s.assert_healthy("after the cancelled runs");
}

/// A 2,000 s sweep was accepted under --max-duration 10.
#[test]
fn a_sweep_longer_than_max_duration_is_refused() {
    let mut s = Served::start(&["--max-duration", "10"]);
    let rates: Vec<u32> = (1..=100).collect();
    let body = json!({"url": "http://127.0.0.1:9/", "rates": rates, "step_duration": 10,
        "pause": 10})
    .to_string();
    let (a, _) = attack(
        &mut s,
        "sweep of 100 steps of 10 s, pauses 10 s, --max-duration 10",
        "/sweep",
        &body,
    );
    assert_eq!(
        (a.status, loc(&a)),
        (422, json!(["body", "step_duration"])),
        "{}",
        a.raw
    );
    assert!(
        msg(&a).starts_with("the sweep lasts 33m10s in all")
            && msg(&a).ends_with("at most 10s (--max-duration)"),
        "{}",
        a.raw
    );
}

/// `--api-key K` is in the process list for every local user; `--api-key-file` keeps it out.
#[test]
fn the_api_key_can_come_from_a_file_outside_the_process_list() {
    let file = std::env::temp_dir().join(format!("pacer-safety-key-{}", std::process::id()));
    std::fs::write(&file, "  k3y-from-file \n").unwrap();
    let s = Served::start(&["--api-key-file", file.to_str().unwrap()]);
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", s.pid())).unwrap();
    assert!(
        !String::from_utf8_lossy(&cmdline).contains("k3y-from-file"),
        "{cmdline:?}"
    );
    assert!(String::from_utf8_lossy(&cmdline).contains("--api-key-file"));
    let r = call(s.addr, "GET", "/runs", "", Duration::from_secs(3)).unwrap();
    assert_eq!(r.status, 401);
    let mut t = std::net::TcpStream::connect(s.addr).unwrap();
    use std::io::{Read, Write};
    t.write_all(b"GET /runs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k3y-from-file\r\nConnection: close\r\n\r\n")
        .unwrap();
    t.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut buf = String::new();
    let _ = t.read_to_string(&mut buf);
    assert!(buf.starts_with("HTTP/1.1 200 "), "{buf}");
    let _ = std::fs::remove_file(&file);
}
