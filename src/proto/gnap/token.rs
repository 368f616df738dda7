//! Token values: access, continuation and management tokens on the wire.
//!
//! §3.2.1: "The value MUST be limited to the `token68` character set defined
//! in Section 11.2 of \[HTTP\] to facilitate transmission over HTTP headers."
//! A [`TokenValue`] can only be built from a `token68` string, so an
//! AS-generated value that breaks the rule is caught where it is made, and a
//! client reading a response refuses one that would not fit in an
//! `Authorization: GNAP` header.
//!
//! A token value is a credential: `Debug` does not show it and equality runs
//! in constant time. The store keeps only a hash of it (see the issue); this
//! type is for the moment it crosses the wire.

use std::fmt;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use subtle::ConstantTimeEq as _;

/// An access token value in `token68` syntax (RFC 9110 §11.2):
/// `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
#[derive(Clone)]
pub struct TokenValue(String);

/// A string that is not `token68`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a token value must be token68 (RFC 9110 §11.2)")]
pub struct NotToken68;

impl TokenValue {
    /// Wraps a `token68` string.
    pub fn new(value: impl Into<String>) -> Result<Self, NotToken68> {
        let value = value.into();
        if is_token68(&value) {
            Ok(Self(value))
        } else {
            Err(NotToken68)
        }
    }

    /// The value itself, for an `Authorization` header or for hashing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// True for a `token68` string (RFC 9110 §11.2).
pub fn is_token68(text: &str) -> bool {
    let body = text.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

impl fmt::Debug for TokenValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenValue(..)")
    }
}

impl PartialEq for TokenValue {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for TokenValue {}

impl Serialize for TokenValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TokenValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::new(text).map_err(|_| de::Error::custom("token value is not token68"))
    }
}

/// The token of `Authorization: GNAP <token>` (RFC 9635 §7.2): exactly one
/// Authorization field, scheme `GNAP` (case-insensitive), a `token68` value.
/// `None` when the request presents no such token.
pub fn presented(request: &crate::proto::httpsig::HttpRequest) -> Option<&str> {
    let mut lines = request.fields.lines("authorization");
    let (Some(value), None) = (lines.next(), lines.next()) else {
        return None;
    };
    let (scheme, token) = std::str::from_utf8(value).ok()?.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("GNAP") && is_token68(token)).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_example_values_are_token68() {
        for value in [
            "80UPRY5NM33OMUKMKSKU",
            "OS9M2PMHKUR64TB8N6BW7OZB8CDFONP219RP1LT0",
            "B8CDFONP21-4TB8N6.BW7ONM",
            "RP1LT0-OS9M2P_R64TB",
            "abc+/~==",
        ] {
            assert!(TokenValue::new(value).is_ok(), "{value}");
        }
    }

    #[test]
    fn values_outside_token68_are_refused() {
        for value in ["", "=", "a b", "a=b", "a\"b", "é", "a,b", "a\n"] {
            assert_eq!(TokenValue::new(value), Err(NotToken68), "{value:?}");
        }
        assert!(serde_json::from_str::<TokenValue>("\"a b\"").is_err());
    }

    #[test]
    fn debug_does_not_show_the_value() {
        let token = TokenValue::new("SECRETVALUE").unwrap();
        assert!(!format!("{token:?}").contains("SECRET"));
        assert_eq!(token.expose(), "SECRETVALUE");
    }

    #[test]
    fn equality_compares_the_whole_value() {
        let a = TokenValue::new("AAAA").unwrap();
        assert_eq!(a, TokenValue::new("AAAA").unwrap());
        assert_ne!(a, TokenValue::new("AAAB").unwrap());
        assert_ne!(a, TokenValue::new("AAA").unwrap());
    }
}
