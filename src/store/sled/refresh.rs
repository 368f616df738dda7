//! Spent refresh tokens (OAuth 2.1 §4.3.1): a tree of their hashes, each
//! with the grant it belonged to, until the grant would have expired.

use super::*;
use crate::store::codec::expires_at;

impl SledStore {
    pub(super) fn put_spent_refresh(
        &self,
        refresh: &TokenHash,
        spent: &SpentRefresh,
    ) -> Result<(), StoreError> {
        self.spent_refresh
            .insert(&refresh.0[..], encode(spent)?)
            .map_err(|e| backend("sled write", e))?;
        self.commit.wait_durable()
    }

    pub(super) fn get_spent_refresh(
        &self,
        refresh: &TokenHash,
    ) -> Result<Option<SpentRefresh>, StoreError> {
        Self::get(&self.spent_refresh, &refresh.0[..])?
            .map(|b| decode(&b))
            .transpose()
    }

    /// Forgets the spent refresh tokens whose grant is past its expiry.
    pub(super) fn sweep_spent_refresh(&self, now: i64) -> Result<(), StoreError> {
        for entry in self.spent_refresh.iter() {
            let (hash, bytes) = entry.map_err(|e| backend("sled scan", e))?;
            if expires_at(&bytes)? < now {
                // A hash is written once and never changes: no transaction.
                self.spent_refresh
                    .remove(hash)
                    .map_err(|e| backend("sled write", e))?;
            }
        }
        Ok(())
    }
}
