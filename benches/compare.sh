#!/usr/bin/env bash
# Side-by-side comparison of pacer with wrk (and oha when it builds) against the same nginx on
# loopback, printed as one table:
#   1. saturation, 1 and 2 threads, 50 connections, three rounds: requests/s, ratios to wrk and
#      oha, CPU per 100k requests, and nginx's own CPU (at ~100% it is the ceiling);
#   2. a fixed 20,000 qps for 10 s on 50 connections, three rounds: achieved rate, dispatch delay,
#      response time, CPU per 100k requests and involuntary context switches (pacer, pacer
#      --realtime when the OS allows it, and oha; wrk has no fixed rate);
#   3. scale: max RSS of 1M requests at saturation and of a long scheduled run (flat memory), and
#      10,000 connections open at once.
#
# Usage: benches/compare.sh [--quick | --full] [--no-oha]
#   --quick (default) 1M at saturation, 2M scheduled: about 7 minutes once the tools are installed.
#   --full            the issue's sizes: 1M at saturation, 10M scheduled (about 10 minutes).
#   --no-oha          do not try to install or run oha.
# Installs wrk, nginx and GNU time with apt-get when missing (as root, or with sudo), and tries
# `cargo install oha --locked` once (about 10 minutes on 2 cores; the run goes on without oha if it
# fails). Everything it starts binds 127.0.0.1 and is stopped on exit.
set -euo pipefail

MODE=quick
USE_OHA=1
for arg in "$@"; do
    case "$arg" in
        --quick) MODE=quick ;;
        --full) MODE=full ;;
        --no-oha) USE_OHA=0 ;;
        -h | --help)
            sed -n '2,16p' "$0"
            exit 0
            ;;
        *)
            echo "unknown argument: $arg (see --help)" >&2
            exit 2
            ;;
    esac
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/pacer-compare.XXXXXX)
NGINX_PID=
cleanup() {
    if [ -n "$NGINX_PID" ] && kill -0 "$NGINX_PID" 2>/dev/null; then
        kill "$NGINX_PID" 2>/dev/null || true
        wait "$NGINX_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '[compare] %s\n' "$*" >&2; }
NOTES=()
note() {
    NOTES+=("$*")
    log "$*"
}

# ---------------------------------------------------------------------------------------- tools
SUDO=
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null; then SUDO=sudo; fi
fi
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
[ -x /usr/bin/time ] || need+=(time)
command -v python3 >/dev/null || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]} with apt-get"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

OHA=
if [ "$USE_OHA" = 1 ]; then
    OHA=$(command -v oha || true)
    [ -z "$OHA" ] && [ -x "$HOME/.cargo/bin/oha" ] && OHA=$HOME/.cargo/bin/oha
    if [ -z "$OHA" ]; then
        log "installing oha with cargo install oha --locked (about 10 minutes on 2 cores, once)"
        if cargo install oha --locked >"$WORK/oha-install.log" 2>&1; then
            OHA=$HOME/.cargo/bin/oha
        else
            note "oha: cargo install oha --locked failed (last lines below); running without oha"
            tail -5 "$WORK/oha-install.log" >&2 || true
        fi
    fi
else
    note "oha: skipped (--no-oha)"
fi

# 10,000 connections need 10,000+ descriptors for pacer and for nginx.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
# (nginx raises its own limit with worker_rlimit_nofile when run as root.)
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 10100 ]; then
    note "ulimit -n is only $(ulimit -n): the 10,000-connection row may fail for that reason"
fi

log "building pacer (cargo build --release)"
(cd "$ROOT" && cargo build --release --quiet)
PACER=$ROOT/target/release/pacer

# ---------------------------------------------------------------------------------------- nginx
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$WORK/nginx/tmp"
cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes 1;
worker_rlimit_nofile 30000;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events {
    worker_connections 20000;
    multi_accept on;
}
http {
    access_log off;
    client_body_temp_path $WORK/nginx/tmp/body;
    proxy_temp_path $WORK/nginx/tmp/proxy;
    fastcgi_temp_path $WORK/nginx/tmp/fastcgi;
    uwsgi_temp_path $WORK/nginx/tmp/uwsgi;
    scgi_temp_path $WORK/nginx/tmp/scgi;
    keepalive_requests 1000000000;
    keepalive_timeout 3600s;
    server {
        listen 127.0.0.1:$PORT backlog=16384;
        location / {
            default_type text/plain;
            return 200 "Hello, world!";
        }
    }
}
EOF
"$NGINX" -p "$WORK/nginx" -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf" &
NGINX_PID=$!
URL=http://127.0.0.1:$PORT/
for _ in $(seq 50); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1',$PORT),0.2).close()" 2>/dev/null && break
    sleep 0.1
done
BODY=$(python3 -c "import urllib.request; print(urllib.request.urlopen('$URL').read().decode())")
[ "$BODY" = "Hello, world!" ] || {
    echo "nginx did not answer on $URL" >&2
    cat "$WORK/nginx/error.log" >&2
    exit 1
}
log "nginx $("$NGINX" -v 2>&1 | sed 's/.*\///') on $URL (1 worker, keep-alive unlimited)"
NGINX_WORKER=$(pgrep -P "$NGINX_PID" | head -1 || true)

# ---------------------------------------------------------------------------------------- helpers
# Every measurement appends one JSON line to RESULTS; the table is printed from them at the end.
RESULTS=$WORK/results.jsonl
cat >"$WORK/parse.py" <<'PY'
import json, re, sys

def timev(path):
    """user+sys seconds, max RSS (MB) and involuntary context switches from /usr/bin/time -v."""
    t = {}
    for line in open(path, errors="replace"):
        k, _, v = line.strip().rpartition(": ")
        t[k] = v
    cpu = float(t.get("User time (seconds)", "nan")) + float(t.get("System time (seconds)", "nan"))
    rss = float(t.get("Maximum resident set size (kbytes)", "nan")) / 1024
    invol = int(t.get("Involuntary context switches", "0") or 0)
    return cpu, rss, invol

def main():
    kind, section, label, out, tfile, rc, extra, nginx_cpu, wall, steal = sys.argv[1:11]
    r = {"section": section, "label": label, "kind": kind, "rc": int(rc)}
    r.update(json.loads(extra))
    # Time the hypervisor ran something else on this VM's CPUs during the run (all CPUs summed).
    if float(steal) >= 0:
        r["steal_ms"] = float(steal) * 1000
    # The target's own CPU over the run: at 100% of its one worker, the target is the ceiling.
    if float(wall) > 0 and float(nginx_cpu) >= 0:
        r["nginx_cpu_pct"] = 100.0 * float(nginx_cpu) / float(wall)
    try:
        r["cpu"], r["rss"], r["invol"] = timev(tfile)
    except OSError:
        pass
    text = open(out, errors="replace").read()
    try:
        if kind == "pacer":
            d = json.loads(text)
            r.update(
                requests=d["total_requests"], rate=d["achieved_qps"], errors=d["errors"],
                error_counts=d.get("error_counts", {}), conns=d.get("connections_opened"),
                dd50=d.get("dispatch_delay_p50"), dd99=d.get("dispatch_delay_p99"),
                rt50=d.get("response_time_p50"), rt99=d.get("response_time_p99"),
                crt99=d.get("corrected_response_time_p99"), elapsed=d.get("elapsed"),
                scheduling=d.get("scheduling"))
        elif kind == "wrk":
            m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", text)
            r["requests"] = int(m.group(1))
            r["rate"] = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
            errs = 0
            m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
            if m:
                errs += sum(int(x) for x in m.groups())
            m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
            if m:
                errs += int(m.group(1))
            r["errors"] = errs
        elif kind == "oha":
            d = json.loads(text)
            s = d["summary"]
            codes = d.get("statusCodeDistribution", {})
            errd = d.get("errorDistribution", {})
            ok = sum(v for k, v in codes.items() if k.startswith("2"))
            r["requests"] = sum(codes.values()) + sum(errd.values())
            r["rate"] = s["requestsPerSec"]
            # oha aborts the requests in flight at the deadline: not errors of the target.
            r["errors"] = sum(codes.values()) - ok + sum(
                v for k, v in errd.items() if "deadline" not in k)
            r["aborted_at_deadline"] = sum(v for k, v in errd.items() if "deadline" in k)
            p = d.get("latencyPercentiles", {})
            r["rt50"], r["rt99"] = p.get("p50"), p.get("p99")
    except Exception as e:  # a tool that crashed or printed something else: keep the row, say so
        r["parse_error"] = f"{type(e).__name__}: {e}"
        r["output_tail"] = text[-400:]
    print(json.dumps(r))

main()
PY

# CPU seconds (user+sys) nginx's worker has used so far; -1 when it cannot be read.
nginx_cpu() {
    local f
    f=$(cut -d' ' -f14,15 "/proc/$NGINX_WORKER/stat" 2>/dev/null) || { echo -1; return; }
    python3 -c "import os, sys; u, s = map(int, sys.argv[1:]); print((u + s) / os.sysconf('SC_CLK_TCK'))" $f
}

# Seconds of CPU time the hypervisor has taken from this machine so far (steal, all CPUs).
steal() {
    python3 -c "import os; f = open('/proc/stat').readline().split(); print(int(f[8]) / os.sysconf('SC_CLK_TCK') if len(f) > 8 else -1)" 2>/dev/null || echo -1
}

# run KIND SECTION LABEL EXTRA_JSON -- CMD...: runs CMD under /usr/bin/time -v, records one row.
N=0
run() {
    local kind=$1 section=$2 label=$3 extra=$4
    shift 5
    N=$((N + 1))
    local out=$WORK/$N.out tfile=$WORK/$N.time rc=0 c0 c1 t0 t1 s0 s1
    log "$section | $label: $*"
    s0=$(steal)
    c0=$(nginx_cpu)
    t0=$(date +%s.%N)
    /usr/bin/time -v -o "$tfile" "$@" >"$out" 2>"$WORK/$N.err" || rc=$?
    t1=$(date +%s.%N)
    c1=$(nginx_cpu)
    s1=$(steal)
    if [ "$rc" != 0 ]; then
        note "$label exited with $rc: $* ; stderr: $(tail -c 300 "$WORK/$N.err" | tr '\n' ' ')"
    fi
    local ncpu wall stolen
    ncpu=$(python3 -c "a, b = $c0, $c1; print(b - a if a >= 0 and b >= 0 else -1)")
    stolen=$(python3 -c "a, b = $s0, $s1; print(b - a if a >= 0 and b >= 0 else -1)")
    wall=$(python3 -c "print($t1 - $t0)")
    python3 "$WORK/parse.py" "$kind" "$section" "$label" "$out" "$tfile" "$rc" "$extra" \
        "$ncpu" "$wall" "$stolen" >>"$RESULTS"
    # Let TIME_WAIT sockets and nginx settle between tools.
    sleep 1
}
rate_of() { # label -> the lowest rate measured for that label (0 if none)
    python3 - "$RESULTS" "$1" <<'PY'
import json, sys
rates = [r["rate"] for r in map(json.loads, open(sys.argv[1]))
         if r["label"] == sys.argv[2] and r.get("rate")]
print(int(min(rates)) if rates else 0)
PY
}

# ---------------------------------------------------------------------------------------- runs
SAT_SECS=10
FIXED_QPS=20000
FIXED_SECS=10
SAT_COUNT=1000000
if [ "$MODE" = full ]; then SCHED_COUNT=10000000; else SCHED_COUNT=2000000; fi

# 1. Saturation, three rounds; within a round the tools alternate, in an order that rotates from
# round to round. On a shared machine one tool's run can land in a noisy minute: the table keeps
# every run and compares medians, and each round's pacer/wrk ratio is taken within the round.
SAT_ROUNDS=3
for round in $(seq $SAT_ROUNDS); do
    for t in 1 2; do
        wrk_run() {
            run wrk sat "wrk t=$t" "{\"threads\":$t,\"round\":$round}" -- wrk -t$t -c50 \
                -d${SAT_SECS}s "$URL"
        }
        pacer_run() {
            run pacer sat "pacer t=$t" "{\"threads\":$t,\"round\":$round}" -- "$PACER" bench \
                --url "$URL" --qps max --threads $t --num_workers 50 --duration $SAT_SECS --json
        }
        oha_run() {
            [ -n "$OHA" ] || return 0
            run oha sat "oha t=$t" "{\"threads\":$t,\"round\":$round}" -- "$OHA" -c 50 \
                -z ${SAT_SECS}s --no-tui --worker-threads $t --output-format json "$URL"
        }
        case $(((round + t) % 3)) in
            0) wrk_run; pacer_run; oha_run ;;
            1) pacer_run; oha_run; wrk_run ;;
            *) oha_run; wrk_run; pacer_run ;;
        esac
    done
done

# 2. Fixed rate: 20,000 qps for 10 s on 50 connections, one thread each, three rounds (the tail of
# dispatch_delay moves with the machine's noise from one minute to the next).
for round in 1 2 3; do
    run pacer fixed "pacer" "{\"asked\":$FIXED_QPS,\"round\":$round}" -- "$PACER" bench \
        --url "$URL" --qps $FIXED_QPS --duration $FIXED_SECS --num_workers 50 --threads 1 --json
    # SCHED_FIFO workers (needs root or CAP_SYS_NICE; the row says when it was refused).
    run pacer fixed "pacer --realtime" "{\"asked\":$FIXED_QPS,\"round\":$round}" -- "$PACER" bench \
        --url "$URL" --qps $FIXED_QPS --duration $FIXED_SECS --num_workers 50 --threads 1 \
        --realtime --json
    if [ -n "$OHA" ]; then
        run oha fixed "oha" "{\"asked\":$FIXED_QPS,\"round\":$round}" -- "$OHA" -c 50 \
            -q $FIXED_QPS -z ${FIXED_SECS}s --no-tui --worker-threads 1 --output-format json "$URL"
    fi
done

# 3. Scale. Saturation long enough for 1M requests at the slowest 2-thread round above (+20%).
SAT2=$(rate_of "pacer t=2")
[ "$SAT2" -gt 0 ] || SAT2=50000
SAT_LONG=$(python3 -c "import math; print(max(1, math.ceil($SAT_COUNT * 1.2 / $SAT2)))")
run pacer scale "pacer 1M at saturation" "{\"asked_requests\":$SAT_COUNT}" -- "$PACER" bench \
    --url "$URL" --qps max --threads 2 --num_workers 50 --duration "$SAT_LONG" --json
# Scheduled: a rate this machine sustains for minutes, noisy ones included (60% of the slowest
# 2-thread saturation round, at most 100k qps). At 70% of the fastest round, a --full run left
# 22% of the 10M requests "not sent": correctly counted, but not the memory test asked for.
SCHED_QPS=$(python3 -c "print(min(100000, int($SAT2 * 0.6) // 1000 * 1000))")
[ "$SCHED_QPS" -ge 1000 ] || SCHED_QPS=1000
SCHED_SECS=$(python3 -c "import math; print(math.ceil($SCHED_COUNT / $SCHED_QPS))")
run pacer scale "pacer $((SCHED_COUNT / 1000000))M scheduled" \
    "{\"asked_requests\":$((SCHED_QPS * SCHED_SECS)),\"asked\":$SCHED_QPS}" -- "$PACER" bench \
    --url "$URL" --qps "$SCHED_QPS" --duration "$SCHED_SECS" --threads 2 --num_workers 200 --json
run pacer conns "pacer 10k connections" "{\"workers\":10000}" -- "$PACER" bench --url "$URL" \
    --qps max --threads 2 --num_workers 10000 --duration 5 --timeout 10 --json

# ---------------------------------------------------------------------------------------- table
echo
echo "== pacer vs wrk$([ -n "$OHA" ] && echo ' vs oha') on nginx (1 worker, loopback), mode: $MODE =="
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r)"
echo "tools: $("$NGINX" -v 2>&1 | sed 's/^nginx version: //'), $(wrk -v 2>&1 | head -1 | awk '{print "wrk " $2}')$([ -n "$OHA" ] && echo ", $("$OHA" --version)"), pacer $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')"
# How late this machine wakes a sleeping thread: the floor under any dispatch_delay.
python3 - <<'PY'
import time
ov = []
for _ in range(2000):
    t = time.perf_counter()
    time.sleep(0.0005)
    ov.append((time.perf_counter() - t - 0.0005) * 1e6)
ov.sort()
print("timer: sleep(500 µs) wakes late by p50 %.0f µs, p99 %.0f µs (the floor under dispatch_delay)"
      % (ov[len(ov) // 2], ov[int(len(ov) * 0.99)]))
PY
python3 - "$RESULTS" "$SCHED_SECS" "$SAT_LONG" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
sched_secs, sat_long = sys.argv[2], sys.argv[3]

def f(x, fmt="{:,.0f}"):
    return "-" if x is None or x != x else fmt.format(x)

def us(x):
    return "-" if x is None else f"{x * 1e6:,.0f}"

def per100k(r):
    if r.get("cpu") is None or not r.get("requests"):
        return None
    return r["cpu"] / r["requests"] * 1e5

def table(head, body):
    w = [max(len(str(c)) for c in col) for col in zip(head, *body)]
    line = lambda cells: "  ".join(str(c).rjust(n) if i else str(c).ljust(n) for i, (c, n) in enumerate(zip(cells, w)))
    print(line(head))
    print("  ".join("-" * n for n in w))
    for b in body:
        print(line(b))

def problems(r):
    out = []
    if r.get("parse_error"):
        out.append(f"{r['label']}: could not read its output ({r['parse_error']}): {r.get('output_tail', '')!r}")
    if r.get("error_counts"):
        out.append(f"{r['label']}: errors {r['error_counts']}")
    return out

issues = []
print("\n1. Saturation: 50 connections, 10 s, 3 rounds (wrk -t T -c50 -d10s | pacer --qps max --threads T --num_workers 50 | oha -c 50 -z 10s --worker-threads T)")
from statistics import median

def med(xs):
    xs = [x for x in xs if x is not None and x == x]
    return median(xs) if xs else None

body = []
summary = {}
for t in (1, 2):
    sat = [r for r in rows if r["section"] == "sat" and r.get("threads") == t]
    wrk_by_round = {r.get("round"): r for r in sat if r["label"].startswith("wrk")}
    oha_by_round = {r.get("round"): r for r in sat if r["label"].startswith("oha")}
    for tool in ("wrk", "pacer", "oha"):
        runs = [r for r in sat if r["label"].split()[0] == tool]
        if not runs:
            continue
        for r in runs:
            issues += problems(r)
        rates = [r.get("rate") for r in runs]
        ratio_wrk = med([r["rate"] / wrk_by_round[r.get("round")]["rate"] for r in runs
                         if r.get("rate") and wrk_by_round.get(r.get("round"), {}).get("rate")])
        ratio_oha = med([r["rate"] / oha_by_round[r.get("round")]["rate"] for r in runs
                         if r.get("rate") and oha_by_round.get(r.get("round"), {}).get("rate")])
        cpu = med([per100k(r) for r in runs])
        summary[(tool, t)] = cpu
        # A tool whose every round failed still gets its row (with "-"), not a crash here.
        lo = min((x for x in rates if x), default=None)
        hi = max((x for x in rates if x), default=None)
        body.append([tool, t, f(med(rates)), f"{f(lo)}-{f(hi)}", f(ratio_wrk, "{:.2f}"), f(ratio_oha, "{:.2f}"),
                     f(sum(r.get("errors") or 0 for r in runs)), f(cpu, "{:.2f}"),
                     f(max(r.get("rss") or 0 for r in runs), "{:.1f}"),
                     f(med([r.get("nginx_cpu_pct") for r in runs])),
                     f(sum(r.get("steal_ms") or 0 for r in runs))])
table(["tool", "threads", "median req/s", "range", "vs wrk", "vs oha", "errors", "CPU s/100k req",
       "max RSS MB", "nginx CPU %", "steal ms"], body)
print("   medians over the rounds; vs wrk / vs oha: the median of each round's ratio; steal: summed")
# When nginx's one worker is near 100% of a core, it is the ceiling for every tool, and requests/s
# cannot show how much faster one generator is than another. CPU per request still can: it is the
# rate each generator would reach on a core of its own against a target that is never the limit.
for t in (1, 2):
    pp, oo, ww = (summary.get((k, t)) for k in ("pacer", "oha", "wrk"))
    if pp:
        parts = []
        if oo:
            parts.append(f"{oo / pp:.2f}x less than oha's")
        if ww:
            parts.append(f"{ww / pp:.2f}x less than wrk's")
        if parts:
            print(f"   t={t}: pacer's median CPU per request is " + ", ".join(parts))

print("\n2. Fixed rate: 20,000 qps for 10 s, 50 connections, 1 thread, 3 rounds (pacer --qps 20000 [--realtime] | oha -q 20000 --worker-threads 1; wrk has no fixed rate)")
body = []
for r in [r for r in rows if r["section"] == "fixed"]:
    body.append([r["label"], r.get("round", ""), f(r.get("rate")), f(r.get("requests")), f(r.get("errors")),
                 us(r.get("dd50")), us(r.get("dd99")), us(r.get("rt50")), us(r.get("rt99")),
                 f(per100k(r), "{:.2f}"), f(r.get("invol")), f(r.get("steal_ms")), f(r.get("rss"), "{:.1f}")])
    issues += problems(r)
    if r.get("scheduling") and r["label"].endswith("--realtime") and not r["scheduling"].startswith("realtime"):
        issues.append(f"{r['label']} round {r.get('round')}: {r['scheduling']}")
table(["tool", "round", "achieved/s", "requests", "errors", "dispatch p50 µs", "dispatch p99 µs",
       "response p50 µs", "response p99 µs", "CPU s/100k req", "preempted", "steal ms", "max RSS MB"], body)
print("   preempted: involuntary context switches of the generator over the run (/usr/bin/time -v)")
print("   steal ms: CPU time the hypervisor took from this VM during the run (/proc/stat, both cores)")

print("\n3. Scale (pacer; the last three rows 2 threads): max RSS must stay flat as runs grow")
body = []
base = [r for r in rows if r["kind"] == "pacer" and r.get("round") == 1 and (
    r["section"] == "sat" or (r["section"] == "fixed" and r["label"] == "pacer"))]
for r in base:
    body.append([f"{r['label']} ({r['section']})", f(r.get("requests")), f(r.get("rate")), f(r.get("errors")),
                 f(r.get("conns")), f(r.get("rss"), "{:.1f}")])
for r in [r for r in rows if r["section"] in ("scale", "conns")]:
    label = r["label"]
    if r["section"] == "scale" and r.get("asked") is None:
        label += f" ({sat_long} s)"
    elif r.get("asked"):
        label += f" ({r['asked']:,} qps x {sched_secs} s)"
    elif r["section"] == "conns":
        label += " (--qps max, 5 s)"
    body.append([label, f(r.get("requests")), f(r.get("rate")), f(r.get("errors")), f(r.get("conns")),
                 f(r.get("rss"), "{:.1f}")])
    issues += problems(r)
table(["run", "requests", "rate/s", "errors", "connections_opened", "max RSS MB"], body)
if issues:
    print("\nproblems seen:")
    for i in issues:
        print("  - " + i)
PY
if [ ${#NOTES[@]} -gt 0 ]; then
    echo
    echo "notes:"
    for n in "${NOTES[@]}"; do echo "  - $n"; done
fi
