#!/usr/bin/env bash
# pacer beside oha and wrk against the same nginx on loopback, in one run, printed as tables with
# every target of issue 14 and whether it is met:
#   1. fixed rates, 1,000, 20,000 and 100,000 qps, 50 connections, three rounds, DEFAULT threads
#      for both pacer and oha: achieved rate, dispatch delay (pacer reports it; oha does not),
#      response time, CPU, syscalls and context switches per request (perf stat, /usr/bin/time);
#      plus pacer --realtime at 20,000 qps;
#   2. saturation, 1 and 2 threads, 50 connections, three rounds: requests/s and CPU per request
#      against wrk (and oha);
#   3. time to first token against a streaming server that logs its own write times
#      (benches/ttft.sh), compared per request;
#   4. scale: max RSS of 1M requests at saturation and of a long scheduled run, 10,000
#      connections open at once.
#
# Usage: benches/compare.sh [--quick | --full] [--no-oha] [--no-scale]
#   --quick (default) 5 s runs, 2M scheduled requests: about 10 minutes.
#   --full            10 s runs, 10M scheduled requests: about 20 minutes.
#   --no-oha          do not install or run oha.
#   --no-scale        skip section 4.
# Environment:
#   PACER_BASELINE=/path/to/pacer   adds rows for a second pacer binary (same flags) beside the
#                                   first in sections 1 and 2, so before/after is measured in the
#                                   same minutes.
# Installs wrk, nginx, GNU time and perf (linux-perf) with apt-get when missing (as root, or with
# sudo), and tries `cargo install oha --locked` once when oha is not in ~/.cargo/bin. Everything it
# starts binds 127.0.0.1 and is stopped on exit. On a shared machine every figure moves with the
# load: the load average is printed with each section, and the targets are medians of rounds.
set -euo pipefail

MODE=quick
USE_OHA=1
SCALE=1
for arg in "$@"; do
    case "$arg" in
        --quick) MODE=quick ;;
        --full) MODE=full ;;
        --no-oha) USE_OHA=0 ;;
        --no-scale) SCALE=0 ;;
        -h | --help)
            sed -n '2,28p' "$0"
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
load() { cut -d' ' -f1-3 /proc/loadavg; }

# ---------------------------------------------------------------------------------------- tools
SUDO=
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
[ -x /usr/bin/time ] || need+=(time)
command -v python3 >/dev/null || need+=(python3)
command -v perf >/dev/null || need+=(linux-perf)
if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]} with apt-get"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null ||
        note "apt-get install ${need[*]} failed; going on with what is there"
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

# perf stat counts syscalls (the raw_syscalls:sys_enter tracepoint) and context switches, which
# work in VMs without hardware counters; without them the columns show "-".
PERF=()
if command -v perf >/dev/null &&
    perf stat -x, -e raw_syscalls:sys_enter,context-switches -o /dev/null true 2>/dev/null; then
    PERF=(perf stat -x, -e raw_syscalls:sys_enter,context-switches)
else
    note "perf stat with raw_syscalls:sys_enter is not available: no syscall counts"
fi

OHA=
if [ "$USE_OHA" = 1 ]; then
    OHA=$(command -v oha || true)
    [ -z "$OHA" ] && [ -x "$HOME/.cargo/bin/oha" ] && OHA=$HOME/.cargo/bin/oha
    if [ -z "$OHA" ]; then
        log "installing oha with cargo install oha --locked (about 10 minutes on 2 cores, once)"
        if cargo install oha --locked >"$WORK/oha-install.log" 2>&1; then
            OHA=$HOME/.cargo/bin/oha
        else
            note "oha: cargo install oha --locked failed; running without oha"
        fi
    fi
else
    note "oha: skipped (--no-oha)"
fi

BASE=${PACER_BASELINE:-}
if [ -n "$BASE" ] && [ ! -x "$BASE" ]; then
    note "PACER_BASELINE=$BASE is not an executable: no baseline rows"
    BASE=
fi

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

log "building pacer (cargo build --release)"
(cd "$ROOT" && cargo build --release --quiet)
PACER=$ROOT/target/release/pacer

# ---------------------------------------------------------------------------------------- nginx
# The same nginx as benches/progress.sh and benches/requests.sh (benches/nginx.sh; sourcing it
# only defines functions).
. "$ROOT/benches/nginx.sh"
start_nginx
NGINX_WORKER=$(pgrep -P "$NGINX_PID" | head -1 || true)

# ---------------------------------------------------------------------------------------- helpers
# Every measurement appends one JSON line to RESULTS; the tables are printed from them at the end.
RESULTS=$WORK/results.jsonl
cat >"$WORK/parse.py" <<'PY'
import json, re, sys

def timev(path):
    t = {}
    for line in open(path, errors="replace"):
        k, _, v = line.strip().rpartition(": ")
        t[k] = v
    cpu = float(t.get("User time (seconds)", "nan")) + float(t.get("System time (seconds)", "nan"))
    rss = float(t.get("Maximum resident set size (kbytes)", "nan")) / 1024
    vol = int(t.get("Voluntary context switches", "0") or 0)
    invol = int(t.get("Involuntary context switches", "0") or 0)
    return cpu, rss, vol, invol

def perf(path):
    ev = {}
    try:
        for line in open(path, errors="replace"):
            p = line.strip().split(",")
            if len(p) > 2 and re.fullmatch(r"[\d.]+", p[0]):
                ev[p[2]] = float(p[0])
    except OSError:
        pass
    return ev

def main():
    kind, section, label, out, tfile, pfile, rc, extra, nginx_cpu, wall, load = sys.argv[1:12]
    r = {"section": section, "label": label, "kind": kind, "rc": int(rc), "load": load}
    r.update(json.loads(extra))
    if float(wall) > 0 and float(nginx_cpu) >= 0:
        r["nginx_cpu_pct"] = 100.0 * float(nginx_cpu) / float(wall)
    try:
        r["cpu"], r["rss"], r["vol"], r["invol"] = timev(tfile)
    except OSError:
        pass
    ev = perf(pfile)
    if "raw_syscalls:sys_enter" in ev:
        r["syscalls"] = ev["raw_syscalls:sys_enter"]
    if "context-switches" in ev:
        r["cs"] = ev["context-switches"]
    text = open(out, errors="replace").read()
    try:
        if kind == "pacer":
            # The JSON report is the first JSON object on stdout.
            d = json.loads(text[text.index("{"):])
            r.update(
                requests=d["total_requests"], rate=d["achieved_qps"], errors=d["errors"],
                error_counts=d.get("error_counts", {}), conns=d.get("connections_opened"),
                dd50=d.get("dispatch_delay_p50"), dd99=d.get("dispatch_delay_p99"),
                rt50=d.get("response_time_p50"), rt99=d.get("response_time_p99"),
                elapsed=d.get("elapsed"), scheduling=d.get("scheduling"),
                timestamps=d.get("timestamps"), threads=d.get("config", {}).get("threads"),
                lateness=d.get("config", {}).get("max_lateness"))
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
            p = d.get("latencyPercentiles", {})
            r["rt50"], r["rt99"] = p.get("p50"), p.get("p99")
        elif kind == "ttft":
            r.update(json.loads(text.strip().splitlines()[-1]))
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

# run KIND SECTION LABEL EXTRA_JSON -- CMD...: runs CMD under perf stat and /usr/bin/time -v,
# records one row.
N=0
run() {
    local kind=$1 section=$2 label=$3 extra=$4
    shift 5
    N=$((N + 1))
    local out=$WORK/$N.out tfile=$WORK/$N.time pfile=$WORK/$N.perf rc=0 c0 c1 t0 t1 l
    log "$section | $label: $*"
    l=$(cut -d' ' -f1 /proc/loadavg)
    c0=$(nginx_cpu)
    t0=$(date +%s.%N)
    if [ ${#PERF[@]} -gt 0 ]; then
        "${PERF[@]}" -o "$pfile" -- /usr/bin/time -v -o "$tfile" "$@" >"$out" 2>"$WORK/$N.err" || rc=$?
    else
        /usr/bin/time -v -o "$tfile" "$@" >"$out" 2>"$WORK/$N.err" || rc=$?
    fi
    t1=$(date +%s.%N)
    c1=$(nginx_cpu)
    if [ "$rc" != 0 ]; then
        note "$label exited with $rc: $* ; stderr: $(tail -c 300 "$WORK/$N.err" | tr '\n' ' ')"
    fi
    local ncpu wall
    ncpu=$(python3 -c "a, b = $c0, $c1; print(b - a if a >= 0 and b >= 0 else -1)")
    wall=$(python3 -c "print($t1 - $t0)")
    python3 "$WORK/parse.py" "$kind" "$section" "$label" "$out" "$tfile" "$pfile" "$rc" "$extra" \
        "$ncpu" "$wall" "$l" >>"$RESULTS"
    # Let TIME_WAIT sockets and nginx settle between tools.
    sleep 1
}
sat_rate() { # the lowest 2-thread saturation rate pacer reached (0 if none)
    python3 - "$RESULTS" <<'PY'
import json, sys
rates = [r["rate"] for r in map(json.loads, open(sys.argv[1]))
         if r["section"] == "sat" and r["label"] == "pacer" and r.get("threads") == 2 and r.get("rate")]
print(int(min(rates)) if rates else 0)
PY
}

# ---------------------------------------------------------------------------------------- runs
if [ "$MODE" = full ]; then SECS=10; SCHED_COUNT=10000000; else SECS=5; SCHED_COUNT=2000000; fi
ROUNDS=3
SAT_COUNT=1000000
LOAD_START=$(load)

# 1. Fixed rates with default threads: every tool's rows of a round run back to back, in an
# order that rotates from round to round.
for round in $(seq $ROUNDS); do
    for qps in 20000 1000 100000; do
        e="{\"asked\":$qps,\"round\":$round}"
        pacer_run() {
            run pacer fixed "pacer" "$e" -- "$PACER" bench --url "$URL" --qps $qps \
                --duration $SECS --num_workers 50 --json
        }
        base_run() {
            [ -n "$BASE" ] || return 0
            run pacer fixed "baseline" "$e" -- "$BASE" bench --url "$URL" --qps $qps \
                --duration $SECS --num_workers 50 --json
        }
        oha_run() {
            [ -n "$OHA" ] || return 0
            run oha fixed "oha" "$e" -- "$OHA" -c 50 -q $qps -z ${SECS}s --no-tui \
                --output-format json "$URL"
        }
        case $(((round + qps / 1000) % 3)) in
            0) pacer_run; oha_run; base_run ;;
            1) oha_run; base_run; pacer_run ;;
            *) base_run; pacer_run; oha_run ;;
        esac
        if [ $qps = 20000 ]; then
            # SCHED_FIFO (root or CAP_SYS_NICE; the row says when it was refused).
            run pacer fixed "pacer --realtime" "$e" -- "$PACER" bench --url "$URL" --qps $qps \
                --duration $SECS --num_workers 50 --realtime --json
        fi
    done
done
LOAD_FIXED=$(load)

# 2. Saturation.
for round in $(seq $ROUNDS); do
    for t in 1 2; do
        e="{\"threads\":$t,\"round\":$round}"
        wrk_run() { run wrk sat "wrk" "$e" -- wrk -t$t -c50 -d${SECS}s "$URL"; }
        pacer_run() {
            run pacer sat "pacer" "$e" -- "$PACER" bench --url "$URL" --qps max --threads $t \
                --num_workers 50 --duration $SECS --json
        }
        base_run() {
            [ -n "$BASE" ] || return 0
            run pacer sat "baseline" "$e" -- "$BASE" bench --url "$URL" --qps max --threads $t \
                --num_workers 50 --duration $SECS --json
        }
        oha_run() {
            [ -n "$OHA" ] || return 0
            run oha sat "oha" "$e" -- "$OHA" -c 50 -z ${SECS}s --no-tui --worker-threads $t \
                --output-format json "$URL"
        }
        case $(((round + t) % 3)) in
            0) wrk_run; pacer_run; oha_run; base_run ;;
            1) pacer_run; base_run; oha_run; wrk_run ;;
            *) oha_run; wrk_run; base_run; pacer_run ;;
        esac
    done
done
LOAD_SAT=$(load)

# 3. Time to first token, against the truth (one connection, 100 qps).
for round in $(seq $ROUNDS); do
    run ttft ttft "pacer" "{\"round\":$round}" -- "$ROOT/benches/ttft.sh" "$PACER" "$SECS" 100
done
LOAD_TTFT=$(load)

# 4. Scale.
SCHED_SECS=0
SAT_LONG=0
if [ "$SCALE" = 1 ]; then
    SAT2=$(sat_rate)
    [ "$SAT2" -gt 0 ] || SAT2=50000
    SAT_LONG=$(python3 -c "import math; print(max(1, math.ceil($SAT_COUNT * 1.2 / $SAT2)))")
    run pacer scale "pacer 1M at saturation" "{\"asked_requests\":$SAT_COUNT}" -- "$PACER" bench \
        --url "$URL" --qps max --threads 2 --num_workers 50 --duration "$SAT_LONG" --json
    SCHED_QPS=$(python3 -c "print(min(100000, int($SAT2 * 0.6) // 1000 * 1000))")
    [ "$SCHED_QPS" -ge 1000 ] || SCHED_QPS=1000
    SCHED_SECS=$(python3 -c "import math; print(math.ceil($SCHED_COUNT / $SCHED_QPS))")
    run pacer scale "pacer $((SCHED_COUNT / 1000000))M scheduled" \
        "{\"asked_requests\":$((SCHED_QPS * SCHED_SECS)),\"asked\":$SCHED_QPS}" -- "$PACER" bench \
        --url "$URL" --qps "$SCHED_QPS" --duration "$SCHED_SECS" --num_workers 200 --json
    run pacer conns "pacer 10k connections" "{\"workers\":10000}" -- "$PACER" bench --url "$URL" \
        --qps max --threads 2 --num_workers 10000 --duration 5 --timeout 10 --json
fi
LOAD_END=$(load)

# ---------------------------------------------------------------------------------------- tables
echo
echo "== pacer vs oha vs wrk on nginx (1 worker, loopback), mode: $MODE =="
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r)"
echo "tools: $("$NGINX" -v 2>&1 | sed 's/^nginx version: //'), $(wrk -v 2>&1 | head -1 | awk '{print "wrk " $2}')$([ -n "$OHA" ] && echo ", $("$OHA" --version)"), pacer $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')$([ -n "$BASE" ] && echo ", baseline $BASE")"
echo "load average (1, 5, 15 min): start $LOAD_START; after fixed rates $LOAD_FIXED; after saturation $LOAD_SAT; after ttft $LOAD_TTFT; end $LOAD_END"
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
python3 - "$RESULTS" "$SCHED_SECS" "$SAT_LONG" "$SECS" <<'PY'
import json, sys
from statistics import median
rows = [json.loads(l) for l in open(sys.argv[1])]
sched_secs, sat_long, secs = sys.argv[2], sys.argv[3], sys.argv[4]

def f(x, fmt="{:,.0f}"):
    return "-" if x is None or x != x else fmt.format(x)

def us(x):
    return "-" if x is None else f"{x * 1e6:,.0f}"

def med(xs):
    xs = [x for x in xs if x is not None and x == x]
    return median(xs) if xs else None

def per_req(r, key, scale=1.0):
    if r.get(key) is None or not r.get("requests"):
        return None
    return r[key] / r["requests"] * scale

def table(head, body):
    w = [max(len(str(c)) for c in col) for col in zip(head, *body)]
    line = lambda cells: "  ".join(str(c).rjust(n) if i else str(c).ljust(n) for i, (c, n) in enumerate(zip(cells, w)))
    print(line(head))
    print("  ".join("-" * n for n in w))
    for b in body:
        print(line(b))

issues = []
def problems(r):
    if r.get("parse_error"):
        issues.append(f"{r['label']}: could not read its output ({r['parse_error']}): {r.get('output_tail', '')!r}")
    if r.get("error_counts"):
        issues.append(f"{r['label']} ({r.get('asked') or r.get('threads')}): errors {r['error_counts']}")
    if r.get("scheduling") and "refused" in str(r.get("scheduling")):
        issues.append(f"{r['label']}: {r['scheduling']}")

targets = []
def target(name, value, ok, goal):
    targets.append((name, value, "PASS" if ok else ("FAIL" if ok is not None else "n/a"), goal))

# ------------------------------------------------------------------ 1. fixed rates
print(f"\n1. Fixed rates, {secs} s, 50 connections, default threads, 3 rounds: medians (pacer bench --qps Q | oha -q Q -c 50)")
fixed = [r for r in rows if r["section"] == "fixed"]
summary = {}
body = []
for qps in (1000, 20000, 100000):
    for label in ("pacer", "pacer --realtime", "baseline", "oha"):
        runs = [r for r in fixed if r.get("asked") == qps and r["label"] == label]
        if not runs:
            continue
        for r in runs:
            problems(r)
        s = {
            "rate": med([r.get("rate") for r in runs]),
            "rate_err": max((abs(r["rate"] - qps) / qps for r in runs if r.get("rate")), default=None),
            "dd50": med([r.get("dd50") for r in runs]),
            "dd99": med([r.get("dd99") for r in runs]),
            "rt50": med([r.get("rt50") for r in runs]),
            "rt99": med([r.get("rt99") for r in runs]),
            "cpu": med([per_req(r, "cpu", 1e6) for r in runs]),
            "vol": med([per_req(r, "vol") for r in runs]),
            "cs": med([per_req(r, "cs") for r in runs]),
            "sys": med([per_req(r, "syscalls") for r in runs]),
            "invol": med([r.get("invol") for r in runs]),
            "threads": runs[0].get("threads"),
            "lateness": runs[0].get("lateness"),
            "ts": runs[0].get("timestamps"),
            "load": med([float(r["load"]) for r in runs if r.get("load")]),
        }
        summary[(qps, label)] = s
        name = label + (f" (t={s['threads']})" if s["threads"] else "")
        body.append([f"{qps:,}", name, f(s["rate"]), f(s["rate_err"] * 100 if s["rate_err"] is not None else None, "{:.3f}%"),
                     us(s["dd50"]), us(s["dd99"]), us(s["rt50"]), us(s["rt99"]), f(s["cpu"], "{:.1f}"),
                     f(s["sys"], "{:.2f}"), f(s["cs"], "{:.2f}"), f(s["vol"], "{:.2f}"), f(s["invol"]),
                     f(s["load"], "{:.1f}")])
table(["qps", "tool", "achieved/s", "worst rate err", "dispatch p50 µs", "dispatch p99 µs",
       "response p50 µs", "response p99 µs", "CPU µs/req", "syscalls/req", "cs/req",
       "voluntary cs/req", "involuntary", "load"], body)
print("   CPU: user+sys per request (/usr/bin/time); syscalls and cs: perf stat (raw_syscalls:sys_enter,")
print("   context-switches); voluntary cs: /usr/bin/time; load: the 1-minute load average at the runs' start.")
print("   oha reports no dispatch delay; its response times are from its own clock.")
p = summary.get((20000, "pacer"))
o = summary.get((20000, "oha"))
if p:
    ratio = p["cpu"] / o["cpu"] if o and p["cpu"] and o["cpu"] else None
    target("20k qps, default threads: CPU per request vs oha", f(ratio, "{:.2f}x") + (f" ({p['cpu']:.1f} vs {o['cpu']:.1f} µs)" if ratio else ""),
           None if ratio is None else ratio <= 0.6, "<= 0.6x")
    target("20k qps: voluntary context switches per request", f(p["vol"], "{:.2f}"),
           None if p["vol"] is None else p["vol"] <= 0.5, "<= 0.5")
    target("20k qps: dispatch_delay p99", us(p["dd99"]) + " µs", None if p["dd99"] is None else p["dd99"] < 100e-6,
           "< 100 µs (quiet machine)")
    target("20k qps: achieved rate, worst round", f(p["rate_err"] * 100 if p["rate_err"] is not None else None, "{:.3f}%"),
           None if p["rate_err"] is None else p["rate_err"] <= 0.001, "within 0.1%")

# ------------------------------------------------------------------ 2. saturation
print(f"\n2. Saturation: 50 connections, {secs} s, 3 rounds (wrk -t T -c50 | pacer --qps max --threads T --num_workers 50 | oha -c 50 --worker-threads T)")
sat = [r for r in rows if r["section"] == "sat"]
body = []
ssum = {}
for t in (1, 2):
    st = [r for r in sat if r.get("threads") == t]
    wrk_by_round = {r.get("round"): r for r in st if r["label"] == "wrk"}
    for label in ("wrk", "pacer", "baseline", "oha"):
        runs = [r for r in st if r["label"] == label]
        if not runs:
            continue
        for r in runs:
            problems(r)
        ratio = med([r["rate"] / wrk_by_round[r.get("round")]["rate"] for r in runs
                     if r.get("rate") and wrk_by_round.get(r.get("round"), {}).get("rate")])
        cpu_ratio = med([per_req(r, "cpu") / per_req(wrk_by_round[r.get("round")], "cpu") for r in runs
                         if per_req(r, "cpu") and per_req(wrk_by_round.get(r.get("round"), {}), "cpu")])
        s = {"rate": med([r.get("rate") for r in runs]), "ratio": ratio, "cpu_ratio": cpu_ratio,
             "cpu": med([per_req(r, "cpu", 1e6) for r in runs]), "sys": med([per_req(r, "syscalls") for r in runs]),
             "cs": med([per_req(r, "cs") for r in runs])}
        ssum[(t, label)] = s
        rates = [r.get("rate") for r in runs if r.get("rate")]
        body.append([label, t, f(s["rate"]), f"{f(min(rates, default=None))}-{f(max(rates, default=None))}",
                     f(ratio, "{:.2f}"), f(s["cpu"], "{:.2f}"), f(cpu_ratio, "{:.2f}"), f(s["sys"], "{:.2f}"),
                     f(s["cs"], "{:.3f}"), f(sum(r.get("errors") or 0 for r in runs)),
                     f(med([r.get("nginx_cpu_pct") for r in runs])), f(med([float(r["load"]) for r in runs]), "{:.1f}")])
table(["tool", "threads", "median req/s", "range", "vs wrk", "CPU µs/req", "CPU vs wrk", "syscalls/req",
       "cs/req", "errors", "nginx CPU %", "load"], body)
print("   vs wrk: the median of each round's ratio to wrk's run in the same round")
for t in (1, 2):
    p = ssum.get((t, "pacer"))
    if p:
        target(f"saturation t={t}: requests/s vs wrk", f(p["ratio"], "{:.2f}x"),
               None if p["ratio"] is None else p["ratio"] >= 1.0, ">= 1.0x")
        target(f"saturation t={t}: CPU per request vs wrk", f(p["cpu_ratio"], "{:.2f}x"),
               None if p["cpu_ratio"] is None else p["cpu_ratio"] <= 0.9, "<= 0.9x")

# ------------------------------------------------------------------ 3. ttft
print("\n3. Time to first token on loopback: pacer's first-token time minus the server's write time, per request")
print("   (benches/ttft.sh: 100 qps, 1 connection, first token 2 ms after the request, 5 tokens 0.5 ms apart)")
tt = [r for r in rows if r["section"] == "ttft"]
body = []
for r in tt:
    problems(r)
    if r.get("error"):
        issues.append(f"ttft round {r.get('round')}: {r['error']}")
    body.append([r.get("round"), f(r.get("matched")), r.get("timestamps", "-"),
                 f(r.get("ttft_err_p50_us"), "{:.1f}"), f(r.get("ttft_err_p99_us"), "{:.1f}"),
                 f(r.get("ttft_err_max_us"), "{:.0f}"), f(r.get("ttft_err_before_p50_us"), "{:.1f}"),
                 f(r.get("ttft_err_before_p99_us"), "{:.1f}"), r.get("load")])
table(["round", "requests", "timestamps", "err p50 µs", "err p99 µs", "err max µs",
       "after write began: p50 µs", "p99 µs", "load"], body)
print("   err: against the server's clock right after its write returned (negative: pacer had the token")
print("   before the server's write call returned, as loopback allows); 'after write began': against the")
print("   reading just before the write, an upper bound of the error.")
if tt:
    p50 = med([r.get("ttft_err_p50_us") for r in tt])
    p99 = med([r.get("ttft_err_p99_us") for r in tt])
    target("TTFT error p50 (pacer - server write)", f(p50, "{:.1f} µs"), None if p50 is None else p50 <= 30, "<= 30 µs")
    target("TTFT error p99", f(p99, "{:.1f} µs"), None if p99 is None else p99 <= 100, "<= 100 µs")

# ------------------------------------------------------------------ 4. scale
scale = [r for r in rows if r["section"] in ("scale", "conns")]
if scale:
    print("\n4. Scale (pacer): max RSS must stay flat as runs grow")
    body = []
    for r in scale:
        problems(r)
        label = r["label"]
        if r["section"] == "scale" and r.get("asked") is None:
            label += f" ({sat_long} s)"
        elif r.get("asked"):
            label += f" ({r['asked']:,} qps x {sched_secs} s)"
        elif r["section"] == "conns":
            label += " (--qps max, 5 s)"
        body.append([label, f(r.get("requests")), f(r.get("rate")), f(r.get("errors")), f(r.get("conns")),
                     f(r.get("rss"), "{:.1f}")])
    table(["run", "requests", "rate/s", "errors", "connections_opened", "max RSS MB"], body)

print("\nTargets (issue 14):")
table(["target", "measured", "result", "goal"], [[a, b, c, d] for a, b, c, d in targets])
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
