//! `--stages RATE:DURATION,...` (`100:30s,200:30s,400:1m`), read into the stage list the API
//! gets as `[{"qps": 100, "duration": 30}, ...]`. Only the syntax is this module's: the rate is a
//! plain number, the duration anything `--duration` takes ([`parse_secs`]); whether the stages
//! can be run (rates above 0, a 0 s stage only with `--ramp`, ...) is
//! [`plan::stages::check`](crate::plan::stages::check)'s, which names the stage.

use super::duration::parse_secs;
use crate::plan::stages::Stage;

/// The stages of `--stages`, as one value (clap reads an `Option<Vec<_>>` as a repeated flag).
#[derive(Clone, Debug, PartialEq)]
pub struct StageList(pub Vec<Stage>);

/// `--stages`' value parser.
pub fn parse_list(text: &str) -> Result<StageList, String> {
    parse(text).map(StageList)
}

const FORM: &str = "a stage is RATE:DURATION, e.g. 100:30s; stages are separated by commas";

/// The stages in `text`, in order.
pub fn parse(text: &str) -> Result<Vec<Stage>, String> {
    if text.trim().is_empty() {
        return Err(format!("no stages given; {FORM}"));
    }
    text.split(',')
        .enumerate()
        .map(|(k, item)| {
            let item = item.trim();
            let at = |why: String| format!("stage {} ({item:?}): {why}", k + 1);
            let (rate, duration) = item
                .split_once(':')
                .ok_or_else(|| at(format!("no `:` between the rate and the duration; {FORM}")))?;
            let rate = rate.trim();
            let qps = decimal(rate)
                .ok_or_else(|| at(format!("{rate:?} is not a rate (requests per second)")))?;
            let duration = parse_secs(duration).map_err(at)?;
            Ok(Stage { qps, duration })
        })
        .collect()
}

/// A plain decimal number (an optional sign, digits, at most one dot): no `inf`, `nan` or
/// exponent, so what is accepted is what a person means. The sign is kept for the check to
/// refuse with the stage named.
fn decimal(s: &str) -> Option<f64> {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    let ok = !digits.is_empty()
        && digits != "."
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && digits.bytes().filter(|&b| b == b'.').count() <= 1;
    if ok { s.parse().ok() } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(qps: f64, duration: f64) -> Stage {
        Stage { qps, duration }
    }

    #[test]
    fn rates_and_durations_with_units() {
        assert_eq!(
            parse("100:30s,200:30s,400:1m").unwrap(),
            [st(100.0, 30.0), st(200.0, 30.0), st(400.0, 60.0)]
        );
        assert_eq!(
            parse("1:250ms, 2:1.5s ,3:1m30s,4:1h,5:7, 0.5 : 4").unwrap(),
            [
                st(1.0, 0.25),
                st(2.0, 1.5),
                st(3.0, 90.0),
                st(4.0, 3600.0),
                st(5.0, 7.0),
                st(0.5, 4.0)
            ]
        );
        // Zero and negative values parse; the plan refuses them, naming the stage.
        assert_eq!(
            parse("0:0s,-5:-1s").unwrap(),
            [st(0.0, 0.0), st(-5.0, -1.0)]
        );
    }

    #[test]
    fn syntax_errors_name_the_stage() {
        let e = |t: &str| parse(t).unwrap_err();
        assert!(e("").starts_with("no stages given"));
        assert_eq!(
            e("100"),
            format!("stage 1 (\"100\"): no `:` between the rate and the duration; {FORM}")
        );
        assert_eq!(
            e("100:30s,x:1s"),
            "stage 2 (\"x:1s\"): \"x\" is not a rate (requests per second)"
        );
        assert!(e("100:30x").starts_with("stage 1 (\"100:30x\"): \"30x\" is not a duration"));
        assert!(e("100:30s,").starts_with("stage 2 (\"\"): no `:`"));
        assert!(e("inf:1s").contains("not a rate"));
        assert!(e("1e3:1s").contains("not a rate"));
        assert!(e("100:1s:2s").contains("is not a duration"));
    }
}
