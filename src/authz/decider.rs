//! Who may decide a pending grant on its page.
//!
//! The link and the user code go back to the agent that asked, so holding
//! them proves nothing: outside `--dev` a page decides only for an
//! authenticated person — the configured login's subject
//! (`super::login`), or the operator signed in with the one-time link
//! (`super::operator`). Policy rules and the admin socket (`gnapd grants
//! approve`) decide without a page. `--dev` keeps the development
//! shortcut: without a login configured, whoever holds the link decides,
//! and the page says so in red.
//!
//! The HTTP edge hands over what the browser presented (cookies); only
//! this module turns that into a [`Decider`], so a page cannot decide
//! without the check.

use super::AuthServer;

/// What a browser presented for deciding: the values of its login and
/// operator session cookies, as read by the HTTP edge.
#[derive(Debug, Clone, Copy, Default)]
pub struct Presented<'a> {
    /// The login cookie of this grant (`super::login`).
    pub login: Option<&'a str>,
    /// The operator session cookie (`super::operator`).
    pub operator: Option<&'a str>,
}

/// Who decided a grant on its page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decider {
    /// A subject signed in at the configured login and allowed to decide.
    Subject(String),
    /// The operator, signed in with the one-time link.
    Operator,
    /// Whoever holds the link: development mode only.
    LinkHolder,
}

impl Decider {
    /// What the decision records as its decider (`by`).
    pub(crate) fn recorded(&self) -> Option<&str> {
        match self {
            Self::Subject(subject) => Some(subject),
            Self::Operator => Some("operator"),
            Self::LinkHolder => None,
        }
    }
}

/// What a page can offer the browser looking at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authority {
    /// This browser decides.
    Decides(Decider),
    /// A signed-in person decides: at the configured login (`login`), or
    /// as the operator (`operator`).
    SignInNeeded {
        /// The page offers the login's "Sign in" button.
        login: bool,
        /// The operator's sign-in link works here.
        operator: bool,
    },
    /// Nobody can sign in on the pages: only the admin on the server
    /// decides (`gnapd grants approve`).
    AdminOnly,
}

impl AuthServer {
    /// Who the browser that `presented` these credentials is, for `grant`'s
    /// page at `now`.
    pub fn authority(&self, grant: &str, presented: Presented<'_>, now: i64) -> Authority {
        if let Some(login) = &self.deciders.login
            && let Some(subject) = login.subject(grant, presented.login, now)
        {
            return Authority::Decides(Decider::Subject(subject));
        }
        if let Some(operator) = &self.deciders.operator
            && operator.is_signed_in(presented.operator, now)
        {
            return Authority::Decides(Decider::Operator);
        }
        // A configured login keeps deciding to its subjects, in dev too.
        if self.policy.dev && self.deciders.login.is_none() {
            return Authority::Decides(Decider::LinkHolder);
        }
        if self.deciders.login.is_some() || self.deciders.operator.is_some() {
            Authority::SignInNeeded {
                login: self.deciders.login.is_some(),
                operator: self.deciders.operator.is_some(),
            }
        } else {
            Authority::AdminOnly
        }
    }

    /// The decider of `grant`'s page, or why this browser cannot decide.
    pub fn decider(
        &self,
        grant: &str,
        presented: Presented<'_>,
        now: i64,
    ) -> Result<Decider, super::PageError> {
        match self.authority(grant, presented, now) {
            Authority::Decides(decider) => Ok(decider),
            Authority::SignInNeeded { .. } => Err(super::PageError::SignInRequired),
            Authority::AdminOnly => Err(super::PageError::AdminOnly),
        }
    }

    /// Whether pages decide for whoever holds the link (`--dev` without a
    /// login): they say so in red.
    pub(crate) fn link_holders_decide(&self) -> bool {
        self.policy.dev && self.deciders.login.is_none()
    }

    /// How grants that wait for a person get decided on this server, in
    /// plain words (logged at start).
    pub(crate) fn how_grants_are_decided(&self) -> String {
        let mut ways = Vec::new();
        if self.link_holders_decide() {
            ways.push("anyone holding a grant's page link (development mode)".to_owned());
        }
        if self.deciders.login.is_some() {
            ways.push("a person signed in at the configured [login]".to_owned());
        }
        if self.deciders.operator.is_some() {
            ways.push(
                "the operator in a browser signed in with `gnapd admin login-link`".to_owned(),
            );
        }
        ways.push("the admin on this machine with `gnapd grants approve CODE`".to_owned());
        ways.join("; ")
    }
}
