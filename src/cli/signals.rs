//! Ctrl-C during a run. The first SIGINT (or SIGTERM) sets a flag the run's tick turns into the
//! engine's [`Stop`](crate::engine::Stop): nothing more is scheduled, requests in flight get up
//! to their timeout, and the partial report is written as usual, marked interrupted; the
//! process then exits 130. A second signal ends the process at once, with 130.
//!
//! signal-hook does both without `unsafe` here: `flag::register` sets an `AtomicBool` from the
//! handler, and `register_conditional_shutdown`, registered first, exits (`_exit`, the
//! async-signal-safe one) when a signal finds that flag already set.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};

use signal_hook::consts::{SIGINT, SIGTERM};

use super::exit;

static INTERRUPTED: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// The flag the first SIGINT or SIGTERM sets, with the handlers installed on first use. If
/// they cannot be installed, the signals keep their default action (the process ends).
pub fn interrupted() -> &'static AtomicBool {
    INTERRUPTED.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        for sig in [SIGINT, SIGTERM] {
            // The order matters: handlers run in registration order, so on the first signal
            // the shutdown finds the flag still clear, and the second one finds it set.
            let _ = signal_hook::flag::register_conditional_shutdown(
                sig,
                exit::INTERRUPTED,
                Arc::clone(&flag),
            );
            let _ = signal_hook::flag::register(sig, Arc::clone(&flag));
        }
        flag
    })
}
