//! Who is calling the token and revocation endpoints (RFC 6749 §2.3,
//! §3.2.1): a public client names itself with `client_id`; a confidential
//! one proves its secret with HTTP Basic or in the form, never both.

use base64::Engine as _;
use subtle::ConstantTimeEq as _;

use super::error;
use crate::proto::oauth::client::{ClientInfo, TokenEndpointAuth};
use crate::proto::oauth::error::{ErrorCode, OAuthError};
use crate::proto::oauth::form::Params;

/// What the request presented to identify its client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Presented {
    /// `Authorization: Basic` (RFC 6749 §2.3.1): id and secret, decoded.
    pub basic: Option<(String, String)>,
    /// The `client_id` parameter.
    pub client_id: Option<String>,
    /// The `client_secret` parameter.
    pub client_secret: Option<String>,
}

impl Presented {
    /// Reads the `Authorization` field (its value, if exactly one was
    /// sent) and the form.
    pub fn read(authorization: Option<&[u8]>, params: &Params) -> Result<Self, OAuthError> {
        let basic = match authorization {
            None => None,
            Some(value) => Some(basic(value).ok_or_else(|| {
                error(
                    ErrorCode::InvalidClient,
                    "the Authorization header is not HTTP Basic with form-encoded credentials",
                )
            })?),
        };
        Ok(Self {
            basic,
            client_id: params.get("client_id").map(str::to_owned),
            client_secret: params.get("client_secret").map(str::to_owned),
        })
    }

    /// The `client_id` the request names.
    pub fn client_id(&self) -> Result<&str, OAuthError> {
        match (&self.basic, &self.client_id) {
            (Some((id, _)), Some(param)) if id != param => Err(error(
                ErrorCode::InvalidRequest,
                "client_id differs from the client named in the Authorization header",
            )),
            (Some((id, _)), _) => Ok(id),
            (None, Some(id)) => Ok(id),
            (None, None) => Err(error(
                ErrorCode::InvalidClient,
                "the client must identify itself (client_id, or HTTP Basic)",
            )),
        }
    }

    /// True if the client tried HTTP Basic (an `invalid_client` answer then
    /// carries `WWW-Authenticate: Basic`, §5.2).
    pub fn used_basic(&self) -> bool {
        self.basic.is_some()
    }

    /// Authenticates `client` (resolved from [`Self::client_id`]; `None`
    /// when nobody knows it) as its registration says.
    pub fn authenticate(&self, client: Option<ClientInfo>) -> Result<ClientInfo, OAuthError> {
        let unknown = || {
            error(
                ErrorCode::InvalidClient,
                "unknown client or wrong credentials",
            )
        };
        let client = client.ok_or_else(unknown)?;
        let secret = match (&self.basic, &self.client_secret) {
            (Some(_), Some(_)) => {
                return Err(error(
                    ErrorCode::InvalidRequest,
                    "use one client authentication method, not HTTP Basic and client_secret together",
                ));
            }
            (Some((_, s)), None) if !s.is_empty() => Some(s.as_str()),
            (_, Some(s)) => Some(s.as_str()),
            _ => None,
        };
        match (client.token_endpoint_auth, &client.secret_hash, secret) {
            (TokenEndpointAuth::None, _, None) => Ok(client),
            (
                TokenEndpointAuth::ClientSecretBasic | TokenEndpointAuth::ClientSecretPost,
                Some(expected),
                Some(secret),
            ) => {
                let presented: [u8; 32] = crate::proto::hash::sha256(secret.as_bytes());
                if bool::from(presented.ct_eq(expected)) {
                    Ok(client)
                } else {
                    Err(unknown())
                }
            }
            // A `private_key_jwt` client authenticates by its assertion,
            // which the HTTP edge hands to the client registry's verifier
            // instead of coming here; one that presents none is refused.
            _ => Err(unknown()),
        }
    }
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))`.
fn basic(value: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(value).ok()?.trim();
    let (scheme, encoded) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| -> Option<String> {
        let escaped = s.replace('&', "%26");
        let out: String = form_urlencoded::parse(format!("x={escaped}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())?;
        Some(out)
    };
    let id = unescape(id)?;
    if id.is_empty() {
        return None;
    }
    Some((id, unescape(secret)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::oauth::client::ClientSource;

    fn client(auth: TokenEndpointAuth, secret: Option<&str>) -> ClientInfo {
        ClientInfo {
            client_id: "c".into(),
            client_name: None,
            redirect_uris: vec!["https://c.example/cb".into()],
            token_endpoint_auth: auth,
            secret_hash: secret.map(|s| crate::proto::hash::sha256(s.as_bytes())),
            jwks: None,
            grant_types: Vec::new(),
            source: ClientSource::Configured,
        }
    }

    fn header(id: &str, secret: &str) -> Vec<u8> {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
        )
        .into_bytes()
    }

    #[test]
    fn a_public_client_names_itself_and_presents_no_secret() {
        let p = Presented::read(None, &Params::from_pairs(&[("client_id", "c")])).unwrap();
        assert_eq!(p.client_id().unwrap(), "c");
        assert!(
            p.authenticate(Some(client(TokenEndpointAuth::None, None)))
                .is_ok()
        );
        assert_eq!(
            p.authenticate(None).unwrap_err().code,
            ErrorCode::InvalidClient
        );
    }

    #[test]
    fn a_confidential_client_proves_its_secret_one_way() {
        let confidential = client(TokenEndpointAuth::ClientSecretBasic, Some("s3cret"));
        let ok = Presented::read(Some(&header("c", "s3cret")), &Params::default()).unwrap();
        assert!(ok.used_basic());
        assert!(ok.authenticate(Some(confidential.clone())).is_ok());
        let wrong = Presented::read(Some(&header("c", "nope")), &Params::default()).unwrap();
        assert!(wrong.authenticate(Some(confidential.clone())).is_err());
        let none = Presented::read(None, &Params::from_pairs(&[("client_id", "c")])).unwrap();
        assert!(none.authenticate(Some(confidential.clone())).is_err());
        let post = Presented::read(
            None,
            &Params::from_pairs(&[("client_id", "c"), ("client_secret", "s3cret")]),
        )
        .unwrap();
        assert!(post.authenticate(Some(confidential.clone())).is_ok());
        let both = Presented::read(
            Some(&header("c", "s3cret")),
            &Params::from_pairs(&[("client_secret", "s3cret")]),
        )
        .unwrap();
        assert_eq!(
            both.authenticate(Some(confidential)).unwrap_err().code,
            ErrorCode::InvalidRequest
        );
    }

    #[test]
    fn a_secret_for_a_public_client_and_mismatched_ids_are_refused() {
        let p = Presented::read(
            None,
            &Params::from_pairs(&[("client_id", "c"), ("client_secret", "x")]),
        )
        .unwrap();
        assert!(
            p.authenticate(Some(client(TokenEndpointAuth::None, None)))
                .is_err()
        );
        let p = Presented::read(
            Some(&header("c", "x")),
            &Params::from_pairs(&[("client_id", "d")]),
        )
        .unwrap();
        assert_eq!(p.client_id().unwrap_err().code, ErrorCode::InvalidRequest);
        assert!(Presented::read(Some(b"Bearer x"), &Params::default()).is_err());
        let escaped = Presented::read(Some(&header("a%3Ab", "p%20q")), &Params::default()).unwrap();
        assert_eq!(escaped.basic, Some(("a:b".into(), "p q".into())));
    }
}
