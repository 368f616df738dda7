//! One record per grant: the grant with every access token issued under
//! it, under a key made from the grant's identifier.
//!
//! An immediately approved grant is then one key written once, at the end
//! of a tree whose keys are time-ordered (UUID v7 identifiers): the cheapest
//! durable write sled offers (`benches/sled_layouts`: ~38 µs and ~450 bytes
//! on disk for a 200-byte record, against ~167 µs and ~3,700 bytes for the
//! five records in five trees it replaces). Tokens, continuation and
//! management tokens minted by gnapd carry the grant's locator in their hash
//! ([`TokenHash::locator`]), so no index is needed to find them; a hash
//! that does not locate its grant (records migrated from the five-tree
//! layout, or written by callers with other values) gets an entry in the
//! token index instead.

use serde::{Deserialize, Serialize};

use crate::store::codec::Versioned;
use crate::store::{
    GrantId, GrantRecord, InstanceRecord, LOCATOR_LEN, RECORD_VERSION, TokenHash, TokenRecord,
};

/// Key prefix of a grant whose identifier is a canonical UUID: its 16 bytes
/// follow.
const UUID_KEY: u8 = 1;
/// Key prefix of any other grant identifier: its UTF-8 bytes follow.
const TEXT_KEY: u8 = 2;

/// A grant's record key: a prefix byte tells a UUID's bytes from other text,
/// so no identifier's key can be another's.
pub(crate) fn grant_key(id: &GrantId) -> Vec<u8> {
    match id.locator() {
        Some(locator) => located(&locator).to_vec(),
        None => [&[TEXT_KEY][..], id.0.as_bytes()].concat(),
    }
}

/// The record key a token hash's locator names.
pub(crate) fn located_key(hash: &TokenHash) -> [u8; LOCATOR_LEN + 1] {
    located(&hash.locator())
}

fn located(locator: &[u8; LOCATOR_LEN]) -> [u8; LOCATOR_LEN + 1] {
    let mut key = [UUID_KEY; LOCATOR_LEN + 1];
    key[1..].copy_from_slice(locator);
    key
}

/// A grant and the access tokens issued under it, as the store keeps them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct GrantEntry {
    /// Record format version ([`RECORD_VERSION`]).
    pub v: u32,
    /// The grant's expiry, first so a sweep reads it without the rest.
    pub expires_at: i64,
    /// The earliest expiry among the tokens a sweep removes on their own
    /// ([`tokens_expire`]), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_expire: Option<i64>,
    /// The grant.
    pub grant: GrantRecord,
    /// Its live access tokens, by hash.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tokens: Vec<(TokenHash, TokenRecord)>,
    /// The client instance minted with this grant, whose identifier is the
    /// grant's. When the grant goes first, the instance moves to the
    /// instances tree (`SledStore::remove_grant_entry`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<InstanceRecord>,
}

impl Versioned for GrantEntry {
    const KIND: &'static str = "grant";

    /// The first version other than this build's among the entry and the
    /// records it holds: a grant or token of another format is refused like
    /// an entry of another format.
    fn version(&self) -> u32 {
        [self.v, self.grant.v]
            .into_iter()
            .chain(self.tokens.iter().map(|(_, t)| t.v))
            .chain(self.instance.iter().map(|i| i.v))
            .find(|&v| v != RECORD_VERSION)
            .unwrap_or(RECORD_VERSION)
    }
}

/// The earliest expiry among the tokens a sweep removes on their own (all
/// but OAuth tokens, which hold their refresh token and go with the grant).
pub(super) fn tokens_expire(tokens: &[(TokenHash, TokenRecord)]) -> Option<i64> {
    tokens
        .iter()
        .filter(|(_, t)| t.oauth.is_none())
        .map(|(_, t)| t.expires_at)
        .min()
}

/// Every hash a lookup may find a grant by: its continuation token, each
/// access token and each management token.
pub(crate) fn hashes_of<'a>(
    grant: &'a GrantRecord,
    tokens: &'a [(TokenHash, TokenRecord)],
) -> impl Iterator<Item = &'a TokenHash> {
    let continuation = grant.continuation.as_ref().map(|c| &c.token);
    continuation
        .into_iter()
        .chain(tokens.iter().flat_map(|(h, t)| [h, &t.manage]))
}

/// What a sweep reads of an entry.
#[derive(Debug, PartialEq, Deserialize)]
pub(crate) struct EntryExpiry {
    pub v: u32,
    pub expires_at: i64,
    #[serde(default)]
    pub tokens_expire: Option<i64>,
}

impl GrantEntry {
    /// An entry for `grant` with `tokens` (and no instance).
    pub(crate) fn new(grant: GrantRecord, tokens: Vec<(TokenHash, TokenRecord)>) -> Self {
        let mut entry = Self {
            v: RECORD_VERSION,
            expires_at: grant.expires_at,
            tokens_expire: None,
            grant,
            tokens,
            instance: None,
        };
        entry.refresh_summary();
        entry
    }

    /// Sets the grant, keeping its tokens.
    pub(crate) fn set_grant(&mut self, grant: GrantRecord) {
        self.grant = grant;
        self.refresh_summary();
    }

    /// Adds tokens.
    pub(crate) fn add_tokens(&mut self, tokens: &[(TokenHash, TokenRecord)]) {
        self.tokens.extend(tokens.iter().cloned());
        self.refresh_summary();
    }

    /// Removes the tokens `drop` picks; how many went.
    pub(crate) fn remove_tokens(
        &mut self,
        mut drop: impl FnMut(&TokenHash, &TokenRecord) -> bool,
    ) -> usize {
        let before = self.tokens.len();
        self.tokens.retain(|(hash, record)| !drop(hash, record));
        self.refresh_summary();
        before - self.tokens.len()
    }

    /// Keeps the expiries a sweep reads in step with the records.
    fn refresh_summary(&mut self) {
        self.expires_at = self.grant.expires_at;
        self.tokens_expire = tokens_expire(&self.tokens);
    }

    /// The access token with hash `hash`.
    pub(crate) fn token(&self, hash: &TokenHash) -> Option<&TokenRecord> {
        self.tokens
            .iter()
            .find(|(h, _)| h.same_as(hash))
            .map(|(_, t)| t)
    }

    /// The access token the management token `manage` manages, with its hash.
    pub(crate) fn managed_by(&self, manage: &TokenHash) -> Option<&(TokenHash, TokenRecord)> {
        self.tokens.iter().find(|(_, t)| t.manage.same_as(manage))
    }

    /// True if `hash` is the grant's current continuation token.
    pub(crate) fn continued_by(&self, hash: &TokenHash) -> bool {
        self.grant
            .continuation
            .as_ref()
            .is_some_and(|c| c.token.same_as(hash))
    }

    /// Every hash a lookup may find this entry by: the continuation token,
    /// each access token and each management token.
    pub(crate) fn hashes(&self) -> impl Iterator<Item = &TokenHash> {
        hashes_of(&self.grant, &self.tokens)
    }

    /// True if a lookup by `hash` may find this entry.
    pub(crate) fn found_by(&self, hash: &TokenHash) -> bool {
        self.hashes().any(|h| h.same_as(hash))
    }
}

/// True if `hash` locates the record under `key` by itself; a hash that
/// does not needs a token index entry.
pub(crate) fn locates(key: &[u8], hash: &TokenHash) -> bool {
    located_key(hash)[..] == *key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uuid_grant_and_a_text_grant_never_share_a_key() {
        let uuid = GrantId("0190a0b0-c0d0-7e0f-8a1b-2c3d4e5f6a7b".into());
        let key = grant_key(&uuid);
        assert_eq!(key.len(), 17);
        assert_eq!(key[0], UUID_KEY);
        // Sixteen bytes of text are not a UUID's sixteen bytes.
        let text = GrantId(String::from_utf8(key[1..].to_vec()).unwrap_or("x".repeat(16)));
        assert_ne!(grant_key(&text), key);
        // Not canonical: another key, not the UUID's.
        let upper = GrantId(uuid.0.to_uppercase());
        assert_eq!(grant_key(&upper)[0], TEXT_KEY);
    }

    #[test]
    fn a_minted_value_locates_its_grant_and_a_plain_one_does_not() {
        let grant = GrantId("0190a0b0-c0d0-7e0f-8a1b-2c3d4e5f6a7b".into());
        let locator = grant.locator().unwrap();
        let value = crate::store::located_value(&locator, &[7; 32]);
        assert_eq!(value.len(), 64);
        let hash = TokenHash::of(&value);
        assert_eq!(located_key(&hash)[..], grant_key(&grant)[..]);
        // The rest of the hash is the value's digest, not the secret.
        let digest = crate::proto::hash::sha256(value.as_bytes());
        assert_eq!(hash.0[16..], digest[..16]);
        // One character off: the same locator, another hash.
        let mut forged = value.clone().into_bytes();
        forged[63] = if forged[63] == b'A' { b'B' } else { b'A' };
        let forged = TokenHash::of(std::str::from_utf8(&forged).unwrap());
        assert_eq!(forged.locator(), hash.locator());
        assert!(!forged.same_as(&hash));
        // A 43-character value is hashed whole.
        let plain = "a".repeat(43);
        assert_eq!(
            TokenHash::of(&plain).0,
            crate::proto::hash::sha256(plain.as_bytes())
        );
    }
}
