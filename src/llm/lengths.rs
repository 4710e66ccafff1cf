//! Per-request token lengths: the `--input-tokens` and `--output-tokens` values, parsed from text
//! and drawn with the run's seeded generator.
//!
//! Forms (whitespace around the parts is allowed):
//! - `MEAN`: every request gets `MEAN` (rounded to a whole token).
//! - `MEAN:STDDEV`: a normal distribution, each draw rounded to a whole token. It is *truncated*,
//!   not clamped: a draw that would round below 1 (or above [`MAX_TOKENS`]) is drawn again, so no
//!   probability piles up at 1. When `STDDEV` is large against `MEAN` the realized mean is
//!   therefore above `MEAN` (for `MEAN` 2, `STDDEV` 5 it is about 5); the shape between the bounds
//!   is the normal's.
//! - `uniform:MIN:MAX`: whole numbers from `MIN` to `MAX`, both included.
//!
//! What the lengths are used for (prompt size, `max_tokens`) is the caller's; this module only
//! parses and draws.

use std::fmt;
use std::str::FromStr;

use crate::rng::SplitMix64;

/// Longest length drawn or accepted: a million tokens is past every model's context, and keeps a
/// typo (`5000000`) from building gigabytes of prompts.
pub const MAX_TOKENS: u32 = 1_000_000;

/// A distribution of token lengths.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LengthDist {
    /// Always this many.
    Fixed(u32),
    /// Normal, rounded, truncated to `1..=MAX_TOKENS` (see the module docs).
    Normal { mean: f64, std_dev: f64 },
    /// Uniform over `min..=max`.
    Uniform { min: u32, max: u32 },
}

/// A length text that does not parse: where (1-based character position) and what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LengthError {
    pub input: String,
    pub position: usize,
    pub expected: &'static str,
}

impl fmt::Display for LengthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?}: at character {}, expected {} (forms: MEAN, MEAN:STDDEV, uniform:MIN:MAX)",
            self.input, self.position, self.expected
        )
    }
}

impl std::error::Error for LengthError {}

impl FromStr for LengthDist {
    type Err = LengthError;

    fn from_str(s: &str) -> Result<LengthDist, LengthError> {
        // Each part with the byte offset it starts at, for error positions.
        let mut parts = Vec::with_capacity(3);
        let mut start = 0;
        for piece in s.split(':') {
            parts.push((start, piece));
            start += piece.len() + 1;
        }
        let err = |byte: usize, expected| LengthError {
            input: s.to_owned(),
            position: s[..byte.min(s.len())].chars().count() + 1,
            expected,
        };
        if parts[0].1.trim().eq_ignore_ascii_case("uniform") {
            if parts.len() < 3 {
                return Err(err(s.len(), "\":MIN:MAX\" after \"uniform\""));
            }
            if parts.len() > 3 {
                let (at, _) = parts[3];
                return Err(err(at - 1, "the end after uniform:MIN:MAX"));
            }
            let min = whole(parts[1], 1, &err, "MIN, a whole number of tokens from 1")?;
            let max = whole(parts[2], min, &err, "MAX, a whole number at least MIN")?;
            return Ok(LengthDist::Uniform { min, max });
        }
        if parts.len() > 2 {
            let (at, _) = parts[2];
            return Err(err(at - 1, "the end after MEAN:STDDEV"));
        }
        let mean = number(
            parts[0],
            &err,
            "MEAN, a number of tokens from 1 (or \"uniform\")",
        )?;
        if !(1.0..=MAX_TOKENS as f64).contains(&mean) {
            return Err(err(
                at_number(parts[0]),
                "MEAN, a number of tokens from 1 to 1000000",
            ));
        }
        let std_dev = match parts.get(1) {
            None => 0.0,
            Some(&part) => {
                let sd = number(part, &err, "STDDEV, a number of tokens from 0")?;
                if !(0.0..=MAX_TOKENS as f64).contains(&sd) {
                    return Err(err(
                        at_number(part),
                        "STDDEV, a number of tokens from 0 to 1000000",
                    ));
                }
                sd
            }
        };
        Ok(if std_dev == 0.0 {
            LengthDist::Fixed(round_tokens(mean))
        } else {
            LengthDist::Normal { mean, std_dev }
        })
    }
}

/// Where a part's text starts, past leading blanks.
fn at_number((at, text): (usize, &str)) -> usize {
    at + text.len() - text.trim_start().len()
}

/// A finite number, or an error at the part's first non-blank character.
fn number(
    (at, text): (usize, &str),
    err: &impl Fn(usize, &'static str) -> LengthError,
    expected: &'static str,
) -> Result<f64, LengthError> {
    match text.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(err(at_number((at, text)), expected)),
    }
}

/// A whole number in `min..=MAX_TOKENS`.
fn whole(
    (at, text): (usize, &str),
    min: u32,
    err: &impl Fn(usize, &'static str) -> LengthError,
    expected: &'static str,
) -> Result<u32, LengthError> {
    match text.trim().parse::<u32>() {
        Ok(v) if (min..=MAX_TOKENS).contains(&v) => Ok(v),
        _ => Err(err(at_number((at, text)), expected)),
    }
}

/// `x` rounded to a whole token in `1..=MAX_TOKENS`; only for values already in range.
fn round_tokens(x: f64) -> u32 {
    x.round().clamp(1.0, MAX_TOKENS as f64) as u32
}

impl LengthDist {
    /// One length, from `rng`.
    pub fn draw(&self, rng: &mut SplitMix64) -> u32 {
        match *self {
            LengthDist::Fixed(n) => n,
            LengthDist::Uniform { min, max } => min + rng.below((max - min) as usize + 1) as u32,
            LengthDist::Normal { mean, std_dev } => {
                // The mean is at least 1, so a draw lands in range with probability above 1/2:
                // 64 misses in a row has probability below 2^-64. The clamp after is for that.
                for _ in 0..64 {
                    let x = (mean + std_dev * standard_normal(rng)).round();
                    if (1.0..=MAX_TOKENS as f64).contains(&x) {
                        return x as u32;
                    }
                }
                round_tokens(mean)
            }
        }
    }

    /// The mean before truncation (for `uniform`, the middle).
    pub fn nominal_mean(&self) -> f64 {
        match *self {
            LengthDist::Fixed(n) => n as f64,
            LengthDist::Normal { mean, .. } => mean,
            LengthDist::Uniform { min, max } => (min as f64 + max as f64) / 2.0,
        }
    }

    /// The largest length a draw can give.
    pub fn max(&self) -> u32 {
        match *self {
            LengthDist::Fixed(n) => n,
            LengthDist::Normal { .. } => MAX_TOKENS,
            LengthDist::Uniform { max, .. } => max,
        }
    }
}

/// Written back in the form it parses from, for the report's `config`.
impl fmt::Display for LengthDist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            LengthDist::Fixed(n) => write!(f, "{n}"),
            LengthDist::Normal { mean, std_dev } => write!(f, "{mean}:{std_dev}"),
            LengthDist::Uniform { min, max } => write!(f, "uniform:{min}:{max}"),
        }
    }
}

/// One standard normal draw (Box–Muller; the second value is dropped to keep draws independent
/// of how many were asked before).
fn standard_normal(rng: &mut SplitMix64) -> f64 {
    // 1 - u is in (0, 1], so the logarithm is finite.
    let u1 = 1.0 - rng.next_f64();
    let u2 = rng.next_f64();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> LengthDist {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn fails(s: &str) -> LengthError {
        s.parse::<LengthDist>().expect_err(s)
    }

    #[test]
    fn forms() {
        assert_eq!(parse("512"), LengthDist::Fixed(512));
        assert_eq!(parse(" 512 "), LengthDist::Fixed(512));
        assert_eq!(parse("512:0"), LengthDist::Fixed(512));
        assert_eq!(parse("2.6"), LengthDist::Fixed(3));
        assert_eq!(
            parse("512:128"),
            LengthDist::Normal {
                mean: 512.0,
                std_dev: 128.0
            }
        );
        assert_eq!(
            parse("100.5 : 7.25"),
            LengthDist::Normal {
                mean: 100.5,
                std_dev: 7.25
            }
        );
        assert_eq!(
            parse("uniform:1:10"),
            LengthDist::Uniform { min: 1, max: 10 }
        );
        assert_eq!(
            parse("Uniform: 5 :5"),
            LengthDist::Uniform { min: 5, max: 5 }
        );
        for s in ["512", "512:128", "uniform:1:10", "100.5:7.25"] {
            assert_eq!(parse(&parse(s).to_string()), parse(s), "{s}");
        }
    }

    #[test]
    fn errors_say_where_and_what() {
        let e = fails("abc");
        assert_eq!((e.position, e.expected.starts_with("MEAN")), (1, true));
        let e = fails("512:x");
        assert_eq!(e.position, 5);
        assert!(e.expected.starts_with("STDDEV"), "{e}");
        let e = fails("512: -3");
        assert_eq!(e.position, 6);
        let e = fails("0");
        assert_eq!(e.position, 1);
        assert!(e.expected.contains("from 1"), "{e}");
        assert_eq!(fails("512:1:2").position, 6);
        assert_eq!(fails("").position, 1);
        assert_eq!(fails("nan").position, 1);
        assert_eq!(fails("inf:1").position, 1);
        assert_eq!(fails("2000000").position, 1);
        let e = fails("uniform:10");
        assert_eq!(e.position, 11);
        assert!(e.expected.contains("MIN:MAX"), "{e}");
        let e = fails("uniform:10:5");
        assert_eq!(e.position, 12);
        assert!(e.expected.starts_with("MAX"), "{e}");
        assert_eq!(fails("uniform:0:5").position, 9);
        assert_eq!(fails("uniform:1.5:5").position, 9);
        assert_eq!(fails("uniform:1:5:9").position, 12);
        // Positions count characters, not bytes.
        assert_eq!(fails("\u{a0}512:x").position, 6);
        let text = fails("512:x").to_string();
        assert!(
            text.contains("\"512:x\"") && text.contains("character 5"),
            "{text}"
        );
    }

    fn mean_std(xs: &[u32]) -> (f64, f64) {
        let n = xs.len() as f64;
        let mean = xs.iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = xs.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (mean, var.sqrt())
    }

    fn draws(d: LengthDist, n: usize, seed: u64) -> Vec<u32> {
        let mut rng = SplitMix64::new(seed);
        (0..n).map(|_| d.draw(&mut rng)).collect()
    }

    #[test]
    fn normal_draws_have_the_asked_mean_and_spread() {
        const N: usize = 100_000;
        let xs = draws(parse("512:64"), N, 7);
        let (mean, std) = mean_std(&xs);
        // Four standard errors: the mean's is 64/sqrt(N) = 0.2; the std's about 64/sqrt(2N).
        assert!((mean - 512.0).abs() < 4.0 * 0.2, "mean {mean}");
        assert!(
            (std - 64.0).abs() < 4.0 * 64.0 / (2.0 * N as f64).sqrt(),
            "std {std}"
        );
        // Same seed, same draws.
        assert_eq!(xs, draws(parse("512:64"), N, 7));
        assert_ne!(xs[..100], draws(parse("512:64"), 100, 8)[..]);
    }

    #[test]
    fn truncated_normal_never_goes_below_one_and_keeps_its_shape() {
        let (mu, sigma) = (2.0, 5.0);
        let xs = draws(parse("2:5"), 100_000, 11);
        assert!(xs.iter().all(|&x| x >= 1));
        // The exact mean of round(X) for X ~ N(2, 5) conditioned on round(X) >= 1.
        let mass = |k: f64| phi((k + 0.5 - mu) / sigma) - phi((k - 0.5 - mu) / sigma);
        let (mut total, mut weighted) = (0.0, 0.0);
        for k in 1..200 {
            let p = mass(k as f64);
            total += p;
            weighted += p * k as f64;
        }
        let expected = weighted / total;
        let (mean, std) = mean_std(&xs);
        assert!(
            (mean - expected).abs() < 4.0 * std / (xs.len() as f64).sqrt(),
            "mean {mean}, expected {expected}"
        );
        // Truncation, not clamping: 1 is only as likely as the normal makes it.
        let ones = xs.iter().filter(|&&x| x == 1).count() as f64 / xs.len() as f64;
        let expected_ones = mass(1.0) / total;
        assert!(
            (ones - expected_ones).abs() < 0.005,
            "{ones} vs {expected_ones}"
        );
    }

    #[test]
    fn uniform_and_fixed_draws() {
        let xs = draws(parse("uniform:3:7"), 50_000, 3);
        let mut counts = [0usize; 8];
        for &x in &xs {
            counts[x as usize] += 1;
        }
        assert_eq!(counts[..3], [0, 0, 0]);
        for &c in &counts[3..] {
            // Each of 5 values has p = 0.2; 10,000 expected, sd about 89.
            assert!((c as f64 - 10_000.0).abs() < 500.0, "{counts:?}");
        }
        assert!(draws(parse("42"), 100, 1).iter().all(|&x| x == 42));
        assert_eq!(parse("uniform:3:7").nominal_mean(), 5.0);
        assert_eq!(parse("uniform:3:7").max(), 7);
    }

    /// The standard normal CDF, via Abramowitz & Stegun 7.1.26 (error below 1.5e-7).
    fn phi(x: f64) -> f64 {
        let z = x / std::f64::consts::SQRT_2;
        let t = 1.0 / (1.0 + 0.327_591_1 * z.abs());
        let poly = t
            * (0.254_829_592
                + t * (-0.284_496_736
                    + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
        let erf = 1.0 - poly * (-z * z).exp();
        0.5 * (1.0 + if z >= 0.0 { erf } else { -erf })
    }
}
