//! Scenario 6: the agent holds a token for tool `echo` and needs `add`.
//! gnapd keeps an approved grant continuable, so the agent modifies it
//! (RFC 9635 §5.3: `PATCH` on the continuation URI with the larger
//! `access_token` request) and gets a new token for both tools, with the
//! same key, without a new grant request or discovery.

use super::super::driver::{DriverError, unexpected};
use super::super::harness::Instance;
use super::super::meter::Tap;
use super::super::recorder::Recorder;
use super::super::variant::Variant;
use super::session::Session;

/// Scenario 6 against its instance (`world.auto`).
pub async fn step_up(
    at: &Instance,
    variant: Variant,
    rec: &mut Recorder<'_>,
    tap: &Tap,
) -> Result<(), DriverError> {
    let mut agent = Session::headless(at, variant, "alpha", Some(&["echo"]), tap).await?;
    agent.initialize().await?;
    rec.step("refused").await?;
    let refused = agent.call_tool("add").await?;
    if refused.status != 403 {
        return Err(unexpected(
            "a call outside the token's tools was not refused",
            &refused,
        ));
    }
    rec.step("more-access").await?;
    agent.more_access(&["echo", "add"]).await?;
    rec.step("tools/call").await?;
    agent.tool("add").await?;
    rec.pause().await?;
    Ok(())
}
