//! Token introspection for resource servers (RFC 7662): what an OAuth
//! access token is worth, for a caller that proves it may ask.
//!
//! - Callers: the resource servers configured as `[[oauth_introspector]]`
//!   (a `client_id` and the SHA-256 of its secret), authenticating with
//!   `client_secret_basic` (RFC 6749 §2.3.1); anyone else gets 401
//!   `invalid_client` with a Basic challenge (§2.1: "the endpoint MUST
//!   require some form of authorization"). Every configured introspector
//!   sees every OAuth token (§4 lets the AS answer per caller; gnapd does
//!   not yet narrow).
//! - Only OAuth access tokens are described: GNAP tokens (key-bound, with
//!   their own introspection, RFC 9767), refresh tokens, and anything
//!   unknown, expired or revoked answer `{"active": false}` and nothing
//!   else (§2.2).
//! - An active token: `active`, `scope`, `client_id`, `token_type`
//!   (`Bearer` or `DPoP`), `exp`, `iat`, `aud` (its resource), `iss`, and
//!   for a DPoP-bound token `cnf.jkt` (RFC 9449 §6.2).

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use super::OAuthClients;
use super::reply::{error, invalid_client_basic, unavailable};
use crate::authz::Reply;
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
        if !self.introspector_authenticated(authorization) {
            return invalid_client_basic(
                "introspection needs the HTTP Basic credentials of a configured introspector",
            );
        }
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
        match self.describe(&token) {
            Ok(answer) => Reply::json(200, &answer).with_header("pragma", "no-cache"),
            Err(e) => unavailable(&e),
        }
    }

    /// The §2.2 answer for `token`.
    fn describe(&self, token: &str) -> Result<Value, crate::store::StoreError> {
        let inactive = json!({"active": false});
        let now = self.now();
        let Some(record) = self.store.token(&TokenHash::of(token))? else {
            return Ok(inactive);
        };
        let Some(oauth) = record.oauth.as_ref() else {
            return Ok(inactive);
        };
        if record.expires_at <= now {
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

    /// True when `authorization` is `Basic` with the id and secret of a
    /// configured introspector (secrets compared as SHA-256, in constant
    /// time; every introspector is tried, so timing says nothing of which
    /// id exists).
    fn introspector_authenticated(&self, authorization: Option<&str>) -> bool {
        let Some((id, secret)) = authorization.and_then(basic_credentials) else {
            return false;
        };
        let presented: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        let mut found = false;
        for client in &self.settings.introspectors {
            let Some(hash) = &client.secret_hash else {
                continue;
            };
            let same_secret: bool = hash.ct_eq(&presented).into();
            found |= same_secret && client.client_id == id;
        }
        found
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
