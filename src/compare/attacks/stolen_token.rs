//! A stolen access token used without its key: the thief builds its own
//! call with the victim's token, signed (GNAP) or proved (DPoP) with a key
//! of its own, and also presents a bound token as a plain Bearer token.
//! A Bearer token needs no key: using it works by design.

use super::super::driver::{self, DriverError};
use super::super::meter::{Meter, Request, Tap};
use super::super::variant::{Binding, Variant};
use super::super::world::World;
use super::super::{gnap, oauth};
use super::agent::{Agent, present};
use super::observe::{UpstreamMark, combine, verdict};
use super::{Observed, wire};
use crate::proto::jwk::SigningKey;

pub(super) async fn attempt(
    world: &World,
    variant: Variant,
    tap: &Tap,
) -> Result<Observed, DriverError> {
    let at = super::target(world, variant)?;
    let victim = Agent::headless(at, variant, "alpha", None, tap).await?;
    let token = victim.access_token().to_owned();
    let gateway = at.gateway("alpha");
    let call = || driver::tool_call(&gateway, 7, "echo", None);
    let mut tries: Vec<(&str, Request)> = Vec::new();
    match variant.binding() {
        Binding::HttpSigEd25519 | Binding::HttpSigP256 => {
            let algorithm = gnap::session::algorithm(variant)
                .ok_or_else(|| DriverError::Protocol("no GNAP algorithm".into()))?;
            let thief = key(algorithm)?;
            tries.push((
                "the token in a call the thief signed with its own key",
                gnap::wire::sign(call(), &thief, Some(&token))?,
            ));
            tries.push((
                "the token as a Bearer token, unsigned",
                present(call(), &token, None)?,
            ));
        }
        Binding::DpopEs256 => {
            let thief = oauth::dpop::new_key()?;
            tries.push((
                "the token with a DPoP proof by the thief's key",
                present(call(), &token, Some(&thief))?,
            ));
            tries.push((
                "the token as a Bearer token, no proof",
                present(call(), &token, None)?,
            ));
        }
        Binding::Bearer => tries.push((
            "the token in the thief's own call",
            present(call(), &token, None)?,
        )),
    }
    let mut thief = Meter::agent(tap);
    let mut observed = Vec::new();
    for (what, request) in tries {
        let mark = UpstreamMark::now(world);
        let request = wire::without(request, &["Mcp-Session-Id"]);
        let answer = thief.send(request).await?;
        observed.push(verdict(what, &answer, mark.since(world)));
    }
    Ok(combine(observed))
}

fn key(algorithm: crate::proto::httpsig::Algorithm) -> Result<SigningKey, DriverError> {
    SigningKey::generate(algorithm).map_err(|e| DriverError::Protocol(format!("key: {e}")))
}
