//! Why the gateway could not start, or could not write a credential set.
//! Both reach the log or the operator, never an agent.

use crate::random::NoRandomness;
use crate::store::StoreError;
use crate::upstream::vault::VaultError;

/// Why [`super::Gateway::new`] failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The upstream client (TLS roots, extra CAs) could not be built.
    #[error(transparent)]
    Client(#[from] crate::http_client::TlsError),
    /// No randomness for the key that seals event ids.
    #[error("cannot draw the event id key: {0}")]
    EventIdKey(crate::random::NoRandomness),
}

/// Why a token request to an upstream's authorization server got no
/// answer (an answer with an error status is not this: the caller reads it).
#[derive(Debug, thiserror::Error)]
pub(crate) enum TokenExchangeError {
    /// A header of the request cannot be sent.
    #[error(transparent)]
    Header(#[from] hyper::header::InvalidHeaderValue),
    /// The request could not be built.
    #[error(transparent)]
    Request(#[from] hyper::http::Error),
    /// No answer (head or body) within the response timeout.
    #[error("the token endpoint did not answer in time")]
    Timeout,
    /// The exchange failed (connection, TLS, protocol).
    #[error(transparent)]
    Send(#[from] hyper_util::client::legacy::Error),
    /// The body could not be read whole (or was over the limit).
    #[error("{0}")]
    Body(Box<dyn std::error::Error + Send + Sync>),
}

/// Why a credential set could not be written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SetWriteError {
    /// Sets are sealed, and this server has no master key.
    #[error("no master key")]
    NoMasterKey,
    /// The credential holds no secret (kind `none`).
    #[error("nothing to seal")]
    NothingToSeal,
    /// The set was removed meanwhile.
    #[error("the credential set is gone")]
    Gone,
    /// No randomness for the set's id.
    #[error(transparent)]
    Random(#[from] NoRandomness),
    /// Sealing failed.
    #[error(transparent)]
    Seal(#[from] VaultError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The blocking task that wrote it did not finish.
    #[error(transparent)]
    Task(#[from] tokio::task::JoinError),
}
