//! The AS's GNAP endpoints (grant, continuation, token management,
//! introspection, resource registration) straight on hyper, as the gateway
//! is: every new agent's first request comes here, so it skips warp's
//! filter chain and the copies of the header map, path and query that the
//! chain hands its handler. What happens to the request is `handle_as`'s,
//! shared with the warp route: the same limits, the same answers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use warp::http::{Request, Response};

use super::deadline::RequestBody;
use super::mcp::GatewayBody;
use super::{App, AsRequest, BodyError, Route, client_address, handle_as};
use crate::proto::client_cert::ClientCert;

/// True if `path` is one of the AS's GNAP endpoints, which [`serve`]
/// answers.
pub(super) fn serves(method: &warp::http::Method, path: &str) -> bool {
    matches!(Route::of(method, path), Some(Route::As(..)))
}

/// Answers a request for one of the AS's GNAP endpoints.
pub(super) async fn serve(
    app: Arc<App>,
    request: Request<RequestBody>,
    peer: SocketAddr,
) -> Response<GatewayBody> {
    let started = Instant::now();
    let (mut parts, body) = request.into_parts();
    let path = parts.uri.path();
    let Some(route) = Route::of(&parts.method, path) else {
        return boxed(super::not_found());
    };
    let query = parts.uri.query().unwrap_or_default();
    let source = Some(client_address::source(
        app.trusted_proxy.as_ref(),
        &parts.headers,
        Some(peer.ip()),
    ));
    let client_cert = parts.extensions.remove::<ClientCert>();
    let max_body = app.max_body;
    let request = AsRequest {
        started,
        method: parts.method.clone(),
        route,
        path,
        query,
        headers: std::mem::take(&mut parts.headers),
        source,
        client_cert,
    };
    boxed(handle_as(app.clone(), request, read(body, max_body)).await)
}

/// Reads the body, at most `limit` bytes.
async fn read(body: RequestBody, limit: usize) -> Result<Vec<u8>, BodyError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes().into()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge),
        Err(_) => Err(BodyError::Read),
    }
}

fn boxed(response: Response<Bytes>) -> Response<GatewayBody> {
    response.map(|bytes| {
        Full::new(bytes)
            .map_err(|never| match never {})
            .boxed_unsync()
    })
}
