//! `mcp-remote` (the npm stdio-to-HTTP bridge desktop MCP clients use for
//! remote servers), unmodified, as a stdio server for the official Python
//! SDK's stdio client (tests/interop/mcp_stdio_client.py): pointed at
//! `{public}/mcp/github`, it discovers everything from the 401, registers
//! dynamically with its default `http://localhost:PORT/oauth/callback`,
//! opens "the browser" and completes a `tools/call` through the gateway.
//!
//! The browser is tests/interop/oauth/browser.py put where mcp-remote looks
//! for one ($BROWSER and `www-browser`/`x-www-browser` on PATH, as
//! `xdg-open` and mcp-remote's own fallbacks do): it GETs the authorization
//! URL, and delivers gnapd --dev's redirect to mcp-remote's callback.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use super::{Fixture, node, oauth_dir};
use crate::support::paths::{python, root};
use crate::support::run::run_json_lines;

const DEADLINE: Duration = Duration::from_secs(120);

fn executable(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The access token mcp-remote stored (its `*_tokens.json` under
/// `$MCP_REMOTE_CONFIG_DIR/mcp-remote-v1/`).
fn stored_token(config: &Path) -> String {
    let dir = config.join("mcp-remote-v1");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.unwrap().path();
        if path.to_string_lossy().ends_with("_tokens.json") {
            let tokens: Value = serde_json::from_str(&super::read(&path)).unwrap();
            return tokens["access_token"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
        }
    }
    panic!("mcp-remote stored no tokens in {}", dir.display())
}

/// Runs mcp-remote (with `extra` arguments after the URL) under the stdio
/// client for one `tools/call`, asserts what every run must show, and
/// returns the browser's record of the authorization request.
fn bridge(fixture: &Fixture, extra: &str) -> Value {
    let bin = fixture.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let config = fixture.path("mcp-auth");
    let browser_log = fixture.path("browser.jsonl");
    let browser = format!(
        "#!/bin/sh\nexec '{}' '{}' \"$1\"\n",
        python().display(),
        oauth_dir().join("browser.py").display()
    );
    for name in ["www-browser", "x-www-browser", "xdg-open"] {
        executable(&bin.join(name), &browser);
    }
    // The stdio client starts its server with a minimal environment, so the
    // bridge's own settings travel in a wrapper.
    let wrapper = fixture.path("mcp-remote.sh");
    executable(
        &wrapper,
        &format!(
            "#!/bin/sh\nexport PATH='{bin}':\"$PATH\" BROWSER='{bin}/www-browser' \
             MCP_REMOTE_CONFIG_DIR='{config}' GNAPD_FAKE_BROWSER_LOG='{log}'\n\
             unset DISPLAY WAYLAND_DISPLAY\n\
             exec '{node}' '{bridge}' '{url}' {extra} --auth-timeout 60\n",
            bin = bin.display(),
            config = config.display(),
            log = browser_log.display(),
            node = node().display(),
            bridge = oauth_dir()
                .join("node_modules/mcp-remote/dist/proxy.js")
                .display(),
            url = fixture.mcp_url(),
            extra = extra,
        ),
    );
    let stderr_log = fixture.path("mcp-remote.log");
    let mut command = Command::new(python());
    command
        .arg(root().join("tests/interop/mcp_stdio_client.py"))
        .arg("--command")
        .arg(&wrapper)
        .arg("--stderr-log")
        .arg(&stderr_log)
        .args([
            "--script",
            &json!([{"call": "search_issues", "args": {"query": "bug"}}]).to_string(),
        ]);
    let run = run_json_lines(command, DEADLINE, "mcp_stdio_client.py + mcp-remote");
    let context = format!(
        "{}\n--- mcp-remote\n{}\n--- browser\n{}\n--- gnapd log\n{}",
        run.output,
        super::read(&stderr_log),
        super::read(&browser_log),
        fixture.log()
    );
    assert_eq!(run.code, Some(0), "the bridge failed:\n{context}");
    let call = super::step(&run.lines, "0:call", &context);
    assert!(
        call["text"]
            .as_str()
            .unwrap_or_default()
            .contains("found 1 issue for bug"),
        "{call}"
    );

    // The browser saw mcp-remote's authorization request and gnapd's
    // redirect to its localhost callback with code, state and iss.
    let opened: Value = serde_json::from_str(
        super::read(&browser_log)
            .lines()
            .next()
            .unwrap_or_else(|| panic!("the browser was never opened:\n{context}")),
    )
    .unwrap();
    assert_eq!(opened["sent"]["resource"], fixture.mcp_url(), "{opened}");
    assert_eq!(opened["sent"]["code_challenge_method"], "S256", "{opened}");
    let redirect = opened["redirect"].as_str().unwrap_or_default();
    assert!(
        redirect.starts_with("http://localhost:") && redirect.ends_with("/oauth/callback"),
        "{opened}"
    );
    assert_eq!(
        opened["params"],
        json!(["code", "iss", "state"]),
        "{opened}"
    );
    assert_eq!(opened["callback_status"], 200, "{opened}");

    fixture.assert_upstream_clean(&stored_token(&config));
    opened
}

#[test]
fn mcp_remote_bridges_a_stdio_client_through_dynamic_registration() {
    let fixture = Fixture::start("");
    let opened = bridge(&fixture, "");
    let client_id = opened["sent"]["client_id"].as_str().unwrap_or_default();
    assert!(!client_id.is_empty(), "{opened}");
}

/// An operator's `[[oauth_client]]` entry for mcp-remote's default
/// callback, `localhost` on any port.
const PRE_REGISTERED: &str = r#"
[[oauth_client]]
client_id = "mcp-remote-app"
client_name = "mcp-remote"
redirect_uris = ["http://localhost/oauth/callback"]
"#;

#[test]
fn mcp_remote_bridges_a_stdio_client_with_a_pre_registered_client() {
    let fixture = Fixture::start(PRE_REGISTERED);
    // Static client information pins the callback port (mcp-remote refuses
    // to move it): a free one.
    let extra = format!(
        r#"{} --static-oauth-client-info '{{"client_id":"mcp-remote-app"}}'"#,
        super::free_port()
    );
    let opened = bridge(&fixture, &extra);
    assert_eq!(opened["sent"]["client_id"], "mcp-remote-app", "{opened}");
}

/// mcp-remote identifying itself by a Client ID Metadata Document
/// (`--client-metadata-url`): the document is published over https on
/// loopback by a throwaway CA gnapd is told to trust (test-only settings,
/// as for the SDKs), and names mcp-remote's callback on a pinned port.
#[test]
fn mcp_remote_bridges_a_stdio_client_by_its_metadata_document() {
    use crate::oauth_clients::document_server::{Doc, DocumentServer};
    let dir = tempfile::tempdir().unwrap();
    let pki = crate::support::pki::test_pki(dir.path());
    let fixture = Fixture::start(&format!(
        "allow_private_metadata_documents = true\nupstream_ca_files = [{:?}]\n",
        pki.ca.to_str().unwrap()
    ));
    let docs = DocumentServer::start(&pki.cert, &pki.key);
    let port = super::free_port();
    let url = docs.url("/mcp-remote.json");
    docs.serve(
        "/mcp-remote.json",
        Doc::json(&json!({
            "client_id": url,
            "client_name": "mcp-remote",
            "redirect_uris": [format!("http://localhost:{port}/oauth/callback")],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        })),
    );
    let extra = format!("{port} --client-metadata-url '{url}'");
    let opened = bridge(&fixture, &extra);
    assert_eq!(opened["sent"]["client_id"], url.as_str(), "{opened}");
    assert!(docs.hits("/mcp-remote.json") >= 1, "gnapd never fetched it");
}
