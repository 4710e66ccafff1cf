#!/usr/bin/env bash
# Floods `pacer serve` with connections and checks that it keeps serving (issue 9, "Serving safely").
#
# The flood: N connections (default 10,000), half idle, half sending a request head one byte a
# second and never finishing it; a connection the server closes is opened again at once, so the
# pressure never lets up. During it, 10 GET / on fresh connections, one a second: each should be
# answered within 3 s, and at least 8 of 10 must be. After it, a benchmark of a mock target
# through the API must work, and the server must still be running.
#
# Two rounds: the server with its defaults, then with an open-file limit of 1024 and a connection
# cap above it, so that accepting fails with EMFILE (which used to stop the server for good).
#
# Usage: benches/flood.sh [N]        needs python3; exits 1 if a round fails.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}

source benches/flood_lib.sh flood.sh "$N"

cat >"$tmp/flood.py" <<'PY'
import selectors, socket, sys, threading, time

api, mock, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
host, port = api.rsplit(":", 1)
port = int(port)
HEAD = b"GET / HTTP/1.1\r\nHost: flood\r\nX-Drip: "
sel = selectors.DefaultSelector()
conns = {}  # socket -> [drips, bytes sent]
count = {"reopened": 0}


def open_one(drips):
    s = socket.socket()
    s.setblocking(False)
    s.connect_ex((host, port))
    sel.register(s, selectors.EVENT_READ)
    conns[s] = [drips, 0]


def reopen(s):
    drips = conns.pop(s)[0]
    sel.unregister(s)
    s.close()
    count["reopened"] += 1
    open_one(drips)


def get(path, body=None, timeout=10):
    """One request on a fresh connection: (status, seconds, body)."""
    t = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            if body is None:
                s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            else:
                b = body.encode()
                s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                          f"Content-Type: application/json\r\nContent-Length: {len(b)}\r\n\r\n".encode() + b)
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else 0
        return status, time.monotonic() - t, data.partition(b"\r\n\r\n")[2]
    except OSError as e:
        return 0, time.monotonic() - t, str(e).encode()


t0 = time.monotonic()
for i in range(n):
    open_one(i % 2 == 1)
opened_in = time.monotonic() - t0

probes = []
done = threading.Event()


def prober():
    time.sleep(2)  # let the flood settle on the server
    for _ in range(10):
        t = time.monotonic()
        status, took, _ = get("/")
        probes.append((status, took))
        time.sleep(max(0.0, 1 - (time.monotonic() - t)))
    done.set()


threading.Thread(target=prober, daemon=True).start()
next_drip = time.monotonic()
while not done.is_set():
    for key, _ in sel.select(timeout=0.1):
        s = key.fileobj
        try:
            s.recv(4096)  # an answer (408/503) or the close: either way the server let go
        except BlockingIOError:
            continue
        except OSError:
            pass
        reopen(s)
    if time.monotonic() >= next_drip:
        next_drip += 1
        for s, st in list(conns.items()):
            if not st[0]:
                continue
            try:
                s.send(HEAD[st[1]:st[1] + 1] or b"a")
                st[1] += 1
            except BlockingIOError:
                pass
            except OSError:
                reopen(s)
for s in list(conns):
    s.close()

ok = sum(1 for status, took in probes if status == 200 and took <= 3)
print(f"  flood: {n} connections ({n - n // 2} idle, {n // 2} dripping a head 1 byte/s), "
      f"opened in {opened_in:.1f} s; the server let go of {count['reopened']} (each re-opened at once)")
print("  GET / during the flood:", " ".join(
    f"{took:.3f}s" if status == 200 else f"{status or 'no answer'} after {took:.1f}s"
    for status, took in probes))
print(f"  answered within 3 s: {ok} of {len(probes)}")
status, took, body = get("/benchmark", f'{{"url": "http://{mock}/", "qps": 100, "duration": 2}}', timeout=60)
import json
try:
    r = json.loads(body)
    summary = f"{r.get('total_requests')} requests, {r.get('successes')} successes"
except ValueError:
    summary = body[:200]
print(f"  benchmark after the flood: HTTP {status}, {summary} ({took:.1f} s)")
sys.exit(0 if ok >= 8 and status == 200 else 1)
PY

"$BIN" mock --port 0 --all-200 2>"$tmp/mock.log" &
pids+=($!)
MOCK=$(addr_of "$tmp/mock.log")

failed=0
# round NAME SERVER-FD-LIMIT SERVE-FLAGS...
round() {
    local name=$1 limit=$2
    shift 2
    local log="$tmp/serve-$name.log"
    (
        if [ "$limit" != default ]; then ulimit -n "$limit"; fi
        exec "$BIN" serve --addr 127.0.0.1:0 "$@"
    ) 2>"$log" &
    local pid=$!
    pids+=("$pid")
    local addr
    addr=$(addr_of "$log")
    echo "== $name: pacer serve $* (open-file limit $(awk '/Max open files/ {print $4}' /proc/$pid/limits))"
    python3 "$tmp/flood.py" "$addr" "$MOCK" "$N" || failed=1
    if kill -0 "$pid" 2>/dev/null && python3 - "$addr" <<'PY'
import socket, sys
h, p = sys.argv[1].rsplit(":", 1)
with socket.create_connection((h, int(p)), timeout=10) as s:
    s.settimeout(10)
    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    sys.exit(0 if s.recv(100).startswith(b"HTTP/1.1 200") else 1)
PY
    then
        echo "  server survived: yes (still running, /health answers)"
    else
        echo "  server survived: NO"
        failed=1
    fi
    local shed
    shed=$(grep -c 'shedding load' "$log" || true)
    echo "  server log: $shed load-shedding summaries; last: $(grep 'shedding load' "$log" | tail -1 | cut -c1-220)"
    kill "$pid" 2>/dev/null || true
}

round defaults default
round emfile 1024 --max-connections 100000
exit $failed
