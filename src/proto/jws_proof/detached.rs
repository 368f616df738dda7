//! The detached proof (RFC 9635 §7.3.3): a compact JWS in the
//! `Detached-JWS` field whose payload is the SHA-256 digest of the content.

use super::header::{Compact, MAX_DETACHED_LEN, Typ};
use super::{DETACHED_JWS, JwsRejection, VerifiedJws, check_signature, remember};
use crate::proto::b64;
use crate::proto::httpsig::nonce::NonceStore;
use crate::proto::httpsig::{GnapProfile, HttpRequest};
use crate::proto::jwk::VerifyingKey;

/// The one `Detached-JWS` field line, bounded. Two lines are refused: a
/// verifier must not choose which proof counts.
pub(super) fn field(request: &HttpRequest) -> Result<&str, JwsRejection> {
    let mut lines = request.fields.lines(DETACHED_JWS);
    let value = lines.next().ok_or(JwsRejection::MissingField)?;
    if lines.next().is_some() {
        return Err(JwsRejection::DuplicateField);
    }
    if value.len() > MAX_DETACHED_LEN {
        return Err(JwsRejection::TooLarge);
    }
    let text = std::str::from_utf8(value).map_err(|_| JwsRejection::Malformed)?;
    Ok(text.trim_ascii())
}

/// The payload segment the signer signed: base64url of the content's
/// SHA-256, or empty when there is no content.
pub fn content_payload(body: &[u8]) -> String {
    if body.is_empty() {
        String::new()
    } else {
        b64::encode_url(&crate::proto::hash::sha256(body))
    }
}

/// The signing input of a detached proof over `body`. The payload segment
/// as sent is either empty (RFC 7515 Appendix F) or must be the digest
/// itself; the input is always rebuilt from the digest of what arrived.
pub(super) fn signing_input(compact: &Compact<'_>, body: &[u8]) -> Result<Vec<u8>, JwsRejection> {
    let expected = content_payload(body);
    if !compact.payload_b64.is_empty() && compact.payload_b64 != expected {
        return Err(JwsRejection::Digest);
    }
    Ok(compact.signing_input(&expected))
}

/// Verifies a detached proof of type `typ` by `key`.
pub(super) fn verify(
    typ: Typ,
    request: &HttpRequest,
    key: &VerifyingKey,
    profile: &GnapProfile,
    now: i64,
    replay: &dyn NonceStore,
) -> Result<VerifiedJws, JwsRejection> {
    let compact = Compact::parse(field(request)?)?;
    let created = compact.header.check(typ, key, request, profile, now)?;
    let input = signing_input(&compact, &request.body)?;
    check_signature(key, &input, &compact.signature)?;
    remember(key, &input, created, profile, now, replay)?;
    Ok(VerifiedJws {
        thumbprint: key.thumbprint().clone(),
        created,
        content: None,
    })
}
