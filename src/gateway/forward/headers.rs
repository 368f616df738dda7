//! Which headers cross the gateway: an allowlist each way, never a
//! denylist, so that nothing the agent sends (its token, signature, cookies,
//! `Forwarded`, a custom header an upstream might take as a credential) and
//! nothing private to the gateway's relation with the upstream passes.

use hyper::header::{HeaderMap, HeaderName, HeaderValue};

/// Headers an agent's request may carry to the upstream (lowercase). Any
/// other `mcp-*` header passes too (the transport's own namespace).
const FORWARDED_REQUEST_HEADERS: [&str; 8] = [
    "accept",
    "content-type",
    "mcp-session-id",
    "mcp-protocol-version",
    "mcp-method",
    "mcp-name",
    "last-event-id",
    "user-agent",
];

/// Response headers passed back to the agent (with any `mcp-*` one): what
/// the transport needs and what tells a client when to retry. Everything
/// else stays at the gateway: hop-by-hop fields, the gateway's own relation
/// with the upstream (its cookies, a challenge for its credential), and
/// what the agent would apply to the gateway's origin on the upstream's
/// word (`Alt-Svc`, `Strict-Transport-Security`, CORS, `Clear-Site-Data`)
/// or what names the upstream (`Location`, `Link`, `Server`).
const FORWARDED_RESPONSE_HEADERS: [&str; 10] = [
    "content-type",
    "content-length",
    "content-encoding",
    "cache-control",
    "date",
    "mcp-session-id",
    "retry-after",
    "ratelimit",
    "ratelimit-policy",
    // An event stream's "do not buffer me" to a reverse proxy in front of
    // the gateway.
    "x-accel-buffering",
];

/// An `Mcp-Session-Id` value, if present and well formed (visible ASCII,
/// as the transport requires).
pub(super) fn session_id(value: Option<&[u8]>) -> Option<String> {
    let value = value?;
    (!value.is_empty() && value.iter().all(|b| (0x21..=0x7e).contains(b)))
        .then(|| String::from_utf8_lossy(value).into_owned())
}

/// Copies the agent's headers that may go upstream into `out`. A parsed
/// header map (the HTTP edge's) is copied from directly: its names are
/// lowercase and its values valid already, and cloning them shares their
/// bytes instead of parsing them again.
pub(super) fn copy_forwardable(fields: &crate::proto::httpsig::Fields, out: &mut HeaderMap) {
    if let Some(map) = fields.header_map() {
        for (name, value) in map {
            if forwardable(name.as_str()) {
                out.append(name.clone(), value.clone());
            }
        }
        return;
    }
    for (name, value) in fields.iter() {
        // Lowercase (and allocate) only a name that is not lowercase yet.
        let lower = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            std::borrow::Cow::Owned(name.to_ascii_lowercase())
        } else {
            std::borrow::Cow::Borrowed(name)
        };
        if !forwardable(&lower) {
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(lower.as_bytes()),
            HeaderValue::from_bytes(value),
        ) {
            out.append(name, value);
        }
    }
}

/// Whether an upstream's response header may go back to the agent.
fn returnable(name: &HeaderName) -> bool {
    FORWARDED_RESPONSE_HEADERS.contains(&name.as_str()) || name.as_str().starts_with("mcp-")
}

/// Keeps only the [`returnable`] headers of an upstream's answer. An answer
/// whose names all are (the usual case) is left as it is.
pub(super) fn keep_returnable_headers(headers: &mut HeaderMap) {
    if headers.keys().all(returnable) {
        return;
    }
    let mut kept = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers.iter() {
        if returnable(name) {
            kept.append(name.clone(), value.clone());
        }
    }
    *headers = kept;
}

/// Whether an agent's header (lowercase name) may go upstream.
pub(super) fn forwardable(name: &str) -> bool {
    FORWARDED_REQUEST_HEADERS.contains(&name) || name.starts_with("mcp-")
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::CONTENT_TYPE;

    #[test]
    fn only_transport_and_retry_headers_come_back_from_the_upstream() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert("mcp-session-id", HeaderValue::from_static("s"));
        headers.insert("retry-after", HeaderValue::from_static("5"));
        let before = headers.clone();
        // An answer with nothing to drop is left as it is.
        keep_returnable_headers(&mut headers);
        assert_eq!(headers, before);
        for name in [
            "set-cookie",
            "www-authenticate",
            "connection",
            "transfer-encoding",
            "alt-svc",
            "strict-transport-security",
            "access-control-allow-origin",
            "clear-site-data",
            "location",
            "link",
            "server",
            "x-upstream-secret",
        ] {
            headers.append(HeaderName::from_static(name), HeaderValue::from_static("x"));
        }
        headers.append("mcp-session-id", HeaderValue::from_static("t"));
        keep_returnable_headers(&mut headers);
        let names: Vec<_> = headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["content-type", "mcp-session-id", "retry-after"]);
        assert_eq!(headers.get_all("mcp-session-id").iter().count(), 2);
    }

    #[test]
    fn only_transport_headers_go_upstream() {
        for ok in [
            "accept",
            "content-type",
            "mcp-session-id",
            "mcp-protocol-version",
            "mcp-method",
            "mcp-name",
            "last-event-id",
        ] {
            assert!(forwardable(ok), "{ok}");
        }
        for no in [
            "authorization",
            "signature",
            "signature-input",
            "content-digest",
            "cookie",
            "proxy-authorization",
            "forwarded",
            "x-forwarded-for",
            "x-forwarded-host",
            "connection",
            "te",
            "upgrade",
            "host",
            "x-api-key",
            "content-length",
            "origin",
        ] {
            assert!(!forwardable(no), "{no}");
        }
    }
}
