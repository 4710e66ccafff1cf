//! Seeded randomized checks of the SSE framer: arbitrary bytes never panic, and a valid stream
//! split at random points yields exactly the events it was built from. Case counts are fixed, so
//! the run time is bounded and a failure names the seed that reproduces it.

use pacer::llm::{MAX_EVENT_BYTES, SseParser, classify};
use pacer::rng::SplitMix64;

/// The crate's splitmix64: tiny, seedable, good enough to pick bytes and split points.
struct Rng(SplitMix64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    fn below(&mut self, n: usize) -> usize {
        self.0.below(n)
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// Feeds `input` in pieces cut at `cuts` (sorted offsets), collecting events.
fn feed_cut(parser: &mut SseParser, input: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut events = Vec::new();
    let mut from = 0;
    for &to in cuts.iter().chain(std::iter::once(&input.len())) {
        parser
            .feed(&input[from..to], |d| events.push(d.to_vec()))
            .expect("test streams are small");
        from = to;
    }
    events
}

fn random_cuts(rng: &mut Rng, len: usize) -> Vec<usize> {
    let mut cuts: Vec<usize> = (0..rng.below(8)).map(|_| rng.below(len + 1)).collect();
    cuts.sort_unstable();
    cuts
}

#[test]
fn random_bytes_never_panic() {
    // Bytes that matter to the framer are over-represented so the odd paths get exercised.
    const INTERESTING: &[u8] = b"\r\n\r\n::: data:event id retry \xEF\xBB\xBF\xC3\xA9{}[DONE]";
    let mut rng = Rng(SplitMix64::new(0x5EED_0001));
    let mut parser = SseParser::new();
    for case in 0..2000 {
        let len = rng.below(300);
        let input: Vec<u8> = (0..len)
            .map(|_| {
                if rng.below(4) == 0 {
                    rng.next() as u8
                } else {
                    rng.pick(INTERESTING)
                }
            })
            .collect();
        let cuts = random_cuts(&mut rng, input.len());
        let mut from = 0;
        let mut events = 0usize;
        for &to in cuts.iter().chain(std::iter::once(&input.len())) {
            let result = parser.feed(&input[from..to], |d| {
                events += 1;
                // Classifying garbage must not panic either; its answer does not matter here.
                let _ = classify(d);
            });
            assert!(
                result.is_ok(),
                "case {case}: small input cannot exceed the cap"
            );
            from = to;
        }
        assert!(
            events <= input.len(),
            "case {case}: an event needs at least one byte"
        );
        parser.reset();
    }
}

/// Appends one random line ending. After a lone `\r`, a blank line's `\n` would merge with it
/// into one `\r\n` (the stream would mean something else), so then only `\r` follows.
fn eol(rng: &mut Rng, stream: &mut Vec<u8>) {
    let ending: &[u8] = if stream.last() == Some(&b'\r') {
        b"\r"
    } else {
        const ENDINGS: &[&[u8]] = &[b"\n", b"\r\n", b"\r"];
        rng.pick(ENDINGS)
    };
    stream.extend_from_slice(ending);
}

/// A random data line value: no CR or LF, sometimes multi-byte UTF-8, sometimes a leading colon or
/// space (which must survive, bar the one optional space the framer strips).
fn value(rng: &mut Rng) -> Vec<u8> {
    const PARTS: &[&str] = &[
        "a",
        "é",
        "日本",
        "🦀",
        " ",
        ":",
        "{\"text\":\"x\"}",
        "[DONE]",
        "data:",
        "\t",
    ];
    (0..rng.below(6))
        .flat_map(|_| rng.pick(PARTS).as_bytes().to_vec())
        .collect()
}

/// Builds a valid stream and the events it must produce.
fn random_stream(rng: &mut Rng) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut stream = Vec::new();
    let mut expected = Vec::new();
    if rng.below(4) == 0 {
        stream.extend_from_slice(b"\xEF\xBB\xBF");
    }
    for _ in 0..rng.below(6) {
        let mut data: Option<Vec<u8>> = None;
        for _ in 0..rng.below(5) {
            match rng.below(6) {
                0 => stream.extend_from_slice(b": ping"),
                1 => {
                    const FIELDS: &[&[u8]] = &[b"event: message", b"id: 42", b"retry: 10", b"id"];
                    stream.extend_from_slice(rng.pick(FIELDS))
                }
                _ => {
                    let v = value(rng);
                    // With a space after the colon the framer strips it; without, nothing is stripped,
                    // so a value that itself starts with a space needs the separating space.
                    if rng.below(2) == 0 || v.first() == Some(&b' ') {
                        stream.extend_from_slice(b"data: ");
                    } else {
                        stream.extend_from_slice(b"data:");
                    }
                    stream.extend_from_slice(&v);
                    match &mut data {
                        Some(d) => {
                            d.push(b'\n');
                            d.extend_from_slice(&v);
                        }
                        None => data = Some(v),
                    }
                }
            }
            eol(rng, &mut stream);
        }
        eol(rng, &mut stream);
        expected.extend(data);
    }
    // Sometimes an unfinished event trails; it must not be dispatched.
    if rng.below(3) == 0 {
        stream.extend_from_slice(b"data: unfinished");
        if rng.below(2) == 0 {
            eol(rng, &mut stream);
        }
    }
    (stream, expected)
}

#[test]
fn random_splits_of_valid_streams_give_the_built_events() {
    let mut rng = Rng(SplitMix64::new(0x5EED_0002));
    let mut parser = SseParser::new();
    let mut total = 0;
    for case in 0..3000 {
        let (stream, expected) = random_stream(&mut rng);
        total += expected.len();
        let whole = feed_cut(&mut parser, &stream, &[]);
        parser.reset();
        assert_eq!(
            whole,
            expected,
            "case {case}: {:?}",
            String::from_utf8_lossy(&stream)
        );
        for _ in 0..4 {
            let cuts = random_cuts(&mut rng, stream.len());
            let got = feed_cut(&mut parser, &stream, &cuts);
            parser.reset();
            assert_eq!(
                got,
                whole,
                "case {case}, cuts {cuts:?}: {:?}",
                String::from_utf8_lossy(&stream)
            );
        }
    }
    // The generator must produce real work, not a run of empty streams.
    assert!(total > 3000, "only {total} events generated");
}

#[test]
fn endless_line_stays_bounded() {
    let mut rng = Rng(SplitMix64::new(0x5EED_0003));
    let mut parser = SseParser::new();
    let piece = vec![b'x'; 64 * 1024];
    let mut fed = 0usize;
    let mut result = parser.feed(b"data: ", |_| ());
    // Bounded: the cap must trip within MAX_EVENT_BYTES of input.
    while result.is_ok() && fed <= 2 * MAX_EVENT_BYTES {
        let n = 1 + rng.below(piece.len());
        result = parser.feed(&piece[..n], |_| ());
        fed += n;
    }
    assert!(result.is_err(), "an endless line must hit the cap");
    assert!(fed <= MAX_EVENT_BYTES + piece.len());
}
