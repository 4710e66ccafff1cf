//! When a paced lane wakes to send, and how it waits for that moment: the batching rule of the
//! lateness budget and the spin before a send. Pure: intended send times and the wait come in,
//! the instant to wake and how to wait go out. Which budget and spin a run uses is chosen once
//! from its rate and arrival process by [`crate::plan::wake`] (batching only constant arrivals at
//! high rates by default; spinning only where a thread wakes for each send).
//!
//! Waking costs more than sending (on the 2-core VM a sleep and a wake-up cost the thread about
//! 15 µs of kernel time, a request about 5 µs). So a lane lets the sends due within `budget` of
//! the first one share a wake-up: it wakes at the **latest** intended time that is within
//! `budget` of the first due send, and sends every request whose intended time has come. So:
//!
//! - no request goes out before its intended time (the lane sends only what is due when it
//!   wakes: [`due`] is `intended <= now`);
//! - the first of a batch waits at most `budget`, plus however late the OS wakes the thread;
//! - waking any later than that last intended time would add lateness and no send, so the lane
//!   does not (a send alone in its window is woken for at its own time).
//!
//! The OS wakes a sleeping thread some microseconds after the instant asked for: 5-20 µs on the
//! 2-core VM while other tasks keep its CPUs busy, 30-50 µs when they idle (the CPU comes back
//! from its idle state first). With a `spin`, the lane sleeps until `spin` before a send and
//! watches the clock for the rest ([`how_to_wait`]), so a wake-up that is late by less than the
//! spin does not make the send late. The spin it uses is the most the OS was late in its last
//! few wake-ups ([`Oversleep`]), never more than the plan's: as long as needed, and no CPU
//! spent beyond that.
//!
//! Every send's `dispatch_delay` is still measured per request, when it goes out, and every
//! corrected timing still starts at the intended time: batching moves when requests leave, never
//! what is reported about them.

use std::time::{Duration, Instant};

/// How many upcoming sends the rule looks at: more than any budget holds at the rates a thread
/// carries (at 1,000,000 qps per thread, 50 µs holds 50).
pub const LOOKAHEAD: usize = 64;

/// The instant to wake for the upcoming sends `upcoming` (their intended times, in order): the
/// latest of them within `budget` of the first. None when there is none.
pub fn send_wake(upcoming: impl IntoIterator<Item = Instant>, budget: Duration) -> Option<Instant> {
    let mut it = upcoming.into_iter().take(LOOKAHEAD);
    let first = it.next()?;
    let limit = first + budget;
    let mut wake = first;
    for t in it {
        if t > limit {
            break;
        }
        wake = wake.max(t);
    }
    Some(wake)
}

/// Whether a send intended at `intended` goes out in a wake-up at `now`: only once it is due.
#[inline]
pub fn due(intended: Instant, now: Instant) -> bool {
    intended <= now
}

/// How many recent wake-ups [`Oversleep`] remembers.
const RECENT: usize = 16;
/// Spun beyond the recent oversleep: the loop's own turn between waking and sending.
const SPIN_MARGIN: Duration = Duration::from_micros(3);

/// How late the OS has woken the lane in its last [`RECENT`] sleeps; the lane spins as long as
/// the latest of them (plus [`SPIN_MARGIN`]), up to the plan's spin. It starts at the plan's
/// spin, so the first sends are on time before anything was measured.
#[derive(Clone, Debug)]
pub struct Oversleep {
    recent: [Duration; RECENT],
    next: usize,
}

impl Oversleep {
    pub fn new(cap: Duration) -> Oversleep {
        Oversleep {
            recent: [cap; RECENT],
            next: 0,
        }
    }

    /// A sleep ended `late` after the instant it was for.
    #[inline]
    pub fn note(&mut self, late: Duration) {
        self.recent[self.next] = late;
        self.next = (self.next + 1) % RECENT;
    }

    /// How long to spin before a send, at most `cap`.
    #[inline]
    pub fn spin(&self, cap: Duration) -> Duration {
        let worst = self.recent.iter().max().copied().unwrap_or(cap);
        (worst + SPIN_MARGIN).min(cap)
    }
}

/// A wait shorter than this is spent watching the clock rather than sleeping: on the 2-core VM a
/// sleep and its wake-up cost the thread about 16 µs of CPU, so spinning is the cheaper way to
/// wait for less than that, and it is on time.
pub const SPIN_BELOW: Duration = Duration::from_micros(10);

/// How the lane waits for its next wake-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Watch the clock for this long (or, reacting to readiness, poll without blocking).
    Spin(Duration),
    /// Sleep this long; the loop then looks at the clock again (and spins the rest when it woke
    /// early on purpose).
    Sleep(Duration),
}

/// How to wait `wait` until the next wake-up; `send`: that wake-up is for a send (not a
/// deadline), before which the lane spins `spin`. A wait within the spin (or under
/// [`SPIN_BELOW`]) is spun; a longer one sleeps until the spin begins.
#[inline]
pub fn how_to_wait(wait: Duration, send: bool, spin: Duration) -> Wait {
    let early = if send { spin } else { Duration::ZERO };
    // A sleep shorter than SPIN_BELOW would cost more than it saves, and may wake past the send.
    if wait < early + SPIN_BELOW {
        Wait::Spin(wait)
    } else {
        Wait::Sleep(wait - early)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(t0: Instant, n: u64) -> Instant {
        t0 + Duration::from_micros(n)
    }

    #[test]
    fn wakes_at_the_last_send_within_the_budget_of_the_first() {
        let t0 = Instant::now();
        let b = Duration::from_micros(50);
        // Every 20 µs: 0, 20, 40 fit in 50 µs; 60 does not.
        let every20 = (0..10).map(|i| us(t0, 20 * i));
        assert_eq!(send_wake(every20, b), Some(us(t0, 40)));
        // Exactly at the budget's edge is within it.
        assert_eq!(send_wake([t0, us(t0, 50), us(t0, 51)], b), Some(us(t0, 50)));
        // A send alone in its window is woken for at its own time, not later.
        assert_eq!(send_wake([t0, us(t0, 1_000)], b), Some(t0));
        assert_eq!(send_wake([us(t0, 7)], b), Some(us(t0, 7)));
        assert_eq!(send_wake(std::iter::empty(), b), None);
        // No budget: every send has its own wake-up.
        assert_eq!(send_wake([t0, t0, us(t0, 1)], Duration::ZERO), Some(t0));
    }

    /// A lane paced by these rules over a whole schedule, with the OS waking it `late(i)` after
    /// the instant asked for: no send ever goes out early, none later than the budget plus that
    /// wake-up latency, and sends share wake-ups as the budget allows.
    fn simulate(
        times: &[Instant],
        budget: Duration,
        late: impl Fn(usize) -> Duration,
    ) -> (Vec<Duration>, usize) {
        let mut lateness = Vec::new();
        let mut wakes = 0;
        let mut next = 0;
        while next < times.len() {
            let aim = send_wake(times[next..].iter().copied(), budget).unwrap();
            let woke = aim + late(wakes);
            wakes += 1;
            let max_latency = late(wakes - 1);
            let first = times[next];
            while next < times.len() && due(times[next], woke) {
                let delay = woke - times[next];
                assert!(woke >= times[next], "never early");
                assert!(
                    delay <= budget + max_latency,
                    "send {next}: {delay:?} late with budget {budget:?} and wake latency {max_latency:?}"
                );
                lateness.push(delay);
                next += 1;
            }
            assert!(woke - first <= budget + max_latency);
        }
        (lateness, wakes)
    }

    #[test]
    fn a_constant_schedule_is_batched_within_the_budget() {
        let t0 = Instant::now();
        // 20,000 qps on one thread: a send every 50 µs.
        let times: Vec<Instant> = (0..2_000).map(|i| us(t0, 50 * i)).collect();
        // A budget of one interval pairs the sends: half the wake-ups, the first of each pair
        // 50 µs late (plus the wake-up latency), the second on time.
        let (late, wakes) = simulate(&times, Duration::from_micros(50), |_| Duration::ZERO);
        assert_eq!(wakes, 1_000);
        assert_eq!(late.iter().max(), Some(&Duration::from_micros(50)));
        // Less than an interval: nothing to batch, each send on time.
        let (late, wakes) = simulate(&times, Duration::from_micros(30), |_| Duration::ZERO);
        assert_eq!((wakes, late.iter().max()), (2_000, Some(&Duration::ZERO)));
        // An OS wake-up 60 µs late catches the next send as well: still never early.
        let (late, wakes) = simulate(&times, Duration::from_micros(30), |_| {
            Duration::from_micros(60)
        });
        assert_eq!(wakes, 1_000);
        assert!(late.iter().all(|d| *d <= Duration::from_micros(60)));
    }

    #[test]
    fn a_poisson_schedule_with_jittery_wakeups_is_never_early_nor_past_budget() {
        let t0 = Instant::now();
        let mut rng = crate::rng::SplitMix64(11);
        let mut t = 0.0f64;
        let times: Vec<Instant> = (0..5_000)
            .map(|_| {
                t += -(1.0 - rng.next_f64()).ln() / 40_000.0; // 40,000 qps, 25 µs mean gap
                t0 + Duration::from_secs_f64(t)
            })
            .collect();
        let jitter: Vec<Duration> = (0..5_000)
            .map(|_| Duration::from_nanos(rng.below(80_000) as u64))
            .collect();
        for budget_us in [0, 10, 25, 50] {
            let budget = Duration::from_micros(budget_us);
            let (late, wakes) = simulate(&times, budget, |i| jitter[i % jitter.len()]);
            assert_eq!(late.len(), times.len());
            assert!(wakes <= times.len());
        }
        // A larger budget never takes more wake-ups for the same wake latencies.
        let count = |b: u64| simulate(&times, Duration::from_micros(b), |_| Duration::ZERO).1;
        assert!(count(50) <= count(25) && count(25) <= count(10) && count(10) <= count(0));
    }

    #[test]
    fn a_send_is_slept_for_until_its_spin_then_spun() {
        let us = Duration::from_micros;
        // No spin: sleep the whole wait, but spin a wait under SPIN_BELOW.
        assert_eq!(how_to_wait(us(500), true, us(0)), Wait::Sleep(us(500)));
        assert_eq!(how_to_wait(us(9), true, us(0)), Wait::Spin(us(9)));
        // A 50 µs spin: wake 50 µs early for a send, not for a deadline.
        assert_eq!(how_to_wait(us(500), true, us(50)), Wait::Sleep(us(450)));
        assert_eq!(how_to_wait(us(500), false, us(50)), Wait::Sleep(us(500)));
        // Within the spin (the lane woke early on purpose): spin the rest.
        assert_eq!(how_to_wait(us(48), true, us(50)), Wait::Spin(us(48)));
        assert_eq!(how_to_wait(us(50), true, us(50)), Wait::Spin(us(50)));
        // Just past it: a sleep of a few µs would cost more than it saves.
        assert_eq!(how_to_wait(us(55), true, us(50)), Wait::Spin(us(55)));
        assert_eq!(how_to_wait(us(60), true, us(50)), Wait::Sleep(us(10)));
        assert_eq!(
            how_to_wait(Duration::ZERO, false, us(50)),
            Wait::Spin(Duration::ZERO)
        );
    }

    /// When each send reaches the target, for a lane that follows `budget` and `spin` over the
    /// intended `times`: the OS wakes the thread `late(k)` after the instant it asked for (the
    /// spin's start, or the send's own time), a spin ends exactly at its send, and the sends of
    /// one wake-up leave `per_send` apart (on loopback a send reaches the target inside the call).
    fn arrivals(
        times: &[Instant],
        budget: Duration,
        spin: Duration,
        per_send: Duration,
        late: impl Fn(usize) -> Duration,
    ) -> Vec<Instant> {
        let mut out = Vec::with_capacity(times.len());
        let mut next = 0;
        let mut wakes = 0;
        let mut now = times[0];
        while next < times.len() {
            let aim = send_wake(times[next..].iter().copied(), budget).unwrap();
            let start = aim.saturating_duration_since(now);
            let woke = match how_to_wait(start, true, spin) {
                Wait::Spin(d) => now + d,
                Wait::Sleep(d) => {
                    let w = now + d + late(wakes);
                    wakes += 1;
                    // Woke early on purpose: spin the rest.
                    w.max(aim)
                }
            };
            now = woke;
            while next < times.len() && due(times[next], woke) {
                out.push(now);
                now += per_send;
                next += 1;
            }
        }
        out
    }

    fn gaps_secs(at: &[Instant]) -> Vec<f64> {
        at.windows(2)
            .map(|w| w[1].duration_since(w[0]).as_secs_f64())
            .collect()
    }

    /// Kolmogorov–Smirnov distance between `gaps` and the exponential of rate `qps`.
    fn ks_exponential(mut gaps: Vec<f64>, qps: f64) -> f64 {
        gaps.sort_by(f64::total_cmp);
        let n = gaps.len() as f64;
        gaps.iter()
            .enumerate()
            .map(|(i, &x)| {
                let f = 1.0 - (-qps * x).exp();
                ((i + 1) as f64 / n - f).max(f - i as f64 / n)
            })
            .fold(0.0, f64::max)
    }

    fn sd(x: &[f64]) -> f64 {
        let m = x.iter().sum::<f64>() / x.len() as f64;
        (x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (x.len() - 1) as f64).sqrt()
    }

    /// The run's own schedule and policy, from a plan as the CLI and the API make it.
    fn planned(qps: f64, poisson: bool) -> (Vec<Instant>, crate::plan::wake::WakePolicy) {
        use crate::plan::{Input, Limits, Plan, Rate};
        let mut input = Input::new("http://h/", Rate::PerSecond(qps), 5.0);
        input.poisson = poisson;
        input.seed = Some(9);
        input.threads = Some(1);
        let plan = Plan::new(&input, &Limits::default()).unwrap();
        let t0 = Instant::now();
        let super::super::pacing::Pacing::Paced(s) =
            super::super::pacing::Pacing::new(&plan, t0, 0, 1)
        else {
            panic!("a fixed rate is paced")
        };
        (s.upcoming().collect(), plan.wake.clone())
    }

    /// Issue 18, defect 4: at defaults, Poisson sends are never batched, so the gaps the target
    /// sees keep the exponential's short ones (a 50 µs budget moved the KS distance to 0.08 on
    /// the target's clock, 2,000/s for 5 s).
    #[test]
    fn poisson_arrivals_keep_their_short_gaps_at_defaults() {
        let (times, policy) = planned(2_000.0, true);
        assert_eq!(times.len(), 10_000);
        let mut rng = crate::rng::SplitMix64(5);
        let late: Vec<Duration> = (0..times.len())
            .map(|_| Duration::from_nanos(5_000 + rng.below(15_000) as u64))
            .collect();
        let at = arrivals(
            &times,
            policy.budget,
            policy.spin,
            Duration::from_micros(3),
            |k| late[k % late.len()],
        );
        let ks = ks_exponential(gaps_secs(&at), 2_000.0);
        assert!(
            ks <= 0.02,
            "KS distance {ks} on the target's clock ({policy:?})"
        );
        // The same schedule batched within 50 µs loses its short gaps: the distance this guards.
        let batched = arrivals(
            &times,
            Duration::from_micros(50),
            Duration::ZERO,
            Duration::from_micros(3),
            |_| Duration::ZERO,
        );
        assert!(ks_exponential(gaps_secs(&batched), 2_000.0) > 0.04);
    }

    /// At defaults a constant 2,000/s thread wakes for each send and spins before it: a wake-up
    /// late by less than the spin leaves no trace in the gaps the target sees.
    #[test]
    fn constant_arrivals_are_spun_to_at_low_rates() {
        let (times, policy) = planned(2_000.0, false);
        assert_eq!(policy.budget, Duration::ZERO);
        assert!(policy.spin >= Duration::from_micros(20), "{policy:?}");
        let mut rng = crate::rng::SplitMix64(6);
        // Wake-ups 5-20 µs late, one in ten 20-100 µs (an idle CPU coming back).
        let late: Vec<Duration> = (0..times.len())
            .map(|_| {
                let ns = if rng.below(10) == 0 {
                    20_000 + rng.below(80_000)
                } else {
                    5_000 + rng.below(15_000)
                };
                Duration::from_nanos(ns as u64)
            })
            .collect();
        let lat = |k: usize| late[k % late.len()];
        let us = |g: Vec<f64>| sd(&g) * 1e6;
        let spun = us(gaps_secs(&arrivals(
            &times,
            policy.budget,
            policy.spin,
            Duration::ZERO,
            lat,
        )));
        let slept = us(gaps_secs(&arrivals(
            &times,
            policy.budget,
            Duration::ZERO,
            Duration::ZERO,
            lat,
        )));
        assert!(
            spun <= 60.0 && spun < slept / 2.0,
            "gap sd {spun:.1} µs spun, {slept:.1} µs slept"
        );
        // Every gap is the interval but for the rare wake-up later than the spin.
        let on_time = gaps_secs(&arrivals(
            &times,
            policy.budget,
            policy.spin,
            Duration::ZERO,
            lat,
        ))
        .iter()
        .filter(|g| (**g - 500e-6).abs() < 1e-9)
        .count();
        assert!(
            on_time as f64 >= 0.8 * (times.len() - 1) as f64,
            "{on_time}"
        );
    }

    /// At 20,000/s on one thread the default still pairs constant sends (the wake-up issue's
    /// CPU per request rests on it) and does not spin.
    #[test]
    fn constant_arrivals_at_high_rates_still_share_wake_ups() {
        let (times, policy) = planned(20_000.0, false);
        assert_eq!(
            (policy.budget, policy.spin),
            (Duration::from_micros(50), Duration::ZERO)
        );
        let (_, wakes) = simulate(&times[..2_000], policy.budget, |_| Duration::ZERO);
        assert_eq!(wakes, 1_000);
    }

    #[test]
    fn the_spin_follows_the_recent_wake_up_latency_up_to_its_cap() {
        let us = Duration::from_micros;
        let cap = us(50);
        let mut o = Oversleep::new(cap);
        assert_eq!(o.spin(cap), cap, "nothing measured yet: the cap");
        for _ in 0..RECENT {
            o.note(us(10));
        }
        assert_eq!(o.spin(cap), us(10) + SPIN_MARGIN);
        // One late wake-up raises it for the next RECENT sleeps, then it is forgotten.
        o.note(us(30));
        for _ in 0..RECENT - 1 {
            assert_eq!(o.spin(cap), us(30) + SPIN_MARGIN);
            o.note(us(8));
        }
        o.note(us(8));
        assert_eq!(o.spin(cap), us(8) + SPIN_MARGIN);
        // Never past the cap, however late the OS was (a preemption is not spun for).
        o.note(us(4_000));
        assert_eq!(o.spin(cap), cap);
        assert_eq!(
            o.spin(Duration::ZERO),
            Duration::ZERO,
            "no spin chosen: none"
        );
    }
}
