//! What the consent service (`crate::authz::decision`) needs done outside
//! the AS, over the gateway (which keeps the person-connected sets) and
//! tokio's blocking pool.

use std::sync::Arc;

use crate::authz::PageError;
use crate::authz::decision::{DecisionIo, PageDecisions, SetsFailed};
use crate::gateway::forward::Gateway;
use crate::http::App;
use crate::upstream::connect::Probed;
use crate::upstream::credential::Credential;
use crate::upstream::earlier;
use crate::upstream::server::Upstream;

/// The gateway, seen by the consent service.
pub(super) struct GatewayIo<'a>(pub(super) &'a Gateway);

/// The consent service over `app`.
pub(super) fn decisions(app: &App) -> PageDecisions<'_, GatewayIo<'_>> {
    PageDecisions {
        auth: &app.auth,
        login: app.login.as_deref(),
        connections: &app.connections,
        io: GatewayIo(&app.gateway),
    }
}

impl DecisionIo for GatewayIo<'_> {
    fn upstreams(&self) -> Vec<Arc<Upstream>> {
        self.0.upstreams()
    }

    async fn probe(&self, upstream: &Upstream, credential: &Credential) -> Option<Probed> {
        self.0.probe(upstream, credential).await
    }

    async fn store_set(
        &self,
        upstream: &str,
        credential: &Credential,
        owner: Option<String>,
    ) -> Result<String, SetsFailed> {
        self.0
            .store_person_set(upstream, credential, owner)
            .await
            .map_err(|e| SetsFailed(e.to_string()))
    }

    async fn drop_set(&self, id: &str) {
        self.0.drop_person_set(id).await;
    }

    async fn forget_set(&self, id: &str) -> Result<bool, SetsFailed> {
        self.0
            .forget_person_set(id)
            .await
            .map_err(|e| SetsFailed(e.to_string()))
    }

    async fn claim_set(&self, id: &str, owner: &str) -> Result<(), SetsFailed> {
        self.0
            .claim_person_set(id, owner)
            .await
            .map_err(|e| SetsFailed(e.to_string()))
    }

    async fn earlier_sets(
        &self,
        upstream: &str,
        person: &earlier::Person<'_>,
    ) -> Vec<earlier::Earlier> {
        self.0.earlier_sets(upstream, person).await
    }

    async fn off_thread<T: Send + 'static>(
        &self,
        call: impl FnOnce() -> Result<T, PageError> + Send + 'static,
    ) -> Result<T, PageError> {
        blocking(call).await
    }
}

/// The time, for the pages' in-memory state (sign-ins, sessions).
pub(super) fn now() -> i64 {
    crate::clock::Clock::now(&crate::clock::SystemClock)
}

/// Runs a store-touching call off the async workers.
pub(super) async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, PageError> + Send + 'static,
) -> Result<T, PageError> {
    tokio::task::spawn_blocking(call)
        .await
        .unwrap_or(Err(PageError::Internal))
}
