//! Finding a grant's record from a token hash, and changing it in place.
//!
//! A hash leads to at most two records: the one its locator names and the
//! one the token index names (for hashes that locate nothing). Each is read
//! and decoded, and the caller's test decides whether it is the one: a
//! record is found by a hash only if it holds that hash, compared in
//! constant time, so a forged value naming a real grant finds nothing.
//! Changes are a compare-and-swap of that one key: no sled transaction,
//! no global write lock; a writer that lost the race reads again.

use super::entry::{self, GrantEntry, located_key};
use super::*;

/// A record found by a hash.
pub(super) struct Found<T> {
    pub key: IVec,
    pub entry: GrantEntry,
    pub value: T,
}

impl SledStore {
    /// The keys of the records `hash` may lead to: its locator's, then the
    /// token index's (when that is another).
    pub(super) fn candidates(&self, hash: &TokenHash) -> Result<Vec<IVec>, StoreError> {
        let located = IVec::from(&located_key(hash)[..]);
        let mut keys = vec![located];
        if let Some(indexed) = Self::get(&self.token_index, &hash.0)?
            && indexed != keys[0]
        {
            keys.push(indexed);
        }
        Ok(keys)
    }

    /// The first record `hash` leads to for which `pick` says yes.
    pub(super) fn find<T>(
        &self,
        hash: &TokenHash,
        mut pick: impl FnMut(&GrantEntry) -> Option<T>,
    ) -> Result<Option<Found<T>>, StoreError> {
        for key in self.candidates(hash)? {
            let Some(bytes) = Self::get(&self.records, &key)? else {
                continue;
            };
            let entry = GrantEntry::decode(&bytes)?;
            if let Some(value) = pick(&entry) {
                return Ok(Some(Found { key, entry, value }));
            }
        }
        Ok(None)
    }

    /// Changes the first record `hash` leads to that `edit` accepts (by
    /// returning `Some`), atomically: `edit` sees the current record and,
    /// if another write got in first, runs again on the newer one. `None`
    /// if no record accepted.
    pub(super) fn change<T>(
        &self,
        hash: &TokenHash,
        mut edit: impl FnMut(&mut GrantEntry) -> Option<T>,
    ) -> Result<Option<T>, StoreError> {
        'read: loop {
            for key in self.candidates(hash)? {
                let Some(bytes) = Self::get(&self.records, &key)? else {
                    continue;
                };
                let mut entry = GrantEntry::decode(&bytes)?;
                let Some(value) = edit(&mut entry) else {
                    continue;
                };
                let swapped = self
                    .records
                    .compare_and_swap(&key, Some(bytes), Some(entry.encode()?))
                    .map_err(|e| backend("sled compare-and-swap", e))?;
                if swapped.is_err() {
                    continue 'read;
                }
                return Ok(Some(value));
            }
            return Ok(None);
        }
    }

    /// Index entries for those of `hashes` that do not locate the record
    /// under `key`. Written before the record, so a crash between leaves
    /// only an entry that leads to a record not holding it (unfinished,
    /// and swept).
    pub(super) fn index_unlocated<'a>(
        &self,
        key: &[u8],
        hashes: impl Iterator<Item = &'a TokenHash>,
    ) -> Result<(), StoreError> {
        for hash in hashes.filter(|h| !entry::locates(key, h)) {
            self.token_index
                .insert(&hash.0[..], key)
                .map_err(|e| backend("sled insert", e))?;
        }
        Ok(())
    }
}

/// [`SledStore::candidates`] inside a transaction.
pub(super) fn tx_candidates(index: &TransactionalTree, hash: &TokenHash) -> TxResult<Vec<IVec>> {
    let located = IVec::from(&located_key(hash)[..]);
    let mut keys = vec![located];
    if let Some(indexed) = index.get(&hash.0[..])?
        && indexed != keys[0]
    {
        keys.push(indexed);
    }
    Ok(keys)
}

/// [`SledStore::find`] inside a transaction.
pub(super) fn tx_find<T>(
    records: &TransactionalTree,
    index: &TransactionalTree,
    hash: &TokenHash,
    mut pick: impl FnMut(&GrantEntry) -> Option<T>,
) -> TxResult<Option<Found<T>>> {
    for key in tx_candidates(index, hash)? {
        let Some(bytes) = records.get(&key)? else {
            continue;
        };
        let entry = GrantEntry::decode(&bytes).map_err(abort)?;
        if let Some(value) = pick(&entry) {
            return Ok(Some(Found { key, entry, value }));
        }
    }
    Ok(None)
}

/// [`SledStore::index_unlocated`] inside a transaction.
pub(super) fn tx_index_unlocated<'a>(
    index: &TransactionalTree,
    key: &[u8],
    hashes: impl Iterator<Item = &'a TokenHash>,
) -> TxResult<()> {
    for hash in hashes.filter(|h| !entry::locates(key, h)) {
        index.insert(&hash.0[..], key)?;
    }
    Ok(())
}

/// Removes the index entries of `entry`'s hashes that lead to `key`.
pub(super) fn tx_unindex(
    index: &TransactionalTree,
    key: &[u8],
    entry: &GrantEntry,
) -> TxResult<()> {
    for hash in entry.hashes().filter(|h| !super::entry::locates(key, h)) {
        if index.get(&hash.0[..])?.is_some_and(|k| k == key) {
            index.remove(&hash.0[..])?;
        }
    }
    Ok(())
}
