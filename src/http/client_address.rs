//! The address a page request comes from, which user code attempts are
//! counted by (`authz::usercode`).
//!
//! By default it is the connection's peer, and headers such as
//! `X-Forwarded-For` are ignored: anyone can write them, so believing them
//! would give a guesser a fresh address per request. Behind a reverse proxy
//! every request comes from the proxy, so the operator names the header the
//! proxy writes and how many proxies append to it (`trusted_proxy`); the
//! client is then the entry that many places from the right, the one the
//! outermost trusted proxy wrote. Entries further left came from the client
//! and are never read.

use std::net::IpAddr;

use serde::Deserialize;
use warp::http::{HeaderMap, HeaderName};

/// `trusted_proxy = { header = "X-Forwarded-For", hops = 1 }` as the file
/// writes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedProxyEntry {
    /// The header the proxy writes the client's address into:
    /// `X-Forwarded-For`, `X-Real-IP`, or `Forwarded` (RFC 7239 `for=`).
    pub header: String,
    /// How many proxies in front of gnapd append to it (default 1).
    pub hops: Option<usize>,
}

/// A reverse proxy whose client address header is believed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedProxy {
    header: HeaderName,
    hops: usize,
    /// RFC 7239 syntax (`for=…;proto=…`) rather than bare addresses.
    forwarded: bool,
}

/// Why a `[trusted_proxy]` entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    /// Not a header name.
    #[error("trusted_proxy.header `{0}` is not a header name")]
    Header(String),
    /// `hops = 0`.
    #[error("trusted_proxy.hops must be at least 1")]
    NoHops,
}

impl TrustedProxy {
    /// Checks the file's entry: a valid header name, at least one hop.
    pub fn from_entry(entry: &TrustedProxyEntry) -> Result<Self, ProxyError> {
        let header = HeaderName::from_bytes(entry.header.as_bytes())
            .map_err(|_| ProxyError::Header(entry.header.clone()))?;
        let hops = entry.hops.unwrap_or(1);
        if hops == 0 {
            return Err(ProxyError::NoHops);
        }
        let forwarded = header == warp::http::header::FORWARDED;
        Ok(Self {
            header,
            hops,
            forwarded,
        })
    }

    /// The client's address according to the proxies, or `peer` when the
    /// header is absent or the entry the proxies wrote is not an address
    /// (those requests then share the proxy's count: fail closed).
    pub fn client_address(&self, headers: &HeaderMap, peer: IpAddr) -> IpAddr {
        // Several header lines read as one list (RFC 9110 §5.3).
        let entries: Vec<&str> = headers
            .get_all(&self.header)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        if entries.is_empty() {
            return peer;
        }
        let entry = entries[entries.len().saturating_sub(self.hops)];
        let node = if self.forwarded {
            forwarded_for(entry)
        } else {
            Some(entry)
        };
        node.and_then(parse_node).unwrap_or(peer)
    }
}

/// The `for` parameter of one RFC 7239 element (`for=…;proto=…`).
fn forwarded_for(element: &str) -> Option<&str> {
    element.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("for")
            .then(|| value.trim().trim_matches('"'))
    })
}

/// An address with or without a port: `192.0.2.1`, `192.0.2.1:443`,
/// `2001:db8::1`, `[2001:db8::1]:443`. `unknown` and obfuscated names
/// (RFC 7239 §6) are not addresses.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = node.strip_prefix('[') {
        let (v6, _) = rest.split_once(']')?;
        return v6.parse().ok();
    }
    let (v4, port) = node.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    v4.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// The source a page request counts under: the client's address (through
/// `trusted` proxies, if configured), else `unknown`.
pub fn source(trusted: Option<&TrustedProxy>, headers: &HeaderMap, peer: Option<IpAddr>) -> String {
    match (trusted, peer) {
        (Some(proxy), Some(peer)) => proxy.client_address(headers, peer).to_string(),
        (None, Some(peer)) => peer.to_string(),
        (_, None) => "unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxy(header: &str, hops: usize) -> TrustedProxy {
        TrustedProxy::from_entry(&TrustedProxyEntry {
            header: header.into(),
            hops: Some(hops),
        })
        .unwrap()
    }

    fn headers(name: &str, values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        map
    }

    const PEER: &str = "127.0.0.1";

    fn client(p: &TrustedProxy, name: &str, values: &[&str]) -> String {
        p.client_address(&headers(name, values), PEER.parse().unwrap())
            .to_string()
    }

    #[test]
    fn without_a_trusted_proxy_forwarding_headers_are_ignored() {
        let h = headers("x-forwarded-for", &["203.0.113.9"]);
        assert_eq!(source(None, &h, Some(PEER.parse().unwrap())), PEER);
        assert_eq!(source(None, &h, None), "unknown");
    }

    #[test]
    fn the_client_is_the_entry_the_outermost_trusted_proxy_wrote() {
        let one = proxy("X-Forwarded-For", 1);
        assert_eq!(
            client(&one, "x-forwarded-for", &["203.0.113.9"]),
            "203.0.113.9"
        );
        // Entries the client wrote itself, left of the proxy's, are not read.
        assert_eq!(
            client(&one, "x-forwarded-for", &["6.6.6.6, 203.0.113.9"]),
            "203.0.113.9"
        );
        assert_eq!(
            client(&one, "x-forwarded-for", &["6.6.6.6", "203.0.113.9"]),
            "203.0.113.9"
        );
        let two = proxy("X-Forwarded-For", 2);
        assert_eq!(
            client(&two, "x-forwarded-for", &["6.6.6.6, 203.0.113.9, 10.0.0.2"]),
            "203.0.113.9"
        );
        // Fewer entries than hops: the leftmost, which a trusted proxy wrote.
        assert_eq!(
            client(&two, "x-forwarded-for", &["203.0.113.9"]),
            "203.0.113.9"
        );
        // No header, or not an address where the proxy writes: the peer.
        assert_eq!(client(&one, "x-other", &["203.0.113.9"]), PEER);
        assert_eq!(client(&one, "x-forwarded-for", &["1.2.3.4, junk"]), PEER);
        assert_eq!(client(&one, "x-forwarded-for", &["1.2.3.4, "]), PEER);
    }

    #[test]
    fn addresses_are_read_with_ports_brackets_and_rfc7239_syntax() {
        let xff = proxy("X-Forwarded-For", 1);
        for (value, want) in [
            ("2001:db8::1", "2001:db8::1"),
            ("[2001:db8::1]:443", "2001:db8::1"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("192.0.2.1:8080", "192.0.2.1"),
        ] {
            assert_eq!(client(&xff, "x-forwarded-for", &[value]), want, "{value}");
        }
        let fwd = proxy("Forwarded", 1);
        assert_eq!(
            client(
                &fwd,
                "forwarded",
                &["for=6.6.6.6, for=\"[2001:db8::7]:1\";proto=https"]
            ),
            "2001:db8::7"
        );
        assert_eq!(
            client(&fwd, "forwarded", &["For=192.0.2.60;by=x"]),
            "192.0.2.60"
        );
        assert_eq!(client(&fwd, "forwarded", &["for=unknown"]), PEER);
        assert_eq!(client(&fwd, "forwarded", &["for=_hidden"]), PEER);
    }

    #[test]
    fn a_bad_header_name_or_zero_hops_is_a_config_error() {
        for (header, hops) in [("Bad Header", Some(1)), ("X-Forwarded-For", Some(0))] {
            assert!(
                TrustedProxy::from_entry(&TrustedProxyEntry {
                    header: header.into(),
                    hops
                })
                .is_err()
            );
        }
    }
}
