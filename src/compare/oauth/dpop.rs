//! RFC 9449 DPoP proofs as the client makes them: a fresh P-256 key per
//! agent (ES256), one proof per request with a fresh `jti`, the current
//! time as `iat`, and `ath` when a token goes with it. The signature is
//! gnapd's own [`crate::proto::oauth::dpop::sign`] (counted there).

use crate::compare::driver::DriverError;
use crate::proto::httpsig::Algorithm;
use crate::proto::jwk::SigningKey;
use crate::proto::oauth::dpop;

/// A new agent's DPoP key (ES256).
pub(crate) fn new_key() -> Result<SigningKey, DriverError> {
    SigningKey::generate(Algorithm::EcdsaP256Sha256)
        .map_err(|e| DriverError::Protocol(format!("DPoP key: {e}")))
}

/// A proof by `key` for `method url` (with `ath` of `access_token`).
pub(crate) fn proof(
    key: &SigningKey,
    method: &str,
    url: &str,
    access_token: Option<&str>,
) -> Result<String, DriverError> {
    let jti = crate::random::text()
        .map_err(|_| DriverError::Protocol("no randomness for a jti".into()))?;
    dpop::sign(key, method, url, access_token, now(), &jti)
        .map_err(|e| DriverError::Protocol(format!("DPoP proof: {e}")))
}

/// Seconds since the epoch, as `iat` needs.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_verifies_for_its_method_url_and_token_only() {
        let key = new_key().unwrap();
        let url = "http://127.0.0.1:9/mcp/alpha";
        let p = proof(&key, "POST", url, Some("tok")).unwrap();
        let checked = dpop::verify(&p, "POST", url, Some("tok"), now(), dpop::WINDOW).unwrap();
        assert_eq!(checked.jkt, key.verifying_key().thumbprint().as_str());
        assert!(dpop::verify(&p, "GET", url, Some("tok"), now(), dpop::WINDOW).is_err());
        assert!(dpop::verify(&p, "POST", url, Some("other"), now(), dpop::WINDOW).is_err());
        let q = proof(&key, "POST", url, Some("tok")).unwrap();
        let again = dpop::verify(&q, "POST", url, Some("tok"), now(), dpop::WINDOW).unwrap();
        assert_ne!(checked.jti, again.jti, "every proof has its own jti");
        let header: serde_json::Value = serde_json::from_slice(
            &crate::proto::b64::decode_url(p.split('.').next().unwrap()).unwrap(),
        )
        .unwrap();
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["typ"], "dpop+jwt");
    }
}
