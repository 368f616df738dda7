//! The GNAP side of `gnapd compare`: the seven scenarios for the two GNAP
//! variants (an Ed25519 or a P-256 key, every request signed under gnapd's
//! GNAP profile), sent through the lead's [`Meter`](super::meter::Meter)
//! and cut into steps by the [`Recorder`].
//!
//! - Protocol steps, one file each, small and `pub` for the attack suite:
//!   [`wire`] (signing a meter request), [`discovery`] (the 401 challenge),
//!   [`grant`] (the grant request), [`interaction`] (redirect start and
//!   finish hash), [`continuation`] (continue with `interact_ref`, modify),
//!   [`manage`] (rotate, revoke).
//! - [`session`]: one agent (meter, key, grant, MCP session) built from
//!   those steps.
//! - Scenarios: [`first_call`] (1, 2), [`steady`] (3), [`renewal`] (4, 7),
//!   [`revocation`] (5), [`step_up`] (6).

pub mod continuation;
pub mod discovery;
pub mod first_call;
pub mod grant;
pub mod interaction;
pub mod manage;
pub mod renewal;
pub mod revocation;
pub mod session;
pub mod steady;
pub mod step_up;
pub mod wire;

pub use session::Session;

use super::driver::DriverError;
use super::harness::Instance;
use super::meter::Tap;
use super::recorder::Recorder;
use super::variant::{Scenario, Variant};
use super::world::World;

/// Why `scenario` does not apply to `variant` (None: it applies). Every
/// scenario applies to both GNAP variants.
pub fn not_applicable(variant: Variant, _scenario: Scenario) -> Option<&'static str> {
    if variant.is_gnap() {
        None
    } else {
        Some("not a GNAP variant")
    }
}

/// One run of `scenario` for `variant` against `world`, cut into steps
/// with `rec`. `calls`: the steady-state scenario's tools/calls.
pub async fn run(
    world: &World,
    variant: Variant,
    scenario: Scenario,
    calls: u32,
    rec: &mut Recorder<'_>,
    tap: &Tap,
) -> Result<(), DriverError> {
    if let Some(why) = not_applicable(variant, scenario) {
        return Err(DriverError::Protocol(why.to_owned()));
    }
    // The world decides which instance each scenario runs on (the one
    // its probes measure).
    let at: &Instance = world
        .instance_for(variant, scenario)
        .ok_or_else(|| DriverError::Protocol("no instance runs this variant".to_owned()))?;
    match scenario {
        Scenario::HeadlessFirstCall => first_call::headless(at, variant, rec, tap).await,
        Scenario::PersonApproves => first_call::person_approves(at, variant, rec, tap).await,
        Scenario::SteadyState => steady::steady_state(at, variant, calls, rec, tap).await,
        Scenario::Renewal => renewal::renewal(at, variant, rec, tap).await,
        Scenario::Revocation => revocation::revocation(at, variant, rec, tap).await,
        Scenario::StepUp => step_up::step_up(at, variant, rec, tap).await,
        Scenario::ReturningAgent => renewal::returning_agent(at, variant, rec, tap).await,
    }
}
