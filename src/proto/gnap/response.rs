//! The grant response (RFC 9635 §3): continuation, access tokens,
//! interaction, subject information, instance identifier, error.
//!
//! Serialization omits every absent member, so what gnapd sends matches the
//! RFC's examples member for member. Deserialization (for gnapd's own agent
//! side and for tests) enforces the rules a client must apply:
//!
//! - a token flagged `bearer` must not also carry a `key` (§3.2.1: "The client
//!   software MUST reject any access token where the `flags` field contains
//!   the `bearer` flag and the `key` field is present");
//! - flags appear at most once (§3.2.1);
//! - every token of a multiple response has a unique `label` (§3.2.2);
//! - an `error` comes alone, or with `continue` only (§3.6: "Other fields MUST
//!   NOT be included").
//!
//! Continuation and management tokens are a separate type,
//! [`BoundAccessToken`], holding only a value: §3.1 and §3.2.1 say they MUST
//! be bound to the client's key, MUST NOT be bearer, MUST omit `key` and MUST
//! NOT have `manage`, so the type cannot express any of those.

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use super::access::AccessRight;
use super::error::GrantError;
use super::interact::InteractResponse;
use super::key::Key;
use super::subject::SubjectResponse;
use super::token::TokenValue;

/// A grant response (§3).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GrantResponse {
    /// `continue` (§3.1): REQUIRED while the grant is pending.
    #[serde(rename = "continue", skip_serializing_if = "Option::is_none")]
    pub continue_: Option<Continue>,
    /// `access_token` (§3.2): only when the grant is approved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token: Option<AccessTokens>,
    /// `interact` (§3.3): only when the grant is pending.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interact: Option<InteractResponse>,
    /// `subject` (§3.4): only when the grant is approved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<SubjectResponse>,
    /// `instance_id` (§3.5): for the client to send as `client` next time.
    /// "MUST be protected by the client instance as secrets."
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// `error` (§3.6).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<GrantError>,
}

impl GrantResponse {
    /// An error response: the error, and `continue` when the grant is still
    /// pending and the client may modify its request (§3.6). Nothing else.
    pub fn error(error: impl Into<GrantError>, continue_: Option<Continue>) -> Self {
        Self {
            continue_,
            error: Some(error.into()),
            ..Self::default()
        }
    }
}

/// The `continue` member (§3.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Continue {
    /// `uri`: absolute; the client uses it exactly as given. REQUIRED.
    pub uri: String,
    /// `wait`: seconds to wait before calling `uri`; "SHOULD NOT be less than
    /// five seconds, and omission of the value MUST be interpreted as five
    /// seconds" (see [`Continue::wait_seconds`]). RECOMMENDED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<u64>,
    /// `access_token`: the continuation access token. REQUIRED.
    pub access_token: BoundAccessToken,
}

impl Continue {
    /// The wait in force: the one given, else five seconds (§3.1).
    pub fn wait_seconds(&self) -> u64 {
        self.wait.unwrap_or(5)
    }
}

/// A continuation (§3.1) or token management (§3.2.1) access token: bound to
/// the client's key, never bearer, no `key`, no `manage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BoundAccessToken {
    /// `value`. REQUIRED.
    pub value: TokenValue,
}

impl BoundAccessToken {
    /// Wraps a value.
    pub fn new(value: TokenValue) -> Self {
        Self { value }
    }
}

impl<'de> Deserialize<'de> for BoundAccessToken {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            value: TokenValue,
            #[serde(default)]
            flags: Vec<ResponseFlag>,
            key: Option<Value>,
            manage: Option<Value>,
        }
        let raw = Raw::deserialize(deserializer)?;
        if raw.flags.contains(&ResponseFlag::Bearer) || raw.key.is_some() || raw.manage.is_some() {
            return Err(de::Error::custom(
                "a continuation or management token must be key-bound, without key or manage",
            ));
        }
        Ok(Self { value: raw.value })
    }
}

/// The `access_token` member of a response: the shape answers the request's
/// (§3.2.1: "MUST NOT respond with the multiple access token structure" to a
/// single request; §3.2.2: an array even if one token of several is granted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum AccessTokens {
    /// One token (§3.2.1).
    Single(Box<AccessToken>),
    /// Several, each with a unique label (§3.2.2).
    Multiple(Vec<AccessToken>),
}

impl AccessTokens {
    /// The tokens, whatever the shape.
    pub fn as_slice(&self) -> &[AccessToken] {
        match self {
            Self::Single(one) => std::slice::from_ref(one.as_ref()),
            Self::Multiple(many) => many,
        }
    }
}

impl<'de> Deserialize<'de> for AccessTokens {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::Array(items) => {
                let mut tokens: Vec<AccessToken> = Vec::with_capacity(items.len());
                for item in items {
                    let token = AccessToken::deserialize(item).map_err(de::Error::custom)?;
                    let Some(label) = &token.label else {
                        return Err(de::Error::custom("a token of several has no label"));
                    };
                    if tokens.iter().any(|t| t.label.as_ref() == Some(label)) {
                        return Err(de::Error::custom("token labels are not unique"));
                    }
                    tokens.push(token);
                }
                Ok(Self::Multiple(tokens))
            }
            value @ Value::Object(_) => AccessToken::deserialize(value)
                .map(|t| Self::Single(Box::new(t)))
                .map_err(de::Error::custom),
            _ => Err(de::Error::custom(
                "`access_token` is neither an object nor an array",
            )),
        }
    }
}

/// An access token (§3.2.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessToken {
    /// `value`: opaque to the client, `token68`. REQUIRED.
    pub value: TokenValue,
    /// `label`: the request's label. REQUIRED for multiple tokens or when the
    /// request had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// `manage`: the token management API for this token (§6).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manage: Option<Manage>,
    /// `access`: the rights of the issued token, which may differ from those
    /// asked for. §3.2.1 marks it REQUIRED; several RFC examples omit it
    /// (§3, §3.5, §5.1), so a client reads it as optional. gnapd always
    /// sends it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access: Option<Vec<AccessRight>>,
    /// `expires_in`: seconds until the token expires. OPTIONAL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
    /// `key`: the key the token is bound to "if different from the client
    /// instance's presented key". gnapd never sets it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<Key>,
    /// `flags`, each at most once; omitted when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<ResponseFlag>,
}

impl AccessToken {
    /// A key-bound token with its rights and nothing else set.
    pub fn new(value: TokenValue, access: Vec<AccessRight>) -> Self {
        Self {
            value,
            label: None,
            manage: None,
            access: Some(access),
            expires_in: None,
            key: None,
            flags: Vec::new(),
        }
    }

    /// True for a bearer token.
    pub fn is_bearer(&self) -> bool {
        self.flags.contains(&ResponseFlag::Bearer)
    }
}

impl<'de> Deserialize<'de> for AccessToken {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            value: TokenValue,
            label: Option<String>,
            manage: Option<Manage>,
            access: Option<Vec<AccessRight>>,
            expires_in: Option<u64>,
            key: Option<Key>,
            #[serde(default)]
            flags: Vec<ResponseFlag>,
        }
        let raw = Raw::deserialize(deserializer)?;
        for (i, flag) in raw.flags.iter().enumerate() {
            if raw.flags[..i].contains(flag) {
                return Err(de::Error::custom("a flag is included more than once"));
            }
        }
        if raw.flags.contains(&ResponseFlag::Bearer) && raw.key.is_some() {
            return Err(de::Error::custom("a bearer token must not carry a key"));
        }
        Ok(Self {
            value: raw.value,
            label: raw.label,
            manage: raw.manage,
            access: raw.access,
            expires_in: raw.expires_in,
            key: raw.key,
            flags: raw.flags,
        })
    }
}

/// The `manage` member of an access token (§3.2.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manage {
    /// `uri`: absolute; never contains the token value. REQUIRED.
    pub uri: String,
    /// `access_token`: the token management access token, distinct from the
    /// token it manages. REQUIRED.
    pub access_token: BoundAccessToken,
}

/// A flag on an issued token (§3.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResponseFlag {
    /// `bearer`: not bound to any key.
    Bearer,
    /// `durable`: the token keeps working after rotation or modification.
    Durable,
}

impl ResponseFlag {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Bearer => "bearer",
            Self::Durable => "durable",
        }
    }
}

impl Serialize for ResponseFlag {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ResponseFlag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match String::deserialize(deserializer)?.as_str() {
            "bearer" => Ok(Self::Bearer),
            "durable" => Ok(Self::Durable),
            _ => Err(de::Error::custom("not a registered access token flag")),
        }
    }
}

impl<'de> Deserialize<'de> for GrantResponse {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            #[serde(rename = "continue")]
            continue_: Option<Continue>,
            access_token: Option<AccessTokens>,
            interact: Option<InteractResponse>,
            subject: Option<SubjectResponse>,
            instance_id: Option<String>,
            error: Option<GrantError>,
        }
        let raw = Raw::deserialize(deserializer)?;
        if raw.error.is_some()
            && (raw.access_token.is_some()
                || raw.interact.is_some()
                || raw.subject.is_some()
                || raw.instance_id.is_some())
        {
            return Err(de::Error::custom(
                "an error response carries nothing but `error` and `continue`",
            ));
        }
        Ok(Self {
            continue_: raw.continue_,
            access_token: raw.access_token,
            interact: raw.interact,
            subject: raw.subject,
            instance_id: raw.instance_id,
            error: raw.error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::gnap::error::ErrorCode;
    use serde_json::json;

    fn token(value: &str) -> TokenValue {
        TokenValue::new(value).unwrap()
    }

    #[test]
    fn an_empty_response_serializes_to_an_empty_object() {
        assert_eq!(
            serde_json::to_value(GrantResponse::default()).unwrap(),
            json!({})
        );
    }

    #[test]
    fn an_error_response_holds_only_error_and_continue() {
        let pending = Continue {
            uri: "https://server.example.com/continue".into(),
            wait: Some(30),
            access_token: BoundAccessToken::new(token("33OMUKMKSKU80UPRY5NM")),
        };
        let response = GrantResponse::error(ErrorCode::UserDenied, Some(pending));
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            json!({
                "error": {"code": "user_denied"},
                "continue": {
                    "access_token": {"value": "33OMUKMKSKU80UPRY5NM"},
                    "uri": "https://server.example.com/continue",
                    "wait": 30
                }
            })
        );
        let bad = json!({"error": "request_denied", "access_token": {"value": "abc"}});
        assert!(serde_json::from_value::<GrantResponse>(bad).is_err());
    }

    #[test]
    fn a_key_bound_token_serializes_without_absent_members() {
        let issued = AccessToken::new(
            token("OS9M2PMHKUR64TB8N6BW7OZB8CDFONP219RP1LT0"),
            vec![AccessRight::Reference("mcp:github".into())],
        );
        assert_eq!(
            serde_json::to_value(&issued).unwrap(),
            json!({"value": "OS9M2PMHKUR64TB8N6BW7OZB8CDFONP219RP1LT0", "access": ["mcp:github"]})
        );
        assert!(!issued.is_bearer());
    }

    #[test]
    fn a_client_rejects_a_bearer_token_with_a_key() {
        let bad = json!({"value": "abc", "flags": ["bearer"], "key": "S-P4XJQ_RYJCRTSU1.63N3E"});
        assert!(serde_json::from_value::<AccessToken>(bad).is_err());
        let fine = json!({"value": "abc", "key": "S-P4XJQ_RYJCRTSU1.63N3E"});
        assert!(serde_json::from_value::<AccessToken>(fine).is_ok());
    }

    #[test]
    fn a_client_rejects_repeated_or_unknown_flags() {
        for flags in [json!(["durable", "durable"]), json!(["bearer", "split"])] {
            let bad = json!({"value": "abc", "flags": flags});
            assert!(serde_json::from_value::<AccessToken>(bad).is_err());
        }
    }

    #[test]
    fn continuation_and_management_tokens_cannot_be_bearer_or_managed() {
        for bad in [
            json!({"value": "abc", "flags": ["bearer"]}),
            json!({"value": "abc", "key": "k"}),
            json!({"value": "abc", "manage": {"uri": "https://x", "access_token": {"value": "d"}}}),
            json!({"flags": []}),
        ] {
            assert!(
                serde_json::from_value::<BoundAccessToken>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn multiple_tokens_need_unique_labels() {
        for bad in [
            json!([{"value": "a"}]),
            json!([{"value": "a", "label": "x"}, {"value": "b", "label": "x"}]),
            json!("abc"),
        ] {
            assert!(
                serde_json::from_value::<AccessTokens>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn wait_defaults_to_five_seconds() {
        let cont: Continue = serde_json::from_value(json!({
            "access_token": {"value": "80UPRY5NM33OMUKMKSKU"},
            "uri": "https://server.example.com/tx"
        }))
        .unwrap();
        assert_eq!(cont.wait_seconds(), 5);
    }
}
