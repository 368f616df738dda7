//! `POST /interop/decide`: a pending interaction approved or denied by the
//! suite, as a person on its page would, then finished (§4.2): a redirect
//! finish is answered with the URL the person's browser would be sent to
//! (the suite, acting as the browser, opens it), a push finish is made now.
//!
//! Request: `{"user_code": …}` or `{"interaction_url": …}`, and
//! `"decision": "approve" | "deny"`. Answer: `{"grant", "decision",
//! "finish": "none" | "redirect" | "push", "redirect_to"?, "push"?}`.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;

use crate::authz::interaction::{DecideError, FinishAction};
use crate::authz::{INTERACT_PATH, Reply};
use crate::http::App;

/// The automation endpoint's path.
pub const DECIDE_PATH: &str = "/interop/decide";

/// Who decided, in the logs and the grant's record.
const SOURCE: &str = "interop";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecideRequest {
    #[serde(default)]
    user_code: Option<String>,
    #[serde(default)]
    interaction_url: Option<String>,
    decision: Verdict,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Verdict {
    Approve,
    Deny,
}

fn refusal(status: u16, description: &str) -> Reply {
    Reply::json(status, &json!({"error": description}))
}

/// The grant an interaction URL of this server names
/// (`{public}/gnap/interact/{grant}/{secret}`).
fn grant_of(url: &str, public_url: &str) -> Option<String> {
    let rest = url.strip_prefix(public_url)?.strip_prefix(INTERACT_PATH)?;
    let grant = rest.split('/').next()?;
    crate::authz::is_grant_id(grant).then(|| grant.to_owned())
}

/// Serves one `POST /interop/decide`.
pub(crate) async fn serve_decide(app: Arc<App>, headers: &hyper::HeaderMap, body: &[u8]) -> Reply {
    let Some(interop) = &app.interop else {
        return refusal(404, "not found");
    };
    if !interop.authorized(headers) {
        return refusal(401, "the interop automation secret is required")
            .with_header("www-authenticate", "Bearer realm=\"gnapd-interop\"");
    }
    let request: DecideRequest = match serde_json::from_slice(body) {
        Ok(request) => request,
        Err(e) => return refusal(400, &format!("unreadable request: {e}")),
    };
    let selector = match (&request.user_code, &request.interaction_url) {
        (Some(code), None) => code.clone(),
        (None, Some(url)) => match grant_of(url, &app.auth.config().public_url) {
            Some(grant) => grant,
            None => {
                return refusal(
                    400,
                    "interaction_url is not an interaction URL of this server",
                );
            }
        },
        _ => return refusal(400, "give exactly one of user_code and interaction_url"),
    };
    let approve = matches!(request.decision, Verdict::Approve);
    let auth = app.auth.clone();
    let decided =
        tokio::task::spawn_blocking(move || auth.decide_grant(&selector, approve, SOURCE)).await;
    let decided = match decided {
        Ok(Ok(decided)) => decided,
        Ok(Err(e)) => {
            let status = match e {
                DecideError::NotFound => 404,
                DecideError::AlreadyDecided | DecideError::Expired => 409,
                DecideError::TooManyAttempts => 429,
                DecideError::Store(_) | DecideError::NoRandomness => 503,
            };
            return refusal(status, &e.to_string());
        }
        Err(_) => return refusal(503, "the decision could not be recorded"),
    };
    let mut answer = json!({
        "grant": decided.grant.0,
        "decision": if approve { "approved" } else { "denied" },
    });
    match decided.finish {
        FinishAction::None => answer["finish"] = json!("none"),
        FinishAction::Redirect { url } => {
            answer["finish"] = json!("redirect");
            answer["redirect_to"] = json!(url);
        }
        FinishAction::Push { uri, body } => {
            let outcome = app.pusher.push(&uri, body).await;
            answer["finish"] = json!("push");
            answer["push"] = json!(outcome.to_string());
        }
    }
    Reply::json(200, &answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_servers_interaction_urls_name_a_grant() {
        let public = "http://127.0.0.1:8470";
        let id = "0b6e3c4e-8a51-4d4f-9a43-6a0f0d7a2c11";
        let url = format!("{public}{INTERACT_PATH}{id}/secret");
        assert_eq!(grant_of(&url, public).as_deref(), Some(id));
        assert_eq!(
            grant_of(&format!("http://evil.example{INTERACT_PATH}{id}/s"), public),
            None
        );
        assert_eq!(
            grant_of(&format!("{public}{INTERACT_PATH}not-an-id!/s"), public),
            None
        );
        assert_eq!(grant_of(&format!("{public}/other/{id}"), public), None);
    }
}
