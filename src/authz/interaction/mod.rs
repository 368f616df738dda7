//! Interaction (RFC 9635 §2.5, §3.3, §4, §5.1): a grant that waits for a
//! person, sans I/O.
//!
//! When policy says a person must decide, a grant request that offers a
//! mode gnapd supports gets 200 with `interact` and `continue` and no
//! token; the grant is _pending_. Supported here:
//!
//! - start mode `redirect` (§3.3.1): the interaction page at
//!   `{public}/gnap/interact/{grant}/{secret}`, unique per interaction and
//!   unguessable (256 random bits, stored as a hash), where a person
//!   approves, narrows or denies (`super::consent`, `crate::http::pages`);
//! - start modes `user_code` (§3.3.3) and `user_code_uri` (§3.3.4): one
//!   code per interaction, typed at `{public}/gnap/device` (which leads to
//!   the same page) or given to `gnapd grants approve CODE` (the admin
//!   socket);
//! - `app` is not offered ("The AS MUST NOT respond with any interaction
//!   mode that the AS does not support");
//! - finish methods `redirect` and `push` (§4.2.1, §4.2.2), with the
//!   interaction hash of §4.2.3. With a finish method the AS can reach the
//!   client after an out-of-band decision, so a request offering only a
//!   finish method is served too (the §2.5 example with `"start": []`).
//!
//! A request that needs a person and offers nothing gnapd supports is
//! `invalid_interaction` (§2.5: "the AS MUST return an `invalid_interaction`
//! error").
//!
//! Continuation (§5.1, §5.2): before a decision, polling gets a new
//! continuation and no token. After approval, tokens come with the
//! interaction reference when a finish method was used (§4.2: "All
//! interaction finish methods MUST require presentation of an interaction
//! reference"; a poll without it keeps getting the pending answer), or with
//! the next poll otherwise. The reference is taken once, atomically with the
//! token issue (`Store::finish_interaction`); presented again once the grant
//! is no longer pending it is `too_many_attempts` and the grant is
//! finalized (§5.1). A denial is `user_denied`; an interaction that expired
//! undecided is `invalid_interaction` ("the interaction modes in use have
//! expired", §3.6).

use std::collections::HashMap;

use super::usercode::{Attempts, UserCode};
use crate::proto::gnap::{AccessRight, GrantRequest};
use crate::store::{GrantId, StoreError};

mod continued;
mod decide;
mod finish_uri;
mod listing;
mod start;

pub(crate) use finish_uri::is_internal_address;
pub use listing::PendingGrant;
pub(crate) use listing::describe_access;

/// How long a pending grant outlives its interaction: time for a client to
/// collect an approval made just before the interaction expired.
pub(crate) const PENDING_GRACE: i64 = 3600;
/// Most clear user codes kept in memory for `gnapd grants pending`.
const MAX_SHOWN_CODES: usize = 10_000;

/// Interaction state that lives in memory only: attempt counters, and the
/// user codes of pending grants so the admin listing can show them (the
/// store keeps only their hashes; after a restart the listing shows none).
#[derive(Debug, Default)]
pub(super) struct Live {
    attempts: Attempts,
    codes: HashMap<GrantId, UserCode>,
    /// The browser that started each interaction with a redirect finish.
    pub(super) started_by: super::started_by::StartedBy,
}

impl Live {
    /// Its tables: attempt counters, shown user codes, starting browsers.
    pub(super) fn sizes(&self) -> [(&'static str, crate::store::TableSize); 3] {
        let mut codes = crate::store::TableSize::default();
        for (grant, code) in &self.codes {
            codes.add(grant.0.len(), code.as_str().len());
        }
        [
            ("memory:user_code_attempts", self.attempts.size()),
            ("memory:user_codes_shown", codes),
            ("memory:interaction_browsers", self.started_by.size()),
        ]
    }
}

/// What the AS does to tell the client that the interaction finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinishAction {
    /// No finish method: the client polls.
    None,
    /// §4.2.1: send the RO's browser to this URL (the client's URI with
    /// `hash` and `interact_ref`).
    Redirect {
        /// Where to.
        url: String,
    },
    /// §4.2.2: POST this JSON to the client's URI.
    Push {
        /// The client's URI.
        uri: String,
        /// `{"hash": …, "interact_ref": …}`.
        body: Vec<u8>,
    },
}

/// A decision made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    /// The grant decided.
    pub grant: GrantId,
    /// True if approved.
    pub approved: bool,
    /// How the client learns of it.
    pub finish: FinishAction,
}

/// Why a decision could not be made. The text is for the person deciding.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    /// No pending grant has this code or id.
    #[error("no pending grant has this code or id")]
    NotFound,
    /// Too many failed attempts from this source, or entries of this code.
    #[error("too many attempts; wait a few minutes")]
    TooManyAttempts,
    /// The interaction expired before a decision.
    #[error("the interaction expired; the agent must ask again")]
    Expired,
    /// Someone decided first.
    #[error("this grant was already decided")]
    AlreadyDecided,
    /// The store failed.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The random source failed.
    #[error("the random source failed")]
    NoRandomness,
}

/// How a pending interaction may be named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// By user code or grant id: the admin, who sees grant ids listed.
    CodeOrGrantId,
    /// By user code only: a person at the user code page (a grant id is
    /// not a secret, and must not open a grant's page).
    CodeOnly,
}

/// The rights requested, per requested token (what approval grants unless
/// a person narrows it).
pub(super) fn requested_per_token(request: &GrantRequest) -> Vec<Vec<AccessRight>> {
    request
        .access_token
        .as_ref()
        .map(|t| t.as_slice().iter().map(|t| t.access.clone()).collect())
        .unwrap_or_default()
}
