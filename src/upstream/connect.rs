//! "Connect the upstream": how a person, on a grant's consent page, gives
//! gnapd the credential the agent's token will use at an upstream, instead
//! of (or where there is none) the enterprise-held one. Sans I/O: the
//! config, the credential a pasted key makes, the probe request that checks
//! it. The page and the probe's sending live in `crate::http::pages`.
//!
//! ```toml
//! [[upstream]]
//! name = "tracker"
//! url = "https://tracker.example/mcp"
//! connect = { kind = "api_key", header = "Authorization", scheme = "Bearer", probe = true }
//! ```
//!
//! A connected credential is sealed under the master key as a
//! _person-connected_ credential set: id `person:<256 random bits>`
//! ([`PERSON_SET_PREFIX`]), the upstream's name recorded in the set. The
//! approved grant's tokens map to it at that upstream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use crate::clock::Clock;
use crate::store::HandoffKind;
use crate::upstream::Secret;
use crate::upstream::credential::{Credential, CredentialError};
use crate::upstream::oauth_client::{ClientConfigError, StartError, States};
use crate::upstream::oauth2::{OAuth2Credential, RefreshError, TokenRequest};
use crate::upstream::sealed_handoffs::SealedHandoffs;
use serde::Deserialize;

/// The id prefix of person-connected credential sets.
pub const PERSON_SET_PREFIX: &str = "person:";

/// Longest key a person may paste (bytes).
pub const MAX_KEY: usize = 4096;

/// How a person connects an upstream, as the config writes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Connect {
    /// The person pastes an API key or token, sent in `header` (with
    /// `scheme` and a space before it, when given).
    ApiKey {
        /// The header the key goes in (e.g. `Authorization`, `X-Api-Key`).
        header: String,
        /// An auth scheme before the key (e.g. `Bearer`).
        #[serde(default)]
        scheme: Option<String>,
        /// Check the key with one MCP `initialize` call before accepting it.
        #[serde(default)]
        probe: bool,
    },
    /// The person goes through the upstream's own OAuth authorization code
    /// flow (RFC 6749 §4.1, PKCE S256 per RFC 7636), gnapd being a
    /// statically registered client there; the tokens become an `oauth2`
    /// credential set (refreshed by the gateway).
    #[serde(rename = "oauth")]
    OAuth {
        /// The upstream AS's authorization endpoint.
        authorization_endpoint: String,
        /// Its token endpoint.
        token_endpoint: String,
        /// gnapd's client id there.
        client_id: String,
        /// gnapd's client secret there (none: a public client).
        #[serde(default)]
        client_secret: Option<Secret>,
        /// The scopes asked for.
        #[serde(default)]
        scopes: Vec<String>,
    },
}

/// Why a `connect` config or a pasted key was refused. Messages never
/// quote the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// The header cannot carry a credential.
    #[error(transparent)]
    Header(#[from] CredentialError),
    /// A scheme that is not one auth-scheme token.
    #[error("connect scheme `{0}` is not an auth scheme")]
    Scheme(String),
    /// The OAuth client config is wrong.
    #[error(transparent)]
    Client(#[from] ClientConfigError),
    /// A pasted key that is empty.
    #[error("the key is empty")]
    KeyEmpty,
    /// A pasted key with characters outside visible ASCII, or too long.
    #[error("the key has characters a key cannot have")]
    KeyCharacters,
    /// A pasted key that does not make a header value.
    #[error("the key is not usable")]
    KeyUnusable,
    /// A key pasted for an upstream connected by sign-in.
    #[error("this upstream is connected through its own sign-in")]
    SignIn,
}

impl Connect {
    /// Checks the config: a header that can carry a credential, a scheme
    /// that is one token.
    pub fn check(&self) -> Result<(), ConnectError> {
        match self {
            Self::ApiKey { header, scheme, .. } => {
                Credential::header(header, Secret::new("x"))?;
                if let Some(scheme) = scheme
                    && (scheme.is_empty()
                        || !scheme
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)))
                {
                    return Err(ConnectError::Scheme(scheme.clone()));
                }
                Ok(())
            }
            Self::OAuth {
                authorization_endpoint,
                token_endpoint,
                client_id,
                scopes,
                ..
            } => crate::upstream::oauth_client::check(
                "connect",
                &[
                    ("authorization_endpoint", authorization_endpoint),
                    ("token_endpoint", token_endpoint),
                ],
                client_id,
                scopes,
            )
            .map_err(ConnectError::from),
        }
    }

    /// Whether a pasted key is checked with a probe call.
    pub fn probes(&self) -> bool {
        match self {
            Self::ApiKey { probe, .. } => *probe,
            Self::OAuth { .. } => false,
        }
    }

    /// Whether the person connects through the upstream's OAuth flow.
    pub fn is_oauth(&self) -> bool {
        matches!(self, Self::OAuth { .. })
    }

    /// Where the person's browser goes to connect (RFC 6749 §4.1.1 with
    /// RFC 7636 §4.3): `None` for a pasted key.
    pub fn authorization_url(
        &self,
        redirect_uri: &str,
        state: &str,
        challenge: &str,
    ) -> Option<String> {
        let Self::OAuth {
            authorization_endpoint,
            client_id,
            scopes,
            ..
        } = self
        else {
            return None;
        };
        Some(crate::upstream::oauth_client::authorization_url(
            authorization_endpoint,
            client_id,
            scopes,
            redirect_uri,
            state,
            challenge,
            &[],
        ))
    }

    /// The token request exchanging `code` (RFC 6749 §4.1.3, with the PKCE
    /// `code_verifier`): `None` for a pasted key.
    pub fn code_request(
        &self,
        code: &str,
        verifier: &Secret,
        redirect_uri: &str,
    ) -> Option<TokenRequest> {
        let Self::OAuth {
            token_endpoint,
            client_id,
            client_secret,
            ..
        } = self
        else {
            return None;
        };
        Some(crate::upstream::oauth_client::code_request(
            token_endpoint,
            client_id,
            client_secret.as_ref(),
            code,
            verifier,
            redirect_uri,
        ))
    }

    /// The `oauth2` credential the token endpoint's answer (`status`,
    /// `body`, at `now`) makes. Errors never carry a token.
    pub fn exchanged(
        &self,
        status: u16,
        body: &[u8],
        now: i64,
    ) -> Result<OAuth2Credential, RefreshError> {
        let Self::OAuth {
            token_endpoint,
            client_id,
            client_secret,
            ..
        } = self
        else {
            return Err(RefreshError::Malformed);
        };
        // The §5.1 answer reads as a refresh's would; the placeholder is
        // replaced by the answer's access token.
        let before = OAuth2Credential {
            access_token: Secret::new("-"),
            refresh_token: None,
            expires_at: None,
            token_endpoint: token_endpoint.clone(),
            client_id: client_id.clone(),
            client_secret: client_secret.clone(),
            seed: None,
        };
        before.refreshed(status, body, now)
    }

    /// The credential a pasted `key` makes. Errors never echo the key.
    pub fn credential(&self, key: &str) -> Result<Credential, ConnectError> {
        match self {
            Self::ApiKey { header, scheme, .. } => {
                let key = key.trim();
                if key.is_empty() {
                    return Err(ConnectError::KeyEmpty);
                }
                if key.len() > MAX_KEY || key.bytes().any(|b| !(0x21..=0x7e).contains(&b)) {
                    return Err(ConnectError::KeyCharacters);
                }
                let value = match scheme {
                    Some(scheme) => Secret::new(format!("{scheme} {key}")),
                    None => Secret::new(key),
                };
                Credential::header(header, value).map_err(|_| ConnectError::KeyUnusable)
            }
            Self::OAuth { .. } => Err(ConnectError::SignIn),
        }
    }
}

/// A sign-in at an upstream's AS under way: what its `state` stands for.
#[derive(Debug, Clone)]
pub struct PendingAuth {
    /// The grant whose page started it.
    pub grant: String,
    /// The upstream.
    pub upstream: String,
    /// The PKCE `code_verifier`.
    pub verifier: Secret,
    /// It is refused after this time (Unix seconds).
    pub expires_at: i64,
}

/// The OAuth connections of pending grants, in memory: sign-ins under way
/// (single-use `state`s, `crate::upstream::oauth_client::States`), and the sets
/// connected so far per grant, until the grant is decided. A restart
/// forgets both (the person connects again; a set already stored stays
/// unused).
///
/// When nodes share a store ([`Connections::share`]) both are its shared
/// entries, sealed under the master key: the upstream's callback and the
/// decision may land on any node. A grant's list is one entry, read and
/// written back: two connections of one grant finishing at the same moment
/// on two nodes may keep only one (the page shows the other unconnected,
/// and the person connects it again).
#[derive(Debug, Default)]
pub struct Connections {
    states: States<(String, String)>,
    connected: Mutex<HashMap<String, Vec<(String, String)>>>,
    shared: OnceLock<SharedConnections>,
}

/// Where the connected lists go when nodes share the store.
struct SharedConnections {
    entries: SealedHandoffs,
    /// How long a grant's list is kept (an interaction's lifetime).
    lifetime: i64,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for SharedConnections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedConnections")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl Connections {
    /// Upstream sign-ins under way, and the sets connected per pending
    /// grant.
    pub fn sizes(&self) -> [(&'static str, crate::store::TableSize); 2] {
        let mut connected = crate::store::TableSize::default();
        if let Ok(map) = self.connected.lock() {
            for (grant, sets) in map.iter() {
                let bytes: usize = sets.iter().map(|(a, b)| a.len() + b.len()).sum();
                connected.add(grant.len(), bytes);
            }
        }
        [
            ("memory:upstream_sign_ins", self.states.size()),
            ("memory:upstream_connected", connected),
        ]
    }

    /// No connection under way, sign-ins bounded by `bounds`.
    pub fn new(bounds: crate::upstream::oauth_client::SignInBounds) -> Self {
        Self {
            states: States::new(bounds),
            connected: Mutex::default(),
            shared: OnceLock::new(),
        }
    }

    /// Starts a sign-in for `upstream` from `grant`'s page, from client
    /// address `from`, in the browser holding `browser`: the `state` (256
    /// random bits) and the PKCE S256 `code_challenge` to send.
    pub fn start(
        &self,
        grant: &str,
        upstream: &str,
        from: crate::proto::address::AddressKey,
        browser: &str,
        now: i64,
    ) -> Result<(String, String), StartError> {
        self.states.start(
            (grant.to_owned(), upstream.to_owned()),
            grant,
            from,
            browser,
            now,
        )
    }

    /// The sign-in counters, in the Prometheus text format.
    pub fn render_metrics(&self, out: &mut String) {
        self.states.render("connect", out);
    }

    /// The sign-in `state` stands for, taken: a state works once, not
    /// after it expired, and only from the browser that started it.
    pub fn take(&self, state: &str, browser: Option<&str>, now: i64) -> Option<PendingAuth> {
        self.states.take(state, browser, now).map(|s| PendingAuth {
            grant: s.what.0,
            upstream: s.what.1,
            verifier: s.verifier,
            expires_at: s.expires_at,
        })
    }

    /// Records set `id`, connected at `upstream` for `grant` (replacing an
    /// earlier one there; returns the replaced id).
    pub fn connected(&self, grant: &str, upstream: &str, id: &str) -> Option<String> {
        if let Some(shared) = self.shared.get() {
            return shared.connected(grant, upstream, id);
        }
        let mut connected = self.connected.lock().ok()?;
        let sets = connected.entry(grant.to_owned()).or_default();
        replace_set(sets, upstream, id)
    }

    /// The sets connected for `grant` so far: (upstream, set id).
    pub fn sets(&self, grant: &str) -> Vec<(String, String)> {
        if let Some(shared) = self.shared.get() {
            return shared.sets(grant);
        }
        self.connected
            .lock()
            .ok()
            .and_then(|c| c.get(grant).cloned())
            .unwrap_or_default()
    }

    /// Forgets `grant` (decided).
    pub fn forget(&self, grant: &str) {
        if let Some(shared) = self.shared.get() {
            if let Err(e) = shared.entries.remove(HandoffKind::ConnectConnected, grant) {
                tracing::error!(error = %e, "a grant's shared connections could not be removed");
            }
            return;
        }
        if let Ok(mut connected) = self.connected.lock() {
            connected.remove(grant);
        }
    }

    /// From now on, keeps connections under way and the sets connected
    /// per grant in `entries` (any node serves the callback and the
    /// decision), each grant's list for `lifetime` seconds from its last
    /// change (an interaction's lifetime), timed by `clock`.
    pub fn share(&self, entries: SealedHandoffs, lifetime: i64, clock: Arc<dyn Clock>) {
        self.states
            .share(entries.clone(), HandoffKind::ConnectState);
        let _ = self.shared.set(SharedConnections {
            entries,
            lifetime,
            clock,
        });
    }
}

/// Puts `id` as the set at `upstream` in `sets`: the id it replaces.
fn replace_set(sets: &mut Vec<(String, String)>, upstream: &str, id: &str) -> Option<String> {
    let old = sets
        .iter()
        .position(|(u, _)| u == upstream)
        .map(|i| sets.remove(i).1);
    sets.push((upstream.to_owned(), id.to_owned()));
    old
}

impl SharedConnections {
    fn sets(&self, grant: &str) -> Vec<(String, String)> {
        let now = self.clock.now();
        self.entries
            .get(HandoffKind::ConnectConnected, grant, now)
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "a grant's shared connections could not be read");
                None
            })
            .unwrap_or_default()
    }

    fn connected(&self, grant: &str, upstream: &str, id: &str) -> Option<String> {
        let now = self.clock.now();
        let mut sets = self.sets(grant);
        let old = replace_set(&mut sets, upstream, id);
        let kept = self.entries.put(
            HandoffKind::ConnectConnected,
            grant,
            &sets,
            now.saturating_add(self.lifetime),
        );
        if let Err(e) = kept {
            tracing::error!(error = %e, "a grant's shared connections could not be written");
        }
        old
    }
}

/// The probe: an MCP `initialize` request (Streamable HTTP POST). The
/// upstream's status says whether it took the credential: 2xx yes, 401 or
/// 403 no, anything else "could not tell".
pub const PROBE_BODY: &str = r#"{"jsonrpc":"2.0","id":"gnapd-connect-probe","method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"gnapd-connect-probe","version":"1"}}}"#;

/// What a probe's status means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probed {
    /// 2xx: the upstream took the credential.
    Accepted,
    /// 401 or 403: it refused it.
    Refused,
    /// Anything else: the upstream could not tell us.
    Unknown,
}

impl Probed {
    /// The meaning of `status`.
    pub fn of(status: u16) -> Self {
        match status {
            200..=299 => Self::Accepted,
            401 | 403 => Self::Refused,
            _ => Self::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::b64;
    use sha2::{Digest as _, Sha256};

    #[test]
    fn connect_configs_parse_and_pasted_keys_become_header_credentials() {
        let bearer: Connect = toml::from_str(
            r#"kind = "api_key"
header = "Authorization"
scheme = "Bearer"
probe = true"#,
        )
        .unwrap();
        bearer.check().unwrap();
        assert!(bearer.probes());
        let (name, value) = bearer
            .credential("  k-123 ")
            .unwrap()
            .header_to_inject()
            .unwrap();
        assert_eq!(name, "authorization");
        assert_eq!(value.to_str().unwrap(), "Bearer k-123");

        let plain: Connect = toml::from_str("kind = \"api_key\"\nheader = \"X-Api-Key\"").unwrap();
        assert!(!plain.probes());
        let (name, value) = plain.credential("k").unwrap().header_to_inject().unwrap();
        assert_eq!((name.as_str(), value.to_str().unwrap()), ("x-api-key", "k"));

        for bad in ["", "   ", "a b", "k\u{e9}", "a\nb"] {
            let err = plain.credential(bad).unwrap_err();
            assert!(
                bad.trim().is_empty() || !err.to_string().contains(bad.trim()),
                "{err}"
            );
        }
        assert!(
            toml::from_str::<Connect>("kind = \"api_key\"\nheader = \"Host\"")
                .unwrap()
                .check()
                .is_err()
        );
        assert!(
            toml::from_str::<Connect>("kind = \"api_key\"\nheader = \"A\"\nscheme = \"a b\"")
                .unwrap()
                .check()
                .is_err()
        );
        assert!(toml::from_str::<Connect>("kind = \"api_key\"\nheader = \"A\"\nx = 1").is_err());
    }

    #[test]
    fn oauth_connect_sends_pkce_s256_and_a_single_use_state() {
        let connect: Connect = toml::from_str(
            r#"kind = "oauth"
authorization_endpoint = "https://as.example/auth?tenant=1"
token_endpoint = "https://as.example/token"
client_id = "gnapd"
client_secret = "s3cret"
scopes = ["openid", "mcp:read"]"#,
        )
        .unwrap();
        connect.check().unwrap();
        assert!(connect.is_oauth() && !connect.probes());
        let connections = Connections::default();
        let (state, challenge) = connections
            .start(
                "g-1",
                "tracker",
                crate::proto::address::AddressKey::V4(1),
                "browser-1",
                1_000,
            )
            .unwrap();
        let url = connect
            .authorization_url(
                "https://gnapd.example/gnap/connect/callback",
                &state,
                &challenge,
            )
            .unwrap();
        assert!(url.starts_with("https://as.example/auth?tenant=1&response_type=code&client_id=gnapd&redirect_uri=https%3A%2F%2Fgnapd.example%2Fgnap%2Fconnect%2Fcallback&state="), "{url}");
        assert!(
            url.ends_with("&code_challenge_method=S256&scope=openid%20mcp%3Aread"),
            "{url}"
        );
        let pending = connections.take(&state, Some("browser-1"), 1_001).unwrap();
        assert_eq!(
            (pending.grant.as_str(), pending.upstream.as_str()),
            ("g-1", "tracker")
        );
        // RFC 7636 §4.2: challenge = BASE64URL(SHA256(verifier)).
        assert_eq!(
            challenge,
            b64::encode_url(&Sha256::digest(pending.verifier.expose().as_bytes()))
        );
        assert!(
            connections.take(&state, Some("browser-1"), 1_001).is_none(),
            "a state works once"
        );
        let (late, _) = connections
            .start(
                "g-1",
                "tracker",
                crate::proto::address::AddressKey::V4(1),
                "browser-1",
                1_000,
            )
            .unwrap();
        assert!(
            connections
                .take(
                    &late,
                    Some("browser-1"),
                    1_000 + crate::upstream::oauth_client::STATE_LIFETIME + 1
                )
                .is_none()
        );
        assert!(
            connections
                .take("guessed", Some("browser-1"), 1_000)
                .is_none()
        );
        let (elsewhere, _) = connections
            .start(
                "g-1",
                "tracker",
                crate::proto::address::AddressKey::V4(1),
                "browser-1",
                1_000,
            )
            .unwrap();
        for browser in [None, Some("browser-2")] {
            assert!(connections.take(&elsewhere, browser, 1_000).is_none());
        }

        let request = connect
            .code_request("c0de", &pending.verifier, "https://gnapd.example/cb")
            .unwrap();
        assert_eq!(request.uri, "https://as.example/token");
        assert!(request.body.starts_with("grant_type=authorization_code&code=c0de&redirect_uri=https%3A%2F%2Fgnapd.example%2Fcb&code_verifier="));
        assert!(request.headers.iter().any(|(n, _)| *n == "authorization"));
        let credential = connect
            .exchanged(
                200,
                br#"{"access_token":"at","token_type":"Bearer","expires_in":60}"#,
                5,
            )
            .unwrap();
        assert_eq!(credential.access_token.expose(), "at");
        assert_eq!(credential.expires_at, Some(65));
        assert!(
            connect
                .exchanged(400, br#"{"error":"invalid_grant"}"#, 5)
                .is_err()
        );

        assert_eq!(connections.connected("g-1", "tracker", "person:a"), None);
        assert_eq!(
            connections
                .connected("g-1", "tracker", "person:b")
                .as_deref(),
            Some("person:a")
        );
        assert_eq!(
            connections.sets("g-1"),
            [("tracker".to_owned(), "person:b".to_owned())]
        );
        connections.forget("g-1");
        assert!(connections.sets("g-1").is_empty());
        assert!(
            toml::from_str::<Connect>("kind = \"oauth\"\nauthorization_endpoint = \"ftp://x\"\ntoken_endpoint = \"https://a/t\"\nclient_id = \"c\"")
                .unwrap()
                .check()
                .is_err()
        );
    }

    #[test]
    fn probe_statuses_mean_accepted_refused_or_unknown() {
        assert_eq!(Probed::of(200), Probed::Accepted);
        assert_eq!(Probed::of(202), Probed::Accepted);
        assert_eq!(Probed::of(401), Probed::Refused);
        assert_eq!(Probed::of(403), Probed::Refused);
        assert_eq!(Probed::of(404), Probed::Unknown);
        assert_eq!(Probed::of(500), Probed::Unknown);
        assert!(serde_json::from_str::<serde_json::Value>(PROBE_BODY).is_ok());
    }
}
