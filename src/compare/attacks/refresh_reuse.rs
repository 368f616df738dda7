//! Reuse after renewal. OAuth: the refresh token a rotation spent, sent
//! again (RFC 9700 §4.14.2: the AS revokes the whole family, so the
//! family's newest access token must stop working too). GNAP (§6.1): the
//! rotated-away access token at the gateway, and the old management token
//! asked to rotate again. A thief holding the old values gets nothing.

use super::super::driver::DriverError;
use super::super::meter::{Request, Tap};
use super::super::oauth;
use super::super::variant::Variant;
use super::super::world::World;
use super::super::{gnap, oauth::token};
use super::Observed;
use super::agent::Agent;
use super::observe::{UpstreamMark, combine, refused, verdict};

pub(super) async fn attempt(
    world: &World,
    variant: Variant,
    tap: &Tap,
) -> Result<Observed, DriverError> {
    let at = super::target(world, variant)?;
    if variant == Variant::OAuthClientCredentials {
        return Ok(Observed::not_applicable(
            "client_credentials issues no refresh token (RFC 6749 §4.4.3): renewal is a new \
             assertion, whose jti is single-use",
        ));
    }
    let mut victim = Agent::headless(at, variant, "alpha", None, tap).await?;
    victim.renew().await?;
    let old = victim
        .previous_access_token()
        .ok_or_else(|| DriverError::Protocol("no previous token after renewal".into()))?
        .to_owned();
    let mut observed = Vec::new();
    match &mut victim {
        Agent::Gnap(session) => {
            let (uri, manage_token) = session
                .previous_management()
                .map(|(u, t)| (u.to_owned(), t.to_owned()))
                .ok_or_else(|| DriverError::Protocol("no previous management".into()))?;
            let request =
                gnap::wire::as_request("POST", &uri, None, session.key(), Some(&manage_token))?;
            observed.push(refused(
                "the old management token asked to rotate again",
                &session.send(request).await?,
            ));
        }
        Agent::OAuth(session) => {
            let spent = session
                .previous_refresh_token()
                .ok_or_else(|| DriverError::Protocol("no spent refresh token".into()))?
                .to_owned();
            let endpoint = session.found()?.metadata.token_endpoint.clone();
            let proof = match session.dpop_key() {
                Some(key) => Some(oauth::dpop::proof(key, "POST", &endpoint, None)?),
                None => None,
            };
            let fields = token::refresh_fields(session.client_id()?, &spent);
            let request: Request = token::request(&endpoint, &fields, proof.as_deref());
            observed.push(refused(
                "the spent refresh token sent again",
                &session.send(request).await?,
            ));
        }
    }
    // The rotated-away token; for OAuth also the family's newest token,
    // which the reuse must have revoked (a thief who refreshed first
    // holds it).
    let mut tokens = vec![("the rotated-away access token at the gateway", old)];
    if !variant.is_gnap() {
        let newest = victim.access_token().to_owned();
        tokens.push(("after the reuse, the family's newest access token", newest));
    }
    for (what, token) in tokens {
        let request = victim.call_with(at, "alpha", "echo", &token)?;
        let mark = UpstreamMark::now(world);
        let answer = victim.send(request).await?;
        observed.push(verdict(what, &answer, mark.since(world)));
    }
    Ok(combine(observed))
}
