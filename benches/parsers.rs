//! Response-path parsers, in bytes per second: the head of a typical nginx response with its
//! framing, chunked decoding and SSE framing of a real streamed completion, and classifying each
//! SSE event. These run once per response (head) or once per token (SSE, classify).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pacer::http1::{Body, ChunkedDecoder, Framing, parse_head};
use pacer::llm::{SseParser, classify};

/// What nginx 1.24 answers to `return 200 "Hello, world!";`, byte for byte but the date.
const NGINX_RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\n\
Server: nginx/1.24.0 (Ubuntu)\r\n\
Date: Mon, 02 Jun 2025 10:00:00 GMT\r\n\
Content-Type: text/plain\r\n\
Content-Length: 13\r\n\
Connection: keep-alive\r\n\
\r\n\
Hello, world!";

/// A real `stream: true` completions response: head, then a chunked body of SSE events.
const FIXTURE: &[u8] = include_bytes!("../tests/fixtures/completions_stream_chunked.http");

/// The fixture's chunked body (after the head).
fn chunked_body() -> &'static [u8] {
    let end = FIXTURE
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("the fixture has a head") // a fixed file in the repository
        + 4;
    &FIXTURE[end..]
}

/// The fixture's body with the chunk framing removed: the SSE stream itself.
fn sse_stream() -> Vec<u8> {
    let mut out = Vec::new();
    let mut dec = ChunkedDecoder::new();
    let mut input = chunked_body();
    while !input.is_empty() {
        let d = dec.decode(input).expect("the fixture is valid chunked");
        out.extend_from_slice(d.data);
        input = &input[d.consumed..];
        if d.done {
            break;
        }
    }
    assert!(dec.is_done(), "the fixture's body ends with the last chunk");
    out
}

/// The data of every event in the SSE stream.
fn events(stream: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    SseParser::new()
        .feed(stream, |e| out.push(e.to_vec()))
        .expect("the fixture is valid SSE");
    out
}

fn head(c: &mut Criterion) {
    let mut g = c.benchmark_group("http1");
    g.throughput(Throughput::Bytes(NGINX_RESPONSE.len() as u64));
    g.bench_function("nginx_head_and_body", |b| {
        let mut body = Body::new(Framing::Empty);
        b.iter(|| {
            let buf = black_box(NGINX_RESPONSE);
            let head = parse_head(buf, false)
                .ok()
                .flatten()
                .expect("complete head");
            body.reset(head.framing);
            let mut n = 0;
            let fed = body
                .feed(&buf[head.len..], |d| n += d.len())
                .expect("valid body");
            black_box((head.status, head.keep_alive, fed.done, n))
        })
    });

    let body = chunked_body();
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("chunked_decode_completions_stream", |b| {
        let mut dec = ChunkedDecoder::new();
        b.iter(|| {
            dec.reset();
            let mut input = black_box(body);
            let mut n = 0;
            while !input.is_empty() {
                let d = dec.decode(input).expect("valid chunked");
                n += d.data.len();
                input = &input[d.consumed..];
                if d.done {
                    break;
                }
            }
            black_box(n)
        })
    });
    g.finish();
}

fn sse(c: &mut Criterion) {
    let stream = sse_stream();
    let n_events = events(&stream).len() as u64;
    let mut g = c.benchmark_group("sse");
    let parse = |g: &mut criterion::BenchmarkGroup<_>, name: &str| {
        g.bench_function(name, |b| {
            let mut p = SseParser::new();
            b.iter(|| {
                p.reset();
                let mut n = 0usize;
                p.feed(black_box(&stream), |e| n += e.len())
                    .expect("valid SSE");
                black_box(n)
            })
        });
    };
    g.throughput(Throughput::Bytes(stream.len() as u64));
    parse(&mut g, "parse_completions_stream");
    g.throughput(Throughput::Elements(n_events));
    parse(&mut g, "parse_completions_stream_events");
    g.finish();
}

fn classify_events(c: &mut Criterion) {
    let evs = events(&sse_stream());
    let mut g = c.benchmark_group("llm");
    g.throughput(Throughput::Elements(evs.len() as u64));
    g.bench_function("classify_completions_events", |b| {
        b.iter(|| {
            let mut tokens = 0;
            for e in &evs {
                if let Ok(pacer::llm::Event::Chunk(info)) = classify(black_box(e)) {
                    tokens += usize::from(info.token);
                }
            }
            black_box(tokens)
        })
    });
    // What a run with --tokenizer pays to get each event's text (before counting it).
    g.bench_function("classify_text_completions_events", |b| {
        b.iter(|| {
            let mut bytes = 0;
            for e in &evs {
                if let Ok((_, text)) = pacer::llm::classify_text(black_box(e)) {
                    bytes += text.parts().map(str::len).sum::<usize>();
                }
            }
            black_box(bytes)
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .without_plots()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = head, sse, classify_events
}
criterion_main!(benches);
