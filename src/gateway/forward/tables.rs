//! The gateway's in-memory tables (admin `store_stats`, for `gnapd
//! compare`): what agents' calls make it hold beside the store.

use super::Gateway;
use crate::store::TableSize;

impl Gateway {
    /// Every in-memory table, named `memory:<what>`.
    pub fn memory_tables(&self) -> Vec<(String, TableSize)> {
        let mut opened = TableSize::default();
        if let Ok(sets) = self.opened.lock() {
            for (id, (sealed, _)) in sets.iter() {
                // The sealed bytes stand for the opened credential's size.
                opened.add(id.len(), sealed.len());
            }
        }
        let mut refresh_locks = TableSize::default();
        if let Ok(locks) = self.refresh_locks.lock() {
            for id in locks.keys() {
                refresh_locks.add(id.len(), 0);
            }
        }
        [
            ("memory:mcp_sessions", self.sessions.size()),
            ("memory:stdio_sessions", self.stdio.size()),
            ("memory:verifying_keys", self.keys.size()),
            ("memory:opened_credential_sets", opened),
            ("memory:refresh_locks", refresh_locks),
        ]
        .into_iter()
        .map(|(name, size)| (name.to_owned(), size))
        .collect()
    }
}
