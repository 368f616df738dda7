//! Minting an OAuth access token and its refresh token, and the token
//! response (RFC 6749 §5.1): opaque values, stored as hashes, short-lived,
//! bound to their audience and, with DPoP, to the client's key.

use serde::Serialize;

use super::{client_binding, error};
use crate::authz::{AuthServer, Reply, mint};
use crate::proto::gnap::AccessRight;
use crate::proto::oauth::error::{ErrorCode, OAuthError};
use crate::proto::oauth::scope;
use crate::store::{GrantId, KeyBinding, OAuthToken, RECORD_VERSION, TokenHash, TokenRecord};

/// A DPoP key the edge verified a proof with (RFC 9449 §4.3): its
/// thumbprint (`jkt`) and public JWK.
///
/// Integration point: the HTTP edge verifies the `DPoP` header with
/// `proto::oauth::dpop::verify` and passes the key here; the services
/// never read a proof themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpopKey {
    /// RFC 7638 thumbprint, base64url.
    pub jkt: String,
    /// The public JWK.
    pub jwk: serde_json::Value,
}

/// The token response of RFC 6749 §5.1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenAnswer {
    /// `access_token`.
    pub access_token: String,
    /// `token_type`: `Bearer` (RFC 6750) or `DPoP` (RFC 9449 §5).
    pub token_type: &'static str,
    /// `expires_in`, seconds.
    pub expires_in: i64,
    /// `refresh_token`: rotated on every use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// `scope`: what the token carries, in scope strings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl TokenAnswer {
    /// The response: JSON, `Cache-Control: no-store` and `Pragma:
    /// no-cache` (§5.1).
    pub fn reply(&self) -> Reply {
        Reply::json(200, self).with_header("pragma", "no-cache")
    }
}

/// What a minted token is for.
pub(super) struct Minting<'a> {
    pub(super) grant: &'a GrantId,
    pub(super) client_id: &'a str,
    pub(super) audience: &'a str,
    pub(super) access: Vec<AccessRight>,
    pub(super) dpop: Option<KeyBinding>,
    pub(super) credential_sets: Vec<(String, String)>,
}

impl AuthServer {
    /// A new access token and refresh token for `minting`, at `now`.
    pub(super) fn mint_oauth(
        &self,
        minting: Minting<'_>,
        now: i64,
    ) -> Result<((TokenHash, TokenRecord), TokenAnswer), OAuthError> {
        let (value, hash) =
            mint::token(self.random(), minting.grant).map_err(super::no_randomness)?;
        let (refresh, refresh_hash) =
            mint::token(self.random(), minting.grant).map_err(super::no_randomness)?;
        let lifetime = self.config.oauth_token_lifetime;
        let dpop = minting.dpop.is_some();
        let record = TokenRecord {
            v: RECORD_VERSION,
            grant: minting.grant.clone(),
            label: None,
            key: minting
                .dpop
                .unwrap_or_else(|| client_binding(minting.client_id)),
            manage: refresh_hash,
            bearer: !dpop,
            issued_at: now,
            expires_at: now.saturating_add(lifetime),
            credential_sets: minting.credential_sets,
            oauth: Some(OAuthToken {
                client_id: minting.client_id.to_owned(),
                audience: minting.audience.to_owned(),
                dpop,
            }),
            access: minting.access,
        };
        let scope = scope::from_access(&record.access)
            .ok()
            .filter(|s| !s.is_empty())
            .map(|s| s.join(" "));
        let answer = TokenAnswer {
            access_token: value.expose().to_owned(),
            token_type: if dpop { "DPoP" } else { "Bearer" },
            expires_in: lifetime,
            refresh_token: Some(refresh.expose().to_owned()),
            scope,
        };
        Ok(((hash, record), answer))
    }

    /// Revokes every token of `grant` and the grant itself: a code or
    /// refresh token was used twice, so one of them leaked.
    pub(super) fn revoke_family(&self, grant: &GrantId) -> Result<(), OAuthError> {
        let Some(record) = self.store.grant(grant).map_err(super::store_failed)? else {
            return Ok(());
        };
        if let Some(c) = &record.continuation
            && self
                .store
                .delete_grant(&c.token)
                .map_err(super::store_failed)?
        {
            self.release_pending(grant);
            tracing::warn!(grant = %grant.0, "an OAuth code or refresh token was used twice: its grant and tokens are revoked");
        }
        Ok(())
    }
}

/// The binding of a DPoP key as the store keeps it.
pub(super) fn dpop_binding(key: &DpopKey) -> KeyBinding {
    KeyBinding {
        thumbprint: key.jkt.clone(),
        jwk: key.jwk.clone(),
        method: crate::proto::gnap::ProofKind::HttpSig,
    }
}

/// `invalid_grant` with `description`.
pub(super) fn invalid_grant(description: &str) -> OAuthError {
    error(ErrorCode::InvalidGrant, description)
}
