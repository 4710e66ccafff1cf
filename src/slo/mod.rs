//! Service-level checks: thresholds on a run's report (`--threshold 'response_time_p99<=200ms'`,
//! k6's thresholds) and per-request goodput objectives (`--goodput 'time_to_first_token<=200ms'`,
//! vLLM's goodput, in [`goodput`]). Both are parsed before a run, so a malformed one is refused
//! with its position and the metric names; [`parse`] holds the syntax they share.
//!
//! A threshold is checked against the report's JSON (or any object with the same field names,
//! such as one stage's or one sweep step's report) by [`evaluate`]: the metric names are the
//! report's field names, so what a threshold reads is what the report shows.
//!
//! Metrics:
//! - a timing family X (`response_time`, `time_to_first_token`, ...; [`crate::metric::METRICS`])
//!   with a statistic: `mean_X`, `std_X`, `max_X`, `X_pNN` or `X_pNN.N` (any percentile in
//!   (0, 100): `X_p95`, `X_p99.9`; the report's `X_p999` spelling is read as 99.9). Values are
//!   seconds; a time may carry `ms`, `s`, `us` or `µs`.
//! - `error_rate`, `goodput_ratio`: fractions of all requests (`0.01` or `1%`);
//!   `token_mismatch_rate`: the fraction of the requests whose counts were checked.
//! - `achieved_qps`, `goodput`, `output_tokens_per_second`: per second.
//! - `total_requests`, `successes`, `errors`, `mean_output_tokens`: numbers.
//! - `elapsed`: a time.
//! - `health`: `ok` or `generator-limited`, with `==` or `!=`.
//!
//! A metric the report has no value for (no samples, or not measured in this run) fails its
//! threshold: a gate that cannot be checked is not passed.
//!
//! What a run measures and reports is the engine's and the report's; this module only reads.

pub mod change;
pub mod goodput;
pub mod parse;

use std::fmt;

use serde_json::{Value, json};

use crate::metric::METRICS;
pub use parse::Op;
use parse::{RawItem, RawValue, SyntaxError};

/// What a metric's value is, which decides the units its limit may carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Seconds; `ms`, `s`, `us`, `µs` or none (seconds).
    Time,
    /// A fraction of all requests; none or `%`.
    Ratio,
    /// A count or a rate; no unit.
    Number,
    /// One of a few words.
    Word(&'static [&'static str]),
}

/// The run's own verdict words (see `health`).
pub const HEALTH_WORDS: &[&str] = &["ok", "generator-limited"];

/// The metrics that are one field of the report, with their kind.
pub const SCALARS: [(&str, Kind); 13] = [
    ("error_rate", Kind::Ratio),
    ("achieved_qps", Kind::Number),
    ("goodput", Kind::Number),
    ("goodput_ratio", Kind::Ratio),
    ("total_requests", Kind::Number),
    ("successes", Kind::Number),
    ("errors", Kind::Number),
    ("elapsed", Kind::Time),
    ("output_tokens_per_second", Kind::Number),
    ("mean_output_tokens", Kind::Number),
    ("health", Kind::Word(HEALTH_WORDS)),
    // The share of the requests whose token counts differ from the server's usage.
    ("token_mismatch_rate", Kind::Ratio),
    // Kept last: the list in error messages reads best with it at the end.
    ("good_requests", Kind::Number),
];

/// A statistic of a timing family.
#[derive(Clone, Debug, PartialEq)]
pub enum Stat {
    Mean,
    Std,
    Max,
    /// A percentile in (0, 100) and the digits of its field name (`99.9` → `999`).
    Percentile {
        q: f64,
        digits: String,
    },
}

/// What a threshold reads.
#[derive(Clone, Debug, PartialEq)]
pub enum Metric {
    Timing { family: &'static str, stat: Stat },
    Scalar { name: &'static str, kind: Kind },
}

impl Metric {
    /// The report field it reads: `mean_X`, `std_X`, `max_X`, `X_pDIGITS`, or the scalar's name.
    pub fn key(&self) -> String {
        match self {
            Metric::Timing { family, stat } => match stat {
                Stat::Mean => format!("mean_{family}"),
                Stat::Std => format!("std_{family}"),
                Stat::Max => format!("max_{family}"),
                Stat::Percentile { digits, .. } => format!("{family}_p{digits}"),
            },
            Metric::Scalar { name, .. } => (*name).to_string(),
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Metric::Timing { .. } => Kind::Time,
            Metric::Scalar { kind, .. } => *kind,
        }
    }

    /// Its value in a report (or a stage's or step's summary with the same field names).
    pub fn lookup<'a>(&self, report: &'a Value) -> Option<&'a Value> {
        match self {
            // The report's `health` is an object; its verdict is the word.
            Metric::Scalar { name: "health", .. } => report.get("health")?.get("verdict"),
            _ => report.get(self.key()),
        }
    }

    /// The timing family it reads, if any (for the plan to check the family is measured).
    pub fn family(&self) -> Option<&'static str> {
        match self {
            Metric::Timing { family, .. } => Some(family),
            Metric::Scalar { .. } => None,
        }
    }
}

/// A malformed or meaningless expression: where, why, and the names that would have been
/// understood. Its `Display` is one line, for the command line; the API puts it in a 422.
#[derive(Clone, Debug, PartialEq)]
pub struct ExprError {
    /// The whole text as given.
    pub text: String,
    /// 1-based character position of the problem.
    pub position: usize,
    pub msg: String,
    /// The metric names this kind of expression takes, in words.
    pub metrics: String,
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} at position {}: {}; metrics: {}",
            self.text, self.position, self.msg, self.metrics
        )
    }
}

impl std::error::Error for ExprError {}

impl ExprError {
    pub(crate) fn at(text: &str, at: usize, msg: impl Into<String>, metrics: String) -> ExprError {
        ExprError {
            text: text.to_string(),
            position: parse::column(text, at),
            msg: msg.into(),
            metrics,
        }
    }

    pub(crate) fn syntax(text: &str, e: SyntaxError, metrics: String) -> ExprError {
        ExprError::at(text, e.at, e.msg, metrics)
    }
}

/// The threshold metrics in words, for error messages and `--help`.
pub fn threshold_metrics() -> String {
    metrics_in_words(SCALARS.iter().map(|(n, _)| *n))
}

/// The timing statistics and then `scalars`, in words.
pub(crate) fn metrics_in_words<'a>(scalars: impl Iterator<Item = &'a str>) -> String {
    let families: Vec<&str> = family_names().collect();
    let scalars: Vec<&str> = scalars.collect();
    format!(
        "mean_X, std_X, max_X, X_pNN (e.g. X_p99, X_p99.9) for X in {}; {}",
        families.join(", "),
        scalars.join(", ")
    )
}

fn family_names() -> impl Iterator<Item = &'static str> {
    METRICS.iter().map(|t| t.name)
}

fn family(name: &str) -> Option<&'static str> {
    family_names().find(|f| *f == name)
}

/// A percentile's text after `p` (`99`, `99.9`, or the report's `999`) as (q, field digits).
/// Whole percentiles from 1 to 99, and fractional ones from 10 up (so the field digits are
/// never ambiguous: `p999` is 99.9, and 9.9 would collide with 99).
fn percentile(text: &str) -> Result<(f64, String), String> {
    let bad = || {
        format!(
            "p{text} is not a percentile: use a whole number from 1 to 99 (p50, p99) or a \
             fraction from 10 up (p99.9); for the largest value, max_"
        )
    };
    let digits_only = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    // `p99.` and the report spelling with a trailing 0 (`p100` would read as 10, `p990` as 99)
    // are refused rather than guessed.
    let trailing =
        text.ends_with('.') || (!text.contains('.') && text.len() > 2 && text.ends_with('0'));
    if !digits_only || trailing {
        return Err(bad());
    }
    let (int, frac) = match text.split_once('.') {
        Some((i, f)) => (i, f),
        // The report's spelling: past two digits, the rest is the fraction (999 → 99.9).
        None if text.len() > 2 => text.split_at(2),
        None => (text, ""),
    };
    let whole_ok = !int.is_empty() && !int.starts_with('0') && int.len() <= 2;
    let frac = frac.trim_end_matches('0');
    if !whole_ok || (!frac.is_empty() && int.len() != 2) || frac.contains('.') {
        return Err(bad());
    }
    let q: f64 = format!("{int}.{frac}0").parse().map_err(|_| bad())?;
    if !(q > 0.0 && q < 100.0) {
        return Err(bad());
    }
    Ok((q, format!("{int}{frac}")))
}

/// Resolves a threshold's metric name.
pub(crate) fn metric(name: &str) -> Result<Metric, String> {
    if let Some(&(name, kind)) = SCALARS.iter().find(|(n, _)| *n == name) {
        return Ok(Metric::Scalar { name, kind });
    }
    for (prefix, stat) in [
        ("mean_", Stat::Mean),
        ("std_", Stat::Std),
        ("max_", Stat::Max),
    ] {
        if let Some(f) = name.strip_prefix(prefix).and_then(family) {
            return Ok(Metric::Timing { family: f, stat });
        }
    }
    if let Some((f, p)) = name.rsplit_once("_p")
        && let Some(f) = family(f)
    {
        let (q, digits) = percentile(p)?;
        return Ok(Metric::Timing {
            family: f,
            stat: Stat::Percentile { q, digits },
        });
    }
    if let Some(f) = family(name) {
        return Err(format!(
            "{f} is a timing family: name a statistic, as mean_{f}, {f}_p99 or max_{f}"
        ));
    }
    Err(format!("unknown metric {name:?}"))
}

/// A limit as a number in the metric's own unit (seconds, fraction), or a word.
#[derive(Clone, Debug, PartialEq)]
pub enum Limit {
    Number(f64),
    Word(&'static str),
}

/// The value of `raw` for a metric of `kind`, or why it does not fit (with its byte offset).
pub(crate) fn limit(name: &str, kind: Kind, raw: &RawItem<'_>) -> Result<Limit, (usize, String)> {
    match (&raw.value, kind) {
        (RawValue::Word(w), Kind::Word(words)) => match words.iter().find(|x| *x == w) {
            Some(x) => Ok(Limit::Word(x)),
            None => Err((
                raw.value_at,
                format!("{name} is one of {}, not {w:?}", words.join(", ")),
            )),
        },
        (RawValue::Number { .. }, Kind::Word(words)) => Err((
            raw.value_at,
            format!("{name} is a word: {}", words.join(", ")),
        )),
        (RawValue::Word(w), _) => Err((raw.value_at, format!("{name} takes a number, not {w:?}"))),
        (RawValue::Number { signed: true, .. }, _) => Err((
            raw.value_at,
            format!(
                "a limit has no sign: {name} takes a value such as 200ms (+N and -N are \
                 changes, for pacer compare --fail-if)"
            ),
        )),
        (RawValue::Number { .. }, kind) => scaled(name, kind, raw),
    }
}

/// A number's value in a metric's own unit (seconds, a fraction, a plain number), its sign
/// kept; or why its unit does not fit, with the unit's byte offset.
pub(crate) fn scaled(name: &str, kind: Kind, raw: &RawItem<'_>) -> Result<Limit, (usize, String)> {
    match (&raw.value, kind) {
        (RawValue::Word(w), _) => Err((raw.value_at, format!("{name} takes a number, not {w:?}"))),
        (
            RawValue::Number {
                value,
                unit,
                unit_at,
                ..
            },
            kind,
        ) => {
            // Divisors, not factors: 95 / 100 is 0.95 exactly, 95 × 0.01 is not.
            let per = match (kind, *unit) {
                (Kind::Time, "" | "s") => 1.0,
                (Kind::Time, "ms") => 1e3,
                (Kind::Time, "us" | "µs") => 1e6,
                (Kind::Time, u) => {
                    return Err((
                        *unit_at,
                        format!("unknown time unit {u:?}: use ms, s, us or µs (none is seconds)"),
                    ));
                }
                (Kind::Ratio, "") => 1.0,
                (Kind::Ratio, "%") => 100.0,
                (Kind::Ratio, u) => {
                    return Err((
                        *unit_at,
                        format!("{name} is a fraction (0.01 or 1%), so {u:?} does not apply"),
                    ));
                }
                (_, "") => 1.0,
                (_, u) => {
                    return Err((*unit_at, format!("{name} is a plain number: no unit {u:?}")));
                }
            };
            Ok(Limit::Number(value / per))
        }
    }
}

/// One threshold, parsed and resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct Threshold {
    /// As written (trimmed), echoed in the report.
    pub text: String,
    pub metric: Metric,
    pub op: Op,
    pub limit: Limit,
}

/// Parses one `--threshold` (or one entry of the API's `thresholds`): one expression, or several
/// separated by commas.
pub fn parse_thresholds(text: &str) -> Result<Vec<Threshold>, ExprError> {
    items(text, threshold_metrics, |raw, err| {
        let m = metric(raw.metric).map_err(|msg| err(raw.metric_at, msg))?;
        let kind = m.kind();
        if matches!(kind, Kind::Word(_)) && !matches!(raw.op, Op::Eq | Op::Ne) {
            return Err(err(
                raw.metric_at + raw.metric.len(),
                format!("{} is a word: compare it with == or !=", raw.metric),
            ));
        }
        let limit = limit(raw.metric, kind, raw).map_err(|(at, msg)| err(at, msg))?;
        Ok(Threshold {
            text: raw.text.to_string(),
            metric: m,
            op: raw.op,
            limit,
        })
    })
}

/// The items of `text`, each resolved by `resolve`, which reports a problem through the `err` it
/// is given (a byte offset and a message, with `metrics` listed).
pub(crate) fn items<T>(
    text: &str,
    metrics: fn() -> String,
    resolve: impl Fn(&RawItem<'_>, &dyn Fn(usize, String) -> ExprError) -> Result<T, ExprError>,
) -> Result<Vec<T>, ExprError> {
    let err = |at: usize, msg: String| ExprError::at(text, at, msg, metrics());
    parse::list(text)
        .map_err(|e| ExprError::syntax(text, e, metrics()))?
        .iter()
        .map(|raw| resolve(raw, &err))
        .collect()
}

/// Parses every `--threshold` given (or the API's `thresholds` list), in order.
pub fn parse_all(texts: &[String]) -> Result<Vec<Threshold>, ExprError> {
    each(texts, parse_thresholds)
}

/// Every text parsed by `parse`, the items in order; the first error stops.
pub(crate) fn each<T>(
    texts: &[String],
    parse: fn(&str) -> Result<Vec<T>, ExprError>,
) -> Result<Vec<T>, ExprError> {
    let mut all = Vec::new();
    for t in texts {
        all.extend(parse(t)?);
    }
    Ok(all)
}

/// A threshold checked against a report.
#[derive(Clone, Debug, PartialEq)]
pub struct Checked {
    pub expression: String,
    /// The report field read.
    pub metric: String,
    /// Its value there (null when the report has none).
    pub value: Value,
    pub pass: bool,
}

impl Checked {
    /// `{"expression", "metric", "value", "pass"}`: an entry of the report's `thresholds`.
    pub fn to_json(&self) -> Value {
        json!({
            "expression": self.expression,
            "metric": self.metric,
            "value": self.value,
            "pass": self.pass,
        })
    }
}

impl Threshold {
    /// Checks this threshold against `report` (a run's JSON, or a stage's or step's summary).
    pub fn check(&self, report: &Value) -> Checked {
        let value = self.metric.lookup(report).cloned().unwrap_or(Value::Null);
        let pass = match (&self.limit, &value) {
            (Limit::Number(l), Value::Number(v)) => {
                v.as_f64().is_some_and(|v| self.op.holds(&v, l))
            }
            (Limit::Word(l), Value::String(v)) => self.op.holds(v.as_str(), *l),
            _ => false,
        };
        Checked {
            expression: self.text.clone(),
            metric: self.metric.key(),
            value,
            pass,
        }
    }
}

/// Checks every threshold against `report`, in order.
pub fn evaluate(thresholds: &[Threshold], report: &Value) -> Vec<Checked> {
    thresholds.iter().map(|t| t.check(report)).collect()
}

/// Whether every threshold held.
pub fn all_pass(checked: &[Checked]) -> bool {
    checked.iter().all(|c| c.pass)
}

/// The percentiles the thresholds read that a report may not carry on its own, as
/// `(family, q in (0, 100), field name)`: the report adds these fields.
pub fn percentiles_needed(thresholds: &[Threshold]) -> Vec<(&'static str, f64, String)> {
    let mut out: Vec<(&'static str, f64, String)> = Vec::new();
    for t in thresholds {
        if let Metric::Timing {
            family,
            stat: Stat::Percentile { q, .. },
        } = &t.metric
        {
            let key = t.metric.key();
            if !out.iter().any(|(_, _, k)| *k == key) {
                out.push((family, *q, key));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Threshold {
        let mut v = parse_thresholds(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(v.len(), 1);
        v.remove(0)
    }

    fn err(text: &str) -> ExprError {
        parse_thresholds(text).unwrap_err()
    }

    #[test]
    fn timings_with_units_become_seconds() {
        let t = one("response_time_p99<=200ms");
        assert_eq!(t.metric.key(), "response_time_p99");
        assert_eq!((t.op, t.limit.clone()), (Op::Le, Limit::Number(0.2)));
        assert_eq!(one("mean_latency<1.5").limit, Limit::Number(1.5));
        assert_eq!(one("mean_latency<1.5s").limit, Limit::Number(1.5));
        assert_eq!(one("std_latency<250us").limit, Limit::Number(250e-6));
        assert_eq!(one("max_latency<250µs").limit, Limit::Number(250e-6));
        assert_eq!(one("max_latency<250µs").metric.key(), "max_latency");
        assert_eq!(one("elapsed<=1500ms").limit, Limit::Number(1.5));
    }

    #[test]
    fn percentiles_of_every_spelling() {
        for (text, key, q) in [
            ("response_time_p50<1", "response_time_p50", 50.0),
            ("response_time_p95<1", "response_time_p95", 95.0),
            ("response_time_p5<1", "response_time_p5", 5.0),
            ("response_time_p99.9<1", "response_time_p999", 99.9),
            ("response_time_p999<1", "response_time_p999", 99.9),
            ("response_time_p99.99<1", "response_time_p9999", 99.99),
            ("response_time_p9999<1", "response_time_p9999", 99.99),
            ("response_time_p99.5<1", "response_time_p995", 99.5),
            ("response_time_p99.0<1", "response_time_p99", 99.0),
            (
                "time_to_first_token_p12.5<1",
                "time_to_first_token_p125",
                12.5,
            ),
        ] {
            let t = one(text);
            assert_eq!(t.metric.key(), key, "{text}");
            match t.metric {
                Metric::Timing {
                    stat: Stat::Percentile { q: got, .. },
                    ..
                } => assert!((got - q).abs() < 1e-12, "{text}: {got}"),
                m => panic!("{text}: {m:?}"),
            }
        }
        for bad in [
            "p100", "p0", "p05", "p9.9", "p", "p1.2.3", "p99.", "p100.5", "p99x",
        ] {
            let e = err(&format!("latency_{bad}<1"));
            assert!(e.msg.contains("is not a percentile"), "{bad}: {e}");
            assert_eq!(e.position, 1);
        }
        let ts = parse_all(&[
            "response_time_p95<1,response_time_p99.9<1".to_string(),
            "response_time_p999>0".to_string(),
        ])
        .unwrap();
        assert_eq!(
            percentiles_needed(&ts),
            [
                ("response_time", 95.0, "response_time_p95".to_string()),
                ("response_time", 99.9, "response_time_p999".to_string())
            ]
        );
    }

    #[test]
    fn scalars_take_their_own_units() {
        assert_eq!(one("error_rate<=0.01").limit, Limit::Number(0.01));
        assert_eq!(one("error_rate<=1%").limit, Limit::Number(0.01));
        assert_eq!(one("goodput_ratio>=95%").limit, Limit::Number(0.95));
        assert_eq!(one("achieved_qps>=990").limit, Limit::Number(990.0));
        assert_eq!(one("health==ok").limit, Limit::Word("ok"));
        assert_eq!(
            one("health != generator-limited").limit,
            Limit::Word("generator-limited")
        );
        let e = err("error_rate<=1ms");
        assert_eq!(e.position, 14, "at the unit");
        assert!(e.msg.contains("is a fraction"), "{e}");
        assert!(err("achieved_qps>=5%").msg.contains("plain number"));
        assert!(
            err("response_time_p99<=5m")
                .msg
                .contains("unknown time unit \"m\"")
        );
        assert!(err("response_time_p99<=ok").msg.contains("takes a number"));
        assert!(
            err("health==fine")
                .msg
                .contains("one of ok, generator-limited")
        );
        assert!(err("health==1").msg.contains("is a word"));
        let e = err("health<=ok");
        assert!(e.msg.contains("compare it with == or !="), "{e}");
        assert_eq!(e.position, 7);
    }

    #[test]
    fn errors_give_the_position_and_the_names() {
        let e = err("response_tme_p99<=200ms");
        assert_eq!(e.position, 1);
        assert_eq!(e.msg, "unknown metric \"response_tme_p99\"");
        assert!(
            e.metrics.contains("X in response_time, latency"),
            "{}",
            e.metrics
        );
        assert!(e.metrics.contains("error_rate, achieved_qps"));
        let line = e.to_string();
        assert!(line.starts_with("\"response_tme_p99<=200ms\" at position 1: unknown metric"));
        assert!(!line.contains('\n'));
        let e = err("error_rate<0.1, response_time<=1s");
        assert_eq!(e.position, 17);
        assert!(
            e.msg.contains("mean_response_time, response_time_p99"),
            "{e}"
        );
        let e = err("response_time_p99 <= 1s extra");
        assert_eq!(e.position, 25);
        assert_eq!(err("").position, 1);
    }

    #[test]
    fn evaluation_reads_the_report_and_fails_what_it_cannot_check() {
        let report = json!({
            "response_time_p99": 0.150,
            "mean_response_time": 0.1,
            "error_rate": 0.02,
            "achieved_qps": 995.5,
            "time_to_first_token_p99": null,
            "health": {"verdict": "ok", "reasons": []},
        });
        let ts = parse_all(&[
            "response_time_p99<=200ms".into(),
            "response_time_p99<150ms".into(),
            "error_rate<=1%".into(),
            "achieved_qps>=990".into(),
            "time_to_first_token_p99<1s".into(),
            "latency_p99<1s".into(),
            "health==ok".into(),
            "health!=ok".into(),
            "mean_response_time==100ms".into(),
        ])
        .unwrap();
        let checked = evaluate(&ts, &report);
        let pass: Vec<bool> = checked.iter().map(|c| c.pass).collect();
        assert_eq!(
            pass,
            [true, false, false, true, false, false, true, false, true]
        );
        assert_eq!(checked[0].value, json!(0.15));
        assert_eq!(checked[4].value, Value::Null);
        assert_eq!(checked[5].value, Value::Null, "absent from the report");
        assert_eq!(checked[6].value, json!("ok"));
        assert_eq!(
            checked[2].to_json(),
            json!({"expression": "error_rate<=1%", "metric": "error_rate", "value": 0.02, "pass": false})
        );
        assert!(!all_pass(&checked));
        assert!(all_pass(&checked[..1]));
        assert!(all_pass(&[]));
    }
}
