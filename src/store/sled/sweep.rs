//! Sweeping expired grants, tokens and instances, each looked at again
//! inside the transaction that removes it.

use super::*;

impl SledStore {
    pub(super) fn sweep_grants(&self, now: i64, swept: &mut Swept) -> Result<(), StoreError> {
        let mut expired = Vec::new();
        for entry in self.grants.iter() {
            let (id, bytes) = entry.map_err(|e| backend("sled scan", e))?;
            if expires_at(&bytes)? < now {
                expired.push(id);
            }
        }
        for id in expired {
            // Looked at again inside the transaction: it may have changed.
            if let Some(tokens) =
                self.transact6(|trees| Self::remove_grant6(trees, &id, Some(now)))?
            {
                swept.grants += 1;
                swept.tokens += tokens;
            }
        }
        Ok(())
    }

    pub(super) fn sweep_tokens(&self, now: i64, swept: &mut Swept) -> Result<(), StoreError> {
        let mut expired = Vec::new();
        for entry in self.tokens.iter() {
            let (hash, bytes) = entry.map_err(|e| backend("sled scan", e))?;
            if expires_at(&bytes)? < now && !holds_refresh(&bytes)? {
                expired.push(token_hash(&hash)?);
            }
        }
        for hash in expired {
            let removed = self.transact_tokens(|tokens, manage| {
                // Looked at again inside the transaction: it may have been
                // rotated or revoked since the scan.
                let Some(bytes) = tokens.get(&hash.0[..])? else {
                    return Ok(false);
                };
                if expires_at(&bytes).map_err(abort)? >= now {
                    return Ok(false);
                }
                if holds_refresh(&bytes).map_err(abort)? {
                    return Ok(false);
                }
                remove_token(tokens, manage, &hash)
            })?;
            if removed {
                swept.tokens += 1;
            }
        }
        Ok(())
    }

    pub(super) fn sweep_instances(&self, now: i64, swept: &mut Swept) -> Result<(), StoreError> {
        let mut expired = Vec::new();
        for entry in self.instances.iter() {
            let (id, bytes) = entry.map_err(|e| backend("sled scan", e))?;
            let instance: InstanceRecord = decode(&bytes)?;
            if instance.expiry() < now {
                expired.push(id);
            }
        }
        for id in expired {
            // Looked at again inside the transaction: a grant written since
            // the scan may have kept it.
            let removed = self
                .instances
                .transaction(|instances| {
                    let Some(bytes) = instances.get(&id)? else {
                        return Ok(false);
                    };
                    let instance: InstanceRecord = decode(&bytes).map_err(abort)?;
                    if instance.expiry() >= now {
                        return Ok(false);
                    }
                    instances.remove(&id)?;
                    Ok(true)
                })
                .map_err(from_tx)?;
            if removed {
                swept.instances += 1;
            }
        }
        Ok(())
    }
}

/// True for an OAuth token's record: it also holds the refresh token (its
/// management hash), which outlives the access token, so it goes with its
/// grant, not at its own expiry.
fn holds_refresh(bytes: &[u8]) -> Result<bool, StoreError> {
    let record: TokenRecord = decode(bytes)?;
    Ok(record.oauth.is_some())
}
