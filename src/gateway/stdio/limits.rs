//! How many stdio children the gateway runs, and for how long.

use std::time::Duration;

/// Limits on stdio children.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most children (sessions) at once; one agent key holds at most half
    /// of them (rounded up).
    pub max_children: usize,
    /// Most children started for calls from one client address; `None`:
    /// three quarters of `max_children` (rounded up).
    pub max_children_per_address: Option<usize>,
    /// A session without traffic for this long is stopped.
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_children: 16,
            max_children_per_address: None,
            idle_timeout: Duration::from_secs(300),
        }
    }
}

impl Limits {
    /// Most children one agent key may hold: half the slots (rounded up),
    /// so that one agent can never take every child while others wait.
    pub(crate) fn per_key(&self) -> usize {
        self.max_children.div_ceil(2)
    }

    /// Most children calls from one address may hold: by default three
    /// quarters, so that a quarter is always left to other addresses, and
    /// agents on one host (all on 127.0.0.1) may still take more than one
    /// key's half.
    pub(crate) fn per_address(&self) -> usize {
        self.max_children_per_address
            .unwrap_or_else(|| (self.max_children * 3).div_ceil(4))
    }
}
