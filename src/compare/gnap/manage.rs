//! Token management (RFC 9635 §6) through the management URI the token
//! came with, presenting the management access token, signed by the key
//! the token is bound to: rotation (§6.1, `POST`: a new value, the old one
//! stops working) and revocation (§6.2, `DELETE`).

use super::super::driver::{DriverError, unexpected};
use super::super::meter::Meter;
use super::wire;
use crate::client::grant::{Issued, rotated};
use crate::proto::gnap::Manage;
use crate::proto::jwk::SigningKey;

/// §6.1: rotates the token `manage` manages; the new token (and, from
/// gnapd, a new management token).
pub async fn rotate(
    meter: &mut Meter,
    key: &SigningKey,
    manage: &Manage,
) -> Result<Issued, DriverError> {
    let token = manage.access_token.value.expose();
    let request = wire::as_request("POST", &manage.uri, None, key, Some(token))?;
    let response = meter.send(request).await?;
    if response.status != 200 {
        return Err(unexpected("the rotation", &response));
    }
    let mut issued = rotated(&response.body).map_err(|e| DriverError::Protocol(e.to_string()))?;
    // §6.1: without a new `manage`, the old one still manages the token.
    if issued.manage.is_none() {
        issued.manage = Some(manage.clone());
    }
    Ok(issued)
}

/// §6.2: revokes the token `manage` manages (`204`).
pub async fn revoke(
    meter: &mut Meter,
    key: &SigningKey,
    manage: &Manage,
) -> Result<(), DriverError> {
    let token = manage.access_token.value.expose();
    let request = wire::as_request("DELETE", &manage.uri, None, key, Some(token))?;
    let response = meter.send(request).await?;
    if !(200..300).contains(&response.status) {
        return Err(unexpected("the revocation", &response));
    }
    Ok(())
}
