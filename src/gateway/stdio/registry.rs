//! The live stdio sessions and the child slots they hold: one count for
//! the gateway, one per agent key, one per client address, taken together
//! or not at all.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::limits::Limits;
use super::session::Session;
use crate::proto::address::AddressKey;

/// Every live session and the slots held, by whom.
pub(super) struct Registry {
    pub(super) sessions: Mutex<HashMap<String, Arc<Session>>>,
    pub(super) children: AtomicUsize,
    /// Children per agent key thumbprint.
    pub(super) per_key: Mutex<HashMap<String, usize>>,
    /// Children per client address.
    pub(super) per_address: Mutex<HashMap<AddressKey, usize>>,
    pub(super) draining: AtomicBool,
    pub(super) limits: Limits,
    /// New children refused, by the bound that was reached (gateway, key,
    /// address).
    pub(super) refused: [AtomicU64; 3],
}

impl Registry {
    /// An empty registry under `limits`.
    pub(super) fn new(limits: Limits) -> Self {
        Self {
            sessions: Mutex::new(HashMap::new()),
            children: AtomicUsize::new(0),
            per_key: Mutex::new(HashMap::new()),
            per_address: Mutex::new(HashMap::new()),
            draining: AtomicBool::new(false),
            limits,
            refused: Default::default(),
        }
    }

    pub(super) fn sessions(&self) -> MutexGuard<'_, HashMap<String, Arc<Session>>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a child slot for `thumbprint` calling from `from`, if the
    /// key, the address and the gateway all have one left.
    pub(super) fn take_slot(&self, thumbprint: &str, from: AddressKey) -> Result<(), SlotTaken> {
        let max = self.limits.max_children;
        if self
            .children
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
            .is_err()
        {
            self.refused[SlotTaken::Gateway as usize].fetch_add(1, Ordering::Relaxed);
            return Err(SlotTaken::Gateway);
        }
        // Both counts under the key map's lock (always taken first), so
        // that a slot is taken from both or from neither.
        let mut held = self.per_key.lock().unwrap_or_else(|e| e.into_inner());
        let mut addresses = self.per_address.lock().unwrap_or_else(|e| e.into_inner());
        let refused = if held.get(thumbprint).copied().unwrap_or(0) >= self.limits.per_key() {
            Some(SlotTaken::Key)
        } else if addresses.get(&from).copied().unwrap_or(0) >= self.limits.per_address() {
            Some(SlotTaken::Address)
        } else {
            None
        };
        if let Some(refused) = refused {
            drop((held, addresses));
            self.refused[refused as usize].fetch_add(1, Ordering::Relaxed);
            self.children.fetch_sub(1, Ordering::SeqCst);
            return Err(refused);
        }
        *held.entry(thumbprint.to_owned()).or_default() += 1;
        *addresses.entry(from).or_default() += 1;
        Ok(())
    }

    /// Gives back a slot [`Registry::take_slot`] took.
    pub(super) fn release_slot(&self, thumbprint: &str, from: AddressKey) {
        self.children.fetch_sub(1, Ordering::SeqCst);
        let mut held = self.per_key.lock().unwrap_or_else(|e| e.into_inner());
        let mut addresses = self.per_address.lock().unwrap_or_else(|e| e.into_inner());
        release(&mut held, thumbprint);
        release(&mut addresses, &from);
    }
}

/// One fewer held under `key`; a key holding nothing is not remembered.
fn release<K, Q>(held: &mut HashMap<K, usize>, key: &Q)
where
    K: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
    Q: std::hash::Hash + Eq + ?Sized,
{
    if let Some(count) = held.get_mut(key) {
        *count = count.saturating_sub(1);
        if *count == 0 {
            held.remove(key);
        }
    }
}

/// Whose child slots are all taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SlotTaken {
    /// The gateway's ([`Limits::max_children`]).
    Gateway,
    /// This agent key's (half of them).
    Key,
    /// This client address's.
    Address,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::stdio::Bridge;

    fn registry(max_children: usize) -> Registry {
        Registry::new(Limits {
            max_children,
            ..Limits::default()
        })
    }

    const HERE: AddressKey = AddressKey::V4(1);

    #[test]
    fn one_key_takes_at_most_half_the_child_slots_and_gives_them_back() {
        let r = registry(4);
        assert_eq!(r.take_slot("A", HERE), Ok(()));
        assert_eq!(r.take_slot("A", HERE), Ok(()));
        assert_eq!(r.take_slot("A", HERE), Err(SlotTaken::Key));
        assert_eq!(r.take_slot("B", AddressKey::V4(2)), Ok(()));
        assert_eq!(r.take_slot("C", AddressKey::V4(3)), Ok(()));
        assert_eq!(r.take_slot("D", AddressKey::V4(4)), Err(SlotTaken::Gateway));
        assert_eq!(r.children.load(Ordering::SeqCst), 4);
        r.release_slot("A", HERE);
        assert_eq!(r.take_slot("A", HERE), Ok(()));
        r.release_slot("B", AddressKey::V4(2));
        // A key that holds nothing is not remembered.
        assert!(!r.per_key.lock().unwrap().contains_key("B"));
        assert_eq!(r.children.load(Ordering::SeqCst), 3);
        // One slot: a lone key may hold it.
        let one = registry(1);
        assert_eq!(one.take_slot("A", HERE), Ok(()));
        assert_eq!(
            one.take_slot("B", AddressKey::V4(2)),
            Err(SlotTaken::Gateway)
        );
    }

    #[test]
    fn one_address_takes_at_most_its_share_of_child_slots_whatever_its_keys() {
        let r = registry(4);
        assert_eq!(r.limits.per_address(), 3);
        for key in ["A", "B", "C"] {
            assert_eq!(r.take_slot(key, HERE), Ok(()));
        }
        // A fresh key from the same address gets nothing...
        assert_eq!(r.take_slot("D", HERE), Err(SlotTaken::Address));
        assert_eq!(r.children.load(Ordering::SeqCst), 3);
        assert_eq!(registry(16).limits.per_address(), 12);
        // ...another address does, and a slot given back is free again.
        assert_eq!(r.take_slot("D", AddressKey::V4(2)), Ok(()));
        r.release_slot("A", HERE);
        assert_eq!(r.take_slot("E", HERE), Ok(()));
        assert!(!r.per_key.lock().unwrap().contains_key("A"));
        let set = Limits {
            max_children: 6,
            max_children_per_address: Some(1),
            ..Limits::default()
        };
        assert_eq!(set.per_address(), 1);
    }

    #[test]
    fn refused_children_are_counted_by_the_bound_reached() {
        let bridge = Bridge::new(Limits {
            max_children: 4,
            ..Limits::default()
        });
        let r = &bridge.registry;
        for key in ["A", "A", "B"] {
            assert_eq!(r.take_slot(key, HERE), Ok(()));
        }
        assert_eq!(r.take_slot("A", AddressKey::V4(2)), Err(SlotTaken::Key));
        assert_eq!(r.take_slot("C", HERE), Err(SlotTaken::Address));
        assert_eq!(r.take_slot("C", AddressKey::V4(2)), Ok(()));
        assert_eq!(r.take_slot("D", AddressKey::V4(3)), Err(SlotTaken::Gateway));
        let mut out = String::new();
        bridge.render(&mut out);
        for line in [
            "gnapd_gateway_stdio_children 4",
            "gnapd_gateway_stdio_children_refused_total{bound=\"gateway\"} 1",
            "gnapd_gateway_stdio_children_refused_total{bound=\"key\"} 1",
            "gnapd_gateway_stdio_children_refused_total{bound=\"address\"} 1",
        ] {
            assert!(out.lines().any(|l| l == line), "no `{line}` in {out}");
        }
    }
}
