//! The token endpoint's `authorization_code` grant (RFC 6749 §4.1.3, OAuth
//! 2.1 §4.1.3, RFC 7636 §4.5, RFC 8707 §2.2): the code names its grant and
//! carries the interaction reference, which is taken once, atomically with
//! the token issue (`Store::finish_interaction`).

use subtle::ConstantTimeEq as _;

use super::issue::{DpopKey, Minting, TokenAnswer, dpop_binding, invalid_grant};
use super::{CODE_LIFETIME, error};
use crate::authz::{AuthServer, is_grant_id};
use crate::proto::oauth::client::ClientInfo;
use crate::proto::oauth::error::{ErrorCode, OAuthError};
use crate::proto::oauth::form::Params;
use crate::proto::oauth::{pkce, resource};
use crate::store::{GrantId, GrantState, InteractionStatus, TokenHash};

impl AuthServer {
    /// A token request (`application/x-www-form-urlencoded` `params`) from
    /// `client`, authenticated by the edge (`super::Presented`), with the
    /// DPoP key the edge verified a proof with, if any. `known` says which
    /// upstream names exist; `sole` is the only upstream when there is
    /// exactly one (where an assertion names no resource).
    pub fn oauth_token(
        &self,
        params: &Params,
        client: &ClientInfo,
        dpop: Option<&DpopKey>,
        known: &dyn Fn(&str) -> bool,
        sole: Option<&str>,
    ) -> Result<TokenAnswer, OAuthError> {
        let grant_type = params
            .get("grant_type")
            .ok_or_else(|| error(ErrorCode::InvalidRequest, "grant_type is required"))?;
        if !matches!(
            grant_type,
            "authorization_code" | "refresh_token" | super::JWT_BEARER
        ) {
            return Err(error(
                ErrorCode::UnsupportedGrantType,
                "grant_type must be authorization_code, refresh_token, client_credentials or urn:ietf:params:oauth:grant-type:jwt-bearer",
            ));
        }
        if !client.grant_types.is_empty() && !client.grant_types.iter().any(|g| g == grant_type) {
            return Err(error(
                ErrorCode::UnauthorizedClient,
                "this client is not registered for this grant_type",
            ));
        }
        match grant_type {
            "authorization_code" => self.redeem_code(params, client, dpop, known),
            "refresh_token" => self.refresh(params, client, dpop, known),
            _ => self.oauth_jwt_bearer(params, client, dpop, known, sole),
        }
    }

    fn redeem_code(
        &self,
        params: &Params,
        client: &ClientInfo,
        dpop: Option<&DpopKey>,
        known: &dyn Fn(&str) -> bool,
    ) -> Result<TokenAnswer, OAuthError> {
        let code = params
            .get("code")
            .ok_or_else(|| error(ErrorCode::InvalidRequest, "code is required"))?;
        let redirect_uri = params
            .get("redirect_uri")
            .ok_or_else(|| error(ErrorCode::InvalidRequest, "redirect_uri is required"))?;
        let verifier = params.get("code_verifier").ok_or_else(|| {
            error(
                ErrorCode::InvalidRequest,
                "code_verifier is required (PKCE)",
            )
        })?;
        let unknown = || invalid_grant("the code is unknown, expired or already used");
        let (grant_id, interact_ref) = code.split_once('.').ok_or_else(unknown)?;
        if !is_grant_id(grant_id) {
            return Err(unknown());
        }
        let id = GrantId(grant_id.to_owned());
        let store = &self.store;
        let mut grant = store
            .grant(&id)
            .map_err(super::store_failed)?
            .ok_or_else(unknown)?;
        let Some(oauth) = grant.oauth.clone() else {
            return Err(unknown());
        };
        let interaction = store
            .interaction(&id)
            .map_err(super::store_failed)?
            .ok_or_else(unknown)?;
        let code_hash = TokenHash::of(code);
        let now = self.now();
        let (access, connected) = match &interaction.status {
            InteractionStatus::Approved {
                interact_ref: Some(expected),
                access,
                credential_sets,
                decided_at,
                ..
            } => {
                let matches: bool = TokenHash::of(interact_ref).0.ct_eq(&expected.0).into();
                if !matches || oauth.client_id != client.client_id {
                    return Err(unknown());
                }
                if now > decided_at.saturating_add(CODE_LIFETIME) {
                    return Err(invalid_grant("the code expired"));
                }
                (access.clone(), credential_sets.clone())
            }
            InteractionStatus::Finished { .. } => {
                // RFC 6749 §4.1.2: a code used twice is refused and the
                // tokens issued from it are revoked; only this code's
                // holder can do that, not whoever knows the grant id.
                let same = oauth
                    .redeemed
                    .is_some_and(|r| bool::from(r.0.ct_eq(&code_hash.0)));
                if same {
                    self.revoke_family(&id)?;
                    return Err(invalid_grant(
                        "the code was already used; the tokens issued from it are revoked",
                    ));
                }
                return Err(unknown());
            }
            _ => return Err(unknown()),
        };
        // §4.1.3: the same redirect URI as the authorization request.
        if redirect_uri != oauth.redirect_uri {
            return Err(invalid_grant(
                "redirect_uri differs from the authorization request's",
            ));
        }
        if !pkce::verify(verifier, &oauth.code_challenge) {
            return Err(invalid_grant(
                "the code_verifier does not match the code_challenge",
            ));
        }
        if let Some(sent) = params.get("resource") {
            let chosen = resource::choose(Some(sent), &[], &self.config.public_url, known, None)
                .map_err(|_| error(ErrorCode::InvalidTarget, "the resource is not this code's"))?;
            if chosen.uri != oauth.resource {
                return Err(error(
                    ErrorCode::InvalidTarget,
                    "the resource is not this code's",
                ));
            }
        }
        // RFC 9449 §10: a code bound to a DPoP key needs a proof with it.
        if let Some(jkt) = &oauth.dpop_jkt
            && dpop.is_none_or(|k| &k.jkt != jkt)
        {
            return Err(invalid_grant("the code is bound to another DPoP key"));
        }
        let Some(access) = access.into_iter().find(|a| !a.is_empty()) else {
            return Err(unknown());
        };
        // As for a GNAP token: the set policy assigns at each upstream,
        // replaced by those the person connected while deciding.
        let sets = self.credential_sets.for_access(&access);
        let (mut token, answer) = self.mint_oauth(
            Minting {
                grant: &id,
                client_id: &client.client_id,
                audience: &oauth.resource,
                access,
                dpop: dpop.map(dpop_binding),
                credential_sets: sets,
            },
            now,
        )?;
        crate::authz::grant::map_credential_sets(std::slice::from_mut(&mut token), &connected);
        let Some(continuation) = grant.continuation.as_ref().map(|c| c.token) else {
            return Err(unknown());
        };
        grant.tokens.push(token.0);
        grant.state = GrantState::Approved;
        grant.expires_at = now.saturating_add(self.config.grant_lifetime);
        if let Some(o) = grant.oauth.as_mut() {
            o.redeemed = Some(code_hash);
        }
        if !store
            .finish_interaction(&continuation, &grant, std::slice::from_ref(&token), now)
            .map_err(super::store_failed)?
        {
            // Redeemed at the same moment by another request: the code
            // was used twice.
            self.revoke_family(&id)?;
            return Err(invalid_grant("the code was already used"));
        }
        self.metrics.issued(1);
        tracing::info!(grant = %id.0, client = %client.client_id, "OAuth code redeemed");
        Ok(answer)
    }
}
