//! Durations as people read and type them: a leaf (it uses no other module of the crate), so
//! that every layer that prints a time, from `health` to the report and the command line, says
//! it the same way.

use std::fmt::Write as _;

/// Seconds in the unit a person reads best.
pub fn human(secs: f64) -> String {
    let a = secs.abs();
    if a < 1e-3 {
        format!("{:.1}µs", secs * 1e6)
    } else if a < 1.0 {
        format!("{:.2}ms", secs * 1e3)
    } else {
        format!("{secs:.3}s")
    }
}

/// Seconds as a person types a duration: `250ms`, `1.5s`, `90s` → `1m30s`, `7200s` → `2h`.
pub fn secs_text(secs: f64) -> String {
    if secs.fract() != 0.0 || !(60.0..1e12).contains(&secs) {
        return if secs != 0.0 && secs.abs() < 1.0 {
            format!("{}ms", round_digits(secs * 1e3))
        } else {
            format!("{}s", round_digits(secs))
        };
    }
    let whole = secs as u64;
    let (h, m, s) = (whole / 3600, whole / 60 % 60, whole % 60);
    let mut out = String::new();
    for (n, unit) in [(h, "h"), (m, "m"), (s, "s")] {
        if n > 0 {
            let _ = write!(out, "{n}{unit}");
        }
    }
    out
}

/// At most 6 significant decimals, without trailing zeros: floats as typed, not `0.30000000000000004`.
fn round_digits(x: f64) -> String {
    let s = format!("{x:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_typed() {
        for (secs, text) in [
            (5.0, "5s"),
            (0.25, "250ms"),
            (1.5, "1.5s"),
            (90.0, "1m30s"),
            (7200.0, "2h"),
            (86_400.0, "24h"),
            (0.0, "0s"),
            (-1.0, "-1s"),
            (0.3, "300ms"),
        ] {
            assert_eq!(secs_text(secs), text);
        }
    }
}
