//! The GNAP driver's requests on the wire: a meter [`Request`] signed under
//! gnapd's own GNAP profile (`crate::proto::httpsig::sign_gnap`: `@method`,
//! `@target-uri`, `Content-Digest` on a body, `authorization` and the MCP
//! routing headers when present, `created`, `nonce`, `tag="gnap"`), the
//! conversion between the two request types, and the nonces the driver
//! makes.

use serde_json::Value;

use super::super::driver::DriverError;
use super::super::meter::Request;
use crate::clock::{Clock as _, SystemClock};
use crate::proto::b64;
use crate::proto::httpsig::{HttpRequest, SignOptions, sign_gnap};
use crate::proto::jwk::SigningKey;

/// The signature's view of `request`: same method, URL, header lines (in
/// order) and body bytes.
pub fn to_http(request: &Request) -> HttpRequest {
    let mut http = HttpRequest::new(request.method.as_str(), request.url.as_str());
    for (name, value) in &request.headers {
        http.fields.append(name.as_str(), value.as_bytes().to_vec());
    }
    http.body = request.body.clone();
    http
}

/// Back to a meter request, every header line the signer added included.
pub fn from_http(request: HttpRequest) -> Result<Request, DriverError> {
    let mut headers = Vec::new();
    for (name, value) in request.fields.iter() {
        let value = std::str::from_utf8(value)
            .map_err(|_| DriverError::Protocol(format!("header {name} is not text")))?;
        headers.push((name.to_owned(), value.to_owned()));
    }
    Ok(Request {
        method: request.method,
        url: request.target_uri,
        headers,
        body: request.body,
    })
}

/// `request` with `Authorization: GNAP token` (if any), signed by `key`.
pub fn sign(
    request: Request,
    key: &SigningKey,
    token: Option<&str>,
) -> Result<Request, DriverError> {
    let mut http = to_http(&request);
    if let Some(token) = token {
        http.fields.set("Authorization", format!("GNAP {token}"));
    }
    sign_gnap(&mut http, key, SystemClock.now(), &SignOptions::default())
        .map_err(|e| DriverError::Protocol(format!("signing: {e}")))?;
    from_http(http)
}

/// A signed JSON exchange with the AS: `body` (if any) as JSON, `Accept:
/// application/json`, the token (if any) presented and covered.
pub fn as_request(
    method: &str,
    url: &str,
    body: Option<&Value>,
    key: &SigningKey,
    token: Option<&str>,
) -> Result<Request, DriverError> {
    let mut request = Request::new(method, url);
    if let Some(body) = body {
        request = request.json(body);
    }
    sign(request.header("Accept", "application/json"), key, token)
}

/// A fresh random value (16 bytes, base64url): the finish nonce.
pub fn nonce() -> Result<String, DriverError> {
    let mut bytes = [0u8; 16];
    crate::random::fill(&mut bytes)
        .map_err(|_| DriverError::Protocol("no randomness for a nonce".into()))?;
    Ok(b64::encode_url(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::httpsig::{Algorithm, GnapProfile, MemoryNonceStore};

    fn key(algorithm: Algorithm) -> SigningKey {
        SigningKey::generate(algorithm).unwrap()
    }

    #[test]
    fn conversion_keeps_method_url_header_order_and_body() {
        let request = Request::new("POST", "http://127.0.0.1:1/mcp/alpha?x=1")
            .header("Mcp-Method", "tools/call")
            .header("Accept", "a")
            .header("Accept", "b");
        let mut request = request;
        request.body = b"{\"a\":1}".to_vec();
        let back = from_http(to_http(&request)).unwrap();
        assert_eq!(back.method, request.method);
        assert_eq!(back.url, request.url);
        assert_eq!(back.headers, request.headers);
        assert_eq!(back.body, request.body);
    }

    #[test]
    fn signed_requests_carry_digest_token_and_a_signature_the_server_accepts() {
        for algorithm in [Algorithm::Ed25519, Algorithm::EcdsaP256Sha256] {
            let key = key(algorithm);
            let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call"});
            let request = as_request(
                "POST",
                "http://127.0.0.1:1/mcp/alpha",
                Some(&body),
                &key,
                Some("T0K"),
            )
            .unwrap();
            let header = |name: &str| {
                request
                    .headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.clone())
            };
            assert_eq!(header("authorization").as_deref(), Some("GNAP T0K"));
            assert!(header("content-digest").unwrap().starts_with("sha-256=:"));
            let input = header("signature-input").unwrap();
            for covered in [
                "\"@method\"",
                "\"@target-uri\"",
                "\"content-digest\"",
                "\"authorization\"",
            ] {
                assert!(input.contains(covered), "{input}");
            }
            assert!(input.contains("tag=\"gnap\""), "{input}");
            // gnapd's own verifier accepts what the driver sends.
            let http = to_http(&request);
            GnapProfile::default()
                .verify(
                    &http,
                    key.verifying_key(),
                    SystemClock.now(),
                    &MemoryNonceStore::default(),
                )
                .unwrap();
        }
    }

    #[test]
    fn nonces_differ() {
        assert_ne!(nonce().unwrap(), nonce().unwrap());
    }
}
