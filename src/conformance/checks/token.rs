//! Token management (RFC 9635 §6): rotation and revocation through the
//! `manage` URI, and what the URI must refuse afterwards.

use serde_json::Value;

use super::{Management, Session, expect_refusal, obtain, single_token, token_request};
use crate::conformance::check::{Check, Level, Verdict};
use crate::conformance::proof::HttpSig;
use crate::conformance::target::Reply;

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
];

/// Runs the token check `id`.
pub async fn run(id: &str, session: &mut Session) -> Verdict {
    match id {
        "token-rotate" => rotate(session).await,
        "token-revoke-204" => revoke(session).await,
        "token-rotate-after-revoke-refused" => rotate_after_revoke(session).await,
        "token-revoke-idempotent" => revoke_twice(session).await,
        "token-manage-bound-to-key" => bound_to_key(session).await,
        _ => super::unknown(id),
    }
}

/// A managed token: the token object and its management.
async fn managed(session: &mut Session) -> Result<(Value, Management), Verdict> {
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
