//! The page for each reason a page cannot show or decide a grant
//! ([`PageError`]): its heading and advice. The status is the error's own
//! ([`PageError::status`]).

use super::render::{device_form, message};
use crate::authz::{PageError, Reply};

/// The page for a refusal.
pub(super) fn refused(error: &PageError) -> Reply {
    let text = error.to_string();
    let status = error.status();
    let (heading, next) = match error {
        PageError::NotFound => (
            "Nothing to approve here",
            Some("Check the link, or ask the agent to start again."),
        ),
        PageError::Expired => (
            "This request expired",
            Some("Ask the agent to start again: it will show a new link or code."),
        ),
        PageError::AlreadyDecided => ("Already decided", None),
        PageError::TooManyAttempts => ("Too many attempts", None),
        PageError::Forbidden => ("Refused", None),
        PageError::SignInRequired => (
            "Sign in first",
            Some(
                "Go back to the request's page: it says how to sign in, or ask the administrator to decide on the server (`gnapd grants approve`).",
            ),
        ),
        PageError::AdminOnly => (
            "An administrator decides",
            Some(
                "Ask the administrator to run `gnapd grants approve` (or `deny`) with this request's code or id.",
            ),
        ),
        PageError::NothingSelected => (
            "Nothing was approved",
            Some("Go back to the previous page to choose again."),
        ),
        // A wrong code shows the code form again, saying why.
        PageError::BadCode => return device_form(status, Some(text)),
        PageError::Internal => ("Something went wrong", None),
    };
    let reply = message(status, heading, &text, next, "error");
    // A 429 says when to come back (at the latest, when the attempt
    // window has passed).
    match error.retry_after() {
        Some(seconds) => reply.with_header("retry-after", seconds.to_string()),
        None => reply,
    }
}
