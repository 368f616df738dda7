//! Requests whose proof must fail (RFC 9635 §7.3.1, httpsig): each is a
//! correct grant request except for one thing, and each must get
//! `invalid_client` (§3.6: "the client's signature validation failed").
//! They run only when the AS takes `httpsig` (it lists it, or lists no
//! proofing methods at all).

use serde_json::json;

use super::{Continuation, Session, accepted, access_right, expect_error};
use crate::conformance::check::{Check, Level, Verdict};
use crate::conformance::proof::{Breakage, HttpSig, ProofSigner};
use crate::conformance::target::Target;

/// The negative checks.
pub const CHECKS: &[Check] = &[
    Check {
        id: "negative-unsigned",
        section: "RFC 9635 §7.3, §3.6",
        level: Level::Must,
        title: "a request presenting a key but carrying no signature gets invalid_client",
    },
    Check {
        id: "negative-tampered-body",
        section: "RFC 9635 §7.3.1",
        level: Level::Must,
        title: "a body changed after signing (Content-Digest no longer matches) gets invalid_client",
    },
    Check {
        id: "negative-replayed",
        section: "RFC 9635 §7.3.1",
        level: Level::Must,
        title: "the same signed request sent twice (same nonce) is refused the second time with invalid_client",
    },
    Check {
        id: "negative-wrong-key",
        section: "RFC 9635 §7.3.1",
        level: Level::Must,
        title: "a request signed by a key other than the one it presents gets invalid_client",
    },
    Check {
        id: "negative-stale-created",
        section: "RFC 9635 §7.3.1",
        level: Level::Must,
        title: "a signature created a day ago gets invalid_client",
    },
    Check {
        id: "negative-wrong-tag",
        section: "RFC 9635 §7.3.1",
        level: Level::Must,
        title: "a signature whose tag is not `gnap` gets invalid_client",
    },
    Check {
        id: "negative-missing-method",
        section: "RFC 9635 §7.3.1",
        level: Level::Must,
        title: "a signature not covering @method gets invalid_client",
    },
    Check {
        id: "negative-missing-target-uri",
        section: "RFC 9635 §7.3.1",
        level: Level::Must,
        title: "a signature not covering @target-uri gets invalid_client",
    },
    Check {
        id: "negative-missing-content-digest",
        section: "RFC 9635 §7.3.1",
        level: Level::Must,
        title: "a signature over a request with content not covering content-digest gets invalid_client",
    },
    Check {
        id: "negative-missing-authorization",
        section: "RFC 9635 §7.3.1",
        level: Level::Must,
        title: "a continuation call whose signature does not cover authorization gets invalid_client",
    },
];

/// Runs the negative check `id`.
pub async fn run(id: &str, session: &mut Session) -> Verdict {
    if session.lists("key_proofs_supported", "httpsig").await == Some(false) {
        return Verdict::not_applicable("the AS does not list httpsig");
    }
    let key = match HttpSig::generate("conformance-negative") {
        Ok(k) => k,
        Err(e) => return Verdict::error(e),
    };
    match id {
        "negative-unsigned" => unsigned(session, &key).await,
        "negative-tampered-body" => tampered(session, &key).await,
        "negative-replayed" => replayed(session, &key).await,
        "negative-wrong-key" => wrong_key(session, &key).await,
        "negative-stale-created" => {
            broken(
                session,
                &key,
                Breakage::CreatedAgo(86_400),
                "created a day ago",
            )
            .await
        }
        "negative-wrong-tag" => {
            broken(session, &key, Breakage::Tag("not-gnap"), "tag not-gnap").await
        }
        "negative-missing-method" => {
            broken(
                session,
                &key,
                Breakage::Omit("@method"),
                "@method not covered",
            )
            .await
        }
        "negative-missing-target-uri" => {
            broken(
                session,
                &key,
                Breakage::Omit("@target-uri"),
                "@target-uri not covered",
            )
            .await
        }
        "negative-missing-content-digest" => {
            let what = "content-digest not covered";
            broken(session, &key, Breakage::Omit("content-digest"), what).await
        }
        "negative-missing-authorization" => missing_authorization(session, &key).await,
        _ => super::unknown(id),
    }
}

/// An unsigned grant request presenting `key` by value.
fn request(session: &Session, key: &HttpSig) -> crate::proto::httpsig::HttpRequest {
    let body = json!({
        "access_token": { "access": [access_right()] },
        "client": { "key": key.key_object() },
    });
    Target::request("POST", session.target.grant_endpoint(), None, Some(&body))
}

async fn unsigned(session: &Session, key: &HttpSig) -> Verdict {
    let request = request(session, key);
    let reply = session.target.send(&request).await;
    expect_error(reply, "invalid_client", "no signature")
}

async fn tampered(session: &Session, key: &HttpSig) -> Verdict {
    let mut request = request(session, key);
    if let Err(e) = key.sign(&mut request, session.target.now()) {
        return Verdict::error(e);
    }
    let changed = json!({
        "access_token": { "access": [{ "type": "photo-api", "actions": ["read", "write", "delete"] }] },
        "client": { "key": key.key_object() },
    });
    request.body = changed.to_string().into_bytes();
    let reply = session.target.send(&request).await;
    expect_error(reply, "invalid_client", "actions widened after signing")
}

async fn replayed(session: &Session, key: &HttpSig) -> Verdict {
    let mut request = request(session, key);
    if let Err(e) = key.sign(&mut request, session.target.now()) {
        return Verdict::error(e);
    }
    match session.target.send(&request).await {
        Ok(first) if first.error_code().as_deref() == Some("invalid_client") => {
            return Verdict::fail("the first copy was already refused with invalid_client");
        }
        Ok(_) => {}
        Err(e) => return Verdict::fail(e),
    }
    let reply = session.target.send(&request).await;
    expect_error(reply, "invalid_client", "the second copy")
}

async fn wrong_key(session: &Session, presented: &HttpSig) -> Verdict {
    let signer = match HttpSig::generate("conformance-negative") {
        Ok(k) => k,
        Err(e) => return Verdict::error(e),
    };
    let mut request = request(session, presented);
    if let Err(e) = signer.sign(&mut request, session.target.now()) {
        return Verdict::error(e);
    }
    let reply = session.target.send(&request).await;
    expect_error(reply, "invalid_client", "signed by another key")
}

async fn broken(session: &Session, key: &HttpSig, breakage: Breakage, what: &str) -> Verdict {
    let mut request = request(session, key);
    if let Err(e) = key.sign_broken(&mut request, session.target.now(), breakage) {
        return Verdict::error(e);
    }
    let reply = session.target.send(&request).await;
    expect_error(reply, "invalid_client", what)
}

async fn missing_authorization(session: &mut Session, key: &HttpSig) -> Verdict {
    let interact = super::interaction::polling_interact(session).await;
    let reply = session
        .target
        .signed_by(
            key,
            "POST",
            session.target.grant_endpoint(),
            None,
            Some(&json!({
                "access_token": { "access": [access_right()] },
                "client": { "key": key.key_object() },
                "interact": interact,
            })),
        )
        .await;
    let response = match accepted(reply) {
        Ok((_, r)) => r,
        Err(v) => return v,
    };
    let Some(continuation) = Continuation::of(&response) else {
        return Verdict::not_applicable("the AS offered no continuation to present a token at");
    };
    continuation.wait_out().await;
    let mut request = Target::request("POST", &continuation.uri, Some(&continuation.token), None);
    if let Err(e) = key.sign_broken(
        &mut request,
        session.target.now(),
        Breakage::Omit("authorization"),
    ) {
        return Verdict::error(e);
    }
    let reply = session.target.send(&request).await;
    expect_error(reply, "invalid_client", "authorization not covered")
}
