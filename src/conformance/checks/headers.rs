//! The header fields of grant responses (RFC 9635 §3): JSON content and
//! `Cache-Control: no-store` on every one, errors and continuation
//! responses included (they are grant responses too, §3.6 and §5).

use serde_json::json;

use super::{Continuation, Session, accepted, token_request};
use crate::conformance::check::{Check, Level, Verdict};
use crate::conformance::target::Reply;

/// The header checks.
pub const CHECKS: &[Check] = &[
    Check {
        id: "headers-grant-json",
        section: "RFC 9635 §3",
        level: Level::Must,
        title: "a grant response is sent with Content-Type application/json",
    },
    Check {
        id: "headers-grant-no-store",
        section: "RFC 9635 §3",
        level: Level::Must,
        title: "a grant response carries Cache-Control: no-store",
    },
    Check {
        id: "headers-error-json",
        section: "RFC 9635 §3, §3.6",
        level: Level::Must,
        title: "an error response is sent with Content-Type application/json",
    },
    Check {
        id: "headers-error-no-store",
        section: "RFC 9635 §3, §3.6",
        level: Level::Must,
        title: "an error response carries Cache-Control: no-store",
    },
    Check {
        id: "headers-continue-no-store",
        section: "RFC 9635 §3, §5",
        level: Level::Must,
        title: "a continuation response is JSON with Cache-Control: no-store",
    },
];

/// Runs the header check `id`.
pub async fn run(id: &str, session: &mut Session) -> Verdict {
    match id {
        "headers-grant-json" => on_grant(session, json_verdict).await,
        "headers-grant-no-store" => on_grant(session, no_store_verdict).await,
        "headers-error-json" => on_error(session, json_verdict).await,
        "headers-error-no-store" => on_error(session, no_store_verdict).await,
        "headers-continue-no-store" => on_continue(session).await,
        _ => super::unknown(id),
    }
}

fn json_verdict(reply: &Reply) -> Verdict {
    let media = reply.media_type();
    Verdict::holds(
        media.as_deref() == Some("application/json"),
        format!(
            "{}: Content-Type {}",
            reply.status,
            media.as_deref().unwrap_or("absent")
        ),
    )
}

fn no_store_verdict(reply: &Reply) -> Verdict {
    Verdict::holds(
        reply.no_store(),
        format!(
            "{}: Cache-Control {}",
            reply.status,
            reply.header("cache-control").unwrap_or("absent")
        ),
    )
}

async fn on_grant(session: &mut Session, judge: fn(&Reply) -> Verdict) -> Verdict {
    let body = token_request(session).await;
    match accepted(session.target.grant(&body).await) {
        Ok((reply, _)) => judge(&reply),
        Err(verdict) => verdict,
    }
}

async fn on_error(session: &mut Session, judge: fn(&Reply) -> Verdict) -> Verdict {
    // `access` must be an array (§2.1.1): a number is malformed.
    let body = json!({
        "access_token": { "access": 7 },
        "client": session.target.client_by_value(),
    });
    match session.target.grant(&body).await {
        Ok(reply) if reply.error_code().is_some() => judge(&reply),
        Ok(reply) => Verdict::fail(format!(
            "a malformed request got {} without an error",
            reply.status
        )),
        Err(e) => Verdict::fail(e),
    }
}

async fn on_continue(session: &mut Session) -> Verdict {
    let body = token_request(session).await;
    let response = match accepted(session.target.grant(&body).await) {
        Ok((_, r)) => r,
        Err(v) => return v,
    };
    let Some(continuation) = Continuation::of(&response) else {
        return Verdict::not_applicable("the AS offered no continuation for this grant");
    };
    continuation.wait_out().await;
    match continuation.call(&session.target, "POST", None).await {
        Ok(reply) => {
            let json = json_verdict(&reply);
            let store = no_store_verdict(&reply);
            Verdict::holds(
                json.outcome == store.outcome
                    && json.outcome == crate::conformance::check::Outcome::Pass,
                format!("{}; {}", json.detail, store.detail),
            )
        }
        Err(e) => Verdict::fail(e),
    }
}
