//! What a consent page's form posts: Approve or Deny (read into a
//! [`Submission`] for the consent service, `crate::authz::decision`), or
//! one of the page's other buttons: sign in, connect an upstream, forget
//! a set connected before.

use std::sync::Arc;

use warp::http::HeaderMap;

use super::consent::{consent, form_view, may_decide, presentation, who};
use super::cookies::{self, SameSite};
use super::form::field;
use super::io::decisions;
use super::refusal::refused;
use super::render::message;
use super::{connect, finish, login};
use crate::authz::Reply;
use crate::authz::decision::{KEY_FIELD, Outcome, Submission, USE_FIELD};
use crate::http::App;
use crate::upstream::earlier;

pub(super) async fn decide(
    app: &Arc<App>,
    grant: String,
    form: &[(String, String)],
    source: String,
    headers: &HeaderMap,
) -> Reply {
    let approve = match field(form, "decision") {
        Some("approve") => true,
        Some("deny") => false,
        Some("signin") => return login::start(app, grant, form, source, headers).await,
        Some(other) if other.starts_with("connect:") => {
            let upstream = other.trim_start_matches("connect:").to_owned();
            return connect::start(app, grant, &upstream, form, source, headers).await;
        }
        Some(other) if other.starts_with(FORGET) => {
            let id = other.trim_start_matches(FORGET).to_owned();
            return forget_earlier(app, grant, &id, form, source, headers).await;
        }
        _ => {
            return message(
                400,
                "No decision",
                "Choose Approve or Deny on the page.",
                None,
                "error",
            );
        }
    };
    let presentation = presentation(headers, &grant);
    let who = who(app, headers, &grant, presentation.login.as_deref());
    let submission = submission(grant, approve, form);
    let grant = submission.grant.clone();
    let outcome = decisions(app)
        .decide(submission, presentation.clone(), &who, &source)
        .await;
    match outcome {
        Outcome::Decided {
            decided,
            remembered,
        } => {
            let mut reply = finish::finish(app, decided, headers).await;
            if let Some(value) = remembered.and_then(|ids| app.gateway.seal_earlier_cookie(&ids)) {
                // This browser connected (or picked) these sets: its next
                // consent pages offer them again (`crate::upstream::earlier`).
                reply.headers.push(cookies::set(
                    app,
                    earlier::COOKIE,
                    &value,
                    earlier::COOKIE_LIFETIME,
                    SameSite::Lax,
                ));
            }
            reply
        }
        Outcome::NotConnected(why) => match form_view(app, &grant, form, &source).await {
            Ok(mut view) => {
                view.notice = Some(why.to_string());
                consent(
                    app,
                    view,
                    why.status(),
                    headers,
                    presentation.login.as_deref(),
                )
                .await
            }
            Err(e) => refused(&e),
        },
        Outcome::Refused(e) => refused(&e),
    }
}

/// An Approve or Deny form, as the consent service takes it.
fn submission(grant: String, approve: bool, form: &[(String, String)]) -> Submission {
    let mut submission = Submission {
        grant,
        form_token: field(form, "csrf").map(str::to_owned),
        approve,
        ..Submission::default()
    };
    for (name, value) in form {
        match name.as_str() {
            "right" => {
                submission.selection.rights.insert(value.clone());
            }
            "tool" => {
                submission.selection.tools.insert(value.clone());
            }
            _ => {}
        }
        // The first value of a field counts, as for every other field.
        if let Some(upstream) = name.strip_prefix(KEY_FIELD) {
            submission
                .keys
                .entry(upstream.to_owned())
                .or_insert_with(|| value.clone());
        } else if let Some(upstream) = name.strip_prefix(USE_FIELD) {
            submission
                .chosen
                .entry(upstream.to_owned())
                .or_insert_with(|| value.clone());
        }
    }
    submission
}

/// The decision value of a "Forget" button, before the set's id.
const FORGET: &str = "forget:";

/// A "Forget" button beside a set this person connected before: with the
/// page's form token and the grant still pending, and only for a set this
/// page offers this person (the same check as picking it), the set is
/// removed — every token mapped to it stops working — and the page is shown
/// again without it.
async fn forget_earlier(
    app: &Arc<App>,
    grant: String,
    id: &str,
    form: &[(String, String)],
    source: String,
    headers: &HeaderMap,
) -> Reply {
    let mut view = match form_view(app, &grant, form, &source).await {
        Ok(view) => view,
        Err(e) => return refused(&e),
    };
    if let Err(e) = may_decide(app, &grant, headers) {
        return refused(&e);
    }
    let login_token = cookies::login(headers, &grant);
    let who = who(app, headers, &grant, login_token.as_deref());
    let forgotten = decisions(app)
        .forget(&grant, &view.requested, id, &who)
        .await;
    let (status, notice) = match forgotten {
        Ok(upstream) => (
            200,
            format!("Forgotten: agents given that connection no longer reach {upstream} with it."),
        ),
        Err(why) => (why.status(), why.to_string()),
    };
    view.notice = Some(notice);
    consent(app, view, status, headers, login_token.as_deref()).await
}
