//! Kernel receive timestamps, end to end through the real binary: a response the lane reads late
//! on purpose still reports when it arrived, over plain TCP and TLS; with timestamps refused
//! (forced here with `PACER_TIMESTAMPS=user`) the report says so and the run is still right.
//!
//! The lane is held busy with the test hook `PACER_TEST_HOLD_MS`: after each loop turn that sent
//! something it sleeps that long before reading anything, so every response waits in its socket.

mod util;

use std::process::Command;
use std::time::Duration;

use pacer::mock::MockConfig;
use serde_json::Value;
use util::*;

const HOLD_MS: u64 = 800;

/// `pacer bench URL --json` with `args` and `env`; the report, after checking the exit code.
fn bench(url: &str, args: &[&str], env: &[(&str, String)]) -> Value {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pacer"));
    c.arg("bench").arg(url).args(args).arg("--json");
    c.env_remove("PACER_TIMESTAMPS")
        .env_remove("PACER_TEST_HOLD_MS");
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().expect("the pacer binary runs");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("--json prints JSON")
}

fn secs(r: &Value, key: &str) -> f64 {
    r[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing: {r}"))
}

/// Five requests, 100 ms apart, on one connection; the lane holds 800 ms after each send.
fn held_run(url: &str, extra: &[&str], timestamps: Option<&str>) -> Value {
    let mut args = vec![
        "--qps",
        "10",
        "--duration",
        "0.5",
        "--num_workers",
        "1",
        "--timeout",
        "10",
    ];
    args.extend_from_slice(extra);
    let mut env = vec![("PACER_TEST_HOLD_MS", HOLD_MS.to_string())];
    if let Some(t) = timestamps {
        env.push(("PACER_TIMESTAMPS", t.to_string()));
    }
    let r = bench(url, &args, &env);
    assert_eq!(r["total_requests"], 5, "{r}");
    assert_eq!(r["successes"], 5, "{}", r["error_counts"]);
    r
}

/// The mock answers at once; the lane reads each answer 800+ ms after it came. With kernel
/// stamps the report still has the time it arrived (loopback: well under 100 ms, generously);
/// timed when read, the same run shows the hold (at least 800 ms: physics).
fn assert_arrival_times_survive_a_late_read(test: &str, url: &str, extra: &[&str]) {
    let kernel = held_run(url, extra, None);
    if kernel["timestamps"] != "kernel" {
        // A kernel or sandbox that refuses SO_TIMESTAMPING: nothing here can be checked (the
        // fallback is tested by refused_timestamps_fall_back_to_reading_the_clock).
        return skip(
            test,
            &format!(
                "the kernel gave no receive timestamps ({})",
                kernel["timestamps"]
            ),
        );
    }
    let held = Duration::from_millis(HOLD_MS).as_secs_f64();
    // Each read came at least `held` after its request went out...
    let user = held_run(url, extra, Some("user"));
    assert!(
        user["timestamps"]
            .as_str()
            .is_some_and(|t| t.starts_with("user: forced")),
        "{}",
        user["timestamps"]
    );
    assert!(
        secs(&user, "response_time_p50") >= held,
        "timed when read, a held read shows the hold: {user}"
    );
    // ...but the kernel's stamps keep when the bytes arrived. The median, generously bounded:
    // on a loaded machine the target itself may be descheduled for a while now and then.
    for key in ["response_time_p50", "latency_p50"] {
        assert!(secs(&kernel, key) < held / 2.0, "{key}: {kernel}");
    }
    assert!(secs(&kernel, "mean_response_time") < held, "{kernel}");
    assert!(secs(&kernel, "response_time_p50") > 0.0);
    // The wall clock cannot have moved by anything like the hold in a second.
    assert!(
        secs(&kernel, "timestamps_clock_drift").abs() < 0.01,
        "{kernel}"
    );
    // The corrected times still count from the intended send: the sends themselves were held
    // (request 1 and 2 went out when the first hold ended, 200 and 100 ms late).
    assert!(
        secs(&kernel, "corrected_response_time_p99") >= 0.15,
        "{kernel}"
    );
}

#[test]
fn a_response_read_late_keeps_its_arrival_time() {
    let m = mock_ok();
    assert_arrival_times_survive_a_late_read(
        "a_response_read_late_keeps_its_arrival_time",
        &format!("{}/", m.url()),
        &[],
    );
}

#[test]
fn a_tls_response_read_late_keeps_the_time_its_record_arrived() {
    let m = mock(MockConfig {
        tls: true,
        error_rate: 0.0,
        ..MockConfig::default()
    });
    let dir = std::env::temp_dir().join(format!("pacer-ts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.pem");
    m.write_ca_cert_pem(&ca).unwrap();
    let ca = ca.to_string_lossy().into_owned();
    assert_arrival_times_survive_a_late_read(
        "a_tls_response_read_late_keeps_the_time_its_record_arrived",
        &format!("{}/", m.url()),
        &["--ca-cert", &ca],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Timestamps refused: the report says `user` with the reason, every request is still counted
/// and timed, and no drift is claimed.
#[test]
fn refused_timestamps_fall_back_to_reading_the_clock() {
    let m = mock(MockConfig {
        delay: ms(20.0),
        error_rate: 0.0,
        ..MockConfig::default()
    });
    let url = format!("{}/", m.url());
    let r = bench(
        &url,
        &["--qps", "50", "--duration", "1", "--num_workers", "10"],
        &[("PACER_TIMESTAMPS", "user".to_string())],
    );
    assert_eq!(
        r["timestamps"], "user: forced by PACER_TIMESTAMPS=user",
        "{r}"
    );
    assert!(r.get("timestamps_clock_drift").is_none(), "{r}");
    assert_eq!(r["total_requests"], 50);
    assert_eq!(r["successes"], 50, "{}", r["error_counts"]);
    assert_eq!(m.counters().requests, 50);
    // The mock waits 20 ms before answering: physics bounds the times from below; a loaded
    // machine only from above, generously.
    let p50 = secs(&r, "response_time_p50");
    assert!((0.02..2.0).contains(&p50), "{p50}");
    assert!(secs(&r, "latency_p50") >= 0.02);
}

/// With kernel stamps, a slow target's response time is the target's delay, whether or not the
/// lane slept through its arrival waiting for the next send (2 requests per second here).
#[test]
fn a_lane_that_sleeps_until_its_next_send_still_times_each_response() {
    let m = mock(MockConfig {
        delay: ms(30.0),
        error_rate: 0.0,
        ..MockConfig::default()
    });
    let url = format!("{}/", m.url());
    let r = bench(
        &url,
        &["--qps", "1", "--duration", "4", "--num_workers", "1"],
        &[],
    );
    assert_eq!(r["successes"], 4, "{r}");
    let p50 = secs(&r, "response_time_p50");
    // At least the delay; with kernel stamps far less than the second the lane may sleep
    // before it reads (the median: one stall of a busy machine does not move it).
    assert!(p50 >= 0.03, "{p50}");
    if r["timestamps"] == "kernel" {
        assert!(p50 < 0.5, "{r}");
    } else {
        skip(
            "a_lane_that_sleeps_until_its_next_send_still_times_each_response",
            &format!(
                "the kernel gave no receive timestamps ({}): the sleeping lane's arrival times \
                 were not checked",
                r["timestamps"]
            ),
        );
    }
    assert_eq!(r["config"]["threads"], 1);
    assert!(
        r["config"]["threads_reason"]
            .as_str()
            .is_some_and(|s| s.starts_with("fixed rate")),
        "{r}"
    );
}
