//! `gnapd compare`'s OAuth driver against a real World (gnapd instances on
//! sled, the shipped upstream, the https host of metadata documents): each
//! scenario once for each OAuth variant, with the contract's steps in
//! order and numbers observed on the wire. The server-side probes are the
//! comparison run's (CPU, counters, state); here the recorder reads the
//! client side and the server-made requests only.

use std::path::Path;

use gnapd::compare::meter::Tap;
use gnapd::compare::oauth;
use gnapd::compare::probe::Probes;
use gnapd::compare::recorder::{Recorder, StepSample};
use gnapd::compare::variant::{Identification, Scenario, Variant};
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
        Scenario::StepUp => vec!["tools/call", "more-access", "tools/call"],
        Scenario::ReturningAgent => vec!["tools/call", "renew", "tools/call"],
    }
}

fn run(world: &World, variant: Variant, scenario: Scenario) -> Vec<StepSample> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let tap = Tap::new();
    let mut probes = Probes::new(Vec::new(), world.outbound.clone());
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
        }
        let step = |name: &str| steps.iter().find(|s| s.name == name).unwrap();
        match scenario {
            Scenario::HeadlessFirstCall | Scenario::PersonApproves => {
                // Probe (401), resource metadata, AS metadata: the first
                // well-known URL answers.
                assert_eq!(step("discovery").tally.statuses, [401, 200, 200], "{what}");
                assert!(step("discovery").client_cpu_ns > 0, "{what}");
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
                }
                if scenario == Scenario::PersonApproves {
                    assert_eq!(step("consent").tally.person_interactions, 1, "{what}");
                }
                // initialize and notifications/initialized.
                assert_eq!(step("initialize").tally.round_trips, 2, "{what}");
                assert!(step("tools/call").outbound["upstream"] >= 1, "{what}");
            }
            Scenario::Revocation => {
                assert_eq!(step("refused").tally.statuses, [401], "{what}");
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
fn compare_oauth_client_credentials_runs_every_scenario() {
    every_scenario_of(Variant::OAuthClientCredentials);
}
