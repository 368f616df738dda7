//! How much the store holds, table by table: what `gnapd compare` reports
//! as the server-side state a protocol leaves behind (admin `store_stats`).
//!
//! Bytes are those of keys and values as stored (sled's encoded records;
//! the memory store encodes its records the same way to count them), not
//! sled's pages or the allocator's overhead: the same measure on both
//! stores and for every protocol.

use serde::Serialize;

/// Records and bytes of one table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TableSize {
    /// Entries.
    pub records: u64,
    /// Bytes of keys plus values.
    pub bytes: u64,
}

impl TableSize {
    /// One entry whose key and value are `key` and `value` bytes long.
    pub fn add(&mut self, key: usize, value: usize) {
        self.records += 1;
        self.bytes += (key + value) as u64;
    }

    /// `records` entries of `bytes` bytes in all.
    pub fn of(records: usize, bytes: usize) -> Self {
        Self {
            records: records as u64,
            bytes: bytes as u64,
        }
    }
}

/// The persistent tables, by the names sled stores them under (the memory
/// store answers with the same names).
pub const TABLES: [&str; 10] = [
    "grants",
    "token_index",
    "instances",
    "credential_sets",
    "upstreams",
    "resource_sets",
    "oauth_clients",
    "interactions",
    "user_codes",
    "spent_refresh",
];

/// The replay cache's budgets, by the name `store_stats` gives each.
pub(crate) fn replay_sizes(replay: &super::replay::ReplayMemory) -> [(String, TableSize); 2] {
    use super::replay::ReplayBudget;
    let size = |budget| {
        let store = replay.budget(budget);
        TableSize::of(store.len(), store.bytes())
    };
    [
        (
            "memory:replay_unapproved".to_owned(),
            size(ReplayBudget::Unapproved),
        ),
        ("memory:replay_bound".to_owned(), size(ReplayBudget::Bound)),
    ]
}
