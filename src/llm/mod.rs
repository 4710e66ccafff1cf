//! STUB (replaced by the llm branch): signatures only, so the rest compiles.
#![allow(unused_variables, dead_code)]
use serde_json::{Map, Value};
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    Completions,
    Chat,
}
pub struct PayloadInput<'a> {
    pub model: &'a str,
    pub prompt: &'a str,
    pub max_tokens: i64,
    pub stream: bool,
    pub api: Api,
    pub overrides: Option<&'a Map<String, Value>>,
}
pub fn build_payload(input: &PayloadInput) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("model".into(), input.model.into());
    m.insert("prompt".into(), input.prompt.into());
    m
}
pub fn parse_stream_flag(v: &Value) -> Option<bool> {
    todo!()
}
pub const DEFAULT_URL: &str = "https://api.fireworks.ai/inference/v1/completions";
pub struct SseParser;
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SseError {
    EventTooLarge,
}
impl SseError {
    pub fn reason(self) -> &'static str {
        todo!()
    }
}
impl SseParser {
    pub fn new() -> Self {
        todo!()
    }
    pub fn reset(&mut self) {
        todo!()
    }
    pub fn feed(&mut self, input: &[u8], on_event: impl FnMut(&[u8])) -> Result<(), SseError> {
        todo!()
    }
}
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Done,
    Chunk(ChunkInfo),
    Error(String),
}
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ChunkInfo {
    pub token: bool,
    pub completion_tokens: Option<u64>,
    pub server_ttft: Option<f64>,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventError {
    InvalidJson,
}
impl EventError {
    pub fn reason(self) -> &'static str {
        todo!()
    }
}
pub fn classify(data: &[u8]) -> Result<Event, EventError> {
    todo!()
}
pub fn classify_body(body: &[u8]) -> Result<Event, EventError> {
    todo!()
}
