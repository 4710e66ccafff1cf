//! Every Linux-specific call the engine makes, behind one small module: the `timerfd` that wakes a
//! lane between milliseconds, real-time scheduling (`sched_setscheduler`) and a thread's own
//! resource use (`getrusage`), the crate's only `unsafe`, `send`/`recv` without libc's
//! cancellation-point wrappers, and the errno values the engine tells apart, by name. What the calls mean for a run (when to arm the timer, what a
//! refused real-time request is reported as, what a socket error is called) is decided by the
//! callers: `lane`, `sched`, `conn`, `outcome`.
//!
//! pacer runs on Linux only; anything else stops at compile time with the message below rather
//! than at the first missing symbol.

// The one place `unsafe` is allowed (lib.rs denies it everywhere else): `sched_setscheduler` and
// `getrusage` have no safe wrapper in rustix.
#![allow(unsafe_code)]

#[cfg(not(target_os = "linux"))]
compile_error!(
    "pacer runs on Linux only: its engine uses timerfd, epoll (through mio), SCHED_FIFO and \
     Linux socket semantics. Build it on Linux (or in the Docker image)."
);

use std::io;
use std::num::NonZeroU64;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use rustix::io::Errno;
use rustix::net::{RecvFlags, SendFlags};
use rustix::time::{
    Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, timerfd_create,
    timerfd_settime,
};

/// A non-blocking connect still under way (`peer_addr` may report it instead of `NotConnected`).
pub const EINPROGRESS: i32 = Errno::INPROGRESS.raw_os_error();
/// The process's file-descriptor limit is reached.
pub const EMFILE: i32 = Errno::MFILE.raw_os_error();
/// The system-wide file limit is reached.
pub const ENFILE: i32 = Errno::NFILE.raw_os_error();

/// `CLOCK_MONOTONIC` now, in nanoseconds: the clock `Instant` reads on Linux, as other
/// processes see it (their logs, `clock_gettime`), so a run's start can be told to them.
pub fn monotonic_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    u64::try_from(t.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(t.tv_nsec).unwrap_or(0)
}

/// `SCHED_FIFO` and `SCHED_OTHER`, as [`current_policy`] reports them.
pub const SCHED_FIFO: i32 = libc::SCHED_FIFO;
pub const SCHED_OTHER: i32 = libc::SCHED_OTHER;

/// Whether `e` says no file descriptor could be had (per process or system-wide).
pub fn is_out_of_files(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(EMFILE | ENFILE))
}

/// What one `send` or `recv` did.
pub enum Io {
    /// This many bytes (0 from `recv` is the peer's close).
    Done(usize),
    WouldBlock,
    Failed(io::Error),
}

/// Sends what it can of `buf` without blocking and without `SIGPIPE`. `EINTR` is retried here.
///
/// rustix makes the syscall itself: libc's `send` is a pthread cancellation point and pays for
/// that on every call (0.85% of a saturation profile).
#[inline]
pub fn send(sock: impl AsFd, buf: &[u8]) -> Io {
    loop {
        match rustix::net::send(&sock, buf, SendFlags::NOSIGNAL) {
            Ok(n) => return Io::Done(n),
            Err(Errno::WOULDBLOCK) => return Io::WouldBlock,
            Err(Errno::INTR) => {}
            Err(e) => return Io::Failed(e.into()),
        }
    }
}

/// Receives into `buf` without blocking. `EINTR` is retried here.
#[inline]
pub fn recv(sock: impl AsFd, buf: &mut [u8]) -> Io {
    loop {
        match rustix::net::recv(&sock, &mut *buf, RecvFlags::empty()) {
            Ok((n, _)) => return Io::Done(n),
            Err(Errno::WOULDBLOCK) => return Io::WouldBlock,
            Err(Errno::INTR) => {}
            Err(e) => return Io::Failed(e.into()),
        }
    }
}

/// Moves the calling thread to `SCHED_FIFO` at `priority`.
pub fn set_fifo(priority: i32) -> io::Result<()> {
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: `sched_setscheduler` reads one `sched_param` through the pointer, which points at a
    // live, initialised local for the whole call; pid 0 names the calling thread only.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The calling thread's policy, as the OS reports it ([`SCHED_FIFO`], [`SCHED_OTHER`], ...);
/// -1 if it cannot say.
pub fn current_policy() -> i32 {
    // SAFETY: no pointers; pid 0 names the calling thread.
    unsafe { libc::sched_getscheduler(0) }
}

/// What the calling thread has used so far: user plus system CPU time, and the times the OS took
/// the CPU away from it while it could run (involuntary context switches).
pub fn thread_usage() -> io::Result<(Duration, u64)> {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `getrusage` writes one `rusage` through the pointer, which points at a live local
    // of that type; RUSAGE_THREAD names the calling thread only.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, ru.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: zeroed is a valid `rusage` (plain integers), and the call succeeded and filled it.
    let ru = unsafe { ru.assume_init() };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    Ok((
        time(ru.ru_utime) + time(ru.ru_stime),
        ru.ru_nivcsw.max(0) as u64,
    ))
}

/// A lane's wake-up clock. epoll (and so mio) rounds poll timeouts up to whole milliseconds,
/// which would put up to a millisecond of error into every intended send time; a `timerfd` armed
/// for the next deadline, registered with the lane's `Poll`, wakes it with nanosecond resolution.
/// The thread's timer slack is lowered to 1 ns for the same reason (the default is 50 µs).
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

    #[test]
    fn a_threads_usage_grows_with_its_work() {
        // In a fresh thread, so the figures are this work's alone.
        let (before, after) = std::thread::spawn(|| {
            let before = thread_usage().unwrap();
            let t = Instant::now();
            let mut x = 0u64;
            while t.elapsed() < Duration::from_millis(30) {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
            (before, thread_usage().unwrap())
        })
        .join()
        .unwrap();
        assert!(after.0 > before.0, "{before:?} {after:?}");
        assert!(after.1 >= before.1);
        // A thread cannot use more CPU than the wall time it ran (plus the clock's granularity).
        assert!(after.0 - before.0 < Duration::from_secs(5));
    }

    #[test]
    fn errno_values_by_name() {
        assert_eq!(EINPROGRESS, libc::EINPROGRESS);
        assert_eq!(EMFILE, libc::EMFILE);
        assert_eq!(ENFILE, libc::ENFILE);
        assert!(is_out_of_files(&io::Error::from_raw_os_error(libc::EMFILE)));
        assert!(!is_out_of_files(&io::Error::from_raw_os_error(
            libc::ECONNRESET
        )));
    }

    #[test]
    fn send_and_recv_over_a_socket_pair() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        b.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 8];
        assert!(matches!(recv(&b, &mut buf), Io::WouldBlock));
        assert!(matches!(send(&a, b"ping"), Io::Done(4)));
        assert!(matches!(recv(&b, &mut buf), Io::Done(4)));
        assert_eq!(&buf[..4], b"ping");
        drop(a);
        assert!(matches!(recv(&b, &mut buf), Io::Done(0)));
    }
}
