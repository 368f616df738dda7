//! `httpsig` (RFC 9635 §7.3.1): RFC 9421 signatures under the GNAP profile.
//!
//! [`HttpSig`] also signs the deliberately broken requests of the
//! `negative-*` checks ([`Breakage`]): those are specific to RFC 9421, so
//! they live on the type, not on the trait.

use serde_json::{Value, json};

use super::ProofSigner;

use crate::proto::alg::Algorithm;
use crate::proto::digest::{DigestAlgorithm, content_digest};
use crate::proto::httpsig::profile::TAG_GNAP;
use crate::proto::httpsig::sign::sign_request;
use crate::proto::httpsig::{
    ComponentId, Derived, HttpRequest, Metadata, SignOptions, SignatureParams, sign_gnap,
};
use crate::proto::jwk::SigningKey;

/// One way to break an otherwise good RFC 9421 signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breakage {
    /// Leave this component out of the covered list.
    Omit(&'static str),
    /// Sign with `created` this many seconds in the past.
    CreatedAgo(i64),
    /// Sign with this `tag` instead of `gnap`.
    Tag(&'static str),
}

/// RFC 9421 signatures under the GNAP profile (§7.3.1), with an Ed25519 key
/// of the suite's own.
pub struct HttpSig {
    key: SigningKey,
}

impl std::fmt::Debug for HttpSig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSig").field("key", &self.key).finish()
    }
}

impl HttpSig {
    /// A fresh Ed25519 key named `kid`.
    pub fn generate(kid: &str) -> Result<Self, String> {
        let key = SigningKey::generate(Algorithm::Ed25519)
            .and_then(|key| key.with_kid(kid))
            .map_err(|e| format!("cannot make a key: {e}"))?;
        Ok(Self { key })
    }

    /// The signing key.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// Signs like [`ProofSigner::sign`] but broken as `breakage` says: the
    /// `Content-Digest` is still set, the profile's other parameters kept.
    pub fn sign_broken(
        &self,
        request: &mut HttpRequest,
        now: i64,
        breakage: Breakage,
    ) -> Result<(), String> {
        let mut covered = vec![
            ComponentId::derived(Derived::Method),
            ComponentId::derived(Derived::TargetUri),
        ];
        if !request.body.is_empty() {
            let digest = content_digest(&request.body, &[DigestAlgorithm::Sha256]);
            request.fields.set("Content-Digest", digest.into_bytes());
            covered.push(ComponentId::field("content-digest"));
        }
        if request.fields.contains("authorization") {
            covered.push(ComponentId::field("authorization"));
        }
        if let Breakage::Omit(name) = breakage {
            let omitted = match name {
                "@method" => ComponentId::derived(Derived::Method),
                "@target-uri" => ComponentId::derived(Derived::TargetUri),
                field => ComponentId::field(field),
            };
            covered.retain(|c| *c != omitted);
        }
        let created = match breakage {
            Breakage::CreatedAgo(seconds) => now.saturating_sub(seconds),
            _ => now,
        };
        let tag = match breakage {
            Breakage::Tag(tag) => tag,
            _ => TAG_GNAP,
        };
        let mut nonce = [0u8; 16];
        crate::random::fill(&mut nonce).map_err(|e| e.to_string())?;
        let params = SignatureParams::new(
            covered,
            Metadata {
                created: Some(created),
                expires: None,
                keyid: self.key.verifying_key().kid().map(str::to_owned),
                nonce: Some(crate::proto::b64::encode_url(&nonce)),
                alg: None,
                tag: Some(tag.to_owned()),
            },
        )
        .map_err(|e| format!("signature parameters: {e:?}"))?;
        sign_request(request, "sig1", &params, &self.key)
            .map(|_| ())
            .map_err(|e| format!("cannot sign: {e}"))
    }
}

impl ProofSigner for HttpSig {
    fn method(&self) -> &'static str {
        "httpsig"
    }

    fn key_object(&self) -> Value {
        json!({
            "proof": "httpsig",
            "jwk": self.key.verifying_key().public_jwk().cloned().unwrap_or(Value::Null),
        })
    }

    fn sign(&self, request: &mut HttpRequest, now: i64) -> Result<(), String> {
        sign_gnap(request, &self.key, now, &SignOptions::default())
            .map(|_| ())
            .map_err(|e| format!("cannot sign: {e}"))
    }
}
