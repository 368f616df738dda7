//! The browser that started an interaction, for its `redirect` finish
//! (RFC 9635 §4.2.1, §11.23, §11.24).
//!
//! A redirect finish sends a browser to the client's URI with the
//! interaction reference, and the client ties it to the session that made
//! the request. That only protects anyone if the browser sent there is the
//! one that started the interaction: the first to open the grant's link
//! (`redirect` start) or to enter its code. When someone else decides — an
//! operator in another browser, the admin on the server, a person typing
//! the code on another device — the finish waits here for the starting
//! browser, which collects it by opening the link again; the deciding
//! browser is not sent to the client.
//!
//! In memory, keyed by grant, holding a SHA-256 of the browser's name
//! (its `gnapd_browser` cookie): a restart forgets it, and a finish that
//! found no starting browser goes to whoever decided, as before. When
//! nodes share the store, in its shared entries instead ([`shared`]).

use std::collections::HashMap;

use subtle::ConstantTimeEq as _;

use crate::store::GrantId;

pub(crate) mod shared;

/// Most interactions tracked at once.
const MAX_TRACKED: usize = 10_000;

#[derive(Debug)]
struct Started {
    browser: [u8; 32],
    expires_at: i64,
    /// A finish redirect decided elsewhere, for the starting browser.
    waiting: Option<String>,
}

/// Who started each pending interaction with a redirect finish.
#[derive(Debug, Default)]
pub(super) struct StartedBy {
    by_grant: HashMap<GrantId, Started>,
}

/// Where a decision's finish redirect goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FinishDelivery {
    /// To the browser that decided: it started the interaction (or no
    /// browser is known to have).
    Here(String),
    /// Kept for the browser that started the interaction.
    Elsewhere,
}

fn digest(browser: &str) -> [u8; 32] {
    crate::proto::hash::sha256(browser.as_bytes())
}

impl StartedBy {
    /// Interactions whose starting browser is held, and their bytes.
    pub(super) fn size(&self) -> crate::store::TableSize {
        let mut size = crate::store::TableSize::default();
        for (grant, started) in &self.by_grant {
            let waiting = started.waiting.as_ref().map_or(0, String::len);
            size.add(grant.0.len(), 32 + 8 + waiting);
        }
        size
    }

    /// Records `browser` as the one that started `grant`'s interaction,
    /// unless another did first; kept until `expires_at`.
    pub(super) fn bind(&mut self, grant: &GrantId, browser: &str, expires_at: i64, now: i64) {
        if self.by_grant.contains_key(grant) {
            return;
        }
        if self.by_grant.len() >= MAX_TRACKED {
            self.by_grant.retain(|_, s| s.expires_at >= now);
        }
        if self.by_grant.len() >= MAX_TRACKED
            && let Some(first) = self
                .by_grant
                .iter()
                .min_by_key(|(_, s)| s.expires_at)
                .map(|(g, _)| g.clone())
        {
            self.by_grant.remove(&first);
        }
        self.by_grant.insert(
            grant.clone(),
            Started {
                browser: digest(browser),
                expires_at,
                waiting: None,
            },
        );
    }

    fn is_starter(started: &Started, browser: Option<&str>) -> bool {
        browser.is_some_and(|b| bool::from(digest(b).ct_eq(&started.browser)))
    }

    /// Where `url`, the finish redirect of a decision on `grant` made by
    /// the browser holding `browser` (none: the admin), goes.
    pub(super) fn deliver(
        &mut self,
        grant: &GrantId,
        browser: Option<&str>,
        url: String,
    ) -> FinishDelivery {
        match self.by_grant.get_mut(grant) {
            None => FinishDelivery::Here(url),
            Some(started) if Self::is_starter(started, browser) => {
                self.by_grant.remove(grant);
                FinishDelivery::Here(url)
            }
            Some(started) => {
                started.waiting = Some(url);
                FinishDelivery::Elsewhere
            }
        }
    }

    /// The finish redirect waiting for `browser`, if it started `grant`'s
    /// interaction: taken once.
    pub(super) fn collect(
        &mut self,
        grant: &GrantId,
        browser: Option<&str>,
        now: i64,
    ) -> Option<String> {
        let started = self.by_grant.get(grant)?;
        if started.expires_at < now || !Self::is_starter(started, browser) {
            return None;
        }
        self.by_grant.remove(grant)?.waiting
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(id: &str) -> GrantId {
        GrantId(id.to_owned())
    }

    #[test]
    fn the_first_browser_binds_and_the_finish_goes_only_to_it() {
        let mut started = StartedBy::default();
        started.bind(&grant("g"), "starter", 2_000, 1_000);
        started.bind(&grant("g"), "latecomer", 2_000, 1_000);
        assert_eq!(
            started.deliver(&grant("g"), Some("latecomer"), "https://c/cb".into()),
            FinishDelivery::Elsewhere
        );
        assert_eq!(started.collect(&grant("g"), Some("latecomer"), 1_001), None);
        assert_eq!(started.collect(&grant("g"), None, 1_001), None);
        assert_eq!(
            started
                .collect(&grant("g"), Some("starter"), 1_001)
                .as_deref(),
            Some("https://c/cb")
        );
        assert_eq!(
            started.collect(&grant("g"), Some("starter"), 1_001),
            None,
            "once"
        );
    }

    #[test]
    fn the_starting_browser_deciding_is_sent_at_once_and_unknown_grants_go_to_the_decider() {
        let mut started = StartedBy::default();
        started.bind(&grant("g"), "starter", 2_000, 1_000);
        assert_eq!(
            started.deliver(&grant("g"), Some("starter"), "u".into()),
            FinishDelivery::Here("u".into())
        );
        assert_eq!(
            started.deliver(&grant("other"), None, "v".into()),
            FinishDelivery::Here("v".into())
        );
    }

    #[test]
    fn a_waiting_finish_expires_and_the_table_stays_bounded() {
        let mut started = StartedBy::default();
        started.bind(&grant("g"), "starter", 2_000, 1_000);
        started.deliver(&grant("g"), None, "u".into());
        assert_eq!(started.collect(&grant("g"), Some("starter"), 2_001), None);
        for i in 0..=MAX_TRACKED {
            started.bind(&grant(&format!("n{i}")), "b", 3_000 + i as i64, 1_000);
        }
        assert!(started.by_grant.len() <= MAX_TRACKED);
        assert!(
            started
                .by_grant
                .contains_key(&grant(&format!("n{MAX_TRACKED}")))
        );
    }
}
