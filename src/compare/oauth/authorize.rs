//! The authorization request (RFC 6749 §4.1.1 with PKCE, RFC 8707
//! `resource`, RFC 9449 §10 `dpop_jkt`) as the person's browser sends it,
//! and the client's reading of the redirect back (RFC 6749 §4.1.2: `code`
//! and `state`; RFC 9207: `iss`). An auto-approving AS redirects straight
//! to the client's callback; one that asks a person redirects to its
//! consent page, which the person handles (`crate::compare::consent`).

use super::pkce::Pkce;
use crate::compare::driver::{DriverError, unexpected};
use crate::compare::meter::{Meter, Request};

/// The parameters of one authorization request.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest<'a> {
    /// The AS's `authorization_endpoint`.
    pub endpoint: &'a str,
    /// The client.
    pub client_id: &'a str,
    /// Where the browser comes back.
    pub redirect_uri: &'a str,
    /// The PKCE pair (its challenge is sent).
    pub pkce: &'a Pkce,
    /// `state`: unguessable, checked on the way back.
    pub state: &'a str,
    /// `resource` (RFC 8707): the MCP URL.
    pub resource: &'a str,
    /// `scope`, if the challenge named one.
    pub scope: Option<&'a str>,
    /// `dpop_jkt`: the DPoP key's thumbprint, binding the code to it.
    pub dpop_jkt: Option<&'a str>,
}

impl AuthorizationRequest<'_> {
    /// The URL the browser is sent to.
    pub fn url(&self) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", self.client_id)
            .append_pair("redirect_uri", self.redirect_uri)
            .append_pair("code_challenge", &self.pkce.challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("state", self.state)
            .append_pair("resource", self.resource);
        if let Some(scope) = self.scope {
            query.append_pair("scope", scope);
        }
        if let Some(jkt) = self.dpop_jkt {
            query.append_pair("dpop_jkt", jkt);
        }
        let sep = if self.endpoint.contains('?') {
            '&'
        } else {
            '?'
        };
        format!("{}{sep}{}", self.endpoint, query.finish())
    }
}

/// Where the authorization request sent the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    /// Straight back to the client (approved at once).
    Callback(String),
    /// To a page where a person decides.
    Consent(String),
}

/// The browser's GET of `url` (one exchange, the redirect not followed).
pub(crate) async fn start(
    browser: &mut Meter,
    url: &str,
    redirect_uri: &str,
) -> Result<Started, DriverError> {
    let answer = browser.send(Request::new("GET", url)).await?;
    let location = match (answer.status, answer.header("location")) {
        // A relative Location (node-oidc-provider's) as the browser reads it.
        (301 | 302 | 303 | 307 | 308, Some(location)) => {
            crate::compare::meter::resolve(url, location)
        }
        _ => return Err(unexpected("the authorization request", &answer)),
    };
    Ok(if location.starts_with(redirect_uri) {
        Started::Callback(location)
    } else {
        Started::Consent(location)
    })
}

/// The callback an authorization request came to: at once, or for
/// node-oidc-provider after the person's forms (`external`); gnapd's
/// consent page is not walked here (an error: the attacks aim at
/// auto-approving instances).
pub async fn callback_of(
    browser: &mut Meter,
    started: Started,
    external: bool,
    callback: &str,
) -> Result<String, DriverError> {
    match started {
        Started::Callback(at) => Ok(at),
        Started::Consent(page) if external => {
            crate::compare::external::person::walk(browser, &page, callback).await
        }
        Started::Consent(page) => Err(DriverError::Protocol(format!(
            "the auto instance asked a person ({page})"
        ))),
    }
}

/// The code of the redirect `callback`, after checking `state` and `iss`
/// (RFC 9207 §2.4: a client that knows the AS sends `iss` compares it).
pub fn read_callback(callback: &str, state: &str, issuer: &str) -> Result<String, DriverError> {
    let query = callback.split_once('?').map_or("", |(_, q)| q);
    let param = |name: &str| {
        form_urlencoded::parse(query.as_bytes())
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.into_owned())
    };
    if let Some(error) = param("error") {
        return Err(DriverError::Protocol(format!(
            "authorization refused: {error}"
        )));
    }
    if param("state").as_deref() != Some(state) {
        return Err(DriverError::Protocol(
            "the callback's state is not ours".into(),
        ));
    }
    if param("iss").as_deref() != Some(issuer) {
        return Err(DriverError::Protocol(
            "the callback's iss is not the AS's".into(),
        ));
    }
    param("code").ok_or_else(|| DriverError::Protocol("a callback without a code".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_carries_every_parameter_once_encoded() {
        let pkce = Pkce::from_verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into());
        let request = AuthorizationRequest {
            endpoint: "http://a:1/oauth/authorize",
            client_id: "https://docs:2/c.json",
            redirect_uri: "http://127.0.0.1:8976/callback",
            pkce: &pkce,
            state: "s1",
            resource: "http://a:1/mcp/alpha",
            scope: Some("mcp:alpha:tool:echo mcp:alpha:tool:add"),
            dpop_jkt: None,
        };
        let url = request.url();
        assert!(url.starts_with("http://a:1/oauth/authorize?response_type=code&"));
        assert!(url.contains("client_id=https%3A%2F%2Fdocs%3A2%2Fc.json"));
        assert!(url.contains("code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
        assert!(url.contains("scope=mcp%3Aalpha%3Atool%3Aecho+mcp%3Aalpha%3Atool%3Aadd"));
        assert!(!url.contains("dpop_jkt"));
    }

    #[test]
    fn the_callback_gives_the_code_only_with_our_state_and_the_issuer() {
        let cb = "http://127.0.0.1:8976/callback?code=c1&state=s1&iss=http%3A%2F%2Fa%3A1";
        assert_eq!(read_callback(cb, "s1", "http://a:1").unwrap(), "c1");
        assert!(read_callback(cb, "s2", "http://a:1").is_err());
        assert!(read_callback(cb, "s1", "http://evil:1").is_err());
        let denied = "http://127.0.0.1:8976/callback?error=access_denied&state=s1&iss=x";
        assert!(read_callback(denied, "s1", "x").is_err());
    }
}
