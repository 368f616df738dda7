//! Scenarios 1 and 2: a brand-new agent to its first `tools/call`, with no
//! person (the AS approves at once) and with a person who approves on the
//! consent page (redirect interaction, redirect finish, continuation).

use super::super::consent;
use super::super::driver::DriverError;
use super::super::harness::Instance;
use super::super::meter::{Meter, Tap};
use super::super::recorder::Recorder;
use super::super::variant::Variant;
use super::session::Session;

/// Scenario 1 against its instance (`world.auto`).
pub async fn headless(
    at: &Instance,
    variant: Variant,
    rec: &mut Recorder<'_>,
    tap: &Tap,
) -> Result<(), DriverError> {
    rec.step("discovery").await?;
    // Key generation belongs to the first step.
    let mut agent = Session::new(variant, &at.gateway("alpha"), tap)?;
    agent.discover(None).await?;
    rec.step("grant").await?;
    agent.grant().await?;
    rec.step("initialize").await?;
    agent.initialize().await?;
    rec.step("tools/call").await?;
    agent.tool("echo").await?;
    rec.pause().await?;
    Ok(())
}

/// Scenario 2 against its instance (`world.interactive`).
pub async fn person_approves(
    at: &Instance,
    variant: Variant,
    rec: &mut Recorder<'_>,
    tap: &Tap,
) -> Result<(), DriverError> {
    rec.step("discovery").await?;
    let mut agent = Session::new(variant, &at.gateway("alpha"), tap)?;
    agent.discover(None).await?;
    rec.step("grant").await?;
    let started = agent.start_interaction().await?;
    rec.step("consent").await?;
    let mut browser = Meter::browser(tap);
    let callback = consent::approve(&mut browser, &started.redirect, &started.finish_uri).await?;
    rec.step("continue").await?;
    agent.finish_interaction(&started, &callback).await?;
    rec.step("initialize").await?;
    agent.initialize().await?;
    rec.step("tools/call").await?;
    agent.tool("echo").await?;
    rec.pause().await?;
    Ok(())
}
