//! Token management (RFC 9635 §6): rotation and revocation through the
//! `manage` URI, and what the URI must refuse afterwards.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{
    Management, Session, expect_error, expect_refusal, obtain, single_token, token_request,
};
use crate::conformance::check::{Check, Level, Verdict};
use crate::conformance::proof::{HttpSig, ProofSigner};
use crate::conformance::target::{Reply, Target};
use crate::proto::httpsig::sign_gnap_rotation;

/// The token management checks.
pub const CHECKS: &[Check] = &[
    Check {
        id: "token-rotate",
        section: "RFC 9635 §6.1",
        level: Level::Must,
        title: "rotation answers 200 with a new token value, a management URI and the same access",
    },
    Check {
        id: "token-revoke-204",
        section: "RFC 9635 §6.2",
        level: Level::Must,
        title: "DELETE on the management URI revokes the token with 204",
    },
    Check {
        id: "token-rotate-after-revoke-refused",
        section: "RFC 9635 §6.2, §6.1",
        level: Level::Must,
        title: "a revoked token cannot be rotated",
    },
    Check {
        id: "token-revoke-idempotent",
        section: "RFC 9635 §6.2",
        level: Level::Should,
        title: "revoking an already revoked token is honoured (204)",
    },
    Check {
        id: "token-manage-bound-to-key",
        section: "RFC 9635 §6",
        level: Level::Must,
        title: "a management call signed by another key is refused",
    },
    Check {
        id: "token-key-rotation",
        section: "RFC 9635 §6.1.1, §7.3.1.1",
        level: Level::Must,
        title: "rotation to a new key signed by both keys succeeds, and the new key then manages the token",
    },
    Check {
        id: "token-key-rotation-one-signature",
        section: "RFC 9635 §6.1.1",
        level: Level::Must,
        title: "rotation to a new key proven only by the old key gets invalid_rotation",
    },
];

/// Runs the token check `id`.
pub async fn run(id: &str, session: &mut Session) -> Verdict {
    match id {
        "token-rotate" => rotate(session).await,
        "token-revoke-204" => revoke(session).await,
        "token-rotate-after-revoke-refused" => rotate_after_revoke(session).await,
        "token-revoke-idempotent" => revoke_twice(session).await,
        "token-manage-bound-to-key" => bound_to_key(session).await,
        "token-key-rotation" => key_rotation(session, true).await,
        "token-key-rotation-one-signature" => key_rotation(session, false).await,
        _ => super::unknown(id),
    }
}

/// A managed token: the token object and its management.
pub async fn managed(session: &mut Session) -> Result<(Value, Management), Verdict> {
    let body = token_request(session).await;
    let response = obtain(session, &body).await?;
    let token = single_token(&response)?.clone();
    let manage = Management::of(&token)
        .ok_or_else(|| Verdict::not_applicable("the token has no `manage` (OPTIONAL)"))?;
    Ok((token, manage))
}

async fn call(session: &Session, method: &str, manage: &Management) -> Result<Reply, String> {
    session
        .target
        .signed(method, &manage.uri, Some(&manage.token), None)
        .await
}

async fn rotate(session: &mut Session) -> Verdict {
    let (token, manage) = match managed(session).await {
        Ok(m) => m,
        Err(v) => return v,
    };
    let reply = match call(session, "POST", &manage).await {
        Ok(r) => r,
        Err(e) => return Verdict::fail(e),
    };
    if reply.status != 200 {
        return Verdict::fail(format!("rotation answered {}", reply.summary()));
    }
    let Some(rotated) = reply.json().and_then(|j| j.get("access_token").cloned()) else {
        return Verdict::fail("no access_token in the rotation response");
    };
    let old = token.get("value");
    let new = rotated.get("value");
    if new.is_none() || new == old {
        return Verdict::fail("the rotated value is absent or the same as before");
    }
    if rotated
        .pointer("/manage/uri")
        .and_then(Value::as_str)
        .is_none()
    {
        return Verdict::fail("the rotated token has no management URI");
    }
    Verdict::holds(
        rotated.get("access") == token.get("access"),
        "a new value, a management URI; access compared with the original",
    )
}

async fn revoke(session: &mut Session) -> Verdict {
    let (_, manage) = match managed(session).await {
        Ok(m) => m,
        Err(v) => return v,
    };
    match call(session, "DELETE", &manage).await {
        Ok(reply) => Verdict::holds(reply.status == 204, format!("DELETE: {}", reply.summary())),
        Err(e) => Verdict::fail(e),
    }
}

/// A token revoked through its management URI.
async fn revoked(session: &mut Session) -> Result<Management, Verdict> {
    let (_, manage) = managed(session).await?;
    let reply = call(session, "DELETE", &manage)
        .await
        .map_err(Verdict::fail)?;
    if reply.status != 204 {
        return Err(Verdict::not_applicable(format!(
            "revocation did not succeed: {}",
            reply.summary()
        )));
    }
    Ok(manage)
}

async fn rotate_after_revoke(session: &mut Session) -> Verdict {
    let manage = match revoked(session).await {
        Ok(m) => m,
        Err(v) => return v,
    };
    let reply = call(session, "POST", &manage).await;
    expect_refusal(reply, "rotating a revoked token")
}

async fn revoke_twice(session: &mut Session) -> Verdict {
    let manage = match revoked(session).await {
        Ok(m) => m,
        Err(v) => return v,
    };
    match call(session, "DELETE", &manage).await {
        Ok(reply) => Verdict::holds(
            reply.status == 204,
            format!("second DELETE: {}", reply.summary()),
        ),
        Err(e) => Verdict::fail(e),
    }
}

async fn bound_to_key(session: &mut Session) -> Verdict {
    let (_, manage) = match managed(session).await {
        Ok(m) => m,
        Err(v) => return v,
    };
    let other = match HttpSig::generate("conformance-other") {
        Ok(k) => k,
        Err(e) => return Verdict::error(e),
    };
    let reply = session
        .target
        .signed_by(&other, "POST", &manage.uri, Some(&manage.token), None)
        .await;
    expect_refusal(reply, "rotation signed by another key")
}

/// Rotates a token's key (§6.1.1) from a key of the check's own to a new
/// one: signed by both (`both`), or only by the old one, which must be
/// refused. Runs only where discovery lists `key_rotation_supported`.
async fn key_rotation(session: &mut Session, both: bool) -> Verdict {
    let listed = session
        .discovery()
        .await
        .and_then(|d| d.get("key_rotation_supported").and_then(Value::as_bool));
    if listed != Some(true) {
        return Verdict::not_applicable("the AS does not list key_rotation_supported");
    }
    let (old, new) = match (
        HttpSig::generate("conformance-old"),
        HttpSig::generate("conformance-new"),
    ) {
        (Ok(old), Ok(new)) => (Arc::new(old), new),
        (Err(e), _) | (_, Err(e)) => return Verdict::error(e),
    };
    session.target.set_signer(old.clone());
    let (_, manage) = match managed(session).await {
        Ok(m) => m,
        Err(v) => return v,
    };
    let body = json!({ "key": new.key_object() });
    let mut request = Target::request("POST", &manage.uri, Some(&manage.token), Some(&body));
    let now = session.target.now();
    let signed = if both {
        sign_gnap_rotation(&mut request, old.key(), new.key(), now).map_err(|e| e.to_string())
    } else {
        old.sign(&mut request, now)
    };
    if let Err(e) = signed {
        return Verdict::error(e);
    }
    let reply = session.target.send(&request).await;
    if !both {
        return expect_error(reply, "invalid_rotation", "the new key unproven");
    }
    let reply = match reply {
        Ok(r) => r,
        Err(e) => return Verdict::fail(e),
    };
    if reply.error_code().as_deref() == Some("key_rotation_not_supported") {
        return Verdict::not_applicable("the AS does not rotate this token's key");
    }
    let Some(rotated) = reply.json().and_then(|j| j.get("access_token").cloned()) else {
        return Verdict::fail(format!("key rotation answered {}", reply.summary()));
    };
    let Some(next) = Management::of(&rotated) else {
        return Verdict::fail("the rotated token has no management URI");
    };
    let again = session
        .target
        .signed_by(&new, "POST", &next.uri, Some(&next.token), None)
        .await;
    match again {
        Ok(r) if r.status == 200 => Verdict::pass("rotated; the new key rotates the token again"),
        Ok(r) => Verdict::fail(format!(
            "after key rotation the new key's rotation got {}",
            r.summary()
        )),
        Err(e) => Verdict::fail(e),
    }
}
