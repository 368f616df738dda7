//! Bodies of continuation requests (RFC 9635 §5) and of token rotation
//! (§6.1).
//!
//! - POST to the continuation URI: no content to poll (§5.2), or
//!   `{"interact_ref": …}` after an interaction finished (§5.1).
//! - PATCH to the continuation URI (§5.3): any of `access_token`, `subject`,
//!   `user`, `interact`, each replacing the original; `client` and
//!   `interact_ref` "MUST NOT" appear and are refused.
//! - DELETE to the continuation URI (§5.4) and to the management URI (§6.2)
//!   have no content; nothing to parse.
//! - POST to the management URI (§6.1): no content to rotate the value, or
//!   `{"key": …}` to bind a new key (§6.1.1).
//!
//! The caller passes the raw content; "no content" is an empty slice.

use serde_json::Value;

use super::error::ErrorCode;
use super::interact::{InteractRequest, parse_interact};
use super::key::{Key, parse_key};
use super::reader::{self, Path, Reason, RequestError};
use super::request::{AccessTokenRequests, optional, parse_access_token_requests};
use super::subject::{SubjectRequest, User, parse_subject_request, parse_user};

/// Longest interaction reference accepted: gnapd issues short ones, and a
/// longer value cannot be one of them.
pub const MAX_INTERACT_REF_LEN: usize = 256;

/// A POST to the continuation URI (§5.1, §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContinueRequest {
    /// No content (or an empty object): the client polls (§5.2).
    Poll,
    /// The interaction reference from the finish callback (§5.1); the AS
    /// takes it once.
    AfterInteraction {
        /// `interact_ref`: unreserved characters (RFC 3986 §2.3) per §4.2.
        interact_ref: String,
    },
}

/// Parses the content of a POST to the continuation URI.
///
/// Codes: content that is not a JSON object, or an `interact_ref` that is not
/// a string, is `invalid_request`; a string that cannot be an interaction
/// reference gnapd issued (empty, too long, characters outside the unreserved
/// set) is `invalid_interaction` ("an interaction reference that is incorrect
/// for this request", §3.6).
pub fn parse_continue_request(body: &[u8]) -> Result<ContinueRequest, RequestError> {
    if body.is_empty() {
        return Ok(ContinueRequest::Poll);
    }
    let map = reader::body_object(body)?;
    let root = Path::root();
    let Some(value) = map.get("interact_ref") else {
        return Ok(ContinueRequest::Poll);
    };
    let at = root.key("interact_ref");
    let text = value
        .as_str()
        .ok_or_else(|| RequestError::invalid(&at, Reason::WrongType { expected: "string" }))?;
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
    if text.is_empty() || text.len() > MAX_INTERACT_REF_LEN || !text.bytes().all(unreserved) {
        return Err(RequestError::new(
            ErrorCode::InvalidInteraction,
            &at,
            Reason::BadCharacters,
        ));
    }
    Ok(ContinueRequest::AfterInteraction {
        interact_ref: text.to_owned(),
    })
}

/// A PATCH to the continuation URI (§5.3): the parts of the request that
/// change; an absent part is unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantModification {
    /// `access_token`, replacing the original.
    pub access_token: Option<AccessTokenRequests>,
    /// `subject`, replacing the original.
    pub subject: Option<SubjectRequest>,
    /// `user`: new information about the end user.
    pub user: Option<User>,
    /// `interact`, replacing the original (a fresh nonce and callback).
    pub interact: Option<InteractRequest>,
}

/// Parses the content of a PATCH to the continuation URI.
pub fn parse_modify_request(body: &[u8]) -> Result<GrantModification, RequestError> {
    let map = reader::body_object(body)?;
    let root = Path::root();
    // "The client instance MUST NOT include the `client` section" and "MUST
    // NOT include post-interaction responses" (§5.3).
    for forbidden in ["client", "interact_ref"] {
        if map.contains_key(forbidden) {
            return Err(RequestError::invalid(
                &root.key(forbidden),
                Reason::NotAllowed,
            ));
        }
    }
    Ok(GrantModification {
        access_token: optional(&map, "access_token", &root, parse_access_token_requests)?,
        subject: optional(&map, "subject", &root, parse_subject_request)?,
        user: optional(&map, "user", &root, parse_user)?,
        interact: optional(&map, "interact", &root, parse_interact)?,
    })
}

/// A POST to a token management URI (§6.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationRequest {
    /// `key`: the new key, for a key rotation (§6.1.1); `None` rotates only
    /// the value. Its proof must equal the old key's, which the AS checks.
    pub new_key: Option<Key>,
}

/// Parses the content of a POST to a token management URI.
///
/// Codes for `key` (§6.1.1): a member of the wrong JSON type is
/// `invalid_request`; a change of proofing method or parameters gnapd cannot
/// honour (a method other than `httpsig`, an algorithm it does not accept) is
/// `invalid_rotation`, as §6.1.1 requires for "an attempt to change the
/// `proof` method or parameters"; a key gnapd cannot resolve (a reference, a
/// certificate) is `key_rotation_not_supported` ("lack of capability by the
/// AS"). A key reference is kept as [`Key::Reference`] so the AS makes that
/// call; the parser refuses only what no AS state could make usable.
pub fn parse_rotation_request(body: &[u8]) -> Result<RotationRequest, RequestError> {
    if body.is_empty() {
        return Ok(RotationRequest { new_key: None });
    }
    let map = reader::body_object(body)?;
    let root = Path::root();
    let new_key = optional(&map, "key", &root, |value: &Value, at: &Path<'_>| {
        parse_key(value, at).map_err(|err| match err.reason() {
            Reason::UnsupportedProof | Reason::UnsupportedAlgorithm => {
                err.with_code(ErrorCode::InvalidRotation)
            }
            Reason::UnsupportedKeyFormat | Reason::KeyReference => {
                err.with_code(ErrorCode::KeyRotationNotSupported)
            }
            _ => err.with_code(ErrorCode::InvalidRequest),
        })
    })?;
    Ok(RotationRequest { new_key })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::gnap::key::HttpSigProof;
    use serde_json::json;

    fn bytes(value: Value) -> Vec<u8> {
        serde_json::to_vec(&value).unwrap()
    }

    #[test]
    fn section_5_2_polling_has_no_content() {
        assert_eq!(parse_continue_request(b"").unwrap(), ContinueRequest::Poll);
        assert_eq!(
            parse_continue_request(b"{}").unwrap(),
            ContinueRequest::Poll
        );
    }

    #[test]
    fn section_5_1_interaction_reference() {
        let body = br#"{
  "interact_ref": "4IFWWIKYBC2PQ6U56NL1"
}"#;
        assert_eq!(
            parse_continue_request(body).unwrap(),
            ContinueRequest::AfterInteraction {
                interact_ref: "4IFWWIKYBC2PQ6U56NL1".into()
            }
        );
    }

    #[test]
    fn a_malformed_interaction_reference_is_refused() {
        let err = parse_continue_request(&bytes(json!({"interact_ref": 7}))).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidRequest);
        for bad in ["", "a b", "a/b", "é", &"x".repeat(MAX_INTERACT_REF_LEN + 1)] {
            let err = parse_continue_request(&bytes(json!({"interact_ref": bad}))).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidInteraction, "{bad:?}");
            assert_eq!(err.field(), "interact_ref");
        }
        assert_eq!(
            parse_continue_request(b"[1]").unwrap_err().code(),
            ErrorCode::InvalidRequest
        );
    }

    #[test]
    fn section_5_3_modification_examples() {
        let modification = parse_modify_request(&bytes(json!({
            "access_token": {"access": ["read"]}
        })))
        .unwrap();
        assert!(modification.access_token.is_some());
        assert!(modification.interact.is_none());

        let modification = parse_modify_request(&bytes(json!({
            "access_token": {"access": ["read", "write"]},
            "interact": {
                "start": ["redirect"],
                "finish": {
                    "method": "redirect",
                    "uri": "https://client.example.net/return/654321",
                    "nonce": "K82FX4T4LKLTI25DQFZC"
                }
            }
        })))
        .unwrap();
        assert_eq!(
            modification.access_token.unwrap().as_slice()[0]
                .access
                .len(),
            2
        );
        assert_eq!(
            modification.interact.unwrap().finish.unwrap().nonce,
            "K82FX4T4LKLTI25DQFZC"
        );
    }

    #[test]
    fn a_modification_must_not_carry_client_or_interact_ref() {
        for member in ["client", "interact_ref"] {
            let mut body = json!({"access_token": {"access": ["read"]}});
            body[member] = json!("x");
            let err = parse_modify_request(&bytes(body)).unwrap_err();
            assert_eq!((err.field(), err.reason()), (member, Reason::NotAllowed));
            assert_eq!(err.code(), ErrorCode::InvalidRequest);
        }
    }

    #[test]
    fn section_6_1_value_rotation_has_no_content() {
        assert_eq!(parse_rotation_request(b"").unwrap().new_key, None);
    }

    #[test]
    fn section_6_1_1_key_rotation_example() {
        let body = bytes(json!({
            "key": {
                "proof": "httpsig",
                "jwk": {
                    "kty": "RSA",
                    "e": "AQAB",
                    "kid": "xyz-2",
                    "alg": "RS256",
                    "n": "kOB5rR4Jv0GMeLaY6_It_r3ORwdf8ci_JtffXyaSx8xY..."
                }
            }
        }));
        let Some(Key::Value(key)) = parse_rotation_request(&body).unwrap().new_key else {
            panic!("a key by value expected");
        };
        assert_eq!(
            key.proof,
            crate::proto::gnap::Proof::HttpSig(HttpSigProof::Derived)
        );
        assert_eq!(key.jwk["kid"], "xyz-2");
    }

    #[test]
    fn rotation_key_errors_use_the_rotation_codes() {
        let cases = [
            (
                json!({"proof": "carrier-pigeon", "jwk": {}}),
                ErrorCode::InvalidRotation,
            ),
            (
                json!({"proof": "mtls", "jwk": {}}),
                ErrorCode::KeyRotationNotSupported,
            ),
            (
                json!({"proof": {"method": "httpsig", "alg": "hmac-sha256", "content-digest-alg": "sha-256"}, "jwk": {}}),
                ErrorCode::InvalidRotation,
            ),
            (
                json!({"proof": "httpsig", "cert": "MIIB"}),
                ErrorCode::KeyRotationNotSupported,
            ),
            (json!({"proof": "httpsig"}), ErrorCode::InvalidRequest),
            (json!(3), ErrorCode::InvalidRequest),
        ];
        for (key, code) in cases {
            let err = parse_rotation_request(&bytes(json!({"key": key.clone()}))).unwrap_err();
            assert_eq!(err.code(), code, "{key}");
        }
        // A reference parses; whether gnapd can resolve it is the AS's call.
        let parsed = parse_rotation_request(&bytes(json!({"key": "S-P4XJQ_RYJCRTSU1.63N3E"})));
        assert_eq!(
            parsed.unwrap().new_key,
            Some(Key::Reference("S-P4XJQ_RYJCRTSU1.63N3E".into()))
        );
    }
}
