//! The OAuth clients the AS knows beyond its configuration: clients that
//! registered themselves (RFC 7591), clients known by their metadata
//! document (CIMD), resource servers that introspect tokens (RFC 7662),
//! and headless clients using `client_credentials` with `private_key_jwt`
//! (MCP's client-credentials extension, SEP-1046). Sans I/O: the document
//! fetch is the HTTP edge's (`crate::http::oauth_clients`), which hands
//! the bytes to [`OAuthClients::document_fetched`].
//!
//! Bounds (a registration is free to make, so what it costs is capped):
//! - per address, a token bucket ([`Settings::per_address`], 10 at once,
//!   then 2 a minute);
//! - in all, [`Settings::max_registered`] (10,000) kept registrations;
//!   past it, lapsed ones are swept first (they are also swept with
//!   everything else every minute), and if none lapsed a new
//!   registration is refused (`503`, retry later) rather than evicting a
//!   client in use;
//! - a registration never used lapses after [`Settings::unused_lifetime`]
//!   (1 day); each use moves its expiry to [`Settings::used_lifetime`]
//!   (90 days) ahead ([`OAuthClients::note_used`]);
//! - metadata documents are cached per their HTTP headers, at most 24 h
//!   and [`document_cache::CAPACITY`] entries; failures are not cached.

use std::sync::{Arc, Mutex};

use crate::clock::Clock;
use crate::proto::oauth::client::ClientInfo;
use crate::random::Randomness;
use crate::store::{Store, StoreError};

use super::limits::RateLimit;
use crate::store::rate::Buckets;

pub mod client_credentials;
pub mod document_cache;
mod documents;
pub mod introspection;
pub mod registry;
pub mod reply;

pub use introspection::{Introspector, IntrospectorEntry};

/// Path of the registration endpoint (RFC 7591 §3).
pub const REGISTER_PATH: &str = "/oauth/register";
/// Path of the introspection endpoint (RFC 7662 §2).
pub const INTROSPECT_PATH: &str = "/oauth/introspect";

/// How the AS treats clients it was not configured with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Dynamic registration is open (`oauth_registration`; on by default
    /// only in `--dev`).
    pub registration: bool,
    /// Registrations kept at once.
    pub max_registered: usize,
    /// Registrations one address may make.
    pub per_address: RateLimit,
    /// Seconds an unused registration is kept.
    pub unused_lifetime: i64,
    /// Seconds a registration is kept after its last use.
    pub used_lifetime: i64,
    /// Metadata documents may be fetched from private, loopback and
    /// link-local addresses (`allow_private_metadata_documents`; tests).
    pub allow_private_documents: bool,
    /// Resource servers allowed to introspect tokens: configured clients
    /// authenticating with `client_secret_basic` (`[[oauth_introspector]]`).
    pub introspectors: Vec<Introspector>,
    /// Clients pre-registered in the configuration, resolved first.
    pub configured: Vec<ClientInfo>,
}

impl Settings {
    /// The defaults, with registration open or not.
    pub fn new(registration: bool) -> Self {
        Self {
            registration,
            max_registered: 10_000,
            per_address: RateLimit {
                burst: 10,
                per_minute: 2,
            },
            unused_lifetime: 24 * 3600,
            used_lifetime: 90 * 24 * 3600,
            allow_private_documents: false,
            introspectors: Vec::new(),
            configured: Vec::new(),
        }
    }
}

/// The client registry and what it keeps in memory.
pub struct OAuthClients {
    settings: Settings,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    randomness: Arc<dyn Randomness>,
    /// Registrations by address.
    buckets: Mutex<Buckets>,
    /// Metadata documents fetched, by URL.
    documents: Mutex<document_cache::DocumentCache>,
    /// The AS's issuer and token endpoint: the audiences a client
    /// assertion may name.
    issuer: String,
}

impl std::fmt::Debug for OAuthClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClients")
            .field("registration", &self.settings.registration)
            .finish_non_exhaustive()
    }
}

impl OAuthClients {
    /// The metadata documents cached and the registration rate buckets.
    pub fn memory_tables(&self) -> [(&'static str, crate::store::TableSize); 2] {
        [
            (
                "memory:client_metadata_documents",
                self.documents.lock().map(|d| d.size()).unwrap_or_default(),
            ),
            (
                "memory:registration_rate_limits",
                self.buckets.lock().map(|b| b.size()).unwrap_or_default(),
            ),
        ]
    }

    /// The registry of `auth`'s store, clock and randomness.
    pub fn new(auth: &super::AuthServer, settings: Settings) -> Self {
        Self {
            buckets: Mutex::new(Buckets::new(settings.per_address)),
            documents: Mutex::new(document_cache::DocumentCache::new(document_cache::CAPACITY)),
            store: auth.store.clone(),
            clock: auth.clock.clone(),
            randomness: auth.randomness.clone(),
            issuer: auth.config.public_url.clone(),
            settings,
        }
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The issuer identifier (the public URL).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    fn now(&self) -> i64 {
        self.clock.now()
    }

    /// A configured client.
    pub fn configured(&self, client_id: &str) -> Option<ClientInfo> {
        self.settings
            .configured
            .iter()
            .find(|c| c.client_id == client_id)
            .cloned()
    }

    /// A registered client whose registration has not lapsed.
    pub fn registered(&self, client_id: &str) -> Result<Option<ClientInfo>, StoreError> {
        let now = self.now();
        Ok(self
            .store
            .oauth_client(client_id)?
            .filter(|r| r.expires_at >= now)
            .map(|r| r.client))
    }
}
