//! Property tests for the HTTP/1.1 parsers: random bytes and random splits of valid (and mutated)
//! inputs, from a seeded generator so every failure is reproducible. The parsers must never
//! panic, always make progress, and give the same answer whatever the split into reads.

use pacer::http1::{Body, ChunkedDecoder, Framing, MAX_HEAD_BYTES, ResponseError, parse_head};

const CASES: u64 = 20_000;

/// SplitMix64: tiny, good enough to drive tests, and no new crate.
/// The crate's splitmix64 with the picking helpers these tests want.
struct Rng(pacer::rng::SplitMix64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(pacer::rng::SplitMix64::new(seed))
    }
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }
    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: usize) -> usize {
        self.0.below(n)
    }
    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
    /// Fewer than `n` random bytes.
    fn bytes_below(&mut self, n: usize) -> Vec<u8> {
        let len = self.below(n);
        self.bytes(len)
    }
    /// Bytes from an alphabet that reaches the parsers' interesting states more often than noise.
    fn framing_noise(&mut self, len: usize) -> Vec<u8> {
        const ALPHABET: &[u8] = b"0123456789abcdefABCDEF\r\n\r\n;= \tHTTP/1.:xyz";
        (0..len)
            .map(|_| {
                if self.chance(8) {
                    self.next() as u8
                } else {
                    *self.pick(ALPHABET)
                }
            })
            .collect()
    }
    /// `input` cut at a random number of random points.
    fn split<'a>(&mut self, input: &'a [u8]) -> Vec<&'a [u8]> {
        let mut cuts: Vec<usize> = (0..self.below(6))
            .map(|_| self.below(input.len() + 1))
            .collect();
        if self.chance(10) {
            cuts = (1..input.len()).collect(); // byte by byte
        }
        cuts.push(0);
        cuts.push(input.len());
        cuts.sort_unstable();
        cuts.windows(2).map(|w| &input[w[0]..w[1]]).collect()
    }
    fn mutate(&mut self, input: &mut [u8]) {
        if input.is_empty() {
            return;
        }
        for _ in 0..=self.below(3) {
            let i = self.below(input.len());
            input[i] = if self.chance(2) {
                self.next() as u8
            } else {
                *self.pick(b"\r\n0fz; :,")
            };
        }
    }
}

/// What decoding produced: the data, then either how it ended or the error.
#[derive(Debug, PartialEq)]
struct Outcome {
    data: Vec<u8>,
    result: Result<(usize, bool), ResponseError>,
}

/// Runs a chunked decoder over `pieces` as the engine would, checking progress on every call.
fn run_decoder(pieces: &[&[u8]]) -> Outcome {
    let mut dec = ChunkedDecoder::new();
    let mut data = Vec::new();
    let mut consumed = 0;
    for piece in pieces {
        let mut rest = *piece;
        // Each call consumes at least a byte, so this bound is never the reason the loop ends.
        for _ in 0..=piece.len() {
            if rest.is_empty() {
                break;
            }
            match dec.decode(rest) {
                Ok(d) => {
                    assert!(d.consumed <= rest.len());
                    assert!(d.data.len() <= d.consumed);
                    assert!(d.consumed > 0 || d.done, "no progress on {rest:?}");
                    data.extend_from_slice(d.data);
                    consumed += d.consumed;
                    rest = &rest[d.consumed..];
                    if d.done {
                        assert!(dec.is_done());
                        return Outcome {
                            data,
                            result: Ok((consumed, true)),
                        };
                    }
                }
                Err(e) => {
                    return Outcome {
                        data,
                        result: Err(e),
                    };
                }
            }
        }
        assert!(rest.is_empty(), "decoder stalled");
    }
    Outcome {
        data,
        result: Ok((consumed, false)),
    }
}

/// Runs a Body over `pieces`; an unfinished body must take every byte it is given.
fn run_body(framing: Framing, pieces: &[&[u8]], eof: bool) -> Outcome {
    let mut body = Body::new(framing);
    let mut data = Vec::new();
    let mut consumed = 0;
    for piece in pieces {
        match body.feed(piece, |d| data.extend_from_slice(d)) {
            Ok(fed) => {
                consumed += fed.consumed;
                assert_eq!(fed.done, body.is_done());
                if fed.done {
                    return Outcome {
                        data,
                        result: Ok((consumed, true)),
                    };
                }
                assert_eq!(fed.consumed, piece.len());
            }
            Err(e) => {
                return Outcome {
                    data,
                    result: Err(e),
                };
            }
        }
    }
    if eof {
        if let Err(e) = body.eof() {
            return Outcome {
                data,
                result: Err(e),
            };
        }
        return Outcome {
            data,
            result: Ok((consumed, true)),
        };
    }
    Outcome {
        data,
        result: Ok((consumed, false)),
    }
}

/// A valid chunked encoding of random content, with random chunking, extensions, trailers and
/// line ends. Returns (wire bytes, content).
fn chunked_body(rng: &mut Rng) -> (Vec<u8>, Vec<u8>) {
    let mut wire = Vec::new();
    let mut content = Vec::new();
    let eol = |rng: &mut Rng| -> &'static [u8] { if rng.chance(5) { b"\n" } else { b"\r\n" } };
    for _ in 0..rng.below(6) {
        let max = if rng.chance(4) { 3000 } else { 40 };
        let len = 1 + rng.below(max);
        let chunk = rng.bytes(len);
        let zeros = if rng.chance(5) { "00" } else { "" };
        let size = if rng.chance(2) {
            format!("{zeros}{len:x}")
        } else {
            format!("{zeros}{len:X}")
        };
        wire.extend_from_slice(size.as_bytes());
        if rng.chance(4) {
            wire.extend_from_slice(b" ;ext=\"v\";flag");
        }
        wire.extend_from_slice(eol(rng));
        wire.extend_from_slice(&chunk);
        wire.extend_from_slice(eol(rng));
        content.extend_from_slice(&chunk);
    }
    wire.push(b'0');
    wire.extend_from_slice(eol(rng));
    for i in 0..rng.below(3) {
        wire.extend_from_slice(format!("X-Trailer-{i}: v").as_bytes());
        wire.extend_from_slice(eol(rng));
    }
    wire.extend_from_slice(eol(rng));
    (wire, content)
}

#[test]
fn chunked_valid_streams_decode_the_same_whatever_the_split() {
    let mut rng = Rng::new(0x5EED_0001);
    for case in 0..CASES {
        let (wire, content) = chunked_body(&mut rng);
        let mut input = wire.clone();
        let extra = rng.bytes_below(4);
        input.extend_from_slice(&extra); // a pipelined next response: must be left alone
        let want = Outcome {
            data: content,
            result: Ok((wire.len(), true)),
        };
        assert_eq!(run_decoder(&[&input]), want, "case {case} whole");
        let pieces = rng.split(&input);
        assert_eq!(run_decoder(&pieces), want, "case {case} pieces {pieces:?}");
        assert_eq!(
            run_body(Framing::Chunked, &pieces, false),
            want,
            "case {case} body"
        );
    }
}

#[test]
fn chunked_mutated_and_random_streams_never_panic_and_agree_across_splits() {
    let mut rng = Rng::new(0x5EED_0002);
    for case in 0..CASES {
        let input = match case % 3 {
            0 => {
                let mut wire = chunked_body(&mut rng).0;
                rng.mutate(&mut wire);
                wire
            }
            1 => {
                let len = rng.below(200);
                rng.framing_noise(len)
            }
            _ => {
                let len = rng.below(200);
                rng.bytes(len)
            }
        };
        let whole = run_decoder(&[&input]);
        let pieces = rng.split(&input);
        assert_eq!(
            run_decoder(&pieces),
            whole,
            "case {case} input {input:?} pieces {pieces:?}"
        );
        let body = run_body(Framing::Chunked, &pieces, true);
        match whole.result {
            Ok((_, true)) | Err(_) => assert_eq!(body, whole, "case {case}"),
            // Input ran out mid-body: the peer's close makes that an early end.
            Ok((_, false)) => assert_eq!(
                body,
                Outcome {
                    data: whole.data,
                    result: Err(ResponseError::BodyEndedEarly)
                }
            ),
        }
    }
}

#[test]
fn length_and_close_bodies_whatever_the_split() {
    let mut rng = Rng::new(0x5EED_0003);
    for case in 0..CASES {
        let content = {
            let len = rng.below(500);
            rng.bytes(len)
        };
        let mut input = content.clone();
        let extra = rng.bytes_below(4);
        input.extend_from_slice(&extra);
        let pieces = rng.split(&input);
        let len = content.len() as u64;
        assert_eq!(
            run_body(Framing::Length(len), &pieces, false),
            Outcome {
                data: content.clone(),
                result: Ok((content.len(), true))
            },
            "case {case}"
        );
        // Told to expect more than arrives: the close is an early end.
        assert_eq!(
            run_body(Framing::Length(input.len() as u64 + 1), &pieces, true),
            Outcome {
                data: input.clone(),
                result: Err(ResponseError::BodyEndedEarly)
            },
            "case {case}"
        );
        assert_eq!(
            run_body(Framing::Close, &pieces, true),
            Outcome {
                data: input.clone(),
                result: Ok((input.len(), true))
            },
            "case {case}"
        );
    }
}

fn valid_head(rng: &mut Rng) -> Vec<u8> {
    let status = *rng.pick(&[100u16, 200, 201, 204, 301, 304, 404, 500, 503]);
    let version = if rng.chance(4) { "1.0" } else { "1.1" };
    let eol = if rng.chance(5) { "\n" } else { "\r\n" };
    let mut head = format!("HTTP/{version} {status} Reason Phrase{eol}");
    let fields = [
        "Content-Length: 12",
        "Content-Length: 12, 12",
        "Transfer-Encoding: chunked",
        "Transfer-Encoding: gzip",
        "Connection: close",
        "Connection: keep-alive",
        "Content-Type: text/event-stream",
        "fireworks-server-time-to-first-token: 0.125",
        "X-Empty:",
        "Server: mock",
    ];
    for _ in 0..rng.below(8) {
        let field = *rng.pick::<&str>(&fields);
        head.push_str(field);
        head.push_str(eol);
    }
    head.push_str(eol);
    head.into_bytes()
}

/// What an engine sees reading a head in `pieces`: the first answer other than "need more".
fn head_by_pieces(
    buf: &[u8],
    pieces: usize,
    rng: &mut Rng,
) -> Result<Option<pacer::http1::Head>, ResponseError> {
    let mut ends: Vec<usize> = (0..pieces).map(|_| rng.below(buf.len() + 1)).collect();
    ends.push(buf.len());
    ends.sort_unstable();
    for end in ends {
        match parse_head(&buf[..end], false) {
            Ok(None) => continue,
            other => return other,
        }
    }
    Ok(None)
}

#[test]
fn heads_never_panic_and_agree_across_splits() {
    let mut rng = Rng::new(0x5EED_0004);
    for case in 0..CASES {
        let mut buf = match case % 4 {
            0 => valid_head(&mut rng),
            1 => {
                let mut head = valid_head(&mut rng);
                rng.mutate(&mut head);
                head
            }
            2 => {
                let len = rng.below(120);
                rng.framing_noise(len)
            }
            _ => {
                let len = rng.below(120);
                rng.bytes(len)
            }
        };
        let head_len = buf.len();
        let body = rng.bytes_below(20);
        buf.extend_from_slice(&body);

        let whole = parse_head(&buf, rng.chance(5));
        if let Ok(Some(head)) = whole {
            assert!(head.len <= buf.len() && head.len <= MAX_HEAD_BYTES);
            assert!((100..=999).contains(&head.status));
            assert!(!head.interim || head.framing == Framing::Empty);
            assert!(!(head.framing == Framing::Close && head.keep_alive));
        }
        if case % 4 == 0 {
            let head = parse_head(&buf, false).unwrap().unwrap(); // generated valid
            assert_eq!(head.len, head_len, "case {case}");
        }
        let whole = parse_head(&buf, false);
        assert_eq!(
            head_by_pieces(&buf, rng.below(5), &mut rng),
            whole,
            "case {case} {buf:?}"
        );
    }
}

#[test]
fn huge_heads_are_bounded_whatever_the_split() {
    let mut rng = Rng::new(0x5EED_0005);
    for case in 0..20 {
        let mut buf = b"HTTP/1.1 200 OK\r\n".to_vec();
        while buf.len() < 100 * 1024 {
            if rng.chance(2) {
                buf.extend_from_slice(b"X-Many: v\r\n");
            } else {
                let long = rng.below(5000);
                buf.extend_from_slice(b"X-Long: ");
                buf.resize(buf.len() + long, b'a');
                buf.extend_from_slice(b"\r\n");
            }
        }
        buf.extend_from_slice(b"\r\n");
        assert_eq!(
            head_by_pieces(&buf, 4, &mut rng),
            Err(ResponseError::HeadersTooLarge),
            "case {case}"
        );
    }
}
