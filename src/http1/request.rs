//! The request bytes: built once per run, then written as they are for every request.

/// The `User-Agent` pacer sends unless the user sets one.
pub const USER_AGENT: &str = concat!("pacer/", env!("CARGO_PKG_VERSION"));

/// Builds the complete request (head and body).
///
/// Adds `Host: {host_header}`, `User-Agent: pacer/<version>`, `Accept: */*` and, when the body is
/// non-empty or the method is POST/PUT/PATCH, `Content-Length`; then the user's headers in their
/// order. A user header with the same name (ASCII case-insensitive) replaces the default; a user
/// `Transfer-Encoding` also suppresses the default `Content-Length`, since sending both would make
/// the request's framing ambiguous. No `Connection: close`: keep-alive is HTTP/1.1's default.
///
/// Names and values are written as given: the plan checks them once with [`is_token`] and
/// [`is_field_value`] so no CR/LF can reach the wire. An empty path becomes `/`.
pub fn build_request(
    method: &str,
    host_header: &str,
    path_and_query: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Vec<u8> {
    let mut out = build_head(method, host_header, path_and_query, headers, body.len());
    out.reserve_exact(body.len());
    out.extend_from_slice(body);
    out
}

/// The head [`build_request`] puts before a body of `body_len` bytes (the body sent in pieces).
pub fn build_head(
    method: &str,
    host_header: &str,
    path_and_query: &str,
    headers: &[(String, String)],
    body_len: usize,
) -> Vec<u8> {
    let user_has = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    let path = if path_and_query.is_empty() {
        "/"
    } else {
        path_and_query
    };
    let mut out = Vec::with_capacity(
        128 + method.len()
            + host_header.len()
            + path.len()
            + headers
                .iter()
                .map(|(n, v)| n.len() + v.len() + 4)
                .sum::<usize>(),
    );
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let mut line = |name: &str, value: &str| {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    };
    if !user_has("host") {
        line("Host", host_header);
    }
    if !user_has("user-agent") {
        line("User-Agent", USER_AGENT);
    }
    if !user_has("accept") {
        line("Accept", "*/*");
    }
    let method_has_body = ["POST", "PUT", "PATCH"]
        .iter()
        .any(|m| m.eq_ignore_ascii_case(method));
    if (body_len > 0 || method_has_body)
        && !user_has("content-length")
        && !user_has("transfer-encoding")
    {
        line("Content-Length", &body_len.to_string());
    }
    for (name, value) in headers {
        line(name, value);
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// True when `s` is an HTTP token (RFC 9110 §5.6.2): a valid method or header name.
pub fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// True when `s` can be sent as a header value (RFC 9110 §5.5): visible characters, spaces and
/// tabs, no CR, LF or other controls, no leading or trailing whitespace.
pub fn is_field_value(s: &str) -> bool {
    let bytes = s.as_bytes();
    let ws = |b: &u8| *b == b' ' || *b == b'\t';
    let inner_ok = bytes
        .iter()
        .all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f));
    inner_ok && !bytes.first().is_some_and(ws) && !bytes.last().is_some_and(ws)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    fn text(v: Vec<u8>) -> String {
        String::from_utf8(v).unwrap() // test input is ASCII
    }

    #[test]
    fn get_has_defaults_and_no_content_length() {
        let req = text(build_request("GET", "example.com:8080", "/a?b=1", &[], b""));
        assert_eq!(
            req,
            format!(
                "GET /a?b=1 HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: {USER_AGENT}\r\n\
                 Accept: */*\r\n\r\n"
            )
        );
        assert!(!req.to_ascii_lowercase().contains("connection"));
    }

    #[test]
    fn post_gets_content_length_even_when_empty() {
        let req = text(build_request("POST", "h", "/", &[], b""));
        assert!(req.contains("\r\nContent-Length: 0\r\n"), "{req}");
        let req = text(build_request("GET", "h", "/", &[], b"abc"));
        assert!(req.contains("\r\nContent-Length: 3\r\n"), "{req}");
        assert!(req.ends_with("\r\n\r\nabc"));
        let req = text(build_request("patch", "h", "/", &[], b""));
        assert!(req.contains("\r\nContent-Length: 0\r\n"), "{req}");
    }

    #[test]
    fn user_headers_replace_defaults_case_insensitively() {
        let headers = h(&[
            ("user-agent", "curl/8"),
            ("ACCEPT", "text/event-stream"),
            ("Authorization", "Bearer x"),
            ("host", "other"),
        ]);
        let req = text(build_request("POST", "h", "/v1", &headers, b"{}"));
        assert_eq!(
            req,
            "POST /v1 HTTP/1.1\r\nContent-Length: 2\r\nuser-agent: curl/8\r\n\
             ACCEPT: text/event-stream\r\nAuthorization: Bearer x\r\nhost: other\r\n\r\n{}"
        );
    }

    #[test]
    fn user_framing_headers_suppress_content_length() {
        let req = text(build_request(
            "POST",
            "h",
            "",
            &h(&[("Content-Length", "5")]),
            b"hello",
        ));
        assert_eq!(req.matches("Content-Length").count(), 1);
        assert!(req.starts_with("POST / HTTP/1.1\r\n"));
        let req = text(build_request(
            "POST",
            "h",
            "/",
            &h(&[("Transfer-Encoding", "chunked")]),
            b"0\r\n\r\n",
        ));
        assert!(!req.contains("Content-Length"));
    }

    #[test]
    fn token_and_value_checks() {
        assert!(is_token("X-Api-Key"));
        assert!(is_token("GET"));
        assert!(!is_token(""));
        assert!(!is_token("Bad Name"));
        assert!(!is_token("a:b"));
        assert!(is_field_value("Bearer abc"));
        assert!(is_field_value(""));
        assert!(!is_field_value("a\r\nInjected: 1"));
        assert!(!is_field_value(" lead"));
        assert!(!is_field_value("trail\t"));
    }
}
