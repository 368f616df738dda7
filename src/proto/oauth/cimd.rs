//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document,
//! the MCP 2026-07-28 "Client ID Metadata Documents" section): a client
//! whose `client_id` is an https URL publishes its metadata there, and the
//! AS reads it instead of a registration. Sans I/O: the fetch is
//! `crate::http::oauth_clients::fetch`; this checks what came back.
//!
//! Rules, each refusing the document:
//! - the URL itself: https, a path, no fragment, userinfo, query or dot
//!   segment ([`is_acceptable_client_id_url`]);
//! - a JSON object whose `client_id` is exactly the URL it was fetched from
//!   (string comparison, no normalization: the draft's MUST);
//! - `client_name` and `redirect_uris` present (MCP's required members),
//!   the redirect URIs https or loopback http (the RFC 7591 rules of
//!   [`super::registration`]); empty only for a document without the
//!   `authorization_code` grant (a headless client's, draft §4.2);
//! - no shared secret: `client_secret`, `client_secret_expires_at` and the
//!   secret auth methods are refused (a public document cannot hold one);
//!   `token_endpoint_auth_method` is `none` (the default when omitted) or
//!   `private_key_jwt` with the keys inline in `jwks` (`jwks_uri` is not
//!   fetched: one SSRF surface is enough).

use serde_json::Value;

use super::client::{ClientInfo, ClientSource, TokenEndpointAuth};
use super::client_uri::{is_acceptable_client_id_url, is_loopback_redirect};
use super::registration::{RegistrationError, check_auth_fits, read_metadata};

/// Largest document read, in bytes (the size a deployed reference uses).
pub const MAX_DOCUMENT: usize = 5 * 1024;

/// Why a metadata document (or its URL) was refused. The text is ours and
/// may be shown to the client as an `error_description`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CimdError {
    /// The `client_id` is not an acceptable document URL.
    #[error(
        "the client_id is not an https URL with a path, without fragment, query, credentials or dot segments"
    )]
    Url,
    /// The document could not be fetched; the reason says why in our words.
    #[error("the client metadata document could not be fetched: {0}")]
    Fetch(String),
    /// Not a JSON object (or larger than [`MAX_DOCUMENT`]).
    #[error("the client metadata document is not a JSON object of at most 5 KB")]
    NotJson,
    /// Its `client_id` is not the URL it was fetched from.
    #[error("the document's client_id is not the URL it was fetched from")]
    ClientIdMismatch,
    /// A required member is missing.
    #[error("the document lacks `{0}`")]
    Missing(&'static str),
    /// It carries a client secret or asks for a secret method.
    #[error("a client metadata document must not carry or use a client secret")]
    Secret,
    /// A member breaks an RFC 7591 rule.
    #[error("{0}")]
    Metadata(String),
}

impl From<RegistrationError> for CimdError {
    fn from(e: RegistrationError) -> Self {
        Self::Metadata(e.to_string())
    }
}

/// Checks that `url` may be fetched as a client's metadata document.
pub fn check_url(url: &str) -> Result<(), CimdError> {
    if is_acceptable_client_id_url(url) {
        Ok(())
    } else {
        Err(CimdError::Url)
    }
}

/// The client the document fetched from `url` describes.
pub fn read_document(url: &str, body: &[u8]) -> Result<ClientInfo, CimdError> {
    check_url(url)?;
    if body.len() > MAX_DOCUMENT {
        return Err(CimdError::NotJson);
    }
    let value: Value = serde_json::from_slice(body).map_err(|_| CimdError::NotJson)?;
    let map = value.as_object().ok_or(CimdError::NotJson)?;
    match map.get("client_id") {
        Some(Value::String(id)) if id == url => {}
        Some(_) => return Err(CimdError::ClientIdMismatch),
        None => return Err(CimdError::Missing("client_id")),
    }
    for required in ["client_name", "redirect_uris"] {
        if !map.contains_key(required) {
            return Err(CimdError::Missing(required));
        }
    }
    if map.contains_key("client_secret") || map.contains_key("client_secret_expires_at") {
        return Err(CimdError::Secret);
    }
    let metadata = read_metadata(map).map_err(|e| match map.get("token_endpoint_auth_method") {
        Some(Value::String(m)) if m.starts_with("client_secret") => CimdError::Secret,
        _ => CimdError::from(e),
    })?;
    let auth = metadata
        .token_endpoint_auth
        .unwrap_or(TokenEndpointAuth::None);
    if !matches!(
        auth,
        TokenEndpointAuth::None | TokenEndpointAuth::PrivateKeyJwt
    ) {
        return Err(CimdError::Secret);
    }
    // An empty `redirect_uris` passed `read_metadata` only without the
    // code grant: a headless client's document (draft §4.2: redirect
    // URLs do not apply to the client credentials grant).
    check_auth_fits(&metadata, auth)?;
    let localhost_only = !metadata.redirect_uris.is_empty()
        && metadata
            .redirect_uris
            .iter()
            .all(|u| is_loopback_redirect(u));
    Ok(ClientInfo {
        client_id: url.to_owned(),
        client_name: metadata.client_name,
        redirect_uris: metadata.redirect_uris,
        token_endpoint_auth: auth,
        secret_hash: None,
        jwks: (auth == TokenEndpointAuth::PrivateKeyJwt)
            .then_some(metadata.jwks)
            .flatten(),
        grant_types: metadata.grant_types,
        source: ClientSource::MetadataDocument { localhost_only },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const URL: &str = "https://app.example/oauth/client.json";

    fn doc(extra: Value) -> Vec<u8> {
        let mut base = json!({
            "client_id": URL,
            "client_name": "Example",
            "redirect_uris": ["https://app.example/cb", "http://127.0.0.1/cb"],
        });
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                base.as_object_mut().unwrap().remove(k);
            } else {
                base[k] = v.clone();
            }
        }
        base.to_string().into_bytes()
    }

    #[test]
    fn a_document_naming_its_own_url_becomes_a_public_client() {
        let client = read_document(URL, &doc(json!({}))).unwrap();
        assert_eq!(client.client_id, URL);
        assert_eq!(client.token_endpoint_auth, TokenEndpointAuth::None);
        assert_eq!(
            client.source,
            ClientSource::MetadataDocument {
                localhost_only: false
            }
        );
        let local = read_document(
            URL,
            &doc(json!({"redirect_uris": ["http://localhost:33418/cb"]})),
        )
        .unwrap();
        assert_eq!(
            local.source,
            ClientSource::MetadataDocument {
                localhost_only: true
            }
        );
    }

    #[test]
    fn the_client_id_must_be_exactly_the_url_fetched() {
        for other in [
            "https://app.example/oauth/client.json/",
            "https://APP.example/oauth/client.json",
            "https://evil.example/oauth/client.json",
        ] {
            assert_eq!(
                read_document(URL, &doc(json!({"client_id": other}))),
                Err(CimdError::ClientIdMismatch),
                "{other}"
            );
        }
        assert_eq!(
            read_document(URL, &doc(json!({"client_id": null}))),
            Err(CimdError::Missing("client_id"))
        );
    }

    #[test]
    fn required_members_secrets_and_bad_redirects_are_refused() {
        assert_eq!(
            read_document(URL, &doc(json!({"client_name": null}))),
            Err(CimdError::Missing("client_name"))
        );
        assert_eq!(
            read_document(URL, &doc(json!({"redirect_uris": null}))),
            Err(CimdError::Missing("redirect_uris"))
        );
        assert_eq!(
            read_document(URL, &doc(json!({"client_secret": "x"}))),
            Err(CimdError::Secret)
        );
        assert_eq!(
            read_document(
                URL,
                &doc(json!({"token_endpoint_auth_method": "client_secret_basic"}))
            ),
            Err(CimdError::Secret)
        );
        assert!(matches!(
            read_document(
                URL,
                &doc(json!({"redirect_uris": ["http://app.example/cb"]}))
            ),
            Err(CimdError::Metadata(_))
        ));
        assert!(matches!(
            read_document(
                URL,
                &doc(json!({"token_endpoint_auth_method": "private_key_jwt"}))
            ),
            Err(CimdError::Metadata(_))
        ));
        assert_eq!(read_document(URL, b"[]"), Err(CimdError::NotJson));
        let big = doc(json!({"client_name": "x".repeat(MAX_DOCUMENT)}));
        assert_eq!(read_document(URL, &big), Err(CimdError::NotJson));
    }

    #[test]
    fn a_headless_clients_document_needs_keys_and_no_redirect() {
        let key =
            crate::proto::jwk::SigningKey::generate(crate::proto::alg::Algorithm::Ed25519).unwrap();
        let jwks = json!({"keys": [key.verifying_key().public_jwk().unwrap()]});
        let headless = doc(json!({
            "redirect_uris": [],
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": jwks,
        }));
        let client = read_document(URL, &headless).unwrap();
        assert_eq!(client.token_endpoint_auth, TokenEndpointAuth::PrivateKeyJwt);
        assert!(client.jwks.is_some());
        // The code grant still needs a redirect URI.
        assert!(read_document(URL, &doc(json!({"redirect_uris": []}))).is_err());
    }

    #[test]
    fn the_url_itself_is_checked_before_anything_is_read() {
        for bad in [
            "http://app.example/client.json",
            "https://app.example",
            "https://app.example/a/../client.json",
            "https://app.example/client.json#f",
            "https://u@app.example/client.json",
        ] {
            assert_eq!(check_url(bad), Err(CimdError::Url), "{bad}");
        }
    }
}
