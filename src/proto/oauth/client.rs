//! An OAuth client as the AS knows it, whichever way it became known: from
//! the configuration, by dynamic registration (RFC 7591) or from its
//! Client ID Metadata Document (draft-ietf-oauth-client-id-metadata-document).

use serde::{Deserialize, Serialize};

/// Where the AS learned of a client; shown on the consent page, because a
/// person should know how far to trust what the client says of itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ClientSource {
    /// Pre-registered by the operator in the configuration.
    Configured,
    /// Registered by itself at the registration endpoint (RFC 7591).
    Registered,
    /// Its `client_id` is the https URL of its metadata document.
    MetadataDocument {
        /// Every redirect URI of the document is a loopback one: anyone can
        /// publish such a document, so the page warns.
        localhost_only: bool,
    },
}

/// How a client authenticates at the token endpoint (RFC 7591 §2
/// `token_endpoint_auth_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenEndpointAuth {
    /// A public client: no authentication, PKCE binds the code.
    None,
    /// HTTP Basic with a client secret (RFC 6749 §2.3.1).
    ClientSecretBasic,
    /// A client secret in the form body (RFC 6749 §2.3.1).
    ClientSecretPost,
    /// A JWT signed with the client's key (RFC 7523 §2.2, OIDC Core §9).
    PrivateKeyJwt,
}

/// What the AS needs to know of a client to serve it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientInfo {
    /// The `client_id` (for a metadata document, its URL).
    pub client_id: String,
    /// `client_name`, as the client declared it (shown as the client's
    /// claim, never as a fact).
    pub client_name: Option<String>,
    /// `redirect_uris`: where authorization responses may go
    /// (compared by [`redirect_uri_matches`](super::scope) rules of RFC 8252).
    pub redirect_uris: Vec<String>,
    /// How it authenticates at the token endpoint.
    pub token_endpoint_auth: TokenEndpointAuth,
    /// SHA-256 of its client secret, for the secret methods.
    pub secret_hash: Option<[u8; 32]>,
    /// Its public keys (a JWK Set), for `private_key_jwt`.
    pub jwks: Option<serde_json::Value>,
    /// `grant_types` it may use.
    pub grant_types: Vec<String>,
    /// Where the AS learned of it.
    pub source: ClientSource,
}
