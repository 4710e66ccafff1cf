"""Requests sent by hand to a llama-server: the server's own figures and its framing.

For each of completions and chat, streamed and whole, sends a few requests over a plain socket
(HTTP/1.1, one request per connection), times the first token event as a client sees it, and
reads what the server says of itself: `timings` (prompt_ms, prompt_n, predicted_n, cache_n) and
`usage`. Prints a table of those, then what the Fireworks payload's `stop` string and `logprobs`
do to llama.cpp's streams (`payload_styles`, not with --save), then the framing of one stream of
each kind: the HTTP head, the chunking, and each event's JSON keys. With --save DIR, writes one
streamed completions answer and one streamed chat answer, raw bytes as they came off the
socket, to DIR/llama_cpp_completions_stream.http and DIR/llama_cpp_chat_stream.http.

Usage: python llama_probe.py PORT TOKENIZER_JSON [--save DIR]
"""

import json
import os
import socket
import sys
import time

PORT = int(sys.argv[1])
try:
    from tokenizers import Tokenizer

    TOK = Tokenizer.from_file(sys.argv[2])
except Exception:  # the table then says "-" for the tokenizer's counts
    TOK = None
SAVE = sys.argv[sys.argv.index("--save") + 1] if "--save" in sys.argv else None

PROMPT = "Permission is hereby granted, free of charge, to any person obtaining a copy"


def request(path, payload):
    body = json.dumps(payload).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{PORT}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    s = socket.create_connection(("127.0.0.1", PORT), timeout=60)
    t0 = time.monotonic()
    s.sendall(head + body)
    raw = b""
    arrivals = []  # (time, bytes so far)
    while True:
        b = s.recv(65536)
        if not b:
            break
        raw += b
        arrivals.append((time.monotonic() - t0, len(raw)))
    s.close()
    return raw, arrivals


def dechunk(body):
    """The chunks of a chunked body, each (offset in body, data)."""
    out, i = [], 0
    while True:
        j = body.index(b"\r\n", i)
        size = int(body[i:j].split(b";")[0], 16)
        if size == 0:
            return out
        out.append((j + 2, body[j + 2 : j + 2 + size]))
        i = j + 2 + size + 2


def split(raw):
    h, _, body = raw.partition(b"\r\n\r\n")
    lines = h.decode().split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return lines[0], headers, len(h) + 4, body


def events(body, headers):
    data = b"".join(c for _, c in dechunk(body)) if "chunked" in headers.get("transfer-encoding", "") else body
    out = []
    for e in data.decode().split("\n\n"):
        if e.strip():
            assert e.startswith("data: "), f"not a data line: {e[:40]!r}"
            out.append(e[len("data: "):])
    return out


def kind(ev, api):
    """A name for an event's role in the stream."""
    if ev == "[DONE]":
        return "done"
    j = json.loads(ev)
    ch = j.get("choices") or []
    if not ch:
        return "usage" if "usage" in j else "other"
    c = ch[0]
    if c.get("finish_reason"):
        return "last"
    if api == "chat" and "role" in (c.get("delta") or {}) and not (c["delta"].get("content")):
        return "role"
    if not (c.get("text") or (c.get("delta") or {}).get("content")):
        # llama.cpp's event for a token it holds back (a stop string may start with it): the
        # text comes with the next token's event. pacer counts no token here either.
        return "empty"
    return "token"


def keys(j, api):
    ks = sorted(j)
    ch = j.get("choices") or []
    inner = ""
    if ch:
        inner = " choices[0]:" + ",".join(sorted(ch[0]))
        if api == "chat" and "delta" in ch[0]:
            inner += " delta:" + ",".join(sorted(ch[0]["delta"]))
    return ",".join(ks) + inner


def probe(api, stream, n=5, max_tokens=32):
    path = "/v1/completions" if api == "completions" else "/v1/chat/completions"
    payload = {"model": "tiny", "max_tokens": max_tokens, "stream": stream, "ignore_eos": True,
               "temperature": 0.8, "seed": 7}
    if api == "completions":
        payload["prompt"] = PROMPT
    else:
        payload["messages"] = [{"role": "user", "content": PROMPT}]
    if stream:
        payload["stream_options"] = {"include_usage": True}
    rows, last = [], None
    for i in range(n):
        # A different first word each time: no prompt-cache reuse between the probes.
        p = dict(payload)
        words = ["Note:", "Also,", "Here", "Now", "Then", "So", "Yes,", "Well,", "First,", "Last,"]
        word = words[i % 5 + (0 if stream else 5)]
        if api == "completions":
            p["prompt"] = f"{word} {PROMPT}"
        else:
            p["messages"] = [{"role": "user", "content": f"{word} {PROMPT}"}]
        raw, arrivals = request(path, p)
        status, headers, body_at, body = split(raw)
        timings = usage = None
        ttft = None
        tokens_events = 0
        text = ""
        if stream:
            evs = events(body, headers)
            # The arrival of the first token event: the first read that held its bytes.
            offset = body_at
            for e in evs:
                where = raw.find(("data: " + e).encode(), offset)
                end = where + len(e) + 6
                if kind(e, api) == "token":
                    if ttft is None:
                        ttft = next(t for t, n_ in arrivals if n_ >= end)
                    tokens_events += 1
                offset = end
                if e != "[DONE]":
                    j = json.loads(e)
                    timings = j.get("timings", timings)
                    usage = j.get("usage", usage)
                    for c in j.get("choices") or []:
                        text += c.get("text") or (c.get("delta") or {}).get("content") or ""
        else:
            j = json.loads(b"".join(c for _, c in dechunk(body)) if "chunked" in headers.get("transfer-encoding", "") else body)
            timings, usage = j.get("timings"), j.get("usage")
            c = j["choices"][0]
            text = c.get("text") or (c.get("message") or {}).get("content") or ""
            ttft = arrivals[-1][0] if arrivals else None
        sent = p.get("prompt") or p["messages"][0]["content"]
        rows.append((ttft, timings or {}, usage or {}, tokens_events, text, sent))
        # The stream kept for its framing (and saved as a fixture): the first whose every token
        # came in an event of its own. llama.cpp holds back a token that ends inside a UTF-8
        # character and sends it with the next, which a random model's bytes often do.
        whole = (usage or {}).get("completion_tokens") == tokens_events
        if last is None or (whole and not last[5]):
            last = (raw, status, headers, body_at, body, whole)
    return rows, last


def payload_styles(n=40, max_tokens=256):
    """The Fireworks payload's `stop` string and `logprobs` against llama.cpp, one at a time.

    Each of n prompts (with markup) is sent as a plain request and again with
    `stop: "<string>"`, with `logprobs: 2, echo: true`, and with both, all with the Fireworks
    payload's sampling (temperature 1, top_k 50, top_p 1), one seed and no prompt cache
    (`cache_prompt: false`), so each variant samples the same tokens from the same cold start:
    any difference in the events is the parameter's.
    Prints, per variant: answers, tokens (usage), token events (text not empty), the empty
    events llama.cpp sends for a held-back token, answers whose first text carried more than the
    plain answer's first token (held back), client TTFT p50, bytes p50.
    """
    words = ["Note:", "Also,", "Here", "Now", "Then", "So", "Yes,", "Well,", "First,", "Last,"]
    base = {"model": "tiny", "max_tokens": max_tokens, "stream": True, "ignore_eos": True,
            "temperature": 1, "top_k": 50, "top_p": 1, "seed": 7, "cache_prompt": False,
            "stream_options": {"include_usage": True}}
    variants = [("plain (openai style)", {}), ("stop \"<string>\"", {"stop": "<string>"}),
                ("logprobs 2, echo", {"logprobs": 2, "echo": True}),
                ("fireworks: stop, logprobs 2, echo", {"stop": "<string>", "logprobs": 2,
                                                      "echo": True})]
    out = {name: [] for name, _ in variants}
    for i in range(n):
        # Markup in the prompt (as in many real prompts): this random model then samples `<`
        # tokens more often, the ones a stop string starting with `<` holds back.
        prompt = f"{words[i % len(words)]} {i} <a <b < c"
        for name, extra in variants:
            raw, arrivals = request("/v1/completions", dict(base, prompt=prompt, **extra))
            _, headers, body_at, body = split(raw)
            texts, usage, ttft, offset, empty = [], {}, None, body_at, 0
            for e in events(body, headers):
                where = raw.find(("data: " + e).encode(), offset)
                end = where + len(e) + 6
                offset = end
                empty += kind(e, "completions") == "empty"
                if kind(e, "completions") == "token":
                    if ttft is None:
                        ttft = next(t for t, n_ in arrivals if n_ >= end)
                    texts.append(json.loads(e)["choices"][0].get("text") or "")
                elif e != "[DONE]":
                    usage = json.loads(e).get("usage") or usage
            out[name].append((ttft, texts, usage.get("completion_tokens"), len(raw), empty))
    plain = out[variants[0][0]]

    def p50(xs):
        xs = sorted(x for x in xs if x is not None)
        return xs[len(xs) // 2] if xs else None

    print(f"Payload styles: {n} streamed completions, {max_tokens} tokens, one at a time, each "
          "prompt sent once per variant (same seed, no prompt cache):")
    print()
    print("| variant | answers | tokens (usage) | token events | tokens sent with the next "
          "(tokens - events) | empty events (held) | same text as plain | first token held | "
          "client TTFT p50 ms | bytes per answer p50 |")
    print("|" + "---|" * 10)
    for name, _ in variants:
        rows = out[name]
        tokens = sum(r[2] or 0 for r in rows)
        evs = sum(len(r[1]) for r in rows)
        same = sum("".join(r[1]) == "".join(q[1]) for r, q in zip(rows, plain))
        held = sum(bool(r[1]) and bool(q[1]) and len(r[1][0]) > len(q[1][0])
                   for r, q in zip(rows, plain))
        print("| " + " | ".join([
            name, str(len(rows)), str(tokens), str(evs), str(tokens - evs),
            str(sum(r[4] for r in rows)), f"{same}/{len(rows)}",
            str(held), fmt(p50(r[0] for r in rows), 1e3), f"{p50(r[3] for r in rows):,}",
        ]) + " |")
    print()


def fmt(x, scale=1.0, nd=1):
    return "-" if x is None else f"{x * scale:.{nd}f}"


def main():
    print("Server's own figures, requests sent one at a time by hand (5 each, 32 tokens, ignore_eos):")
    print()
    print("| request | client TTFT ms (whole: response) | timings.prompt_ms | timings.prompt_n | "
          "usage.prompt_tokens | tokenizer prompt tokens | timings.predicted_n | "
          "usage.completion_tokens | token events | tokenizer output tokens |")
    print("|" + "---|" * 10)
    frames = {}
    for api in ("completions", "chat"):
        for stream in (True, False):
            rows, last = probe(api, stream)
            frames[(api, stream)] = last
            for i, (ttft, t, u, ev, text, sent) in enumerate(rows):
                print("| " + " | ".join([
                    f"{api} {'stream' if stream else 'whole'} #{i + 1}",
                    fmt(ttft, 1e3), fmt(t.get("prompt_ms"), 1, 2), str(t.get("prompt_n", "-")),
                    str(u.get("prompt_tokens", "-")),
                    str(len(TOK.encode(sent).ids)) + ("" if api == "completions" else " + template")
                    if TOK else "-",
                    str(t.get("predicted_n", "-")), str(u.get("completion_tokens", "-")),
                    str(ev) if stream else "-",
                    str(len(TOK.encode(text).ids)) if TOK else "-",
                ]) + " |")
    print()
    if not SAVE:
        payload_styles()
    print("Framing of one stream of each kind:")
    for api in ("completions", "chat"):
        raw, status, headers, body_at, body, _ = frames[(api, True)]
        chunks = dechunk(body)
        evs = events(body, headers)
        print(f"\n{api}: {status}")
        for k in ("content-type", "transfer-encoding", "cache-control", "connection", "server",
                  "keep-alive", "access-control-allow-origin"):
            if k in headers:
                print(f"  {k}: {headers[k]}")
        one_per_chunk = len(chunks) == len(evs)
        print(f"  {len(chunks)} HTTP chunks, {len(evs)} SSE events"
              f" ({'one event per chunk' if one_per_chunk else 'events span chunks'})")
        seq = [kind(e, api) for e in evs]
        compact = []
        for s in seq:
            if compact and compact[-1][0] == s:
                compact[-1][1] += 1
            else:
                compact.append([s, 1])
        print("  events: " + ", ".join(f"{s}×{c}" if c > 1 else s for s, c in compact))
        seen = set()
        for e, s in zip(evs, seq):
            if s in seen or s == "done":
                continue
            seen.add(s)
            print(f"  {s}: {keys(json.loads(e), api)}")
        print(f"  ends with [DONE]: {evs[-1] == '[DONE]'}")
        if SAVE:
            name = os.path.join(SAVE, f"llama_cpp_{api}_stream.http")
            with open(name, "wb") as f:
                f.write(raw)
            print(f"  saved {name} ({len(raw)} bytes)")


main()
