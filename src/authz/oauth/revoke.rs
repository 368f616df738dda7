//! Token revocation (RFC 7009): an access token or a refresh token of the
//! calling client. §2.2: "invalid tokens do not cause an error response",
//! so an unknown token (or a GNAP one) is answered 200 as if revoked.
//! Revoking an access token revokes its refresh token, which is the same
//! record's management token (§2.1 "MAY"); revoking a refresh token
//! revokes its grant, every token issued from it included (§2.1: the AS
//! "SHOULD also invalidate the access token", and the family goes with it).

use super::error;
use crate::authz::AuthServer;
use crate::proto::oauth::client::ClientInfo;
use crate::proto::oauth::error::{ErrorCode, OAuthError};
use crate::proto::oauth::form::Params;
use crate::store::TokenHash;

impl AuthServer {
    /// A revocation request from `client` (authenticated by the edge).
    /// `Ok` is 200 with an empty body. A `token_type_hint` only says
    /// where to look first (§2.1: an unknown hint is ignored); both are
    /// looked in.
    pub fn oauth_revoke(&self, params: &Params, client: &ClientInfo) -> Result<(), OAuthError> {
        let token = params
            .get("token")
            .ok_or_else(|| error(ErrorCode::InvalidRequest, "token is required"))?;
        let hash = TokenHash::of(token);
        let store = &self.store;
        let refused = || {
            error(
                ErrorCode::UnauthorizedClient,
                "this token was not issued to this client",
            )
        };
        if let Some(record) = store.token(&hash).map_err(super::store_failed)?
            && let Some(oauth) = &record.oauth
        {
            if oauth.client_id != client.client_id {
                return Err(refused());
            }
            store
                .revoke_token(&record.manage)
                .map_err(super::store_failed)?;
            tracing::info!(grant = %record.grant.0, "OAuth access token revoked");
            return Ok(());
        }
        if let Some((_, record)) = store.token_by_manage(&hash).map_err(super::store_failed)?
            && let Some(oauth) = &record.oauth
        {
            if oauth.client_id != client.client_id {
                return Err(refused());
            }
            self.revoke_family(&record.grant)?;
            tracing::info!(grant = %record.grant.0, "OAuth refresh token revoked with its grant");
            return Ok(());
        }
        // Unknown, expired, already revoked, or not an OAuth token.
        store.settle().map_err(super::store_failed)?;
        Ok(())
    }
}
