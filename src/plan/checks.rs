//! The rate and limit checks of a run, and the counts decided from them: the original service's
//! 400s (positive rates, the LLM fields), the server limits (422 naming the limit), and the worker,
//! request and thread counts. Pure arithmetic on the input; what goes on the wire is
//! [`request`](super::request)'s.

use std::time::Duration;

use super::defaults;
use super::input::{Input, Rate};
use super::stages::{self, RateCurve};
use super::{
    Arrival, BodyMode, MSG_BENCH_POSITIVE, MSG_EMPTY_PROMPT, MSG_LLM_POSITIVE, MSG_MAX_TOKENS,
    MSG_NO_TOKEN, MSG_REALTIME_MAX, PlanError, invalid,
};
use crate::metric::{METRICS, Runs};
use crate::slo::{self, Threshold, goodput::Objective};
use crate::units;

/// Server-side ceilings on what one run may ask for (SPEC §5).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    pub max_qps: f64,
    pub max_duration: f64,
    pub max_workers: usize,
    /// The largest data set file a run may read.
    pub max_dataset_bytes: u64,
    /// The most bytes a run's workload may hold (see [`defaults::MAX_WORKLOAD_BYTES`]).
    pub max_workload_bytes: u64,
    /// The latest a `start_at` may be, in seconds from now.
    pub max_start_delay: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_qps: defaults::MAX_QPS,
            max_duration: defaults::MAX_DURATION,
            max_workers: defaults::MAX_WORKERS,
            max_dataset_bytes: defaults::MAX_DATASET_BYTES,
            max_workload_bytes: defaults::MAX_WORKLOAD_BYTES,
            max_start_delay: defaults::MAX_START_DELAY,
        }
    }
}

impl Limits {
    /// The command line's: only nonsense and overflow are refused (see `defaults::CLI_MAX_QPS`).
    pub fn command_line() -> Limits {
        Limits {
            max_qps: defaults::CLI_MAX_QPS,
            max_duration: defaults::CLI_MAX_DURATION,
            max_workers: defaults::CLI_MAX_WORKERS,
            // --max-dataset-bytes (default 1 GiB) is the cap; a person may raise it at will.
            max_dataset_bytes: u64::MAX,
            // --max-workload-bytes (default the server's) is the cap; a person may raise it.
            max_workload_bytes: u64::MAX,
            // A shard started ahead of time is the command line's own business.
            max_start_delay: f64::INFINITY,
        }
    }
}

/// The original `/fireworks_benchmark`'s own checks, in its order. A run whose prompts come from
/// elsewhere (a data set, inline, synthetic) needs no `prompt`.
pub(super) fn llm_fields(input: &Input) -> Result<(), PlanError> {
    let Some(l) = &input.llm else { return Ok(()) };
    if l.token.trim().is_empty() {
        return Err(PlanError::BadRequest(MSG_NO_TOKEN));
    }
    if l.max_tokens <= 0 {
        return Err(PlanError::BadRequest(MSG_MAX_TOKENS));
    }
    if l.prompt.is_empty() && !input.workload.brings_prompts() {
        return Err(PlanError::BadRequest(MSG_EMPTY_PROMPT));
    }
    Ok(())
}

/// Positive, finite qps, duration and timeout (the original's 400), then the limits. Returns the
/// effective timeout in seconds.
pub(super) fn rates(input: &Input, limits: &Limits) -> Result<f64, PlanError> {
    let positive_msg = if input.llm.is_some() {
        MSG_LLM_POSITIVE
    } else {
        MSG_BENCH_POSITIVE
    };
    let timeout = input.timeout.unwrap_or(defaults::TIMEOUT);
    let positive = |x: f64| x.is_finite() && x > 0.0;
    let qps_ok = match input.qps {
        Rate::PerSecond(q) => positive(q),
        Rate::Max => true,
    };
    if !(qps_ok && positive(input.duration) && positive(timeout)) {
        return Err(PlanError::BadRequest(positive_msg));
    }
    if let Rate::PerSecond(q) = input.qps
        && q > limits.max_qps
    {
        return Err(invalid(
            "qps",
            format!("qps must be <= {} (--max-qps)", limits.max_qps),
        ));
    }
    for (field, value) in [("duration", input.duration), ("timeout", timeout)] {
        if value > limits.max_duration {
            return Err(invalid(
                field,
                format!(
                    "{field} must be <= {} seconds (--max-duration)",
                    limits.max_duration
                ),
            ));
        }
    }
    Ok(timeout)
}

/// The connection cap: as asked, or `ceil(qps)` (saturation: [`defaults::SATURATION_WORKERS`]),
/// never past the limit.
pub(super) fn num_workers(input: &Input, limits: &Limits) -> Result<usize, PlanError> {
    match input.num_workers {
        Some(n) if n > 0 => {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            if n > limits.max_workers {
                return Err(invalid(
                    "num_workers",
                    format!(
                        "num_workers must be <= {} (--max-workers)",
                        limits.max_workers
                    ),
                ));
            }
            Ok(n)
        }
        _ if input.workload.sessions.is_some() => {
            let n = default_num_workers(input.qps, limits.max_workers);
            Ok((n * defaults::SESSION_WORKERS_PER_QPS).min(limits.max_workers.max(1)))
        }
        _ => Ok(default_num_workers(input.qps, limits.max_workers)),
    }
}

/// `num_workers` when none is asked for: `ceil(qps)`, at least 1 and at most `cap`;
/// [`defaults::SATURATION_WORKERS`] (at most `cap`) in saturation. The API's cap is its
/// `--max-workers`; the command line's is [`defaults::MAX_WORKERS`], whatever it allows when asked.
pub fn default_num_workers(qps: Rate, cap: usize) -> usize {
    match qps {
        // ceil keeps a fractional rate from getting 0 workers; the cap limits a huge one.
        Rate::PerSecond(q) => (q.ceil() as usize).clamp(1, cap.max(1)),
        Rate::Max => defaults::SATURATION_WORKERS.min(cap),
    }
}

/// A stage list that can run within the limits, and `ramp` only with one. Runs before the rate
/// checks, which then read the peak rate and total length (see `Input::set_stages`), so a bad
/// stage is named rather than answered with the original's generic 400.
pub(super) fn stages(input: &Input, limits: &Limits) -> Result<(), PlanError> {
    let Some(list) = &input.stages else {
        if input.ramp {
            return Err(invalid(
                "ramp",
                "ramp moves between the rates of stages: give stages too".into(),
            ));
        }
        return Ok(());
    };
    stages::check(list, input.ramp).map_err(|e| invalid("stages", e.0))?;
    if let Some((k, s)) = list
        .iter()
        .enumerate()
        .find(|(_, s)| s.qps > limits.max_qps)
    {
        return Err(invalid(
            "stages",
            format!(
                "stage {}: the rate must be <= {} (--max-qps), not {}",
                k + 1,
                limits.max_qps,
                s.qps
            ),
        ));
    }
    let total: f64 = list.iter().map(|s| s.duration).sum();
    if total > limits.max_duration {
        return Err(invalid(
            "stages",
            format!(
                "the stages last {total} seconds in all: at most {} (--max-duration)",
                limits.max_duration
            ),
        ));
    }
    if RateCurve::new(list, input.ramp).area() > defaults::MAX_REQUESTS {
        return Err(invalid(
            "stages",
            "the stages make more than 2^53 requests".into(),
        ));
    }
    Ok(())
}

/// The rate function of a fixed-rate run: the stages', or one stage at `qps` for `duration`;
/// None in saturation.
pub(super) fn curve(input: &Input) -> Result<Option<RateCurve>, PlanError> {
    if let Some(r) = &input.workload.trace {
        if input.stages.is_some() || input.qps == Rate::Max {
            return Err(invalid(
                "trace",
                "a trace replay's schedule is the trace: no stages, no --qps max".into(),
            ));
        }
        // The mean rate over the replay: what the schedule's curve reports; the sends follow
        // the trace's own times (`Plan::trace_times`).
        let d = r.duration();
        return Ok(Some(RateCurve::constant(r.times.len() as f64 / d, d)));
    }
    if let Some(list) = &input.stages {
        return Ok(Some(RateCurve::new(list, input.ramp)));
    }
    match input.qps {
        Rate::PerSecond(q) => {
            count(input.qps, input.duration)?;
            Ok(Some(RateCurve::constant(q, input.duration)))
        }
        Rate::Max => Ok(None),
    }
}

/// The thresholds and goodput objectives, parsed, and only on what this run measures: a
/// streaming family needs a streaming run, goodput metrics need objectives.
pub(super) fn slo(
    input: &Input,
    body_mode: BodyMode,
) -> Result<(Vec<Threshold>, Vec<Objective>), PlanError> {
    let thresholds =
        slo::parse_all(&input.thresholds).map_err(|e| invalid("thresholds", e.to_string()))?;
    let goodput =
        slo::goodput::parse_all(&input.goodput).map_err(|e| invalid("goodput", e.to_string()))?;
    let stream = body_mode == BodyMode::Sse;
    for t in &thresholds {
        let streaming_only = match t.metric.family() {
            Some(f) => METRICS.iter().any(|x| x.name == f && x.runs != Runs::Every),
            None => matches!(
                t.metric.key().as_str(),
                "output_tokens_per_second" | "mean_output_tokens"
            ),
        };
        if streaming_only && !stream {
            return Err(invalid(
                "thresholds",
                format!(
                    "{:?}: {} is measured on streaming LLM runs only",
                    t.text,
                    t.metric.key()
                ),
            ));
        }
        let on_goodput = matches!(
            t.metric.key().as_str(),
            "goodput" | "goodput_ratio" | "good_requests"
        );
        if on_goodput && goodput.is_empty() {
            return Err(invalid(
                "thresholds",
                format!(
                    "{:?}: {} needs goodput objectives (e.g. time_to_first_token<=200ms)",
                    t.text,
                    t.metric.key()
                ),
            ));
        }
    }
    if let Some(o) = goodput
        .iter()
        .find(|o| slo::goodput::needs_stream(o.metric) && !stream)
    {
        return Err(invalid(
            "goodput",
            format!(
                "{:?}: {} is measured on streaming LLM runs only",
                o.text,
                o.metric.name()
            ),
        ));
    }
    Ok((thresholds, goodput))
}

/// `round(qps × duration)` requests for a fixed rate; 0 (not known in advance) for saturation.
pub(super) fn count(qps: Rate, duration: f64) -> Result<u64, PlanError> {
    match qps {
        Rate::PerSecond(q) => match (q * duration).round() as u64 {
            0 => Err(invalid("qps", "qps × duration rounds to 0 requests".into())),
            n => Ok(n),
        },
        Rate::Max => Ok(0),
    }
}

/// A closed loop's request count: its `-n` cap ([`Input::max_requests`]), at least 1 and at most
/// [`defaults::MAX_REQUESTS`]; 0 without one. A fixed rate's count comes from its curve, so a cap
/// beside one is refused (the CLI turns `-n` into a duration there).
pub(super) fn closed_loop_count(input: &Input) -> Result<u64, PlanError> {
    match (input.max_requests, input.qps) {
        (None, _) => Ok(0),
        (Some(_), Rate::PerSecond(_)) => Err(invalid(
            "max_requests",
            "a request count applies to a closed loop (qps max); at a fixed rate the count is \
             qps × duration"
                .into(),
        )),
        (Some(0), Rate::Max) => Err(invalid("max_requests", "must be at least 1".into())),
        (Some(n), Rate::Max) if n as f64 > defaults::MAX_REQUESTS => Err(invalid(
            "max_requests",
            format!(
                "{n} is more than a run may send ({})",
                defaults::MAX_REQUESTS
            ),
        )),
        (Some(n), Rate::Max) => Ok(n),
    }
}

/// A run split into shards: every shard gets at least one connection and, at a fixed rate, at
/// least one request, and Poisson arrivals have a seed, so that every shard draws the same
/// arrival times and keeps its own.
pub(super) fn shard(input: &Input, num_workers: usize, count: u64) -> Result<(), PlanError> {
    let n = input.shard.count();
    if n == 1 {
        return Ok(());
    }
    if (num_workers as u64) < u64::from(n) {
        return Err(invalid(
            "num_workers",
            format!(
                "num_workers ({num_workers}) must be at least the number of shards ({n}): the \
                 shards split the connections"
            ),
        ));
    }
    if input.qps != Rate::Max && count < u64::from(n) {
        return Err(invalid(
            "shard",
            format!("the run's {count} requests cannot be split over {n} shards"),
        ));
    }
    if input.poisson && input.seed.is_none() {
        return Err(invalid(
            "seed",
            "a run split into shards with Poisson arrivals needs a seed, so that every shard \
             draws the same arrival times"
                .into(),
        ));
    }
    Ok(())
}

/// As asked; by default, at a fixed rate the fewest threads that carry it
/// (`ceil(qps / THREAD_QPS)`, at most the cores: every thread adds its own wake-ups), and in
/// saturation one per core. Never more threads than connections, nor than requests: an idle
/// thread would only add noise. Returns the count and why (the report's
/// `config.threads_reason`).
pub(super) fn threads(
    asked: Option<usize>,
    qps: Rate,
    num_workers: usize,
    count: u64,
) -> Result<(usize, String), PlanError> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    default_threads(asked, qps, num_workers, count, cores)
}

/// [`threads`] on a machine with `cores` cores.
pub fn default_threads(
    asked: Option<usize>,
    qps: Rate,
    num_workers: usize,
    count: u64,
    cores: usize,
) -> Result<(usize, String), PlanError> {
    let (threads, mut why) = match (asked, qps) {
        (Some(0), _) => return Err(invalid("threads", "threads must be >= 1".into())),
        (Some(t), _) if t > defaults::MAX_THREADS => {
            return Err(invalid(
                "threads",
                format!("threads must be <= {}", defaults::MAX_THREADS),
            ));
        }
        (Some(t), _) => (t, "as asked".to_string()),
        (None, Rate::PerSecond(q)) => {
            let need = (q / defaults::THREAD_QPS).ceil().max(1.0) as usize;
            let why = format!(
                "fixed rate: the fewest that carry {} qps at {} qps per thread",
                number_text(q),
                number_text(defaults::THREAD_QPS)
            );
            if need > cores {
                (cores, format!("{why}, at most one per core ({cores})"))
            } else {
                (need, why)
            }
        }
        (None, Rate::Max) => (cores, format!("saturation: one per core ({cores})")),
    };
    let mut threads = threads.max(1);
    if threads > num_workers {
        threads = num_workers.max(1);
        why.push_str(&format!("; no more than num_workers ({num_workers})"));
    }
    if count > 0 && threads as u64 > count {
        threads = usize::try_from(count).unwrap_or(usize::MAX).max(1);
        why.push_str(&format!("; no more than the requests ({count})"));
    }
    Ok((threads, why))
}

fn number_text(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 9e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// Constant spacing, or Poisson (which needs a rate) with the given or a random seed.
pub(super) fn arrival(input: &Input) -> Result<Arrival, PlanError> {
    if !input.poisson {
        return Ok(Arrival::Constant);
    }
    if input.qps == Rate::Max {
        return Err(invalid(
            "arrival",
            "poisson arrivals need a numeric qps".into(),
        ));
    }
    Ok(Arrival::Poisson {
        seed: input.seed.unwrap_or_else(random_seed),
    })
}

/// A saturating worker never sleeps; under `SCHED_FIFO` it would starve the rest of its core.
pub(super) fn realtime(input: &Input) -> Result<(), PlanError> {
    if input.realtime && input.qps == Rate::Max {
        return Err(invalid("realtime", MSG_REALTIME_MAX.into()));
    }
    Ok(())
}

/// The timeline's interval: as asked (> 0, finite, and no more than
/// [`defaults::MAX_INTERVALS`] of them over the run's bound, `duration + 2 × timeout`), or
/// [`defaults::INTERVAL`], lengthened to a step of [`defaults::INTERVAL_STEPS`] (then whole
/// hours) for a run too long for it.
pub(super) fn interval(input: &Input, timeout: f64) -> Result<Duration, PlanError> {
    let bound = input.duration + 2.0 * timeout;
    let max = defaults::MAX_INTERVALS as f64;
    let secs = match input.interval {
        Some(i) if !(i.is_finite() && i > 0.0) => {
            return Err(invalid("interval", "interval must be > 0 seconds".into()));
        }
        Some(i) if bound / i > max => {
            return Err(invalid(
                "interval",
                format!(
                    "interval {i} s would cut the run (duration + 2 × timeout = {bound} s) into \
                     more than {} intervals",
                    defaults::MAX_INTERVALS
                ),
            ));
        }
        Some(i) => i,
        None => std::iter::once(defaults::INTERVAL)
            .chain(defaults::INTERVAL_STEPS)
            .find(|&i| bound / i <= max)
            .unwrap_or_else(|| (bound / max / 3600.0).ceil() * 3600.0),
    };
    Ok(Duration::from_secs_f64(secs))
}

/// A `start_at` no later than `limits.max_start_delay` seconds after `now` (Unix nanoseconds): a
/// run waiting for its start holds its place (a server's run slot) all that time.
pub(super) fn start_at(input: &Input, limits: &Limits, now: i128) -> Result<(), PlanError> {
    let Some(at) = input.start_at else {
        return Ok(());
    };
    let ahead = (i128::from(at) - now) as f64 / 1e9;
    if ahead > limits.max_start_delay {
        return Err(invalid(
            "start_at",
            format!(
                "start_at is {} from now: at most {} (--max-start-delay)",
                units::secs_text(ahead.round()),
                units::secs_text(limits.max_start_delay)
            ),
        ));
    }
    Ok(())
}

/// A `ca_cert` file no larger than [`defaults::MAX_CA_CERT_BYTES`], checked before the run reads
/// it (a missing file is the run's error to report, as before).
pub(super) fn ca_cert(input: &Input) -> Result<(), PlanError> {
    let Some(path) = &input.ca_cert else {
        return Ok(());
    };
    match std::fs::metadata(path) {
        Ok(m) if m.len() > defaults::MAX_CA_CERT_BYTES => Err(invalid(
            "ca_cert",
            format!(
                "ca_cert {path}: {} bytes, more than a CA bundle holds: at most {}",
                m.len(),
                defaults::MAX_CA_CERT_BYTES
            ),
        )),
        _ => Ok(()),
    }
}

pub(super) fn random_seed() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_default_to_the_shared_values() {
        let l = Limits::default();
        assert_eq!(
            (l.max_qps, l.max_duration, l.max_workers),
            (1_000_000.0, 3600.0, 10_000)
        );
    }

    #[test]
    fn limits_name_the_field_and_the_flag() {
        let limits = Limits {
            max_qps: 100.0,
            max_duration: 60.0,
            max_workers: 8,
            ..Limits::default()
        };
        let mut i = Input::new("http://h/", Rate::PerSecond(101.0), 1.0);
        assert_eq!(
            rates(&i, &limits),
            Err(invalid("qps", "qps must be <= 100 (--max-qps)".into()))
        );
        i.qps = Rate::PerSecond(100.0);
        assert_eq!(rates(&i, &limits), Ok(defaults::TIMEOUT));
        i.timeout = Some(61.0);
        assert_eq!(
            rates(&i, &limits),
            Err(invalid(
                "timeout",
                "timeout must be <= 60 seconds (--max-duration)".into()
            ))
        );
        i.duration = 61.0;
        assert!(matches!(
            rates(&i, &limits),
            Err(PlanError::Invalid {
                field: "duration",
                ..
            })
        ));
        assert_eq!(num_workers(&i, &limits), Ok(8), "ceil(100) capped at 8");
        i.qps = Rate::PerSecond(2.5);
        assert_eq!(num_workers(&i, &limits), Ok(3));
        i.qps = Rate::Max;
        assert_eq!(num_workers(&i, &limits), Ok(8));
        i.num_workers = Some(9);
        assert!(num_workers(&i, &limits).is_err());
    }

    #[test]
    fn intervals_as_asked_or_longer_for_long_runs() {
        let mut i = Input::new("http://h/", Rate::PerSecond(1.0), 60.0);
        assert_eq!(interval(&i, 2.0), Ok(Duration::from_secs(1)));
        i.interval = Some(0.25);
        assert_eq!(interval(&i, 2.0), Ok(Duration::from_millis(250)));
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            i.interval = Some(bad);
            assert!(interval(&i, 2.0).is_err(), "{bad}");
        }
        // 64 s over 1 µs intervals is 64 million of them.
        i.interval = Some(1e-6);
        assert_eq!(
            interval(&i, 2.0),
            Err(invalid(
                "interval",
                "interval 0.000001 s would cut the run (duration + 2 × timeout = 64 s) into \
                 more than 100000 intervals"
                    .into()
            ))
        );
        // A day at 1 s fits; two days get 2 s; a year 600 s; past the steps, whole hours.
        i.interval = None;
        i.duration = 86_400.0;
        assert_eq!(interval(&i, 2.0), Ok(Duration::from_secs(1)));
        i.duration = 2.0 * 86_400.0;
        assert_eq!(interval(&i, 2.0), Ok(Duration::from_secs(2)));
        i.duration = 365.0 * 86_400.0;
        assert_eq!(interval(&i, 2.0), Ok(Duration::from_secs(600)));
        i.duration = 1e9;
        let long = interval(&i, 2.0).unwrap().as_secs();
        assert!(
            long.is_multiple_of(3600) && (i.duration + 4.0) / long as f64 <= 100_000.0,
            "{long}"
        );
    }

    #[test]
    fn counts_round_and_refuse_zero() {
        assert_eq!(count(Rate::PerSecond(10.0), 0.25), Ok(3));
        assert_eq!(count(Rate::Max, 5.0), Ok(0));
        assert!(count(Rate::PerSecond(0.1), 1.0).is_err());
        let t = |asked, workers, count| threads(asked, Rate::Max, workers, count).map(|x| x.0);
        assert_eq!(t(Some(8), 3, 0), Ok(3));
        assert_eq!(t(Some(8), 20, 2), Ok(2));
        assert!(t(Some(0), 1, 1).is_err());
        assert!(t(Some(1025), 2000, 0).is_err());
    }

    #[test]
    fn default_threads_follow_the_rate_at_a_fixed_rate_and_the_cores_at_saturation() {
        let t = |asked, qps: f64, cores| {
            let rate = if qps > 0.0 {
                Rate::PerSecond(qps)
            } else {
                Rate::Max
            };
            default_threads(asked, rate, 10_000, 0, cores).unwrap()
        };
        assert_eq!(
            t(None, 20_000.0, 8),
            (
                1,
                "fixed rate: the fewest that carry 20000 qps at 40000 qps per thread".into()
            )
        );
        assert_eq!(t(None, 0.5, 8).0, 1);
        assert_eq!(t(None, 40_000.0, 8).0, 1);
        assert_eq!(t(None, 40_001.0, 8).0, 2);
        assert_eq!(t(None, 100_000.0, 8).0, 3);
        let (n, why) = t(None, 1_000_000.0, 4);
        assert_eq!(n, 4);
        assert!(why.ends_with("at most one per core (4)"), "{why}");
        assert_eq!(t(None, 0.0, 6), (6, "saturation: one per core (6)".into()));
        assert_eq!(t(Some(5), 20_000.0, 2), (5, "as asked".into()));
        let (n, why) = default_threads(None, Rate::Max, 3, 0, 8).unwrap();
        assert_eq!(
            (n, why.as_str()),
            (
                3,
                "saturation: one per core (8); no more than num_workers (3)"
            )
        );
    }
}
