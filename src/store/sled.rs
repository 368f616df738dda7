//! The server's [`Store`]: sled 0.34.7 on a local directory.
//!
//! Layout, one sled tree each:
//!
//! | tree            | key                     | value                        |
//! |-----------------|-------------------------|------------------------------|
//! | `grants`        | grant id (UTF-8)        | [`GrantRecord`] (codec)      |
//! | `continuations` | continuation token hash | grant id                     |
//! | `tokens`        | access token hash       | [`TokenRecord`] (codec)      |
//! | `manage`        | management token hash   | access token hash            |
//! | `instances`     | instance id (UTF-8)     | [`InstanceRecord`] (codec)   |
//! | `credential_sets` | set id (UTF-8)        | [`CredentialSetRecord`] (codec), secret sealed |
//! | `upstreams`     | upstream name (UTF-8)   | [`UpstreamRecord`] (codec)   |
//! | `resource_sets` | resource reference (UTF-8) | [`ResourceSetRecord`] (codec) |
//! | `interactions`  | grant id (UTF-8)        | [`InteractionRecord`] (codec) |
//! | `user_codes`    | user code hash          | grant id                     |
//!
//! A grant's interaction lives in its own tree so that a person's decision
//! (`decide_interaction`) and the client's continuation (`continuation_swap`)
//! never overwrite each other's record; removing a grant removes its
//! interaction and user code index in the same transaction.
//!
//! A resource set is registered by compare-and-swap on an absent key, so a
//! reference, once given out, never comes to mean another set.
//!
//! Removing a credential set scans `tokens` for the tokens mapped to it, then
//! removes the set and those tokens in one transaction (each looked at again
//! inside it), then scans once more for a token minted meanwhile. Callers
//! first stop assigning the set (`admin`), so none is minted after that.
//!
//! Atomicity: every change that touches more than one key is one sled
//! transaction over the trees involved. sled 0.34 runs a transaction's
//! closure under a process-wide write lock and validates its reads before
//! committing, so of two concurrent compare-and-swaps on the same old value
//! exactly one sees it.
//!
//! Durability: after its transaction commits, a mutating method waits for a
//! group commit (`store::commit`) and returns only once the change is on
//! disk. A call that changes nothing (a swap that lost, a revocation of
//! nothing) waits too: what it found may be a concurrent write that is not
//! on disk yet, and an answer built on it ("already revoked") must not get
//! ahead of that write. [`Store::settle`] gives a caller that only read the
//! same guarantee.
//!
//! Replay cache: in memory (`replay::ReplayMemory`, two budgets), not in sled. A signed
//! request is single use only inside its `created` window, and the store
//! refuses every signature created before it was opened
//! ([`NonceStore::horizon`]): so a restart — graceful or a crash — forgets
//! nothing that could still be replayed, with no disk write per request
//! (the earlier sled tree cost a compare-and-swap per call, and a crash could
//! lose its last half second). The price: a request signed in the second
//! before a restart and arriving after it is refused, and its client signs
//! again.
//!
//! Shutdown: [`SledStore::close`] (or dropping the store) serves every
//! waiting writer, stops the commit thread and flushes once more.
//!
//! One process per data directory: sled locks it. Admin tools talk to the
//! running server instead of opening the directory.

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
    InteractionStatus, ResourceSetRecord, Store, StoreError, Swept, TokenHash, TokenRecord,
    UpstreamRecord,
};
use crate::clock::{Clock as _, SystemClock};
use crate::proto::httpsig::nonce::{NonceStore, NonceStoreError, Seen};
use crate::proto::jwk::Thumbprint;

pub use super::commit::{Durability, FlushHold};
pub use check::Checked;

mod check;

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
const INTERACTIONS: &str = "interactions";
const USER_CODES: &str = "user_codes";

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
    interactions: Tree,
    user_codes: Tree,
    commit: GroupCommit,
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn backend(context: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("{context}: {e}"))
}

/// What a transaction's closure returns.
type TxResult<T> = ConflictableTransactionResult<T, StoreError>;

/// Aborts a transaction with a store error.
fn abort(e: StoreError) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(e)
}

fn from_tx(e: TransactionError<StoreError>) -> StoreError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => backend("sled transaction", e),
    }
}

fn token_hash(bytes: &[u8]) -> Result<TokenHash, StoreError> {
    <[u8; 32]>::try_from(bytes).map(TokenHash).map_err(|_| {
        StoreError::Backend(format!(
            "a token hash index entry has {} bytes",
            bytes.len()
        ))
    })
}

fn grant_id(bytes: &[u8]) -> Result<GrantId, StoreError> {
    std::str::from_utf8(bytes)
        .map(|s| GrantId(s.to_owned()))
        .map_err(|_| StoreError::Backend("a grant id index entry is not UTF-8".into()))
}

/// Tokens encoded ahead of a transaction, so its closure (which runs under
/// sled's global write lock, and may run twice) does no serialization.
struct EncodedTokens(Vec<(TokenHash, TokenHash, Vec<u8>)>);

impl EncodedTokens {
    fn new(tokens: &[(TokenHash, TokenRecord)]) -> Result<Self, StoreError> {
        tokens
            .iter()
            .map(|(hash, record)| Ok((*hash, record.manage, encode(record)?)))
            .collect::<Result<_, _>>()
            .map(Self)
    }

    fn insert(&self, tokens: &TransactionalTree, manage: &TransactionalTree) -> TxResult<()> {
        for (hash, manage_hash, bytes) in &self.0 {
            manage.insert(&manage_hash.0[..], &hash.0[..])?;
            tokens.insert(&hash.0[..], bytes.as_slice())?;
        }
        Ok(())
    }
}

/// Removes a token and its management index inside a transaction; true if it
/// was there.
fn remove_token(
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
fn remove_grant(
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
fn remove_interaction(
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
fn keep_instance(instances: &TransactionalTree, grant: &GrantRecord) -> TxResult<()> {
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
type Trees6 = (
    TransactionalTree,
    TransactionalTree,
    TransactionalTree,
    TransactionalTree,
    TransactionalTree,
    TransactionalTree,
);

/// How long `open` waits for the directory lock to be let go.
const LOCK_WAIT: Duration = Duration::from_secs(1);

/// Opens the database, waiting a moment for a handle in this process that
/// is still letting go.
///
/// sled 0.34.7 releases its file lock only when its I/O threads drop their
/// last reference, which can be shortly *after* the last `Db` handle was
/// dropped or flushed; reopening at once (a restart inside one process, as
/// tests do) then fails with "could not acquire lock". Another process that
/// holds the directory still gets the error, after [`LOCK_WAIT`].
///
/// Without `background_flush` sled flushes only when asked (a held store,
/// whose test decides when writes reach the disk).
fn open_db(path: &Path, background_flush: bool) -> Result<::sled::Db, StoreError> {
    let give_up = Instant::now() + LOCK_WAIT;
    let mut config = ::sled::Config::new().path(path);
    if !background_flush {
        config = config.flush_every_ms(None);
    }
    loop {
        match config.open() {
            Ok(db) => return Ok(db),
            Err(::sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock") && Instant::now() < give_up =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(backend(&format!("opening {}", path.display()), e)),
        }
    }
}

impl SledStore {
    /// The same store with replay budgets of `sizes` (`replay_capacity`
    /// and its kin); its horizon is unchanged.
    pub fn with_replay_sizes(mut self, sizes: ReplaySizes) -> Self {
        let horizon = self.replay.budget(ReplayBudget::Bound).horizon();
        self.replay = ReplayMemory::new(sizes, horizon);
        self
    }

    /// Opens (or creates) the store in `path`, with group commit, at the
    /// system clock's time (tools and tests; the server uses
    /// [`Self::open_at`] with its own clock).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, Durability::GroupCommit)
    }

    /// [`Self::open`], making writes durable as `durability` says.
    pub fn open_with(path: &Path, durability: Durability) -> Result<Self, StoreError> {
        Self::open_at(path, durability, SystemClock.now())
    }

    /// Opens (or creates) the store in `path`, making writes durable as
    /// `durability` says. `now` starts the replay horizon: a signature
    /// made before this opening may have been seen by the process before.
    pub fn open_at(path: &Path, durability: Durability, now: i64) -> Result<Self, StoreError> {
        Self::open_gated(path, durability, None, now)
    }

    /// Opens the store with its flushes under a test's control: while the
    /// returned [`FlushHold`] is held nothing reaches the disk (sled's own
    /// periodic flush is off too), and every mutating call blocks. Only for
    /// tests that simulate a crash by copying the directory in that window;
    /// a server must never run so.
    #[doc(hidden)]
    pub fn danger_open_held(path: &Path) -> Result<(Self, FlushHold), StoreError> {
        let hold = FlushHold::default();
        let store = Self::open_gated(
            path,
            Durability::GroupCommit,
            Some(hold.clone()),
            SystemClock.now(),
        )?;
        Ok((store, hold))
    }

    fn open_gated(
        path: &Path,
        durability: Durability,
        hold: Option<FlushHold>,
        now: i64,
    ) -> Result<Self, StoreError> {
        let db = open_db(path, hold.is_none())?;
        // Older data dirs kept replay entries on disk; they are not needed.
        db.drop_tree(OLD_NONCES)
            .map_err(|e| backend("dropping the old replay tree", e))?;
        let tree = |name: &str| {
            db.open_tree(name)
                .map_err(|e| backend(&format!("opening tree {name}"), e))
        };
        Ok(Self {
            grants: tree(GRANTS)?,
            continuations: tree(CONTINUATIONS)?,
            tokens: tree(TOKENS)?,
            manage: tree(MANAGE)?,
            instances: tree(INSTANCES)?,
            replay: ReplayMemory::new(ReplaySizes::default(), now),
            token_cache: Cache::default(),
            set_cache: Cache::default(),
            credential_sets: tree(CREDENTIAL_SETS)?,
            upstreams: tree(UPSTREAMS)?,
            resource_sets: tree(RESOURCE_SETS)?,
            interactions: tree(INTERACTIONS)?,
            user_codes: tree(USER_CODES)?,
            commit: GroupCommit::start(db, durability, hold)?,
            path: path.to_owned(),
        })
    }

    /// Flushes, stops the commit thread and waits for it. The store stays
    /// usable (each write then flushes for itself); dropping the store closes
    /// it too, but `close` reports a failed final flush.
    pub fn close(&self) -> Result<(), StoreError> {
        self.commit.close()
    }

    /// How many calls are waiting for their changes (or what they found)
    /// to reach the disk.
    pub fn awaiting_flush(&self) -> u64 {
        self.commit.awaiting()
    }

    /// In one transaction: removes credential set `set` (if given; `false`
    /// if it is not there, and nothing else changes) and those of `mapped`
    /// that are still mapped to credential set `id`.
    fn remove_mapped(
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
    fn tokens_mapped_to(&self, id: &str) -> Result<Vec<TokenHash>, StoreError> {
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

    fn get(tree: &Tree, key: &[u8]) -> Result<Option<IVec>, StoreError> {
        tree.get(key).map_err(|e| backend("sled read", e))
    }

    /// Runs `f` as one transaction over the grant, continuation, token and
    /// management trees.
    fn transact4<T>(
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
    fn transact6<T>(&self, f: impl Fn(&Trees6) -> TxResult<T>) -> Result<T, StoreError> {
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
    fn remove_grant6(
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
    fn transact_tokens<T>(
        &self,
        f: impl Fn(&TransactionalTree, &TransactionalTree) -> TxResult<T>,
    ) -> Result<T, StoreError> {
        (&self.tokens, &self.manage)
            .transaction(|(tokens, manage)| f(tokens, manage))
            .map_err(from_tx)
    }

    fn sweep_grants(&self, now: i64, swept: &mut Swept) -> Result<(), StoreError> {
        let mut expired = Vec::new();
        for entry in self.grants.iter() {
            let (id, bytes) = entry.map_err(|e| backend("sled scan", e))?;
            if expires_at(&bytes)? < now {
                expired.push(id);
            }
        }
        for id in expired {
            // Looked at again inside the transaction: it may have changed.
            if let Some(tokens) =
                self.transact6(|trees| Self::remove_grant6(trees, &id, Some(now)))?
            {
                swept.grants += 1;
                swept.tokens += tokens;
            }
        }
        Ok(())
    }

    fn sweep_tokens(&self, now: i64, swept: &mut Swept) -> Result<(), StoreError> {
        let mut expired = Vec::new();
        for entry in self.tokens.iter() {
            let (hash, bytes) = entry.map_err(|e| backend("sled scan", e))?;
            if expires_at(&bytes)? < now {
                expired.push(token_hash(&hash)?);
            }
        }
        for hash in expired {
            let removed = self.transact_tokens(|tokens, manage| {
                // Looked at again inside the transaction: it may have been
                // rotated or revoked since the scan.
                let Some(bytes) = tokens.get(&hash.0[..])? else {
                    return Ok(false);
                };
                if expires_at(&bytes).map_err(abort)? >= now {
                    return Ok(false);
                }
                remove_token(tokens, manage, &hash)
            })?;
            if removed {
                swept.tokens += 1;
            }
        }
        Ok(())
    }
}

impl SledStore {
    fn sweep_instances(&self, now: i64, swept: &mut Swept) -> Result<(), StoreError> {
        let mut expired = Vec::new();
        for entry in self.instances.iter() {
            let (id, bytes) = entry.map_err(|e| backend("sled scan", e))?;
            let instance: InstanceRecord = decode(&bytes)?;
            if instance.expiry() < now {
                expired.push(id);
            }
        }
        for id in expired {
            // Looked at again inside the transaction: a grant written since
            // the scan may have kept it.
            let removed = self
                .instances
                .transaction(|instances| {
                    let Some(bytes) = instances.get(&id)? else {
                        return Ok(false);
                    };
                    let instance: InstanceRecord = decode(&bytes).map_err(abort)?;
                    if instance.expiry() >= now {
                        return Ok(false);
                    }
                    instances.remove(&id)?;
                    Ok(true)
                })
                .map_err(from_tx)?;
            if removed {
                swept.instances += 1;
            }
        }
        Ok(())
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
        let id = grant.id.0.as_bytes();
        let record = encode(grant)?;
        let tokens = EncodedTokens::new(tokens)?;
        (
            &self.grants,
            &self.continuations,
            &self.tokens,
            &self.manage,
            &self.instances,
        )
            .transaction(|(grants, continuations, tokens_tree, manage, instances)| {
                if let Some(c) = &grant.continuation {
                    continuations.insert(&c.token.0[..], id)?;
                }
                grants.insert(id, record.as_slice())?;
                tokens.insert(tokens_tree, manage)?;
                keep_instance(instances, grant)
            })
            .map_err(from_tx)?;
        self.commit.wait_durable()
    }

    fn create_grant_with_instance(
        &self,
        grant: &GrantRecord,
        tokens: &[(TokenHash, TokenRecord)],
        instance: (&str, &InstanceRecord),
    ) -> Result<(), StoreError> {
        let id = grant.id.0.as_bytes();
        let record = encode(grant)?;
        let tokens = EncodedTokens::new(tokens)?;
        let mut kept = instance.1.clone();
        kept.keep_until(grant.expires_at);
        let instance_record = encode(&kept)?;
        (
            &self.grants,
            &self.continuations,
            &self.tokens,
            &self.manage,
            &self.instances,
        )
            .transaction(|(grants, continuations, tokens_tree, manage, instances)| {
                if let Some(c) = &grant.continuation {
                    continuations.insert(&c.token.0[..], id)?;
                }
                grants.insert(id, record.as_slice())?;
                instances.insert(instance.0.as_bytes(), instance_record.as_slice())?;
                tokens.insert(tokens_tree, manage)
            })
            .map_err(from_tx)?;
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
}
