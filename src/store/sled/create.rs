//! Writing a brand-new grant without a sled transaction.
//!
//! A multi-tree transaction takes sled's global write lock: under load every
//! other writer queues behind it. A new grant needs none: it is one record
//! under a fresh key, and tokens minted by gnapd locate it by their hash
//! alone. A hash that does not (a caller's own values) gets a token index
//! entry first; the record goes last, the commit point, so a crash between
//! them leaves only index entries leading to no record that holds them —
//! never acknowledged, unusable, removed by the next sweep, and counted by
//! `SledStore::check` as unfinished, not as damage. Nobody can ask for any
//! of the keys before the answer naming them has left, which happens only
//! after the group commit has them on disk.

use super::*;

impl SledStore {
    /// Writes a new grant's record (after any index entries it needs). The
    /// caller waits for the group commit before answering.
    pub(super) fn write_new_grant(
        &self,
        grant: &GrantRecord,
        tokens: &[(TokenHash, TokenRecord)],
        instance: Option<&InstanceRecord>,
    ) -> Result<(), StoreError> {
        let key = grant_key(&grant.id);
        let record = compact::encode(grant, tokens, instance)?;
        self.index_unlocated(&key, entry::hashes_of(grant, tokens))?;
        self.records
            .insert(key, record)
            .map(drop)
            .map_err(|e| backend("sled insert", e))
    }

    /// Makes the instance a grant names outlive the grant
    /// ([`InstanceRecord::keep_until`]), where it lives: in the record of
    /// the grant it was minted with, or in the instances tree. Each is one
    /// atomic change of one key: two grants extending it at once both
    /// count, and a record that moved its instance out meanwhile is seen
    /// gone and the instances tree asked instead.
    pub(super) fn keep_instance(&self, grant: &GrantRecord) -> Result<(), StoreError> {
        let Some(id) = &grant.instance_id else {
            return Ok(());
        };
        let key = grant_key(&GrantId(id.clone()));
        loop {
            let Some(bytes) = Self::get(&self.records, &key)? else {
                break;
            };
            let mut entry = GrantEntry::decode(&bytes)?;
            let Some(instance) = entry.instance.as_mut().filter(|_| entry.grant.id.0 == *id) else {
                break;
            };
            if !instance.keep_until(grant.expires_at) {
                return Ok(());
            }
            let swapped = self
                .records
                .compare_and_swap(&key, Some(bytes), Some(entry.encode()?))
                .map_err(|e| backend("sled compare-and-swap", e))?;
            if swapped.is_ok() {
                return Ok(());
            }
        }
        let mut failure = None;
        self.instances
            .fetch_and_update(id.as_bytes(), |bytes| {
                let bytes = bytes?;
                let mut instance: InstanceRecord = match decode(bytes) {
                    Ok(instance) => instance,
                    Err(e) => {
                        failure = Some(e);
                        return Some(bytes.to_vec());
                    }
                };
                if !instance.keep_until(grant.expires_at) {
                    return Some(bytes.to_vec());
                }
                match encode(&instance) {
                    Ok(encoded) => Some(encoded),
                    Err(e) => {
                        failure = Some(e);
                        Some(bytes.to_vec())
                    }
                }
            })
            .map_err(|e| backend("sled update", e))?;
        failure.map_or(Ok(()), Err)
    }
}
