//! The checks, one file per group, each check one function. A group
//! exposes its catalogue (`CHECKS`) and `run`, which maps an id to its
//! function. What several checks share lives here: the [`Session`] (the
//! target, the hook, the finish listener, the discovery document read
//! once) and the small steps every flow starts with (a grant request, a
//! token obtained, a continuation read).
//!
//! Every check makes its own grant: one check's leftovers (a rotated
//! token, a deleted grant) never decide another's result.

use std::time::Duration;

use serde_json::{Value, json};

use super::check::{Check, Verdict};
use super::finish_listener::FinishListener;
use super::hook::Hook;
use super::target::{Reply, Target};

pub mod continuation;
pub mod discovery;
pub mod errors;
pub mod grant;
pub mod headers;
pub mod interaction;
pub mod negative;
pub mod proofs;
pub mod rs;
pub mod token;

/// What every check runs against.
#[derive(Debug)]
pub struct Session {
    /// The AS.
    pub target: Target,
    /// The person and browser, if the operator gave a hook.
    pub hook: Option<Hook>,
    /// The suite's finish URI listener (started with the hook).
    pub listener: Option<FinishListener>,
    /// A resource at an RS this AS protects (`--rs-url`).
    pub rs_url: Option<String>,
    /// The §9 discovery document: `None` until read, then what was read.
    discovery: Option<Option<Value>>,
}

impl Session {
    /// A session against `target`.
    pub fn new(
        target: Target,
        hook: Option<Hook>,
        listener: Option<FinishListener>,
        rs_url: Option<String>,
    ) -> Self {
        Self {
            target,
            hook,
            listener,
            rs_url,
            discovery: None,
        }
    }

    /// The discovery document (§9), read once: the JSON object an
    /// `OPTIONS` on the grant endpoint answered with 200, if any.
    pub async fn discovery(&mut self) -> Option<Value> {
        if self.discovery.is_none() {
            let request = Target::request("OPTIONS", self.target.grant_endpoint(), None, None);
            let document = match self.target.send(&request).await {
                Ok(reply) if reply.status == 200 => reply.json().filter(Value::is_object),
                _ => None,
            };
            self.discovery = Some(document);
        }
        self.discovery.clone().flatten()
    }

    /// Whether the discovery document lists `value` in `field`: `None`
    /// when there is no document or it omits the field (the AS said
    /// nothing either way).
    pub async fn lists(&mut self, field: &str, value: &str) -> Option<bool> {
        let document = self.discovery().await?;
        let list = document.get(field)?.as_array()?.clone();
        Some(list.iter().any(|v| v.as_str() == Some(value)))
    }

    /// Longest the suite waits for a person (the hook) and the AS
    /// together: a few exchange timeouts.
    pub fn patience(&self) -> Duration {
        self.target.timeout().saturating_mul(4)
    }
}

/// The catalogue, in the order the checks run.
pub fn catalogue() -> Vec<&'static Check> {
    [
        discovery::CHECKS,
        grant::CHECKS,
        headers::CHECKS,
        continuation::CHECKS,
        token::CHECKS,
        errors::CHECKS,
        negative::CHECKS,
        proofs::CHECKS,
        interaction::CHECKS,
        rs::CHECKS,
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Runs `check` against the session.
pub async fn run(check: &Check, session: &mut Session) -> Verdict {
    let id = check.id;
    if proofs::handles(id) {
        return proofs::run(id, session).await;
    }
    let group = id.split('-').next().unwrap_or("");
    match group {
        "discovery" => discovery::run(id, session).await,
        "grant" => grant::run(id, session).await,
        "headers" => headers::run(id, session).await,
        "continue" => continuation::run(id, session).await,
        "token" => token::run(id, session).await,
        "error" => errors::run(id, session).await,
        "negative" => negative::run(id, session).await,
        "interact" => interaction::run(id, session).await,
        "rs" => rs::run(id, session).await,
        _ => unknown(id),
    }
}

/// The verdict for an id no group knows: a bug in the catalogue.
pub fn unknown(id: &str) -> Verdict {
    Verdict::error(format!("no check function for `{id}`"))
}

/// The access right every flow asks for: RFC 9635 §8's example type, read
/// only.
pub fn access_right() -> Value {
    json!({
        "type": "photo-api",
        "actions": ["read"],
        "locations": ["https://server.example.net/"],
    })
}

/// A grant request for one token with [`access_right`], the suite's key
/// by value, offering the start modes a hook can act on: an AS that needs
/// a person can then answer pending rather than refuse.
pub async fn token_request(session: &mut Session) -> Value {
    json!({
        "access_token": { "access": [access_right()] },
        "client": session.target.client_by_value(),
        "interact": interaction::polling_interact(session).await,
    })
}

/// A grant response's `continue` (§3.1), read.
#[derive(Debug, Clone)]
pub struct Continuation {
    /// `uri`.
    pub uri: String,
    /// `access_token.value`.
    pub token: String,
    /// `wait`, or the default five seconds.
    pub wait: u64,
    /// When the response carrying it was read: `wait` counts from there.
    pub received: tokio::time::Instant,
}

impl Continuation {
    /// The `continue` of `response`, if it has a usable one.
    pub fn of(response: &Value) -> Option<Self> {
        let c = response.get("continue")?;
        Some(Self {
            uri: c.get("uri")?.as_str()?.to_owned(),
            token: c.get("access_token")?.get("value")?.as_str()?.to_owned(),
            wait: c.get("wait").and_then(Value::as_u64).unwrap_or(5),
            received: tokio::time::Instant::now(),
        })
    }

    /// Waits until `wait` has passed since the response (plus a second:
    /// the AS may count in whole seconds).
    pub async fn wait_out(&self) {
        let wait = Duration::from_secs(self.wait.saturating_add(1));
        tokio::time::sleep_until(self.received + wait).await;
    }

    /// A signed `method` to the continuation URI with the token, and
    /// `body` if any.
    pub async fn call(
        &self,
        target: &Target,
        method: &str,
        body: Option<&Value>,
    ) -> Result<Reply, String> {
        target
            .signed(method, &self.uri, Some(&self.token), body)
            .await
    }
}

/// A token's `manage` (§3.2.1), read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Management {
    /// `manage.uri`.
    pub uri: String,
    /// `manage.access_token.value`.
    pub token: String,
}

impl Management {
    /// The `manage` of an `access_token` object.
    pub fn of(token: &Value) -> Option<Self> {
        let m = token.get("manage")?;
        Some(Self {
            uri: m.get("uri")?.as_str()?.to_owned(),
            token: m.get("access_token")?.get("value")?.as_str()?.to_owned(),
        })
    }
}

/// Error codes that say the AS's policy or its person refused: the suite
/// cannot be approved, which is no evidence against the AS.
///
/// `invalid_interaction` is among them: to a correct request it can only
/// mean the AS needs an interaction the request did not offer.
const POLICY_REFUSALS: [&str; 5] = [
    "invalid_interaction",
    "request_denied",
    "user_denied",
    "unknown_user",
    "too_many_attempts",
];

/// What a correct grant request got: a response to go on with, or the
/// verdict of a check that cannot go on (a policy refusal is
/// `not_applicable`; a malformed answer, or `invalid_request` or
/// `invalid_client` to a correct request, fails).
pub fn accepted(reply: Result<Reply, String>) -> Result<(Reply, Value), Verdict> {
    let reply = reply.map_err(Verdict::fail)?;
    if let Some(code) = reply.error_code() {
        return Err(if POLICY_REFUSALS.contains(&code.as_str()) {
            Verdict::not_applicable(format!("the AS refused the suite's request: {code}"))
        } else {
            Verdict::fail(format!(
                "a correct grant request was refused: {}",
                reply.summary()
            ))
        });
    }
    let Some(json) = reply.json().filter(Value::is_object) else {
        return Err(Verdict::fail(format!(
            "{}: the answer is not a JSON object",
            reply.status
        )));
    };
    if reply.status != 200 {
        return Err(Verdict::fail(format!(
            "status {} for a grant response",
            reply.status
        )));
    }
    Ok((reply, json))
}

/// A grant response with an access token for `body`: at once, or through
/// the hook and polling when the AS waits for a person. Without a hook a
/// pending grant is `not_applicable`.
pub async fn obtain(session: &mut Session, body: &Value) -> Result<Value, Verdict> {
    let mut body = body.clone();
    if session.hook.is_some()
        && body.get("interact").is_none()
        && let Some(object) = body.as_object_mut()
    {
        object.insert(
            "interact".into(),
            interaction::polling_interact(session).await,
        );
    }
    let (_, response) = accepted(session.target.grant(&body).await)?;
    if response.get("access_token").is_some() {
        return Ok(response);
    }
    if session.hook.is_none() {
        return Err(Verdict::not_applicable(
            "the AS issued no token at once and no --approve-hook was given",
        ));
    }
    interaction::approve_and_poll(session, &response).await
}

/// The single `access_token` object of a response.
pub fn single_token(response: &Value) -> Result<&Value, Verdict> {
    response
        .get("access_token")
        .filter(|t| t.is_object())
        .ok_or_else(|| Verdict::fail("a single token request got no access_token object"))
}

/// A verdict that `reply` is a §3.6 error with `code`, in the right
/// shape; `what` says what was done.
pub fn expect_error(reply: Result<Reply, String>, code: &str, what: &str) -> Verdict {
    let reply = match reply {
        Ok(reply) => reply,
        Err(e) => return Verdict::fail(format!("{what}: {e}")),
    };
    match reply.error_code() {
        Some(got) if got == code => match errors::shape_problem(&reply) {
            None => Verdict::pass(format!("{what}: {}", reply.summary())),
            Some(problem) => Verdict::fail(format!("{what}: {code}, but {problem}")),
        },
        Some(got) => Verdict::fail(format!("{what}: {got} ({}), not {code}", reply.status)),
        None => Verdict::fail(format!("{what}: {} without a GNAP error", reply.status)),
    }
}

/// A verdict that `reply` is a refusal: any §3.6 error, a `4xx` status.
pub fn expect_refusal(reply: Result<Reply, String>, what: &str) -> Verdict {
    let reply = match reply {
        Ok(reply) => reply,
        Err(e) => return Verdict::fail(format!("{what}: {e}")),
    };
    let refused = reply.error_code().is_some() || (400..500).contains(&reply.status);
    Verdict::holds(refused, format!("{what}: {}", reply.summary()))
}
