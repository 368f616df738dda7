//! The URIs a client declares about itself, checked before anything is
//! kept: its redirect URIs (RFC 7591 §2, MCP 2026-07-28 "Redirect URIs":
//! `https`, or `http` on a loopback host, RFC 8252 §7.3) and the https URL
//! that is its `client_id` in a metadata document
//! (draft-ietf-oauth-client-id-metadata-document §3).
//!
//! No URL library is in the tree; what is needed is small: a scheme, an
//! authority without userinfo, and a path, read strictly enough that two
//! parsers cannot disagree on where a URI goes.

/// Longest URI accepted, in bytes.
pub const MAX_URI: usize = 2048;

/// The parts of an absolute `scheme://authority/path?query` URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts<'a> {
    /// The scheme, lowercase as required here.
    pub scheme: &'a str,
    /// The host, without brackets for IPv6 literals.
    pub host: &'a str,
    /// The path (may be empty).
    pub path: &'a str,
    /// True when a `?query` follows the path.
    pub has_query: bool,
}

/// Splits `uri`, refusing what this module never accepts anywhere: a
/// fragment, userinfo, whitespace or control characters, a missing host,
/// an over-long URI, and any scheme but `http`/`https`.
pub fn parts(uri: &str) -> Option<Parts<'_>> {
    if uri.len() > MAX_URI
        || uri.contains('#')
        || uri.bytes().any(|b| b <= 0x20 || b >= 0x7f || b == b'\\')
    {
        return None;
    }
    let (scheme, rest) = uri.split_once("://")?;
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.contains('@') {
        return None;
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map(|(h, _)| h)?,
        None => authority.split(':').next().unwrap_or_default(),
    };
    if host.is_empty() {
        return None;
    }
    let port = authority.rsplit_once("]:").map(|(_, p)| p).or_else(|| {
        (!authority.starts_with('['))
            .then(|| authority.split_once(':').map(|(_, p)| p))
            .flatten()
    });
    if let Some(port) = port
        && (port.is_empty() || port.parse::<u16>().is_err())
    {
        return None;
    }
    let (path, has_query) = match tail.split_once('?') {
        Some((path, _)) => (path, true),
        None => (tail, false),
    };
    Some(Parts {
        scheme,
        host,
        path,
        has_query,
    })
}

/// True for the hosts RFC 8252 §7.3 and the MCP text treat as loopback.
pub fn is_loopback_host(host: &str) -> bool {
    host == "127.0.0.1" || host == "::1" || host.eq_ignore_ascii_case("localhost")
}

/// A redirect URI a client may register: `https`, or `http` on a loopback
/// host; no fragment, no userinfo.
pub fn is_acceptable_redirect_uri(uri: &str) -> bool {
    match parts(uri) {
        Some(p) if p.scheme == "https" => true,
        Some(p) => is_loopback_host(p.host),
        None => false,
    }
}

/// True when `uri` is a loopback redirect (the consent page warns when a
/// metadata document lists only such: anyone can publish one).
pub fn is_loopback_redirect(uri: &str) -> bool {
    parts(uri).is_some_and(|p| p.scheme == "http" && is_loopback_host(p.host))
}

/// CIMD §3: a `client_id` URL "MUST contain a path component", and "MUST
/// NOT contain single-dot or double-dot path segments", fragment or
/// username/password; https only. A query is allowed by the draft (SHOULD
/// NOT), and refused here: nothing needs it, and it multiplies the URLs
/// that name one document.
pub fn is_acceptable_client_id_url(uri: &str) -> bool {
    let Some(p) = parts(uri) else {
        return false;
    };
    p.scheme == "https"
        && !p.has_query
        && p.path.len() > 1
        && !p.path.split('/').any(is_dot_segment)
}

/// `.` or `..`, percent-encoded or not (RFC 3986 §6.2.2.2 makes them equal).
fn is_dot_segment(segment: &str) -> bool {
    let lower = segment.to_ascii_lowercase().replace("%2e", ".");
    lower == "." || lower == ".."
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_are_https_or_loopback_http_without_fragment_or_userinfo() {
        for ok in [
            "https://app.example/cb",
            "http://127.0.0.1:3334/oauth/callback",
            "http://localhost/cb",
            "http://[::1]:8080/cb?x=1",
        ] {
            assert!(is_acceptable_redirect_uri(ok), "{ok}");
        }
        for bad in [
            "http://app.example/cb",
            "https://app.example/cb#frag",
            "https://user:pw@app.example/cb",
            "https://user@app.example/cb",
            "javascript:alert(1)",
            "myapp://cb",
            "https:///cb",
            "https://app.example:99999/cb",
            "https://app.example/c b",
            "http://127.0.0.1.evil.example/cb",
            "",
        ] {
            assert!(!is_acceptable_redirect_uri(bad), "{bad}");
        }
    }

    #[test]
    fn a_client_id_url_is_https_with_a_path_and_no_dot_segments() {
        assert!(is_acceptable_client_id_url(
            "https://app.example/oauth/client.json"
        ));
        assert!(is_acceptable_client_id_url("https://127.0.0.1:8443/c.json"));
        for bad in [
            "https://app.example",
            "https://app.example/",
            "http://app.example/client.json",
            "https://app.example/a/../client.json",
            "https://app.example/a/./client.json",
            "https://app.example/a/%2E%2e/client.json",
            "https://app.example/client.json#x",
            "https://u:p@app.example/client.json",
            "https://app.example/client.json?v=1",
        ] {
            assert!(!is_acceptable_client_id_url(bad), "{bad}");
        }
    }

    #[test]
    fn loopback_redirects_are_told_apart() {
        assert!(is_loopback_redirect("http://localhost:1234/cb"));
        assert!(!is_loopback_redirect("https://localhost/cb"));
        assert!(!is_loopback_redirect("https://app.example/cb"));
    }
}
