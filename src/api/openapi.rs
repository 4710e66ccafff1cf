//! The OpenAPI 3.0 description served at `GET /openapi.json`: every route, both request bodies
//! (each field with its type, default and constraints), the report of SPEC §3/§4 and every error
//! response. Hand-written here, next to the code it describes; `tests/api.rs` checks it names every
//! route the server answers.

use serde_json::{Map, Value, json};

use crate::metric::{Metric, POPULATION_RULE, in_json_order};
use crate::plan::{Limits, defaults};
use crate::report::{Scope, Stat};

/// The whole document.
pub fn document() -> Value {
    let limits = Limits::default();
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "pacer",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Load-tests an HTTP endpoint at a precise request rate and reports \
                response-time statistics. Errors are `{\"detail\": ...}` as FastAPI writes them; \
                an unknown path answers 404 `{\"detail\": \"Not Found\"}`. When the server runs \
                with --api-key, every route but GET /health needs `Authorization: Bearer <key>` \
                or `X-API-Key: <key>`. Limits (--max-qps, --max-duration, --max-workers) default \
                to the values shown in the field descriptions; a value past one is a 422 naming it. \
                Files a request names (`dataset`, `tokenizer`) are read only inside the server's \
                --data-dir."
        },
        "paths": {
            "/": {
                "get": {
                    "operationId": "root",
                    "summary": "Greeting",
                    "responses": merge(
                        json!({"200": ok("A greeting", schema_ref("Message"))}),
                        common_errors(),
                    ),
                }
            },
            "/health": {
                "get": {
                    "operationId": "health",
                    "summary": "Liveness check; never needs the API key",
                    "security": [],
                    "responses": merge(
                        json!({"200": ok("The server is up", schema_ref("Health"))}),
                        json!({"405": error("Method Not Allowed", "HTTPError")}),
                    ),
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "responses": merge(
                        json!({"200": ok("OpenAPI 3.0 document", json!({"type": "object"}))}),
                        common_errors(),
                    ),
                }
            },
            "/benchmark": {
                "post": {
                    "operationId": "benchmark",
                    "summary": "Load-test an HTTP endpoint",
                    "description": "Schedules round(qps × duration) requests at the given rate \
                        (or runs closed-loop for `duration` seconds with qps \"max\") and answers \
                        when the run is over; with `\"async\": true`, answers 202 at once and the \
                        run is followed at /runs/{id}.",
                    "requestBody": body("BenchmarkRequest"),
                    "responses": merge(
                        json!({"200": ok("The run's report", schema_ref("BenchmarkReport")),
                            "202": accepted()}),
                        run_errors("QPS, duration and timeout must be positive integers"),
                    ),
                }
            },
            "/fireworks_benchmark": {
                "post": {
                    "operationId": "fireworks_benchmark",
                    "summary": "Load-test an OpenAI-compatible completions API",
                    "description": "Sends the original's Fireworks payload (or a chat payload) \
                        with `Authorization: Bearer <token>` and measures time to first token \
                        when streaming. The token never appears in a response. With \
                        `\"async\": true`, answers 202 at once and the run is followed at \
                        /runs/{id}.",
                    "requestBody": body("FireworksRequest"),
                    "responses": merge(
                        json!({"200": ok("The run's report", schema_ref("FireworksReport")),
                            "202": accepted()}),
                        run_errors(
                            "QPS and duration must be positive integers | Please pass an auth \
                             token for FireworksAI API request | Max tokens should be > 0 | \
                             Please enter a prompt with length > 0",
                        ),
                    ),
                }
            },
            "/sweep": {
                "post": {
                    "operationId": "sweep",
                    "summary": "Find how much a target takes: a probe, constant-rate steps, the knee",
                    "description": "A saturation probe (closed loop over num_workers connections \
                        for probe_duration) measures the peak; then `steps` constant-rate runs \
                        from 10% to 100% of it (or the `rates` given, ascending), each \
                        step_duration long, on the same connections. A step passes when its \
                        achieved rate is at least min_achieved of the asked rate and its error \
                        rate is at most 1%; the knee is the highest asked rate whose step \
                        passed. A probe with no successful response stops the sweep (`stopped`). \
                        With `\"async\": true`, answers 202 at once and the run is followed at \
                        /runs/{id}.",
                    "requestBody": body("SweepRequest"),
                    "responses": merge(
                        json!({"200": ok("The sweep", schema_ref("SweepReport")),
                            "202": accepted()}),
                        run_errors("QPS, duration and timeout must be positive integers \
                            (for a timeout <= 0) | with kind fireworks_benchmark, the messages \
                            of /fireworks_benchmark"),
                    ),
                }
            },
            "/runs": {
                "get": {
                    "operationId": "list_runs",
                    "summary": "The async runs the server remembers, the newest first",
                    "description": "Every running run, and the last --keep-runs (default 32) \
                        finished ones; past that, the oldest to finish is forgotten first.",
                    "responses": merge(
                        json!({"200": ok("The runs", schema_ref("RunList"))}),
                        common_errors(),
                    ),
                }
            },
            "/runs/{id}": {
                "parameters": [run_id()],
                "get": {
                    "operationId": "get_run",
                    "summary": "An async run's state, live counters and, once it ended, its report",
                    "responses": merge(
                        json!({"200": ok("The run", schema_ref("RunStatus")),
                            "404": error("No such run (never started here, or forgotten)",
                                "HTTPError")}),
                        common_errors(),
                    ),
                },
                "delete": {
                    "operationId": "cancel_run",
                    "summary": "Cancel a running run",
                    "description": "Scheduling stops at once; requests in flight get up to their \
                        timeout. Answers 202 with the run (still `running`, with `cancelling: \
                        true`); once it has wound down its state is `cancelled` and its report \
                        (`interrupted: true`) accounts every request, the unsent apart from \
                        the errors as `unsent`.",
                    "responses": merge(
                        json!({"202": ok("Cancelling: the run as it is now", schema_ref("RunStatus")),
                            "404": error("No such run (never started here, or forgotten)",
                                "HTTPError"),
                            "409": error("The run already ended (done, cancelled or failed)",
                                "HTTPError")}),
                        common_errors(),
                    ),
                }
            },
            "/runs/{id}/html": {
                "parameters": [run_id()],
                "get": {
                    "operationId": "run_html",
                    "summary": "The HTML report of a run that has a report (done or cancelled)",
                    "responses": merge(
                        json!({"200": {"description": "One self-contained HTML page",
                                "content": {"text/html": {"schema": {"type": "string"}}}},
                            "404": error("No such run (never started here, or forgotten)",
                                "HTTPError"),
                            "409": error("The run is still running, or failed: no report yet",
                                "HTTPError")}),
                        common_errors(),
                    ),
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "Live metrics for Prometheus: runs by state, and each running \
                        run's requests, responses, errors, achieved rate and rolling p50/p99",
                    "description": "The Prometheus text exposition format 0.0.4. `pacer_runs` \
                        by `state`, then per running run (labels `run_id`, `kind`): \
                        `pacer_requests_sent_total`, `pacer_responses_total`, \
                        `pacer_errors_total`, `pacer_requests_in_flight`, \
                        `pacer_achieved_rate_requests_per_second` and the p50/p99 of the last \
                        whole second, of response time or, for a streaming run, time to first \
                        token (`pacer_response_time_p50_seconds`, \
                        `pacer_time_to_first_token_p99_seconds`, ...). Needs the API key like \
                        every route but /health (a scrape sends it as a bearer token).",
                    "responses": merge(
                        json!({"200": {"description": "The exposition",
                                "content": {"text/plain": {"schema": {"type": "string"}}}}}),
                        common_errors(),
                    ),
                }
            }
        },
        "security": [{"bearer": []}, {"apiKey": []}],
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                    "description": "Only when the server runs with --api-key."},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key",
                    "description": "Only when the server runs with --api-key."}
            },
            "schemas": {
                "Message": {
                    "type": "object", "required": ["message"],
                    "properties": {"message": {"type": "string", "example": "Hello, World!"}}
                },
                "Health": {
                    "type": "object", "required": ["status"],
                    "properties": {"status": {"type": "string", "enum": ["ok"]}}
                },
                "HTTPError": {
                    "type": "object", "required": ["detail"],
                    "properties": {"detail": {"type": "string"}}
                },
                "ValidationError": {
                    "type": "object", "required": ["loc", "msg", "type"],
                    "properties": {
                        "loc": {"type": "array", "description": "\"body\", then the field name \
                            (or, for json_invalid, the byte offset where parsing stopped)",
                            "items": {"oneOf": [{"type": "string"}, {"type": "integer"}]}},
                        "msg": {"type": "string"},
                        "type": {"type": "string", "description": "pydantic's error type: \
                            missing, json_invalid, model_attributes_type, string_type, \
                            float_type, float_parsing, finite_number, int_type, int_parsing, \
                            int_from_float, bool_type, bool_parsing, dict_type, list_type, literal_error, \
                            greater_than_equal, or value_error for a range or limit"},
                        "ctx": {"type": "object"}
                    }
                },
                "HTTPValidationError": {
                    "type": "object", "required": ["detail"],
                    "properties": {"detail": {"type": "array",
                        "items": schema_ref("ValidationError")}}
                },
                "BenchmarkRequest": benchmark_request(&limits),
                "FireworksRequest": fireworks_request(&limits),
                "Config": config_schema(),
                "BenchmarkReport": report_schema(false),
                "FireworksReport": report_schema(true),
                "RunAccepted": run_accepted(),
                "RunBrief": run_brief(),
                "RunList": {
                    "type": "object", "required": ["runs", "keep"],
                    "properties": {
                        "runs": {"type": "array", "items": schema_ref("RunBrief")},
                        "keep": {"type": "integer",
                            "description": "How many finished runs are remembered (--keep-runs)."}
                    }
                },
                "RunProgress": run_progress(),
                "RunStatus": run_status(),
                "SweepRequest": sweep_request(&limits),
                "SweepRow": sweep_row(),
                "SweepReport": sweep_report(),
            }
        }
    })
}

/// The 202 of a run request with `"async": true`.
fn accepted() -> Value {
    let mut v = ok(
        "Started (`\"async\": true`): follow it at `url`",
        schema_ref("RunAccepted"),
    );
    v["headers"] = json!({"Location": {"schema": {"type": "string"},
        "description": "The run's URL, as `url`."}});
    v
}

fn run_id() -> Value {
    json!({"name": "id", "in": "path", "required": true,
        "description": "The id a 202 answered.",
        "schema": {"type": "string", "pattern": "^[0-9a-f]{16}$"}})
}

fn run_state() -> Value {
    json!({"type": "string", "enum": ["running", "done", "cancelled", "failed"],
        "description": "running until the run ends; then done (ran to its end), cancelled \
            (stopped by DELETE /runs/{id}) or failed (could not run: see `error`)."})
}

fn run_accepted() -> Value {
    json!({
        "type": "object", "required": ["id", "url", "state"],
        "properties": {
            "id": {"type": "string", "pattern": "^[0-9a-f]{16}$",
                "description": "16 hex digits, unguessable."},
            "url": {"type": "string", "example": "/runs/9f86d081884c7d65",
                "description": "Where to follow the run (GET) or cancel it (DELETE)."},
            "state": {"type": "string", "enum": ["running"]}
        }
    })
}

fn run_brief() -> Value {
    json!({
        "type": "object", "required": ["id", "kind", "async", "state", "started", "target", "url"],
        "properties": {
            "id": {"type": "string"},
            "kind": {"type": "string", "enum": ["benchmark", "fireworks_benchmark", "sweep"],
                "description": "The endpoint that started it."},
            "async": {"type": "boolean", "description": "Started with `\"async\": true`; \
                false: a synchronous request waits for it (and it is cancelled if that client \
                hangs up)."},
            "state": run_state(),
            "started": {"type": "string", "format": "date-time",
                "description": "RFC 3339, UTC, to the second."},
            "target": {"type": "string", "description": "scheme://host[:port]/path?query of \
                the target, every query value replaced by `***` (it may carry a key), as in \
                every URL the server echoes."},
            "url": {"type": "string", "description": "/runs/{id}"}
        }
    })
}

fn run_progress() -> Value {
    let count = |d: &str| json!({"type": "integer", "description": d});
    json!({
        "type": "object",
        "description": "The counters the command line's progress line shows; they lag the \
            engine by at most one loop turn.",
        "properties": {
            "elapsed": {"type": "number", "description": "Seconds since this engine run began."},
            "sent": count("Requests handed to a connection."),
            "scheduled": {"type": "integer", "nullable": true,
                "description": "Requests the run schedules; null in closed loop (qps \"max\")."},
            "in_flight": count("Sent and not yet ended."),
            "completed": count("Whole responses received (any status)."),
            "errors": count("Requests in an error bucket so far (statuses, failures, not sent)."),
            "done": count("Requests in any bucket so far."),
            "phase": {"type": "object", "description": "Sweeps only: which run the counters \
                are of, `{\"phase\": \"probe\"}` or `{\"phase\": \"step\", \"step\": i, \
                \"steps\": n, \"qps\": rate}`."}
        }
    })
}

fn run_status() -> Value {
    let mut v = run_brief();
    let props = &mut v["properties"];
    props["elapsed"] = json!({"type": "number",
        "description": "Seconds from the start to now, or to the end."});
    props["progress"] = schema_ref("RunProgress");
    props["cancelling"] = json!({"type": "boolean",
        "description": "Present (true) while a cancelled run winds down."});
    props["finished"] = json!({"type": "string", "format": "date-time"});
    props["report"] = json!({"oneOf": [schema_ref("BenchmarkReport"),
        schema_ref("FireworksReport"), schema_ref("SweepReport")],
        "description": "When done or cancelled: the report a synchronous request answers."});
    props["html"] = json!({"type": "string",
        "description": "With a report: its HTML page, /runs/{id}/html."});
    props["error"] = json!({"type": "object", "description": "When failed: the status and \
        detail a synchronous request would have answered.",
        "properties": {"status": {"type": "integer"}, "detail": {}}});
    v
}

fn sweep_request(limits: &Limits) -> Value {
    let secs = |d: &str, default: Value| {
        json!({"type": "number", "nullable": true, "default": default,
            "description": format!("{d} Seconds; at most --max-duration (default {}).",
                limits.max_duration)})
    };
    json!({
        "type": "object",
        "description": "A /benchmark body without qps and duration (or, with kind \
            fireworks_benchmark, a /fireworks_benchmark body: token, prompt, model, ...), and \
            the sweep's fields. qps, duration, stages, shard, start_at and state are refused \
            (422): the sweep sets each run's rate and length. thresholds, when given, replace \
            the default error_rate<=0.01 check of every step; goodput objectives make each \
            row's goodput count only the requests that met them. num_workers (default 50, or 10 for \
            fireworks_benchmark) caps the connections of every run, the probe's included.",
        "additionalProperties": true,
        "properties": {
            "kind": {"type": "string", "enum": ["benchmark", "fireworks_benchmark"],
                "default": "benchmark", "description": "Which request each run is."},
            "rates": {"type": "array", "nullable": true, "items": {"type": "number"},
                "maxItems": crate::sweep::MAX_STEPS,
                "description": "The steps' rates (> 0, at most --max-qps), run ascending; \
                    instead of a probe."},
            "steps": {"type": "integer", "nullable": true, "minimum": 1,
                "maximum": crate::sweep::MAX_STEPS, "default": crate::sweep::STEPS,
                "description": "Steps from 10% to 100% of the probe's peak."},
            "probe_duration": secs("How long the probe runs.", json!(crate::sweep::PROBE_DURATION)),
            "step_duration": secs("How long each step runs.", json!(crate::sweep::STEP_DURATION)),
            "pause": secs("Quiet time between two runs.", json!(0)),
            "min_achieved": {"type": "number", "nullable": true, "default": crate::sweep::MIN_ACHIEVED,
                "minimum": 0, "exclusiveMinimum": true, "maximum": 1,
                "description": "The share of the asked rate a step must achieve to pass."},
            "async": {"type": "boolean", "nullable": true, "default": false,
                "description": "Answer 202 at once; follow the sweep at GET /runs/{id}."},
            "url": url_field(None),
        },
        "example": {"url": "http://localhost:8081/", "num_workers": 10, "steps": 8,
            "probe_duration": 10, "step_duration": 10}
    })
}

fn sweep_row() -> Value {
    let secs = json!({"type": "number", "nullable": true});
    json!({
        "type": "object",
        "description": "One step, read from its report.",
        "properties": {
            "step": {"type": "integer"},
            "asked_qps": {"type": "number"},
            "achieved_qps": {"type": "number", "nullable": true},
            "response_time_p50": secs, "response_time_p99": secs,
            "corrected_response_time_p99": secs,
            "time_to_first_token_p50": secs, "time_to_first_token_p99": secs,
            "time_per_output_token_p50": secs, "time_per_output_token_p99": secs,
            "error_rate": {"type": "number", "description": "Errors (not sent included) over all requests."},
            "goodput": {"type": "number", "description": "Successes per second of the step's \
                wall time (only those meeting the goodput objectives, when given)."},
            "pass": {"type": "boolean"},
            "checks": {"type": "array", "items": {"type": "object", "properties": {
                "expression": {"type": "string"}, "metric": {"type": "string"},
                "value": {}, "pass": {"type": "boolean"}}}},
            "interrupted": {"type": "boolean", "description": "Present (true) for a step cut \
                short by a cancel; it does not count for the knee."}
        }
    })
}

fn sweep_report() -> Value {
    json!({
        "type": "object",
        "required": ["kind", "config", "probe", "rule", "table", "knee", "steps"],
        "properties": {
            "kind": {"type": "string", "enum": ["sweep"]},
            "config": {"type": "object", "description": "A step's config without qps and \
                duration, and `sweep`: rates, steps, probe_duration, step_duration, pause, \
                min_achieved."},
            "probe": {"type": "object", "nullable": true, "description": "null with rates given.",
                "properties": {"peak": {"type": "number", "description": "Successes per second."},
                    "report": schema_ref("BenchmarkReport")}},
            "rule": {"type": "string", "description": "When a step passes, in words."},
            "table": {"type": "array", "items": schema_ref("SweepRow")},
            "knee": {"type": "object", "properties": {
                "qps": {"type": "number", "nullable": true,
                    "description": "The highest asked rate whose step passed; null when none did."},
                "step": {"type": "integer", "nullable": true},
                "note": {"type": "string"},
                "failed_below": {"type": "array", "items": {"type": "number"}}}},
            "steps": {"type": "array", "description": "Every step's full report, in order.",
                "items": {"oneOf": [schema_ref("BenchmarkReport"), schema_ref("FireworksReport")]}},
            "skipped": {"type": "array", "items": {"type": "number"},
                "description": "Rates from the peak too low to make a request in a step."},
            "interrupted": {"type": "boolean"},
            "stopped": {"type": "string", "description": "Why the sweep stopped after its \
                probe (no successful response)."}
        }
    })
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn ok(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

fn error(description: &str, schema: &str) -> Value {
    ok(description, schema_ref(schema))
}

fn body(schema: &str) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": schema_ref(schema)}}})
}

fn merge(a: Value, b: Value) -> Value {
    let mut m = match a {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    if let Value::Object(b) = b {
        m.extend(b);
    }
    Value::Object(m)
}

/// Errors any route but /health may answer.
fn common_errors() -> Value {
    json!({
        "401": error("Not authenticated (only with --api-key)", "HTTPError"),
        "405": error("Method Not Allowed", "HTTPError"),
    })
}

fn run_errors(messages_400: &str) -> Value {
    merge(
        common_errors(),
        json!({
            "400": error(&format!("The original service's checks: {messages_400}"), "HTTPError"),
            "403": error("The target is not allowed by the server's --allow-target", "HTTPError"),
            "413": error("Request body over 1 MiB", "HTTPError"),
            "422": error("Malformed JSON, a body that is not an object or not sent as JSON, \
                a missing field, a wrong type, a non-finite number, an invalid URL, a value \
                past a server limit, realtime on a server without --allow-realtime, a dataset or \
                tokenizer on a server without --data-dir or not a regular file inside it, or a \
                data set or tokenizer that cannot be parsed (the path, relative to --data-dir, \
                and line named), an unknown field (`extra_forbidden`, with the closest known \
                name), a workload past --max-workload-bytes, a start_at past \
                --max-start-delay, a ca_cert larger than a CA bundle, a sweep longer in all than \
                --max-duration",
                "HTTPValidationError"),
            "429": error("--max-runs runs (synchronous and async) are already in progress",
                "HTTPError"),
            "500": error("The run could not start or failed inside the server", "HTTPError"),
        }),
    )
}

/// A number > 0; strings holding numbers are accepted too (pydantic's lax mode).
fn positive(description: &str) -> Value {
    json!({"type": "number", "minimum": 0, "exclusiveMinimum": true,
        "description": format!("{description} Strings holding a number are accepted.")})
}

fn qps(description: &str) -> Value {
    json!({"oneOf": [
        positive(description),
        {"type": "string", "enum": ["max"],
            "description": "Saturation: every worker sends as soon as its previous request \
                completes, for `duration` seconds."}
    ]})
}

/// The run extensions both requests share (SPEC §3).
fn run_fields(limits: &Limits, workers_default: Value, timeout_default: f64) -> Map<String, Value> {
    let v = json!({
        "num_workers": {"type": "integer", "nullable": true, "default": workers_default,
            "maximum": limits.max_workers,
            "description": format!("Maximum simultaneous connections. 0, negative or null mean \
                the default. At most --max-workers (default {}).", limits.max_workers)},
        "timeout": {"type": "number", "nullable": true, "default": timeout_default,
            "minimum": 0, "exclusiveMinimum": true,
            "description": "Seconds per request; also how long a due request may wait for a free \
                worker before it counts as `not sent`."},
        "method": {"type": "string", "nullable": true, "default": "GET",
            "description": "HTTP method (a token such as GET or POST)."},
        "headers": {"type": "object", "nullable": true, "additionalProperties": {"type": "string"},
            "description": "Extra request headers; only their names are echoed in `config`."},
        "body": {"type": "string", "nullable": true, "description": "Request body."},
        "arrival": {"type": "string", "nullable": true, "enum": ["constant", "poisson"],
            "default": "constant"},
        "seed": {"type": "integer", "nullable": true, "minimum": 0,
            "description": "Seed of Poisson arrivals; random when absent."},
        "threads": {"type": "integer", "nullable": true, "minimum": 1, "maximum": 1024,
            "description": "OS threads; default at a fixed rate the fewest that carry it (40,000 qps per thread, at most the cores), with qps max the cores; never more than num_workers."},
        "max_lateness": {"type": "number", "nullable": true, "minimum": 0, "maximum": 1,
            "description": "Seconds a send may wait so that sends due within it share one wake-up of a thread (never early); given, it applies to any arrival process. Default: for constant arrivals 0.00005 when a thread sends at least every 50 µs (20,000 qps per thread), else 0; for Poisson arrivals 0 (batching would erase their short gaps). 0 wakes for every send. config.pacing says what was chosen and why."},
        "ca_cert": {"type": "string", "nullable": true,
            "description": "A PEM file with an extra trusted CA, relative to the server's --data-dir (a server without one refuses the field: 422)."},
        "insecure": {"type": "boolean", "nullable": true, "default": false,
            "description": "Skip TLS certificate verification."},
        "realtime": {"type": "boolean", "nullable": true, "default": false,
            "description": "Run the workers as SCHED_FIFO (needs root or CAP_SYS_NICE; fixed qps only). The report's scheduling field says what the run got."},
        "shard": {"type": "string", "nullable": true, "pattern": "^[0-9]+/[0-9]+$",
            "description": "Send only shard i of N of the run (`\"i/N\"`, 0 <= i < N): the requests \
                j of the whole plan with j mod N = i, over num_workers/N of the connections. \
                Merge the shards' states (`\"state\": true`) with `pacer merge`."},
        "start_at": {"oneOf": [{"type": "number"}, {"type": "string"}], "nullable": true,
            "description": "Wall-clock start of the schedule: unix seconds, or RFC 3339 with an \
                offset (`2026-01-01T00:00:00Z`). The run waits until then; one that starts \
                late still sends every request, timed from its intended time, and reports \
                `start_late`. At most --max-start-delay (default 300 s) from now."},
        "state": {"type": "boolean", "nullable": true, "default": false,
            "description": "Add the run's mergeable state to the report as `state` (for `pacer merge`)."},
        "stages": {"type": "array", "nullable": true, "minItems": 1,
            "items": {"type": "object", "required": ["qps", "duration"], "properties": {
                "qps": {"type": "number", "minimum": 0, "exclusiveMinimum": true},
                "duration": {"type": "number", "minimum": 0}}},
            "example": [{"qps": 100, "duration": 30}, {"qps": 200, "duration": 30}],
            "description": "Instead of qps and duration (422 with either): stages run one after \
                the other, each at its rate for its seconds. Request i goes out where the \
                integral of the rate reaches i; the report adds one summary per stage under \
                `stages`. Rates above 0; durations above 0 (0 only with ramp, not last)."},
        "ramp": {"type": "boolean", "nullable": true, "default": false,
            "description": "With stages: the rate moves linearly from the previous stage's rate \
                to each stage's over its duration (k6's ramping arrival rate); the first stage \
                holds its rate, so a first stage of 0 seconds sets where the ramp starts."},
        "goodput": {"type": "array", "nullable": true, "items": {"type": "string"},
            "example": ["time_to_first_token<=200ms,time_per_output_token<=50ms"],
            "description": "Per-request objectives, as vLLM's goodput: a request counts when it \
                succeeded and met every one. Metrics: every timing family of scope request (`pacer \
                metrics` lists them: response_time, time_to_first_token, \
                time_to_first_content_token, their corrected_ forms, dispatch_delay...), and \
                vLLM's ttft, tpot, e2el; < or <= a time. The \
                report adds goodput (per second), goodput_ratio and good_requests."},
        "thresholds": {"type": "array", "nullable": true, "items": {"type": "string"},
            "example": ["response_time_p99<=200ms", "error_rate<=1%"],
            "description": "Expressions METRIC OP VALUE (OP one of < <= > >= == !=; several \
                per string with commas) over the report's fields: mean_X, std_X, max_X, X_pNN \
                of a timing family X (times in s, ms, us or µs), error_rate (0.01 or 1%), \
                achieved_qps, total_requests, successes, errors, elapsed, health (== ok). The \
                report lists each with its value and pass; a malformed one is a 422 before the \
                run, with its position and the metric names."},
        "interval": {"type": "number", "nullable": true, "default": defaults::INTERVAL,
            "minimum": 0, "exclusiveMinimum": true,
            "description": format!("Seconds per interval of the report's `timeline`. At most {} \
                intervals over duration + 2 × timeout; by default 1 s, or longer for runs too \
                long for that.", defaults::MAX_INTERVALS)},
        "otlp": {"type": "string", "nullable": true,
            "description": "An OTLP/HTTP collector's metrics URL (http:// or https://, e.g. \
                http://collector:4318/v1/metrics): the run's live figures (those of \
                GET /metrics) are pushed there as OTLP JSON every `interval` and once at the \
                end, from a thread of their own; a failed push never fails the run, and the \
                report's `otlp` says how the pushes went. With --allow-target the collector \
                must be allowed too (403). A sweep pushes each of its runs, their points \
                labelled phase, step and qps."},
        "async": {"type": "boolean", "nullable": true, "default": false,
            "description": "Answer 202 at once with the run's id, after the same checks (429 \
                included), instead of the report when the run is over. Follow it at \
                GET /runs/{id}, cancel it with DELETE /runs/{id}."},
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn url_field(default: Option<&str>) -> Value {
    let mut v = json!({"type": "string", "pattern": "^[hH][tT][tT][pP][sS]?://",
        "description": "http:// or https:// URL with a host."});
    if let Some(d) = default {
        v["default"] = json!(d);
    }
    v
}

fn benchmark_request(limits: &Limits) -> Value {
    let mut props = Map::new();
    props.insert("url".into(), url_field(None));
    props.insert(
        "qps".into(),
        qps(&format!(
            "Requests per second, may be fractional. At most --max-qps (default {}).",
            limits.max_qps
        )),
    );
    props.insert(
        "duration".into(),
        positive(&format!(
            "Seconds. At most --max-duration (default {}).",
            limits.max_duration
        )),
    );
    props.extend(run_fields(
        limits,
        json!(format!(
            "min(qps, --max-workers); {} with qps \"max\"",
            defaults::SATURATION_WORKERS
        )),
        defaults::TIMEOUT,
    ));
    json!({
        "type": "object",
        "required": ["url"],
        "description": "qps and duration are required unless stages are given.",
        "additionalProperties": true,
        "properties": props,
        "example": {"url": "http://localhost:8081", "qps": 20, "duration": 5, "num_workers": 5}
    })
}

fn fireworks_request(limits: &Limits) -> Value {
    let mut props = Map::new();
    props.insert(
        "token".into(),
        json!({"type": "string", "minLength": 1, "writeOnly": true,
            "description": "Bearer token of the API; never echoed."}),
    );
    props.insert(
        "model".into(),
        json!({"type": "string", "default": defaults::LLM_MODEL}),
    );
    props.insert(
        "prompt".into(),
        json!({"type": "string", "default": "", "minLength": 1,
            "description": "Required in effect: an empty prompt is a 400, unless `dataset`, \
                `prompts` or `input_tokens` bring the prompts."}),
    );
    props.insert(
        "max_tokens".into(),
        json!({"type": "integer", "default": defaults::LLM_MAX_TOKENS, "minimum": 1}),
    );
    props.insert("url".into(), url_field(Some(defaults::LLM_URL)));
    props.insert(
        "stream".into(),
        json!({"oneOf": [{"type": "boolean"},
            {"type": "string", "enum": ["True", "true", "False", "false"]}],
            "default": defaults::LLM_STREAM}),
    );
    let mut q = qps(&format!(
        "Requests per second. At most --max-qps (default {}).",
        limits.max_qps
    ));
    q["default"] = json!(defaults::LLM_QPS);
    props.insert("qps".into(), q);
    let mut d = positive(&format!(
        "Seconds. At most --max-duration (default {}).",
        limits.max_duration
    ));
    d["default"] = json!(defaults::LLM_DURATION);
    props.insert("duration".into(), d);
    props.insert(
        "api".into(),
        json!({"type": "string", "enum": ["completions", "chat"], "default": "completions",
            "description": "chat sends `messages` to /v1/chat/completions."}),
    );
    props.insert(
        "payload".into(),
        json!({"type": "object", "nullable": true, "additionalProperties": true,
            "description": "Merged over the default payload; a null member removes that field."}),
    );
    props.extend(workload_fields(limits));
    props.extend(run_fields(
        limits,
        json!(defaults::LLM_WORKERS),
        defaults::LLM_TIMEOUT,
    ));
    json!({
        "type": "object",
        "required": ["token"],
        "additionalProperties": true,
        "properties": props,
        "example": {"token": "<token>", "prompt": "Snow is white", "max_tokens": 25,
            "stream": "True", "qps": 10, "duration": 5}
    })
}

/// The prompts of an LLM run and their lengths (docs/llm.md).
fn workload_fields(limits: &Limits) -> Map<String, Value> {
    let lengths = |what: &str| {
        json!({"oneOf": [{"type": "string"}, {"type": "number", "minimum": 1}], "nullable": true,
            "description": format!("{what}: `MEAN`, `MEAN:STDDEV` (a normal, rounded, \
                truncated at 1) or `uniform:MIN:MAX`, in tokens; a number is a fixed MEAN. \
                Drawn per entry with the run's seed.")})
    };
    let v = json!({
        "dataset": {"type": "string", "nullable": true, "description": "Path of a data set \
            file relative to the server's --data-dir (an absolute path only if inside it; \
            without --data-dir, a 422): JSON lines with `prompt`, `messages` (chat) or ShareGPT \
            `conversations` (optionally `max_tokens`), or a ShareGPT JSON array. Requests cycle \
            through its entries. A path that leaves the directory (`..`, a symbolic link) or is \
            not a regular file, and a malformed line, are a 422 naming the path or line."},
        "prompts": {"type": "array", "nullable": true, "items": {"type": "string", "minLength": 1},
            "description": "Prompts given inline (for small sets; the request body is capped at \
                1 MiB). Not with `dataset`."},
        "max_dataset_bytes": {"type": "integer", "nullable": true, "minimum": 1,
            "default": limits.max_dataset_bytes,
            "description": format!("Largest data set file read; at most the server's \
                --max-dataset-bytes (default {}).", limits.max_dataset_bytes)},
        "output_len_from_dataset": {"type": "boolean", "nullable": true, "default": false,
            "description": "ShareGPT: the length of the reply to each prompt sets its max_tokens."},
        "shuffle": {"type": "boolean", "nullable": true, "default": false,
            "description": "Take the entries in an order shuffled with `seed`; file order otherwise."},
        "input_tokens": lengths("Synthetic prompts of these lengths (not with `dataset` or `prompts`)"),
        "output_tokens": lengths("Each request's max_tokens (a data set line's own wins)"),
        "ignore_eos": {"type": "boolean", "nullable": true, "default": false,
            "description": "Adds `\"ignore_eos\": true` to the payload (vLLM-compatible \
                servers then generate max_tokens tokens)."},
        "tokenizer": {"type": "string", "nullable": true, "description": "Path of the model's \
            Hugging Face tokenizer.json relative to the server's --data-dir (same rules as \
            `dataset`): exact synthetic lengths, and token counts when the server sends no \
            usage. Without it lengths are approximate (0.75 words per token)."},
        "prefix_tokens": {"type": "integer", "nullable": true, "minimum": 0, "default": 0,
            "description": "Every synthetic prompt starts with the same this many tokens \
                (prefix caching); needs `input_tokens`."},
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn config_schema() -> Value {
    let mut schema = json!({
        "type": "object",
        "description": "The effective inputs of the run (never the token).",
        "additionalProperties": true,
        "properties": {
            "url": {"type": "string"},
            "qps": {"oneOf": [{"type": "number"}, {"type": "string", "enum": ["max"]}]},
            "duration": {"type": "number"},
            "num_workers": {"type": "integer"},
            "timeout": {"type": "number"},
            "method": {"type": "string"},
            "headers": {"type": "array", "items": {"type": "string"},
                "description": "Header names only."},
            "body_bytes": {"type": "integer"},
            "arrival": {"type": "string", "enum": ["constant", "poisson"]},
            "seed": {"type": "integer"},
            "threads": {"type": "integer"},
            "interval": {"type": "number", "description": "Seconds per timeline interval."},
            "threads_reason": {"type": "string",
                "description": "Why that many threads: as asked, the fewest that carry the rate, or one per core."},
            "max_lateness": {"type": "number",
                "description": "The lateness budget in effect, seconds (fixed rate only)."},
            "pacing": {"type": "object",
                "description": "How the engine threads wake for sends (fixed rate only), chosen from the rate per thread and the arrival process.",
                "properties": {
                    "batch_budget_us": {"type": "number", "description": "Sends due within this many µs of the first share a wake-up (max_lateness in µs)."},
                    "spin_max_us": {"type": "number", "description": "A thread that wakes for each send stops sleeping up to this many µs before a send and watches the clock, as long as the OS was recently late waking it (0: it sleeps to each send)."},
                    "why": {"type": "string", "description": "The reason for both, in words."}}},
            "api": {"type": "string", "enum": ["completions", "chat"]},
            "payload_style": {"type": "string", "enum": ["fireworks", "openai"],
                "description": "The default payload sent: the original's (fireworks; always, \
                    through /fireworks_benchmark), or the minimal OpenAI one (the command line's \
                    default for a host outside fireworks.ai)."},
            "stream": {"type": "boolean"},
            "ca_cert": {"type": "string"},
            "insecure": {"type": "boolean"},
            "realtime": {"type": "boolean"},
            "shard": {"type": "string", "description": "This run's shard, i/N."},
            "shards": {"type": "integer", "description": "A merged report: how many shards."},
            "start_at": {"type": "string", "description": "The wall-clock start asked for, RFC 3339."},
            "thresholds": {"type": "array", "items": {"type": "string"},
                "description": "Each threshold expression, as given (comma lists split)."},
            "goodput": {"type": "array", "items": {"type": "string"},
                "description": "Each goodput objective, as given (comma lists split)."},
            "stages": {"type": "array", "items": {"type": "object", "properties": {
                "qps": {"type": "number"}, "duration": {"type": "number"}}},
                "description": "The stages as asked (in place of qps); duration is their total."},
            "ramp": {"type": "boolean"},
            "warning": {"type": "string"},
            "fireworks_payload": {"type": "object", "additionalProperties": true,
                "description": "The payload sent; with many prompts, the first request's with \
                    its prompt (or messages) replaced by where the prompts come from."}
        }
    });
    if let Some(props) = schema["properties"].as_object_mut() {
        props.extend(workload_config());
    }
    schema
}

/// The `config` members an LLM run's workload adds.
fn workload_config() -> Map<String, Value> {
    let v = json!({
            "ignore_eos": {"type": "boolean"},
            "prompts": {"type": "string", "enum": ["dataset", "inline", "synthetic", "prompt"],
                "description": "Where an LLM run's prompts come from (only with a workload)."},
            "dataset": {"type": "string", "description": "The file read: through the API, \
                its resolved path inside the server's --data-dir."},
            "prompt_entries": {"type": "integer",
                "description": "Entries the requests cycle through."},
            "dataset_skipped": {"type": "integer",
                "description": "ShareGPT conversations with nothing to send."},
            "order": {"type": "string", "enum": ["sequential", "shuffled"]},
            "distinct_requests": {"type": "integer",
                "description": "Request bodies built before the run (one per distinct prompt \
                    and max_tokens)."},
            "input_tokens": {"type": "string"},
            "output_tokens": {"type": "string"},
            "output_len_from_dataset": {"type": "boolean"},
            "prefix_tokens": {"type": "integer"},
            "tokenizer": {"type": "string", "description": "The file read: through the API, \
                its resolved path inside the server's --data-dir."},
            "token_lengths": {"type": "string", "enum": ["exact", "approximate"],
                "description": "exact with a tokenizer, else approximate (0.75 words per token)."}
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn seconds(description: &str) -> Value {
    json!({"type": "number", "nullable": true, "description": description})
}

/// The fields of one timing family, named as the report names them, each described with what
/// the family spans and which requests give it samples (`crate::metric`).
fn family(props: &mut Map<String, Value>, m: &Metric) {
    for stat in Stat::ALL {
        let what = match stat {
            Stat::Mean => "Seconds; null with no samples.",
            Stat::Max => "Seconds, the largest sample; null with no samples.",
            Stat::Std => "Sample standard deviation (n−1); null with fewer than 2 samples.",
            _ => "Seconds, numpy's linear interpolation; null with fewer than 2 samples.",
        };
        let description = format!(
            "{} One sample per {}, from {}: {}. {what}",
            m.name,
            m.scope.word(),
            m.population.word(),
            m.note
        );
        props.insert(stat.field(m.name), seconds(&description));
    }
}

/// The report's `timeline`: one entry per interval (see `engine::timeline` for which interval
/// each figure counts in).
fn timeline_schema(llm: bool) -> Value {
    let count = |d: &str| json!({"type": "integer", "description": d});
    let secs = |d: &str| json!({"type": "number", "nullable": true, "description": d});
    let mut p = Map::new();
    p.insert(
        "start".into(),
        json!({"type": "number", "description": "Seconds from the run's start."}),
    );
    p.insert(
        "duration".into(),
        json!({"type": "number", "description": "Seconds; the last interval ends with the run."}),
    );
    p.insert(
        "scheduled".into(),
        count("Requests whose intended time fell in the interval."),
    );
    p.insert("sent".into(), count("Requests dispatched in the interval."));
    p.insert(
        "completed".into(),
        count("Whole responses (any status) whose last byte came in the interval."),
    );
    p.insert(
        "successes".into(),
        count("Successes that ended in the interval."),
    );
    p.insert(
        "errors".into(),
        count("Statuses and named failures seen in the interval (not-sent excluded)."),
    );
    p.insert(
        "not_sent".into(),
        count("Requests given up as not sent in the interval."),
    );
    p.insert(
        "achieved_qps".into(),
        json!({"type": "number", "description": "sent / duration."}),
    );
    for (k, d) in [
        (
            "response_time_p50",
            "Of the responses completed in the interval; null when none. Within 12.2% of the sample of that rank.",
        ),
        ("response_time_p90", "As response_time_p50."),
        ("response_time_p99", "As response_time_p50."),
        (
            "dispatch_delay_p99",
            "Of the requests dispatched in the interval; null when none.",
        ),
    ] {
        p.insert(k.into(), secs(d));
    }
    if llm {
        p.insert(
            "time_to_first_token_p50".into(),
            secs("Streaming: of the first tokens that arrived in the interval; null when none."),
        );
        p.insert(
            "time_to_first_token_p99".into(),
            secs("As time_to_first_token_p50."),
        );
        p.insert(
            "output_tokens".into(),
            count("Output tokens of the successes that ended in the interval."),
        );
    }
    json!({"type": "array", "description": "One entry per interval of config.interval seconds \
        from the run's start to its end, empty ones included.",
        "items": {"type": "object", "properties": p}})
}

fn report_schema(llm: bool) -> Value {
    let mut props = Map::new();
    props.insert("config".into(), schema_ref("Config"));
    props.insert("total_requests".into(), json!({"type": "integer"}));
    props.insert("errors".into(), json!({"type": "integer"}));
    props.insert(
        "errors_status".into(),
        json!({"type": "array", "description": "Distinct errors, sorted: HTTP statuses, then \
            named failures. Present only when errors > 0.",
            "items": {"oneOf": [{"type": "integer"}, {"type": "string"}]}}),
    );
    props.insert("successes".into(), json!({"type": "integer"}));
    props.insert(
        "error_counts".into(),
        json!({"type": "object", "additionalProperties": {"type": "integer"},
            "description": "Count of each error, keyed by status or name."}),
    );
    props.insert(
        "elapsed".into(),
        json!({"type": "number", "description": "Wall seconds of the run."}),
    );
    props.insert(
        "achieved_qps".into(),
        json!({"type": "number", "nullable": true,
            "description": "Sends per second from the first send to the last (fixed rate), or completions per second of the duration (closed loop); null for a fixed-rate run that sent fewer than 2 requests, with `achieved_qps_note` saying so."}),
    );
    props.insert(
        "achieved_qps_note".into(),
        json!({"type": "string", "description": "Present only when `achieved_qps` is null: why."}),
    );
    props.insert(
        "unsent".into(),
        json!({"type": "integer", "description": "Present only for a stopped run (`interrupted`): requests it never sent. They are not errors: total_requests = successes + errors + unsent."}),
    );
    props.insert(
        "error_rate".into(),
        json!({"type": "number", "nullable": true,
            "description": "errors / (total_requests - unsent): over the requests that ran; null with none."}),
    );
    props.insert(
        "thresholds".into(),
        json!({"type": "array", "description": "With `thresholds` in the request: each \
            threshold, the report field it read, that field's value (null when the run has \
            none, which fails) and whether it held.",
            "items": {"type": "object", "properties": {
                "expression": {"type": "string"}, "metric": {"type": "string"},
                "value": {"nullable": true}, "pass": {"type": "boolean"}}}}),
    );
    props.insert(
        "goodput".into(),
        json!({"type": "number", "nullable": true, "description": "With goodput objectives: \
            requests that succeeded and met every objective, per second of the run (vLLM's \
            goodput)."}),
    );
    props.insert(
        "goodput_ratio".into(),
        json!({"type": "number", "nullable": true,
            "description": "good_requests / total_requests."}),
    );
    props.insert(
        "good_requests".into(),
        json!({"type": "integer", "description": "With goodput objectives: requests that \
            succeeded and met every one."}),
    );
    props.insert(
        "health".into(),
        json!({"type": "object", "description": "Whether the generator limited the run: \
            `ok`, or `generator-limited` when a thread used 90% of a core, or half a core while \
            preempted 1,000 times a second, or when the generator's own lateness p99 passed 25% \
            of the mean send interval (and 100 µs), or (streaming) when more than 1% of the token \
            gaps were read together (token_gaps_coalesced). Requests left unsent by busy \
            connections are a note (the target's doing) unless a CPU rule holds too.",
            "properties": {
                "verdict": {"type": "string", "enum": ["ok", "generator-limited"]},
                "reasons": {"type": "array", "items": {"type": "string"}},
                "notes": {"type": "array", "items": {"type": "string"}},
                "cpu_seconds": {"type": "number", "description": "User + system CPU of the engine threads."},
                "cpu_per_request": {"type": "number", "nullable": true},
                "thread_cpu_share": {"type": "array", "items": {"type": "number"},
                    "description": "Per engine thread, its CPU as a share of one core over the run."},
                "involuntary_context_switches": {"type": "integer"},
                "generator_lateness_p99": {"type": "number", "nullable": true,
                    "description": "Seconds from intended time to the thread taking the request off \
                        its schedule, for requests that did not queue behind others."},
                "send_interval": {"type": "number", "nullable": true,
                    "description": "Mean seconds between intended sends; null in closed loop."},
                "not_sent": {"type": "integer"}}}),
    );
    props.insert(
        "stages".into(),
        json!({"type": "array", "description": "With stages: one summary per stage, for the \
            requests intended in it: stage (1-based), qps and duration as asked, from_qps (with \
            ramp), start (seconds into the run), intended_qps, then the same counts, timing \
            families and goodput as the run's own fields, elapsed being the stage's duration.",
            "items": {"type": "object", "additionalProperties": true}}),
    );
    props.insert("bytes_received".into(), json!({"type": "integer"}));
    props.insert("connections_opened".into(), json!({"type": "integer"}));
    props.insert(
        "scheduling".into(),
        json!({"type": "string", "description": "How the worker threads were scheduled: `normal`, `realtime (SCHED_FIFO priority 1)`, or `normal: realtime was refused (...)`."}),
    );
    props.insert(
        "timestamps".into(),
        json!({"type": "string", "description": "Where receive times came from: `kernel` (the kernel's receive stamp of each read, so a response read late is still timed when it arrived), or `user: <why>` (the clock when the read happened: the kernel refused SO_TIMESTAMPING, gave no stamps, or PACER_TIMESTAMPS=user forced it)."}),
    );
    props.insert(
        "timestamps_clock_drift".into(),
        json!({"type": "number", "description": "With kernel timestamps: seconds the wall clock (which the kernel stamps with) moved against the monotonic clock during the run; the mapping followed it."}),
    );
    props.insert(
        "interrupted".into(),
        json!({"type": "boolean", "description": "Present (true) only when the run was stopped before its end; requests not yet sent are then counted in `unsent`, not in `errors`."}),
    );
    props.insert(
        "tls_handshakes".into(),
        json!({"type": "object", "description": "https targets only: handshakes done in full and resumed.",
            "properties": {"full": {"type": "integer"}, "resumed": {"type": "integer"}}}),
    );
    props.insert(
        "histograms".into(),
        json!({"type": "object", "description": "Per timing family reported, the non-empty \
            log-scale buckets (10 per decade) ascending, in seconds; the counts add up to the \
            family's samples.",
            "additionalProperties": {"type": "array", "items": {"type": "object",
                "properties": {"from": {"type": "number"}, "to": {"type": "number"},
                    "count": {"type": "integer"}}}}}),
    );
    props.insert(
        "otlp".into(),
        json!({"type": "object", "description": "With `otlp`: how the pushes went \
            (`url` with query values hidden, `pushes`, `failed`, and `error`: the first \
            failure, or null).",
            "properties": {"url": {"type": "string"}, "pushes": {"type": "integer"},
                "failed": {"type": "integer"}, "error": {"type": "string", "nullable": true}}}),
    );
    props.insert(
        "start_late".into(),
        json!({"type": "number", "description": "With `start_at`: seconds the run was ready \
            after its start (0 when on time). Every request was still sent, timed from its \
            intended time."}),
    );
    props.insert(
        "state".into(),
        json!({"type": "object", "additionalProperties": true, "description": "With \
            `\"state\": true`: the run's mergeable state (a JSON object, version in \
            `pacer_state`), for `pacer merge`."}),
    );
    props.insert("timeline".into(), timeline_schema(llm));
    props.insert(
        "clock".into(),
        json!({"type": "object", "description": "The run's start (t0, the zero of the timeline \
            and of --requests times) on two clocks, read together: CLOCK_MONOTONIC in \
            nanoseconds, to line up with another process's monotonic logs, and Unix time.",
            "properties": {"monotonic_start_ns": {"type": "integer"},
                "unix_start": {"type": "number", "description": "Seconds since 1970."}}}),
    );
    for t in in_json_order().filter(|t| t.runs == Scope::Every) {
        family(&mut props, t);
    }
    let mut required: Vec<Value> = [
        "config",
        "total_requests",
        "errors",
        "successes",
        "error_counts",
        "elapsed",
        "achieved_qps",
        "error_rate",
        "bytes_received",
        "connections_opened",
    ]
    .iter()
    .map(|s| json!(s))
    .collect();
    for t in in_json_order().filter(|t| t.runs == Scope::Every) {
        required.push(json!(Stat::Mean.field(t.name)));
    }
    if llm {
        for t in in_json_order().filter(|t| t.runs != Scope::Every) {
            family(&mut props, t);
        }
        props.insert(
            "output_tokens".into(),
            json!({"type": "integer", "description": "Per successful request: \
                usage.completion_tokens when sent, else the tokenizer's count of the streamed \
                text (with `tokenizer`), else the count of token events."}),
        );
        let sources = json!({"type": "object", "description": "Successful requests per source.",
            "properties": {"usage": {"type": "integer"}, "tokenizer": {"type": "integer"},
                "events": {"type": "integer"}, "none": {"type": "integer"}}});
        let source = |what: &str| {
            json!({"type": "string", "nullable": true,
                "enum": ["usage", "tokenizer", "events", "none", "mixed"],
                "description": format!("Where every successful request's {what} count came \
                    from, or `mixed` when they differ (see the `_sources` counts); null with \
                    no successes.")})
        };
        props.insert("output_tokens_source".into(), source("output"));
        props.insert("output_tokens_sources".into(), sources.clone());
        props.insert(
            "input_tokens".into(),
            json!({"type": "integer", "nullable": true, "description": "Prompt tokens of the \
                successful requests: usage.prompt_tokens when sent, else the tokenizer's count \
                of the prompt (with `tokenizer`); null when none was counted."}),
        );
        props.insert(
            "mean_input_tokens".into(),
            json!({"type": "number", "nullable": true,
                "description": "input_tokens over the requests that had a count."}),
        );
        props.insert("input_tokens_source".into(), source("input"));
        props.insert("input_tokens_sources".into(), sources);
        props.insert(
            "total_token_throughput".into(),
            json!({"type": "number", "description": "(input_tokens + output_tokens) / elapsed."}),
        );
        props.insert(
            "output_tokens_per_second".into(),
            json!({"type": "number", "description": "Streaming only."}),
        );
        props.insert(
            "mean_output_tokens".into(),
            json!({"type": "number", "nullable": true, "description": "Streaming only."}),
        );
        props.insert(
            "token_gaps_coalesced".into(),
            json!({"type": "object", "description": "Streaming only, per run and per stage: of \
                the `of` gaps between successive token events of the successful requests, the \
                `count` whose two events came in one read. A read has one arrival time, so its \
                token events are one chunk whose tokens share the gap before it: those gaps are \
                not measured (never a gap of 0). `share` = count / of (null without gaps); past \
                1% the health verdict says so.",
                "properties": {"count": {"type": "integer"}, "of": {"type": "integer"},
                    "share": {"type": "number", "nullable": true}}}),
        );
        required.push(json!("output_tokens"));
    }
    json!({
        "type": "object",
        "description": format!("{} Samples: {POPULATION_RULE}.", if llm {
            "The /benchmark report plus, when streaming, the time-to-first-token family and \
             the token extensions (server_time_to_first_token only when the server reports it)."
        } else {
            "The original's fields, then the extensions."
        }),
        "required": required,
        "properties": props,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `$ref` points at a schema that exists.
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r.clone());
                }
                m.values().for_each(|x| refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }

    #[test]
    fn references_resolve_and_fields_are_described() {
        let d = document();
        let mut all = Vec::new();
        refs(&d, &mut all);
        assert!(all.len() > 10);
        for r in all {
            let name = r.strip_prefix("#/components/schemas/").unwrap();
            assert!(d["components"]["schemas"][name].is_object(), "{r}");
        }
        let b = &d["components"]["schemas"]["BenchmarkRequest"]["properties"];
        for f in [
            "url",
            "qps",
            "duration",
            "num_workers",
            "timeout",
            "method",
            "headers",
            "body",
            "arrival",
            "seed",
            "threads",
            "ca_cert",
            "insecure",
            "realtime",
            "shard",
            "start_at",
            "state",
            "thresholds",
            "stages",
            "ramp",
            "goodput",
            "interval",
            "async",
        ] {
            assert!(b[f].is_object(), "{f}");
        }
        let f = &d["components"]["schemas"]["FireworksRequest"]["properties"];
        assert_eq!(f["max_tokens"]["default"], json!(25));
        assert_eq!(f["url"]["default"], json!(defaults::LLM_URL));
        let r = &d["components"]["schemas"]["FireworksReport"]["properties"];
        assert!(r["time_to_first_token_p99"].is_object());
        let t = &r["timeline"]["items"]["properties"];
        assert!(t["response_time_p99"].is_object() && t["time_to_first_token_p50"].is_object());
        assert!(r["clock"]["properties"]["monotonic_start_ns"].is_object());
        assert!(r["mean_inter_token_latency"].is_object());
        assert!(r["inter_chunk_latency_p99"].is_object());
        for field in [
            "input_tokens",
            "mean_input_tokens",
            "total_token_throughput",
            "output_tokens_source",
        ] {
            assert!(r[field].is_object(), "{field}");
        }
        for field in ["dataset", "tokenizer"] {
            let text = f[field]["description"].as_str().unwrap();
            assert!(
                text.contains("relative to the server's --data-dir"),
                "{text}"
            );
        }
        for field in [
            "dataset",
            "prompts",
            "input_tokens",
            "output_tokens",
            "ignore_eos",
            "tokenizer",
            "prefix_tokens",
            "shuffle",
            "output_len_from_dataset",
            "max_dataset_bytes",
        ] {
            assert!(f[field].is_object(), "{field}");
        }
        assert_eq!(
            d["paths"]["/benchmark"]["post"]["responses"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .len(),
            10
        );
        let sweep = &d["components"]["schemas"]["SweepRequest"]["properties"];
        for f in [
            "kind",
            "rates",
            "steps",
            "probe_duration",
            "step_duration",
            "pause",
            "min_achieved",
            "async",
        ] {
            assert!(sweep[f].is_object(), "{f}");
        }
        assert_eq!(sweep["steps"]["default"], json!(crate::sweep::STEPS));
        let row = &d["components"]["schemas"]["SweepRow"]["properties"];
        assert!(row["asked_qps"].is_object() && row["time_to_first_token_p99"].is_object());
        let status = &d["components"]["schemas"]["RunStatus"]["properties"];
        for f in [
            "id", "kind", "state", "started", "target", "url", "progress", "report",
        ] {
            assert!(status[f].is_object(), "{f}");
        }
        assert_eq!(
            d["paths"]["/runs/{id}"]["delete"]["responses"]["409"]["content"]["application/json"]["schema"],
            schema_ref("HTTPError")
        );
    }
}
