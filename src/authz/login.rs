//! Who the person deciding is: an OpenID Connect login at a configured
//! enterprise IdP, before a consent page lets anyone approve or deny.
//! Sans I/O; the HTTP edge (`crate::http::pages`) sends the browser and
//! the code exchange.
//!
//! ```toml
//! [login]
//! kind = "oidc"
//! issuer = "https://idp.example.com"
//! authorization_endpoint = "https://idp.example.com/authorize"
//! token_endpoint = "https://idp.example.com/token"
//! client_id = "gnapd"
//! client_secret = "…"            # optional: a public client without
//! jwks_file = "/etc/gnapd/idp-jwks.json"
//! scopes = ["openid"]            # the default
//! subjects = ["*@example.com"]   # who may decide; absent: anyone the IdP signs in
//! ```
//!
//! The flow is the authorization code flow (OIDC Core §3.1) with PKCE S256
//! and a `nonce`, gnapd being a registered client at the IdP
//! (`crate::upstream::oauth_client`): the page's "Sign in" button gets a 303 there
//! with a single-use `state` bound to the grant; the callback
//! ([`LOGIN_CALLBACK_PATH`]) exchanges the code, and verifies the ID token
//! with [`crate::authz::assertion::verify_login_id_token`] (signature by
//! the JWKS's keys, `iss`, `aud` = the client id, `exp`, `nbf`, `sub`,
//! `nonce`), then checks the subject against `subjects`.
//!
//! The sign-in is bound to the browser that went through it: the callback
//! sets a cookie (`gnapd_login_{grant}`, HttpOnly, SameSite=Lax) holding a
//! 256-bit token, and a decision counts as the subject's only with it —
//! anyone else holding the grant's link and form token (the agent that
//! asked, for one) cannot decide on the person's sign-in. The subject and
//! the token's SHA-256 are kept in memory per pending grant, until the
//! grant is decided: a restart forgets them and the person signs in again.
//! When nodes share a store ([`Login::share`]) the sign-ins under way and
//! the signed-in subjects are its shared entries instead, sealed under the
//! master key, so the IdP's callback and the decision may land on any
//! node; a signed-in entry lasts an interaction's lifetime from the
//! sign-in (no decision can come later).
//! The subject who decided is recorded durably with the decision (the
//! interaction record's `by`) and logged.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;

use super::assertion::{AssertionError, TrustedIssuer, subject_matches, verify_login_id_token};
use crate::proto::address::AddressKey;
use crate::random::NoRandomness;
use crate::store::HandoffKind;
use crate::upstream::Secret;
use crate::upstream::oauth_client::{StartError, States};
use crate::upstream::oauth2::TokenRequest;
use crate::upstream::sealed_handoffs::SealedHandoffs;

/// Where the IdP sends the browser back (the redirect URI registered there).
pub(crate) const LOGIN_CALLBACK_PATH: &str = "/gnap/login/callback";

/// Most signed-in pending grants kept at once (the oldest sign-in goes
/// past it).
const MAX_SIGNED_IN: usize = 10_000;

fn default_scopes() -> Vec<String> {
    vec!["openid".to_owned()]
}

/// The `[login]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LoginEntry {
    /// An OpenID Connect login.
    Oidc {
        /// The issuer identifier (`iss` of its ID tokens).
        issuer: String,
        /// Its authorization endpoint.
        authorization_endpoint: String,
        /// Its token endpoint.
        token_endpoint: String,
        /// gnapd's client id there (the ID tokens' audience).
        client_id: String,
        /// gnapd's client secret there (none: a public client).
        #[serde(default)]
        client_secret: Option<Secret>,
        /// The IdP's public keys (a JWKS document).
        jwks_file: PathBuf,
        /// The scopes asked for (must hold `openid`).
        #[serde(default = "default_scopes")]
        scopes: Vec<String>,
        /// Who may decide: exact subjects, `*`, or `*suffix`. Empty: anyone
        /// the IdP signs in.
        #[serde(default)]
        subjects: Vec<String>,
    },
}

/// A login under way: the grant whose page started it and the `nonce`
/// sent, with the PKCE verifier (`crate::upstream::oauth_client::Started`).
#[derive(Debug, Clone)]
pub(crate) struct LoginStarted {
    /// The grant.
    pub(crate) grant: String,
    /// The `nonce` the ID token must carry.
    pub(crate) nonce: Secret,
    /// The PKCE `code_verifier`.
    pub(crate) verifier: Secret,
}

/// Why a login did not sign anyone in. Messages never carry a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LoginError {
    /// The token endpoint refused the code (its status).
    #[error("the IdP refused the code exchange (status {0})")]
    Exchange(u16),
    /// Its answer held no ID token.
    #[error("the IdP's answer holds no ID token")]
    NoIdToken,
    /// The ID token did not verify.
    #[error("{0}")]
    IdToken(AssertionError),
}

/// Why a `[login]` entry is not usable (read at start).
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoginConfigError {
    /// Its endpoints, client id or scopes (the OAuth client's own check).
    #[error("{0}")]
    Client(String),
    /// `openid` is not among the scopes.
    #[error("login scopes must hold `openid`")]
    NoOpenid,
    /// No issuer.
    #[error("login needs an issuer")]
    NoIssuer,
    /// An empty string among the subjects.
    #[error("login subjects must not be empty strings")]
    EmptySubject,
    /// The JWKS file gives no usable keys.
    #[error("login jwks_file: {0}")]
    Jwks(#[from] super::assertion::JwksError),
}

/// The configured login, with the sign-ins under way and the subjects
/// signed in per pending grant.
#[derive(Debug)]
pub struct Login {
    authorization_endpoint: String,
    token_endpoint: String,
    client_id: String,
    client_secret: Option<Secret>,
    scopes: Vec<String>,
    subjects: Vec<String>,
    issuer: TrustedIssuer,
    states: States<(String, Secret)>,
    signed_in: Mutex<SignedIn>,
    /// The shared entries and how long a sign-in lasts there, when nodes
    /// share the store.
    shared: OnceLock<(SealedHandoffs, i64)>,
}

/// A signed-in person as the shared entry holds it (sealed).
#[derive(Serialize, Deserialize)]
struct SharedSignedIn {
    subject: String,
    token: [u8; 32],
}

/// Who signed in per pending grant: the subject and the SHA-256 of the
/// browser's token, with the order of the sign-ins so that the oldest goes
/// first when the map is full.
#[derive(Debug, Default)]
struct SignedIn {
    by_grant: HashMap<String, (String, [u8; 32], u64)>,
    order: BTreeMap<u64, String>,
    next: u64,
    /// Sign-ins let go to make room.
    evicted: u64,
}

impl SignedIn {
    fn remove(&mut self, grant: &str) -> Option<(String, [u8; 32])> {
        let (subject, digest, seq) = self.by_grant.remove(grant)?;
        self.order.remove(&seq);
        Some((subject, digest))
    }

    fn insert(&mut self, grant: &str, subject: &str, digest: [u8; 32]) {
        self.remove(grant);
        if self.by_grant.len() >= MAX_SIGNED_IN
            && let Some((_, oldest)) = self.order.pop_first()
        {
            self.by_grant.remove(&oldest);
            self.evicted += 1;
        }
        self.next += 1;
        self.order.insert(self.next, grant.to_owned());
        self.by_grant
            .insert(grant.to_owned(), (subject.to_owned(), digest, self.next));
    }
}

impl Login {
    /// Sign-ins under way (OIDC `state`s) and people signed in per grant.
    pub fn sizes(&self) -> [(&'static str, crate::store::TableSize); 2] {
        let mut signed_in = crate::store::TableSize::default();
        if let Ok(held) = self.signed_in.lock() {
            for (grant, (subject, _, _)) in &held.by_grant {
                signed_in.add(grant.len(), subject.len() + 32 + 8);
            }
        }
        [
            ("memory:login_sign_ins", self.states.size()),
            ("memory:login_signed_in", signed_in),
        ]
    }

    /// The login `entry` configures, its JWKS being `jwks` (the file's
    /// bytes).
    pub(crate) fn new(entry: LoginEntry, jwks: &[u8]) -> Result<Self, LoginConfigError> {
        let LoginEntry::Oidc {
            issuer,
            authorization_endpoint,
            token_endpoint,
            client_id,
            client_secret,
            scopes,
            subjects,
            ..
        } = entry;
        crate::upstream::oauth_client::check(
            "login",
            &[
                ("authorization_endpoint", &authorization_endpoint),
                ("token_endpoint", &token_endpoint),
            ],
            &client_id,
            &scopes,
        )
        .map_err(|e| LoginConfigError::Client(e.to_string()))?;
        if !scopes.iter().any(|s| s == "openid") {
            return Err(LoginConfigError::NoOpenid);
        }
        if issuer.is_empty() {
            return Err(LoginConfigError::NoIssuer);
        }
        if subjects.iter().any(String::is_empty) {
            return Err(LoginConfigError::EmptySubject);
        }
        let issuer = TrustedIssuer::from_jwks(&issuer, &client_id, jwks)?;
        Ok(Self {
            authorization_endpoint,
            token_endpoint,
            client_id,
            client_secret,
            scopes,
            subjects,
            issuer,
            states: States::default(),
            signed_in: Mutex::new(SignedIn::default()),
            shared: OnceLock::new(),
        })
    }

    /// From now on, keeps sign-ins under way and signed-in subjects in
    /// `shared` (so any node serves the callback and the decision), each
    /// signed-in subject for `lifetime` seconds (an interaction's).
    pub(crate) fn share(&self, shared: SealedHandoffs, lifetime: i64) {
        self.states.share(shared.clone(), HandoffKind::LoginState);
        let _ = self.shared.set((shared, lifetime));
    }

    /// The same login with sign-ins under way bounded by `bounds`.
    pub(crate) fn with_sign_in_bounds(
        mut self,
        bounds: crate::upstream::oauth_client::SignInBounds,
    ) -> Self {
        self.states = States::new(bounds);
        self
    }

    /// The sign-in counters, in the Prometheus text format.
    pub(crate) fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write as _;
        self.states.render("login", out);
        let (held, evicted) = self
            .signed_in
            .lock()
            .map(|s| (s.by_grant.len(), s.evicted))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "# HELP gnapd_login_signed_in Pending grants with a person signed in.\n# TYPE gnapd_login_signed_in gauge\ngnapd_login_signed_in {held}\n# HELP gnapd_login_signed_in_evicted_total Sign-ins let go, the oldest first, when as many grants as may be had one.\n# TYPE gnapd_login_signed_in_evicted_total counter\ngnapd_login_signed_in_evicted_total {evicted}"
        );
    }

    /// The IdP's authorization endpoint (a CSP `form-action` source).
    pub(crate) fn authorization_endpoint(&self) -> &str {
        &self.authorization_endpoint
    }

    /// Starts a login from `grant`'s page, from client address `from`, in
    /// the browser holding `browser`: the URL the browser goes to, with a
    /// fresh single-use `state` (bound to that browser), PKCE S256
    /// challenge and `nonce`.
    pub(crate) fn start(
        &self,
        grant: &str,
        from: AddressKey,
        browser: &str,
        redirect_uri: &str,
        now: i64,
    ) -> Result<String, StartError> {
        let nonce = crate::random::text()?;
        let (state, challenge) = self.states.start(
            (grant.to_owned(), Secret::new(nonce.clone())),
            grant,
            from,
            browser,
            now,
        )?;
        Ok(crate::upstream::oauth_client::authorization_url(
            &self.authorization_endpoint,
            &self.client_id,
            &self.scopes,
            redirect_uri,
            &state,
            &challenge,
            &[("nonce", &nonce)],
        ))
    }

    /// The login `state` stands for, taken (once; not after it expired;
    /// only from the browser that started it).
    pub(crate) fn take(
        &self,
        state: &str,
        browser: Option<&str>,
        now: i64,
    ) -> Option<LoginStarted> {
        self.states.take(state, browser, now).map(|s| LoginStarted {
            grant: s.what.0,
            nonce: s.what.1,
            verifier: s.verifier,
        })
    }

    /// The token request exchanging `code`.
    pub(crate) fn code_request(
        &self,
        code: &str,
        verifier: &Secret,
        redirect_uri: &str,
    ) -> TokenRequest {
        crate::upstream::oauth_client::code_request(
            &self.token_endpoint,
            &self.client_id,
            self.client_secret.as_ref(),
            code,
            verifier,
            redirect_uri,
        )
    }

    /// The subject the token endpoint's answer (`status`, `body`) signs in:
    /// its `id_token`, verified with the `nonce` sent, at `now`.
    pub(crate) fn subject_of(
        &self,
        status: u16,
        body: &[u8],
        nonce: &Secret,
        now: i64,
    ) -> Result<String, LoginError> {
        if status != 200 {
            return Err(LoginError::Exchange(status));
        }
        let answer: serde_json::Value =
            serde_json::from_slice(body).map_err(|_| LoginError::NoIdToken)?;
        let token = answer
            .get("id_token")
            .and_then(serde_json::Value::as_str)
            .ok_or(LoginError::NoIdToken)?;
        verify_login_id_token(token, &self.issuer, nonce.expose(), now)
            .map(|user| user.subject)
            .map_err(LoginError::IdToken)
    }

    /// The owner recorded on the sets `subject` connects
    /// (`crate::upstream::earlier::owner_of`: the issuer and the subject).
    pub(crate) fn owner(&self, subject: &str) -> String {
        crate::upstream::earlier::owner_of(&self.issuer.issuer, subject)
    }

    /// Whether `subject` may decide.
    pub(crate) fn allows(&self, subject: &str) -> bool {
        self.subjects.is_empty() || subject_matches(&self.subjects, subject)
    }

    /// Records that `subject` (allowed) signed in for `grant` at `now`:
    /// the token (256 random bits) the browser that signed in holds (a
    /// cookie), kept here as its SHA-256. A later sign-in for the grant
    /// replaces it.
    pub(crate) fn signed_in(
        &self,
        grant: &str,
        subject: &str,
        now: i64,
    ) -> Result<String, StartError> {
        let token = crate::random::text()?;
        let digest = crate::proto::hash::sha256(token.as_bytes());
        if let Some((shared, lifetime)) = self.shared.get() {
            let entry = SharedSignedIn {
                subject: subject.to_owned(),
                token: digest,
            };
            shared
                .put(
                    HandoffKind::LoginSignedIn,
                    grant,
                    &entry,
                    now.saturating_add(*lifetime),
                )
                .map_err(|e| {
                    tracing::error!(error = %e, "a sign-in could not be shared");
                    StartError::Unavailable
                })?;
            return Ok(token);
        }
        let mut signed_in = self.signed_in.lock().map_err(|_| NoRandomness)?;
        signed_in.insert(grant, subject, digest);
        Ok(token)
    }

    /// The subject signed in for `grant` and their browser token's digest.
    fn signed_in_entry(&self, grant: &str, now: i64) -> Option<(String, [u8; 32])> {
        if let Some((shared, _)) = self.shared.get() {
            let entry: SharedSignedIn = shared
                .get(HandoffKind::LoginSignedIn, grant, now)
                .map_err(|e| tracing::error!(error = %e, "a shared sign-in could not be read"))
                .ok()??;
            return Some((entry.subject, entry.token));
        }
        let signed_in = self.signed_in.lock().ok()?;
        let (subject, token, _) = signed_in.by_grant.get(grant)?;
        Some((subject.clone(), *token))
    }

    /// Who signed in for `grant` with the browser presenting `token`, and
    /// may decide it at `now`, if anyone.
    pub(crate) fn subject(&self, grant: &str, token: Option<&str>, now: i64) -> Option<String> {
        let token = token?;
        let digest: [u8; 32] = crate::proto::hash::sha256(token.as_bytes());
        let (subject, expected) = self.signed_in_entry(grant, now)?;
        let same: bool = digest.ct_eq(&expected).into();
        (same && self.allows(&subject)).then_some(subject)
    }

    /// Who has signed in on `grant`'s page, if anyone (for the admin's
    /// list of pending grants; deciding needs the browser's token).
    pub(crate) fn signed_in_subject(&self, grant: &str, now: i64) -> Option<String> {
        self.signed_in_entry(grant, now).map(|(subject, _)| subject)
    }

    /// Forgets `grant` (decided).
    pub(crate) fn forget(&self, grant: &str) {
        if let Some((shared, _)) = self.shared.get() {
            if let Err(e) = shared.remove(HandoffKind::LoginSignedIn, grant) {
                tracing::error!(error = %e, "a shared sign-in could not be removed");
            }
            return;
        }
        if let Ok(mut signed_in) = self.signed_in.lock() {
            signed_in.remove(grant);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWKS: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;

    fn login(extra: &str) -> Result<Login, String> {
        let entry: LoginEntry = toml::from_str(&format!(
            r#"kind = "oidc"
issuer = "https://idp.example"
authorization_endpoint = "https://idp.example/auth"
token_endpoint = "https://idp.example/token"
client_id = "gnapd"
jwks_file = "unused.json"
{extra}"#
        ))
        .map_err(|e| e.to_string())?;
        Login::new(entry, JWKS.as_bytes()).map_err(|e| e.to_string())
    }

    #[test]
    fn login_sends_state_pkce_and_nonce_and_takes_each_state_once() {
        let login = login("subjects = [\"*@example.com\", \"root\"]").unwrap();
        let url = login
            .start(
                "g-1",
                AddressKey::V4(1),
                "browser-1",
                "https://gnapd.example/gnap/login/callback",
                1_000,
            )
            .unwrap();
        assert!(
            url.starts_with("https://idp.example/auth?response_type=code&client_id=gnapd&redirect_uri=https%3A%2F%2Fgnapd.example%2Fgnap%2Flogin%2Fcallback&state="),
            "{url}"
        );
        assert!(
            url.contains("&code_challenge_method=S256&scope=openid&nonce="),
            "{url}"
        );
        let param = |name: &str| {
            url.split(['?', '&'])
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                .unwrap()
                .to_owned()
        };
        let started = login
            .take(&param("state"), Some("browser-1"), 1_001)
            .unwrap();
        assert_eq!(started.grant, "g-1");
        assert_eq!(started.nonce.expose(), param("nonce"));
        assert!(
            login
                .take(&param("state"), Some("browser-1"), 1_001)
                .is_none(),
            "once"
        );
        let other = login
            .start(
                "g-1",
                AddressKey::V4(1),
                "browser-1",
                "https://gnapd.example/cb",
                1_000,
            )
            .unwrap();
        let state = other
            .split(['?', '&'])
            .find_map(|kv| kv.strip_prefix("state="))
            .unwrap();
        assert!(
            login.take(state, Some("browser-2"), 1_001).is_none(),
            "another browser"
        );
        assert!(
            login.take(state, Some("browser-1"), 1_001).is_none(),
            "used up by the other browser's attempt"
        );

        assert!(login.allows("alice@example.com") && login.allows("root"));
        assert!(!login.allows("mallory@example.org") && !login.allows("root2"));
        let alice = login.signed_in("g-1", "alice@example.com", 1_000).unwrap();
        let mallory = login
            .signed_in("g-2", "mallory@example.org", 1_000)
            .unwrap();
        assert_eq!(
            login.subject("g-1", Some(&alice), 1_000).as_deref(),
            Some("alice@example.com")
        );
        assert_eq!(login.subject("g-1", None, 1_000), None, "another browser");
        assert_eq!(login.subject("g-1", Some(&mallory), 1_000), None);
        assert_eq!(
            login.subject("g-2", Some(&mallory), 1_000),
            None,
            "not allowed"
        );
        login.forget("g-1");
        assert_eq!(login.subject("g-1", Some(&alice), 1_000), None);

        assert_eq!(
            login.subject_of(400, b"{}", &started.nonce, 1_000),
            Err(LoginError::Exchange(400))
        );
        assert_eq!(
            login.subject_of(200, br#"{"access_token":"a"}"#, &started.nonce, 1_000),
            Err(LoginError::NoIdToken)
        );
    }

    #[test]
    fn login_config_needs_openid_and_usable_endpoints() {
        assert!(login("").is_ok());
        assert!(login("scopes = [\"profile\"]").is_err());
        assert!(login("subjects = [\"\"]").is_err());
        assert!(login("nope = 1").is_err());
    }

    #[test]
    fn a_full_signed_in_map_lets_its_oldest_go_not_everyone() {
        let login = login("").unwrap();
        let first = login
            .signed_in("g-first", "alice@example.com", 1_000)
            .unwrap();
        let second = login
            .signed_in("g-second", "bob@example.com", 1_000)
            .unwrap();
        for i in 0..MAX_SIGNED_IN - 1 {
            login
                .signed_in(&format!("g-{i}"), "carol@example.com", 1_000)
                .unwrap();
        }
        assert_eq!(
            login.subject("g-first", Some(&first), 1_000),
            None,
            "the oldest went"
        );
        assert_eq!(
            login.subject("g-second", Some(&second), 1_000).as_deref(),
            Some("bob@example.com")
        );
        // Signing in again for a grant replaces its entry, not another's.
        let again = login
            .signed_in("g-second", "bob@example.com", 1_000)
            .unwrap();
        assert_eq!(login.subject("g-second", Some(&second), 1_000), None);
        assert!(login.subject("g-second", Some(&again), 1_000).is_some());
        assert!(login.subject("g-0", None, 1_000).is_none());
        assert_eq!(
            login.signed_in_subject("g-0", 1_000).as_deref(),
            Some("carol@example.com")
        );
        let mut metrics = String::new();
        login.render_metrics(&mut metrics);
        for line in [
            format!("gnapd_login_signed_in {MAX_SIGNED_IN}"),
            "gnapd_login_signed_in_evicted_total 1".to_owned(),
        ] {
            assert!(
                metrics.lines().any(|l| l == line),
                "no `{line}` in {metrics}"
            );
        }
    }
}
