//! Making JWS proofs: the client side, tools and tests.

use serde_json::{Map, Value};

use super::JwsMethod;
use super::detached::content_payload;
use super::header::Typ;
use crate::proto::b64;
use crate::proto::jwk::{KeyError, SigningKey};

/// What a proof names: the request it is made for.
#[derive(Debug, Clone, Copy)]
pub struct ProofTarget<'a> {
    /// `htm`: the method.
    pub method: &'a str,
    /// `uri`: the absolute URI.
    pub uri: &'a str,
    /// `created`: Unix seconds.
    pub created: i64,
    /// The access token the request presents, for `ath`.
    pub access_token: Option<&'a str>,
}

/// The JOSE header a proof of type `typ` by `key` carries for `target`.
pub fn proof_header(key: &SigningKey, typ: Typ, target: &ProofTarget<'_>) -> Map<String, Value> {
    let public = key.verifying_key().public_jwk();
    let alg = public
        .and_then(|jwk| jwk.get("alg"))
        .and_then(Value::as_str)
        .unwrap_or(key.algorithm().jws_name());
    let mut header = Map::new();
    header.insert("alg".into(), alg.into());
    if let Some(kid) = key.verifying_key().kid() {
        header.insert("kid".into(), kid.into());
    }
    header.insert("typ".into(), typ.name().into());
    header.insert("htm".into(), target.method.into());
    header.insert("uri".into(), target.uri.into());
    header.insert("created".into(), target.created.into());
    if let Some(token) = target.access_token {
        let ath = b64::encode_url(&crate::proto::hash::sha256(token.as_bytes()));
        header.insert("ath".into(), ath.into());
    }
    header
}

/// Signs `header` over the payload segment `payload_b64`; the compact JWS
/// with that segment.
pub fn sign_compact(
    key: &SigningKey,
    header: &Map<String, Value>,
    payload_b64: &str,
) -> Result<String, KeyError> {
    let input = format!(
        "{}.{payload_b64}",
        b64::encode_url(Value::Object(header.clone()).to_string().as_bytes())
    );
    let signature = key.sign_jws(input.as_bytes())?;
    Ok(format!("{input}.{}", b64::encode_url(&signature)))
}

/// A detached proof of type `typ` over `body`, for the `Detached-JWS`
/// field. `attach_digest` keeps the digest as the payload segment (the
/// RFC's example); without it the segment is empty (RFC 7515 Appendix F).
pub fn sign_detached(
    key: &SigningKey,
    typ: Typ,
    target: &ProofTarget<'_>,
    body: &[u8],
    attach_digest: bool,
) -> Result<String, KeyError> {
    let compact = sign_compact(key, &proof_header(key, typ, target), &content_payload(body))?;
    if attach_digest || body.is_empty() {
        return Ok(compact);
    }
    let mut parts = compact.splitn(3, '.');
    let (header, _, signature) = (parts.next(), parts.next(), parts.next());
    Ok(format!(
        "{}..{}",
        header.unwrap_or_default(),
        signature.unwrap_or_default()
    ))
}

/// An attached proof: the compact JWS whose payload is `content`, sent as
/// the body with `Content-Type: application/jose`.
pub fn sign_attached(
    key: &SigningKey,
    target: &ProofTarget<'_>,
    content: &[u8],
) -> Result<String, KeyError> {
    sign_compact(
        key,
        &proof_header(key, Typ::Jws, target),
        &b64::encode_url(content),
    )
}

/// A rotation proof (§7.3.3.1, §7.3.4.1): `old` signs the request with the
/// rotation `typ`, `new` signs that JWS as its payload. For `jwsd` the
/// result goes in `Detached-JWS` (the body stays as it is); for `jws` it is
/// the body.
pub fn sign_rotation(
    method: JwsMethod,
    old: &SigningKey,
    new: &SigningKey,
    target: &ProofTarget<'_>,
    content: &[u8],
) -> Result<String, KeyError> {
    let inner_payload = match method {
        JwsMethod::Detached => content_payload(content),
        JwsMethod::Attached => b64::encode_url(content),
    };
    let inner = sign_compact(
        old,
        &proof_header(old, method.rotation_typ(), target),
        &inner_payload,
    )?;
    sign_compact(
        new,
        &proof_header(new, method.typ(), target),
        &b64::encode_url(inner.as_bytes()),
    )
}
