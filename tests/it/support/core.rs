//! The authorization server without sockets, as the `*_core` tests drive
//! it: the in-memory store, a pinned clock, and requests routed to their
//! endpoint by path, as the HTTP edge would.

use std::sync::Arc;

use gnapd::authz::{AsConfig, AuthServer, Deciders, Endpoint, Policy, Reply};
use gnapd::clock::ManualClock;
use gnapd::proto::httpsig::HttpRequest;
use gnapd::store::memory::MemoryStore;
use serde_json::Value;

/// The pinned clock's start (Unix seconds).
pub(crate) const T0: i64 = 1_790_000_000;
/// The AS's public URL.
pub(crate) const PUBLIC: &str = "https://as.example.com";
/// Its grant endpoint.
pub(crate) const GRANT: &str = "https://as.example.com/gnap";

/// An AS under `policy`, with its store and clock.
pub(crate) struct Core {
    pub(crate) server: AuthServer,
    pub(crate) store: Arc<MemoryStore>,
    pub(crate) clock: Arc<ManualClock>,
}

impl Core {
    pub(crate) fn new(policy: Policy) -> Self {
        Self::with_deciders(policy, Deciders::default())
    }

    /// An AS under `policy` whose pages decide for `deciders`.
    pub(crate) fn with_deciders(policy: Policy, deciders: Deciders) -> Self {
        let store = Arc::new(MemoryStore::new());
        let clock = Arc::new(ManualClock::at(T0));
        let server = AuthServer::new(store.clone(), clock.clone(), policy, AsConfig::new(PUBLIC))
            .with_deciders(deciders);
        Self {
            server,
            store,
            clock,
        }
    }

    /// The pinned clock's time.
    pub(crate) fn now(&self) -> i64 {
        gnapd::clock::Clock::now(self.clock.as_ref())
    }

    /// Handles `request` at the endpoint its path names: the reply and its
    /// JSON body (`null` when empty).
    pub(crate) fn send(&self, request: &HttpRequest) -> (Reply, Value) {
        let path = request.target_uri.strip_prefix(PUBLIC).unwrap();
        let endpoint = match path {
            "/gnap" => Endpoint::Grant,
            "/gnap/introspect" => Endpoint::Introspect,
            "/gnap/resource" => Endpoint::RegisterResource,
            _ => match path.strip_prefix("/gnap/continue/") {
                Some(id) => Endpoint::Continue(id.to_owned()),
                None => Endpoint::Manage(path.strip_prefix("/gnap/token/").unwrap().to_owned()),
            },
        };
        let reply = self.server.handle(&endpoint, request);
        let body = if reply.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&reply.body).unwrap()
        };
        (reply, body)
    }
}

/// The value of `reply`'s header `name` (lowercase), if any.
pub(crate) fn header<'a>(reply: &'a Reply, name: &str) -> Option<&'a str> {
    reply
        .headers
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
}
