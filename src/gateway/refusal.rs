//! Why the gateway refuses a call, and how each refusal is answered.

use super::reply::{ErrorReply, OAuthError, REPLAY_CACHE_RETRY_AFTER, RETRY_SOON};
use super::sessions;
use crate::proto::httpsig::Rejection;
use crate::proto::jws_proof::JwsRejection;
use crate::proto::mcp::access::Denied;
use crate::proto::mcp::jsonrpc::{self, ParseError};
use crate::proto::oauth::dpop::DpopError;
use crate::store::StoreError;

/// Why a call is refused.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// No `Authorization: GNAP` token, or an unknown, expired or revoked one:
    /// 401 with a `WWW-Authenticate: GNAP` challenge.
    #[error("a valid GNAP access token is required")]
    Token,
    /// A token presented as `Bearer` or `DPoP` that is unknown, expired,
    /// revoked, for another resource (RFC 8707), not an OAuth token, or of
    /// the other kind: 401 with `error="invalid_token"` (RFC 6750 §3.1).
    #[error("a valid OAuth access token for this resource is required")]
    OAuthToken {
        /// It came as `DPoP`: the error goes on the DPoP challenge.
        dpop: bool,
    },
    /// The DPoP proof is absent, does not hold, or was used before: 401
    /// with `error="invalid_dpop_proof"` (RFC 9449 §7.1).
    #[error(transparent)]
    DpopProof(#[from] DpopError),
    /// An OAuth token without the right this message needs: 403 with
    /// `error="insufficient_scope"` and every scope needed (RFC 6750 §3.1).
    #[error("the access token does not grant this operation")]
    InsufficientScope {
        /// The scopes the operation needs, space-separated.
        scope: String,
        /// The token is DPoP-bound.
        dpop: bool,
    },
    /// The signature does not hold: 401.
    #[error(transparent)]
    Signature(#[from] Rejection),
    /// The JWS proof (`jwsd`/`jws`) of a token bound with one does not
    /// hold: 401 (a full replay cache: 503, as for signatures).
    #[error(transparent)]
    JwsProof(#[from] JwsRejection),
    /// A token bound with `mtls` came on a connection that proved no
    /// certificate, or another one: 401.
    #[error("the TLS client certificate is not the one this token is bound to")]
    CertificateMismatch,
    /// A present MCP header is not covered by the signature: 401.
    #[error("the signature does not cover {0}")]
    Uncovered(&'static str),
    /// The body is not one JSON-RPC message: 400.
    #[error(transparent)]
    Body(#[from] jsonrpc::ParseError),
    /// `Mcp-Method`/`Mcp-Name` disagree with the body (2026-07-28: 400,
    /// JSON-RPC `HeaderMismatch`).
    #[error("the {0} header does not match the body")]
    HeaderMismatch(&'static str),
    /// An MCP header given more than once: 400. The gateway would check one
    /// value and the upstream might act on another.
    #[error("the {0} header is given more than once")]
    RepeatedHeader(&'static str),
    /// A `Last-Event-ID` the gateway did not seal for this key, credential
    /// set, upstream and session: 400.
    #[error("the Last-Event-ID names no stream this call may resume")]
    UnknownEventId,
    /// An `Mcp-Session-Id` with characters outside visible ASCII (the
    /// transport allows no others): 400.
    #[error("the Mcp-Session-Id is not made of visible ASCII characters")]
    MalformedSessionId,
    /// The token does not allow this message: 403.
    #[error(transparent)]
    Denied(#[from] Denied),
    /// Storage failed: 503.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The external OAuth AS did not answer an introspection (in time, or
    /// usably): 503, since nothing is known of the token. The cause goes to
    /// the log.
    #[error("the gateway cannot check this token with its authorization server right now")]
    Introspection,
    /// This client address made the gateway ask the external AS about
    /// more unknown tokens than `unknown_tokens_per_address` allows: 429.
    #[error("too many unknown tokens from this address; retry later")]
    UnknownTokensLimited {
        /// Seconds until one more may be asked about.
        retry_after: u64,
    },
    /// The token is mapped to no credential set at this upstream (or its
    /// set was removed): 403.
    #[error("this token has no credential set for upstream `{0}`")]
    NoCredentialSet(String),
    /// The token's credential set cannot be opened (no or another master
    /// key, damage): 502. The cause goes to the log.
    #[error("the gateway cannot use its credential for this upstream")]
    CredentialUnavailable,
    /// The `Mcp-Session-Id` was not opened by this key and credential set
    /// (or the gateway forgot it): 404, so the agent starts a new session.
    #[error(transparent)]
    Session(#[from] sessions::SessionRefusal),
}

impl Refusal {
    /// The answer the agent gets: a 401 carries the GNAP challenge, so the
    /// agent learns where to ask for a token (RFC 9635 §9.1).
    pub(crate) fn reply(&self) -> ErrorReply {
        match self {
            // The replay cache is full: the call may be good, it cannot be
            // checked now (the AS answers the same, `authz::reply`).
            Self::Signature(Rejection::ReplayCache(_))
            | Self::JwsProof(JwsRejection::ReplayCache(_)) => {
                ErrorReply::new(503, -32603, "the gateway is at capacity; retry later")
                    .retry_after(REPLAY_CACHE_RETRY_AFTER)
            }
            Self::Token
            | Self::Signature(_)
            | Self::JwsProof(_)
            | Self::CertificateMismatch
            | Self::Uncovered(_) => ErrorReply::new(401, -32001, self.to_string()).challenge(),
            Self::OAuthToken { dpop } => ErrorReply::new(401, -32001, self.to_string())
                .challenge()
                .oauth(OAuthError::InvalidToken { dpop: *dpop }),
            Self::DpopProof(_) => ErrorReply::new(401, -32001, self.to_string())
                .challenge()
                .oauth(OAuthError::InvalidDpopProof),
            Self::InsufficientScope { scope, .. } => ErrorReply::new(403, -32003, self.to_string())
                .oauth(OAuthError::InsufficientScope(scope.clone())),
            Self::Body(ParseError::NotJson) => ErrorReply::new(400, -32700, self.to_string()),
            Self::Body(ParseError::NotMessage) => ErrorReply::new(400, -32600, self.to_string()),
            Self::HeaderMismatch(_) => ErrorReply::new(400, -32020, self.to_string()),
            Self::RepeatedHeader(_) | Self::MalformedSessionId | Self::UnknownEventId => {
                ErrorReply::new(400, -32600, self.to_string())
            }
            Self::Denied(_) | Self::NoCredentialSet(_) => {
                ErrorReply::new(403, -32003, self.to_string())
            }
            // Never echo storage internals.
            Self::Store(_) => {
                ErrorReply::new(503, -32603, "the gateway cannot check tokens right now")
                    .retry_after(RETRY_SOON)
            }
            Self::Introspection => {
                ErrorReply::new(503, -32603, self.to_string()).retry_after(RETRY_SOON)
            }
            Self::CredentialUnavailable => ErrorReply::new(502, -32002, self.to_string()),
            Self::UnknownTokensLimited { retry_after } => {
                ErrorReply::new(429, -32029, self.to_string()).retry_after(*retry_after)
            }
            Self::Session(_) => ErrorReply::new(404, -32001, self.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::sessions::SessionRefusal;
    use crate::proto::httpsig::nonce::NonceStoreError;

    /// Every refusal's status and JSON-RPC code; the challenge goes with
    /// every 401 and `Retry-After` with every 503, as the HTTP edge once
    /// decided by status alone.
    #[test]
    fn every_refusal_says_its_status_code_and_headers() {
        let cases = [
            (Refusal::Token, 401, -32001),
            (Refusal::Signature(Rejection::Expired), 401, -32001),
            (Refusal::Uncovered("mcp-name"), 401, -32001),
            (Refusal::CertificateMismatch, 401, -32001),
            (Refusal::OAuthToken { dpop: false }, 401, -32001),
            (Refusal::DpopProof(DpopError::Replayed), 401, -32001),
            (
                Refusal::InsufficientScope {
                    scope: "mcp:u".into(),
                    dpop: false,
                },
                403,
                -32003,
            ),
            (
                Refusal::Signature(NonceStoreError::Full.into()),
                503,
                -32603,
            ),
            (Refusal::Body(ParseError::NotJson), 400, -32700),
            (Refusal::Body(ParseError::NotMessage), 400, -32600),
            (Refusal::HeaderMismatch("Mcp-Name"), 400, -32020),
            (Refusal::RepeatedHeader("Mcp-Name"), 400, -32600),
            (Refusal::MalformedSessionId, 400, -32600),
            (Refusal::UnknownEventId, 400, -32600),
            (Refusal::Denied(Denied::Tool("t".into())), 403, -32003),
            (Refusal::NoCredentialSet("u".into()), 403, -32003),
            (
                Refusal::Store(StoreError::Backend("disk".into())),
                503,
                -32603,
            ),
            (Refusal::CredentialUnavailable, 502, -32002),
            (Refusal::Introspection, 503, -32603),
            (
                Refusal::UnknownTokensLimited { retry_after: 3 },
                429,
                -32029,
            ),
            (Refusal::Session(SessionRefusal::Foreign), 404, -32001),
        ];
        for (refusal, status, code) in cases {
            let reply = refusal.reply();
            assert_eq!((reply.status, reply.code), (status, code), "{refusal:?}");
            assert_eq!(reply.challenge, status == 401, "{refusal:?}");
            assert_eq!(
                reply.retry_after.is_some(),
                status == 503 || status == 429,
                "{refusal:?}"
            );
            assert_eq!(reply.allow, None);
            let oauth = matches!(
                refusal,
                Refusal::OAuthToken { .. }
                    | Refusal::DpopProof(_)
                    | Refusal::InsufficientScope { .. }
            );
            assert_eq!(reply.oauth.is_some(), oauth, "{refusal:?}");
        }
    }

    #[test]
    fn storage_and_replay_cache_text_never_reaches_the_agent() {
        let store = Refusal::Store(StoreError::Backend("disk /var/x".into())).reply();
        assert_eq!(store.message, "the gateway cannot check tokens right now");
        assert_eq!(store.retry_after, Some(RETRY_SOON));
        let full = Refusal::Signature(NonceStoreError::KeyQuota.into()).reply();
        assert_eq!(full.message, "the gateway is at capacity; retry later");
        assert_eq!(full.retry_after, Some(REPLAY_CACHE_RETRY_AFTER));
        assert_eq!(
            Refusal::HeaderMismatch("Mcp-Method").reply().message,
            "the Mcp-Method header does not match the body"
        );
    }
}
