//! The page for each reason a page cannot show or decide a grant
//! ([`PageError`]).

use super::render::{device_form, message};
use crate::authz::{PageError, Reply};

/// The page for a refusal.
pub(super) fn refused(error: &PageError) -> Reply {
    let text = error.to_string();
    match error {
        PageError::NotFound => message(
            404,
            "Nothing to approve here",
            &text,
            Some("Check the link, or ask the agent to start again."),
            "error",
        ),
        PageError::Expired => message(
            410,
            "This request expired",
            &text,
            Some("Ask the agent to start again: it will show a new link or code."),
            "error",
        ),
        PageError::AlreadyDecided => message(409, "Already decided", &text, None, "error"),
        // A 429 says when to come back (at the latest, when the attempt
        // window has passed).
        PageError::TooManyAttempts => message(429, "Too many attempts", &text, None, "error")
            .with_header("retry-after", crate::authz::usercode::WINDOW.to_string()),
        PageError::Forbidden => message(403, "Refused", &text, None, "error"),
        PageError::SignInRequired => message(
            403,
            "Sign in first",
            &text,
            Some(
                "Go back to the request's page: it says how to sign in, or ask the administrator to decide on the server (`gnapd grants approve`).",
            ),
            "error",
        ),
        PageError::AdminOnly => message(
            403,
            "An administrator decides",
            &text,
            Some(
                "Ask the administrator to run `gnapd grants approve` (or `deny`) with this request's code or id.",
            ),
            "error",
        ),
        PageError::NothingSelected => message(
            400,
            "Nothing was approved",
            &text,
            Some("Go back to the previous page to choose again."),
            "error",
        ),
        PageError::BadCode => device_form(400, Some(text)),
        PageError::Internal => message(500, "Something went wrong", &text, None, "error"),
    }
}
