//! JWS proofs the AS must refuse (§7.3.3, §7.3.4): each a correct request
//! but for one thing, each to get `invalid_client` (§3.6). For `jws` the
//! grant request is an attached JWS, so "tampered" changes its payload
//! segment; for `jwsd` it changes the body the digest covered.

use std::sync::Arc;

use serde_json::json;

use crate::conformance::check::Verdict;
use crate::conformance::checks::token::managed;
use crate::conformance::checks::{Session, access_right, expect_error};
use crate::conformance::proof::{JwsBreakage, JwsKey, ProofSigner};
use crate::conformance::target::Target;
use crate::proto::httpsig::HttpRequest;
use crate::proto::jws_proof::JwsMethod;

/// Runs the refusal `kind` (`negative-tampered`…) for `method`.
pub async fn run(session: &mut Session, method: JwsMethod, kind: &str) -> Result<Verdict, Verdict> {
    let key = Arc::new(JwsKey::generate(method, "conformance-negative").map_err(Verdict::error)?);
    let now = session.target.now();
    Ok(match kind {
        "negative-tampered" => {
            let mut request = request(session, &key);
            key.sign(&mut request, now).map_err(Verdict::error)?;
            let widened = json!({
                "access_token": { "access": [{ "type": "photo-api", "actions": ["read", "write", "delete"] }] },
                "client": { "key": key.key_object() },
            });
            key.tamper(&mut request, widened.to_string().as_bytes());
            let reply = session.target.send(&request).await;
            expect_error(reply, "invalid_client", "actions widened after signing")
        }
        "negative-replayed" => {
            let mut request = request(session, &key);
            key.sign(&mut request, now).map_err(Verdict::error)?;
            let first = session.target.send(&request).await.map_err(Verdict::fail)?;
            if first.error_code().as_deref() == Some("invalid_client") {
                return Ok(Verdict::fail(
                    "the first copy was already refused with invalid_client",
                ));
            }
            let reply = session.target.send(&request).await;
            expect_error(reply, "invalid_client", "the second copy")
        }
        "negative-wrong-key" => {
            let other = JwsKey::generate(method, "conformance-other").map_err(Verdict::error)?;
            let mut request = request(session, &key);
            other.sign(&mut request, now).map_err(Verdict::error)?;
            let reply = session.target.send(&request).await;
            expect_error(reply, "invalid_client", "proven by another key")
        }
        "negative-stale-created" => {
            let mut request = request(session, &key);
            key.sign_broken(&mut request, now, JwsBreakage::CreatedAgo(86_400))
                .map_err(Verdict::error)?;
            let reply = session.target.send(&request).await;
            expect_error(reply, "invalid_client", "created a day ago")
        }
        "negative-missing-ath" => {
            // The management URI is where a token is presented at once
            // (a continuation would first have to wait).
            session.target.set_signer(key.clone());
            let (_, manage) = managed(session).await?;
            let mut request = Target::request("POST", &manage.uri, Some(&manage.token), None);
            key.sign_broken(&mut request, session.target.now(), JwsBreakage::NoAth)
                .map_err(Verdict::error)?;
            let reply = session.target.send(&request).await;
            expect_error(reply, "invalid_client", "rotation proven without ath")
        }
        _ => crate::conformance::checks::unknown(kind),
    })
}

/// An unproven grant request presenting `key` by value.
fn request(session: &Session, key: &JwsKey) -> HttpRequest {
    let body = json!({
        "access_token": { "access": [access_right()] },
        "client": { "key": key.key_object() },
    });
    Target::request("POST", session.target.grant_endpoint(), None, Some(&body))
}
