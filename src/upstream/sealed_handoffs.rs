//! The shared entries (`crate::store::handoff`) with their values sealed
//! under the master key: what a sign-in under way or a browser's binding
//! holds (a PKCE verifier, an OIDC nonce, a finish URL with its
//! `interact_ref`) must cross nodes, and a dump of the database must not
//! give it away.
//!
//! An entry is named by a string (a `state`, a grant id), stored under its
//! SHA-256, and its value is JSON sealed with the kind and that digest as
//! associated data: a row copied under another key or kind does not open.
//! A value that does not open or read is treated as absent (and logged):
//! the flow it belonged to fails closed.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::store::{HandoffKey, HandoffKind, Handoffs, Store, StoreError};
use crate::upstream::vault::MasterKey;

/// Shared entries with sealed values: present only when the store keeps
/// entries for several nodes and a master key is given.
#[derive(Clone)]
pub struct SealedHandoffs {
    store: Arc<dyn Store>,
    key: Arc<MasterKey>,
}

impl std::fmt::Debug for SealedHandoffs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealedHandoffs")
    }
}

fn digest(name: &str) -> HandoffKey {
    crate::proto::hash::sha256(name.as_bytes())
}

/// The associated data a value is sealed with: its kind and key.
fn record_id(kind: HandoffKind, key: &HandoffKey) -> String {
    format!(
        "handoff:{}:{}",
        kind.as_str(),
        crate::proto::b64::encode_url(key)
    )
}

impl SealedHandoffs {
    /// The sealed entries of `store` under `key`, if `store` keeps shared
    /// entries (`None` on memory and sled: one node keeps its own memory).
    pub fn of(store: Arc<dyn Store>, key: Arc<MasterKey>) -> Option<Self> {
        store.handoffs()?;
        Some(Self { store, key })
    }

    fn entries(&self) -> Result<&dyn Handoffs, StoreError> {
        self.store
            .handoffs()
            .ok_or_else(|| StoreError::Backend("the store keeps no shared entries".into()))
    }

    fn seal<V: Serialize>(
        &self,
        kind: HandoffKind,
        key: &HandoffKey,
        value: &V,
    ) -> Result<Vec<u8>, StoreError> {
        let json = zeroize::Zeroizing::new(
            serde_json::to_vec(value).map_err(|e| StoreError::Backend(e.to_string()))?,
        );
        self.key
            .seal(&record_id(kind, key), &json)
            .map_err(|e| StoreError::Backend(format!("sealing a shared entry: {e}")))
    }

    fn open<V: DeserializeOwned>(
        &self,
        kind: HandoffKind,
        key: &HandoffKey,
        sealed: Option<Vec<u8>>,
    ) -> Option<V> {
        let sealed = sealed?;
        let read = self
            .key
            .open(&record_id(kind, key), &sealed)
            .ok()
            .and_then(|json| serde_json::from_slice(&json).ok());
        if read.is_none() {
            tracing::warn!(
                kind = kind.as_str(),
                "a shared entry does not open under this master key"
            );
        }
        read
    }

    /// Writes the entry named `name`, replacing whatever held it.
    pub fn put<V: Serialize>(
        &self,
        kind: HandoffKind,
        name: &str,
        value: &V,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let key = digest(name);
        let sealed = self.seal(kind, &key, value)?;
        self.entries()?.put_handoff(kind, &key, &sealed, expires_at)
    }

    /// Writes the entry named `name` unless a live one holds it: whether
    /// written (of concurrent claims exactly one is).
    pub fn claim<V: Serialize>(
        &self,
        kind: HandoffKind,
        name: &str,
        value: &V,
        now: i64,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let key = digest(name);
        let sealed = self.seal(kind, &key, value)?;
        self.entries()?
            .claim_handoff(kind, &key, &sealed, now, expires_at)
    }

    /// The live entry named `name`, left in place.
    pub fn get<V: DeserializeOwned>(
        &self,
        kind: HandoffKind,
        name: &str,
        now: i64,
    ) -> Result<Option<V>, StoreError> {
        let key = digest(name);
        let sealed = self.entries()?.handoff(kind, &key, now)?;
        Ok(self.open(kind, &key, sealed))
    }

    /// The live entry named `name`, removed: of concurrent takers exactly
    /// one gets it.
    pub fn take<V: DeserializeOwned>(
        &self,
        kind: HandoffKind,
        name: &str,
        now: i64,
    ) -> Result<Option<V>, StoreError> {
        let key = digest(name);
        let sealed = self.entries()?.take_handoff(kind, &key, now)?;
        Ok(self.open(kind, &key, sealed))
    }

    /// Removes the entry named `name`: whether there was one.
    pub fn remove(&self, kind: HandoffKind, name: &str) -> Result<bool, StoreError> {
        self.remove_digest(kind, &digest(name))
    }

    /// Removes the entry whose name has the SHA-256 `key` (a caller that
    /// kept only the digest of the name).
    pub fn remove_digest(&self, kind: HandoffKind, key: &HandoffKey) -> Result<bool, StoreError> {
        self.entries()?.remove_handoff(kind, key)
    }
}
