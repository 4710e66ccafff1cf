//! Which request goes out next, and which has waited or run too long: the queue of due requests,
//! the deadline FIFO, the busy and open connection counts, "not sent" expiry, and the retry after
//! a stale keep-alive connection. Pure: the lane passes `now` in and acts on what comes back, so
//! every rule here is tested with made-up instants, without sockets or sleeps.
//!
//! It knows connections only as slab keys and counts; which connection is idle, and the sockets,
//! belong to the lane. When requests fall due belongs to [`super::pacing`].
//!
//! Every request handed out comes with a [`Ticket`]; its connection gives it back through
//! [`Dispatch::end`] or [`Dispatch::retry`] exactly once, when the connection's state leaves
//! carrying it (`Conn::release`), so the busy count cannot drift.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::outcome::Failure;

/// A request due to go out, in the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pending {
    pub index: u64,
    pub intended: Instant,
    /// Set for a request already handed out once (a retry after a stale keep-alive connection).
    pub dispatch: Option<Instant>,
}

/// The request an exchange carries, from its hand-over to a connection until it ends. `Copy`, so
/// that ending an exchange reads it where it lies instead of moving the exchange out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticket {
    /// Global request index.
    pub index: u64,
    /// Unique per hand-over within a thread, so a deadline left behind by an earlier request on
    /// the same connection slot is recognised as stale.
    pub serial: u64,
    pub intended: Instant,
    /// The first hand-over: a retry keeps it, so the timeout and the timings count from it.
    pub dispatch: Instant,
    /// This is the second hand-over, after a stale keep-alive connection.
    pub retried: bool,
}

#[derive(Clone, Copy, Debug)]
struct Deadline {
    at: Instant,
    key: usize,
    serial: u64,
}

/// One thread's dispatch state. See the module docs.
#[derive(Debug)]
pub struct Dispatch {
    queue: VecDeque<Pending>,
    /// In the order they fall due. The timeout is the same for every request and first dispatch
    /// times only grow, so a push at the back keeps the order; only a retry (which keeps its
    /// first dispatch time) is put in its place. No heap, and entries of requests that already
    /// ended are dropped when they reach the front.
    deadlines: VecDeque<Deadline>,
    timeout: Duration,
    /// No request is given up as not sent before `floor + timeout`: a run that started late
    /// (its t0 in the past) had no chance to send its past-due requests before it was ready.
    floor: Option<Instant>,
    cap: usize,
    open: usize,
    busy: usize,
    serial: u64,
}

impl Dispatch {
    /// At most `cap` connections; a request times out `timeout` after its first dispatch, and is
    /// not sent if it waited that long past its intended time.
    pub fn new(cap: usize, timeout: Duration) -> Dispatch {
        Dispatch {
            queue: VecDeque::new(),
            deadlines: VecDeque::new(),
            timeout,
            floor: None,
            cap,
            open: 0,
            busy: 0,
            serial: 0,
        }
    }

    /// Waiting for a connection counts from `ready` for a request intended before it (a run
    /// that starts late still sends every request, each timed from its intended time).
    pub fn waiting_from(mut self, ready: Instant) -> Dispatch {
        self.floor = Some(ready);
        self
    }

    /// When a request intended at `intended` that has not gone out is given up.
    fn unsent_expiry(&self, intended: Instant) -> Instant {
        self.floor.map_or(intended, |f| f.max(intended)) + self.timeout
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Requests handed to a connection and not ended yet.
    pub fn busy(&self) -> usize {
        self.busy
    }

    /// Connections open (connecting included).
    pub fn open(&self) -> usize {
        self.open
    }

    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Nothing waits and nothing is in flight.
    pub fn quiet(&self) -> bool {
        self.busy == 0 && self.queue.is_empty()
    }

    /// Request `index` fell due: it waits behind those already waiting.
    pub fn due(&mut self, index: u64, intended: Instant) {
        self.queue.push_back(Pending {
            index,
            intended,
            dispatch: None,
        });
    }

    /// The request that goes out next.
    pub fn peek(&self) -> Option<Pending> {
        self.queue.front().copied()
    }

    pub fn pop(&mut self) -> Option<Pending> {
        self.queue.pop_front()
    }

    /// Whether one more connection may be opened.
    pub fn may_open(&self) -> bool {
        self.open < self.cap
    }

    pub fn opened(&mut self) {
        self.open += 1;
    }

    pub fn closed(&mut self) {
        debug_assert!(self.open > 0, "closed more connections than were opened");
        self.open = self.open.saturating_sub(1);
    }

    /// Hands `p` to a connection at `now` (a retry keeps its first dispatch time).
    #[inline]
    pub fn start(&mut self, p: Pending, now: Instant) -> Ticket {
        self.serial += 1;
        self.busy += 1;
        Ticket {
            index: p.index,
            serial: self.serial,
            intended: p.intended,
            dispatch: p.dispatch.unwrap_or(now),
            retried: p.dispatch.is_some(),
        }
    }

    /// The request of `t` is on connection `key`: it times out `timeout` after its first dispatch.
    #[inline(always)]
    pub fn track(&mut self, key: usize, t: &Ticket) {
        let entry = Deadline {
            at: t.dispatch + self.timeout,
            key,
            serial: t.serial,
        };
        if self.deadlines.back().is_none_or(|b| b.at <= entry.at) {
            self.deadlines.push_back(entry);
        } else {
            let at = self.deadlines.partition_point(|d| d.at <= entry.at);
            self.deadlines.insert(at, entry);
        }
    }

    /// The request of `t` ended (any outcome).
    #[inline]
    pub fn end(&mut self, t: Ticket) {
        let _ = t;
        debug_assert!(self.busy > 0, "a ticket ended that was never started");
        self.busy = self.busy.saturating_sub(1);
    }

    /// Whether a request that failed with `f` should go out again: it went out on a keep-alive
    /// connection that had already served `served` responses, got no byte back, and was not
    /// retried before. That is the server closing an idle connection just as the request left;
    /// anything else (a fresh connection, a byte of response, a second time) is the target's
    /// answer and is counted.
    pub fn retryable(f: Failure, got_bytes: bool, served: u64, t: &Ticket) -> bool {
        matches!(f, Failure::Reset | Failure::ClosedBeforeResponse)
            && !got_bytes
            && served > 0
            && !t.retried
    }

    /// Puts the request of `t` at the front of the queue, keeping its first dispatch time (and so
    /// its deadline and its timings). Retries are only ever pushed at the front and requests
    /// that never went out only at the back, and both leave from the front: the queue is the
    /// waiting retries, then the requests in the order they fell due.
    pub fn retry(&mut self, t: Ticket) {
        let p = Pending {
            index: t.index,
            intended: t.intended,
            dispatch: Some(t.dispatch),
        };
        self.end(t);
        self.queue.push_front(p);
    }

    /// How many retries wait at the front of the queue.
    fn retries(&self) -> usize {
        self.queue
            .iter()
            .take_while(|p| p.dispatch.is_some())
            .count()
    }

    /// The oldest request that has waited `timeout` past its intended time without going out,
    /// taken off the queue: it is not sent. Expiry is at exactly `intended + timeout` (for a late
    /// start, the later of `intended` and the moment the run was ready, plus `timeout`). Retries
    /// waiting ahead of it do not hold it back (they have their own deadline: [`Self::expire_retry`]).
    pub fn expire_unsent(&mut self, now: Instant) -> Option<Pending> {
        let at = self.retries();
        let p = self.queue.get(at)?;
        if now < self.unsent_expiry(p.intended) {
            return None;
        }
        self.queue.remove(at)
    }

    /// A retry still waiting for a connection when the deadline of its first dispatch
    /// (`dispatch + timeout`) has come, taken off the queue: it timed out, as it would have on a
    /// connection. Call until None.
    pub fn expire_retry(&mut self, now: Instant) -> Option<Pending> {
        let timeout = self.timeout;
        let at = self
            .queue
            .iter()
            .take_while(|p| p.dispatch.is_some())
            .position(|p| p.dispatch.is_some_and(|d| d + timeout <= now))?;
        self.queue.remove(at)
    }

    /// A request in flight whose deadline has come, as its connection key; entries of requests
    /// that already ended (`live(key, serial)` false) are dropped on the way. Call until None.
    pub fn expire_sent(
        &mut self,
        now: Instant,
        live: impl Fn(usize, u64) -> bool,
    ) -> Option<usize> {
        while let Some(d) = self.deadlines.front().copied() {
            let alive = live(d.key, d.serial);
            if alive && d.at > now {
                return None;
            }
            self.deadlines.pop_front();
            if alive {
                return Some(d.key);
            }
        }
        None
    }

    /// The next moment something here falls due: a waiting request's "not sent" expiry, a
    /// waiting retry's deadline, or an in-flight request's deadline (possibly a stale one, which
    /// only wakes the lane early).
    pub fn next_wake(&self) -> Option<Instant> {
        let retries = self.retries();
        let unsent = self
            .queue
            .get(retries)
            .map(|p| self.unsent_expiry(p.intended));
        let retry = self
            .queue
            .iter()
            .take(retries)
            .filter_map(|p| p.dispatch)
            .min()
            .map(|d| d + self.timeout);
        let sent = self.deadlines.front().map(|d| d.at);
        [unsent, retry, sent].into_iter().flatten().min()
    }

    /// Takes every waiting request that never went out (a stopped run); retries stay, being in
    /// flight as far as the user is concerned.
    pub fn take_unsent(&mut self) -> Vec<Pending> {
        let mut out = Vec::new();
        self.queue.retain(|p| {
            let unsent = p.dispatch.is_none();
            if unsent {
                out.push(*p);
            }
            !unsent
        });
        out
    }

    /// Takes every waiting request, retries included (the loop cannot go on).
    pub fn take_all(&mut self) -> VecDeque<Pending> {
        std::mem::take(&mut self.queue)
    }

    /// Drops every waiting request (a closed loop's end: what has not gone out is not counted).
    pub fn clear(&mut self) {
        self.queue.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    const TIMEOUT: Duration = Duration::from_millis(300);

    /// Takes the next waiting request and hands it out at `now`.
    fn take(d: &mut Dispatch, now: Instant) -> Ticket {
        let p = d.pop().expect("a request waits");
        d.start(p, now)
    }

    fn ms(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn due_requests_go_out_in_fifo_order() {
        let t0 = Instant::now();
        let mut d = Dispatch::new(2, TIMEOUT);
        for i in 0..4 {
            d.due(i, ms(t0, i * 10));
        }
        let order: Vec<u64> = std::iter::from_fn(|| d.pop().map(|p| p.index)).collect();
        assert_eq!(order, vec![0, 1, 2, 3]);
    }

    #[test]
    fn a_request_not_sent_expires_exactly_at_intended_plus_timeout() {
        let t0 = Instant::now();
        let mut d = Dispatch::new(1, TIMEOUT);
        d.due(0, t0);
        d.due(1, ms(t0, 5));
        let at = t0 + TIMEOUT;
        assert_eq!(d.expire_unsent(at - Duration::from_nanos(1)), None);
        assert_eq!(d.next_wake(), Some(at));
        assert_eq!(d.expire_unsent(at).map(|p| p.index), Some(0));
        assert_eq!(d.expire_unsent(at), None, "the next one is not due yet");
        assert_eq!(d.next_wake(), Some(ms(t0, 5) + TIMEOUT));
        assert_eq!(d.queued(), 1);
    }

    /// A run that was ready only after its start: requests intended before that wait from the
    /// moment it was ready; later ones from their intended time, as always.
    #[test]
    fn a_late_start_waits_from_readiness() {
        let t0 = Instant::now();
        let ready = ms(t0, 5000);
        let mut d = Dispatch::new(1, TIMEOUT).waiting_from(ready);
        d.due(0, t0);
        d.due(1, ready + TIMEOUT);
        assert_eq!(
            d.expire_unsent(t0 + TIMEOUT),
            None,
            "not before it could be sent"
        );
        assert_eq!(d.next_wake(), Some(ready + TIMEOUT));
        assert_eq!(d.expire_unsent(ready + TIMEOUT).map(|p| p.index), Some(0));
        assert_eq!(d.next_wake(), Some(ready + TIMEOUT + TIMEOUT));
    }

    #[test]
    fn counts_follow_starts_ends_and_retries() {
        let t0 = Instant::now();
        let mut d = Dispatch::new(2, TIMEOUT);
        d.due(0, t0);
        d.opened();
        let t = d.start(d.peek().unwrap(), ms(t0, 1));
        d.pop();
        assert_eq!((d.busy(), d.open(), d.queued()), (1, 1, 0));
        assert!(d.may_open());
        d.retry(t);
        assert_eq!((d.busy(), d.queued()), (0, 1));
        let again = take(&mut d, ms(t0, 9));
        assert!(again.retried);
        assert_eq!(
            again.dispatch,
            ms(t0, 1),
            "a retry keeps its first dispatch"
        );
        d.end(again);
        d.closed();
        assert!(d.quiet());
        assert_eq!((d.busy(), d.open()), (0, 0));
    }

    /// A retried request is at the front of the queue and keeps its place in the deadline order:
    /// the deadline of its first dispatch, before those of requests sent after it.
    #[test]
    fn a_retry_times_out_from_its_first_dispatch_in_its_place() {
        let t0 = Instant::now();
        let mut d = Dispatch::new(8, TIMEOUT);
        let mut on: Vec<Option<u64>> = vec![None; 8]; // key -> serial of its request
        let mut first = None;
        for (i, key) in [(0u64, 1usize), (1, 2), (2, 3)] {
            d.due(i, ms(t0, i * 100));
            let t = take(&mut d, ms(t0, i * 100));
            d.track(key, &t);
            on[key] = Some(t.serial);
            if i == 0 {
                first = Some(t);
            }
        }
        // At 240 ms request 0's keep-alive connection turns out stale: no byte came back.
        let t = first.unwrap();
        assert!(Dispatch::retryable(Failure::Reset, false, 3, &t));
        on[1] = None;
        d.retry(t);
        // It goes out again at 250 ms on a fresh connection.
        let p = d.pop().unwrap();
        assert_eq!((p.index, p.dispatch), (0, Some(t0)));
        let t = d.start(p, ms(t0, 250));
        assert_eq!(t.dispatch, t0);
        d.track(4, &t);
        on[4] = Some(t.serial);
        let live = |on: &Vec<Option<u64>>| {
            let on = on.clone();
            move |key: usize, serial: u64| on[key] == Some(serial)
        };
        // It times out at 300 ms (first dispatch + timeout), not at 550 ms (retry + timeout).
        let before = ms(t0, 300) - Duration::from_nanos(1);
        assert_eq!(d.expire_sent(before, live(&on)), None);
        assert_eq!(d.expire_sent(ms(t0, 300), live(&on)), Some(4));
        on[4] = None;
        assert_eq!(d.expire_sent(ms(t0, 300), live(&on)), None);
        // Then the others in the order they were sent.
        assert_eq!(d.next_wake(), Some(ms(t0, 400)));
        assert_eq!(d.expire_sent(ms(t0, 1000), live(&on)), Some(2));
        assert_eq!(d.expire_sent(ms(t0, 1000), live(&on)), Some(3));
        assert_eq!(d.expire_sent(ms(t0, 1000), live(&on)), None);
    }

    #[test]
    fn a_retry_waiting_in_the_queue_is_not_expired_as_not_sent() {
        let t0 = Instant::now();
        let mut d = Dispatch::new(1, TIMEOUT);
        d.due(0, t0);
        let t = take(&mut d, t0);
        d.retry(t);
        assert_eq!(d.expire_unsent(ms(t0, 10_000)), None);
        assert!(d.take_unsent().is_empty(), "a stop keeps it in flight");
        assert_eq!(d.queued(), 1);
    }

    /// Review of issue 18: a retry waiting at the front of the queue held back the "not sent"
    /// expiry of every request behind it (they waited past their timeout, and the lane did not
    /// even wake for them).
    #[test]
    fn a_retry_at_the_front_does_not_hold_back_not_sent_expiry() {
        let t0 = Instant::now();
        let mut d = Dispatch::new(1, TIMEOUT);
        d.due(0, t0);
        let first = take(&mut d, t0);
        d.track(0, &first);
        d.due(1, ms(t0, 10));
        d.due(2, ms(t0, 20));
        // Request 0's keep-alive connection was stale: it waits again, at the front.
        d.retry(first);
        assert_eq!(d.peek().map(|p| p.index), Some(0));
        let expiry = ms(t0, 10) + TIMEOUT;
        assert_eq!(d.expire_unsent(expiry - Duration::from_nanos(1)), None);
        assert_eq!(d.expire_unsent(expiry).map(|p| p.index), Some(1));
        assert_eq!(
            d.expire_unsent(expiry),
            None,
            "request 2 is due 10 ms later"
        );
        assert_eq!(
            d.expire_unsent(ms(t0, 20) + TIMEOUT).map(|p| p.index),
            Some(2)
        );
        // The retry is still first in line, with its first dispatch.
        assert_eq!(d.pop().map(|p| (p.index, p.dispatch)), Some((0, Some(t0))));
    }

    /// Review of issue 18: a retry that waits for a connection times out at its first dispatch
    /// plus the timeout, as it would have on a connection (it had no deadline while queued, so a
    /// run whose connections all hung kept it forever).
    #[test]
    fn a_queued_retry_times_out_from_its_first_dispatch() {
        let t0 = Instant::now();
        let mut d = Dispatch::new(1, TIMEOUT);
        d.due(0, t0);
        let first = take(&mut d, ms(t0, 5));
        d.track(0, &first);
        d.retry(first);
        d.due(1, ms(t0, 100));
        // The stale entry of its first connection goes; the lane still wakes for the retry.
        assert_eq!(d.expire_sent(ms(t0, 6), |_, _| false), None);
        let deadline = ms(t0, 5) + TIMEOUT;
        assert_eq!(d.next_wake(), Some(deadline));
        assert_eq!(d.expire_retry(deadline - Duration::from_nanos(1)), None);
        let p = d.expire_retry(deadline).expect("the retry timed out");
        assert_eq!((p.index, p.dispatch), (0, Some(ms(t0, 5))));
        assert_eq!(d.expire_retry(deadline), None);
        // Request 1 never went out: its own expiry is next, as "not sent".
        assert_eq!(d.next_wake(), Some(ms(t0, 100) + TIMEOUT));
        assert_eq!(d.queued(), 1);
    }

    #[test]
    fn only_a_stale_keep_alive_close_with_no_byte_is_retried_once() {
        let t0 = Instant::now();
        let mut d = Dispatch::new(1, TIMEOUT);
        d.due(0, t0);
        let first = take(&mut d, t0);
        assert!(Dispatch::retryable(Failure::Reset, false, 1, &first));
        assert!(Dispatch::retryable(
            Failure::ClosedBeforeResponse,
            false,
            1,
            &first
        ));
        assert!(!Dispatch::retryable(Failure::Reset, true, 1, &first));
        assert!(!Dispatch::retryable(Failure::Reset, false, 0, &first));
        assert!(!Dispatch::retryable(Failure::Timeout, false, 1, &first));
        assert!(!Dispatch::retryable(
            Failure::Invalid("x"),
            false,
            1,
            &first
        ));
        d.retry(first);
        let second = take(&mut d, t0);
        assert!(!Dispatch::retryable(Failure::Reset, false, 1, &second));
    }

    #[test]
    fn a_stop_takes_the_unsent_requests_and_keeps_the_order_of_the_rest() {
        let t0 = Instant::now();
        let mut d = Dispatch::new(1, TIMEOUT);
        for i in 0..3 {
            d.due(i, ms(t0, i));
        }
        let t = take(&mut d, t0);
        d.retry(t);
        let unsent: Vec<u64> = d.take_unsent().iter().map(|p| p.index).collect();
        assert_eq!(unsent, vec![1, 2]);
        assert_eq!(d.pop().map(|p| p.index), Some(0));
    }

    /// A small lane over made-up time: connections are slots that complete, fail stale, time out
    /// or close at random. Whatever happens, the counts match the model at every step, never go
    /// below zero, and every request ends exactly once.
    #[test]
    fn every_request_ends_exactly_once_and_counts_never_drift() {
        for seed in 0..200 {
            simulate(seed);
        }
    }

    #[derive(Default)]
    struct Slot {
        ticket: Option<Ticket>,
        served: u64,
        got_bytes: bool,
    }

    fn simulate(seed: u64) {
        let mut rng = SplitMix64::new(seed);
        let n = 40 + rng.below(40) as u64;
        let cap = 1 + rng.below(5);
        let t0 = Instant::now();
        let mut now = t0;
        let mut d = Dispatch::new(cap, TIMEOUT);
        let mut slots: Vec<Option<Slot>> = Vec::new();
        let mut ended = vec![0u32; n as usize];
        let mut next = 0u64;
        let mut steps = 0;
        while next < n || !d.quiet() {
            steps += 1;
            assert!(steps < 100_000, "seed {seed}: the simulation must end");
            now += Duration::from_millis(rng.below(40) as u64);
            if next < n && rng.below(2) == 0 {
                d.due(next, now);
                next += 1;
            }
            while let Some(p) = d.expire_unsent(now) {
                ended[p.index as usize] += 1;
            }
            let live = |slots: &Vec<Option<Slot>>| {
                let on: Vec<Option<u64>> = slots
                    .iter()
                    .map(|s| s.as_ref().and_then(|s| s.ticket.as_ref()).map(|t| t.serial))
                    .collect();
                move |key: usize, serial: u64| on.get(key).copied().flatten() == Some(serial)
            };
            while let Some(key) = d.expire_sent(now, live(&slots)) {
                let slot = slots[key].take().unwrap();
                ended[slot.ticket.as_ref().unwrap().index as usize] += 1;
                d.end(slot.ticket.unwrap());
                d.closed();
            }
            // Assign: an idle slot, else a new one while under the cap.
            while let Some(p) = d.peek() {
                let idle = slots
                    .iter()
                    .position(|s| s.as_ref().is_some_and(|s| s.ticket.is_none()));
                let key = match idle {
                    Some(k) => k,
                    None if d.may_open() => {
                        d.opened();
                        let k = slots.iter().position(Option::is_none).unwrap_or_else(|| {
                            slots.push(None);
                            slots.len() - 1
                        });
                        slots[k] = Some(Slot::default());
                        k
                    }
                    None => break,
                };
                d.pop();
                let t = d.start(p, now);
                d.track(key, &t);
                let slot = slots[key].as_mut().unwrap();
                slot.ticket = Some(t);
                slot.got_bytes = false;
            }
            // Something happens to one slot.
            if !slots.is_empty() {
                let key = rng.below(slots.len());
                if let Some(slot) = slots[key].as_mut() {
                    match (slot.ticket.take(), rng.below(4)) {
                        (Some(t), 0) => {
                            ended[t.index as usize] += 1;
                            d.end(t);
                            slot.served += 1;
                        }
                        (Some(t), 1) => {
                            // The server closed it; maybe after a byte.
                            slot.got_bytes = rng.below(2) == 0;
                            if Dispatch::retryable(Failure::Reset, slot.got_bytes, slot.served, &t)
                            {
                                d.retry(t);
                            } else {
                                ended[t.index as usize] += 1;
                                d.end(t);
                            }
                            slots[key] = None;
                            d.closed();
                        }
                        (None, 2) => {
                            slots[key] = None;
                            d.closed();
                        }
                        (t, _) => slot.ticket = t,
                    }
                }
            }
            let in_flight = slots
                .iter()
                .flatten()
                .filter(|s| s.ticket.is_some())
                .count();
            assert_eq!(d.busy(), in_flight, "seed {seed}");
            assert_eq!(d.open(), slots.iter().flatten().count(), "seed {seed}");
            assert!(d.open() <= cap, "seed {seed}");
        }
        assert!(
            ended.iter().all(|&e| e == 1),
            "seed {seed}: each request ends once: {ended:?}"
        );
    }
}
