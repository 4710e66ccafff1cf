//! `pacer serve --allow-target`: which targets the API may load.
//!
//! This module owns parsing the entries (`HOST`, `HOST:PORT`, an IP, `[IPv6]:PORT`, a CIDR) and
//! deciding whether a target, given as its name and the addresses it resolved to, is allowed.
//! Resolving the target is the engine's ([`crate::engine::resolve`]); the API resolves once,
//! checks here, and runs on exactly those addresses, so a name cannot resolve to an allowed
//! address for the check and elsewhere for the run.
//!
//! The rule: every address the target resolves to must be allowed by some entry, and an entry
//! with a port allows that port only. A CIDR or IP entry allows the addresses inside it. A host
//! name entry allows a target spelled with that same name (whatever it resolves to: the operator
//! trusted the name), and also the addresses the name resolved to once, when the server started
//! ([`Allowlist::resolve`]); they are not looked up again, so a name whose addresses change needs a
//! restart. IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) count as the IPv4 address.

use std::fmt;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::str::FromStr;

/// One `--allow-target` entry, as given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllowTarget {
    /// An IP literal (prefix = its full length) or a CIDR block, with a port for `IP:PORT`.
    Net {
        ip: IpAddr,
        prefix: u8,
        port: Option<u16>,
    },
    /// A host name, lowercase, without a trailing dot.
    Host { name: String, port: Option<u16> },
}

impl FromStr for AllowTarget {
    type Err = String;

    fn from_str(s: &str) -> Result<AllowTarget, String> {
        let s = s.trim();
        let bad = |why: &str| format!("{s:?} is not HOST, HOST:PORT, an IP or a CIDR: {why}");
        if s.is_empty() {
            return Err(bad("empty"));
        }
        if let Some((addr, len)) = s.rsplit_once('/') {
            let addr = addr.trim_start_matches('[').trim_end_matches(']');
            let ip: IpAddr = addr.parse().map_err(|_| bad("not an IP before '/'"))?;
            let prefix: u8 = len.parse().map_err(|_| bad("bad prefix length"))?;
            if prefix > full_prefix(ip) {
                return Err(bad("prefix longer than the address"));
            }
            return Ok(AllowTarget::Net {
                ip: ip.to_canonical(),
                prefix,
                port: None,
            });
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(net(ip, None));
        }
        if let Ok(sa) = s.parse::<SocketAddr>() {
            return Ok(net(sa.ip(), Some(sa.port())));
        }
        if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            let ip: IpAddr = inner.parse().map_err(|_| bad("not an IPv6 address"))?;
            return Ok(net(ip, None));
        }
        if s.contains('[') || s.contains(']') {
            return Err(bad("brackets hold an IPv6 address"));
        }
        let (name, port) = match s.rsplit_once(':') {
            Some((name, port)) => (
                name,
                Some(port.parse::<u16>().map_err(|_| bad("bad port"))?),
            ),
            None => (s, None),
        };
        let name = normalize(name);
        let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
        if name.is_empty() || !name.chars().all(valid) {
            return Err(bad("bad host name"));
        }
        Ok(AllowTarget::Host { name, port })
    }
}

impl fmt::Display for AllowTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllowTarget::Net { ip, prefix, port } => match (port, *prefix == full_prefix(*ip)) {
                (Some(p), _) => write!(f, "{}", SocketAddr::new(*ip, *p)),
                (None, true) => write!(f, "{ip}"),
                (None, false) => write!(f, "{ip}/{prefix}"),
            },
            AllowTarget::Host {
                name,
                port: Some(p),
            } => write!(f, "{name}:{p}"),
            AllowTarget::Host { name, port: None } => f.write_str(name),
        }
    }
}

fn net(ip: IpAddr, port: Option<u16>) -> AllowTarget {
    let ip = ip.to_canonical();
    AllowTarget::Net {
        ip,
        prefix: full_prefix(ip),
        port,
    }
}

fn full_prefix(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { 32 } else { 128 }
}

/// A host name as compared: lowercase, no trailing dot (`Example.COM.` is `example.com`).
fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Whether `ip` is inside `net/prefix`. Both are canonical (no IPv4-mapped IPv6).
fn contains(net: IpAddr, prefix: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

/// The entries with their host names resolved once; `None` in the server means no
/// `--allow-target` was given, and every target is allowed.
#[derive(Clone, Debug)]
pub struct Allowlist {
    entries: Vec<(AllowTarget, Vec<IpAddr>)>,
}

impl Allowlist {
    /// Resolves every host name entry now. A name that does not resolve still allows a target
    /// spelled with it; the second value lists those names, for a warning at start.
    pub fn resolve(targets: &[AllowTarget]) -> (Allowlist, Vec<String>) {
        let mut unresolved = Vec::new();
        let entries = targets
            .iter()
            .map(|t| {
                let addrs = match t {
                    AllowTarget::Net { .. } => Vec::new(),
                    AllowTarget::Host { name, port } => {
                        let found: Vec<IpAddr> = (name.as_str(), port.unwrap_or(0))
                            .to_socket_addrs()
                            .map(|it| it.map(|a| a.ip().to_canonical()).collect())
                            .unwrap_or_default();
                        if found.is_empty() {
                            unresolved.push(name.clone());
                        }
                        found
                    }
                };
                (t.clone(), addrs)
            })
            .collect();
        (Allowlist { entries }, unresolved)
    }

    /// Checks a target: `host` as written in its URL (IPv6 without brackets), `addrs` what it
    /// resolved to (empty if it did not). The error is the 403's message and names the target.
    pub fn check(&self, host: &str, port: u16, addrs: &[SocketAddr]) -> Result<(), String> {
        let name = normalize(host);
        let shown = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let port_ok = |p: &Option<u16>| p.is_none_or(|p| p == port);
        let by_name = self.entries.iter().any(|(t, _)| match t {
            AllowTarget::Host { name: n, port: p } => *n == name && port_ok(p),
            AllowTarget::Net { .. } => false,
        });
        if by_name {
            return Ok(());
        }
        if addrs.is_empty() {
            return Err(format!(
                "target {shown} is not allowed by --allow-target (its name does not resolve)"
            ));
        }
        let allowed = |ip: IpAddr| {
            self.entries.iter().any(|(t, resolved)| match t {
                AllowTarget::Net {
                    ip: net,
                    prefix,
                    port: p,
                } => port_ok(p) && contains(*net, *prefix, ip),
                AllowTarget::Host { port: p, .. } => port_ok(p) && resolved.contains(&ip),
            })
        };
        match addrs
            .iter()
            .map(|a| a.ip().to_canonical())
            .find(|ip| !allowed(*ip))
        {
            None => Ok(()),
            Some(ip) if ip.to_string() == host => {
                Err(format!("target {shown} is not allowed by --allow-target"))
            }
            Some(ip) => Err(format!(
                "target {shown} is not allowed by --allow-target (it resolves to {ip})"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> AllowTarget {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn list(entries: &[&str]) -> Allowlist {
        Allowlist::resolve(&entries.iter().map(|s| p(s)).collect::<Vec<_>>()).0
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn entries_parse_and_print_back() {
        for (given, shown) in [
            ("10.0.0.1", "10.0.0.1"),
            ("10.0.0.1:8080", "10.0.0.1:8080"),
            ("10.0.0.0/8", "10.0.0.0/8"),
            ("10.1.2.3/8", "10.1.2.3/8"),
            ("0.0.0.0/0", "0.0.0.0/0"),
            ("::1", "::1"),
            ("[::1]", "::1"),
            ("[::1]:8443", "[::1]:8443"),
            ("fd00::/8", "fd00::/8"),
            ("[fd00::]/8", "fd00::/8"),
            ("::ffff:10.0.0.1", "10.0.0.1"),
            ("API.Example.com.", "api.example.com"),
            ("api.example.com:443", "api.example.com:443"),
            ("localhost", "localhost"),
            (" my_host ", "my_host"),
        ] {
            assert_eq!(p(given).to_string(), shown, "{given}");
        }
        assert_eq!(
            p("[::1]:8443"),
            AllowTarget::Net {
                ip: "::1".parse().unwrap(),
                prefix: 128,
                port: Some(8443)
            }
        );
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/x",
            "host/8",
            "host:http",
            "host:70000",
            "[host]:80",
            "[::1",
            "a b",
            "http://host",
            ":80",
        ] {
            assert!(bad.parse::<AllowTarget>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn cidr_matching_is_bitwise() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(contains(ip("10.0.0.0"), 8, ip("10.255.1.2")));
        assert!(!contains(ip("10.0.0.0"), 8, ip("11.0.0.0")));
        assert!(contains(ip("192.168.1.0"), 23, ip("192.168.0.9")));
        assert!(!contains(ip("192.168.1.0"), 24, ip("192.168.0.9")));
        assert!(contains(ip("0.0.0.0"), 0, ip("8.8.8.8")));
        assert!(contains(ip("10.0.0.7"), 32, ip("10.0.0.7")));
        assert!(!contains(ip("10.0.0.7"), 32, ip("10.0.0.6")));
        assert!(contains(ip("fd00::"), 8, ip("fdab::1")));
        assert!(!contains(ip("fd00::"), 8, ip("fe80::1")));
        assert!(contains(ip("::"), 0, ip("2001:db8::1")));
        assert!(!contains(ip("::"), 0, ip("1.2.3.4")), "families never mix");
        assert!(!contains(ip("0.0.0.0"), 0, ip("::1")));
    }

    #[test]
    fn every_resolved_address_must_be_allowed() {
        let l = list(&["10.0.0.0/8", "192.168.1.5:8080", "::1"]);
        assert!(l.check("10.1.2.3", 80, &[sa("10.1.2.3:80")]).is_ok());
        assert!(l.check("ten.internal", 80, &[sa("10.9.9.9:80")]).is_ok());
        assert!(
            l.check("v4mapped", 80, &[sa("[::ffff:10.0.0.1]:80")])
                .is_ok()
        );
        // One address outside is enough to refuse, and the message names target and address.
        let e = l
            .check("mixed.example", 80, &[sa("10.0.0.1:80"), sa("8.8.8.8:80")])
            .unwrap_err();
        assert_eq!(
            e,
            "target mixed.example:80 is not allowed by --allow-target (it resolves to 8.8.8.8)"
        );
        assert!(
            l.check("192.168.1.5", 8080, &[sa("192.168.1.5:8080")])
                .is_ok()
        );
        let e = l
            .check("192.168.1.5", 8081, &[sa("192.168.1.5:8081")])
            .unwrap_err();
        assert_eq!(
            e,
            "target 192.168.1.5:8081 is not allowed by --allow-target"
        );
        assert!(l.check("::1", 9, &[sa("[::1]:9")]).is_ok());
        let e = l.check("::2", 9, &[sa("[::2]:9")]).unwrap_err();
        assert_eq!(e, "target [::2]:9 is not allowed by --allow-target");
        let e = l.check("nowhere.invalid", 80, &[]).unwrap_err();
        assert!(e.contains("nowhere.invalid:80") && e.contains("does not resolve"));
    }

    #[test]
    fn a_host_name_allows_itself_and_its_addresses_at_start() {
        // `localhost` resolves without a network; its addresses are whatever this machine says.
        let at_start: Vec<IpAddr> = ("localhost", 0)
            .to_socket_addrs()
            .unwrap()
            .map(|a| a.ip().to_canonical())
            .collect();
        let l = list(&["LocalHost.:8081"]);
        // The name itself, on its port, whatever it resolves to now.
        assert!(
            l.check("localhost", 8081, &[sa("203.0.113.9:8081")])
                .is_ok()
        );
        assert!(l.check("localhost.", 8081, &[]).is_ok());
        assert!(l.check("localhost", 8082, &[sa("127.0.0.1:8082")]).is_err());
        // Another name that resolves to one of localhost's start-up addresses.
        for ip in &at_start {
            let a = SocketAddr::new(*ip, 8081);
            assert!(l.check("alias.test", 8081, &[a]).is_ok(), "{a}");
        }
        // ... but not elsewhere.
        let e = l
            .check("alias.test", 8081, &[sa("203.0.113.9:8081")])
            .unwrap_err();
        assert!(
            e.contains("alias.test:8081") && e.contains("203.0.113.9"),
            "{e}"
        );
    }
}
