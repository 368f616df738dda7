//! The OAuth clients of issue 16: dynamic registration (RFC 7591),
//! client metadata documents fetched over real https on loopback,
//! introspection (RFC 7662) for resource servers, and headless
//! `client_credentials` with `private_key_jwt` (RFC 7523, SEP-1046).

use std::net::SocketAddr;

use gnapd::proto::httpsig::HttpRequest;

use crate::support::http_client::{Answer, send, send_from};

mod client_credentials;
pub(crate) mod document_server;
mod documents;
mod introspection;
mod registration;

/// POSTs `body` with `content_type` to `path` at `addr`, with more
/// `headers`, from `from` when given.
pub fn post(
    addr: SocketAddr,
    path: &str,
    content_type: &str,
    body: &[u8],
    headers: &[(&str, &str)],
    from: Option<std::net::IpAddr>,
) -> Answer {
    let mut request = HttpRequest::new("POST", format!("http://{addr}{path}"))
        .with_field("content-type", content_type)
        .with_body(body.to_vec());
    for (name, value) in headers {
        request = request.with_field(name, *value);
    }
    match from {
        Some(ip) => send_from(ip, addr, &request),
        None => send(addr, &request),
    }
}

/// Asserts an RFC 6749 §5.2 error object with `status` and `code`, never
/// cached.
#[track_caller]
pub fn assert_oauth_error(answer: &Answer, status: u16, code: &str) {
    assert_eq!(answer.status, status, "{}", answer.text());
    assert_eq!(answer.json()["error"], code, "{}", answer.text());
    assert!(answer.json()["error_description"].is_string());
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(answer.header("cache-control"), Some("no-store"));
}
