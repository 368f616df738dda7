//! RFC 9449 with a real client: panva's `openid-client` (v6, unmodified,
//! tests/interop/oauth/dpop_client.mjs), since none of the MCP SDKs sends
//! DPoP proofs. It discovers gnapd's issuer, authorizes a pre-registered
//! public client with PKCE and `resource`, gets a DPoP-bound token, carries
//! MCP `initialize` and `tools/call` to the gateway with a fresh proof each,
//! refreshes with the same key and calls again. The attacks: the same token
//! as Bearer, as DPoP without a proof, or with another key's proof, is
//! refused with a 401.

use std::time::Duration;

use serde_json::Value;

use super::{Fixture, free_port, node_script, sent, step};
use crate::support::run::run_json_lines;

const DEADLINE: Duration = Duration::from_secs(90);

/// An operator's `[[oauth_client]]` entry: a public client with a loopback
/// redirect (any port matches).
const PRE_REGISTERED: &str = r#"
[[oauth_client]]
client_id = "openid-client-app"
client_name = "openid-client with DPoP"
redirect_uris = ["http://127.0.0.1/callback"]
"#;

/// A 401 with a DPoP challenge, as RFC 9449 §7.1 has the resource server
/// answer a token it does not take on that request.
fn assert_refused(attack: &Value, what: &str) {
    assert_eq!(attack["status"], 401, "{what}: {attack}");
    let www = attack["www_authenticate"].as_str().unwrap_or_default();
    assert!(www.contains("DPoP"), "{what}: no DPoP challenge: {attack}");
}

#[test]
fn openid_client_with_dpop_calls_a_tool_and_refreshes_and_a_stolen_token_is_refused() {
    let fixture = Fixture::start(PRE_REGISTERED);
    let redirect = format!("http://127.0.0.1:{}/callback", free_port());
    let token_file = fixture.path("dpop-tokens");
    let mut command = node_script("dpop_client.mjs");
    command
        .args(["--issuer", &fixture.server.base()])
        .args(["--url", &fixture.mcp_url()])
        .args(["--client-id", "openid-client-app"])
        .args(["--redirect", &redirect])
        .args(["--tool", "search_issues"])
        .args(["--tool-args", r#"{"query": "bug"}"#])
        .arg("--token-file")
        .arg(&token_file);
    let run = run_json_lines(command, DEADLINE, "dpop_client.mjs");
    let context = format!("{}\n--- gnapd log\n{}", run.output, fixture.log());
    assert_eq!(run.code, Some(0), "dpop_client.mjs failed:\n{context}");
    let lines = &run.lines;

    let discover = step(lines, "discover", &context);
    assert_eq!(discover["issuer"], fixture.server.base(), "{discover}");
    let authorize = step(lines, "authorize", &context);
    assert_eq!(
        sent(authorize, "resource"),
        Some(fixture.mcp_url().as_str())
    );
    assert_eq!(sent(authorize, "code_challenge_method"), Some("S256"));
    assert_eq!(authorize["iss"], fixture.server.base(), "{authorize}");

    // RFC 9449 §5: a token bound to the proof's key says so (openid-client
    // lowercases `token_type`, which RFC 6749 §7.1 makes case-insensitive).
    let token = step(lines, "token", &context);
    assert_eq!(token["token_type"], "dpop", "{token}");
    assert_eq!(token["refresh"], true, "{token}");

    let initialize = step(lines, "initialize", &context);
    assert_eq!(initialize["ok"], true, "{initialize}");
    assert_eq!(initialize["session"], true, "{initialize}");
    let initialized = step(lines, "initialized", &context);
    assert_eq!(initialized["status"], 202, "{initialized}");
    for name in ["call", "call_after_refresh"] {
        let call = step(lines, name, &context);
        assert_eq!(call["ok"], true, "{call}");
        assert!(
            call["text"]
                .as_str()
                .unwrap_or_default()
                .contains("found 1 issue for bug"),
            "{call}"
        );
    }

    let attacks = step(lines, "attacks", &context);
    assert_refused(&attacks["bearer"], "the DPoP token as Bearer");
    assert_refused(&attacks["no_proof"], "the DPoP token without a proof");
    assert_refused(&attacks["other_key"], "a proof by another key");

    let refresh = step(lines, "refresh", &context);
    assert_eq!(refresh["token_type"], "dpop", "{refresh}");
    assert_eq!(refresh["access_rotated"], true, "{refresh}");
    assert_eq!(refresh["refresh_rotated"], true, "{refresh}");

    // Both access tokens were used; the upstream saw neither, nor a proof.
    let tokens = super::read(&token_file);
    assert_eq!(tokens.lines().count(), 2, "{context}");
    fixture.assert_upstream_clean(&tokens);
    for (method, headers) in fixture.upstream.requests() {
        assert!(
            headers.iter().all(|(name, value)| {
                !name.eq_ignore_ascii_case("dpop") && !value.starts_with("DPoP ")
            }),
            "{method}: a DPoP header reached the upstream: {headers:?}"
        );
    }
}
