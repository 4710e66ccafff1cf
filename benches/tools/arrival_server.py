#!/usr/bin/env python3
"""A plain HTTP/1.1 target for benches/target_clock.sh that stamps every request's arrival with
the kernel's clock: each read asks for SO_TIMESTAMPNS, the moment the kernel received the read's
last segment (on loopback, inside the client's send call). So a request's arrival is known to the
kernel's precision however late this (slow, Python) server gets to read it, and the gaps between
arrivals are the pacing as the target sees it.

Answers every request `200 OK` with a 2-byte body, keep-alive, any number of connections (epoll).
Binds 127.0.0.1 only; prints its port on stdout. On SIGTERM or SIGINT it writes one line per
request to --log: the arrival in nanoseconds of the realtime clock (the kernel's stamp), in the
order of arrival. A read that carries several requests (pipelining, which pacer does not do) gives
them all its stamp."""
import argparse
import selectors
import signal
import socket
import struct
import sys

# Linux's values (Python's socket module does not name them): SO_TIMESTAMPNS asks for a
# `struct timespec` control message, of the same type, with every read.
SO_TIMESTAMPNS = 35
SCM_TIMESTAMPNS = SO_TIMESTAMPNS
TIMESPEC = struct.Struct("qq")
CMSG_SPACE = socket.CMSG_SPACE(TIMESPEC.size)
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--log", required=True)
    a = p.parse_args()
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1024)
    srv.setblocking(False)
    print(srv.getsockname()[1], flush=True)
    sel = selectors.DefaultSelector()
    sel.register(srv, selectors.EVENT_READ, None)
    stamps = []
    unstamped = [0]
    bufs = {}

    def finish(*_):
        with open(a.log, "w") as log:
            log.write("".join(f"{s}\n" for s in stamps))
        if unstamped[0]:
            print(f"arrival_server: {unstamped[0]} reads without a stamp", file=sys.stderr)
        sys.exit(0)

    signal.signal(signal.SIGTERM, finish)
    signal.signal(signal.SIGINT, finish)

    def on_read(conn):
        try:
            data, anc, _, _ = conn.recvmsg(65536, CMSG_SPACE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            sel.unregister(conn)
            bufs.pop(conn, None)
            conn.close()
            return
        stamp = None
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS:
                sec, nsec = TIMESPEC.unpack(payload[: TIMESPEC.size])
                stamp = sec * 1_000_000_000 + nsec
        buf = bufs.get(conn, b"") + data
        out = b""
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            buf = buf[end + 4 :]  # GET requests without a body
            if stamp is None:
                unstamped[0] += 1
            else:
                stamps.append(stamp)
            out += ANSWER
        bufs[conn] = buf
        if out:
            try:
                conn.sendall(out)
            except OSError:
                pass

    while True:
        for key, _ in sel.select():
            if key.fileobj is srv:
                try:
                    conn, _ = srv.accept()
                except OSError:
                    continue
                conn.setblocking(False)
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
                sel.register(conn, selectors.EVENT_READ, None)
            else:
                on_read(key.fileobj)


if __name__ == "__main__":
    main()
