//! Replay protection: remembering nonces (and signatures) while they could
//! still be accepted.

use std::collections::HashMap;
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
}

/// A bounded in-memory [`NonceStore`] for one process.
#[derive(Debug)]
pub struct MemoryNonceStore {
    inner: Mutex<Inner>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Inner {
    seen: HashMap<Vec<u8>, i64>,
    inserts_since_sweep: usize,
}

/// Inserts between sweeps of expired entries when the cache is not full.
const SWEEP_EVERY: usize = 4096;

impl MemoryNonceStore {
    /// A store holding at most `capacity` live values.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            capacity,
        }
    }
}

impl Default for MemoryNonceStore {
    /// One million live values: ~100 MB at worst, minutes of heavy traffic.
    fn default() -> Self {
        Self::with_capacity(1_000_000)
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
        let mut key = Vec::with_capacity(scope.as_str().len() + 1 + value.len());
        key.extend_from_slice(scope.as_str().as_bytes());
        key.push(0);
        key.extend_from_slice(value);
        let mut inner = self
            .inner
            .lock()
            .map_err(|_| NonceStoreError::Unavailable)?;
        if inner.seen.get(&key).is_some_and(|expiry| *expiry >= now) {
            return Ok(Seen::Replayed);
        }
        inner.inserts_since_sweep += 1;
        if inner.seen.len() >= self.capacity || inner.inserts_since_sweep >= SWEEP_EVERY {
            inner.seen.retain(|_, expiry| *expiry >= now);
            inner.inserts_since_sweep = 0;
            if inner.seen.len() >= self.capacity {
                return Err(NonceStoreError::Full);
            }
        }
        inner.seen.insert(key, until);
        Ok(Seen::Fresh)
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
        let store = MemoryNonceStore::with_capacity(2);
        let s = scope();
        assert_eq!(store.remember(&s, b"a", 10, 0), Ok(Seen::Fresh));
        assert_eq!(store.remember(&s, b"b", 10, 0), Ok(Seen::Fresh));
        assert_eq!(store.remember(&s, b"c", 10, 0), Err(NonceStoreError::Full));
        assert_eq!(store.remember(&s, b"c", 20, 11), Ok(Seen::Fresh));
    }
}
