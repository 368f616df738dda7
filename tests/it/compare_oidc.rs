//! `gnapd compare --with-oidc-provider`: node-oidc-provider as the external
//! AS of the third column, in front of a gnapd gateway that introspects its
//! tokens, against a real World. Every scenario of each oidc-provider
//! variant with its steps in order and its numbers observed (node's CPU in
//! the server's, the person's two forms, one introspection per call as a
//! server-made request), and the attack table for those variants.
//!
//! The Node 22 binary and oidc-provider come from tests/interop/oidc
//! (`npm ci` there; scripts/test.sh does it): the tests fail without them.

use std::path::{Path, PathBuf};

use gnapd::compare::attacks::attempt;
use gnapd::compare::external::OidcProvider;
use gnapd::compare::meter::Tap;
use gnapd::compare::oauth;
use gnapd::compare::probe::cpu;
use gnapd::compare::recorder::{Recorder, StepSample};
use gnapd::compare::report::Outcome::{self, Blocked, Succeeded};
use gnapd::compare::run::{Plan, run};
use gnapd::compare::variant::{Attack, Binding, Scenario, Variant};
use gnapd::compare::world::World;

use crate::support::paths::oidc_node;

const CALLS: u32 = 3;

fn world(dir: &Path) -> World {
    let oidc = OidcProvider::locate(&oidc_node()).unwrap();
    assert_eq!(oidc.package_version, "9.13.3");
    assert!(
        oidc.node_version.starts_with("22."),
        "{}",
        oidc.node_version
    );
    World::start_with(Path::new(env!("CARGO_BIN_EXE_gnapd")), dir, Some(&oidc)).unwrap()
}

/// The steps `scenario` must record, in order (None: not applicable).
fn expected(scenario: Scenario) -> Option<Vec<&'static str>> {
    Some(match scenario {
        Scenario::HeadlessFirstCall => return None,
        Scenario::PersonApproves => vec![
            "discovery",
            "register",
            "authorize",
            "sign-in",
            "consent",
            "token",
            "initialize",
            "tools/call",
        ],
        Scenario::SteadyState => vec!["tools/call"; CALLS as usize],
        Scenario::Renewal => vec!["renew", "tools/call"],
        Scenario::Revocation => vec!["revoke", "refused"],
        Scenario::StepUp => vec!["refused", "more-access", "tools/call"],
        Scenario::ReturningAgent => vec!["refused", "renew", "tools/call"],
    })
}

fn run_scenario(world: &World, variant: Variant, scenario: Scenario) -> Vec<StepSample> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let tap = Tap::new();
    let mut probes = world.probes_of(variant, scenario).unwrap();
    let mut rec = Recorder::new(&tap, &mut probes);
    runtime
        .block_on(oauth::run(world, variant, scenario, CALLS, &mut rec, &tap))
        .unwrap_or_else(|e| panic!("{} {}: {e}", variant.id(), scenario.id()));
    runtime.block_on(rec.finish()).unwrap()
}

fn every_scenario_of(variant: Variant) {
    let dir = tempfile::tempdir().unwrap();
    let world = world(dir.path());
    let node = world.external.as_ref().unwrap().provider.pid();
    let dpop = variant.binding() == Binding::DpopEs256;
    // The returning agent's gateway is the one whose tokens live briefly.
    assert!(std::ptr::eq(
        world
            .instance_for(variant, Scenario::ReturningAgent)
            .unwrap(),
        &world.external.as_ref().unwrap().short
    ));
    for scenario in Scenario::ALL {
        let what = format!("{} {}", variant.id(), scenario.id());
        let Some(wanted) = expected(scenario) else {
            let why = oauth::not_applicable(variant, scenario);
            assert!(why.is_some_and(|w| !w.is_empty()), "{what}: a reason");
            continue;
        };
        let node_before = cpu::process_ns(node).unwrap();
        let steps = run_scenario(&world, variant, scenario);
        assert!(
            cpu::process_ns(node).unwrap() > node_before,
            "{what}: node ran"
        );
        let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, wanted, "{what}");
        for step in &steps {
            let t = &step.tally;
            assert!(t.round_trips > 0, "{what} {}: no exchange", step.name);
            assert!(
                t.request_headers > 0 && t.response_headers > 0,
                "{what} {}",
                step.name
            );
            assert_eq!(t.statuses.len(), t.round_trips as usize, "{what}");
            assert!(step.server_cpu_ns > 0, "{what} {}: server CPU", step.name);
            assert!(step.client_cpu_ns > 0, "{what} {}: client CPU", step.name);
            // node's store is not read: no server state is invented for it.
            if ["register", "token", "renew", "revoke"].contains(&step.name.as_str()) {
                assert!(step.state_records.is_empty(), "{what} {}", step.name);
            }
        }
        for step in steps.iter().filter(|s| s.name == "tools/call") {
            // One introspection per call, counted where it lands; the
            // call reached the upstream.
            assert_eq!(step.outbound.get("introspection"), Some(&1), "{what}");
            assert!(step.outbound["upstream"] >= 1, "{what}");
            assert_eq!(step.tally.statuses, [200], "{what}");
            let checked = step.server_crypto.get("verify:es256").copied();
            assert_eq!(
                checked,
                dpop.then_some(1),
                "{what}: the gateway's DPoP check"
            );
        }
        let step = |name: &str| steps.iter().find(|s| s.name == name).unwrap();
        match scenario {
            Scenario::PersonApproves => {
                assert_eq!(step("discovery").tally.statuses, [401, 200, 200], "{what}");
                assert_eq!(step("register").tally.statuses, [201], "{what}");
                // The registration touches node alone: its CPU is the server's.
                assert!(step("register").server_cpu_ns > 0, "{what}");
                for form in ["sign-in", "consent"] {
                    let t = &step(form).tally;
                    assert_eq!(t.person_interactions, 1, "{what} {form}");
                    assert_eq!(t.front_channel_round_trips, t.round_trips, "{what} {form}");
                    assert!(t.browser_redirects >= 1, "{what} {form}");
                }
                assert_eq!(step("authorize").tally.front_channel_round_trips, 1);
                assert_eq!(step("token").tally.statuses, [200], "{what}");
                assert_eq!(step("token").outbound.get("introspection"), None);
                // initialize and notifications/initialized, each introspected.
                assert_eq!(step("initialize").tally.round_trips, 2, "{what}");
                assert_eq!(
                    step("initialize").outbound.get("introspection"),
                    Some(&2),
                    "{what}"
                );
            }
            Scenario::Renewal => {
                assert_eq!(step("renew").tally.statuses, [200], "{what}");
            }
            Scenario::Revocation => {
                assert_eq!(step("revoke").tally.statuses, [200], "{what}");
                // Seen at the next call's introspection.
                assert_eq!(step("refused").tally.statuses, [401], "{what}");
                assert_eq!(step("refused").outbound.get("introspection"), Some(&1));
                assert_eq!(step("refused").outbound.get("upstream"), None);
            }
            Scenario::ReturningAgent => {
                // The expired token, seen at the call's introspection (node
                // says inactive): refused before the upstream.
                assert_eq!(step("refused").tally.statuses, [401], "{what}");
                assert_eq!(
                    step("refused").outbound.get("introspection"),
                    Some(&1),
                    "{what}"
                );
                assert_eq!(step("refused").outbound.get("upstream"), None, "{what}");
                // The refresh is node's alone; the call after it is checked
                // with every tools/call above (200, one introspection).
                assert_eq!(step("renew").tally.statuses, [200], "{what}");
                assert_eq!(step("renew").outbound.get("introspection"), None);
            }
            Scenario::StepUp => {
                assert_eq!(step("refused").tally.statuses, [403], "{what}");
                // The browser keeps its session: consent only.
                assert_eq!(step("more-access").tally.person_interactions, 1, "{what}");
            }
            _ => {}
        }
    }
    // The world stops the AS with itself.
    drop(world);
    assert!(
        !Path::new(&format!("/proc/{node}")).exists(),
        "node {node} still runs"
    );
}

#[test]
fn compare_oidc_provider_dpop_dcr_runs_every_scenario() {
    every_scenario_of(Variant::OidcProviderDpopDcr);
}

#[test]
fn compare_oidc_provider_bearer_dcr_runs_every_scenario() {
    every_scenario_of(Variant::OidcProviderBearerDcr);
}

/// What the attacks must show for the external AS's variants.
fn expected_outcome(attack: Attack, variant: Variant) -> Outcome {
    let bearer = variant.binding() == Binding::Bearer;
    match attack {
        Attack::Replay | Attack::StolenToken if bearer => Succeeded,
        // A DPoP proof covers the method, the URL and the token only.
        Attack::BodyTampering => Succeeded,
        // node-oidc-provider's registration is open and unbounded.
        Attack::RegistrationFlooding => Succeeded,
        _ => Blocked,
    }
}

#[test]
fn compare_oidc_provider_attack_table() {
    let dir = tempfile::tempdir().unwrap();
    let world = world(dir.path());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let tap = Tap::new();
    let mut wrong = Vec::new();
    for attack in Attack::ALL {
        for variant in Variant::EXTERNAL {
            let result = runtime.block_on(attempt(&world, variant, attack, &tap));
            tap.drain();
            assert_eq!(result.variant, variant.id());
            assert!(!result.evidence.is_empty());
            println!(
                "{} × {}: {:?}: {}",
                attack.id(),
                variant.id(),
                result.outcome,
                result.evidence
            );
            if result.outcome != expected_outcome(attack, variant) {
                wrong.push(format!(
                    "{} × {}: expected {:?}, observed {:?}: {}",
                    attack.id(),
                    variant.id(),
                    expected_outcome(attack, variant),
                    result.outcome,
                    result.evidence
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn compare_oidc_provider_needs_the_package_beside_node() {
    let dir = tempfile::tempdir().unwrap();
    let plan = Plan {
        exe: PathBuf::from(env!("CARGO_BIN_EXE_gnapd")),
        out: dir.path().to_owned(),
        runs: 1,
        calls: 1,
        keep_work: false,
        oidc_provider_node: Some(PathBuf::from("/usr/bin/env")),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let error = runtime.block_on(run(&plan)).unwrap_err().to_string();
    assert!(error.contains("node_modules/oidc-provider"), "{error}");
    assert!(!dir.path().join("work").exists(), "nothing was started");
    // The located peers are the report's.
    let oidc = OidcProvider::locate(&oidc_node()).unwrap();
    let peers: Vec<String> = oidc.peers().iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(peers, ["node", "oidc-provider"]);
}
