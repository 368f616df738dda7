//! Leases held in this process: what the memory and sled stores answer
//! [`super::Store::take_lease`] with. One process is one node there, so
//! nobody else can hold a lease; the table still keeps the contract (one
//! holder at a time, until its `until` or its release) for callers that
//! share one store.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use super::StoreError;

/// Most leases held at once before lapsed ones are dropped: a lease is
/// one per credential set being refreshed, so this is never reached in
/// use; it only bounds memory.
const MAX_HELD: usize = 4_096;

/// Leases by name: (holder, until).
#[derive(Debug, Default)]
pub(crate) struct LocalLeases(Mutex<HashMap<String, (String, i64)>>);

impl LocalLeases {
    pub(crate) fn take(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        until: i64,
    ) -> Result<bool, StoreError> {
        let mut held = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if held.len() >= MAX_HELD {
            held.retain(|_, (_, lapses)| *lapses >= now);
        }
        match held.get(name) {
            Some((other, lapses)) if other != holder && *lapses >= now => Ok(false),
            _ => {
                held.insert(name.to_owned(), (holder.to_owned(), until));
                Ok(true)
            }
        }
    }

    pub(crate) fn release(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let mut held = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if held.get(name).is_some_and(|(h, _)| h == holder) {
            held.remove(name);
        }
        Ok(())
    }
}
