//! An in-memory [`Store`]: the contract without a disk, for unit tests and
//! for the services' own tests. One lock makes every method atomic.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use super::replay::{ReplayBudget, ReplayMemory, ReplaySizes};
use super::{
    CredentialSetRecord, GrantId, GrantRecord, InstanceRecord, InteractionRecord,
    InteractionStatus, ResourceSetRecord, SpentRefresh, Store, StoreError, Swept, TokenHash,
    TokenRecord, UpstreamRecord,
};
use crate::proto::httpsig::nonce::{NonceStore, NonceStoreError, Seen};
use crate::proto::jwk::Thumbprint;

#[derive(Debug, Default)]
struct Inner {
    grants: HashMap<GrantId, GrantRecord>,
    continuations: HashMap<TokenHash, GrantId>,
    tokens: HashMap<TokenHash, TokenRecord>,
    manage: HashMap<TokenHash, TokenHash>,
    instances: HashMap<String, InstanceRecord>,
    credential_sets: HashMap<String, CredentialSetRecord>,
    upstreams: HashMap<String, UpstreamRecord>,
    resource_sets: HashMap<String, ResourceSetRecord>,
    oauth_clients: HashMap<String, super::OAuthClientRecord>,
    interactions: HashMap<GrantId, InteractionRecord>,
    user_codes: HashMap<TokenHash, GrantId>,
    spent_refresh: HashMap<TokenHash, SpentRefresh>,
}

impl Inner {
    fn insert_tokens(&mut self, tokens: &[(TokenHash, TokenRecord)]) {
        for (hash, record) in tokens {
            self.manage.insert(record.manage, *hash);
            self.tokens.insert(*hash, record.clone());
        }
    }

    fn remove_token(&mut self, hash: &TokenHash) -> bool {
        match self.tokens.remove(hash) {
            Some(record) => {
                self.manage.remove(&record.manage);
                true
            }
            None => false,
        }
    }

    /// Keeps the instance `grant` names until at least its expiry.
    fn keep_instance(&mut self, grant: &GrantRecord) {
        if let Some(id) = &grant.instance_id
            && let Some(instance) = self.instances.get_mut(id)
        {
            instance.keep_until(grant.expires_at);
        }
    }

    fn remove_grant(&mut self, id: &GrantId) -> usize {
        if let Some(interaction) = self.interactions.remove(id)
            && let Some(code) = &interaction.user_code
        {
            self.user_codes.remove(code);
        }
        let Some(grant) = self.grants.remove(id) else {
            return 0;
        };
        if let Some(c) = &grant.continuation {
            self.continuations.remove(&c.token);
        }
        grant.tokens.iter().filter(|t| self.remove_token(t)).count()
    }
}

impl Inner {
    /// The maps grouped as the sled store groups its tables: a grant with
    /// its tokens, the lookup indexes (continuation and management hashes
    /// here, where the sled store needs none for the hashes gnapd mints),
    /// and the rest one for one. Bytes are each record's encoding.
    fn sizes(&self) -> Result<Vec<(String, super::TableSize)>, StoreError> {
        use super::TableSize;
        use super::codec::encode;
        fn table<K, V>(
            map: &HashMap<K, V>,
            bytes: impl Fn(&K, &V) -> Result<(usize, usize), StoreError>,
        ) -> Result<TableSize, StoreError> {
            let mut size = TableSize::default();
            for (key, value) in map {
                let (k, v) = bytes(key, value)?;
                size.add(k, v);
            }
            Ok(size)
        }
        const HASH: usize = 32;
        let grants = table(&self.grants, |id, g| {
            let mut tokens = 0;
            for (hash, token) in g.tokens.iter().filter_map(|h| self.tokens.get_key_value(h)) {
                tokens += hash.0.len() + encode(token)?.len();
            }
            Ok((id.0.len(), encode(g)?.len() + tokens))
        })?;
        let continuations = table(&self.continuations, |_, id| Ok((HASH, id.0.len())))?;
        let manage = table(&self.manage, |_, _| Ok((HASH, HASH)))?;
        let index = TableSize {
            records: continuations.records + manage.records,
            bytes: continuations.bytes + manage.bytes,
        };
        let sizes = [
            grants,
            index,
            table(&self.instances, |id, i| Ok((id.len(), encode(i)?.len())))?,
            table(&self.credential_sets, |id, s| {
                Ok((id.len(), encode(s)?.len()))
            })?,
            table(&self.upstreams, |name, u| {
                Ok((name.len(), encode(u)?.len()))
            })?,
            table(&self.resource_sets, |r, s| Ok((r.len(), encode(s)?.len())))?,
            table(&self.oauth_clients, |id, c| {
                Ok((id.len(), encode(c)?.len()))
            })?,
            table(&self.interactions, |id, i| {
                Ok((id.0.len(), encode(i)?.len()))
            })?,
            table(&self.user_codes, |_, id| Ok((HASH, id.0.len())))?,
            table(&self.spent_refresh, |_, s| Ok((HASH, encode(s)?.len())))?,
        ];
        Ok(super::TABLES
            .iter()
            .map(|name| (*name).to_owned())
            .zip(sizes)
            .collect())
    }
}

/// The in-memory store.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    replay: ReplayMemory,
    leases: super::lease::LocalLeases,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store whose replay budgets have `sizes`.
    pub fn with_replay_sizes(sizes: ReplaySizes) -> Self {
        Self {
            inner: Mutex::default(),
            replay: ReplayMemory::new(sizes, i64::MIN),
            leases: Default::default(),
        }
    }

    fn lock(&self) -> Result<MutexGuard<'_, Inner>, StoreError> {
        self.inner
            .lock()
            .map_err(|_| StoreError::Backend("memory store lock poisoned".into()))
    }
}

impl NonceStore for MemoryStore {
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
}

impl Store for MemoryStore {
    fn replay(&self, budget: ReplayBudget) -> &dyn NonceStore {
        self.replay.budget(budget)
    }

    fn create_grant(
        &self,
        grant: &GrantRecord,
        tokens: &[(TokenHash, TokenRecord)],
    ) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        if let Some(c) = &grant.continuation {
            inner.continuations.insert(c.token, grant.id.clone());
        }
        inner.grants.insert(grant.id.clone(), grant.clone());
        inner.insert_tokens(tokens);
        inner.keep_instance(grant);
        Ok(())
    }

    fn grant(&self, id: &GrantId) -> Result<Option<GrantRecord>, StoreError> {
        Ok(self.lock()?.grants.get(id).cloned())
    }

    fn grant_by_continuation(&self, token: &TokenHash) -> Result<Option<GrantRecord>, StoreError> {
        let inner = self.lock()?;
        Ok(inner
            .continuations
            .get(token)
            .and_then(|id| inner.grants.get(id))
            .cloned())
    }

    fn continuation_swap(
        &self,
        expected: &TokenHash,
        grant: &GrantRecord,
        tokens: &[(TokenHash, TokenRecord)],
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock()?;
        if inner.continuations.get(expected) != Some(&grant.id) {
            return Ok(false);
        }
        inner.continuations.remove(expected);
        if let Some(c) = &grant.continuation {
            inner.continuations.insert(c.token, grant.id.clone());
        }
        inner.grants.insert(grant.id.clone(), grant.clone());
        inner.insert_tokens(tokens);
        Ok(true)
    }

    fn delete_grant(&self, expected: &TokenHash) -> Result<bool, StoreError> {
        let mut inner = self.lock()?;
        let Some(id) = inner.continuations.get(expected).cloned() else {
            return Ok(false);
        };
        inner.remove_grant(&id);
        Ok(true)
    }

    fn token(&self, token: &TokenHash) -> Result<Option<TokenRecord>, StoreError> {
        Ok(self.lock()?.tokens.get(token).cloned())
    }

    fn token_by_manage(
        &self,
        manage: &TokenHash,
    ) -> Result<Option<(TokenHash, TokenRecord)>, StoreError> {
        let inner = self.lock()?;
        Ok(inner
            .manage
            .get(manage)
            .and_then(|hash| inner.tokens.get(hash).map(|r| (*hash, r.clone()))))
    }

    fn token_swap(
        &self,
        manage: &TokenHash,
        old: &TokenHash,
        new: &(TokenHash, TokenRecord),
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock()?;
        if inner.manage.get(manage) != Some(old) {
            return Ok(false);
        }
        inner.remove_token(old);
        inner.insert_tokens(std::slice::from_ref(new));
        let grant_id = new.1.grant.clone();
        if let Some(grant) = inner.grants.get_mut(&grant_id) {
            grant.tokens.retain(|t| t != old);
            grant.tokens.push(new.0);
        }
        Ok(true)
    }

    fn revoke_token(&self, manage: &TokenHash) -> Result<bool, StoreError> {
        let mut inner = self.lock()?;
        let Some(hash) = inner.manage.get(manage).copied() else {
            return Ok(false);
        };
        inner.remove_token(&hash);
        Ok(true)
    }

    fn create_instance(&self, id: &str, instance: &InstanceRecord) -> Result<(), StoreError> {
        self.lock()?
            .instances
            .insert(id.to_owned(), instance.clone());
        Ok(())
    }

    fn instance(&self, id: &str) -> Result<Option<InstanceRecord>, StoreError> {
        Ok(self.lock()?.instances.get(id).cloned())
    }

    fn put_credential_set(&self, set: &CredentialSetRecord) -> Result<(), StoreError> {
        if set.v != super::RECORD_VERSION {
            return Err(StoreError::Version(set.v));
        }
        self.lock()?
            .credential_sets
            .insert(set.id.clone(), set.clone());
        Ok(())
    }

    fn credential_set(&self, id: &str) -> Result<Option<CredentialSetRecord>, StoreError> {
        Ok(self.lock()?.credential_sets.get(id).cloned())
    }

    fn remove_credential_set(&self, id: &str) -> Result<bool, StoreError> {
        let mut inner = self.lock()?;
        if inner.credential_sets.remove(id).is_none() {
            return Ok(false);
        }
        let mapped: Vec<TokenHash> = inner
            .tokens
            .iter()
            .filter(|(_, t)| t.uses_credential_set(id))
            .map(|(h, _)| *h)
            .collect();
        for hash in &mapped {
            inner.remove_token(hash);
        }
        Ok(true)
    }

    fn credential_sets(&self) -> Result<Vec<CredentialSetRecord>, StoreError> {
        let mut sets: Vec<_> = self.lock()?.credential_sets.values().cloned().collect();
        sets.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(sets)
    }

    fn put_upstream(&self, upstream: &UpstreamRecord) -> Result<(), StoreError> {
        if upstream.v != super::RECORD_VERSION {
            return Err(StoreError::Version(upstream.v));
        }
        self.lock()?
            .upstreams
            .insert(upstream.name.clone(), upstream.clone());
        Ok(())
    }

    fn upstreams(&self) -> Result<Vec<UpstreamRecord>, StoreError> {
        let mut all: Vec<_> = self.lock()?.upstreams.values().cloned().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(all)
    }

    fn remove_upstream(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self.lock()?.upstreams.remove(name).is_some())
    }

    fn sweep(&self, now: i64) -> Result<Swept, StoreError> {
        let mut inner = self.lock()?;
        let mut swept = Swept::default();
        let expired: Vec<GrantId> = inner
            .grants
            .values()
            .filter(|g| g.expires_at < now)
            .map(|g| g.id.clone())
            .collect();
        for id in &expired {
            swept.tokens += inner.remove_grant(id);
            swept.grants += 1;
        }
        let stale: Vec<TokenHash> = inner
            .tokens
            .iter()
            // An OAuth token's record also holds its refresh token (its
            // management hash): it goes with its grant.
            .filter(|(_, t)| t.expires_at < now && t.oauth.is_none())
            .map(|(h, _)| *h)
            .collect();
        for hash in &stale {
            inner.remove_token(hash);
            swept.tokens += 1;
        }
        let before = inner.instances.len();
        inner.instances.retain(|_, i| i.expiry() >= now);
        swept.instances = before - inner.instances.len();
        inner.spent_refresh.retain(|_, s| s.expires_at >= now);
        Ok(swept)
    }

    // --- RFC 9767: resources registered by resource servers --------------

    fn register_resource_set(
        &self,
        reference: &str,
        set: &ResourceSetRecord,
    ) -> Result<bool, StoreError> {
        if set.v != super::RECORD_VERSION {
            return Err(StoreError::Version(set.v));
        }
        let mut inner = self.lock()?;
        if inner.resource_sets.contains_key(reference) {
            return Ok(false);
        }
        inner
            .resource_sets
            .insert(reference.to_owned(), set.clone());
        Ok(true)
    }

    fn resource_set(&self, reference: &str) -> Result<Option<ResourceSetRecord>, StoreError> {
        Ok(self.lock()?.resource_sets.get(reference).cloned())
    }

    fn put_oauth_client(&self, record: &super::OAuthClientRecord) -> Result<(), StoreError> {
        if record.v != super::RECORD_VERSION {
            return Err(StoreError::Version(record.v));
        }
        self.lock()?
            .oauth_clients
            .insert(record.client.client_id.clone(), record.clone());
        Ok(())
    }

    fn oauth_client(
        &self,
        client_id: &str,
    ) -> Result<Option<super::OAuthClientRecord>, StoreError> {
        Ok(self.lock()?.oauth_clients.get(client_id).cloned())
    }

    fn oauth_client_count(&self) -> Result<usize, StoreError> {
        Ok(self.lock()?.oauth_clients.len())
    }

    fn sweep_oauth_clients(&self, now: i64) -> Result<usize, StoreError> {
        let mut inner = self.lock()?;
        let before = inner.oauth_clients.len();
        inner.oauth_clients.retain(|_, c| c.expires_at >= now);
        Ok(before - inner.oauth_clients.len())
    }

    // --- RFC 9635 §4: interaction ----------------------------------------

    fn create_interaction_grant(
        &self,
        grant: &GrantRecord,
        interaction: &InteractionRecord,
        instance: Option<(&str, &InstanceRecord)>,
    ) -> Result<(), StoreError> {
        if interaction.v != super::RECORD_VERSION {
            return Err(StoreError::Version(interaction.v));
        }
        let mut inner = self.lock()?;
        if let Some((id, record)) = instance {
            inner.instances.insert(id.to_owned(), record.clone());
        }
        if let Some(c) = &grant.continuation {
            inner.continuations.insert(c.token, grant.id.clone());
        }
        if let Some(code) = &interaction.user_code {
            inner.user_codes.insert(*code, grant.id.clone());
        }
        inner.grants.insert(grant.id.clone(), grant.clone());
        inner
            .interactions
            .insert(grant.id.clone(), interaction.clone());
        inner.keep_instance(grant);
        Ok(())
    }

    fn interaction(&self, grant: &GrantId) -> Result<Option<InteractionRecord>, StoreError> {
        Ok(self.lock()?.interactions.get(grant).cloned())
    }

    fn interaction_by_user_code(
        &self,
        code: &TokenHash,
    ) -> Result<Option<InteractionRecord>, StoreError> {
        let inner = self.lock()?;
        Ok(inner
            .user_codes
            .get(code)
            .and_then(|id| inner.interactions.get(id))
            .cloned())
    }

    fn pending_interactions(&self) -> Result<Vec<InteractionRecord>, StoreError> {
        let mut all: Vec<_> = self
            .lock()?
            .interactions
            .values()
            .filter(|i| i.status == InteractionStatus::Pending)
            .cloned()
            .collect();
        all.sort_by(|a, b| (a.created_at, &a.grant).cmp(&(b.created_at, &b.grant)));
        Ok(all)
    }

    fn decide_interaction(
        &self,
        grant: &GrantId,
        decision: &InteractionStatus,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock()?;
        let Some(interaction) = inner.interactions.get_mut(grant) else {
            return Ok(false);
        };
        if interaction.status != InteractionStatus::Pending {
            return Ok(false);
        }
        interaction.status = decision.clone();
        let code = interaction.user_code;
        if let Some(code) = code {
            inner.user_codes.remove(&code);
        }
        Ok(true)
    }

    fn finish_interaction(
        &self,
        expected: &TokenHash,
        grant: &GrantRecord,
        tokens: &[(TokenHash, TokenRecord)],
        at: i64,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock()?;
        if inner.continuations.get(expected) != Some(&grant.id) {
            return Ok(false);
        }
        match inner.interactions.get_mut(&grant.id) {
            Some(i) if matches!(i.status, InteractionStatus::Approved { .. }) => {
                i.status = i.status.finished(at);
            }
            _ => return Ok(false),
        }
        inner.continuations.remove(expected);
        if let Some(c) = &grant.continuation {
            inner.continuations.insert(c.token, grant.id.clone());
        }
        inner.grants.insert(grant.id.clone(), grant.clone());
        inner.insert_tokens(tokens);
        inner.keep_instance(grant);
        Ok(true)
    }

    fn spend_refresh(&self, refresh: &TokenHash, spent: &SpentRefresh) -> Result<(), StoreError> {
        if spent.v != super::RECORD_VERSION {
            return Err(StoreError::Version(spent.v));
        }
        self.lock()?.spent_refresh.insert(*refresh, spent.clone());
        Ok(())
    }

    fn spent_refresh(&self, refresh: &TokenHash) -> Result<Option<SpentRefresh>, StoreError> {
        Ok(self.lock()?.spent_refresh.get(refresh).cloned())
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
        let mut sizes = self.lock()?.sizes()?;
        sizes.extend(super::sizes::replay_sizes(&self.replay));
        Ok(sizes)
    }
}
