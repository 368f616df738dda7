//! The official MCP conformance suite (`@modelcontextprotocol/conformance`,
//! `authorization` command) against gnapd's authorization server: its
//! metadata scenario and its authorization-code scenario must both pass.
//!
//! The suite needs a client registered with the redirect URI
//! `http://127.0.0.1:PORT/callback` (without `--client-id` it SKIPS the code
//! scenario and still exits 0, so the test reads every check's status, not
//! the exit code): here one pre-registered in the config as an operator
//! would, with the port-less loopback redirect RFC 8252 §7.3 lets match any
//! port. The person's login is the driver's headless GET
//! (tests/interop/oauth/conformance.mjs).

use std::time::Duration;

use super::{Fixture, free_port, node_script};
use crate::support::run::run_json_lines;

/// The suite waits up to 5 minutes for its callback; a healthy run takes a
/// few seconds.
const DEADLINE: Duration = Duration::from_secs(120);

/// The suite as an operator would register it: a public client (PKCE only).
const CLIENT: &str = r#"
[[oauth_client]]
client_id = "mcp-conformance-suite"
client_name = "MCP conformance suite"
redirect_uris = ["http://127.0.0.1/callback"]
"#;

/// Every check of every scenario the suite ran: `(id, status, error)`.
fn checks(lines: &[serde_json::Value]) -> Vec<(String, String, String)> {
    lines
        .iter()
        .filter(|l| l["step"] == "scenario")
        .flat_map(|l| l["checks"].as_array().cloned().unwrap_or_default())
        .map(|c| {
            (
                c["id"].as_str().unwrap_or_default().to_owned(),
                c["status"].as_str().unwrap_or_default().to_owned(),
                c["error"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[test]
fn the_conformance_suite_passes_metadata_and_authorization_code() {
    suite(Resource::GatewayUrl);
}

/// The suite's default run sends neither `resource` nor `scope`: gnapd
/// falls back to the one upstream it fronts.
#[test]
fn the_conformance_suite_passes_without_a_resource_indicator() {
    suite(Resource::None);
}

/// Some clients (Claude Code among them) send the resource with a trailing
/// slash; it names the same resource.
#[test]
fn the_conformance_suite_passes_with_a_trailing_slash_on_the_resource() {
    suite(Resource::TrailingSlash);
}

/// The `--resource` a run gives the suite.
enum Resource {
    None,
    GatewayUrl,
    TrailingSlash,
}

/// One run of the suite with `resource`.
fn suite(resource: Resource) {
    let fixture = Fixture::start(CLIENT);
    let port = free_port();
    let callback = format!("http://127.0.0.1:{port}/callback");
    let client_id = "mcp-conformance-suite";
    let issuer = fixture.server.base();

    let mut command = node_script("conformance.mjs");
    command
        .args(["--url", &issuer])
        .args(["--client-id", client_id])
        .args(["--port", &port.to_string()])
        .arg("--out")
        .arg(fixture.path("conformance"));
    match resource {
        Resource::None => {}
        Resource::GatewayUrl => {
            command.args(["--resource", &fixture.mcp_url()]);
        }
        Resource::TrailingSlash => {
            command.args(["--resource", &format!("{}/", fixture.mcp_url())]);
        }
    }
    let run = run_json_lines(command, DEADLINE, "conformance.mjs");
    let context = format!("{}\n--- gnapd log\n{}", run.output, fixture.log());

    let login = super::step(&run.lines, "login", &context);
    assert_eq!(login["ok"], true, "{login}\n{context}");
    // gnapd --dev answered the authorization request with a redirect
    // straight to the callback, carrying code, state and iss (RFC 9207).
    assert!(
        matches!(login["status"].as_u64(), Some(302 | 303)),
        "{login}"
    );
    assert_eq!(login["redirect"], callback.as_str(), "{login}");
    for param in ["code", "state", "iss"] {
        assert!(
            login["params"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p == param),
            "{param} missing from the authorization response: {login}"
        );
    }

    let checks = checks(&run.lines);
    for id in [
        "authorization-server-metadata",
        "authorization-server-metadata-cimd",
        "authorization-code-grant",
    ] {
        let found: Vec<_> = checks.iter().filter(|(c, _, _)| c == id).collect();
        assert_eq!(found.len(), 1, "check {id}: {checks:?}\n{context}");
        assert_eq!(
            found[0].1, "SUCCESS",
            "check {id}: {:?}\n{context}",
            found[0]
        );
    }
    for (id, status, error) in &checks {
        assert!(
            status == "SUCCESS",
            "check {id} is {status}: {error}\n{context}"
        );
    }
    assert_eq!(
        super::step(&run.lines, "exit", &context)["code"],
        0,
        "{context}"
    );
}
