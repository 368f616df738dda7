//! report.json against its published JSON Schema
//! (spec-notes/compare.schema.json): a report the types serialize is valid,
//! the schema names exactly the members the types write, and it refuses
//! what a reader must not accept (an unknown member, an unknown outcome, a
//! missing member, another schema version). Validated by Python's
//! `jsonschema` (draft 2020-12) in the interop virtualenv, an implementation
//! that is not ours.

use std::collections::BTreeMap;
use std::process::Command;

use gnapd::compare::report::{
    AttackReport, AttackResult, Bytes, Cpu, Crypto, Environment, Outcome, Percentiles, Report,
    SCHEMA_VERSION, ScenarioReport, ScenarioResult, Settings, State, StepReport,
};
use gnapd::compare::variant::{Attack, Scenario, Variant};
use serde_json::{Value, json};

use crate::support::paths::{python, root};

/// Validates each document against the schema; per document, `None` when
/// valid, else the first error.
pub(crate) fn schema_errors(documents: &[Value]) -> Vec<Option<String>> {
    const CHECK: &str = r#"
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema)
out = []
for doc in json.load(open(sys.argv[2])):
    error = jsonschema.exceptions.best_match(validator.iter_errors(doc))
    out.append(None if error is None else "%s at %s" % (error.message, list(error.absolute_path)))
print(json.dumps(out))
"#;
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("documents.json");
    std::fs::write(&docs, serde_json::to_vec(documents).unwrap()).unwrap();
    let output = Command::new(python())
        .arg("-c")
        .arg(CHECK)
        .arg(root().join("spec-notes/compare.schema.json"))
        .arg(&docs)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "jsonschema failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn step(name: &str) -> StepReport {
    StepReport {
        name: name.to_owned(),
        samples: 3,
        round_trips: 4.0,
        connections: 1.0,
        front_channel_round_trips: 1.5,
        server_outbound: BTreeMap::from([("cimd".to_owned(), 1.0)]),
        bytes: Bytes {
            request_headers: 812.0,
            request_body: 233.5,
            response_headers: 402.0,
            response_body: 1290.25,
        },
        latency_ms: Percentiles {
            p50: 1.2,
            p95: 2.4,
            p99: 2.9,
            mean: 1.4,
            min: 0.9,
            max: 3.0,
        },
        cpu_us: Cpu {
            server: 410.0,
            client: 120.0,
        },
        crypto: Crypto {
            server: BTreeMap::from([("verify:ES256".to_owned(), 1.0)]),
            client: BTreeMap::from([("sign:ES256".to_owned(), 1.0)]),
        },
        state: State {
            records: BTreeMap::from([("clients".to_owned(), 1.0), ("codes".to_owned(), -1.0)]),
            bytes: 733.0,
        },
        person_interactions: 1.0,
        browser_redirects: 2.0,
        url_exposure: BTreeMap::from([
            ("code".to_owned(), "front-channel".to_owned()),
            ("client_id".to_owned(), "both".to_owned()),
            ("resource".to_owned(), "back-channel".to_owned()),
        ]),
    }
}

/// A small report that uses every member, both sides of every optional
/// one, and every outcome.
fn report() -> Report {
    let variants = [
        Variant::GnapEd25519,
        Variant::OAuthClientCredentials,
        Variant::OidcProviderDpopDcr,
    ];
    let scenarios = [Scenario::HeadlessFirstCall, Scenario::PersonApproves];
    let outcomes = [
        Outcome::Blocked,
        Outcome::Succeeded,
        Outcome::NotApplicable,
        Outcome::Error,
    ];
    Report {
        schema_version: SCHEMA_VERSION,
        started_at: "2026-12-07T05:00:00Z".to_owned(),
        duration_seconds: 12.5,
        environment: Environment {
            gnapd_version: "0.1.0".to_owned(),
            commit: Some("3441455".to_owned()),
            optimized_build: true,
            cpu_model: "Test CPU".to_owned(),
            cpus: 2,
            kernel: "6.1.0".to_owned(),
            os: "Debian GNU/Linux 12 (bookworm)".to_owned(),
            load_average: "0.52 0.61 0.70".to_owned(),
            peers: BTreeMap::from([
                ("node".to_owned(), "22.23.3".to_owned()),
                ("oidc-provider".to_owned(), "9.13.3".to_owned()),
            ]),
        },
        settings: Settings {
            runs: 3,
            calls: 20,
            choices: BTreeMap::from([(
                "dpop-nonce".to_owned(),
                "gnapd sends no DPoP nonce.".to_owned(),
            )]),
        },
        variants: variants.iter().map(|v| v.info()).collect(),
        scenarios: scenarios
            .iter()
            .map(|scenario| ScenarioReport {
                id: scenario.id().to_owned(),
                title: scenario.title().to_owned(),
                results: variants
                    .iter()
                    .map(|variant| {
                        let na = *scenario == Scenario::PersonApproves
                            && *variant == Variant::OAuthClientCredentials;
                        ScenarioResult {
                            variant: variant.id().to_owned(),
                            not_applicable: na
                                .then(|| "no person in client_credentials".to_owned()),
                            failures: if na {
                                Vec::new()
                            } else {
                                vec!["run 3: timed out".to_owned()]
                            },
                            steps: if na {
                                Vec::new()
                            } else {
                                vec![step("discovery"), step("tools/call")]
                            },
                            total: (!na).then(|| step("total")),
                        }
                    })
                    .collect(),
            })
            .collect(),
        attacks: Attack::ALL[..2]
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
                        outcome: outcomes[(2 * a + v) % outcomes.len()],
                        evidence: "gateway answered 401 invalid_token".to_owned(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

#[test]
fn a_report_the_types_write_is_valid_against_the_published_schema() {
    let document = serde_json::to_value(report()).unwrap();
    // Every outcome is in it, so the enum's every spelling is checked.
    for outcome in ["blocked", "succeeded", "not_applicable", "error"] {
        assert!(document.to_string().contains(&format!("\"{outcome}\"")));
    }
    assert_eq!(schema_errors(std::slice::from_ref(&document)), vec![None]);
    // And the types read back what they wrote.
    let back: Report = serde_json::from_value(document.clone()).unwrap();
    assert_eq!(serde_json::to_value(back).unwrap(), document);
}

/// Every object in the schema requires all its properties and allows no
/// others: with the valid report above, the schema's member names are
/// exactly the ones the types write (serde denies unknown fields too).
#[test]
fn the_schema_names_exactly_the_members_the_types_write() {
    fn walk(node: &Value, at: &str) {
        match node {
            Value::Object(map) => {
                if let Some(Value::Object(properties)) = map.get("properties") {
                    let mut names: Vec<&String> = properties.keys().collect();
                    let mut required: Vec<&str> = map["required"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|r| r.as_str().unwrap())
                        .collect();
                    names.sort();
                    required.sort();
                    assert_eq!(names, required, "{at}: not every member is required");
                    assert_eq!(map["additionalProperties"], json!(false), "{at}");
                }
                for (key, value) in map {
                    walk(value, &format!("{at}/{key}"));
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, at)),
            _ => {}
        }
    }
    let text = std::fs::read_to_string(root().join("spec-notes/compare.schema.json")).unwrap();
    walk(&serde_json::from_str(&text).unwrap(), "#");
}

#[test]
fn the_schema_refuses_what_a_reader_must_not_accept() {
    let valid = serde_json::to_value(report()).unwrap();
    let changed = |change: &dyn Fn(&mut Value)| {
        let mut document = valid.clone();
        change(&mut document);
        document
    };
    let cases = [
        (
            "another schema version",
            changed(&|d| d["schema_version"] = json!(2)),
        ),
        (
            "an unknown top-level member",
            changed(&|d| d["extra"] = json!(1)),
        ),
        (
            "an unknown member in a step",
            changed(&|d| d["scenarios"][0]["results"][0]["steps"][0]["rtt"] = json!(1)),
        ),
        (
            "a missing member in a step",
            changed(&|d| {
                d["scenarios"][0]["results"][0]["total"]
                    .as_object_mut()
                    .unwrap()
                    .remove("front_channel_round_trips");
            }),
        ),
        (
            "an outcome that is not one",
            changed(&|d| d["attacks"][0]["results"][0]["outcome"] = json!("partly")),
        ),
        (
            "a count as a string",
            changed(&|d| d["scenarios"][0]["results"][0]["total"]["round_trips"] = json!("4")),
        ),
        (
            "a channel that is not one",
            changed(&|d| {
                d["scenarios"][0]["results"][0]["total"]["url_exposure"]["code"] = json!("side")
            }),
        ),
        (
            "a missing environment",
            changed(&|d| {
                d.as_object_mut().unwrap().remove("environment");
            }),
        ),
    ];
    let documents: Vec<Value> = cases.iter().map(|(_, d)| d.clone()).collect();
    for ((what, _), error) in cases.iter().zip(schema_errors(&documents)) {
        assert!(error.is_some(), "the schema accepted {what}");
    }
}
