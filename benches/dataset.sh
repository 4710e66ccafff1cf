#!/usr/bin/env bash
# A data set costs nothing on the hot path (issue 12): a run over 1,000 distinct prompts against
# pacer's own mock, beside a run that sends one prompt of the same mean size, same rate, same
# connections. Prints, per run: achieved rate, dispatch delay p50 / p99, CPU per request (user +
# sys of the pacer process, from GNU time, over its requests) and max RSS. ROUNDS rounds,
# alternating which goes first, since the machine is shared.
#
# Then the closing-note run: the same data set against a mock that sends 3 tokens per SSE event,
# once with the server's per-chunk usage (vLLM's continuous_usage_stats) and once with a
# word-level tokenizer.json written here, showing the input and output token figures and both
# inter-token definitions.
#
# Usage: bash benches/dataset.sh [QPS] [DURATION] [ROUNDS]     (defaults: 200 20s 3)
set -euo pipefail
cd "$(dirname "$0")/.."
QPS=${1:-200}; DURATION=${2:-20s}; ROUNDS=${3:-3}
cargo build --release --quiet
PACER=./target/release/pacer
[ -x /usr/bin/time ] || { echo "needs GNU time (/usr/bin/time)" >&2; exit 2; }
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# 1,000 prompts of 20 to 400 words (about 0.1 to 2.5 KB), and one prompt of their mean length.
python3 - "$work" <<'EOF'
import json, random, sys
work = sys.argv[1]
rng = random.Random(12)
vocab = [w.strip(".,;:") for w in open("src/llm/corpus.txt").read().split()]
lengths = [rng.randint(20, 400) for _ in range(1000)]
with open(f"{work}/prompts.jsonl", "w") as f:
    for n in lengths:
        f.write(json.dumps({"prompt": " ".join(rng.choice(vocab) for _ in range(n))}) + "\n")
mean = round(sum(lengths) / len(lengths))
open(f"{work}/one.txt", "w").write(" ".join(rng.choice(vocab) for _ in range(mean)))
words = sorted(set(vocab) | {w for w in "The quick mock streams tokens at a steady pace for the client.".split()})
tok = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [],
       "normalizer": None, "pre_tokenizer": {"type": "WhitespaceSplit"}, "post_processor": None,
       "decoder": None, "model": {"type": "WordLevel", "unk_token": "[UNK]",
       "vocab": {w: i for i, w in enumerate(["[UNK]"] + words)}}}
json.dump(tok, open(f"{work}/tokenizer.json", "w"))
EOF

MOCK=$(port); $PACER mock --port "$MOCK" --ttft-ms 5 --itl-ms 1 --tokens 16 2>/dev/null & pids+=($!)
CHUNKY=$(port); $PACER mock --port "$CHUNKY" --ttft-ms 5 --itl-ms 2 --tokens 16 --tokens-per-chunk 3 2>/dev/null & pids+=($!)
sleep 0.5

run() { # name, then pacer arguments; prints one table row
  local name=$1; shift
  /usr/bin/time -f '%U %S %M' -o "$work/time" \
    $PACER llm "http://127.0.0.1:$MOCK/v1/completions" --token t -q "$QPS" -z "$DURATION" \
      -c 50 --timeout 5s --json "$@" >"$work/out.json" 2>/dev/null
  python3 - "$name" "$work/out.json" "$work/time" <<'EOF'
import json, sys
name, out, timing = sys.argv[1:]
d = json.load(open(out))
user, sys_, rss = open(timing).read().split()
cpu = float(user) + float(sys_)
n = d["total_requests"]
us = lambda k: f"{d[k] * 1e6:.1f}"
print(f"| {name} | {d['config'].get('distinct_requests', 1)} | {d['successes']}/{n} "
      f"| {d['achieved_qps']:.2f} | {us('dispatch_delay_p50')} / {us('dispatch_delay_p99')} "
      f"| {cpu / n * 1e6:.0f} | {int(rss) / 1024:.1f} MB |")
EOF
}

echo "pacer $($PACER --version | cut -d' ' -f2), $QPS qps × $DURATION, 50 connections, on $(nproc) cores"
echo
echo "| run | distinct requests | successes | achieved req/s | dispatch delay p50 / p99 µs | CPU µs per request | max RSS |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then
    run "one prompt" --prompt "$(cat "$work/one.txt")"
    run "1,000 prompts" --dataset "$work/prompts.jsonl"
  else
    run "1,000 prompts" --dataset "$work/prompts.jsonl"
    run "one prompt" --prompt "$(cat "$work/one.txt")"
  fi
done

echo
echo "Closing note: the data set against a mock sending 3 tokens per event (16 tokens: 3,3,3,3,3,1),"
echo "ttft 5 ms, 2 ms per token, 20 req/s for 5 s."
for how in usage tokenizer; do
  if [ "$how" = usage ]; then
    extra=(--payload '{"stream_options": {"include_usage": true, "continuous_usage_stats": true}}')
  else
    extra=(--tokenizer "$work/tokenizer.json" --payload '{"stream_options": null}')
  fi
  echo
  echo "per-chunk tokens from the $how:"
  $PACER llm "http://127.0.0.1:$CHUNKY/v1/completions" --token t -q 20 -z 5s --dataset "$work/prompts.jsonl" \
    --shuffle --seed 1 --output-tokens 16 "${extra[@]}" 2>/dev/null \
    | grep -E '^  (prompts:|output tokens|input tokens|timing |(time_to_first_token|inter_token_latency|inter_chunk_latency|time_per_output_token) +[0-9])'
done
