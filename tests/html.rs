//! The HTML report in a real browser. Each test renders a report (fixtures in the report's
//! JSON shape, and one real run), loads the page in headless Debian chromium with `--dump-dom`
//! and reads back what the page's script recorded: `data-rendered` and `data-script-error` on
//! `<body>`, and on each chart `data-state`, `data-points` (one per timeline interval) or
//! `data-bars` (one per histogram bucket), checked against the elements actually drawn.
//!
//! Chromium must be at /usr/bin/chromium (`.ci/run` installs it); without it these tests fail,
//! they do not skip.

mod util;

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pacer::report::human;
use serde_json::{Value, json};
use util::TempDir;

const CHROMIUM: &str = "/usr/bin/chromium";
const BROWSER_TIMEOUT: Duration = Duration::from_secs(60);

// ---- scaffolding ----------------------------------------------------------------------------

/// Runs headless chromium on `page` with `extra` flags in its own profile directory, killing its
/// whole process group if it takes longer than [`BROWSER_TIMEOUT`]; returns its stdout.
fn chromium(dir: &Path, page: &Path, extra: &[String]) -> String {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} not found: the HTML report tests need Debian's chromium package. \
         Run .ci/run (it installs it), or `apt-get update && apt-get install -y chromium` as root."
    );
    let (out, err) = (dir.join("stdout"), dir.join("stderr"));
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(File::create(&out).unwrap())
        .stderr(File::create(&err).unwrap())
        // Its own process group, so a timeout can kill the renderer and GPU children too.
        .process_group(0)
        .spawn()
        .expect("chromium starts");
    let deadline = Instant::now() + BROWSER_TIMEOUT;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
            panic!(
                "chromium did not finish within {BROWSER_TIMEOUT:?}; stderr:\n{}",
                tail(&err)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.success(),
        "chromium failed ({status}); stderr:\n{}",
        tail(&err)
    );
    std::fs::read_to_string(&out).unwrap()
}

fn tail(p: &Path) -> String {
    let s = std::fs::read_to_string(p).unwrap_or_default();
    let start = s.len().saturating_sub(3000);
    s[s.char_indices()
        .map(|(i, _)| i)
        .find(|&i| i >= start)
        .unwrap_or(0)..]
        .to_string()
}

/// Renders `report`, loads it in chromium and returns the DOM after the page's script ran.
fn browse(name: &str, report: &Value) -> Dom {
    let dir = TempDir::new(name);
    let page = dir.0.join("report.html");
    std::fs::write(&page, pacer::html::render(report).unwrap()).unwrap();
    let dom = Dom(chromium(&dir.0, &page, &["--dump-dom".into()]));
    dom.assert_clean();
    dom
}

/// The serialized DOM chromium dumps, and the few questions the tests ask of it.
struct Dom(String);

impl Dom {
    /// The script ran to its end, raised nothing, and wrote no NaN or undefined into the page.
    fn assert_clean(&self) {
        let body = self.open_tag("<body");
        assert!(
            !body.contains("data-script-error"),
            "script error: {body}\n{}",
            self.0
        );
        assert!(
            body.contains("data-rendered=\"ok\""),
            "the script did not finish: {body}"
        );
        let main = self.between("<main id=\"report\">", "</main>");
        for bad in ["NaN", "undefined", "Infinity", "[object Object]"] {
            assert!(!main.contains(bad), "the page shows {bad}:\n{main}");
        }
    }

    fn between(&self, start: &str, end: &str) -> &str {
        let i = self
            .0
            .find(start)
            .unwrap_or_else(|| panic!("{start} not in the DOM:\n{}", self.0));
        let j = self.0[i..].find(end).expect("element ends") + i;
        &self.0[i..j]
    }

    fn open_tag(&self, start: &str) -> &str {
        self.between(start, ">")
    }

    fn has_chart(&self, id: &str) -> bool {
        self.0.contains(&format!("data-chart=\"{id}\""))
    }

    /// The chart's `<figure>`, from its opening tag to its end.
    fn chart(&self, id: &str) -> Chart<'_> {
        let key = format!("data-chart=\"{id}\"");
        let at = self.0.find(&key).unwrap_or_else(|| panic!("no chart {id}"));
        let start = self.0[..at].rfind("<figure").unwrap();
        let end = self.0[start..].find("</figure>").unwrap() + start;
        Chart {
            id: id.to_string(),
            html: &self.0[start..end],
        }
    }

    /// The section `name` shows each of `cells` (as serialized HTML).
    fn assert_shows(&self, name: &str, cells: &[&str]) {
        let t = self.table(name);
        for c in cells {
            assert!(t.contains(c), "{name} lacks {c}: {t}");
        }
    }

    /// The section the page marks with `data-table="name"`.
    fn table(&self, name: &str) -> &str {
        let key = format!("data-table=\"{name}\"");
        let start = self.0.find(&key).unwrap_or_else(|| panic!("no {name}"));
        let end = self.0[start..].find("</table>").unwrap_or(0) + start;
        &self.0[start..end]
    }
}

struct Chart<'a> {
    id: String,
    html: &'a str,
}

impl Chart<'_> {
    fn attr(&self, name: &str) -> Option<&str> {
        let tag = &self.html[..self.html.find('>').unwrap()];
        let key = format!(" {name}=\"");
        let i = tag.find(&key)? + key.len();
        Some(&tag[i..i + tag[i..].find('"').unwrap()])
    }

    fn count(&self, needle: &str) -> usize {
        self.html.matches(needle).count()
    }

    /// A timeline chart that drew one hover column per interval.
    fn assert_points(&self, n: usize) {
        assert_eq!(self.attr("data-state"), Some("drawn"), "{}", self.html);
        assert_eq!(
            self.attr("data-points"),
            Some(n.to_string().as_str()),
            "{}: {}",
            self.id,
            self.html
        );
        assert_eq!(self.count("class=\"hit\""), n, "{}: hover columns", self.id);
    }

    /// A histogram that drew one bar per bucket.
    fn assert_bars(&self, n: usize) {
        assert_eq!(self.attr("data-state"), Some("drawn"), "{}", self.html);
        assert_eq!(
            self.attr("data-bars"),
            Some(n.to_string().as_str()),
            "{}",
            self.id
        );
        assert_eq!(self.count("class=\"bar\""), n, "{}: bars", self.id);
    }

    fn assert_no_data(&self, why: &str) {
        assert_eq!(
            self.attr("data-state"),
            Some("no-data"),
            "{}: {}",
            self.id,
            self.html
        );
        assert!(self.html.contains(">no data<"), "{}", self.html);
        assert!(
            self.html.contains(why),
            "{} should say {why}: {}",
            self.id,
            self.html
        );
        assert!(
            !self.html.contains("<svg"),
            "{} drew an empty axis",
            self.id
        );
    }

    /// The vertices of each line (`M`/`L` commands of every `<path d>`), per path.
    fn line_vertices(&self) -> Vec<(usize, usize)> {
        self.html
            .split("<path d=\"")
            .skip(1)
            .map(|rest| {
                let d = &rest[..rest.find('"').unwrap()];
                (d.matches('M').count(), d.matches('L').count())
            })
            .collect()
    }

    /// The vertices of each line as `(x, y)` in the chart's pixels (`y` grows downwards), per
    /// path, in drawing order.
    fn line_points(&self) -> Vec<Vec<(f64, f64)>> {
        self.html
            .split("<path d=\"")
            .skip(1)
            .map(|rest| {
                let d = &rest[..rest.find('"').unwrap()];
                d.split(['M', 'L'])
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        let (x, y) = p.split_once(',').expect("x,y");
                        (x.trim().parse().unwrap(), y.trim().parse().unwrap())
                    })
                    .collect()
            })
            .collect()
    }

    /// The hover titles, in drawing order.
    fn titles(&self) -> Vec<&str> {
        self.html
            .split("<title>")
            .skip(1)
            .map(|t| &t[..t.find("</title>").unwrap()])
            .collect()
    }
}

// ---- fixtures, in the report's JSON shape ---------------------------------------------------

/// Families of `(name, [mean, std, p50, p90, p97, p99])`, as the report writes them.
fn families(r: &mut Value, fs: &[(&str, [f64; 6])]) {
    for (name, v) in fs {
        set_family(r, name, v.map(Some));
    }
}

fn set_family(r: &mut Value, name: &str, v: [Option<f64>; 6]) {
    let keys = [
        format!("mean_{name}"),
        format!("std_{name}"),
        format!("{name}_p50"),
        format!("{name}_p90"),
        format!("{name}_p97"),
        format!("{name}_p99"),
    ];
    for (k, x) in keys.into_iter().zip(v) {
        r[k] = json!(x);
    }
}

/// Log-scale buckets (10 per decade) from `first`, with the given counts; a zero count leaves
/// the bucket out, as the report does.
fn buckets(first: f64, counts: &[u64]) -> Value {
    let step = 10f64.powf(0.1);
    let mut out = Vec::new();
    for (i, &n) in counts.iter().enumerate() {
        let from = first * step.powi(i as i32);
        if n > 0 {
            out.push(json!({"from": from, "to": from * step, "count": n}));
        }
    }
    Value::Array(out)
}

/// A plain run of 7 one-second intervals at 100 req/s. Interval 4 sent nothing (its
/// percentiles are null) and the last left 10 requests unsent.
fn plain_report() -> Value {
    let mut timeline = Vec::new();
    for i in 0..7u64 {
        let quiet = i == 4;
        let sent: u64 = if quiet {
            0
        } else if i == 6 {
            90
        } else {
            100
        };
        let p = |base: f64| {
            if quiet {
                Value::Null
            } else {
                json!(base + 0.001 * i as f64)
            }
        };
        timeline.push(json!({
            "start": i as f64, "duration": 1.0, "scheduled": 100, "sent": sent, "completed": sent,
            "successes": sent.saturating_sub(i), "errors": if quiet { 0 } else { i },
            "not_sent": 100 - sent, "achieved_qps": sent as f64,
            "response_time_p50": p(0.010), "response_time_p90": p(0.020),
            "response_time_p99": p(0.050), "dispatch_delay_p99": p(0.0001),
        }));
    }
    let mut r = json!({
        "config": {"url": "http://127.0.0.1:8081/api", "qps": 100, "duration": 7, "num_workers": 20,
                   "timeout": 2.0, "arrival": "constant", "threads": 2, "interval": 1.0,
                   "method": "POST", "headers": ["Content-Type"]},
        "total_requests": 700, "errors": 21,
    });
    families(
        &mut r,
        &[
            (
                "response_time",
                [0.0123, 0.0041, 0.011, 0.021, 0.034, 0.0523],
            ),
            ("latency", [0.0101, 0.003, 0.009, 0.019, 0.03, 0.05]),
            (
                "corrected_response_time",
                [0.013, 0.005, 0.0111, 0.022, 0.036, 0.0601],
            ),
            (
                "dispatch_delay",
                [2.1e-6, 1e-6, 1.5e-6, 3e-6, 8e-6, 0.00012],
            ),
        ],
    );
    r["errors_status"] = json!([400, "timeout"]);
    r["successes"] = json!(679);
    r["error_counts"] = json!({"400": 15, "timeout": 6});
    r["elapsed"] = json!(7.01);
    r["achieved_qps"] = json!(98.6);
    r["max_response_time"] = json!(1.25);
    r["bytes_received"] = json!(194_360);
    r["connections_opened"] = json!(20);
    r["scheduling"] = json!("normal");
    r["some_future_field"] = json!("hello-from-the-future");
    r["timeline"] = Value::Array(timeline);
    // 13 buckets from 5 ms, the 10th empty: 12 bars.
    r["histograms"] = json!({"response_time": buckets(0.005, &[3, 40, 120, 160, 150, 90, 60, 30, 12, 0, 4, 2, 1])});
    r
}

/// A streaming LLM run of 5 intervals, with every histogram family.
fn llm_report() -> Value {
    let timeline: Vec<Value> = (0..5)
        .map(|i| {
            json!({
                "start": i as f64 * 2.0, "duration": 2.0, "scheduled": 20, "sent": 20, "completed": 20,
                "successes": 20, "errors": 0, "not_sent": 0, "achieved_qps": 10.0,
                "response_time_p50": 0.24, "response_time_p90": 0.241, "response_time_p99": 0.243,
                "dispatch_delay_p99": 0.00002,
                "time_to_first_token_p50": 0.050 + 0.002 * i as f64, "time_to_first_token_p99": 0.06,
                "output_tokens": 400,
            })
        })
        .collect();
    let mut r = json!({
        "config": {"url": "http://127.0.0.1:8081/v1/completions", "qps": 10, "duration": 10,
                   "num_workers": 10, "timeout": 3.0, "method": "POST", "interval": 2.0,
                   "api": "completions", "stream": true,
                   "fireworks_payload": {"model": "mock-model", "prompt": "Snow is white", "stream": true}},
        "total_requests": 100, "errors": 0,
    });
    families(
        &mut r,
        &[
            (
                "response_time",
                [0.2405, 0.0008, 0.2403, 0.2406, 0.2431, 0.2432],
            ),
            (
                "latency",
                [0.0002, 0.00007, 0.00019, 0.00025, 0.00038, 0.00049],
            ),
            (
                "time_to_first_token",
                [0.0503, 0.0006, 0.0502, 0.0503, 0.0505, 0.0519],
            ),
            (
                "inter_token_latency",
                [0.0100, 0.0008, 0.0100, 0.0101, 0.0116, 0.0129],
            ),
            (
                "time_per_output_token",
                [0.0100, 0.00005, 0.0100, 0.01001, 0.01015, 0.01016],
            ),
        ],
    );
    r["successes"] = json!(100);
    r["error_counts"] = json!({});
    r["elapsed"] = json!(10.1);
    r["achieved_qps"] = json!(10.0);
    r["output_tokens"] = json!(2000);
    r["mean_output_tokens"] = json!(20.0);
    r["output_tokens_per_second"] = json!(198.0);
    r["timeline"] = Value::Array(timeline);
    r["histograms"] = json!({
        "response_time": buckets(0.2, &[80, 15, 5]),
        "time_to_first_token": buckets(0.04, &[10, 60, 25, 5]),
        "inter_token_latency": buckets(0.002, &[5, 2, 0, 1, 30, 40, 900, 950, 60, 12]),
        "time_per_output_token": buckets(0.008, &[30, 40, 20, 9, 1]),
    });
    r
}

/// Every request refused: no timing has a sample, the timeline has 4 intervals with nothing
/// completed, and the response-time histogram is empty.
fn no_samples_report() -> Value {
    let timeline: Vec<Value> = (0..4)
        .map(|i| {
            json!({
                "start": i as f64, "duration": 1.0, "scheduled": 5, "sent": 5, "completed": 0,
                "successes": 0, "errors": 5, "not_sent": 0, "achieved_qps": 5.0,
                "response_time_p50": null, "response_time_p90": null, "response_time_p99": null,
                "dispatch_delay_p99": null,
            })
        })
        .collect();
    let mut r = json!({
        "config": {"url": "http://127.0.0.1:9/", "qps": 5, "duration": 4, "num_workers": 5, "timeout": 1.0,
                   "interval": 1.0},
        "total_requests": 20, "errors": 20,
    });
    for f in [
        "response_time",
        "latency",
        "corrected_response_time",
        "dispatch_delay",
    ] {
        set_family(&mut r, f, [None; 6]);
    }
    r["errors_status"] = json!(["connection refused"]);
    r["successes"] = json!(0);
    r["error_counts"] = json!({"connection refused": 20});
    r["elapsed"] = json!(4.0);
    r["achieved_qps"] = json!(0.0);
    r["timeline"] = Value::Array(timeline);
    r["histograms"] = json!({"response_time": []});
    r
}

const HOSTILE: &str = "stream error: </script><script>document.body.dataset.pwned=1</script>\
                       <img src=x onerror=\"document.body.dataset.pwned=2\"><b>bold</b>";

/// Server-written strings that try to break out of the data element and into the page; no
/// timeline and no histograms at all (a report from before they existed).
fn hostile_report() -> Value {
    let mut r = json!({
        "config": {"url": "http://x/</title><script>document.body.dataset.pwned=3</script>",
                   "qps": 1, "duration": 1, "num_workers": 1, "timeout": 1.0,
                   "headers": ["X-<!--<script>", "</SCRIPT >"]},
        "total_requests": 4, "errors": 4, "successes": 0,
    });
    set_family(&mut r, "response_time", [None; 6]);
    r["error_counts"] = json!({ HOSTILE: 3, "<!--<script>": 1 });
    r
}

// ---- the tests ------------------------------------------------------------------------------

#[test]
fn plain_run_draws_every_chart_and_table() {
    let report = plain_report();
    let dom = browse("plain", &report);

    for id in ["response-time", "rate", "errors", "dispatch-delay"] {
        dom.chart(id).assert_points(7);
    }
    // Three percentile lines; interval 4 has no value, so each line is two runs (M) of 4 and 2
    // points: a gap, not a zero.
    let rt = dom.chart("response-time");
    assert_eq!(rt.line_vertices(), vec![(2, 4); 3], "{}", rt.html);
    let first = rt.titles()[0];
    assert!(
        first.contains("0s – 1s")
            && first.contains("p50: 10.00ms")
            && first.contains("p99: 50.00ms"),
        "{first}"
    );
    assert!(rt.titles()[4].contains("p50: –"), "{}", rt.titles()[4]);
    // Achieved and scheduled, every interval has both (achieved 0 in the quiet one).
    assert_eq!(dom.chart("rate").line_vertices(), vec![(1, 6); 2]);
    // Errors: a bar for each interval with errors (1..=6 but not the quiet one), plus not sent
    // in the quiet interval and the last.
    let errors = dom.chart("errors");
    assert_eq!(errors.count("<rect x="), 5 + 2, "{}", errors.html);
    assert!(
        errors.titles()[6].contains("not sent: 10"),
        "{:?}",
        errors.titles()
    );

    let hist = dom.chart("hist-response-time");
    hist.assert_bars(12);
    assert!(hist.html.contains("672 in all, log scale"), "{}", hist.html);
    assert!(
        hist.titles()
            .iter()
            .any(|t| t.contains("5.00ms – 6.29ms: 3 (0.4%)")),
        "{:?}",
        hist.titles()
    );
    // p50 and p99 of the summary are marked on it.
    assert!(hist.html.contains("p50 11.00ms") && hist.html.contains("p99 52.30ms"));

    for id in ["ttft", "tokens", "hist-inter-token-latency"] {
        assert!(!dom.has_chart(id), "a plain run has no {id} chart");
    }

    // Every family, every column present (max too, since the report has one), in human units.
    dom.assert_shows(
        "timings",
        &[
            "<th>p97</th>",
            "<th>max</th>",
            "<td>response time</td>",
            "<td>12.30ms</td>",
            "<td>4.10ms</td>",
            "<td>11.00ms</td>",
            "<td>21.00ms</td>",
            "<td>34.00ms</td>",
            "<td>52.30ms</td>",
            "<td>1.250s</td>",
            "<td>latency</td>",
            "<td>corrected response time</td>",
            "<td>60.10ms</td>",
            "<td>dispatch delay</td>",
            "<td>2.1µs</td>",
            "<td>120.0µs</td>",
        ],
    );
    dom.assert_shows(
        "errors",
        &[
            "HTTP 400</span></td><td>15</td><td>2.1%</td>",
            "timeout</span></td><td>6</td><td>0.9%</td>",
        ],
    );
    let errors = dom.table("errors");
    assert!(
        errors.find("HTTP 400") < errors.find("timeout"),
        "most frequent first"
    );
    dom.assert_shows(
        "counts",
        &[
            "<td>700</td>",
            "<td>679</td>",
            "<td>98.6 /s</td>",
            "<td>189.8 KiB</td>",
            "hello-from-the-future",
        ],
    );
    dom.assert_shows(
        "settings",
        &["http://127.0.0.1:8081/api", "constant", "Content-Type"],
    );
}

#[test]
fn llm_run_draws_first_token_and_token_distributions() {
    let report = llm_report();
    let dom = browse("llm", &report);
    for id in [
        "response-time",
        "rate",
        "errors",
        "dispatch-delay",
        "ttft",
        "tokens",
    ] {
        dom.chart(id).assert_points(5);
    }
    let ttft = dom.chart("ttft");
    assert_eq!(ttft.line_vertices(), vec![(1, 4); 2]);
    assert!(
        ttft.titles()[1].contains("2s – 4s") && ttft.titles()[1].contains("p50: 52.00ms"),
        "{:?}",
        ttft.titles()
    );
    // 400 tokens in 2 s intervals.
    assert!(dom.chart("tokens").titles()[0].contains("output tokens /s: 200.0 /s"));
    dom.chart("hist-response-time").assert_bars(3);
    dom.chart("hist-time-to-first-token").assert_bars(4);
    dom.chart("hist-inter-token-latency").assert_bars(9);
    dom.chart("hist-time-per-output-token").assert_bars(5);
    assert!(
        dom.chart("hist-inter-token-latency")
            .html
            .contains("log scale")
    );
    // No errors: the errors chart is drawn (zero is data) and says so.
    assert!(dom.chart("errors").html.contains("None in any interval."));
    dom.assert_shows(
        "timings",
        &[
            "<td>time to first token</td>",
            "<td>50.30ms</td>",
            "<td>inter token latency</td>",
            "<td>time per output token</td>",
            "<td>10.16ms</td>",
        ],
    );
    dom.assert_shows("errors", &["No errors."]);
    dom.assert_shows("counts", &["<td>2,000</td>"]);
}

/// Issue 21: a run's last interval is cut short by its end. A rate over that sliver (no sends,
/// a few late answers in 50 ms) drew the rate chart's achieved line as a crash to 0 and the
/// output-tokens chart as a spike; neither is drawn, so a steady run draws flat lines.
#[test]
fn a_partial_last_interval_is_not_drawn_as_a_rate() {
    let mut report = llm_report();
    let timeline = report["timeline"].as_array_mut().unwrap();
    timeline.push(json!({
        "start": 10.0, "duration": 0.05, "scheduled": 0, "sent": 0, "completed": 3,
        "successes": 3, "errors": 0, "not_sent": 0, "achieved_qps": 0.0,
        "response_time_p50": 0.24, "response_time_p90": 0.241, "response_time_p99": 0.243,
        "dispatch_delay_p99": null, "time_to_first_token_p50": 0.05,
        "time_to_first_token_p99": 0.06, "output_tokens": 60,
    }));
    let dom = browse("partial", &report);
    for id in ["rate", "tokens"] {
        let chart = dom.chart(id);
        chart.assert_points(6);
        // The first line: achieved (the rate chart), output tokens per second (the other).
        let line = &chart.line_points()[0];
        assert_eq!(
            line.len(),
            5,
            "{id}: one vertex per whole interval: {line:?}"
        );
        let ys: Vec<f64> = line.iter().map(|p| p.1).collect();
        let (lo, hi) = ys
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &y| (a.min(y), b.max(y)));
        assert!(
            hi - lo < 0.5,
            "{id}: a steady run draws a flat line, got y = {ys:?}"
        );
        // The partial interval's hover says it has no rate.
        let last = chart.titles()[5];
        assert!(last.contains("10s – 10.1s"), "{last}");
        assert!(last.contains(": –"), "{id}: {last}");
    }
}

#[test]
fn a_run_with_no_samples_says_no_data_instead_of_drawing_nothing() {
    let dom = browse("empty", &no_samples_report());
    dom.chart("response-time")
        .assert_no_data("no interval has a value");
    dom.chart("dispatch-delay")
        .assert_no_data("no interval has a value");
    dom.chart("hist-response-time").assert_no_data("no samples");
    // Requests were sent and failed: that is data.
    dom.chart("errors").assert_points(4);
    dom.chart("rate").assert_points(4);
    assert_eq!(dom.chart("errors").count("<rect x="), 4);
    dom.assert_shows("timings", &["<td>response time</td><td>–</td><td>–</td>"]);
    dom.assert_shows(
        "errors",
        &["connection refused</span></td><td>20</td><td>100.0%</td>"],
    );
}

#[test]
fn hostile_strings_stay_text_and_no_timeline_means_no_data() {
    let dom = browse("hostile", &hostile_report());
    let html = &dom.0;
    // Nothing injected ran or exists: only the page's three scripts, no image, no bold.
    assert!(!html.contains("data-pwned"), "injected script ran:\n{html}");
    assert_eq!(html.matches("<script").count(), 3, "{html}");
    for tag in ["<img", "<b>", "<!--"] {
        assert!(!html.contains(tag), "{tag} in the DOM:\n{html}");
    }
    // The strings are on the page, as text.
    dom.assert_shows(
        "errors",
        &[
            "stream error: &lt;/script&gt;&lt;script&gt;document.body.dataset.pwned=1&lt;/script&gt;\
             &lt;img src=x onerror=\"document.body.dataset.pwned=2\"&gt;&lt;b&gt;bold&lt;/b&gt;",
            "&lt;!--&lt;script&gt;",
        ],
    );
    dom.assert_shows("settings", &["X-&lt;!--&lt;script&gt;"]);
    let title = dom.between("<title>", "</title>");
    assert_eq!(
        title,
        "<title>pacer report: http://x/&lt;/title&gt;&lt;script&gt;document.body.dataset.pwned=3&lt;/script&gt;"
    );
    for id in ["response-time", "rate", "errors", "dispatch-delay"] {
        dom.chart(id).assert_no_data("this report has no timeline");
    }
    dom.chart("hist-response-time")
        .assert_no_data("this report has no histograms");
}

/// A report the engine made today, through `report::to_json`: the page reads every field it has,
/// and formats its times as the text report does.
#[test]
fn a_real_run_renders_with_the_text_reports_units() {
    let server = util::mock(pacer::mock::MockConfig::default());
    let input = util::input(&format!("{}/", server.url()), 100.0, 1.0);
    let plan = util::plan(&input);
    let stats = pacer::engine::run(&plan, None).unwrap();
    let report = pacer::report::to_json(&pacer::report::Settings::of(&plan), &stats);
    server.shutdown();
    let dom = browse("real", &report);
    let cells: Vec<String> = [
        "mean_response_time",
        "response_time_p50",
        "response_time_p99",
        "dispatch_delay_p99",
    ]
    .iter()
    .map(|key| format!("<td>{}</td>", human(report[key].as_f64().unwrap())))
    .collect();
    let cells: Vec<&str> = cells.iter().map(String::as_str).collect();
    dom.assert_shows("timings", &cells);
    // The mock answers a fifth of its requests with 400.
    dom.assert_shows("errors", &["HTTP 400"]);
    // Runs record a timeline: every over-time chart draws one point per interval.
    let points = report["timeline"].as_array().expect("a timeline").len();
    assert_eq!(points, stats.elapsed.as_secs_f64().ceil() as usize);
    for id in ["response-time", "rate", "errors", "dispatch-delay"] {
        dom.chart(id).assert_points(points);
    }
}

/// `pacer merge --html` of two real shards started together: the merged report has the whole
/// run's timeline, and the page draws it, one point per interval, as it does for one process.
#[test]
fn a_merged_run_draws_its_timeline() {
    let dir = TempDir::new("merged");
    let server = util::mock_ok();
    let url = format!("{}/", server.url());
    let start =
        pacer::shard::time::format_rfc3339(pacer::shard::time::now_unix_ns() + 1_500_000_000);
    let shards: Vec<_> = (0..2)
        .map(|i| {
            let state = dir.0.join(format!("s{i}.json"));
            let child = Command::new(env!("CARGO_BIN_EXE_pacer"))
                .args(["bench", &url, "-q", "100", "-z", "2s", "-c", "4"])
                .args(["--interval", "0.5s", "--shard", &format!("{i}/2")])
                .args(["--start-at", &start, "--state"])
                .arg(&state)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (state, child)
        })
        .collect();
    let mut states = Vec::new();
    for (state, child) in shards {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        states.push(state);
    }
    let (page, json) = (dir.0.join("merged.html"), dir.0.join("merged.json"));
    let o = Command::new(env!("CARGO_BIN_EXE_pacer"))
        .arg("merge")
        .args(&states)
        .arg("-o")
        .arg(&json)
        .arg("--html")
        .arg(&page)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let points = report["timeline"]
        .as_array()
        .expect("a merged timeline")
        .len();
    // 2 s of schedule in half seconds, and the last answers after it.
    assert!(points >= 4, "{points}");
    let dom = Dom(chromium(&dir.0, &page, &["--dump-dom".into()]));
    dom.assert_clean();
    for id in ["response-time", "rate", "errors", "dispatch-delay"] {
        dom.chart(id).assert_points(points);
    }
    assert_eq!(dom.chart("response-time").attr("data-state"), Some("drawn"));
    assert_eq!(dom.chart("rate").attr("data-state"), Some("drawn"));
}

/// `pacer bench --html` on a run where no request got an answer (nothing listens): the page is
/// still written, and says "no data" where there is none, rather than NaN or an empty axis.
#[test]
fn a_real_run_without_answers_renders_no_data() {
    let dir = TempDir::new("refused");
    let page = dir.0.join("run.html");
    let port = util::closed_port();
    let o = Command::new(env!("CARGO_BIN_EXE_pacer"))
        .args([
            "bench",
            &format!("http://127.0.0.1:{port}/"),
            "-q",
            "10",
            "-z",
            "1s",
        ])
        .arg("--html")
        .arg(&page)
        .output()
        .unwrap();
    // No request got a response: exit 1, but the report and its page are written.
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let dom = Dom(chromium(&dir.0, &page, &["--dump-dom".into()]));
    dom.assert_clean();
    dom.chart("response-time")
        .assert_no_data("no interval has a value");
    dom.chart("hist-response-time").assert_no_data("no samples");
    // Requests went out and failed: the error bars are data.
    assert_eq!(dom.chart("errors").attr("data-state"), Some("drawn"));
}

#[test]
fn screenshot_shows_a_drawn_page() {
    let dir = TempDir::new("shot");
    let page = dir.0.join("report.html");
    std::fs::write(&page, pacer::html::render(&llm_report()).unwrap()).unwrap();
    let png = dir.0.join("shot.png");
    chromium(
        &dir.0,
        &page,
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1200,2000".into(),
        ],
    );
    let bytes = std::fs::read(&png).expect("chromium wrote the screenshot");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(&bytes[12..16], b"IHDR");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((width, height), (1200, 2000));
    // A blank page of that size compresses to about 11 KB; charts, text and tables do not.
    assert!(
        bytes.len() > 60_000,
        "screenshot is {} bytes: a blank page?",
        bytes.len()
    );
}

// ---- `pacer html` ---------------------------------------------------------------------------

fn pacer_html(input: &Path, output: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pacer"))
        .arg("html")
        .arg(input)
        .arg("-o")
        .arg(output)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn pacer_html_renders_a_saved_report_and_refuses_anything_else() {
    let dir = TempDir::new("cli");
    let d = &dir.0;
    let report = plain_report();
    let saved = d.join("run.json");
    let text = serde_json::to_string_pretty(&report).unwrap();
    std::fs::write(&saved, &text).unwrap();
    let page = d.join("run.html");
    assert_eq!(pacer_html(&saved, &page), (0, String::new()));
    // The page of the report as read back (serde_json may round a float's last bit on reading).
    let read_back: Value = serde_json::from_str(&text).unwrap();
    let written = std::fs::read_to_string(&page).unwrap();
    assert!(
        written == pacer::html::render(&read_back).unwrap(),
        "{written}"
    );

    let text = d.join("notes.txt");
    std::fs::write(&text, "hello").unwrap();
    let (code, err) = pacer_html(&text, &d.join("x.html"));
    assert_eq!(code, 2);
    assert!(
        err.contains(&format!(
            "{} is not a pacer report: not JSON",
            text.display()
        )),
        "{err}"
    );

    let other = d.join("other.json");
    std::fs::write(&other, r#"{"name": "not a report", "config": {}}"#).unwrap();
    let (code, err) = pacer_html(&other, &d.join("x.html"));
    assert_eq!(code, 2);
    assert!(
        err.contains("is not a pacer report") && err.contains("total_requests"),
        "{err}"
    );

    let missing = d.join("missing.json");
    let (code, err) = pacer_html(&missing, &d.join("x.html"));
    assert_eq!(code, 2);
    assert!(
        err.contains(&format!("cannot read {}", missing.display())),
        "{err}"
    );

    let unwritable = d.join("no-such-dir").join("run.html");
    let (code, err) = pacer_html(&saved, &unwritable);
    assert_eq!(code, 2);
    assert!(
        err.contains(&format!("cannot write {}", unwritable.display())),
        "{err}"
    );
    assert!(
        !d.join("x.html").exists(),
        "nothing written for a refused input"
    );
}

// ---- the sweep page -------------------------------------------------------------------------

/// One step of a sweep fixture: `(asked, achieved, p50, p99, error rate, pass)`.
type Step = (f64, f64, Option<f64>, Option<f64>, f64, bool);

/// A sweep's JSON: one table row per step, the knee at `knee`, and the LLM columns when `llm`.
fn sweep_fixture(rows: &[Step], knee: Option<f64>, llm: bool) -> Value {
    let table: Vec<Value> = rows
        .iter()
        .enumerate()
        .map(|(i, &(asked, achieved, p50, p99, errors, pass))| {
            let mut r = json!({"step": i + 1, "asked_qps": asked, "achieved_qps": achieved,
                "response_time_p50": p50, "response_time_p99": p99,
                "corrected_response_time_p99": p99.map(|x| x * 2.0), "error_rate": errors,
                "goodput": achieved * (1.0 - errors), "pass": pass,
                "checks": [{"expression": format!("achieved_qps>={}", asked * 0.99),
                    "metric": "achieved_qps", "value": achieved, "pass": achieved >= asked * 0.99}]});
            if llm {
                r["time_to_first_token_p50"] = json!(p50.map(|x| x / 2.0));
                r["time_to_first_token_p99"] = json!(p99.map(|x| x / 2.0));
                r["time_per_output_token_p50"] = json!(0.01);
                r["time_per_output_token_p99"] = json!(0.02);
            }
            r
        })
        .collect();
    json!({
        "kind": "sweep",
        "config": {"url": "http://127.0.0.1:8081/", "method": "GET", "num_workers": 10,
            "timeout": 2.0, "sweep": {"rates": null, "steps": rows.len(), "probe_duration": 1.0,
            "step_duration": 0.5, "pause": 0, "min_achieved": 0.99}},
        "probe": {"peak": 480.0, "report": {"config": {}, "total_requests": 240}},
        "rule": "a step passes when its achieved rate is at least 99% of the asked rate",
        "table": table,
        "knee": {"qps": knee, "step": knee.map(|_| 3)},
        "steps": [],
    })
}

#[test]
fn a_sweep_draws_latency_against_the_rate_and_its_knee() {
    let s = sweep_fixture(
        &[
            (100.0, 100.0, Some(0.020), Some(0.021), 0.0, true),
            (200.0, 199.0, Some(0.020), Some(0.023), 0.0, true),
            (300.0, 300.0, Some(0.021), None, 0.0, true),
            (400.0, 350.0, Some(0.035), Some(0.120), 0.05, false),
        ],
        Some(300.0),
        false,
    );
    let dom = browse("sweep", &s);
    // Three series, one point per step with a value (the third step has no p99), the failed
    // step's open.
    let lat = dom.chart("latency-vs-rate");
    assert_eq!(lat.attr("data-state"), Some("drawn"), "{}", lat.html);
    assert_eq!(lat.attr("data-points"), Some("10"));
    assert_eq!(lat.count("class=\"pt\""), 7);
    assert_eq!(lat.count("class=\"pt failed\""), 3);
    assert_eq!(lat.line_vertices(), vec![(1, 3), (1, 2), (1, 2)]);
    assert!(lat.html.contains("class=\"mark knee\"") && lat.html.contains("knee 300.0 /s"));
    let titles = lat.titles();
    assert!(titles[0].contains("step 1: asked 100.0 /s") && titles[0].contains("p50: 20.00ms"));
    assert!(titles[3].contains("failed its checks"), "{titles:?}");
    let achieved = dom.chart("achieved-vs-asked");
    assert_eq!(achieved.attr("data-points"), Some("8"));
    assert_eq!(
        achieved.count("class=\"pt\"") + achieved.count("class=\"pt failed\""),
        8
    );
    assert_eq!(dom.chart("errors-vs-rate").attr("data-points"), Some("4"));
    assert!(
        !dom.has_chart("ttft-vs-rate"),
        "a plain sweep has no TTFT chart"
    );
    dom.assert_shows("knee", &["300.0 /s", "480.0 /s", "3 of 4"]);
    dom.assert_shows(
        "steps",
        &[
            "<td>400.0 /s</td><td>350.0 /s</td><td>35.00ms</td><td>120.00ms</td><td>240.00ms</td>",
            "<td>5.00%</td>",
            "FAIL achieved_qps&gt;=396 (got 350)",
            "<tr class=\"knee\"><td>3</td>",
        ],
    );
    dom.assert_shows("settings", &["http://127.0.0.1:8081/", "step_duration"]);

    let llm = browse(
        "sweep-llm",
        &sweep_fixture(
            &[
                (2.0, 2.0, Some(0.5), Some(0.9), 0.0, true),
                (4.0, 3.0, Some(1.5), Some(2.5), 0.0, false),
            ],
            Some(2.0),
            true,
        ),
    );
    for id in ["ttft-vs-rate", "tpot-vs-rate"] {
        assert_eq!(llm.chart(id).attr("data-points"), Some("4"), "{id}");
    }
    llm.assert_shows(
        "steps",
        &["<th>TTFT p99</th>", "<td>250.00ms</td>", "<td>10.00ms</td>"],
    );
}

#[test]
fn a_sweep_whose_probe_failed_says_so_and_draws_no_empty_axes() {
    let mut s = sweep_fixture(&[], None, false);
    s["stopped"] = json!(
        "the saturation probe failed: no request got a response: connection refused by 127.0.0.1:1"
    );
    s["knee"] = json!({"qps": null, "step": null, "note": "no step ran to its end"});
    let dom = browse("sweep-stopped", &s);
    for id in ["latency-vs-rate", "achieved-vs-asked", "errors-vs-rate"] {
        dom.chart(id).assert_no_data("no step ran");
    }
    assert!(dom.0.contains("connection refused by 127.0.0.1:1"));
    dom.assert_shows("knee", &[">none<", "no step ran to its end", "0 of 0"]);
}

/// A run that was generator-limited, staged and judged by thresholds: the verdict is a banner
/// with its reason, and the stages and thresholds are tables of their own (not raw JSON).
#[test]
fn health_stages_and_thresholds_are_shown_as_such() {
    let mut r = plain_report();
    r["health"] = json!({"verdict": "generator-limited",
        "reasons": ["one thread at 97% of a core"], "notes": []});
    r["thresholds"] = json!([
        {"expression": "response_time_p99<=200ms", "metric": "response_time_p99", "value": 0.0123, "pass": true},
        {"expression": "error_rate<=0.01", "metric": "error_rate", "value": 0.2, "pass": false}]);
    let stage = |i: u64, qps: f64, p50: f64| {
        json!({"stage": i, "qps": qps, "duration": 1.0, "total_requests": qps as u64,
            "achieved_qps": qps, "errors": 0, "response_time_p50": p50, "response_time_p99": p50 * 2.0})
    };
    r["stages"] = json!([stage(1, 50.0, 0.001), stage(2, 100.0, 0.002)]);
    let dom = browse("health", &r);
    let banner = dom.between("data-banner=\"health\"", "</p>");
    assert!(
        banner.contains("generator-limited: one thread at 97% of a core"),
        "{banner}"
    );
    dom.assert_shows(
        "thresholds",
        &[
            "response_time_p99&lt;=200ms",
            "0.0123",
            "pass",
            "error_rate&lt;=0.01",
            "FAIL",
        ],
    );
    dom.assert_shows(
        "stages",
        &["<td>50</td>", "<td>100</td>", "1.00ms", "4.00ms"],
    );
    // Shown once, as tables: not again among the unknown fields as raw JSON.
    let counts = dom.between("data-table=\"counts\"", "</table>");
    assert!(!counts.contains("expression"), "{counts}");
}

/// `n` `--requests` lines whose response times are `ms` plus up to 0.2 ms, spread evenly.
fn request_lines(n: usize, ms: f64) -> String {
    (0..n)
        .map(|i| {
            let t = i as f64 * 0.01;
            let end = t + (ms + 0.2 * i as f64 / n as f64) / 1000.0;
            format!(
                "{{\"index\":{i},\"thread\":0,\"conn\":1,\"intended\":{t:.6},\"dispatched\":{t:.6},\
                 \"headers\":{end:.6},\"first_token\":null,\"ended\":{end:.6},\"status\":200,\
                 \"error\":null,\"bytes\":131}}\n"
            )
        })
        .collect()
}

#[test]
fn a_comparison_draws_both_runs_on_one_chart() {
    let dir = TempDir::new("compare-files");
    let (a, b) = (dir.path("a.jsonl"), dir.path("b.jsonl"));
    std::fs::write(&a, request_lines(60, 1.0)).unwrap();
    std::fs::write(&b, request_lines(60, 2.0)).unwrap();
    let load = |p: &Path| pacer::compare::load(p, 1 << 20).unwrap();
    let c = pacer::compare::compare(load(&a), load(&b), &[], pacer::compare::MIN_CHANGE).unwrap();
    let dom = browse("compare", &c.to_json());
    // Both series, 100 percentiles each (p1 … p99 and p99.9), in every family the lines give.
    for family in ["response_time", "latency", "corrected_response_time"] {
        let chart = dom.chart(family);
        assert_eq!(chart.attr("data-state"), Some("drawn"), "{}", chart.html);
        assert_eq!(chart.attr("data-series"), Some("2"), "{family}");
        assert_eq!(chart.attr("data-points"), Some("200"), "{family}");
        assert!(
            chart.html.contains("data-series=\"base\"")
                && chart.html.contains("data-series=\"new\"")
        );
        assert_eq!(chart.count("class=\"pt\""), 200);
    }
    dom.assert_shows(
        "figures",
        &["<td>response_time_p50</td>", "<td>real</td>", "+1.00ms"],
    );
}
