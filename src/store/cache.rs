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
//!
//! A store other processes also write (PostgreSQL, several nodes) cannot
//! count on hearing of every write: its caches take a maximum age
//! ([`Cache::with_max_age`]), and an entry read longer ago than that is not
//! served, whatever its generation.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// At most this many entries; the map is emptied when full (entries are
/// cheap to read back, and agents are many and short-lived).
const CAPACITY: usize = 16_384;

/// When a read began: the generation then, and, for a cache with a
/// maximum age, the instant (taken before the store is read, so an entry's
/// age counts from before its read; not taken otherwise, keeping the clock
/// off sled's per-call path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    generation: u64,
    at: Option<Instant>,
}

/// A generation-checked cache of decoded records.
#[derive(Debug)]
pub struct Cache<K, V> {
    generation: AtomicU64,
    /// Entries read longer ago than this are not served (`None`: no bound).
    max_age: Option<Duration>,
    entries: Mutex<HashMap<K, (Stamp, V)>>,
}

impl<K, V> Default for Cache<K, V> {
    fn default() -> Self {
        Self {
            generation: AtomicU64::new(0),
            max_age: None,
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<K, V> Cache<K, V> {
    /// An empty cache that serves no entry read more than `max_age` ago.
    pub fn with_max_age(max_age: Duration) -> Self {
        Self {
            max_age: Some(max_age),
            ..Self::default()
        }
    }
}

impl<K: Eq + Hash + Clone, V: Clone> Cache<K, V> {
    /// The generation to read under, and now: take it *before* reading
    /// the store.
    pub fn generation(&self) -> Stamp {
        Stamp {
            generation: self.generation.load(Ordering::Acquire),
            at: self.max_age.map(|_| Instant::now()),
        }
    }

    /// The cached value for `key`, if it was read under the generation of
    /// `now` and, with a maximum age, less than that long before `now`.
    pub fn get<Q>(&self, key: &Q, now: Stamp) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let entries = self.entries.lock().ok()?;
        entries
            .get(key)
            .filter(|(read, _)| {
                read.generation == now.generation
                    && match (self.max_age, now.at, read.at) {
                        (Some(max), Some(now), Some(read)) => {
                            now.saturating_duration_since(read) < max
                        }
                        (Some(_), _, _) => false,
                        (None, _, _) => true,
                    }
            })
            .map(|(_, value)| value.clone())
    }

    /// `key`'s value: the cached one, else what `load` reads from the
    /// store, remembered under the generation taken *before* `load` ran
    /// (so a write that retires the cache meanwhile also retires it).
    pub fn read_through<Q, E>(
        &self,
        key: &Q,
        load: impl FnOnce() -> Result<Option<V>, E>,
    ) -> Result<Option<V>, E>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ToOwned<Owned = K> + ?Sized,
    {
        let generation = self.generation();
        if let Some(value) = self.get(key, generation) {
            return Ok(Some(value));
        }
        let value = load()?;
        if let Some(value) = &value {
            self.put(key.to_owned(), value.clone(), generation);
        }
        Ok(value)
    }

    /// Remembers `value`, read from the store since `generation`.
    pub fn put(&self, key: K, value: V, generation: Stamp) {
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
    fn a_value_loaded_while_a_write_retires_the_cache_is_not_served_after() {
        let cache: Cache<u8, &str> = Cache::default();
        // The write lands while the store is being read: what was read
        // may be the old state, so it must not outlive the retirement.
        let read: Result<_, ()> = cache.read_through(&1, || {
            cache.retire();
            Ok(Some("old"))
        });
        assert_eq!(read, Ok(Some("old")));
        let mut loads = 0;
        let again: Result<_, ()> = cache.read_through(&1, || {
            loads += 1;
            Ok(Some("new"))
        });
        assert_eq!((again, loads), (Ok(Some("new")), 1));
        // Read under the current generation: served without a load.
        let cached: Result<_, ()> = cache.read_through(&1, || Ok(None));
        assert_eq!(cached, Ok(Some("new")));
    }

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
        let stamp = cache.generation();
        for i in 0..=CAPACITY {
            cache.put(i, i, stamp);
        }
        assert!(cache.entries.lock().unwrap().len() <= CAPACITY);
        assert_eq!(cache.get(&CAPACITY, stamp), Some(CAPACITY));
    }

    #[test]
    fn an_entry_older_than_the_maximum_age_is_not_served_in_its_generation() {
        let cache: Cache<u8, &str> = Cache::with_max_age(Duration::from_millis(500));
        let read = cache.generation();
        cache.put(1, "live", read);
        let later = |ms| Stamp {
            at: read.at.map(|at| at + Duration::from_millis(ms)),
            ..read
        };
        let (young, old) = (later(499), later(500));
        assert_eq!(cache.get(&1, young), Some("live"));
        assert_eq!(
            cache.get(&1, old),
            None,
            "no write was heard of, yet too old"
        );
        let unbounded: Cache<u8, &str> = Cache::default();
        unbounded.put(1, "kept", read);
        assert_eq!(unbounded.get(&1, old), Some("kept"));
    }
}
