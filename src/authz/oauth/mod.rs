//! The OAuth 2.1 face of the authorization server (issue 16), sans I/O:
//! the authorization, token and revocation endpoints over the same grants,
//! policy, consent, store and credential sets as GNAP.
//!
//! An authorization request becomes a grant ([`crate::store::GrantRecord`]
//! with `oauth` set) and an interaction whose finish is
//! [`crate::store::FinishKind::OAuthCode`]. Policy decides it as it decides
//! a GNAP request; approved at once (`--dev`, an allow rule), the browser
//! goes straight back with a code; otherwise to the consent page GNAP
//! grants use, whose decision redirects with the code. The code is
//! `GRANTID.INTERACTREF`: the token endpoint takes the interaction once
//! (`Store::finish_interaction`), as a GNAP continuation after interaction
//! does, and mints OAuth tokens.
//!
//! An OAuth client has no key. Its grants are bound to a [`KeyBinding`]
//! derived from its `client_id` ([`client_binding`]): the thumbprint
//! `oauth-client:{client_id}` (a colon never appears in an RFC 7638
//! thumbprint, so it names no key) and an empty JWK, so that GNAP's
//! endpoints, which rebuild the key from the binding, refuse every signed
//! call on such a grant as `invalid_client`. An `[[allow]]` rule whose
//! `thumbprint` is that string approves the client's requests as it would a
//! key's. A DPoP-bound token carries the DPoP key instead.
//!
//! Refresh tokens are the token records' management tokens: a refresh is
//! the store's `token_swap` (rotation), and a spent refresh token is
//! remembered (`Store::spend_refresh`) so that its reuse revokes the grant.

use crate::proto::oauth::error::{ErrorCode, OAuthError};
use crate::store::{KeyBinding, StoreError};

mod authorize;
mod client_auth;
mod clients;
mod dpop_proof;
mod headless;
mod issue;
mod refresh;
mod revoke;
mod token;

pub use authorize::Authorized;
pub use client_auth::Presented;
pub use clients::{ClientDirectory, ConfiguredClients, OAuthClientEntry};
pub use headless::{HeadlessGrant, JWT_BEARER};
pub use issue::{DpopKey, TokenAnswer};

/// Seconds an authorization code stays usable after the decision (RFC 6749
/// §4.1.2: "a maximum authorization code lifetime of 10 minutes is
/// RECOMMENDED"; a browser redirect and a token request take seconds).
pub const CODE_LIFETIME: i64 = 120;

/// Longest `state` kept, in bytes.
pub const MAX_STATE: usize = 1024;

/// Longest `client_id` served, in bytes (a metadata document URL fits).
pub const MAX_CLIENT_ID: usize = 1024;

/// The key binding of a grant made for OAuth client `client_id` (see the
/// module documentation).
pub fn client_binding(client_id: &str) -> KeyBinding {
    KeyBinding {
        thumbprint: format!("oauth-client:{client_id}"),
        jwk: serde_json::json!({}),
        method: crate::proto::gnap::ProofKind::HttpSig,
    }
}

pub(crate) fn error(code: ErrorCode, description: &str) -> OAuthError {
    OAuthError::new(code, description)
}

/// A storage failure, as the client sees it: `server_error`, no detail.
pub(crate) fn store_failed(e: StoreError) -> OAuthError {
    tracing::error!(error = %e, "storage failure at the OAuth face");
    error(ErrorCode::ServerError, "the server could not complete this")
}

pub(crate) fn no_randomness<T>(_: T) -> OAuthError {
    tracing::error!("the random source failed at the OAuth face");
    error(ErrorCode::ServerError, "the server could not complete this")
}

#[cfg(test)]
mod tests;
