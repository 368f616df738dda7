//! The replay memory: two budgets, so that keys nobody approved cannot
//! crowd out the calls of agents that were.
//!
//! Keys are free. A signed grant request from a brand-new key is
//! remembered like any signed request, and if the grant endpoint and the
//! gateway shared one budget, a few thousand such requests (that policy
//! then denies) would leave no room for the gateway's calls, each of which
//! would then be refused. So:
//!
//! - [`ReplayBudget::Unapproved`] holds key-by-value traffic: the grant
//!   endpoint, continuations of grants not approved, RS calls in dev mode;
//! - [`ReplayBudget::Bound`] holds traffic bound to a key someone approved:
//!   the gateway, token management, continuations of approved grants, RS
//!   calls from configured resource servers.
//!
//! Each budget also holds every key to a quota, so one key cannot take a
//! whole budget from the others. Past either, signed requests fail closed.

use crate::proto::httpsig::nonce::{self, MemoryNonceStore};

/// Which replay budget a signed request is remembered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayBudget {
    /// Keys presented by value, that nobody approved (yet).
    Unapproved,
    /// Keys bound to a token or grant someone approved.
    Bound,
}

/// The size of one budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayLimits {
    /// Signatures held at once.
    pub capacity: usize,
    /// Signatures one key may hold at once.
    pub key_quota: usize,
}

/// The sizes of both budgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplaySizes {
    /// Key-by-value traffic (`replay_capacity_unapproved`,
    /// `replay_key_quota_unapproved`).
    pub unapproved: ReplayLimits,
    /// Bound-token traffic (`replay_capacity`, `replay_key_quota`).
    pub bound: ReplayLimits,
}

/// Default budget for key-by-value traffic: 3,400,000 signatures, about
/// 11,100 signed grant requests a second sustained with `max_age` 300
/// (what one gnapd takes of brand-new agents on a 2-core machine), each
/// kept 305 s at most. At worst about 38 MB: 212,500 values a shard fill
/// a table of 2^18 slots (9 bytes each, 2.4 MB) to 81%, 16 shards, and
/// 8,192 quota counters a shard (0.5 MB in all).
pub const DEFAULT_UNAPPROVED_CAPACITY: usize = 3_400_000;
/// Default share of one unapproved key: what a key polling ten pending
/// grants and retrying grant requests at its rate limit holds is a few
/// hundred.
pub const DEFAULT_UNAPPROVED_KEY_QUOTA: usize = 4_000;
/// Default share of one approved key in the gateway's budget: a quarter,
/// about 3,700 calls a second sustained.
pub const DEFAULT_BOUND_KEY_QUOTA: usize = nonce::DEFAULT_CAPACITY / 4;

impl Default for ReplaySizes {
    fn default() -> Self {
        Self {
            unapproved: ReplayLimits {
                capacity: DEFAULT_UNAPPROVED_CAPACITY,
                key_quota: DEFAULT_UNAPPROVED_KEY_QUOTA,
            },
            bound: ReplayLimits {
                capacity: nonce::DEFAULT_CAPACITY,
                key_quota: DEFAULT_BOUND_KEY_QUOTA,
            },
        }
    }
}

/// Both budgets, in memory (see `super::sled`'s notes on why not on disk).
#[derive(Debug)]
pub struct ReplayMemory {
    unapproved: MemoryNonceStore,
    bound: MemoryNonceStore,
}

impl ReplayMemory {
    /// Empty budgets of `sizes`, refusing signatures created before
    /// `horizon` ([`crate::proto::httpsig::NonceStore::horizon`]).
    pub fn new(sizes: ReplaySizes, horizon: i64) -> Self {
        let budget = |limits: ReplayLimits| {
            MemoryNonceStore::with_capacity(limits.capacity)
                .with_key_quota(limits.key_quota)
                .since(horizon)
        };
        Self {
            unapproved: budget(sizes.unapproved),
            bound: budget(sizes.bound),
        }
    }

    /// One budget.
    pub fn budget(&self, budget: ReplayBudget) -> &MemoryNonceStore {
        match budget {
            ReplayBudget::Unapproved => &self.unapproved,
            ReplayBudget::Bound => &self.bound,
        }
    }
}

impl Default for ReplayMemory {
    fn default() -> Self {
        Self::new(ReplaySizes::default(), i64::MIN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::httpsig::Algorithm;
    use crate::proto::httpsig::nonce::{NonceStore as _, NonceStoreError, Seen};
    use crate::proto::jwk::SigningKey;

    #[test]
    fn a_full_unapproved_budget_leaves_the_bound_one_untouched() {
        let tight = ReplayLimits {
            capacity: 16,
            key_quota: 16,
        };
        let memory = ReplayMemory::new(
            ReplaySizes {
                unapproved: tight,
                bound: tight,
            },
            i64::MIN,
        );
        let key = SigningKey::generate(Algorithm::Ed25519).unwrap();
        let scope = key.verifying_key().thumbprint();
        let unapproved = memory.budget(ReplayBudget::Unapproved);
        let full = (0..100u32)
            .map(|i| unapproved.remember(scope, &i.to_be_bytes(), 100, 0))
            .any(|r| r == Err(NonceStoreError::Full) || r == Err(NonceStoreError::KeyQuota));
        assert!(full, "sixteen slots fill");
        let bound = memory.budget(ReplayBudget::Bound);
        assert!(bound.is_empty());
        assert_eq!(bound.remember(scope, b"call", 100, 0), Ok(Seen::Fresh));
    }
}
