//! The live progress line on stderr while a run lasts: elapsed against the duration, requests
//! sent against scheduled, in flight, the rate sent over the last second, errors so far, and
//! rolling p50/p99 of response time (time to first token when streaming) over the last whole
//! second. Refreshed about twice a second from the engine's tick; reads only the engine's
//! lock-free counters ([`Progress`]). Whether it is shown (a terminal, `--quiet`) is `bench`'s.

use std::collections::VecDeque;
use std::io::Write;
use std::time::Duration;

use crate::engine::{Progress, Recent};
use crate::report::{human, secs_text};

/// How often the line is redrawn.
const EVERY: Duration = Duration::from_millis(500);
/// The line appears once a run has lasted this long.
const AFTER: Duration = Duration::from_secs(1);
/// The span the rate is taken over.
const RATE_SPAN: Duration = Duration::from_secs(1);

/// What one line shows.
#[derive(Clone, Debug, PartialEq)]
pub struct View {
    pub elapsed: Duration,
    pub duration: Duration,
    pub sent: u64,
    /// Requests scheduled; 0 in a closed loop, which has no schedule.
    pub scheduled: u64,
    pub in_flight: u64,
    /// Requests sent per second over the last second.
    pub rate: f64,
    pub errors: u64,
    pub recent: Recent,
    /// The percentiles are of time to first token.
    pub first_token: bool,
}

/// The line for `v`, without the carriage return and clearing that frame it on a terminal.
pub fn render(v: &View) -> String {
    let secs = |d: Duration| format!("{:.1}s", d.as_secs_f64());
    let sent = if v.scheduled > 0 {
        format!("sent {}/{}", v.sent, v.scheduled)
    } else {
        format!("sent {}", v.sent)
    };
    let what = if v.first_token { "ttft" } else { "response" };
    let pct = |x: Option<f64>| x.map_or_else(|| "-".to_string(), human);
    format!(
        "  {} / {}  {sent}  in flight {}  {:.1} req/s  errors {}  {what} p50 {} p99 {}",
        secs(v.elapsed),
        secs_text(v.duration.as_secs_f64()),
        v.in_flight,
        v.rate,
        v.errors,
        pct(v.recent.p50),
        pct(v.recent.p99),
    )
}

/// The line's state between ticks: the sent counts of the last second, for the rate, and when
/// it is next due (every half second on a fixed grid, so ticks of 200 ms draw it every 400 or
/// 600 ms, twice a second on average).
pub struct Line {
    duration: Duration,
    readings: VecDeque<(Duration, u64)>,
    due: Duration,
}

impl Line {
    pub fn new(duration: Duration) -> Line {
        Line {
            duration,
            readings: VecDeque::from([(Duration::ZERO, 0)]),
            due: AFTER,
        }
    }

    /// Takes a reading at `elapsed`; the view to draw when it is time for one.
    pub fn tick(&mut self, p: &Progress, elapsed: Duration) -> Option<View> {
        let counts = p.counts();
        self.readings.push_back((elapsed, counts.sent));
        while self.readings.len() > 2 && elapsed.saturating_sub(self.readings[1].0) >= RATE_SPAN {
            self.readings.pop_front();
        }
        if elapsed < self.due {
            return None;
        }
        while self.due <= elapsed {
            self.due += EVERY;
        }
        let (t, sent) = self.readings[0];
        let span = elapsed.saturating_sub(t).as_secs_f64();
        Some(View {
            elapsed,
            duration: self.duration,
            sent: counts.sent,
            scheduled: p.total,
            in_flight: counts.in_flight(),
            rate: if span > 0.0 {
                counts.sent.saturating_sub(sent) as f64 / span
            } else {
                0.0
            },
            errors: counts.errors,
            recent: p.recent(elapsed),
            first_token: p.first_token,
        })
    }
}

/// Draws `v` over the previous line.
pub fn draw(v: &View) {
    let line = format!("\r{}\x1b[K", render(v));
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// Clears the line, so the report starts on a clean one.
pub fn clear() {
    let _ = std::io::stderr().write_all(b"\r\x1b[K");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> View {
        View {
            elapsed: Duration::from_millis(12_500),
            duration: Duration::from_secs(30),
            sent: 2500,
            scheduled: 6000,
            in_flight: 3,
            rate: 199.84,
            errors: 498,
            recent: Recent {
                count: 200,
                p50: Some(0.00121),
                p99: Some(0.0034),
            },
            first_token: false,
        }
    }

    #[test]
    fn the_line_says_everything_in_one_row() {
        assert_eq!(
            render(&view()),
            "  12.5s / 30s  sent 2500/6000  in flight 3  199.8 req/s  errors 498  response p50 \
             1.21ms p99 3.40ms"
        );
        let mut v = view();
        v.scheduled = 0;
        v.first_token = true;
        v.recent = Recent::default();
        assert_eq!(
            render(&v),
            "  12.5s / 30s  sent 2500  in flight 3  199.8 req/s  errors 498  ttft p50 - p99 -"
        );
    }
}
