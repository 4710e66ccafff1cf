//! Stages: a run whose rate changes over time. This module owns the checks of a stage list (each
//! front reads its own form: the command line's `--stages "100:30s,200:1m"`, the API's
//! `[{"qps": 100, "duration": 30}, ...]`) and the rate function it defines: r(t), its integral
//! Λ(t), and the exact inverse Λ⁻¹ that gives every request its intended time. Pure arithmetic in seconds since the run's
//! start; the engine's pacing turns these seconds into instants, and the report sorts requests
//! into stages with [`RateCurve::stage_at`].
//!
//! **Steps and ramps.** Without a ramp the rate is piecewise constant: stage k sends at its own
//! rate for its duration. With `ramp` the rate is piecewise linear, as k6's `ramping-arrival-rate`
//! defines it: each stage's rate is the rate it *reaches* at its end, moving linearly from the
//! previous stage's rate over the stage's duration. The first stage has no previous rate, so it
//! holds its own (k6 would start from `startRate`); a first stage of 0 s sets the starting rate,
//! so `100:0s,1000:10s` ramps from 100 to 1,000 req/s over 10 s. A 0 s stage is only allowed with
//! a ramp (an instant jump, as in k6), never last; without a ramp it would send nothing.
//!
//! **Request times.** Request `i` is intended at the `t` where Λ(t) = i (request 0 at 0), solved
//! in closed form per stage: linear on a constant stage, the root of a quadratic on a ramp, taken
//! in the form that does not cancel (`2y / (a + √(a² + 4cy))`). A run schedules `round(Λ(T))`
//! requests; Poisson arrivals (seeded unit-rate gaps τ, then t = Λ⁻¹(τ): time-rescaling) that
//! land past the end keep the last rate.

use std::fmt;

/// Most stages one run may have: each gets its own summary in the report.
pub const MAX_STAGES: usize = 1000;

/// One stage as asked: a rate in requests per second held (or, with a ramp, reached) over a
/// duration in seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stage {
    pub qps: f64,
    pub duration: f64,
}

/// Why a stage list cannot be run. The text names the stage (1-based) and what a stage looks
/// like, so the CLI can print it as is and the API can put it in a 422.
#[derive(Clone, Debug, PartialEq)]
pub struct StageError(pub String);

impl fmt::Display for StageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StageError {}

/// Whether `stages` can be run: at least one, at most [`MAX_STAGES`], every rate a finite number
/// above 0, every duration finite and above 0 (0 allowed with a ramp, but not for the last
/// stage), and at least one request in all.
pub fn check(stages: &[Stage], ramp: bool) -> Result<(), StageError> {
    if stages.is_empty() {
        return Err(StageError("no stages given".into()));
    }
    if stages.len() > MAX_STAGES {
        return Err(StageError(format!(
            "{} stages: at most {MAX_STAGES} are allowed",
            stages.len()
        )));
    }
    for (k, s) in stages.iter().enumerate() {
        let n = k + 1;
        if !(s.qps.is_finite() && s.qps > 0.0) {
            return Err(StageError(format!(
                "stage {n}: the rate must be a number above 0, not {}",
                s.qps
            )));
        }
        if !s.duration.is_finite() || s.duration < 0.0 {
            return Err(StageError(format!(
                "stage {n}: the duration must be a number of seconds above 0, not {}",
                s.duration
            )));
        }
        if s.duration == 0.0 && !ramp {
            return Err(StageError(format!(
                "stage {n}: a duration of 0 sends nothing without a ramp (with --ramp, a 0 s \
                 stage sets the rate the next stage starts from)"
            )));
        }
        if s.duration == 0.0 && n == stages.len() {
            return Err(StageError(format!(
                "stage {n}: the last stage needs a duration above 0"
            )));
        }
    }
    if RateCurve::new(stages, ramp).count() == 0 {
        return Err(StageError("the stages round to 0 requests".into()));
    }
    Ok(())
}

/// One piece of the rate function: from `start` for `duration` seconds, the rate moves linearly
/// from `from` to `to` (equal on a step); `before` is Λ at `start`.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Segment {
    start: f64,
    duration: f64,
    from: f64,
    to: f64,
    before: f64,
}

impl Segment {
    fn end(&self) -> f64 {
        self.start + self.duration
    }

    fn area(&self) -> f64 {
        (self.from + self.to) / 2.0 * self.duration
    }

    /// Λ(start + u) − Λ(start), for u in [0, duration].
    fn integral(&self, u: f64) -> f64 {
        self.from * u + self.slope_half() * u * u
    }

    /// c in Λ(start + u) − Λ(start) = a·u + c·u²; 0 on a step (and on a 0 s stage).
    fn slope_half(&self) -> f64 {
        if self.duration > 0.0 {
            (self.to - self.from) / (2.0 * self.duration)
        } else {
            0.0
        }
    }

    /// The u in [0, duration] where `integral(u) = y`, for y in [0, area]. The root of
    /// c·u² + a·u − y = 0 as `2y / (a + √(a² + 4cy))`: the textbook `(−a + √…) / 2c` cancels
    /// when c is small, and this form is exact for c = 0 (a step) as well. `a² + 4cy` stays
    /// positive because the rate between two positive rates does.
    fn inverse(&self, y: f64) -> f64 {
        let a = self.from;
        let c = self.slope_half();
        if c == 0.0 {
            // A step: the same value as the root below (2y / 2a), without the square root.
            return (y / a).clamp(0.0, self.duration);
        }
        let disc = (a * a + 4.0 * c * y).max(0.0);
        (2.0 * y / (a + disc.sqrt())).clamp(0.0, self.duration)
    }
}

/// The rate function of a run (see the module docs). Built from stages that passed [`check`];
/// a constant-rate run is one stage.
#[derive(Clone, Debug, PartialEq)]
pub struct RateCurve {
    segments: Vec<Segment>,
}

impl RateCurve {
    /// The curve of `stages` (as [`check`] accepts them), stepped or ramped.
    pub fn new(stages: &[Stage], ramp: bool) -> RateCurve {
        let mut segments = Vec::with_capacity(stages.len());
        let (mut start, mut before) = (0.0, 0.0);
        let mut previous = stages.first().map_or(0.0, |s| s.qps);
        for s in stages {
            let from = if ramp { previous } else { s.qps };
            let seg = Segment {
                start,
                duration: s.duration,
                from,
                to: s.qps,
                before,
            };
            start = seg.end();
            before += seg.area();
            previous = s.qps;
            segments.push(seg);
        }
        RateCurve { segments }
    }

    /// One stage at `qps` for `duration` seconds: the schedule of a plain run.
    pub fn constant(qps: f64, duration: f64) -> RateCurve {
        RateCurve::new(&[Stage { qps, duration }], false)
    }

    /// Total seconds of the stages.
    pub fn duration(&self) -> f64 {
        self.segments.last().map_or(0.0, Segment::end)
    }

    /// Λ(T): the requests the stages hold, before rounding.
    pub fn area(&self) -> f64 {
        self.segments.last().map_or(0.0, |s| s.before + s.area())
    }

    /// Requests the run schedules: `round(Λ(T))`.
    pub fn count(&self) -> u64 {
        let a = self.area().round();
        if a.is_finite() && a > 0.0 {
            a as u64
        } else {
            0
        }
    }

    /// The segment that holds time `t` (the later one at a boundary; never a 0 s one, since it
    /// starts where the next starts); None before 0 or with no segments.
    fn segment_at(&self, t: f64) -> Option<usize> {
        self.segments
            .partition_point(|s| s.start <= t)
            .checked_sub(1)
    }

    /// r(t): the asked rate at `t` seconds (the last rate past the end, 0 before the start).
    pub fn rate_at(&self, t: f64) -> f64 {
        match self.segment_at(t) {
            None => 0.0,
            Some(k) => {
                let s = &self.segments[k];
                let u = t - s.start;
                if u >= s.duration {
                    s.to
                } else {
                    s.from + 2.0 * s.slope_half() * u
                }
            }
        }
    }

    /// Λ(t): the requests due by `t` (continuing at the last rate past the end).
    pub fn integral(&self, t: f64) -> f64 {
        match self.segment_at(t) {
            None => 0.0,
            Some(k) => {
                let s = &self.segments[k];
                let u = t - s.start;
                if u > s.duration {
                    s.before + s.area() + s.to * (u - s.duration)
                } else {
                    s.before + s.integral(u)
                }
            }
        }
    }

    /// Λ⁻¹(x): the seconds at which `x` requests are due. Request `i` is intended at
    /// `time_of(i)`; past Λ(T) the last rate continues (only Poisson arrivals get there).
    pub fn time_of(&self, x: f64) -> f64 {
        // NaN lands here too.
        if x.is_nan() || x <= 0.0 {
            return 0.0;
        }
        // The last segment starting at or below x; a 0 s segment shares `before` with the next
        // one, so the next one is chosen.
        let Some(k) = self
            .segments
            .partition_point(|s| s.before <= x)
            .checked_sub(1)
        else {
            return 0.0;
        };
        let s = &self.segments[k];
        let y = x - s.before;
        let area = s.area();
        if k + 1 == self.segments.len() && y > area {
            return s.end() + (y - area) / s.to;
        }
        s.start + s.inverse(y.min(area))
    }

    /// Stage index (0-based) of a request intended at `t` seconds: the stage whose span
    /// `[start, end)` holds it; the first before 0, the last from its end on.
    pub fn stage_at(&self, t: f64) -> usize {
        self.segment_at(t).unwrap_or(0)
    }

    /// Where each stage starts, in seconds (a 0 s stage starts where the next one does).
    pub fn starts(&self) -> impl Iterator<Item = f64> + '_ {
        self.segments.iter().map(|s| s.start)
    }

    /// Number of stages.
    pub fn stages(&self) -> usize {
        self.segments.len()
    }

    /// The rates stage `k` starts and ends at (equal on a step).
    pub fn rates_of(&self, k: usize) -> Option<(f64, f64)> {
        self.segments.get(k).map(|s| (s.from, s.to))
    }

    /// `(start, duration)` of stage `k`, in seconds.
    pub fn span_of(&self, k: usize) -> Option<(f64, f64)> {
        self.segments.get(k).map(|s| (s.start, s.duration))
    }

    /// Requests of the constant-spacing schedule intended in stage `k`: the integers i in
    /// `[0, count)` with Λ(start) ≤ i < Λ(end), by the same arithmetic as [`RateCurve::time_of`].
    pub fn scheduled_in(&self, k: usize) -> u64 {
        let Some(s) = self.segments.get(k) else {
            return 0;
        };
        let n = self.count() as f64;
        let lo = s.before.ceil().min(n);
        let hi = if k + 1 == self.segments.len() {
            n
        } else {
            (s.before + s.area()).ceil().min(n)
        };
        (hi - lo).max(0.0) as u64
    }
}

/// A seeded unit-rate Poisson process: arrival `i` at τᵢ, τ₀ = 0, gaps exponential with mean 1.
/// Through [`RateCurve::time_of`] the arrivals follow the curve (time-rescaling: if τ is a unit
/// Poisson process, Λ⁻¹(τ) is a Poisson process of rate r(t)). Each engine thread keeps its own
/// and replays the one global sequence, taking only its indices.
#[derive(Clone, Debug)]
pub struct UnitArrivals {
    rng: crate::rng::SplitMix64,
    tau: f64,
    at: u64,
}

impl UnitArrivals {
    pub fn new(seed: u64) -> UnitArrivals {
        UnitArrivals {
            rng: crate::rng::SplitMix64::new(seed),
            tau: 0.0,
            at: 0,
        }
    }

    /// τᵢ for `i` at or past the last one asked (indices only move forward).
    pub fn nth(&mut self, i: u64) -> f64 {
        while self.at < i {
            // 1 − u is in (0, 1], so the logarithm is finite.
            self.tau += -(1.0 - self.rng.next_f64()).ln();
            self.at += 1;
        }
        self.tau
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(qps: f64, duration: f64) -> Stage {
        Stage { qps, duration }
    }

    /// `RATE:SECONDS` with an optional `s` or `m` (the command line's full syntax is its own).
    fn parse(text: &str) -> Result<Vec<Stage>, String> {
        text.split(',')
            .map(|item| {
                let (r, d) = item.trim().split_once(':').ok_or("no `:`")?;
                let (d, per) = match d.trim() {
                    d if d.ends_with('m') => (&d[..d.len() - 1], 60.0),
                    d => (d.trim_end_matches('s'), 1.0),
                };
                let num = |x: &str| x.trim().parse::<f64>().map_err(|e| e.to_string());
                Ok(st(num(r)?, num(d)? * per))
            })
            .collect()
    }

    /// The ramp: 100 → 1,000 req/s over 10 s, Λ(t) = 100t + 45t².
    fn ramp_100_1000() -> RateCurve {
        let stages = parse("100:0s,1000:10s").unwrap();
        check(&stages, true).unwrap();
        RateCurve::new(&stages, true)
    }

    #[test]
    fn the_ramp_matches_its_closed_form_for_every_request() {
        let c = ramp_100_1000();
        assert_eq!(c.count(), 5500);
        assert_eq!(c.area(), 5500.0);
        assert_eq!(c.duration(), 10.0);
        for i in 0..c.count() {
            let x = i as f64;
            let want = (-100.0 + (100.0f64 * 100.0 + 180.0 * x).sqrt()) / 90.0;
            let got = c.time_of(x);
            assert!((got - want).abs() < 1e-9, "i={i}: {got} vs {want}");
            // And Λ(t_i) = i, the definition.
            assert!((c.integral(got) - x).abs() < 1e-9, "i={i}");
        }
        for t in [0.0, 0.5, 3.25, 9.999] {
            assert!((c.integral(t) - (100.0 * t + 45.0 * t * t)).abs() < 1e-9);
            assert!((c.rate_at(t) - (100.0 + 90.0 * t)).abs() < 1e-9);
        }
        // Every request falls in the ramp, none in the 0 s stage that set its start.
        assert_eq!(c.scheduled_in(0), 0);
        assert_eq!(c.scheduled_in(1), 5500);
        assert_eq!(c.stage_at(0.0), 1);
        assert_eq!(c.stage_at(9.9), 1);
    }

    /// Second k of the ramp holds Λ(k+1) − Λ(k) = 145 + 90k requests: the rate at its middle.
    #[test]
    fn the_ramp_sends_the_integral_of_every_second() {
        let c = ramp_100_1000();
        let times: Vec<f64> = (0..c.count()).map(|i| c.time_of(i as f64)).collect();
        let mut per_second = [0u64; 10];
        for &t in &times {
            per_second[t.floor() as usize] += 1;
        }
        for (k, &n) in per_second.iter().enumerate() {
            let want = 145 + 90 * k as u64;
            assert_eq!(n, want, "second {k}");
            let mid_rate = c.rate_at(k as f64 + 0.5);
            assert!((n as f64 - mid_rate).abs() <= mid_rate * 0.01, "second {k}");
        }
        assert!(times.windows(2).all(|w| w[0] < w[1]));
    }

    /// The same ramp written as ten 1 s stages is the same function, with a stage per second.
    #[test]
    fn a_ramp_split_into_stages_is_the_same_ramp() {
        let text = "100:0s,190:1s,280:1s,370:1s,460:1s,550:1s,640:1s,730:1s,820:1s,910:1s,1000:1s";
        let stages = parse(text).unwrap();
        check(&stages, true).unwrap();
        let split = RateCurve::new(&stages, true);
        let whole = ramp_100_1000();
        assert_eq!(split.count(), 5500);
        for i in 0..5500 {
            let x = i as f64;
            assert!((split.time_of(x) - whole.time_of(x)).abs() < 1e-9, "i={i}");
        }
        for k in 1..=10 {
            assert_eq!(
                split.scheduled_in(k),
                145 + 90 * (k as u64 - 1),
                "stage {k}"
            );
            assert_eq!(split.stage_at(k as f64 - 0.5), k);
        }
        assert_eq!(
            split.stage_at(1.0),
            2,
            "a boundary belongs to the stage it starts"
        );
        assert_eq!(split.rates_of(3), Some((280.0, 370.0)));
        assert_eq!(split.span_of(3), Some((2.0, 1.0)));
    }

    #[test]
    fn steps_are_piecewise_constant_and_exact() {
        let stages = parse("100:30s, 200:30s ,400:1m").unwrap();
        assert_eq!(stages, [st(100.0, 30.0), st(200.0, 30.0), st(400.0, 60.0)]);
        check(&stages, false).unwrap();
        let c = RateCurve::new(&stages, false);
        assert_eq!(c.count(), 3000 + 6000 + 24000);
        assert_eq!(c.duration(), 120.0);
        // Stage 1: i / 100; stage 2 from 30 s: 30 + (i − 3000) / 200; stage 3 from 60 s.
        for i in 0..c.count() {
            let x = i as f64;
            let want = if i < 3000 {
                x / 100.0
            } else if i < 9000 {
                30.0 + (x - 3000.0) / 200.0
            } else {
                60.0 + (x - 9000.0) / 400.0
            };
            assert!((c.time_of(x) - want).abs() < 1e-9, "i={i}");
        }
        assert_eq!(c.time_of(3000.0), 30.0);
        assert_eq!(c.stage_at(29.999), 0);
        assert_eq!(c.stage_at(30.0), 1);
        assert_eq!(c.stage_at(1e6), 2, "past the end: the last stage");
        assert_eq!(
            (0..3).map(|k| c.scheduled_in(k)).collect::<Vec<_>>(),
            [3000, 6000, 24000]
        );
        assert_eq!(c.rate_at(45.0), 200.0);
        assert_eq!(c.rate_at(-1.0), 0.0);
    }

    /// A plain run is one stage: request i at exactly i / qps, as the schedule has always been.
    #[test]
    fn one_constant_stage_is_the_plain_schedule() {
        for (qps, dur) in [
            (20.0, 5.0),
            (2.5, 2.0),
            (1000.0, 0.25),
            (7.0, 3.0),
            (1e6, 0.01),
        ] {
            let c = RateCurve::constant(qps, dur);
            assert_eq!(c.count(), (qps * dur).round() as u64);
            for i in 0..c.count() {
                assert_eq!(c.time_of(i as f64), i as f64 / qps, "{qps} {i}");
            }
        }
    }

    /// A ramp down, where c < 0: the root form must not lose the sign.
    #[test]
    fn a_ramp_down_matches_its_closed_form() {
        let stages = [st(1000.0, 0.0), st(100.0, 10.0)];
        check(&stages, true).unwrap();
        let c = RateCurve::new(&stages, true);
        assert_eq!(c.count(), 5500);
        // Λ(t) = 1000t − 45t², so t = (1000 − √(1000² − 180 i)) / 90.
        for i in 0..5500u64 {
            let x = i as f64;
            let want = (1000.0 - (1e6 - 180.0 * x).sqrt()) / 90.0;
            assert!((c.time_of(x) - want).abs() < 1e-9, "i={i}");
        }
    }

    /// A first stage with a duration holds its own rate, then each ramps from the previous one.
    #[test]
    fn ramps_start_from_the_previous_stage() {
        let stages = parse("10:2s,30:2s,30:1s,5:1s").unwrap();
        check(&stages, true).unwrap();
        let c = RateCurve::new(&stages, true);
        assert_eq!(c.rates_of(0), Some((10.0, 10.0)));
        assert_eq!(c.rates_of(1), Some((10.0, 30.0)));
        assert_eq!(c.rates_of(2), Some((30.0, 30.0)));
        assert_eq!(c.rates_of(3), Some((30.0, 5.0)));
        // 20 + 40 + 30 + 17.5 = 107.5 → 108 requests.
        assert_eq!(c.area(), 107.5);
        assert_eq!(c.count(), 108);
        assert_eq!(c.time_of(20.0), 2.0);
        assert_eq!(c.time_of(60.0), 4.0);
        assert_eq!(c.time_of(90.0), 5.0);
        assert_eq!(c.rate_at(3.0), 20.0);
        // Λ⁻¹ is monotonic and inverts Λ everywhere, past the end too (at the last rate).
        let mut last = -1.0;
        for j in 0..2000 {
            let x = j as f64 * 0.07;
            let t = c.time_of(x);
            assert!(t > last || x == 0.0, "x={x}");
            assert!((c.integral(t) - x).abs() < 1e-9, "x={x}");
            last = t;
        }
        assert!((c.time_of(117.5) - 8.0).abs() < 1e-12, "10 more at 5 req/s");
        assert_eq!(c.scheduled_in(3), 108 - 90);
    }

    #[test]
    fn poisson_follows_the_curve_by_time_rescaling() {
        let c = ramp_100_1000();
        let mut unit = UnitArrivals::new(11);
        let times: Vec<f64> = (0..c.count()).map(|i| c.time_of(unit.nth(i))).collect();
        assert_eq!(times[0], 0.0);
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
        // Per second, the count is Poisson with mean Λ(k+1) − Λ(k): within 5 standard deviations.
        for k in 0..9 {
            let n = times
                .iter()
                .filter(|&&t| t >= k as f64 && t < k as f64 + 1.0)
                .count() as f64;
            let mean = 145.0 + 90.0 * k as f64;
            assert!((n - mean).abs() < 5.0 * mean.sqrt(), "second {k}: {n}");
        }
        // Seeded: the same seed gives the same times, read in any stride.
        let mut again = UnitArrivals::new(11);
        for i in (0..c.count()).step_by(3) {
            assert_eq!(c.time_of(again.nth(i)), times[i as usize]);
        }
        // Over a long run the unit process has rate 1.
        let mut u = UnitArrivals::new(3);
        let tau = u.nth(100_000);
        assert!((tau - 100_000.0).abs() < 5.0 * 100_000f64.sqrt(), "{tau}");
    }

    #[test]
    fn bad_stages_are_refused_with_the_reason() {
        let check_err = |t: &str, ramp: bool| check(&parse(t).unwrap(), ramp).unwrap_err().0;
        assert_eq!(
            check_err("100:30s,0:10s", false),
            "stage 2: the rate must be a number above 0, not 0"
        );
        assert_eq!(
            check_err("-5:10s", true),
            "stage 1: the rate must be a number above 0, not -5"
        );
        assert_eq!(
            check_err("100:-1s", false),
            "stage 1: the duration must be a number of seconds above 0, not -1"
        );
        assert!(check_err("100:0s,200:1s", false).starts_with("stage 1: a duration of 0"));
        assert_eq!(
            check_err("100:1s,200:0s", true),
            "stage 2: the last stage needs a duration above 0"
        );
        assert_eq!(check_err("0.1:1s", false), "the stages round to 0 requests");
        assert!(check(&[], false).is_err());
        let many = vec![st(1.0, 1.0); MAX_STAGES + 1];
        assert!(check(&many, false).unwrap_err().0.contains("at most 1000"));
        assert!(check(&[st(f64::NAN, 1.0)], false).is_err());
        assert!(check(&[st(1.0, f64::INFINITY)], false).is_err());
        check(&parse("100:0s,1000:10s").unwrap(), true).unwrap();
    }
}
