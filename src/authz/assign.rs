//! Which enterprise-held credential set policy assigns at each upstream.
//!
//! The AS reads it when it approves a grant (each token is mapped to the
//! set assigned at every upstream its rights reach); the admin interface
//! changes it while the server runs (`gnapd credentials add|remove`). The
//! map is tiny and read once per approval, so a read-write lock is enough.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use crate::proto::gnap::AccessRight;
use crate::proto::mcp::access::UpstreamGrant;

/// Upstream name → credential set id, shared between the AS and the admin
/// interface.
#[derive(Debug, Clone, Default)]
pub struct Assignments(Arc<RwLock<BTreeMap<String, String>>>);

impl Assignments {
    /// Assignments from `(upstream, set id)` pairs.
    pub(crate) fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        Self(Arc::new(RwLock::new(pairs.into_iter().collect())))
    }

    /// Assigns set `id` at `upstream` for grants approved from now on.
    pub(crate) fn assign(&self, upstream: &str, id: &str) {
        if let Ok(mut map) = self.0.write() {
            map.insert(upstream.to_owned(), id.to_owned());
        }
    }

    /// Stops assigning any set at `upstream`.
    pub(crate) fn clear(&self, upstream: &str) {
        if let Ok(mut map) = self.0.write() {
            map.remove(upstream);
        }
    }

    /// The set assigned at `upstream`.
    pub(crate) fn get(&self, upstream: &str) -> Option<String> {
        self.0.read().ok()?.get(upstream).cloned()
    }

    /// The `(upstream, set id)` pairs a token with `access` is mapped to.
    pub(crate) fn for_access(&self, access: &[AccessRight]) -> Vec<(String, String)> {
        let Ok(map) = self.0.read() else {
            return Vec::new();
        };
        map.iter()
            .filter(|(upstream, _)| UpstreamGrant::for_upstream(access, upstream).is_some())
            .map(|(upstream, set)| (upstream.clone(), set.clone()))
            .collect()
    }
}
