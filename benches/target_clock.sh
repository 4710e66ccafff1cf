#!/usr/bin/env bash
# Pacing as the target sees it: a server on loopback (benches/tools/arrival_server.py) stamps
# each request's arrival with the kernel's receive time (SO_TIMESTAMPNS), however late it reads,
# and the gaps between arrivals are compared with what was asked for:
#   - constant arrivals: the standard deviation of the gaps (0 for a perfect generator; the
#     gaps' spread is the sends' lateness jitter, times about √2);
#   - Poisson arrivals: the Kolmogorov–Smirnov distance between the gaps and the exponential of
#     the asked rate (about 1/√n for a perfect generator: 0.006 for 10,000 gaps). Sends batched
#     into one wake-up arrive together and make short gaps vanish, which this distance shows.
# Gaps of the first 0.1 s are left out (connections are being opened). Each run also shows
# pacer's own view: dispatch delay p50/p99, CPU per request, and its config.pacing.
# One JSON line per run on stdout, then a table. The machine may be shared: say so with the
# figures (the load average is printed with each run).
#
# On a busy machine the target itself is starved (its answers come late, pacer's connections are
# all busy, and requests wait for one): `--target-realtime 1` runs the target under SCHED_FIFO
# (chrt, needs root) so the gaps show the generator; add `--flags --realtime` to run pacer's
# lanes so too. `gap sd p1-p99` leaves out the 1% shortest and longest gaps: the part of the
# spread that is not the machine stalling the whole VM.
#
# Usage: benches/target_clock.sh [--pacer BIN] [--qps 2000] [--duration 5] [--rounds 1]
#                                [--arrivals "constant poisson"] [--flags "extra pacer flags"]
#                                [--target-realtime 0|1]
set -euo pipefail
PACER=
QPS=2000
DURATION=5
ROUNDS=1
ARRIVALS="constant poisson"
FLAGS=
TARGET_REALTIME=0
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/nginx.sh"
bench_options "PACER QPS DURATION ROUNDS ARRIVALS FLAGS TARGET_REALTIME" "$@"
if [ -z "$PACER" ]; then
    (cd "$HERE/.." && cargo build --release --quiet)
    PACER=$HERE/../target/release/pacer
fi
WORK=$(mktemp -d /tmp/pacer-target-clock.XXXXXX)
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

one() { # ARRIVAL ROUND
    local arrival=$1 round=$2 port load
    rm -f "$WORK/port" "$WORK/arrivals"
    mkfifo "$WORK/port"
    if [ "$TARGET_REALTIME" = 1 ]; then
        chrt -f 1 python3 "$HERE/tools/arrival_server.py" --log "$WORK/arrivals" >"$WORK/port" &
    else
        python3 "$HERE/tools/arrival_server.py" --log "$WORK/arrivals" >"$WORK/port" &
    fi
    SERVER_PID=$!
    read -r port <"$WORK/port"
    load=$(cut -d' ' -f1 /proc/loadavg)
    # shellcheck disable=SC2086
    "$PACER" bench "http://127.0.0.1:$port/" -q "$QPS" -z "${DURATION}s" -c 20 \
        --arrival "$arrival" --json $FLAGS >"$WORK/report.json" 2>"$WORK/pacer.err" || {
        echo "pacer failed: $(tail -c 300 "$WORK/pacer.err")" >&2
    }
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
    python3 - "$WORK" "$arrival" "$round" "$QPS" "$load" "$FLAGS" "$TARGET_REALTIME" <<'PY'
import json, math, sys
from statistics import stdev, mean
work, arrival, rnd, qps, load, flags, target_rt = sys.argv[1:8]
qps = float(qps)
stamps = sorted(int(l) for l in open(f"{work}/arrivals"))
report = json.load(open(f"{work}/report.json"))
out = {"arrival": arrival, "round": int(rnd), "qps": qps, "flags": flags, "load": float(load),
       "target_realtime": target_rt == "1",
       "arrivals": len(stamps), "requests": report.get("total_requests"),
       "errors": report.get("errors"), "timestamps": report.get("timestamps"),
       "pacing": report["config"].get("pacing"),
       "max_lateness": report["config"].get("max_lateness")}
skip = stamps[0] + 100_000_000 if stamps else 0
kept = [s for s in stamps if s >= skip]
gaps = [(b - a) / 1e9 for a, b in zip(kept, kept[1:])]
us = lambda x: None if x is None else round(x * 1e6, 1)
if len(gaps) > 1:
    g = sorted(gaps)
    q = lambda p: g[min(len(g) - 1, int(round(p * (len(g) - 1))))]
    trimmed = g[len(g) // 100: len(g) - len(g) // 100]
    out.update({"gaps": len(g), "gap_mean_us": us(mean(g)), "gap_sd_us": us(stdev(g)),
                "gap_sd_p1_p99_us": us(stdev(trimmed)),
                "gap_p1_us": us(q(0.01)), "gap_p50_us": us(q(0.5)), "gap_p99_us": us(q(0.99)),
                # Gaps under 10 µs: sends that went out together (a batch, or a late wake-up).
                "gaps_under_10us": sum(1 for x in g if x < 10e-6) / len(g)})
    # Kolmogorov–Smirnov distance to the exponential of the asked rate.
    n = len(g)
    d = 0.0
    for i, x in enumerate(g):
        f = 1.0 - math.exp(-qps * x)
        d = max(d, (i + 1) / n - f, f - i / n)
    out["ks_exponential"] = round(d, 4)
h = report.get("health") or {}
out["cpu_per_request_us"] = us(h.get("cpu_per_request"))
out["dispatch_p50_us"] = us(report.get("dispatch_delay_p50"))
out["dispatch_p99_us"] = us(report.get("dispatch_delay_p99"))
print(json.dumps(out))
PY
}

for round in $(seq "$ROUNDS"); do
    for arrival in $ARRIVALS; do
        one "$arrival" "$round" | tee -a "$WORK/results.jsonl"
    done
done
echo
echo "== pacing on the target's clock: $QPS req/s for ${DURATION} s, 20 connections, $(nproc) cores, pacer $PACER ($(cd "$HERE/.." && git rev-parse --short HEAD 2>/dev/null || echo '?')) $FLAGS, target realtime $TARGET_REALTIME =="
python3 - "$WORK/results.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
head = ["arrival", "round", "load", "gaps", "gap sd µs", "sd p1-p99", "KS to exp.", "gaps <10µs",
        "dispatch p50/p99 µs", "CPU µs/req", "pacing"]
body = []
for r in rows:
    body.append([r["arrival"], r["round"], r["load"], r.get("gaps"), r.get("gap_sd_us"),
                 r.get("gap_sd_p1_p99_us"),
                 r.get("ks_exponential"), f"{r.get('gaps_under_10us', 0):.3f}",
                 f"{r.get('dispatch_p50_us')} / {r.get('dispatch_p99_us')}",
                 r.get("cpu_per_request_us"),
                 json.dumps({k: v for k, v in (r.get("pacing") or {}).items() if k != "why"})
                 if r.get("pacing") else f"max_lateness {r.get('max_lateness')}"])
w = [max(len(str(c)) for c in col) for col in zip(head, *body)]
fmt = lambda cells: "  ".join(str(c).rjust(n) for c, n in zip(cells, w))
print(fmt(head)); print("  ".join("-" * n for n in w)); [print(fmt(b)) for b in body]
print("constant: gap sd is the target's view of the jitter (required <= 60 µs at 2,000/s);")
print("poisson: KS distance to the exponential (required <= 0.02; ~1/sqrt(n) is sampling noise).")
PY
