//! The timing families: the one home of their names, what each spans, its scope (one sample per
//! request, per token or per chunk), its unit, which runs report it and which requests feed it.
//! A leaf: it imports nothing from the crate. The engine keeps one recorder per family
//! (`engine::Timings`, indexed by [`Id`]) and computes each request's values once
//! (`engine::stats`); the report, the text table, goodput, thresholds, sweeps, shards, the HTML
//! page (from the `metrics` list the page's JSON carries) and the OpenAPI document read the
//! families from here, and `pacer metrics` prints them.
//!
//! **Which requests feed a family** ([`Population`]): `dispatch_delay` every request that went
//! out; the response families (response time, latency, first byte, corrected or not) every
//! request that got a complete response, whatever its status (SPEC §2); every family of a
//! streamed answer (first token, token and chunk gaps, time per output token, the server's own
//! figures) successful requests only: a stream that failed has no first token to count
//! from, so it gives none of its token gaps either.

use std::fmt::Write as _;

/// Which family: an index into [`METRICS`] (and into the engine's recorders).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Id {
    ResponseTime,
    Latency,
    CorrectedResponseTime,
    DispatchDelay,
    TimeToFirstToken,
    TimeToFirstByte,
    CorrectedTimeToFirstToken,
    CorrectedTimeToFirstByte,
    InterTokenLatency,
    InterChunkLatency,
    TimePerOutputToken,
    ServerTimeToFirstToken,
    TtftOutsideServer,
    ServerTimePerOutputToken,
    TimeToFirstReasoningToken,
    TimeToFirstContentToken,
    TimeToFirstToolCall,
    CorrectedTimeToFirstReasoningToken,
    CorrectedTimeToFirstContentToken,
    CorrectedTimeToFirstToolCall,
}

impl Id {
    /// Every family, in [`METRICS`]' order.
    pub const ALL: [Id; 20] = [
        Id::ResponseTime,
        Id::Latency,
        Id::CorrectedResponseTime,
        Id::DispatchDelay,
        Id::TimeToFirstToken,
        Id::TimeToFirstByte,
        Id::CorrectedTimeToFirstToken,
        Id::CorrectedTimeToFirstByte,
        Id::InterTokenLatency,
        Id::InterChunkLatency,
        Id::TimePerOutputToken,
        Id::ServerTimeToFirstToken,
        Id::TtftOutsideServer,
        Id::ServerTimePerOutputToken,
        Id::TimeToFirstReasoningToken,
        Id::TimeToFirstContentToken,
        Id::TimeToFirstToolCall,
        Id::CorrectedTimeToFirstReasoningToken,
        Id::CorrectedTimeToFirstContentToken,
        Id::CorrectedTimeToFirstToolCall,
    ];

    pub const fn metric(self) -> &'static Metric {
        &METRICS[self as usize]
    }

    /// `X` in the report's field names.
    pub const fn name(self) -> &'static str {
        self.metric().name
    }
}

/// What one sample stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// One sample per request.
    Request,
    /// One sample per output token (after the first).
    Token,
    /// One sample per content chunk (after the first): the token events of one read.
    Chunk,
}

impl Scope {
    pub fn word(self) -> &'static str {
        match self {
            Scope::Request => "request",
            Scope::Token => "token",
            Scope::Chunk => "chunk",
        }
    }
}

/// Which runs report a family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runs {
    /// Every run (SPEC §2).
    Every,
    /// Streaming LLM runs (SPEC §4).
    Stream,
    /// Streaming LLM runs whose server reports the figure (llama.cpp's `timings`, vLLM's
    /// `metrics`, Fireworks' header or `perf_metrics`), or sends what it times (reasoning deltas,
    /// tool calls): absent from a run without samples.
    StreamWhenReported,
}

impl Runs {
    pub fn word(self) -> &'static str {
        match self {
            Runs::Every => "every run",
            Runs::Stream => "streaming runs",
            Runs::StreamWhenReported => "streaming runs whose server reports it",
        }
    }
}

/// Which requests give a family its samples (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Population {
    /// Every request handed to a connection.
    Sent,
    /// Every request that got a complete response (any status, a stream error included).
    Complete,
    /// Successful requests only.
    Success,
}

impl Population {
    pub fn word(self) -> &'static str {
        match self {
            Population::Sent => "sent",
            Population::Complete => "complete responses",
            Population::Success => "successes",
        }
    }
}

/// The rule of [`Population`] in one sentence, for the report's notes and the OpenAPI document.
pub const POPULATION_RULE: &str = "dispatch_delay covers every request sent; the response \
    families every complete response (any status); every family of a streamed answer \
    (first token of any kind, token and chunk gaps, time per output token) successful requests only";

/// One timing family: `mean_X`, `std_X`, `X_p50` ... in the JSON, a row in the text report.
#[derive(Clone, Copy, Debug)]
pub struct Metric {
    pub id: Id,
    /// `X` in the field names.
    pub name: &'static str,
    /// The row's label in the text report.
    pub label: &'static str,
    /// What the timing spans, one line under the text report's table.
    pub note: &'static str,
    pub scope: Scope,
    pub runs: Runs,
    pub population: Population,
    /// The unit of its values in the JSON report.
    pub unit: &'static str,
    /// One of the original service's fields: reported before the extensions, in this order.
    pub original: bool,
}

const fn family(
    id: Id,
    name: &'static str,
    label: &'static str,
    note: &'static str,
    (scope, runs, population): (Scope, Runs, Population),
    original: bool,
) -> Metric {
    Metric {
        id,
        name,
        label,
        note,
        scope,
        runs,
        population,
        unit: "s",
        original,
    }
}

const EVERY_COMPLETE: (Scope, Runs, Population) =
    (Scope::Request, Runs::Every, Population::Complete);
const STREAM_COMPLETE: (Scope, Runs, Population) =
    (Scope::Request, Runs::Stream, Population::Complete);
const STREAM_SUCCESS: (Scope, Runs, Population) =
    (Scope::Request, Runs::Stream, Population::Success);
/// A family of what only some servers send: reported when the run saw it.
const STREAM_SENT_SUCCESS: (Scope, Runs, Population) = (
    Scope::Request,
    Runs::StreamWhenReported,
    Population::Success,
);

/// Every timing family, in the text report's order (and [`Id`]'s). The JSON reports the
/// `original` ones first (`response_time`, `latency`, then `time_to_first_token`, as the original
/// did), then the rest. `time_to_first_token` comes before `time_to_first_byte` so that, where
/// the two are the same, the text report keeps the row LLM users look for.
pub static METRICS: [Metric; 20] = [
    family(
        Id::ResponseTime,
        "response_time",
        "response_time",
        "dispatch (the request handed to a connection; connect and TLS included) to the last byte",
        EVERY_COMPLETE,
        true,
    ),
    family(
        Id::Latency,
        "latency",
        "latency (headers)",
        "dispatch to the end of the response headers",
        EVERY_COMPLETE,
        true,
    ),
    family(
        Id::CorrectedResponseTime,
        "corrected_response_time",
        "corrected_response_time",
        "intended send time to the last byte: waits behind the schedule count (wrk2's correction)",
        EVERY_COMPLETE,
        false,
    ),
    family(
        Id::DispatchDelay,
        "dispatch_delay",
        "dispatch_delay",
        "intended send time to dispatch: pacer's own lateness, or a wait for a free connection",
        (Scope::Request, Runs::Every, Population::Sent),
        false,
    ),
    family(
        Id::TimeToFirstToken,
        "time_to_first_token",
        "time_to_first_token",
        "dispatch to the first SSE event that carries a token",
        STREAM_SUCCESS,
        true,
    ),
    family(
        Id::TimeToFirstByte,
        "time_to_first_byte",
        "time_to_first_byte",
        "dispatch to the first body byte (what the original called time to first token)",
        STREAM_COMPLETE,
        false,
    ),
    family(
        Id::CorrectedTimeToFirstToken,
        "corrected_time_to_first_token",
        "corrected_time_to_first_token",
        "intended send time to the first token: a send held back by pacer or a full pool counts, as a user would see it",
        STREAM_SUCCESS,
        false,
    ),
    family(
        Id::CorrectedTimeToFirstByte,
        "corrected_time_to_first_byte",
        "corrected_time_to_first_byte",
        "intended send time to the first body byte",
        STREAM_COMPLETE,
        false,
    ),
    family(
        Id::InterTokenLatency,
        "inter_token_latency",
        "inter_token_latency",
        "per token of a success: the gap before its chunk (the token events of one read) divided by the tokens the chunk carried",
        (Scope::Token, Runs::Stream, Population::Success),
        false,
    ),
    family(
        Id::InterChunkLatency,
        "inter_chunk_latency",
        "inter_chunk_latency",
        "every gap between two successive content chunks of a success (a chunk: the token events of one read)",
        (Scope::Chunk, Runs::Stream, Population::Success),
        false,
    ),
    family(
        Id::TimePerOutputToken,
        "time_per_output_token",
        "time_per_output_token",
        "per request: (response_time - time_to_first_token) / (output tokens - 1)",
        STREAM_SUCCESS,
        false,
    ),
    family(
        Id::ServerTimeToFirstToken,
        "server_time_to_first_token",
        "server_time_to_first_token",
        "the server's own figure: llama.cpp's timings.prompt_ms or vLLM's metrics.time_to_first_token_ms (from when a slot took the request: its wait in the server's queue is not in it), else Fireworks' fireworks-server-time-to-first-token header or perf_metrics",
        STREAM_SENT_SUCCESS,
        false,
    ),
    family(
        Id::TtftOutsideServer,
        "ttft_outside_server",
        "ttft_outside_server",
        "per request: time_to_first_token - server_time_to_first_token (0 when the server's is larger): the server's queue, the network and the client",
        STREAM_SENT_SUCCESS,
        false,
    ),
    family(
        Id::ServerTimePerOutputToken,
        "server_time_per_output_token",
        "server_time_per_output_token",
        "the server's own decode time per output token: llama.cpp's timings.predicted_per_token_ms, vLLM's metrics.mean_itl_ms",
        STREAM_SENT_SUCCESS,
        false,
    ),
    family(
        Id::TimeToFirstReasoningToken,
        "time_to_first_reasoning_token",
        "time_to_first_reasoning_token",
        "dispatch to the first reasoning delta (reasoning_content or reasoning): a reasoning model's thinking starts",
        STREAM_SENT_SUCCESS,
        false,
    ),
    family(
        Id::TimeToFirstContentToken,
        "time_to_first_content_token",
        "time_to_first_content_token",
        "dispatch to the first token of the answer itself (text or delta.content), after any reasoning",
        STREAM_SUCCESS,
        false,
    ),
    family(
        Id::TimeToFirstToolCall,
        "time_to_first_tool_call",
        "time_to_first_tool_call",
        "dispatch to the first tool_calls delta",
        STREAM_SENT_SUCCESS,
        false,
    ),
    family(
        Id::CorrectedTimeToFirstReasoningToken,
        "corrected_time_to_first_reasoning_token",
        "corrected_time_to_first_reasoning_token",
        "intended send time to the first reasoning delta",
        STREAM_SENT_SUCCESS,
        false,
    ),
    family(
        Id::CorrectedTimeToFirstContentToken,
        "corrected_time_to_first_content_token",
        "corrected_time_to_first_content_token",
        "intended send time to the first token of the answer itself",
        STREAM_SUCCESS,
        false,
    ),
    family(
        Id::CorrectedTimeToFirstToolCall,
        "corrected_time_to_first_tool_call",
        "corrected_time_to_first_tool_call",
        "intended send time to the first tool_calls delta",
        STREAM_SENT_SUCCESS,
        false,
    ),
];

/// The family named `name` (a report name, `X` in `mean_X`).
pub fn by_name(name: &str) -> Option<&'static Metric> {
    METRICS.iter().find(|m| m.name == name)
}

/// [`METRICS`] in the JSON report's order: the original's families first, then the extensions.
pub fn in_json_order() -> impl Iterator<Item = &'static Metric> {
    let original = METRICS.iter().filter(|m| m.original);
    original.chain(METRICS.iter().filter(|m| !m.original))
}

/// The list `pacer metrics` prints: one line per family (name, scope, unit, runs, population,
/// note), then the rule of which requests feed which family.
pub fn listing() -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<30} {:<8} {:<5} {:<40} {:<19} note",
        "name", "scope", "unit", "reported in", "samples from"
    );
    for m in &METRICS {
        let _ = writeln!(
            out,
            "{:<30} {:<8} {:<5} {:<40} {:<19} {}",
            m.name,
            m.scope.word(),
            m.unit,
            m.runs.word(),
            m.population.word(),
            m.note
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Each family X is reported as mean_X, std_X, X_p50, X_p90, X_p97, X_p99, X_p999, max_X and histograms.X."
    );
    let _ = writeln!(out, "Samples: {POPULATION_RULE}.");
    out
}

/// The list as JSON (for `pacer metrics --json` and the HTML page).
pub fn to_json() -> serde_json::Value {
    METRICS
        .iter()
        .map(|m| {
            serde_json::json!({
                "name": m.name,
                "label": m.label,
                "scope": m.scope.word(),
                "unit": m.unit,
                "runs": m.runs.word(),
                "samples_from": m.population.word(),
                "original": m.original,
                "note": m.note,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_index_the_list_and_names_are_unique() {
        for (k, id) in Id::ALL.into_iter().enumerate() {
            assert_eq!(METRICS[k].id, id);
            assert_eq!(id as usize, k);
            assert_eq!(by_name(id.name()).map(|m| m.id), Some(id));
        }
        let mut names: Vec<&str> = METRICS.iter().map(|m| m.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), METRICS.len());
        let order: Vec<&str> = in_json_order().take(3).map(|m| m.name).collect();
        assert_eq!(order, ["response_time", "latency", "time_to_first_token"]);
    }

    #[test]
    fn every_streamed_answer_family_takes_successes_only() {
        for m in &METRICS {
            let streamed_answer = matches!(
                m.id,
                Id::TimeToFirstToken
                    | Id::CorrectedTimeToFirstToken
                    | Id::InterTokenLatency
                    | Id::InterChunkLatency
                    | Id::TimePerOutputToken
                    | Id::ServerTimeToFirstToken
                    | Id::TtftOutsideServer
                    | Id::ServerTimePerOutputToken
                    | Id::TimeToFirstReasoningToken
                    | Id::TimeToFirstContentToken
                    | Id::TimeToFirstToolCall
                    | Id::CorrectedTimeToFirstReasoningToken
                    | Id::CorrectedTimeToFirstContentToken
                    | Id::CorrectedTimeToFirstToolCall
            );
            assert_eq!(
                m.population == Population::Success,
                streamed_answer,
                "{}",
                m.name
            );
        }
        let list = listing();
        assert!(
            list.contains("inter_token_latency            token"),
            "{list}"
        );
        assert!(list.contains(POPULATION_RULE));
    }
}
