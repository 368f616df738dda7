//! Error responses (RFC 9635 §3.6): each code the suite can drive the AS
//! to, and the shape every error takes: `error` as a registered code
//! string, or an object of `code` and an optional `description`; beside
//! it only `continue`.
//!
//! RFC 9635 names no HTTP status for its errors; the status is reported,
//! and judged only by `error-status-client-error` (RFC 9110's 4xx for a
//! client's mistake).

use serde_json::{Value, json};

use super::{Continuation, Management, Session, accepted, access_right, expect_error, obtain};
use crate::conformance::check::{Check, Level, Verdict};
use crate::conformance::target::Reply;

/// The error checks.
pub const CHECKS: &[Check] = &[
    Check {
        id: "error-invalid-request",
        section: "RFC 9635 §3.6, §2.1.1",
        level: Level::Must,
        title: "a malformed request (access not an array) gets invalid_request in the §3.6 shape",
    },
    Check {
        id: "error-missing-labels",
        section: "RFC 9635 §2.1.2",
        level: Level::Must,
        title: "a multiple token request without labels gets invalid_request",
    },
    Check {
        id: "error-invalid-flag",
        section: "RFC 9635 §2.1.1",
        level: Level::Must,
        title: "a flag repeated in a request gets invalid_flag",
    },
    Check {
        id: "error-invalid-continuation",
        section: "RFC 9635 §5",
        level: Level::Must,
        title: "an unknown continuation token gets invalid_continuation",
    },
    Check {
        id: "error-invalid-rotation",
        section: "RFC 9635 §6.1",
        level: Level::Must,
        title: "a rotation the AS will not make (of a revoked token) gets invalid_rotation",
    },
    Check {
        id: "error-shape",
        section: "RFC 9635 §3.6",
        level: Level::Must,
        title: "an error is a registered code, as a string or {code, description}, with nothing but `continue` beside it",
    },
    Check {
        id: "error-status-client-error",
        section: "RFC 9635 §3.6 (silent), RFC 9110 §15.5",
        level: Level::Should,
        title: "an error caused by the request is answered with a 4xx status",
    },
];

/// The codes of the GNAP Error Codes Registry as RFC 9635 §3.6 and
/// RFC 9767 §3.5 fill it.
pub const REGISTERED_CODES: [&str; 15] = [
    "invalid_request",
    "invalid_client",
    "invalid_interaction",
    "invalid_flag",
    "invalid_rotation",
    "key_rotation_not_supported",
    "invalid_continuation",
    "user_denied",
    "request_denied",
    "unknown_user",
    "unknown_interaction",
    "too_fast",
    "too_many_attempts",
    "invalid_resource_server",
    "invalid_access",
];

/// Runs the error check `id`.
pub async fn run(id: &str, session: &mut Session) -> Verdict {
    match id {
        "error-invalid-request" => {
            let reply = malformed(session).await;
            expect_error(reply, "invalid_request", "access: 7")
        }
        "error-missing-labels" => missing_labels(session).await,
        "error-invalid-flag" => repeated_flag(session).await,
        "error-invalid-continuation" => unknown_continuation(session).await,
        "error-invalid-rotation" => refused_rotation(session).await,
        "error-shape" => shape(session).await,
        "error-status-client-error" => status(session).await,
        _ => super::unknown(id),
    }
}

/// What is wrong with the shape of the error in `reply`, if anything.
pub fn shape_problem(reply: &Reply) -> Option<String> {
    let Some(Value::Object(members)) = reply.json() else {
        return Some("the content is not a JSON object".into());
    };
    if let Some(extra) = members
        .keys()
        .find(|k| k.as_str() != "error" && k.as_str() != "continue")
    {
        return Some(format!(
            "`{extra}` beside the error (only `continue` may be)"
        ));
    }
    let code = match members.get("error") {
        Some(Value::String(code)) => code.clone(),
        Some(Value::Object(error)) => {
            if let Some(extra) = error
                .keys()
                .find(|k| k.as_str() != "code" && k.as_str() != "description")
            {
                return Some(format!("the error object has `{extra}`"));
            }
            if error.get("description").is_some_and(|d| !d.is_string()) {
                return Some("`description` is not a string".into());
            }
            match error.get("code") {
                Some(Value::String(code)) => code.clone(),
                _ => return Some("the error object has no string `code`".into()),
            }
        }
        _ => return Some("no `error` string or object".into()),
    };
    if !REGISTERED_CODES.contains(&code.as_str()) {
        return Some(format!("`{code}` is not a registered code"));
    }
    None
}

/// A grant request whose `access` is not an array (§2.1.1).
async fn malformed(session: &Session) -> Result<Reply, String> {
    let body = json!({
        "access_token": { "access": 7 },
        "client": session.target.client_by_value(),
    });
    session.target.grant(&body).await
}

async fn missing_labels(session: &mut Session) -> Verdict {
    let body = json!({
        "access_token": [ { "access": [access_right()] }, { "access": [access_right()] } ],
        "client": session.target.client_by_value(),
    });
    let reply = session.target.grant(&body).await;
    expect_error(reply, "invalid_request", "two tokens, no labels")
}

async fn repeated_flag(session: &mut Session) -> Verdict {
    let body = json!({
        "access_token": { "access": [access_right()], "flags": ["bearer", "bearer"] },
        "client": session.target.client_by_value(),
    });
    let reply = session.target.grant(&body).await;
    expect_error(reply, "invalid_flag", "flags [bearer, bearer]")
}

async fn unknown_continuation(session: &mut Session) -> Verdict {
    let body = super::token_request(session).await;
    let response = match accepted(session.target.grant(&body).await) {
        Ok((_, r)) => r,
        Err(v) => return v,
    };
    let Some(mut continuation) = Continuation::of(&response) else {
        return Verdict::not_applicable("the AS offered no continuation for this grant");
    };
    continuation.token = "conformance-not-a-continuation-token".into();
    continuation.wait_out().await;
    let reply = continuation.call(&session.target, "POST", None).await;
    expect_error(
        reply,
        "invalid_continuation",
        "an unknown continuation token",
    )
}

async fn refused_rotation(session: &mut Session) -> Verdict {
    let body = super::token_request(session).await;
    let response = match obtain(session, &body).await {
        Ok(r) => r,
        Err(v) => return v,
    };
    let Some(manage) = response.get("access_token").and_then(Management::of) else {
        return Verdict::not_applicable("the token has no `manage` (OPTIONAL)");
    };
    let revoke = session
        .target
        .signed("DELETE", &manage.uri, Some(&manage.token), None)
        .await;
    match revoke {
        Ok(reply) if reply.status == 204 => {}
        Ok(reply) => {
            return Verdict::not_applicable(format!("revocation failed: {}", reply.summary()));
        }
        Err(e) => return Verdict::fail(e),
    }
    let reply = session
        .target
        .signed("POST", &manage.uri, Some(&manage.token), None)
        .await;
    expect_error(reply, "invalid_rotation", "rotating a revoked token")
}

async fn shape(session: &mut Session) -> Verdict {
    match malformed(session).await {
        Ok(reply) if reply.error_code().is_some() => match shape_problem(&reply) {
            None => Verdict::pass(format!(
                "{}: {}",
                reply.summary(),
                String::from_utf8_lossy(&reply.body)
            )),
            Some(problem) => Verdict::fail(problem),
        },
        Ok(reply) => Verdict::fail(format!("{} without an error", reply.status)),
        Err(e) => Verdict::fail(e),
    }
}

async fn status(session: &mut Session) -> Verdict {
    match malformed(session).await {
        Ok(reply) => Verdict::holds(
            (400..500).contains(&reply.status),
            format!("a malformed request: {}", reply.summary()),
        ),
        Err(e) => Verdict::fail(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(body: Value) -> Reply {
        Reply {
            status: 400,
            headers: hyper::header::HeaderMap::new(),
            body: body.to_string().into_bytes(),
        }
    }

    #[test]
    fn an_error_is_a_registered_code_as_a_string_or_an_object_with_only_continue_beside_it() {
        for good in [
            json!({"error": "user_denied"}),
            json!({"error": {"code": "invalid_request"}}),
            json!({"error": {"code": "too_fast", "description": "wait"}, "continue": {}}),
        ] {
            assert_eq!(shape_problem(&reply(good.clone())), None, "{good}");
            assert!(reply(good).error_code().is_some());
        }
        for bad in [
            json!({"error": "not_a_code"}),
            json!({"error": {"code": "invalid_request", "status": 400}}),
            json!({"error": {"description": "no code"}}),
            json!({"error": {"code": "invalid_request", "description": 7}}),
            json!({"error": "invalid_request", "access_token": {}}),
            json!({"error": 7}),
            json!(["error"]),
        ] {
            assert!(shape_problem(&reply(bad.clone())).is_some(), "{bad}");
        }
    }
}
