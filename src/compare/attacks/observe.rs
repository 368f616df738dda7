//! What every attack reports and how it reads an answer: the status, the
//! error code the body or the challenge names, and how many requests
//! reached the upstream meanwhile.

use serde_json::Value;

use super::super::driver::mcp_result;
use super::super::meter::Response;
use super::super::report::Outcome;
use super::super::world::World;

/// An attack's outcome with the evidence for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// What happened.
    pub outcome: Outcome,
    /// One or two sentences with the numbers.
    pub evidence: String,
}

impl Observed {
    /// An outcome and its evidence.
    pub fn new(outcome: Outcome, evidence: String) -> Self {
        Self { outcome, evidence }
    }

    /// The server refused it.
    pub fn blocked(evidence: String) -> Self {
        Self::new(Outcome::Blocked, evidence)
    }

    /// It worked.
    pub fn succeeded(evidence: String) -> Self {
        Self::new(Outcome::Succeeded, evidence)
    }

    /// Nothing to aim at.
    pub fn not_applicable(why: &str) -> Self {
        Self::new(Outcome::NotApplicable, why.to_owned())
    }
}

/// One forged or replayed request's outcome from its answer and the
/// requests that reached the upstream meanwhile: a 200 with a JSON-RPC
/// result that reached the upstream worked; a refusal with nothing
/// forwarded was blocked; anything else cannot tell.
pub fn verdict(what: &str, response: &Response, reached: usize) -> Observed {
    let forwarded = match reached {
        0 => "nothing reached the upstream".to_owned(),
        1 => "it reached the upstream".to_owned(),
        n => format!("{n} requests reached the upstream"),
    };
    let evidence = format!("{what}: {}; {forwarded}.", describe(response));
    let answered = response.status == 200 && mcp_result(response).is_ok();
    if answered && reached > 0 {
        Observed::succeeded(evidence)
    } else if response.status >= 400 && reached == 0 {
        Observed::blocked(evidence)
    } else {
        Observed::new(Outcome::Error, format!("inconclusive: {evidence}"))
    }
}

/// An AS request that must be refused: any 4xx blocked it, a 2xx means
/// it worked, anything else cannot tell.
pub fn refused(what: &str, answer: &Response) -> Observed {
    let evidence = format!("{what}: {}.", describe(answer));
    match answer.status {
        400..=499 => Observed::blocked(evidence),
        200..=299 => Observed::succeeded(evidence),
        _ => Observed::new(Outcome::Error, format!("inconclusive: {evidence}")),
    }
}

/// Several tries of one attack: it worked if any try worked; it was
/// blocked if every try was.
pub fn combine(tries: Vec<Observed>) -> Observed {
    let outcome = if tries.iter().any(|t| t.outcome == Outcome::Succeeded) {
        Outcome::Succeeded
    } else if tries.iter().all(|t| t.outcome == Outcome::Blocked) {
        Outcome::Blocked
    } else {
        Outcome::Error
    };
    let evidence = tries
        .into_iter()
        .map(|t| t.evidence)
        .collect::<Vec<_>>()
        .join(" ");
    Observed::new(outcome, evidence)
}

/// `HTTP 401 invalid_token (WWW-Authenticate: GNAP ...)`: the status, the
/// error code of the body (GNAP, OAuth or JSON-RPC) and the challenges of
/// a refusal, so the evidence names what the server said.
pub fn describe(response: &Response) -> String {
    let mut text = format!("HTTP {}", response.status);
    let body = response.json();
    if let Some(code) = error_code(&body) {
        text.push(' ');
        text.push_str(&code);
    }
    let description = body["error_description"]
        .as_str()
        .or(body["error"]["description"].as_str())
        .or(body["error"]["message"].as_str());
    if let Some(description) = description {
        let short: String = description.chars().take(120).collect();
        text.push_str(&format!(" \"{short}\""));
    }
    let challenges = challenges(response);
    if !challenges.is_empty() && response.status >= 400 {
        text.push_str(&format!(" ({challenges})"));
    }
    text
}

/// The `WWW-Authenticate` challenges of an answer in brief: their schemes
/// and any `error` they name (`challenges: Bearer, DPoP; error="invalid_token"`).
pub fn challenges(response: &Response) -> String {
    let joined = response
        .headers_named("www-authenticate")
        .collect::<Vec<_>>()
        .join(", ");
    if joined.is_empty() {
        return String::new();
    }
    let schemes: Vec<&str> = ["GNAP", "Bearer", "DPoP"]
        .into_iter()
        .filter(|scheme| {
            joined.starts_with(&format!("{scheme} ")) || joined.contains(&format!(", {scheme} "))
        })
        .collect();
    let mut errors: Vec<&str> = joined
        .split("error=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    errors.dedup();
    let mut text = format!("challenges: {}", schemes.join(", "));
    if !errors.is_empty() {
        text.push_str(&format!("; error=\"{}\"", errors.join("\", \"")));
    }
    text
}

/// The error code a body names: OAuth's `error` string, GNAP's `error`
/// string or `error.code`, JSON-RPC's `error.code` (as `jsonrpc -32020`).
pub fn error_code(body: &Value) -> Option<String> {
    match &body["error"] {
        Value::String(code) => Some(code.clone()),
        Value::Object(error) => match error.get("code") {
            Some(Value::String(code)) => Some(code.clone()),
            Some(Value::Number(code)) if body.get("jsonrpc").is_some() => {
                Some(format!("jsonrpc {code}"))
            }
            Some(Value::Number(code)) => Some(code.to_string()),
            _ => None,
        },
        _ => None,
    }
}

/// Query parameter `name` of `url`, decoded.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.into_owned())
}

/// Counts the requests the upstream received from a starting point on.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamMark(usize);

impl UpstreamMark {
    /// The upstream's count now.
    pub fn now(world: &World) -> Self {
        Self(requests(world))
    }

    /// Requests the upstream received since the mark.
    pub fn since(self, world: &World) -> usize {
        requests(world).saturating_sub(self.0)
    }
}

/// Requests the upstream received: every one the gateway forwards carries
/// the injected credential, so one `authorization` value each.
fn requests(world: &World) -> usize {
    world
        .upstream
        .seen()
        .iter()
        .filter(|value| value.starts_with("authorization: "))
        .count()
}

/// Whether any header value the upstream received contains `secret` (an
/// agent's token or proof must never be forwarded).
pub fn upstream_saw(world: &World, secret: &str) -> bool {
    !secret.is_empty() && world.upstream.seen().iter().any(|v| v.contains(secret))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn error_codes_of_each_protocol_are_named() {
        assert_eq!(
            error_code(&json!({"error": "invalid_grant"})).as_deref(),
            Some("invalid_grant")
        );
        assert_eq!(
            error_code(&json!({"error": {"code": "invalid_client"}})).as_deref(),
            Some("invalid_client")
        );
        assert_eq!(
            error_code(&json!({"jsonrpc": "2.0", "error": {"code": -32020}})).as_deref(),
            Some("jsonrpc -32020")
        );
        assert_eq!(error_code(&json!({"result": {}})), None);
    }

    fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        Response {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn a_refusal_names_its_status_code_description_and_challenges() {
        let refused = answer(
            401,
            &[
                (
                    "www-authenticate",
                    r#"GNAP as_uri="http://a/gnap", error="invalid_token""#,
                ),
                (
                    "www-authenticate",
                    r#"Bearer resource_metadata="x", scope="mcp:alpha""#,
                ),
            ],
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32001,"message":"no"}}"#,
        );
        assert_eq!(
            describe(&refused),
            r#"HTTP 401 jsonrpc -32001 "no" (challenges: GNAP, Bearer; error="invalid_token")"#
        );
        let oauth = answer(
            400,
            &[],
            r#"{"error":"invalid_grant","error_description":"spent"}"#,
        );
        assert_eq!(describe(&oauth), r#"HTTP 400 invalid_grant "spent""#);
    }

    #[test]
    fn verdicts_need_both_the_answer_and_the_upstream_to_agree() {
        let ok = answer(
            200,
            &[("content-type", "application/json")],
            r#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
        );
        let no = answer(401, &[], "");
        assert_eq!(verdict("x", &ok, 1).outcome, Outcome::Succeeded);
        assert_eq!(verdict("x", &no, 0).outcome, Outcome::Blocked);
        // Refused, yet something was forwarded; or 200 and nothing was.
        assert_eq!(verdict("x", &no, 1).outcome, Outcome::Error);
        assert_eq!(verdict("x", &ok, 0).outcome, Outcome::Error);
        assert_eq!(refused("x", &no).outcome, Outcome::Blocked);
        assert_eq!(refused("x", &ok).outcome, Outcome::Succeeded);
    }

    #[test]
    fn one_working_try_makes_the_attack_work() {
        let blocked = || Observed::blocked("a.".into());
        let worked = Observed::succeeded("b.".into());
        assert_eq!(
            combine(vec![blocked(), blocked()]).outcome,
            Outcome::Blocked
        );
        let mixed = combine(vec![blocked(), worked]);
        assert_eq!(mixed.outcome, Outcome::Succeeded);
        assert_eq!(mixed.evidence, "a. b.");
        let unsure = Observed::new(Outcome::Error, "c.".into());
        assert_eq!(combine(vec![blocked(), unsure]).outcome, Outcome::Error);
    }
}
