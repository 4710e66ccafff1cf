//! The summary of `--repeat N`: for every figure [`compare`](super) compares
//! ([`figure_keys`](super::figure_keys)), its mean across the runs and the 95% confidence
//! interval of that mean (Student's t with n − 1 degrees of freedom, [`stats::mean_ci`]), with
//! the smallest and largest run, so a user sees how much of a figure is noise. Runs without the
//! figure (none, such as a run with no response) are left out of its line, and say so by `n`.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::{figure_keys, stats, value_text};

/// One figure across the runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    pub key: String,
    pub time: bool,
    /// Runs that had it.
    pub n: usize,
    pub mean: f64,
    /// Half the 95% interval; None with one run.
    pub half_width: Option<f64>,
    pub min: f64,
    pub max: f64,
}

/// The summary of `runs` (reports in the order they ran).
pub fn summary(runs: &[Value]) -> Vec<Line> {
    let refs: Vec<&Value> = runs.iter().collect();
    figure_keys(&refs)
        .into_iter()
        .filter_map(|k| {
            let xs: Vec<f64> = runs
                .iter()
                .filter_map(|r| r.get(&k.key).and_then(Value::as_f64))
                .collect();
            let (mean, half_width) = stats::mean_ci(&xs)?;
            Some(Line {
                time: k.family.is_some(),
                key: k.key,
                n: xs.len(),
                mean,
                half_width,
                min: xs.iter().copied().fold(f64::INFINITY, f64::min),
                max: xs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            })
        })
        .collect()
}

/// `{"figure": {"n", "mean", "ci95_half_width", "ci95": [lo, hi], "min", "max"}}`.
pub fn to_json(lines: &[Line]) -> Value {
    let mut m = serde_json::Map::new();
    for l in lines {
        m.insert(
            l.key.clone(),
            json!({
                "n": l.n,
                "mean": l.mean,
                "ci95_half_width": l.half_width,
                "ci95": l.half_width.map(|h| [l.mean - h, l.mean + h]),
                "min": l.min,
                "max": l.max,
            }),
        );
    }
    Value::Object(m)
}

/// The table printed after the runs.
pub fn to_text(lines: &[Line], runs: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "summary of {runs} run{}: mean and 95% confidence interval (Student's t, n − 1 degrees \
         of freedom)\n",
        if runs == 1 { "" } else { "s" }
    );
    let _ = writeln!(
        out,
        "  {:<36} {:>3} {:>10} {:>12} {:>8} {:>10} {:>10}",
        "figure", "n", "mean", "± (95%)", "±%", "min", "max"
    );
    for l in lines {
        let half = l
            .half_width
            .map_or("–".into(), |h| value_text(Some(h), l.time));
        let pct = match l.half_width {
            Some(h) if l.mean != 0.0 => format!("{:.1}%", h / l.mean.abs() * 100.0),
            _ => "–".into(),
        };
        let _ = writeln!(
            out,
            "  {:<36} {:>3} {:>10} {:>12} {:>8} {:>10} {:>10}",
            l.key,
            l.n,
            value_text(Some(l.mean), l.time),
            half,
            pct,
            value_text(Some(l.min), l.time),
            value_text(Some(l.max), l.time)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_interval_of_each_figure() {
        let runs = [
            json!({"response_time_p50": 0.001, "achieved_qps": 99.0}),
            json!({"response_time_p50": 0.002, "achieved_qps": 100.0}),
            json!({"response_time_p50": 0.003, "achieved_qps": null}),
        ];
        let s = summary(&runs);
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].key.as_str(), s[0].n), ("response_time_p50", 3));
        assert!((s[0].mean - 0.002).abs() < 1e-12);
        assert!((s[0].half_width.unwrap() - 4.303 * 0.001 / 3f64.sqrt()).abs() < 1e-12);
        assert_eq!((s[0].min, s[0].max), (0.001, 0.003));
        assert_eq!((s[1].n, s[1].mean), (2, 99.5));
        let j = to_json(&s);
        assert_eq!(j["achieved_qps"]["n"], json!(2));
        assert!(to_text(&s, 3).contains("response_time_p50"));
        assert!(to_text(&s, 3).starts_with("summary of 3 runs:"));
        assert!(to_text(&s, 1).starts_with("summary of 1 run:"));
    }
}
