//! The server's [`Store`]: sled 0.34.7 on a local directory (ARCHITECTURE.md,
//! "Storage", draws the layout). A grant and the tokens issued under it are
//! one record (`entry`), found from any of its token hashes (`lookup`) and
//! changed by a compare-and-swap of that one key; a change that spans the
//! grant and its interaction is one sled transaction. A mutating method
//! returns only once a group commit (`store::commit`) has its change on
//! disk, and so does one that changed nothing, since what it read may not be
//! on disk yet. One process per data directory: sled locks it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ::sled::transaction::{
    ConflictableTransactionError, ConflictableTransactionResult, TransactionError,
    TransactionalTree,
};
use ::sled::{IVec, Transactional as _, Tree};

use super::cache::Cache;
use super::codec::{decode, encode};
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
pub use open::{DEFAULT_CACHE_BYTES, Tuning, checkpoint};

mod check;
mod compact;
mod create;
mod entry;
mod lookup;
mod migrate;
mod open;
mod refresh;
mod sizes;
mod sweep;
mod tx;

use entry::{EntryExpiry, GrantEntry, grant_key};
use lookup::{tx_find, tx_index_unlocated};
use tx::*;

/// Tree names, as stored in the database.
/// Grants with their tokens, one record each (`entry`).
const RECORDS: &str = "grant_records";
/// Token hashes that do not locate their grant's record, to its key.
const TOKEN_INDEX: &str = "token_index";
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
    records: Tree,
    token_index: Tree,
    instances: Tree,
    replay: ReplayMemory,
    /// Decoded tokens by hash, for the gateway's per-call lookup.
    token_cache: Cache<TokenHash, Arc<TokenRecord>>,
    /// Decoded credential sets by id.
    set_cache: Cache<String, Arc<CredentialSetRecord>>,
    /// Leases: this process is the only node.
    leases: super::lease::LocalLeases,
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
        self.keep_instance(grant)?;
        self.write_new_grant(grant, tokens, None)?;
        self.commit.wait_durable()
    }

    fn create_grant_with_instance(
        &self,
        grant: &GrantRecord,
        tokens: &[(TokenHash, TokenRecord)],
        instance: (&str, &InstanceRecord),
    ) -> Result<(), StoreError> {
        let mut kept = instance.1.clone();
        kept.keep_until(grant.expires_at);
        if instance.0 == grant.id.0 {
            self.write_new_grant(grant, tokens, Some(&kept))?;
        } else {
            self.instances
                .insert(instance.0.as_bytes(), encode(&kept)?)
                .map_err(|e| backend("sled insert", e))?;
            self.write_new_grant(grant, tokens, None)?;
        }
        self.commit.wait_durable()
    }

    fn grant(&self, id: &GrantId) -> Result<Option<GrantRecord>, StoreError> {
        let Some(bytes) = Self::get(&self.records, &grant_key(id))? else {
            return Ok(None);
        };
        let entry = GrantEntry::decode(&bytes)?;
        Ok((entry.grant.id == *id).then_some(entry.grant))
    }

    fn grant_by_continuation(&self, token: &TokenHash) -> Result<Option<GrantRecord>, StoreError> {
        Ok(self
            .find(token, |e| e.continued_by(token).then_some(()))?
            .map(|found| found.entry.grant))
    }

    fn continuation_swap(
        &self,
        expected: &TokenHash,
        grant: &GrantRecord,
        tokens: &[(TokenHash, TokenRecord)],
    ) -> Result<bool, StoreError> {
        let key = grant_key(&grant.id);
        let new_hashes = grant.continuation.iter().map(|c| &c.token);
        let token_hashes = tokens.iter().flat_map(|(h, t)| [h, &t.manage]);
        self.index_unlocated(&key, new_hashes.chain(token_hashes))?;
        let swapped = self
            .change(expected, |entry| {
                if entry.grant.id != grant.id || !entry.continued_by(expected) {
                    return None;
                }
                entry.set_grant(grant.clone());
                entry.add_tokens(tokens);
                Some(())
            })?
            .is_some();
        self.commit.wait_durable()?;
        Ok(swapped)
    }

    fn delete_grant(&self, expected: &TokenHash) -> Result<bool, StoreError> {
        let deleted = self.transact_grants(|trees| {
            let Some(found) = tx_find(&trees.records, &trees.index, expected, |e| {
                e.continued_by(expected).then_some(())
            })?
            else {
                return Ok(false);
            };
            remove_entry(trees, &found.key, &found.entry, None)?;
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
        self.token_cache.read_through(token, || {
            Ok(self
                .find(token, |e| e.token(token).cloned())?
                .map(|found| Arc::new(found.value)))
        })
    }

    fn token_by_manage(
        &self,
        manage: &TokenHash,
    ) -> Result<Option<(TokenHash, TokenRecord)>, StoreError> {
        Ok(self
            .find(manage, |e| e.managed_by(manage).cloned())?
            .map(|found| found.value))
    }

    fn token_swap(
        &self,
        manage: &TokenHash,
        old: &TokenHash,
        new: &(TokenHash, TokenRecord),
    ) -> Result<bool, StoreError> {
        let (new_hash, new_record) = new;
        self.index_unlocated(
            &grant_key(&new_record.grant),
            [new_hash, &new_record.manage].into_iter(),
        )?;
        let swapped = self
            .change(manage, |entry| {
                let at = entry
                    .tokens
                    .iter()
                    .position(|(h, t)| h.same_as(old) && t.manage.same_as(manage))?;
                entry.tokens.remove(at);
                entry.add_tokens(std::slice::from_ref(new));
                let mut grant = entry.grant.clone();
                grant.tokens.retain(|t| t != old);
                grant.tokens.push(*new_hash);
                entry.set_grant(grant);
                Some(())
            })?
            .is_some();
        if swapped {
            self.token_cache.retire();
        }
        self.commit.wait_durable()?;
        Ok(swapped)
    }

    fn revoke_token(&self, manage: &TokenHash) -> Result<bool, StoreError> {
        let revoked = self
            .change(manage, |entry| {
                (entry.remove_tokens(|_, t| t.manage.same_as(manage)) > 0).then_some(())
            })?
            .is_some();
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
        let grant = GrantId(id.to_owned());
        if let Some(bytes) = Self::get(&self.records, &grant_key(&grant))? {
            let entry = GrantEntry::decode(&bytes)?;
            if entry.grant.id == grant
                && let Some(instance) = entry.instance
            {
                return Ok(Some(instance));
            }
        }
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
        self.set_cache.read_through(id, || {
            Self::get(&self.credential_sets, id.as_bytes())?
                .map(|b| decode(&b).map(Arc::new))
                .transpose()
        })
    }

    fn remove_credential_set(&self, id: &str) -> Result<bool, StoreError> {
        let mapped = self.records_mapped_to(id)?;
        let removed = self.remove_mapped(Some(id), id, &mapped)?;
        if removed {
            // A token minted between the scan and the transaction: the set
            // is gone now, so revoke it too.
            let late = self.records_mapped_to(id)?;
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
        self.sweep_index()?;
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
        let key = grant_key(&grant.id);
        let kept = instance.map(|(name, record)| {
            let mut kept = record.clone();
            kept.keep_until(grant.expires_at);
            (name, kept)
        });
        // An instance named after this grant lives in its record.
        let (own, other) = match kept {
            Some((name, kept)) if name == grant.id.0 => (Some(kept), None),
            other => (None, other),
        };
        let record = compact::encode(grant, &[], own.as_ref())?;
        let interaction_bytes = encode(interaction)?;
        let instance = other
            .map(|(name, kept)| Ok::<_, StoreError>((name, encode(&kept)?)))
            .transpose()?;
        let interaction_key = grant.id.0.as_bytes();
        (
            &self.records,
            &self.token_index,
            &self.interactions,
            &self.user_codes,
            &self.instances,
        )
            .transaction(|(records, index, interactions, user_codes, instances)| {
                tx_index_unlocated(index, &key, grant.continuation.iter().map(|c| &c.token))?;
                if let Some(code) = &interaction.user_code {
                    user_codes.insert(&code.0[..], interaction_key)?;
                }
                match &instance {
                    Some((name, bytes)) => {
                        instances.insert(name.as_bytes(), bytes.as_slice())?;
                    }
                    None if own.is_some() => {}
                    None => keep_instance(records, instances, grant)?,
                }
                records.insert(&key[..], record.as_slice())?;
                interactions.insert(interaction_key, interaction_bytes.as_slice())?;
                Ok(())
            })
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
        let interaction_key = grant.id.0.as_bytes();
        let finished = (
            &self.records,
            &self.token_index,
            &self.interactions,
            &self.instances,
        )
            .transaction(|(records, index, interactions, instances)| {
                let Some(found) = tx_find(records, index, expected, |e| {
                    (e.grant.id == grant.id && e.continued_by(expected)).then_some(())
                })?
                else {
                    return Ok(false);
                };
                let Some(bytes) = interactions.get(interaction_key)? else {
                    return Ok(false);
                };
                let mut interaction: InteractionRecord = decode(&bytes).map_err(abort)?;
                if !matches!(interaction.status, InteractionStatus::Approved { .. }) {
                    return Ok(false);
                }
                interaction.status = interaction.status.finished(at);
                interactions.insert(interaction_key, encode(&interaction).map_err(abort)?)?;
                let mut entry = found.entry;
                entry.set_grant(grant.clone());
                entry.add_tokens(tokens);
                let own = entry
                    .instance
                    .as_mut()
                    .filter(|_| grant.instance_id.as_deref() == Some(grant.id.0.as_str()));
                match own {
                    Some(instance) => {
                        instance.keep_until(grant.expires_at);
                    }
                    None => keep_instance(records, instances, grant)?,
                }
                tx_index_unlocated(index, &found.key, entry.hashes())?;
                records.insert(found.key, entry.encode().map_err(abort)?)?;
                Ok(true)
            })
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

    fn take_lease(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        until: i64,
    ) -> Result<bool, StoreError> {
        self.leases.take(name, holder, now, until)
    }

    fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        self.leases.release(name, holder)
    }

    fn table_sizes(&self) -> Result<Vec<(String, super::TableSize)>, StoreError> {
        self.sizes()
    }
}

/// For the fuzz harness (`fuzzing::grant_record`): reads `bytes` as a
/// stored grant record, in either form, and its expiries from the header
/// alone. An entry that reads must be written again (always compact) to
/// bytes that read back to the same entry with the same expiries; any
/// other outcome is the property broken, said in the `Err`. Never panics.
#[doc(hidden)]
pub fn danger_check_record_bytes(bytes: &[u8]) -> Result<(), String> {
    let header = EntryExpiry::of(bytes);
    let Ok(entry) = GrantEntry::decode(bytes) else {
        return Ok(());
    };
    let written = entry
        .encode()
        .map_err(|e| format!("an entry that reads does not write: {e}"))?;
    let again =
        GrantEntry::decode(&written).map_err(|e| format!("written bytes do not read: {e}"))?;
    if again != entry {
        return Err(format!(
            "written again it reads otherwise: {entry:?} / {again:?}"
        ));
    }
    let due = EntryExpiry::of(&written).map_err(|e| format!("no header: {e}"))?;
    if (due.expires_at, due.tokens_expire) != (entry.expires_at, entry.tokens_expire) {
        return Err(format!("the header says {due:?} of {entry:?}"));
    }
    if let Ok(first) = header
        && (first.expires_at, first.tokens_expire) != (entry.expires_at, entry.tokens_expire)
    {
        return Err(format!("the stored header says {first:?} of {entry:?}"));
    }
    Ok(())
}
