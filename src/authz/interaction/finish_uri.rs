//! The finish URIs a client may give (RFC 9635 §4.2.1, §4.2.2), checked at
//! request time: where a push may go, and where a redirect may send the
//! browser.

use std::net::IpAddr;

use crate::authz::Failure;
use crate::proto::gnap::ErrorCode;

/// True for addresses a push must not reach unless configured: loopback,
/// private (RFC 1918, unique local), link-local, unspecified, multicast,
/// broadcast, documentation and shared (CGNAT) ranges, and every IPv6 form
/// that carries an IPv4 address to a translator or tunnel, whose IPv4 side
/// this check cannot see: mapped and translated (`::ffff:0:0/95`),
/// IPv4-compatible (`::/96`), NAT64 (`64:ff9b::/96`, `64:ff9b:1::/48`),
/// 6to4 (`2002::/16`) and Teredo (`2001::/32`).
pub(crate) fn is_internal_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && c == 0)
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal_address(IpAddr::V4(v4));
            }
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] & 0xffc0) == 0xfec0
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                // IPv4-compatible ::a.b.c.d and SIIT-translated ::ffff:0:a.b.c.d.
                || s[..6] == [0; 6]
                || s[..6] == [0, 0, 0, 0, 0xffff, 0]
                // NAT64: the well-known prefix and the local-use /48.
                || (s[0] == 0x0064 && s[1] == 0xff9b && (s[2..6] == [0; 4] || s[2] == 1))
                // 6to4 and Teredo.
                || s[0] == 0x2002
                || (s[0] == 0x2001 && s[1] == 0)
        }
    }
}

/// Checks a push URI at request time: `http` or `https`, and a literal
/// internal address only when allowed. Host names are checked again, with
/// every resolved address, when the push is made.
pub(super) fn check_push_uri(uri: &str, allow_internal: bool) -> Result<(), Failure> {
    let refuse = |why: &str| {
        Failure::gnap(
            ErrorCode::InvalidRequest,
            &format!("interact.finish.uri: {why}"),
        )
    };
    let parsed: ::http::Uri = uri.parse().map_err(|_| refuse("not a usable URI"))?;
    if !matches!(parsed.scheme_str(), Some("http" | "https")) {
        return Err(refuse("a push goes to an http or https URI"));
    }
    let host = parsed.host().ok_or_else(|| refuse("no host"))?;
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = literal.parse::<IpAddr>()
        && !allow_internal
        && is_internal_address(ip)
    {
        return Err(refuse(
            "this server does not push to private, loopback or link-local addresses",
        ));
    }
    Ok(())
}

/// Checks a `redirect` finish URI at request time: `https`, or `http` to
/// the loopback interface only (`127.0.0.0/8`, `[::1]`, `localhost`), where
/// a native client listens (RFC 8252 §7.3). The browser carries
/// `interact_ref` and `hash` there (§4.2.1), so plain `http` across a
/// network would hand them to anyone on the path (RFC 9700 §2.6 asks for
/// TLS on redirect URIs for the same reason). A bad value is
/// `invalid_request` (§3.6: "includes an invalid parameter value").
pub(super) fn check_redirect_uri(uri: &str) -> Result<(), Failure> {
    let refuse = |why: &str| {
        Failure::gnap(
            ErrorCode::InvalidRequest,
            &format!("interact.finish.uri: {why}"),
        )
    };
    let parsed: ::http::Uri = uri.parse().map_err(|_| refuse("not a usable URI"))?;
    let host = parsed.host().ok_or_else(|| refuse("no host"))?;
    match parsed.scheme_str() {
        Some("https") => Ok(()),
        Some("http") if is_loopback_host(host) => Ok(()),
        Some("http") => Err(refuse(
            "a redirect finish over plain http goes to loopback only (127.0.0.1, [::1], localhost); use https",
        )),
        _ => Err(refuse("a redirect finish goes to an https URI")),
    }
}

/// True for `localhost`, `127.0.0.0/8` and `[::1]` as a URI host.
fn is_loopback_host(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6
            .parse::<std::net::Ipv6Addr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_recognized() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:0:7f00:1",
            "::7f00:1",
            "::a9fe:a9fe",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::5db8:d822",
            "64:ff9b:1::a00:1",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "fec0::1",
            "192.0.0.8",
        ] {
            assert!(is_internal_address(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "2606:2800:220:1:248:1893:25c8:1946",
            "8.8.8.8",
            "2001:4860:4860::8888",
            "64:ff9c::1",
        ] {
            assert!(!is_internal_address(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn push_uris_are_checked_at_request_time() {
        assert!(check_push_uri("https://client.example/push", false).is_ok());
        assert!(check_push_uri("http://127.0.0.1:9/push", true).is_ok());
        for bad in [
            "http://127.0.0.1:9/push",
            "https://[::1]/p",
            "http://169.254.169.254/latest",
            "ftp://client.example/p",
            "app://x/y",
        ] {
            assert!(check_push_uri(bad, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn redirect_finish_uris_are_https_or_loopback_http() {
        for good in [
            "https://client.example/cb",
            "https://10.0.0.1/cb",
            "http://127.0.0.1:9/cb",
            "http://127.9.8.7/cb?x=1",
            "http://[::1]:8080/cb",
            "http://localhost:1/cb",
            "http://LocalHost/cb",
        ] {
            assert!(check_redirect_uri(good).is_ok(), "{good}");
        }
        for bad in [
            "http://client.example/cb",
            "http://10.0.0.1/cb",
            "http://localhost.evil.example/cb",
            "http://127.0.0.1.evil.example/cb",
            "http://[::ffff:127.0.0.1]/cb",
            "http://128.0.0.1/cb",
            "javascript:alert(1)",
            "ftp://client.example/cb",
            "/relative",
            "",
        ] {
            assert!(check_redirect_uri(bad).is_err(), "{bad}");
        }
    }
}
