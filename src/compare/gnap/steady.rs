//! Scenario 3: `tools/call` after `tools/call` with a token in hand, each
//! call its own step sample (every one signed afresh: a new `created`,
//! `nonce` and `Content-Digest`).

use super::super::driver::DriverError;
use super::super::meter::Tap;
use super::super::recorder::Recorder;
use super::super::variant::Variant;
use super::super::world::World;
use super::session::Session;

/// A session with a token and an initialized MCP session at `world.auto`
/// (setup: not measured).
pub async fn ready(world: &World, variant: Variant, tap: &Tap) -> Result<Session, DriverError> {
    let mut agent = Session::headless(&world.auto, variant, "alpha", None, tap).await?;
    agent.initialize().await?;
    Ok(agent)
}

/// Scenario 3 against `world.auto`: `calls` measured calls.
pub async fn steady_state(
    world: &World,
    variant: Variant,
    calls: u32,
    rec: &mut Recorder<'_>,
    tap: &Tap,
) -> Result<(), DriverError> {
    let mut agent = ready(world, variant, tap).await?;
    for _ in 0..calls {
        rec.step("tools/call").await?;
        agent.tool("echo").await?;
    }
    rec.pause().await?;
    Ok(())
}
