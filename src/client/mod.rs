//! The agent side of gnapd: a GNAP client instance that any program can
//! reuse, and the `gnapd connect` relay built on it.
//!
//! The protocol logic is sans I/O and tested directly: [`challenge`] reads
//! the resource server's `WWW-Authenticate: GNAP` challenge (RFC 9635 §9.1),
//! [`grant`] builds grant requests and reads grant responses (interaction
//! included, §3.3), [`timing`] decides when to poll and when to rotate,
//! [`sse`] reads server-sent events, [`finish`] checks the interaction hash
//! (and listens for the redirect). The edges are thin: [`keyfile`] keeps a
//! key on disk (0600), [`http`] sends requests over hyper, [`agent`] holds a
//! key and a grant and signs every request, [`relay`] is the stdio MCP
//! server of `gnapd connect`.

pub mod agent;
pub mod challenge;
pub mod finish;
pub mod grant;
pub mod http;
pub mod keyfile;
pub mod relay;
pub mod sse;
pub mod timing;

pub use agent::{Agent, AgentOptions, Prompter, SigningClient, StderrPrompter};
pub use challenge::Challenge;
pub use grant::AccessSpec;

impl ClientError {
    /// The message with, for a person at the command line, the flag that
    /// would help (`gnapd connect`, `gnapd agent`).
    pub fn for_cli(&self) -> String {
        match self {
            Self::NoChallenge { .. } => format!("{self}; give --as-uri"),
            Self::ToolsWithoutUpstream | Self::NoAccess => format!("{self}; give --access"),
            _ => self.to_string(),
        }
    }
}

/// Why the agent could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The HTTP client could not be set up.
    #[error("cannot set up the HTTP client: {0}")]
    Setup(String),
    /// An exchange failed (connection, timeout, unreadable answer).
    #[error("HTTP: {0}")]
    Http(String),
    /// The resource's challenge is missing or unusable.
    #[error(transparent)]
    Challenge(#[from] challenge::ChallengeError),
    /// The AS refused (or the person denied).
    #[error("{0}")]
    Refused(grant::Refusal),
    /// Nobody approved in time.
    #[error("nobody approved the request in time")]
    ApprovalTimeout,
    /// An answer did not follow the protocol.
    #[error("{0}")]
    Protocol(String),
    /// The resource answered without a GNAP challenge, so the AS is not
    /// known.
    #[error("{resource} answered HTTP {status} instead of a 401 GNAP challenge")]
    NoChallenge {
        /// The resource called.
        resource: String,
        /// Its status.
        status: u16,
    },
    /// Tools were named, but not the upstream they belong to.
    #[error("cannot tell which upstream the tools belong to")]
    ToolsWithoutUpstream,
    /// Neither the options nor the challenge name access.
    #[error("the challenge names no access to ask for")]
    NoAccess,
    /// Signing failed.
    #[error("cannot sign the request: {0}")]
    Sign(String),
    /// The key could not be loaded or made.
    #[error(transparent)]
    KeyFile(#[from] keyfile::KeyFileError),
}
