#!/usr/bin/env bash
# Two pacer binaries at one fixed rate against nginx on loopback, in alternating rounds, to tell
# whether a change moved what the wake-up work (issue 14) reached: CPU per request, context
# switches per request (the wake-ups) and dispatch delay p50/p99, each round's figures and the
# medians. 50 connections, 1 thread, as compare.sh's 20,000 qps row.
#
# On a busy machine nginx itself is starved (pacer's connections all stay busy and requests
# queue): `--target-realtime 1` moves nginx to SCHED_FIFO (chrt, needs root); add
# `--flags --realtime` for pacer's lane too.
#
# Usage: benches/rate_check.sh --a BIN --b BIN [--qps 20000] [--duration 5] [--rounds 3]
#                              [--flags "extra pacer flags"] [--target-realtime 0|1]
set -euo pipefail
A=
B=
QPS=20000
DURATION=5
ROUNDS=3
FLAGS=
TARGET_REALTIME=0
. "$(dirname "$0")/nginx.sh"
bench_options "A B QPS DURATION ROUNDS FLAGS TARGET_REALTIME" "$@"
[ -x "$A" ] && [ -x "$B" ] || { echo "--a and --b must be pacer binaries" >&2; exit 2; }
bench_setup
start_nginx
if [ "$TARGET_REALTIME" = 1 ]; then
    for pid in "$NGINX_PID" $(pgrep -P "$NGINX_PID"); do chrt -f -p 1 "$pid"; done
    bench_log "nginx runs under SCHED_FIFO"
fi
RESULTS=$WORK/results.jsonl
N=0
one() { # LABEL BIN ROUND
    N=$((N + 1))
    bench_log "$1, $QPS qps, round $3 (load $(cut -d' ' -f1 /proc/loadavg))"
    # shellcheck disable=SC2086
    timed "$WORK/$N.json" "$WORK/$N.time" -- "$2" bench "$URL" -q "$QPS" -z "${DURATION}s" -c 50 \
        --threads 1 --json $FLAGS
    row "$WORK/$N.json" "$WORK/$N.time" "$1" "{\"round\":$3,\"load\":$(cut -d' ' -f1 /proc/loadavg)}" \
        >>"$RESULTS"
}
for round in $(seq "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then
        one a "$A" "$round"
        one b "$B" "$round"
    else
        one b "$B" "$round"
        one a "$A" "$round"
    fi
done
echo
echo "== $QPS qps, ${DURATION} s, 50 connections, 1 thread, against nginx (realtime $TARGET_REALTIME): a = $A, b = $B $FLAGS =="
python3 - "$RESULTS" "$WORK" <<'PY'
import json, sys
from statistics import median
rows = [json.loads(l) for l in open(sys.argv[1])]
for i, r in enumerate(rows, 1):
    t = {}
    for line in open(f"{sys.argv[2]}/{i}.time", errors="replace"):
        k, _, v = line.strip().rpartition(": ")
        t[k] = v
    r["vol"] = int(t.get("Voluntary context switches", "0") or 0)
us = lambda x: "-" if x is None else f"{x * 1e6:,.1f}"
head = ["binary", "round", "load", "achieved/s", "errors", "CPU µs/req", "wake-ups/req",
        "dispatch p50 µs", "dispatch p99 µs"]
body = []
for r in rows:
    n = r.get("requests") or 1
    r["cpu_us"] = r["cpu"] / n * 1e6
    r["wakes"] = r["vol"] / n
    body.append([r["label"], r["round"], r["load"], f"{r.get('rate', 0):,.1f}", r.get("errors"),
                 f"{r['cpu_us']:.1f}", f"{r['wakes']:.2f}", us(r.get("dd50")), us(r.get("dd99"))])
for label in ("a", "b"):
    mine = [r for r in rows if r["label"] == label]
    body.append([label, "median", "", "", "", f"{median(r['cpu_us'] for r in mine):.1f}",
                 f"{median(r['wakes'] for r in mine):.2f}",
                 us(median(r.get("dd50") or 0 for r in mine)),
                 us(median(r.get("dd99") or 0 for r in mine))])
w = [max(len(str(c)) for c in col) for col in zip(head, *body)]
fmt = lambda cells: "  ".join(str(c).rjust(n) for c, n in zip(cells, w))
print(fmt(head)); print("  ".join("-" * n for n in w)); [print(fmt(b)) for b in body]
PY
