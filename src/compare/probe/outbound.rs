//! Requests the servers make on their own, counted where they land: the
//! upstream MCP server and the metadata-document host the tool runs count
//! each request they answer, by kind.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Counts of server-made requests, by kind (`upstream`,
/// `client_metadata_document`, ...).
#[derive(Debug, Clone, Default)]
pub struct Outbound(Arc<Mutex<BTreeMap<&'static str, u64>>>);

impl Outbound {
    /// A fresh set of counters.
    pub fn new() -> Self {
        Self::default()
    }

    /// One more request of `kind`.
    pub fn count(&self, kind: &'static str) {
        let mut counts = match self.0.lock() {
            Ok(counts) => counts,
            Err(poisoned) => poisoned.into_inner(),
        };
        *counts.entry(kind).or_insert(0) += 1;
    }

    /// The counts so far.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        let counts = match self.0.lock() {
            Ok(counts) => counts,
            Err(poisoned) => poisoned.into_inner(),
        };
        counts.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }
}
