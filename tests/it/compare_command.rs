//! `gnapd compare` as a user runs it: the binary, small counts, a fresh
//! output directory. The report it writes must be valid against the
//! published schema, hold every scenario and every attack for every
//! variant, and carry non-zero numbers wherever a step cannot have cost
//! nothing (a request was sent, a byte moved, a CPU ran, a signature was
//! checked). It runs with `--with-oidc-provider` (node-oidc-provider from
//! tests/interop/oidc, which scripts/test.sh installs), so the third column
//! is checked the same way. This is the check `.ci/run` makes of the
//! command.

use std::collections::BTreeSet;
use std::process::Command;

use gnapd::compare::report::{Outcome, Report, SCHEMA_VERSION, StepReport};
use gnapd::compare::variant::{Attack, Binding, Scenario, Variant};
use serde_json::Value;

use crate::compare_report::schema_errors;
use crate::support::paths::oidc_node;

const RUNS: u32 = 2;
const CALLS: u32 = 3;

/// Runs the command once and returns the report and its directory.
fn run_compare() -> (Report, Value, tempfile::TempDir) {
    let out = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_gnapd"))
        .args(["compare", "--out"])
        .arg(out.path())
        .args(["--runs", &RUNS.to_string(), "--calls", &CALLS.to_string()])
        .arg("--with-oidc-provider")
        .arg(oidc_node())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "gnapd compare failed:\n{stderr}");
    // The progress line named what ran.
    assert!(stderr.contains("compare: steady-state"), "{stderr}");
    assert!(stderr.contains("compare: attack replay"), "{stderr}");
    let text = std::fs::read_to_string(out.path().join("report.json")).unwrap();
    let value: Value = serde_json::from_str(&text).unwrap();
    let report: Report = serde_json::from_value(value.clone()).unwrap();
    (report, value, out)
}

fn step<'a>(steps: &'a [StepReport], name: &str) -> Option<&'a StepReport> {
    steps.iter().find(|s| s.name == name)
}

#[test]
fn compare_command_writes_a_complete_schema_valid_report_with_observed_numbers() {
    let (report, value, out) = run_compare();

    assert_eq!(
        schema_errors(&[value]),
        [None],
        "report.json against the schema"
    );
    assert_eq!(report.schema_version, SCHEMA_VERSION);
    assert_eq!((report.settings.runs, report.settings.calls), (RUNS, CALLS));
    let env = &report.environment;
    assert!(env.cpus > 0 && !env.cpu_model.is_empty() && !env.kernel.is_empty());
    assert!(env.commit.is_some(), "the commit is recorded in a checkout");
    for choice in [
        "dpop-nonce",
        "token-lifetimes",
        "same-server",
        "interleaving",
    ] {
        assert!(report.settings.choices.contains_key(choice), "{choice}");
    }

    let ids: Vec<&str> = report.variants.iter().map(|v| v.id.as_str()).collect();
    let all = Variant::list(true);
    let wanted: Vec<&str> = all.iter().map(|v| v.id()).collect();
    assert_eq!(
        env.peers.len(),
        2,
        "node and oidc-provider: {:?}",
        env.peers
    );
    assert_eq!(ids, wanted, "every variant, in order");

    // Every scenario for every variant: measured RUNS times without a
    // failure, or not applicable with a reason.
    let scenario_ids: Vec<&str> = report.scenarios.iter().map(|s| s.id.as_str()).collect();
    let wanted_scenarios: Vec<&str> = Scenario::ALL.iter().map(|s| s.id()).collect();
    assert_eq!(scenario_ids, wanted_scenarios);
    let mut measured = 0;
    for scenario in &report.scenarios {
        let results: Vec<&str> = scenario
            .results
            .iter()
            .map(|r| r.variant.as_str())
            .collect();
        assert_eq!(results, wanted, "{}", scenario.id);
        for result in &scenario.results {
            let what = format!("{} × {}", scenario.id, result.variant);
            assert!(result.failures.is_empty(), "{what}: {:?}", result.failures);
            if let Some(reason) = &result.not_applicable {
                assert!(!reason.is_empty(), "{what}");
                assert!(result.steps.is_empty(), "{what}");
                continue;
            }
            measured += 1;
            let variant = *all.iter().find(|v| v.id() == result.variant).unwrap();
            let external = Variant::EXTERNAL.contains(&variant);
            let total = result.total.as_ref().unwrap();
            assert_eq!(total.samples, RUNS, "{what}");
            assert!(total.round_trips >= 1.0, "{what}");
            assert!(total.bytes.request_headers > 0.0, "{what}");
            assert!(total.bytes.response_headers > 0.0, "{what}");
            assert!(total.latency_ms.p50 > 0.0, "{what}");
            assert!(total.latency_ms.p99 >= total.latency_ms.p50, "{what}");
            assert!(total.cpu_us.server > 0.0, "{what}: server CPU");
            assert!(total.cpu_us.client > 0.0, "{what}: client CPU");
            for s in &result.steps {
                assert!(s.round_trips >= 1.0, "{what} {}", s.name);
                assert!(s.latency_ms.p50 > 0.0, "{what} {}", s.name);
            }
            // Every successful call reached the upstream, and a bound
            // token's call was checked with a public key on the server.
            // (Revocation's last call is the refused one: nothing passes.)
            let Some(call) = step(&result.steps, "tools/call") else {
                assert_eq!(
                    scenario.id,
                    Scenario::Revocation.id(),
                    "{what}: no tools/call"
                );
                let refused = step(&result.steps, "refused").expect("a refused step");
                assert!(
                    refused
                        .server_outbound
                        .get("upstream")
                        .is_none_or(|n| *n == 0.0)
                );
                continue;
            };
            let upstream = call.server_outbound.get("upstream").copied();
            assert!(upstream.unwrap_or(0.0) >= 1.0, "{what}: {upstream:?}");
            let verifies: f64 = call
                .crypto
                .server
                .iter()
                .filter(|(kind, _)| kind.starts_with("verify:"))
                .map(|(_, n)| n)
                .sum();
            match variant.binding() {
                Binding::Bearer => assert_eq!(verifies, 0.0, "{what}"),
                _ => assert!(verifies >= 1.0, "{what}: {:?}", call.crypto.server),
            }
            if scenario.id == Scenario::PersonApproves.id() {
                // node-oidc-provider's person signs in, then consents.
                let people: f64 = result.steps.iter().map(|s| s.person_interactions).sum();
                let wanted = if external { 2.0 } else { 1.0 };
                assert_eq!(people, wanted, "{what}: the person's actions");
                let consent = step(&result.steps, "consent").expect("a consent step");
                assert_eq!(consent.person_interactions, 1.0, "{what}");
                // What the redirect back to the client carried, though the
                // browser never fetches the client's callback.
                let carried: &[&str] = if variant.is_gnap() {
                    &["hash", "interact_ref"]
                } else {
                    &["code", "state", "iss"]
                };
                for name in carried {
                    assert_eq!(
                        total.url_exposure.get(*name).map(String::as_str),
                        Some("front-channel"),
                        "{what}: {name} in {:?}",
                        total.url_exposure
                    );
                }
            }
            if scenario.id == Scenario::HeadlessFirstCall.id() {
                // A brand-new agent has no connection yet; later scenarios
                // may reuse the one their setup opened.
                assert!(total.connections >= 1.0, "{what}");
                assert!(
                    total.state.records.values().sum::<f64>() > 0.0,
                    "{what}: a first token is stored"
                );
            }
        }
    }
    assert!(
        measured >= 56,
        "{measured} scenario × variant cells measured"
    );

    // Every attack for every variant, with an observed outcome and its
    // evidence; none failed to tell.
    let attack_ids: Vec<&str> = report.attacks.iter().map(|a| a.id.as_str()).collect();
    let wanted_attacks: Vec<&str> = Attack::ALL.iter().map(|a| a.id()).collect();
    assert_eq!(attack_ids, wanted_attacks);
    for attack in &report.attacks {
        let results: Vec<&str> = attack.results.iter().map(|r| r.variant.as_str()).collect();
        assert_eq!(results, wanted, "{}", attack.id);
        for result in &attack.results {
            let what = format!("{} × {}", attack.id, result.variant);
            assert!(!result.evidence.is_empty(), "{what}");
            assert_ne!(
                result.outcome,
                Outcome::Error,
                "{what}: {}",
                result.evidence
            );
        }
    }
    // GNAP's signatures block what a Bearer token cannot.
    let outcome = |attack: Attack, variant: Variant| {
        report
            .attacks
            .iter()
            .find(|a| a.id == attack.id())
            .and_then(|a| a.results.iter().find(|r| r.variant == variant.id()))
            .map(|r| r.outcome)
            .unwrap()
    };
    for attack in [Attack::Replay, Attack::StolenToken, Attack::BodyTampering] {
        assert_eq!(outcome(attack, Variant::GnapEd25519), Outcome::Blocked);
        assert_eq!(outcome(attack, Variant::OAuthBearerDcr), Outcome::Succeeded);
    }

    // The readable report names every variant, scenario and attack; the
    // plots are SVG documents.
    let markdown = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    for name in wanted
        .iter()
        .chain(&wanted_scenarios)
        .chain(&wanted_attacks)
    {
        assert!(
            markdown.contains(&format!("`{name}`")),
            "report.md lacks {name}"
        );
    }
    let plots: BTreeSet<String> = std::fs::read_dir(out.path().join("plots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(plots.len() >= 4, "{plots:?}");
    for plot in &plots {
        assert!(plot.ends_with(".svg"), "{plot}");
        let svg = std::fs::read_to_string(out.path().join("plots").join(plot)).unwrap();
        assert!(svg.contains("<svg") && svg.len() > 1000, "{plot}");
    }
    // The instances' data dirs are gone unless --keep-work.
    assert!(!out.path().join("work").exists());
}
