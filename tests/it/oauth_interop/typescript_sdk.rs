//! The TypeScript SDK's OAuth client (`StreamableHTTPClientTransport` with an
//! `OAuthClientProvider`, tests/interop/oauth/ts_client.mjs), unmodified:
//! pointed at `{public}/mcp/github` and nothing else, it discovers the
//! protected resource metadata and the authorization server from the 401,
//! uses its pre-registered client or registers (by its Client ID Metadata
//! Document, or dynamically), gets a
//! code from gnapd --dev, exchanges it and completes a `tools/call` through
//! the gateway to the real upstream.

use std::time::Duration;

use serde_json::Value;

use super::{Fixture, node_script, sent, step};
use crate::support::run::{Finished, run_json_lines};

const DEADLINE: Duration = Duration::from_secs(90);

fn run(fixture: &Fixture, extra: &[&std::ffi::OsStr]) -> (Finished, String) {
    let token_file = fixture.path("ts-token");
    let mut command = node_script("ts_client.mjs");
    command
        .args(["--url", &fixture.mcp_url()])
        .args(["--tool", "search_issues"])
        .args(["--tool-args", r#"{"query": "bug"}"#])
        .arg("--token-file")
        .arg(&token_file)
        .args(extra);
    let run = run_json_lines(command, DEADLINE, "ts_client.mjs");
    let context = format!("{}\n--- gnapd log\n{}", run.output, fixture.log());
    assert_eq!(run.code, Some(0), "ts_client.mjs failed:\n{context}");
    (run, context)
}

/// What every OAuth client run must show: discovery from a Bearer
/// challenge, `resource` sent as the metadata names it, a Bearer token,
/// the call answered by the upstream, and the upstream clean.
fn assert_common(fixture: &Fixture, lines: &[Value], context: &str) -> Value {
    let authorize = step(lines, "authorize", context).clone();
    let challenge = &authorize["challenge"];
    assert_eq!(challenge["status"], 401, "{authorize}");
    let www = challenge["www_authenticate"].as_str().unwrap_or_default();
    assert!(
        www.starts_with("Bearer ") && www.contains("resource_metadata="),
        "the SDK reads only a leading Bearer challenge: {www}"
    );
    assert_eq!(authorize["issuer"], fixture.server.base(), "{authorize}");
    assert_eq!(
        sent(&authorize, "resource"),
        Some(fixture.mcp_url().as_str()),
        "{authorize}"
    );
    assert_eq!(sent(&authorize, "code_challenge_method"), Some("S256"));
    assert!(
        authorize["token_type"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case("bearer")),
        "{authorize}"
    );
    let call = step(lines, "call", context);
    assert_eq!(call["ok"], true, "{call}");
    assert!(
        call["text"]
            .as_str()
            .unwrap_or_default()
            .contains("found 1 issue for bug"),
        "{call}"
    );
    let token = super::read(&fixture.path("ts-token"));
    fixture.assert_upstream_clean(&token);
    authorize
}

#[test]
fn the_typescript_sdk_registers_dynamically_and_calls_a_tool() {
    let fixture = Fixture::start("");
    let (run, context) = run(&fixture, &[]);
    let authorize = assert_common(&fixture, &run.lines, &context);
    // No metadata document URL given: the SDK fell back to RFC 7591.
    let client_id = authorize["client_id"].as_str().unwrap();
    assert!(!client_id.starts_with("https://"), "{authorize}");
    assert_eq!(authorize["cimd"], Value::Null);
}

/// An operator's `[[oauth_client]]` entry for the SDK's default redirect
/// (loopback, so any port matches).
const PRE_REGISTERED: &str = r#"
[[oauth_client]]
client_id = "ts-sdk-app"
client_name = "TypeScript SDK app"
redirect_uris = ["http://127.0.0.1/callback"]
"#;

#[test]
fn the_typescript_sdk_uses_a_pre_registered_client_and_calls_a_tool() {
    let fixture = Fixture::start(PRE_REGISTERED);
    let (run, context) = run(&fixture, &["--client-id".as_ref(), "ts-sdk-app".as_ref()]);
    let authorize = assert_common(&fixture, &run.lines, &context);
    assert_eq!(authorize["client_id"], "ts-sdk-app", "{authorize}");
    assert_eq!(sent(&authorize, "client_id"), Some("ts-sdk-app"));
}

/// The SDK's preferred way (MCP 2025-11-25 and later): its `client_id` is
/// the https URL of its own Client ID Metadata Document, which the script
/// hosts on loopback with a throwaway CA's certificate. gnapd is told to
/// trust that CA and to admit a loopback document URL (both test-only
/// settings); everything else is as in production.
#[test]
fn the_typescript_sdk_identifies_itself_by_its_metadata_document_and_calls_a_tool() {
    let dir = tempfile::tempdir().unwrap();
    let pki = crate::support::pki::test_pki(dir.path());
    let fixture = Fixture::start(&format!(
        "allow_private_metadata_documents = true\nupstream_ca_files = [{:?}]\n",
        pki.ca.to_str().unwrap()
    ));
    let (run, context) = run(
        &fixture,
        &[
            "--cimd-cert".as_ref(),
            pki.cert.as_os_str(),
            "--cimd-key".as_ref(),
            pki.key.as_os_str(),
        ],
    );
    let authorize = assert_common(&fixture, &run.lines, &context);
    let url = authorize["cimd"]["url"].as_str().unwrap();
    assert!(url.starts_with("https://127.0.0.1:"), "{authorize}");
    assert_eq!(authorize["client_id"], url, "{authorize}");
    assert_eq!(sent(&authorize, "client_id"), Some(url));
    // gnapd fetched the document (and no other path of that host).
    let fetches = authorize["cimd"]["fetches"].as_array().unwrap();
    assert!(!fetches.is_empty(), "gnapd never fetched the document");
    assert!(
        fetches.iter().all(|f| f == "/oauth/client.json"),
        "{authorize}"
    );
}

/// Access tokens are short-lived and refresh tokens rotate: with a 2 s
/// token, the SDK's call after 3 s meets the gateway's 401, refreshes at
/// the token endpoint and retries on the same session, unmodified.
#[test]
fn the_typescript_sdk_refreshes_an_expired_token_and_calls_again() {
    let fixture = Fixture::start(&format!("oauth_token_lifetime = 2\n{PRE_REGISTERED}"));
    let (run, context) = run(
        &fixture,
        &[
            "--client-id".as_ref(),
            "ts-sdk-app".as_ref(),
            "--wait-before-call".as_ref(),
            "3".as_ref(),
        ],
    );
    let authorize = assert_common(&fixture, &run.lines, &context);
    assert_eq!(authorize["refresh"], true, "no refresh token: {authorize}");
    let refresh = step(&run.lines, "refresh", &context);
    assert_eq!(refresh["access_rotated"], true, "{refresh}");
    assert_eq!(refresh["refresh_rotated"], true, "{refresh}");
    assert!(refresh["unauthorized"].as_u64() >= Some(2), "{refresh}");
    assert_eq!(
        super::read(&fixture.path("ts-token")).lines().count(),
        2,
        "{context}"
    );
}

/// RFC 7009: the application revokes its access token at the revocation
/// endpoint the metadata names; the gateway refuses the token at once (401)
/// and the SDK recovers with a new one (by its refresh token, or by
/// authorizing again), never reaching the upstream with the revoked one.
#[test]
fn the_typescript_sdk_recovers_from_a_revoked_token() {
    let fixture = Fixture::start(PRE_REGISTERED);
    let (run, context) = run(
        &fixture,
        &[
            "--client-id".as_ref(),
            "ts-sdk-app".as_ref(),
            "--revoke-before-call".as_ref(),
        ],
    );
    assert_common(&fixture, &run.lines, &context);
    let revoke = step(&run.lines, "revoke", &context);
    assert_eq!(revoke["ok"], true, "{revoke}");
    assert_eq!(revoke["status"], 200, "{revoke}");
    assert!(revoke["refused"].as_u64() >= Some(1), "{revoke}");
    // gnapd's revocation takes the refresh token with the access token, so
    // the SDK authorizes again: a new grant, whose token the session the
    // old grant opened does not take (404, MCP: start a new session).
    assert_eq!(revoke["recovered_by"], "authorization", "{revoke}");
    assert!(revoke["session_status"].as_u64() >= Some(1), "{revoke}");
    assert_eq!(
        super::read(&fixture.path("ts-token")).lines().count(),
        2,
        "{context}"
    );
}
