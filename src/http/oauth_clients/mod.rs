//! The HTTP edge of the OAuth clients (`crate::authz::oauth_clients`):
//! `POST /oauth/register` (RFC 7591), `POST /oauth/introspect` (RFC 7662),
//! the metadata document fetch ([`fetch`]) and [`resolve::resolve_client`],
//! which the authorization and token endpoints call.

use std::sync::Arc;

use futures_util::Stream;
use warp::http::{HeaderMap, Method, Response};

use super::{App, BodyError, read_body, to_response};
use crate::authz::Reply;
use crate::authz::oauth_clients::reply::error;
use crate::authz::oauth_clients::{INTROSPECT_PATH, OAuthClients, REGISTER_PATH};

pub mod fetch;
pub mod resolve;

pub use resolve::{ResolveError, resolve_client};

/// The registry and the fetcher, as the App holds them.
#[derive(Debug)]
pub struct Clients {
    /// The registry (sans I/O).
    pub registry: Arc<OAuthClients>,
    /// Fetches metadata documents.
    pub fetcher: fetch::DocumentFetcher,
}

/// An endpoint served here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /oauth/register`.
    Register,
    /// `POST /oauth/introspect`.
    Introspect,
}

impl Endpoint {
    /// The endpoint at `path`, if one of these.
    pub(super) fn of(path: &str) -> Option<Self> {
        match path {
            REGISTER_PATH => Some(Self::Register),
            INTROSPECT_PATH => Some(Self::Introspect),
            _ => None,
        }
    }
}

/// Largest body read here, in bytes (the services bound each further).
const MAX_BODY: usize = 16 * 1024;

/// Serves `endpoint`.
pub(super) async fn serve<S, B>(
    app: Arc<App>,
    endpoint: Endpoint,
    method: &Method,
    headers: &HeaderMap,
    body: S,
    source: Option<String>,
) -> Response<bytes::Bytes>
where
    S: Stream<Item = Result<B, warp::Error>> + Send + Unpin,
    B: bytes::Buf,
{
    if method != Method::POST {
        return to_response(
            error(405, "invalid_request", "only POST is allowed here").with_header("allow", "POST"),
        );
    }
    // Introspection is guessed at with secrets: the OAuth endpoints'
    // per-address bucket bounds the guesses, before the body is read.
    if endpoint == Endpoint::Introspect
        && let Some(source) = source.as_deref()
        && let Err(retry_after) = app.auth.admit_oauth(source)
    {
        return to_response(
            error(
                429,
                "temporarily_unavailable",
                "too many requests from this address; try again later",
            )
            .with_header("retry-after", retry_after.to_string()),
        );
    }
    let body = match read_body(body, MAX_BODY).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => {
            return to_response(error(
                413,
                "invalid_request",
                "the request body is too large",
            ));
        }
        Err(BodyError::Read) => {
            return to_response(error(
                400,
                "invalid_request",
                "the request body could not be read",
            ));
        }
    };
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let content_type = header("content-type");
    let authorization = header("authorization");
    let registry = app.oauth_clients.registry.clone();
    let answer = tokio::task::spawn_blocking(move || match endpoint {
        Endpoint::Register => registry.register(content_type.as_deref(), &body, source.as_deref()),
        Endpoint::Introspect => {
            registry.introspect(authorization.as_deref(), content_type.as_deref(), &body)
        }
    })
    .await
    .unwrap_or_else(|_| {
        Reply::json(
            503,
            &serde_json::json!({"error": "temporarily_unavailable", "error_description": "retry later"}),
        )
    });
    tracing::info!(endpoint = ?endpoint, status = answer.status, "request");
    to_response(answer)
}
