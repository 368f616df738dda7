//! The GNAP request readers (RFC 9635 §2, §5, §6.1): what the AS reads from
//! a body before anything is decided.

use serde_json::Value;

use crate::authz::interaction::describe_access;
use crate::authz::{AllowRule, Decision, Policy};
use crate::proto::gnap::limits::{
    MAX_ACCESS_TOKENS, MAX_ASSERTION_LEN, MAX_EXTRA_MEMBERS, MAX_LIST_ITEMS, MAX_LOGO_URI_LEN,
    MAX_STRING_LEN,
};
use crate::proto::gnap::{
    Client, ErrorCode, GrantError, GrantRequest, RequestError, parse_continue_request,
    parse_grant_request, parse_modify_request, parse_rotation_request,
};
use crate::proto::jwk::{MAX_JWK_LEN, VerifyingKey};
use crate::proto::text;

/// The grant request reader.
///
/// Input: a request body. Checks:
/// - a refusal carries a §3.6 code a request can earn and its error
///   object serializes; the store's read-back refuses the same body;
/// - an accepted request is a fixed point: serialized and read again it
///   is equal, and serializes to the same bytes; the store's read-back
///   (`Deserialize`) reads the same request;
/// - everything a person reads (every string and member name outside the
///   JWK and an assertion's opaque value) has no hidden character, every
///   string and array keeps to `proto::gnap::limits`, and the consent
///   page's description of the access has no hidden character either;
/// - a presented key that loads keeps its thumbprint through its public
///   JWK; policy approves at most what was asked, token by token.
///
/// The continuation, modification and rotation readers get the same bytes:
/// no panic, and only the codes their sections name.
pub fn grant_request(data: &[u8]) {
    let parsed = parse_grant_request(data);
    let stored = serde_json::from_slice::<GrantRequest>(data);
    match parsed {
        Err(e) => {
            assert_code(
                &e,
                &[
                    ErrorCode::InvalidRequest,
                    ErrorCode::InvalidClient,
                    ErrorCode::InvalidFlag,
                ],
            );
            assert!(stored.is_err(), "the store reads a refused request");
        }
        Ok(request) => {
            assert_eq!(stored.ok().as_ref(), Some(&request), "store read-back");
            accepted(&request);
        }
    }
    if let Err(e) = parse_continue_request(data) {
        assert_code(
            &e,
            &[ErrorCode::InvalidRequest, ErrorCode::InvalidInteraction],
        );
    }
    if let Err(e) = parse_modify_request(data) {
        assert_code(
            &e,
            &[
                ErrorCode::InvalidRequest,
                ErrorCode::InvalidClient,
                ErrorCode::InvalidFlag,
            ],
        );
    }
    if let Err(e) = parse_rotation_request(data) {
        assert_code(
            &e,
            &[
                ErrorCode::InvalidRequest,
                ErrorCode::InvalidRotation,
                ErrorCode::KeyRotationNotSupported,
            ],
        );
    }
}

fn assert_code(e: &RequestError, allowed: &[ErrorCode]) {
    assert!(allowed.contains(&e.code()), "code {:?} for {e}", e.code());
    let object = serde_json::to_value(GrantError::from(e)).expect("error object serializes");
    assert!(object["code"].is_string(), "{object}");
}

fn accepted(request: &GrantRequest) {
    let wire = serde_json::to_vec(request).expect("a request serializes");
    let again = parse_grant_request(&wire)
        .unwrap_or_else(|e| panic!("a serialized request does not read back: {e}"));
    assert_eq!(&again, request, "read back differently");
    assert_eq!(
        serde_json::to_vec(&again).expect("serializes"),
        wire,
        "not a fixed point"
    );

    let value: Value = serde_json::from_slice(&wire).expect("JSON");
    check_shown(&value, &mut Vec::new());

    let requested: Vec<_> = request
        .access_token
        .as_ref()
        .map(|t| t.as_slice().to_vec())
        .unwrap_or_default();
    assert!(requested.len() <= MAX_ACCESS_TOKENS);
    for token in &requested {
        for line in describe_access(&token.access) {
            assert!(!line.chars().any(text::is_hidden), "shown: {line:?}");
        }
    }

    let mut thumbprint = "instance".to_owned();
    if let Client::Key(client) = &request.client
        && let Ok(key) = VerifyingKey::from_presented_jwk(&client.key.jwk_value())
    {
        thumbprint = key.thumbprint().as_str().to_owned();
        let public = key.public_jwk().expect("a presented key has a public JWK");
        let again = VerifyingKey::from_presented_jwk(public).expect("its public JWK loads");
        assert_eq!(again.thumbprint(), key.thumbprint());
    }
    // A rule for this key that covers `mcp:a` and any `mcp` object: what
    // it approves is, token by token, what was asked.
    let policy = Policy {
        allow: vec![AllowRule {
            thumbprint: Some(thumbprint.clone()),
            class_id: None,
            access: vec!["mcp:a".into(), "type:mcp".into()],
        }],
        ..Policy::default()
    };
    if let Decision::Approve(approved) = policy.decide(request, &thumbprint, None) {
        assert_eq!(approved.len(), requested.len());
        for (granted, asked) in approved.iter().zip(&requested) {
            assert!(granted.iter().all(|g| asked.access.contains(g)));
        }
    }
}

/// Members of an access object that gnapd reads; others are the type's
/// own, kept as sent (`AccessObject::extra`).
const ACCESS_MEMBERS: [&str; 7] = [
    "type",
    "actions",
    "locations",
    "datatypes",
    "identifier",
    "privileges",
    "tools",
];

/// Walks the serialized request: `path` holds the member names above
/// `value` (array indexes left out).
fn check_shown<'a>(value: &'a Value, path: &mut Vec<&'a str>) {
    let at = path.as_slice();
    // The JWK is the key itself, never shown; an assertion is opaque; a
    // subject identifier's members are never shown either.
    let opaque = matches!(
        at,
        ["client", "key", "jwk", ..] | ["user", "assertions", "value"]
    );
    let unshown = matches!(at, ["subject" | "user", "sub_ids", ..]);
    // Members of an access object's own design, and of a subject
    // identifier, are kept as sent: their shape is bounded by the body.
    let as_sent = unshown
        || matches!(at, ["access_token", "access", name, ..] if !ACCESS_MEMBERS.contains(name));
    match value {
        Value::String(s) if opaque => {
            assert!(s.len() <= MAX_ASSERTION_LEN.max(MAX_JWK_LEN));
        }
        Value::String(s) => {
            if !unshown {
                assert!(!s.chars().any(text::is_hidden), "at {at:?}: {s:?}");
            }
            let max = match at {
                ["client", "display", "logo_uri"] => MAX_LOGO_URI_LEN,
                _ => MAX_STRING_LEN,
            };
            assert!(s.len() <= max, "{} bytes at {at:?}", s.len());
        }
        Value::Array(items) => {
            if !as_sent {
                assert!(
                    items.len() <= MAX_LIST_ITEMS,
                    "{} items at {at:?}",
                    items.len()
                );
            }
            for item in items {
                check_shown(item, path);
            }
        }
        Value::Object(map) => {
            if !as_sent && !opaque {
                assert!(map.len() <= MAX_EXTRA_MEMBERS + ACCESS_MEMBERS.len());
            }
            for (name, item) in map {
                if !opaque && !unshown {
                    assert!(!name.chars().any(text::is_hidden), "member name {name:?}");
                }
                path.push(name);
                check_shown(item, path);
                path.pop();
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}
