#!/usr/bin/env bash
# Does the live progress line move the pacing? The same fixed-rate run against nginx on loopback
# with the progress line off and on (--force-progress draws it as on a terminal, to a file),
# alternating, three rounds each; printed as rows and their medians:
#   a. 20,000 qps for 10 s on 50 connections, 1 thread (benches/compare.sh's fixed-rate row);
#   b. 2,000 qps for 10 s on 20 connections, 1 thread (where the timer, not the CPU, paces).
# Usage: benches/progress.sh [--rounds N] [--rates "QPS:CONNECTIONS ..."]
set -euo pipefail
ROUNDS=3
RATES="20000:50 2000:20"
. "$(dirname "$0")/nginx.sh"
bench_options "ROUNDS RATES" "$@"
bench_setup
start_nginx
RESULTS=$WORK/results.jsonl
N=0
one() { # LABEL QPS WORKERS ROUND [flags...]
    local label=$1 qps=$2 workers=$3 round=$4
    shift 4
    N=$((N + 1))
    bench_log "$label $qps qps, round $round"
    timed "$WORK/$N.json" "$WORK/$N.time" -- "$PACER" bench "$URL" -q "$qps" -z 10s -c "$workers" \
        --threads 1 --json "$@"
    row "$WORK/$N.json" "$WORK/$N.time" "$label" "{\"qps\":$qps,\"round\":$round}" >>"$RESULTS"
    if [ "$label" = on ]; then
        # The line was drawn: count its frames (redraws) as evidence.
        tr '\r' '\n' <"$WORK/$N.json.err" | grep -c ' in flight ' >"$WORK/$N.frames" || true
        bench_log "  progress frames drawn: $(cat "$WORK/$N.frames")"
    fi
}
for qps_workers in $RATES; do
    set -- ${qps_workers/:/ }
    for round in $(seq "$ROUNDS"); do
        if [ $((round % 2)) = 1 ]; then
            one off "$1" "$2" "$round"
            one on "$1" "$2" "$round" --force-progress
        else
            one on "$1" "$2" "$round" --force-progress
            one off "$1" "$2" "$round"
        fi
    done
done
echo
echo "== progress line off vs on: pacer bench --qps Q -z 10s --threads 1 against nginx (loopback) =="
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), pacer $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')"
python3 - "$RESULTS" <<'PY'
import json, sys
from statistics import median
rows = [json.loads(l) for l in open(sys.argv[1])]
us = lambda x: "-" if x is None else f"{x * 1e6:,.1f}"
def table(head, body):
    w = [max(len(str(c)) for c in col) for col in zip(head, *body)]
    fmt = lambda cells: "  ".join(str(c).rjust(n) for c, n in zip(cells, w))
    print(fmt(head)); print("  ".join("-" * n for n in w)); [print(fmt(b)) for b in body]
head = ["qps", "progress", "round", "achieved/s", "requests", "errors", "dispatch p50 µs",
        "dispatch p99 µs", "dispatch p99.9 µs", "response p50 µs", "response p99 µs",
        "CPU s/100k", "preempted"]
body = []
for r in rows:
    body.append([r["qps"], r["label"], r["round"], f"{r.get('rate', 0):,.1f}", r.get("requests"),
                 r.get("errors"), us(r.get("dd50")), us(r.get("dd99")), us(r.get("dd999")),
                 us(r.get("rt50")), us(r.get("rt99")),
                 f"{r['cpu'] / r['requests'] * 1e5:.2f}" if r.get("requests") else "-",
                 r.get("invol")])
table(head, body)
print("\nmedians over the rounds:")
body = []
for q in sorted({r["qps"] for r in rows}, reverse=True):
    for label in ("off", "on"):
        rs = [r for r in rows if r["qps"] == q and r["label"] == label and r.get("requests")]
        m = lambda k: median([r[k] for r in rs if r.get(k) is not None]) if rs else None
        body.append([q, label, f"{m('rate'):,.1f}", us(m("dd50")), us(m("dd99")), us(m("dd999")),
                     us(m("rt50")), us(m("rt99")),
                     f"{median(r['cpu'] / r['requests'] * 1e5 for r in rs):.2f}"])
table(["qps", "progress", "achieved/s", "dispatch p50 µs", "dispatch p99 µs", "dispatch p99.9 µs",
       "response p50 µs", "response p99 µs", "CPU s/100k"], body)
PY
