//! Replay protection: remembering nonces (and signatures) while they could
//! still be accepted.

use std::sync::Mutex;

use crate::proto::hash::SecretSha256;
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

#[cfg(test)]
mod guarantees;
mod table;

use table::{Key, Refusal, Shard};

/// Seconds an expiry bucket of [`MemoryNonceStore`] spans: a value is
/// forgotten at the end of the bucket its `until` falls in, so at most
/// this long after `until`.
pub const EXPIRY_BUCKET_SECS: i64 = 5;

/// A bounded in-memory [`NonceStore`] for one process.
///
/// Each value is kept as one 64-bit word (`table`'s notes): a digest of
/// (scope, value) under a secret drawn when the store is made, so nobody
/// outside can aim two values at one word, in shards (so concurrent
/// requests rarely wait for each other), forgotten a 5-second expiry
/// bucket at a time. A value's scope (a key) is counted in one of a
/// fixed number of slots, so that one key can be held to a share of the
/// whole without a map entry per key.
///
/// What sharing costs, at the default sizes:
/// - two different values with the same word: the second is refused as a
///   replay (fails closed; the client signs again). The word keeps 57 bits
///   of digest and the slot, and the shard takes 4 more, so a fresh value
///   meets a live word it is not with probability about `n / 2^61` for `n`
///   live values spread over many keys: 1.7e-12 at 4 million, one
///   refusal in about 15 months at 15,000 requests a second. Among one
///   key's own values (they share a slot) it is `q / 2^(57 - slot bits)`
///   for `q` values of that slot in a shard: 2e-9 for a key holding the
///   whole default bound quota (71,875 a shard, 12 slot bits);
/// - keys whose slots coincide share a quota: while one key holds its
///   whole quota, the keys in its slot are refused with it, one key in
///   4,096 (the default bound budget) or 8,192 (unapproved), so 0.024% or
///   0.012% of the others per greedy key. Honest keys together fill a slot
///   to an eighth of the quota on average, since there are at least 8
///   slots per quota's worth of capacity.
#[derive(Debug)]
pub struct MemoryNonceStore {
    shards: Vec<Mutex<Shard>>,
    capacity_per_shard: usize,
    quota_per_shard: u32,
    slot_bits: u32,
    /// `None` if the OS gave no randomness: then every request fails
    /// closed rather than be remembered under a guessable digest.
    digests: Option<SecretSha256>,
    horizon: i64,
}

const SHARDS: usize = 16;
/// Fewest and most scope slots per shard (bits).
const MIN_SLOT_BITS: u32 = 12;
const MAX_SLOT_BITS: u32 = 16;

impl MemoryNonceStore {
    /// A store holding at most about `capacity` live values.
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity_per_shard = capacity.div_ceil(SHARDS).clamp(1, u32::MAX as usize);
        let mut secret = [0u8; 64];
        let digests = crate::random::fill(&mut secret)
            .ok()
            .map(|()| SecretSha256::new(&secret));
        let quota = u32::try_from(capacity_per_shard).unwrap_or(u32::MAX);
        Self {
            shards: Vec::new(),
            capacity_per_shard,
            quota_per_shard: quota,
            slot_bits: 0,
            digests,
            horizon: i64::MIN,
        }
        .with_slots()
    }

    /// The same store, holding at most about `quota` live values per scope
    /// (a key): past it that key's signed requests fail with
    /// [`NonceStoreError::KeyQuota`] while other keys still get in. Counted
    /// per shard (`quota / 16` each), so a key is refused somewhat before
    /// it holds `quota` values in all. Call it before anything is
    /// remembered (the store is made anew).
    pub fn with_key_quota(mut self, quota: usize) -> Self {
        self.quota_per_shard = u32::try_from(quota.div_ceil(SHARDS).max(1)).unwrap_or(u32::MAX);
        self.with_slots()
    }

    /// Empty shards with slots enough that honest keys sharing one stay
    /// far below the quota: at least 8 per quota's worth of capacity.
    fn with_slots(mut self) -> Self {
        let wanted = (self.capacity_per_shard / self.quota_per_shard as usize).saturating_mul(8);
        self.slot_bits = wanted
            .next_power_of_two()
            .trailing_zeros()
            .clamp(MIN_SLOT_BITS, MAX_SLOT_BITS);
        self.shards = (0..SHARDS)
            .map(|_| Mutex::new(Shard::new(self.slot_bits)))
            .collect();
        self
    }

    /// Values held now, for metrics and tests (locks every shard in turn).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .filter_map(|s| s.lock().ok().map(|s| s.len()))
            .sum()
    }

    /// Bytes the store holds: its tables as allocated (empty slots
    /// included) and its quota counters.
    pub fn bytes(&self) -> usize {
        self.shards
            .iter()
            .filter_map(|s| s.lock().ok().map(|s| s.bytes()))
            .sum()
    }

    /// True if no value is held.
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

/// The default capacity: 4,600,000 live values, about 15,000 signed
/// requests a second sustained with `max_age` 300 ([`sustained_rate`]: a
/// value stays until its window ends, plus at most one 5-second bucket).
/// At worst about 76 MB: 287,500 values a shard fill hashbrown's table of
/// 2^19 slots (9 bytes each) to 55%, 4.7 MB a shard, 75.5 MB for 16, plus
/// 0.26 MB of quota counters; while a shard's table doubles, its old one
/// is held too. Past it, requests fail closed.
pub const DEFAULT_CAPACITY: usize = 4_600_000;

impl Default for MemoryNonceStore {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }
}

/// Signed requests per second a cache of `capacity` sustains when values
/// live `max_age` seconds: each stays until its window ends plus at most
/// one expiry bucket.
pub fn sustained_rate(capacity: usize, max_age: i64) -> u64 {
    let lifetime = u64::try_from(max_age.max(0)).unwrap_or(0) + EXPIRY_BUCKET_SECS as u64;
    capacity as u64 / lifetime
}

fn word(bytes: &[u8; 32], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

impl NonceStore for MemoryNonceStore {
    fn remember(
        &self,
        scope: &Thumbprint,
        value: &[u8],
        until: i64,
        now: i64,
    ) -> Result<Seen, NonceStoreError> {
        let digests = self.digests.as_ref().ok_or(NonceStoreError::Unavailable)?;
        let (scope_digest, digest) =
            digests.head_and_whole(scope.as_str().as_bytes(), &[&[0], value]);
        let key = Key::new(word(&digest, 0), word(&scope_digest, 0), self.slot_bits);
        let shard = &self.shards[usize::from(digest[8]) % SHARDS];
        let mut shard = shard.lock().map_err(|_| NonceStoreError::Unavailable)?;
        match shard.remember(
            key,
            until,
            now,
            self.capacity_per_shard,
            self.quota_per_shard,
        ) {
            Ok(()) => Ok(Seen::Fresh),
            Err(Refusal::Seen) => Ok(Seen::Replayed),
            Err(Refusal::Full) => Err(NonceStoreError::Full),
            Err(Refusal::Quota) => Err(NonceStoreError::KeyQuota),
        }
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
        // Kept to the end of its expiry bucket, then forgotten.
        assert_eq!(store.remember(&s, b"n", 200, 104), Ok(Seen::Replayed));
        assert_eq!(store.remember(&s, b"n", 200, 105), Ok(Seen::Fresh));
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
        // Once the first bucket's values have expired, there is room again.
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
            .map(|shard| shard.lock().unwrap().held_total())
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
            .map(|shard| shard.lock().unwrap().len())
            .sum();
        assert_eq!(held, 2, "the first `early` entry went with its bucket");
    }

    #[test]
    fn the_default_capacity_sustains_fifteen_thousand_signed_requests_a_second() {
        assert_eq!(sustained_rate(DEFAULT_CAPACITY, 300), 15_081);
        assert_eq!(sustained_rate(30_500_000, 300), 100_000);
        assert_eq!(sustained_rate(600, -5), 120);
    }

    #[test]
    fn the_horizon_is_where_the_memory_began() {
        assert_eq!(MemoryNonceStore::default().horizon(), i64::MIN);
        assert_eq!(MemoryNonceStore::default().since(1_700).horizon(), 1_700);
    }
}
