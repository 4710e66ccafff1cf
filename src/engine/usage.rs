//! What the engine measures about itself for the run's `health`: each thread's CPU and
//! preemptions, its own lateness, the sends. The engine measures; `crate::health` judges, and
//! the report prints the verdict.

/// What one engine thread used, measured by the thread itself at its end.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ThreadUsage {
    /// User plus system CPU seconds, from the run's start to the thread's end.
    pub cpu: f64,
    /// Wall seconds the share is taken over: the whole run's.
    pub wall: f64,
    /// Times the OS took the CPU away from it (`ru_nivcsw`).
    pub involuntary_switches: u64,
}

impl ThreadUsage {
    /// Share of one core: CPU over wall time (0 for a thread that did not run).
    pub fn share(&self) -> f64 {
        if self.wall > 0.0 {
            self.cpu / self.wall
        } else {
            0.0
        }
    }

    /// Involuntary context switches per second of wall time.
    pub fn preemptions_per_second(&self) -> f64 {
        if self.wall > 0.0 {
            self.involuntary_switches as f64 / self.wall
        } else {
            0.0
        }
    }
}

/// What the verdict is drawn from (a shard's state carries it, so a merged run is judged too).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HealthInput {
    /// One entry per engine thread, in thread order.
    pub threads: Vec<ThreadUsage>,
    /// Requests handed to a connection.
    pub sent: u64,
    /// Requests not sent because every connection was busy.
    pub not_sent: u64,
    /// p99 of the generator's own lateness, seconds (None with no samples, or in closed loop).
    pub late_p99: Option<f64>,
    /// Mean interval between intended sends, seconds (None in closed loop).
    pub send_interval: Option<f64>,
    /// The connection cap, to name it in the not-sent note.
    pub num_workers: usize,
}

impl HealthInput {
    /// Folds another shard's input into this one: every thread, the counts added, the lateness
    /// the larger of the two p99s (a bound on the union's p99, which the shards do not keep),
    /// the connections added. The send interval is the whole plan's, the caller's to set.
    pub fn add_shard(&mut self, o: HealthInput) {
        self.threads.extend(o.threads);
        self.sent += o.sent;
        self.not_sent += o.not_sent;
        self.late_p99 = match (self.late_p99, o.late_p99) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.num_workers += o.num_workers;
    }
}
