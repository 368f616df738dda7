//! GNAP error codes and the `error` member of a grant response (RFC 9635 §3.6).
//!
//! §3.6 defines thirteen codes and the IANA "GNAP Error Codes" registry
//! (§10.14) holds them. The draft-18 source of the registry table omits
//! `unknown_user`, which §3.6, §2.4 and §2.4.1 define and use; gnapd follows
//! §3.6 and keeps all thirteen.
//!
//! The error is "either an object or a string" (§3.6): the object has a
//! REQUIRED `code` and an OPTIONAL `description` for the client's developer;
//! the bare string is "functionally equivalent". gnapd always sends the
//! object form and reads both.
//!
//! RFC 9635 does not say which HTTP status goes with which code (it names
//! only 200 for successful responses and 204 for revocations). gnapd's
//! choices are in [`ErrorCode::status`].

use std::fmt;

use serde::de::{self, Deserializer};
use serde::ser::{SerializeStruct as _, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A registered GNAP error code (§3.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// "The request is missing a required parameter, includes an invalid
    /// parameter value or is otherwise malformed."
    InvalidRequest,
    /// "The request was made from a client that was not recognized or allowed
    /// by the AS, or the client's signature validation failed."
    InvalidClient,
    /// "The client instance has provided an interaction reference that is
    /// incorrect for this request or the interaction modes in use have
    /// expired."
    InvalidInteraction,
    /// "The flag configuration is not valid."
    InvalidFlag,
    /// "The token rotation request is not valid."
    InvalidRotation,
    /// "The AS does not allow rotation of this access token's key."
    KeyRotationNotSupported,
    /// "The continuation of the referenced grant could not be processed."
    InvalidContinuation,
    /// "The RO denied the request."
    UserDenied,
    /// "The request was denied for an unspecified reason."
    RequestDenied,
    /// "The user presented in the request is not known to the AS or does not
    /// match the user present during interaction."
    UnknownUser,
    /// "The interaction integrity could not be established."
    UnknownInteraction,
    /// "The client instance did not respect the timeout in the wait response
    /// before the next call."
    TooFast,
    /// "A limit has been reached in the total number of reasonable attempts."
    TooManyAttempts,
}

impl ErrorCode {
    /// Every registered code, in §3.6 order.
    pub const ALL: [ErrorCode; 13] = [
        Self::InvalidRequest,
        Self::InvalidClient,
        Self::InvalidInteraction,
        Self::InvalidFlag,
        Self::InvalidRotation,
        Self::KeyRotationNotSupported,
        Self::InvalidContinuation,
        Self::UserDenied,
        Self::RequestDenied,
        Self::UnknownUser,
        Self::UnknownInteraction,
        Self::TooFast,
        Self::TooManyAttempts,
    ];

    /// The code as it appears on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidInteraction => "invalid_interaction",
            Self::InvalidFlag => "invalid_flag",
            Self::InvalidRotation => "invalid_rotation",
            Self::KeyRotationNotSupported => "key_rotation_not_supported",
            Self::InvalidContinuation => "invalid_continuation",
            Self::UserDenied => "user_denied",
            Self::RequestDenied => "request_denied",
            Self::UnknownUser => "unknown_user",
            Self::UnknownInteraction => "unknown_interaction",
            Self::TooFast => "too_fast",
            Self::TooManyAttempts => "too_many_attempts",
        }
    }

    /// Looks a code up by its wire name (exact, case-sensitive match).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// The HTTP status gnapd answers with. RFC 9635 is silent on statuses for
    /// errors, so these are gnapd's choices:
    ///
    /// - 400 for a request the client must change: `invalid_request`,
    ///   `invalid_interaction`, `invalid_flag`, `invalid_rotation`,
    ///   `unknown_user`, `unknown_interaction`.
    /// - 401 when the caller or its credential is not accepted:
    ///   `invalid_client` (unknown instance, unusable key, failed signature)
    ///   and `invalid_continuation` (unknown or spent continuation token, as
    ///   RFC 6750 answers `invalid_token`). RFC 9110 §11.6.1 requires a
    ///   `WWW-Authenticate` field on a 401; the HTTP edge sends `GNAP`.
    /// - 403 when the request was understood and refused, and repeating it
    ///   will not help: `user_denied`, `request_denied`,
    ///   `key_rotation_not_supported`, and `too_many_attempts` (the grant is
    ///   finalized, §5.1; a new grant request is needed).
    /// - 429 for `too_fast` (RFC 6585 §4): the same request succeeds later,
    ///   after the `wait` the AS gave.
    pub const fn status(self) -> u16 {
        match self {
            Self::InvalidRequest
            | Self::InvalidInteraction
            | Self::InvalidFlag
            | Self::InvalidRotation
            | Self::UnknownUser
            | Self::UnknownInteraction => 400,
            Self::InvalidClient | Self::InvalidContinuation => 401,
            Self::UserDenied
            | Self::RequestDenied
            | Self::KeyRotationNotSupported
            | Self::TooManyAttempts => 403,
            Self::TooFast => 429,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Self::from_name(&name).ok_or_else(|| de::Error::custom("not a registered GNAP error code"))
    }
}

/// The `error` member of a grant response (§3.6).
///
/// A response carrying it carries nothing else except, while the grant is
/// still pending, `continue` (see [`super::GrantResponse::error`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantError {
    /// The code. REQUIRED.
    pub code: ErrorCode,
    /// A human-readable text for the client's developer, never for machines
    /// and never carrying a dependency's error text. OPTIONAL.
    pub description: Option<String>,
}

impl GrantError {
    /// An error with only a code.
    pub const fn new(code: ErrorCode) -> Self {
        Self {
            code,
            description: None,
        }
    }

    /// An error with a code and a description.
    pub fn described(code: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: Some(description.into()),
        }
    }
}

impl From<ErrorCode> for GrantError {
    fn from(code: ErrorCode) -> Self {
        Self::new(code)
    }
}

/// Always the object form: it carries a description when there is one, and
/// one shape is simpler for clients.
impl Serialize for GrantError {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let len = 1 + usize::from(self.description.is_some());
        let mut s = serializer.serialize_struct("GrantError", len)?;
        s.serialize_field("code", &self.code)?;
        if let Some(description) = &self.description {
            s.serialize_field("description", description)?;
        }
        s.end()
    }
}

/// Reads both forms §3.6 allows: `"user_denied"` and
/// `{"code": "user_denied", "description": "…"}`.
impl<'de> Deserialize<'de> for GrantError {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::String(name) => ErrorCode::from_name(&name)
                .map(Self::new)
                .ok_or_else(|| de::Error::custom("not a registered GNAP error code")),
            Value::Object(map) => {
                let code = match map.get("code") {
                    Some(Value::String(name)) => ErrorCode::from_name(name)
                        .ok_or_else(|| de::Error::custom("not a registered GNAP error code"))?,
                    Some(_) => return Err(de::Error::custom("error `code` is not a string")),
                    None => return Err(de::Error::missing_field("code")),
                };
                let description = match map.get("description") {
                    None => None,
                    Some(Value::String(text)) => Some(text.clone()),
                    Some(_) => {
                        return Err(de::Error::custom("error `description` is not a string"));
                    }
                };
                Ok(Self { code, description })
            }
            _ => Err(de::Error::custom(
                "`error` is neither a string nor an object",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_code_round_trips_through_its_wire_name() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_name(code.as_str()), Some(code));
            let wire = serde_json::to_value(code).unwrap();
            assert_eq!(wire, json!(code.as_str()));
            assert_eq!(serde_json::from_value::<ErrorCode>(wire).unwrap(), code);
        }
    }

    #[test]
    fn the_thirteen_section_3_6_codes_are_spelled_as_the_rfc_spells_them() {
        let names: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            names,
            [
                "invalid_request",
                "invalid_client",
                "invalid_interaction",
                "invalid_flag",
                "invalid_rotation",
                "key_rotation_not_supported",
                "invalid_continuation",
                "user_denied",
                "request_denied",
                "unknown_user",
                "unknown_interaction",
                "too_fast",
                "too_many_attempts",
            ]
        );
    }

    #[test]
    fn codes_are_case_sensitive_and_unknown_codes_are_refused() {
        assert_eq!(ErrorCode::from_name("Invalid_Request"), None);
        assert!(serde_json::from_value::<ErrorCode>(json!("invalid_token")).is_err());
        assert!(serde_json::from_value::<GrantError>(json!({"code": "nope"})).is_err());
    }

    #[test]
    fn every_status_is_a_client_error() {
        for code in ErrorCode::ALL {
            assert!((400..500).contains(&code.status()), "{code}");
        }
        assert_eq!(ErrorCode::TooFast.status(), 429);
        assert_eq!(ErrorCode::InvalidRequest.status(), 400);
        assert_eq!(ErrorCode::InvalidClient.status(), 401);
        assert_eq!(ErrorCode::UserDenied.status(), 403);
    }

    #[test]
    fn the_error_is_sent_as_an_object_and_omits_an_absent_description() {
        assert_eq!(
            serde_json::to_value(GrantError::new(ErrorCode::TooFast)).unwrap(),
            json!({"code": "too_fast"})
        );
        assert_eq!(
            serde_json::to_value(GrantError::described(
                ErrorCode::UserDenied,
                "The RO denied the request"
            ))
            .unwrap(),
            json!({"code": "user_denied", "description": "The RO denied the request"})
        );
    }

    #[test]
    fn section_3_6_string_form_is_equivalent_to_the_object_form() {
        let object: GrantError = serde_json::from_value(json!({"code": "user_denied"})).unwrap();
        let string: GrantError = serde_json::from_value(json!("user_denied")).unwrap();
        assert_eq!(object, string);
    }

    #[test]
    fn an_error_of_another_json_type_is_refused() {
        for bad in [
            json!(7),
            json!(null),
            json!(["user_denied"]),
            json!({"description": "x"}),
            json!({"code": 1}),
            json!({"code": "user_denied", "description": 5}),
        ] {
            assert!(
                serde_json::from_value::<GrantError>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }
}
