//! How a paced lane wakes for its sends, chosen once per run from the arrival process and the
//! rate one thread carries: the **batch budget** (sends due within it of the first share a
//! wake-up, `--max-lateness`) and the **spin** (how long before a send the lane stops sleeping and
//! watches the clock instead). Pure: the rate, the threads and the arrival process in, a
//! [`WakePolicy`] out, echoed as the report's `config.pacing` with the reason in words. How the
//! lane applies it is `engine::wake`'s.
//!
//! The trade, measured on the 2-core VM: a sleep and its wake-up cost the thread 16–24 µs of CPU,
//! and the OS wakes it 5–20 µs after the instant asked for (more when another task holds the
//! core). So:
//!
//! - **Batching** saves wake-ups, and pays in lateness: the sends of a batch go out together, and
//!   the target sees them arrive together. For a Poisson process that erases its short gaps (a
//!   50 µs budget at 2,000/s moved the gaps' Kolmogorov–Smirnov distance to the exponential from
//!   0.011 to 0.080 on the target's clock), so arrivals that are not constant are **never**
//!   batched unless the user asks for a budget. Constant arrivals are batched only when a
//!   thread's send interval is at most the default budget ([`defaults::MAX_LATENESS`], 20,000/s
//!   per thread): below that rate no two sends fall within the budget anyway, and each send has
//!   its own wake-up.
//! - **Spinning** before a send takes the OS's wake-up latency out of the send's lateness, and
//!   costs its length in CPU per send. At low rates that is a small share of a core, so a thread
//!   that wakes for each send may spin up to [`defaults::SPIN_SHARE`] of its send interval, at
//!   most [`defaults::SPIN_MAX`] (and only as long as the OS has recently been late: see
//!   `engine::wake`); under [`defaults::SPIN_MIN`] (high rates, where the share would be a few
//!   µs) it does not spin, and a batching thread never does (its wake-ups are already paid for
//!   by the sends they carry).

use std::time::Duration;

use super::defaults;
use super::input::Rate;
use super::{Arrival, PlanError, invalid};

/// How a paced lane wakes for its sends (see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct WakePolicy {
    /// Sends due within this of the first due one share a wake-up (zero: each its own).
    pub budget: Duration,
    /// The lane stops sleeping this long before a send and watches the clock (zero: it sleeps
    /// until the send).
    pub spin: Duration,
    /// Whether the budget was asked for (`--max-lateness`) rather than chosen.
    pub asked: bool,
    /// Why, in words (the report's `config.pacing.why`).
    pub why: String,
}

impl WakePolicy {
    /// Closed loop: no schedule, nothing to wake for.
    pub fn saturation() -> WakePolicy {
        WakePolicy {
            budget: Duration::ZERO,
            spin: Duration::ZERO,
            asked: false,
            why: "closed loop: no schedule".into(),
        }
    }
}

/// The lateness budget as asked (`--max-lateness`, `max_lateness`): >= 0 and <= 1 second.
pub fn asked_budget(asked: Option<f64>) -> Result<Option<Duration>, PlanError> {
    match asked {
        None => Ok(None),
        Some(x) if !(x.is_finite() && x >= 0.0) => Err(invalid(
            "max_lateness",
            "max_lateness must be >= 0 seconds".into(),
        )),
        Some(x) if x > 1.0 => Err(invalid(
            "max_lateness",
            "max_lateness must be <= 1 second".into(),
        )),
        Some(x) => Ok(Some(Duration::from_secs_f64(x))),
    }
}

/// The policy for a run at `qps` (the peak rate, for stages) over `threads` threads with
/// `arrival`, the budget `asked` (already checked by [`asked_budget`]) or chosen.
pub fn choose(asked: Option<Duration>, qps: Rate, threads: usize, arrival: Arrival) -> WakePolicy {
    let Rate::PerSecond(q) = qps else {
        return WakePolicy::saturation();
    };
    // The mean time between two sends of one thread.
    let interval = threads.max(1) as f64 / q;
    let interval_us = interval * 1e6;
    let (budget, why_budget) = match (asked, arrival) {
        (Some(b), _) => (b, "batch budget as asked (--max-lateness)".to_string()),
        (None, Arrival::Poisson { .. }) => (
            Duration::ZERO,
            "poisson arrivals: never batched unless --max-lateness is given (a shared wake-up \
             would erase their short gaps)"
                .to_string(),
        ),
        (None, Arrival::Constant) if batches(interval) => {
            let b = defaults::MAX_LATENESS.min(defaults::MAX_LATENESS_INTERVALS * interval);
            (
                Duration::from_secs_f64(b),
                format!(
                    "constant arrivals every {} per thread: sends due within {} share a wake-up \
                     (a wake-up costs the thread about 16-24 µs of CPU)",
                    micros(interval_us),
                    micros(b * 1e6)
                ),
            )
        }
        (None, Arrival::Constant) => (
            Duration::ZERO,
            format!(
                "constant arrivals every {} per thread: one wake-up per send (batching starts \
                 at a send every {} per thread)",
                micros(interval_us),
                micros(defaults::MAX_LATENESS * 1e6)
            ),
        ),
    };
    let (spin, why_spin) = spin_for(interval, budget);
    WakePolicy {
        budget,
        spin,
        asked: asked.is_some(),
        why: format!("{why_budget}; {why_spin}"),
    }
}

/// Whether constant sends every `interval` seconds on one thread are batched by default: when
/// the default budget holds two of them.
pub fn batches(interval: f64) -> bool {
    // A hair of tolerance: 1 / 20,000 and 50e-6 need not be the same double.
    interval <= defaults::MAX_LATENESS * (1.0 + 1e-9)
}

/// The spin before each send for a thread sending every `interval` seconds with `budget`.
pub fn spin_for(interval: f64, budget: Duration) -> (Duration, String) {
    if !budget.is_zero() && interval <= budget.as_secs_f64() {
        return (
            Duration::ZERO,
            "no spin: a wake-up carries several sends".into(),
        );
    }
    let spin = (defaults::SPIN_SHARE * interval).min(defaults::SPIN_MAX);
    if spin < defaults::SPIN_MIN {
        return (
            Duration::ZERO,
            format!(
                "no spin: {:.0}% of the send interval is under {} (the lane sleeps to each send)",
                defaults::SPIN_SHARE * 100.0,
                micros(defaults::SPIN_MIN * 1e6)
            ),
        );
    }
    // Whole microseconds, so the echo reads plainly.
    let spin = Duration::from_micros((spin * 1e6).round() as u64);
    let why = format!(
        "spin up to {} before each send ({:.0}% of the send interval, at most {}), as long as \
         the OS was recently late waking the thread",
        micros(spin.as_secs_f64() * 1e6),
        defaults::SPIN_SHARE * 100.0,
        micros(defaults::SPIN_MAX * 1e6)
    );
    (spin, why)
}

fn micros(us: f64) -> String {
    if us >= 1000.0 {
        format!("{:.3} ms", us / 1000.0)
    } else if us.fract().abs() < 1e-6 || us >= 100.0 {
        format!("{us:.0} µs")
    } else {
        format!("{us:.1} µs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(d: Duration) -> f64 {
        d.as_secs_f64() * 1e6
    }

    const POISSON: Arrival = Arrival::Poisson { seed: 1 };

    #[test]
    fn poisson_is_never_batched_by_default_whatever_the_rate() {
        for q in [1.0, 2_000.0, 20_000.0, 100_000.0, 1_000_000.0] {
            for threads in [1, 2, 8] {
                let p = choose(None, Rate::PerSecond(q), threads, POISSON);
                assert_eq!(p.budget, Duration::ZERO, "{q}/s on {threads}");
                assert!(!p.asked);
                assert!(p.why.contains("never batched"), "{}", p.why);
            }
        }
        // Asked for, it is as asked.
        let p = choose(
            Some(Duration::from_micros(80)),
            Rate::PerSecond(20_000.0),
            1,
            POISSON,
        );
        assert_eq!((us(p.budget), p.asked), (80.0, true));
    }

    #[test]
    fn constant_is_batched_only_from_a_send_every_budget_per_thread() {
        let b = |q: f64, threads| {
            us(choose(None, Rate::PerSecond(q), threads, Arrival::Constant).budget)
        };
        assert_eq!(b(2_000.0, 1), 0.0);
        assert_eq!(
            b(19_000.0, 1),
            0.0,
            "a send every 52.6 µs: one wake-up each"
        );
        assert_eq!(b(20_000.0, 1), 50.0, "a send every 50 µs: pairs");
        assert_eq!(b(40_000.0, 2), 50.0, "the rate per thread decides");
        assert_eq!(b(39_000.0, 2), 0.0);
        // Never more than one interval of a thread: at most two sends of a constant schedule.
        assert!((b(100_000.0, 3) - 30.0).abs() < 1e-6);
        assert_eq!(b(1.0, 1), 0.0);
        // Asked for, any budget applies at any rate.
        let p = choose(
            Some(Duration::ZERO),
            Rate::PerSecond(20_000.0),
            1,
            Arrival::Constant,
        );
        assert_eq!(p.budget, Duration::ZERO);
        let p = choose(
            Some(Duration::from_micros(200)),
            Rate::PerSecond(2_000.0),
            1,
            Arrival::Constant,
        );
        assert_eq!(us(p.budget), 200.0);
    }

    #[test]
    fn the_spin_is_chosen_by_the_rate() {
        let s =
            |q: f64, threads, arrival| us(choose(None, Rate::PerSecond(q), threads, arrival).spin);
        let share = defaults::SPIN_SHARE;
        let max = defaults::SPIN_MAX * 1e6;
        // Low rates: the cap.
        assert_eq!(s(10.0, 1, Arrival::Constant), max);
        assert_eq!(s(10.0, 1, POISSON), max);
        // 2,000/s on one thread: a share of the 500 µs interval, up to the cap.
        assert_eq!(
            s(2_000.0, 1, Arrival::Constant),
            (share * 500.0).min(max).round()
        );
        assert_eq!(s(2_000.0, 1, POISSON), (share * 500.0).min(max).round());
        // A thread that batches never spins; one whose share is a few µs does not either.
        assert_eq!(s(20_000.0, 1, Arrival::Constant), 0.0);
        assert_eq!(s(200_000.0, 1, POISSON), 0.0);
        // Monotone: a higher rate per thread never spins longer.
        let mut last = f64::INFINITY;
        for q in [
            1.0, 100.0, 1_000.0, 2_000.0, 5_000.0, 10_000.0, 19_000.0, 20_000.0, 1e6,
        ] {
            let now = s(q, 1, Arrival::Constant);
            assert!(now <= last, "{q}/s: {now} after {last}");
            last = now;
            // The CPU it costs stays within the share of a core.
            assert!(now * 1e-6 * q <= share + 1e-9, "{q}/s spins {now} µs");
        }
        // A budget asked for that batches a constant schedule: no spin.
        let p = choose(
            Some(Duration::from_micros(600)),
            Rate::PerSecond(2_000.0),
            1,
            Arrival::Constant,
        );
        assert_eq!(p.spin, Duration::ZERO);
    }

    #[test]
    fn the_reason_says_what_was_chosen() {
        let p = choose(None, Rate::PerSecond(2_000.0), 1, Arrival::Constant);
        assert!(p.why.contains("every 500 µs per thread"), "{}", p.why);
        assert!(p.why.contains("one wake-up per send"), "{}", p.why);
        assert!(
            p.why.contains(&format!("spin up to {} µs", us(p.spin))),
            "{}",
            p.why
        );
        let p = choose(None, Rate::PerSecond(20_000.0), 1, Arrival::Constant);
        assert!(p.why.contains("share a wake-up"), "{}", p.why);
        assert!(p.why.contains("no spin"), "{}", p.why);
        assert_eq!(
            choose(None, Rate::Max, 2, Arrival::Constant),
            WakePolicy::saturation()
        );
    }

    #[test]
    fn an_asked_budget_is_checked() {
        assert_eq!(asked_budget(None), Ok(None));
        assert_eq!(asked_budget(Some(0.0)), Ok(Some(Duration::ZERO)));
        assert_eq!(asked_budget(Some(0.0002)).unwrap().map(us), Some(200.0));
        assert!(asked_budget(Some(-1.0)).is_err());
        assert!(asked_budget(Some(2.0)).is_err());
        assert!(asked_budget(Some(f64::NAN)).is_err());
    }
}
