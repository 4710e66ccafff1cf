//! When a paced lane wakes to send: the batching rule of the lateness budget (`--max-lateness`).
//! Pure: intended send times come in, the instant to wake goes out.
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
}
