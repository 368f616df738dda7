//! Enterprise approval without a consent screen: a grant request that
//! carries an OpenID Connect ID token about its user (RFC 9635 §2.4,
//! `user.assertions` with format `id_token`) from an issuer the AS trusts is
//! decided by assertion rules, with no person asked.
//!
//! The token is checked as an OpenID Connect relying party checks one (OIDC
//! Core §3.1.3.7, the parts that apply to an assertion handed over by a
//! third party): a JWS signature by a key of the configured issuer (keys from
//! a JWKS file; asymmetric algorithms only, never `none` or a MAC), `iss`
//! equal to that issuer, `aud` containing the configured audience, `exp` in
//! the future, `nbf` (when present) in the past, allowing `SKEW` seconds of
//! clock difference either way, a non-empty `sub`, and `azp`, the party the
//! token was issued to (OIDC Core §2), equal to the configured audience when
//! present and present when `aud` names several (§3.1.3.7 steps 4, 5): an ID
//! token another client of the IdP received, naming gnapd among its
//! audiences, is that client's, not an assertion made to gnapd.
//!
//! An assertion is accepted once ([`UsedAssertions`]): one replayed, by the
//! agent or by anyone who saw it, is `unknown_user`.
//!
//! Rules then match the issuer and subject: a matching `deny` rule refuses
//! the request whatever else matches; otherwise the `allow` rules that match
//! approve the rights their `access` patterns cover, mapped to the credential
//! sets they name. A user no rule names is not decided here: the request
//! goes on to the other policy (allowlist, interaction).

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;

use crate::proto::gnap::access::AccessRight;
use crate::proto::httpsig::Algorithm;
use crate::proto::jwk::VerifyingKey;

/// Seconds of clock difference allowed for `exp` and `nbf`.
pub(crate) const SKEW: i64 = 60;

/// Largest ID token read (bytes of its compact serialization).
const MAX_TOKEN: usize = 16 * 1024;

/// An OpenID provider whose ID tokens the AS accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedIssuer {
    /// The issuer identifier (`iss`).
    pub(crate) issuer: String,
    /// The audience an ID token must name (gnapd's client id there).
    pub(crate) audience: String,
    /// The issuer's public keys, as JWKs (a JWKS document's `keys`).
    pub(crate) keys: Vec<Value>,
}

/// Why a JWKS document gives no usable keys (read at start).
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    /// Not JSON at all.
    #[error("the JWKS is not JSON")]
    NotJson,
    /// No `keys` array.
    #[error("the JWKS has no `keys` array")]
    NoKeysArray,
    /// An empty `keys` array.
    #[error("the JWKS has no keys")]
    NoKeys,
    /// A key that is not a usable public signature key.
    #[error("a key in the JWKS is not usable: {0}")]
    UnusableKey(crate::proto::jwk::KeyError),
}

impl TrustedIssuer {
    /// Reads the issuer's keys from a JWKS document (`{"keys": [...]}`).
    /// Keys that are not usable public signature keys are refused here, so
    /// a mistake shows at start rather than at the first assertion.
    pub fn from_jwks(issuer: &str, audience: &str, jwks: &[u8]) -> Result<Self, JwksError> {
        let document: Value = serde_json::from_slice(jwks).map_err(|_| JwksError::NotJson)?;
        let keys = document
            .get("keys")
            .and_then(Value::as_array)
            .ok_or(JwksError::NoKeysArray)?
            .clone();
        if keys.is_empty() {
            return Err(JwksError::NoKeys);
        }
        for key in &keys {
            VerifyingKey::from_public_jwk(key, None).map_err(JwksError::UnusableKey)?;
        }
        Ok(Self {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            keys,
        })
    }
}

/// The user an ID token vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssertedUser {
    /// The issuer.
    pub(crate) issuer: String,
    /// The subject (`sub`).
    pub subject: String,
}

/// Why an assertion was not accepted. Messages say which check failed,
/// never the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AssertionError {
    /// Not an `id_token`, or not a compact JWS.
    #[error("the assertion is not an ID token in compact JWS form")]
    Malformed,
    /// `iss` names no trusted issuer.
    #[error("the ID token's issuer is not trusted")]
    Issuer,
    /// The header's algorithm is missing, `none`, a MAC or unsupported.
    #[error("the ID token's algorithm is not accepted")]
    Algorithm,
    /// No key of the issuer verifies the signature.
    #[error("the ID token's signature does not verify")]
    Signature,
    /// `aud` does not name this AS, or `azp` names another party (or is
    /// missing where `aud` names several).
    #[error("the ID token is for another audience")]
    Audience,
    /// `exp` is missing or past.
    #[error("the ID token has expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("the ID token is not valid yet")]
    NotYetValid,
    /// No `sub`.
    #[error("the ID token names no subject")]
    Subject,
    /// `nonce` is missing or not the one sent in the authorization request
    /// (OIDC Core §3.1.3.7 step 11).
    #[error("the ID token's nonce is not the one sent")]
    Nonce,
    /// Accepted before: an assertion is single use.
    #[error("the ID token was already used; an assertion is accepted once")]
    Replayed,
    /// No `iat`, or issued before the AS began remembering used ones.
    #[error(
        "the ID token was issued before this server last started, so it cannot tell whether it was used; present a fresh one"
    )]
    IssuedBeforeStart,
    /// Not an ID-JAG (`typ` is not `oauth-id-jag+jwt`).
    #[error(
        "the assertion is not an identity assertion authorization grant (typ oauth-id-jag+jwt)"
    )]
    Type,
    /// The ID-JAG was issued to another client than the one authenticated.
    #[error("the assertion was issued to another client")]
    Client,
    /// The memory of used assertions is full: it fails closed.
    #[error("too many assertions are remembered; retry later")]
    Full,
    /// The store that remembers used assertions for every node did not
    /// answer: it fails closed, as when full.
    #[error("used assertions cannot be checked now; retry later")]
    Unavailable,
}

fn b64(part: &str) -> Result<Vec<u8>, AssertionError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| AssertionError::Malformed)
}

/// Checks an ID token against the trusted issuers at time `now`.
pub fn verify_id_token(
    token: &str,
    issuers: &[TrustedIssuer],
    now: i64,
) -> Result<AssertedUser, AssertionError> {
    verify_claims(token, issuers, now).map(|(user, _)| user)
}

/// Checks an ID token gnapd itself asked for at a login (OIDC Core
/// §3.1.3.7): everything [`verify_id_token`] checks, with `issuer` the only
/// one trusted; an `azp` (required with several audiences) equal to the
/// client id (the issuer's audience); and its `nonce` claim equal to
/// `nonce`, the one sent in the authorization request (compared in
/// constant time).
pub fn verify_login_id_token(
    token: &str,
    issuer: &TrustedIssuer,
    nonce: &str,
    now: i64,
) -> Result<AssertedUser, AssertionError> {
    use subtle::ConstantTimeEq as _;
    let (user, claims) = verify_claims(token, std::slice::from_ref(issuer), now)?;
    let same: bool = match claims.get("nonce").and_then(Value::as_str) {
        Some(claimed) => claimed.as_bytes().ct_eq(nonce.as_bytes()).into(),
        None => false,
    };
    if !same || nonce.is_empty() {
        return Err(AssertionError::Nonce);
    }
    Ok(user)
}

/// Whom a JWT must be addressed to, and as what.
#[derive(Debug, Clone, Copy)]
enum Addressed<'a> {
    /// An ID token: `aud` names the issuer's configured audience (gnapd's
    /// client id there), with OIDC Core's `azp` rules.
    IdToken,
    /// An Identity Assertion JWT Authorization Grant
    /// (draft-ietf-oauth-identity-assertion-authz-grant §4.3): `typ`
    /// `oauth-id-jag+jwt` (RFC 8725 §3.11: one kind of JWT is never taken
    /// for another) and `aud` this AS's issuer.
    IdJag {
        /// gnapd's issuer identifier.
        issuer: &'a str,
    },
}

/// The `typ` of an ID-JAG, with or without the `application/` prefix
/// (RFC 7515 §4.1.9 lets it be omitted), compared without case as media
/// types are.
const ID_JAG_TYP: &str = "oauth-id-jag+jwt";

fn typ_is_id_jag(header: &Value) -> bool {
    header
        .get("typ")
        .and_then(Value::as_str)
        .map(|t| t.to_ascii_lowercase())
        .is_some_and(|t| t == ID_JAG_TYP || t.strip_prefix("application/") == Some(ID_JAG_TYP))
}

fn verify_claims(
    token: &str,
    issuers: &[TrustedIssuer],
    now: i64,
) -> Result<(AssertedUser, Value), AssertionError> {
    verify_addressed(token, issuers, Addressed::IdToken, now)
}

fn verify_addressed(
    token: &str,
    issuers: &[TrustedIssuer],
    addressed: Addressed<'_>,
    now: i64,
) -> Result<(AssertedUser, Value), AssertionError> {
    if token.len() > MAX_TOKEN {
        return Err(AssertionError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AssertionError::Malformed);
    };
    let header: Value =
        serde_json::from_slice(&b64(header_b64)?).map_err(|_| AssertionError::Malformed)?;
    let claims: Value =
        serde_json::from_slice(&b64(payload_b64)?).map_err(|_| AssertionError::Malformed)?;
    if !header.is_object() || !claims.is_object() {
        return Err(AssertionError::Malformed);
    }
    let signature = b64(signature_b64)?;
    // The issuer is read before the signature is checked only to pick its
    // keys; nothing else of the claims is trusted until it verifies.
    let iss = claims.get("iss").and_then(Value::as_str);
    let issuer = issuers
        .iter()
        .find(|i| Some(i.issuer.as_str()) == iss)
        .ok_or(AssertionError::Issuer)?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(Algorithm::from_jws_signature_name)
        .ok_or(AssertionError::Algorithm)?;
    if header.get("crit").is_some() {
        // No extension is understood, so none may be critical.
        return Err(AssertionError::Malformed);
    }
    if matches!(addressed, Addressed::IdJag { .. }) && !typ_is_id_jag(&header) {
        return Err(AssertionError::Type);
    }
    let kid = header.get("kid").and_then(Value::as_str);
    let signing_input = &token[..header_b64.len() + 1 + payload_b64.len()];
    let verified = issuer
        .keys
        .iter()
        .filter(|k| kid.is_none() || k.get("kid").and_then(Value::as_str) == kid)
        .filter_map(|k| VerifyingKey::from_public_jwk(k, Some(alg)).ok())
        .filter(|k| k.algorithm() == alg)
        .any(|k| k.verify_jws(signing_input.as_bytes(), &signature).is_ok());
    if !verified {
        return Err(AssertionError::Signature);
    }
    let audience = match addressed {
        Addressed::IdToken => issuer.audience.as_str(),
        Addressed::IdJag { issuer } => issuer,
    };
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => aud == audience,
        Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(audience)),
        _ => false,
    };
    if !audience_ok {
        return Err(AssertionError::Audience);
    }
    if matches!(addressed, Addressed::IdToken) {
        check_authorized_party(&claims, audience)?;
    }
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or(AssertionError::Expired)?;
    if exp.saturating_add(SKEW) <= now {
        return Err(AssertionError::Expired);
    }
    if let Some(nbf) = claims.get("nbf") {
        let nbf = nbf.as_i64().ok_or(AssertionError::Malformed)?;
        if nbf.saturating_sub(SKEW) > now {
            return Err(AssertionError::NotYetValid);
        }
    }
    let subject = claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or(AssertionError::Subject)?;
    let user = AssertedUser {
        issuer: issuer.issuer.clone(),
        subject: subject.to_owned(),
    };
    Ok((user, claims))
}

/// OIDC Core §3.1.3.7 steps 4 and 5: with several audiences `azp` must be
/// present, and when present it must be gnapd's client id (`audience`).
fn check_authorized_party(claims: &Value, audience: &str) -> Result<(), AssertionError> {
    let several = claims
        .get("aud")
        .and_then(Value::as_array)
        .is_some_and(|a| a.len() > 1);
    match claims.get("azp") {
        Some(azp) if azp.as_str() != Some(audience) => Err(AssertionError::Audience),
        None if several => Err(AssertionError::Audience),
        _ => Ok(()),
    }
}

/// An ID token that holds up, with what single use needs.
struct Accepted {
    user: AssertedUser,
    /// What identifies this assertion among used ones.
    id: [u8; 32],
    /// Until when it could be accepted (`exp` plus [`SKEW`]).
    until: i64,
    /// `iat`, if a number.
    issued_at: Option<i64>,
}

/// [`verify_id_token`], keeping what makes the assertion single use: its
/// `jti` with the issuer, or when it has none the SHA-256 of its signed
/// part (header and payload: what the signature fixes, so no re-encoding of
/// the signature itself makes it look new).
fn verify_assertion(
    token: &str,
    issuers: &[TrustedIssuer],
    now: i64,
) -> Result<Accepted, AssertionError> {
    verify_accepted(token, issuers, Addressed::IdToken, now).map(|(accepted, _)| accepted)
}

fn verify_accepted(
    token: &str,
    issuers: &[TrustedIssuer],
    addressed: Addressed<'_>,
    now: i64,
) -> Result<(Accepted, Value), AssertionError> {
    let (user, claims) = verify_addressed(token, issuers, addressed, now)?;
    let id = match claims.get("jti").and_then(Value::as_str) {
        Some(jti) => crate::proto::hash::sha256_parts(&[
            b"jti\0",
            user.issuer.as_bytes(),
            b"\0",
            jti.as_bytes(),
        ]),
        None => {
            let signed = token.rsplit_once('.').map_or(token, |(signed, _)| signed);
            crate::proto::hash::sha256_parts(&[b"jws\0", signed.as_bytes()])
        }
    };
    // `exp` was checked to be a number by `verify_claims`.
    let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(now);
    let accepted = Accepted {
        user,
        id,
        until: exp.saturating_add(SKEW),
        issued_at: claims.get("iat").and_then(Value::as_i64),
    };
    Ok((accepted, claims))
}

/// Most assertions remembered at once. An entry is ~100 bytes; only ID
/// tokens a trusted issuer signed get in, so this is reached by real
/// users' volume, never by a stranger's.
pub(crate) const MAX_USED_ASSERTIONS: usize = 100_000;

/// The assertions accepted so far, each remembered until it expires, in the
/// AS's memory ([`super::AuthServer`]).
///
/// Bounded: past [`MAX_USED_ASSERTIONS`] live entries a new assertion is
/// refused (fail closed, 503 to retry) until older ones expire. A restart
/// forgets them, so an assertion issued (`iat`) before this memory began
/// is refused as well: the AS cannot tell whether it was used before.
#[derive(Debug)]
pub(crate) struct UsedAssertions {
    until: std::collections::HashMap<[u8; 32], i64>,
    by_expiry: std::collections::BTreeSet<(i64, [u8; 32])>,
    capacity: usize,
    since: i64,
}

impl UsedAssertions {
    /// Assertions remembered, and their bytes (digest and expiry).
    pub(crate) fn size(&self) -> crate::store::TableSize {
        crate::store::TableSize::of(self.until.len(), self.until.len() * (32 + 8))
    }

    /// An empty memory that began at `since` (Unix seconds), holding at
    /// most `capacity` live assertions.
    pub(crate) fn new(since: i64, capacity: usize) -> Self {
        Self {
            until: std::collections::HashMap::new(),
            by_expiry: std::collections::BTreeSet::new(),
            capacity,
            since,
        }
    }

    /// Records the use of assertion `id`, acceptable until `until` and
    /// issued at `issued_at`; an error if it cannot be accepted now.
    fn take(
        &mut self,
        id: [u8; 32],
        until: i64,
        issued_at: Option<i64>,
        now: i64,
    ) -> Result<(), AssertionError> {
        if issued_at.is_none_or(|iat| iat < self.since) {
            return Err(AssertionError::IssuedBeforeStart);
        }
        while let Some(&(expiry, old)) = self.by_expiry.first() {
            if expiry >= now {
                break;
            }
            self.by_expiry.pop_first();
            self.until.remove(&old);
        }
        if self.until.contains_key(&id) {
            return Err(AssertionError::Replayed);
        }
        if self.until.len() >= self.capacity {
            return Err(AssertionError::Full);
        }
        self.until.insert(id, until);
        self.by_expiry.insert((until, id));
        Ok(())
    }
}

impl super::AuthServer {
    /// Checks an ID token presented as a grant request assertion and
    /// accepts it once: the user it vouches for, or the failure to answer
    /// (`unknown_user`; 503 when the memory of used ones is full).
    pub(super) fn accept_assertion(
        &self,
        token: &str,
        now: i64,
    ) -> Result<AssertedUser, super::Failure> {
        let refuse = |e: AssertionError| match e {
            AssertionError::Full | AssertionError::Unavailable => super::Failure::Busy,
            e => super::Failure::gnap(crate::proto::gnap::ErrorCode::UnknownUser, &e.to_string()),
        };
        let accepted = verify_assertion(token, &self.policy.issuers, now).map_err(refuse)?;
        self.use_assertion(&accepted, now).map_err(refuse)?;
        Ok(accepted.user)
    }

    /// Checks an Identity Assertion JWT Authorization Grant presented by
    /// `client_id` with the `jwt-bearer` grant (SEP-990;
    /// draft-ietf-oauth-identity-assertion-authz-grant §4.3, RFC 7523 §3):
    /// signed by a trusted issuer, `typ` `oauth-id-jag+jwt`, `aud` this
    /// AS's issuer, its `client_id` claim the authenticated client, and
    /// accepted once (the same memory as GNAP's assertions).
    pub(crate) fn accept_id_jag(
        &self,
        token: &str,
        client_id: &str,
        now: i64,
    ) -> Result<IdJag, AssertionError> {
        let (accepted, claims) = verify_accepted(
            token,
            &self.policy.issuers,
            Addressed::IdJag {
                issuer: &self.config.public_url,
            },
            now,
        )?;
        if claims.get("client_id").and_then(Value::as_str) != Some(client_id) {
            return Err(AssertionError::Client);
        }
        self.use_assertion(&accepted, now)?;
        let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
        Ok(IdJag {
            user: accepted.user,
            scope: text("scope"),
            resource: text("resource"),
        })
    }
}

impl super::AuthServer {
    /// Marks `accepted` used, once for the whole deployment: in the store
    /// when nodes share it (an assertion accepted by one node is refused by
    /// every other), else in this node's memory. The shared table is
    /// durable, so it needs no "issued before start" rule: what it
    /// forgets has expired, and verification refuses that anyway.
    fn use_assertion(&self, accepted: &Accepted, now: i64) -> Result<(), AssertionError> {
        let Some(shared) = self.store.handoffs() else {
            let mut used = self
                .used_assertions
                .lock()
                .map_err(|_| AssertionError::Full)?;
            return used.take(accepted.id, accepted.until, accepted.issued_at, now);
        };
        let kind = crate::store::HandoffKind::UsedAssertion;
        match shared.claim_handoff(kind, &accepted.id, b"", now, accepted.until) {
            Ok(true) => Ok(()),
            Ok(false) => Err(AssertionError::Replayed),
            Err(e) => {
                tracing::error!(error = %e, "used assertions: the store failed");
                Err(AssertionError::Unavailable)
            }
        }
    }
}

/// An accepted ID-JAG: whom it vouches for and what it asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IdJag {
    /// The user (issuer and subject).
    pub(crate) user: AssertedUser,
    /// Its `scope` claim: the scopes the IdP allowed.
    pub(crate) scope: Option<String>,
    /// Its `resource` claim (RFC 8707).
    pub(crate) resource: Option<String>,
}

/// Whether a rule allows or denies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// Approve the covered rights at once.
    #[default]
    Allow,
    /// Refuse the request.
    Deny,
}

/// A rule for users vouched for by a trusted issuer:
///
/// ```toml
/// [[assertion_rule]]
/// issuer = "https://idp.example.com"
/// subjects = ["*@example.com"]
/// access = ["mcp:github"]
/// credential_sets = { github = "enterprise:github" }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssertionRule {
    /// The issuer whose users it is about.
    pub issuer: String,
    /// Subjects: exact, `*` for any, or `*suffix` (e.g. `*@example.com`).
    pub subjects: Vec<String>,
    /// The rights it covers (patterns as for `[[allow]]`: reference strings,
    /// `mcp:NAME`, `type:NAME`, `*`).
    pub access: Vec<String>,
    /// `allow` (default) or `deny`.
    #[serde(default)]
    pub effect: Effect,
    /// Upstream → credential set the approved tokens are mapped to, instead
    /// of the upstream's assigned enterprise set.
    #[serde(default)]
    pub credential_sets: BTreeMap<String, String>,
}

/// Whether `subject` matches one of `patterns`: exact, `*` for any, or
/// `*suffix` (e.g. `*@example.com`).
pub(crate) fn subject_matches(patterns: &[String], subject: &str) -> bool {
    patterns
        .iter()
        .any(|pattern| match pattern.strip_prefix('*') {
            Some(suffix) => subject.ends_with(suffix),
            None => pattern == subject,
        })
}

impl AssertionRule {
    fn names(&self, user: &AssertedUser) -> bool {
        self.issuer == user.issuer && subject_matches(&self.subjects, &user.subject)
    }
}

/// What the assertion rules decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UserDecision {
    /// Approve these rights per requested token, mapping upstreams to these
    /// credential sets.
    Approve(Vec<Vec<AccessRight>>, BTreeMap<String, String>),
    /// A deny rule names the user (for a requested right).
    Deny,
    /// No rule names the user: other policy decides.
    Undecided,
}

/// Decides `requested` (rights per token) for `user` by `rules`.
pub(crate) fn decide(
    rules: &[AssertionRule],
    user: &AssertedUser,
    requested: &[&[AccessRight]],
    covers: impl Fn(&[String], &AccessRight) -> bool,
) -> UserDecision {
    let applicable: Vec<&AssertionRule> = rules.iter().filter(|r| r.names(user)).collect();
    if applicable.is_empty() {
        return UserDecision::Undecided;
    }
    let any_right = |rule: &AssertionRule| {
        requested
            .iter()
            .flat_map(|rights| rights.iter())
            .any(|right| covers(&rule.access, right))
    };
    if applicable
        .iter()
        .any(|r| r.effect == Effect::Deny && any_right(r))
    {
        return UserDecision::Deny;
    }
    let allows: Vec<&AssertionRule> = applicable
        .into_iter()
        .filter(|r| r.effect == Effect::Allow)
        .collect();
    let approved: Vec<Vec<AccessRight>> = requested
        .iter()
        .map(|rights| {
            rights
                .iter()
                .filter(|right| allows.iter().any(|r| covers(&r.access, right)))
                .cloned()
                .collect()
        })
        .collect();
    if approved.iter().all(Vec::is_empty) {
        return UserDecision::Undecided;
    }
    let mut sets = BTreeMap::new();
    for rule in &allows {
        for (upstream, set) in &rule.credential_sets {
            sets.entry(upstream.clone()).or_insert_with(|| set.clone());
        }
    }
    UserDecision::Approve(approved, sets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_used_assertion_is_refused_until_it_expires_and_the_memory_fails_closed_when_full() {
        let mut used = UsedAssertions::new(100, 2);
        assert_eq!(used.take([1; 32], 200, Some(100), 150), Ok(()));
        assert_eq!(
            used.take([1; 32], 200, Some(100), 199),
            Err(AssertionError::Replayed)
        );
        assert_eq!(used.take([2; 32], 300, Some(120), 150), Ok(()));
        assert_eq!(
            used.take([3; 32], 300, Some(120), 150),
            Err(AssertionError::Full)
        );
        // Past its `until` the first is forgotten, which frees a slot.
        assert_eq!(used.take([3; 32], 300, Some(120), 201), Ok(()));
        assert_eq!(
            used.take([4; 32], 300, Some(99), 150),
            Err(AssertionError::IssuedBeforeStart)
        );
        assert_eq!(
            used.take([4; 32], 300, None, 150),
            Err(AssertionError::IssuedBeforeStart)
        );
    }

    #[test]
    fn azp_must_be_the_audience_when_present_and_present_with_several_audiences() {
        let ok = |claims: Value| check_authorized_party(&claims, "gnapd");
        assert_eq!(ok(serde_json::json!({"aud": "gnapd"})), Ok(()));
        assert_eq!(
            ok(serde_json::json!({"aud": "gnapd", "azp": "gnapd"})),
            Ok(())
        );
        assert_eq!(
            ok(serde_json::json!({"aud": ["gnapd", "other"], "azp": "gnapd"})),
            Ok(())
        );
        for bad in [
            serde_json::json!({"aud": "gnapd", "azp": "other"}),
            serde_json::json!({"aud": ["gnapd", "other"], "azp": "other"}),
            serde_json::json!({"aud": ["gnapd", "other"]}),
            serde_json::json!({"aud": "gnapd", "azp": ["gnapd"]}),
        ] {
            assert_eq!(ok(bad.clone()), Err(AssertionError::Audience), "{bad}");
        }
    }
}
