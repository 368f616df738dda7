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

pub use agent::{Agent, AgentOptions, Prompter, StderrPrompter, Wire};
pub use challenge::Challenge;
pub use grant::AccessSpec;

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
    /// Signing failed.
    #[error("cannot sign the request: {0}")]
    Sign(String),
    /// The key could not be loaded or made.
    #[error(transparent)]
    KeyFile(#[from] keyfile::KeyFileError),
}
