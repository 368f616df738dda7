//! The client's metadata (RFC 7591 §2), and dynamic registration with it
//! (RFC 7591 §3): what an MCP client registers, or publishes as its client
//! ID metadata document (the same members, plus `client_id`).

use serde_json::{Value, json};

use crate::compare::driver::{DriverError, unexpected};
use crate::compare::meter::{Meter, Request};

/// The name every agent of the comparison gives itself.
pub const CLIENT_NAME: &str = "gnapd compare agent";

/// The redirect URI of an authorization-code agent: loopback `http`
/// (RFC 8252 §7.3), where a native client would listen. The browser is
/// stopped at it and never fetches it.
pub const REDIRECT_URI: &str = "http://127.0.0.1:8976/callback";

/// A public authorization-code client with one loopback redirect URI
/// (MCP: `application_type` native, no secret, refresh tokens wanted).
pub fn code_client() -> Value {
    json!({
        "client_name": CLIENT_NAME,
        "redirect_uris": [REDIRECT_URI],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "application_type": "native",
    })
}

/// A headless client authenticating with `private_key_jwt` by the key
/// whose public JWK is `public_jwk` (SEP-1046).
pub fn assertion_client(public_jwk: &Value) -> Value {
    json!({
        "client_name": CLIENT_NAME,
        "redirect_uris": [],
        "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "private_key_jwt",
        "token_endpoint_auth_signing_alg": "ES256",
        "jwks": {"keys": [public_jwk]},
    })
}

/// The registration request: `metadata` as JSON to `endpoint`.
pub fn request(endpoint: &str, metadata: &Value) -> Request {
    Request::new("POST", endpoint)
        .json(metadata)
        .header("Accept", "application/json")
}

/// Registers `metadata`; the `client_id` of the 201.
pub(crate) async fn register(
    meter: &mut Meter,
    endpoint: &str,
    metadata: &Value,
) -> Result<String, DriverError> {
    let answer = meter.send(request(endpoint, metadata)).await?;
    if answer.status != 201 {
        return Err(unexpected("registration", &answer));
    }
    answer.json()["client_id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| unexpected("registration without client_id", &answer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::oauth::registration::read_registration;

    #[test]
    fn gnapd_reads_both_registrations_as_meant() {
        let code = read_registration(code_client().to_string().as_bytes()).unwrap();
        assert_eq!(code.redirect_uris, [REDIRECT_URI]);
        let key = super::super::dpop::new_key().unwrap();
        let jwk = key.verifying_key().public_jwk().unwrap().clone();
        let headless = read_registration(assertion_client(&jwk).to_string().as_bytes()).unwrap();
        assert!(headless.redirect_uris.is_empty());
        assert!(headless.jwks.is_some());
        let req = request("http://127.0.0.1:9/oauth/register", &code_client());
        assert_eq!(req.method, "POST");
        assert!(
            req.headers
                .iter()
                .any(|(n, v)| n == "Content-Type" && v == "application/json")
        );
    }
}
