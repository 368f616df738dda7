//! What the gateway answers in place of an upstream: each error type says
//! its [`ErrorReply`] (`Refusal::reply`, `UpstreamFailure::reply`,
//! [`EndpointRefusal::reply`]), and the HTTP edge only writes it.

use serde_json::Value;

/// `Retry-After` when the gateway is briefly out of room (child slots, the
/// session table, storage), in seconds.
pub(crate) const RETRY_SOON: u64 = 5;

/// `Retry-After` when the replay cache is full, in seconds: the AS's wait
/// (`authz::reply::BUSY_RETRY_AFTER`), for the one cache both share.
pub(crate) const REPLAY_CACHE_RETRY_AFTER: u64 = 60;

/// An error answer: HTTP status, JSON-RPC error, and the headers that go
/// with them. The body carries the request's JSON-RPC id ([`request_id`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ErrorReply {
    /// The HTTP status.
    pub status: u16,
    /// The JSON-RPC error code.
    pub code: i64,
    /// The JSON-RPC error message: never a dependency's or the store's text.
    pub message: String,
    /// A `WWW-Authenticate: GNAP` challenge goes with it.
    pub challenge: bool,
    /// `Retry-After`, in seconds.
    pub retry_after: Option<u64>,
    /// `Allow`: the methods the endpoint takes.
    pub allow: Option<&'static str>,
    /// What the OAuth challenges say beyond "a token is needed".
    pub oauth: Option<OAuthError>,
}

/// The OAuth error an answer's challenges carry (RFC 6750 §3.1, RFC 9449
/// §7.1); the HTTP edge writes them with the resource's metadata URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OAuthError {
    /// A Bearer (or, `dpop`, a DPoP) token was refused: `invalid_token`.
    InvalidToken {
        /// On the DPoP challenge rather than the Bearer one.
        dpop: bool,
    },
    /// The DPoP proof was refused: `invalid_dpop_proof`.
    InvalidDpopProof,
    /// 403 `insufficient_scope` with these scopes (space-separated).
    InsufficientScope(String),
}

impl ErrorReply {
    /// An answer with `status`, JSON-RPC `code` and `message`, and no
    /// header of its own.
    pub(crate) fn new(status: u16, code: i64, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            challenge: false,
            retry_after: None,
            allow: None,
            oauth: None,
        }
    }

    /// The same, with an OAuth error for the challenges.
    pub(crate) fn oauth(mut self, error: OAuthError) -> Self {
        self.oauth = Some(error);
        self
    }

    /// The same, with the GNAP challenge.
    pub(crate) fn challenge(mut self) -> Self {
        self.challenge = true;
        self
    }

    /// The same, with `Retry-After: seconds`.
    pub(crate) fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }
}

/// Why a request to the MCP endpoint is refused before its token is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum EndpointRefusal {
    /// No upstream of this name: 404.
    #[error("no such upstream")]
    UnknownUpstream,
    /// Streamable HTTP uses POST, GET and DELETE only: 405.
    #[error("use POST, GET or DELETE")]
    MethodNotAllowed,
    /// The endpoint is one URL; a query could only smuggle something past
    /// the gateway's rules: 400.
    #[error("the gateway's MCP endpoint takes no query string")]
    Query,
    /// Over the server's body limit: 413.
    #[error("the request body is too large")]
    BodyTooLarge,
    /// The body broke off: 400.
    #[error("the request body could not be read")]
    BodyUnreadable,
    /// A GET or DELETE with a body, which the gateway would not read: 400.
    #[error("a GET or DELETE to the MCP endpoint carries no body")]
    BodyNotAllowed,
}

impl EndpointRefusal {
    /// The answer the agent gets.
    pub(crate) fn reply(&self) -> ErrorReply {
        match self {
            Self::UnknownUpstream => ErrorReply::new(404, -32004, self.to_string()),
            Self::MethodNotAllowed => ErrorReply {
                allow: Some("POST, GET, DELETE"),
                ..ErrorReply::new(405, -32600, self.to_string())
            },
            Self::BodyTooLarge => ErrorReply::new(413, -32600, self.to_string()),
            Self::Query | Self::BodyUnreadable | Self::BodyNotAllowed => {
                ErrorReply::new(400, -32600, self.to_string())
            }
        }
    }
}

/// The `id` of a JSON-RPC body, or `null`.
pub(crate) fn request_id(body: &[u8]) -> Value {
    #[derive(serde::Deserialize)]
    struct Id {
        #[serde(default)]
        id: Value,
    }
    serde_json::from_slice::<Id>(body)
        .map(|i| i.id)
        .unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_endpoint_refusal_says_its_status_code_and_headers() {
        let cases = [
            (EndpointRefusal::UnknownUpstream, 404, -32004),
            (EndpointRefusal::MethodNotAllowed, 405, -32600),
            (EndpointRefusal::Query, 400, -32600),
            (EndpointRefusal::BodyTooLarge, 413, -32600),
            (EndpointRefusal::BodyUnreadable, 400, -32600),
            (EndpointRefusal::BodyNotAllowed, 400, -32600),
        ];
        for (refusal, status, code) in cases {
            let reply = refusal.reply();
            assert_eq!((reply.status, reply.code), (status, code), "{refusal:?}");
            assert_eq!(reply.message, refusal.to_string());
            assert!(!reply.challenge && reply.retry_after.is_none());
            assert_eq!(reply.allow.is_some(), status == 405);
        }
        assert_eq!(
            EndpointRefusal::MethodNotAllowed.reply().allow,
            Some("POST, GET, DELETE")
        );
    }

    #[test]
    fn request_ids_are_read_from_the_body() {
        assert_eq!(
            request_id(br#"{"jsonrpc":"2.0","id":"a","method":"x"}"#),
            json!("a")
        );
        assert_eq!(
            request_id(br#"{"jsonrpc":"2.0","method":"x"}"#),
            Value::Null
        );
        assert_eq!(request_id(b"nope"), Value::Null);
    }
}
