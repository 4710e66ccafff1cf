#!/usr/bin/env bash
# What --requests FILE costs: saturation against nginx on loopback (2 threads, 50 connections)
# without and with every request written to a file, alternating, three rounds of 10 s each;
# then max RSS of a run of at least 1M requests without and with it (flat memory: the writer's
# queue is bounded). Prints rows, medians, the throughput ratio (the aim: at least 0.9) and the
# RSS difference (the aim: a few MB), and checks the file has one valid line per request.
# Usage: benches/requests.sh [--rounds N] [--count N]
set -euo pipefail
ROUNDS=3
COUNT=1000000
. "$(dirname "$0")/nginx.sh"
bench_options "ROUNDS COUNT" "$@"
bench_setup
start_nginx
RESULTS=$WORK/results.jsonl
N=0
one() { # LABEL SECONDS SECTION ROUND
    local label=$1 secs=$2 section=$3 round=$4 extra=()
    N=$((N + 1))
    [ "$label" = on ] && extra=(--requests "$WORK/requests.jsonl")
    bench_log "$section: --requests $label, ${secs}s, round $round"
    timed "$WORK/$N.json" "$WORK/$N.time" -- "$PACER" bench "$URL" -q max -z "${secs}s" -c 50 \
        --threads 2 --json "${extra[@]}"
    local lines=null bytes=null
    if [ "$label" = on ]; then
        # One valid JSON line per request counted in the report.
        lines=$(python3 -c "
import json, sys
n = 0
for l in open('$WORK/requests.jsonl'):
    json.loads(l); n += 1
print(n)")
        bytes=$(stat -c %s "$WORK/requests.jsonl")
        rm -f "$WORK/requests.jsonl"
    fi
    row "$WORK/$N.json" "$WORK/$N.time" "$label" \
        "{\"section\":\"$section\",\"round\":$round,\"lines\":$lines,\"file_bytes\":$bytes,\"note\":$(python3 -c "import json,sys; print(json.dumps(open('$WORK/$N.json.err').read()[-300:]))")}" >>"$RESULTS"
}
for round in $(seq "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then
        one off 10 throughput "$round"; one on 10 throughput "$round"
    else
        one on 10 throughput "$round"; one off 10 throughput "$round"
    fi
done
# Long enough for COUNT requests at the slowest rate measured above, plus 20%.
SECS=$(python3 - "$RESULTS" "$COUNT" <<'PY'
import json, math, sys
rates = [json.loads(l).get("rate") or 0 for l in open(sys.argv[1])]
slowest = min(r for r in rates if r > 0) if any(rates) else 50000
print(max(1, math.ceil(int(sys.argv[2]) * 1.2 / slowest)))
PY
)
one off "$SECS" rss 1
one on "$SECS" rss 1
echo
echo "== --requests off vs on: pacer bench --qps max -c 50 --threads 2 against nginx (loopback) =="
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), pacer $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')"
python3 - "$RESULTS" <<'PY'
import json, sys
from statistics import median
rows = [json.loads(l) for l in open(sys.argv[1])]
def table(head, body):
    w = [max(len(str(c)) for c in col) for col in zip(head, *body)]
    fmt = lambda cells: "  ".join(str(c).rjust(n) for c, n in zip(cells, w))
    print(fmt(head)); print("  ".join("-" * n for n in w)); [print(fmt(b)) for b in body]
body = []
for r in rows:
    ok = "-" if r["lines"] is None else ("yes" if r["lines"] == r.get("requests") else f"NO ({r['lines']})")
    body.append([r["section"], r["label"], r["round"], f"{r.get('requests', 0):,}", f"{r.get('rate', 0):,.0f}",
                 r.get("errors"), f"{r['cpu'] / r['requests'] * 1e5:.2f}" if r.get("requests") else "-",
                 f"{r['rss_mb']:.1f}", "-" if r["file_bytes"] is None else f"{r['file_bytes'] / 1e6:,.0f}", ok])
table(["run", "--requests", "round", "requests", "req/s", "errors", "CPU s/100k", "max RSS MB",
       "file MB", "a line per request"], body)
tp = lambda l: [r["rate"] for r in rows if r["section"] == "throughput" and r["label"] == l and r.get("rate")]
off, on = median(tp("off")), median(tp("on"))
pairs = {}
for r in rows:
    if r["section"] == "throughput" and r.get("rate"):
        pairs.setdefault(r["round"], {})[r["label"]] = r["rate"]
ratios = [p["on"] / p["off"] for p in pairs.values() if "on" in p and "off" in p]
print(f"\nthroughput: median {off:,.0f} req/s without, {on:,.0f} with: ratio of medians {on / off:.3f}, "
      f"per-round ratios {', '.join(f'{x:.3f}' for x in ratios)} (aim: at least 0.9)")
rss = {r["label"]: r for r in rows if r["section"] == "rss"}
if "on" in rss and "off" in rss:
    d = rss["on"]["rss_mb"] - rss["off"]["rss_mb"]
    print(f"max RSS: {rss['off']['rss_mb']:.1f} MB for {rss['off'].get('requests', 0):,} requests without, "
          f"{rss['on']['rss_mb']:.1f} MB for {rss['on'].get('requests', 0):,} with: {d:+.1f} MB (aim: a few MB)")
for r in rows:
    if "waited" in (r.get("note") or ""):
        print(f"note ({r['section']} round {r['round']}): {r['note'].strip()}")
PY
