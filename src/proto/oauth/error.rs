//! OAuth error codes and the error object (RFC 6749 §4.1.2.1, §5.2),
//! with the codes later RFCs registered for the endpoints gnapd serves.

use serde::Serialize;

/// An OAuth error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// §4.1.2.1, §5.2: missing, repeated or malformed parameter.
    InvalidRequest,
    /// §5.2: client authentication failed (401).
    InvalidClient,
    /// §5.2: the code or refresh token is invalid, expired, revoked, used,
    /// or was issued to another client or redirect URI.
    InvalidGrant,
    /// §4.1.2.1, §5.2: this client may not use this grant type or method.
    UnauthorizedClient,
    /// §5.2: a grant type the AS does not serve.
    UnsupportedGrantType,
    /// §4.1.2.1: a `response_type` the AS does not serve.
    UnsupportedResponseType,
    /// §4.1.2.1, §5.2: the scope is invalid or unknown.
    InvalidScope,
    /// §4.1.2.1: the resource owner or policy denied the request.
    AccessDenied,
    /// §4.1.2.1: the AS failed (never a 500 page).
    ServerError,
    /// §4.1.2.1: the AS is overloaded (a rate limit).
    TemporarilyUnavailable,
    /// RFC 8707 §2: the resource is invalid, unknown or missing.
    InvalidTarget,
    /// RFC 7009 §2.2.1: a `token_type_hint` for a type the AS cannot revoke.
    UnsupportedTokenType,
    /// RFC 9449 §5: the DPoP proof is invalid.
    InvalidDpopProof,
}

impl ErrorCode {
    /// The registered string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::InvalidTarget => "invalid_target",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::InvalidDpopProof => "invalid_dpop_proof",
        }
    }

    /// The status of a JSON error answer (§5.2: 400, except 401 for
    /// `invalid_client`). A failure of the server itself is 503, not 500:
    /// the face never answers 500, and trying again later is the advice.
    pub fn status(self) -> u16 {
        match self {
            Self::InvalidClient => 401,
            Self::ServerError | Self::TemporarilyUnavailable => 503,
            _ => 400,
        }
    }
}

/// An OAuth error: the code and a description for the client's developer
/// (§5.2 `error_description`: printable ASCII without `"` and `\`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// The code.
    pub code: ErrorCode,
    /// What went wrong, in words.
    pub description: String,
}

/// The JSON error object of §5.2.
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    /// `error`.
    pub error: &'static str,
    /// `error_description`.
    pub error_description: &'a str,
}

impl OAuthError {
    /// An error with `description`, cut to the characters §5.2 allows.
    pub fn new(code: ErrorCode, description: &str) -> Self {
        let description = description
            .chars()
            .map(|c| match c {
                '"' => '\'',
                '\\' => '/',
                c if c == ' ' || c.is_ascii_graphic() => c,
                _ => '?',
            })
            .take(512)
            .collect();
        Self { code, description }
    }

    /// The JSON object of §5.2.
    pub fn body(&self) -> ErrorBody<'_> {
        ErrorBody {
            error: self.code.as_str(),
            error_description: &self.description,
        }
    }

    /// The JSON object, serialized.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.body()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_object_has_the_registered_code_and_a_clean_description() {
        let e = OAuthError::new(ErrorCode::InvalidTarget, "bad \"x\" \\ é");
        let json: serde_json::Value = serde_json::from_slice(&e.to_json()).unwrap();
        assert_eq!(json["error"], "invalid_target");
        assert_eq!(json["error_description"], "bad 'x' / ?");
        assert_eq!(ErrorCode::InvalidClient.status(), 401);
        assert_eq!(ErrorCode::InvalidGrant.status(), 400);
        assert_eq!(
            ErrorCode::UnsupportedTokenType.as_str(),
            "unsupported_token_type"
        );
    }
}
