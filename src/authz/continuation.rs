//! Continuing a grant (RFC 9635 §5): poll, modify, delete.
//!
//! Every call presents the continuation access token and is signed by the
//! grant's client key. The token is single use: each successful call swaps it
//! for a new one atomically, so a replayed or raced token fails with
//! `invalid_continuation`.

use super::grant::{no_randomness, shape};
use super::proof::require_json;
use super::{AuthServer, Decision, Failure, Reply, mint, presented_token};
use crate::proto::gnap::{
    BoundAccessToken, Client, Continue, ContinueRequest, ErrorCode, GrantResponse,
    parse_continue_request, parse_modify_request,
};
use crate::proto::httpsig::HttpRequest;
use crate::store::{Continuation, GrantRecord, GrantState, ReplayBudget, TokenHash};

impl AuthServer {
    /// Finds the grant the presented continuation token continues, checks the
    /// URI and the signature by the grant's key.
    fn continued_grant(
        &self,
        id: &str,
        request: &HttpRequest,
    ) -> Result<(TokenHash, GrantRecord), Failure> {
        let token = presented_token(request, ErrorCode::InvalidContinuation)?;
        let Some(grant) = self
            .store
            .grant_by_continuation(&token)?
            .filter(|g| g.id.0 == id && g.expires_at >= self.now())
        else {
            // "Used" (or the grant deleted) may be a concurrent call's
            // doing, not yet on disk: answer once it is.
            self.store.settle()?;
            return Err(Failure::gnap(
                ErrorCode::InvalidContinuation,
                "unknown, used or expired continuation token",
            ));
        };
        // Only a grant someone approved spends the bound-token budget.
        let budget = match grant.state {
            GrantState::Approved => ReplayBudget::Bound,
            GrantState::Pending | GrantState::Denied => ReplayBudget::Unapproved,
        };
        self.prove_bound(request, &grant.client, budget)?;
        // §3.1: the client MUST wait `wait` seconds before calling the
        // continuation URI again, whatever the method.
        if let Some(c) = &grant.continuation {
            let ready_at = c
                .issued_at
                .saturating_add(i64::try_from(c.wait).unwrap_or(i64::MAX));
            let now = self.now();
            if now < ready_at {
                return Err(Failure::TooFast {
                    retry_after: u64::try_from(ready_at - now).unwrap_or(1),
                });
            }
        }
        Ok((token, grant))
    }

    /// Swaps the continuation token and answers with the new one.
    pub(super) fn next_continuation(&self, grant: &mut GrantRecord) -> Result<Continue, Failure> {
        let wait = self.config.poll_wait;
        let (value, hash) = mint::token(self.random(), &grant.id).map_err(no_randomness)?;
        grant.continuation = Some(Continuation {
            token: hash,
            wait,
            issued_at: self.now(),
        });
        Ok(Continue {
            uri: self.config.continue_uri(&grant.id.0),
            wait: Some(wait),
            access_token: BoundAccessToken::new(value),
        })
    }

    /// §5.1, §5.2: POST to the continuation URI.
    pub(super) fn continue_grant(&self, id: &str, request: &HttpRequest) -> Result<Reply, Failure> {
        let content = self.content(request)?;
        let parsed = self.counted(parse_continue_request(&content))?;
        let (token, grant) = self.continued_grant(id, request)?;
        if grant.state == GrantState::Pending {
            return self.continue_pending(token, grant, parsed);
        }
        if let ContinueRequest::AfterInteraction { .. } = parsed {
            // §5.1: "If the AS detects a client instance submitting an
            // interaction reference when the request is not in the pending
            // state, the AS MUST return a too_many_attempts error".
            return self.replayed_interaction(&token, &grant.id);
        }
        if grant.state == GrantState::Denied {
            return Err(Failure::gnap(
                ErrorCode::RequestDenied,
                "the grant was denied",
            ));
        }
        // An approved grant polled again: a new continuation, no token.
        self.still_pending(token, grant)
    }

    /// §5.3: PATCH to the continuation URI replaces parts of the request; the
    /// modified request is decided again and new tokens issued for it.
    /// Tokens issued earlier stay valid until they expire or are revoked.
    pub(super) fn modify_grant(&self, id: &str, request: &HttpRequest) -> Result<Reply, Failure> {
        if request.body.is_empty() {
            require_json(request)?;
        }
        let content = self.content(request)?;
        let modification = self.counted(parse_modify_request(&content))?;
        let (token, mut grant) = self.continued_grant(id, request)?;
        if grant.state == GrantState::Pending {
            return Err(Failure::gnap(
                ErrorCode::InvalidInteraction,
                "this grant waits for a person; it can be modified after the decision (or deleted)",
            ));
        }
        let mut modified = grant.request.clone();
        if let Some(a) = modification.access_token {
            modified.access_token = Some(a);
        }
        if let Some(s) = modification.subject {
            modified.subject = Some(s);
        }
        if let Some(u) = modification.user {
            modified.user = Some(u);
        }
        if let Some(i) = modification.interact {
            modified.interact = Some(i);
        }
        let class_id = match &modified.client {
            Client::Key(c) => c.class_id.clone(),
            Client::Instance(_) => None,
        };
        let resolved = self.resolve_request(&modified)?;
        let approved = match self.policy.decide(
            &resolved,
            &grant.client.thumbprint,
            class_id.as_deref(),
        ) {
            Decision::Approve(approved) => approved,
            Decision::Interact => {
                return Err(Failure::gnap(
                    ErrorCode::InvalidInteraction,
                    "the modified request needs a person to approve it; make a new grant request with interaction",
                ));
            }
            Decision::Deny => {
                return Err(Failure::gnap(
                    ErrorCode::RequestDenied,
                    "policy does not allow the modified request",
                ));
            }
        };
        if !self.policy.allow_bearer
            && modified
                .access_token
                .as_ref()
                .is_some_and(|t| t.as_slice().iter().any(|t| t.wants_bearer()))
        {
            return Err(Failure::gnap(
                ErrorCode::InvalidFlag,
                "bearer tokens are not allowed",
            ));
        }
        let now = self.now();
        let minted = self.mint_tokens(
            &grant.id,
            &grant.client,
            resolved.access_token.as_ref(),
            &approved,
            now,
        )?;
        grant.tokens.extend(minted.records.iter().map(|(h, _)| *h));
        grant.request = modified.stored();
        let next = self.next_continuation(&mut grant)?;
        if !self
            .store
            .continuation_swap(&token, &grant, &minted.records)?
        {
            return Err(Failure::continuation_used());
        }
        self.metrics.issued(minted.tokens.len());
        let response = GrantResponse {
            continue_: Some(next),
            access_token: shape(modified.access_token.as_ref(), minted.tokens),
            ..GrantResponse::default()
        };
        Ok(Reply::json(200, &response))
    }

    /// §5.4: DELETE revokes the grant and every token issued under it.
    pub(super) fn delete_grant(&self, id: &str, request: &HttpRequest) -> Result<Reply, Failure> {
        let (token, grant) = self.continued_grant(id, request)?;
        if !self.store.delete_grant(&token)? {
            return Err(Failure::continuation_used());
        }
        self.release_pending(&grant.id);
        Ok(Reply::no_content())
    }
}
