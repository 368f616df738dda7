//! The AS's in-memory tables that grow with requests (admin `store_stats`,
//! for `gnapd compare`): what a stranger's requests make the AS hold
//! beside the store. Bytes are the entries' own (keys, values, fixed-size
//! fields), not the maps' overhead.

use super::AuthServer;
use crate::store::TableSize;

impl AuthServer {
    /// Every in-memory table, named `memory:<what>`.
    pub fn memory_tables(&self) -> Vec<(String, TableSize)> {
        let mut tables: Vec<(&str, TableSize)> = Vec::new();
        tables.extend(self.guards.sizes());
        if let Ok(live) = self.live.lock() {
            tables.extend(live.sizes());
        }
        if let Ok(used) = self.used_assertions.lock() {
            tables.push(("memory:used_assertions", used.size()));
        }
        if let Some(login) = &self.deciders.login {
            tables.extend(login.sizes());
        }
        if let Some(operator) = &self.deciders.operator {
            tables.push(("memory:operator_sessions", operator.sessions_size()));
        }
        tables
            .into_iter()
            .map(|(name, size)| (name.to_owned(), size))
            .collect()
    }
}
