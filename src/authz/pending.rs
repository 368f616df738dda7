//! Slots for grants waiting for a person, counted per key, per source
//! address and in all.
//!
//! A pending grant keeps records in the store (grant, interaction, user
//! code index, maybe a new instance) until a person approves it or the
//! sweep removes it, denied or not. Its slot is held exactly as long: from
//! before the records are written until approval, deletion by its client,
//! or the grant's expiry plus one sweep interval ([`SWEEP_SLACK`]). So the
//! number of slots bounds what unapproved requests keep on disk, and the
//! bytes a pending grant stores ([`super::limits::PendingCaps`]) times
//! the total cap bounds it in bytes.
//!
//! Kept in memory. At start the AS counts the pending grants the store
//! holds (by key; their addresses are not stored, so the per-address count
//! starts again from zero).

use std::collections::{BTreeSet, HashMap};

use super::limits::PendingCaps;
use crate::store::GrantId;

/// Seconds a record may outlive its expiry before the sweep (which runs
/// every minute, `cli::serve`) removes it.
pub(crate) const SWEEP_SLACK: i64 = 60;

/// Which cap a new pending grant would pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Full {
    /// The key has its share.
    Key,
    /// The address has its share.
    Address,
    /// Every slot is taken.
    Total,
}

#[derive(Debug, Clone)]
struct Slot {
    key: String,
    address: Option<String>,
    until: i64,
}

/// The slots held now.
#[derive(Debug, Default)]
pub(crate) struct PendingSlots {
    slots: HashMap<GrantId, Slot>,
    per_key: HashMap<String, usize>,
    per_address: HashMap<String, usize>,
    by_expiry: BTreeSet<(i64, GrantId)>,
}

impl PendingSlots {
    /// Slots held, and their bytes (grant id, key, address, expiry).
    pub(crate) fn size(&self) -> crate::store::TableSize {
        let mut size = crate::store::TableSize::default();
        for (grant, slot) in &self.slots {
            let address = slot.address.as_ref().map_or(0, String::len);
            size.add(grant.0.len(), slot.key.len() + address + 8);
        }
        size
    }

    /// Holds a slot for `grant` of `key` from `address` until `until`
    /// (the grant's expiry), unless a cap of `caps` is reached at `now`.
    pub(crate) fn hold(
        &mut self,
        grant: &GrantId,
        key: &str,
        address: Option<&str>,
        until: i64,
        caps: &PendingCaps,
        now: i64,
    ) -> Result<(), Full> {
        self.expire(now);
        if self.slots.len() >= caps.total {
            return Err(Full::Total);
        }
        if self.per_key.get(key).copied().unwrap_or(0) >= caps.per_key {
            return Err(Full::Key);
        }
        if let Some(address) = address
            && self.per_address.get(address).copied().unwrap_or(0) >= caps.per_address
        {
            return Err(Full::Address);
        }
        self.insert(grant, key, address, until);
        Ok(())
    }

    /// Counts a grant found in the store at start, whatever the caps.
    pub(crate) fn restore(&mut self, grant: &GrantId, key: &str, until: i64) {
        self.insert(grant, key, None, until);
    }

    fn insert(&mut self, grant: &GrantId, key: &str, address: Option<&str>, until: i64) {
        self.release(grant);
        let until = until.saturating_add(SWEEP_SLACK);
        *self.per_key.entry(key.to_owned()).or_default() += 1;
        if let Some(address) = address {
            *self.per_address.entry(address.to_owned()).or_default() += 1;
        }
        self.by_expiry.insert((until, grant.clone()));
        self.slots.insert(
            grant.clone(),
            Slot {
                key: key.to_owned(),
                address: address.map(str::to_owned),
                until,
            },
        );
    }

    /// Frees `grant`'s slot: a person approved it, its client deleted it,
    /// or its records were not written after all.
    pub(crate) fn release(&mut self, grant: &GrantId) {
        let Some(slot) = self.slots.remove(grant) else {
            return;
        };
        self.by_expiry.remove(&(slot.until, grant.clone()));
        decrement(&mut self.per_key, &slot.key);
        if let Some(address) = &slot.address {
            decrement(&mut self.per_address, address);
        }
    }

    /// Frees the slots whose records the sweep has removed by `now`.
    fn expire(&mut self, now: i64) {
        while let Some((until, grant)) = self.by_expiry.first().cloned() {
            if until >= now {
                break;
            }
            self.release(&grant);
        }
    }

    /// Slots held at `now`.
    pub(crate) fn held(&mut self, now: i64) -> usize {
        self.expire(now);
        self.slots.len()
    }
}

fn decrement(counts: &mut HashMap<String, usize>, name: &str) {
    if let Some(n) = counts.get_mut(name) {
        *n -= 1;
        if *n == 0 {
            counts.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPS: PendingCaps = PendingCaps {
        per_key: 2,
        per_address: 3,
        total: 5,
        request_bytes: 1024,
    };

    fn id(n: usize) -> GrantId {
        GrantId(format!("g{n}"))
    }

    #[test]
    fn caps_hold_per_key_per_address_and_in_all() {
        let mut slots = PendingSlots::default();
        assert_eq!(slots.hold(&id(1), "k1", Some("a"), 100, &CAPS, 0), Ok(()));
        assert_eq!(slots.hold(&id(2), "k1", Some("a"), 100, &CAPS, 0), Ok(()));
        assert_eq!(
            slots.hold(&id(3), "k1", Some("b"), 100, &CAPS, 0),
            Err(Full::Key)
        );
        assert_eq!(slots.hold(&id(3), "k2", Some("a"), 100, &CAPS, 0), Ok(()));
        assert_eq!(
            slots.hold(&id(4), "k3", Some("a"), 100, &CAPS, 0),
            Err(Full::Address)
        );
        assert_eq!(slots.hold(&id(4), "k3", Some("b"), 100, &CAPS, 0), Ok(()));
        assert_eq!(slots.hold(&id(5), "k4", None, 100, &CAPS, 0), Ok(()));
        assert_eq!(
            slots.hold(&id(6), "k5", Some("c"), 100, &CAPS, 0),
            Err(Full::Total)
        );
        // Approval (or deletion) frees a slot at once.
        slots.release(&id(1));
        assert_eq!(slots.hold(&id(6), "k1", Some("c"), 100, &CAPS, 0), Ok(()));
        assert_eq!(slots.held(0), 5);
    }

    #[test]
    fn a_slot_lasts_until_the_sweep_has_removed_its_records() {
        let mut slots = PendingSlots::default();
        for n in 0..5 {
            slots
                .hold(&id(n), &format!("k{n}"), None, 100, &CAPS, 0)
                .unwrap();
        }
        let late = 100 + SWEEP_SLACK;
        assert_eq!(
            slots.hold(&id(9), "k9", None, 500, &CAPS, late),
            Err(Full::Total)
        );
        assert_eq!(slots.hold(&id(9), "k9", None, 500, &CAPS, late + 1), Ok(()));
        assert_eq!(slots.held(late + 1), 1);
        assert!(slots.per_key.len() == 1 && slots.per_address.is_empty());
    }

    #[test]
    fn restored_grants_count_against_the_total_and_their_key() {
        let mut slots = PendingSlots::default();
        slots.restore(&id(1), "k1", 100);
        slots.restore(&id(2), "k1", 100);
        assert_eq!(
            slots.hold(&id(3), "k1", Some("a"), 100, &CAPS, 0),
            Err(Full::Key)
        );
        assert_eq!(slots.held(0), 2);
    }
}
