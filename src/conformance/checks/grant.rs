//! Grant requests and the shape of their responses (RFC 9635 §2, §3).

use serde_json::{Value, json};

use super::interaction::polling_interact;
use super::{Session, accepted, access_right, obtain, single_token, token_request};
use crate::conformance::check::{Check, Level, Verdict};
use crate::proto::gnap::token::is_token68;

/// The grant checks.
pub const CHECKS: &[Check] = &[
    Check {
        id: "grant-key-by-value",
        section: "RFC 9635 §2.3, §7.1, §7.3.1",
        level: Level::Must,
        title: "a request presenting its key by value, signed with httpsig, gets a grant response (token or pending)",
    },
    Check {
        id: "grant-token-value-token68",
        section: "RFC 9635 §3.2.1",
        level: Level::Must,
        title: "an access token's value is a string in the token68 character set",
    },
    Check {
        id: "grant-token-access-present",
        section: "RFC 9635 §3.2.1",
        level: Level::Must,
        title: "an access token carries its access rights (`access`, REQUIRED, an array)",
    },
    Check {
        id: "grant-manage-shape",
        section: "RFC 9635 §3.2.1",
        level: Level::Must,
        title: "`manage` has an absolute uri without the token value and a bound management token distinct from the access token",
    },
    Check {
        id: "grant-continue-shape",
        section: "RFC 9635 §3.1",
        level: Level::Must,
        title: "`continue` has an absolute uri and a continuation token that is not bearer and has no `key` or `manage`",
    },
    Check {
        id: "grant-continue-wait-five",
        section: "RFC 9635 §3.1",
        level: Level::Should,
        title: "`wait` is not less than five seconds",
    },
    Check {
        id: "grant-label-echoed",
        section: "RFC 9635 §2.1.1, §3.2.1",
        level: Level::Must,
        title: "a labelled single token request gets the same label back",
    },
    Check {
        id: "grant-multiple-tokens-labelled",
        section: "RFC 9635 §2.1.2, §3.2.2",
        level: Level::Must,
        title: "a multiple token request gets an array of tokens, each with a unique label from the request",
    },
    Check {
        id: "grant-bearer-flag",
        section: "RFC 9635 §2.1.1, §3.2.1",
        level: Level::Must,
        title: "a bearer request is honoured (flag `bearer`, no `key`) or refused with a GNAP error",
    },
    Check {
        id: "grant-access-by-reference",
        section: "RFC 9635 §8.1",
        level: Level::Must,
        title: "an access right given as a reference string is read as one (granted, or refused by policy, not as malformed)",
    },
    Check {
        id: "grant-instance-id-reuse",
        section: "RFC 9635 §2.3.1, §3.5",
        level: Level::Should,
        title: "an instance_id the AS returned identifies the client in a later request (key by reference)",
    },
    Check {
        id: "grant-subject-shape",
        section: "RFC 9635 §2.2, §3.4",
        level: Level::Must,
        title: "subject information, when released, is `sub_ids` of RFC 9493 identifiers (each with a `format`)",
    },
];

/// Runs the grant check `id`.
pub async fn run(id: &str, session: &mut Session) -> Verdict {
    match id {
        "grant-key-by-value" => key_by_value(session).await,
        "grant-token-value-token68" => token68(session).await,
        "grant-token-access-present" => access_present(session).await,
        "grant-manage-shape" => manage_shape(session).await,
        "grant-continue-shape" => continue_shape(session).await,
        "grant-continue-wait-five" => wait_five(session).await,
        "grant-label-echoed" => label_echoed(session).await,
        "grant-multiple-tokens-labelled" => multiple_labelled(session).await,
        "grant-bearer-flag" => bearer_flag(session).await,
        "grant-access-by-reference" => by_reference(session).await,
        "grant-instance-id-reuse" => instance_id_reuse(session).await,
        "grant-subject-shape" => subject_shape(session).await,
        _ => super::unknown(id),
    }
}

async fn key_by_value(session: &mut Session) -> Verdict {
    let body = token_request(session).await;
    let (_, response) = match accepted(session.target.grant(&body).await) {
        Ok(answer) => answer,
        Err(verdict) => return verdict,
    };
    if response.get("access_token").is_some() {
        Verdict::pass("approved at once: access_token")
    } else if response.get("continue").is_some() || response.get("interact").is_some() {
        Verdict::pass("pending: continue/interact")
    } else {
        Verdict::fail("neither access_token nor continue in a 200 grant response")
    }
}

/// A token issued at once or through the hook; a check that needs one
/// and cannot have it ends here.
async fn issued(session: &mut Session) -> Result<Value, Verdict> {
    let body = token_request(session).await;
    let response = obtain(session, &body).await?;
    single_token(&response).cloned()
}

async fn token68(session: &mut Session) -> Verdict {
    let token = match issued(session).await {
        Ok(t) => t,
        Err(v) => return v,
    };
    match token.get("value").and_then(Value::as_str) {
        Some(value) => Verdict::holds(
            is_token68(value),
            format!("a value of {} characters", value.len()),
        ),
        None => Verdict::fail("`value` (REQUIRED) is absent or not a string"),
    }
}

async fn access_present(session: &mut Session) -> Verdict {
    let token = match issued(session).await {
        Ok(t) => t,
        Err(v) => return v,
    };
    match token.get("access") {
        Some(Value::Array(rights)) => Verdict::pass(format!("{} right(s)", rights.len())),
        Some(other) => Verdict::fail(format!("`access` is {other}")),
        None => Verdict::fail("`access` (REQUIRED) is absent"),
    }
}

/// What is wrong with an AS-specific token object (continuation or
/// management token, §3.1 and §3.2.1), if anything.
fn as_token_problem(token: Option<&Value>) -> Option<String> {
    let Some(token) = token else {
        return Some("no access_token".into());
    };
    if token.get("value").and_then(Value::as_str).is_none() {
        return Some("no `value`".into());
    }
    let bearer = token
        .get("flags")
        .and_then(Value::as_array)
        .is_some_and(|f| f.iter().any(|v| v.as_str() == Some("bearer")));
    if bearer {
        return Some("it is flagged bearer".into());
    }
    if token.get("key").is_some() {
        return Some("it has a `key`".into());
    }
    if token.get("manage").is_some() {
        return Some("it has a `manage`".into());
    }
    None
}

fn is_absolute(uri: &str) -> bool {
    uri.split_once("://")
        .is_some_and(|(scheme, rest)| !scheme.is_empty() && !rest.is_empty())
}

async fn manage_shape(session: &mut Session) -> Verdict {
    let token = match issued(session).await {
        Ok(t) => t,
        Err(v) => return v,
    };
    let Some(manage) = token.get("manage") else {
        return Verdict::not_applicable("the token has no `manage` (OPTIONAL)");
    };
    let value = token.get("value").and_then(Value::as_str).unwrap_or("");
    let Some(uri) = manage.get("uri").and_then(Value::as_str) else {
        return Verdict::fail("manage.uri is absent");
    };
    if !is_absolute(uri) {
        return Verdict::fail(format!("manage.uri {uri} is not absolute"));
    }
    if !value.is_empty() && uri.contains(value) {
        return Verdict::fail("manage.uri includes the access token value");
    }
    if let Some(problem) = as_token_problem(manage.get("access_token")) {
        return Verdict::fail(format!("the management token: {problem}"));
    }
    let managing = manage
        .pointer("/access_token/value")
        .and_then(Value::as_str)
        .unwrap_or("");
    Verdict::holds(
        managing != value,
        "uri absolute, token bound and distinct from the access token",
    )
}

/// A first grant response, for the shape checks of `continue`.
async fn first_response(session: &mut Session) -> Result<Value, Verdict> {
    let body = token_request(session).await;
    accepted(session.target.grant(&body).await).map(|(_, json)| json)
}

async fn continue_shape(session: &mut Session) -> Verdict {
    let response = match first_response(session).await {
        Ok(r) => r,
        Err(v) => return v,
    };
    let Some(c) = response.get("continue") else {
        return Verdict::not_applicable("the AS offered no continuation for this grant");
    };
    let Some(uri) = c.get("uri").and_then(Value::as_str) else {
        return Verdict::fail("continue.uri (REQUIRED) is absent");
    };
    if !is_absolute(uri) {
        return Verdict::fail(format!("continue.uri {uri} is not absolute"));
    }
    if let Some(wait) = c.get("wait")
        && !wait.is_u64()
    {
        return Verdict::fail(format!("continue.wait is {wait}, not an integer"));
    }
    match as_token_problem(c.get("access_token")) {
        None => Verdict::pass("uri absolute, continuation token bound"),
        Some(problem) => Verdict::fail(format!("the continuation token: {problem}")),
    }
}

async fn wait_five(session: &mut Session) -> Verdict {
    let response = match first_response(session).await {
        Ok(r) => r,
        Err(v) => return v,
    };
    let Some(c) = response.get("continue") else {
        return Verdict::not_applicable("the AS offered no continuation for this grant");
    };
    match c.get("wait").and_then(Value::as_u64) {
        None => Verdict::pass("no wait: five seconds by default"),
        Some(wait) => Verdict::holds(wait >= 5, format!("wait {wait}")),
    }
}

async fn label_echoed(session: &mut Session) -> Verdict {
    let body = json!({
        "access_token": { "access": [access_right()], "label": "conformance-one" },
        "client": session.target.client_by_value(),
    });
    let response = match obtain(session, &body).await {
        Ok(r) => r,
        Err(v) => return v,
    };
    let token = match single_token(&response) {
        Ok(t) => t,
        Err(v) => return v,
    };
    let label = token.get("label").and_then(Value::as_str);
    Verdict::holds(label == Some("conformance-one"), format!("label {label:?}"))
}

async fn multiple_labelled(session: &mut Session) -> Verdict {
    let body = json!({
        "access_token": [
            { "access": [access_right()], "label": "conformance-a" },
            { "access": [access_right()], "label": "conformance-b" },
        ],
        "client": session.target.client_by_value(),
    });
    let response = match obtain(session, &body).await {
        Ok(r) => r,
        Err(v) => return v,
    };
    let Some(tokens) = response.get("access_token").and_then(Value::as_array) else {
        return Verdict::fail("access_token is not an array for a multiple token request");
    };
    let mut labels: Vec<&str> = tokens
        .iter()
        .filter_map(|t| t.get("label").and_then(Value::as_str))
        .collect();
    if labels.len() != tokens.len() {
        return Verdict::fail("a token in the array has no label");
    }
    labels.sort_unstable();
    let unique = labels.windows(2).all(|w| w[0] != w[1]);
    let known = labels
        .iter()
        .all(|l| *l == "conformance-a" || *l == "conformance-b");
    Verdict::holds(
        unique && known && !labels.is_empty(),
        format!("labels {labels:?}"),
    )
}

async fn bearer_flag(session: &mut Session) -> Verdict {
    let body = json!({
        "access_token": { "access": [access_right()], "flags": ["bearer"] },
        "client": session.target.client_by_value(),
    });
    let reply = match session.target.grant(&body).await {
        Ok(r) => r,
        Err(e) => return Verdict::fail(e),
    };
    if let Some(code) = reply.error_code() {
        return Verdict::pass(format!("refused: {code}"));
    }
    let Some(response) = reply.json() else {
        return Verdict::fail(format!("{}: not JSON", reply.status));
    };
    let Some(token) = response.get("access_token") else {
        return Verdict::not_applicable("no token at once; the bearer answer cannot be seen");
    };
    let flags: Vec<&str> = token
        .get("flags")
        .and_then(Value::as_array)
        .map(|f| f.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let bearer = flags.contains(&"bearer");
    if bearer && token.get("key").is_some() {
        return Verdict::fail("a bearer token with a `key` (MUST be omitted)");
    }
    Verdict::pass(if bearer {
        "honoured: flags bearer, no key".to_owned()
    } else {
        format!("issued bound instead (flags {flags:?})")
    })
}

async fn by_reference(session: &mut Session) -> Verdict {
    let body = json!({
        "access_token": { "access": ["dolphin-metadata"] },
        "client": session.target.client_by_value(),
        "interact": polling_interact(session).await,
    });
    match accepted(session.target.grant(&body).await) {
        Ok((_, response)) => Verdict::holds(
            response.get("access_token").is_some() || response.get("continue").is_some(),
            "a grant response to a reference string",
        ),
        Err(verdict) => verdict,
    }
}

async fn instance_id_reuse(session: &mut Session) -> Verdict {
    let body = token_request(session).await;
    let (_, first) = match accepted(session.target.grant(&body).await) {
        Ok(a) => a,
        Err(v) => return v,
    };
    let Some(instance) = first.get("instance_id").and_then(Value::as_str) else {
        return Verdict::not_applicable("the AS returned no instance_id (OPTIONAL)");
    };
    let again = json!({
        "access_token": { "access": [access_right()] },
        "client": instance,
        "interact": polling_interact(session).await,
    });
    match accepted(session.target.grant(&again).await) {
        Ok(_) => Verdict::pass("a request with `client` as the instance_id was answered"),
        Err(verdict) => verdict,
    }
}

async fn subject_shape(session: &mut Session) -> Verdict {
    let body = json!({
        "subject": { "sub_id_formats": ["opaque"] },
        "client": session.target.client_by_value(),
        "interact": polling_interact(session).await,
    });
    let reply = match session.target.grant(&body).await {
        Ok(r) => r,
        Err(e) => return Verdict::fail(e),
    };
    if let Some(code) = reply.error_code() {
        return Verdict::not_applicable(format!("the AS refused a subject request: {code}"));
    }
    let Some(subject) = reply.json().and_then(|j| j.get("subject").cloned()) else {
        return Verdict::not_applicable("no subject information released at once");
    };
    let Some(ids) = subject.get("sub_ids") else {
        return Verdict::holds(
            subject.get("assertions").is_some(),
            "subject without sub_ids or assertions",
        );
    };
    let well_formed = ids.as_array().is_some_and(|ids| {
        ids.iter()
            .all(|id| id.get("format").and_then(Value::as_str).is_some())
    });
    Verdict::holds(well_formed, format!("sub_ids {ids}"))
}
