//! Merging shard states: time and peak memory of `pacer merge` over 100 states, each of a shard
//! that sent 10,000, 100,000 or 1,000,000 requests (four timing families each, as a plain run
//! reports). Memory should not grow with the requests: past 100,000 samples a family is a sketch
//! of bounded size, and the merge holds one state at a time.
//!
//! Run: `cargo bench --bench merge` (about a minute, most of it making the states). Each merge
//! runs in a fresh child process, which reports its own wall time and peak resident memory
//! (`VmHWM`), so making the states does not count.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pacer::engine::RunStats;
use pacer::metric::Id;
use pacer::plan::{Input, Limits, Plan, Rate};
use pacer::rng::SplitMix64;
use pacer::shard::{ShardIndex, ShardState, WallTimes, merge_sources};

const SHARDS: u32 = 100;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child(Path::new(&args[i + 1]));
        return;
    }
    // `cargo test --benches` runs benches with no `--bench`: make it quick there.
    let sizes: &[u64] = if args.iter().any(|a| a == "--bench") {
        &[10_000, 100_000, 1_000_000]
    } else {
        &[2_000]
    };
    println!("merge/{SHARDS} states: requests per state, state bytes, merge wall time, peak RSS");
    for &per_state in sizes {
        let dir = std::env::temp_dir().join(format!("pacer-merge-bench-{per_state}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let t = Instant::now();
        let bytes = make_states(&dir, per_state);
        let made = t.elapsed();
        let out = std::process::Command::new(std::env::current_exe().expect("own path"))
            .arg("--child")
            .arg(&dir)
            .output()
            .expect("child runs");
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{report}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        println!(
            "merge/{SHARDS} states x {per_state:>9} requests: {:>6.1} KB per state, {} (made in {:.1}s)",
            bytes as f64 / f64::from(SHARDS) / 1e3,
            report.trim(),
            made.as_secs_f64()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The merge `pacer merge DIR --json` does, timed, with this process's peak memory.
fn child(dir: &Path) {
    let t = Instant::now();
    let merged = merge_sources(
        &[dir.to_path_buf()],
        std::io::empty(),
        pacer::plan::defaults::MAX_STATE_BYTES,
    )
    .expect("merges");
    let json = merged.to_json();
    let text = serde_json::to_string(&json).expect("serializes");
    let took = t.elapsed();
    assert_eq!(
        json["total_requests"].as_u64(),
        Some(merged.stats.total_requests)
    );
    println!(
        "merged in {:>7.1} ms, peak RSS {:>6.1} MB, p99 {:.6} s, rank error bound {}",
        took.as_secs_f64() * 1e3,
        peak_rss_kb() as f64 / 1024.0,
        json["response_time_p99"].as_f64().unwrap_or(f64::NAN),
        json.get("percentile_rank_error")
            .map_or("none (exact)".to_string(), |v| v.to_string()),
    );
    let _ = text;
}

/// `VmHWM` of /proc/self/status: the peak resident set, in KB.
fn peak_rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Writes the states of `SHARDS` shards of one plan, each with `per_state` requests; returns
/// the bytes written.
fn make_states(dir: &Path, per_state: u64) -> u64 {
    let mut bytes = 0;
    for i in 0..SHARDS {
        let mut input = Input::new(
            "http://127.0.0.1:9/",
            Rate::PerSecond(1000.0 * f64::from(SHARDS)),
            per_state as f64 / 1000.0,
        );
        input.num_workers = Some(i64::from(SHARDS) * 10);
        input.threads = Some(2);
        input.shard = ShardIndex::new(i, SHARDS).expect("valid shard");
        let plan = Plan::new(&input, &Limits::default()).expect("valid plan");
        let mut stats = RunStats {
            total_requests: per_state,
            successes: per_state,
            ..RunStats::default()
        };
        let mut rng = SplitMix64::new(u64::from(i));
        for _ in 0..per_state {
            let u = rng.next_f64();
            let ms = 1.0 + 3.0 * u + if u > 0.99 { 50.0 * rng.next_f64() } else { 0.0 };
            let rt = Duration::from_nanos((ms * 1e6) as u64);
            let delay = Duration::from_nanos(2_000 + (rng.next_u64() % 40_000));
            let t = &mut stats.timings;
            t[Id::ResponseTime].record(rt.as_secs_f64());
            t[Id::Latency].record((rt / 2).as_secs_f64());
            t[Id::CorrectedResponseTime].record((rt + delay).as_secs_f64());
            t[Id::DispatchDelay].record(delay.as_secs_f64());
        }
        let start = 1_767_225_600_000_000_000;
        let times = WallTimes {
            start,
            ready: start - 1_000_000,
            end: start + per_state as i64 * 1_000_000,
            first_dispatch: Some(start),
            last_dispatch: Some(start + (per_state as i64 - 1) * 1_000_000),
            dispatched: per_state,
        };
        let line = ShardState::of_run(&plan, &stats, &times).to_line();
        bytes += line.len() as u64;
        let path: PathBuf = dir.join(format!("shard-{i:03}.json"));
        std::fs::write(path, line).expect("write state");
    }
    bytes
}
