#!/usr/bin/env bash
# Time to first token against the truth: a streaming server on loopback (benches/tools/
# sse_server.py) logs when each first token left it (CLOCK_MONOTONIC right after the write
# returned, and right before it began); pacer's --requests file has each request's first-token
# time from the run's start, which the report's clock.monotonic_start_ns puts on the same clock. One connection at a low rate, so the server's n-th request
# is pacer's request n. Prints one JSON line, per request and in microseconds: pacer's
# first-token time minus the server's write time (ttft_err_*: the generator's own error, as the
# issue defines it; negative when pacer saw the token before the server's write call returned,
# which on loopback it can) and minus the reading before the write (ttft_err_before_*: an upper
# bound of the error, since the bytes cannot arrive before they are written).
#
# Usage: benches/ttft.sh PACER_BINARY [SECONDS] [QPS] [extra pacer flags...]
set -euo pipefail
PACER=${1:?usage: benches/ttft.sh PACER_BINARY [SECONDS] [QPS] [flags...]}
SECS=${2:-5}
QPS=${3:-100}
shift $(($# < 3 ? $# : 3))
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d /tmp/pacer-ttft.XXXXXX)
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
mkfifo "$WORK/port"
python3 "$HERE/tools/sse_server.py" --ttft 0.002 --itl 0.0005 --tokens 5 \
    --log "$WORK/server.log" >"$WORK/port" &
SERVER_PID=$!
read -r PORT <"$WORK/port"
"$PACER" fireworks --url "http://127.0.0.1:$PORT/v1/completions" \
    --token bench --qps "$QPS" --duration "$SECS" --num_workers 1 --timeout 5 --stream true \
    --json --requests "$WORK/requests.jsonl" "$@" >"$WORK/report.json" 2>"$WORK/pacer.err" || {
    echo "{\"error\": \"pacer failed: $(tail -c 200 "$WORK/pacer.err" | tr '\n"' ' \x27')\"}"
    exit 0
}
python3 - "$WORK" <<'PY'
import json, sys
work = sys.argv[1]
server = [l.split() for l in open(f"{work}/server.log")]
report = json.load(open(f"{work}/report.json"))
t0 = report["clock"]["monotonic_start_ns"]
pacer = sorted((json.loads(l) for l in open(f"{work}/requests.jsonl")), key=lambda r: r["index"])
out = {"requests": len(pacer), "server_requests": len(server),
       "timestamps": report.get("timestamps"), "successes": report.get("successes")}
after, before = [], []
for p, s in zip(pacer, server):
    if p["first_token"] is not None:
        # --requests times are to the microsecond: the error is known to within 1 µs.
        ft = t0 + round(p["first_token"] * 1e9)
        after.append((ft - int(s[3])) / 1e3)
        before.append((ft - int(s[2])) / 1e3)
if after and len(pacer) == len(server):
    for name, d in (("ttft_err", sorted(after)), ("ttft_err_before", sorted(before))):
        q = lambda x: d[min(len(d) - 1, int(round(x * (len(d) - 1))))]
        out.update({f"{name}_p50_us": q(0.5), f"{name}_p99_us": q(0.99),
                    f"{name}_min_us": d[0], f"{name}_max_us": d[-1]})
    out["matched"] = len(after)
else:
    out["error"] = f"cannot match: {len(pacer)} pacer requests, {len(server)} server requests"
print(json.dumps(out))
PY
