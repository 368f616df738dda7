//! The resource server's side (RFC 9767, and RFC 9635 §9.1): with
//! `--rs-url` naming a resource this AS protects, the suite calls it
//! without a token, then acts as that RS toward the AS (discovery,
//! introspection, resource registration), signing with a key of its own.
//!
//! Without `--rs-url` every check here is `not_applicable`: outside
//! development an AS accepts only RSs it knows, and the operator says
//! which RS the suite stands for by naming it.

use serde_json::{Value, json};

use super::{Continuation, Management, Session, accepted, access_right, expect_error, obtain};
use crate::conformance::check::{Check, Level, Verdict};
use crate::conformance::proof::{HttpSig, ProofSigner};
use crate::conformance::target::{Reply, Target};

/// The RS-facing checks.
pub const CHECKS: &[Check] = &[
    Check {
        id: "rs-challenge",
        section: "RFC 9635 §9.1",
        level: Level::Should,
        title: "the RS answers a call without a token with 401 and a GNAP WWW-Authenticate challenge",
    },
    Check {
        id: "rs-discovery",
        section: "RFC 9767 §3.1",
        level: Level::Must,
        title: "/.well-known/gnap-as-rs at the grant endpoint's origin is a JSON object naming the grant endpoint",
    },
    Check {
        id: "rs-introspect-active",
        section: "RFC 9767 §3.3",
        level: Level::Must,
        title: "introspecting an issued bound token: active, with access, key and iss, and without the value",
    },
    Check {
        id: "rs-introspect-revoked-inactive",
        section: "RFC 9767 §3.3, RFC 9635 §6.2",
        level: Level::Must,
        title: "a revoked token introspects as {\"active\": false} alone",
    },
    Check {
        id: "rs-introspect-rotated-inactive",
        section: "RFC 9635 §6.1, RFC 9767 §3.3",
        level: Level::Must,
        title: "the value a rotation replaced introspects as inactive",
    },
    Check {
        id: "rs-introspect-continuation-inactive",
        section: "RFC 9767 §2.1",
        level: Level::Must,
        title: "a continuation token is never active at introspection",
    },
    Check {
        id: "rs-introspect-error",
        section: "RFC 9767 §3.5",
        level: Level::Must,
        title: "an introspection request without access_token gets 400 invalid_request",
    },
    Check {
        id: "rs-register-resource",
        section: "RFC 9767 §3.4",
        level: Level::Must,
        title: "resource registration answers a resource_reference usable as an access right in a grant request",
    },
];

/// Runs the RS check `id`.
pub async fn run(id: &str, session: &mut Session) -> Verdict {
    let Some(rs_url) = session.rs_url.clone() else {
        return Verdict::not_applicable("no --rs-url: the suite does not act as an RS");
    };
    let rs = match HttpSig::generate("conformance-rs") {
        Ok(k) => k,
        Err(e) => return Verdict::error(e),
    };
    match id {
        "rs-challenge" => challenge(session, &rs_url).await,
        "rs-discovery" => discovery(session).await,
        "rs-introspect-active" => active(session, &rs).await,
        "rs-introspect-revoked-inactive" => revoked(session, &rs).await,
        "rs-introspect-rotated-inactive" => rotated(session, &rs).await,
        "rs-introspect-continuation-inactive" => continuation(session, &rs).await,
        "rs-introspect-error" => introspect_error(session, &rs).await,
        "rs-register-resource" => register(session, &rs).await,
        _ => super::unknown(id),
    }
}

async fn challenge(session: &Session, rs_url: &str) -> Verdict {
    let request = Target::request("GET", rs_url, None, None);
    match session.target.send(&request).await {
        Ok(reply) => {
            let gnap = reply
                .headers
                .get_all("www-authenticate")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|v| v.trim_start().to_ascii_lowercase().starts_with("gnap"));
            Verdict::holds(
                reply.status == 401 && gnap,
                format!("{}, GNAP challenge: {gnap}", reply.status),
            )
        }
        Err(e) => Verdict::fail(e),
    }
}

/// The URL of the RS-facing discovery document: `/.well-known/gnap-as-rs`
/// on the grant endpoint's scheme and authority.
fn discovery_url(grant_endpoint: &str) -> String {
    let after_scheme = grant_endpoint.find("://").map_or(0, |i| i + 3);
    let origin_end = grant_endpoint[after_scheme..]
        .find(['/', '?', '#'])
        .map_or(grant_endpoint.len(), |i| after_scheme + i);
    format!("{}/.well-known/gnap-as-rs", &grant_endpoint[..origin_end])
}

/// The RS-facing discovery document.
async fn document(session: &Session) -> Result<Value, Verdict> {
    let url = discovery_url(session.target.grant_endpoint());
    let request = Target::request("GET", &url, None, None);
    let reply = session.target.send(&request).await.map_err(Verdict::fail)?;
    if reply.status != 200 {
        return Err(Verdict::fail(format!("{url} answered {}", reply.status)));
    }
    reply
        .json()
        .filter(Value::is_object)
        .ok_or_else(|| Verdict::fail(format!("{url} is not a JSON object")))
}

async fn discovery(session: &Session) -> Verdict {
    let document = match document(session).await {
        Ok(d) => d,
        Err(v) => return v,
    };
    let listed = document
        .get("grant_request_endpoint")
        .and_then(Value::as_str);
    Verdict::holds(
        listed == Some(session.target.grant_endpoint()),
        format!("grant_request_endpoint {listed:?}"),
    )
}

/// The document's `field` endpoint, or `not_applicable` (the feature is
/// not offered).
async fn endpoint(session: &Session, field: &str) -> Result<String, Verdict> {
    let document = document(session).await?;
    document
        .get(field)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| Verdict::not_applicable(format!("the AS lists no {field}")))
}

/// Introspects `token` as the RS `rs`.
async fn introspect(session: &Session, rs: &HttpSig, token: &str) -> Result<Reply, Verdict> {
    let url = endpoint(session, "introspection_endpoint").await?;
    let body = json!({
        "access_token": token,
        "proof": "httpsig",
        "resource_server": { "key": rs.key_object() },
    });
    session
        .target
        .signed_by(rs, "POST", &url, None, Some(&body))
        .await
        .map_err(Verdict::fail)
}

/// An issued token (object) from a fresh grant.
async fn issued(session: &mut Session) -> Result<Value, Verdict> {
    let body = super::token_request(session).await;
    let response = obtain(session, &body).await?;
    super::single_token(&response).cloned()
}

fn value_of(token: &Value) -> Result<String, Verdict> {
    token
        .get("value")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| Verdict::fail("the token has no value"))
}

/// A verdict that `reply` says inactive, and nothing else.
fn inactive(reply: &Reply, what: &str) -> Verdict {
    let json = reply.json();
    Verdict::holds(
        reply.status == 200 && json == Some(json!({ "active": false })),
        format!(
            "{what}: {} {}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        ),
    )
}

async fn active(session: &mut Session, rs: &HttpSig) -> Verdict {
    let token = match issued(session).await {
        Ok(t) => t,
        Err(v) => return v,
    };
    let value = match value_of(&token) {
        Ok(v) => v,
        Err(v) => return v,
    };
    let reply = match introspect(session, rs, &value).await {
        Ok(r) => r,
        Err(v) => return v,
    };
    let Some(answer) = reply.json() else {
        return Verdict::fail(format!("{}: not JSON", reply.status));
    };
    if answer.get("active") != Some(&Value::Bool(true)) {
        return Verdict::fail(format!("an issued token is not active: {answer}"));
    }
    if answer.get("value").is_some()
        || reply
            .body
            .windows(value.len())
            .any(|w| w == value.as_bytes())
    {
        return Verdict::fail("the answer includes the token value");
    }
    let missing: Vec<&str> = ["access", "key", "iss"]
        .into_iter()
        .filter(|m| answer.get(*m).is_none())
        .collect();
    Verdict::holds(
        missing.is_empty(),
        format!("active; missing {missing:?}; iss {:?}", answer.get("iss")),
    )
}

async fn revoked(session: &mut Session, rs: &HttpSig) -> Verdict {
    let token = match issued(session).await {
        Ok(t) => t,
        Err(v) => return v,
    };
    let (value, Some(manage)) = (value_of(&token), Management::of(&token)) else {
        return Verdict::not_applicable("the token has no `manage` to revoke it with");
    };
    let value = match value {
        Ok(v) => v,
        Err(v) => return v,
    };
    match session
        .target
        .signed("DELETE", &manage.uri, Some(&manage.token), None)
        .await
    {
        Ok(reply) if reply.status == 204 => {}
        Ok(reply) => return Verdict::not_applicable(format!("revocation: {}", reply.summary())),
        Err(e) => return Verdict::fail(e),
    }
    match introspect(session, rs, &value).await {
        Ok(reply) => inactive(&reply, "the revoked token"),
        Err(v) => v,
    }
}

async fn rotated(session: &mut Session, rs: &HttpSig) -> Verdict {
    let token = match issued(session).await {
        Ok(t) => t,
        Err(v) => return v,
    };
    let (value, Some(manage)) = (value_of(&token), Management::of(&token)) else {
        return Verdict::not_applicable("the token has no `manage` to rotate it with");
    };
    let value = match value {
        Ok(v) => v,
        Err(v) => return v,
    };
    match session
        .target
        .signed("POST", &manage.uri, Some(&manage.token), None)
        .await
    {
        Ok(reply) if reply.status == 200 => {}
        Ok(reply) => return Verdict::not_applicable(format!("rotation: {}", reply.summary())),
        Err(e) => return Verdict::fail(e),
    }
    match introspect(session, rs, &value).await {
        Ok(reply) => inactive(&reply, "the replaced value"),
        Err(v) => v,
    }
}

async fn continuation(session: &mut Session, rs: &HttpSig) -> Verdict {
    let body = super::token_request(session).await;
    let response = match accepted(session.target.grant(&body).await) {
        Ok((_, r)) => r,
        Err(v) => return v,
    };
    let Some(continuation) = Continuation::of(&response) else {
        return Verdict::not_applicable("the AS offered no continuation for this grant");
    };
    match introspect(session, rs, &continuation.token).await {
        Ok(reply) => inactive(&reply, "the continuation token"),
        Err(v) => v,
    }
}

async fn introspect_error(session: &Session, rs: &HttpSig) -> Verdict {
    let url = match endpoint(session, "introspection_endpoint").await {
        Ok(u) => u,
        Err(v) => return v,
    };
    let body = json!({ "resource_server": { "key": rs.key_object() } });
    let reply = session
        .target
        .signed_by(rs, "POST", &url, None, Some(&body))
        .await;
    if let Ok(reply) = &reply
        && reply.status != 400
    {
        return Verdict::fail(format!("status {}, not 400", reply.summary()));
    }
    expect_error(reply, "invalid_request", "no access_token")
}

async fn register(session: &mut Session, rs: &HttpSig) -> Verdict {
    let url = match endpoint(session, "resource_registration_endpoint").await {
        Ok(u) => u,
        Err(v) => return v,
    };
    let body = json!({
        "access": [access_right()],
        "resource_server": { "key": rs.key_object() },
    });
    let reply = match session
        .target
        .signed_by(rs, "POST", &url, None, Some(&body))
        .await
    {
        Ok(r) => r,
        Err(e) => return Verdict::fail(e),
    };
    let Some(reference) = reply.json().and_then(|j| {
        j.get("resource_reference")
            .and_then(Value::as_str)
            .map(str::to_owned)
    }) else {
        return Verdict::fail(format!("no resource_reference: {}", reply.summary()));
    };
    let grant = json!({
        "access_token": { "access": [reference] },
        "client": session.target.client_by_value(),
        "interact": super::interaction::polling_interact(session).await,
    });
    match accepted(session.target.grant(&grant).await) {
        Ok(_) => Verdict::pass("registered; the reference was accepted in a grant request"),
        Err(v) => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rs_discovery_is_at_the_grant_endpoints_origin() {
        assert_eq!(
            discovery_url("https://as.example/gnap"),
            "https://as.example/.well-known/gnap-as-rs"
        );
        assert_eq!(
            discovery_url("http://127.0.0.1:8470/a/b?x=1"),
            "http://127.0.0.1:8470/.well-known/gnap-as-rs"
        );
        assert_eq!(
            discovery_url("https://as.example"),
            "https://as.example/.well-known/gnap-as-rs"
        );
    }
}
