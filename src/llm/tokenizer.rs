//! The model's tokenizer, from a Hugging Face `tokenizer.json` the user gives: exact prompt lengths
//! for synthetic prompts ([`super::synth`]) and token counts of prompts and streamed text.
//!
//! A thin wrapper over the `tokenizers` crate that owns loading (with the path in every error),
//! and the counting rules the rest of the crate relies on:
//! - [`Tokenizer::count`] counts a text's own tokens, without special tokens: what a streamed
//!   answer is worth.
//! - [`Tokenizer::count_prompt`] adds what the tokenizer's post-processor adds to one sequence
//!   (Llama's `<|begin_of_text|>`, BERT's `[CLS]`/`[SEP]`): what a completions server reports as
//!   `usage.prompt_tokens`, and what vLLM's benchmark means by an input length. A chat server
//!   also applies the model's chat template, which adds more; that template is not in
//!   `tokenizer.json`, so chat prompt counts are the messages' text only.
//!
//! Truncation and padding saved in the file are switched off at load: a count must be the
//! text's, never a `max_length`.
//!
//! The file is read once before a run; nothing here runs on the hot path, and nothing downloads.

use std::fmt;
use std::path::{Path, PathBuf};

/// Largest `tokenizer.json` read. The biggest common ones (Gemma's, with a 256k vocabulary) are
/// about 35 MB; this is a guard against being pointed at the wrong file, not a tight budget.
pub const MAX_TOKENIZER_BYTES: u64 = 256 << 20;

/// A loaded tokenizer. `Send + Sync`: one can be shared by every thread of a run.
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    /// Tokens the post-processor adds around one sequence.
    special: usize,
    path: PathBuf,
}

impl fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokenizer")
            .field("path", &self.path)
            .field("special", &self.special)
            .finish_non_exhaustive()
    }
}

/// Why a tokenizer could not be loaded or used; the message names the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenizerError {
    pub path: PathBuf,
    pub reason: String,
}

impl fmt::Display for TokenizerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tokenizer {}: {}", self.path.display(), self.reason)
    }
}

impl std::error::Error for TokenizerError {}

impl Tokenizer {
    /// Loads a Hugging Face `tokenizer.json`. A missing or unreadable file, one over
    /// [`MAX_TOKENIZER_BYTES`], or one that is not a tokenizer is refused with the path named.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Tokenizer, TokenizerError> {
        let path = path.as_ref();
        let fail = |reason: String| TokenizerError {
            path: path.to_owned(),
            reason,
        };
        let size = std::fs::metadata(path)
            .map_err(|e| fail(e.to_string()))?
            .len();
        if size > MAX_TOKENIZER_BYTES {
            return Err(fail(format!(
                "{size} bytes, more than the {MAX_TOKENIZER_BYTES} a tokenizer.json may have"
            )));
        }
        let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
        Tokenizer::from_bytes(&bytes, path)
    }

    /// Loads a `tokenizer.json` already in memory; `path` only names it in errors.
    pub fn from_bytes(bytes: &[u8], path: impl AsRef<Path>) -> Result<Tokenizer, TokenizerError> {
        let path = path.as_ref().to_owned();
        let mut inner = tokenizers::Tokenizer::from_bytes(bytes).map_err(|e| TokenizerError {
            path: path.clone(),
            // serde quotes what it refused: keep the file's text short (the API answers this).
            reason: format!(
                "not a Hugging Face tokenizer.json: {}",
                super::excerpt::bounded(&e.to_string())
            ),
        })?;
        // A saved truncation would cap every count; saved padding would inflate short ones.
        inner
            .with_truncation(None)
            .map_err(|e| TokenizerError {
                path: path.clone(),
                reason: e.to_string(),
            })?
            .with_padding(None);
        let special = inner
            .get_post_processor()
            .map_or(0, |p| tokenizers::PostProcessor::added_tokens(p, false));
        Ok(Tokenizer {
            inner,
            special,
            path,
        })
    }

    /// The file it came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Tokens the post-processor adds to one sequence (1 for Llama's BOS, 0 for GPT-2's).
    pub fn special_tokens(&self) -> usize {
        self.special
    }

    /// The ids of `text` alone, without special tokens.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        self.inner
            .encode_fast(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| self.error(e))
    }

    /// The text of `ids` (special tokens skipped).
    pub fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        self.inner.decode(ids, true).map_err(|e| self.error(e))
    }

    /// The positions, among `text`'s ids ([`Tokenizer::encode`]), of the tokens that start a
    /// word (the first, and each one right after whitespace): where a cut can begin without
    /// gluing onto the text before it.
    pub fn word_starts(&self, text: &str) -> Result<Vec<usize>, TokenizerError> {
        self.word_starts_counted(text).map(|(starts, _)| starts)
    }

    /// [`Tokenizer::word_starts`] and the number of `text`'s ids ([`Tokenizer::count`]), from
    /// one encoding.
    pub fn word_starts_counted(&self, text: &str) -> Result<(Vec<usize>, usize), TokenizerError> {
        let encoding = self.inner.encode(text, false).map_err(|e| self.error(e))?;
        let bytes = text.as_bytes();
        let blank = |at: usize| bytes.get(at).is_some_and(u8::is_ascii_whitespace);
        let mut last = None;
        let mut starts = Vec::new();
        for (k, &(start, _)) in encoding.get_offsets().iter().enumerate() {
            // Pieces of one word share no start with the word's first token but may repeat it
            // (byte-level splits of one character); keep the first.
            if last != Some(start) && (start == 0 || blank(start - 1) || blank(start)) {
                starts.push(k);
            }
            last = Some(start);
        }
        Ok((starts, encoding.len()))
    }

    /// Tokens in `text` alone, without special tokens: a streamed answer's worth.
    pub fn count(&self, text: &str) -> Result<usize, TokenizerError> {
        self.inner
            .encode_fast(text, false)
            .map(|e| e.len())
            .map_err(|e| self.error(e))
    }

    /// Tokens a completions server counts for `text` as a prompt: the text's plus the special
    /// tokens the post-processor adds.
    pub fn count_prompt(&self, text: &str) -> Result<usize, TokenizerError> {
        self.inner
            .encode_fast(text, true)
            .map(|e| e.len())
            .map_err(|e| self.error(e))
    }

    fn error(&self, e: impl fmt::Display) -> TokenizerError {
        TokenizerError {
            path: self.path.clone(),
            reason: e.to_string(),
        }
    }
}
