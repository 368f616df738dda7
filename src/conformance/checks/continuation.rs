//! Continuing a grant (RFC 9635 §5): polling and its pace, the rotation of
//! the continuation token, modification and deletion, and what the
//! continuation URI must refuse.

use serde_json::{Value, json};

use super::{Continuation, Session, accepted, expect_error, expect_refusal, token_request};
use crate::conformance::check::{Check, Level, Verdict};
use crate::conformance::proof::HttpSig;

/// The continuation checks.
pub const CHECKS: &[Check] = &[
    Check {
        id: "continue-too-fast",
        section: "RFC 9635 §5, §3.1",
        level: Level::Must,
        title: "a continuation call before `wait` has elapsed gets too_fast",
    },
    Check {
        id: "continue-poll-after-wait",
        section: "RFC 9635 §5.2",
        level: Level::Must,
        title: "a poll after `wait` gets a grant response",
    },
    Check {
        id: "continue-token-rotated",
        section: "RFC 9635 §5",
        level: Level::Should,
        title: "a continuation response carries a new continuation token",
    },
    Check {
        id: "continue-old-token-refused",
        section: "RFC 9635 §5",
        level: Level::Must,
        title: "a replaced continuation token is refused with invalid_continuation",
    },
    Check {
        id: "continue-patch-modify",
        section: "RFC 9635 §5.3",
        level: Level::Must,
        title: "a PATCH with a modified request gets a grant response",
    },
    Check {
        id: "continue-delete-204",
        section: "RFC 9635 §5.4",
        level: Level::Must,
        title: "DELETE on the continuation URI revokes the grant with 204",
    },
    Check {
        id: "continue-after-delete-refused",
        section: "RFC 9635 §5.4, §5",
        level: Level::Must,
        title: "after DELETE the continuation token is refused with invalid_continuation",
    },
    Check {
        id: "continue-bound-to-key",
        section: "RFC 9635 §5",
        level: Level::Must,
        title: "a continuation call signed by another key is refused",
    },
    Check {
        id: "continue-access-token-refused",
        section: "RFC 9635 §5",
        level: Level::Must,
        title: "an access token presented at the continuation URI is refused",
    },
];

/// Runs the continuation check `id`.
pub async fn run(id: &str, session: &mut Session) -> Verdict {
    match id {
        "continue-too-fast" => too_fast(session).await,
        "continue-poll-after-wait" => poll_after_wait(session).await,
        "continue-token-rotated" => token_rotated(session).await,
        "continue-old-token-refused" => old_token_refused(session).await,
        "continue-patch-modify" => patch_modify(session).await,
        "continue-delete-204" => delete_204(session).await,
        "continue-after-delete-refused" => after_delete(session).await,
        "continue-bound-to-key" => bound_to_key(session).await,
        "continue-access-token-refused" => access_token_refused(session).await,
        _ => super::unknown(id),
    }
}

/// A grant with a continuation, and its whole first response.
async fn continued(session: &mut Session) -> Result<(Continuation, Value), Verdict> {
    let body = token_request(session).await;
    let (_, response) = accepted(session.target.grant(&body).await)?;
    let continuation = Continuation::of(&response)
        .ok_or_else(|| Verdict::not_applicable("the AS offered no continuation for this grant"))?;
    Ok((continuation, response))
}

async fn too_fast(session: &mut Session) -> Verdict {
    let (continuation, _) = match continued(session).await {
        Ok(c) => c,
        Err(v) => return v,
    };
    if continuation.wait == 0 {
        return Verdict::not_applicable("wait is 0: no call can be too fast");
    }
    let reply = continuation.call(&session.target, "POST", None).await;
    expect_error(
        reply,
        "too_fast",
        &format!("polled at once, wait {}", continuation.wait),
    )
}

/// Polls once after `wait`: the continuation and the poll's response.
async fn polled(session: &mut Session) -> Result<(Continuation, Value), Verdict> {
    let (continuation, _) = continued(session).await?;
    continuation.wait_out().await;
    let reply = continuation
        .call(&session.target, "POST", None)
        .await
        .map_err(Verdict::fail)?;
    if let Some(code) = reply.error_code() {
        return Err(Verdict::fail(format!(
            "a poll after wait {} got {code}",
            continuation.wait
        )));
    }
    let response = reply
        .json()
        .filter(Value::is_object)
        .ok_or_else(|| Verdict::fail(format!("{}: the poll's answer is not JSON", reply.status)))?;
    if reply.status != 200 {
        return Err(Verdict::fail(format!("the poll answered {}", reply.status)));
    }
    Ok((continuation, response))
}

async fn poll_after_wait(session: &mut Session) -> Verdict {
    match polled(session).await {
        Ok((_, response)) => {
            let members: Vec<&String> = response
                .as_object()
                .map(|o| o.keys().collect())
                .unwrap_or_default();
            Verdict::pass(format!("200 with {members:?}"))
        }
        Err(v) => v,
    }
}

async fn token_rotated(session: &mut Session) -> Verdict {
    let (old, response) = match polled(session).await {
        Ok(p) => p,
        Err(v) => return v,
    };
    match Continuation::of(&response) {
        None => Verdict::not_applicable("the poll ended the continuation (no new `continue`)"),
        Some(new) => Verdict::holds(new.token != old.token, "the continuation token changed"),
    }
}

async fn old_token_refused(session: &mut Session) -> Verdict {
    let (old, response) = match polled(session).await {
        Ok(p) => p,
        Err(v) => return v,
    };
    let Some(new) = Continuation::of(&response) else {
        return Verdict::not_applicable("the poll ended the continuation (no new `continue`)");
    };
    if new.token == old.token {
        return Verdict::not_applicable("the AS kept the same continuation token");
    }
    new.wait_out().await;
    let reply = old.call(&session.target, "POST", None).await;
    expect_error(reply, "invalid_continuation", "the replaced token")
}

async fn patch_modify(session: &mut Session) -> Verdict {
    let (continuation, _) = match continued(session).await {
        Ok(c) => c,
        Err(v) => return v,
    };
    continuation.wait_out().await;
    let body = json!({
        "access_token": {
            "access": [{ "type": "photo-api", "actions": ["read"], "datatypes": ["metadata"] }]
        },
        "interact": super::interaction::polling_interact(session).await,
    });
    let reply = continuation
        .call(&session.target, "PATCH", Some(&body))
        .await;
    match accepted(reply) {
        Ok((_, response)) => {
            let answered =
                response.get("access_token").is_some() || response.get("continue").is_some();
            Verdict::holds(answered, "a grant response to the modification")
        }
        Err(v) => v,
    }
}

async fn delete_204(session: &mut Session) -> Verdict {
    let (continuation, _) = match continued(session).await {
        Ok(c) => c,
        Err(v) => return v,
    };
    // `wait` holds for every call to the continuation URI (§5), DELETE too.
    continuation.wait_out().await;
    match continuation.call(&session.target, "DELETE", None).await {
        Ok(reply) => Verdict::holds(reply.status == 204, format!("DELETE: {}", reply.summary())),
        Err(e) => Verdict::fail(e),
    }
}

async fn after_delete(session: &mut Session) -> Verdict {
    let (continuation, _) = match continued(session).await {
        Ok(c) => c,
        Err(v) => return v,
    };
    continuation.wait_out().await;
    match continuation.call(&session.target, "DELETE", None).await {
        Ok(reply) if reply.status == 204 => {}
        Ok(reply) => {
            return Verdict::not_applicable(format!("DELETE did not revoke: {}", reply.summary()));
        }
        Err(e) => return Verdict::fail(e),
    }
    continuation.wait_out().await;
    let reply = continuation.call(&session.target, "POST", None).await;
    expect_error(reply, "invalid_continuation", "continuing a deleted grant")
}

async fn bound_to_key(session: &mut Session) -> Verdict {
    let (continuation, _) = match continued(session).await {
        Ok(c) => c,
        Err(v) => return v,
    };
    let other = match HttpSig::generate("conformance-other") {
        Ok(k) => k,
        Err(e) => return Verdict::error(e),
    };
    continuation.wait_out().await;
    let reply = session
        .target
        .signed_by(
            &other,
            "POST",
            &continuation.uri,
            Some(&continuation.token),
            None,
        )
        .await;
    expect_refusal(reply, "the continuation token under another key")
}

async fn access_token_refused(session: &mut Session) -> Verdict {
    let body = token_request(session).await;
    let response = match super::obtain(session, &body).await {
        Ok(r) => r,
        Err(v) => return v,
    };
    let Some(continuation) = Continuation::of(&response) else {
        return Verdict::not_applicable("no continuation beside the access token");
    };
    let Some(access) = response
        .pointer("/access_token/value")
        .and_then(Value::as_str)
    else {
        return Verdict::not_applicable("no access token beside the continuation");
    };
    continuation.wait_out().await;
    let reply = session
        .target
        .signed("POST", &continuation.uri, Some(access), None)
        .await;
    expect_refusal(reply, "the access token at the continuation URI")
}
