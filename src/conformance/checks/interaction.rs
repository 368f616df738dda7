//! Interaction (RFC 9635 §2.5, §3.3, §4, §5.1), driven through the
//! operator's `--approve-hook`: the suite asks for a start mode and a
//! finish method, hands what the AS answered to the hook (the person and
//! the browser), and checks what comes back to its finish URI and what
//! continuing then gives. Without a hook every check here is
//! `not_applicable`.

use serde_json::{Value, json};

use super::{Continuation, Session, accepted, access_right, expect_error};
use crate::conformance::check::{Check, Level, Verdict};
use crate::conformance::finish_listener::Arrival;
use crate::conformance::hook::{Decision, Interaction};
use crate::proto::gnap::interact::{HashMethod, interaction_hash};

/// The interaction checks.
pub const CHECKS: &[Check] = &[
    Check {
        id: "interact-redirect-finish-hash",
        section: "RFC 9635 §3.3.5, §4.2.1, §4.2.3",
        level: Level::Must,
        title: "a redirect finish brings the browser to the finish URI with interact_ref and a hash that verifies",
    },
    Check {
        id: "interact-push-finish-hash",
        section: "RFC 9635 §4.2.2, §4.2.3",
        level: Level::Must,
        title: "a push finish POSTs interact_ref and a hash that verifies to the finish URI",
    },
    Check {
        id: "interact-ref-continue",
        section: "RFC 9635 §5.1",
        level: Level::Must,
        title: "continuing with the interact_ref after approval gets the access token",
    },
    Check {
        id: "interact-ref-single-use",
        section: "RFC 9635 §5.1, §4.2",
        level: Level::Must,
        title: "an interact_ref presented again after it was used gets too_many_attempts",
    },
    Check {
        id: "interact-user-code",
        section: "RFC 9635 §3.3.3, §5.2",
        level: Level::Must,
        title: "a user_code start gets a typeable code; once approved, polling gets the token",
    },
    Check {
        id: "interact-user-code-uri",
        section: "RFC 9635 §3.3.4, §5.2",
        level: Level::Must,
        title: "a user_code_uri start gets a code and an absolute URI without the code; once approved, polling gets the token",
    },
    Check {
        id: "interact-pending-no-token",
        section: "RFC 9635 §5.2",
        level: Level::Must,
        title: "a poll while the grant waits for a person gets no access token",
    },
    Check {
        id: "interact-denied",
        section: "RFC 9635 §3.6",
        level: Level::Should,
        title: "continuing after the person denied gets user_denied",
    },
];

/// Runs the interaction check `id`.
pub async fn run(id: &str, session: &mut Session) -> Verdict {
    if session.hook.is_none() {
        return Verdict::not_applicable("no --approve-hook: the suite cannot act as the person");
    }
    match id {
        "interact-redirect-finish-hash" => finish_hash(session, "redirect").await,
        "interact-push-finish-hash" => finish_hash(session, "push").await,
        "interact-ref-continue" => ref_continue(session).await,
        "interact-ref-single-use" => ref_single_use(session).await,
        "interact-user-code" => user_code(session, "user_code").await,
        "interact-user-code-uri" => user_code(session, "user_code_uri").await,
        "interact-pending-no-token" => pending_no_token(session).await,
        "interact-denied" => denied(session).await,
        _ => super::unknown(id),
    }
}

/// The start modes the suite asks for when it only needs the grant
/// approved: the ones a hook can act on that the AS lists (both when it
/// lists none).
async fn start_modes(session: &mut Session) -> Vec<&'static str> {
    let mut modes = Vec::new();
    for mode in ["redirect", "user_code"] {
        if session
            .lists("interaction_start_modes_supported", mode)
            .await
            != Some(false)
        {
            modes.push(mode);
        }
    }
    modes
}

/// An `interact` for a grant that is approved by the hook and polled.
pub async fn polling_interact(session: &mut Session) -> Value {
    json!({ "start": start_modes(session).await })
}

/// Runs the hook on `pending` and polls until the token comes: the final
/// grant response.
pub async fn approve_and_poll(session: &mut Session, pending: &Value) -> Result<Value, Verdict> {
    let continuation = Continuation::of(pending)
        .ok_or_else(|| Verdict::fail("a pending grant response without `continue`"))?;
    decide(session, pending, Decision::Approve).await?;
    poll_until_done(session, continuation).await
}

/// Runs the hook with `decision` on the `interact` of `pending`.
async fn decide(session: &Session, pending: &Value, decision: Decision) -> Result<(), Verdict> {
    let interact = pending
        .get("interact")
        .ok_or_else(|| Verdict::fail("a pending grant response without `interact`"))?;
    let hook = session
        .hook
        .as_ref()
        .ok_or_else(|| Verdict::not_applicable("no --approve-hook"))?;
    hook.run(
        &Interaction::from_response(interact),
        decision,
        session.target.grant_endpoint(),
    )
    .await
    .map_err(Verdict::error)
}

/// Polls (waiting `wait` each time) until a response without `continue`
/// or with a token; an error answer is returned as a fail.
async fn poll_until_done(
    session: &Session,
    mut continuation: Continuation,
) -> Result<Value, Verdict> {
    let deadline = tokio::time::Instant::now() + session.patience();
    loop {
        continuation.wait_out().await;
        let reply = continuation
            .call(&session.target, "POST", None)
            .await
            .map_err(Verdict::fail)?;
        if let Some(code) = reply.error_code() {
            return Err(Verdict::fail(format!("polling after the hook got {code}")));
        }
        let response = reply
            .json()
            .ok_or_else(|| Verdict::fail(format!("{}: a poll answer not JSON", reply.status)))?;
        if response.get("access_token").is_some() {
            return Ok(response);
        }
        continuation = Continuation::of(&response)
            .ok_or_else(|| Verdict::fail("a poll answer with neither a token nor `continue`"))?;
        if tokio::time::Instant::now() > deadline {
            return Err(Verdict::error(
                "still pending after the hook ran: does the hook approve?",
            ));
        }
    }
}

/// A grant asking for `interact`, and its pending response; a grant
/// approved at once cannot show interaction.
async fn pending(session: &mut Session, interact: Value) -> Result<Value, Verdict> {
    let body = json!({
        "access_token": { "access": [access_right()] },
        "client": session.target.client_by_value(),
        "interact": interact,
    });
    let (_, response) = accepted(session.target.grant(&body).await)?;
    if response.get("access_token").is_some() {
        return Err(Verdict::not_applicable(
            "the AS approved at once, without interaction",
        ));
    }
    if response.get("interact").is_none() {
        return Err(Verdict::fail("a pending grant response without `interact`"));
    }
    Ok(response)
}

/// What a finished interaction left: the continuation to present the
/// reference at, what reached the finish URI, and the nonces.
struct Finished {
    continuation: Continuation,
    arrival: Arrival,
    client_nonce: String,
    as_nonce: String,
}

/// Asks for `finish` by `method` (`redirect` or `push`) at the suite's
/// listener, approves through the hook and waits for the callback.
async fn finished(session: &mut Session, method: &str) -> Result<Finished, Verdict> {
    if session
        .lists("interaction_finish_methods_supported", method)
        .await
        == Some(false)
    {
        return Err(Verdict::not_applicable(format!(
            "the AS does not list the {method} finish"
        )));
    }
    let listener = session
        .listener
        .as_ref()
        .ok_or_else(|| Verdict::error("no finish listener"))?;
    let id = crate::random::text().map_err(|e| Verdict::error(e.to_string()))?;
    let client_nonce = crate::random::text().map_err(|e| Verdict::error(e.to_string()))?;
    let uri = listener.uri(&id);
    let interact = json!({
        "start": start_modes(session).await,
        "finish": { "method": method, "uri": uri, "nonce": client_nonce },
    });
    let body = json!({
        "access_token": { "access": [access_right()] },
        "client": session.target.client_by_value(),
        "interact": interact,
    });
    let reply = session.target.grant(&body).await.map_err(Verdict::fail)?;
    if reply.error_code().as_deref() == Some("invalid_request") && method == "push" {
        // An AS may refuse to push to loopback (SSRF protection, §4.2.2).
        return Err(Verdict::not_applicable(format!(
            "the AS refused the suite's loopback push URI: {}",
            String::from_utf8_lossy(&reply.body)
        )));
    }
    let (_, response) = accepted(Ok(reply))?;
    if response.get("access_token").is_some() {
        return Err(Verdict::not_applicable(
            "the AS approved at once, without interaction",
        ));
    }
    let as_nonce = response
        .pointer("/interact/finish")
        .and_then(Value::as_str)
        .ok_or_else(|| Verdict::fail("interact.finish (the AS's nonce) is absent"))?
        .to_owned();
    let continuation = Continuation::of(&response)
        .ok_or_else(|| Verdict::fail("a pending grant response without `continue`"))?;
    decide(session, &response, Decision::Approve).await?;
    let listener = session
        .listener
        .as_ref()
        .ok_or_else(|| Verdict::error("no finish listener"))?;
    let arrival = listener
        .wait(&id, session.patience())
        .await
        .ok_or_else(|| Verdict::fail(format!("nothing reached the {method} finish URI")))?;
    Ok(Finished {
        continuation,
        arrival,
        client_nonce,
        as_nonce,
    })
}

async fn finish_hash(session: &mut Session, method: &str) -> Verdict {
    let finished = match finished(session, method).await {
        Ok(f) => f,
        Err(v) => return v,
    };
    let wanted_method = if method == "push" { "POST" } else { "GET" };
    let arrival = &finished.arrival;
    if arrival.method != wanted_method {
        return Verdict::fail(format!(
            "the {method} finish came as {}, not {wanted_method}",
            arrival.method
        ));
    }
    let (Some(hash), Some(reference)) = (&arrival.hash, &arrival.interact_ref) else {
        return Verdict::fail("hash or interact_ref (both REQUIRED) missing at the finish URI");
    };
    let expected = interaction_hash(
        HashMethod::Sha256,
        &finished.client_nonce,
        &finished.as_nonce,
        reference,
        session.target.grant_endpoint(),
    );
    Verdict::holds(
        *hash == expected,
        format!("{wanted_method} with interact_ref; the sha-256 hash verifies"),
    )
}

/// A finished redirect interaction continued with its reference.
async fn continued_with_ref(session: &mut Session) -> Result<(Finished, Value), Verdict> {
    let finished = finished(session, "redirect").await?;
    let reference = finished
        .arrival
        .interact_ref
        .clone()
        .ok_or_else(|| Verdict::fail("no interact_ref at the finish URI"))?;
    let body = json!({ "interact_ref": reference });
    finished.continuation.wait_out().await;
    let reply = finished
        .continuation
        .call(&session.target, "POST", Some(&body))
        .await;
    let (_, response) = accepted(reply)?;
    Ok((finished, response))
}

async fn ref_continue(session: &mut Session) -> Verdict {
    match continued_with_ref(session).await {
        Ok((_, response)) => Verdict::holds(
            response.get("access_token").is_some(),
            "continuing with interact_ref",
        ),
        Err(v) => v,
    }
}

async fn ref_single_use(session: &mut Session) -> Verdict {
    let (finished, response) = match continued_with_ref(session).await {
        Ok(c) => c,
        Err(v) => return v,
    };
    let Some(next) = Continuation::of(&response) else {
        return Verdict::not_applicable(
            "the AS ended the continuation, so the reference cannot be presented again",
        );
    };
    next.wait_out().await;
    let body = json!({ "interact_ref": finished.arrival.interact_ref });
    let reply = next.call(&session.target, "POST", Some(&body)).await;
    expect_error(reply, "too_many_attempts", "the interact_ref again")
}

async fn user_code(session: &mut Session, mode: &str) -> Verdict {
    if session
        .lists("interaction_start_modes_supported", mode)
        .await
        == Some(false)
    {
        return Verdict::not_applicable(format!("the AS does not list the {mode} start"));
    }
    let response = match pending(session, json!({ "start": [mode] })).await {
        Ok(r) => r,
        Err(v) => return v,
    };
    let interact = response.get("interact").cloned().unwrap_or_default();
    let code = if mode == "user_code" {
        interact.get("user_code").and_then(Value::as_str)
    } else {
        let uri = interact
            .pointer("/user_code_uri/uri")
            .and_then(Value::as_str);
        let code = interact
            .pointer("/user_code_uri/code")
            .and_then(Value::as_str);
        match (uri, code) {
            (Some(uri), Some(code)) if uri.contains("://") && !uri.contains(code) => Some(code),
            _ => return Verdict::fail(format!("user_code_uri is {:?}", interact.get(mode))),
        }
    };
    let Some(code) = code else {
        return Verdict::fail(format!("interact.{mode} is absent"));
    };
    if code.is_empty() || !code.chars().all(|c| c.is_ascii_graphic()) {
        return Verdict::fail(format!("the code {code:?} is not easily typed"));
    }
    match approve_and_poll(session, &response).await {
        Ok(done) => Verdict::holds(
            done.get("access_token").is_some(),
            format!("code of {} characters, token after approval", code.len()),
        ),
        Err(v) => v,
    }
}

async fn pending_no_token(session: &mut Session) -> Verdict {
    let interact = polling_interact(session).await;
    let response = match pending(session, interact).await {
        Ok(r) => r,
        Err(v) => return v,
    };
    let Some(continuation) = Continuation::of(&response) else {
        return Verdict::fail("a pending grant response without `continue`");
    };
    continuation.wait_out().await;
    match accepted(continuation.call(&session.target, "POST", None).await) {
        Ok((_, polled)) => Verdict::holds(
            polled.get("access_token").is_none() && polled.get("subject").is_none(),
            "a poll before the person acted",
        ),
        Err(v) => v,
    }
}

async fn denied(session: &mut Session) -> Verdict {
    let interact = polling_interact(session).await;
    let response = match pending(session, interact).await {
        Ok(r) => r,
        Err(v) => return v,
    };
    let Some(continuation) = Continuation::of(&response) else {
        return Verdict::fail("a pending grant response without `continue`");
    };
    if let Err(v) = decide(session, &response, Decision::Deny).await {
        return v;
    }
    continuation.wait_out().await;
    let reply = continuation.call(&session.target, "POST", None).await;
    expect_error(reply, "user_denied", "polling after the person denied")
}
