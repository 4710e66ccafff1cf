//! [`RunStats`](super::RunStats) as other processes read it (a shard's state, merged by
//! `pacer merge`): the one serialization of the run's statistics, field by field as `serde`
//! writes them, with the parts that grow with the run packed:
//!
//! - [`timings`]: every non-empty timing family by its [`crate::metric`] name, packed by
//!   [`crate::stats::pack`] (base64), so percentiles merge exactly.
//! - [`errors`]: the error buckets as a list of `{"status": 503, "count": n}` and
//!   `{"failure": "timeout", "count": n}` (JSON object keys are strings; the kind of each bucket
//!   stays a typed field, not a string to parse).
//! - [`timeline`]: the interval and the non-empty intervals packed (layout below).
//! - [`secs`]: a duration as seconds, refused unless finite, non-negative and within a run's
//!   length; [`scheduling`]: the word a state writes for it.
//!
//! Reading never trusts the text: every pack is checked as `stats::pack` checks it, and a value
//! no run can have is a named error, never a panic.
//!
//! The timeline's packed layout, version 1, every integer LEB128 (as `stats::pack`):
//!
//! ```text
//! u8 version (1)   k (non-empty intervals)
//! per interval: index − previous index − 1 (previous from −1)
//!               scheduled sent completed successes errors not_sent output_tokens
//!               3 histograms (response_time, dispatch_delay, time_to_first_token), each:
//!                 b (buckets), b × (bucket − previous bucket − 1, count), then if b > 0:
//!                 min, max (as stats::pack's plain values)
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::timeline::{Interval, SparseHistogram, Tally, Timeline};
use super::{ErrorKey, Scheduling, Timings};
use crate::plan::defaults::{CLI_MAX_DURATION, MAX_INTERVALS};
use crate::stats::pack::{PackError, Reader, pack_base64, put_plain, put_varint, unpack_base64};

/// The timeline's packed layout this pacer writes, and the newest it reads.
pub const TIMELINE_LAYOUT: u8 = 1;

/// Every non-empty timing family by its `metric` name, packed.
pub mod timings {
    use super::*;

    pub fn serialize<S: Serializer>(t: &Timings, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(
            t.iter()
                .filter(|(_, r)| r.count() > 0)
                .map(|(m, r)| (m.name, pack_base64(r))),
        )
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timings, D::Error> {
        let packed = BTreeMap::<String, String>::deserialize(d)?;
        let mut t = Timings::default();
        for (name, text) in packed {
            // A family this pacer does not know would be dropped from the report without a word.
            let m = crate::metric::by_name(&name).ok_or_else(|| {
                D::Error::custom(format!(
                    "{name} is not a timing family (`pacer metrics` lists them)"
                ))
            })?;
            t[m.id] = unpack_base64(&text)
                .map_err(|e| D::Error::custom(format!("timing family {name}: {e}")))?;
        }
        Ok(t)
    }
}

/// One error bucket with its count.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Bucket {
    Status(u16),
    Failure(String),
}

#[derive(Serialize, Deserialize)]
struct Counted {
    #[serde(flatten)]
    bucket: Bucket,
    count: u64,
}

/// The error buckets, statuses first (their order in the map).
pub mod errors {
    use super::*;

    pub fn serialize<S: Serializer>(e: &BTreeMap<ErrorKey, u64>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(e.iter().map(|(k, &count)| Counted {
            bucket: match k {
                ErrorKey::Status(c) => Bucket::Status(*c),
                ErrorKey::Name(n) => Bucket::Failure(n.clone()),
            },
            count,
        }))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<ErrorKey, u64>, D::Error> {
        let mut out = BTreeMap::new();
        for c in Vec::<Counted>::deserialize(d)? {
            let key = match c.bucket {
                Bucket::Status(s) => ErrorKey::Status(s),
                Bucket::Failure(n) => ErrorKey::Name(n),
            };
            if out.insert(key, c.count).is_some() {
                return Err(D::Error::custom("an error bucket is listed twice"));
            }
        }
        Ok(out)
    }
}

/// A duration as seconds.
pub mod secs {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let x = f64::deserialize(d)?;
        if x.is_finite() && (0.0..=CLI_MAX_DURATION).contains(&x) {
            Ok(Duration::from_secs_f64(x))
        } else {
            Err(D::Error::custom(format!(
                "{x:?} is not a number of seconds from 0 to {CLI_MAX_DURATION}"
            )))
        }
    }
}

/// How the threads were scheduled, in a word: `normal`, `realtime`, `realtime refused: <why>`.
pub mod scheduling {
    use super::*;

    pub fn serialize<S: Serializer>(x: &Scheduling, s: S) -> Result<S::Ok, S::Error> {
        match x {
            Scheduling::Normal => s.serialize_str("normal"),
            Scheduling::Realtime => s.serialize_str("realtime"),
            Scheduling::RealtimeDenied(e) => s.serialize_str(&format!("realtime refused: {e}")),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Scheduling, D::Error> {
        let word = String::deserialize(d)?;
        Ok(match word.as_str() {
            "realtime" => Scheduling::Realtime,
            w => match w.strip_prefix("realtime refused: ") {
                Some(e) => Scheduling::RealtimeDenied(e.to_string()),
                None => Scheduling::Normal,
            },
        })
    }
}

/// A timeline: its interval and latest placement in plain JSON (a merge checks them without
/// unpacking), the non-empty intervals packed (the module docs' layout). Only a timeline that
/// is on is written ([`Timeline::is_on`]).
#[derive(Serialize, Deserialize)]
struct PackedTimeline {
    /// The interval, nanoseconds.
    interval_ns: u64,
    /// The latest moment anything was placed at, nanoseconds from the start.
    last_ns: u64,
    /// The non-empty intervals, packed, base64.
    intervals: String,
}

pub mod timeline {
    use super::*;

    pub fn serialize<S: Serializer>(t: &Timeline, s: S) -> Result<S::Ok, S::Error> {
        PackedTimeline {
            interval_ns: u64::try_from(t.interval().as_nanos()).unwrap_or(u64::MAX),
            last_ns: t.last_ns(),
            intervals: STANDARD.encode(pack(t.intervals())),
        }
        .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timeline, D::Error> {
        let p = PackedTimeline::deserialize(d)?;
        let e = |e: PackError| D::Error::custom(format!("timeline: {e}"));
        if p.interval_ns == 0 {
            return Err(e(PackError::Inconsistent("a timeline's interval is 0")));
        }
        let bytes = STANDARD
            .decode(&p.intervals)
            .map_err(|_| e(PackError::Base64))?;
        let intervals = dense(unpack(&bytes).map_err(e)?);
        Ok(Timeline::rebuilt(
            Duration::from_nanos(p.interval_ns),
            intervals,
            p.last_ns,
        ))
    }
}

fn pack(intervals: &[Interval]) -> Vec<u8> {
    let nonempty = intervals
        .iter()
        .enumerate()
        .filter(|(_, iv)| **iv != Interval::default());
    let mut out = vec![TIMELINE_LAYOUT];
    put_varint(&mut out, nonempty.clone().count() as u64);
    let mut prev: i64 = -1;
    for (k, iv) in nonempty {
        put_varint(&mut out, (k as i64 - prev - 1) as u64);
        prev = k as i64;
        let n = iv.n;
        for c in [
            n.scheduled,
            n.sent,
            n.completed,
            n.successes,
            n.errors,
            n.not_sent,
            n.output_tokens,
        ] {
            put_varint(&mut out, c);
        }
        for h in [
            &iv.response_time,
            &iv.dispatch_delay,
            &iv.time_to_first_token,
        ] {
            put_histogram(&mut out, h);
        }
    }
    out
}

/// The non-empty intervals by index, ascending, checked.
fn unpack(bytes: &[u8]) -> Result<Vec<(usize, Interval)>, PackError> {
    let mut rd = Reader::new(bytes);
    let version = rd.byte()?;
    if version > TIMELINE_LAYOUT {
        return Err(PackError::NewerVersion(version));
    }
    if version == 0 {
        return Err(PackError::Inconsistent("layout 0 does not exist"));
    }
    let k = rd.varint()?;
    if k > MAX_INTERVALS as u64 {
        return Err(PackError::Inconsistent(
            "a timeline has more intervals than a run may",
        ));
    }
    let mut out = Vec::with_capacity(rd.cap_for(k));
    let mut next: u64 = 0;
    for _ in 0..k {
        let index = next
            .checked_add(rd.varint()?)
            .filter(|&i| i < MAX_INTERVALS as u64)
            .ok_or(PackError::Inconsistent(
                "a timeline interval lies past the last a run may have",
            ))?;
        next = index + 1;
        // In the order `pack` wrote them (struct fields are evaluated as written).
        let n = Tally {
            scheduled: rd.varint()?,
            sent: rd.varint()?,
            completed: rd.varint()?,
            successes: rd.varint()?,
            errors: rd.varint()?,
            not_sent: rd.varint()?,
            output_tokens: rd.varint()?,
        };
        let iv = Interval {
            n,
            response_time: read_histogram(&mut rd)?,
            dispatch_delay: read_histogram(&mut rd)?,
            time_to_first_token: read_histogram(&mut rd)?,
        };
        out.push((index as usize, iv));
    }
    if !rd.at_end() {
        return Err(PackError::Trailing);
    }
    Ok(out)
}

/// Intervals by index into one list from 0, the empty ones filled in.
fn dense(sparse: Vec<(usize, Interval)>) -> Vec<Interval> {
    let mut out = Vec::new();
    for (k, iv) in sparse {
        if out.len() <= k {
            out.resize_with(k + 1, Interval::default);
        }
        out[k] += &iv;
    }
    out
}

fn put_histogram(out: &mut Vec<u8>, h: &SparseHistogram) {
    put_varint(out, h.buckets() as u64);
    let mut prev: i64 = -1;
    for (b, n) in h.nonempty() {
        put_varint(out, (b as i64 - prev - 1) as u64);
        prev = b as i64;
        put_varint(out, n);
    }
    if let Some((min, max)) = h.extremes() {
        put_plain(out, min);
        put_plain(out, max);
    }
}

fn read_histogram(rd: &mut Reader<'_>) -> Result<SparseHistogram, PackError> {
    let b = rd.varint()?;
    if b > crate::stats::histogram::BUCKETS as u64 {
        return Err(PackError::Inconsistent("more histogram buckets than exist"));
    }
    let mut buckets = Vec::with_capacity(b as usize);
    let mut next: u64 = 0;
    for _ in 0..b {
        let i = next
            .checked_add(rd.varint()?)
            .ok_or(PackError::Inconsistent("a histogram bucket past the last"))?;
        next = i.saturating_add(1);
        buckets.push((usize::try_from(i).unwrap_or(usize::MAX), rd.varint()?));
    }
    let extremes = if b > 0 {
        Some((rd.plain()?, rd.plain()?))
    } else {
        None
    };
    SparseHistogram::from_parts(&buckets, extremes).map_err(PackError::Inconsistent)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::engine::outcome::{Completed, Failure, Outcome};
    use std::time::Instant;

    const MS: Duration = Duration::from_millis(1);

    /// A timeline with a bit of everything: successes with first tokens, an HTTP error, a
    /// timeout, a request never sent, over 1 s intervals, quiet from 4 s to 6 s.
    pub(crate) fn busy(t0: Instant, seed: u64) -> Timeline {
        let mut t = Timeline::new(t0, Duration::from_secs(1));
        let at = |ms: u64| t0 + MS * ms as u32;
        for j in 0..40u64 {
            let intended = (j * 53 + seed * 7) % 2000 + if j % 3 == 0 { 6000 } else { 0 };
            let mut c = Completed::unsent(0, at(intended), 0, Failure::NotSent, at(intended));
            match j % 5 {
                4 => c.ended = at(intended + 1500),
                3 => {
                    c.dispatch = Some(at(intended + 1));
                    c.ended = at(intended + 900);
                    c.outcome = Outcome::Failed(Failure::Timeout);
                }
                2 => {
                    c.dispatch = Some(at(intended + 2));
                    c.end_at = Some(at(intended + 30 + j));
                    c.ended = at(intended + 30 + j);
                    c.outcome = Outcome::Status(503);
                }
                _ => {
                    c.dispatch = Some(at(intended + j % 4));
                    c.first_token_at = Some(at(intended + 11 + j));
                    c.end_at = Some(at(intended + 50 + 3 * j));
                    c.ended = at(intended + 50 + 3 * j);
                    c.outcome = Outcome::Success;
                    c.output_tokens = j;
                }
            }
            t.record(&c, &crate::engine::request_values(&c));
        }
        t
    }

    #[derive(serde::Serialize, serde::Deserialize)]
    struct Holder(#[serde(with = "timeline")] Timeline);

    fn packed_of(t: &Timeline) -> PackedTimeline {
        serde_json::from_value(serde_json::to_value(Holder(t.clone())).unwrap()).unwrap()
    }

    fn read(p: &PackedTimeline) -> Result<Timeline, String> {
        let v = serde_json::to_value(p).unwrap();
        serde_json::from_value::<Holder>(v)
            .map(|h| h.0)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_timeline_round_trips_through_its_packed_form() {
        let t = busy(Instant::now(), 1);
        assert!(t.intervals().iter().any(|iv| *iv == Interval::default()));
        let s = packed_of(&t);
        assert_eq!(s.interval_ns, 1_000_000_000);
        let t2 = read(&s).unwrap();
        assert_eq!(t2.intervals(), t.intervals());
        assert_eq!(t2.interval(), t.interval());
        assert_eq!(t2.last_ns(), t.last_ns());
        let e = Duration::from_millis(9200);
        assert_eq!(t2.entries(e), t.entries(e));
        // Compact: the empty intervals and empty buckets take nothing.
        assert!(
            s.intervals.len() < 600,
            "{} base64 bytes",
            s.intervals.len()
        );
    }

    #[test]
    fn packed_intervals_are_checked() {
        let s = packed_of(&busy(Instant::now(), 2));
        let bytes = STANDARD.decode(&s.intervals).unwrap();
        let with = |b: &[u8]| PackedTimeline {
            intervals: STANDARD.encode(b),
            interval_ns: s.interval_ns,
            last_ns: s.last_ns,
        };
        let says = |b: &[u8], what: &str| {
            let e = read(&with(b)).err().unwrap();
            assert!(e.contains(what), "{e}");
        };
        says(&bytes[..bytes.len() - 3], &PackError::Truncated.to_string());
        let mut trailing = bytes.clone();
        trailing.push(0);
        says(&trailing, &PackError::Trailing.to_string());
        let mut newer = bytes.clone();
        newer[0] = 2;
        says(&newer, &PackError::NewerVersion(2).to_string());
        // An interval index past the last a run may have.
        let far = [1u8, 1, 0xa0, 0x8d, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            unpack(&far)
                .err()
                .map(|e| matches!(e, PackError::Inconsistent(_))),
            Some(true)
        );
        // One bucket whose smallest sample is not in it.
        let mut h = Vec::new();
        put_varint(&mut h, 1);
        put_varint(&mut h, 40);
        put_varint(&mut h, 3);
        put_plain(&mut h, 5.0);
        put_plain(&mut h, 5.0);
        let mut bad = vec![1u8, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        bad.extend_from_slice(&h);
        bad.extend_from_slice(&[0, 0]);
        assert_eq!(
            unpack(&bad)
                .err()
                .map(|e| matches!(e, PackError::Inconsistent(_))),
            Some(true)
        );
        let zero = PackedTimeline {
            interval_ns: 0,
            ..with(&bytes)
        };
        assert!(read(&zero).is_err());
        assert_eq!(unpack(b"x").err(), Some(PackError::NewerVersion(b'x')));
    }

    /// Every field a state carries reads back as written: counts, error buckets by kind, the
    /// scheduling word, the wall times, each stage, the health inputs, the timeline; the
    /// process's own fields (the achieved rate, the clocks) are not written.
    #[test]
    fn run_stats_round_trip() {
        use crate::engine::RunStats;
        use crate::metric::Id;
        let mut s = RunStats {
            total_requests: 9,
            successes: 5,
            sent: 8,
            elapsed: Duration::from_millis(1500),
            achieved_qps: 3.0,
            scheduling: Scheduling::RealtimeDenied("EPERM".into()),
            timeline: busy(Instant::now(), 3),
            ..RunStats::default()
        };
        s.errors.insert(ErrorKey::Status(503), 3);
        s.errors.insert(ErrorKey::Name("timeout".into()), 1);
        s.timings[Id::ResponseTime].record(0.002);
        s.wall.start = 1_767_225_600_000_000_000;
        s.stages = vec![s.clone()];
        let line = serde_json::to_string(&s).unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["scheduling"], "realtime refused: EPERM");
        assert_eq!(v["elapsed"], 1.5);
        assert_eq!(v["wall"]["start_unix_ns"], 1_767_225_600_000_000_000_i64);
        assert!(v.get("achieved_qps").is_none() && v.get("clock").is_none());
        let back: RunStats = serde_json::from_str(&line).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), line);
        assert_eq!(back.errors, s.errors);
        assert_eq!(back.scheduling, s.scheduling);
        assert_eq!(back.timeline.intervals(), s.timeline.intervals());
        assert_eq!(back.stages.len(), 1);
        // A family this pacer does not know, a duration no run has, a bucket given twice.
        for (change, says) in [
            (
                r#""timings":{"response_tim":"AQ"}"#,
                "response_tim is not a timing family",
            ),
            (r#""elapsed":-1.0"#, "-1.0 is not a number of seconds"),
        ] {
            let key = change.split(':').next().unwrap();
            let mut w = v.clone();
            let (k, val) = change.split_once(':').unwrap();
            w[k.trim_matches('"')] = serde_json::from_str(val).unwrap();
            let e = serde_json::from_value::<RunStats>(w)
                .err()
                .unwrap()
                .to_string();
            assert!(e.contains(says), "{key}: {e}");
        }
        let mut w = v.clone();
        w["errors"] = serde_json::json!([{"status": 503, "count": 1}, {"status": 503, "count": 2}]);
        let e = serde_json::from_value::<RunStats>(w)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("listed twice"), "{e}");
    }
}
