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
use sha2::{Digest as _, Sha256};

use crate::proto::gnap::interact::HashMethod;
use crate::proto::gnap::{AccessRight, GrantRequest};
use crate::proto::httpsig::nonce::NonceStore;
use crate::proto::jwk::Thumbprint;

mod cache;
mod codec;
mod commit;
pub mod memory;
pub mod replay;
pub mod sled;

pub use replay::{ReplayBudget, ReplayLimits, ReplaySizes};

/// The current record format. Stored with every record so the format can
/// evolve; a reader refuses versions it does not know.
pub const RECORD_VERSION: u32 = 1;

/// SHA-256 of a token value: how tokens are found without being stored.
/// Serialized as base64url text.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenHash(pub [u8; 32]);

impl Serialize for TokenHash {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&crate::proto::b64::encode_url(&self.0))
    }
}

impl<'de> Deserialize<'de> for TokenHash {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        crate::proto::b64::decode_url(&text)
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .map(Self)
            .ok_or_else(|| serde::de::Error::custom("a token hash is 32 bytes of base64url"))
    }
}

impl TokenHash {
    /// Hashes a token value.
    pub fn of(value: &str) -> Self {
        Self(Sha256::digest(value.as_bytes()).into())
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A prefix is enough to correlate log lines; the hash is not secret
        // but the full value is noise.
        write!(
            f,
            "TokenHash({:02x}{:02x}{:02x}{:02x}…)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

/// A grant's identifier: a UUID v4, also the last path segment of its
/// continuation URI.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GrantId(pub String);

/// The key a grant, token or instance is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyBinding {
    /// RFC 7638 thumbprint of the key.
    pub thumbprint: String,
    /// The public JWK, as the AS accepted it.
    pub jwk: serde_json::Value,
}

impl KeyBinding {
    /// True if this binding is for the key with `thumbprint`.
    pub fn is(&self, thumbprint: &Thumbprint) -> bool {
        self.thumbprint == thumbprint.as_str()
    }
}

/// Where a grant stands (RFC 9635 §1.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantState {
    /// Waiting for a decision (interaction, or an approver).
    Pending,
    /// Approved: tokens issued; the client may continue to manage the grant.
    Approved,
    /// Denied by policy or a person: nothing more can happen.
    Denied,
}

/// The continuation side of a grant (§3.1, §5): which token continues it, and
/// the pacing the client must respect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Continuation {
    /// Hash of the current continuation access token.
    pub token: TokenHash,
    /// Seconds the client must wait between calls (§5: `too_fast`).
    pub wait: u64,
    /// When the current token was issued (Unix seconds): the client may not
    /// call before `issued_at + wait`.
    pub issued_at: i64,
}

/// A grant request and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrantRecord {
    /// Record format version ([`RECORD_VERSION`]).
    pub v: u32,
    /// The grant's identifier.
    pub id: GrantId,
    /// Where the grant stands.
    pub state: GrantState,
    /// The client instance's key (the grant's owner).
    pub client: KeyBinding,
    /// The instance identifier handed out for the key, if any.
    pub instance_id: Option<String>,
    /// The request as last accepted (after any PATCH).
    pub request: GrantRequest,
    /// Hashes of the access tokens issued under this grant (for revocation).
    pub tokens: Vec<TokenHash>,
    /// The continuation, while the grant can be continued.
    pub continuation: Option<Continuation>,
    /// Creation time (Unix seconds).
    pub created_at: i64,
    /// The grant and everything under it is swept after this time.
    pub expires_at: i64,
}

/// An issued access token, found by the hash of its value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Record format version ([`RECORD_VERSION`]).
    pub v: u32,
    /// The grant the token was issued under.
    pub grant: GrantId,
    /// The label the client asked for, if any.
    pub label: Option<String>,
    /// The rights the token carries.
    pub access: Vec<AccessRight>,
    /// The key the token is bound to (changes on key rotation).
    pub key: KeyBinding,
    /// Hash of the token management access token (§6).
    pub manage: TokenHash,
    /// A bearer token (§2.1.1 `bearer` flag, allowed by policy): a resource
    /// server accepts it without a signature. Management stays key-bound.
    #[serde(default)]
    pub bearer: bool,
    /// Issue time (Unix seconds).
    pub issued_at: i64,
    /// Expiry (Unix seconds).
    pub expires_at: i64,
    /// The credential set the gateway uses at each upstream the token
    /// reaches: `(upstream, credential set id)`, recorded at approval.
    /// Removing a set revokes the tokens mapped to it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub credential_sets: Vec<(String, String)>,
}

impl TokenRecord {
    /// The credential set this token uses at `upstream`, if any.
    pub fn credential_set(&self, upstream: &str) -> Option<&str> {
        self.credential_sets
            .iter()
            .find(|(u, _)| u == upstream)
            .map(|(_, id)| id.as_str())
    }

    /// True if this token is mapped to the credential set `id`.
    pub fn uses_credential_set(&self, id: &str) -> bool {
        self.credential_sets.iter().any(|(_, s)| s == id)
    }
}

/// How a credential set is presented at its upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CredentialKind {
    /// `Authorization: Bearer SECRET`.
    Bearer,
    /// `HEADER-NAME: SECRET`.
    Header,
    /// `Authorization: Basic base64(SECRET)`, the secret being `USER:PASS`.
    Basic,
    /// `Authorization: Bearer` with an access token the gateway refreshes;
    /// the secret is the JSON of `upstream::oauth2::OAuth2Credential`.
    #[serde(rename = "oauth2")]
    OAuth2,
    /// Environment variables of a stdio upstream's process, the secret
    /// being a JSON object of names to values.
    Env,
}

/// One concrete set of upstream secrets, sealed under the master key
/// (`crate::upstream::vault`) with `id` as associated data. `Debug` shows
/// no part of the sealed bytes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialSetRecord {
    /// Record format version ([`RECORD_VERSION`]).
    pub v: u32,
    /// The set's identifier (the associated data of `sealed`).
    pub id: String,
    /// The upstream it authenticates at.
    pub upstream: String,
    /// How it is presented.
    pub kind: CredentialKind,
    /// The header name, for [`CredentialKind::Header`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_name: Option<String>,
    /// `vault.seal(id, secret)`: nonce ‖ ciphertext ‖ tag.
    #[serde(with = "sealed_b64")]
    pub sealed: Vec<u8>,
    /// Creation time (Unix seconds).
    pub created_at: i64,
    /// Who connected it, for a person-connected set approved by a
    /// signed-in person (`crate::upstream::earlier::owner_of`): their later
    /// pages offer it again. Absent on enterprise-held sets and on sets
    /// connected with no login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

impl fmt::Debug for CredentialSetRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialSetRecord")
            .field("v", &self.v)
            .field("id", &self.id)
            .field("upstream", &self.upstream)
            .field("kind", &self.kind)
            .field("header_name", &self.header_name)
            .field("owner", &self.owner)
            .field(
                "sealed",
                &format_args!("{} bytes (redacted)", self.sealed.len()),
            )
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// Sealed bytes as base64url text (compact in the JSON record).
mod sealed_b64 {
    use serde::{Deserialize as _, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::proto::b64::encode_url(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        crate::proto::b64::decode_url(&text)
            .ok_or_else(|| serde::de::Error::custom("sealed bytes are base64url"))
    }
}

/// An upstream added at run time (`gnapd upstream add`). Upstreams from the
/// config file are not stored: the file stays their one source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamRecord {
    /// Record format version ([`RECORD_VERSION`]).
    pub v: u32,
    /// The upstream's name.
    pub name: String,
    /// How the gateway reaches it.
    pub transport: UpstreamTransport,
    /// When it was added (Unix seconds).
    pub created_at: i64,
}

/// How the gateway reaches a stored upstream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum UpstreamTransport {
    /// Streamable HTTP at `url`.
    Http {
        /// The endpoint.
        url: String,
    },
    /// A process the gateway spawns per MCP session.
    Stdio {
        /// The program.
        command: String,
        /// Its arguments.
        #[serde(default)]
        args: Vec<String>,
    },
}

/// A client instance the AS knows by identifier (§3.5).
///
/// It lives as long as the longest-lived grant made with it: the store
/// moves `expires_at` forward whenever it writes a grant naming the
/// instance with a later expiry, and the sweep removes it after. So an
/// instance minted for a grant nobody approved goes with that grant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceRecord {
    /// Record format version ([`RECORD_VERSION`]).
    pub v: u32,
    /// The instance's key.
    pub key: KeyBinding,
    /// Creation time (Unix seconds).
    pub created_at: i64,
    /// Swept after this time (Unix seconds). Absent in records written
    /// before instances expired: those go [`LEGACY_INSTANCE_LIFETIME`]
    /// after their creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

/// How long an instance record written before instances expired lives:
/// the default grant lifetime, 30 days.
pub const LEGACY_INSTANCE_LIFETIME: i64 = 30 * 24 * 3600;

impl InstanceRecord {
    /// When the sweep may remove it.
    pub fn expiry(&self) -> i64 {
        self.expires_at
            .unwrap_or_else(|| self.created_at.saturating_add(LEGACY_INSTANCE_LIFETIME))
    }

    /// Keeps it at least until `until` (a grant made with it expires then);
    /// true if that changed it.
    pub fn keep_until(&mut self, until: i64) -> bool {
        if self.expiry() >= until {
            return false;
        }
        self.expires_at = Some(until);
        true
    }
}

/// A resource set an RS registered (RFC 9767 §3.4), found by its
/// `resource_reference`. Never expires: an RS hands the reference out in
/// challenges and documentation, so it must keep meaning the same rights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceSetRecord {
    /// Record format version ([`RECORD_VERSION`]).
    pub v: u32,
    /// The rights the reference stands for.
    pub access: Vec<AccessRight>,
    /// RFC 7638 thumbprint of the key of the RS that registered the set.
    pub resource_server: String,
    /// The RS said it will introspect tokens for these rights.
    #[serde(default)]
    pub token_introspection_required: bool,
    /// Registration time (Unix seconds).
    pub created_at: i64,
}

/// How the client learns that the interaction finished (§2.5.2, §4.2), as
/// the AS accepted it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InteractionFinish {
    /// `redirect` or `push`.
    pub method: FinishKind,
    /// The client's callback URI.
    pub uri: String,
    /// The client's `nonce` (first line of the hash base).
    pub client_nonce: String,
    /// The AS's `finish` nonce (second line of the hash base).
    pub as_nonce: String,
    /// The hash method in force.
    pub hash_method: HashMethod,
}

/// The finish methods gnapd carries out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishKind {
    /// The RO's browser is sent to the URI with `hash` and `interact_ref`.
    Redirect,
    /// The AS POSTs `hash` and `interact_ref` to the URI.
    Push,
}

/// Where an interaction stands. Moves only forward: `Pending` to
/// `Approved` or `Denied` (a person's decision), `Approved` to `Finished`
/// (the client took the result, once).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum InteractionStatus {
    /// Waiting for a person.
    Pending,
    /// A person approved `access` (per requested token, as policy's
    /// `Approve`). With a finish method, the client must present the
    /// interaction reference whose hash is `interact_ref`.
    Approved {
        /// The approved rights, per requested token.
        access: Vec<Vec<AccessRight>>,
        /// Hash of the interaction reference, when a finish method is used.
        interact_ref: Option<TokenHash>,
        /// When (Unix seconds).
        decided_at: i64,
        /// Credential sets the person connected while deciding, as
        /// `(upstream, set id)`: the tokens issued map to them at those
        /// upstreams, in place of the enterprise-held ones.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        credential_sets: Vec<(String, String)>,
        /// The subject of the person who decided, signed in at the
        /// configured login (`crate::authz::login`); absent when no login
        /// is configured or the admin decided.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    /// A person denied the request.
    Denied {
        /// Hash of the interaction reference, when a finish method is used.
        interact_ref: Option<TokenHash>,
        /// When (Unix seconds).
        decided_at: i64,
        /// The subject of the person who decided, signed in at the
        /// configured login (`crate::authz::login`); absent when no login
        /// is configured or the admin decided.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    /// The client received its tokens: the interaction reference is spent.
    Finished {
        /// When (Unix seconds).
        at: i64,
        /// Who approved, carried over from [`InteractionStatus::Approved`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
}

impl InteractionStatus {
    /// The status once the client received its tokens at `at`: who
    /// approved stays recorded.
    pub fn finished(&self, at: i64) -> Self {
        let by = match self {
            Self::Approved { by, .. } | Self::Denied { by, .. } | Self::Finished { by, .. } => {
                by.clone()
            }
            Self::Pending => None,
        };
        Self::Finished { at, by }
    }
}

/// A grant's interaction (RFC 9635 §4): how it can start and finish and
/// where it stands. Kept beside the grant, keyed by its id, so that a
/// person's decision never races a write of the grant record itself.
/// Secrets (user code, interaction reference) are kept as hashes only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InteractionRecord {
    /// Record format version ([`RECORD_VERSION`]).
    pub v: u32,
    /// The grant.
    pub grant: GrantId,
    /// Hash of the normalized user code, when one was issued.
    pub user_code: Option<TokenHash>,
    /// The finish method, when the client asked for one gnapd carries out.
    pub finish: Option<InteractionFinish>,
    /// Hash of the secret part of the interaction page's URI (the
    /// `redirect` start mode, §3.3.1), when one was handed out. Absent in
    /// records written before the pages existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<TokenHash>,
    /// Creation time (Unix seconds).
    pub created_at: i64,
    /// The start modes stop working after this time (Unix seconds).
    pub expires_at: i64,
    /// Where it stands.
    #[serde(flatten)]
    pub status: InteractionStatus,
}

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

    /// Removes expired grants (with their tokens), tokens, instances and
    /// replay entries.
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
}
