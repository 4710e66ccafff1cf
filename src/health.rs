//! Is the result trustworthy? The verdict on the generator itself: whether pacer, not the target,
//! limited what a run measured. It reads what the engine gathered about its own threads (CPU,
//! preemptions, how late it was) and gives the report's `health`: one word, `ok` or
//! `generator-limited`, with the reasons in numbers. Pure: the engine measures (`getrusage` per
//! thread at its end, its own lateness per request), this module judges, the report prints.
//!
//! The rules (any one makes a run `generator-limited`):
//! - **CPU**: a thread used [`CPU_SHARE_LIMIT`] (90%) of a core or more over its run. A thread that
//!   busy cannot wake on time for its sends or read responses as they arrive; in closed loop it
//!   means pacer, not the server, set the throughput.
//! - **Contention**: a thread used [`CONTENDED_SHARE`] (50%) of a core or more and was preempted
//!   [`PREEMPT_RATE`] (1,000) times a second or more: it wanted more CPU than it got (another
//!   task, often a target on the same machine, had it), so it was short of CPU, not of work.
//! - **Lateness**: the p99 of the generator's own lateness (the intended time to the moment a
//!   thread took the request off its schedule, before any wait for a free connection) is above
//!   [`LATE_SHARE_LIMIT`] (25%) of the mean interval between sends, and above [`LATE_FLOOR`]
//!   (100 µs, the design's dispatch precision target, below which no sleeping thread is to
//!   blame). The target then saw another arrival pattern than the one asked for. Fixed-rate runs
//!   only: closed loop has no schedule to be late for.
//! - **Coalesced token gaps** (streaming runs): more than [`COALESCED_SHARE_LIMIT`] (1%) of the
//!   gaps between successive token events joined two events that came in one read. A read
//!   carries one arrival time, so such events are one chunk and the gap between them is not
//!   measured ([`coalesced_reason`]); that many means the lane read late (or the server wrote
//!   events together), and `inter_token_latency` stands on the remaining gaps.
//!
//! Never the target's slowness: requests not sent because every connection was busy with a slow
//! target are a note, not a verdict, unless a CPU rule also holds (then the generator was too
//! busy to free its connections, and the reason says how many went unsent). A slow target leaves
//! a thread idle, which none of the rules blames. Waits for a free
//! connection are not in the lateness either.

use std::fmt::Write as _;

use serde_json::{Value, json};

// What the engine measured is the engine's; this module only judges it.
pub use crate::engine::usage::{HealthInput, ThreadUsage};

/// A thread using this share of a core or more is too busy to be on time.
pub const CPU_SHARE_LIMIT: f64 = 0.90;
/// A thread using this share of a core while preempted [`PREEMPT_RATE`] times a second or more
/// was short of CPU.
pub const CONTENDED_SHARE: f64 = 0.50;
/// Involuntary context switches per second of the run (see [`CONTENDED_SHARE`]).
pub const PREEMPT_RATE: f64 = 1000.0;
/// The generator's lateness p99, as a share of the mean send interval, past which the arrival
/// pattern is no longer the one asked for.
pub const LATE_SHARE_LIMIT: f64 = 0.25;
/// Lateness under this (seconds) is never blamed on the generator: the design's dispatch
/// precision target.
pub const LATE_FLOOR: f64 = 100e-6;

/// Token gaps read together past this share of all token gaps (streaming runs) make a run
/// `generator-limited`: the inter-token figures no longer cover the stream.
pub const COALESCED_SHARE_LIMIT: f64 = 0.01;

/// The coalesced-token-gaps rule (see the module docs): the reason, when `coalesced` of `gaps`
/// token gaps read together is past [`COALESCED_SHARE_LIMIT`].
pub fn coalesced_reason(gaps: u64, coalesced: u64) -> Option<String> {
    if gaps == 0 || coalesced as f64 <= COALESCED_SHARE_LIMIT * gaps as f64 {
        return None;
    }
    Some(format!(
        "{coalesced} of {gaps} token gaps ({}) were read together with the token before them: \
         the thread read late (or the server wrote the events together), so those gaps are not \
         measured and inter_token_latency stands on the rest; run with --realtime, with fewer \
         threads busy on this machine, or on a quieter machine",
        percent_fine(coalesced as f64 / gaps as f64)
    ))
}

/// A share as a percentage, with a decimal under 10%.
fn percent_fine(x: f64) -> String {
    if x < 0.1 {
        format!("{:.1}%", x * 100.0)
    } else {
        percent(x)
    }
}

/// The one-word verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    GeneratorLimited,
}

impl Verdict {
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::GeneratorLimited => "generator-limited",
        }
    }
}

/// The report's `health`.
#[derive(Clone, Debug, PartialEq)]
pub struct Health {
    pub verdict: Verdict,
    /// Why it is `generator-limited`, in numbers (empty when ok).
    pub reasons: Vec<String>,
    /// What is worth knowing but is not the generator's doing.
    pub notes: Vec<String>,
    pub input: HealthInput,
}

/// A duration in the unit a person reads best (as the report prints timings).
fn time(secs: f64) -> String {
    crate::units::human(secs)
}

/// A thread that wanted more CPU than it got: busy, and preempted often (module docs).
fn contended(t: &ThreadUsage) -> bool {
    t.share() >= CONTENDED_SHARE && t.preemptions_per_second() >= PREEMPT_RATE
}

fn percent(x: f64) -> String {
    format!("{:.0}%", x * 100.0)
}

/// `28% of`, or for ten times and more `1031174 times` (a percentage in the millions reads as
/// noise).
fn share_of(x: f64) -> String {
    if x >= 10.0 {
        format!("{x:.0} times")
    } else {
        format!("{} of", percent(x))
    }
}

/// A send interval: as timings are shown, but in nanoseconds below a microsecond (a rate above
/// a million a second), where the timing unit would round it to 0.0µs.
fn interval_text(secs: f64) -> String {
    if secs < 1e-6 {
        format!("{:.1}ns", secs * 1e9)
    } else {
        time(secs)
    }
}

/// Judges a run by the rules in the module docs.
pub fn judge(input: HealthInput) -> Health {
    let mut reasons = Vec::new();
    let mut notes = Vec::new();
    let busiest = input
        .threads
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.share().total_cmp(&b.1.share()));
    let cpu_bound = busiest.is_some_and(|(_, t)| t.share() >= CPU_SHARE_LIMIT);
    if let Some((k, t)) = busiest.filter(|_| cpu_bound) {
        let mut r = if input.threads.len() == 1 {
            format!("its one thread at {} of a core", percent(t.share()))
        } else {
            let over = input
                .threads
                .iter()
                .filter(|t| t.share() >= CPU_SHARE_LIMIT)
                .count();
            let others = if over > 1 {
                format!(
                    " ({over} of {} threads past {})",
                    input.threads.len(),
                    percent(CPU_SHARE_LIMIT)
                )
            } else {
                String::new()
            };
            format!("thread {k} at {} of a core{others}", percent(t.share()))
        };
        if input.not_sent > 0 {
            let _ = write!(
                r,
                ", and {} requests not sent: a thread that busy is slow to free its connections",
                input.not_sent
            );
        }
        reasons.push(r);
    }
    let contended = input
        .threads
        .iter()
        .enumerate()
        .filter(|(_, t)| contended(t))
        .max_by(|a, b| {
            a.1.preemptions_per_second()
                .total_cmp(&b.1.preemptions_per_second())
        });
    let starved = !cpu_bound && contended.is_some();
    if let Some((k, t)) = contended.filter(|_| starved) {
        let who = if input.threads.len() == 1 {
            "its one thread".to_string()
        } else {
            format!("thread {k}")
        };
        let mut r = format!(
            "{who} at {} of a core and preempted {:.0} times a second: short of CPU (another \
             task, perhaps the target, had it)",
            percent(t.share()),
            t.preemptions_per_second()
        );
        if input.not_sent > 0 {
            let _ = write!(r, ", and {} requests not sent", input.not_sent);
        }
        reasons.push(r);
    }
    if let (Some(late), Some(interval)) = (input.late_p99, input.send_interval)
        && interval > 0.0
        && late > LATE_FLOOR
        && late > LATE_SHARE_LIMIT * interval
    {
        let switches: u64 = input.threads.iter().map(|t| t.involuntary_switches).sum();
        let mut r = format!(
            "dispatch delay p99 {} (the generator's own lateness, before any wait for a \
             connection) is {} the {} send interval",
            time(late),
            share_of(late / interval),
            interval_text(interval)
        );
        // Said once: the contention reason already names the preemptions.
        if switches > 0 && !starved {
            let _ = write!(
                r,
                "; its threads were preempted {switches} times (another task had their CPU)"
            );
        }
        reasons.push(r);
    }
    if input.not_sent > 0 && !cpu_bound && !starved {
        notes.push(format!(
            "{} requests not sent: all {} connections were busy (the target's response time × \
             the rate needs more connections than --num_workers allows, or the target was slow)",
            input.not_sent, input.num_workers
        ));
    }
    let verdict = if reasons.is_empty() {
        Verdict::Ok
    } else {
        Verdict::GeneratorLimited
    };
    Health {
        verdict,
        reasons,
        notes,
        input,
    }
}

impl Health {
    /// The verdict with the coalesced-token-gaps rule applied to a streaming run's `gaps` token
    /// gaps, `coalesced` of them read together.
    pub fn with_token_gaps(mut self, gaps: u64, coalesced: u64) -> Health {
        if let Some(r) = coalesced_reason(gaps, coalesced) {
            self.reasons.push(r);
            self.verdict = Verdict::GeneratorLimited;
        }
        self
    }

    /// Adds a note when the server's prefix cache gave most of the prompt tokens
    /// (`cached` of `prompt`, from `usage.prompt_tokens_details.cached_tokens`): the run then
    /// measured cache hits, not prompt processing (one repeated prompt does that).
    pub fn with_prompt_cache(mut self, cached: u64, prompt: u64) -> Health {
        if prompt > 0 && cached.saturating_mul(2) > prompt {
            self.notes.push(format!(
                "the server's prefix cache gave {cached} of {prompt} prompt tokens ({:.0}%): \
                 time to first token measured cache hits, not prompt processing; vary the \
                 prompts (--dataset, --input-tokens) to measure the prompt's cost",
                100.0 * cached as f64 / prompt as f64
            ));
        }
        self
    }

    /// The report's `health` object. Times in seconds, CPU shares as fractions of a core.
    pub fn to_json(&self) -> Value {
        let i = &self.input;
        let cpu: f64 = i.threads.iter().map(|t| t.cpu).sum();
        let per_request = (i.sent > 0).then(|| cpu / i.sent as f64);
        let shares: Vec<f64> = i.threads.iter().map(ThreadUsage::share).collect();
        let switches: u64 = i.threads.iter().map(|t| t.involuntary_switches).sum();
        json!({
            "verdict": self.verdict.word(),
            "reasons": self.reasons,
            "notes": self.notes,
            "cpu_seconds": cpu,
            "cpu_per_request": per_request,
            "thread_cpu_share": shares,
            "involuntary_context_switches": switches,
            "generator_lateness_p99": i.late_p99,
            "send_interval": i.send_interval,
            "not_sent": i.not_sent,
        })
    }

    /// The text report's lines: a warning when not ok, and the notes.
    pub fn text_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if self.verdict != Verdict::Ok {
            lines.push(format!(
                "WARNING: {}: {}",
                self.verdict.word(),
                self.reasons.join("; ")
            ));
        }
        lines.extend(self.notes.iter().map(|n| format!("note: {n}")));
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thread(cpu: f64, wall: f64) -> ThreadUsage {
        ThreadUsage {
            cpu,
            wall,
            involuntary_switches: 0,
        }
    }

    fn paced(late_p99: f64, interval: f64) -> HealthInput {
        HealthInput {
            threads: vec![thread(0.2, 10.0), thread(0.3, 10.0)],
            sent: 2000,
            not_sent: 0,
            late_p99: Some(late_p99),
            send_interval: Some(interval),
            num_workers: 20,
        }
    }

    #[test]
    fn token_gaps_read_together_past_one_percent_limit_the_run() {
        assert_eq!(coalesced_reason(0, 0), None);
        assert_eq!(coalesced_reason(1000, 10), None, "1% is still ok");
        let r = coalesced_reason(1000, 11).expect("past 1%");
        assert!(
            r.starts_with("11 of 1000 token gaps (1.1%) were read together"),
            "{r}"
        );
        assert!(r.contains("--realtime"), "{r}");
        let h = judge(paced(40e-6, 5e-3)).with_token_gaps(90, 90);
        assert_eq!(h.verdict, Verdict::GeneratorLimited);
        assert!(
            h.reasons[0].starts_with("90 of 90 token gaps (100%)"),
            "{h:?}"
        );
        let h = judge(paced(40e-6, 5e-3)).with_token_gaps(1000, 3);
        assert_eq!(h.verdict, Verdict::Ok);
        let h = judge(paced(40e-6, 5e-3)).with_prompt_cache(80, 100);
        assert_eq!(h.verdict, Verdict::Ok, "a note, not a verdict");
        assert!(
            h.notes[0].contains("gave 80 of 100 prompt tokens (80%)"),
            "{h:?}"
        );
        let h = judge(paced(40e-6, 5e-3)).with_prompt_cache(50, 100);
        assert!(h.notes.is_empty());
    }

    #[test]
    fn a_light_punctual_run_is_ok() {
        let h = judge(paced(40e-6, 5e-3));
        assert_eq!(h.verdict, Verdict::Ok);
        assert!(h.reasons.is_empty() && h.notes.is_empty());
        assert!(h.text_lines().is_empty());
        let j = h.to_json();
        assert_eq!(j["verdict"], "ok");
        assert_eq!(j["cpu_seconds"], 0.5);
        assert_eq!(j["cpu_per_request"], 0.5 / 2000.0);
        assert_eq!(j["thread_cpu_share"], json!([0.02, 0.03]));
        assert_eq!(j["not_sent"], 0);
    }

    #[test]
    fn lateness_past_a_quarter_of_the_interval_is_the_generators() {
        // The example: 1.4 ms late at p99 against a 5 ms interval.
        let h = judge(paced(1.4e-3, 5e-3));
        assert_eq!(h.verdict, Verdict::GeneratorLimited);
        assert_eq!(
            h.reasons,
            [
                "dispatch delay p99 1.40ms (the generator's own lateness, before any wait for a \
              connection) is 28% of the 5.00ms send interval"
            ]
        );
        assert_eq!(h.to_json()["verdict"], "generator-limited");
        assert!(h.text_lines()[0].starts_with("WARNING: generator-limited: dispatch delay p99"));
        // Just under a quarter: ok.
        assert_eq!(judge(paced(1.2e-3, 5e-3)).verdict, Verdict::Ok);
        // Past a quarter of a tiny interval but under the 100 µs floor: ok.
        assert_eq!(judge(paced(90e-6, 50e-6)).verdict, Verdict::Ok);
        assert_eq!(
            judge(paced(150e-6, 50e-6)).verdict,
            Verdict::GeneratorLimited
        );
        // At -q 1e9 the interval is a nanosecond: said in ns, and the share as a multiple.
        // (It said "1031174000% of the 0.0µs send interval".)
        let h = judge(paced(10.31174e-3, 1e-9));
        assert_eq!(
            h.reasons,
            [
                "dispatch delay p99 10.31ms (the generator's own lateness, before any wait for a \
              connection) is 10311740 times the 1.0ns send interval"
            ]
        );
        // Preemptions are named when they explain it.
        let mut i = paced(2e-3, 5e-3);
        i.threads[0].involuntary_switches = 700;
        i.threads[1].involuntary_switches = 14;
        let h = judge(i);
        assert!(h.reasons[0].ends_with("preempted 714 times (another task had their CPU)"));
        // Closed loop has no schedule: lateness is not judged.
        let mut i = paced(1.0, 5e-3);
        i.send_interval = None;
        assert_eq!(judge(i).verdict, Verdict::Ok);
    }

    #[test]
    fn a_thread_at_a_full_core_is_the_generators() {
        let mut i = paced(10e-6, 5e-3);
        i.threads = vec![thread(1.0, 10.0), thread(9.7, 10.0)];
        let h = judge(i.clone());
        assert_eq!(h.verdict, Verdict::GeneratorLimited);
        assert_eq!(h.reasons, ["thread 1 at 97% of a core"]);
        i.threads = vec![thread(9.5, 10.0), thread(9.7, 10.0)];
        assert_eq!(
            judge(i.clone()).reasons,
            ["thread 1 at 97% of a core (2 of 2 threads past 90%)"]
        );
        i.threads = vec![thread(9.0, 10.0)];
        assert_eq!(
            judge(i.clone()).reasons,
            ["its one thread at 90% of a core"]
        );
        i.threads = vec![thread(8.9, 10.0)];
        assert_eq!(judge(i).verdict, Verdict::Ok);
    }

    #[test]
    fn a_thread_preempted_while_busy_was_short_of_cpu() {
        let mut i = paced(10e-6, 5e-3);
        i.send_interval = None;
        // The closed-loop case on a shared machine: 64% of a core, 30,000 preemptions/s.
        i.threads = vec![ThreadUsage {
            cpu: 1.28,
            wall: 2.0,
            involuntary_switches: 61_000,
        }];
        let h = judge(i.clone());
        assert_eq!(h.verdict, Verdict::GeneratorLimited);
        assert_eq!(
            h.reasons,
            [
                "its one thread at 64% of a core and preempted 30500 times a second: short of CPU \
              (another task, perhaps the target, had it)"
            ]
        );
        // Idle (a slow target) however often preempted, or busy but hardly preempted: ok.
        i.threads[0].cpu = 0.4;
        assert_eq!(judge(i.clone()).verdict, Verdict::Ok);
        i.threads[0].cpu = 1.28;
        i.threads[0].involuntary_switches = 1_900;
        assert_eq!(judge(i.clone()).verdict, Verdict::Ok);
        // With unsent requests, they are named in the reason rather than in a note.
        i.threads[0].involuntary_switches = 61_000;
        i.not_sent = 7;
        let h = judge(i);
        assert!(
            h.reasons[0].ends_with(", and 7 requests not sent"),
            "{:?}",
            h.reasons
        );
        assert!(h.notes.is_empty());
    }

    /// A slow target leaves requests unsent; that is the target's doing unless the CPU says the
    /// generator was the one too busy.
    #[test]
    fn unsent_requests_are_the_targets_unless_the_cpu_says_otherwise() {
        let mut i = paced(10e-6, 5e-3);
        i.not_sent = 120;
        let h = judge(i.clone());
        assert_eq!(h.verdict, Verdict::Ok);
        assert_eq!(h.notes.len(), 1);
        assert!(h.notes[0].starts_with("120 requests not sent: all 20 connections were busy"));
        assert_eq!(h.text_lines(), [format!("note: {}", h.notes[0])]);
        i.threads = vec![thread(9.8, 10.0)];
        let h = judge(i);
        assert_eq!(h.verdict, Verdict::GeneratorLimited);
        assert_eq!(
            h.reasons,
            [
                "its one thread at 98% of a core, and 120 requests not sent: a thread that busy is \
              slow to free its connections"
            ]
        );
        assert!(h.notes.is_empty());
    }

    #[test]
    fn empty_and_degenerate_inputs_do_not_divide_by_zero() {
        let h = judge(HealthInput::default());
        assert_eq!(h.verdict, Verdict::Ok);
        let j = h.to_json();
        assert_eq!(j["cpu_per_request"], Value::Null);
        assert_eq!(j["generator_lateness_p99"], Value::Null);
        assert_eq!(thread(1.0, 0.0).share(), 0.0);
        let mut i = paced(1.0, 0.0);
        i.threads.clear();
        assert_eq!(judge(i).verdict, Verdict::Ok);
    }
}
