//! The GNAP profile of HTTP Message Signatures (RFC 9635 §7.3.1, §7.3.1.1).
//!
//! RFC 9421 leaves it to each application to say which components must be
//! covered, which parameters must appear and how keys and algorithms are
//! chosen (§1.4). This module is that application layer for GNAP:
//!
//! - `tag="gnap"` is required and checked;
//! - `created` is required and must fall inside the configured window;
//! - `alg` must not appear: the algorithm comes from the key;
//! - `keyid` must equal the JWK `kid` when the key has one;
//! - `@method` and `@target-uri` are always covered, `content-digest` when
//!   the request has content (and the digest must match), `authorization`
//!   when a token is presented;
//! - a `nonce` is single use inside the window; a signature without one is
//!   remembered by its signature base, so replaying it fails too, however
//!   the signature bytes are re-encoded (ECDSA `(r, n-s)`);
//! - at most [`MAX_SIGNATURES`] signatures per request (a key rotation needs
//!   two); more are refused before any cryptography.
//!
//! The only way to obtain a [`VerifiedRequest`] is to pass every rule, so a
//! handler that takes one cannot forget a check.

use std::sync::Arc;

use super::base::signature_base;
use super::batch::{Checked, Pending, Screened};
use super::component::{ComponentId, Derived, ValueError};
use super::input::{InputError, SignatureInput, signature_inputs, signatures};
use super::message::{HttpRequest, Message};
use super::nonce::{NonceStore, NonceStoreError, Seen};
use super::params::{Metadata, SignatureParams};
use super::sign::{SignError, sign_request};
use super::verify::{VerifyError, verify_signature};
use crate::proto::b64;
use crate::proto::digest::{DigestAlgorithm, DigestError, content_digest, verify_content_digest};
use crate::proto::jwk::{SigningKey, Thumbprint, VerifyingKey};

mod rejection;
mod signing;

pub use rejection::Rejection;
pub use signing::{SignOptions, sign_gnap, sign_gnap_rotation};

/// The `tag` of an ordinary GNAP signature.
pub const TAG_GNAP: &str = "gnap";
/// The `tag` of the new key's signature in a key rotation (§7.3.1.1).
pub const TAG_ROTATE: &str = "gnap-rotate";

/// Most `Signature-Input` labels a request may carry: a key rotation
/// (§7.3.1.1) has two signatures, every other GNAP request one. A label
/// costs the verifier a signature check, so more are refused before any
/// cryptography (a 4096-bit RSA check is ~0.1 ms; see spec-notes/rfc9421.md).
pub const MAX_SIGNATURES: usize = 2;

/// Header fields the GNAP signer covers whenever a request carries them, so
/// that the routing headers an MCP gateway's policy reads cannot be changed in
/// flight.
pub const COVER_WHEN_PRESENT: [&str; 4] = [
    "mcp-protocol-version",
    "mcp-session-id",
    "mcp-method",
    "mcp-name",
];

/// The time window and replay settings of the profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GnapProfile {
    /// How far in the future `created` may be, for clock skew (seconds).
    pub max_skew: i64,
    /// How old `created` may be (seconds).
    pub max_age: i64,
}

impl Default for GnapProfile {
    fn default() -> Self {
        Self {
            max_skew: 60,
            max_age: 300,
        }
    }
}

/// Proof that a request was signed under the GNAP profile by a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedRequest {
    /// The RFC 7638 thumbprint of the key that signed: the client's identity.
    pub thumbprint: Thumbprint,
    /// The label of the signature that verified.
    pub label: String,
    /// The covered components, in order.
    pub covered: Vec<ComponentId>,
    /// The `created` parameter.
    pub created: i64,
    /// The `nonce` parameter, if any.
    pub nonce: Option<String>,
}

/// Proof of a key rotation request: the old key signed as usual and the new
/// key signed over the old key's signature (§7.3.1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedRotation {
    /// The old key's signature.
    pub old: VerifiedRequest,
    /// The new key's `gnap-rotate` signature.
    pub new: VerifiedRequest,
}

impl GnapProfile {
    /// Verifies a request signed by `key` with `tag="gnap"`.
    ///
    /// Where several signatures carry the tag, each is examined in order until
    /// one satisfies every rule (RFC 9421 §3.2: a verifier may examine several
    /// signatures); the first one's failure is reported if none does.
    pub fn verify(
        &self,
        request: &HttpRequest,
        key: &VerifyingKey,
        now: i64,
        replay: &dyn NonceStore,
    ) -> Result<VerifiedRequest, Rejection> {
        let (inputs, sigs) = read_fields(request)?;
        let mut examine = Examine {
            request,
            sigs: &sigs,
            key,
            now,
            replay,
            also_required: &[],
            screened_failed: false,
        };
        self.verify_tagged(inputs, TAG_GNAP, &mut examine)
    }

    /// Verifies a key rotation request (RFC 9635 §7.3.1.1): a `gnap` signature
    /// by `old_key`, and a `gnap-rotate` signature by `new_key` that also
    /// covers the old signature and its input.
    pub fn verify_rotation(
        &self,
        request: &HttpRequest,
        old_key: &VerifyingKey,
        new_key: &VerifyingKey,
        now: i64,
        replay: &dyn NonceStore,
    ) -> Result<VerifiedRotation, Rejection> {
        let (inputs, sigs) = read_fields(request)?;
        let mut examine = Examine {
            request,
            sigs: &sigs,
            key: old_key,
            now,
            replay,
            also_required: &[],
            screened_failed: false,
        };
        let old = self.verify_tagged(inputs.clone(), TAG_GNAP, &mut examine)?;
        let chained = [
            ComponentId::parse(&format!("\"signature\";key=\"{}\"", old.label))
                .map_err(|_| Rejection::MissingComponent("signature;key".into()))?,
            ComponentId::parse(&format!("\"signature-input\";key=\"{}\"", old.label))
                .map_err(|_| Rejection::MissingComponent("signature-input;key".into()))?,
        ];
        examine.key = new_key;
        examine.also_required = &chained;
        let new = self.verify_tagged(inputs, TAG_ROTATE, &mut examine)?;
        Ok(VerifiedRotation { old, new })
    }

    fn verify_tagged(
        &self,
        inputs: Vec<SignatureInput>,
        tag: &'static str,
        examine: &mut Examine<'_>,
    ) -> Result<VerifiedRequest, Rejection> {
        let untagged = inputs.iter().all(|i| i.params.tag.is_none());
        let mut first_failure = None;
        for mut input in inputs
            .into_iter()
            .filter(|i| i.params.tag.as_deref() == Some(tag))
        {
            match self.verify_one(&input, examine) {
                Ok(created) => {
                    return Ok(VerifiedRequest {
                        thumbprint: examine.key.thumbprint().clone(),
                        label: input.label,
                        nonce: input.params.nonce.take(),
                        covered: input.params.into_covered(),
                        created,
                    });
                }
                // A signature that verified but was seen before (or cannot
                // be vouched for) makes the whole request a replay: a later
                // signature the first use never needed must not let it pass.
                Err(
                    e @ (Rejection::ReplayedNonce
                    | Rejection::ReplayedSignature
                    | Rejection::BeforeHorizon
                    | Rejection::ReplayCache(_)),
                ) => return Err(e),
                Err(e) => {
                    first_failure.get_or_insert(e);
                }
            }
        }
        Err(first_failure.unwrap_or(if untagged {
            Rejection::MissingTag
        } else {
            Rejection::WrongTag(tag)
        }))
    }

    /// Every rule for one signature. The first signature that passes the
    /// screen is not checked again when the batch already found it bad
    /// ([`Examine::screened_failed`]).
    fn verify_one(&self, input: &SignatureInput, ex: &mut Examine<'_>) -> Result<i64, Rejection> {
        let (created, index) =
            self.screen_one(ex.request, input, ex.sigs, ex.key, ex.now, ex.also_required)?;
        let base = match std::mem::take(&mut ex.screened_failed) {
            false => {
                let signature = ex.sigs[index].1.as_slice();
                verify_signature(
                    Message::Request(ex.request),
                    &input.params,
                    signature,
                    ex.key,
                )
                .map_err(|e| match e {
                    VerifyError::Component(v) => Rejection::Component(v),
                    // `alg` was refused by the screen, so only the crypto
                    // check remains.
                    VerifyError::AlgorithmMismatch | VerifyError::BadSignature => {
                        Rejection::BadSignature
                    }
                })?
            }
            // The batch found it bad, or [`Self::screen`] could not build its
            // base; which one, the base says, as it would alone.
            true => {
                signature_base(Message::Request(ex.request), &input.params)?;
                return Err(Rejection::BadSignature);
            }
        };
        self.remember(&input.params, &base, created, ex.key, ex.now, ex.replay)?;
        Ok(created)
    }

    /// Every rule of the profile for one signature that needs neither
    /// cryptography nor the replay cache. Returns `created` and where in
    /// `sigs` the signature is.
    fn screen_one(
        &self,
        request: &HttpRequest,
        input: &SignatureInput,
        sigs: &[(String, Vec<u8>)],
        key: &VerifyingKey,
        now: i64,
        also_required: &[ComponentId],
    ) -> Result<(i64, usize), Rejection> {
        let params = &input.params;
        // Cheap checks on the parameters first: a mis-aimed signature costs
        // no cryptography and gets a precise reason.
        if params.alg.is_some() {
            return Err(Rejection::AlgParameter);
        }
        let created = self.check_times(params, now)?;
        if let Some(kid) = key.kid()
            && params.keyid.as_deref() != Some(kid)
        {
            return Err(Rejection::KeyIdMismatch);
        }
        let covered = params.covered();
        if let Some(missing) =
            required_components(request).find(|r| !covered.iter().any(|c| c.as_str() == *r))
        {
            return Err(Rejection::MissingComponent(
                missing.trim_matches('"').to_owned(),
            ));
        }
        if let Some(missing) = also_required.iter().find(|r| !covered.contains(r)) {
            return Err(Rejection::MissingComponent(missing.as_str().to_owned()));
        }
        check_digest(request, params)?;
        let index = sigs
            .iter()
            .position(|(label, _)| *label == input.label)
            .ok_or_else(|| Rejection::MissingSignature(input.label.clone()))?;
        Ok((created, index))
    }

    /// The last rules, for a signature proven good: it must be younger than
    /// the replay cache's memory and never seen before.
    ///
    /// A signature without a nonce is remembered by its signature base, not
    /// by its bytes: the base is what the key vouched for, and it cannot be
    /// re-encoded, while a signature can be by anyone who saw it (ECDSA
    /// `(r, n-s)` verifies too; OpenSSL takes an RSA signature without its
    /// leading zero bytes). Two requests with the same base are the same
    /// request at the same second; the second is a replay whoever signed it.
    fn remember(
        &self,
        params: &SignatureParams,
        base: &[u8],
        created: i64,
        key: &VerifyingKey,
        now: i64,
        replay: &dyn NonceStore,
    ) -> Result<(), Rejection> {
        if created < replay.horizon() {
            return Err(Rejection::BeforeHorizon);
        }
        // Only now, with the signature proven, does the request get to write
        // into the replay cache: an attacker cannot burn a client's nonces.
        let until = created.saturating_add(self.max_age);
        let seen = match &params.nonce {
            Some(nonce) => {
                let mut value = Vec::with_capacity(nonce.len() + 2);
                value.extend_from_slice(b"n:");
                value.extend_from_slice(nonce.as_bytes());
                (
                    replay.remember(key.thumbprint(), &value, until, now)?,
                    Rejection::ReplayedNonce,
                )
            }
            None => {
                let mut value = Vec::with_capacity(34);
                value.extend_from_slice(b"b:");
                value.extend_from_slice(&crate::proto::hash::sha256(base));
                (
                    replay.remember(key.thumbprint(), &value, until, now)?,
                    Rejection::ReplayedSignature,
                )
            }
        };
        if let (Seen::Replayed, rejection) = seen {
            return Err(rejection);
        }
        Ok(())
    }

    /// The first step of [`Self::verify`] for a caller that checks the
    /// cryptography itself, in a batch with other requests' signatures
    /// ([`super::batch`]): the first `gnap`-tagged signature that meets every
    /// rule needing neither cryptography nor the replay cache, with its
    /// signature base. `None` when no signature does; [`Self::finish`] then
    /// says why.
    ///
    /// [`Self::verify`] examines signatures in order and takes the first
    /// that meets every rule; an earlier signature that fails this screen
    /// fails there too, so the screened one is the one it would try first.
    pub fn screen(
        &self,
        request: &HttpRequest,
        key: &Arc<VerifyingKey>,
        now: i64,
    ) -> Option<Pending> {
        let (inputs, mut sigs) = read_fields(request).ok()?;
        let (input, created, index) = inputs
            .into_iter()
            .filter(|i| i.params.tag.as_deref() == Some(TAG_GNAP))
            .find_map(|input| {
                let (created, index) = self
                    .screen_one(request, &input, &sigs, key, now, &[])
                    .ok()?;
                Some((input, created, index))
            })?;
        let base = signature_base(Message::Request(request), &input.params).ok()?;
        let signature = sigs.swap_remove(index).1;
        Some(Pending {
            screened: Screened {
                input,
                created,
                base,
                signature,
            },
            key: key.clone(),
        })
    }

    /// The last step for a request [`Self::screen`] screened, given the
    /// batch's answer for that signature (`Some` if it verified under
    /// `key`, `None` if it did not or nothing was screened). Decides exactly
    /// as [`Self::verify`] would, with the same reasons, but never checks
    /// the screened signature's cryptography a second time: a request costs
    /// at most [`MAX_SIGNATURES`] checks on this path too.
    pub fn finish(
        &self,
        request: &HttpRequest,
        key: &VerifyingKey,
        checked: Option<Checked>,
        now: i64,
        replay: &dyn NonceStore,
    ) -> Result<VerifiedRequest, Rejection> {
        match checked {
            // The signature [`Self::verify`] would try first verified: only
            // the replay cache is left, and a replay ends the examination
            // there too.
            Some(c) if c.key.thumbprint() == key.thumbprint() => {
                let Checked { screened, key: own } = c;
                self.admit(screened, &own, now, replay)
            }
            // Never another call's answer; otherwise the rest of the request's
            // signatures, as a single check goes on to them.
            _ => {
                let (inputs, sigs) = read_fields(request)?;
                let mut examine = Examine {
                    request,
                    sigs: &sigs,
                    key,
                    now,
                    replay,
                    also_required: &[],
                    screened_failed: true,
                };
                self.verify_tagged(inputs, TAG_GNAP, &mut examine)
            }
        }
    }

    fn admit(
        &self,
        screened: Screened,
        key: &VerifyingKey,
        now: i64,
        replay: &dyn NonceStore,
    ) -> Result<VerifiedRequest, Rejection> {
        let Screened {
            mut input,
            created,
            base,
            ..
        } = screened;
        self.remember(&input.params, &base, created, key, now, replay)?;
        Ok(VerifiedRequest {
            thumbprint: key.thumbprint().clone(),
            label: input.label,
            nonce: input.params.nonce.take(),
            covered: input.params.into_covered(),
            created,
        })
    }

    /// Every rule each `gnap`-tagged signature breaks, for people debugging
    /// interop (`gnapd httpsig verify`). Unlike [`Self::verify`] it does not
    /// stop at the first failure and does not touch a replay cache. An empty
    /// list for a label means that signature satisfies the profile.
    pub fn diagnose(
        &self,
        request: &HttpRequest,
        key: &VerifyingKey,
        now: i64,
    ) -> Result<Vec<(String, Vec<Rejection>)>, Rejection> {
        let (inputs, sigs) = read_fields(request)?;
        let mut report = Vec::new();
        for input in &inputs {
            let params = &input.params;
            let mut broken = Vec::new();
            match params.tag.as_deref() {
                Some(TAG_GNAP) => {}
                Some(_) => broken.push(Rejection::WrongTag(TAG_GNAP)),
                None => broken.push(Rejection::MissingTag),
            }
            if params.alg.is_some() {
                broken.push(Rejection::AlgParameter);
            }
            if let Err(e) = self.check_times(params, now) {
                broken.push(e);
            }
            if key
                .kid()
                .is_some_and(|kid| params.keyid.as_deref() != Some(kid))
            {
                broken.push(Rejection::KeyIdMismatch);
            }
            for required in required_components(request) {
                if !params.covered().iter().any(|c| c.as_str() == required) {
                    broken.push(Rejection::MissingComponent(
                        required.trim_matches('"').to_owned(),
                    ));
                }
            }
            if let Err(e) = check_digest(request, params) {
                broken.push(e);
            }
            match sigs.iter().find(|(label, _)| *label == input.label) {
                None => broken.push(Rejection::MissingSignature(input.label.clone())),
                Some((_, sig)) => {
                    match verify_signature(Message::Request(request), params, sig, key) {
                        Ok(_) => {}
                        Err(VerifyError::Component(v)) => broken.push(Rejection::Component(v)),
                        Err(_) => broken.push(Rejection::BadSignature),
                    }
                }
            }
            report.push((input.label.clone(), broken));
        }
        Ok(report)
    }

    fn check_times(&self, params: &SignatureParams, now: i64) -> Result<i64, Rejection> {
        let created = params.created.ok_or(Rejection::MissingCreated)?;
        let ahead = created.saturating_sub(now);
        if ahead > self.max_skew {
            return Err(Rejection::CreatedInFuture(ahead));
        }
        let age = now.saturating_sub(created);
        if age > self.max_age {
            return Err(Rejection::TooOld(age));
        }
        if params.expires.is_some_and(|expires| now > expires) {
            return Err(Rejection::Expired);
        }
        Ok(created)
    }
}

/// What [`GnapProfile::verify_tagged`] works on for one key.
struct Examine<'a> {
    request: &'a HttpRequest,
    sigs: &'a [(String, Vec<u8>)],
    key: &'a VerifyingKey,
    now: i64,
    replay: &'a dyn NonceStore,
    /// Components the signature must cover besides the profile's own.
    also_required: &'a [ComponentId],
    /// The batch already found the first signature that passes the screen
    /// bad (taken by it); false on the single-check path.
    screened_failed: bool,
}

/// The `Signature` members: (label, signature bytes).
type Labelled = Vec<(String, Vec<u8>)>;

/// Both signature fields, refused before any cryptography when they carry
/// more than [`MAX_SIGNATURES`] labels.
fn read_fields(request: &HttpRequest) -> Result<(Vec<SignatureInput>, Labelled), Rejection> {
    let inputs = signature_inputs(&request.fields)?;
    if inputs.len() > MAX_SIGNATURES {
        return Err(Rejection::TooManySignatures);
    }
    Ok((inputs, signatures(&request.fields)?))
}

/// The components RFC 9635 §7.3.1 requires for this request, serialized:
/// `@method` and `@target-uri` always, `content-digest` when there is content,
/// `authorization` when a token is presented.
fn required_components(request: &HttpRequest) -> impl Iterator<Item = &'static str> {
    let content = (!request.body.is_empty()).then_some("\"content-digest\"");
    let token = request
        .fields
        .contains("authorization")
        .then_some("\"authorization\"");
    ["\"@method\"", "\"@target-uri\""]
        .into_iter()
        .chain(content)
        .chain(token)
}

/// Checks `Content-Digest` against the content whenever there is content or
/// the signature covers the field (RFC 9635 §7.3.1, RFC 9530).
fn check_digest(request: &HttpRequest, params: &SignatureParams) -> Result<(), Rejection> {
    let covered = params
        .covered()
        .iter()
        .any(|c| c.is_plain_field("content-digest"));
    if request.body.is_empty() && !covered {
        return Ok(());
    }
    let mut lines = request.fields.lines("content-digest");
    let field = lines.next().ok_or(DigestError::Missing)?;
    // Two Content-Digest lines would be combined into one dictionary whose
    // later members win; refuse the ambiguity.
    if lines.next().is_some() {
        return Err(DigestError::Malformed.into());
    }
    verify_content_digest(field, &request.body)?;
    Ok(())
}
