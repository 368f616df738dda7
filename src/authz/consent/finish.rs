//! Where a redirect finish goes: the browser that opened the page first
//! (`crate::authz::started_by`) gets it, here or by opening the link again.

use crate::authz::AuthServer;
use crate::authz::started_by::{self, FinishDelivery};
use crate::store::{GrantId, InteractionStatus};

impl AuthServer {
    /// Records that the browser named `browser` opened `grant`'s page, for
    /// its redirect finish: the first to do so started the interaction.
    pub(crate) fn bind_start(&self, grant: &str, browser: &str) {
        let now = self.now();
        let until = now
            .saturating_add(self.config.interaction_lifetime)
            .saturating_add(crate::authz::interaction::PENDING_GRACE);
        if let Some(shared) = &self.shared {
            started_by::shared::bind(shared, grant, browser, until, now);
            return;
        }
        if let Ok(mut live) = self.live.lock() {
            live.started_by
                .bind(&GrantId(grant.to_owned()), browser, until, now);
        }
    }

    /// Where the finish redirect `url` of a decision on `grant` goes, the
    /// decision made by the browser named `browser` (none: on the server).
    pub(crate) fn deliver_finish(
        &self,
        grant: &GrantId,
        browser: Option<&str>,
        url: String,
    ) -> FinishDelivery {
        if let Some(shared) = &self.shared {
            let until = self
                .now()
                .saturating_add(self.config.interaction_lifetime)
                .saturating_add(crate::authz::interaction::PENDING_GRACE);
            return started_by::shared::deliver(shared, &grant.0, browser, url, self.now(), until);
        }
        match self.live.lock() {
            Ok(mut live) => live.started_by.deliver(grant, browser, url),
            Err(_) => FinishDelivery::Here(url),
        }
    }

    /// The finish redirect waiting for the browser named `browser`, which
    /// opens the link `{grant}/{secret}` of an interaction decided
    /// elsewhere: only the browser that started it gets it, once.
    pub(crate) fn collect_finish(
        &self,
        grant: &str,
        secret: &str,
        browser: Option<&str>,
    ) -> Option<String> {
        let interaction = self.interaction_by_link(grant, secret).ok()?;
        if interaction.status == InteractionStatus::Pending {
            return None;
        }
        let now = self.now();
        if let Some(shared) = &self.shared {
            return started_by::shared::collect(shared, &interaction.grant.0, browser, now);
        }
        self.live
            .lock()
            .ok()?
            .started_by
            .collect(&interaction.grant, browser, now)
    }
}
