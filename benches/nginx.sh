# Shared by benches/compare.sh, benches/progress.sh and benches/requests.sh (sourced, not run):
# nginx on a free loopback port answering "Hello, world!" with keep-alive unlimited, plus the
# tools the runs need (`bench_setup`; compare.sh installs its own). After `start_nginx`: $URL, $NGINX_PID, $WORK (removed on
# exit, nginx stopped), $PACER (built in release). Installs nginx and GNU time with apt-get when
# missing.

bench_log() { printf '[%s] %s\n' "$(basename "$0" .sh)" "$*" >&2; }

# bench_options "NAME ..." ARGS...: each `--name VALUE` in ARGS sets the variable NAME (upper
# case, `-` as `_`) if it is one of the listed names; -h/--help prints the script's header
# comment (from its second line to `set -euo pipefail`); anything else exits 2.
bench_options() {
    local names=" $1 " var
    shift
    while [ $# -gt 0 ]; do
        case "$1" in
            -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
            --*)
                var=$(printf '%s' "${1#--}" | tr 'a-z-' 'A-Z_')
                if [[ "$names" != *" $var "* ]] || [ $# -lt 2 ]; then
                    echo "unknown argument or missing value: $1 (see --help)" >&2
                    exit 2
                fi
                printf -v "$var" '%s' "$2"
                shift
                ;;
            *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
        esac
        shift
    done
}

bench_setup() {
    ROOT=$(cd "$(dirname "$0")/.." && pwd)
    WORK=$(mktemp -d /tmp/pacer-bench.XXXXXX)
    NGINX_PID=
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
    local sudo= need=()
    if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then sudo=sudo; fi
    command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
    [ -x /usr/bin/time ] || need+=(time)
    command -v python3 >/dev/null || need+=(python3)
    if [ ${#need[@]} -gt 0 ]; then
        bench_log "installing ${need[*]} with apt-get"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
    fi
    bench_log "building pacer (cargo build --release)"
    (cd "$ROOT" && cargo build --release --quiet)
    PACER=$ROOT/target/release/pacer
}

bench_cleanup() {
    if [ -n "$NGINX_PID" ] && kill -0 "$NGINX_PID" 2>/dev/null; then
        kill "$NGINX_PID" 2>/dev/null || true
        wait "$NGINX_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}

start_nginx() {
    local nginx port
    nginx=$(command -v nginx || echo /usr/sbin/nginx)
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    mkdir -p "$WORK/nginx/tmp"
    cat >"$WORK/nginx/nginx.conf" <<CONF
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
        listen 127.0.0.1:$port backlog=16384;
        location / {
            default_type text/plain;
            return 200 "Hello, world!";
        }
    }
}
CONF
    "$nginx" -p "$WORK/nginx" -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf" &
    NGINX_PID=$!
    URL=http://127.0.0.1:$port/
    for _ in $(seq 50); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),0.2).close()" 2>/dev/null && break
        sleep 0.1
    done
    local body
    body=$(python3 -c "import urllib.request; print(urllib.request.urlopen('$URL').read().decode())")
    [ "$body" = "Hello, world!" ] || {
        echo "nginx did not answer on $URL" >&2
        cat "$WORK/nginx/error.log" >&2
        exit 1
    }
    bench_log "nginx on $URL (1 worker, keep-alive unlimited)"
}

# timed OUT TFILE -- CMD...: runs CMD under /usr/bin/time -v, stdout to OUT, stderr to OUT.err.
timed() {
    local out=$1 tfile=$2
    shift 3
    /usr/bin/time -v -o "$tfile" "$@" >"$out" 2>"$out.err" || bench_log "exit $?: $* ($(tail -c 300 "$out.err"))"
    sleep 1
}

# row OUT TFILE LABEL EXTRA_JSON: one run (pacer's JSON report in OUT, /usr/bin/time -v in
# TFILE) as one JSON object on stdout.
row() {
    python3 - "$@" <<'PY'
import json, sys
out, tfile, label, extra = sys.argv[1:5]
t = {}
for line in open(tfile, errors="replace"):
    k, _, v = line.strip().rpartition(": ")
    t[k] = v
r = {"label": label, **json.loads(extra)}
r["cpu"] = float(t.get("User time (seconds)", "nan")) + float(t.get("System time (seconds)", "nan"))
r["rss_mb"] = float(t.get("Maximum resident set size (kbytes)", "nan")) / 1024
r["invol"] = int(t.get("Involuntary context switches", "0") or 0)
try:
    d = json.load(open(out))
    r.update(requests=d["total_requests"], rate=d["achieved_qps"], errors=d["errors"],
             dd50=d.get("dispatch_delay_p50"), dd99=d.get("dispatch_delay_p99"),
             dd999=d.get("dispatch_delay_p999"), rt50=d.get("response_time_p50"),
             rt99=d.get("response_time_p99"), elapsed=d.get("elapsed"))
except Exception as e:
    r["parse_error"] = f"{type(e).__name__}: {e}"
print(json.dumps(r))
PY
}
