//! Where a lane's requests come from ([`Pacing`], decided once from the plan's rate) and when
//! they are due. Pure arithmetic over the plan's [`RateCurve`]: request `i` is due at `t0 + t`
//! where the integral of the rate reaches `i` (`i/qps` for a plain run; the curve's closed-form
//! inverse for stages and ramps), or, for Poisson arrivals, where it reaches the `i`-th arrival
//! of a seeded unit-rate Poisson process (time-rescaling). A thread walks only its share
//! (`i ≡ k mod T`, and of a shard `i/N`, its share of the shard's) so the global spacing holds
//! however many threads and shards there are: every one generates the whole seeded sequence and
//! keeps its own requests. Nothing here reads the clock: `now` is passed in.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::plan::stages::{RateCurve, UnitArrivals};
use crate::plan::{Arrival, Plan};

/// The source of a lane's requests.
#[derive(Clone, Debug)]
pub enum Pacing {
    /// Open loop: this thread's share of the schedule, each request due at its intended time
    /// whatever the target does.
    Paced(Schedule),
    /// Closed loop until `end` (wrk's model): a free connection sends the next request at once.
    /// Request indexes go `next`, `next + step`, ... below `limit` (the plan's `-n` count, or
    /// no limit), so threads never share one and together send exactly `limit`.
    Saturate {
        end: Instant,
        next: u64,
        step: u64,
        limit: u64,
    },
}

impl Pacing {
    /// Thread `thread` of `threads` of `plan`, starting at `t0`. Of a shard `i/N` of the plan,
    /// the threads share the shard's requests (`j ≡ i mod N`) in turn: thread `k` takes
    /// `i + N·k`, then every `N·T`-th, so each keeps the whole plan's intended times.
    pub fn new(plan: &Plan, t0: Instant, thread: u64, threads: u64) -> Pacing {
        let n = u64::from(plan.shard.count());
        let first = u64::from(plan.shard.index()) + n * thread;
        let step = n * threads.max(1);
        // A fixed-rate plan always has its curve (a plain run is one stage); saturation has none.
        match &plan.curve {
            Some(curve) => Pacing::Paced(
                Schedule::new(t0, curve.clone(), plan.count, plan.arrival, first, step)
                    .with_times(plan.trace_times.clone()),
            ),
            None => Pacing::Saturate {
                end: t0 + plan.duration,
                next: first,
                step,
                limit: if plan.count > 0 { plan.count } else { u64::MAX },
            },
        }
    }

    /// The next scheduled request if it is due by `now`, moving past it (open loop only).
    #[inline]
    pub fn due(&mut self, now: Instant) -> Option<(u64, Instant)> {
        let Pacing::Paced(s) = self else {
            return None;
        };
        let (index, intended) = s.peek()?;
        if intended > now {
            return None;
        }
        s.advance();
        Some((index, intended))
    }

    /// The index a free connection sends at `now` (closed loop, before its end); `advance` moves
    /// past it once it is sent.
    #[inline]
    pub fn closed_loop(&self, now: Instant) -> Option<u64> {
        match self {
            Pacing::Saturate {
                end, next, limit, ..
            } if now < *end && *next < *limit => Some(*next),
            _ => None,
        }
    }

    #[inline]
    pub fn advance(&mut self) {
        if let Pacing::Saturate { next, step, .. } = self {
            *next += *step;
        }
    }

    /// The next moment to wake for: the next intended send (open loop; `queue_empty` false means
    /// due requests only queue behind waiting ones, so none), or the closed loop's end.
    pub fn wake_at(&mut self, queue_empty: bool) -> Option<Instant> {
        match self {
            Pacing::Paced(s) if queue_empty => s.peek().map(|(_, t)| t),
            Pacing::Paced(_) => None,
            Pacing::Saturate { end, .. } => Some(*end),
        }
    }

    /// The index of the next scheduled request, without moving past it (open loop only).
    pub fn next_index(&mut self) -> Option<u64> {
        match self {
            Pacing::Paced(s) => s.peek().map(|(index, _)| index),
            Pacing::Saturate { .. } => None,
        }
    }

    /// The intended times of the next sends, in order, without moving past them (the lane's
    /// lookahead for batching sends into one wake-up; empty in closed loop).
    pub fn upcoming(&self) -> impl Iterator<Item = Instant> + '_ {
        let s = match self {
            Pacing::Paced(s) => Some(s),
            Pacing::Saturate { .. } => None,
        };
        s.into_iter().flat_map(Schedule::upcoming)
    }

    /// Whether nothing more will fall due: the schedule is walked (open loop), or the closed
    /// loop's end has come or its count is sent.
    pub fn over(&self, now: Instant) -> bool {
        match self {
            Pacing::Paced(s) => s.remaining() == 0,
            Pacing::Saturate {
                end, next, limit, ..
            } => now >= *end || *next >= *limit,
        }
    }

    /// Whether the closed loop's end came (by time or a stop), which drops what is in flight;
    /// a count all sent waits for its responses instead.
    pub fn cut(&self, now: Instant) -> bool {
        matches!(self, Pacing::Saturate { end, .. } if now >= *end)
    }

    /// Stops early at `now`: a closed loop ends there; an open loop's remaining schedule is then
    /// taken with [`Pacing::take_rest`].
    pub fn stop(&mut self, now: Instant) {
        if let Pacing::Saturate { end, .. } = self {
            *end = (*end).min(now);
        }
    }

    /// The next scheduled request whatever its time, moving past it (for requests that will
    /// never be sent: a stopped run, a failed poller).
    pub fn take_rest(&mut self) -> Option<(u64, Instant)> {
        let Pacing::Paced(s) = self else {
            return None;
        };
        let next = s.peek()?;
        s.advance();
        Some(next)
    }
}

/// One thread's share of the schedule.
#[derive(Clone, Debug)]
pub struct Schedule {
    t0: Instant,
    curve: RateCurve,
    /// Next global request index of this thread.
    next: u64,
    step: u64,
    count: u64,
    /// Seeded unit-rate arrivals, for Poisson; every thread replays the same global sequence and
    /// keeps its own indices.
    poisson: Option<UnitArrivals>,
    /// A trace replay's send times (seconds from `t0`, request `i` at `[i]`): the schedule is
    /// the trace, not the curve.
    times: Option<Arc<[f64]>>,
}

impl Schedule {
    /// The requests `first`, `first + step`, ... below `count` of a plan following `curve`,
    /// starting at `t0`: thread `k` of `T` is `(k, T)`.
    pub fn new(
        t0: Instant,
        curve: RateCurve,
        count: u64,
        arrival: Arrival,
        first: u64,
        step: u64,
    ) -> Schedule {
        let poisson = match arrival {
            Arrival::Constant => None,
            Arrival::Poisson { seed } => Some(UnitArrivals::new(seed)),
        };
        Schedule {
            t0,
            curve,
            next: first,
            step: step.max(1),
            count,
            poisson,
            times: None,
        }
    }

    /// The same schedule with request `i` due at `t0 + times[i]` seconds (a trace replay), and
    /// no more requests than there are times.
    pub fn with_times(mut self, times: Option<Arc<[f64]>>) -> Schedule {
        if let Some(t) = &times {
            self.count = self.count.min(t.len() as u64);
        }
        self.times = times;
        self
    }

    /// Seconds from `t0` when request `i` is due.
    #[inline]
    fn offset(
        curve: &RateCurve,
        times: Option<&[f64]>,
        poisson: Option<&mut UnitArrivals>,
        i: u64,
    ) -> f64 {
        if let Some(t) = times {
            // `count` is at most the times' length (`with_times`), and `i < count`.
            return t.get(i as usize).copied().unwrap_or(0.0);
        }
        let due = match poisson {
            None => i as f64,
            Some(p) => p.nth(i),
        };
        curve.time_of(due)
    }

    /// The next request of this thread and its intended time, if any remain.
    pub fn peek(&mut self) -> Option<(u64, Instant)> {
        if self.next >= self.count {
            return None;
        }
        // Request 0 is due at t0; request i where the rate's integral reaches i (or the i-th
        // unit-rate arrival, so Poisson gaps follow the curve's rate), or at the trace's time.
        let secs = Self::offset(
            &self.curve,
            self.times.as_deref(),
            self.poisson.as_mut(),
            self.next,
        );
        Some((self.next, self.t0 + Duration::from_secs_f64(secs)))
    }

    /// The intended times of this thread's next requests, in order, without moving past them.
    /// Allocation-free: the curve is borrowed, and only the Poisson generator's few words are
    /// copied to run ahead.
    pub fn upcoming(&self) -> impl Iterator<Item = Instant> + '_ {
        let mut next = self.next;
        let mut poisson = self.poisson.clone();
        std::iter::from_fn(move || {
            if next >= self.count {
                return None;
            }
            let secs = Self::offset(&self.curve, self.times.as_deref(), poisson.as_mut(), next);
            next = next.saturating_add(self.step);
            Some(self.t0 + Duration::from_secs_f64(secs))
        })
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
        let curve = || RateCurve::constant(20.0, 5.0);
        let a = drain(Schedule::new(t0, curve(), 100, Arrival::Constant, 0, 3));
        let b = drain(Schedule::new(t0, curve(), 100, Arrival::Constant, 1, 3));
        let c = drain(Schedule::new(t0, curve(), 100, Arrival::Constant, 2, 3));
        assert_eq!(a.len() + b.len() + c.len(), 100);
        let mut all: Vec<_> = a.into_iter().chain(b).chain(c).collect();
        all.sort();
        for (i, (idx, t)) in all.iter().enumerate() {
            assert_eq!(*idx, i as u64);
            let want = Duration::from_secs_f64(i as f64 / 20.0);
            assert!((t.duration_since(t0).as_secs_f64() - want.as_secs_f64()).abs() < 1e-9);
        }
        assert_eq!(
            Schedule::new(t0, curve(), 100, Arrival::Constant, 1, 3).remaining(),
            33
        );
    }

    #[test]
    fn a_counted_closed_loop_stops_at_its_count_and_waits_for_its_answers() {
        let t0 = Instant::now();
        let mut c = Pacing::Saturate {
            end: t0 + Duration::from_secs(10),
            next: 1,
            step: 2,
            limit: 5,
        };
        let mut sent = Vec::new();
        while let Some(i) = c.closed_loop(t0) {
            sent.push(i);
            c.advance();
        }
        assert_eq!(sent, [1, 3], "thread 1 of 2 sends the odd indexes below 5");
        assert!(c.over(t0));
        assert!(
            !c.cut(t0),
            "a count all sent is not cut: its answers are awaited"
        );
        c.stop(t0);
        assert!(c.cut(t0));
    }

    #[test]
    fn paced_releases_requests_when_due_and_closed_loop_until_its_end() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let curve = RateCurve::constant(100.0, 0.04);
        let mut p = Pacing::Paced(Schedule::new(t0, curve, 4, Arrival::Constant, 0, 1));
        assert_eq!(p.due(ms(0)), Some((0, t0)));
        assert_eq!(p.due(ms(9)), None, "request 1 is due at 10 ms");
        assert_eq!(p.wake_at(true), Some(ms(10)));
        assert_eq!(p.wake_at(false), None);
        assert_eq!(p.due(ms(10)), Some((1, ms(10))));
        assert!(!p.over(ms(10)));
        assert_eq!(p.closed_loop(ms(10)), None);
        p.stop(ms(11));
        assert_eq!(p.take_rest(), Some((2, ms(20))));
        assert_eq!(p.take_rest(), Some((3, ms(30))));
        assert_eq!(p.take_rest(), None);
        assert!(p.over(ms(11)));

        let mut c = Pacing::Saturate {
            end: ms(500),
            next: 1,
            step: 2,
            limit: u64::MAX,
        };
        assert_eq!(c.closed_loop(ms(0)), Some(1));
        c.advance();
        assert_eq!(c.closed_loop(ms(499)), Some(3));
        assert_eq!(c.closed_loop(ms(500)), None);
        assert_eq!(c.due(ms(1000)), None, "a closed loop has no schedule");
        assert_eq!(c.wake_at(true), Some(ms(500)));
        c.stop(ms(200));
        assert!(c.over(ms(200)));
        assert_eq!(c.take_rest(), None);
    }

    /// Shards of a plan, each split over its threads, send exactly the plan's requests at the
    /// plan's intended times, Poisson included, and never one twice.
    #[test]
    fn shards_and_threads_together_are_the_plan() {
        use crate::plan::ShardIndex;
        use crate::plan::{Input, Limits, Rate};
        let t0 = Instant::now();
        for poisson in [false, true] {
            let mut input = Input::new("http://h/", Rate::PerSecond(500.0), 2.0);
            input.num_workers = Some(21);
            input.poisson = poisson;
            input.seed = Some(5);
            let whole = Plan::new(&input, &Limits::default()).unwrap();
            let mut want = Vec::new();
            let Pacing::Paced(s) = Pacing::new(&whole, t0, 0, 1) else {
                panic!("paced")
            };
            want.extend(drain(s));
            assert_eq!(want.len(), 1000);
            for n in [1u32, 2, 3, 7] {
                for threads in [1u64, 2, 3] {
                    let mut got = Vec::new();
                    for i in 0..n {
                        input.shard = ShardIndex::new(i, n).unwrap();
                        let plan = Plan::new(&input, &Limits::default()).unwrap();
                        let mut mine = 0;
                        for k in 0..threads {
                            let Pacing::Paced(s) = Pacing::new(&plan, t0, k, threads) else {
                                panic!("paced")
                            };
                            let share = drain(s);
                            assert!(share.iter().all(|(j, _)| j % u64::from(n) == u64::from(i)));
                            mine += share.len() as u64;
                            got.extend(share);
                        }
                        assert_eq!(mine, plan.shard_requests(), "{n} shards, shard {i}");
                    }
                    got.sort();
                    assert_eq!(
                        got, want,
                        "{n} shards x {threads} threads, poisson {poisson}"
                    );
                }
            }
        }
    }

    /// The lookahead the lane batches sends with is the schedule itself, and does not move it.
    #[test]
    fn upcoming_is_what_the_schedule_will_release() {
        let t0 = Instant::now();
        for arrival in [Arrival::Constant, Arrival::Poisson { seed: 3 }] {
            let mut s = Schedule::new(t0, RateCurve::constant(500.0, 1.0), 500, arrival, 1, 3);
            s.peek();
            s.advance();
            let ahead: Vec<Instant> = s.upcoming().take(50).collect();
            let p = Pacing::Paced(s.clone());
            assert_eq!(p.upcoming().take(50).collect::<Vec<_>>(), ahead);
            let walked: Vec<Instant> = drain(s).into_iter().map(|(_, t)| t).take(50).collect();
            assert_eq!(ahead, walked, "{arrival:?}");
        }
        let c = Pacing::Saturate {
            end: t0,
            next: 0,
            step: 1,
            limit: u64::MAX,
        };
        assert_eq!(c.upcoming().next(), None);
    }

    #[test]
    fn poisson_is_seeded_split_consistently_and_has_the_right_rate() {
        let t0 = Instant::now();
        let p = Arrival::Poisson { seed: 7 };
        let curve = || RateCurve::constant(1000.0, 20.0);
        let one = drain(Schedule::new(t0, curve(), 20_000, p, 0, 1));
        let mut two = drain(Schedule::new(t0, curve(), 20_000, p, 0, 2));
        two.extend(drain(Schedule::new(t0, curve(), 20_000, p, 1, 2)));
        two.sort();
        assert_eq!(one, two);
        let last = one.last().unwrap().1.duration_since(t0).as_secs_f64();
        // 19,999 gaps of mean 1 ms: the total is within a few standard deviations (√n ms ≈ 0.14 s) of 20 s.
        assert!((last - 20.0).abs() < 0.6, "{last}");
        assert!(one.windows(2).all(|w| w[0].1 <= w[1].1));
    }
}
