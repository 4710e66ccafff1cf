//! One run split over N processes (machines, pods of a Kubernetes Indexed Job) and merged back
//! into one report, exactly.
//!
//! This module owns what the shards and the merge agree on, as pure data and functions:
//! - [`ShardIndex`]: `i/N` (or `env/N`, reading `JOB_COMPLETION_INDEX` as Kubernetes sets it).
//!   Shard `i` sends the requests `j` of the full plan with `j mod N == i`. A setting of the
//!   plan (`crate::plan::shard_index`), which the engine reads too; re-exported here.
//! - [`fingerprint`]: a stable hash of what defines a plan's schedule and request, so states of
//!   different plans are never merged. Computed here from a plan, when a state is written (the
//!   plan does not know about shards' states).
//! - [`state`]: the [`ShardState`] a shard writes (`--state`), versioned, one JSON line: the
//!   run's own statistics (`engine::packed`) and the report's settings (`report::Settings`),
//!   under the version, the fingerprint and the shard index.
//! - [`merge`](mod@merge): states in, one merged run out, or a refusal that names the problem.
//! - [`sources`]: `pacer merge`'s inputs (files, directories, standard input) merged in two
//!   passes, so memory stays flat.
//! - [`report`]: a run's state, and a merged run as the report writes it (the same JSON and text
//!   as one process's run, plus `shards`, `start_skew`, `timeline_alignment` and
//!   `percentile_rank_error`).
//! - [`time`]: `--start-at` times (unix seconds, RFC 3339) and their display: the leaf
//!   [`crate::wall`], re-exported.
//! - [`timeline`]: the merge's placing of the shards' timelines on one wall-clock grid.
//!
//! Splitting the schedule and waiting for the start belong to the engine; the report's fields and
//! layout belong to `crate::report`, which writes a merged run as it writes any.

pub mod merge;
pub mod report;
pub mod sources;
pub mod state;
pub mod timeline;

use ring::digest::{Context, SHA256};

pub use crate::plan::ShardIndex;
pub use crate::plan::shard_index::{INDEX_ENV, MAX_SHARDS};
use crate::plan::{Arrival, BodyMode, Plan, Rate};
/// Wall-clock times live in the leaf [`crate::wall`], which the engine reads too.
pub use crate::wall as time;
pub use crate::wall::WallTimes;
pub use merge::{MergeError, Merged, ShardLine, merge};
pub use sources::{LoadError, merge_sources};
pub use state::{STATE_VERSION, ShardState, StateError};

/// The plan's fingerprint: the first 128 bits of a SHA-256, in hex, over what decides which
/// requests are sent when, what they are, and what counts as their failure: the URL, the rate,
/// the duration and request count, the arrival process and its seed, `num_workers`, the timeout,
/// how bodies are read, and the request bytes (with many prompts, every distinct request and the
/// order they are sent in). Not the shard, the start time, the threads, TLS trust or real-time
/// scheduling, which may differ between shards of one run.
///
/// The credentials of every `Authorization` header (the LLM token, sent as `Bearer <token>`, or
/// one given with `-H`) are blanked from the request bytes first, so the fingerprint, which
/// travels in states and reports, is no function of them. Other headers are hashed with the
/// rest; SHA-256 does not reveal them.
pub fn fingerprint(plan: &Plan) -> String {
    let first = plan.requests.first().to_vec();
    let mut text = Vec::with_capacity(first.len() + 256);
    let rate = match plan.rate {
        Rate::PerSecond(q) => format!("{:016x}", q.to_bits()),
        Rate::Max => "max".into(),
    };
    let arrival = match plan.arrival {
        Arrival::Constant => "constant".to_string(),
        Arrival::Poisson { seed } => format!("poisson {seed}"),
    };
    let body = match plan.body_mode {
        BodyMode::Plain => "plain",
        BodyMode::Sse => "sse",
        BodyMode::WholeJson => "whole_json",
    };
    text.extend_from_slice(
        format!(
            "pacer plan 1\nurl {}\nrate {rate}\nduration_ns {}\ncount {}\narrival {arrival}\n\
             num_workers {}\ntimeout_ns {}\nbody {body}\nrequest {}\n",
            plan.url,
            plan.duration.as_nanos(),
            plan.count,
            plan.num_workers,
            plan.timeout.as_nanos(),
            first.len(),
        )
        .as_bytes(),
    );
    // Stages decide when each request goes as much as the rate does (a plain run's fingerprint
    // is unchanged: it has none).
    if !plan.stages.is_empty() {
        text.extend_from_slice(format!("ramp {}\nstages", plan.ramp).as_bytes());
        for st in &plan.stages {
            text.extend_from_slice(
                format!(" {:016x}:{:016x}", st.qps.to_bits(), st.duration.to_bits()).as_bytes(),
            );
        }
        text.push(b'\n');
    }
    let add = |bytes: &[u8], text: &mut Vec<u8>| blank_credentials(bytes, text);
    add(&first, &mut text);
    let mut hash = Context::new(&SHA256);
    hash.update(&text);
    // A run of many prompts: every distinct request, then which one each request sends. Hashed
    // as they come, so a large data set is not copied once more. (A run of one request hashes
    // what it always did, so its fingerprint is unchanged.)
    let r = &plan.requests;
    if r.distinct().len() > 1 || r.slots().len() > 1 {
        hash.update(
            format!(
                "requests {} slots {}\n",
                r.distinct().len(),
                r.slots().len()
            )
            .as_bytes(),
        );
        for request in r.distinct() {
            text.clear();
            text.extend_from_slice(format!("{}\n", request.len()).as_bytes());
            add(&request.to_vec(), &mut text);
            hash.update(&text);
        }
        for slot in r.slots() {
            hash.update(&slot.to_le_bytes());
        }
    }
    let d = hash.finish();
    d.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Appends `request` with the credentials of each `Authorization` header of its head written as
/// `<secret>`, after the scheme when there is one (`Authorization: Bearer <secret>`: the bytes a
/// run of an LLM token hashed before, so its fingerprint is unchanged).
fn blank_credentials(request: &[u8], out: &mut Vec<u8>) {
    let head_len = request
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(request.len(), |i| i + 2);
    let (head, body) = request.split_at(head_len);
    for line in head.split_inclusive(|&b| b == b'\n') {
        let colon = line.iter().position(|&b| b == b':');
        let Some(colon) = colon.filter(|&c| line[..c].eq_ignore_ascii_case(b"authorization"))
        else {
            out.extend_from_slice(line);
            continue;
        };
        let ending = if line.ends_with(b"\r\n") {
            2
        } else {
            usize::from(line.ends_with(b"\n"))
        };
        let value = &line[colon + 1..line.len() - ending];
        let credentials = value.trim_ascii_start();
        let lead = value.len() - credentials.len();
        let scheme = credentials
            .iter()
            .position(|&b| b == b' ')
            .map_or(0, |sp| sp + 1);
        out.extend_from_slice(&line[..colon + 1 + lead]);
        out.extend_from_slice(&credentials[..scheme]);
        out.extend_from_slice(b"<secret>");
        out.extend_from_slice(&line[line.len() - ending..]);
    }
    out.extend_from_slice(body);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Input, Limits, LlmInput};

    fn plan_of(i: &Input) -> Plan {
        Plan::new(i, &Limits::default()).unwrap()
    }

    fn stages(list: &[(f64, f64)]) -> Vec<crate::plan::stages::Stage> {
        list.iter()
            .map(|&(qps, duration)| crate::plan::stages::Stage { qps, duration })
            .collect()
    }

    #[test]
    fn fingerprint_covers_the_schedule_and_request_only() {
        let mut base = Input::new("http://127.0.0.1:9/x", Rate::PerSecond(100.0), 2.0);
        base.num_workers = Some(8);
        base.poisson = true;
        base.seed = Some(7);
        let fp = fingerprint(&plan_of(&base));
        assert_eq!(fp.len(), 32);
        assert!(fp.bytes().all(|b| b.is_ascii_hexdigit()));
        // Stable: the same inputs give the same fingerprint, and threads, TLS trust and real-time
        // scheduling do not enter it.
        let mut same = base.clone();
        same.threads = Some(3);
        same.insecure = true;
        same.realtime = true;
        assert_eq!(fingerprint(&plan_of(&same)), fp);
        // Each of these changes the plan.
        type Change = Box<dyn Fn(&mut Input)>;
        let changes: Vec<(&str, Change)> = vec![
            ("url", Box::new(|i| i.url = "http://127.0.0.1:9/y".into())),
            ("qps", Box::new(|i| i.qps = Rate::PerSecond(101.0))),
            ("duration", Box::new(|i| i.duration = 3.0)),
            ("seed", Box::new(|i| i.seed = Some(8))),
            ("arrival", Box::new(|i| i.poisson = false)),
            ("workers", Box::new(|i| i.num_workers = Some(9))),
            ("timeout", Box::new(|i| i.timeout = Some(3.0))),
            ("method", Box::new(|i| i.method = Some("POST".into()))),
            ("body", Box::new(|i| i.body = Some("x".into()))),
            (
                "header",
                Box::new(|i| i.headers.push(("X-A".into(), "1".into()))),
            ),
            // The same peak, length and count, as stages (stepped, then ramped the other way).
            (
                "stages",
                Box::new(|i| i.set_stages(stages(&[(100.0, 1.0), (100.0, 1.0)]), false)),
            ),
            (
                "ramp",
                Box::new(|i| i.set_stages(stages(&[(100.0, 0.0), (100.0, 2.0)]), true)),
            ),
        ];
        let staged = |list: &[(f64, f64)], ramp: bool| {
            let mut i = base.clone();
            i.set_stages(stages(list), ramp);
            fingerprint(&plan_of(&i))
        };
        assert_ne!(
            staged(&[(50.0, 1.0), (150.0, 1.0)], false),
            staged(&[(150.0, 1.0), (50.0, 1.0)], false),
            "the same stages in another order"
        );
        assert_ne!(
            staged(&[(100.0, 1.0), (100.0, 1.0)], false),
            staged(&[(100.0, 1.0), (100.0, 1.0)], true)
        );
        for (what, change) in changes {
            let mut i = base.clone();
            change(&mut i);
            assert_ne!(fingerprint(&plan_of(&i)), fp, "{what}");
        }
        // The token is blanked: two tokens, one fingerprint, and it is not the token's hash.
        let llm = |token: &str| {
            let mut i = Input::new(
                "http://127.0.0.1:9/v1/completions",
                Rate::PerSecond(5.0),
                1.0,
            );
            i.llm = Some(LlmInput {
                token: token.into(),
                max_tokens: 3,
                ..LlmInput::example()
            });
            let p = plan_of(&i);
            fingerprint(&p)
        };
        assert_eq!(llm("token-one-1111"), llm("token-two-2222"));
    }

    #[test]
    fn credentials_are_blanked_in_the_head_only() {
        let mut out = Vec::new();
        blank_credentials(
            b"POST / HTTP/1.1\r\nauthorization:  Bearer tok\r\nX-A: tok\r\nAuthorization: key\r\n\r\n\
              Authorization: body",
            &mut out,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "POST / HTTP/1.1\r\nauthorization:  Bearer <secret>\r\nX-A: tok\r\n\
             Authorization: <secret>\r\n\r\nAuthorization: body"
        );
    }

    /// Shards of one plan share its fingerprint, and the whole plan run alone does too: the
    /// shard, the start time and the threads are not in it.
    #[test]
    fn shards_of_one_plan_share_its_fingerprint() {
        let mut i = Input::new("http://127.0.0.1:9/x", Rate::PerSecond(50.0), 2.0);
        i.num_workers = Some(10);
        i.shard = ShardIndex::new(2, 3).unwrap();
        i.start_at = Some(1_767_225_600_000_000_000);
        let mut other = i.clone();
        other.shard = ShardIndex::new(0, 3).unwrap();
        other.threads = Some(1);
        other.start_at = None;
        let whole = Input {
            shard: ShardIndex::WHOLE,
            ..i.clone()
        };
        let fp = fingerprint(&plan_of(&i));
        assert_eq!(fingerprint(&plan_of(&other)), fp);
        assert_eq!(fingerprint(&plan_of(&whole)), fp);
    }

    /// The shards build on the plan and the engine, never the other way: no code under
    /// `src/engine` or `src/plan` names this module (issue 18, "No arrow up").
    #[test]
    fn neither_the_engine_nor_the_plan_imports_the_shards() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut seen = 0;
        for dir in ["engine", "plan"] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let path = entry.unwrap().path();
                let text = std::fs::read_to_string(&path).unwrap();
                seen += 1;
                for (n, line) in text.lines().enumerate() {
                    let code = line.trim_start();
                    assert!(
                        code.starts_with("//") || !code.contains("crate::shard"),
                        "{}:{}: {line}",
                        path.display(),
                        n + 1
                    );
                }
            }
        }
        assert!(seen > 10, "read the engine's and the plan's files");
    }
}
