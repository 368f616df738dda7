//! The seven scenarios for an OAuth variant, cut into the contract's steps
//! (`discovery`, `register`, `authorize`, `sign-in` (node-oidc-provider's
//! sign-in form), `consent`, `token`,
//! `initialize`, `tools/call`, `renew`, `revoke`, `refused`,
//! `more-access`). Setup outside a step is not measured.

use std::time::Duration;

use super::authorize::Started;
use super::challenge;
use super::register::REDIRECT_URI;
use super::session::{Session, tool_scope};
use crate::compare::driver::{self, DriverError, unexpected};
use crate::compare::external::person::{self, Prompt, Reached};
use crate::compare::harness::Instance;
use crate::compare::meter::Tap;
use crate::compare::recorder::Recorder;
use crate::compare::variant::{Identification, Scenario, Variant};
use crate::compare::world::{EXTERNAL_SHORT_TTL, World};

/// The upstream every scenario calls.
pub const UPSTREAM: &str = "alpha";

/// Calls made until the gateway refuses a revoked token before the run
/// calls it failed.
const REFUSAL_TRIES: u32 = 10;

/// Why `scenario` does not apply to `variant` (None: it applies).
pub fn not_applicable(variant: Variant, scenario: Scenario) -> Option<&'static str> {
    if variant.is_gnap() {
        return Some("a GNAP variant: the GNAP driver runs it");
    }
    match (variant, scenario) {
        (Variant::OAuthClientCredentials, Scenario::PersonApproves) => Some(
            "client_credentials has no person and no browser (SEP-1046: the client acts for itself)",
        ),
        (
            Variant::OidcProviderDpopDcr | Variant::OidcProviderBearerDcr,
            Scenario::HeadlessFirstCall,
        ) => Some(
            "node-oidc-provider has no policy that approves an authorization-code request without a person (its sign-in and consent forms are always shown): scenario 2 measures the same flow with the person's steps",
        ),
        _ => None,
    }
}

/// One run of `scenario` for `variant` against `world`.
pub async fn run(
    world: &World,
    variant: Variant,
    scenario: Scenario,
    calls: u32,
    rec: &mut Recorder<'_>,
    tap: &Tap,
) -> Result<(), DriverError> {
    if let Some(why) = not_applicable(variant, scenario) {
        return Err(DriverError::Protocol(format!("not applicable: {why}")));
    }
    let instance = world.instance_for(variant, scenario).ok_or_else(|| {
        DriverError::Protocol(format!(
            "{} needs the external AS (--with-oidc-provider)",
            variant.id()
        ))
    })?;
    match scenario {
        Scenario::HeadlessFirstCall | Scenario::PersonApproves => {
            first_call(instance, variant, rec, tap).await
        }
        Scenario::SteadyState => steady_state(instance, variant, calls, rec, tap).await,
        Scenario::Renewal => renewal(instance, variant, rec, tap).await,
        Scenario::Revocation => revocation(instance, variant, rec, tap).await,
        Scenario::StepUp => step_up(instance, variant, rec, tap).await,
        Scenario::ReturningAgent => returning(instance, variant, rec, tap).await,
    }
}

/// A brand-new agent to its first `tools/call`; a person approves on the
/// consent page when the instance asks for one.
async fn first_call(
    instance: &Instance,
    variant: Variant,
    rec: &mut Recorder<'_>,
    tap: &Tap,
) -> Result<(), DriverError> {
    let gateway = instance.gateway(UPSTREAM);
    rec.step("discovery").await?;
    let mut session = Session::new(variant, tap)?;
    session.discover(&gateway).await?;
    if variant.identification() != Identification::Cimd {
        rec.step("register").await?;
        session.register().await?;
    }
    if variant == Variant::OAuthClientCredentials {
        rec.step("token").await?;
        session.client_credentials(None).await?;
    } else {
        rec.step("authorize").await?;
        let callback = match session.authorize(None).await? {
            Started::Callback(callback) => callback,
            Started::Consent(page) if variant.is_external() => {
                external_person(&mut session, &page, rec).await?
            }
            Started::Consent(page) => {
                rec.step("consent").await?;
                person_approves(&mut session, &page).await?
            }
        };
        rec.step("token").await?;
        session.redeem(&callback).await?;
    }
    rec.step("initialize").await?;
    session.initialize(&gateway).await?;
    rec.step("tools/call").await?;
    echo(&mut session, &gateway).await?;
    rec.pause().await?;
    Ok(())
}

/// `calls` tools/calls with a token in hand, one step each.
async fn steady_state(
    instance: &Instance,
    variant: Variant,
    calls: u32,
    rec: &mut Recorder<'_>,
    tap: &Tap,
) -> Result<(), DriverError> {
    let (mut session, gateway) = ready(instance, variant, None, tap).await?;
    for _ in 0..calls {
        rec.step("tools/call").await?;
        echo(&mut session, &gateway).await?;
    }
    rec.pause().await?;
    Ok(())
}

/// Renewal (refresh with rotation; client credentials: a new assertion),
/// then a call with the new token.
async fn renewal(
    instance: &Instance,
    variant: Variant,
    rec: &mut Recorder<'_>,
    tap: &Tap,
) -> Result<(), DriverError> {
    let (mut session, gateway) = ready(instance, variant, None, tap).await?;
    echo(&mut session, &gateway).await?;
    rec.step("renew").await?;
    session.renew().await?;
    rec.step("tools/call").await?;
    echo(&mut session, &gateway).await?;
    rec.pause().await?;
    Ok(())
}

/// RFC 7009 revocation of the access token, then calls until the gateway
/// refuses it (the step's round trips say how many it took).
async fn revocation(
    instance: &Instance,
    variant: Variant,
    rec: &mut Recorder<'_>,
    tap: &Tap,
) -> Result<(), DriverError> {
    let (mut session, gateway) = ready(instance, variant, None, tap).await?;
    echo(&mut session, &gateway).await?;
    rec.step("revoke").await?;
    session.revoke().await?;
    rec.step("refused").await?;
    for _ in 0..REFUSAL_TRIES {
        let answer = session.call_at(&gateway, "echo").await?;
        if answer.status == 401 {
            rec.pause().await?;
            return Ok(());
        }
    }
    Err(DriverError::Protocol(format!(
        "the gateway still took the revoked token after {REFUSAL_TRIES} calls"
    )))
}

/// A token for `echo` only; `add` is refused with the scope to ask for;
/// the agent asks for it (a new authorization, or a new assertion) and
/// calls `add`.
async fn step_up(
    instance: &Instance,
    variant: Variant,
    rec: &mut Recorder<'_>,
    tap: &Tap,
) -> Result<(), DriverError> {
    let echo_only = tool_scope(UPSTREAM, &["echo"]);
    let (mut session, gateway) = ready(instance, variant, Some(&echo_only), tap).await?;
    rec.step("refused").await?;
    let refused = session.call_at(&gateway, "add").await?;
    if refused.status != 403 {
        return Err(unexpected("a call of a tool the token lacks", &refused));
    }
    let wanted = challenge::insufficient_scope(refused.headers_named("www-authenticate"))
        .and_then(|c| c.scope)
        .ok_or_else(|| unexpected("a 403 without the scope to ask for", &refused))?;
    rec.step("more-access").await?;
    session.obtain(Some(&wanted)).await?;
    rec.step("tools/call").await?;
    let answer = session.call_at(&gateway, "add").await?;
    driver::mcp_result(&answer)?;
    rec.pause().await?;
    Ok(())
}

/// The next day: the token expired, the connections closed; the refused
/// call, the renewal, the call.
async fn returning(
    instance: &Instance,
    variant: Variant,
    rec: &mut Recorder<'_>,
    tap: &Tap,
) -> Result<(), DriverError> {
    let (mut session, gateway) = ready(instance, variant, None, tap).await?;
    echo(&mut session, &gateway).await?;
    tokio::time::sleep(expiry_wait(variant)).await;
    session.disconnect();
    rec.step("refused").await?;
    let refused = session.call_at(&gateway, "echo").await?;
    if refused.status != 401 {
        return Err(unexpected("a call with an expired token", &refused));
    }
    rec.step("renew").await?;
    session.renew().await?;
    rec.step("tools/call").await?;
    echo(&mut session, &gateway).await?;
    rec.pause().await?;
    Ok(())
}

/// How long the returning agent stays away: its access token has surely
/// expired by then. gnapd's short-lived instance gives 1 s tokens, in whole
/// seconds: two of them have surely passed after 2.1 s. node-oidc-provider's
/// token for the short-lived gateway expires at its floored clock plus
/// [`EXTERNAL_SHORT_TTL`], at most that long after it was issued (before
/// the wait begins): that lifetime and a margin.
fn expiry_wait(variant: Variant) -> Duration {
    if variant.is_external() {
        Duration::from_secs(EXTERNAL_SHORT_TTL.into()) + Duration::from_millis(100)
    } else {
        Duration::from_millis(2100)
    }
}

/// Setup, not measured: a headless agent with a token for `scope` and an
/// initialized MCP session.
async fn ready(
    instance: &Instance,
    variant: Variant,
    scope: Option<&str>,
    tap: &Tap,
) -> Result<(Session, String), DriverError> {
    let gateway = instance.gateway(UPSTREAM);
    let tools: Option<Vec<&str>> = scope.map(|s| {
        s.split(' ')
            .filter_map(|t| t.rsplit_once(":tool:").map(|(_, tool)| tool))
            .collect()
    });
    let mut session = Session::headless(instance, variant, UPSTREAM, tools.as_deref(), tap).await?;
    session.initialize(&gateway).await?;
    Ok((session, gateway))
}

/// One `tools/call` of `echo` that must succeed.
async fn echo(session: &mut Session, gateway: &str) -> Result<(), DriverError> {
    let answer = session.call_at(gateway, "echo").await?;
    driver::mcp_result(&answer)?;
    Ok(())
}

/// The person at node-oidc-provider, from the interaction page `page`:
/// signs in (a fresh browser has no session), then consents; each form its
/// own step. The callback URL the browser was sent to (not fetched).
async fn external_person(
    session: &mut Session,
    page: &str,
    rec: &mut Recorder<'_>,
) -> Result<String, DriverError> {
    rec.step("sign-in").await?;
    let (prompt, next) = person::one_form(session.browser(), page, REDIRECT_URI).await?;
    let Reached::Interaction(consent_page) = next else {
        return Err(DriverError::Protocol(format!(
            "after the {prompt:?} form the AS sent the browser back without a consent form"
        )));
    };
    if prompt != Prompt::Login {
        return Err(DriverError::Protocol(format!(
            "a fresh browser was shown the {prompt:?} form, not the sign-in form"
        )));
    }
    rec.step("consent").await?;
    match person::one_form(session.browser(), &consent_page, REDIRECT_URI).await? {
        (Prompt::Consent, Reached::Callback(callback)) => Ok(callback),
        (prompt, next) => Err(DriverError::Protocol(format!(
            "the AS showed the {prompt:?} form and then {next:?}, not the consent and the callback"
        ))),
    }
}

/// The person on the consent page at `page` approves; the callback URL
/// the browser was sent to (not fetched).
async fn person_approves(session: &mut Session, page: &str) -> Result<String, DriverError> {
    crate::compare::consent::approve(session.browser(), page, REDIRECT_URI).await
}
