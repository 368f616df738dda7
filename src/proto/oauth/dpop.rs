//! DPoP proofs (RFC 9449): the JWT a client signs for each request with the
//! key its token is bound to, checked as §4.3 lists. Pure: the caller
//! supplies the clock and remembers `jti`s (§11.1, replay), and compares
//! the proof's key with the token's (§4.3 step 12, `jkt`).
//!
//! The signature is checked with the same [`VerifyingKey`] the GNAP side
//! uses, so the accepted algorithms are the asymmetric ones gnapd already
//! verifies (and the key rules — no private members, RSA sizes — are the
//! same).

use serde_json::Value;

use crate::proto::alg::Algorithm;
use crate::proto::b64;
use crate::proto::jwk::{SigningKey, VerifyingKey};

/// The JWS `alg` values a proof may use: what
/// `dpop_signing_alg_values_supported` and the `DPoP algs` challenge list.
pub const ALGS: &[&str] = Algorithm::JWS_SIGNATURE_NAMES;

/// The `typ` header of a proof (§4.2).
pub const TYP: &str = "dpop+jwt";

/// Largest proof read, in bytes: an RSA-4096 key in the header and the
/// claims stay well under it.
pub const MAX_PROOF_LEN: usize = 8 * 1024;

/// A proof that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct DpopProof {
    /// The RFC 7638 thumbprint of the proof's key.
    pub jkt: String,
    /// The proof's public key, as sent.
    pub jwk: Value,
    /// The proof's unique identifier: the caller refuses one seen before.
    pub jti: String,
    /// When the client made it (Unix seconds).
    pub iat: i64,
}

/// How far a proof's `iat` may be from the verifier's clock, either way,
/// in seconds: a proof is made for one request, so a minute covers clock
/// skew and a slow network. Its `jti` is remembered as long.
pub const WINDOW: i64 = 60;

/// Why a proof is refused (all `invalid_dpop_proof`, RFC 9449 §7.1). An
/// absent or repeated `DPoP` field reads as [`DpopError::Malformed`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DpopError {
    /// Not a compact JWS of JSON header and claims, or too large.
    #[error("the DPoP proof is not a well-formed JWT")]
    Malformed,
    /// `typ` is not `dpop+jwt`.
    #[error("the DPoP proof's typ is not dpop+jwt")]
    Typ,
    /// `alg` is absent, `none`, symmetric or not supported.
    #[error("the DPoP proof's alg is not an accepted asymmetric algorithm")]
    Alg,
    /// The `jwk` header is absent, not a public key, or does not fit `alg`.
    #[error("the DPoP proof's jwk is not an acceptable public key")]
    Jwk,
    /// The signature does not verify under the `jwk`.
    #[error("the DPoP proof's signature does not verify")]
    Signature,
    /// A required claim is absent or of the wrong type.
    #[error("the DPoP proof lacks the claim `{0}`")]
    Missing(&'static str),
    /// `htm` is not the request's method.
    #[error("the DPoP proof is for another HTTP method")]
    Htm,
    /// `htu` is not the request's URI.
    #[error("the DPoP proof is for another URI")]
    Htu,
    /// `iat` is outside the accepted window.
    #[error("the DPoP proof's iat is outside the accepted window")]
    Iat,
    /// `ath` is not the hash of the presented access token.
    #[error("the DPoP proof's ath does not match the access token")]
    Ath,
    /// The caller's replay memory saw this `jti` before (§11.1); never
    /// returned by [`verify`].
    #[error("the DPoP proof was used before")]
    Replayed,
}

/// Checks `proof` for a request `method target_uri` (RFC 9449 §4.3): the
/// JOSE header (`typ`, an asymmetric `alg`, a public `jwk`), the signature,
/// `htm`, `htu` (both normalized, query and fragment ignored), `iat` within
/// `window` seconds of `now` either way, a `jti`, and, when
/// `access_token` is given, `ath`.
pub fn verify(
    proof: &str,
    method: &str,
    target_uri: &str,
    access_token: Option<&str>,
    now: i64,
    window: i64,
) -> Result<DpopProof, DpopError> {
    if proof.len() > MAX_PROOF_LEN {
        return Err(DpopError::Malformed);
    }
    let mut parts = proof.split('.');
    let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(DpopError::Malformed);
    };
    let header = json_part(header_b64)?;
    let claims = json_part(claims_b64)?;
    if header.get("typ").and_then(Value::as_str) != Some(TYP) {
        return Err(DpopError::Typ);
    }
    let algorithm = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(Algorithm::from_jws_signature_name)
        .ok_or(DpopError::Alg)?;
    let jwk = header.get("jwk").ok_or(DpopError::Jwk)?;
    // Refuses private members, symmetric keys and a key of another type
    // than `alg` names.
    let key = VerifyingKey::from_public_jwk(jwk, Some(algorithm)).map_err(|_| DpopError::Jwk)?;
    let signature = b64::decode_url(signature_b64).ok_or(DpopError::Malformed)?;
    let signed_len = header_b64.len() + 1 + claims_b64.len();
    key.verify_jws(&proof.as_bytes()[..signed_len], &signature)
        .map_err(|_| DpopError::Signature)?;

    let claim = |name: &'static str| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .ok_or(DpopError::Missing(name))
    };
    let jti = claim("jti")?;
    if jti.is_empty() {
        return Err(DpopError::Missing("jti"));
    }
    if claim("htm")? != method {
        return Err(DpopError::Htm);
    }
    let htu = claim("htu")?;
    match (normalize_uri(htu), normalize_uri(target_uri)) {
        (Some(a), Some(b)) if a == b => {}
        _ => return Err(DpopError::Htu),
    }
    let iat = claims
        .get("iat")
        .and_then(Value::as_i64)
        .ok_or(DpopError::Missing("iat"))?;
    if iat.abs_diff(now) > window.unsigned_abs() {
        return Err(DpopError::Iat);
    }
    if let Some(token) = access_token {
        let expected = ath(token);
        let sent = claim("ath")?;
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            sent.as_bytes(),
            expected.as_bytes(),
        )) {
            return Err(DpopError::Ath);
        }
    }
    Ok(DpopProof {
        jkt: key.thumbprint().as_str().to_owned(),
        jwk: jwk.clone(),
        jti: jti.to_owned(),
        iat,
    })
}

/// `ath` for `access_token` (§4.2): base64url of its SHA-256.
pub fn ath(access_token: &str) -> String {
    b64::encode_url(&crate::proto::hash::sha256(access_token.as_bytes()))
}

/// Makes a proof with `key` (the client side: tests and tools). `jti` must
/// be unique per proof.
pub fn sign(
    key: &SigningKey,
    method: &str,
    uri: &str,
    access_token: Option<&str>,
    iat: i64,
    jti: &str,
) -> Result<String, crate::proto::jwk::KeyError> {
    let jwk = key
        .verifying_key()
        .public_jwk()
        .cloned()
        .ok_or(crate::proto::jwk::KeyError::Symmetric)?;
    let header = serde_json::json!({"typ": TYP, "alg": key.algorithm().jws_name(), "jwk": jwk});
    let mut claims = serde_json::json!({"jti": jti, "htm": method, "htu": uri, "iat": iat});
    if let Some(token) = access_token {
        claims["ath"] = ath(token).into();
    }
    let signing_input = format!(
        "{}.{}",
        b64::encode_url(header.to_string().as_bytes()),
        b64::encode_url(claims.to_string().as_bytes())
    );
    let signature = key.sign_jws(signing_input.as_bytes())?;
    Ok(format!("{signing_input}.{}", b64::encode_url(&signature)))
}

fn json_part(part: &str) -> Result<serde_json::Map<String, Value>, DpopError> {
    let bytes = b64::decode_url(part).ok_or(DpopError::Malformed)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(DpopError::Malformed),
    }
}

/// An http(s) URI without query and fragment, normalized as RFC 3986 §6.2.2
/// (case, percent-encoding) and §6.2.3 (default port, empty path) say, as
/// RFC 9449 §4.3 asks before comparing `htu`. `None` for anything else.
pub fn normalize_uri(uri: &str) -> Option<String> {
    let uri = uri.split('#').next()?;
    let uri = uri.split('?').next()?;
    let (scheme, rest) = uri.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => ":443",
        "http" => ":80",
        _ => return None,
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let mut authority = authority.to_ascii_lowercase();
    if authority.ends_with(default_port) {
        authority.truncate(authority.len() - default_port.len());
    }
    let path = if path.is_empty() { "/" } else { path };
    Some(format!(
        "{scheme}://{authority}{}",
        normalize_percent(path)?
    ))
}

/// Percent-encodings in upper case, and the unreserved characters they may
/// hide decoded (RFC 3986 §6.2.2.1, §6.2.2.2).
fn normalize_percent(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = path.get(i + 1..i + 3)?;
            let value = u8::from_str_radix(hex, 16).ok()?;
            if value.is_ascii_alphanumeric() || matches!(value, b'-' | b'.' | b'_' | b'~') {
                out.push(char::from(value));
            } else {
                out.push('%');
                out.push_str(&hex.to_ascii_uppercase());
            }
            i += 3;
        } else {
            out.push(char::from(bytes[i]));
            i += 1;
        }
    }
    path.is_ascii().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const URI: &str = "https://gw.example/mcp/github";
    const NOW: i64 = 1_800_000_000;

    fn key() -> SigningKey {
        SigningKey::generate(Algorithm::EcdsaP256Sha256).unwrap()
    }

    /// A proof with the given header and claims, signed by `key` as is.
    fn raw(key: &SigningKey, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64::encode_url(header.to_string().as_bytes()),
            b64::encode_url(claims.to_string().as_bytes())
        );
        let sig = key.sign(input.as_bytes()).unwrap();
        format!("{input}.{}", b64::encode_url(&sig))
    }

    fn header(key: &SigningKey) -> Value {
        json!({"typ": TYP, "alg": key.algorithm().jws_name(), "jwk": key.verifying_key().public_jwk().unwrap()})
    }

    fn claims() -> Value {
        json!({"jti": "j1", "htm": "POST", "htu": URI, "iat": NOW, "ath": ath("T")})
    }

    #[test]
    fn a_proof_counts_as_one_jws_signature_each_way_and_one_ath_hash() {
        use crate::proto::crypto_ops::this_thread;
        let key = key();
        let before = this_thread();
        let proof = sign(&key, "POST", URI, Some("T"), NOW, "j1").unwrap();
        verify(&proof, "POST", URI, Some("T"), NOW, 60).unwrap();
        let after = this_thread();
        let delta =
            |k: &str| after.get(k).copied().unwrap_or(0) - before.get(k).copied().unwrap_or(0);
        assert_eq!(delta("sign:es256"), 1);
        assert_eq!(delta("verify:es256"), 1);
        assert_eq!(delta("sign:ecdsa-p256-sha256"), 0);
        // `ath` once when signing and once when checking; the thumbprint
        // of the proof's key once when it is read.
        assert_eq!(delta("hash:sha-256"), 3);
    }

    #[test]
    fn a_proof_from_every_supported_algorithm_verifies_and_names_its_key() {
        for alg in [
            Algorithm::Ed25519,
            Algorithm::EcdsaP256Sha256,
            Algorithm::EcdsaP384Sha384,
            Algorithm::RsaPssSha512,
            Algorithm::RsaV15Sha256,
        ] {
            let key = SigningKey::generate(alg).unwrap();
            assert!(ALGS.contains(&alg.jws_name()), "{alg}");
            let proof = sign(&key, "POST", URI, Some("T"), NOW, "j1").unwrap();
            let ok = verify(&proof, "POST", URI, Some("T"), NOW, 60).unwrap();
            assert_eq!(ok.jkt, key.verifying_key().thumbprint().as_str(), "{alg}");
            assert_eq!((ok.jti.as_str(), ok.iat), ("j1", NOW));
            assert_eq!(&ok.jwk, key.verifying_key().public_jwk().unwrap());
        }
    }

    #[test]
    fn a_tampered_proof_is_refused() {
        let key = key();
        let proof = sign(&key, "POST", URI, None, NOW, "j1").unwrap();
        // Another claims part under the same signature.
        let mut parts: Vec<&str> = proof.split('.').collect();
        let other = b64::encode_url(
            json!({"jti": "j1", "htm": "GET", "htu": URI, "iat": NOW})
                .to_string()
                .as_bytes(),
        );
        parts[1] = &other;
        assert_eq!(
            verify(&parts.join("."), "GET", URI, None, NOW, 60),
            Err(DpopError::Signature)
        );
        // Signed by another key than the header's.
        let mut h = header(&key);
        h["jwk"] = key_other_jwk();
        assert_eq!(
            verify(&raw(&key, &h, &claims()), "POST", URI, None, NOW, 60),
            Err(DpopError::Signature)
        );
        for bad in [
            "",
            "a.b",
            "a.b.c.d",
            "!.!.!",
            &"x".repeat(MAX_PROOF_LEN + 1),
        ] {
            assert_eq!(
                verify(bad, "POST", URI, None, NOW, 60),
                Err(DpopError::Malformed)
            );
        }
    }

    fn key_other_jwk() -> Value {
        key().verifying_key().public_jwk().unwrap().clone()
    }

    #[test]
    fn a_proof_for_another_method_or_uri_is_refused() {
        let key = key();
        let proof = sign(&key, "POST", URI, None, NOW, "j1").unwrap();
        assert_eq!(
            verify(&proof, "GET", URI, None, NOW, 60),
            Err(DpopError::Htm)
        );
        assert_eq!(
            verify(&proof, "post", URI, None, NOW, 60),
            Err(DpopError::Htm)
        );
        for other in [
            "https://gw.example/mcp/gitlab",
            "https://other.example/mcp/github",
            "http://gw.example/mcp/github",
            "https://gw.example:8443/mcp/github",
        ] {
            assert_eq!(
                verify(&proof, "POST", other, None, NOW, 60),
                Err(DpopError::Htu),
                "{other}"
            );
        }
    }

    #[test]
    fn htu_is_compared_normalized_without_query_and_fragment() {
        let key = key();
        for sent in [
            "https://GW.example/mcp/github",
            "HTTPS://gw.example:443/mcp/github",
            "https://gw.example/mcp/git%68ub",
            "https://gw.example/mcp/github?x=1#f",
        ] {
            let proof = sign(&key, "POST", sent, None, NOW, "j1").unwrap();
            assert!(verify(&proof, "POST", URI, None, NOW, 60).is_ok(), "{sent}");
        }
        assert_eq!(normalize_uri("http://h:80").as_deref(), Some("http://h/"));
        assert_eq!(normalize_uri("http://u@h/"), None);
        assert_eq!(normalize_uri("ftp://h/"), None);
        assert_eq!(normalize_uri("https://h/%zz"), None);
        assert_eq!(
            normalize_uri("https://h/a%2fb").as_deref(),
            Some("https://h/a%2Fb")
        );
    }

    #[test]
    fn a_stale_or_future_iat_is_refused() {
        let key = key();
        for iat in [NOW - 61, NOW + 61, i64::MIN, i64::MAX] {
            let proof = sign(&key, "POST", URI, None, iat, "j1").unwrap();
            assert_eq!(
                verify(&proof, "POST", URI, None, NOW, 60),
                Err(DpopError::Iat),
                "{iat}"
            );
        }
        let edge = sign(&key, "POST", URI, None, NOW - 60, "j1").unwrap();
        assert!(verify(&edge, "POST", URI, None, NOW, 60).is_ok());
    }

    #[test]
    fn an_ath_for_another_token_or_none_is_refused() {
        let key = key();
        let proof = sign(&key, "POST", URI, Some("other"), NOW, "j1").unwrap();
        assert_eq!(
            verify(&proof, "POST", URI, Some("T"), NOW, 60),
            Err(DpopError::Ath)
        );
        let without = sign(&key, "POST", URI, None, NOW, "j1").unwrap();
        assert_eq!(
            verify(&without, "POST", URI, Some("T"), NOW, 60),
            Err(DpopError::Missing("ath"))
        );
        // RFC 9449 §4.2's example: the hash of the token value's ASCII.
        assert_eq!(
            ath("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
            "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
        );
    }

    #[test]
    fn a_private_key_in_the_header_is_refused() {
        let key = key();
        let mut h = header(&key);
        h["jwk"] = key.private_jwk().clone();
        assert_eq!(
            verify(&raw(&key, &h, &claims()), "POST", URI, None, NOW, 60),
            Err(DpopError::Jwk)
        );
        let mut no_jwk = header(&key);
        no_jwk.as_object_mut().unwrap().remove("jwk");
        assert_eq!(
            verify(&raw(&key, &no_jwk, &claims()), "POST", URI, None, NOW, 60),
            Err(DpopError::Jwk)
        );
        // A key of another type than `alg` names.
        let mut mismatch = header(&key);
        mismatch["alg"] = "EdDSA".into();
        assert_eq!(
            verify(&raw(&key, &mismatch, &claims()), "POST", URI, None, NOW, 60),
            Err(DpopError::Jwk)
        );
    }

    #[test]
    fn alg_none_symmetric_or_unknown_is_refused() {
        let key = key();
        for alg in [json!("none"), json!("HS256"), json!("ES512"), json!(null)] {
            let mut h = header(&key);
            h["alg"] = alg.clone();
            assert_eq!(
                verify(&raw(&key, &h, &claims()), "POST", URI, None, NOW, 60),
                Err(DpopError::Alg),
                "{alg}"
            );
        }
        // An unsigned proof (alg none, empty signature).
        let mut h = header(&key);
        h["alg"] = "none".into();
        let unsigned = format!(
            "{}.{}.",
            b64::encode_url(h.to_string().as_bytes()),
            b64::encode_url(claims().to_string().as_bytes())
        );
        assert_eq!(
            verify(&unsigned, "POST", URI, None, NOW, 60),
            Err(DpopError::Alg)
        );
    }

    #[test]
    fn a_missing_or_wrong_typ_is_refused() {
        let key = key();
        for typ in [json!(null), json!("JWT"), json!("DPoP+JWT")] {
            let mut h = header(&key);
            h["typ"] = typ.clone();
            assert_eq!(
                verify(&raw(&key, &h, &claims()), "POST", URI, None, NOW, 60),
                Err(DpopError::Typ),
                "{typ}"
            );
        }
    }

    #[test]
    fn missing_claims_are_refused() {
        let key = key();
        for (name, missing) in [
            ("jti", "jti"),
            ("htm", "htm"),
            ("htu", "htu"),
            ("iat", "iat"),
        ] {
            let mut c = claims();
            c.as_object_mut().unwrap().remove(name);
            assert_eq!(
                verify(&raw(&key, &header(&key), &c), "POST", URI, None, NOW, 60),
                Err(DpopError::Missing(missing)),
                "{name}"
            );
        }
        let mut empty = claims();
        empty["jti"] = "".into();
        assert_eq!(
            verify(
                &raw(&key, &header(&key), &empty),
                "POST",
                URI,
                None,
                NOW,
                60
            ),
            Err(DpopError::Missing("jti"))
        );
    }
}
