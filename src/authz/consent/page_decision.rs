//! A decision posted from a grant's page, in two halves: checked (form
//! token, who decides, still pending, the access left ticked), then
//! recorded with the credential sets the person connected in between.

use super::{PageError, Selection, narrow};
use crate::authz::decider::{Decider, Presented};
use crate::authz::interaction::requested_per_token;
use crate::authz::{AuthServer, Decided};
use crate::proto::gnap::AccessRight;
use crate::store::{GrantRecord, InteractionRecord, InteractionStatus};

/// A page's decision, checked (form token, interaction still pending,
/// narrowing) and not yet recorded: the HTTP edge connects upstreams in
/// between, then records it with [`AuthServer::record_page_decision`].
#[derive(Debug, Clone)]
pub struct PageDecision {
    interaction: InteractionRecord,
    record: GrantRecord,
    access: Option<Vec<Vec<AccessRight>>>,
    decider: Decider,
}

impl PageDecision {
    /// The grant id.
    pub(crate) fn grant(&self) -> &str {
        &self.record.id.0
    }

    /// The access approved, per token (`None`: a denial).
    pub(crate) fn approved(&self) -> Option<&[Vec<AccessRight>]> {
        self.access.as_deref()
    }
}

impl AuthServer {
    /// A decision posted from a grant's page: checks the form token first
    /// (nothing is looked up or decided without it) and who is deciding
    /// (`presented`), then approves the access left ticked, or denies. The
    /// caller carries out the finish.
    pub fn decide_by_page(
        &self,
        grant: &str,
        form_token: Option<&str>,
        presented: Presented<'_>,
        approve: bool,
        selection: &Selection,
        source: &str,
    ) -> Result<Decided, PageError> {
        let decision =
            self.check_page_decision(grant, form_token, presented, approve, selection, source)?;
        self.record_page_decision(decision, Vec::new(), source)
    }

    /// The first half of [`Self::decide_by_page`]: the form token, who is
    /// deciding, the interaction still pending, the access left ticked.
    pub(crate) fn check_page_decision(
        &self,
        grant: &str,
        form_token: Option<&str>,
        presented: Presented<'_>,
        approve: bool,
        selection: &Selection,
        source: &str,
    ) -> Result<PageDecision, PageError> {
        let id = self.check_form_token(grant, form_token, source)?;
        let now = self.now();
        let decider = self.decider(grant, presented, now).inspect_err(|_| {
            tracing::warn!(
                grant,
                source,
                "interaction decision refused: nobody allowed to decide is signed in"
            );
        })?;
        let interaction = self.store.interaction(&id)?.ok_or(PageError::NotFound)?;
        if interaction.status != InteractionStatus::Pending {
            return Err(PageError::AlreadyDecided);
        }
        if now > interaction.expires_at {
            return Err(PageError::Expired);
        }
        let record: GrantRecord = self.store.grant(&id)?.ok_or(PageError::NotFound)?;
        let access = if approve {
            let narrowed = narrow(&requested_per_token(&record.request), selection);
            if narrowed.iter().all(Vec::is_empty) {
                return Err(PageError::NothingSelected);
            }
            Some(narrowed)
        } else {
            None
        };
        Ok(PageDecision {
            interaction,
            record,
            access,
            decider,
        })
    }

    /// The second half: records the decision, with the credential sets the
    /// person `connected` (`(upstream, set id)`) for an approval, and who
    /// decided.
    pub(crate) fn record_page_decision(
        &self,
        decision: PageDecision,
        connected: Vec<(String, String)>,
        source: &str,
    ) -> Result<Decided, PageError> {
        let now = self.now();
        if now > decision.interaction.expires_at {
            return Err(PageError::Expired);
        }
        Ok(self.record_decision(
            &decision.interaction,
            &decision.record,
            decision.access,
            connected,
            decision.decider.recorded(),
            source,
            now,
        )?)
    }
}
