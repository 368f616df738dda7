//! The gateway's I/O half: authorize a wire request, forward it to its
//! upstream with the upstream's credential instead of the agent's, and hand
//! back the upstream's answer as a stream.

mod checks;
mod credentials;
mod errors;
mod headers;
mod http_upstream;
mod person_sets;
mod tables;
mod tool_filter;
mod upstream_connect;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio_rustls::rustls::pki_types::CertificateDer;

pub use errors::StartError;

use crate::clock::Clock;
use crate::http_client::UpstreamClient;
use crate::proto::httpsig::GnapProfile;
use crate::proto::mcp::event_id::EventIds;
use crate::store::Store;
use crate::upstream::credential::Credential;
use crate::upstream::server::Upstream;
use crate::upstream::vault::MasterKey;

/// How long an upstream gets by default to send its response head (an SSE
/// stream then runs as long as the upstream keeps it open).
pub(crate) const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest token endpoint answer read (a refresh, or a connect's code
/// exchange).
const TOKEN_RESPONSE_LIMIT: usize = 64 * 1024;

/// The gateway: upstreams, the store it reads tokens from, and one client.
pub struct Gateway {
    /// Changed at run time by the admin interface: readers clone the
    /// `Arc` and let go of the lock at once.
    upstreams: RwLock<HashMap<String, Arc<Upstream>>>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    profile: GnapProfile,
    keys: super::KeyCache,
    batcher: super::batching::Batcher,
    client: UpstreamClient,
    response_timeout: Duration,
    master_key: Option<Arc<MasterKey>>,
    sessions: super::sessions::Sessions,
    /// Opened credential sets by id, with the sealed bytes they came from
    /// (secrets wiped on drop, never logged).
    opened: std::sync::Mutex<HashMap<String, (Vec<u8>, Credential)>>,
    /// One refresh at a time per `oauth2` credential set.
    refresh_locks: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    stdio: super::stdio::Bridge,
    /// Seals the SSE event ids agents receive (see
    /// [`crate::proto::mcp::event_id`]); drawn at start.
    event_ids: Arc<EventIds>,
    /// The external OAuth AS whose tokens are accepted, if configured.
    external: Option<Arc<crate::gateway::external::ExternalAs>>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("upstreams", &self.upstreams)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// A gateway in front of `upstreams`, checking signatures under `profile`;
    /// an upstream gets `response_timeout` to send its response head.
    /// `master_key` opens the credential sets tokens are mapped to; HTTPS
    /// upstreams are trusted by the system roots and `upstream_cas`.
    pub fn new(
        upstreams: Vec<Upstream>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        profile: GnapProfile,
        response_timeout: Duration,
        master_key: Option<Arc<MasterKey>>,
        upstream_cas: &[CertificateDer<'static>],
    ) -> Result<Self, StartError> {
        // `to_string`: whatever error type the client's builder has.
        let client = crate::http_client::build(upstream_cas)?;
        let event_ids = EventIds::generate().map_err(StartError::EventIdKey)?;
        Ok(Self {
            upstreams: RwLock::new(
                upstreams
                    .into_iter()
                    .map(|u| (u.name.clone(), Arc::new(u)))
                    .collect(),
            ),
            store,
            clock,
            profile,
            keys: super::KeyCache::default(),
            batcher: super::batching::Batcher::new(true),
            client,
            response_timeout,
            master_key,
            sessions: super::sessions::Sessions::default(),
            refresh_locks: std::sync::Mutex::default(),
            opened: std::sync::Mutex::default(),
            stdio: super::stdio::Bridge::new(super::stdio::Limits::default()),
            event_ids: Arc::new(event_ids),
            external: None,
        })
    }

    /// The same gateway also accepting the access tokens of the external
    /// OAuth AS of `settings` (`[external_oauth_as]`), asked through the
    /// gateway's own outbound client.
    pub fn with_external_as(
        mut self,
        settings: Option<crate::gateway::external::ExternalAsSettings>,
    ) -> Self {
        self.external = settings.map(|s| {
            Arc::new(crate::gateway::external::ExternalAs::new(
                s,
                self.client.clone(),
            ))
        });
        self
    }

    /// The external OAuth AS's issuer, if one is configured.
    pub(crate) fn external_issuer(&self) -> Option<&str> {
        self.external.as_deref().map(|e| e.issuer())
    }

    /// The same gateway checking signatures in batches under load
    /// (`enabled`, the default) or each alone.
    pub(crate) fn with_signature_batching(mut self, enabled: bool) -> Self {
        self.batcher = super::batching::Batcher::new(enabled);
        self
    }

    /// Checks a screened signature with whatever others wait at the same
    /// moment: the gateway's calls, and the grant endpoint's brand-new
    /// agents (`authz::batched_grant`), share one batcher, so
    /// `--no-signature-batching` turns both off.
    pub(crate) async fn check_signature(
        &self,
        pending: crate::proto::httpsig::batch::Pending,
    ) -> Option<crate::proto::httpsig::batch::Checked> {
        self.batcher.check(pending).await
    }

    /// The gateway's counters, in the Prometheus text format.
    pub(crate) fn render_metrics(&self, out: &mut String) {
        self.batcher.render(out);
        self.sessions.render(out);
        self.stdio.render(out);
    }

    /// The same gateway with its session table under `bounds`.
    pub(crate) fn with_session_bounds(mut self, bounds: super::sessions::Bounds) -> Self {
        self.sessions = super::sessions::Sessions::new(bounds);
        self
    }

    /// The same gateway with these limits on stdio upstreams' children.
    pub(crate) fn with_stdio_limits(mut self, limits: super::stdio::Limits) -> Self {
        self.stdio = super::stdio::Bridge::new(limits);
        self
    }

    /// The bridge to stdio upstreams.
    pub(crate) fn stdio(&self) -> &super::stdio::Bridge {
        &self.stdio
    }

    /// The upstream called `name`.
    pub(crate) fn upstream(&self, name: &str) -> Option<Arc<Upstream>> {
        self.upstreams.read().ok()?.get(name).cloned()
    }

    /// Every upstream, by name.
    pub(crate) fn upstreams(&self) -> Vec<Arc<Upstream>> {
        let mut all: Vec<_> = self
            .upstreams
            .read()
            .map(|u| u.values().cloned().collect())
            .unwrap_or_default();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// Adds `upstream`, or replaces the one of its name. Calls already
    /// under way finish with the upstream they started with.
    pub(crate) fn put_upstream(&self, upstream: Upstream) {
        if let Ok(mut all) = self.upstreams.write() {
            all.insert(upstream.name.clone(), Arc::new(upstream));
        }
    }

    /// Removes the upstream called `name`; its path answers 404 from now on,
    /// and the children of a stdio upstream are stopped (a session kept
    /// open would otherwise outlive it, and come back to life under an
    /// upstream added again with its name).
    pub(crate) fn remove_upstream(&self, name: &str) -> Option<Arc<Upstream>> {
        let removed = self.upstreams.write().ok()?.remove(name)?;
        if matches!(
            removed.transport,
            crate::upstream::server::Transport::Stdio(_)
        ) {
            let stopped = self.stdio.stop_upstream(name);
            if stopped > 0 {
                tracing::info!(
                    upstream = name,
                    children = stopped,
                    "stdio children of a removed upstream stopped"
                );
            }
        }
        Some(removed)
    }
}
