//! Conditions on the change between two runs, for `pacer compare --fail-if`: the threshold
//! grammar ([`super::parse`]) with a signed value, on the threshold metrics ([`super::SCALARS`]
//! and the timing families' statistics) but `health`.
//!
//! - `response_time_p99>+10%`: the relative change, `(new − base) / base`, is above +10%.
//! - `mean_latency>+2ms`, `error_rate>+0.01`, `achieved_qps<-50`: the absolute change, `new −
//!   base`, in the metric's own unit (a time may carry `ms`, `s`, `us`, `µs`). A `%` always means
//!   a relative change, also for a ratio such as `error_rate` (give its absolute change as a
//!   fraction: `+0.01`).
//! - No sign reads as `+`.
//!
//! A condition that cannot be checked (a figure missing from either run, a relative change from a
//! base of 0) counts as holding: a gate that cannot be checked is not passed, as with thresholds.

use serde_json::{Value, json};

use super::parse::{Op, RawValue};
use super::{ExprError, Kind, Limit, Metric, SCALARS, items, metric, scaled};

/// What a condition's value measures.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Amount {
    /// A fraction of the base value: `+10%` is 0.10.
    Relative(f64),
    /// In the metric's unit: `+2ms` is 0.002.
    Absolute(f64),
}

/// One `--fail-if`, parsed and resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// As written (trimmed).
    pub text: String,
    pub metric: Metric,
    pub op: Op,
    pub amount: Amount,
}

/// The metrics a change may name, in words.
pub fn change_metrics() -> String {
    super::metrics_in_words(scalars())
}

/// Parses one `--fail-if` (several conditions may be separated by commas).
pub fn parse_changes(text: &str) -> Result<Vec<Change>, ExprError> {
    items(text, change_metrics, |raw, err| {
        let m = metric(raw.metric).map_err(|msg| err(raw.metric_at, msg))?;
        let kind = m.kind();
        if matches!(kind, Kind::Word(_)) {
            return Err(err(
                raw.metric_at,
                format!("{} is a word: it has no change to compare", raw.metric),
            ));
        }
        let amount = match &raw.value {
            RawValue::Number {
                value, unit: "%", ..
            } => Amount::Relative(value / 100.0),
            RawValue::Number { .. } => match scaled(raw.metric, kind, raw) {
                Ok(Limit::Number(v)) => Amount::Absolute(v),
                Ok(Limit::Word(_)) => unreachable!("scaled gives numbers only"),
                Err((at, msg)) => return Err(err(at, msg)),
            },
            RawValue::Word(w) => {
                return Err(err(
                    raw.value_at,
                    format!(
                        "{} takes a change such as +10% or +2ms, not {w:?}",
                        raw.metric
                    ),
                ));
            }
        };
        Ok(Change {
            text: raw.text.to_string(),
            metric: m,
            op: raw.op,
            amount,
        })
    })
}

/// Every `--fail-if` given, in order; the first error stops.
pub fn parse_all(texts: &[String]) -> Result<Vec<Change>, ExprError> {
    super::each(texts, parse_changes)
}

/// A condition checked against two runs' figures.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckedChange {
    pub expression: String,
    /// The report field read.
    pub metric: String,
    pub base: Option<f64>,
    pub new: Option<f64>,
    /// The change the condition reads, when it can be computed.
    pub change: Option<f64>,
    /// `change` is a fraction of the base (else in the metric's unit).
    pub relative: bool,
    /// The condition holds (or could not be checked): the comparison fails.
    pub holds: bool,
}

impl CheckedChange {
    pub fn to_json(&self) -> Value {
        json!({
            "expression": self.expression,
            "metric": self.metric,
            "base": self.base,
            "new": self.new,
            "change": self.change,
            "relative": self.relative,
            "holds": self.holds,
        })
    }
}

impl Change {
    /// Checks this condition on `base` and `new` (reports, or objects with their field names).
    pub fn check(&self, base: &Value, new: &Value) -> CheckedChange {
        let read = |r: &Value| self.metric.lookup(r).and_then(Value::as_f64);
        let (b, n) = (read(base), read(new));
        let change = match (b, n, self.amount) {
            (Some(b), Some(n), Amount::Relative(_)) if b != 0.0 => Some((n - b) / b),
            (Some(b), Some(n), Amount::Absolute(_)) => Some(n - b),
            _ => None,
        };
        let limit = match self.amount {
            Amount::Relative(v) | Amount::Absolute(v) => v,
        };
        CheckedChange {
            expression: self.text.clone(),
            metric: self.metric.key(),
            base: b,
            new: n,
            change,
            relative: matches!(self.amount, Amount::Relative(_)),
            holds: change.is_none_or(|c| self.op.holds(&c, &limit)),
        }
    }
}

/// The scalar metrics a change may name (every threshold scalar but the word `health`).
pub fn scalars() -> impl Iterator<Item = &'static str> {
    SCALARS
        .iter()
        .filter(|(_, k)| !matches!(k, Kind::Word(_)))
        .map(|(n, _)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Change {
        let mut v = parse_changes(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(v.len(), 1);
        v.remove(0)
    }

    #[test]
    fn relative_and_absolute_changes() {
        let c = one("response_time_p99>+10%");
        assert_eq!((c.op, c.amount), (Op::Gt, Amount::Relative(0.10)));
        assert_eq!(c.metric.key(), "response_time_p99");
        assert_eq!(one("achieved_qps<-5%").amount, Amount::Relative(-0.05));
        assert_eq!(one("mean_latency>+2ms").amount, Amount::Absolute(0.002));
        assert_eq!(one("error_rate>0.01").amount, Amount::Absolute(0.01));
        assert_eq!(one("error_rate>+1%").amount, Amount::Relative(0.01));
        assert_eq!(one("achieved_qps<-50").amount, Amount::Absolute(-50.0));
    }

    #[test]
    fn malformed_changes_are_refused_with_the_position() {
        let e = parse_changes("health!=+1").unwrap_err();
        assert!(e.msg.contains("is a word"), "{e}");
        let e = parse_changes("response_time_p99>+10 minutes").unwrap_err();
        assert!(e.msg.contains("unknown time unit"), "{e}");
        let e = parse_changes("respons_time_p99>+10%").unwrap_err();
        assert_eq!(e.position, 1);
        assert!(!e.metrics.contains("health"), "{}", e.metrics);
        assert!(parse_changes("response_time_p99>fast").is_err());
        assert!(parse_changes("response_time_p99>+").is_err());
    }

    #[test]
    fn checks_read_both_reports_and_fail_what_they_cannot_check() {
        let base = json!({"response_time_p99": 0.100, "error_rate": 0.0, "achieved_qps": 100.0});
        let new = json!({"response_time_p99": 0.115, "error_rate": 0.02, "achieved_qps": 99.0});
        let check = |t: &str| one(t).check(&base, &new);
        let c = check("response_time_p99>+10%");
        assert!(c.holds && (c.change.unwrap() - 0.15).abs() < 1e-9, "{c:?}");
        assert!(!check("response_time_p99>+20%").holds);
        assert!(check("response_time_p99>+10ms").holds);
        assert!(!check("response_time_p99>+20ms").holds);
        assert!(check("error_rate>+0.01").holds);
        // A relative change from 0 cannot be computed: the gate fails.
        let c = check("error_rate>+50%");
        assert!(c.holds && c.change.is_none());
        assert!(check("mean_latency>+1ms").holds, "missing from both");
        assert!(!check("achieved_qps<-5%").holds);
        assert_eq!(check("achieved_qps<-0.5").to_json()["change"], json!(-1.0));
    }

    #[test]
    fn thresholds_still_refuse_a_sign() {
        let e = super::super::parse_thresholds("response_time_p99<=+200ms").unwrap_err();
        assert!(e.msg.contains("a limit has no sign"), "{e}");
        assert_eq!(e.position, 20, "at the sign");
    }
}
