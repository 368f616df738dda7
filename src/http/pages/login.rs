//! The configured login's sign-in from a consent page (`[login]`,
//! `crate::authz::login`): the "Sign in" button and the way back from the
//! IdP.

use std::sync::Arc;

use warp::http::HeaderMap;

use super::consent::{consent, form_view};
use super::cookies::{self, SameSite};
use super::form::{field, provider_error};
use super::io::{blocking, now};
use super::refusal::refused;
use super::render::{invalid_sign_in, message, see_other};
use crate::authz::login::LOGIN_CALLBACK_PATH;
use crate::authz::{PageError, Reply};
use crate::http::App;

/// The "Sign in" button: with the page's form token and the grant still
/// pending, a 303 to the login's IdP with a fresh single-use `state` bound
/// to the grant, a PKCE S256 challenge and a `nonce`.
pub(super) async fn start(
    app: &Arc<App>,
    grant: String,
    form: &[(String, String)],
    source: String,
    headers: &HeaderMap,
) -> Reply {
    let Some(login) = &app.login else {
        return message(
            400,
            "No sign-in here",
            "This server has no sign-in configured.",
            None,
            "error",
        );
    };
    if let Err(e) = form_view(app, &grant, form, &source).await {
        return refused(&e);
    }
    let now = now();
    let Ok((browser, named)) = cookies::browser_or_new(app, headers) else {
        return refused(&PageError::Internal);
    };
    let from = crate::proto::address::AddressKey::of_source(&source);
    let Ok(url) = login.start(&grant, from, &browser, &login_callback_uri(app), now) else {
        return refused(&PageError::Internal);
    };
    tracing::info!(grant, "login: sending the person to the IdP");
    let mut reply = see_other(url);
    reply.headers.extend(named);
    reply
}

fn login_callback_uri(app: &App) -> String {
    format!("{}{LOGIN_CALLBACK_PATH}", app.auth.config().public_url)
}

/// The browser back from the IdP: the `state` (taken once, bound to the
/// grant it was made for, which must still be pending), the code exchanged
/// with the PKCE verifier, the ID token verified (with the `nonce` sent),
/// the subject checked against the allowed ones; then the grant's page
/// again, signed in.
pub(super) async fn callback(
    app: &Arc<App>,
    query: &[(String, String)],
    headers: &HeaderMap,
) -> Reply {
    let invalid = || invalid_sign_in("sign in");
    let Some(login) = &app.login else {
        return invalid();
    };
    let now = now();
    let browser = cookies::browser(headers);
    let taken = field(query, "state").and_then(|s| login.take(s, browser.as_deref(), now));
    let Some(started) = taken else {
        tracing::warn!(
            "login callback refused: unknown, used or expired state, or another browser's"
        );
        return invalid();
    };
    let auth = app.auth.clone();
    let grant = started.grant.clone();
    let view = match blocking(move || auth.consent_by_grant(&grant)).await {
        Ok(view) => view,
        Err(e) => return refused(&e),
    };
    let Some(code) = field(query, "code").filter(|c| !c.is_empty()) else {
        let said = provider_error(query);
        let mut view = view;
        view.notice = Some(format!("The sign-in did not complete ({said}). Try again."));
        return consent(app, view, 400, headers, None).await;
    };
    let request = login.code_request(code, &started.verifier, &login_callback_uri(app));
    let subject = match app.gateway.token_request(&request).await {
        Ok((status, body)) => login
            .subject_of(status, &body, &started.nonce, now)
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let subject = match subject {
        Ok(subject) => subject,
        Err(e) => {
            tracing::warn!(grant = %started.grant, error = %e, "login refused");
            let mut view = view;
            view.notice = Some("The sign-in could not be verified. Try again.".into());
            return consent(app, view, 502, headers, None).await;
        }
    };
    if !login.allows(&subject) {
        tracing::warn!(grant = %started.grant, subject, "login refused: the subject may not decide");
        return message(
            403,
            "You may not decide this",
            &format!("You signed in as {subject}, who may not approve or deny requests here."),
            None,
            "error",
        );
    }
    let Ok(token) = login.signed_in(&started.grant, &subject, now) else {
        return refused(&PageError::Internal);
    };
    tracing::info!(grant = %started.grant, subject, "login: signed in");
    let mut reply = consent(app, view, 200, headers, Some(&token)).await;
    // The sign-in is bound to this browser: only it holds the cookie that
    // lets a decision count as the subject's (anyone else holding the
    // grant's link, the agent included, does not).
    reply.headers.push(cookies::set(
        app,
        &cookies::login_name(&started.grant),
        &token,
        crate::upstream::oauth_client::STATE_LIFETIME * 6,
        SameSite::Lax,
    ));
    reply
}
