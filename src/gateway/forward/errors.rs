//! Why the gateway could not start, or could not write a credential set.
//! Both reach the log or the operator, never an agent.

use crate::random::NoRandomness;
use crate::store::StoreError;
use crate::upstream::vault::VaultError;

/// Why [`super::Gateway::new`] failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The upstream client (TLS roots, extra CAs) could not be built.
    #[error("{0}")]
    Client(String),
    /// No randomness for the key that seals event ids.
    #[error("cannot draw the event id key: {0}")]
    EventIdKey(crate::random::NoRandomness),
}

/// The command line prints a start failure as text.
impl From<StartError> for String {
    fn from(error: StartError) -> Self {
        error.to_string()
    }
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
