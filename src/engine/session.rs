//! A lane's live sessions (`--sessions`, [`crate::plan::session`]): each session's history, the
//! bytes of its turn in flight, the connection it owns between turns, and the turns waiting out
//! their think time; and what the report says of them ([`SessionStats`]).
//!
//! The schedule's arrivals start sessions ([`LaneSessions::start`]); each turn after the first
//! falls due at its answer's end plus a drawn think time ([`LaneSessions::answered`]), intended
//! then: its lateness and corrected times are measured from that moment, so think time is in no
//! latency. A turn due at or after the run's end is not sent ([`LaneSessions::due`] hands it
//! back with `past_end`), and the lane records it and the session's later turns as unsent. A
//! session ends finished when its last turn succeeds, unfinished when a turn fails or the run
//! ends first; the turns after a failed one are recorded as `not sent: session ended`, so every
//! turn of every started session is a request of the report.
//!
//! Nothing here is touched by a run without sessions: the lane holds `None`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::ops::AddAssign;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::http1::Segments;
use crate::plan::{History, SessionPlan, session::Turn};
use crate::rng::SplitMix64;
use crate::stats::{Recorder, Sample};

/// One turn index's figures (`by_turn`): requests that ended, time to first token of the
/// successes, dispatch delay of those sent, and the prompt tokens of those that had a count.
#[derive(Clone, Debug, Default)]
pub struct TurnStats {
    pub requests: u64,
    pub ttft: Recorder,
    /// Intended time to dispatch of the turns sent: a later turn's lateness after its think
    /// time (with none, the lane's reaction to the answer before it).
    pub dispatch_delay: Recorder,
    pub prompt_tokens: u64,
    pub prompt_counted: u64,
}

/// What a run's sessions did, merged over lanes with `+=`.
#[derive(Clone, Debug, Default)]
pub struct SessionStats {
    /// Sessions whose first turn fell due.
    pub started: u64,
    /// Sessions whose every turn succeeded.
    pub finished: u64,
    /// Turns answered (successes) per ended session.
    pub turns: Recorder,
    /// First turn's dispatch to the last turn's answer, think times included: finished sessions.
    pub duration: Recorder,
    /// Turn `k` at `[k - 1]`.
    pub by_turn: Vec<TurnStats>,
}

impl SessionStats {
    /// Started and not finished: a turn failed, or the run ended first.
    pub fn unfinished(&self) -> u64 {
        self.started.saturating_sub(self.finished)
    }

    fn turn(&mut self, turn: u32) -> &mut TurnStats {
        let k = turn as usize;
        if self.by_turn.len() < k {
            self.by_turn.resize_with(k, TurnStats::default);
        }
        &mut self.by_turn[k - 1]
    }

    /// A turn's request ended: its time to first token and dispatch delay when it had them,
    /// its prompt's tokens.
    pub fn turn_ended(
        &mut self,
        turn: u32,
        ttft: Option<Sample>,
        dispatch_delay: Option<Sample>,
        prompt_tokens: Option<u64>,
    ) {
        let t = self.turn(turn);
        t.requests += 1;
        if let Some(s) = ttft {
            t.ttft.record_sample(s);
        }
        if let Some(s) = dispatch_delay {
            t.dispatch_delay.record_sample(s);
        }
        if let Some(n) = prompt_tokens {
            t.prompt_tokens += n;
            t.prompt_counted += 1;
        }
    }
}

impl AddAssign for SessionStats {
    fn add_assign(&mut self, b: SessionStats) {
        self.started += b.started;
        self.finished += b.finished;
        self.turns.merge(b.turns);
        self.duration.merge(b.duration);
        if self.by_turn.len() < b.by_turn.len() {
            self.by_turn
                .resize_with(b.by_turn.len(), TurnStats::default);
        }
        for (mine, theirs) in self.by_turn.iter_mut().zip(b.by_turn) {
            mine.requests += theirs.requests;
            mine.ttft.merge(theirs.ttft);
            mine.dispatch_delay.merge(theirs.dispatch_delay);
            mine.prompt_tokens += theirs.prompt_tokens;
            mine.prompt_counted += theirs.prompt_counted;
        }
    }
}

/// One live session.
struct Live {
    /// The turns so far, the one in flight (or waiting) last, unanswered.
    history: Vec<Turn>,
    /// The request bytes of that turn.
    request: Segments,
    /// The connection it owns between turns (slab key, connection id), once a turn completed.
    conn: Option<(usize, u64)>,
    /// The first turn's dispatch (its intended time until it goes out).
    started: Instant,
    /// Turns answered so far.
    answered: u32,
}

/// A turn that fell due, for the lane to send (or, `past_end`, to record as not sent).
#[derive(Clone, Copy, Debug)]
pub struct DueTurn {
    pub index: u64,
    pub intended: Instant,
    /// The connection the session owns, if it has one.
    pub conn: Option<(usize, u64)>,
    pub past_end: bool,
}

/// A lane's sessions. See the module docs.
pub struct LaneSessions {
    pub plan: Arc<SessionPlan>,
    live: HashMap<u64, Live>,
    /// Later turns waiting out their think time: (intended, index), earliest first.
    waiting: BinaryHeap<Reverse<(Instant, u64)>>,
    rng: SplitMix64,
    /// The run's end: a turn intended from here on is not sent.
    end: Instant,
    pub stats: SessionStats,
    /// What a session no longer live sends: nothing (the lane never asks for it).
    empty: Segments,
    /// The next session's first request, built ahead ([`LaneSessions::prepare`]) so that
    /// building it is not in its dispatch delay.
    ready: Option<(u64, Segments)>,
}

impl LaneSessions {
    pub fn new(plan: Arc<SessionPlan>, end: Instant, seed: u64) -> LaneSessions {
        LaneSessions {
            plan,
            live: HashMap::new(),
            waiting: BinaryHeap::new(),
            rng: SplitMix64::new(seed),
            end,
            stats: SessionStats::default(),
            empty: Segments::from(Vec::new()),
            ready: None,
        }
    }

    /// Builds session `session`'s first request ahead of its start (the lane calls this with
    /// the schedule's next index while it waits); nothing when it is built already.
    pub fn prepare(&mut self, session: u64) {
        if self.ready.as_ref().is_some_and(|(s, _)| *s == session) {
            return;
        }
        let history = [Turn {
            user: self.plan.conversation(session).turns[0].user.clone(),
            answer: None,
        }];
        self.ready = Some((session, self.plan.request(session, &history).into()));
    }

    /// Schedule arrival `session` fell due at `intended`: its first turn's request index.
    pub fn start(&mut self, session: u64, intended: Instant) -> u64 {
        let first = self.plan.conversation(session).turns[0].user.clone();
        let history = vec![Turn {
            user: first,
            answer: None,
        }];
        let request = match self.ready.take() {
            Some((s, r)) if s == session => r,
            _ => self.plan.request(session, &history).into(),
        };
        self.live.insert(
            session,
            Live {
                history,
                request,
                conn: None,
                started: intended,
                answered: 0,
            },
        );
        self.stats.started += 1;
        self.plan.index(session, 1)
    }

    /// The bytes of the turn request `index` sends (empty for a session no longer live, which
    /// the lane never asks for).
    #[inline]
    pub fn request(&self, index: u64) -> &Segments {
        let (session, _) = self.plan.of_index(index);
        self.live.get(&session).map_or(&self.empty, |l| &l.request)
    }

    /// Turn 1 of a session went out at `at`: the session's duration counts from there.
    pub fn dispatched(&mut self, index: u64, at: Instant) {
        let (session, turn) = self.plan.of_index(index);
        if turn == 1
            && let Some(l) = self.live.get_mut(&session)
        {
            l.started = at;
        }
    }

    /// Whether the answer's text is wanted (the history is the server's).
    pub fn keeps_text(&self) -> bool {
        self.plan.history == History::Server
    }

    /// Turn request `index` succeeded, its answer ending at `end` with `text` streamed, on
    /// connection `conn` (None: closed after it). True when the session goes on (it keeps the
    /// connection); false when it is finished (the connection is free).
    pub fn answered(
        &mut self,
        index: u64,
        end: Instant,
        text: &str,
        conn: Option<(usize, u64)>,
    ) -> bool {
        let (session, turn) = self.plan.of_index(index);
        let turns = self.plan.turns(session);
        let Some(l) = self.live.get_mut(&session) else {
            return false;
        };
        l.answered += 1;
        if turn >= turns {
            let l = self.live.remove(&session);
            self.stats.finished += 1;
            if let Some(l) = l {
                self.stats.turns.record(f64::from(l.answered));
                self.stats
                    .duration
                    .record(end.saturating_duration_since(l.started).as_secs_f64());
            }
            return false;
        }
        let conversation = self.plan.conversation(session);
        let answer: Box<str> = match (self.plan.history, &conversation.turns[turn as usize - 1]) {
            (History::Dataset, t) if t.answer.is_some() => t.answer.clone().unwrap_or_default(),
            _ => text.into(),
        };
        if let Some(last) = l.history.last_mut() {
            last.answer = Some(answer);
        }
        l.history.push(Turn {
            user: conversation.turns[turn as usize].user.clone(),
            answer: None,
        });
        l.request = self.plan.request(session, &l.history).into();
        l.conn = conn;
        let think = self.plan.think_time.draw(&mut self.rng);
        let intended = end + Duration::from_secs_f64(think);
        self.waiting
            .push(Reverse((intended, self.plan.index(session, turn + 1))));
        true
    }

    /// Turn request `index` ended without success (a failure, a status, not sent): its session
    /// ends unfinished. None when the session was no longer live (it ended before); else the
    /// connection it owned, if any, for the lane to free. The lane then records the session's
    /// later turns as not sent ([`LaneSessions::later_turns`]).
    pub fn ended(&mut self, index: u64) -> Option<Option<(usize, u64)>> {
        let (session, _) = self.plan.of_index(index);
        let l = self.live.remove(&session)?;
        self.stats.turns.record(f64::from(l.answered));
        Some(l.conn)
    }

    /// The next waiting turn due by `now`, or intended past the run's end (never to be sent).
    pub fn due(&mut self, now: Instant) -> Option<DueTurn> {
        let &Reverse((intended, index)) = self.waiting.peek()?;
        let past_end = intended >= self.end;
        if intended > now && !past_end {
            return None;
        }
        self.waiting.pop();
        let (session, _) = self.plan.of_index(index);
        let conn = self.live.get(&session).and_then(|l| l.conn);
        Some(DueTurn {
            index,
            intended,
            conn,
            past_end,
        })
    }

    /// Every waiting turn, whatever its time (a stopped run).
    pub fn take_waiting(&mut self) -> Vec<(u64, Instant)> {
        std::mem::take(&mut self.waiting)
            .into_iter()
            .map(|Reverse((at, index))| (index, at))
            .collect()
    }

    /// The intended time of the next waiting turn that will be sent.
    pub fn next_due(&self) -> Option<Instant> {
        self.waiting
            .peek()
            .map(|Reverse((at, _))| *at)
            .filter(|&at| at < self.end)
    }

    /// No turn waits for its time.
    pub fn quiet(&self) -> bool {
        self.waiting.is_empty()
    }

    /// The turns of `index`'s session after `index` (its conversation's), as request indices.
    pub fn later_turns(&self, index: u64) -> impl Iterator<Item = u64> + '_ {
        let (session, turn) = self.plan.of_index(index);
        (turn + 1..=self.plan.turns(session)).map(move |k| self.plan.index(session, k))
    }

    /// The session and turn of request `index`.
    #[inline]
    pub fn of_index(&self, index: u64) -> (u64, u32) {
        self.plan.of_index(index)
    }
}
