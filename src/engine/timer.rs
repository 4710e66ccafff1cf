//! The worker's wake-up clock. epoll (and so mio) rounds poll timeouts up to whole milliseconds,
//! which would put up to a millisecond of error into every intended send time; a `timerfd` armed
//! for the next deadline, registered with the worker's `Poll`, wakes it with nanosecond resolution.
//! The thread's timer slack is lowered to 1 ns for the same reason (the default is 50 µs).

use std::io;
use std::num::NonZeroU64;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use rustix::time::{
    Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, timerfd_create,
    timerfd_settime,
};

pub struct Timer {
    fd: OwnedFd,
    armed: Option<Instant>,
}

impl Timer {
    pub fn new() -> io::Result<Timer> {
        let fd = timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )?;
        // Best effort: a thread that cannot lower its slack still paces, only less finely.
        let _ = rustix::thread::set_current_timer_slack(NonZeroU64::new(1));
        Ok(Timer { fd, armed: None })
    }

    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Makes the timer fire at `deadline` (or at once if it is past). A no-op when it is already
    /// armed for that moment or an earlier one: the early wake-up re-arms it then. At saturation
    /// the next deadline (the oldest request's timeout) moves on with every response, and this
    /// keeps that from costing a `timerfd_settime` per loop.
    pub fn arm(&mut self, deadline: Instant, now: Instant) -> io::Result<()> {
        if self.armed.is_some_and(|a| a <= deadline) {
            return Ok(());
        }
        // A zero it_value would disarm the timer, so a past deadline becomes the smallest delay.
        let delay = deadline
            .saturating_duration_since(now)
            .max(Duration::from_nanos(1));
        let spec = Itimerspec {
            it_interval: Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: Timespec {
                tv_sec: delay.as_secs().try_into().unwrap_or(i64::MAX),
                tv_nsec: delay.subsec_nanos().into(),
            },
        };
        timerfd_settime(self.fd.as_fd(), TimerfdTimerFlags::empty(), &spec)?;
        self.armed = Some(deadline);
        Ok(())
    }

    /// Called when the timer's fd is readable. Its expiry count is not read: mio registers it
    /// edge-triggered and every expiry wakes epoll again, so the read would be a wasted syscall.
    pub fn fired(&mut self) {
        self.armed = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::unix::SourceFd;
    use mio::{Events, Interest, Poll, Token};

    #[test]
    fn fires_sub_millisecond_deadlines() {
        let mut poll = Poll::new().unwrap();
        let mut timer = Timer::new().unwrap();
        poll.registry()
            .register(&mut SourceFd(&timer.raw_fd()), Token(0), Interest::READABLE)
            .unwrap();
        let mut events = Events::with_capacity(4);
        for _ in 0..3 {
            let start = Instant::now();
            let deadline = start + Duration::from_micros(300);
            timer.arm(deadline, start).unwrap();
            let mut fired = false;
            while !fired && start.elapsed() < Duration::from_secs(2) {
                poll.poll(&mut events, Some(Duration::from_secs(1)))
                    .unwrap();
                fired = events.iter().any(|e| e.token() == Token(0));
            }
            assert!(fired);
            timer.fired();
            assert!(Instant::now() >= deadline);
        }
    }
}
