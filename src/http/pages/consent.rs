//! A grant's consent page: opened by its link or reached from the user
//! code page, and shown again after a submission that decided nothing.
//! Who the browser is comes from its cookies (`super::cookies`), checked
//! by `crate::authz::decider`; the upstreams it may connect and the sets it
//! connected before from the consent service (`crate::authz::decision`).

use std::sync::Arc;

use askama::Template;
use warp::http::HeaderMap;

use super::io::{blocking, decisions, now};
use super::refusal::refused;
use super::render::{CSS, html, see_other};
use super::{cookies, form};
use crate::authz::decision::{Presentation, USE_FIELD};
use crate::authz::operator::OPERATOR_SIGN_OUT_PATH;
use crate::authz::person::Who;
use crate::authz::{
    ConnectView, ConsentView, EarlierChoice, INTERACT_PATH, PageError, Presented, Reply,
};
use crate::http::App;
use crate::upstream::earlier;

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage<'a> {
    css: &'a str,
    view: &'a ConsentView,
    action: String,
    sign_out: &'a str,
}

/// `GET {INTERACT_PATH}{grant}/{secret}`: the page the link opens; for
/// a grant decided elsewhere, the finish redirect waiting for the browser
/// that started it.
pub(super) async fn by_link(
    app: &Arc<App>,
    grant: String,
    secret: String,
    headers: &HeaderMap,
) -> Reply {
    let auth = app.auth.clone();
    let reload = format!("{INTERACT_PATH}{grant}/{secret}");
    let link = (grant.clone(), secret.clone());
    match blocking(move || auth.consent_by_link(&grant, &secret)).await {
        Ok(mut view) => {
            view.reload = Some(reload);
            started(app, view, headers).await
        }
        Err(PageError::AlreadyDecided) => {
            // Decided elsewhere: the browser that started it
            // collects the finish redirect here.
            let browser = cookies::browser(headers);
            let auth = app.auth.clone();
            let waiting =
                blocking(move || Ok(auth.collect_finish(&link.0, &link.1, browser.as_deref())))
                    .await;
            match waiting {
                Ok(Some(url)) => see_other(url),
                _ => refused(&PageError::AlreadyDecided),
            }
        }
        Err(e) => refused(&e),
    }
}

/// Renders a grant's page for a browser that opened its link or entered
/// its code: with a redirect finish, the first such browser is the one the
/// finish goes to (`crate::authz::started_by`), named if it has no name
/// yet.
pub(super) async fn started(app: &App, view: ConsentView, headers: &HeaderMap) -> Reply {
    let mut named = None;
    if view.finishes_by_redirect {
        match cookies::browser_or_new(app, headers) {
            Ok((browser, header)) => {
                app.auth.bind_start(&view.grant, &browser);
                named = header;
            }
            Err(_) => return refused(&PageError::Internal),
        }
    }
    let token = cookies::login(headers, &view.grant);
    let mut reply = consent(app, view, 200, headers, token.as_deref()).await;
    reply.headers.extend(named);
    reply
}

/// Renders a grant's consent page. `login_token` is the browser's sign-in
/// for the grant (its cookie, or the one the answer is about to set).
pub(super) async fn consent(
    app: &App,
    mut view: ConsentView,
    status: u16,
    headers: &HeaderMap,
    login_token: Option<&str>,
) -> Reply {
    let connected = app.connections.sets(&view.grant);
    let who = who(app, headers, &view.grant, login_token);
    let decisions = decisions(app);
    // Forms may go to this server, to the client (a redirect finish) and,
    // through the 303 a "Connect" button gets, to upstreams' sign-in pages.
    let mut form_targets: Vec<String> = view.finish_origin.iter().cloned().collect();
    let mut connect = Vec::new();
    for u in decisions.connectable(&view.requested) {
        let oauth = u.connect.as_ref().is_some_and(|c| c.is_oauth());
        if let Some(crate::upstream::connect::Connect::OAuth {
            authorization_endpoint,
            ..
        }) = &u.connect
            && let Some(source) = crate::authz::consent::csp_source(authorization_endpoint)
            && !form_targets.contains(&source)
        {
            form_targets.push(source);
        }
        let connected = connected.iter().any(|(up, _)| *up == u.name);
        let earlier = decisions.earlier_sets(&who, &u.name).await;
        // The newest earlier set is preselected, unless a sign-in was just
        // made on this page (then that one).
        let none_chosen = connected || earlier.is_empty();
        connect.push(ConnectView {
            field: format!("connect.{}", u.name),
            required: u.credential_set.is_none(),
            oauth,
            connected,
            choice_field: format!("{USE_FIELD}{}", u.name),
            earlier: earlier
                .into_iter()
                .enumerate()
                .map(|(i, e)| EarlierChoice {
                    id: e.id,
                    text: e.text,
                    checked: i == 0 && !none_chosen,
                })
                .collect(),
            none_chosen,
            upstream: u.name.clone(),
        });
    }
    view.connect = connect;
    let operator = cookies::operator(headers);
    let presented = Presented {
        login: login_token,
        operator: operator.as_deref(),
    };
    view.authority = app.auth.authority(&view.grant, presented, now());
    if let Some(login) = &app.login
        && view.offers_login()
    {
        // The "Sign in" button's 303 goes to the IdP.
        if let Some(source) = crate::authz::consent::csp_source(login.authorization_endpoint())
            && !form_targets.contains(&source)
        {
            form_targets.push(source);
        }
    }
    let page = ConsentPage {
        css: CSS,
        view: &view,
        action: format!("{INTERACT_PATH}{}", view.grant),
        sign_out: OPERATOR_SIGN_OUT_PATH,
    };
    let targets = form_targets.join(" ");
    html(
        status,
        page.render(),
        (!targets.is_empty()).then_some(targets.as_str()),
    )
}

/// The page of `grant` a form was posted from: its form token checked and
/// the grant still pending.
pub(super) async fn form_view(
    app: &App,
    grant: &str,
    form: &[(String, String)],
    source: &str,
) -> Result<ConsentView, PageError> {
    let auth = app.auth.clone();
    let token = form::field(form, "csrf").map(str::to_owned);
    let (grant, source) = (grant.to_owned(), source.to_owned());
    blocking(move || auth.consent_by_form(&grant, token.as_deref(), &source)).await
}

/// Whether the browser that sent `headers` may decide `grant` (and so
/// connect upstreams for it or forget sets on its page): the same check
/// as a decision's.
pub(super) fn may_decide(app: &App, grant: &str, headers: &HeaderMap) -> Result<(), PageError> {
    let presentation = presentation(headers, grant);
    app.auth
        .decider(grant, presentation.presented(), now())
        .map(|_| ())
}

/// What the browser that sent `headers` presented for deciding `grant`.
pub(super) fn presentation(headers: &HeaderMap, grant: &str) -> Presentation {
    Presentation {
        login: cookies::login(headers, grant),
        operator: cookies::operator(headers),
    }
}

/// The person on `grant`'s page: the login's subject, or without a login
/// the sets this browser's cookie lists.
pub(super) fn who(app: &App, headers: &HeaderMap, grant: &str, login_token: Option<&str>) -> Who {
    Who::of(app.login.as_deref(), grant, login_token, now(), || {
        cookies::get(headers, earlier::COOKIE)
            .map(|value| app.gateway.open_earlier_cookie(&value))
            .unwrap_or_default()
    })
}
