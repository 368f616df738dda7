//! The attack suite: each attack of [`Attack::ALL`] tried against one
//! variant on the running [`World`], its outcome observed (statuses, error
//! codes, challenges, what reached the upstream), never assumed. One file
//! per attack, each driving the victim through the drivers' own sessions
//! ([`agent`]); [`observe`] reads answers into outcomes; [`wire`] edits
//! requests as a proxy would.

pub mod agent;
mod audience;
mod body_tampering;
mod code_injection;
mod cuckoo;
mod flooding;
mod mix_up;
pub mod observe;
mod refresh_reuse;
mod replay;
mod routing_headers;
mod stolen_token;
pub mod wire;

use super::driver::DriverError;
use super::harness::Instance;
use super::meter::Tap;
use super::report::{AttackResult, Outcome};
use super::variant::{Attack, Variant};
use super::world::World;

pub use flooding::N as FLOOD_REQUESTS;
pub use observe::Observed;

/// Tries `attack` against `variant` on `world`; every exchange goes to
/// `tap`. A setup that fails is an `error` outcome with its message.
pub async fn attempt(world: &World, variant: Variant, attack: Attack, tap: &Tap) -> AttackResult {
    let observed = match attack {
        Attack::Replay => replay::attempt(world, variant, tap).await,
        Attack::StolenToken => stolen_token::attempt(world, variant, tap).await,
        Attack::BodyTampering => body_tampering::attempt(world, variant, tap).await,
        Attack::RoutingHeaderTampering => routing_headers::attempt(world, variant, tap).await,
        Attack::Audience => audience::attempt(world, variant, tap).await,
        Attack::CodeInjection => code_injection::attempt(world, variant, tap).await,
        Attack::MixUp => mix_up::attempt(world, variant, tap).await,
        Attack::RefreshReuse => refresh_reuse::attempt(world, variant, tap).await,
        Attack::CuckooToken => cuckoo::attempt(world, variant, tap).await,
        Attack::RegistrationFlooding => flooding::attempt(world, variant, tap).await,
    };
    let observed = observed.unwrap_or_else(|e| Observed::new(Outcome::Error, e.to_string()));
    AttackResult {
        variant: variant.id().to_owned(),
        outcome: observed.outcome,
        evidence: observed.evidence,
    }
}

/// The gateway the attacks aim at for `variant`: `auto`, or for the
/// external AS's variants the gateway that trusts it.
pub(crate) fn target(world: &World, variant: Variant) -> Result<&Instance, DriverError> {
    world.target_of(variant).ok_or_else(|| {
        DriverError::Protocol(format!(
            "{} needs the external AS (--with-oidc-provider)",
            variant.id()
        ))
    })
}
