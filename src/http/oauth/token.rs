//! `POST /oauth/token` (RFC 6749 §3.2, §4.1.3, §6): a form, the client
//! authenticated, a DPoP proof checked, then the token service.

use std::sync::Arc;

use futures_util::Stream;
use warp::http::{HeaderMap, Method};

use super::client_auth::{Refused, asserted_client, authenticate, presents_assertion};
use super::{App, blocking, method_not_allowed, read_form};
use crate::authz::Reply;
use crate::authz::oauth::{HeadlessGrant, TokenAnswer};
use crate::authz::oauth_clients::OAuthClients;
use crate::authz::oauth_clients::client_credentials::ClientCredentialsRequest;
use crate::proto::oauth::error::{ErrorCode, OAuthError};
use crate::proto::oauth::form::Params;
use crate::proto::oauth::metadata::TOKEN_PATH;
use crate::proto::oauth::resource;

pub(super) async fn serve<S, B>(
    app: Arc<App>,
    method: &Method,
    headers: &HeaderMap,
    body: S,
) -> Reply
where
    S: Stream<Item = Result<B, warp::Error>> + Send + Unpin,
    B: bytes::Buf,
{
    if *method != Method::POST {
        return method_not_allowed("POST");
    }
    let mut basic = false;
    let answer = async {
        let params = read_form(headers, body).await.map_err(Refused::OAuth)?;
        let proof = dpop_proof(headers).map_err(Refused::OAuth)?;
        if params.get("grant_type") == Some("client_credentials") {
            // The grant authenticates its own assertion (the registry's
            // decision needs the verified key), after the one-method rule.
            presents_assertion(headers, &params)?;
            return client_credentials(&app, params, proof).await;
        }
        let client = authenticate(&app, headers, &params, &mut basic).await?;
        let auth = app.auth.clone();
        let gateway = app.gateway.clone();
        let registry = app.oauth_clients.registry.clone();
        blocking(move || {
            let dpop = match proof {
                Some(proof) => Some(auth.oauth_dpop_key(&proof, &token_endpoint(&auth))?),
                None => None,
            };
            let known = |name: &str| gateway.upstream(name).is_some();
            let all = gateway.upstreams();
            let sole = match all.as_slice() {
                [one] => Some(one.name.as_str()),
                _ => None,
            };
            let answer = auth.oauth_token(&params, &client, dpop.as_ref(), &known, sole)?;
            note_used(&registry, &client.client_id);
            Ok(answer)
        })
        .await
        .map_err(Refused::OAuth)
    }
    .await;
    match answer {
        Ok(answer) => answer.reply(),
        Err(refused) => refused.into_reply(basic),
    }
}

fn token_endpoint(auth: &crate::authz::AuthServer) -> String {
    format!("{}{TOKEN_PATH}", auth.config().public_url)
}

/// A registered client in use stays registered (its registration is
/// extended now and then); a failure to note it costs nothing now.
fn note_used(registry: &OAuthClients, client_id: &str) {
    if let Err(e) = registry.note_used(client_id) {
        tracing::warn!(error = %e, "could not extend a client's registration");
    }
}

/// `grant_type=client_credentials` (SEP-1046): the registry authenticates
/// the client's assertion and decides by the allow rules; the AS mints.
async fn client_credentials(
    app: &Arc<App>,
    params: Params,
    proof: Option<String>,
) -> Result<TokenAnswer, Refused> {
    let client = asserted_client(app, &params).await?;
    let auth = app.auth.clone();
    let gateway = app.gateway.clone();
    let registry = app.oauth_clients.registry.clone();
    let outcome = tokio::task::spawn_blocking(move || -> Result<TokenAnswer, Refused> {
        let known = |name: &str| gateway.upstream(name).is_some();
        let upstream = match params.get("resource") {
            Some(sent) => Some(
                resource::choose(Some(sent), &[], &auth.config().public_url, &known, None)
                    .map_err(|e| OAuthError::new(ErrorCode::InvalidTarget, &e.to_string()))?
                    .upstream,
            ),
            None => None,
        };
        // The assertion is checked (and its jti spent) before a proof's.
        let grant = registry
            .client_credentials(
                &auth,
                &client,
                &ClientCredentialsRequest {
                    client_assertion_type: params.get("client_assertion_type"),
                    client_assertion: params.get("client_assertion"),
                    scope: params.get("scope"),
                    resource_upstream: upstream.as_deref(),
                },
            )
            .map_err(Refused::Client)?;
        let dpop = match proof {
            Some(proof) => Some(auth.oauth_dpop_key(&proof, &token_endpoint(&auth))?),
            None => None,
        };
        Ok(auth.oauth_issue_headless(
            HeadlessGrant {
                client_id: &grant.client_id,
                key: grant.key,
                upstream: &grant.upstream,
                rights: grant.rights,
                connected: Vec::new(),
            },
            dpop.as_ref(),
        )?)
    })
    .await;
    outcome.unwrap_or_else(|_| {
        Err(Refused::OAuth(OAuthError::new(
            ErrorCode::ServerError,
            "the server could not complete this",
        )))
    })
}

/// The request's DPoP proof (RFC 9449 §4.3: exactly one `DPoP` field),
/// if it sent one; the service checks it (`AuthServer::oauth_dpop_key`).
fn dpop_proof(headers: &HeaderMap) -> Result<Option<String>, OAuthError> {
    let refuse = |why: &str| OAuthError::new(ErrorCode::InvalidDpopProof, why);
    let mut all = headers.get_all("dpop").iter();
    match (all.next(), all.next()) {
        (None, _) => Ok(None),
        (Some(one), None) => one
            .to_str()
            .map(|p| Some(p.to_owned()))
            .map_err(|_| refuse("the DPoP proof is not text")),
        _ => Err(refuse("more than one DPoP header")),
    }
}
