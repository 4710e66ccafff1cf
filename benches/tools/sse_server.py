#!/usr/bin/env python3
"""A streaming LLM target for benches/ttft.sh: OpenAI-style completions over SSE (chunked), one
connection at a time, keep-alive. For every request it writes the response head at once, then
after --ttft the first token event, then --tokens - 1 more every --itl, then [DONE]. Right after
each write returns it reads CLOCK_MONOTONIC and logs one line per request to --log:

    <request number from 0> <head written> <first token: before write> <first token: written>
    <last token written>

(ns) so a client's per-request first-token times (on the same clock) can be compared with the
moment the server handed the token to the kernel. On loopback the kernel delivers the bytes, and
may wake the client, inside the server's write call: the true arrival lies between the readings
before and after the write. Binds 127.0.0.1 only; prints its port on stdout."""
import argparse
import socket
import sys
import time


def mono_ns():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def read_request(conn, buf):
    """One request (head + Content-Length body) from conn; returns (ok, rest of buf)."""
    while b"\r\n\r\n" not in buf:
        got = conn.recv(65536)
        if not got:
            return False, b""
        buf += got
    head, _, rest = buf.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(rest) < length:
        got = conn.recv(65536)
        if not got:
            return False, b""
        rest += got
    return True, rest[length:]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--ttft", type=float, default=0.002, help="seconds to the first token")
    p.add_argument("--itl", type=float, default=0.0005, help="seconds between tokens")
    p.add_argument("--tokens", type=int, default=5)
    p.add_argument("--log", required=True)
    a = p.parse_args()
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    print(srv.getsockname()[1], flush=True)
    log = open(a.log, "w", buffering=1)
    head = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n")
    token = chunk(b'data: {"choices":[{"text":" tok","index":0}]}\n\n')
    done = chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n"
    n = 0
    while True:
        conn, _ = srv.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = b""
        while True:
            ok, buf = read_request(conn, buf)
            if not ok:
                break
            start = time.monotonic()
            conn.sendall(head)
            t_head = mono_ns()
            times = []
            before = 0
            for i in range(a.tokens):
                due = start + a.ttft + i * a.itl
                while True:
                    left = due - time.monotonic()
                    if left <= 0:
                        break
                    time.sleep(left)
                if i == 0:
                    before = mono_ns()
                conn.sendall(token)
                times.append(mono_ns())
            conn.sendall(done)
            log.write(f"{n} {t_head} {before} {times[0]} {times[-1]}\n")
            n += 1
        conn.close()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
