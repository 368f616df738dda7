//! Upstream OAuth 2.0 credentials: an access token the gateway presents as
//! `Authorization: Bearer`, and the refresh token it uses to get a new one
//! (RFC 6749 §6) when the old one expires or the upstream answers 401.
//!
//! This module is the sans-I/O half: when to refresh, the token request to
//! send (§6, client authentication per §2.3.1) and reading the answer
//! (§5.1, §5.2). The gateway (`forward`) sends it — one refresh at a time per
//! credential set, since many authorization servers rotate refresh tokens
//! and a second concurrent refresh would present a dead one — and stores the
//! new pair as one sealed record, so a crash never leaves half of it.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::Secret;

/// Refresh this many seconds before the access token's expiry, so that a
/// call never carries a token about to die in flight.
pub const EXPIRY_MARGIN: i64 = 30;

/// An upstream OAuth 2.0 grant, as sealed in its credential set.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuth2Credential {
    /// The current access token.
    pub access_token: Secret,
    /// The refresh token, if the upstream issued one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<Secret>,
    /// When the access token expires (Unix seconds), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// The upstream authorization server's token endpoint.
    pub token_endpoint: String,
    /// gnapd's client id there.
    pub client_id: String,
    /// gnapd's client secret there (a public client has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<Secret>,
    /// For a credential from the config file: a digest of the configured
    /// value this state grew from. A restart with the same configuration
    /// keeps the refreshed pair (the configured refresh token may be dead,
    /// rotated away); a changed configuration replaces it. Sealed with the
    /// rest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<String>,
}

impl std::fmt::Debug for OAuth2Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuth2Credential")
            .field("token_endpoint", &self.token_endpoint)
            .field("client_id", &self.client_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Why an `oauth2` credential was refused. Messages never quote a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuth2ConfigError {
    /// Not the JSON object expected (serde's category and column only: its
    /// messages could quote a value).
    #[error(
        "an oauth2 credential is a JSON object with access_token, token_endpoint, \
         client_id and optionally refresh_token, expires_at, client_secret ({category} at column {column})"
    )]
    Json {
        /// serde_json's category of the error.
        category: String,
        /// Where in the text.
        column: usize,
    },
    /// No access token.
    #[error("an oauth2 credential needs an access_token")]
    NoAccessToken,
    /// A token endpoint that is not an http(s) URL.
    #[error("an oauth2 credential's token_endpoint must be an http(s) URL")]
    TokenEndpoint,
    /// An access token that cannot go in a header.
    #[error("an oauth2 access_token must be usable in a header")]
    AccessTokenHeader,
}

/// Why a refresh failed. Messages never carry a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefreshError {
    /// There is no refresh token to use.
    #[error("the upstream credential has no refresh token")]
    NoRefreshToken,
    /// The token endpoint refused (RFC 6749 §5.2 `error`, if it said).
    #[error("the upstream token endpoint refused the refresh ({0})")]
    Refused(String),
    /// The answer is not a §5.1 bearer token response.
    #[error("the upstream token endpoint's answer is not a bearer token response")]
    Malformed,
}

/// A token request to send: POST `uri` with `headers` and the form `body`.
pub struct TokenRequest {
    /// The token endpoint.
    pub uri: String,
    /// `Content-Type`, `Accept` and, for a confidential client,
    /// `Authorization: Basic`.
    pub headers: Vec<(&'static str, Zeroizing<String>)>,
    /// `application/x-www-form-urlencoded` parameters.
    pub body: Zeroizing<String>,
}

/// RFC 6749 §5.1, the members read.
#[derive(Deserialize)]
struct TokenResponse {
    access_token: Secret,
    token_type: String,
    #[serde(default)]
    expires_in: Option<i64>,
    #[serde(default)]
    refresh_token: Option<Secret>,
}

/// RFC 6749 §5.2.
#[derive(Deserialize)]
struct ErrorResponse {
    error: String,
}

impl OAuth2Credential {
    /// Parses the JSON form used by the config and `gnapd credentials add
    /// NAME` (`oauth2:{…}`). Errors never quote a token.
    pub fn from_json(text: &str) -> Result<Self, OAuth2ConfigError> {
        let credential: Self = serde_json::from_str(text).map_err(|e| OAuth2ConfigError::Json {
            category: format!("{:?}", e.classify()),
            column: e.column(),
        })?;
        credential.check()?;
        Ok(credential)
    }

    /// The sealed form.
    pub fn to_json(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(serde_json::to_vec(self).unwrap_or_default())
    }

    /// The digest [`Self::seed`] records for this configured value.
    pub fn seed_digest(&self) -> String {
        let mut unseeded = self.clone();
        unseeded.seed = None;
        let digest = crate::proto::hash::sha256(unseeded.to_json().as_slice());
        crate::proto::b64::encode_url(&digest)
    }

    /// Checks the token endpoint and that the access token fits a header.
    pub fn check(&self) -> Result<(), OAuth2ConfigError> {
        if self.access_token.expose().is_empty() {
            return Err(OAuth2ConfigError::NoAccessToken);
        }
        let endpoint = self.token_endpoint.to_ascii_lowercase();
        if !(endpoint.starts_with("https://") || endpoint.starts_with("http://"))
            || self.token_endpoint.parse::<hyper::Uri>().is_err()
        {
            return Err(OAuth2ConfigError::TokenEndpoint);
        }
        if hyper::header::HeaderValue::from_str(&format!("Bearer {}", self.access_token.expose()))
            .is_err()
        {
            return Err(OAuth2ConfigError::AccessTokenHeader);
        }
        Ok(())
    }

    /// Whether the access token is expired, or will be within
    /// [`EXPIRY_MARGIN`], and can be refreshed.
    pub fn needs_refresh(&self, now: i64) -> bool {
        self.refresh_token.is_some()
            && self
                .expires_at
                .is_some_and(|at| at.saturating_sub(EXPIRY_MARGIN) <= now)
    }

    /// The refresh request (RFC 6749 §6). A client with a secret
    /// authenticates with HTTP Basic, its id and secret form-encoded first
    /// (§2.3.1); a public client sends its `client_id` in the body.
    pub fn refresh_request(&self) -> Result<TokenRequest, RefreshError> {
        let refresh = self
            .refresh_token
            .as_ref()
            .ok_or(RefreshError::NoRefreshToken)?;
        Ok(client_token_request(
            &self.token_endpoint,
            &self.client_id,
            self.client_secret.as_ref(),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh.expose()),
            ],
        ))
    }

    /// The credential after the token endpoint answered `status` with
    /// `body` at time `now`. A response without a new refresh token keeps
    /// the old one (§6: the server may issue a new one).
    pub fn refreshed(&self, status: u16, body: &[u8], now: i64) -> Result<Self, RefreshError> {
        if status != 200 {
            let code = serde_json::from_slice::<ErrorResponse>(body)
                .ok()
                .map(|e| e.error)
                .filter(|e| e.bytes().all(|b| (0x20..=0x7e).contains(&b)) && e.len() <= 64)
                .unwrap_or_else(|| format!("HTTP {status}"));
            return Err(RefreshError::Refused(code));
        }
        let answer: TokenResponse =
            serde_json::from_slice(body).map_err(|_| RefreshError::Malformed)?;
        if !answer.token_type.eq_ignore_ascii_case("bearer") {
            return Err(RefreshError::Malformed);
        }
        let next = Self {
            access_token: answer.access_token,
            refresh_token: answer.refresh_token.or_else(|| self.refresh_token.clone()),
            expires_at: answer
                .expires_in
                .filter(|s| *s > 0)
                .map(|s| now.saturating_add(s)),
            token_endpoint: self.token_endpoint.clone(),
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            seed: self.seed.clone(),
        };
        next.check().map_err(|_| RefreshError::Malformed)?;
        Ok(next)
    }
}

/// A token request (RFC 6749 §3.2) of client `client_id` with `params`. A
/// client with a secret authenticates with HTTP Basic, its id and secret
/// form-encoded first (§2.3.1); a public client sends its `client_id` in
/// the body.
pub fn client_token_request(
    token_endpoint: &str,
    client_id: &str,
    client_secret: Option<&Secret>,
    params: &[(&str, &str)],
) -> TokenRequest {
    let mut params = params.to_vec();
    let mut headers = vec![
        (
            "content-type",
            Zeroizing::new("application/x-www-form-urlencoded".to_owned()),
        ),
        ("accept", Zeroizing::new("application/json".to_owned())),
    ];
    match client_secret {
        Some(secret) => {
            let pair = Zeroizing::new(format!(
                "{}:{}",
                form_encode(client_id),
                form_encode(secret.expose())
            ));
            headers.push((
                "authorization",
                Zeroizing::new(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair.as_bytes())
                )),
            ));
        }
        None => params.push(("client_id", client_id)),
    }
    let body = Zeroizing::new(
        params
            .iter()
            .map(|(k, v)| format!("{k}={}", form_encode(v)))
            .collect::<Vec<_>>()
            .join("&"),
    );
    TokenRequest {
        uri: token_endpoint.to_owned(),
        headers,
        body,
    }
}

/// `application/x-www-form-urlencoded` encoding of one name or value: every
/// byte but the unreserved ones percent-encoded (spaces too, never `+`).
pub fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credential(secret: Option<&str>) -> OAuth2Credential {
        OAuth2Credential::from_json(
            &serde_json::json!({
                "access_token": "at-1",
                "refresh_token": "rt 1/+",
                "expires_at": 1_000,
                "token_endpoint": "https://as.example/token",
                "client_id": "gnapd:gw",
                "client_secret": secret,
            })
            .to_string()
            .replace(",\"client_secret\":null", ""),
        )
        .unwrap()
    }

    #[test]
    fn a_token_is_refreshed_within_the_margin_of_its_expiry_only() {
        let c = credential(None);
        assert!(!c.needs_refresh(1_000 - EXPIRY_MARGIN - 1));
        assert!(c.needs_refresh(1_000 - EXPIRY_MARGIN));
        let mut no_refresh = c.clone();
        no_refresh.refresh_token = None;
        assert!(!no_refresh.needs_refresh(5_000));
        assert_eq!(
            no_refresh.refresh_request().err(),
            Some(RefreshError::NoRefreshToken)
        );
        let mut no_expiry = c;
        no_expiry.expires_at = None;
        assert!(!no_expiry.needs_refresh(5_000));
    }

    #[test]
    fn refresh_requests_authenticate_as_rfc_6749_says() {
        let public = credential(None).refresh_request().unwrap();
        assert_eq!(public.uri, "https://as.example/token");
        assert_eq!(
            public.body.as_str(),
            "grant_type=refresh_token&refresh_token=rt%201%2F%2B&client_id=gnapd%3Agw"
        );
        assert!(public.headers.iter().all(|(n, _)| *n != "authorization"));

        let confidential = credential(Some("s:cr t")).refresh_request().unwrap();
        assert_eq!(
            confidential.body.as_str(),
            "grant_type=refresh_token&refresh_token=rt%201%2F%2B"
        );
        let (_, basic) = confidential
            .headers
            .iter()
            .find(|(n, _)| *n == "authorization")
            .unwrap();
        // base64("gnapd%3Agw:s%3Acr%20t")
        assert_eq!(
            basic.as_str(),
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode("gnapd%3Agw:s%3Acr%20t")
            )
        );
    }

    #[test]
    fn token_responses_replace_the_pair_and_errors_carry_no_token() {
        let c = credential(None);
        let next = c
            .refreshed(
                200,
                br#"{"access_token":"at-2","token_type":"Bearer","expires_in":60,"refresh_token":"rt-2"}"#,
                2_000,
            )
            .unwrap();
        assert_eq!(next.access_token.expose(), "at-2");
        assert_eq!(next.refresh_token.as_ref().unwrap().expose(), "rt-2");
        assert_eq!(next.expires_at, Some(2_060));
        assert_eq!(next.client_id, c.client_id);

        let kept = c
            .refreshed(
                200,
                br#"{"access_token":"at-3","token_type":"bearer"}"#,
                2_000,
            )
            .unwrap();
        assert_eq!(kept.refresh_token, c.refresh_token);
        assert_eq!(kept.expires_at, None);

        assert_eq!(
            c.refreshed(400, br#"{"error":"invalid_grant"}"#, 0).err(),
            Some(RefreshError::Refused("invalid_grant".into()))
        );
        assert_eq!(
            c.refreshed(500, b"<html>", 0).err(),
            Some(RefreshError::Refused("HTTP 500".into()))
        );
        for bad in [
            &br#"{"access_token":"x","token_type":"mac"}"#[..],
            br#"{"token_type":"Bearer"}"#,
            b"not json",
            br#"{"access_token":"bad\nvalue","token_type":"Bearer"}"#,
        ] {
            assert_eq!(
                c.refreshed(200, bad, 0).err(),
                Some(RefreshError::Malformed)
            );
        }
    }

    #[test]
    fn oauth2_credentials_parse_from_json_and_never_print_their_tokens() {
        let c = credential(Some("client-secret-value"));
        let shown = format!("{c:?}");
        for secret in ["at-1", "rt 1", "client-secret-value"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        let round =
            OAuth2Credential::from_json(std::str::from_utf8(&c.to_json()).unwrap()).unwrap();
        assert_eq!(round, c);
        let err = OAuth2Credential::from_json(r#"{"access_token":"leak-me"}"#).unwrap_err();
        assert!(!err.to_string().contains("leak-me"), "{err}");
        assert!(
            OAuth2Credential::from_json(
                r#"{"access_token":"a","token_endpoint":"ftp://x","client_id":"c"}"#
            )
            .is_err()
        );
    }
}
