//! The OAuth face's HTTP edge (issue 16): one file per endpoint. Each reads
//! and bounds the request, resolves the client, and hands decoded
//! parameters to the sans-I/O services in `crate::authz::oauth`. Every
//! error is an RFC 6749 §5.2 JSON object (never HTML, never a 500 page).

use std::sync::Arc;

use bytes::Bytes;
use futures_util::Stream;
use warp::http::{HeaderMap, Method, Response};

use super::App;
use crate::authz::Reply;
use crate::proto::oauth::client::ClientInfo;
use crate::proto::oauth::error::{ErrorCode, OAuthError};
use crate::proto::oauth::form::{FormError, Params};
use crate::proto::oauth::metadata::{
    AUTHORIZE_PATH, OPENID_CONFIGURATION_PATH, REVOKE_PATH, TOKEN_PATH, WELL_KNOWN_PATH,
};

mod authorize;
mod client_auth;
mod metadata;
mod revoke;
mod token;

/// Largest OAuth request body read, in bytes: a token request is a few
/// hundred; a client assertion a few KiB.
pub const MAX_BODY: usize = 16 * 1024;

/// An OAuth endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthEndpoint {
    /// RFC 8414 metadata (both well-known paths).
    Metadata,
    /// The authorization endpoint.
    Authorize,
    /// The token endpoint.
    Token,
    /// The revocation endpoint (RFC 7009).
    Revoke,
}

impl OAuthEndpoint {
    /// Its name in log lines.
    fn label(self) -> &'static str {
        match self {
            Self::Metadata => "oauth_metadata",
            Self::Authorize => "oauth_authorize",
            Self::Token => "oauth_token",
            Self::Revoke => "oauth_revoke",
        }
    }

    /// The endpoint at `path`, if any.
    pub(crate) fn of(path: &str) -> Option<Self> {
        match path {
            WELL_KNOWN_PATH | OPENID_CONFIGURATION_PATH => Some(Self::Metadata),
            AUTHORIZE_PATH => Some(Self::Authorize),
            TOKEN_PATH => Some(Self::Token),
            REVOKE_PATH => Some(Self::Revoke),
            _ => None,
        }
    }
}

/// Serves one OAuth request from `source` (the client's address).
pub(crate) async fn serve<S, B>(
    app: Arc<App>,
    method: Method,
    endpoint: OAuthEndpoint,
    query: &str,
    headers: &HeaderMap,
    body: S,
    source: &str,
) -> Response<Bytes>
where
    S: Stream<Item = Result<B, warp::Error>> + Send + Unpin,
    B: bytes::Buf,
{
    if endpoint != OAuthEndpoint::Metadata
        && let Err(retry_after) = app.auth.admit_oauth(source)
    {
        let e = OAuthError::new(
            ErrorCode::TemporarilyUnavailable,
            "too many requests from this address; try again later",
        );
        let reply = Reply {
            status: 429,
            ..error_reply(&e, false)
        };
        return super::to_response(reply.with_header("retry-after", retry_after.to_string()));
    }
    let started = std::time::Instant::now();
    let reply = match (endpoint, &method) {
        // CORS preflight of a browser-based client (the MCP Inspector).
        (OAuthEndpoint::Token | OAuthEndpoint::Revoke, &Method::OPTIONS) => preflight(),
        (OAuthEndpoint::Metadata, _) => cors(metadata::serve(&app, &method)),
        (OAuthEndpoint::Authorize, _) => {
            authorize::serve(app, &method, query, headers, body, source).await
        }
        (OAuthEndpoint::Token, _) => cors(token::serve(app, &method, headers, body).await),
        (OAuthEndpoint::Revoke, _) => cors(revoke::serve(app, &method, headers, body).await),
    };
    // One line per request: never parameters or bodies, which carry codes,
    // verifiers, secrets and tokens.
    tracing::info!(endpoint = endpoint.label(), method = %method, status = reply.status, seconds = started.elapsed().as_secs_f64(), "oauth request");
    super::to_response(reply)
}

/// Browser-based clients read the metadata and call the token and
/// revocation endpoints from another origin. Any origin may: no cookie or
/// ambient credential is ever accepted there (`*` forbids sending them), so
/// a page can only spend a code, verifier or token it already holds.
fn cors(reply: Reply) -> Reply {
    reply.with_header("access-control-allow-origin", "*")
}

/// The answer to a CORS preflight of the token or revocation endpoint.
fn preflight() -> Reply {
    let reply = Reply {
        status: 204,
        headers: vec![("cache-control", "no-store".into())],
        body: Vec::new(),
    };
    cors(reply)
        .with_header("access-control-allow-methods", "POST")
        .with_header(
            "access-control-allow-headers",
            "Authorization, Content-Type, DPoP",
        )
        .with_header("access-control-max-age", "600")
}

/// The §5.2 JSON error; `basic`: the client tried HTTP Basic, so a 401
/// says `WWW-Authenticate: Basic` (§5.2).
pub(crate) fn error_reply(e: &OAuthError, basic: bool) -> Reply {
    let mut reply = Reply::json(e.code.status(), &e.body()).with_header("pragma", "no-cache");
    if e.code == ErrorCode::InvalidClient && basic {
        reply = reply.with_header("www-authenticate", "Basic realm=\"gnapd\"");
    }
    reply
}

/// A 405 in the same shape.
fn method_not_allowed(allowed: &'static str) -> Reply {
    let e = OAuthError::new(ErrorCode::InvalidRequest, &format!("use {allowed}"));
    let reply = Reply {
        status: 405,
        ..error_reply(&e, false)
    };
    reply.with_header("allow", allowed)
}

/// Reads a form body: `Content-Type: application/x-www-form-urlencoded`
/// (RFC 6749 §3.2), bounded, each parameter once.
async fn read_form<S, B>(headers: &HeaderMap, body: S) -> Result<Params, OAuthError>
where
    S: Stream<Item = Result<B, warp::Error>> + Send + Unpin,
    B: bytes::Buf,
{
    let mut types = headers.get_all(warp::http::header::CONTENT_TYPE).iter();
    let is_form = match (types.next(), types.next()) {
        (Some(value), None) => value
            .to_str()
            .ok()
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            }),
        _ => false,
    };
    if !is_form {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let bytes = super::read_body(body, MAX_BODY)
        .await
        .map_err(|e| match e {
            super::BodyError::TooLarge => {
                OAuthError::new(ErrorCode::InvalidRequest, "the request body is too large")
            }
            super::BodyError::Read => OAuthError::new(
                ErrorCode::InvalidRequest,
                "the request body could not be read",
            ),
        })?;
    params(&bytes)
}

/// Parameters from a query or a form, as an OAuth error when unreadable.
fn params(bytes: &[u8]) -> Result<Params, OAuthError> {
    Params::parse(bytes).map_err(|e| match e {
        FormError::Repeated(_) | FormError::TooLarge | FormError::Encoding => {
            OAuthError::new(ErrorCode::InvalidRequest, &e.to_string())
        }
    })
}

/// The one `Authorization` field, if the request sent exactly one (two
/// are refused as `invalid_request` by the caller: `Err`).
fn authorization(headers: &HeaderMap) -> Result<Option<Vec<u8>>, OAuthError> {
    let mut all = headers.get_all(warp::http::header::AUTHORIZATION).iter();
    match (all.next(), all.next()) {
        (None, _) => Ok(None),
        (Some(one), None) => Ok(Some(one.as_bytes().to_vec())),
        _ => Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "more than one Authorization header",
        )),
    }
}

/// The client `client_id` names. Integration point: the registration and
/// metadata-document sources (which may fetch) resolve here too; the
/// configured clients are known without I/O.
async fn resolve_client(app: &App, client_id: &str) -> Option<ClientInfo> {
    if client_id.is_empty() || client_id.len() > crate::authz::oauth::MAX_CLIENT_ID {
        return None;
    }
    if let Some(client) = app.auth.oauth_client(client_id) {
        return Some(client);
    }
    crate::http::oauth_clients::resolve_client(app, client_id)
        .await
        .ok()
}

/// Runs a service call off the async threads; a panic in it (there should
/// be none) is a `server_error`, never a dropped connection.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, OAuthError> + Send + 'static,
) -> Result<T, OAuthError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|_| {
        Err(OAuthError::new(
            ErrorCode::ServerError,
            "the server could not complete this",
        ))
    })
}
