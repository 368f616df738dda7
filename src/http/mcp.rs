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
use crate::gateway::Refusal;
use crate::gateway::answer::{BoxError, Forwarded, UpstreamFailure};
use crate::gateway::reply::request_id;
use crate::proto::httpsig::Rejection;

/// The response body of the gateway path.
pub type GatewayBody = UnsyncBoxBody<Bytes, BoxError>;

/// The path prefix this module serves.
pub const PREFIX: &str = "/mcp/";

/// Serves one request under [`PREFIX`] from `peer`: authorize, forward,
/// stream back.
pub async fn serve(
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
    let outcome = gateway_outcome(
        &app,
        parts.method.clone(),
        path,
        query,
        headers,
        body,
        &upstream,
        from,
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
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(GatewayError::BodyTooLarge),
        Err(_) => Err(GatewayError::BodyUnreadable),
    }
}

/// Why the gateway answers itself instead of the upstream.
enum GatewayError {
    UnknownUpstream,
    MethodNotAllowed,
    Query,
    BodyTooLarge,
    BodyUnreadable,
    BodyNotAllowed,
    Refused(Refusal, serde_json::Value),
    Upstream(UpstreamFailure, serde_json::Value),
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
    from: crate::proto::address::AddressKey,
) -> Result<Forwarded, GatewayError> {
    let Some(target) = app.gateway.upstream(upstream) else {
        return Err(GatewayError::UnknownUpstream);
    };
    if !matches!(method, Method::POST | Method::GET | Method::DELETE) {
        return Err(GatewayError::MethodNotAllowed);
    }
    // The MCP endpoint is one URL (Streamable HTTP); a query added by the
    // agent could only carry something to the upstream past the gateway's
    // rules (configuration, a key, a legacy transport's session id).
    if !query.is_empty() {
        return Err(GatewayError::Query);
    }
    let body = read_incoming(body, app.max_body).await?;
    // GET opens a stream and DELETE ends a session: neither carries a
    // message, and one the gateway does not read must not reach an
    // upstream that might.
    if method != Method::POST && !body.is_empty() {
        return Err(GatewayError::BodyNotAllowed);
    }
    // The JSON-RPC id is only read when an error must carry it.
    let id = || request_id(&body);
    let request = to_request(app, method, path, query, headers, body.to_vec());
    let (request, decision) = app.gateway.check(&target, request).await;
    let authorized = decision
        .and_then(|mut authorized| {
            app.gateway.check_session(&target, &request, &authorized)?;
            app.gateway
                .check_resumption(&target, &request, &mut authorized)?;
            Ok(authorized)
        })
        .map_err(|r| GatewayError::Refused(r, id()))?;
    app.gateway
        .forward(&target, request, &authorized, from)
        .await
        .map_err(|f| GatewayError::Upstream(f, id()))
}

/// The one place gateway refusals become HTTP: a status, a JSON-RPC error
/// body (with the request's id where it has one), and the GNAP challenge
/// (RFC 9635 §9.1) on a 401.
fn gateway_error(app: &App, upstream: &str, error: &GatewayError) -> Response<Bytes> {
    use crate::proto::mcp::jsonrpc::ParseError;
    let null = serde_json::Value::Null;
    let (status, code, message, id) = match error {
        GatewayError::UnknownUpstream => (404, -32004, "no such upstream".to_owned(), &null),
        GatewayError::MethodNotAllowed => {
            (405, -32600, "use POST, GET or DELETE".to_owned(), &null)
        }
        GatewayError::Query => (
            400,
            -32600,
            "the gateway's MCP endpoint takes no query string".to_owned(),
            &null,
        ),
        GatewayError::BodyTooLarge => (
            413,
            -32600,
            "the request body is too large".to_owned(),
            &null,
        ),
        GatewayError::BodyUnreadable => (
            400,
            -32600,
            "the request body could not be read".to_owned(),
            &null,
        ),
        GatewayError::BodyNotAllowed => (
            400,
            -32600,
            "a GET or DELETE to the MCP endpoint carries no body".to_owned(),
            &null,
        ),
        GatewayError::Refused(refusal, id) => {
            let (status, code) = match refusal {
                // The replay cache is full: the call may be good, it cannot
                // be checked now (see `authz::reply::Failure::Busy`).
                Refusal::Signature(Rejection::ReplayCache(_)) => (503, -32603),
                Refusal::Token | Refusal::Signature(_) | Refusal::Uncovered(_) => (401, -32001),
                Refusal::Body(ParseError::NotJson) => (400, -32700),
                Refusal::Body(ParseError::NotMessage) => (400, -32600),
                Refusal::HeaderMismatch(_) => (400, -32020),
                Refusal::RepeatedHeader(_)
                | Refusal::MalformedSessionId
                | Refusal::UnknownEventId => (400, -32600),
                Refusal::Denied(_) | Refusal::NoCredentialSet(_) => (403, -32003),
                Refusal::Store(_) => (503, -32603),
                Refusal::CredentialUnavailable => (502, -32002),
                Refusal::Session(_) => (404, -32001),
            };
            let message = match refusal {
                // Never echo storage internals.
                Refusal::Store(_) => "the gateway cannot check tokens right now".to_owned(),
                Refusal::Signature(Rejection::ReplayCache(_)) => {
                    "the gateway is at capacity; retry later".to_owned()
                }
                other => other.to_string(),
            };
            (status, code, message, id)
        }
        GatewayError::Upstream(failure, id) => {
            let (status, code) = match failure {
                UpstreamFailure::Timeout => (504, -32002),
                UpstreamFailure::SessionNotFound => (404, -32600),
                UpstreamFailure::SessionRequired | UpstreamFailure::InFlight => (400, -32600),
                UpstreamFailure::Busy | UpstreamFailure::SessionsFull => (503, -32002),
                UpstreamFailure::Unreachable
                | UpstreamFailure::CredentialRefused
                | UpstreamFailure::Failed(_)
                | UpstreamFailure::Unfilterable
                | UpstreamFailure::Exited => (502, -32002),
            };
            (status, code, failure.to_string(), id)
        }
    };
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {"code": code, "message": message},
    });
    let mut reply = Reply::json(status, &body);
    if status == 401 {
        reply.headers.push((
            "www-authenticate",
            format!(
                "GNAP as_uri=\"{}\", access=\"mcp:{upstream}\"",
                app.auth.config().grant_endpoint()
            ),
        ));
    }
    if status == 405 {
        reply.headers.push(("allow", "POST, GET, DELETE".into()));
    }
    if status == 503 {
        let seconds = match error {
            GatewayError::Refused(Refusal::Signature(Rejection::ReplayCache(_)), _) => {
                crate::authz::reply::BUSY_RETRY_AFTER
            }
            _ => crate::gateway::stdio::RETRY_AFTER,
        };
        reply.headers.push(("retry-after", seconds.to_string()));
    }
    to_response(reply)
}
