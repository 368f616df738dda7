//! The GNAP driver of `gnapd compare` over loopback: a real World (gnapd
//! instances on sled, the shipped upstream), every scenario once for both
//! GNAP variants, checking the steps each run records and that what must
//! be non-zero is (round trips, bytes on the wire, the person's one action
//! on the consent page, the refused calls).

use std::collections::BTreeMap;
use std::path::Path;

use gnapd::compare::gnap;
use gnapd::compare::meter::Tap;
use gnapd::compare::recorder::{Recorder, StepSample};
use gnapd::compare::variant::{Scenario, Variant};
use gnapd::compare::world::World;

const CALLS: u32 = 3;

fn expected_steps(scenario: Scenario) -> Vec<&'static str> {
    match scenario {
        Scenario::HeadlessFirstCall => vec!["discovery", "grant", "initialize", "tools/call"],
        Scenario::PersonApproves => vec![
            "discovery",
            "grant",
            "consent",
            "continue",
            "initialize",
            "tools/call",
        ],
        Scenario::SteadyState => vec!["tools/call"; CALLS as usize],
        Scenario::Renewal => vec!["renew", "tools/call"],
        Scenario::Revocation => vec!["revoke", "refused"],
        Scenario::StepUp => vec!["refused", "more-access", "tools/call"],
        Scenario::ReturningAgent => vec!["refused", "renew", "tools/call"],
    }
}

async fn run(world: &World, variant: Variant, scenario: Scenario) -> Vec<StepSample> {
    let mut probes = world.probes(world.instance_for(variant, scenario).unwrap());
    let tap = Tap::new();
    let mut rec = Recorder::new(&tap, &mut probes);
    gnap::run(world, variant, scenario, CALLS, &mut rec, &tap)
        .await
        .unwrap_or_else(|e| panic!("{} {}: {e}", variant.id(), scenario.id()));
    rec.finish().await.unwrap()
}

fn check(variant: Variant, scenario: Scenario, steps: &[StepSample]) {
    let what = format!("{} {}", variant.id(), scenario.id());
    let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, expected_steps(scenario), "{what}");
    let statuses: BTreeMap<&str, Vec<u16>> = steps
        .iter()
        .map(|s| (s.name.as_str(), s.tally.statuses.clone()))
        .collect();
    for step in steps {
        let t = &step.tally;
        assert!(t.round_trips >= 1, "{what} {}: no round trip", step.name);
        assert!(
            t.request_headers > 0 && t.response_headers > 0,
            "{what} {}: no bytes",
            step.name
        );
        assert!(step.wall.as_nanos() > 0, "{what} {}", step.name);
        let signed = !matches!(step.name.as_str(), "consent" | "discovery");
        // Every request of every step but discovery (unsigned on purpose)
        // and the browser's is signed once by the agent, counted in proto
        // (once crypto operations are counted at all in this process).
        if signed {
            let signatures = step
                .client_crypto
                .get(&format!("sign:{}", alg(variant)))
                .copied()
                .unwrap_or(0);
            assert_eq!(
                signatures,
                u64::from(t.round_trips),
                "{what} {}: {:?}",
                step.name,
                step.client_crypto
            );
        }
        if step.name == "discovery" {
            assert_eq!(
                step.client_crypto.get(keygen(variant)),
                Some(&1),
                "{what}: {:?}",
                step.client_crypto
            );
        }
        // ... and the server checks the signature of each it accepts (a
        // token it no longer knows is refused before any signature check).
        let accepted = t.statuses.iter().any(|s| (200..300).contains(s));
        if signed && accepted {
            let verified = step
                .server_crypto
                .get(&format!("verify:{}", alg(variant)))
                .copied()
                .unwrap_or(0);
            assert!(
                verified >= 1,
                "{what} {}: {:?}",
                step.name,
                step.server_crypto
            );
        }
    }
    match scenario {
        Scenario::PersonApproves => {
            let consent = &steps[2].tally;
            assert_eq!(consent.person_interactions, 1, "{what}");
            // The page (after the interaction URL), the form POST; the 303
            // to the finish URI is counted as a redirect, not fetched.
            assert!(consent.round_trips >= 2, "{what}: {consent:?}");
            assert!(consent.browser_redirects >= 1, "{what}: {consent:?}");
        }
        Scenario::Revocation => {
            assert_eq!(statuses["revoke"], [204], "{what}");
            // The first call after the revocation is refused.
            assert_eq!(statuses["refused"], [401], "{what}");
        }
        Scenario::StepUp => {
            assert_eq!(steps[0].tally.statuses, [403], "{what}");
            assert_eq!(steps[1].tally.statuses, [200], "{what}");
            assert_eq!(steps[2].tally.statuses, [200], "{what}");
        }
        Scenario::ReturningAgent => {
            assert_eq!(steps[0].tally.statuses, [401], "{what}");
            // A new day, a new connection.
            assert_eq!(steps[0].tally.connections, 1, "{what}");
        }
        _ => {}
    }
    if scenario != Scenario::PersonApproves {
        assert!(
            steps.iter().all(|s| s.tally.person_interactions == 0),
            "{what}"
        );
    }
}

fn keygen(variant: Variant) -> &'static str {
    match variant {
        Variant::GnapP256 => "keygen:ecdsa-p256",
        _ => "keygen:ed25519",
    }
}

fn alg(variant: Variant) -> &'static str {
    match variant {
        Variant::GnapP256 => "ecdsa-p256-sha256",
        _ => "ed25519",
    }
}

#[test]
fn every_scenario_runs_for_both_gnap_variants_and_is_measured() {
    let work = tempfile::tempdir().unwrap();
    let world = World::start(Path::new(env!("CARGO_BIN_EXE_gnapd")), work.path()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        for variant in [Variant::GnapEd25519, Variant::GnapP256] {
            for scenario in Scenario::ALL {
                assert_eq!(gnap::not_applicable(variant, scenario), None);
                let steps = run(&world, variant, scenario).await;
                check(variant, scenario, &steps);
            }
        }
    });
    assert!(gnap::not_applicable(Variant::OAuthBearerDcr, Scenario::SteadyState).is_some());
}
