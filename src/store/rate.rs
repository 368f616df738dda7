//! Token buckets by source address or key: the AS's rate limits, and the
//! gateway's on tokens it must ask an external AS about.
//!
//! A bucket holds up to `burst` requests and refills at `per_minute`; a
//! request takes one or is refused with the seconds until one is back (the
//! `Retry-After`). Time is whole seconds from the AS's clock, so the
//! buckets are sans I/O and tests step them.
//!
//! The table is bounded ([`MAX_TRACKED`]). A full bucket is the same as no
//! bucket, so when the table is full the full ones are dropped (at most
//! once a second, so a flood of new names does not make every request a
//! scan). If it is still full, a new name goes untracked: this fails open
//! for that name, on purpose, since refusing every new name would let a
//! flood of free keys lock everyone out; the global caps (replay budgets,
//! pending grants) still hold.

use std::collections::HashMap;

use serde::Deserialize;

/// Most names one table tracks (~10 MB at worst).
pub(crate) const MAX_TRACKED: usize = 100_000;

/// A token bucket: `burst` requests at once, refilled at `per_minute`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Requests allowed at once after a quiet spell.
    pub(crate) burst: u32,
    /// Requests allowed per minute, sustained.
    pub(crate) per_minute: u32,
}

/// A rate limit with a zero in it (the setting's name).
#[derive(Debug, thiserror::Error)]
#[error("{0}: burst and per_minute must be positive")]
pub(crate) struct ZeroRate(String);

impl RateLimit {
    /// Both numbers positive (a zero would refuse everything for ever).
    pub(crate) fn check(&self, name: &str) -> Result<(), ZeroRate> {
        if self.burst == 0 || self.per_minute == 0 {
            return Err(ZeroRate(name.to_owned()));
        }
        Ok(())
    }
}

/// A request's share of a bucket, in units: a bucket refills `per_minute`
/// units a second, so whole seconds keep exact counts.
const UNIT: u64 = 60;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    units: u64,
    at: i64,
}

/// Token buckets for one limit, by name.
#[derive(Debug)]
pub(crate) struct Buckets {
    limit: RateLimit,
    table: HashMap<String, Bucket>,
    cleaned: i64,
}

impl Buckets {
    /// Empty buckets for `limit`.
    pub(crate) fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            table: HashMap::new(),
            cleaned: i64::MIN,
        }
    }

    fn capacity(&self) -> u64 {
        u64::from(self.limit.burst) * UNIT
    }

    /// `bucket` refilled up to `now`.
    fn refilled(&self, bucket: Bucket, now: i64) -> u64 {
        let elapsed = u64::try_from(now.saturating_sub(bucket.at)).unwrap_or(0);
        bucket
            .units
            .saturating_add(elapsed.saturating_mul(u64::from(self.limit.per_minute)))
            .min(self.capacity())
    }

    /// Whether [`Self::take`] would let `name` through at `now`, taking
    /// nothing: for limits charged only once the outcome is known.
    pub(crate) fn would_take(&self, name: &str, now: i64) -> Result<(), u64> {
        let units = match self.table.get(name) {
            Some(bucket) => self.refilled(*bucket, now),
            None => return Ok(()),
        };
        if units < UNIT {
            let per_second = u64::from(self.limit.per_minute).max(1);
            return Err((UNIT - units).div_ceil(per_second).max(1));
        }
        Ok(())
    }

    /// Takes one request from `name`'s bucket at `now`: `Err` carries the
    /// seconds until one is back.
    pub(crate) fn take(&mut self, name: &str, now: i64) -> Result<(), u64> {
        let capacity = self.capacity();
        let units = match self.table.get(name) {
            Some(bucket) => self.refilled(*bucket, now),
            None => {
                if self.table.len() >= MAX_TRACKED && !self.make_room(now) {
                    return Ok(());
                }
                capacity
            }
        };
        if units < UNIT {
            let per_second = u64::from(self.limit.per_minute).max(1);
            return Err((UNIT - units).div_ceil(per_second).max(1));
        }
        self.table.insert(
            name.to_owned(),
            Bucket {
                units: units - UNIT,
                at: now,
            },
        );
        Ok(())
    }

    /// Drops the buckets that have refilled; false if none could go.
    fn make_room(&mut self, now: i64) -> bool {
        if self.cleaned < now {
            self.cleaned = now;
            let capacity = self.capacity();
            let limit = self.limit;
            self.table.retain(|_, bucket| {
                let elapsed = u64::try_from(now.saturating_sub(bucket.at)).unwrap_or(0);
                bucket
                    .units
                    .saturating_add(elapsed.saturating_mul(u64::from(limit.per_minute)))
                    < capacity
            });
        }
        self.table.len() < MAX_TRACKED
    }

    /// Names tracked now, and their bytes (each name, its units and time).
    pub(crate) fn size(&self) -> super::TableSize {
        let mut size = super::TableSize::default();
        for name in self.table.keys() {
            size.add(name.len(), 16);
        }
        size
    }

    /// Names tracked now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: RateLimit = RateLimit {
        burst: 3,
        per_minute: 30,
    };

    #[test]
    fn would_take_says_what_take_would_do_and_takes_nothing() {
        let mut buckets = Buckets::new(LIMIT);
        for _ in 0..LIMIT.burst {
            assert_eq!(buckets.would_take("a", 0), Ok(()));
            assert_eq!(buckets.take("a", 0), Ok(()));
        }
        let refused = buckets.take("a", 0);
        assert!(refused.is_err());
        assert_eq!(buckets.would_take("a", 0), refused);
        // Asking does not use up a fresh name's bucket.
        for _ in 0..10 {
            assert_eq!(buckets.would_take("b", 0), Ok(()));
        }
        assert_eq!(buckets.len(), 1);
    }

    #[test]
    fn a_burst_passes_then_requests_wait_for_the_refill() {
        let mut buckets = Buckets::new(LIMIT);
        for _ in 0..3 {
            assert_eq!(buckets.take("a", 100), Ok(()));
        }
        // 30 a minute: one every 2 s.
        assert_eq!(buckets.take("a", 100), Err(2));
        assert_eq!(buckets.take("a", 101), Err(1));
        assert_eq!(buckets.take("a", 102), Ok(()));
        assert_eq!(buckets.take("a", 102), Err(2));
        // Another name has its own bucket.
        assert_eq!(buckets.take("b", 102), Ok(()));
        // A long quiet spell refills up to the burst, not beyond.
        for _ in 0..3 {
            assert_eq!(buckets.take("a", 10_000), Ok(()));
        }
        assert!(buckets.take("a", 10_000).is_err());
    }

    #[test]
    fn a_clock_going_back_refills_nothing() {
        let mut buckets = Buckets::new(LIMIT);
        for _ in 0..3 {
            assert_eq!(buckets.take("a", 100), Ok(()));
        }
        assert!(buckets.take("a", 50).is_err());
    }

    #[test]
    fn the_table_stays_bounded_and_drops_refilled_buckets_first() {
        let mut buckets = Buckets::new(LIMIT);
        for i in 0..MAX_TRACKED {
            buckets.take(&format!("n{i}"), 100).unwrap();
        }
        // Full of part-spent buckets: a new name goes untracked.
        assert_eq!(buckets.take("new", 100), Ok(()));
        assert_eq!(buckets.len(), MAX_TRACKED);
        // A name already tracked is still held to its limit.
        buckets.take("n0", 100).unwrap();
        buckets.take("n0", 100).unwrap();
        assert!(buckets.take("n0", 100).is_err());
        // Once they refilled, they make room.
        assert_eq!(buckets.take("new", 200), Ok(()));
        assert!(buckets.len() < 10, "{}", buckets.len());
    }
}
