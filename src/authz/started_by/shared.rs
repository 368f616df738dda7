//! The starting browsers in the entries nodes share
//! (`crate::store::handoff`, kind `started-by`), for a deployment whose
//! nodes share the store: the browser that opens a grant's page on one
//! node, the decision on another, and the starting browser coming back to
//! a third must meet the same record. One sealed entry per grant, the
//! browser's SHA-256 and the finish waiting for it (its URL carries the
//! `interact_ref`, hence the seal).
//!
//! The first to bind wins by a claim (one statement); a waiting finish is
//! written over the entry, and collected by a take, so it is delivered
//! once. A store that fails keeps the finish from everyone (it fails
//! closed: the client's redirect never goes to a browser that did not
//! start the interaction).

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;

use super::{FinishDelivery, digest};
use crate::store::HandoffKind;
use crate::upstream::sealed_handoffs::SealedHandoffs;

#[derive(Serialize, Deserialize)]
struct Entry {
    browser: [u8; 32],
    expires_at: i64,
    waiting: Option<String>,
}

fn is_starter(entry: &Entry, browser: Option<&str>) -> bool {
    browser.is_some_and(|b| bool::from(digest(b).ct_eq(&entry.browser)))
}

fn logged<T>(what: &str, result: Result<T, crate::store::StoreError>) -> Option<T> {
    result
        .map_err(|e| tracing::error!(error = %e, "starting browser: {what} failed"))
        .ok()
}

/// Records `browser` as the one that started `grant`'s interaction,
/// unless another did first; kept until `expires_at`.
pub(crate) fn bind(shared: &SealedHandoffs, grant: &str, browser: &str, expires_at: i64, now: i64) {
    let entry = Entry {
        browser: digest(browser),
        expires_at,
        waiting: None,
    };
    logged(
        "binding",
        shared.claim(HandoffKind::StartedBy, grant, &entry, now, expires_at),
    );
}

/// Where `url`, the finish of a decision on `grant` made by the browser
/// holding `browser` (none: the admin), goes. `until` bounds an entry
/// with no expiry of its own.
pub(crate) fn deliver(
    shared: &SealedHandoffs,
    grant: &str,
    browser: Option<&str>,
    url: String,
    now: i64,
    until: i64,
) -> FinishDelivery {
    let Some(found) = logged(
        "reading",
        shared.get::<Entry>(HandoffKind::StartedBy, grant, now),
    ) else {
        return FinishDelivery::Elsewhere;
    };
    let Some(mut entry) = found else {
        return FinishDelivery::Here(url);
    };
    if is_starter(&entry, browser) {
        logged("removing", shared.remove(HandoffKind::StartedBy, grant));
        return FinishDelivery::Here(url);
    }
    entry.waiting = Some(url);
    let expires_at = entry.expires_at.min(until).max(now);
    logged(
        "keeping a finish",
        shared.put(HandoffKind::StartedBy, grant, &entry, expires_at),
    );
    FinishDelivery::Elsewhere
}

/// The finish waiting for `browser`, if it started `grant`'s interaction:
/// taken once.
pub(crate) fn collect(
    shared: &SealedHandoffs,
    grant: &str,
    browser: Option<&str>,
    now: i64,
) -> Option<String> {
    let entry: Entry = logged("reading", shared.get(HandoffKind::StartedBy, grant, now))??;
    if !is_starter(&entry, browser) {
        return None;
    }
    let taken: Entry = logged("taking", shared.take(HandoffKind::StartedBy, grant, now))??;
    is_starter(&taken, browser)
        .then_some(taken.waiting)
        .flatten()
}
