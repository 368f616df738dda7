//! The operator's sign-in pages (`crate::authz::operator`): the page the
//! one-time link opens, redeeming it for a session cookie, and signing out.
//!
//! Opening the link changes nothing: a link previewer or a prefetch must
//! not use it up. The page's button posts the code, and only that POST
//! redeems it.

use askama::Template;

use super::cookies::{self, SameSite};
use super::form::field;
use super::io::now;
use super::render::{CSS, html, message};
use crate::authz::Reply;
use crate::authz::operator::{OPERATOR_PATH, OperatorError};
use crate::http::App;

#[derive(Template)]
#[template(path = "operator.html")]
struct OperatorPage<'a> {
    css: &'a str,
    action: &'a str,
    code: Option<&'a str>,
}

/// Longest code taken from a link or a form: a real one is 43 characters.
const MAX_CODE: usize = 128;

/// `GET {OPERATOR_PATH}?code=…`: the sign-in button (or a field to paste
/// the code into).
pub(super) fn page(query: &[(String, String)]) -> Reply {
    let code = field(query, "code").filter(|c| !c.is_empty() && c.len() <= MAX_CODE);
    let page = OperatorPage {
        css: CSS,
        action: OPERATOR_PATH,
        code,
    };
    html(200, page.render(), None)
}

/// `POST {OPERATOR_PATH}`: redeems the code once and hands the browser
/// its session.
pub(super) fn sign_in(app: &App, form: &[(String, String)], source: &str) -> Reply {
    let Some(operator) = &app.auth.deciders().operator else {
        return message(
            404,
            "No operator sign-in here",
            "This server has no operator sign-in: requests are decided on the server, or through the configured login.",
            None,
            "error",
        );
    };
    let code = field(form, "code").filter(|c| c.len() <= MAX_CODE);
    match code.map(|c| operator.redeem(c, now())) {
        Some(Ok(session)) => {
            tracing::info!(source, "operator signed in");
            let mut reply = message(
                200,
                "Signed in as the operator",
                "This browser can now approve or deny the requests agents make on this server.",
                Some("Open a request's link again, or enter its code at /gnap/device."),
                "done",
            );
            // Strict: no other site can make this browser send it, so no
            // cross-site request decides with the operator's authority.
            reply.headers.push(cookies::set(
                app,
                cookies::OPERATOR,
                &session,
                operator.session_lifetime(),
                SameSite::Strict,
            ));
            reply
        }
        Some(Err(e @ (OperatorError::NoRandomness | OperatorError::Unavailable))) => message(
            e.status(),
            "Something went wrong",
            "The server could not open a session. Try again.",
            None,
            "error",
        ),
        Some(Err(OperatorError::InvalidLink)) | None => {
            tracing::warn!(
                source,
                "operator sign-in refused: unknown, used or expired code"
            );
            message(
                OperatorError::InvalidLink.status(),
                "This sign-in link is not valid",
                "It was used already, replaced by a newer one, or it expired.",
                Some("Run `gnapd admin login-link` on the server for a new one."),
                "error",
            )
        }
    }
}

/// `POST {OPERATOR_SIGN_OUT_PATH}`: ends this browser's session.
pub(super) fn sign_out(app: &App, headers: &warp::http::HeaderMap) -> Reply {
    if let (Some(operator), Some(session)) =
        (&app.auth.deciders().operator, cookies::operator(headers))
    {
        operator.sign_out(&session);
        tracing::info!("operator signed out");
    }
    let mut reply = message(
        200,
        "Signed out",
        "This browser no longer decides requests on this server.",
        None,
        "done",
    );
    reply.headers.push(cookies::set(
        app,
        cookies::OPERATOR,
        "",
        0,
        SameSite::Strict,
    ));
    reply
}
