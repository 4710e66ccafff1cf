//! How a request ended, as small `Copy` values with static names: the worker counts them in a map
//! without allocating, and the report turns them into the contract's error names once, at the end.

use std::io;

/// A request that did not get a usable response. `name` gives the report's stable text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Failure {
    Timeout,
    Refused,
    Reset,
    ClosedBeforeResponse,
    /// The host did not resolve; the name carries the host.
    Dns,
    /// Waited `timeout` past its intended time for a free worker; the name carries the worker count.
    NotSent,
    Tls(&'static str),
    Invalid(&'static str),
    Stream(&'static str),
    /// A server's own error message in the stream, interned per worker (index into its table).
    StreamMessage(u16),
    Connect(&'static str),
}

impl Failure {
    /// The report's name. `host` and `workers` fill the two names that carry them; `messages` is the
    /// worker's table of interned stream error messages.
    pub fn name(self, host: &str, workers: usize, messages: &[Box<str>]) -> String {
        match self {
            Failure::Timeout => "timeout".into(),
            Failure::Refused => "connection refused".into(),
            Failure::Reset => "connection reset".into(),
            Failure::ClosedBeforeResponse => "connection closed before response".into(),
            Failure::Dns => format!("dns: {host}"),
            Failure::NotSent => format!("not sent: all {workers} workers busy"),
            Failure::Tls(reason) => format!("tls: {reason}"),
            Failure::Invalid(reason) => format!("invalid response: {reason}"),
            Failure::Stream(reason) => format!("stream error: {reason}"),
            Failure::StreamMessage(i) => match messages.get(usize::from(i)) {
                Some(m) => format!("stream error: {m}"),
                None => "stream error: (message lost)".into(),
            },
            Failure::Connect(reason) => format!("connect error: {reason}"),
        }
    }

    /// Classifies a socket error seen while connecting, reading or writing.
    pub fn from_io(e: &io::Error) -> Failure {
        use io::ErrorKind as K;
        match e.kind() {
            K::ConnectionRefused => Failure::Refused,
            K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => Failure::Reset,
            K::TimedOut => Failure::Timeout,
            K::UnexpectedEof => Failure::ClosedBeforeResponse,
            K::AddrNotAvailable => Failure::Connect("address not available (out of local ports?)"),
            K::NetworkUnreachable => Failure::Connect("network unreachable"),
            K::HostUnreachable => Failure::Connect("host unreachable"),
            K::PermissionDenied => Failure::Connect("permission denied"),
            _ if e.raw_os_error() == Some(24) => {
                Failure::Connect("too many open files (raise ulimit -n)")
            }
            _ => Failure::Connect("i/o error"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_contract() {
        let msgs: Vec<Box<str>> = vec!["mock overloaded".into()];
        let n = |f: Failure| f.name("example.invalid", 5, &msgs);
        assert_eq!(n(Failure::Timeout), "timeout");
        assert_eq!(n(Failure::Refused), "connection refused");
        assert_eq!(n(Failure::Reset), "connection reset");
        assert_eq!(
            n(Failure::ClosedBeforeResponse),
            "connection closed before response"
        );
        assert_eq!(n(Failure::Dns), "dns: example.invalid");
        assert_eq!(n(Failure::NotSent), "not sent: all 5 workers busy");
        assert_eq!(
            n(Failure::Tls("invalid certificate: unknown issuer")),
            "tls: invalid certificate: unknown issuer"
        );
        assert_eq!(
            n(Failure::Invalid("bad chunk size")),
            "invalid response: bad chunk size"
        );
        assert_eq!(
            n(Failure::StreamMessage(0)),
            "stream error: mock overloaded"
        );
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(Failure::from_io(&refused), Failure::Refused);
    }
}
