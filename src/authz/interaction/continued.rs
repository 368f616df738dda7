//! Continuing a pending grant (RFC 9635 §5.1, §5.2): still pending, the
//! tokens once approved (with the interaction reference when a finish
//! method was used), a denial, an expiry, or a replayed reference.

use subtle::ConstantTimeEq as _;

use crate::authz::grant::shape;
use crate::authz::{AuthServer, Failure, Reply};
use crate::proto::gnap::{AccessRight, ContinueRequest, ErrorCode, GrantResponse};
use crate::store::{GrantId, GrantRecord, GrantState, InteractionStatus, TokenHash};

impl AuthServer {
    /// §5.1, §5.2: a continuation of a pending grant.
    pub(crate) fn continue_pending(
        &self,
        token: TokenHash,
        grant: GrantRecord,
        parsed: ContinueRequest,
    ) -> Result<Reply, Failure> {
        let interaction = self.store.interaction(&grant.id)?.ok_or_else(|| {
            Failure::gnap(
                ErrorCode::InvalidContinuation,
                "this grant has no interaction",
            )
        })?;
        let now = self.now();
        let presented = match &parsed {
            ContinueRequest::Poll => None,
            ContinueRequest::AfterInteraction { interact_ref } => Some(interact_ref.as_str()),
        };
        match (&interaction.status, presented) {
            (InteractionStatus::Pending, _) if now > interaction.expires_at => Err(Failure::gnap(
                ErrorCode::InvalidInteraction,
                "the interaction expired before a decision; make a new grant request",
            )),
            (InteractionStatus::Pending, None) => self.still_pending(token, grant),
            (InteractionStatus::Pending, Some(_)) => Err(Failure::gnap(
                ErrorCode::InvalidInteraction,
                "no interaction has finished for this grant",
            )),
            (
                InteractionStatus::Approved {
                    interact_ref: Some(_),
                    ..
                },
                None,
            ) => {
                // The approval reaches the client with the interaction
                // reference (§4.2): until it presents it, still pending.
                self.still_pending(token, grant)
            }
            (
                InteractionStatus::Approved {
                    interact_ref: Some(expected),
                    access,
                    credential_sets,
                    ..
                },
                Some(presented),
            ) => {
                let matches: bool = TokenHash::of(presented).0.ct_eq(&expected.0).into();
                if !matches {
                    return Err(Failure::gnap(
                        ErrorCode::InvalidInteraction,
                        "the interaction reference is not this grant's",
                    ));
                }
                self.issue_after_interaction(token, grant, access, credential_sets, now)
            }
            (
                InteractionStatus::Approved {
                    interact_ref: None,
                    access,
                    credential_sets,
                    ..
                },
                None,
            ) => self.issue_after_interaction(token, grant, access, credential_sets, now),
            (
                InteractionStatus::Approved {
                    interact_ref: None, ..
                },
                Some(_),
            ) => Err(Failure::gnap(
                ErrorCode::InvalidInteraction,
                "this grant's interaction has no finish method and no interaction reference",
            )),
            (InteractionStatus::Denied { .. }, _) => Err(Failure::gnap(
                ErrorCode::UserDenied,
                "the resource owner denied the request",
            )),
            (InteractionStatus::Finished { .. }, _) => Err(Failure::gnap(
                ErrorCode::InvalidContinuation,
                "this grant's interaction is finished",
            )),
        }
    }

    /// The answer without a token (§5.2): a new continuation. Also what a
    /// poll of an approved grant gets once its tokens were issued.
    pub(crate) fn still_pending(
        &self,
        token: TokenHash,
        mut grant: GrantRecord,
    ) -> Result<Reply, Failure> {
        let next = self.next_continuation(&mut grant)?;
        if !self.store.continuation_swap(&token, &grant, &[])? {
            return Err(Failure::continuation_used());
        }
        let response = GrantResponse {
            continue_: Some(next),
            ..GrantResponse::default()
        };
        Ok(Reply::json(200, &response))
    }

    /// Issues the approved tokens, taking the interaction once. Each token
    /// maps to the sets the person connected at the upstreams it reaches.
    fn issue_after_interaction(
        &self,
        token: TokenHash,
        mut grant: GrantRecord,
        access: &[Vec<AccessRight>],
        connected: &[(String, String)],
        now: i64,
    ) -> Result<Reply, Failure> {
        let mut minted = self.mint_tokens(
            &grant.id,
            &grant.client,
            grant.request.access_token.as_ref(),
            access,
            now,
        )?;
        crate::authz::grant::map_credential_sets(&mut minted.records, connected);
        grant.tokens.extend(minted.records.iter().map(|(h, _)| *h));
        grant.state = GrantState::Approved;
        grant.expires_at = now.saturating_add(self.config.grant_lifetime);
        let next = self.next_continuation(&mut grant)?;
        if !self
            .store
            .finish_interaction(&token, &grant, &minted.records, now)?
        {
            return Err(Failure::continuation_used());
        }
        // The request's outcome was counted as pending; the tokens count here.
        self.metrics.issued(minted.tokens.len());
        let response = GrantResponse {
            continue_: Some(next),
            access_token: shape(grant.request.access_token.as_ref(), minted.tokens),
            ..GrantResponse::default()
        };
        Ok(Reply::json(200, &response))
    }

    /// §5.1: an interaction reference on a grant that is not pending is
    /// `too_many_attempts`, and the grant is finalized: its continuation
    /// and the tokens issued under it are revoked (a reference presented
    /// twice means it leaked, or the client lost track of its grant).
    pub(crate) fn replayed_interaction(
        &self,
        token: &TokenHash,
        grant: &GrantId,
    ) -> Result<Reply, Failure> {
        if self.store.delete_grant(token)? {
            self.release_pending(grant);
        }
        Err(Failure::gnap(
            ErrorCode::TooManyAttempts,
            "an interaction reference is used once; this grant is now finalized",
        ))
    }
}
