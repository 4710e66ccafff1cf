//! HTTP/1.1 client wire code: the request bytes (built once per run), the response head
//! (httparse underneath) and the body framing (Content-Length, chunked, close-delimited).
//!
//! Everything here is pure and incremental in httparse's style: the engine hands over whatever
//! bytes a read returned, the parsers say "complete", "need more" or a named [`ResponseError`],
//! and nothing on the response path allocates. Sockets, buffers, timing and what the body means
//! (SSE, token counting) belong to the engine and to `llm`.
//!
//! A response is read in three steps:
//!
//! ```text
//!  read bytes ──> parse_head(buf) ── Ok(None): read more
//!                     │ Ok(Some(head)): head.interim? drop head.len bytes and parse again
//!                     ▼
//!                 Body::new(head.framing) ── feed(rest, on_data) ... ── done ──> keep-alive or close
//!                                            eof() when the peer closes
//! ```
//!
//! ```
//! use pacer::http1::{Body, parse_head};
//!
//! // One read that happened to hold a whole response; any split works the same way.
//! let read = b"HTTP/1.1 100 Continue\r\n\r\n\
//!              HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
//!              5\r\nhello\r\n0\r\n\r\n";
//! let mut buf = &read[..];
//! let head = loop {
//!     match parse_head(buf, false) {
//!         Ok(Some(head)) if head.interim => buf = &buf[head.len..],
//!         Ok(Some(head)) => break head,
//!         Ok(None) => unreachable!("the engine would read more here"),
//!         Err(e) => panic!("{e}"),
//!     }
//! };
//! assert_eq!(head.status, 200);
//! let mut body = Body::new(head.framing);
//! let mut data = Vec::new();
//! let fed = body.feed(&buf[head.len..], |piece| data.extend_from_slice(piece))?;
//! assert!(fed.done);
//! assert_eq!(fed.consumed, buf.len() - head.len); // nothing left over: no pipelining
//! assert_eq!(data, b"hello");
//! # Ok::<(), pacer::http1::ResponseError>(())
//! ```

mod body;
mod chunked;
mod head;
mod request;
mod segments;

pub use body::{Body, Fed};
pub use chunked::{
    ChunkedDecoder, Decoded, MAX_CHUNK_LINE_BYTES, MAX_CHUNK_SIZE_DIGITS, MAX_TRAILER_BYTES,
};
pub use head::{
    Framing, Head, MAX_HEAD_BYTES, MAX_HEADERS, MAX_INTERIM_RESPONSES, SERVER_TTFT_HEADER,
    parse_head,
};
pub use request::{USER_AGENT, build_head, build_request, is_field_value, is_token};
pub use segments::{Segment, Segments};

use std::fmt;

/// Why a response could not be read. Each variant has a short stable text, [`ResponseError::reason`],
/// which the report prints after `invalid response: `.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResponseError {
    /// The head did not end within [`MAX_HEAD_BYTES`].
    HeadersTooLarge,
    /// The head carries more than [`MAX_HEADERS`] header fields.
    TooManyHeaders,
    /// The status line is not `HTTP/1.x NNN reason`.
    MalformedStatusLine,
    /// A header field has an invalid name, value or line ending.
    BadHeader,
    /// `Content-Length` is not a number, or several disagree.
    BadContentLength,
    /// `101 Switching Protocols`, which we never ask for.
    UnexpectedUpgrade,
    /// More than [`MAX_INTERIM_RESPONSES`] 1xx heads before the final one.
    TooManyInterim,
    /// A chunk-size line is not hex digits (capped) with optional extensions and a line end.
    BadChunkSize,
    /// The line end after a chunk's data is missing.
    BadChunkEnd,
    /// The trailer section after the last chunk is too long or malformed.
    BadTrailer,
    /// The peer closed the connection before the body was complete.
    BodyEndedEarly,
}

impl ResponseError {
    /// The stable text shown after `invalid response: ` in reports and error counts.
    pub fn reason(self) -> &'static str {
        match self {
            ResponseError::HeadersTooLarge => "headers too large",
            ResponseError::TooManyHeaders => "too many headers",
            ResponseError::MalformedStatusLine => "malformed status line",
            ResponseError::BadHeader => "bad header",
            ResponseError::BadContentLength => "bad content-length",
            ResponseError::UnexpectedUpgrade => "unexpected 101 switching protocols",
            ResponseError::TooManyInterim => "too many interim responses",
            ResponseError::BadChunkSize => "bad chunk size",
            ResponseError::BadChunkEnd => "bad chunk end",
            ResponseError::BadTrailer => "bad trailer",
            ResponseError::BodyEndedEarly => "body ended early",
        }
    }
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid response: {}", self.reason())
    }
}

impl std::error::Error for ResponseError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_prefixes_the_reason() {
        assert_eq!(
            ResponseError::HeadersTooLarge.to_string(),
            "invalid response: headers too large"
        );
        assert_eq!(ResponseError::BodyEndedEarly.reason(), "body ended early");
        assert_eq!(ResponseError::BadChunkSize.reason(), "bad chunk size");
    }
}
