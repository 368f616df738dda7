//! Decoded records kept in memory beside sled, so that the gateway's
//! per-call lookups (a token by hash, its credential set by id) skip the
//! sled read and the record decode.
//!
//! Correctness rests on a generation counter, not on invalidating entries
//! one by one: every write that may remove or change a cached kind of record
//! bumps the generation *after* its sled transaction has committed, and an
//! entry is only served if it was read under the current generation. A
//! reader that loads the generation, then reads sled, either sees the write
//! (and caches the new state) or caches the old state under a generation the
//! writer is about to retire. So once a revocation returns, no lookup that
//! starts afterwards can see the revoked token. Any such write retires the
//! whole cache; writes of the kinds that retire it (revocations, rotations,
//! sweeps, credential changes) are rare next to the reads it serves.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// At most this many entries; the map is emptied when full (entries are
/// cheap to read back, and agents are many and short-lived).
const CAPACITY: usize = 16_384;

/// A generation-checked cache of decoded records.
#[derive(Debug)]
pub struct Cache<K, V> {
    generation: AtomicU64,
    entries: Mutex<HashMap<K, (u64, V)>>,
}

impl<K, V> Default for Cache<K, V> {
    fn default() -> Self {
        Self {
            generation: AtomicU64::new(0),
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash + Clone, V: Clone> Cache<K, V> {
    /// The generation to read under: load it *before* reading the store.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The cached value for `key`, if it was read under `generation`.
    pub fn get<Q>(&self, key: &Q, generation: u64) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let entries = self.entries.lock().ok()?;
        entries
            .get(key)
            .filter(|(read_under, _)| *read_under == generation)
            .map(|(_, value)| value.clone())
    }

    /// Remembers `value`, read from the store under `generation`.
    pub fn put(&self, key: K, value: V, generation: u64) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= CAPACITY {
                entries.clear();
            }
            entries.insert(key, (generation, value));
        }
    }

    /// How many entries are held, and their bytes as `bytes_of` counts
    /// each.
    pub fn size(&self, bytes_of: impl Fn(&K, &V) -> usize) -> super::TableSize {
        let mut size = super::TableSize::default();
        if let Ok(entries) = self.entries.lock() {
            for (key, (_, value)) in entries.iter() {
                size.add(0, bytes_of(key, value));
            }
        }
        size
    }

    /// Retires every entry: call after a committed write that may change or
    /// remove a cached record.
    pub fn retire(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_read_before_a_retiring_write_is_never_served_after_it() {
        let cache: Cache<u8, &str> = Cache::default();
        let before = cache.generation();
        cache.put(1, "live", before);
        assert_eq!(cache.get(&1, cache.generation()), Some("live"));
        // A reader that loaded the generation, then a write retires it,
        // then the reader caches what it read: never served again.
        let reader = cache.generation();
        cache.retire();
        cache.put(2, "stale", reader);
        assert_eq!(cache.get(&1, cache.generation()), None);
        assert_eq!(cache.get(&2, cache.generation()), None);
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache: Cache<usize, usize> = Cache::default();
        for i in 0..=CAPACITY {
            cache.put(i, i, 0);
        }
        assert!(cache.entries.lock().unwrap().len() <= CAPACITY);
        assert_eq!(cache.get(&CAPACITY, 0), Some(CAPACITY));
    }
}
