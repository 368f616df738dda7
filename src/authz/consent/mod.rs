//! What the interaction pages need from the AS, sans I/O (RFC 9635 §4.1):
//! finding the pending grant a person's browser names, describing it, the
//! form token that binds a decision to it, and narrowing the access before
//! approval. The HTML lives in `crate::http::pages`.
//!
//! A person reaches a grant's page two ways:
//!
//! - by its link, `{public}/gnap/interact/{grant}/{secret}` (the `redirect`
//!   start mode): §4.1.1 "the AS MUST determine the grant request being
//!   referenced from the URI value itself"; the secret is 256 random bits
//!   whose hash the interaction record keeps, compared in constant time;
//! - by its user code at `{public}/gnap/device` (`user_code_uri`, and the
//!   same page serves `user_code`): §4.1.2/§4.1.3, the code names the grant;
//!   entries are counted per source and per grant as for the admin
//!   (`super::usercode::Attempts`), and a grant id is never accepted there.
//!
//! Either way the page's form carries a token: HMAC-SHA-256 under a key
//! this server drew at first use, over the grant id. It is the CSRF token:
//! compared in constant time before anything is looked up, a missing or
//! wrong one decides nothing. It is not who decides: the link and the code
//! travel through the agent, so a decision also needs a [`Decider`] — a
//! signed-in person outside `--dev` (`super::decider`).

use super::DecideError;

mod csp;
mod finish;
mod form_token;
mod narrow;
mod page_decision;
mod view;

pub(crate) use csp::csp_source;
pub use narrow::Selection;
pub(crate) use narrow::narrow;
pub use page_decision::PageDecision;
pub use view::{ConnectView, ConsentView, EarlierChoice, RightView, ToolView};

/// Why a page cannot show or decide a grant: each says its status
/// ([`PageError::status`]); the HTTP edge renders the page.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// No pending interaction at this address (§4.1.1: "the AS MUST display
    /// an error to the RO and MUST NOT attempt to redirect").
    #[error("No request is waiting at this address.")]
    NotFound,
    /// The code typed names no pending grant.
    #[error("That code is not valid, or it expired. Check it and try again.")]
    BadCode,
    /// The interaction expired before a decision.
    #[error("This request expired before anyone decided on it.")]
    Expired,
    /// Someone decided first.
    #[error("This request was already decided.")]
    AlreadyDecided,
    /// Too many failed attempts from this source, or entries of this code.
    #[error("Too many attempts. Wait a few minutes and try again.")]
    TooManyAttempts,
    /// The form token is missing or wrong: nothing was decided.
    #[error(
        "This form is not valid here (it may be from before the server restarted). Open the link or enter the code again."
    )]
    Forbidden,
    /// Nobody allowed to decide is signed in on this browser: nothing was
    /// decided.
    #[error("Sign in first: only a person signed in and allowed to decide can approve or deny.")]
    SignInRequired,
    /// Nobody can sign in to decide on this server's pages: only its
    /// admin decides, on the server.
    #[error(
        "Only an administrator can approve or deny requests on this server, on the server itself."
    )]
    AdminOnly,
    /// Approval with every right unticked.
    #[error("Nothing was left ticked. Tick what the agent may have, or deny.")]
    NothingSelected,
    /// The store or the random source failed.
    #[error("The server could not complete this. Try again.")]
    Internal,
}

impl PageError {
    /// The HTTP status of the page that says so.
    pub(crate) fn status(&self) -> u16 {
        match self {
            Self::NotFound => 404,
            Self::Expired => 410,
            Self::AlreadyDecided => 409,
            Self::TooManyAttempts => 429,
            Self::Forbidden | Self::SignInRequired | Self::AdminOnly => 403,
            Self::BadCode | Self::NothingSelected => 400,
            Self::Internal => 500,
        }
    }

    /// Seconds after which trying again can succeed (`Retry-After`): a
    /// refusal for too many attempts lasts at most the attempt window.
    pub(crate) fn retry_after(&self) -> Option<i64> {
        matches!(self, Self::TooManyAttempts).then_some(super::usercode::WINDOW)
    }
}

impl From<DecideError> for PageError {
    fn from(error: DecideError) -> Self {
        match error {
            DecideError::NotFound => Self::NotFound,
            DecideError::TooManyAttempts => Self::TooManyAttempts,
            DecideError::Expired => Self::Expired,
            DecideError::AlreadyDecided => Self::AlreadyDecided,
            DecideError::Store(e) => {
                tracing::error!(error = %e, "storage failure on an interaction page");
                Self::Internal
            }
            DecideError::NoRandomness => Self::Internal,
        }
    }
}

impl From<crate::store::StoreError> for PageError {
    fn from(error: crate::store::StoreError) -> Self {
        DecideError::Store(error).into()
    }
}
