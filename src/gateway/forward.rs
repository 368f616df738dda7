//! The gateway's I/O half: authorize a wire request (off the async threads),
//! forward it to its upstream with the upstream's credential instead of the
//! agent's, and hand back the upstream's answer as a stream.
//!
//! Headers going upstream are an allowlist, not a denylist: only what MCP's
//! Streamable HTTP transport defines (and `Accept`/`Content-Type`) passes, so
//! no header the agent sends — `Authorization`, `Signature*`,
//! `Content-Digest`, cookies, `Forwarded`/`X-Forwarded-*`, hop-by-hop fields
//! or any custom header an upstream might take as a credential — reaches
//! the upstream. The one HTTP client is shared (pooled connections).
//! `Last-Event-ID` passes only as the upstream's own id, opened from the
//! sealed one the agent received ([`Gateway::check_resumption`]).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use tokio_rustls::rustls::pki_types::CertificateDer;

use super::answer::{Forwarded, ForwardedBody, UpstreamFailure};
use super::sse::{IdSealer, MAX_FILTERED, SseRewriter};
use super::{Authorized, Refusal};
use crate::clock::Clock;
use crate::http_client::UpstreamClient;
use crate::proto::httpsig::{GnapProfile, HttpRequest};
use crate::proto::mcp::access::{UpstreamGrant, carries_tool_list};
use crate::proto::mcp::event_id::{Binding, EventIds};
use crate::proto::mcp::jsonrpc::Message;
use crate::store::{CredentialSetRecord, RECORD_VERSION, Store};
use crate::upstream::connect::{PERSON_SET_PREFIX, PROBE_BODY, Probed};
use crate::upstream::credential::Credential;
use crate::upstream::oauth2::OAuth2Credential;
use crate::upstream::server::{Transport, Upstream};
use crate::upstream::vault::MasterKey;

/// Headers an agent's request may carry to the upstream (lowercase). Any
/// other `mcp-*` header passes too (the transport's own namespace).
pub const FORWARDED_REQUEST_HEADERS: [&str; 8] = [
    "accept",
    "content-type",
    "mcp-session-id",
    "mcp-protocol-version",
    "mcp-method",
    "mcp-name",
    "last-event-id",
    "user-agent",
];

/// Response headers passed back to the agent (with any `mcp-*` one): what
/// the transport needs and what tells a client when to retry. Everything
/// else stays at the gateway: hop-by-hop fields, the gateway's own relation
/// with the upstream (its cookies, a challenge for its credential), and
/// what the agent would apply to the gateway's origin on the upstream's
/// word (`Alt-Svc`, `Strict-Transport-Security`, CORS, `Clear-Site-Data`)
/// or what names the upstream (`Location`, `Link`, `Server`).
const FORWARDED_RESPONSE_HEADERS: [&str; 10] = [
    "content-type",
    "content-length",
    "content-encoding",
    "cache-control",
    "date",
    "mcp-session-id",
    "retry-after",
    "ratelimit",
    "ratelimit-policy",
    // An event stream's "do not buffer me" to a reverse proxy in front of
    // the gateway.
    "x-accel-buffering",
];

pub use crate::http_client::CONNECT_TIMEOUT;
/// How long an upstream gets by default to send its response head (an SSE
/// stream then runs as long as the upstream keeps it open).
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
/// Most opened credential sets kept; the map is emptied when full.
const OPENED_CAPACITY: usize = 4_096;
/// Largest token endpoint answer read when refreshing an upstream token.
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
    ) -> Result<Self, String> {
        let client = crate::http_client::build(upstream_cas)?;
        let event_ids =
            EventIds::generate().map_err(|e| format!("cannot draw the event id key: {e}"))?;
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
        })
    }

    /// The same gateway checking signatures in batches under load
    /// (`enabled`, the default) or each alone.
    pub fn with_signature_batching(mut self, enabled: bool) -> Self {
        self.batcher = super::batching::Batcher::new(enabled);
        self
    }

    /// The gateway's counters, in the Prometheus text format.
    pub fn render_metrics(&self, out: &mut String) {
        self.batcher.render(out);
        self.sessions.render(out);
        self.stdio.render(out);
    }

    /// The same gateway with its session table under `bounds`.
    pub fn with_session_bounds(mut self, bounds: super::sessions::Bounds) -> Self {
        self.sessions = super::sessions::Sessions::new(bounds);
        self
    }

    /// The same gateway with these limits on stdio upstreams' children.
    pub fn with_stdio_limits(mut self, limits: super::stdio::Limits) -> Self {
        self.stdio = super::stdio::Bridge::new(limits);
        self
    }

    /// The bridge to stdio upstreams.
    pub fn stdio(&self) -> &super::stdio::Bridge {
        &self.stdio
    }

    /// The upstream called `name`.
    pub fn upstream(&self, name: &str) -> Option<Arc<Upstream>> {
        self.upstreams.read().ok()?.get(name).cloned()
    }

    /// Every upstream, by name.
    pub fn upstreams(&self) -> Vec<Arc<Upstream>> {
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
    pub fn put_upstream(&self, upstream: Upstream) {
        if let Ok(mut all) = self.upstreams.write() {
            all.insert(upstream.name.clone(), Arc::new(upstream));
        }
    }

    /// Removes the upstream called `name`; its path answers 404 from now on.
    pub fn remove_upstream(&self, name: &str) -> Option<Arc<Upstream>> {
        self.upstreams.write().ok()?.remove(name)
    }

    /// Runs [`authorize`](super::authorize) in place, with the signature's
    /// cryptographic check batched with other calls' when several wait at
    /// once ([`super::batching`]). It is CPU work of tens of microseconds
    /// (one signature check, a store lookup, a replay-cache insert that does
    /// not wait for the disk); handing it to the blocking pool cost a quarter
    /// of the gateway's CPU in thread hand-offs (benches/gateway).
    pub async fn check(
        self: &Arc<Self>,
        target: &Upstream,
        request: HttpRequest,
    ) -> (HttpRequest, Result<Authorized, Refusal>) {
        let now = self.clock.now();
        let store = self.store.as_ref();
        let decision = match super::open(store, &self.keys, &self.profile, &request, now) {
            Err(refusal) => Err(refusal),
            Ok((opened, pending)) => {
                let checked = match pending {
                    Some(pending) => self.batcher.check(pending).await,
                    None => None,
                };
                super::conclude(
                    store,
                    &self.profile,
                    &target.name,
                    &request,
                    now,
                    opened,
                    checked,
                )
            }
        }
        .and_then(|mut authorized| {
            authorized.credential = self.credential_for(target, &authorized)?;
            Ok(authorized)
        });
        (request, decision)
    }

    /// Refuses a call that names an `Mcp-Session-Id` which this call's key
    /// and credential set did not open at `upstream` (see
    /// [`super::sessions`]).
    pub fn check_session(
        &self,
        target: &Upstream,
        request: &HttpRequest,
        authorized: &Authorized,
    ) -> Result<(), Refusal> {
        let upstream = target.name.as_str();
        let Some(sent) = request.fields.lines("mcp-session-id").next() else {
            return Ok(());
        };
        // An id outside the transport's alphabet is refused, not taken for
        // "no session": the upstream might still make one of it.
        let session = session_id(Some(sent)).ok_or(Refusal::MalformedSessionId)?;
        // A stdio upstream's sessions are the gateway's own, bound in the
        // bridge when it mints them.
        if matches!(target.transport, Transport::Stdio(_)) {
            return Ok(());
        }
        self.sessions.check(
            upstream,
            &session,
            &authorized.session_owner(upstream),
            std::time::Instant::now(),
        )?;
        Ok(())
    }

    /// Takes a `Last-Event-ID` back: it must be one the gateway sealed for
    /// this call's key, credential set, upstream and session (see
    /// [`crate::proto::mcp::event_id`]); the upstream then gets its own id
    /// again ([`Authorized::resume_from`]). Any other value is refused
    /// (400): the transport lets a server ignore the header, but a stream
    /// the agent did not ask for is no answer to a resumption.
    pub fn check_resumption(
        &self,
        target: &Upstream,
        request: &HttpRequest,
        authorized: &mut Authorized,
    ) -> Result<(), Refusal> {
        let mut sent = request.fields.lines("last-event-id");
        let Some(value) = sent.next() else {
            return Ok(());
        };
        if sent.next().is_some() {
            return Err(Refusal::RepeatedHeader("Last-Event-ID"));
        }
        let binding = self.binding(
            target,
            authorized,
            session_id(request.fields.lines("mcp-session-id").next()),
        );
        let value = std::str::from_utf8(value).map_err(|_| Refusal::UnknownEventId)?;
        let original = self
            .event_ids
            .open(&binding, value.trim())
            .ok_or(Refusal::UnknownEventId)?;
        authorized.resume_from = Some(original);
        Ok(())
    }

    /// Who receives a stream of `target`'s events in `session`.
    fn binding(
        &self,
        target: &Upstream,
        authorized: &Authorized,
        session: Option<String>,
    ) -> Binding {
        Binding {
            thumbprint: authorized.token.key.thumbprint.clone(),
            credential_set: authorized
                .token
                .credential_set(&target.name)
                .map(str::to_owned),
            upstream: target.name.clone(),
            session,
        }
    }

    /// What to present at `upstream` for an authorized call: the token's
    /// credential set there, opened with the master key. An upstream with
    /// no enterprise set (kind `none`) needs none.
    fn credential_for(
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

    /// The connect probe (`crate::upstream::connect`): one MCP `initialize`
    /// POST to `upstream` presenting `credential`, through the gateway's
    /// client. `None` if the upstream could not be reached in time.
    pub async fn probe(&self, upstream: &Upstream, credential: &Credential) -> Option<Probed> {
        let url = upstream.url()?;
        let mut builder = hyper::Request::builder()
            .method("POST")
            .uri(url)
            .header(CONTENT_TYPE, "application/json")
            .header("accept", "application/json, text/event-stream");
        if let (Some(headers), Some((name, value))) =
            (builder.headers_mut(), credential.header_to_inject())
        {
            headers.insert(name, value);
        }
        let request = builder
            .body(Full::new(Bytes::from_static(PROBE_BODY.as_bytes())))
            .ok()?;
        match tokio::time::timeout(self.response_timeout, self.client.request(request)).await {
            Ok(Ok(response)) => {
                let status = response.status().as_u16();
                // The answer's body is not needed; dropping it closes the
                // stream an SSE answer would keep open.
                drop(response);
                tracing::info!(upstream = %upstream.name, status, "connect probe answered");
                Some(Probed::of(status))
            }
            Ok(Err(e)) => {
                tracing::warn!(upstream = %upstream.name, error = %e, "connect probe failed");
                None
            }
            Err(_) => {
                tracing::warn!(upstream = %upstream.name, "connect probe timed out");
                None
            }
        }
    }

    /// Seals `credential` under the master key as a new person-connected
    /// credential set for `upstream` (id `person:<random>`), owned by
    /// `owner` when a signed-in person connected it
    /// (`crate::upstream::earlier`), and returns its id.
    pub async fn store_person_set(
        &self,
        upstream: &str,
        credential: &Credential,
        owner: Option<String>,
    ) -> Result<String, String> {
        let key = self.master_key.clone().ok_or("no master key")?;
        let (kind, header_name, secret) = credential.to_sealable().ok_or("nothing to seal")?;
        let id = format!(
            "{PERSON_SET_PREFIX}{}",
            crate::random::text().map_err(|e| e.to_string())?
        );
        let set = CredentialSetRecord {
            v: RECORD_VERSION,
            id: id.clone(),
            upstream: upstream.to_owned(),
            kind,
            header_name,
            sealed: key.seal(&id, &secret).map_err(|e| e.to_string())?,
            created_at: self.clock.now(),
            owner,
        };
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.put_credential_set(&set))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        tracing::info!(upstream, set = %id, "a person connected an upstream");
        Ok(id)
    }

    /// Sends a token request to an upstream's authorization server (the
    /// code exchange of an OAuth connect) through the gateway's client:
    /// its status and body (at most 64 KiB).
    pub async fn token_request(
        &self,
        request: &crate::upstream::oauth2::TokenRequest,
    ) -> Result<(u16, Bytes), String> {
        let mut builder = hyper::Request::builder()
            .method("POST")
            .uri(request.uri.as_str());
        for (name, value) in &request.headers {
            let mut value = HeaderValue::from_str(value).map_err(|e| e.to_string())?;
            value.set_sensitive(true);
            builder = builder.header(*name, value);
        }
        let outgoing = builder
            .body(Full::new(Bytes::from(request.body.as_bytes().to_vec())))
            .map_err(|e| e.to_string())?;
        let response = tokio::time::timeout(self.response_timeout, self.client.request(outgoing))
            .await
            .map_err(|_| "the token endpoint did not answer in time".to_owned())?
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = tokio::time::timeout(
            self.response_timeout,
            Limited::new(response.into_body(), TOKEN_RESPONSE_LIMIT).collect(),
        )
        .await
        .map_err(|_| "the token endpoint did not answer in time".to_owned())?
        .map_err(|e| e.to_string())?
        .to_bytes();
        Ok((status, body))
    }

    /// Removes a person-connected set that no decision took (the grant was
    /// decided by someone else meanwhile).
    pub async fn drop_person_set(&self, id: &str) {
        let store = self.store.clone();
        let id = id.to_owned();
        let _ = tokio::task::spawn_blocking(move || store.remove_credential_set(&id)).await;
    }

    /// Removes person-connected set `id` at its person's request (a page's
    /// "Forget"): every token mapped to it stops working, as when the admin
    /// removes it. Whether it was there.
    pub async fn forget_person_set(&self, id: &str) -> Result<bool, String> {
        let store = self.store.clone();
        let id = id.to_owned();
        tokio::task::spawn_blocking(move || store.remove_credential_set(&id))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }

    /// Records `owner` on person-connected set `id` when it has none yet:
    /// a set connected through an upstream's sign-in before the person
    /// signed in belongs to whoever then approves with it. Before the
    /// decision that maps tokens to it, so no refresh writes it meanwhile.
    pub async fn claim_person_set(&self, id: &str, owner: &str) -> Result<(), String> {
        let store = self.store.clone();
        let (id, owner) = (id.to_owned(), owner.to_owned());
        tokio::task::spawn_blocking(move || {
            let Some(mut set) = store.credential_set(&id).map_err(|e| e.to_string())? else {
                return Err("the credential set is gone".to_owned());
            };
            if set.owner.is_none() {
                set.owner = Some(owner);
                store.put_credential_set(&set).map_err(|e| e.to_string())?;
            }
            Ok(())
        })
        .await
        .map_err(|e| e.to_string())?
    }

    /// The person-connected sets `person` connected for `upstream`, as a
    /// consent page offers them (`crate::upstream::earlier::offered`).
    pub async fn earlier_sets(
        &self,
        upstream: &str,
        person: &crate::upstream::earlier::Person<'_>,
    ) -> Vec<crate::upstream::earlier::Earlier> {
        use crate::upstream::earlier::Person;
        let store = self.store.clone();
        let sets = match person {
            // A browser names at most a few sets: read those.
            Person::Browser(ids) => {
                let ids = ids.to_vec();
                tokio::task::spawn_blocking(move || {
                    ids.iter()
                        .filter_map(|id| store.credential_set(id).ok().flatten())
                        .collect::<Vec<_>>()
                })
                .await
            }
            // A signed-in person's sets: a scan, bounded by the number of
            // sets the server holds, on a page load only.
            Person::Owner(_) => {
                tokio::task::spawn_blocking(move || store.credential_sets().unwrap_or_default())
                    .await
            }
        };
        let sets = sets.unwrap_or_default();
        crate::upstream::earlier::offered(&sets, upstream, *person, self.clock.now())
    }

    /// The cookie value listing `ids` (`crate::upstream::earlier`), sealed
    /// under the master key; `None` without one.
    pub fn seal_earlier_cookie(&self, ids: &[String]) -> Option<String> {
        crate::upstream::earlier::seal_cookie(self.master_key.as_deref()?, ids)
    }

    /// The set ids a cookie value lists, if the master key sealed it.
    pub fn open_earlier_cookie(&self, value: &str) -> Vec<String> {
        self.master_key
            .as_deref()
            .map(|key| crate::upstream::earlier::open_cookie(key, value))
            .unwrap_or_default()
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
    async fn refresh(
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
    ) -> Result<(), String> {
        let key = self.master_key.clone().ok_or("no master key")?;
        let mut set = self
            .store
            .credential_set(id)
            .map_err(|e| e.to_string())?
            .filter(|s| s.upstream == upstream)
            .ok_or("the credential set is gone")?;
        set.sealed = key.seal(id, &next.to_json()).map_err(|e| e.to_string())?;
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.put_credential_set(&set))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }

    /// Sends `request` (method, allowed headers) with `body` to `uri`,
    /// presenting `credential`.
    async fn send(
        &self,
        upstream: &Upstream,
        request: &HttpRequest,
        uri: &str,
        body: Bytes,
        credential: &Credential,
        resume_from: Option<&str>,
    ) -> Result<hyper::Response<Incoming>, UpstreamFailure> {
        let mut builder = hyper::Request::builder()
            .method(request.method.as_str())
            .uri(uri);
        if let Some(headers) = builder.headers_mut() {
            copy_forwardable(&request.fields, headers);
            // The agent's sealed event id, opened: the upstream's own.
            headers.remove("last-event-id");
            if let Some(id) = resume_from.and_then(|id| HeaderValue::from_str(id).ok()) {
                headers.insert("last-event-id", id);
            }
            // A body is one JSON-RPC message the gateway has read as UTF-8
            // JSON; the upstream is told exactly that, so no charset the
            // agent names can make it read other names than the gateway did.
            if !body.is_empty() {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            }
            if let Some((name, value)) = credential.header_to_inject() {
                headers.insert(name, value);
            }
        }
        let outgoing = builder
            .body(Full::new(body))
            .map_err(|_| UpstreamFailure::Unreachable)?;
        match tokio::time::timeout(self.response_timeout, self.client.request(outgoing)).await {
            Err(_) => Err(UpstreamFailure::Timeout),
            Ok(Err(e)) => {
                tracing::warn!(upstream = %upstream.name, error = %e, "upstream request failed");
                Err(UpstreamFailure::Unreachable)
            }
            Ok(Ok(response)) => Ok(response),
        }
    }

    /// Forwards an authorized `request` (its method, allowed headers and
    /// body) to `upstream`; a stdio upstream's goes to its session's child
    /// instead ([`super::stdio`]), a new child counting against the
    /// address the call came `from`.
    pub async fn forward(
        &self,
        upstream: &Upstream,
        mut request: HttpRequest,
        authorized: &Authorized,
        from: crate::proto::address::AddressKey,
    ) -> Result<Forwarded, UpstreamFailure> {
        let url = match &upstream.transport {
            Transport::Http { url } => url,
            Transport::Stdio(command) => {
                return self
                    .stdio
                    .handle(
                        upstream,
                        command,
                        &request,
                        authorized,
                        self.response_timeout,
                        from,
                    )
                    .await;
            }
        };
        let request_session = session_id(request.fields.lines("mcp-session-id").next());
        let ending = request.method == "DELETE";
        // A new session the table could not record would be unusable: a
        // full table refuses the `initialize` instead.
        if request_session.is_none()
            && matches!(&authorized.message, Some(Message::Request { method, .. }) if method == "initialize")
            && !self.sessions.has_room(
                &authorized.session_owner(&upstream.name),
                std::time::Instant::now(),
            )
        {
            tracing::warn!(upstream = %upstream.name, "the session table is full of other agents' live sessions; initialize refused");
            return Err(UpstreamFailure::SessionsFull);
        }
        // When the token's tools are limited, every answer is filtered,
        // whatever the request looked like: a `tools/list` answer may come
        // back with another spelling of its id (`1.0` sent, `1` answered),
        // a GET stream replays what earlier POSTs' streams carried
        // (`Last-Event-ID`), and an upstream that read another method than
        // the gateway did would answer with a list the request's method
        // does not announce.
        let lists_tools = authorized.grant.limits_tools();
        let body = Bytes::from(std::mem::take(&mut request.body));
        let set = authorized.token.credential_set(&upstream.name);
        let mut credential = std::borrow::Cow::Borrowed(&authorized.credential);
        if let (Credential::OAuth2(grant), Some(id)) = (credential.as_ref(), set)
            && grant.needs_refresh(self.clock.now())
        {
            let fresh = self
                .refresh(&upstream.name, id, grant.access_token.expose())
                .await?;
            credential = std::borrow::Cow::Owned(fresh);
        }
        let resume_from = authorized.resume_from.as_deref();
        let mut response = self
            .send(
                upstream,
                &request,
                url,
                body.clone(),
                &credential,
                resume_from,
            )
            .await?;
        // An upstream OAuth token refused before its known expiry (revoked,
        // or its lifetime unknown): refresh once and try again.
        if response.status() == hyper::StatusCode::UNAUTHORIZED
            && let (Credential::OAuth2(grant), Some(id)) = (credential.as_ref(), set)
            && grant.refresh_token.is_some()
        {
            let fresh = self
                .refresh(&upstream.name, id, grant.access_token.expose())
                .await?;
            response = self
                .send(upstream, &request, url, body, &fresh, resume_from)
                .await?;
        }
        if response.status() == hyper::StatusCode::UNAUTHORIZED {
            tracing::warn!(upstream = %upstream.name, "the upstream refused the gateway's credential");
            return Err(UpstreamFailure::CredentialRefused);
        }
        // A redirect is not passed on either: its `Location` names the
        // upstream, and a client following it would take the call (with the
        // agent's signature) around the gateway.
        if response.status().is_redirection() {
            tracing::warn!(upstream = %upstream.name, status = response.status().as_u16(), "the upstream redirected; its configured URL may be wrong");
            return Err(UpstreamFailure::Failed(response.status().as_u16()));
        }
        if response.status().is_server_error() {
            tracing::warn!(upstream = %upstream.name, status = response.status().as_u16(), "the upstream failed");
            return Err(UpstreamFailure::Failed(response.status().as_u16()));
        }
        let (parts, body) = response.into_parts();
        // The session the answer's events belong to: the call's, or the one
        // an initialize answer opens.
        let stream_session = request_session
            .clone()
            .or_else(|| session_id(parts.headers.get("mcp-session-id").map(|v| v.as_bytes())));
        self.track_session(
            &upstream.name,
            request_session.as_deref(),
            ending,
            &parts,
            authorized,
        );
        let mut headers = parts.headers;
        keep_returnable_headers(&mut headers);
        let status = parts.status.as_u16();
        let media = Media::of(&headers);
        // Every event stream is rewritten (its ids sealed), and with tools
        // limited every answer is read; an encoded body cannot be, and is
        // refused rather than passed on as it is (the gateway never asks
        // for an encoding).
        let rewritten = lists_tools || media == Media::EventStream;
        if rewritten
            && headers
                .get(hyper::header::CONTENT_ENCODING)
                .is_some_and(|v| v.as_bytes() != b"identity")
        {
            return Err(UpstreamFailure::Unfilterable);
        }
        if media == Media::EventStream {
            headers.remove(CONTENT_LENGTH);
            let ids = IdSealer {
                ids: self.event_ids.clone(),
                binding: self.binding(upstream, authorized, stream_session),
            };
            let grant = lists_tools.then(|| authorized.grant.clone());
            return Ok(Forwarded {
                status,
                headers,
                body: ForwardedBody::Stream(Box::pin(SseRewriter::new(body, grant, ids))),
            });
        }
        if !lists_tools {
            return Ok(Forwarded {
                status,
                headers,
                body: ForwardedBody::Upstream(body),
            });
        }
        match media {
            Media::Json => {
                let filtered = filter_json(body, &authorized.grant, self.response_timeout).await?;
                headers.insert(CONTENT_LENGTH, HeaderValue::from(filtered.len()));
                Ok(Forwarded {
                    status,
                    headers,
                    body: ForwardedBody::Full(filtered),
                })
            }
            // Another shape: an empty body (a 202 for a notification) or an
            // error status carries no tool list; a success with content
            // cannot be filtered and is refused.
            Media::EventStream | Media::Other => {
                let body = collect(body, self.response_timeout).await?;
                if !body.is_empty() && parts.status.is_success() {
                    return Err(UpstreamFailure::Unfilterable);
                }
                Ok(Forwarded {
                    status,
                    headers,
                    body: ForwardedBody::Full(body),
                })
            }
        }
    }
}

/// What an answer's `Content-Type` says it is (parameters aside, any case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Media {
    Json,
    EventStream,
    Other,
}

impl Media {
    fn of(headers: &HeaderMap) -> Self {
        let essence = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(str::trim)
            .unwrap_or_default();
        if essence.eq_ignore_ascii_case("application/json") {
            Self::Json
        } else if essence.eq_ignore_ascii_case("text/event-stream") {
            Self::EventStream
        } else {
            Self::Other
        }
    }
}

impl Gateway {
    /// Keeps the session table in step with the upstream: a success that
    /// hands out an `Mcp-Session-Id` the call did not carry opens a session
    /// for the call's key and set; a successful DELETE of a session ends it.
    fn track_session(
        &self,
        upstream: &str,
        sent: Option<&str>,
        ending: bool,
        parts: &hyper::http::response::Parts,
        authorized: &Authorized,
    ) {
        if !parts.status.is_success() {
            return;
        }
        match sent {
            Some(session) if ending => self.sessions.end(upstream, session),
            Some(_) => {}
            None => {
                if let Some(session) =
                    session_id(parts.headers.get("mcp-session-id").map(|v| v.as_bytes()))
                    && !self.sessions.open(
                        upstream,
                        &session,
                        authorized.session_owner(upstream),
                        std::time::Instant::now(),
                    )
                {
                    tracing::warn!(
                        upstream,
                        "a new session was not recorded: the table is full of other agents' live sessions, or its id is another agent's"
                    );
                }
            }
        }
    }
}

/// An `Mcp-Session-Id` value, if present and well formed (visible ASCII,
/// as the transport requires).
fn session_id(value: Option<&[u8]>) -> Option<String> {
    let value = value?;
    (!value.is_empty() && value.iter().all(|b| (0x21..=0x7e).contains(b)))
        .then(|| String::from_utf8_lossy(value).into_owned())
}

/// Copies the agent's headers that may go upstream into `out`. A parsed
/// header map (the HTTP edge's) is copied from directly: its names are
/// lowercase and its values valid already, and cloning them shares their
/// bytes instead of parsing them again.
fn copy_forwardable(fields: &crate::proto::httpsig::Fields, out: &mut HeaderMap) {
    if let Some(map) = fields.header_map() {
        for (name, value) in map {
            if forwardable(name.as_str()) {
                out.append(name.clone(), value.clone());
            }
        }
        return;
    }
    for (name, value) in fields.iter() {
        // Lowercase (and allocate) only a name that is not lowercase yet.
        let lower = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            std::borrow::Cow::Owned(name.to_ascii_lowercase())
        } else {
            std::borrow::Cow::Borrowed(name)
        };
        if !forwardable(&lower) {
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(lower.as_bytes()),
            HeaderValue::from_bytes(value),
        ) {
            out.append(name, value);
        }
    }
}

/// Whether an upstream's response header may go back to the agent.
fn returnable(name: &HeaderName) -> bool {
    FORWARDED_RESPONSE_HEADERS.contains(&name.as_str()) || name.as_str().starts_with("mcp-")
}

/// Keeps only the [`returnable`] headers of an upstream's answer. An answer
/// whose names all are (the usual case) is left as it is.
fn keep_returnable_headers(headers: &mut HeaderMap) {
    if headers.keys().all(returnable) {
        return;
    }
    let mut kept = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers.iter() {
        if returnable(name) {
            kept.append(name.clone(), value.clone());
        }
    }
    *headers = kept;
}

/// Whether an agent's header (lowercase name) may go upstream.
pub fn forwardable(name: &str) -> bool {
    FORWARDED_REQUEST_HEADERS.contains(&name) || name.starts_with("mcp-")
}

/// The `id` of a JSON-RPC body, or `null`.
pub fn request_id(body: &[u8]) -> Value {
    #[derive(serde::Deserialize)]
    struct Id {
        #[serde(default)]
        id: Value,
    }
    serde_json::from_slice::<Id>(body)
        .map(|i| i.id)
        .unwrap_or(Value::Null)
}

/// An upstream's body, whole (at most [`MAX_FILTERED`] bytes). Read until
/// the body says it is complete (its declared length reached), not until
/// its channel closes: hyper's client closes it only on a later turn of
/// its connection task, and waiting for that costs every filtered answer a
/// round trip between tasks. A body in one frame (a small answer) is kept
/// as that frame, uncopied.
async fn collect(mut body: Incoming, timeout: Duration) -> Result<Bytes, UpstreamFailure> {
    use hyper::body::Body as _;
    let read = async move {
        let mut first: Option<Bytes> = None;
        let mut more = BytesMut::new();
        while !body.is_end_stream() {
            let Some(frame) = body.frame().await else {
                break;
            };
            let Ok(data) = frame
                .map_err(|_| UpstreamFailure::Unfilterable)?
                .into_data()
            else {
                // Trailers: nothing of the answer.
                continue;
            };
            match first.take() {
                None if more.is_empty() => first = Some(data),
                held => {
                    more.extend_from_slice(&held.unwrap_or_default());
                    more.extend_from_slice(&data);
                }
            }
            if first.as_ref().map_or(0, Bytes::len) + more.len() > MAX_FILTERED {
                return Err(UpstreamFailure::Unfilterable);
            }
        }
        Ok(first.unwrap_or_else(|| more.freeze()))
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| UpstreamFailure::Timeout)?
}

/// A JSON answer with its tool lists filtered. One that carries none (most
/// do not) goes back as it came; an empty one (a 202) too; one that is not
/// JSON cannot be filtered.
async fn filter_json(
    body: Incoming,
    grant: &UpstreamGrant,
    timeout: Duration,
) -> Result<Bytes, UpstreamFailure> {
    let collected = collect(body, timeout).await?;
    if collected.is_empty() {
        return Ok(collected);
    }
    match carries_tool_list(&collected) {
        None => return Err(UpstreamFailure::Unfilterable),
        Some(false) => return Ok(collected),
        Some(true) => {}
    }
    let mut value: Value =
        serde_json::from_slice(&collected).map_err(|_| UpstreamFailure::Unfilterable)?;
    grant.filter_tools_list(&mut value);
    serde_json::to_vec(&value)
        .map(Bytes::from)
        .map_err(|_| UpstreamFailure::Unfilterable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_transport_and_retry_headers_come_back_from_the_upstream() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert("mcp-session-id", HeaderValue::from_static("s"));
        headers.insert("retry-after", HeaderValue::from_static("5"));
        let before = headers.clone();
        // An answer with nothing to drop is left as it is.
        keep_returnable_headers(&mut headers);
        assert_eq!(headers, before);
        for name in [
            "set-cookie",
            "www-authenticate",
            "connection",
            "transfer-encoding",
            "alt-svc",
            "strict-transport-security",
            "access-control-allow-origin",
            "clear-site-data",
            "location",
            "link",
            "server",
            "x-upstream-secret",
        ] {
            headers.append(HeaderName::from_static(name), HeaderValue::from_static("x"));
        }
        headers.append("mcp-session-id", HeaderValue::from_static("t"));
        keep_returnable_headers(&mut headers);
        let names: Vec<_> = headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["content-type", "mcp-session-id", "retry-after"]);
        assert_eq!(headers.get_all("mcp-session-id").iter().count(), 2);
    }

    #[test]
    fn only_transport_headers_go_upstream() {
        for ok in [
            "accept",
            "content-type",
            "mcp-session-id",
            "mcp-protocol-version",
            "mcp-method",
            "mcp-name",
            "last-event-id",
        ] {
            assert!(forwardable(ok), "{ok}");
        }
        for no in [
            "authorization",
            "signature",
            "signature-input",
            "content-digest",
            "cookie",
            "proxy-authorization",
            "forwarded",
            "x-forwarded-for",
            "x-forwarded-host",
            "connection",
            "te",
            "upgrade",
            "host",
            "x-api-key",
            "content-length",
            "origin",
        ] {
            assert!(!forwardable(no), "{no}");
        }
    }

    #[test]
    fn request_ids_are_read_from_the_body() {
        assert_eq!(
            request_id(br#"{"jsonrpc":"2.0","id":"a","method":"x"}"#),
            json!("a")
        );
        assert_eq!(
            request_id(br#"{"jsonrpc":"2.0","method":"x"}"#),
            Value::Null
        );
        assert_eq!(request_id(b"nope"), Value::Null);
    }
}
