//! Token management (RFC 9635 §6): rotate and revoke.
//!
//! Calls present the token management access token and are signed by the key
//! the access token is bound to. Rotation swaps value and management token
//! atomically (the old value stops working at once); a rotation that also
//! changes the key needs both keys' signatures (§7.3.1.1).

use super::grant::{no_randomness, require_json};
use super::{AuthServer, Failure, Reply, bound_key, mint, presented_token};
use crate::proto::gnap::{
    AccessToken, BoundAccessToken, ErrorCode, Key, Manage, parse_rotation_request,
};
use crate::proto::httpsig::HttpRequest;
use crate::proto::jwk::VerifyingKey;
use crate::store::{KeyBinding, ReplayBudget, TokenRecord};

/// The response body of a rotation (§6.1): `{"access_token": {...}}`.
#[derive(serde::Serialize)]
struct Rotated {
    access_token: AccessToken,
}

impl AuthServer {
    /// §6.1: POST to the management URI rotates the token (and, with `key`,
    /// the key it is bound to).
    pub(super) fn rotate_token(&self, id: &str, request: &HttpRequest) -> Result<Reply, Failure> {
        if !request.body.is_empty() {
            require_json(request)?;
        }
        let rotation = self.counted(parse_rotation_request(&request.body))?;
        let manage = presented_token(request, ErrorCode::InvalidRotation)?;
        let Some((old_hash, old)) = self
            .store
            .token_by_manage(&manage)?
            .filter(|(_, t)| t.grant.0 == id)
        else {
            // "Revoked" may be a concurrent revocation's, not yet on disk.
            self.store.settle()?;
            return Err(Failure::gnap(
                ErrorCode::InvalidRotation,
                "unknown or revoked token",
            ));
        };
        let old_key = bound_key(&old.key)?;
        let key = match rotation.new_key {
            None => {
                self.verify(request, &old_key, ReplayBudget::Bound)?;
                old.key.clone()
            }
            Some(Key::Value(presented)) => {
                let new_key =
                    VerifyingKey::from_presented_jwk(&presented.jwk_value()).map_err(|e| {
                        Failure::gnap(
                            ErrorCode::InvalidRotation,
                            &format!("the new key is not usable: {e}"),
                        )
                    })?;
                self.config
                    .profile
                    .verify_rotation(
                        request,
                        &old_key,
                        &new_key,
                        self.now(),
                        self.store.replay(ReplayBudget::Bound),
                    )
                    .map_err(|r| match self.replay_refusal(r, ReplayBudget::Bound) {
                        Failure::Signature(r) => Failure::RotationSignature(r),
                        other => other,
                    })?;
                KeyBinding {
                    thumbprint: new_key.thumbprint().as_str().to_owned(),
                    jwk: new_key.public_jwk().cloned().unwrap_or_default(),
                }
            }
            Some(Key::Reference(_)) => {
                return Err(Failure::gnap(
                    ErrorCode::KeyRotationNotSupported,
                    "rotation to a key reference is not supported; present the new key by value",
                ));
            }
        };
        let now = self.now();
        if now > old.expires_at {
            return Err(Failure::gnap(
                ErrorCode::InvalidRotation,
                "the access token has expired",
            ));
        }
        let (value, hash) = mint::token(self.random()).map_err(no_randomness)?;
        let (manage_value, manage_hash) = mint::token(self.random()).map_err(no_randomness)?;
        let record = TokenRecord {
            key,
            manage: manage_hash,
            issued_at: now,
            expires_at: now.saturating_add(self.config.token_lifetime),
            ..old.clone()
        };
        if !self.store.token_swap(&manage, &old_hash, &(hash, record))? {
            return Err(Failure::gnap(
                ErrorCode::InvalidRotation,
                "the token was rotated or revoked meanwhile",
            ));
        }
        self.metrics.rotated();
        let mut token = AccessToken::new(value, old.access);
        token.label = old.label;
        token.manage = Some(Manage {
            uri: self.config.manage_uri(id),
            access_token: BoundAccessToken::new(manage_value),
        });
        token.expires_in = u64::try_from(self.config.token_lifetime).ok();
        Ok(Reply::json(
            200,
            &Rotated {
                access_token: token,
            },
        ))
    }

    /// §6.2: DELETE to the management URI revokes the token.
    pub(super) fn revoke_token(&self, id: &str, request: &HttpRequest) -> Result<Reply, Failure> {
        let manage = presented_token(request, ErrorCode::InvalidRequest)?;
        let Some((_, token)) = self
            .store
            .token_by_manage(&manage)?
            .filter(|(_, t)| t.grant.0 == id)
        else {
            // Already revoked (or never issued): revocation is idempotent, and
            // answering the same way for an unknown token tells an attacker
            // nothing. The revocation or rotation that removed it may be a
            // concurrent call's, not yet on disk: 204 only once it is, or a
            // crash would bring the token back after this answer.
            self.store.settle()?;
            return Ok(Reply::no_content());
        };
        self.verify(request, &bound_key(&token.key)?, ReplayBudget::Bound)?;
        if self.store.revoke_token(&manage)? {
            self.metrics.revoked();
        }
        Ok(Reply::no_content())
    }
}
