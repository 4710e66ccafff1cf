//! Prompts from a data set: a file of JSON lines, a ShareGPT JSON array, or a list given inline;
//! and the order requests take them in ([`Order`]).
//!
//! Each line (or array element) is an object of one of these shapes; other members are ignored:
//! - `{"prompt": "..."}`: a completions prompt.
//! - `{"messages": [{"role": "user", "content": "..."}, ...]}`: a chat conversation, OpenAI's
//!   shape, sent as is (`content` must be a string; other message members are dropped).
//! - `{"conversations": [{"from": "human", "value": "..."}, {"from": "gpt", "value": "..."}]}`:
//!   ShareGPT. The first `human` (or `user`) turn is the prompt. With
//!   [`LoadOptions::output_len_from_dataset`], the length in tokens of the turn that answers it
//!   becomes the entry's `max_tokens`, counted by the tokenizer when there is one, else
//!   approximately ([`super::synth::approx_tokens`]).
//!
//! - `{"turns": ["...", ...]}` or `{"turns": [{"user": "...", "assistant": "..."}, ...]}`: a
//!   conversation's user turns, with the data set's answers when given. The first is the prompt.
//!
//! Any shape may carry `"max_tokens": N` (a whole number from 1), which wins over a reply's length.
//!
//! **Sessions** ([`LoadOptions::sessions`]): every entry becomes a [`Conversation`] instead, kept
//! in [`Dataset::conversations`]: ShareGPT's every human turn with the `gpt` turn that answers it,
//! `turns` as given, `messages`' user messages with the assistant message after each, and a
//! `prompt` as a conversation of one turn; at most the given number of turns each.
//!
//! A line that is not one of these shapes, or is not JSON, refuses the whole file before the run,
//! with its line number; the message quotes at most a short excerpt of the line
//! ([`super::excerpt`]). A ShareGPT conversation that is well formed but has nothing to send (no
//! human turn, or no reply when the reply's length is asked for, or an empty one) is skipped and
//! counted in [`Dataset::skipped`], as vLLM's benchmark skips them: the public ShareGPT files have
//! thousands. Unlike vLLM, no length filter is applied (vLLM drops prompts over 1024 tokens).
//!
//! Memory: the kept prompts (at most the file's size, less for ShareGPT, whose later turns are
//! dropped as each line is read unless the run is one of sessions) plus one line's worth of parsing. The file's size is checked before
//! reading, against [`LoadOptions::max_bytes`].

use std::cell::Cell;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, SeqAccess, Visitor};

use super::excerpt;
use super::lengths::LengthDist;
use super::synth::approx_tokens;
use super::tokenizer::Tokenizer;
use crate::rng::SplitMix64;

/// The default of `--max-dataset-bytes`: 1 GiB.
pub const DEFAULT_MAX_DATASET_BYTES: u64 = 1 << 30;

/// What one request sends.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Prompt {
    /// A completions prompt (also a data set's ShareGPT turn, or an inline prompt). For the chat
    /// API it becomes one user message.
    Text(Arc<str>),
    /// Chat messages, in order.
    Chat(Box<[Message]>),
}

/// One chat message.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Message {
    pub role: Box<str>,
    pub content: Box<str>,
}

impl Prompt {
    /// Tokens the prompt is worth, as a completions server counts them: for text, its tokens and
    /// the tokenizer's special tokens; for chat, the messages' contents and the special tokens
    /// once (the server's chat template adds more, which no `tokenizer.json` holds).
    pub fn count_tokens(&self, tokenizer: &Tokenizer) -> Result<usize, super::TokenizerError> {
        match self {
            Prompt::Text(text) => tokenizer.count_prompt(text),
            Prompt::Chat(messages) => messages
                .iter()
                .try_fold(tokenizer.special_tokens(), |sum, m| {
                    Ok(sum + tokenizer.count(&m.content)?)
                }),
        }
    }
}

/// One entry of a data set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub prompt: Prompt,
    /// From the line's `max_tokens`, or a ShareGPT reply's length; `None`: the run's default.
    pub max_tokens: Option<u32>,
    /// Where it came from: the 1-based line of the file (in an array, the line of the element's
    /// `{`), or the position in the inline list; for errors found after loading (a chat entry
    /// sent to the completions API).
    pub line: usize,
}

/// One turn of a conversation: what the user says, and the data set's answer when it has one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionTurn {
    pub user: Box<str>,
    pub answer: Option<Box<str>>,
}

/// A conversation of a data set, run as a session (one request per turn).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conversation {
    /// At least one.
    pub turns: Box<[SessionTurn]>,
    /// The 1-based line it came from.
    pub line: usize,
}

/// A loaded data set, in file order.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub entries: Vec<Entry>,
    /// With [`LoadOptions::sessions`]: the conversations (and no `entries`).
    pub conversations: Vec<Conversation>,
    /// Well-formed ShareGPT conversations with nothing to send (see the module docs).
    pub skipped: usize,
    /// The file's path, or `inline` for [`Dataset::from_prompts`]; for messages and the report.
    pub source: String,
}

/// How to load a data set file.
#[derive(Clone, Copy, Debug)]
pub struct LoadOptions<'a> {
    /// Files larger than this are refused before reading.
    pub max_bytes: u64,
    /// ShareGPT: a reply's length sets `max_tokens`.
    pub output_len_from_dataset: bool,
    /// Counts reply lengths exactly when given.
    pub tokenizer: Option<&'a Tokenizer>,
    /// Read conversations for a session run, at most this many turns each (`--max-turns`).
    pub sessions: Option<u32>,
}

impl Default for LoadOptions<'_> {
    fn default() -> Self {
        LoadOptions {
            max_bytes: DEFAULT_MAX_DATASET_BYTES,
            output_len_from_dataset: false,
            tokenizer: None,
            sessions: None,
        }
    }
}

/// Why a data set was refused. Every message names the file (or `inline`).
#[derive(Debug)]
pub enum DatasetError {
    /// Missing, unreadable, or not UTF-8 in a way serde cannot name.
    Io { source: String, error: io::Error },
    /// Over [`LoadOptions::max_bytes`].
    TooBig { source: String, size: u64, max: u64 },
    /// Nothing to send: no entries (or all of them skipped).
    Empty { source: String, skipped: usize },
    /// A line (1-based) that is not one of the accepted shapes.
    Line {
        source: String,
        line: usize,
        reason: String,
    },
}

impl fmt::Display for DatasetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatasetError::Io { source, error } => write!(f, "dataset {source}: {error}"),
            DatasetError::TooBig { source, size, max } => write!(
                f,
                "dataset {source}: {size} bytes, more than the {max} allowed \
                 (raise --max-dataset-bytes to load it)"
            ),
            DatasetError::Empty { source, skipped: 0 } => {
                write!(f, "dataset {source}: no prompts in it")
            }
            DatasetError::Empty { source, skipped } => write!(
                f,
                "dataset {source}: no prompts in it ({skipped} conversations skipped: no human \
                 turn, or no reply to take a length from)"
            ),
            DatasetError::Line {
                source,
                line,
                reason,
            } => write!(f, "dataset {source}: line {line}: {reason}"),
        }
    }
}

impl std::error::Error for DatasetError {}

/// What every accepted shape must have, said in errors.
const SHAPES: &str = "expected a JSON object with \"prompt\" (a string), \"messages\" (chat \
                      messages) or \"conversations\" (ShareGPT turns)";

impl Dataset {
    /// Loads a data set file: a ShareGPT-style JSON array when its first non-blank character is
    /// `[`, JSON lines otherwise (blank lines are skipped, and count in line numbers).
    pub fn load(path: impl AsRef<Path>, options: &LoadOptions) -> Result<Dataset, DatasetError> {
        let path = path.as_ref();
        let source = path.display().to_string();
        let io_err = |error| DatasetError::Io {
            source: source.clone(),
            error,
        };
        let file = File::open(path).map_err(io_err)?;
        let size = file.metadata().map_err(io_err)?.len();
        if size > options.max_bytes {
            return Err(DatasetError::TooBig {
                source,
                size,
                max: options.max_bytes,
            });
        }
        // The size check above misses pipes and files that grow; this catches them while reading.
        let mut reader = BufReader::with_capacity(
            1 << 16,
            Capped {
                inner: file,
                left: options.max_bytes,
            },
        );
        // A UTF-8 byte order mark, then whitespace, come before the first real character; the
        // lines they take still count.
        let mut blank_lines = 0;
        let first = loop {
            let buf = reader.fill_buf().map_err(io_err)?;
            let Some(&b) = buf.first() else { break None };
            if buf.starts_with(b"\xEF\xBB\xBF") {
                reader.consume(3);
            } else if b.is_ascii_whitespace() {
                blank_lines += usize::from(b == b'\n');
                reader.consume(1);
            } else {
                break Some(b);
            }
        };
        let mut loader = Loader {
            options,
            entries: Vec::new(),
            conversations: Vec::new(),
            skipped: 0,
        };
        let parsed = match first {
            None => Ok(()),
            Some(b'[') => loader.read_array(&mut reader, &source, blank_lines),
            Some(_) => loader.read_lines(&mut reader, &source, blank_lines),
        };
        parsed.map_err(|e| match e {
            DatasetError::Io { error, .. } if error.kind() == io::ErrorKind::FileTooLarge => {
                DatasetError::TooBig {
                    source: source.clone(),
                    size: options.max_bytes + 1,
                    max: options.max_bytes,
                }
            }
            e => e,
        })?;
        loader.finish(source)
    }

    /// A data set from prompts given inline (the API's `"prompts": [...]`). An empty list, or an
    /// empty prompt, is refused with its position (1-based).
    pub fn from_prompts<S: AsRef<str>>(prompts: &[S]) -> Result<Dataset, DatasetError> {
        let source = "inline".to_owned();
        let mut entries = Vec::with_capacity(prompts.len());
        for (i, p) in prompts.iter().enumerate() {
            if p.as_ref().is_empty() {
                return Err(DatasetError::Line {
                    source,
                    line: i + 1,
                    reason: "empty prompt".into(),
                });
            }
            entries.push(Entry {
                prompt: Prompt::Text(p.as_ref().into()),
                max_tokens: None,
                line: i + 1,
            });
        }
        if entries.is_empty() {
            return Err(DatasetError::Empty { source, skipped: 0 });
        }
        Ok(Dataset {
            entries,
            conversations: Vec::new(),
            skipped: 0,
            source,
        })
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Never true for a loaded data set (an empty one is refused); for completeness.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A reader that fails with `FileTooLarge` past `left` bytes.
struct Capped<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Read one byte past the cap, so a file of exactly the cap passes and one more fails.
        let room = (self.left + 1).min(buf.len() as u64) as usize;
        let n = self.inner.read(&mut buf[..room])?;
        if n as u64 > self.left {
            return Err(io::Error::from(io::ErrorKind::FileTooLarge));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

struct Loader<'o, 'a> {
    options: &'o LoadOptions<'a>,
    entries: Vec<Entry>,
    conversations: Vec<Conversation>,
    skipped: usize,
}

impl Loader<'_, '_> {
    /// JSON lines, the first `skipped` of them blank and already read.
    fn read_lines(
        &mut self,
        reader: &mut impl BufRead,
        source: &str,
        skipped: usize,
    ) -> Result<(), DatasetError> {
        let mut line = Vec::new();
        let mut number = skipped;
        loop {
            line.clear();
            let n = reader
                .read_until(b'\n', &mut line)
                .map_err(|error| DatasetError::Io {
                    source: source.to_owned(),
                    error,
                })?;
            if n == 0 {
                return Ok(());
            }
            number += 1;
            let text = line.trim_ascii();
            if text.is_empty() {
                continue;
            }
            let refuse = |reason: String| DatasetError::Line {
                source: source.to_owned(),
                line: number,
                reason,
            };
            if text.first() != Some(&b'{') {
                return Err(refuse(SHAPES.into()));
            }
            let raw: RawEntry =
                serde_json::from_slice(text).map_err(|e| refuse(json_reason(&e)))?;
            self.keep(raw, number).map_err(refuse)?;
        }
    }

    /// A whole-file JSON array, after `skipped` blank lines.
    fn read_array(
        &mut self,
        reader: &mut impl Read,
        source: &str,
        skipped: usize,
    ) -> Result<(), DatasetError> {
        // serde_json reads a reader byte by byte, so counting the newlines that pass gives the
        // line it is on when an element starts.
        let newlines = Cell::new(skipped);
        let mut de = serde_json::Deserializer::from_reader(Lines {
            inner: reader,
            newlines: &newlines,
        });
        let mut refused = None;
        let result = ArraySeed {
            loader: self,
            newlines: &newlines,
            refused: &mut refused,
        }
        .deserialize(&mut de)
        .and_then(|()| de.end());
        let Err(e) = result else { return Ok(()) };
        let source = source.to_owned();
        Err(match refused {
            Some((line, reason)) => DatasetError::Line {
                source,
                line,
                reason,
            },
            None if e.is_io() => DatasetError::Io {
                source,
                error: io::Error::from(e),
            },
            None => DatasetError::Line {
                source,
                line: e.line() + skipped,
                reason: json_reason(&e),
            },
        })
    }

    /// Turns a parsed entry into a kept [`Entry`], or counts it as skipped; a reason on refusal.
    fn keep(&mut self, raw: RawEntry, line: usize) -> Result<(), String> {
        if let Some(max_turns) = self.options.sessions {
            return self.keep_conversation(raw, line, max_turns);
        }
        let raw = match raw.turns {
            None => raw,
            Some(turns) if raw.prompt.is_none() && raw.messages.is_none() => {
                let turns = turns_of(turns)?;
                RawEntry {
                    conversations: Some(ShareGpt::from_turns(turns)),
                    turns: None,
                    ..raw
                }
            }
            Some(_) => return Err(MORE_THAN_ONE.into()),
        };
        let max_tokens = match raw.max_tokens {
            None => None,
            Some(n) if (1..=u32::MAX as u64).contains(&n) => Some(n as u32),
            Some(_) => return Err("\"max_tokens\" must be a whole number from 1".into()),
        };
        let prompt = match (raw.prompt, raw.messages, raw.conversations) {
            (Some(p), None, None) => {
                if p.is_empty() {
                    return Err("empty \"prompt\"".into());
                }
                Prompt::Text(p.into())
            }
            (None, Some(messages), None) => {
                if messages.is_empty() {
                    return Err("empty \"messages\"".into());
                }
                Prompt::Chat(messages.into_iter().map(Message::from).collect())
            }
            (None, None, Some(conversation)) => {
                let (prompt, reply) = conversation.first_exchange();
                let Some(prompt) = prompt.filter(|p| !p.is_empty()) else {
                    self.skipped += 1;
                    return Ok(());
                };
                let mut max_tokens = max_tokens;
                if self.options.output_len_from_dataset && max_tokens.is_none() {
                    let tokens = match (reply, self.options.tokenizer) {
                        (None, _) => 0,
                        (Some(r), Some(t)) => t.count(r).map_err(|e| e.to_string())?,
                        (Some(r), None) => approx_tokens(r),
                    };
                    if tokens == 0 {
                        self.skipped += 1;
                        return Ok(());
                    }
                    max_tokens = Some(tokens.min(u32::MAX as usize) as u32);
                }
                self.entries.push(Entry {
                    prompt: Prompt::Text(prompt.into()),
                    max_tokens,
                    line,
                });
                return Ok(());
            }
            (None, None, None) => return Err(SHAPES.into()),
            _ => return Err(MORE_THAN_ONE.into()),
        };
        self.entries.push(Entry {
            prompt,
            max_tokens,
            line,
        });
        Ok(())
    }

    /// A session run's entry: a [`Conversation`] of at most `max_turns` turns, or counted as
    /// skipped when it has no user turn.
    fn keep_conversation(
        &mut self,
        raw: RawEntry,
        line: usize,
        max_turns: u32,
    ) -> Result<(), String> {
        let mut turns = match (raw.prompt, raw.messages, raw.conversations, raw.turns) {
            (Some(p), None, None, None) => {
                if p.is_empty() {
                    return Err("empty \"prompt\"".into());
                }
                vec![SessionTurn {
                    user: p.into(),
                    answer: None,
                }]
            }
            (None, Some(messages), None, None) => {
                if messages.is_empty() {
                    return Err("empty \"messages\"".into());
                }
                pair_turns(messages.into_iter().map(|m| (m.role == "user", m.content)))
            }
            (None, None, Some(c), None) => pair_turns(
                c.turns
                    .into_iter()
                    .filter(|(from, _)| from != "system")
                    .map(|(from, value)| (is_human(&from), value)),
            ),
            (None, None, None, Some(turns)) => turns_of(turns)?,
            (None, None, None, None) => return Err(SESSION_SHAPES.into()),
            _ => return Err(MORE_THAN_ONE.into()),
        };
        turns.truncate(max_turns as usize);
        if turns.is_empty() {
            self.skipped += 1;
            return Ok(());
        }
        self.conversations.push(Conversation {
            turns: turns.into(),
            line,
        });
        Ok(())
    }

    fn finish(self, source: String) -> Result<Dataset, DatasetError> {
        if self.options.sessions.is_some() {
            if self.conversations.is_empty() {
                return Err(DatasetError::Empty {
                    source,
                    skipped: self.skipped,
                });
            }
            return Ok(Dataset {
                entries: Vec::new(),
                conversations: self.conversations,
                skipped: self.skipped,
                source,
            });
        }
        if self.entries.is_empty() {
            return Err(DatasetError::Empty {
                source,
                skipped: self.skipped,
            });
        }
        Ok(Dataset {
            entries: self.entries,
            conversations: Vec::new(),
            skipped: self.skipped,
            source,
        })
    }
}

/// serde_json's message without its " at line L column C" (we say the line ourselves), with the
/// column kept when there is one, and what it quotes of the line cut short ([`excerpt`]): the
/// API server answers with this.
fn json_reason(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let message = excerpt::bounded(match text.rfind(" at line ") {
        Some(at) => &text[..at],
        None => &text,
    });
    if e.column() > 0 {
        format!("{message} (column {})", e.column())
    } else {
        message.to_owned()
    }
}

/// Counts the newlines read through it.
struct Lines<'c, R> {
    inner: R,
    newlines: &'c Cell<usize>,
}

impl<R: Read> Read for Lines<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let seen = buf[..n].iter().filter(|&&b| b == b'\n').count();
        self.newlines.set(self.newlines.get() + seen);
        Ok(n)
    }
}

/// Reads a whole-file JSON array element by element into the loader, so that no element outlives
/// its own parse (a ShareGPT file keeps only first turns). A refused element leaves its line and
/// reason in `refused`.
struct ArraySeed<'l, 'o, 'a, 'c> {
    loader: &'l mut Loader<'o, 'a>,
    newlines: &'c Cell<usize>,
    refused: &'l mut Option<(usize, String)>,
}

impl<'de> DeserializeSeed<'de> for ArraySeed<'_, '_, '_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ArraySeed<'_, '_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of entries")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        let element = ElementSeed {
            newlines: self.newlines,
        };
        while let Some((raw, line)) = seq.next_element_seed(element)? {
            index += 1;
            if let Err(reason) = self.loader.keep(raw, line) {
                let reason = format!("entry {index}: {reason}");
                *self.refused = Some((line, reason.clone()));
                return Err(de::Error::custom(reason));
            }
        }
        Ok(())
    }
}

/// An array element, which must be an object (a derived struct would take an array by position),
/// with the line its `{` is on.
#[derive(Clone, Copy)]
struct ElementSeed<'c> {
    newlines: &'c Cell<usize>,
}

impl<'de> DeserializeSeed<'de> for ElementSeed<'_> {
    type Value = (RawEntry, usize);

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ElementSeed<'_> {
    type Value = (RawEntry, usize);

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(SHAPES.trim_start_matches("expected "))
    }

    fn visit_map<M: de::MapAccess<'de>>(self, map: M) -> Result<Self::Value, M::Error> {
        // The `{` has just been read: the newlines so far end the lines before it.
        let line = self.newlines.get() + 1;
        let raw = RawEntry::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok((raw, line))
    }
}

#[derive(Deserialize)]
struct RawEntry {
    #[serde(default)]
    prompt: Option<String>,
    #[serde(default)]
    messages: Option<Vec<RawMessage>>,
    #[serde(default)]
    conversations: Option<ShareGpt>,
    #[serde(default)]
    turns: Option<Vec<RawTurn>>,
    #[serde(default)]
    max_tokens: Option<u64>,
}

/// One of `"turns"`: the user's text, or the user's text with the data set's answer.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawTurn {
    User(String),
    Pair {
        user: String,
        #[serde(default)]
        assistant: Option<String>,
    },
}

const MORE_THAN_ONE: &str =
    "more than one of \"prompt\", \"messages\", \"conversations\" and \"turns\"";

/// What a session run accepts, said in errors.
const SESSION_SHAPES: &str = "expected a JSON object with \"conversations\" (ShareGPT turns), \
                              \"turns\" (user turns), \"messages\" (chat messages) or \"prompt\"";

/// `"turns"` as session turns; refused when empty or when a turn's text is.
fn turns_of(raw: Vec<RawTurn>) -> Result<Vec<SessionTurn>, String> {
    if raw.is_empty() {
        return Err("empty \"turns\"".into());
    }
    raw.into_iter()
        .enumerate()
        .map(|(i, t)| {
            let (user, answer) = match t {
                RawTurn::User(u) => (u, None),
                RawTurn::Pair { user, assistant } => (user, assistant),
            };
            if user.is_empty() {
                return Err(format!("turn {}: empty user text", i + 1));
            }
            Ok(SessionTurn {
                user: user.into(),
                answer: answer.filter(|a| !a.is_empty()).map(Into::into),
            })
        })
        .collect()
}

/// Turns from (is the user's, text) in order: each user text opens a turn, the first other
/// text after it is its answer; texts before the first user text, and empty ones, are dropped.
fn pair_turns(texts: impl Iterator<Item = (bool, String)>) -> Vec<SessionTurn> {
    let mut turns: Vec<SessionTurn> = Vec::new();
    let mut answered = true;
    for (user, text) in texts {
        if text.is_empty() {
            continue;
        }
        if user {
            turns.push(SessionTurn {
                user: text.into(),
                answer: None,
            });
            answered = false;
        } else if !answered && let Some(last) = turns.last_mut() {
            last.answer = Some(text.into());
            answered = true;
        }
    }
    turns
}

#[derive(Deserialize)]
struct RawMessage {
    role: String,
    content: String,
}

impl From<RawMessage> for Message {
    fn from(m: RawMessage) -> Message {
        Message {
            role: m.role.into(),
            content: m.content.into(),
        }
    }
}

/// A ShareGPT conversation's turns, (`from`, `value`) in order; a line's conversation lives only
/// while its line is read (a prompt run keeps the first exchange, a session run every turn).
struct ShareGpt {
    turns: Vec<(String, String)>,
}

impl ShareGpt {
    /// `"turns"` read as a conversation (answers as `gpt` turns).
    fn from_turns(turns: Vec<SessionTurn>) -> ShareGpt {
        let mut out = Vec::with_capacity(turns.len() * 2);
        for t in turns {
            out.push(("human".to_owned(), t.user.into()));
            if let Some(a) = t.answer {
                out.push(("gpt".to_owned(), a.into()));
            }
        }
        ShareGpt { turns: out }
    }

    /// The first human turn, and the turn right after it when that is an answer.
    fn first_exchange(&self) -> (Option<&str>, Option<&str>) {
        let Some(at) = self.turns.iter().position(|(from, _)| is_human(from)) else {
            return (None, None);
        };
        let reply = self
            .turns
            .get(at + 1)
            .filter(|(from, _)| !is_human(from) && from != "system")
            .map(|(_, v)| v.as_str());
        (Some(self.turns[at].1.as_str()), reply)
    }
}

#[derive(Deserialize)]
struct Turn {
    from: String,
    value: String,
}

fn is_human(from: &str) -> bool {
    from == "human" || from == "user"
}

impl<'de> Deserialize<'de> for ShareGpt {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ShareGpt;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of {\"from\", \"value\"} turns")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ShareGpt, A::Error> {
                let mut turns = Vec::new();
                while let Some(turn) = seq.next_element::<Turn>()? {
                    turns.push((turn.from, turn.value));
                }
                Ok(ShareGpt { turns })
            }
        }
        d.deserialize_seq(V)
    }
}

/// Gives every entry without a `max_tokens` one drawn from `output` with `SplitMix64::new(seed)`,
/// in entry order (the `i`-th entry without one takes the `i`-th draw), so the same data set and
/// seed give the same lengths. Entries that have one (their line's, or a ShareGPT reply's) keep it.
pub fn draw_max_tokens(entries: &mut [Entry], output: &LengthDist, seed: u64) {
    let mut rng = SplitMix64::new(seed);
    for entry in entries.iter_mut().filter(|e| e.max_tokens.is_none()) {
        entry.max_tokens = Some(output.draw(&mut rng));
    }
}

/// The order requests take entries in: request `i` sends entry [`Order::entry_for`]`(i)`. Past the
/// last entry it starts over, in the same order.
#[derive(Clone, Debug)]
pub struct Order {
    len: usize,
    /// `None`: file order.
    permutation: Option<Box<[u32]>>,
}

impl Order {
    /// File order.
    pub fn sequential(len: usize) -> Order {
        Order {
            len: len.max(1),
            permutation: None,
        }
    }

    /// A seeded shuffle (Fisher–Yates with [`SplitMix64`]): the same seed gives the same order.
    /// Data sets are far below 2^32 entries (the byte cap sees to it); more is clamped.
    pub fn shuffled(len: usize, seed: u64) -> Order {
        let len = len.clamp(1, u32::MAX as usize);
        let mut p: Box<[u32]> = (0..len as u32).collect();
        let mut rng = SplitMix64::new(seed);
        for i in (1..len).rev() {
            p.swap(i, rng.below(i + 1));
        }
        Order {
            len,
            permutation: Some(p),
        }
    }

    /// The entry request `request` sends: O(1), no allocation.
    pub fn entry_for(&self, request: u64) -> usize {
        let at = (request % self.len as u64) as usize;
        match &self.permutation {
            None => at,
            Some(p) => p[at] as usize,
        }
    }

    /// How many entries it orders.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Never true: an order has at least one entry.
    pub fn is_empty(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn file(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pacer-ds-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn sessions(max_turns: u32) -> LoadOptions<'static> {
        LoadOptions {
            sessions: Some(max_turns),
            ..LoadOptions::default()
        }
    }

    fn turns(c: &Conversation) -> Vec<(&str, Option<&str>)> {
        c.turns
            .iter()
            .map(|t| (&*t.user, t.answer.as_deref()))
            .collect()
    }

    #[test]
    fn conversations_from_every_shape_capped_at_max_turns() {
        let text = concat!(
            r#"{"conversations": [{"from": "system", "value": "s"}, {"from": "human", "value": "a"}, {"from": "gpt", "value": "A"}, {"from": "human", "value": "b"}, {"from": "gpt", "value": "B"}, {"from": "human", "value": "c"}]}"#,
            "\n",
            r#"{"turns": ["x", "y"]}"#,
            "\n\n",
            r#"{"turns": [{"user": "p", "assistant": "P"}, {"user": "q"}]}"#,
            "\n",
            r#"{"messages": [{"role": "user", "content": "m"}, {"role": "assistant", "content": "M"}]}"#,
            "\n",
            r#"{"prompt": "one"}"#,
            "\n",
            r#"{"conversations": [{"from": "gpt", "value": "no human"}]}"#,
            "\n",
        );
        let path = file("c.jsonl", text);
        let d = Dataset::load(&path, &sessions(2)).unwrap();
        assert!(d.entries.is_empty());
        assert_eq!(d.skipped, 1, "the conversation without a human turn");
        let got: Vec<_> = d.conversations.iter().map(turns).collect();
        assert_eq!(
            got,
            vec![
                vec![("a", Some("A")), ("b", Some("B"))],
                vec![("x", None), ("y", None)],
                vec![("p", Some("P")), ("q", None)],
                vec![("m", Some("M"))],
                vec![("one", None)],
            ]
        );
        let lines: Vec<usize> = d.conversations.iter().map(|c| c.line).collect();
        assert_eq!(lines, [1, 2, 4, 5, 6]);
        // Every turn, uncapped; and a ShareGPT array.
        let d = Dataset::load(&path, &sessions(8)).unwrap();
        assert_eq!(d.conversations[0].turns.len(), 3);
        let array = file(
            "a.json",
            r#"[{"conversations": [{"from": "human", "value": "h1"}, {"from": "gpt", "value": "g1"}, {"from": "human", "value": "h2"}]}]"#,
        );
        let d = Dataset::load(&array, &sessions(8)).unwrap();
        assert_eq!(
            turns(&d.conversations[0]),
            [("h1", Some("g1")), ("h2", None)]
        );
        // Without sessions, a "turns" line is a prompt: its first turn.
        let d = Dataset::load(&path, &LoadOptions::default()).unwrap();
        assert_eq!(d.entries[1].prompt, Prompt::Text("x".into()));
    }

    #[test]
    fn bad_conversation_lines_are_refused_with_path_and_line() {
        for (text, line, says) in [
            ("{\"turns\": []}\n", 1, "empty \"turns\""),
            (
                "{\"turns\": [\"a\"]}\n{\"turns\": [\"\"]}\n",
                2,
                "turn 1: empty user text",
            ),
            ("\n{\"turns\": [1]}\n", 2, "did not match any variant"),
            ("{\"turns\": \"a\"}\n", 1, "invalid type"),
            (
                "{\"turns\": [\"a\"], \"prompt\": \"b\"}\n",
                1,
                "more than one of",
            ),
            ("{\"other\": 1}\n", 1, "\"turns\" (user turns)"),
            ("[1, 2]\n", 1, "not JSON"),
        ] {
            let path = file("bad.jsonl", text);
            let e = Dataset::load(&path, &sessions(4)).unwrap_err().to_string();
            let at = format!("dataset {}: line {line}: ", path.display());
            // "[1, 2]" is not an object: the array form refuses its element.
            if says == "not JSON" {
                assert!(
                    e.contains(&format!("dataset {}: line 1", path.display())),
                    "{e}"
                );
                continue;
            }
            assert!(e.starts_with(&at) && e.contains(says), "{text:?}: {e}");
        }
        let path = file("none.jsonl", "{\"conversations\": []}\n");
        let e = Dataset::load(&path, &sessions(4)).unwrap_err().to_string();
        assert!(
            e.contains("no prompts") && e.contains("1 conversations skipped"),
            "{e}"
        );
    }
}
