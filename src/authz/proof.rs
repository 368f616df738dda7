//! Which proof a request must carry (RFC 9635 §7.3): the method its key is
//! bound with, never one the request picks.
//!
//! A key presented in a grant request brings its method (`proof`); a
//! grant, token or instance keeps it in its [`KeyBinding`]. `httpsig` runs
//! the HTTP message signature profile, `jwsd` and `jws` the JWS proofs of
//! [`crate::proto::jws_proof`], `mtls` compares the connection's TLS client
//! certificate with the key's. A request proved another way than its key's
//! method is `invalid_client`, and so is `application/jose` content for a
//! key not bound with `jws`, or JSON content for one that is.

use std::borrow::Cow;

use super::{AuthServer, Failure, bound_key};
use crate::proto::gnap::{ErrorCode, ProofKind};
use crate::proto::httpsig::HttpRequest;
use crate::proto::jwk::{Thumbprint, VerifyingKey};
use crate::proto::jws_proof::{self, JwsMethod, JwsRejection, attached};
use crate::store::{KeyBinding, ReplayBudget};

/// What a request is proved with: a key that signs, or for `mtls` the
/// certificate the TLS connection must have proved (its `x5t#S256`).
#[derive(Debug)]
pub(super) enum Prover {
    /// A JWK (`httpsig`, `jwsd`, `jws`).
    Key(std::sync::Arc<VerifyingKey>),
    /// An `mtls` certificate's thumbprint.
    Cert(String),
}

impl Prover {
    /// What a stored binding is proved with.
    pub(super) fn of(binding: &KeyBinding) -> Result<Self, Failure> {
        match binding.method {
            ProofKind::Mtls => Ok(Self::Cert(binding.thumbprint.clone())),
            _ => bound_key(binding).map(|key| Self::Key(std::sync::Arc::new(key))),
        }
    }

    /// The binding a grant records for it: its public JWK, or for a
    /// certificate none (the thumbprint is the whole of it).
    pub(super) fn binding(&self, thumbprint: &Thumbprint, method: ProofKind) -> KeyBinding {
        KeyBinding {
            thumbprint: thumbprint.as_str().to_owned(),
            jwk: match self {
                Self::Key(key) => key.public_jwk().cloned().unwrap_or_default(),
                Self::Cert(_) => serde_json::Value::Null,
            },
            method,
        }
    }
}

impl AuthServer {
    /// [`Self::prove`] for either kind of [`Prover`].
    pub(super) fn prove_with(
        &self,
        request: &HttpRequest,
        prover: &Prover,
        method: ProofKind,
        budget: ReplayBudget,
    ) -> Result<Thumbprint, Failure> {
        match prover {
            Prover::Key(key) => self.prove(request, key, method, budget),
            Prover::Cert(x5t) => self.prove_mtls(request, x5t),
        }
    }

    /// `mtls` (§7.3.2): the connection's TLS client certificate is the one
    /// the key names. "Since the TLS connection covers the entire message,
    /// there are no additional requirements to check" (and nothing to
    /// remember against replays: a replay needs the certificate's key).
    fn prove_mtls(&self, request: &HttpRequest, x5t: &str) -> Result<Thumbprint, Failure> {
        self.check_media(request, ProofKind::Mtls)?;
        let refused = |why: &str| {
            self.metrics.signature_failure("mtls");
            Failure::gnap(ErrorCode::InvalidClient, why)
        };
        if !self.config.mtls {
            return Err(refused(
                "mtls is not offered here: the TLS listener does not ask for client certificates",
            ));
        }
        let Some(cert) = &request.client_cert else {
            return Err(refused("mtls: the connection proved no client certificate"));
        };
        if cert.thumbprint() != x5t {
            return Err(refused(
                "mtls: the connection's client certificate is not the key's",
            ));
        }
        Ok(Thumbprint::of_certificate(x5t))
    }

    /// The request content a handler parses: the JSON body, or for an
    /// `application/jose` body the JWS payload, read unverified only so
    /// that the key it must verify with can be found; [`Self::prove`] then
    /// verifies it before anything else happens.
    pub(super) fn content<'a>(&self, request: &'a HttpRequest) -> Result<Cow<'a, [u8]>, Failure> {
        if request.body.is_empty() {
            return Ok(Cow::Borrowed(&[]));
        }
        if attached::is_jose(request) {
            return jws_proof::unverified_content(&request.body)
                .map(Cow::Owned)
                .map_err(|e| self.jws_refusal(e, ReplayBudget::Unapproved));
        }
        require_json(request)?;
        Ok(Cow::Borrowed(&request.body))
    }

    /// [`Self::content`] at a token management URI: a `jws` rotation's
    /// content is nested one proof deeper. Says whether it was.
    pub(super) fn rotation_content<'a>(
        &self,
        request: &'a HttpRequest,
    ) -> Result<(Cow<'a, [u8]>, bool), Failure> {
        if !request.body.is_empty() && attached::is_jose(request) {
            let (content, nested) = jws_proof::unverified_rotation_content(&request.body)
                .map_err(|e| self.jws_refusal(e, ReplayBudget::Bound))?;
            return Ok((Cow::Owned(content), nested));
        }
        Ok((self.content(request)?, false))
    }

    /// Checks that `request` is proved by `key` with `method`, remembering
    /// the proof in the replay `budget`.
    pub(super) fn prove(
        &self,
        request: &HttpRequest,
        key: &VerifyingKey,
        method: ProofKind,
        budget: ReplayBudget,
    ) -> Result<Thumbprint, Failure> {
        self.check_media(request, method)?;
        match JwsMethod::of(method) {
            None => Ok(self.verify(request, key, budget)?.thumbprint),
            Some(jws) => jws_proof::verify(
                jws,
                request,
                key,
                &self.config.profile,
                self.now(),
                self.store.replay(budget),
            )
            .map(|v| v.thumbprint)
            .map_err(|e| self.jws_refusal(e, budget)),
        }
    }

    /// [`Self::prove`] with a stored binding's key and method.
    pub(super) fn prove_bound(
        &self,
        request: &HttpRequest,
        binding: &KeyBinding,
        budget: ReplayBudget,
    ) -> Result<Thumbprint, Failure> {
        self.prove_with(request, &Prover::of(binding)?, binding.method, budget)
    }

    /// A key rotation (§6.1.1) proved with the JWS method of `old`: the
    /// old key's proof nested in `new_key`'s.
    pub(super) fn prove_jws_rotation(
        &self,
        request: &HttpRequest,
        old: &KeyBinding,
        new_key: &VerifyingKey,
    ) -> Result<(), Failure> {
        let budget = ReplayBudget::Bound;
        self.check_media(request, old.method)?;
        let Some(method) = JwsMethod::of(old.method) else {
            return Err(Failure::gnap(
                ErrorCode::InvalidRotation,
                "this key is not bound with a JWS proof",
            ));
        };
        jws_proof::verify_rotation(
            method,
            request,
            &bound_key(old)?,
            new_key,
            &self.config.profile,
            self.now(),
            self.store.replay(budget),
        )
        .map_err(|e| self.jws_refusal(e, budget))?;
        Ok(())
    }

    /// `application/jose` content belongs to `jws` and only to it.
    pub(super) fn check_media(
        &self,
        request: &HttpRequest,
        method: ProofKind,
    ) -> Result<(), Failure> {
        let jose = !request.body.is_empty() && attached::is_jose(request);
        match (method, jose) {
            (ProofKind::Jws, false) if !request.body.is_empty() => Err(Failure::gnap(
                ErrorCode::InvalidClient,
                "this key is bound with jws: its content must be an application/jose JWS",
            )),
            (ProofKind::HttpSig | ProofKind::Jwsd | ProofKind::Mtls, true) => Err(Failure::gnap(
                ErrorCode::InvalidClient,
                "application/jose content is only for a key bound with jws",
            )),
            _ => Ok(()),
        }
    }

    /// The failure for a refused JWS proof: `invalid_client`, except that a
    /// replay cache that cannot answer is the server's limit (as for
    /// signatures), counted like one.
    fn jws_refusal(&self, rejection: JwsRejection, budget: ReplayBudget) -> Failure {
        match rejection {
            JwsRejection::ReplayCache(e) => {
                self.replay_refusal(crate::proto::httpsig::Rejection::ReplayCache(e), budget)
            }
            other => {
                self.metrics.signature_failure(other.reason());
                Failure::gnap(
                    ErrorCode::InvalidClient,
                    &format!("JWS proof rejected: {other}"),
                )
            }
        }
    }
}

/// §2: "sent as a JSON object" with `Content-Type: application/json`.
pub(super) fn require_json(request: &HttpRequest) -> Result<(), Failure> {
    let mut lines = request.fields.lines("content-type");
    let ok = match (lines.next(), lines.next()) {
        (Some(value), None) => {
            let media = value.split(|b| *b == b';').next().unwrap_or_default();
            media.trim_ascii().eq_ignore_ascii_case(b"application/json")
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Failure::UnsupportedMediaType)
    }
}
