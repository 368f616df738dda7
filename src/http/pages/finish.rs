//! After a decision on a page: the finish method carried out (RFC 9635
//! §4.2) and the browser answered.

use std::sync::Arc;

use warp::http::HeaderMap;

use super::cookies;
use super::render::{message, see_other};
use crate::authz::{Decided, FinishAction, FinishDelivery, Reply};
use crate::http::App;
use crate::http::push::PushOutcome;

/// Carries out the finish method (§4.2) and answers the browser: a 303 to
/// the client's registered URI for a redirect finish (approved or denied:
/// §4.2 "these steps still take place ... when the RO has denied access"),
/// otherwise the done or denied page (after the push, for a push finish).
pub(super) async fn finish(app: &Arc<App>, decided: Decided, headers: &HeaderMap) -> Reply {
    let back = "You can close this page and return to the agent.";
    match decided.finish {
        FinishAction::Redirect { url } => {
            let browser = cookies::browser(headers);
            match app
                .auth
                .deliver_finish(&decided.grant, browser.as_deref(), url)
            {
                FinishDelivery::Here(url) => return see_other(url),
                FinishDelivery::Elsewhere => {
                    let done = if decided.approved {
                        "approved"
                    } else {
                        "denied"
                    };
                    return message(
                        200,
                        &format!("Access {done}"),
                        &format!(
                            "You {done} the request. It was started in another browser, which takes the answer back to the agent."
                        ),
                        Some(
                            "Whoever started it opens the request's link again in that browser (the agent may show it again).",
                        ),
                        if decided.approved { "done" } else { "error" },
                    );
                }
            }
        }
        FinishAction::Push { uri, body } => match app.pusher.push(&uri, body).await {
            PushOutcome::Delivered(_) => {
                tracing::info!(grant = %decided.grant.0, "interaction finish pushed");
            }
            other => {
                tracing::warn!(grant = %decided.grant.0, outcome = %other, "interaction finish push not delivered");
            }
        },
        FinishAction::None => {}
    }
    if decided.approved {
        message(
            200,
            "Access approved",
            "You approved the access shown. The agent picks it up on its own.",
            Some(back),
            "done",
        )
    } else {
        message(
            200,
            "Access denied",
            "You denied the request. The agent gets no access from it.",
            Some(back),
            "error",
        )
    }
}
