//! Every default value of a run and every server limit, in one place: clap reads them for the
//! command line's flags (and its `--help`), the API's `input` for absent fields, the OpenAPI
//! document for its `default`s, and [`Plan::new`](super::Plan::new) for what neither front fills.
//!
//! The values are the original service's and scripts' where they had one (`benchmark.py`,
//! `fireworks_ai_benchmark.py`, the FastAPI models); the limits are SPEC §5's.

/// `/benchmark` and `pacer bench`: seconds per request when `timeout` is absent (the original's).
pub const TIMEOUT: f64 = 2.0;
/// `pacer bench`: requests per second when `--qps` is absent (the API requires `qps`).
pub const BENCH_QPS: f64 = 20.0;
/// `pacer bench`: seconds to run when `--duration` is absent (the API requires `duration`).
pub const BENCH_DURATION: f64 = 5.0;
/// `num_workers` in saturation mode, where there is no rate to derive it from (wrk's `-c` habit).
/// With a rate, the default is `ceil(qps)`, at least 1 and at most `--max-workers` (the command
/// line: at most [`MAX_WORKERS`]).
pub const SATURATION_WORKERS: usize = 50;
/// A session run's default `num_workers` per session started a second: a session keeps its
/// connection for its whole life (every turn and think time), so the run needs about the
/// sessions alive at once, the rate times a session's length; this allows 32 s sessions.
pub const SESSION_WORKERS_PER_QPS: usize = 32;
/// Most OS threads a run may ask for.
pub const MAX_THREADS: usize = 1024;
/// Requests per second one engine thread carries at a fixed rate, with a margin: a fixed-rate run
/// gets `ceil(qps / THREAD_QPS)` threads by default (at most one per core), since every extra
/// thread adds its own wake-ups. Measured on the 2-core VM against nginx on loopback: a paced
/// request costs its thread 6–12 µs of CPU (sending it, waking the target, reading the answer,
/// sleeping), so one core carries 80,000–160,000/s; one thread and two reached the same ceiling
/// (52,000–55,000 qps at a load average of 7, where nginx and the other tasks were the limit),
/// and two threads cost 17–30% more CPU per request than one at 20,000–40,000 qps. 40,000 keeps a
/// thread under half a core, with room for a slower target, TLS, or a busier machine.
pub const THREAD_QPS: f64 = 40_000.0;
/// The default lateness budget, seconds (`--max-lateness`): sends due within it of the first
/// due one go out in one wake-up. Applied by default to constant arrivals only, and only when a
/// thread sends at least every `MAX_LATENESS` (20,000/s per thread); other arrival processes are
/// batched only when the user asks. See `plan::wake` and `MAX_LATENESS_INTERVALS`.
pub const MAX_LATENESS: f64 = 50e-6;
/// ... and never more than this many mean send intervals of one thread, so batching can pair
/// sends but never bunch more than two of a constant schedule into one wake-up.
pub const MAX_LATENESS_INTERVALS: f64 = 1.0;
/// A thread that wakes for each send may stop sleeping up to this share of its mean send
/// interval before a send and spin on the clock (so the spinning costs at most this share of a
/// core; it spins only as long as the OS has recently been late, see `engine::wake::Oversleep`)...
pub const SPIN_SHARE: f64 = 0.1;
/// ... and at most this long, seconds: the OS wakes a sleeping thread 5-20 µs late on the 2-core
/// VM while its CPUs are busy (`clock_nanosleep` p50 10 µs, p90 13-18 µs past the instant asked
/// for), and 30-50 µs when they idle (dispatch delay p50/p99 32/51 µs at 1,000 qps on the quiet
/// VM, sleeping to each send).
pub const SPIN_MAX: f64 = 100e-6;
/// ... and not at all when the share is under this, seconds (high rates: the wake-ups are what
/// the CPU is spent on).
pub const SPIN_MIN: f64 = 10e-6;

/// The LLM benchmark (`/fireworks_benchmark`, `pacer fireworks`): where the original sent its
/// requests.
pub const LLM_URL: &str = "https://api.fireworks.ai/inference/v1/completions";
pub const LLM_MODEL: &str = "accounts/fireworks/models/llama-v3-8b-instruct-hf";
/// The command line's prompt (the original script's). The API's `prompt` has no useful default:
/// absent, it is empty, which the original answers with a 400.
pub const LLM_PROMPT: &str = "Snow is white";
pub const LLM_MAX_TOKENS: i64 = 25;
pub const LLM_STREAM: bool = true;
pub const LLM_QPS: f64 = 10.0;
pub const LLM_DURATION: f64 = 5.0;
pub const LLM_WORKERS: i64 = 10;
pub const LLM_TIMEOUT: f64 = 3.0;
/// Most requests `pacer fireworks` sends to the default [`LLM_URL`] (a billed API) when no URL
/// was named and `--yes` not given: enough to try it, not enough to run up a bill by accident.
pub const LLM_DEFAULT_URL_MAX_REQUESTS: u64 = 10;

/// Synthetic prompts a run makes at most (one per request up to this, then cycled): enough
/// variety for prefix caches and lengths, bounded memory and plan time whatever the run's length.
/// The one `prompt` is copied as often when `output_tokens` varies, so each copy draws its own.
pub const SYNTHETIC_PROMPTS: usize = 1000;
/// The largest data set file read (`--max-dataset-bytes`; the server's own cap for the API).
pub const MAX_DATASET_BYTES: u64 = crate::llm::DEFAULT_MAX_DATASET_BYTES;
/// Seconds per interval of the report's `timeline` when none is asked for. Runs whose bound
/// (duration + 2 × timeout) would make more than [`MAX_INTERVALS`] get the first of
/// [`INTERVAL_STEPS`] that keeps them within it.
pub const INTERVAL: f64 = 1.0;
/// Longer default intervals, in seconds, for runs too long for 1 s ones.
pub const INTERVAL_STEPS: [f64; 12] = [
    2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0,
];
/// Most intervals a timeline may have: its memory is constant per interval (a day at 1 s is
/// 86,400 of them).
pub const MAX_INTERVALS: usize = 100_000;

/// `pacer serve --max-qps`: the highest rate a request may ask for.
pub const MAX_QPS: f64 = 1_000_000.0;
/// `pacer serve --max-duration`: the longest run (and timeout), seconds.
pub const MAX_DURATION: f64 = 3600.0;
/// `pacer serve --max-workers`: the most connections a run may ask for.
pub const MAX_WORKERS: usize = 10_000;

/// The command line's ceilings. The server limits above protect a shared service; a person at
/// their own terminal may run a day-long soak or open many connections, so these only refuse
/// what is nonsense or would overflow: a run longer than a year, a rate past what any clock
/// could pace, more connections than file descriptors could ever hold.
pub const CLI_MAX_QPS: f64 = 1e9;
/// Seconds in 365 days.
pub const CLI_MAX_DURATION: f64 = 365.0 * 86_400.0;
pub const CLI_MAX_WORKERS: usize = 1_000_000;
/// Most requests one run may schedule: past 2^53 a request's index, and so its intended time
/// `i / qps`, is no longer exact in a float.
pub const MAX_REQUESTS: f64 = 9_007_199_254_740_992.0;

/// `pacer merge --max-state-bytes`: the largest shard state read, one line of a log or one
/// whole state file. A state is a few MB (every timing family of up to 100,000 exact samples
/// packed, about 0.5 MB each, or a bounded sketch past that); this leaves room for a staged run's
/// families per stage, and refuses a stream that never ends (a `/dev/zero` on stdin) before it
/// takes the machine's memory.
pub const MAX_STATE_BYTES: u64 = 64 << 20;

/// `pacer serve --io-timeout`: seconds a request body may take to arrive once its head has, and
/// an answer to be taken by the client. Short, since each holds a request thread: a client that
/// stalls its upload or never reads its answer gives the thread back within this.
pub const API_IO_TIMEOUT: f64 = 5.0;
/// `pacer serve --max-busy-per-client`: connections from one client address (an IPv6 client:
/// its /64) served at once, each on a request thread of its own; more get 429 at once.
pub const API_MAX_BUSY_PER_CLIENT: usize = 64;
/// `pacer serve --new-client-slots`: of the request threads (`--max-connections` less the one
/// place the gate keeps to read heads in), this many are kept for clients with none being served,
/// so one client's flood leaves room for others. At most half of them.
pub const API_NEW_CLIENT_SLOTS: usize = 16;
/// The most bytes one run's workload may hold (`--max-workload-bytes`, the server's and the
/// command line's default): its distinct request bytes, estimated before anything is built from
/// the prompts' sizes and counts (a data set's file size, inline prompts, synthetic prompts of
/// their longest length, the one prompt copied per drawn `max_tokens`). Building takes about
/// twice this for a moment; the API builds one such plan at a time.
pub const MAX_WORKLOAD_BYTES: u64 = 256 << 20;
/// `pacer serve --max-start-delay`: the latest a `start_at` may be, seconds after the request
/// arrives; a run waiting for its start holds a run slot all that time.
pub const MAX_START_DELAY: f64 = 300.0;
/// The largest `ca_cert` file read (a CA bundle of every public root is about 220 KB).
pub const MAX_CA_CERT_BYTES: u64 = 4 << 20;
/// The API builds workloads estimated above this one at a time (below, at once): a burst of
/// requests then never holds several big builds, each briefly about twice its budget.
pub const BUILD_ALONE_BYTES: u64 = 1 << 20;

/// Tokens per `hash_ids` block of a replayed trace (`--block-tokens`), as in the Mooncake format.
pub const BLOCK_TOKENS: u32 = 512;
/// How much faster than recorded a trace is replayed (`--replay-speed`).
pub const REPLAY_SPEED: f64 = 1.0;
