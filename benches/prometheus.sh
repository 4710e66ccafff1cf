#!/usr/bin/env bash
# Live metrics scraped by a real Prometheus (issue 21): starts `pacer mock` and `pacer serve` on
# loopback, a Prometheus server from Debian's prometheus package on a free loopback port with a
# temporary config that scrapes `pacer serve`'s GET /metrics every 1 s, then an async run of
# --qps for --duration against the mock. Halfway through it prints `promtool check metrics` of a
# scrape and the answers of Prometheus's query API (/api/v1/query) to a few queries; at the end,
# the run's report totals beside the last scraped counters.
# Usage: benches/prometheus.sh [--qps N] [--duration DURATION]
set -euo pipefail
QPS=200
DURATION=20s
# bench_log and bench_options; nothing else of nginx.sh is used (no nginx here).
. "$(dirname "$0")/nginx.sh"
bench_options "QPS DURATION" "$@"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/pacer-prometheus.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
    sudo=
    if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then sudo=sudo; fi
    bench_log "installing prometheus with apt-get"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq prometheus >/dev/null
fi
bench_log "building pacer (cargo build --release)"
(cd "$ROOT" && cargo build --release --quiet)
PACER=$ROOT/target/release/pacer
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { # URL: until it answers 200, at most 15 s
    for _ in $(seq 150); do
        curl -sf -o /dev/null "$1" && return 0
        sleep 0.1
    done
    echo "no answer from $1" >&2
    exit 1
}
MOCK_PORT=$(free_port)
"$PACER" mock --port "$MOCK_PORT" --all-200 2>"$WORK/mock.log" &
PIDS+=($!)
API_PORT=$(free_port)
"$PACER" serve --addr "127.0.0.1:$API_PORT" 2>"$WORK/serve.log" &
PIDS+=($!)
wait_for "http://127.0.0.1:$API_PORT/health"
PROM_PORT=$(free_port)
cat >"$WORK/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: pacer
    static_configs:
      - targets: ["127.0.0.1:$API_PORT"]
YAML
promtool check config "$WORK/prometheus.yml" >&2
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/data" \
    --web.listen-address="127.0.0.1:$PROM_PORT" 2>"$WORK/prometheus.log" &
PIDS+=($!)
wait_for "http://127.0.0.1:$PROM_PORT/-/ready"
bench_log "prometheus $(prometheus --version 2>&1 | head -1 | cut -d' ' -f3) on 127.0.0.1:$PROM_PORT scraping pacer serve on 127.0.0.1:$API_PORT every 1 s"
SECS=$(python3 -c "import re,sys; s='$DURATION'; m=re.fullmatch(r'([0-9.]+)(ms|s|m)?', s); v=float(m[1]); print({'ms':v/1000,'m':v*60}.get(m[2], v))")
RUN=$(curl -sf "http://127.0.0.1:$API_PORT/benchmark" -H 'Content-Type: application/json' \
    -d "{\"url\": \"http://127.0.0.1:$MOCK_PORT/\", \"qps\": $QPS, \"duration\": $SECS, \"async\": true}")
ID=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['id'])" "$RUN")
bench_log "run $ID: $QPS req/s for $DURATION against the mock"
sleep "$(python3 -c "print($SECS / 2)")"
echo "== promtool check metrics (a scrape of GET /metrics during the run) =="
curl -sf "http://127.0.0.1:$API_PORT/metrics" >"$WORK/scrape.txt"
grep -v '^#' "$WORK/scrape.txt"
if promtool check metrics <"$WORK/scrape.txt"; then echo "promtool: OK (exit 0, no lint)"; fi
query() {
    echo
    echo "== GET http://127.0.0.1:$PROM_PORT/api/v1/query?query=$1 =="
    curl -sfG "http://127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode "query=$1"
    echo
}
query "pacer_runs"
query "pacer_requests_sent_total"
query "rate(pacer_requests_sent_total[10s])"
query "pacer_response_time_p99_seconds"
# The run's end, then its report beside what Prometheus last saw of it.
for _ in $(seq $((${SECS%.*} * 10 + 300))); do
    STATE=$(curl -sf "http://127.0.0.1:$API_PORT/runs/$ID" | python3 -c "import json,sys; print(json.load(sys.stdin)['state'])")
    [ "$STATE" = running ] || break
    sleep 0.1
done
curl -sf "http://127.0.0.1:$API_PORT/runs/$ID" >"$WORK/run.json"
LAST=$(curl -sfG "http://127.0.0.1:$PROM_PORT/api/v1/query" \
    --data-urlencode "query=last_over_time(pacer_requests_sent_total{run_id=\"$ID\"}[1m])")
echo
python3 - "$WORK/run.json" "$LAST" <<'PY'
import json, sys
run = json.load(open(sys.argv[1]))
r = run["report"]
last = json.loads(sys.argv[2])["data"]["result"]
seen = last[0]["value"][1] if last else "-"
print(f"== run {run['id']}: {run['state']} ==")
print(f"report: total_requests {r['total_requests']}, errors {r['errors']}, achieved_qps {r['achieved_qps']:.2f}, response_time_p99 {r['response_time_p99']*1e3:.3f} ms")
print(f"prometheus, last pacer_requests_sent_total scraped while it ran: {seen}")
PY
