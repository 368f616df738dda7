//! JWS key proofing (RFC 9635 §7.3.3 `jwsd`, §7.3.4 `jws`), sans I/O.
//!
//! Both methods sign a JOSE header that names the request (`htm`, `uri`,
//! `created`, and `ath` when an access token is presented) with the
//! client's key:
//!
//! - `jwsd` ([`detached`]): the payload is the SHA-256 digest of the
//!   content (empty without content) and the compact JWS travels in the
//!   `Detached-JWS` field. The field may carry the digest as its payload
//!   segment (the RFC's example) or leave the segment empty (RFC 7515
//!   Appendix F); either way the signing input is rebuilt from the digest
//!   of the content received, so the content is what was signed.
//! - `jws` ([`attached`]): with content, the request body *is* the compact
//!   JWS (`application/jose`) and its payload the JSON the AS processes;
//!   without content, a `Detached-JWS` field as for `jwsd`, with the `jws`
//!   type.
//! - a key rotation ([`rotation`]) nests the old key's proof, typed
//!   `gnap-binding-rotation-*`, as the payload of the new key's proof.
//!
//! A JWS has no nonce, so an accepted proof is remembered in the replay
//! cache by the key's thumbprint and the SHA-256 of its signing input,
//! only after its signature verified (a forged proof cannot burn a
//! client's entry). Two identical requests by one key in the same second
//! have the same signing input: the second is refused as a replay, as an
//! `httpsig` signature without a nonce is.
//!
//! The only way to obtain a [`VerifiedJws`] is to pass every rule.

use thiserror::Error;

use crate::proto::httpsig::nonce::{NonceStore, NonceStoreError, Seen};
use crate::proto::httpsig::{GnapProfile, HttpRequest};
use crate::proto::jwk::{Thumbprint, VerifyingKey};

pub mod attached;
pub mod detached;
pub mod header;
pub mod rotation;
pub mod sign;

pub use header::{ProofHeader, Typ};
pub use sign::{ProofTarget, sign_attached, sign_detached, sign_rotation};

/// The header field that carries a detached proof.
pub const DETACHED_JWS: &str = "detached-jws";

/// The media type of an attached proof's body.
pub const APPLICATION_JOSE: &str = "application/jose";

/// Which of the two JWS methods a key is bound with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwsMethod {
    /// `jwsd` (§7.3.3).
    Detached,
    /// `jws` (§7.3.4).
    Attached,
}

impl JwsMethod {
    /// The JWS method a key bound with `kind` proves with; `None` for
    /// `httpsig` and `mtls`.
    pub const fn of(kind: crate::proto::gnap::ProofKind) -> Option<Self> {
        match kind {
            crate::proto::gnap::ProofKind::HttpSig | crate::proto::gnap::ProofKind::Mtls => None,
            crate::proto::gnap::ProofKind::Jwsd => Some(Self::Detached),
            crate::proto::gnap::ProofKind::Jws => Some(Self::Attached),
        }
    }

    /// The proof's `typ` for this method.
    pub const fn typ(self) -> Typ {
        match self {
            Self::Detached => Typ::Jwsd,
            Self::Attached => Typ::Jws,
        }
    }

    /// The old key's `typ` in a rotation with this method.
    pub const fn rotation_typ(self) -> Typ {
        match self {
            Self::Detached => Typ::RotationJwsd,
            Self::Attached => Typ::RotationJws,
        }
    }
}

/// Proof that a request carried a valid JWS proof by a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedJws {
    /// The RFC 7638 thumbprint of the key that signed.
    pub thumbprint: Thumbprint,
    /// The header's `created`.
    pub created: i64,
    /// For `jws` with content: the payload, the request content the AS
    /// processes. `None` otherwise (the body is the content).
    pub content: Option<Vec<u8>>,
}

/// Proof of a key rotation: the old key signed the request, the new key
/// signed the old key's proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedJwsRotation {
    /// The old key's thumbprint.
    pub old: Thumbprint,
    /// The new key's thumbprint.
    pub new: Thumbprint,
    /// As [`VerifiedJws::content`].
    pub content: Option<Vec<u8>>,
}

/// Why a JWS proof was refused. At the AS each is `invalid_client`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum JwsRejection {
    /// No `Detached-JWS` field where one is needed.
    #[error("the Detached-JWS field is missing")]
    MissingField,
    /// More than one `Detached-JWS` field line.
    #[error("the Detached-JWS field appears more than once")]
    DuplicateField,
    /// A detached proof alongside an attached one.
    #[error("a request with a JWS body must not also carry Detached-JWS")]
    BothForms,
    /// Content under `jws` that is not `application/jose`.
    #[error("the content of a jws request must be application/jose")]
    NotJose,
    /// The field or body exceeds its bound.
    #[error("the JWS is too large")]
    TooLarge,
    /// The JOSE header exceeds [`header::MAX_HEADER_LEN`].
    #[error("the JOSE header is too large")]
    HeaderTooLarge,
    /// Not a compact JWS (segments, base64url, JSON).
    #[error("not a compact JWS")]
    Malformed,
    /// More than three segments (a JWE, or something appended).
    #[error("a compact JWS has exactly three segments")]
    ExtraSegments,
    /// A required header member is absent.
    #[error("the JOSE header lacks `{0}`")]
    Missing(&'static str),
    /// A header member has the wrong JSON type or value.
    #[error("the JOSE header member `{0}` is invalid")]
    Member(&'static str),
    /// `crit` names a member this verifier does not process.
    #[error("the JOSE header marks a member critical that gnapd does not understand")]
    UnknownCritical,
    /// `typ` is not the one this proof must have.
    #[error("typ must be {0}")]
    Typ(&'static str),
    /// `alg` is `none`.
    #[error("alg none is never accepted")]
    AlgNone,
    /// `alg` does not fit the key (or its JWK `alg`).
    #[error("alg does not match the key")]
    AlgMismatch,
    /// `kid` differs from the key's `kid`.
    #[error("kid does not match the key's kid")]
    KidMismatch,
    /// `htm` differs from the request method.
    #[error("htm does not match the request method")]
    Htm,
    /// `uri` differs from the request URI.
    #[error("uri does not match the request URI")]
    Uri,
    /// `uri` has a fragment.
    #[error("uri must not have a fragment")]
    UriFragment,
    /// `created` is further ahead than the skew allowance.
    #[error("created is {0} s in the future")]
    CreatedInFuture(i64),
    /// `created` is older than the maximum age.
    #[error("the proof is {0} s old")]
    TooOld(i64),
    /// `ath` does not hash the presented token.
    #[error("ath does not match the access token")]
    Ath,
    /// `ath` without an access token.
    #[error("ath is present but no access token is")]
    UnexpectedAth,
    /// An `Authorization` field that is not one `GNAP <token>`.
    #[error("the Authorization field is not one GNAP token")]
    Authorization,
    /// The payload is not the digest of the content.
    #[error("the payload is not the SHA-256 digest of the content")]
    Digest,
    /// A rotation proof whose payload is not the old key's proof.
    #[error("a rotation needs the old key's proof as the payload")]
    RotationPayload,
    /// The signature does not verify.
    #[error("the JWS signature does not verify with the client's key")]
    BadSignature,
    /// The same proof was accepted before inside its window.
    #[error("the proof was already used")]
    Replayed,
    /// `created` is before the replay cache began remembering.
    #[error("the proof was created before the server started; sign again")]
    BeforeHorizon,
    /// The replay cache could not answer; failing closed.
    #[error(transparent)]
    ReplayCache(#[from] NonceStoreError),
}

impl JwsRejection {
    /// A short, stable name for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MissingField | Self::DuplicateField | Self::BothForms | Self::NotJose => {
                "jws_field"
            }
            Self::TooLarge | Self::HeaderTooLarge | Self::Malformed | Self::ExtraSegments => {
                "jws_malformed"
            }
            Self::Missing(_) | Self::Member(_) | Self::UnknownCritical => "jws_header",
            Self::Typ(_) => "jws_typ",
            Self::AlgNone | Self::AlgMismatch => "jws_alg",
            Self::KidMismatch => "keyid",
            Self::Htm | Self::Uri | Self::UriFragment => "jws_target",
            Self::CreatedInFuture(_) => "created_future",
            Self::TooOld(_) => "too_old",
            Self::Ath | Self::UnexpectedAth | Self::Authorization => "jws_ath",
            Self::Digest | Self::RotationPayload => "digest",
            Self::BadSignature => "bad_signature",
            Self::Replayed => "replay",
            Self::BeforeHorizon => "before_restart",
            Self::ReplayCache(NonceStoreError::KeyQuota) => "replay_key_quota",
            Self::ReplayCache(_) => "replay_cache",
        }
    }
}

/// Verifies a request proved with `method` by `key`: the JOSE header, the
/// content, the signature, then the replay cache.
pub fn verify(
    method: JwsMethod,
    request: &HttpRequest,
    key: &VerifyingKey,
    profile: &GnapProfile,
    now: i64,
    replay: &dyn NonceStore,
) -> Result<VerifiedJws, JwsRejection> {
    match method {
        JwsMethod::Attached if !request.body.is_empty() => {
            attached::verify(request, key, profile, now, replay)
        }
        _ => detached::verify(method.typ(), request, key, profile, now, replay),
    }
}

pub use rotation::verify_rotation;

/// The request content an AS parses for a `jws` request: the payload of
/// the `application/jose` body, read *without* verifying it, only to find
/// the key the proof must then verify with ([`verify`] returns the same
/// bytes once it has).
pub fn unverified_content(body: &[u8]) -> Result<Vec<u8>, JwsRejection> {
    let text = std::str::from_utf8(body).map_err(|_| JwsRejection::Malformed)?;
    let outer = header::Compact::parse(text.trim_ascii())?;
    crate::proto::b64::decode_url(outer.payload_b64).ok_or(JwsRejection::Malformed)
}

/// [`unverified_content`] at a token management URI, where the body may be
/// a rotation: the innermost payload, and whether it was nested in one
/// ([`verify_rotation`] returns the same bytes once it has verified both).
pub fn unverified_rotation_content(body: &[u8]) -> Result<(Vec<u8>, bool), JwsRejection> {
    let payload = unverified_content(body)?;
    match rotation::nested(&payload) {
        Some(inner) => crate::proto::b64::decode_url(inner.payload_b64)
            .map(|content| (content, true))
            .ok_or(JwsRejection::Malformed),
        None => Ok((payload, false)),
    }
}

/// The last rules for proofs whose signatures verified: younger than the
/// replay cache's memory, and never accepted before. Remembered by the
/// key's thumbprint and the SHA-256 of `signing_input`.
fn remember(
    key: &VerifyingKey,
    signing_input: &[u8],
    created: i64,
    profile: &GnapProfile,
    now: i64,
    replay: &dyn NonceStore,
) -> Result<(), JwsRejection> {
    if created < replay.horizon() {
        return Err(JwsRejection::BeforeHorizon);
    }
    let mut value = Vec::with_capacity(34);
    value.extend_from_slice(b"j:");
    value.extend_from_slice(&crate::proto::hash::sha256(signing_input));
    let until = created.saturating_add(profile.max_age);
    match replay.remember(key.thumbprint(), &value, until, now)? {
        Seen::Fresh => Ok(()),
        Seen::Replayed => Err(JwsRejection::Replayed),
    }
}

/// Checks `signature` over `signing_input` with `key` (counted as a JWS
/// verification under the key's algorithm).
fn check_signature(
    key: &VerifyingKey,
    signing_input: &[u8],
    signature: &[u8],
) -> Result<(), JwsRejection> {
    key.verify_jws(signing_input, signature)
        .map_err(|_| JwsRejection::BadSignature)
}

#[cfg(test)]
mod tests;
