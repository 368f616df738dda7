//! `private_key_jwt` client authentication (RFC 7523 §2.2 and §3, RFC 7521
//! §4.2): the client proves itself with a JWT signed by a key of its
//! registration or metadata document. Sans I/O: the caller remembers the
//! `jti` in its replay memory (RFC 7523 §3 item 7 lets the AS refuse a
//! reused one; gnapd always does).
//!
//! Checks, in order: compact JWS; `alg` an asymmetric one gnapd verifies
//! (never `none` or a MAC); no `crit`; the signature by a key of the
//! client's JWK Set (`kid`, when given, picks it); `iss` = `sub` =
//! `client_id` (§3 items 1, 2 and RFC 7521 §4.2); `aud` naming the token
//! endpoint or the issuer (§3 item 3); `exp` present, not past, and at most
//! [`MAX_LIFETIME`] ahead (item 4: the AS "MAY reject JWTs with an `exp`
//! claim value that is unreasonably far in the future"); `nbf` not ahead;
//! a `jti`.

use base64::Engine as _;
use serde_json::Value;

use crate::proto::alg::Algorithm;
use crate::proto::jwk::{Thumbprint, VerifyingKey};

/// `client_assertion_type` for a JWT (RFC 7523 §2.2).
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The algorithms an assertion may be signed with (RFC 8414
/// `token_endpoint_auth_signing_alg_values_supported`).
pub const ALGS: &[&str] = Algorithm::JWS_SIGNATURE_NAMES;

/// How far ahead `exp` may be, in seconds: an assertion is made for one
/// request, so a long-lived one only widens what a thief could replay
/// after a restart emptied the replay memory.
pub const MAX_LIFETIME: i64 = 300;

/// Clock skew allowed on `exp` and `nbf`, in seconds.
pub const SKEW: i64 = 30;

/// Longest assertion read, in bytes.
pub const MAX_ASSERTION: usize = 8 * 1024;

/// Why an assertion was refused. Every case is `invalid_client` on the
/// wire; the text says which check failed, never the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClientAssertionError {
    /// Not a compact JWS with JSON header and claims.
    #[error("the client assertion is not a compact JWS")]
    Malformed,
    /// `alg` missing, `none`, a MAC or not supported.
    #[error("the client assertion's algorithm is not accepted")]
    Algorithm,
    /// No key of the client verifies it.
    #[error("the client assertion's signature does not verify with the client's keys")]
    Signature,
    /// `iss` or `sub` is not the client id.
    #[error("the client assertion's iss and sub must both be the client_id")]
    Subject,
    /// `aud` does not name this AS.
    #[error("the client assertion is for another audience")]
    Audience,
    /// `exp` missing or past.
    #[error("the client assertion has expired")]
    Expired,
    /// `exp` too far ahead.
    #[error("the client assertion lives longer than 300 seconds")]
    TooLong,
    /// `nbf` ahead.
    #[error("the client assertion is not valid yet")]
    NotYetValid,
    /// No `jti`.
    #[error("the client assertion has no jti")]
    NoJti,
}

/// An assertion that held up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAssertion {
    /// The thumbprint of the key that signed it: what allow rules name.
    pub thumbprint: Thumbprint,
    /// That key's public JWK.
    pub jwk: Value,
    /// Its `jti`, for the replay check.
    pub jti: String,
    /// `exp`: until when the `jti` must be remembered.
    pub expires_at: i64,
    /// `iat`, when given.
    pub issued_at: Option<i64>,
}

/// Verifies `assertion` for `client_id`, whose keys are the JWK Set `jwks`,
/// at an AS known by `audiences` (its token endpoint URL and its issuer).
pub fn verify(
    assertion: &str,
    client_id: &str,
    jwks: &Value,
    audiences: &[&str],
    now: i64,
) -> Result<VerifiedAssertion, ClientAssertionError> {
    use ClientAssertionError as E;
    if assertion.len() > MAX_ASSERTION {
        return Err(E::Malformed);
    }
    let mut parts = assertion.split('.');
    let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(E::Malformed);
    };
    let header: Value = serde_json::from_slice(&b64(header_b64)?).map_err(|_| E::Malformed)?;
    let claims: Value = serde_json::from_slice(&b64(claims_b64)?).map_err(|_| E::Malformed)?;
    if !header.is_object() || !claims.is_object() || header.get("crit").is_some() {
        return Err(E::Malformed);
    }
    let signature = b64(signature_b64)?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(Algorithm::from_jws_signature_name)
        .ok_or(E::Algorithm)?;
    let kid = header.get("kid").and_then(Value::as_str);
    let signed = &assertion[..header_b64.len() + 1 + claims_b64.len()];
    let key = jwks
        .get("keys")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|k| kid.is_none() || k.get("kid").and_then(Value::as_str) == kid)
        .filter_map(|k| VerifyingKey::from_public_jwk(k, Some(alg)).ok())
        .filter(|k| k.algorithm() == alg)
        .find(|k| k.verify_jws(signed.as_bytes(), &signature).is_ok())
        .ok_or(E::Signature)?;
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    if text("iss") != Some(client_id) || text("sub") != Some(client_id) {
        return Err(E::Subject);
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => audiences.contains(&aud.as_str()),
        Some(Value::Array(auds)) => auds
            .iter()
            .filter_map(Value::as_str)
            .any(|a| audiences.contains(&a)),
        _ => false,
    };
    if !audience_ok {
        return Err(E::Audience);
    }
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or(E::Expired)?;
    if exp.saturating_add(SKEW) <= now {
        return Err(E::Expired);
    }
    if exp > now.saturating_add(MAX_LIFETIME + SKEW) {
        return Err(E::TooLong);
    }
    if let Some(nbf) = claims.get("nbf") {
        let nbf = nbf.as_i64().ok_or(E::Malformed)?;
        if nbf.saturating_sub(SKEW) > now {
            return Err(E::NotYetValid);
        }
    }
    let jti = text("jti")
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or(E::NoJti)?;
    Ok(VerifiedAssertion {
        thumbprint: key.thumbprint().clone(),
        jwk: key.public_jwk().cloned().unwrap_or_default(),
        jti: jti.to_owned(),
        expires_at: exp.saturating_add(SKEW),
        issued_at: claims.get("iat").and_then(Value::as_i64),
    })
}

/// The `sub` an assertion claims, read WITHOUT checking anything: only to
/// find which client to look up when the request has no `client_id`
/// (RFC 7521 §4.2 makes it optional beside an assertion). [`verify`] then
/// checks it against that client.
pub fn claimed_client_id(assertion: &str) -> Option<String> {
    if assertion.len() > MAX_ASSERTION {
        return None;
    }
    let claims = assertion.split('.').nth(1)?;
    let claims: Value = serde_json::from_slice(&b64(claims).ok()?).ok()?;
    claims.get("sub")?.as_str().map(str::to_owned)
}

fn b64(part: &str) -> Result<Vec<u8>, ClientAssertionError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| ClientAssertionError::Malformed)
}

/// A signed assertion, for tests here and in tests/it.
#[doc(hidden)]
pub fn danger_sign_for_tests(
    key: &crate::proto::jwk::SigningKey,
    kid: Option<&str>,
    claims: &Value,
) -> String {
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut header = serde_json::json!({"alg": key.algorithm().jws_name(), "typ": "JWT"});
    if let Some(kid) = kid {
        header["kid"] = Value::from(kid);
    }
    let signed = format!(
        "{}.{}",
        engine.encode(header.to_string()),
        engine.encode(claims.to_string())
    );
    let signature = key.sign_jws(signed.as_bytes()).unwrap_or_default();
    format!("{signed}.{}", engine.encode(signature))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::jwk::SigningKey;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;
    const TOKEN_ENDPOINT: &str = "https://as.example/oauth/token";
    const ISSUER: &str = "https://as.example";

    fn key() -> SigningKey {
        SigningKey::generate(Algorithm::EcdsaP256Sha256).unwrap()
    }

    fn jwks(key: &SigningKey) -> Value {
        json!({"keys": [key.verifying_key().public_jwk().unwrap()]})
    }

    fn claims() -> Value {
        json!({"iss": "c1", "sub": "c1", "aud": TOKEN_ENDPOINT, "exp": NOW + 60, "iat": NOW, "jti": "j1"})
    }

    fn check(
        key: &SigningKey,
        keys: &Value,
        claims: &Value,
    ) -> Result<VerifiedAssertion, ClientAssertionError> {
        let jwt = danger_sign_for_tests(key, None, claims);
        verify(&jwt, "c1", keys, &[TOKEN_ENDPOINT, ISSUER], NOW)
    }

    #[test]
    fn an_assertion_signed_by_the_clients_key_for_this_as_holds() {
        let k = key();
        let ok = check(&k, &jwks(&k), &claims()).unwrap();
        assert_eq!(&ok.thumbprint, k.verifying_key().thumbprint());
        assert_eq!(ok.jti, "j1");
        // The issuer is an audience too, alone or in a list.
        let mut c = claims();
        c["aud"] = json!(["https://other.example", ISSUER]);
        assert!(check(&k, &jwks(&k), &c).is_ok());
    }

    #[test]
    fn another_key_audience_subject_or_time_is_refused() {
        let k = key();
        let other = key();
        assert_eq!(
            check(&other, &jwks(&k), &claims()),
            Err(ClientAssertionError::Signature)
        );
        let cases = [
            (
                "aud",
                json!("https://evil.example/token"),
                ClientAssertionError::Audience,
            ),
            ("iss", json!("c2"), ClientAssertionError::Subject),
            ("sub", json!("c2"), ClientAssertionError::Subject),
            ("exp", json!(NOW - SKEW - 1), ClientAssertionError::Expired),
            (
                "exp",
                json!(NOW + MAX_LIFETIME + SKEW + 1),
                ClientAssertionError::TooLong,
            ),
            ("exp", json!(null), ClientAssertionError::Expired),
            (
                "nbf",
                json!(NOW + SKEW + 5),
                ClientAssertionError::NotYetValid,
            ),
            ("jti", json!(null), ClientAssertionError::NoJti),
        ];
        for (name, value, error) in cases {
            let mut c = claims();
            if value.is_null() {
                c.as_object_mut().unwrap().remove(name);
            } else {
                c[name] = value;
            }
            assert_eq!(check(&k, &jwks(&k), &c), Err(error), "{name}");
        }
    }

    #[test]
    fn the_claimed_client_is_read_only_to_look_it_up() {
        let k = key();
        let jwt = danger_sign_for_tests(&k, None, &claims());
        assert_eq!(claimed_client_id(&jwt).as_deref(), Some("c1"));
        assert_eq!(claimed_client_id("x"), None);
        // Claimed is not proven: another key's assertion names c1 too.
        let forged = danger_sign_for_tests(&key(), None, &claims());
        assert_eq!(claimed_client_id(&forged).as_deref(), Some("c1"));
        assert!(verify(&forged, "c1", &jwks(&k), &[TOKEN_ENDPOINT], NOW).is_err());
    }

    #[test]
    fn alg_none_and_garbage_are_refused() {
        let k = key();
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let none = format!(
            "{}.{}.",
            engine.encode(r#"{"alg":"none"}"#),
            engine.encode(claims().to_string())
        );
        assert_eq!(
            verify(&none, "c1", &jwks(&k), &[TOKEN_ENDPOINT], NOW),
            Err(ClientAssertionError::Algorithm)
        );
        for junk in ["", "a.b", "a.b.c.d", "!!.!!.!!"] {
            assert_eq!(
                verify(junk, "c1", &jwks(&k), &[TOKEN_ENDPOINT], NOW),
                Err(ClientAssertionError::Malformed),
                "{junk}"
            );
        }
    }
}
