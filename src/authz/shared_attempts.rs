//! User-code attempts counted in the store when several nodes share it:
//! the limits of `usercode` (per source, per grant, the network's budget)
//! hold for the deployment, not for each node, so N nodes do not give a
//! guesser N times the guesses the analysis there allows.
//!
//! Counts go in fixed periods of [`WINDOW`] seconds (`now / WINDOW`), the
//! only windows nodes agree on without talking: a source refused late in a
//! period may try again at the next one, as the network budget already
//! allows on one node (usercode's analysis counts two budgets around a
//! boundary). A counter is named by SHA-256 of what it counts, never the
//! address itself. A store of one node keeps no counters (`Ok(None)`),
//! and the node's own memory counts as before.

use super::usercode::{Attempts, Counted, Tally, WINDOW};
use crate::proto::hash::sha256_parts;
use crate::store::{CounterName, Store, StoreError};

/// Counts in `store` if it keeps counters, else in `local`.
pub(crate) struct StoreTally<'a> {
    pub(crate) store: &'a dyn Store,
    pub(crate) local: &'a mut Attempts,
}

impl Tally for StoreTally<'_> {
    fn add(&mut self, what: Counted<'_>, by: u32, now: i64) -> Result<u32, StoreError> {
        let period = now.div_euclid(WINDOW);
        let expires_at = period.saturating_add(1).saturating_mul(WINDOW);
        match self
            .store
            .add_to_counter(&counter_name(what), period, by, expires_at)?
        {
            Some(count) => Ok(count),
            None => self.local.add(what, by, now),
        }
    }
}

/// The stored name of a counter: what it counts, hashed, under a label
/// of its own (no other counter's name can collide with it).
fn counter_name(what: Counted<'_>) -> CounterName {
    let (kind, key): (&[u8], &[u8]) = match what {
        Counted::Source(key) => (b"source", key.as_bytes()),
        Counted::Network => (b"network", b""),
        Counted::Grant(grant) => (b"grant", grant.0.as_bytes()),
    };
    sha256_parts(&[b"gnapd user-code attempts\0", kind, b"\0", key])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::GrantId;

    #[test]
    fn counter_names_differ_by_kind_and_never_hold_the_address() {
        let grant = GrantId("192.0.2.1".into());
        let names = [
            counter_name(Counted::Source("192.0.2.1")),
            counter_name(Counted::Grant(&grant)),
            counter_name(Counted::Network),
        ];
        assert_ne!(names[0], names[1]);
        assert_ne!(names[0], names[2]);
        assert!(!names[0].windows(9).any(|w| w == b"192.0.2.1"));
    }
}
