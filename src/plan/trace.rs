//! A trace replay (`--trace`): the schedule is the trace's times, each request's prompt is
//! made of the trace's blocks, shared exactly as its `hash_ids` say, and its `max_tokens` is the
//! recorded output length. Reading the file is [`crate::llm::trace`]'s; this module turns it into
//! the run's rate and length ([`Input::set_trace`]), its send times, and its requests.
//!
//! Requests: every block is a range of one corpus text ([`BlockText`]), so the run holds that
//! text once, each request's own head and the bytes around its prompt ([`frame`], one per
//! distinct output length), and a list of segments per request. Block `b` of an entry is
//! `block_tokens` tokens by the rule of thumb (0.75 words a token), its last block cut to the
//! rest of `input_length`. With `--tokenizer` a whole block is the most whole words the
//! tokenizer counts at most `block_tokens` (exactly that at a word boundary), the same for an
//! id wherever it is whole, and the last block's cut is moved word by word until the tokenizer
//! counts `input_length` (special tokens included); the count is recorded per request.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use super::request::Shaped;
use super::workload::{Frame, PromptSource, Requests, Workload, WorkloadInfo, framed_request};
use super::{Input, PlanError, Rate, defaults, invalid};
use crate::http1::{Segment, Segments, build_request};
use crate::llm::bodies::{escape, frame};
use crate::llm::{
    BlockText, Bodies, BodyTemplate, Entry, Prompt, Synthesizer, Tokenizer, Trace, TraceEntry,
};

/// A trace to replay, read, with how to replay it.
#[derive(Clone, Debug, PartialEq)]
pub struct Replay {
    pub trace: Trace,
    /// 2: twice as fast as recorded.
    pub speed: f64,
    pub block_tokens: u32,
    /// Each entry's send time, seconds from the run's start (the speed applied).
    pub times: Arc<[f64]>,
}

/// Reads the trace at `path` (at most `max_bytes`) for a replay at `speed` with blocks of
/// `block_tokens`: refused naming the file and line, or the flag.
pub fn load(
    path: &Path,
    speed: Option<f64>,
    block_tokens: Option<u32>,
    max_bytes: u64,
) -> Result<Replay, PlanError> {
    let speed = speed.unwrap_or(defaults::REPLAY_SPEED);
    if !(speed.is_finite() && speed > 0.0) {
        return Err(invalid(
            "replay_speed",
            format!("replay_speed must be a number above 0 (got {speed})"),
        ));
    }
    let block_tokens = block_tokens.unwrap_or(defaults::BLOCK_TOKENS);
    if block_tokens == 0 || block_tokens > crate::llm::lengths::MAX_TOKENS {
        return Err(invalid(
            "block_tokens",
            format!(
                "block_tokens must be from 1 to {}",
                crate::llm::lengths::MAX_TOKENS
            ),
        ));
    }
    let trace = Trace::load(path, max_bytes).map_err(|e| invalid("trace", e.to_string()))?;
    trace
        .check_blocks(block_tokens)
        .map_err(|e| invalid("trace", e.to_string()))?;
    let times = trace.times(speed).into();
    Ok(Replay {
        trace,
        speed,
        block_tokens,
        times,
    })
}

impl Replay {
    /// The run's length: until the last entry is due (at least a millisecond).
    pub fn duration(&self) -> f64 {
        self.times.last().copied().unwrap_or(0.0).max(1e-3)
    }

    /// The most requests due in any one second: the rate connections and threads are sized to.
    pub fn peak_rate(&self) -> f64 {
        let t = &self.times;
        let mut peak = 0usize;
        let mut from = 0;
        for (to, &at) in t.iter().enumerate() {
            while t[from] <= at - 1.0 {
                from += 1;
            }
            peak = peak.max(to + 1 - from);
        }
        (peak as f64).max(t.len() as f64 / self.duration())
    }
}

impl Input {
    /// Replays `replay` instead of an arrival process: `qps` becomes its peak rate over a second
    /// (what connections and threads are sized to, as the peak stage is for stages) and
    /// `duration` the time its last entry is due; the count is its entries. The front has
    /// already refused `qps`, `duration`, `count` and `stages` beside a trace.
    pub fn set_trace(&mut self, replay: Replay) {
        self.qps = Rate::PerSecond(replay.peak_rate());
        self.duration = replay.duration();
        self.workload.trace = Some(Arc::new(replay));
    }
}

/// The memory a replay's requests hold, estimated before they are built: the corpus text once,
/// and per entry its head and payload, a segment per block, and a prompt of its own when it has
/// no blocks.
pub(super) fn budget_bytes(r: &Replay, overhead: u64) -> u64 {
    let per_token = crate::llm::synth::max_bytes_per_token();
    r.trace
        .entries
        .iter()
        .fold(crate::llm::synth::CORPUS.len() as u64 * 2, |sum, e| {
            let own = if e.hash_ids.is_empty() {
                (f64::from(e.input_length) * per_token).ceil() as u64
            } else {
                e.hash_ids.len() as u64 * 2 * std::mem::size_of::<Segment>() as u64
            };
            sum.saturating_add(overhead + own)
        })
}

/// The requests of a replay: entry `i` is request `i`.
pub(super) fn build(
    r: &Replay,
    shaped: &Shaped,
    template: &BodyTemplate,
    tokenizer: Option<Arc<Tokenizer>>,
    info: impl FnOnce(PromptSource, usize, usize) -> WorkloadInfo,
) -> Result<Workload, PlanError> {
    let tok = tokenizer.as_deref();
    let blocks = BlockText::new();
    let synth = Synthesizer::new(tok, 0).map_err(|e| invalid("tokenizer", e.to_string()))?;
    let mut dense: HashMap<u64, u64> = HashMap::new();
    // With a tokenizer: each block's words when it is whole (not an entry's last), by dense id.
    let mut full_words: HashMap<u64, usize> = HashMap::new();
    let mut frames: HashMap<i64, Option<Frame>> = HashMap::new();
    let n = r.trace.entries.len();
    let mut distinct = Vec::with_capacity(n);
    let mut counts = Vec::with_capacity(if tok.is_some() { n } else { 0 });
    for (i, e) in r.trace.entries.iter().enumerate() {
        let at = |msg: String| {
            invalid(
                "trace",
                format!("trace {}: line {}: {msg}", r.trace.path.display(), e.line),
            )
        };
        let (pieces, count) = if e.hash_ids.is_empty() {
            let p = synth
                .prompt(i as u64, e.input_length as usize)
                .map_err(|err| at(err.to_string()))?;
            let count = p.tokens.min(u32::MAX as usize) as u32;
            (vec![Segment::owned(escape(&p.text))], Some(count))
        } else {
            // Dense numbers in first-seen order: block j is the j-th distinct id.
            let ids: Vec<u64> = e
                .hash_ids
                .iter()
                .map(|id| {
                    let next = dense.len() as u64;
                    *dense.entry(*id).or_insert(next)
                })
                .collect();
            blocks_of(&blocks, e, &ids, r.block_tokens, tok, &mut full_words).map_err(at)?
        };
        if tok.is_some() {
            counts.push(count);
        }
        let max_tokens = i64::from(e.output_length);
        let framed = frames
            .entry(max_tokens)
            .or_insert_with(|| frame(max_tokens, template).map(|(a, b)| (a.into(), b.into())));
        distinct.push(assemble(shaped, framed.as_ref(), pieces, e, template)?);
    }
    let slot: Box<[u32]> = (0..n as u32).collect();
    let mut requests = Requests::spread(distinct, slot);
    if tok.is_some() {
        requests.set_prompt_tokens(counts.into());
    }
    let info = info(PromptSource::Trace(r.trace.path.clone()), n, dense.len());
    Ok(Workload {
        requests,
        sessions: None,
        tokenizer,
        info,
    })
}

/// The words of block `j` when it is whole, with a tokenizer: the most whole words whose tokens
/// are at most `block_tokens` (exactly that when a word boundary falls there, as it does for a
/// tokenizer whose tokens are words), so the same id is the same tokens wherever it is whole.
fn whole_block_words(
    blocks: &BlockText,
    j: u64,
    block_tokens: u32,
    tok: &Tokenizer,
) -> Result<usize, String> {
    // A word is at least a token: block_tokens + 1 words are more tokens than a block holds.
    let words = block_tokens as usize + 1;
    let (marker, ranges) = blocks.block(j, words);
    let mut text = marker.clone().unwrap_or_default().into_bytes();
    for r in ranges {
        text.extend_from_slice(&blocks.text()[r]);
    }
    // The corpus and the markers need no escaping: the bytes are the text.
    let text = String::from_utf8(text).map_err(|e| e.to_string())?;
    // starts[w]: the tokens of the first w words (the marker is one word).
    let starts = tok.word_starts(&text).map_err(|e| e.to_string())?;
    let fit = starts.partition_point(|&s| s <= block_tokens as usize);
    let marker_words = usize::from(marker.is_some());
    // A block led by a marker may be the marker alone (a block of a token or two).
    Ok(fit.saturating_sub(1 + marker_words).max(1 - marker_words))
}

/// An entry's prompt from its blocks: the escaped pieces and, with a tokenizer, its count.
/// `full_words` caches [`whole_block_words`] by dense id.
fn blocks_of(
    blocks: &BlockText,
    e: &TraceEntry,
    ids: &[u64],
    block_tokens: u32,
    tok: Option<&Tokenizer>,
    full_words: &mut HashMap<u64, usize>,
) -> Result<(Vec<Segment>, Option<u32>), String> {
    let k = ids.len();
    let last_tokens = e.input_length - (k as u32 - 1) * block_tokens;
    let approx_full = BlockText::words_for(block_tokens);
    // Each whole block's words: by the rule of thumb, or the tokenizer's count.
    let mut fulls = Vec::with_capacity(k - 1);
    for &j in &ids[..k - 1] {
        fulls.push(match tok {
            None => approx_full,
            Some(t) => match full_words.get(&j) {
                Some(&w) => w,
                None => {
                    let w = whole_block_words(blocks, j, block_tokens, t)?;
                    full_words.insert(j, w);
                    w
                }
            },
        });
    }
    let pieces_for = |last_words: usize| {
        let mut pieces = Vec::new();
        for (b, &j) in ids.iter().enumerate() {
            let words = if b + 1 < k { fulls[b] } else { last_words };
            let (marker, ranges) = blocks.block(j, words);
            if let Some(m) = marker {
                pieces.push(Segment::owned(escape(&m)));
            }
            pieces.extend(
                ranges
                    .into_iter()
                    .map(|r: Range<usize>| Segment::shared(blocks.text(), r)),
            );
        }
        pieces
    };
    let approx = BlockText::words_for(last_tokens);
    let Some(tok) = tok else {
        return Ok((pieces_for(approx), None));
    };
    // The tokenizer's count with the last block cut after `w` words grows with `w`: find the
    // most words whose count is at most input_length.
    let text_of = |w: usize| -> Result<String, String> {
        let bytes = Segments::from_parts(pieces_for(w)).to_vec();
        // The corpus and the markers need no escaping: the bytes are the text.
        String::from_utf8(bytes).map_err(|e| e.to_string())
    };
    let count = |w: usize| -> Result<usize, String> {
        tok.count_prompt(&text_of(w)?).map_err(|e| e.to_string())
    };
    let target = e.input_length as usize;
    // A last block led by its round's marker may be the marker alone (no word of the corpus):
    // its tokens then are the one the block had to have past the whole ones.
    let least = usize::from(blocks.block(ids[k - 1], 1).0.is_none());
    let (mut lo, mut hi) = (least, (last_tokens as usize).max(approx) + 1);
    let most = 64 * (last_tokens as usize + 1);
    let specials = tok.special_tokens();
    // The cut from one encoding: with the last block at `hi` words (more tokens than the
    // target), the tokens of every shorter cut are where its next word starts (for a tokenizer
    // whose words never merge across a space, as whitespace pre-tokenizers do). Taken when one
    // count confirms it; the search below is for the other tokenizers.
    let fast = loop {
        let (starts, total) = tok
            .word_starts_counted(&text_of(hi)?)
            .map_err(|e| e.to_string())?;
        if total + specials <= target && hi < most {
            hi *= 2;
            continue;
        }
        break cut_from_word_starts(&starts, specials, least, hi, target);
    };
    if let Some(w) = fast
        && count(w)? == target
    {
        return Ok((pieces_for(w), Some(target.min(u32::MAX as usize) as u32)));
    }
    while count(hi)? <= target && hi < most {
        hi *= 2;
    }
    if count(lo)? > target {
        return Err(format!(
            "input_length {target} is shorter than its blocks before the last ({} tokens with \
             {lo} words of the last)",
            count(lo)?
        ));
    }
    // Invariant: count(lo) <= target < count(hi).
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if count(mid)? <= target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let got = count(lo)?;
    Ok((pieces_for(lo), Some(got.min(u32::MAX as usize) as u32)))
}

/// The most words `w` (`least` to `words` - 1) of the last block whose prompt the tokenizer
/// would count at most `target` (`specials` included), read off the word starts of the prompt
/// with the last block at `words` words; None when even `least` words are too many.
fn cut_from_word_starts(
    starts: &[usize],
    specials: usize,
    least: usize,
    words: usize,
    target: usize,
) -> Option<usize> {
    let before = starts.len().checked_sub(words)?;
    // starts[before + w]: the tokens of every word before the last block and w of its words.
    (least..words)
        .take_while(|&w| starts[before + w] + specials <= target)
        .last()
}

/// One request: its head, the frame's bytes before the prompt, the prompt's pieces, the frame's
/// bytes after it; `Content-Length` their sum. Without a frame (an override replaced the prompt)
/// the body is built whole from the prompt's text.
fn assemble(
    shaped: &Shaped,
    framed: Option<&Frame>,
    pieces: Vec<Segment>,
    e: &TraceEntry,
    template: &BodyTemplate,
) -> Result<Segments, PlanError> {
    let t = &shaped.target;
    let Some(framed) = framed else {
        let escaped = Segments::from_parts(pieces).to_vec();
        let mut quoted = Vec::with_capacity(escaped.len() + 2);
        quoted.push(b'"');
        quoted.extend_from_slice(&escaped);
        quoted.push(b'"');
        let text: String = serde_json::from_slice(&quoted)
            .map_err(|err| invalid("trace", format!("line {}: {err}", e.line)))?;
        let entry = Entry {
            prompt: Prompt::Text(text.into()),
            max_tokens: Some(e.output_length),
            line: e.line,
        };
        let bodies = Bodies::build(std::slice::from_ref(&entry), template)
            .map_err(|err| invalid("trace", err.to_string()))?;
        let body = bodies.of(0);
        return Ok(build_request(
            &shaped.method,
            &t.host_header,
            &t.path,
            &shaped.headers,
            body,
        )
        .into());
    };
    Ok(framed_request(shaped, framed, pieces))
}
