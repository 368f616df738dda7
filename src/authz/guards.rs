//! Where the AS applies its bounds ([`super::limits`]): rate limits by
//! source address before a request is read, by key once its signature
//! verified, and the slots of grants waiting for a person.
//!
//! Answers (RFC 9635 names no code for a rate limit outside continuation):
//! - on a continuation URI, `too_fast` (429, `Retry-After`): the client was
//!   given a `wait` and §3.6 defines `too_fast` as calling before it;
//! - at the grant endpoint, `request_denied` with 429 and `Retry-After`:
//!   the request is well formed (not `invalid_request`), nothing was
//!   finalized (not `too_many_attempts`, which gnapd answers with 403), and
//!   "denied for an unspecified reason" leaves the reason to the status;
//! - when every pending slot is taken, `request_denied` with 503: the
//!   server is at capacity, as for a full replay cache.

use std::sync::Mutex;

use super::limits::Limits;
use super::pending::{Full, PendingSlots};
use super::usercode::source_key;
use super::{AuthServer, Endpoint, Failure};
use crate::proto::gnap::{Reason, RequestError};
use crate::store::rate::Buckets;
use crate::store::{GrantId, InteractionStatus, StoreError};

/// The state behind the bounds.
#[derive(Debug)]
pub(super) struct Guards {
    grant_address: Mutex<Buckets>,
    grant_key: Mutex<Buckets>,
    continue_address: Mutex<Buckets>,
    pages: Mutex<Buckets>,
    /// The OAuth endpoints (authorization, token, revocation), per address,
    /// at the grant endpoint's rate unless configured apart.
    oauth_address: Mutex<Buckets>,
    pending: Mutex<PendingSlots>,
}

impl Guards {
    pub(super) fn new(limits: &Limits) -> Self {
        Self {
            grant_address: Mutex::new(Buckets::new(limits.grant_per_address)),
            grant_key: Mutex::new(Buckets::new(limits.grant_per_key)),
            continue_address: Mutex::new(Buckets::new(limits.continue_per_address)),
            pages: Mutex::new(Buckets::new(limits.pages_per_address)),
            oauth_address: Mutex::new(Buckets::new(limits.oauth_per_address)),
            pending: Mutex::new(PendingSlots::default()),
        }
    }

    /// The rate-limit buckets (every limit together) and the pending grant
    /// slots.
    pub(super) fn sizes(&self) -> [(&'static str, crate::store::TableSize); 2] {
        let mut buckets = crate::store::TableSize::default();
        for limit in [
            &self.grant_address,
            &self.grant_key,
            &self.continue_address,
            &self.pages,
            &self.oauth_address,
        ] {
            if let Ok(limit) = limit.lock() {
                let size = limit.size();
                buckets.records += size.records;
                buckets.bytes += size.bytes;
            }
        }
        let slots = self.pending.lock().map(|p| p.size()).unwrap_or_default();
        [
            ("memory:rate_limits", buckets),
            ("memory:pending_grant_slots", slots),
        ]
    }
}

/// Takes one request from `name`'s bucket; a poisoned lock lets it through
/// (the global caps still hold).
fn take(buckets: &Mutex<Buckets>, name: &str, now: i64) -> Result<(), u64> {
    match buckets.lock() {
        Ok(mut b) => b.take(name, now),
        Err(_) => Ok(()),
    }
}

impl AuthServer {
    /// The per-address limit of `endpoint`, before the request is read.
    /// `source` is the client's address as the HTTP edge saw it.
    pub(super) fn admit_address(
        &self,
        endpoint: &Endpoint,
        method: &str,
        source: &str,
    ) -> Result<(), Failure> {
        let (buckets, limit) = match (endpoint, method) {
            (Endpoint::Grant, "POST") => (&self.guards.grant_address, "grant_per_address"),
            (Endpoint::Continue(_), _) => (&self.guards.continue_address, "continue_per_address"),
            _ => return Ok(()),
        };
        take(buckets, &source_key(source), self.now()).map_err(|retry_after| {
            self.metrics.limited(limit);
            Failure::Limited { retry_after }
        })
    }

    /// The per-key limit of the grant endpoint, for a key whose signature
    /// verified (so nobody can spend another key's share).
    pub(super) fn admit_grant_key(&self, thumbprint: &str) -> Result<(), Failure> {
        take(&self.guards.grant_key, thumbprint, self.now()).map_err(|retry_after| {
            self.metrics.limited("grant_per_key");
            Failure::Limited { retry_after }
        })
    }

    /// The per-address limit of the pages (the user code form included):
    /// `Err` carries the seconds to wait.
    pub(crate) fn admit_page(&self, source: &str) -> Result<(), u64> {
        take(&self.guards.pages, &source_key(source), self.now()).inspect_err(|_| {
            self.metrics.limited("pages_per_address");
        })
    }

    /// The per-address limit of the OAuth endpoints, before a request is
    /// read: `Err` carries the seconds to wait.
    pub(crate) fn admit_oauth(&self, source: &str) -> Result<(), u64> {
        take(&self.guards.oauth_address, &source_key(source), self.now()).inspect_err(|_| {
            self.metrics.limited("oauth_per_address");
        })
    }

    /// Passes on what a body reader returned, counting a body refused for
    /// its nesting (`proto::gnap::limits::MAX_DEPTH`).
    pub(super) fn counted<T>(&self, read: Result<T, RequestError>) -> Result<T, RequestError> {
        if let Err(e) = &read
            && matches!(e.reason(), Reason::TooDeep { .. })
        {
            self.metrics.limited("request_depth");
        }
        read
    }

    /// Holds a pending slot for `grant` before its records are written.
    pub(super) fn hold_pending(
        &self,
        grant: &GrantId,
        key: &str,
        source: Option<&str>,
        until: i64,
    ) -> Result<(), Failure> {
        let now = self.now();
        let address = source.map(source_key);
        let caps = &self.config.limits.pending;
        let mut slots = self
            .guards
            .pending
            .lock()
            .map_err(|_| Failure::Store(StoreError::Backend("lock poisoned".into())))?;
        let held = slots.hold(grant, key, address.as_deref(), until, caps, now);
        self.metrics.pending_held(slots.held(now));
        held.map_err(|full| {
            // A hint: a slot frees when a person decides, at the latest
            // when the interaction's grant is swept.
            let retry_after = u64::try_from(self.config.interaction_lifetime).unwrap_or(600);
            match full {
                Full::Key => {
                    self.metrics.limited("pending_per_key");
                    Failure::Limited { retry_after }
                }
                Full::Address => {
                    self.metrics.limited("pending_per_address");
                    Failure::Limited { retry_after }
                }
                Full::Total => {
                    self.metrics.limited("pending_total");
                    Failure::Full { retry_after }
                }
            }
        })
    }

    /// Frees `grant`'s pending slot (approved, deleted, or never written).
    pub(super) fn release_pending(&self, grant: &GrantId) {
        if let Ok(mut slots) = self.guards.pending.lock() {
            slots.release(grant);
            self.metrics.pending_held(slots.held(self.now()));
        }
    }

    /// Frees the slots of grants the sweep has removed and sets the gauge
    /// (`gnapd_pending_grants`) to those still held.
    pub(crate) fn count_pending(&self) {
        if let Ok(mut slots) = self.guards.pending.lock() {
            self.metrics.pending_held(slots.held(self.now()));
        }
    }

    /// Counts the grants the store holds waiting for a person, at start.
    pub(super) fn restore_pending(&self) {
        let pending = match self.store.pending_interactions() {
            Ok(pending) => pending,
            Err(e) => {
                tracing::warn!(error = %e, "pending grants could not be counted at start");
                return;
            }
        };
        let Ok(mut slots) = self.guards.pending.lock() else {
            return;
        };
        for interaction in pending {
            debug_assert_eq!(interaction.status, InteractionStatus::Pending);
            if let Ok(Some(grant)) = self.store.grant(&interaction.grant) {
                slots.restore(&grant.id, &grant.client.thumbprint, grant.expires_at);
            }
        }
        self.metrics.pending_held(slots.held(self.now()));
    }
}
