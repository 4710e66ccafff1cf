//! Body framing on top of the head: counts down a Content-Length, decodes chunked, or reads to
//! close, and passes every piece of body data to the caller (for SSE parsing and counting).

use super::{ChunkedDecoder, Framing, ResponseError};

#[derive(Clone, Debug)]
enum State {
    Length(u64),
    Chunked,
    Close,
    Done,
}

/// Reads one response body, whatever the split of its bytes into reads. Reusable: [`Body::reset`]
/// starts the next response without allocating.
#[derive(Clone, Debug)]
pub struct Body {
    state: State,
    chunked: ChunkedDecoder,
}

/// What one [`Body::feed`] call did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fed {
    /// Bytes of the input that belong to this body; anything after them is not ours.
    pub consumed: usize,
    /// The body is complete.
    pub done: bool,
}

impl Body {
    /// A body with the given framing; [`Framing::Empty`] and `Length(0)` are done at once.
    pub fn new(framing: Framing) -> Self {
        let mut body = Body {
            state: State::Done,
            chunked: ChunkedDecoder::new(),
        };
        body.reset(framing);
        body
    }

    /// Starts a new body with `framing`.
    pub fn reset(&mut self, framing: Framing) {
        self.state = match framing {
            Framing::Length(0) | Framing::Empty => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => {
                self.chunked.reset();
                State::Chunked
            }
            Framing::Close => State::Close,
        };
    }

    /// Takes the bytes read after the head (or after the previous feed) and calls `on_data` with
    /// every piece of body data in them, in order.
    ///
    /// Returns how much of `input` belongs to the body and whether the body is complete. Bytes after
    /// a complete body are not consumed: they are the start of a pipelining server's next response
    /// (the engine, which never pipelines, treats them as an error).
    #[inline]
    pub fn feed(
        &mut self,
        input: &[u8],
        mut on_data: impl FnMut(&[u8]),
    ) -> Result<Fed, ResponseError> {
        match &mut self.state {
            State::Done => Ok(Fed {
                consumed: 0,
                done: true,
            }),
            State::Close => {
                if !input.is_empty() {
                    on_data(input);
                }
                Ok(Fed {
                    consumed: input.len(),
                    done: false,
                })
            }
            State::Length(remaining) => {
                let n = usize::try_from(*remaining).map_or(input.len(), |r| r.min(input.len()));
                if n > 0 {
                    on_data(&input[..n]);
                }
                *remaining -= n as u64;
                let done = *remaining == 0;
                if done {
                    self.state = State::Done;
                }
                Ok(Fed { consumed: n, done })
            }
            State::Chunked => {
                let mut pos = 0;
                while pos < input.len() {
                    let decoded = self.chunked.decode(&input[pos..])?;
                    if !decoded.data.is_empty() {
                        on_data(decoded.data);
                    }
                    pos += decoded.consumed;
                    if decoded.done {
                        self.state = State::Done;
                        return Ok(Fed {
                            consumed: pos,
                            done: true,
                        });
                    }
                    if decoded.consumed == 0 {
                        // The decoder promises progress on non-empty input; never spin if not.
                        break;
                    }
                }
                Ok(Fed {
                    consumed: pos,
                    done: false,
                })
            }
        }
    }

    /// The peer closed the connection. A close-delimited body is then complete; a body still
    /// expecting Content-Length bytes or chunks ended early.
    pub fn eof(&mut self) -> Result<(), ResponseError> {
        match self.state {
            State::Close | State::Done => {
                self.state = State::Done;
                Ok(())
            }
            State::Length(_) | State::Chunked => Err(ResponseError::BodyEndedEarly),
        }
    }

    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse_head;
    use super::*;

    const FIXTURE: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/completions_stream_chunked.http"
    ));

    /// Feeds `pieces` in order; returns the body data, consumed bytes and done.
    fn feed_all(
        framing: Framing,
        pieces: &[&[u8]],
    ) -> Result<(Vec<u8>, usize, bool), ResponseError> {
        let mut body = Body::new(framing);
        let mut out = Vec::new();
        let mut consumed = 0;
        for piece in pieces {
            let fed = body.feed(piece, |d| out.extend_from_slice(d))?;
            consumed += fed.consumed;
            if fed.done {
                assert!(body.is_done());
                return Ok((out, consumed, true));
            }
            assert_eq!(
                fed.consumed,
                piece.len(),
                "an unfinished body takes everything"
            );
        }
        Ok((out, consumed, false))
    }

    fn count_token_events(body: &[u8]) -> usize {
        let text = std::str::from_utf8(body).unwrap(); // the fixture is ASCII
        text.split("\n\n")
            .filter(|event| event.contains("\"text\": \"") && !event.contains("\"text\": \"\""))
            .count()
    }

    #[test]
    fn fixture_decodes_the_same_at_every_split() {
        let head = parse_head(FIXTURE, false).unwrap().unwrap(); // the fixture is a valid response
        assert_eq!(head.status, 200);
        assert_eq!(head.framing, Framing::Chunked);
        assert!(!head.keep_alive, "the fixture says connection: close");
        assert!(!head.interim);
        assert_eq!(head.server_ttft, None);
        let wire = &FIXTURE[head.len..];

        let (want, consumed, done) = feed_all(head.framing, &[wire]).unwrap();
        assert!(done);
        assert_eq!(consumed, wire.len());
        assert_eq!(count_token_events(&want), 20);
        assert_eq!(occurrences(&want, b"\"text\""), 21);
        assert!(
            want.ends_with(b"data: [DONE]\n\n"),
            "{:?}",
            String::from_utf8_lossy(&want[want.len() - 20..])
        );

        for split in 0..=wire.len() {
            let (a, b) = wire.split_at(split);
            assert_eq!(
                feed_all(head.framing, &[a, b]),
                Ok((want.clone(), wire.len(), true)),
                "split {split}"
            );
        }
        let bytes: Vec<&[u8]> = wire.chunks(1).collect();
        assert_eq!(
            feed_all(head.framing, &bytes),
            Ok((want.clone(), wire.len(), true))
        );

        // The same through the decoder directly, byte by byte.
        let mut dec = ChunkedDecoder::new();
        let mut out = Vec::new();
        for (i, byte) in wire.chunks(1).enumerate() {
            let d = dec.decode(byte).unwrap();
            assert_eq!(d.consumed, 1);
            out.extend_from_slice(d.data);
            assert_eq!(d.done, i == wire.len() - 1);
        }
        assert_eq!(out, want);
    }

    fn occurrences(haystack: &[u8], needle: &[u8]) -> usize {
        haystack
            .windows(needle.len())
            .filter(|w| *w == needle)
            .count()
    }

    #[test]
    fn content_length() {
        assert_eq!(
            feed_all(Framing::Length(5), &[b"hel", b"lo"]),
            Ok((b"hello".to_vec(), 5, true))
        );
        assert_eq!(
            feed_all(Framing::Length(5), &[b"helloEXTRA"]),
            Ok((b"hello".to_vec(), 5, true))
        );
        let mut body = Body::new(Framing::Length(5));
        body.feed(b"hel", |_| {}).unwrap();
        assert!(!body.is_done());
        assert_eq!(body.eof(), Err(ResponseError::BodyEndedEarly));
    }

    #[test]
    fn empty_bodies_are_done_at_once() {
        for framing in [Framing::Empty, Framing::Length(0)] {
            let mut body = Body::new(framing);
            assert!(body.is_done());
            let mut called = false;
            let fed = body
                .feed(b"HTTP/1.1 200 OK\r\n", |_| called = true)
                .unwrap();
            assert_eq!(
                fed,
                Fed {
                    consumed: 0,
                    done: true
                }
            );
            assert!(!called);
            assert_eq!(body.eof(), Ok(()));
        }
    }

    #[test]
    fn close_delimited_ends_at_eof() {
        let mut body = Body::new(Framing::Close);
        let mut out = Vec::new();
        let fed = body.feed(b"all of ", |d| out.extend_from_slice(d)).unwrap();
        assert_eq!(
            fed,
            Fed {
                consumed: 7,
                done: false
            }
        );
        body.feed(b"it", |d| out.extend_from_slice(d)).unwrap();
        assert_eq!(out, b"all of it");
        assert!(!body.is_done());
        assert_eq!(body.eof(), Ok(()));
        assert!(body.is_done());
    }

    #[test]
    fn chunked_errors_and_early_end() {
        assert_eq!(
            feed_all(Framing::Chunked, &[b"zz\r\n"]),
            Err(ResponseError::BadChunkSize)
        );
        let mut body = Body::new(Framing::Chunked);
        let mut out = Vec::new();
        body.feed(b"5\r\nhel", |d| out.extend_from_slice(d))
            .unwrap();
        assert_eq!(out, b"hel");
        assert_eq!(body.eof(), Err(ResponseError::BodyEndedEarly));
        // Data before a framing error still reaches the caller.
        let mut out = Vec::new();
        let mut body = Body::new(Framing::Chunked);
        let r = body.feed(b"2\r\nok\r\nzz\r\n", |d| out.extend_from_slice(d));
        assert_eq!(r, Err(ResponseError::BadChunkSize));
        assert_eq!(out, b"ok");
    }

    #[test]
    fn reset_reuses_the_body() {
        let mut body = Body::new(Framing::Chunked);
        assert!(
            body.feed(
                b"1
a
0

",
                |_| {}
            )
            .unwrap()
            .done
        );
        body.reset(Framing::Chunked);
        assert!(!body.is_done());
        let mut out = Vec::new();
        let fed = body
            .feed(b"2\r\nbc\r\n0\r\n\r\n", |d| out.extend_from_slice(d))
            .unwrap();
        assert_eq!((fed.done, out.as_slice()), (true, &b"bc"[..]));
        body.reset(Framing::Length(3));
        assert_eq!(
            body.feed(b"xyz", |_| {}).unwrap(),
            Fed {
                consumed: 3,
                done: true
            }
        );
    }
}
