//! What the server said about each success's tokens, beside pacer's own counts: the reasoning
//! part of the output (`usage.completion_tokens_details.reasoning_tokens`), and the counts checked
//! against each other where both exist: the prompt tokens pacer meant to send (its tokenizer's
//! count, made before the run) against `usage.prompt_tokens`, and the output tokens pacer's
//! tokenizer counted in the streamed text against `usage.completion_tokens`.
//!
//! Per request: [`Said`], built by the exchange into its `Completed` record. Per run:
//! [`TokenCounts`], kept by `stats::LaneStats::record` from each success's [`Said`], merged with
//! `+=` across threads and shards (a shard's state carries it). The report's `token_mismatch`
//! and `token_mismatch_rate`, and `mean_reasoning_tokens`, are read from it.
//!
//! A chat template adds tokens the prompt did not have (the role markers): the server's count of
//! a chat prompt exceeds pacer's by that overhead on every request. `--prompt-overhead-tokens N`
//! says how many are expected; a prompt difference of exactly N is then no mismatch, and the
//! reported differences are beyond it. The output has no such overhead.

use std::ops::AddAssign;

use serde::{Deserialize, Serialize};

/// One count of a request, as the server and as pacer had it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pair {
    /// The server's `usage` figure.
    pub server: Option<u64>,
    /// pacer's tokenizer count.
    pub pacer: Option<u64>,
}

impl Pair {
    /// `server − pacer − overhead`, when both exist.
    fn diff(self, overhead: u64) -> Option<i64> {
        let (s, p) = (self.server?, self.pacer?);
        let signed = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        Some(
            signed(s)
                .saturating_sub(signed(p))
                .saturating_sub(signed(overhead)),
        )
    }
}

/// What one success's server said about its tokens, beside pacer's counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Said {
    /// `usage.completion_tokens_details.reasoning_tokens`.
    pub reasoning_tokens: Option<u64>,
    /// `usage.prompt_tokens_details.cached_tokens`: prompt tokens the server's prefix cache gave.
    pub cached_tokens: Option<u64>,
    pub prompt: Pair,
    pub output: Pair,
}

/// One side of the check (prompt or output), over a run's successes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Mismatch {
    /// Successes that had both counts.
    pub compared: u64,
    /// Of those, the ones whose counts differ (beyond the expected overhead).
    pub requests: u64,
    /// Sum over the compared requests of `server − pacer − overhead`.
    pub sum_diff: i64,
    /// The largest difference, in absolute value.
    pub max_diff: u64,
}

impl Mismatch {
    /// Adds one request's difference; whether it was a mismatch.
    fn add(&mut self, diff: Option<i64>) -> bool {
        let Some(d) = diff else {
            return false;
        };
        self.compared += 1;
        self.sum_diff = self.sum_diff.saturating_add(d);
        self.max_diff = self.max_diff.max(d.unsigned_abs());
        let mismatched = d != 0;
        self.requests += u64::from(mismatched);
        mismatched
    }

    /// The mean difference over the compared requests (signed: above 0, the server counts more).
    pub fn mean_diff(&self) -> Option<f64> {
        (self.compared > 0).then(|| self.sum_diff as f64 / self.compared as f64)
    }
}

impl AddAssign for Mismatch {
    fn add_assign(&mut self, o: Mismatch) {
        self.compared += o.compared;
        self.requests += o.requests;
        self.sum_diff = self.sum_diff.saturating_add(o.sum_diff);
        self.max_diff = self.max_diff.max(o.max_diff);
    }
}

/// What a run's servers said about its successes' tokens (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TokenCounts {
    /// Successes whose usage gave reasoning tokens, and the sum of those.
    pub reasoning_requests: u64,
    pub reasoning_tokens: u64,
    /// Successes whose usage gave cached prompt tokens, the sum of those, and the sum of the
    /// server's prompt tokens of the same requests (the share's denominator).
    pub cached_requests: u64,
    pub cached_tokens: u64,
    pub cached_of_prompt_tokens: u64,
    pub prompt: Mismatch,
    pub output: Mismatch,
    /// Successes with at least one side compared, and those with a mismatch on either side.
    pub checked: u64,
    pub mismatched: u64,
}

impl TokenCounts {
    /// Counts one success; `overhead`: the prompt tokens a chat template is expected to add.
    pub fn add(&mut self, said: &Said, overhead: u64) {
        if let Some(n) = said.reasoning_tokens {
            self.reasoning_requests += 1;
            self.reasoning_tokens = self.reasoning_tokens.saturating_add(n);
        }
        if let (Some(n), Some(of)) = (said.cached_tokens, said.prompt.server) {
            self.cached_requests += 1;
            self.cached_tokens = self.cached_tokens.saturating_add(n);
            self.cached_of_prompt_tokens = self.cached_of_prompt_tokens.saturating_add(of);
        }
        let prompt = said.prompt.diff(overhead);
        let output = said.output.diff(0);
        if prompt.is_some() || output.is_some() {
            self.checked += 1;
        }
        let a = self.prompt.add(prompt);
        let b = self.output.add(output);
        self.mismatched += u64::from(a || b);
    }

    /// The share of the checked requests with any mismatch; None when none was checked.
    pub fn mismatch_rate(&self) -> Option<f64> {
        (self.checked > 0).then(|| self.mismatched as f64 / self.checked as f64)
    }

    /// The share of the prompt tokens the server's cache gave, over the requests that said.
    pub fn cached_share(&self) -> Option<f64> {
        (self.cached_of_prompt_tokens > 0)
            .then(|| self.cached_tokens as f64 / self.cached_of_prompt_tokens as f64)
    }

    /// The mean reasoning tokens of the successes whose usage said; None when none did.
    pub fn mean_reasoning_tokens(&self) -> Option<f64> {
        (self.reasoning_requests > 0)
            .then(|| self.reasoning_tokens as f64 / self.reasoning_requests as f64)
    }
}

impl AddAssign for TokenCounts {
    fn add_assign(&mut self, o: TokenCounts) {
        self.reasoning_requests += o.reasoning_requests;
        self.reasoning_tokens = self.reasoning_tokens.saturating_add(o.reasoning_tokens);
        self.cached_requests += o.cached_requests;
        self.cached_tokens = self.cached_tokens.saturating_add(o.cached_tokens);
        self.cached_of_prompt_tokens = self
            .cached_of_prompt_tokens
            .saturating_add(o.cached_of_prompt_tokens);
        self.prompt += o.prompt;
        self.output += o.output;
        self.checked += o.checked;
        self.mismatched += o.mismatched;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(server: u64, pacer: u64) -> Pair {
        Pair {
            server: Some(server),
            pacer: Some(pacer),
        }
    }

    #[test]
    fn mismatches_beyond_the_overhead() {
        let mut t = TokenCounts::default();
        // A chat template's 10 tokens, expected: no mismatch.
        t.add(
            &Said {
                prompt: pair(110, 100),
                output: pair(32, 32),
                reasoning_tokens: Some(4),
                cached_tokens: None,
            },
            10,
        );
        // The server counts 3 more output tokens, 2 fewer prompt tokens than expected.
        t.add(
            &Said {
                prompt: pair(108, 100),
                output: pair(35, 32),
                reasoning_tokens: None,
                cached_tokens: None,
            },
            10,
        );
        // Only the server's counts: nothing to compare.
        t.add(
            &Said {
                prompt: Pair {
                    server: Some(5),
                    pacer: None,
                },
                ..Said::default()
            },
            10,
        );
        assert_eq!((t.checked, t.mismatched), (2, 1));
        assert_eq!(t.mismatch_rate(), Some(0.5));
        assert_eq!((t.prompt.compared, t.prompt.requests), (2, 1));
        assert_eq!((t.prompt.mean_diff(), t.prompt.max_diff), (Some(-1.0), 2));
        assert_eq!((t.output.mean_diff(), t.output.max_diff), (Some(1.5), 3));
        assert_eq!(t.mean_reasoning_tokens(), Some(4.0));
        assert_eq!(t.cached_share(), None);
        t.add(
            &Said {
                cached_tokens: Some(90),
                prompt: pair(100, 100),
                ..Said::default()
            },
            0,
        );
        assert_eq!((t.cached_requests, t.cached_share()), (1, Some(0.9)));
        let mut sum = t;
        sum += t;
        assert_eq!(
            (sum.checked, sum.mismatched, sum.prompt.max_diff),
            (6, 2, 2)
        );
        assert_eq!(sum.cached_share(), Some(0.9));
        assert_eq!(TokenCounts::default().mismatch_rate(), None);
    }
}
