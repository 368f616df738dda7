//! Client metadata (RFC 7591 §2) as a registration request or a metadata
//! document carries it, read into what the AS keeps, and the registration
//! response (§3.2.1). Sans I/O: identifiers and secrets are drawn by the
//! caller.
//!
//! Rules (RFC 7591 §2, §2.1 and the MCP text):
//! - `redirect_uris`: `https`, or `http` on a loopback host, no fragment;
//!   required when `authorization_code` is among the grant types; else
//!   `invalid_redirect_uri`;
//! - `token_endpoint_auth_method`: `none`, `client_secret_basic`,
//!   `client_secret_post` or `private_key_jwt`; omitted means
//!   `client_secret_basic` (§2);
//! - `private_key_jwt` needs `jwks` inline; `jwks_uri` is not fetched
//!   (one SSRF surface, the metadata document, is enough) and is refused;
//! - `grant_types` (default `authorization_code`) among
//!   `authorization_code`, `refresh_token`, `client_credentials`;
//!   `response_types` (default `code`) only `code`, and the two consistent
//!   (§2.1); `client_credentials` needs an authenticated client;
//! - members gnapd does not use are ignored (§2: "The authorization server
//!   MUST ignore any client metadata sent by the client that it does not
//!   understand").

use serde_json::{Map, Value, json};

use super::client::{ClientInfo, ClientSource, TokenEndpointAuth};
use super::client_uri::is_acceptable_redirect_uri;
use crate::proto::jwk::VerifyingKey;

/// Most redirect URIs one client may declare.
pub const MAX_REDIRECT_URIS: usize = 16;
/// Most keys in a client's `jwks`.
pub const MAX_KEYS: usize = 8;
/// Longest `client_name`, in characters.
pub const MAX_NAME: usize = 200;

/// The grant types a client may register.
const GRANT_TYPES: [&str; 3] = ["authorization_code", "refresh_token", "client_credentials"];

/// RFC 7591 §3.2.2 error codes gnapd answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationErrorCode {
    /// A redirect URI is missing or not acceptable.
    InvalidRedirectUri,
    /// Any other metadata value is not acceptable.
    InvalidClientMetadata,
}

impl RegistrationErrorCode {
    /// The `error` string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRedirectUri => "invalid_redirect_uri",
            Self::InvalidClientMetadata => "invalid_client_metadata",
        }
    }
}

/// Why client metadata was refused; the description is ours and safe to
/// show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {description}", code.as_str())]
pub struct RegistrationError {
    /// The error code.
    pub code: RegistrationErrorCode,
    /// `error_description`.
    pub description: String,
}

pub(crate) fn metadata_error(description: &str) -> RegistrationError {
    RegistrationError {
        code: RegistrationErrorCode::InvalidClientMetadata,
        description: description.to_owned(),
    }
}

fn redirect_error(description: &str) -> RegistrationError {
    RegistrationError {
        code: RegistrationErrorCode::InvalidRedirectUri,
        description: description.to_owned(),
    }
}

/// Client metadata that passed every rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMetadata {
    /// `redirect_uris`.
    pub redirect_uris: Vec<String>,
    /// `token_endpoint_auth_method`; `None` when omitted (the caller's
    /// default applies: §2's `client_secret_basic` for a registration).
    pub token_endpoint_auth: Option<TokenEndpointAuth>,
    /// `grant_types`, defaulted.
    pub grant_types: Vec<String>,
    /// `client_name`.
    pub client_name: Option<String>,
    /// `jwks`, checked: every key a usable public signature key.
    pub jwks: Option<Value>,
    /// `application_type` (`web` or `native`), echoed, not used.
    pub application_type: Option<String>,
}

/// Reads the RFC 7591 §2 members of `map` that gnapd uses.
pub fn read_metadata(map: &Map<String, Value>) -> Result<ClientMetadata, RegistrationError> {
    let grant_types =
        string_list(map, "grant_types")?.unwrap_or_else(|| vec!["authorization_code".to_owned()]);
    if let Some(unknown) = grant_types
        .iter()
        .find(|g| !GRANT_TYPES.contains(&g.as_str()))
    {
        return Err(metadata_error(&format!(
            "grant type `{unknown}` is not supported"
        )));
    }
    let response_types =
        string_list(map, "response_types")?.unwrap_or_else(|| vec!["code".to_owned()]);
    if response_types.iter().any(|r| r != "code") {
        return Err(metadata_error("only the response type `code` is supported"));
    }
    let code_flow = grant_types.iter().any(|g| g == "authorization_code");
    // §2.1: `code` goes with `authorization_code`, both ways.
    if code_flow != response_types.iter().any(|r| r == "code") && map.contains_key("response_types")
    {
        return Err(metadata_error(
            "grant_types and response_types do not agree (authorization_code goes with code)",
        ));
    }
    let redirect_uris = match map.get("redirect_uris") {
        None => Vec::new(),
        Some(_) => string_list(map, "redirect_uris")
            .map_err(|_| redirect_error("redirect_uris must be an array of strings"))?
            .unwrap_or_default(),
    };
    if redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(redirect_error("too many redirect URIs"));
    }
    if let Some(bad) = redirect_uris
        .iter()
        .find(|u| !is_acceptable_redirect_uri(u))
    {
        return Err(redirect_error(&format!(
            "`{}` is not an https or loopback http URI without fragment",
            shorten(bad)
        )));
    }
    if code_flow && redirect_uris.is_empty() {
        return Err(redirect_error(
            "redirect_uris is required for the authorization_code grant",
        ));
    }
    let token_endpoint_auth = match map.get("token_endpoint_auth_method") {
        None => None,
        Some(Value::String(m)) => Some(auth_method(m)?),
        Some(_) => {
            return Err(metadata_error(
                "token_endpoint_auth_method must be a string",
            ));
        }
    };
    if map.contains_key("jwks_uri") {
        return Err(metadata_error(
            "jwks_uri is not supported: give the keys inline in jwks",
        ));
    }
    let jwks = map.get("jwks").map(read_jwks).transpose()?;
    let client_name = match map.get("client_name") {
        None => None,
        Some(Value::String(name))
            if !name.is_empty()
                && name.chars().count() <= MAX_NAME
                && !name.chars().any(char::is_control) =>
        {
            Some(name.clone())
        }
        Some(_) => {
            return Err(metadata_error(
                "client_name must be a short string without control characters",
            ));
        }
    };
    let application_type = match map.get("application_type") {
        None => None,
        Some(Value::String(t)) if t == "web" || t == "native" => Some(t.clone()),
        Some(_) => {
            return Err(metadata_error("application_type must be `web` or `native`"));
        }
    };
    Ok(ClientMetadata {
        redirect_uris,
        token_endpoint_auth,
        grant_types,
        client_name,
        jwks,
        application_type,
    })
}

/// The registration request body, read: JSON object, rules above, with
/// §2's default auth method. `client_credentials` needs a client that
/// authenticates, and `private_key_jwt` a `jwks`.
pub fn read_registration(body: &[u8]) -> Result<ClientMetadata, RegistrationError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| metadata_error("the request body is not a JSON object"))?;
    let map = value
        .as_object()
        .ok_or_else(|| metadata_error("the request body is not a JSON object"))?;
    let mut metadata = read_metadata(map)?;
    let auth = *metadata
        .token_endpoint_auth
        .get_or_insert(TokenEndpointAuth::ClientSecretBasic);
    check_auth_fits(&metadata, auth)?;
    Ok(metadata)
}

/// The grant types and keys `auth` needs.
pub(crate) fn check_auth_fits(
    metadata: &ClientMetadata,
    auth: TokenEndpointAuth,
) -> Result<(), RegistrationError> {
    if auth == TokenEndpointAuth::PrivateKeyJwt && metadata.jwks.is_none() {
        return Err(metadata_error(
            "private_key_jwt needs the client's keys in jwks",
        ));
    }
    if auth == TokenEndpointAuth::None
        && metadata
            .grant_types
            .iter()
            .any(|g| g == "client_credentials")
    {
        return Err(metadata_error(
            "the client_credentials grant needs a client that authenticates",
        ));
    }
    Ok(())
}

/// What the AS keeps of a registered client: `secret_hash` is the SHA-256
/// of the secret the response shows once, for the secret methods.
pub fn registered_client(
    metadata: &ClientMetadata,
    client_id: &str,
    secret_hash: Option<[u8; 32]>,
) -> ClientInfo {
    let auth = metadata
        .token_endpoint_auth
        .unwrap_or(TokenEndpointAuth::ClientSecretBasic);
    ClientInfo {
        client_id: client_id.to_owned(),
        client_name: metadata.client_name.clone(),
        redirect_uris: metadata.redirect_uris.clone(),
        token_endpoint_auth: auth,
        secret_hash,
        jwks: (auth == TokenEndpointAuth::PrivateKeyJwt)
            .then(|| metadata.jwks.clone())
            .flatten(),
        grant_types: metadata.grant_types.clone(),
        source: ClientSource::Registered,
    }
}

/// True when the method authenticates with a client secret.
pub fn uses_secret(auth: TokenEndpointAuth) -> bool {
    matches!(
        auth,
        TokenEndpointAuth::ClientSecretBasic | TokenEndpointAuth::ClientSecretPost
    )
}

/// The §3.2.1 response: every registered member, the `client_id`,
/// `client_id_issued_at`, and for the secret methods the `client_secret`
/// (shown this once; only its hash is kept) with
/// `client_secret_expires_at` 0 ("will not expire"; the registration
/// itself lapses when unused, see `authz::oauth_clients`).
pub fn registration_response(
    client: &ClientInfo,
    metadata: &ClientMetadata,
    secret: Option<&str>,
    issued_at: i64,
) -> Value {
    let mut response = json!({
        "client_id": client.client_id,
        "client_id_issued_at": issued_at,
        "redirect_uris": client.redirect_uris,
        "token_endpoint_auth_method": auth_method_name(client.token_endpoint_auth),
        "grant_types": client.grant_types,
        "response_types": if client.grant_types.iter().any(|g| g == "authorization_code") {
            vec!["code"]
        } else {
            Vec::new()
        },
    });
    if let Some(object) = response.as_object_mut() {
        if let Some(name) = &client.client_name {
            object.insert("client_name".into(), json!(name));
        }
        if let Some(jwks) = &client.jwks {
            object.insert("jwks".into(), jwks.clone());
        }
        if let Some(t) = &metadata.application_type {
            object.insert("application_type".into(), json!(t));
        }
        if let Some(secret) = secret {
            object.insert("client_secret".into(), json!(secret));
            object.insert("client_secret_expires_at".into(), json!(0));
        }
    }
    response
}

/// The RFC 7591 name of a method.
pub fn auth_method_name(auth: TokenEndpointAuth) -> &'static str {
    match auth {
        TokenEndpointAuth::None => "none",
        TokenEndpointAuth::ClientSecretBasic => "client_secret_basic",
        TokenEndpointAuth::ClientSecretPost => "client_secret_post",
        TokenEndpointAuth::PrivateKeyJwt => "private_key_jwt",
    }
}

fn auth_method(name: &str) -> Result<TokenEndpointAuth, RegistrationError> {
    match name {
        "none" => Ok(TokenEndpointAuth::None),
        "client_secret_basic" => Ok(TokenEndpointAuth::ClientSecretBasic),
        "client_secret_post" => Ok(TokenEndpointAuth::ClientSecretPost),
        "private_key_jwt" => Ok(TokenEndpointAuth::PrivateKeyJwt),
        other => Err(metadata_error(&format!(
            "token_endpoint_auth_method `{}` is not supported",
            shorten(other)
        ))),
    }
}

/// A JWK Set of usable public signature keys (RFC 7517 §5).
fn read_jwks(value: &Value) -> Result<Value, RegistrationError> {
    let keys = value
        .get("keys")
        .and_then(Value::as_array)
        .filter(|k| !k.is_empty() && k.len() <= MAX_KEYS)
        .ok_or_else(|| metadata_error("jwks must be a JWK Set with 1 to 8 keys"))?;
    for key in keys {
        VerifyingKey::from_public_jwk(key, None)
            .map_err(|e| metadata_error(&format!("a key in jwks is not usable: {e}")))?;
    }
    Ok(json!({ "keys": keys }))
}

/// An optional array of strings.
fn string_list(
    map: &Map<String, Value>,
    name: &str,
) -> Result<Option<Vec<String>>, RegistrationError> {
    match map.get(name) {
        None => Ok(None),
        Some(Value::Array(items)) if items.len() <= MAX_REDIRECT_URIS * 2 => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| metadata_error(&format!("{name} must be an array of strings"))),
        Some(_) => Err(metadata_error(&format!(
            "{name} must be an array of strings"
        ))),
    }
}

/// A value quoted back in an error, cut short.
fn shorten(text: &str) -> String {
    text.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(value: Value) -> Result<ClientMetadata, RegistrationError> {
        read_registration(value.to_string().as_bytes())
    }

    fn code(value: Value) -> RegistrationErrorCode {
        read(value).unwrap_err().code
    }

    #[test]
    fn a_public_loopback_client_registers_with_defaults() {
        let m = read(json!({
            "redirect_uris": ["http://localhost:3334/oauth/callback"],
            "token_endpoint_auth_method": "none",
            "client_name": "mcp-remote",
            "application_type": "native",
            "software_id": "ignored",
            "logo_uri": "https://ignored.example/logo.png",
        }))
        .unwrap();
        assert_eq!(m.token_endpoint_auth, Some(TokenEndpointAuth::None));
        assert_eq!(m.grant_types, ["authorization_code"]);
        let client = registered_client(&m, "c1", None);
        assert_eq!(client.source, ClientSource::Registered);
        let response = registration_response(&client, &m, None, 7);
        assert_eq!(response["client_id"], "c1");
        assert_eq!(response["client_id_issued_at"], 7);
        assert_eq!(response["response_types"], json!(["code"]));
        assert_eq!(response["application_type"], "native");
        assert!(response.get("client_secret").is_none());
        assert!(response.get("software_id").is_none());
    }

    #[test]
    fn an_omitted_auth_method_is_client_secret_basic_and_the_secret_is_shown() {
        let m = read(json!({"redirect_uris": ["https://app.example/cb"]})).unwrap();
        assert_eq!(
            m.token_endpoint_auth,
            Some(TokenEndpointAuth::ClientSecretBasic)
        );
        let client = registered_client(&m, "c2", Some([1; 32]));
        let response = registration_response(&client, &m, Some("s3cret"), 7);
        assert_eq!(response["client_secret"], "s3cret");
        assert_eq!(response["client_secret_expires_at"], 0);
        assert_eq!(
            response["token_endpoint_auth_method"],
            "client_secret_basic"
        );
    }

    #[test]
    fn redirect_uris_that_are_not_https_or_loopback_are_invalid_redirect_uri() {
        for uris in [
            json!(["http://app.example/cb"]),
            json!(["https://app.example/cb#f"]),
            json!(["myapp:/cb"]),
            json!("https://app.example/cb"),
            json!([]),
        ] {
            assert_eq!(
                code(json!({"redirect_uris": uris, "token_endpoint_auth_method": "none"})),
                RegistrationErrorCode::InvalidRedirectUri,
                "{uris}"
            );
        }
        // The code grant without redirect URIs.
        assert_eq!(
            code(json!({"token_endpoint_auth_method": "none"})),
            RegistrationErrorCode::InvalidRedirectUri
        );
    }

    #[test]
    fn unusable_metadata_is_invalid_client_metadata() {
        let cb = json!(["https://app.example/cb"]);
        for body in [
            json!({"redirect_uris": cb, "token_endpoint_auth_method": "client_secret_jwt"}),
            json!({"redirect_uris": cb, "grant_types": ["implicit"]}),
            json!({"redirect_uris": cb, "response_types": ["token"]}),
            json!({"redirect_uris": cb, "grant_types": ["client_credentials"], "response_types": ["code"]}),
            json!({"redirect_uris": cb, "token_endpoint_auth_method": "private_key_jwt"}),
            json!({"redirect_uris": cb, "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "https://app.example/jwks"}),
            json!({"redirect_uris": cb, "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [{"kty": "oct", "k": "AAAA"}]}}),
            json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"}),
            json!({"redirect_uris": cb, "client_name": "a\u{7}b"}),
            json!({"redirect_uris": cb, "application_type": "desktop"}),
        ] {
            assert_eq!(
                code(body.clone()),
                RegistrationErrorCode::InvalidClientMetadata,
                "{body}"
            );
        }
        assert!(read_registration(b"[1]").is_err());
        assert!(read_registration(b"not json").is_err());
    }

    #[test]
    fn a_headless_client_registers_its_keys_for_client_credentials() {
        let key =
            crate::proto::jwk::SigningKey::generate(crate::proto::alg::Algorithm::EcdsaP256Sha256)
                .unwrap();
        let public = key.verifying_key().public_jwk().unwrap().clone();
        let m = read(json!({
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [public]},
        }))
        .unwrap();
        let client = registered_client(&m, "c3", None);
        assert_eq!(client.token_endpoint_auth, TokenEndpointAuth::PrivateKeyJwt);
        assert!(client.redirect_uris.is_empty());
        assert_eq!(client.jwks.unwrap()["keys"].as_array().unwrap().len(), 1);
        let response = registration_response(&registered_client(&m, "c3", None), &m, None, 1);
        assert_eq!(response["response_types"], json!([]));
        // A private key in jwks is refused: it would be the client's
        // secret, published.
        let leaked = read(json!({
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [key.private_jwk()]},
        }));
        assert_eq!(
            leaked.unwrap_err().code,
            RegistrationErrorCode::InvalidClientMetadata
        );
    }
}
