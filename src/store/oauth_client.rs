//! An OAuth client registered at the registration endpoint (RFC 7591),
//! kept until its registration lapses.

use serde::{Deserialize, Serialize};

use crate::proto::oauth::client::ClientInfo;

/// A registered OAuth client, by its `client_id`. Its secret, if any, is
/// only in `client.secret_hash`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthClientRecord {
    /// Record format version ([`super::RECORD_VERSION`]).
    pub v: u32,
    /// What the AS knows of the client.
    pub client: ClientInfo,
    /// Registration time (Unix seconds).
    pub registered_at: i64,
    /// The registration lapses after this time unless used again
    /// (`crate::authz::oauth_clients` moves it on use).
    pub expires_at: i64,
}
