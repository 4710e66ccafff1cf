//! One request's bytes as a short list of shared segments: its head, the pieces of a prompt that
//! other requests send too (one text held once, each request pointing into it), and the rest of
//! its body. A request that shares nothing is one owned run of bytes ([`Segments::One`]), written
//! exactly as before; the engine writes the others with one vectored send per turn.
//!
//! ```
//! use std::sync::Arc;
//! use pacer::http1::{Segment, Segments};
//!
//! let text: Arc<[u8]> = Arc::from(&b"a shared prompt"[..]);
//! let r = Segments::from_parts(vec![
//!     Segment::owned(b"{\"prompt\":\"".to_vec()),
//!     Segment::shared(&text, 2..8),
//!     Segment::owned(b"\"}".to_vec()),
//! ]);
//! assert_eq!(r.len(), 19);
//! assert_eq!(r.to_vec(), b"{\"prompt\":\"shared\"}");
//! ```

use std::io::IoSlice;
use std::ops::Range;
use std::sync::Arc;

/// A run of bytes inside a text that other segments may point into too.
#[derive(Clone, Debug)]
pub struct Segment {
    text: Arc<[u8]>,
    range: Range<usize>,
}

impl Segment {
    /// Bytes of its own (a text nobody else points into).
    pub fn owned(bytes: Vec<u8>) -> Segment {
        let range = 0..bytes.len();
        Segment {
            text: Arc::from(bytes),
            range,
        }
    }

    /// `range` of `text` (clamped to it).
    pub fn shared(text: &Arc<[u8]>, range: Range<usize>) -> Segment {
        let end = range.end.min(text.len());
        Segment {
            text: Arc::clone(text),
            range: range.start.min(end)..end,
        }
    }

    #[inline]
    pub fn bytes(&self) -> &[u8] {
        &self.text[self.range.clone()]
    }

    /// The text it points into, for counting shared memory once.
    pub fn text(&self) -> &Arc<[u8]> {
        &self.text
    }
}

/// The bytes of one request.
#[derive(Clone, Debug)]
pub enum Segments {
    /// One run of bytes of its own: the single-body case, written as a plain slice.
    One(Box<[u8]>),
    /// Several segments, some shared with other requests; `len` is their sum.
    Many { parts: Box<[Segment]>, len: usize },
}

impl From<Vec<u8>> for Segments {
    fn from(bytes: Vec<u8>) -> Segments {
        Segments::One(bytes.into_boxed_slice())
    }
}

impl Segments {
    /// The request of `parts` in order, empty ones dropped (a request of one owned run is
    /// `Segments::from(Vec)`, [`Segments::One`]).
    pub fn from_parts(parts: Vec<Segment>) -> Segments {
        let parts: Vec<Segment> = parts.into_iter().filter(|s| !s.range.is_empty()).collect();
        let len = parts.iter().map(|s| s.range.len()).sum();
        Segments::Many {
            parts: parts.into(),
            len,
        }
    }

    /// Its length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        match self {
            Segments::One(b) => b.len(),
            Segments::Many { len, .. } => *len,
        }
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The segments' bytes in order.
    pub fn parts(&self) -> impl Iterator<Item = &[u8]> {
        let (one, many) = match self {
            Segments::One(b) => (Some(&b[..]), &[][..]),
            Segments::Many { parts, .. } => (None, &parts[..]),
        };
        one.into_iter().chain(many.iter().map(Segment::bytes))
    }

    /// The shared texts it points into (none for [`Segments::One`]).
    pub fn texts(&self) -> impl Iterator<Item = &Arc<[u8]>> {
        let many = match self {
            Segments::One(_) => &[][..],
            Segments::Many { parts, .. } => &parts[..],
        };
        many.iter().map(Segment::text)
    }

    /// The whole request in one buffer (what goes on the wire).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len());
        for p in self.parts() {
            out.extend_from_slice(p);
        }
        out
    }

    /// Its first `n` bytes at most (the head is in them: the method, path and headers).
    pub fn prefix(&self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n.min(self.len()));
        for p in self.parts() {
            let room = n - out.len();
            if room == 0 {
                break;
            }
            out.extend_from_slice(&p[..p.len().min(room)]);
        }
        out
    }

    /// Fills `slices` with what is left to write after the first `written` bytes; returns how
    /// many it filled (fewer than remain when `slices` is short: the next turn writes the rest).
    #[inline]
    pub fn remaining<'a>(&'a self, written: usize, slices: &mut [IoSlice<'a>]) -> usize {
        let mut skip = written;
        let mut filled = 0;
        for p in self.parts() {
            if filled == slices.len() {
                break;
            }
            if skip >= p.len() {
                skip -= p.len();
                continue;
            }
            slices[filled] = IoSlice::new(&p[skip..]);
            skip = 0;
            filled += 1;
        }
        filled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rest_after_any_count_of_written_bytes_is_the_same_bytes() {
        let text: Arc<[u8]> = Arc::from(&b"0123456789"[..]);
        let r = Segments::from_parts(vec![
            Segment::owned(b"head|".to_vec()),
            Segment::shared(&text, 3..7),
            Segment::shared(&text, 5..5),
            Segment::shared(&text, 0..20),
            Segment::owned(b"|tail".to_vec()),
        ]);
        let whole = r.to_vec();
        assert_eq!(whole, b"head|34560123456789|tail");
        assert_eq!(r.len(), whole.len());
        assert_eq!(r.prefix(7), b"head|34");
        for written in 0..=whole.len() {
            let mut slices = [IoSlice::new(&[]); 2];
            let mut got = Vec::new();
            let mut at = written;
            // Two slices a turn: as a short iovec array would.
            while at < whole.len() {
                let n = r.remaining(at, &mut slices);
                assert!(n > 0);
                for s in &slices[..n] {
                    got.extend_from_slice(s);
                    at += s.len();
                }
            }
            assert_eq!(got, &whole[written..], "after {written}");
        }
        let one = Segments::from(b"abc".to_vec());
        let mut slices = [IoSlice::new(&[]); 4];
        assert_eq!(one.remaining(1, &mut slices), 1);
        assert_eq!(&*slices[0], b"bc");
        assert_eq!(one.texts().count(), 0);
        assert_eq!(r.texts().filter(|t| Arc::ptr_eq(t, &text)).count(), 2);
    }
}
