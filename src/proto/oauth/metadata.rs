//! The authorization server metadata document (RFC 8414 §2) of gnapd's
//! OAuth face, served at `/.well-known/oauth-authorization-server` and, for
//! clients that look there first, `/.well-known/openid-configuration`.
//!
//! `issuer` is the public URL, which has no path, so both well-known URLs
//! sit at the root (RFC 8414 §3.1) and a client's check that `issuer`
//! equals what it built the URL from holds byte for byte (§3.3).

use serde::Serialize;

/// The authorization endpoint's path.
pub const AUTHORIZE_PATH: &str = "/oauth/authorize";
/// The token endpoint's path.
pub const TOKEN_PATH: &str = "/oauth/token";
/// The revocation endpoint's path (RFC 7009).
pub const REVOKE_PATH: &str = "/oauth/revoke";
/// The dynamic client registration endpoint's path (RFC 7591).
pub const REGISTER_PATH: &str = "/oauth/register";
/// The introspection endpoint's path (RFC 7662).
pub const INTROSPECT_PATH: &str = "/oauth/introspect";
/// RFC 8414 §3: the metadata's well-known path.
pub const WELL_KNOWN_PATH: &str = "/.well-known/oauth-authorization-server";
/// OpenID Connect Discovery's path, which MCP clients also try.
pub const OPENID_CONFIGURATION_PATH: &str = "/.well-known/openid-configuration";

/// The DPoP proof algorithms (RFC 9449 §5.1): the one verifier's list, at
/// the token endpoint and the gateway alike.
pub const DPOP_ALGS: &[&str] = super::dpop::ALGS;

/// What the document says that depends on the server's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings<'a> {
    /// The public URL: the issuer.
    pub issuer: &'a str,
    /// Dynamic client registration is on.
    pub registration: bool,
    /// The grant types the token endpoint serves.
    pub grant_types: Vec<&'static str>,
    /// The client authentication methods the token endpoint accepts.
    pub auth_methods: Vec<&'static str>,
    /// The scopes to advertise (one whole-upstream scope per upstream).
    pub scopes: Vec<String>,
}

/// The document (RFC 8414 §2 members, plus RFC 9207 §3, RFC 9449 §5.1 and
/// the Client ID Metadata Document draft's member).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Metadata {
    /// `issuer`.
    pub issuer: String,
    /// `authorization_endpoint`.
    pub authorization_endpoint: String,
    /// `token_endpoint`.
    pub token_endpoint: String,
    /// `registration_endpoint`, only when registration is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<String>,
    /// `revocation_endpoint` (RFC 7009).
    pub revocation_endpoint: String,
    /// `introspection_endpoint` (RFC 7662).
    pub introspection_endpoint: String,
    /// `scopes_supported`.
    pub scopes_supported: Vec<String>,
    /// `response_types_supported`: `code` only (OAuth 2.1).
    pub response_types_supported: Vec<&'static str>,
    /// `response_modes_supported`: `query`.
    pub response_modes_supported: Vec<&'static str>,
    /// `grant_types_supported`.
    pub grant_types_supported: Vec<&'static str>,
    /// `token_endpoint_auth_methods_supported`.
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    /// `token_endpoint_auth_signing_alg_values_supported` (RFC 8414 §2):
    /// what a `private_key_jwt` assertion may be signed with.
    pub token_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    /// `revocation_endpoint_auth_methods_supported`.
    pub revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    /// `revocation_endpoint_auth_signing_alg_values_supported` (RFC 8414
    /// §2): what a `private_key_jwt` assertion at the revocation endpoint
    /// may be signed with.
    pub revocation_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    /// `code_challenge_methods_supported`: `S256` (clients refuse to go on
    /// without this member).
    pub code_challenge_methods_supported: Vec<&'static str>,
    /// RFC 9207 §3: `iss` is in every authorization response.
    pub authorization_response_iss_parameter_supported: bool,
    /// draft-ietf-oauth-client-id-metadata-document: `client_id` may be
    /// the https URL of the client's metadata document.
    pub client_id_metadata_document_supported: bool,
    /// RFC 9449 §5.1: `dpop_signing_alg_values_supported`.
    pub dpop_signing_alg_values_supported: Vec<&'static str>,
}

/// The document for `settings`.
pub fn document(settings: &Settings<'_>) -> Metadata {
    let issuer = settings.issuer.trim_end_matches('/');
    let at = |path: &str| format!("{issuer}{path}");
    Metadata {
        issuer: issuer.to_owned(),
        authorization_endpoint: at(AUTHORIZE_PATH),
        token_endpoint: at(TOKEN_PATH),
        registration_endpoint: settings.registration.then(|| at(REGISTER_PATH)),
        revocation_endpoint: at(REVOKE_PATH),
        introspection_endpoint: at(INTROSPECT_PATH),
        scopes_supported: settings.scopes.clone(),
        response_types_supported: vec!["code"],
        response_modes_supported: vec!["query"],
        grant_types_supported: settings.grant_types.clone(),
        token_endpoint_auth_methods_supported: settings.auth_methods.clone(),
        token_endpoint_auth_signing_alg_values_supported: super::client_assertion::ALGS.to_vec(),
        // RFC 7009 §2.1: the revocation endpoint authenticates clients as
        // the token endpoint does, assertions included, by the same code.
        revocation_endpoint_auth_methods_supported: settings.auth_methods.clone(),
        revocation_endpoint_auth_signing_alg_values_supported: super::client_assertion::ALGS
            .to_vec(),
        code_challenge_methods_supported: vec![super::pkce::S256],
        authorization_response_iss_parameter_supported: true,
        client_id_metadata_document_supported: true,
        dpop_signing_alg_values_supported: DPOP_ALGS.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(registration: bool) -> Settings<'static> {
        Settings {
            issuer: "https://gw.example",
            registration,
            grant_types: vec!["authorization_code", "refresh_token"],
            auth_methods: vec!["none", "client_secret_basic", "client_secret_post"],
            scopes: vec!["mcp:github".into()],
        }
    }

    #[test]
    fn the_document_names_the_endpoints_under_the_issuer() {
        let json = serde_json::to_value(document(&settings(false))).unwrap();
        assert_eq!(json["issuer"], "https://gw.example");
        assert_eq!(
            json["authorization_endpoint"],
            "https://gw.example/oauth/authorize"
        );
        assert_eq!(json["token_endpoint"], "https://gw.example/oauth/token");
        assert_eq!(
            json["revocation_endpoint"],
            "https://gw.example/oauth/revoke"
        );
        assert_eq!(
            json["introspection_endpoint"],
            "https://gw.example/oauth/introspect"
        );
        assert!(json.get("registration_endpoint").is_none());
        assert_eq!(
            json["response_types_supported"],
            serde_json::json!(["code"])
        );
        assert_eq!(
            json["code_challenge_methods_supported"],
            serde_json::json!(["S256"])
        );
        assert_eq!(json["authorization_response_iss_parameter_supported"], true);
        assert_eq!(json["client_id_metadata_document_supported"], true);
        assert_eq!(json["scopes_supported"], serde_json::json!(["mcp:github"]));
        assert!(json["dpop_signing_alg_values_supported"].is_array());
    }

    #[test]
    fn revocation_lists_private_key_jwt_and_its_algorithms_as_the_token_endpoint_does() {
        let mut with_assertions = settings(false);
        with_assertions.auth_methods.push("private_key_jwt");
        let json = serde_json::to_value(document(&with_assertions)).unwrap();
        assert_eq!(
            json["revocation_endpoint_auth_methods_supported"],
            json["token_endpoint_auth_methods_supported"]
        );
        assert!(
            json["revocation_endpoint_auth_methods_supported"]
                .as_array()
                .unwrap()
                .contains(&serde_json::json!("private_key_jwt"))
        );
        assert_eq!(
            json["revocation_endpoint_auth_signing_alg_values_supported"],
            json["token_endpoint_auth_signing_alg_values_supported"]
        );
        // Without assertions at the token endpoint, none at revocation.
        let json = serde_json::to_value(document(&settings(false))).unwrap();
        assert!(
            !json["revocation_endpoint_auth_methods_supported"]
                .as_array()
                .unwrap()
                .contains(&serde_json::json!("private_key_jwt"))
        );
    }

    #[test]
    fn the_registration_endpoint_is_listed_only_when_registration_is_on() {
        let json = serde_json::to_value(document(&settings(true))).unwrap();
        assert_eq!(
            json["registration_endpoint"],
            "https://gw.example/oauth/register"
        );
    }
}
