//! An independent verifier agrees with the fixtures: the Python checker
//! (tests/interop/check_gnap_fixtures.py: `http-message-signatures` through
//! peer.py, PyJWT, hashlib) finds every positive valid and every negative
//! failing for the reason the file states.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::make::FILE;
use crate::support::paths::{python, root, vector};

/// The checker's report on `fixtures`, and whether it exited 0.
fn check(fixtures: &Path) -> (bool, Value) {
    let out = Command::new(python())
        .arg(root().join("tests/interop/check_gnap_fixtures.py"))
        .arg("--fixtures")
        .arg(fixtures)
        .arg("--vectors")
        .arg(root().join("tests/vectors"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let report = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{e}: {text}{}", String::from_utf8_lossy(&out.stderr)));
    (out.status.success(), report)
}

#[test]
fn an_independent_python_verifier_agrees_with_every_gnap_fixture() {
    let (ok, report) = check(&root().join("tests/vectors").join(FILE));
    assert!(ok, "{report:#}");
    let file = vector(FILE);
    let names = |v: &Value, key: &str| -> Vec<String> {
        v[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&report, "fixtures"), names(&file, "fixtures"));
    for entry in report["fixtures"].as_array().unwrap() {
        assert_eq!(entry["agrees"], true, "{entry}");
    }
}

/// The checker can disagree: a positive fixture whose content was changed
/// is no longer valid to it.
#[test]
fn the_python_fixture_checker_refuses_a_positive_fixture_with_changed_content() {
    let mut file = vector(FILE);
    for fixture in file["fixtures"].as_array_mut().unwrap() {
        if fixture["name"] == "httpsig-grant" || fixture["name"] == "jwsd-grant" {
            let body = fixture["request"]["body"].as_str().unwrap();
            fixture["request"]["body"] = body.replace("github", "gitlab").into();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE);
    std::fs::write(&path, serde_json::to_vec(&file).unwrap()).unwrap();
    let (ok, report) = check(&path);
    assert!(!ok, "{report:#}");
    let disagreeing: Vec<&str> = report["fixtures"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["agrees"] == false)
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(disagreeing, ["httpsig-grant", "jwsd-grant"], "{report:#}");
}
