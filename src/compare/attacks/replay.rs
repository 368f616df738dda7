//! Replay: a gateway call captured on the wire (by a proxy, a log) sent
//! again, byte for byte, from another connection. A signature's `nonce`
//! and a DPoP proof's `jti` are single-use; a Bearer request carries
//! nothing that is, so its replay works by design: reported as it is.

use super::super::driver::{DriverError, unexpected};
use super::super::meter::{Meter, Tap};
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
    let mut victim = Agent::headless(at, variant, "alpha", None, tap).await?;
    let captured = victim.call(at, "alpha", "echo")?;
    let answer = victim.send(captured.clone()).await?;
    if answer.status != 200 {
        return Err(unexpected("the victim's own call", &answer));
    }
    let mark = UpstreamMark::now(world);
    let mut attacker = Meter::agent(tap);
    let replayed = attacker.send(captured).await?;
    Ok(verdict(
        "the captured call (HTTP 200 for the victim) sent again unchanged",
        &replayed,
        mark.since(world),
    ))
}
