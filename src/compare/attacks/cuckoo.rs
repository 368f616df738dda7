//! The cuckoo's token (GNAP formal analysis, ePrint 2023/1325): a token
//! one AS issued, presented at the resource of another AS in front of the
//! same upstream, in a call otherwise complete (signed or proved by the
//! token's own key). Both ways: `other`'s token at `auto`'s gateway and
//! `auto`'s at `other`'s.

use super::super::driver::DriverError;
use super::super::harness::Instance;
use super::super::meter::Tap;
use super::super::variant::Variant;
use super::super::world::World;
use super::Observed;
use super::agent::Agent;
use super::observe::{UpstreamMark, combine, verdict};

pub(super) async fn attempt(
    world: &World,
    variant: Variant,
    tap: &Tap,
) -> Result<Observed, DriverError> {
    if variant.is_external() {
        return external(world, variant, tap).await;
    }
    let mut observed = Vec::new();
    for (issuer, resource, what) in [
        (
            &world.other,
            &world.auto,
            "a token of AS `other` at AS `auto`'s gateway",
        ),
        (
            &world.auto,
            &world.other,
            "a token of AS `auto` at AS `other`'s gateway",
        ),
    ] {
        observed.push(across(world, variant, tap, issuer, resource, what).await?);
    }
    Ok(combine(observed))
}

async fn across(
    world: &World,
    variant: Variant,
    tap: &Tap,
    issuer: &Instance,
    resource: &Instance,
    what: &str,
) -> Result<Observed, DriverError> {
    let mut agent = Agent::headless(issuer, variant, "alpha", None, tap).await?;
    let request = agent.call(resource, "alpha", "echo")?;
    let mark = UpstreamMark::now(world);
    let answer = agent.send(request).await?;
    Ok(verdict(what, &answer, mark.since(world)))
}

/// The external AS's column: node-oidc-provider's token at `auto`'s
/// gateway (which trusts gnapd's AS only), and a token of gnapd's `auto`
/// (its OAuth face, the same binding) at the external gateway, which
/// knows it not and introspects it at node-oidc-provider.
async fn external(world: &World, variant: Variant, tap: &Tap) -> Result<Observed, DriverError> {
    let gateway = super::target(world, variant)?;
    let gnapd_variant = match variant.binding() {
        super::super::variant::Binding::DpopEs256 => Variant::OAuthDpopDcr,
        _ => Variant::OAuthBearerDcr,
    };
    let mut observed = Vec::new();
    let mut agent = Agent::headless(gateway, variant, "alpha", None, tap).await?;
    let request = agent.call(&world.auto, "alpha", "echo")?;
    let mark = UpstreamMark::now(world);
    let answer = agent.send(request).await?;
    observed.push(verdict(
        "a token of node-oidc-provider at AS `auto`'s gateway",
        &answer,
        mark.since(world),
    ));
    observed.push(
        across(
            world,
            gnapd_variant,
            tap,
            &world.auto,
            gateway,
            "a token of AS `auto` at the gateway trusting node-oidc-provider",
        )
        .await?,
    );
    Ok(combine(observed))
}
