//! `pacer compare BASE NEW`: is the new run faster or slower than the base, and is the
//! difference real? Two reports (`-o`), two shard states (`--state`) or two `--requests` files
//! ([`load`] tells them apart by content). Per figure (every timing family's p50, p90, p99 and
//! mean from [`crate::metric::METRICS`], the error rate, the achieved rate, goodput and output
//! tokens per second where present): both values, the change, and a verdict.
//!
//! - With `--requests` files, each request is a sample. A family's figure is `real` when the
//!   Mann–Whitney U test says the two runs' samples differ (p < 0.05) **and** the 95%
//!   bootstrap interval of the figure's change excludes 0; otherwise `noise`. The bootstrap
//!   resamples each side [`RESAMPLES`] times (seeded: the same files give the same answer); past
//!   [`BOOTSTRAP_CAP`] samples a side it resamples that many evenly spaced order statistics, so
//!   the work stays bounded (the test and the values use every sample). The error rate is
//!   judged by a two-proportion test and its interval.
//! - A family with fewer than [`MIN_SAMPLES`] samples on a side, a figure of a whole run (the
//!   achieved rate: one value per run; `--repeat` shows its spread), and every figure of two
//!   reports or states (they hold no per-request samples), is `cannot judge`, with why; the
//!   values and change are shown anyway.
//!
//! `--fail-if` conditions ([`crate::slo::change`]) are checked on both runs' figures. The page
//! (`--html`) is [`crate::html`]'s, drawn from [`Comparison::to_json`]. [`repeat`] summarises the
//! runs of `--repeat N` with the same figures ([`figure_keys`]) and [`stats::mean_ci`].

pub mod load;
pub mod repeat;
pub mod stats;

use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use crate::metric::{Id, in_json_order};
use crate::rng::SplitMix64;
use crate::slo::change::{Change, CheckedChange};
use crate::slo::{Metric, Stat};
use crate::units::human;
pub use load::{LoadError, Run, Source, load};

/// Fewer samples than this on a side: the family's figures cannot be judged.
pub const MIN_SAMPLES: usize = 20;
/// Bootstrap resamples of each side.
pub const RESAMPLES: usize = 1000;
/// The most samples a side's bootstrap resamples (evenly spaced order statistics beyond).
pub const BOOTSTRAP_CAP: usize = 20_000;
/// The bootstrap's seed ([`crate::rng`]): a comparison of the same files is the same.
pub const SEED: u64 = 21;
/// The significance level.
pub const ALPHA: f64 = 0.05;
/// `--min-change`'s default: a significant change smaller than this share of the base is
/// noise. Runs of one setup on one machine differ by about 1% at p50 (measured against the
/// mock: docs/compare.md), more than the per-request test, which takes each run's requests
/// as independent samples, allows for.
pub const MIN_CHANGE: f64 = 0.02;

/// The statistics compared per timing family, as (label, index into [`stats::summary4`]).
pub const FAMILY_STATS: [(&str, usize); 4] = [("p50", 0), ("p90", 1), ("p99", 2), ("mean", 3)];
/// The whole-run figures compared, where present.
pub const RUN_FIGURES: [&str; 4] = [
    "error_rate",
    "achieved_qps",
    "goodput",
    "output_tokens_per_second",
];

/// The report field of a family's statistic: `X_p50`, `mean_X`.
pub fn stat_key(family: &str, stat: &str) -> String {
    if stat == "mean" {
        format!("mean_{family}")
    } else {
        format!("{family}_{stat}")
    }
}

/// A figure: its report field, and its family and statistic (an index of [`FAMILY_STATS`])
/// when it is a timing.
#[derive(Clone, Debug, PartialEq)]
pub struct FigureKey {
    pub key: String,
    pub family: Option<(Id, usize)>,
}

/// The figures any of `reports` has a number for, in the report's order: the timing families'
/// statistics ([`FAMILY_STATS`]), then [`RUN_FIGURES`].
pub fn figure_keys(reports: &[&Value]) -> Vec<FigureKey> {
    let has = |k: &str| {
        reports
            .iter()
            .any(|r| r.get(k).is_some_and(Value::is_number))
    };
    let mut out = Vec::new();
    for m in in_json_order() {
        for (k, (stat, _)) in FAMILY_STATS.iter().enumerate() {
            let key = stat_key(m.name, stat);
            if has(&key) {
                out.push(FigureKey {
                    key,
                    family: Some((m.id, k)),
                });
            }
        }
    }
    for key in RUN_FIGURES {
        if has(key) {
            out.push(FigureKey {
                key: key.into(),
                family: None,
            });
        }
    }
    out
}

/// Whether a change is real.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Real,
    Noise,
    CannotJudge,
}

impl Verdict {
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Real => "real",
            Verdict::Noise => "noise",
            Verdict::CannotJudge => "cannot judge",
        }
    }
}

/// One figure of both runs, judged.
#[derive(Clone, Debug)]
pub struct Figure {
    pub key: String,
    /// A time in seconds (else a rate or a fraction).
    pub time: bool,
    pub base: Option<f64>,
    pub new: Option<f64>,
    pub verdict: Verdict,
    pub why: String,
    pub p_value: Option<f64>,
    /// The 95% interval of the change (new − base).
    pub interval: Option<(f64, f64)>,
    /// Samples per side.
    pub samples: Option<(usize, usize)>,
}

impl Figure {
    pub fn change(&self) -> Option<f64> {
        Some(self.new? - self.base?)
    }

    /// The change as a fraction of the base.
    pub fn relative(&self) -> Option<f64> {
        let b = self.base.filter(|b| *b != 0.0)?;
        Some(self.change()? / b)
    }
}

/// Two runs compared.
#[derive(Clone, Debug)]
pub struct Comparison {
    pub source: Source,
    pub min_change: f64,
    pub base: Run,
    pub new: Run,
    pub figures: Vec<Figure>,
    pub checks: Vec<CheckedChange>,
}

/// Compares `base` and `new` (of one kind) and checks `changes` on them.
/// `min_change` is a fraction of the base ([`MIN_CHANGE`]).
pub fn compare(
    mut base: Run,
    mut new: Run,
    changes: &[Change],
    min_change: f64,
) -> Result<Comparison, LoadError> {
    if base.source != new.source {
        return Err(LoadError::Mixed {
            base: base.source,
            new: new.source,
        });
    }
    // A condition may read a percentile the report's set lacks: the lines give it.
    for c in changes {
        if let Metric::Timing {
            family,
            stat: Stat::Percentile { q, .. },
        } = &c.metric
            && let Some(m) = crate::metric::by_name(family)
        {
            let key = c.metric.key();
            load::add_percentile(&mut base, m.id, *q, &key);
            load::add_percentile(&mut new, m.id, *q, &key);
        }
    }
    let keys = figure_keys(&[&base.figures, &new.figures]);
    let mut rng = SplitMix64::new(SEED);
    let mut figures = Vec::with_capacity(keys.len());
    // Per family, once: the test and the bootstrap of its four statistics.
    let mut judged: Vec<Option<FamilyJudgement>> = vec![None; Id::ALL.len()];
    for k in keys {
        let read = |r: &Run| r.figures.get(&k.key).and_then(Value::as_f64);
        let mut f = Figure {
            key: k.key.clone(),
            time: k.family.is_some(),
            base: read(&base),
            new: read(&new),
            verdict: Verdict::CannotJudge,
            why: String::new(),
            p_value: None,
            interval: None,
            samples: None,
        };
        match (&base.samples, &new.samples, k.family) {
            (Some(a), Some(b), Some((id, stat))) => {
                let j = judged[id as usize].get_or_insert_with(|| {
                    judge_family(&a.values[id as usize], &b.values[id as usize], &mut rng)
                });
                j.apply(stat, &mut f, min_change);
            }
            (Some(a), Some(b), None) if k.key == "error_rate" => {
                match stats::two_proportions(a.errors, a.ran, b.errors, b.ran) {
                    None => {
                        f.verdict = Verdict::Noise;
                        f.why = "no errors in either run".into();
                    }
                    Some((p, iv)) => {
                        f.p_value = Some(p);
                        f.interval = Some(iv);
                        decide(&mut f, p, iv, "two-proportion test", min_change);
                    }
                }
                f.samples = Some((a.ran as usize, b.ran as usize));
            }
            (Some(_), Some(_), None) => {
                f.why = "one figure per run: run each side with --repeat to see its spread".into();
            }
            _ => {
                f.why = format!(
                    "{} hold no per-request samples: compare the runs' --requests files",
                    match base.source {
                        Source::State => "states",
                        _ => "reports",
                    }
                );
            }
        }
        figures.push(f);
    }
    let checks = changes
        .iter()
        .map(|c| c.check(&base.figures, &new.figures))
        .collect();
    Ok(Comparison {
        source: base.source,
        min_change,
        base,
        new,
        figures,
        checks,
    })
}

/// A family's test and intervals, computed once for its four statistics.
#[derive(Clone, Debug)]
enum FamilyJudgement {
    TooFew(usize, usize),
    NoVariance(usize, usize),
    Tested {
        p: f64,
        intervals: [(f64, f64); 4],
        n: (usize, usize),
    },
}

fn judge_family(a: &[f64], b: &[f64], rng: &mut SplitMix64) -> FamilyJudgement {
    let n = (a.len(), b.len());
    if n.0 < MIN_SAMPLES || n.1 < MIN_SAMPLES {
        return FamilyJudgement::TooFew(n.0, n.1);
    }
    let Some(p) = stats::mann_whitney_p(a, b) else {
        return FamilyJudgement::NoVariance(n.0, n.1);
    };
    let (ta, tb) = (stats::thin(a, BOOTSTRAP_CAP), stats::thin(b, BOOTSTRAP_CAP));
    FamilyJudgement::Tested {
        p,
        intervals: stats::bootstrap_diff(&ta, &tb, RESAMPLES, rng),
        n,
    }
}

impl FamilyJudgement {
    fn apply(&self, stat: usize, f: &mut Figure, min_change: f64) {
        match *self {
            FamilyJudgement::TooFew(a, b) => {
                f.samples = Some((a, b));
                f.why = format!("fewer than {MIN_SAMPLES} samples (base {a}, new {b})");
            }
            FamilyJudgement::NoVariance(a, b) => {
                f.samples = Some((a, b));
                f.verdict = Verdict::Noise;
                f.why = "every sample of both runs is the same".into();
            }
            FamilyJudgement::Tested { p, intervals, n } => {
                f.samples = Some(n);
                f.p_value = Some(p);
                f.interval = Some(intervals[stat]);
                decide(f, p, intervals[stat], "Mann–Whitney", min_change);
            }
        }
    }
}

/// Real when p < [`ALPHA`], the interval excludes 0 and the change is at least `min_change`
/// of the base; the why says what held.
fn decide(f: &mut Figure, p: f64, (lo, hi): (f64, f64), test: &str, min_change: f64) {
    let excludes = lo > 0.0 || hi < 0.0;
    let small = f.relative().is_none_or(|r| r.abs() < min_change);
    f.verdict = if p < ALPHA && excludes && !small {
        Verdict::Real
    } else {
        Verdict::Noise
    };
    let show = |x: f64| signed(x, f.time);
    f.why = format!(
        "{test} {}; 95% interval {} … {}{}",
        p_text(p),
        show(lo),
        show(hi),
        if excludes { "" } else { " includes 0" }
    );
    if p < ALPHA && excludes && small {
        let _ = write!(f.why, "; smaller than --min-change {}%", min_change * 100.0);
    }
}

fn p_text(p: f64) -> String {
    if p < 0.001 {
        "p < 0.001".into()
    } else {
        format!("p = {p:.3}")
    }
}

/// A value as the table shows it: a time in its unit, else a number.
fn value_text(v: Option<f64>, time: bool) -> String {
    match v {
        None => "–".into(),
        Some(x) if time => human(x),
        Some(x) => format!("{}", (x * 1e4).round() / 1e4),
    }
}

fn signed(x: f64, time: bool) -> String {
    let sign = if x < 0.0 { "−" } else { "+" };
    format!("{sign}{}", value_text(Some(x.abs()), time))
}

impl Comparison {
    /// Whether any `--fail-if` holds (exit 3).
    pub fn failed(&self) -> Vec<&CheckedChange> {
        self.checks.iter().filter(|c| c.holds).collect()
    }

    /// The text table.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let side = |r: &Run| match &r.samples {
            Some(s) => format!("{} ({} requests)", r.path.display(), s.ran),
            None => r.path.display().to_string(),
        };
        let _ = writeln!(
            out,
            "pacer compare ({}): base {}, new {}\n",
            self.source.word(),
            side(&self.base),
            side(&self.new)
        );
        let _ = writeln!(
            out,
            "  {:<36} {:>10} {:>10} {:>11} {:>8}  {:<13} why",
            "figure", "base", "new", "change", "%", "verdict"
        );
        for f in &self.figures {
            let change = f.change().map_or("–".into(), |c| signed(c, f.time));
            let pct = f.relative().map_or("–".into(), |r| {
                format!("{}{:.1}%", if r < 0.0 { "−" } else { "+" }, r.abs() * 100.0)
            });
            let _ = writeln!(
                out,
                "  {:<36} {:>10} {:>10} {:>11} {:>8}  {:<13} {}",
                f.key,
                value_text(f.base, f.time),
                value_text(f.new, f.time),
                change,
                pct,
                f.verdict.word(),
                f.why
            );
        }
        if self.source == Source::Requests {
            let _ = writeln!(
                out,
                "\n  real: Mann–Whitney p < {ALPHA}, the 95% bootstrap interval ({RESAMPLES} \
                 resamples, seed {SEED}, at most {BOOTSTRAP_CAP} samples a side) excludes 0, and \
                 the change is at least {}% (--min-change)",
                self.min_change * 100.0
            );
        }
        if !self.checks.is_empty() {
            let _ = writeln!(out, "\n  --fail-if:");
            for c in &self.checks {
                let change = match c.change {
                    None => "cannot be checked".into(),
                    Some(x) if c.relative => format!("{:+.1}%", x * 100.0),
                    Some(x) => format!("{x:+.6}"),
                };
                let _ = writeln!(
                    out,
                    "    {:<36} change {:<18} {}",
                    c.expression,
                    change,
                    if c.holds { "HOLDS" } else { "does not hold" }
                );
            }
        }
        out
    }

    /// The JSON (`--json`, `-o`), which the HTML page draws: `"kind": "compare"`.
    pub fn to_json(&self) -> Value {
        let figures: Vec<Value> = self
            .figures
            .iter()
            .map(|f| {
                json!({
                    "figure": f.key,
                    "unit": if f.time { "s" } else { "" },
                    "base": f.base,
                    "new": f.new,
                    "change": f.change(),
                    "change_relative": f.relative(),
                    "verdict": f.verdict.word(),
                    "why": f.why,
                    "p_value": f.p_value,
                    "interval": f.interval.map(|(a, b)| [a, b]),
                    "samples": f.samples.map(|(a, b)| [a, b]),
                })
            })
            .collect();
        let side = |r: &Run| {
            json!({
                "path": r.path.display().to_string(),
                "config": r.figures.get("config").cloned().unwrap_or(Value::Null),
                "requests": r.samples.as_ref().map(|s| s.ran),
            })
        };
        json!({
            "kind": "compare",
            "source": self.source.word(),
            "base": side(&self.base),
            "new": side(&self.new),
            "figures": figures,
            "fail_if": self.checks.iter().map(CheckedChange::to_json).collect::<Vec<_>>(),
            "method": {
                "alpha": ALPHA,
                "min_change": self.min_change,
                "min_samples": MIN_SAMPLES,
                "resamples": RESAMPLES,
                "bootstrap_cap": BOOTSTRAP_CAP,
                "seed": SEED,
            },
            "curves": self.curves(),
        })
    }

    /// Per family, both runs' percentiles as `[q, seconds]` points, for the page's charts: from
    /// the samples (q = 1 … 99 and 99.9), else the report's percentiles.
    fn curves(&self) -> Value {
        let mut out = Map::new();
        for m in in_json_order() {
            let side = |r: &Run| -> Vec<[f64; 2]> {
                if let Some(s) = &r.samples {
                    let v = &s.values[m.id as usize];
                    if v.is_empty() {
                        return Vec::new();
                    }
                    let mut qs: Vec<f64> = (1..100).map(f64::from).collect();
                    qs.push(99.9);
                    return qs
                        .into_iter()
                        .map(|q| [q, crate::stats::percentile_linear(v, q)])
                        .collect();
                }
                [
                    (50.0, "50"),
                    (90.0, "90"),
                    (97.0, "97"),
                    (99.0, "99"),
                    (99.9, "999"),
                ]
                .into_iter()
                .filter_map(|(q, d)| {
                    let v = r.figures.get(format!("{}_p{d}", m.name))?.as_f64()?;
                    Some([q, v])
                })
                .collect()
            };
            let (b, n) = (side(&self.base), side(&self.new));
            if !b.is_empty() || !n.is_empty() {
                out.insert(m.name.into(), json!({"base": b, "new": n}));
            }
        }
        Value::Object(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn run(source: Source, figures: Value, samples: Option<load::Samples>) -> Run {
        Run {
            path: PathBuf::from("x"),
            source,
            figures,
            samples,
        }
    }

    fn samples(rt: Vec<f64>, ran: u64, errors: u64) -> load::Samples {
        let mut values = vec![Vec::new(); Id::ALL.len()];
        let mut rt = rt;
        rt.sort_by(f64::total_cmp);
        values[Id::ResponseTime as usize] = rt;
        load::Samples {
            values,
            ran,
            errors,
        }
    }

    #[test]
    fn reports_show_values_and_cannot_judge() {
        let b = json!({"total_requests": 10, "response_time_p50": 0.010, "mean_response_time": 0.012, "error_rate": 0.1});
        let n = json!({"total_requests": 10, "response_time_p50": 0.011, "mean_response_time": 0.012, "error_rate": 0.0});
        let c = compare(
            run(Source::Report, b, None),
            run(Source::Report, n, None),
            &[],
            MIN_CHANGE,
        )
        .unwrap();
        let keys: Vec<&str> = c.figures.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(
            keys,
            ["response_time_p50", "mean_response_time", "error_rate"]
        );
        let f = &c.figures[0];
        assert_eq!(f.verdict, Verdict::CannotJudge);
        assert!(f.why.contains("--requests"), "{}", f.why);
        assert!((f.relative().unwrap() - 0.1).abs() < 1e-9);
        assert!(c.to_text().contains("+10.0%"), "{}", c.to_text());
        let e = compare(
            run(Source::Report, json!({}), None),
            run(Source::Requests, json!({}), None),
            &[],
            MIN_CHANGE,
        )
        .unwrap_err();
        assert!(e.to_string().contains("two of a kind"), "{e}");
    }

    #[test]
    fn samples_are_judged_real_or_noise() {
        let mut rng = SplitMix64::new(5);
        let mut draw = |shift: f64| -> Vec<f64> {
            (0..300)
                .map(|_| 0.001 + shift + 0.0002 * rng.next_f64())
                .collect()
        };
        let (a, same, slower) = (draw(0.0), draw(0.0), draw(0.001));
        let figures = |s: &load::Samples| {
            let v = &s.values[0];
            json!({"response_time_p50": crate::stats::percentile_linear(v, 50.0), "mean_response_time": 0.0, "error_rate": s.errors as f64 / s.ran as f64})
        };
        let side = |v: Vec<f64>, errors| {
            let s = samples(v, 300, errors);
            run(Source::Requests, figures(&s), Some(s))
        };
        let c = compare(side(a.clone(), 3), side(slower, 30), &[], MIN_CHANGE).unwrap();
        assert_eq!(c.figures[0].verdict, Verdict::Real, "{}", c.figures[0].why);
        assert_eq!(c.figures[2].key, "error_rate");
        assert_eq!(c.figures[2].verdict, Verdict::Real, "{}", c.figures[2].why);
        let c = compare(side(a, 3), side(same, 3), &[], MIN_CHANGE).unwrap();
        assert_eq!(c.figures[0].verdict, Verdict::Noise, "{}", c.figures[0].why);
        assert_eq!(c.figures[2].verdict, Verdict::Noise);
        let few = compare(
            side(vec![0.1; 5], 0),
            side(vec![0.2; 5], 0),
            &[],
            MIN_CHANGE,
        )
        .unwrap();
        assert_eq!(few.figures[0].verdict, Verdict::CannotJudge);
        assert_eq!(few.figures[2].why, "no errors in either run");
    }
}
