//! The authorization endpoint (RFC 6749 §4.1.1, OAuth 2.1 §4.1.1): an
//! authorization request becomes a grant, decided by the same policy and
//! consent as a GNAP request.
//!
//! Order matters (§4.1.2.1): until the client is known and the redirect
//! URI is one of its registered ones, an error is shown to the person and
//! never redirected (an open redirector otherwise); after that, every
//! error goes back to the client with `state` and `iss` (RFC 9207 §2).

use super::{CODE_LIFETIME, MAX_STATE, client_binding, error};
use crate::authz::interaction::PENDING_GRACE;
use crate::authz::metrics::Outcome;
use crate::authz::{AuthServer, Decision, FinishAction, mint};
use crate::proto::gnap::interact::{HashMethod, InteractRequest, StartMode};
use crate::proto::gnap::{
    AccessRight, AccessTokenRequest, AccessTokenRequests, Client, GrantRequest,
};
use crate::proto::oauth::client::ClientInfo;
use crate::proto::oauth::error::{ErrorCode, OAuthError};
use crate::proto::oauth::form::Params;
use crate::proto::oauth::resource::{self, ResourceError};
use crate::proto::oauth::{pkce, redirect, scope};
use crate::store::{
    Continuation, FinishKind, GrantId, GrantRecord, GrantState, InteractionFinish,
    InteractionRecord, InteractionStatus, OAuthAuthorization, RECORD_VERSION, TokenHash,
};

/// What the browser gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorized {
    /// Sent on: to the client's redirect URI (with a code or an error), or
    /// to the consent page.
    Redirect(String),
    /// Shown, never redirected: the client or its redirect URI is not
    /// trusted (§4.1.2.1).
    Refused(OAuthError),
}

/// A checked request, before policy.
struct Checked {
    redirect_uri: String,
    state: Option<String>,
    code_challenge: String,
    rights: Vec<AccessRight>,
    resource: String,
    dpop_jkt: Option<String>,
}

impl AuthServer {
    /// An authorization request with `params` (query or form) from
    /// `client` (resolved by the edge from `client_id`; `None`: nobody
    /// knows it), from `source`. `known` says which upstream names exist;
    /// `sole` is the only upstream when there is exactly one.
    pub fn oauth_authorize(
        &self,
        params: &Params,
        client: Option<&ClientInfo>,
        known: &dyn Fn(&str) -> bool,
        sole: Option<&str>,
        source: Option<&str>,
    ) -> Authorized {
        let Some(client) = client else {
            return Authorized::Refused(error(
                ErrorCode::InvalidRequest,
                if params.get("client_id").is_some() {
                    "unknown client_id"
                } else {
                    "client_id is required"
                },
            ));
        };
        // RFC 9207 requires `iss`; this server's `redirect_uri` is
        // required too (a choice: OAuth 2.1 lets a client with one
        // registered URI omit it, every MCP client sends it, and the token
        // request must then repeat it).
        let Some(redirect_uri) = params.get("redirect_uri") else {
            return Authorized::Refused(error(
                ErrorCode::InvalidRequest,
                "redirect_uri is required",
            ));
        };
        if redirect::check(redirect_uri).is_err()
            || redirect::find(&client.redirect_uris, redirect_uri).is_none()
        {
            return Authorized::Refused(error(
                ErrorCode::InvalidRequest,
                "redirect_uri is not registered for this client",
            ));
        }
        let state = params.get("state");
        let back = |e: OAuthError| {
            Authorized::Redirect(error_redirect(
                redirect_uri,
                &e,
                state,
                &self.config.public_url,
            ))
        };
        let checked = match check(params, redirect_uri, &self.config.public_url, known, sole) {
            Ok(checked) => checked,
            Err(e) => return back(e),
        };
        match self.decide_authorization(client, checked, source) {
            Ok(url) => Authorized::Redirect(url),
            Err(e) => back(e),
        }
    }

    /// Policy decides; the grant and its interaction are stored. Returns
    /// where the browser goes.
    fn decide_authorization(
        &self,
        client: &ClientInfo,
        checked: Checked,
        source: Option<&str>,
    ) -> Result<String, OAuthError> {
        let now = self.now();
        let binding = client_binding(&client.client_id);
        let request = GrantRequest {
            access_token: Some(AccessTokenRequests::Single(AccessTokenRequest {
                access: checked.rights,
                label: None,
                flags: Vec::new(),
            })),
            subject: None,
            client: Client::Instance(client.client_id.clone()),
            user: None,
            interact: Some(InteractRequest {
                start: vec![StartMode::Redirect],
                finish: None,
                hints: None,
            }),
        };
        let decision = self.policy.decide(&request, &binding.thumbprint, None);
        let approved = match decision {
            Decision::Deny => {
                self.metrics.grant(Outcome::Denied);
                return Err(error(
                    ErrorCode::AccessDenied,
                    "policy does not allow this request",
                ));
            }
            Decision::Approve(approved) => Some(approved),
            Decision::Interact => None,
        };
        let id = GrantId(mint::grant_id(self.random(), self.now()).map_err(super::no_randomness)?);
        // The continuation is never handed out: it is what the store's
        // single-use operations name the grant by.
        let (_, continuation) = mint::token(self.random(), &id).map_err(super::no_randomness)?;
        let page_secret = match approved {
            None => Some(crate::random::text_from(self.random()).map_err(super::no_randomness)?),
            Some(_) => None,
        };
        let interaction_expires = now.saturating_add(self.config.interaction_lifetime);
        let grant = GrantRecord {
            v: RECORD_VERSION,
            id: id.clone(),
            state: GrantState::Pending,
            client: binding.clone(),
            instance_id: None,
            request,
            tokens: Vec::new(),
            continuation: Some(Continuation {
                token: continuation,
                wait: self.config.poll_wait,
                issued_at: now,
            }),
            created_at: now,
            expires_at: interaction_expires.saturating_add(PENDING_GRACE),
            oauth: Some(OAuthAuthorization {
                client_id: client.client_id.clone(),
                redirect_uri: checked.redirect_uri.clone(),
                code_challenge: checked.code_challenge,
                resource: checked.resource,
                state: checked.state,
                dpop_jkt: checked.dpop_jkt,
                client_name: client.client_name.clone(),
                client_source: Some(client.source.clone()),
                redeemed: None,
            }),
        };
        let interaction = InteractionRecord {
            v: RECORD_VERSION,
            grant: id.clone(),
            user_code: None,
            finish: Some(InteractionFinish {
                method: FinishKind::OAuthCode,
                uri: checked.redirect_uri,
                client_nonce: String::new(),
                as_nonce: String::new(),
                hash_method: HashMethod::Sha256,
            }),
            page: page_secret.as_deref().map(TokenHash::of),
            created_at: now,
            // Approved at once, the code's lifetime bounds the interaction.
            expires_at: match approved {
                Some(_) => now.saturating_add(CODE_LIFETIME),
                None => interaction_expires,
            },
            status: InteractionStatus::Pending,
        };
        // Pending slots count per client and address: a public client's id
        // is no secret, so one address cannot take another's slots.
        let slot_key = format!("{}@{}", binding.thumbprint, source.unwrap_or("-"));
        self.hold_pending(&id, &slot_key, source, grant.expires_at)
            .map_err(|_| {
                error(
                    ErrorCode::TemporarilyUnavailable,
                    "too many requests wait for a person; try again later",
                )
            })?;
        if let Err(e) = self
            .store
            .create_interaction_grant(&grant, &interaction, None)
        {
            self.release_pending(&id);
            return Err(super::store_failed(e));
        }
        match approved {
            None => {
                self.metrics.grant(Outcome::Pending);
                tracing::info!(grant = %id.0, client = %client.client_id, "OAuth authorization waits for a person");
                let secret = page_secret.unwrap_or_default();
                Ok(self.config.interaction_uri(&id.0, &secret))
            }
            Some(approved) => {
                let decided = self
                    .record_decision(
                        &interaction,
                        &grant,
                        Some(approved),
                        Vec::new(),
                        None,
                        source.unwrap_or("-"),
                        now,
                    )
                    .map_err(|e| {
                        tracing::error!(error = %e, "recording an OAuth approval failed");
                        error(ErrorCode::ServerError, "the server could not complete this")
                    })?;
                self.metrics.grant(Outcome::Approved);
                match decided.finish {
                    FinishAction::Redirect { url } => Ok(url),
                    _ => Err(error(
                        ErrorCode::ServerError,
                        "the server could not complete this",
                    )),
                }
            }
        }
    }
}

/// Everything of the request but the client and its redirect URI.
fn check(
    params: &Params,
    redirect_uri: &str,
    public_url: &str,
    known: &dyn Fn(&str) -> bool,
    sole: Option<&str>,
) -> Result<Checked, OAuthError> {
    match params.get("response_type") {
        Some("code") => {}
        Some(_) => {
            return Err(error(
                ErrorCode::UnsupportedResponseType,
                "response_type must be code",
            ));
        }
        None => {
            return Err(error(
                ErrorCode::InvalidRequest,
                "response_type is required",
            ));
        }
    }
    let state = params.get("state");
    if state.is_some_and(|s| s.len() > MAX_STATE) {
        return Err(error(ErrorCode::InvalidRequest, "state is too long"));
    }
    // OAuth 2.1 §4.1.1: PKCE is required; `plain` is refused here
    // (RFC 7636 §4.2 lets a server that supports S256 do so), and so is a
    // missing method, which would mean `plain`.
    let Some(code_challenge) = params.get("code_challenge") else {
        return Err(error(
            ErrorCode::InvalidRequest,
            "code_challenge is required (PKCE, S256)",
        ));
    };
    if params.get("code_challenge_method") != Some(pkce::S256) {
        return Err(error(
            ErrorCode::InvalidRequest,
            "code_challenge_method must be S256",
        ));
    }
    if !pkce::is_s256_challenge(code_challenge) {
        return Err(error(
            ErrorCode::InvalidRequest,
            "code_challenge is not an S256 challenge (43 base64url characters)",
        ));
    }
    let mut rights = scope::to_access(params.get("scope").unwrap_or_default())
        .map_err(|e| error(ErrorCode::InvalidScope, &e.to_string()))?;
    let chosen = resource::choose(
        params.get("resource"),
        &scope::upstreams(&rights),
        public_url,
        known,
        sole,
    )
    .map_err(|e| match e {
        ResourceError::InvalidTarget(why) => error(ErrorCode::InvalidTarget, why),
        ResourceError::ScopeElsewhere => error(ErrorCode::InvalidScope, &e.to_string()),
    })?;
    // A token has one audience: rights at other upstreams are not asked
    // of this resource (clients ask for every scope the metadata lists).
    rights.retain(|r| scope::upstreams(std::slice::from_ref(r)) == [chosen.upstream.clone()]);
    if rights.is_empty() {
        // No scope: the default access of the resource, the whole
        // upstream, which policy (or the person) then narrows.
        rights = scope::to_access(&scope::whole_upstream(&chosen.upstream))
            .map_err(|e| error(ErrorCode::InvalidScope, &e.to_string()))?;
    }
    let dpop_jkt = match params.get("dpop_jkt") {
        Some(jkt) if pkce::is_s256_challenge(jkt) => Some(jkt.to_owned()),
        Some(_) => {
            return Err(error(
                ErrorCode::InvalidRequest,
                "dpop_jkt is not a JWK SHA-256 thumbprint",
            ));
        }
        None => None,
    };
    Ok(Checked {
        redirect_uri: redirect_uri.to_owned(),
        state: state.map(str::to_owned),
        code_challenge: code_challenge.to_owned(),
        rights,
        resource: chosen.uri,
        dpop_jkt,
    })
}

/// §4.1.2.1 with RFC 9207's `iss`: the error, back at the client.
fn error_redirect(redirect_uri: &str, e: &OAuthError, state: Option<&str>, issuer: &str) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("error", e.code.as_str());
    query.append_pair("error_description", &e.description);
    if let Some(state) = state {
        query.append_pair("state", state);
    }
    query.append_pair("iss", issuer);
    let separator = if redirect_uri.contains('?') { '&' } else { '?' };
    format!("{redirect_uri}{separator}{}", query.finish())
}
