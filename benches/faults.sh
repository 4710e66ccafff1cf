#!/usr/bin/env bash
# Runs pacer against every fault mode of its own mock and prints, for each, the error names it
# reported and the run's wall time (issue 4's table). Needs only a release build:
#   bash benches/faults.sh [QPS] [DURATION] [TIMEOUT]
set -euo pipefail
cd "$(dirname "$0")/.."
QPS=${1:-300}; DURATION=${2:-2}; TIMEOUT=${3:-1}
cargo build --release --quiet
PACER=./target/release/pacer
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

PLAIN=$(port); $PACER mock --port "$PLAIN" --all-200 2>/dev/null & pids+=($!)
TLS=$(port); $PACER mock --port "$TLS" --tls --ca-out "$work/ca.pem" 2>/dev/null & pids+=($!)
OTHER=$(port); $PACER mock --host 127.0.0.2 --port "$OTHER" --tls --ca-out "$work/ca2.pem" 2>/dev/null & pids+=($!)
sleep 0.5
CLOSED=$(port)

row() { # name, then pacer arguments
  local name=$1; shift
  local start end out
  start=$(date +%s.%N)
  out=$($PACER "$@" --qps "$QPS" --duration "$DURATION" --timeout "$TIMEOUT" --json 2>&1) || true
  end=$(date +%s.%N)
  printf '%s' "$out" | python3 -c '
import json, sys
name, wall = sys.argv[1], float(sys.argv[3]) - float(sys.argv[2])
bound = float(sys.argv[4]) + 2 * float(sys.argv[5]) + 1
text = sys.stdin.read()
try:
    d = json.loads(text)
except ValueError:
    print(f"| {name} | FAILED: {text.strip()[:80]} | | |"); sys.exit()
counts = d["error_counts"] or {"(none: all succeeded)": d["successes"]}
names = ", ".join(f"`{k}` × {v}" for k, v in counts.items())
ok = d["successes"] + d["errors"] == d["total_requests"]
total = d["total_requests"]
verdict = "adds up" if ok else "LOST REQUESTS"
print(f"| {name} | {names} | {total} {verdict} | {wall:.2f} s (bound {bound:.1f} s) |")
' "$name" "$start" "$end" "$DURATION" "$TIMEOUT"
}

echo "pacer $($PACER --version | cut -d' ' -f2), $QPS qps × $DURATION s, timeout $TIMEOUT s, on $(nproc) cores"
echo
echo "| fault | error names reported | total_requests | wall time |"
echo "| --- | --- | --- | --- |"
row "nothing listens" bench --url "http://127.0.0.1:$CLOSED/"
for f in reset close short-body garbage huge-headers bad-chunk endless drip stall continue 429 503; do
  row "$f" bench --url "http://127.0.0.1:$PLAIN/fault/$f"
done
row "dns" bench --url "http://nonexistent.invalid/"
row "tls: self-signed, no CA" bench --url "https://localhost:$TLS/"
row "tls: cert for another name" bench --url "https://127.0.0.2:$OTHER/" --ca-cert "$work/ca2.pem"
row "plain HTTP on https" bench --url "https://127.0.0.1:$PLAIN/"
for f in sse-broken-json sse-error sse-no-done; do
  row "$f" llm --token t --url "http://127.0.0.1:$PLAIN/fault/$f" --num_workers 300
done
