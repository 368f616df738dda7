//! A test agent: builds and signs GNAP requests the way a client instance
//! does, for the AS tests (in-process and over HTTP).

use gnapd::proto::httpsig::{Algorithm, HttpRequest, SignOptions, sign_gnap, sign_gnap_rotation};
use gnapd::proto::jwk::SigningKey;
use serde_json::{Value, json};

/// A client instance: a key and nothing else.
pub struct Agent {
    pub key: SigningKey,
}

impl Agent {
    /// A fresh Ed25519 agent.
    pub fn new() -> Self {
        Self::with(SigningKey::generate(Algorithm::Ed25519).unwrap())
    }

    pub fn with(key: SigningKey) -> Self {
        Self { key }
    }

    /// The `client` member presenting the key by value.
    pub fn client(&self) -> Value {
        json!({
            "key": {"proof": "httpsig", "jwk": self.key.verifying_key().public_jwk().unwrap()},
            "display": {"name": "test agent"}
        })
    }

    /// A grant request body asking for one token with `access`.
    pub fn grant_body(&self, access: Value) -> Value {
        json!({"access_token": {"access": access}, "client": self.client()})
    }

    /// A signed JSON request.
    pub fn signed(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<&Value>,
        now: i64,
    ) -> HttpRequest {
        let mut req = HttpRequest::new(method, uri);
        if let Some(body) = body {
            req.body = serde_json::to_vec(body).unwrap();
            req.fields.append("Content-Type", "application/json");
        }
        if let Some(token) = token {
            req.fields.append("Authorization", format!("GNAP {token}"));
        }
        sign_gnap(&mut req, &self.key, now, &SignOptions::default()).unwrap();
        req
    }

    /// A rotation request signed by this agent's key and `new`'s.
    pub fn rotation(&self, new: &Agent, uri: &str, token: &str, now: i64) -> HttpRequest {
        let body = json!({"key": {"proof": "httpsig", "jwk": new.key.verifying_key().public_jwk().unwrap()}});
        let mut req = HttpRequest::new("POST", uri)
            .with_field("Content-Type", "application/json")
            .with_field("Authorization", format!("GNAP {token}"))
            .with_body(serde_json::to_vec(&body).unwrap());
        sign_gnap_rotation(&mut req, &self.key, &new.key, now).unwrap();
        req
    }
}

/// The access token value in a GNAP grant or token-management answer; the
/// whole answer in the panic message when there is none.
pub fn access_token(answer: &Value) -> &str {
    answer["access_token"]["value"]
        .as_str()
        .unwrap_or_else(|| panic!("no access token value in {answer}"))
}

/// The management URI of the token in a GNAP answer, and its management
/// access token (RFC 9635 §3.2.1).
pub fn management(answer: &Value) -> (&str, &str) {
    let manage = &answer["access_token"]["manage"];
    (
        manage["uri"].as_str().unwrap(),
        manage["access_token"]["value"].as_str().unwrap(),
    )
}

/// The error code of a GNAP error answer; `<none>` when it has none.
pub fn error_code(answer: &Value) -> &str {
    answer["error"]["code"].as_str().unwrap_or("<none>")
}
