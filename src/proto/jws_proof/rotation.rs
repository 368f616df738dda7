//! Key rotation with JWS proofs (RFC 9635 §7.3.3.1, §7.3.4.1, §6.1.1).
//!
//! The old key signs the request as usual but with the rotation `typ`; that
//! compact JWS is the payload of a second JWS the new key signs with the
//! method's usual `typ`. The old key's proof covers the content (and so the
//! new key in it); the new key's covers the old proof's signature. For
//! `jwsd` the outer proof travels in `Detached-JWS` and the inner one's
//! payload is the content digest; for `jws` the outer proof is the body and
//! the inner one's payload the JSON content.

use super::header::Compact;
use super::{
    JwsMethod, JwsRejection, VerifiedJwsRotation, attached, check_signature, detached, remember,
};
use crate::proto::b64;
use crate::proto::httpsig::nonce::NonceStore;
use crate::proto::httpsig::{GnapProfile, HttpRequest};
use crate::proto::jwk::VerifyingKey;

/// The inner proof, if `payload` (an outer proof's decoded payload) is a
/// compact JWS typed for a rotation.
pub(super) fn nested(payload: &[u8]) -> Option<Compact<'_>> {
    let text = std::str::from_utf8(payload).ok()?;
    let inner = Compact::parse(text).ok()?;
    [JwsMethod::Detached, JwsMethod::Attached]
        .iter()
        .any(|m| m.rotation_typ().matches(&inner.header.typ))
        .then_some(inner)
}

/// Verifies a rotation request proved with `method`: the old key's proof
/// nested in the new key's. Both signatures are checked before the replay
/// cache remembers the old key's proof.
pub fn verify_rotation(
    method: JwsMethod,
    request: &HttpRequest,
    old_key: &VerifyingKey,
    new_key: &VerifyingKey,
    profile: &GnapProfile,
    now: i64,
    replay: &dyn NonceStore,
) -> Result<VerifiedJwsRotation, JwsRejection> {
    let outer = match method {
        JwsMethod::Detached => Compact::parse(detached::field(request)?)?,
        JwsMethod::Attached => attached::body(request)?,
    };
    outer
        .header
        .check(method.typ(), new_key, request, profile, now)?;
    let payload = b64::decode_url(outer.payload_b64).ok_or(JwsRejection::Malformed)?;
    let text = std::str::from_utf8(&payload).map_err(|_| JwsRejection::RotationPayload)?;
    let inner = Compact::parse(text).map_err(|_| JwsRejection::RotationPayload)?;
    let created = inner
        .header
        .check(method.rotation_typ(), old_key, request, profile, now)?;
    let (inner_input, content) = match method {
        JwsMethod::Detached => (detached::signing_input(&inner, &request.body)?, None),
        JwsMethod::Attached => {
            let content = b64::decode_url(inner.payload_b64).ok_or(JwsRejection::Malformed)?;
            (inner.signing_input(inner.payload_b64), Some(content))
        }
    };
    check_signature(old_key, &inner_input, &inner.signature)?;
    check_signature(
        new_key,
        &outer.signing_input(outer.payload_b64),
        &outer.signature,
    )?;
    remember(old_key, &inner_input, created, profile, now, replay)?;
    Ok(VerifiedJwsRotation {
        old: old_key.thumbprint().clone(),
        new: new_key.thumbprint().clone(),
        content,
    })
}
