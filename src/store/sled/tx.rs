//! The building blocks of the store's sled transactions: error
//! conversions, key decoding, and the removals and inserts that several
//! mutating methods share inside one transaction.

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

pub(super) fn token_hash(bytes: &[u8]) -> Result<TokenHash, StoreError> {
    <[u8; 32]>::try_from(bytes).map(TokenHash).map_err(|_| {
        StoreError::Backend(format!(
            "a token hash index entry has {} bytes",
            bytes.len()
        ))
    })
}

pub(super) fn grant_id(bytes: &[u8]) -> Result<GrantId, StoreError> {
    std::str::from_utf8(bytes)
        .map(|s| GrantId(s.to_owned()))
        .map_err(|_| StoreError::Backend("a grant id index entry is not UTF-8".into()))
}

/// Tokens encoded ahead of a transaction, so its closure (which runs under
/// sled's global write lock, and may run twice) does no serialization.
pub(super) struct EncodedTokens(Vec<(TokenHash, TokenHash, Vec<u8>)>);

impl EncodedTokens {
    pub(super) fn new(tokens: &[(TokenHash, TokenRecord)]) -> Result<Self, StoreError> {
        tokens
            .iter()
            .map(|(hash, record)| Ok((*hash, record.manage, encode(record)?)))
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// Each token's hash, management token hash and encoded record.
    pub(super) fn iter(&self) -> impl Iterator<Item = &(TokenHash, TokenHash, Vec<u8>)> {
        self.0.iter()
    }

    pub(super) fn insert(
        &self,
        tokens: &TransactionalTree,
        manage: &TransactionalTree,
    ) -> TxResult<()> {
        for (hash, manage_hash, bytes) in &self.0 {
            manage.insert(&manage_hash.0[..], &hash.0[..])?;
            tokens.insert(&hash.0[..], bytes.as_slice())?;
        }
        Ok(())
    }
}

/// Removes a token and its management index inside a transaction; true if it
/// was there.
pub(super) fn remove_token(
    tokens: &TransactionalTree,
    manage: &TransactionalTree,
    hash: &TokenHash,
) -> TxResult<bool> {
    match tokens.remove(&hash.0[..])? {
        Some(bytes) => {
            let record: TokenRecord = decode(&bytes).map_err(abort)?;
            manage.remove(&record.manage.0[..])?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// Removes a grant, its continuation index and its tokens inside a
/// transaction; the number of tokens removed, or `None` if there was no
/// grant. With `expired_before`, only a grant that expired before it.
pub(super) fn remove_grant(
    (grants, continuations, tokens, manage): &(
        TransactionalTree,
        TransactionalTree,
        TransactionalTree,
        TransactionalTree,
    ),
    id: &[u8],
    expired_before: Option<i64>,
) -> TxResult<Option<usize>> {
    let Some(bytes) = grants.get(id)? else {
        return Ok(None);
    };
    let grant: GrantRecord = decode(&bytes).map_err(abort)?;
    if expired_before.is_some_and(|now| grant.expires_at >= now) {
        return Ok(None);
    }
    grants.remove(id)?;
    if let Some(c) = &grant.continuation {
        // Only the index entry that points at this grant.
        if continuations
            .get(&c.token.0[..])?
            .is_some_and(|v| v.as_ref() == id)
        {
            continuations.remove(&c.token.0[..])?;
        }
    }
    let mut removed = 0;
    for hash in &grant.tokens {
        if remove_token(tokens, manage, hash)? {
            removed += 1;
        }
    }
    Ok(Some(removed))
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
/// inside a transaction ([`InstanceRecord::keep_until`]).
pub(super) fn keep_instance(instances: &TransactionalTree, grant: &GrantRecord) -> TxResult<()> {
    let Some(id) = &grant.instance_id else {
        return Ok(());
    };
    let Some(bytes) = instances.get(id.as_bytes())? else {
        return Ok(());
    };
    let mut instance: InstanceRecord = decode(&bytes).map_err(abort)?;
    if instance.keep_until(grant.expires_at) {
        instances.insert(id.as_bytes(), encode(&instance).map_err(abort)?)?;
    }
    Ok(())
}

/// The six trees a grant with an interaction spans.
pub(super) type Trees6 = (
    TransactionalTree,
    TransactionalTree,
    TransactionalTree,
    TransactionalTree,
    TransactionalTree,
    TransactionalTree,
);

impl SledStore {
    /// In one transaction: removes credential set `set` (if given; `false`
    /// if it is not there, and nothing else changes) and those of `mapped`
    /// that are still mapped to credential set `id`.
    pub(super) fn remove_mapped(
        &self,
        set: Option<&str>,
        id: &str,
        mapped: &[TokenHash],
    ) -> Result<bool, StoreError> {
        (&self.credential_sets, &self.tokens, &self.manage)
            .transaction(|(sets, tokens, manage)| {
                if let Some(set) = set
                    && sets.remove(set.as_bytes())?.is_none()
                {
                    return Ok(false);
                }
                for hash in mapped {
                    // Looked at again: it may have been rotated or revoked.
                    let Some(bytes) = tokens.get(&hash.0[..])? else {
                        continue;
                    };
                    let record: TokenRecord = decode(&bytes).map_err(abort)?;
                    if record.uses_credential_set(id) {
                        remove_token(tokens, manage, hash)?;
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

    /// The hashes of the tokens mapped to credential set `id` (a scan).
    pub(super) fn tokens_mapped_to(&self, id: &str) -> Result<Vec<TokenHash>, StoreError> {
        let mut mapped = Vec::new();
        for entry in self.tokens.iter() {
            let (hash, bytes) = entry.map_err(|e| backend("sled scan", e))?;
            let record: TokenRecord = decode(&bytes)?;
            if record.uses_credential_set(id) {
                mapped.push(token_hash(&hash)?);
            }
        }
        Ok(mapped)
    }

    pub(super) fn get(tree: &Tree, key: &[u8]) -> Result<Option<IVec>, StoreError> {
        tree.get(key).map_err(|e| backend("sled read", e))
    }

    /// Runs `f` as one transaction over the grant, continuation, token and
    /// management trees.
    pub(super) fn transact4<T>(
        &self,
        f: impl Fn(
            &(
                TransactionalTree,
                TransactionalTree,
                TransactionalTree,
                TransactionalTree,
            ),
        ) -> TxResult<T>,
    ) -> Result<T, StoreError> {
        (
            &self.grants,
            &self.continuations,
            &self.tokens,
            &self.manage,
        )
            .transaction(|trees| f(trees))
            .map_err(from_tx)
    }

    /// Runs `f` as one transaction over the grant, continuation, token,
    /// management, interaction and user code trees.
    pub(super) fn transact6<T>(&self, f: impl Fn(&Trees6) -> TxResult<T>) -> Result<T, StoreError> {
        (
            &self.grants,
            &self.continuations,
            &self.tokens,
            &self.manage,
            &self.interactions,
            &self.user_codes,
        )
            .transaction(|trees| f(trees))
            .map_err(from_tx)
    }

    /// Removes grant `id` (if it expired before `expired_before`, when
    /// given) with its interaction, inside a six-tree transaction.
    pub(super) fn remove_grant6(
        trees: &Trees6,
        id: &[u8],
        expired_before: Option<i64>,
    ) -> TxResult<Option<usize>> {
        let four = (
            trees.0.clone(),
            trees.1.clone(),
            trees.2.clone(),
            trees.3.clone(),
        );
        let removed = remove_grant(&four, id, expired_before)?;
        if removed.is_some() {
            remove_interaction(&trees.4, &trees.5, id)?;
        }
        Ok(removed)
    }

    /// Runs `f` as one transaction over the token and management trees.
    pub(super) fn transact_tokens<T>(
        &self,
        f: impl Fn(&TransactionalTree, &TransactionalTree) -> TxResult<T>,
    ) -> Result<T, StoreError> {
        (&self.tokens, &self.manage)
            .transaction(|(tokens, manage)| f(tokens, manage))
            .map_err(from_tx)
    }
}
