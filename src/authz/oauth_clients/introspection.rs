//! Token introspection for resource servers (RFC 7662): what an OAuth
//! access token is worth, for a caller that proves it may ask.
//!
//! - Callers: the resource servers configured as `[[oauth_introspector]]`
//!   (a `client_id` and the SHA-256 of its secret), authenticating with
//!   `client_secret_basic` (RFC 6749 §2.3.1); anyone else gets 401
//!   `invalid_client` with a Basic challenge (§2.1: "the endpoint MUST
//!   require some form of authorization"). Every configured introspector
//!   sees the OAuth tokens for its configured `audiences` (all when none
//!   are listed); any other token is `{"active": false}` to it (§2.2, §4).
//! - Only OAuth access tokens are described: GNAP tokens (key-bound, with
//!   their own introspection, RFC 9767), refresh tokens, and anything
//!   unknown, expired or revoked answer `{"active": false}` and nothing
//!   else (§2.2).
//! - An active token: `active`, `scope`, `client_id`, `token_type`
//!   (`Bearer` or `DPoP`), `exp`, `iat`, `aud` (its resource), `iss`, and
//!   for a DPoP-bound token `cnf.jkt` (RFC 9449 §6.2).

use serde_json::{Value, json};
use subtle::ConstantTimeEq as _;

use super::OAuthClients;
use super::reply::{error, invalid_client_basic, unavailable};
use crate::authz::Reply;
use crate::proto::oauth::client::{ClientInfo, ClientSource, TokenEndpointAuth};
use crate::proto::oauth::scope::from_access;
use crate::store::TokenHash;

/// Largest introspection request body read, in bytes.
pub const MAX_BODY: usize = 8 * 1024;

impl OAuthClients {
    /// Answers an introspection request with its `Authorization` and
    /// `Content-Type` header values and its body.
    pub fn introspect(
        &self,
        authorization: Option<&str>,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Reply {
        let Some(caller) = self.introspector(authorization) else {
            return invalid_client_basic(
                "introspection needs the HTTP Basic credentials of a configured introspector",
            );
        };
        let form = content_type
            .and_then(|c| c.split(';').next())
            .is_some_and(|c| {
                c.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !form || body.len() > MAX_BODY {
            return error(
                400,
                "invalid_request",
                "the request must be an application/x-www-form-urlencoded form",
            );
        }
        let mut token = None;
        for (name, value) in form_urlencoded::parse(body) {
            if name == "token" {
                if token.is_some() {
                    return error(400, "invalid_request", "`token` is given twice");
                }
                token = Some(value.into_owned());
            }
        }
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return error(400, "invalid_request", "`token` is required");
        };
        match self.describe(&token, &caller.audiences) {
            Ok(answer) => Reply::json(200, &answer).with_header("pragma", "no-cache"),
            Err(e) => unavailable(&e),
        }
    }

    /// The §2.2 answer for `token` to a caller that may know about tokens
    /// for `audiences` (empty: all).
    fn describe(
        &self,
        token: &str,
        audiences: &[String],
    ) -> Result<Value, crate::store::StoreError> {
        let inactive = json!({"active": false});
        let now = self.now();
        let Some(record) = self.store.token(&TokenHash::of(token))? else {
            return Ok(inactive);
        };
        let Some(oauth) = record.oauth.as_ref() else {
            return Ok(inactive);
        };
        if record.expires_at <= now
            || !(audiences.is_empty() || audiences.contains(&oauth.audience))
        {
            return Ok(inactive);
        }
        let mut answer = json!({
            "active": true,
            "client_id": oauth.client_id,
            "token_type": if oauth.dpop { "DPoP" } else { "Bearer" },
            "exp": record.expires_at,
            "iat": record.issued_at,
            "aud": oauth.audience,
            "iss": self.issuer,
        });
        if let Ok(scopes) = from_access(&record.access) {
            answer["scope"] = Value::from(scopes.join(" "));
        }
        if oauth.dpop {
            answer["cnf"] = json!({"jkt": record.key.thumbprint});
        }
        Ok(answer)
    }

    /// The configured introspector whose id and secret `authorization`
    /// (`Basic`) carries (secrets compared as SHA-256, in constant time;
    /// every introspector is tried, so timing says nothing of which id
    /// exists).
    fn introspector(&self, authorization: Option<&str>) -> Option<&Introspector> {
        let (id, secret) = authorization.and_then(basic_credentials)?;
        let presented: [u8; 32] = crate::proto::hash::sha256(secret.as_bytes());
        let mut found = None;
        for introspector in &self.settings.introspectors {
            let Some(hash) = &introspector.client.secret_hash else {
                continue;
            };
            let same_secret: bool = hash.ct_eq(&presented).into();
            if same_secret && introspector.client.client_id == id && found.is_none() {
                found = Some(introspector);
            }
        }
        found
    }
}

/// A resource server that may introspect tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Introspector {
    /// Its credentials (`client_id`, `secret_hash`).
    pub client: ClientInfo,
    /// The token audiences (resources) it may learn about; empty: all.
    /// A token for another resource is `{"active": false}` to it
    /// (RFC 7662 §2.2: "a token the protected resource is not allowed to
    /// know about").
    pub audiences: Vec<String>,
}

/// One `[[oauth_introspector]]`: a resource server that may introspect
/// OAuth tokens, authenticating with `client_secret_basic`. Only the
/// secret's SHA-256 is configured (`printf %s "$SECRET" | sha256sum`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntrospectorEntry {
    /// Its client id.
    pub client_id: String,
    /// SHA-256 of its client secret, 64 hex digits.
    pub client_secret_sha256: String,
    /// The resources (MCP URLs, as in tokens' `aud`) whose tokens it may
    /// introspect; absent: all.
    #[serde(default)]
    pub audiences: Vec<String>,
}

impl IntrospectorEntry {
    /// The configured introspector, or why the entry is unusable.
    pub fn to_introspector(&self) -> Result<Introspector, String> {
        Ok(Introspector {
            client: self.to_client()?,
            audiences: self.audiences.clone(),
        })
    }

    /// The configured client, or why the entry is unusable.
    fn to_client(&self) -> Result<ClientInfo, String> {
        let hex = self.client_secret_sha256.trim();
        let mut hash = [0u8; 32];
        if hex.len() != 64 || !hex.is_ascii() {
            return Err(format!(
                "oauth_introspector {}: client_secret_sha256 must be 64 hex digits",
                self.client_id
            ));
        }
        for (i, byte) in hash.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| {
                format!(
                    "oauth_introspector {}: client_secret_sha256 must be 64 hex digits",
                    self.client_id
                )
            })?;
        }
        if self.client_id.is_empty() || self.client_id.contains(':') {
            return Err("oauth_introspector: client_id must be non-empty, without `:`".into());
        }
        Ok(ClientInfo {
            client_id: self.client_id.clone(),
            client_name: None,
            redirect_uris: Vec::new(),
            token_endpoint_auth: TokenEndpointAuth::ClientSecretBasic,
            secret_hash: Some(hash),
            jwks: None,
            grant_types: Vec::new(),
            source: ClientSource::Configured,
        })
    }
}

/// The client id and secret of `Authorization: Basic ...` (RFC 6749
/// §2.3.1: each form-urlencoded, then joined by `:` and base64-encoded).
pub fn basic_credentials(header: &str) -> Option<(String, String)> {
    use base64::Engine as _;
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((form_decode(id)?, form_decode(secret)?))
}

/// application/x-www-form-urlencoded decoding of one value: `+` is a
/// space, `%XX` a byte; the result must be UTF-8.
fn form_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = text.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded_after_base64() {
        use base64::Engine as _;
        let header = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("rs%3A1:s+e%25cret")
        );
        assert_eq!(
            basic_credentials(&header),
            Some(("rs:1".into(), "s e%cret".into()))
        );
        assert_eq!(basic_credentials("Bearer abc"), None);
        assert_eq!(basic_credentials("Basic !!!"), None);
        assert_eq!(basic_credentials("Basic bm9jb2xvbg=="), None);
    }
}
