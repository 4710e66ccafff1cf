#!/usr/bin/env bash
# User-space instructions per request at saturation, the figure issue 9 asks to hold: pacer under
# callgrind against nginx on loopback (benches/nginx.sh), `--qps max`, 50 connections, 1 thread,
# for N1 and N2 requests (`-n`); the slope (Ir(N2) - Ir(N1)) / (N2 - N1) leaves out start-up and
# teardown, so it is the cost of one more request. Both counts stay under the recorders' exact
# window (`stats::EXACT_LIMIT`, 100,000 samples): a run that crosses it pays the one-time move of
# its samples into the sketch, which a run bounded by its duration did or did not, depending on
# how fast the machine was that minute (1,500 instructions per request apart, same binary).
# Three rounds, median.
#
# Usage: benches/instructions.sh [--rounds N]
# Environment: PACER_BASELINE=/path/to/pacer adds the same rounds of a second binary, alternating.
# Installs valgrind (and nginx, GNU time) with apt-get when missing.
set -euo pipefail
ROUNDS=3
. "$(dirname "$0")/nginx.sh"
bench_options "ROUNDS" "$@"
bench_setup
if ! command -v valgrind >/dev/null; then
    bench_log "installing valgrind with apt-get"
    sudo=
    if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then sudo=sudo; fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq valgrind >/dev/null
fi
start_nginx

# ir BINARY COUNT: "instructions requests" of one run of COUNT requests under callgrind.
ir() {
    local bin=$1 count=$2 out=$WORK/cg.$RANDOM
    valgrind --tool=callgrind --callgrind-out-file="$out.cg" "$bin" bench --url "$URL" \
        --qps max -n "$count" --num_workers 50 --threads 1 --json >"$out.json" 2>"$out.err"
    local instr requests
    instr=$(sed -n 's/^summary: //p' "$out.cg" | head -1)
    requests=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["total_requests"])' "$out.json")
    echo "$instr $requests"
}

slope() { # BINARY: one round's instructions per request
    local a b
    a=$(ir "$1" 20000)
    b=$(ir "$1" 80000)
    python3 -c 'import sys; i1,n1,i4,n4=map(int,sys.argv[1:]); print(f"{(i4-i1)/(n4-n1):.0f} {n1} {n4}")' $a $b
}

bins=("$PACER")
names=(pacer)
if [ -n "${PACER_BASELINE:-}" ]; then
    bins+=("$PACER_BASELINE")
    names+=(baseline)
fi
declare -A got
for r in $(seq "$ROUNDS"); do
    for i in "${!bins[@]}"; do
        s=$(slope "${bins[$i]}")
        bench_log "round $r ${names[$i]}: $s (instructions/request, requests of the two runs)"
        got[${names[$i]}]+="${s%% *} "
    done
done
for n in "${names[@]}"; do
    python3 -c 'import statistics,sys; v=[int(x) for x in sys.argv[2:]]; print(f"{sys.argv[1]}: user-space instructions per request at saturation, median {statistics.median(v):.0f} (rounds: {v})")' "$n" ${got[$n]}
done
