//! The attached proof (RFC 9635 §7.3.4) with content: the body is a
//! compact JWS (`application/jose`) whose payload is the request content.
//! Without content `jws` uses a detached proof ([`super::detached`]).

use super::header::{Compact, Typ};
use super::{APPLICATION_JOSE, DETACHED_JWS, JwsRejection, VerifiedJws, check_signature, remember};
use crate::proto::b64;
use crate::proto::httpsig::nonce::NonceStore;
use crate::proto::httpsig::{GnapProfile, HttpRequest};
use crate::proto::jwk::VerifyingKey;

/// True when the request has exactly one `Content-Type` and it is
/// `application/jose` (parameters aside).
pub fn is_jose(request: &HttpRequest) -> bool {
    let mut lines = request.fields.lines("content-type");
    match (lines.next(), lines.next()) {
        (Some(value), None) => {
            let media = value.split(|b| *b == b';').next().unwrap_or_default();
            media
                .trim_ascii()
                .eq_ignore_ascii_case(APPLICATION_JOSE.as_bytes())
        }
        _ => false,
    }
}

/// The body as a compact JWS, after the checks on the message around it.
pub(super) fn body(request: &HttpRequest) -> Result<Compact<'_>, JwsRejection> {
    if !is_jose(request) {
        return Err(JwsRejection::NotJose);
    }
    if request.fields.contains(DETACHED_JWS) {
        return Err(JwsRejection::BothForms);
    }
    let text = std::str::from_utf8(&request.body).map_err(|_| JwsRejection::Malformed)?;
    Compact::parse(text.trim_ascii())
}

/// Verifies an attached proof by `key`; returns the payload as content.
pub(super) fn verify(
    request: &HttpRequest,
    key: &VerifyingKey,
    profile: &GnapProfile,
    now: i64,
    replay: &dyn NonceStore,
) -> Result<VerifiedJws, JwsRejection> {
    let compact = body(request)?;
    let created = compact.header.check(Typ::Jws, key, request, profile, now)?;
    let content = b64::decode_url(compact.payload_b64).ok_or(JwsRejection::Malformed)?;
    let input = compact.signing_input(compact.payload_b64);
    check_signature(key, &input, &compact.signature)?;
    remember(key, &input, created, profile, now, replay)?;
    Ok(VerifiedJws {
        thumbprint: key.thumbprint().clone(),
        created,
        content: Some(content),
    })
}
