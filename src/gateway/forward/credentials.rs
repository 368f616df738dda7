//! What the gateway presents upstream: the token's credential set, opened
//! with the master key and kept opened, and an `oauth2` set's access token
//! refreshed one caller at a time, across every node on the store.

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::header::HeaderValue;

use super::errors::SetWriteError;
use super::{Gateway, TOKEN_RESPONSE_LIMIT};
use crate::gateway::answer::UpstreamFailure;
use crate::gateway::{Authorized, Refusal};
use crate::store::{CredentialSetRecord, Store, StoreError};
use crate::upstream::credential::Credential;
use crate::upstream::oauth2::OAuth2Credential;
use crate::upstream::refresh_lease::{
    POLL_FIRST, holder, lease_seconds, next_pause, refresh_lease,
};
use crate::upstream::server::Upstream;

/// Most opened credential sets kept; the map is emptied when full.
const OPENED_CAPACITY: usize = 4_096;

/// True if `credential` needs no refresh for a caller whose token was
/// `stale`: not an `oauth2` credential, or one whose token is another
/// (someone refreshed it) and not about to expire.
fn still_good(credential: &Credential, stale: &str, now: i64) -> bool {
    match credential {
        Credential::OAuth2(grant) => {
            grant.access_token.expose() != stale && !grant.needs_refresh(now)
        }
        _ => true,
    }
}

impl Gateway {
    /// What to present at `upstream` for an authorized call: the token's
    /// credential set there, opened with the master key. An upstream with
    /// no enterprise set (kind `none`) needs none.
    pub(super) fn credential_for(
        &self,
        target: &Upstream,
        authorized: &Authorized,
    ) -> Result<Credential, Refusal> {
        let upstream = target.name.as_str();
        // A set the token is mapped to (enterprise-held, or one a person
        // connected when approving) wins; without one, an upstream with an
        // enterprise set refuses, one without presents its configured
        // credential (none).
        if let Some(id) = authorized.token.credential_set(upstream) {
            return self.open_set(upstream, id);
        }
        if target.credential_set.is_none() {
            return Ok(target.credential.clone());
        }
        Err(Refusal::NoCredentialSet(upstream.to_owned()))
    }

    /// Credential set `id`, opened, if it is for `upstream`.
    fn open_set(&self, upstream: &str, id: &str) -> Result<Credential, Refusal> {
        let missing = || Refusal::NoCredentialSet(upstream.to_owned());
        let set = self.store.credential_set_shared(id)?.ok_or_else(missing)?;
        self.open_record(upstream, id, &set)
    }

    /// `set` (stored as `id`) opened, if it is for `upstream`.
    fn open_record(
        &self,
        upstream: &str,
        id: &str,
        set: &CredentialSetRecord,
    ) -> Result<Credential, Refusal> {
        if set.upstream != upstream {
            tracing::warn!(
                upstream,
                set = id,
                "a token's credential set is for another upstream"
            );
            return Err(Refusal::NoCredentialSet(upstream.to_owned()));
        }
        let Some(key) = &self.master_key else {
            tracing::warn!(
                upstream,
                set = id,
                "no master key to open the credential set"
            );
            return Err(Refusal::CredentialUnavailable);
        };
        // Opened sets are kept by id beside the sealed bytes they came from:
        // a replaced (or refreshed) set has other bytes and is opened anew.
        if let Ok(opened) = self.opened.lock()
            && let Some((sealed, credential)) = opened.get(id)
            && *sealed == set.sealed
        {
            return Ok(credential.clone());
        }
        let secret = key.open(id, &set.sealed).map_err(|e| {
            tracing::warn!(upstream, set = id, error = %e, "a credential set does not open");
            Refusal::CredentialUnavailable
        })?;
        let credential = Credential::from_opened(set.kind, set.header_name.as_deref(), &secret)
            .map_err(|e| {
                tracing::warn!(upstream, set = id, error = %e, "a credential set is unusable");
                Refusal::CredentialUnavailable
            })?;
        if let Ok(mut opened) = self.opened.lock() {
            if opened.len() >= OPENED_CAPACITY {
                opened.clear();
            }
            opened.insert(id.to_owned(), (set.sealed.clone(), credential.clone()));
        }
        Ok(credential)
    }

    /// Set `id` as the store holds it now, past the record cache (another
    /// node may have refreshed it a moment ago), opened.
    async fn open_uncached(&self, upstream: &str, id: &str) -> Result<Credential, UpstreamFailure> {
        let key = id.to_owned();
        let set = self
            .off_thread(move |store| store.credential_set_uncached(&key))
            .await
            .map_err(|e| {
                tracing::warn!(upstream, set = id, error = %e, "reading the credential set failed");
                UpstreamFailure::CredentialRefused
            })?
            .ok_or(UpstreamFailure::CredentialRefused)?;
        self.open_record(upstream, id, &set)
            .map_err(|_| UpstreamFailure::CredentialRefused)
    }

    /// Runs a store call on a blocking thread: the PostgreSQL store waits
    /// on its connection there, not on a runtime worker.
    async fn off_thread<T: Send + 'static>(
        &self,
        call: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || call(&*store))
            .await
            .map_err(|e| StoreError::Backend(format!("a store call's task: {e}")))?
    }

    /// A fresh access token for the `oauth2` credential set `id` of
    /// `upstream`, whose token `stale` expired or was refused. One refresh
    /// at a time per set, across every node on the store: callers in this
    /// process take turns on a mutex, and the one whose turn it is takes
    /// the set's lease in the store ([`refresh_lease`]) before it reads the
    /// set again from the store itself. A caller that finds the set already
    /// refreshed (by the caller before it, or by another node) uses that.
    /// One that finds the lease held by another node waits for it, at most
    /// the response timeout, polling; then the call fails with a timeout.
    pub(super) async fn refresh(
        &self,
        upstream: &str,
        id: &str,
        stale: &str,
    ) -> Result<Credential, UpstreamFailure> {
        let lock = {
            let Ok(mut locks) = self.refresh_locks.lock() else {
                return Err(UpstreamFailure::CredentialRefused);
            };
            locks.entry(id.to_owned()).or_default().clone()
        };
        let _turn = lock.lock().await;
        let current = self
            .open_set(upstream, id)
            .map_err(|_| UpstreamFailure::CredentialRefused)?;
        if still_good(&current, stale, self.clock.now()) {
            return Ok(current);
        }
        let holder = holder().ok_or_else(|| {
            tracing::warn!(
                upstream,
                set = id,
                "no randomness for a refresh lease holder"
            );
            UpstreamFailure::CredentialRefused
        })?;
        let lease = refresh_lease(id);
        let lease_length = lease_seconds(self.response_timeout);
        let waiting_since = std::time::Instant::now();
        let mut pause = POLL_FIRST;
        loop {
            let now = self.clock.now();
            let (name, who) = (lease.clone(), holder.to_owned());
            let taken = self
                .off_thread(move |store| store.take_lease(&name, &who, now, now + lease_length))
                .await
                .map_err(|e| {
                    tracing::warn!(upstream, set = id, error = %e, "taking the refresh lease failed");
                    UpstreamFailure::CredentialRefused
                })?;
            if taken {
                let outcome = self.refresh_holding_lease(upstream, id, stale).await;
                let (name, who) = (lease.clone(), holder.to_owned());
                if let Err(e) = self
                    .off_thread(move |store| store.release_lease(&name, &who))
                    .await
                {
                    // It lapses at its `until` anyway.
                    tracing::warn!(upstream, set = id, error = %e, "releasing the refresh lease failed");
                }
                return outcome;
            }
            let waited = waiting_since.elapsed();
            if waited >= self.response_timeout {
                tracing::warn!(
                    upstream,
                    set = id,
                    "another node's refresh of the upstream credential did not finish within the response timeout"
                );
                return Err(UpstreamFailure::Timeout);
            }
            tokio::time::sleep(pause.min(self.response_timeout - waited)).await;
            pause = next_pause(pause);
        }
    }

    /// The refresh itself, under the set's lease: the set read again from
    /// the store (another node may have refreshed it before this node took
    /// the lease), refreshed only if still stale, stored.
    async fn refresh_holding_lease(
        &self,
        upstream: &str,
        id: &str,
        stale: &str,
    ) -> Result<Credential, UpstreamFailure> {
        let current = self.open_uncached(upstream, id).await?;
        let now = self.clock.now();
        if still_good(&current, stale, now) {
            return Ok(current);
        }
        let Credential::OAuth2(grant) = &current else {
            return Ok(current);
        };
        let refused = |e: &dyn std::fmt::Display| {
            tracing::warn!(upstream, set = id, error = %e, "refreshing the upstream credential failed");
            UpstreamFailure::CredentialRefused
        };
        let request = grant.refresh_request().map_err(|e| refused(&e))?;
        let mut builder = hyper::Request::builder()
            .method("POST")
            .uri(request.uri.as_str());
        for (name, value) in &request.headers {
            let mut value = HeaderValue::from_str(value).map_err(|e| refused(&e))?;
            value.set_sensitive(true);
            builder = builder.header(*name, value);
        }
        let outgoing = builder
            .body(Full::new(Bytes::from(request.body.as_bytes().to_vec())))
            .map_err(|e| refused(&e))?;
        let response = tokio::time::timeout(self.response_timeout, self.client.request(outgoing))
            .await
            .map_err(|_| UpstreamFailure::Timeout)?
            .map_err(|e| refused(&e))?;
        let status = response.status().as_u16();
        let body = tokio::time::timeout(
            self.response_timeout,
            Limited::new(response.into_body(), TOKEN_RESPONSE_LIMIT).collect(),
        )
        .await
        .map_err(|_| UpstreamFailure::Timeout)?
        .map_err(|e| refused(&*e))?
        .to_bytes();
        let next = grant
            .refreshed(status, &body, now)
            .map_err(|e| refused(&e))?;
        self.store_refreshed(upstream, id, &next)
            .await
            .map_err(|e| refused(&e))?;
        tracing::info!(upstream, set = id, "upstream credential refreshed");
        Ok(Credential::OAuth2(Box::new(next)))
    }

    /// Replaces set `id` with the refreshed grant: one sealed record, so
    /// the access and refresh tokens change together, durably.
    async fn store_refreshed(
        &self,
        upstream: &str,
        id: &str,
        next: &OAuth2Credential,
    ) -> Result<(), SetWriteError> {
        let key = self.master_key.clone().ok_or(SetWriteError::NoMasterKey)?;
        let mut set = self
            .store
            .credential_set_uncached(id)?
            .filter(|s| s.upstream == upstream)
            .ok_or(SetWriteError::Gone)?;
        set.sealed = key.seal(id, &next.to_json())?;
        let store = self.store.clone();
        Ok(tokio::task::spawn_blocking(move || store.put_credential_set(&set)).await??)
    }
}
