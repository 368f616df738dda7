//! Who the OAuth clients are: pre-registered in the configuration
//! (`[[oauth_client]]`), behind [`ClientDirectory`] so that other sources
//! (dynamic registration, metadata documents, which the HTTP edge fetches)
//! resolve a `client_id` to the same [`ClientInfo`].

use std::collections::HashMap;

use serde::Deserialize;

use crate::proto::oauth::client::{ClientInfo, ClientSource, TokenEndpointAuth};
use crate::proto::oauth::redirect;

/// Resolves a `client_id` the AS knows without I/O.
pub trait ClientDirectory: Send + Sync {
    /// The client with this id, if known here.
    fn client(&self, client_id: &str) -> Option<ClientInfo>;
}

/// An `[[oauth_client]]` of the configuration file:
///
/// ```toml
/// [[oauth_client]]
/// client_id = "my-agent"
/// client_name = "My agent"
/// redirect_uris = ["http://127.0.0.1/callback"]
/// # for a confidential client: SHA-256 of the secret, base64url
/// secret_sha256 = "…"
/// auth_method = "client_secret_basic"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthClientEntry {
    /// The `client_id`.
    pub client_id: String,
    /// What the consent page shows as the client's name.
    pub client_name: Option<String>,
    /// Where authorization responses may go.
    pub redirect_uris: Vec<String>,
    /// SHA-256 of the client secret, base64url (never the secret itself).
    pub secret_sha256: Option<String>,
    /// `none` (default without a secret), `client_secret_basic` (default
    /// with one) or `client_secret_post`.
    pub auth_method: Option<TokenEndpointAuth>,
    /// The grants it may use: `authorization_code` and `refresh_token`
    /// (the default), and for a confidential client the identity assertion
    /// grant `urn:ietf:params:oauth:grant-type:jwt-bearer` (SEP-990; the
    /// draft keeps it to confidential clients).
    pub grant_types: Option<Vec<String>>,
}

impl OAuthClientEntry {
    /// The client, or why the entry is wrong.
    pub fn resolve(&self) -> Result<ClientInfo, String> {
        let id = &self.client_id;
        if id.is_empty()
            || id.len() > super::MAX_CLIENT_ID
            || !id.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(format!(
                "oauth_client `{id}`: client_id must be 1 to 1024 printable ASCII characters"
            ));
        }
        if self.redirect_uris.is_empty() {
            return Err(format!("oauth_client `{id}`: redirect_uris is empty"));
        }
        for uri in &self.redirect_uris {
            redirect::check(uri).map_err(|e| format!("oauth_client `{id}`: {uri}: {e}"))?;
        }
        let secret_hash = match &self.secret_sha256 {
            None => None,
            Some(text) => Some(
                crate::proto::b64::decode_url(text)
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .ok_or_else(|| {
                        format!("oauth_client `{id}`: secret_sha256 is not 32 bytes of base64url")
                    })?,
            ),
        };
        let auth = match (self.auth_method, secret_hash.is_some()) {
            (None, false) => TokenEndpointAuth::None,
            (None, true) => TokenEndpointAuth::ClientSecretBasic,
            (Some(TokenEndpointAuth::None), false) => TokenEndpointAuth::None,
            (
                Some(
                    m
                    @ (TokenEndpointAuth::ClientSecretBasic | TokenEndpointAuth::ClientSecretPost),
                ),
                true,
            ) => m,
            (Some(m), _) => {
                return Err(format!(
                    "oauth_client `{id}`: auth_method {m:?} does not fit {} secret_sha256",
                    if secret_hash.is_some() { "a" } else { "no" }
                ));
            }
        };
        let grant_types = match &self.grant_types {
            None => vec!["authorization_code".into(), "refresh_token".into()],
            Some(types) => types.clone(),
        };
        for grant_type in &grant_types {
            match grant_type.as_str() {
                "authorization_code" | "refresh_token" => {}
                super::JWT_BEARER if secret_hash.is_some() => {}
                super::JWT_BEARER => {
                    return Err(format!(
                        "oauth_client `{id}`: the jwt-bearer grant is for confidential clients (give secret_sha256)"
                    ));
                }
                other => {
                    return Err(format!(
                        "oauth_client `{id}`: grant type `{other}` is not one a configured client uses"
                    ));
                }
            }
        }
        Ok(ClientInfo {
            client_id: id.clone(),
            client_name: self.client_name.clone(),
            redirect_uris: self.redirect_uris.clone(),
            token_endpoint_auth: auth,
            secret_hash,
            jwks: None,
            grant_types,
            source: ClientSource::Configured,
        })
    }
}

/// The clients of the configuration file.
#[derive(Debug, Clone, Default)]
pub struct ConfiguredClients(HashMap<String, ClientInfo>);

impl ConfiguredClients {
    /// From the file's entries; an invalid entry or a repeated `client_id`
    /// is an error (the server does not start).
    pub fn new(entries: &[OAuthClientEntry]) -> Result<Self, String> {
        let mut map = HashMap::new();
        for entry in entries {
            let client = entry.resolve()?;
            if map.insert(client.client_id.clone(), client).is_some() {
                return Err(format!("oauth_client `{}` appears twice", entry.client_id));
            }
        }
        Ok(Self(map))
    }
}

impl ClientDirectory for ConfiguredClients {
    fn client(&self, client_id: &str) -> Option<ClientInfo> {
        self.0.get(client_id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(toml_text: &str) -> OAuthClientEntry {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn a_public_client_and_a_confidential_one_resolve() {
        let public = entry("client_id = \"a\"\nredirect_uris = [\"http://127.0.0.1/cb\"]\n");
        assert_eq!(
            public.resolve().unwrap().token_endpoint_auth,
            TokenEndpointAuth::None
        );
        let secret = crate::proto::b64::encode_url(&[7u8; 32]);
        let confidential = entry(&format!(
            "client_id = \"b\"\nredirect_uris = [\"https://b.example/cb\"]\nsecret_sha256 = \"{secret}\"\nauth_method = \"client_secret_post\"\n"
        ));
        let info = confidential.resolve().unwrap();
        assert_eq!(
            info.token_endpoint_auth,
            TokenEndpointAuth::ClientSecretPost
        );
        assert_eq!(info.secret_hash, Some([7u8; 32]));
        let clients = ConfiguredClients::new(&[public, confidential]).unwrap();
        assert!(clients.client("a").is_some());
        assert!(clients.client("c").is_none());
    }

    #[test]
    fn bad_entries_are_refused() {
        for bad in [
            "client_id = \"a\"\nredirect_uris = []\n",
            "client_id = \"a\"\nredirect_uris = [\"http://example.com/cb\"]\n",
            "client_id = \"a\"\nredirect_uris = [\"https://a.example/cb#f\"]\n",
            "client_id = \"a\"\nredirect_uris = [\"https://a.example/cb\"]\nauth_method = \"client_secret_basic\"\n",
            "client_id = \"a\"\nredirect_uris = [\"https://a.example/cb\"]\nsecret_sha256 = \"short\"\n",
            "client_id = \"\"\nredirect_uris = [\"https://a.example/cb\"]\n",
            // The identity assertion grant is for confidential clients only.
            "client_id = \"a\"\nredirect_uris = [\"https://a.example/cb\"]\ngrant_types = [\"urn:ietf:params:oauth:grant-type:jwt-bearer\"]\n",
            "client_id = \"a\"\nredirect_uris = [\"https://a.example/cb\"]\ngrant_types = [\"client_credentials\"]\n",
        ] {
            assert!(entry(bad).resolve().is_err(), "{bad}");
        }
        let one = entry("client_id = \"a\"\nredirect_uris = [\"https://a.example/cb\"]\n");
        assert!(ConfiguredClients::new(&[one.clone(), one]).is_err());
    }
}
