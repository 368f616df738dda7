//! What the authorization server keeps, behind a trait named by intent.
//!
//! The services (`crate::authz`) speak only this trait; `memory` serves unit
//! tests and `sled` the server. Every mutating method is atomic and durable on
//! return: when it says `Ok`, a crash cannot lose what it wrote, so a token the
//! AS answers with survives. Single-use values (continuation tokens, rotated
//! tokens) change hands by compare-and-swap: of two concurrent callers holding
//! the same old value, exactly one succeeds.
//!
//! Token values never reach the store: records are keyed by [`TokenHash`],
//! the SHA-256 of a 256-bit random value.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::proto::gnap::interact::HashMethod;
use crate::proto::gnap::{AccessRight, GrantRequest};
use crate::proto::httpsig::nonce::NonceStore;
use crate::proto::jwk::Thumbprint;

mod cache;
mod codec;
mod commit;
mod handoff;
mod lease;
pub mod memory;
mod oauth_client;
pub mod postgres;
pub mod rate;
mod record;
pub mod replay;
mod sizes;
pub mod sled;

pub use commit::{Pending, deferring};
pub use handoff::{HandoffKey, HandoffKind, Handoffs};
pub use oauth_client::OAuthClientRecord;
pub use record::*;
pub use replay::{ReplayBudget, ReplayLimits, ReplaySizes};
pub use sizes::{TABLES, TableSize};

/// A counter shared by the nodes of one store: the SHA-256 of what it
/// counts (a source address is personal data; the store keeps only this).
pub type CounterName = [u8; 32];

/// What a sweep removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Grants removed.
    pub grants: usize,
    /// Access tokens removed.
    pub tokens: usize,
    /// Replay-cache entries removed.
    pub nonces: usize,
    /// Instance records removed.
    pub instances: usize,
}

/// The store failed. Services answer 500-class errors without detail; the
/// cause goes to the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The backing store failed (I/O, corruption, a poisoned lock).
    #[error("storage failure: {0}")]
    Backend(String),
    /// A record has a version this build does not read.
    #[error("record version {0} is not supported")]
    Version(u32),
}

/// Storage for the authorization server, by intent.
///
/// Contract, for every implementation:
/// - mutating methods are atomic and durable when they return `Ok`, and so
///   is what they found: a swap that lost or a removal of nothing returns
///   only once the write that beat it is durable, so an answer built on it
///   ("already revoked", "already used") never gets ahead of the disk;
/// - `*_swap` methods succeed only if the old value is still current, and of
///   concurrent callers with the same old value exactly one succeeds;
/// - reads never return records that a completed revocation removed;
/// - reads do not filter on expiry: callers compare `expires_at` with `now`
///   (a record may outlive its expiry until the next [`Store::sweep`]);
/// - a write of a grant that names an instance (`instance_id`) keeps that
///   instance until at least the grant's expiry
///   ([`InstanceRecord::keep_until`]), in the same atomic write;
/// - the replay cache ([`NonceStore::remember`]) is atomic but need not be
///   durable: losing the last moments of it in a crash reopens at most a
///   window the signature's `created` check still bounds. The store's own
///   [`NonceStore`] is the [`ReplayBudget::Bound`] budget (the gateway's);
///   [`Store::replay`] names either.
pub trait Store: NonceStore + Send + Sync {
    /// The replay budget a signed request is remembered in
    /// (`replay::ReplayMemory`).
    fn replay(&self, budget: ReplayBudget) -> &dyn NonceStore;

    /// Returns once every write that completed before the call is durable.
    /// A service that read "already done" (a token gone, a continuation
    /// used) calls it before answering so: the write that did it may be
    /// a concurrent call's, still on its way to the disk, and a crash in
    /// that window would bring back what the answer called gone. A store
    /// whose writes are durable when they complete has nothing to wait for.
    fn settle(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Stores a new grant, its continuation index and any tokens issued with it.
    fn create_grant(
        &self,
        grant: &GrantRecord,
        tokens: &[(TokenHash, TokenRecord)],
    ) -> Result<(), StoreError>;

    /// The grant with this identifier.
    fn grant(&self, id: &GrantId) -> Result<Option<GrantRecord>, StoreError>;

    /// The grant this continuation token continues.
    fn grant_by_continuation(&self, token: &TokenHash) -> Result<Option<GrantRecord>, StoreError>;

    /// Replaces a grant whose continuation token is still `expected`: writes
    /// `grant` (with its new continuation, or none), moves the continuation
    /// index, and stores `tokens`. `Ok(false)` if `expected` was already used.
    fn continuation_swap(
        &self,
        expected: &TokenHash,
        grant: &GrantRecord,
        tokens: &[(TokenHash, TokenRecord)],
    ) -> Result<bool, StoreError>;

    /// Deletes the grant continued by `expected`, its continuation and every
    /// token issued under it. `Ok(false)` if `expected` was already used.
    fn delete_grant(&self, expected: &TokenHash) -> Result<bool, StoreError>;

    /// The access token with this hash.
    fn token(&self, token: &TokenHash) -> Result<Option<TokenRecord>, StoreError>;

    /// [`Store::token`], shared rather than copied: the gateway's per-call
    /// lookup only reads the record, and a store that keeps decoded records
    /// hands out the one it keeps instead of cloning a grant's rights and
    /// key for every call. It must answer exactly as [`Store::token`] does
    /// at the same moment (revocation included).
    fn token_shared(
        &self,
        token: &TokenHash,
    ) -> Result<Option<std::sync::Arc<TokenRecord>>, StoreError> {
        Ok(self.token(token)?.map(std::sync::Arc::new))
    }

    /// The access token managed by this management token, with its hash.
    fn token_by_manage(
        &self,
        manage: &TokenHash,
    ) -> Result<Option<(TokenHash, TokenRecord)>, StoreError>;

    /// Replaces the token managed by `manage`, if it is still `old`, with
    /// `new` (new value, new management token, possibly a new key): the old
    /// value stops working at once. `Ok(false)` if `old` is gone.
    fn token_swap(
        &self,
        manage: &TokenHash,
        old: &TokenHash,
        new: &(TokenHash, TokenRecord),
    ) -> Result<bool, StoreError>;

    /// Revokes the token managed by `manage`. `Ok(false)` if there was none.
    fn revoke_token(&self, manage: &TokenHash) -> Result<bool, StoreError>;

    /// Records a client instance.
    fn create_instance(&self, id: &str, instance: &InstanceRecord) -> Result<(), StoreError>;

    /// Stores a new grant and the instance identifier minted with it, as one
    /// atomic, durable write (one disk flush for a new client's first grant).
    /// The default writes them one after the other.
    fn create_grant_with_instance(
        &self,
        grant: &GrantRecord,
        tokens: &[(TokenHash, TokenRecord)],
        instance: (&str, &InstanceRecord),
    ) -> Result<(), StoreError> {
        self.create_instance(instance.0, instance.1)?;
        self.create_grant(grant, tokens)
    }

    /// The client instance with this identifier.
    fn instance(&self, id: &str) -> Result<Option<InstanceRecord>, StoreError>;

    /// Stores a credential set, replacing any with the same id (tokens
    /// mapped to it keep their mapping and use the new secret).
    fn put_credential_set(&self, set: &CredentialSetRecord) -> Result<(), StoreError>;

    /// The credential set with this id.
    fn credential_set(&self, id: &str) -> Result<Option<CredentialSetRecord>, StoreError>;

    /// [`Store::credential_set`], shared rather than copied (see
    /// [`Store::token_shared`]).
    fn credential_set_shared(
        &self,
        id: &str,
    ) -> Result<Option<std::sync::Arc<CredentialSetRecord>>, StoreError> {
        Ok(self.credential_set(id)?.map(std::sync::Arc::new))
    }

    /// Removes a credential set and revokes every access token mapped to it.
    /// `Ok(false)` if there was none.
    fn remove_credential_set(&self, id: &str) -> Result<bool, StoreError>;

    /// Every credential set (for listing: callers show no sealed bytes).
    fn credential_sets(&self) -> Result<Vec<CredentialSetRecord>, StoreError>;

    /// Stores an upstream added at run time, replacing one of that name.
    fn put_upstream(&self, upstream: &UpstreamRecord) -> Result<(), StoreError>;

    /// Every upstream added at run time.
    fn upstreams(&self) -> Result<Vec<UpstreamRecord>, StoreError>;

    /// Removes a stored upstream. `Ok(false)` if there was none.
    fn remove_upstream(&self, name: &str) -> Result<bool, StoreError>;

    /// A counter that moves whenever any node sharing this store may have
    /// changed its upstreams or credential sets (and whenever such news
    /// may have been missed), so the caller can rebuild what it built from
    /// them. `None` for a store no other process writes (sled, memory):
    /// there the admin commands change the running node directly.
    fn upstream_changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }

    /// Removes expired grants (with their tokens), tokens, instances and
    /// replay entries. An OAuth token's record (`TokenRecord::oauth`) is
    /// not removed at its own expiry: it holds the refresh token, which
    /// lives as long as its grant, and goes with the grant.
    fn sweep(&self, now: i64) -> Result<Swept, StoreError>;

    // --- RFC 9767: resources registered by resource servers --------------

    /// Registers a resource set under `reference`, durably. `Ok(false)`, and
    /// nothing written, if the reference is already taken: a reference means
    /// one set for as long as the store lives.
    fn register_resource_set(
        &self,
        reference: &str,
        set: &ResourceSetRecord,
    ) -> Result<bool, StoreError>;

    /// The resource set registered under `reference`.
    fn resource_set(&self, reference: &str) -> Result<Option<ResourceSetRecord>, StoreError>;

    // --- RFC 7591: OAuth clients registered by themselves ----------------

    /// Stores a registered OAuth client, replacing the record of the same
    /// `client_id` (a later use moves its expiry), durably.
    fn put_oauth_client(&self, record: &OAuthClientRecord) -> Result<(), StoreError>;

    /// The registered OAuth client with this `client_id` (expired ones
    /// included until [`Store::sweep_oauth_clients`]).
    fn oauth_client(&self, client_id: &str) -> Result<Option<OAuthClientRecord>, StoreError>;

    /// How many registered OAuth clients are kept (expired ones included
    /// until swept): what bounds registrations in all.
    fn oauth_client_count(&self) -> Result<usize, StoreError>;

    /// Removes the registered OAuth clients that expired before `now`;
    /// returns how many.
    fn sweep_oauth_clients(&self, now: i64) -> Result<usize, StoreError>;

    // --- RFC 9635 §4: interaction ----------------------------------------
    //
    // A grant that waits for a person has an `InteractionRecord` beside
    // it; `delete_grant` and `sweep` remove it (and its user code index)
    // with the grant.

    /// Stores a grant that waits for a person: the grant with its
    /// continuation index, its interaction, the user code index (if the
    /// interaction has a code) and, for a new client, its instance, as one
    /// atomic, durable write.
    fn create_interaction_grant(
        &self,
        grant: &GrantRecord,
        interaction: &InteractionRecord,
        instance: Option<(&str, &InstanceRecord)>,
    ) -> Result<(), StoreError>;

    /// The interaction of `grant`.
    fn interaction(&self, grant: &GrantId) -> Result<Option<InteractionRecord>, StoreError>;

    /// The interaction whose user code hashes to `code`. Only a pending
    /// interaction can be found so: a decision removes the index.
    fn interaction_by_user_code(
        &self,
        code: &TokenHash,
    ) -> Result<Option<InteractionRecord>, StoreError>;

    /// Every interaction still waiting for a person (a scan; for listing).
    fn pending_interactions(&self) -> Result<Vec<InteractionRecord>, StoreError>;

    /// Records a person's decision (`decision` is `Approved` or `Denied`)
    /// on the interaction of `grant`, only if it is still `Pending`, and
    /// removes its user code index: a code decides once. `Ok(false)`, and
    /// nothing written, if there is no such interaction or it was decided
    /// already; of concurrent callers exactly one succeeds.
    fn decide_interaction(
        &self,
        grant: &GrantId,
        decision: &InteractionStatus,
    ) -> Result<bool, StoreError>;

    /// Hands an approved interaction's result to the client, once: if
    /// `expected` still continues `grant.id` and the interaction is
    /// `Approved`, writes `grant` (with its new continuation), moves the
    /// continuation index, stores `tokens` and marks the interaction
    /// `Finished { at }`, atomically. `Ok(false)`, and nothing written,
    /// otherwise (the continuation token was used, or the interaction is
    /// not, or no longer, approved): an interaction reference is taken once.
    fn finish_interaction(
        &self,
        expected: &TokenHash,
        grant: &GrantRecord,
        tokens: &[(TokenHash, TokenRecord)],
        at: i64,
    ) -> Result<bool, StoreError>;

    // --- OAuth 2.1 §4.3.1: refresh token rotation --------------------------

    /// Remembers that the refresh token hashing to `refresh` was used, for
    /// `spent.grant`, until `spent.expires_at` (then [`Store::sweep`]
    /// forgets it). Durable on return, like every write: a crash must not
    /// turn a reused refresh token into an unknown one.
    fn spend_refresh(&self, refresh: &TokenHash, spent: &SpentRefresh) -> Result<(), StoreError>;

    /// The spent refresh token hashing to `refresh`, if it was used and is
    /// still remembered (expired entries may be returned until the sweep;
    /// callers compare `expires_at`).
    fn spent_refresh(&self, refresh: &TokenHash) -> Result<Option<SpentRefresh>, StoreError>;

    // --- Several nodes: leases and shared counters -------------------------

    /// Takes the lease `name` for `holder` until `until` (seconds, the
    /// caller's clock), if no other holder's lease is live: free, lapsed
    /// (its `until` before `now`) or already `holder`'s (then extended).
    /// `Ok(false)`, and nothing written, if another holder's lease is live.
    /// Of concurrent takers of a free lease exactly one wins. A lease held
    /// by a process that died lapses at its `until`; on a store of one node
    /// (memory, sled) the lease lives in that process.
    fn take_lease(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        until: i64,
    ) -> Result<bool, StoreError>;

    /// Releases the lease `name` if `holder` holds it; another holder's
    /// lease (one taken after `holder`'s lapsed) is left alone.
    fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError>;

    /// [`Store::credential_set`], read from the store itself and not from
    /// any cache: what another node wrote a moment ago (a refreshed
    /// upstream token) is seen here at once. A store no other node writes
    /// to has a coherent cache, and the default reads through it.
    fn credential_set_uncached(&self, id: &str) -> Result<Option<CredentialSetRecord>, StoreError> {
        self.credential_set(id)
    }

    /// Adds `by` to the counter `name` of period `period` (a window's
    /// number) and returns its new value; `by` 0 only reads it. The row
    /// may go at [`Store::sweep`] once `expires_at` passed. `Ok(None)` on
    /// a store of one node (memory, sled), whose callers count in their
    /// own memory: only a store several nodes share keeps counters, so
    /// that a limit counted across nodes is one limit, not one a node.
    fn add_to_counter(
        &self,
        name: &CounterName,
        period: i64,
        by: u32,
        expires_at: i64,
    ) -> Result<Option<u32>, StoreError> {
        let _ = (name, period, by, expires_at);
        Ok(None)
    }

    /// The short-lived entries every node sharing this store sees
    /// ([`Handoffs`]: used assertions, sign-in states, sessions), or
    /// `None` on a store of one node (memory, sled), whose services keep
    /// them in their own memory as before.
    fn handoffs(&self) -> Option<&dyn Handoffs> {
        None
    }

    /// Records and bytes (keys plus values, as stored) of every table: the
    /// persistent ones ([`TABLES`]), then the in-memory ones the store
    /// keeps (`memory:<what>`: the replay budgets, caches). For `gnapd
    /// compare`, through the admin command `store_stats`; it reads every
    /// entry, so it is not for a request path.
    fn table_sizes(&self) -> Result<Vec<(String, TableSize)>, StoreError>;
}
