//! `POST /oauth/revoke` (RFC 7009 §2.1): a form with `token`, the client
//! authenticated as at the token endpoint (a secret, or a `private_key_jwt`
//! assertion); 200 with an empty body.

use std::sync::Arc;

use futures_util::Stream;
use warp::http::{HeaderMap, Method};

use super::client_auth::{Refused, authenticate};
use super::{App, blocking, method_not_allowed, read_form};
use crate::authz::Reply;

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
    let answer: Result<(), Refused> = async {
        let params = read_form(headers, body).await?;
        let client = authenticate(&app, headers, &params, &mut basic).await?;
        let auth = app.auth.clone();
        Ok(blocking(move || auth.oauth_revoke(&params, &client)).await?)
    }
    .await;
    match answer {
        Ok(()) => Reply {
            status: 200,
            headers: vec![("cache-control", "no-store".into())],
            body: Vec::new(),
        },
        Err(refused) => refused.into_reply(basic),
    }
}
