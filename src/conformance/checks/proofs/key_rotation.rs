//! Key rotation (§6.1.1) with the JWS methods, and its refusal with mTLS.
//!
//! `jwsd`/`jws`: the old key signs the request typed
//! `gnap-binding-rotation-*`, the new key signs that JWS (§7.3.3.1,
//! §7.3.4.1); then the new key must manage the token. Like
//! `token-key-rotation`, it runs only where discovery lists
//! `key_rotation_supported`.
//!
//! `mtls`: "dynamic key rotation for this proofing method is not defined"
//! (§7.3.2.1), since one connection proves one certificate. §6.1.1 names
//! two answers that fit: `key_rotation_not_supported` ("does not allow
//! rotation … for any reason") and `invalid_rotation` ("failure to present
//! the appropriate proof of … the new key"); either passes, a rotation
//! fails.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::conformance::check::Verdict;
use crate::conformance::checks::token::managed;
use crate::conformance::checks::{Management, Session};
use crate::conformance::proof::{CertForm, JwsKey, Mtls, ProofSigner};
use crate::conformance::target::Target;
use crate::proto::jws_proof::JwsMethod;

/// A `jwsd` or `jws` key rotation, then a rotation by the new key.
pub async fn jws(session: &mut Session, method: JwsMethod) -> Result<Verdict, Verdict> {
    let listed = session
        .discovery()
        .await
        .and_then(|d| d.get("key_rotation_supported").and_then(Value::as_bool));
    if listed != Some(true) {
        return Err(Verdict::not_applicable(
            "the AS does not list key_rotation_supported",
        ));
    }
    let old = Arc::new(JwsKey::generate(method, "conformance-old").map_err(Verdict::error)?);
    let new = JwsKey::generate(method, "conformance-new").map_err(Verdict::error)?;
    session.target.set_signer(old.clone());
    let (_, manage) = managed(session).await?;
    let body = json!({ "key": new.key_object() });
    let mut request = Target::request("POST", &manage.uri, Some(&manage.token), Some(&body));
    old.sign_rotation(&new, &mut request, session.target.now())
        .map_err(Verdict::error)?;
    let reply = session.target.send(&request).await.map_err(Verdict::fail)?;
    if reply.error_code().as_deref() == Some("key_rotation_not_supported") {
        return Err(Verdict::not_applicable(
            "the AS does not rotate this token's key",
        ));
    }
    let rotated = reply
        .json()
        .and_then(|j| j.get("access_token").cloned())
        .ok_or_else(|| Verdict::fail(format!("key rotation answered {}", reply.summary())))?;
    let next = Management::of(&rotated)
        .ok_or_else(|| Verdict::fail("the rotated token has no management URI"))?;
    let again = session
        .target
        .signed_by(&new, "POST", &next.uri, Some(&next.token), None)
        .await
        .map_err(Verdict::fail)?;
    Ok(Verdict::holds(
        again.status == 200,
        format!("rotated; the new key's rotation: {}", again.summary()),
    ))
}

/// An `mtls` key rotation to another certificate, asked over the old one.
pub async fn mtls(session: &mut Session) -> Result<Verdict, Verdict> {
    let make = |cn| Mtls::generate(cn, CertForm::Cert, session.target.roots());
    let old = Arc::new(make("conformance-old").map_err(Verdict::error)?);
    let new = make("conformance-new").map_err(Verdict::error)?;
    session.target.set_signer(old);
    let (_, manage) = managed(session).await?;
    let body = json!({ "key": new.key_object() });
    let reply = session
        .target
        .signed("POST", &manage.uri, Some(&manage.token), Some(&body))
        .await
        .map_err(Verdict::fail)?;
    Ok(match reply.error_code().as_deref() {
        Some("key_rotation_not_supported" | "invalid_rotation") => {
            Verdict::pass(format!("refused: {}", reply.summary()))
        }
        _ => Verdict::fail(format!(
            "a rotation to a certificate the connection did not prove: {}",
            reply.summary()
        )),
    })
}
