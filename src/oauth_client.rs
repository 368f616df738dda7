//! gnapd as an OAuth client using the authorization code flow (RFC 6749
//! §4.1) with PKCE S256 (RFC 7636), sans I/O: the checks of a client's
//! config, the authorization request URL, the token request exchanging a
//! code, and the single-use `state`s of sign-ins under way. Shared by the
//! "connect the upstream" flow (`crate::upstream::connect`) and the OIDC
//! login of the person deciding (`crate::authz::login`).

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest as _, Sha256};

use crate::authz::mint::{NoRandomness, random_text};
use crate::gateway::oauth2::{TokenRequest, client_token_request, form_encode};
use crate::gateway::upstream::Secret;
use crate::proto::b64;

/// How long a person has to come back from a sign-in (seconds).
pub const STATE_LIFETIME: i64 = 600;
/// Most sign-ins under way at once (all are dropped past it).
const MAX_PENDING: usize = 10_000;

/// Checks a client's config: `(what, url)` endpoints that are http(s)
/// URLs without a fragment, a client id, RFC 6749 scope tokens. `prefix`
/// names the config section in messages.
pub fn check(
    prefix: &str,
    endpoints: &[(&str, &str)],
    client_id: &str,
    scopes: &[String],
) -> Result<(), String> {
    for (what, url) in endpoints {
        let parsed: hyper::Uri = url
            .parse()
            .map_err(|_| format!("{prefix} {what} is not a URL"))?;
        if !matches!(parsed.scheme_str(), Some("http" | "https"))
            || parsed.host().is_none()
            || url.contains('#')
        {
            return Err(format!("{prefix} {what} must be an http(s) URL"));
        }
    }
    if client_id.is_empty() {
        return Err(format!("{prefix} needs a client_id"));
    }
    if scopes.iter().any(|s| {
        s.is_empty()
            || s.bytes()
                .any(|b| b <= b' ' || b == b'"' || b == b'\\' || b > 0x7e)
    }) {
        return Err(format!("{prefix} scopes must be RFC 6749 scope tokens"));
    }
    Ok(())
}

/// The authorization request (RFC 6749 §4.1.1 with RFC 7636 §4.3): where
/// the person's browser goes. `extra` parameters follow (e.g. an OIDC
/// `nonce`).
pub fn authorization_url(
    authorization_endpoint: &str,
    client_id: &str,
    scopes: &[String],
    redirect_uri: &str,
    state: &str,
    challenge: &str,
    extra: &[(&str, &str)],
) -> String {
    let mut params = vec![
        ("response_type", "code".to_owned()),
        ("client_id", client_id.to_owned()),
        ("redirect_uri", redirect_uri.to_owned()),
        ("state", state.to_owned()),
        ("code_challenge", challenge.to_owned()),
        ("code_challenge_method", "S256".to_owned()),
    ];
    if !scopes.is_empty() {
        params.push(("scope", scopes.join(" ")));
    }
    params.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let query = params
        .iter()
        .map(|(k, v)| format!("{k}={}", form_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let separator = if authorization_endpoint.contains('?') {
        '&'
    } else {
        '?'
    };
    format!("{authorization_endpoint}{separator}{query}")
}

/// The token request exchanging `code` (RFC 6749 §4.1.3, with the PKCE
/// `code_verifier`).
pub fn code_request(
    token_endpoint: &str,
    client_id: &str,
    client_secret: Option<&Secret>,
    code: &str,
    verifier: &Secret,
    redirect_uri: &str,
) -> TokenRequest {
    client_token_request(
        token_endpoint,
        client_id,
        client_secret,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier.expose()),
        ],
    )
}

/// A sign-in under way: what its `state` stands for, and its PKCE
/// `code_verifier`.
#[derive(Debug, Clone)]
pub struct Started<T> {
    /// What the sign-in is for.
    pub what: T,
    /// The PKCE `code_verifier`.
    pub verifier: Secret,
    /// It is refused after this time (Unix seconds).
    pub expires_at: i64,
    /// SHA-256 of the value the browser that started it holds (a cookie):
    /// only that browser can finish it.
    browser: [u8; 32],
}

/// Sign-ins under way, in memory, by the SHA-256 of their `state` (256
/// random bits), each taken once. A restart forgets them: the person
/// starts the sign-in again.
///
/// Each is bound to the browser that started it (RFC 9700 §4.7.1: the
/// `state` is tied to the user agent's session): a `state` is accepted
/// only from the browser presenting the same cookie value. Otherwise a
/// victim lured to a sign-in URL that an attacker started would, on
/// coming back, attach the victim's account to the attacker's grant.
#[derive(Debug)]
pub struct States<T> {
    pending: Mutex<HashMap<[u8; 32], Started<T>>>,
}

impl<T> Default for States<T> {
    fn default() -> Self {
        Self {
            pending: Mutex::new(HashMap::new()),
        }
    }
}

fn state_key(state: &str) -> [u8; 32] {
    Sha256::digest(state.as_bytes()).into()
}

impl<T> States<T> {
    /// Starts a sign-in for `what` at `now` from the browser holding
    /// `browser`: the `state` and the PKCE S256 `code_challenge` to send.
    pub fn start(
        &self,
        what: T,
        browser: &str,
        now: i64,
    ) -> Result<(String, String), NoRandomness> {
        let state = random_text()?;
        let verifier = Secret::new(random_text()?);
        let challenge = b64::encode_url(&Sha256::digest(verifier.expose().as_bytes()));
        let mut pending = self.pending.lock().map_err(|_| NoRandomness)?;
        pending.retain(|_, p| p.expires_at >= now);
        if pending.len() >= MAX_PENDING {
            pending.clear();
        }
        pending.insert(
            state_key(&state),
            Started {
                what,
                verifier,
                expires_at: now.saturating_add(STATE_LIFETIME),
                browser: state_key(browser),
            },
        );
        Ok((state, challenge))
    }

    /// The sign-in `state` stands for, taken: a state works once, not
    /// after it expired, and only from the browser that started it (its
    /// `browser` value). Presented by another browser it is used up all
    /// the same: a state that leaked finishes nothing.
    pub fn take(&self, state: &str, browser: Option<&str>, now: i64) -> Option<Started<T>> {
        let mut pending = self.pending.lock().ok()?;
        let started = pending
            .remove(&state_key(state))
            .filter(|p| p.expires_at >= now)?;
        let same_browser = browser.is_some_and(|b| {
            bool::from(subtle::ConstantTimeEq::ct_eq(
                &state_key(b)[..],
                &started.browser[..],
            ))
        });
        same_browser.then_some(started)
    }
}
