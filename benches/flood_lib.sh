# Helpers shared by the API flood scripts (flood.sh, api_flood.sh); sourced, not run. Sets BIN
# (the release build, or $PACER_BIN to flood another build, e.g. an older one), raises the
# open-file limit to the hard one and checks it holds $1 connections, and gives `tmp` (removed on
# exit), `pids` (killed on exit) and `addr_of`.
# Usage: source benches/flood_lib.sh NAME CONNECTIONS
FLOOD_NAME=$1
command -v python3 >/dev/null || { echo "$FLOOD_NAME: needs python3" >&2; exit 1; }
if [ -n "${PACER_BIN:-}" ]; then
    BIN=$PACER_BIN
else
    cargo build --release --bin pacer >&2
    BIN=$PWD/target/release/pacer
fi

# The flood client itself holds that many descriptors.
ulimit -S -n "$(ulimit -H -n)"
if [ "$(ulimit -n)" -lt $(($2 + 200)) ]; then
    echo "$FLOOD_NAME: the open-file limit ($(ulimit -n)) is too low for $2 connections" >&2
    exit 1
fi

tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

# The host:port a process printed on its stderr log ($1), waiting up to 10 s for it.
addr_of() {
    for _ in $(seq 100); do
        a=$(grep -o 'http://[0-9.]*:[0-9]*' "$1" | head -1 || true)
        if [ -n "$a" ]; then echo "${a#http://}"; return; fi
        sleep 0.1
    done
    echo "$FLOOD_NAME: no address in $1:" >&2
    cat "$1" >&2
    exit 1
}
