//! Incremental Server-Sent Events framer, after the WHATWG "parse an event stream" algorithm.
//!
//! It owns only the framing: bytes in, each event's `data` out. What the data means is
//! [`super::event`]'s job, and de-chunking the HTTP body is `http1`'s. The parser never sees a
//! whole body at once: it is fed whatever each socket read returned, so every piece of state that
//! can straddle two reads (a partial line, a `\r` whose `\n` is in the next read, a partial BOM,
//! a UTF-8 character cut in two) lives in the struct.
//!
//! Bytes are never decoded: a multi-byte character split across reads is just bytes waiting in
//! the line buffer, and the event's data is handed on as bytes for serde to validate.

/// Upper bound on one buffered line and on one event's joined data. A stream that never ends a
/// line (or an event) must not grow memory without limit.
pub const MAX_EVENT_BYTES: usize = 1 << 20;

const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// Why the parser gave up on a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SseError {
    /// A line or an event's data grew past [`MAX_EVENT_BYTES`].
    EventTooLarge,
}

impl SseError {
    /// A short, stable name for reports (`invalid response: <reason>` or similar).
    pub fn reason(self) -> &'static str {
        match self {
            SseError::EventTooLarge => "SSE event too large",
        }
    }
}

impl std::fmt::Display for SseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for SseError {}

/// Where the parser stands on the optional byte-order mark at the very start of a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Start {
    /// This many bytes of the BOM have been seen (0..=2) and nothing else yet.
    Bom(u8),
    /// The BOM was skipped, or the stream did not start with one.
    Body,
}

/// Incremental SSE framer (WHATWG EventSource "parse an event stream").
///
/// - Lines end in `\n`, `\r\n` or `\r`; a `\r` at the end of one read followed by `\n` at the start
///   of the next is one line end.
/// - `data:` with or without one leading space; several data lines of one event are joined with `\n`.
/// - Comments (`:`...) and other fields (`event`, `id`, `retry`, unknown) are ignored.
/// - At a blank line the event is dispatched if its data buffer is non-empty in the spec's sense:
///   at least one `data` line was seen (so `data:` alone dispatches an event with empty data).
/// - A leading UTF-8 BOM is skipped.
/// - A line or an event's data over [`MAX_EVENT_BYTES`] is [`SseError::EventTooLarge`]; the parser
///   then refuses further input until [`SseParser::reset`].
///
/// Buffers are reused: once they have grown to the largest event seen, feeding allocates nothing.
#[derive(Debug)]
pub struct SseParser {
    /// The current line when it started in an earlier read (lines wholly inside one read are
    /// parsed in place and never copied here).
    line: Vec<u8>,
    /// The current event's data lines, joined with `\n`.
    data: Vec<u8>,
    /// Whether the current event has had a `data` field (the spec's "data buffer is non-empty").
    has_data: bool,
    /// The previous byte was a `\r` that ended a line; a `\n` right after it belongs to that end.
    after_cr: bool,
    start: Start,
    failed: bool,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::new()
    }
}

impl SseParser {
    pub fn new() -> Self {
        SseParser {
            line: Vec::new(),
            data: Vec::new(),
            has_data: false,
            after_cr: false,
            start: Start::Bom(0),
            failed: false,
        }
    }

    /// Ready for a new stream; keeps the buffers' capacity.
    pub fn reset(&mut self) {
        self.line.clear();
        self.data.clear();
        self.has_data = false;
        self.after_cr = false;
        self.start = Start::Bom(0);
        self.failed = false;
    }

    /// Calls `on_event(data)` for every event completed within these bytes, in order.
    ///
    /// Events completed before an error in the same call have been delivered.
    pub fn feed(&mut self, input: &[u8], mut on_event: impl FnMut(&[u8])) -> Result<(), SseError> {
        if self.failed {
            return Err(SseError::EventTooLarge);
        }
        let input = self.skip_bom(input);
        let result = self.feed_body(input, &mut on_event);
        if result.is_err() {
            self.failed = true;
            // Give the memory back: a stream that blew the cap is not one to keep a megabyte for.
            self.line = Vec::new();
            self.data = Vec::new();
        }
        result
    }

    /// Consumes the BOM (or the part of it in this read) at the start of the stream. A partial
    /// match that turns out not to be a BOM is moved into the line buffer, where it belongs.
    fn skip_bom<'i>(&mut self, mut input: &'i [u8]) -> &'i [u8] {
        while let Start::Bom(seen) = self.start {
            let Some((&b, rest)) = input.split_first() else {
                break;
            };
            let seen = usize::from(seen);
            if b == BOM[seen] {
                input = rest;
                self.start = if seen + 1 == BOM.len() {
                    Start::Body
                } else {
                    // seen + 1 < 3, so it fits a u8.
                    Start::Bom(seen as u8 + 1)
                };
            } else {
                self.line.extend_from_slice(&BOM[..seen]);
                self.start = Start::Body;
            }
        }
        input
    }

    fn feed_body(
        &mut self,
        mut input: &[u8],
        on_event: &mut impl FnMut(&[u8]),
    ) -> Result<(), SseError> {
        if self.after_cr && !input.is_empty() {
            self.after_cr = false;
            if input[0] == b'\n' {
                input = &input[1..];
            }
        }
        while !input.is_empty() {
            let Some(end) = input.iter().position(|&b| b == b'\n' || b == b'\r') else {
                // No line end in this read: keep the partial line for the next one.
                if self.line.len() + input.len() > MAX_EVENT_BYTES {
                    return Err(SseError::EventTooLarge);
                }
                self.line.extend_from_slice(input);
                return Ok(());
            };
            let terminator = input[end];
            let mut next = end + 1;
            if terminator == b'\r' {
                match input.get(next) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    // The `\n` of a `\r\n` may be the first byte of the next read.
                    None => self.after_cr = true,
                }
            }
            if self.line.is_empty() {
                self.process_line(&input[..end], on_event)?;
            } else {
                if self.line.len() + end > MAX_EVENT_BYTES {
                    return Err(SseError::EventTooLarge);
                }
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(&input[..end]);
                let result = self.process_line(&line, on_event);
                line.clear();
                self.line = line;
                result?;
            }
            input = &input[next..];
        }
        Ok(())
    }

    fn process_line(
        &mut self,
        line: &[u8],
        on_event: &mut impl FnMut(&[u8]),
    ) -> Result<(), SseError> {
        if line.len() > MAX_EVENT_BYTES {
            return Err(SseError::EventTooLarge);
        }
        if line.is_empty() {
            if self.has_data {
                on_event(&self.data);
            }
            self.data.clear();
            self.has_data = false;
            return Ok(());
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            // A comment.
            Some(0) => return Ok(()),
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        // event, id, retry and unknown fields do not matter to a benchmark.
        if field == b"data" {
            let sep = usize::from(self.has_data);
            if self.data.len() + sep + value.len() > MAX_EVENT_BYTES {
                return Err(SseError::EventTooLarge);
            }
            if self.has_data {
                self.data.push(b'\n');
            }
            self.data.extend_from_slice(value);
            self.has_data = true;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_pieces(pieces: &[&[u8]]) -> Result<Vec<Vec<u8>>, SseError> {
        let mut parser = SseParser::new();
        let mut events = Vec::new();
        for piece in pieces {
            parser.feed(piece, |d| events.push(d.to_vec()))?;
        }
        Ok(events)
    }

    fn whole(input: &[u8]) -> Vec<Vec<u8>> {
        feed_pieces(&[input]).expect("test streams are small")
    }

    /// Feeds `input` whole, at every two-piece split, and byte by byte; all must agree with
    /// `expected`.
    fn check(input: &[u8], expected: &[&str]) {
        let expected: Vec<Vec<u8>> = expected.iter().map(|e| e.as_bytes().to_vec()).collect();
        assert_eq!(
            whole(input),
            expected,
            "whole input {:?}",
            String::from_utf8_lossy(input)
        );
        for at in 0..=input.len() {
            let (a, b) = input.split_at(at);
            assert_eq!(
                feed_pieces(&[a, b]).unwrap(),
                expected,
                "split at {at} of {:?}",
                String::from_utf8_lossy(input)
            );
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(feed_pieces(&bytes).unwrap(), expected, "byte by byte");
        // The same parser, reset, gives the same answer (reset keeps no state but capacity).
        let mut parser = SseParser::new();
        for _ in 0..2 {
            let mut events = Vec::new();
            parser.feed(input, |d| events.push(d.to_vec())).unwrap();
            assert_eq!(events, expected, "after reset");
            parser.reset();
        }
    }

    #[test]
    fn line_endings() {
        check(b"data: a\n\ndata: b\n\n", &["a", "b"]);
        check(b"data: a\r\n\r\ndata: b\r\n\r\n", &["a", "b"]);
        check(b"data: a\r\rdata: b\r\r", &["a", "b"]);
        check(b"data: a\r\n\ndata: b\r\rdata: c\n\r\n", &["a", "b", "c"]);
    }

    #[test]
    fn crlf_split_across_reads_is_one_line_end() {
        // Split exactly between \r and \n: the \n must not become a blank line.
        let events = feed_pieces(&[b"data: a\r", b"\ndata: b\r\n\r\n"]).unwrap();
        assert_eq!(events, vec![b"a\nb".to_vec()]);
        // And \r then an empty read then \n.
        let events = feed_pieces(&[b"data: a\r", b"", b"\ndata: b\r", b"\n\r", b"\n"]).unwrap();
        assert_eq!(events, vec![b"a\nb".to_vec()]);
    }

    #[test]
    fn data_with_and_without_space() {
        check(b"data:x\n\n", &["x"]);
        check(b"data: x\n\n", &["x"]);
        // Only one space is stripped.
        check(b"data:  x\n\n", &[" x"]);
        check(b"data\n\n", &[""]);
        check(b"data:\n\n", &[""]);
    }

    #[test]
    fn multi_line_data_is_joined_with_lf() {
        check(b"data: {\"a\":\ndata: 1}\n\n", &["{\"a\":\n1}"]);
        check(b"data: a\ndata:\ndata: b\n\n", &["a\n\nb"]);
    }

    #[test]
    fn comments_and_other_fields_are_ignored() {
        check(b": ping\n\ndata: a\n\n", &["a"]);
        check(b":\n:ping\r\ndata: a\r\n: mid\r\n\r\n", &["a"]);
        check(
            b"event: message\nid: 7\nretry: 1000\ndata: a\nfoo: bar\nid\n\n",
            &["a"],
        );
        // Field names are case-sensitive, and a blank line with no data dispatches nothing.
        check(b"Data: no\n\nevent: only\n\n", &[]);
    }

    #[test]
    fn utf8_split_across_reads() {
        check("data: é\n\n".as_bytes(), &["é"]);
        check(
            "data: 日本\n\ndata: {\"text\":\"ü\"}\n\n".as_bytes(),
            &["日本", "{\"text\":\"ü\"}"],
        );
    }

    #[test]
    fn several_events_in_one_read() {
        check(b"data: 1\n\ndata: 2\n\ndata: 3\n\n", &["1", "2", "3"]);
    }

    #[test]
    fn trailing_event_without_blank_line_is_not_dispatched() {
        check(b"data: a\n\ndata: b\n", &["a"]);
        check(b"data: a\n\ndata: b", &["a"]);
    }

    #[test]
    fn done_marker_is_an_ordinary_event() {
        check(
            b"data: {\"x\":1}\n\ndata: [DONE]\n\n",
            &["{\"x\":1}", "[DONE]"],
        );
    }

    #[test]
    fn leading_bom_is_skipped_once() {
        check(b"\xEF\xBB\xBFdata: a\n\n", &["a"]);
        // Not at the start: part of the line, so this "field" is not `data`.
        check(b"data: a\n\n\xEF\xBB\xBFdata: b\n\n", &["a"]);
        // A partial BOM that is not one stays in the stream.
        check(b"\xEF\xBBdata: a\n\ndata: b\n\n", &["b"]);
    }

    #[test]
    fn oversized_line_is_an_error_and_sticks_until_reset() {
        let mut parser = SseParser::new();
        let big = vec![b'a'; MAX_EVENT_BYTES / 4];
        parser.feed(b"data: ", |_| ()).unwrap();
        let mut result = Ok(());
        for _ in 0..5 {
            result = parser.feed(&big, |_| ());
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(SseError::EventTooLarge));
        assert_eq!(parser.feed(b"\n\n", |_| ()), Err(SseError::EventTooLarge));
        parser.reset();
        let mut events = Vec::new();
        parser
            .feed(b"data: ok\n\n", |d| events.push(d.to_vec()))
            .unwrap();
        assert_eq!(events, vec![b"ok".to_vec()]);
    }

    #[test]
    fn oversized_event_from_many_lines_is_an_error() {
        let mut parser = SseParser::new();
        let line = [b"data: ".as_slice(), &vec![b'x'; 1000], b"\n"].concat();
        let mut result = Ok(());
        for _ in 0..(MAX_EVENT_BYTES / 1000 + 2) {
            result = parser.feed(&line, |_| ());
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(SseError::EventTooLarge));
        assert_eq!(SseError::EventTooLarge.reason(), "SSE event too large");
    }

    #[test]
    fn oversized_line_in_a_single_read_is_an_error() {
        let mut input = b"data: ".to_vec();
        input.resize(MAX_EVENT_BYTES + 10, b'y');
        input.extend_from_slice(b"\n\n");
        assert_eq!(feed_pieces(&[&input]), Err(SseError::EventTooLarge));
    }

    #[test]
    fn events_before_an_error_in_the_same_read_are_delivered() {
        let mut input = b"data: first\n\ndata: ".to_vec();
        input.resize(MAX_EVENT_BYTES + 100, b'z');
        let mut events = Vec::new();
        let result = SseParser::new().feed(&input, |d| events.push(d.to_vec()));
        assert_eq!(result, Err(SseError::EventTooLarge));
        assert_eq!(events, vec![b"first".to_vec()]);
    }

    #[test]
    fn warmed_up_parser_does_not_reallocate() {
        // Events split mid-line so both buffers are used.
        let stream = b"data: {\"choices\":[{\"text\":\"abc\"}]}\ndata: x\n\n: ping\n\n".repeat(20);
        let mut parser = SseParser::new();
        let pieces: Vec<&[u8]> = stream.chunks(7).collect();
        for piece in &pieces {
            parser.feed(piece, |_| ()).unwrap();
        }
        let before = (parser.line.as_ptr(), parser.data.as_ptr());
        for _ in 0..3 {
            parser.reset();
            let mut n = 0;
            for piece in &pieces {
                parser.feed(piece, |_| n += 1).unwrap();
            }
            assert_eq!(n, 20);
            assert_eq!(
                (parser.line.as_ptr(), parser.data.as_ptr()),
                before,
                "buffers were reallocated"
            );
        }
    }

    #[test]
    fn reset_keeps_capacity() {
        let mut parser = SseParser::new();
        parser.feed(b"data: 0123456789\ndata: abc", |_| ()).unwrap();
        let (line_cap, data_cap) = (parser.line.capacity(), parser.data.capacity());
        assert!(line_cap > 0 && data_cap > 0);
        parser.reset();
        assert_eq!(
            (parser.line.capacity(), parser.data.capacity()),
            (line_cap, data_cap)
        );
        assert!(parser.line.is_empty() && parser.data.is_empty());
    }
}
