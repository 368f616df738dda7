//! One shard of the replay cache: remembered values as bare 64-bit words
//! in one open-addressing table, forgotten a whole expiry bucket at a time.
//!
//! A word is `[value digest | scope slot | bucket tag]`, low bits last:
//! - the tag ([`TAG_BITS`]) is the value's expiry bucket modulo [`RING`];
//!   every word in the table has a bucket in `base .. base + RING`, so
//!   the tag names it exactly. A value expiring further ahead waits in
//!   `far` (with its whole bucket number) until the ring reaches it;
//! - the slot is its scope's counter in `held` (the per-key quota), kept
//!   in the word so that expiry decrements the right counter exactly;
//! - the rest is the keyed digest of (scope, value).
//!
//! Two values are the same if their words agree outside the tag. The
//! table is hashbrown's: 8 bytes and one control byte a slot, at most 7/8
//! full, so 10 to 21 bytes a value.

use hashbrown::HashTable;

use super::EXPIRY_BUCKET_SECS as BUCKET_SECS;

/// Bits of a word naming its bucket.
const TAG_BITS: u32 = 7;
/// Buckets the table spans at once (640 s ahead of the oldest).
const RING: i64 = 1 << TAG_BITS;
const TAG_MASK: u64 = (1 << TAG_BITS) - 1;

/// A value's identity in a shard: its word without the tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Key {
    word: u64,
    slot: usize,
}

impl Key {
    /// The word for a (scope, value) digest and its scope's counter
    /// `slot` of `slot_bits`.
    pub(super) fn new(digest: u64, slot: u64, slot_bits: u32) -> Self {
        let slot = slot & ((1 << slot_bits) - 1);
        let word = (digest << (TAG_BITS + slot_bits)) | (slot << TAG_BITS);
        Self {
            word,
            slot: usize::try_from(slot).unwrap_or(0),
        }
    }
}

/// Where the table puts a word: its bits mixed (tag left out), so that a
/// scope's words spread like any others.
fn place(word: u64) -> u64 {
    let x = word >> TAG_BITS;
    let x = (x ^ (x >> 31)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^ (x >> 29)
}

fn slot_of(word: u64, slot_bits: u32) -> usize {
    usize::try_from((word >> TAG_BITS) & ((1 << slot_bits) - 1)).unwrap_or(0)
}

/// Why a value was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    /// Already remembered: a replay.
    Seen,
    /// The shard holds its capacity.
    Full,
    /// The scope's slot holds its quota.
    Quota,
}

#[derive(Debug)]
pub(super) struct Shard {
    table: HashTable<u64>,
    /// Values expiring past the ring: (word, bucket).
    far: HashTable<(u64, i64)>,
    /// Live words per tag, to skip sweeps of empty buckets.
    per_tag: [u32; RING as usize],
    /// Live values per scope slot.
    held: Vec<u32>,
    slot_bits: u32,
    /// The oldest bucket not yet over, once anything was asked.
    base: Option<i64>,
    len: usize,
}

impl Shard {
    pub(super) fn new(slot_bits: u32) -> Self {
        Self {
            table: HashTable::new(),
            far: HashTable::new(),
            per_tag: [0; RING as usize],
            held: vec![0; 1 << slot_bits],
            slot_bits,
            base: None,
            len: 0,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Heap and inline bytes this shard holds.
    pub(super) fn bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.table.allocation_size()
            + self.far.allocation_size()
            + self.held.capacity() * std::mem::size_of::<u32>()
    }

    /// Live values counted against slots: equals [`Self::len`].
    #[cfg(test)]
    pub(super) fn held_total(&self) -> usize {
        self.held.iter().map(|&n| n as usize).sum()
    }

    /// Remembers `key` until at least `until`, unless it is live already,
    /// the shard holds `capacity` values or its slot `quota`.
    pub(super) fn remember(
        &mut self,
        key: Key,
        until: i64,
        now: i64,
        capacity: usize,
        quota: u32,
    ) -> Result<(), Refusal> {
        let base = self.forget_expired(now);
        if self.contains(key) {
            return Err(Refusal::Seen);
        }
        if self.len >= capacity {
            return Err(Refusal::Full);
        }
        if self.held[key.slot] >= quota {
            return Err(Refusal::Quota);
        }
        // A value already past (`until` before `now`) is kept to the end of
        // the oldest live bucket: later than it needs, never earlier.
        let bucket = until.div_euclid(BUCKET_SECS).max(base);
        if bucket - base < RING {
            self.put(key.word, bucket);
        } else {
            self.far
                .insert_unique(place(key.word), (key.word, bucket), |(w, _)| place(*w));
        }
        self.len += 1;
        self.held[key.slot] += 1;
        Ok(())
    }

    fn contains(&self, key: Key) -> bool {
        let hash = place(key.word);
        self.table
            .find(hash, |w| w & !TAG_MASK == key.word)
            .is_some()
            || (!self.far.is_empty() && self.far.find(hash, |(w, _)| *w == key.word).is_some())
    }

    fn put(&mut self, word: u64, bucket: i64) {
        let tag = bucket.rem_euclid(RING);
        self.table
            .insert_unique(place(word), word | tag as u64, |w| place(*w));
        self.per_tag[tag as usize] += 1;
    }

    /// Drops every bucket over at `now` and brings into the table the far
    /// values the ring now reaches; answers the oldest live bucket.
    fn forget_expired(&mut self, now: i64) -> i64 {
        let current = now.div_euclid(BUCKET_SECS);
        let Some(base) = self.base else {
            self.base = Some(current);
            return current;
        };
        if current <= base {
            return base;
        }
        let steps = current.saturating_sub(base);
        let expiring = |tag: i64| (tag - base).rem_euclid(RING) < steps;
        if (0..RING).any(|tag| self.per_tag[tag as usize] > 0 && expiring(tag)) {
            let (held, slot_bits) = (&mut self.held, self.slot_bits);
            let mut dropped = 0;
            // One pass over the table per bucket span at most, and only when
            // something expires: a fraction of a millisecond per 100,000
            // values, against per-entry bookkeeping on every request.
            self.table.retain(|w| {
                let gone = expiring((*w & TAG_MASK) as i64);
                if gone {
                    held[slot_of(*w, slot_bits)] -= 1;
                    dropped += 1;
                }
                !gone
            });
            self.len -= dropped;
            for tag in 0..RING {
                if expiring(tag) {
                    self.per_tag[tag as usize] = 0;
                }
            }
            // Give memory back once the traffic that grew the table is gone.
            if self.table.capacity() > 4 * self.table.len().max(1024) {
                self.table.shrink_to(2 * self.table.len(), |w| place(*w));
            }
        }
        self.base = Some(current);
        if !self.far.is_empty() {
            let mut reached = Vec::new();
            let (held, slot_bits) = (&mut self.held, self.slot_bits);
            let mut dropped = 0;
            self.far.retain(|(word, bucket)| {
                if *bucket < current {
                    held[slot_of(*word, slot_bits)] -= 1;
                    dropped += 1;
                    false
                } else if *bucket - current < RING {
                    reached.push((*word, *bucket));
                    false
                } else {
                    true
                }
            });
            self.len -= dropped;
            for (word, bucket) in reached {
                self.put(word, bucket);
            }
        }
        current
    }
}
