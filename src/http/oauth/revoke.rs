//! `POST /oauth/revoke` (RFC 7009 §2.1): a form with `token`, the client
//! authenticated as at the token endpoint; 200 with an empty body.

use std::sync::Arc;

use futures_util::Stream;
use warp::http::{HeaderMap, Method};

use super::{
    App, authorization, blocking, error_reply, method_not_allowed, read_form, resolve_client,
};
use crate::authz::Reply;
use crate::authz::oauth::Presented;

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
        let auth = app.auth.clone();
        blocking(move || auth.oauth_revoke(&params, &client)).await
    }
    .await;
    match answer {
        Ok(()) => Reply {
            status: 200,
            headers: vec![("cache-control", "no-store".into())],
            body: Vec::new(),
        },
        Err(e) => error_reply(&e, basic),
    }
}
