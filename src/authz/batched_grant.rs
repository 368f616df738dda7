//! The grant endpoint in two steps, so that the HTTP edge can check the
//! signatures of concurrent brand-new agents with one batch equation, as
//! the gateway does for calls (`proto::httpsig::batch`).
//!
//! [`AuthServer::begin_grant`] reads the request as far as the key and
//! screens its signature (every rule of the profile but the cryptography
//! and the replay cache); the edge checks the screened signature, alone or
//! in a batch; [`AuthServer::finish_grant`] admits it (replay cache) and
//! does the rest. The decision is the one [`AuthServer::handle_from`]
//! makes: a signature the batch did not verify is examined again by the
//! single check, which also gives the refusal its precise reason; only
//! `httpsig` keys take this path, every other proof is checked in one go.
//! The address's rate limit was asked before the body was read, so a
//! refused address costs no cryptography here either.

use super::grant::OpenedGrant;
use super::proof::Prover;
use super::reply::Reply;
use super::{AuthServer, Endpoint, Failure};
use crate::proto::gnap::ProofKind;
use crate::proto::httpsig::HttpRequest;
use crate::proto::httpsig::batch::{Checked, Pending};
use crate::store::ReplayBudget;

/// Where [`AuthServer::begin_grant`] left a request.
#[derive(Debug)]
pub(crate) enum GrantStep {
    /// Answered already (refused, or proved by other means than a
    /// screened `httpsig` signature).
    Answered(Reply),
    /// Its signature waits for the cryptographic check.
    Check(Box<(OpenedGrant, Pending)>),
}

impl AuthServer {
    /// The first step of a `POST` to the grant endpoint.
    pub(crate) fn begin_grant(&self, request: &HttpRequest, source: Option<&str>) -> GrantStep {
        let opened = match self.open_grant(request) {
            Ok(opened) => opened,
            Err(failure) => return GrantStep::Answered(self.grant_refused(failure)),
        };
        if let (Prover::Key(key), ProofKind::HttpSig) = (&opened.key, opened.method)
            && self.check_media(request, ProofKind::HttpSig).is_ok()
            && let Some(pending) = self.config.profile.screen(request, key, self.now())
        {
            return GrantStep::Check(Box::new((opened, pending)));
        }
        // Not screened: the single check finds out why, as it always has.
        let proved = self
            .prove_with(
                request,
                &opened.key,
                opened.method,
                ReplayBudget::Unapproved,
            )
            .and_then(|thumbprint| self.grant_proved(source, opened, &thumbprint));
        GrantStep::Answered(self.grant_answered(proved))
    }

    /// The second step: `checked` is what the cryptographic check of the
    /// screened signature said (`None`: it did not verify).
    pub(crate) fn finish_grant(
        &self,
        request: &HttpRequest,
        source: Option<&str>,
        opened: OpenedGrant,
        checked: Option<Checked>,
    ) -> Reply {
        let Prover::Key(key) = &opened.key else {
            // begin_grant screens httpsig keys only.
            return self.grant_answered(Err(Failure::gnap(
                crate::proto::gnap::ErrorCode::InvalidClient,
                "the request's proof does not match its key",
            )));
        };
        let budget = ReplayBudget::Unapproved;
        let proved = self
            .config
            .profile
            .finish(request, key, checked, self.now(), self.store.replay(budget))
            .map_err(|r| self.replay_refusal(r, budget))
            .and_then(|verified| self.grant_proved(source, opened, &verified.thumbprint));
        self.grant_answered(proved)
    }

    fn grant_answered(&self, result: Result<Reply, Failure>) -> Reply {
        result.unwrap_or_else(|failure| self.grant_refused(failure))
    }

    fn grant_refused(&self, failure: Failure) -> Reply {
        self.metrics.grant(super::metrics::Outcome::Error);
        self.failure_reply(&Endpoint::Grant, failure)
    }
}
