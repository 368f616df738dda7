//! The replay memory's layout before issue 19's compaction (as of
//! 968693e), kept only to be measured beside the current one: a 128-bit
//! digest, its `until` and scope id per entry in a map per expiry minute,
//! and a count per scope.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use gnapd::proto::hash::{sha256, sha256_parts};
use gnapd::proto::httpsig::NonceStore;
use gnapd::proto::httpsig::nonce::{NonceStoreError, Seen};
use gnapd::proto::jwk::Thumbprint;

type ScopeId = [u8; 8];

#[derive(Default)]
struct Shard {
    buckets: BTreeMap<i64, HashMap<[u8; 16], (i64, ScopeId)>>,
    len: usize,
    per_scope: HashMap<ScopeId, usize>,
}

const SHARDS: usize = 16;
const BUCKET_SECS: i64 = 60;

pub struct OldNonceStore {
    shards: Vec<Mutex<Shard>>,
    capacity_per_shard: usize,
    quota_per_shard: usize,
}

impl OldNonceStore {
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity_per_shard = capacity.div_ceil(SHARDS).max(1);
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            capacity_per_shard,
            quota_per_shard: capacity_per_shard,
        }
    }
}

impl Shard {
    fn forget_expired(&mut self, now: i64) {
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

impl NonceStore for OldNonceStore {
    fn remember(
        &self,
        scope: &Thumbprint,
        value: &[u8],
        until: i64,
        now: i64,
    ) -> Result<Seen, NonceStoreError> {
        let scope_digest = sha256(scope.as_str().as_bytes());
        let full = sha256_parts(&[scope.as_str().as_bytes(), &[0], value]);
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
}
