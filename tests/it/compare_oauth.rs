//! `gnapd compare`'s OAuth driver against a real World (gnapd instances on
//! sled, the shipped upstream, the https host of metadata documents): each
//! scenario once for each OAuth variant, with the contract's steps in
//! order and numbers observed: on the wire, in both processes' CPU and
//! crypto counts, in the server's state and its own requests.

use std::path::Path;

use gnapd::compare::meter::Tap;
use gnapd::compare::oauth;
use gnapd::compare::recorder::{Recorder, StepSample};
use gnapd::compare::variant::{Binding, Identification, Scenario, Variant};
use gnapd::compare::world::World;

const CALLS: u32 = 3;

/// The steps `scenario` must record for `variant`, in order.
fn expected(variant: Variant, scenario: Scenario) -> Vec<&'static str> {
    let mut first = vec!["discovery"];
    if variant.identification() != Identification::Cimd {
        first.push("register");
    }
    if variant != Variant::OAuthClientCredentials {
        first.push("authorize");
        if scenario == Scenario::PersonApproves {
            first.push("consent");
        }
    }
    first.extend(["token", "initialize", "tools/call"]);
    match scenario {
        Scenario::HeadlessFirstCall | Scenario::PersonApproves => first,
        Scenario::SteadyState => vec!["tools/call"; CALLS as usize],
        Scenario::Renewal => vec!["renew", "tools/call"],
        Scenario::Revocation => vec!["revoke", "refused"],
        Scenario::StepUp => vec!["refused", "more-access", "tools/call"],
        Scenario::ReturningAgent => vec!["refused", "renew", "tools/call"],
    }
}

fn run(world: &World, variant: Variant, scenario: Scenario) -> Vec<StepSample> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let tap = Tap::new();
    let mut probes = world.probes(world.instance_for(variant, scenario).unwrap());
    let mut rec = Recorder::new(&tap, &mut probes);
    runtime
        .block_on(oauth::run(world, variant, scenario, CALLS, &mut rec, &tap))
        .unwrap_or_else(|e| panic!("{} {}: {e}", variant.id(), scenario.id()));
    runtime.block_on(rec.finish()).unwrap()
}

fn every_scenario_of(variant: Variant) {
    let dir = tempfile::tempdir().unwrap();
    let world = World::start(Path::new(env!("CARGO_BIN_EXE_gnapd")), dir.path()).unwrap();
    for scenario in Scenario::ALL {
        if oauth::not_applicable(variant, scenario).is_some() {
            continue;
        }
        let steps = run(&world, variant, scenario);
        let what = format!("{} {}", variant.id(), scenario.id());
        let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, expected(variant, scenario), "{what}");
        for step in &steps {
            let t = &step.tally;
            assert!(t.round_trips > 0, "{what} {}: no exchange", step.name);
            assert!(
                t.request_headers > 0 && t.response_headers > 0,
                "{what} {}",
                step.name
            );
            assert!(!step.wall.is_zero(), "{what} {}", step.name);
            assert_eq!(t.statuses.len(), t.round_trips as usize, "{what}");
            assert!(step.server_cpu_ns > 0, "{what} {}: server CPU", step.name);
            assert!(step.client_cpu_ns > 0, "{what} {}: client CPU", step.name);
        }
        let dpop = variant.binding() == Binding::DpopEs256;
        for step in steps.iter().filter(|s| s.name == "tools/call") {
            // Every DPoP call carries a fresh proof, which the gateway
            // checks before it forwards (an expired token is refused
            // before its proof is read); a bearer call signs nothing.
            let signed = step.client_crypto.get("sign:es256").copied().unwrap_or(0);
            let checked = step.server_crypto.get("verify:es256").copied().unwrap_or(0);
            let wanted = match (dpop, step.tally.statuses == [200]) {
                (true, true) => (1, 1),
                (true, false) => (1, checked.min(1)),
                (false, _) => (0, 0),
            };
            assert_eq!((signed, checked), wanted, "{what}");
        }
        let step = |name: &str| steps.iter().find(|s| s.name == name).unwrap();
        match scenario {
            Scenario::HeadlessFirstCall | Scenario::PersonApproves => {
                // Probe (401), resource metadata, AS metadata: the first
                // well-known URL answers.
                assert_eq!(step("discovery").tally.statuses, [401, 200, 200], "{what}");
                if dpop || variant == Variant::OAuthClientCredentials {
                    // The agent's key is made in its first step.
                    assert_eq!(
                        step("discovery").client_crypto["keygen:ecdsa-p256"],
                        1,
                        "{what}"
                    );
                }
                if variant.identification() == Identification::Cimd {
                    // The AS fetched the agent's document once, while the
                    // browser was at the authorization endpoint.
                    assert_eq!(
                        step("authorize").outbound.get("client_metadata_document"),
                        Some(&1),
                        "{what}"
                    );
                    assert_eq!(
                        step("authorize").tally.url_exposure["client_id"],
                        "front-channel"
                    );
                }
                if variant.identification() == Identification::Dcr {
                    assert_eq!(step("register").tally.statuses, [201], "{what}");
                    let kept: i64 = step("register").state_records.values().sum();
                    assert!(kept > 0, "{what}: a registration is a record");
                }
                if dpop || variant == Variant::OAuthClientCredentials {
                    // The token request's one JWS (a DPoP proof or a
                    // client assertion), made once and checked once.
                    let token = step("token");
                    assert_eq!(token.client_crypto.get("sign:es256"), Some(&1), "{what}");
                    assert_eq!(token.server_crypto.get("verify:es256"), Some(&1), "{what}");
                }
                // The token joins its grant's record: bytes, not records.
                assert!(
                    step("token").state_bytes > 0,
                    "{what}: the token step changes the store"
                );
                if scenario == Scenario::PersonApproves {
                    assert_eq!(step("consent").tally.person_interactions, 1, "{what}");
                }
                // initialize and notifications/initialized.
                assert_eq!(step("initialize").tally.round_trips, 2, "{what}");
                assert!(step("tools/call").outbound["upstream"] >= 1, "{what}");
            }
            Scenario::Revocation => {
                assert_eq!(step("revoke").tally.statuses, [200], "{what}");
                assert_eq!(step("refused").tally.statuses, [401], "{what}");
                if variant == Variant::OAuthClientCredentials {
                    // The private_key_jwt client authenticates its
                    // revocation with a fresh assertion, checked once.
                    let revoke = step("revoke");
                    assert_eq!(revoke.client_crypto.get("sign:es256"), Some(&1), "{what}");
                    assert_eq!(revoke.server_crypto.get("verify:es256"), Some(&1), "{what}");
                }
            }
            Scenario::StepUp => {
                assert_eq!(steps[0].tally.statuses, [403], "{what}");
            }
            Scenario::ReturningAgent => {
                assert_eq!(steps[0].tally.statuses, [401], "{what}");
                assert_eq!(steps[0].tally.connections, 1, "{what}: a new connection");
            }
            _ => {}
        }
    }
}

#[test]
fn compare_oauth_bearer_dcr_runs_every_scenario() {
    every_scenario_of(Variant::OAuthBearerDcr);
}

#[test]
fn compare_oauth_bearer_cimd_runs_every_scenario() {
    every_scenario_of(Variant::OAuthBearerCimd);
}

#[test]
fn compare_oauth_dpop_dcr_runs_every_scenario() {
    every_scenario_of(Variant::OAuthDpopDcr);
}

#[test]
fn compare_oauth_dpop_cimd_runs_every_scenario() {
    every_scenario_of(Variant::OAuthDpopCimd);
}

#[test]
fn compare_oauth_client_credentials_skips_only_the_scenario_with_a_person() {
    for scenario in Scenario::ALL {
        let skipped = oauth::not_applicable(Variant::OAuthClientCredentials, scenario).is_some();
        assert_eq!(
            skipped,
            scenario == Scenario::PersonApproves,
            "{}",
            scenario.id()
        );
    }
}

#[test]
fn compare_oauth_client_credentials_runs_every_scenario() {
    every_scenario_of(Variant::OAuthClientCredentials);
}
