#!/usr/bin/env bash
# A session run beside a single-prompt run at the same request rate, against `pacer mock`:
# dispatch delay (p50, p99, mean; a session run's p50 by turn too) and CPU per request (the
# report's health.cpu_per_request).
# The session run starts SESSIONS_QPS sessions a second, each of 3 turns with 0 think time,
# so it sends about 3 × SESSIONS_QPS requests a second; the single-prompt run sends that rate.
# Each pair runs ROUNDS times, alternating, and prints one JSON line per run.
#
# THINK=20ms in the environment gives the sessions a think time (else 0: a turn leaves as soon
# as the answer before it is read, so its dispatch delay is the lane's reaction to that read).
#
# Usage: benches/sessions.sh PACER_BINARY [SECONDS] [SESSIONS_QPS] [ROUNDS]
set -euo pipefail
PACER=${1:?usage: benches/sessions.sh PACER_BINARY [SECONDS] [SESSIONS_QPS] [ROUNDS]}
SECS=${2:-10}
SQPS=${3:-100}
ROUNDS=${4:-3}
QPS=$((SQPS * 3))
WORK=$(mktemp -d /tmp/pacer-sessions.XXXXXX)
MOCK_PID=
cleanup() {
    if [ -n "$MOCK_PID" ]; then
        kill "$MOCK_PID" 2>/dev/null || true
        wait "$MOCK_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
"$PACER" mock --port 0 --ttft-ms 2 --itl-ms 1 --tokens 5 >"$WORK/mock.out" 2>&1 &
MOCK_PID=$!
for _ in $(seq 50); do
    grep -q 'serving' "$WORK/mock.out" 2>/dev/null && break
    sleep 0.1
done
URL="$(grep -o 'http://127.0.0.1:[0-9]*' "$WORK/mock.out" | head -1)/v1/chat/completions"
for k in $(seq 20); do
    echo "{\"turns\": [\"question $k about the weather\", \"and tomorrow?\", \"thanks, and the day after?\"]}"
done >"$WORK/conv.jsonl"
COMMON=(--api chat --token bench --duration "$SECS" --timeout 5 --json --dataset "$WORK/conv.jsonl")
summary() {
    python3 - "$1" "$2" <<'PY'
import json, sys
r = json.load(open(sys.argv[2]))
h = r.get("health", {})
print(json.dumps({
    "run": sys.argv[1],
    "requests": r["total_requests"], "successes": r["successes"], "unsent": r.get("unsent", 0),
    "achieved_qps": round(r["achieved_qps"], 1),
    "dispatch_delay_p50_us": round(r["dispatch_delay_p50"] * 1e6, 1),
    "dispatch_delay_p99_us": round(r["dispatch_delay_p99"] * 1e6, 1),
    "dispatch_delay_mean_us": round(r["mean_dispatch_delay"] * 1e6, 1),
    "cpu_per_request_us": None if h.get("cpu_per_request") is None else round(h["cpu_per_request"] * 1e6, 1),
    # A session run's dispatch delay p50 by turn (turn 1 is scheduled; later turns follow
    # their answer and think time).
    "by_turn_dispatch_p50_us": [None if t.get("dispatch_delay_p50") is None
                                else round(t["dispatch_delay_p50"] * 1e6, 1)
                                for t in r.get("by_turn", [])] or None,
}))
PY
}
for _ in $(seq "$ROUNDS"); do
    "$PACER" llm "$URL" "${COMMON[@]}" --qps "$SQPS" --sessions ${THINK:+--think-time "$THINK"} >"$WORK/s.json" 2>"$WORK/s.err"
    summary sessions "$WORK/s.json"
    "$PACER" llm "$URL" "${COMMON[@]}" --qps "$QPS" --num-workers "$((SQPS * 32))" >"$WORK/p.json" 2>"$WORK/p.err"
    summary single-prompt "$WORK/p.json"
done
