//! The JSON bodies of a run's requests, built once per distinct (prompt, `max_tokens`) before the
//! run, so the engine only ever copies bytes.
//!
//! A data set of 1,000 lines cycled over 100,000 requests builds 1,000 bodies; request `i` sends
//! body `index_of(order.entry_for(i))`. Each body is [`build_payload`]'s default payload for its
//! prompt, with the run's `payload` overrides merged over it, serialized once. Turning bodies
//! into request bytes (`http1::build_request`, one per body) is the plan's job.
//!
//! Chat entries need the chat API: sent to completions they are refused, with the entry's line.
//! Text entries work with both (for chat, one user message, as [`build_payload`] does).

use std::collections::HashMap;
use std::fmt;

use serde_json::{Map, Value, json};

use super::dataset::{Entry, Prompt};
use super::payload::{Api, PayloadInput, PayloadStyle, build_payload};

/// What every body shares.
#[derive(Clone, Copy, Debug)]
pub struct BodyTemplate<'a> {
    pub model: &'a str,
    pub stream: bool,
    pub api: Api,
    /// Which default payload each body is.
    pub style: PayloadStyle,
    /// `max_tokens` for entries without their own.
    pub max_tokens: i64,
    /// Merged over each payload, as for a single prompt.
    pub overrides: Option<&'a Map<String, Value>>,
}

/// Why the bodies could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BodyError {
    /// A chat entry (`messages`) with the completions API.
    ChatForCompletions { line: usize },
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::ChatForCompletions { line } => write!(
                f,
                "line {line} has chat \"messages\", which the completions API cannot send: \
                 use the chat API"
            ),
        }
    }
}

impl std::error::Error for BodyError {}

/// The distinct bodies of a run, and which one each entry sends.
#[derive(Clone, Debug)]
pub struct Bodies {
    bodies: Vec<Vec<u8>>,
    /// Entry index → body index.
    of_entry: Box<[u32]>,
}

impl Bodies {
    /// One body per distinct (prompt, `max_tokens`) among `entries`.
    pub fn build(entries: &[Entry], template: &BodyTemplate) -> Result<Bodies, BodyError> {
        let mut seen: HashMap<(&Prompt, i64), u32> = HashMap::with_capacity(entries.len());
        let mut bodies = Vec::new();
        let mut of_entry = Vec::with_capacity(entries.len());
        for entry in entries {
            let max_tokens = entry.max_tokens.map_or(template.max_tokens, i64::from);
            let index = match seen.get(&(&entry.prompt, max_tokens)) {
                Some(&index) => index,
                None => {
                    let index = bodies.len() as u32;
                    bodies.push(body(entry, max_tokens, template)?);
                    seen.insert((&entry.prompt, max_tokens), index);
                    index
                }
            };
            of_entry.push(index);
        }
        Ok(Bodies {
            bodies,
            of_entry: of_entry.into(),
        })
    }

    /// The distinct bodies, each to become one request's bytes.
    pub fn distinct(&self) -> &[Vec<u8>] {
        &self.bodies
    }

    /// Which of [`Bodies::distinct`] entry `entry` sends.
    pub fn index_of(&self, entry: usize) -> usize {
        self.of_entry[entry] as usize
    }

    /// The body entry `entry` sends.
    pub fn of(&self, entry: usize) -> &[u8] {
        &self.bodies[self.index_of(entry)]
    }

    /// The distinct bodies, given up (the plan turns each into a request and drops it).
    pub fn into_distinct(self) -> Vec<Vec<u8>> {
        self.bodies
    }

    /// Bytes held by all distinct bodies.
    pub fn total_bytes(&self) -> usize {
        self.bodies.iter().map(Vec::len).sum()
    }
}

/// `text` as it stands inside a JSON string, without the quotes. Escaping is per character, so
/// the escaped pieces of a text, joined, are the escaped text.
pub fn escape(text: &str) -> Vec<u8> {
    // A string always serializes.
    let mut quoted = serde_json::to_vec(text).unwrap_or_default();
    quoted.pop();
    quoted.remove(0);
    quoted
}

/// Marks where the prompt goes in a [`frame`]'s body: a control character no prompt of ours
/// or payload default holds.
const PROMPT_MARK: &str = "\u{1}pacer prompt\u{1}";

/// The body of a prompt of `max_tokens`, cut around the prompt's text: the bytes before it and
/// after it, so a request is `before`, the escaped prompt in as many pieces as shared, `after`.
/// None when the payload does not carry the prompt once as a string (an override replaced it).
pub fn frame(max_tokens: i64, t: &BodyTemplate) -> Option<(Vec<u8>, Vec<u8>)> {
    let entry = Entry {
        prompt: Prompt::Text(PROMPT_MARK.into()),
        max_tokens: None,
        line: 0,
    };
    let bytes = body(&entry, max_tokens, t).ok()?;
    let mark = escape(PROMPT_MARK);
    let at = bytes.windows(mark.len()).position(|w| w == mark)?;
    let rest = &bytes[at + mark.len()..];
    if rest.windows(mark.len()).any(|w| w == mark) {
        return None;
    }
    Some((bytes[..at].to_vec(), rest.to_vec()))
}

fn body(entry: &Entry, max_tokens: i64, t: &BodyTemplate) -> Result<Vec<u8>, BodyError> {
    let text = match &entry.prompt {
        Prompt::Text(text) => text,
        Prompt::Chat(_) if t.api == Api::Completions => {
            return Err(BodyError::ChatForCompletions { line: entry.line });
        }
        Prompt::Chat(_) => "",
    };
    let mut payload = build_payload(&PayloadInput {
        model: t.model,
        prompt: text,
        max_tokens,
        stream: t.stream,
        api: t.api,
        style: t.style,
        overrides: t.overrides,
    });
    if let Prompt::Chat(messages) = &entry.prompt {
        // An explicit "messages" override (or its removal) is the user's word over the data set's.
        let overridden = t.overrides.is_some_and(|o| o.contains_key("messages"));
        if let (false, Some(slot)) = (overridden, payload.get_mut("messages")) {
            *slot = messages
                .iter()
                .map(|m| json!({"role": &*m.role, "content": &*m.content}))
                .collect();
        }
    }
    // A map of strings, numbers and booleans always serializes.
    Ok(serde_json::to_vec(&payload).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::dataset::Message;

    fn text(s: &str, max_tokens: Option<u32>, line: usize) -> Entry {
        Entry {
            prompt: Prompt::Text(s.into()),
            max_tokens,
            line,
        }
    }

    fn template(api: Api) -> BodyTemplate<'static> {
        BodyTemplate {
            model: "m",
            stream: true,
            api,
            style: PayloadStyle::Fireworks,
            max_tokens: 16,
            overrides: None,
        }
    }

    fn json_of(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).unwrap()
    }

    #[test]
    fn one_body_per_distinct_prompt_and_length() {
        let entries = [
            text("a", None, 1),
            text("b", None, 2),
            text("a", None, 3),
            text("a", Some(16), 4), // the default length: the same body as line 1
            text("a", Some(5), 5),
        ];
        let bodies = Bodies::build(&entries, &template(Api::Completions)).unwrap();
        assert_eq!(bodies.distinct().len(), 3);
        let idx: Vec<usize> = (0..5).map(|e| bodies.index_of(e)).collect();
        assert_eq!(idx, [0, 1, 0, 0, 2]);
        let b = json_of(bodies.of(4));
        assert_eq!(
            (b["prompt"].clone(), b["max_tokens"].clone()),
            (json!("a"), json!(5))
        );
        // The same bytes the single-prompt path builds.
        let single = build_payload(&PayloadInput {
            model: "m",
            prompt: "b",
            max_tokens: 16,
            stream: true,
            api: Api::Completions,
            style: PayloadStyle::Fireworks,
            overrides: None,
        });
        assert_eq!(bodies.of(1), serde_json::to_vec(&single).unwrap());
        assert_eq!(
            bodies.total_bytes(),
            bodies.distinct().iter().map(Vec::len).sum::<usize>()
        );
    }

    #[test]
    fn chat_entries() {
        let chat = Entry {
            prompt: Prompt::Chat(
                vec![
                    Message {
                        role: "system".into(),
                        content: "Be brief.".into(),
                    },
                    Message {
                        role: "user".into(),
                        content: "Hi".into(),
                    },
                ]
                .into(),
            ),
            max_tokens: None,
            line: 7,
        };
        let entries = [chat, text("plain", None, 8)];
        let bodies = Bodies::build(&entries, &template(Api::Chat)).unwrap();
        assert_eq!(
            json_of(bodies.of(0))["messages"],
            json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
        );
        assert_eq!(
            json_of(bodies.of(1))["messages"],
            json!([{"role": "user", "content": "plain"}])
        );
        let err = Bodies::build(&entries, &template(Api::Completions)).unwrap_err();
        assert_eq!(err, BodyError::ChatForCompletions { line: 7 });
        assert!(err.to_string().starts_with("line 7 has chat"), "{err}");

        let overrides = json!({"messages": [{"role": "user", "content": "fixed"}], "top_k": null});
        let t = BodyTemplate {
            overrides: overrides.as_object(),
            ..template(Api::Chat)
        };
        let b = json_of(Bodies::build(&entries, &t).unwrap().of(0));
        assert_eq!(b["messages"], json!([{"role": "user", "content": "fixed"}]));
        assert!(b.get("top_k").is_none());
    }
}
