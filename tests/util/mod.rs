//! Helpers shared by the integration tests: mock targets on port 0 and plans against them, the
//! real binary, and temporary files.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use pacer::engine::{self, ErrorKey, RunStats};
use pacer::mock::{MockConfig, MockServer};
use pacer::plan::{Input, Limits, LlmInput, Plan, Rate};
use pacer::stats::Recorder;

pub mod serve;

pub fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A mock target on a free loopback port.
pub fn mock(cfg: MockConfig) -> MockServer {
    MockServer::start(loopback(), cfg).expect("mock starts")
}

/// A mock that answers every `/` with 200.
pub fn mock_ok() -> MockServer {
    mock(MockConfig {
        error_rate: 0.0,
        ..MockConfig::default()
    })
}

/// A mock LLM fast enough that a short run finishes well inside its timeout: first token after
/// 5 ms, then 1 ms between 5 tokens.
pub fn llm_mock() -> MockServer {
    mock(MockConfig {
        ttft: ms(5.0),
        itl: ms(1.0),
        tokens: 5,
        ..MockConfig::default()
    })
}

/// A loopback port with nothing listening: bound and never listened on, and held for the
/// test process's life. A connection to it is refused, and neither another test's listener nor
/// a connection's own source port (a self-connect) can take it, as they could a port bound and
/// released (a test once saw 2 of 10 "refused" requests answered by another test's server).
pub fn closed_port() -> u16 {
    use rustix::net::{AddressFamily, SocketType, bind, getsockname, socket};
    static HELD: std::sync::Mutex<Vec<std::os::fd::OwnedFd>> = std::sync::Mutex::new(Vec::new());
    let fd = socket(AddressFamily::INET, SocketType::STREAM, None).unwrap();
    bind(&fd, &loopback()).unwrap();
    let addr = SocketAddr::try_from(getsockname(&fd).unwrap()).unwrap();
    HELD.lock().unwrap().push(fd);
    addr.port()
}

pub fn input(url: &str, qps: f64, duration: f64) -> Input {
    Input::new(url, Rate::PerSecond(qps), duration)
}

pub fn llm_input(url: &str, qps: f64, duration: f64) -> Input {
    let mut i = input(url, qps, duration);
    i.llm = Some(LlmInput {
        token: "test-secret-token-123".into(),
        model: "mock-model".into(),
        prompt: "Snow is white".into(),
        max_tokens: 25,
        stream: true,
        api: pacer::llm::Api::Completions,
        // By the host: the minimal OpenAI payload for the loopback mock.
        payload_style: None,
        payload: None,
    });
    i
}

pub fn plan(i: &Input) -> Plan {
    Plan::new(i, &Limits::default()).expect("valid plan")
}

pub fn run(i: &Input) -> RunStats {
    engine::run(&plan(i), None).expect("run completes")
}

/// Runs `i` on a thread of its own and fails the test (rather than hang it) when the run has not
/// ended within `bound`; the run's stats and its wall time.
pub fn run_within(i: &Input, bound: Duration) -> (RunStats, Duration) {
    let p = plan(i);
    let (tx, rx) = mpsc::channel();
    let start = Instant::now();
    std::thread::spawn(move || {
        let _ = tx.send(engine::run(&p, None).expect("run completes"));
    });
    match rx.recv_timeout(bound) {
        Ok(stats) => (stats, start.elapsed()),
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{}: the run did not end within {bound:?}", i.url)
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            panic!("{}: the run failed (its thread's panic is above)", i.url)
        }
    }
}

/// Asserts that every sample of `later` is at least its sample of `earlier` (the same requests,
/// each timed from its own dispatch to two events, the second never before the first), through
/// what the summaries show: equal counts, and min, mean, percentiles and max in order. When each
/// sample dominates its partner, each order statistic does too, and so do interpolated
/// percentiles and means (the mean up to rounding).
pub fn assert_not_before(later: &Recorder, earlier: &Recorder, what: &str) {
    let (l, e) = (later.summary(), earlier.summary());
    assert_eq!(l.count, e.count, "{what}: counts");
    let pairs = [
        ("min", l.min, e.min),
        ("p50", l.p50, e.p50),
        ("p90", l.p90, e.p90),
        ("p99", l.p99, e.p99),
        ("max", l.max, e.max),
    ];
    for (name, a, b) in pairs {
        assert!(a >= b, "{what}: {name} {a:?} < {b:?}");
    }
    let (a, b) = (l.mean.unwrap_or(0.0), e.mean.unwrap_or(0.0));
    assert!(a >= b - 1e-9, "{what}: mean {a} < {b}");
}

/// Count of one named error bucket.
pub fn named(stats: &RunStats, name: &str) -> u64 {
    stats
        .errors
        .get(&ErrorKey::Name(name.to_string()))
        .copied()
        .unwrap_or(0)
}

pub fn status(stats: &RunStats, code: u16) -> u64 {
    stats
        .errors
        .get(&ErrorKey::Status(code))
        .copied()
        .unwrap_or(0)
}

/// Every request in exactly one bucket.
pub fn assert_accounted(stats: &RunStats, n: u64) {
    assert_eq!(stats.total_requests, n, "total_requests");
    assert_eq!(
        stats.successes + stats.error_count(),
        n,
        "buckets add up: {:?}",
        stats.errors
    );
}

/// Runs the real `pacer` binary with `args` (without the environment's API key) to its end.
pub fn pacer(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_pacer"))
        .args(args)
        .env_remove("FIREWORKS_API_KEY")
        .output()
        .expect("the pacer binary runs")
}

pub fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The JSON report a `--json` run printed.
pub fn json_of(o: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&o.stdout)
        )
    })
}

pub fn ms(d: f64) -> Duration {
    Duration::from_secs_f64(d / 1000.0)
}

/// POSTs a JSON body to the API at `addr` and returns the status and the parsed JSON answer.
pub fn post_json(addr: SocketAddr, path: &str, body: &str) -> (u16, serde_json::Value) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let raw = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(raw.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let (status, _, body) = answer(&buf);
    (
        status,
        serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
    )
}

/// An HTTP answer read to its end: the status (0 when there is none), the head, the body.
pub fn answer(buf: &[u8]) -> (u16, String, String) {
    let text = String::from_utf8_lossy(buf);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

/// Every field of the original service's response is present in ours with the same JSON type
/// (a number may be null where the original had one, as the original writes None then).
pub fn assert_superset(ours: &serde_json::Value, original: &serde_json::Value, path: &str) {
    use serde_json::Value;
    let (Value::Object(o), Value::Object(want)) = (ours, original) else {
        panic!("{path}: not an object")
    };
    for (k, v) in want {
        let got = o.get(k).unwrap_or_else(|| panic!("{path}.{k} missing"));
        match (got, v) {
            (Value::Object(_), Value::Object(_)) => assert_superset(got, v, &format!("{path}.{k}")),
            (Value::Number(_), Value::Number(_))
            | (Value::String(_), Value::String(_))
            | (Value::Bool(_), Value::Bool(_)) => {}
            (Value::Array(_), Value::Array(_)) => {}
            _ => panic!("{path}.{k}: {got} has another type than the original's {v}"),
        }
    }
}

/// A fresh directory under the system temp dir, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let p = std::env::temp_dir().join(format!("pacer-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Writes `text` to `name` in the directory.
    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `path(name)` as a command-line argument.
    pub fn arg(&self, name: &str) -> String {
        self.path(name).to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A word-level `tokenizer.json` in `dir` that splits on whitespace only, over the synthetic
/// corpus's words (so synthetic prompts decode and re-encode exactly): every text's token count
/// is its word count, as the mock counts a prompt.
pub fn word_tokenizer(dir: &TempDir) -> PathBuf {
    let mut vocab = serde_json::Map::new();
    vocab.insert("[UNK]".into(), serde_json::json!(0));
    for w in pacer::llm::synth::CORPUS.split_whitespace() {
        let id = vocab.len();
        vocab.entry(w.to_string()).or_insert(serde_json::json!(id));
    }
    let t = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": null, "pre_tokenizer": {"type": "WhitespaceSplit"},
        "post_processor": null, "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"}
    });
    dir.file("tokenizer.json", &t.to_string())
}

/// Where [`skip`] lists the tests that could not check what they are for on this machine; CI
/// (`.ci/run`) prints the file after the suite, since a passing test's own output is hidden.
pub fn skipped_list() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("skipped-tests.txt")
}

/// Says that `test` checked nothing here, and why: on stderr (shown with `--nocapture`) and as a
/// line of [`skipped_list`]. The caller returns right after.
pub fn skip(test: &str, reason: &str) {
    let line = format!("SKIPPED: {test}: {reason}");
    eprintln!("{line}");
    use std::io::Write;
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(skipped_list())
    {
        let _ = writeln!(f, "{line}");
    }
}
