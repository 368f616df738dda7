//! Tokens for clients that act on their own or for a user an enterprise
//! vouches for, with no person at the AS: `client_credentials` (SEP-1046,
//! the rights decided by the allow rules over the client's key) and the
//! `jwt-bearer` grant of an identity assertion (SEP-990, decided by the
//! assertion rules). Either way the AS records an approved grant with one
//! access token and no refresh token: the client proves itself again for
//! the next one.

use super::issue::{DpopKey, Minting, TokenAnswer, dpop_binding};
use super::{CODE_LIFETIME, error};
use crate::authz::AuthServer;
use crate::authz::assertion::{AssertionError, UserDecision, decide};
use crate::authz::policy::patterns_cover;
use crate::proto::gnap::{
    AccessRight, AccessTokenRequest, AccessTokenRequests, Client, GrantRequest,
};
use crate::proto::oauth::client::ClientInfo;
use crate::proto::oauth::error::{ErrorCode, OAuthError};
use crate::proto::oauth::form::Params;
use crate::proto::oauth::{resource, scope};
use crate::store::{Continuation, GrantId, GrantRecord, GrantState, KeyBinding, RECORD_VERSION};

/// The `grant_type` of RFC 7523 §2.1.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// What a headless grant approved, ready to mint.
pub struct HeadlessGrant<'a> {
    /// The client the token is for.
    pub client_id: &'a str,
    /// Whom the grant record is bound to: the client's assertion key, or
    /// the client's own binding.
    pub key: KeyBinding,
    /// The upstream the rights are at (the token's audience).
    pub upstream: &'a str,
    /// The approved rights.
    pub rights: Vec<AccessRight>,
    /// `(upstream, set)` replacing the upstream's assigned set (an
    /// assertion rule's `credential_sets`).
    pub connected: Vec<(String, String)>,
}

impl AuthServer {
    /// Records an approved grant for `grant` and mints its one access token
    /// (bound to `dpop` when the request carried a proof), without a
    /// refresh token.
    pub fn oauth_issue_headless(
        &self,
        grant: HeadlessGrant<'_>,
        dpop: Option<&DpopKey>,
    ) -> Result<TokenAnswer, OAuthError> {
        if grant.rights.is_empty() {
            return Err(error(
                ErrorCode::InvalidScope,
                "nothing asked for is approved",
            ));
        }
        let now = self.now();
        let id = GrantId(
            crate::authz::mint::grant_id(self.random(), self.now())
                .map_err(super::no_randomness)?,
        );
        // Never handed out: the store's single-use operations (revocation of
        // the grant) name the grant by it.
        let (_, continuation) =
            crate::authz::mint::token(self.random(), &id).map_err(super::no_randomness)?;
        let audience = format!("{}/mcp/{}", self.config.public_url, grant.upstream);
        let sets = self.credential_sets.for_access(&grant.rights);
        let (mut token, mut answer) = self.mint_oauth(
            Minting {
                grant: &id,
                client_id: grant.client_id,
                audience: &audience,
                access: grant.rights.clone(),
                dpop: dpop.map(dpop_binding),
                credential_sets: sets,
            },
            now,
        )?;
        crate::authz::grant::map_credential_sets(
            std::slice::from_mut(&mut token),
            &grant.connected,
        );
        // The record keeps a management hash as every token does; its value
        // is dropped here, so nobody can refresh with it.
        answer.refresh_token = None;
        let record = GrantRecord {
            v: RECORD_VERSION,
            id: id.clone(),
            state: GrantState::Approved,
            client: grant.key,
            instance_id: None,
            request: GrantRequest {
                access_token: Some(AccessTokenRequests::Single(AccessTokenRequest {
                    access: grant.rights,
                    label: None,
                    flags: Vec::new(),
                })),
                subject: None,
                client: Client::Instance(grant.client_id.to_owned()),
                user: None,
                interact: None,
            },
            tokens: vec![token.0],
            continuation: Some(Continuation {
                token: continuation,
                wait: self.config.poll_wait,
                issued_at: now,
            }),
            created_at: now,
            // Nothing more can come of this grant than its token.
            expires_at: token.1.expires_at.max(now.saturating_add(CODE_LIFETIME)),
            oauth: None,
        };
        self.store
            .create_grant(&record, std::slice::from_ref(&token))
            .map_err(super::store_failed)?;
        self.metrics.issued(1);
        tracing::info!(grant = %id.0, client = %grant.client_id, upstream = %grant.upstream, "OAuth headless token issued");
        Ok(answer)
    }

    /// The `jwt-bearer` grant with an Identity Assertion JWT Authorization
    /// Grant (SEP-990; draft-ietf-oauth-identity-assertion-authz-grant
    /// §4.3): `client` is authenticated by the edge; the assertion must be
    /// an ID-JAG from a trusted issuer for this AS and this client, used
    /// once; its scope (or the request's, if it has none) and resource name
    /// the rights, which the `[[assertion_rule]]`s decide as they decide a
    /// GNAP request's user assertion.
    pub fn oauth_jwt_bearer(
        &self,
        params: &Params,
        client: &ClientInfo,
        dpop: Option<&DpopKey>,
        known: &dyn Fn(&str) -> bool,
        sole: Option<&str>,
    ) -> Result<TokenAnswer, OAuthError> {
        let assertion = params
            .get("assertion")
            .ok_or_else(|| error(ErrorCode::InvalidRequest, "assertion is required"))?;
        let jag = self
            .accept_id_jag(assertion, &client.client_id, self.now())
            .map_err(|e| match e {
                AssertionError::Full | AssertionError::Unavailable => error(
                    ErrorCode::TemporarilyUnavailable,
                    "too many assertions are remembered; retry later",
                ),
                e => error(ErrorCode::InvalidGrant, &e.to_string()),
            })?;
        let asked = jag.scope.as_deref().or(params.get("scope")).unwrap_or("");
        let rights =
            scope::to_access(asked).map_err(|e| error(ErrorCode::InvalidScope, &e.to_string()))?;
        let named = scope::upstreams(&rights);
        let sent = jag.resource.as_deref().or(params.get("resource"));
        let chosen = resource::choose(sent, &named, &self.config.public_url, known, sole)
            .map_err(|e| error(ErrorCode::InvalidTarget, &e.to_string()))?;
        let rights: Vec<AccessRight> = if rights.is_empty() {
            vec![AccessRight::Reference(scope::whole_upstream(
                &chosen.upstream,
            ))]
        } else {
            rights
                .into_iter()
                .filter(|r| scope::upstreams(std::slice::from_ref(r)) == [chosen.upstream.clone()])
                .collect()
        };
        let requested: [&[AccessRight]; 1] = [&rights];
        let (approved, sets) = match decide(
            &self.policy.assertion_rules,
            &jag.user,
            &requested,
            patterns_cover,
        ) {
            UserDecision::Approve(mut approved, sets) => (approved.pop().unwrap_or_default(), sets),
            UserDecision::Deny => {
                return Err(error(
                    ErrorCode::InvalidGrant,
                    "a rule denies this user this access",
                ));
            }
            UserDecision::Undecided => {
                return Err(error(
                    ErrorCode::InvalidGrant,
                    "no rule approves this user for this access",
                ));
            }
        };
        tracing::info!(client = %client.client_id, subject = %jag.user.subject, upstream = %chosen.upstream, "identity assertion grant approved");
        self.oauth_issue_headless(
            HeadlessGrant {
                client_id: &client.client_id,
                key: super::client_binding(&client.client_id),
                upstream: &chosen.upstream,
                rights: approved,
                connected: sets.into_iter().collect(),
            },
            dpop,
        )
    }
}
