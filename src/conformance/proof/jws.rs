//! `jwsd` and `jws` (RFC 9635 §7.3.3, §7.3.4): one signer for both, since
//! they differ only in where the proof travels. With content, `jwsd` signs
//! its digest into the `Detached-JWS` field and `jws` replaces the body with
//! the compact JWS (`application/jose`); without content both use the
//! field. The key is Ed25519 with `alg` and `kid` in its JWK, as §7.1 asks.

use serde_json::{Value, json};

use super::ProofSigner;
use crate::proto::alg::Algorithm;
use crate::proto::b64;
use crate::proto::httpsig::HttpRequest;
use crate::proto::jwk::SigningKey;
use crate::proto::jws_proof::{
    APPLICATION_JOSE, JwsMethod, ProofTarget, sign_attached, sign_detached, sign_rotation,
};

/// One way to break an otherwise good JWS proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwsBreakage {
    /// `created` this many seconds in the past.
    CreatedAgo(i64),
    /// No `ath`, although the request presents an access token.
    NoAth,
}

/// A key proving with `jwsd` or `jws`.
pub struct JwsKey {
    key: SigningKey,
    method: JwsMethod,
}

impl std::fmt::Debug for JwsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwsKey")
            .field("method", &self.method)
            .field("key", &self.key)
            .finish()
    }
}

impl JwsKey {
    /// A fresh Ed25519 key named `kid`, proving with `method`.
    pub fn generate(method: JwsMethod, kid: &str) -> Result<Self, String> {
        let made = |e: crate::proto::jwk::KeyError| format!("cannot make a key: {e}");
        let generated = SigningKey::generate(Algorithm::Ed25519).map_err(made)?;
        let mut jwk = generated.private_jwk().clone();
        if let Some(members) = jwk.as_object_mut() {
            members.insert("alg".into(), Algorithm::Ed25519.jws_name().into());
            members.insert("kid".into(), kid.into());
        }
        let key = SigningKey::from_private_jwk(&jwk, None).map_err(made)?;
        Ok(Self { key, method })
    }

    /// `jwsd` or `jws`.
    pub fn jws_method(&self) -> JwsMethod {
        self.method
    }

    /// Signs like [`ProofSigner::sign`], broken as `breakage` says.
    pub fn sign_broken(
        &self,
        request: &mut HttpRequest,
        now: i64,
        breakage: JwsBreakage,
    ) -> Result<(), String> {
        let created = match breakage {
            JwsBreakage::CreatedAgo(seconds) => now.saturating_sub(seconds),
            JwsBreakage::NoAth => now,
        };
        self.sign_at(request, created, breakage != JwsBreakage::NoAth)
    }

    /// Changes the content `request` carries after it was signed: the body
    /// for `jwsd` (and for a `jws` proof without content), the payload
    /// segment of an attached `jws` proof, its header and signature kept.
    pub fn tamper(&self, request: &mut HttpRequest, content: &[u8]) {
        let attached =
            self.method == JwsMethod::Attached && !request.fields.contains("detached-jws");
        if !attached {
            request.body = content.to_vec();
            return;
        }
        let text = String::from_utf8_lossy(&request.body).into_owned();
        let mut parts = text.split('.');
        let (header, _, signature) = (parts.next(), parts.next(), parts.next());
        request.body = format!(
            "{}.{}.{}",
            header.unwrap_or_default(),
            b64::encode_url(content),
            signature.unwrap_or_default()
        )
        .into_bytes();
    }

    /// Proves a key rotation (§6.1.1, §7.3.3.1, §7.3.4.1): this key signs
    /// the request with the rotation type, `new` signs that JWS.
    pub fn sign_rotation(
        &self,
        new: &JwsKey,
        request: &mut HttpRequest,
        now: i64,
    ) -> Result<(), String> {
        let token = presented_token(request);
        let target = ProofTarget {
            method: &request.method,
            uri: &request.target_uri,
            created: now,
            access_token: token.as_deref(),
        };
        let proof = sign_rotation(self.method, &self.key, &new.key, &target, &request.body)
            .map_err(|e| format!("cannot sign: {e}"))?;
        self.place(request, proof);
        Ok(())
    }

    /// Signs `request` with `created`, naming its access token in `ath`
    /// when `with_ath`.
    fn sign_at(
        &self,
        request: &mut HttpRequest,
        created: i64,
        with_ath: bool,
    ) -> Result<(), String> {
        let token = presented_token(request).filter(|_| with_ath);
        let target = ProofTarget {
            method: &request.method,
            uri: &request.target_uri,
            created,
            access_token: token.as_deref(),
        };
        let proof = match (self.method, request.body.is_empty()) {
            (JwsMethod::Attached, false) => sign_attached(&self.key, &target, &request.body),
            (method, _) => sign_detached(&self.key, method.typ(), &target, &request.body, false),
        }
        .map_err(|e| format!("cannot sign: {e}"))?;
        self.place(request, proof);
        Ok(())
    }

    /// Puts `proof` where the method carries it: the body of a `jws`
    /// request with content, else the `Detached-JWS` field.
    fn place(&self, request: &mut HttpRequest, proof: String) {
        if self.method == JwsMethod::Attached && !request.body.is_empty() {
            request.body = proof.into_bytes();
            request.fields.set("Content-Type", APPLICATION_JOSE);
        } else {
            request.fields.set("Detached-JWS", proof);
        }
    }
}

/// The access token `request` presents (`Authorization: GNAP …`, §7.2).
fn presented_token(request: &HttpRequest) -> Option<String> {
    let value = request.fields.lines("authorization").next()?;
    let text = std::str::from_utf8(value).ok()?;
    text.strip_prefix("GNAP ").map(str::to_owned)
}

impl ProofSigner for JwsKey {
    fn method(&self) -> &'static str {
        match self.method {
            JwsMethod::Detached => "jwsd",
            JwsMethod::Attached => "jws",
        }
    }

    fn key_object(&self) -> Value {
        json!({
            "proof": self.method(),
            "jwk": self.key.verifying_key().public_jwk().cloned().unwrap_or(Value::Null),
        })
    }

    fn sign(&self, request: &mut HttpRequest, now: i64) -> Result<(), String> {
        self.sign_at(request, now, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_of(compact: &[u8]) -> Value {
        let text = std::str::from_utf8(compact).unwrap();
        let segment = text.split('.').next().unwrap();
        serde_json::from_slice(&b64::decode_url(segment).unwrap()).unwrap()
    }

    #[test]
    fn jws_with_content_becomes_the_body_and_without_content_a_detached_field() {
        let key = JwsKey::generate(JwsMethod::Attached, "k").unwrap();
        let mut with = HttpRequest::new("POST", "https://as.example/gnap")
            .with_field("Content-Type", "application/json")
            .with_body(b"{\"a\":1}".to_vec());
        key.sign(&mut with, 1_700_000_000).unwrap();
        assert_eq!(
            with.fields.lines("content-type").collect::<Vec<_>>(),
            vec![APPLICATION_JOSE.as_bytes()]
        );
        assert!(!with.fields.contains("detached-jws"));
        assert_eq!(header_of(&with.body)["typ"], "gnap-binding-jws");

        let mut without = HttpRequest::new("DELETE", "https://as.example/manage/1")
            .with_field("Authorization", "GNAP tok");
        key.sign(&mut without, 1_700_000_000).unwrap();
        assert!(without.body.is_empty());
        let field = without.fields.lines("detached-jws").next().unwrap();
        let header = header_of(field);
        assert_eq!(header["typ"], "gnap-binding-jws");
        assert!(header["ath"].is_string());
    }

    #[test]
    fn the_jwk_names_alg_and_kid_and_no_ath_leaves_ath_out() {
        let key = JwsKey::generate(JwsMethod::Detached, "suite-key").unwrap();
        let object = key.key_object();
        assert_eq!(object["proof"], "jwsd");
        assert_eq!(object["jwk"]["alg"], "EdDSA");
        assert_eq!(object["jwk"]["kid"], "suite-key");
        let mut request = HttpRequest::new("POST", "https://as.example/manage/1")
            .with_field("Authorization", "GNAP tok");
        key.sign_broken(&mut request, 1_700_000_000, JwsBreakage::NoAth)
            .unwrap();
        let header = header_of(request.fields.lines("detached-jws").next().unwrap());
        assert_eq!(header["typ"], "gnap-binding-jwsd");
        assert!(header.get("ath").is_none());
    }
}
