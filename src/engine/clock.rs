//! Kernel receive timestamps on the run's clock. The kernel stamps each TCP segment as it arrives
//! (`SO_TIMESTAMPING`, software receive stamps) in `CLOCK_REALTIME` nanoseconds; every timing of
//! a run is on the monotonic clock (`Instant`). [`StampClock`] maps one onto the other with the
//! offset between the two clocks, measured at the start from the tightest of several paired
//! readings, measured again as the lane runs (so a step of the wall clock moves the mapping
//! with it), and reported at the end as the run's drift. On Linux an NTP slew changes the rate of
//! both clocks alike, so the offset moves only when the wall clock is stepped (`settimeofday`,
//! an NTP step, a leap second): the drift is 0 in almost every run, and the rechecks are there
//! for the run in which it is not.
//!
//! What a stamp means for TCP: a read returns the stamp of the **last** segment it consumed. A
//! read that carries several responses, or several SSE events, gives them all that one stamp:
//! the time the last of them arrived. That is exact for a response's end and for anything that
//! arrived in one segment; two events that arrived apart but were read together look
//! simultaneous (the earlier one is timed late by the gap). So a lane may read late without
//! losing a response's arrival time, but a streaming run that times every token keeps reading as
//! each segment arrives (see `lane`).
//!
//! Pure: the readings come in as numbers, `now` is passed in; the calls that read the clocks are
//! [`super::sys`]'s and are made by [`StampClock::calibrate`] and [`StampClock::recheck`] only.

use std::ops::AddAssign;
use std::time::{Duration, Instant};

use super::sys::{self, RealtimeNs};

/// A change of the realtime−monotonic offset larger than this between two readings is a step of
/// the wall clock (someone set it), not a slew (NTP slews at most 500 ppm).
pub const STEP: Duration = Duration::from_millis(1);

/// How often a lane reads the offset again: a step of the wall clock is followed within this.
pub const RECHECK: Duration = Duration::from_millis(10);

/// How long a run waits, before it starts, for the kernel to turn receive stamping on.
pub const WARM_UP: Duration = Duration::from_millis(50);

/// Turns kernel receive stamping on before a run starts (see [`sys::warm_stamps`]): the one
/// place it is switched on for a run. Hold the socket for the run (it keeps the feature on while
/// connections come and go); the source is what every lane starts from (each connection still
/// asks for stamps on its own socket, which is per socket). No socket when it is refused, or
/// forced off by `PACER_TIMESTAMPS=user`: the source says why.
pub fn warm_up() -> (Option<std::net::UdpSocket>, Source) {
    let env = super::lane::TIMESTAMPS_ENV;
    if std::env::var(env).is_ok_and(|v| v == "user") {
        return (None, Source::User(format!("forced by {env}=user")));
    }
    match sys::warm_stamps(WARM_UP) {
        Ok((s, _)) => (Some(s), Source::Kernel),
        Err(e) => (
            None,
            Source::User(format!("SO_TIMESTAMPING refused ({})", sys::errno_name(&e))),
        ),
    }
}

/// Paired readings taken to calibrate; the tightest is kept.
const PAIRS: usize = 16;

/// One paired reading: monotonic, realtime, monotonic again (ns).
pub type Pair = (i64, i64, i64);

/// The realtime−monotonic offset from the tightest of `pairs` (the one whose two monotonic
/// readings are closest, so the realtime reading sits between them with the least doubt), and
/// that doubt (the pair's width). None when there is no pair.
pub fn tightest(pairs: &[Pair]) -> Option<(i64, i64)> {
    pairs
        .iter()
        .filter(|(m0, _, m1)| m1 >= m0)
        .min_by_key(|(m0, _, m1)| m1 - m0)
        .map(|&(m0, r, m1)| (r - (m0 + (m1 - m0) / 2), m1 - m0))
}

/// Maps kernel receive stamps (realtime ns) to instants of the run. See the module docs.
#[derive(Clone, Copy, Debug)]
pub struct StampClock {
    /// An instant and the same moment on `CLOCK_MONOTONIC`, in ns (`Instant` is that clock).
    base: Instant,
    base_mono: i64,
    /// `CLOCK_REALTIME − CLOCK_MONOTONIC` as last measured, and at the start.
    offset: i64,
    start_offset: i64,
    /// Steps of the wall clock seen.
    steps: u32,
}

impl StampClock {
    /// A clock whose `base` instant is `base_mono` ns on the monotonic clock, with the
    /// realtime−monotonic `offset` in ns.
    pub fn new(base: Instant, base_mono: i64, offset: i64) -> StampClock {
        StampClock {
            base,
            base_mono,
            offset,
            start_offset: offset,
            steps: 0,
        }
    }

    /// Reads the clocks now: the offset from the tightest of several pairs.
    pub fn calibrate() -> StampClock {
        let (base, base_mono) = instant_pair();
        let (offset, _) = tightest(&read_pairs()).unwrap_or((0, 0));
        StampClock::new(base, base_mono, offset)
    }

    /// Reads the offset again (a few vDSO clock reads, no syscall).
    pub fn recheck(&mut self) {
        if let Some((offset, _)) = tightest(&read_pairs()[..4]) {
            self.update(offset);
        }
    }

    /// A new measurement of the realtime−monotonic offset.
    pub fn update(&mut self, offset: i64) {
        if (offset - self.offset).unsigned_abs() > STEP.as_nanos() as u64 {
            self.steps += 1;
        }
        self.offset = offset;
    }

    /// The instant the kernel's `stamp` names, kept within `[floor, now]`: a response cannot
    /// arrive before its request was sent (`floor`) nor after it was read (`now`). Only a wall
    /// clock stepped since the last [`recheck`](Self::recheck) (or a broken stamp) gets there.
    #[inline]
    pub fn map(&self, stamp: RealtimeNs, floor: Instant, now: Instant) -> Instant {
        let delta = stamp - self.offset - self.base_mono;
        let at = if delta >= 0 {
            self.base.checked_add(Duration::from_nanos(delta as u64))
        } else {
            self.base
                .checked_sub(Duration::from_nanos(delta.unsigned_abs()))
        };
        let at = at.unwrap_or(now).min(now);
        if floor <= now { at.max(floor) } else { at }
    }

    /// The monotonic clock's reading, in ns, at instant `t` (for traces compared with other
    /// processes' `CLOCK_MONOTONIC` readings).
    pub fn mono_ns(&self, t: Instant) -> i64 {
        let nanos = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        match t.checked_duration_since(self.base) {
            Some(d) => self.base_mono.saturating_add(nanos(d)),
            None => self.base_mono.saturating_sub(nanos(self.base - t)),
        }
    }

    /// How far the offset moved since the start, in ns (positive: the wall clock ran fast).
    pub fn drift_ns(&self) -> i64 {
        self.offset - self.start_offset
    }

    pub fn steps(&self) -> u32 {
        self.steps
    }
}

/// An instant and the monotonic clock in ns, read back to back (the tightest of a few tries).
fn instant_pair() -> (Instant, i64) {
    let mut best: Option<(i64, Instant, i64)> = None;
    for _ in 0..PAIRS {
        let m0 = sys::monotonic_ns();
        let i = Instant::now();
        let m1 = sys::monotonic_ns();
        if best.is_none_or(|(w, _, _)| m1 - m0 < w) {
            best = Some((m1 - m0, i, m0 + (m1 - m0) / 2));
        }
    }
    let (_, i, m) = best.unwrap_or((0, Instant::now(), sys::monotonic_ns()));
    (i, m)
}

fn read_pairs() -> [Pair; PAIRS] {
    std::array::from_fn(|_| {
        let m0 = sys::monotonic_ns();
        let r = sys::realtime_ns();
        let m1 = sys::monotonic_ns();
        (m0, r, m1)
    })
}

/// Where a run's receive times came from.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Source {
    /// The kernel's receive stamps.
    #[default]
    Kernel,
    /// The clock read when the lane read the bytes, for this reason.
    User(String),
}

/// What the report says about a run's receive timestamps, merged over its lanes with `+=`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StampReport {
    pub source: Source,
    /// The realtime−monotonic offset's move over the run (ns), the largest of any lane.
    pub drift_ns: i64,
    /// Steps of the wall clock seen (the mapping followed them).
    pub steps: u32,
    /// Reads that carried data with a stamp, and without one (timed when read).
    pub stamped: u64,
    pub unstamped: u64,
}

impl StampReport {
    /// The report's `timestamps` text: `kernel`, or `user: <why>`.
    pub fn describe(&self) -> String {
        match &self.source {
            Source::Kernel if self.unstamped > 0 => format!(
                "kernel ({} of {} reads had no stamp and were timed when read)",
                self.unstamped,
                self.stamped + self.unstamped
            ),
            Source::Kernel => "kernel".into(),
            Source::User(why) => format!("user: {why}"),
        }
    }

    /// The drift in seconds (None when the kernel's stamps were not used).
    pub fn drift_secs(&self) -> Option<f64> {
        match self.source {
            Source::Kernel => Some(self.drift_ns as f64 * 1e-9),
            Source::User(_) => None,
        }
    }
}

impl AddAssign for StampReport {
    fn add_assign(&mut self, b: StampReport) {
        // One lane without kernel stamps makes the run's times partly user times: say so.
        if let (Source::Kernel, Source::User(_)) = (&self.source, &b.source) {
            self.source = b.source;
        }
        if b.drift_ns.unsigned_abs() > self.drift_ns.unsigned_abs() {
            self.drift_ns = b.drift_ns;
        }
        self.steps += b.steps;
        self.stamped += b.stamped;
        self.unstamped += b.unstamped;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    /// A clock whose monotonic 0 is `base`, and whose wall clock reads `offset` ns more.
    fn clock(offset: i64) -> (StampClock, Instant) {
        let base = Instant::now();
        (StampClock::new(base, 0, offset), base)
    }

    fn ns(base: Instant, n: i64) -> Instant {
        base + Duration::from_nanos(n as u64)
    }

    #[test]
    fn the_tightest_pair_gives_the_offset() {
        // Realtime is monotonic + 1.7e18; pairs of width 900, 40 and 300 ns.
        let off = 1_700_000_000 * S;
        let pairs = [
            (1_000, off + 1_450, 1_900),
            (5_000, off + 5_020, 5_040),
            (9_000, off + 9_100, 9_300),
        ];
        assert_eq!(tightest(&pairs), Some((off, 40)));
        assert_eq!(tightest(&[]), None);
        // A pair read backwards (a broken reading) is ignored.
        assert_eq!(tightest(&[(10, off, 5), (0, off + 2, 4)]), Some((off, 4)));
    }

    #[test]
    fn a_stamp_maps_to_its_instant_on_the_monotonic_clock() {
        let off = 1_700_000_000 * S;
        let (c, base) = clock(off);
        let now = ns(base, 10 * S);
        // Arrived at monotonic 3 s: read at 10 s, it still says 3 s.
        assert_eq!(c.map(off + 3 * S, base, now), ns(base, 3 * S));
        assert_eq!(c.map(off + 3 * S + 17, base, now), ns(base, 3 * S + 17));
        // Never after it was read, never before its request went out.
        assert_eq!(c.map(off + 11 * S, base, now), now);
        assert_eq!(c.map(off + S, ns(base, 2 * S), now), ns(base, 2 * S));
        // Before the base instant too (negative deltas).
        let (c, base) = clock(off);
        let later = ns(base, 5 * S);
        let c2 = StampClock::new(later, 5 * S, off);
        assert_eq!(c2.map(off + 2 * S, base, later), ns(base, 2 * S));
        assert_eq!(c.drift_ns(), 0);
        // And back from instants to monotonic nanoseconds, on either side of the base.
        assert_eq!(c2.mono_ns(ns(base, 2 * S + 3)), 2 * S + 3);
        assert_eq!(c2.mono_ns(later), 5 * S);
    }

    /// The wall clock slews (NTP) by 200 ppm: the offset moves 2 µs every 10 ms. Rechecked every
    /// 10 ms, the mapping is never off by more than what moved since the last check.
    #[test]
    fn a_slewing_wall_clock_is_followed_and_its_drift_reported() {
        let off = 1_700_000_000 * S;
        let (mut c, base) = clock(off);
        let slew = |mono: i64| off + mono / 5_000; // 200 ppm
        let mut worst = 0i64;
        for step in 0..500 {
            let t = step * 10_000_000; // every 10 ms, for 5 s
            c.update(slew(t));
            // A segment that arrives 7 ms later is stamped by the slewed wall clock.
            let arrive = t + 7_000_000;
            let got = c.map(arrive + slew(arrive), base, ns(base, 100 * S));
            let err = (got.duration_since(base).as_nanos() as i64 - arrive).abs();
            worst = worst.max(err);
        }
        assert!(worst <= 2_000, "{worst} ns");
        assert_eq!(c.drift_ns(), slew(4_990_000_000) - off);
        assert_eq!(c.steps(), 0);
    }

    /// Someone sets the wall clock 3 s ahead: until the next check the stamps would map into the
    /// future and are held at the read's instant; after it, they are exact again, and the step is
    /// counted.
    #[test]
    fn a_step_of_the_wall_clock_is_clamped_then_followed() {
        let off = 1_700_000_000 * S;
        let (mut c, base) = clock(off);
        let stepped = off + 3 * S;
        let read = ns(base, S + 50_000);
        assert_eq!(c.map(stepped + S, base, read), read, "held at the read");
        c.update(stepped);
        assert_eq!(c.map(stepped + S, base, read), ns(base, S));
        assert_eq!(c.steps(), 1);
        assert_eq!(c.drift_ns(), 3 * S);
        // And back: a step backwards would map before the request; the floor holds it.
        let sent = ns(base, 2 * S);
        assert_eq!(c.map(off + 2 * S + 10, sent, ns(base, 3 * S)), sent);
        c.update(off);
        assert_eq!(
            c.map(off + 2 * S + 10, sent, ns(base, 3 * S)),
            ns(base, 2 * S + 10)
        );
        assert_eq!(c.steps(), 2);
    }

    #[test]
    fn calibration_on_this_machine_matches_the_clocks() {
        let c = StampClock::calibrate();
        let now = Instant::now();
        let at = c.map(
            sys::realtime_ns(),
            now - Duration::from_secs(1),
            Instant::now(),
        );
        // The mapped "now" is close to the instant read around it: within a millisecond on an
        // idle machine, 50 ms allowing for a preemption between the calibration's reads.
        assert!(at >= now - Duration::from_millis(50) && at <= Instant::now());
    }

    #[test]
    fn reports_merge_to_the_worst_source_and_largest_drift() {
        let mut a = StampReport {
            drift_ns: 1_500,
            stamped: 10,
            ..StampReport::default()
        };
        assert_eq!(a.describe(), "kernel");
        assert_eq!(a.drift_secs(), Some(1.5e-6));
        let b = StampReport {
            drift_ns: -4_000,
            stamped: 5,
            unstamped: 1,
            ..StampReport::default()
        };
        a += b;
        assert_eq!((a.drift_ns, a.stamped, a.unstamped), (-4_000, 15, 1));
        assert_eq!(
            a.describe(),
            "kernel (1 of 16 reads had no stamp and were timed when read)"
        );
        a += StampReport {
            source: Source::User("SO_TIMESTAMPING refused (EPERM)".into()),
            ..StampReport::default()
        };
        assert_eq!(a.describe(), "user: SO_TIMESTAMPING refused (EPERM)");
        assert_eq!(a.drift_secs(), None);
    }
}
