//! Sweeping expired grants, tokens and instances, each looked at again
//! inside the transaction that removes it.

use super::entry::EntryExpiry;
use super::*;

impl SledStore {
    pub(super) fn sweep_grants(&self, now: i64, swept: &mut Swept) -> Result<(), StoreError> {
        let mut expired = Vec::new();
        let mut tokens_due = Vec::new();
        for item in self.records.iter() {
            let (key, bytes) = item.map_err(|e| backend("sled scan", e))?;
            let due = EntryExpiry::of(&bytes)?;
            if due.expires_at < now {
                expired.push(key);
            } else if due.tokens_expire.is_some_and(|t| t < now) {
                tokens_due.push(key);
            }
        }
        for key in expired {
            let removed = self.transact_grants(|trees| {
                let Some(bytes) = trees.records.get(&key)? else {
                    return Ok(None);
                };
                let entry = GrantEntry::decode(&bytes).map_err(abort)?;
                if entry.expires_at >= now {
                    return Ok(None);
                }
                let instance_gone = remove_entry(trees, &key, &entry, Some(now))?;
                Ok(Some((entry.tokens.len(), instance_gone)))
            })?;
            if let Some((tokens, instance_gone)) = removed {
                swept.grants += 1;
                swept.tokens += tokens;
                swept.instances += usize::from(instance_gone);
            }
        }
        for key in tokens_due {
            swept.tokens += self.sweep_tokens_of(&key, now)?;
        }
        Ok(())
    }

    /// Removes the expired tokens (not OAuth tokens: they hold their
    /// refresh token and go with the grant) of the record under `key`.
    fn sweep_tokens_of(&self, key: &[u8], now: i64) -> Result<usize, StoreError> {
        loop {
            let Some(bytes) = Self::get(&self.records, key)? else {
                return Ok(0);
            };
            let mut entry = GrantEntry::decode(&bytes)?;
            let removed = entry.remove_tokens(|_, t| t.oauth.is_none() && t.expires_at < now);
            if removed == 0 {
                return Ok(0);
            }
            let swapped = self
                .records
                .compare_and_swap(key, Some(bytes), Some(entry.encode()?))
                .map_err(|e| backend("sled compare-and-swap", e))?;
            if swapped.is_ok() {
                return Ok(removed);
            }
        }
    }

    /// Removes token index entries that lead to no record holding their
    /// hash (their token was revoked, rotated or swept, or its creation was
    /// cut short). The index is empty unless records came from the
    /// five-tree layout or callers wrote hashes gnapd does not mint.
    pub(super) fn sweep_index(&self) -> Result<(), StoreError> {
        for item in self.token_index.iter() {
            let (hash, key) = item.map_err(|e| backend("sled scan", e))?;
            let Ok(hash) = <[u8; 32]>::try_from(hash.as_ref()).map(TokenHash) else {
                continue;
            };
            let holds = Self::get(&self.records, &key)?
                .map(|bytes| GrantEntry::decode(&bytes))
                .transpose()?
                .is_some_and(|entry| entry.found_by(&hash));
            if !holds {
                // Only if unchanged: a write may have just pointed it anew.
                self.token_index
                    .compare_and_swap(&hash.0[..], Some(key), None::<&[u8]>)
                    .map_err(|e| backend("sled compare-and-swap", e))?
                    .ok();
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
