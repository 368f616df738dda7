//! RFC 7523 `private_key_jwt` client assertions (ES256) for the
//! `client_credentials` variant, one per token or revocation request:
//! `iss` = `sub` = the client ID, `aud` the token endpoint (it identifies
//! the AS at either endpoint), a minute of life, a fresh `jti` (gnapd
//! refuses one seen before). Signed by gnapd's own key type ([`SigningKey::sign_jws`], counted
//! there as `sign:es256`).

use serde_json::json;

use super::dpop::now;
use crate::compare::driver::DriverError;
use crate::proto::b64;
use crate::proto::jwk::SigningKey;

/// How long an assertion is valid, seconds (gnapd allows up to 300).
pub const LIFETIME: i64 = 60;

/// A signed assertion of `client_id` for the AS whose token endpoint is
/// `token_endpoint`.
pub(crate) fn sign(
    key: &SigningKey,
    client_id: &str,
    token_endpoint: &str,
) -> Result<String, DriverError> {
    let jti = crate::random::text()
        .map_err(|_| DriverError::Protocol("no randomness for a jti".into()))?;
    let now = now();
    let header = json!({"alg": key.algorithm().jws_name(), "typ": "JWT"});
    let claims = json!({
        "iss": client_id, "sub": client_id, "aud": token_endpoint,
        "iat": now, "exp": now + LIFETIME, "jti": jti,
    });
    let input = format!(
        "{}.{}",
        b64::encode_url(header.to_string().as_bytes()),
        b64::encode_url(claims.to_string().as_bytes())
    );
    let signature = key
        .sign_jws(input.as_bytes())
        .map_err(|e| DriverError::Protocol(format!("client assertion: {e}")))?;
    Ok(format!("{input}.{}", b64::encode_url(&signature)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::oauth::client_assertion;

    #[test]
    fn the_assertion_verifies_for_its_client_and_token_endpoint() {
        let key = super::super::dpop::new_key().unwrap();
        let jwks = json!({"keys": [key.verifying_key().public_jwk().unwrap()]});
        let endpoint = "http://127.0.0.1:9/oauth/token";
        let jwt = sign(&key, "c1", endpoint).unwrap();
        let ok = client_assertion::verify(&jwt, "c1", &jwks, &[endpoint], now()).unwrap();
        assert_eq!(&ok.thumbprint, key.verifying_key().thumbprint());
        assert!(client_assertion::verify(&jwt, "c2", &jwks, &[endpoint], now()).is_err());
        assert!(
            client_assertion::verify(&jwt, "c1", &jwks, &["http://other/token"], now()).is_err()
        );
        let again = sign(&key, "c1", endpoint).unwrap();
        let second = client_assertion::verify(&again, "c1", &jwks, &[endpoint], now()).unwrap();
        assert_ne!(ok.jti, second.jti);
    }
}
