//! A request trace to replay (`--trace`): when each request went out, how long its prompt and
//! answer were, and which blocks of its prompt it shared with others.
//!
//! Two forms are read. JSON lines in the Mooncake format, one request a line:
//! `{"timestamp": 27482, "input_length": 6955, "output_length": 52, "hash_ids": [46, 47, ...]}`
//! (`timestamp` in milliseconds; `hash_ids` optional: each names a block of `block_tokens`
//! tokens, and the same id is the same block). Or a CSV of `timestamp,input_tokens,output_tokens`
//! (milliseconds, a header line optional, `#` comments and blank lines skipped). The form is
//! told by the first meaningful character (`{` is JSON). Timestamps never go back; a refusal
//! names the file and line.
//!
//! The prompts' text: block `j` (the `j`-th distinct id, in the order they first appear) is
//! words of the built-in corpus from its own place ([`super::synth`]'s spread of starts), led
//! by its round number once every place is used, so distinct ids are distinct text and equal
//! ids equal text. Every block's words are a range of one text, [`BlockText::text`] (the corpus
//! twice over, JSON-escaped), so a trace of any number of blocks holds one corpus of text.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use super::synth::{CORPUS, WORDS_PER_TOKEN, offset};

/// One request of a trace.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceEntry {
    /// When it went out, in milliseconds from the trace's clock.
    pub timestamp_ms: f64,
    pub input_length: u32,
    pub output_length: u32,
    /// Its prompt's blocks (empty: a prompt of its own).
    pub hash_ids: Box<[u64]>,
    /// Its line in the file (from 1).
    pub line: usize,
}

/// A trace, read.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    pub path: PathBuf,
    pub entries: Vec<TraceEntry>,
    /// `true`: the CSV form.
    pub csv: bool,
}

/// Why a trace was refused: the file, the line when there is one, and the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub reason: String,
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(n) => write!(
                f,
                "trace {}: line {n}: {}",
                self.path.display(),
                self.reason
            ),
            None => write!(f, "trace {}: {}", self.path.display(), self.reason),
        }
    }
}

impl std::error::Error for TraceError {}

/// Most hash ids one line may list (a prompt of 4,096 blocks is 2 M tokens at 512).
pub const MAX_HASH_IDS: usize = 4096;

impl Trace {
    /// Reads `path`, refusing a file over `max_bytes`.
    pub fn load(path: &Path, max_bytes: u64) -> Result<Trace, TraceError> {
        let fail = |line: Option<usize>, reason: String| TraceError {
            path: path.to_path_buf(),
            line,
            reason,
        };
        let size = std::fs::metadata(path)
            .map_err(|e| fail(None, e.to_string()))?
            .len();
        if size > max_bytes {
            return Err(fail(
                None,
                format!("{size} bytes, more than the {max_bytes} allowed (--max-dataset-bytes)"),
            ));
        }
        let text = std::fs::read_to_string(path).map_err(|e| fail(None, e.to_string()))?;
        Trace::parse(&text, path)
    }

    /// Parses a trace's text (`path` only names it in errors).
    pub fn parse(text: &str, path: &Path) -> Result<Trace, TraceError> {
        let fail = |line: usize, reason: String| TraceError {
            path: path.to_path_buf(),
            line: Some(line),
            reason,
        };
        let csv = !text.trim_start().starts_with('{');
        let mut entries: Vec<TraceEntry> = Vec::new();
        for (k, raw) in text.lines().enumerate() {
            let line = k + 1;
            let l = raw.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let entry = if csv {
                match csv_entry(l, line) {
                    Ok(Some(e)) => e,
                    // A header: only before the first entry.
                    Ok(None) if entries.is_empty() => continue,
                    Ok(None) => return Err(fail(line, "expected three numbers".into())),
                    Err(reason) => return Err(fail(line, reason)),
                }
            } else {
                json_entry(l, line).map_err(|reason| fail(line, reason))?
            };
            if let Some(prev) = entries.last()
                && entry.timestamp_ms < prev.timestamp_ms
            {
                return Err(fail(
                    line,
                    format!(
                        "timestamp {} goes back (line {} has {})",
                        entry.timestamp_ms, prev.line, prev.timestamp_ms
                    ),
                ));
            }
            entries.push(entry);
        }
        if entries.is_empty() {
            return Err(TraceError {
                path: path.to_path_buf(),
                line: None,
                reason: "no requests".into(),
            });
        }
        Ok(Trace {
            path: path.to_path_buf(),
            entries,
            csv,
        })
    }

    /// Each entry's send time in seconds from the first's, at `speed` (2: twice as fast).
    pub fn times(&self, speed: f64) -> Vec<f64> {
        let t0 = self.entries.first().map_or(0.0, |e| e.timestamp_ms);
        self.entries
            .iter()
            .map(|e| (e.timestamp_ms - t0) / 1000.0 / speed)
            .collect()
    }

    /// Checks every entry's blocks against its `input_length`: at least one token in its last
    /// block, and no more than its blocks hold.
    pub fn check_blocks(&self, block_tokens: u32) -> Result<(), TraceError> {
        for e in &self.entries {
            let k = e.hash_ids.len() as u64;
            if k == 0 {
                continue;
            }
            let (n, b) = (u64::from(e.input_length), u64::from(block_tokens));
            if n <= (k - 1) * b || n > k * b {
                return Err(TraceError {
                    path: self.path.clone(),
                    line: Some(e.line),
                    reason: format!(
                        "input_length {n} does not fit its {k} blocks of {b} tokens (more than \
                         {} and at most {}: --block-tokens)",
                        (k - 1) * b,
                        k * b
                    ),
                });
            }
        }
        Ok(())
    }
}

fn number(v: Option<&Value>, name: &str) -> Result<f64, String> {
    match v.and_then(Value::as_f64) {
        Some(x) if x.is_finite() && x >= 0.0 => Ok(x),
        Some(x) => Err(format!("{name} must be a number >= 0 (got {x})")),
        None => Err(format!("{name} is missing or not a number")),
    }
}

fn length(x: f64, name: &str) -> Result<u32, String> {
    if x.fract() != 0.0 || x < 1.0 || x > f64::from(super::lengths::MAX_TOKENS) {
        return Err(format!(
            "{name} must be a whole number from 1 to {} (got {x})",
            super::lengths::MAX_TOKENS
        ));
    }
    Ok(x as u32)
}

fn json_entry(l: &str, line: usize) -> Result<TraceEntry, String> {
    let v: Value = serde_json::from_str(l).map_err(|e| format!("not JSON: {e}"))?;
    let Some(o) = v.as_object() else {
        return Err("not a JSON object".into());
    };
    let timestamp_ms = number(o.get("timestamp"), "timestamp")?;
    let input_length = length(
        number(o.get("input_length"), "input_length")?,
        "input_length",
    )?;
    let output_length = length(
        number(o.get("output_length"), "output_length")?,
        "output_length",
    )?;
    let hash_ids: Box<[u64]> = match o.get("hash_ids") {
        None | Some(Value::Null) => Box::new([]),
        Some(Value::Array(ids)) => {
            if ids.len() > MAX_HASH_IDS {
                return Err(format!("more than {MAX_HASH_IDS} hash_ids"));
            }
            ids.iter()
                .map(|id| {
                    id.as_u64()
                        .ok_or_else(|| format!("hash_ids must be whole numbers >= 0 (got {id})"))
                })
                .collect::<Result<_, _>>()?
        }
        Some(other) => return Err(format!("hash_ids must be an array (got {other})")),
    };
    Ok(TraceEntry {
        timestamp_ms,
        input_length,
        output_length,
        hash_ids,
        line,
    })
}

/// A CSV line's entry; None for a line of words (a header).
fn csv_entry(l: &str, line: usize) -> Result<Option<TraceEntry>, String> {
    let fields: Vec<&str> = l.split(',').map(str::trim).collect();
    if fields.len() != 3 {
        return Err(format!(
            "expected timestamp,input_tokens,output_tokens (got {} fields)",
            fields.len()
        ));
    }
    let parsed: Vec<Option<f64>> = fields.iter().map(|f| f.parse::<f64>().ok()).collect();
    if parsed.iter().all(Option::is_none) {
        return Ok(None);
    }
    let get = |k: usize, name: &str| {
        number(
            parsed[k]
                .map(Value::from)
                .as_ref()
                .filter(|_| parsed[k].is_some()),
            name,
        )
    };
    Ok(Some(TraceEntry {
        timestamp_ms: get(0, "timestamp")?,
        input_length: length(get(1, "input_tokens")?, "input_tokens")?,
        output_length: length(get(2, "output_tokens")?, "output_tokens")?,
        hash_ids: Box::new([]),
        line,
    }))
}

/// The text of every block: one JSON-escaped text that block `j`'s words are a range of.
pub struct BlockText {
    /// The corpus's words joined by spaces, twice, JSON-escaped (the corpus has no character
    /// that needs escaping but for the check in [`BlockText::new`]).
    text: Arc<[u8]>,
    /// Where each word starts in the first copy, and the length of one copy (with its space).
    starts: Vec<usize>,
    copy: usize,
}

impl Default for BlockText {
    fn default() -> Self {
        Self::new()
    }
}

impl BlockText {
    pub fn new() -> BlockText {
        let words: Vec<&str> = CORPUS.split_whitespace().collect();
        let mut one = String::new();
        let mut starts = Vec::with_capacity(words.len());
        for w in &words {
            starts.push(one.len());
            one.push_str(w);
            one.push(' ');
        }
        // Escaped whole: a word's escaping never depends on its neighbours, so ranges at word
        // starts of the escaped text are the escaped words.
        let escaped = super::bodies::escape(&one);
        assert_eq!(escaped.len(), one.len(), "the corpus needs no escaping");
        let copy = one.len();
        let mut text = escaped.clone();
        text.extend_from_slice(&escaped);
        BlockText {
            text: text.into(),
            starts,
            copy,
        }
    }

    /// The one text every block points into.
    pub fn text(&self) -> &Arc<[u8]> {
        &self.text
    }

    /// Words in the corpus.
    pub fn words(&self) -> usize {
        self.starts.len()
    }

    /// Words for `tokens` tokens by the rule of thumb, at least one.
    pub fn words_for(tokens: u32) -> usize {
        ((f64::from(tokens) * WORDS_PER_TOKEN).round() as usize).max(1)
    }

    /// Block `j`'s first `words` words (each followed by a space): the marker of its round
    /// (`"2. "`, none in round 0) and ranges of [`BlockText::text`].
    pub fn block(&self, j: u64, words: usize) -> (Option<String>, Vec<Range<usize>>) {
        let n = self.words() as u64;
        let round = j / n;
        let marker = (round > 0).then(|| format!("{round}. "));
        let start = self.starts[offset(j, self.words())];
        let mut ranges = Vec::new();
        let mut left = words;
        let mut at = start;
        while left > 0 {
            // Up to one copy's worth of words from `at` (the text is the corpus twice).
            let first = self.starts.partition_point(|&s| s < at % self.copy);
            let take = left.min(self.words());
            let end_word = first + take;
            let end = if end_word < self.words() {
                self.starts[end_word]
            } else {
                self.copy + self.starts[end_word - self.words()]
            };
            let begin = at % self.copy;
            let end = end.max(begin);
            ranges.push(begin..end.min(self.text.len()));
            left -= take;
            at = end % self.copy;
        }
        (marker, ranges)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Trace, TraceError> {
        Trace::parse(text, Path::new("t.jsonl"))
    }

    #[test]
    fn both_forms_read_and_refusals_name_the_line() {
        let t = parse(
            "{\"timestamp\": 0, \"input_length\": 600, \"output_length\": 5, \"hash_ids\": [1, 2]}\n\
             \n{\"timestamp\": 250.5, \"input_length\": 3, \"output_length\": 1}\n",
        )
        .unwrap();
        assert_eq!(t.entries.len(), 2);
        assert_eq!(t.entries[0].hash_ids[..], [1, 2]);
        assert_eq!(t.entries[1].line, 3);
        assert_eq!(t.times(2.0), [0.0, 0.12525]);
        assert!(t.check_blocks(512).is_ok());
        assert!(t.check_blocks(256).is_err());
        let e = t.check_blocks(600).unwrap_err().to_string();
        assert!(
            e.starts_with("trace t.jsonl: line 1: input_length 600"),
            "{e}"
        );

        let c = Trace::parse(
            "timestamp,input_tokens,output_tokens\n0,10,2\n# note\n5,20,3\n",
            Path::new("t.csv"),
        )
        .unwrap();
        assert!(c.csv);
        assert_eq!(c.entries.len(), 2);
        assert_eq!(
            (
                c.entries[1].timestamp_ms,
                c.entries[1].input_length,
                c.entries[1].line
            ),
            (5.0, 20, 4)
        );
        assert_eq!(
            Trace::parse("0,10,2\n", Path::new("x"))
                .unwrap()
                .entries
                .len(),
            1
        );

        let refused = |text: &str| parse(text).unwrap_err().to_string();
        assert_eq!(
            refused(
                "{\"timestamp\": 5, \"input_length\": 3, \"output_length\": 1}\n{\"timestamp\": 4, \"input_length\": 3, \"output_length\": 1}\n"
            ),
            "trace t.jsonl: line 2: timestamp 4 goes back (line 1 has 5)"
        );
        assert!(
            refused("{\"timestamp\": 0, \"input_length\": 0, \"output_length\": 1}")
                .contains("line 1: input_length must be")
        );
        assert!(
            refused("{\"timestamp\": 0, \"input_length\": 2, \"output_length\": 1}\n{oops")
                .contains("line 2: not JSON")
        );
        assert!(
            refused(
                "{\"timestamp\": 0, \"input_length\": 2, \"output_length\": 1, \"hash_ids\": [-1]}"
            )
            .contains("hash_ids must be whole")
        );
        assert!(refused("").ends_with("no requests"));
        assert!(
            Trace::parse("0,1,2\n1,x,3\n", Path::new("t.csv"))
                .unwrap_err()
                .to_string()
                .starts_with("trace t.csv: line 2: input_tokens is missing")
        );
        assert!(
            Trace::parse("0,1\n", Path::new("t.csv"))
                .unwrap_err()
                .to_string()
                .contains("line 1: expected timestamp,input_tokens,output_tokens")
        );
    }

    #[test]
    fn blocks_are_ranges_of_one_text_distinct_by_id() {
        let b = BlockText::new();
        let text = |j: u64, words: usize| {
            let (marker, ranges) = b.block(j, words);
            let mut s = marker.unwrap_or_default().into_bytes();
            for r in ranges {
                s.extend_from_slice(&b.text()[r]);
            }
            String::from_utf8(s).unwrap()
        };
        let n = b.words();
        for (j, words) in [(0, 5), (1, 384), (7, n), (3, 2 * n + 3), (n as u64 + 1, 10)] {
            let t = text(j, words);
            assert_eq!(
                t.split_whitespace().count(),
                words + usize::from(j >= n as u64),
                "{j} {words}"
            );
            assert!(t.ends_with(' '));
        }
        assert_eq!(text(4, 50), text(4, 50));
        assert_ne!(text(4, 50), text(5, 50));
        assert_ne!(text(1, 50), text(n as u64 + 1, 50), "a later round differs");
        // A shorter cut of a block is its beginning.
        assert!(text(9, 300).starts_with(&text(9, 120)));
    }
}
