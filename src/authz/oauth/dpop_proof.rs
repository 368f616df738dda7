//! A DPoP proof at the token endpoint (RFC 9449 §4.3, §5): checked by the
//! same verifier as the gateway's, with its `jti` remembered so a proof
//! works once. Keys are free, so the memory used is the unapproved budget,
//! which the gateway's budget never shares.

use super::{DpopKey, error};
use crate::authz::AuthServer;
use crate::proto::httpsig::nonce::Seen;
use crate::proto::jwk::VerifyingKey;
use crate::proto::oauth::dpop;
use crate::proto::oauth::error::{ErrorCode, OAuthError};
use crate::store::ReplayBudget;

/// What is remembered of a proof beside its key: its `jti`, tagged so it
/// can never collide with a signature's nonce in the same memory.
fn remembered(jti: &str) -> Vec<u8> {
    let mut seen = Vec::with_capacity(5 + jti.len());
    seen.extend_from_slice(b"dpop\0");
    seen.extend_from_slice(jti.as_bytes());
    seen
}

impl AuthServer {
    /// The key of a token request's DPoP `proof`, made for `POST
    /// {token_endpoint}`: verified, fresh and never seen before.
    /// Every failure is `invalid_dpop_proof` (RFC 9449 §5).
    pub fn oauth_dpop_key(&self, proof: &str, token_endpoint: &str) -> Result<DpopKey, OAuthError> {
        let refuse = |why: &str| error(ErrorCode::InvalidDpopProof, why);
        let now = self.now();
        let checked = dpop::verify(
            proof.trim(),
            "POST",
            token_endpoint,
            None,
            now,
            dpop::WINDOW,
        )
        .map_err(|e| refuse(&e.to_string()))?;
        let replay = self.store.replay(ReplayBudget::Unapproved);
        // A proof made before the replay memory began could have been used.
        if checked.iat < replay.horizon() {
            return Err(refuse(
                "the DPoP proof is older than this server's replay memory; make a new one",
            ));
        }
        let key = VerifyingKey::from_public_jwk(&checked.jwk, None)
            .map_err(|_| refuse("the DPoP proof's jwk is not an acceptable public key"))?;
        match replay.remember(
            key.thumbprint(),
            &remembered(&checked.jti),
            checked.iat + dpop::WINDOW,
            now,
        ) {
            Ok(Seen::Fresh) => Ok(DpopKey {
                jkt: checked.jkt,
                jwk: checked.jwk,
            }),
            Ok(Seen::Replayed) => Err(refuse("the DPoP proof was used before")),
            Err(_) => {
                self.metrics.limited("replay_unapproved");
                Err(error(
                    ErrorCode::TemporarilyUnavailable,
                    "too many recent proofs; try again shortly",
                ))
            }
        }
    }
}
