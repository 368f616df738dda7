//! Continuing a grant (RFC 9635 §5): after the interaction, with the
//! `interact_ref` (§5.1), and modifying an approved grant (§5.3, `PATCH`
//! with the parts of the request that change). Each call presents the
//! continuation access token and is signed by the grant's key.

use serde_json::{Value, json};

use super::super::driver::DriverError;
use super::super::meter::{Meter, Response};
use super::grant::{Granted, approved};
use super::wire;
use crate::client::grant::AccessSpec;
use crate::proto::gnap::Continue;
use crate::proto::jwk::SigningKey;

/// One signed call to the continuation URI.
pub async fn call(
    meter: &mut Meter,
    key: &SigningKey,
    cont: &Continue,
    method: &str,
    body: Option<&Value>,
) -> Result<Response, DriverError> {
    let token = cont.access_token.value.expose();
    let request = wire::as_request(method, &cont.uri, body, key, Some(token))?;
    Ok(meter.send(request).await?)
}

/// §5.1: continues with the reference the browser brought back; the
/// answer carries the token.
pub async fn after_interaction(
    meter: &mut Meter,
    key: &SigningKey,
    cont: &Continue,
    interact_ref: &str,
) -> Result<Granted, DriverError> {
    let body = json!({"interact_ref": interact_ref});
    let response = call(meter, key, cont, "POST", Some(&body)).await?;
    approved("the continuation after interaction", &response)
}

/// §5.3: asks for `access` instead, on the grant `cont` continues; the
/// answer carries a new token (earlier tokens stay valid).
pub async fn modify(
    meter: &mut Meter,
    key: &SigningKey,
    cont: &Continue,
    access: &AccessSpec,
) -> Result<Granted, DriverError> {
    let response = call(meter, key, cont, "PATCH", Some(&modification(access))).await?;
    approved("the grant modification", &response)
}

/// The §5.3 body: the whole new `access_token` request.
pub fn modification(access: &AccessSpec) -> Value {
    json!({"access_token": {"access": access.to_access()}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_modification_is_one_gnapd_parses() {
        let access = AccessSpec::Tools {
            upstream: "alpha".into(),
            tools: vec!["echo".into(), "add".into()],
        };
        let body = modification(&access);
        let parsed =
            crate::proto::gnap::parse_modify_request(&serde_json::to_vec(&body).unwrap()).unwrap();
        assert!(parsed.access_token.is_some());
    }
}
