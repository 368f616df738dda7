//! What the `grant_machine` hook believes about the AS: the grants and
//! tokens its answers handed out, and what each may still do.

use serde_json::Value;

/// A grant, as the client instance that made it knows it.
#[derive(Debug, Clone)]
pub(super) struct Grant {
    /// The grant id (the last segment of its continuation URI).
    pub id: String,
    /// Which agent made it (index into the agent keys).
    pub agent: usize,
    /// The continuation token to present next.
    pub continuation: String,
    /// Continuation tokens already used up: none may work again.
    pub spent: Vec<String>,
    /// Waiting for a person.
    pub pending: bool,
    /// What the person decided, once they did.
    pub decided: Option<bool>,
    /// Whether the interaction has a finish method (tokens come only with
    /// the interaction reference then).
    pub finish: bool,
    /// The interaction reference the finish redirect carried.
    pub interact_ref: Option<String>,
    /// The user code, when one was issued.
    pub user_code: Option<String>,
    /// When the pending interaction stops accepting a decision.
    pub interaction_expires: i64,
    /// When the grant (and so its continuation and tokens) expires.
    pub expires_at: i64,
    /// Deleted or finalized: nothing of it may work again.
    pub gone: bool,
}

/// An access token, as the client instance holds it.
#[derive(Debug, Clone)]
pub(super) struct Token {
    pub value: String,
    /// Its management token.
    pub manage: String,
    /// The grant it was issued under (index).
    pub grant: usize,
    /// The agent key it is bound to (index).
    pub key: usize,
    /// The `access` the answer listed.
    pub access: Value,
    /// Revoked, rotated away, or its grant gone.
    pub dead: bool,
    pub expires_at: i64,
}

/// The secret values of a grant response (§3): the continuation token and
/// each access token with its management token and access.
#[derive(Debug, Default)]
pub(super) struct Answer {
    pub continuation: Option<String>,
    pub grant_id: Option<String>,
    pub tokens: Vec<(String, String, Value)>,
    pub user_code: Option<String>,
    pub interact: bool,
    pub finish: bool,
    pub instance_id: Option<String>,
}

impl Answer {
    /// Reads a grant, continuation or rotation response body.
    pub fn read(body: &Value) -> Self {
        let mut answer = Answer {
            continuation: body["continue"]["access_token"]["value"]
                .as_str()
                .map(str::to_owned),
            grant_id: body["continue"]["uri"]
                .as_str()
                .and_then(|u| u.rsplit('/').next())
                .map(str::to_owned),
            user_code: body["interact"]["user_code"].as_str().map(str::to_owned),
            interact: body["interact"].is_object(),
            finish: body["interact"]["finish"].is_string(),
            instance_id: body["instance_id"].as_str().map(str::to_owned),
            ..Answer::default()
        };
        let tokens = match &body["access_token"] {
            Value::Array(many) => many.iter().collect(),
            Value::Object(_) => vec![&body["access_token"]],
            _ => Vec::new(),
        };
        for token in tokens {
            let value = token["value"].as_str().expect("a token has a value");
            let manage = token["manage"]["access_token"]["value"]
                .as_str()
                .expect("a bound token has a management token");
            answer
                .tokens
                .push((value.to_owned(), manage.to_owned(), token["access"].clone()));
        }
        answer
    }

    /// Every secret value in the answer.
    pub fn secrets(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self.continuation.iter().map(String::as_str).collect();
        for (value, manage, _) in &self.tokens {
            out.push(value);
            out.push(manage);
        }
        out
    }
}

/// True if every right in `access` (a token's `access` array) is one the
/// allowlist rule of the fuzzed policy covers: `mcp:a` or an `mcp` object.
pub(super) fn within_rule(access: &Value) -> bool {
    access.as_array().is_some_and(|rights| {
        !rights.is_empty()
            && rights
                .iter()
                .all(|r| r == "mcp:a" || r.get("type").and_then(Value::as_str) == Some("mcp"))
    })
}
