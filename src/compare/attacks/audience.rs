//! A token for upstream `alpha` presented at upstream `beta`'s gateway
//! URL, in a call otherwise complete (GNAP: signed by the token's key for
//! that URL; DPoP: a proof for that URL): the token's audience decides.

use super::super::driver::DriverError;
use super::super::meter::Tap;
use super::super::variant::Variant;
use super::super::world::World;
use super::Observed;
use super::agent::Agent;
use super::observe::{UpstreamMark, verdict};

pub(super) async fn attempt(
    world: &World,
    variant: Variant,
    tap: &Tap,
) -> Result<Observed, DriverError> {
    let at = super::target(world, variant)?;
    let mut agent = Agent::headless(at, variant, "alpha", None, tap).await?;
    let request = agent.call(at, "beta", "echo")?;
    let mark = UpstreamMark::now(world);
    let answer = agent.send(request).await?;
    Ok(verdict(
        "alpha's token (every tool) in a call at /mcp/beta",
        &answer,
        mark.since(world),
    ))
}
