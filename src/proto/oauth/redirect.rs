//! Redirect URIs: which may be registered, and when a requested one is a
//! registered one.
//!
//! OAuth 2.1 §2.3.1 and §4.1.1: redirect URIs are compared as exact
//! strings, with one exception, RFC 8252 §7.3: a loopback redirect
//! (`http://127.0.0.1`, `http://[::1]`, and `http://localhost`, which
//! real clients register although §8.3 discourages it) matches on any
//! port, because a native app listens on whatever port it got. The MCP
//! authorization specification allows only `https` and loopback `http`
//! redirects; a fragment is never allowed (RFC 6749 §3.1.2).

use crate::proto::httpsig::message::TargetUri;

/// Longest redirect URI accepted, in bytes.
pub const MAX_LEN: usize = 2048;

/// Why a redirect URI cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RedirectError {
    /// Not an absolute URI of printable ASCII, too long, or with userinfo.
    #[error("the redirect URI is not an absolute URI")]
    Malformed,
    /// RFC 6749 §3.1.2: "MUST NOT include a fragment component".
    #[error("the redirect URI has a fragment")]
    Fragment,
    /// Neither `https` nor loopback `http`.
    #[error("a redirect URI must be https, or http on a loopback host")]
    Scheme,
}

/// A redirect URI split into what the matching rules compare.
struct Parts<'a> {
    scheme: String,
    host: String,
    port: Option<&'a str>,
    rest: &'a str,
}

fn parts(uri: &str) -> Result<Parts<'_>, RedirectError> {
    if uri.len() > MAX_LEN {
        return Err(RedirectError::Malformed);
    }
    if uri.contains('#') {
        return Err(RedirectError::Fragment);
    }
    let parsed = TargetUri::parse(uri).map_err(|_| RedirectError::Malformed)?;
    if parsed.authority.is_empty() || parsed.authority.contains('@') {
        return Err(RedirectError::Malformed);
    }
    let (host, port) = split_host_port(parsed.authority).ok_or(RedirectError::Malformed)?;
    let rest = &uri[uri.len() - parsed.path.len() - parsed.query.map_or(0, |q| q.len() + 1)..];
    Ok(Parts {
        scheme: parsed.scheme.to_ascii_lowercase(),
        host: host.to_ascii_lowercase(),
        port,
        rest,
    })
}

/// `host[:port]`, with an IPv6 literal in brackets; the port all digits.
fn split_host_port(authority: &str) -> Option<(&str, Option<&str>)> {
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']')?;
        let (host, after) = authority.split_at(end + 1);
        match after {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':')?)),
        }
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty()
        || port.is_some_and(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    Some((host, port))
}

fn is_loopback_host(host: &str) -> bool {
    matches!(host, "127.0.0.1" | "[::1]" | "localhost")
}

/// True for a loopback `http` redirect URI (RFC 8252 §7.3).
pub fn is_loopback(uri: &str) -> bool {
    parts(uri).is_ok_and(|p| p.scheme == "http" && is_loopback_host(&p.host))
}

/// Checks that `uri` may be registered (or requested): absolute, no
/// fragment, `https` or loopback `http`.
pub fn check(uri: &str) -> Result<(), RedirectError> {
    let p = parts(uri)?;
    match p.scheme.as_str() {
        "https" => Ok(()),
        "http" if is_loopback_host(&p.host) => Ok(()),
        _ => Err(RedirectError::Scheme),
    }
}

/// True if the requested `uri` is the registered one: the same string, or
/// both loopback `http` on the same host, path and query, any port.
pub fn matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return check(requested).is_ok();
    }
    let (Ok(r), Ok(q)) = (parts(registered), parts(requested)) else {
        return false;
    };
    r.scheme == "http"
        && q.scheme == "http"
        && is_loopback_host(&r.host)
        && r.host == q.host
        && r.rest == q.rest
        && q.port.is_none_or(|p| p.parse::<u16>().is_ok())
}

/// The first of `registered` that `requested` matches.
pub fn find<'a>(registered: &'a [String], requested: &str) -> Option<&'a str> {
    registered
        .iter()
        .find(|r| matches(r, requested))
        .map(String::as_str)
}

/// The host a person is shown for a redirect URI (the consent page), as
/// written, without port.
pub fn host(uri: &str) -> Option<String> {
    parts(uri).ok().map(|p| p.host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_and_loopback_http_may_be_registered_nothing_else() {
        assert_eq!(check("https://app.example/cb"), Ok(()));
        assert_eq!(check("http://127.0.0.1/cb"), Ok(()));
        assert_eq!(check("http://[::1]:8080/cb"), Ok(()));
        assert_eq!(check("http://localhost:3334/oauth/callback"), Ok(()));
        assert_eq!(check("http://app.example/cb"), Err(RedirectError::Scheme));
        assert_eq!(check("com.example.app:/cb"), Err(RedirectError::Malformed));
        assert_eq!(
            check("https://app.example/cb#x"),
            Err(RedirectError::Fragment)
        );
        assert_eq!(
            check("https://u@app.example/cb"),
            Err(RedirectError::Malformed)
        );
        assert_eq!(check("javascript://x"), Err(RedirectError::Scheme));
        assert_eq!(
            check("https://app.example:x/cb"),
            Err(RedirectError::Malformed)
        );
    }

    #[test]
    fn https_redirects_match_exactly() {
        assert!(matches("https://app.example/cb", "https://app.example/cb"));
        assert!(!matches(
            "https://app.example/cb",
            "https://app.example/cb/"
        ));
        assert!(!matches(
            "https://app.example/cb",
            "https://app.example:444/cb"
        ));
        assert!(!matches(
            "https://app.example/cb",
            "https://app.example/cb?x=1"
        ));
        assert!(!matches(
            "https://app.example/cb",
            "https://evil.example/cb"
        ));
    }

    #[test]
    fn loopback_redirects_match_on_any_port_rfc_8252_7_3() {
        assert!(matches(
            "http://127.0.0.1/callback",
            "http://127.0.0.1:53111/callback"
        ));
        assert!(matches(
            "http://127.0.0.1:1/callback",
            "http://127.0.0.1:2/callback"
        ));
        assert!(matches(
            "http://localhost:3334/oauth/callback",
            "http://localhost:3335/oauth/callback"
        ));
        assert!(matches("http://[::1]/cb", "http://[::1]:9/cb"));
        // Host, path and query still count.
        assert!(!matches(
            "http://127.0.0.1/callback",
            "http://localhost:5/callback"
        ));
        assert!(!matches(
            "http://127.0.0.1/callback",
            "http://127.0.0.1:5/other"
        ));
        assert!(!matches("http://127.0.0.1/cb", "http://127.0.0.1:5/cb?x"));
        assert!(!matches("http://127.0.0.1/cb", "http://127.0.0.1:99999/cb"));
        assert!(!matches("http://127.0.0.1/cb", "http://127.0.0.1:5/cb#f"));
        // Not for https, nor for other hosts.
        assert!(!matches("https://127.0.0.1/cb", "https://127.0.0.1:5/cb"));
    }

    #[test]
    fn the_shown_host_has_no_port() {
        assert_eq!(
            host("http://localhost:3334/cb").as_deref(),
            Some("localhost")
        );
        assert_eq!(
            host("https://App.Example/cb").as_deref(),
            Some("app.example")
        );
    }
}
