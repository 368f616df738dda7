//! Why an upstream, its stdio command or its enrollment was refused.
//! Messages never carry a credential.

use super::*;

/// Why an upstream was refused. Messages never carry a credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    /// A name outside 1–64 of `A-Z a-z 0-9 - _ .`.
    #[error("upstream name `{0}` must be 1-64 of A-Z a-z 0-9 - _ .")]
    Name(String),
    /// Something wrong with upstream `name`.
    #[error("upstream `{name}`: {problem}")]
    Invalid {
        /// The upstream.
        name: String,
        /// What is wrong.
        problem: Problem,
    },
    /// A credential the transport cannot present.
    #[error(
        "upstream `{name}` is a {transport} upstream: its credential must be {allowed}, not {kind}"
    )]
    CredentialMismatch {
        /// The upstream.
        name: String,
        /// `stdio` or `http`.
        transport: &'static str,
        /// The kinds it can present.
        allowed: &'static str,
        /// The kind given.
        kind: &'static str,
    },
    /// The credential itself is wrong.
    #[error(transparent)]
    Credential(#[from] CredentialError),
    /// Not `NAME=VALUE`.
    #[error("expected NAME=VALUE with a valid upstream name")]
    Assignment,
}

/// What is wrong with one named upstream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// Its stdio command.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// `connect` on a stdio upstream.
    #[error("`connect` is for upstreams reached by `url`")]
    ConnectNeedsUrl,
    /// Its `connect` config.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// stdio settings on a URL upstream.
    #[error("args, cwd and env belong to a stdio upstream (`command`), not a `url` one")]
    StdioSettings,
    /// Both or neither of `url` and `command`.
    #[error("give exactly one of `url` and `command`")]
    UrlOrCommand,
    /// A URL that is not absolute.
    #[error("the URL is not absolute")]
    NotAbsolute,
    /// A URL that is not http(s).
    #[error("the URL must be http:// or https://")]
    Scheme,
    /// A URL hyper cannot use.
    #[error("the URL is not usable")]
    Unusable,
    /// A URL with user information.
    #[error("put credentials in the upstream's credential, not in its URL")]
    UserInfo,
}

/// Why a stdio command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// `stdio:` with nothing after it.
    #[error("stdio: needs a command")]
    Missing,
    /// An empty program.
    #[error("the command is empty")]
    Empty,
    /// A NUL byte in the program or an argument.
    #[error("the command contains a NUL byte")]
    Nul,
    /// A plain environment variable that is not valid.
    #[error(transparent)]
    Env(#[from] CredentialError),
}

pub(super) fn invalid(name: &str, problem: impl Into<Problem>) -> UpstreamError {
    UpstreamError::Invalid {
        name: name.to_owned(),
        problem: problem.into(),
    }
}
