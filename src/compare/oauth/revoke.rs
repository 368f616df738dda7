//! RFC 7009 revocation as a client sends it: the token and its
//! `client_id` in a form, and for a `private_key_jwt` client a fresh
//! client assertion (§2.1: the client authenticates as at the token
//! endpoint). gnapd: revoking an access token takes its refresh token with
//! it; revoking a refresh token, its whole grant.

use crate::compare::driver::{DriverError, unexpected};
use crate::compare::meter::{Meter, Request};
use crate::proto::oauth::client_assertion::JWT_BEARER_ASSERTION;

/// The revocation request of `token` by `client_id`, with its hint, and
/// the client's signed `assertion` when it authenticates by one.
pub fn request(
    endpoint: &str,
    client_id: &str,
    token: &str,
    hint: &str,
    assertion: Option<&str>,
) -> Request {
    let mut fields = vec![
        ("token", token),
        ("token_type_hint", hint),
        ("client_id", client_id),
    ];
    if let Some(assertion) = assertion {
        fields.push(("client_assertion_type", JWT_BEARER_ASSERTION));
        fields.push(("client_assertion", assertion));
    }
    Request::new("POST", endpoint).form(&fields)
}

/// Revokes; 200 is the only success (§2.2).
pub(crate) async fn revoke(meter: &mut Meter, request: Request) -> Result<(), DriverError> {
    let answer = meter.send(request).await?;
    if answer.status != 200 {
        return Err(unexpected("revocation", &answer));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_key_jwt_client_sends_its_assertion_and_a_public_one_only_its_id() {
        let public = request("http://as/oauth/revoke", "c1", "t", "access_token", None);
        let body = String::from_utf8_lossy(&public.body).into_owned();
        assert!(body.contains("client_id=c1"), "{body}");
        assert!(!body.contains("client_assertion"), "{body}");
        let asserted = request(
            "http://as/oauth/revoke",
            "c1",
            "t",
            "access_token",
            Some("a.b.c"),
        );
        let body = String::from_utf8_lossy(&asserted.body).into_owned();
        assert!(body.contains("client_assertion=a.b.c"), "{body}");
        assert!(
            body.contains("client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"),
            "{body}"
        );
    }
}
