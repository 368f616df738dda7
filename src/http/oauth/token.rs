//! `POST /oauth/token` (RFC 6749 §3.2, §4.1.3, §6): a form, the client
//! authenticated, a DPoP proof checked, then the token service.

use std::sync::Arc;

use futures_util::Stream;
use warp::http::{HeaderMap, Method};

use super::{
    App, authorization, blocking, error_reply, method_not_allowed, read_form, resolve_client,
};
use crate::authz::Reply;
use crate::authz::oauth::Presented;
use crate::proto::oauth::error::{ErrorCode, OAuthError};
use crate::proto::oauth::metadata::TOKEN_PATH;

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
        let proof = dpop_proof(headers)?;
        let auth = app.auth.clone();
        let gateway = app.gateway.clone();
        blocking(move || {
            let dpop = match proof {
                Some(proof) => Some(auth.oauth_dpop_key(
                    &proof,
                    &format!("{}{TOKEN_PATH}", auth.config().public_url),
                )?),
                None => None,
            };
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
