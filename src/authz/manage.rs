//! Token management (RFC 9635 §6): rotate and revoke.
//!
//! Calls present the token management access token and are signed by the key
//! the access token is bound to. Rotation swaps value and management token
//! atomically (the old value stops working at once); a rotation that also
//! changes the key needs both keys' signatures (§7.3.1.1).

use super::grant::no_randomness;
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
        let (content, nested) = self.rotation_content(request)?;
        let rotation = self.counted(parse_rotation_request(&content))?;
        if nested && rotation.new_key.is_none() {
            return Err(Failure::gnap(
                ErrorCode::InvalidRotation,
                "a nested rotation proof must carry the new key",
            ));
        }
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
        let key = match rotation.new_key {
            None => {
                self.prove_bound(request, &old.key, ReplayBudget::Bound)?;
                old.key.clone()
            }
            Some(Key::Value(presented)) => {
                // §6.1.1: "The `proof` method and parameters for the new key
                // MUST be the same as those established for the previous key."
                if presented.proof.kind() != old.key.method {
                    return Err(Failure::gnap(
                        ErrorCode::InvalidRotation,
                        "the new key must use the proofing method of the key it replaces",
                    ));
                }
                // §7.3.2.1: a TLS connection proves one certificate, so
                // "dynamic key rotation for this proofing method is not
                // defined".
                if old.key.method == crate::proto::gnap::ProofKind::Mtls {
                    return Err(Failure::gnap(
                        ErrorCode::KeyRotationNotSupported,
                        "a key bound with mtls cannot be rotated: ask for a new grant with the new certificate",
                    ));
                }
                let new_key =
                    VerifyingKey::from_presented_jwk(&presented.jwk_value()).map_err(|e| {
                        Failure::gnap(
                            ErrorCode::InvalidRotation,
                            &format!("the new key is not usable: {e}"),
                        )
                    })?;
                if old.key.method.is_httpsig() {
                    self.config
                        .profile
                        .verify_rotation(
                            request,
                            &bound_key(&old.key)?,
                            &new_key,
                            self.now(),
                            self.store.replay(ReplayBudget::Bound),
                        )
                        .map_err(|r| match self.replay_refusal(r, ReplayBudget::Bound) {
                            Failure::Signature(r) => Failure::RotationSignature(r),
                            other => other,
                        })?;
                } else {
                    // A failed proof of either key is `invalid_rotation`
                    // (§6.1.1), as for signatures above.
                    self.prove_jws_rotation(request, &old.key, &new_key)
                        .map_err(|failure| match failure {
                            Failure::Gnap(error, _) if error.code == ErrorCode::InvalidClient => {
                                Failure::gnap(
                                    ErrorCode::InvalidRotation,
                                    error.description.as_deref().unwrap_or_default(),
                                )
                            }
                            other => other,
                        })?;
                }
                KeyBinding {
                    thumbprint: new_key.thumbprint().as_str().to_owned(),
                    jwk: new_key.public_jwk().cloned().unwrap_or_default(),
                    method: old.key.method,
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
        let (value, hash) = mint::token(self.random(), &old.grant).map_err(no_randomness)?;
        let (manage_value, manage_hash) =
            mint::token(self.random(), &old.grant).map_err(no_randomness)?;
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
        self.prove_bound(request, &token.key, ReplayBudget::Bound)?;
        if self.store.revoke_token(&manage)? {
            self.metrics.revoked();
        }
        Ok(Reply::no_content())
    }
}
