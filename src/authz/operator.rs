//! The operator's sign-in: how the person running gnapd approves grants in
//! the browser when no enterprise IdP is configured (`[login]`).
//!
//! A pending grant's link travels through the agent that asked for it, so
//! holding the link proves nothing about who is deciding. Outside `--dev`
//! a page decides only for a signed-in person: the configured login's
//! subject, or the operator. The operator signs in with a one-time link
//! whose secret only the machine's admin can read (printed at start on a
//! terminal, written to `<data-dir>/operator-login` with mode 0600, and
//! made fresh by `gnapd admin login-link` over the admin socket), as
//! notebook servers do. Redeeming it opens a session held by the browser in
//! an HttpOnly, SameSite=Strict cookie; sessions expire, each can be signed
//! out, and `gnapd admin logout` revokes them all.
//!
//! On one node everything lives in memory: a restart makes a new link and
//! signs every operator out. When nodes share a store (`Operator::shared`)
//! links and sessions are its shared entries instead, so a link made on
//! one node signs in on another and the session works on every node; a
//! node's new link replaces only the link that node made last, and
//! `gnapd admin logout` on any node ends every session everywhere.
//! Secrets are kept as SHA-256 digests (compared in constant time in
//! memory; looked up by digest in the store); the clear values are only
//! ever handed out once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use subtle::ConstantTimeEq as _;

use crate::random::NoRandomness;
use crate::store::{HandoffKind, Store, StoreError};

/// The operator's sign-in page: the link is `{public}{OPERATOR_PATH}?code=…`.
pub(crate) const OPERATOR_PATH: &str = "/gnap/operator";
/// Where a signed-in operator signs out.
pub(crate) const OPERATOR_SIGN_OUT_PATH: &str = "/gnap/operator/sign-out";

/// The sign-in link for `secret` on the server at `public_url`.
pub(crate) fn link_url(public_url: &str, secret: &str) -> String {
    // The secret is base64url: nothing to escape.
    format!("{public_url}{OPERATOR_PATH}?code={secret}")
}

/// Most operator sessions at once; a new one past it ends the oldest.
const MAX_SESSIONS: usize = 64;

/// How long sign-in links and sessions last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OperatorSettings {
    /// Seconds a sign-in link works, unless used or replaced first.
    pub(crate) link_lifetime: i64,
    /// Seconds a session lasts after sign-in.
    pub(crate) session_lifetime: i64,
}

impl Default for OperatorSettings {
    /// A link for a day (the operator may come back to the terminal much
    /// later), a working day's session.
    fn default() -> Self {
        Self {
            link_lifetime: 24 * 3600,
            session_lifetime: 12 * 3600,
        }
    }
}

fn digest(secret: &str) -> [u8; 32] {
    crate::proto::hash::sha256(secret.as_bytes())
}

#[derive(Debug)]
struct Link {
    digest: [u8; 32],
    expires_at: i64,
}

#[derive(Debug, Clone, Copy)]
struct Session {
    created_at: i64,
    expires_at: i64,
}

/// The operator's sign-in link and sessions.
#[derive(Default)]
pub struct Operator {
    settings: OperatorSettings,
    /// The link this node made last (when shared: only to replace it).
    link: Mutex<Option<Link>>,
    sessions: Mutex<HashMap<[u8; 32], Session>>,
    /// The store every node shares, if it keeps shared entries.
    shared: Option<Arc<dyn Store>>,
}

impl std::fmt::Debug for Operator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operator")
            .field("settings", &self.settings)
            .field("shared", &self.shared.is_some())
            .finish_non_exhaustive()
    }
}

/// A sign-in link could not be made, or a session opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OperatorError {
    /// The link is unknown, used, replaced or expired.
    #[error("this sign-in link is not valid: it was used, replaced or expired")]
    InvalidLink,
    /// The random source failed.
    #[error("the random source failed")]
    NoRandomness,
    /// The store the nodes share did not answer.
    #[error("the sign-in store is unavailable; try again")]
    Unavailable,
}

impl OperatorError {
    /// The HTTP status of the page that says so.
    pub(crate) fn status(&self) -> u16 {
        match self {
            Self::InvalidLink => 403,
            Self::NoRandomness => 500,
            Self::Unavailable => 503,
        }
    }
}

impl From<NoRandomness> for OperatorError {
    fn from(_: NoRandomness) -> Self {
        Self::NoRandomness
    }
}

impl From<StoreError> for OperatorError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "operator sign-in: the store failed");
        Self::Unavailable
    }
}

/// A session's stored value: when it was opened (for `Debug` and dumps,
/// nothing secret).
fn session_value(created_at: i64) -> [u8; 8] {
    created_at.to_be_bytes()
}

impl Operator {
    /// Operator sessions held, and their bytes (digest, two times).
    pub(crate) fn sessions_size(&self) -> crate::store::TableSize {
        let held = self.sessions.lock().map(|s| s.len()).unwrap_or(0);
        crate::store::TableSize::of(held, held * (32 + 16))
    }

    /// An operator sign-in with `settings`.
    pub fn new(settings: OperatorSettings) -> Self {
        Self {
            settings,
            ..Self::default()
        }
    }

    /// The same sign-in keeping its links and sessions in `store`, when
    /// `store` keeps entries for several nodes; otherwise in memory.
    pub fn shared(mut self, store: Arc<dyn Store>) -> Self {
        if store.handoffs().is_some() {
            self.shared = Some(store);
        }
        self
    }

    fn handoffs(&self) -> Option<&dyn crate::store::Handoffs> {
        self.shared.as_deref().and_then(|store| store.handoffs())
    }

    /// A fresh one-time sign-in secret, valid from `now`; the previous link
    /// (this node's, when nodes share the store) stops working.
    pub fn new_link(&self, now: i64) -> Result<String, OperatorError> {
        let secret = crate::random::text()?;
        let fresh = Link {
            digest: digest(&secret),
            expires_at: now.saturating_add(self.settings.link_lifetime),
        };
        let mut link = self.link.lock().map_err(|_| OperatorError::NoRandomness)?;
        if let Some(shared) = self.handoffs() {
            if let Some(previous) = link.as_ref() {
                shared.remove_handoff(HandoffKind::OperatorLink, &previous.digest)?;
            }
            shared.put_handoff(
                HandoffKind::OperatorLink,
                &fresh.digest,
                b"",
                fresh.expires_at,
            )?;
        }
        *link = Some(fresh);
        Ok(secret)
    }

    /// Redeems the link's `secret` at `now` (once) and opens a session:
    /// the session token the browser keeps.
    pub fn redeem(&self, secret: &str, now: i64) -> Result<String, OperatorError> {
        if let Some(shared) = self.handoffs() {
            // The take is the single use: of two nodes redeeming one link
            // at once, one finds it gone.
            shared
                .take_handoff(HandoffKind::OperatorLink, &digest(secret), now)?
                .ok_or(OperatorError::InvalidLink)?;
            let token = crate::random::text()?;
            shared.put_handoff(
                HandoffKind::OperatorSession,
                &digest(&token),
                &session_value(now),
                now.saturating_add(self.settings.session_lifetime),
            )?;
            return Ok(token);
        }
        {
            let mut link = self.link.lock().map_err(|_| OperatorError::InvalidLink)?;
            let valid = link.as_ref().is_some_and(|l| {
                bool::from(digest(secret).ct_eq(&l.digest)) && now <= l.expires_at
            });
            if !valid {
                return Err(OperatorError::InvalidLink);
            }
            *link = None;
        }
        let token = crate::random::text()?;
        let mut sessions = self
            .sessions
            .lock()
            .map_err(|_| OperatorError::NoRandomness)?;
        sessions.retain(|_, s| s.expires_at >= now);
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, s)| s.created_at)
                .map(|(k, _)| *k)
        {
            sessions.remove(&oldest);
        }
        sessions.insert(
            digest(&token),
            Session {
                created_at: now,
                expires_at: now.saturating_add(self.settings.session_lifetime),
            },
        );
        Ok(token)
    }

    /// Whether `token` (the browser's session cookie) is a live session at
    /// `now`.
    pub(crate) fn is_signed_in(&self, token: Option<&str>, now: i64) -> bool {
        let Some(token) = token else {
            return false;
        };
        if let Some(shared) = self.handoffs() {
            return match shared.handoff(HandoffKind::OperatorSession, &digest(token), now) {
                Ok(found) => found.is_some(),
                Err(e) => {
                    // Fails closed: the page asks to sign in again.
                    tracing::error!(error = %e, "operator session: the store failed");
                    false
                }
            };
        }
        let Ok(sessions) = self.sessions.lock() else {
            return false;
        };
        // Looked up by digest: the map's own comparison sees only digests
        // of 256-bit values, never the token.
        sessions
            .get(&digest(token))
            .is_some_and(|s| now <= s.expires_at)
    }

    /// Ends the session of `token`, if any.
    pub(crate) fn sign_out(&self, token: &str) {
        if let Some(shared) = self.handoffs() {
            if let Err(e) = shared.remove_handoff(HandoffKind::OperatorSession, &digest(token)) {
                tracing::error!(error = %e, "operator sign-out: the store failed");
            }
            return;
        }
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.remove(&digest(token));
        }
    }

    /// Ends every session and voids the sign-in link; returns how many
    /// sessions ended.
    pub fn revoke_all(&self) -> usize {
        if let Ok(mut link) = self.link.lock() {
            *link = None;
        }
        if let Some(shared) = self.handoffs() {
            // Every node's link and sessions: the operator's "sign out
            // everywhere".
            let removed = shared
                .remove_handoff_kind(HandoffKind::OperatorLink)
                .and_then(|_| shared.remove_handoff_kind(HandoffKind::OperatorSession));
            return removed.unwrap_or_else(|e| {
                tracing::error!(error = %e, "operator sign-out of all: the store failed");
                0
            });
        }
        self.sessions.lock().map_or(0, |mut sessions| {
            let n = sessions.len();
            sessions.clear();
            n
        })
    }

    /// How long a session lasts (the cookie's `Max-Age`).
    pub(crate) fn session_lifetime(&self) -> i64 {
        self.settings.session_lifetime
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operator() -> Operator {
        Operator::new(OperatorSettings {
            link_lifetime: 100,
            session_lifetime: 50,
        })
    }

    #[test]
    fn a_sign_in_link_works_once_and_opens_a_session_that_expires() {
        let operator = operator();
        let secret = operator.new_link(1_000).unwrap();
        assert_eq!(
            operator.redeem("not-it", 1_001),
            Err(OperatorError::InvalidLink)
        );
        let token = operator.redeem(&secret, 1_001).unwrap();
        assert_eq!(
            operator.redeem(&secret, 1_002),
            Err(OperatorError::InvalidLink),
            "the link is single use"
        );
        assert!(operator.is_signed_in(Some(&token), 1_051));
        assert!(!operator.is_signed_in(Some(&token), 1_052), "expired");
        assert!(!operator.is_signed_in(None, 1_010));
        assert!(!operator.is_signed_in(Some(&secret), 1_010));
    }

    #[test]
    fn a_new_link_replaces_the_old_and_links_expire() {
        let operator = operator();
        let old = operator.new_link(1_000).unwrap();
        let new = operator.new_link(1_000).unwrap();
        assert_eq!(
            operator.redeem(&old, 1_001),
            Err(OperatorError::InvalidLink)
        );
        assert_eq!(
            operator.redeem(&new, 1_101),
            Err(OperatorError::InvalidLink),
            "expired"
        );
    }

    #[test]
    fn sessions_can_be_signed_out_one_by_one_or_all_at_once() {
        let operator = operator();
        let open = |now| {
            let secret = operator.new_link(now).unwrap();
            operator.redeem(&secret, now).unwrap()
        };
        let (a, b, c) = (open(1_000), open(1_000), open(1_000));
        operator.sign_out(&a);
        assert!(!operator.is_signed_in(Some(&a), 1_001));
        assert!(operator.is_signed_in(Some(&b), 1_001));
        let pending = operator.new_link(1_001).unwrap();
        assert_eq!(operator.revoke_all(), 2);
        assert!(!operator.is_signed_in(Some(&b), 1_001));
        assert!(!operator.is_signed_in(Some(&c), 1_001));
        assert_eq!(
            operator.redeem(&pending, 1_001),
            Err(OperatorError::InvalidLink),
            "revoking voids the link too"
        );
    }

    #[test]
    fn sessions_are_bounded_and_the_oldest_goes_first() {
        let operator = Operator::new(OperatorSettings {
            link_lifetime: 100,
            session_lifetime: 10_000,
        });
        let mut tokens = Vec::new();
        for i in 0..=MAX_SESSIONS as i64 {
            let secret = operator.new_link(1_000 + i).unwrap();
            tokens.push(operator.redeem(&secret, 1_000 + i).unwrap());
        }
        let now = 1_000 + MAX_SESSIONS as i64;
        assert!(!operator.is_signed_in(Some(&tokens[0]), now));
        assert!(
            tokens[1..]
                .iter()
                .all(|t| operator.is_signed_in(Some(t), now))
        );
    }
}
