//! `{public}/mcp/{upstream}`, served straight on hyper: the gateway's hot
//! path skips warp's filter chain (which clones the header map and wraps
//! every body in a stream), reads the agent's body once, and hands the
//! upstream's answer back as it came — a JSON answer keeps its length, so
//! hyper writes head and body together. Everything else stays on warp
//! (`super::routes`); `serve` picks by path.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Full, Limited};
use warp::http::{HeaderMap, Method, Request, Response, StatusCode};

use super::deadline::RequestBody;
use super::{App, Reply, to_request, to_response};
use crate::gateway::answer::{BoxError, Forwarded};
use crate::gateway::reply::{EndpointRefusal, ErrorReply, request_id};
use crate::proto::client_cert::ClientCert;

/// The response body of the gateway path.
pub(crate) type GatewayBody = UnsyncBoxBody<Bytes, BoxError>;

/// The path prefix this module serves.
pub(crate) const PREFIX: &str = "/mcp/";

/// Serves one request under [`PREFIX`] from `peer`: authorize, forward,
/// stream back.
pub(crate) async fn serve(
    app: Arc<App>,
    request: Request<RequestBody>,
    peer: std::net::SocketAddr,
) -> Response<GatewayBody> {
    let started = Instant::now();
    let (mut parts, body) = request.into_parts();
    // The header map goes into the request the signature is checked over
    // and the allowed headers are forwarded from: read in place, not copied.
    let headers = std::mem::take(&mut parts.headers);
    // Who a stdio child slot counts against (behind a trusted proxy, the
    // client it names).
    let from = crate::proto::address::AddressKey::of(match &app.trusted_proxy {
        Some(proxy) => proxy.client_address(&headers, peer.ip()),
        None => peer.ip(),
    });
    let path = parts.uri.path();
    let upstream = path.strip_prefix(PREFIX).unwrap_or_default().to_owned();
    let query = parts.uri.query().unwrap_or_default();
    // Inserted by the accept loop for a TLS client that proved one.
    let client_cert = parts.extensions.get::<ClientCert>().cloned();
    let outcome = gateway_outcome(
        &app,
        parts.method.clone(),
        path,
        query,
        headers,
        body,
        &upstream,
        (from, client_cert),
    )
    .await;
    let response = match outcome {
        Ok(forwarded) => {
            let mut response = Response::new(forwarded.body.into_http_body());
            *response.status_mut() =
                StatusCode::from_u16(forwarded.status).unwrap_or(StatusCode::BAD_GATEWAY);
            *response.headers_mut() = forwarded.headers;
            response
        }
        Err(error) => gateway_error(&app, &upstream, &error).map(|bytes| {
            Full::new(bytes)
                .map_err(|never| match never {})
                .boxed_unsync()
        }),
    };
    // One line per gateway call: never headers or bodies.
    tracing::debug!(upstream, method = %parts.method, status = response.status().as_u16(), seconds = started.elapsed().as_secs_f64(), "mcp");
    response
}

/// Reads the agent's body, at most `limit` bytes.
async fn read_incoming(body: RequestBody, limit: usize) -> Result<Bytes, GatewayError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(EndpointRefusal::BodyTooLarge.into())
        }
        Err(_) => Err(EndpointRefusal::BodyUnreadable.into()),
    }
}

/// The gateway's own answer in place of the upstream's, and the JSON-RPC
/// id it carries (the request's, where it has one).
struct GatewayError {
    reply: ErrorReply,
    id: serde_json::Value,
}

impl From<EndpointRefusal> for GatewayError {
    fn from(refusal: EndpointRefusal) -> Self {
        Self {
            reply: refusal.reply(),
            id: serde_json::Value::Null,
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn gateway_outcome(
    app: &Arc<App>,
    method: Method,
    path: &str,
    query: &str,
    headers: HeaderMap,
    body: RequestBody,
    upstream: &str,
    (from, client_cert): (crate::proto::address::AddressKey, Option<ClientCert>),
) -> Result<Forwarded, GatewayError> {
    let Some(target) = app.gateway.upstream(upstream) else {
        return Err(EndpointRefusal::UnknownUpstream.into());
    };
    if !matches!(method, Method::POST | Method::GET | Method::DELETE) {
        return Err(EndpointRefusal::MethodNotAllowed.into());
    }
    // The MCP endpoint is one URL (Streamable HTTP); a query added by the
    // agent could only carry something to the upstream past the gateway's
    // rules (configuration, a key, a legacy transport's session id).
    if !query.is_empty() {
        return Err(EndpointRefusal::Query.into());
    }
    let body = read_incoming(body, app.max_body).await?;
    // GET opens a stream and DELETE ends a session: neither carries a
    // message, and one the gateway does not read must not reach an
    // upstream that might.
    if method != Method::POST && !body.is_empty() {
        return Err(EndpointRefusal::BodyNotAllowed.into());
    }
    // The JSON-RPC id is only read when an error must carry it.
    let id = || request_id(&body);
    let request = to_request(
        app,
        method,
        path,
        query,
        headers,
        body.to_vec(),
        client_cert,
    );
    let (request, decision) = app.gateway.check(&target, request, from).await;
    let authorized = decision
        .and_then(|mut authorized| {
            app.gateway.check_session(&target, &request, &authorized)?;
            app.gateway
                .check_resumption(&target, &request, &mut authorized)?;
            Ok(authorized)
        })
        .map_err(|r| GatewayError {
            reply: r.reply(),
            id: id(),
        })?;
    app.gateway
        .forward(&target, request, &authorized, from)
        .await
        .map_err(|f| GatewayError {
            reply: f.reply(),
            id: id(),
        })
}

/// Writes the gateway's own answer: the status, a JSON-RPC error body, and
/// the headers the error asks for. A 401 carries three challenges, one
/// field line each (RFC 9110 §11.6.1), so that OAuth and GNAP clients both
/// learn where to go: `Bearer` with this upstream's metadata URL and scope
/// (RFC 9728 §5.1) first, because OAuth clients that read one value read
/// the first; `DPoP` with its algorithms (RFC 9449 §7.1); and `GNAP`
/// naming this upstream's access (RFC 9635 §9.1). A 403 for an OAuth
/// token's missing right carries the `insufficient_scope` challenge.
fn gateway_error(app: &App, upstream: &str, error: &GatewayError) -> Response<Bytes> {
    use crate::gateway::reply::OAuthError;
    use crate::proto::oauth::challenge::{self, error as code};
    use crate::proto::oauth::{resource_metadata, scope};
    let GatewayError { reply, id } = error;
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {"code": reply.code, "message": reply.message},
    });
    let mut out = Reply::json(reply.status, &body);
    let public_url = &app.auth.config().public_url;
    if reply.challenge {
        let (bearer, dpop) = match &reply.oauth {
            Some(OAuthError::InvalidToken { dpop: false }) => (Some(code::INVALID_TOKEN), None),
            Some(OAuthError::InvalidToken { dpop: true }) => (None, Some(code::INVALID_TOKEN)),
            Some(OAuthError::InvalidDpopProof) => (None, Some(code::INVALID_DPOP_PROOF)),
            Some(OAuthError::InsufficientScope(_)) | None => (None, None),
        };
        let metadata = resource_metadata::metadata_url(public_url, upstream);
        out.headers.push((
            "www-authenticate",
            challenge::bearer(&metadata, &scope::whole_upstream(upstream), bearer),
        ));
        out.headers
            .push(("www-authenticate", challenge::dpop(dpop)));
        out.headers.push((
            "www-authenticate",
            format!(
                "GNAP as_uri=\"{}\", access=\"mcp:{upstream}\"",
                app.auth.config().grant_endpoint()
            ),
        ));
    }
    if let Some(OAuthError::InsufficientScope(needed)) = &reply.oauth {
        let metadata = resource_metadata::metadata_url(public_url, upstream);
        out.headers.push((
            "www-authenticate",
            challenge::insufficient_scope(&metadata, needed),
        ));
    }
    if let Some(allow) = reply.allow {
        out.headers.push(("allow", allow.into()));
    }
    if let Some(seconds) = reply.retry_after {
        out.headers.push(("retry-after", seconds.to_string()));
    }
    to_response(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_full_replay_cache_asks_for_the_same_wait_at_the_gateway_as_at_the_as() {
        assert_eq!(
            crate::gateway::reply::REPLAY_CACHE_RETRY_AFTER,
            crate::authz::reply::BUSY_RETRY_AFTER
        );
    }
}
