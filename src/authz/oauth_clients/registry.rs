//! Dynamic client registration (RFC 7591 §3): the registration endpoint's
//! service, over the store, with the bounds of the module documentation.

use serde_json::json;

use super::OAuthClients;
use super::reply::{error, unavailable};
use crate::authz::Reply;
use crate::proto::address::AddressKey;
use crate::proto::oauth::registration::{
    read_registration, registered_client, registration_response, uses_secret,
};
use crate::store::{OAuthClientRecord, RECORD_VERSION};

/// Largest registration request read, in bytes.
pub const MAX_REGISTRATION: usize = 16 * 1024;

impl OAuthClients {
    /// Answers a registration request from `source` (the client's address
    /// as the edge saw it) with a `content_type` and `body`.
    pub fn register(&self, content_type: Option<&str>, body: &[u8], source: Option<&str>) -> Reply {
        if !self.settings.registration {
            return closed();
        }
        let now = self.now();
        let address = format!("{:?}", AddressKey::of_source(source.unwrap_or("unknown")));
        let taken = match self.buckets.lock() {
            Ok(mut buckets) => buckets.take(&address, now),
            Err(_) => Err(60),
        };
        if let Err(retry_after) = taken {
            return error(
                429,
                "temporarily_unavailable",
                "too many registrations from this address; retry later",
            )
            .with_header("retry-after", retry_after.to_string());
        }
        // RFC 7591 §3.1: "the client sends an HTTP POST ... with a content
        // type of application/json".
        let json = content_type
            .and_then(|c| c.split(';').next())
            .is_some_and(|c| c.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return error(
                400,
                "invalid_client_metadata",
                "the registration request must be application/json",
            );
        }
        if body.len() > MAX_REGISTRATION {
            return error(400, "invalid_client_metadata", "the request is too large");
        }
        let metadata = match read_registration(body) {
            Ok(m) => m,
            Err(e) => return error(400, e.code.as_str(), &e.description),
        };
        match self.has_room(now) {
            Ok(true) => {}
            Ok(false) => {
                return error(
                    503,
                    "temporarily_unavailable",
                    "the server holds as many client registrations as it keeps; retry later",
                )
                .with_header("retry-after", "3600");
            }
            Err(e) => return unavailable(&e),
        }
        let drawn = crate::random::text_from(&*self.randomness).and_then(|id| {
            let auth = metadata
                .token_endpoint_auth
                .unwrap_or(crate::proto::oauth::client::TokenEndpointAuth::ClientSecretBasic);
            let secret = if uses_secret(auth) {
                Some(crate::random::text_from(&*self.randomness)?)
            } else {
                None
            };
            Ok((id, secret))
        });
        let Ok((client_id, secret)) = drawn else {
            return error(
                503,
                "temporarily_unavailable",
                "no randomness to draw a client identifier",
            );
        };
        let secret_hash = secret
            .as_deref()
            .map(|s| -> [u8; 32] { crate::proto::hash::sha256(s.as_bytes()) });
        let client = registered_client(&metadata, &client_id, secret_hash);
        let record = OAuthClientRecord {
            v: RECORD_VERSION,
            client,
            registered_at: now,
            expires_at: now.saturating_add(self.settings.unused_lifetime),
        };
        if let Err(e) = self.store.put_oauth_client(&record) {
            return unavailable(&e);
        }
        // The client's name is its claim, logged as such; never the secret.
        tracing::info!(client_id = %record.client.client_id, auth = ?record.client.token_endpoint_auth, "oauth client registered");
        let response = registration_response(&record.client, &metadata, secret.as_deref(), now);
        Reply::json(201, &response).with_header("pragma", "no-cache")
    }

    /// True when one more registration may be kept: under the cap, or
    /// under it once lapsed registrations are swept.
    fn has_room(&self, now: i64) -> Result<bool, crate::store::StoreError> {
        if self.store.oauth_client_count()? < self.settings.max_registered {
            return Ok(true);
        }
        self.store.sweep_oauth_clients(now)?;
        Ok(self.store.oauth_client_count()? < self.settings.max_registered)
    }

    /// Moves a registered client's expiry after a use (a token issued to
    /// it): a client in use stays registered. Writes only when less than
    /// half of [`super::Settings::used_lifetime`] is left, so a busy
    /// client costs one write in a while, not one per token.
    pub fn note_used(&self, client_id: &str) -> Result<(), crate::store::StoreError> {
        let now = self.now();
        let Some(mut record) = self.store.oauth_client(client_id)? else {
            return Ok(());
        };
        if record.expires_at < now || record.expires_at - now >= self.settings.used_lifetime / 2 {
            return Ok(());
        }
        record.expires_at = now.saturating_add(self.settings.used_lifetime);
        self.store.put_oauth_client(&record)
    }
}

/// RFC 7591 §3: registration may require an initial access token (the
/// endpoint is then an OAuth protected resource). With registration off,
/// gnapd issues none, so every request lacks a valid one: 401 with a
/// Bearer challenge (RFC 6750 §3), and the same error as JSON.
fn closed() -> Reply {
    let description = "dynamic client registration is off at this server: ask its operator to configure the client, or use a client ID metadata document";
    Reply::json(
        401,
        &json!({"error": "invalid_token", "error_description": description}),
    )
    .with_header(
        "www-authenticate",
        format!(
            "Bearer realm=\"gnapd\", error=\"invalid_token\", error_description=\"{description}\""
        ),
    )
    .with_header("pragma", "no-cache")
}
