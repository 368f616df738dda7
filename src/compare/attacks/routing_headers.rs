//! A proxy changes the routing headers of a complete gateway call:
//! `Mcp-Name` naming another tool, `Mcp-Method` another method (the body
//! unchanged: the gateway compares them with the body, SEP-2243: 400
//! -32020; a GNAP signature also covers them), and both a header and the
//! body changed consistently to a tool the token does not grant (the
//! token's rights decide, whatever the headers say).

use super::super::driver::DriverError;
use super::super::meter::{Request, Tap};
use super::super::variant::Variant;
use super::super::world::World;
use super::Observed;
use super::agent::Agent;
use super::observe::{UpstreamMark, combine, verdict};
use super::wire::with_header;

pub(super) async fn attempt(
    world: &World,
    variant: Variant,
    tap: &Tap,
) -> Result<Observed, DriverError> {
    let at = super::target(world, variant)?;
    // A token for `echo` only, so a header that says `add` aims higher.
    let mut victim = Agent::headless(at, variant, "alpha", Some(&["echo"]), tap).await?;
    let mut tries: Vec<(&str, Request)> = Vec::new();
    let call = victim.call(at, "alpha", "echo")?;
    tries.push((
        "Mcp-Name changed to `add` (body: echo)",
        with_header(call, "Mcp-Name", "add"),
    ));
    let call = victim.call(at, "alpha", "echo")?;
    tries.push((
        "Mcp-Method changed to `tools/list` (body: tools/call)",
        with_header(call, "Mcp-Method", "tools/list"),
    ));
    let mut call = victim.call(at, "alpha", "echo")?;
    let body = String::from_utf8_lossy(&call.body).replace("\"echo\"", "\"add\"");
    call.body = body.into_bytes();
    tries.push((
        "Mcp-Name and the body's tool both changed to the ungranted `add`",
        with_header(call, "Mcp-Name", "add"),
    ));
    let mut observed = Vec::new();
    for (what, request) in tries {
        let mark = UpstreamMark::now(world);
        let answer = victim.send(request).await?;
        observed.push(verdict(what, &answer, mark.since(world)));
    }
    Ok(combine(observed))
}
