//! The building blocks of the store's sled transactions: error
//! conversions, key decoding, and the removals that several mutating
//! methods share inside one transaction.

use super::*;

pub(super) fn backend(context: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("{context}: {e}"))
}

/// What a transaction's closure returns.
pub(super) type TxResult<T> = ConflictableTransactionResult<T, StoreError>;

/// Aborts a transaction with a store error.
pub(super) fn abort(e: StoreError) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(e)
}

pub(super) fn from_tx(e: TransactionError<StoreError>) -> StoreError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => backend("sled transaction", e),
    }
}

pub(super) fn grant_id(bytes: &[u8]) -> Result<GrantId, StoreError> {
    std::str::from_utf8(bytes)
        .map(|s| GrantId(s.to_owned()))
        .map_err(|_| StoreError::Backend("a grant id index entry is not UTF-8".into()))
}

/// The trees a grant's removal spans, inside one transaction.
pub(super) struct GrantTrees {
    pub records: TransactionalTree,
    pub index: TransactionalTree,
    pub interactions: TransactionalTree,
    pub user_codes: TransactionalTree,
    pub instances: TransactionalTree,
}

/// Removes the record under `key` (holding `entry`), the index entries
/// leading to it and the grant's interaction with its user code index. An
/// instance the record held moves to the instances tree, unless it expired
/// before `now` (then it goes too; true if so).
pub(super) fn remove_entry(
    trees: &GrantTrees,
    key: &[u8],
    entry: &GrantEntry,
    now: Option<i64>,
) -> TxResult<bool> {
    trees.records.remove(key)?;
    lookup::tx_unindex(&trees.index, key, entry)?;
    remove_interaction(
        &trees.interactions,
        &trees.user_codes,
        entry.grant.id.0.as_bytes(),
    )?;
    let Some(instance) = &entry.instance else {
        return Ok(false);
    };
    if now.is_some_and(|now| instance.expiry() < now) {
        return Ok(true);
    }
    trees.instances.insert(
        entry.grant.id.0.as_bytes(),
        encode(instance).map_err(abort)?,
    )?;
    Ok(false)
}

/// Removes the interaction of grant `id` and its user code index inside a
/// transaction.
pub(super) fn remove_interaction(
    interactions: &TransactionalTree,
    user_codes: &TransactionalTree,
    id: &[u8],
) -> TxResult<()> {
    if let Some(bytes) = interactions.remove(id)? {
        let interaction: InteractionRecord = decode(&bytes).map_err(abort)?;
        if let Some(code) = &interaction.user_code
            && user_codes
                .get(&code.0[..])?
                .is_some_and(|v| v.as_ref() == id)
        {
            user_codes.remove(&code.0[..])?;
        }
    }
    Ok(())
}

/// Keeps the instance `grant` names until at least the grant's expiry,
/// inside a transaction ([`InstanceRecord::keep_until`]), in the record of
/// the grant it was minted with or in the instances tree.
pub(super) fn keep_instance(
    records: &TransactionalTree,
    instances: &TransactionalTree,
    grant: &GrantRecord,
) -> TxResult<()> {
    let Some(id) = &grant.instance_id else {
        return Ok(());
    };
    let key = grant_key(&GrantId(id.clone()));
    if let Some(bytes) = records.get(&key)? {
        let mut entry = GrantEntry::decode(&bytes).map_err(abort)?;
        if entry.grant.id.0 == *id
            && let Some(instance) = entry.instance.as_mut()
        {
            if instance.keep_until(grant.expires_at) {
                records.insert(key, entry.encode().map_err(abort)?)?;
            }
            return Ok(());
        }
    }
    let Some(bytes) = instances.get(id.as_bytes())? else {
        return Ok(());
    };
    let mut instance: InstanceRecord = decode(&bytes).map_err(abort)?;
    if instance.keep_until(grant.expires_at) {
        instances.insert(id.as_bytes(), encode(&instance).map_err(abort)?)?;
    }
    Ok(())
}

impl SledStore {
    /// In one transaction: removes credential set `set` (if given; `false`
    /// if it is not there, and nothing else changes) and, from the records
    /// under `keys`, the tokens still mapped to credential set `id`.
    pub(super) fn remove_mapped(
        &self,
        set: Option<&str>,
        id: &str,
        keys: &[IVec],
    ) -> Result<bool, StoreError> {
        (&self.credential_sets, &self.records)
            .transaction(|(sets, records)| {
                if let Some(set) = set
                    && sets.remove(set.as_bytes())?.is_none()
                {
                    return Ok(false);
                }
                for key in keys {
                    // Read again: tokens may have been rotated or revoked.
                    let Some(bytes) = records.get(key)? else {
                        continue;
                    };
                    let mut entry = GrantEntry::decode(&bytes).map_err(abort)?;
                    if entry.remove_tokens(|_, t| t.uses_credential_set(id)) > 0 {
                        records.insert(key, entry.encode().map_err(abort)?)?;
                    }
                }
                Ok(true)
            })
            .map_err(from_tx)
            .inspect(|_| {
                // Both caches: a set and tokens may have gone.
                self.token_cache.retire();
                self.set_cache.retire();
            })
    }

    /// The keys of the records holding a token mapped to credential set
    /// `id` (a scan).
    pub(super) fn records_mapped_to(&self, id: &str) -> Result<Vec<IVec>, StoreError> {
        let mut mapped = Vec::new();
        for item in self.records.iter() {
            let (key, bytes) = item.map_err(|e| backend("sled scan", e))?;
            let entry = GrantEntry::decode(&bytes)?;
            if entry.tokens.iter().any(|(_, t)| t.uses_credential_set(id)) {
                mapped.push(key);
            }
        }
        Ok(mapped)
    }

    pub(super) fn get(tree: &Tree, key: &[u8]) -> Result<Option<IVec>, StoreError> {
        tree.get(key).map_err(|e| backend("sled read", e))
    }

    /// Runs `f` as one transaction over the trees a grant's removal spans.
    pub(super) fn transact_grants<T>(
        &self,
        f: impl Fn(&GrantTrees) -> TxResult<T>,
    ) -> Result<T, StoreError> {
        (
            &self.records,
            &self.token_index,
            &self.interactions,
            &self.user_codes,
            &self.instances,
        )
            .transaction(|(records, index, interactions, user_codes, instances)| {
                f(&GrantTrees {
                    records: records.clone(),
                    index: index.clone(),
                    interactions: interactions.clone(),
                    user_codes: user_codes.clone(),
                    instances: instances.clone(),
                })
            })
            .map_err(from_tx)
    }
}
