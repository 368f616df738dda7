//! `GET /oauth/authorize` (and `POST` with a form, RFC 6749 §3.1): the
//! browser arrives from the client; it leaves for the client's redirect
//! URI (with a code or an error) or for the consent page. An error before
//! the client and its redirect URI are known is shown as JSON, never
//! redirected (§4.1.2.1).

use std::sync::Arc;

use futures_util::Stream;
use warp::http::{HeaderMap, Method};

use super::{App, blocking, error_reply, method_not_allowed, params, read_form, resolve_client};
use crate::authz::Reply;
use crate::authz::oauth::Authorized;

pub(super) async fn serve<S, B>(
    app: Arc<App>,
    method: &Method,
    query: &str,
    headers: &HeaderMap,
    body: S,
    source: &str,
) -> Reply
where
    S: Stream<Item = Result<B, warp::Error>> + Send + Unpin,
    B: bytes::Buf,
{
    let read = match *method {
        Method::GET => params(query.as_bytes()),
        Method::POST => read_form(headers, body).await,
        _ => return method_not_allowed("GET, POST"),
    };
    let params = match read {
        Ok(params) => params,
        Err(e) => return error_reply(&e, false),
    };
    let client = match params.get("client_id") {
        Some(id) => resolve_client(&app, id).await,
        None => None,
    };
    let source = source.to_owned();
    let auth = app.auth.clone();
    let gateway = app.gateway.clone();
    let answer = blocking(move || {
        let known = |name: &str| gateway.upstream(name).is_some();
        // With one upstream, a request naming neither resource nor scope
        // (the conformance suite's default) is for it.
        let all = gateway.upstreams();
        let sole = match all.as_slice() {
            [one] => Some(one.name.clone()),
            _ => None,
        };
        Ok(auth.oauth_authorize(
            &params,
            client.as_ref(),
            &known,
            sole.as_deref(),
            Some(&source),
        ))
    })
    .await;
    match answer {
        Ok(Authorized::Redirect(url)) => Reply {
            // 302 for a GET, as RFC 6749 §4.1.2 shows; 303 after a POST so
            // the form is not sent on (the 307 attack).
            status: if *method == Method::GET { 302 } else { 303 },
            headers: vec![
                ("location", url),
                ("cache-control", "no-store".into()),
                ("referrer-policy", "no-referrer".into()),
            ],
            body: Vec::new(),
        },
        Ok(Authorized::Refused(e)) | Err(e) => error_reply(&e, false),
    }
}
