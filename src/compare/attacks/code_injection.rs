//! Code / `interact_ref` injection: the attacker runs a flow of its own
//! (for the victim's client, OAuth; for its own grant, GNAP), approves it
//! as itself, and delivers what came back to the victim client's
//! redirect URI. OAuth: the victim redeems the injected code with its own
//! PKCE verifier (RFC 9700 §4.5: PKCE must refuse). GNAP: the victim's
//! client checks the interaction hash (§4.2.3) over its own nonces; and a
//! client that skipped the check continues its grant with the injected
//! reference, which the AS must refuse.

use serde_json::json;

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
use super::observe::{combine, query_param, refused};

pub(super) async fn attempt(
    world: &World,
    variant: Variant,
    tap: &Tap,
) -> Result<Observed, DriverError> {
    if variant == Variant::OAuthClientCredentials {
        return Ok(Observed::not_applicable(
            "client_credentials has no redirect: no code travels through a browser",
        ));
    }
    if variant.is_gnap() {
        gnap_injection(world, variant, tap).await
    } else {
        oauth_injection(world, variant, tap).await
    }
}

async fn gnap_injection(
    world: &World,
    variant: Variant,
    tap: &Tap,
) -> Result<Observed, DriverError> {
    let gateway = world.interactive.gateway("alpha");
    let mut victim = gnap::Session::new(variant, &gateway, tap)?;
    victim.discover(None).await?;
    let waiting = victim.start_interaction().await?;
    // The attacker's own grant, approved by the attacker's own person.
    let mut attacker = gnap::Session::new(variant, &gateway, tap)?;
    attacker.discover(None).await?;
    let own = attacker.start_interaction().await?;
    let mut browser = Meter::browser(tap);
    let back = consent::approve(&mut browser, &own.redirect, &own.finish_uri).await?;
    let query = back.split_once('?').map_or("", |(_, q)| q);
    let interact_ref = query_param(&back, "interact_ref")
        .ok_or_else(|| DriverError::Protocol(format!("no interact_ref in {back}")))?;
    // Delivered to the victim's finish URI.
    let injected = format!("{}?{query}", waiting.finish_uri);
    let check = match interaction::finish(&waiting, &injected, victim.as_uri()) {
        Err(e) => Observed::blocked(format!(
            "The attacker's hash and interact_ref at the victim's finish URI: the victim's \
             client refused ({e})."
        )),
        Ok(_) => Observed::succeeded(
            "The attacker's hash and interact_ref at the victim's finish URI: the victim's \
             client accepted them."
                .to_owned(),
        ),
    };
    // A client that skipped the check continues with the injected reference.
    let cont = &waiting.continue_;
    let request = gnap::wire::as_request(
        "POST",
        &cont.uri,
        Some(&json!({"interact_ref": interact_ref})),
        victim.key(),
        Some(cont.access_token.value.expose()),
    )?;
    let answer = victim.send(request).await?;
    let server = refused(
        "A client skipping the check continues its grant with the injected interact_ref",
        &answer,
    );
    Ok(combine(vec![check, server]))
}

async fn oauth_injection(
    world: &World,
    variant: Variant,
    tap: &Tap,
) -> Result<Observed, DriverError> {
    let at = super::target(world, variant)?;
    let external = variant.is_external();
    let mut victim = oauth::Session::new(variant, tap)?;
    victim.discover(&at.gateway("alpha")).await?;
    victim.register().await?;
    let client_id = victim.client_id()?.to_owned();
    let found = victim.found()?.clone();
    let jkt = victim
        .dpop_key()
        .map(|k| k.verifying_key().thumbprint().as_str().to_owned());
    let request = |pkce: &Pkce, state: &str, jkt: Option<&str>| {
        AuthorizationRequest {
            endpoint: &found.metadata.authorization_endpoint,
            client_id: &client_id,
            redirect_uri: REDIRECT_URI,
            pkce,
            state,
            resource: &found.resource,
            scope: found.scope.as_deref(),
            dpop_jkt: jkt,
        }
        .url()
    };
    // The victim's own authorization, under way: its PKCE, its state.
    let victim_pkce = Pkce::new()?;
    let victim_state = "victim-state";
    let url = request(&victim_pkce, victim_state, jkt.as_deref());
    let started = authorize::start(victim.browser(), &url, REDIRECT_URI).await?;
    let victim_back =
        authorize::callback_of(victim.browser(), started, external, REDIRECT_URI).await?;
    // The attacker's authorization for the same client, its own PKCE.
    let attacker_pkce = Pkce::new()?;
    let url = request(&attacker_pkce, "attacker-state", None);
    let mut browser = Meter::browser(tap);
    // At node-oidc-provider the attacker signs in and consents as itself.
    let started = authorize::start(&mut browser, &url, REDIRECT_URI).await?;
    let attacker_back =
        authorize::callback_of(&mut browser, started, external, REDIRECT_URI).await?;
    let stolen = query_param(&attacker_back, "code")
        .ok_or_else(|| DriverError::Protocol(format!("no code in {attacker_back}")))?;
    let own = query_param(&victim_back, "code").unwrap_or_default();
    let injected = victim_back.replace(&format!("code={own}"), &format!("code={stolen}"));
    // The victim's client reads it (its state, the right iss) and redeems.
    let code = authorize::read_callback(&injected, victim_state, &found.metadata.issuer)?;
    let endpoint = &found.metadata.token_endpoint;
    let proof = match victim.dpop_key() {
        Some(key) => Some(oauth::dpop::proof(key, "POST", endpoint, None)?),
        None => None,
    };
    let fields = token::code_fields(
        &client_id,
        &code,
        REDIRECT_URI,
        &victim_pkce.verifier,
        &found.resource,
    );
    let answer = victim
        .send(token::request(endpoint, &fields, proof.as_deref()))
        .await?;
    Ok(refused(
        "The attacker's code injected into the victim's callback (the victim's state and iss \
         kept), redeemed by the victim's client with its own PKCE verifier",
        &answer,
    ))
}
