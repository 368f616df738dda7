//! The bounds on what clients nobody approved can make the AS do and hold
//! (issue 14), with their defaults: one place to read them all.
//!
//! Each default is one a real deployment can keep: far above what a
//! legitimate agent needs (one grant request when it starts, a poll every
//! `wait` while a person decides, a rotation per token lifetime), and low
//! enough that a flood from one address or key cannot take what others
//! need. README ("Bounds") and spec-notes/security.md §5.1 give the figures.

use crate::store::ReplaySizes;

pub use crate::store::rate::RateLimit;

/// Caps on grants waiting for a person: each holds a record until it is
/// approved or swept, so their number bounds what unapproved requests store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PendingCaps {
    /// Per key (`pending_per_key`).
    pub(crate) per_key: usize,
    /// Per source address, IPv6 by /64 (`pending_per_address`).
    pub(crate) per_address: usize,
    /// In all (`pending_total`).
    pub(crate) total: usize,
    /// Bytes of the request a pending grant keeps, as stored
    /// (`pending_request_max_bytes`).
    pub(crate) request_bytes: usize,
}

/// Every AS-side bound of issue 14.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The replay budgets (`store::replay`).
    pub(crate) replay: ReplaySizes,
    /// Grant requests per source address (`grant_rate_per_address`).
    pub(crate) grant_per_address: RateLimit,
    /// Grant requests per key, counted once the signature verified
    /// (`grant_rate_per_key`).
    pub(crate) grant_per_key: RateLimit,
    /// Calls on continuation URIs per source address
    /// (`continue_rate_per_address`).
    pub(crate) continue_per_address: RateLimit,
    /// Page requests per source address, the user code form included
    /// (`page_rate_per_address`).
    pub(crate) pages_per_address: RateLimit,
    /// Requests to the OAuth endpoints (authorization, token, revocation,
    /// introspection) per source address (`oauth_rate_per_address`; by
    /// default the grant endpoint's rate).
    pub(crate) oauth_per_address: RateLimit,
    /// Grants waiting for a person.
    pub(crate) pending: PendingCaps,
}

/// One agent starting: a grant request, and again when its token is
/// revoked or its connector restarts. 60 at once (a machine starting its
/// agents together), one a second after that.
pub(crate) const DEFAULT_GRANT_PER_KEY: RateLimit = RateLimit {
    burst: 60,
    per_minute: 60,
};
/// Many agents behind one address (a NAT, a proxy without
/// `trusted_proxy`): 300 at once, 10 a second sustained.
pub(crate) const DEFAULT_GRANT_PER_ADDRESS: RateLimit = RateLimit {
    burst: 300,
    per_minute: 600,
};
/// A poll every `wait` (5 s) from each of [`DEFAULT_PENDING_PER_ADDRESS`]
/// grants is 20 a second; twice that, so management calls fit too.
pub(crate) const DEFAULT_CONTINUE_PER_ADDRESS: RateLimit = RateLimit {
    burst: 400,
    per_minute: 2400,
};
/// People behind one address opening consent pages and typing codes: a
/// page view is one request.
pub(crate) const DEFAULT_PAGES_PER_ADDRESS: RateLimit = RateLimit {
    burst: 120,
    per_minute: 600,
};
/// Grants one key may have waiting for a person.
pub(crate) const DEFAULT_PENDING_PER_KEY: usize = 10;
/// Grants one address may have waiting for a person.
pub(crate) const DEFAULT_PENDING_PER_ADDRESS: usize = 100;
/// Grants waiting for a person in all.
pub(crate) const DEFAULT_PENDING_TOTAL: usize = 10_000;
/// Bytes of request a pending grant keeps: an agent's request is a few
/// hundred; a person cannot review one of more.
pub(crate) const DEFAULT_PENDING_REQUEST_BYTES: usize = 8 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Self {
            replay: ReplaySizes::default(),
            grant_per_address: DEFAULT_GRANT_PER_ADDRESS,
            grant_per_key: DEFAULT_GRANT_PER_KEY,
            continue_per_address: DEFAULT_CONTINUE_PER_ADDRESS,
            pages_per_address: DEFAULT_PAGES_PER_ADDRESS,
            oauth_per_address: DEFAULT_GRANT_PER_ADDRESS,
            pending: PendingCaps {
                per_key: DEFAULT_PENDING_PER_KEY,
                per_address: DEFAULT_PENDING_PER_ADDRESS,
                total: DEFAULT_PENDING_TOTAL,
                request_bytes: DEFAULT_PENDING_REQUEST_BYTES,
            },
        }
    }
}
