//! Intended send times. Pure arithmetic: request `i` is due at `t0 + i/qps` (constant) or at the
//! `i`-th arrival of a seeded Poisson process; a thread walks only its share (`i ≡ k mod T`) so the
//! global spacing holds however many threads there are. Nothing here reads the clock.

use std::time::{Duration, Instant};

use crate::plan::Arrival;
use crate::rng::SplitMix64;

/// One thread's share of the schedule.
#[derive(Clone, Debug)]
pub struct Schedule {
    t0: Instant,
    qps: f64,
    /// Next global request index of this thread.
    next: u64,
    step: u64,
    count: u64,
    poisson: Option<Poisson>,
}

#[derive(Clone, Debug)]
struct Poisson {
    rng: SplitMix64,
    /// Arrival time (seconds after t0) of global request `at`.
    time: f64,
    at: u64,
}

impl Schedule {
    /// Thread `thread` of `threads` over `count` requests at `qps`, starting at `t0`.
    pub fn new(
        t0: Instant,
        qps: f64,
        count: u64,
        arrival: Arrival,
        thread: u64,
        threads: u64,
    ) -> Schedule {
        let poisson = match arrival {
            Arrival::Constant => None,
            Arrival::Poisson { seed } => Some(Poisson {
                rng: SplitMix64(seed),
                time: 0.0,
                at: 0,
            }),
        };
        Schedule {
            t0,
            qps,
            next: thread,
            step: threads.max(1),
            count,
            poisson,
        }
    }

    /// The next request of this thread and its intended time, if any remain.
    pub fn peek(&mut self) -> Option<(u64, Instant)> {
        if self.next >= self.count {
            return None;
        }
        let secs = match &mut self.poisson {
            None => self.next as f64 / self.qps,
            Some(p) => {
                // Request 0 arrives at t0; every later gap is exponential with mean 1/qps. Every
                // thread replays the same global sequence and keeps its own indices.
                while p.at < self.next {
                    p.time += -(1.0 - p.rng.next_f64()).ln() / self.qps;
                    p.at += 1;
                }
                p.time
            }
        };
        Some((self.next, self.t0 + Duration::from_secs_f64(secs)))
    }

    /// Moves past the request `peek` returned.
    pub fn advance(&mut self) {
        self.next = self.next.saturating_add(self.step);
    }

    /// Requests of this thread not yet handed out.
    pub fn remaining(&self) -> u64 {
        if self.next >= self.count {
            0
        } else {
            (self.count - self.next).div_ceil(self.step)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(mut s: Schedule) -> Vec<(u64, Instant)> {
        let mut out = Vec::new();
        while let Some(x) = s.peek() {
            out.push(x);
            s.advance();
        }
        out
    }

    #[test]
    fn constant_shares_interleave_into_the_global_spacing() {
        let t0 = Instant::now();
        let a = drain(Schedule::new(t0, 20.0, 100, Arrival::Constant, 0, 3));
        let b = drain(Schedule::new(t0, 20.0, 100, Arrival::Constant, 1, 3));
        let c = drain(Schedule::new(t0, 20.0, 100, Arrival::Constant, 2, 3));
        assert_eq!(a.len() + b.len() + c.len(), 100);
        let mut all: Vec<_> = a.into_iter().chain(b).chain(c).collect();
        all.sort();
        for (i, (idx, t)) in all.iter().enumerate() {
            assert_eq!(*idx, i as u64);
            let want = Duration::from_secs_f64(i as f64 / 20.0);
            assert!((t.duration_since(t0).as_secs_f64() - want.as_secs_f64()).abs() < 1e-9);
        }
        assert_eq!(
            Schedule::new(t0, 20.0, 100, Arrival::Constant, 1, 3).remaining(),
            33
        );
    }

    #[test]
    fn poisson_is_seeded_split_consistently_and_has_the_right_rate() {
        let t0 = Instant::now();
        let p = Arrival::Poisson { seed: 7 };
        let one = drain(Schedule::new(t0, 1000.0, 20_000, p, 0, 1));
        let mut two = drain(Schedule::new(t0, 1000.0, 20_000, p, 0, 2));
        two.extend(drain(Schedule::new(t0, 1000.0, 20_000, p, 1, 2)));
        two.sort();
        assert_eq!(one, two);
        let last = one.last().unwrap().1.duration_since(t0).as_secs_f64();
        // 19,999 gaps of mean 1 ms: the total is within a few standard deviations (√n ms ≈ 0.14 s) of 20 s.
        assert!((last - 20.0).abs() < 0.6, "{last}");
        assert!(one.windows(2).all(|w| w[0].1 <= w[1].1));
    }
}
