//! Recording a person's decision on a pending interaction: found by user
//! code or grant id (attempts counted), approved or denied, and the finish
//! message of §4.2 made for the caller to deliver.

use super::{DecideError, Decided, FinishAction, Lookup, requested_per_token};
use crate::authz::AuthServer;
use crate::authz::shared_attempts::StoreTally;
use crate::authz::usercode::{UserCode, grant_entered, source_allowed, source_failed};
use crate::proto::gnap::AccessRight;
use crate::proto::gnap::interact::interaction_hash;
use crate::store::{
    FinishKind, GrantId, GrantRecord, InteractionFinish, InteractionRecord, InteractionStatus,
    StoreError, TokenHash,
};

impl AuthServer {
    /// A person's decision on the pending grant named by `selector` (its
    /// user code, in any case and with or without separators, or its grant
    /// id), from `source` (an address, or `admin`). Approval grants the
    /// access requested. The caller carries out the returned finish action.
    pub fn decide_grant(
        &self,
        selector: &str,
        approve: bool,
        source: &str,
    ) -> Result<Decided, DecideError> {
        let now = self.now();
        let interaction = self.find_pending(selector, source, now, Lookup::CodeOrGrantId)?;
        if now > interaction.expires_at {
            return Err(DecideError::Expired);
        }
        let grant = self
            .store
            .grant(&interaction.grant)?
            .ok_or(DecideError::NotFound)?;
        let access = approve.then(|| requested_per_token(&grant.request));
        let decided =
            self.record_decision(&interaction, &grant, access, Vec::new(), None, source, now)?;
        if let FinishAction::Redirect { url } = &decided.finish {
            // Made on the server, not in a browser: the browser that
            // started the interaction collects it by opening its link.
            self.deliver_finish(&decided.grant, None, url.clone());
        }
        Ok(decided)
    }

    /// Records a decision on a pending interaction: approval of `access`
    /// (per requested token), with the credential sets the person
    /// `connected` (`(upstream, set id)`), or denial when `access` is
    /// `None`. Returns the finish action for the caller to carry out.
    #[allow(clippy::too_many_arguments)] // each is one fact of the decision
    pub(crate) fn record_decision(
        &self,
        interaction: &InteractionRecord,
        grant: &GrantRecord,
        access: Option<Vec<Vec<AccessRight>>>,
        connected: Vec<(String, String)>,
        by: Option<&str>,
        source: &str,
        now: i64,
    ) -> Result<Decided, DecideError> {
        let approve = access.is_some();
        let interact_ref = match &interaction.finish {
            Some(_) => Some(
                crate::random::text_from(self.random()).map_err(|_| DecideError::NoRandomness)?,
            ),
            None => None,
        };
        let ref_hash = interact_ref.as_deref().map(TokenHash::of);
        let status = match access {
            Some(access) => InteractionStatus::Approved {
                access,
                interact_ref: ref_hash,
                decided_at: now,
                credential_sets: connected,
                by: by.map(str::to_owned),
            },
            None => InteractionStatus::Denied {
                interact_ref: ref_hash,
                decided_at: now,
                by: by.map(str::to_owned),
            },
        };
        if !self.store.decide_interaction(&grant.id, &status)? {
            return Err(DecideError::AlreadyDecided);
        }
        if let Ok(mut live) = self.live.lock() {
            live.codes.remove(&grant.id);
        }
        if approve {
            // Approved by a person: no longer state an unapproved request
            // holds. A denied grant keeps its slot until it is swept.
            self.release_pending(&grant.id);
        }
        tracing::info!(grant = %grant.id.0, approve, by = by.unwrap_or("-"), source, "interaction decided");
        let finish = match (&interaction.finish, interact_ref) {
            (Some(finish), Some(interact_ref)) => {
                self.finish_action(grant, finish, &interact_ref, approve)
            }
            _ => FinishAction::None,
        };
        Ok(Decided {
            grant: grant.id.clone(),
            approved: approve,
            finish,
        })
    }

    /// §4.2: the finish method's message, with the §4.2.3 hash.
    fn finish_action(
        &self,
        grant: &GrantRecord,
        finish: &InteractionFinish,
        interact_ref: &str,
        approved: bool,
    ) -> FinishAction {
        if finish.method == FinishKind::OAuthCode {
            return FinishAction::Redirect {
                url: oauth_redirect(
                    &self.config.public_url,
                    grant,
                    &finish.uri,
                    interact_ref,
                    approved,
                ),
            };
        }
        let hash = interaction_hash(
            finish.hash_method,
            &finish.client_nonce,
            &finish.as_nonce,
            interact_ref,
            &self.config.grant_endpoint(),
        );
        match finish.method {
            FinishKind::Redirect => {
                // Both values are base64url: nothing to escape.
                let separator = if finish.uri.contains('?') { '&' } else { '?' };
                FinishAction::Redirect {
                    url: format!(
                        "{}{separator}hash={hash}&interact_ref={interact_ref}",
                        finish.uri
                    ),
                }
            }
            FinishKind::Push => FinishAction::Push {
                uri: finish.uri.clone(),
                body: serde_json::to_vec(
                    &serde_json::json!({"hash": hash, "interact_ref": interact_ref}),
                )
                .unwrap_or_default(),
            },
            // Answered above: an OAuth client is told in its own words.
            FinishKind::OAuthCode => FinishAction::None,
        }
    }

    /// The pending interaction named by a user code or a grant id, counting
    /// attempts.
    pub(crate) fn find_pending(
        &self,
        selector: &str,
        source: &str,
        now: i64,
        lookup: Lookup,
    ) -> Result<InteractionRecord, DecideError> {
        let mut live = self
            .live
            .lock()
            .map_err(|_| DecideError::Store(StoreError::Backend("lock poisoned".into())))?;
        let budget = self.config.user_code_failure_budget;
        let mut tally = StoreTally {
            store: &*self.store,
            local: &mut live.attempts,
        };
        if !source_allowed(&mut tally, source, budget, now)? {
            return Err(DecideError::TooManyAttempts);
        }
        let found = match UserCode::parse(selector) {
            Some(code) => self.store.interaction_by_user_code(&code.hash())?,
            None if lookup == Lookup::CodeOrGrantId && crate::authz::is_grant_id(selector) => self
                .store
                .interaction(&GrantId(selector.to_owned()))?
                .filter(|i| i.status == InteractionStatus::Pending),
            None => None,
        };
        let Some(interaction) = found else {
            if source_failed(&mut tally, source, budget, now)? {
                tracing::warn!(
                    budget,
                    "failed user code entries reached the budget for all sources: code entry is paused for up to 10 minutes (the admin socket still decides)"
                );
            }
            // A decided grant is not "not found" for its own id.
            if lookup == Lookup::CodeOrGrantId
                && crate::authz::is_grant_id(selector)
                && self
                    .store
                    .interaction(&GrantId(selector.to_owned()))?
                    .is_some()
            {
                return Err(DecideError::AlreadyDecided);
            }
            return Err(DecideError::NotFound);
        };
        if !grant_entered(&mut tally, &interaction.grant, now)? {
            return Err(DecideError::TooManyAttempts);
        }
        Ok(interaction)
    }
}

/// The authorization response of RFC 6749 §4.1.2 (or its error, §4.1.2.1)
/// with RFC 9207's `iss`: where the browser goes once a person decided an
/// OAuth client's request. The code names the grant and carries the
/// interaction reference, which is kept only as a hash and taken once.
pub(crate) fn oauth_redirect(
    issuer: &str,
    grant: &GrantRecord,
    redirect_uri: &str,
    interact_ref: &str,
    approved: bool,
) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    if approved {
        query.append_pair("code", &oauth_code(&grant.id, interact_ref));
    } else {
        query.append_pair("error", "access_denied");
    }
    if let Some(state) = grant.oauth.as_ref().and_then(|o| o.state.as_deref()) {
        query.append_pair("state", state);
    }
    query.append_pair("iss", issuer);
    let separator = if redirect_uri.contains('?') { '&' } else { '?' };
    format!("{redirect_uri}{separator}{}", query.finish())
}

/// An authorization code: the grant's id and the interaction reference,
/// joined by a dot (neither contains one: a UUID and base64url).
pub(crate) fn oauth_code(grant: &GrantId, interact_ref: &str) -> String {
    format!("{}.{interact_ref}", grant.0)
}
