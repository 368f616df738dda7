//! The server's [`Store`]: sled 0.34.7 on a local directory, one tree per
//! record kind (ARCHITECTURE.md, "Storage", draws the layout). Every change
//! to more than one existing key is one sled transaction (a brand-new grant
//! needs none: `create`); a mutating method returns
//! only once a group commit (`store::commit`) has its change on disk, and
//! so does one that changed nothing, since what it read may not be on disk
//! yet. One process per data directory: sled locks it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ::sled::transaction::{
    ConflictableTransactionError, ConflictableTransactionResult, TransactionError,
    TransactionalTree,
};
use ::sled::{IVec, Transactional as _, Tree};

use super::cache::Cache;
use super::codec::{decode, encode, expires_at};
use super::commit::GroupCommit;
use super::replay::{ReplayBudget, ReplayMemory, ReplaySizes};
use super::{
    CredentialSetRecord, GrantId, GrantRecord, InstanceRecord, InteractionRecord,
    InteractionStatus, ResourceSetRecord, SpentRefresh, Store, StoreError, Swept, TokenHash,
    TokenRecord, UpstreamRecord,
};
use crate::clock::{Clock as _, SystemClock};
use crate::proto::httpsig::nonce::{NonceStore, NonceStoreError, Seen};
use crate::proto::jwk::Thumbprint;

pub use super::commit::{Durability, FlushHold};
pub use check::Checked;

mod check;
mod create;
mod open;
mod refresh;
mod sizes;
mod sweep;
mod tx;

use tx::*;

/// Tree names, as stored in the database.
const GRANTS: &str = "grants";
const CONTINUATIONS: &str = "continuations";
const TOKENS: &str = "tokens";
const MANAGE: &str = "manage";
const INSTANCES: &str = "instances";
/// The replay cache's tree before it moved to memory: dropped at open.
const OLD_NONCES: &str = "nonces";
const CREDENTIAL_SETS: &str = "credential_sets";
const UPSTREAMS: &str = "upstreams";
const RESOURCE_SETS: &str = "resource_sets";
const OAUTH_CLIENTS: &str = "oauth_clients";
const INTERACTIONS: &str = "interactions";
const USER_CODES: &str = "user_codes";
const SPENT_REFRESH: &str = "spent_refresh";

/// The sled-backed store.
pub struct SledStore {
    path: PathBuf,
    grants: Tree,
    continuations: Tree,
    tokens: Tree,
    manage: Tree,
    instances: Tree,
    replay: ReplayMemory,
    /// Decoded tokens by hash, for the gateway's per-call lookup.
    token_cache: Cache<TokenHash, Arc<TokenRecord>>,
    /// Decoded credential sets by id.
    set_cache: Cache<String, Arc<CredentialSetRecord>>,
    credential_sets: Tree,
    upstreams: Tree,
    resource_sets: Tree,
    /// Registered OAuth clients by `client_id` (RFC 7591).
    oauth_clients: Tree,
    interactions: Tree,
    user_codes: Tree,
    /// Refresh tokens rotated away (`refresh`), by hash.
    spent_refresh: Tree,
    commit: GroupCommit,
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl NonceStore for SledStore {
    /// In memory, not in sled: see the module documentation.
    fn remember(
        &self,
        scope: &Thumbprint,
        value: &[u8],
        until: i64,
        now: i64,
    ) -> Result<Seen, NonceStoreError> {
        self.replay
            .budget(ReplayBudget::Bound)
            .remember(scope, value, until, now)
    }

    fn horizon(&self) -> i64 {
        self.replay.budget(ReplayBudget::Bound).horizon()
    }
}

impl Store for SledStore {
    fn replay(&self, budget: ReplayBudget) -> &dyn NonceStore {
        self.replay.budget(budget)
    }

    fn settle(&self) -> Result<(), StoreError> {
        self.commit.wait_durable()
    }

    fn create_grant(
        &self,
        grant: &GrantRecord,
        tokens: &[(TokenHash, TokenRecord)],
    ) -> Result<(), StoreError> {
        let record = encode(grant)?;
        let tokens = EncodedTokens::new(tokens)?;
        self.keep_instance(grant)?;
        self.write_new_grant(grant, &record, &tokens)?;
        self.commit.wait_durable()
    }

    fn create_grant_with_instance(
        &self,
        grant: &GrantRecord,
        tokens: &[(TokenHash, TokenRecord)],
        instance: (&str, &InstanceRecord),
    ) -> Result<(), StoreError> {
        let record = encode(grant)?;
        let tokens = EncodedTokens::new(tokens)?;
        let mut kept = instance.1.clone();
        kept.keep_until(grant.expires_at);
        self.instances
            .insert(instance.0.as_bytes(), encode(&kept)?)
            .map_err(|e| backend("sled insert", e))?;
        self.write_new_grant(grant, &record, &tokens)?;
        self.commit.wait_durable()
    }

    fn grant(&self, id: &GrantId) -> Result<Option<GrantRecord>, StoreError> {
        Self::get(&self.grants, id.0.as_bytes())?
            .map(|b| decode(&b))
            .transpose()
    }

    fn grant_by_continuation(&self, token: &TokenHash) -> Result<Option<GrantRecord>, StoreError> {
        let Some(id) = Self::get(&self.continuations, &token.0)? else {
            return Ok(None);
        };
        let Some(grant) = self.grant(&grant_id(&id)?)? else {
            return Ok(None);
        };
        // Two reads, not one snapshot: if the grant moved on in between, the
        // token no longer continues it.
        Ok(grant
            .continuation
            .as_ref()
            .is_some_and(|c| c.token == *token)
            .then_some(grant))
    }

    fn continuation_swap(
        &self,
        expected: &TokenHash,
        grant: &GrantRecord,
        tokens: &[(TokenHash, TokenRecord)],
    ) -> Result<bool, StoreError> {
        let id = grant.id.0.as_bytes();
        let record = encode(grant)?;
        let tokens = EncodedTokens::new(tokens)?;
        let swapped = self.transact4(|(grants, continuations, tokens_tree, manage)| {
            if continuations
                .get(&expected.0[..])?
                .is_none_or(|current| current.as_ref() != id)
            {
                return Ok(false);
            }
            continuations.remove(&expected.0[..])?;
            if let Some(c) = &grant.continuation {
                continuations.insert(&c.token.0[..], id)?;
            }
            grants.insert(id, record.as_slice())?;
            tokens.insert(tokens_tree, manage)?;
            Ok(true)
        })?;
        self.commit.wait_durable()?;
        Ok(swapped)
    }

    fn delete_grant(&self, expected: &TokenHash) -> Result<bool, StoreError> {
        let deleted = self.transact6(|trees| {
            let Some(id) = trees.1.get(&expected.0[..])? else {
                return Ok(false);
            };
            trees.1.remove(&expected.0[..])?;
            Self::remove_grant6(trees, &id, None)?;
            Ok(true)
        })?;
        if deleted {
            self.token_cache.retire();
        }
        self.commit.wait_durable()?;
        Ok(deleted)
    }

    fn token(&self, token: &TokenHash) -> Result<Option<TokenRecord>, StoreError> {
        Ok(self.token_shared(token)?.map(Arc::unwrap_or_clone))
    }

    fn token_shared(&self, token: &TokenHash) -> Result<Option<Arc<TokenRecord>>, StoreError> {
        let generation = self.token_cache.generation();
        if let Some(record) = self.token_cache.get(token, generation) {
            return Ok(Some(record));
        }
        let record: Option<Arc<TokenRecord>> = Self::get(&self.tokens, &token.0)?
            .map(|b| decode(&b).map(Arc::new))
            .transpose()?;
        if let Some(record) = &record {
            self.token_cache.put(*token, record.clone(), generation);
        }
        Ok(record)
    }

    fn token_by_manage(
        &self,
        manage: &TokenHash,
    ) -> Result<Option<(TokenHash, TokenRecord)>, StoreError> {
        let Some(hash) = Self::get(&self.manage, &manage.0)? else {
            return Ok(None);
        };
        let hash = token_hash(&hash)?;
        let Some(record) = self.token(&hash)? else {
            return Ok(None);
        };
        // Two reads: if the token was rotated in between, this management
        // token no longer manages it.
        Ok((record.manage == *manage).then_some((hash, record)))
    }

    fn token_swap(
        &self,
        manage: &TokenHash,
        old: &TokenHash,
        new: &(TokenHash, TokenRecord),
    ) -> Result<bool, StoreError> {
        let (new_hash, new_record) = new;
        let tokens = EncodedTokens::new(std::slice::from_ref(new))?;
        let grant_id = new_record.grant.0.as_bytes();
        let swapped = (&self.grants, &self.tokens, &self.manage)
            .transaction(|(grants, tokens_tree, manage_tree)| {
                if manage_tree
                    .get(&manage.0[..])?
                    .is_none_or(|current| current.as_ref() != &old.0[..])
                {
                    return Ok(false);
                }
                if !remove_token(tokens_tree, manage_tree, old)? {
                    // An index entry without its token: drop it as well.
                    manage_tree.remove(&manage.0[..])?;
                }
                tokens.insert(tokens_tree, manage_tree)?;
                if let Some(bytes) = grants.get(grant_id)? {
                    let mut grant: GrantRecord = decode(&bytes).map_err(abort)?;
                    grant.tokens.retain(|t| t != old);
                    grant.tokens.push(*new_hash);
                    grants.insert(grant_id, encode(&grant).map_err(abort)?)?;
                }
                Ok(true)
            })
            .map_err(from_tx)?;
        if swapped {
            self.token_cache.retire();
        }
        self.commit.wait_durable()?;
        Ok(swapped)
    }

    fn revoke_token(&self, manage: &TokenHash) -> Result<bool, StoreError> {
        let revoked = self.transact_tokens(|tokens, manage_tree| {
            let Some(hash) = manage_tree.get(&manage.0[..])? else {
                return Ok(false);
            };
            manage_tree.remove(&manage.0[..])?;
            remove_token(tokens, manage_tree, &token_hash(&hash).map_err(abort)?)?;
            Ok(true)
        })?;
        if revoked {
            self.token_cache.retire();
        }
        self.commit.wait_durable()?;
        Ok(revoked)
    }

    fn create_instance(&self, id: &str, instance: &InstanceRecord) -> Result<(), StoreError> {
        self.instances
            .insert(id.as_bytes(), encode(instance)?)
            .map_err(|e| backend("sled write", e))?;
        self.commit.wait_durable()
    }

    fn instance(&self, id: &str) -> Result<Option<InstanceRecord>, StoreError> {
        Self::get(&self.instances, id.as_bytes())?
            .map(|b| decode(&b))
            .transpose()
    }

    fn put_credential_set(&self, set: &CredentialSetRecord) -> Result<(), StoreError> {
        self.credential_sets
            .insert(set.id.as_bytes(), encode(set)?)
            .map_err(|e| backend("sled write", e))?;
        self.set_cache.retire();
        self.commit.wait_durable()
    }

    fn credential_set(&self, id: &str) -> Result<Option<CredentialSetRecord>, StoreError> {
        Ok(self.credential_set_shared(id)?.map(Arc::unwrap_or_clone))
    }

    fn credential_set_shared(
        &self,
        id: &str,
    ) -> Result<Option<Arc<CredentialSetRecord>>, StoreError> {
        let generation = self.set_cache.generation();
        if let Some(set) = self.set_cache.get(id, generation) {
            return Ok(Some(set));
        }
        let set: Option<Arc<CredentialSetRecord>> =
            Self::get(&self.credential_sets, id.as_bytes())?
                .map(|b| decode(&b).map(Arc::new))
                .transpose()?;
        if let Some(set) = &set {
            self.set_cache.put(id.to_owned(), set.clone(), generation);
        }
        Ok(set)
    }

    fn remove_credential_set(&self, id: &str) -> Result<bool, StoreError> {
        let mapped = self.tokens_mapped_to(id)?;
        let removed = self.remove_mapped(Some(id), id, &mapped)?;
        if removed {
            // A token minted between the scan and the transaction: the set
            // is gone now, so revoke it too.
            let late = self.tokens_mapped_to(id)?;
            if !late.is_empty() {
                self.remove_mapped(None, id, &late)?;
            }
        }
        self.commit.wait_durable()?;
        Ok(removed)
    }

    fn credential_sets(&self) -> Result<Vec<CredentialSetRecord>, StoreError> {
        self.credential_sets
            .iter()
            .map(|entry| {
                let (_, bytes) = entry.map_err(|e| backend("sled scan", e))?;
                decode(&bytes)
            })
            .collect()
    }

    fn put_upstream(&self, upstream: &UpstreamRecord) -> Result<(), StoreError> {
        self.upstreams
            .insert(upstream.name.as_bytes(), encode(upstream)?)
            .map_err(|e| backend("sled write", e))?;
        self.commit.wait_durable()
    }

    fn upstreams(&self) -> Result<Vec<UpstreamRecord>, StoreError> {
        self.upstreams
            .iter()
            .map(|entry| {
                let (_, bytes) = entry.map_err(|e| backend("sled scan", e))?;
                decode(&bytes)
            })
            .collect()
    }

    fn remove_upstream(&self, name: &str) -> Result<bool, StoreError> {
        let removed = self
            .upstreams
            .remove(name.as_bytes())
            .map_err(|e| backend("sled write", e))?
            .is_some();
        self.commit.wait_durable()?;
        Ok(removed)
    }

    fn sweep(&self, now: i64) -> Result<Swept, StoreError> {
        let mut swept = Swept::default();
        self.sweep_grants(now, &mut swept)?;
        self.sweep_tokens(now, &mut swept)?;
        self.sweep_instances(now, &mut swept)?;
        self.sweep_spent_refresh(now)?;
        if swept != Swept::default() {
            self.token_cache.retire();
        }
        self.commit.wait_durable()?;
        Ok(swept)
    }

    // --- RFC 9767: resources registered by resource servers --------------

    fn register_resource_set(
        &self,
        reference: &str,
        set: &ResourceSetRecord,
    ) -> Result<bool, StoreError> {
        let bytes = encode(set)?;
        let inserted = self
            .resource_sets
            .compare_and_swap(reference.as_bytes(), None::<&[u8]>, Some(bytes))
            .map_err(|e| backend("sled compare-and-swap", e))?
            .is_ok();
        self.commit.wait_durable()?;
        Ok(inserted)
    }

    fn resource_set(&self, reference: &str) -> Result<Option<ResourceSetRecord>, StoreError> {
        Self::get(&self.resource_sets, reference.as_bytes())?
            .map(|b| decode(&b))
            .transpose()
    }

    fn put_oauth_client(&self, record: &super::OAuthClientRecord) -> Result<(), StoreError> {
        self.oauth_clients
            .insert(record.client.client_id.as_bytes(), encode(record)?)
            .map_err(|e| backend("sled write", e))?;
        self.commit.wait_durable()
    }

    fn oauth_client(
        &self,
        client_id: &str,
    ) -> Result<Option<super::OAuthClientRecord>, StoreError> {
        Self::get(&self.oauth_clients, client_id.as_bytes())?
            .map(|b| decode(&b))
            .transpose()
    }

    fn oauth_client_count(&self) -> Result<usize, StoreError> {
        // A scan: called only when a registration is about to be kept.
        Ok(self.oauth_clients.len())
    }

    fn sweep_oauth_clients(&self, now: i64) -> Result<usize, StoreError> {
        let mut removed = 0;
        for entry in self.oauth_clients.iter() {
            let (id, bytes) = entry.map_err(|e| backend("sled scan", e))?;
            let expired = decode::<super::OAuthClientRecord>(&bytes)
                .map(|c| c.expires_at < now)
                .unwrap_or(false);
            // Removed only if unchanged since read: a concurrent use that
            // moved the expiry keeps the client.
            if expired
                && self
                    .oauth_clients
                    .compare_and_swap(&id, Some(bytes), None::<&[u8]>)
                    .map_err(|e| backend("sled compare-and-swap", e))?
                    .is_ok()
            {
                removed += 1;
            }
        }
        self.commit.wait_durable()?;
        Ok(removed)
    }

    // --- RFC 9635 §4: interaction ----------------------------------------

    fn create_interaction_grant(
        &self,
        grant: &GrantRecord,
        interaction: &InteractionRecord,
        instance: Option<(&str, &InstanceRecord)>,
    ) -> Result<(), StoreError> {
        let id = grant.id.0.as_bytes();
        let record = encode(grant)?;
        let interaction_bytes = encode(interaction)?;
        let instance = instance
            .map(|(name, record)| {
                let mut kept = record.clone();
                kept.keep_until(grant.expires_at);
                Ok::<_, StoreError>((name, encode(&kept)?))
            })
            .transpose()?;
        (
            &self.grants,
            &self.continuations,
            &self.interactions,
            &self.user_codes,
            &self.instances,
        )
            .transaction(
                |(grants, continuations, interactions, user_codes, instances)| {
                    if let Some(c) = &grant.continuation {
                        continuations.insert(&c.token.0[..], id)?;
                    }
                    if let Some(code) = &interaction.user_code {
                        user_codes.insert(&code.0[..], id)?;
                    }
                    match &instance {
                        Some((name, bytes)) => {
                            instances.insert(name.as_bytes(), bytes.as_slice())?;
                        }
                        None => keep_instance(instances, grant)?,
                    }
                    grants.insert(id, record.as_slice())?;
                    interactions.insert(id, interaction_bytes.as_slice())?;
                    Ok(())
                },
            )
            .map_err(from_tx)?;
        self.commit.wait_durable()
    }

    fn interaction(&self, grant: &GrantId) -> Result<Option<InteractionRecord>, StoreError> {
        Self::get(&self.interactions, grant.0.as_bytes())?
            .map(|b| decode(&b))
            .transpose()
    }

    fn interaction_by_user_code(
        &self,
        code: &TokenHash,
    ) -> Result<Option<InteractionRecord>, StoreError> {
        let Some(id) = Self::get(&self.user_codes, &code.0)? else {
            return Ok(None);
        };
        // Two reads: a decision in between removed the index, and the
        // record then says it is no longer pending.
        Ok(self
            .interaction(&grant_id(&id)?)?
            .filter(|i| i.user_code.as_ref() == Some(code)))
    }

    fn pending_interactions(&self) -> Result<Vec<InteractionRecord>, StoreError> {
        let mut all = Vec::new();
        for entry in self.interactions.iter() {
            let (_, bytes) = entry.map_err(|e| backend("sled scan", e))?;
            let record: InteractionRecord = decode(&bytes)?;
            if record.status == InteractionStatus::Pending {
                all.push(record);
            }
        }
        all.sort_by(|a, b| (a.created_at, &a.grant).cmp(&(b.created_at, &b.grant)));
        Ok(all)
    }

    fn decide_interaction(
        &self,
        grant: &GrantId,
        decision: &InteractionStatus,
    ) -> Result<bool, StoreError> {
        let id = grant.0.as_bytes();
        let decided = (&self.interactions, &self.user_codes)
            .transaction(|(interactions, user_codes)| {
                let Some(bytes) = interactions.get(id)? else {
                    return Ok(false);
                };
                let mut record: InteractionRecord = decode(&bytes).map_err(abort)?;
                if record.status != InteractionStatus::Pending {
                    return Ok(false);
                }
                record.status = decision.clone();
                interactions.insert(id, encode(&record).map_err(abort)?)?;
                if let Some(code) = &record.user_code {
                    user_codes.remove(&code.0[..])?;
                }
                Ok(true)
            })
            .map_err(from_tx)?;
        self.commit.wait_durable()?;
        Ok(decided)
    }

    fn finish_interaction(
        &self,
        expected: &TokenHash,
        grant: &GrantRecord,
        tokens: &[(TokenHash, TokenRecord)],
        at: i64,
    ) -> Result<bool, StoreError> {
        let id = grant.id.0.as_bytes();
        let record = encode(grant)?;
        let tokens = EncodedTokens::new(tokens)?;
        let finished = (
            &self.grants,
            &self.continuations,
            &self.tokens,
            &self.manage,
            &self.interactions,
            &self.instances,
        )
            .transaction(
                |(grants, continuations, tokens_tree, manage, interactions, instances)| {
                    if continuations
                        .get(&expected.0[..])?
                        .is_none_or(|current| current.as_ref() != id)
                    {
                        return Ok(false);
                    }
                    let Some(bytes) = interactions.get(id)? else {
                        return Ok(false);
                    };
                    let mut interaction: InteractionRecord = decode(&bytes).map_err(abort)?;
                    if !matches!(interaction.status, InteractionStatus::Approved { .. }) {
                        return Ok(false);
                    }
                    interaction.status = interaction.status.finished(at);
                    interactions.insert(id, encode(&interaction).map_err(abort)?)?;
                    continuations.remove(&expected.0[..])?;
                    if let Some(c) = &grant.continuation {
                        continuations.insert(&c.token.0[..], id)?;
                    }
                    grants.insert(id, record.as_slice())?;
                    tokens.insert(tokens_tree, manage)?;
                    keep_instance(instances, grant)?;
                    Ok(true)
                },
            )
            .map_err(from_tx)?;
        self.commit.wait_durable()?;
        Ok(finished)
    }

    fn spend_refresh(&self, refresh: &TokenHash, spent: &SpentRefresh) -> Result<(), StoreError> {
        self.put_spent_refresh(refresh, spent)
    }

    fn spent_refresh(&self, refresh: &TokenHash) -> Result<Option<SpentRefresh>, StoreError> {
        self.get_spent_refresh(refresh)
    }

    fn table_sizes(&self) -> Result<Vec<(String, super::TableSize)>, StoreError> {
        self.sizes()
    }
}
