//! pacer: a load generator that sends HTTP requests at a precise rate and measures what comes back,
//! down to the first token of a streaming LLM response.
//!
//! ```text
//!  curl ──HTTP──> api (own HTTP, a thread per call) ─┐
//!                                                    ├─ Plan ──> engine::run(plan) ──> RunStats ──> report (JSON / text)
//!  shell ──argv─> cli (clap) ────────────────────────┘              │
//!                                  spawns T engine threads ("lanes"), each: epoll + Slab<Conn>
//!                                  + its share of the schedule + a deadline FIFO + the clock of
//!                                  the kernel's receive stamps; a paced lane sleeps until its
//!                                  next sends and drains the sockets then;
//!                                  lanes publish progress counters (relaxed atomics), read a
//!                                  stop switch once per loop turn and, at the end, send their
//!                                  stats over crossbeam-channel; the engine merges them with +=.
//!                                  With --requests, lanes send batches of records over a bounded
//!                                  channel to one writer thread (engine::export).
//! ```
//!
//! Data flows one way: inputs become a validated [`plan::Plan`] in exactly one place
//! ([`plan::Plan::new`], shared by the API and the CLI), the engine turns a plan into merged
//! [`engine::RunStats`], and [`report`] turns those into the JSON of the contract and the text report.
//!
//! Modules:
//! - [`plan`]: `Input` → validated `Plan` (request bytes built once, schedule, workers, TLS, LLM mode);
//!   [`plan::defaults`] holds every default and server limit both fronts read; [`plan::stages`]
//!   the rate function of a run (stages, ramps) and its exact inverse, which the pacing reads;
//!   [`plan::workload`] turns an LLM run's data set or synthetic prompts into one request per
//!   distinct body and the O(1) table that says which one request `i` sends.
//! - [`engine`]: `run(plan)` / `run_with(plan, controls)`. Inside, one direction per request:
//!   socket → [`engine::conn`] (state enum over plain TCP or rustls) → [`engine::exchange`] (one
//!   request/response as a pure state machine over `http1` and `llm`) → the lane
//!   ([`engine::lane`], the loop and only the loop) builds one [`engine::outcome::Completed`] per
//!   request → [`engine::stats`] (`LaneStats::record`, merged with `+=`). When requests fall due
//!   is [`engine::pacing`]'s (pure arithmetic), which sends share a wake-up is [`engine::wake`]'s,
//!   which goes next and when one waited too long is [`engine::dispatch`]'s (pure, `now` passed
//!   in), kernel receive stamps on the run's clock are [`engine::clock`]'s, the Linux calls are
//!   [`engine::sys`]'s. Also from each record: [`engine::timeline`] (the run per interval),
//!   [`engine::live`] (lock-free rolling percentiles for the progress line) and [`engine::export`]
//!   (every request as a JSON line, written off the lanes); [`engine::packed`] is the one
//!   serialization of `RunStats` (a shard's state).
//! - [`http1`]: request bytes; response head (httparse), chunked and body framing: incremental, no
//!   allocation.
//! - [`llm`]: the SSE framer, event classification (token / usage / error / done), payloads; and
//!   the workload, built before a run: data sets, token lengths, synthetic prompts cut to exact
//!   counts by a Hugging Face tokenizer, one request body per distinct prompt.
//! - [`stats`]: numpy-exact recorders up to 100,000 samples, a mergeable KLL sketch beyond;
//!   [`stats::pack`] writes a recorder compactly so other processes can merge it exactly.
//! - [`shard`]: one run split over N processes (`--shard i/N`, `--start-at`) and merged back
//!   (`pacer merge`): the plan fingerprint, the versioned shard state, the merge. It reads the
//!   plan and the engine's statistics; neither reads it (the shard index is a plan setting,
//!   [`plan::ShardIndex`]).
//! - [`wall`]: wall-clock time (Unix nanoseconds, `--start-at` parsing, RFC 3339, a run's
//!   [`wall::WallTimes`]), a leaf the plan, the engine and the shards all read.
//! - [`metric`]: the timing families (name, scope, unit, note, which runs and requests), a leaf
//!   every other module reads; `pacer metrics` prints them.
//! - [`report`]: JSON and text, from the one list of timing families ([`metric::METRICS`]) and
//!   what it reads of a plan, taken once ([`report::Settings`], which a shard's state carries).
//!   [`api`]: the HTTP front (accept gate, requests, routes). [`cli`]: clap front. [`mock`]:
//!   built-in targets, including every fault mode. [`rng`]: the one seedable generator.
//! - [`html`]: the self-contained HTML page (inline SVG charts, no network) drawn from a report's
//!   JSON, or a sweep's page from a sweep's JSON.
//! - [`sweep`]: a saturation probe, then constant-rate steps, each run by the engine and
//!   reported by [`report`]; the table of steps and the knee ([`sweep::table`]). Both fronts run
//!   it: `pacer sweep`, `POST /sweep` (the API's [`api::runs`] holds async runs of any kind).
//! - [`compare`]: `pacer compare` of two runs (reports, states or `--requests` files): each
//!   figure's change and whether it is real (Mann–Whitney, bootstrap intervals); and the
//!   summary of `--repeat N` (means and Student-t intervals across runs).
//! - [`slo`] holds thresholds (checked against a report's JSON, so a run, a stage or a sweep step
//!   alike) and goodput objectives (checked per request by `engine::stats`), parsed before a run.
//!   [`health`]: the pure rules that judge whether the generator limited a run, from what the
//!   engine measured about itself ([`engine::usage`]); the report asks for the verdict.
//! - [`live`]: a run's figures while it goes, for other programs: `pacer serve`'s `GET /metrics`
//!   (Prometheus text) and `--otlp` (OTLP/HTTP JSON pushed from a thread of its own); the one
//!   home of their names.
//! - [`units`]: durations as people read and type them (`250ms`, `1m30s`), a leaf every layer
//!   prints with.
//!
//! ## Layers
//!
//! Data flows one way, and so do the imports: a module uses only the modules named on its line
//! below (any `crate::` path in `src/`, test code included). `tests/layers.rs` reads this block,
//! fails on any other import, and checks that the graph has no circle. The timing families live
//! in the leaf `metric`, the wall-clock types in the leaf `wall`, and the shards compute the
//! plan's fingerprint: neither the engine nor the plan imports `shard`, and nothing below the
//! report imports it.
//!
//! ```text
//! rng    ->
//! units  ->
//! wall   ->
//! metric ->
//! http1  ->
//! llm    -> rng http1
//! stats  -> rng
//! mock   -> rng http1
//! slo    -> metric units
//! plan   -> http1 llm rng slo metric units wall
//! engine -> http1 llm plan rng slo stats metric units wall
//! health -> engine units
//! report -> engine health plan slo stats metric units
//! shard  -> engine health llm plan report rng stats metric units wall
//! html   -> report metric
//! live   -> engine http1 plan report metric wall
//! sweep  -> engine live plan report slo metric units
//! compare -> engine metric plan rng shard slo stats units
//! api    -> engine html http1 live llm plan report shard sweep slo metric units
//! cli    -> api compare engine html http1 live llm mock plan report shard slo sweep stats metric units
//! ```
//!
//! The quantiles crate is not used for the streaming percentiles, although the design named it:
//! its CKMS merge re-inserts kept values as single samples (a merged p50 landed at rank 0.28–0.30
//! in our measurement) and its memory grows with the run; `stats::sketch` explains the choice.
//!
//! pacer runs on Linux only (`engine::sys` says so at compile time elsewhere). `unsafe` is denied
//! everywhere but [`engine::sys`], the one module of Linux calls, which asks the OS for real-time
//! scheduling of the engine threads (`--realtime`), for a thread's own CPU use (`health`), for
//! `epoll_pwait2`'s nanosecond timeout and for `recvmsg` with its receive-timestamp control
//! message (rustix has none of these), with a `// SAFETY:` note on each block.
#![deny(unsafe_code)]

pub mod api;
pub mod cli;
pub mod compare;
pub mod engine;
pub mod health;
pub mod html;
pub mod http1;
pub mod live;
pub mod llm;
pub mod metric;
pub mod mock;
pub mod plan;
pub mod report;
pub mod rng;
pub mod shard;
pub mod slo;
pub mod stats;
pub mod sweep;
pub mod units;
pub mod wall;
