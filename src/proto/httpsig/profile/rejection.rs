//! Why a request does not satisfy the GNAP profile, one rule per reason.

use super::*;

/// Why a request does not satisfy the GNAP profile. Every variant names one
/// rule; at the AS each maps to `invalid_client`, at the gateway to 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// `Signature-Input`/`Signature` missing or unreadable.
    #[error(transparent)]
    Input(#[from] InputError),
    /// No signature carries a `tag` parameter.
    #[error("no signature has a tag parameter; GNAP requires tag=\"gnap\"")]
    MissingTag,
    /// Signatures carry tags, none of them the one required.
    #[error("no signature has tag=\"{0}\"")]
    WrongTag(&'static str),
    /// The `alg` parameter is present (§7.3.1: MUST NOT be included).
    #[error("the alg signature parameter must not be present")]
    AlgParameter,
    /// `created` is absent (§7.3.1: MUST be included).
    #[error("the created signature parameter is missing")]
    MissingCreated,
    /// `created` is further in the future than the skew allowance.
    #[error("created is {0} s in the future")]
    CreatedInFuture(i64),
    /// `created` is older than the maximum age.
    #[error("the signature is {0} s old")]
    TooOld(i64),
    /// `expires` has passed.
    #[error("the signature expired")]
    Expired,
    /// `keyid` does not name the key's `kid`.
    #[error("keyid does not match the key's kid")]
    KeyIdMismatch,
    /// A component the profile requires is not covered.
    #[error("the signature does not cover {0}")]
    MissingComponent(String),
    /// Content-Digest absent, unreadable or wrong.
    #[error(transparent)]
    Digest(#[from] DigestError),
    /// `Signature` has no member for the chosen label.
    #[error("no Signature member for label `{0}`")]
    MissingSignature(String),
    /// A covered component has no value in the request.
    #[error(transparent)]
    Component(#[from] ValueError),
    /// The signature does not verify with the key.
    #[error("the signature does not verify with the client's key")]
    BadSignature,
    /// The nonce was seen inside its window.
    #[error("the nonce was already used")]
    ReplayedNonce,
    /// A signature without a nonce over the same signature base (the same
    /// request, signed at the same second) was seen inside its window.
    #[error("the signature was already used")]
    ReplayedSignature,
    /// More `Signature-Input` labels than [`MAX_SIGNATURES`].
    #[error("more than {MAX_SIGNATURES} signatures; a GNAP request needs one, a key rotation two")]
    TooManySignatures,
    /// The replay cache could not answer; failing closed.
    #[error(transparent)]
    ReplayCache(#[from] NonceStoreError),
    /// `created` is before the replay cache began remembering (the server
    /// restarted since): it cannot tell whether the signature was used.
    #[error("the signature was created before the server started; sign again")]
    BeforeHorizon,
}

impl Rejection {
    /// A short, stable, low-cardinality name for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Input(_) => "malformed",
            Self::MissingTag | Self::WrongTag(_) => "tag",
            Self::AlgParameter => "alg_param",
            Self::MissingCreated => "created_missing",
            Self::CreatedInFuture(_) => "created_future",
            Self::TooOld(_) => "too_old",
            Self::Expired => "expired",
            Self::KeyIdMismatch => "keyid",
            Self::MissingComponent(_) => "component_missing",
            Self::Digest(_) => "digest",
            Self::MissingSignature(_) => "signature_missing",
            Self::Component(_) => "component_value",
            Self::BadSignature => "bad_signature",
            Self::ReplayedNonce | Self::ReplayedSignature => "replay",
            Self::ReplayCache(NonceStoreError::KeyQuota) => "replay_key_quota",
            Self::ReplayCache(_) => "replay_cache",
            Self::BeforeHorizon => "before_restart",
            Self::TooManySignatures => "too_many_signatures",
        }
    }
}
