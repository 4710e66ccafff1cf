//! How the OS schedules an engine thread, and what the report says about it. The call itself
//! (`sched_setscheduler`, the crate's one `unsafe`) is in [`super::sys`].
//!
//! A sleeping engine thread wakes for every due send. Under the default policy that wake-up waits
//! while another ordinary task (often the target itself, on a shared machine) finishes its slice.
//! On the 2-core VM at 20,000 qps against nginx, the thread was preempted 465–1,514 times per 5 s
//! run and `dispatch_delay` p99 was 80–310 µs in quiet minutes; under `SCHED_FIFO` it was
//! preempted twice, with p99 11–39 µs in the same minutes (`benches/compare.sh` prints both rows).
//! So `--realtime` asks for `SCHED_FIFO` at the lowest real-time priority: a due send preempts
//! every ordinary task on its core, and nothing real-time that the machine already runs.
//!
//! It is opt-in because it needs root or `CAP_SYS_NICE`, and because a real-time thread that never
//! sleeps would starve the ordinary tasks on its core (the kernel keeps 5% of each second for them).
//! So it is applied to fixed-rate runs only: a paced thread sleeps between sends, a saturating one
//! would not. When the OS refuses, the run goes on with normal scheduling and the report says so.

use super::sys;

/// `SCHED_FIFO` priority of a real-time engine thread: the lowest, above every ordinary task.
pub const REALTIME_PRIORITY: i32 = 1;

/// How the engine threads of a run were scheduled; the report's `scheduling` field.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Scheduling {
    /// The OS default (`SCHED_OTHER`).
    #[default]
    Normal,
    /// `SCHED_FIFO` at [`REALTIME_PRIORITY`].
    Realtime,
    /// Real-time was asked for and refused with this OS error; the threads ran as `Normal`.
    RealtimeDenied(String),
}

impl Scheduling {
    /// The report's text for it.
    pub fn describe(&self) -> String {
        match self {
            Scheduling::Normal => "normal".into(),
            Scheduling::Realtime => format!("realtime (SCHED_FIFO priority {REALTIME_PRIORITY})"),
            Scheduling::RealtimeDenied(e) => {
                format!("normal: realtime was refused ({e}; it needs root or CAP_SYS_NICE)")
            }
        }
    }

    /// Of two threads' outcomes, the one to report: a refusal on any thread wins, since the run
    /// then did not get what was asked for.
    pub fn worst(self, other: Scheduling) -> Scheduling {
        match (&self, &other) {
            (Scheduling::RealtimeDenied(_), _) => self,
            (_, Scheduling::RealtimeDenied(_)) => other,
            (Scheduling::Normal, _) => self,
            _ => other,
        }
    }
}

/// Moves the calling thread to `SCHED_FIFO` at [`REALTIME_PRIORITY`].
pub fn make_current_thread_realtime() -> Scheduling {
    match sys::set_fifo(REALTIME_PRIORITY) {
        Ok(()) => Scheduling::Realtime,
        Err(e) => Scheduling::RealtimeDenied(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realtime_is_applied_or_the_refusal_named() {
        // In a fresh thread so the test harness's own threads keep their policy.
        let (got, policy) =
            std::thread::spawn(|| (make_current_thread_realtime(), sys::current_policy()))
                .join()
                .unwrap();
        match got {
            Scheduling::Realtime => assert_eq!(policy, sys::SCHED_FIFO),
            Scheduling::RealtimeDenied(e) => {
                assert_eq!(policy, sys::SCHED_OTHER);
                assert!(!e.is_empty());
            }
            Scheduling::Normal => panic!("asking for realtime cannot leave it unsaid"),
        }
    }

    #[test]
    fn a_refusal_on_any_thread_is_reported() {
        let denied = Scheduling::RealtimeDenied("Operation not permitted (os error 1)".into());
        assert_eq!(Scheduling::Realtime.worst(denied.clone()), denied);
        assert_eq!(denied.clone().worst(Scheduling::Realtime), denied);
        assert_eq!(
            Scheduling::Realtime.worst(Scheduling::Realtime),
            Scheduling::Realtime
        );
        assert_eq!(
            Scheduling::Normal.worst(Scheduling::Realtime),
            Scheduling::Normal
        );
        assert!(denied.describe().contains("CAP_SYS_NICE"));
        assert_eq!(Scheduling::Normal.describe(), "normal");
    }
}
