//! Ctrl-C during a run. The first SIGINT (or SIGTERM) sets a flag the run's tick turns into the
//! engine's [`Stop`](crate::engine::Stop): nothing more is scheduled, requests in flight get up
//! to their timeout, and the partial report is written as usual, marked interrupted; the
//! process then exits 130.
//!
//! A second signal within [`SAME_SIGNAL`] of the first is the same request, not a second one:
//! `timeout -s INT` signals the child and then its whole process group, so pacer sees two
//! SIGINTs a few microseconds apart, and a person may press Ctrl-C twice by reflex. A signal
//! after that window ends the process without waiting for the requests in flight: it first
//! waits [`FLUSH_GRACE`], long enough for every finished request already recorded to reach the
//! `--requests` file (lanes hand their records over at least every 200 ms), then removes the
//! report files not yet written ([`pending`]: they are written to a temporary file beside
//! their path and renamed, so no half-written or empty report is ever left), and exits 130.
//!
//! signal-hook does this without `unsafe` here: `flag::register` sets an `AtomicBool` from the
//! handler, and a self-pipe (`low_level::pipe::register`) wakes a thread of ours once per
//! signal, which counts them and keeps the time.

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGINT, SIGTERM};

use super::exit;

/// Signals this close to the first are the first one repeated.
pub const SAME_SIGNAL: Duration = Duration::from_secs(1);
/// How long a forced exit waits for finished requests to reach the `--requests` file.
pub const FLUSH_GRACE: Duration = Duration::from_millis(500);

static INTERRUPTED: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Report files being written (temporary paths), removed by a forced exit.
static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// The flag the first SIGINT or SIGTERM sets, with the handlers installed on first use. If
/// they cannot be installed, the signals keep their default action (the process ends).
pub fn interrupted() -> &'static AtomicBool {
    INTERRUPTED.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        for sig in [SIGINT, SIGTERM] {
            let _ = signal_hook::flag::register(sig, Arc::clone(&flag));
        }
        if let Ok((mut rx, tx)) = UnixStream::pair() {
            let registered = [SIGINT, SIGTERM].iter().all(|&sig| {
                tx.try_clone()
                    .is_ok_and(|tx| signal_hook::low_level::pipe::register(sig, tx).is_ok())
            });
            if registered {
                let _ = std::thread::Builder::new()
                    .name("pacer-signals".into())
                    .spawn(move || watch(&mut rx));
            }
        }
        flag
    })
}

/// Whether a signal at `now` forces the exit, given when the first one came.
pub fn forces(first: Option<Instant>, now: Instant) -> bool {
    first.is_some_and(|f| now.saturating_duration_since(f) >= SAME_SIGNAL)
}

/// One byte per signal: the first is the flag's (already set by its handler), repeats within
/// the window are ignored, a later one forces the exit.
fn watch(rx: &mut UnixStream) {
    let mut first: Option<Instant> = None;
    let mut buf = [0u8; 64];
    loop {
        let n = match rx.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        for _ in 0..n {
            let now = Instant::now();
            if forces(first, now) {
                force_exit();
            }
            first.get_or_insert(now);
        }
    }
}

fn force_exit() -> ! {
    eprintln!(
        "\npacer: interrupted again: exiting without waiting for the requests in flight \
         (the report is not written; --requests keeps every request that ended)"
    );
    std::thread::sleep(FLUSH_GRACE);
    let pending = match PENDING.lock() {
        Ok(mut p) => std::mem::take(&mut *p),
        Err(p) => std::mem::take(&mut *p.into_inner()),
    };
    for p in pending {
        let _ = std::fs::remove_file(p);
    }
    std::process::exit(exit::INTERRUPTED)
}

/// Registers a temporary report file for removal by a forced exit.
pub fn pending(path: &Path) {
    if let Ok(mut p) = PENDING.lock() {
        p.push(path.to_path_buf());
    }
}

/// The temporary file was renamed or removed: nothing to clean up for it.
pub fn done(path: &Path) {
    if let Ok(mut p) = PENDING.lock() {
        p.retain(|q| q != path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeat_within_the_window_is_the_first_signal() {
        let t0 = Instant::now();
        assert!(!forces(None, t0));
        assert!(!forces(Some(t0), t0 + Duration::from_micros(50)));
        assert!(!forces(Some(t0), t0 + Duration::from_millis(999)));
        assert!(forces(Some(t0), t0 + SAME_SIGNAL));
        assert!(forces(Some(t0), t0 + Duration::from_secs(5)));
    }
}
