//! `gnapd conformance` as an implementer runs it: the binary against a
//! real gnapd on loopback. Against `--dev` every MUST check passes and the
//! interaction checks are `not_applicable` (no hook); against
//! `--dev --require-interaction` with a hook that approves through the
//! admin socket (`gnapd grants approve`) and plays the browser, the
//! interaction checks run and pass. The JSON report is checked member by
//! member and the JUnit report is parsed by a real XML parser (the interop
//! Python's `xml.etree`). A run against nothing fails with exit 1, and a
//! bad URL is a usage error (exit 2).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::support::paths::{python, root};
use crate::support::server::Server;

/// Runs `gnapd conformance ARGS --json J --junit X`: the output, the JSON
/// report, and the JUnit XML.
fn conformance(dir: &Path, args: &[&str]) -> (Output, Value, String) {
    let json = dir.join("report.json");
    let junit = dir.join("report.xml");
    let output = Command::new(env!("CARGO_BIN_EXE_gnapd"))
        .arg("conformance")
        .args(args)
        .arg("--json")
        .arg(&json)
        .arg("--junit")
        .arg(&junit)
        .output()
        .unwrap();
    let report = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let xml = std::fs::read_to_string(&junit).unwrap();
    (output, report, xml)
}

/// The result of check `id` in `report`.
fn result<'a>(report: &'a Value, id: &str) -> &'a str {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("{id} is not in the report"))["result"]
        .as_str()
        .unwrap()
}

/// Every check that failed at MUST or could not run, as lines.
fn must_failures_and_errors(report: &Value) -> Vec<String> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| (c["level"] == "MUST" && c["result"] == "fail") || c["result"] == "error")
        .map(|c| format!("{} {}: {}", c["id"], c["result"], c["detail"]))
        .collect()
}

/// The report's shape: schema version, exact members, known values, and
/// a summary that counts the checks.
fn assert_well_formed(report: &Value, target: &str) {
    assert_eq!(report["schema_version"], 1);
    assert_eq!(report["target"], target);
    let started = report["started_at"].as_str().unwrap();
    assert!(started.len() == 20 && started.ends_with('Z'), "{started}");
    let checks = report["checks"].as_array().unwrap();
    let mut counts = std::collections::BTreeMap::new();
    for check in checks {
        let members: BTreeSet<&str> = check
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            members,
            BTreeSet::from(["id", "title", "section", "level", "result", "detail"]),
            "{check}"
        );
        assert!(["MUST", "SHOULD", "MAY"].contains(&check["level"].as_str().unwrap()));
        let result = check["result"].as_str().unwrap();
        assert!(["pass", "fail", "not_applicable", "error"].contains(&result));
        *counts.entry(result).or_insert(0u64) += 1;
    }
    for name in ["pass", "fail", "not_applicable", "error"] {
        assert_eq!(
            report["summary"][name].as_u64(),
            Some(counts.get(name).copied().unwrap_or(0)),
            "summary.{name}"
        );
    }
}

/// Parses `xml` with Python's `xml.etree`: (testcases, failures, skipped,
/// errors) as the elements count them, and the suite's own attributes.
fn junit_counts(dir: &Path, xml: &str) -> (Vec<u64>, Vec<u64>) {
    let path = dir.join("parsed.xml");
    std::fs::write(&path, xml).unwrap();
    let script = r#"
import sys, xml.etree.ElementTree as ET
suite = ET.parse(sys.argv[1]).getroot()
assert suite.tag == "testsuite", suite.tag
cases = suite.findall("testcase")
assert all(c.get("classname", "").startswith("RFC ") for c in cases)
print(len(cases), sum(len(c.findall("failure")) for c in cases),
      sum(len(c.findall("skipped")) for c in cases), sum(len(c.findall("error")) for c in cases))
print(suite.get("tests"), suite.get("failures"), suite.get("skipped"), suite.get("errors"))
"#;
    let out = Command::new(python())
        .arg("-c")
        .arg(script)
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the JUnit report does not parse: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text
        .lines()
        .map(|l| l.split(' ').map(|n| n.parse().unwrap()).collect());
    (lines.next().unwrap(), lines.next().unwrap())
}

fn assert_junit_matches(dir: &Path, xml: &str, report: &Value) {
    let s = &report["summary"];
    let wanted: Vec<u64> = vec![
        report["checks"].as_array().unwrap().len() as u64,
        s["fail"].as_u64().unwrap(),
        s["not_applicable"].as_u64().unwrap(),
        s["error"].as_u64().unwrap(),
    ];
    let (elements, attributes) = junit_counts(dir, xml);
    assert_eq!(elements, wanted, "testcase/failure/skipped/error elements");
    assert_eq!(attributes, wanted, "the testsuite's counts");
}

#[test]
fn conformance_against_gnapd_dev_passes_every_must_and_writes_well_formed_reports() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &["--dev", "--upstream", "demo=http://127.0.0.1:9/mcp"],
    );
    let rs_url = format!("{}/mcp/demo", server.base());
    let (output, report, xml) =
        conformance(dir.path(), &[&server.grant_endpoint, "--rs-url", &rs_url]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        must_failures_and_errors(&report),
        Vec::<String>::new(),
        "{stdout}"
    );
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert_well_formed(&report, &server.grant_endpoint);
    assert_junit_matches(dir.path(), &xml, &report);

    // Every check in the catalogue ran and is in the table.
    for check in gnapd::conformance::checks::catalogue() {
        assert!(
            stdout.contains(check.id),
            "{} is not in the table",
            check.id
        );
        result(&report, check.id);
    }
    // Without a hook no interaction check can run, and none passes.
    for check in gnapd::conformance::checks::catalogue() {
        if check.id.starts_with("interact-") {
            assert_eq!(result(&report, check.id), "not_applicable", "{}", check.id);
        }
    }
    // Plain http asks for no client certificate: gnapd does not list mtls.
    assert_eq!(result(&report, "grant-proof-mtls"), "not_applicable");
    // Plain http cannot be judged for §9's https requirement.
    assert_eq!(
        result(&report, "discovery-grant-endpoint-https"),
        "not_applicable"
    );
    // What the suite can drive gnapd --dev to, it checks.
    for id in [
        "grant-key-by-value",
        "grant-multiple-tokens-labelled",
        "continue-too-fast",
        "continue-old-token-refused",
        "token-rotate",
        "token-key-rotation",
        "token-key-rotation-one-signature",
        "error-invalid-flag",
        "negative-replayed",
        "negative-missing-authorization",
        "grant-proof-jwsd",
        "token-key-rotation-jws",
        "negative-jws-tampered",
        "rs-challenge",
        "rs-introspect-rotated-inactive",
        "rs-register-resource",
    ] {
        assert_eq!(result(&report, id), "pass", "{id}");
    }
}

/// A hook that approves or denies through gnapd's admin socket and plays
/// the browser with Python's urllib: it opens the interaction URL, then
/// follows the redirect `gnapd grants approve` prints to the suite's
/// finish URI.
fn hook(dir: &Path, data: &Path) -> String {
    let script = dir.join("hook.py");
    std::fs::write(
        &script,
        r#"import http.cookiejar, json, os, subprocess, sys, urllib.request
gnapd, data = sys.argv[1], sys.argv[2]
browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
if os.environ.get("GNAP_INTERACT_URL"):
    browser.open(os.environ["GNAP_INTERACT_URL"]).read()
code = os.environ["GNAP_USER_CODE"]
decided = subprocess.run([gnapd, "grants", os.environ["GNAP_DECISION"], code, "--data-dir", data, "--json"],
                         check=True, capture_output=True, text=True).stdout
url = json.loads(decided).get("redirect_to")
if url:
    browser.open(url).read()
"#,
    )
    .unwrap();
    format!(
        "'{}' '{}' '{}' '{}'",
        python().display(),
        script.display(),
        env!("CARGO_BIN_EXE_gnapd"),
        data.display()
    )
}

#[test]
fn conformance_with_an_approve_hook_runs_and_passes_the_interaction_checks() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("gnapd.toml");
    // `poll_wait = 1` keeps the run short, and makes the SHOULD on `wait`
    // fail: a failed SHOULD is reported and does not fail the run.
    std::fs::write(&config, "poll_wait = 1\nallow_private_push = true\n").unwrap();
    let server = Server::start(
        &data,
        &[
            "--dev",
            "--require-interaction",
            "--config",
            config.to_str().unwrap(),
        ],
    );
    let hook = hook(dir.path(), &data);
    let (output, report, xml) = conformance(
        dir.path(),
        &[
            &server.grant_endpoint,
            "--approve-hook",
            &hook,
            "--timeout-seconds",
            "20",
        ],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        must_failures_and_errors(&report),
        Vec::<String>::new(),
        "{stdout}"
    );
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert_well_formed(&report, &server.grant_endpoint);
    assert_junit_matches(dir.path(), &xml, &report);
    for id in [
        "interact-redirect-finish-hash",
        "interact-push-finish-hash",
        "interact-ref-continue",
        "interact-ref-single-use",
        "interact-user-code",
        "interact-user-code-uri",
        "interact-pending-no-token",
        "interact-denied",
        "token-rotate",
        "continue-too-fast",
    ] {
        assert_eq!(result(&report, id), "pass", "{id}: {stdout}");
    }
    assert_eq!(result(&report, "grant-continue-wait-five"), "fail");
    // No --rs-url: the suite does not act as an RS.
    assert_eq!(result(&report, "rs-introspect-active"), "not_applicable");
}

/// A `--dev` gnapd over TLS with a certificate of a throwaway CA (whose
/// PEM is returned, for `--ca-file`), asking clients for certificates
/// when `client_certs`; `poll_wait = 1` keeps continuation checks short.
fn tls_server(dir: &Path, client_certs: bool) -> (Server, std::path::PathBuf) {
    let crate::support::pki::TestPki { ca, cert, key } = crate::support::pki::test_pki(dir);
    let config = dir.join("gnapd.toml");
    std::fs::write(&config, "poll_wait = 1\n").unwrap();
    let mut args = vec![
        "--dev",
        "--config",
        config.to_str().unwrap(),
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    if client_certs {
        args.push("--tls-client-certs");
    }
    let server = Server::start(&dir.join("data"), &args);
    assert!(server.grant_endpoint.starts_with("https://"));
    (server, ca)
}

#[test]
fn conformance_over_tls_with_client_certs_passes_every_jwsd_jws_and_mtls_check() {
    let dir = tempfile::tempdir().unwrap();
    let (server, ca) = tls_server(dir.path(), true);
    let (output, report, _) = conformance(
        dir.path(),
        &[
            &server.grant_endpoint,
            "--ca-file",
            ca.to_str().unwrap(),
            "--only",
            "jws",
            "--only",
            "mtls",
            "--only",
            "discovery-key-proofs",
        ],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert_well_formed(&report, &server.grant_endpoint);
    assert_eq!(result(&report, "discovery-key-proofs-registered"), "pass");
    // Every check of the three methods ran and passed: none is
    // not_applicable, so each method was driven through its flow.
    let proofs = gnapd::conformance::checks::proofs::CHECKS;
    assert!(proofs.len() >= 28);
    for check in proofs {
        assert_eq!(result(&report, check.id), "pass", "{}: {stdout}", check.id);
    }
}

#[test]
fn conformance_against_gnapd_without_client_certs_finds_the_mtls_checks_not_applicable() {
    let dir = tempfile::tempdir().unwrap();
    let (server, ca) = tls_server(dir.path(), false);
    let (output, report, _) = conformance(
        dir.path(),
        &[
            &server.grant_endpoint,
            "--ca-file",
            ca.to_str().unwrap(),
            "--only",
            "mtls",
            "--only",
            "grant-proof-jwsd",
        ],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    let mut mtls = 0;
    for check in gnapd::conformance::checks::proofs::CHECKS {
        if check.id.contains("mtls") {
            mtls += 1;
            assert_eq!(
                result(&report, check.id),
                "not_applicable",
                "{}: {stdout}",
                check.id
            );
        }
    }
    assert!(mtls >= 8, "{mtls}");
    // The TLS client trusted the AS through --ca-file: jwsd still ran.
    assert_eq!(result(&report, "grant-proof-jwsd"), "pass", "{stdout}");
}

#[test]
fn conformance_against_nothing_fails_every_reachable_must_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    // A port that was free a moment ago: nothing answers there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/gnap");
    let (output, report, _) = conformance(
        dir.path(),
        &[
            &url,
            "--only",
            "discovery",
            "--only",
            "negative-unsigned",
            "--timeout-seconds",
            "2",
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(result(&report, "discovery-options-json"), "fail");
    assert_eq!(result(&report, "negative-unsigned"), "fail");
    // `--only` selects by substring (`rs-discovery` too) and ran nothing else.
    let ids: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.iter()
            .all(|id| id.contains("discovery") || *id == "negative-unsigned"),
        "{ids:?}"
    );
}

/// An AS that answers every request alike: 200, JSON, no
/// `Cache-Control`, a discovery document naming another endpoint and an
/// unregistered start mode. Serves until the test ends.
fn careless_as() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/gnap", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                use std::io::{Read as _, Write as _};
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                // The head, then the content its length names.
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        return;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&seen).to_ascii_lowercase();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if seen.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                let body = r#"{"grant_request_endpoint":"https://elsewhere.example/gnap","interaction_start_modes_supported":["redirect","teleport"],"key_proofs_supported":["httpsig"]}"#;
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    url
}

#[test]
fn conformance_catches_an_as_that_answers_everything_alike() {
    let dir = tempfile::tempdir().unwrap();
    let url = careless_as();
    let (output, report, _) = conformance(
        dir.path(),
        &[
            &url,
            "--only",
            "discovery",
            "--only",
            "headers-grant",
            "--only",
            "negative-unsigned",
            "--timeout-seconds",
            "5",
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    for (id, wanted) in [
        ("discovery-options-json", "pass"),
        ("discovery-grant-endpoint-matches", "fail"),
        ("discovery-start-modes-registered", "fail"),
        ("discovery-no-store", "fail"),
        ("headers-grant-json", "pass"),
        ("headers-grant-no-store", "fail"),
        ("negative-unsigned", "fail"),
        ("rs-discovery", "not_applicable"),
    ] {
        assert_eq!(result(&report, id), wanted, "{id}");
    }
}

#[test]
fn conformance_with_an_as_url_that_is_not_http_is_a_usage_error() {
    for args in [
        vec!["conformance", "as.example/gnap"],
        vec![
            "conformance",
            "http://127.0.0.1:1/gnap",
            "--rs-url",
            "ftp://x",
        ],
        vec!["conformance"],
        vec![
            "conformance",
            "http://127.0.0.1:1/gnap",
            "--ca-file",
            "/nonexistent/ca.pem",
        ],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_gnapd"))
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn every_conformance_check_is_in_spec_notes_with_its_section_and_level() {
    let text = std::fs::read_to_string(root().join("spec-notes/conformance.md")).unwrap();
    for check in gnapd::conformance::checks::catalogue() {
        let row = text
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", check.id)))
            .unwrap_or_else(|| panic!("{} has no row in spec-notes/conformance.md", check.id));
        assert!(row.contains(check.section), "{}: section", check.id);
        assert!(row.contains(check.level.word()), "{}: level", check.id);
    }
}
