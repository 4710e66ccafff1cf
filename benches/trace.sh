#!/usr/bin/env bash
# Trace replay (`--trace`, issue 20 item 5): what building a 10,000-line trace's prompts costs,
# and what replaying it costs per request beside a single-prompt run at the same rate.
#
# The trace is synthetic, in the Mooncake format, with the reuse real traces show: Poisson
# arrivals; 40 shared "system prompts" of 2 to 6 blocks drawn Zipf-like (a few are most of the
# traffic); conversations whose later requests repeat their earlier blocks and add one or two;
# and fresh blocks. Blocks are 512 tokens (the format's), input lengths cut inside the last.
#
# 1. Build: the wall time from starting `pacer llm --trace` to its settings line (printed once
#    the plan and every request's bytes are built, before the first send), and the process's
#    peak RSS (GNU time) over the whole replay: without and with a tokenizer (word-level,
#    written here: exact lengths cost a search per request).
# 2. Replay vs single prompt, ROUNDS rounds alternating, against `pacer mock`: the trace at
#    RATE requests a second (its times compressed by --replay-speed) and a single-prompt run of
#    one prompt of the trace's mean length at the same rate with Poisson arrivals: dispatch
#    delay p50/p99/mean (the report's), CPU per request (user + sys of the process over its
#    requests, GNU time; and the engine threads' own, health.cpu_per_request), peak RSS.
#
# Usage: bash benches/trace.sh [RATE] [ROUNDS] [LINES]     (defaults: 500 2 10000; ~2 min)
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${1:-500}; ROUNDS=${2:-2}; LINES=${3:-10000}
cargo build --release --quiet
PACER=./target/release/pacer
[ -x /usr/bin/time ] || { echo "needs GNU time (/usr/bin/time)" >&2; exit 2; }
work=$(mktemp -d /tmp/pacer-trace.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

# The trace, at 100 requests a second as recorded; and a tokenizer whose tokens are words.
python3 - "$work" "$LINES" <<'EOF'
import json, random, sys
work, lines = sys.argv[1], int(sys.argv[2])
rng = random.Random(20)
B = 512
next_id = 0
def fresh(n):
    global next_id
    ids = list(range(next_id, next_id + n)); next_id += n
    return ids
systems = [fresh(rng.randint(2, 6)) for _ in range(40)]
weights = [1 / (k + 1) for k in range(len(systems))]
convs = []  # (blocks so far) of live conversations
t = 0.0
blocks_total = 0
with open(f"{work}/trace.jsonl", "w") as f:
    for _ in range(lines):
        t += rng.expovariate(100.0) * 1000
        r = rng.random()
        if r < 0.4 and convs:
            k = rng.randrange(len(convs))
            ids = convs[k] + fresh(rng.randint(1, 2))
            convs[k] = ids
            if len(ids) > 40 or rng.random() < 0.2:
                convs.pop(k)
        elif r < 0.8:
            ids = rng.choices(systems, weights)[0] + fresh(rng.randint(1, 4))
            convs.append(ids)
            if len(convs) > 200:
                convs.pop(0)
        else:
            ids = fresh(rng.randint(1, 8))
        n = (len(ids) - 1) * B + rng.randint(1, B)
        blocks_total += len(ids)
        f.write(json.dumps({"timestamp": round(t), "input_length": n,
                            "output_length": rng.randint(16, 300), "hash_ids": ids}) + "\n")
print(f"trace: {lines} lines over {t / 1000:.1f} s as recorded, {next_id} distinct blocks, "
      f"{blocks_total} block uses ({blocks_total / next_id:.2f} uses a block)")
mean_words = round(blocks_total / lines * B * 0.75)
vocab = open("src/llm/corpus.txt").read().split()
open(f"{work}/mean.txt", "w").write(" ".join(vocab[i % len(vocab)] for i in range(mean_words)))
words = sorted(set(vocab))
tok = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [],
       "normalizer": None, "pre_tokenizer": {"type": "WhitespaceSplit"}, "post_processor": None,
       "decoder": None, "model": {"type": "WordLevel", "unk_token": "[UNK]",
       "vocab": {w: i for i, w in enumerate(["[UNK]"] + words)}}}
json.dump(tok, open(f"{work}/tokenizer.json", "w"))
EOF
SPEED=$(python3 -c "print($RATE / 100)")

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MOCK=$(port)
$PACER mock --port "$MOCK" --ttft-ms 5 --itl-ms 1 --tokens 8 2>/dev/null & pids+=($!)
sleep 0.5
URL="http://127.0.0.1:$MOCK/v1/completions"

# run NAME ARGS...: one pacer run under GNU time; prints a JSON line of its figures.
run() {
  local name=$1; shift
  python3 - "$name" "$work" "$PACER" "$URL" "$@" <<'EOF'
import json, subprocess, sys, time
name, work, pacer, url, *args = sys.argv[1:]
t0 = time.monotonic()
p = subprocess.Popen(["/usr/bin/time", "-v", "-o", f"{work}/time", pacer, "llm", url,
                      "--token", "t", "--timeout", "10", "--json", *args],
                     stdout=open(f"{work}/out.json", "w"), stderr=subprocess.PIPE, text=True)
first = p.stderr.readline()
built = time.monotonic() - t0
rest = p.stderr.read()
p.wait()
if p.returncode != 0 or not first.startswith("pacer: "):
    sys.exit(f"{name}: exit {p.returncode}: {first}{rest}")
tv = {}
for line in open(f"{work}/time"):
    k, _, v = line.strip().rpartition(": ")
    tv[k] = v
cpu = float(tv["User time (seconds)"]) + float(tv["System time (seconds)"])
d = json.load(open(f"{work}/out.json"))
sent = d["total_requests"] - d.get("unsent", 0)
h = d.get("health", {})
print(json.dumps({
    "run": name, "requests": d["total_requests"], "successes": d["successes"],
    "achieved_qps": round(d["achieved_qps"], 1),
    "startup_s": round(built, 3),
    "dispatch_delay_p50_us": round(d["dispatch_delay_p50"] * 1e6, 1),
    "dispatch_delay_p99_us": round(d["dispatch_delay_p99"] * 1e6, 1),
    "dispatch_delay_mean_us": round(d["mean_dispatch_delay"] * 1e6, 1),
    "cpu_per_request_us": round(cpu / max(sent, 1) * 1e6, 1),
    "engine_cpu_per_request_us": None if h.get("cpu_per_request") is None
        else round(h["cpu_per_request"] * 1e6, 1),
    "max_rss_mb": round(int(tv["Maximum resident set size (kbytes)"]) / 1024, 1),
}))
EOF
}

TRACE=(--trace "$work/trace.jsonl" --replay-speed "$SPEED" -c 64)
DURATION=$(python3 -c "import json; l=open('$work/trace.jsonl').readlines(); print(round((json.loads(l[-1])['timestamp']-json.loads(l[0])['timestamp'])/1000/$SPEED, 3))")
SINGLE=(--qps "$RATE" --arrival poisson --duration "$DURATION" -c 64 --prompt "$(cat "$work/mean.txt")" --max-tokens 150)

echo "== build: start to the settings line, peak RSS (whole replay)"
run trace-build "${TRACE[@]}"
run trace-build-tokenizer "${TRACE[@]}" --tokenizer "$work/tokenizer.json"
echo "== replay vs single prompt at $RATE/s ($DURATION s each)"
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) -eq 1 ]; then
    run trace "${TRACE[@]}"; run single-prompt "${SINGLE[@]}"
  else
    run single-prompt "${SINGLE[@]}"; run trace "${TRACE[@]}"
  fi
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
