//! A run split over N local processes of the real binary (`--shard i/N --start-at T --state F`)
//! against the mock, merged with `pacer merge`: the merged counts equal one process's run of the
//! same plan and the mock's own counters, and the merged percentiles equal numpy's on the union
//! of the shards' exact samples.

mod util;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use pacer::metric::Id;
use pacer::mock::{MockConfig, MockServer};
use pacer::shard::ShardState;
use pacer::shard::time::{format_rfc3339, now_unix_ns};
use pacer::stats::percentile_linear;
use serde_json::Value;

const PACER: &str = env!("CARGO_BIN_EXE_pacer");

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pacer-shard-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Waits for `child` at most `bound`, killing it past that (the test then fails).
fn wait_bounded(mut child: Child, bound: Duration, what: &str) -> Output {
    let start = Instant::now();
    loop {
        match child.try_wait().unwrap() {
            Some(_) => return child.wait_with_output().unwrap(),
            None if start.elapsed() > bound => {
                let _ = child.kill();
                let out = child.wait_with_output().unwrap();
                panic!(
                    "{what} did not end within {bound:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn spawn(args: &[String], env: &[(&str, String)]) -> Child {
    let mut cmd = Command::new(PACER);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("pacer starts")
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// A start time `secs` ahead, as RFC 3339.
fn start_in(secs: f64) -> String {
    format_rfc3339(now_unix_ns() + (secs * 1e9) as i64)
}

/// The plan every test sends: 240 requests at 120 req/s over 12 connections.
fn plan_args(url: &str) -> Vec<String> {
    [
        "bench",
        url,
        "-q",
        "120",
        "-z",
        "2s",
        "-c",
        "14",
        "--timeout",
        "5s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Runs the plan as `n` shard processes started together; their states.
fn run_shards(url: &str, n: u32, dir: &Path) -> Vec<PathBuf> {
    run_shards_with(url, n, dir, &[])
        .into_iter()
        .map(|(state, _)| state)
        .collect()
}

/// Runs the plan, with `extra` arguments, as `n` shard processes started together (one
/// `--start-at`); their states and JSON reports.
fn run_shards_with(url: &str, n: u32, dir: &Path, extra: &[&str]) -> Vec<(PathBuf, Value)> {
    let start = start_in(1.5);
    let children: Vec<(PathBuf, Child)> = (0..n)
        .map(|i| {
            let state = dir.join(format!("shard-{i}.json"));
            let mut args = plan_args(url);
            args.extend(extra.iter().map(|a| a.to_string()));
            args.extend([
                "--shard".into(),
                format!("{i}/{n}"),
                "--start-at".into(),
                start.clone(),
                "--state".into(),
                state.display().to_string(),
                "--json".into(),
            ]);
            (state, spawn(&args, &[]))
        })
        .collect();
    children
        .into_iter()
        .map(|(state, child)| {
            let out = wait_bounded(child, Duration::from_secs(60), "a shard");
            let report = serde_json::from_str(&ok(&out, "a shard")).expect("a JSON report");
            (state, report)
        })
        .collect()
}

fn merge_json(states: &[PathBuf]) -> Value {
    let mut args: Vec<String> = vec!["merge".into(), "--json".into()];
    args.extend(states.iter().map(|p| p.display().to_string()));
    let out = wait_bounded(spawn(&args, &[]), Duration::from_secs(60), "pacer merge");
    serde_json::from_str(&ok(&out, "pacer merge")).expect("merge prints JSON")
}

fn states_of(paths: &[PathBuf]) -> Vec<ShardState> {
    paths
        .iter()
        .flat_map(|p| ShardState::read_file(p, pacer::plan::defaults::MAX_STATE_BYTES).unwrap())
        .map(|(_, s)| s)
        .collect()
}

/// Every response time the shards recorded, from their states, ascending.
fn union_response_times(states: &[ShardState]) -> Vec<f64> {
    let mut all = Vec::new();
    for s in states {
        let r = &s.stats.timings[Id::ResponseTime];
        all.extend_from_slice(r.exact_samples().expect("exact"));
    }
    all.sort_by(f64::total_cmp);
    all
}

#[test]
fn shards_merge_to_one_process_run() {
    let dir = tempdir("n");
    // Every answer 200: one process's run and every split count the same.
    let mock = util::mock_ok();
    let url = format!("{}/", mock.url());
    let before = mock.counters();
    let single = wait_bounded(
        spawn(&[plan_args(&url), vec!["--json".into()]].concat(), &[]),
        Duration::from_secs(60),
        "one process",
    );
    let one: Value = serde_json::from_str(&ok(&single, "one process")).unwrap();
    assert_eq!(one["total_requests"], 240);
    assert_eq!(mock.counters().requests - before.requests, 240);
    for n in [1u32, 2, 3, 7] {
        let sub = dir.join(format!("n{n}"));
        std::fs::create_dir_all(&sub).unwrap();
        let before = mock.counters();
        let paths = run_shards(&url, n, &sub);
        let after = mock.counters();
        let merged = merge_json(&paths);
        let what = format!("{n} shards");
        for k in ["total_requests", "successes", "errors"] {
            assert_eq!(merged[k], one[k], "{what}: {k}");
        }
        assert_eq!(merged["config"]["shards"], n, "{what}");
        assert_eq!(merged["shards"].as_array().unwrap().len(), n as usize);
        // The mock saw exactly the plan, once.
        assert_eq!(after.requests - before.requests, 240, "{what}");
        assert_eq!(after.status_200 - before.status_200, 240, "{what}");
        // Percentiles are numpy's on the union of the shards' exact samples.
        let states = states_of(&paths);
        let all = union_response_times(&states);
        assert_eq!(all.len(), 240, "{what}");
        for (q, field) in [(50.0, "p50"), (90.0, "p90"), (99.0, "p99")] {
            let got = merged[format!("response_time_{field}")].as_f64().unwrap();
            let want = percentile_linear(&all, q);
            // pacer prints the exact value (shortest round-trip form); serde_json's reader, in
            // its default mode, may land one unit in the last place off it.
            assert!(
                (got - want).abs() <= 2.0 * f64::EPSILON * want.abs(),
                "{what}: {field} {got} != {want}"
            );
        }
        assert!(merged.get("percentile_rank_error").is_none());
        // Started together: on time, so no shard is late by more than a slow start of a
        // process on a busy machine (this test is about the accounting, not how fast pacer
        // starts).
        let skew = merged["start_skew"].as_f64().unwrap();
        assert!((0.0..10.0).contains(&skew), "{what}: skew {skew}");
        // Each shard sent its own requests: j mod n = i, and shares that add up.
        let mut shares: Vec<u64> = states.iter().map(|s| s.stats.total_requests).collect();
        shares.sort();
        assert_eq!(shares.iter().sum::<u64>(), 240);
        assert!(
            shares[shares.len() - 1] - shares[0] <= 1,
            "{what}: {shares:?}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// With the mock's seeded mix of 200 and 400, which request gets which depends on the order
/// they reach it, so only the mock's own counts are exact: the merged report must equal them.
#[test]
fn merged_statuses_equal_the_mocks_counts() {
    let dir = tempdir("mix");
    let mock = MockServer::start(util::loopback(), MockConfig::default()).unwrap();
    let url = format!("{}/", mock.url());
    let paths = run_shards(&url, 3, &dir);
    let c = mock.counters();
    let merged = merge_json(&paths);
    assert_eq!(merged["total_requests"], 240);
    assert_eq!(merged["successes"].as_u64(), Some(c.status_200));
    assert_eq!(
        merged["error_counts"]["400"].as_u64().unwrap_or(0),
        c.status_400
    );
    assert!(c.status_400 > 0, "the mix sends some 400s");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A shard ready after its start still sends every request, says how late it was, and times
/// its requests from their intended times (so the lateness shows in corrected_response_time).
#[test]
fn a_late_shard_sends_everything_and_says_so() {
    let dir = tempdir("late");
    let mock = util::mock_ok();
    let url = format!("{}/", mock.url());
    // Started 3 s after its start, with a 1 s timeout: waiting counts from readiness, so
    // nothing is given up as not sent.
    let start = format_rfc3339(now_unix_ns() - 3_000_000_000);
    let state = dir.join("late.json");
    let mut args = plan_args(&url);
    assert_eq!(args[8], "--timeout");
    args[9] = "1s".into();
    args.extend([
        "--shard".into(),
        "1/2".into(),
        "--start-at".into(),
        start,
        "--state".into(),
        state.display().to_string(),
        "--json".into(),
    ]);
    let out = wait_bounded(spawn(&args, &[]), Duration::from_secs(60), "a late shard");
    let report: Value = serde_json::from_str(&ok(&out, "a late shard")).unwrap();
    assert_eq!(report["total_requests"], 120);
    assert_eq!(report["successes"], 120);
    let late = report["start_late"].as_f64().unwrap();
    assert!(late >= 3.0, "start_late {late}");
    // Its first request (j = 1) was due 1/120 s after the start, long before the shard could
    // send it: its corrected time, counted from then, says so.
    let max = report["max_corrected_response_time"].as_f64().unwrap();
    assert!(
        max >= late - 1.0 / 120.0,
        "corrected max {max}, late {late}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("late"));
    let s = &states_of(&[state])[0];
    assert!((s.start_late() - late).abs() < 1e-9);
    assert!(s.wall().ready - s.wall().start >= 3_000_000_000);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `pacer merge` refuses, naming the files, and exits 2.
#[test]
fn merge_refusals_name_the_states() {
    let dir = tempdir("refuse");
    let mock = util::mock_ok();
    let url = format!("{}/", mock.url());
    let paths = run_shards(&url, 2, &dir);
    let merge = |files: &[PathBuf]| {
        let mut args = vec!["merge".to_string()];
        args.extend(files.iter().map(|p| p.display().to_string()));
        let out = wait_bounded(spawn(&args, &[]), Duration::from_secs(30), "pacer merge");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, msg) = merge(&paths[..1]);
    assert_eq!(code, Some(2));
    assert!(msg.contains("1 of 2 shards missing: 1/2"), "{msg}");
    let (code, msg) = merge(&[paths[0].clone(), paths[0].clone(), paths[1].clone()]);
    assert_eq!(code, Some(2));
    assert!(msg.contains("shard 0/2 appears 2 times"), "{msg}");
    // Another plan: the same shard 1/2 of a plan at another rate.
    let other = dir.join("other.json");
    let mut args = plan_args(&url);
    assert_eq!(args[2], "-q");
    args[3] = "100".into();
    args.extend([
        "--shard".into(),
        "1/2".into(),
        "--state".into(),
        other.display().to_string(),
    ]);
    ok(
        &wait_bounded(spawn(&args, &[]), Duration::from_secs(60), "other plan"),
        "other plan",
    );
    let (code, msg) = merge(&[paths[0].clone(), other.clone()]);
    assert_eq!(code, Some(2));
    assert!(
        msg.contains("different plans") && msg.contains("other.json"),
        "{msg}"
    );
    // A newer state version.
    let newer = dir.join("newer.json");
    let text = std::fs::read_to_string(&paths[1]).unwrap();
    std::fs::write(
        &newer,
        text.replacen("\"pacer_state\":4", "\"pacer_state\":5", 1),
    )
    .unwrap();
    let (code, msg) = merge(&[paths[0].clone(), newer]);
    assert_eq!(code, Some(2));
    assert!(
        msg.contains("newer.json is a shard state of version 5"),
        "{msg}"
    );
    // Another --interval: the same plan, but its timeline cannot be added to the others'.
    let coarse = dir.join("coarse.json");
    let mut args = plan_args(&url);
    args.extend([
        "--interval".into(),
        "2s".into(),
        "--shard".into(),
        "1/2".into(),
        "--state".into(),
        coarse.display().to_string(),
    ]);
    ok(
        &wait_bounded(spawn(&args, &[]), Duration::from_secs(60), "coarse"),
        "coarse",
    );
    let (code, msg) = merge(&[paths[0].clone(), coarse]);
    assert_eq!(code, Some(2));
    assert!(
        msg.contains("different intervals") && msg.contains("2 s: ") && msg.contains("coarse.json"),
        "{msg}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The timeline's figures of each row, by name.
fn column(rows: &[Value], key: &str) -> Vec<u64> {
    rows.iter().map(|r| r[key].as_u64().unwrap()).collect()
}

/// A run in 3 shards with one `--start-at` merges into one timeline: each interval is the sum
/// of the shards' same interval; the scheduled counts (placed by intended time, so fixed by the
/// plan) equal one process's interval by interval; sent and successes add up to the totals.
/// A state of an older layout among them (version 1, before the timeline; version 2, before
/// the run's own statistics) is refused by name: its shard must be re-run with this build.
#[test]
fn shards_merge_into_one_timeline_on_their_common_start() {
    let dir = tempdir("timeline");
    let mock = util::mock_ok();
    let url = format!("{}/", mock.url());
    let interval = ["--interval", "0.5s"];
    let single = wait_bounded(
        spawn(
            &[
                plan_args(&url),
                interval.iter().map(|s| s.to_string()).collect(),
                vec!["--json".into()],
            ]
            .concat(),
            &[],
        ),
        Duration::from_secs(60),
        "one process",
    );
    let one: Value = serde_json::from_str(&ok(&single, "one process")).unwrap();
    let shards = run_shards_with(&url, 3, &dir, &interval);
    let paths: Vec<PathBuf> = shards.iter().map(|(p, _)| p.clone()).collect();
    let merged = merge_json(&paths);

    let rows = merged["timeline"].as_array().expect("a merged timeline");
    let elapsed = merged["elapsed"].as_f64().unwrap();
    assert_eq!(
        rows.len(),
        (elapsed / 0.5).ceil() as usize,
        "elapsed {elapsed}"
    );
    for (k, r) in rows.iter().enumerate() {
        assert_eq!(r["start"].as_f64().unwrap(), k as f64 * 0.5);
    }
    // The plan decides the scheduled counts: 60 per half second, in one process or three.
    let one_rows = one["timeline"].as_array().unwrap();
    let scheduled = column(rows, "scheduled");
    let mut single_scheduled = column(one_rows, "scheduled");
    single_scheduled.resize(scheduled.len().max(single_scheduled.len()), 0);
    let mut merged_scheduled = scheduled.clone();
    merged_scheduled.resize(single_scheduled.len(), 0);
    assert_eq!(merged_scheduled, single_scheduled);
    assert_eq!(&scheduled[..4], &[60, 60, 60, 60]);
    for key in ["scheduled", "sent", "successes"] {
        let sum: u64 = column(rows, key).iter().sum();
        assert_eq!(sum, 240, "{key}");
        assert_eq!(sum, column(one_rows, key).iter().sum::<u64>(), "{key}");
    }
    // Each interval is the sum of the shards' own reports' same interval (one start: no shift).
    for key in [
        "scheduled",
        "sent",
        "completed",
        "successes",
        "errors",
        "not_sent",
    ] {
        let mut want = vec![0u64; rows.len()];
        for (_, report) in &shards {
            let theirs = report["timeline"].as_array().unwrap();
            assert!(theirs.len() <= rows.len());
            for (k, x) in column(theirs, key).into_iter().enumerate() {
                want[k] += x;
            }
        }
        assert_eq!(column(rows, key), want, "{key}");
    }
    // Every interval with responses has its percentiles, ordered.
    for r in rows.iter().filter(|r| r["completed"].as_u64() > Some(0)) {
        let (p50, p99) = (
            r["response_time_p50"].as_f64().unwrap(),
            r["response_time_p99"].as_f64().unwrap(),
        );
        assert!(0.0 < p50 && p50 <= p99, "{r}");
    }
    let a = &merged["timeline_alignment"];
    assert_eq!(a["off_grid"], 0.0, "{a}");
    assert_eq!(a["interval"], 0.5, "{a}");
    // The clock: the common start in Unix time; no monotonic reading (each machine has its own).
    let states = states_of(&paths);
    let start = states[0].wall().start;
    assert!(states.iter().all(|s| s.wall().start == start));
    let clock = merged["clock"].as_object().unwrap();
    assert_eq!(clock.keys().collect::<Vec<_>>(), ["unix_start"]);
    // pacer prints the exact value; serde_json's default reader may land an ulp off it.
    let unix_start = clock["unix_start"].as_f64().unwrap();
    assert!(
        (unix_start - start as f64 / 1e9).abs() <= 1e-6,
        "{unix_start}"
    );
    for (_, report) in &shards {
        assert!(
            (report["clock"]["unix_start"].as_f64().unwrap() - start as f64 / 1e9).abs() < 1e-6
        );
    }

    // Shard 2's state as an older pacer wrote it (version 1 had no timeline).
    let text = std::fs::read_to_string(&paths[2]).unwrap();
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v["stats"].as_object_mut().unwrap().remove("timeline");
    for version in [1, 2, 3] {
        v["pacer_state"] = version.into();
        let old = dir.join("old.json");
        std::fs::write(&old, v.to_string()).unwrap();
        let mut args = vec!["merge".to_string(), "--json".to_string()];
        args.extend(
            [&paths[0], &paths[1], &old]
                .iter()
                .map(|p| p.display().to_string()),
        );
        let out = wait_bounded(spawn(&args, &[]), Duration::from_secs(60), "pacer merge");
        let msg = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{msg}");
        assert!(
            msg.contains(&format!(
                "old.json is a shard state of version {version}, older than this pacer merges \
                 (version 4 is needed): re-run the shards with this build"
            )),
            "{msg}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A staged run in 2 shards merges into the whole run's `stages`: each stage's requests, as one
/// process counts them (a request belongs to the stage of its intended time, which the plan
/// fixes), its asked rate and start, and percentiles exact on the union of the shards' samples
/// of that stage.
#[test]
fn a_staged_run_merges_its_stages() {
    let dir = tempdir("stages");
    let mock = util::mock_ok();
    let url = format!("{}/", mock.url());
    let staged = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = ["bench", &url, "--stages", "60:1s,120:1s", "-c", "8"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let one: Value = serde_json::from_str(&ok(
        &wait_bounded(
            spawn(&staged(&["--json"]), &[]),
            Duration::from_secs(60),
            "one process",
        ),
        "one process",
    ))
    .unwrap();
    let start = start_in(1.5);
    let children: Vec<(PathBuf, Child)> = (0..2)
        .map(|i| {
            let state = dir.join(format!("staged-{i}.json"));
            let shard = format!("{i}/2");
            let path = state.display().to_string();
            let args = staged(&["--shard", &shard, "--start-at", &start, "--state", &path]);
            (state, spawn(&args, &[]))
        })
        .collect();
    let paths: Vec<PathBuf> = children
        .into_iter()
        .map(|(state, child)| {
            ok(
                &wait_bounded(child, Duration::from_secs(60), "a staged shard"),
                "a staged shard",
            );
            state
        })
        .collect();
    let merged = merge_json(&paths);
    assert_eq!(merged["total_requests"], 180);
    let (got, want) = (
        merged["stages"].as_array().expect("merged stages"),
        one["stages"].as_array().unwrap(),
    );
    assert_eq!(got.len(), 2);
    let states = states_of(&paths);
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        for key in [
            "stage",
            "qps",
            "duration",
            "start",
            "intended_qps",
            "total_requests",
            "successes",
            "errors",
            "elapsed",
        ] {
            assert_eq!(g[key], w[key], "stage {}: {key}", k + 1);
        }
        // Each stage's response times: numpy's percentiles on the union of the shards' own.
        let mut all = Vec::new();
        for s in &states {
            let r = &s.stats.stages[k].timings[Id::ResponseTime];
            all.extend_from_slice(r.exact_samples().expect("exact"));
        }
        all.sort_by(f64::total_cmp);
        assert_eq!(all.len() as u64, g["successes"].as_u64().unwrap());
        for (q, field) in [(50.0, "p50"), (99.0, "p99")] {
            let v = g[format!("response_time_{field}")].as_f64().unwrap();
            let want = percentile_linear(&all, q);
            assert!(
                (v - want).abs() <= 2.0 * f64::EPSILON * want.abs(),
                "stage {}: {field} {v} != {want}",
                k + 1
            );
        }
        // Sent within the stage, per second: two shards' sends together, bounded by physics
        // (no faster than the stage's schedule allows over a loaded machine's spread).
        let achieved = g["achieved_qps"].as_f64().unwrap();
        assert!(achieved > 0.0, "stage {}: achieved {achieved}", k + 1);
    }
    assert_eq!(got[0]["total_requests"], 60);
    assert_eq!(got[1]["total_requests"], 120);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Two states of one plan (shards 0/2 and 1/2), made as a shard makes them, as JSON to edit.
fn made_states() -> Vec<Value> {
    use pacer::engine::{ErrorKey, RunStats};
    use pacer::metric::Id;
    use pacer::plan::{Input, Limits, Plan, Rate};
    use pacer::shard::{ShardIndex, WallTimes};
    (0..2u32)
        .map(|i| {
            let mut input = Input::new("http://127.0.0.1:9/", Rate::PerSecond(40.0), 2.5);
            input.shard = ShardIndex::new(i, 2).unwrap();
            let plan = Plan::new(&input, &Limits::default()).unwrap();
            let mut stats = RunStats {
                total_requests: 50,
                successes: 48,
                bytes_received: 4800,
                ..RunStats::default()
            };
            stats.errors.insert(ErrorKey::Status(500), 2);
            for k in 0..50u64 {
                let x = Duration::from_nanos(1_000_000 + k * 7919).as_secs_f64();
                stats.timings[Id::ResponseTime].record(x);
            }
            let start = 1_767_225_600_000_000_000;
            let times = WallTimes {
                start,
                ready: start - 1_000_000,
                end: start + 2_500_000_000,
                first_dispatch: Some(start),
                last_dispatch: Some(start + 2_450_000_000),
                dispatched: 50,
            };
            serde_json::from_str(&ShardState::of_run(&plan, &stats, &times).to_line()).unwrap()
        })
        .collect()
}

/// `pacer merge` on `states` (written to `dir`), or on `stdin` with `-`: its exit code and
/// standard error.
fn merge_of(dir: &Path, states: &[Value], stdin: Option<std::fs::File>) -> (Option<i32>, String) {
    let mut args = vec!["merge".to_string(), "--json".to_string()];
    for (i, s) in states.iter().enumerate() {
        let path = dir.join(format!("s{i}.json"));
        std::fs::write(&path, s.to_string()).unwrap();
        args.push(path.display().to_string());
    }
    let mut cmd = Command::new(PACER);
    cmd.args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match stdin {
        Some(f) => cmd.arg("-").stdin(f),
        None => cmd.stdin(Stdio::null()),
    };
    let out = wait_bounded(cmd.spawn().unwrap(), Duration::from_secs(60), "pacer merge");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Issue 19, item 5: numbers in a state no run can have written are refused by the file's name
/// with the usage exit code (2). Before: a duration or timeout of 1e20 panicked (exit 101),
/// two shards' counts at u64::MAX wrapped to 18446744073709551614, successes above the requests
/// and a `start_late` of 1e308 were merged as given, and `pacer merge - < /dev/zero` grew until
/// the allocator aborted.
#[test]
fn merge_refuses_numbers_no_run_has_and_endless_input() {
    let dir = tempdir("untrusted");
    let good = made_states();
    let (code, err) = merge_of(&dir, &good, None);
    assert_eq!(code, Some(0), "{err}");
    let s1 = dir.join("s1.json").display().to_string();
    type Break = fn(&mut Value);
    let cases: [(Break, &str); 5] = [
        (
            |s| s["settings"]["duration"] = 1e20.into(),
            "settings.duration is 1e20",
        ),
        (
            |s| s["settings"]["timeout"] = 1e20.into(),
            "settings.timeout is 1e20",
        ),
        (
            |s| s["stats"]["successes"] = 51.into(),
            "51 successes, 50 dispatched and 50 requests are not in order",
        ),
        (
            |s| {
                let ready = s["stats"]["wall"]["ready_unix_ns"].as_i64().unwrap();
                s["stats"]["wall"]["start_unix_ns"] = (ready - 40_000_000_000_000_000).into();
            },
            "start_late is 40000000.0",
        ),
        (
            |s| s["stats"]["wall"]["end_unix_ns"] = 0.into(),
            "it ends before it was ready",
        ),
    ];
    for (change, says) in cases {
        let mut states = good.clone();
        change(&mut states[1]);
        let (code, err) = merge_of(&dir, &states, None);
        assert_eq!(code, Some(2), "{says}: {err}");
        assert!(
            err.contains(&format!("{s1} is not a state a run can have written"))
                && err.contains(says)
                && !err.contains("panicked"),
            "{says}: {err}"
        );
    }
    let mut states = good.clone();
    for s in &mut states {
        s["stats"]["bytes_received"] = u64::MAX.into();
    }
    let (code, err) = merge_of(&dir, &states, None);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "cannot merge {s1}: with it, bytes_received would be more than a run can count"
        )),
        "{err}"
    );
    // An endless standard input: refused at the default limit (64 MiB), in a moment.
    let zero = std::fs::File::open("/dev/zero").unwrap();
    let (code, err) = merge_of(&dir, &[], Some(zero));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("stdin line 1 is longer than 67108864 bytes")
            && err.contains("--max-state-bytes"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
