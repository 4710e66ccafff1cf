//! Multi-turn sessions (issue 20 item 3): what a session run asks for ([`SessionInput`]), the
//! think time between a turn's answer and the next turn ([`ThinkTime`]), and the plan's part
//! ([`SessionPlan`]): the conversations, and how a turn's request is made from its history.
//!
//! A session run's schedule is one of session starts: request `i` of the schedule starts session
//! `i`, which plays conversation `i mod n` of the data set. Turn `k` of session `s` is request
//! index `s × stride + (k − 1)` ([`SessionPlan::index`]), so every turn has an index of its own
//! and the `--requests` file, the engine and the report find the session and the turn from it.
//!
//! A later turn's body holds the history, so it is built on the lane when the turn falls due
//! ([`SessionPlan::request`]): one JSON serialization and one request per turn. Turn 1's body
//! is built the same way (the engine never looks up a prebuilt request in a session run).

use std::fmt;

use serde_json::{Map, Value, json};

use crate::http1::build_request;
use crate::llm::Conversation;
use crate::rng::SplitMix64;

/// The most turns a session may have (`--max-turns`): the index stride.
pub const MAX_TURNS: u32 = 1024;

/// What the assistant's part of the history is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum History {
    /// The server's own answer to the turn before (its streamed content, or the body's message).
    #[default]
    Server,
    /// The data set's answer (a turn without one falls back to the server's).
    Dataset,
}

impl History {
    pub fn name(self) -> &'static str {
        match self {
            History::Server => "server",
            History::Dataset => "dataset",
        }
    }

    pub fn from_name(s: &str) -> Option<History> {
        match s {
            "server" => Some(History::Server),
            "dataset" => Some(History::Dataset),
            _ => None,
        }
    }
}

/// The time between a turn's answer and the next turn's send: fixed, or drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ThinkTime {
    /// Always this many seconds.
    Fixed(f64),
    /// Exponential with this mean (seconds).
    Exp(f64),
    /// Uniform between the two (seconds).
    Uniform(f64, f64),
}

impl Default for ThinkTime {
    fn default() -> Self {
        ThinkTime::Fixed(0.0)
    }
}

impl fmt::Display for ThinkTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ThinkTime::Fixed(s) => write!(f, "{s}s"),
            ThinkTime::Exp(m) => write!(f, "exp:{m}s"),
            ThinkTime::Uniform(a, b) => write!(f, "uniform:{a}s:{b}s"),
        }
    }
}

impl ThinkTime {
    /// `DURATION`, `exp:MEAN` or `uniform:MIN:MAX`, each duration read by `secs` (the command
    /// line's one duration parser); negative ones are refused.
    pub fn parse(
        text: &str,
        secs: impl Fn(&str) -> Result<f64, String>,
    ) -> Result<ThinkTime, String> {
        let nonneg = |s: &str| {
            let v = secs(s)?;
            if v < 0.0 {
                return Err(format!("think time {s:?} is negative"));
            }
            Ok(v)
        };
        let t = text.trim();
        if let Some(mean) = t.strip_prefix("exp:") {
            return Ok(ThinkTime::Exp(nonneg(mean)?));
        }
        if let Some(range) = t.strip_prefix("uniform:") {
            let Some((a, b)) = range.split_once(':') else {
                return Err(format!(
                    "{text:?}: uniform needs MIN:MAX (e.g. uniform:200ms:800ms)"
                ));
            };
            let (a, b) = (nonneg(a)?, nonneg(b)?);
            if b < a {
                return Err(format!("{text:?}: MAX is below MIN"));
            }
            return Ok(ThinkTime::Uniform(a, b));
        }
        nonneg(t).map(ThinkTime::Fixed)
    }

    /// One think time, in seconds.
    pub fn draw(&self, rng: &mut SplitMix64) -> f64 {
        match *self {
            ThinkTime::Fixed(s) => s,
            // 1 - u is in (0, 1]: its logarithm is finite.
            ThinkTime::Exp(m) => -m * (1.0 - rng.next_f64()).ln(),
            ThinkTime::Uniform(a, b) => a + (b - a) * rng.next_f64(),
        }
    }
}

/// What a session run asks for (`--sessions` and its flags; the API's `sessions` object).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SessionInput {
    /// At most this many turns per session (`--max-turns`); None: every turn, up to [`MAX_TURNS`].
    pub max_turns: Option<u32>,
    pub think_time: ThinkTime,
    /// A header whose value is the session's id (`--session-header`).
    pub header: Option<String>,
    pub history: History,
}

/// One chat message of a session's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Turn {
    pub user: Box<str>,
    /// The answer it got (None while it is in flight).
    pub answer: Option<Box<str>>,
}

/// A session run's part of the plan.
#[derive(Clone, Debug)]
pub struct SessionPlan {
    pub conversations: Vec<Conversation>,
    /// The index stride: `max_turns` (every session has at most this many turns).
    pub max_turns: u32,
    pub think_time: ThinkTime,
    pub header: Option<String>,
    pub history: History,
    /// What every turn's request shares: method, `Host`, path, headers, and the payload without
    /// its messages.
    pub(super) method: String,
    pub(super) host: String,
    pub(super) path: String,
    pub(super) headers: Vec<(String, String)>,
    pub(super) payload: Map<String, Value>,
    /// Distinguishes this run's session ids from another run's at the same router.
    pub(super) run_tag: u64,
}

impl SessionPlan {
    /// The request index of turn `turn` (1-based) of session `session`.
    #[inline]
    pub fn index(&self, session: u64, turn: u32) -> u64 {
        session * u64::from(self.max_turns) + u64::from(turn - 1)
    }

    /// The session and turn (1-based) of request index `index`.
    #[inline]
    pub fn of_index(&self, index: u64) -> (u64, u32) {
        let stride = u64::from(self.max_turns);
        (index / stride, (index % stride) as u32 + 1)
    }

    /// The conversation session `session` plays.
    pub fn conversation(&self, session: u64) -> &Conversation {
        &self.conversations[(session % self.conversations.len() as u64) as usize]
    }

    /// The requests (turns) of sessions `0..sessions`: what a schedule of that many session
    /// starts accounts for.
    pub fn requests_for(&self, sessions: u64) -> u64 {
        let n = self.conversations.len() as u64;
        let all: u64 = self
            .conversations
            .iter()
            .map(|c| c.turns.len() as u64)
            .sum();
        let rest: u64 = (0..sessions % n).map(|s| u64::from(self.turns(s))).sum();
        sessions / n * all + rest
    }

    /// The turns session `session` has (its conversation's, at most `max_turns`).
    pub fn turns(&self, session: u64) -> u32 {
        self.conversation(session).turns.len() as u32
    }

    /// The id a session's header carries: the same for every turn, another for another session.
    pub fn session_id(&self, session: u64) -> String {
        format!("{:08x}-{session}", self.run_tag as u32)
    }

    /// The request bytes of the next turn of session `session`: `history` holds the turns
    /// before it, answered, and the new one last (its answer not yet known).
    pub fn request(&self, session: u64, history: &[Turn]) -> Vec<u8> {
        let mut messages = Vec::with_capacity(history.len() * 2);
        for t in history {
            messages.push(json!({"role": "user", "content": &*t.user}));
            if let Some(a) = &t.answer {
                messages.push(json!({"role": "assistant", "content": &**a}));
            }
        }
        let mut payload = self.payload.clone();
        payload.insert("messages".into(), Value::Array(messages));
        // A map of strings, numbers and booleans always serializes.
        let body = serde_json::to_vec(&payload).unwrap_or_default();
        match &self.header {
            None => build_request(&self.method, &self.host, &self.path, &self.headers, &body),
            Some(name) => {
                let mut headers = self.headers.clone();
                headers.push((name.clone(), self.session_id(session)));
                build_request(&self.method, &self.host, &self.path, &headers, &body)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &str) -> Result<f64, String> {
        match s.strip_suffix("ms") {
            Some(ms) => ms
                .parse::<f64>()
                .map(|v| v / 1e3)
                .map_err(|e| e.to_string()),
            None => s.parse::<f64>().map_err(|e| e.to_string()),
        }
    }

    #[test]
    fn think_times_parse_and_draw_in_range() {
        assert_eq!(ThinkTime::parse("500ms", secs), Ok(ThinkTime::Fixed(0.5)));
        assert_eq!(ThinkTime::parse("exp:500ms", secs), Ok(ThinkTime::Exp(0.5)));
        assert_eq!(
            ThinkTime::parse("uniform:200ms:800ms", secs),
            Ok(ThinkTime::Uniform(0.2, 0.8))
        );
        assert!(ThinkTime::parse("uniform:800ms:200ms", secs).is_err());
        assert!(ThinkTime::parse("uniform:800ms", secs).is_err());
        assert!(ThinkTime::parse("-1", secs).is_err());
        let mut rng = SplitMix64::new(7);
        let u = ThinkTime::Uniform(0.2, 0.8);
        let e = ThinkTime::Exp(0.5);
        let (mut sum, n) = (0.0, 20_000);
        for _ in 0..n {
            let x = u.draw(&mut rng);
            assert!((0.2..=0.8).contains(&x), "{x}");
            let y = e.draw(&mut rng);
            assert!(y >= 0.0 && y.is_finite(), "{y}");
            sum += y;
        }
        let mean = sum / f64::from(n);
        assert!((0.45..0.55).contains(&mean), "exp mean {mean}");
    }
}
