//! AS mix-up: the client uses two ASes, `other` (the attacker's, from the
//! client's view the one it is talking to) and `auto`/`interactive` or
//! node-oidc-provider (the
//! honest one the person uses). The attacker's AS sends the person to the
//! honest AS with the client's request; what comes back was made by the
//! honest AS. Defences are the client's: OAuth, RFC 9207 (`iss` in the
//! redirect compared with the AS the client sent the person to; the OAuth
//! driver does); GNAP (§4.2.3, the fix of ePrint 2023/1325), the grant
//! endpoint inside the interaction hash (the GNAP driver checks it). The
//! honest answer is also checked against the right AS, so a refusal is the
//! check at work, not a broken flow; and OAuth shows what a client without
//! the check would have handed the attacker.

use super::super::consent;
use super::super::driver::DriverError;
use super::super::gnap::{self, interaction};
use super::super::meter::{Meter, Tap};
use super::super::oauth::authorize::{self, AuthorizationRequest};
use super::super::oauth::pkce::Pkce;
use super::super::oauth::register::REDIRECT_URI;
use super::super::oauth::{self, token};
use super::super::variant::Variant;
use super::super::world::World;
use super::Observed;
use super::observe::describe;

pub(super) async fn attempt(
    world: &World,
    variant: Variant,
    tap: &Tap,
) -> Result<Observed, DriverError> {
    if variant == Variant::OAuthClientCredentials {
        return Ok(Observed::not_applicable(
            "client_credentials has no redirect: nothing comes back through a browser to mix up",
        ));
    }
    if variant.is_gnap() {
        gnap_mix_up(world, variant, tap).await
    } else {
        oauth_mix_up(world, variant, tap).await
    }
}

async fn gnap_mix_up(world: &World, variant: Variant, tap: &Tap) -> Result<Observed, DriverError> {
    // The grant as the attacker's AS relayed it to the honest one.
    let mut victim = gnap::Session::new(variant, &world.interactive.gateway("alpha"), tap)?;
    victim.discover(None).await?;
    let waiting = victim.start_interaction().await?;
    let mut browser = Meter::browser(tap);
    let back = consent::approve(&mut browser, &waiting.redirect, &waiting.finish_uri).await?;
    let believed = world.other.grant_endpoint.clone();
    let honest = victim.as_uri().to_owned();
    // The same redirect checks against the honest grant endpoint: a
    // refusal below is the grant endpoint in the hash, nothing else.
    interaction::finish(&waiting, &back, &honest)?;
    Ok(match interaction::finish(&waiting, &back, &believed) {
        Err(e) => Observed::blocked(format!(
            "The person approved at the honest AS (`interactive`); the client, believing its AS \
             was `other`, checked the interaction hash with `other`'s grant endpoint and refused \
             ({e}); the same redirect verifies with the honest grant endpoint: the interact_ref \
             never went to the attacker."
        )),
        Ok(_) => Observed::succeeded(
            "The interaction hash made by the honest AS (`interactive`) verified against \
             `other`'s grant endpoint: the client would continue at the attacker's AS."
                .to_owned(),
        ),
    })
}

async fn oauth_mix_up(world: &World, variant: Variant, tap: &Tap) -> Result<Observed, DriverError> {
    // The client knows both ASes (registered at the honest one).
    let at = super::target(world, variant)?;
    let mut victim = oauth::Session::new(variant, tap)?;
    victim.discover(&at.gateway("alpha")).await?;
    victim.register().await?;
    // The attacker's AS is gnapd's `other`, found as a gnapd client finds
    // it (for the external variants too).
    let gnapd_variant = match variant {
        Variant::OidcProviderDpopDcr => Variant::OAuthDpopDcr,
        Variant::OidcProviderBearerDcr => Variant::OAuthBearerDcr,
        v => v,
    };
    let mut other = oauth::Session::new(gnapd_variant, tap)?;
    other.discover(&world.other.gateway("alpha")).await?;
    let believed = other.found()?.metadata.issuer.clone();
    let found = victim.found()?.clone();
    let client_id = victim.client_id()?.to_owned();
    let pkce = Pkce::new()?;
    let state = "mix-up-state";
    let jkt = victim
        .dpop_key()
        .map(|k| k.verifying_key().thumbprint().as_str().to_owned());
    // The attacker's AS forwards the person to the honest AS.
    let url = AuthorizationRequest {
        endpoint: &found.metadata.authorization_endpoint,
        client_id: &client_id,
        redirect_uri: REDIRECT_URI,
        pkce: &pkce,
        state,
        resource: &found.resource,
        scope: found.scope.as_deref(),
        dpop_jkt: jkt.as_deref(),
    }
    .url();
    let started = authorize::start(victim.browser(), &url, REDIRECT_URI).await?;
    let back = authorize::callback_of(
        victim.browser(),
        started,
        variant.is_external(),
        REDIRECT_URI,
    )
    .await?;
    let honest = found.metadata.issuer.clone();
    let honest_name = if variant.is_external() {
        "node-oidc-provider"
    } else {
        "`auto`"
    };
    let code = authorize::read_callback(&back, state, &honest)?;
    let refusal = match authorize::read_callback(&back, state, &believed) {
        Err(e) => e.to_string(),
        Ok(_) => {
            return Ok(Observed::succeeded(format!(
                "The redirect from the honest AS ({honest_name}) read as `other`'s: the client would \
                 send the code and its PKCE verifier to the attacker's token endpoint."
            )));
        }
    };
    // What a client without the check hands the attacker: the code and
    // the verifier, which the attacker redeems at the honest AS.
    let endpoint = &found.metadata.token_endpoint;
    let fields = token::code_fields(
        &client_id,
        &code,
        REDIRECT_URI,
        &pkce.verifier,
        &found.resource,
    );
    let mut attacker = Meter::agent(tap);
    let answer = attacker
        .send(token::request(endpoint, &fields, None))
        .await?;
    Ok(Observed::blocked(format!(
        "The redirect from the honest AS ({honest_name}) carried its iss; the client, believing its AS \
         was `other`, compared iss (RFC 9207) and refused ({refusal}): the code never left. \
         Without that check the attacker, holding the code and the verifier (not the DPoP key), \
         redeems them at the honest AS: {}.",
        describe(&answer)
    )))
}
