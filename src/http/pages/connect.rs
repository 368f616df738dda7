//! Connecting an upstream through its OAuth sign-in from a consent page:
//! the "Connect NAME" button and the way back
//! ([`CONNECT_CALLBACK_PATH`](super::CONNECT_CALLBACK_PATH)).

use std::sync::Arc;

use warp::http::HeaderMap;

use super::consent::{consent, form_view, may_decide};
use super::form::{field, provider_error};
use super::io::{blocking, decisions, now};
use super::refusal::refused;
use super::render::{invalid_sign_in, message, see_other};
use super::{CONNECT_CALLBACK_PATH, cookies};
use crate::authz::{ConsentView, PageError, Reply};
use crate::http::App;
use crate::upstream::credential::Credential;

/// A "Connect NAME" button: with the page's form token and the grant still
/// pending, a 303 to the upstream's authorization endpoint with a fresh
/// single-use `state` and a PKCE S256 challenge.
pub(super) async fn start(
    app: &Arc<App>,
    grant: String,
    upstream: &str,
    form: &[(String, String)],
    source: String,
    headers: &HeaderMap,
) -> Reply {
    let view = match form_view(app, &grant, form, &source).await {
        Ok(view) => view,
        Err(e) => return refused(&e),
    };
    if let Err(e) = may_decide(app, &grant, headers) {
        return refused(&e);
    }
    let target = decisions(app)
        .connectable(&view.requested)
        .into_iter()
        .find(|u| u.name == upstream && u.connect.as_ref().is_some_and(|c| c.is_oauth()));
    let Some(connect) = target.as_ref().and_then(|u| u.connect.as_ref()) else {
        return message(
            400,
            "Nothing to connect",
            "This request does not reach an upstream connected that way.",
            None,
            "error",
        );
    };
    let now = now();
    let Ok((browser, named)) = cookies::browser_or_new(app, headers) else {
        return refused(&PageError::Internal);
    };
    let from = crate::proto::address::AddressKey::of_source(&source);
    let Ok((state, challenge)) = app.connections.start(&grant, upstream, from, &browser, now)
    else {
        return refused(&PageError::Internal);
    };
    let Some(url) = connect.authorization_url(&callback_uri(app), &state, &challenge) else {
        return refused(&PageError::Internal);
    };
    tracing::info!(
        grant,
        upstream,
        "connect: sending the person to the upstream's sign-in"
    );
    let mut reply = see_other(url);
    reply.headers.extend(named);
    reply
}

fn callback_uri(app: &App) -> String {
    format!("{}{CONNECT_CALLBACK_PATH}", app.auth.config().public_url)
}

/// The browser back from an upstream's sign-in: the `state` (taken once,
/// bound to the grant and upstream it was made for), then the code
/// exchanged with the PKCE verifier and gnapd's client authentication; the
/// tokens become an `oauth2` person-connected set, and the grant's page is
/// shown again, connected.
pub(super) async fn callback(
    app: &Arc<App>,
    query: &[(String, String)],
    headers: &HeaderMap,
) -> Reply {
    let invalid = || invalid_sign_in("connect");
    let now = now();
    let browser = cookies::browser(headers);
    let taken =
        field(query, "state").and_then(|s| app.connections.take(s, browser.as_deref(), now));
    let Some(pending) = taken else {
        tracing::warn!(
            "connect callback refused: unknown, used or expired state, or another browser's"
        );
        return invalid();
    };
    let auth = app.auth.clone();
    let grant = pending.grant.clone();
    let view = match blocking(move || auth.consent_by_grant(&grant)).await {
        Ok(view) => view,
        Err(e) => return refused(&e),
    };
    let Some(connect) = app
        .gateway
        .upstream(&pending.upstream)
        .and_then(|u| u.connect.clone())
    else {
        return invalid();
    };
    let upstream = pending.upstream.as_str();
    let shown = |mut view: ConsentView, status: u16, notice: String| async move {
        view.notice = Some(notice);
        let token = cookies::login(headers, &view.grant);
        consent(app, view, status, headers, token.as_deref()).await
    };
    let Some(code) = field(query, "code").filter(|c| !c.is_empty()) else {
        let said = provider_error(query);
        return shown(
            view,
            400,
            format!("{upstream} did not connect ({said}). Try again, or deny."),
        )
        .await;
    };
    let Some(request) = connect.code_request(code, &pending.verifier, &callback_uri(app)) else {
        return invalid();
    };
    let failed = |e: &dyn std::fmt::Display| {
        tracing::warn!(upstream, error = %e, "connect: the code exchange failed");
        format!("{upstream} did not hand over access. Try connecting again.")
    };
    let credential = match app.gateway.token_request(&request).await {
        Ok((status, body)) => connect
            .exchanged(status, &body, now)
            .map_err(|e| failed(&e)),
        Err(e) => Err(failed(&e)),
    };
    let credential = match credential {
        Ok(credential) => credential,
        Err(notice) => return shown(view, 502, notice).await,
    };
    let kept = decisions(app)
        .keep_signed_in(
            &pending.grant,
            upstream,
            &Credential::OAuth2(Box::new(credential)),
        )
        .await;
    match kept {
        Ok(()) => shown(view, 200, format!("Connected to {upstream}.")).await,
        Err(e) => {
            tracing::error!(upstream, error = %e, "storing a connected credential failed");
            shown(
                view,
                500,
                "The server could not keep the connection. Try again.".into(),
            )
            .await
        }
    }
}
