//! The response head: status line and headers (httparse underneath), reduced to what the engine
//! needs: the status, where the body starts, how it is framed and whether the connection stays open.

use super::ResponseError;
use std::mem::MaybeUninit;

/// A head that has not ended within this many bytes is [`ResponseError::HeadersTooLarge`].
/// The engine's read buffer must hold at least this much for the cap to be reached.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// More header fields than this is [`ResponseError::TooManyHeaders`].
pub const MAX_HEADERS: usize = 128;
/// More interim (1xx) heads than this before the final one is
/// [`ResponseError::TooManyInterim`]: a server may send a `100 Continue` and a few `103 Early
/// Hints`, never an endless stream of them (each would cost the engine a parse until the timeout).
pub const MAX_INTERIM_RESPONSES: u32 = 16;
/// Fireworks reports its own time to first token (seconds) in this response header.
pub const SERVER_TTFT_HEADER: &str = "fireworks-server-time-to-first-token";

/// How the body of a response is delimited (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// Exactly this many bytes follow the head.
    Length(u64),
    /// `Transfer-Encoding: chunked`: see [`super::ChunkedDecoder`].
    Chunked,
    /// The body runs until the server closes the connection.
    Close,
    /// No body at all (HEAD requests, 1xx, 204, 304).
    Empty,
}

/// A parsed response head.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Head {
    pub status: u16,
    /// Bytes of the head including the blank line: the body starts at `buf[len..]`.
    pub len: usize,
    pub framing: Framing,
    /// False for `Connection: close`, HTTP/1.0 without `Connection: keep-alive`, close-delimited
    /// bodies, and framing that RFC 9112 calls faulty (Transfer-Encoding together with
    /// Content-Length, or in an HTTP/1.0 response): the connection is not reused after this response.
    pub keep_alive: bool,
    /// A 1xx other than 101: the caller drops `len` bytes and parses the next head.
    pub interim: bool,
    /// The [`SERVER_TTFT_HEADER`] value in seconds, when present, finite and not negative.
    pub server_ttft: Option<f64>,
}

/// Parses a response head from the start of `buf`, which holds everything read so far.
///
/// `Ok(None)`: the head is incomplete, read more and call again with the longer buffer.
/// `Err(HeadersTooLarge)` once `buf` holds [`MAX_HEAD_BYTES`] bytes without the head's end.
/// Framing follows RFC 9112 §6.3: a HEAD request, 1xx, 204 and 304 have an empty body; a
/// Transfer-Encoding whose final coding is chunked is chunked (it wins over Content-Length); any
/// other Transfer-Encoding is close-delimited; Content-Length (several equal values are fine,
/// differing or unparsable ones are an error) gives the length; otherwise the body runs to close.
/// `101 Switching Protocols` is an error: pacer never asks to upgrade.
pub fn parse_head(buf: &[u8], method_is_head: bool) -> Result<Option<Head>, ResponseError> {
    let window = &buf[..buf.len().min(MAX_HEAD_BYTES)];
    if let Some(head) = parse_plain(window, method_is_head) {
        return head.map(Some);
    }
    parse_with_httparse(buf, window, method_is_head)
}

/// [`parse_head`] by httparse alone: every head the plain scan leaves (see [`parse_plain`]).
fn parse_with_httparse(
    buf: &[u8],
    window: &[u8],
    method_is_head: bool,
) -> Result<Option<Head>, ResponseError> {
    // Uninitialised storage: httparse only reads the slots it has written, and this skips
    // zeroing 4 KiB of headers per response.
    let mut storage = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        window,
        &mut storage,
    );
    match parsed {
        Ok(httparse::Status::Complete(len)) => {
            let mut fields = Fields::default();
            for h in response.headers.iter() {
                fields.add(h.name.as_bytes(), h.value);
            }
            fields
                .head(
                    response.code,
                    response.version == Some(0),
                    len,
                    method_is_head,
                )
                .map(Some)
        }
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD_BYTES => {
            Err(ResponseError::HeadersTooLarge)
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            // Wait for the head's end before choosing between the two size errors, so the error
            // name does not depend on how the bytes were split into reads.
            if has_blank_line(window) {
                Err(ResponseError::TooManyHeaders)
            } else if buf.len() >= MAX_HEAD_BYTES {
                Err(ResponseError::HeadersTooLarge)
            } else {
                Ok(None)
            }
        }
        Err(httparse::Error::HeaderName | httparse::Error::HeaderValue) => {
            Err(ResponseError::BadHeader)
        }
        Err(httparse::Error::NewLine) if status_line_is_valid(window) => {
            Err(ResponseError::BadHeader)
        }
        Err(_) => Err(ResponseError::MalformedStatusLine),
    }
}

/// The heads servers send, read without httparse (which cost about 1,400 instructions a
/// response, most of pacer's own per-request cost): `HTTP/1.1` or `HTTP/1.0`, one space, three
/// digits, an optional reason of visible ASCII, spaces and tabs, then fields `token:value` whose
/// values are visible ASCII, spaces and tabs, every line ended by CRLF. Such a head is one
/// httparse reads the same way, field for field (the value trimmed of spaces and tabs at both
/// ends, as httparse does), so the result is the same; `None` for anything else (an incomplete
/// head, a bare LF, leading blank lines, obs-text, a folded line, a space before a colon, a
/// control byte, more than [`MAX_HEADERS`] fields), which httparse then decides as before.
/// `http1::head::tests::the_plain_scan_agrees_with_httparse` checks the agreement.
#[inline]
fn parse_plain(w: &[u8], method_is_head: bool) -> Option<Result<Head, ResponseError>> {
    let http10 = match w.get(..9)? {
        b"HTTP/1.1 " => false,
        b"HTTP/1.0 " => true,
        _ => return None,
    };
    let &[a, b, c] = w.get(9..12)? else {
        return None;
    };
    if !(a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit()) {
        return None;
    }
    let code = u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0');
    let mut i = match *w.get(12)? {
        b' ' => line_end(w, 13)?,
        b'\r' if *w.get(13)? == b'\n' => 12,
        _ => return None,
    } + 2;
    let mut fields = Fields::default();
    let mut count = 0;
    loop {
        // The whole line checked at once: visible ASCII, spaces and tabs up to its CRLF.
        let cr = line_end(w, i)?;
        let line = w.get(i..cr)?;
        let Some(&first) = line.first() else {
            // The blank line: the head ends after it.
            return Some(fields.head(Some(code), http10, cr + 2, method_is_head));
        };
        if !TOKEN[usize::from(first)] || count == MAX_HEADERS {
            return None;
        }
        // The name runs to the first byte that is not a token byte, which must be the colon.
        let colon = line.iter().position(|&b| !TOKEN[usize::from(b)])?;
        let (name, value) = line.split_at(colon);
        fields.add(name, trim_ows(value.strip_prefix(b":")?));
        count += 1;
        i = cr + 2;
    }
}

/// httparse's header name bytes (RFC 9110 `tchar`).
static TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        b += 1;
    }
    t
};

/// The index of the CR that ends the line at `w[i..]`, when CRLF ends it and every byte before
/// is visible ASCII, a space or a tab; None otherwise (or when the line's end is not in `w`).
/// Eight bytes at a time: the lowest byte flagged below is the first outside 0x20..=0x7E (a
/// borrow or carry only ever starts at a byte that is itself flagged, and moves up).
#[inline(always)]
fn line_end(w: &[u8], mut i: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    loop {
        if let Some(&word) = w.get(i..).and_then(|r| r.first_chunk::<8>()) {
            let x = u64::from_le_bytes(word);
            let below_space = x.wrapping_sub(ONES * 0x20) & !x;
            let special = (below_space | x.wrapping_add(ONES) | x) & HIGH;
            if special == 0 {
                i += 8;
                continue;
            }
            i += (special.trailing_zeros() / 8) as usize;
        }
        match *w.get(i)? {
            b'\r' => return (*w.get(i + 1)? == b'\n').then_some(i),
            b'\t' | 0x20..=0x7e => i += 1,
            _ => return None,
        }
    }
}

/// httparse reports a bad line ending the same way in the status line and in a header; parsing
/// again with no header storage tells them apart (only on the error path).
fn status_line_is_valid(window: &[u8]) -> bool {
    let mut response = httparse::Response::new(&mut []);
    !matches!(
        response.parse(window),
        Err(httparse::Error::NewLine
            | httparse::Error::Status
            | httparse::Error::Version
            | httparse::Error::Token)
    )
}

fn has_blank_line(window: &[u8]) -> bool {
    window
        .windows(2)
        .enumerate()
        .any(|(i, w)| w == b"\n\n" || (w == b"\n\r" && window.get(i + 2) == Some(&b'\n')))
}

/// Whether header `name` is `lower` in any case, a word at a time. `name` is a token (httparse
/// checked it) and `lower` lowercase letters, digits and `-`, all bytes with the 0x20 bit set:
/// setting that bit in a token byte gives a letter's lowercase and leaves `-` and digits alone,
/// and no other token byte lands on one of them, so the match is exact.
#[inline]
fn is_name(name: &[u8], lower: &[u8]) -> bool {
    const CASE: u64 = 0x2020_2020_2020_2020;
    fn word(s: &[u8], at: usize) -> u64 {
        let mut w = [0u8; 8];
        w.copy_from_slice(&s[at..at + 8]);
        u64::from_le_bytes(w)
    }
    let n = lower.len();
    if name.len() != n {
        return false;
    }
    if n < 8 {
        return name.iter().zip(lower).all(|(&a, &b)| a | 0x20 == b);
    }
    // Whole words, then one last word that overlaps the one before it.
    let mut at = 0;
    while at + 8 <= n {
        if word(name, at) | CASE != word(lower, at) {
            return false;
        }
        at += 8;
    }
    at == n || word(name, n - 8) | CASE == word(lower, n - 8)
}

/// What the fields of a head say about its framing and connection, gathered a field at a time.
#[derive(Default)]
struct Fields {
    content_length: Option<u64>,
    content_length_bad: bool,
    te_seen: bool,
    te_final_chunked: bool,
    conn_close: bool,
    conn_keep_alive: bool,
    server_ttft: Option<f64>,
}

impl Fields {
    /// One field. The names differ in length, so the length picks the one it may be; the usual
    /// values (plain digits, a lone `keep-alive` or `close`) are read directly, to what the list
    /// rules would make of them.
    #[inline]
    fn add(&mut self, name: &[u8], value: &[u8]) {
        match name.len() {
            14 if is_name(name, b"content-length") => {
                // At most 19 digits: no overflow.
                if !value.is_empty() && value.len() <= 19 && value.iter().all(u8::is_ascii_digit) {
                    let n = value
                        .iter()
                        .fold(0u64, |n, &b| n * 10 + u64::from(b - b'0'));
                    match self.content_length {
                        Some(prev) if prev != n => self.content_length_bad = true,
                        _ => self.content_length = Some(n),
                    }
                } else {
                    self.content_length_bad |=
                        merge_content_length(value, &mut self.content_length).is_err();
                }
            }
            17 if is_name(name, b"transfer-encoding") => {
                for coding in list_items(value) {
                    self.te_seen = true;
                    self.te_final_chunked = coding.eq_ignore_ascii_case(b"chunked");
                }
            }
            10 if is_name(name, b"connection") => {
                if value.eq_ignore_ascii_case(b"keep-alive") {
                    self.conn_keep_alive = true;
                } else if value.eq_ignore_ascii_case(b"close") {
                    self.conn_close = true;
                } else {
                    for option in list_items(value) {
                        self.conn_close |= option.eq_ignore_ascii_case(b"close");
                        self.conn_keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
                    }
                }
            }
            n if n == SERVER_TTFT_HEADER.len() && is_name(name, SERVER_TTFT_HEADER.as_bytes()) => {
                self.server_ttft = std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .filter(|v| v.is_finite() && *v >= 0.0);
            }
            _ => {}
        }
    }

    /// The head of status `code` (HTTP/1.0 if `http10`), `len` bytes long, with these fields.
    fn head(
        self,
        code: Option<u16>,
        http10: bool,
        len: usize,
        method_is_head: bool,
    ) -> Result<Head, ResponseError> {
        let status = match code {
            Some(code @ 100..=999) => code,
            _ => return Err(ResponseError::MalformedStatusLine),
        };
        if status == 101 {
            return Err(ResponseError::UnexpectedUpgrade);
        }
        let Fields {
            content_length,
            content_length_bad,
            te_seen,
            te_final_chunked,
            conn_close,
            conn_keep_alive,
            server_ttft,
        } = self;

        let interim = status < 200;
        let framing = if method_is_head || interim || status == 204 || status == 304 {
            Framing::Empty
        } else if te_seen {
            if te_final_chunked {
                Framing::Chunked
            } else {
                Framing::Close
            }
        } else if content_length_bad {
            return Err(ResponseError::BadContentLength);
        } else if let Some(n) = content_length {
            Framing::Length(n)
        } else {
            Framing::Close
        };

        let faulty_framing = te_seen && (http10 || content_length.is_some() || content_length_bad);
        let keep_alive = if http10 {
            conn_keep_alive && !conn_close
        } else {
            !conn_close
        } && framing != Framing::Close
            && !faulty_framing;

        Ok(Head {
            status,
            len,
            framing,
            keep_alive,
            interim,
            server_ttft,
        })
    }
}

/// Folds one Content-Length field value (possibly a list, RFC 9110 §8.6) into `seen`; every value
/// must be digits only and equal to the others.
fn merge_content_length(value: &[u8], seen: &mut Option<u64>) -> Result<(), ()> {
    let mut any = false;
    for item in value.split(|&b| b == b',') {
        let item = trim_ows(item);
        if item.is_empty() || item.len() > 20 {
            return Err(());
        }
        let mut n: u64 = 0;
        for &b in item {
            if !b.is_ascii_digit() {
                return Err(());
            }
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(b - b'0')))
                .ok_or(())?;
        }
        match *seen {
            Some(prev) if prev != n => return Err(()),
            _ => *seen = Some(n),
        }
        any = true;
    }
    if any { Ok(()) } else { Err(()) }
}

/// The non-empty elements of a comma-separated header list, whitespace trimmed.
fn list_items(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|item| !item.is_empty())
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_in_any_case_and_nothing_else() {
        let names: [&[u8]; 5] = [
            b"content-length",
            b"transfer-encoding",
            b"connection",
            b"te",
            SERVER_TTFT_HEADER.as_bytes(),
        ];
        // Every token byte, in every position of every name: a match exactly where the
        // byte is the name's own in either case.
        let token = |c: u8| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c);
        for lower in names {
            assert!(is_name(lower, lower));
            assert!(is_name(&lower.to_ascii_uppercase(), lower));
            assert!(!is_name(&lower[1..], lower));
            for at in 0..lower.len() {
                for c in (0u8..=127).filter(|&c| token(c)) {
                    let mut name = lower.to_vec();
                    name[at] = c;
                    let want = name.eq_ignore_ascii_case(lower);
                    assert_eq!(
                        is_name(&name, lower),
                        want,
                        "{:?}",
                        String::from_utf8_lossy(&name)
                    );
                }
            }
        }
    }
    /// Heads of every kind, at every length read so far: where the plain scan answers, httparse
    /// answers the same (status, length, framing, keep-alive, interim, server time); elsewhere
    /// the answer is httparse's. The scan answers most of them (the heads servers send).
    #[test]
    fn the_plain_scan_agrees_with_httparse() {
        let statuses: &[&[u8]] = &[
            b"HTTP/1.1 200 OK",
            b"HTTP/1.0 200 OK",
            b"HTTP/1.1 204 No Content",
            b"HTTP/1.1 304 Not Modified",
            b"HTTP/1.1 200",
            b"HTTP/1.1 200 ",
            b"HTTP/1.1 100 Continue",
            b"HTTP/1.1 101 Switching Protocols",
            b"HTTP/1.1 099 Low",
            b"HTTP/1.1 503 Service\tUnavailable",
            b"HTTP/2.0 200 OK",
            b"HTTP/1.1  200 OK",
            b"HTTP/1.1 20 OK",
            b"HTTP/1.1 2x0 OK",
            b"HTTP/1.1 200 O\x80K",
            b"HTTP/1.1 200 O\x01K",
            b"\r\nHTTP/1.1 200 OK",
            b"http/1.1 200 OK",
        ];
        let names: &[&[u8]] = &[
            b"Content-Length",
            b"content-length",
            b"Transfer-Encoding",
            b"Connection",
            b"Server",
            b"Date",
            b"X-A-Rather-Long-Header-Name",
            b"fireworks-server-time-to-first-token",
            b"Bad Name",
            b"Bad(Name",
            b"",
            b" Folded",
            b"\tFolded",
            b"X\x80",
        ];
        let values: &[&[u8]] = &[
            b"13",
            b" 13 ",
            b"5, 5",
            b"5,6",
            b"x",
            b"chunked",
            b"gzip, chunked",
            b"close",
            b"keep-alive",
            b"Keep-Alive, Upgrade",
            b"",
            b"   ",
            b"nginx/1.24.0 (Ubuntu)",
            b"Sun, 06 Dec 2026 04:48:08 GMT",
            b"a\tb",
            b"a\x7fb",
            b"a\x80b",
            b"\x01",
            b"a\x00b",
            b"0.125",
            b"-1",
            b"value with trailing whitespace \t \t",
            b"a value long enough for several words at a time, 0123456789abcdef",
        ];
        let seps: &[&[u8]] = &[b":", b": ", b":\t", b" :", b":  "];
        let ends: &[&[u8]] = &[b"\r\n", b"\r\n", b"\r\n", b"\r\n", b"\n", b"\r", b"\r\r\n"];
        // A generator of its own: http1 is a leaf and imports nothing of the crate (SplitMix64).
        struct Rng(u64);
        impl Rng {
            fn below(&mut self, n: usize) -> usize {
                self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = self.0;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                ((z ^ (z >> 31)) % n as u64) as usize
            }
        }
        let mut rng = Rng(9);
        let pick = |rng: &mut Rng, xs: &[&'static [u8]], common: usize| {
            // The first `common` entries are what servers send: most heads use only those.
            let n = if rng.below(5) == 0 { xs.len() } else { common };
            xs[rng.below(n)]
        };
        let (mut whole, mut plain) = (0, 0);
        for k in 0..3_000 {
            let mut head = Vec::new();
            head.extend_from_slice(pick(&mut rng, statuses, 5));
            head.extend_from_slice(pick(&mut rng, ends, 4));
            let fields = match k % 50 {
                0 => 127 + rng.below(3),
                _ => rng.below(7),
            };
            for _ in 0..fields {
                head.extend_from_slice(pick(&mut rng, names, 8));
                head.extend_from_slice(pick(&mut rng, seps, 3));
                head.extend_from_slice(pick(&mut rng, values, 14));
                head.extend_from_slice(pick(&mut rng, ends, 4));
            }
            if rng.below(8) != 0 {
                head.extend_from_slice(pick(&mut rng, ends, 4));
            }
            head.extend_from_slice(&b"hello"[..rng.below(6)]);
            let method_is_head = rng.below(4) == 0;
            // Every length for short heads; a sample of them for long ones.
            let step = if head.len() > 400 { 37 } else { 1 };
            for len in (0..=head.len()).step_by(step).chain([head.len()]) {
                let buf = &head[..len];
                let window = &buf[..buf.len().min(MAX_HEAD_BYTES)];
                let want = parse_with_httparse(buf, window, method_is_head);
                assert_eq!(
                    parse_head(buf, method_is_head),
                    want,
                    "{:?}",
                    String::from_utf8_lossy(buf)
                );
                if len == head.len() {
                    whole += 1;
                    plain += usize::from(parse_plain(window, method_is_head).is_some());
                }
            }
        }
        assert!(
            plain > whole / 4,
            "{plain} of {whole} whole heads read by the plain scan"
        );
    }

    use ResponseError as E;

    /// (status, framing, keep_alive, interim) of a complete head.
    type Summary = (u16, Framing, bool, bool);

    type Outcome = Result<Option<Summary>, ResponseError>;

    fn summary(buf: &[u8], method_is_head: bool) -> Outcome {
        parse_head(buf, method_is_head)
            .map(|h| h.map(|h| (h.status, h.framing, h.keep_alive, h.interim)))
    }

    #[test]
    fn table() {
        use Framing::*;
        let cases: &[(&str, &[u8], bool, Outcome)] = &[
            (
                "200 CL",
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
                false,
                Ok(Some((200, Length(5), true, false))),
            ),
            (
                "CL 0",
                b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                false,
                Ok(Some((200, Length(0), true, false))),
            ),
            (
                "404 CL",
                b"HTTP/1.1 404 Not Found\r\ncontent-length: 9\r\n\r\n",
                false,
                Ok(Some((404, Length(9), true, false))),
            ),
            (
                "599 no reason",
                b"HTTP/1.1 599\r\nContent-Length: 1\r\n\r\n",
                false,
                Ok(Some((599, Length(1), true, false))),
            ),
            (
                "no framing => close",
                b"HTTP/1.1 200 OK\r\n\r\n",
                false,
                Ok(Some((200, Close, false, false))),
            ),
            (
                "bare LF lines",
                b"HTTP/1.1 200 OK\nContent-Length: 2\n\n",
                false,
                Ok(Some((200, Length(2), true, false))),
            ),
            (
                "1.1 Connection: close",
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n",
                false,
                Ok(Some((200, Length(1), false, false))),
            ),
            (
                "1.1 Connection list",
                b"HTTP/1.1 200 OK\r\nConnection: Upgrade, CLOSE\r\nContent-Length: 1\r\n\r\n",
                false,
                Ok(Some((200, Length(1), false, false))),
            ),
            (
                "1.0 default close",
                b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n",
                false,
                Ok(Some((200, Length(1), false, false))),
            ),
            (
                "1.0 keep-alive",
                b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\n",
                false,
                Ok(Some((200, Length(1), true, false))),
            ),
            (
                "1.0 keep-alive but close framing",
                b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n",
                false,
                Ok(Some((200, Close, false, false))),
            ),
            (
                "chunked",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                false,
                Ok(Some((200, Chunked, true, false))),
            ),
            (
                "TE wins over CL",
                b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n",
                false,
                Ok(Some((200, Chunked, false, false))),
            ),
            (
                "TE wins over bad CL",
                b"HTTP/1.1 200 OK\r\nContent-Length: x\r\nTransfer-Encoding: chunked\r\n\r\n",
                false,
                Ok(Some((200, Chunked, false, false))),
            ),
            (
                "gzip, chunked",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n",
                false,
                Ok(Some((200, Chunked, true, false))),
            ),
            (
                "TE split over fields",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
                false,
                Ok(Some((200, Chunked, true, false))),
            ),
            (
                "chunked not final",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
                false,
                Ok(Some((200, Close, false, false))),
            ),
            (
                "TE in 1.0 is faulty",
                b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n",
                false,
                Ok(Some((200, Chunked, false, false))),
            ),
            (
                "equal CLs",
                b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nContent-Length: 7\r\n\r\n",
                false,
                Ok(Some((200, Length(7), true, false))),
            ),
            (
                "equal CL list",
                b"HTTP/1.1 200 OK\r\nContent-Length: 7, 7\r\n\r\n",
                false,
                Ok(Some((200, Length(7), true, false))),
            ),
            (
                "differing CLs",
                b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nContent-Length: 8\r\n\r\n",
                false,
                Err(E::BadContentLength),
            ),
            (
                "differing CL list",
                b"HTTP/1.1 200 OK\r\nContent-Length: 7,8\r\n\r\n",
                false,
                Err(E::BadContentLength),
            ),
            (
                "CL not a number",
                b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n",
                false,
                Err(E::BadContentLength),
            ),
            (
                "CL negative",
                b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
                false,
                Err(E::BadContentLength),
            ),
            (
                "CL plus sign",
                b"HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\n",
                false,
                Err(E::BadContentLength),
            ),
            (
                "CL empty",
                b"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
                false,
                Err(E::BadContentLength),
            ),
            (
                "CL overflow",
                b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551616\r\n\r\n",
                false,
                Err(E::BadContentLength),
            ),
            (
                "CL max",
                b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\n",
                false,
                Ok(Some((200, Length(u64::MAX), true, false))),
            ),
            (
                "204 ignores CL",
                b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
                false,
                Ok(Some((204, Empty, true, false))),
            ),
            (
                "304 ignores bad CL",
                b"HTTP/1.1 304 Not Modified\r\nContent-Length: x\r\n\r\n",
                false,
                Ok(Some((304, Empty, true, false))),
            ),
            (
                "HEAD",
                b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n",
                true,
                Ok(Some((200, Empty, true, false))),
            ),
            (
                "HEAD chunked",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                true,
                Ok(Some((200, Empty, true, false))),
            ),
            (
                "100 Continue",
                b"HTTP/1.1 100 Continue\r\n\r\n",
                false,
                Ok(Some((100, Empty, true, true))),
            ),
            (
                "103 Early Hints",
                b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n",
                false,
                Ok(Some((103, Empty, true, true))),
            ),
            (
                "101 upgrade",
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n",
                false,
                Err(E::UnexpectedUpgrade),
            ),
            (
                "status 099",
                b"HTTP/1.1 099 Low\r\n\r\n",
                false,
                Err(E::MalformedStatusLine),
            ),
            (
                "garbage",
                b"garbage\r\n\r\n",
                false,
                Err(E::MalformedStatusLine),
            ),
            (
                "HTTP/2 line",
                b"HTTP/2 200\r\n\r\n",
                false,
                Err(E::MalformedStatusLine),
            ),
            (
                "status letters",
                b"HTTP/1.1 2xx OK\r\n\r\n",
                false,
                Err(E::MalformedStatusLine),
            ),
            (
                "status two digits",
                b"HTTP/1.1 20 OK\r\n\r\n",
                false,
                Err(E::MalformedStatusLine),
            ),
            (
                "CR without LF in status",
                b"HTTP/1.1 200\rX\r\n\r\n",
                false,
                Err(E::MalformedStatusLine),
            ),
            (
                "bad header name",
                b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
                false,
                Err(E::BadHeader),
            ),
            (
                "bad header value",
                b"HTTP/1.1 200 OK\r\nName: a\x01b\r\n\r\n",
                false,
                Err(E::BadHeader),
            ),
            (
                "CR without LF in header",
                b"HTTP/1.1 200 OK\r\nA: b\rC: d\r\n\r\n",
                false,
                Err(E::BadHeader),
            ),
            ("empty", b"", false, Ok(None)),
            ("partial status", b"HTTP/1.1 20", false, Ok(None)),
            (
                "partial headers",
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n",
                false,
                Ok(None),
            ),
            (
                "partial blank line",
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r",
                false,
                Ok(None),
            ),
        ];
        for (name, input, head, want) in cases {
            assert_eq!(summary(input, *head), *want, "case {name}");
        }
    }

    #[test]
    fn every_prefix_of_a_valid_head_is_incomplete() {
        let buf = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello";
        let head_len = buf.len() - 5;
        for end in 0..head_len {
            assert_eq!(parse_head(&buf[..end], false), Ok(None), "prefix {end}");
        }
        let head = parse_head(buf, false).unwrap().unwrap(); // complete per the loop above
        assert_eq!(head.len, head_len);
        assert_eq!(head.framing, Framing::Length(5));
    }

    #[test]
    fn fireworks_server_ttft() {
        let parse = |value: &str| {
            let buf = format!(
                "HTTP/1.1 200 OK\r\nFireworks-Server-Time-To-First-Token: {value}\r\nContent-Length: 0\r\n\r\n"
            );
            parse_head(buf.as_bytes(), false)
                .unwrap()
                .unwrap()
                .server_ttft
        };
        assert_eq!(parse("0.0425"), Some(0.0425));
        assert_eq!(parse("1"), Some(1.0));
        assert_eq!(parse(" 2.5 "), Some(2.5));
        assert_eq!(parse("soon"), None);
        assert_eq!(parse("-1"), None);
        assert_eq!(parse("NaN"), None);
        let none = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false);
        assert_eq!(none.unwrap().unwrap().server_ttft, None);
    }

    fn huge_head(value_bytes: usize, complete: bool) -> Vec<u8> {
        let mut buf = b"HTTP/1.1 200 OK\r\nX-Big: ".to_vec();
        buf.resize(buf.len() + value_bytes, b'a');
        if complete {
            buf.extend_from_slice(b"\r\nContent-Length: 0\r\n\r\n");
        }
        buf
    }

    #[test]
    fn oversized_heads() {
        // 100 KiB in one header, complete and incomplete.
        assert_eq!(
            parse_head(&huge_head(100 * 1024, true), false),
            Err(E::HeadersTooLarge)
        );
        assert_eq!(
            parse_head(&huge_head(100 * 1024, false), false),
            Err(E::HeadersTooLarge)
        );
        // Incomplete just under the cap: still waiting.
        let under = huge_head(MAX_HEAD_BYTES - 100, false);
        assert!(under.len() < MAX_HEAD_BYTES);
        assert_eq!(parse_head(&under, false), Ok(None));
        // A head of exactly MAX_HEAD_BYTES is accepted.
        let fixed = huge_head(0, true).len();
        let exact = huge_head(MAX_HEAD_BYTES - fixed, true);
        assert_eq!(exact.len(), MAX_HEAD_BYTES);
        assert_eq!(
            parse_head(&exact, false).unwrap().unwrap().len,
            MAX_HEAD_BYTES
        );
        let over = huge_head(MAX_HEAD_BYTES - fixed + 1, true);
        assert_eq!(parse_head(&over, false), Err(E::HeadersTooLarge));
    }

    fn many_headers(count: usize, value_bytes: usize, complete: bool) -> Vec<u8> {
        let mut buf = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..count {
            buf.extend_from_slice(format!("X-H{i}: ").as_bytes());
            buf.resize(buf.len() + value_bytes, b'v');
            buf.extend_from_slice(b"\r\n");
        }
        if complete {
            buf.extend_from_slice(b"\r\n");
        }
        buf
    }

    #[test]
    fn header_count_cap() {
        assert!(
            parse_head(&many_headers(MAX_HEADERS, 4, true), false)
                .unwrap()
                .is_some()
        );
        assert_eq!(
            parse_head(&many_headers(MAX_HEADERS + 1, 4, true), false),
            Err(E::TooManyHeaders)
        );
        // Too many so far but no end yet: wait, so the error does not depend on the read split.
        assert_eq!(
            parse_head(&many_headers(MAX_HEADERS + 1, 4, false), false),
            Ok(None)
        );
        // 100 KiB made of many small headers: the size is what is reported, complete or not.
        assert_eq!(
            parse_head(&many_headers(1000, 100, true), false),
            Err(E::HeadersTooLarge)
        );
        assert_eq!(
            parse_head(&many_headers(1000, 100, false), false),
            Err(E::HeadersTooLarge)
        );
    }

    #[test]
    fn head_len_leaves_the_body() {
        let buf = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        let head = parse_head(buf, false).unwrap().unwrap();
        assert_eq!(&buf[head.len..head.len + 3], b"5\r\n");
    }
}
