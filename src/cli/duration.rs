//! The one parser for every duration the command line takes (`--duration`, `--timeout`, the
//! demo's `--duration`): `250ms`, `5s`, `1.5s`, `2m`, `1h`, and combinations as Go, vegeta and k6
//! write them (`1m30s`, `1h30m`); a bare number stays seconds, as the original's flags were. The
//! range checks (`> 0`, the command line's ceilings) are the caller's, which names the flag.

/// The units a duration may carry, longest first so `ms` is not read as `m` then `s`.
const UNITS: [(&str, f64); 7] = [
    ("ms", 1e-3),
    ("us", 1e-6),
    ("µs", 1e-6),
    ("h", 3600.0),
    ("m", 60.0),
    ("s", 1.0),
    ("", 0.0),
];

const HINT: &str = "a duration is a number of seconds, or a number with a unit: ms, s, m, h \
                    (e.g. 250ms, 1.5s, 2m, 1h30m)";

/// Seconds in `text`. Negative and zero values parse (the caller says why they are refused, with
/// the flag's name); text that is not a duration, or one too large to be a number, is an error
/// that says what a duration looks like.
pub fn parse_secs(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let err = |why: &str| {
        // hey's and oha's `-d` is the request body; here, as in wrk, it is the duration.
        let body = if t.starts_with(['{', '[', '<', '"']) || t.contains('=') {
            " (a request body goes in --body)"
        } else {
            ""
        };
        format!("{text:?} is not a duration: {why}; {HINT}{body}")
    };
    if t.is_empty() {
        return Err(err("it is empty"));
    }
    let (sign, mut rest) = match t.strip_prefix('-') {
        Some(r) => (-1.0, r),
        None => (1.0, t.strip_prefix('+').unwrap_or(t)),
    };
    // A bare number is seconds (digits and one dot only: no `inf`, `nan` or exponent).
    if is_decimal(rest) {
        return finite(sign * decimal(rest), text);
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(digits);
        if !is_decimal(number) {
            return Err(err(if number.is_empty() {
                "a unit needs a number before it"
            } else {
                "a number has more than one dot"
            }));
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let Some(&(_, scale)) = UNITS.iter().find(|(u, _)| *u == unit && !u.is_empty()) else {
            return Err(err(&if unit.is_empty() {
                format!("{number} has no unit (only a number on its own is seconds)")
            } else {
                format!("unknown unit {unit:?}")
            }));
        };
        total += decimal(number) * scale;
        rest = next;
    }
    finite(sign * total, text)
}

fn is_decimal(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && s.bytes().filter(|&b| b == b'.').count() <= 1
}

/// A string [`is_decimal`] accepted: Rust's float syntax covers it (`.5` and `5.` included).
fn decimal(s: &str) -> f64 {
    s.parse().unwrap_or(f64::NAN)
}

fn finite(secs: f64, text: &str) -> Result<f64, String> {
    if secs.is_finite() {
        Ok(secs)
    } else {
        Err(format!("{text:?} is too large a duration"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_bare_seconds() {
        for (text, secs) in [
            ("5", 5.0),
            ("0.5", 0.5),
            (".5", 0.5),
            ("5s", 5.0),
            ("1.5s", 1.5),
            ("250ms", 0.25),
            ("1m", 60.0),
            ("1h", 3600.0),
            ("2h", 7200.0),
            ("1m30s", 90.0),
            ("1h30m", 5400.0),
            ("1h0m0.5s", 3600.5),
            ("100us", 1e-4),
            ("100µs", 1e-4),
            (" 3s ", 3.0),
            ("0", 0.0),
            ("0s", 0.0),
            ("-1", -1.0),
            ("-2s", -2.0),
            ("+2s", 2.0),
        ] {
            let got = parse_secs(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert!((got - secs).abs() < 1e-12, "{text:?}: {got} != {secs}");
        }
    }

    #[test]
    fn errors_say_what_a_duration_is() {
        for (text, why) in [
            ("", "it is empty"),
            ("5x", "unknown unit \"x\""),
            ("5 s", "unknown unit \" s\""),
            ("s", "a unit needs a number before it"),
            ("1.2.3s", "more than one dot"),
            ("1m30", "30 has no unit"),
            ("inf", "a unit needs a number"),
            ("nan", "a unit needs a number"),
            ("1e3", "unknown unit \"e\""),
            ("{\"a\":1}", "a unit needs a number"),
        ] {
            let e = parse_secs(text).unwrap_err();
            assert!(e.contains(why), "{text:?}: {e}");
            assert!(e.contains("e.g. 250ms"), "{text:?}: {e}");
        }
        assert!(
            parse_secs("{\"a\":1}")
                .unwrap_err()
                .ends_with("(a request body goes in --body)")
        );
        assert!(!parse_secs("5x").unwrap_err().contains("--body"));
        let huge = format!("{}h", "9".repeat(400));
        assert_eq!(
            parse_secs(&huge).unwrap_err(),
            format!("{huge:?} is too large a duration")
        );
    }
}
