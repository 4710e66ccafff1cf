//! Synthetic prompts of a chosen length, cut from a few kilobytes of plain prose shipped in the
//! crate (`corpus.txt`, written for pacer), optionally all starting with one shared prefix.
//!
//! With a [`Tokenizer`] the lengths are exact: a prompt of `n` tokens is one that the tokenizer
//! counts as `n` with its special tokens ([`Tokenizer::count_prompt`], what a completions server
//! reports as `usage.prompt_tokens`, the way vLLM's benchmark counts its `--random-input-len`).
//! The cut takes token ids from the corpus, decodes them, and re-encodes the text to check: some
//! id sequences decode to text that tokenizes differently (GPT-2 turns `Ġcalls` `here` into
//! `Ġcall` `sh` `ere`), so the re-encoded ids are cut or topped up again until they agree, and
//! another place in the corpus is tried if they never do.
//!
//! Without one the lengths are approximate, by the rule of thumb for English prose with today's
//! BPE vocabularies: [`WORDS_PER_TOKEN`] = 0.75 words per token (100 tokens are about 75 words).
//! The run's `config` then says `"token_lengths": "approximate"`.
//!
//! Prompt `i` of a run starts its body at its own word of the corpus (consecutive prompts far
//! apart), so prompts differ and a server's prefix cache finds nothing shared but the asked
//! prefix; once every word has been a start (the corpus has about 1,000), bodies also begin with
//! the round number (`"2. "`), so they still differ. Bodies start at a word, never mid-word, so
//! the body's first token cannot merge with the end of the prefix. With `prefix_tokens` = P, every prompt starts with the same P tokens (the corpus's
//! first P), then its body of at least one token: a prompt is never shorter than the special
//! tokens, the prefix and one token of body.
//!
//! With G prefix groups ([`Synthesizer::with_groups`]) there are G prefixes of P tokens each, cut
//! from G different places of the corpus (group 0's is the corpus's first P, as with one), and
//! prompt `i` starts with group `i mod G`'s (round robin): a prefix cache sees G shared prefixes.

use std::fmt;

use super::dataset::{Entry, Prompt};
use super::lengths::LengthDist;
use super::tokenizer::{Tokenizer, TokenizerError};
use crate::rng::SplitMix64;

/// The prose synthetic prompts are cut from.
pub const CORPUS: &str = include_str!("corpus.txt");

/// Words per token when no tokenizer counts them: 100 tokens are about 75 English words.
pub const WORDS_PER_TOKEN: f64 = 0.75;

/// How many other places in the corpus a prompt tries when a cut never agrees with its
/// re-encoding; each try decodes and encodes the prompt a few times.
const PLACES_TRIED: u64 = 8;

/// Rounds of cut, decode, re-encode at one place before moving on. Real tokenizers agree after
/// one or two.
const ROUNDS: usize = 8;

/// A text's approximate token count without a tokenizer: its words divided by
/// [`WORDS_PER_TOKEN`], rounded; 0 for a text without words.
pub fn approx_tokens(text: &str) -> usize {
    (text.split_whitespace().count() as f64 / WORDS_PER_TOKEN).round() as usize
}

/// At most how many bytes of text a synthetic prompt takes per token, for budgeting a run before
/// its prompts are made: the corpus's bytes per word (with its space) over
/// [`WORDS_PER_TOKEN`], with half again as margin for a tokenizer whose tokens run longer than the
/// rule of thumb.
pub fn max_bytes_per_token() -> f64 {
    let words = CORPUS.split_whitespace().count().max(1) as f64;
    let bytes: usize = CORPUS.split_whitespace().map(|w| w.len() + 1).sum();
    bytes as f64 / words * WORDS_PER_TOKEN * 1.5
}

/// Words for `tokens` tokens by [`WORDS_PER_TOKEN`], at least one.
fn approx_words(tokens: usize) -> usize {
    ((tokens as f64 * WORDS_PER_TOKEN).round() as usize).max(1)
}

/// One synthetic prompt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SynthPrompt {
    pub text: String,
    /// Its length: exact (counted by the tokenizer, special tokens included) or the asked one
    /// when approximate. It can exceed the asked length only to fit the prefix and one body token.
    pub tokens: usize,
}

/// Why a prompt could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SynthError {
    Tokenizer(TokenizerError),
    /// The tokenizer's decode and encode never agreed on this length at any place tried (a
    /// tokenizer whose decoding loses text, such as one mapping most words to an unknown token).
    NoExactCut {
        tokens: usize,
    },
}

impl fmt::Display for SynthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SynthError::Tokenizer(e) => e.fmt(f),
            SynthError::NoExactCut { tokens } => write!(
                f,
                "cannot cut a prompt of exactly {tokens} tokens: the tokenizer's decoding and \
                 encoding of the corpus do not agree"
            ),
        }
    }
}

impl std::error::Error for SynthError {}

impl From<TokenizerError> for SynthError {
    fn from(e: TokenizerError) -> Self {
        SynthError::Tokenizer(e)
    }
}

/// Makes synthetic prompts; built once per run (it tokenizes the corpus and the prefixes).
pub struct Synthesizer<'t> {
    mode: Mode<'t>,
    /// Each group's shared prefix text (one empty one without a prefix).
    prefixes: Vec<String>,
    prefix_tokens: usize,
}

/// Most prefix groups a run may ask for: each is a prefix built before the run.
pub const MAX_PREFIX_GROUPS: u32 = 10_000;

enum Mode<'t> {
    Exact {
        tokenizer: &'t Tokenizer,
        corpus: Vec<u32>,
        /// Positions in `corpus` where a word starts: bodies start there, so the first body
        /// token never merges with the end of the prefix.
        starts: Vec<usize>,
        /// Each group's prefix ids.
        prefix_ids: Vec<Vec<u32>>,
    },
    Approximate {
        words: Vec<&'static str>,
        prefix_words: usize,
    },
}

impl<'t> Synthesizer<'t> {
    /// A synthesizer; exact with a tokenizer, approximate without. `prefix_tokens` may be 0.
    pub fn new(
        tokenizer: Option<&'t Tokenizer>,
        prefix_tokens: usize,
    ) -> Result<Synthesizer<'t>, SynthError> {
        Synthesizer::with_groups(tokenizer, prefix_tokens, 1)
    }

    /// A synthesizer of `groups` distinct prefixes of `prefix_tokens` each (at least 1 group;
    /// with `prefix_tokens` 0 the groups are all the empty prefix).
    pub fn with_groups(
        tokenizer: Option<&'t Tokenizer>,
        prefix_tokens: usize,
        groups: u32,
    ) -> Result<Synthesizer<'t>, SynthError> {
        let groups = u64::from(groups.max(1));
        let Some(tokenizer) = tokenizer else {
            let words: Vec<&'static str> = CORPUS.split_whitespace().collect();
            let prefix_words = if prefix_tokens == 0 {
                0
            } else {
                approx_words(prefix_tokens)
            };
            // Group g starts at its own word (group 0 at the first), as bodies do; past the
            // corpus's words the group number leads, so groups still differ.
            let prefixes = (0..groups)
                .map(|g| prefix_text(&words, g, prefix_words))
                .collect();
            return Ok(Synthesizer {
                prefixes,
                mode: Mode::Approximate {
                    words,
                    prefix_words,
                },
                prefix_tokens,
            });
        };
        let corpus = tokenizer.encode(CORPUS)?;
        let starts = tokenizer.word_starts(CORPUS)?;
        if corpus.is_empty() || starts.is_empty() {
            return Err(SynthError::NoExactCut {
                tokens: prefix_tokens,
            });
        }
        let mut prefix_ids = Vec::new();
        let mut prefixes = Vec::new();
        for g in 0..groups {
            if prefix_tokens == 0 {
                prefixes.push(String::new());
                prefix_ids.push(Vec::new());
                continue;
            }
            // Group g tries its own places, at word starts (group 0 from the corpus's start).
            let marker = if g >= starts.len() as u64 {
                tokenizer.encode(&format!("{g}. "))?
            } else {
                Vec::new()
            };
            let found = (0..PLACES_TRIED).find_map(|place| {
                let at = offset(
                    g.wrapping_mul(PLACES_TRIED).wrapping_add(place),
                    starts.len(),
                );
                let start = if g == 0 && place == 0 { 0 } else { starts[at] };
                let source = marker.iter().copied().chain(Cycle::new(&corpus, start));
                fit(tokenizer, &[], "", source, prefix_tokens).transpose()
            });
            let (text, ids) = found.ok_or(SynthError::NoExactCut {
                tokens: prefix_tokens,
            })??;
            prefixes.push(text);
            prefix_ids.push(ids);
        }
        Ok(Synthesizer {
            mode: Mode::Exact {
                tokenizer,
                corpus,
                starts,
                prefix_ids,
            },
            prefixes,
            prefix_tokens,
        })
    }

    /// True when lengths are counted by a tokenizer.
    pub fn is_exact(&self) -> bool {
        matches!(self.mode, Mode::Exact { .. })
    }

    /// The shared prefix every prompt of group 0 starts with (empty without one).
    pub fn prefix(&self) -> &str {
        self.prefix_of(0)
    }

    /// Group `g`'s shared prefix (empty without one, or past the groups).
    pub fn prefix_of(&self, g: u32) -> &str {
        self.prefixes.get(g as usize).map_or("", String::as_str)
    }

    /// How many prefix groups there are (1 without groups).
    pub fn groups(&self) -> u32 {
        self.prefixes.len() as u32
    }

    /// The group prompt `index` belongs to: round robin, `index mod groups`.
    pub fn group_of(&self, index: u64) -> u32 {
        (index % u64::from(self.groups().max(1))) as u32
    }

    /// The smallest prompt this synthesizer makes: special tokens, the prefix, one body token.
    pub fn min_tokens(&self) -> usize {
        let special = match &self.mode {
            Mode::Exact { tokenizer, .. } => tokenizer.special_tokens(),
            Mode::Approximate { .. } => 0,
        };
        special + self.prefix_tokens + 1
    }

    /// Prompt number `index` of the run, `tokens` long (raised to [`Synthesizer::min_tokens`]).
    /// The same index and length give the same text.
    pub fn prompt(&self, index: u64, tokens: usize) -> Result<SynthPrompt, SynthError> {
        let tokens = tokens.max(self.min_tokens());
        let g = self.group_of(index) as usize;
        let prefix = self.prefixes.get(g).map_or("", String::as_str);
        match &self.mode {
            Mode::Approximate {
                words,
                prefix_words,
            } => {
                let body_words = approx_words(tokens - self.prefix_tokens);
                let round = index / words.len() as u64;
                let marker = (round > 0).then(|| format!("{round}."));
                let body = marker
                    .as_deref()
                    .into_iter()
                    .chain(Cycle::new(words, offset(index, words.len())))
                    .take(body_words);
                let body: Vec<&str> = body.collect();
                let text = match *prefix_words {
                    0 => body.join(" "),
                    _ => format!("{prefix} {}", body.join(" ")),
                };
                Ok(SynthPrompt { text, tokens })
            }
            Mode::Exact {
                tokenizer,
                corpus,
                starts,
                prefix_ids,
            } => {
                let text_tokens = tokens - tokenizer.special_tokens();
                let round = index / starts.len() as u64;
                let marker = if round > 0 {
                    tokenizer.encode(&format!("{round}. "))?
                } else {
                    Vec::new()
                };
                for place in 0..PLACES_TRIED {
                    let start = starts[offset(index.wrapping_add(place), starts.len())];
                    let source = marker.iter().copied().chain(Cycle::new(corpus, start));
                    let ids = prefix_ids.get(g).map_or(&[][..], Vec::as_slice);
                    if let Some((text, _)) = fit(tokenizer, ids, prefix, source, text_tokens)? {
                        let tokens = tokenizer.count_prompt(&text)?;
                        return Ok(SynthPrompt { text, tokens });
                    }
                }
                Err(SynthError::NoExactCut { tokens })
            }
        }
    }
}

impl Synthesizer<'_> {
    /// A synthetic data set: `count` prompts, prompt `i` of the `i`-th length drawn from `input`
    /// with `SplitMix64::new(seed)`, as entries without `max_tokens` (see
    /// [`super::dataset::draw_max_tokens`]). Each entry's `line` is its 1-based index. With the
    /// lengths, the prompt tokens (exact, or asked when approximate), in entry order.
    pub fn entries(
        &self,
        count: usize,
        input: &LengthDist,
        seed: u64,
    ) -> Result<(Vec<Entry>, Vec<u32>), SynthError> {
        let mut rng = SplitMix64::new(seed);
        let mut entries = Vec::with_capacity(count);
        let mut tokens = Vec::with_capacity(count);
        for i in 0..count {
            let p = self.prompt(i as u64, input.draw(&mut rng) as usize)?;
            tokens.push(p.tokens.min(u32::MAX as usize) as u32);
            entries.push(Entry {
                prompt: Prompt::Text(p.text.into()),
                max_tokens: None,
                line: i + 1,
            });
        }
        Ok((entries, tokens))
    }
}

/// Group `g`'s prefix of `n` words without a tokenizer: from its own word of the corpus (group 0
/// from the first), led by the group number once the corpus's words are all used as starts.
fn prefix_text(words: &[&str], g: u64, n: usize) -> String {
    if n == 0 {
        return String::new();
    }
    let round = g / words.len().max(1) as u64;
    let marker = (round > 0).then(|| format!("{round}."));
    let text: Vec<&str> = marker
        .as_deref()
        .into_iter()
        .chain(Cycle::new(words, offset(g, words.len())))
        .take(n)
        .collect();
    text.join(" ")
}

/// Where body `index` starts in a corpus of `len` pieces: steps of about 0.618 × `len` (coprime
/// with it), so consecutive prompts start far apart and the first `len` prompts all differ.
pub fn offset(index: u64, len: usize) -> usize {
    let len = len.max(1) as u64;
    let mut step = ((len as f64 * 0.618_034) as u64).max(1);
    while gcd(step, len) != 1 {
        step += 1;
    }
    ((index % len) * step % len) as usize
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The corpus from `start`, round and round.
struct Cycle<'a, T> {
    items: &'a [T],
    at: usize,
}

impl<'a, T> Cycle<'a, T> {
    fn new(items: &'a [T], start: usize) -> Self {
        Cycle {
            items,
            at: start % items.len().max(1),
        }
    }
}

impl<T: Copy> Iterator for Cycle<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        let item = *self.items.get(self.at)?;
        self.at = (self.at + 1) % self.items.len();
        Some(item)
    }
}

/// Text of exactly `target` tokens (without special tokens) that starts with the prefix's ids and
/// text, the rest taken from `source`; `None` when decode and encode never agree here.
fn fit(
    tokenizer: &Tokenizer,
    prefix_ids: &[u32],
    prefix_text: &str,
    mut source: impl Iterator<Item = u32>,
    target: usize,
) -> Result<Option<(String, Vec<u32>)>, TokenizerError> {
    let mut ids = prefix_ids.to_vec();
    ids.extend(source.by_ref().take(target - prefix_ids.len()));
    for _ in 0..ROUNDS {
        let text = tokenizer.decode(&ids)?;
        if !text.starts_with(prefix_text) {
            return Ok(None);
        }
        let again = tokenizer.encode(&text)?;
        if !again.starts_with(prefix_ids) {
            return Ok(None);
        }
        if again.len() == target {
            return Ok(Some((text, again)));
        }
        ids = again;
        if ids.len() > target {
            ids.truncate(target);
        } else {
            let missing = target - ids.len();
            let before = ids.len();
            ids.extend(source.by_ref().take(missing));
            if ids.len() == before {
                return Ok(None);
            }
        }
    }
    Ok(None)
}
