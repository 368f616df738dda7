//! The [`Store`] on PostgreSQL, for operators who keep their state in a
//! database they already run (issue 20; spec-notes/store.md says what each
//! operation's isolation is and why).
//!
//! Same contract as the sled store: a mutating method returns once
//! PostgreSQL has committed its change, and with `synchronous_commit` on a
//! commit is on disk before it is acknowledged, or seen by anyone else; so
//! `settle` has nothing to wait for, and `store::deferring` hands no ticket
//! back (it only defers the waits of a store with a group commit).
//! Single-use values change hands in one statement whose `WHERE` names the
//! old value (`UPDATE … WHERE continuation = $old`, `DELETE … RETURNING`):
//! PostgreSQL's row lock makes a second caller wait for the first and then
//! find the row changed, so exactly one wins.
//!
//! Several nodes may share one database: a write that retires this node's
//! record caches notifies every other node in its transaction
//! (`invalidation`), and no cached record older than [`CACHE_MAX_AGE`] is
//! served, whatever was heard.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::cache::Cache;
use super::replay::{ReplayBudget, ReplayMemory, ReplaySizes};
use super::{
    CounterName, CredentialSetRecord, GrantId, GrantRecord, InstanceRecord, InteractionRecord,
    InteractionStatus, OAuthClientRecord, ResourceSetRecord, SpentRefresh, Store, StoreError,
    Swept, TableSize, TokenHash, TokenRecord, UpstreamRecord,
};
use crate::clock::{Clock as _, SystemClock};
use crate::proto::httpsig::nonce::{NonceStore, NonceStoreError, Seen};
use crate::proto::jwk::Thumbprint;

pub use conninfo::Conninfo;
pub use maintenance::{SchemaVersions, Standing, migrate_schema, schema_status};
pub use schema::SCHEMA_VERSION;
pub use sweep::SWEEP_BATCH;
pub use tls::SslMode;

mod conninfo;
mod counters;
mod grants;
mod handoffs;
mod interactions;
mod invalidation;
mod lease;
mod maintenance;
mod pool;
mod prepared;
mod records;
mod replay;
mod rows;
mod schema;
mod sizes;
mod sql;
mod sweep;
mod tls;
mod tokens;

use invalidation::{Heard, Listener};
use pool::Pool;
use replay::SharedReplay;

/// Connections each store keeps open for its calls: enough for the AS,
/// the gateway and the sweeper not to queue behind one another on a small
/// machine, few enough for several nodes to share a server's default 100
/// (each node also holds one listening connection, `invalidation`).
pub const CONNECTIONS: usize = 4;

/// The oldest a cached token or credential set may be and still be
/// served: the bound on how long another node's revocation can go unseen
/// here when its notification is lost (spec-notes/store.md, "Several
/// nodes"). Each cached record is read again at most twice a second.
pub const CACHE_MAX_AGE: Duration = Duration::from_millis(500);

/// The PostgreSQL-backed store.
pub struct PostgresStore {
    conninfo: Conninfo,
    pool: Arc<Pool>,
    /// This node's replay memory, in front of the shared table.
    replay: Arc<ReplayMemory>,
    unapproved: SharedReplay,
    bound: SharedReplay,
    /// Decoded tokens by hash, for the gateway's per-call lookup.
    token_cache: Arc<Cache<TokenHash, Arc<TokenRecord>>>,
    /// Decoded credential sets by id.
    set_cache: Arc<Cache<String, Arc<CredentialSetRecord>>>,
    /// Retires both caches when another node wrote.
    listener: Mutex<Option<Listener>>,
    /// Counts what the listener heard of upstream and credential-set
    /// writes (and its reconnections), for [`Store::upstream_changes`].
    upstream_changes: tokio::sync::watch::Sender<u64>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("at", &self.conninfo)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Opens the database `conninfo` names with [`CONNECTIONS`]
    /// connections, creating or migrating its schema. Signatures created
    /// before now are refused by the replay cache (`NonceStore::horizon`),
    /// as with sled: a restart forgets the cache.
    pub fn open(conninfo: &Conninfo) -> Result<Self, StoreError> {
        Self::open_at(conninfo, CONNECTIONS, SystemClock.now())
    }

    /// [`Self::open`] with `connections` connections, at the time `now`.
    pub fn open_at(conninfo: &Conninfo, connections: usize, now: i64) -> Result<Self, StoreError> {
        Self::open_tuned(conninfo, connections, now, CACHE_MAX_AGE)
    }

    /// [`Self::open_at`] with cached records served until `cache_max_age`
    /// (a test that must see a notification, not the age, at work).
    pub fn open_tuned(
        conninfo: &Conninfo,
        connections: usize,
        now: i64,
        cache_max_age: Duration,
    ) -> Result<Self, StoreError> {
        // The roots are read once; every connection and the listener share them.
        let tls = conninfo.tls.connector()?;
        let pool = Arc::new(Pool::open(&conninfo.config, &tls, connections.max(1))?);
        pool.run(|conn| schema::migrate(&mut conn.client))?;
        let replay = Arc::new(ReplayMemory::new(ReplaySizes::default(), now));
        let token_cache = Arc::new(Cache::with_max_age(cache_max_age));
        let set_cache = Arc::new(Cache::with_max_age(cache_max_age));
        let (upstream_changes, _) = tokio::sync::watch::channel(0u64);
        let listener = {
            let (tokens, sets) = (token_cache.clone(), set_cache.clone());
            let changes = upstream_changes.clone();
            Listener::start(&conninfo.config, &tls, move |heard| {
                // A set write sends its retiring notification first: the
                // caches are retired before anyone rereads the registry.
                if heard != Heard::Upstreams {
                    tokens.retire();
                    sets.retire();
                }
                if heard != Heard::Retire {
                    changes.send_modify(|count| *count = count.wrapping_add(1));
                }
            })?
        };
        Ok(Self {
            conninfo: conninfo.clone(),
            unapproved: SharedReplay::new(replay.clone(), ReplayBudget::Unapproved, pool.clone()),
            bound: SharedReplay::new(replay.clone(), ReplayBudget::Bound, pool.clone()),
            pool,
            replay,
            token_cache,
            set_cache,
            listener: Mutex::new(Some(listener)),
            upstream_changes,
        })
    }

    /// The same store with replay budgets of `sizes` (and the same horizon).
    pub fn with_replay_sizes(mut self, sizes: ReplaySizes) -> Self {
        let horizon = self.replay.budget(ReplayBudget::Bound).horizon();
        self.replay = Arc::new(ReplayMemory::new(sizes, horizon));
        self.unapproved = SharedReplay::new(
            self.replay.clone(),
            ReplayBudget::Unapproved,
            self.pool.clone(),
        );
        self.bound = SharedReplay::new(self.replay.clone(), ReplayBudget::Bound, self.pool.clone());
        self
    }

    /// Where the database is, without its password (for the log).
    pub fn conninfo(&self) -> &Conninfo {
        &self.conninfo
    }

    /// Closes every connection once its call is done; later calls fail.
    pub fn close(&self) -> Result<(), StoreError> {
        if let Some(mut listener) = self
            .listener
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            listener.stop();
        }
        self.pool.close();
        Ok(())
    }
}

impl NonceStore for PostgresStore {
    /// This node's memory, then the table every node shares (`replay`).
    fn remember(
        &self,
        scope: &Thumbprint,
        value: &[u8],
        until: i64,
        now: i64,
    ) -> Result<Seen, NonceStoreError> {
        self.bound.remember(scope, value, until, now)
    }

    fn horizon(&self) -> i64 {
        self.bound.horizon()
    }
}

impl Store for PostgresStore {
    fn replay(&self, budget: ReplayBudget) -> &dyn NonceStore {
        match budget {
            ReplayBudget::Unapproved => &self.unapproved,
            ReplayBudget::Bound => &self.bound,
        }
    }

    fn create_grant(
        &self,
        grant: &GrantRecord,
        tokens: &[(TokenHash, TokenRecord)],
    ) -> Result<(), StoreError> {
        self.write_new_grant(grant, tokens, None, None)
    }

    fn create_grant_with_instance(
        &self,
        grant: &GrantRecord,
        tokens: &[(TokenHash, TokenRecord)],
        instance: (&str, &InstanceRecord),
    ) -> Result<(), StoreError> {
        self.write_new_grant(grant, tokens, Some(instance), None)
    }

    fn grant(&self, id: &GrantId) -> Result<Option<GrantRecord>, StoreError> {
        self.grant_by_id(id)
    }

    fn grant_by_continuation(&self, token: &TokenHash) -> Result<Option<GrantRecord>, StoreError> {
        self.grant_continued_by(token)
    }

    fn continuation_swap(
        &self,
        expected: &TokenHash,
        grant: &GrantRecord,
        tokens: &[(TokenHash, TokenRecord)],
    ) -> Result<bool, StoreError> {
        self.swap_continuation(expected, grant, tokens)
    }

    fn delete_grant(&self, expected: &TokenHash) -> Result<bool, StoreError> {
        let deleted = self.remove_grant(expected)?;
        if deleted {
            self.token_cache.retire();
        }
        Ok(deleted)
    }

    fn token(&self, token: &TokenHash) -> Result<Option<TokenRecord>, StoreError> {
        Ok(self.token_shared(token)?.map(Arc::unwrap_or_clone))
    }

    fn token_shared(&self, token: &TokenHash) -> Result<Option<Arc<TokenRecord>>, StoreError> {
        self.token_cache
            .read_through(token, || Ok(self.token_by_hash(token)?.map(Arc::new)))
    }

    fn token_by_manage(
        &self,
        manage: &TokenHash,
    ) -> Result<Option<(TokenHash, TokenRecord)>, StoreError> {
        self.token_managed_by(manage)
    }

    fn token_swap(
        &self,
        manage: &TokenHash,
        old: &TokenHash,
        new: &(TokenHash, TokenRecord),
    ) -> Result<bool, StoreError> {
        let swapped = self.swap_token(manage, old, new)?;
        if swapped {
            self.token_cache.retire();
        }
        Ok(swapped)
    }

    fn revoke_token(&self, manage: &TokenHash) -> Result<bool, StoreError> {
        let revoked = self.remove_managed(manage)?;
        if revoked {
            self.token_cache.retire();
        }
        Ok(revoked)
    }

    fn create_instance(&self, id: &str, instance: &InstanceRecord) -> Result<(), StoreError> {
        self.put_instance(id, instance)
    }

    fn instance(&self, id: &str) -> Result<Option<InstanceRecord>, StoreError> {
        self.get_instance(id)
    }

    fn put_credential_set(&self, set: &CredentialSetRecord) -> Result<(), StoreError> {
        self.write_credential_set(set)?;
        self.set_cache.retire();
        Ok(())
    }

    fn credential_set(&self, id: &str) -> Result<Option<CredentialSetRecord>, StoreError> {
        Ok(self.credential_set_shared(id)?.map(Arc::unwrap_or_clone))
    }

    fn credential_set_shared(
        &self,
        id: &str,
    ) -> Result<Option<Arc<CredentialSetRecord>>, StoreError> {
        self.set_cache
            .read_through(id, || Ok(self.read_credential_set(id)?.map(Arc::new)))
    }

    fn remove_credential_set(&self, id: &str) -> Result<bool, StoreError> {
        let removed = self.remove_set_and_its_tokens(id)?;
        if removed {
            self.set_cache.retire();
            self.token_cache.retire();
        }
        Ok(removed)
    }

    fn credential_sets(&self) -> Result<Vec<CredentialSetRecord>, StoreError> {
        self.all_credential_sets()
    }

    fn put_upstream(&self, upstream: &UpstreamRecord) -> Result<(), StoreError> {
        self.write_upstream(upstream)
    }

    fn upstreams(&self) -> Result<Vec<UpstreamRecord>, StoreError> {
        self.all_upstreams()
    }

    fn remove_upstream(&self, name: &str) -> Result<bool, StoreError> {
        self.delete_upstream(name)
    }

    fn upstream_changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        Some(self.upstream_changes.subscribe())
    }

    fn sweep(&self, now: i64) -> Result<Swept, StoreError> {
        let swept = self.sweep_expired(now)?;
        if swept != Swept::default() {
            self.token_cache.retire();
        }
        Ok(swept)
    }

    fn register_resource_set(
        &self,
        reference: &str,
        set: &ResourceSetRecord,
    ) -> Result<bool, StoreError> {
        self.insert_resource_set(reference, set)
    }

    fn resource_set(&self, reference: &str) -> Result<Option<ResourceSetRecord>, StoreError> {
        self.read_resource_set(reference)
    }

    fn put_oauth_client(&self, record: &OAuthClientRecord) -> Result<(), StoreError> {
        self.write_oauth_client(record)
    }

    fn oauth_client(&self, client_id: &str) -> Result<Option<OAuthClientRecord>, StoreError> {
        self.read_oauth_client(client_id)
    }

    fn oauth_client_count(&self) -> Result<usize, StoreError> {
        self.count_oauth_clients()
    }

    fn sweep_oauth_clients(&self, now: i64) -> Result<usize, StoreError> {
        self.remove_lapsed_oauth_clients(now)
    }

    fn create_interaction_grant(
        &self,
        grant: &GrantRecord,
        interaction: &InteractionRecord,
        instance: Option<(&str, &InstanceRecord)>,
    ) -> Result<(), StoreError> {
        self.write_new_grant(grant, &[], instance, Some(interaction))
    }

    fn interaction(&self, grant: &GrantId) -> Result<Option<InteractionRecord>, StoreError> {
        self.interaction_of(grant)
    }

    fn interaction_by_user_code(
        &self,
        code: &TokenHash,
    ) -> Result<Option<InteractionRecord>, StoreError> {
        self.interaction_with_code(code)
    }

    fn pending_interactions(&self) -> Result<Vec<InteractionRecord>, StoreError> {
        self.all_pending_interactions()
    }

    fn decide_interaction(
        &self,
        grant: &GrantId,
        decision: &InteractionStatus,
    ) -> Result<bool, StoreError> {
        self.decide(grant, decision)
    }

    fn finish_interaction(
        &self,
        expected: &TokenHash,
        grant: &GrantRecord,
        tokens: &[(TokenHash, TokenRecord)],
        at: i64,
    ) -> Result<bool, StoreError> {
        self.finish(expected, grant, tokens, at)
    }

    fn spend_refresh(&self, refresh: &TokenHash, spent: &SpentRefresh) -> Result<(), StoreError> {
        self.write_spent_refresh(refresh, spent)
    }

    fn spent_refresh(&self, refresh: &TokenHash) -> Result<Option<SpentRefresh>, StoreError> {
        self.read_spent_refresh(refresh)
    }

    fn take_lease(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        until: i64,
    ) -> Result<bool, StoreError> {
        self.take_lease_row(name, holder, now, until)
    }

    fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        self.release_lease_row(name, holder)
    }

    fn credential_set_uncached(&self, id: &str) -> Result<Option<CredentialSetRecord>, StoreError> {
        self.read_credential_set(id)
    }

    fn add_to_counter(
        &self,
        name: &CounterName,
        period: i64,
        by: u32,
        expires_at: i64,
    ) -> Result<Option<u32>, StoreError> {
        self.add_to_counter_row(name, period, by, expires_at)
            .map(Some)
    }

    fn handoffs(&self) -> Option<&dyn crate::store::Handoffs> {
        Some(self)
    }

    fn table_sizes(&self) -> Result<Vec<(String, TableSize)>, StoreError> {
        self.sizes()
    }
}
