//! Scenario 5: the agent revokes its access token (RFC 9635 §6.2, `DELETE`
//! on the token's management URI: the access token itself, as GNAP has no
//! refresh token), then calls the gateway until it refuses. The step's
//! round trips are the calls it took (expected: one).

use super::super::driver::{DriverError, unexpected};
use super::super::harness::Instance;
use super::super::meter::Tap;
use super::super::recorder::Recorder;
use super::super::variant::Variant;
use super::steady::ready;

/// Calls made after the revocation before the run calls it failed.
pub const MAX_CALLS_AFTER_REVOKE: u32 = 20;

/// Scenario 5 against its instance (`world.auto`).
pub async fn revocation(
    at: &Instance,
    variant: Variant,
    rec: &mut Recorder<'_>,
    tap: &Tap,
) -> Result<(), DriverError> {
    let mut agent = ready(at, variant, tap).await?;
    agent.tool("echo").await?;
    rec.step("revoke").await?;
    agent.revoke().await?;
    rec.step("refused").await?;
    let mut last = None;
    for _ in 0..MAX_CALLS_AFTER_REVOKE {
        let response = agent.call_tool("echo").await?;
        if response.status == 401 {
            rec.pause().await?;
            return Ok(());
        }
        last = Some(response);
    }
    Err(match last {
        Some(response) => unexpected(
            &format!("the revoked token still worked after {MAX_CALLS_AFTER_REVOKE} calls"),
            &response,
        ),
        None => DriverError::Protocol("no call made".into()),
    })
}
