//! Short-lived entries every node of a deployment sees: single-use values
//! (an accepted assertion, a sign-in's `state`, an operator link) and
//! sign-ins (a session cookie) that a request on one node makes and a
//! request on another must find, or must find gone.
//!
//! Only a store several nodes share keeps them ([`super::Store::handoffs`]
//! is `None` on memory and sled): on one node each service keeps its own
//! bounded memory, as it always has. Entries are keyed by the SHA-256 of
//! what names them, never the name itself (a session cookie or a link's
//! secret must not be usable from a dump), and a value that would be a
//! secret is sealed by its caller under the master key before it gets
//! here.

use super::StoreError;

/// The SHA-256 of what names an entry.
pub type HandoffKey = [u8; 32];

/// What an entry is: each service has its own kinds, so two of them never
/// read each other's entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HandoffKind {
    /// A trusted user assertion (ID token, ID-JAG) already accepted.
    UsedAssertion,
    /// The operator's one-time sign-in link, not yet used.
    OperatorLink,
    /// A signed-in operator's session.
    OperatorSession,
    /// An OIDC sign-in under way: its `state`, with the sealed verifier.
    LoginState,
    /// A person signed in through OIDC for a grant's page.
    LoginSignedIn,
    /// An upstream OAuth connection under way: its `state`, sealed.
    ConnectState,
    /// The sets a person connected for a pending grant, sealed.
    ConnectConnected,
    /// The browser that started a grant's interaction, and a finish
    /// waiting for it, sealed.
    StartedBy,
}

impl HandoffKind {
    /// The name stored in the `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UsedAssertion => "used-assertion",
            Self::OperatorLink => "operator-link",
            Self::OperatorSession => "operator-session",
            Self::LoginState => "login-state",
            Self::LoginSignedIn => "login-signed-in",
            Self::ConnectState => "connect-state",
            Self::ConnectConnected => "connect-connected",
            Self::StartedBy => "started-by",
        }
    }
}

/// Entries shared by every node, each live until its `expires_at` (Unix
/// seconds: live while `expires_at >= now`); lapsed ones are never
/// returned and go with [`super::Store::sweep`]. Every method is one
/// atomic, durable statement.
pub trait Handoffs: Send + Sync {
    /// Writes the entry unless a live one holds its key: `true` if
    /// written. Of concurrent claims of one key exactly one is `true`.
    fn claim_handoff(
        &self,
        kind: HandoffKind,
        key: &HandoffKey,
        value: &[u8],
        now: i64,
        expires_at: i64,
    ) -> Result<bool, StoreError>;

    /// Writes the entry, replacing whatever held its key.
    fn put_handoff(
        &self,
        kind: HandoffKind,
        key: &HandoffKey,
        value: &[u8],
        expires_at: i64,
    ) -> Result<(), StoreError>;

    /// The live entry's value, left in place.
    fn handoff(
        &self,
        kind: HandoffKind,
        key: &HandoffKey,
        now: i64,
    ) -> Result<Option<Vec<u8>>, StoreError>;

    /// The live entry's value, removed in the same statement: of
    /// concurrent takers of one entry exactly one gets it.
    fn take_handoff(
        &self,
        kind: HandoffKind,
        key: &HandoffKey,
        now: i64,
    ) -> Result<Option<Vec<u8>>, StoreError>;

    /// Removes the entry, live or not: whether there was one.
    fn remove_handoff(&self, kind: HandoffKind, key: &HandoffKey) -> Result<bool, StoreError>;

    /// Removes every entry of `kind`: how many.
    fn remove_handoff_kind(&self, kind: HandoffKind) -> Result<usize, StoreError>;
}
