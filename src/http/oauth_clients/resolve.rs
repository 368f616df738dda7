//! Who a `client_id` is, for the authorization and token endpoints: a
//! client from the configuration, one that registered itself, or, for an
//! https `client_id`, the client its metadata document describes (cached,
//! else fetched now).

use super::App;
use crate::proto::oauth::cimd::{CimdError, check_url};
use crate::proto::oauth::client::ClientInfo;

/// Why a `client_id` names no usable client. Each is `invalid_client`
/// (RFC 6749 §5.2) except [`ResolveError::Unavailable`]; the text is ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// No such client.
    #[error("unknown client")]
    Unknown,
    /// Its metadata document could not be fetched or was refused.
    #[error("{0}")]
    Document(CimdError),
    /// The store failed (logged); retry later.
    #[error("the server cannot look the client up now")]
    Unavailable,
}

impl ResolveError {
    /// The RFC 6749 §5.2 error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unknown | Self::Document(_) => "invalid_client",
            Self::Unavailable => "temporarily_unavailable",
        }
    }
}

/// The client `client_id` names.
pub async fn resolve_client(app: &App, client_id: &str) -> Result<ClientInfo, ResolveError> {
    let clients = &app.oauth_clients.registry;
    if let Some(client) = clients.configured(client_id) {
        return Ok(client);
    }
    if !client_id.starts_with("https://") {
        let registry = clients.clone();
        let id = client_id.to_owned();
        let found = tokio::task::spawn_blocking(move || registry.registered(&id))
            .await
            .map_err(|_| ResolveError::Unavailable)?
            .map_err(|e| {
                tracing::error!(error = %e, "storage failure");
                ResolveError::Unavailable
            })?;
        return found.ok_or(ResolveError::Unknown);
    }
    check_url(client_id).map_err(ResolveError::Document)?;
    if let Some(client) = clients.cached_document(client_id) {
        return Ok(client);
    }
    let fetched = app
        .oauth_clients
        .fetcher
        .fetch(client_id)
        .await
        .map_err(|why| {
            tracing::info!(client_id, why = %why, "client metadata document not fetched");
            ResolveError::Document(CimdError::Fetch(why))
        })?;
    clients
        .document_fetched(
            client_id,
            &fetched.body,
            fetched.cache_control.as_deref(),
            fetched.expires.as_deref(),
        )
        .map_err(|e| {
            tracing::info!(client_id, error = %e, "client metadata document refused");
            ResolveError::Document(e)
        })
}
