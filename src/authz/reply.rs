//! The one place where outcomes become HTTP responses.
//!
//! Services return `Result<Reply, Failure>`; [`Failure::into_reply`] is the
//! only mapping from a failure to a status, headers and body. No dependency's
//! error text reaches a client: descriptions are ours.

use serde::Serialize;

use crate::proto::gnap::rs::{RsError, RsErrorCode, RsErrorResponse};
use crate::proto::gnap::{Continue, ErrorCode, GrantError, GrantResponse, RequestError};
use crate::proto::httpsig::Rejection;
use crate::proto::httpsig::nonce::NonceStoreError;
use crate::store::StoreError;

/// An HTTP response, framework-free.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Header fields.
    pub headers: Vec<(&'static str, String)>,
    /// Content.
    pub body: Vec<u8>,
}

impl Reply {
    /// A JSON response. Every AS response carries `Cache-Control: no-store`:
    /// they hold tokens or describe a grant's state.
    pub(crate) fn json(status: u16, value: &impl Serialize) -> Self {
        let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
        Self {
            status,
            headers: vec![
                ("content-type", "application/json".into()),
                ("cache-control", "no-store".into()),
            ],
            body,
        }
    }

    /// 204 No Content (§5.4, §6.2: revocations).
    pub(crate) fn no_content() -> Self {
        Self {
            status: 204,
            headers: vec![("cache-control", "no-store".into())],
            body: Vec::new(),
        }
    }

    /// Adds a header.
    pub(crate) fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// Who the failed request came from, which decides the error registry the
/// answer speaks: RFC 9635 §3.6 for client instances, RFC 9767 §3.5 for
/// resource servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Audience {
    /// A client instance (grant, continuation, token management).
    Client,
    /// A resource server (introspection, resource set registration).
    ResourceServer,
}

/// Why a request failed.
#[derive(Debug)]
pub enum Failure {
    /// A GNAP error (§3.6), with `continue` when the client may still act on
    /// the grant.
    Gnap(GrantError, Option<Box<Continue>>),
    /// The HTTP message signature failed: `invalid_client` (§3.6, §7.3.1).
    Signature(Rejection),
    /// The content type is not `application/json`.
    UnsupportedMediaType,
    /// The client called again before its `wait` ran out (§5: `too_fast`).
    TooFast {
        /// Seconds until the client may call.
        retry_after: u64,
    },
    /// The method is not allowed on this endpoint.
    MethodNotAllowed(&'static str),
    /// Storage failed: the request could not be completed safely.
    Store(StoreError),
    /// The replay cache is full (or unavailable): the signature may well be
    /// good, but it cannot be checked for a replay now. 503 with
    /// `Retry-After`, not `invalid_client`: the client's key is not at
    /// fault and it should retry, not start over.
    Busy,
    /// A rate limit or a per-key or per-address cap (`super::guards`): 429
    /// with `Retry-After`, `request_denied` (`too_fast` on a continuation
    /// URI, where the client was given a `wait`).
    Limited {
        /// Seconds until the client may try again.
        retry_after: u64,
    },
    /// A global cap is reached (every pending grant slot is taken): 503
    /// with `Retry-After`, `request_denied`.
    Full {
        /// Seconds until the client may try again (a hint).
        retry_after: u64,
    },
    /// An RS-facing error (RFC 9767 §3.5): always 400.
    Rs(RsError),
    /// A resource server's signature failed: `invalid_resource_server`
    /// (RFC 9767 §3.5: "or the RS's signature validation failed").
    RsSignature(Rejection),
    /// A key rotation's proof failed, of the old key or of the new one:
    /// `invalid_rotation`, as RFC 9635 §6.1.1 requires for either
    /// ("Failure to present the appropriate proof of either the new key or
    /// the previous key"). Counted as a signature failure.
    RotationSignature(Rejection),
}

impl From<RequestError> for Failure {
    fn from(e: RequestError) -> Self {
        Self::Gnap(GrantError::from(&e), None)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<Rejection> for Failure {
    fn from(e: Rejection) -> Self {
        match e {
            // The key holds its whole share of the replay budget: it, not
            // the server, is over its limit.
            Rejection::ReplayCache(NonceStoreError::KeyQuota) => Self::Limited {
                retry_after: BUSY_RETRY_AFTER,
            },
            Rejection::ReplayCache(_) => Self::Busy,
            other => Self::Signature(other),
        }
    }
}

/// Seconds a client waits after a full replay cache: its oldest minute of
/// values has aged out by then.
pub(crate) const BUSY_RETRY_AFTER: u64 = 60;

impl Failure {
    /// A resource server's signature failed ([`Self::RsSignature`]), or
    /// could not be checked for a replay ([`Self::Busy`]).
    pub(crate) fn rs_signature(e: Rejection) -> Self {
        match e {
            Rejection::ReplayCache(_) => Self::from(e),
            other => Self::RsSignature(other),
        }
    }

    /// A continuation whose token another request used first (the store's
    /// swap found it gone): `invalid_continuation` (§5).
    pub(crate) fn continuation_used() -> Self {
        Self::gnap(
            ErrorCode::InvalidContinuation,
            "the continuation token was already used",
        )
    }

    /// A GNAP error with a description of our own.
    pub(crate) fn gnap(code: ErrorCode, description: &str) -> Self {
        Self::Gnap(GrantError::described(code, description), None)
    }

    /// An RS-facing error with a description of our own.
    pub(crate) fn rs(code: RsErrorCode, description: &str) -> Self {
        Self::Rs(RsError::described(code, description))
    }

    /// The response for this failure, in the error registry of `audience`.
    /// `as_uri` is the grant endpoint, named in the `WWW-Authenticate`
    /// challenge of every 401.
    pub(crate) fn into_reply(self, as_uri: &str, audience: Audience) -> Reply {
        match audience {
            Audience::Client => self.into_client_reply(as_uri),
            Audience::ResourceServer => self.into_rs_reply(),
        }
    }

    /// RFC 9767 §3.5: `{"error": {"code", "description"}}` with 400. What
    /// happens outside the RS's request (a wrong method or media type, a
    /// storage failure) keeps its own HTTP status, with the nearest RS code.
    fn into_rs_reply(self) -> Reply {
        let rs_reply = |status: u16, code: RsErrorCode, description: String| {
            Reply::json(
                status,
                &RsErrorResponse {
                    error: RsError::described(code, description),
                },
            )
        };
        match self {
            Self::Rs(error) => Reply::json(error.code.status(), &RsErrorResponse { error }),
            Self::RsSignature(rejection)
            | Self::Signature(rejection)
            | Self::RotationSignature(rejection) => rs_reply(
                400,
                RsErrorCode::InvalidResourceServer,
                format!("signature rejected: {rejection}"),
            ),
            Self::Gnap(error, _) => {
                // Parse errors and the like, raised in a shared helper.
                let code = match error.code {
                    ErrorCode::InvalidClient => RsErrorCode::InvalidResourceServer,
                    _ => RsErrorCode::InvalidRequest,
                };
                rs_reply(400, code, error.description.unwrap_or_default())
            }
            Self::UnsupportedMediaType => rs_reply(
                415,
                RsErrorCode::InvalidRequest,
                "the request content must be application/json".into(),
            ),
            Self::MethodNotAllowed(allow) => rs_reply(
                405,
                RsErrorCode::InvalidRequest,
                "method not allowed here".into(),
            )
            .with_header("allow", allow),
            Self::TooFast { retry_after } | Self::Limited { retry_after } => {
                rs_reply(429, RsErrorCode::InvalidRequest, "too many requests".into())
                    .with_header("retry-after", retry_after.to_string())
            }
            Self::Full { retry_after } => rs_reply(
                503,
                RsErrorCode::InvalidRequest,
                "the server is at capacity; retry later".into(),
            )
            .with_header("retry-after", retry_after.to_string()),
            Self::Store(_) => rs_reply(
                503,
                RsErrorCode::InvalidRequest,
                "the server could not complete the request; retry later".into(),
            )
            .with_header("retry-after", "1"),
            Self::Busy => rs_reply(
                503,
                RsErrorCode::InvalidRequest,
                "the server is at capacity; retry later".into(),
            )
            .with_header("retry-after", BUSY_RETRY_AFTER.to_string()),
        }
    }

    fn into_client_reply(self, as_uri: &str) -> Reply {
        let (error, continue_) = match self {
            Self::Gnap(error, continue_) => (error, continue_),
            Self::Rs(error) => {
                // Raised only by RS-facing endpoints; a client never sees it,
                // but if one did it would read as a malformed request.
                (
                    GrantError::described(
                        ErrorCode::InvalidRequest,
                        error.description.unwrap_or_default(),
                    ),
                    None,
                )
            }
            Self::Signature(rejection) | Self::RsSignature(rejection) => (
                GrantError::described(
                    ErrorCode::InvalidClient,
                    format!("signature rejected: {rejection}"),
                ),
                None,
            ),
            Self::RotationSignature(rejection) => (
                GrantError::described(
                    ErrorCode::InvalidRotation,
                    format!("key rotation proof rejected: {rejection}"),
                ),
                None,
            ),
            Self::TooFast { retry_after } => {
                let error = GrantError::described(
                    ErrorCode::TooFast,
                    "the client must wait before continuing this grant",
                );
                return Reply::json(
                    ErrorCode::TooFast.status(),
                    &GrantResponse::error(error, None),
                )
                .with_header("retry-after", retry_after.to_string());
            }
            Self::Limited { retry_after } => {
                let error = GrantError::described(
                    ErrorCode::RequestDenied,
                    "too many requests from this address or key; retry after the time given",
                );
                return Reply::json(429, &GrantResponse::error(error, None))
                    .with_header("retry-after", retry_after.to_string());
            }
            Self::Full { retry_after } => {
                let error = GrantError::described(
                    ErrorCode::RequestDenied,
                    "the server is at capacity; retry later",
                );
                return Reply::json(503, &GrantResponse::error(error, None))
                    .with_header("retry-after", retry_after.to_string());
            }
            Self::UnsupportedMediaType => {
                let error = GrantError::described(
                    ErrorCode::InvalidRequest,
                    "the request content must be application/json",
                );
                return Reply::json(415, &GrantResponse::error(error, None));
            }
            Self::MethodNotAllowed(allow) => {
                let error =
                    GrantError::described(ErrorCode::InvalidRequest, "method not allowed here");
                return Reply::json(405, &GrantResponse::error(error, None))
                    .with_header("allow", allow);
            }
            Self::Store(_) => {
                // The cause is logged by the caller; the client learns only
                // that it may retry.
                let error = GrantError::described(
                    ErrorCode::RequestDenied,
                    "the server could not complete the request; retry later",
                );
                return Reply::json(503, &GrantResponse::error(error, None))
                    .with_header("retry-after", "1");
            }
            Self::Busy => {
                let error = GrantError::described(
                    ErrorCode::RequestDenied,
                    "the server is at capacity; retry later",
                );
                return Reply::json(503, &GrantResponse::error(error, None))
                    .with_header("retry-after", BUSY_RETRY_AFTER.to_string());
            }
        };
        let status = error.code.status();
        let reply = Reply::json(status, &GrantResponse::error(error, continue_.map(|c| *c)));
        if status == 401 {
            reply.with_header("www-authenticate", format!("GNAP as_uri=\"{as_uri}\""))
        } else {
            reply
        }
    }
}
