//! Scenario 3: `tools/call` after `tools/call` with a token in hand, each
//! call its own step sample (every one signed afresh: a new `created`,
//! `nonce` and `Content-Digest`).

use super::super::driver::DriverError;
use super::super::harness::Instance;
use super::super::meter::Tap;
use super::super::recorder::Recorder;
use super::super::variant::Variant;
use super::session::Session;

/// A session with a token and an initialized MCP session at `at`
/// (setup: not measured).
pub async fn ready(at: &Instance, variant: Variant, tap: &Tap) -> Result<Session, DriverError> {
    let mut agent = Session::headless(at, variant, "alpha", None, tap).await?;
    agent.initialize().await?;
    Ok(agent)
}

/// Scenario 3 against its instance (`world.auto`): `calls` measured calls.
pub async fn steady_state(
    at: &Instance,
    variant: Variant,
    calls: u32,
    rec: &mut Recorder<'_>,
    tap: &Tap,
) -> Result<(), DriverError> {
    let mut agent = ready(at, variant, tap).await?;
    for _ in 0..calls {
        rec.step("tools/call").await?;
        agent.tool("echo").await?;
    }
    rec.pause().await?;
    Ok(())
}
