//! The Python SDK's OAuth client (`mcp.client.auth.OAuthClientProvider`
//! under `streamable_http_client`, tests/interop/oauth/py_client.py),
//! unmodified: from the gateway's 401 alone it finds the metadata,
//! registers dynamically (RFC 7591), checks `state` and `iss` (RFC 9207) on
//! the redirect gnapd --dev answers with, exchanges the code and completes a
//! `tools/call` through the gateway to the real upstream.

use std::process::Command;
use std::time::Duration;

use super::{Fixture, sent, step};
use crate::support::paths::python;
use crate::support::run::run_json_lines;

const DEADLINE: Duration = Duration::from_secs(90);

/// Runs py_client.py against `fixture` with `extra` arguments; asserts
/// what every run must show and returns the `authorize` line.
fn run(fixture: &Fixture, extra: &[&str]) -> serde_json::Value {
    let token_file = fixture.path("py-token");
    let mut command = Command::new(python());
    command
        .arg(super::oauth_dir().join("py_client.py"))
        .args(["--url", &fixture.mcp_url()])
        .args(["--tool", "search_issues"])
        .args(["--tool-args", r#"{"query": "bug"}"#])
        .arg("--token-file")
        .arg(&token_file)
        .args(extra);
    let run = run_json_lines(command, DEADLINE, "py_client.py");
    let context = format!("{}\n--- gnapd log\n{}", run.output, fixture.log());
    assert_eq!(run.code, Some(0), "py_client.py failed:\n{context}");

    let authorize = step(&run.lines, "authorize", &context);
    let challenge = &authorize["challenge"];
    assert_eq!(challenge["status"], 401, "{authorize}");
    let www = challenge["www_authenticate"].to_string();
    assert!(www.contains("Bearer resource_metadata="), "{www}");
    assert_eq!(
        sent(authorize, "resource"),
        Some(fixture.mcp_url().as_str()),
        "{authorize}"
    );
    assert_eq!(sent(authorize, "code_challenge_method"), Some("S256"));
    assert!(
        authorize["token_type"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case("bearer")),
        "{authorize}"
    );
    let call = step(&run.lines, "call", &context);
    assert_eq!(call["ok"], true, "{call}");
    assert!(
        call["text"]
            .as_str()
            .unwrap_or_default()
            .contains("found 1 issue for bug"),
        "{call}"
    );
    fixture.assert_upstream_clean(&super::read(&token_file));
    authorize.clone()
}

#[test]
fn the_python_sdk_registers_dynamically_and_calls_a_tool() {
    let fixture = Fixture::start("");
    let authorize = run(&fixture, &[]);
    // Dynamic registration: a client_id gnapd minted, not a URL.
    let client_id = authorize["client_id"].as_str().unwrap();
    assert!(!client_id.starts_with("https://"), "{authorize}");
}

/// An operator's `[[oauth_client]]` entry for the client's redirect
/// (loopback, so any port matches).
const PRE_REGISTERED: &str = r#"
[[oauth_client]]
client_id = "py-sdk-app"
client_name = "Python SDK app"
redirect_uris = ["http://127.0.0.1/callback"]
"#;

#[test]
fn the_python_sdk_uses_a_pre_registered_client_and_calls_a_tool() {
    let fixture = Fixture::start(PRE_REGISTERED);
    let authorize = run(&fixture, &["--client-id", "py-sdk-app"]);
    assert_eq!(authorize["client_id"], "py-sdk-app", "{authorize}");
    assert_eq!(sent(&authorize, "client_id"), Some("py-sdk-app"));
}

/// Access tokens are short-lived and refresh tokens rotate: with a 2 s
/// token, the SDK sees it expired before the call after 3 s, refreshes at
/// the token endpoint and calls with the new one, unmodified.
#[test]
fn the_python_sdk_refreshes_an_expired_token_and_calls_again() {
    let fixture = Fixture::start(&format!("oauth_token_lifetime = 2\n{PRE_REGISTERED}"));
    let authorize = run(
        &fixture,
        &["--client-id", "py-sdk-app", "--wait-before-call", "3"],
    );
    assert_eq!(authorize["refresh"], true, "no refresh token: {authorize}");
    assert_eq!(
        super::read(&fixture.path("py-token")).lines().count(),
        2,
        "the call did not use a refreshed token"
    );
}

/// The SDK by its own Client ID Metadata Document (`client_metadata_url`),
/// which the script hosts over https on loopback with a throwaway CA's
/// certificate; gnapd trusts that CA and admits a loopback document URL
/// (test-only settings).
#[test]
fn the_python_sdk_identifies_itself_by_its_metadata_document_and_calls_a_tool() {
    let dir = tempfile::tempdir().unwrap();
    let pki = crate::support::pki::test_pki(dir.path());
    let fixture = Fixture::start(&format!(
        "allow_private_metadata_documents = true\nupstream_ca_files = [{:?}]\n",
        pki.ca.to_str().unwrap()
    ));
    let authorize = run(
        &fixture,
        &[
            "--cimd-cert",
            pki.cert.to_str().unwrap(),
            "--cimd-key",
            pki.key.to_str().unwrap(),
        ],
    );
    let url = authorize["cimd"]["url"].as_str().unwrap();
    assert_eq!(authorize["client_id"], url, "{authorize}");
    assert_eq!(sent(&authorize, "client_id"), Some(url));
    let fetches = authorize["cimd"]["fetches"].as_array().unwrap();
    assert!(!fetches.is_empty(), "gnapd never fetched the document");
}
