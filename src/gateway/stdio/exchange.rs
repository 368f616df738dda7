//! One request's trip through a session's child: sent under a bridge id,
//! answered by the first message the child writes for it.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::route::id_key;
use super::session::{Out, Session, SessionError};
use crate::gateway::Authorized;
use crate::gateway::answer::UpstreamFailure;
use crate::proto::mcp::access::UpstreamGrant;

/// What the child answered a request with, before it becomes HTTP.
pub(super) enum Answer {
    /// The response came first.
    Json(Value),
    /// Interim messages came first: stream them, then the response.
    Stream(Out, mpsc::Receiver<Out>),
}

/// What the child gets of each exchange's messages, when the token's tools
/// are limited: every message filtered, whatever the request (a child that
/// answered with a tool list where none was asked for shows no more).
pub(super) fn filter(authorized: &Authorized) -> Option<UpstreamGrant> {
    authorized
        .grant
        .limits_tools()
        .then(|| authorized.grant.clone())
}

/// A client notification or response as the child gets it: a
/// `notifications/cancelled` names the request by the bridge id the child
/// knows it by, and is dropped when it names no request in flight (the
/// bridge id it would carry might be another request's).
pub(super) fn to_child(session: &Session, mut message: Value) -> Option<Value> {
    if message.get("method").and_then(Value::as_str) != Some("notifications/cancelled") {
        return Some(message);
    }
    let slot = message.pointer_mut("/params/requestId")?;
    *slot = Value::from(session.bridge_id_of(slot)?);
    Some(message)
}

/// Sends a client request to `session` under a bridge id of its own (see
/// [`route`]) and waits (up to `timeout`) for the first message the child
/// writes for it.
pub(super) async fn exchange(
    session: &Session,
    mut message: Value,
    sse: bool,
    filter: Option<UpstreamGrant>,
    timeout: Duration,
) -> Result<Answer, UpstreamFailure> {
    let agent_id = message.get("id").cloned().unwrap_or(Value::Null);
    if id_key(&agent_id).is_none() {
        return Err(UpstreamFailure::SessionRequired);
    }
    let progress_token = message.pointer("/params/_meta/progressToken").cloned();
    let (id, mut rx) = session
        .register(agent_id, sse, progress_token, filter)
        .map_err(failure)?;
    if let Some(slot) = message.get_mut("id") {
        *slot = Value::from(id);
    }
    if let Err(e) = session.send(&message, timeout).await {
        session.unregister(id);
        return Err(failure(e));
    }
    match tokio::time::timeout(timeout, rx.recv()).await {
        Ok(Some(out)) if out.last => Ok(Answer::Json(out.message)),
        Ok(Some(out)) => Ok(Answer::Stream(out, rx)),
        Ok(None) => Err(UpstreamFailure::Exited),
        Err(_) => {
            session.unregister(id);
            if message.get("method").and_then(Value::as_str) != Some("initialize") {
                let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                    "params": {"requestId": id, "reason": "the gateway timed out"}});
                // Best effort, and no longer than a moment.
                let _ = session.send(&cancel, Duration::from_secs(1)).await;
            }
            Err(UpstreamFailure::Timeout)
        }
    }
}

pub(super) fn failure(e: SessionError) -> UpstreamFailure {
    match e {
        SessionError::Ended => UpstreamFailure::Exited,
        SessionError::InFlight => UpstreamFailure::InFlight,
        SessionError::WriteTimeout => UpstreamFailure::Timeout,
    }
}
