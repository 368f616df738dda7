//! gnapd as an OAuth client using the authorization code flow (RFC 6749
//! §4.1) with PKCE S256 (RFC 7636), sans I/O: the checks of a client's
//! config, the authorization request URL, the token request exchanging a
//! code, and the single-use `state`s of sign-ins under way. Shared by the
//! "connect the upstream" flow (`crate::upstream::connect`) and the OIDC
//! login of the person deciding (`crate::authz::login`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::proto::address::AddressKey;
use crate::proto::b64;
use crate::random::NoRandomness;
use crate::store::HandoffKind;
use crate::upstream::Secret;
use crate::upstream::oauth2::{TokenRequest, client_token_request, form_encode};
use crate::upstream::sealed_handoffs::SealedHandoffs;

/// How long a person has to come back from a sign-in (seconds).
pub const STATE_LIFETIME: i64 = 600;

/// Why a client's config was refused; `prefix` names its config section.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientConfigError {
    /// An endpoint that does not parse as a URL.
    #[error("{prefix} {what} is not a URL")]
    NotUrl {
        /// The config section.
        prefix: String,
        /// Which endpoint.
        what: String,
    },
    /// An endpoint that is not an http(s) URL with a host and no fragment.
    #[error("{prefix} {what} must be an http(s) URL")]
    NotHttp {
        /// The config section.
        prefix: String,
        /// Which endpoint.
        what: String,
    },
    /// No client id.
    #[error("{0} needs a client_id")]
    NoClientId(String),
    /// A scope that is not an RFC 6749 scope token.
    #[error("{0} scopes must be RFC 6749 scope tokens")]
    Scopes(String),
}

/// Checks a client's config: `(what, url)` endpoints that are http(s)
/// URLs without a fragment, a client id, RFC 6749 scope tokens. `prefix`
/// names the config section in messages.
pub fn check(
    prefix: &str,
    endpoints: &[(&str, &str)],
    client_id: &str,
    scopes: &[String],
) -> Result<(), ClientConfigError> {
    for (what, url) in endpoints {
        let parsed: hyper::Uri = url.parse().map_err(|_| ClientConfigError::NotUrl {
            prefix: prefix.to_owned(),
            what: (*what).to_owned(),
        })?;
        if !matches!(parsed.scheme_str(), Some("http" | "https"))
            || parsed.host().is_none()
            || url.contains('#')
        {
            return Err(ClientConfigError::NotHttp {
                prefix: prefix.to_owned(),
                what: (*what).to_owned(),
            });
        }
    }
    if client_id.is_empty() {
        return Err(ClientConfigError::NoClientId(prefix.to_owned()));
    }
    if scopes.iter().any(|s| {
        s.is_empty()
            || s.bytes()
                .any(|b| b <= b' ' || b == b'"' || b == b'\\' || b > 0x7e)
    }) {
        return Err(ClientConfigError::Scopes(prefix.to_owned()));
    }
    Ok(())
}

/// The authorization request (RFC 6749 §4.1.1 with RFC 7636 §4.3): where
/// the person's browser goes. `extra` parameters follow (e.g. an OIDC
/// `nonce`).
pub fn authorization_url(
    authorization_endpoint: &str,
    client_id: &str,
    scopes: &[String],
    redirect_uri: &str,
    state: &str,
    challenge: &str,
    extra: &[(&str, &str)],
) -> String {
    let mut params = vec![
        ("response_type", "code".to_owned()),
        ("client_id", client_id.to_owned()),
        ("redirect_uri", redirect_uri.to_owned()),
        ("state", state.to_owned()),
        ("code_challenge", challenge.to_owned()),
        ("code_challenge_method", "S256".to_owned()),
    ];
    if !scopes.is_empty() {
        params.push(("scope", scopes.join(" ")));
    }
    params.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let query = params
        .iter()
        .map(|(k, v)| format!("{k}={}", form_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let separator = if authorization_endpoint.contains('?') {
        '&'
    } else {
        '?'
    };
    format!("{authorization_endpoint}{separator}{query}")
}

/// The token request exchanging `code` (RFC 6749 §4.1.3, with the PKCE
/// `code_verifier`).
pub fn code_request(
    token_endpoint: &str,
    client_id: &str,
    client_secret: Option<&Secret>,
    code: &str,
    verifier: &Secret,
    redirect_uri: &str,
) -> TokenRequest {
    client_token_request(
        token_endpoint,
        client_id,
        client_secret,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier.expose()),
        ],
    )
}

/// A sign-in under way: what its `state` stands for, and its PKCE
/// `code_verifier`.
#[derive(Debug, Clone)]
pub struct Started<T> {
    /// What the sign-in is for.
    pub what: T,
    /// The PKCE `code_verifier`.
    pub verifier: Secret,
    /// It is refused after this time (Unix seconds).
    pub expires_at: i64,
    /// SHA-256 of the value the browser that started it holds (a cookie):
    /// only that browser can finish it.
    browser: [u8; 32],
}

/// Sign-ins under way, in memory, by the SHA-256 of their `state` (256
/// random bits), each taken once. A restart forgets them: the person
/// starts the sign-in again.
///
/// Each is bound to the browser that started it (RFC 9700 §4.7.1: the
/// `state` is tied to the user agent's session): a `state` is accepted
/// only from the browser presenting the same cookie value. Otherwise a
/// victim lured to a sign-in URL that an attacker started would, on
/// coming back, attach the victim's account to the attacker's grant.
///
/// Anyone holding a pending grant's page may start sign-ins, so they are
/// bounded ([`SignInBounds`]) per grant, per client address and in all;
/// past a bound the oldest under that bound goes — never the whole table,
/// so that starting sign-ins in bulk on one's own grant, or from one's own
/// address, pushes out only one's own.
///
/// When nodes share a store ([`States::share`]) the sign-ins are its
/// shared entries instead, sealed under the master key, so the callback
/// may land on any node; each `state` is taken once by one `DELETE …
/// RETURNING`. Each node still keeps the bookkeeping of the sign-ins it
/// started (without what they hold) and applies the bounds to them: the
/// shared entry of one pushed out is removed, so the table holds at most
/// the bounds times the nodes.
#[derive(Debug)]
pub struct States<T> {
    pending: Mutex<Pending<T>>,
    bounds: SignInBounds,
    /// Sign-ins pushed out, by the bound that pushed them: grant,
    /// address, all.
    evicted: [AtomicU64; 3],
    /// The shared entries and their kind, when nodes share the store.
    shared: OnceLock<(SealedHandoffs, HandoffKind)>,
}

/// Why a sign-in could not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    /// The random source failed.
    #[error("the random source failed")]
    NoRandomness,
    /// The store the nodes share did not take the sign-in.
    #[error("the shared store is unavailable")]
    Unavailable,
}

impl From<NoRandomness> for StartError {
    fn from(_: NoRandomness) -> Self {
        Self::NoRandomness
    }
}

/// A sign-in as the shared entry holds it (sealed).
#[derive(Serialize, Deserialize)]
struct SharedStarted<T> {
    what: T,
    verifier: Secret,
    expires_at: i64,
    browser: [u8; 32],
}

/// How many sign-ins may be under way (`[sign_ins]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignInBounds {
    /// In all.
    pub max: usize,
    /// For one grant.
    pub per_grant: usize,
    /// Started from one client address (an IPv6 /64).
    pub per_address: usize,
}

impl Default for SignInBounds {
    fn default() -> Self {
        Self {
            max: 10_000,
            per_grant: 8,
            per_address: 64,
        }
    }
}

/// The `[sign_ins]` table as the file writes it.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignInsFile {
    /// `max = 10000`
    pub max: Option<usize>,
    /// `per_grant = 8`
    pub per_grant: Option<usize>,
    /// `per_address = 64`
    pub per_address: Option<usize>,
}

/// A `[sign_ins]` bound of zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("sign_ins max, per_grant and per_address must be positive")]
pub struct BoundsError;

impl SignInBounds {
    /// The bounds `file` sets over the defaults (each at least 1).
    pub fn from_file(file: &SignInsFile) -> Result<Self, BoundsError> {
        let defaults = Self::default();
        let bounds = Self {
            max: file.max.unwrap_or(defaults.max),
            per_grant: file.per_grant.unwrap_or(defaults.per_grant),
            per_address: file.per_address.unwrap_or(defaults.per_address),
        };
        if bounds.max == 0 || bounds.per_grant == 0 || bounds.per_address == 0 {
            return Err(BoundsError);
        }
        Ok(bounds)
    }
}

#[derive(Debug)]
struct Entry<T> {
    /// What it holds; `None` when that is in the shared entries.
    started: Option<Started<T>>,
    expires_at: i64,
    seq: u64,
    grant: String,
    from: AddressKey,
}

/// The table: entries by state digest, and the order they were started
/// in, in all, per grant and per address (each oldest first). Every
/// entry has the same lifetime, so the oldest expire first.
#[derive(Debug)]
struct Pending<T> {
    by_state: HashMap<[u8; 32], Entry<T>>,
    order: BTreeMap<u64, [u8; 32]>,
    per_grant: HashMap<String, VecDeque<u64>>,
    per_address: HashMap<AddressKey, VecDeque<u64>>,
    next: u64,
}

impl<T> Default for Pending<T> {
    fn default() -> Self {
        Self {
            by_state: HashMap::new(),
            order: BTreeMap::new(),
            per_grant: HashMap::new(),
            per_address: HashMap::new(),
            next: 0,
        }
    }
}

/// Drops `seq` from one of the per-grant or per-address orders (at most
/// a bound's length to look through).
fn unlist<K: std::hash::Hash + Eq>(orders: &mut HashMap<K, VecDeque<u64>>, key: &K, seq: u64) {
    if let Some(order) = orders.get_mut(key) {
        if let Some(i) = order.iter().position(|s| *s == seq) {
            order.remove(i);
        }
        if order.is_empty() {
            orders.remove(key);
        }
    }
}

impl<T> Pending<T> {
    /// Drops entry `seq`: its state's digest, and what it held (`None` for
    /// a shared one).
    fn remove(&mut self, seq: u64) -> Option<([u8; 32], Option<Started<T>>)> {
        let key = self.order.remove(&seq)?;
        let entry = self.by_state.remove(&key)?;
        unlist(&mut self.per_grant, &entry.grant, seq);
        unlist(&mut self.per_address, &entry.from, seq);
        Some((key, entry.started))
    }

    fn expire(&mut self, now: i64) {
        while let Some((&seq, key)) = self.order.first_key_value() {
            if self.by_state.get(key).is_some_and(|e| e.expires_at >= now) {
                return;
            }
            self.remove(seq);
        }
    }
}

impl<T> Default for States<T> {
    fn default() -> Self {
        Self::new(SignInBounds::default())
    }
}

fn state_key(state: &str) -> [u8; 32] {
    crate::proto::hash::sha256(state.as_bytes())
}

impl<T> States<T> {
    /// Sign-ins under way, and their bytes: the state's digest, the grant,
    /// and the entry itself (what it is for counted at its fixed size).
    pub fn size(&self) -> crate::store::TableSize {
        let mut size = crate::store::TableSize::default();
        if let Ok(pending) = self.pending.lock() {
            for entry in pending.by_state.values() {
                size.add(32, entry.grant.len() + std::mem::size_of::<Entry<T>>());
            }
        }
        size
    }

    /// No sign-in under way yet, under `bounds`.
    pub fn new(bounds: SignInBounds) -> Self {
        Self {
            pending: Mutex::new(Pending::default()),
            bounds,
            evicted: Default::default(),
            shared: OnceLock::new(),
        }
    }

    /// From now on, keeps the sign-ins in `shared` as entries of `kind`
    /// (once; a second call changes nothing).
    pub fn share(&self, shared: SealedHandoffs, kind: HandoffKind) {
        let _ = self.shared.set((shared, kind));
    }

    /// Starts a sign-in for `what`, on `grant`'s page, at `now`, from
    /// client address `from` and the browser holding `browser`: the
    /// `state` and the PKCE S256 `code_challenge` to send.
    pub fn start(
        &self,
        what: T,
        grant: &str,
        from: AddressKey,
        browser: &str,
        now: i64,
    ) -> Result<(String, String), StartError>
    where
        T: Serialize,
    {
        let state = crate::random::text()?;
        let verifier = Secret::new(crate::random::text()?);
        let challenge = b64::encode_url(&crate::proto::hash::sha256(verifier.expose().as_bytes()));
        let expires_at = now.saturating_add(STATE_LIFETIME);
        let browser = state_key(browser);
        let shared = self.shared.get();
        let started = match shared {
            Some((entries, kind)) => {
                let entry = SharedStarted {
                    what,
                    verifier,
                    expires_at,
                    browser,
                };
                entries
                    .put(*kind, &state, &entry, expires_at)
                    .map_err(|e| {
                        tracing::error!(error = %e, "a sign-in could not be shared");
                        StartError::Unavailable
                    })?;
                None
            }
            None => Some(Started {
                what,
                verifier,
                expires_at,
                browser,
            }),
        };
        let pushed_out = {
            let mut pending = self.pending.lock().map_err(|_| NoRandomness)?;
            let pushed_out = self.make_room(&mut pending, grant, from, now);
            pending.next += 1;
            let seq = pending.next;
            let key = state_key(&state);
            pending.by_state.insert(
                key,
                Entry {
                    started,
                    expires_at,
                    seq,
                    grant: grant.to_owned(),
                    from,
                },
            );
            pending.order.insert(seq, key);
            pending
                .per_grant
                .entry(grant.to_owned())
                .or_default()
                .push_back(seq);
            pending.per_address.entry(from).or_default().push_back(seq);
            pushed_out
        };
        // A shared sign-in pushed out goes from the shared entries too
        // (outside the lock: a round trip each).
        if let Some((entries, kind)) = shared {
            for key in pushed_out {
                if let Err(e) = entries.remove_digest(*kind, &key) {
                    tracing::warn!(error = %e, "a pushed-out shared sign-in could not be removed; it lapses");
                }
            }
        }
        Ok((state, challenge))
    }

    /// Applies the bounds before one more sign-in of `grant` from `from`:
    /// lapsed entries go, then the oldest under each bound reached. The
    /// digests of the shared entries pushed out (their rows to remove).
    fn make_room(
        &self,
        pending: &mut Pending<T>,
        grant: &str,
        from: AddressKey,
        now: i64,
    ) -> Vec<[u8; 32]> {
        pending.expire(now);
        let bounds = self.bounds;
        let mut pushed_out = Vec::new();
        let oldest_of_grant = pending
            .per_grant
            .get(grant)
            .filter(|o| o.len() >= bounds.per_grant)
            .and_then(|o| o.front().copied());
        let oldest_of_address = pending
            .per_address
            .get(&from)
            .filter(|o| o.len() >= bounds.per_address)
            .and_then(|o| o.front().copied());
        for (bound, oldest) in [(0, oldest_of_grant), (1, oldest_of_address)] {
            if let Some(seq) = oldest
                && let Some((key, held)) = pending.remove(seq)
            {
                self.count_eviction(bound);
                if held.is_none() {
                    pushed_out.push(key);
                }
            }
        }
        if pending.by_state.len() >= bounds.max
            && let Some(seq) = pending.order.first_key_value().map(|(s, _)| *s)
            && let Some((key, held)) = pending.remove(seq)
        {
            self.count_eviction(2);
            if held.is_none() {
                pushed_out.push(key);
            }
        }
        pushed_out
    }

    fn count_eviction(&self, bound: usize) {
        if let Some(counter) = self.evicted.get(bound) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The sign-in `state` stands for, taken: a state works once, not
    /// after it expired, and only from the browser that started it (its
    /// `browser` value). Presented by another browser it is used up all
    /// the same: a state that leaked finishes nothing.
    pub fn take(&self, state: &str, browser: Option<&str>, now: i64) -> Option<Started<T>>
    where
        T: DeserializeOwned,
    {
        // This node's bookkeeping of it goes either way (a shared one
        // started here no longer counts against the bounds).
        let held = {
            let mut pending = self.pending.lock().ok()?;
            let seq = pending.by_state.get(&state_key(state)).map(|e| e.seq);
            seq.and_then(|seq| pending.remove(seq))
                .and_then(|(_, held)| held)
        };
        let started = match self.shared.get() {
            Some((shared, kind)) => Self::take_shared(shared, *kind, state, now)?,
            None => held.filter(|p| p.expires_at >= now)?,
        };
        let same_browser = browser.is_some_and(|b| {
            bool::from(subtle::ConstantTimeEq::ct_eq(
                &state_key(b)[..],
                &started.browser[..],
            ))
        });
        same_browser.then_some(started)
    }

    /// The shared sign-in `state` names, taken (the row deleted whoever
    /// presents it, as in memory).
    fn take_shared(
        shared: &SealedHandoffs,
        kind: HandoffKind,
        state: &str,
        now: i64,
    ) -> Option<Started<T>>
    where
        T: DeserializeOwned,
    {
        let taken: SharedStarted<T> = shared
            .take(kind, state, now)
            .map_err(|e| tracing::error!(error = %e, "a shared sign-in could not be taken"))
            .ok()??;
        Some(Started {
            what: taken.what,
            verifier: taken.verifier,
            expires_at: taken.expires_at,
            browser: taken.browser,
        })
    }

    /// Sign-ins under way now.
    pub fn len(&self) -> usize {
        self.pending.lock().map_or(0, |p| p.by_state.len())
    }

    /// No sign-in under way.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The counters, in the Prometheus text format, labelled with `flow`
    /// (`login` or `connect`).
    pub fn render(&self, flow: &str, out: &mut String) {
        use std::fmt::Write as _;
        let _ = writeln!(
            out,
            "gnapd_sign_ins_pending{{flow=\"{flow}\"}} {}",
            self.len()
        );
        for (bound, counter) in ["grant", "address", "all"].iter().zip(&self.evicted) {
            let _ = writeln!(
                out,
                "gnapd_sign_ins_evicted_total{{flow=\"{flow}\",bound=\"{bound}\"}} {}",
                counter.load(Ordering::Relaxed)
            );
        }
    }
}

/// The help and type lines of the series [`States::render`] writes.
pub const METRICS_HEADER: &str = "# HELP gnapd_sign_ins_pending Sign-ins under way (login at the IdP, or connecting an upstream).\n# TYPE gnapd_sign_ins_pending gauge\n# HELP gnapd_sign_ins_evicted_total Sign-ins under way pushed out by a newer one, by the bound reached.\n# TYPE gnapd_sign_ins_evicted_total counter\n";

#[cfg(test)]
mod tests {
    use super::*;

    const HERE: AddressKey = AddressKey::V4(1);
    const BOUNDS: SignInBounds = SignInBounds {
        max: 6,
        per_grant: 2,
        per_address: 3,
    };

    fn started(states: &States<u32>, what: u32, grant: &str, from: AddressKey) -> String {
        states.start(what, grant, from, "b", 1_000).unwrap().0
    }

    #[test]
    fn sign_ins_in_bulk_on_one_grant_push_out_only_that_grants_oldest() {
        let states = States::new(BOUNDS);
        let victim = started(&states, 0, "victim", AddressKey::V4(9));
        let mine: Vec<String> = (1..=50)
            .map(|i| started(&states, i, "attacker", AddressKey::V4(100 + i)))
            .collect();
        assert_eq!(states.len(), 1 + BOUNDS.per_grant);
        assert!(states.take(&mine[0], Some("b"), 1_001).is_none());
        assert_eq!(states.take(&mine[49], Some("b"), 1_001).unwrap().what, 50);
        assert_eq!(states.take(&victim, Some("b"), 1_001).unwrap().what, 0);
    }

    #[test]
    fn sign_ins_in_bulk_from_one_address_push_out_only_that_addresses_oldest() {
        let states = States::new(BOUNDS);
        let victim = started(&states, 0, "victim", AddressKey::V4(9));
        for i in 1..=50 {
            started(&states, i, &format!("grant-{i}"), HERE);
        }
        assert_eq!(states.len(), 1 + BOUNDS.per_address);
        assert_eq!(states.take(&victim, Some("b"), 1_001).unwrap().what, 0);
    }

    #[test]
    fn past_the_global_bound_the_oldest_goes_and_the_rest_stay() {
        let states = States::new(BOUNDS);
        let all: Vec<String> = (0..10)
            .map(|i| started(&states, i, &format!("g{i}"), AddressKey::V4(i)))
            .collect();
        assert_eq!(states.len(), BOUNDS.max);
        for (i, state) in all.iter().enumerate() {
            let taken = states.take(state, Some("b"), 1_001).map(|s| s.what);
            // Never a wipe: the newest six all remain.
            assert_eq!(taken, (i >= 4).then_some(u32::try_from(i).unwrap()), "{i}");
        }
        assert_eq!(states.len(), 0);
        let mut text = String::new();
        states.render("login", &mut text);
        assert!(text.contains("gnapd_sign_ins_evicted_total{flow=\"login\",bound=\"all\"} 4"));
    }

    #[test]
    fn expired_sign_ins_go_first_and_are_refused() {
        let states = States::new(BOUNDS);
        let old = started(&states, 1, "g", HERE);
        assert!(
            states
                .take(&old, Some("b"), 1_000 + STATE_LIFETIME + 1)
                .is_none()
        );
        let old = started(&states, 2, "g", HERE);
        // A start after its expiry clears it out.
        states
            .start(3, "h", AddressKey::V4(2), "b", 1_000 + STATE_LIFETIME + 1)
            .unwrap();
        assert_eq!(states.len(), 1);
        assert!(states.take(&old, Some("b"), 1_001).is_none());
    }

    #[test]
    fn sign_in_bounds_default_and_must_be_positive() {
        let file: SignInsFile = toml::from_str("per_grant = 3").unwrap();
        let bounds = SignInBounds::from_file(&file).unwrap();
        assert_eq!(bounds.per_grant, 3);
        assert_eq!(bounds.max, SignInBounds::default().max);
        let zero: SignInsFile = toml::from_str("max = 0").unwrap();
        assert!(SignInBounds::from_file(&zero).is_err());
        assert!(toml::from_str::<SignInsFile>("maximum = 3").is_err());
    }
}
