//! pacer: a load generator that sends HTTP requests at a precise rate and measures what comes back,
//! down to the first token of a streaming LLM response.
//!
//! ```text
//!  curl ──HTTP──> api (own HTTP, a thread per call) ─┐
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
//!
//! Modules:
//! - [`plan`]: `Input` → validated `Plan` (request bytes built once, schedule, workers, TLS, LLM mode);
//!   [`plan::defaults`] holds every default and server limit both fronts read.
//! - [`engine`]: `run(plan)`; per thread a mio loop ([`engine::worker`]) over a slab of
//!   [`engine::conn`] connections, a timerfd ([`engine::sys`]) and a deadline heap; pacing is pure
//!   arithmetic ([`engine::pacing`]); failures are `Copy` values with stable names ([`engine::outcome`]).
//! - [`http1`]: request bytes; response head (httparse), chunked and body framing: incremental, no
//!   allocation.
//! - [`llm`]: the SSE framer, event classification (token / usage / error / done), payloads; and
//!   the workload, built before a run: data sets, token lengths, synthetic prompts cut to exact
//!   counts by a Hugging Face tokenizer, one request body per distinct prompt.
//! - [`stats`]: numpy-exact recorders up to 100,000 samples, a mergeable KLL sketch beyond.
//! - [`report`]: JSON and text, from the one list of timing families ([`report::TIMINGS`]).
//!   [`api`]: the HTTP front (accept gate, requests, routes). [`cli`]: clap front. [`mock`]:
//!   built-in targets, including every fault mode. [`rng`]: the one seedable generator.
//! - [`html`]: the self-contained HTML page (inline SVG charts, no network) drawn from a report's JSON.
//!
//! The quantiles crate is not used for the streaming percentiles, although the design named it:
//! its CKMS merge re-inserts kept values as single samples (a merged p50 landed at rank 0.28–0.30
//! in our measurement) and its memory grows with the run; `stats::sketch` explains the choice.
//!
//! `unsafe` is denied everywhere but [`engine::sys`], the one module of Linux calls, which asks
//! the OS for real-time scheduling of the workers (`--realtime`; rustix has no
//! `sched_setscheduler`), with a `// SAFETY:` note on each block.
#![deny(unsafe_code)]

pub mod api;
pub mod cli;
pub mod engine;
pub mod html;
pub mod http1;
pub mod llm;
pub mod mock;
pub mod plan;
pub mod report;
pub mod rng;
pub mod stats;
