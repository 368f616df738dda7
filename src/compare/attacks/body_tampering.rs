//! A proxy in the path changes the body of a complete gateway call (the
//! echo's text) and sends it on in place of the original. The RFC 9421
//! signature covers `Content-Digest`; a DPoP proof covers only the
//! method, the URL and the token; a Bearer token covers nothing.

use super::super::driver::DriverError;
use super::super::meter::Tap;
use super::super::variant::Variant;
use super::super::world::World;
use super::Observed;
use super::agent::Agent;
use super::observe::{UpstreamMark, verdict};

/// The text the proxy puts in.
const TAMPERED: &str = "changed by a proxy";

pub(super) async fn attempt(
    world: &World,
    variant: Variant,
    tap: &Tap,
) -> Result<Observed, DriverError> {
    let at = super::target(world, variant)?;
    let mut victim = Agent::headless(at, variant, "alpha", None, tap).await?;
    let mut request = victim.call(at, "alpha", "echo")?;
    let body = String::from_utf8_lossy(&request.body).into_owned();
    let changed = body.replace("hello from gnapd compare", TAMPERED);
    if changed == body {
        return Err(DriverError::Protocol(
            "the echo's text was not found".into(),
        ));
    }
    request.body = changed.into_bytes();
    let mark = UpstreamMark::now(world);
    let answer = victim.send(request).await?;
    let mut observed = verdict(
        "the call with the echo's text changed after signing",
        &answer,
        mark.since(world),
    );
    if answer.text().contains(TAMPERED) {
        observed
            .evidence
            .push_str(&format!(" The upstream echoed \"{TAMPERED}\"."));
    }
    Ok(observed)
}
