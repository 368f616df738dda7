//! The lease in the store under which one process at a time rewrites an
//! `oauth2` credential set: the gateway while it refreshes the set's
//! tokens, `enroll` while it decides at start whether to reset the set to
//! the configured seed. Both take it under one name and as this process's
//! one holder, so a start never writes over a refresh in flight on another
//! node, and no two nodes present one refresh token.

use std::sync::OnceLock;
use std::time::Duration;

/// What a refresh may take beyond its two upstream waits (the response
/// head, then the body, each up to the response timeout): storing the
/// refreshed set, which PostgreSQL bounds by its 30 s statement timeout,
/// and a few seconds of clock difference between nodes.
const LEASE_BEYOND_UPSTREAM: u64 = 40;

/// The first pause of a caller waiting for another holder of the lease,
/// and the longest (doubling in between): a refresh usually takes one
/// round trip to the upstream's token endpoint.
pub const POLL_FIRST: Duration = Duration::from_millis(10);
pub const POLL_MOST: Duration = Duration::from_millis(250);

/// The pause after `pause`, on the way from [`POLL_FIRST`] to [`POLL_MOST`].
pub fn next_pause(pause: Duration) -> Duration {
    (pause * 2).min(POLL_MOST)
}

/// The lease that makes one process at a time rewrite set `id`.
pub fn refresh_lease(id: &str) -> String {
    format!("upstream-refresh:{id}")
}

/// How long a refresh lease lasts, seconds: longer than the longest a
/// refresh can take with `response_timeout`, so a live holder never loses
/// it (another node would then present the same refresh token); a holder
/// that died holds it that long at most.
pub fn lease_seconds(response_timeout: Duration) -> i64 {
    let seconds = response_timeout
        .as_secs()
        .saturating_mul(2)
        .saturating_add(LEASE_BEYOND_UPSTREAM + 1);
    i64::try_from(seconds).unwrap_or(i64::MAX / 4)
}

/// This process, as a lease holder: drawn once, random, so that no two
/// processes (on one machine or several) hold a lease under one name.
pub fn holder() -> Option<&'static str> {
    static HOLDER: OnceLock<Option<String>> = OnceLock::new();
    HOLDER.get_or_init(|| crate::random::text().ok()).as_deref()
}
