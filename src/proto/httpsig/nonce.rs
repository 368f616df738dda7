//! Replay protection: remembering nonces (and signatures) while they could
//! still be accepted.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use crate::proto::jwk::Thumbprint;

/// Whether a value was new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// First sighting: the request may proceed.
    Fresh,
    /// Seen before inside its window: a replay.
    Replayed,
}

/// The store could not answer; verification fails closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NonceStoreError {
    /// Every slot holds a value still inside its window.
    #[error("the replay cache is full")]
    Full,
    /// This key holds its whole share of the cache ([`MemoryNonceStore::with_key_quota`]):
    /// one key may not take the room of every other.
    #[error("this key's share of the replay cache is full")]
    KeyQuota,
    /// The backing store failed.
    #[error("the replay cache is unavailable")]
    Unavailable,
}

/// Remembers single-use values per key until they age out.
///
/// Contract: `remember` is atomic. Two concurrent calls with the same scope
/// and value see exactly one [`Seen::Fresh`].
pub trait NonceStore: Send + Sync {
    /// Records `value` for `scope` until `until` (Unix seconds) and says
    /// whether it was fresh. Values whose `until` is before `now` may be
    /// forgotten.
    fn remember(
        &self,
        scope: &Thumbprint,
        value: &[u8],
        until: i64,
        now: i64,
    ) -> Result<Seen, NonceStoreError>;

    /// Signatures created before this instant (Unix seconds) must be
    /// refused: the store cannot vouch that they were not used before it
    /// began remembering (an in-memory cache after a restart). A store
    /// whose memory outlives the process answers `i64::MIN`.
    fn horizon(&self) -> i64 {
        i64::MIN
    }
}

/// A bounded in-memory [`NonceStore`] for one process.
///
/// Entries are kept by a 128-bit digest of (scope, value), in shards (so
/// concurrent requests rarely wait for each other) and, inside a shard, in
/// buckets by expiry minute: forgetting expired values drops whole buckets
/// instead of scanning every entry, so the cost per request stays flat
/// however many values the window holds. Each shard also counts its live
/// values per scope, so that one key can be held to a share of the whole.
#[derive(Debug)]
pub struct MemoryNonceStore {
    shards: Vec<Mutex<Shard>>,
    capacity_per_shard: usize,
    quota_per_shard: usize,
    horizon: i64,
}

/// A scope's short name inside a shard: 64 bits of its digest.
type ScopeId = [u8; 8];

/// Entries by expiry bucket (`until / BUCKET_SECS`): digest → (`until`,
/// scope), and live entries per scope.
#[derive(Debug, Default)]
struct Shard {
    buckets: BTreeMap<i64, HashMap<[u8; 16], (i64, ScopeId)>>,
    len: usize,
    per_scope: HashMap<ScopeId, usize>,
}

const SHARDS: usize = 16;
const BUCKET_SECS: i64 = 60;

impl MemoryNonceStore {
    /// A store holding at most about `capacity` live values.
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity_per_shard = capacity.div_ceil(SHARDS).max(1);
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            capacity_per_shard,
            quota_per_shard: capacity_per_shard,
            horizon: i64::MIN,
        }
    }

    /// The same store, holding at most about `quota` live values per scope
    /// (a key): past it that key's signed requests fail with
    /// [`NonceStoreError::KeyQuota`] while other keys still get in. Counted
    /// per shard (`quota / 16` each), so a key is refused somewhat before
    /// it holds `quota` values in all.
    pub fn with_key_quota(mut self, quota: usize) -> Self {
        self.quota_per_shard = quota.div_ceil(SHARDS).max(1);
        self
    }

    /// Values held now, for metrics and tests (locks every shard in turn).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .filter_map(|s| s.lock().ok().map(|s| s.len))
            .sum()
    }

    /// True if no value is held.
    /// Bytes the entries hold: each remembered signature's digest, expiry
    /// and key id, and each key's count (the maps' own overhead aside).
    pub fn bytes(&self) -> usize {
        const ENTRY: usize = 16 + 8 + 8;
        const PER_KEY: usize = 8 + 8;
        self.shards
            .iter()
            .filter_map(|s| {
                s.lock()
                    .ok()
                    .map(|s| s.len * ENTRY + s.per_scope.len() * PER_KEY)
            })
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The same store, refusing signatures created before `horizon` (see
    /// [`NonceStore::horizon`]): for a server's replay cache, the second
    /// the process started.
    pub fn since(mut self, horizon: i64) -> Self {
        self.horizon = horizon;
        self
    }
}

/// The default capacity: four million live values (~200 MB at worst).
/// A value stays until its signature's window ends, rounded up to the
/// next minute: with the default window (`max_age` 300 s) that is at most
/// six minutes, so the default sustains about 11,000 signed requests per
/// second ([`sustained_rate`]). Past it, requests fail closed.
pub const DEFAULT_CAPACITY: usize = 4_000_000;

impl Default for MemoryNonceStore {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }
}

/// Signed requests per second a cache of `capacity` sustains when values
/// live `max_age` seconds: each stays until its window ends plus at most
/// one expiry bucket.
pub fn sustained_rate(capacity: usize, max_age: i64) -> u64 {
    let lifetime = u64::try_from(max_age.max(0)).unwrap_or(0) + BUCKET_SECS as u64;
    capacity as u64 / lifetime
}

impl Shard {
    fn forget_expired(&mut self, now: i64) {
        // A bucket holds values expiring within its minute: all of it is
        // gone once that minute is over.
        while let Some((&bucket, _)) = self.buckets.first_key_value() {
            if bucket.saturating_add(1).saturating_mul(BUCKET_SECS) > now {
                break;
            }
            if let Some(entries) = self.buckets.remove(&bucket) {
                self.len -= entries.len();
                for (_, scope) in entries.values() {
                    if let Some(count) = self.per_scope.get_mut(scope) {
                        *count -= 1;
                        if *count == 0 {
                            self.per_scope.remove(scope);
                        }
                    }
                }
            }
        }
    }

    fn live(&self, digest: &[u8; 16], now: i64) -> bool {
        self.buckets
            .values()
            .any(|b| b.get(digest).is_some_and(|(until, _)| *until >= now))
    }
}

impl NonceStore for MemoryNonceStore {
    fn remember(
        &self,
        scope: &Thumbprint,
        value: &[u8],
        until: i64,
        now: i64,
    ) -> Result<Seen, NonceStoreError> {
        let scope_digest = crate::proto::hash::sha256(scope.as_str().as_bytes());
        let full = crate::proto::hash::sha256_parts(&[scope.as_str().as_bytes(), &[0], value]);
        let mut digest = [0u8; 16];
        digest.copy_from_slice(&full[..16]);
        let mut scope_id = [0u8; 8];
        scope_id.copy_from_slice(&scope_digest[..8]);
        let shard = &self.shards[usize::from(digest[0]) % SHARDS];
        let mut shard = shard.lock().map_err(|_| NonceStoreError::Unavailable)?;
        shard.forget_expired(now);
        if shard.live(&digest, now) {
            return Ok(Seen::Replayed);
        }
        if shard.len >= self.capacity_per_shard {
            return Err(NonceStoreError::Full);
        }
        let held = shard.per_scope.get(&scope_id).copied().unwrap_or(0);
        if held >= self.quota_per_shard {
            return Err(NonceStoreError::KeyQuota);
        }
        let bucket = until.div_euclid(BUCKET_SECS);
        let entries = shard.buckets.entry(bucket).or_default();
        if entries.insert(digest, (until, scope_id)).is_none() {
            shard.len += 1;
            *shard.per_scope.entry(scope_id).or_default() += 1;
        }
        Ok(Seen::Fresh)
    }

    fn horizon(&self) -> i64 {
        self.horizon
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::httpsig::Algorithm;
    use crate::proto::jwk::SigningKey;

    fn scope() -> Thumbprint {
        SigningKey::generate(Algorithm::Ed25519)
            .unwrap()
            .verifying_key()
            .thumbprint()
            .clone()
    }

    #[test]
    fn a_value_is_fresh_once_inside_its_window_and_again_after() {
        let store = MemoryNonceStore::default();
        let s = scope();
        assert_eq!(store.remember(&s, b"n", 100, 0), Ok(Seen::Fresh));
        assert_eq!(store.remember(&s, b"n", 100, 50), Ok(Seen::Replayed));
        assert_eq!(store.remember(&s, b"n", 200, 101), Ok(Seen::Fresh));
    }

    #[test]
    fn scopes_do_not_share_values() {
        let store = MemoryNonceStore::default();
        assert_eq!(store.remember(&scope(), b"n", 100, 0), Ok(Seen::Fresh));
        assert_eq!(store.remember(&scope(), b"n", 100, 0), Ok(Seen::Fresh));
    }

    #[test]
    fn a_full_cache_fails_closed_until_values_expire() {
        // One value per shard: by the pigeonhole principle one of 17 values
        // finds its shard full.
        let store = MemoryNonceStore::with_capacity(SHARDS);
        let s = scope();
        let mut full = None;
        for i in 0..=SHARDS {
            match store.remember(&s, &[i as u8], 10, 0) {
                Ok(Seen::Fresh) => {}
                Err(NonceStoreError::Full) => {
                    full = Some(i);
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        let i = full.expect("a shard filled up");
        // Once the first minute's values have expired, there is room again.
        assert_eq!(store.remember(&s, &[i as u8], 200, 121), Ok(Seen::Fresh));
    }

    #[test]
    fn one_key_is_held_to_its_quota_while_other_keys_still_get_in() {
        // 32 values per key in all: two per shard.
        let store = MemoryNonceStore::with_capacity(16_000).with_key_quota(32);
        let greedy = scope();
        let mut fresh = 0;
        let mut refused = 0;
        for i in 0..200u32 {
            match store.remember(&greedy, &i.to_be_bytes(), 100, 0) {
                Ok(Seen::Fresh) => fresh += 1,
                Err(NonceStoreError::KeyQuota) => refused += 1,
                other => panic!("{other:?}"),
            }
        }
        // Two per shard, sixteen shards: never more than 32 in all.
        assert!(fresh <= 32 && refused >= 168, "{fresh} {refused}");
        // Another key is not held to the greedy one's count.
        let other = scope();
        assert_eq!(store.remember(&other, b"n", 100, 0), Ok(Seen::Fresh));
        // A value already seen is still a replay, not a quota refusal.
        assert_eq!(
            store.remember(&greedy, &0u32.to_be_bytes(), 100, 50),
            Ok(Seen::Replayed)
        );
        // Once its values expire the key gets its share back.
        assert_eq!(store.remember(&greedy, b"later", 300, 121), Ok(Seen::Fresh));
        let counted: usize = store
            .shards
            .iter()
            .map(|shard| shard.lock().unwrap().per_scope.values().sum::<usize>())
            .sum();
        assert_eq!(counted, store.len(), "per-key counts follow expiry");
    }

    #[test]
    fn expired_buckets_are_dropped_whole_and_live_ones_kept() {
        let store = MemoryNonceStore::default();
        let s = scope();
        assert_eq!(store.remember(&s, b"early", 50, 0), Ok(Seen::Fresh));
        assert_eq!(store.remember(&s, b"late", 500, 0), Ok(Seen::Fresh));
        assert_eq!(store.remember(&s, b"late", 500, 400), Ok(Seen::Replayed));
        assert_eq!(store.remember(&s, b"early", 600, 400), Ok(Seen::Fresh));
        let held: usize = store
            .shards
            .iter()
            .map(|shard| shard.lock().unwrap().len)
            .sum();
        assert_eq!(held, 2, "the first `early` entry went with its bucket");
    }

    #[test]
    fn the_default_capacity_sustains_eleven_thousand_signed_requests_a_second() {
        assert_eq!(sustained_rate(DEFAULT_CAPACITY, 300), 11_111);
        assert_eq!(sustained_rate(36_000_000, 300), 100_000);
        assert_eq!(sustained_rate(600, -5), 10);
    }

    #[test]
    fn the_horizon_is_where_the_memory_began() {
        assert_eq!(MemoryNonceStore::default().horizon(), i64::MIN);
        assert_eq!(MemoryNonceStore::default().since(1_700).horizon(), 1_700);
    }
}
