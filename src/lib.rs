//! pacer: a load generator that sends HTTP requests at a precise rate and measures what comes back,
//! down to the first token of a streaming LLM response.
//!
//! ```text
//!  curl ──HTTP──> api (tiny_http, a thread per run) ─┐
//!                                                    ├─ Plan ──> engine::run(plan) ──> RunStats ──> report (JSON / text)
//!  shell ──argv─> cli (clap) ────────────────────────┘              │
//!                                  spawns T worker threads, each: mio Poll + Slab<Conn>
//!                                  + its share of the schedule + deadline queues;
//!                                  workers send progress ticks and, at the end, their
//!                                  stats over crossbeam-channel; the engine merges them.
//! ```
//!
//! Data flows one way: inputs become a validated [`plan::Plan`] in exactly one place
//! ([`plan::Plan::new`], shared by the API and the CLI), the engine turns a plan into merged
//! [`engine::RunStats`], and [`report`] turns those into the JSON of the contract and the text report.
#![forbid(unsafe_code)]

pub mod api;
pub mod cli;
pub mod engine;
pub mod http1;
pub mod llm;
pub mod mock;
pub mod plan;
pub mod report;
pub mod rng;
pub mod stats;
