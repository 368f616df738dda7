//! Scenarios 4 and 7: renewing a token.
//!
//! 4: a live token rotated (RFC 9635 §6.1) and the new one used.
//! 7: the agent comes back after its token expired (`world.short`, tokens
//! of one second) on a new connection. gnapd refuses to rotate an expired
//! token ("the access token has expired", `src/authz/manage.rs`), and
//! gnapd's own agent negotiates anew when its token expired, so the
//! renewal is a new grant request with the same key, presenting the
//! instance identifier the AS gave the first time (§3.5, §2.3.1) and the
//! grant endpoint and access it already knows: no discovery again.

use std::time::Duration;

use super::super::driver::{DriverError, unexpected};
use super::super::harness::Instance;
use super::super::meter::Tap;
use super::super::recorder::Recorder;
use super::super::variant::Variant;
use super::session::Session;
use super::steady::ready;

/// Scenario 4 against its instance (`world.auto`).
pub async fn renewal(
    at: &Instance,
    variant: Variant,
    rec: &mut Recorder<'_>,
    tap: &Tap,
) -> Result<(), DriverError> {
    let mut agent = ready(at, variant, tap).await?;
    agent.tool("echo").await?;
    rec.step("renew").await?;
    agent.renew().await?;
    rec.step("tools/call").await?;
    agent.tool("echo").await?;
    rec.pause().await?;
    Ok(())
}

/// Scenario 7 against its instance (`world.short`).
pub async fn returning_agent(
    at: &Instance,
    variant: Variant,
    rec: &mut Recorder<'_>,
    tap: &Tap,
) -> Result<(), DriverError> {
    let mut agent = Session::headless(at, variant, "alpha", None, tap).await?;
    agent.initialize().await?;
    agent.tool("echo").await?;
    sleep_until_expired(&agent).await;
    // The next day: a new process, a new connection.
    agent.disconnect();
    rec.step("refused").await?;
    let refused = agent.call_tool("echo").await?;
    if refused.status != 401 {
        return Err(unexpected("the expired token was not refused", &refused));
    }
    rec.step("renew").await?;
    agent.grant().await?;
    rec.step("tools/call").await?;
    agent.tool("echo").await?;
    rec.pause().await?;
    Ok(())
}

/// Sleeps past the token's `expires_in` (whole seconds on the server's
/// clock, so one more second and a margin).
async fn sleep_until_expired(agent: &Session) {
    let lifetime = agent.expires_in().unwrap_or(1);
    tokio::time::sleep(Duration::from_millis(
        lifetime.saturating_add(1) * 1000 + 200,
    ))
    .await;
}
