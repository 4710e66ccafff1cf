#!/usr/bin/env bash
# The API under the client patterns of issue 19 (items 3 and 4), full size: prints, per attack,
# how `GET /health` on a fresh connection was answered during the flood and after it, and the
# server's memory. tests/api_flood.rs runs the same attacks small.
#
# Attacks (each connection the server closes is opened again at once, so the pressure holds):
# - pipeline:     connections writing `GET /` after `GET /` without waiting for answers (reading
#                 what comes back), against the server's defaults, or with --api-key so every
#                 answer is a 401 (which used to keep the connection open for more);
# - stalled:      half the connections send a head announcing a body and never the body, half
#                 ask for /openapi.json 64 times in one write and never read an answer.
#
# During each flood (after 2 s to settle), one GET /health a second on a fresh connection; the
# row gives each answer's status and time, the slowest, the answer after the flood, and the
# server's peak and final RSS. Exits 1 if a /health answer was not 200 within 3 s.
#
# Usage: benches/api_flood.sh [SECONDS]    (the length of each flood, default 10; needs python3)
#        PACER_BIN=/path/to/pacer benches/api_flood.sh    floods another build (e.g. an older one)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-10}

source benches/flood_lib.sh api_flood.sh 1100

cat >"$tmp/attack.py" <<'PY'
import re, selectors, socket, sys, threading, time

api, attack, n, seconds, pid = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
host, port = api.rsplit(":", 1)
port = int(port)
GET = b"GET / HTTP/1.1\r\nHost: flood\r\n\r\n"
PIPELINE = GET * 256
STALLED = b"POST /benchmark HTTP/1.1\r\nHost: flood\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
UNREAD = b"GET /openapi.json HTTP/1.1\r\nHost: flood\r\n\r\n" * 64
sel = selectors.DefaultSelector()
conns = {}  # socket -> [kind, bytes sent]
count = {"reopened": 0}
statuses = {}


def open_one(kind):
    s = socket.socket()
    s.setblocking(False)
    s.connect_ex((host, port))
    conns[s] = [kind, 0]
    if kind != "unread":
        sel.register(s, selectors.EVENT_READ)


def reopen(s):
    kind = conns.pop(s)[0]
    if kind != "unread":
        sel.unregister(s)
    s.close()
    count["reopened"] += 1
    open_one(kind)


def rss():
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


def health(timeout=15):
    t = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else 0
    except (OSError, ValueError, IndexError):
        status = 0
    return status, time.monotonic() - t


kinds = {"pipeline": ["pipeline"], "stalled": ["stalled", "unread"]}[attack]
for i in range(n):
    open_one(kinds[i % len(kinds)])
probes, peak = [], [rss()]
done = threading.Event()


def prober():
    time.sleep(2)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t = time.monotonic()
        probes.append(health())
        peak[0] = max(peak[0], rss())
        time.sleep(max(0.0, 1 - (time.monotonic() - t)))
    done.set()


threading.Thread(target=prober, daemon=True).start()
answer = re.compile(rb"HTTP/1\.1 (\d\d\d) ")
while not done.is_set():
    for key, _ in sel.select(timeout=0.01):
        s = key.fileobj
        try:
            data = s.recv(65536)
        except BlockingIOError:
            continue
        except OSError:
            data = b""
        if not data:
            reopen(s)
            continue
        for m in answer.finditer(data):
            statuses[m.group(1).decode()] = statuses.get(m.group(1).decode(), 0) + 1
    for s, st in list(conns.items()):
        kind = st[0]
        try:
            if kind == "pipeline":
                st[1] += s.send(PIPELINE[st[1] % len(GET):])
            elif st[1] == 0:
                st[1] = 1
                s.send(STALLED if kind == "stalled" else UNREAD)
            elif kind == "unread":
                s.send(b"\r\n")  # never reads: the server's close shows as a failed write
        except BlockingIOError:
            pass
        except OSError:
            reopen(s)
for s in list(conns):
    s.close()
time.sleep(1)
after = health()
final = rss()
ok = all(st == 200 and t <= 3 for st, t in probes + [after])
during = " ".join(f"{st} {t:.3f}s" if st else f"none {t:.1f}s" for st, t in probes)
slowest = max(t for _, t in probes) if probes else 0
seen = ", ".join(f"{k}×{v}" for k, v in sorted(statuses.items())) or "none"
print(f"| {sys.argv[6]} | {during} | {slowest:.3f} s | {after[0]} {after[1]:.3f}s | "
      f"{peak[0]} MB | {final} MB | {count['reopened']} | {seen} |")
sys.exit(0 if ok else 1)
PY

failed=0
echo "| attack | GET /health during the flood (status time, one a second) | slowest | after | peak RSS | RSS after | connections the server closed | answers the flood read |"
echo "|---|---|---|---|---|---|---|---|"
# round LABEL ATTACK CONNECTIONS SERVE-FLAGS...
round() {
    local label=$1 attack=$2 n=$3
    shift 3
    local log="$tmp/serve.log"
    "$BIN" serve --addr 127.0.0.1:0 "$@" 2>"$log" &
    local pid=$!
    pids+=("$pid")
    local addr
    addr=$(addr_of "$log")
    python3 "$tmp/attack.py" "$addr" "$attack" "$n" "$SECONDS_EACH" "$pid" "$label" || failed=1
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

round "200 pipelining GET /" pipeline 200
round "200 pipelining, --api-key (401s)" pipeline 200 --api-key k3y
round "1,100 pipelining, --api-key (401s)" pipeline 1100 --api-key k3y
round "1,100 stalled bodies / unread answers" stalled 1100
round "1,100 stalled bodies / unread answers, --api-key" stalled 1100 --api-key k3y
exit $failed
