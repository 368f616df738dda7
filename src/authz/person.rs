//! Who the person on a grant's page is, for the credential sets they
//! connected before (`crate::upstream::earlier`): the configured login's
//! subject, or, without a login, the browser.

use super::login::Login;
use crate::upstream::earlier;

/// Who the person on a page is.
#[derive(Debug)]
pub(crate) enum Who {
    /// Signed in at the configured login: their owner string.
    Owner(String),
    /// No login configured: the sets this browser's cookie lists.
    Browser(Vec<String>),
    /// A login is configured and nobody has signed in yet: offered nothing.
    Nobody,
}

impl Who {
    /// The person on `grant`'s page at `now`: the subject `login_token`
    /// signed in with at `login`, or without a login the sets
    /// `browser_sets` reads from the browser's cookie (read only then).
    pub(crate) fn of(
        login: Option<&Login>,
        grant: &str,
        login_token: Option<&str>,
        now: i64,
        browser_sets: impl FnOnce() -> Vec<String>,
    ) -> Self {
        match login {
            Some(login) => login
                .subject(grant, login_token, now)
                .map_or(Self::Nobody, |subject| Self::Owner(login.owner(&subject))),
            None => Self::Browser(browser_sets()),
        }
    }

    /// Who to look earlier sets up for (`None`: nobody, offered none).
    pub(crate) fn person(&self) -> Option<earlier::Person<'_>> {
        match self {
            Self::Owner(owner) => Some(earlier::Person::Owner(owner)),
            Self::Browser(ids) if !ids.is_empty() => Some(earlier::Person::Browser(ids)),
            _ => None,
        }
    }

    /// The owner to record on sets this person connects.
    pub(crate) fn owner(&self) -> Option<&str> {
        match self {
            Self::Owner(owner) => Some(owner),
            _ => None,
        }
    }
}
