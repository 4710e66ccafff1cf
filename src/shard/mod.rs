//! One run split over N processes (machines, pods of a Kubernetes Indexed Job) and merged back
//! into one report, exactly.
//!
//! This module owns what the shards and the merge agree on, as pure data and functions:
//! - [`ShardIndex`]: `i/N` (or `env/N`, reading `JOB_COMPLETION_INDEX` as Kubernetes sets it).
//!   Shard `i` sends the requests `j` of the full plan with `j mod N == i`.
//! - [`fingerprint`]: a stable hash of what defines a plan's schedule and request, so states of
//!   different plans are never merged.
//! - [`state`]: the [`ShardState`] a shard writes (`--state`), versioned, one JSON line.
//! - [`merge`](mod@merge): states in, one merged run out, or a refusal that names the problem.
//! - [`sources`]: `pacer merge`'s inputs (files, directories, standard input) merged in two
//!   passes, so memory stays flat.
//! - [`report`]: a run's state, and a merged run as the report writes it (the same JSON and text
//!   as one process's run, plus `shards`, `start_skew`, `timeline_alignment` and
//!   `percentile_rank_error`).
//! - [`time`]: `--start-at` times (unix seconds, RFC 3339) and their display.
//! - [`timeline`]: the run's timeline in a state, and the merge's placing of the shards'
//!   timelines on one wall-clock grid.
//!
//! Splitting the schedule and waiting for the start belong to the engine; the report's fields and
//! layout belong to `crate::report`, which writes a merged run as it writes any.

pub mod merge;
pub mod report;
pub mod sources;
pub mod state;
pub mod time;
pub mod timeline;

use std::fmt;

use ring::digest::{Context, SHA256};

use crate::plan::{Arrival, BodyMode, Plan, Rate};
pub use merge::{MergeError, Merged, ShardLine, merge};
pub use report::WallTimes;
pub use sources::{LoadError, merge_sources};
pub use state::{Counts, LlmEcho, PlanEcho, STATE_VERSION, ShardState, StageState, StateError};

/// The environment variable Kubernetes sets to a pod's index in an Indexed Job.
pub const INDEX_ENV: &str = "JOB_COMPLETION_INDEX";
/// The most shards a run may be split into.
pub const MAX_SHARDS: u32 = 100_000;

/// Shard `index` of `count`, written `index/count`; always `index < count <= MAX_SHARDS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShardIndex {
    index: u32,
    count: u32,
}

impl ShardIndex {
    /// The whole run in one process.
    pub const WHOLE: ShardIndex = ShardIndex { index: 0, count: 1 };

    /// Shard `index` of `count`, if `index < count <= MAX_SHARDS`.
    pub fn new(index: u32, count: u32) -> Option<ShardIndex> {
        (index < count && count <= MAX_SHARDS).then_some(ShardIndex { index, count })
    }

    pub fn index(self) -> u32 {
        self.index
    }

    pub fn count(self) -> u32 {
        self.count
    }

    /// Reads `i/N`, or `env/N` with `i` from [`INDEX_ENV`] through `env` (which is
    /// `std::env::var` outside tests). `0 <= i < N <= MAX_SHARDS`.
    pub fn parse(s: &str, env: impl Fn(&str) -> Option<String>) -> Result<ShardIndex, String> {
        let (i, n) = s
            .trim()
            .split_once('/')
            .ok_or_else(|| format!("shard {s:?} is not i/N (such as 0/4) or env/N"))?;
        let count: u32 = n
            .trim()
            .parse()
            .ok()
            .filter(|n| (1..=MAX_SHARDS).contains(n))
            .ok_or_else(|| {
                format!("shard {s:?}: N must be a whole number from 1 to {MAX_SHARDS}")
            })?;
        let (text, from_env) = if i.trim() == "env" {
            let v = env(INDEX_ENV).ok_or_else(|| {
                format!(
                    "shard {s:?} reads the index from {INDEX_ENV}, which is not set (Kubernetes \
                     sets it in the pods of an Indexed Job)"
                )
            })?;
            (v, true)
        } else {
            (i.to_string(), false)
        };
        let index: u32 = text.trim().parse().map_err(|_| {
            let from = if from_env {
                format!(" ({INDEX_ENV}={text:?})")
            } else {
                String::new()
            };
            format!("shard {s:?}: the index{from} is not a whole number")
        })?;
        if index >= count {
            return Err(format!(
                "shard {s:?}: the index {index} must be below N = {count} (shards are 0 to {})",
                count - 1
            ));
        }
        Ok(ShardIndex { index, count })
    }

    /// Whether global request `j` is this shard's.
    pub fn owns(self, j: u64) -> bool {
        j % u64::from(self.count) == u64::from(self.index)
    }

    /// How many of the requests `0..total` are this shard's.
    pub fn share_of(self, total: u64) -> u64 {
        let (n, i) = (u64::from(self.count), u64::from(self.index));
        total / n + u64::from(i < total % n)
    }
}

impl fmt::Display for ShardIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl serde::Serialize for ShardIndex {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ShardIndex {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        // A state names its index; `env/N` has no meaning there.
        ShardIndex::parse(&s, |_| None).map_err(serde::de::Error::custom)
    }
}

/// The plan's fingerprint: the first 128 bits of a SHA-256, in hex, over what decides which
/// requests are sent when, what they are, and what counts as their failure: the URL, the rate,
/// the duration and request count, the arrival process and its seed, `num_workers`, the timeout,
/// how bodies are read, and the request bytes (with many prompts, every distinct request and the
/// order they are sent in). Not the shard, the start time, the threads, TLS trust or real-time
/// scheduling, which may differ between shards of one run.
///
/// `secret` (the LLM token) is blanked from the request bytes first, so the fingerprint, which
/// travels in states and reports, is no function of it. A secret header given with `-H` is hashed
/// with the rest; SHA-256 does not reveal it.
pub fn fingerprint(plan: &Plan, secret: Option<&str>) -> String {
    let first = plan.requests.first();
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
    let secret = secret.filter(|s| !s.is_empty()).map(str::as_bytes);
    let add = |bytes: &[u8], text: &mut Vec<u8>| match secret {
        Some(s) => blank(bytes, s, text),
        None => text.extend_from_slice(bytes),
    };
    add(first, &mut text);
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
            add(request, &mut text);
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

/// Appends `bytes` with every occurrence of `secret` written as `<secret>`.
fn blank(bytes: &[u8], secret: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(secret) {
            out.extend_from_slice(b"<secret>");
            i += secret.len();
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Input, Limits, LlmInput};

    fn env_with(index: Option<&str>) -> impl Fn(&str) -> Option<String> {
        let index = index.map(String::from);
        move |name| (name == INDEX_ENV).then(|| index.clone()).flatten()
    }

    #[test]
    fn shard_indices_parse_and_split_the_requests() {
        let none = env_with(None);
        assert_eq!(
            ShardIndex::parse("2/7", &none),
            Ok(ShardIndex::new(2, 7).unwrap())
        );
        assert_eq!(ShardIndex::parse(" 0/1 ", &none), Ok(ShardIndex::WHOLE));
        assert_eq!(
            ShardIndex::parse("env/4", env_with(Some("3"))),
            Ok(ShardIndex::new(3, 4).unwrap())
        );
        for (bad, says) in [
            ("7/7", "must be below N = 7"),
            ("1/0", "N must be a whole number"),
            ("x/3", "is not a whole number"),
            ("3", "is not i/N"),
            ("-1/3", "is not a whole number"),
            ("1/100001", "N must be"),
        ] {
            let e = ShardIndex::parse(bad, &none).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        let e = ShardIndex::parse("env/4", &none).unwrap_err();
        assert!(
            e.contains("JOB_COMPLETION_INDEX") && e.contains("not set"),
            "{e}"
        );
        let e = ShardIndex::parse("env/4", env_with(Some("4"))).unwrap_err();
        assert!(e.contains("below N = 4"), "{e}");
        let e = ShardIndex::parse("env/4", env_with(Some("two"))).unwrap_err();
        assert!(e.contains("JOB_COMPLETION_INDEX=\"two\""), "{e}");

        // Every request belongs to exactly one shard, and the shares add up.
        for n in [1u32, 2, 3, 7] {
            for total in [0u64, 1, 6, 7, 100, 1001] {
                let shards: Vec<_> = (0..n).filter_map(|i| ShardIndex::new(i, n)).collect();
                for j in 0..total {
                    assert_eq!(shards.iter().filter(|s| s.owns(j)).count(), 1);
                }
                let shares: u64 = shards.iter().map(|s| s.share_of(total)).sum();
                assert_eq!(shares, total);
                for s in &shards {
                    assert_eq!(
                        s.share_of(total),
                        (0..total).filter(|&j| s.owns(j)).count() as u64
                    );
                }
            }
        }
        let json = serde_json::to_string(&ShardIndex::new(1, 3).unwrap()).unwrap();
        assert_eq!(json, "\"1/3\"");
        assert!(serde_json::from_str::<ShardIndex>("\"env/3\"").is_err());
    }

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
        let fp = fingerprint(&plan_of(&base), None);
        assert_eq!(fp.len(), 32);
        assert!(fp.bytes().all(|b| b.is_ascii_hexdigit()));
        // Stable: the same inputs give the same fingerprint, and threads, TLS trust and real-time
        // scheduling do not enter it.
        let mut same = base.clone();
        same.threads = Some(3);
        same.insecure = true;
        same.realtime = true;
        assert_eq!(fingerprint(&plan_of(&same), None), fp);
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
            fingerprint(&plan_of(&i), None)
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
            assert_ne!(fingerprint(&plan_of(&i), None), fp, "{what}");
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
            fingerprint(&p, Some(token))
        };
        assert_eq!(llm("token-one-1111"), llm("token-two-2222"));
    }

    #[test]
    fn blank_replaces_every_occurrence() {
        let mut out = Vec::new();
        blank(b"a tok b tok", b"tok", &mut out);
        assert_eq!(out, b"a <secret> b <secret>");
    }
}
