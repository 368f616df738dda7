//! RFC 7009 revocation as a public client sends it: the token and its
//! `client_id` in a form (gnapd: revoking an access token takes its
//! refresh token with it; revoking a refresh token, its whole grant).

use crate::compare::driver::{DriverError, unexpected};
use crate::compare::meter::{Meter, Request};

/// The revocation request of `token` by `client_id`, with its hint.
pub fn request(endpoint: &str, client_id: &str, token: &str, hint: &str) -> Request {
    Request::new("POST", endpoint).form(&[
        ("token", token),
        ("token_type_hint", hint),
        ("client_id", client_id),
    ])
}

/// Revokes; 200 is the only success (§2.2).
pub(crate) async fn revoke(meter: &mut Meter, request: Request) -> Result<(), DriverError> {
    let answer = meter.send(request).await?;
    if answer.status != 200 {
        return Err(unexpected("revocation", &answer));
    }
    Ok(())
}
