//! Why an admin command failed. The messages are for the admin's eyes and
//! never hold a secret; advice on which `gnapd` command to run instead is
//! added apart ([`AdminError::for_cli`]) for the edge that talks to the CLI.

use crate::authz::DecideError;
use crate::store::StoreError;
use crate::upstream::connect::PERSON_SET_PREFIX;
use crate::upstream::credential::CredentialError;
use crate::upstream::server::UpstreamError;
use crate::upstream::vault::VaultError;

/// Why an admin command failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Not JSON of an admin command (serde's category and column only: the
    /// text may hold a secret).
    #[error("not an admin command ({category} at column {column})")]
    NotCommand {
        /// serde_json's category of the error.
        category: String,
        /// Where in the line.
        column: usize,
    },
    /// `gnapd grants …` on a server that takes no decisions.
    #[error("this server does not take decisions on grants")]
    NoDecisions,
    /// `gnapd admin …` on a server without the operator sign-in.
    #[error("this server has no operator sign-in (operator_login = false)")]
    NoOperator,
    /// The operator sign-in link could not be made or written.
    #[error(transparent)]
    Link(#[from] super::operator_link::LinkError),
    /// The decision was refused.
    #[error(transparent)]
    Decide(#[from] DecideError),
    /// The store failed while doing `what`.
    #[error("{what}: {source}")]
    Store {
        /// What was under way ("storing upstream `x`").
        what: String,
        /// Why.
        source: StoreError,
    },
    /// Adding an upstream whose name is taken.
    #[error("upstream `{0}` exists; remove it first")]
    Exists(String),
    /// Changing an upstream the config file or a flag gives.
    #[error("upstream `{0}` comes from the config file or a flag; remove it there")]
    Configured(String),
    /// Changing a credential the config file or a flag gives.
    #[error(
        "the credential of upstream `{0}` comes from the config file or a flag; change it there"
    )]
    ConfiguredCredential(String),
    /// No such upstream.
    #[error("no upstream `{0}`")]
    NoUpstream(String),
    /// The upstream given is refused.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The credential given is refused.
    #[error(transparent)]
    Credential(#[from] CredentialError),
    /// `none` given as a credential to add.
    #[error("`none` is not a credential")]
    NoneCredential,
    /// No master key to seal with.
    #[error("the server has no master key to seal credentials")]
    NoMasterKey,
    /// Sealing failed.
    #[error(transparent)]
    Seal(#[from] VaultError),
    /// Removing a set by id that is not a person-connected one.
    #[error(
        "`{0}` is not a person-connected set id (`{PERSON_SET_PREFIX}…`); remove an upstream's own set by the upstream's name"
    )]
    NotPersonSet(String),
    /// No such credential set.
    #[error("no credential set `{0}`")]
    NoSet(String),
}

impl AdminError {
    /// The message as the admin socket answers it: with, for the admin at
    /// the command line, what to run or set instead.
    pub fn for_cli(&self) -> String {
        match self {
            Self::NoneCredential => format!("{self}; use `gnapd credentials remove`"),
            Self::NoMasterKey => format!(
                "{self}: start it with --master-key-file, master_key_file or GNAPD_MASTER_KEY"
            ),
            _ => self.to_string(),
        }
    }

    pub(super) fn store(what: impl Into<String>) -> impl FnOnce(StoreError) -> Self {
        let what = what.into();
        move |source| Self::Store { what, source }
    }
}
