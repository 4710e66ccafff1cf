//! Where requests go: an absolute `http://` or `https://` URL parsed into host, port, `Host`
//! header and request target. Only what an HTTP/1.1 client needs; resolving the host is the
//! engine's.

/// Where requests go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub tls: bool,
    /// Host name or IP literal, without IPv6 brackets.
    pub host: String,
    pub port: u16,
    /// The `Host` header value (with brackets and a non-default port).
    pub host_header: String,
    /// Path and query, at least "/".
    pub path: String,
}

impl Target {
    /// Parses an absolute `http://` or `https://` URL with a host.
    pub fn parse(url: &str) -> Result<Target, String> {
        let url = url.trim();
        let (tls, rest) = if let Some(r) = strip_prefix_ci(url, "http://") {
            (false, r)
        } else if let Some(r) = strip_prefix_ci(url, "https://") {
            (true, r)
        } else {
            return Err("URL scheme should be 'http' or 'https'".into());
        };
        let rest = rest.split('#').next().unwrap_or("");
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'?' => (&rest[..i], format!("/{}", &rest[i..])),
            Some(i) => (&rest[..i], rest[i..].to_string()),
            None => (rest, "/".to_string()),
        };
        if authority.contains('@') {
            return Err("URL must not contain user information".into());
        }
        let default_port = if tls { 443 } else { 80 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let end = v6.find(']').ok_or("URL has an unterminated IPv6 literal")?;
            let host = &v6[..end];
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err("URL has an invalid IPv6 literal".into());
            }
            let port = parse_port(&v6[end + 1..], default_port)?;
            (host.to_string(), port)
        } else {
            let (h, p) = match authority.rfind(':') {
                Some(i) => (&authority[..i], parse_port(&authority[i..], default_port)?),
                None => (authority, default_port),
            };
            (h.to_ascii_lowercase(), p)
        };
        if host.is_empty() {
            return Err("URL must have a host".into());
        }
        if host
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || b == b'/')
        {
            return Err("URL host has invalid characters".into());
        }
        if path
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err("URL path must not contain spaces or control characters".into());
        }
        let bracketed = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.clone()
        };
        let host_header = if port == default_port {
            bracketed
        } else {
            format!("{bracketed}:{port}")
        };
        Ok(Target {
            tls,
            host,
            port,
            host_header,
            path,
        })
    }

    /// The URL requests really go to, rebuilt from the parts (after any path rewrite).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}{}", self.host_header, self.path)
    }

    /// [`Target::url`] fit to echo: its query's values hidden ([`public_url`]).
    pub fn public_url(&self) -> String {
        public_url(&self.url())
    }
}

/// What stands for a hidden query value.
pub const HIDDEN: &str = "***";

/// `url` as it may be echoed (a report's `config.url`, a shard's state, the runs the API lists,
/// the HTML page): every query value replaced by `HIDDEN`, names kept, the fragment dropped. A
/// query often carries a key (`?api_key=...`), and the echo goes wherever the report goes. The
/// one place a URL is made fit to show; the request itself is sent as given.
pub fn public_url(url: &str) -> String {
    let url = url.trim();
    let url = url.split('#').next().unwrap_or("");
    let Some((base, query)) = url.split_once('?') else {
        return url.to_string();
    };
    let params: Vec<String> = query
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((name, "")) => format!("{name}="),
            Some((name, _)) => format!("{name}={HIDDEN}"),
            // A bare item may be the secret itself (`?s3cret`).
            None if p.is_empty() => String::new(),
            None => HIDDEN.to_string(),
        })
        .collect();
    format!("{base}?{}", params.join("&"))
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    if s.len() >= prefix.len()
        && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
    {
        Some(&s[prefix.len()..])
    } else {
        None
    }
}

/// `rest` is empty or ":PORT".
fn parse_port(rest: &str, default: u16) -> Result<u16, String> {
    match rest.strip_prefix(':') {
        None if rest.is_empty() => Ok(default),
        None => Err("URL has garbage after the host".into()),
        Some("") => Ok(default),
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => Err(format!("URL port {p:?} is not a port number")),
            Ok(port) => Ok(port),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_parsing() {
        let t = Target::parse("http://localhost:8081").unwrap();
        assert_eq!(
            (t.tls, t.host.as_str(), t.port, t.path.as_str()),
            (false, "localhost", 8081, "/")
        );
        assert_eq!(t.host_header, "localhost:8081");
        assert_eq!(t.url(), "http://localhost:8081/");
        let t = Target::parse("https://API.example.com/v1/completions?x=1#frag").unwrap();
        assert_eq!(
            (t.tls, t.port, t.path.as_str()),
            (true, 443, "/v1/completions?x=1")
        );
        assert_eq!(t.host_header, "api.example.com");
        assert_eq!(t.url(), "https://api.example.com/v1/completions?x=1");
        let t = Target::parse("http://[::1]:9000/a").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.host_header.as_str()),
            ("::1", 9000, "[::1]:9000")
        );
        let t = Target::parse("http://h?q").unwrap();
        assert_eq!(t.path, "/?q");
        for bad in [
            "ftp://x/",
            "http://",
            "http:///x",
            "http://a:0/",
            "http://a:99999/",
            "x",
            "http://u@h/",
            "http://[::1/",
            "http://a b/",
            "http://h/a b",
            "http://h:8o/",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn echoed_urls_hide_every_query_value_and_keep_the_names() {
        assert_eq!(
            public_url(" https://h/v1/x?api_key=s3cret&model=m&flag=&s3cret2#frag "),
            "https://h/v1/x?api_key=***&model=***&flag=&***"
        );
        assert_eq!(public_url("http://h/a"), "http://h/a");
        assert_eq!(public_url("http://h/?"), "http://h/?");
        assert_eq!(public_url("http://h/?a=1&&b=2"), "http://h/?a=***&&b=***");
        let t = Target::parse("http://H:81/p?key=v=w").unwrap();
        assert_eq!(t.public_url(), "http://h:81/p?key=***");
    }
}
