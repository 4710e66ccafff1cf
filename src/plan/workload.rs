//! The prompts of an LLM run, made into request bytes before it starts: from a data set, from
//! prompts given inline, synthetic ones of drawn lengths, or the one `prompt` (repeated with
//! drawn `max_tokens` when `output_tokens` varies). What this module owns is the wiring: which
//! of those a run asks for, the refusals (the path or line named), the seeds, one request's
//! bytes per distinct body, the table that says which one request `i` sends ([`Requests`]), and
//! the tokenizer's count of each prompt. Reading files, cutting prompts and building payloads
//! are [`crate::llm`]'s.
//!
//! Memory: the kept prompts (at most the data set's size), then one request per distinct body
//! (the body plus the request line and headers), 4 bytes per entry for the request table and 8
//! per distinct request for prompt counts. While the bodies become requests both exist for a
//! moment (each body is dropped as its request is made), so the peak is about twice the data set.
//!
//! Seeds: every random choice derives its own stream from the run's seed ([`derive`]): input
//! lengths, output lengths and the order do not shift each other, and the same seed, data set and
//! flags send the same requests in the same order.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::checks::Limits;
use super::defaults;
use super::input::{Input, WorkloadInput};
use super::request::Shaped;
use super::{PlanError, invalid};
use crate::http1::{Segment, Segments, build_head, build_request};
use crate::llm::bodies::{escape, frame};
use crate::llm::{
    Bodies, BodyTemplate, Dataset, Entry, LengthDist, LoadOptions, Order, Prompt, Synthesizer,
    Tokenizer, draw_max_tokens,
};
use crate::rng::SplitMix64;

/// The request bytes of a run: one per distinct body, and which one request `i` sends. A
/// request is a few [`Segments`]: prompt text that several requests send (one prompt under
/// drawn `max_tokens`, a shared prefix, a trace's blocks) is held once and pointed into. Debug
/// prints only sizes: the bytes carry the bearer token.
#[derive(Clone)]
pub struct Requests {
    distinct: Vec<Segments>,
    /// Request `i` sends `distinct[slot[i % slot.len()]]`: the order and the entry-to-body map
    /// folded into one lookup.
    slot: Box<[u32]>,
    /// The tokenizer's count of each distinct request's prompt (None: no tokenizer, or a prompt
    /// the run never sends).
    prompt_tokens: Option<Box<[Option<u32>]>>,
    /// The prefix group of each distinct request's prompt (`--prefix-groups`; None without).
    groups: Option<Box<[u32]>>,
}

impl fmt::Debug for Requests {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Requests({} distinct, {} bytes, {} slots)",
            self.distinct.len(),
            self.total_bytes(),
            self.slot.len()
        )
    }
}

impl Requests {
    /// Every request the same.
    pub fn single(bytes: Vec<u8>) -> Requests {
        Requests {
            distinct: vec![bytes.into()],
            slot: Box::new([0]),
            prompt_tokens: None,
            groups: None,
        }
    }

    /// Requests that send `distinct[slot[i % slot.len()]]` (at least one of each, every slot
    /// in range: the caller's to ensure).
    pub(super) fn spread(distinct: Vec<Segments>, slot: Box<[u32]>) -> Requests {
        debug_assert!(slot.iter().all(|&s| (s as usize) < distinct.len()));
        Requests {
            distinct,
            slot,
            prompt_tokens: None,
            groups: None,
        }
    }

    /// The tokenizer's count of each distinct request's prompt.
    pub(super) fn set_prompt_tokens(&mut self, counts: Box<[Option<u32>]>) {
        debug_assert_eq!(counts.len(), self.distinct.len());
        self.prompt_tokens = Some(counts);
    }

    /// Which distinct request request `index` sends: O(1), no allocation.
    #[inline]
    fn which(&self, index: u64) -> usize {
        let at = if self.slot.len() == 1 {
            0
        } else {
            (index % self.slot.len() as u64) as usize
        };
        self.slot[at] as usize
    }

    /// The bytes of request `index`.
    #[inline]
    pub fn for_index(&self, index: u64) -> &Segments {
        &self.distinct[self.which(index)]
    }

    /// The tokenizer's count of the prompt request `index` sends.
    #[inline]
    pub fn prompt_tokens(&self, index: u64) -> Option<u32> {
        self.prompt_tokens.as_ref()?[self.which(index)]
    }

    /// The prefix group of the prompt request `index` sends (`--prefix-groups`), for each
    /// slot of [`Requests::slots`] in turn: request `i`'s is `[i % len]`. None without groups.
    pub fn groups_by_slot(&self) -> Option<Box<[u32]>> {
        let groups = self.groups.as_ref()?;
        Some(self.slot.iter().map(|&d| groups[d as usize]).collect())
    }

    /// The first request (every request's method and path are the same).
    pub fn first(&self) -> &Segments {
        self.for_index(0)
    }

    /// The method every request is sent with (the first word of the first request), or `?`.
    pub fn method(&self) -> String {
        let head = self.first().prefix(32);
        let word = head.split(|&b| b == b' ').next().unwrap_or(b"?");
        std::str::from_utf8(word).unwrap_or("?").to_string()
    }

    /// The distinct requests.
    pub fn distinct(&self) -> &[Segments] {
        &self.distinct
    }

    /// Which distinct request each request sends, cycled: request `i` sends slot `i % len`.
    pub fn slots(&self) -> &[u32] {
        &self.slot
    }

    /// Bytes held by the distinct requests: each request's own bytes, and each text they share
    /// once however many requests point into it.
    pub fn total_bytes(&self) -> usize {
        let mut seen = std::collections::HashSet::new();
        let mut total = 0;
        for r in &self.distinct {
            match r {
                Segments::One(b) => total += b.len(),
                Segments::Many { .. } => {
                    for t in r.texts() {
                        if seen.insert(Arc::as_ptr(t) as *const u8 as usize) {
                            total += t.len();
                        }
                    }
                }
            }
        }
        total
    }

    /// Bytes on the wire if every distinct request were sent once: what the requests would
    /// hold if each were copied whole.
    pub fn wire_bytes(&self) -> usize {
        self.distinct.iter().map(Segments::len).sum()
    }
}

/// Where a run's prompts came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PromptSource {
    /// A data set file.
    Dataset(PathBuf),
    /// The API's inline `prompts`.
    Inline,
    /// Cut from the built-in corpus to drawn lengths.
    Synthetic,
    /// The one `prompt`.
    Prompt,
    /// A replayed trace (`--trace`).
    Trace(PathBuf),
}

impl PromptSource {
    /// The config echo's word.
    pub fn name(&self) -> &'static str {
        match self {
            PromptSource::Dataset(_) => "dataset",
            PromptSource::Inline => "inline",
            PromptSource::Synthetic => "synthetic",
            PromptSource::Prompt => "prompt",
            PromptSource::Trace(_) => "trace",
        }
    }
}

/// What a run's workload is, for the config echo and the settings line.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkloadInfo {
    pub source: PromptSource,
    /// Entries the requests cycle through (data set lines kept, inline prompts, synthetic ones).
    pub entries: usize,
    /// ShareGPT conversations skipped (nothing to send).
    pub skipped: usize,
    pub shuffled: bool,
    /// Distinct request bodies built.
    pub distinct_requests: usize,
    pub input_tokens: Option<LengthDist>,
    pub output_tokens: Option<LengthDist>,
    pub output_len_from_dataset: bool,
    pub prefix_tokens: u32,
    /// Distinct prefixes, prompts spread round robin (1 without `--prefix-groups`).
    pub prefix_groups: u32,
    pub tokenizer: Option<PathBuf>,
    /// The seed the workload's random choices derive from, when it made any.
    pub seed: Option<u64>,
    /// The first request's payload, its prompt (or messages) replaced by a note: what every
    /// request shares, without a data set's text.
    pub payload: Map<String, Value>,
    /// A trace replay's speed, block size and distinct blocks (`--trace`).
    pub replay: Option<ReplayInfo>,
    /// Bytes the requests hold (shared text once) and would hold copied whole.
    pub held_bytes: usize,
    pub wire_bytes: usize,
}

/// What the config echo says of a trace replay.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplayInfo {
    pub speed: f64,
    pub block_tokens: u32,
    /// Distinct `hash_ids` in the trace: blocks built once, shared by every request naming them.
    pub blocks: usize,
}

impl WorkloadInfo {
    /// A workload of `entries` from `source` that draws nothing and shares no prefix; the
    /// kinds that do set their fields over it. Its sizes come from the requests once they are
    /// built ([`WorkloadInfo::sized`]).
    fn of(source: PromptSource, entries: usize, tokenizer: Option<PathBuf>) -> WorkloadInfo {
        WorkloadInfo {
            source,
            entries,
            skipped: 0,
            shuffled: false,
            distinct_requests: entries,
            input_tokens: None,
            output_tokens: None,
            output_len_from_dataset: false,
            prefix_tokens: 0,
            prefix_groups: 1,
            tokenizer,
            seed: None,
            payload: Map::new(),
            replay: None,
            held_bytes: 0,
            wire_bytes: 0,
        }
    }

    /// With the bytes `requests` hold (shared text once) and would hold copied whole.
    fn sized(self, requests: &Requests) -> WorkloadInfo {
        WorkloadInfo {
            held_bytes: requests.total_bytes(),
            wire_bytes: requests.wire_bytes(),
            ..self
        }
    }

    /// Lengths counted by the model's tokenizer, or by the words-per-token rule of thumb.
    pub fn token_lengths(&self) -> &'static str {
        if self.tokenizer.is_some() {
            "exact"
        } else {
            "approximate"
        }
    }
}

/// A run's workload, built.
pub(super) struct Workload {
    pub requests: Requests,
    /// A session run's conversations and turn requests (`--sessions`).
    pub sessions: Option<super::session::SessionPlan>,
    pub tokenizer: Option<Arc<Tokenizer>>,
    pub info: WorkloadInfo,
}

/// Seed streams, one per random choice.
const INPUT_LENGTHS: u64 = 1;
const OUTPUT_LENGTHS: u64 = 2;
const ORDER: u64 = 3;
const SESSION_IDS: u64 = 4;

/// The seed of one random choice of a run seeded `seed`.
fn derive(seed: u64, purpose: u64) -> u64 {
    SplitMix64::new(seed ^ purpose.wrapping_mul(0x9E37_79B9_7F4A_7C15)).next_u64()
}

fn varies(d: Option<LengthDist>) -> bool {
    matches!(
        d,
        Some(LengthDist::Normal { .. } | LengthDist::Uniform { .. })
    )
}

/// The workload of `input`, or None when it asks for none (one prompt, the run's `max_tokens`).
/// `shaped` is the single-prompt request (its method, target, headers and payload overrides
/// are every request's), `count` the run's requests (0: not known in advance), `seed` the run's.
pub(super) fn build(
    input: &Input,
    shaped: &Shaped,
    count: u64,
    seed: u64,
    limits: &Limits,
) -> Result<Option<Workload>, PlanError> {
    let w = &input.workload;
    let (Some(l), Some((llm, _))) = (&input.llm, &shaped.llm) else {
        if w.is_set() {
            return Err(invalid(
                "dataset",
                "data sets, token lengths and tokenizers apply to LLM runs only".into(),
            ));
        }
        return Ok(None);
    };
    if !w.is_set() {
        return Ok(None);
    }
    check(w)?;
    let max_bytes = max_dataset_bytes(w, limits)?;
    let tokenizer = match &w.tokenizer {
        None => None,
        Some(path) => Some(Arc::new(
            Tokenizer::from_file(path).map_err(|e| invalid("tokenizer", e.to_string()))?,
        )),
    };
    let tok = tokenizer.as_deref();
    if let Some(r) = &w.trace {
        let template = body_template(l, llm, shaped);
        let mut built = super::trace::build(
            r,
            shaped,
            &template,
            tokenizer,
            |source, entries, blocks| WorkloadInfo {
                replay: Some(ReplayInfo {
                    speed: r.speed,
                    block_tokens: r.block_tokens,
                    blocks,
                }),
                ..WorkloadInfo::of(source, entries, w.tokenizer.clone())
            },
        )?;
        let first = built.requests.first().to_vec();
        let body = first
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(&first[..0], |at| &first[at + 4..]);
        built.info.payload = payload_echo(Some(body), &built.info.source, built.info.entries);
        built.info = built.info.sized(&built.requests);
        return Ok(Some(built));
    }
    let prefix_tokens = w.prefix_tokens.unwrap_or(0);
    let prefix_groups = w.prefix_groups.unwrap_or(1);
    let seeded = w.shuffle || varies(w.input_tokens) || varies(w.output_tokens);
    if seeded && input.shard.count() > 1 && input.seed.is_none() {
        return Err(invalid(
            "seed",
            "a run split into shards with a shuffle or drawn token lengths needs a seed, so that \
             every shard sends the same requests"
                .into(),
        ));
    }

    if let Some(s) = &w.sessions {
        return sessions(input, shaped, s, tokenizer, max_bytes, seed).map(Some);
    }
    // Texts every prompt of a group starts with (the synthetic prefixes), held once.
    let mut prefixes: Vec<String> = Vec::new();
    // The entries, with the tokenizer's count of each when it made them (synthetic prompts).
    let (mut entries, skipped, source, made_counts) = if let Some(path) = &w.dataset {
        let options = LoadOptions {
            max_bytes,
            output_len_from_dataset: w.output_len_from_dataset,
            tokenizer: tok,
            sessions: None,
        };
        let d = Dataset::load(path, &options).map_err(|e| invalid("dataset", e.to_string()))?;
        (
            d.entries,
            d.skipped,
            PromptSource::Dataset(path.clone()),
            None,
        )
    } else if let Some(prompts) = &w.prompts {
        let d = Dataset::from_prompts(prompts).map_err(|e| invalid("prompts", e.to_string()))?;
        (d.entries, 0, PromptSource::Inline, None)
    } else if let Some(lengths) = &w.input_tokens {
        let synth = Synthesizer::with_groups(tok, prefix_tokens as usize, prefix_groups)
            .map_err(|e| invalid("input_tokens", e.to_string()))?;
        let n = synthetic_count(count);
        let (entries, counts) = synth
            .entries(n, lengths, derive(seed, INPUT_LENGTHS))
            .map_err(|e| invalid("input_tokens", e.to_string()))?;
        if prefix_tokens > 0 {
            prefixes = (0..synth.groups())
                .map(|g| synth.prefix_of(g).to_string())
                .collect();
        }
        (entries, 0, PromptSource::Synthetic, tok.map(|_| counts))
    } else {
        // One prompt; as many entries as lengths to draw when output_tokens varies, all sharing
        // its one text.
        let n = if varies(w.output_tokens) {
            synthetic_count(count)
        } else {
            1
        };
        let entry = Entry {
            prompt: Prompt::Text(l.prompt.as_str().into()),
            max_tokens: None,
            line: 1,
        };
        (vec![entry; n], 0, PromptSource::Prompt, None)
    };
    if let PromptSource::Dataset(_) = &source {
        // The data set's size passed the budget before it was read; its lines' requests too?
        let overhead = shaped.requests.total_bytes().saturating_sub(l.prompt.len()) as u64;
        let bytes = entries.iter().fold(0u64, |sum, e| {
            sum.saturating_add(prompt_bytes(&e.prompt) + overhead)
        });
        within(max_workload_bytes(w, limits)?, bytes, "dataset", || {
            format!("{} prompts of the data set", entries.len())
        })?;
    }
    if let Some(lengths) = &w.output_tokens {
        draw_max_tokens(&mut entries, lengths, derive(seed, OUTPUT_LENGTHS));
    }
    let order = if w.shuffle {
        Order::shuffled(entries.len(), derive(seed, ORDER))
    } else {
        Order::sequential(entries.len())
    };
    let template = body_template(l, llm, shaped);
    // One prompt under drawn max_tokens, or synthetic prompts with a shared prefix: the text
    // they share is held once and each request points into it.
    if source == PromptSource::Prompt && entries.len() > 1 {
        prefixes = vec![l.prompt.clone()];
    }
    let shared = match prefixes.is_empty() {
        true => None,
        false => shared_requests(&entries, &prefixes, &template, shaped),
    };
    let (of_entry, built) = match shared {
        Some((distinct, of_entry)) => (of_entry, Built::Segments(distinct)),
        None => {
            let bodies = Bodies::build(&entries, &template).map_err(|e| {
                let (field, name) = match &source {
                    PromptSource::Inline => ("prompts", "inline prompts".to_string()),
                    other => ("dataset", format!("dataset {}", source_text(other))),
                };
                invalid(field, format!("{name}: {e}"))
            })?;
            let of_entry = (0..entries.len())
                .map(|e| bodies.index_of(e) as u32)
                .collect();
            (of_entry, Built::Bodies(bodies.into_distinct()))
        }
    };
    let distinct_count = built.len();
    let prompt_tokens = match tok {
        None => None,
        Some(t) => Some(prompt_counts(
            t,
            &entries,
            made_counts.as_deref(),
            &of_entry,
            distinct_count,
            &order,
            count,
        )?),
    };
    // Entry i is synthetic prompt i, of group i mod G (round robin).
    let groups = w.prefix_groups.map(|g| {
        let mut by_body = vec![0u32; distinct_count];
        for (e, &d) in of_entry.iter().enumerate() {
            by_body[d as usize] = (e as u64 % u64::from(g.max(1))) as u32;
        }
        by_body.into_boxed_slice()
    });
    let slot: Box<[u32]> = (0..entries.len() as u64)
        .map(|i| of_entry[order.entry_for(i)])
        .collect();
    let payload = payload_echo(built.first_body().as_deref(), &source, entries.len());
    let info = WorkloadInfo {
        skipped,
        shuffled: w.shuffle,
        distinct_requests: distinct_count,
        input_tokens: w.input_tokens,
        output_tokens: w.output_tokens,
        output_len_from_dataset: w.output_len_from_dataset,
        prefix_tokens,
        prefix_groups,
        seed: seeded.then_some(seed),
        payload,
        ..WorkloadInfo::of(source, entries.len(), w.tokenizer.clone())
    };
    // The prompts are in the bodies now; each body is dropped as its request is made.
    drop(entries);
    let t = &shaped.target;
    let distinct = match built {
        Built::Segments(distinct) => distinct,
        Built::Bodies(bodies) => bodies
            .into_iter()
            .map(|body| {
                build_request(
                    &shaped.method,
                    &t.host_header,
                    &t.path,
                    &shaped.headers,
                    &body,
                )
                .into()
            })
            .collect(),
    };
    let requests = Requests {
        distinct,
        slot,
        prompt_tokens,
        groups,
    };
    let info = info.sized(&requests);
    Ok(Some(Workload {
        requests,
        sessions: None,
        tokenizer,
        info,
    }))
}

/// What every body of an LLM run shares: the model, `stream`, the API, the default
/// `max_tokens` and the payload overrides.
fn body_template<'a>(
    l: &'a super::LlmInput,
    llm: &super::LlmPlan,
    shaped: &'a Shaped,
) -> BodyTemplate<'a> {
    BodyTemplate {
        model: &l.model,
        stream: llm.stream,
        api: llm.api,
        style: llm.payload_style,
        max_tokens: l.max_tokens,
        overrides: shaped.overrides.as_ref(),
    }
}

/// A session run's workload: the data set's conversations, and what every turn's request
/// shares. Sessions need the chat API (a turn sends the history as messages) and a data set.
fn sessions(
    input: &Input,
    shaped: &Shaped,
    s: &super::session::SessionInput,
    tokenizer: Option<Arc<Tokenizer>>,
    max_bytes: u64,
    seed: u64,
) -> Result<Workload, PlanError> {
    use super::session::{MAX_TURNS, SessionPlan, Turn};
    let w = &input.workload;
    let (Some(l), Some((llm, _))) = (&input.llm, &shaped.llm) else {
        return Err(invalid("sessions", "sessions are LLM runs".into()));
    };
    if llm.api != crate::llm::Api::Chat {
        return Err(invalid(
            "sessions",
            "sessions send each turn's history as chat messages: use the chat API (--api chat)"
                .into(),
        ));
    }
    let Some(path) = &w.dataset else {
        return Err(invalid(
            "sessions",
            "sessions need a data set of conversations (--dataset)".into(),
        ));
    };
    let refuse = |field: &'static str, why: &str| Err(invalid(field, why.into()));
    if w.input_tokens.is_some() || w.output_tokens.is_some() || w.output_len_from_dataset {
        return refuse(
            "sessions",
            "sessions take their turns from the data set: no input_tokens, output_tokens or \
             output_len_from_dataset",
        );
    }
    if w.shuffle {
        return refuse("shuffle", "sessions play the conversations in file order");
    }
    if input.qps == super::Rate::Max {
        return refuse(
            "qps",
            "sessions start at a rate: give a qps (an open loop of sessions)",
        );
    }
    if input.shard.count() > 1 {
        return refuse("shard", "sessions do not run split into shards yet");
    }
    let max_turns = match s.max_turns {
        None => MAX_TURNS,
        Some(n) if (1..=MAX_TURNS).contains(&n) => n,
        Some(_) => {
            return Err(invalid(
                "max_turns",
                format!("max_turns must be from 1 to {MAX_TURNS}"),
            ));
        }
    };
    if let Some(h) = &s.header {
        super::request::check_headers(&[(h.clone(), "x".into())])
            .map_err(|_| invalid("session_header", format!("{h:?} is not a header name")))?;
    }
    let options = LoadOptions {
        max_bytes,
        output_len_from_dataset: false,
        tokenizer: tokenizer.as_deref(),
        sessions: Some(max_turns),
    };
    let d = Dataset::load(path, &options).map_err(|e| invalid("dataset", e.to_string()))?;
    let template = body_template(l, llm, shaped);
    let probe = Entry {
        prompt: Prompt::Text("".into()),
        max_tokens: None,
        line: 1,
    };
    let bodies = Bodies::build(std::slice::from_ref(&probe), &template)
        .map_err(|e| invalid("dataset", e.to_string()))?;
    let mut payload: Map<String, Value> = serde_json::from_slice(bodies.of(0)).unwrap_or_default();
    payload.remove("messages");
    let t = &shaped.target;
    let plan = SessionPlan {
        max_turns,
        think_time: s.think_time,
        header: s.header.clone(),
        history: s.history,
        method: shaped.method.clone(),
        host: t.host_header.clone(),
        path: t.path.clone(),
        headers: shaped.headers.clone(),
        payload,
        run_tag: derive(seed, SESSION_IDS),
        conversations: d.conversations,
    };
    let first = plan.conversation(0).turns[0].user.clone();
    let request = plan.request(
        0,
        &[Turn {
            user: first,
            answer: None,
        }],
    );
    let mut echo = plan.payload.clone();
    echo.insert(
        "messages".into(),
        json!(format!(
            "<{} conversations: dataset {}>",
            plan.conversations.len(),
            path.display()
        )),
    );
    // A session's turns are built on the lanes: none before the run, nothing held.
    let info = WorkloadInfo {
        skipped: d.skipped,
        distinct_requests: 0,
        payload: echo,
        ..WorkloadInfo::of(
            PromptSource::Dataset(path.clone()),
            plan.conversations.len(),
            w.tokenizer.clone(),
        )
    };
    Ok(Workload {
        requests: Requests::single(request),
        sessions: Some(plan),
        tokenizer,
        info,
    })
}

/// The bytes of requests the workload of `input` will hold (one per distinct body), estimated
/// before anything is read or made: a data set's file size, inline prompts' lengths, synthetic
/// prompts at their longest ([`crate::llm::synth::max_bytes_per_token`]), and the one prompt once
/// per copy, each with the single-prompt request's head and payload. Refused (422, naming the
/// field that makes it big and the budget) beyond the smaller of the input's and the front's
/// `--max-workload-bytes`. A run without a workload holds its one request.
pub(super) fn budget(
    input: &Input,
    shaped: &Shaped,
    count: u64,
    limits: &Limits,
) -> Result<u64, PlanError> {
    let w = &input.workload;
    let max = max_workload_bytes(w, limits)?;
    let single = shaped.requests.total_bytes() as u64;
    let (Some(l), true) = (&input.llm, w.is_set()) else {
        return within(max, single, "body", || "the request".into());
    };
    // The head and payload around a prompt: every distinct request has them.
    let overhead = single.saturating_sub(l.prompt.len() as u64);
    let n = synthetic_count(count) as u64;
    if let Some(r) = &w.trace {
        let bytes = super::trace::budget_bytes(r, overhead);
        within(max, bytes, "trace", || {
            format!("{} requests of the trace", r.trace.entries.len())
        })
    } else if let Some(path) = &w.dataset {
        // Lines unknown until read: the file's size now, the lines' overhead once loaded.
        let size = std::fs::metadata(path).map_or(0, |m| m.len());
        within(max, size, "dataset", || {
            format!("the data set's {}", bytes_text(size))
        })
    } else if let Some(prompts) = &w.prompts {
        let text: u64 = prompts.iter().map(|p| p.len() as u64).sum();
        let bytes = text.saturating_add(overhead.saturating_mul(prompts.len() as u64));
        within(max, bytes, "prompts", || {
            format!("{} inline prompts", prompts.len())
        })
    } else if let Some(lengths) = &w.input_tokens {
        let tokens = u64::from(lengths.max()).max(u64::from(w.prefix_tokens.unwrap_or(0)) + 1);
        let per = (tokens as f64 * crate::llm::synth::max_bytes_per_token()).ceil() as u64;
        let bytes = n.saturating_mul(per.saturating_add(overhead));
        within(max, bytes, "input_tokens", || {
            format!("{n} synthetic prompts of up to {tokens} tokens")
        })
    } else if varies(w.output_tokens) {
        // One request per distinct max_tokens drawn: at most the lengths there are to draw.
        let copies = match w.output_tokens {
            Some(LengthDist::Uniform { min, max }) => n.min(u64::from(max.saturating_sub(min)) + 1),
            _ => n,
        };
        // The prompt's text is held once ([`shared_requests`]); each copy holds its own head
        // and payload around it, whose drawn `max_tokens` (up to 10 digits) and
        // `Content-Length` (up to 20) may be longer than the single request's.
        let bytes = single.saturating_add(copies.saturating_mul(overhead + 30));
        within(max, bytes, "output_tokens", || {
            format!("{copies} requests sharing the prompt, one per drawn max_tokens")
        })
    } else {
        within(max, single, "prompt", || "the prompt".into())
    }
}

/// The text a prompt puts into a request.
fn prompt_bytes(p: &Prompt) -> u64 {
    match p {
        Prompt::Text(t) => t.len() as u64,
        Prompt::Chat(m) => m
            .iter()
            .map(|m| (m.role.len() + m.content.len() + 32) as u64)
            .sum(),
    }
}

/// The workload budget: as asked (the command line's flag), never above the front's limit.
pub(super) fn max_workload_bytes(w: &WorkloadInput, limits: &Limits) -> Result<u64, PlanError> {
    match w.max_workload_bytes {
        Some(0) => Err(invalid(
            "max_workload_bytes",
            "max_workload_bytes must be at least 1".into(),
        )),
        Some(n) => Ok(n.min(limits.max_workload_bytes)),
        None => Ok(limits.max_workload_bytes),
    }
}

/// `bytes` when within `max`, else the refusal naming `field`, what is big, and the budget.
pub(super) fn within(
    max: u64,
    bytes: u64,
    field: &'static str,
    what: impl FnOnce() -> String,
) -> Result<u64, PlanError> {
    if bytes <= max {
        return Ok(bytes);
    }
    Err(invalid(
        field,
        format!(
            "the workload would hold about {} of requests ({}): more than the budget of {} \
             (--max-workload-bytes)",
            bytes_text(bytes),
            what(),
            bytes_text(max)
        ),
    ))
}

/// A byte count as people read it: `268435456` is `256 MiB`.
pub fn bytes_text(n: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if n >= size {
            let x = n as f64 / size as f64;
            return if x.fract() == 0.0 {
                format!("{x} {unit}")
            } else {
                format!("{x:.1} {unit}")
            };
        }
    }
    format!("{n} bytes")
}

/// How many synthetic prompts (or copies of the one prompt) a run of `count` requests makes: one
/// per request up to [`defaults::SYNTHETIC_PROMPTS`], cycled after that.
fn synthetic_count(count: u64) -> usize {
    match usize::try_from(count) {
        Ok(n) if n > 0 => n.min(defaults::SYNTHETIC_PROMPTS),
        _ => defaults::SYNTHETIC_PROMPTS,
    }
}

/// The combinations that do not make sense, refused with the field that is out of place.
fn check(w: &WorkloadInput) -> Result<(), PlanError> {
    if w.trace.is_some() {
        let other = [
            ("dataset", w.dataset.is_some()),
            ("prompts", w.prompts.is_some()),
            ("input_tokens", w.input_tokens.is_some()),
            ("output_tokens", w.output_tokens.is_some()),
            ("shuffle", w.shuffle),
            ("prefix_tokens", w.prefix_tokens.is_some_and(|p| p > 0)),
            ("prefix_groups", w.prefix_groups.is_some()),
            ("output_len_from_dataset", w.output_len_from_dataset),
        ];
        if let Some((field, _)) = other.iter().find(|(_, set)| *set) {
            return Err(invalid(
                field,
                format!(
                    "{field} does not apply to a trace replay: the trace gives each request's \
                     prompt and output lengths"
                ),
            ));
        }
    }
    if w.dataset.is_some() && w.prompts.is_some() {
        return Err(invalid(
            "prompts",
            "give a data set or inline prompts, not both".into(),
        ));
    }
    if w.input_tokens.is_some() && (w.dataset.is_some() || w.prompts.is_some()) {
        return Err(invalid(
            "input_tokens",
            "input_tokens makes synthetic prompts; a data set (or inline prompts) brings its own"
                .into(),
        ));
    }
    if w.prefix_tokens.is_some_and(|p| p > 0) && w.input_tokens.is_none() {
        return Err(invalid(
            "prefix_tokens",
            "prefix_tokens needs input_tokens (a shared prefix is part of synthetic prompts)"
                .into(),
        ));
    }
    if let Some(g) = w.prefix_groups {
        if w.prefix_tokens.unwrap_or(0) == 0 {
            return Err(invalid(
                "prefix_groups",
                "prefix_groups needs prefix_tokens (the length of each group's prefix)".into(),
            ));
        }
        if g == 0 || g > crate::llm::synth::MAX_PREFIX_GROUPS {
            return Err(invalid(
                "prefix_groups",
                format!(
                    "prefix_groups must be from 1 to {} (got {g})",
                    crate::llm::synth::MAX_PREFIX_GROUPS
                ),
            ));
        }
    }
    if let Some(p) = w.prefix_tokens
        && p > crate::llm::lengths::MAX_TOKENS
    {
        return Err(invalid(
            "prefix_tokens",
            format!(
                "prefix_tokens must be at most {}",
                crate::llm::lengths::MAX_TOKENS
            ),
        ));
    }
    if w.output_len_from_dataset && w.dataset.is_none() {
        return Err(invalid(
            "output_len_from_dataset",
            "output_len_from_dataset needs a data set (ShareGPT replies give the lengths)".into(),
        ));
    }
    Ok(())
}

/// The data set size cap: as asked, never above the front's limit (the API server's own).
fn max_dataset_bytes(w: &WorkloadInput, limits: &Limits) -> Result<u64, PlanError> {
    match w.max_dataset_bytes {
        None => Ok(limits.max_dataset_bytes),
        Some(0) => Err(invalid(
            "max_dataset_bytes",
            "max_dataset_bytes must be at least 1".into(),
        )),
        Some(n) if n > limits.max_dataset_bytes => Err(invalid(
            "max_dataset_bytes",
            format!(
                "max_dataset_bytes must be <= {} (--max-dataset-bytes)",
                limits.max_dataset_bytes
            ),
        )),
        Some(n) => Ok(n),
    }
}

fn source_text(source: &PromptSource) -> String {
    match source {
        PromptSource::Dataset(path) | PromptSource::Trace(path) => path.display().to_string(),
        other => other.name().to_string(),
    }
}

/// The tokenizer's count of each distinct body's prompt, for the bodies the run sends: the
/// first `count` requests' (all of them when `count` is 0 or covers every entry). Synthetic
/// prompts come with their counts (`made`).
fn prompt_counts(
    tokenizer: &Tokenizer,
    entries: &[Entry],
    made: Option<&[u32]>,
    of_entry: &[u32],
    distinct: usize,
    order: &Order,
    count: u64,
) -> Result<Box<[Option<u32>]>, PlanError> {
    let mut counts: Vec<Option<u32>> = vec![None; distinct];
    let used = if count == 0 || count >= entries.len() as u64 {
        entries.len() as u64
    } else {
        count
    };
    for i in 0..used {
        let e = order.entry_for(i);
        let slot = &mut counts[of_entry[e] as usize];
        if slot.is_some() {
            continue;
        }
        let n = match made {
            Some(made) => made[e],
            None => {
                let n = entries[e].prompt.count_tokens(tokenizer).map_err(|err| {
                    invalid(
                        "tokenizer",
                        format!("counting the prompt of entry {}: {err}", entries[e].line),
                    )
                })?;
                n.min(u32::MAX as usize) as u32
            }
        };
        *slot = Some(n);
    }
    Ok(counts.into())
}

/// A body's bytes before and after its prompt ([`frame`]), shared by every request of one
/// `max_tokens`.
pub(super) type Frame = (Arc<[u8]>, Arc<[u8]>);

/// The distinct requests of a workload, before they are counted and echoed.
enum Built {
    /// Whole bodies, each to become one request.
    Bodies(Vec<Vec<u8>>),
    /// Requests already made of shared segments.
    Segments(Vec<Segments>),
}

impl Built {
    fn len(&self) -> usize {
        match self {
            Built::Bodies(b) => b.len(),
            Built::Segments(s) => s.len(),
        }
    }

    /// The first request's body (for the config echo).
    fn first_body(&self) -> Option<Vec<u8>> {
        match self {
            Built::Bodies(b) => b.first().cloned(),
            Built::Segments(s) => {
                let first = s.first()?.to_vec();
                let at = first.windows(4).position(|w| w == b"\r\n\r\n")?;
                Some(first[at + 4..].to_vec())
            }
        }
    }
}

/// One request: its head, the frame's bytes before the prompt, the prompt's escaped `pieces`,
/// the frame's bytes after it; `Content-Length` their sum.
pub(super) fn framed_request(
    shaped: &Shaped,
    (before, after): &Frame,
    pieces: Vec<Segment>,
) -> Segments {
    let t = &shaped.target;
    let prompt: usize = pieces.iter().map(|p| p.bytes().len()).sum();
    let len = before.len() + prompt + after.len();
    let head = build_head(
        &shaped.method,
        &t.host_header,
        &t.path,
        &shaped.headers,
        len,
    );
    let mut parts = Vec::with_capacity(pieces.len() + 3);
    parts.push(Segment::owned(head));
    parts.push(Segment::shared(before, 0..before.len()));
    parts.extend(pieces);
    parts.push(Segment::shared(after, 0..after.len()));
    Segments::from_parts(parts)
}

/// The requests of text `entries` whose prompts start with a shared text (entry `e` with
/// `texts[e % texts.len()]`: the one prompt, or synthetic prompt `e`'s group prefix), that text
/// held once, escaped; one request per distinct (prompt, `max_tokens`), and which one each entry
/// sends. None when the payload does not carry the prompt as one string (an override replaced
/// it) or an entry is chat: the bodies are then built whole.
fn shared_requests(
    entries: &[Entry],
    texts: &[String],
    template: &BodyTemplate,
    shaped: &Shaped,
) -> Option<(Vec<Segments>, Vec<u32>)> {
    let escaped: Vec<Arc<[u8]>> = texts.iter().map(|t| escape(t).into()).collect();
    let mut frames: HashMap<i64, Option<Frame>> = HashMap::new();
    let mut seen: HashMap<(&Prompt, i64), u32> = HashMap::with_capacity(entries.len());
    let mut distinct = Vec::new();
    let mut of_entry = Vec::with_capacity(entries.len());
    for (e, entry) in entries.iter().enumerate() {
        let Prompt::Text(text) = &entry.prompt else {
            return None;
        };
        let max_tokens = entry.max_tokens.map_or(template.max_tokens, i64::from);
        if let Some(&d) = seen.get(&(&entry.prompt, max_tokens)) {
            of_entry.push(d);
            continue;
        }
        let framed = frames
            .entry(max_tokens)
            .or_insert_with(|| frame(max_tokens, template).map(|(a, b)| (a.into(), b.into())));
        let framed = framed.as_ref()?;
        let g = e % texts.len();
        let pieces = match text.strip_prefix(texts[g].as_str()) {
            Some(rest) => vec![
                Segment::shared(&escaped[g], 0..escaped[g].len()),
                Segment::owned(escape(rest)),
            ],
            None => vec![Segment::owned(escape(text))],
        };
        let d = distinct.len() as u32;
        distinct.push(framed_request(shaped, framed, pieces));
        seen.insert((&entry.prompt, max_tokens), d);
        of_entry.push(d);
    }
    Some((distinct, of_entry))
}

/// The payload the config echoes for a run of many prompts: the first body's, with its prompt
/// (or messages) replaced by where the prompts come from.
fn payload_echo(first: Option<&[u8]>, source: &PromptSource, entries: usize) -> Map<String, Value> {
    let mut payload: Map<String, Value> = first
        .and_then(|b| serde_json::from_slice(b).ok())
        .unwrap_or_default();
    let note = match source {
        PromptSource::Prompt => None,
        other => Some(json!(format!(
            "<{entries} prompts: {}>",
            source_text(other)
        ))),
    };
    if let Some(note) = note {
        for key in ["prompt", "messages"] {
            if let Some(v) = payload.get_mut(key) {
                *v = note.clone();
            }
        }
    }
    payload
}

#[cfg(test)]
mod tests {
    use super::super::{Input, LlmInput, Plan, Rate};
    use super::*;
    use crate::llm::Api;

    /// A directory for one test's files, removed at its end.
    struct Dir(PathBuf);

    impl Dir {
        fn new(name: &str) -> Dir {
            let dir = std::env::temp_dir()
                .join(format!("pacer-plan-workload-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Dir(dir)
        }

        fn file(&self, name: &str, text: &str) -> PathBuf {
            let path = self.0.join(name);
            std::fs::write(&path, text).unwrap();
            path
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn input(qps: f64) -> Input {
        let mut i = Input::new("http://h/v1/completions", Rate::PerSecond(qps), 1.0);
        i.llm = Some(LlmInput {
            token: "sekrit".into(),
            prompt: "one prompt".into(),
            max_tokens: 9,
            ..LlmInput::example()
        });
        i
    }

    fn plan(i: &Input) -> Result<Plan, PlanError> {
        Plan::new(i, &Limits::default())
    }

    /// The JSON payload of request `index`.
    fn body(p: &Plan, index: u64) -> Value {
        let bytes = p.request_for(index).to_vec();
        let start = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        serde_json::from_slice(&bytes[start..]).unwrap()
    }

    fn lines(n: usize) -> String {
        (0..n)
            .map(|k| format!("{{\"prompt\": \"prompt number {k}\"}}\n"))
            .collect()
    }

    fn budgeted(i: &Input, max: u64) -> Result<Plan, PlanError> {
        let limits = Limits {
            max_workload_bytes: max,
            ..Limits::default()
        };
        Plan::new(i, &limits)
    }

    /// The attacks, refused by [`Plan::check`] before anything is built: the estimate
    /// is arithmetic on the input (and a file's size), so a refusal costs nothing.
    #[test]
    fn every_kind_of_workload_is_budgeted_before_it_is_built() {
        // 1000 synthetic prompts of a million tokens: gigabytes.
        let mut i = input(1000.0);
        i.workload.input_tokens = Some(LengthDist::Fixed(1_000_000));
        let started = std::time::Instant::now();
        let e = Plan::check(&i, &Limits::default()).err().unwrap();
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        let PlanError::Invalid { field, msg } = e else {
            panic!("{e:?}")
        };
        assert_eq!(field, "input_tokens");
        assert!(
            msg.contains("1000 synthetic prompts of up to 1000000 tokens")
                && msg.ends_with("more than the budget of 256 MiB (--max-workload-bytes)"),
            "{msg}"
        );
        // Within it, the estimate bounds what is built.
        i.workload.input_tokens = Some(LengthDist::Fixed(50));
        let d = Plan::check(&i, &Limits::default()).ok().unwrap();
        let estimate = d.workload_bytes();
        let p = d.build().unwrap();
        let built = p.requests.total_bytes() as u64;
        assert!(
            built <= estimate && built * 3 > estimate,
            "{built} vs {estimate}"
        );

        // The one prompt, copied once per drawn max_tokens.
        let mut i = input(1000.0);
        if let Some(l) = i.llm.as_mut() {
            l.prompt = "w ".repeat(130_000);
        }
        i.workload.output_tokens = Some(LengthDist::Uniform {
            min: 1,
            max: 1_000_000,
        });
        // Shared, the copies' heads and payloads still count against the budget.
        assert_eq!(
            budgeted(&i, 500_000)
                .unwrap_err()
                .to_string()
                .split(':')
                .next(),
            Some("output_tokens")
        );
        // Copies of one prompt share its text: only the requests hold it. The attack
        // (a 260 KB prompt, output_tokens uniform:1:1000000) held 749 MB copied; shared, a
        // thousand requests hold the prompt once and their heads and payloads.
        i.workload.output_tokens = Some(LengthDist::Uniform {
            min: 1,
            max: 1_000_000,
        });
        let d = Plan::check(&i, &Limits::default()).ok().unwrap();
        let estimate = d.workload_bytes();
        let p = d.build().unwrap();
        let (held, wire) = (p.requests.total_bytes(), p.requests.wire_bytes());
        assert!(
            p.requests.distinct().len() > 900,
            "{}",
            p.requests.distinct().len()
        );
        assert!(
            held < 2 << 20 && wire > 200 << 20,
            "{held} held, {wire} on the wire"
        );
        assert!(
            held as u64 <= estimate && estimate < 2 << 20,
            "{held} vs {estimate}"
        );
        i.workload.output_tokens = Some(LengthDist::Uniform { min: 1, max: 3 });
        let p = budgeted(&i, 100 << 20).unwrap();
        assert_eq!(p.requests.distinct().len(), 3);

        // Inline prompts and a data set, by their size.
        let mut i = input(10.0);
        i.workload.prompts = Some(vec!["x".repeat(600); 4]);
        assert!(
            budgeted(&i, 1000)
                .unwrap_err()
                .to_string()
                .starts_with("prompts: the workload")
        );
        assert!(budgeted(&i, 1 << 20).is_ok());
        let dir = Dir::new("budget");
        let mut i = input(10.0);
        i.workload.dataset = Some(dir.file("d.jsonl", &lines(400)));
        let e = budgeted(&i, 5000).unwrap_err().to_string();
        assert!(
            e.starts_with("dataset: the workload would hold about") && e.contains("the data set's"),
            "{e}"
        );
        // A small file of many short lines: the requests' heads count once it is read.
        let e = budgeted(&i, 20_000).unwrap_err().to_string();
        assert!(e.contains("400 prompts of the data set"), "{e}");
        assert!(budgeted(&i, 1 << 20).is_ok());
        // The command line's flag lowers the front's limit, never raises it.
        i.workload.max_workload_bytes = Some(5000);
        assert!(budgeted(&i, 1 << 20).is_err());
        i.workload.max_workload_bytes = Some(1 << 30);
        assert!(budgeted(&i, 20_000).is_err());
    }

    #[test]
    fn requests_cycle_through_the_data_set_in_order_or_shuffled() {
        let dir = Dir::new("cycle");
        let mut i = input(12.0);
        i.workload.dataset = Some(dir.file("d.jsonl", &lines(5)));
        let p = plan(&i).unwrap();
        let prompts: Vec<Value> = (0..12).map(|k| body(&p, k)["prompt"].clone()).collect();
        for (k, prompt) in prompts.iter().enumerate() {
            assert_eq!(prompt, &json!(format!("prompt number {}", k % 5)), "{k}");
        }
        assert_eq!(p.requests.distinct().len(), 5);
        assert_eq!(body(&p, 3)["max_tokens"], json!(9));
        let w = p.workload.as_ref().unwrap();
        assert_eq!((w.entries, w.distinct_requests, w.seed), (5, 5, None));
        assert_eq!(p.config["order"], json!("sequential"));
        assert!(p.config.get("seed").is_none(), "nothing random: no seed");

        i.workload.shuffle = true;
        i.seed = Some(11);
        let order =
            |p: &Plan| -> Vec<Value> { (0..10).map(|k| body(p, k)["prompt"].clone()).collect() };
        let a = plan(&i).unwrap();
        let first: Vec<Value> = order(&a);
        assert_eq!(
            first,
            order(&plan(&i).unwrap()),
            "the same seed, the same order"
        );
        assert_eq!(first[..5], first[5..], "the shuffled order repeats");
        let mut seen: Vec<String> = first[..5].iter().map(|v| v.to_string()).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 5, "a permutation: {first:?}");
        assert_eq!(a.config["seed"], json!(11));
        assert_eq!(a.config["order"], json!("shuffled"));
        let orders: std::collections::HashSet<Vec<String>> = (0..6)
            .map(|seed| {
                i.seed = Some(seed);
                order(&plan(&i).unwrap())
                    .iter()
                    .map(|v| v.to_string())
                    .collect()
            })
            .collect();
        assert!(orders.len() > 1, "seeds change the order");
    }

    /// A request that points into a shared prompt sends exactly the bytes of the request built
    /// whole (head, `Content-Length`, the escaped prompt and the payload around it), whatever
    /// the prompt holds that JSON escapes.
    #[test]
    fn shared_prompts_send_the_bytes_of_whole_requests() {
        let prompt = "say \"hi\"\n\tto <ü> \\ \u{1} 🦀 ".repeat(50);
        let mut i = input(10.0);
        if let Some(l) = i.llm.as_mut() {
            l.prompt = prompt.clone();
        }
        let d = Plan::check(&i, &Limits::default()).ok().unwrap();
        let (Some(l), Some((llm, _))) = (&i.llm, &d.shaped.llm) else {
            panic!("an LLM plan")
        };
        let template = body_template(l, llm, &d.shaped);
        let entries: Vec<Entry> = [Some(1), Some(70), None, Some(70)]
            .into_iter()
            .map(|max_tokens| Entry {
                prompt: Prompt::Text(prompt.as_str().into()),
                max_tokens,
                line: 1,
            })
            .collect();
        let (shared, of_entry) = shared_requests(
            &entries,
            std::slice::from_ref(&prompt),
            &template,
            &d.shaped,
        )
        .unwrap();
        let bodies = Bodies::build(&entries, &template).unwrap();
        assert_eq!(of_entry, [0, 1, 2, 1]);
        let t = &d.shaped.target;
        for (e, &slot) in of_entry.iter().enumerate() {
            let whole = build_request(
                &d.shaped.method,
                &t.host_header,
                &t.path,
                &d.shaped.headers,
                &bodies.distinct()[bodies.index_of(e)],
            );
            let sent = shared[slot as usize].to_vec();
            assert_eq!(
                String::from_utf8_lossy(&sent),
                String::from_utf8_lossy(&whole)
            );
            assert_eq!(shared[slot as usize].len(), whole.len());
        }
        // The prompt is held once by all three requests.
        let requests = Requests::spread(shared, of_entry.into_boxed_slice());
        let escaped = escape(&prompt).len();
        assert_eq!(requests.total_bytes(), requests.wire_bytes() - 2 * escaped);
    }

    #[test]
    fn one_prompt_with_drawn_output_lengths() {
        let mut i = input(20.0);
        i.seed = Some(3);
        i.workload.output_tokens = Some("10:3".parse().unwrap());
        let p = plan(&i).unwrap();
        let lengths: Vec<i64> = (0..20)
            .map(|k| body(&p, k)["max_tokens"].as_i64().unwrap())
            .collect();
        assert!(lengths.iter().all(|&n| n >= 1), "{lengths:?}");
        assert!(lengths.iter().any(|&n| n != lengths[0]), "{lengths:?}");
        assert!((0..20).all(|k| body(&p, k)["prompt"] == json!("one prompt")));
        assert_eq!(p.config["output_tokens"], json!("10:3"));
        assert_eq!(p.config["prompts"], json!("prompt"));
        assert_eq!(p.config["fireworks_payload"]["prompt"], json!("one prompt"));
        // A fixed length is one body for every request.
        i.workload.output_tokens = Some("5".parse().unwrap());
        let p = plan(&i).unwrap();
        assert_eq!(p.requests.distinct().len(), 1);
        assert_eq!(body(&p, 7)["max_tokens"], json!(5));
        assert!(p.config.get("seed").is_none());
    }

    #[test]
    fn ignore_eos_joins_the_payload_and_the_users_payload_wins() {
        let mut i = input(2.0);
        i.workload.ignore_eos = true;
        let p = plan(&i).unwrap();
        assert!(p.workload.is_none(), "ignore_eos alone is a payload field");
        assert_eq!(body(&p, 0)["ignore_eos"], json!(true));
        assert_eq!(p.config["ignore_eos"], json!(true));
        if let Some(l) = i.llm.as_mut() {
            l.payload = json!({"ignore_eos": false}).as_object().cloned();
        }
        assert_eq!(body(&plan(&i).unwrap(), 0)["ignore_eos"], json!(false));
    }

    #[test]
    fn synthetic_prompts_and_the_config_echo() {
        let mut i = input(4.0);
        i.seed = Some(5);
        i.workload.input_tokens = Some("uniform:20:40".parse().unwrap());
        i.workload.prefix_tokens = Some(8);
        if let Some(l) = i.llm.as_mut() {
            l.prompt = String::new(); // synthetic prompts need none
        }
        let p = plan(&i).unwrap();
        assert_eq!(p.requests.distinct().len(), 4, "one per request");
        let texts: Vec<String> = (0..4)
            .map(|k| body(&p, k)["prompt"].as_str().unwrap().to_string())
            .collect();
        let prefix: Vec<&str> = texts[0].split_whitespace().take(6).collect();
        for t in &texts {
            let words = t.split_whitespace().count();
            // 0.75 words per token: 20 to 40 tokens are 15 to 30 words.
            assert!((15..=30).contains(&words), "{words}: {t}");
            assert!(
                t.split_whitespace().take(6).eq(prefix.iter().copied()),
                "{t}"
            );
        }
        let c = &p.config;
        assert_eq!(c["prompts"], json!("synthetic"));
        assert_eq!(c["prompt_entries"], json!(4));
        assert_eq!(c["input_tokens"], json!("uniform:20:40"));
        assert_eq!(c["prefix_tokens"], json!(8));
        assert_eq!(c["token_lengths"], json!("approximate"));
        assert_eq!(c["seed"], json!(5));
        assert_eq!(
            c["fireworks_payload"]["prompt"],
            json!("<4 prompts: synthetic>")
        );
        assert!(p.prompt_tokens_for(0).is_none(), "no tokenizer, no count");
        assert!(!format!("{:?}", p.requests).contains("sekrit"));
    }

    #[test]
    fn refusals_name_the_field_and_the_path_or_line() {
        let dir = Dir::new("refusals");
        let refused = |i: &Input| match plan(i) {
            Err(PlanError::Invalid { field, msg }) => (field, msg),
            other => panic!("not refused: {other:?}"),
        };
        let mut i = input(2.0);
        let missing = dir.0.join("missing.jsonl");
        i.workload.dataset = Some(missing.clone());
        let (field, msg) = refused(&i);
        assert_eq!(field, "dataset");
        assert!(msg.contains(&missing.display().to_string()), "{msg}");
        i.workload.dataset = Some(dir.file("bad.jsonl", "{\"prompt\": \"a\"}\n\n[1]\n"));
        let (_, msg) = refused(&i);
        assert!(msg.contains("bad.jsonl: line 3:"), "{msg}");
        i.workload.dataset = Some(dir.file("empty.jsonl", ""));
        assert!(refused(&i).1.contains("no prompts"));
        i.workload.dataset = Some(dir.file(
            "chat.jsonl",
            "{\"prompt\": \"a\"}\n{\"messages\": [{\"role\": \"user\", \"content\": \"b\"}]}\n",
        ));
        let (field, msg) = refused(&i);
        assert_eq!(field, "dataset");
        assert!(msg.contains("chat.jsonl: line 2 has chat"), "{msg}");
        // The same file is fine for the chat API.
        if let Some(l) = i.llm.as_mut() {
            l.api = Api::Chat;
        }
        let p = plan(&i).unwrap();
        assert_eq!(body(&p, 1)["messages"][0]["content"], json!("b"));

        let mut i = input(2.0);
        i.workload.tokenizer = Some(dir.file("tok.json", "{\"not\": \"a tokenizer\"}"));
        let (field, msg) = refused(&i);
        assert_eq!(field, "tokenizer");
        assert!(msg.contains("tok.json"), "{msg}");

        let mut i = input(2.0);
        i.workload.prompts = Some(vec!["a".into(), String::new()]);
        assert_eq!(
            refused(&i),
            ("prompts", "dataset inline: line 2: empty prompt".into())
        );
        i.workload.dataset = Some(dir.file("d.jsonl", &lines(2)));
        assert_eq!(refused(&i).0, "prompts");
        i.workload.prompts = None;
        i.workload.input_tokens = Some(LengthDist::Fixed(5));
        assert_eq!(refused(&i).0, "input_tokens");
        i.workload.input_tokens = None;
        i.workload.max_dataset_bytes = Some(defaults::MAX_DATASET_BYTES + 1);
        assert_eq!(refused(&i).0, "max_dataset_bytes");
        i.workload.max_dataset_bytes = Some(10);
        assert!(refused(&i).1.contains("more than the 10 allowed"));
        i.workload.max_dataset_bytes = None;
        i.workload.prefix_tokens = Some(3);
        assert_eq!(refused(&i).0, "prefix_tokens");
        i.workload = WorkloadInput {
            output_len_from_dataset: true,
            ..WorkloadInput::default()
        };
        assert_eq!(refused(&i).0, "output_len_from_dataset");
        let mut plain = Input::new("http://h/", Rate::PerSecond(1.0), 1.0);
        plain.workload.shuffle = true;
        assert_eq!(refused(&plain).0, "dataset");
    }

    #[test]
    fn a_tokenizer_counts_each_prompt_the_run_sends() {
        let dir = Dir::new("tokenizer");
        let mut vocab = Map::new();
        vocab.insert("[UNK]".into(), json!(0));
        for w in ["prompt", "number", "0", "1", "2"] {
            let id = vocab.len();
            vocab.insert(w.into(), json!(id));
        }
        let tok = json!({"version": "1.0", "truncation": null, "padding": null,
            "added_tokens": [], "normalizer": null, "pre_tokenizer": {"type": "WhitespaceSplit"},
            "post_processor": null, "decoder": null,
            "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"}});
        let mut i = input(2.0);
        i.workload.tokenizer = Some(dir.file("tok.json", &tok.to_string()));
        i.workload.dataset = Some(dir.file(
            "d.jsonl",
            "{\"prompt\": \"prompt number 0\"}\n{\"prompt\": \"prompt 1\"}\n{\"prompt\": \"x\"}\n",
        ));
        let p = plan(&i).unwrap();
        assert!(p.tokenizer.is_some());
        assert_eq!(p.prompt_tokens_for(0), Some(3));
        assert_eq!(p.prompt_tokens_for(1), Some(2));
        assert_eq!(
            p.prompt_tokens_for(2),
            None,
            "a 2-request run never sends entry 3"
        );
        assert_eq!(p.config["token_lengths"], json!("exact"));
        // The one prompt is counted too.
        let mut i = input(2.0);
        i.workload.tokenizer = Some(dir.file("tok2.json", &tok.to_string()));
        let p = plan(&i).unwrap();
        assert_eq!(
            p.prompt_tokens_for(5),
            Some(2),
            "\"one prompt\": two unknown words"
        );
    }
}
