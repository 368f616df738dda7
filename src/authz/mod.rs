//! The GNAP authorization server (RFC 9635), sans I/O.
//!
//! [`AuthServer::handle`] takes a framework-free request and returns a
//! framework-free [`Reply`]; the HTTP edge only routes and translates. Every
//! endpoint checks the RFC 9421 signature under the GNAP profile before it
//! looks at anything the body asks for, and every outcome leaves through the
//! single mapping in [`reply`].

use std::sync::Arc;

use crate::clock::Clock;
use crate::proto::gnap::{Client, ErrorCode, GrantRequest, Proof, ProofKind};
use crate::proto::httpsig::nonce::NonceStoreError;
use crate::proto::httpsig::{GnapProfile, HttpRequest, Rejection, VerifiedRequest};
use crate::proto::jwk::VerifyingKey;
use crate::store::{KeyBinding, ReplayBudget, Store, TokenHash};
use proof::Prover;

pub mod assertion;
pub(crate) mod assign;
mod batched_grant;
pub(crate) mod consent;
pub(crate) mod continuation;
pub(crate) mod decider;
pub(crate) mod decision;
mod echo;
pub(crate) mod grant;
mod guards;
pub(crate) mod interaction;
pub(crate) mod introspect;
pub(crate) mod limits;
pub mod login;
pub mod manage;
pub mod metrics;
pub mod mint;
pub mod oauth;
pub mod oauth_clients;
pub mod operator;
pub mod pending;
pub mod person;
pub mod policy;
mod proof;
pub mod reply;
pub mod resources;
mod shared_attempts;
pub mod started_by;
mod tables;
pub mod usercode;

pub(crate) use batched_grant::GrantStep;

pub use assign::Assignments;
pub use consent::{
    ConnectView, ConsentView, EarlierChoice, PageDecision, PageError, RightView, Selection,
    ToolView,
};
pub use decider::{Authority, Decider, Presented};
pub use interaction::{DecideError, Decided, FinishAction, PendingGrant};
pub use metrics::Metrics;
pub use policy::{AllowRule, Decision, Policy, RsRule};
pub use reply::{Failure, Reply};
pub(crate) use started_by::FinishDelivery;

/// Path of the grant endpoint below the public URL.
pub(crate) const GRANT_PATH: &str = "/gnap";
/// Path prefix of continuation URIs.
pub(crate) const CONTINUE_PATH: &str = "/gnap/continue/";
/// Path prefix of token management URIs.
pub(crate) const TOKEN_PATH: &str = "/gnap/token/";
/// Path of the token introspection endpoint (RFC 9767 §3.3).
pub(crate) const INTROSPECT_PATH: &str = "/gnap/introspect";
/// Path of the resource set registration endpoint (RFC 9767 §3.4).
pub(crate) const RESOURCE_PATH: &str = "/gnap/resource";
/// Path prefix of interaction pages (the `redirect` start mode, §3.3.1):
/// `{INTERACT_PATH}{grant}/{secret}` to see one, `{INTERACT_PATH}{grant}`
/// to post a decision.
pub(crate) const INTERACT_PATH: &str = "/gnap/interact/";
/// Path of the user code page (the `user_code_uri` start mode, §3.3.4).
pub(crate) const DEVICE_PATH: &str = "/gnap/device";

/// Settings of the authorization server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsConfig {
    /// The public base URL (scheme and authority, no trailing slash). Target
    /// URIs for signatures and every URI the AS hands out are built from it.
    pub public_url: String,
    /// Access token lifetime (seconds).
    pub token_lifetime: i64,
    /// How long a grant and its continuation live (seconds).
    pub grant_lifetime: i64,
    /// The `wait` for polling a pending grant (seconds; §3.1 default 5).
    pub poll_wait: u64,
    /// Signature window settings.
    pub profile: GnapProfile,
    /// How long an interaction's start modes work (seconds; the user
    /// code's lifetime, §3.3.3 "SHOULD be short lived, such as several
    /// minutes").
    pub interaction_lifetime: i64,
    /// Push finish messages (§4.2.2) may go to private, loopback and
    /// link-local addresses. Off by default (SSRF, §11.34); for tests and
    /// local development.
    pub allow_private_push: bool,
    /// Failed user code entries allowed to all network sources together
    /// per 10 minutes (`usercode::DEFAULT_FAILURE_BUDGET`).
    pub user_code_failure_budget: u32,
    /// Rate limits and caps on what unapproved clients make the AS do and
    /// hold (`limits`).
    pub limits: limits::Limits,
    /// Lifetime of OAuth access tokens (seconds): short, since a refresh
    /// token renews them (`oauth`).
    pub oauth_token_lifetime: i64,
    /// The TLS listener asks for client certificates, so `mtls` keys
    /// (RFC 9635 §7.3.2) can be proved, and discovery lists them.
    pub mtls: bool,
}

impl AsConfig {
    /// Defaults for `public_url`: one-hour tokens, 30-day grants, 5 s polls,
    /// 10-minute interactions.
    pub fn new(public_url: &str) -> Self {
        Self {
            public_url: public_url.trim_end_matches('/').to_owned(),
            token_lifetime: 3600,
            grant_lifetime: 30 * 24 * 3600,
            poll_wait: 5,
            profile: GnapProfile::default(),
            interaction_lifetime: 600,
            allow_private_push: false,
            user_code_failure_budget: usercode::DEFAULT_FAILURE_BUDGET,
            limits: limits::Limits::default(),
            oauth_token_lifetime: 900,
            mtls: false,
        }
    }

    /// The grant endpoint URI: the AS's identifier.
    pub fn grant_endpoint(&self) -> String {
        format!("{}{GRANT_PATH}", self.public_url)
    }

    /// The token introspection endpoint (RFC 9767 §3.3).
    pub(crate) fn introspection_endpoint(&self) -> String {
        format!("{}{INTROSPECT_PATH}", self.public_url)
    }

    /// The resource set registration endpoint (RFC 9767 §3.4).
    pub(crate) fn resource_registration_endpoint(&self) -> String {
        format!("{}{RESOURCE_PATH}", self.public_url)
    }

    pub(crate) fn continue_uri(&self, grant: &str) -> String {
        format!("{}{CONTINUE_PATH}{grant}", self.public_url)
    }

    /// The interaction page of `grant`, opened by `secret`.
    pub(crate) fn interaction_uri(&self, grant: &str, secret: &str) -> String {
        format!("{}{INTERACT_PATH}{grant}/{secret}", self.public_url)
    }

    /// The user code page (§3.3.4: short, stable, without the code).
    pub(crate) fn device_uri(&self) -> String {
        format!("{}{DEVICE_PATH}", self.public_url)
    }

    fn manage_uri(&self, grant: &str) -> String {
        format!("{}{TOKEN_PATH}{grant}", self.public_url)
    }
}

/// Which endpoint a request arrived at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// The grant endpoint (§2; OPTIONS: §9).
    Grant,
    /// A grant's continuation URI (§5), by grant id.
    Continue(String),
    /// A token management URI (§6), by grant id.
    Manage(String),
    /// Token introspection, for resource servers (RFC 9767 §3.3).
    Introspect,
    /// Resource set registration, for resource servers (RFC 9767 §3.4).
    RegisterResource,
}

impl Endpoint {
    /// Who calls this endpoint: the errors it answers with come from that
    /// party's registry (RFC 9635 §3.6 or RFC 9767 §3.5).
    pub(crate) fn audience(&self) -> reply::Audience {
        match self {
            Self::Introspect | Self::RegisterResource => reply::Audience::ResourceServer,
            Self::Grant | Self::Continue(_) | Self::Manage(_) => reply::Audience::Client,
        }
    }
}

/// The authorization server.
pub struct AuthServer {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    policy: Policy,
    config: AsConfig,
    metrics: Arc<Metrics>,
    /// The enterprise-held credential set policy assigns at each upstream:
    /// upstream name → credential set id.
    credential_sets: Assignments,
    /// Interaction state kept in memory (attempt counters, user codes to
    /// show the admin).
    live: std::sync::Mutex<interaction::Live>,
    /// The key that makes the pages' form tokens (`consent`): given
    /// (derived from the master key every node shares), or drawn at first
    /// use, when a restart invalidates forms already shown.
    page_key: std::sync::OnceLock<[u8; 32]>,
    /// ID token assertions accepted so far: each is accepted once.
    used_assertions: std::sync::Mutex<assertion::UsedAssertions>,
    /// Who can sign in to decide on the pages (`decider`).
    deciders: Deciders,
    /// Rate limits and pending grant slots (`guards`).
    guards: guards::Guards,
    /// Where token values, identifiers, codes and keys come from.
    randomness: Arc<dyn crate::random::Randomness>,
    /// The OAuth clients known without I/O (`[[oauth_client]]`).
    oauth_clients: Arc<dyn oauth::ClientDirectory>,
    /// The entries nodes share, sealed (the browser that started each
    /// interaction), when they share the store and a master key.
    shared: Option<crate::upstream::sealed_handoffs::SealedHandoffs>,
}

/// The ways a person signs in to decide on the pages.
#[derive(Debug, Default, Clone)]
pub struct Deciders {
    /// The configured OIDC login (`[login]`).
    pub login: Option<Arc<login::Login>>,
    /// The operator's one-time-link sign-in.
    pub operator: Option<Arc<operator::Operator>>,
}

impl AuthServer {
    /// An AS over `store`, deciding with `policy`.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        policy: Policy,
        config: AsConfig,
    ) -> Self {
        let started = clock.now();
        let server = Self {
            used_assertions: std::sync::Mutex::new(assertion::UsedAssertions::new(
                started,
                assertion::MAX_USED_ASSERTIONS,
            )),
            store,
            clock,
            policy,
            metrics: Arc::new(Metrics::default()),
            credential_sets: Assignments::default(),
            live: std::sync::Mutex::default(),
            page_key: std::sync::OnceLock::new(),
            deciders: Deciders::default(),
            guards: guards::Guards::new(&config.limits),
            randomness: Arc::new(crate::random::OsRandom),
            oauth_clients: Arc::new(oauth::ConfiguredClients::default()),
            shared: None,
            config,
        };
        // Grants already waiting hold their slots across a restart.
        server.restore_pending();
        server
    }

    /// Who can sign in to decide on the pages.
    pub fn with_deciders(mut self, deciders: Deciders) -> Self {
        self.deciders = deciders;
        self
    }

    /// The same AS drawing every token value, identifier, user code and
    /// form key from `source` instead of the operating system.
    pub fn with_randomness(mut self, source: Arc<dyn crate::random::Randomness>) -> Self {
        self.randomness = source;
        self
    }

    /// The same AS making the pages' form tokens under `key`, which every
    /// node of a deployment is given (derived from the master key), so a
    /// page rendered by one node is decided by a POST to another.
    pub fn with_page_key(self, key: &[u8; 32]) -> Self {
        // A fresh server has not drawn one yet, so this always takes.
        let _ = self.page_key.set(*key);
        self
    }

    /// The same AS keeping the browser that started each interaction in
    /// `shared`, so a finish decided on one node waits there for the
    /// starting browser whichever node it comes back to
    /// (`crate::authz::started_by`).
    pub fn with_shared_entries(
        mut self,
        shared: crate::upstream::sealed_handoffs::SealedHandoffs,
    ) -> Self {
        self.shared = Some(shared);
        self
    }

    /// The OAuth clients known without I/O (`oauth::ClientDirectory`).
    pub fn with_oauth_clients(mut self, clients: Arc<dyn oauth::ClientDirectory>) -> Self {
        self.oauth_clients = clients;
        self
    }

    /// The OAuth client `client_id`, if known without I/O.
    pub fn oauth_client(&self, client_id: &str) -> Option<crate::proto::oauth::client::ClientInfo> {
        self.oauth_clients.client(client_id)
    }

    /// Who can sign in to decide on the pages.
    pub(crate) fn deciders(&self) -> &Deciders {
        &self.deciders
    }

    /// Assigns credential sets by upstream (name → set id): every token
    /// approved for an upstream's `mcp` rights is mapped to its set.
    pub(crate) fn with_credential_sets(mut self, sets: Assignments) -> Self {
        self.credential_sets = sets;
        self
    }

    /// The metrics this AS counts into.
    pub(crate) fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The settings.
    pub fn config(&self) -> &AsConfig {
        &self.config
    }

    /// Handles one request. `request.target_uri` must already be the public
    /// URI of the request (built from the configured public URL).
    pub fn handle(&self, endpoint: &Endpoint, request: &HttpRequest) -> Reply {
        self.handle_from(endpoint, request, None)
    }

    /// The per-address rate limit of `endpoint` for a `method` request from
    /// `source` (the client's address as the HTTP edge saw it): the edge
    /// asks before it reads the body, so a refused request costs no read.
    pub(crate) fn admit(
        &self,
        endpoint: &Endpoint,
        method: &str,
        source: &str,
    ) -> Result<(), Reply> {
        self.admit_address(endpoint, method, source)
            .map_err(|failure| self.failure_reply(endpoint, failure))
    }

    /// [`Self::handle`] for a request from `source`, the client's address as
    /// the HTTP edge saw it (`None` in process), after [`Self::admit`]: the
    /// per-address caps on pending grants count by it.
    pub(crate) fn handle_from(
        &self,
        endpoint: &Endpoint,
        request: &HttpRequest,
        source: Option<&str>,
    ) -> Reply {
        self.dispatch(endpoint, request, source)
            .unwrap_or_else(|failure| self.failure_reply(endpoint, failure))
    }

    /// The answer to a request `endpoint` refused with `failure`, counted.
    fn failure_reply(&self, endpoint: &Endpoint, failure: Failure) -> Reply {
        match &failure {
            Failure::Signature(r) | Failure::RsSignature(r) | Failure::RotationSignature(r) => {
                self.metrics.signature_failure(r.reason());
            }
            Failure::Store(e) => tracing::error!(error = %e, "storage failure"),
            // Counted, not logged: a full cache would log every request.
            Failure::Busy => self.metrics.signature_failure("replay_cache"),
            _ => {}
        }
        let failure = match (endpoint, failure) {
            // §3.6 `too_fast`: the client was given a `wait` here.
            (Endpoint::Continue(_), Failure::Limited { retry_after }) => {
                Failure::TooFast { retry_after }
            }
            (_, failure) => failure,
        };
        failure.into_reply(&self.config.grant_endpoint(), endpoint.audience())
    }

    fn dispatch(
        &self,
        endpoint: &Endpoint,
        request: &HttpRequest,
        source: Option<&str>,
    ) -> Result<Reply, Failure> {
        match (endpoint, request.method.as_str()) {
            (Endpoint::Grant, "POST") => self.grant_request(request, source),
            (Endpoint::Grant, "OPTIONS") => Ok(self.discovery()),
            (Endpoint::Grant, _) => Err(Failure::MethodNotAllowed("POST, OPTIONS")),
            (Endpoint::Continue(id), "POST") => self.continue_grant(id, request),
            (Endpoint::Continue(id), "PATCH") => self.modify_grant(id, request),
            (Endpoint::Continue(id), "DELETE") => self.delete_grant(id, request),
            (Endpoint::Continue(_), _) => Err(Failure::MethodNotAllowed("POST, PATCH, DELETE")),
            (Endpoint::Manage(id), "POST") => self.rotate_token(id, request),
            (Endpoint::Manage(id), "DELETE") => self.revoke_token(id, request),
            (Endpoint::Manage(_), _) => Err(Failure::MethodNotAllowed("POST, DELETE")),
            (Endpoint::Introspect, "POST") => self.introspect(request),
            (Endpoint::RegisterResource, "POST") => self.register_resource_set(request),
            (Endpoint::Introspect | Endpoint::RegisterResource, _) => {
                Err(Failure::MethodNotAllowed("POST"))
            }
        }
    }

    fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The source of every random value the AS makes.
    fn random(&self) -> &dyn crate::random::Randomness {
        &*self.randomness
    }

    /// Checks the request's signature with `key` under the GNAP profile,
    /// remembering it in the replay `budget` (`store::replay`).
    fn verify(
        &self,
        request: &HttpRequest,
        key: &VerifyingKey,
        budget: ReplayBudget,
    ) -> Result<VerifiedRequest, Failure> {
        self.config
            .profile
            .verify(request, key, self.now(), self.store.replay(budget))
            .map_err(|r| self.replay_refusal(r, budget))
    }

    /// Counts a refusal by a replay budget (a full budget, a key over its
    /// quota) and turns the rejection into its failure.
    fn replay_refusal(&self, rejection: Rejection, budget: ReplayBudget) -> Failure {
        match &rejection {
            Rejection::ReplayCache(NonceStoreError::KeyQuota) => {
                self.metrics.limited("replay_key_quota");
            }
            Rejection::ReplayCache(_) => self.metrics.limited(match budget {
                ReplayBudget::Unapproved => "replay_unapproved",
                ReplayBudget::Bound => "replay_bound",
            }),
            _ => {}
        }
        Failure::from(rejection)
    }

    /// The key a grant request is signed with: presented by value, or the
    /// key of a known instance identifier (§2.3.1).
    fn client_key(
        &self,
        request: &GrantRequest,
    ) -> Result<(Prover, ProofKind, Option<String>), Failure> {
        match &request.client {
            Client::Key(client) if client.key.proof == Proof::Mtls => {
                let Some(cert) = &client.key.cert else {
                    return Err(Failure::gnap(
                        ErrorCode::InvalidClient,
                        "an mtls key is a certificate",
                    ));
                };
                Ok((Prover::Cert(cert.thumbprint()), ProofKind::Mtls, None))
            }
            Client::Key(client) => {
                let key =
                    VerifyingKey::from_presented_jwk(&client.key.jwk_value()).map_err(|e| {
                        Failure::gnap(
                            ErrorCode::InvalidClient,
                            &format!("the presented key is not usable: {e}"),
                        )
                    })?;
                if client
                    .key
                    .proof
                    .algorithm()
                    .is_some_and(|alg| alg != key.algorithm())
                {
                    return Err(Failure::gnap(
                        ErrorCode::InvalidClient,
                        "the proof algorithm does not match the key",
                    ));
                }
                Ok((
                    Prover::Key(std::sync::Arc::new(key)),
                    client.key.proof.kind(),
                    None,
                ))
            }
            Client::Instance(id) => {
                let instance = self.store.instance(id)?.ok_or_else(|| {
                    Failure::gnap(ErrorCode::InvalidClient, "unknown instance identifier")
                })?;
                Ok((
                    Prover::of(&instance.key)?,
                    instance.key.method,
                    Some(id.clone()),
                ))
            }
        }
    }
}

/// Grant ids are UUIDs; anything else cannot name a grant.
pub(crate) fn is_grant_id(text: &str) -> bool {
    !text.is_empty() && text.len() <= 64 && text.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

/// Rebuilds the verifying key of a stored binding.
fn bound_key(binding: &KeyBinding) -> Result<VerifyingKey, Failure> {
    VerifyingKey::from_presented_jwk(&binding.jwk).map_err(|_| {
        Failure::gnap(
            ErrorCode::InvalidClient,
            "the bound key is no longer usable",
        )
    })
}

/// The token in `Authorization: GNAP <token>` (§7.2), hashed.
fn presented_token(request: &HttpRequest, missing: ErrorCode) -> Result<TokenHash, Failure> {
    crate::proto::gnap::token::presented(request)
        .map(TokenHash::of)
        .ok_or_else(|| {
            Failure::gnap(
                missing,
                "exactly one Authorization: GNAP <token> is required",
            )
        })
}
