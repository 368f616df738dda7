//! The MCP gateway's decision (sans I/O): may this signed call reach this
//! upstream, and with which grant? The order is fixed: the token is found
//! and unexpired, the signature verified with the key it is bound to (RFC
//! 9635 §7.3.1), and only then is the body read and the grant consulted.
//! [`open`] and [`conclude`] cut the decision around the signature's
//! cryptography so that `batching` can check waiting calls together;
//! [`authorize`] is the two with one check between them. [`forward`] runs
//! the decision and forwards; each error says its answer (`reply`), which
//! the HTTP edge only writes.

pub(crate) mod answer;
pub(crate) mod batching;
pub mod external;
pub mod forward;
pub mod oauth;
mod refusal;
pub(crate) mod reply;
pub mod sessions;
pub(crate) mod sse;
pub mod stdio;

pub use refusal::Refusal;

use crate::proto::httpsig::batch::{self, Checked, Pending};
use crate::proto::httpsig::{GnapProfile, HttpRequest, NonceStore};
use crate::proto::jwk::VerifyingKey;
use crate::proto::jws_proof;
use crate::proto::mcp::access::{Denied, UpstreamGrant, decide};
use crate::proto::mcp::jsonrpc::{self, Message};
use crate::store::{Store, TokenHash, TokenRecord};

/// Headers a signature must cover whenever the request carries them: a
/// policy that reads them must not see values changed in flight.
const MCP_HEADERS: [&str; 4] = [
    "mcp-protocol-version",
    "mcp-session-id",
    "mcp-method",
    "mcp-name",
];

/// A call the gateway may forward.
#[derive(Debug)]
pub struct Authorized {
    /// The token's record (grant, key, rights), shared with the store's
    /// cache: read per call, never copied.
    pub token: std::sync::Arc<TokenRecord>,
    /// What the token may do at this upstream (for filtering results).
    pub grant: UpstreamGrant,
    /// The message, when the request carried one.
    pub message: Option<Message>,
    /// What to present upstream: filled by the gateway from the token's
    /// credential set for this upstream (`None` until then).
    pub credential: crate::upstream::credential::Credential,
    /// The upstream's own event id to resume from, once the gateway has
    /// opened the agent's sealed `Last-Event-ID`
    /// (`forward::Gateway::check_resumption`).
    pub resume_from: Option<String>,
}

impl Authorized {
    /// Who the call's session (if any) must belong to at `upstream`.
    pub(crate) fn session_owner(&self, upstream: &str) -> sessions::Owner {
        sessions::Owner {
            thumbprint: self.owner(),
            credential_set: self.token.credential_set(upstream).map(str::to_owned),
        }
    }

    /// Whose sessions and streams the call's are: the key the token is
    /// bound to; for an OAuth bearer token, which proves no key, its grant
    /// (one client's authorization, kept across refreshes), so that two
    /// clients never share a session whatever key record their tokens carry.
    pub(crate) fn owner(&self) -> String {
        match &self.token.oauth {
            Some(oauth) if !oauth.dpop => format!("oauth-grant:{}", self.token.grant.0),
            _ => self.token.key.thumbprint.clone(),
        }
    }
}

/// Decoded verifying keys by JWK thumbprint. A key never changes for its
/// thumbprint, so decoding (JWK parse, curve point decompression) is done
/// once per key rather than once per call; the token itself is still looked
/// up on every call, so revocation and rotation take effect at once.
#[derive(Default)]
pub struct KeyCache {
    keys: std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<VerifyingKey>>>,
}

/// Most keys kept; the cache is emptied when full (agents' keys are many and
/// short-lived, so an LRU would buy little).
const KEY_CACHE_CAPACITY: usize = 65_536;

impl KeyCache {
    /// Keys held, and their bytes: the thumbprint and the public JWK's
    /// text.
    pub(crate) fn size(&self) -> crate::store::TableSize {
        let mut size = crate::store::TableSize::default();
        if let Ok(keys) = self.keys.lock() {
            for (thumbprint, key) in keys.iter() {
                let jwk = key.public_jwk().map_or(0, |j| j.to_string().len());
                size.add(thumbprint.len(), jwk);
            }
        }
        size
    }

    fn key(
        &self,
        binding: &crate::store::KeyBinding,
    ) -> Result<std::sync::Arc<VerifyingKey>, Refusal> {
        if let Ok(keys) = self.keys.lock()
            && let Some(key) = keys.get(&binding.thumbprint)
        {
            return Ok(key.clone());
        }
        let key = std::sync::Arc::new(
            VerifyingKey::from_presented_jwk(&binding.jwk).map_err(|_| Refusal::Token)?,
        );
        // A stored binding whose JWK hashes to another thumbprint is corrupt;
        // never cache it under the wrong name.
        if key.thumbprint().as_str() != binding.thumbprint {
            return Err(Refusal::Token);
        }
        if let Ok(mut keys) = self.keys.lock() {
            if keys.len() >= KEY_CACHE_CAPACITY {
                keys.clear();
            }
            keys.insert(binding.thumbprint.clone(), key.clone());
        }
        Ok(key)
    }
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyCache")
    }
}

/// Decides whether `request`, aimed at `upstream`, may pass: [`open`], the
/// signature checked alone, [`conclude`].
pub fn authorize(
    store: &dyn Store,
    profile: &GnapProfile,
    upstream: &str,
    request: &HttpRequest,
    now: i64,
) -> Result<Authorized, Refusal> {
    let (opened, pending) = open(store, &KeyCache::default(), profile, request, now)?;
    let checked = pending.and_then(|p| batch::check(vec![p]).0.pop().flatten());
    conclude(store, profile, upstream, request, now, opened, checked)
}

/// A call whose token was found, between [`open`] and [`conclude`].
#[derive(Debug)]
pub struct Opened {
    token: std::sync::Arc<TokenRecord>,
    /// The key whose HTTP message signature [`conclude`] checks; `None`
    /// for a bearer token and for a JWS proof [`open`] already checked.
    key: Option<std::sync::Arc<VerifyingKey>>,
    /// For a token bound with `jws`: the verified payload of the
    /// `application/jose` body, the JSON-RPC message the call carries.
    content: Option<Vec<u8>>,
}

impl Opened {
    /// Puts the verified `jws` payload in place of the body it came in, as
    /// JSON: what [`conclude`] reads and the upstream receives.
    pub fn unwrap_content(&mut self, request: &mut HttpRequest) {
        if let Some(content) = self.content.take() {
            request.body = content;
            request.fields.set("content-type", "application/json");
        }
    }
}

/// The first half of [`authorize_with`], for a caller that checks
/// signatures in batches: finds the token and screens the request's
/// signature (every rule of the profile but the cryptography and the replay
/// cache). The [`Pending`] signature, if any, goes to
/// [`batch::check`] (alone or with others); its answer to [`conclude`].
pub fn open(
    store: &dyn Store,
    keys: &KeyCache,
    profile: &GnapProfile,
    request: &HttpRequest,
    now: i64,
) -> Result<(Opened, Option<Pending>), Refusal> {
    let (scheme, value) = oauth::presented(request).ok_or(Refusal::Token)?;
    let token = store
        .token_shared(&TokenHash::of(value))?
        .filter(|t| t.expires_at >= now)
        .ok_or_else(|| oauth::invalid(scheme))?;
    if scheme != oauth::Scheme::Gnap {
        let opened = oauth::open(store, keys, request, token, scheme, value, now)?;
        return Ok((opened, None));
    }
    // An OAuth token is no GNAP token, whatever its key.
    if token.oauth.is_some() {
        return Err(Refusal::Token);
    }
    if token.bearer {
        let opened = Opened {
            token,
            key: None,
            content: None,
        };
        return Ok((opened, None));
    }
    if token.key.method == crate::proto::gnap::ProofKind::Mtls {
        // §7.3.2: the TLS connection proved the certificate and covers the
        // whole call; it must be the certificate the token is bound to.
        if request
            .client_cert
            .as_ref()
            .is_none_or(|cert| cert.thumbprint() != token.key.thumbprint)
        {
            return Err(Refusal::CertificateMismatch);
        }
        let opened = Opened {
            token,
            key: None,
            content: None,
        };
        return Ok((opened, None));
    }
    let key = keys.key(&token.key)?;
    if let Some(method) = jws_proof::JwsMethod::of(token.key.method) {
        // A JWS proof is checked here, whole, outside the batch (which
        // knows Ed25519 signature bases only); `ath` is required because
        // the call presents its token. It covers the method, the URI, the
        // token and the content; the MCP routing headers are checked
        // against the (signed) body in `conclude`.
        let verified = jws_proof::verify(
            method,
            request,
            &key,
            profile,
            now,
            store as &dyn NonceStore,
        )?;
        let opened = Opened {
            token,
            key: None,
            content: verified.content,
        };
        return Ok((opened, None));
    }
    let pending = profile.screen(request, &key, now);
    Ok((
        Opened {
            token,
            key: Some(key),
            content: None,
        },
        pending,
    ))
}

/// The second half of [`authorize_with`]. `checked` is the answer for the
/// signature [`open`] screened; the profile finishes the check from it
/// ([`GnapProfile::finish`]), deciding and naming the rule that failed
/// exactly as if nothing had been screened.
pub fn conclude(
    store: &dyn Store,
    profile: &GnapProfile,
    upstream: &str,
    request: &HttpRequest,
    now: i64,
    opened: Opened,
    checked: Option<Checked>,
) -> Result<Authorized, Refusal> {
    let Opened {
        token,
        key,
        content,
    } = opened;
    // The message a `jws` proof carried, when the caller did not already
    // put it in place of the body ([`Opened::unwrap_content`]).
    let body = content.as_deref().unwrap_or(&request.body);
    if let Some(key) = key {
        let replay = store as &dyn NonceStore;
        let verified = profile.finish(request, &key, checked, now, replay)?;
        for header in MCP_HEADERS {
            if request.fields.contains(header)
                && !verified.covered.iter().any(|c| c.is_plain_field(header))
            {
                return Err(Refusal::Uncovered(header));
            }
        }
    }
    // One value each: the session, method and name checked here must be the
    // ones the upstream reads.
    if let Some(header) = MCP_HEADERS
        .into_iter()
        .find(|h| request.fields.lines(h).nth(1).is_some())
    {
        return Err(Refusal::RepeatedHeader(header));
    }
    // A POST carries one message (an empty body is no JSON); GET and
    // DELETE none (the HTTP edge refuses them a body).
    let message = if body.is_empty() && request.method != "POST" {
        None
    } else {
        Some(jsonrpc::parse(body)?)
    };
    if let Some(message) = &message {
        check_routing_headers(request, message)?;
    }
    let grant = match &message {
        Some(m) => decide(&token.access, upstream, m),
        // GET (server stream) and DELETE (end session) carry no message; the
        // token still has to reach this upstream at all.
        None => UpstreamGrant::for_upstream(&token.access, upstream)
            .ok_or_else(|| Denied::Upstream(upstream.to_owned())),
    }
    .map_err(|denied| oauth::denied(&token, upstream, message.as_ref(), denied))?;
    Ok(Authorized {
        token,
        grant,
        message,
        credential: crate::upstream::credential::Credential::None,
        resume_from: None,
    })
}

/// MCP 2026-07-28: `Mcp-Method` (and `Mcp-Name` where the method names a
/// target) must equal the body's.
fn check_routing_headers(request: &HttpRequest, message: &Message) -> Result<(), Refusal> {
    let header = |name: &str| {
        request
            .fields
            .lines(name)
            .next()
            .map(|v| String::from_utf8_lossy(v).trim().to_owned())
    };
    let (method, target) = match message {
        Message::Request { method, target } => (Some(method.as_str()), target.as_deref()),
        Message::Notification { method } => (Some(method.as_str()), None),
        Message::Response => (None, None),
    };
    if let Some(sent) = header("mcp-method")
        && Some(sent.as_str()) != method
    {
        return Err(Refusal::HeaderMismatch("Mcp-Method"));
    }
    if let Some(sent) = header("mcp-name")
        && Some(sent.as_str()) != target
    {
        return Err(Refusal::HeaderMismatch("Mcp-Name"));
    }
    Ok(())
}
