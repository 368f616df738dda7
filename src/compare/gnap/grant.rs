//! The grant request (RFC 9635 §2) and its answer (§3), over the meter:
//! the body is gnapd's own client's (`crate::client::grant::grant_request`,
//! the key presented by value), the answer read by its `interpret`. A
//! returning agent that was given an instance identifier (§3.5) presents
//! that instead of its key (§2.3.1); either way the request is signed.

use serde_json::{Value, json};

use super::super::driver::{DriverError, unexpected};
use super::super::meter::{Meter, Response};
use super::wire;
use crate::client::grant::{AccessSpec, Issued, Outcome, Pending, grant_request, interpret};
use crate::proto::gnap::Continue;
use crate::proto::jwk::SigningKey;

/// `client.display.name` of every agent the driver makes.
pub const DISPLAY: &str = "gnapd compare agent";

/// What an approved grant gave the agent.
#[derive(Debug, Clone)]
pub struct Granted {
    /// The access token and its management API.
    pub issued: Issued,
    /// The grant's continuation (§5), if the AS left one.
    pub continue_: Option<Continue>,
    /// The instance identifier (§3.5), if the AS gave one.
    pub instance_id: Option<String>,
}

/// A grant request body for `access`: the key by value, or `instance_id`
/// when the AS gave one; interaction `modes` and a redirect `finish` (URI,
/// nonce) if any.
pub fn body(
    key: &SigningKey,
    access: &AccessSpec,
    instance_id: Option<&str>,
    modes: &[&str],
    finish: Option<(&str, &str)>,
) -> Value {
    let mut body = grant_request(key, DISPLAY, access, modes, finish);
    if let Some(id) = instance_id {
        body["client"] = json!(id);
    }
    body
}

/// Sends a signed grant request to `as_uri`, with `Referer: resource` (the
/// resource that sent the agent here, §9.1).
pub async fn send(
    meter: &mut Meter,
    key: &SigningKey,
    as_uri: &str,
    body: &Value,
    resource: &str,
) -> Result<Response, DriverError> {
    let request = wire::as_request("POST", as_uri, Some(body), key, None)?;
    // Referer is not covered by the profile; it is added after signing.
    let request = request.header("Referer", resource);
    Ok(meter.send(request).await?)
}

/// Reads an answer that must carry a token (a grant, a continuation or a
/// modification response).
pub fn approved(what: &str, response: &Response) -> Result<Granted, DriverError> {
    match interpret(response.status, &response.body) {
        Outcome::Approved { issued, continue_ } => Ok(Granted {
            issued,
            continue_,
            instance_id: response.json()["instance_id"].as_str().map(str::to_owned),
        }),
        Outcome::Pending(_) => Err(unexpected(&format!("{what}: still pending"), response)),
        Outcome::Refused(refusal) => Err(unexpected(&format!("{what}: {refusal}"), response)),
    }
}

/// Reads an answer that must wait for a person.
pub fn pending(what: &str, response: &Response) -> Result<Pending, DriverError> {
    match interpret(response.status, &response.body) {
        Outcome::Pending(pending) => Ok(pending),
        _ => Err(unexpected(&format!("{what}: not pending"), response)),
    }
}

/// A headless grant: no interaction offered, the token in the answer.
pub async fn headless(
    meter: &mut Meter,
    key: &SigningKey,
    as_uri: &str,
    access: &AccessSpec,
    instance_id: Option<&str>,
    resource: &str,
) -> Result<Granted, DriverError> {
    let body = body(key, access, instance_id, &[], None);
    let response = send(meter, key, as_uri, &body, resource).await?;
    approved("the grant request", &response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::httpsig::Algorithm;

    #[test]
    fn a_returning_agent_presents_its_instance_id_instead_of_its_key() {
        let key = SigningKey::generate(Algorithm::Ed25519).unwrap();
        let access = AccessSpec::Reference("mcp:alpha".into());
        let first = body(&key, &access, None, &[], None);
        assert!(first["client"]["key"]["jwk"].is_object());
        let again = body(&key, &access, Some("inst-1"), &[], None);
        assert_eq!(again["client"], json!("inst-1"));
        // Both are requests gnapd's parser accepts.
        for b in [first, again] {
            crate::proto::gnap::parse_grant_request(&serde_json::to_vec(&b).unwrap()).unwrap();
        }
    }
}
