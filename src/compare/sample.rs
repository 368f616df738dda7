//! A complete report with made-up numbers, for the renderers' tests: every
//! variant, scenario and attack of the closed lists, every outcome, a
//! scenario that does not apply and a failed run.

use std::collections::BTreeMap;

use super::report::{
    AttackReport, AttackResult, Bytes, Cpu, Crypto, Environment, Outcome, Percentiles, Report,
    SCHEMA_VERSION, ScenarioReport, ScenarioResult, Settings, State, StepReport,
};
use super::variant::{Attack, Scenario, Variant};

/// A step whose figures grow with `scale`, so variants differ.
pub(crate) fn step(name: &str, scale: f64) -> StepReport {
    StepReport {
        name: name.to_owned(),
        samples: 3,
        round_trips: 2.0 * scale,
        connections: scale / 2.0,
        front_channel_round_trips: scale / 3.0,
        server_outbound: BTreeMap::from([("upstream".to_owned(), 1.0)]),
        bytes: Bytes {
            request_headers: 400.0 * scale,
            request_body: 120.5 * scale,
            response_headers: 200.0 * scale,
            response_body: 800.25 * scale,
        },
        latency_ms: Percentiles {
            p50: 1.25 * scale,
            p95: 2.5 * scale,
            p99: 3.125 * scale,
            mean: 1.5 * scale,
            min: scale,
            max: 4.0 * scale,
        },
        cpu_us: Cpu {
            server: 310.0 * scale,
            client: 95.0 * scale,
        },
        crypto: Crypto {
            server: BTreeMap::from([("verify:ed25519".to_owned(), scale)]),
            client: BTreeMap::from([("sign:ed25519".to_owned(), scale)]),
        },
        state: State {
            records: BTreeMap::from([("grants".to_owned(), 1.0)]),
            bytes: 512.0 * scale,
        },
        person_interactions: 0.0,
        browser_redirects: 1.0,
        url_exposure: BTreeMap::from([("code".to_owned(), "front-channel".to_owned())]),
    }
}

/// The whole sample report.
pub(crate) fn report() -> Report {
    let variants: Vec<Variant> = Variant::list(true);
    let scenarios = Scenario::ALL
        .iter()
        .map(|scenario| ScenarioReport {
            id: scenario.id().to_owned(),
            title: scenario.title().to_owned(),
            results: variants
                .iter()
                .enumerate()
                .map(|(i, variant)| {
                    let scale = 1.0 + i as f64 / 2.0;
                    if *variant == Variant::OAuthClientCredentials
                        && *scenario == Scenario::PersonApproves
                    {
                        return ScenarioResult {
                            variant: variant.id().to_owned(),
                            not_applicable: Some("client_credentials has no person".to_owned()),
                            failures: Vec::new(),
                            steps: Vec::new(),
                            total: None,
                        };
                    }
                    ScenarioResult {
                        variant: variant.id().to_owned(),
                        not_applicable: None,
                        failures: if i == 1 {
                            vec!["run 2: connection reset | retried".to_owned()]
                        } else {
                            Vec::new()
                        },
                        steps: vec![step("discovery", scale), step("tools/call", scale)],
                        total: Some(step("total", 2.0 * scale)),
                    }
                })
                .collect(),
        })
        .collect();
    let outcomes = [
        Outcome::Blocked,
        Outcome::Succeeded,
        Outcome::NotApplicable,
        Outcome::Error,
    ];
    let attacks = Attack::ALL
        .iter()
        .enumerate()
        .map(|(a, attack)| AttackReport {
            id: attack.id().to_owned(),
            title: attack.title().to_owned(),
            results: variants
                .iter()
                .enumerate()
                .map(|(v, variant)| AttackResult {
                    variant: variant.id().to_owned(),
                    outcome: outcomes[(a + v) % outcomes.len()],
                    evidence: format!(
                        "{} against {}: 401 invalid_token",
                        attack.id(),
                        variant.id()
                    ),
                })
                .collect(),
        })
        .collect();
    Report {
        schema_version: SCHEMA_VERSION,
        started_at: "2026-12-07T05:00:00Z".to_owned(),
        duration_seconds: 42.5,
        environment: Environment {
            gnapd_version: "0.1.0".to_owned(),
            commit: Some("0123abc".to_owned()),
            optimized_build: true,
            cpu_model: "Test CPU".to_owned(),
            cpus: 2,
            kernel: "6.1.0".to_owned(),
            os: "Debian GNU/Linux 12 (bookworm)".to_owned(),
            load_average: "0.10 0.20 0.30".to_owned(),
            peers: BTreeMap::from([("node".to_owned(), "22.0.0".to_owned())]),
        },
        settings: Settings {
            runs: 3,
            calls: 10,
            choices: BTreeMap::from([(
                "token lifetime".to_owned(),
                "Access tokens live 300 s on both sides.".to_owned(),
            )]),
        },
        variants: variants.iter().map(|v| v.info()).collect(),
        scenarios,
        attacks,
    }
}
