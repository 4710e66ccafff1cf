//! The chunked transfer coding (RFC 9112 §7.1), decoded in place: the decoder keeps only its
//! state, and hands back sub-slices of the caller's input as body data.

use super::ResponseError;

/// A chunk size longer than this many hex digits (leading zeros included) is
/// [`ResponseError::BadChunkSize`]; 16 digits hold any `u64`, so the size cannot overflow.
pub const MAX_CHUNK_SIZE_DIGITS: u8 = 16;
/// A chunk-size line (size, whitespace, extensions, line end) longer than this is
/// [`ResponseError::BadChunkSize`]: extensions are skipped, but not without end.
pub const MAX_CHUNK_LINE_BYTES: u32 = 4096;
/// A trailer section longer than this is [`ResponseError::BadTrailer`].
pub const MAX_TRAILER_BYTES: u32 = 16 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Hex digits of the chunk size.
    Size,
    /// Whitespace after the size, before `;` or the line end.
    SizeWs,
    /// A chunk extension: skipped up to the line end.
    Ext,
    /// CR seen at the end of the size line.
    SizeLf,
    /// `remaining` (> 0) bytes of chunk data to go.
    Data,
    /// The line end after a chunk's data.
    DataCr,
    DataLf,
    /// Start of a trailer line, or of the blank line that ends the body.
    TrailerStart,
    /// Inside a trailer field line: skipped.
    Trailer,
    /// CR seen at the start of a line after the last chunk.
    EndLf,
    Done,
}

/// Incremental chunked-body decoder. Holds no buffer: feed it any split of the body bytes.
///
/// Chunk extensions and trailer fields are skipped; a bare LF is accepted wherever CRLF is
/// expected, as RFC 9112 §2.2 allows.
#[derive(Clone, Debug)]
pub struct ChunkedDecoder {
    state: State,
    /// Chunk size while reading the size line; bytes of data left while in `Data`.
    remaining: u64,
    digits: u8,
    /// Bytes of the current size line, or of the whole trailer section.
    line: u32,
}

/// What one [`ChunkedDecoder::decode`] call did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// How many bytes of the input were used.
    pub consumed: usize,
    /// Body data found in them (possibly empty): a sub-slice of the input.
    pub data: &'a [u8],
    /// The last chunk and the trailers are complete; bytes after `consumed` are not part of the body.
    pub done: bool,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedDecoder {
    pub fn new() -> Self {
        ChunkedDecoder {
            state: State::Size,
            remaining: 0,
            digits: 0,
            line: 0,
        }
    }

    /// Back to the start of a body, for the next response on the connection.
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes a prefix of `input` and returns at most one contiguous slice of body data.
    ///
    /// Every call with non-empty input either consumes at least one byte, or reports `done` (then it
    /// consumes nothing more). After a data slice it goes on through the framing bytes that follow,
    /// up to the next data byte, so the call that returns the last data also reports `done` when the
    /// end of the body is in the same input. On a framing error the data before it is returned
    /// first; the next call reports the error (and keeps reporting it).
    pub fn decode<'a>(&mut self, input: &'a [u8]) -> Result<Decoded<'a>, ResponseError> {
        let mut pos = 0;
        let mut data: &'a [u8] = &[];
        while pos < input.len() {
            match self.state {
                State::Done => break,
                State::Data => {
                    if !data.is_empty() {
                        break;
                    }
                    let avail = input.len() - pos;
                    let n = usize::try_from(self.remaining).map_or(avail, |r| r.min(avail));
                    data = &input[pos..pos + n];
                    pos += n;
                    self.remaining -= n as u64;
                    if self.remaining == 0 {
                        self.state = State::DataCr;
                    }
                }
                _ => match self.step(input[pos]) {
                    Ok(()) => pos += 1,
                    Err(_) if !data.is_empty() => break,
                    Err(e) => return Err(e),
                },
            }
        }
        Ok(Decoded {
            consumed: pos,
            data,
            done: self.state == State::Done,
        })
    }

    /// One framing byte. On error the state is left untouched, so the error repeats.
    fn step(&mut self, b: u8) -> Result<(), ResponseError> {
        use ResponseError::{BadChunkEnd, BadChunkSize, BadTrailer};
        match self.state {
            State::Size | State::SizeWs | State::Ext | State::SizeLf => {
                if self.line >= MAX_CHUNK_LINE_BYTES {
                    return Err(BadChunkSize);
                }
                let next = match (self.state, b) {
                    (State::Size, _) if b.is_ascii_hexdigit() => {
                        if self.digits >= MAX_CHUNK_SIZE_DIGITS {
                            return Err(BadChunkSize);
                        }
                        self.digits += 1;
                        self.remaining = (self.remaining << 4) | u64::from(hex_value(b));
                        State::Size
                    }
                    (State::Size, _) if self.digits == 0 => return Err(BadChunkSize),
                    (State::Size | State::SizeWs, b' ' | b'\t') => State::SizeWs,
                    (State::Size | State::SizeWs, b';') => State::Ext,
                    (State::Size | State::SizeWs, b'\r') => State::SizeLf,
                    (State::Size | State::SizeWs | State::Ext | State::SizeLf, b'\n') => {
                        self.line = 0;
                        self.state = if self.remaining == 0 {
                            State::TrailerStart
                        } else {
                            State::Data
                        };
                        return Ok(());
                    }
                    (State::Ext, _) => State::Ext,
                    _ => return Err(BadChunkSize),
                };
                self.line += 1;
                self.state = next;
            }
            State::DataCr | State::DataLf => {
                self.state = match (self.state, b) {
                    (State::DataCr, b'\r') => State::DataLf,
                    (_, b'\n') => {
                        self.digits = 0;
                        State::Size
                    }
                    _ => return Err(BadChunkEnd),
                };
            }
            State::TrailerStart | State::Trailer | State::EndLf => {
                if self.line >= MAX_TRAILER_BYTES {
                    return Err(BadTrailer);
                }
                let next = match (self.state, b) {
                    (State::TrailerStart | State::EndLf, b'\n') => State::Done,
                    (State::TrailerStart, b'\r') => State::EndLf,
                    (State::EndLf, _) => return Err(BadTrailer),
                    (State::Trailer, b'\n') => State::TrailerStart,
                    _ => State::Trailer,
                };
                self.line += 1;
                self.state = next;
            }
            // `decode` handles these without calling `step`.
            State::Data | State::Done => {}
        }
        Ok(())
    }
}

fn hex_value(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ResponseError as E;

    /// Decodes `pieces` in order; returns the body data, the bytes consumed and whether it finished.
    type Outcome = Result<(Vec<u8>, usize, bool), ResponseError>;

    fn decode_pieces(pieces: &[&[u8]]) -> Outcome {
        let mut dec = ChunkedDecoder::new();
        let mut out = Vec::new();
        let mut consumed = 0;
        for piece in pieces {
            let mut rest = *piece;
            while !rest.is_empty() {
                let d = dec.decode(rest)?;
                out.extend_from_slice(d.data);
                consumed += d.consumed;
                rest = &rest[d.consumed..];
                if d.done {
                    return Ok((out, consumed, true));
                }
                assert!(d.consumed > 0, "no progress and not done");
            }
        }
        Ok((out, consumed, false))
    }

    fn whole(input: &[u8]) -> Outcome {
        decode_pieces(&[input])
    }

    #[test]
    fn table() {
        let ok = |data: &[u8], consumed: usize, done: bool| Ok((data.to_vec(), consumed, done));
        let cases: &[(&str, &[u8], Outcome)] = &[
            ("simple", b"5\r\nhello\r\n0\r\n\r\n", ok(b"hello", 15, true)),
            (
                "two chunks",
                b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
                ok(b"abcde", 20, true),
            ),
            (
                "upper hex",
                b"A\r\n0123456789\r\n0\r\n\r\n",
                ok(b"0123456789", 20, true),
            ),
            (
                "lower hex",
                b"a\r\n0123456789\r\n0\r\n\r\n",
                ok(b"0123456789", 20, true),
            ),
            (
                "leading zeros",
                b"0005\r\nhello\r\n000\r\n\r\n",
                ok(b"hello", 20, true),
            ),
            (
                "extension",
                b"5;name=value;x\r\nhello\r\n0;last\r\n\r\n",
                ok(b"hello", 33, true),
            ),
            (
                "ws before ext",
                b"5 ;a=b\r\nhello\r\n0\r\n\r\n",
                ok(b"hello", 20, true),
            ),
            (
                "trailing ws",
                b"5 \t\r\nhello\r\n0\r\n\r\n",
                ok(b"hello", 17, true),
            ),
            ("bare LF", b"5\nhello\n0\n\n", ok(b"hello", 11, true)),
            (
                "trailers",
                b"1\r\nx\r\n0\r\nA: b\r\nC: d\r\n\r\n",
                ok(b"x", 23, true),
            ),
            ("trailers bare LF", b"1\nx\n0\nA: b\n\n", ok(b"x", 12, true)),
            (
                "bytes after end left",
                b"0\r\n\r\nHTTP/1.1",
                ok(b"", 5, true),
            ),
            ("incomplete data", b"5\r\nhel", ok(b"hel", 6, false)),
            ("incomplete end", b"0\r\n\r", ok(b"", 4, false)),
            (
                "16 digits",
                b"0000000000000001\r\nx\r\n0\r\n\r\n",
                ok(b"x", 26, true),
            ),
            ("17 digits", b"00000000000000001\r\n", Err(E::BadChunkSize)),
            ("max size", b"ffffffffffffffff\r\nab", ok(b"ab", 20, false)),
            ("overflow", b"10000000000000000\r\n", Err(E::BadChunkSize)),
            ("non-hex", b"zz\r\n", Err(E::BadChunkSize)),
            ("empty size", b"\r\n", Err(E::BadChunkSize)),
            ("sign", b"+5\r\nhello\r\n", Err(E::BadChunkSize)),
            ("hex prefix", b"0x5\r\nhello\r\n", Err(E::BadChunkSize)),
            ("space inside size", b"5 5\r\n", Err(E::BadChunkSize)),
            ("CR without LF", b"5\rhello", Err(E::BadChunkSize)),
            (
                "missing CRLF after data",
                b"5\r\nhelloX\r\n",
                Err(E::BadChunkEnd),
            ),
            (
                "CR then junk after data",
                b"5\r\nhello\rX",
                Err(E::BadChunkEnd),
            ),
            ("CR then junk at end", b"0\r\n\rX", Err(E::BadTrailer)),
        ];
        for (name, input, want) in cases {
            assert_eq!(whole(input), *want, "case {name}");
        }
    }

    #[test]
    fn error_after_data_returns_data_first() {
        let mut dec = ChunkedDecoder::new();
        let input = b"5\r\nhelloX";
        let d = dec.decode(input).unwrap();
        assert_eq!((d.data, d.consumed, d.done), (&b"hello"[..], 8, false));
        assert_eq!(dec.decode(&input[8..]), Err(E::BadChunkEnd));
        assert_eq!(dec.decode(&input[8..]), Err(E::BadChunkEnd));
    }

    #[test]
    fn one_data_slice_per_call_and_done_with_the_last() {
        let mut dec = ChunkedDecoder::new();
        let input = b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nrest";
        let d = dec.decode(input).unwrap();
        assert_eq!((d.data, d.consumed, d.done), (&b"abc"[..], 11, false));
        let d = dec.decode(&input[11..]).unwrap();
        assert_eq!((d.data, d.consumed, d.done), (&b"de"[..], 9, true));
        assert_eq!(&input[20..], b"rest");
        let d = dec.decode(&input[20..]).unwrap();
        assert_eq!((d.data, d.consumed, d.done), (&b""[..], 0, true));
        dec.reset();
        assert!(!dec.is_done());
        assert_eq!(whole(b"0\r\n\r\n"), Ok((Vec::new(), 5, true)));
    }

    #[test]
    fn size_line_and_trailer_caps() {
        let mut long_ext = b"1;".to_vec();
        long_ext.resize(MAX_CHUNK_LINE_BYTES as usize + 10, b'e');
        assert_eq!(whole(&long_ext), Err(E::BadChunkSize));
        let mut ok_ext = b"1;".to_vec();
        // The line including its CRLF is exactly the cap.
        ok_ext.resize(MAX_CHUNK_LINE_BYTES as usize - 2, b'e');
        ok_ext.extend_from_slice(b"\r\nx\r\n0\r\n\r\n");
        assert_eq!(whole(&ok_ext).map(|r| r.2), Ok(true));
        let mut long_trailer = b"0\r\nX: ".to_vec();
        long_trailer.resize(MAX_TRAILER_BYTES as usize + 10, b't');
        assert_eq!(whole(&long_trailer), Err(E::BadTrailer));
    }

    #[test]
    fn every_split_of_small_bodies() {
        let inputs: &[&[u8]] = &[
            b"5\r\nhello\r\n0\r\n\r\n",
            b"3;x=y\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nT: v\r\n\r\n",
            b"1\nx\n0\n\n",
        ];
        for input in inputs {
            let want = whole(input).unwrap();
            assert!(want.2);
            for split in 0..=input.len() {
                let (a, b) = input.split_at(split);
                assert_eq!(decode_pieces(&[a, b]), Ok(want.clone()), "split {split}");
            }
            let bytes: Vec<&[u8]> = input.chunks(1).collect();
            assert_eq!(decode_pieces(&bytes), Ok(want.clone()));
        }
    }
}
