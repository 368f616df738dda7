//! The token endpoint's `refresh_token` grant (RFC 6749 §6, OAuth 2.1
//! §4.3): the refresh token is the token record's management token, so a
//! refresh is the store's rotation (`token_swap`). OAuth 2.1 §4.3.1: a
//! public client's refresh token must be sender-constrained or rotated;
//! gnapd rotates every client's, and remembers the spent ones, so that a
//! spent refresh token presented again (it leaked: the thief or the
//! client used it first) revokes the whole grant.

use super::error;
use super::issue::{DpopKey, Minting, TokenAnswer, invalid_grant};
use crate::authz::AuthServer;
use crate::proto::oauth::client::ClientInfo;
use crate::proto::oauth::error::{ErrorCode, OAuthError};
use crate::proto::oauth::form::Params;
use crate::proto::oauth::{resource, scope};
use crate::store::{RECORD_VERSION, SpentRefresh, TokenHash};

impl AuthServer {
    pub(super) fn refresh(
        &self,
        params: &Params,
        client: &ClientInfo,
        dpop: Option<&DpopKey>,
        known: &dyn Fn(&str) -> bool,
    ) -> Result<TokenAnswer, OAuthError> {
        let presented = params
            .get("refresh_token")
            .ok_or_else(|| error(ErrorCode::InvalidRequest, "refresh_token is required"))?;
        let unknown = || invalid_grant("the refresh token is unknown, expired or revoked");
        let hash = TokenHash::of(presented);
        let now = self.now();
        let store = &self.store;
        let Some((old, record)) = store.token_by_manage(&hash).map_err(super::store_failed)? else {
            if let Some(spent) = store.spent_refresh(&hash).map_err(super::store_failed)?
                && spent.expires_at >= now
            {
                self.revoke_family(&spent.grant)?;
                return Err(invalid_grant(
                    "the refresh token was already used; every token of its grant is revoked",
                ));
            }
            return Err(unknown());
        };
        // A GNAP token's management token is no refresh token.
        let Some(oauth) = record.oauth.clone() else {
            return Err(unknown());
        };
        if oauth.client_id != client.client_id {
            return Err(unknown());
        }
        let grant = store
            .grant(&record.grant)
            .map_err(super::store_failed)?
            .ok_or_else(unknown)?;
        if now > grant.expires_at {
            return Err(unknown());
        }
        // RFC 9449 §5: a DPoP-bound refresh needs a proof with the same key.
        if oauth.dpop && dpop.is_none_or(|k| k.jkt != record.key.thumbprint) {
            return Err(invalid_grant(
                "the refresh token is bound to a DPoP key: send a proof made with it",
            ));
        }
        if let Some(sent) = params.get("resource") {
            let same = resource::choose(Some(sent), &[], &self.config.public_url, known, None)
                .is_ok_and(|r| r.uri == oauth.audience);
            if !same {
                return Err(error(
                    ErrorCode::InvalidTarget,
                    "the resource is not this refresh token's",
                ));
            }
        }
        // RFC 6749 §6: a scope may only repeat (here: exactly) what was
        // granted; narrowing on refresh is not offered.
        if let Some(sent) = params.get("scope") {
            let asked = scope::to_access(sent)
                .map_err(|e| error(ErrorCode::InvalidScope, &e.to_string()))?;
            if !asked.is_empty() && asked != record.access {
                return Err(error(
                    ErrorCode::InvalidScope,
                    "a refresh may ask for the granted scope only",
                ));
            }
        }
        // Spent before the swap: a crash in between leaves the old token
        // usable once more, never a reuse undetected.
        store
            .spend_refresh(
                &hash,
                &SpentRefresh {
                    v: RECORD_VERSION,
                    grant: record.grant.clone(),
                    expires_at: grant.expires_at,
                },
            )
            .map_err(super::store_failed)?;
        let (new, answer) = self.mint_oauth(
            Minting {
                grant: &record.grant,
                client_id: &oauth.client_id,
                audience: &oauth.audience,
                access: record.access.clone(),
                dpop: oauth.dpop.then(|| record.key.clone()),
                credential_sets: record.credential_sets.clone(),
            },
            now,
        )?;
        if !store
            .token_swap(&hash, &old, &new)
            .map_err(super::store_failed)?
        {
            // Another request rotated it first: the token was used twice.
            self.revoke_family(&record.grant)?;
            return Err(invalid_grant("the refresh token was already used"));
        }
        Ok(answer)
    }
}
