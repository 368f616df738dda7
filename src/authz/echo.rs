//! `/rs/echo`, the resource server of `gnapd serve --interop`: it checks an
//! access token as a resource server would (RFC 9635 §7.2: the token is
//! known, unexpired and not revoked; a bound token's request is proved by
//! its key, `authorization` covered) and answers what it saw, so a suite can
//! test token use without an MCP upstream behind the gateway.
//!
//! A refused call gets 401 with `WWW-Authenticate: GNAP as_uri=…` (§5.3 of
//! RFC 9767 names the AS there), as the gateway answers.

use serde_json::json;

use super::{AuthServer, Failure, Reply, bound_key};
use crate::proto::gnap::{ErrorCode, GrantError, GrantResponse, ProofKind};
use crate::proto::httpsig::HttpRequest;
use crate::store::{ReplayBudget, TokenHash};

impl AuthServer {
    /// The echo resource's answer to `request`.
    pub(crate) fn echo(&self, request: &HttpRequest) -> Reply {
        match self.echo_seen(request) {
            Ok(seen) => Reply::json(200, &seen),
            Err(Failure::Busy) => Failure::Busy.into_reply(
                &self.config.grant_endpoint(),
                super::reply::Audience::Client,
            ),
            Err(Failure::Store(e)) => {
                tracing::error!(error = %e, "storage failure");
                Failure::Store(e).into_reply(
                    &self.config.grant_endpoint(),
                    super::reply::Audience::Client,
                )
            }
            Err(failure) => {
                if let Failure::Signature(r) = &failure {
                    self.metrics.signature_failure(r.reason());
                }
                let description = match failure {
                    Failure::Gnap(error, _) => error.description.unwrap_or_default(),
                    Failure::Signature(rejection) => format!("signature rejected: {rejection}"),
                    _ => "the access token is not accepted".to_owned(),
                };
                let error = GrantError::described(ErrorCode::InvalidClient, description);
                Reply::json(401, &GrantResponse::error(error, None)).with_header(
                    "www-authenticate",
                    format!("GNAP as_uri=\"{}\"", self.config.grant_endpoint()),
                )
            }
        }
    }

    fn echo_seen(&self, request: &HttpRequest) -> Result<serde_json::Value, Failure> {
        let refused = |why: &str| Failure::gnap(ErrorCode::InvalidClient, why);
        let value = crate::proto::gnap::token::presented(request)
            .ok_or_else(|| refused("exactly one Authorization: GNAP <token> is required"))?;
        let token = self
            .store
            .token(&TokenHash::of(value))?
            .filter(|t| t.oauth.is_none() && t.expires_at > self.now())
            .ok_or_else(|| refused("unknown, expired or revoked access token"))?;
        let proof = if token.bearer {
            json!({"bearer": true})
        } else if token.key.method != ProofKind::HttpSig {
            let thumbprint = self.prove_bound(request, &token.key, ReplayBudget::Bound)?;
            json!({
                "bearer": false,
                "method": token.key.method.name(),
                "key_thumbprint": thumbprint.as_str(),
            })
        } else {
            // The signature's own facts, which a suite checks against what
            // it signed.
            let verified = self.verify(request, &bound_key(&token.key)?, ReplayBudget::Bound)?;
            json!({
                "bearer": false,
                "method": "httpsig",
                "key_thumbprint": verified.thumbprint.as_str(),
                "covered_components": verified
                    .covered
                    .iter()
                    .map(|c| c.as_str().to_owned())
                    .collect::<Vec<_>>(),
                "created": verified.created,
            })
        };
        Ok(json!({
            "method": request.method,
            "target_uri": request.target_uri,
            "token": {
                "label": token.label,
                "access": token.access,
                "expires_at": token.expires_at,
            },
            "proof": proof,
            "content_length": request.body.len(),
        }))
    }
}
