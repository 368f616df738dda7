//! A client's life with one proofing method, a key by value: the grant,
//! a continuation call, a token rotation and a revocation, each proven
//! with the method (and each check with a grant and key of its own).

use std::sync::Arc;

use serde_json::Value;

use crate::conformance::check::Verdict;
use crate::conformance::checks::token::managed;
use crate::conformance::checks::{Continuation, Session, accepted, token_request};
use crate::conformance::proof::ProofSigner;

/// The grant request, proven by `signer`.
pub async fn grant(
    session: &mut Session,
    signer: Result<Arc<dyn ProofSigner>, String>,
) -> Result<Verdict, Verdict> {
    session.target.set_signer(signer.map_err(Verdict::error)?);
    let body = token_request(session).await;
    let (_, response) = accepted(session.target.grant(&body).await)?;
    let method = session.target.signer().method();
    Ok(if response.get("access_token").is_some() {
        Verdict::pass(format!("{method}: approved at once"))
    } else if response.get("continue").is_some() || response.get("interact").is_some() {
        Verdict::pass(format!("{method}: pending"))
    } else {
        Verdict::fail(format!("{method}: neither a token nor continue/interact"))
    })
}

/// A continuation call after `wait`, proven by `signer`.
pub async fn continuation(
    session: &mut Session,
    signer: Result<Arc<dyn ProofSigner>, String>,
) -> Result<Verdict, Verdict> {
    session.target.set_signer(signer.map_err(Verdict::error)?);
    let body = token_request(session).await;
    let (_, response) = accepted(session.target.grant(&body).await)?;
    let continuation = Continuation::of(&response)
        .ok_or_else(|| Verdict::not_applicable("the AS offered no continuation for this grant"))?;
    continuation.wait_out().await;
    let reply = continuation.call(&session.target, "POST", None).await;
    let (reply, _) = accepted(reply)?;
    Ok(Verdict::pass(format!("continued: {}", reply.summary())))
}

/// A token rotation (§6.1) proven by `signer`: a new value.
pub async fn rotate(
    session: &mut Session,
    signer: Result<Arc<dyn ProofSigner>, String>,
) -> Result<Verdict, Verdict> {
    session.target.set_signer(signer.map_err(Verdict::error)?);
    let (token, manage) = managed(session).await?;
    let reply = session
        .target
        .signed("POST", &manage.uri, Some(&manage.token), None)
        .await
        .map_err(Verdict::fail)?;
    if reply.status != 200 {
        return Ok(Verdict::fail(format!(
            "rotation answered {}",
            reply.summary()
        )));
    }
    let rotated = reply
        .json()
        .and_then(|j| j.pointer("/access_token/value").cloned())
        .filter(Value::is_string);
    Ok(Verdict::holds(
        rotated.is_some() && rotated.as_ref() != token.get("value"),
        "rotated: a new token value",
    ))
}

/// A revocation (§6.2) proven by `signer`: 204.
pub async fn revoke(
    session: &mut Session,
    signer: Result<Arc<dyn ProofSigner>, String>,
) -> Result<Verdict, Verdict> {
    session.target.set_signer(signer.map_err(Verdict::error)?);
    let (_, manage) = managed(session).await?;
    let reply = session
        .target
        .signed("DELETE", &manage.uri, Some(&manage.token), None)
        .await
        .map_err(Verdict::fail)?;
    Ok(Verdict::holds(
        reply.status == 204,
        format!("DELETE: {}", reply.summary()),
    ))
}
