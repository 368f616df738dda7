//! What the gateway presents upstream: the token's credential set, opened
//! with the master key and kept opened, and an `oauth2` set's access token
//! refreshed one caller at a time.

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::header::HeaderValue;

use super::errors::SetWriteError;
use super::{Gateway, TOKEN_RESPONSE_LIMIT};
use crate::gateway::answer::UpstreamFailure;
use crate::gateway::{Authorized, Refusal};
use crate::upstream::credential::Credential;
use crate::upstream::oauth2::OAuth2Credential;
use crate::upstream::server::Upstream;

/// Most opened credential sets kept; the map is emptied when full.
const OPENED_CAPACITY: usize = 4_096;

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

    /// A fresh access token for the `oauth2` credential set `id` of
    /// `upstream`, whose token `stale` expired or was refused. One refresh
    /// at a time per set: a caller that waited finds the set already
    /// refreshed by the one before it and uses that.
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
        let Credential::OAuth2(grant) = &current else {
            return Ok(current);
        };
        let now = self.clock.now();
        if grant.access_token.expose() != stale && !grant.needs_refresh(now) {
            return Ok(current);
        }
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
            .credential_set(id)?
            .filter(|s| s.upstream == upstream)
            .ok_or(SetWriteError::Gone)?;
        set.sealed = key.seal(id, &next.to_json())?;
        let store = self.store.clone();
        Ok(tokio::task::spawn_blocking(move || store.put_credential_set(&set)).await??)
    }
}
