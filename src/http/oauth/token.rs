//! `POST /oauth/token` (RFC 6749 §3.2, §4.1.3, §6): a form, the client
//! authenticated, a DPoP proof checked, then the token service.

use std::sync::Arc;

use futures_util::Stream;
use warp::http::{HeaderMap, Method};

use super::{
    App, authorization, blocking, error_reply, method_not_allowed, read_form, resolve_client,
};
use crate::authz::Reply;
use crate::authz::oauth::{DpopKey, Presented};
use crate::proto::oauth::error::{ErrorCode, OAuthError};

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
        let params = read_form(headers, body).await?;
        let presented = Presented::read(authorization(headers)?.as_deref(), &params)?;
        basic = presented.used_basic();
        let client = resolve_client(&app, presented.client_id()?).await;
        let client = presented.authenticate(client)?;
        let dpop = dpop_key(headers)?;
        let auth = app.auth.clone();
        let gateway = app.gateway.clone();
        blocking(move || {
            let known = |name: &str| gateway.upstream(name).is_some();
            auth.oauth_token(&params, &client, dpop.as_ref(), &known)
        })
        .await
    }
    .await;
    match answer {
        Ok(answer) => answer.reply(),
        Err(e) => error_reply(&e, basic),
    }
}

/// The DPoP key of the request's proof (RFC 9449 §4.3), if it sent one.
///
/// INTEGRATION POINT (lead, at the merge with issue16-rs): exactly one
/// `DPoP` field (two: `invalid_dpop_proof`), then
/// `proto::oauth::dpop::verify(proof, "POST", &format!("{public_url}{TOKEN_PATH}"),
/// None, now, window)` (the gateway's window), its `jti` remembered in the
/// replay memory as the gateway does (a replayed proof:
/// `invalid_dpop_proof`), and `Ok(Some(DpopKey { jkt: p.jkt, jwk: p.jwk }))`.
/// Until then a request with a proof is refused, so no token is ever
/// issued as DPoP-bound without a verified proof.
fn dpop_key(headers: &HeaderMap) -> Result<Option<DpopKey>, OAuthError> {
    if headers.get_all("dpop").iter().next().is_none() {
        return Ok(None);
    }
    Err(OAuthError::new(
        ErrorCode::InvalidDpopProof,
        "DPoP proofs are not verified by this build",
    ))
}
