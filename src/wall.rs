//! Wall-clock time, a leaf every layer reads: [`UnixNanos`], where a run sat on the wall clock
//! ([`WallTimes`], which the engine measures and a shard's state carries), `--start-at` read from
//! unix seconds or RFC 3339, and unix nanoseconds written back as RFC 3339 for people. Pure
//! arithmetic on the proleptic Gregorian calendar (Howard Hinnant's `days_from_civil` and its
//! inverse); no time zone database, since RFC 3339 carries its offset (`Z` or `±hh:mm`).

use std::time::{SystemTime, UNIX_EPOCH};

/// Nanoseconds since 1970-01-01T00:00:00Z (negative before). An i64 reaches the year 2262.
pub type UnixNanos = i64;

const NS: i64 = 1_000_000_000;

/// Where a run sits on the wall clock, and what the engine counted of its sends. Written (in a
/// shard's state) with each time's name ending `_unix_ns`.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WallTimes {
    /// The schedule's start: `--start-at`, or when the run was ready.
    #[serde(rename = "start_unix_ns")]
    pub start: UnixNanos,
    #[serde(rename = "ready_unix_ns")]
    pub ready: UnixNanos,
    #[serde(rename = "end_unix_ns")]
    pub end: UnixNanos,
    #[serde(rename = "first_dispatch_unix_ns")]
    pub first_dispatch: Option<UnixNanos>,
    #[serde(rename = "last_dispatch_unix_ns")]
    pub last_dispatch: Option<UnixNanos>,
    /// Requests handed to a connection.
    pub dispatched: u64,
}

impl WallTimes {
    /// Seconds the run was ready after its start; 0 when on time.
    pub fn start_late(&self) -> f64 {
        secs_between(self.start, self.ready).max(0.0)
    }
}

/// The wall clock now, in [`UnixNanos`]. A clock set before 1970 reads as negative.
pub fn now_unix_ns() -> UnixNanos {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX),
    }
}

/// A `--start-at` value: unix seconds (`1767225600`, `1767225600.25`) or an RFC 3339 date-time
/// (`2026-01-01T00:00:00Z`, `2026-01-01T01:00:00.5+01:00`; `t`, `z` and a space in place of `T`
/// are accepted, as RFC 3339 allows). The error says what was expected.
pub fn parse_time(s: &str) -> Result<UnixNanos, String> {
    let s = s.trim();
    let expected = || {
        format!(
            "{s:?} is not a time: give unix seconds (1767225600) or RFC 3339 with a Z or ±hh:mm \
             offset (2026-01-01T00:00:00Z)"
        )
    };
    if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') && !s.is_empty() {
        return parse_unix_seconds(s).ok_or_else(expected);
    }
    parse_rfc3339(s).map_err(|why| format!("{}: {why}", expected()))
}

/// Whole or fractional unix seconds, at most nanosecond precision is kept (further digits are
/// dropped, not rounded).
fn parse_unix_seconds(s: &str) -> Option<UnixNanos> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() || frac.contains('.') {
        return None;
    }
    let secs: i64 = whole.parse().ok()?;
    secs.checked_mul(NS)?.checked_add(fraction_ns(frac)?)
}

/// The nanoseconds of a decimal fraction's digits (`"25"` → 250,000,000).
fn fraction_ns(digits: &str) -> Option<i64> {
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut ns = 0i64;
    for (i, b) in digits.bytes().take(9).enumerate() {
        ns += i64::from(b - b'0') * 10i64.pow(8 - i as u32);
    }
    Some(ns)
}

fn parse_rfc3339(s: &str) -> Result<UnixNanos, &'static str> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Result<i64, &'static str> {
        let part = b.get(from..from + len).ok_or("too short")?;
        if !part.iter().all(u8::is_ascii_digit) {
            return Err("a date or time field is not all digits");
        }
        Ok(part.iter().fold(0, |acc, d| acc * 10 + i64::from(d - b'0')))
    };
    let sep = |at: usize, allowed: &[u8]| -> Result<(), &'static str> {
        match b.get(at) {
            Some(c) if allowed.contains(c) => Ok(()),
            _ => Err("separators must be as in 2026-01-01T00:00:00Z"),
        }
    };
    let year = num(0, 4)?;
    sep(4, b"-")?;
    let month = num(5, 2)?;
    sep(7, b"-")?;
    let day = num(8, 2)?;
    sep(10, b"Tt ")?;
    let hour = num(11, 2)?;
    sep(13, b":")?;
    let minute = num(14, 2)?;
    sep(16, b":")?;
    let second = num(17, 2)?;
    let mut at = 19;
    let mut frac = 0;
    if b.get(at) == Some(&b'.') {
        let digits = b[at + 1..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if digits == 0 {
            return Err("a decimal point needs digits after it");
        }
        frac = fraction_ns(&s[at + 1..at + 1 + digits]).ok_or("bad fraction")?;
        at += 1 + digits;
    }
    let offset_secs = match b.get(at) {
        Some(b'Z' | b'z') if at + 1 == b.len() => 0,
        Some(&c @ (b'+' | b'-')) if at + 6 == b.len() => {
            sep(at + 3, b":")?;
            let (oh, om) = (num(at + 1, 2)?, num(at + 4, 2)?);
            if oh > 23 || om > 59 {
                return Err("the offset is out of range");
            }
            let o = oh * 3600 + om * 60;
            if c == b'+' { o } else { -o }
        }
        _ => return Err("it needs an offset at its end: Z or ±hh:mm"),
    };
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err("no such date");
    }
    // Second 60 is a leap second; it is counted as the first second of the next minute.
    if hour > 23 || minute > 59 || second > 60 {
        return Err("no such time of day");
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    secs.checked_mul(NS)
        .and_then(|ns| ns.checked_add(frac))
        .ok_or("it is past the year 2262")
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant, "chrono-Compatible Low-Level
/// Date Algorithms").
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// RFC 3339 in UTC with microseconds: `2026-01-01T00:00:00.000000Z`.
pub fn format_rfc3339(t: UnixNanos) -> String {
    let secs = t.div_euclid(NS);
    let micros = t.rem_euclid(NS) / 1000;
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

/// Seconds from `a` to `b`.
pub fn secs_between(a: UnixNanos, b: UnixNanos) -> f64 {
    (i128::from(b) - i128::from(a)) as f64 / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_and_unix_seconds() {
        // `date -u -d 2026-01-01T00:00:00Z +%s` = 1767225600.
        let new_year = 1_767_225_600 * NS;
        for (text, want) in [
            ("2026-01-01T00:00:00Z", new_year),
            ("2026-01-01t00:00:00z", new_year),
            ("2026-01-01 00:00:00Z", new_year),
            ("2026-01-01T01:00:00+01:00", new_year),
            ("2025-12-31T19:30:00-04:30", new_year),
            ("2026-01-01T00:00:00.25Z", new_year + 250_000_000),
            ("2026-01-01T00:00:00.123456789123Z", new_year + 123_456_789),
            ("1767225600", new_year),
            ("1767225600.5", new_year + 500_000_000),
            ("  1767225600 ", new_year),
            ("1970-01-01T00:00:00Z", 0),
            ("2000-02-29T12:00:00Z", 951_825_600 * NS),
            ("2016-12-31T23:59:60Z", 1_483_228_800 * NS),
        ] {
            assert_eq!(parse_time(text), Ok(want), "{text}");
        }
        for bad in [
            "",
            "soon",
            "2026-01-01T00:00:00",
            "2026-01-01",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T00:00:00+24:00",
            "2026-01-01T00:00:00+0100",
            "2026-01-01T00:00:00.Z",
            "2026-01-01T00:00:00Zjunk",
            "2026/01/01T00:00:00Z",
            "1.2.3",
            ".5",
            "99999999999999999999",
            "9999-01-01T00:00:00Z",
        ] {
            let e = parse_time(bad).unwrap_err();
            assert!(e.contains("is not a time"), "{bad}: {e}");
        }
    }

    #[test]
    fn calendar_round_trips() {
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
            assert!((1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m));
        }
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            format_rfc3339(1_767_225_600 * NS + 1_500_000),
            "2026-01-01T00:00:00.001500Z"
        );
        let t = parse_time("2031-07-09T13:45:59.654321Z").unwrap();
        assert_eq!(format_rfc3339(t), "2031-07-09T13:45:59.654321Z");
        assert_eq!(format_rfc3339(-NS), "1969-12-31T23:59:59.000000Z");
        assert_eq!(secs_between(NS, 3 * NS + NS / 2), 2.5);
    }
}
