//! Discovery (RFC 9635 §9): `OPTIONS` on the grant endpoint.

use serde_json::Value;

use super::Session;
use crate::conformance::check::{Check, Level, Verdict};
use crate::conformance::target::Target;

/// The discovery checks.
pub const CHECKS: &[Check] = &[
    Check {
        id: "discovery-options-json",
        section: "RFC 9635 §9",
        level: Level::Must,
        title: "OPTIONS on the grant endpoint answers 200 with one JSON object, Content-Type application/json",
    },
    Check {
        id: "discovery-grant-endpoint-matches",
        section: "RFC 9635 §9",
        level: Level::Must,
        title: "grant_request_endpoint is the URL the discovery request was sent to",
    },
    Check {
        id: "discovery-grant-endpoint-https",
        section: "RFC 9635 §9",
        level: Level::Must,
        title: "grant_request_endpoint is an https URL without a fragment",
    },
    Check {
        id: "discovery-start-modes-registered",
        section: "RFC 9635 §9",
        level: Level::Must,
        title: "interaction_start_modes_supported holds only registered start modes",
    },
    Check {
        id: "discovery-finish-methods-registered",
        section: "RFC 9635 §9",
        level: Level::Must,
        title: "interaction_finish_methods_supported holds only registered finish methods",
    },
    Check {
        id: "discovery-key-proofs-registered",
        section: "RFC 9635 §9",
        level: Level::Must,
        title: "key_proofs_supported holds only registered proofing methods",
    },
    Check {
        id: "discovery-key-rotation-boolean",
        section: "RFC 9635 §9",
        level: Level::Must,
        title: "key_rotation_supported, when present, is a boolean",
    },
    Check {
        id: "discovery-no-store",
        section: "RFC 9635 §9 (silent; §3 asks it of grant responses)",
        level: Level::May,
        title: "the discovery answer carries Cache-Control: no-store",
    },
];

/// The start modes the IANA registry of §9 holds (RFC 9635 initial contents).
pub const START_MODES: [&str; 4] = ["redirect", "app", "user_code", "user_code_uri"];
/// The registered finish methods (RFC 9635 initial contents).
pub const FINISH_METHODS: [&str; 2] = ["redirect", "push"];
/// The registered key proofing methods (RFC 9635 initial contents).
pub const KEY_PROOFS: [&str; 4] = ["httpsig", "mtls", "jwsd", "jws"];

/// Runs the discovery check `id`.
pub async fn run(id: &str, session: &mut Session) -> Verdict {
    match id {
        "discovery-options-json" => options_json(session).await,
        "discovery-grant-endpoint-matches" => endpoint_matches(session).await,
        "discovery-grant-endpoint-https" => endpoint_https(session).await,
        "discovery-start-modes-registered" => {
            registered(session, "interaction_start_modes_supported", &START_MODES).await
        }
        "discovery-finish-methods-registered" => {
            registered(
                session,
                "interaction_finish_methods_supported",
                &FINISH_METHODS,
            )
            .await
        }
        "discovery-key-proofs-registered" => {
            registered(session, "key_proofs_supported", &KEY_PROOFS).await
        }
        "discovery-key-rotation-boolean" => key_rotation_boolean(session).await,
        "discovery-no-store" => no_store(session).await,
        _ => super::unknown(id),
    }
}

async fn options(session: &Session) -> Result<crate::conformance::target::Reply, Verdict> {
    let request = Target::request("OPTIONS", session.target.grant_endpoint(), None, None);
    session.target.send(&request).await.map_err(Verdict::fail)
}

async fn options_json(session: &mut Session) -> Verdict {
    let reply = match options(session).await {
        Ok(reply) => reply,
        Err(verdict) => return verdict,
    };
    if reply.status != 200 {
        return Verdict::fail(format!("OPTIONS answered {}", reply.status));
    }
    let media = reply.media_type();
    if media.as_deref() != Some("application/json") {
        return Verdict::fail(format!(
            "Content-Type is {}",
            media.as_deref().unwrap_or("absent")
        ));
    }
    match reply.json() {
        Some(Value::Object(_)) => Verdict::pass("200, application/json, one object"),
        _ => Verdict::fail("the content is not a single JSON object"),
    }
}

/// The document, or the verdict of a check that has none to read.
async fn document(session: &mut Session) -> Result<Value, Verdict> {
    session
        .discovery()
        .await
        .ok_or_else(|| Verdict::fail("no discovery document (OPTIONS did not answer 200 JSON)"))
}

async fn endpoint_matches(session: &mut Session) -> Verdict {
    let document = match document(session).await {
        Ok(d) => d,
        Err(v) => return v,
    };
    let used = session.target.grant_endpoint();
    match document
        .get("grant_request_endpoint")
        .and_then(Value::as_str)
    {
        Some(listed) => Verdict::holds(listed == used, format!("listed {listed}, used {used}")),
        None => Verdict::fail("grant_request_endpoint (REQUIRED) is absent or not a string"),
    }
}

async fn endpoint_https(session: &mut Session) -> Verdict {
    let document = match document(session).await {
        Ok(d) => d,
        Err(v) => return v,
    };
    let Some(listed) = document
        .get("grant_request_endpoint")
        .and_then(Value::as_str)
    else {
        return Verdict::fail("grant_request_endpoint (REQUIRED) is absent or not a string");
    };
    // A suite pointed at plain http is testing a development server; the
    // TLS requirement cannot be judged there, and is not passed either.
    if session.target.grant_endpoint().starts_with("http://") {
        return Verdict::not_applicable(
            "the suite was given an http URL (a development setup); run it against https",
        );
    }
    let https = listed.starts_with("https://") && !listed.contains('#');
    Verdict::holds(https, format!("listed {listed}"))
}

async fn registered(session: &mut Session, field: &str, registry: &[&str]) -> Verdict {
    let document = match document(session).await {
        Ok(d) => d,
        Err(v) => return v,
    };
    let Some(value) = document.get(field) else {
        return Verdict::not_applicable(format!("{field} is absent (OPTIONAL)"));
    };
    let Some(list) = value.as_array() else {
        return Verdict::fail(format!("{field} is not an array"));
    };
    let unknown: Vec<String> = list
        .iter()
        .filter(|v| !v.as_str().is_some_and(|s| registry.contains(&s)))
        .map(Value::to_string)
        .collect();
    if unknown.is_empty() {
        Verdict::pass(format!("{field}: {value}"))
    } else {
        Verdict::fail(format!("{field} holds unregistered {}", unknown.join(", ")))
    }
}

async fn key_rotation_boolean(session: &mut Session) -> Verdict {
    let document = match document(session).await {
        Ok(d) => d,
        Err(v) => return v,
    };
    match document.get("key_rotation_supported") {
        None => Verdict::not_applicable("key_rotation_supported is absent (means false)"),
        Some(Value::Bool(b)) => Verdict::pass(format!("key_rotation_supported: {b}")),
        Some(other) => Verdict::fail(format!("key_rotation_supported is {other}")),
    }
}

async fn no_store(session: &mut Session) -> Verdict {
    match options(session).await {
        Ok(reply) => Verdict::holds(
            reply.no_store(),
            format!(
                "Cache-Control: {}",
                reply.header("cache-control").unwrap_or("absent")
            ),
        ),
        Err(verdict) => verdict,
    }
}
